//! The adapter's configuration: what the builder (`builder.rs`) leaves for the platform, PKCE
//! and TikTok's per-token rate limits.

use std::fmt;
use std::time::Duration;

use konektly_core::ClientSecret;
use url::Url;

/// Whether and how PKCE is used (TikTok asks for it from desktop and mobile apps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pkce {
    /// No PKCE (web apps with a client secret).
    #[default]
    Off,
    /// S256 with the base64url challenge of RFC 7636.
    S256,
    /// S256 with a hex-encoded SHA-256 challenge, which TikTok's desktop guide reportedly shows
    /// (unconfirmed; try it if TikTok answers "Code verifier or code challenge is invalid").
    S256Hex,
}

/// TikTok's per-access-token limits: a sliding one-minute window per endpoint family.
///
/// The engine's budgets are fixed windows, which could let twice the limit through around a
/// window's edge; so each limit is declared as even spacing (one call per `window / limit`,
/// plus `margin`), which never breaks a sliding window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    /// Post inits (direct video, inbox video, photo) per window: 6.
    pub post_inits: u32,
    /// `creator_info/query` calls per window: 20.
    pub creator_info: u32,
    /// `status/fetch` calls per window: 30.
    pub status_fetches: u32,
    /// The window: one minute.
    pub window: Duration,
    /// Extra spacing, as a fraction of the even spacing (absorbs the time between the engine's
    /// grant and the request reaching TikTok): 0.1.
    pub margin: f64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { post_inits: 6, creator_info: 20, status_fetches: 30, window: Duration::from_secs(60), margin: 0.1 }
    }
}

/// Everything a built platform knows.
#[derive(Clone)]
pub(crate) struct Config {
    pub client_key: String,
    pub client_secret: ClientSecret,
    pub scopes: Vec<String>,
    pub pkce: Pkce,
    pub api_base: Url,
    pub auth_base: Url,
    pub chunk_size: u64,
    pub poll_interval: Duration,
    pub post_id_wait: Duration,
    pub upload_url_ttl: Duration,
    pub rate_limits: RateLimits,
    pub rate_limit_wait: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TikTokConfig")
            .field("client_key", &self.client_key)
            .field("client_secret", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .field("pkce", &self.pkce)
            .field("api_base", &self.api_base.as_str())
            .field("auth_base", &self.auth_base.as_str())
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}
