//! First comments and follow-ups, deleting and editing published posts: the engine against the
//! memory stores and the StubPlatform.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use konektly_core::testing::{StubBehavior, StubPlatform};
use konektly_core::{
    Account, CommentPhase, Content, EditRequest, EngineConfig, Error, ErrorKind, Konektly, MemoryScheduler,
    MemoryTokenStore, OwnerId, Platform, Post, RemotePost, Target, TargetRecord, TargetState,
};

fn fast_config() -> EngineConfig {
    EngineConfig {
        retry_base: Duration::from_millis(1),
        retry_max: Duration::from_millis(5),
        reconcile_delay: Duration::ZERO,
        idle_poll: Duration::from_millis(20),
        heartbeat: Duration::from_millis(200),
        ..EngineConfig::default()
    }
}

fn engine_with(stub: Arc<StubPlatform>) -> Konektly {
    Konektly::builder()
        .platform(stub)
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(fast_config())
        .build()
        .unwrap()
}

async fn connect(engine: &Konektly, owner: &OwnerId) -> Account {
    let start = engine.connect(owner, &"stub".into(), &"https://app.example/callback".parse().unwrap()).await.unwrap();
    engine.complete_connect(&start.state, "alice").await.unwrap().remove(0)
}

async fn drain(engine: &Konektly) {
    let worker = engine.worker();
    for _ in 0..50 {
        if worker.run_once().await.unwrap() == 0 {
            match engine.scheduler().next_due_at().await.unwrap() {
                None => return,
                Some(t) => {
                    let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    if wait > Duration::from_millis(500) {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

fn published(r: &TargetRecord) -> &RemotePost {
    match &r.state {
        TargetState::Published { remote } => remote,
        other => panic!("not published: {other:?} ({:?})", r.last_error),
    }
}

async fn setup() -> (Arc<StubPlatform>, Konektly, OwnerId, Account) {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner).await;
    (stub, engine, owner, account)
}

#[tokio::test]
async fn comments_are_published_after_the_post_each_with_its_id() {
    let (stub, engine, owner, account) = setup().await;
    let content = Content::text("hello").with_comment("first!").with_comment("and a follow-up");
    let post = Post::new(owner, content).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    let remote = published(&t[0]);
    assert_eq!(remote.comments.len(), 2);
    let landed = stub.comments();
    assert_eq!(landed.len(), 2);
    assert!(landed.iter().all(|c| c.post == remote.id));
    assert_eq!(landed[0].text, "first!");
    assert_eq!(remote.comment_ids().collect::<Vec<_>>(), vec![landed[0].id.as_str(), landed[1].id.as_str()]);
    assert!(remote.comments.iter().all(|c| c.error.is_none()));
}

#[tokio::test]
async fn a_failing_comment_is_retried_on_its_own_without_posting_again() {
    let (stub, engine, owner, account) = setup().await;
    stub.script_comments([StubBehavior::Transient, StubBehavior::Transient]);
    let post = Post::new(owner, Content::text("hello").with_comment("first!")).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    // The post is live; the comment waits for its own retry.
    assert_eq!(t[0].state, TargetState::Processing);
    drain(&engine).await;
    let t = engine.status(post.id).await.unwrap();
    let remote = published(&t[0]);
    assert_eq!(stub.posts().len(), 1, "the post is never sent again");
    assert_eq!(stub.count("publish"), 1);
    assert_eq!(stub.comments().len(), 1);
    assert_eq!(stub.count("publish_comment"), 3);
    assert_eq!(remote.comments[0].id.as_deref(), Some(stub.comments()[0].id.as_str()));
}

#[tokio::test]
async fn a_refused_comment_ends_as_a_comment_failure_and_the_target_stays_published() {
    let (stub, engine, owner, account) = setup().await;
    stub.script_comments([StubBehavior::Reject("no links in comments".into())]);
    let content = Content::text("hello").with_comment("bad").with_comment("good");
    let post = Post::new(owner, content).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    let remote = published(&t[0]);
    let failure = remote.comments[0].error.as_ref().expect("the first comment failed");
    assert_eq!(failure.kind, ErrorKind::Rejected);
    assert!(remote.comments[0].id.is_none());
    assert!(remote.comments[1].id.is_some(), "the next comment still goes");
    assert_eq!(stub.comments().len(), 1);
}

#[tokio::test]
async fn retries_of_a_comment_are_bounded() {
    let (stub, engine, owner, account) = setup().await;
    stub.script_comments(std::iter::repeat_n(StubBehavior::Transient, 20));
    let post = Post::new(owner, Content::text("hello").with_comment("first!")).to(Target::new(account.id));
    engine.publish_now(&post).await.unwrap();
    drain(&engine).await;
    let t = engine.status(post.id).await.unwrap();
    let remote = published(&t[0]);
    assert_eq!(remote.comments[0].error.as_ref().unwrap().kind, ErrorKind::Transient);
    assert_eq!(stub.count("publish_comment"), EngineConfig::default().max_attempts as usize);
    assert_eq!(stub.posts().len(), 1);
}

#[tokio::test]
async fn a_comment_whose_answer_was_lost_is_looked_up_not_sent_twice() {
    let (stub, engine, owner, account) = setup().await;
    stub.script_comments([StubBehavior::TimeoutAfterAccept]);
    let post = Post::new(owner, Content::text("hello").with_comment("first!")).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state, TargetState::Processing);
    drain(&engine).await;
    let t = engine.status(post.id).await.unwrap();
    let remote = published(&t[0]);
    assert_eq!(stub.comments().len(), 1, "exactly one first comment");
    assert_eq!(stub.count("find_comment"), 1);
    assert_eq!(remote.comments[0].id.as_deref(), Some(stub.comments()[0].id.as_str()));
}

/// A checkpoint saying that the post is published and comment 0 was sent, left by a worker
/// that died before the comment's answer: whether the comment landed or not, the platform ends
/// with exactly one, and the post is never sent again.
#[tokio::test]
async fn a_crash_between_post_and_comment_never_makes_two_first_comments() {
    for landed in [true, false] {
        let (stub, engine, owner, account) = setup().await;
        let post = Post::new(owner, Content::text("hello").with_comment("first!")).to(Target::new(account.id));
        let mut record = TargetRecord::new(&post, &post.targets[0], "stub".into(), Utc::now());
        let remote = RemotePost::new("stub".into(), "post-1", None);
        let mut phase = CommentPhase::new(remote, 1);
        phase.comments[0].sent_at = Some(Utc::now());
        phase.comments[0].first_sent_at = phase.comments[0].sent_at;
        phase.comments[0].tries = 1;
        record.checkpoint = phase.saved_in(&record.checkpoint).unwrap();
        // The worker held it in flight and died: its lease ran out, so it is reconciled.
        record.state = TargetState::Unknown;
        engine.scheduler().enqueue(&[record]).await.unwrap();
        let earlier = landed.then(|| stub.land_comment("post-1", "first!"));

        drain(&engine).await;
        let t = engine.status(post.id).await.unwrap();
        let remote = published(&t[0]);
        assert_eq!(remote.id, "post-1");
        assert_eq!(stub.comments().len(), 1, "landed before the crash: {landed}");
        assert_eq!(stub.count("publish"), 0, "the post is not published again");
        assert_eq!(stub.count("reconcile"), 0, "the post is not even looked up");
        assert_eq!(stub.count("publish_comment"), usize::from(!landed));
        if let Some(id) = earlier {
            assert_eq!(remote.comments[0].id.as_deref(), Some(id.as_str()));
        }
    }
}

#[tokio::test]
async fn comments_are_validated() {
    let (_stub, engine, owner, account) = setup().await;
    let content = Content::text("hello").with_comment(" ").with_comment("x".repeat(501));
    let post = Post::new(owner.clone(), content).to(Target::new(account.id));
    let v = engine.validate(&post).await.unwrap();
    let codes: Vec<&str> = v.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes, vec!["comment_empty", "comment_too_long"], "{v:?}");
    assert_eq!(v[1].field, "comments[1]");

    let mut caps = StubPlatform::new("stub").capabilities().clone();
    caps.comments = None;
    let stub = Arc::new(StubPlatform::new("stub").with_capabilities(caps));
    let engine = engine_with(stub);
    let account = connect(&engine, &owner).await;
    let post = Post::new(owner, Content::text("hello").with_comment("first")).to(Target::new(account.id));
    match engine.publish_now(&post).await {
        Err(Error::InvalidPost(v)) => assert_eq!(v[0].code, "comments_not_supported"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn delete_is_recorded_in_the_target_state() {
    let (stub, engine, owner, account) = setup().await;
    let post = Post::new(owner.clone(), Content::text("hello")).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    let id = t[0].id;
    let deleted = engine.owner(&owner).delete_target(id).await.unwrap();
    let remote = published(&deleted);
    assert!(remote.deleted_at.is_some());
    assert!(stub.posts().is_empty());
    assert_eq!(engine.scheduler().get(id).await.unwrap().unwrap(), deleted);
    // Again: nothing more is sent.
    engine.delete_target(id).await.unwrap();
    assert_eq!(stub.count("delete"), 1);
    // Another owner sees nothing.
    assert!(matches!(engine.owner(&OwnerId::new("o2")).delete_target(id).await, Err(Error::NotFound(_))));

    // A target that is not published cannot be deleted.
    let later = Post::new(owner, Content::text("later")).at(Utc::now() + chrono::Duration::hours(1));
    let later = later.to(Target::new(account.id));
    engine.schedule(&later).await.unwrap();
    let t = engine.status(later.id).await.unwrap();
    assert!(matches!(engine.delete_target(t[0].id).await, Err(Error::Conflict(_))));
}

#[tokio::test]
async fn edits_follow_the_capabilities() {
    let (stub, engine, owner, account) = setup().await;
    let post = Post::new(owner, Content::text("hello")).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    let id = t[0].id;
    let edit = EditRequest { text: Some("hello, edited".into()), ..EditRequest::default() };
    let edited = engine.edit_target(id, &edit).await.unwrap();
    assert!(published(&edited).edited_at.is_some());
    assert_eq!(stub.edits().len(), 1);
    let too_long = EditRequest { text: Some("x".repeat(501)), ..EditRequest::default() };
    assert!(matches!(engine.edit_target(id, &too_long).await, Err(Error::InvalidPost(_))));
    let title = EditRequest { title: Some("a title".into()), ..EditRequest::default() };
    assert!(matches!(engine.edit_target(id, &title).await, Err(Error::NotSupported(_))));
    assert_eq!(stub.edits().len(), 1);
}
