//! The adapter's configuration: what the builder (`builder.rs`) leaves for the platform.

use std::fmt;
use std::time::Duration;

use konektly_core::ClientSecret;
use url::Url;

/// Everything a built platform knows.
#[derive(Clone)]
pub(crate) struct Config {
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scopes: Vec<String>,
    /// `LinkedIn-Version` (`YYYYMM`): each version lives about a year, then answers 426.
    pub version: String,
    /// Whether the app was approved for refresh tokens (MDP partners only).
    pub refresh_tokens: bool,
    pub api_base: Url,
    pub auth_base: Url,
    pub rate_limit_wait: Duration,
    /// How far before the create a reconciled post's `createdAt` may be (clock skew).
    pub reconcile_skew: Duration,
    /// How many of the author's recent posts reconcile reads.
    pub reconcile_count: u32,
    /// The largest image accepted (unconfirmed: 5 MB or 8 MB).
    pub max_image_bytes: u64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedInConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .field("version", &self.version)
            .field("refresh_tokens", &self.refresh_tokens)
            .field("api_base", &self.api_base.as_str())
            .field("auth_base", &self.auth_base.as_str())
            .finish_non_exhaustive()
    }
}
