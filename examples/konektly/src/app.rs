//! Setting konektly up: the store (SQLite file or PostgreSQL), the platforms (from the
//! environment or a config file, or pointed at the sandbox), the media host and the engine.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use konektly_core::{
    Account, EngineConfig, Konektly, MediaHost, MediaStore, OwnerId, Platform, PlatformId, Scheduler, TokenStore,
};
use konektly_store::{KEYS_ENV, KeyRing, KonektlyStore, PostgresStore, SqliteStore};
use konektly_testkit::{ClientCredentials, Sandbox, SandboxMediaHost};
use url::Url;
use zeroize::Zeroizing;

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
    /// Its control URL: the media host and the inspection API (`<control>_sandbox/posts`,
    /// `<control>_sandbox/faults/<platform>`).
    pub control: Url,
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
        SandboxInfo { base_urls, credentials, media_host: sandbox.media_host(), control: sandbox.base_url("media") }
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
        Ok(SandboxInfo {
            base_urls,
            credentials,
            media_host: Arc::new(SandboxMediaHost::remote(control)?),
            control: control.clone(),
        })
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
    /// What the HTTP server keeps (API keys, the event log, webhooks).
    pub server: Arc<dyn konektly_store::ServerStore>,
    /// Posting queues.
    pub queues: Arc<dyn konektly_core::queue::QueueStore>,
    /// Recurring series.
    pub series: Arc<dyn konektly_core::series::SeriesStore>,
    /// Metric snapshots.
    pub metrics: Arc<dyn konektly_core::analytics::MetricsStore>,
    /// Where it is, for people.
    pub location: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("location", &self.location).finish_non_exhaustive()
    }
}

/// The token-encryption keys: `KONEKTLY_KEYS` if set; for a SQLite file, a key file beside it
/// (created on first use, readable by its owner only).
async fn keys_for(db: Option<&Path>) -> Result<KeyRing> {
    if std::env::var_os(KEYS_ENV).is_some() {
        return Ok(KeyRing::from_env()?);
    }
    let Some(db) = db else {
        return fail(format!("set {KEYS_ENV} (id:base64key) to encrypt tokens in PostgreSQL"));
    };
    key_file(&key_path(db)).await
}

/// Where the token key of the SQLite file `db` is kept: `<db>.key`.
pub fn key_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

/// What a look at a key file found.
enum KeyFile {
    /// No such file.
    Missing,
    /// A file with nothing in it (yet: another process may be writing it).
    Empty,
    /// The keys it holds.
    Keys(KeyRing),
}

/// How many times an empty key file is read again, [`EMPTY_KEY_FILE_PAUSE`] apart, before it is
/// an error: the process that created it writes its key at once.
const EMPTY_KEY_FILE_TRIES: u32 = 20;
const EMPTY_KEY_FILE_PAUSE: Duration = Duration::from_millis(50);

/// The keys of the key file at `path`, which is created with a new random key if there is none.
///
/// The file is created with `O_EXCL` and, on unix, mode 0600 from the start. If another process
/// creates it first, its file is read. A key file that exists but cannot be read or is malformed
/// is an error naming the file and the fault: it is never replaced, since every token stored
/// with it would become unreadable. No error shows the key.
pub async fn key_file(path: &Path) -> Result<KeyRing> {
    let mut empty_reads = 0;
    // Bounded: a file that keeps appearing and vanishing under us is someone else's doing.
    for _ in 0..(EMPTY_KEY_FILE_TRIES + 10) {
        match read_key_file(path)? {
            KeyFile::Keys(keys) => return Ok(keys),
            KeyFile::Missing => {
                if let Some(keys) = create_key_file(path)? {
                    return Ok(keys);
                }
                // Another process created it first: read its key.
            }
            KeyFile::Empty => {
                empty_reads += 1;
                if empty_reads >= EMPTY_KEY_FILE_TRIES {
                    break;
                }
                tokio::time::sleep(EMPTY_KEY_FILE_PAUSE).await;
            }
        }
    }
    fail(format!(
        "the key file {} is empty: if no other konektly is starting on this database, an earlier run was \
         interrupted while creating it (no token can have been stored with it); delete it and run again",
        path.display()
    ))
}

/// The keys of the key file at `path` without creating it: `None` if there is no such file;
/// an error naming the fault if it cannot be read, is empty or is malformed (never showing a
/// key).
pub fn inspect_key_file(path: &Path) -> Result<Option<KeyRing>> {
    match read_key_file(path)? {
        KeyFile::Missing => Ok(None),
        KeyFile::Empty => fail(format!("the key file {} is empty", path.display())),
        KeyFile::Keys(k) => Ok(Some(k)),
    }
}

/// Reads the key file at `path`; any failure but its absence is an error.
fn read_key_file(path: &Path) -> Result<KeyFile> {
    let keep = format!(
        "konektly does not replace it, as the tokens stored with it would become unreadable: fix or restore it, \
         or set {KEYS_ENV}"
    );
    let bytes = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeyFile::Missing),
        Err(e) => return fail(format!("cannot read the key file {}: {e}; {keep}", path.display())),
    };
    if bytes.is_empty() {
        return Ok(KeyFile::Empty);
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return fail(format!(
            "the key file {} is not text (not UTF-8), so it holds no `id:base64key`; {keep}",
            path.display()
        ));
    };
    let keys = KeyRing::parse_in(text.trim(), &format!("the key file {}", path.display()))
        .map_err(|e| CliError::Message(format!("{e}; {keep}")))?;
    Ok(KeyFile::Keys(keys))
}

/// Creates the key file at `path` with a new random key, readable by its owner only from the
/// start. `None`: another process created it first.
fn create_key_file(path: &Path) -> Result<Option<KeyRing>> {
    let key = Zeroizing::new(rand::random::<[u8; 32]>());
    let spec = Zeroizing::new(format!("k1:{}", base64::engine::general_purpose::STANDARD.encode(key.as_slice())));
    let keys = KeyRing::parse(&spec)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return fail(format!("cannot create the key file {}: {e}", path.display())),
    };
    // One write: a reader sees the file empty (and waits) or whole.
    if let Err(e) = file.write_all(spec.as_bytes()).and_then(|()| file.sync_all()) {
        drop(file);
        // Ours, and holding no usable key: no token was stored with it.
        let _ = std::fs::remove_file(path);
        return fail(format!("cannot write the key file {}: {e}", path.display()));
    }
    Ok(Some(keys))
}

/// Refuses a SQLite path that cannot be a database file (a directory, a device, a file that is
/// not SQLite, a missing directory), before anything is created beside it.
pub fn check_sqlite_path(path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return fail("the database path is empty: give the path of a SQLite file with --db");
    }
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            let mut head = [0u8; 16];
            let mut file = std::fs::File::open(path)
                .map_err(|e| CliError::Message(format!("cannot open the database {shown}: {e}")))?;
            let n = read_up_to(&mut file, &mut head)
                .map_err(|e| CliError::Message(format!("cannot read the database {shown}: {e}")))?;
            // An empty file is a new database; anything else starts with SQLite's header.
            if n == 0 || &head[..n] == SQLITE_HEADER {
                Ok(())
            } else {
                fail(format!("the database {shown} is not a SQLite file: give another path with --db"))
            }
        }
        Ok(m) => fail(format!(
            "the database {shown} is {}, not a regular file: give the path of a SQLite file with --db",
            file_kind(&m.file_type())
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => fail(format!("the database {shown} cannot be created: {} is not a directory", dir.display())),
                Err(e) => fail(format!("the database {shown} cannot be created in {}: {e}", dir.display())),
            }
        }
        Err(e) => fail(format!("cannot use the database {shown}: {e}")),
    }
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Reads until `buf` is full or the file ends; how many bytes were read.
fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What a file that is not a regular file is, in words.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a directory" } else { "something else" }
}

/// Opens `postgres://…` when given, else the SQLite file `sqlite_path`.
pub async fn open_store(database_url: Option<&str>, sqlite_path: &Path) -> Result<Store> {
    match database_url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            let s = Arc::new(PostgresStore::connect(u, keys_for(None).await?).await?);
            Ok(Store {
                tokens: s.clone(),
                scheduler: s.clone(),
                data: s.clone(),
                server: s.clone(),
                queues: s.clone(),
                series: s.clone(),
                metrics: s,
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
    // The path first: a key file is only created beside a usable database path.
    check_sqlite_path(path)?;
    let keys = keys_for(Some(path)).await?;
    let s = Arc::new(SqliteStore::open(path, keys).await?);
    Ok(Store {
        tokens: s.clone(),
        scheduler: s.clone(),
        data: s.clone(),
        server: s.clone(),
        queues: s.clone(),
        series: s.clone(),
        metrics: s,
        location: path.display().to_string(),
    })
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

/// A setting from the environment, else from the config file (an empty value is no value).
pub fn setting(config: &HashMap<String, String>, key: &str) -> Option<String> {
    std::env::var(key).ok().or_else(|| config.get(key).cloned()).filter(|v| !v.trim().is_empty())
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
    /// YouTube `videos.insert` calls per day that konektly spends before deferring uploads to
    /// the next day (default: YouTube's default project allowance, see konektly-youtube).
    pub youtube_daily_insert_budget: Option<u32>,
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
    if std::env::var_os("KONEKTLY_TIKTOK_PKCE").is_none() {
        // This program is a desktop app (a loopback redirect): TikTok's desktop flow asks for
        // PKCE with a hex-encoded challenge. KONEKTLY_TIKTOK_PKCE overrides.
        tt = tt.with_pkce(konektly_tiktok::Pkce::S256Hex);
    }
    let mut meta = konektly_meta::MetaBuilder::from_env();
    let mut yt = konektly_youtube::YouTubeBuilder::from_env();
    // Bluesky needs no app registration: app-password sessions (KONEKTLY_BLUESKY_*).
    let mut bsky = konektly_bluesky::BlueskyBuilder::from_env();
    let mut li = konektly_linkedin::LinkedInBuilder::from_env();
    if let Some(sb) = sandbox {
        // The sandbox's PDS, and its stand-in for an app-password sign-in form.
        let base = sb.base("bluesky");
        bsky = konektly_bluesky::BlueskyBuilder::new()
            .with_sign_in_page(format!("{base}/konektly/sign-in/authorize"))
            .with_base_url(base);
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
        if let (Some(id), Some(secret)) =
            (setting(config, "KONEKTLY_LINKEDIN_CLIENT_ID"), setting(config, "KONEKTLY_LINKEDIN_CLIENT_SECRET"))
        {
            li = li.with_client_id(id).with_client_secret(secret);
        }
    }
    if let Some(h) = &tuning.http {
        x = x.with_http_config(h.clone());
        meta = meta.with_http_config(h.clone());
        yt = yt.with_http_config(h.clone());
        bsky = bsky.with_http_config(h.clone());
        if let Ok(client) = konektly_core::HttpClient::with_config(h.clone()) {
            // (It cannot fail where the others were built; if it did, TikTok keeps its default.)
            tt = tt.with_http_client(client.clone());
            li = li.with_http_client(client);
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
    if let Some(n) = tuning.youtube_daily_insert_budget {
        yt = yt.with_daily_insert_budget(Some(n));
    }
    push("x", x.build().map(|p| vec![Arc::new(p) as Arc<dyn Platform>]));
    push("tiktok", tt.build().map(|p| vec![Arc::new(p) as Arc<dyn Platform>]));
    push("facebook/instagram", meta.build().map(|m| m.platforms()));
    push("youtube", yt.build().map(|p| vec![Arc::new(p) as Arc<dyn Platform>]));
    push("bluesky", bsky.build().map(|p| vec![Arc::new(p) as Arc<dyn Platform>]));
    // The sandbox has no LinkedIn emulator yet: LinkedIn is configured from the environment only.
    if sandbox.is_none() {
        push("linkedin", li.build().map(|p| vec![Arc::new(p) as Arc<dyn Platform>]));
    }
    (out, missing)
}

/// The media store: `url` (`--media-store`, `KONEKTLY_MEDIA_STORE`) or, by default, the
/// directory `<db>.media` beside the SQLite file (made absolute: a worker started in another
/// directory finds the same one). Call it after the database path was checked.
pub fn media_store(url: Option<&str>, database_url: Option<&str>, db: &Path) -> Result<Arc<dyn MediaStore>> {
    let store = match url.filter(|u| !u.is_empty()) {
        Some(u) => konektly_store::ObjectMediaStore::from_url(u)?,
        None => {
            let db = match database_url {
                Some(u) if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) => {
                    Path::new(u.strip_prefix("sqlite://").or_else(|| u.strip_prefix("sqlite:")).unwrap_or(u))
                }
                _ => db,
            };
            let mut dir = std::path::absolute(db)?.into_os_string();
            dir.push(".media");
            konektly_store::ObjectMediaStore::local(PathBuf::from(dir))?
        }
    };
    Ok(Arc::new(store))
}

/// The engine, tuned for the sandbox (quick retries) or for real platforms (the defaults).
pub fn engine(
    platforms: Vec<Arc<dyn Platform>>,
    store: &Store,
    media_host: Option<Arc<dyn MediaHost>>,
    media_store: Option<Arc<dyn MediaStore>>,
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
    if let Some(m) = media_store {
        b = b.media_store(m);
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    /// Whether `text` shows any run of 8 characters of `key`.
    fn shows_key(text: &str, key: &str) -> bool {
        let chars: Vec<char> = key.chars().collect();
        chars.windows(8).any(|w| text.contains(&w.iter().collect::<String>()))
    }

    #[tokio::test]
    async fn a_new_key_file_is_private_from_the_start_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir.path().join("k.db"));
        assert_eq!(path, dir.path().join("k.db.key"));
        let keys = key_file(&path).await.unwrap();
        assert_eq!(keys.ids(), vec!["k1"]);
        let written = std::fs::read(&path).unwrap();
        assert!(written.starts_with(b"k1:") && written.len() == 3 + 44, "{}", String::from_utf8_lossy(&written));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
        // Read again, not replaced.
        key_file(&path).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), written);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processes_racing_to_create_the_key_file_all_get_the_one_written() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = key_path(&dir.path().join("k.db"));
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    tokio::spawn(async move { key_file(&path).await.map(|k| k.ids().len()) })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap().unwrap_or_else(|e| panic!("round {round}: {e}")), 1);
            }
        }
    }

    /// Issue 13: a key file that cannot be read was silently replaced by a new key, making every
    /// stored token unreadable.
    #[tokio::test]
    async fn a_key_file_that_cannot_be_used_is_an_error_and_stays_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("not-utf8", vec![b'k', b'1', b':', 0xff, 0xfe, 0x80, b'A'], "is not text (not UTF-8)"),
            ("malformed", b"k1:not base64!".to_vec(), "entry 1 has a key that is not valid standard base64"),
            ("short", b"k1:AAECAwQ=".to_vec(), "entry 1 has a key of 5 bytes"),
            ("wrong-way", format!("{KEY}:k1").into_bytes(), "entry 1 is written the wrong way round"),
            ("blank", b"  \n".to_vec(), "holds no key"),
        ];
        for (name, content, expected) in cases {
            let path = dir.path().join(format!("{name}.db.key"));
            std::fs::write(&path, &content).unwrap();
            let e = key_file(&path).await.err().unwrap_or_else(|| panic!("{name}: must be refused")).to_string();
            assert!(e.contains(&path.display().to_string()), "{name}: the error names the file: {e}");
            assert!(e.contains(expected), "{name}: `{e}` should say `{expected}`");
            assert!(e.contains("does not replace it"), "{name}: {e}");
            assert!(!shows_key(&e, KEY), "{name}: the error shows the key: {e}");
            assert_eq!(std::fs::read(&path).unwrap(), content, "{name}: the file is unchanged");
        }

        // A key "file" that is a directory cannot be read: an error, and it is left alone.
        let path = dir.path().join("dir.db.key");
        std::fs::create_dir(&path).unwrap();
        let e = key_file(&path).await.unwrap_err().to_string();
        assert!(e.starts_with(&format!("cannot read the key file {}", path.display())), "{e}");
        assert!(path.is_dir() && std::fs::read_dir(&path).unwrap().next().is_none());

        // A key file its reader may not read (unless this runs as root, who reads anything).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join("locked.db.key");
            let content = format!("k1:{KEY}");
            std::fs::write(&path, &content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
            if std::fs::File::open(&path).is_err() {
                let e = key_file(&path).await.unwrap_err().to_string();
                assert!(e.starts_with(&format!("cannot read the key file {}", path.display())), "{e}");
                assert!(!shows_key(&e, KEY));
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content, "the file is unchanged");
        }
    }

    #[tokio::test]
    async fn an_empty_key_file_is_waited_for_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db.key");
        std::fs::write(&path, b"").unwrap();
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(120)).await;
                std::fs::write(&path, format!("k7:{KEY}")).unwrap();
            })
        };
        // Another process writing it: its key is read once written.
        assert_eq!(key_file(&path).await.unwrap().ids(), vec!["k7"]);
        writer.await.unwrap();

        let path = dir.path().join("stays-empty.db.key");
        std::fs::write(&path, b"").unwrap();
        let e = key_file(&path).await.unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"", "left as it is");
    }

    /// Issue 13: `--db /dev/null` created `/dev/null.key`. A path that cannot be a SQLite file
    /// is refused before any key file is created.
    #[tokio::test]
    async fn a_database_path_that_is_not_a_sqlite_file_is_refused_before_any_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let sub = d.join("a-directory");
        std::fs::create_dir(&sub).unwrap();
        let text = d.join("notes.txt");
        std::fs::write(&text, "not a database").unwrap();
        let mut cases = vec![
            (sub.clone(), "is a directory, not a regular file".to_owned()),
            (text.clone(), "is not a SQLite file".to_owned()),
            (d.join("missing").join("k.db"), "cannot be created in".to_owned()),
            (text.join("k.db"), "cannot".to_owned()),
            (PathBuf::new(), "the database path is empty".to_owned()),
        ];
        #[cfg(unix)]
        let _socket = {
            let sock = d.join("a-socket");
            let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
            cases.push((sock, "is a socket, not a regular file".to_owned()));
            listener
        };
        for (path, expected) in &cases {
            let e = open_store(None, path).await.err().unwrap_or_else(|| panic!("{}: must be refused", path.display()));
            let e = e.to_string();
            assert!(e.contains(expected.as_str()), "{}: `{e}` should say `{expected}`", path.display());
            assert!(!key_path(path).exists(), "{}: no key file is created", path.display());
        }
        assert_eq!(std::fs::read_to_string(&text).unwrap(), "not a database");
        let mut names: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert!(names.iter().all(|n| !n.ends_with(".key")), "{names:?}");
        #[cfg(unix)]
        assert!(check_sqlite_path(Path::new("/dev/null")).unwrap_err().to_string().contains("is a character device"));
    }

    #[tokio::test]
    async fn a_usable_database_path_opens_with_its_key_file() {
        let dir = tempfile::tempdir().unwrap();
        // A new file in an existing directory, an empty file, and an existing database.
        let new = dir.path().join("new.db");
        check_sqlite_path(&new).unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        check_sqlite_path(&empty).unwrap();
        if std::env::var_os(KEYS_ENV).is_none() {
            let store = open_store(None, &new).await.unwrap();
            assert_eq!(store.location, new.display().to_string());
            drop(store);
            assert!(key_path(&new).is_file());
            check_sqlite_path(&new).unwrap();
            open_store(None, &new).await.unwrap();
        }
    }
}
