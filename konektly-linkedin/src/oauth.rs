//! LinkedIn's token dialect: `www.linkedin.com/oauth/v2/accessToken`, the client secret in the
//! form body, RFC 6749 errors (`{error, error_description}`), and answers with
//! `refresh_token_expires_in` beside `expires_in`. Refresh tokens come only to apps LinkedIn
//! approved for them; without one, the refresh token's expiry is the access token's (60 days),
//! so the engine's `TokenExpiringSoon` warns a week before the member must reconnect.

use chrono::{DateTime, Utc};
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{
    OAuthErrorBody, Rfc6749, TokenAnswer, TokenDialect, TokenStep, expires_after, split_scopes,
};
use konektly_core::{AccessToken, Error, RefreshToken, Result, TokenSet};

use crate::model::TokenBody;

/// LinkedIn's token endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LinkedInTokens;

impl TokenDialect for LinkedInTokens {
    type TokenError = OAuthErrorBody;

    fn parse_error(&self, answer: &ApiResponse, _: TokenStep<'_>) -> Option<OAuthErrorBody> {
        Rfc6749::error_body(answer)
    }

    fn classify(&self, error: OAuthErrorBody, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        Rfc6749::standard_error(error, answer, step)
    }

    fn tokens(&self, answer: &ApiResponse, _: TokenStep<'_>, now: DateTime<Utc>) -> Result<TokenAnswer> {
        let body: TokenBody = serde_json::from_slice(&answer.body).unwrap_or_default();
        let Some(access) = body.access_token.filter(|t| !t.is_empty()) else {
            return Err(Error::transient("the LinkedIn token endpoint answered without an access token"));
        };
        let expires_at = expires_after(now, body.expires_in);
        let refresh_token = body.refresh_token.filter(|t| !t.is_empty()).map(RefreshToken::new);
        let refresh_expires_at = match &refresh_token {
            Some(_) => expires_after(now, body.refresh_token_expires_in),
            None => expires_at,
        };
        Ok(TokenAnswer {
            user_id: None,
            tokens: TokenSet {
                access_token: AccessToken::new(access),
                refresh_token,
                expires_at,
                refresh_expires_at,
                scopes: body.scope.as_deref().map(|s| split_scopes(&s.replace(',', " "))).unwrap_or_default(),
            },
        })
    }

    fn unparsed_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        answer.status_error(
            step.answer_kind(),
            format!("{}: LinkedIn answered status {}", step.what, answer.status),
            None,
        )
    }
}
