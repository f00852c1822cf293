//! What YouTube can do (its `Capabilities`) and the offline validation of a YouTube target: one
//! video, its metadata, `publishAt` and the custom thumbnail. Every violation is returned at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use konektly_core::ratelimit::{BudgetScope, DeclaredBudget};
use konektly_core::{
    Capabilities, CommentSupport, Content, EditSupport, MediaKind, TargetOptions, Violation, ViolationCode,
    validate_against_capabilities,
};
use konektly_core::{MediaLimits, ReconcileSupport, TextCounting};

use crate::model::{Privacy, YouTubeOptions};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// Longest description, in UTF-8 bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 5000;
/// Most characters of all tags together, counted as YouTube counts them.
pub const MAX_TAGS_CHARS: usize = 500;
/// Largest video file (256 GB).
pub const MAX_VIDEO_BYTES: u64 = 256_000_000_000;

/// The length YouTube gives a tag list: the characters of every tag, a comma between tags, and
/// two quotes around a tag that contains a space.
pub fn tags_length(tags: &[String]) -> usize {
    let chars: usize = tags.iter().map(|t| t.chars().count() + if t.contains(' ') { 2 } else { 0 }).sum();
    chars + tags.len().saturating_sub(1)
}

fn has_angle_brackets(s: &str) -> bool {
    s.contains('<') || s.contains('>')
}

/// Validates `content` and `options` at `now`.
pub(crate) fn validate(
    caps: &Capabilities,
    content: &Content,
    options: &TargetOptions,
    max_thumbnail_bytes: u64,
    now: DateTime<Utc>,
) -> Vec<Violation> {
    let mut out = validate_against_capabilities(caps, content, |t| t.len());
    let videos = content
        .media
        .iter()
        .filter(|m| m.kind() == MediaKind::Video || m.mime == mime::APPLICATION_OCTET_STREAM)
        .count();
    // One broken rule, one violation: an unsupported item or too many items already say it.
    let said = out.iter().any(|v| {
        matches!(
            v.code.as_str(),
            "too_many_media" | "too_many_media_of_kind" | "media_kind_not_supported" | "mixed_media"
        )
    });
    if videos != 1 && !content.media.is_empty() && !said {
        out.push(
            Violation::new(ViolationCode::OneVideoRequired, "media", "a YouTube post is exactly one video")
                .with_values(1, videos),
        );
    }
    for (i, m) in content.media.iter().enumerate() {
        match m.size {
            Some(0) => {
                out.push(Violation::new(ViolationCode::MediaEmpty, format!("media[{i}]"), "the video file is empty"))
            }
            None => out.push(Violation::new(
                ViolationCode::MediaSizeUnknown,
                format!("media[{i}]"),
                "the resumable upload needs the file's size: give it with Media::with_size",
            )),
            Some(_) => {}
        }
    }
    if has_angle_brackets(&content.text) {
        out.push(Violation::new(
            ViolationCode::DescriptionInvalidCharacters,
            "text",
            "the description may not contain < or >",
        ));
    }

    let opts: YouTubeOptions = match options.get() {
        Ok(o) => o,
        Err(v) => {
            out.push(v);
            return out;
        }
    };
    if !content.comments.is_empty() && opts.effective_privacy() == crate::model::Privacy::Private {
        out.push(Violation::new(
            ViolationCode::CommentsNotSupported,
            "comments",
            "a private or scheduled (publish_at) video takes no comments before it is public: publish it public or \
             unlisted, or comment once it is public",
        ));
    }
    match opts.title.as_deref().map(str::trim) {
        None | Some("") => {
            out.push(Violation::new(ViolationCode::TitleRequired, "options.title", "a YouTube video needs a title"))
        }
        Some(title) => {
            let n = title.chars().count();
            if n > MAX_TITLE_CHARS {
                out.push(
                    Violation::new(
                        ViolationCode::TitleTooLong,
                        "options.title",
                        format!("at most {MAX_TITLE_CHARS} characters"),
                    )
                    .with_values(MAX_TITLE_CHARS, n),
                );
            }
            if has_angle_brackets(title) {
                out.push(Violation::new(
                    ViolationCode::TitleInvalidCharacters,
                    "options.title",
                    "the title may not contain < or >",
                ));
            }
        }
    }
    let tags_len = tags_length(&opts.tags);
    if tags_len > MAX_TAGS_CHARS {
        out.push(
            Violation::new(
                ViolationCode::TagsTooLong,
                "options.tags",
                format!("tags may total at most {MAX_TAGS_CHARS} characters (commas count; a tag with a space counts with quotes)"),
            )
            .with_values(MAX_TAGS_CHARS, tags_len),
        );
    }
    if opts.tags.iter().any(|t| has_angle_brackets(t)) {
        out.push(Violation::new(ViolationCode::TagsInvalidCharacters, "options.tags", "tags may not contain < or >"));
    }
    if let Some(cat) = &opts.category_id
        && (cat.is_empty() || !cat.bytes().all(|b| b.is_ascii_digit()))
    {
        out.push(
            Violation::new(
                ViolationCode::InvalidCategoryId,
                "options.category_id",
                "a category id is a number such as \"22\"",
            )
            .with_values("digits", cat),
        );
    }
    if let Some(at) = opts.publish_at {
        if let Some(p) = opts.privacy
            && p != Privacy::Private
        {
            out.push(
                Violation::new(
                    ViolationCode::PublishAtRequiresPrivate,
                    "options.publish_at",
                    "a scheduled video must be private until its time",
                )
                .with_values("private", p.as_str()),
            );
        }
        if at <= now {
            out.push(
                Violation::new(
                    ViolationCode::PublishAtInPast,
                    "options.publish_at",
                    "the publication time must be in the future",
                )
                .with_values(now.to_rfc3339(), at.to_rfc3339()),
            );
        }
    }
    if let Some(thumb) = &opts.thumbnail {
        let mime = thumb.mime.essence_str();
        if mime != "image/jpeg" && mime != "image/png" {
            out.push(
                Violation::new(
                    ViolationCode::ThumbnailTypeNotSupported,
                    "options.thumbnail",
                    "a thumbnail is a JPEG or PNG image",
                )
                .with_values("image/jpeg, image/png", mime),
            );
        }
        if let Some(size) = thumb.size
            && size > max_thumbnail_bytes
        {
            out.push(
                Violation::new(
                    ViolationCode::ThumbnailTooLarge,
                    "options.thumbnail",
                    "the thumbnail file is too large",
                )
                .with_values(max_thumbnail_bytes, size),
            );
        }
    }
    out
}

/// What YouTube can do. The description (the post's text) is counted in UTF-8 bytes.
pub(crate) fn capabilities(daily_insert_budget: Option<u32>) -> Capabilities {
    Capabilities {
        text_counting: TextCounting::Bytes,
        max_text_len: MAX_DESCRIPTION_BYTES,
        media: vec![
            MediaLimits {
                kind: MediaKind::Video,
                // Any `video/*`.
                mime_types: Vec::new(),
                max_count: 1,
                max_bytes: MAX_VIDEO_BYTES,
                min_duration: None,
                max_duration: Some(Duration::from_secs(12 * 3600)),
                ..MediaLimits::default()
            },
            // YouTube takes `application/octet-stream` uploads too (a file whose type is not
            // known): it is sent as a video and YouTube tells what it is.
            MediaLimits {
                kind: MediaKind::Other,
                mime_types: vec!["application/octet-stream".into()],
                max_count: 1,
                max_bytes: MAX_VIDEO_BYTES,
                min_duration: None,
                max_duration: Some(Duration::from_secs(12 * 3600)),
                ..MediaLimits::default()
            },
        ],
        max_media_per_post: 1,
        mixed_media: false,
        media_required: true,
        threads: false,
        polls: false,
        links: false,
        native_scheduling: true,
        asynchronous_processing: true,
        rotating_refresh_tokens: false,
        reconcile: ReconcileSupport::FromCheckpoint,
        needs_media_host: false,
        budgets: daily_insert_budget
            .map(|limit| DeclaredBudget {
                name: "videos_insert".into(),
                scope: BudgetScope::App,
                limit,
                window: Duration::from_secs(24 * 3600),
                per_publish: 1,
                per_poll: 0,
            })
            .into_iter()
            .collect(),
        comments: Some(CommentSupport {
            max_len: MAX_COMMENT_BYTES,
            max_comments: 10,
            note: Some(
                "needs the youtube.force-ssl scope (SCOPE_FORCE_SSL); posted once the video is processed, and only \
                 on a public or unlisted video (not a private or scheduled one)"
                    .into(),
            ),
        }),
        delete: true,
        edit: EditSupport {
            text: true,
            title: true,
            privacy: true,
            publish_at: true,
            note: Some("videos.update: needs the youtube or youtube.force-ssl scope".into()),
        },
    }
}

/// The longest comment (YouTube says 10,000 characters; counted here in UTF-8 bytes, as the
/// description is, which never lets a longer one through).
pub const MAX_COMMENT_BYTES: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use konektly_core::Media;

    fn video(size: u64) -> Media {
        let mut m = Media::from_bytes(&b"fake video"[..]);
        m.mime = "video/mp4".parse().unwrap();
        m.size = Some(size);
        m
    }

    fn caps() -> Capabilities {
        capabilities(None)
    }

    fn codes(content: &Content, opts: &YouTubeOptions) -> Vec<String> {
        let o = TargetOptions::new(opts).unwrap();
        validate(&caps(), content, &o, 50 << 20, Utc::now()).into_iter().map(|v| v.code.to_string()).collect()
    }

    fn good() -> YouTubeOptions {
        YouTubeOptions { title: Some("A title".into()), ..Default::default() }
    }

    #[test]
    fn a_titled_video_is_valid() {
        assert!(codes(&Content::text("desc").with_media(video(10)), &good()).is_empty());
    }

    #[test]
    fn tags_are_counted_as_youtube_counts_them() {
        assert_eq!(tags_length(&[]), 0);
        assert_eq!(tags_length(&["abc".into()]), 3);
        // "abc,de f" → 3 + 1 (comma) + 4 + 2 (quotes)
        assert_eq!(tags_length(&["abc".into(), "de f".into()]), 10);
        assert_eq!(tags_length(&["é".into()]), 1, "characters, not bytes");
    }

    #[test]
    fn tags_over_500_are_refused_at_501_not_500() {
        // 100 tags of 4 chars = 400 + 99 commas = 499; one more char → 500 (ok); two → 501.
        let mut tags: Vec<String> = (0..100).map(|_| "abcd".to_string()).collect();
        tags[0].push('x');
        let opts = YouTubeOptions { tags: tags.clone(), ..good() };
        assert!(codes(&Content::text("").with_media(video(1)), &opts).is_empty());
        tags[1] = "ab d".into(); // a space adds two quotes: 502
        let opts = YouTubeOptions { tags, ..good() };
        assert_eq!(codes(&Content::text("").with_media(video(1)), &opts), vec!["tags_too_long"]);
    }

    #[test]
    fn every_violation_is_listed_at_once() {
        let mut image = Media::from_bytes(&b"x"[..]);
        image.mime = "image/gif".parse().unwrap();
        image.size = Some(60 << 20);
        let opts = YouTubeOptions {
            title: Some(format!("<b>{}", "t".repeat(100))),
            tags: vec!["<x>".repeat(200)],
            category_id: Some("people".into()),
            privacy: Some(Privacy::Public),
            publish_at: Some(Utc::now() - chrono::Duration::hours(1)),
            thumbnail: Some(image),
            ..Default::default()
        };
        let content = Content::text(format!("<script>{}", "d".repeat(5000)))
            .with_media(video(MAX_VIDEO_BYTES + 1))
            .with_media(video(1));
        let got = codes(&content, &opts);
        for want in [
            "text_too_long",
            "description_invalid_characters",
            "too_many_media_of_kind",
            "media_too_large",
            "title_too_long",
            "title_invalid_characters",
            "tags_too_long",
            "tags_invalid_characters",
            "invalid_category_id",
            "publish_at_requires_private",
            "publish_at_in_past",
            "thumbnail_type_not_supported",
            "thumbnail_too_large",
        ] {
            assert!(got.iter().any(|c| c == want), "missing {want} in {got:?}");
        }
    }

    #[test]
    fn a_title_is_required_and_counted_in_characters() {
        assert_eq!(codes(&Content::text("").with_media(video(1)), &YouTubeOptions::default()), vec!["title_required"]);
        let blank = YouTubeOptions { title: Some("  ".into()), ..Default::default() };
        assert_eq!(codes(&Content::text("").with_media(video(1)), &blank), vec!["title_required"]);
        let hundred = YouTubeOptions { title: Some("é".repeat(100)), ..Default::default() };
        assert!(
            codes(&Content::text("").with_media(video(1)), &hundred).is_empty(),
            "100 two-byte characters are fine"
        );
    }

    #[test]
    fn the_description_is_counted_in_bytes() {
        let c = Content::text("é".repeat(2500)).with_media(video(1)); // 5000 bytes
        assert!(codes(&c, &good()).is_empty());
        let c = Content::text("é".repeat(2501)).with_media(video(1));
        assert_eq!(codes(&c, &good()), vec!["text_too_long"]);
    }

    #[test]
    fn exactly_one_video() {
        assert_eq!(codes(&Content::text(""), &good()), vec!["media_required"]);
        let mut jpeg = Media::from_bytes(&b"x"[..]);
        jpeg.mime = "image/jpeg".parse().unwrap();
        let got = codes(&Content::text("").with_media(jpeg), &good());
        assert_eq!(got, vec!["media_kind_not_supported"], "one broken rule, one violation");
        // YouTube takes application/octet-stream uploads (issue 14).
        let mut octet = video(1);
        octet.mime = mime::APPLICATION_OCTET_STREAM;
        assert!(codes(&Content::text("").with_media(octet), &good()).is_empty());
        assert_eq!(codes(&Content::text("").with_media(video(0)), &good()), vec!["media_empty"]);
        let by_url = Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap());
        assert_eq!(codes(&Content::text("").with_media(by_url.clone()), &good()), vec!["media_size_unknown"]);
        assert!(codes(&Content::text("").with_media(by_url.with_size(10)), &good()).is_empty());
    }

    #[test]
    fn publish_at_needs_private_or_no_privacy_and_a_future_time() {
        let later = Utc::now() + chrono::Duration::days(1);
        let implicit = YouTubeOptions { publish_at: Some(later), ..good() };
        assert!(codes(&Content::text("").with_media(video(1)), &implicit).is_empty());
        assert_eq!(implicit.effective_privacy(), Privacy::Private);
        let unlisted = YouTubeOptions { publish_at: Some(later), privacy: Some(Privacy::Unlisted), ..good() };
        assert_eq!(codes(&Content::text("").with_media(video(1)), &unlisted), vec!["publish_at_requires_private"]);
    }

    #[test]
    fn malformed_options_are_a_violation() {
        let o = TargetOptions::from_json(serde_json::json!({"title": 5}));
        let v = validate(&caps(), &Content::text("").with_media(video(1)), &o, 1, Utc::now());
        assert_eq!(v[0].code, "invalid_options");
    }
}
