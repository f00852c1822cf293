//! Setting konektly up: the store (SQLite file or PostgreSQL), the platforms (from the
//! environment or a config file, or pointed at the sandbox), the media host and the engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use konektly_core::{Account, EngineConfig, Konektly, MediaHost, OwnerId, Platform, PlatformId, Scheduler, TokenStore};
use konektly_store::{KEYS_ENV, KeyRing, KonektlyStore, PostgresStore, SqliteStore};
use konektly_testkit::{ClientCredentials, Sandbox, SandboxMediaHost};
use url::Url;

use crate::{CliError, Result, fail};

/// Where a sandbox is and which app credentials it accepts.
#[derive(Clone, Debug)]
pub struct SandboxInfo {
    /// Base URL per platform id (and `media`).
    pub base_urls: HashMap<String, Url>,
    /// Credentials per platform id.
    pub credentials: HashMap<String, ClientCredentials>,
    /// Its media host.
    pub media_host: Arc<SandboxMediaHost>,
}

impl SandboxInfo {
    /// The sandbox running in this process.
    pub fn of(sandbox: &Sandbox) -> Self {
        let mut base_urls = HashMap::new();
        let mut credentials = HashMap::new();
        for p in konektly_testkit::PLATFORMS {
            base_urls.insert(p.to_owned(), sandbox.base_url(p));
            credentials.insert(p.to_owned(), sandbox.credentials(p));
        }
        base_urls.insert("media".into(), sandbox.base_url("media"));
        SandboxInfo { base_urls, credentials, media_host: sandbox.media_host() }
    }

    /// A sandbox running in another process (`konektly sandbox`), from its control URL.
    pub async fn fetch(control: &Url) -> Result<Self> {
        let http = konektly_core::HttpClient::new()?.client().clone();
        let url = control.join("_sandbox").map_err(|e| CliError::Message(e.to_string()))?;
        let v: serde_json::Value = http
            .get(url)
            .send()
            .await
            .map_err(|e| CliError::Message(format!("the sandbox at {control} does not answer: {}", e.without_url())))?
            .json()
            .await
            .map_err(|e| CliError::Message(format!("the sandbox at {control} answered badly: {e}")))?;
        let base_urls = serde_json::from_value(v["base_urls"].clone())
            .map_err(|e| CliError::Message(format!("the sandbox answered badly: {e}")))?;
        let credentials = serde_json::from_value(v["credentials"].clone())
            .map_err(|e| CliError::Message(format!("the sandbox answered badly: {e}")))?;
        Ok(SandboxInfo { base_urls, credentials, media_host: Arc::new(SandboxMediaHost::remote(control)?) })
    }

    fn base(&self, p: &str) -> String {
        self.base_urls.get(p).map(|u| u.as_str().trim_end_matches('/').to_owned()).unwrap_or_default()
    }

    fn creds(&self, p: &str) -> ClientCredentials {
        self.credentials
            .get(p)
            .cloned()
            .unwrap_or(ClientCredentials { client_id: String::new(), client_secret: String::new() })
    }
}

/// The store: accounts and tokens, the publishing queue, and data export.
#[derive(Clone)]
pub struct Store {
    /// Accounts and tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// The queue.
    pub scheduler: Arc<dyn Scheduler>,
    /// Export and erasure.
    pub data: Arc<dyn KonektlyStore>,
    /// Where it is, for people.
    pub location: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("location", &self.location).finish_non_exhaustive()
    }
}

/// The token-encryption keys: `KONEKTLY_KEYS` if set; for a SQLite file, a key file beside it
/// (created on first use).
fn keys_for(db: Option<&Path>) -> Result<KeyRing> {
    if std::env::var_os(KEYS_ENV).is_some() {
        return Ok(KeyRing::from_env()?);
    }
    let Some(db) = db else {
        return fail(format!("set {KEYS_ENV} (id:base64key) to encrypt tokens in PostgreSQL"));
    };
    let path = PathBuf::from(format!("{}.key", db.display()));
    if let Ok(spec) = std::fs::read_to_string(&path) {
        return Ok(KeyRing::parse(spec.trim())?);
    }
    let key: [u8; 32] = rand::random();
    let spec = format!("k1:{}", base64::engine::general_purpose::STANDARD.encode(key));
    std::fs::write(&path, &spec)
        .map_err(|e| CliError::Message(format!("cannot write the key file {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(KeyRing::parse(&spec)?)
}

/// Opens `postgres://…` when given, else the SQLite file `sqlite_path`.
pub async fn open_store(database_url: Option<&str>, sqlite_path: &Path) -> Result<Store> {
    match database_url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            let s = Arc::new(PostgresStore::connect(u, keys_for(None)?).await?);
            Ok(Store {
                tokens: s.clone(),
                scheduler: s.clone(),
                data: s,
                location: konektly_core::http::redact_url(
                    &Url::parse(u).map_err(|e| CliError::Message(e.to_string()))?,
                ),
            })
        }
        Some(u) => {
            let path = u.strip_prefix("sqlite://").or_else(|| u.strip_prefix("sqlite:")).unwrap_or(u);
            open_sqlite(Path::new(path)).await
        }
        None => open_sqlite(sqlite_path).await,
    }
}

async fn open_sqlite(path: &Path) -> Result<Store> {
    let s = Arc::new(SqliteStore::open(path, keys_for(Some(path))?).await?);
    Ok(Store { tokens: s.clone(), scheduler: s.clone(), data: s, location: path.display().to_string() })
}

/// App credentials from a config file of `KEY=VALUE` lines (the same names as the
/// environment: `KONEKTLY_X_CLIENT_ID`…); the environment wins.
pub fn read_config(path: Option<&Path>) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    if let Some(p) = path {
        let text =
            std::fs::read_to_string(p).map_err(|e| CliError::Message(format!("cannot read {}: {e}", p.display())))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
        }
    }
    Ok(out)
}

fn setting(config: &HashMap<String, String>, key: &str) -> Option<String> {
    std::env::var(key).ok().or_else(|| config.get(key).cloned())
}

/// Platforms that could not be configured, and why.
pub type Unconfigured = Vec<(String, String)>;

/// The platforms: pointed at the sandbox, or configured from the environment and `config`.
/// Returns them and, for each platform that could not be configured, why.
pub fn platforms(
    sandbox: Option<&SandboxInfo>,
    config: &HashMap<String, String>,
) -> (Vec<Arc<dyn Platform>>, Unconfigured) {
    platforms_tuned(sandbox, config, &Tuning::default())
}

/// Settings of a load or soak run against the sandbox: what the defaults make slow on purpose
/// for real platforms.
#[derive(Clone, Debug, Default)]
pub struct Tuning {
    /// One HTTP configuration for every adapter (timeouts, retries).
    pub http: Option<konektly_core::HttpConfig>,
    /// How long a Meta usage bucket at 100% holds calls (default 15 min).
    pub meta_usage_cool_down: Option<Duration>,
    /// TikTok's declared per-token budgets (default: TikTok's documented per-minute ones; the
    /// sandbox does not enforce them).
    pub tiktok_rate_limits: Option<konektly_tiktok::RateLimits>,
    /// How long TikTok's `rate_limit_exceeded` without `Retry-After` waits (default 60 s).
    pub tiktok_rate_limit_wait: Option<Duration>,
}

/// [`platforms`] with [`Tuning`].
pub fn platforms_tuned(
    sandbox: Option<&SandboxInfo>,
    config: &HashMap<String, String>,
    tuning: &Tuning,
) -> (Vec<Arc<dyn Platform>>, Unconfigured) {
    let mut out: Vec<Arc<dyn Platform>> = Vec::new();
    let mut missing = Vec::new();
    let fast = Duration::from_millis(250);
    let mut push = |id: &str, r: konektly_core::Result<Vec<Arc<dyn Platform>>>| match r {
        Ok(p) => out.extend(p),
        Err(e) => missing.push((id.to_owned(), e.to_string())),
    };

    let mut x = konektly_twitter::XBuilder::from_env();
    let mut tt = konektly_tiktok::TikTokBuilder::from_env();
    let mut meta = konektly_meta::MetaBuilder::from_env();
    let mut yt = konektly_youtube::YouTubeBuilder::from_env();
    if let Some(sb) = sandbox {
        let c = sb.creds("x");
        x = konektly_twitter::XBuilder::new()
            .with_client_id(c.client_id)
            .with_client_secret(c.client_secret)
            .with_base_url(sb.base("x"));
        let c = sb.creds("tiktok");
        tt = konektly_tiktok::TikTokBuilder::new()
            .with_client_key(c.client_id)
            .with_client_secret(c.client_secret)
            .with_base_url(sb.base("tiktok"))
            // Status polling is limited to 30 a minute per token.
            .with_poll_interval(Duration::from_secs(2));
        let (f, i) = (sb.creds("facebook"), sb.creds("instagram"));
        meta = konektly_meta::MetaBuilder::new()
            .with_app(f.client_id, f.client_secret)
            .with_instagram_app(i.client_id, i.client_secret)
            .with_base_url(sb.base("facebook"))
            .with_instagram_base_url(sb.base("instagram"))
            .with_container_poll_interval(fast)
            .with_video_poll_interval(fast);
        let c = sb.creds("youtube");
        yt = konektly_youtube::YouTubeBuilder::new()
            .with_client_id(c.client_id)
            .with_client_secret(c.client_secret)
            .with_base_url(sb.base("youtube"))
            .with_poll_interval(fast);
    } else {
        if let (Some(id), Some(secret)) =
            (setting(config, "KONEKTLY_X_CLIENT_ID"), setting(config, "KONEKTLY_X_CLIENT_SECRET"))
        {
            x = x.with_client_id(id).with_client_secret(secret);
        }
        if let (Some(id), Some(secret)) =
            (setting(config, "KONEKTLY_TIKTOK_CLIENT_KEY"), setting(config, "KONEKTLY_TIKTOK_CLIENT_SECRET"))
        {
            tt = tt.with_client_key(id).with_client_secret(secret);
        }
        if let (Some(id), Some(secret)) =
            (setting(config, "KONEKTLY_META_APP_ID"), setting(config, "KONEKTLY_META_APP_SECRET"))
        {
            meta = meta.with_app(id, secret);
        }
        if let (Some(id), Some(secret)) =
            (setting(config, "KONEKTLY_YOUTUBE_CLIENT_ID"), setting(config, "KONEKTLY_YOUTUBE_CLIENT_SECRET"))
        {
            yt = yt.with_client_id(id).with_client_secret(secret);
        }
    }
    if let Some(h) = &tuning.http {
        x = x.with_http_config(h.clone());
        meta = meta.with_http_config(h.clone());
        yt = yt.with_http_config(h.clone());
        if let Ok(client) = konektly_core::HttpClient::with_config(h.clone()) {
            // (It cannot fail where the others were built; if it did, TikTok keeps its default.)
            tt = tt.with_http_client(client);
        }
    }
    if let Some(d) = tuning.meta_usage_cool_down {
        meta = meta.with_usage_cool_down(d);
    }
    if let Some(l) = tuning.tiktok_rate_limits {
        tt = tt.with_rate_limits(l).with_poll_interval(fast);
    }
    if let Some(d) = tuning.tiktok_rate_limit_wait {
        tt = tt.with_rate_limit_wait(d);
    }
    push("x", x.build().map(|p| vec![Arc::new(p) as Arc<dyn Platform>]));
    push("tiktok", tt.build().map(|p| vec![Arc::new(p) as Arc<dyn Platform>]));
    push("facebook/instagram", meta.build().map(|m| m.platforms()));
    push("youtube", yt.build().map(|p| vec![Arc::new(p) as Arc<dyn Platform>]));
    (out, missing)
}

/// The engine, tuned for the sandbox (quick retries) or for real platforms (the defaults).
pub fn engine(
    platforms: Vec<Arc<dyn Platform>>,
    store: &Store,
    media_host: Option<Arc<dyn MediaHost>>,
    sandbox: bool,
) -> Result<Konektly> {
    let mut config = EngineConfig::default();
    if sandbox {
        config.retry_base = Duration::from_secs(1);
        config.retry_max = Duration::from_secs(10);
        config.reconcile_delay = Duration::from_millis(500);
        config.idle_poll = Duration::from_millis(200);
    }
    let mut b = Konektly::builder().token_store(store.tokens.clone()).scheduler(store.scheduler.clone()).config(config);
    for p in platforms {
        b = b.platform(p);
    }
    if let Some(h) = media_host {
        b = b.media_host(h);
    }
    Ok(b.build()?)
}

/// A media host for real platforms: `KONEKTLY_MEDIA_DIR` served at `KONEKTLY_MEDIA_BASE_URL`.
pub fn media_host_from_env(config: &HashMap<String, String>) -> Option<Arc<dyn MediaHost>> {
    let dir = setting(config, "KONEKTLY_MEDIA_DIR")?;
    let base = Url::parse(&setting(config, "KONEKTLY_MEDIA_BASE_URL")?).ok()?;
    konektly_core::DirectoryMediaHost::new(dir, base).ok().map(|h| Arc::new(h) as Arc<dyn MediaHost>)
}

/// Finds the account meant by `spec`: our account id, a platform id (its only or first
/// account), `platform:handle`, or a handle.
pub async fn resolve_account(engine: &Konektly, owner: &OwnerId, spec: &str) -> Result<Account> {
    let accounts = engine.accounts(owner).await?;
    if let Ok(id) = spec.parse::<konektly_core::AccountId>() {
        return accounts
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| CliError::Message(format!("no account {spec}")));
    }
    let (platform, handle) = match spec.split_once(':') {
        Some((p, h)) => (Some(p), Some(h.trim_start_matches('@'))),
        None if konektly_testkit::PLATFORMS.contains(&spec) => (Some(spec), None),
        None => (None, Some(spec.trim_start_matches('@'))),
    };
    let publishable = |a: &Account| a.metadata.get("kind").and_then(|k| k.as_str()) != Some(konektly_meta::KIND_USER);
    accounts
        .into_iter()
        .filter(|a| platform.is_none_or(|p| a.platform == PlatformId::from(p)))
        .filter(|a| {
            handle.is_none_or(|h| a.handle.as_deref().map(|x| x.trim_start_matches('@')) == Some(h) || a.remote_id == h)
        })
        .find(publishable)
        .ok_or_else(|| CliError::Message(format!("no connected account matches `{spec}` (see `konektly accounts`)")))
}
