//! konektly-core's platform conformance suite, for both platforms.

use konektly_core::testing::{PlatformCase, platform_conformance};
use konektly_core::{Content, Media};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;
use common::*;

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn facebook_pages_pass_the_platform_conformance_suite() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/feed")))
        .and(form(&[("message", "Hello from konektly")]))
        .respond_with(ok(json!({"id": "101_9001"})))
        .expect(1)
        .mount(&server)
        .await;
    let fb = meta(&server).facebook;
    let mut case = PlatformCase::new(page_account(), Content::text("Hello from konektly"));
    case.secrets = vec![APP_SECRET.into(), IG_APP_SECRET.into()];
    platform_conformance(fb.as_ref(), case).await;
}

#[tokio::test]
async fn instagram_passes_the_platform_conformance_suite() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{IG_ID}/content_publishing_limit")))
        .respond_with(ok(fixture("ig_publishing_limit.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(form(&[("image_url", "https://cdn.example/public.jpg"), ("caption", "Hello from konektly")]))
        .respond_with(ok(json!({"id": "conf-c"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/conf-c"))
        .respond_with(ok(json!({"status_code": "FINISHED", "id": "conf-c"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media_publish")))
        .and(form(&[("creation_id", "conf-c")]))
        .respond_with(ok(json!({"id": "conf-m"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/conf-m"))
        .respond_with(ok(json!({"id": "conf-m", "permalink": "https://www.instagram.com/p/conf/"})))
        .mount(&server)
        .await;
    let ig = meta(&server).instagram;
    // Media already at a public URL needs no MediaHost (the suite passes none).
    let media = Media::from_url("https://cdn.example/public.jpg".parse().unwrap(), "image/jpeg".parse().unwrap());
    let mut case = PlatformCase::new(ig_fb_account(), Content::text("Hello from konektly").with_media(media));
    case.secrets = vec![APP_SECRET.into(), IG_APP_SECRET.into()];
    platform_conformance(ig.as_ref(), case).await;
}
