//! Queue benchmark: claim → record throughput of targets that need no network, with 1, 2 and 4
//! workers, and due → claim latency of an idle worker, on SQLite and PostgreSQL.
//!
//! ```text
//! KONEKTLY_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p konektly-store --bench queue
//! ```
//!
//! Environment: `KONEKTLY_BENCH_POSTGRES_URL` (else `KONEKTLY_TEST_POSTGRES_URL`; PostgreSQL is
//! skipped without either), `KONEKTLY_BENCH_JOBS` (default 20000), `KONEKTLY_BENCH_BATCH`
//! (targets per claim, comma-separated sizes to compare, default `100,500`; the engine rows use
//! the first). Every run uses a fresh SQLite file or PostgreSQL schema. `KONEKTLY_BENCH_ENGINE_ONLY`
//! runs only the engine rows, `KONEKTLY_BENCH_QUEUE_ONLY` only the queue rows,
//! `KONEKTLY_BENCH_SKIP_SQLITE` only PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use konektly_core::testing::StubPlatform;
use konektly_core::{
    AccessToken, Account, AccountId, AccountStatus, ClaimRequest, Completion, Content, EngineConfig, Konektly, OwnerId,
    PlatformId, Post, RemotePost, Scheduler, Target, TargetFilter, TargetRecord, TokenSet, TokenStore, WorkerId,
};
use konektly_store::{KeyRing, KonektlyStore, PostgresStore, SqliteStore};

const PLATFORM: &str = "bench";

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl Backend {
    fn store(&self) -> Arc<dyn KonektlyStore> {
        match self {
            Backend::Sqlite(s) => s.clone(),
            Backend::Postgres(s) => s.clone(),
        }
    }

    async fn complete_many(&self, items: &[(konektly_core::Lease, Completion)]) -> usize {
        let out = match self {
            Backend::Sqlite(s) => s.complete_many(items).await,
            Backend::Postgres(s) => s.complete_many(items).await,
        };
        out.unwrap().into_iter().filter(|r| r.is_ok()).count()
    }
}

struct Setup {
    name: &'static str,
    pg_url: Option<String>,
    _dir: tempfile::TempDir,
    schemas: std::sync::Mutex<Vec<String>>,
}

impl Setup {
    /// A fresh, empty store (and a second handle on the same database, like another process).
    async fn fresh(&self) -> (Backend, Backend) {
        let keys = || KeyRing::generate("bench");
        match &self.pg_url {
            None => {
                let path = self._dir.path().join(format!("{}.db", uuid::Uuid::new_v4()));
                let a = SqliteStore::open(&path, keys()).await.unwrap();
                let b = SqliteStore::open(&path, keys()).await.unwrap();
                (Backend::Sqlite(Arc::new(a)), Backend::Sqlite(Arc::new(b)))
            }
            Some(url) => {
                let schema = format!("konektly_bench_{}", uuid::Uuid::new_v4().simple());
                self.schemas.lock().unwrap().push(schema.clone());
                let open = || PostgresStore::builder(url).schema(&schema).keys(keys()).max_connections(10).connect();
                let a = open().await.unwrap();
                let b = open().await.unwrap();
                (Backend::Postgres(Arc::new(a)), Backend::Postgres(Arc::new(b)))
            }
        }
    }
}

fn account() -> Account {
    let now = Utc::now();
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("bench"),
        platform: PlatformId::new(PLATFORM),
        remote_id: "bench-user".into(),
        handle: None,
        display_name: None,
        avatar_url: None,
        tokens: TokenSet::new(AccessToken::new("bench-token")),
        status: AccountStatus::Active,
        parent: None,
        metadata: Default::default(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

fn targets(account: AccountId, n: usize, due: impl Fn(usize) -> chrono::DateTime<Utc>) -> Vec<TargetRecord> {
    (0..n)
        .map(|i| {
            let post = Post::new(OwnerId::new("bench"), Content::text("no-op")).to(Target::new(account));
            TargetRecord::new(&post, &post.targets[0], PlatformId::new(PLATFORM), due(i))
        })
        .collect()
}

async fn enqueue(s: &dyn Scheduler, records: &[TargetRecord]) {
    for chunk in records.chunks(5000) {
        s.enqueue(chunk).await.unwrap();
    }
}

/// The queue alone: each worker claims a batch and records it with one batched completion.
async fn queue_throughput(setup: &Setup, workers: usize, jobs: usize, batch: usize) -> (f64, f64, f64) {
    let (b, _) = setup.fresh().await;
    let past = Utc::now() - chrono::Duration::seconds(1);
    enqueue(b.store().as_ref(), &targets(AccountId::new(), jobs, |_| past)).await;
    let claim_ns = Arc::new(AtomicU64::new(0));
    let record_ns = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (b, claim_ns, record_ns) = (b.clone(), claim_ns.clone(), record_ns.clone());
            tokio::spawn(async move {
                let store = b.store();
                let mut done = 0usize;
                loop {
                    let t = Instant::now();
                    let req = ClaimRequest::new(WorkerId::new(format!("w{w}")), batch, Duration::from_secs(60));
                    let claims = store.claim(&req).await.unwrap();
                    claim_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    if claims.is_empty() {
                        return done;
                    }
                    let t = Instant::now();
                    let items: Vec<_> = claims
                        .into_iter()
                        .map(|c| {
                            let remote = RemotePost::new(PlatformId::new(PLATFORM), c.record.id.to_string(), None);
                            (c.lease, Completion::Published(remote))
                        })
                        .collect();
                    done += b.complete_many(&items).await;
                    record_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(total, jobs, "every job recorded once");
    let busy = (claim_ns.load(Ordering::Relaxed) + record_ns.load(Ordering::Relaxed)) as f64;
    (
        jobs as f64 / secs,
        claim_ns.load(Ordering::Relaxed) as f64 / busy,
        record_ns.load(Ordering::Relaxed) as f64 / busy,
    )
}

fn engine(store: Arc<dyn KonektlyStore>, config: EngineConfig) -> Konektly {
    let ts: Arc<dyn TokenStore> = store.clone();
    let sched: Arc<dyn Scheduler> = store;
    Konektly::builder()
        .platform(Arc::new(StubPlatform::new(PLATFORM)))
        .token_store(ts)
        .scheduler(sched)
        .config(config)
        .build()
        .unwrap()
}

fn engine_config(batch: usize) -> EngineConfig {
    EngineConfig {
        claim_batch: batch,
        worker_concurrency: batch,
        per_platform_concurrency: batch,
        per_account_concurrency: batch,
        completion_batch: batch,
        idle_poll: Duration::from_millis(250),
        ..EngineConfig::default()
    }
}

async fn published(s: &dyn Scheduler) -> usize {
    s.list(&TargetFilter::default().in_states(&["published"])).await.unwrap().len()
}

/// The engine's workers end to end (account read, budget checks, stub publish, one completion
/// per target).
async fn engine_throughput(setup: &Setup, workers: usize, jobs: usize, batch: usize) -> f64 {
    let (b, _) = setup.fresh().await;
    let store = b.store();
    let acc = account();
    store.insert_account(&acc).await.unwrap();
    let past = Utc::now() - chrono::Duration::seconds(1);
    enqueue(store.as_ref(), &targets(acc.id, jobs, |_| past)).await;
    let started = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let e = engine(store.clone(), engine_config(batch));
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                e.worker()
                    .run(async move {
                        while !*rx.borrow_and_update() {
                            if rx.changed().await.is_err() {
                                return;
                            }
                        }
                    })
                    .await
            })
        })
        .collect();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if store.next_due_at().await.unwrap().is_none() {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop_tx.send(true).unwrap();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert_eq!(published(store.as_ref()).await, jobs);
    jobs as f64 / secs
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Due → claim latency of one idle engine worker: `n` targets 20 ms apart, either scheduled in
/// advance, or enqueued when due by another store handle (another process).
async fn latency(setup: &Setup, n: usize, live: bool) -> (f64, f64, f64) {
    let (b, other) = setup.fresh().await;
    let store = b.store();
    let acc = account();
    store.insert_account(&acc).await.unwrap();
    let e = engine(store.clone(), engine_config(16));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(async move {
        e.worker()
            .run(async move {
                let _ = stop_rx.changed().await;
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // let it go idle
    let start = Utc::now() + chrono::Duration::milliseconds(200);
    let gap = chrono::Duration::milliseconds(20);
    let records = targets(acc.id, n, |i| start + gap * i as i32);
    if live {
        // SQLite's embedded case enqueues in-process; PostgreSQL from another handle.
        let producer = match &b {
            Backend::Sqlite(_) => store.clone(),
            Backend::Postgres(_) => other.store(),
        };
        for r in &records {
            let wait = (r.due_at - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            let mut r = r.clone();
            r.due_at = Utc::now();
            producer.enqueue(std::slice::from_ref(&r)).await.unwrap();
        }
    } else {
        enqueue(store.as_ref(), &records).await;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if published(store.as_ref()).await == n {
            break;
        }
    }
    stop_tx.send(true).unwrap();
    worker.await.unwrap().unwrap();
    let mut ms: Vec<f64> = store
        .list(&TargetFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.attempt_started_at.unwrap() - r.due_at).num_microseconds().unwrap() as f64 / 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99), *ms.last().unwrap())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let jobs: usize = std::env::var("KONEKTLY_BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let batches: Vec<usize> = std::env::var("KONEKTLY_BENCH_BATCH")
        .unwrap_or_else(|_| "100,500".into())
        .split(',')
        .map(|v| v.trim().parse().expect("KONEKTLY_BENCH_BATCH: claim sizes, comma-separated"))
        .collect();
    let batch = batches[0];
    let pg = std::env::var("KONEKTLY_BENCH_POSTGRES_URL").or_else(|_| std::env::var("KONEKTLY_TEST_POSTGRES_URL")).ok();
    let mut setups = Vec::new();
    if std::env::var("KONEKTLY_BENCH_SKIP_SQLITE").is_err() {
        setups.push(Setup {
            name: "SQLite (file, WAL)",
            pg_url: None,
            _dir: tempfile::tempdir().unwrap(),
            schemas: Default::default(),
        });
    }
    match pg {
        Some(url) => setups.push(Setup {
            name: "PostgreSQL",
            pg_url: Some(url),
            _dir: tempfile::tempdir().unwrap(),
            schemas: Default::default(),
        }),
        None => eprintln!("no KONEKTLY_BENCH_POSTGRES_URL: PostgreSQL skipped"),
    }
    println!("{jobs} no-op targets; workers are tasks of one process (2 runtime threads)\n");
    println!("| backend | what | claim size | workers | targets/s | time in claim / record |");
    println!("|---|---|---|---|---|---|");
    rt.block_on(async {
        for s in &setups {
            for &b in &batches {
                if std::env::var("KONEKTLY_BENCH_ENGINE_ONLY").is_ok() {
                    break;
                }
                for w in [1, 2, 4] {
                    let (tps, c, r) = queue_throughput(s, w, jobs, b).await;
                    println!(
                        "| {} | queue: batch claim + batch record | {b} | {w} | {tps:.0} | {:.0}% / {:.0}% |",
                        s.name,
                        c * 100.0,
                        r * 100.0
                    );
                }
            }
            for w in [1, 2, 4] {
                if std::env::var("KONEKTLY_BENCH_QUEUE_ONLY").is_ok() {
                    break;
                }
                let tps = engine_throughput(s, w, jobs, batch).await;
                println!("| {} | engine worker, stub platform | {batch} | {w} | {tps:.0} | |", s.name);
            }
        }
        println!("\n| backend | due → claim, idle worker, 200 targets 20 ms apart | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|");
        for s in &setups {
            if std::env::var("KONEKTLY_BENCH_QUEUE_ONLY").is_ok() {
                break;
            }
            for live in [false, true] {
                let (p50, p99, max) = latency(s, 200, live).await;
                let how = if live { "enqueued when due" } else { "scheduled ahead" };
                println!("| {} | {how} | {p50:.1} | {p99:.1} | {max:.1} |", s.name);
            }
        }
        // Drop the benchmark's schemas.
        for s in &setups {
            let Some(url) = &s.pg_url else { continue };
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let schemas: Vec<String> = s.schemas.lock().unwrap().drain(..).collect();
            for schema in schemas {
                let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
            }
        }
    });
}
