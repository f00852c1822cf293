//! [`LinkedInBuilder`]: `new()` reads nothing, `from_env()` reads only `KONEKTLY_LINKEDIN_*`,
//! `with_*` setters, and `build()` is the one fallible step.

use std::fmt;
use std::time::Duration;

use konektly_core::{ClientSecret, Error, HttpClient, Result};
use url::Url;

use crate::config::Config;
use crate::platform::LinkedInPlatform;

/// The default scopes: OpenID sign-in (`/v2/userinfo`) and posting as the member ("Share on
/// LinkedIn", self-serve).
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "w_member_social"];

/// The default `LinkedIn-Version` (`YYYYMM`). LinkedIn supports a version for about a year,
/// then answers `426 NONEXISTENT_VERSION`: set a current one with
/// [`LinkedInBuilder::with_version`] or `KONEKTLY_LINKEDIN_VERSION`.
pub const DEFAULT_VERSION: &str = "202603";

/// Builds a [`LinkedInPlatform`].
///
/// ```
/// use konektly_linkedin::LinkedInBuilder;
///
/// let linkedin = LinkedInBuilder::new()
///     .with_client_id("86abc")
///     .with_client_secret("the-secret")
///     .build()
///     .unwrap();
/// assert!(!format!("{linkedin:?}").contains("the-secret"));
/// ```
#[derive(Clone, Default)]
pub struct LinkedInBuilder {
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    scopes: Option<Vec<String>>,
    version: Option<String>,
    refresh_tokens: bool,
    base_url: Option<String>,
    api_base_url: Option<String>,
    auth_base_url: Option<String>,
    rate_limit_wait: Option<Duration>,
    reconcile_skew: Option<Duration>,
    reconcile_count: Option<u32>,
    max_image_bytes: Option<u64>,
    http: Option<HttpClient>,
    env_error: Option<String>,
}

impl fmt::Debug for LinkedInBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedInBuilder")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("scopes", &self.scopes)
            .field("version", &self.version)
            .field("refresh_tokens", &self.refresh_tokens)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl LinkedInBuilder {
    /// An empty builder (reads nothing from the environment).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from `KONEKTLY_LINKEDIN_CLIENT_ID`, `_CLIENT_SECRET`, `_SCOPES` (space- or
    /// comma-separated), `_VERSION` (`YYYYMM`), `_REFRESH_TOKENS` (`true` for apps LinkedIn
    /// approved for refresh tokens), `_BASE_URL`, `_API_BASE_URL` and `_AUTH_BASE_URL`. Bad
    /// values are reported by `build()`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(format!("KONEKTLY_LINKEDIN_{k}")).ok().filter(|v| !v.trim().is_empty());
        let mut b = Self::new();
        b.client_id = var("CLIENT_ID");
        b.client_secret = var("CLIENT_SECRET").map(ClientSecret::new);
        b.scopes = var("SCOPES").map(|s| konektly_core::oauth::split_scopes(&s.replace(',', " ")));
        b.version = var("VERSION");
        b.base_url = var("BASE_URL");
        b.api_base_url = var("API_BASE_URL");
        b.auth_base_url = var("AUTH_BASE_URL");
        if let Some(r) = var("REFRESH_TOKENS") {
            match r.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "on" | "yes" => b.refresh_tokens = true,
                "false" | "0" | "off" | "no" => b.refresh_tokens = false,
                other => {
                    b.env_error = Some(format!("KONEKTLY_LINKEDIN_REFRESH_TOKENS must be true or false, not `{other}`"))
                }
            }
        }
        b
    }

    /// The app's client id.
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The app's client secret.
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(ClientSecret::new(secret.into()));
        self
    }

    /// The scopes to ask for (default `openid profile w_member_social`). LinkedIn refuses some
    /// combinations on some apps: ask only for the products the app has.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The `LinkedIn-Version` header, `YYYYMM` (default [`DEFAULT_VERSION`]).
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Whether the app is approved for refresh tokens (LinkedIn gives them only to approved
    /// Marketing Developer Platform partners). Off (the default), an account is reconnected
    /// when its 60-day token ends; the engine warns a week before.
    pub fn with_refresh_tokens(mut self, enabled: bool) -> Self {
        self.refresh_tokens = enabled;
        self
    }

    /// Replaces every LinkedIn host (API, OAuth and the browser's authorize page) with `url`,
    /// keeping the real paths. For tests and the sandbox.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Replaces only the API host (`api.linkedin.com`).
    pub fn with_api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
        self
    }

    /// Replaces only the OAuth host (`www.linkedin.com`).
    pub fn with_auth_base_url(mut self, url: impl Into<String>) -> Self {
        self.auth_base_url = Some(url.into());
        self
    }

    /// How long to wait after a 429 (LinkedIn sends no `Retry-After`; its limits are daily and
    /// reset at midnight UTC). Default 15 minutes.
    pub fn with_rate_limit_wait(mut self, wait: Duration) -> Self {
        self.rate_limit_wait = Some(wait);
        self
    }

    /// How long before the create a post found by reconcile may say it was created (clock
    /// skew; default 5 minutes).
    pub fn with_reconcile_skew(mut self, skew: Duration) -> Self {
        self.reconcile_skew = Some(skew);
        self
    }

    /// How many of the author's recent posts reconcile reads (default 20, at most 100).
    pub fn with_reconcile_count(mut self, count: u32) -> Self {
        self.reconcile_count = Some(count);
        self
    }

    /// The largest image accepted (default 5 MB; LinkedIn's limit is unconfirmed: 5 or 8 MB).
    pub fn with_max_image_bytes(mut self, bytes: u64) -> Self {
        self.max_image_bytes = Some(bytes);
        self
    }

    /// The HTTP client (default: core's, with its timeouts and retries).
    pub fn with_http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the platform.
    pub fn build(self) -> Result<LinkedInPlatform> {
        if let Some(e) = self.env_error {
            return Err(Error::Config(e));
        }
        let client_id = self
            .client_id
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| Error::Config("LinkedIn needs a client id (KONEKTLY_LINKEDIN_CLIENT_ID)".into()))?;
        let client_secret = self
            .client_secret
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| Error::Config("LinkedIn needs a client secret (KONEKTLY_LINKEDIN_CLIENT_SECRET)".into()))?;
        let parse = |what: &str, v: &str| -> Result<Url> {
            let mut u = Url::parse(v).map_err(|e| Error::Config(format!("invalid LinkedIn {what} URL `{v}`: {e}")))?;
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
            (None, None) => Url::parse("https://api.linkedin.com/").expect("a valid URL"),
        };
        let auth_base = match (&self.auth_base_url, &base) {
            (Some(u), _) => parse("OAuth base", u)?,
            (None, Some(b)) => b.clone(),
            (None, None) => Url::parse("https://www.linkedin.com/").expect("a valid URL"),
        };
        let version = self.version.unwrap_or_else(|| DEFAULT_VERSION.to_owned());
        let v = version.trim();
        if !(v.len() == 6 || v.len() == 8) || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Config(format!(
                "the LinkedIn version must be YYYYMM (or YYYYMMDD), not `{version}` (KONEKTLY_LINKEDIN_VERSION)"
            )));
        }
        let scopes = self.scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        if scopes.is_empty() {
            return Err(Error::Config("LinkedIn needs at least one scope".into()));
        }
        let reconcile_count = self.reconcile_count.unwrap_or(20);
        if !(1..=100).contains(&reconcile_count) {
            return Err(Error::Config("the LinkedIn reconcile count must be 1–100".into()));
        }
        let http = match self.http {
            Some(h) => h,
            None => HttpClient::new()?,
        };
        let config = Config {
            client_id,
            client_secret,
            scopes,
            version: v.to_owned(),
            refresh_tokens: self.refresh_tokens,
            api_base,
            auth_base,
            rate_limit_wait: self.rate_limit_wait.unwrap_or(crate::error::DEFAULT_RATE_LIMIT_WAIT),
            reconcile_skew: self.reconcile_skew.unwrap_or(Duration::from_secs(300)),
            reconcile_count,
            max_image_bytes: self.max_image_bytes.unwrap_or(crate::validate::DEFAULT_MAX_IMAGE_BYTES),
        };
        Ok(LinkedInPlatform::new(config, http))
    }
}
