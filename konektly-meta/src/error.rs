//! The Graph API's error envelope, its mapping to konektly's one public [`Error`], and the
//! usage headers (`X-App-Usage`, `X-Business-Use-Case-Usage`) that feed the engine's budgets.
//!
//! Errors are sorted by Meta's numeric `code` and `error_subcode` through one table
//! ([`classify`]), never by searching messages for words. The platform's error, with its
//! `fbtrace_id`, stays reachable as the `source` of the public error.

use std::fmt;

use chrono::{DateTime, Utc};
use konektly_core::api::ApiDialect;
use konektly_core::disposition::{Answered, Disposition, to_error};
use konektly_core::http::{ApiResponse, status_error};
use konektly_core::ratelimit::{BudgetScope, RateLimitReport};
use konektly_core::{CallKind, Error};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The body of a Graph API error: `{"error": {message, type, code, error_subcode, …}}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct GraphErrorBody {
    /// Meta's message (for developers).
    #[serde(default)]
    pub message: String,
    /// `OAuthException`, `GraphMethodException`…
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    /// The numeric code (`190`, `100`, `9007`…).
    #[serde(default)]
    pub code: Option<i64>,
    /// The subcode (`460`, `2207027`…).
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// A title meant for end users, when Meta gives one.
    #[serde(default)]
    pub error_user_title: Option<String>,
    /// A message meant for end users, when Meta gives one.
    #[serde(default)]
    pub error_user_msg: Option<String>,
    /// Meta's trace id: quote it when asking Meta for help.
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    /// Whether Meta says trying again may work.
    #[serde(default)]
    pub is_transient: Option<bool>,
    /// Extra data some errors carry (a video upload's expected offsets…).
    #[serde(default)]
    pub error_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphErrorBody,
}

/// The error body of `api.instagram.com/oauth/access_token`: `{error_type, code, error_message}`.
#[derive(Deserialize)]
struct InstagramOAuthError {
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_message: Option<String>,
}

/// A Graph API error as Meta sent it: the source of the public error konektly returns.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphApiError {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: GraphErrorBody,
}

impl GraphApiError {
    /// Parses an error response; `None` when the body is not Meta's envelope.
    pub fn parse(status: StatusCode, body: &[u8]) -> Option<Self> {
        if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
            return Some(Self { status: status.as_u16(), body: env.error });
        }
        let ig = serde_json::from_slice::<InstagramOAuthError>(body).ok()?;
        if ig.error_type.is_none() && ig.error_message.is_none() {
            return None;
        }
        Some(Self {
            status: status.as_u16(),
            body: GraphErrorBody {
                message: ig.error_message.unwrap_or_default(),
                error_type: ig.error_type,
                code: ig.code,
                ..GraphErrorBody::default()
            },
        })
    }

    /// `code` or `code/subcode`, as stored with a failed target.
    pub fn code_string(&self) -> String {
        match (self.body.code, self.body.error_subcode) {
            (Some(c), Some(s)) => format!("{c}/{s}"),
            (Some(c), None) => c.to_string(),
            (None, Some(s)) => format!("?/{s}"),
            (None, None) => format!("http {}", self.status),
        }
    }

    /// Meta's message for end users when it gives one, else its developer message.
    pub fn user_message(&self) -> &str {
        self.body.error_user_msg.as_deref().filter(|m| !m.is_empty()).unwrap_or(&self.body.message)
    }

    /// Whether this says "the media is not ready yet, keep polling" (9007 / 2207027).
    pub fn is_not_ready(&self) -> bool {
        classify(&self.body).1 == Some(NOT_READY)
    }
}

impl fmt::Display for GraphApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Graph API error {}: {}", self.code_string(), self.body.message)?;
        if let Some(t) = &self.body.fbtrace_id {
            write!(f, " (fbtrace_id {t})")?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphApiError {}

/// Why a 190 token error happened, by subcode, in words a user understands.
fn reauth_reason(subcode: Option<i64>) -> &'static str {
    match subcode {
        Some(458) => "the app was removed from the account",
        Some(459) => "Facebook checkpointed the account: the user must log in at facebook.com",
        Some(460) => "the password changed",
        Some(463) => "the access token expired",
        Some(464) => "the Facebook user is not confirmed",
        Some(467) => "the access token is invalid (the user logged out or it was revoked)",
        Some(492) => "the session is invalid (the user may no longer have a role on the Page)",
        Some(493) => "the user has not used the app for 90 days (data access expired)",
        _ => "the access token is invalid or was revoked",
    }
}

/// What the user reads of a "not ready yet" error (see [`GraphApiError::is_not_ready`]).
const NOT_READY: &str = "the media is not ready yet; keep polling";

/// The mapping table: one row per Graph error code (Meta's "Handling Errors" reference and the
/// Instagram publishing error codes; the adapter README lists them), subcodes first. Each row
/// gives the disposition and, where Meta's own message is not enough, what to tell the user
/// (for [`Disposition::Reauth`]: the reason, in words a user understands).
pub(crate) fn classify(e: &GraphErrorBody) -> (Disposition, Option<&'static str>) {
    use Disposition::*;
    const UNREACHABLE: &str = "Instagram could not fetch the media URL: it must be public (no login, no robots or \
        CDN block, the right Content-Type; JPEG for images)";
    let limited = RateLimited { retry_at: None, wait: None };
    let code = e.code.unwrap_or(0);
    let sub = e.error_subcode.unwrap_or(0);
    match (code, sub) {
        // Instagram subcodes that decide on their own, whatever the code.
        (_, 2207027) | (9007, _) => {
            (Transient { retry_after: Some(std::time::Duration::from_secs(10)) }, Some(NOT_READY))
        }
        (_, 2207052) | (9004, _) => (Reject, Some(UNREACHABLE)),
        (_, 2207042) => (limited, None),
        (_, 2207051) => (Reject, None), // flagged as spam
        (_, 2207001 | 2207003 | 2207008) => (ServerFailure, None),
        // Token and permission errors.
        (190, _) => (Reauth, Some(reauth_reason(e.error_subcode))),
        (102, _) => (Reauth, Some("the login session is no longer valid")),
        (10 | 200..=299, _) => (Reauth, Some("a permission was declined or removed: connect again and grant it")),
        // Throttling.
        (4 | 17 | 32 | 341 | 613 | 80000..=80014, _) => (limited, None),
        (368, _) => (Reject, Some("Meta temporarily blocked the account for policy reasons")),
        // Content errors.
        (100 | 506 | 1609005 | 352 | 36000..=36004 | 25, _) => (Reject, None),
        (_, 2207000..=2207999) => (Reject, None),
        // Passing failures.
        (1 | 2 | -1 | -2 | 6000, _) | (_, 1363030 | 1363019 | 1363037) => (ServerFailure, None),
        _ if e.is_transient == Some(true) => (ServerFailure, None),
        _ => (ByStatus, None),
    }
}

/// The earliest time Meta says access returns, from `X-Business-Use-Case-Usage`
/// (`estimated_time_to_regain_access`, in minutes), if any is above zero.
pub(crate) fn regain_access_at(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let buc = parse_buc(headers)?;
    let minutes = buc.iter().filter_map(|u| u.estimated_time_to_regain_access).max().filter(|m| *m > 0)?;
    // `try_minutes`, `checked_add`: an absurd estimate is no estimate (not a panic).
    now.checked_add_signed(chrono::Duration::try_minutes(minutes)?)
}

/// Meta's dialect of core's call pipeline: Graph (and Instagram Login) error bodies, their
/// table, and the usage headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MetaDialect {
    /// How long a nearly spent app budget is left alone (see `MetaBuilder::with_usage_cool_down`).
    pub usage_cool_down: std::time::Duration,
}

impl ApiDialect for MetaDialect {
    type ApiError = GraphApiError;

    fn parse_error(&self, answer: &ApiResponse) -> Option<GraphApiError> {
        if answer.is_success() { None } else { GraphApiError::parse(answer.status, &answer.body) }
    }

    fn classify(&self, error: GraphApiError, answer: &ApiResponse, kind: CallKind, what: &str) -> Error {
        map_graph_error(error, &answer.headers, kind, what)
    }

    fn unparsed_error(&self, answer: &ApiResponse, kind: CallKind, what: &str) -> Error {
        let status = answer.status;
        answer.status_error(kind, format!("{what}: Meta answered with status {status}"), None)
    }

    fn rate_limits(&self, headers: &HeaderMap, _what: &str) -> Vec<RateLimitReport> {
        usage_reports(headers, Utc::now(), self.usage_cool_down)
    }
}

/// Maps an error response to konektly's error. `what` names the call for people.
pub(crate) fn map_error(status: StatusCode, headers: &HeaderMap, body: &[u8], kind: CallKind, what: &str) -> Error {
    let Some(err) = GraphApiError::parse(status, body) else {
        return status_error(status, headers, kind, format!("{what}: Meta answered with status {status}"), None);
    };
    map_graph_error(err, headers, kind, what)
}

/// Maps a parsed Graph API error (see [`classify`]).
pub(crate) fn map_graph_error(err: GraphApiError, headers: &HeaderMap, kind: CallKind, what: &str) -> Error {
    let now = Utc::now();
    let trace = err.body.fbtrace_id.as_deref().map(|t| format!(" (fbtrace_id {t})")).unwrap_or_default();
    let detail = format!("{what}: {} [{}]{trace}", err.user_message(), err.code_string());
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let (disposition, advice) = classify(&err.body);
    let (disposition, message) = match (disposition, advice) {
        (Disposition::Reauth, reason) => {
            (Disposition::Reauth, format!("{}{trace}", reason.unwrap_or("the access token is invalid or was revoked")))
        }
        (Disposition::RateLimited { .. }, _) => {
            (Disposition::RateLimited { retry_at: regain_access_at(headers, now), wait: None }, detail)
        }
        (d, Some(advice)) => (d, format!("{what}: {advice}: {} [{}]{trace}", err.user_message(), err.code_string())),
        (d, None) => (d, detail),
    };
    // A refusal no row names keeps the status as its code, as core's status table does.
    let code = if disposition == Disposition::ByStatus { None } else { Some(err.code_string()) };
    let answered = Answered::new(status, headers, kind).at(now);
    to_error(disposition, &answered, code, message, Some(Box::new(err)))
}

/// The offsets a video upload should continue from, when Meta refused a chunk at the wrong
/// offset (subcode 1363037 with `error_data: {start_offset, end_offset}`).
pub(crate) fn expected_offsets(e: &Error) -> Option<(u64, u64)> {
    let g = graph_error(e)?;
    if g.body.error_subcode != Some(1363037) {
        return None;
    }
    let data = g.body.error_data.as_ref()?;
    let read = |k: &str| match data.get(k)? {
        serde_json::Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    };
    Some((read("start_offset")?, read("end_offset")?))
}

/// The Graph API error behind a konektly error, if there is one.
pub fn graph_error(e: &Error) -> Option<&GraphApiError> {
    std::error::Error::source(e)?.downcast_ref::<GraphApiError>()
}

#[derive(Debug, Deserialize)]
struct Usage {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    call_count: Option<f64>,
    #[serde(default)]
    total_cputime: Option<f64>,
    #[serde(default)]
    total_time: Option<f64>,
    #[serde(default)]
    estimated_time_to_regain_access: Option<i64>,
}

impl Usage {
    fn percent(&self) -> f64 {
        [self.call_count, self.total_cputime, self.total_time].into_iter().flatten().fold(0.0, f64::max)
    }
}

fn parse_buc(headers: &HeaderMap) -> Option<Vec<Usage>> {
    let raw = headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let map: std::collections::HashMap<String, Vec<Usage>> = serde_json::from_str(raw).ok()?;
    Some(map.into_values().flatten().collect())
}

/// How long an app-level bucket that reads 100% is treated as empty by default (Meta's window
/// is a rolling hour and says no reset time; see `MetaBuilder::with_usage_cool_down`).
pub(crate) const APP_USAGE_COOL_DOWN: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What the usage headers say, as reports for the engine's budgets: `X-App-Usage` (scope app)
/// and `X-Business-Use-Case-Usage` (scope account). Percentages become `remaining` out of 100;
/// a bucket with `estimated_time_to_regain_access` is empty until then.
pub(crate) fn usage_reports(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    cool_down: std::time::Duration,
) -> Vec<RateLimitReport> {
    let cool_down = chrono::Duration::from_std(cool_down).unwrap_or(chrono::Duration::minutes(15));
    let mut out = Vec::new();
    let remaining = |pct: f64| (100.0 - pct).clamp(0.0, 100.0).floor() as u32;
    if let Some(app) =
        headers.get("x-app-usage").and_then(|v| v.to_str().ok()).and_then(|raw| serde_json::from_str::<Usage>(raw).ok())
    {
        let left = remaining(app.percent());
        out.push(RateLimitReport {
            scope: BudgetScope::App,
            bucket: "app_usage".into(),
            limit: Some(100),
            remaining: left,
            reset_at: now + if left == 0 { cool_down } else { chrono::Duration::hours(1) },
        });
    }
    for u in parse_buc(headers).unwrap_or_default() {
        let eta = u.estimated_time_to_regain_access.unwrap_or(0);
        let left = if eta > 0 { 0 } else { remaining(u.percent()) };
        let reset_at = if eta > 0 {
            // An absurd estimate (minutes beyond the calendar) is read as "not before long".
            chrono::Duration::try_minutes(eta)
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        } else if left == 0 {
            now + cool_down
        } else {
            now + chrono::Duration::hours(1)
        };
        out.push(RateLimitReport {
            scope: BudgetScope::Account,
            bucket: format!("business_use_case:{}", u.kind.as_deref().unwrap_or("unknown")),
            limit: Some(100),
            remaining: left,
            reset_at,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn body(code: i64, sub: Option<i64>) -> Vec<u8> {
        let mut e = serde_json::json!({
            "message": "dev message", "type": "OAuthException", "code": code,
            "error_user_msg": "user message", "fbtrace_id": "AbCdTrace123"
        });
        if let Some(s) = sub {
            e["error_subcode"] = s.into();
        }
        serde_json::to_vec(&serde_json::json!({ "error": e })).unwrap()
    }

    fn map(code: i64, sub: Option<i64>) -> Error {
        map_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), &body(code, sub), CallKind::Create, "publishing")
    }

    fn buc_headers(minutes: i64) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!(
            r#"{{"1234":[{{"type":"pages","call_count":100,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":{minutes}}}]}}"#
        );
        h.insert("x-business-use-case-usage", HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn row_190_with_each_subcode_is_reauth_with_its_reason() {
        for (sub, words) in [
            (Some(458), "app was removed"),
            (Some(459), "checkpointed"),
            (Some(460), "password changed"),
            (Some(463), "expired"),
            (Some(464), "not confirmed"),
            (Some(467), "logged out"),
            (Some(492), "session is invalid"),
            (Some(493), "90 days"),
            (None, "invalid or was revoked"),
        ] {
            match map(190, sub) {
                Error::ReauthRequired { reason, source } => {
                    assert!(reason.contains(words), "{sub:?}: {reason}");
                    assert!(reason.contains("AbCdTrace123"), "the fbtrace_id stays: {reason}");
                    let g = source.unwrap().downcast::<GraphApiError>().unwrap();
                    assert_eq!(g.body.error_subcode, sub);
                }
                other => panic!("190/{sub:?} → {other:?}"),
            }
        }
    }

    #[test]
    fn row_rate_limits_use_the_regain_time_of_the_buc_header() {
        for code in [4, 17, 32, 613, 80001] {
            let before = Utc::now();
            let e = map_error(StatusCode::BAD_REQUEST, &buc_headers(7), &body(code, None), CallKind::Create, "x");
            match e {
                Error::RateLimited { retry_at: Some(at), .. } => {
                    let d = at - before;
                    assert!(d >= chrono::Duration::minutes(7) && d < chrono::Duration::minutes(8), "{code}: {d}");
                }
                other => panic!("{code} → {other:?}"),
            }
        }
        // Without the header there is no time, but it is still a rate limit.
        assert!(matches!(map(4, None), Error::RateLimited { retry_at: None, .. }));
    }

    #[test]
    fn row_9007_and_2207027_keep_polling() {
        for (code, sub) in [(9007, Some(2207027)), (9007, None), (1, Some(2207027))] {
            let raw = body(code, sub);
            let g = GraphApiError::parse(StatusCode::BAD_REQUEST, &raw).unwrap();
            assert!(g.is_not_ready(), "{code}/{sub:?}");
            assert!(matches!(map(code, sub), Error::Transient { .. }));
        }
    }

    #[test]
    fn row_9004_and_2207052_say_the_url_must_be_public() {
        for (code, sub) in [(9004, Some(2207052)), (9004, None), (1, Some(2207052))] {
            match map(code, sub) {
                Error::Rejected { message, .. } => {
                    assert!(
                        message.contains("could not fetch the media URL") && message.contains("public"),
                        "{message}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn row_2207042_publishing_limit_is_rate_limited() {
        assert!(matches!(map(9, Some(2207042)), Error::RateLimited { .. }));
    }

    #[test]
    fn row_368_blocked_is_rejected() {
        match map(368, None) {
            Error::Rejected { code, message, .. } => {
                assert_eq!(code.as_deref(), Some("368"));
                assert!(message.contains("blocked"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn row_1_2_and_is_transient_are_transient() {
        assert!(matches!(map(1, None), Error::Transient { .. }));
        assert!(matches!(map(2, None), Error::Transient { .. }));
        let raw = br#"{"error":{"message":"try later","code":12345,"is_transient":true}}"#;
        let e = map_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), raw, CallKind::Create, "x");
        assert!(matches!(e, Error::Transient { .. }), "{e:?}");
    }

    #[test]
    fn a_server_error_on_a_create_is_an_unknown_outcome() {
        let raw = body(2, None);
        let e = map_error(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new(), &raw, CallKind::Create, "x");
        assert!(matches!(e, Error::UnknownOutcome { .. }), "{e:?}");
        let e = map_error(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new(), &raw, CallKind::Idempotent, "x");
        assert!(matches!(e, Error::Transient { .. }), "{e:?}");
    }

    #[test]
    fn row_100_and_2207xxx_are_rejected_with_the_user_message() {
        for (code, sub) in [(100, None), (100, Some(2207089)), (36003, Some(2207009)), (352, Some(2207026))] {
            match map(code, sub) {
                Error::Rejected { code: c, message, .. } => {
                    assert!(message.contains("user message"), "{message}");
                    assert!(c.unwrap().starts_with(&code.to_string()));
                }
                other => panic!("{code}/{sub:?} → {other:?}"),
            }
        }
    }

    #[test]
    fn row_permissions_are_reauth() {
        assert!(matches!(map(10, None), Error::ReauthRequired { .. }));
        assert!(matches!(map(200, None), Error::ReauthRequired { .. }));
    }

    #[test]
    fn unknown_codes_fall_back_to_the_status() {
        let raw = br#"{"error":{"message":"odd","code":987654}}"#;
        let e = map_error(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), raw, CallKind::Idempotent, "x");
        assert!(matches!(e, Error::Transient { .. }));
        let e = map_error(StatusCode::NOT_FOUND, &HeaderMap::new(), b"<html>", CallKind::Idempotent, "x");
        assert!(matches!(e, Error::Rejected { .. }));
    }

    #[test]
    fn fbtrace_id_is_kept_in_message_and_source() {
        let e = map(100, None);
        assert!(e.to_string().contains("AbCdTrace123"));
        assert_eq!(graph_error(&e).unwrap().body.fbtrace_id.as_deref(), Some("AbCdTrace123"));
    }

    #[test]
    fn instagram_oauth_errors_parse() {
        let raw = br#"{"error_type":"OAuthException","code":400,"error_message":"Invalid authorization code"}"#;
        let g = GraphApiError::parse(StatusCode::BAD_REQUEST, raw).unwrap();
        assert_eq!(g.body.message, "Invalid authorization code");
    }

    #[test]
    fn usage_headers_become_reports() {
        let now = Utc::now();
        let mut h = buc_headers(0);
        h.insert("x-app-usage", HeaderValue::from_static(r#"{"call_count":28,"total_time":25,"total_cputime":25}"#));
        let r = usage_reports(&h, now, APP_USAGE_COOL_DOWN);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].scope, r[0].remaining), (BudgetScope::App, 72));
        assert_eq!((r[1].scope, r[1].remaining), (BudgetScope::Account, 0));
        assert_eq!(r[1].bucket, "business_use_case:pages");
        let r = usage_reports(&buc_headers(30), now, APP_USAGE_COOL_DOWN);
        assert_eq!(r[0].remaining, 0);
        assert_eq!(r[0].reset_at, now + chrono::Duration::minutes(30));
    }
}
