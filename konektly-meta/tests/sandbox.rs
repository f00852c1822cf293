//! End to end: the engine, both Meta platforms, and the konektly sandbox (konektly-testkit):
//! connect with Facebook Login and Instagram Login through the real redirects, publish every
//! kind of post, and check what the sandbox received.

use std::sync::Arc;
use std::time::Duration;

use konektly_core::{
    Account, Content, Konektly, Media, MemoryScheduler, MemoryTokenStore, OwnerId, Post, Target, TargetRecord,
    TargetState,
};
use konektly_meta::{FacebookOptions, FacebookPostKind, InstagramMediaKind, InstagramOptions, MetaBuilder};
use konektly_testkit::{Sandbox, SandboxConfig};
use url::Url;

async fn engine(sandbox: &Sandbox) -> Konektly {
    let fb = sandbox.credentials("facebook");
    let ig = sandbox.credentials("instagram");
    let meta = MetaBuilder::new()
        .with_app(fb.client_id, fb.client_secret)
        .with_instagram_app(ig.client_id, ig.client_secret)
        .with_base_url(sandbox.base_url("facebook").to_string())
        .with_instagram_base_url(sandbox.base_url("instagram").to_string())
        .with_container_poll_interval(Duration::from_millis(50))
        .with_container_poll_deadline(Duration::from_secs(10))
        .with_video_poll_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut b = Konektly::builder()
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .media_host(sandbox.media_host());
    for p in meta.platforms() {
        b = b.platform(p);
    }
    b.build().unwrap()
}

/// Follows the authorize page's redirect and completes the connection.
async fn connect(engine: &Konektly, owner: &OwnerId, platform: &str) -> Vec<Account> {
    let redirect: Url = "https://app.example/callback".parse().unwrap();
    let start = engine.connect(owner, &platform.into(), &redirect).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(start.url.clone()).send().await.unwrap();
    let location = resp.headers().get("location").unwrap_or_else(|| panic!("no redirect from {}", start.url));
    let back = Url::parse(location.to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q["state"], start.state);
    engine.complete_connect(&start.state, &q["code"]).await.unwrap()
}

async fn until_done(engine: &Konektly, post: &Post) -> Vec<TargetRecord> {
    let mut records = engine.publish_now(post).await.unwrap();
    let worker = engine.worker();
    for _ in 0..200 {
        if records.iter().all(|r| r.state.is_final()) {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        worker.run_once().await.unwrap();
        records = engine.status(post.id).await.unwrap();
    }
    panic!("not done: {records:?}");
}

fn published(r: &TargetRecord) -> &konektly_core::RemotePost {
    match &r.state {
        TargetState::Published { remote } => remote,
        other => panic!("{other:?}"),
    }
}

fn jpeg(w: u32, h: u32) -> Media {
    // A real JPEG (probing refuses a broken one), its dimensions declared.
    konektly_testkit::conformance::sample_jpeg(w, h)
}

fn mp4(n: usize, secs: u64) -> Media {
    konektly_testkit::conformance::sample_mp4(n, secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facebook_login_then_every_kind_of_page_and_instagram_post() {
    let config = SandboxConfig { processing_delay: Duration::from_millis(200), ..SandboxConfig::default() };
    let sandbox = Sandbox::start_with(config).await.unwrap();
    let engine = engine(&sandbox).await;
    let owner = OwnerId::new("owner-e2e");
    let accounts = connect(&engine, &owner, "facebook").await;
    let page = accounts.iter().find(|a| a.metadata.get("kind").and_then(|k| k.as_str()) == Some("page")).unwrap();
    let user = accounts.iter().find(|a| a.metadata.get("kind").and_then(|k| k.as_str()) == Some("user")).unwrap();
    let ig = accounts.iter().find(|a| a.platform.as_str() == "instagram").unwrap();
    assert_eq!(page.parent, Some(user.id));
    assert_eq!(ig.parent, Some(user.id));

    let fb_posts = [
        (
            Content::text("Hello from konektly").with_link("https://example.com/".parse().unwrap()),
            FacebookOptions::default(),
        ),
        (Content::text("One photo").with_media(jpeg(800, 600)), FacebookOptions::default()),
        (Content::text("Two photos").with_media(jpeg(800, 600)).with_media(jpeg(600, 800)), FacebookOptions::default()),
        (Content::text("A video").with_media(mp4(4 * 1024 * 1024 + 1000, 30)), FacebookOptions::default()),
        (
            Content::text("A reel").with_media(mp4(200_000, 20)),
            FacebookOptions { kind: FacebookPostKind::Reel, ..Default::default() },
        ),
        (
            Content::text("Later"),
            FacebookOptions { schedule_at: Some(chrono::Utc::now() + chrono::Duration::days(1)), ..Default::default() },
        ),
    ];
    for (content, opts) in fb_posts {
        let post = Post::new(owner.clone(), content.clone()).to(Target::new(page.id).with_options(&opts).unwrap());
        let records = until_done(&engine, &post).await;
        let remote = published(&records[0]);
        assert!(!remote.id.is_empty(), "{}", content.text);
    }
    let on_page = sandbox.posts_of("facebook", &page.remote_id);
    let texts: Vec<&str> = on_page.iter().map(|p| p.text.as_str()).collect();
    assert!(texts.contains(&"Two photos") && texts.contains(&"A reel"), "{texts:?}");
    let two = on_page.iter().find(|p| p.text == "Two photos").unwrap();
    assert_eq!(two.media.len(), 2);
    let video = on_page.iter().find(|p| p.text == "A video").unwrap();
    assert_eq!(video.media[0].size, 4 * 1024 * 1024 + 1000, "every chunk arrived, in order");
    let later = on_page.iter().find(|p| p.text == "Later").unwrap();
    assert_eq!(later.status, "scheduled");

    let ig_posts = [
        (Content::text("IG image #konektly").with_media(jpeg(1080, 1080)), InstagramOptions::default()),
        (
            Content::text("IG carousel").with_media(jpeg(1080, 1080)).with_media(mp4(50_000, 10)),
            InstagramOptions::default(),
        ),
        (Content::text("IG reel").with_media(mp4(80_000, 12)), InstagramOptions::default()),
        (
            Content::text("").with_media(jpeg(1080, 1920)),
            InstagramOptions { kind: Some(InstagramMediaKind::Story), ..Default::default() },
        ),
    ];
    for (content, opts) in ig_posts {
        let post = Post::new(owner.clone(), content.clone()).to(Target::new(ig.id).with_options(&opts).unwrap());
        let records = until_done(&engine, &post).await;
        published(&records[0]);
    }
    let on_ig = sandbox.posts_of("instagram", &ig.remote_id);
    let kinds: Vec<&str> = on_ig.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(on_ig.len(), 4, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instagram_login_connects_and_publishes() {
    // Tokens of 3 days: within the week ahead that Instagram tokens are refreshed.
    let sandbox = Sandbox::start_with(SandboxConfig {
        processing_delay: Duration::from_millis(200),
        access_token_ttl: Some(Duration::from_secs(3 * 86_400)),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let engine = engine(&sandbox).await;
    let owner = OwnerId::new("owner-ig");
    let accounts = connect(&engine, &owner, "instagram").await;
    assert_eq!(accounts.len(), 1);
    let ig = &accounts[0];
    assert!(ig.tokens.expires_at.is_some());
    // The engine's window is minutes, but the account asks for a refresh a week ahead.
    let fresh = engine.tokens().fresh_account(ig.id).await.unwrap();
    assert_ne!(fresh.tokens.access_token, ig.tokens.access_token, "ig_refresh_token gave a new token");
    assert!(fresh.tokens.expires_at.unwrap() > ig.tokens.expires_at.unwrap());
    let post =
        Post::new(owner, Content::text("Via Instagram Login").with_media(jpeg(1080, 1350))).to(Target::new(ig.id));
    let records = until_done(&engine, &post).await;
    published(&records[0]);
    assert_eq!(sandbox.posts_of("instagram", &ig.remote_id).len(), 1);
}
