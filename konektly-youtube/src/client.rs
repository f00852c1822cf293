//! The requests to the YouTube Data API v3 and its upload host: URLs, sending through core's
//! call pipeline in YouTube's dialect (`error.rs`), the channel, thumbnails and video status; the
//! token endpoint through core's OAuth client in Google's token dialect (`oauth.rs`).

use konektly_core::http::ApiResponse;
use konektly_core::oauth::{ClientAuth, OAuthClient, OAuthConfig, bearer};
use konektly_core::{AccessToken, CallKind, Error, Profile, Result};
use url::Url;

use crate::error::YouTubeDialect;
use crate::model::{Channel, ListResponse, Video};
use crate::oauth::GoogleTokens;
use crate::platform::YouTubePlatform;
impl YouTubePlatform {
    pub(crate) fn api_url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.endpoints.api.join(path).expect("a relative API path");
        url.query_pairs_mut().extend_pairs(query);
        url
    }

    pub(crate) fn upload_url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.endpoints.upload.join(path).expect("a relative upload path");
        url.query_pairs_mut().extend_pairs(query);
        url
    }

    /// Sends a Data API call through core's pipeline in YouTube's dialect and returns the
    /// answer when it is a success; maps the error body.
    pub(crate) async fn call(&self, request: reqwest::RequestBuilder, kind: CallKind) -> Result<ApiResponse> {
        konektly_core::api::call(&self.http, &YouTubeDialect, None, request, kind, "YouTube Data API").await
    }

    /// Google's token endpoint through core's OAuth client, in Google's dialect. A refresh
    /// token does not rotate: a refresh is retried on a transport failure.
    pub(crate) fn oauth(&self) -> OAuthClient<GoogleTokens> {
        let config = OAuthConfig {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            auth_url: self.endpoints.auth.clone(),
            token_url: self.endpoints.token.clone(),
            revoke_url: Some(self.endpoints.revoke.clone()),
            client_auth: ClientAuth::RequestBody,
        };
        OAuthClient::new(config, self.http.clone()).with_dialect(GoogleTokens).with_refresh_kind(CallKind::Idempotent)
    }

    pub(crate) async fn channel(&self, token: &AccessToken) -> Result<Profile> {
        let url = self.api_url("channels", &[("part", "snippet"), ("mine", "true")]);
        let req = self.http.client().get(url).header(reqwest::header::AUTHORIZATION, bearer(token));
        let api = self.call(req, CallKind::Idempotent).await?;
        let list: ListResponse<Channel> = api.json()?;
        let Some(ch) = list.items.into_iter().next() else {
            return Err(Error::reauth(
                "this Google account has no YouTube channel: create one on YouTube, then connect again",
            ));
        };
        let thumbs = ch.snippet.thumbnails.unwrap_or_default();
        let avatar = [thumbs.default, thumbs.medium, thumbs.high]
            .into_iter()
            .flatten()
            .find_map(|t| t.url.and_then(|u| Url::parse(&u).ok()));
        Ok(Profile {
            remote_id: ch.id,
            handle: ch.snippet.custom_url,
            display_name: ch.snippet.title,
            avatar_url: avatar,
        })
    }

    pub(crate) async fn set_thumbnail(
        &self,
        token: &AccessToken,
        video_id: &str,
        thumb: &konektly_core::Media,
    ) -> Result<()> {
        let bytes = thumb.read_all(self.upload_http.client(), self.max_thumbnail_bytes).await?;
        let url = self.upload_url("thumbnails/set", &[("videoId", video_id)]);
        let req = self
            .upload_http
            .client()
            .post(url)
            .header(reqwest::header::AUTHORIZATION, bearer(token))
            .header(reqwest::header::CONTENT_TYPE, thumb.mime.essence_str())
            .body(bytes);
        konektly_core::api::call(&self.upload_http, &YouTubeDialect, None, req, CallKind::Idempotent, "thumbnails.set")
            .await
            .map(drop)
    }

    pub(crate) async fn video_status(&self, token: &AccessToken, id: &str) -> Result<Option<Video>> {
        let url = self.api_url("videos", &[("part", "status,processingDetails"), ("id", id)]);
        let req = self.http.client().get(url).header(reqwest::header::AUTHORIZATION, bearer(token));
        let api = self.call(req, CallKind::Idempotent).await?;
        let list: ListResponse<Video> = api.json()?;
        Ok(list.items.into_iter().next())
    }
}
