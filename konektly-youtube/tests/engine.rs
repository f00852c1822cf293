//! YouTube inside the konektly engine: connect a channel, publish a video whose access token
//! expires mid-upload (the engine refreshes, the upload resumes from its checkpoint), and let a
//! worker poll it to published.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use konektly_core::{Content, Konektly, MemoryScheduler, MemoryTokenStore, OwnerId, Post, Target, TargetState};
use konektly_youtube::YouTubeOptions;
use url::Url;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const UPLOAD_PATH: &str = "/upload/youtube/v3/videos";

#[tokio::test]
async fn connect_publish_through_a_token_refresh_mid_upload_and_poll_to_published() {
    let server = MockServer::start().await;
    let youtube = Arc::new(builder(&server.uri()).with_poll_interval(Duration::ZERO).build().unwrap());
    let engine = Konektly::builder()
        .platform(youtube)
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .build()
        .unwrap();

    // Connect.
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code_verifier="))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("token.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/channels"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("channels.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let owner = OwnerId::new("owner-1");
    let start =
        engine.connect(&owner, &"youtube".into(), &Url::parse("https://app.example/callback").unwrap()).await.unwrap();
    assert!(start.url.as_str().starts_with(&format!("{}/o/oauth2/v2/auth?", server.uri())));
    let accounts = engine.complete_connect(&start.state, "4/0Ab-the-code").await.unwrap();
    assert_eq!(accounts[0].remote_id, "UC_x5XG1OV2P6uZZ5FSM9Ttw");

    // Publish: the first access token is refused at the second chunk.
    let first = "Bearer ya29.first-access-token";
    let second = "Bearer ya29.refreshed-access-token";
    let session = format!("{}{UPLOAD_PATH}?uploadType=resumable&upload_id=e1", server.uri());
    Mock::given(method("POST"))
        .and(path(UPLOAD_PATH))
        .and(header("authorization", first))
        .respond_with(ResponseTemplate::new(200).insert_header("Location", session.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let chunk = |range: &'static str, token: &'static str, resp: ResponseTemplate| {
        Mock::given(method("PUT"))
            .and(path(UPLOAD_PATH))
            .and(query_param("upload_id", "e1"))
            .and(header("content-range", range))
            .and(header("authorization", token))
            .respond_with(resp)
            .expect(1)
    };
    let range = |last: u64| ResponseTemplate::new(308).insert_header("Range", format!("bytes=0-{last}").as_str());
    chunk("bytes 0-262143/600000", first, range(262_143)).mount(&server).await;
    chunk(
        "bytes 262144-524287/600000",
        first,
        ResponseTemplate::new(401).set_body_raw(fixture("error_auth.json"), "application/json"),
    )
    .mount(&server)
    .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(form_is(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//first-refresh-token"),
            ("client_id", "1234.apps.googleusercontent.com"),
            ("client_secret", CLIENT_SECRET),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("token_refreshed.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    chunk("bytes */600000", second, range(262_143)).mount(&server).await;
    chunk("bytes 262144-524287/600000", second, range(524_287)).mount(&server).await;
    chunk(
        "bytes 524288-599999/600000",
        second,
        ResponseTemplate::new(201).set_body_raw(fixture("video_inserted.json"), "application/json"),
    )
    .mount(&server)
    .await;

    let options = YouTubeOptions { title: Some("Release notes".into()), ..YouTubeOptions::default() };
    let post = Post::new(owner, Content::text("What we shipped this week.").with_media(video(600_000)))
        .to(Target::new(accounts[0].id).with_options(&options).unwrap());
    let targets = engine.publish_now(&post).await.unwrap();
    assert_eq!(targets[0].state, TargetState::Processing, "{:?}", targets[0].last_error);

    // The refreshed token is stored beside the original refresh token (Google sent none).
    let account = engine.account(accounts[0].id).await.unwrap();
    assert_eq!(account.tokens.access_token.expose(), "ya29.refreshed-access-token");
    assert_eq!(account.tokens.refresh_token.as_ref().unwrap().expose(), "1//first-refresh-token");

    // A worker polls it to published.
    Mock::given(method("GET"))
        .and(path("/youtube/v3/videos"))
        .and(query_param("id", "dQw4w9WgXcQ"))
        .and(header("authorization", second))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("videos_processed.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(engine.worker().run_once().await.unwrap(), 1);
    let targets = engine.status(post.id).await.unwrap();
    let TargetState::Published { remote } = &targets[0].state else { panic!("published: {:?}", targets[0]) };
    assert_eq!(remote.id, "dQw4w9WgXcQ");
    assert_eq!(remote.url.as_ref().unwrap().as_str(), "https://www.youtube.com/watch?v=dQw4w9WgXcQ");
}

#[tokio::test]
async fn a_repeat_consent_without_a_refresh_token_keeps_the_stored_one() {
    let server = MockServer::start().await;
    let engine = Konektly::builder()
        .platform(Arc::new(platform(&server.uri())))
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .build()
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("token.json"), "application/json"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    // The second consent answers without `refresh_token`, as Google may.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("token_refreshed.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/channels"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("channels.json"), "application/json"))
        .expect(2)
        .mount(&server)
        .await;
    let owner = OwnerId::new("owner-1");
    let redirect = Url::parse("https://app.example/callback").unwrap();
    let first = engine.connect(&owner, &"youtube".into(), &redirect).await.unwrap();
    let a = engine.complete_connect(&first.state, "code-1").await.unwrap();
    let again = engine.connect(&owner, &"youtube".into(), &redirect).await.unwrap();
    let b = engine.complete_connect(&again.state, "code-2").await.unwrap();
    assert_eq!(a[0].id, b[0].id, "the same channel is the same account");
    let stored = engine.account(a[0].id).await.unwrap();
    assert_eq!(stored.tokens.access_token.expose(), "ya29.refreshed-access-token");
    assert_eq!(stored.tokens.refresh_token.as_ref().unwrap().expose(), "1//first-refresh-token");
}
