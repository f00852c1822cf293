//! The engine against the memory stores and the StubPlatform: the life of a target.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use konektly_core::ratelimit::DeclaredBudget;
use konektly_core::testing::{StubBehavior, StubPlatform};
use konektly_core::{
    Account, AccountId, AccountStatus, Checkpoint, ClaimRequest, Claimed, Completion, Content, EngineConfig, Error,
    Event, Konektly, Lease, MemoryScheduler, MemoryTokenStore, OwnerId, Post, Scheduler, Target, TargetFilter,
    TargetId, TargetRecord, TargetState, ThreadItem,
};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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

fn engine_with(stub: Arc<StubPlatform>, config: EngineConfig) -> Konektly {
    Konektly::builder()
        .platform(stub)
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(config)
        .build()
        .unwrap()
}

async fn connect(engine: &Konektly, owner: &OwnerId, code: &str) -> Account {
    let start = engine.connect(owner, &"stub".into(), &"https://app.example/callback".parse().unwrap()).await.unwrap();
    let mut accounts = engine.complete_connect(&start.state, code).await.unwrap();
    accounts.remove(0)
}

/// Runs a worker until every target of the engine's posts has ended (or `max_rounds` batches).
async fn drain(engine: &Konektly, max_rounds: usize) {
    let worker = engine.worker();
    for _ in 0..max_rounds {
        if worker.run_once().await.unwrap() == 0 {
            let next = engine.scheduler().next_due_at().await.unwrap();
            match next {
                None => return,
                Some(t) => {
                    let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    if wait > Duration::from_millis(200) {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[tokio::test]
async fn publish_now_publishes_once_and_reports_the_remote_post() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "alice").await;
    assert_eq!(account.handle.as_deref(), Some("@alice"));
    let mut events = engine.subscribe();

    let post = Post::new(owner, Content::text("hello world")).to(Target::new(account.id));
    let targets = engine.publish_now(&post).await.unwrap();
    assert_eq!(targets.len(), 1);
    let TargetState::Published { remote } = &targets[0].state else { panic!("{:?}", targets[0].state) };
    assert_eq!(remote.platform.as_str(), "stub");
    assert_eq!(stub.posts().len(), 1);
    assert_eq!(stub.posts()[0].text, "hello world");
    assert!(targets[0].lease.is_none());
    match events.recv().await.unwrap() {
        Event::Published { target, .. } => assert_eq!(target, targets[0].id),
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test]
async fn an_invalid_post_is_refused_with_every_violation_before_any_call() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "bob").await;
    let mut content = Content::text("x".repeat(501));
    content.link = Some("https://example.com".parse().unwrap());
    for _ in 0..5 {
        content.media.push(konektly_core::Media::from_bytes(
            &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0"[..],
        ));
    }
    let stranger = Target::new(konektly_core::AccountId::new());
    let post = Post::new(owner, content).to(Target::new(account.id)).to(stranger);
    let Err(Error::InvalidPost(violations)) = engine.publish_now(&post).await else { panic!("expected InvalidPost") };
    let codes: Vec<&str> = violations.iter().map(|v| v.code.as_str()).collect();
    assert!(codes.contains(&"text_too_long"), "{codes:?}");
    // Five images over a limit of four: one broken rule, reported once, by its kind.
    assert!(codes.contains(&"too_many_media_of_kind") && !codes.contains(&"too_many_media"), "{codes:?}");
    assert!(codes.contains(&"unknown_account"), "{codes:?}");
    assert!(violations.iter().all(|v| v.target.is_some()), "each violation names its target");
    assert!(
        violations
            .iter()
            .filter(|v| v.code == "text_too_long")
            .all(|v| v.platform.as_ref().unwrap().as_str() == "stub")
    );
    assert_eq!(stub.count("publish"), 0, "nothing reached the platform");
    assert!(engine.status(post.id).await.unwrap().is_empty(), "nothing was stored");
}

#[tokio::test]
async fn a_wrong_expired_or_replayed_state_is_refused() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = Konektly::builder()
        .platform(stub.clone())
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(EngineConfig { pending_authorization_ttl: Duration::ZERO, ..fast_config() })
        .build()
        .unwrap();
    let owner = OwnerId::new("o1");
    let cb = "https://app.example/callback".parse().unwrap();
    let start = engine.connect(&owner, &"stub".into(), &cb).await.unwrap();
    assert!(matches!(engine.complete_connect(&start.state, "c").await, Err(Error::Authorization(_))), "expired");
    assert!(matches!(engine.complete_connect("forged", "c").await, Err(Error::Authorization(_))), "wrong state");

    let engine = engine_with(stub.clone(), fast_config());
    let start = engine.connect(&owner, &"stub".into(), &cb).await.unwrap();
    assert!(start.url.as_str().contains(&start.state));
    engine.complete_connect(&start.state, "c").await.unwrap();
    assert!(matches!(engine.complete_connect(&start.state, "c").await, Err(Error::Authorization(_))), "replayed");
    assert_eq!(stub.count("exchange_code"), 1);
}

#[tokio::test]
async fn thirty_two_concurrent_publishes_share_one_refresh_of_a_rotating_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "access-2", "refresh_token": "refresh-2", "expires_in": 7200, "token_type": "bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let stub = Arc::new(
        StubPlatform::new("stub")
            .with_token_endpoint(format!("{}/token", server.uri()).parse().unwrap())
            .with_token_lifetime(chrono::Duration::seconds(-60)),
    );
    let engine = engine_with(stub.clone(), EngineConfig { per_account_concurrency: 32, ..fast_config() });
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "carol").await;
    assert!(account.tokens.expires_at.unwrap() < Utc::now(), "the token starts expired");

    let posts: Vec<Post> = (0..32)
        .map(|i| Post::new(owner.clone(), Content::text(format!("post {i}"))).to(Target::new(account.id)))
        .collect();
    let results = futures_util::future::join_all(posts.iter().map(|p| engine.publish_now(p))).await;
    for r in &results {
        let targets = r.as_ref().unwrap();
        assert_eq!(targets[0].state.name(), "published", "{:?}", targets[0].state);
    }
    assert_eq!(stub.posts().len(), 32);
    assert_eq!(stub.count("refresh"), 1, "exactly one refresh");
    let stored = engine.account(account.id).await.unwrap();
    assert_eq!(stored.tokens.refresh_token.as_ref().unwrap().expose(), "refresh-2", "the rotated token is stored");
    assert_eq!(stored.tokens.access_token.expose(), "access-2");
    server.verify().await;
}

#[tokio::test]
async fn a_refresh_answer_without_a_refresh_token_keeps_the_stored_one() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "access-2", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    let stub = Arc::new(
        StubPlatform::new("stub")
            .with_token_endpoint(format!("{}/token", server.uri()).parse().unwrap())
            .with_token_lifetime(chrono::Duration::seconds(10)),
    );
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "dan").await;
    let before = account.tokens.refresh_token.clone().unwrap();
    let fresh = engine.tokens().fresh_account(account.id).await.unwrap();
    assert_eq!(fresh.tokens.access_token.expose(), "access-2");
    assert_eq!(fresh.tokens.refresh_token.unwrap(), before, "the stored refresh token survives");
}

#[tokio::test]
async fn invalid_grant_blocks_the_targets_and_a_reconnect_resumes_them() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": "invalid_grant", "error_description": "token revoked"
        })))
        .mount(&server)
        .await;
    let stub = Arc::new(
        StubPlatform::new("stub")
            .with_token_endpoint(format!("{}/token", server.uri()).parse().unwrap())
            .with_token_lifetime(chrono::Duration::seconds(-1)),
    );
    let engine = engine_with(stub.clone(), fast_config());
    let mut events = engine.subscribe();
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "erin").await;
    let post = Post::new(owner.clone(), Content::text("blocked for now")).to(Target::new(account.id));
    let targets = engine.publish_now(&post).await.unwrap();
    assert_eq!(targets[0].state.name(), "blocked");
    assert_eq!(stub.count("publish"), 0);
    let stored = engine.account(account.id).await.unwrap();
    assert!(matches!(stored.status, AccountStatus::ReauthRequired { .. }));
    let mut saw = false;
    while let Ok(ev) = events.try_recv() {
        saw |= matches!(ev, Event::ReauthRequired { account: a, .. } if a == account.id);
    }
    assert!(saw, "a ReauthRequired event was raised");

    // Reconnecting (same remote user) resumes the blocked target.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "access-3", "refresh_token": "refresh-3", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    let start = engine.reconnect(account.id, &"https://app.example/callback".parse().unwrap()).await.unwrap();
    let stub_fresh = engine.complete_connect(&start.state, "erin").await.unwrap();
    assert_eq!(stub_fresh[0].id, account.id, "the same account is updated, not duplicated");
    assert_eq!(engine.accounts(&owner).await.unwrap().len(), 1);
    drain(&engine, 5).await;
    assert_eq!(engine.status(post.id).await.unwrap()[0].state.name(), "published");
    assert_eq!(stub.posts().len(), 1);
}

#[tokio::test]
async fn a_network_failure_during_refresh_does_not_disconnect_the_account() {
    let stub = Arc::new(
        StubPlatform::new("stub")
            .with_token_endpoint("http://127.0.0.1:9/token".parse().unwrap())
            .with_token_lifetime(chrono::Duration::seconds(-1)),
    );
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "fay").await;
    let err = engine.tokens().fresh_account(account.id).await.unwrap_err();
    assert!(matches!(err, Error::Transient { .. }), "{err:?}");
    assert_eq!(engine.account(account.id).await.unwrap().status, AccountStatus::Active);
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_then_the_account_is_blocked() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "gus").await;

    stub.script([StubBehavior::RejectToken]);
    let post = Post::new(owner.clone(), Content::text("one")).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state.name(), "published", "a refresh and one more try succeed");
    assert_eq!(stub.count("refresh"), 1);

    stub.script([StubBehavior::RejectToken, StubBehavior::RejectToken]);
    let post = Post::new(owner.clone(), Content::text("two")).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state.name(), "blocked");
    assert!(matches!(engine.account(account.id).await.unwrap().status, AccountStatus::ReauthRequired { .. }));
}

#[tokio::test]
async fn an_unknown_outcome_is_reconciled_instead_of_posted_twice() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "hal").await;
    stub.script([StubBehavior::TimeoutAfterAccept]);
    let post = Post::new(owner, Content::text("maybe posted")).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state.name(), "unknown");
    drain(&engine, 5).await;
    let t = engine.status(post.id).await.unwrap();
    assert_eq!(t[0].state.name(), "published");
    assert_eq!(stub.count("reconcile"), 1);
    assert_eq!(stub.count("publish"), 1, "no second publish");
    assert_eq!(stub.posts().len(), 1, "posted exactly once");
}

#[tokio::test]
async fn a_lookup_waits_for_a_rate_limit_the_platform_stated() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "hank").await;
    stub.script([StubBehavior::TimeoutAfterAccept]);
    let post = Post::new(owner, Content::text("maybe posted")).to(Target::new(account.id));
    let first = engine.publish_now(&post).await.unwrap();
    assert_eq!(first[0].state.name(), "unknown");
    // Meanwhile the platform said "not before `until`" for this account (a 429 elsewhere).
    let until = Utc::now() + chrono::Duration::seconds(120);
    let key = konektly_core::ratelimit::observed_key(
        &"stub".into(),
        konektly_core::ratelimit::BudgetScope::Account,
        account.id,
    );
    engine.scheduler().observe_budget(&key, 0, until).await.unwrap();
    drain(&engine, 3).await;
    let t = engine.status(post.id).await.unwrap();
    assert_eq!(stub.count("reconcile"), 0, "no lookup before the stated wait ends");
    assert_eq!((t[0].state.name(), t[0].attempts), ("unknown", first[0].attempts), "still unknown, no attempt counted");
    assert!(t[0].due_at >= until - chrono::Duration::milliseconds(1), "looked up again when the wait ends");
}

#[tokio::test]
async fn a_dead_workers_target_is_reconciled_by_the_next_worker() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "ivy").await;
    let post = Post::new(owner, Content::text("crash")).to(Target::new(account.id));
    engine.schedule(&post).await.unwrap();

    // A worker claims with a lease that runs out at once, and "dies" without completing.
    let mut req = konektly_core::ClaimRequest::new("doomed".into(), 10, Duration::ZERO);
    req.now = Utc::now();
    let claims = engine.scheduler().claim(&req).await.unwrap();
    assert_eq!(claims.len(), 1);
    drain(&engine, 5).await;
    let t = engine.status(post.id).await.unwrap();
    assert_eq!(t[0].state.name(), "published");
    assert_eq!(stub.count("reconcile"), 1, "the orphan was reconciled first");
    assert_eq!(stub.posts().len(), 1);
    // The dead worker's late write is refused.
    let late =
        engine.scheduler().complete(&claims[0].lease, &konektly_core::Completion::Blocked { reason: "x".into() }).await;
    assert!(matches!(late, Err(Error::LeaseLost(_))));
}

#[tokio::test]
async fn slow_processing_is_polled_until_published() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "jo").await;
    stub.script([StubBehavior::ProcessSlowly(3)]);
    let post = Post::new(owner, Content::text("video")).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state.name(), "processing");
    drain(&engine, 10).await;
    assert_eq!(engine.status(post.id).await.unwrap()[0].state.name(), "published");
    assert_eq!(stub.count("poll"), 3);
    assert_eq!(stub.count("publish"), 1);
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_until_the_attempt_limit() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), EngineConfig { max_attempts: 3, ..fast_config() });
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "kim").await;
    stub.script([StubBehavior::Transient]);
    let ok = Post::new(owner.clone(), Content::text("flaky")).to(Target::new(account.id));
    let t = engine.publish_now(&ok).await.unwrap();
    assert_eq!(t[0].state.name(), "scheduled");
    assert_eq!(t[0].attempts, 1);
    assert!(t[0].last_error.is_some());
    drain(&engine, 10).await;
    assert_eq!(engine.status(ok.id).await.unwrap()[0].state.name(), "published");

    stub.set_default(StubBehavior::Transient);
    let doomed = Post::new(owner, Content::text("doomed")).to(Target::new(account.id));
    engine.publish_now(&doomed).await.unwrap();
    drain(&engine, 10).await;
    let t = engine.status(doomed.id).await.unwrap();
    let TargetState::Failed { failure } = &t[0].state else { panic!("{:?}", t[0].state) };
    assert_eq!(failure.kind, konektly_core::ErrorKind::Transient);
}

#[tokio::test]
async fn a_rejection_fails_at_once_and_a_rate_limit_waits_without_counting() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "lee").await;
    stub.script([StubBehavior::Reject("duplicate".into()), StubBehavior::RateLimit(Duration::from_secs(900))]);
    let p1 = Post::new(owner.clone(), Content::text("a")).to(Target::new(account.id));
    let t = engine.publish_now(&p1).await.unwrap();
    let TargetState::Failed { failure } = &t[0].state else { panic!() };
    assert_eq!(failure.kind, konektly_core::ErrorKind::Rejected);
    assert!(failure.message.contains("duplicate"));

    let p2 = Post::new(owner, Content::text("b")).to(Target::new(account.id));
    let t = engine.publish_now(&p2).await.unwrap();
    assert_eq!(t[0].state.name(), "scheduled");
    assert_eq!(t[0].attempts, 0, "a rate limit is not a failed attempt");
    let wait = t[0].due_at - Utc::now();
    assert!(wait > chrono::Duration::seconds(800), "retried when the platform said: {wait}");

    // Moving it to now does not cut the platform's wait short; moving it past the wait does.
    let until = t[0].due_at;
    assert_eq!(engine.reschedule(p2.id, Utc::now()).await.unwrap(), 1);
    assert_eq!(engine.status(p2.id).await.unwrap()[0].due_at, until, "the 429's wait outlives a reschedule");
    assert_eq!(engine.worker().run_once().await.unwrap(), 0, "nothing is sent before the wait ends");
    let later = until + chrono::Duration::minutes(5);
    engine.reschedule(p2.id, later).await.unwrap();
    assert_eq!(engine.status(p2.id).await.unwrap()[0].due_at, later);
}

#[tokio::test]
async fn a_thread_resumes_from_its_checkpoint() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "max").await;
    stub.script([StubBehavior::FailThreadAfter(2)]);
    let mut content = Content::text("1/5");
    for i in 2..=5 {
        content = content.with_thread_item(ThreadItem { text: format!("{i}/5"), media: vec![] });
    }
    let post = Post::new(owner, content).to(Target::new(account.id));
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state.name(), "scheduled", "the thread failed half-way");
    drain(&engine, 5).await;
    let t = engine.status(post.id).await.unwrap();
    let TargetState::Published { remote } = &t[0].state else { panic!("{:?}", t[0].state) };
    assert_eq!(remote.thread_ids.len(), 4);
    let texts: Vec<String> = stub.posts().into_iter().map(|p| p.text).collect();
    assert_eq!(texts, ["1/5", "2/5", "3/5", "4/5", "5/5"], "each item posted once, in order");
}

#[tokio::test]
async fn a_declared_budget_defers_targets_instead_of_sending_them() {
    let stub = Arc::new(StubPlatform::new("stub").with_budget(DeclaredBudget::per_account(
        "init",
        3,
        Duration::from_secs(60),
    )));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "ned").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let p = Post::new(owner.clone(), Content::text(format!("p{i}"))).to(Target::new(account.id));
        ids.push(engine.schedule(&p).await.unwrap());
    }
    drain(&engine, 3).await;
    assert_eq!(stub.count("publish"), 3, "only the budget's worth was sent");
    let mut deferred = 0;
    for id in ids {
        let t = &engine.status(id).await.unwrap()[0];
        if t.state.name() == "scheduled" {
            deferred += 1;
            assert_eq!(t.attempts, 0);
            assert!(t.due_at > Utc::now() + chrono::Duration::seconds(50), "deferred to the window's end");
        }
    }
    assert_eq!(deferred, 2);
}

#[tokio::test]
async fn scheduling_is_idempotent_and_workers_publish_at_the_due_time() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "olga").await;
    let post = Post::new(owner.clone(), Content::text("later"))
        .to(Target::new(account.id))
        .at(Utc::now() + chrono::Duration::milliseconds(300))
        .with_idempotency_key("campaign-7");
    let again = Post::new(owner, Content::text("later"))
        .to(Target::new(account.id))
        .at(Utc::now() + chrono::Duration::milliseconds(300))
        .with_idempotency_key("campaign-7");
    assert_eq!(engine.schedule(&post).await.unwrap(), engine.schedule(&again).await.unwrap());
    assert_eq!(engine.status(post.id).await.unwrap().len(), 1);
    assert_eq!(engine.worker().run_once().await.unwrap(), 0, "not due yet");

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(engine.worker().run(async move {
        let _ = rx.await;
    }));
    let mut events = engine.subscribe();
    let ev = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
    assert!(matches!(ev, Event::Published { .. }), "{ev:?}");
    tx.send(()).unwrap();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.claimed, 1);
    assert_eq!(report.abandoned, 0);
    assert_eq!(stub.posts().len(), 1);
}

#[tokio::test]
async fn cancel_and_disconnect() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "pia").await;
    let post = Post::new(owner.clone(), Content::text("x"))
        .to(Target::new(account.id))
        .at(Utc::now() + chrono::Duration::hours(1));
    engine.schedule(&post).await.unwrap();
    assert_eq!(engine.cancel(post.id).await.unwrap(), konektly_core::CancelReport { cancelled: 1, requested: 0 });
    assert_eq!(engine.status(post.id).await.unwrap()[0].state.name(), "cancelled");
    assert_eq!(engine.reschedule(post.id, Utc::now() + chrono::Duration::hours(2)).await.unwrap(), 1);

    engine.disconnect(account.id).await.unwrap();
    assert_eq!(stub.count("revoke"), 1);
    assert!(engine.account(account.id).await.is_err(), "the account is erased");
    assert_eq!(engine.status(post.id).await.unwrap()[0].state.name(), "cancelled", "its targets were cancelled");
}

#[tokio::test]
async fn memory_stores_pass_the_conformance_suites() {
    konektly_core::testing::token_store_conformance(&MemoryTokenStore::new()).await;
    konektly_core::testing::scheduler_conformance(&MemoryScheduler::new()).await;
}

#[tokio::test]
async fn the_stub_platform_passes_the_platform_conformance_suite() {
    let stub = StubPlatform::new("stub");
    let engine = engine_with(Arc::new(StubPlatform::new("stub")), fast_config());
    let account = connect(&engine, &OwnerId::new("o"), "q").await;
    let mut case = konektly_core::testing::PlatformCase::new(account, Content::text("conformance"));
    case.secrets = vec!["nothing-secret-here".into()];
    konektly_core::testing::platform_conformance(&stub, case).await;
}

#[tokio::test]
async fn a_platform_that_fetches_by_url_needs_a_media_host_only_for_local_media() {
    let base = StubPlatform::new("stub");
    let mut caps = konektly_core::Platform::capabilities(&base).clone();
    caps.needs_media_host = true;
    let stub = Arc::new(base.with_capabilities(caps));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "rue").await;
    let public =
        konektly_core::Media::from_url("https://cdn.example/cat.jpg".parse().unwrap(), "image/jpeg".parse().unwrap());
    let ok = Post::new(owner.clone(), Content::text("by URL").with_media(public)).to(Target::new(account.id));
    assert!(engine.validate(&ok).await.unwrap().is_empty(), "public URLs need no host");
    let local = konektly_core::Media::from_bytes(&b"\xff\xd8\xff\xe0\0\x10JFIF\0"[..]);
    let bad = Post::new(owner, Content::text("local").with_media(local)).to(Target::new(account.id));
    let v = engine.validate(&bad).await.unwrap();
    assert!(v.iter().any(|v| v.code == "media_host_required"), "{v:?}");
}

#[tokio::test]
async fn upload_progress_reaches_subscribers() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "sam").await;
    let mut events = engine.subscribe();
    let image =
        konektly_core::Media::from_bytes(&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0"[..]);
    let size = image.size.unwrap();
    let post = Post::new(owner, Content::text("with media").with_media(image)).to(Target::new(account.id));
    engine.publish_now(&post).await.unwrap();
    let mut progress = None;
    while let Ok(ev) = events.try_recv() {
        if let Event::UploadProgress { sent, total, .. } = ev {
            progress = Some((sent, total));
        }
    }
    assert_eq!(progress, Some((size, size)), "the upload's progress was announced");
}

/// A memory scheduler that counts how outcomes reach it, and takes a little while to write a
/// batch (as a database would), so that outcomes finishing meanwhile can queue up.
#[derive(Debug, Default)]
struct CountingScheduler {
    inner: MemoryScheduler,
    singles: std::sync::atomic::AtomicUsize,
    batches: std::sync::Mutex<Vec<usize>>,
    /// Sizes of the lease-write batches.
    lease_batches: std::sync::Mutex<Vec<usize>>,
    /// Heartbeats of this worker fail (its database connection is gone).
    cut_off: std::sync::Mutex<Option<String>>,
}

#[konektly_core::async_trait]
impl Scheduler for CountingScheduler {
    async fn enqueue(&self, targets: &[TargetRecord]) -> konektly_core::Result<usize> {
        self.inner.enqueue(targets).await
    }
    async fn get(&self, id: TargetId) -> konektly_core::Result<Option<TargetRecord>> {
        self.inner.get(id).await
    }
    async fn list(&self, filter: &TargetFilter) -> konektly_core::Result<Vec<TargetRecord>> {
        self.inner.list(filter).await
    }
    async fn cancel(&self, id: TargetId) -> konektly_core::Result<TargetRecord> {
        self.inner.cancel(id).await
    }
    async fn reschedule(&self, id: TargetId, at: chrono::DateTime<Utc>) -> konektly_core::Result<TargetRecord> {
        self.inner.reschedule(id, at).await
    }
    async fn claim(&self, request: &ClaimRequest) -> konektly_core::Result<Vec<Claimed>> {
        self.inner.claim(request).await
    }
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> konektly_core::Result<Lease> {
        if self.cut_off.lock().unwrap().as_deref() == Some(lease.owner.as_str()) {
            return Err(Error::Storage { message: "connection lost".into(), source: None });
        }
        self.inner.heartbeat(lease, extend).await
    }
    async fn save_checkpoint(&self, lease: &Lease, checkpoint: &Checkpoint) -> konektly_core::Result<()> {
        self.inner.save_checkpoint(lease, checkpoint).await
    }
    async fn write_leases(
        &self,
        writes: &[konektly_core::LeaseWrite],
    ) -> konektly_core::Result<Vec<konektly_core::Result<Lease>>> {
        self.lease_batches.lock().unwrap().push(writes.len());
        let mut out = Vec::new();
        for w in writes {
            out.push(match (&w.checkpoint, w.extend) {
                (Some(c), Some(e)) => self.save_checkpoint_renewing(&w.lease, c, e).await,
                (Some(c), None) => self.save_checkpoint(&w.lease, c).await.map(|()| w.lease.clone()),
                (None, Some(e)) => self.heartbeat(&w.lease, e).await,
                (None, None) => Ok(w.lease.clone()),
            });
        }
        // A slow store: writes arriving meanwhile wait for the next batch.
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(out)
    }
    async fn complete(&self, lease: &Lease, completion: &Completion) -> konektly_core::Result<TargetRecord> {
        self.singles.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.complete(lease, completion).await
    }
    async fn complete_many(
        &self,
        items: &[(Lease, Completion)],
    ) -> konektly_core::Result<Vec<konektly_core::Result<()>>> {
        self.batches.lock().unwrap().push(items.len());
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.inner.complete_many(items).await
    }
    async fn unblock_account(&self, account: AccountId, at: chrono::DateTime<Utc>) -> konektly_core::Result<usize> {
        self.inner.unblock_account(account, at).await
    }
    async fn next_due_at(&self) -> konektly_core::Result<Option<chrono::DateTime<Utc>>> {
        self.inner.next_due_at().await
    }
    async fn delete(&self, filter: &TargetFilter) -> konektly_core::Result<usize> {
        self.inner.delete(filter).await
    }
    async fn acquire_budget(
        &self,
        key: &konektly_core::ratelimit::BudgetKey,
        limit: u32,
        window: Duration,
        cost: u32,
        now: chrono::DateTime<Utc>,
    ) -> konektly_core::Result<Option<chrono::DateTime<Utc>>> {
        self.inner.acquire_budget(key, limit, window, cost, now).await
    }
    async fn observe_budget(
        &self,
        key: &konektly_core::ratelimit::BudgetKey,
        remaining: u32,
        reset_at: chrono::DateTime<Utc>,
    ) -> konektly_core::Result<()> {
        self.inner.observe_budget(key, remaining, reset_at).await
    }
}

/// Publishes 64 targets due at once with a given `completion_batch`; returns the scheduler.
async fn publish_64(completion_batch: usize) -> Arc<CountingScheduler> {
    let stub = Arc::new(StubPlatform::new("stub"));
    let scheduler = Arc::new(CountingScheduler::default());
    let engine = Konektly::builder()
        .platform(stub.clone())
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(scheduler.clone())
        .config(EngineConfig {
            claim_batch: 64,
            worker_concurrency: 64,
            per_platform_concurrency: 64,
            per_account_concurrency: 64,
            completion_batch,
            ..fast_config()
        })
        .build()
        .unwrap();
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "olga").await;
    let mut events = engine.subscribe();
    for i in 0..64 {
        engine
            .schedule(&Post::new(owner.clone(), Content::text(format!("post {i}"))).to(Target::new(account.id)))
            .await
            .unwrap();
    }
    assert_eq!(engine.worker().run_once().await.unwrap(), 64);
    assert_eq!(stub.posts().len(), 64, "each target published once");
    let published = scheduler.list(&TargetFilter::default().in_states(&["published"])).await.unwrap();
    assert_eq!(published.len(), 64, "each outcome recorded");
    let mut events_seen = 0;
    while let Ok(ev) = events.try_recv() {
        events_seen += usize::from(matches!(ev, Event::Published { .. }));
    }
    assert_eq!(events_seen, 64, "one Published event per target");
    scheduler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_that_finish_together_are_recorded_together() {
    let s = publish_64(128).await;
    let batches = s.batches.lock().unwrap().clone();
    assert_eq!(s.singles.load(std::sync::atomic::Ordering::SeqCst), 0, "no outcome went alone");
    assert_eq!(batches.iter().sum::<usize>(), 64, "every outcome in exactly one batch: {batches:?}");
    assert!(batches.len() < 64, "outcomes finishing while a batch is written share the next one: {batches:?}");
    // Each target saves a checkpoint before its create and one after: 128 lease writes, which
    // the concurrent targets share.
    let leases = s.lease_batches.lock().unwrap().clone();
    assert_eq!(leases.iter().sum::<usize>(), 128, "every lease write in exactly one batch: {leases:?}");
    assert!(leases.len() < 64, "concurrent lease writes share statements: {leases:?}");

    let s = publish_64(8).await;
    let batches = s.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), 64);
    assert!(batches.iter().all(|&n| n <= 8), "no batch above completion_batch: {batches:?}");

    let s = publish_64(1).await;
    assert!(s.batches.lock().unwrap().is_empty(), "completion_batch 1 records each on its own");
    assert_eq!(s.singles.load(std::sync::atomic::Ordering::SeqCst), 64);
}

// ---- exactly once under faults (issue 12) ------------------------------------------------------

/// Waits (bounded) until `cond` holds, checking every few milliseconds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

fn engine_on(
    stub: Arc<StubPlatform>,
    tokens: Arc<MemoryTokenStore>,
    sched: Arc<dyn Scheduler>,
    cfg: EngineConfig,
) -> Konektly {
    Konektly::builder().platform(stub).token_store(tokens).scheduler(sched).config(cfg).build().unwrap()
}

#[tokio::test]
async fn a_worker_whose_lease_runs_out_mid_create_abandons_it_and_the_post_lands_once() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let tokens = Arc::new(MemoryTokenStore::new());
    let scheduler = Arc::new(CountingScheduler::default());
    let cfg = EngineConfig {
        lease: Duration::from_millis(400),
        heartbeat: Duration::from_millis(100),
        create_call_limit: Duration::from_millis(200),
        create_margin: Duration::from_millis(100),
        ..fast_config()
    };
    let stalled = engine_on(stub.clone(), tokens.clone(), scheduler.clone(), cfg.clone());
    let healthy = engine_on(stub.clone(), tokens, scheduler.clone(), cfg);
    let owner = OwnerId::new("o1");
    let account = connect(&stalled, &owner, "pia").await;
    let post = Post::new(owner, Content::text("once")).to(Target::new(account.id));
    stalled.schedule(&post).await.unwrap();

    // The first create takes 3 s; meanwhile the stalled worker's database connection is gone.
    stub.script([StubBehavior::SlowCreate(Duration::from_secs(3))]);
    let claims = scheduler
        .claim(&ClaimRequest::new(konektly_core::WorkerId::new("stalled"), 1, Duration::from_millis(400)))
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    let started = std::time::Instant::now();
    let first = tokio::spawn({
        let e = stalled.clone();
        let c = claims.into_iter().next().unwrap();
        async move { e.process(c).await }
    });
    until("the create is under way", || stub.count("publish") == 1).await;
    *scheduler.cut_off.lock().unwrap() = Some("stalled".into());

    // Another worker takes over once the lease has run out: it reconciles, then publishes.
    let mut published = false;
    for _ in 0..400 {
        healthy.worker().run_once().await.unwrap();
        if healthy.status(post.id).await.unwrap()[0].state.name() == "published" {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(published, "the healthy worker published the post");
    first.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "the stalled worker dropped its create when its lease ran out");
    assert_eq!(stub.posts().len(), 1, "exactly one post at the platform: {:?}", stub.posts());
    assert_eq!(stub.count("reconcile"), 1, "the new holder reconciled before sending anything");
}

#[tokio::test]
async fn a_cancel_during_publishing_reports_the_post_published_with_its_id() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "pia").await;
    let post = Post::new(owner, Content::text("too late to stop")).to(Target::new(account.id));
    stub.script([StubBehavior::SlowCreate(Duration::from_millis(300))]);
    let publishing = tokio::spawn({
        let e = engine.clone();
        let p = post.clone();
        async move { e.publish_now(&p).await }
    });
    until("the create is under way", || stub.count("publish") == 1).await;
    let report = engine.cancel(post.id).await.unwrap();
    assert_eq!(
        report,
        konektly_core::CancelReport { cancelled: 0, requested: 1 },
        "not reported cancelled while in flight"
    );
    let targets = publishing.await.unwrap().unwrap();
    let t = &targets[0];
    assert!(t.published_despite_cancel(), "published, cancel requested: {:?}", t.state);
    match &t.state {
        TargetState::Published { remote } => assert_eq!(remote.id, stub.posts()[0].id, "with the platform's id"),
        other => panic!("expected published, got {other:?}"),
    }
    assert_eq!(engine.reschedule(post.id, Utc::now()).await.unwrap(), 0, "a published target is not rescheduled");
    drain(&engine, 5).await;
    assert_eq!(stub.posts().len(), 1, "published exactly once");
}

#[tokio::test]
async fn a_cancel_of_an_unknown_outcome_ends_cancelled_when_nothing_landed() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine =
        engine_with(stub.clone(), EngineConfig { reconcile_delay: Duration::from_secs(3600), ..fast_config() });
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "pia").await;
    let post = Post::new(owner, Content::text("lost")).to(Target::new(account.id));
    stub.script([StubBehavior::LoseAnswer]);
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state, TargetState::Unknown);
    let report = engine.cancel(post.id).await.unwrap();
    assert_eq!(report.requested, 1);
    assert_eq!(
        engine.status(post.id).await.unwrap()[0].state,
        TargetState::Unknown,
        "not cancelled before the outcome is known"
    );
    // Reconcile now: nothing landed, so the cancel takes effect without a second create.
    engine.scheduler().reschedule(t[0].id, Utc::now()).await.unwrap_err();
    let mut req = ClaimRequest::new(konektly_core::WorkerId::new("w"), 1, Duration::from_secs(60));
    req.now = Utc::now() + chrono::Duration::hours(2);
    let claims = engine.scheduler().claim(&req).await.unwrap();
    assert_eq!(claims.len(), 1);
    engine.process(claims.into_iter().next().unwrap()).await;
    let r = &engine.status(post.id).await.unwrap()[0];
    assert_eq!(r.state, TargetState::Cancelled, "{:?}", r.state);
    assert_eq!(stub.count("publish"), 1, "no second create");
    assert!(stub.posts().is_empty());
}

#[tokio::test]
async fn an_unknown_outcome_whose_lookups_keep_failing_ends_as_outcome_unknown() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), EngineConfig { max_attempts: 3, ..fast_config() });
    let mut events = engine.subscribe();
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "pia").await;
    let post = Post::new(owner, Content::text("lost")).to(Target::new(account.id));
    stub.script([StubBehavior::LoseAnswer]);
    stub.fail_lookups(true);
    engine.publish_now(&post).await.unwrap();
    drain(&engine, 50).await;
    let r = &engine.status(post.id).await.unwrap()[0];
    match &r.state {
        TargetState::Failed { failure } => {
            assert_eq!(failure.kind, konektly_core::ErrorKind::OutcomeUnknown);
            assert!(failure.message.contains("check the account"), "{}", failure.message);
        }
        other => panic!("expected failed as outcome_unknown, got {other:?} after {} attempts", r.attempts),
    }
    assert!(
        r.last_error.as_ref().is_some_and(|f| f.message.contains("3 attempts")),
        "every failed lookup counted: {:?}",
        r.last_error
    );
    assert_eq!(stub.count("publish"), 1, "nothing was sent again blindly");
    let mut told = false;
    while let Ok(ev) = events.try_recv() {
        if let Event::OutcomeUnknown { account: a, .. } = ev {
            assert_eq!(a, account.id);
            told = true;
        }
    }
    assert!(told, "the operator is told to check the account");
}

#[tokio::test]
async fn a_transient_error_after_the_create_was_sent_is_reconciled_not_resent() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "pia").await;
    let post = Post::new(owner, Content::text("503 after commit")).to(Target::new(account.id));
    stub.script([StubBehavior::TransientAfterCreate]);
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state, TargetState::Unknown, "a 503 after the create is an unknown outcome");
    drain(&engine, 10).await;
    assert_eq!(engine.status(post.id).await.unwrap()[0].state.name(), "published");
    assert_eq!(stub.posts().len(), 1, "exactly one post");
    assert_eq!(stub.count("publish"), 1, "no second create");
    assert_eq!(stub.count("reconcile"), 1);
}

#[tokio::test]
async fn a_dead_grant_from_any_adapter_marks_the_account_and_raises_the_event() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let mut events = engine.subscribe();
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "pia").await;
    let post = Post::new(owner, Content::text("x")).to(Target::new(account.id));
    stub.script([StubBehavior::DeadGrant]);
    let t = engine.publish_now(&post).await.unwrap();
    assert_eq!(t[0].state.name(), "blocked");
    assert!(
        matches!(engine.account(account.id).await.unwrap().status, AccountStatus::ReauthRequired { .. }),
        "the account is marked"
    );
    let mut raised = 0;
    while let Ok(ev) = events.try_recv() {
        if matches!(ev, Event::ReauthRequired { account: a, .. } if a == account.id) {
            raised += 1;
        }
    }
    assert_eq!(raised, 1, "the event is raised once");
}

#[tokio::test]
async fn a_reconnect_with_another_login_is_refused_and_parallel_connects_make_one_account() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub.clone(), fast_config());
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "pia").await;
    let cb: url::Url = "https://app.example/callback".parse().unwrap();
    let start = engine.reconnect(account.id, &cb).await.unwrap();
    let err = engine.complete_connect(&start.state, "bob").await.unwrap_err();
    assert!(matches!(err, Error::Authorization(_)), "{err:?}");
    assert!(err.to_string().contains("@bob") && err.to_string().contains("@pia"), "{err}");
    assert_eq!(engine.accounts(&owner).await.unwrap().len(), 1, "the other login was not stored");

    let mut starts = Vec::new();
    for _ in 0..8 {
        starts.push(engine.connect(&owner, &"stub".into(), &cb).await.unwrap());
    }
    let joins: Vec<_> = starts
        .into_iter()
        .map(|s| {
            let e = engine.clone();
            tokio::spawn(async move { e.complete_connect(&s.state, "sam").await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for j in joins {
        ids.insert(j.await.unwrap().unwrap()[0].id);
    }
    assert_eq!(ids.len(), 1, "eight parallel connects of one login are one account");
    assert_eq!(engine.accounts(&owner).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_refresh_call_ends_before_its_claim_does() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"access_token": "new", "refresh_token": "r2", "expires_in": 3600}))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let stub =
        Arc::new(StubPlatform::new("stub").with_token_endpoint(format!("{}/token", server.uri()).parse().unwrap()));
    let claim = Duration::from_millis(600);
    let engine = engine_with(stub.clone(), EngineConfig { refresh_claim: claim, ..fast_config() });
    let owner = OwnerId::new("o1");
    let account = connect(&engine, &owner, "pia").await;
    let started = std::time::Instant::now();
    let r = engine.tokens().force_refresh(&account).await;
    assert!(started.elapsed() < claim, "the call was dropped before the claim ran out ({:?})", started.elapsed());
    let fresh = r.expect("the current token is still valid, so the account is served");
    assert_eq!(fresh.tokens.refresh_token, account.tokens.refresh_token, "the stored refresh token is untouched");
}

#[tokio::test]
async fn one_owner_cannot_see_or_touch_another_owners_posts_and_accounts() {
    konektly_core::testing::owner_isolation_conformance(
        Arc::new(MemoryTokenStore::new()),
        Arc::new(MemoryScheduler::new()),
    )
    .await;
}

#[tokio::test]
async fn a_refused_or_lost_code_exchange_is_an_authorization_error_on_every_adapter() {
    let stub = Arc::new(StubPlatform::new("stub"));
    let engine = engine_with(stub, fast_config());
    let owner = OwnerId::new("o-code");
    for code in ["replayed", "lost"] {
        let start =
            engine.connect(&owner, &"stub".into(), &"https://app.example/callback".parse().unwrap()).await.unwrap();
        let e = engine.complete_connect(&start.state, code).await.unwrap_err();
        assert!(matches!(e, Error::Authorization(_)), "{code}: {e:?}");
        assert!(e.to_string().contains("connect again"), "{e}");
    }
    assert!(engine.accounts(&owner).await.unwrap().is_empty());
}
