//! [`XBuilder`]: the configuration of an [`XPlatform`]. `new()` reads nothing, `from_env()`
//! reads only `KONEKTLY_X_*`, and `build()` is the one step that can fail.

use std::fmt;

use konektly_core::oauth::{ClientAuth, OAuthClient, OAuthConfig};
use konektly_core::{ClientSecret, Error, HttpClient, HttpConfig, Result};
use url::Url;

use crate::platform::XPlatform;

/// The scopes asked for by default: post, read the user, upload media, and stay connected.
pub const DEFAULT_SCOPES: [&str; 5] = ["tweet.read", "tweet.write", "users.read", "media.write", "offline.access"];

/// Upload chunks are 1–4 MiB: X's edge answers 413 to 5 MB chunks.
pub const MIN_CHUNK_SIZE: usize = 1 << 20;
/// See [`MIN_CHUNK_SIZE`].
pub const MAX_CHUNK_SIZE: usize = 4 << 20;

const DEFAULT_API_BASE: &str = "https://api.x.com";
const DEFAULT_AUTH_BASE: &str = "https://x.com";

/// Builds an [`XPlatform`].
///
/// ```
/// use konektly_twitter::XBuilder;
///
/// let x = XBuilder::new()
///     .with_client_id("my-client-id")
///     .with_client_secret("my-client-secret") // a confidential client: token calls use HTTP Basic
///     .build()
///     .unwrap();
/// assert!(!format!("{x:?}").contains("my-client-secret"));
/// ```
#[derive(Clone, Default)]
pub struct XBuilder {
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    redirect_uri: Option<String>,
    api_base: Option<String>,
    auth_base: Option<String>,
    scopes: Option<Vec<String>>,
    chunk_size: Option<usize>,
    http: Option<HttpClient>,
    http_config: Option<HttpConfig>,
    env_error: Option<String>,
}

impl fmt::Debug for XBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XBuilder")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("redirect_uri", &self.redirect_uri)
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field("scopes", &self.scopes)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

impl XBuilder {
    /// An empty builder. Reads nothing from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from `KONEKTLY_X_CLIENT_ID`, `KONEKTLY_X_CLIENT_SECRET`,
    /// `KONEKTLY_X_REDIRECT_URI`, `KONEKTLY_X_BASE_URL`, `KONEKTLY_X_API_BASE_URL`,
    /// `KONEKTLY_X_AUTH_BASE_URL`, `KONEKTLY_X_SCOPES` (space- or comma-separated) and
    /// `KONEKTLY_X_CHUNK_SIZE` (bytes). Each is optional here; `build()` says what is missing
    /// or wrong.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut b = Self::new();
        b.client_id = var("KONEKTLY_X_CLIENT_ID");
        b.client_secret = var("KONEKTLY_X_CLIENT_SECRET").map(ClientSecret::new);
        b.redirect_uri = var("KONEKTLY_X_REDIRECT_URI");
        if let Some(base) = var("KONEKTLY_X_BASE_URL") {
            b = b.with_base_url(base);
        }
        if let Some(api) = var("KONEKTLY_X_API_BASE_URL") {
            b = b.with_api_base_url(api);
        }
        if let Some(auth) = var("KONEKTLY_X_AUTH_BASE_URL") {
            b = b.with_auth_base_url(auth);
        }
        if let Some(scopes) = var("KONEKTLY_X_SCOPES") {
            b = b.with_scopes(konektly_core::oauth::split_scopes(&scopes));
        }
        if let Some(size) = var("KONEKTLY_X_CHUNK_SIZE") {
            match size.trim().parse::<usize>() {
                Ok(n) => b = b.with_chunk_size(n),
                Err(_) => b.env_error = Some(format!("KONEKTLY_X_CHUNK_SIZE is not a number of bytes: {size:?}")),
            }
        }
        b
    }

    /// The app's OAuth 2.0 client id.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The client secret of a confidential client ("Web App", "Automated App or bot"): token,
    /// refresh and revoke calls then authenticate with HTTP Basic. Without one the app is a
    /// public client and sends its `client_id` in the form body.
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(ClientSecret::new(secret.into()));
        self
    }

    /// The redirect URI registered with X (the default for applications that ask for it).
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Replaces every X host (API, upload, OAuth token and the browser's authorize page) by
    /// `url`, keeping the real paths: for tests and the sandbox.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.api_base = Some(url.clone());
        self.auth_base = Some(url);
        self
    }

    /// Replaces only the API host (`https://api.x.com`: posts, media, token endpoint).
    pub fn with_api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base = Some(url.into());
        self
    }

    /// Replaces only the browser's authorize host (`https://x.com`).
    pub fn with_auth_base_url(mut self, url: impl Into<String>) -> Self {
        self.auth_base = Some(url.into());
        self
    }

    /// The scopes to ask for (default [`DEFAULT_SCOPES`]).
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The size of media upload chunks, 1–4 MiB (default 4 MiB). At most one chunk is in memory.
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = Some(bytes);
        self
    }

    /// Shares an HTTP client (timeouts, retries) with other platforms.
    pub fn with_http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds a dedicated HTTP client with this configuration.
    pub fn with_http_config(mut self, config: HttpConfig) -> Self {
        self.http_config = Some(config);
        self
    }

    /// Checks the configuration and builds the platform.
    pub fn build(self) -> Result<XPlatform> {
        if let Some(e) = self.env_error {
            return Err(Error::Config(e));
        }
        let client_id = self
            .client_id
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| Error::Config("X needs a client id (with_client_id or KONEKTLY_X_CLIENT_ID)".into()))?;
        let chunk_size = self.chunk_size.unwrap_or(MAX_CHUNK_SIZE);
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(Error::Config(format!(
                "X upload chunks must be 1–4 MiB ({MIN_CHUNK_SIZE}–{MAX_CHUNK_SIZE} bytes), not {chunk_size}"
            )));
        }
        let api_base = parse_base(self.api_base.as_deref().unwrap_or(DEFAULT_API_BASE), "API base URL")?;
        let auth_base = parse_base(self.auth_base.as_deref().unwrap_or(DEFAULT_AUTH_BASE), "authorize base URL")?;
        let redirect_uri = self
            .redirect_uri
            .map(|u| Url::parse(&u).map_err(|e| Error::Config(format!("invalid X redirect URI: {e}"))))
            .transpose()?;
        let scopes = self.scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        if scopes.is_empty() {
            return Err(Error::Config("X needs at least one scope".into()));
        }
        let http = match (self.http, self.http_config) {
            (Some(h), _) => h,
            (None, Some(c)) => HttpClient::with_config(c)?,
            (None, None) => HttpClient::new()?,
        };
        let oauth = OAuthClient::new(
            OAuthConfig {
                client_id,
                client_auth: if self.client_secret.is_some() { ClientAuth::Basic } else { ClientAuth::RequestBody },
                client_secret: self.client_secret,
                auth_url: endpoint(&auth_base, "/i/oauth2/authorize")?,
                token_url: endpoint(&api_base, "/2/oauth2/token")?,
                revoke_url: Some(endpoint(&api_base, "/2/oauth2/revoke")?),
            },
            http.clone(),
        )
        .with_dialect(crate::oauth::XTokens);
        Ok(XPlatform::new(crate::config::Config { api_base, oauth, http, scopes, chunk_size, redirect_uri }))
    }
}

fn parse_base(s: &str, what: &str) -> Result<Url> {
    let url = Url::parse(s).map_err(|e| Error::Config(format!("invalid X {what} {s:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::Config(format!("invalid X {what} {s:?}: it must be an http(s) URL")));
    }
    Ok(url)
}

/// `base` with `path` appended to its own path (so a base with a path prefix keeps it).
pub(crate) fn endpoint(base: &Url, path: &str) -> Result<Url> {
    let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&joined).map_err(|e| Error::Config(format!("invalid X endpoint {joined}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_needs_a_client_id_and_sane_chunks() {
        assert!(matches!(XBuilder::new().build(), Err(Error::Config(_))));
        let b = XBuilder::new().with_client_id("id");
        assert!(matches!(b.clone().with_chunk_size(5 << 20).build(), Err(Error::Config(_))));
        assert!(matches!(b.clone().with_chunk_size(1000).build(), Err(Error::Config(_))));
        assert!(matches!(b.clone().with_base_url("not a url").build(), Err(Error::Config(_))));
        assert!(b.with_chunk_size(1 << 20).build().is_ok());
    }

    #[test]
    fn debug_hides_the_client_secret() {
        let b = XBuilder::new().with_client_id("id").with_client_secret("sup3r-s3cret");
        assert!(!format!("{b:?}").contains("sup3r-s3cret"));
        let p = b.build().unwrap();
        assert!(!format!("{p:?}").contains("sup3r-s3cret"));
    }

    #[test]
    fn base_urls_keep_the_real_paths() {
        let base = Url::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(endpoint(&base, "/2/tweets").unwrap().as_str(), "http://127.0.0.1:9000/2/tweets");
        let prefixed = Url::parse("http://sandbox.local/x/").unwrap();
        assert_eq!(endpoint(&prefixed, "/2/tweets").unwrap().as_str(), "http://sandbox.local/x/2/tweets");
    }
}
