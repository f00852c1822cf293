//! TikTok's error bodies and how they map to [`konektly_core::Error`]: the v2 envelope
//! `{data, error: {code, message, log_id}}`, the OAuth token endpoint's
//! `{error, error_description, log_id}`, and a status's `fail_reason`. One table each, a test per
//! row. The `log_id` (what TikTok support asks for) stays in every error.

use konektly_core::api::ApiDialect;
use konektly_core::disposition::{Answered, Disposition, to_error};
use konektly_core::http::ApiResponse;
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_core::{CallKind, Error};
use serde::de::DeserializeOwned;

use crate::model::Envelope;

/// An error TikTok answered with: its code, message and `log_id`. Reachable as the `source` of
/// the [`konektly_core::Error`] it maps to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("TikTok error `{code}` (HTTP {status}): {message}{}", log_suffix(.log_id))]
pub struct TikTokApiError {
    /// The HTTP status.
    pub status: u16,
    /// `error.code` (`access_token_invalid`…), the OAuth `error`, or the `fail_reason`.
    pub code: String,
    /// `error.message` or `error_description`.
    pub message: String,
    /// `error.log_id`, for TikTok support.
    pub log_id: Option<String>,
}

fn log_suffix(log_id: &Option<String>) -> String {
    log_id.as_deref().filter(|l| !l.is_empty()).map(|l| format!(" (log_id {l})")).unwrap_or_default()
}

impl TikTokApiError {
    fn describe(&self, advice: &str) -> String {
        let mut s = format!("TikTok `{}`: {}", self.code, advice);
        if !self.message.is_empty() {
            s.push_str(&format!(" (TikTok said: {})", self.message));
        }
        s.push_str(&log_suffix(&self.log_id));
        s
    }
}

/// The envelope table: a code's disposition and what to tell the user. Codes not listed fall
/// back to the HTTP status.
pub(crate) fn row_for(code: &str) -> Option<(Disposition, &'static str)> {
    use Disposition::*;
    Some(match code {
        "access_token_invalid" => (RefreshToken, "the access token is invalid or expired"),
        "scope_not_authorized" => (
            Reauth,
            "the user did not grant a permission this needs; reconnect the account and allow every requested permission",
        ),
        "scope_permission_missed" => {
            (Reauth, "a permission this needs is missing; reconnect the account and allow every requested permission")
        }
        // The window is one minute: without a Retry-After, the dialect's wait fills `wait`.
        "rate_limit_exceeded" => {
            (RateLimited { retry_at: None, wait: None }, "TikTok's per-minute limit for this account was reached")
        }
        "spam_risk_too_many_posts" => {
            (Reject, "this TikTok account reached its daily limit of posts through apps; try again tomorrow")
        }
        "spam_risk_user_banned_from_posting" => {
            (Reject, "TikTok has banned this account from posting; the creator must resolve it in the TikTok app")
        }
        "spam_risk_too_many_pending_share" => (
            Reject,
            "too many drafts wait in this creator's TikTok inbox; they must finish or delete them in the app first",
        ),
        "spam_risk_text" => (Reject, "TikTok flagged the caption as spam; change the text"),
        "spam_risk" => (Reject, "TikTok flagged this post as spam risk; change it or try later"),
        "reached_active_user_cap" => (
            Reject,
            "the app reached TikTok's daily quota of posting users; try tomorrow or ask TikTok for a higher quota",
        ),
        "unaudited_client_can_only_post_to_private_accounts" => (
            Reject,
            "this TikTok app is not audited yet: it may only post to private accounts with privacy SELF_ONLY; make the account private or have the app audited",
        ),
        "privacy_level_option_mismatch" => (
            Reject,
            "the privacy level is not one the creator may use now; choose one of the creator's privacy_level_options",
        ),
        "url_ownership_unverified" => (
            Reject,
            "TikTok does not trust the media URL's domain; verify the media host's domain or URL prefix in the TikTok developer portal, or upload the file instead",
        ),
        "app_version_check_failed" => {
            (Reject, "the creator's TikTok app is too old for inbox uploads; they must update the app")
        }
        "invalid_params" => (Reject, "TikTok refused a field of the request"),
        "invalid_file_upload" => (Reject, "the file does not meet TikTok's requirements"),
        "internal_error" => (Transient { retry_after: None }, "TikTok had an internal error; trying again later"),
        _ => return None,
    })
}

/// How long to wait after a `rate_limit_exceeded` that says nothing of when to come back.
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// TikTok's dialect of core's call pipeline: the v2 envelope (whose error may come with status
/// 200), its table, and `data` as the payload.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TikTokDialect {
    /// How long a `rate_limit_exceeded` without `Retry-After` waits.
    pub rate_limit_wait: std::time::Duration,
}

impl ApiDialect for TikTokDialect {
    type ApiError = TikTokApiError;

    fn parse_error(&self, answer: &ApiResponse) -> Option<TikTokApiError> {
        crate::client::envelope_error(answer)
    }

    fn classify(&self, error: TikTokApiError, answer: &ApiResponse, kind: CallKind, _what: &str) -> Error {
        map_api_error_with(error, &answer.headers, kind, self.rate_limit_wait)
    }

    fn unparsed_error(&self, answer: &ApiResponse, kind: CallKind, _what: &str) -> Error {
        answer.status_error(kind, format!("TikTok answered status {}", answer.status), None)
    }

    /// The envelope's `data`; an envelope without it is `Transient` (for a create, core makes
    /// it `UnknownOutcome`: the request may have been accepted).
    fn payload<T: DeserializeOwned>(&self, answer: &ApiResponse) -> konektly_core::Result<T> {
        let env: Envelope<T> = answer.json()?;
        env.data.ok_or_else(|| Error::transient("TikTok answered without data; the request may have been accepted"))
    }
}

/// [`map_api_error_with`] with the default rate-limit wait.
pub(crate) fn map_api_error(err: TikTokApiError, headers: &HeaderMap, kind: CallKind) -> Error {
    map_api_error_with(err, headers, kind, DEFAULT_RATE_LIMIT_WAIT)
}

/// Maps an API error envelope; a rate limit without `Retry-After` waits `rate_limit_wait`.
pub(crate) fn map_api_error_with(
    err: TikTokApiError,
    headers: &HeaderMap,
    kind: CallKind,
    rate_limit_wait: std::time::Duration,
) -> Error {
    let (disposition, advice) = row_for(&err.code).unwrap_or((Disposition::ByStatus, "unexpected error"));
    let disposition = match disposition {
        Disposition::RateLimited { retry_at, wait: None } => {
            Disposition::RateLimited { retry_at, wait: Some(rate_limit_wait) }
        }
        d => d,
    };
    // The status the envelope came with (TikTok answers some errors with 200).
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let message = err.describe(advice);
    // A refusal keeps TikTok's code, not the status.
    let code = Some(err.code.clone());
    to_error(disposition, &Answered::new(status, headers, kind), code, message, Some(Box::new(err)))
}

/// Maps an OAuth token endpoint error (`invalid_grant`…).
pub(crate) fn map_oauth_error(err: TikTokApiError, headers: &HeaderMap) -> Error {
    match err.code.as_str() {
        "invalid_grant" => Error::ReauthRequired {
            reason: err.describe("TikTok refused the grant (expired, used or revoked); reconnect the account"),
            source: Some(Box::new(err)),
        },
        "invalid_client" | "unauthorized_client" => Error::Config(
            err.describe("TikTok refused the app's client key or secret; check KONEKTLY_TIKTOK_CLIENT_KEY and _SECRET"),
        ),
        "access_denied" => Error::Authorization(err.describe("the user refused the authorization")),
        "invalid_scope" | "scope_not_authorized" => Error::ReauthRequired {
            reason: err.describe("TikTok refused the requested permissions"),
            source: Some(Box::new(err)),
        },
        "invalid_request" => Error::Rejected {
            code: Some(err.code.clone()),
            message: err.describe("TikTok refused the token request (a wrong redirect URI or PKCE verifier?)"),
            source: Some(Box::new(err)),
        },
        "rate_limit_exceeded" | "temporarily_unavailable" | "server_error" | "internal_error" => {
            map_api_error(err, headers, CallKind::Idempotent)
        }
        _ => {
            let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
            let message = err.describe("the token endpoint refused the request");
            konektly_core::http::status_error(status, headers, CallKind::Idempotent, message, Some(Box::new(err)))
        }
    }
}

/// Maps a `FAILED` status's `fail_reason` to a clear error.
pub(crate) fn map_fail_reason(reason: &str, publish_id: &str) -> Error {
    let advice = match reason {
        "file_format_check_failed" => "TikTok could not read the file: use an MP4 (H.264) or WebM/MOV file",
        "duration_check_failed" => "the video is too short or too long for this creator",
        "frame_rate_check_failed" => "the video's frame rate must be between 23 and 60 fps",
        "picture_size_check_failed" => {
            "the resolution must be between 360 and 4096 pixels each way (photos: at most 1080p)"
        }
        "video_pull_failed" => "TikTok could not download the video from its URL; check the media host is reachable",
        "photo_pull_failed" => "TikTok could not download a photo from its URL; check the media host is reachable",
        "publish_cancelled" => "the post was cancelled",
        "auth_removed" => "the creator removed the app's access; reconnect the account",
        "spam_risk_too_many_posts" => "this account reached its daily limit of posts through apps; try tomorrow",
        "spam_risk_user_banned_from_posting" => "TikTok has banned this account from posting",
        "spam_risk_text" => "TikTok flagged the caption as spam; change the text",
        "spam_risk" => "TikTok flagged this post as spam risk",
        "internal" => "TikTok failed internally while processing; publishing again may work",
        _ => "TikTok could not publish the post",
    };
    let err = TikTokApiError {
        status: 200,
        code: reason.to_owned(),
        message: format!("publish {publish_id} failed"),
        log_id: None,
    };
    let message = err.describe(advice);
    match reason {
        "auth_removed" => Error::ReauthRequired { reason: message, source: Some(Box::new(err)) },
        "internal" => Error::Transient { message, retry_after: None, source: Some(Box::new(err)) },
        _ => Error::Rejected { code: Some(reason.to_owned()), message, source: Some(Box::new(err)) },
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn api(code: &str, status: u16) -> TikTokApiError {
        TikTokApiError { status, code: code.into(), message: "msg".into(), log_id: Some("202611290001LOG".into()) }
    }

    fn map(code: &str, status: u16) -> Error {
        map_api_error(api(code, status), &HeaderMap::new(), CallKind::Create)
    }

    fn assert_rejected(code: &str, status: u16, words: &str) {
        match map(code, status) {
            Error::Rejected { code: c, message, source } => {
                assert_eq!(c.as_deref(), Some(code));
                assert!(message.contains(words), "{code}: {message}");
                assert!(message.contains("202611290001LOG"), "the log_id stays in the error: {message}");
                let src = source.expect("the TikTok error is the source");
                let api = src.downcast_ref::<TikTokApiError>().expect("a TikTokApiError");
                assert_eq!(api.log_id.as_deref(), Some("202611290001LOG"));
            }
            other => panic!("{code} must be Rejected, got {other:?}"),
        }
    }

    #[test]
    fn access_token_invalid_asks_for_a_refresh() {
        let e = map("access_token_invalid", 401);
        assert!(matches!(e, Error::AccessTokenRejected { .. }), "{e:?}");
        assert!(e.to_string().contains("202611290001LOG"));
    }

    #[test]
    fn scope_not_authorized_needs_reconnecting() {
        let e = map("scope_not_authorized", 401);
        assert!(matches!(&e, Error::ReauthRequired { reason, .. } if reason.contains("reconnect")), "{e:?}");
    }

    #[test]
    fn scope_permission_missed_needs_reconnecting() {
        assert!(matches!(map("scope_permission_missed", 401), Error::ReauthRequired { .. }));
    }

    #[test]
    fn rate_limit_exceeded_waits_for_the_window() {
        let before = Utc::now();
        match map("rate_limit_exceeded", 429) {
            Error::RateLimited { retry_at: Some(t), message, .. } => {
                assert!(t >= before + chrono::Duration::seconds(59), "{t}");
                assert!(message.contains("202611290001LOG"));
            }
            other => panic!("{other:?}"),
        }
        let mut h = HeaderMap::new();
        h.insert("retry-after", "5".parse().unwrap());
        match map_api_error(api("rate_limit_exceeded", 429), &h, CallKind::Create) {
            Error::RateLimited { retry_at: Some(t), .. } => assert!(t <= Utc::now() + chrono::Duration::seconds(6)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spam_risk_too_many_posts_is_rejected_until_tomorrow() {
        assert_rejected("spam_risk_too_many_posts", 403, "tomorrow");
    }

    #[test]
    fn spam_risk_user_banned_is_rejected() {
        assert_rejected("spam_risk_user_banned_from_posting", 403, "banned");
    }

    #[test]
    fn spam_risk_too_many_pending_share_is_rejected() {
        assert_rejected("spam_risk_too_many_pending_share", 403, "inbox");
    }

    #[test]
    fn spam_risk_text_is_rejected() {
        assert_rejected("spam_risk_text", 403, "caption");
    }

    #[test]
    fn spam_risk_is_rejected() {
        assert_rejected("spam_risk", 403, "spam");
    }

    #[test]
    fn reached_active_user_cap_is_rejected() {
        assert_rejected("reached_active_user_cap", 403, "quota");
    }

    #[test]
    fn unaudited_client_is_rejected_with_what_to_do() {
        assert_rejected("unaudited_client_can_only_post_to_private_accounts", 403, "SELF_ONLY");
    }

    #[test]
    fn privacy_level_option_mismatch_is_rejected() {
        assert_rejected("privacy_level_option_mismatch", 400, "privacy_level_options");
    }

    #[test]
    fn url_ownership_unverified_is_rejected() {
        assert_rejected("url_ownership_unverified", 403, "verify the media host's domain");
    }

    #[test]
    fn app_version_check_failed_is_rejected() {
        assert_rejected("app_version_check_failed", 403, "update");
    }

    #[test]
    fn invalid_params_is_rejected() {
        assert_rejected("invalid_params", 400, "field");
    }

    #[test]
    fn invalid_file_upload_is_rejected() {
        assert_rejected("invalid_file_upload", 400, "file");
    }

    #[test]
    fn internal_error_is_transient() {
        let e = map("internal_error", 500);
        assert!(matches!(e, Error::Transient { .. }), "{e:?}");
        assert!(e.to_string().contains("202611290001LOG"));
    }

    #[test]
    fn unknown_codes_fall_back_to_the_status() {
        assert!(matches!(map("something_new", 401), Error::AccessTokenRejected { .. }));
        assert!(matches!(map("something_new", 400), Error::Rejected { code: Some(c), .. } if c == "something_new"));
        // A 5xx on a create may have landed: reconcile before sending again.
        assert!(matches!(map("something_new", 503), Error::UnknownOutcome { .. }));
        let idempotent = map_api_error(api("something_new", 503), &HeaderMap::new(), CallKind::Idempotent);
        assert!(matches!(idempotent, Error::Transient { .. }), "{idempotent:?}");
    }

    #[test]
    fn oauth_errors_map_by_kind() {
        let oauth = |code: &str, status| map_oauth_error(api(code, status), &HeaderMap::new());
        assert!(matches!(oauth("invalid_grant", 400), Error::ReauthRequired { .. }));
        assert!(matches!(oauth("invalid_client", 401), Error::Config(_)));
        assert!(matches!(oauth("access_denied", 400), Error::Authorization(_)));
        assert!(matches!(oauth("invalid_request", 400), Error::Rejected { .. }));
        assert!(matches!(oauth("server_error", 500), Error::Transient { .. }));
        assert!(oauth("invalid_grant", 400).to_string().contains("202611290001LOG"));
    }

    #[test]
    fn fail_reasons_map_to_clear_errors() {
        let e = map_fail_reason("file_format_check_failed", "p1");
        assert!(
            matches!(&e, Error::Rejected { code: Some(c), message, .. }
            if c == "file_format_check_failed" && message.contains("MP4")),
            "{e:?}"
        );
        assert!(matches!(map_fail_reason("auth_removed", "p1"), Error::ReauthRequired { .. }));
        assert!(matches!(map_fail_reason("internal", "p1"), Error::Transient { .. }));
        assert!(matches!(map_fail_reason("video_pull_failed", "p1"), Error::Rejected { .. }));
        assert!(matches!(map_fail_reason("never_seen", "p1"), Error::Rejected { .. }));
    }
}
