//! Metrics of a published post and of the account, through the engine against the sandbox's X
//! (which keeps metrics that grow with a tweet's age), and snapshots on the decaying schedule.

use std::sync::Arc;

use chrono::{Duration, Utc};
use konektly_core::analytics::{Analytics, MemoryMetricsStore};
use konektly_core::{Content, Konektly, MemoryScheduler, MemoryTokenStore, OwnerId, Post, Target, TargetState};
use konektly_testkit::Sandbox;
use konektly_twitter::XBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_snapshots_of_a_published_tweet() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = sandbox.credentials("x");
    let x = XBuilder::new()
        .with_client_id(c.client_id)
        .with_client_secret(c.client_secret)
        .with_base_url(sandbox.base_url("x").to_string())
        .build()
        .unwrap();
    let engine = Konektly::builder()
        .platform(Arc::new(x))
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .build()
        .unwrap();
    let owner = OwnerId::new("o");
    let account = konektly_testkit::conformance::connect_as(&engine, &owner, "x", None).await.remove(0);
    let post = Post::new(owner.clone(), Content::text("measured")).to(Target::new(account.id));
    let records = engine.owner(&owner).publish_now(&post).await.unwrap();
    assert!(matches!(records[0].state, TargetState::Published { .. }), "{:?}", records[0].state);
    let target = records[0].id;

    let analytics = Analytics::new(engine.clone(), Arc::new(MemoryMetricsStore::default()));
    let m = analytics.post_metrics(&owner, target).await.unwrap();
    assert!(m.impressions.is_some() && m.likes.is_some(), "{m:?}");
    assert!(m.link_clicks.is_some(), "the author's own recent tweet has non-public metrics: {m:?}");
    assert!(m.unavailable.contains_key("video_views"), "what X does not give is said: {m:?}");
    assert!(analytics.post_metrics(&OwnerId::new("else"), target).await.is_err(), "another owner's target");

    let a = analytics.account_metrics(&owner, account.id).await.unwrap();
    assert_eq!(a.posts, Some(1));
    assert!(a.followers.is_some());

    // Nothing is due before an hour; then one snapshot per point of the schedule, once.
    let now = Utc::now();
    assert_eq!(analytics.snapshot_due(now).await.unwrap().taken, 0);
    assert_eq!(analytics.snapshot_due(now + Duration::hours(2)).await.unwrap().taken, 1);
    assert_eq!(analytics.snapshot_due(now + Duration::hours(3)).await.unwrap().taken, 0, "the 1 h point is done");
    // Found three days late: one snapshot for the latest point, not one per point missed.
    assert_eq!(analytics.snapshot_due(now + Duration::days(3)).await.unwrap().taken, 1);
    assert_eq!(analytics.snapshot_due(now + Duration::days(3)).await.unwrap().taken, 0);
    let series = analytics.series(&owner, target).await.unwrap();
    assert_eq!(series.len(), 2);
    assert!(series[0].taken_at < series[1].taken_at);
}
