//! Requests to Meta's hosts: URLs (with the configured version and base URLs), the access token,
//! sending through core's call pipeline in Meta's dialect (usage headers reported, error bodies
//! mapped), and the token requests of both logins through core's OAuth client (`oauth.rs`).

use std::fmt;

use konektly_core::oauth::{
    ClientAuth, Credentials, Grant, OAuthClient, OAuthConfig, TokenAnswer, TokenMethod, TokenRequest, TokenStep,
};
use konektly_core::{AccessToken, CallKind, ClientSecret, Error, HttpClient, PkceVerifier, PublishContext, Result};
use reqwest::RequestBuilder;
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::MetaConfig;
use crate::error::MetaDialect;
use crate::oauth::MetaTokens;

/// One of Meta's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    /// `www.facebook.com` (the login dialog).
    FacebookWww,
    /// `graph.facebook.com`.
    Graph,
    /// `graph-video.facebook.com` (video uploads).
    GraphVideo,
    /// `rupload.facebook.com` (Reels bytes).
    Rupload,
    /// `www.instagram.com` (the Instagram Login dialog).
    InstagramWww,
    /// `api.instagram.com` (Instagram Login code exchange).
    InstagramApi,
    /// `graph.instagram.com`.
    InstagramGraph,
}

impl Host {
    fn real(self) -> &'static str {
        match self {
            Host::FacebookWww => "https://www.facebook.com/",
            Host::Graph => "https://graph.facebook.com/",
            Host::GraphVideo => "https://graph-video.facebook.com/",
            Host::Rupload => "https://rupload.facebook.com/",
            Host::InstagramWww => "https://www.instagram.com/",
            Host::InstagramApi => "https://api.instagram.com/",
            Host::InstagramGraph => "https://graph.instagram.com/",
        }
    }

    fn is_instagram(self) -> bool {
        matches!(self, Host::InstagramWww | Host::InstagramApi | Host::InstagramGraph)
    }
}

/// The client both platforms share.
pub(crate) struct MetaClient {
    pub http: HttpClient,
    pub cfg: MetaConfig,
}

impl fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaClient").field("config", &self.cfg).finish_non_exhaustive()
    }
}

impl MetaClient {
    pub fn new(http: HttpClient, cfg: MetaConfig) -> Self {
        Self { http, cfg }
    }

    /// `host` + `path` (no version), honouring the base URL overrides.
    pub fn url(&self, host: Host, path: &str) -> Url {
        let base = if host.is_instagram() { &self.cfg.instagram_base } else { &self.cfg.facebook_base };
        let base = base.clone().unwrap_or_else(|| Url::parse(host.real()).expect("a valid host URL"));
        base.join(path.trim_start_matches('/')).expect("a valid path")
    }

    /// `host` + `/{version}/` + `path`.
    pub fn versioned(&self, host: Host, path: &str) -> Url {
        self.url(host, &format!("{}/{}", self.cfg.graph_version, path.trim_start_matches('/')))
    }

    /// Sends through core's pipeline in Meta's dialect (usage headers reported to `ctx`), and
    /// parses the answer or maps its error.
    pub async fn execute<T: DeserializeOwned>(
        &self,
        rb: RequestBuilder,
        kind: CallKind,
        ctx: Option<&PublishContext<'_>>,
        what: &str,
    ) -> Result<T> {
        konektly_core::api::call_json(&self.http, &self.dialect(), ctx, rb, kind, what).await
    }

    /// The token endpoint of Facebook Login (`oauth/access_token` on the Graph, `GET`), through
    /// core's OAuth client in Meta's token dialect.
    fn facebook_oauth(&self) -> OAuthClient<MetaTokens> {
        let config = OAuthConfig {
            client_id: self.cfg.app_id.clone(),
            client_secret: Some(self.cfg.app_secret.clone()),
            auth_url: self.versioned(Host::FacebookWww, "dialog/oauth"),
            token_url: self.versioned(Host::Graph, "oauth/access_token"),
            revoke_url: None,
            client_auth: ClientAuth::RequestBody,
        };
        OAuthClient::new(config, self.http.clone())
            .with_dialect(MetaTokens(self.dialect()))
            .with_method(TokenMethod::Get)
    }

    /// The token endpoints of Instagram Login, through core's OAuth client.
    fn instagram_oauth(&self) -> Result<(OAuthClient<MetaTokens>, &ClientSecret)> {
        let (Some(app_id), Some(secret)) = (&self.cfg.instagram_app_id, &self.cfg.instagram_app_secret) else {
            return Err(Error::Config("Instagram Login needs the Instagram app (with_instagram_app)".into()));
        };
        let config = OAuthConfig {
            client_id: app_id.clone(),
            client_secret: Some(secret.clone()),
            auth_url: self.url(Host::InstagramWww, "oauth/authorize"),
            token_url: self.url(Host::InstagramApi, "oauth/access_token"),
            revoke_url: None,
            client_auth: ClientAuth::RequestBody,
        };
        Ok((OAuthClient::new(config, self.http.clone()).with_dialect(MetaTokens(self.dialect())), secret))
    }

    /// Facebook Login's code exchange (no `grant_type`: the Graph does not take one), for a
    /// short-lived user token.
    pub async fn facebook_exchange_code(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: Option<&PkceVerifier>,
    ) -> Result<TokenAnswer> {
        let mut params = vec![("redirect_uri", redirect_uri.as_str()), ("code", code)];
        if let Some(v) = verifier {
            params.push(("code_verifier", v.expose()));
        }
        self.facebook_oauth()
            .request(TokenRequest {
                url: None,
                method: TokenMethod::Get,
                params,
                credentials: Credentials::Client,
                step: TokenStep { grant: Grant::Code, kind: CallKind::Create, what: "exchanging the code" },
            })
            .await
    }

    /// `fb_exchange_token`: a user token for a long-lived one (after a login, `Create`; to
    /// extend a stored one, a refresh).
    pub async fn facebook_long_lived(&self, short: &str, grant: Grant, kind: CallKind) -> Result<TokenAnswer> {
        self.facebook_oauth()
            .request(TokenRequest {
                url: None,
                method: TokenMethod::Get,
                params: vec![("grant_type", "fb_exchange_token"), ("fb_exchange_token", short)],
                credentials: Credentials::Client,
                step: TokenStep { grant, kind, what: "exchanging for a long-lived user token" },
            })
            .await
    }

    /// Instagram Login's code exchange (a form `POST`; the answer may be wrapped in `data`).
    pub async fn instagram_exchange_code(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: Option<&PkceVerifier>,
    ) -> Result<TokenAnswer> {
        let (oauth, _) = self.instagram_oauth()?;
        oauth.exchange(code, redirect_uri, verifier, &[]).await
    }

    /// `ig_exchange_token`: the short-lived Instagram token for a 60-day one (the secret, not
    /// the app id, goes with it).
    pub async fn instagram_long_lived(&self, short: &AccessToken) -> Result<TokenAnswer> {
        let (oauth, secret) = self.instagram_oauth()?;
        oauth
            .request(TokenRequest {
                url: Some(self.url(Host::InstagramGraph, "access_token")),
                method: TokenMethod::Get,
                params: vec![
                    ("grant_type", "ig_exchange_token"),
                    ("client_secret", secret.expose()),
                    ("access_token", short.expose()),
                ],
                credentials: Credentials::None,
                step: TokenStep {
                    grant: Grant::Exchange,
                    kind: CallKind::Create,
                    what: "exchanging for a long-lived token",
                },
            })
            .await
    }

    /// `ig_refresh_token`: a 60-day token for a new one (the token alone).
    pub async fn instagram_refresh(&self, token: &AccessToken) -> Result<TokenAnswer> {
        let oauth = OAuthClient::new(
            OAuthConfig {
                client_id: String::new(),
                client_secret: None,
                auth_url: self.url(Host::InstagramWww, "oauth/authorize"),
                token_url: self.url(Host::InstagramGraph, "refresh_access_token"),
                revoke_url: None,
                client_auth: ClientAuth::RequestBody,
            },
            self.http.clone(),
        )
        .with_dialect(MetaTokens(self.dialect()));
        oauth
            .request(TokenRequest {
                url: None,
                method: TokenMethod::Get,
                params: vec![("grant_type", "ig_refresh_token"), ("access_token", token.expose())],
                credentials: Credentials::None,
                step: TokenStep { grant: Grant::Refresh, kind: CallKind::Idempotent, what: "refreshing the token" },
            })
            .await
    }

    fn dialect(&self) -> MetaDialect {
        MetaDialect { usage_cool_down: self.cfg.usage_cool_down }
    }

    /// `GET url?access_token=…&query…`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        token: Option<&AccessToken>,
        query: &[(&str, &str)],
        ctx: Option<&PublishContext<'_>>,
        what: &str,
    ) -> Result<T> {
        let mut rb = self.http.client().get(url).query(query);
        if let Some(t) = token {
            rb = rb.query(&[("access_token", t.expose())]);
        }
        self.execute(rb, CallKind::Idempotent, ctx, what).await
    }

    /// `POST url?access_token=…` with a form body.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        url: Url,
        token: &AccessToken,
        form: &[(&str, String)],
        kind: CallKind,
        ctx: Option<&PublishContext<'_>>,
        what: &str,
    ) -> Result<T> {
        let rb = self.http.client().post(url).query(&[("access_token", token.expose())]).form(form);
        self.execute(rb, kind, ctx, what).await
    }

    /// `DELETE url?access_token=…`.
    pub async fn delete(&self, url: Url, token: &AccessToken, what: &str) -> Result<()> {
        let rb = self.http.client().delete(url).query(&[("access_token", token.expose())]);
        let body: serde_json::Value = self.execute(rb, CallKind::Idempotent, None, what).await?;
        if body.get("success").and_then(|s| s.as_bool()) == Some(false) {
            return Err(Error::rejected(None, format!("{what}: Meta answered success=false")));
        }
        Ok(())
    }
}
