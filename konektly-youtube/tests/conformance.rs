//! konektly-core's shared platform rules, run against YouTube and a mock of its API.

mod common;

use common::*;
use konektly_core::testing::{PlatformCase, platform_conformance};
use konektly_core::{Content, TargetOptions};
use konektly_youtube::YouTubeOptions;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn youtube_passes_the_platform_conformance_suite() {
    let server = MockServer::start().await;
    let upload = format!("{}/upload/youtube/v3/videos?uploadType=resumable&upload_id=conf", server.uri());
    Mock::given(method("POST"))
        .and(path("/upload/youtube/v3/videos"))
        .and(query_param("uploadType", "resumable"))
        .respond_with(ResponseTemplate::new(200).insert_header("Location", upload.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/youtube/v3/videos"))
        .and(query_param("upload_id", "conf"))
        .and(header("content-range", "bytes 0-4095/4096"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(fixture("video_inserted.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/videos"))
        .and(query_param("id", "dQw4w9WgXcQ"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("videos_processed.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;

    let platform = platform(&server.uri());
    let mut case = PlatformCase::new(account(), Content::text("A description.").with_media(video(4096)));
    case.options =
        TargetOptions::new(&YouTubeOptions { title: Some("Conformance".into()), ..YouTubeOptions::default() }).unwrap();
    case.secrets = vec![CLIENT_SECRET.into()];
    platform_conformance(&platform, case).await;
}
