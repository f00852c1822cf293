//! Bluesky's errors and how they map to [`konektly_core::Error`]: XRPC answers
//! `{"error": "<Name>", "message": "…"}` with an error status (sometimes a proxy's page instead),
//! one table of names → [`Disposition`], a test per row. Rate limits come with `RateLimit-*`
//! headers; `RateLimit-Reset` (Unix seconds) says when to come back.

use std::time::Duration;

use chrono::{DateTime, Utc};
use konektly_core::api::ApiDialect;
use konektly_core::disposition::{Answered, Disposition, to_error};
use konektly_core::http::{ApiResponse, header_epoch, header_u64};
use konektly_core::ratelimit::{BudgetScope, RateLimitReport};
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_core::{CallKind, Error};

use crate::model::XrpcErrorBody;

/// An error Bluesky answered with. Reachable as the `source` of the [`konektly_core::Error`]
/// it maps to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Bluesky error `{error}` (HTTP {status}): {message}")]
pub struct BlueskyApiError {
    /// The HTTP status.
    pub status: u16,
    /// The XRPC error name (`ExpiredToken`, `InvalidRequest`…).
    pub error: String,
    /// Its message.
    pub message: String,
}

/// How long to wait after `RateLimitExceeded` when no header says.
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// The budget a write limit's `RateLimit-Policy` window reports on.
pub(crate) const HOURLY_WRITES: &str = "repo_writes_hour";
/// See [`HOURLY_WRITES`].
pub(crate) const DAILY_WRITES: &str = "repo_writes_day";

/// The table: an XRPC error name's disposition and what to tell the user. Names not listed
/// fall back to the HTTP status.
pub(crate) fn row_for(error: &str) -> Option<(Disposition, &'static str)> {
    use Disposition::*;
    Some(match error {
        // The session's access JWT expired (400, not 401): refresh, then try once more.
        "ExpiredToken" => (RefreshToken, "the session's access token expired"),
        // A token the PDS cannot verify: a refresh fixes a rotated signing key; a dead session
        // then fails its refresh and the account needs reconnecting.
        "InvalidToken" => (RefreshToken, "the PDS could not verify the access token"),
        "AuthenticationRequired" | "AuthRequired" | "AuthMissing" => (RefreshToken, "the PDS asked for authentication"),
        "AccountTakedown" | "RepoTakendown" => {
            (Reauth, "the account was taken down by its host; it cannot post until that is resolved")
        }
        "AccountDeactivated" | "RepoDeactivated" => {
            (Reauth, "the account is deactivated; reactivate it in Bluesky and reconnect it")
        }
        "RepoSuspended" => (Reauth, "the account is suspended by its host"),
        "RepoNotFound" => (Reauth, "the PDS no longer hosts this account (moved or deleted); reconnect it"),
        "AuthFactorTokenRequired" => {
            (Reauth, "the account's main password needs an e-mail code; connect with an app password instead")
        }
        "RateLimitExceeded" => (RateLimited { retry_at: None, wait: None }, "the PDS's rate limit was reached"),
        // A swap check failed: the record exists (or changed) — for a create, look it up.
        "InvalidSwap" => (Duplicate, "a record already holds this record key"),
        "RecordNotFound" => (Reject, "no such record"),
        "BlobTooLarge" | "PayloadTooLarge" => (Reject, "the media is larger than the PDS accepts"),
        "InvalidMimeType" => (Reject, "the PDS does not accept this media type"),
        "HandleNotFound" => (Reject, "no account has this handle"),
        "InvalidRequest" => (Reject, "the PDS refused the request"),
        "MethodNotImplemented" => (Reject, "the PDS does not implement this call"),
        "InternalServerError" => (ServerFailure, "the PDS failed internally"),
        "UpstreamFailure" | "UpstreamTimeout" | "NotEnoughResources" => {
            (ServerFailure, "the PDS or a service behind it is unavailable")
        }
        _ => return None,
    })
}

/// The error of an answer whose body is XRPC's error.
pub(crate) fn parse(answer: &ApiResponse) -> Option<BlueskyApiError> {
    if answer.is_success() {
        return None;
    }
    let body: XrpcErrorBody = serde_json::from_slice(&answer.body).ok()?;
    let error = body.error.filter(|e| !e.is_empty())?;
    Some(BlueskyApiError { status: answer.status.as_u16(), error, message: body.message.unwrap_or_default() })
}

/// When a rate limit resets: `RateLimit-Reset`, Unix seconds.
pub(crate) fn reset_at(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    header_epoch(headers, "ratelimit-reset")
}

/// Maps an XRPC error (`what` names the call for people).
pub(crate) fn map_error(
    err: BlueskyApiError,
    headers: &HeaderMap,
    kind: CallKind,
    what: &str,
    wait: Duration,
) -> Error {
    let (disposition, advice) = row_for(&err.error).unwrap_or((Disposition::ByStatus, "unexpected error"));
    let disposition = match disposition {
        Disposition::RateLimited { .. } => Disposition::RateLimited { retry_at: reset_at(headers), wait: Some(wait) },
        d => d,
    };
    // "blob too big" arrives as InvalidRequest at record creation.
    let advice = if err.message.contains("blob too big") {
        "a media file is larger than Bluesky accepts; make it smaller (images: recompress)"
    } else {
        advice
    };
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut message = format!("{what}: Bluesky `{}`: {advice}", err.error);
    if !err.message.is_empty() {
        message.push_str(&format!(" (Bluesky said: {})", err.message));
    }
    let code = Some(err.error.clone());
    to_error(disposition, &Answered::new(status, headers, kind), code, message, Some(Box::new(err)))
}

/// Bluesky's dialect of core's call pipeline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlueskyDialect {
    pub rate_limit_wait: Duration,
}

impl ApiDialect for BlueskyDialect {
    type ApiError = BlueskyApiError;

    fn parse_error(&self, answer: &ApiResponse) -> Option<BlueskyApiError> {
        parse(answer)
    }

    fn classify(&self, error: BlueskyApiError, answer: &ApiResponse, kind: CallKind, what: &str) -> Error {
        map_error(error, &answer.headers, kind, what, self.rate_limit_wait)
    }

    fn unparsed_error(&self, answer: &ApiResponse, kind: CallKind, what: &str) -> Error {
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            let d = Disposition::RateLimited { retry_at: reset_at(&answer.headers), wait: Some(self.rate_limit_wait) };
            let message = format!("{what}: Bluesky answered 429");
            return to_error(d, &Answered::of(answer, kind), None, message, None);
        }
        answer.status_error(kind, format!("{what}: Bluesky answered with status {}", answer.status), None)
    }

    fn rate_limits(&self, headers: &HeaderMap, what: &str) -> Vec<RateLimitReport> {
        rate_limit_reports(headers, what)
    }
}

/// The write limits a repository write's answer reports: `RateLimit-Remaining` and `-Reset` of
/// the policy whose window (`RateLimit-Policy: 5000;w=3600`) is the hour or the day.
pub(crate) fn rate_limit_reports(headers: &HeaderMap, what: &str) -> Vec<RateLimitReport> {
    if !(what.contains("createRecord") || what.contains("deleteRecord") || what.contains("putRecord")) {
        return Vec::new();
    }
    let (Some(remaining), Some(reset_at)) = (header_u64(headers, "ratelimit-remaining"), reset_at(headers)) else {
        return Vec::new();
    };
    let window = headers
        .get("ratelimit-policy")
        .and_then(|v| v.to_str().ok())
        .and_then(|p| p.split(';').find_map(|part| part.trim().strip_prefix("w=")))
        .and_then(|w| w.trim().parse::<u64>().ok());
    let bucket = match window {
        Some(3600) => HOURLY_WRITES,
        Some(86_400) => DAILY_WRITES,
        _ => return Vec::new(),
    };
    vec![RateLimitReport {
        scope: BudgetScope::Account,
        bucket: bucket.into(),
        limit: header_u64(headers, "ratelimit-limit").and_then(|l| u32::try_from(l).ok()),
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset_at,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(error: &str, status: u16) -> BlueskyApiError {
        BlueskyApiError { status, error: error.into(), message: "msg".into() }
    }

    fn map(error: &str, status: u16, kind: CallKind) -> Error {
        map_error(api(error, status), &HeaderMap::new(), kind, "POST createRecord", DEFAULT_RATE_LIMIT_WAIT)
    }

    #[test]
    fn expired_and_invalid_tokens_ask_for_a_refresh() {
        for e in ["ExpiredToken", "InvalidToken", "AuthenticationRequired"] {
            assert!(matches!(map(e, 400, CallKind::Create), Error::AccessTokenRejected { .. }), "{e}");
        }
    }

    #[test]
    fn account_states_need_reconnecting() {
        for e in ["AccountTakedown", "AccountDeactivated", "RepoNotFound", "AuthFactorTokenRequired", "RepoSuspended"] {
            assert!(matches!(map(e, 400, CallKind::Create), Error::ReauthRequired { .. }), "{e}");
        }
    }

    #[test]
    fn rate_limits_wait_for_the_reset_header() {
        let mut h = HeaderMap::new();
        let reset = Utc::now().timestamp() + 120;
        h.insert("ratelimit-reset", reset.to_string().parse().unwrap());
        let e = map_error(api("RateLimitExceeded", 429), &h, CallKind::Create, "x", DEFAULT_RATE_LIMIT_WAIT);
        match e {
            Error::RateLimited { retry_at: Some(t), .. } => assert_eq!(t.timestamp(), reset),
            other => panic!("{other:?}"),
        }
        let e = map("RateLimitExceeded", 429, CallKind::Idempotent);
        assert!(matches!(e, Error::RateLimited { retry_at: Some(_), .. }), "the default wait: {e:?}");
    }

    #[test]
    fn refusals_keep_the_error_name() {
        for e in ["InvalidRequest", "RecordNotFound", "BlobTooLarge", "InvalidMimeType", "HandleNotFound"] {
            match map(e, 400, CallKind::Create) {
                Error::Rejected { code: Some(c), source, .. } => {
                    assert_eq!(c, e);
                    assert!(source.unwrap().downcast_ref::<BlueskyApiError>().is_some());
                }
                other => panic!("{e}: {other:?}"),
            }
        }
        let big = BlueskyApiError {
            status: 400,
            error: "InvalidRequest".into(),
            message: "blob too big (maximum 2000000, got 2998293) at $.record.embed.images[0].image".into(),
        };
        let e = map_error(big, &HeaderMap::new(), CallKind::Create, "x", DEFAULT_RATE_LIMIT_WAIT);
        assert!(e.to_string().contains("smaller"), "{e}");
    }

    #[test]
    fn invalid_swap_on_a_create_is_looked_up() {
        assert!(matches!(map("InvalidSwap", 400, CallKind::Create), Error::UnknownOutcome { .. }));
        assert!(matches!(map("InvalidSwap", 400, CallKind::Idempotent), Error::Rejected { .. }));
    }

    #[test]
    fn server_failures_on_a_create_may_have_landed() {
        // The reference PDS answers a create at an existing rkey with a bare 500.
        assert!(matches!(map("InternalServerError", 500, CallKind::Create), Error::UnknownOutcome { .. }));
        assert!(matches!(map("InternalServerError", 500, CallKind::Idempotent), Error::Transient { .. }));
        assert!(matches!(map("UpstreamFailure", 502, CallKind::Idempotent), Error::Transient { .. }));
    }

    #[test]
    fn unknown_names_fall_back_to_the_status() {
        assert!(matches!(map("Whatever", 401, CallKind::Create), Error::AccessTokenRejected { .. }));
        assert!(matches!(map("Whatever", 400, CallKind::Create), Error::Rejected { .. }));
        assert!(matches!(map("Whatever", 503, CallKind::Create), Error::UnknownOutcome { .. }));
    }

    #[test]
    fn write_limits_are_reported_for_their_window() {
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", "5000".parse().unwrap());
        h.insert("ratelimit-remaining", "4997".parse().unwrap());
        h.insert("ratelimit-reset", (Utc::now().timestamp() + 3000).to_string().parse().unwrap());
        h.insert("ratelimit-policy", "5000;w=3600".parse().unwrap());
        let r = rate_limit_reports(&h, "POST com.atproto.repo.createRecord");
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].bucket.as_str(), r[0].remaining, r[0].limit), (HOURLY_WRITES, 4997, Some(5000)));
        assert!(rate_limit_reports(&h, "GET com.atproto.repo.getRecord").is_empty());
    }
}
