//! Metrics of a Facebook Page post and of the Page, through the engine against the sandbox's
//! Graph API (which keeps reaction, comment and share counts growing with a post's age).

use std::sync::Arc;

use konektly_core::analytics::{Analytics, MemoryMetricsStore};
use konektly_core::{Content, Konektly, MemoryScheduler, MemoryTokenStore, OwnerId, Post, Target, TargetState};
use konektly_meta::MetaBuilder;
use konektly_testkit::Sandbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_post_and_the_page_have_counts() {
    let sandbox = Sandbox::start().await.unwrap();
    let fb = sandbox.credentials("facebook");
    let meta = MetaBuilder::new()
        .with_app(fb.client_id, fb.client_secret)
        .with_base_url(sandbox.base_url("facebook").to_string())
        .build()
        .unwrap();
    let mut b =
        Konektly::builder().token_store(Arc::new(MemoryTokenStore::new())).scheduler(Arc::new(MemoryScheduler::new()));
    for p in meta.platforms() {
        b = b.platform(p);
    }
    let engine = b.build().unwrap();
    let owner = OwnerId::new("o");
    let accounts = konektly_testkit::conformance::connect_as(&engine, &owner, "facebook", None).await;
    let page = accounts.iter().find(|a| a.platform.as_str() == "facebook" && a.parent.is_some()).expect("a Page");
    let post = Post::new(owner.clone(), Content::text("counted")).to(Target::new(page.id));
    let records = engine.owner(&owner).publish_now(&post).await.unwrap();
    assert!(matches!(records[0].state, TargetState::Published { .. }), "{:?}", records[0].state);

    let analytics = Analytics::new(engine.clone(), Arc::new(MemoryMetricsStore::default()));
    let m = analytics.post_metrics(&owner, records[0].id).await.unwrap();
    assert_eq!((m.likes.is_some(), m.comments.is_some(), m.shares.is_some()), (true, true, true), "{m:?}");
    assert!(m.unavailable["reach"].contains("Insights"), "{m:?}");
    let a = analytics.account_metrics(&owner, page.id).await.unwrap();
    assert!(a.raw.contains_key("id"), "{a:?}");
}
