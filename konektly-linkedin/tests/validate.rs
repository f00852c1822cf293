//! Offline validation and the little-text escaping: an invalid post is refused before any
//! request, and a user's reserved characters reach LinkedIn escaped.

mod common;
use common::*;
use konektly_core::{Checkpoint, Content, Error, Platform, TargetOptions, ViolationCode};
use konektly_linkedin::text::{escape, unescape};
use konektly_linkedin::{LinkedInBuilder, MAX_COMMENTARY};
use wiremock::MockServer;

#[test]
fn reserved_characters_are_escaped_and_urls_and_hashtags_kept() {
    assert_eq!(escape("Hello (world)!"), r"Hello \(world\)!");
    assert_eq!(escape("a|b{c}d@e[f]g<h>i*j_k~l\\m"), r"a\|b\{c\}d\@e\[f\]g\<h\>i\*j\_k\~l\\m");
    assert_eq!(escape("#rust is fun, C# too"), r"#rust is fun, C\# too");
    assert_eq!(escape("read https://ex.com/a_b?utm_source=x_y"), "read https://ex.com/a_b?utm_source=x_y");
    assert_eq!(unescape(&escape("(é) 😀 _x_")), "(é) 😀 _x_");
}

#[test]
fn the_commentary_limit_is_three_thousand_characters() {
    let p = LinkedInBuilder::new().with_client_id("a").with_client_secret("b").build().unwrap();
    let ok = Content::text("é".repeat(MAX_COMMENTARY));
    assert!(p.validate(&ok, &TargetOptions::none()).is_empty());
    let over = Content::text("😀".repeat(MAX_COMMENTARY + 1));
    let v = p.validate(&over, &TargetOptions::none());
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].code, ViolationCode::TextTooLong);
    assert!(
        p.validate(&Content::text("  "), &TargetOptions::none()).iter().any(|v| v.code == ViolationCode::EmptyPost)
    );
    let bad_opts = TargetOptions::from_json(serde_json::json!({"visibility": "FRIENDS"}));
    assert!(!p.validate(&Content::text("hi"), &bad_opts).is_empty());
}

#[tokio::test]
async fn an_invalid_post_is_refused_before_any_request() {
    let server = MockServer::start().await;
    let p = platform(&server);
    let content = Content::text("x".repeat(MAX_COMMENTARY + 1));
    let r = run(&p, &account(), &content, &TargetOptions::none(), Checkpoint::default()).await;
    assert!(matches!(r.result, Err(Error::InvalidPost(_))), "{:?}", r.result);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn the_builder_refuses_a_bad_version_and_hides_the_secret() {
    let e = LinkedInBuilder::new().with_client_id("a").with_client_secret("b").with_version("2026-03").build();
    assert!(matches!(e, Err(Error::Config(_))));
    let p = LinkedInBuilder::new().with_client_id("a").with_client_secret("s3cr3t").build().unwrap();
    assert!(!format!("{p:?}").contains("s3cr3t"));
    assert!(matches!(LinkedInBuilder::new().with_client_id("a").build(), Err(Error::Config(_))));
}
