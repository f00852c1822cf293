//! Offline validation through the adapter: an invalid post is refused before any request.

mod common;
use common::*;
use konektly_core::{Content, Error, TargetOptions};
use wiremock::MockServer;

#[tokio::test]
async fn an_invalid_post_is_refused_before_any_request() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let run = publish(&x, &Content::text("故".repeat(141)), &TargetOptions::none()).await;
    assert!(matches!(&run.result, Err(Error::InvalidPost(v)) if v[0].code == "text_too_long"));
    assert!(server.received_requests().await.unwrap().is_empty());
}
