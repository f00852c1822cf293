//! [`TikTokBuilder`]: `new()` reads nothing, `from_env()` reads only `KONEKTLY_TIKTOK_*`, `with_*`
//! setters, and `build()` is the one fallible step.

use std::fmt;
use std::time::Duration;

use konektly_core::{ClientSecret, Error, HttpClient, Result};
use url::Url;

use crate::config::{Config, Pkce, RateLimits};
use crate::platform::TikTokPlatform;

/// The default scopes: profile, direct posts, inbox uploads.
pub const DEFAULT_SCOPES: [&str; 3] = ["user.info.basic", "video.publish", "video.upload"];

/// Builds a [`TikTokPlatform`].
///
/// ```
/// use konektly_tiktok::TikTokBuilder;
///
/// let tiktok = TikTokBuilder::new()
///     .with_client_key("aw1234")
///     .with_client_secret("the-secret")
///     .build()
///     .unwrap();
/// assert!(!format!("{tiktok:?}").contains("the-secret"));
/// ```
#[derive(Clone, Default)]
pub struct TikTokBuilder {
    client_key: Option<String>,
    client_secret: Option<ClientSecret>,
    scopes: Option<Vec<String>>,
    pkce: Pkce,
    base_url: Option<String>,
    api_base_url: Option<String>,
    auth_base_url: Option<String>,
    chunk_size: Option<u64>,
    poll_interval: Option<Duration>,
    post_id_wait: Option<Duration>,
    upload_url_ttl: Option<Duration>,
    rate_limits: Option<RateLimits>,
    rate_limit_wait: Option<Duration>,
    http: Option<HttpClient>,
    env_error: Option<String>,
}

impl fmt::Debug for TikTokBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TikTokBuilder")
            .field("client_key", &self.client_key)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("scopes", &self.scopes)
            .field("pkce", &self.pkce)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl TikTokBuilder {
    /// An empty builder (reads nothing from the environment).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from `KONEKTLY_TIKTOK_CLIENT_KEY`, `_CLIENT_SECRET`, `_SCOPES` (comma-separated),
    /// `_PKCE` (`off`, `s256`, `s256-hex`), `_BASE_URL`, `_API_BASE_URL`, `_AUTH_BASE_URL` and
    /// `_CHUNK_SIZE` (bytes). Bad values are reported by `build()`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(format!("KONEKTLY_TIKTOK_{k}")).ok().filter(|v| !v.trim().is_empty());
        let mut b = Self::new();
        b.client_key = var("CLIENT_KEY");
        b.client_secret = var("CLIENT_SECRET").map(ClientSecret::new);
        b.scopes = var("SCOPES").map(|s| konektly_core::oauth::split_scopes(&s));
        b.base_url = var("BASE_URL");
        b.api_base_url = var("API_BASE_URL");
        b.auth_base_url = var("AUTH_BASE_URL");
        if let Some(p) = var("PKCE") {
            match p.trim().to_ascii_lowercase().as_str() {
                "off" | "false" | "0" => b.pkce = Pkce::Off,
                "s256" | "on" | "true" | "1" => b.pkce = Pkce::S256,
                "s256-hex" | "hex" => b.pkce = Pkce::S256Hex,
                other => {
                    b.env_error = Some(format!("KONEKTLY_TIKTOK_PKCE must be off, s256 or s256-hex, not `{other}`"))
                }
            }
        }
        if let Some(c) = var("CHUNK_SIZE") {
            match c.trim().parse() {
                Ok(n) => b.chunk_size = Some(n),
                Err(_) => {
                    b.env_error = Some(format!("KONEKTLY_TIKTOK_CHUNK_SIZE must be a number of bytes, not `{c}`"))
                }
            }
        }
        b
    }

    /// The app's client key.
    pub fn with_client_key(mut self, key: impl Into<String>) -> Self {
        self.client_key = Some(key.into());
        self
    }

    /// The app's client secret.
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(ClientSecret::new(secret.into()));
        self
    }

    /// The scopes to ask for (default `user.info.basic,video.publish,video.upload`).
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// PKCE, for desktop and mobile apps.
    pub fn with_pkce(mut self, pkce: Pkce) -> Self {
        self.pkce = pkce;
        self
    }

    /// Replaces every TikTok host (API, OAuth and the browser's authorize page) with `url`,
    /// keeping the real paths. For tests and the sandbox.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Replaces only the API host (`open.tiktokapis.com`).
    pub fn with_api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
        self
    }

    /// Replaces only the authorize page's host (`www.tiktok.com`).
    pub fn with_auth_base_url(mut self, url: impl Into<String>) -> Self {
        self.auth_base_url = Some(url.into());
        self
    }

    /// The preferred upload chunk size, 5–64 MB (default 10 MB).
    pub fn with_chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = Some(bytes);
        self
    }

    /// How long to wait between status fetches (default 5 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// How long after `PUBLISH_COMPLETE` to keep polling for the public post id, which TikTok
    /// gives only after moderation (default 2 min; `SELF_ONLY` posts never get one). After
    /// that, the post is reported published under its `publish_id`.
    pub fn with_post_id_wait(mut self, wait: Duration) -> Self {
        self.post_id_wait = Some(wait);
        self
    }

    /// How long an upload URL is trusted before an interrupted upload starts over (default
    /// 55 min; TikTok's URLs last about an hour, unconfirmed).
    pub fn with_upload_url_ttl(mut self, ttl: Duration) -> Self {
        self.upload_url_ttl = Some(ttl);
        self
    }

    /// The per-token limits declared to the engine (default: TikTok's documented ones).
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = Some(limits);
        self
    }

    /// How long to wait after TikTok's `rate_limit_exceeded` when the answer says nothing of
    /// when to come back (default 60 s: TikTok's windows are per minute; the wait is not
    /// documented, so it is configurable).
    pub fn with_rate_limit_wait(mut self, wait: Duration) -> Self {
        self.rate_limit_wait = Some(wait);
        self
    }

    /// The HTTP client (default: core's, with its timeouts and retries).
    pub fn with_http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the platform.
    pub fn build(self) -> Result<TikTokPlatform> {
        if let Some(e) = self.env_error {
            return Err(Error::Config(e));
        }
        let client_key = self
            .client_key
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| Error::Config("TikTok needs a client key (KONEKTLY_TIKTOK_CLIENT_KEY)".into()))?;
        let client_secret = self
            .client_secret
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| Error::Config("TikTok needs a client secret (KONEKTLY_TIKTOK_CLIENT_SECRET)".into()))?;
        let parse = |what: &str, v: &str| -> Result<Url> {
            let mut u = Url::parse(v).map_err(|e| Error::Config(format!("invalid TikTok {what} URL `{v}`: {e}")))?;
            if !u.path().ends_with('/') {
                let p = format!("{}/", u.path());
                u.set_path(&p);
            }
            Ok(u)
        };
        let base = self.base_url.as_deref().map(|u| parse("base", u)).transpose()?;
        let api_base = match (&self.api_base_url, &base) {
            (Some(u), _) => parse("API base", u)?,
            (None, Some(b)) => b.clone(),
            (None, None) => Url::parse("https://open.tiktokapis.com/").expect("a valid URL"),
        };
        let auth_base = match (&self.auth_base_url, &base) {
            (Some(u), _) => parse("authorize base", u)?,
            (None, Some(b)) => b.clone(),
            (None, None) => Url::parse("https://www.tiktok.com/").expect("a valid URL"),
        };
        let chunk_size = self.chunk_size.unwrap_or(10 * 1024 * 1024);
        if !(crate::upload::MIN_CHUNK..=crate::upload::MAX_CHUNK).contains(&chunk_size) {
            return Err(Error::Config(format!("the TikTok chunk size must be 5–64 MB, not {chunk_size} bytes")));
        }
        let scopes = self.scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        if scopes.is_empty() {
            return Err(Error::Config("TikTok needs at least one scope".into()));
        }
        let rate_limits = self.rate_limits.unwrap_or_default();
        if rate_limits.post_inits == 0
            || rate_limits.creator_info == 0
            || rate_limits.status_fetches == 0
            || rate_limits.window.is_zero()
            || !(0.0..=10.0).contains(&rate_limits.margin)
        {
            return Err(Error::Config("TikTok rate limits must be positive".into()));
        }
        let http = match self.http {
            Some(h) => h,
            None => HttpClient::new()?,
        };
        let config = Config {
            client_key,
            client_secret,
            scopes,
            pkce: self.pkce,
            api_base,
            auth_base,
            chunk_size,
            poll_interval: self.poll_interval.unwrap_or(Duration::from_secs(5)),
            post_id_wait: self.post_id_wait.unwrap_or(Duration::from_secs(120)),
            upload_url_ttl: self.upload_url_ttl.unwrap_or(Duration::from_secs(55 * 60)),
            rate_limits,
            rate_limit_wait: self.rate_limit_wait.unwrap_or(crate::error::DEFAULT_RATE_LIMIT_WAIT),
        };
        Ok(TikTokPlatform::new(config, http))
    }
}
