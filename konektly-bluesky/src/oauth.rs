//! Bluesky's token dialect: app-password sessions are not OAuth — `createSession`
//! (`{identifier, password}` → `{accessJwt, refreshJwt, handle, did, didDoc?}`) starts one,
//! `refreshSession` (the refresh JWT as the bearer, no body) rotates both tokens (the old refresh
//! JWT is revoked: a refresh is sent once), `deleteSession` ends it. Answers name no lifetime:
//! the JWTs' `exp` claims say it (read, not verified), else the configured defaults. Errors are
//! XRPC's, read with [`crate::error`]'s table and this step's meaning.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{Grant, TokenAnswer, TokenDialect, TokenStep};
use konektly_core::{AccessToken, CallKind, Error, RefreshToken, Result, TokenSet};

use crate::error::{BlueskyApiError, map_error, parse};
use crate::model::SessionBody;

/// The session endpoints' dialect (with the lifetimes assumed when a JWT has no `exp`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlueskySessions {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub rate_limit_wait: Duration,
}

/// The `exp` claim of a JWT (not verified: only to know when to refresh).
pub(crate) fn jwt_exp(token: &str) -> Option<DateTime<Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)
}

fn later(now: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(d).ok().and_then(|d| now.checked_add_signed(d))
}

impl BlueskySessions {
    /// The session in a success answer, with its DID and handle.
    pub(crate) fn session(&self, answer: &ApiResponse, now: DateTime<Utc>) -> Result<(TokenSet, SessionBody)> {
        let body: SessionBody = answer.json()?;
        let access = body.access_jwt.clone().filter(|t| !t.is_empty());
        let refresh = body.refresh_jwt.clone().filter(|t| !t.is_empty());
        let (Some(access), Some(did)) = (access, body.did.clone().filter(|d| d.starts_with("did:"))) else {
            return Err(Error::transient("Bluesky answered a session without an access token or DID"));
        };
        let _ = did;
        let tokens = TokenSet {
            expires_at: jwt_exp(&access).or_else(|| later(now, self.access_ttl)),
            refresh_expires_at: refresh.as_deref().and_then(jwt_exp).or_else(|| later(now, self.refresh_ttl)),
            access_token: AccessToken::new(access),
            refresh_token: refresh.map(RefreshToken::new),
            scopes: Vec::new(),
        };
        Ok((tokens, body))
    }
}

impl TokenDialect for BlueskySessions {
    type TokenError = BlueskyApiError;

    fn parse_error(&self, answer: &ApiResponse, _: TokenStep<'_>) -> Option<BlueskyApiError> {
        parse(answer)
    }

    fn classify(&self, e: BlueskyApiError, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        let said = if e.message.is_empty() { String::new() } else { format!(" (Bluesky said: {})", e.message) };
        match (step.grant, e.error.as_str()) {
            (Grant::Code, "AuthenticationRequired" | "AuthRequired" | "InvalidRequest") if e.status != 429 => {
                Error::Authorization(format!("Bluesky refused the handle or app password{said}"))
            }
            (Grant::Code, "AuthFactorTokenRequired") => Error::Authorization(
                "this password needs an e-mail code: create an app password in Bluesky's settings and use it".into(),
            ),
            (Grant::Code, "AccountTakedown" | "AccountDeactivated") => {
                Error::Authorization(format!("the Bluesky account cannot sign in: `{}`{said}", e.error))
            }
            (
                Grant::Refresh,
                "ExpiredToken"
                | "InvalidToken"
                | "AuthenticationRequired"
                | "AuthRequired"
                | "AccountTakedown"
                | "AccountDeactivated",
            ) => Error::ReauthRequired {
                reason: format!("the Bluesky session ended (`{}`); reconnect the account{said}", e.error),
                source: Some(Box::new(e)),
            },
            _ => map_error(e, &answer.headers, step.answer_kind(), step.what, self.rate_limit_wait),
        }
    }

    fn tokens(&self, answer: &ApiResponse, _: TokenStep<'_>, now: DateTime<Utc>) -> Result<TokenAnswer> {
        let (tokens, body) = self.session(answer, now)?;
        Ok(TokenAnswer { user_id: body.did, tokens })
    }

    fn unparsed_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        answer.status_error(
            step.answer_kind(),
            format!("{}: Bluesky answered status {}", step.what, answer.status),
            None,
        )
    }

    fn already_revoked(&self, e: &BlueskyApiError) -> bool {
        matches!(e.error.as_str(), "ExpiredToken" | "InvalidToken")
    }
}

/// The step of each session call.
pub(crate) fn step(grant: Grant, what: &'static str) -> TokenStep<'static> {
    let kind = match grant {
        // A refresh JWT is single-use: sent once.
        Grant::Refresh => CallKind::Create,
        _ => CallKind::Idempotent,
    };
    TokenStep { grant, kind, what }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_expiry_is_read_without_verifying() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"scope":"com.atproto.appPass","exp":1900000000}"#);
        let t = format!("eyJhbGciOiJIUzI1NiJ9.{claims}.c2ln");
        assert_eq!(jwt_exp(&t).map(|d| d.timestamp()), Some(1_900_000_000));
        assert_eq!(jwt_exp("opaque"), None);
        assert_eq!(jwt_exp("a.%%%.c"), None);
    }
}
