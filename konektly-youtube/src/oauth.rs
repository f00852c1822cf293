//! Google's token dialect: RFC 6749 answers whose `scope` may be a string or an array, with
//! `refresh_token_expires_in` (apps in "Testing"), errors with an `error_subtype`
//! (`invalid_rapt`), and a table that names why a grant died. A code refused on exchange is an
//! authorization error (start connecting again); `invalid_grant` on refresh needs reconnecting.
//! Revocation (`oauth2.googleapis.com/revoke`) takes the token alone; `invalid_token` there
//! means it is gone already.

use chrono::{DateTime, Utc};
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{Grant, TokenAnswer, TokenDialect, TokenStep, expires_after};
use konektly_core::{AccessToken, CallKind, Error, RefreshToken, Result, TokenSet};

use crate::error::clean_message;
use crate::model::{TokenError, TokenResponse};

/// Google's token and revocation endpoints.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GoogleTokens;

/// Why Google refused a grant, in words for the user.
fn grant_reason(e: &TokenError) -> String {
    let desc = e.error_description.as_deref().map(clean_message).unwrap_or_default();
    let why = match (e.error.as_str(), e.error_subtype.as_deref()) {
        (_, Some("invalid_rapt")) => "the Google Workspace session must be confirmed again (invalid_rapt)".to_string(),
        ("admin_policy_enforced", _) => {
            "a Google Workspace administrator does not allow this app (admin_policy_enforced)".to_string()
        }
        ("invalid_grant", _) if desc.contains("expired or revoked") => {
            "Google access was revoked or has expired: the user removed the app, the token went unused for six \
             months, the password changed, or the app's consent screen is in \"Testing\" (tokens then last seven \
             days) (invalid_grant)"
                .to_string()
        }
        (code, _) => format!("Google refused the grant ({code})"),
    };
    if desc.is_empty() { why } else { format!("{why}: {desc}") }
}

impl TokenDialect for GoogleTokens {
    type TokenError = TokenError;

    fn parse_error(&self, answer: &ApiResponse, _: TokenStep<'_>) -> Option<TokenError> {
        if answer.is_success() {
            return None;
        }
        serde_json::from_slice::<TokenError>(&answer.body).ok().filter(|e| !e.error.is_empty())
    }

    fn classify(&self, e: TokenError, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        if step.grant == Grant::Revoke {
            return self.unparsed_error(answer, step);
        }
        match e.error.as_str() {
            "invalid_client" | "unauthorized_client" => Error::Config(format!(
                "Google refused the app's OAuth client ({}); check the client id and secret",
                e.error
            )),
            "invalid_grant" if step.grant == Grant::Code => Error::Authorization(format!(
                "the authorization code was refused (invalid_grant: {}); start connecting again",
                e.error_description.as_deref().map(clean_message).unwrap_or_default()
            )),
            "invalid_grant" | "admin_policy_enforced" => Error::reauth(grant_reason(&e)),
            "invalid_scope" => Error::reauth(format!("Google refused the scopes asked for ({})", e.error)),
            _ if answer.status.is_server_error() => {
                Error::transient(format!("the Google token endpoint failed ({})", answer.status))
            }
            other => Error::rejected(
                Some(other.to_owned()),
                format!("the Google token endpoint refused: {}", grant_reason(&e)),
            ),
        }
    }

    fn tokens(&self, answer: &ApiResponse, _: TokenStep<'_>, now: DateTime<Utc>) -> Result<TokenAnswer> {
        let t: TokenResponse = answer.json()?;
        let mut set = TokenSet::new(AccessToken::new(t.access_token));
        set.refresh_token = t.refresh_token.filter(|r| !r.is_empty()).map(RefreshToken::new);
        set.expires_at = expires_after(now, t.expires_in);
        set.refresh_expires_at = expires_after(now, t.refresh_token_expires_in);
        set.scopes = t.scope;
        Ok(TokenAnswer { tokens: set, user_id: None })
    }

    fn unparsed_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        match step.grant {
            Grant::Revoke => answer.status_error(
                CallKind::Idempotent,
                format!("Google refused to revoke the grant ({})", answer.status),
                None,
            ),
            _ => answer.status_error(
                step.answer_kind(),
                format!("the Google token endpoint answered {}", answer.status),
                None,
            ),
        }
    }

    fn already_revoked(&self, e: &TokenError) -> bool {
        e.error == "invalid_token"
    }
}
