//! Meta's token dialect, for both logins. Facebook Login: a code exchanged at the Graph's
//! `oauth/access_token` (a `GET`, the app's id and secret in the query), then the short-lived
//! user token exchanged for a long-lived one (`fb_exchange_token`), which is also how it is
//! refreshed. Instagram Login: a code exchanged at `api.instagram.com/oauth/access_token` (a
//! form `POST`), whose answer is the token flat or wrapped in `data: [...]` with `user_id` and
//! `permissions` (a string or an array); then `ig_exchange_token` for a 60-day token, refreshed
//! with `ig_refresh_token`. Errors are Graph errors (or Instagram Login's
//! `{error_type, code, error_message}`), mapped through the adapter's one table.

use chrono::{DateTime, Utc};
use konektly_core::api::ApiDialect;
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{TokenAnswer, TokenDialect, TokenStep, expires_after, split_scopes};
use konektly_core::{AccessToken, Error, Result, TokenSet};
use serde_json::Value;

use crate::error::{GraphApiError, MetaDialect, map_graph_error};
use crate::model::{InstagramCodeBody, TokenBody};

/// Meta's token endpoints (Graph and Instagram Login).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MetaTokens(pub MetaDialect);

/// The scopes Instagram Login's `permissions` grants (a comma-separated string or an array).
pub(crate) fn granted(permissions: &Option<Value>) -> Vec<String> {
    match permissions {
        Some(Value::String(s)) => split_scopes(s),
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// The tokens of one token body, expiry from `now` (an absurd `expires_in` is no expiry).
pub(crate) fn token_set(body: &TokenBody, scopes: Vec<String>, now: DateTime<Utc>) -> TokenSet {
    let mut t = TokenSet::new(AccessToken::new(body.access_token.clone()));
    t.expires_at = expires_after(now, body.expires_in);
    t.scopes = scopes;
    t
}

impl TokenDialect for MetaTokens {
    type TokenError = GraphApiError;

    fn parse_error(&self, answer: &ApiResponse, _: TokenStep<'_>) -> Option<GraphApiError> {
        self.0.parse_error(answer)
    }

    fn classify(&self, error: GraphApiError, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        map_graph_error(error, &answer.headers, step.kind, step.what)
    }

    /// Instagram Login's code answer may wrap the token in `data: [...]`; every other answer is
    /// the flat body.
    fn tokens(&self, answer: &ApiResponse, _: TokenStep<'_>, now: DateTime<Utc>) -> Result<TokenAnswer> {
        let body = match answer.json::<InstagramCodeBody>()? {
            InstagramCodeBody::Plain(t) => t,
            InstagramCodeBody::Wrapped { data } => {
                data.into_iter().next().ok_or_else(|| Error::transient("the Instagram token answer holds no token"))?
            }
        };
        Ok(TokenAnswer { tokens: token_set(&body, granted(&body.permissions), now), user_id: body.user_id })
    }

    fn unparsed_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        self.0.unparsed_error(answer, step.kind, step.what)
    }
}
