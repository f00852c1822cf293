//! Google's error envelope (`{"error":{"code","message","errors":[{"domain","reason"}]}}`) and
//! the table that maps its `reason` to konektly's [`Error`]. The table decides by `reason`, never
//! by searching messages; Google's messages may hold HTML, so users only see them cleaned.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use konektly_core::api::ApiDialect;
use konektly_core::disposition::{Answered, Disposition, to_error};
use konektly_core::http::ApiResponse;
use konektly_core::ratelimit::{BudgetScope, RateLimitReport};
use konektly_core::{CallKind, Error};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The envelope of every Data API error.
#[derive(Debug, Deserialize)]
struct Envelope {
    error: GoogleErrorBody,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleErrorBody {
    code: u16,
    message: String,
    errors: Vec<GoogleErrorItem>,
    status: Option<String>,
    details: Vec<GoogleErrorDetail>,
}

/// One of `error.details[]`: a `google.rpc.ErrorInfo` carries a machine `reason`
/// (`SERVICE_DISABLED`, `API_KEY_SERVICE_BLOCKED`…); other detail types carry none.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleErrorDetail {
    reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleErrorItem {
    domain: Option<String>,
    reason: Option<String>,
    message: Option<String>,
}

/// The YouTube Data API's own error: HTTP status, `reason`, `domain` and the cleaned message.
/// It is the `source` of the [`Error`] it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YouTubeApiError {
    /// The HTTP status.
    pub status: u16,
    /// The first `errors[].reason` (`quotaExceeded`, `uploadLimitExceeded`…), if any.
    pub reason: Option<String>,
    /// The first `errors[].domain`, if any.
    pub domain: Option<String>,
    /// The message, with any HTML removed.
    pub message: String,
}

impl fmt::Display for YouTubeApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "YouTube API error {}", self.status)?;
        if let Some(r) = &self.reason {
            write!(f, " ({r})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for YouTubeApiError {}

impl YouTubeApiError {
    /// Parses an error body. A body that is not Google's envelope (an HTML error page from a
    /// proxy…) gives an error with no reason and no message: its text is never shown.
    pub fn parse(status: StatusCode, body: &[u8]) -> Self {
        match serde_json::from_slice::<Envelope>(body) {
            Ok(env) => {
                let first = env.error.errors.first();
                let raw = if env.error.message.is_empty() {
                    first.and_then(|e| e.message.clone()).unwrap_or_default()
                } else {
                    env.error.message.clone()
                };
                let status = if env.error.code != 0 { env.error.code } else { status.as_u16() };
                Self {
                    status,
                    reason: most_specific_reason(&env.error),
                    domain: first.and_then(|e| e.domain.clone()),
                    message: clean_message(&raw),
                }
            }
            Err(_) => Self { status: status.as_u16(), reason: None, domain: None, message: String::new() },
        }
    }
}

/// The most specific label of an error: YouTube's own `errors[0].reason` (`quotaExceeded`,
/// `forbidden`…), then a `google.rpc.ErrorInfo` reason from `details`, and only then the
/// generic canonical `status` (`PERMISSION_DENIED`, `UNAVAILABLE`…) that newer front ends add
/// to every error of a class. Empty strings say nothing and are skipped.
fn most_specific_reason(body: &GoogleErrorBody) -> Option<String> {
    let given = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    body.errors
        .first()
        .and_then(|e| given(&e.reason))
        .or_else(|| body.details.iter().find_map(|d| given(&d.reason)))
        .or_else(|| given(&body.status))
}

/// One row of the table: a Google `reason`, its disposition, and what to tell the user.
pub(crate) struct Row {
    /// Google's `errors[].reason`.
    pub reason: &'static str,
    /// What konektly does.
    pub then: Disposition,
    /// What the user reads (with the reason, and Google's cleaned message).
    pub advice: &'static str,
    /// The budget a rate limit spends, when it is a whole day's: the project's quota (every
    /// account of the app, back at midnight Pacific time) or the channel's upload cap (this
    /// account, back in about a day).
    pub budget: Option<BudgetScope>,
}

const fn row(reason: &'static str, then: Disposition, advice: &'static str) -> Row {
    Row { reason, then, advice, budget: None }
}

const LIMITED: Disposition = Disposition::RateLimited { retry_at: None, wait: None };
const REAUTH: Disposition = Disposition::Reauth;
const REJECT: Disposition = Disposition::Reject;
const TRANSIENT: Disposition = Disposition::Transient { retry_after: None };

/// The table: Google `reason` → what to do. `invalid*` reasons not listed are rejections too.
pub(crate) const TABLE: &[Row] = &[
    Row {
        budget: Some(BudgetScope::App),
        ..row(
            "quotaExceeded",
            LIMITED,
            "the app's YouTube API quota for today is used up; it returns at midnight Pacific time",
        )
    },
    Row {
        budget: Some(BudgetScope::App),
        ..row(
            "dailyLimitExceeded",
            LIMITED,
            "the app's YouTube API quota for today is used up; it returns at midnight Pacific time",
        )
    },
    Row {
        budget: Some(BudgetScope::Account),
        ..row(
            "uploadLimitExceeded",
            LIMITED,
            "the channel reached YouTube's daily upload limit; try again in about a day",
        )
    },
    row("rateLimitExceeded", LIMITED, "YouTube asks to slow down"),
    row("userRateLimitExceeded", LIMITED, "YouTube asks to slow down"),
    row("uploadRateLimitExceeded", LIMITED, "YouTube asks to slow down"),
    row("authError", Disposition::RefreshToken, REFUSED_TOKEN),
    row("unauthorized", Disposition::RefreshToken, REFUSED_TOKEN),
    row(
        "youtubeSignupRequired",
        REAUTH,
        "this Google account has no YouTube channel: create one on YouTube, then connect again",
    ),
    row(
        "insufficientPermissions",
        REAUTH,
        "the permissions granted do not allow this: connect again and allow YouTube uploads",
    ),
    row(
        "accountDelegationForbidden",
        REAUTH,
        "this Google account may not act for the chosen channel: connect again with the channel's own account",
    ),
    row("authenticatedUserAccountClosed", REAUTH, "the YouTube account was closed"),
    row("authenticatedUserAccountSuspended", REAUTH, "the YouTube account is suspended"),
    row(
        "authenticatedUserNotChannel",
        REAUTH,
        "the connected account is not a channel: connect again and pick the channel",
    ),
    row("channelClosed", REAUTH, "the YouTube channel was closed"),
    row("channelSuspended", REAUTH, "the YouTube channel is suspended"),
    row("channelNotFound", REJECT, "the YouTube channel was not found"),
    row("forbidden", REJECT, "YouTube does not allow this action for this channel"),
    row("videoNotFound", REJECT, "the video was not found"),
    row("mediaBodyRequired", REJECT, "the upload carried no video"),
    row("defaultLanguageNotSet", REJECT, "localized metadata needs a default language"),
    row("incompatibleParameters", REJECT, "the request's parameters do not go together"),
    row("missingRequiredParameter", REJECT, "the request misses a required parameter"),
    row("unexpectedParameter", REJECT, "the request has an unexpected parameter"),
    row("backendError", TRANSIENT, "YouTube had a passing failure"),
    row("internalError", TRANSIENT, "YouTube had a passing failure"),
];

const REFUSED_TOKEN: &str = "YouTube refused the access token";

/// A reason no row names: `invalid*` is a refused field, anything else goes by the status.
const INVALID: Row = row("invalid*", REJECT, "YouTube refused a field of the video");
const UNLISTED: Row = row("", Disposition::ByStatus, "YouTube answered");

/// The row for a reason.
pub(crate) fn row_for(reason: Option<&str>) -> &'static Row {
    let Some(reason) = reason else { return &UNLISTED };
    if let Some(row) = TABLE.iter().find(|r| r.reason == reason) {
        return row;
    }
    if reason.starts_with("invalid") {
        return &INVALID;
    }
    &UNLISTED
}

/// When a spent day's budget returns, from `now`.
fn budget_returns(scope: BudgetScope, now: DateTime<Utc>) -> DateTime<Utc> {
    match scope {
        BudgetScope::App => next_pacific_midnight(now),
        _ => now + Duration::hours(24),
    }
}

/// YouTube's dialect of core's call pipeline: Google's error bodies and their table.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct YouTubeDialect;

impl ApiDialect for YouTubeDialect {
    type ApiError = YouTubeApiError;

    fn parse_error(&self, answer: &ApiResponse) -> Option<YouTubeApiError> {
        (!answer.is_success()).then(|| YouTubeApiError::parse(answer.status, &answer.body))
    }

    fn classify(&self, error: YouTubeApiError, answer: &ApiResponse, kind: CallKind, _what: &str) -> Error {
        map_youtube_error(error, answer.status, &answer.headers, kind, Utc::now())
    }
}

/// Maps an error answer of the Data API to konektly's [`Error`], at `now`.
pub(crate) fn map_api_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    kind: CallKind,
    now: DateTime<Utc>,
) -> Error {
    map_youtube_error(YouTubeApiError::parse(status, body), status, headers, kind, now)
}

/// Maps Google's error `api`, answered with `status` and `headers`, at `now`.
fn map_youtube_error(
    api: YouTubeApiError,
    status: StatusCode,
    headers: &HeaderMap,
    kind: CallKind,
    now: DateTime<Utc>,
) -> Error {
    let said = if api.message.is_empty() { String::new() } else { format!(" (YouTube said: {})", api.message) };
    let code = api.reason.clone().unwrap_or_else(|| status.as_u16().to_string());
    let row = row_for(api.reason.as_deref());
    let (mut then, mut advice) = (row.then, row.advice);
    // A 401 is about the token whatever the reason says, except the account states in the table.
    if status == StatusCode::UNAUTHORIZED && matches!(then, Disposition::ByStatus | Disposition::Reject) {
        (then, advice) = (Disposition::RefreshToken, REFUSED_TOKEN);
    }
    if let Some(scope) = row.budget {
        then = Disposition::RateLimited { retry_at: Some(budget_returns(scope, now)), wait: None };
    }
    let message = match then {
        Disposition::Reauth => format!("{advice} ({code})"),
        Disposition::Reject => format!("{advice}{said}"),
        _ => format!("{advice} ({code}){said}"),
    };
    let answered = Answered::new(status, headers, kind).at(now);
    to_error(then, &answered, Some(code), message, Some(Box::new(api)))
}

/// A rate-limit report for the engine when an error says a whole budget is spent: the project's
/// quota (every account of the app) or the channel's upload cap (this account).
pub(crate) fn budget_report(err: &Error) -> Option<RateLimitReport> {
    let Error::RateLimited { retry_at: Some(at), source: Some(src), .. } = err else { return None };
    let api = src.downcast_ref::<YouTubeApiError>()?;
    let (scope, bucket) = match row_for(api.reason.as_deref()).budget? {
        BudgetScope::App => (BudgetScope::App, "daily_quota"),
        scope => (scope, "channel_upload_cap"),
    };
    Some(RateLimitReport { scope, bucket: bucket.into(), limit: None, remaining: 0, reset_at: *at })
}

/// Removes HTML tags and entities and squeezes whitespace, so a message can be shown to a user.
pub(crate) fn clean_message(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_tag = false;
    for c in raw.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "‹")
        .replace("&gt;", "›")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    let squeezed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if squeezed.chars().count() > 300 {
        format!("{}…", squeezed.chars().take(300).collect::<String>())
    } else {
        squeezed
    }
}

/// The next midnight in America/Los_Angeles after `now`: when YouTube quotas reset. The zone's
/// rules come from the tz database bundled with `jiff` (no hand-written daylight-saving dates).
pub fn next_pacific_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let fallback = now + Duration::days(1);
    let Ok(tz) = jiff::tz::TimeZone::get("America/Los_Angeles") else { return fallback };
    let Ok(ts) = jiff::Timestamp::new(now.timestamp(), 0) else { return fallback };
    let today = ts.to_zoned(tz.clone()).date();
    let next = today.tomorrow().ok().and_then(|d| d.to_zoned(tz).ok());
    next.and_then(|z| DateTime::from_timestamp(z.timestamp().as_second(), 0)).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn body(code: u16, reason: &str, domain: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}]}})
        .to_string()
        .into_bytes()
    }

    fn map(code: u16, reason: &str) -> Error {
        let status = StatusCode::from_u16(code).unwrap();
        map_api_error(
            status,
            &HeaderMap::new(),
            &body(code, reason, "youtube.test", "msg"),
            CallKind::Idempotent,
            t("2026-11-29T08:00:00Z"),
        )
    }

    fn reauth_reason(e: &Error) -> &str {
        match e {
            Error::ReauthRequired { reason, .. } => reason,
            other => panic!("expected ReauthRequired, got {other:?}"),
        }
    }

    fn rejected_code(e: &Error) -> Option<&str> {
        match e {
            Error::Rejected { code, .. } => code.as_deref(),
            other => panic!("expected Rejected, got {other:?}"),
        }
    }

    // One test per row of the table.

    #[test]
    fn row_quota_exceeded_waits_for_pacific_midnight() {
        let e = map(403, "quotaExceeded");
        // 2026-11-29 08:00 UTC is 00:00 PST on the 29th: the next reset is 2026-11-30 08:00 UTC.
        assert!(
            matches!(&e, Error::RateLimited { retry_at: Some(at), .. } if *at == t("2026-11-30T08:00:00Z")),
            "{e:?}"
        );
        let report = budget_report(&e).expect("the quota is an app-wide budget");
        assert_eq!(report.scope, BudgetScope::App);
        assert_eq!(report.remaining, 0);
    }

    #[test]
    fn row_daily_limit_exceeded_is_the_quota_too() {
        assert!(matches!(map(403, "dailyLimitExceeded"), Error::RateLimited { retry_at: Some(_), .. }));
    }

    #[test]
    fn row_upload_limit_exceeded_waits_a_day_for_the_channel() {
        let e = map(400, "uploadLimitExceeded");
        assert!(
            matches!(&e, Error::RateLimited { retry_at: Some(at), .. } if *at == t("2026-11-30T08:00:00Z")),
            "{e:?}"
        );
        assert!(e.to_string().contains("daily upload limit"), "{e}");
        assert_eq!(budget_report(&e).unwrap().scope, BudgetScope::Account);
    }

    #[test]
    fn row_rate_limit_exceeded_backs_off_with_retry_after() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "30".parse().unwrap());
        let e = map_api_error(
            StatusCode::FORBIDDEN,
            &h,
            &body(403, "rateLimitExceeded", "usageLimits", "slow"),
            CallKind::Create,
            t("2026-11-29T08:00:00Z"),
        );
        assert!(
            matches!(&e, Error::RateLimited { retry_at: Some(at), .. } if *at == t("2026-11-29T08:00:30Z")),
            "{e:?}"
        );
        assert!(budget_report(&e).is_none(), "a short-term limit is no budget");
    }

    #[test]
    fn row_user_rate_limit_exceeded_backs_off() {
        assert!(matches!(map(403, "userRateLimitExceeded"), Error::RateLimited { retry_at: None, .. }));
    }

    #[test]
    fn row_upload_rate_limit_exceeded_backs_off() {
        assert!(matches!(map(429, "uploadRateLimitExceeded"), Error::RateLimited { .. }));
    }

    #[test]
    fn row_auth_error_refuses_the_token() {
        assert!(matches!(map(401, "authError"), Error::AccessTokenRejected { .. }));
    }

    #[test]
    fn row_unauthorized_refuses_the_token() {
        assert!(matches!(map(401, "unauthorized"), Error::AccessTokenRejected { .. }));
    }

    #[test]
    fn any_401_without_an_account_reason_refuses_the_token() {
        let e = map_api_error(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            b"<html>nope</html>",
            CallKind::Idempotent,
            Utc::now(),
        );
        assert!(matches!(e, Error::AccessTokenRejected { .. }), "{e:?}");
    }

    #[test]
    fn row_youtube_signup_required_needs_a_channel() {
        assert!(reauth_reason(&map(401, "youtubeSignupRequired")).contains("no YouTube channel"));
    }

    #[test]
    fn row_insufficient_permissions_needs_reconnecting() {
        assert!(reauth_reason(&map(403, "insufficientPermissions")).contains("connect again"));
    }

    #[test]
    fn row_account_delegation_forbidden() {
        assert!(reauth_reason(&map(403, "accountDelegationForbidden")).contains("accountDelegationForbidden"));
    }

    #[test]
    fn row_account_closed() {
        assert!(reauth_reason(&map(403, "authenticatedUserAccountClosed")).contains("closed"));
    }

    #[test]
    fn row_account_suspended() {
        assert!(reauth_reason(&map(403, "authenticatedUserAccountSuspended")).contains("suspended"));
    }

    #[test]
    fn row_user_not_channel() {
        assert!(reauth_reason(&map(403, "authenticatedUserNotChannel")).contains("not a channel"));
    }

    #[test]
    fn row_channel_closed() {
        assert!(reauth_reason(&map(403, "channelClosed")).contains("closed"));
    }

    #[test]
    fn row_channel_suspended() {
        assert!(reauth_reason(&map(403, "channelSuspended")).contains("suspended"));
    }

    #[test]
    fn row_channel_not_found() {
        assert_eq!(rejected_code(&map(404, "channelNotFound")), Some("channelNotFound"));
    }

    #[test]
    fn row_forbidden() {
        assert_eq!(rejected_code(&map(403, "forbidden")), Some("forbidden"));
    }

    #[test]
    fn row_video_not_found() {
        assert_eq!(rejected_code(&map(404, "videoNotFound")), Some("videoNotFound"));
    }

    #[test]
    fn row_media_body_required() {
        assert_eq!(rejected_code(&map(400, "mediaBodyRequired")), Some("mediaBodyRequired"));
    }

    #[test]
    fn row_default_language_not_set() {
        assert_eq!(rejected_code(&map(400, "defaultLanguageNotSet")), Some("defaultLanguageNotSet"));
    }

    #[test]
    fn row_incompatible_parameters() {
        assert_eq!(rejected_code(&map(400, "incompatibleParameters")), Some("incompatibleParameters"));
    }

    #[test]
    fn row_missing_required_parameter() {
        assert_eq!(rejected_code(&map(400, "missingRequiredParameter")), Some("missingRequiredParameter"));
    }

    #[test]
    fn row_unexpected_parameter() {
        assert_eq!(rejected_code(&map(400, "unexpectedParameter")), Some("unexpectedParameter"));
    }

    #[test]
    fn row_backend_error_is_transient() {
        assert!(matches!(map(500, "backendError"), Error::Transient { .. }));
    }

    #[test]
    fn row_internal_error_is_transient() {
        assert!(matches!(map(500, "internalError"), Error::Transient { .. }));
    }

    #[test]
    fn every_invalid_reason_is_a_rejection_with_its_code() {
        for reason in [
            "invalidTitle",
            "invalidDescription",
            "invalidTags",
            "invalidCategoryId",
            "invalidPublishAt",
            "invalidFilename",
            "invalidImage",
            "invalidPageToken",
        ] {
            assert_eq!(rejected_code(&map(400, reason)), Some(reason));
        }
    }

    #[test]
    fn every_table_row_is_covered_by_a_test_above() {
        let src = include_str!("error.rs");
        for Row { reason, .. } in TABLE {
            assert!(src.matches(&format!("\"{reason}\"")).count() >= 2, "no test for {reason}");
        }
    }

    #[test]
    fn unknown_reasons_fall_back_to_the_status() {
        assert!(matches!(map(503, "somethingNew"), Error::Transient { .. }));
        assert_eq!(rejected_code(&map(400, "somethingNew")), Some("somethingNew"));
    }

    /// Bodies as Google sends them today: `status` and `details` next to `errors`.
    #[test]
    fn the_stored_code_is_the_most_specific_reason_not_the_generic_status() {
        let code = |status: u16, body: serde_json::Value| {
            let e = map_api_error(
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                body.to_string().as_bytes(),
                CallKind::Idempotent,
                Utc::now(),
            );
            konektly_core::FailureRecord::from(&e).code
        };
        // A 403 with YouTube's reason, the canonical status and an ErrorInfo: the reason.
        let forbidden = serde_json::json!({"error": {
            "code": 403,
            "message": "Requests to this API youtube method youtube.api.v3.V3DataVideoService.Insert are blocked.",
            "errors": [{"message": "Requests to this API youtube method youtube.api.v3.V3DataVideoService.Insert are blocked.",
                        "domain": "global", "reason": "forbidden"}],
            "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_SERVICE_BLOCKED",
                         "domain": "googleapis.com",
                         "metadata": {"service": "youtube.googleapis.com", "consumer": "projects/123"}}]}});
        assert_eq!(code(403, forbidden).as_deref(), Some("forbidden"));
        // No `errors[]` (a front end that sends only the newer shape): the ErrorInfo reason,
        // which says more than PERMISSION_DENIED.
        let no_errors = serde_json::json!({"error": {
            "code": 403,
            "message": "YouTube Data API v3 has not been used in project 123 before or it is disabled.",
            "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.Help", "links": []},
                        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED",
                         "domain": "googleapis.com"}]}});
        assert_eq!(code(403, no_errors).as_deref(), Some("SERVICE_DISABLED"));
        // An empty reason says nothing: the status is all there is.
        let empty = serde_json::json!({"error": {
            "code": 400, "message": "Bad request", "errors": [{"message": "Bad request", "reason": ""}],
            "status": "INVALID_ARGUMENT"}});
        assert_eq!(code(400, empty).as_deref(), Some("INVALID_ARGUMENT"));
        // The quota reason wins over RESOURCE_EXHAUSTED and keeps its meaning.
        let quota = api_error(serde_json::json!({"error": {
            "code": 403, "message": "quota", "status": "RESOURCE_EXHAUSTED",
            "errors": [{"message": "quota", "domain": "youtube.quota", "reason": "quotaExceeded"}]}}));
        assert_eq!(quota.reason.as_deref(), Some("quotaExceeded"));
    }

    fn api_error(body: serde_json::Value) -> YouTubeApiError {
        YouTubeApiError::parse(StatusCode::FORBIDDEN, body.to_string().as_bytes())
    }

    #[test]
    fn html_never_reaches_the_message() {
        let raw = "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.";
        let e = map_api_error(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            &body(403, "quotaExceeded", "youtube.quota", raw),
            CallKind::Idempotent,
            Utc::now(),
        );
        let shown = e.to_string();
        assert!(shown.contains("exceeded your quota."), "{shown}");
        assert!(!shown.contains('<') && !shown.contains("href"), "{shown}");
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(!source.contains("href"), "{source}");
    }

    #[test]
    fn a_non_json_error_page_is_not_shown() {
        let e = map_api_error(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html><body>Bad gateway <script>x</script></body></html>",
            CallKind::Idempotent,
            Utc::now(),
        );
        assert!(matches!(e, Error::Transient { .. }));
        assert!(!e.to_string().contains("html") && !e.to_string().contains("script"), "{e}");
    }

    #[test]
    fn pacific_midnight_follows_daylight_time() {
        // Summer (PDT, UTC-7): 2026-07-01 12:00 UTC is 05:00 local → next midnight 2026-07-02 07:00 UTC.
        assert_eq!(next_pacific_midnight(t("2026-07-01T12:00:00Z")), t("2026-07-02T07:00:00Z"));
        // Winter (PST, UTC-8): 2026-01-15 07:59 UTC is 23:59 on the 14th → 2026-01-15 08:00 UTC.
        assert_eq!(next_pacific_midnight(t("2026-01-15T07:59:00Z")), t("2026-01-15T08:00:00Z"));
        // Just after midnight PST: the next one is a day later.
        assert_eq!(next_pacific_midnight(t("2026-01-15T08:00:00Z")), t("2026-01-16T08:00:00Z"));
        // DST starts 2026-03-08: the midnight after is in PDT.
        assert_eq!(next_pacific_midnight(t("2026-03-08T12:00:00Z")), t("2026-03-09T07:00:00Z"));
        // The night before it starts, midnight is still PST.
        assert_eq!(next_pacific_midnight(t("2026-03-07T12:00:00Z")), t("2026-03-08T08:00:00Z"));
        // DST ends 2026-11-01: midnight of the 1st is PDT, of the 2nd PST.
        assert_eq!(next_pacific_midnight(t("2026-10-31T12:00:00Z")), t("2026-11-01T07:00:00Z"));
        assert_eq!(next_pacific_midnight(t("2026-11-01T12:00:00Z")), t("2026-11-02T08:00:00Z"));
    }
}
