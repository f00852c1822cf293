//! X's token dialect: OAuth 2.0 as RFC 6749 says (HTTP Basic for a confidential client, the
//! client id in the body for a public one), with one exception in its table: a used, revoked or
//! expired refresh token is answered `invalid_request` ("Value passed for the token was
//! invalid."), not `invalid_grant`, and needs reconnecting.

use chrono::{DateTime, Utc};
use konektly_core::Error;
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{Grant, OAuthErrorBody, Rfc6749, TokenAnswer, TokenDialect, TokenStep};

/// X's token endpoint (`/2/oauth2/token`, `/2/oauth2/revoke`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct XTokens;

impl TokenDialect for XTokens {
    type TokenError = OAuthErrorBody;

    fn parse_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Option<OAuthErrorBody> {
        Rfc6749.parse_error(answer, step)
    }

    fn classify(&self, error: OAuthErrorBody, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        match Rfc6749::standard_error(error, answer, step) {
            Error::Rejected { code: Some(code), message, source }
                if step.grant == Grant::Refresh && code == "invalid_request" =>
            {
                Error::ReauthRequired { reason: message, source }
            }
            other => other,
        }
    }

    fn tokens(
        &self,
        answer: &ApiResponse,
        step: TokenStep<'_>,
        now: DateTime<Utc>,
    ) -> konektly_core::Result<TokenAnswer> {
        Rfc6749.tokens(answer, step, now)
    }

    fn unparsed_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        Rfc6749.unparsed_error(answer, step)
    }
}
