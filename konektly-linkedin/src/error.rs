//! LinkedIn's errors and how they map to [`konektly_core::Error`]: the Rest.li error body
//! `{"status", "serviceErrorCode", "code", "message"}` (validation errors add
//! `errorDetails.inputErrors[].code`, such as `DUPLICATE_POST`), one table of rows →
//! [`Disposition`], a test per row. LinkedIn sends no rate-limit headers and no `Retry-After`:
//! its limits are daily, per app and per member, reset at midnight UTC.

use std::time::Duration;

use konektly_core::api::ApiDialect;
use konektly_core::disposition::{Answered, Disposition, to_error};
use konektly_core::http::ApiResponse;
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_core::{CallKind, Error};

use crate::model::ErrorBody;

/// An error LinkedIn answered with. Reachable as the `source` of the [`konektly_core::Error`]
/// it maps to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("LinkedIn error {} (HTTP {status}{}): {message}", code.as_deref().unwrap_or("-"), service_suffix(.service_error_code))]
pub struct LinkedInApiError {
    /// The HTTP status.
    pub status: u16,
    /// `code` (`REVOKED_ACCESS_TOKEN`…) or, for validation errors, the first input error's code
    /// (`DUPLICATE_POST`).
    pub code: Option<String>,
    /// `serviceErrorCode` (`65601`…).
    pub service_error_code: Option<i64>,
    /// `message` (and the input errors' descriptions).
    pub message: String,
}

fn service_suffix(code: &Option<i64>) -> String {
    code.map(|c| format!(", serviceErrorCode {c}")).unwrap_or_default()
}

impl LinkedInApiError {
    /// The URN a `DUPLICATE_POST` names (`…Content is a duplicate of urn:li:share:7141…`).
    pub fn duplicate_of(&self) -> Option<String> {
        for prefix in ["urn:li:share:", "urn:li:ugcPost:"] {
            if let Some(at) = self.message.find(prefix) {
                let digits: String =
                    self.message[at + prefix.len()..].chars().take_while(char::is_ascii_digit).collect();
                if !digits.is_empty() {
                    return Some(format!("{prefix}{digits}"));
                }
            }
        }
        None
    }

    fn is_duplicate(&self) -> bool {
        self.code.as_deref() == Some("DUPLICATE_POST") || self.message.contains("Duplicate post")
    }
}

/// How long to wait after a 429, which says nothing of when to come back.
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);

/// The error of an answer whose body is LinkedIn's error.
pub(crate) fn parse(answer: &ApiResponse) -> Option<LinkedInApiError> {
    if answer.is_success() {
        return None;
    }
    let body: ErrorBody = serde_json::from_slice(&answer.body).ok()?;
    let inputs = body.error_details.map(|d| d.input_errors).unwrap_or_default();
    let input_code = inputs.iter().find_map(|e| e.code.clone().filter(|c| !c.is_empty()));
    let mut message = body.message.unwrap_or_default();
    for d in inputs.iter().filter_map(|e| e.description.as_deref()) {
        message.push_str(&format!(" ({d})"));
    }
    let code = input_code.or(body.code.filter(|c| !c.is_empty()));
    if code.is_none() && body.service_error_code.is_none() && message.is_empty() {
        return None;
    }
    Some(LinkedInApiError {
        status: body.status.unwrap_or(answer.status.as_u16()),
        code,
        service_error_code: body.service_error_code,
        message,
    })
}

/// The table: an error's disposition and what to tell the user. `None`: not a disposition but a
/// configuration error (a sunset `LinkedIn-Version`).
pub(crate) fn row_for(err: &LinkedInApiError) -> Option<(Disposition, &'static str)> {
    use Disposition::*;
    let code = err.code.as_deref().unwrap_or("");
    let msg = err.message.to_ascii_lowercase();
    Some(match (err.status, code, err.service_error_code) {
        (426, _, _) | (_, "NONEXISTENT_VERSION", _) => return None,
        // Revoked — also seen spuriously seconds after a consent: refreshed (or retried) once,
        // then the account is reconnected.
        (_, "REVOKED_ACCESS_TOKEN", _) | (_, _, Some(65601)) => (RefreshToken, "LinkedIn says the token was revoked"),
        (_, "EXPIRED_ACCESS_TOKEN", _) | (_, _, Some(65602)) => (RefreshToken, "the access token expired"),
        (_, "INVALID_ACCESS_TOKEN", _) | (_, _, Some(65600)) => (RefreshToken, "the access token is invalid"),
        (401, _, _) => (RefreshToken, "LinkedIn refused the access token"),
        _ if err.is_duplicate() => (Duplicate, "LinkedIn already has a post with this content"),
        (403, _, _) | (_, "ACCESS_DENIED", _) => (
            Reject,
            "LinkedIn refused the permission: the account did not grant the scope this needs (w_member_social to \
             post, r_member_social to read posts), or the member lacks the Page role",
        ),
        _ if msg.contains("not owned by the author") => {
            (Reject, "the media belongs to another author than the post (the upload's owner must be the author)")
        }
        (429, _, _) => (
            RateLimited { retry_at: None, wait: None },
            "LinkedIn's daily limit (per app or per member) was reached; it resets at midnight UTC",
        ),
        (422, _, _) | (400, _, _) => (Reject, "LinkedIn refused the request"),
        (404, _, _) => (Reject, "LinkedIn has no such object"),
        (500..=599, _, _) => (ServerFailure, "LinkedIn failed"),
        _ => (ByStatus, "unexpected error"),
    })
}

/// Maps a LinkedIn error (`what` names the call for people).
pub(crate) fn map_error(
    err: LinkedInApiError,
    headers: &HeaderMap,
    kind: CallKind,
    what: &str,
    wait: Duration,
) -> Error {
    let Some((disposition, advice)) = row_for(&err) else {
        return Error::Config(format!(
            "{what}: LinkedIn no longer serves this API version (HTTP 426 NONEXISTENT_VERSION): set a current \
             LinkedIn-Version (KONEKTLY_LINKEDIN_VERSION, YYYYMM) ({err})"
        ));
    };
    let disposition = match disposition {
        Disposition::RateLimited { retry_at, .. } => Disposition::RateLimited { retry_at, wait: Some(wait) },
        d => d,
    };
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut message = format!("{what}: {advice}");
    if !err.message.is_empty() {
        message.push_str(&format!(" (LinkedIn said: {})", err.message));
    }
    let code = err.code.clone().or_else(|| err.service_error_code.map(|c| c.to_string()));
    to_error(disposition, &Answered::new(status, headers, kind), code, message, Some(Box::new(err)))
}

/// LinkedIn's dialect of core's call pipeline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkedInDialect {
    pub rate_limit_wait: Duration,
}

impl ApiDialect for LinkedInDialect {
    type ApiError = LinkedInApiError;

    fn parse_error(&self, answer: &ApiResponse) -> Option<LinkedInApiError> {
        parse(answer)
    }

    fn classify(&self, error: LinkedInApiError, answer: &ApiResponse, kind: CallKind, what: &str) -> Error {
        map_error(error, &answer.headers, kind, what, self.rate_limit_wait)
    }

    fn unparsed_error(&self, answer: &ApiResponse, kind: CallKind, what: &str) -> Error {
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            let err = LinkedInApiError { status: 429, code: None, service_error_code: None, message: String::new() };
            return map_error(err, &answer.headers, kind, what, self.rate_limit_wait);
        }
        if answer.status.as_u16() == 426 {
            let err = LinkedInApiError { status: 426, code: None, service_error_code: None, message: String::new() };
            return map_error(err, &answer.headers, kind, what, self.rate_limit_wait);
        }
        answer.status_error(kind, format!("{what}: LinkedIn answered status {}", answer.status), None)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn err(status: u16, code: Option<&str>, service: Option<i64>, message: &str) -> LinkedInApiError {
        LinkedInApiError { status, code: code.map(Into::into), service_error_code: service, message: message.into() }
    }

    fn map(e: LinkedInApiError, kind: CallKind) -> Error {
        map_error(e, &HeaderMap::new(), kind, "POST /rest/posts", DEFAULT_RATE_LIMIT_WAIT)
    }

    #[test]
    fn the_error_body_is_read_with_its_input_errors() {
        let body = r#"{"errorDetailType":"com.linkedin.common.error.BadRequest","message":"Content is a duplicate of urn:li:share:7141","errorDetails":{"inputErrors":[{"description":"Duplicate post is detected","input":{},"code":"DUPLICATE_POST"}]},"status":422}"#;
        let answer = ApiResponse {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec().into(),
        };
        let e = parse(&answer).unwrap();
        assert_eq!(e.code.as_deref(), Some("DUPLICATE_POST"));
        assert_eq!(e.duplicate_of().as_deref(), Some("urn:li:share:7141"));
        assert!(e.message.contains("Duplicate post is detected"));
    }

    #[test]
    fn token_refusals_ask_for_a_refresh() {
        for e in [
            err(
                401,
                Some("REVOKED_ACCESS_TOKEN"),
                Some(65601),
                "The token used in the request has been revoked by the user",
            ),
            err(401, None, Some(65600), "Invalid access token"),
            err(401, Some("EXPIRED_ACCESS_TOKEN"), Some(65602), "The token used in the request has expired"),
            err(401, None, None, "Unauthorized"),
        ] {
            let m = map(e, CallKind::Create);
            assert!(matches!(m, Error::AccessTokenRejected { .. }), "{m:?}");
        }
    }

    #[test]
    fn access_denied_is_rejected_with_the_scope_to_grant() {
        let m = map(
            err(403, Some("ACCESS_DENIED"), Some(100), "Not enough permissions to access: posts.CREATE"),
            CallKind::Create,
        );
        assert!(
            matches!(&m, Error::Rejected { code: Some(c), message, .. } if c == "ACCESS_DENIED" && message.contains("w_member_social")),
            "{m:?}"
        );
    }

    #[test]
    fn a_duplicate_create_is_an_unknown_outcome_to_reconcile() {
        let e = err(422, Some("DUPLICATE_POST"), None, "Content is a duplicate of urn:li:share:1");
        assert!(matches!(map(e.clone(), CallKind::Create), Error::UnknownOutcome { .. }));
        assert!(matches!(map(e, CallKind::Idempotent), Error::Rejected { .. }));
    }

    #[test]
    fn a_sunset_version_is_a_configuration_error() {
        let m = map(
            err(426, Some("NONEXISTENT_VERSION"), None, "Requested version 20250401 is not active"),
            CallKind::Create,
        );
        assert!(matches!(&m, Error::Config(msg) if msg.contains("KONEKTLY_LINKEDIN_VERSION")), "{m:?}");
    }

    #[test]
    fn too_many_requests_waits() {
        let before = Utc::now();
        match map(err(429, None, None, "Resource level throttle limit reached"), CallKind::Create) {
            Error::RateLimited { retry_at: Some(t), .. } => assert!(t >= before + chrono::Duration::minutes(14)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_asset_of_another_author_is_rejected() {
        let m = map(err(400, None, None, "One or more of the assets is not owned by the author"), CallKind::Create);
        assert!(matches!(&m, Error::Rejected { message, .. } if message.contains("owner")), "{m:?}");
    }

    #[test]
    fn validation_errors_and_missing_objects_are_rejected() {
        assert!(matches!(
            map(err(422, Some("FIELD_LENGTH_TOO_LONG"), None, "commentary"), CallKind::Create),
            Error::Rejected { .. }
        ));
        assert!(matches!(map(err(404, None, None, "Not Found"), CallKind::Idempotent), Error::Rejected { .. }));
    }

    #[test]
    fn a_server_failure_on_a_create_may_have_landed() {
        assert!(matches!(
            map(err(500, None, None, "Internal Server Error"), CallKind::Create),
            Error::UnknownOutcome { .. }
        ));
        assert!(matches!(map(err(503, None, None, "x"), CallKind::Idempotent), Error::Transient { .. }));
    }
}
