//! Offline validation through the adapter: invalid posts are refused before any call.

mod common;
use common::*;
use konektly_core::{Checkpoint, Content, Error, TargetOptions};
use wiremock::MockServer;

#[tokio::test]
async fn invalid_posts_are_refused_before_any_call() {
    let server = MockServer::start().await;
    let content = Content::text("x".repeat(2201)).with_media(video(10));
    let r = run(
        &platform(&server),
        &account(),
        &content,
        &TargetOptions::none(),
        Checkpoint::default(),
        None,
        Call::Publish,
    )
    .await;
    match r.result {
        Err(Error::InvalidPost(v)) => {
            let codes: Vec<&str> = v.iter().map(|v| v.code.as_str()).collect();
            assert!(codes.contains(&"text_too_long") && codes.contains(&"privacy_level_required"), "{codes:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}
