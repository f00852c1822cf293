//! Posting queues on both backends: two store handles (as two processes would hold) taking
//! slots at once never get the same one; the queue operations over an engine move what is not
//! published yet.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use konektly_core::queue::{QueueId, QueueStore, Queues, SlotPlan};
use konektly_core::testing::StubPlatform;
use konektly_core::{Content, Konektly, OwnerId, PostId, Scheduler, TokenStore};
use konektly_store::{KeyRing, SqliteStore};

async fn concurrent_takers_never_share_a_slot(a: Arc<dyn QueueStore>, b: Arc<dyn QueueStore>) {
    let queue = QueueId::new();
    let base = Utc::now();
    let candidates: Vec<DateTime<Utc>> = (1..=40).map(|i| base + chrono::Duration::minutes(i)).collect();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let c = candidates.clone();
        tasks.push(tokio::spawn(async move {
            let post = PostId::new();
            (post, store.take_slot(queue, post, &c).await.unwrap().expect("a free slot"))
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    let mut slots: Vec<DateTime<Utc>> = got.iter().map(|(_, at)| *at).collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), 20, "twenty posts, twenty different slots");
    assert_eq!(slots, candidates[..20].to_vec(), "the earliest ones, none skipped");
    let held = a.queued(queue, base).await.unwrap();
    assert_eq!(held.len(), 20);
    // A post holds one slot of a queue; releasing frees it for the next taker.
    let (p0, at0) = got[0];
    assert!(a.take_slot(queue, p0, &candidates).await.is_err());
    assert!(b.release_slot(queue, p0).await.unwrap());
    let next = PostId::new();
    assert_eq!(a.take_slot(queue, next, &candidates).await.unwrap(), Some(at0));
}

fn engine(store: Arc<SqliteStore>) -> Konektly {
    let ts: Arc<dyn TokenStore> = store.clone();
    let sched: Arc<dyn Scheduler> = store;
    Konektly::builder().platform(Arc::new(StubPlatform::new("stub"))).token_store(ts).scheduler(sched).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_takers_in_two_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let key = [7u8; 32];
    let a = Arc::new(SqliteStore::open(&path, KeyRing::single("k1", &key).unwrap()).await.unwrap());
    let b = Arc::new(SqliteStore::open(&path, KeyRing::single("k1", &key).unwrap()).await.unwrap());
    concurrent_takers_never_share_a_slot(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_takers_in_two_pools() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("queues");
    let key = [7u8; 32];
    let a = Arc::new(support::pg_store(&url, &schema, KeyRing::single("k1", &key).unwrap()).await);
    let b = Arc::new(support::pg_store(&url, &schema, KeyRing::single("k1", &key).unwrap()).await);
    concurrent_takers_never_share_a_slot(a.clone(), b.clone()).await;
    a.close().await;
    b.close().await;
    support::drop_schema(&url, &schema).await;
}

/// Add, remove, skip the line, reorder, pause and resume, change the plan: the posts' due times
/// follow their slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_operations_move_the_posts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("q.db"), KeyRing::generate("k1")).await.unwrap());
    let engine = engine(store.clone());
    let owner = OwnerId::new("o");
    let account = support::account("o", "access", None);
    let mut account = account;
    account.platform = konektly_core::PlatformId::new("stub");
    store.insert_account(&account).await.unwrap();
    let queues = Queues::new(engine.clone(), store.clone());
    let plan = SlotPlan::parse("UTC", "09:00,15:00 daily").unwrap();
    queues.create(&owner, "main", &[account.id], plan.clone()).await.unwrap();
    assert!(queues.create(&owner, "main", &[account.id], plan.clone()).await.is_err(), "one name per owner");
    let expected: Vec<DateTime<Utc>> = plan.slots_after(Utc::now()).unwrap().take(4).collect();
    let mut posts = Vec::new();
    for (i, slot) in expected.iter().take(3).enumerate() {
        let q = queues.add_content(&owner, "main", Content::text(format!("post {i}"))).await.unwrap();
        assert_eq!(q.slot_at, *slot);
        assert_eq!(engine.status(q.post).await.unwrap()[0].due_at, *slot, "scheduled at its slot");
        posts.push(q.post);
    }
    // Removing the first frees its slot: the next post takes it.
    queues.remove(&owner, "main", posts[0]).await.unwrap();
    let again = queues.add_content(&owner, "main", Content::text("post 3")).await.unwrap();
    assert_eq!(again.slot_at, expected[0]);
    // Reorder: the new order takes the same slots, earliest first.
    let order = [posts[2], again.post, posts[1]];
    let moved = queues.reorder(&owner, "main", &order).await.unwrap();
    assert_eq!(moved.iter().map(|m| m.post).collect::<Vec<_>>(), order);
    assert_eq!(engine.status(posts[2]).await.unwrap()[0].due_at, expected[0]);
    assert!(queues.reorder(&owner, "main", &order[..2]).await.is_err(), "every pending post once");
    // Pause holds them; resume gives them the next slots in order.
    queues.pause(&owner, "main").await.unwrap();
    assert!(engine.status(posts[1]).await.unwrap()[0].due_at > Utc::now() + chrono::Duration::days(365));
    let resumed = queues.resume(&owner, "main").await.unwrap();
    assert_eq!(resumed.iter().map(|m| m.post).collect::<Vec<_>>(), order);
    // A new plan re-slots them, in the same order.
    let hourly = SlotPlan::parse("Europe/Paris", "06:00 daily").unwrap();
    let slots: Vec<DateTime<Utc>> = hourly.slots_after(Utc::now()).unwrap().take(3).collect();
    let moved = queues.set_plan(&owner, "main", hourly).await.unwrap();
    assert_eq!(moved.iter().map(|m| m.slot_at).collect::<Vec<_>>(), slots);
    for m in &moved {
        assert_eq!(engine.status(m.post).await.unwrap()[0].due_at, m.slot_at);
    }
    // Skip the line: published now, its slot free.
    queues.post_now(&owner, "main", posts[1]).await.unwrap();
    assert!(engine.status(posts[1]).await.unwrap()[0].due_at <= Utc::now());
    let left: Vec<PostId> = queues.pending(&owner, "main").await.unwrap().iter().map(|p| p.post).collect();
    assert_eq!(left, vec![order[0], order[1]], "it left the queue; the others keep their order");
    // Another owner cannot see it.
    assert!(queues.get(&OwnerId::new("other"), "main").await.is_err());
}

/// A series on a durable store: one post per occurrence even when two handles (two processes)
/// run the pass at once.
async fn series_once_per_occurrence(a: Arc<SqliteStore>, b: Arc<SqliteStore>) {
    use konektly_core::series::{MissedPolicy, Recurrence, Series, SeriesId, SeriesRunner};
    let owner = OwnerId::new("o");
    let mut account = support::account("o", "access", None);
    account.platform = konektly_core::PlatformId::new("stub");
    a.insert_account(&account).await.unwrap();
    let ra = SeriesRunner::new(engine(a.clone()), a.clone());
    let rb = SeriesRunner::new(engine(b.clone()), b.clone());
    let s = Series {
        id: SeriesId::new(),
        owner: owner.clone(),
        rule: Recurrence::parse("FREQ=DAILY;COUNT=20").unwrap(),
        time_zone: "UTC".into(),
        start: (Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M").to_string(),
        template: konektly_core::Post::new(owner.clone(), Content::text("day {n}"))
            .to(konektly_core::Target::new(account.id)),
        variants: vec![],
        missed: MissedPolicy::Skip,
        horizon_secs: 7 * 86_400,
        grace_secs: 600,
        paused: false,
        next: 0,
        end_before: None,
        overrides: Default::default(),
        version: 0,
    };
    let s = ra.create(s).await.unwrap();
    let later = Utc::now() + chrono::Duration::days(3);
    let (x, y) = tokio::join!(ra.materialize(&owner, s.id, later), rb.materialize(&owner, s.id, later));
    x.unwrap();
    y.unwrap();
    let targets = a.list(&konektly_core::TargetFilter::default()).await.unwrap();
    let mut texts: Vec<String> = targets.iter().map(|t| t.content.text.clone()).collect();
    texts.sort_by_key(|t| t[4..].parse::<u32>().unwrap());
    let want: Vec<String> = (1..=10).map(|n| format!("day {n}")).collect();
    assert_eq!(texts, want, "occurrences within three days + seven of horizon, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_series_once_per_occurrence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let key = [9u8; 32];
    let a = Arc::new(SqliteStore::open(&path, KeyRing::single("k1", &key).unwrap()).await.unwrap());
    let b = Arc::new(SqliteStore::open(&path, KeyRing::single("k1", &key).unwrap()).await.unwrap());
    series_once_per_occurrence(a, b).await;
}
