//! Through konektly's engine: the declared budgets space a burst of posts, a refused token is
//! refreshed once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use konektly_core::{
    AccountStatus, Content, EngineConfig, Event, Konektly, MemoryScheduler, MemoryTokenStore, Platform, Post, Target,
    TargetState, TokenStore,
};
use konektly_tiktok::{PrivacyLevel, RateLimits, TikTokOptions};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

mod common;
use common::*;

/// Answers like TikTok: 429 `rate_limit_exceeded` when more than `limit` calls arrive within a
/// sliding `window`; otherwise the body `ok(n)` for the n-th accepted call.
struct SlidingLimit {
    limit: usize,
    window: Duration,
    seen: Mutex<VecDeque<Instant>>,
    accepted: AtomicU64,
    refused: Arc<AtomicU64>,
    ok: Box<dyn Fn(u64) -> Value + Send + Sync>,
}

impl SlidingLimit {
    fn new(
        limit: usize,
        window: Duration,
        refused: Arc<AtomicU64>,
        ok: impl Fn(u64) -> Value + Send + Sync + 'static,
    ) -> Self {
        Self {
            limit,
            window,
            seen: Mutex::new(VecDeque::new()),
            accepted: AtomicU64::new(0),
            refused,
            ok: Box::new(ok),
        }
    }
}

impl Respond for SlidingLimit {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap();
        while seen.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            seen.pop_front();
        }
        if seen.len() >= self.limit {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(429).set_body_json(fixture_with(
                "error.json",
                &[("code", "rate_limit_exceeded"), ("message", "slow down")],
            ));
        }
        seen.push_back(now);
        let n = self.accepted.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_json((self.ok)(n))
    }
}

#[test]
fn the_documented_limits_are_declared_as_budgets() {
    let server_uri = "http://127.0.0.1:9";
    let p = konektly_tiktok::TikTokBuilder::new()
        .with_client_key("k")
        .with_client_secret("s")
        .with_base_url(server_uri)
        .build()
        .unwrap();
    let b = &p.capabilities().budgets;
    let find = |n: &str| b.iter().find(|x| x.name == n).unwrap_or_else(|| panic!("no {n} budget in {b:?}"));
    // 6, 20 and 30 a minute, as even spacing (one per 10 s, 3 s, 2 s) plus a 10% margin.
    let init = find("post_init");
    assert_eq!((init.limit, init.window, init.per_publish, init.per_poll), (1, Duration::from_secs(11), 1, 0));
    let ci = find("creator_info");
    assert_eq!((ci.limit, ci.window, ci.per_publish), (1, Duration::from_millis(3300), 1));
    let st = find("status_fetch");
    assert_eq!((st.limit, st.window, st.per_publish, st.per_poll), (1, Duration::from_millis(2200), 0, 1));
    assert!(b.iter().all(|x| x.scope == konektly_core::ratelimit::BudgetScope::Account), "limits are per token");
}

/// 20 posts for one account, due at once, against a TikTok that answers 429 whenever more than
/// 6 inits (20 creator-info queries, 30 status fetches) arrive within the window. The window is
/// scaled from a minute to 4 s so the test runs in seconds; the counts are TikTok's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_twenty_posts_for_one_account_is_spaced_not_refused() {
    let server = MockServer::start().await;
    let window = Duration::from_secs(4);
    let refused = Arc::new(AtomicU64::new(0));
    let creator: Value = serde_json::from_str(&fixture("creator_info.json")).unwrap();
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/creator_info/query/"))
        .respond_with(SlidingLimit::new(20, window, refused.clone(), move |_| creator.clone()))
        .mount(&server)
        .await;
    let uri = server.uri();
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(SlidingLimit::new(6, window, refused.clone(), move |n| {
            json!({
                "data": { "publish_id": format!("v_pub_file~{n}"), "upload_url": format!("{uri}/upload/{n}") },
                "error": { "code": "ok", "message": "", "log_id": format!("log{n}") }
            })
        }))
        .expect(20)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex("^/upload/[0-9]+$"))
        .and(header("content-range", "bytes 0-1023/1024"))
        .respond_with(ResponseTemplate::new(201))
        .expect(20)
        .mount(&server)
        .await;
    let done: Value = serde_json::from_str(&fixture("status_complete_private.json")).unwrap();
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/status/fetch/"))
        .respond_with(SlidingLimit::new(30, window, refused.clone(), move |_| done.clone()))
        .mount(&server)
        .await;

    let platform = builder(&server)
        .with_rate_limits(RateLimits { window, margin: 0.25, ..RateLimits::default() })
        .build()
        .unwrap();
    let store = Arc::new(MemoryTokenStore::new());
    let engine = Konektly::builder()
        .platform(Arc::new(platform))
        .token_store(store.clone())
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(EngineConfig { idle_poll: Duration::from_millis(50), ..EngineConfig::default() })
        .build()
        .unwrap();
    let a = account();
    store.insert_account(&a).await.unwrap();
    let opts = TikTokOptions { privacy_level: Some(PrivacyLevel::SelfOnly), ..Default::default() };
    let mut posts = Vec::new();
    for i in 0..20 {
        let post = Post::new(a.owner.clone(), Content::text(format!("clip {i}")).with_media(video(1024)))
            .to(Target::new(a.id).with_options(&opts).unwrap());
        posts.push(engine.schedule(&post).await.unwrap());
    }

    let mut events = engine.subscribe();
    let all_ended = async move {
        let mut ended = 0;
        while ended < 20 {
            match events.recv().await {
                Ok(Event::Published { .. } | Event::Failed { .. }) => ended += 1,
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    };
    let started = Instant::now();
    let worker = engine.worker().run(all_ended);
    tokio::time::timeout(Duration::from_secs(90), worker).await.expect("the burst finishes").unwrap();
    let took = started.elapsed();

    assert_eq!(refused.load(Ordering::SeqCst), 0, "the engine spaced the calls: TikTok never answered 429");
    for id in posts {
        let t = &engine.status(id).await.unwrap()[0];
        assert!(matches!(t.state, TargetState::Published { .. }), "{:?}", t.state);
        assert_eq!(t.attempts, 0, "budget deferrals are not failed attempts");
    }
    // 20 inits at 6 per 4 s cannot take less than 3 full windows.
    assert!(took >= Duration::from_secs(12), "took {took:?}");
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_then_the_account_must_reconnect() {
    let server = MockServer::start().await;
    let invalid = fixture_with("error.json", &[("code", "access_token_invalid"), ("message", "expired")]);
    for token in [TOKEN, "act.rotated0000000000000000000000000000000000000000000000000000"] {
        Mock::given(method("POST"))
            .and(path("/v2/post/publish/creator_info/query/"))
            .and(header("authorization", format!("Bearer {token}").as_str()))
            .respond_with(ResponseTemplate::new(401).set_body_json(invalid.clone()))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v2/oauth/token/"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("token_refreshed.json")))
        .expect(1)
        .mount(&server)
        .await;
    let store = Arc::new(MemoryTokenStore::new());
    let engine = Konektly::builder()
        .platform(Arc::new(platform(&server)))
        .token_store(store.clone())
        .scheduler(Arc::new(MemoryScheduler::new()))
        .build()
        .unwrap();
    let a = account();
    store.insert_account(&a).await.unwrap();
    let post = Post::new(a.owner.clone(), Content::text("x").with_media(video(10)))
        .to(Target::new(a.id).with_options(&public()).unwrap());
    let targets = engine.publish_now(&post).await.unwrap();
    assert!(matches!(targets[0].state, TargetState::Blocked { .. }), "{:?}", targets[0].state);
    let stored = store.get_account(a.id).await.unwrap().unwrap();
    assert!(matches!(stored.status, AccountStatus::ReauthRequired { .. }), "{:?}", stored.status);
    assert_eq!(
        stored.tokens.refresh_token.unwrap().expose(),
        "rft.rotated00000000000000000000000000000000000000000000000000",
        "the rotated refresh token was kept"
    );
}

#[tokio::test]
async fn local_photos_without_a_media_host_are_refused_offline_before_any_call() {
    let server = MockServer::start().await;
    // Nothing may be called: not even the rate-limited creator_info.
    Mock::given(path_regex(".*")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;
    let store = Arc::new(MemoryTokenStore::new());
    let engine = Konektly::builder()
        .platform(Arc::new(platform(&server)))
        .token_store(store.clone())
        .scheduler(Arc::new(MemoryScheduler::new()))
        .build()
        .unwrap();
    let a = account();
    store.insert_account(&a).await.unwrap();
    let local_photo = || {
        let mut m = konektly_core::Media::from_bytes(&b"\xff\xd8\xff\xe0"[..]);
        m.probe_error = None;
        m.mime = "image/jpeg".parse().unwrap();
        m
    };
    let post = |content: Content, o: &TikTokOptions| {
        Post::new(a.owner.clone(), content).to(Target::new(a.id).with_options(o).unwrap())
    };
    let photos = post(Content::text("bay").with_media(local_photo()).with_media(local_photo()), &public());
    let v = engine.validate(&photos).await.unwrap();
    assert_eq!(v.iter().map(|v| v.code.as_str()).collect::<Vec<_>>(), vec!["media_host_required"], "{v:?}");
    let err = engine.publish_now(&photos).await.unwrap_err();
    assert!(matches!(&err, konektly_core::Error::InvalidPost(v) if v[0].code == "media_host_required"), "{err:?}");
    // A local video pulled from a URL needs one too; uploaded, it does not.
    let pulled = TikTokOptions { video_source: konektly_tiktok::VideoSource::PullFromUrl, ..public() };
    let v = engine.validate(&post(Content::text("v").with_media(video(10)), &pulled)).await.unwrap();
    assert_eq!(v.iter().map(|v| v.code.as_str()).collect::<Vec<_>>(), vec!["media_host_required"]);
    assert!(engine.validate(&post(Content::text("v").with_media(video(10)), &public())).await.unwrap().is_empty());
    // Photos already at public URLs need no host.
    let at_urls = post(Content::text("bay").with_media(photo("https://media.example.com/a.jpg")), &public());
    assert!(engine.validate(&at_urls).await.unwrap().is_empty());
}
