//! Requests to LinkedIn: the OAuth token endpoint (through core's OAuth client in LinkedIn's
//! token dialect, `oauth.rs`), OpenID `userinfo`, and the versioned REST API (`/rest/posts`,
//! `/rest/images`) through core's call pipeline in LinkedIn's dialect (`error.rs`). Every REST
//! call carries `LinkedIn-Version` and `X-Restli-Protocol-Version: 2.0.0`.

use konektly_core::bytes::Bytes;
use konektly_core::oauth::{ClientAuth, OAuthClient, OAuthConfig, bearer};
use konektly_core::reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use konektly_core::reqwest::{Method, RequestBuilder};
use konektly_core::{
    AccessToken, AuthorizationRequest, CallKind, Error, HttpClient, PkceVerifier, PublishContext, RefreshToken, Result,
    TokenSet, api,
};
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::Config;
use crate::error::LinkedInDialect;
use crate::model::{Elements, ImageUpload, PostElement, UserInfo, Value};
use crate::oauth::LinkedInTokens;

/// Paths, relative to the API base (or, for OAuth, the OAuth base).
pub(crate) mod path {
    pub const AUTHORIZE: &str = "oauth/v2/authorization";
    pub const TOKEN: &str = "oauth/v2/accessToken";
    pub const USERINFO: &str = "v2/userinfo";
    pub const POSTS: &str = "rest/posts";
    pub const IMAGES: &str = "rest/images";
}

/// The header that names what a create made (`urn:li:share:…`).
pub const RESTLI_ID: &str = "x-restli-id";

/// A URN as one path segment (`urn%3Ali%3Ashare%3A1`).
pub(crate) fn encode_urn(urn: &str) -> String {
    url::form_urlencoded::byte_serialize(urn.as_bytes()).collect()
}

/// The HTTP side of the adapter.
#[derive(Clone, Debug)]
pub(crate) struct LinkedInClient {
    pub config: Config,
    pub http: HttpClient,
}

impl LinkedInClient {
    fn api(&self, path: &str) -> Result<Url> {
        self.config.api_base.join(path).map_err(|e| Error::Config(format!("invalid LinkedIn URL: {e}")))
    }

    fn dialect(&self) -> LinkedInDialect {
        LinkedInDialect { rate_limit_wait: self.config.rate_limit_wait }
    }

    fn oauth(&self) -> Result<OAuthClient<LinkedInTokens>> {
        let join = |p: &str| {
            self.config.auth_base.join(p).map_err(|e| Error::Config(format!("invalid LinkedIn OAuth URL: {e}")))
        };
        let config = OAuthConfig {
            client_id: self.config.client_id.clone(),
            client_secret: Some(self.config.client_secret.clone()),
            auth_url: join(path::AUTHORIZE)?,
            token_url: join(path::TOKEN)?,
            revoke_url: None,
            client_auth: ClientAuth::RequestBody,
        };
        Ok(OAuthClient::new(config, self.http.clone()).with_dialect(LinkedInTokens))
    }

    /// The authorize page's URL (scopes space-separated; web apps use no PKCE).
    pub fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        Ok(self.oauth()?.authorization_request(redirect_uri, &self.config.scopes, " ", false, &[]))
    }

    /// Exchanges an authorization code (sent once).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: Option<&PkceVerifier>,
    ) -> Result<TokenSet> {
        Ok(self.oauth()?.exchange(code, redirect_uri, verifier, &[]).await?.tokens)
    }

    /// Refreshes (apps approved for refresh tokens only).
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet> {
        Ok(self.oauth()?.refresh_grant(refresh_token, &[]).await?.tokens)
    }

    /// `GET /v2/userinfo` (OpenID Connect; unversioned).
    pub async fn userinfo(&self, token: &AccessToken) -> Result<UserInfo> {
        let req = self.http.client().get(self.api(path::USERINFO)?).header(AUTHORIZATION, bearer(token));
        api::call_json(&self.http, &self.dialect(), None, req, CallKind::Idempotent, "GET /v2/userinfo").await
    }

    /// A versioned REST request.
    fn rest(&self, method: Method, url: Url, token: &AccessToken) -> RequestBuilder {
        self.http
            .client()
            .request(method, url)
            .header(AUTHORIZATION, bearer(token))
            .header("LinkedIn-Version", self.config.version.as_str())
            .header("X-Restli-Protocol-Version", "2.0.0")
    }

    fn json(req: RequestBuilder, body: &serde_json::Value) -> Result<RequestBuilder> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Config(format!("a body does not serialize: {e}")))?;
        Ok(req.header(CONTENT_TYPE, "application/json").body(bytes))
    }

    async fn call_json<T: DeserializeOwned>(&self, req: RequestBuilder, kind: CallKind, what: &str) -> Result<T> {
        api::call_json(&self.http, &self.dialect(), None, req, kind, what).await
    }

    /// `POST /rest/posts`: creates the post, never retried blindly. LinkedIn answers `201` with
    /// an empty body and the post's URN in `x-restli-id`; a success without it is an unknown
    /// outcome (the post may be there).
    pub async fn create_post(
        &self,
        ctx: &PublishContext<'_>,
        token: &AccessToken,
        body: &serde_json::Value,
    ) -> Result<String> {
        let req = Self::json(self.rest(Method::POST, self.api(path::POSTS)?, token), body)?;
        let answer =
            api::call(&self.http, &self.dialect(), Some(ctx), req, CallKind::Create, "POST /rest/posts").await?;
        created_urn(&answer)
    }

    /// `GET /rest/posts?author=…&q=author`: the author's most recent posts, newest first.
    pub async fn posts_by_author(&self, token: &AccessToken, author: &str, count: u32) -> Result<Vec<PostElement>> {
        let mut url = self.api(path::POSTS)?;
        url.query_pairs_mut()
            .append_pair("author", author)
            .append_pair("q", "author")
            .append_pair("count", &count.to_string())
            .append_pair("sortBy", "CREATED");
        let req = self.rest(Method::GET, url, token);
        let page: Elements<PostElement> = self.call_json(req, CallKind::Idempotent, "GET /rest/posts?q=author").await?;
        Ok(page.elements)
    }

    /// `DELETE /rest/posts/{urn}` (a repeat is answered `204` too).
    pub async fn delete_post(&self, token: &AccessToken, urn: &str) -> Result<()> {
        let url = self.api(&format!("{}/{}", path::POSTS, encode_urn(urn)))?;
        let req = self.rest(Method::DELETE, url, token);
        api::call(&self.http, &self.dialect(), None, req, CallKind::Idempotent, "DELETE /rest/posts/{urn}").await?;
        Ok(())
    }

    /// `POST /rest/images?action=initializeUpload` for `owner` (the post's author). An image
    /// URN that is never used costs nothing: sent as idempotent.
    pub async fn initialize_image(&self, token: &AccessToken, owner: &str) -> Result<ImageUpload> {
        let mut url = self.api(path::IMAGES)?;
        url.query_pairs_mut().append_pair("action", "initializeUpload");
        let body = serde_json::json!({"initializeUploadRequest": {"owner": owner}});
        let req = Self::json(self.rest(Method::POST, url, token), &body)?;
        let v: Value<ImageUpload> =
            self.call_json(req, CallKind::Idempotent, "POST /rest/images?action=initializeUpload").await?;
        if v.value.upload_url.is_empty() || v.value.image.is_empty() {
            return Err(Error::transient("LinkedIn initialised the image upload without an upload URL or image URN"));
        }
        Ok(v.value)
    }

    /// `PUT {uploadUrl}` with the image's bytes (the bearer token too, as LinkedIn's examples).
    pub async fn put_image(&self, token: &AccessToken, upload_url: &str, mime: &str, bytes: Bytes) -> Result<()> {
        let url = Url::parse(upload_url)
            .map_err(|e| Error::transient(format!("LinkedIn gave an invalid upload URL: {e}")))?;
        let req = self
            .http
            .client()
            .put(url)
            .header(AUTHORIZATION, bearer(token))
            .header(CONTENT_TYPE, mime)
            .timeout(self.http.config().upload_timeout)
            .body(bytes);
        api::call(&self.http, &self.dialect(), None, req, CallKind::Idempotent, "PUT image upload URL").await?;
        Ok(())
    }
}

/// The URN in a create's `x-restli-id` header; a success without it is an unknown outcome.
pub(crate) fn created_urn(answer: &konektly_core::http::ApiResponse) -> Result<String> {
    answer
        .headers
        .get(RESTLI_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| v.starts_with("urn:li:"))
        .map(str::to_owned)
        .ok_or_else(|| Error::UnknownOutcome {
            message: "LinkedIn accepted the post but named no URN (no x-restli-id header)".into(),
            source: None,
        })
}
