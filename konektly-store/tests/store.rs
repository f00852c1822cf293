//! Behaviour beyond the conformance suites, on both backends: completions follow core's
//! `apply_completion`, a newer schema is refused untouched, budgets hold across stores sharing
//! one database, and the data-rights operations.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use konektly_core::{
    AccountId, ClaimRequest, Completion, Content, Error, FailureRecord, OwnerId, PendingAuthorization, PlatformId,
    Post, RemotePost, Scheduler, Target, TargetFilter, TargetRecord, TargetState, WorkerId, apply_completion,
};
use konektly_store::{ErasePolicy, KeyRing, KonektlyStore, SqliteStore};
use support::{Raw, account, token};

fn target(platform: &PlatformId, account: AccountId, owner: &str, due_in: i64) -> TargetRecord {
    let post = Post::new(OwnerId::new(owner), Content::text("hello")).to(Target::new(account));
    TargetRecord::new(&post, &post.targets[0], platform.clone(), Utc::now() + chrono::Duration::seconds(due_in))
}

fn req(platform: &PlatformId) -> ClaimRequest {
    let mut r = ClaimRequest::new(WorkerId::new("w"), 100, Duration::from_secs(60));
    r.platforms = Some(vec![platform.clone()]);
    r
}

async fn completions_follow_apply_completion(s: &dyn KonektlyStore) {
    let platform = PlatformId::new(format!("p-{}", uuid::Uuid::new_v4()));
    let now = Utc::now();
    let failure = FailureRecord::from(&Error::transient("flaky"));
    let completions = vec![
        Completion::Published(RemotePost::new(platform.clone(), "r1", Some("https://x.example/r1".parse().unwrap()))),
        Completion::Processing { poll_at: now + chrono::Duration::seconds(30) },
        Completion::Retry { at: now + chrono::Duration::seconds(60), error: Some(failure.clone()), attempts: 3 },
        Completion::Retry { at: now + chrono::Duration::seconds(60), error: None, attempts: 0 },
        Completion::Unknown { at: now + chrono::Duration::seconds(5), error: Some(failure.clone()), attempts: 3 },
        Completion::Unknown { at: now + chrono::Duration::seconds(5), error: None, attempts: 1 },
        Completion::Blocked { reason: "token revoked".into() },
        Completion::Failed(FailureRecord::from(&Error::rejected(Some("dup".into()), "duplicate"))),
    ];
    for c in completions {
        let mut t = target(&platform, AccountId::new(), "owner-c", -1);
        t.last_error = Some(FailureRecord::from(&Error::transient("earlier")));
        s.enqueue(std::slice::from_ref(&t)).await.unwrap();
        let claimed = s.claim(&req(&platform)).await.unwrap().pop().expect("claimed");
        let got = s.complete(&claimed.lease, &c).await.unwrap();
        let mut want = claimed.record.clone();
        apply_completion(&mut want, &c, got.updated_at);
        assert_eq!(got, want, "{c:?}");
        assert_eq!(s.get(t.id).await.unwrap().unwrap(), want, "{c:?} as read back");
    }
}

async fn budgets_hold_across_stores(a: Arc<dyn KonektlyStore>, b: Arc<dyn KonektlyStore>) {
    let key = konektly_core::ratelimit::budget_key(
        &PlatformId::new("x"),
        konektly_core::ratelimit::BudgetScope::App,
        AccountId::new(),
        &uuid::Uuid::new_v4().to_string(),
    );
    let t0 = Utc::now();
    let tasks = (0..40).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tokio::spawn(async move { s.acquire_budget(&key, 25, Duration::from_secs(60), 1, t0).await.unwrap() })
    });
    let mut granted = 0;
    for t in tasks {
        if t.await.unwrap().is_none() {
            granted += 1;
        }
    }
    assert_eq!(granted, 25, "exactly the limit is granted across two stores on one database");
}

async fn data_rights(s: &dyn KonektlyStore) {
    let owner = format!("owner-{}", uuid::Uuid::new_v4());
    let platform = PlatformId::new(format!("p-{}", uuid::Uuid::new_v4()));
    let secret = token("access");
    let acc = account(&owner, &secret, Some(&token("refresh")));
    s.insert_account(&acc).await.unwrap();
    let other = account(&owner, &token("access"), None);
    s.insert_account(&other).await.unwrap();
    let pending = PendingAuthorization {
        state: format!("st-{}", uuid::Uuid::new_v4()),
        platform: PlatformId::new("x"),
        owner: OwnerId::new(owner.clone()),
        redirect_uri: "https://app.example/cb".parse().unwrap(),
        pkce_verifier: None,
        expires_at: Utc::now() + chrono::Duration::minutes(5),
        reconnect: Some(acc.id),
    };
    s.put_pending(&pending).await.unwrap();
    // One published, one scheduled target for the account; one for the other account.
    let done = target(&platform, acc.id, &owner, -1);
    let waiting = target(&platform, acc.id, &owner, 3600);
    let others = target(&platform, other.id, &owner, -1);
    s.enqueue(&[done.clone(), waiting.clone(), others.clone()]).await.unwrap();
    for c in s.claim(&req(&platform)).await.unwrap() {
        s.complete(&c.lease, &Completion::Published(RemotePost::new(platform.clone(), "r", None))).await.unwrap();
    }

    let export = s.export_account(acc.id).await.unwrap();
    let text = export.to_string();
    assert_eq!(export["account"]["id"], acc.id.to_string());
    assert_eq!(export["account"]["handle"], "@someone");
    assert_eq!(export["targets"].as_array().unwrap().len(), 2, "the account's targets, not the other's");
    assert_eq!(export["pending_authorizations"].as_array().unwrap().len(), 1);
    assert!(!text.contains(&secret), "an export never holds a token");
    assert!(matches!(s.export_account(AccountId::new()).await, Err(Error::NotFound(_))));

    let budget = konektly_core::ratelimit::budget_key(
        &platform,
        konektly_core::ratelimit::BudgetScope::Account,
        acc.id,
        "video_init",
    );
    assert_eq!(s.acquire_budget(&budget, 1, Duration::from_secs(3600), 1, Utc::now()).await.unwrap(), None);

    // Erase keeping history: the published target stays, the waiting one goes.
    let e = s.erase_account(acc.id, ErasePolicy { keep_post_history: true }).await.unwrap();
    assert_eq!(e.budgets, 1, "the account's budgets go too");
    assert_eq!(
        s.acquire_budget(&budget, 1, Duration::from_secs(3600), 1, Utc::now()).await.unwrap(),
        None,
        "a fresh budget after erasure"
    );
    assert!(e.account);
    assert_eq!((e.pending_authorizations, e.targets), (1, 1));
    assert!(s.get_account(acc.id).await.unwrap().is_none());
    assert!(s.take_pending(&pending.state).await.unwrap().is_none());
    assert!(s.get(done.id).await.unwrap().is_some(), "post history kept as configured");
    assert!(s.get(waiting.id).await.unwrap().is_none());

    // Erase everything.
    let e = s.erase_account(other.id, ErasePolicy::default()).await.unwrap();
    assert_eq!((e.account, e.targets), (true, 1));
    assert!(s.get(others.id).await.unwrap().is_none());
    assert!(!s.erase_account(other.id, ErasePolicy::default()).await.unwrap().account);

    // Retention: only finished targets changed before the cut-off go.
    let fresh = target(&platform, AccountId::new(), &owner, 3600);
    s.enqueue(std::slice::from_ref(&fresh)).await.unwrap();
    assert_eq!(s.purge_published_before(Utc::now() - chrono::Duration::hours(1)).await.unwrap(), 0);
    let purged = s.purge_published_before(Utc::now() + chrono::Duration::seconds(1)).await.unwrap();
    assert!(purged >= 1);
    assert!(s.get(done.id).await.unwrap().is_none(), "the published target is purged");
    assert_eq!(s.get(fresh.id).await.unwrap().unwrap().state, TargetState::Scheduled, "pending work is kept");
    assert_eq!(s.list(&TargetFilter::account(acc.id)).await.unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a: Arc<dyn KonektlyStore> = Arc::new(SqliteStore::open(&path, KeyRing::generate("k1")).await.unwrap());
    let b: Arc<dyn KonektlyStore> = Arc::new(SqliteStore::open(&path, KeyRing::generate("k1")).await.unwrap());
    completions_follow_apply_completion(a.as_ref()).await;
    data_rights(a.as_ref()).await;
    budgets_hold_across_stores(a, b).await;
    let mem = SqliteStore::in_memory(KeyRing::generate("k1")).await.unwrap();
    data_rights(&mem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behaviour() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("beh");
    let a: Arc<dyn KonektlyStore> = Arc::new(support::pg_store(&url, &schema, KeyRing::generate("k1")).await);
    let b: Arc<dyn KonektlyStore> = Arc::new(support::pg_store(&url, &schema, KeyRing::generate("k1")).await);
    completions_follow_apply_completion(a.as_ref()).await;
    data_rights(a.as_ref()).await;
    budgets_hold_across_stores(a, b).await;
    support::drop_schema(&url, &schema).await;
}

#[test]
fn debug_output_never_shows_a_database_password_or_key() {
    let b = konektly_store::PostgresStore::builder("postgres://app:hunter2-secret@db.example:5432/prod")
        .keys(KeyRing::parse("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap());
    let d = format!("{b:?}");
    assert!(!d.contains("hunter2") && !d.contains("AAECAwQF"), "{d}");
    assert!(d.contains("k1"), "key ids are shown: {d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_untouched_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    drop(SqliteStore::open(&path, KeyRing::generate("k1")).await.unwrap());
    let raw = Raw::sqlite(&path).await;
    raw.exec("INSERT INTO konektly_schema (version, applied_at_ns) VALUES (999, 0)").await;
    raw.exec("DROP TABLE konektly_budgets").await;
    let e = SqliteStore::open(&path, KeyRing::generate("k1")).await.unwrap_err();
    assert!(matches!(&e, Error::Config(m) if m.contains("999") && m.contains("newer")), "{e}");
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'konektly_budgets'").await,
        0,
        "nothing was migrated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_untouched_postgres() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("newer");
    drop(support::pg_store(&url, &schema, KeyRing::generate("k1")).await);
    let raw = Raw::pg(&url, &schema).await;
    raw.exec("INSERT INTO konektly_schema (version, applied_at_ns) VALUES (999, 0)").await;
    raw.exec("DROP TABLE konektly_budgets").await;
    let e = konektly_store::PostgresStore::builder(&url)
        .schema(&schema)
        .keys(KeyRing::generate("k1"))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Config(m) if m.contains("999") && m.contains("newer")), "{e}");
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'konektly_budgets' AND table_schema = current_schema()").await,
        0,
        "nothing was migrated"
    );
    support::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_an_idle_worker_on_enqueue() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("wake");
    let a = Arc::new(support::pg_store(&url, &schema, KeyRing::generate("k1")).await);
    let b = support::pg_store(&url, &schema, KeyRing::generate("k1")).await;
    // The waiter waits up to a minute; another store enqueues every 200 ms (the first NOTIFY
    // may come before the listener is connected). Only a notification ends the wait early.
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move {
            let t = std::time::Instant::now();
            a.wait_for_work(Duration::from_secs(60)).await;
            t.elapsed()
        })
    };
    for _ in 0..50 {
        if waiter.is_finished() {
            break;
        }
        b.enqueue(&[target(&PlatformId::new("x"), AccountId::new(), "o", -1)]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waited = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(10), "NOTIFY woke the waiter (waited {waited:?})");
    support::drop_schema(&url, &schema).await;
}
