//! konektly-core's platform conformance suite, against a mock X.

mod common;
use common::*;
use konektly_core::Content;
use konektly_core::testing::{PlatformCase, platform_conformance};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer};

#[tokio::test]
async fn platform_conformance_suite() {
    let server = MockServer::start().await;
    let x = konektly_twitter::XBuilder::new()
        .with_client_id("client-abc")
        .with_client_secret("conformance-secret-value")
        .with_base_url(server.uri())
        .build()
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json!({"text": "Hello from the conformance suite"})))
        .respond_with(created("1900000000000000001", "Hello from the conformance suite"))
        .mount(&server)
        .await;
    let mut case = PlatformCase::new(account(), Content::text("Hello from the conformance suite"));
    case.secrets = vec!["conformance-secret-value".into()];
    platform_conformance(&x, case).await;
}
