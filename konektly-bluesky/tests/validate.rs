//! Offline validation and text rules: graphemes as the lexicon counts them, facets at exact
//! UTF-8 byte offsets, and invalid posts refused before any request.

mod common;
use common::*;
use konektly_bluesky::richtext::{Feature, detect, graphemes};
use konektly_core::{Checkpoint, Content, Error, Platform, TargetOptions, ThreadItem};
use wiremock::MockServer;

#[test]
fn graphemes_count_emoji_with_modifiers_and_joiners_as_one() {
    assert_eq!(graphemes("hello"), 5);
    // Family (four people joined by ZWJ), a skin-toned thumb, a flag: three graphemes.
    let s = "👨‍👩‍👧‍👦👍🏽🇫🇷";
    assert_eq!(graphemes(s), 3);
    assert_eq!(s.chars().count(), 11);
    assert_eq!(s.len(), 41);
    // "é" as e + combining accent is one grapheme of two chars.
    assert_eq!(graphemes("e\u{301}"), 1);
}

#[test]
fn three_hundred_family_emoji_fit_the_graphemes_but_not_the_bytes() {
    let p = platform_for("http://127.0.0.1:9/");
    let ok = Content::text("👍🏽".repeat(300));
    assert!(p.validate(&ok, &TargetOptions::none()).is_empty(), "300 graphemes, 2,400 bytes");
    let over = Content::text("👍🏽".repeat(301));
    let v = p.validate(&over, &TargetOptions::none());
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].actual.as_deref(), Some("301"));
    // 100 families are 100 graphemes but 2,500 bytes; 120 are 3,000 bytes; 121 are too many bytes.
    let families = Content::text("👨‍👩‍👧‍👦".repeat(121));
    let v = p.validate(&families, &TargetOptions::none());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("bytes"), "{v:?}");
    assert!(p.validate(&Content::text("👨‍👩‍👧‍👦".repeat(120)), &TargetOptions::none()).is_empty());
}

#[test]
fn facets_are_at_utf8_byte_offsets() {
    // "café " is 6 bytes (é is two); the link starts at byte 6.
    let text = "café https://example.com/ü?q=1 — hi @alice.test #Zürich2026 ✨";
    let spans = detect(text);
    let got: Vec<(usize, usize, Feature)> = spans.into_iter().map(|s| (s.start, s.end, s.feature)).collect();
    let link = "https://example.com/ü?q=1";
    let link_start = text.find(link).unwrap();
    assert_eq!(link_start, 6);
    let mention_start = text.find("@alice.test").unwrap();
    let tag_start = text.find("#Zürich2026").unwrap();
    assert_eq!(
        got,
        vec![
            (6, 6 + link.len(), Feature::Link(link.into())),
            (mention_start, mention_start + 11, Feature::Mention("alice.test".into())),
            (tag_start, tag_start + "#Zürich2026".len(), Feature::Tag("Zürich2026".into())),
        ]
    );
    // Exact numbers, so a change of unit (chars, UTF-16) cannot pass unnoticed.
    assert_eq!((got[0].0, got[0].1), (6, 32));
    assert_eq!((got[1].0, got[1].1), (40, 51));
    assert_eq!((got[2].0, got[2].1), (52, 64));
    for (s, e, _) in &got {
        assert!(text.is_char_boundary(*s) && text.is_char_boundary(*e));
    }
}

#[test]
fn emoji_before_a_link_shift_the_byte_offsets() {
    let text = "👨‍👩‍👧‍👦 https://bsky.app";
    let s = &detect(text)[0];
    assert_eq!((s.start, s.end), (26, 42));
    assert_eq!(&text[s.start..s.end], "https://bsky.app");
}

#[tokio::test]
async fn invalid_posts_are_refused_before_any_call() {
    let server = MockServer::start().await;
    let p = platform(&server);
    let mut content = Content::text("x".repeat(301)).with_link("https://example.com".parse().unwrap());
    content.media.push(image(100));
    content.thread.push(ThreadItem { text: String::new(), media: vec![] });
    for _ in 0..4 {
        content.media.push(image(3_000_000));
    }
    let opts = TargetOptions::from_json(serde_json::json!({"langs": ["en", "fr", "de", "es"]}));
    let r = run(&p, &account(&server), &content, &opts, Checkpoint::default()).await;
    match r.result {
        Err(Error::InvalidPost(v)) => {
            let codes: Vec<&str> = v.iter().map(|v| v.code.as_str()).collect();
            for want in [
                "text_too_long",
                "link_with_media",
                "empty_post",
                "too_many_media_of_kind",
                "media_too_large",
                "invalid_options",
            ] {
                assert!(codes.contains(&want), "{want} in {codes:?}");
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}
