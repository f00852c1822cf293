//! konektly-core's platform conformance suite, against a mock TikTok.

mod common;
use common::*;
use konektly_core::Content;
use konektly_core::testing::{PlatformCase, platform_conformance};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn the_platform_passes_core_conformance() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/creator_info/query/"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("creator_info.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/video/init/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture_with(
                "video_init.json",
                &[("upload_url", &format!("{}/upload/v1", server.uri()))],
            )),
        )
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/v1"))
        .and(header("content-range", "bytes 0-999/1000"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/post/publish/status/fetch/"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("status_complete.json")))
        .mount(&server)
        .await;
    let p = platform(&server);
    let mut case = PlatformCase::new(account(), Content::text("hello").with_media(video(1000)));
    case.options = options(public());
    case.secrets = vec![CLIENT_SECRET.into()];
    case.max_polls = 3;
    platform_conformance(&p, case).await;
}
