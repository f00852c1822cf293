//! A burst of posts due at once, published through the sandbox's X emulator (real HTTP on
//! loopback, X's own per-user limit of 100 posts per 15 minutes) by four workers that share a
//! PostgreSQL database, each with its own engine and connection pool as separate processes
//! would have. It reports the time from the workers' start until every target is recorded as
//! published, and checks that each post exists exactly once at the platform with the id
//! konektly recorded.
//!
//! `cargo test` runs it small (400 targets on 4 accounts); the figure in the README is the large
//! run, in release:
//!
//! ```text
//! KONEKTLY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test KONEKTLY_BURST_TARGETS=10000 \
//!     cargo test --release -p konektly --test burst -- --nocapture
//! ```
//!
//! Accounts: one per 100 targets (X allows a user 100 posts per 15 minutes; konektly declares
//! the same budget and would otherwise defer the rest by 15 minutes — correctly).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use konektly_cli::app::{self, SandboxInfo};
use konektly_core::{Content, EngineConfig, Konektly, OwnerId, Post, Scheduler, Target, TargetFilter, TargetState};
use konektly_store::{KeyRing, PostgresStore};
use konektly_testkit::{Sandbox, SandboxConfig};

const KEYS: &str = "burst:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const WORKERS: usize = 4;

fn engine_config() -> EngineConfig {
    EngineConfig {
        claim_batch: 128,
        worker_concurrency: 256,
        per_platform_concurrency: 256,
        per_account_concurrency: 4,
        completion_batch: 256,
        idle_poll: Duration::from_millis(100),
        ..EngineConfig::default()
    }
}

async fn engine(url: &str, schema: &str, info: &SandboxInfo) -> (Konektly, Arc<PostgresStore>) {
    let store = Arc::new(
        PostgresStore::builder(url)
            .schema(schema)
            .keys(KeyRing::parse(KEYS).unwrap())
            .max_connections(8)
            .connect()
            .await
            .unwrap(),
    );
    let (platforms, missing) = app::platforms_tuned(Some(info), &HashMap::new(), &app::Tuning::default());
    assert!(missing.is_empty(), "{missing:?}");
    let mut b = Konektly::builder().token_store(store.clone()).scheduler(store.clone()).config(engine_config());
    for p in platforms.into_iter().filter(|p| p.id().as_str() == "x") {
        b = b.platform(p);
    }
    (b.build().unwrap(), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_due_posts_is_published_once_each() {
    let Ok(url) = std::env::var("KONEKTLY_TEST_POSTGRES_URL") else {
        panic!("KONEKTLY_TEST_POSTGRES_URL is not set: the burst runs on PostgreSQL (see .ci/run)");
    };
    let targets: usize =
        std::env::var("KONEKTLY_BURST_TARGETS").ok().and_then(|v| v.parse().ok()).unwrap_or(400).max(1);
    let accounts_needed = targets.div_ceil(100);
    let sandbox = Sandbox::start_with(SandboxConfig::default()).await.unwrap();
    let info = SandboxInfo::of(&sandbox);
    let schema = format!("konektly_burst_{}", chrono::Utc::now().format("%Y%m%d%H%M%S%f"));
    let (first, store) = engine(&url, &schema, &info).await;
    let owner = OwnerId::new("burst");

    let mut accounts = Vec::with_capacity(accounts_needed);
    for i in 0..accounts_needed {
        let handle = format!("burst_{i}");
        sandbox.add_user("x", &handle);
        let grant = konektly_testkit::conformance::connect_as(&first, &owner, "x", Some(&handle)).await;
        accounts.push(grant.into_iter().next().expect("the grant reached the X account"));
    }
    // Every post due now before any worker starts: the burst.
    let prepared = Instant::now();
    let mut posts = Vec::with_capacity(targets);
    for i in 0..targets {
        let account = &accounts[i % accounts.len()];
        let post = Post::new(owner.clone(), Content::text(format!("burst post {i}"))).to(Target::new(account.id));
        posts.push(post);
    }
    for chunk in posts.chunks(500) {
        let mut handles = Vec::new();
        for p in chunk {
            let e = first.clone();
            let p = p.clone();
            handles.push(tokio::spawn(async move { e.schedule(&p).await.unwrap() }));
        }
        for h in handles {
            h.await.unwrap();
        }
    }
    let scheduling = prepared.elapsed();

    let mut engines = vec![first];
    for _ in 1..WORKERS {
        engines.push(engine(&url, &schema, &info).await.0);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let workers: Vec<_> = engines
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut rx = stop_rx.clone();
            let w = e.worker().with_id(format!("burst-{i}"));
            tokio::spawn(async move {
                w.run(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
            })
        })
        .collect();

    // Done when the platform has every post and the store has recorded every outcome.
    let limit = Duration::from_secs(600);
    let mut at_platform = None;
    let published = loop {
        assert!(started.elapsed() < limit, "not published within {limit:?}");
        let posted = sandbox.successes_of("x", "tweet");
        if posted as usize >= targets {
            at_platform.get_or_insert_with(|| started.elapsed());
            let recorded = store.list(&TargetFilter::default().in_states(&["published"])).await.unwrap();
            if recorded.len() == targets {
                break recorded;
            }
        }
        tokio::time::sleep(Duration::from_millis(if at_platform.is_some() { 50 } else { 10 })).await;
    };
    let all_recorded = started.elapsed();
    stop_tx.send(true).unwrap();
    for w in workers {
        w.await.unwrap().unwrap();
    }

    // Exactly once, with the recorded id.
    let live = sandbox.posts();
    let live_ids: HashMap<&str, &str> = live.iter().map(|p| (p.id.as_str(), p.text.as_str())).collect();
    assert_eq!(live.len(), targets, "one post per target at the platform");
    let texts: HashSet<&str> = live.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts.len(), targets, "no text posted twice");
    for r in &published {
        let TargetState::Published { remote } = &r.state else { unreachable!("listed as published") };
        assert_eq!(
            live_ids.get(remote.id.as_str()).copied(),
            Some(r.content.text.as_str()),
            "the recorded id is the post's own"
        );
    }
    assert_eq!(sandbox.early_requests("x"), 0, "nothing sent before a rate-limit wait ended");
    let at_platform = at_platform.unwrap();
    println!(
        "burst: {targets} targets on {} X accounts, {WORKERS} workers, PostgreSQL: scheduled in {:.2} s; \
         all at the platform after {:.2} s, all recorded published after {:.2} s ({:.0} targets/s); \
         {} HTTP requests to X",
        accounts.len(),
        scheduling.as_secs_f64(),
        at_platform.as_secs_f64(),
        all_recorded.as_secs_f64(),
        targets as f64 / all_recorded.as_secs_f64(),
        sandbox.request_count("x"),
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE"))).execute(&pool).await.unwrap();
}
