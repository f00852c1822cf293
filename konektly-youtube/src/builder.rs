//! [`YouTubeBuilder`]: configuration of the YouTube platform. `new()` reads nothing,
//! `from_env()` reads only `KONEKTLY_YOUTUBE_*`, and `build()` is the one fallible step.

use std::fmt;
use std::time::Duration;

use konektly_core::oauth::split_scopes;
use konektly_core::{ClientSecret, Error, HttpClient, HttpConfig, Result};
use url::Url;

use crate::config::Endpoints;
use crate::platform::YouTubePlatform;

/// `youtube.upload`: upload videos and set thumbnails.
pub const SCOPE_UPLOAD: &str = "https://www.googleapis.com/auth/youtube.upload";
/// `youtube.readonly`: read the channel and the videos' processing status.
pub const SCOPE_READONLY: &str = "https://www.googleapis.com/auth/youtube.readonly";
/// `youtube`: manage the account (needed to delete videos).
pub const SCOPE_YOUTUBE: &str = "https://www.googleapis.com/auth/youtube";
/// `youtube.force-ssl`: manage the account over SSL (also allows deleting videos).
pub const SCOPE_FORCE_SSL: &str = "https://www.googleapis.com/auth/youtube.force-ssl";

/// Upload chunks must be multiples of this (256 KiB).
pub const CHUNK_GRANULARITY: usize = 256 * 1024;
/// The default upload chunk: 8 MiB.
pub const DEFAULT_CHUNK_SIZE: usize = 8 * 1024 * 1024;
/// The default largest thumbnail (50 MB since 2026-09-14; it was 2 MB before).
pub const DEFAULT_MAX_THUMBNAIL_BYTES: u64 = 50 * 1024 * 1024;
/// The default time one chunk may take, request to answer.
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// The default daily budget of `videos.insert` calls per Google Cloud project.
pub const DEFAULT_DAILY_INSERT_BUDGET: u32 = 100;

/// Builds a [`YouTubePlatform`].
///
/// ```
/// use konektly_youtube::YouTubeBuilder;
/// let youtube = YouTubeBuilder::new()
///     .with_client_id("1234.apps.googleusercontent.com")
///     .with_client_secret("GOCSPX-secret")
///     .with_chunk_size(16 * 1024 * 1024)
///     .build()
///     .unwrap();
/// assert!(!format!("{youtube:?}").contains("GOCSPX-secret"));
/// ```
#[derive(Clone)]
pub struct YouTubeBuilder {
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<ClientSecret>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) base_url: Option<String>,
    pub(crate) auth_url: Option<String>,
    pub(crate) token_url: Option<String>,
    pub(crate) revoke_url: Option<String>,
    pub(crate) api_base_url: Option<String>,
    pub(crate) upload_base_url: Option<String>,
    pub(crate) chunk_size: Option<String>,
    pub(crate) poll_interval: Duration,
    pub(crate) default_category_id: String,
    pub(crate) max_thumbnail_bytes: u64,
    pub(crate) daily_insert_budget: Option<u32>,
    pub(crate) upload_retries: u32,
    pub(crate) retry_delay: Duration,
    pub(crate) http_config: Option<HttpConfig>,
    pub(crate) http: Option<HttpClient>,
    pub(crate) upload_timeout: Duration,
}

impl fmt::Debug for YouTubeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YouTubeBuilder")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("scopes", &self.scopes)
            .field("base_url", &self.base_url)
            .field("chunk_size", &self.chunk_size)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl Default for YouTubeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl YouTubeBuilder {
    /// A builder with Google's endpoints and nothing configured. Reads no environment.
    pub fn new() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            scopes: None,
            base_url: None,
            auth_url: None,
            token_url: None,
            revoke_url: None,
            api_base_url: None,
            upload_base_url: None,
            chunk_size: None,
            poll_interval: Duration::from_secs(15),
            default_category_id: "22".into(),
            max_thumbnail_bytes: DEFAULT_MAX_THUMBNAIL_BYTES,
            daily_insert_budget: Some(DEFAULT_DAILY_INSERT_BUDGET),
            upload_retries: 5,
            retry_delay: Duration::from_secs(1),
            http_config: None,
            http: None,
            upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
        }
    }

    /// A builder from the environment: `KONEKTLY_YOUTUBE_CLIENT_ID`, `…_CLIENT_SECRET`,
    /// `…_SCOPES` (space or comma separated), `…_BASE_URL`, `…_CHUNK_SIZE` (bytes, a multiple of
    /// 256 KiB). Nothing else is read. Values are checked by `build()`.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like `from_env`, reading variables through `lookup` (for tests and config layers).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(&format!("KONEKTLY_YOUTUBE_{name}")).filter(|v| !v.trim().is_empty());
        let mut b = Self::new();
        b.client_id = get("CLIENT_ID");
        b.client_secret = get("CLIENT_SECRET").map(ClientSecret::new);
        b.scopes = get("SCOPES").map(|s| split_scopes(&s));
        b.base_url = get("BASE_URL");
        b.chunk_size = get("CHUNK_SIZE");
        b
    }

    /// The OAuth client id.
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The OAuth client secret.
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(ClientSecret::new(secret));
        self
    }

    /// The scopes to ask for (default: `youtube.upload` and `youtube.readonly`). Add
    /// [`SCOPE_YOUTUBE`] to be able to delete videos.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces every Google host (authorize page, token and revoke endpoints, API, upload) by
    /// `url`, keeping the real paths: `/o/oauth2/v2/auth`, `/token`, `/revoke`, `/youtube/v3/…`,
    /// `/upload/youtube/v3/…`. For tests and the sandbox.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The authorization page (default `https://accounts.google.com/o/oauth2/v2/auth`).
    pub fn with_auth_url(mut self, url: impl Into<String>) -> Self {
        self.auth_url = Some(url.into());
        self
    }

    /// The token endpoint (default `https://oauth2.googleapis.com/token`).
    pub fn with_token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The revocation endpoint (default `https://oauth2.googleapis.com/revoke`).
    pub fn with_revoke_url(mut self, url: impl Into<String>) -> Self {
        self.revoke_url = Some(url.into());
        self
    }

    /// The Data API host (default `https://www.googleapis.com`; `/youtube/v3/` is appended).
    pub fn with_api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
        self
    }

    /// The upload host (default `https://www.googleapis.com`; `/upload/youtube/v3/` is appended).
    pub fn with_upload_base_url(mut self, url: impl Into<String>) -> Self {
        self.upload_base_url = Some(url.into());
        self
    }

    /// The upload chunk size in bytes: a multiple of 256 KiB (default 8 MiB). One chunk at most
    /// is held in memory.
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = Some(bytes.to_string());
        self
    }

    /// How long to wait between polls of the processing status (default 15 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The category used when a target names none (default `"22"`, People & Blogs).
    pub fn with_default_category_id(mut self, id: impl Into<String>) -> Self {
        self.default_category_id = id.into();
        self
    }

    /// The largest thumbnail accepted by validation (default 50 MiB).
    pub fn with_max_thumbnail_bytes(mut self, bytes: u64) -> Self {
        self.max_thumbnail_bytes = bytes;
        self
    }

    /// The project's daily budget of `videos.insert` calls, declared to the engine so that it
    /// spaces uploads (default 100; `None` declares none, for projects with a raised quota).
    pub fn with_daily_insert_budget(mut self, calls: Option<u32>) -> Self {
        self.daily_insert_budget = calls;
        self
    }

    /// How many times in a row a failing chunk is followed by a status query and a resume
    /// before the attempt ends as `Transient` (default 5), and the first delay between them
    /// (default 1 s, doubling).
    pub fn with_upload_retries(mut self, retries: u32, first_delay: Duration) -> Self {
        self.upload_retries = retries;
        self.retry_delay = first_delay;
        self
    }

    /// Timeouts and retries of the HTTP client.
    pub fn with_http_config(mut self, config: HttpConfig) -> Self {
        self.http_config = Some(config);
        self
    }

    /// How long one chunk (or a thumbnail) may take, from the start of its request to YouTube's
    /// answer (default 10 minutes). The API calls keep the HTTP configuration's shorter timeout;
    /// an 8 MiB chunk on a 1 Mbit/s uplink alone takes over a minute.
    pub fn with_upload_timeout(mut self, timeout: Duration) -> Self {
        self.upload_timeout = timeout;
        self
    }

    /// A shared HTTP client (its configuration wins over `with_http_config`).
    pub fn with_http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Checks the configuration and builds the platform.
    pub fn build(self) -> Result<YouTubePlatform> {
        let client_id = self
            .client_id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::Config("YouTube needs an OAuth client id (KONEKTLY_YOUTUBE_CLIENT_ID)".into()))?;
        let chunk_size = match &self.chunk_size {
            None => DEFAULT_CHUNK_SIZE,
            Some(s) => s
                .trim()
                .parse::<usize>()
                .map_err(|_| Error::Config(format!("the YouTube chunk size must be a number of bytes, got {s:?}")))?,
        };
        if chunk_size == 0 || !chunk_size.is_multiple_of(CHUNK_GRANULARITY) {
            return Err(Error::Config(format!(
                "the YouTube chunk size must be a non-zero multiple of 256 KiB ({CHUNK_GRANULARITY} bytes), got {chunk_size}"
            )));
        }
        let parse = |what: &str, s: &str| -> Result<Url> {
            Url::parse(s).map_err(|e| Error::Config(format!("invalid YouTube {what} URL {s:?}: {e}")))
        };
        let base = self.base_url.as_deref().map(|b| b.trim_end_matches('/').to_owned());
        let pick = |what: &str, explicit: &Option<String>, real_host: &str, path: &str| -> Result<Url> {
            let s = match (explicit, &base) {
                (Some(u), _) => u.clone(),
                (None, Some(b)) => format!("{b}{path}"),
                (None, None) => format!("{real_host}{path}"),
            };
            parse(what, &s)
        };
        let host = |explicit: &Option<String>, path: &str| -> Option<String> {
            explicit.as_ref().map(|u| format!("{}{path}", u.trim_end_matches('/')))
        };
        let endpoints = Endpoints {
            auth: pick("authorization", &self.auth_url, "https://accounts.google.com", "/o/oauth2/v2/auth")?,
            token: pick("token", &self.token_url, "https://oauth2.googleapis.com", "/token")?,
            revoke: pick("revoke", &self.revoke_url, "https://oauth2.googleapis.com", "/revoke")?,
            api: pick("API", &host(&self.api_base_url, "/youtube/v3/"), "https://www.googleapis.com", "/youtube/v3/")?,
            upload: pick(
                "upload",
                &host(&self.upload_base_url, "/upload/youtube/v3/"),
                "https://www.googleapis.com",
                "/upload/youtube/v3/",
            )?,
        };
        let http = match self.http.clone() {
            Some(h) => h,
            None => HttpClient::with_config(self.http_config.clone().unwrap_or_default())?,
        };
        // Uploads get a client of their own: the time until a chunk's answer grows with its size
        // and the uplink, far beyond what an API call may take.
        let upload_http =
            HttpClient::with_config(HttpConfig { timeout: self.upload_timeout, ..http.config().clone() })?;
        let scopes = self.scopes.clone().unwrap_or_else(|| vec![SCOPE_UPLOAD.into(), SCOPE_READONLY.into()]);
        if scopes.is_empty() {
            return Err(Error::Config("YouTube needs at least one OAuth scope".into()));
        }
        Ok(YouTubePlatform::from_parts(self, client_id, scopes, chunk_size, endpoints, http, upload_http))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_reads_only_its_variables() {
        let vars = [
            ("KONEKTLY_YOUTUBE_CLIENT_ID", "cid"),
            ("KONEKTLY_YOUTUBE_CLIENT_SECRET", "env-secret-value"),
            ("KONEKTLY_YOUTUBE_SCOPES", "a b,c"),
            ("KONEKTLY_YOUTUBE_BASE_URL", "http://127.0.0.1:9/"),
            ("KONEKTLY_YOUTUBE_CHUNK_SIZE", "524288"),
            ("KONEKTLY_X_CLIENT_ID", "not-mine"),
        ];
        let asked = std::sync::Mutex::new(Vec::new());
        let b = YouTubeBuilder::from_lookup(|k| {
            asked.lock().unwrap().push(k.to_owned());
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        });
        assert!(asked.lock().unwrap().iter().all(|k| k.starts_with("KONEKTLY_YOUTUBE_")));
        assert_eq!(b.client_id.as_deref(), Some("cid"));
        assert_eq!(b.scopes, Some(vec!["a".to_string(), "b".into(), "c".into()]));
        let p = b.build().unwrap();
        assert_eq!(p.chunk_size(), 524_288);
        assert_eq!(p.endpoints().token.as_str(), "http://127.0.0.1:9/token");
        assert!(!format!("{p:?}").contains("env-secret-value"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let b = YouTubeBuilder::new().with_client_id("id").with_client_secret("GOCSPX-very-secret");
        assert!(!format!("{b:?}").contains("GOCSPX-very-secret"));
        let p = b.build().unwrap();
        assert!(!format!("{p:?}").contains("GOCSPX-very-secret"));
    }

    #[test]
    fn real_endpoints_by_default_and_one_base_replaces_every_host() {
        let p = YouTubeBuilder::new().with_client_id("id").build().unwrap();
        let e = p.endpoints();
        assert_eq!(e.auth.as_str(), "https://accounts.google.com/o/oauth2/v2/auth");
        assert_eq!(e.token.as_str(), "https://oauth2.googleapis.com/token");
        assert_eq!(e.revoke.as_str(), "https://oauth2.googleapis.com/revoke");
        assert_eq!(e.api.as_str(), "https://www.googleapis.com/youtube/v3/");
        assert_eq!(e.upload.as_str(), "https://www.googleapis.com/upload/youtube/v3/");
        assert_eq!(p.chunk_size(), DEFAULT_CHUNK_SIZE);

        let p = YouTubeBuilder::new().with_client_id("id").with_base_url("http://127.0.0.1:9000").build().unwrap();
        let e = p.endpoints();
        assert_eq!(e.auth.as_str(), "http://127.0.0.1:9000/o/oauth2/v2/auth");
        assert_eq!(e.token.as_str(), "http://127.0.0.1:9000/token");
        assert_eq!(e.revoke.as_str(), "http://127.0.0.1:9000/revoke");
        assert_eq!(e.api.as_str(), "http://127.0.0.1:9000/youtube/v3/");
        assert_eq!(e.upload.as_str(), "http://127.0.0.1:9000/upload/youtube/v3/");

        let p = YouTubeBuilder::new()
            .with_client_id("id")
            .with_base_url("http://127.0.0.1:9000")
            .with_upload_base_url("http://127.0.0.1:9001")
            .build()
            .unwrap();
        assert_eq!(p.endpoints().upload.as_str(), "http://127.0.0.1:9001/upload/youtube/v3/");
        assert_eq!(p.endpoints().api.as_str(), "http://127.0.0.1:9000/youtube/v3/");
    }

    #[test]
    fn build_refuses_bad_configuration() {
        assert!(matches!(YouTubeBuilder::new().build(), Err(Error::Config(m)) if m.contains("client id")));
        let bad = YouTubeBuilder::new().with_client_id("id").with_chunk_size(300 * 1024).build();
        assert!(matches!(bad, Err(Error::Config(m)) if m.contains("256 KiB")));
        assert!(YouTubeBuilder::new().with_client_id("id").with_chunk_size(0).build().is_err());
        let env = YouTubeBuilder::from_lookup(|k| (k == "KONEKTLY_YOUTUBE_CLIENT_ID").then(|| "id".into()))
            .with_base_url("not a url");
        assert!(matches!(env.build(), Err(Error::Config(_))));
        assert!(YouTubeBuilder::new().with_client_id("id").with_chunk_size(CHUNK_GRANULARITY).build().is_ok());
    }
}
