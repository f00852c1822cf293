//! Requests to TikTok: the Login Kit v2 token endpoint (through core's OAuth client in TikTok's
//! token dialect, `oauth.rs`), user info, and the Content Posting API (through core's call
//! pipeline in TikTok's dialect, `error.rs`).

use std::time::Duration;

use konektly_core::bytes::Bytes;
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{ClientAuth, OAuthClient, OAuthConfig, bearer};
use konektly_core::reqwest::header::{CONTENT_RANGE, CONTENT_TYPE};
use konektly_core::{AccessToken, CallKind, Error, HttpClient, PkceVerifier, RefreshToken, Result, TokenSet};
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::Config;
use crate::error::{TikTokApiError, TikTokDialect, map_api_error_with};
use crate::model::{CreatorInfo, InitData, StatusData, UserInfo, UserInfoData};
use crate::oauth::TikTokTokens;

const JSON_UTF8: &str = "application/json; charset=UTF-8";

/// Paths, relative to the API base.
pub(crate) mod path {
    pub const AUTHORIZE: &str = "v2/auth/authorize/";
    pub const TOKEN: &str = "v2/oauth/token/";
    pub const REVOKE: &str = "v2/oauth/revoke/";
    pub const USER_INFO: &str = "v2/user/info/";
    pub const CREATOR_INFO: &str = "v2/post/publish/creator_info/query/";
    pub const VIDEO_INIT: &str = "v2/post/publish/video/init/";
    pub const INBOX_VIDEO_INIT: &str = "v2/post/publish/inbox/video/init/";
    pub const CONTENT_INIT: &str = "v2/post/publish/content/init/";
    pub const STATUS_FETCH: &str = "v2/post/publish/status/fetch/";
    pub const VIDEO_QUERY: &str = "v2/video/query/";
}

/// A token endpoint answer: the tokens and who they belong to.
#[derive(Debug)]
pub(crate) struct Grant {
    pub open_id: Option<String>,
    pub tokens: TokenSet,
}

/// The HTTP side of the adapter.
#[derive(Clone, Debug)]
pub(crate) struct TikTokClient {
    pub config: Config,
    pub http: HttpClient,
}

impl TikTokClient {
    fn api(&self, path: &str) -> Result<Url> {
        self.config.api_base.join(path).map_err(|e| Error::Config(format!("invalid TikTok URL: {e}")))
    }

    /// The authorize page's URL.
    pub fn authorize_url(&self, redirect_uri: &Url, state: &str, challenge: Option<&str>) -> Result<Url> {
        let mut url =
            self.config.auth_base.join(path::AUTHORIZE).map_err(|e| Error::Config(format!("invalid URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_key", &self.config.client_key)
                .append_pair("scope", &self.config.scopes.join(","))
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", redirect_uri.as_str())
                .append_pair("state", state);
            if let Some(c) = challenge {
                q.append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url)
    }

    /// TikTok's token endpoint through core's OAuth client, in TikTok's dialect.
    fn oauth(&self) -> Result<OAuthClient<TikTokTokens>> {
        let config = OAuthConfig {
            client_id: self.config.client_key.clone(),
            client_secret: Some(self.config.client_secret.clone()),
            auth_url: self
                .config
                .auth_base
                .join(path::AUTHORIZE)
                .map_err(|e| Error::Config(format!("invalid URL: {e}")))?,
            token_url: self.api(path::TOKEN)?,
            revoke_url: Some(self.api(path::REVOKE)?),
            client_auth: ClientAuth::RequestBody,
        };
        Ok(OAuthClient::new(config, self.http.clone())
            .with_dialect(TikTokTokens)
            .with_client_id_field("client_key")
            .with_no_cache())
    }

    /// Exchanges an authorization code.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: Option<&PkceVerifier>,
    ) -> Result<Grant> {
        let answer = self.oauth()?.exchange(code, redirect_uri, verifier, &[]).await?;
        Ok(Grant { open_id: answer.user_id, tokens: answer.tokens })
    }

    /// Refreshes; TikTok rotates the refresh token (the refresh is sent once).
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<Grant> {
        let answer = self.oauth()?.refresh_grant(refresh_token, &[]).await?;
        Ok(Grant { open_id: answer.user_id, tokens: answer.tokens })
    }

    /// Revokes the grant (the app leaves the user's connected apps).
    pub async fn revoke(&self, access_token: &AccessToken) -> Result<()> {
        self.oauth()?.revoke(access_token.expose(), None).await
    }

    /// `GET /v2/user/info/`.
    pub async fn user_info(&self, token: &AccessToken) -> Result<UserInfo> {
        let mut url = self.api(path::USER_INFO)?;
        url.query_pairs_mut().append_pair("fields", "open_id,union_id,avatar_url,display_name");
        let req = self.http.client().get(url).header(konektly_core::reqwest::header::AUTHORIZATION, bearer(token));
        let data: UserInfoData = self.call(req, CallKind::Idempotent, path::USER_INFO).await?;
        Ok(data.user)
    }

    /// `GET user/info/` with the stats fields (scope `user.info.stats`), as TikTok gives them.
    pub async fn user_stats(&self, token: &AccessToken) -> Result<serde_json::Map<String, serde_json::Value>> {
        let mut url = self.api(path::USER_INFO)?;
        url.query_pairs_mut().append_pair("fields", "open_id,follower_count,following_count,likes_count,video_count");
        let req = self.http.client().get(url).header(konektly_core::reqwest::header::AUTHORIZATION, bearer(token));
        let data: serde_json::Value = self.call(req, CallKind::Idempotent, path::USER_INFO).await?;
        Ok(data["user"].as_object().cloned().unwrap_or_default())
    }

    /// `POST video/query/` (scope `video.list`): the caller's videos by id, with their counts.
    pub async fn video_query(&self, token: &AccessToken, ids: &[&str]) -> Result<Vec<serde_json::Value>> {
        let mut req =
            self.json_post(path::VIDEO_QUERY, token, Some(&serde_json::json!({"filters": {"video_ids": ids}})))?;
        req = req.query(&[("fields", "id,view_count,like_count,comment_count,share_count")]);
        let data: serde_json::Value = self.call(req, CallKind::Idempotent, path::VIDEO_QUERY).await?;
        Ok(data["videos"].as_array().cloned().unwrap_or_default())
    }

    /// `POST creator_info/query/` (empty body).
    pub async fn creator_info(&self, token: &AccessToken) -> Result<CreatorInfo> {
        let req = self.json_post(path::CREATOR_INFO, token, None)?;
        self.call(req, CallKind::Idempotent, path::CREATOR_INFO).await
    }

    /// One of the init endpoints. Creates a publish: never retried blindly.
    pub async fn init(&self, path: &str, token: &AccessToken, body: &serde_json::Value) -> Result<InitData> {
        let req = self.json_post(path, token, Some(body))?;
        let data: InitData = self.call(req, CallKind::Create, path).await?;
        if data.publish_id.is_empty() {
            return Err(Error::UnknownOutcome {
                message: "TikTok accepted the init but gave no publish_id".into(),
                source: None,
            });
        }
        Ok(data)
    }

    /// `POST status/fetch/`.
    pub async fn status(&self, token: &AccessToken, publish_id: &str) -> Result<StatusData> {
        let body = serde_json::json!({ "publish_id": publish_id });
        let req = self.json_post(path::STATUS_FETCH, token, Some(&body))?;
        self.call(req, CallKind::Idempotent, path::STATUS_FETCH).await
    }

    /// `PUT` one chunk to the upload URL. A chunk at its range is idempotent. A `404` is
    /// [`UPLOAD_URL_EXPIRED`].
    pub async fn upload_chunk(&self, url: &str, content_type: &str, content_range: &str, chunk: Bytes) -> Result<()> {
        let url = Url::parse(url).map_err(|e| Error::transient(format!("TikTok gave an invalid upload URL: {e}")))?;
        let req = self
            .http
            .client()
            .put(url)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_RANGE, content_range)
            .timeout(self.http.config().upload_timeout)
            .body(chunk);
        let resp = self.http.send(req, CallKind::Idempotent).await?;
        let api = ApiResponse::read(resp, CallKind::Idempotent).await?;
        chunk_answer(&api, content_range, self.config.rate_limit_wait)
    }

    fn json_post(
        &self,
        path: &str,
        token: &AccessToken,
        body: Option<&serde_json::Value>,
    ) -> Result<konektly_core::reqwest::RequestBuilder> {
        let mut req = self
            .http
            .client()
            .post(self.api(path)?)
            .header(konektly_core::reqwest::header::AUTHORIZATION, bearer(token))
            .header(CONTENT_TYPE, JSON_UTF8);
        if let Some(b) = body {
            req =
                req.body(serde_json::to_vec(b).map_err(|e| Error::Config(format!("a body does not serialize: {e}")))?);
        }
        Ok(req)
    }

    /// Sends through core's pipeline in TikTok's dialect and returns the envelope's `data`.
    async fn call<T: DeserializeOwned>(
        &self,
        req: konektly_core::reqwest::RequestBuilder,
        kind: CallKind,
        what: &str,
    ) -> Result<T> {
        let dialect = TikTokDialect { rate_limit_wait: self.config.rate_limit_wait };
        konektly_core::api::call_json(&self.http, &dialect, None, req, kind, what).await
    }
}

/// What the answer to a chunk `PUT` means (see [`TikTokClient::upload_chunk`]); the fuzzing
/// entry points read answers with it too.
pub(crate) fn chunk_answer(api: &ApiResponse, content_range: &str, rate_limit_wait: Duration) -> Result<()> {
    if api.is_success() {
        return Ok(());
    }
    // The upload URL is gone ("upload_url has expired", sometimes well before the hour):
    // the upload must start over with a new publish id.
    if api.status.as_u16() == 404 {
        return Err(Error::Rejected {
            code: Some(UPLOAD_URL_EXPIRED.into()),
            message: "TikTok no longer accepts this upload URL (it expired)".into(),
            source: None,
        });
    }
    if let Some(err) = envelope_error(api) {
        return Err(map_api_error_with(err, &api.headers, CallKind::Idempotent, rate_limit_wait));
    }
    Err(api.status_error(CallKind::Idempotent, format!("TikTok refused the chunk {content_range}"), None))
}

/// The envelope's error, unless it is `ok` (or absent).
pub(crate) fn envelope_error(api: &ApiResponse) -> Option<TikTokApiError> {
    #[derive(serde::Deserialize)]
    struct ErrOnly {
        #[serde(default)]
        error: Option<serde_json::Value>,
    }
    let parsed: ErrOnly = serde_json::from_slice(&api.body).ok()?;
    let e: crate::model::ErrorBody = serde_json::from_value(parsed.error?).ok()?;
    if e.code.is_empty() || e.code == "ok" {
        return None;
    }
    Some(TikTokApiError { status: api.status.as_u16(), code: e.code, message: e.message, log_id: e.log_id })
}

/// The code of a refusal by an upload URL that no longer exists (expired).
pub(crate) const UPLOAD_URL_EXPIRED: &str = "upload_url_expired";
