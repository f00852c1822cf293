//! Instagram Login and container publishing against a mock Graph API, request by request.

use std::sync::Mutex;

use chrono::Utc;
use konektly_core::{
    Checkpoint, Content, Error, Media, MediaHost, PendingAuthorization, Platform, PlatformId, Reconciliation,
    TargetOptions,
};
use konektly_meta::{InstagramMediaKind, InstagramOptions, InstagramUserTag};
use serde_json::json;
use url::Url;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn jpeg(url: &str) -> Media {
    Media::from_url(url.parse().unwrap(), "image/jpeg".parse().unwrap())
}

fn mp4(url: &str) -> Media {
    Media::from_url(url.parse().unwrap(), "video/mp4".parse().unwrap())
}

/// Mounts `content_publishing_limit` answering `fixture`, read once.
async fn quota(server: &MockServer, prefix: &str, fixture_name: &str) {
    quota_n(server, prefix, fixture_name, 1).await
}

async fn quota_n(server: &MockServer, prefix: &str, fixture_name: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/{IG_ID}/content_publishing_limit")))
        .and(query_param("fields", "quota_usage,config"))
        .respond_with(ok(fixture(fixture_name)))
        .expect(times)
        .mount(server)
        .await;
}

/// A container whose status is IN_PROGRESS `pending` times, then `last`.
async fn container(server: &MockServer, id: &str, pending: u64, last: &str) {
    if pending > 0 {
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{id}")))
            .and(query_param("fields", "status_code,status"))
            .respond_with(ok(json!({"status_code": "IN_PROGRESS", "status": "In Progress", "id": id})))
            .up_to_n_times(pending)
            .expect(pending)
            .with_priority(1)
            .mount(server)
            .await;
    }
    let status = if last == "ERROR" { "Error: Media upload has failed with error code 2207082" } else { last };
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{id}")))
        .and(query_param("fields", "status_code,status"))
        .respond_with(ok(json!({"status_code": last, "status": status, "id": id})))
        .expect(1..)
        .with_priority(2)
        .mount(server)
        .await;
}

async fn media_publish(server: &MockServer, creation: &str, media_id: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media_publish")))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(form(&[("creation_id", creation)]))
        .respond_with(ok(json!({ "id": media_id })))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{media_id}")))
        .and(query_param("fields", "id,permalink"))
        .respond_with(ok(json!({"id": media_id, "permalink": format!("https://www.instagram.com/p/{media_id}/")})))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_single_image_is_a_container_polled_until_finished_then_published() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(form(&[
            ("image_url", "https://cdn.example/cat.jpg"),
            ("caption", "A cat #cats"),
            ("alt_text", "a sleeping cat"),
        ]))
        .respond_with(ok(json!({"id": "c-1"})))
        .expect(1)
        .mount(&server)
        .await;
    container(&server, "c-1", 2, "FINISHED").await;
    media_publish(&server, "c-1", "m-1").await;
    let ig = meta(&server).instagram;
    let content =
        Content::text("A cat #cats").with_media(jpeg("https://cdn.example/cat.jpg").with_alt_text("a sleeping cat"));
    let s = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await;
    let remote = s.published();
    assert_eq!(remote.id, "m-1");
    assert_eq!(remote.url.unwrap().as_str(), "https://www.instagram.com/p/m-1/");
    assert_eq!(s.saves.saved()[0].as_json()["container"], "c-1", "the container id is checkpointed first");
    let quota_report = s.saves.rate_limit_reports().into_iter().find(|r| r.bucket == "instagram_content_publishing");
    assert_eq!(quota_report.map(|r| (r.limit, r.remaining)), Some((Some(50), 48)));
    let order = calls(&server).await;
    assert_eq!(order[0], format!("GET /v25.0/{IG_ID}/content_publishing_limit"), "the quota is read first");
    let publish_at = order.iter().position(|c| c.ends_with("/media_publish")).unwrap();
    assert_eq!(order[publish_at - 1], "GET /v25.0/c-1", "published only after FINISHED");
}

#[tokio::test]
async fn a_carousel_waits_for_children_that_finish_at_different_times() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[("is_carousel_item", "true"), ("image_url", "https://cdn.example/1.jpg")]))
        .respond_with(ok(json!({"id": "child-1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[("is_carousel_item", "true"), ("media_type", "VIDEO"), ("video_url", "https://cdn.example/2.mp4")]))
        .respond_with(ok(json!({"id": "child-2"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[("media_type", "CAROUSEL"), ("children", "child-1,child-2"), ("caption", "Two things")]))
        .respond_with(ok(json!({"id": "parent-1"})))
        .expect(1)
        .mount(&server)
        .await;
    // The image is ready at once; the video needs three more looks; the parent one.
    container(&server, "child-1", 0, "FINISHED").await;
    container(&server, "child-2", 3, "FINISHED").await;
    container(&server, "parent-1", 1, "FINISHED").await;
    media_publish(&server, "parent-1", "m-2").await;
    let ig = meta(&server).instagram;
    let content = Content::text("Two things")
        .with_media(jpeg("https://cdn.example/1.jpg"))
        .with_media(mp4("https://cdn.example/2.mp4"));
    assert!(ig.validate(&content, &TargetOptions::none()).is_empty());
    let s = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await;
    assert_eq!(s.published().id, "m-2");
    let saved: Vec<serde_json::Value> = s.saves.saved().iter().map(|c| c.as_json().clone()).collect();
    assert_eq!(saved[0]["children"], json!(["child-1"]));
    assert_eq!(saved[1]["children"], json!(["child-1", "child-2"]));
    assert_eq!(saved[2]["container"], "parent-1");
    let order = calls(&server).await;
    let parent_created = order.iter().rposition(|c| c == &format!("POST /v25.0/{IG_ID}/media")).unwrap();
    let last_child_look = order.iter().rposition(|c| c == "GET /v25.0/child-2").unwrap();
    assert!(last_child_look < parent_created, "the parent is created only after every child finished");
}

#[tokio::test]
async fn user_tags_go_on_each_image_and_the_partnership_on_the_post() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    let child = |url: &str, tags: Option<&str>, id: &str| {
        let mut f = vec![("is_carousel_item", "true"), ("image_url", url)];
        if let Some(t) = tags {
            f.push(("user_tags", t));
        }
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&f))
            .respond_with(ok(json!({ "id": id })))
            .expect(1)
    };
    child("https://cdn.example/1.jpg", Some(r#"[{"username":"friend.one","x":0.5,"y":0.25}]"#), "child-1")
        .mount(&server)
        .await;
    child("https://cdn.example/2.jpg", Some(r#"[{"username":"friend.two","x":0.0,"y":1.0}]"#), "child-2")
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[("is_carousel_item", "true"), ("media_type", "VIDEO"), ("video_url", "https://cdn.example/3.mp4")]))
        .respond_with(ok(json!({"id": "child-3"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[
            ("media_type", "CAROUSEL"),
            ("children", "child-1,child-2,child-3"),
            ("caption", "Tagged"),
            ("branded_content_sponsor_ids", r#"["17841400000000001"]"#),
            ("is_paid_partnership", "true"),
        ]))
        .respond_with(ok(json!({"id": "parent-t"})))
        .expect(1)
        .mount(&server)
        .await;
    for c in ["child-1", "child-2", "child-3", "parent-t"] {
        container(&server, c, 0, "FINISHED").await;
    }
    media_publish(&server, "parent-t", "m-t").await;
    let ig = meta(&server).instagram;
    let opts = TargetOptions::new(&InstagramOptions {
        user_tags: vec![
            InstagramUserTag::at("@friend.one", 0.5, 0.25),
            InstagramUserTag::at("friend.two", 0.0, 1.0).on_item(1),
        ],
        branded_content_sponsor_ids: vec!["17841400000000001".into()],
        is_paid_partnership: Some(true),
        ..Default::default()
    })
    .unwrap();
    let content = Content::text("Tagged")
        .with_media(jpeg("https://cdn.example/1.jpg"))
        .with_media(jpeg("https://cdn.example/2.jpg"))
        .with_media(mp4("https://cdn.example/3.mp4"));
    assert!(ig.validate(&content, &opts).is_empty());
    assert_eq!(publish(ig.as_ref(), &ig_fb_account(), &content, &opts).await.published().id, "m-t");
}

#[tokio::test]
async fn a_single_image_carries_its_tags_and_the_options_read_from_json() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[
            ("image_url", "https://cdn.example/cat.jpg"),
            ("caption", "A cat"),
            ("user_tags", r#"[{"username":"cat.owner","x":0.3,"y":0.7}]"#),
        ]))
        .respond_with(ok(json!({"id": "c-t"})))
        .expect(1)
        .mount(&server)
        .await;
    container(&server, "c-t", 0, "FINISHED").await;
    media_publish(&server, "c-t", "m-ct").await;
    let ig = meta(&server).instagram;
    // As an application sends them: plain JSON.
    let opts = TargetOptions::from_json(json!({"user_tags": [{"username": "cat.owner", "x": 0.3, "y": 0.7}]}));
    let content = Content::text("A cat").with_media(jpeg("https://cdn.example/cat.jpg"));
    assert!(ig.validate(&content, &opts).is_empty());
    assert_eq!(publish(ig.as_ref(), &ig_fb_account(), &content, &opts).await.published().id, "m-ct");
    let typo = TargetOptions::from_json(json!({"user_tags": [{"username": "a", "x": 0.3, "z": 0.7}]}));
    let v = ig.validate(&content, &typo);
    assert_eq!(v.iter().map(|v| v.code.as_str()).collect::<Vec<_>>(), vec!["invalid_options"], "{v:?}");
}

#[tokio::test]
async fn a_container_that_ends_in_error_stops_with_the_reason() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[("media_type", "REELS"), ("video_url", "https://cdn.example/silent.mp4"), ("caption", "Reel")]))
        .respond_with(ok(json!({"id": "c-err"})))
        .expect(1)
        .mount(&server)
        .await;
    container(&server, "c-err", 1, "ERROR").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media_publish")))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    let content = Content::text("Reel").with_media(mp4("https://cdn.example/silent.mp4"));
    match publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await.err() {
        Error::Rejected { code, message, .. } => {
            assert_eq!(code.as_deref(), Some("2207082"));
            assert!(message.contains("2207082") && message.contains("could not process"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_expired_container_is_replaced_by_a_new_one_and_refused_only_after_repeated_expiry() {
    let server = MockServer::start().await;
    container(&server, "c-old", 0, "EXPIRED").await;
    let ig = meta(&server).instagram;
    let content = Content::text("late").with_media(jpeg("https://cdn.example/a.jpg"));
    // Expired while the publish waited for the quota: it was never published (a published
    // container reads PUBLISHED), so the post starts over with a new container.
    let cp = Checkpoint::from_json(json!({"container": "c-old"}));
    let s = step(ig.as_ref(), Op::Poll, &ig_fb_account(), &content, &TargetOptions::none(), cp, None, Utc::now()).await;
    assert!(s.is_processing(), "a new container is on its way");
    let state = s.state();
    assert!(state.get("container").is_none(), "the expired container is dropped: {state}");
    assert_eq!(state["expired_restarts"], 1);
    let publishes =
        server.received_requests().await.unwrap().iter().filter(|r| r.url.path().ends_with("media_publish")).count();
    assert_eq!(publishes, 0, "nothing is published from an expired container");
    // After the second expiry in a row, a clear refusal.
    let cp = Checkpoint::from_json(json!({"container": "c-old", "expired_restarts": 2}));
    let s = step(ig.as_ref(), Op::Poll, &ig_fb_account(), &content, &TargetOptions::none(), cp, None, Utc::now()).await;
    match s.err() {
        Error::Rejected { code, message, .. } => {
            assert_eq!(code.as_deref(), Some("container_expired"));
            assert!(message.contains("24 hours"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_container_answers_processing_and_poll_resumes_from_the_checkpoint() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .respond_with(ok(json!({"id": "c-slow"})))
        .expect(1)
        .mount(&server)
        .await;
    let ig = builder(&server)
        .with_container_poll_interval(std::time::Duration::from_millis(5))
        .with_container_poll_deadline(std::time::Duration::ZERO)
        .build()
        .unwrap()
        .instagram;
    Mock::given(method("GET"))
        .and(path("/v25.0/c-slow"))
        .respond_with(ok(json!({"status_code": "IN_PROGRESS"})))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    container(&server, "c-slow", 0, "FINISHED").await;
    media_publish(&server, "c-slow", "m-slow").await;
    let content = Content::text("slow").with_media(mp4("https://cdn.example/long.mp4"));
    let acct = ig_fb_account();
    let first = step(
        ig.as_ref(),
        Op::Publish,
        &acct,
        &content,
        &TargetOptions::none(),
        Checkpoint::default(),
        None,
        Utc::now(),
    )
    .await;
    assert!(first.is_processing(), "the deadline passed: the engine polls later");
    let done =
        step(ig.as_ref(), Op::Poll, &acct, &content, &TargetOptions::none(), first.checkpoint, None, Utc::now()).await;
    assert_eq!(done.published().id, "m-slow", "the same container is published; none is created again");
}

#[tokio::test]
async fn a_spent_quota_is_rate_limited_before_anything_is_created() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit_spent.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .respond_with(ok(json!({"id": "x"})))
        .expect(0)
        .mount(&server)
        .await;
    let ig = builder(&server).with_quota_retry(std::time::Duration::from_secs(1800)).build().unwrap().instagram;
    let before = Utc::now();
    let content = Content::text("q").with_media(jpeg("https://cdn.example/a.jpg"));
    let s = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await;
    let report = s.saves.rate_limit_reports().into_iter().find(|r| r.bucket == "instagram_content_publishing").unwrap();
    assert_eq!(report.remaining, 0);
    match s.err() {
        Error::RateLimited { retry_at: Some(at), message, .. } => {
            assert!(at - before >= chrono::Duration::minutes(30) && at - before < chrono::Duration::minutes(31));
            assert!(message.contains("50 of 50"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_media_url_instagram_cannot_fetch_is_rejected_saying_it_must_be_public() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .respond_with(ResponseTemplate::new(400).set_body_json(fixture("ig_error_9004.json")))
        .expect(1)
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    let content = Content::text("p").with_media(jpeg("https://cdn.example/private.jpg"));
    let err = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await.err();
    match &err {
        Error::Rejected { message, .. } => assert!(message.contains("must be public"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(konektly_meta::graph_error(&err).unwrap().body.fbtrace_id.as_deref(), Some("AFetchFail1"));
}

#[tokio::test]
async fn media_publish_answering_not_ready_keeps_polling() {
    let server = MockServer::start().await;
    container(&server, "c-9", 0, "FINISHED").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media_publish")))
        .respond_with(ResponseTemplate::new(400).set_body_json(fixture("ig_error_9007.json")))
        .expect(1)
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    let content = Content::text("n").with_media(jpeg("https://cdn.example/a.jpg"));
    let cp = Checkpoint::from_json(json!({"container": "c-9"}));
    let s = step(ig.as_ref(), Op::Poll, &ig_fb_account(), &content, &TargetOptions::none(), cp, None, Utc::now()).await;
    assert!(s.is_processing());
    assert_eq!(s.state()["publish_sent"], false, "nothing was published: the flag is cleared");
}

#[derive(Debug, Default)]
struct RecordingHost(Mutex<usize>);

#[konektly_core::async_trait]
impl MediaHost for RecordingHost {
    async fn url_for(&self, _media: &Media) -> konektly_core::Result<Url> {
        *self.0.lock().unwrap() += 1;
        Ok("https://media.app.example/abc123.jpg".parse().unwrap())
    }
}

#[tokio::test]
async fn stories_from_local_bytes_go_through_the_media_host_on_instagram_login() {
    let server = MockServer::start().await;
    quota_n(&server, "/v25.0", "ig_publishing_limit.json", 2).await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(query_param("access_token", IG_TOKEN))
        .and(form(&[("media_type", "STORIES"), ("image_url", "https://media.app.example/abc123.jpg")]))
        .respond_with(ok(json!({"id": "story-c"})))
        .expect(1)
        .mount(&server)
        .await;
    container(&server, "story-c", 0, "FINISHED").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media_publish")))
        .and(query_param("access_token", IG_TOKEN))
        .and(form(&[("creation_id", "story-c")]))
        .respond_with(ok(json!({"id": "story-m"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/story-m"))
        .respond_with(ok(json!({"id": "story-m", "permalink": "https://www.instagram.com/stories/ada.codes/1/"})))
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    let host = RecordingHost::default();
    let mut media = Media::from_bytes(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00story".to_vec());
    media.width = Some(1080);
    media.height = Some(1920);
    let content = Content::text("").with_media(media);
    let opts =
        TargetOptions::new(&InstagramOptions { kind: Some(InstagramMediaKind::Story), ..Default::default() }).unwrap();
    assert!(ig.validate(&content, &opts).is_empty());
    // Without a host, local media cannot be published.
    let no_host = publish(ig.as_ref(), &ig_login_account(), &content, &opts).await;
    assert!(matches!(no_host.err(), Error::Config(_)));
    let s = step(
        ig.as_ref(),
        Op::Publish,
        &ig_login_account(),
        &content,
        &opts,
        Checkpoint::default(),
        Some(&host),
        Utc::now(),
    )
    .await;
    assert_eq!(s.published().id, "story-m");
    assert_eq!(*host.0.lock().unwrap(), 1);
}

#[tokio::test]
async fn reels_are_reels_with_their_options() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[
            ("media_type", "REELS"),
            ("video_url", "https://cdn.example/r.mp4"),
            ("caption", "Reel time"),
            ("collaborators", r#"["friend.one"]"#),
            ("share_to_feed", "true"),
            ("thumb_offset", "1500"),
        ]))
        .respond_with(ok(json!({"id": "reel-c"})))
        .expect(1)
        .mount(&server)
        .await;
    container(&server, "reel-c", 1, "FINISHED").await;
    media_publish(&server, "reel-c", "reel-m").await;
    let ig = meta(&server).instagram;
    let opts = TargetOptions::new(&InstagramOptions {
        share_to_feed: Some(true),
        thumb_offset_ms: Some(1500),
        collaborators: vec!["friend.one".into()],
        ..Default::default()
    })
    .unwrap();
    let content = Content::text("Reel time").with_media(mp4("https://cdn.example/r.mp4"));
    assert_eq!(publish(ig.as_ref(), &ig_fb_account(), &content, &opts).await.published().id, "reel-m");
}

#[tokio::test]
async fn reconcile_uses_the_checkpointed_container() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/c-done"))
        .respond_with(ok(json!({"status_code": "PUBLISHED", "id": "c-done"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(query_param("fields", "id,caption,permalink,timestamp"))
        .respond_with(ok(json!({"data": [
            {"id": "m-other", "caption": "not it", "timestamp": "2099-01-01T00:00:00+0000"},
            {"id": "m-found", "caption": "Did it land?", "permalink": "https://www.instagram.com/p/found/", "timestamp": "2099-01-01T00:00:00+0000"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/c-ready"))
        .respond_with(ok(json!({"status_code": "FINISHED", "id": "c-ready"})))
        .expect(1)
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    let content = Content::text("Did it land?").with_media(jpeg("https://cdn.example/a.jpg"));
    let acct = ig_fb_account();
    let none = TargetOptions::none();
    let landed = Checkpoint::from_json(json!({"container": "c-done", "publish_sent": true}));
    let s = step(ig.as_ref(), Op::Reconcile, &acct, &content, &none, landed, None, Utc::now()).await;
    let remote = s.published();
    assert_eq!(remote.id, "m-found");
    assert_eq!(remote.url.unwrap().as_str(), "https://www.instagram.com/p/found/");
    let not_landed = Checkpoint::from_json(json!({"container": "c-ready", "publish_sent": true}));
    let s = step(ig.as_ref(), Op::Reconcile, &acct, &content, &none, not_landed, None, Utc::now()).await;
    assert!(matches!(s.result, Ok(Outcome::Reconcile(Reconciliation::NotFound))));
    assert_eq!(s.state()["container"], "c-ready", "the container is kept for the next attempt");
    let never = Checkpoint::default();
    let s = step(ig.as_ref(), Op::Reconcile, &acct, &content, &none, never, None, Utc::now()).await;
    assert!(matches!(s.result, Ok(Outcome::Reconcile(Reconciliation::NotFound))));
}

#[tokio::test]
async fn instagram_login_authorizes_exchanges_and_extends_the_token() {
    let server = MockServer::start().await;
    let ig = meta(&server).instagram;
    let redirect = Url::parse("https://app.example/callback").unwrap();
    let req = ig.authorization_request(&redirect).unwrap();
    assert_eq!(req.url.path(), "/oauth/authorize");
    let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "654321");
    assert_eq!(q["scope"], "instagram_business_basic,instagram_business_content_publish");
    assert_eq!(q["response_type"], "code");

    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(form(&[
            ("client_id", "654321"),
            ("client_secret", IG_APP_SECRET),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://app.example/callback"),
            ("code", "ig-code"),
        ]))
        .respond_with(ok(fixture("ig_token_short.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/access_token"))
        .and(query_param("grant_type", "ig_exchange_token"))
        .and(query_param("client_secret", IG_APP_SECRET))
        .and(query_param("access_token", "IGAAShortToken"))
        .respond_with(ok(fixture("ig_token_long.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/me"))
        .and(query_param("access_token", IG_TOKEN))
        .and(query_param("fields", "user_id,username,name,profile_picture_url"))
        .respond_with(ok(fixture("ig_me.json")))
        .expect(1)
        .mount(&server)
        .await;
    let pending = PendingAuthorization {
        state: req.state.clone(),
        platform: PlatformId::new("instagram"),
        owner: konektly_core::OwnerId::new("o"),
        redirect_uri: redirect,
        pkce_verifier: None,
        expires_at: Utc::now() + chrono::Duration::minutes(5),
        reconnect: None,
    };
    let before = Utc::now();
    let grants = ig.exchange_code("ig-code#_", &pending).await.unwrap();
    assert_eq!(grants.len(), 1);
    let g = &grants[0];
    assert_eq!(g.profile.remote_id, IG_ID, "the professional account id publishes");
    assert_eq!(g.profile.handle.as_deref(), Some("ada.codes"));
    assert_eq!(g.tokens.access_token.expose(), IG_TOKEN);
    assert_eq!(g.tokens.scopes, vec!["instagram_business_basic", "instagram_business_content_publish"]);
    let exp = g.tokens.expires_at.unwrap() - before;
    assert!(exp > chrono::Duration::days(59) && exp < chrono::Duration::days(61));
    assert_eq!(g.metadata["login"], "instagram");
    assert_eq!(g.metadata[konektly_core::REFRESH_AHEAD_KEY], 7 * 86_400, "the engine refreshes a week ahead");
}

#[tokio::test]
async fn instagram_login_tokens_refresh_and_page_tokens_do_not() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("grant_type", "ig_refresh_token"))
        .and(query_param("access_token", IG_TOKEN))
        .respond_with(ok(json!({"access_token": "IGQWRefreshed", "token_type": "bearer", "expires_in": 5183944})))
        .expect(1)
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    let fresh = ig.refresh(&ig_login_account()).await.unwrap();
    assert_eq!(fresh.access_token.expose(), "IGQWRefreshed");
    assert!(fresh.expires_at.unwrap() > Utc::now() + chrono::Duration::days(59));
    assert!(matches!(ig.refresh(&ig_fb_account()).await, Err(Error::ReauthRequired { .. })));
}

#[tokio::test]
async fn an_expired_instagram_token_refresh_is_reauth_required() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: Session has expired", "type": "OAuthException",
            "code": 190, "error_subcode": 463, "fbtrace_id": "AExpired1"}})))
        .expect(1)
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    match ig.refresh(&ig_login_account()).await {
        Err(Error::ReauthRequired { reason, .. }) => assert!(reason.contains("expired"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_local_reel_without_a_media_host_uses_the_resumable_upload() {
    let server = MockServer::start().await;
    quota(&server, "/v25.0", "ig_publishing_limit.json").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[("media_type", "REELS"), ("upload_type", "resumable"), ("caption", "Straight from disk")]))
        .respond_with(ok(json!({"id": "res-c", "uri": "https://rupload.facebook.com/ig-api-upload/v25.0/res-c"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/ig-api-upload/v25.0/res-c"))
        .and(wiremock::matchers::header("authorization", &*format!("OAuth {PAGE_TOKEN}")))
        .and(wiremock::matchers::header("offset", "0"))
        .and(wiremock::matchers::header("file_size", "9"))
        .and(wiremock::matchers::body_bytes(b"123456789".to_vec()))
        .respond_with(ok(json!({"success": true, "message": "Upload successful."})))
        .expect(1)
        .mount(&server)
        .await;
    container(&server, "res-c", 1, "FINISHED").await;
    media_publish(&server, "res-c", "res-m").await;
    let ig = meta(&server).instagram;
    let mut video = Media::from_bytes(b"123456789".to_vec());
    video.mime = "video/mp4".parse().unwrap();
    let content = Content::text("Straight from disk").with_media(video);
    let s = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await;
    assert_eq!(s.published().id, "res-m");
    let saved: Vec<serde_json::Value> = s.saves.saved().iter().map(|c| c.as_json().clone()).collect();
    assert_eq!(saved[0]["uploads_pending"], json!(["res-c"]), "the container is checkpointed before its bytes go");
    assert!(saved[1].get("uploads_pending").is_none(), "and marked uploaded after");
}

#[tokio::test]
async fn profiles_are_read_from_the_right_host() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{IG_ID}")))
        .and(query_param("fields", "id,username,name,profile_picture_url"))
        .and(query_param("access_token", PAGE_TOKEN))
        .respond_with(ok(json!({"id": IG_ID, "username": "analytical.engines", "name": "AE"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/me"))
        .and(query_param("access_token", IG_TOKEN))
        .respond_with(ok(fixture("ig_me.json")))
        .expect(1)
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    assert_eq!(ig.profile(&ig_fb_account()).await.unwrap().handle.as_deref(), Some("analytical.engines"));
    let p = ig.profile(&ig_login_account()).await.unwrap();
    assert_eq!((p.remote_id.as_str(), p.handle.as_deref()), (IG_ID, Some("ada.codes")));
}

#[tokio::test]
async fn a_publish_refused_for_the_quota_is_rate_limited_and_resumes_with_the_same_container() {
    let server = MockServer::start().await;
    container(&server, "c-q", 0, "FINISHED").await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media_publish")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Application request limit reached", "type": "OAuthException", "code": 9,
            "error_subcode": 2207042, "is_transient": false,
            "error_user_msg": "You have reached the maximum number of posts allowed in 24 hours.",
            "fbtrace_id": "AQuota1"}})))
        .expect(1)
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    let content = Content::text("q").with_media(jpeg("https://cdn.example/a.jpg"));
    let cp = Checkpoint::from_json(json!({"container": "c-q"}));
    let s = step(ig.as_ref(), Op::Poll, &ig_fb_account(), &content, &TargetOptions::none(), cp, None, Utc::now()).await;
    assert_eq!(s.state()["container"], "c-q", "the container is kept");
    assert_eq!(s.state()["publish_sent"], false, "nothing was published");
    assert!(matches!(s.err(), Error::RateLimited { .. }));
}
