//! The X adapter inside konektly's engine, against a wiremock X: a refused token is refreshed
//! once (rotating the refresh token) and the post retried; refused again, the account needs
//! reconnecting; a duplicate answer is reconciled to the post already there; a thread that
//! failed half-way continues from the ids checkpointed in the scheduler.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use konektly_core::{
    AccountStatus, Content, EngineConfig, Konektly, MemoryScheduler, MemoryTokenStore, Post, Target, TargetState,
    ThreadItem, TokenStore,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn engine(server: &MockServer) -> (Konektly, Arc<MemoryTokenStore>, konektly_core::Account) {
    let store = Arc::new(MemoryTokenStore::new());
    let account = account();
    store.insert_account(&account).await.unwrap();
    let config = EngineConfig { reconcile_delay: Duration::ZERO, ..EngineConfig::default() };
    let engine = Konektly::builder()
        .platform(Arc::new(platform(&server.uri())))
        .token_store(store.clone())
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(config)
        .build()
        .unwrap();
    (engine, store, account)
}

fn unauthorized() -> ResponseTemplate {
    ResponseTemplate::new(401)
        .set_body_json(json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}))
}

fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"data": {"id": id, "text": "t"}}))
}

async fn mount_refresh(server: &MockServer, times: u64) {
    Mock::given(method("POST"))
        .and(path("/2/oauth2/token"))
        .and(form_is(&[("grant_type", "refresh_token"), ("refresh_token", REFRESH), ("client_id", "client-abc")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "expires_in": 7200, "access_token": "fresh-access",
            "refresh_token": "fresh-refresh", "scope": "tweet.read tweet.write users.read media.write offline.access"
        })))
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_post_sent_again() {
    let server = MockServer::start().await;
    let (engine, store, account) = engine(&server).await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(unauthorized())
        .expect(1)
        .mount(&server)
        .await;
    mount_refresh(&server, 1).await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(header("authorization", "Bearer fresh-access"))
        .and(body_json(json!({"text": "after a refresh"})))
        .respond_with(created("1910000000000000001"))
        .expect(1)
        .mount(&server)
        .await;
    let post = Post::new(account.owner.clone(), Content::text("after a refresh")).to(Target::new(account.id));
    let targets = engine.publish_now(&post).await.unwrap();
    assert!(matches!(&targets[0].state, TargetState::Published { remote } if remote.id == "1910000000000000001"));
    let stored = store.get_account(account.id).await.unwrap().unwrap();
    assert_eq!(stored.tokens.refresh_token.unwrap().expose(), "fresh-refresh", "the rotated token was stored");
}

#[tokio::test]
async fn a_token_refused_after_a_refresh_needs_reconnection() {
    let server = MockServer::start().await;
    let (engine, store, account) = engine(&server).await;
    Mock::given(method("POST")).and(path("/2/tweets")).respond_with(unauthorized()).expect(2).mount(&server).await;
    mount_refresh(&server, 1).await;
    let post = Post::new(account.owner.clone(), Content::text("blocked")).to(Target::new(account.id));
    let targets = engine.publish_now(&post).await.unwrap();
    assert!(matches!(targets[0].state, TargetState::Blocked { .. }), "{:?}", targets[0].state);
    let stored = store.get_account(account.id).await.unwrap().unwrap();
    assert!(matches!(stored.status, AccountStatus::ReauthRequired { .. }));
}

fn duplicate() -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(json!({
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank", "title": "Forbidden", "status": 403}))
}

#[tokio::test]
async fn a_duplicate_of_the_users_earlier_post_is_refused_and_nothing_is_adopted() {
    let server = MockServer::start().await;
    let (engine, _store, account) = engine(&server).await;
    Mock::given(method("POST")).and(path("/2/tweets")).respond_with(duplicate()).expect(1).mount(&server).await;
    // The user's own post of an hour ago, with the same text: never adopted (no lookup at all).
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{USER_ID}/tweets")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "1920000000000000001", "text": "said once"}], "meta": {"result_count": 1}})))
        .expect(0)
        .mount(&server)
        .await;
    let post = Post::new(account.owner.clone(), Content::text("said once")).to(Target::new(account.id));
    let targets = engine.publish_now(&post).await.unwrap();
    match &targets[0].state {
        TargetState::Failed { failure } => assert_eq!(failure.code.as_deref(), Some("duplicate"), "{failure:?}"),
        other => panic!("a duplicate of an earlier post is a clear refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_duplicate_after_this_targets_own_lost_create_is_reconciled_to_the_first_copy() {
    let server = MockServer::start().await;
    let (engine, _store, account) = engine(&server).await;
    // The first create lands but its answer is a 503; the timeline does not show it yet, so
    // the worker sends again and X answers "duplicate": that is our own first copy.
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/2/tweets")).respond_with(duplicate()).mount(&server).await;
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{USER_ID}/tweets")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"meta": {"result_count": 0}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{USER_ID}/tweets")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "1920000000000000001", "text": "said once"}], "meta": {"result_count": 1}})))
        .mount(&server)
        .await;
    let post = Post::new(account.owner.clone(), Content::text("said once")).to(Target::new(account.id));
    let targets = engine.publish_now(&post).await.unwrap();
    assert_eq!(targets[0].state, TargetState::Unknown, "a 503 on a create is an unknown outcome");
    for _ in 0..5 {
        engine.worker().run_once().await.unwrap();
    }
    let targets = engine.status(post.id).await.unwrap();
    assert!(
        matches!(&targets[0].state, TargetState::Published { remote } if remote.id == "1920000000000000001"),
        "{:?}",
        targets[0].state
    );
}

#[tokio::test]
async fn a_thread_that_failed_half_way_continues_from_the_scheduler_checkpoint() {
    let server = MockServer::start().await;
    let (engine, _store, account) = engine(&server).await;
    let mut content = Content::text("t1");
    for k in 2..=5 {
        content = content.with_thread_item(ThreadItem { text: format!("t{k}"), media: vec![] });
    }
    let body = |k: u32| {
        if k == 1 {
            json!({"text": "t1"})
        } else {
            json!({"text": format!("t{k}"), "reply": {"in_reply_to_tweet_id": format!("193000000000000000{}", k - 1)}})
        }
    };
    for k in 1..=2 {
        Mock::given(method("POST"))
            .and(path("/2/tweets"))
            .and(body_json(body(k)))
            .respond_with(created(&format!("193000000000000000{k}")))
            .expect(1)
            .mount(&server)
            .await;
    }
    // The third item's create is answered 503: X may or may not have taken it.
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(body_json(body(3)))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"title": "Service Unavailable", "type": "about:blank", "status": 503, "detail": "Service Unavailable"}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let post = Post::new(account.owner.clone(), content).to(Target::new(account.id));
    let targets = engine.publish_now(&post).await.unwrap();
    assert_eq!(targets[0].state, TargetState::Unknown, "a 503 on a create is reconciled before sending again");
    let posted: Vec<_> = targets[0].checkpoint.as_json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["posted_id"].as_str())
        .map(str::to_owned)
        .collect();
    assert_eq!(posted, ["1930000000000000001", "1930000000000000002"]);

    for k in 3..=5 {
        Mock::given(method("POST"))
            .and(path("/2/tweets"))
            .and(body_json(body(k)))
            .respond_with(created(&format!("193000000000000000{k}")))
            .expect(1)
            .mount(&server)
            .await;
    }
    // The timeline shows the first two items only: the third did not land.
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{USER_ID}/tweets")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "1930000000000000002", "text": "t2"}, {"id": "1930000000000000001", "text": "t1"}],
            "meta": {"result_count": 2}})))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(engine.worker().run_once().await.unwrap(), 1);
    let targets = engine.status(post.id).await.unwrap();
    let TargetState::Published { remote } = &targets[0].state else { panic!("{:?}", targets[0].state) };
    assert_eq!(remote.id, "1930000000000000001");
    assert_eq!(
        remote.thread_ids,
        ["1930000000000000002", "1930000000000000003", "1930000000000000004", "1930000000000000005"]
    );
}

#[tokio::test]
async fn a_spent_window_reported_by_x_defers_the_next_post_without_calling() {
    let server = MockServer::start().await;
    let (engine, _store, account) = engine(&server).await;
    let reset = Utc::now() + chrono::Duration::minutes(15);
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(
            created("1940000000000000001")
                .insert_header("x-rate-limit-limit", "100")
                .insert_header("x-rate-limit-remaining", "0")
                .insert_header("x-rate-limit-reset", reset.timestamp().to_string().as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let first = Post::new(account.owner.clone(), Content::text("first")).to(Target::new(account.id));
    let targets = engine.publish_now(&first).await.unwrap();
    assert!(matches!(targets[0].state, TargetState::Published { .. }));

    let second = Post::new(account.owner.clone(), Content::text("second")).to(Target::new(account.id));
    let targets = engine.publish_now(&second).await.unwrap();
    assert_eq!(targets[0].state, TargetState::Scheduled, "deferred, not sent");
    assert_eq!(targets[0].due_at.timestamp(), reset.timestamp(), "until X's reset");
    assert_eq!(targets[0].attempts, 0, "a deferral is not an attempt");
}
