//! Offline validation: TikTok's rules for captions, photo titles and descriptions, privacy,
//! branded content, and media (one video, or up to 35 JPEG/WebP photos). Every violation at
//! once.

use std::time::Duration;

use konektly_core::{
    Capabilities, Content, MediaKind, MediaLimits, ReconcileSupport, TargetOptions, TextCounting, Violation,
    ViolationCode, validate_against_capabilities,
};

use crate::model::{PostMode, PrivacyLevel, TikTokOptions, VideoSource};

/// Longest video caption (UTF-16 units).
pub const MAX_CAPTION: usize = 2200;
/// Longest photo post title.
pub const MAX_PHOTO_TITLE: usize = 90;
/// Longest photo post description.
pub const MAX_PHOTO_DESCRIPTION: usize = 4000;
/// Most photos in one post (third-party docs; the official number is unconfirmed).
pub const MAX_PHOTOS: usize = 35;
/// Largest video.
pub const MAX_VIDEO_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Largest photo.
pub const MAX_PHOTO_BYTES: u64 = 20 * 1024 * 1024;
/// Longest video the API takes (each creator may have a lower limit, checked before posting).
pub const MAX_VIDEO_DURATION: Duration = Duration::from_secs(600);

pub(crate) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// TikTok's capabilities, with the budgets from the builder.
pub(crate) fn capabilities(budgets: Vec<konektly_core::ratelimit::DeclaredBudget>) -> Capabilities {
    Capabilities {
        text_counting: TextCounting::Utf16,
        max_text_len: MAX_CAPTION,
        media: vec![
            MediaLimits {
                kind: MediaKind::Video,
                mime_types: vec!["video/mp4".into(), "video/quicktime".into(), "video/webm".into()],
                max_count: 1,
                max_bytes: MAX_VIDEO_BYTES,
                min_duration: None,
                max_duration: Some(MAX_VIDEO_DURATION),
                // 360–4096 px for both width and height.
                dimensions: konektly_core::Dimensions {
                    min_width: Some(360),
                    min_height: Some(360),
                    max_width: Some(4096),
                    max_height: Some(4096),
                    ..konektly_core::Dimensions::default()
                },
                format: video_format(),
                ..MediaLimits::default()
            },
            MediaLimits {
                kind: MediaKind::Image,
                mime_types: vec!["image/jpeg".into(), "image/webp".into()],
                max_count: MAX_PHOTOS,
                max_bytes: MAX_PHOTO_BYTES,
                min_duration: None,
                max_duration: None,
                // At most 1080p, either orientation.
                dimensions: konektly_core::Dimensions {
                    max_side: Some(1920),
                    max_pixels: Some(1920 * 1080),
                    ..konektly_core::Dimensions::default()
                },
                ..MediaLimits::default()
            },
        ],
        max_media_per_post: MAX_PHOTOS,
        mixed_media: false,
        media_required: true,
        threads: false,
        polls: false,
        links: false,
        native_scheduling: false,
        asynchronous_processing: true,
        rotating_refresh_tokens: true,
        reconcile: ReconcileSupport::FromCheckpoint,
        // Uploaded videos need no MediaHost; photo posts and pull-from-URL videos with local
        // media do, which `needs_media_host` decides per post (the engine asks it offline).
        needs_media_host: false,
        budgets,
        // The Content Posting API publishes no comments, deletes nothing and edits nothing.
        comments: None,
        delete: false,
        edit: konektly_core::EditSupport::none("TikTok's Content Posting API cannot edit a published post"),
    }
}

/// TikTok's video encodings: H.264 (recommended), H.265, VP8 or VP9, at 23–60 frames per
/// second (a video outside them fails TikTok's `file_format_check_failed` or
/// `frame_rate_check_failed` after upload). No audio codec or bit rate is stated.
pub fn video_format() -> konektly_core::VideoFormat {
    konektly_core::VideoFormat {
        video_codecs: vec!["h264".into(), "hevc".into(), "vp8".into(), "vp9".into()],
        min_frame_rate: Some(23.0),
        max_frame_rate: Some(60.0),
        ..konektly_core::VideoFormat::default()
    }
}

/// Whether publishing `content` needs a `MediaHost`: TikTok pulls photos (always) and
/// pull-from-URL videos from a URL, so local media among them need one; an uploaded video
/// (`FILE_UPLOAD`, the default for local files) does not. Options that do not parse are a
/// violation of their own, so they need nothing here.
pub(crate) fn needs_media_host(content: &Content, options: &TargetOptions) -> bool {
    let local = |m: &konektly_core::Media| !matches!(m.source, konektly_core::MediaSource::Url(_));
    if is_photo_post(content) {
        return content.media.iter().any(local);
    }
    let Ok(opts) = options.get::<TikTokOptions>() else { return false };
    opts.video_source == VideoSource::PullFromUrl && content.media.iter().any(local)
}

/// Whether the content is a photo post (images only).
pub(crate) fn is_photo_post(content: &Content) -> bool {
    !content.media.is_empty() && content.media.iter().all(|m| m.kind() == MediaKind::Image)
}

/// Every violation of `content` with `options`.
pub(crate) fn validate(caps: &Capabilities, content: &Content, options: &TargetOptions) -> Vec<Violation> {
    let mut out = Vec::new();
    // Options that do not parse are one violation; the checks that read options are skipped
    // (falling back to defaults would report rules the user did not break).
    let parsed = match options.get::<TikTokOptions>() {
        Ok(o) => Some(o),
        Err(v) => {
            out.push(v);
            None
        }
    };
    let opts = parsed.clone().unwrap_or_default();
    // Media, threads and links by the shared rules; the text by TikTok's own (it depends on
    // whether this is a video or a photo post).
    let without_text = Content { text: String::new(), ..content.clone() };
    out.extend(validate_against_capabilities(caps, &without_text, utf16_len));

    let photo = is_photo_post(content);
    let len = utf16_len(&content.text);
    let (limit, what) = if photo { (MAX_PHOTO_DESCRIPTION, "photo description") } else { (MAX_CAPTION, "caption") };
    if len > limit {
        out.push(
            Violation::new(
                ViolationCode::TextTooLong,
                "text",
                format!("the {what} is {len} long; at most {limit} is allowed"),
            )
            .with_values(limit, len),
        );
    }

    if parsed.is_none() {
        return out;
    }
    if opts.mode == PostMode::DirectPost && opts.privacy_level.is_none() {
        out.push(Violation::new(
            ViolationCode::PrivacyLevelRequired,
            "options.privacy_level",
            "a TikTok post needs a privacy level, chosen by the creator among their privacy_level_options",
        ));
    }
    if opts.brand_content_toggle && opts.privacy_level == Some(PrivacyLevel::SelfOnly) {
        out.push(
            Violation::new(
                ViolationCode::BrandedContentPrivate,
                "options.brand_content_toggle",
                "branded content cannot be private (SELF_ONLY): choose another privacy level",
            )
            .with_values("not SELF_ONLY", "SELF_ONLY"),
        );
    }
    if photo {
        if let Some(title) = &opts.photo_title {
            let n = utf16_len(title);
            if n > MAX_PHOTO_TITLE {
                out.push(
                    Violation::new(
                        ViolationCode::TitleTooLong,
                        "options.photo_title",
                        "the photo post's title is too long",
                    )
                    .with_values(MAX_PHOTO_TITLE, n),
                );
            }
        }
        if opts.photo_cover_index >= content.media.len() {
            out.push(
                Violation::new(
                    ViolationCode::CoverIndexOutOfRange,
                    "options.photo_cover_index",
                    "there is no such photo",
                )
                .with_values(content.media.len().saturating_sub(1), opts.photo_cover_index),
            );
        }
    } else if opts.photo_title.is_some() {
        out.push(Violation::new(
            ViolationCode::TitleNotSupported,
            "options.photo_title",
            "a video's caption is the post's text; photo_title is for photo posts",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use konektly_core::{Media, ThreadItem};

    use super::*;

    fn caps() -> Capabilities {
        capabilities(Vec::new())
    }

    fn video(size: u64) -> Media {
        let mut m = Media::from_bytes(&b"\x00\x00\x00\x18ftypmp42"[..]);
        // Not a real movie: the rules here are about the declared facts.
        m.probe_error = None;
        m.mime = "video/mp4".parse().unwrap();
        m.size = Some(size);
        m
    }

    fn photo(mime: &str, size: u64) -> Media {
        let mut m = Media::from_bytes(&b"\xff\xd8\xff"[..]);
        m.probe_error = None;
        m.mime = mime.parse().unwrap();
        m.size = Some(size);
        m
    }

    fn opts(o: TikTokOptions) -> TargetOptions {
        TargetOptions::new(&o).unwrap()
    }

    fn public() -> TikTokOptions {
        TikTokOptions { privacy_level: Some(PrivacyLevel::PublicToEveryone), ..Default::default() }
    }

    fn codes(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.code.as_str()).collect()
    }

    #[test]
    fn one_broken_option_is_one_violation() {
        let c = Content::text("hello").with_media(video(1000));
        let o = TargetOptions::from_json(serde_json::json!({"privacy_level": "FRIENDS"}));
        let v = validate(&caps(), &c, &o);
        assert_eq!(codes(&v), vec!["invalid_options"], "no privacy_level_required on top: {v:?}");
        assert!(
            v[0].message.contains("FRIENDS") && v[0].message.contains("SELF_ONLY"),
            "names the value and the allowed ones: {v:?}"
        );
    }

    #[test]
    fn a_valid_video_post_has_no_violations() {
        let c = Content::text("hello #fyp").with_media(video(1000));
        assert!(validate(&caps(), &c, &opts(public())).is_empty());
    }

    #[test]
    fn every_violation_is_listed_at_once() {
        let mut v = video(MAX_VIDEO_BYTES + 1);
        v.duration = Some(Duration::from_secs(601));
        let c = Content::text("x".repeat(2201))
            .with_media(v)
            .with_media(photo("image/png", 10))
            .with_thread_item(ThreadItem::default());
        let o = TikTokOptions {
            privacy_level: Some(PrivacyLevel::SelfOnly),
            brand_content_toggle: true,
            ..Default::default()
        };
        let got = validate(&caps(), &c, &opts(o));
        let codes = codes(&got);
        for want in [
            "text_too_long",
            "media_too_large",
            "video_too_long",
            "media_type_not_supported",
            "mixed_media",
            "threads_not_supported",
            "branded_content_private",
        ] {
            assert!(codes.contains(&want), "missing {want} in {codes:?}");
        }
    }

    #[test]
    fn the_caption_counts_utf16_units() {
        // 1,100 emoji are 2,200 UTF-16 units: allowed; one more is not.
        let ok = Content::text("😀".repeat(1100)).with_media(video(10));
        assert!(validate(&caps(), &ok, &opts(public())).is_empty());
        let long = Content::text("😀".repeat(1101)).with_media(video(10));
        let v = validate(&caps(), &long, &opts(public()));
        assert_eq!(v[0].code, "text_too_long");
        assert_eq!(v[0].actual.as_deref(), Some("2202"));
    }

    #[test]
    fn privacy_is_required_for_direct_posts_only() {
        let c = Content::text("hi").with_media(video(10));
        assert_eq!(codes(&validate(&caps(), &c, &TargetOptions::none())), vec!["privacy_level_required"]);
        let inbox = TikTokOptions { mode: PostMode::Inbox, ..Default::default() };
        assert!(validate(&caps(), &c, &opts(inbox)).is_empty());
    }

    #[test]
    fn photo_posts_have_their_own_limits() {
        let mut c = Content::text("d".repeat(4000));
        for _ in 0..3 {
            c = c.with_media(photo("image/jpeg", 1000));
        }
        assert!(validate(&caps(), &c, &opts(public())).is_empty(), "a 4,000-character description is fine");
        c.text.push('!');
        c.media.push(photo("image/webp", MAX_PHOTO_BYTES + 1));
        let o = TikTokOptions { photo_title: Some("t".repeat(91)), photo_cover_index: 9, ..public() };
        let got = validate(&caps(), &c, &opts(o));
        let codes = codes(&got);
        for want in ["text_too_long", "media_too_large", "title_too_long", "cover_index_out_of_range"] {
            assert!(codes.contains(&want), "missing {want} in {codes:?}");
        }
        let many: Vec<Media> = (0..36).map(|_| photo("image/jpeg", 10)).collect();
        let c = Content { media: many, ..Content::text("x") };
        assert!(validate(&caps(), &c, &opts(public())).iter().any(|v| v.code.as_str().starts_with("too_many_media")));
    }

    #[test]
    fn one_video_only_and_media_is_required() {
        let c = Content::text("two").with_media(video(10)).with_media(video(10));
        assert!(codes(&validate(&caps(), &c, &opts(public()))).contains(&"too_many_media_of_kind"));
        let c = Content::text("none");
        assert!(codes(&validate(&caps(), &c, &opts(public()))).contains(&"media_required"));
    }

    #[test]
    fn video_encodings_are_checked_where_probed() {
        let probed = |codec: &str, fps: f64| {
            let mut m = video(1000);
            m.video_codec = Some(codec.into());
            m.frame_rate = Some(fps);
            Content::text("hi").with_media(m)
        };
        for ok in ["h264", "hevc", "vp8", "vp9"] {
            assert!(validate(&caps(), &probed(ok, 30.0), &opts(public())).is_empty(), "{ok}");
        }
        assert_eq!(codes(&validate(&caps(), &probed("av1", 30.0), &opts(public()))), vec!["video_codec_not_supported"]);
        assert_eq!(codes(&validate(&caps(), &probed("h264", 15.0), &opts(public()))), vec!["frame_rate_out_of_range"]);
        assert_eq!(codes(&validate(&caps(), &probed("h264", 120.0), &opts(public()))), vec!["frame_rate_out_of_range"]);
    }

    #[test]
    fn a_media_host_is_needed_only_for_local_media_tiktok_pulls() {
        let local_photo = photo("image/jpeg", 10);
        let url_photo = Media::from_url("https://cdn.example/a.jpg".parse().unwrap(), "image/jpeg".parse().unwrap());
        let photos = |m: Media| Content::text("p").with_media(m);
        assert!(needs_media_host(&photos(local_photo.clone()), &TargetOptions::none()));
        assert!(!needs_media_host(&photos(url_photo.clone()), &TargetOptions::none()));
        assert!(needs_media_host(&photos(url_photo).with_media(local_photo), &TargetOptions::none()));
        let local_video = Content::text("v").with_media(video(10));
        assert!(!needs_media_host(&local_video, &TargetOptions::none()), "uploaded by FILE_UPLOAD");
        let pull = opts(TikTokOptions { video_source: VideoSource::PullFromUrl, ..public() });
        assert!(needs_media_host(&local_video, &pull));
        let url_video = Content::text("v")
            .with_media(Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap()));
        assert!(!needs_media_host(&url_video, &pull));
    }

    #[test]
    fn malformed_options_are_a_violation() {
        let c = Content::text("x").with_media(video(10));
        let o = TargetOptions::from_json(serde_json::json!({"privacy_level": "EVERYBODY"}));
        assert!(codes(&validate(&caps(), &c, &o)).contains(&"invalid_options"));
        let o = TargetOptions::from_json(serde_json::json!({"privacy": "SELF_ONLY"}));
        assert!(codes(&validate(&caps(), &c, &o)).contains(&"invalid_options"), "unknown fields are refused");
    }
}
