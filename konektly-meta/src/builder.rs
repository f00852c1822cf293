//! `MetaBuilder`: one configuration for both platforms (Facebook Pages and Instagram).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use konektly_core::{ClientSecret, Error, HttpClient, HttpConfig, Platform, Result};
use url::Url;

use crate::client::MetaClient;
use crate::config::{Limits, MetaConfig};
use crate::platform::FacebookPagePlatform;
use crate::platform::InstagramPlatform;

/// The Graph API version used unless configured otherwise.
pub const DEFAULT_GRAPH_VERSION: &str = "v25.0";

/// Scopes asked by Facebook Login unless configured otherwise: Pages publishing and the
/// Instagram accounts linked to them.
pub const DEFAULT_FACEBOOK_SCOPES: &[&str] = &[
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_posts",
    "business_management",
    "instagram_basic",
    "instagram_content_publish",
];

/// Scopes asked by Instagram Login unless configured otherwise.
pub const DEFAULT_INSTAGRAM_SCOPES: &[&str] = &["instagram_business_basic", "instagram_business_content_publish"];

/// Builds [`FacebookPagePlatform`] and [`InstagramPlatform`] from one Meta app configuration.
///
/// ```
/// use konektly_meta::MetaBuilder;
///
/// let meta = MetaBuilder::new()
///     .with_app("1234567890", "app-secret")
///     .with_instagram_app("987654321", "ig-app-secret")
///     .with_graph_version("v25.0")
///     .build()
///     .unwrap();
/// assert_eq!(meta.facebook.capabilities().max_text_len, 63_206);
/// # use konektly_core::Platform;
/// ```
#[derive(Clone, Default)]
pub struct MetaBuilder {
    app_id: Option<String>,
    app_secret: Option<ClientSecret>,
    config_id: Option<String>,
    scopes: Option<Vec<String>>,
    pkce: Option<bool>,
    instagram_pkce: Option<bool>,
    instagram_app_id: Option<String>,
    instagram_app_secret: Option<ClientSecret>,
    instagram_scopes: Option<Vec<String>>,
    graph_version: Option<String>,
    facebook_base: Option<String>,
    instagram_base: Option<String>,
    http: Option<HttpConfig>,
    container_poll_interval: Option<Duration>,
    container_poll_deadline: Option<Duration>,
    video_poll_interval: Option<Duration>,
    quota_retry: Option<Duration>,
    reconcile_skew: Option<Duration>,
    reconcile_pages: Option<usize>,
    usage_cool_down: Option<Duration>,
    instagram_refresh_ahead: Option<Duration>,
    limits: Limits,
}

impl fmt::Debug for MetaBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaBuilder")
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "[REDACTED]"))
            .field("config_id", &self.config_id)
            .field("pkce", &self.pkce)
            .field("instagram_app_id", &self.instagram_app_id)
            .field("instagram_app_secret", &self.instagram_app_secret.as_ref().map(|_| "[REDACTED]"))
            .field("graph_version", &self.graph_version)
            .field("facebook_base", &self.facebook_base)
            .field("instagram_base", &self.instagram_base)
            .finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(format!("KONEKTLY_META_{name}")).ok().filter(|v| !v.trim().is_empty())
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl MetaBuilder {
    /// An empty builder; reads nothing from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from `KONEKTLY_META_*` variables only: `APP_ID`, `APP_SECRET`, `CONFIG_ID`,
    /// `SCOPES`, `PKCE` (`off` to disable), `INSTAGRAM_APP_ID`, `INSTAGRAM_APP_SECRET`,
    /// `INSTAGRAM_SCOPES`, `INSTAGRAM_PKCE` (`on` to enable), `GRAPH_VERSION`, `BASE_URL`,
    /// `INSTAGRAM_BASE_URL`. Setters called afterwards win.
    pub fn from_env() -> Self {
        Self {
            app_id: env("APP_ID"),
            app_secret: env("APP_SECRET").map(ClientSecret::new),
            config_id: env("CONFIG_ID"),
            scopes: env("SCOPES").map(|s| split_list(&s)),
            pkce: env("PKCE").map(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "off" | "false" | "0")),
            instagram_pkce: env("INSTAGRAM_PKCE")
                .map(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "off" | "false" | "0")),
            instagram_app_id: env("INSTAGRAM_APP_ID"),
            instagram_app_secret: env("INSTAGRAM_APP_SECRET").map(ClientSecret::new),
            instagram_scopes: env("INSTAGRAM_SCOPES").map(|s| split_list(&s)),
            graph_version: env("GRAPH_VERSION"),
            facebook_base: env("BASE_URL"),
            instagram_base: env("INSTAGRAM_BASE_URL"),
            ..Self::default()
        }
    }

    /// The Meta app's id and secret (Facebook Login and the Graph API).
    pub fn with_app(mut self, app_id: impl Into<String>, app_secret: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self.app_secret = Some(ClientSecret::new(app_secret.into()));
        self
    }

    /// Whether Facebook Login uses PKCE (S256 `code_challenge` on the dialog, `code_verifier`
    /// on the code exchange), as Meta documents for manually built login flows. Default on:
    /// a stolen code is then useless without the verifier kept in the pending authorization.
    /// Turn it off only if your app's login setup refuses it.
    pub fn with_pkce(mut self, on: bool) -> Self {
        self.pkce = Some(on);
        self
    }

    /// Whether Instagram Login (Business Login for Instagram) uses PKCE S256. Default off:
    /// Instagram's docs do not describe it (unconfirmed); turn it on if your app accepts it.
    pub fn with_instagram_pkce(mut self, on: bool) -> Self {
        self.instagram_pkce = Some(on);
        self
    }

    /// A Facebook Login for Business configuration id: sent as `config_id` instead of `scope`.
    pub fn with_config_id(mut self, config_id: impl Into<String>) -> Self {
        self.config_id = Some(config_id.into());
        self
    }

    /// The scopes Facebook Login asks for (default [`DEFAULT_FACEBOOK_SCOPES`]).
    pub fn with_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The Instagram app's id and secret (Instagram Login, `graph.instagram.com`). Without it,
    /// Instagram accounts connect through Facebook Login only.
    pub fn with_instagram_app(mut self, app_id: impl Into<String>, app_secret: impl Into<String>) -> Self {
        self.instagram_app_id = Some(app_id.into());
        self.instagram_app_secret = Some(ClientSecret::new(app_secret.into()));
        self
    }

    /// The scopes Instagram Login asks for (default [`DEFAULT_INSTAGRAM_SCOPES`]).
    pub fn with_instagram_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.instagram_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The Graph API version (`v25.0` by default; each version lives about two years).
    pub fn with_graph_version(mut self, version: impl Into<String>) -> Self {
        self.graph_version = Some(version.into());
        self
    }

    /// Replaces every Facebook host (`www`, `graph`, `graph-video`, `rupload`) with `url`,
    /// keeping the real paths. For tests and the sandbox.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.facebook_base = Some(url.into());
        self
    }

    /// Replaces every Instagram host (`www.instagram.com`, `api.instagram.com`,
    /// `graph.instagram.com`) with `url`, keeping the real paths.
    pub fn with_instagram_base_url(mut self, url: impl Into<String>) -> Self {
        self.instagram_base = Some(url.into());
        self
    }

    /// Timeouts and retries of the HTTP client.
    pub fn with_http_config(mut self, config: HttpConfig) -> Self {
        self.http = Some(config);
        self
    }

    /// How often an Instagram container's status is read while waiting for `FINISHED`
    /// (default 5 s; Meta suggests no more than once a minute for long videos).
    pub fn with_container_poll_interval(mut self, interval: Duration) -> Self {
        self.container_poll_interval = Some(interval);
        self
    }

    /// How long one `publish` or `poll` call waits for containers in place before it answers
    /// `Processing` and lets the engine poll later (default 60 s).
    pub fn with_container_poll_deadline(mut self, deadline: Duration) -> Self {
        self.container_poll_deadline = Some(deadline);
        self
    }

    /// When to poll a Facebook video or Reel that is still processing (default 30 s).
    pub fn with_video_poll_interval(mut self, interval: Duration) -> Self {
        self.video_poll_interval = Some(interval);
        self
    }

    /// How long to wait when Instagram's publishing quota is spent (a rolling 24 h window whose
    /// release time Meta does not say; default 1 h).
    pub fn with_quota_retry(mut self, wait: Duration) -> Self {
        self.quota_retry = Some(wait);
        self
    }

    /// The clock-skew allowance of a Facebook reconcile (default 2 min): after a create whose
    /// answer was lost, the Page's posts created from this long before the create was sent to
    /// this long after its call could have ended are read (all of them, page by page).
    pub fn with_reconcile_skew(mut self, skew: Duration) -> Self {
        self.reconcile_skew = Some(skew);
        self
    }

    /// How many pages of 100 posts a Facebook reconcile reads at most (default 20). When the
    /// window holds more, the outcome stays unknown (never "absent"): the engine looks again
    /// later, and ends the target as `outcome_unknown` when its attempts run out.
    pub fn with_reconcile_pages(mut self, pages: usize) -> Self {
        self.reconcile_pages = Some(pages);
        self
    }

    /// How long a usage bucket that reads 100% (`X-App-Usage`, `X-Business-Use-Case-Usage`
    /// without `estimated_time_to_regain_access`) holds the app's or account's calls (default
    /// 15 min: Meta's window is a rolling hour and it does not say when calls return).
    pub fn with_usage_cool_down(mut self, wait: Duration) -> Self {
        self.usage_cool_down = Some(wait);
        self
    }

    /// How long before its end an Instagram Login token is refreshed (default 7 days; it lives
    /// 60 days, must be at least a day old to refresh, and dies if not refreshed in time). Stored
    /// on the account as [`konektly_core::REFRESH_AHEAD_KEY`], which the engine honours.
    pub fn with_instagram_refresh_ahead(mut self, ahead: Duration) -> Self {
        self.instagram_refresh_ahead = Some(ahead);
        self
    }

    /// The largest Instagram Reel accepted (default 300 MB; some documents say 1 GB).
    pub fn with_instagram_reel_max_bytes(mut self, bytes: u64) -> Self {
        self.limits.ig_reel_max_bytes = bytes;
        self
    }

    /// The largest Facebook photo accepted (default 10 MB; some sources say 4 MB).
    pub fn with_facebook_photo_max_bytes(mut self, bytes: u64) -> Self {
        self.limits.fb_photo_max_bytes = bytes;
        self
    }

    /// The largest Facebook video accepted (default 2 GB).
    pub fn with_facebook_video_max_bytes(mut self, bytes: u64) -> Self {
        self.limits.fb_video_max_bytes = bytes;
        self
    }

    /// How far ahead a Facebook post may be natively scheduled (default 30 days; the feed
    /// reference says 75).
    pub fn with_facebook_schedule_max_ahead(mut self, ahead: Duration) -> Self {
        self.limits.fb_schedule_max = chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::days(30));
        self
    }

    /// Checks the configuration and builds both platforms.
    pub fn build(self) -> Result<MetaPlatforms> {
        let app_id = self.app_id.ok_or_else(|| {
            Error::Config("konektly-meta needs the Meta app id (with_app or KONEKTLY_META_APP_ID)".into())
        })?;
        let app_secret = self.app_secret.ok_or_else(|| {
            Error::Config("konektly-meta needs the Meta app secret (with_app or KONEKTLY_META_APP_SECRET)".into())
        })?;
        if self.instagram_app_id.is_some() != self.instagram_app_secret.is_some() {
            return Err(Error::Config("Instagram Login needs both the Instagram app id and its secret".into()));
        }
        let parse_base = |name: &str, s: Option<String>| -> Result<Option<Url>> {
            let Some(s) = s else { return Ok(None) };
            let mut u = Url::parse(&s).map_err(|e| Error::Config(format!("{name} `{s}` is not a URL: {e}")))?;
            if !u.path().ends_with('/') {
                let p = format!("{}/", u.path());
                u.set_path(&p);
            }
            Ok(Some(u))
        };
        let graph_version = self.graph_version.unwrap_or_else(|| DEFAULT_GRAPH_VERSION.to_owned());
        if !graph_version.starts_with('v') || graph_version[1..].parse::<f32>().is_err() {
            return Err(Error::Config(format!("the Graph API version `{graph_version}` should look like v25.0")));
        }
        let config = MetaConfig {
            app_id,
            app_secret,
            config_id: self.config_id,
            pkce: self.pkce.unwrap_or(true),
            instagram_pkce: self.instagram_pkce.unwrap_or(false),
            scopes: self.scopes.unwrap_or_else(|| DEFAULT_FACEBOOK_SCOPES.iter().map(|s| s.to_string()).collect()),
            instagram_app_id: self.instagram_app_id,
            instagram_app_secret: self.instagram_app_secret,
            instagram_scopes: self
                .instagram_scopes
                .unwrap_or_else(|| DEFAULT_INSTAGRAM_SCOPES.iter().map(|s| s.to_string()).collect()),
            graph_version,
            facebook_base: parse_base("the base URL", self.facebook_base)?,
            instagram_base: parse_base("the Instagram base URL", self.instagram_base)?,
            container_poll_interval: self.container_poll_interval.unwrap_or(Duration::from_secs(5)),
            container_poll_deadline: self.container_poll_deadline.unwrap_or(Duration::from_secs(60)),
            video_poll_interval: self.video_poll_interval.unwrap_or(Duration::from_secs(30)),
            quota_retry: self.quota_retry.unwrap_or(Duration::from_secs(3600)),
            reconcile_skew: self.reconcile_skew.unwrap_or(Duration::from_secs(120)),
            reconcile_pages: self.reconcile_pages.unwrap_or(20).max(1),
            usage_cool_down: self.usage_cool_down.unwrap_or(crate::error::APP_USAGE_COOL_DOWN),
            instagram_refresh_ahead: self.instagram_refresh_ahead.unwrap_or(Duration::from_secs(7 * 86_400)),
            limits: self.limits,
        };
        let http = HttpClient::with_config(self.http.unwrap_or_default())?;
        let client = Arc::new(MetaClient::new(http, config));
        Ok(MetaPlatforms {
            facebook: Arc::new(FacebookPagePlatform::new(client.clone())),
            instagram: Arc::new(InstagramPlatform::new(client)),
        })
    }
}

/// Both platforms, sharing one configuration and HTTP client.
#[derive(Clone, Debug)]
pub struct MetaPlatforms {
    /// Facebook Pages (`facebook`).
    pub facebook: Arc<FacebookPagePlatform>,
    /// Instagram professional accounts (`instagram`).
    pub instagram: Arc<InstagramPlatform>,
}

impl MetaPlatforms {
    /// Both, ready for `Konektly::builder().platform(…)`.
    pub fn platforms(&self) -> Vec<Arc<dyn Platform>> {
        vec![self.facebook.clone(), self.instagram.clone()]
    }
}
