//! Publishing: creator checks, direct video posts (file upload and pull), inbox drafts, photo
//! posts, polling, reconciling, and TikTok's error envelope over HTTP.

use std::time::Duration;

use konektly_core::{
    Checkpoint, Content, Error, HttpClient, HttpConfig, MediaHost, PublishOutcome, Reconciliation, TargetOptions,
};
use konektly_tiktok::{PostMode, PrivacyLevel, TikTokOptions, VideoSource};
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;
use common::*;

const MB: usize = 1024 * 1024;
const JSON: &str = "application/json; charset=UTF-8";
const PUBLISH_ID: &str = "v_pub_file~v2-1.7123456789012345678";

async fn mount_creator_info(server: &MockServer, body: Value, times: u64) {
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/creator_info/query/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", JSON))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(times)
        .mount(server)
        .await;
}

fn creator() -> Value {
    serde_json::from_str(&fixture("creator_info.json")).unwrap()
}

fn upload_url(server: &MockServer) -> String {
    format!("{}/upload/v1?upload_id=7123&upload_token=signed-token", server.uri())
}

async fn mount_chunk(server: &MockServer, size: usize, first: usize, last: usize, status: u16, times: u64) {
    Mock::given(method("PUT"))
        .and(path("/upload/v1"))
        .and(query_param("upload_id", "7123"))
        .and(header("content-type", "video/mp4"))
        .and(header("content-range", format!("bytes {first}-{last}/{size}").as_str()))
        .and(header("content-length", (last - first + 1).to_string().as_str()))
        .and(BodyIs(video_range(first, last)))
        .respond_with(ResponseTemplate::new(status))
        .expect(times)
        .mount(server)
        .await;
}

async fn mount_status(server: &MockServer, publish_id: &str, fixture_name: &str) {
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/status/fetch/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", JSON))
        .and(body_json(json!({ "publish_id": publish_id })))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture(fixture_name)))
        .mount(server)
        .await;
}

fn state(cp: &Checkpoint) -> Value {
    cp.as_json().clone()
}

#[tokio::test]
async fn a_direct_video_post_is_uploaded_in_planned_chunks_and_checkpointed() {
    let server = MockServer::start().await;
    let size = 12 * MB + 5;
    mount_creator_info(&server, creator(), 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", JSON))
        .and(body_json(json!({
            "post_info": {
                "title": "Sunset timelapse #fyp @friend",
                "privacy_level": "PUBLIC_TO_EVERYONE",
                "disable_duet": false,
                "disable_comment": true,
                "disable_stitch": true,
                "video_cover_timestamp_ms": 1000,
                "brand_content_toggle": false,
                "brand_organic_toggle": true,
                "is_aigc": true
            },
            "source_info": {
                "source": "FILE_UPLOAD",
                "video_size": size,
                "chunk_size": 5 * MB,
                "total_chunk_count": 2
            }
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_with("video_init.json", &[("upload_url", &upload_url(&server))])),
        )
        .expect(1)
        .mount(&server)
        .await;
    // 12 MB with 5 MB chunks: floor(12/5) = 2 chunks, the last absorbing the remainder.
    mount_chunk(&server, size, 0, 5 * MB - 1, 206, 1).await;
    mount_chunk(&server, size, 5 * MB, size - 1, 201, 1).await;

    let p = platform(&server);
    let a = account();
    let content = Content::text("Sunset timelapse #fyp @friend").with_media(video(size));
    let o = options(TikTokOptions {
        disable_comment: true,
        video_cover_timestamp_ms: Some(1000),
        brand_organic_toggle: true,
        is_aigc: true,
        ..public()
    });
    let r = run(&p, &a, &content, &o, Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);

    let saves: Vec<Value> = r.saves.saved().iter().map(state).collect();
    assert_eq!(saves.len(), 4, "before init, after init, after each chunk: {saves:?}");
    assert!(saves[0]["create_sent"]["at"].is_string(), "the init is marked sent: {}", saves[0]);
    assert!(saves[0]["publish_id"].is_null(), "saved before the init is sent");
    assert_eq!(saves[1]["publish_id"], PUBLISH_ID);
    // The upload URL carries a token: it is marked secret (stores encrypt it, exports hide it).
    assert_eq!(saves[1]["upload_url"]["$secret"], upload_url(&server));
    assert_eq!(saves[1]["chunks_sent"], 0);
    assert_eq!(saves[2]["chunks_sent"], 1);
    assert_eq!(saves[3]["chunks_sent"], 2);

    // Poll until TikTok says where the post is.
    mount_status(&server, PUBLISH_ID, "status_complete.json").await;
    let r = run(&p, &a, &content, &o, r.checkpoint, None, Call::Poll).await;
    match r.result.unwrap() {
        PublishOutcome::Published(remote) => {
            assert_eq!(remote.id, "7123456789012345678");
            assert_eq!(remote.url.unwrap().as_str(), "https://www.tiktok.com/@jamie.creates/video/7123456789012345678");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_its_checkpoint() {
    let server = MockServer::start().await;
    let size = 12 * MB + 5;
    mount_creator_info(&server, creator(), 0).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    mount_chunk(&server, size, 0, 5 * MB - 1, 206, 0).await;
    mount_chunk(&server, size, 5 * MB, size - 1, 201, 1).await;
    let cp = Checkpoint::from_json(json!({
        "init_sent": true, "kind": "direct_video", "source": "FILE_UPLOAD", "publish_id": PUBLISH_ID,
        "upload_url": upload_url(&server), "upload_started_at": chrono::Utc::now(),
        "video_size": size, "chunk_size": 5 * MB, "total_chunks": 2, "chunks_sent": 1,
        "username": "jamie.creates", "privacy_level": "PUBLIC_TO_EVERYONE"
    }));
    let p = platform(&server);
    let content = Content::text("resume").with_media(video(size));
    let r = run(&p, &account(), &content, &options(public()), cp, None, Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    assert_eq!(state(&r.checkpoint)["chunks_sent"], 2);
}

#[tokio::test]
async fn a_failed_chunk_leaves_the_checkpoint_at_the_last_chunk_sent() {
    let server = MockServer::start().await;
    let size = 12 * MB + 5;
    mount_creator_info(&server, creator(), 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_with("video_init.json", &[("upload_url", &upload_url(&server))])),
        )
        .mount(&server)
        .await;
    mount_chunk(&server, size, 0, 5 * MB - 1, 206, 1).await;
    mount_chunk(&server, size, 5 * MB, size - 1, 503, 1).await;
    let http = HttpClient::with_config(HttpConfig { max_retries: 0, ..HttpConfig::default() }).unwrap();
    let p = builder(&server).with_http_client(http).build().unwrap();
    let content = Content::text("x").with_media(video(size));
    let r = run(&p, &account(), &content, &options(public()), Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(r.result, Err(Error::Transient { .. })), "{:?}", r.result);
    assert_eq!(state(&r.checkpoint)["chunks_sent"], 1, "the next attempt resumes at chunk 2");
    assert_eq!(state(&r.checkpoint)["publish_id"], PUBLISH_ID);
}

#[tokio::test]
async fn a_rate_limited_chunk_waits_the_configured_wait() {
    let server = MockServer::start().await;
    let size = 12 * MB + 5;
    mount_creator_info(&server, creator(), 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_with("video_init.json", &[("upload_url", &upload_url(&server))])),
        )
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/v1"))
        .respond_with(ResponseTemplate::new(429).set_body_json(serde_json::json!({
            "error": {"code": "rate_limit_exceeded", "message": "slow down", "log_id": "L1"}
        })))
        .mount(&server)
        .await;
    let http = HttpClient::with_config(HttpConfig { max_retries: 0, ..HttpConfig::default() }).unwrap();
    let p = builder(&server).with_http_client(http).with_rate_limit_wait(Duration::from_secs(7)).build().unwrap();
    let content = Content::text("x").with_media(video(size));
    let before = chrono::Utc::now();
    let r = run(&p, &account(), &content, &options(public()), Checkpoint::default(), None, Call::Publish).await;
    let Err(Error::RateLimited { retry_at: Some(at), .. }) = r.result else {
        panic!("a rate-limited chunk is a rate limit: {:?}", r.result)
    };
    let wait = (at - before).num_milliseconds();
    assert!((6_000..=9_000).contains(&wait), "the builder's wait (7 s), not TikTok's default minute: {wait} ms");
}

#[tokio::test]
async fn a_small_video_is_one_chunk_of_its_own_size() {
    let server = MockServer::start().await;
    mount_creator_info(&server, creator(), 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .and(body_json(json!({
            "post_info": {
                "title": "short", "privacy_level": "SELF_ONLY", "disable_duet": false,
                "disable_comment": false, "disable_stitch": true, "brand_content_toggle": false,
                "brand_organic_toggle": false, "is_aigc": false
            },
            "source_info": { "source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1 }
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_with("video_init.json", &[("upload_url", &upload_url(&server))])),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, 1000, 0, 999, 201, 1).await;
    let p = platform(&server);
    let o = options(TikTokOptions { privacy_level: Some(PrivacyLevel::SelfOnly), ..Default::default() });
    let content = Content::text("short").with_media(video(1000));
    let r = run(&p, &account(), &content, &o, Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);

    // A private post never gets a public id: it is published under its publish_id.
    mount_status(&server, PUBLISH_ID, "status_complete_private.json").await;
    let r = run(&p, &account(), &content, &o, r.checkpoint, None, Call::Poll).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Published(ref rp)) if rp.id == PUBLISH_ID), "{:?}", r.result);
}

#[tokio::test]
async fn pull_from_url_uses_the_media_host() {
    let server = MockServer::start().await;
    mount_creator_info(&server, creator(), 2).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .and(body_json(json!({
            "post_info": {
                "title": "pulled", "privacy_level": "PUBLIC_TO_EVERYONE", "disable_duet": false,
                "disable_comment": false, "disable_stitch": true, "brand_content_toggle": false,
                "brand_organic_toggle": false, "is_aigc": false
            },
            "source_info": { "source": "PULL_FROM_URL", "video_url": "https://media.example.com/media/1000.mp4" }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("pull_init.json")))
        .expect(1)
        .mount(&server)
        .await;
    let p = platform(&server);
    let host = TestHost(Url::parse("https://media.example.com/").unwrap());
    let o = options(TikTokOptions { video_source: VideoSource::PullFromUrl, ..public() });
    let content = Content::text("pulled").with_media(video(1000));
    let r =
        run(&p, &account(), &content, &o, Checkpoint::default(), Some(&host as &dyn MediaHost), Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    assert_eq!(state(&r.checkpoint)["publish_id"], "v_pub_url~v2-1.7123456789012349999");
    assert_eq!(state(&r.checkpoint)["source"], "PULL_FROM_URL");

    // Without a media host, the error says one is needed (before any init).
    let r = run(&p, &account(), &content, &o, Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(&r.result, Err(Error::Config(m)) if m.contains("MediaHost")), "{:?}", r.result);
}

#[tokio::test]
async fn media_already_at_urls_are_pulled_from_there_without_a_media_host() {
    let server = MockServer::start().await;
    mount_creator_info(&server, creator(), 2).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/content/init/"))
        .and(body_partial_json(json!({
            "source_info": { "source": "PULL_FROM_URL", "photo_images": ["https://media.example.com/a.jpg"] }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("photo_init.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .and(body_partial_json(json!({
            "source_info": { "source": "PULL_FROM_URL", "video_url": "https://media.example.com/v.mp4" }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("pull_init.json")))
        .expect(1)
        .mount(&server)
        .await;
    let p = platform(&server);
    let photos = Content::text("bay").with_media(photo("https://media.example.com/a.jpg"));
    let r = run(&p, &account(), &photos, &options(public()), Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    let video = Content::text("v").with_media(
        konektly_core::Media::from_url(
            "https://media.example.com/v.mp4".parse().unwrap(),
            "video/mp4".parse().unwrap(),
        )
        .with_size(1000),
    );
    let r = run(&p, &account(), &video, &options(public()), Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    assert_eq!(state(&r.checkpoint)["source"], "PULL_FROM_URL");
}

#[tokio::test]
async fn an_inbox_draft_sends_only_the_source_and_ends_in_the_inbox() {
    let server = MockServer::start().await;
    mount_creator_info(&server, creator(), 0).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/inbox/video/init/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", JSON))
        .and(body_json(json!({
            "source_info": { "source": "FILE_UPLOAD", "video_size": 2048, "chunk_size": 2048, "total_chunk_count": 1 }
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_with("inbox_init.json", &[("upload_url", &upload_url(&server))])),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, 2048, 0, 2047, 201, 1).await;
    mount_status(&server, "v_inbox_file~v2.7123456789012340000", "status_inbox.json").await;
    let p = platform(&server);
    let o = options(TikTokOptions { mode: PostMode::Inbox, ..Default::default() });
    let content = Content::text("the creator writes the caption in the app").with_media(video(2048));
    let r = run(&p, &account(), &content, &o, Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    let r = run(&p, &account(), &content, &o, r.checkpoint, None, Call::Poll).await;
    assert!(
        matches!(r.result, Ok(PublishOutcome::Published(ref rp)) if rp.id == "v_inbox_file~v2.7123456789012340000" && rp.url.is_none()),
        "{:?}",
        r.result
    );
}

#[tokio::test]
async fn inbox_drafts_need_the_upload_scope() {
    let server = MockServer::start().await;
    let mut a = account();
    a.tokens.scopes = vec!["user.info.basic".into(), "video.publish".into()];
    let o = options(TikTokOptions { mode: PostMode::Inbox, ..Default::default() });
    let content = Content::text("x").with_media(video(10));
    let r = run(&platform(&server), &a, &content, &o, Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(&r.result, Err(Error::ReauthRequired { reason, .. }) if reason.contains("video.upload")));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_photo_post_pulls_its_images_with_a_cover() {
    let server = MockServer::start().await;
    mount_creator_info(&server, creator(), 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/content/init/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", JSON))
        .and(body_json(json!({
            "media_type": "PHOTO",
            "post_mode": "DIRECT_POST",
            "post_info": {
                "title": "Weekend",
                "description": "Two views of the bay #travel",
                "privacy_level": "MUTUAL_FOLLOW_FRIENDS",
                "disable_comment": false,
                "auto_add_music": true,
                "brand_content_toggle": false,
                "brand_organic_toggle": false
            },
            "source_info": {
                "source": "PULL_FROM_URL",
                "photo_images": ["https://media.example.com/a.jpg", "https://media.example.com/b.jpg"],
                "photo_cover_index": 1
            }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("photo_init.json")))
        .expect(1)
        .mount(&server)
        .await;
    mount_status(&server, "p_pub_url~v2.7123456789012341111", "status_complete.json").await;
    let p = platform(&server);
    let host = TestHost(Url::parse("https://unused.example/").unwrap());
    let content = Content::text("Two views of the bay #travel")
        .with_media(photo("https://media.example.com/a.jpg"))
        .with_media(photo("https://media.example.com/b.jpg"));
    let o = options(TikTokOptions {
        privacy_level: Some(PrivacyLevel::MutualFollowFriends),
        photo_title: Some("Weekend".into()),
        photo_cover_index: 1,
        auto_add_music: true,
        ..Default::default()
    });
    let r =
        run(&p, &account(), &content, &o, Checkpoint::default(), Some(&host as &dyn MediaHost), Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    let r = run(&p, &account(), &content, &o, r.checkpoint, None, Call::Poll).await;
    match r.result.unwrap() {
        PublishOutcome::Published(remote) => {
            assert_eq!(remote.url.unwrap().as_str(), "https://www.tiktok.com/@jamie.creates/photo/7123456789012345678")
        }
        other => panic!("{other:?}"),
    }
}

async fn refused_before_init(creator_body: Value, content: Content, o: TargetOptions) -> Error {
    let server = MockServer::start().await;
    mount_creator_info(&server, creator_body, 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let r = run(&platform(&server), &account(), &content, &o, Checkpoint::default(), None, Call::Publish).await;
    r.result.unwrap_err()
}

#[tokio::test]
async fn the_privacy_level_must_be_one_the_creator_may_use() {
    let o = options(TikTokOptions { privacy_level: Some(PrivacyLevel::FollowerOfCreator), ..Default::default() });
    let e = refused_before_init(creator(), Content::text("x").with_media(video(10)), o).await;
    match e {
        Error::InvalidPost(v) => {
            assert_eq!(v[0].code, "privacy_level_not_allowed");
            assert_eq!(v[0].limit.as_deref(), Some("PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, SELF_ONLY"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_video_longer_than_the_creator_may_post_is_refused() {
    let mut v = video(10);
    v.duration = Some(Duration::from_secs(301));
    let e = refused_before_init(creator(), Content::text("x").with_media(v), options(public())).await;
    assert!(
        matches!(&e, Error::InvalidPost(v) if v[0].code == "video_too_long" && v[0].limit.as_deref() == Some("300s")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_creator_who_cannot_post_now_gets_a_clear_error() {
    let mut c = creator();
    c["data"]["privacy_level_options"] = json!([]);
    let e = refused_before_init(c, Content::text("x").with_media(video(10)), options(public())).await;
    assert!(matches!(&e, Error::Rejected { code: Some(c), .. } if c == "creator_cannot_post"), "{e:?}");

    let capped = fixture_with("error.json", &[("code", "spam_risk_too_many_posts"), ("message", "daily cap")]);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/creator_info/query/"))
        .respond_with(ResponseTemplate::new(403).set_body_json(capped))
        .mount(&server)
        .await;
    let r = run(
        &platform(&server),
        &account(),
        &Content::text("x").with_media(video(10)),
        &options(public()),
        Checkpoint::default(),
        None,
        Call::Publish,
    )
    .await;
    let e = r.result.unwrap_err();
    assert!(
        matches!(&e, Error::Rejected { code: Some(c), message, .. } if c == "spam_risk_too_many_posts" && message.contains("tomorrow")),
        "{e:?}"
    );
    assert!(e.to_string().contains("202611290809LOGID0000000000000000"));
}

fn uploaded_checkpoint() -> Checkpoint {
    Checkpoint::from_json(json!({
        "init_sent": true, "kind": "direct_video", "source": "FILE_UPLOAD", "publish_id": PUBLISH_ID,
        "upload_url": "http://127.0.0.1:9/upload", "video_size": 10, "chunk_size": 10, "total_chunks": 1,
        "chunks_sent": 1, "privacy_level": "PUBLIC_TO_EVERYONE"
    }))
}

#[tokio::test]
async fn polling_maps_each_status() {
    let server = MockServer::start().await;
    let content = Content::text("x").with_media(video(10));
    let o = options(public());

    mount_status(&server, PUBLISH_ID, "status_processing.json").await;
    let p = platform(&server);
    let r = run(&p, &account(), &content, &o, uploaded_checkpoint(), None, Call::Poll).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })));

    server.reset().await;
    mount_status(&server, PUBLISH_ID, "status_failed.json").await;
    let r = run(&p, &account(), &content, &o, uploaded_checkpoint(), None, Call::Poll).await;
    let e = r.result.unwrap_err();
    assert!(
        matches!(&e, Error::Rejected { code: Some(c), message, .. } if c == "file_format_check_failed" && message.contains("MP4")),
        "{e:?}"
    );

    // A public post complete without its id yet waits for moderation, then settles for the
    // publish_id.
    server.reset().await;
    mount_status(&server, PUBLISH_ID, "status_complete_private.json").await;
    let r = run(&p, &account(), &content, &o, uploaded_checkpoint(), None, Call::Poll).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    assert!(!state(&r.checkpoint)["complete_seen_at"].is_null());
    let impatient = builder(&server).with_post_id_wait(Duration::ZERO).build().unwrap();
    let r = run(&impatient, &account(), &content, &o, r.checkpoint, None, Call::Poll).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Published(ref rp)) if rp.id == PUBLISH_ID), "{:?}", r.result);
}

#[tokio::test]
async fn reconcile_reads_the_checkpointed_publish_id() {
    let server = MockServer::start().await;
    let p = platform(&server);
    let a = account();
    // Nothing saved, or an upload session that never got its answer: safe to publish again.
    assert_eq!(reconcile(&p, &a, Checkpoint::default()).await.unwrap(), Reconciliation::NotFound);
    let sent = Checkpoint::from_json(json!({"init_sent": true, "source": "FILE_UPLOAD"}));
    assert_eq!(reconcile(&p, &a, sent).await.unwrap(), Reconciliation::NotFound);
    // A pull whose init answer was lost cannot be checked: never posted twice.
    let pulled = Checkpoint::from_json(json!({"init_sent": true, "source": "PULL_FROM_URL"}));
    assert!(matches!(reconcile(&p, &a, pulled).await, Ok(Reconciliation::Unknowable { .. })));
    // An upload cut short resumes.
    let mut half = uploaded_checkpoint().as_json().clone();
    half["total_chunks"] = json!(2);
    assert_eq!(reconcile(&p, &a, Checkpoint::from_json(half)).await.unwrap(), Reconciliation::NotFound);
    assert!(server.received_requests().await.unwrap().is_empty());
    // A finished upload: TikTok's status says.
    mount_status(&server, PUBLISH_ID, "status_complete.json").await;
    match reconcile(&p, &a, uploaded_checkpoint()).await.unwrap() {
        Reconciliation::Published(remote) => assert_eq!(remote.id, "7123456789012345678"),
        other => panic!("{other:?}"),
    }
    server.reset().await;
    mount_status(&server, PUBLISH_ID, "status_processing.json").await;
    assert!(matches!(reconcile(&p, &a, uploaded_checkpoint()).await, Ok(Reconciliation::Processing { .. })));
}

/// The envelope table over HTTP: one row per code the issue names, each keeping the log_id.
#[tokio::test]
async fn init_errors_map_through_the_table() {
    let rows: &[(&str, u16, &str)] = &[
        ("access_token_invalid", 401, "access_token_rejected"),
        ("scope_not_authorized", 401, "reauth_required"),
        ("rate_limit_exceeded", 429, "rate_limited"),
        ("spam_risk_too_many_posts", 403, "rejected"),
        ("spam_risk_user_banned_from_posting", 403, "rejected"),
        ("reached_active_user_cap", 403, "rejected"),
        ("unaudited_client_can_only_post_to_private_accounts", 403, "rejected"),
        ("privacy_level_option_mismatch", 400, "rejected"),
        ("url_ownership_unverified", 403, "rejected"),
        ("invalid_params", 400, "rejected"),
        ("internal_error", 500, "transient"),
    ];
    for (code, status, want) in rows {
        let server = MockServer::start().await;
        mount_creator_info(&server, creator(), 1).await;
        Mock::given(method("POST"))
            .and(path("/v2/post/publish/video/init/"))
            .respond_with(
                ResponseTemplate::new(*status)
                    .set_body_json(fixture_with("error.json", &[("code", code), ("message", "said TikTok")])),
            )
            .expect(1)
            .mount(&server)
            .await;
        let content = Content::text("x").with_media(video(10));
        let r = run(
            &platform(&server),
            &account(),
            &content,
            &options(public()),
            Checkpoint::default(),
            None,
            Call::Publish,
        )
        .await;
        let e = r.result.unwrap_err();
        let kind = match &e {
            Error::AccessTokenRejected { .. } => "access_token_rejected",
            Error::ReauthRequired { .. } => "reauth_required",
            Error::RateLimited { retry_at: Some(_), .. } => "rate_limited",
            Error::Rejected { code: Some(c), .. } if c == code => "rejected",
            Error::Transient { .. } => "transient",
            other => panic!("{code}: unexpected {other:?}"),
        };
        assert_eq!(kind, *want, "{code}");
        assert!(e.to_string().contains("202611290809LOGID0000000000000000"), "{code}: the log_id is kept: {e}");
        let src = std::error::Error::source(&e).expect("the TikTok error is the source");
        let api = src.downcast_ref::<konektly_tiktok::TikTokApiError>().expect("a TikTokApiError");
        assert_eq!(api.code, *code);
        assert!(state(&r.checkpoint)["create_sent"]["at"].is_string());
    }
}

#[tokio::test]
async fn delete_is_not_supported() {
    let server = MockServer::start().await;
    let remote = konektly_core::RemotePost::new("tiktok".into(), "1", None);
    use konektly_core::Platform;
    assert!(matches!(platform(&server).delete(&account(), &remote).await, Err(Error::NotSupported(_))));
}

#[tokio::test]
async fn a_photo_draft_goes_to_the_inbox_without_creator_checks() {
    let server = MockServer::start().await;
    mount_creator_info(&server, creator(), 0).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/content/init/"))
        .and(body_json(json!({
            "media_type": "PHOTO",
            "post_mode": "MEDIA_UPLOAD",
            "post_info": {
                "title": "",
                "description": "for later",
                "disable_comment": false,
                "auto_add_music": false,
                "brand_content_toggle": false,
                "brand_organic_toggle": false
            },
            "source_info": {
                "source": "PULL_FROM_URL",
                "photo_images": ["https://media.example.com/a.jpg"],
                "photo_cover_index": 0
            }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("photo_init.json")))
        .expect(1)
        .mount(&server)
        .await;
    let host = TestHost(Url::parse("https://unused.example/").unwrap());
    let content = Content::text("for later").with_media(photo("https://media.example.com/a.jpg"));
    let o = options(TikTokOptions { mode: PostMode::Inbox, ..Default::default() });
    let r = run(
        &platform(&server),
        &account(),
        &content,
        &o,
        Checkpoint::default(),
        Some(&host as &dyn MediaHost),
        Call::Publish,
    )
    .await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    assert_eq!(state(&r.checkpoint)["kind"], "photo");
}

#[tokio::test]
async fn a_stale_upload_url_starts_the_upload_over() {
    let server = MockServer::start().await;
    let size = 12 * MB + 5;
    mount_creator_info(&server, creator(), 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_with("video_init.json", &[("upload_url", &upload_url(&server))])),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, size, 0, 5 * MB - 1, 206, 1).await;
    mount_chunk(&server, size, 5 * MB, size - 1, 201, 1).await;
    let cp = Checkpoint::from_json(json!({
        "init_sent": true, "kind": "direct_video", "source": "FILE_UPLOAD", "publish_id": "old",
        "upload_url": "http://127.0.0.1:9/expired", "upload_started_at": chrono::Utc::now() - chrono::Duration::hours(2),
        "video_size": size, "chunk_size": 5 * MB, "total_chunks": 2, "chunks_sent": 1
    }));
    let content = Content::text("again").with_media(video(size));
    let r = run(&platform(&server), &account(), &content, &options(public()), cp, None, Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    assert_eq!(state(&r.checkpoint)["publish_id"], PUBLISH_ID);
    assert_eq!(state(&r.checkpoint)["chunks_sent"], 2);
}

/// Issue 14: an upload URL that expired early (TikTok answers `404`) makes the upload start
/// over once, with a new publish id — not a permanent refusal blaming a field.
#[tokio::test]
async fn an_upload_url_that_expired_early_starts_the_upload_over_once() {
    let server = MockServer::start().await;
    let size = 12 * MB + 5;
    mount_creator_info(&server, creator(), 2).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_with("video_init.json", &[("upload_url", &upload_url(&server))])),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/v1"))
        .respond_with(ResponseTemplate::new(404).set_body_string("upload_url has expired"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, size, 0, 5 * MB - 1, 206, 1).await;
    mount_chunk(&server, size, 5 * MB, size - 1, 201, 1).await;
    let p = platform(&server);
    let content = Content::text("again").with_media(video(size));
    let r = run(&p, &account(), &content, &options(public()), Checkpoint::default(), None, Call::Publish).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Processing { .. })), "{:?}", r.result);
    let last = state(r.saves.saved().last().unwrap());
    assert_eq!(last["restarted"], true);
    assert_eq!(last["chunks_sent"], 2);
    server.verify().await;

    // A second expiry is the error (no endless restarts).
    let server = MockServer::start().await;
    mount_creator_info(&server, creator(), 2).await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_with("video_init.json", &[("upload_url", &upload_url(&server))])),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/v1"))
        .respond_with(ResponseTemplate::new(404))
        .expect(2)
        .mount(&server)
        .await;
    let p = platform(&server);
    let r = run(&p, &account(), &content, &options(public()), Checkpoint::default(), None, Call::Publish).await;
    assert!(
        matches!(&r.result, Err(konektly_core::Error::Rejected { code: Some(c), .. }) if c == "upload_url_expired"),
        "{:?}",
        r.result
    );
}
