//! Offline validation: Bluesky's rules as data — text of at most 300 graphemes and 3,000 UTF-8
//! bytes (both, as the lexicon counts), up to 4 images or one video per post (each item of a
//! thread alike), image and video sizes, video length, at most 3 languages and 8 extra tags, a
//! link card or media but not both. Every violation at once.

use konektly_core::ratelimit::DeclaredBudget;
use konektly_core::{
    Capabilities, Content, Media, MediaKind, MediaLimits, ReconcileSupport, TargetOptions, TextCounting, Violation,
    ViolationCode, validate_against_capabilities,
};
use serde_json::json;

use crate::config::Limits;
use crate::model::BlueskyOptions;
use crate::richtext::{MAX_TAG_GRAPHEMES, graphemes};

/// Longest post text, in graphemes (`app.bsky.feed.post#text` `maxGraphemes`).
pub const MAX_GRAPHEMES: usize = 300;
/// Longest post text, in UTF-8 bytes (`maxLength`).
pub const MAX_TEXT_BYTES: usize = 3000;
/// Most images in one post (`app.bsky.embed.images`).
pub const MAX_IMAGES: usize = 4;
/// Most languages (`langs`).
pub const MAX_LANGS: usize = 3;
/// Most extra hashtags (`tags`).
pub const MAX_TAGS: usize = 8;

/// The image types a PDS takes (`image/*`; these are the ones the app shows).
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/gif"];

/// Bluesky's capabilities with these limits and budgets. Built as data (JSON into core's
/// struct), so fields core adds with defaults need no change here.
pub(crate) fn capabilities(limits: &Limits, budgets: Vec<DeclaredBudget>) -> Capabilities {
    let image = MediaLimits {
        kind: MediaKind::Image,
        mime_types: IMAGE_TYPES.iter().map(|s| (*s).to_owned()).collect(),
        max_count: MAX_IMAGES,
        max_bytes: limits.max_image_bytes,
        ..MediaLimits::default()
    };
    // An animated GIF is sent as an image blob (the app shows its first frame).
    let gif = MediaLimits { kind: MediaKind::Gif, mime_types: vec!["image/gif".into()], ..image.clone() };
    let video = MediaLimits {
        kind: MediaKind::Video,
        mime_types: vec!["video/mp4".into()],
        max_count: 1,
        max_bytes: limits.max_video_bytes,
        max_duration: Some(limits.max_video_duration),
        ..MediaLimits::default()
    };
    let caps = json!({
        // Graphemes are counted (no core counting names them): `Chars` is the nearest for
        // previews, and `validate` counts graphemes and bytes.
        "text_counting": TextCounting::Chars,
        "max_text_len": MAX_GRAPHEMES,
        "media": [image, gif, video],
        "max_media_per_post": MAX_IMAGES,
        "mixed_media": false,
        "media_required": false,
        "threads": true,
        "polls": false,
        "links": true,
        "native_scheduling": false,
        "asynchronous_processing": false,
        "rotating_refresh_tokens": true,
        "reconcile": ReconcileSupport::FromCheckpoint,
        "needs_media_host": false,
        "budgets": budgets,
        "delete": true,
    });
    serde_json::from_value(caps).expect("Bluesky's capabilities are valid data")
}

fn text_rules(text: &str, field: &str, out: &mut Vec<Violation>) {
    let n = graphemes(text);
    if n > MAX_GRAPHEMES {
        out.push(
            Violation::new(
                ViolationCode::TextTooLong,
                field,
                format!("the text is {n} graphemes; Bluesky takes at most {MAX_GRAPHEMES}"),
            )
            .with_values(MAX_GRAPHEMES, n),
        );
    }
    if text.len() > MAX_TEXT_BYTES {
        out.push(
            Violation::new(
                ViolationCode::TextTooLong,
                field,
                format!("the text is {} bytes in UTF-8; Bluesky takes at most {MAX_TEXT_BYTES}", text.len()),
            )
            .with_values(format!("{MAX_TEXT_BYTES} bytes"), format!("{} bytes", text.len())),
        );
    }
}

fn empty(text: &str, media: &[Media]) -> bool {
    text.trim().is_empty() && media.is_empty()
}

/// Every violation of `content` with `options`.
pub(crate) fn validate(caps: &Capabilities, content: &Content, options: &TargetOptions) -> Vec<Violation> {
    let mut out = Vec::new();
    let opts = match options.get::<BlueskyOptions>() {
        Ok(o) => Some(o),
        Err(v) => {
            out.push(v);
            None
        }
    };
    // Media by the shared rules; text by graphemes and bytes.
    let without_text = Content { text: String::new(), ..content.clone() };
    out.extend(validate_against_capabilities(caps, &without_text, graphemes));
    text_rules(&content.text, "text", &mut out);
    if empty(&content.text, &content.media) && content.link.is_none() {
        out.push(Violation::new(ViolationCode::EmptyPost, "text", "a Bluesky post needs text, media or a link"));
    }
    if content.link.is_some() && !content.media.is_empty() {
        out.push(Violation::new(
            ViolationCode::LinkWithMedia,
            "link",
            "a Bluesky post shows either media or a link card: put the link in the text instead",
        ));
    }
    for (i, item) in content.thread.iter().enumerate() {
        let field = format!("thread[{i}]");
        text_rules(&item.text, &format!("{field}.text"), &mut out);
        if empty(&item.text, &item.media) {
            out.push(Violation::new(ViolationCode::EmptyPost, field.clone(), "a thread item needs text or media"));
        }
        let as_post = Content { media: item.media.clone(), ..Content::default() };
        for mut v in validate_against_capabilities(caps, &as_post, graphemes) {
            v.field = v.field.replacen("media", &format!("{field}.media"), 1);
            out.push(v);
        }
    }
    let Some(opts) = opts else { return out };
    if opts.langs.len() > MAX_LANGS {
        out.push(
            Violation::new(ViolationCode::InvalidOptions, "options.langs", "Bluesky takes at most 3 languages")
                .with_values(MAX_LANGS, opts.langs.len()),
        );
    }
    if opts.tags.len() > MAX_TAGS {
        out.push(
            Violation::new(ViolationCode::TooManyHashtags, "options.tags", "Bluesky takes at most 8 extra tags")
                .with_values(MAX_TAGS, opts.tags.len()),
        );
    }
    for (i, t) in opts.tags.iter().enumerate() {
        let n = graphemes(t);
        if n > MAX_TAG_GRAPHEMES || t.trim().is_empty() {
            out.push(
                Violation::new(ViolationCode::TagsTooLong, format!("options.tags[{i}]"), "a tag is 1 to 64 graphemes")
                    .with_values(MAX_TAG_GRAPHEMES, n),
            );
        }
    }
    if content.link.is_none() && (opts.link_title.is_some() || opts.link_description.is_some()) {
        out.push(Violation::new(
            ViolationCode::InvalidOptions,
            "options.link_title",
            "a link card's title and description need a link (`link`)",
        ));
    }
    out
}
