//! Published posts on both backends: a post's comments (their ids and failures) and a deletion
//! or an edit at the platform are kept in the target's state and read back by another handle.

mod support;

use std::sync::Arc;

use chrono::Utc;
use konektly_core::testing::{StubBehavior, StubPlatform};
use konektly_core::{
    Content, EditRequest, Error, Konektly, OwnerId, Post, RemotePost, Scheduler, Target, TargetId, TargetState,
    TokenStore,
};
use konektly_store::{KeyRing, SqliteStore};

fn engine<S: Scheduler + TokenStore + 'static>(store: Arc<S>, stub: Arc<StubPlatform>) -> Konektly {
    let ts: Arc<dyn TokenStore> = store.clone();
    let sched: Arc<dyn Scheduler> = store;
    Konektly::builder().platform(stub).token_store(ts).scheduler(sched).build().unwrap()
}

/// Publishes a post with two comments (the first refused) through `engine`, deletes and edits
/// it; returns the target's id.
async fn publish_edit_delete(engine: &Konektly, stub: &StubPlatform) -> TargetId {
    let owner = OwnerId::new("o");
    let start = engine.connect(&owner, &"stub".into(), &"https://app.example/cb".parse().unwrap()).await.unwrap();
    let account = engine.complete_connect(&start.state, "alice").await.unwrap().remove(0);
    stub.script_comments([StubBehavior::Reject("not this one".into())]);
    let content = Content::text("hello").with_comment("refused").with_comment("first comment");
    let post = Post::new(owner.clone(), content).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    let id = t[0].id;
    let edit = EditRequest { text: Some("hello again".into()), ..EditRequest::default() };
    engine.owner(&owner).edit_target(id, &edit).await.unwrap();
    engine.owner(&owner).delete_target(id).await.unwrap();

    // Only a published target records such changes.
    let later = Post::new(owner, Content::text("later")).at(Utc::now() + chrono::Duration::hours(1));
    let later = later.to(Target::new(account.id));
    engine.schedule(&later).await.unwrap();
    let scheduled = engine.status(later.id).await.unwrap()[0].id;
    let remote = RemotePost::new("stub".into(), "x", None);
    assert!(matches!(engine.scheduler().update_published(scheduled, &remote).await, Err(Error::Conflict(_))));
    assert!(matches!(engine.scheduler().update_published(TargetId::new(), &remote).await, Err(Error::NotFound(_))));
    id
}

async fn check_read_back(scheduler: &dyn Scheduler, id: TargetId, stub: &StubPlatform) {
    let r = scheduler.get(id).await.unwrap().unwrap();
    let TargetState::Published { remote } = &r.state else { panic!("{:?}", r.state) };
    assert!(remote.deleted_at.is_some());
    assert!(remote.edited_at.is_some());
    assert_eq!(remote.comments.len(), 2);
    assert!(remote.comments[0].error.as_ref().unwrap().message.ends_with("not this one"));
    assert_eq!(remote.comments[1].id.as_deref(), Some(stub.comments()[0].id.as_str()));
    assert_eq!(r.content.comments, vec!["refused".to_owned(), "first comment".to_owned()]);
}

#[tokio::test]
async fn sqlite_keeps_comments_edits_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let key = [9u8; 32];
    let stub = Arc::new(StubPlatform::new("stub"));
    let store = Arc::new(SqliteStore::open(&path, KeyRing::single("k1", &key).unwrap()).await.unwrap());
    let id = publish_edit_delete(&engine(store, stub.clone()), &stub).await;
    let again = SqliteStore::open(&path, KeyRing::single("k1", &key).unwrap()).await.unwrap();
    check_read_back(&again, id, &stub).await;
}

#[tokio::test]
async fn postgres_keeps_comments_edits_and_deletions() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("published");
    let key = [9u8; 32];
    let stub = Arc::new(StubPlatform::new("stub"));
    let store = Arc::new(support::pg_store(&url, &schema, KeyRing::single("k1", &key).unwrap()).await);
    let id = publish_edit_delete(&engine(store, stub.clone()), &stub).await;
    let again = support::pg_store(&url, &schema, KeyRing::single("k1", &key).unwrap()).await;
    check_read_back(&again, id, &stub).await;
    support::drop_schema(&url, &schema).await;
}
