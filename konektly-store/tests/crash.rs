//! Proof that nothing is lost or posted twice: worker OS processes publish thousands of targets
//! to a local HTTP platform that counts what it receives, while a supervisor SIGKILLs a random
//! worker about every second and starts it again. At the end every target is published, none
//! is left in flight, and the platform received each exactly once.
//!
//! The workers are this test executable run again (the ignored `crash_worker_process` test),
//! configured through the environment.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use chrono::Utc;
use konektly_core::testing::StubPlatform;
use konektly_core::{
    Account, AccountGrant, AuthorizationRequest, Capabilities, Content, EngineConfig, Error, HttpClient, Konektly,
    OwnerId, PendingAuthorization, Platform, PlatformId, Post, Profile, PublishContext, PublishOutcome, Reconciliation,
    RemotePost, Result, Scheduler, Target, TargetOptions, TargetRecord, TokenSet, TokenStore, Violation,
};
use konektly_store::{KeyRing, KonektlyStore, SqliteStore};
use rand::Rng;
use support::Raw;
use url::Url;

const PLATFORM: &str = "crashnet";
const KEYS: &str = "crash:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

// ---- the platform, as workers see it ------------------------------------------------------

/// Publishes with `POST {base}/posts/{target}` and reconciles with `GET {base}/posts/{target}`.
#[derive(Debug)]
struct HttpCountingPlatform {
    base: Url,
    http: konektly_core::reqwest::Client,
    caps: Capabilities,
}

impl HttpCountingPlatform {
    fn new(base: Url) -> Self {
        let caps = StubPlatform::new(PLATFORM).capabilities().clone();
        let http = HttpClient::new().expect("an HTTP client").client().clone();
        Self { base, http, caps }
    }

    fn url(&self, ctx: &PublishContext<'_>) -> Url {
        self.base.join(&format!("posts/{}", ctx.target)).unwrap()
    }
}

#[async_trait]
impl Platform for HttpCountingPlatform {
    fn id(&self) -> PlatformId {
        PlatformId::new(PLATFORM)
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    fn validate(&self, _content: &Content, _options: &TargetOptions) -> Vec<Violation> {
        Vec::new()
    }
    fn authorization_request(&self, _redirect_uri: &Url) -> Result<AuthorizationRequest> {
        Err(Error::NotSupported("connect".into()))
    }
    async fn exchange_code(&self, _code: &str, _pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        Err(Error::NotSupported("connect".into()))
    }
    async fn refresh(&self, _account: &Account) -> Result<TokenSet> {
        Err(Error::NotSupported("refresh".into()))
    }
    async fn revoke(&self, _account: &Account) -> Result<()> {
        Ok(())
    }
    async fn profile(&self, account: &Account) -> Result<Profile> {
        Ok(Profile { remote_id: account.remote_id.clone(), ..Profile::default() })
    }
    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let url = self.url(ctx);
        match self.http.post(url).send().await {
            Ok(r) if r.status().is_success() => {
                Ok(PublishOutcome::Published(RemotePost::new(self.id(), ctx.target.to_string(), None)))
            }
            Ok(r) => Err(Error::transient(format!("status {}", r.status()))),
            // It may have landed: reconcile before anything is sent again.
            Err(e) => Err(Error::UnknownOutcome { message: "no answer".into(), source: Some(Box::new(e)) }),
        }
    }
    async fn poll(&self, _ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        Err(Error::NotSupported("poll".into()))
    }
    async fn delete(&self, _account: &Account, _post: &RemotePost) -> Result<()> {
        Ok(())
    }
    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        let r = self.http.get(self.url(ctx)).send().await.map_err(|e| Error::transient(e.to_string()))?;
        match r.status() {
            StatusCode::OK => Ok(Reconciliation::Published(RemotePost::new(self.id(), ctx.target.to_string(), None))),
            StatusCode::NOT_FOUND => Ok(Reconciliation::NotFound),
            s => Err(Error::transient(format!("status {s}"))),
        }
    }
}

// ---- a worker process ---------------------------------------------------------------------

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the supervisor"))
}

async fn open_store(backend: &str, db: &str, schema: Option<&str>) -> Arc<dyn KonektlyStore> {
    let keys = KeyRing::from_env().expect("KONEKTLY_KEYS");
    match backend {
        "sqlite" => Arc::new(SqliteStore::open(db, keys).await.expect("open SQLite")),
        _ => {
            let mut b = konektly_store::PostgresStore::builder(db).keys(keys).max_connections(8);
            if let Some(s) = schema {
                b = b.schema(s);
            }
            Arc::new(b.connect().await.expect("connect PostgreSQL"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of the crash tests; they start it themselves"]
async fn crash_worker_process() {
    let backend = env("KONEKTLY_CRASH_BACKEND");
    let schema = std::env::var("KONEKTLY_CRASH_SCHEMA").ok();
    let store = open_store(&backend, &env("KONEKTLY_CRASH_DB"), schema.as_deref()).await;
    let platform = HttpCountingPlatform::new(env("KONEKTLY_CRASH_PLATFORM").parse().unwrap());
    let config = EngineConfig {
        lease: Duration::from_secs(4),
        heartbeat: Duration::from_millis(800),
        claim_batch: 16,
        worker_concurrency: 16,
        per_platform_concurrency: 16,
        per_account_concurrency: 16,
        idle_poll: Duration::from_millis(200),
        reconcile_delay: Duration::from_millis(100),
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_secs(1),
        max_attempts: 1000,
        ..EngineConfig::default()
    };
    let ts: Arc<dyn TokenStore> = store.clone();
    let sched: Arc<dyn Scheduler> = store.clone();
    let engine = Konektly::builder()
        .platform(Arc::new(platform))
        .token_store(ts)
        .scheduler(sched)
        .config(config)
        .build()
        .unwrap();
    // Runs until the supervisor kills it.
    engine.worker().with_id(env("KONEKTLY_CRASH_WORKER")).run(std::future::pending()).await.unwrap();
}

// ---- the supervisor -----------------------------------------------------------------------

#[derive(Clone, Default)]
struct Received(Arc<Mutex<HashMap<String, u32>>>, Arc<std::sync::atomic::AtomicU64>);

async fn serve_platform(received: Received) -> Url {
    async fn create(State(r): State<Received>, Path(id): Path<String>) -> StatusCode {
        // A little latency, so kills land while requests are in flight.
        tokio::time::sleep(Duration::from_millis(5)).await;
        *r.0.lock().unwrap().entry(id).or_default() += 1;
        StatusCode::OK
    }
    async fn find(State(r): State<Received>, Path(id): Path<String>) -> StatusCode {
        r.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if r.0.lock().unwrap().contains_key(&id) { StatusCode::OK } else { StatusCode::NOT_FOUND }
    }
    let app = axum::Router::new().route("/posts/{id}", post(create).get(find)).with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/").parse().unwrap()
}

struct Supervisor {
    backend: &'static str,
    db: String,
    schema: Option<String>,
    platform: Url,
    workers: Vec<Child>,
    started: usize,
}

impl Supervisor {
    fn spawn(&mut self) -> Child {
        self.started += 1;
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--ignored", "--exact", "crash_worker_process", "--test-threads", "1", "--nocapture"])
            .env("KONEKTLY_CRASH_BACKEND", self.backend)
            .env("KONEKTLY_CRASH_DB", &self.db)
            .env("KONEKTLY_CRASH_PLATFORM", self.platform.as_str())
            .env("KONEKTLY_CRASH_WORKER", format!("crash-worker-{}", self.started))
            .env("KONEKTLY_KEYS", KEYS)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(s) = &self.schema {
            cmd.env("KONEKTLY_CRASH_SCHEMA", s);
        }
        cmd.spawn().expect("start a worker process")
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

async fn crash_test(
    backend: &'static str,
    db: String,
    schema: Option<String>,
    raw: Raw,
    processes: usize,
    targets: usize,
) {
    let received = Received::default();
    let platform = serve_platform(received.clone()).await;
    let store = open_store_with(backend, &db, schema.as_deref()).await;

    // One account, and `targets` posts due over the next five seconds, so that kills land while
    // workers are busy.
    let mut account = support::account("crash-owner", &support::token("access"), None);
    account.platform = PlatformId::new(PLATFORM);
    account.tokens.expires_at = None;
    store.insert_account(&account).await.unwrap();
    let start = Utc::now();
    let records: Vec<TargetRecord> = (0..targets)
        .map(|i| {
            let post =
                Post::new(OwnerId::new("crash-owner"), Content::text(format!("post {i}"))).to(Target::new(account.id));
            let due = start + chrono::Duration::microseconds((i as i64 * 5_000_000) / targets as i64);
            TargetRecord::new(&post, &post.targets[0], PlatformId::new(PLATFORM), due)
        })
        .collect();
    assert_eq!(store.enqueue(&records).await.unwrap(), targets);

    let mut sup = Supervisor { backend, db, schema, platform, workers: Vec::new(), started: 0 };
    for _ in 0..processes {
        let w = sup.spawn();
        sup.workers.push(w);
    }
    let began = Instant::now();
    let mut kills = 0;
    loop {
        let nap = rand::rng().random_range(700..1300);
        tokio::time::sleep(Duration::from_millis(nap)).await;
        let done = raw
            .count("SELECT COUNT(*) FROM konektly_targets WHERE state IN ('published', 'failed', 'cancelled')")
            .await;
        if done as usize == targets {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(150), "only {done} of {targets} targets finished in time");
        let victim = rand::rng().random_range(0..sup.workers.len());
        sup.workers[victim].kill().unwrap(); // SIGKILL
        sup.workers[victim].wait().unwrap();
        kills += 1;
        sup.workers[victim] = sup.spawn();
    }
    let elapsed = began.elapsed();
    drop(sup);

    let published = raw.count("SELECT COUNT(*) FROM konektly_targets WHERE state = 'published'").await;
    let leased = raw.count("SELECT COUNT(*) FROM konektly_targets WHERE lease_owner IS NOT NULL").await;
    assert_eq!(published as usize, targets, "every target is published");
    assert_eq!(leased, 0, "no target is left in flight");
    let got = received.0.lock().unwrap().clone();
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
    for r in &records {
        assert_eq!(got.get(&r.id.to_string()), Some(&1), "target {} reached the platform once", r.id);
    }
    assert_eq!(got.len(), targets);
    assert!(kills >= 3, "the supervisor killed workers ({kills}) while they worked");
    let reconciled = received.1.load(std::sync::atomic::Ordering::Relaxed);
    assert!(reconciled > 0, "killed workers left targets whose outcome had to be reconciled");
    eprintln!(
        "{backend}: {targets} targets, {processes} processes, {kills} SIGKILLs, {reconciled} reconciliations, {elapsed:?}"
    );
}

async fn open_store_with(backend: &str, db: &str, schema: Option<&str>) -> Arc<dyn KonektlyStore> {
    let keys = KeyRing::parse(KEYS).unwrap();
    match backend {
        "sqlite" => Arc::new(SqliteStore::open(db, keys).await.unwrap()),
        _ => Arc::new(support::pg_store(db, schema.unwrap(), keys).await),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_four_processes_sigkilled_every_second_publish_each_target_exactly_once() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("crash");
    let raw = Raw::pg(&url, &schema).await;
    crash_test("postgres", url.clone(), Some(schema.clone()), raw, 4, 5000).await;
    support::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_processes_sigkilled_every_second_publish_each_target_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let db = path.to_str().unwrap().to_owned();
    // The store creates the file; the raw connection opens it after.
    drop(SqliteStore::open(&path, KeyRing::parse(KEYS).unwrap()).await.unwrap());
    let raw = Raw::sqlite(&path).await;
    crash_test("sqlite", db, None, raw, 2, 5000).await;
}
