//! Requests to TikTok: the Login Kit v2 token endpoint (not standard OAuth: `client_key` and
//! `client_secret` travel in the form body, errors may come with status 200), user info, and
//! the Content Posting API, all over core's [`HttpClient`].

use chrono::{DateTime, Utc};
use konektly_core::bytes::Bytes;
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{bearer, split_scopes};
use konektly_core::reqwest::header::{CONTENT_RANGE, CONTENT_TYPE};
use konektly_core::{AccessToken, CallKind, Error, HttpClient, RefreshToken, Result, TokenSet};
use serde::de::DeserializeOwned;
use url::Url;

use crate::builder::Config;
use crate::error::{TikTokApiError, TikTokDialect, map_api_error, map_oauth_error};
use crate::model::{CreatorInfo, InitData, StatusData, TokenBody, UserInfo, UserInfoData};

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

    /// Exchanges an authorization code.
    pub async fn exchange_code(&self, code: &str, redirect_uri: &Url, verifier: Option<&str>) -> Result<Grant> {
        let mut form = vec![
            ("client_key", self.config.client_key.as_str()),
            ("client_secret", self.config.client_secret.expose()),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri.as_str()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(&form).await
    }

    /// Refreshes; TikTok rotates the refresh token.
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<Grant> {
        let form = [
            ("client_key", self.config.client_key.as_str()),
            ("client_secret", self.config.client_secret.expose()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        self.token(&form).await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<Grant> {
        let req = self.http.client().post(self.api(path::TOKEN)?).header("Cache-Control", "no-cache").form(form);
        let resp = self.http.send(req, CallKind::Create).await?;
        let api = ApiResponse::read(resp, CallKind::Create).await?;
        let body: TokenBody = serde_json::from_slice(&api.body).unwrap_or_default();
        if let Some(code) = body.error.as_deref().filter(|e| !e.is_empty() && *e != "ok") {
            let err = TikTokApiError {
                status: api.status.as_u16(),
                code: code.to_owned(),
                message: body.error_description.clone().unwrap_or_default(),
                log_id: body.log_id.clone(),
            };
            return Err(map_oauth_error(err, &api.headers));
        }
        if !api.is_success() {
            if let Some(err) = envelope_error(&api) {
                return Err(map_oauth_error(err, &api.headers));
            }
            return Err(api.status_error(CallKind::Idempotent, "the TikTok token endpoint refused the request", None));
        }
        let Some(access) = body.access_token.filter(|t| !t.is_empty()) else {
            return Err(Error::transient("the TikTok token endpoint answered without an access token"));
        };
        let now = Utc::now();
        let after = |secs: Option<i64>| expires_after(now, secs);
        Ok(Grant {
            open_id: body.open_id,
            tokens: TokenSet {
                access_token: AccessToken::new(access),
                refresh_token: body.refresh_token.filter(|t| !t.is_empty()).map(RefreshToken::new),
                expires_at: after(body.expires_in),
                refresh_expires_at: after(body.refresh_expires_in),
                scopes: body.scope.as_deref().map(split_scopes).unwrap_or_default(),
            },
        })
    }

    /// Revokes the grant (the app leaves the user's connected apps).
    pub async fn revoke(&self, access_token: &AccessToken) -> Result<()> {
        let form = [
            ("client_key", self.config.client_key.as_str()),
            ("client_secret", self.config.client_secret.expose()),
            ("token", access_token.expose()),
        ];
        let req = self.http.client().post(self.api(path::REVOKE)?).header("Cache-Control", "no-cache").form(&form);
        let resp = self.http.send(req, CallKind::Idempotent).await?;
        let api = ApiResponse::read(resp, CallKind::Idempotent).await?;
        let body: TokenBody = serde_json::from_slice(&api.body).unwrap_or_default();
        if let Some(code) = body.error.as_deref().filter(|e| !e.is_empty() && *e != "ok") {
            let err = TikTokApiError {
                status: api.status.as_u16(),
                code: code.to_owned(),
                message: body.error_description.unwrap_or_default(),
                log_id: body.log_id,
            };
            return Err(map_oauth_error(err, &api.headers));
        }
        if let Some(err) = envelope_error(&api) {
            return Err(map_api_error(err, &api.headers, CallKind::Idempotent));
        }
        if api.is_success() {
            Ok(())
        } else {
            Err(api.status_error(CallKind::Idempotent, "TikTok refused to revoke the token", None))
        }
    }

    /// `GET /v2/user/info/`.
    pub async fn user_info(&self, token: &AccessToken) -> Result<UserInfo> {
        let mut url = self.api(path::USER_INFO)?;
        url.query_pairs_mut().append_pair("fields", "open_id,union_id,avatar_url,display_name");
        let req = self.http.client().get(url).header(konektly_core::reqwest::header::AUTHORIZATION, bearer(token));
        let data: UserInfoData = self.call(req, CallKind::Idempotent, path::USER_INFO).await?;
        Ok(data.user)
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
        if let Some(err) = envelope_error(&api) {
            return Err(map_api_error(err, &api.headers, CallKind::Idempotent));
        }
        Err(api.status_error(CallKind::Idempotent, format!("TikTok refused the chunk {content_range}"), None))
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

/// `now + secs` for a token's `expires_in`: `None` for no, a negative, or an absurd lifetime
/// (`Duration::seconds` and the addition panic beyond the calendar).
pub(crate) fn expires_after(now: DateTime<Utc>, secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.filter(|s| *s > 0).and_then(chrono::Duration::try_seconds).and_then(|d| now.checked_add_signed(d))
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
