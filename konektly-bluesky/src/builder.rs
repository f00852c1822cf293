//! [`BlueskyBuilder`]: `new()` reads nothing, `from_env()` reads only `KONEKTLY_BLUESKY_*`,
//! `with_*` setters, and `build()` is the one fallible step.

use std::time::Duration;

use konektly_core::{Error, HttpClient, HttpConfig, Result};
use url::Url;

use crate::config::{Config, Limits, RateLimits};
use crate::platform::BlueskyPlatform;

/// Builds a [`BlueskyPlatform`]. Nothing is required: Bluesky has no app registration for
/// app-password sessions.
///
/// ```
/// use konektly_bluesky::BlueskyBuilder;
///
/// let bluesky = BlueskyBuilder::new().build().unwrap();
/// # let _ = bluesky;
/// ```
#[derive(Clone, Debug, Default)]
pub struct BlueskyBuilder {
    base_url: Option<String>,
    service_url: Option<String>,
    plc_url: Option<String>,
    app_url: Option<String>,
    sign_in_page: Option<String>,
    did_web_http: bool,
    limits: Option<Limits>,
    rate_limits: Option<RateLimits>,
    access_ttl: Option<Duration>,
    refresh_ttl: Option<Duration>,
    rate_limit_wait: Option<Duration>,
    fetch_link_cards: Option<bool>,
    http: Option<HttpClient>,
    http_config: Option<HttpConfig>,
    env_error: Option<String>,
}

impl BlueskyBuilder {
    /// An empty builder (reads nothing from the environment).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from `KONEKTLY_BLUESKY_SERVICE_URL` (the entryway, default
    /// `https://bsky.social`), `_PLC_URL` (default `https://plc.directory`), `_APP_URL` (default
    /// `https://bsky.app`), `_BASE_URL` (every host at once: the sandbox), `_SIGN_IN_PAGE`,
    /// `_MAX_IMAGE_BYTES`, `_MAX_VIDEO_BYTES`, `_MAX_VIDEO_SECS` and `_FETCH_LINK_CARDS`
    /// (`true`/`false`). Bad values are reported by `build()`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(format!("KONEKTLY_BLUESKY_{k}")).ok().filter(|v| !v.trim().is_empty());
        let mut b = Self::new();
        b.base_url = var("BASE_URL");
        b.service_url = var("SERVICE_URL");
        b.plc_url = var("PLC_URL");
        b.app_url = var("APP_URL");
        b.sign_in_page = var("SIGN_IN_PAGE");
        let mut limits = Limits::default();
        let mut changed = false;
        for (name, slot) in
            [("MAX_IMAGE_BYTES", &mut limits.max_image_bytes), ("MAX_VIDEO_BYTES", &mut limits.max_video_bytes)]
        {
            if let Some(v) = var(name) {
                match v.trim().parse() {
                    Ok(n) => {
                        *slot = n;
                        changed = true;
                    }
                    Err(_) => {
                        b.env_error = Some(format!("KONEKTLY_BLUESKY_{name} must be a number of bytes, not `{v}`"))
                    }
                }
            }
        }
        if let Some(v) = var("MAX_VIDEO_SECS") {
            match v.trim().parse() {
                Ok(n) => {
                    limits.max_video_duration = Duration::from_secs(n);
                    changed = true;
                }
                Err(_) => b.env_error = Some(format!("KONEKTLY_BLUESKY_MAX_VIDEO_SECS must be seconds, not `{v}`")),
            }
        }
        if changed {
            b.limits = Some(limits);
        }
        if let Some(v) = var("FETCH_LINK_CARDS") {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "on" | "yes" => b.fetch_link_cards = Some(true),
                "false" | "0" | "off" | "no" => b.fetch_link_cards = Some(false),
                other => {
                    b.env_error =
                        Some(format!("KONEKTLY_BLUESKY_FETCH_LINK_CARDS must be true or false, not `{other}`"))
                }
            }
        }
        b
    }

    /// Replaces every Bluesky host (entryway, PLC directory) with `url`, keeping the real
    /// paths. For tests and the sandbox (post URLs still name `bsky.app`).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The entryway: where handles are resolved and where a sign-in with an e-mail goes
    /// (default `https://bsky.social`). Posts go to each account's own PDS, found from its DID.
    pub fn with_service_url(mut self, url: impl Into<String>) -> Self {
        self.service_url = Some(url.into());
        self
    }

    /// The PLC directory (default `https://plc.directory`).
    pub fn with_plc_url(mut self, url: impl Into<String>) -> Self {
        self.plc_url = Some(url.into());
        self
    }

    /// The web app whose post URLs are recorded (default `https://bsky.app`).
    pub fn with_app_url(mut self, url: impl Into<String>) -> Self {
        self.app_url = Some(url.into());
        self
    }

    /// The page where users give their handle and app password. `connect` sends the user there
    /// with `redirect_uri` and `state`; the page redirects back with `state` and a `code` made by
    /// [`app_password_code`](crate::app_password_code). Without one, `connect` is refused and
    /// applications call [`BlueskyPlatform::sign_in`] or `complete_connect` themselves.
    pub fn with_sign_in_page(mut self, url: impl Into<String>) -> Self {
        self.sign_in_page = Some(url.into());
        self
    }

    /// Fetches `did:web` documents over plain HTTP (for a local test server only).
    pub fn with_did_web_over_http(mut self, yes: bool) -> Self {
        self.did_web_http = yes;
        self
    }

    /// The media limits (default: [`Limits::default`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// The write budgets declared to the engine (default: Bluesky's documented points).
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = Some(limits);
        self
    }

    /// The session lifetimes assumed when a JWT carries no `exp` (default 120 min and 90 days,
    /// the reference PDS's; the entryway's are unconfirmed).
    pub fn with_session_lifetimes(mut self, access: Duration, refresh: Duration) -> Self {
        self.access_ttl = Some(access);
        self.refresh_ttl = Some(refresh);
        self
    }

    /// How long to wait after `RateLimitExceeded` without a `RateLimit-Reset` (default 60 s).
    pub fn with_rate_limit_wait(mut self, wait: Duration) -> Self {
        self.rate_limit_wait = Some(wait);
        self
    }

    /// Whether a link card without a title in the options reads the page's Open Graph title
    /// and description (default true; Bluesky builds no card itself).
    pub fn with_link_card_fetching(mut self, yes: bool) -> Self {
        self.fetch_link_cards = Some(yes);
        self
    }

    /// The HTTP client (default: core's, with its timeouts and retries).
    pub fn with_http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// The HTTP configuration of core's client.
    pub fn with_http_config(mut self, config: HttpConfig) -> Self {
        self.http_config = Some(config);
        self
    }

    /// Builds the platform.
    pub fn build(self) -> Result<BlueskyPlatform> {
        if let Some(e) = self.env_error {
            return Err(Error::Config(e));
        }
        let parse = |what: &str, v: &str| -> Result<Url> {
            let mut u = Url::parse(v).map_err(|e| Error::Config(format!("invalid Bluesky {what} URL `{v}`: {e}")))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(Error::Config(format!("the Bluesky {what} URL must be http(s): `{v}`")));
            }
            if !u.path().ends_with('/') {
                let p = format!("{}/", u.path());
                u.set_path(&p);
            }
            Ok(u)
        };
        let base = self.base_url.as_deref().map(|u| parse("base", u)).transpose()?;
        let pick = |what: &str, own: &Option<String>, default: &str| -> Result<Url> {
            match (own, &base) {
                (Some(u), _) => parse(what, u),
                (None, Some(b)) => Ok(b.clone()),
                (None, None) => parse(what, default),
            }
        };
        let service = pick("service", &self.service_url, "https://bsky.social/")?;
        let plc_directory = pick("PLC directory", &self.plc_url, "https://plc.directory/")?;
        let app_url = match &self.app_url {
            Some(u) => parse("app", u)?,
            None => parse("app", "https://bsky.app/")?,
        };
        let sign_in_page = self
            .sign_in_page
            .as_deref()
            .map(|u| Url::parse(u).map_err(|e| Error::Config(format!("invalid Bluesky sign-in page `{u}`: {e}"))))
            .transpose()?;
        let limits = self.limits.unwrap_or_default();
        if limits.max_image_bytes == 0 || limits.max_video_bytes == 0 || limits.max_thumb_bytes == 0 {
            return Err(Error::Config("Bluesky media limits must be positive".into()));
        }
        let rate_limits = self.rate_limits.unwrap_or_default();
        if rate_limits.points_per_hour == 0 || rate_limits.points_per_day == 0 {
            return Err(Error::Config("Bluesky rate limits must be positive".into()));
        }
        let http = match (self.http, self.http_config) {
            (Some(h), _) => h,
            (None, Some(c)) => HttpClient::with_config(c)?,
            (None, None) => HttpClient::new()?,
        };
        let config = Config {
            service,
            plc_directory,
            app_url,
            sign_in_page,
            did_web_http: self.did_web_http,
            limits,
            rate_limits,
            access_ttl: self.access_ttl.unwrap_or(Duration::from_secs(120 * 60)),
            refresh_ttl: self.refresh_ttl.unwrap_or(Duration::from_secs(90 * 86_400)),
            rate_limit_wait: self.rate_limit_wait.unwrap_or(crate::error::DEFAULT_RATE_LIMIT_WAIT),
            fetch_link_cards: self.fetch_link_cards.unwrap_or(true),
        };
        Ok(BlueskyPlatform::new(config, http))
    }
}
