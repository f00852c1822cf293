//! Requests to Meta's hosts: URLs (with the configured version and base URLs), the access token,
//! sending through core's `HttpClient`, usage headers reported, and error bodies mapped.

use std::fmt;

use konektly_core::{AccessToken, CallKind, Error, HttpClient, PublishContext, Result};
use reqwest::RequestBuilder;
use serde::de::DeserializeOwned;
use url::Url;

use crate::builder::MetaConfig;
use crate::error::MetaDialect;

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
