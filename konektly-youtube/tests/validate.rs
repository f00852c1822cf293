//! Offline validation through the adapter: an invalid post sends nothing.

mod common;
use chrono::Utc;
use common::*;
use konektly_core::{Checkpoint, Error, Platform};
use konektly_youtube::{Privacy, YouTubeOptions};
use wiremock::MockServer;

#[tokio::test]
async fn an_invalid_post_sends_nothing() {
    let server = MockServer::start().await;
    let a = account();
    let c = content(1000);
    let bad = YouTubeOptions {
        title: Some("<b>bold</b>".into()),
        privacy: Some(Privacy::Public),
        publish_at: Some(Utc::now() + chrono::Duration::days(1)),
        ..YouTubeOptions::default()
    };
    let (out, _, _) =
        with_ctx(&a, &c, &opts(&bad), Checkpoint::default(), async |ctx| platform(&server.uri()).publish(ctx).await)
            .await;
    let Err(Error::InvalidPost(v)) = out else { panic!("expected InvalidPost") };
    let codes: Vec<_> = v.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes, vec!["title_invalid_characters", "publish_at_requires_private"]);
    assert!(server.received_requests().await.unwrap().is_empty());
}
