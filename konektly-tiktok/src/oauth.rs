//! TikTok's token dialect: Login Kit v2's token endpoint is not standard OAuth — `client_key`
//! (not `client_id`) and `client_secret` travel in the form body, an error may come with status
//! 200 as a flat `{error, error_description, log_id}` or as the v2 envelope's `error` object, and
//! a success names the user (`open_id`) and the refresh token's own lifetime
//! (`refresh_expires_in`). Refresh tokens rotate: a refresh is sent once (`Create`).

use chrono::{DateTime, Utc};
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{Grant, TokenAnswer, TokenDialect, TokenStep, expires_after, split_scopes};
use konektly_core::{AccessToken, CallKind, Error, RefreshToken, Result, TokenSet};

use crate::client::envelope_error;
use crate::error::{TikTokApiError, map_api_error, map_oauth_error};
use crate::model::TokenBody;

/// An error of TikTok's token endpoint, in the shape it came.
#[derive(Debug)]
pub(crate) enum TikTokTokenError {
    /// The flat OAuth error (`error: "invalid_grant"`).
    OAuth(TikTokApiError),
    /// The v2 envelope's `error: {code, message, log_id}`.
    Envelope(TikTokApiError),
}

/// TikTok's token endpoint (`v2/oauth/token/`, `v2/oauth/revoke/`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TikTokTokens;

fn body(answer: &ApiResponse) -> TokenBody {
    serde_json::from_slice(&answer.body).unwrap_or_default()
}

impl TokenDialect for TikTokTokens {
    type TokenError = TikTokTokenError;

    fn parse_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Option<TikTokTokenError> {
        let body = body(answer);
        if let Some(code) = body.error.as_deref().filter(|e| !e.is_empty() && *e != "ok") {
            return Some(TikTokTokenError::OAuth(TikTokApiError {
                status: answer.status.as_u16(),
                code: code.to_owned(),
                message: body.error_description.unwrap_or_default(),
                log_id: body.log_id,
            }));
        }
        // A revocation's envelope error counts whatever the status; a token answer's only with
        // an error status.
        if step.grant == Grant::Revoke || !answer.is_success() {
            return envelope_error(answer).map(TikTokTokenError::Envelope);
        }
        None
    }

    fn classify(&self, error: TikTokTokenError, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        match error {
            TikTokTokenError::Envelope(e) if step.grant == Grant::Revoke => {
                map_api_error(e, &answer.headers, CallKind::Idempotent)
            }
            TikTokTokenError::OAuth(e) | TikTokTokenError::Envelope(e) => map_oauth_error(e, &answer.headers),
        }
    }

    fn tokens(&self, answer: &ApiResponse, _: TokenStep<'_>, now: DateTime<Utc>) -> Result<TokenAnswer> {
        let body = body(answer);
        let Some(access) = body.access_token.filter(|t| !t.is_empty()) else {
            return Err(Error::transient("the TikTok token endpoint answered without an access token"));
        };
        Ok(TokenAnswer {
            user_id: body.open_id,
            tokens: TokenSet {
                access_token: AccessToken::new(access),
                refresh_token: body.refresh_token.filter(|t| !t.is_empty()).map(RefreshToken::new),
                expires_at: expires_after(now, body.expires_in),
                refresh_expires_at: expires_after(now, body.refresh_expires_in),
                scopes: body.scope.as_deref().map(split_scopes).unwrap_or_default(),
            },
        })
    }

    fn unparsed_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        let message = match step.grant {
            Grant::Revoke => "TikTok refused to revoke the token",
            _ => "the TikTok token endpoint refused the request",
        };
        answer.status_error(step.answer_kind(), message, None)
    }
}
