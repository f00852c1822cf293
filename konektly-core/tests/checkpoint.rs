//! Versioned checkpoints (issue 15 B.5): a checkpoint that does not parse, or that names a
//! version of the state this build does not read, ends the target as `outcome_unknown`; it is
//! never read as "nothing saved", which would publish what was published already.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use konektly_core::testing::{StubBehavior, StubPlatform};
use konektly_core::{
    Account, Checkpoint, ClaimRequest, Completion, Content, EngineConfig, Error, ErrorKind, Konektly,
    MemoryCheckpoints, MemoryScheduler, MemoryTokenStore, OwnerId, Platform, Post, PublishContext, Target,
    TargetOptions, TargetState, ThreadItem,
};
use serde_json::json;

fn engine_with(stub: Arc<StubPlatform>) -> Konektly {
    let config = EngineConfig {
        retry_base: Duration::from_millis(1),
        retry_max: Duration::from_millis(5),
        reconcile_delay: Duration::ZERO,
        idle_poll: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    Konektly::builder()
        .platform(stub)
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(config)
        .build()
        .unwrap()
}

async fn connect(engine: &Konektly, owner: &OwnerId) -> Account {
    let start = engine.connect(owner, &"stub".into(), &"https://app.example/callback".parse().unwrap()).await.unwrap();
    engine.complete_connect(&start.state, "code").await.unwrap().remove(0)
}

fn thread(n: usize) -> Content {
    let mut content = Content::text(format!("1/{n}"));
    for i in 2..=n {
        content = content.with_thread_item(ThreadItem { text: format!("{i}/{n}"), media: vec![] });
    }
    content
}

/// The checkpoints a stub thread of two posted items leaves, spoiled in each way.
fn spoiled(saved: &Checkpoint) -> Vec<(&'static str, Checkpoint)> {
    let mut future = saved.as_json().clone();
    future["checkpoint_version"] = json!(2);
    let mut garbled = saved.as_json().clone();
    garbled["posted"] = json!("not a list");
    vec![
        ("a future version", Checkpoint::from_json(future)),
        ("a garbled field", Checkpoint::from_json(garbled)),
        ("not an object", Checkpoint::from_json(json!(["a", "b"]))),
    ]
}

#[tokio::test]
async fn the_stub_refuses_an_unreadable_checkpoint_instead_of_posting_again() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone());
    let account = connect(&engine, &OwnerId::new("o")).await;
    let content = thread(3);
    let options = TargetOptions::default();
    let target = konektly_core::TargetId::new();
    // A first attempt posts two items, then fails: its checkpoint lists them.
    stub.script([StubBehavior::FailThreadAfter(2)]);
    let saver = MemoryCheckpoints::new();
    let mut ctx = PublishContext::builder(target, &account, &content, &options).hooks(&*saver).build();
    assert!(stub.publish(&mut ctx).await.is_err());
    let saved = saver.last().expect("a checkpoint");
    assert_eq!(saved.as_json()["checkpoint_version"], 1, "the state's version is saved with it");
    assert_eq!(stub.posts().len(), 2);

    for (what, cp) in spoiled(&saved) {
        let saver = MemoryCheckpoints::new();
        let mut ctx =
            PublishContext::builder(target, &account, &content, &options).checkpoint(cp).hooks(&*saver).build();
        let err = stub.publish(&mut ctx).await.expect_err(what);
        assert!(matches!(err, Error::CheckpointUnreadable { .. }), "{what}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{what}");
        assert_eq!(err.code(), Some("checkpoint_unreadable"), "{what}");
        assert_eq!(stub.posts().len(), 2, "{what}: nothing was posted again");
        assert!(saver.saved().is_empty(), "{what}: nothing was saved over it");
        let err = stub.reconcile(&mut ctx).await.expect_err(what);
        assert!(matches!(err, Error::CheckpointUnreadable { .. }), "{what}: {err:?}");
    }

    // The same state saved before versions existed (no version) still resumes.
    let mut legacy = saved.as_json().clone();
    legacy.as_object_mut().unwrap().remove("checkpoint_version");
    let mut ctx = PublishContext::builder(target, &account, &content, &options)
        .checkpoint(Checkpoint::from_json(legacy))
        .hooks(&*saver)
        .build();
    assert!(stub.publish(&mut ctx).await.is_ok());
    let texts: Vec<String> = stub.posts().into_iter().map(|p| p.text).collect();
    assert_eq!(texts, ["1/3", "2/3", "3/3"], "each item posted once");
}

#[tokio::test]
async fn an_engine_target_with_an_unreadable_checkpoint_ends_outcome_unknown_without_a_second_create() {
    for spoil in 0..3 {
        let stub = Arc::new(StubPlatform::new("stub"));
        let engine = engine_with(stub.clone());
        let owner = OwnerId::new("o1");
        let account = connect(&engine, &owner).await;
        stub.script([StubBehavior::FailThreadAfter(2)]);
        let post = Post::new(owner, thread(4)).to(Target::new(account.id));
        let t = engine.publish_now(&post).await.unwrap();
        assert_eq!(t[0].state.name(), "scheduled", "the thread failed half-way");
        assert_eq!(stub.posts().len(), 2);

        // Spoil the stored checkpoint (as a newer konektly, or a changed state struct, would
        // leave it), under a lease of its own, and hand the target back.
        let mut req = ClaimRequest::new("tamper".into(), 10, Duration::from_secs(60));
        req.now = Utc::now() + chrono::Duration::hours(1);
        let claims = engine.scheduler().claim(&req).await.unwrap();
        assert_eq!(claims.len(), 1);
        let (what, cp) = spoiled(&claims[0].record.checkpoint).remove(spoil);
        engine.scheduler().save_checkpoint(&claims[0].lease, &cp).await.unwrap();
        let back = Completion::Retry { at: Utc::now(), error: None, attempts: claims[0].record.attempts };
        engine.scheduler().complete(&claims[0].lease, &back).await.unwrap();

        engine.worker().run_once().await.unwrap();
        let t = engine.status(post.id).await.unwrap();
        let TargetState::Failed { .. } = &t[0].state else { panic!("{what}: {:?}", t[0].state) };
        let failure = t[0].last_error.as_ref().expect("a failure");
        assert_eq!(failure.kind, ErrorKind::OutcomeUnknown, "{what}");
        assert_eq!(failure.code.as_deref(), Some("checkpoint_unreadable"), "{what}");
        assert_eq!(stub.posts().len(), 2, "{what}: no item was posted a second time");
    }
}
