//! X's error bodies (problem JSON with `type`/`title`/`detail`/`status`, and the legacy
//! `errors: [{code, message}]`), the table that sorts them into konektly's [`Error`] kinds, and
//! the rate-limit headers.

use std::fmt;

use chrono::{DateTime, Utc};
use konektly_core::api::ApiDialect;
use konektly_core::disposition::{Answered, Disposition, to_error};
use konektly_core::http::{ApiResponse, header_epoch, header_u64, retry_at};
use konektly_core::ratelimit::{BudgetScope, RateLimitReport};
use konektly_core::{CallKind, Error};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The problem type URI prefixes X uses.
const PROBLEM_PREFIXES: [&str; 2] = ["https://api.x.com/2/problems/", "https://api.twitter.com/2/problems/"];

/// The exact `detail` X sends when a post repeats a recent one.
const DUPLICATE_DETAILS: [&str; 2] = [
    "You are not allowed to create a Tweet with duplicate content.",
    "You are not allowed to create a Post with duplicate content.",
];

/// An error answered by the X API. Reachable as the `source` of konektly's errors.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct XApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub http_status: u16,
    /// Problem `type` URI (`https://api.x.com/2/problems/usage-capped`, `about:blank`…).
    #[serde(default, rename = "type")]
    pub problem_type: Option<String>,
    /// Problem `title`.
    #[serde(default)]
    pub title: Option<String>,
    /// Problem `detail`.
    #[serde(default)]
    pub detail: Option<String>,
    /// Legacy or nested errors.
    #[serde(default)]
    pub errors: Vec<XErrorEntry>,
}

/// One entry of `errors`: legacy `{code, message}` or a nested problem.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct XErrorEntry {
    /// Legacy numeric code (88 rate limit, 187 duplicate…).
    #[serde(default)]
    pub code: Option<i64>,
    /// Legacy message.
    #[serde(default)]
    pub message: Option<String>,
    /// Nested problem `type`.
    #[serde(default, rename = "type")]
    pub problem_type: Option<String>,
    /// Nested problem `title`.
    #[serde(default)]
    pub title: Option<String>,
    /// Nested problem `detail`.
    #[serde(default)]
    pub detail: Option<String>,
}

impl XApiError {
    /// Parses a body; a body that is not JSON keeps only the status.
    pub fn parse(status: u16, body: &[u8]) -> Self {
        let mut e: XApiError = serde_json::from_slice(body).unwrap_or_default();
        e.http_status = status;
        e
    }

    /// The problem type without its URI prefix (`usage-capped`), or `about:blank`.
    pub fn short_type(&self) -> Option<&str> {
        let t = self.problem_type.as_deref().or_else(|| self.errors.iter().find_map(|e| e.problem_type.as_deref()))?;
        Some(PROBLEM_PREFIXES.iter().find_map(|p| t.strip_prefix(p)).unwrap_or(t))
    }

    /// The legacy codes.
    pub fn codes(&self) -> impl Iterator<Item = i64> + '_ {
        self.errors.iter().filter_map(|e| e.code)
    }

    /// What X said, for people.
    pub fn message(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        match (&self.title, &self.detail) {
            (Some(t), Some(d)) if t != d => parts.push(format!("{t}: {d}")),
            (_, Some(d)) => parts.push(d.clone()),
            (Some(t), None) => parts.push(t.clone()),
            _ => {}
        }
        for e in &self.errors {
            let m = e.message.as_ref().or(e.detail.as_ref()).or(e.title.as_ref());
            match (e.code, m) {
                (Some(c), Some(m)) => parts.push(format!("{m} (code {c})")),
                (None, Some(m)) if !parts.contains(m) => parts.push(m.clone()),
                _ => {}
            }
        }
        if parts.is_empty() {
            parts.push(format!("status {}", self.http_status));
        }
        parts.join("; ")
    }
}

impl fmt::Display for XApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X API error {}: {}", self.http_status, self.message())
    }
}

impl std::error::Error for XApiError {}

/// One row of the table: every given field must match; the first matching row wins.
pub(crate) struct Row {
    status: Option<u16>,
    problem_type: Option<&'static str>,
    title: Option<&'static str>,
    detail: Option<&'static str>,
    code: Option<i64>,
    /// What konektly does.
    pub then: Disposition,
    /// The code a refusal is stored with, when the row fixes it.
    stored_code: Option<&'static str>,
    /// What konektly adds to X's words.
    advice: Option<&'static str>,
    /// When a spent limit returns, from X's headers (rate-limit rows).
    reset: fn(&HeaderMap) -> Option<DateTime<Utc>>,
    /// The resource does not exist (or is not visible): a delete of it is done already.
    pub gone: bool,
}

const ANY: Row = Row {
    status: None,
    problem_type: None,
    title: None,
    detail: None,
    code: None,
    then: Disposition::Reject,
    stored_code: None,
    advice: None,
    reset: |_| None,
    gone: false,
};

/// A refused token: the engine refreshes once, then asks for reconnection.
const TOKEN: Row = Row { then: Disposition::RefreshToken, ..ANY };
/// The same text was posted recently: the post is probably there already.
const DUPLICATE: Row = Row {
    then: Disposition::Duplicate,
    stored_code: Some("duplicate-content"),
    advice: Some("X refused it as a duplicate: the post is probably there already"),
    ..ANY
};
/// A usage cap (daily or monthly) is spent: back at the 24-hour reset.
const USAGE_CAPPED: Row = Row {
    then: Disposition::RateLimited { retry_at: None, wait: None },
    reset: |h| daily_reset(h).or_else(|| header_epoch(h, "x-rate-limit-reset")),
    ..ANY
};
/// A rate-limit window is spent: back at its reset.
const RATE_LIMITED: Row = Row {
    then: Disposition::RateLimited { retry_at: None, wait: None },
    reset: |h| header_epoch(h, "x-rate-limit-reset").or_else(|| retry_at(h)).or_else(|| daily_reset(h)),
    ..ANY
};
/// The resource does not exist (or is not visible).
const NOT_FOUND: Row = Row { gone: true, ..ANY };

/// X's errors, first matching row wins; statuses not listed fall back to 5xx → the status
/// decides (a create may have landed), other 4xx → refused.
const TABLE: &[Row] = &[
    Row { status: Some(401), ..TOKEN },
    // Legacy "Invalid or expired token".
    Row { code: Some(89), ..TOKEN },
    Row { status: Some(403), detail: Some(DUPLICATE_DETAILS[0]), ..DUPLICATE },
    Row { status: Some(403), detail: Some(DUPLICATE_DETAILS[1]), ..DUPLICATE },
    // Legacy "Status is a duplicate."
    Row { code: Some(187), ..DUPLICATE },
    Row { status: Some(429), problem_type: Some("usage-capped"), ..USAGE_CAPPED },
    Row { status: Some(429), title: Some("UsageCapExceeded"), ..USAGE_CAPPED },
    Row { status: Some(429), ..RATE_LIMITED },
    // Legacy "Rate limit exceeded", whatever the status.
    Row { code: Some(88), ..RATE_LIMITED },
    // An upload chunk over X's edge limit.
    Row {
        status: Some(413),
        stored_code: Some("413"),
        advice: Some("X refused the request as too large; upload chunks must be 1–4 MiB"),
        ..ANY
    },
    Row { status: Some(404), ..NOT_FOUND },
    Row { problem_type: Some("resource-not-found"), ..NOT_FOUND },
];

/// An error no row names: a server error (the status decides), else a refusal.
const SERVER_ERROR: Row = Row { then: Disposition::ByStatus, ..ANY };
const REFUSED: Row = ANY;

/// The row of the table an error answer matches.
pub(crate) fn classify(e: &XApiError) -> &'static Row {
    let short = e.short_type();
    for row in TABLE {
        let ok = row.status.is_none_or(|s| s == e.http_status)
            && row.problem_type.is_none_or(|t| short == Some(t))
            && row.title.is_none_or(|t| e.title.as_deref() == Some(t))
            && row.detail.is_none_or(|d| {
                e.detail.as_deref() == Some(d) || e.errors.iter().any(|x| x.detail.as_deref() == Some(d))
            })
            && row.code.is_none_or(|c| e.codes().any(|x| x == c));
        if ok {
            return row;
        }
    }
    if e.http_status >= 500 { &SERVER_ERROR } else { &REFUSED }
}

/// The code a refusal of `api` is stored with: the row's, else (a missing resource) the problem
/// type, else the problem type, legacy code or status.
fn stored_code(row: &Row, api: &XApiError, status: StatusCode) -> String {
    if let Some(code) = row.stored_code {
        return code.to_owned();
    }
    if row.gone {
        return api.short_type().unwrap_or("resource-not-found").to_owned();
    }
    api.short_type()
        .filter(|t| *t != "about:blank")
        .map(str::to_owned)
        .or_else(|| api.codes().next().map(|c| c.to_string()))
        .unwrap_or_else(|| status.as_u16().to_string())
}

/// X's dialect of core's call pipeline: error bodies, their table, the rate-limit headers.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct XDialect;

impl ApiDialect for XDialect {
    type ApiError = XApiError;

    fn parse_error(&self, answer: &ApiResponse) -> Option<XApiError> {
        (!answer.is_success()).then(|| XApiError::parse(answer.status.as_u16(), &answer.body))
    }

    fn classify(&self, error: XApiError, answer: &ApiResponse, kind: CallKind, what: &str) -> Error {
        map_api_error(error, answer.status, &answer.headers, kind, what)
    }

    fn rate_limits(&self, headers: &HeaderMap, what: &str) -> Vec<RateLimitReport> {
        rate_limit_reports(headers, what)
    }
}

/// The error for an answer with an error status.
pub(crate) fn map_error(status: StatusCode, headers: &HeaderMap, body: &[u8], call: CallKind, what: &str) -> Error {
    map_api_error(XApiError::parse(status.as_u16(), body), status, headers, call, what)
}

/// The error for X's error `api`, answered with `status` and `headers`.
fn map_api_error(api: XApiError, status: StatusCode, headers: &HeaderMap, call: CallKind, what: &str) -> Error {
    let row = classify(&api);
    let then = match row.then {
        Disposition::RateLimited { wait, .. } => Disposition::RateLimited { retry_at: (row.reset)(headers), wait },
        then => then,
    };
    let mut message = format!("{what}: {}", api.message());
    if let Some(advice) = row.advice {
        message.push_str(&format!(" ({advice})"));
    }
    // The server errors keep the status as their code, as core's status table does.
    let code = (then != Disposition::ByStatus).then(|| stored_code(row, &api, status));
    to_error(then, &Answered::new(status, headers, call), code, message, Some(Box::new(api)))
}

/// When a spent 24-hour cap resets: the user's, else the app's, else whichever is reported.
fn daily_reset(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let spent = |scope: &str| header_u64(headers, &format!("x-{scope}-limit-24hour-remaining")) == Some(0);
    let reset = |scope: &str| header_epoch(headers, &format!("x-{scope}-limit-24hour-reset"));
    match (spent("user"), spent("app")) {
        (true, true) => reset("user").max(reset("app")),
        (true, false) => reset("user"),
        (false, true) => reset("app"),
        (false, false) => reset("user").or_else(|| reset("app")),
    }
}

/// What a response's headers say about X's rate limits: the endpoint window
/// (`x-rate-limit-*`, per user), and the 24-hour caps per user and per app.
pub(crate) fn rate_limit_reports(headers: &HeaderMap, bucket: &str) -> Vec<RateLimitReport> {
    let mut out = Vec::new();
    let mut read = |prefix: &str, scope: BudgetScope, bucket: String| {
        let remaining = header_u64(headers, &format!("{prefix}-remaining"));
        let reset = header_epoch(headers, &format!("{prefix}-reset"));
        if let (Some(remaining), Some(reset_at)) = (remaining, reset) {
            out.push(RateLimitReport {
                scope,
                bucket,
                limit: header_u64(headers, &format!("{prefix}-limit")).and_then(|l| u32::try_from(l).ok()),
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                reset_at,
            });
        }
    };
    read("x-rate-limit", BudgetScope::Account, bucket.to_owned());
    read("x-user-limit-24hour", BudgetScope::Account, "24hour".to_owned());
    read("x-app-limit-24hour", BudgetScope::App, "24hour".to_owned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn map(status: u16, body: &str, h: &HeaderMap, call: CallKind) -> Error {
        map_error(StatusCode::from_u16(status).unwrap(), h, body.as_bytes(), call, "POST /2/tweets")
    }

    fn source_of(e: &Error) -> &XApiError {
        std::error::Error::source(e).and_then(|s| s.downcast_ref::<XApiError>()).expect("X's error is the source")
    }

    // One test per row of the table, plus the fallbacks.

    #[test]
    fn row_401_problem_is_a_refused_token() {
        let body = r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#;
        let e = map(401, body, &HeaderMap::new(), CallKind::Create);
        assert!(matches!(e, Error::AccessTokenRejected { .. }), "{e:?}");
        assert_eq!(source_of(&e).http_status, 401);
    }

    #[test]
    fn row_legacy_code_89_is_a_refused_token() {
        let body = r#"{"errors":[{"code":89,"message":"Invalid or expired token."}]}"#;
        assert!(matches!(map(400, body, &HeaderMap::new(), CallKind::Idempotent), Error::AccessTokenRejected { .. }));
    }

    #[test]
    fn row_403_duplicate_tweet_means_reconcile() {
        let body = r#"{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#;
        let e = map(403, body, &HeaderMap::new(), CallKind::Create);
        assert!(matches!(e, Error::UnknownOutcome { .. }), "{e:?}");
        assert!(e.to_string().contains("duplicate content"));
    }

    #[test]
    fn row_403_duplicate_post_wording_means_reconcile() {
        let body = r#"{"detail":"You are not allowed to create a Post with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#;
        assert!(matches!(map(403, body, &HeaderMap::new(), CallKind::Create), Error::UnknownOutcome { .. }));
    }

    #[test]
    fn row_legacy_187_duplicate_means_reconcile() {
        let body = r#"{"errors":[{"code":187,"message":"Status is a duplicate."}]}"#;
        assert!(matches!(map(403, body, &HeaderMap::new(), CallKind::Create), Error::UnknownOutcome { .. }));
    }

    #[test]
    fn other_403_is_rejected_with_xs_message() {
        let body = r#"{"detail":"You are not permitted to perform this action.","type":"about:blank","title":"Forbidden","status":403}"#;
        let e = map(403, body, &HeaderMap::new(), CallKind::Create);
        assert!(matches!(&e, Error::Rejected { code: Some(c), .. } if c == "403"), "{e:?}");
        assert!(e.to_string().contains("You are not permitted to perform this action."));
    }

    #[test]
    fn row_429_usage_capped_waits_for_the_24_hour_reset() {
        let body = r#"{"title":"UsageCapExceeded","detail":"Usage cap exceeded: Monthly product cap","type":"https://api.twitter.com/2/problems/usage-capped","period":"Monthly","scope":"Product"}"#;
        let h = headers(&[
            ("x-rate-limit-remaining", "99"),
            ("x-rate-limit-reset", "1900000000"),
            ("x-user-limit-24hour-remaining", "0"),
            ("x-user-limit-24hour-reset", "1900050000"),
        ]);
        let e = map(429, body, &h, CallKind::Create);
        let Error::RateLimited { retry_at, .. } = e else { panic!("{e:?}") };
        assert_eq!(retry_at, DateTime::from_timestamp(1_900_050_000, 0));
    }

    #[test]
    fn row_429_usage_capped_by_title_only() {
        let body = r#"{"title":"UsageCapExceeded","detail":"Usage cap exceeded"}"#;
        let h = headers(&[("x-app-limit-24hour-remaining", "0"), ("x-app-limit-24hour-reset", "1900070000")]);
        let Error::RateLimited { retry_at, .. } = map(429, body, &h, CallKind::Create) else { panic!() };
        assert_eq!(retry_at, DateTime::from_timestamp(1_900_070_000, 0));
    }

    #[test]
    fn row_429_rate_limit_waits_for_x_rate_limit_reset() {
        let body = r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#;
        let h = headers(&[("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "1900000000")]);
        let Error::RateLimited { retry_at, .. } = map(429, body, &h, CallKind::Create) else { panic!() };
        assert_eq!(retry_at, DateTime::from_timestamp(1_900_000_000, 0));
    }

    #[test]
    fn row_legacy_code_88_is_rate_limited() {
        let body = r#"{"errors":[{"code":88,"message":"Rate limit exceeded"}]}"#;
        let h = headers(&[("x-rate-limit-reset", "1900000100")]);
        let e = map(429, body, &h, CallKind::Idempotent);
        let Error::RateLimited { retry_at, .. } = &e else { panic!("{e:?}") };
        assert_eq!(*retry_at, DateTime::from_timestamp(1_900_000_100, 0));
        assert!(e.to_string().contains("Rate limit exceeded (code 88)"));
    }

    #[test]
    fn row_413_is_rejected_with_a_chunk_hint() {
        let e = map(413, "", &HeaderMap::new(), CallKind::Idempotent);
        assert!(matches!(&e, Error::Rejected { code: Some(c), .. } if c == "413"));
        assert!(e.to_string().contains("1–4 MiB"));
    }

    #[test]
    fn row_404_is_not_found() {
        let body = r#"{"errors":[{"resource_id":"1","parameter":"id","resource_type":"tweet","section":"data","title":"Not Found Error","value":"1","detail":"Could not find tweet with id: [1].","type":"https://api.x.com/2/problems/resource-not-found"}],"title":"Not Found","type":"about:blank","status":404}"#;
        assert!(classify(&XApiError::parse(404, body.as_bytes())).gone);
        let e = map(404, body, &HeaderMap::new(), CallKind::Idempotent);
        assert!(matches!(&e, Error::Rejected { code: Some(c), .. } if c == "about:blank" || c == "resource-not-found"));
    }

    #[test]
    fn row_resource_not_found_type_on_200_shape() {
        let body = r#"{"errors":[{"type":"https://api.x.com/2/problems/resource-not-found","title":"Not Found Error","detail":"gone"}]}"#;
        assert!(classify(&XApiError::parse(400, body.as_bytes())).gone);
    }

    #[test]
    fn fallback_5xx_is_transient_or_unknown_for_a_create() {
        let body =
            r#"{"title":"Internal Server Error","type":"about:blank","status":500,"detail":"Internal Server Error"}"#;
        assert!(matches!(map(500, body, &HeaderMap::new(), CallKind::Idempotent), Error::Transient { .. }));
        assert!(matches!(map(500, body, &HeaderMap::new(), CallKind::Create), Error::UnknownOutcome { .. }));
        assert!(matches!(map(502, "<html>", &HeaderMap::new(), CallKind::Create), Error::UnknownOutcome { .. }));
    }

    #[test]
    fn fallback_400_invalid_request_is_rejected_with_the_problem_type() {
        let body = r#"{"errors":[{"parameters":{"poll.duration_minutes":["2"]},"message":"poll.duration_minutes: 2 is not between 5 and 10080"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.x.com/2/problems/invalid-request"}"#;
        let e = map(400, body, &HeaderMap::new(), CallKind::Create);
        assert!(matches!(&e, Error::Rejected { code: Some(c), .. } if c == "invalid-request"), "{e:?}");
        assert!(e.to_string().contains("is not between 5 and 10080"));
    }

    #[test]
    fn headers_become_rate_limit_reports() {
        let h = headers(&[
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "97"),
            ("x-rate-limit-reset", "1900000000"),
            ("x-user-limit-24hour-limit", "100"),
            ("x-user-limit-24hour-remaining", "0"),
            ("x-user-limit-24hour-reset", "1900050000"),
            ("x-app-limit-24hour-limit", "10000"),
            ("x-app-limit-24hour-remaining", "9000"),
            ("x-app-limit-24hour-reset", "1900060000"),
        ]);
        let r = rate_limit_reports(&h, "POST /2/tweets");
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].scope, r[0].remaining, r[0].limit), (BudgetScope::Account, 97, Some(100)));
        assert_eq!(r[0].bucket, "POST /2/tweets");
        assert_eq!((r[1].scope, r[1].remaining), (BudgetScope::Account, 0));
        assert_eq!(r[1].reset_at, DateTime::from_timestamp(1_900_050_000, 0).unwrap());
        assert_eq!((r[2].scope, r[2].remaining, r[2].limit), (BudgetScope::App, 9000, Some(10000)));
        assert!(rate_limit_reports(&HeaderMap::new(), "x").is_empty());
    }
}
