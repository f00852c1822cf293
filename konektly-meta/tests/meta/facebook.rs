//! Facebook Login and Page publishing against a mock Graph API, request by request.

use chrono::Utc;
use konektly_core::{
    Checkpoint, Content, Error, Media, PendingAuthorization, Platform, PlatformId, RemotePost, TargetOptions,
};
use konektly_meta::{FacebookOptions, FacebookPostKind, MetaBuilder};
use serde_json::json;
use url::Url;
use wiremock::matchers::{body_bytes, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

fn pending(platform: &str) -> PendingAuthorization {
    PendingAuthorization {
        state: "state-1".into(),
        platform: PlatformId::new(platform),
        owner: konektly_core::OwnerId::new("owner-1"),
        redirect_uri: Url::parse("https://app.example/callback").unwrap(),
        pkce_verifier: None,
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        reconnect: None,
    }
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn the_dialog_url_carries_scopes_or_a_config_id() {
    let server = MockServer::start().await;
    let fb = meta(&server).facebook;
    let redirect = Url::parse("https://app.example/callback").unwrap();
    let req = fb.authorization_request(&redirect).unwrap();
    assert_eq!(req.url.path(), "/v25.0/dialog/oauth");
    assert!(req.url.as_str().starts_with(&server.uri()), "the browser page is on the base URL too");
    let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "123456");
    assert_eq!(q["redirect_uri"], "https://app.example/callback");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["state"], req.state);
    assert_eq!(
        q["scope"],
        "pages_show_list,pages_read_engagement,pages_manage_posts,business_management,instagram_basic,instagram_content_publish"
    );
    // PKCE S256 by default (issue 13): the challenge is the verifier's.
    let verifier = req.pkce_verifier.as_ref().expect("PKCE is on by default");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], konektly_core::oauth::pkce_challenge(verifier.expose()));
    let off = builder(&server).with_pkce(false).build().unwrap().facebook.authorization_request(&redirect).unwrap();
    assert!(off.pkce_verifier.is_none() && !off.url.as_str().contains("code_challenge"), "PKCE can be turned off");

    let business = builder(&server).with_config_id("cfg-42").with_graph_version("v27.0").build().unwrap().facebook;
    let req = business.authorization_request(&redirect).unwrap();
    assert_eq!(req.url.path(), "/v27.0/dialog/oauth", "the version is configuration");
    let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q["config_id"], "cfg-42");
    assert!(!q.contains_key("scope"), "Login for Business sends config_id instead of scope");
}

#[tokio::test]
async fn facebook_login_yields_the_user_each_page_and_each_linked_instagram_account() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/oauth/access_token"))
        .and(query_param("client_id", "123456"))
        .and(query_param("client_secret", APP_SECRET))
        .and(query_param("redirect_uri", "https://app.example/callback"))
        .and(query_param("code", "the-code"))
        .respond_with(ok(fixture("fb_token_short.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/oauth/access_token"))
        .and(query_param("grant_type", "fb_exchange_token"))
        .and(query_param("client_id", "123456"))
        .and(query_param("client_secret", APP_SECRET))
        .and(query_param("fb_exchange_token", "EAAShortLivedUserToken"))
        .respond_with(ok(fixture("fb_token_long.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/me/permissions"))
        .and(query_param("access_token", "EAALongLivedUserToken"))
        .respond_with(ok(fixture("fb_permissions.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/me"))
        .and(query_param("access_token", "EAALongLivedUserToken"))
        .and(query_param("fields", "id,name,picture"))
        .respond_with(ok(fixture("fb_me.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/me/accounts"))
        .and(query_param("access_token", "EAALongLivedUserToken"))
        .and(query_param(
            "fields",
            "id,name,access_token,category,tasks,picture,instagram_business_account{id,username,name,profile_picture_url}",
        ))
        .respond_with(ok(fixture("fb_me_accounts.json")))
        .expect(1)
        .mount(&server)
        .await;

    let before = Utc::now();
    let grants = meta(&server).facebook.exchange_code("the-code", &pending("facebook")).await.unwrap();
    let ids: Vec<(&str, &str)> = grants.iter().map(|g| (g.platform.as_str(), g.profile.remote_id.as_str())).collect();
    assert_eq!(ids, vec![("facebook", "900"), ("facebook", "101"), ("facebook", "102"), ("instagram", IG_ID)]);

    let user = &grants[0];
    assert_eq!(user.tokens.access_token.expose(), "EAALongLivedUserToken");
    let exp = user.tokens.expires_at.unwrap() - before;
    assert!(exp > chrono::Duration::days(59) && exp < chrono::Duration::days(61), "{exp}");
    assert_eq!(user.tokens.scopes, vec!["pages_show_list", "pages_manage_posts", "instagram_content_publish"]);
    assert_eq!(user.metadata["kind"], "user");
    assert_eq!(user.parent_remote_id, None);

    let page = &grants[1];
    assert_eq!(page.tokens.access_token.expose(), "EAAPageToken");
    assert_eq!(page.tokens.expires_at, None, "a Page token from a long-lived user token does not expire");
    assert_eq!(page.parent_remote_id.as_deref(), Some("900"));
    assert_eq!(page.profile.display_name.as_deref(), Some("Analytical Engines"));
    assert_eq!(page.metadata["kind"], "page");
    assert_eq!(grants[2].tokens.access_token.expose(), "EAAOtherPageToken");

    let ig = &grants[3];
    assert_eq!(ig.profile.handle.as_deref(), Some("analytical.engines"));
    assert_eq!(ig.tokens.access_token.expose(), "EAAPageToken", "publishes with its Page's token");
    assert_eq!(ig.parent_remote_id.as_deref(), Some("900"));
    assert_eq!(ig.metadata["login"], "facebook");
    assert_eq!(ig.metadata["page_id"], "101");
}

#[tokio::test]
async fn a_user_token_is_extended_and_a_page_token_cannot_be_refreshed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/oauth/access_token"))
        .and(query_param("grant_type", "fb_exchange_token"))
        .and(query_param("fb_exchange_token", "EAAUserToken"))
        .respond_with(ok(fixture("fb_token_long.json")))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let user = account("facebook", "900", "EAAUserToken", &[("kind", "user")]);
    let fresh = fb.refresh(&user).await.unwrap();
    assert_eq!(fresh.access_token.expose(), "EAALongLivedUserToken");
    assert!(fresh.expires_at.is_some());
    assert!(matches!(fb.refresh(&page_account()).await, Err(Error::ReauthRequired { .. })));
}

#[tokio::test]
async fn a_dead_page_token_is_reauth_required_with_the_reason_and_trace() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/feed"))
        .respond_with(ResponseTemplate::new(400).set_body_json(fixture("graph_error_190_460.json")))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let err = publish(fb.as_ref(), &page_account(), &Content::text("hi"), &TargetOptions::none()).await.err();
    match &err {
        Error::ReauthRequired { reason, .. } => {
            assert!(reason.contains("password changed"), "{reason}");
            assert!(reason.contains("A1b2C3d4E5f"), "fbtrace_id kept: {reason}");
        }
        other => panic!("{other:?}"),
    }
    let g = konektly_meta::graph_error(&err).unwrap();
    assert_eq!((g.body.code, g.body.error_subcode), (Some(190), Some(460)));
    assert!(!format!("{err:?}{err}").contains(PAGE_TOKEN), "no token in errors");
}

#[tokio::test]
async fn a_text_post_goes_to_the_feed_and_usage_headers_are_reported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/feed"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(form(&[("message", "Hello, Page"), ("link", "https://example.com/article")]))
        .respond_with(
            ok(json!({"id": "101_2002"}))
                .insert_header("x-app-usage", r#"{"call_count":12,"total_cputime":3,"total_time":5}"#)
                .insert_header(
                    "x-business-use-case-usage",
                    r#"{"101":[{"type":"pages","call_count":96,"total_cputime":10,"total_time":12,"estimated_time_to_regain_access":0}]}"#,
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let content = Content::text("Hello, Page").with_link("https://example.com/article".parse().unwrap());
    let step = publish(fb.as_ref(), &page_account(), &content, &TargetOptions::none()).await;
    let remote = step.published();
    assert_eq!(remote.id, "101_2002");
    assert_eq!(remote.url.unwrap().as_str(), "https://www.facebook.com/101_2002");
    let reports = step.saves.rate_limit_reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].remaining, 88);
    assert_eq!(reports[1].remaining, 4);
    assert_eq!(step.state()["post_id"], "101_2002");
}

#[tokio::test]
async fn native_scheduling_sends_published_false_and_the_time() {
    let server = MockServer::start().await;
    let at = chrono::DateTime::from_timestamp(Utc::now().timestamp() + 86_400, 0).unwrap();
    let ts = at.timestamp().to_string();
    Mock::given(method("POST"))
        .and(path("/v25.0/101/feed"))
        .and(form(&[("message", "Tomorrow"), ("published", "false"), ("scheduled_publish_time", ts.as_str())]))
        .respond_with(ok(json!({"id": "101_3003"})))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let opts = TargetOptions::new(&FacebookOptions { schedule_at: Some(at), ..Default::default() }).unwrap();
    assert!(fb.validate(&Content::text("Tomorrow"), &opts).is_empty());
    let step = publish(fb.as_ref(), &page_account(), &Content::text("Tomorrow"), &opts).await;
    assert_eq!(step.published().scheduled_for, Some(at));
}

#[tokio::test]
async fn a_single_photo_is_uploaded_as_bytes_with_its_message() {
    let server = MockServer::start().await;
    let jpeg = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00fake-jpeg-bytes".to_vec();
    Mock::given(method("POST"))
        .and(path("/v25.0/101/photos"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(multipart_field("message", b"A photo"))
        .and(multipart_field("source", &jpeg))
        .respond_with(ok(json!({"id": "4004", "post_id": "101_4005"})))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let content = Content::text("A photo").with_media(Media::from_bytes(jpeg.clone()));
    let step = publish(fb.as_ref(), &page_account(), &content, &TargetOptions::none()).await;
    assert_eq!(step.published().id, "101_4005");
}

#[tokio::test]
async fn several_photos_are_uploaded_unpublished_then_attached_to_one_post() {
    let server = MockServer::start().await;
    for (i, id) in ["5001", "5002"].iter().enumerate() {
        Mock::given(method("POST"))
            .and(path("/v25.0/101/photos"))
            .and(form(&[("published", "false"), ("url", &format!("https://cdn.example/{i}.jpg"))]))
            .respond_with(ok(json!({ "id": id })))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v25.0/101/feed"))
        .and(form(&[
            ("message", "Two photos"),
            ("attached_media[0]", r#"{"media_fbid":"5001"}"#),
            ("attached_media[1]", r#"{"media_fbid":"5002"}"#),
        ]))
        .respond_with(ok(json!({"id": "101_5003"})))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let content = (0..2).fold(Content::text("Two photos"), |c, i| {
        c.with_media(Media::from_url(format!("https://cdn.example/{i}.jpg").parse().unwrap(), mime_jpeg()))
    });
    let step = publish(fb.as_ref(), &page_account(), &content, &TargetOptions::none()).await;
    assert_eq!(step.published().id, "101_5003");
    let saved: Vec<serde_json::Value> = step.saves.saved().iter().map(|c| c.as_json()["photo_ids"].clone()).collect();
    assert_eq!(saved[0], json!(["5001"]), "each photo id is checkpointed as it is uploaded");
    assert_eq!(saved[1], json!(["5001", "5002"]));
}

fn mime_jpeg() -> konektly_core::mime::Mime {
    "image/jpeg".parse().unwrap()
}

fn mp4_bytes(n: usize) -> Media {
    let mut m = Media::from_bytes((0..n).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
    m.mime = "video/mp4".parse().unwrap();
    m
}

#[tokio::test]
async fn a_video_is_uploaded_in_the_chunks_the_server_names_then_polled() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(form(&[("upload_phase", "start"), ("file_size", "10")]))
        .respond_with(ok(fixture("fb_video_start.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(multipart_field("upload_phase", b"transfer"))
        .and(multipart_field("upload_session_id", b"7770001"))
        .and(multipart_field("start_offset", b"0"))
        .and(multipart_field("video_file_chunk", b"abcd"))
        .respond_with(ok(json!({"start_offset": "4", "end_offset": "10"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(multipart_field("start_offset", b"4"))
        .and(multipart_field("video_file_chunk", b"efghij"))
        .respond_with(ok(json!({"start_offset": "10", "end_offset": "10"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(form(&[
            ("upload_phase", "finish"),
            ("upload_session_id", "7770001"),
            ("description", "Launch video"),
            ("title", "Launch"),
        ]))
        .respond_with(ok(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/5550001"))
        .and(query_param("fields", "status"))
        .respond_with(ok(fixture("fb_video_status_processing.json")))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/5550001"))
        .respond_with(ok(fixture("fb_video_status_ready.json")))
        .expect(1)
        .mount(&server)
        .await;

    let fb = meta(&server).facebook;
    let content = Content::text("Launch video").with_media(mp4_bytes(10));
    let opts = TargetOptions::new(&FacebookOptions { title: Some("Launch".into()), ..Default::default() }).unwrap();
    let first =
        step(fb.as_ref(), Op::Publish, &page_account(), &content, &opts, Checkpoint::default(), None, Utc::now()).await;
    assert!(first.is_processing());
    let offsets: Vec<u64> =
        first.saves.saved().iter().filter_map(|c| c.as_json()["video"]["start_offset"].as_u64()).collect();
    assert_eq!(offsets, vec![0, 4, 10, 10, 10], "offsets are checkpointed after each chunk");
    let done =
        step(fb.as_ref(), Op::Poll, &page_account(), &content, &opts, first.checkpoint.clone(), None, Utc::now()).await;
    let remote = done.published();
    assert_eq!(remote.id, "5550001");
    assert_eq!(remote.url.unwrap().as_str(), "https://www.facebook.com/101/videos/5550001");
}

#[tokio::test]
async fn a_video_upload_resumes_from_its_checkpointed_offset() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(multipart_field("start_offset", b"4"))
        .and(multipart_field("video_file_chunk", b"efghij"))
        .respond_with(ok(json!({"start_offset": "10", "end_offset": "10"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(form(&[("upload_phase", "finish"), ("upload_session_id", "7770001"), ("description", "v")]))
        .respond_with(ok(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/5550001"))
        .respond_with(ok(fixture("fb_video_status_ready.json")))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let checkpoint = Checkpoint::from_json(json!({
        "video": {"video_id": "5550001", "session_id": "7770001", "start_offset": 4, "end_offset": 10}
    }));
    let content = Content::text("v").with_media(mp4_bytes(10));
    let s =
        step(fb.as_ref(), Op::Publish, &page_account(), &content, &TargetOptions::none(), checkpoint, None, Utc::now())
            .await;
    assert_eq!(s.published().id, "5550001");
    let paths = calls(&server).await;
    assert!(!paths.is_empty() && paths.iter().filter(|p| p.as_str() == "POST /v25.0/101/videos").count() == 2);
}

#[tokio::test]
async fn a_reel_starts_uploads_to_rupload_and_finishes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/video_reels"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(form(&[("upload_phase", "start")]))
        .respond_with(ok(
            json!({"video_id": "8880001", "upload_url": "https://rupload.facebook.com/video-upload/v25.0/8880001"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/video-upload/v25.0/8880001"))
        .and(header("authorization", &*format!("OAuth {PAGE_TOKEN}")))
        .and(header("offset", "0"))
        .and(header("file_size", "12"))
        .and(body_bytes(b"abcdefghijkl".to_vec()))
        .respond_with(ok(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/video_reels"))
        .and(form(&[
            ("upload_phase", "finish"),
            ("video_id", "8880001"),
            ("video_state", "PUBLISHED"),
            ("description", "My reel"),
        ]))
        .respond_with(ok(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/8880001"))
        .and(query_param("fields", "status"))
        .respond_with(ok(fixture("fb_video_status_ready.json")))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let opts = TargetOptions::new(&FacebookOptions { kind: FacebookPostKind::Reel, ..Default::default() }).unwrap();
    let content = Content::text("My reel").with_media(mp4_bytes(12));
    let s = publish(fb.as_ref(), &page_account(), &content, &opts).await;
    let remote = s.published();
    assert_eq!(remote.id, "8880001");
    assert_eq!(remote.url.unwrap().as_str(), "https://www.facebook.com/reel/8880001");
}

#[tokio::test]
async fn a_throttled_page_is_rate_limited_until_meta_says() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/feed"))
        .respond_with(ResponseTemplate::new(400).set_body_json(fixture("graph_error_80001.json")).insert_header(
            "x-business-use-case-usage",
            r#"{"101":[{"type":"pages","call_count":100,"total_cputime":4,"total_time":5,"estimated_time_to_regain_access":12}]}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let before = Utc::now();
    let s = publish(fb.as_ref(), &page_account(), &Content::text("hi"), &TargetOptions::none()).await;
    let reports = s.saves.rate_limit_reports();
    assert_eq!(reports.len(), 1, "the usage header of an error is reported too");
    assert_eq!(reports[0].remaining, 0);
    match s.err() {
        Error::RateLimited { retry_at: Some(at), message, .. } => {
            assert!(at - before >= chrono::Duration::minutes(12) && at - before < chrono::Duration::minutes(13));
            assert!(message.contains("AxYzThrottle"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn delete_removes_the_post() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/v25.0/101_2002"))
        .and(query_param("access_token", PAGE_TOKEN))
        .respond_with(ok(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let post = RemotePost::new(PlatformId::new("facebook"), "101_2002", None);
    fb.delete(&page_account(), &post).await.unwrap();
}

/// Graph's `created_time` for a moment `secs` seconds from now.
fn graph_time(secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(secs)).format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

/// A checkpoint saying the create was sent `secs_ago` seconds ago and its answer lost.
fn lost_create(secs_ago: i64) -> Checkpoint {
    Checkpoint::from_json(
        json!({"create_sent": true, "create_sent_at": (Utc::now() - chrono::Duration::seconds(secs_ago)).to_rfc3339()}),
    )
}

#[tokio::test]
async fn reconcile_finds_a_post_whose_answer_was_lost() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/101/feed"))
        .and(query_param("fields", "id,message,created_time"))
        .respond_with(ok(json!({"data": [
            {"id": "101_1", "message": "something else", "created_time": graph_time(-5)},
            {"id": "101_7", "message": "Lost answer", "created_time": graph_time(-9)}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let content = Content::text("Lost answer");
    let sent = lost_create(10);
    let s = step(fb.as_ref(), Op::Reconcile, &page_account(), &content, &TargetOptions::none(), sent, None, Utc::now())
        .await;
    assert_eq!(s.published().id, "101_7");
    // Nothing was sent: nothing to look for, publishing is safe.
    let s = step(
        fb.as_ref(),
        Op::Reconcile,
        &page_account(),
        &content,
        &TargetOptions::none(),
        Checkpoint::default(),
        None,
        Utc::now(),
    )
    .await;
    assert!(matches!(s.result, Ok(Outcome::Reconcile(konektly_core::Reconciliation::NotFound))));
}

#[tokio::test]
async fn a_user_account_cannot_be_published_to() {
    let server = MockServer::start().await;
    let fb = meta(&server).facebook;
    let user = account("facebook", "900", "EAAUser", &[("kind", "user")]);
    let s = publish(fb.as_ref(), &user, &Content::text("hi"), &TargetOptions::none()).await;
    assert!(matches!(s.err(), Error::NotSupported(_)));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let server = MockServer::start().await;
    let b = builder(&server);
    let m = b.clone().build().unwrap();
    for text in [format!("{b:?}"), format!("{:?}", m.facebook), format!("{:?}", m.instagram), format!("{m:?}")] {
        assert!(!text.contains(APP_SECRET) && !text.contains(IG_APP_SECRET), "{text}");
    }
}

#[test]
fn build_fails_early_on_missing_or_wrong_configuration() {
    assert!(matches!(MetaBuilder::new().build(), Err(Error::Config(_))));
    assert!(matches!(MetaBuilder::new().with_app("1", "s").with_base_url("not a url").build(), Err(Error::Config(_))));
    assert!(matches!(MetaBuilder::new().with_app("1", "s").with_graph_version("25").build(), Err(Error::Config(_))));
    let m = MetaBuilder::new().with_app("1", "s").build().unwrap();
    let err = m.instagram.authorization_request(&"https://a.example/cb".parse().unwrap()).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "Instagram Login needs its own app");
}

#[tokio::test]
async fn a_video_at_a_public_url_is_fetched_by_facebook() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(form(&[("file_url", "https://cdn.example/launch.mp4"), ("description", "From a URL")]))
        .respond_with(ok(json!({"id": "5550001"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/5550001"))
        .respond_with(ok(fixture("fb_video_status_processing.json")))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let media = Media::from_url("https://cdn.example/launch.mp4".parse().unwrap(), "video/mp4".parse().unwrap());
    let s =
        publish(fb.as_ref(), &page_account(), &Content::text("From a URL").with_media(media), &TargetOptions::none())
            .await;
    assert!(s.is_processing());
    assert_eq!(s.state()["video"]["video_id"], "5550001");
}

#[tokio::test]
async fn a_page_profile_is_read_with_its_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/101"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(query_param("fields", "id,name,picture"))
        .respond_with(ok(json!({"id": "101", "name": "Analytical Engines"})))
        .expect(1)
        .mount(&server)
        .await;
    let p = meta(&server).facebook.profile(&page_account()).await.unwrap();
    assert_eq!(p.display_name.as_deref(), Some("Analytical Engines"));
}

/// Runs in a child process (environment variables cannot be set safely in a threaded test).
#[test]
fn from_env_reads_only_konektly_meta_variables() {
    if std::env::var("KONEKTLY_META_TEST_CHILD").is_ok() {
        let meta = MetaBuilder::from_env().build().unwrap();
        let req = meta.facebook.authorization_request(&"https://a.example/cb".parse().unwrap()).unwrap();
        assert!(req.url.as_str().starts_with("http://127.0.0.1:9/v26.0/dialog/oauth?client_id=env-app"), "{}", req.url);
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], "pages_show_list,pages_manage_posts");
        let ig = meta.instagram.authorization_request(&"https://a.example/cb".parse().unwrap()).unwrap();
        assert!(ig.url.as_str().starts_with("http://127.0.0.1:8/oauth/authorize?client_id=env-ig"), "{}", ig.url);
        assert!(!format!("{:?}", MetaBuilder::from_env()).contains("env-secret"));
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "facebook::from_env_reads_only_konektly_meta_variables", "--nocapture"])
        .env("KONEKTLY_META_TEST_CHILD", "1")
        .env("KONEKTLY_META_APP_ID", "env-app")
        .env("KONEKTLY_META_APP_SECRET", "env-secret")
        .env("KONEKTLY_META_INSTAGRAM_APP_ID", "env-ig")
        .env("KONEKTLY_META_INSTAGRAM_APP_SECRET", "env-ig-secret")
        .env("KONEKTLY_META_SCOPES", "pages_show_list,pages_manage_posts")
        .env("KONEKTLY_META_GRAPH_VERSION", "v26.0")
        .env("KONEKTLY_META_BASE_URL", "http://127.0.0.1:9")
        .env("KONEKTLY_META_INSTAGRAM_BASE_URL", "http://127.0.0.1:8")
        .env("META_APP_ID", "not-ours")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn revoking_a_user_removes_the_app_and_a_page_is_only_forgotten() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/v25.0/me/permissions"))
        .and(query_param("access_token", "EAAUser"))
        .respond_with(ok(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let m = meta(&server);
    m.facebook.revoke(&account("facebook", "900", "EAAUser", &[("kind", "user")])).await.unwrap();
    m.facebook.revoke(&page_account()).await.unwrap();
    assert!(matches!(m.instagram.revoke(&ig_login_account()).await, Err(Error::NotSupported(_))));
    assert!(matches!(
        m.instagram.delete(&ig_login_account(), &RemotePost::new(PlatformId::new("instagram"), "m", None)).await,
        Err(Error::NotSupported(_))
    ));
}

#[tokio::test]
async fn a_chunk_at_the_wrong_offset_continues_from_the_offsets_meta_names() {
    let server = MockServer::start().await;
    // The first chunk already landed (its answer was lost): Meta names where to continue.
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(multipart_field("start_offset", b"0"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "There was a problem uploading your video file. Please try again with another file.",
            "type": "OAuthException", "code": 6000, "error_subcode": 1363037, "is_transient": false,
            "error_data": {"start_offset": "4", "end_offset": "10"}, "fbtrace_id": "AOffset1"}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(multipart_field("start_offset", b"4"))
        .and(multipart_field("video_file_chunk", b"efghij"))
        .respond_with(ok(json!({"start_offset": "10", "end_offset": "10"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/101/videos"))
        .and(form(&[("upload_phase", "finish"), ("upload_session_id", "7770001"), ("description", "v")]))
        .respond_with(ok(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/5550001"))
        .respond_with(ok(fixture("fb_video_status_ready.json")))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let checkpoint = Checkpoint::from_json(json!({
        "video": {"video_id": "5550001", "session_id": "7770001", "start_offset": 0, "end_offset": 4}
    }));
    let content = Content::text("v").with_media(mp4_bytes(10));
    let s =
        step(fb.as_ref(), Op::Publish, &page_account(), &content, &TargetOptions::none(), checkpoint, None, Utc::now())
            .await;
    assert_eq!(s.published().id, "5550001");
    assert_eq!(s.saves.saved()[0].as_json()["video"]["start_offset"], 4, "the named offsets are checkpointed");
}

/// Reconciles a text post whose create was sent `secs_ago` seconds ago and whose answer was lost.
async fn reconcile_lost(fb: &dyn konektly_core::Platform, text: &str, secs_ago: i64) -> Step {
    step(
        fb,
        Op::Reconcile,
        &page_account(),
        &Content::text(text),
        &TargetOptions::none(),
        lost_create(secs_ago),
        None,
        Utc::now(),
    )
    .await
}

/// A page of a busy Page's feed: `n` posts by others (some with our text, but created long
/// before our create), newest first, with a cursor to the next page when `next` is given.
fn busy_page(n: usize, from_secs: i64, next: Option<&str>) -> serde_json::Value {
    let data: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({"id": format!("101_9{i:03}"), "message": format!("someone else #{i}"),
            "created_time": graph_time(from_secs - i as i64)})
        })
        .collect();
    let mut paging = json!({"cursors": {"before": "b", "after": next.unwrap_or("end")}});
    if let Some(n) = next {
        paging["next"] = json!(format!("https://graph.facebook.com/v25.0/101/feed?after={n}"));
    }
    json!({"data": data, "paging": paging})
}

#[tokio::test]
async fn reconcile_on_a_busy_page_reads_every_page_of_the_window_and_finds_exactly_ours() {
    let server = MockServer::start().await;
    // 200 posts by others came after ours; ours is on the third page.
    Mock::given(method("GET"))
        .and(path("/v25.0/101/feed"))
        .and(wiremock::matchers::query_param_is_missing("after"))
        .respond_with(ok(busy_page(100, -1, Some("p2"))))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/101/feed"))
        .and(query_param("after", "p2"))
        .respond_with(ok(busy_page(100, -101, Some("p3"))))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/101/feed"))
        .and(query_param("after", "p3"))
        .respond_with(ok(json!({"data": [
            {"id": "101_42", "message": "Busy day", "created_time": graph_time(-230)},
            // The same text, posted by someone a day ago: outside the window, never adopted.
            {"id": "101_1", "message": "Busy day", "created_time": graph_time(-86_400)}
        ], "paging": {"cursors": {"before": "b", "after": "z"}}})))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let s = reconcile_lost(fb.as_ref(), "Busy day", 231).await;
    assert_eq!(s.published().id, "101_42");
    let asked: Vec<String> =
        server.received_requests().await.unwrap().iter().map(|r| r.url.query().unwrap_or("").to_owned()).collect();
    assert!(asked.iter().all(|q| q.contains("since=") && q.contains("until=") && q.contains("limit=100")), "{asked:?}");
}

#[tokio::test]
async fn reconcile_that_cannot_read_the_whole_window_says_unknown_never_absent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/101/feed"))
        .respond_with(ok(busy_page(100, -1, Some("more"))))
        .mount(&server)
        .await;
    let fb = builder(&server).with_reconcile_pages(3).build().unwrap().facebook;
    let s = reconcile_lost(fb.as_ref(), "Lost in the crowd", 30).await;
    assert!(matches!(s.err(), Error::UnknownOutcome { .. }));
    assert_eq!(server.received_requests().await.unwrap().len(), 3, "bounded by the page budget");
}

#[tokio::test]
async fn reconcile_adopts_no_post_when_two_with_our_text_were_created_around_the_create() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/101/feed"))
        .respond_with(ok(json!({"data": [
            {"id": "101_8", "message": "Same words", "created_time": graph_time(-3)},
            {"id": "101_7", "message": "Same words", "created_time": graph_time(-9)}
        ]})))
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let s = reconcile_lost(fb.as_ref(), "Same words", 10).await;
    let e = s.err();
    assert!(matches!(e, Error::UnknownOutcome { .. }), "{e:?}");
}

fn duplicate_status() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "(#506) Duplicate status message",
        "type": "OAuthException", "code": 506, "fbtrace_id": "A1"}}))
}

#[tokio::test]
async fn a_duplicate_refusal_after_our_own_lost_create_is_reconciled_not_failed() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v25.0/101/feed")).respond_with(duplicate_status()).mount(&server).await;
    let fb = meta(&server).facebook;
    let content = Content::text("Said once");
    // This target's earlier create was sent and its answer lost: the refusal proves it landed.
    let s = step(
        fb.as_ref(),
        Op::Publish,
        &page_account(),
        &content,
        &TargetOptions::none(),
        lost_create(20),
        None,
        Utc::now(),
    )
    .await;
    assert!(matches!(s.err(), Error::UnknownOutcome { .. }));
    // No earlier create: a clear refusal, nothing adopted.
    let s = publish(fb.as_ref(), &page_account(), &content, &TargetOptions::none()).await;
    match s.err() {
        Error::Rejected { code, .. } => assert_eq!(code.as_deref(), Some("duplicate")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn schedules_are_checked_against_the_clock_given_through_the_platform_trait() {
    let server = MockServer::start().await;
    let fb: std::sync::Arc<dyn konektly_core::Platform> = meta(&server).facebook;
    let now = chrono::Utc::now() + chrono::Duration::days(100);
    let o = TargetOptions::new(&konektly_meta::FacebookOptions {
        schedule_at: Some(now + chrono::Duration::days(2)),
        ..Default::default()
    })
    .unwrap();
    let content = Content::text("later");
    assert!(fb.validate_at(&content, &o, now).is_empty());
    let codes: Vec<String> = fb.validate(&content, &o).into_iter().map(|v| v.code).collect();
    assert_eq!(codes, vec!["schedule_out_of_window"], "validate is validate_at now");
}
