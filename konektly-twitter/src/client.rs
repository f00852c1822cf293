//! The requests to X API v2, through core's call pipeline in X's dialect (`error.rs`): URLs,
//! the bearer token, sending and reading. The token endpoint is core's OAuth client in X's
//! token dialect (`oauth.rs`).

use konektly_core::http::ApiResponse;
use konektly_core::oauth::bearer;
use konektly_core::{AccessToken, CallKind, Profile, PublishContext, Result};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use url::Url;

use crate::builder::endpoint;
use crate::error::XDialect;
use crate::model::{Data, User};
use crate::platform::XPlatform;
impl XPlatform {
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        endpoint(&self.cfg.api_base, path)
    }

    pub(crate) fn request(&self, method: Method, path: &str, token: &AccessToken) -> Result<RequestBuilder> {
        Ok(self
            .cfg
            .http
            .client()
            .request(method, self.url(path)?)
            .header(reqwest::header::AUTHORIZATION, bearer(token)))
    }

    /// Sends a request through core's pipeline in X's dialect.
    pub(crate) async fn call(
        &self,
        ctx: Option<&PublishContext<'_>>,
        req: RequestBuilder,
        kind: CallKind,
        what: &str,
    ) -> Result<ApiResponse> {
        konektly_core::api::call(&self.cfg.http, &XDialect, ctx, req, kind, what).await
    }

    /// [`call`](Self::call), then the answer as `T` (unreadable after a create: `UnknownOutcome`).
    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        ctx: Option<&PublishContext<'_>>,
        req: RequestBuilder,
        kind: CallKind,
        what: &str,
    ) -> Result<T> {
        konektly_core::api::call_json(&self.cfg.http, &XDialect, ctx, req, kind, what).await
    }

    pub(crate) async fn fetch_profile(&self, token: &AccessToken) -> Result<Profile> {
        let req = self.request(Method::GET, "/2/users/me", token)?.query(&[("user.fields", "profile_image_url")]);
        let user: Data<User> = self.call_json(None, req, CallKind::Idempotent, "GET /2/users/me").await?;
        let user = user.data;
        Ok(Profile {
            remote_id: user.id,
            handle: user.username,
            display_name: user.name,
            avatar_url: user.profile_image_url.and_then(|u| Url::parse(&u).ok()),
        })
    }
}
