//! X's rules, checked offline: length as X counts it, media mix, counts, sizes and durations,
//! polls, and the fields that exclude each other. Every violation is returned at once.

use std::time::Duration;

use konektly_core::ratelimit::{BudgetScope, DeclaredBudget};
use konektly_core::{
    Capabilities, Content, MediaKind, MediaLimits, ReconcileSupport, TargetOptions, TextCounting, Violation,
    ViolationCode, validate_against_capabilities,
};

use crate::model::XOptions;
use crate::text::{MAX_WEIGHTED_LENGTH, parse_text, weighted_length};

/// Longest alt text X accepts, in characters.
pub const MAX_ALT_TEXT_CHARS: usize = 1000;
/// Poll choices: 2–4, of 1–25 characters each; open 5–10080 minutes.
pub const POLL_OPTIONS: std::ops::RangeInclusive<usize> = 2..=4;
/// See [`POLL_OPTIONS`].
pub const POLL_OPTION_CHARS: std::ops::RangeInclusive<usize> = 1..=25;
/// See [`POLL_OPTIONS`].
pub const POLL_MINUTES: std::ops::RangeInclusive<u32> = 5..=10080;
const MAX_TAGGED_USERS: usize = 10;

/// What X can do, as data.
pub(crate) fn capabilities() -> Capabilities {
    let mb = 1024 * 1024;
    Capabilities {
        text_counting: TextCounting::Weighted,
        max_text_len: MAX_WEIGHTED_LENGTH,
        media: vec![
            MediaLimits {
                kind: MediaKind::Image,
                mime_types: vec!["image/jpeg".into(), "image/png".into(), "image/webp".into()],
                max_count: 4,
                max_bytes: 5 * mb,
                min_duration: None,
                max_duration: None,
                ..MediaLimits::default()
            },
            MediaLimits {
                kind: MediaKind::Gif,
                mime_types: vec!["image/gif".into()],
                max_count: 1,
                max_bytes: 15 * mb,
                min_duration: None,
                max_duration: None,
                ..MediaLimits::default()
            },
            MediaLimits {
                kind: MediaKind::Video,
                mime_types: vec!["video/mp4".into(), "video/quicktime".into()],
                max_count: 1,
                max_bytes: 512 * mb,
                min_duration: Some(Duration::from_millis(500)),
                max_duration: Some(Duration::from_secs(140)),
                // H.264 (High profile) video, AAC-LC audio, at most 60 frames per second.
                format: konektly_core::VideoFormat {
                    video_codecs: vec!["h264".into()],
                    audio_codecs: vec!["aac".into()],
                    max_frame_rate: Some(60.0),
                    ..konektly_core::VideoFormat::default()
                },
                // 32×32 … 1280×1024, aspect 1:3 … 3:1.
                dimensions: konektly_core::Dimensions {
                    min_width: Some(32),
                    min_height: Some(32),
                    max_width: Some(1280),
                    max_height: Some(1024),
                    min_aspect: Some(konektly_core::AspectRatio::new(1, 3)),
                    max_aspect: Some(konektly_core::AspectRatio::new(3, 1)),
                    ..konektly_core::Dimensions::default()
                },
                ..MediaLimits::default()
            },
        ],
        max_media_per_post: 4,
        mixed_media: false,
        media_required: false,
        threads: true,
        polls: true,
        links: false,
        native_scheduling: false,
        asynchronous_processing: true,
        rotating_refresh_tokens: true,
        reconcile: ReconcileSupport::Search,
        needs_media_host: false,
        budgets: vec![
            // POST /2/tweets: 100 per 15 minutes per user, 10,000 per 24 hours per app.
            DeclaredBudget::per_account("tweets", 100, Duration::from_secs(15 * 60)),
            DeclaredBudget {
                name: "tweets".into(),
                scope: BudgetScope::App,
                limit: 10_000,
                window: Duration::from_secs(24 * 3600),
                per_publish: 1,
                per_poll: 0,
            },
        ],
        // A comment is a reply from the same account, a post of its own: the post's limits.
        comments: Some(konektly_core::CommentSupport {
            max_len: MAX_WEIGHTED_LENGTH,
            max_comments: 10,
            note: Some("replies to the post from the same account (each counts against the posts' rate limits)".into()),
        }),
        delete: true,
        edit: konektly_core::EditSupport::none("X does not allow editing posts through this API"),
    }
}

/// Checks content and options against X's rules.
pub(crate) fn validate(caps: &Capabilities, content: &Content, options: &TargetOptions) -> Vec<Violation> {
    let mut out = validate_against_capabilities(caps, content, weighted_length);
    let opts: XOptions = match options.get() {
        Ok(o) => o,
        Err(v) => {
            out.push(v);
            XOptions::default()
        }
    };

    let items = std::iter::once((String::new(), content.text.as_str(), content.media.as_slice())).chain(
        content.thread.iter().enumerate().map(|(i, t)| (format!("thread[{i}]."), t.text.as_str(), t.media.as_slice())),
    );
    for (prefix, text, media) in items {
        if text.trim().is_empty() && media.is_empty() {
            out.push(Violation::new(
                ViolationCode::TextRequired,
                format!("{prefix}text"),
                "a post needs text or media",
            ));
        }
        if parse_text(text).has_invalid_characters {
            out.push(Violation::new(
                ViolationCode::InvalidCharacters,
                format!("{prefix}text"),
                "the text contains characters X refuses (U+FFFE, U+FEFF or U+FFFF)",
            ));
        }
        for (j, m) in media.iter().enumerate() {
            let field = format!("{prefix}media[{j}]");
            if m.size.is_none() {
                out.push(Violation::new(
                    ViolationCode::MediaSizeUnknown,
                    &field,
                    "X's upload needs the file's size: give it with Media::with_size",
                ));
            }
            if let Some(alt) = &m.alt_text {
                let n = alt.chars().count();
                if n > MAX_ALT_TEXT_CHARS {
                    out.push(
                        Violation::new(
                            ViolationCode::AltTextTooLong,
                            format!("{field}.alt_text"),
                            "the alt text is too long",
                        )
                        .with_values(MAX_ALT_TEXT_CHARS, n),
                    );
                }
            }
        }
    }

    if let Some(poll) = &opts.poll {
        if !POLL_OPTIONS.contains(&poll.options.len()) {
            out.push(
                Violation::new(ViolationCode::PollOptionsCount, "options.poll.options", "a poll has 2 to 4 choices")
                    .with_values("2–4", poll.options.len()),
            );
        }
        for (k, o) in poll.options.iter().enumerate() {
            let n = o.chars().count();
            if !POLL_OPTION_CHARS.contains(&n) {
                out.push(
                    Violation::new(
                        ViolationCode::PollOptionLength,
                        format!("options.poll.options[{k}]"),
                        "a poll choice has 1 to 25 characters",
                    )
                    .with_values("1–25", n),
                );
            }
        }
        if !POLL_MINUTES.contains(&poll.duration_minutes) {
            out.push(
                Violation::new(
                    ViolationCode::PollDuration,
                    "options.poll.duration_minutes",
                    "a poll stays open 5 to 10080 minutes (7 days)",
                )
                .with_values("5–10080", poll.duration_minutes),
            );
        }
    }

    // Only one of media, poll and quote on a post.
    let has_media = !content.media.is_empty();
    let exclusive = [
        ("media", has_media),
        ("options.poll", opts.poll.is_some()),
        ("options.quote_tweet_id", opts.quote_tweet_id.is_some()),
    ];
    let present: Vec<&str> = exclusive.iter().filter(|(_, p)| *p).map(|(f, _)| *f).collect();
    if present.len() > 1 {
        out.push(
            Violation::new(
                ViolationCode::MutuallyExclusive,
                present[1],
                format!("a post carries only one of media, a poll or a quote (this one has {})", present.join(", ")),
            )
            .with_values("one", present.len()),
        );
    }

    let ids = opts
        .reply_to
        .iter()
        .map(|v| ("options.reply_to", v))
        .chain(opts.quote_tweet_id.iter().map(|v| ("options.quote_tweet_id", v)))
        .chain(opts.community_id.iter().map(|v| ("options.community_id", v)))
        .chain(opts.exclude_reply_user_ids.iter().map(|v| ("options.exclude_reply_user_ids", v)))
        .chain(opts.tagged_user_ids.iter().map(|v| ("options.tagged_user_ids", v)));
    for (field, id) in ids {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            out.push(Violation::new(ViolationCode::InvalidId, field, format!("{id:?} is not an X id (digits only)")));
        }
    }
    if opts.tagged_user_ids.len() > MAX_TAGGED_USERS {
        out.push(
            Violation::new(
                ViolationCode::TooManyTaggedUsers,
                "options.tagged_user_ids",
                "at most 10 users can be tagged",
            )
            .with_values(MAX_TAGGED_USERS, opts.tagged_user_ids.len()),
        );
    }
    if !opts.tagged_user_ids.is_empty() && !has_media {
        out.push(Violation::new(
            ViolationCode::TaggingNeedsMedia,
            "options.tagged_user_ids",
            "users are tagged in media",
        ));
    }
    if opts.share_with_followers && opts.community_id.is_none() {
        out.push(Violation::new(
            ViolationCode::ShareNeedsCommunity,
            "options.share_with_followers",
            "sharing with followers is for a Community post: set options.community_id",
        ));
    }
    if let Some(place) = &opts.place_id
        && place.trim().is_empty()
    {
        out.push(Violation::new(ViolationCode::InvalidPlaceId, "options.place_id", "a place id is not empty"));
    }
    if !opts.exclude_reply_user_ids.is_empty() && opts.reply_to.is_none() {
        out.push(Violation::new(
            ViolationCode::ExcludeNeedsReply,
            "options.exclude_reply_user_ids",
            "excluding reply users needs options.reply_to",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use konektly_core::{Media, ThreadItem, bytes::Bytes};

    use super::*;
    use crate::model::XPoll;

    fn image(size: u64) -> Media {
        let mut m = Media::from_bytes(Bytes::from_static(b"\xFF\xD8\xFF\xE0 not a full jpeg"));
        m.probe_error = None; // the rules here are about the declared facts
        m.mime = "image/jpeg".parse().unwrap();
        m.size = Some(size);
        m
    }

    fn media(mime: &str, size: u64, secs: Option<f64>) -> Media {
        let mut m = image(size);
        m.mime = mime.parse().unwrap();
        m.duration = secs.map(Duration::from_secs_f64);
        m
    }

    fn codes(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.code.as_str()).collect()
    }

    fn check(content: &Content, opts: &XOptions) -> Vec<Violation> {
        validate(&capabilities(), content, &TargetOptions::new(opts).unwrap())
    }

    #[test]
    fn video_encodings_follow_x_s_rules() {
        let probed = |codec: &str, audio: &str, fps: f64| {
            let mut m = Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap())
                .with_size(1000);
            m.video_codec = Some(codec.into());
            m.audio_codec = Some(audio.into());
            m.frame_rate = Some(fps);
            Content::text("v").with_media(m)
        };
        let codes = |c: &Content| -> Vec<String> {
            validate(&capabilities(), c, &TargetOptions::none()).into_iter().map(|v| v.code.to_string()).collect()
        };
        assert!(codes(&probed("h264", "aac", 59.94)).is_empty());
        assert_eq!(codes(&probed("hevc", "aac", 30.0)), vec!["video_codec_not_supported"]);
        assert_eq!(codes(&probed("h264", "opus", 30.0)), vec!["audio_codec_not_supported"]);
        assert_eq!(codes(&probed("h264", "aac", 120.0)), vec!["frame_rate_out_of_range"]);
    }

    #[test]
    fn a_plain_post_is_valid() {
        assert!(check(&Content::text("hello"), &XOptions::default()).is_empty());
        let mut c = Content::text("four images");
        c.media = vec![image(1000), image(1000), image(1000), image(1000)];
        assert!(check(&c, &XOptions::default()).is_empty());
    }

    #[test]
    fn length_is_weighted() {
        // 140 CJK characters are 280: valid; 141 are not.
        assert!(check(&Content::text("故".repeat(140)), &XOptions::default()).is_empty());
        let v = check(&Content::text("故".repeat(141)), &XOptions::default());
        assert_eq!(codes(&v), ["text_too_long"]);
        assert_eq!(v[0].actual.as_deref(), Some("282"));
        // A long URL counts 23.
        let url = format!("see https://example.com/{}", "a".repeat(300));
        assert!(check(&Content::text(url), &XOptions::default()).is_empty());
    }

    #[test]
    fn media_mix_counts_sizes_and_durations() {
        let mut c = Content::text("x");
        c.media = vec![image(1), image(1), image(1), image(1), image(1)];
        // One broken rule (at most 4 images), one violation, by its kind.
        assert_eq!(codes(&check(&c, &XOptions::default())), vec!["too_many_media_of_kind"]);
        c.media = vec![image(1), media("video/mp4", 10, Some(10.0))];
        assert!(codes(&check(&c, &XOptions::default())).contains(&"mixed_media"));
        c.media = vec![media("image/gif", 1, None), media("image/gif", 1, None)];
        assert!(codes(&check(&c, &XOptions::default())).contains(&"too_many_media_of_kind"));
        c.media = vec![image(5 * 1024 * 1024 + 1)];
        assert_eq!(codes(&check(&c, &XOptions::default())), ["media_too_large"]);
        c.media = vec![media("image/gif", 15 * 1024 * 1024 + 1, None)];
        assert_eq!(codes(&check(&c, &XOptions::default())), ["media_too_large"]);
        c.media = vec![media("video/mp4", 512 * 1024 * 1024 + 1, Some(10.0))];
        assert_eq!(codes(&check(&c, &XOptions::default())), ["media_too_large"]);
        c.media = vec![media("video/mp4", 10, Some(0.4))];
        assert_eq!(codes(&check(&c, &XOptions::default())), ["video_too_short"]);
        c.media = vec![media("video/mp4", 10, Some(140.5))];
        assert_eq!(codes(&check(&c, &XOptions::default())), ["video_too_long"]);
        c.media = vec![media("video/mp4", 10, None)];
        assert!(check(&c, &XOptions::default()).is_empty(), "an unknown duration is not a violation");
        let mut unknown = image(1);
        unknown.size = None;
        c.media = vec![unknown.with_alt_text("a".repeat(1001))];
        assert_eq!(codes(&check(&c, &XOptions::default())), ["media_size_unknown", "alt_text_too_long"]);
    }

    #[test]
    fn poll_rules() {
        let poll = |options: &[&str], minutes| XOptions {
            poll: Some(XPoll { options: options.iter().map(|s| (*s).to_owned()).collect(), duration_minutes: minutes }),
            ..XOptions::default()
        };
        let c = Content::text("Which?");
        assert!(check(&c, &poll(&["a", "b"], 5)).is_empty());
        assert!(check(&c, &poll(&["a", "b", "c", "d"], 10080)).is_empty());
        assert_eq!(codes(&check(&c, &poll(&["a"], 60))), ["poll_options_count"]);
        assert_eq!(codes(&check(&c, &poll(&["a", "b", "c", "d", "e"], 60))), ["poll_options_count"]);
        assert_eq!(codes(&check(&c, &poll(&["a", ""], 60))), ["poll_option_length"]);
        assert_eq!(codes(&check(&c, &poll(&["a", &"b".repeat(26)], 60))), ["poll_option_length"]);
        assert_eq!(codes(&check(&c, &poll(&["a", "b"], 4))), ["poll_duration"]);
        assert_eq!(codes(&check(&c, &poll(&["a", "b"], 10081))), ["poll_duration"]);
    }

    #[test]
    fn media_poll_and_quote_exclude_each_other() {
        let mut c = Content::text("x");
        c.media = vec![image(1)];
        let opts = XOptions {
            poll: Some(XPoll { options: vec!["a".into(), "b".into()], duration_minutes: 60 }),
            quote_tweet_id: Some("123".into()),
            ..XOptions::default()
        };
        let v = check(&c, &opts);
        assert_eq!(codes(&v), ["mutually_exclusive"]);
        assert!(v[0].message.contains("media, options.poll, options.quote_tweet_id"));
        c.media.clear();
        assert_eq!(codes(&check(&c, &opts)), ["mutually_exclusive"]);
    }

    #[test]
    fn every_violation_at_once() {
        let mut c = Content::text("故".repeat(141)).with_thread_item(ThreadItem { text: String::new(), media: vec![] });
        c.media = vec![image(6 * 1024 * 1024)];
        let opts = XOptions {
            poll: Some(XPoll { options: vec!["only".into()], duration_minutes: 1 }),
            reply_to: Some("not-an-id".into()),
            ..XOptions::default()
        };
        let v = check(&c, &opts);
        for code in [
            "text_too_long",
            "media_too_large",
            "text_required",
            "poll_options_count",
            "poll_duration",
            "mutually_exclusive",
            "invalid_id",
        ] {
            assert!(codes(&v).contains(&code), "{code} missing from {v:?}");
        }
        assert!(v.iter().any(|v| v.field == "thread[0].text"));
    }

    #[test]
    fn malformed_options_and_invalid_characters() {
        let v = validate(
            &capabilities(),
            &Content::text("bad \u{FFFE}"),
            &TargetOptions::from_json(serde_json::json!({"poll": "yes"})),
        );
        assert_eq!(codes(&v), ["invalid_options", "invalid_characters"]);
        let v = validate(
            &capabilities(),
            &Content::text("typo"),
            &TargetOptions::from_json(serde_json::json!({"reply_setting": "following"})),
        );
        assert_eq!(codes(&v), ["invalid_options"]);
        assert!(v[0].message.contains("reply_setting"));
        let ok = TargetOptions::from_json(serde_json::json!({"reply_settings": "mentionedUsers", "reply_to": "1"}));
        assert!(validate(&capabilities(), &Content::text("ok"), &ok).is_empty());
        let v = check(&Content::text("link").with_link("https://example.com".parse().unwrap()), &XOptions::default());
        assert_eq!(codes(&v), ["links_not_supported"]);
    }
}
