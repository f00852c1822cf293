//! Offline validation for Facebook Pages and Instagram: every violation at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use konektly_core::{
    Capabilities, CommentSupport, Content, EditSupport, Media, MediaKind, MediaLimits, ReconcileSupport, TargetOptions,
    TextCounting, Violation, ViolationCode, validate_against_capabilities,
};

use crate::config::Limits;
use crate::model::{FacebookOptions, FacebookPostKind, InstagramMediaKind, InstagramOptions};

/// Facebook's longest post text.
pub const FACEBOOK_MAX_TEXT: usize = 63_206;
/// Instagram's longest caption.
pub const INSTAGRAM_MAX_CAPTION: usize = 2_200;
/// The longest comment on a Page post.
pub const FACEBOOK_MAX_COMMENT: usize = 8_000;
/// Most comments konektly publishes under one post.
pub const MAX_COMMENTS: usize = 10;
/// Most hashtags in an Instagram caption.
pub const INSTAGRAM_MAX_HASHTAGS: usize = 30;
/// Most @mentions in an Instagram caption.
pub const INSTAGRAM_MAX_MENTIONS: usize = 20;
/// Most people tagged on one Instagram media item (more is refused with subcode 2207040).
pub const INSTAGRAM_MAX_USER_TAGS: usize = 20;
/// Most brand sponsors of one Instagram post.
pub const INSTAGRAM_MAX_SPONSORS: usize = 2;
const IG_IMAGE_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Instagram's video encodings (Reels; Stories take the same): H.264 or HEVC video, AAC audio,
/// 23–60 frames per second, and at most 25 Mbit/s of video. The probe measures the whole
/// file's average rate, so the bound is the video's 25 Mbit/s plus the 128 kbit/s of audio
/// Instagram allows.
pub fn instagram_video_format() -> konektly_core::VideoFormat {
    konektly_core::VideoFormat {
        video_codecs: vec!["h264".into(), "hevc".into()],
        audio_codecs: vec!["aac".into()],
        min_frame_rate: Some(23.0),
        max_frame_rate: Some(60.0),
        max_bit_rate: Some(25_000_000 + 128_000),
    }
}

/// Facebook Reels: 24–60 frames per second (no codec is stated; MP4 is recommended).
pub fn facebook_reel_format() -> konektly_core::VideoFormat {
    konektly_core::VideoFormat {
        min_frame_rate: Some(24.0),
        max_frame_rate: Some(60.0),
        ..konektly_core::VideoFormat::default()
    }
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn facebook_capabilities(limits: &Limits) -> Capabilities {
    Capabilities {
        text_counting: TextCounting::Chars,
        max_text_len: FACEBOOK_MAX_TEXT,
        media: vec![
            MediaLimits {
                kind: MediaKind::Image,
                mime_types: vec!["image/jpeg".into(), "image/png".into(), "image/bmp".into(), "image/tiff".into()],
                max_count: 10,
                max_bytes: limits.fb_photo_max_bytes,
                min_duration: None,
                max_duration: None,
                ..MediaLimits::default()
            },
            MediaLimits {
                kind: MediaKind::Video,
                mime_types: vec!["video/mp4".into(), "video/quicktime".into()],
                max_count: 1,
                max_bytes: limits.fb_video_max_bytes,
                min_duration: Some(secs(1)),
                max_duration: Some(secs(240 * 60)),
                // Facebook refuses a video under 1 KB (subcode 1363022).
                min_bytes: 1024,
                ..MediaLimits::default()
            },
        ],
        max_media_per_post: 10,
        mixed_media: false,
        media_required: false,
        threads: false,
        polls: false,
        links: true,
        native_scheduling: true,
        asynchronous_processing: true,
        rotating_refresh_tokens: false,
        reconcile: ReconcileSupport::Search,
        needs_media_host: false,
        budgets: Vec::new(),
        comments: Some(CommentSupport {
            max_len: FACEBOOK_MAX_COMMENT,
            max_comments: MAX_COMMENTS,
            note: Some("needs pages_manage_engagement (add it to the scopes); not on posts Facebook schedules".into()),
        }),
        delete: true,
        edit: EditSupport {
            text: true,
            note: Some("a Page post's message (a video's description) can be edited; nothing else".into()),
            ..EditSupport::default()
        },
    }
}

pub(crate) fn instagram_capabilities(limits: &Limits) -> Capabilities {
    Capabilities {
        text_counting: TextCounting::Chars,
        max_text_len: INSTAGRAM_MAX_CAPTION,
        media: vec![
            MediaLimits {
                kind: MediaKind::Image,
                mime_types: vec!["image/jpeg".into()],
                max_count: 10,
                max_bytes: IG_IMAGE_MAX_BYTES,
                min_duration: None,
                max_duration: None,
                dimensions: IG_FEED_IMAGE,
                ..MediaLimits::default()
            },
            MediaLimits {
                kind: MediaKind::Video,
                mime_types: vec!["video/mp4".into(), "video/quicktime".into()],
                max_count: 10,
                max_bytes: limits.ig_reel_max_bytes,
                min_duration: Some(secs(3)),
                max_duration: Some(secs(15 * 60)),
                format: instagram_video_format(),
                ..MediaLimits::default()
            },
        ],
        max_media_per_post: 10,
        mixed_media: true,
        media_required: true,
        threads: false,
        polls: false,
        links: false,
        native_scheduling: false,
        asynchronous_processing: true,
        rotating_refresh_tokens: false,
        reconcile: ReconcileSupport::FromCheckpoint,
        needs_media_host: true,
        budgets: Vec::new(),
        comments: Some(CommentSupport {
            max_len: INSTAGRAM_MAX_CAPTION,
            max_comments: MAX_COMMENTS,
            note: Some(
                "not on Stories; needs instagram_manage_comments (Facebook Login) or \
                        instagram_business_manage_comments (Instagram Login)"
                    .into(),
            ),
        }),
        delete: false,
        edit: EditSupport::none(
            "the Instagram API cannot edit a published media's caption (only whether it takes comments)",
        ),
    }
}

fn duration_violations(out: &mut Vec<Violation>, field: &str, m: &Media, min: Duration, max: Duration, what: &str) {
    if let Some(d) = m.duration {
        if d < min {
            out.push(
                Violation::new(
                    ViolationCode::VideoTooShort,
                    field,
                    format!("{what} must last at least {}s", min.as_secs()),
                )
                .with_values(format!("{}s", min.as_secs()), format!("{:.1}s", d.as_secs_f64())),
            );
        }
        if d > max {
            out.push(
                Violation::new(
                    ViolationCode::VideoTooLong,
                    field,
                    format!("{what} must last at most {}s", max.as_secs()),
                )
                .with_values(format!("{}s", max.as_secs()), format!("{:.1}s", d.as_secs_f64())),
            );
        }
    }
}

fn size_violation(out: &mut Vec<Violation>, field: &str, m: &Media, max: u64, what: &str) {
    if let Some(size) = m.size
        && size > max
    {
        out.push(
            Violation::new(ViolationCode::MediaTooLarge, field, format!("{what} is too large")).with_values(max, size),
        );
    }
}

/// Checks a native schedule time against the window Meta allows.
pub(crate) fn schedule_violation(at: DateTime<Utc>, now: DateTime<Utc>, limits: &Limits) -> Option<Violation> {
    let ahead = at - now;
    if ahead < limits.fb_schedule_min || ahead > limits.fb_schedule_max {
        Some(
            Violation::new(
                ViolationCode::ScheduleOutOfWindow,
                "options.schedule_at",
                format!(
                    "Facebook publishes scheduled posts {} minutes to {} days ahead",
                    limits.fb_schedule_min.num_minutes(),
                    limits.fb_schedule_max.num_days()
                ),
            )
            .with_values(
                format!("{}min–{}d", limits.fb_schedule_min.num_minutes(), limits.fb_schedule_max.num_days()),
                format!("{}min", ahead.num_minutes()),
            ),
        )
    } else {
        None
    }
}

pub(crate) fn validate_facebook(
    caps: &Capabilities,
    limits: &Limits,
    content: &Content,
    options: &TargetOptions,
) -> Vec<Violation> {
    validate_facebook_at(caps, limits, content, options, Utc::now())
}

pub(crate) fn validate_facebook_at(
    caps: &Capabilities,
    limits: &Limits,
    content: &Content,
    options: &TargetOptions,
    now: DateTime<Utc>,
) -> Vec<Violation> {
    let mut out = validate_against_capabilities(caps, content, |s| s.chars().count());
    let opts: FacebookOptions = match options.get() {
        Ok(o) => o,
        Err(v) => {
            out.push(v);
            FacebookOptions::default()
        }
    };
    if content.text.trim().is_empty() && content.media.is_empty() && content.link.is_none() {
        out.push(Violation::new(ViolationCode::EmptyPost, "text", "a Facebook post needs text, a link or media"));
    }
    if opts.schedule_at.is_some() && !content.comments.is_empty() {
        out.push(Violation::new(
            ViolationCode::CommentsNotSupported,
            "comments",
            "a post Facebook publishes later (schedule_at) cannot be commented on before it is public: schedule it \
             with konektly (publish_at) instead",
        ));
    }
    if content.link.is_some() && !content.media.is_empty() {
        out.push(Violation::new(
            ViolationCode::LinkWithMedia,
            "link",
            "a Facebook post with photos or a video cannot carry a link",
        ));
    }
    if opts.kind == FacebookPostKind::Reel {
        let videos: Vec<&Media> = content.media.iter().filter(|m| m.kind() == MediaKind::Video).collect();
        if videos.len() != 1 || content.media.len() != 1 {
            out.push(
                Violation::new(ViolationCode::ReelNeedsOneVideo, "media", "a Reel is exactly one video")
                    .with_values(1, content.media.len()),
            );
        }
        for (i, m) in content.media.iter().enumerate() {
            if m.kind() == MediaKind::Video {
                duration_violations(&mut out, &format!("media[{i}]"), m, secs(3), secs(90), "a Facebook Reel");
                if let (Some(w), Some(h)) = (m.width, m.height) {
                    out.extend(FB_REEL.check(w, h, &format!("media[{i}]")));
                }
                out.extend(facebook_reel_format().check(m, &format!("media[{i}]")));
            }
        }
        if content.link.is_some() {
            out.push(Violation::new(ViolationCode::LinksNotSupported, "link", "a Reel cannot carry a link"));
        }
    }
    if let Some(at) = opts.schedule_at
        && let Some(v) = schedule_violation(at, now, limits)
    {
        out.push(v);
    }
    out
}

/// `#tags` in a caption.
pub(crate) fn count_prefixed(text: &str, prefix: char) -> usize {
    let mut n = 0;
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let starts = prev.is_none_or(|p| p.is_whitespace() || (prefix == '#' && p == '#'));
        if c == prefix && starts && chars.peek().is_some_and(|n| n.is_alphanumeric() || *n == '_') {
            n += 1;
        }
        prev = Some(c);
    }
    n
}

/// What an Instagram target publishes as, from its options and media.
pub(crate) fn instagram_kind(content: &Content, opts: &InstagramOptions) -> InstagramMediaKind {
    opts.kind.unwrap_or(match content.media.as_slice() {
        [one] if one.kind() == MediaKind::Video => InstagramMediaKind::Reel,
        _ => InstagramMediaKind::Feed,
    })
}

/// Instagram feed images: 4:5 … 1.91:1 (the width is scaled to 320–1440 px, not refused).
const IG_FEED_IMAGE: konektly_core::Dimensions = konektly_core::Dimensions {
    min_aspect: Some(konektly_core::AspectRatio::new(4, 5)),
    max_aspect: Some(konektly_core::AspectRatio::new(191, 100)),
    ..konektly_core::Dimensions::NONE
};

/// Facebook Reels: at least 540×960.
const FB_REEL: konektly_core::Dimensions =
    konektly_core::Dimensions { min_width: Some(540), min_height: Some(960), ..konektly_core::Dimensions::NONE };

/// Instagram Reels: at most 1920 px wide, aspect 0.01:1 … 10:1.
const IG_REEL: konektly_core::Dimensions = konektly_core::Dimensions {
    max_width: Some(1920),
    min_aspect: Some(konektly_core::AspectRatio::new(1, 100)),
    max_aspect: Some(konektly_core::AspectRatio::new(10, 1)),
    ..konektly_core::Dimensions::NONE
};

fn ig_image(out: &mut Vec<Violation>, field: &str, m: &Media, check_ratio: bool) {
    if m.mime.essence_str() != "image/jpeg" {
        out.push(
            Violation::new(ViolationCode::MediaTypeNotSupported, field, "Instagram takes JPEG images only")
                .with_values("image/jpeg", m.mime.essence_str()),
        );
    }
    size_violation(out, field, m, IG_IMAGE_MAX_BYTES, "an Instagram image");
    // Exact, in integers, as the platform compares: 4:5 ≤ w:h ≤ 1.91:1.
    if check_ratio && let (Some(w), Some(h)) = (m.width, m.height) {
        out.extend(IG_FEED_IMAGE.check(w, h, field));
    }
}

fn ig_video_type(out: &mut Vec<Violation>, field: &str, m: &Media) {
    if !matches!(m.mime.essence_str(), "video/mp4" | "video/quicktime") {
        out.push(
            Violation::new(ViolationCode::MediaTypeNotSupported, field, "Instagram takes MP4 or MOV videos")
                .with_values("video/mp4, video/quicktime", m.mime.essence_str()),
        );
    }
    out.extend(instagram_video_format().check(m, field));
}

/// Whether publishing `content` on Instagram needs a `MediaHost`: Instagram fetches images by
/// URL always, and videos by URL unless their bytes go by resumable upload (the default for
/// local videos without a host; `resumable_upload: false` asks for a URL).
pub(crate) fn instagram_needs_media_host(content: &Content, options: &TargetOptions) -> bool {
    let resumable = options.get::<InstagramOptions>().map(|o| o.resumable_upload).unwrap_or(None);
    content.media.iter().any(|m| {
        let local = !matches!(m.source, konektly_core::MediaSource::Url(_));
        local && (m.kind() != MediaKind::Video || resumable == Some(false))
    })
}

/// `user_tags` and the partnership fields: one violation per broken rule.
fn instagram_tags(out: &mut Vec<Violation>, content: &Content, opts: &InstagramOptions, kind: InstagramMediaKind) {
    let n = content.media.len();
    let carousel = kind == InstagramMediaKind::Feed && n > 1;
    let mut per_item = vec![0usize; n];
    for (i, tag) in opts.user_tags.iter().enumerate() {
        let f = format!("options.user_tags[{i}]");
        if tag.graph_username().is_empty() {
            out.push(Violation::new(
                ViolationCode::UserTagUsernameRequired,
                format!("{f}.username"),
                "a tag names a username",
            ));
        }
        let Some(m) = content.media.get(tag.media_index) else {
            out.push(
                Violation::new(
                    ViolationCode::UserTagMediaOutOfRange,
                    format!("{f}.media_index"),
                    "there is no such media item",
                )
                .with_values(n.saturating_sub(1), tag.media_index),
            );
            continue;
        };
        per_item[tag.media_index] += 1;
        if carousel && m.kind() == MediaKind::Video {
            out.push(Violation::new(
                ViolationCode::UserTagsNotSupported,
                format!("{f}.media_index"),
                "a video inside a carousel takes no user tags",
            ));
            continue;
        }
        // An image's tag sits somewhere on it; in a Story or a Reel the position is optional.
        let needs_position = m.kind() == MediaKind::Image && kind != InstagramMediaKind::Story;
        if needs_position && (tag.x.is_none() || tag.y.is_none()) {
            out.push(Violation::new(
                ViolationCode::UserTagPositionRequired,
                &f,
                "a tag on an image needs its position: x and y, from 0.0 to 1.0",
            ));
        }
        for (axis, v) in [("x", tag.x), ("y", tag.y)] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                out.push(
                    Violation::new(
                        ViolationCode::UserTagPositionOutOfRange,
                        format!("{f}.{axis}"),
                        format!("{axis} is a fraction of the image, from 0.0 to 1.0"),
                    )
                    .with_values("0.0–1.0", v),
                );
            }
        }
    }
    for (item, count) in per_item.iter().enumerate() {
        if *count > INSTAGRAM_MAX_USER_TAGS {
            out.push(
                Violation::new(
                    ViolationCode::TooManyUserTags,
                    "options.user_tags",
                    format!("at most {INSTAGRAM_MAX_USER_TAGS} people are tagged on one media item (media[{item}])"),
                )
                .with_values(INSTAGRAM_MAX_USER_TAGS, count),
            );
        }
    }
    let sponsors = &opts.branded_content_sponsor_ids;
    if sponsors.len() > INSTAGRAM_MAX_SPONSORS {
        out.push(
            Violation::new(
                ViolationCode::TooManySponsors,
                "options.branded_content_sponsor_ids",
                format!("at most {INSTAGRAM_MAX_SPONSORS} brand sponsors"),
            )
            .with_values(INSTAGRAM_MAX_SPONSORS, sponsors.len()),
        );
    }
    for (i, id) in sponsors.iter().enumerate() {
        if id.trim().is_empty() {
            out.push(Violation::new(
                ViolationCode::SponsorIdRequired,
                format!("options.branded_content_sponsor_ids[{i}]"),
                "a sponsor is named by its Instagram user id",
            ));
        }
    }
}

pub(crate) fn validate_instagram(limits: &Limits, content: &Content, options: &TargetOptions) -> Vec<Violation> {
    let mut out = Vec::new();
    let opts: InstagramOptions = match options.get() {
        Ok(o) => o,
        Err(v) => {
            out.push(v);
            InstagramOptions::default()
        }
    };
    if opts.kind == Some(InstagramMediaKind::Story) && !content.comments.is_empty() {
        out.push(Violation::new(
            ViolationCode::CommentsNotSupported,
            "comments",
            "a Story takes no comments (its replies are direct messages)",
        ));
    } else {
        konektly_core::validate_comments(
            &instagram_capabilities(limits),
            &content.comments,
            |s| s.chars().count(),
            &mut out,
        );
    }
    let len = content.text.chars().count();
    if len > INSTAGRAM_MAX_CAPTION {
        out.push(
            Violation::new(
                ViolationCode::TextTooLong,
                "text",
                format!("a caption is at most {INSTAGRAM_MAX_CAPTION} characters"),
            )
            .with_values(INSTAGRAM_MAX_CAPTION, len),
        );
    }
    let tags = count_prefixed(&content.text, '#');
    if tags > INSTAGRAM_MAX_HASHTAGS {
        out.push(
            Violation::new(
                ViolationCode::TooManyHashtags,
                "text",
                format!("at most {INSTAGRAM_MAX_HASHTAGS} hashtags"),
            )
            .with_values(INSTAGRAM_MAX_HASHTAGS, tags),
        );
    }
    let mentions = count_prefixed(&content.text, '@');
    if mentions > INSTAGRAM_MAX_MENTIONS {
        out.push(
            Violation::new(
                ViolationCode::TooManyMentions,
                "text",
                format!("at most {INSTAGRAM_MAX_MENTIONS} @mentions"),
            )
            .with_values(INSTAGRAM_MAX_MENTIONS, mentions),
        );
    }
    if content.link.is_some() {
        out.push(Violation::new(ViolationCode::LinksNotSupported, "link", "Instagram posts cannot carry a link"));
    }
    if !content.thread.is_empty() {
        out.push(Violation::new(ViolationCode::ThreadsNotSupported, "thread", "Instagram does not publish threads"));
    }
    if content.media.is_empty() {
        out.push(Violation::new(ViolationCode::MediaRequired, "media", "an Instagram post needs an image or a video"));
        return out;
    }
    let kind = instagram_kind(content, &opts);
    let n = content.media.len();
    for (i, m) in content.media.iter().enumerate() {
        let f = format!("media[{i}]");
        if let Some(alt) = &m.alt_text
            && alt.chars().count() > 1000
        {
            out.push(
                Violation::new(ViolationCode::AltTextTooLong, &f, "alt text is at most 1000 characters")
                    .with_values(1000, alt.chars().count()),
            );
        }
        match (kind, m.kind()) {
            (InstagramMediaKind::Feed, MediaKind::Image) => ig_image(&mut out, &f, m, true),
            (InstagramMediaKind::Feed, MediaKind::Video) if n == 1 => out.push(Violation::new(
                ViolationCode::VideoMustBeReel,
                &f,
                "a single Instagram video is published as a Reel (choose kind `reel`)",
            )),
            (InstagramMediaKind::Feed, MediaKind::Video) => {
                ig_video_type(&mut out, &f, m);
                size_violation(&mut out, &f, m, limits.ig_reel_max_bytes, "a carousel video");
                duration_violations(&mut out, &f, m, secs(3), secs(15 * 60), "a carousel video");
            }
            (InstagramMediaKind::Reel, MediaKind::Video) => {
                ig_video_type(&mut out, &f, m);
                size_violation(&mut out, &f, m, limits.ig_reel_max_bytes, "a Reel");
                duration_violations(&mut out, &f, m, secs(3), secs(15 * 60), "a Reel");
                if let (Some(w), Some(h)) = (m.width, m.height) {
                    out.extend(IG_REEL.check(w, h, &f));
                }
            }
            (InstagramMediaKind::Reel, _) => {
                out.push(Violation::new(ViolationCode::ReelNeedsVideo, &f, "a Reel is a video"));
            }
            (InstagramMediaKind::Story, MediaKind::Image) => ig_image(&mut out, &f, m, false),
            (InstagramMediaKind::Story, MediaKind::Video) => {
                ig_video_type(&mut out, &f, m);
                size_violation(&mut out, &f, m, limits.ig_story_video_max_bytes, "a Story video");
                duration_violations(&mut out, &f, m, secs(3), secs(60), "a Story video");
            }
            (_, _) => out.push(
                Violation::new(
                    ViolationCode::MediaKindNotSupported,
                    &f,
                    "Instagram takes JPEG images and MP4/MOV videos",
                )
                .with_values("image/jpeg, video/mp4", m.mime.essence_str()),
            ),
        }
    }
    match kind {
        InstagramMediaKind::Feed if n > 10 => out.push(
            Violation::new(ViolationCode::TooManyMedia, "media", "a carousel holds 2 to 10 items")
                .with_values("2–10", n),
        ),
        InstagramMediaKind::Reel | InstagramMediaKind::Story if n != 1 => out.push(
            Violation::new(ViolationCode::TooManyMedia, "media", "a Reel or a Story is one item").with_values(1, n),
        ),
        _ => {}
    }
    if kind == InstagramMediaKind::Story {
        if !opts.collaborators.is_empty() {
            out.push(Violation::new(
                ViolationCode::CollaboratorsNotSupported,
                "options.collaborators",
                "Stories take no collaborators",
            ));
        }
        if opts.location_id.is_some() {
            out.push(Violation::new(
                ViolationCode::LocationNotSupported,
                "options.location_id",
                "Stories take no location",
            ));
        }
    }
    instagram_tags(&mut out, content, &opts, kind);
    if opts.collaborators.len() > 3 {
        out.push(
            Violation::new(ViolationCode::TooManyCollaborators, "options.collaborators", "at most 3 collaborators")
                .with_values(3, opts.collaborators.len()),
        );
    }
    if kind != InstagramMediaKind::Reel {
        for (set, field, what) in [
            (opts.share_to_feed.is_some(), "options.share_to_feed", "share_to_feed"),
            (opts.audio_name.is_some(), "options.audio_name", "an audio name"),
            (opts.trial_params.is_some(), "options.trial_params", "a trial Reel's settings"),
        ] {
            if set {
                out.push(Violation::new(ViolationCode::ReelsOnlyOption, field, format!("{what} is for Reels only")));
            }
        }
    }
    if opts.audio_name.as_deref().is_some_and(|a| a.trim().is_empty()) {
        out.push(Violation::new(
            ViolationCode::AudioNameRequired,
            "options.audio_name",
            "an audio name cannot be empty",
        ));
    }
    if kind != InstagramMediaKind::Reel && (opts.cover_url.is_some() || opts.thumb_offset_ms.is_some()) {
        out.push(Violation::new(
            ViolationCode::CoverOnlyForReels,
            "options.cover_url",
            "a cover or thumb offset is for Reels only",
        ));
    }
    // The thumbnail frame must lie within the video.
    if kind == InstagramMediaKind::Reel
        && let Some(offset) = opts.thumb_offset_ms
        && let Some(d) = content.media.first().and_then(|m| m.duration)
        && u128::from(offset) > d.as_millis()
    {
        out.push(
            Violation::new(
                ViolationCode::ThumbOffsetOutOfRange,
                "options.thumb_offset_ms",
                "the thumbnail frame lies past the video's end",
            )
            .with_values(d.as_millis().to_string(), offset),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use konektly_core::Media;

    fn jpeg(w: u32, h: u32, size: u64) -> Media {
        let mut m = Media::from_url("https://cdn.example/a.jpg".parse().unwrap(), "image/jpeg".parse().unwrap());
        m.width = Some(w);
        m.height = Some(h);
        m.size = Some(size);
        m
    }

    fn video(secs_: u64, size: u64) -> Media {
        let mut m = Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap());
        m.duration = Some(Duration::from_secs(secs_));
        m.size = Some(size);
        m
    }

    fn codes(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.code.as_str()).collect()
    }

    fn ig(content: &Content, opts: &InstagramOptions) -> Vec<Violation> {
        validate_instagram(&Limits::default(), content, &TargetOptions::new(opts).unwrap())
    }

    #[test]
    fn instagram_aspect_bounds_are_exact_and_relations_are_checked() {
        let one = |w, h| -> Vec<String> {
            ig(&Content::text("hi").with_media(jpeg(w, h, 1000)), &InstagramOptions::default())
                .into_iter()
                .map(|v| v.code.to_string())
                .collect()
        };
        assert!(one(1080, 1350).is_empty(), "exactly 4:5 is accepted");
        assert_eq!(one(1080, 1351), vec!["aspect_ratio_out_of_range"], "just taller than 4:5 is refused");
        assert!(one(1910, 1000).is_empty(), "exactly 1.91:1 is accepted");
        assert_eq!(one(1911, 1000), vec!["aspect_ratio_out_of_range"]);
        let reel = InstagramOptions {
            kind: Some(InstagramMediaKind::Reel),
            thumb_offset_ms: Some(31_000),
            ..Default::default()
        };
        let c = Content::text("hi").with_media(video(30, 1000));
        assert_eq!(codes(&ig(&c, &reel)), vec!["thumb_offset_out_of_range"]);
        let inside = InstagramOptions { thumb_offset_ms: Some(29_000), ..reel };
        assert!(codes(&ig(&c, &inside)).is_empty());
    }

    #[test]
    fn reel_only_options_are_refused_elsewhere_and_checked_on_reels() {
        let feed = Content::text("hi").with_media(jpeg(1080, 1080, 1000));
        let o = TargetOptions::from_json(serde_json::json!({
            "share_to_feed": true, "audio_name": "Original", "trial_params": {"graduation_strategy": "MANUAL"}
        }));
        let v = validate_instagram(&Limits::default(), &feed, &o);
        let fields: Vec<_> = v.iter().map(|v| (v.code.as_str(), v.field.as_str())).collect();
        assert_eq!(
            fields,
            vec![
                ("reels_only_option", "options.share_to_feed"),
                ("reels_only_option", "options.audio_name"),
                ("reels_only_option", "options.trial_params"),
            ],
            "one violation per option"
        );
        let reel = Content::text("hi").with_media(video(30, 1000));
        let ok = TargetOptions::from_json(serde_json::json!({
            "kind": "reel", "audio_name": "Original", "trial_params": {"graduation_strategy": "SS_PERFORMANCE"}
        }));
        assert!(validate_instagram(&Limits::default(), &reel, &ok).is_empty());
        let empty = TargetOptions::from_json(serde_json::json!({"kind": "reel", "audio_name": "  "}));
        assert_eq!(codes(&validate_instagram(&Limits::default(), &reel, &empty)), vec!["audio_name_required"]);
        let bad = TargetOptions::from_json(
            serde_json::json!({"kind": "reel", "trial_params": {"graduation_strategy": "SOON"}}),
        );
        let v = validate_instagram(&Limits::default(), &reel, &bad);
        assert_eq!(codes(&v), vec!["invalid_options"], "{v:?}");
    }

    #[test]
    fn an_unknown_option_is_refused_by_name() {
        let c = Content::text("hi").with_media(jpeg(1080, 1080, 1000));
        let o = TargetOptions::from_json(serde_json::json!({"share_to_fed": true}));
        let v = validate_instagram(&Limits::default(), &c, &o);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].code, "invalid_options");
        assert_eq!(v[0].field, "options.share_to_fed");
        assert!(v[0].message.contains("share_to_feed"), "the allowed keys are named: {}", v[0].message);
        let fb = validate_facebook(
            &facebook_capabilities(&Limits::default()),
            &Limits::default(),
            &Content::text("hi"),
            &TargetOptions::from_json(serde_json::json!({"schedule": "tomorrow"})),
        );
        assert_eq!(fb.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["options.schedule"]);
    }

    #[test]
    fn facebook_schedules_are_checked_against_the_given_clock() {
        let limits = Limits::default();
        let caps = facebook_capabilities(&limits);
        let now = Utc::now() + chrono::Duration::days(100);
        let o = FacebookOptions { schedule_at: Some(now + chrono::Duration::days(2)), ..Default::default() };
        let o = TargetOptions::new(&o).unwrap();
        assert!(validate_facebook_at(&caps, &limits, &Content::text("hi"), &o, now).is_empty());
        let v = validate_facebook_at(&caps, &limits, &Content::text("hi"), &o, Utc::now());
        assert_eq!(codes(&v), vec!["schedule_out_of_window"], "{v:?}");
    }

    #[test]
    fn instagram_lists_every_violation_at_once() {
        let mut text = "x".repeat(2_150);
        for i in 0..31 {
            text.push_str(&format!(" #t{i}"));
        }
        for i in 0..21 {
            text.push_str(&format!(" @u{i}"));
        }
        let mut png = jpeg(1000, 1000, 100);
        png.mime = "image/png".parse().unwrap();
        let content = Content::text(text)
            .with_media(png)
            .with_media(jpeg(1000, 3000, 9 * 1024 * 1024))
            .with_link("https://example.com".parse().unwrap());
        let v = ig(&content, &InstagramOptions::default());
        let c = codes(&v);
        for want in [
            "text_too_long",
            "too_many_hashtags",
            "too_many_mentions",
            "links_not_supported",
            "media_type_not_supported",
            "media_too_large",
            "aspect_ratio_out_of_range",
        ] {
            assert!(c.contains(&want), "missing {want} in {c:?}");
        }
    }

    #[test]
    fn instagram_counts_carousels_reels_and_stories() {
        let eleven = (0..11).fold(Content::text("hi"), |c, _| c.with_media(jpeg(1080, 1080, 1000)));
        assert_eq!(codes(&ig(&eleven, &InstagramOptions::default())), vec!["too_many_media"]);
        let two = Content::text("hi").with_media(jpeg(1080, 1350, 1000)).with_media(video(10, 1000));
        assert!(ig(&two, &InstagramOptions::default()).is_empty());
        let short_reel = Content::text("hi").with_media(video(2, 1000));
        assert_eq!(codes(&ig(&short_reel, &InstagramOptions::default())), vec!["video_too_short"]);
        let long_reel = Content::text("hi").with_media(video(16 * 60, 400 * 1024 * 1024));
        assert_eq!(codes(&ig(&long_reel, &InstagramOptions::default())), vec!["media_too_large", "video_too_long"]);
        let bigger = Limits { ig_reel_max_bytes: 1 << 30, ..Limits::default() };
        let v = validate_instagram(&bigger, &long_reel, &TargetOptions::none());
        assert_eq!(codes(&v), vec!["video_too_long"], "the Reel size limit is configurable");
        let story = InstagramOptions { kind: Some(InstagramMediaKind::Story), ..Default::default() };
        let long_story = Content::text("").with_media(video(61, 1000));
        assert_eq!(codes(&ig(&long_story, &story)), vec!["video_too_long"]);
        let tall_story = Content::text("").with_media(jpeg(1080, 1920, 1000));
        assert!(ig(&tall_story, &story).is_empty(), "stories are 9:16");
        let feed_video = InstagramOptions { kind: Some(InstagramMediaKind::Feed), ..Default::default() };
        assert_eq!(codes(&ig(&short_reel, &feed_video)), vec!["video_must_be_reel"]);
        assert_eq!(codes(&ig(&Content::text("no media"), &InstagramOptions::default())), vec!["media_required"]);
    }

    #[test]
    fn user_tags_are_checked_per_media_item_one_violation_per_rule() {
        use crate::model::InstagramUserTag as Tag;
        let with = |tags: Vec<Tag>| InstagramOptions { user_tags: tags, ..Default::default() };
        let image = Content::text("hi").with_media(jpeg(1080, 1080, 1000));
        assert!(ig(&image, &with(vec![Tag::at("friend", 0.0, 1.0), Tag::at("@other", 0.5, 0.25)])).is_empty());
        // Out of the image: one violation per coordinate, naming it.
        let v = ig(&image, &with(vec![Tag::at("friend", 1.5, -0.1)]));
        assert_eq!(codes(&v), vec!["user_tag_position_out_of_range", "user_tag_position_out_of_range"]);
        assert_eq!(v[0].field, "options.user_tags[0].x");
        assert_eq!(v[1].field, "options.user_tags[0].y");
        // An image's tag needs a position; a Story's and a Reel's need none.
        let unplaced = Tag { username: "friend".into(), ..Default::default() };
        assert_eq!(codes(&ig(&image, &with(vec![unplaced.clone()]))), vec!["user_tag_position_required"]);
        let story = InstagramOptions { kind: Some(InstagramMediaKind::Story), ..with(vec![unplaced.clone()]) };
        assert!(ig(&Content::text("").with_media(jpeg(1080, 1920, 1000)), &story).is_empty());
        assert!(ig(&Content::text("r").with_media(video(10, 1000)), &with(vec![unplaced])).is_empty());
        assert_eq!(codes(&ig(&image, &with(vec![Tag::at("  @", 0.5, 0.5)]))), vec!["user_tag_username_required"]);
        // At most 20 per media item: a carousel counts each item on its own.
        let carousel = Content::text("c")
            .with_media(jpeg(1080, 1080, 1000))
            .with_media(jpeg(1080, 1080, 1000))
            .with_media(video(10, 1000));
        let spread: Vec<Tag> = (0..40).map(|i| Tag::at(format!("u{i}"), 0.5, 0.5).on_item(i % 2)).collect();
        assert!(ig(&carousel, &with(spread)).is_empty(), "20 on each of two images");
        let crowded: Vec<Tag> = (0..21).map(|i| Tag::at(format!("u{i}"), 0.5, 0.5).on_item(1)).collect();
        let v = ig(&carousel, &with(crowded));
        assert_eq!(codes(&v), vec!["too_many_user_tags"]);
        assert!(v[0].message.contains("media[1]"), "{}", v[0].message);
        assert_eq!((v[0].limit.as_deref(), v[0].actual.as_deref()), (Some("20"), Some("21")));
        // Not on a video inside a carousel; not on an item that does not exist.
        let v = ig(&carousel, &with(vec![Tag::at("a", 0.5, 0.5).on_item(2), Tag::at("b", 0.5, 0.5).on_item(3)]));
        assert_eq!(codes(&v), vec!["user_tags_not_supported", "user_tag_media_out_of_range"]);
        assert_eq!(v[1].field, "options.user_tags[1].media_index");
    }

    #[test]
    fn sponsors_are_at_most_two() {
        let image = Content::text("hi").with_media(jpeg(1080, 1080, 1000));
        let o = |ids: &[&str]| InstagramOptions {
            branded_content_sponsor_ids: ids.iter().map(|s| s.to_string()).collect(),
            is_paid_partnership: Some(true),
            ..Default::default()
        };
        assert!(ig(&image, &o(&["17841400000000001", "17841400000000002"])).is_empty());
        let v = ig(&image, &o(&["1", "2", "3"]));
        assert_eq!(codes(&v), vec!["too_many_sponsors"]);
        assert_eq!((v[0].limit.as_deref(), v[0].actual.as_deref()), (Some("2"), Some("3")));
        assert_eq!(codes(&ig(&image, &o(&[" "]))), vec!["sponsor_id_required"]);
    }

    #[test]
    fn video_encodings_are_checked_for_instagram_and_facebook_reels() {
        let probed = |codec: &str, fps: f64, bit_rate: u64| {
            let mut m = video(10, 2000);
            m.video_codec = Some(codec.into());
            m.audio_codec = Some("aac".into());
            m.frame_rate = Some(fps);
            m.bit_rate = Some(bit_rate);
            (m.width, m.height) = (Some(1080), Some(1920));
            Content::text("r").with_media(m)
        };
        let none = InstagramOptions::default();
        assert!(ig(&probed("hevc", 30.0, 20_000_000), &none).is_empty());
        assert_eq!(codes(&ig(&probed("vp9", 30.0, 1), &none)), vec!["video_codec_not_supported"]);
        assert_eq!(codes(&ig(&probed("h264", 20.0, 1), &none)), vec!["frame_rate_out_of_range"]);
        assert_eq!(codes(&ig(&probed("h264", 30.0, 30_000_000), &none)), vec!["bit_rate_too_high"]);
        let story = InstagramOptions { kind: Some(InstagramMediaKind::Story), ..Default::default() };
        assert_eq!(codes(&ig(&probed("vp9", 30.0, 1), &story)), vec!["video_codec_not_supported"]);
        // Facebook Reels: 24–60 fps; a feed video has no stated frame rate.
        let limits = Limits::default();
        let caps = facebook_capabilities(&limits);
        let fb = |c: &Content, o: &FacebookOptions| {
            codes(&validate_facebook(&caps, &limits, c, &TargetOptions::new(o).unwrap()))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let reel = FacebookOptions { kind: FacebookPostKind::Reel, ..Default::default() };
        assert_eq!(fb(&probed("h264", 23.0, 1), &reel), vec!["frame_rate_out_of_range"]);
        assert!(fb(&probed("h264", 24.0, 1), &reel).is_empty());
        assert!(fb(&probed("h264", 23.0, 1), &FacebookOptions::default()).is_empty());
    }

    #[test]
    fn instagram_needs_a_media_host_for_local_images_and_url_only_videos() {
        let local = |mime: &str| {
            let mut m = Media::from_bytes(&b"\xff\xd8\xff"[..]);
            m.mime = mime.parse().unwrap();
            m
        };
        let none = TargetOptions::none();
        assert!(instagram_needs_media_host(&Content::text("i").with_media(local("image/jpeg")), &none));
        assert!(!instagram_needs_media_host(&Content::text("i").with_media(jpeg(10, 10, 10)), &none));
        let reel = Content::text("r").with_media(local("video/mp4"));
        assert!(!instagram_needs_media_host(&reel, &none), "a local video goes by resumable upload");
        let by_url =
            TargetOptions::new(&InstagramOptions { resumable_upload: Some(false), ..Default::default() }).unwrap();
        assert!(instagram_needs_media_host(&reel, &by_url));
    }

    #[test]
    fn hashtags_and_mentions_are_counted_as_words() {
        assert_eq!(count_prefixed("#a #b c#d ## #_e", '#'), 3);
        assert_eq!(count_prefixed("@a mail@x.com @b", '@'), 2);
    }

    #[test]
    fn facebook_checks_schedule_reels_and_media() {
        let limits = Limits::default();
        let caps = facebook_capabilities(&limits);
        let fb =
            |c: &Content, o: &FacebookOptions| validate_facebook(&caps, &limits, c, &TargetOptions::new(o).unwrap());
        let soon =
            FacebookOptions { schedule_at: Some(Utc::now() + chrono::Duration::minutes(5)), ..Default::default() };
        let far = FacebookOptions { schedule_at: Some(Utc::now() + chrono::Duration::days(31)), ..Default::default() };
        let ok = FacebookOptions { schedule_at: Some(Utc::now() + chrono::Duration::days(2)), ..Default::default() };
        let text = Content::text("hello");
        assert_eq!(codes(&fb(&text, &soon)), vec!["schedule_out_of_window"]);
        assert_eq!(codes(&fb(&text, &far)), vec!["schedule_out_of_window"]);
        assert!(fb(&text, &ok).is_empty());
        let reel = FacebookOptions { kind: FacebookPostKind::Reel, ..Default::default() };
        let long = Content::text("r").with_media(video(91, 2000));
        assert_eq!(codes(&fb(&long, &reel)), vec!["video_too_long"]);
        // Under 1 KB: Facebook refuses it (subcode 1363022).
        let tiny = Content::text("t").with_media(video(10, 1000));
        assert_eq!(codes(&fb(&tiny, &FacebookOptions::default())), vec!["media_too_small"]);
        // A Reel under 540×960.
        let mut small = video(10, 2000);
        (small.width, small.height) = (Some(480), Some(854));
        assert_eq!(codes(&fb(&Content::text("s").with_media(small), &reel)), vec!["dimensions_too_small"]);
        let photo_reel = Content::text("r").with_media(jpeg(10, 10, 10));
        assert_eq!(codes(&fb(&photo_reel, &reel)), vec!["reel_needs_one_video"]);
        let mixed = Content::text("m").with_media(jpeg(10, 10, 10)).with_media(video(10, 10));
        assert!(codes(&fb(&mixed, &FacebookOptions::default())).contains(&"mixed_media"));
        let big =
            Content::text("b").with_media(jpeg(10, 10, 11 * 1024 * 1024)).with_link("https://e.x".parse().unwrap());
        let c = fb(&big, &FacebookOptions::default());
        assert_eq!(codes(&c), vec!["media_too_large", "link_with_media"]);
        assert_eq!(codes(&fb(&Content::text(" "), &FacebookOptions::default())), vec!["empty_post"]);
    }
}
