//! Encoding bounds (`VideoFormat`): codecs, frame rates and bit rates are data in
//! `MediaLimits`, checked by `validate_against_capabilities` where the other media limits are,
//! and a fact nobody probed is never a violation.

use std::time::Duration;

use konektly_core::{
    Capabilities, Content, Media, MediaKind, MediaLimits, ReconcileSupport, TextCounting, VideoFormat, Violation,
    validate_against_capabilities,
};

fn format() -> VideoFormat {
    VideoFormat {
        video_codecs: vec!["h264".into(), "hevc".into()],
        audio_codecs: vec!["aac".into()],
        min_frame_rate: Some(23.0),
        max_frame_rate: Some(60.0),
        max_bit_rate: Some(25_000_000),
    }
}

fn caps() -> Capabilities {
    Capabilities {
        text_counting: TextCounting::Chars,
        max_text_len: 100,
        media: vec![MediaLimits {
            kind: MediaKind::Video,
            mime_types: vec!["video/mp4".into()],
            max_count: 1,
            max_bytes: u64::MAX,
            format: format(),
            ..MediaLimits::default()
        }],
        max_media_per_post: 1,
        mixed_media: false,
        media_required: false,
        threads: false,
        polls: false,
        links: false,
        native_scheduling: false,
        asynchronous_processing: false,
        rotating_refresh_tokens: false,
        reconcile: ReconcileSupport::CheckpointOnly,
        needs_media_host: false,
        budgets: Vec::new(),
        comments: None,
        delete: false,
        edit: Default::default(),
    }
}

/// A video whose probe facts are as given (set, as a probe of a real file would).
fn probed(video: &str, audio: Option<&str>, fps: f64, bit_rate: u64) -> Media {
    let mut m = Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap());
    m.video_codec = Some(video.into());
    m.audio_codec = audio.map(Into::into);
    m.frame_rate = Some(fps);
    m.bit_rate = Some(bit_rate);
    m.duration = Some(Duration::from_secs(10));
    m
}

fn codes(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.code.as_str()).collect()
}

fn check(m: Media) -> Vec<Violation> {
    validate_against_capabilities(&caps(), &Content::text("hi").with_media(m), |s| s.chars().count())
}

#[test]
fn a_video_within_every_bound_passes() {
    assert!(check(probed("h264", Some("aac"), 29.97, 8_000_000)).is_empty());
    assert!(check(probed("hevc", None, 60.0, 25_000_000)).is_empty(), "bounds are inclusive; no audio track passes");
    assert!(check(probed("h264", Some("aac"), 23.0, 1)).is_empty());
}

#[test]
fn each_broken_bound_is_one_violation_naming_the_fact() {
    let v = check(probed("vp9", Some("aac"), 30.0, 1_000_000));
    assert_eq!(codes(&v), vec!["video_codec_not_supported"]);
    assert_eq!((v[0].field.as_str(), v[0].actual.as_deref()), ("media[0]", Some("vp9")));
    assert_eq!(v[0].limit.as_deref(), Some("h264, hevc"));
    assert_eq!(codes(&check(probed("h264", Some("opus"), 30.0, 1))), vec!["audio_codec_not_supported"]);
    assert_eq!(codes(&check(probed("h264", Some("aac"), 22.5, 1))), vec!["frame_rate_out_of_range"]);
    assert_eq!(codes(&check(probed("h264", Some("aac"), 60.5, 1))), vec!["frame_rate_out_of_range"]);
    assert_eq!(codes(&check(probed("h264", Some("aac"), 30.0, 25_000_001))), vec!["bit_rate_too_high"]);
    let all = check(probed("av1", Some("mp3"), 120.0, 90_000_000));
    assert_eq!(
        codes(&all),
        vec!["video_codec_not_supported", "audio_codec_not_supported", "frame_rate_out_of_range", "bit_rate_too_high"]
    );
}

#[test]
fn facts_nobody_probed_are_not_violations() {
    // URL media: nothing is probed, so nothing about the encoding is known.
    let m = Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap());
    assert!(check(m).is_empty());
    assert!(format().check(&probed("h264", None, 30.0, 1), "media[0]").is_empty());
    // No bounds: anything goes, even an odd frame rate.
    assert!(VideoFormat::default().check(&probed("prores", Some("pcm"), f64::NAN, u64::MAX), "m").is_empty());
    assert!(VideoFormat::default().is_unbounded() && !format().is_unbounded());
}

#[test]
fn the_bounds_survive_a_round_trip_and_old_limits_read_as_unbounded() {
    let limits = &caps().media[0];
    let json = serde_json::to_value(limits).unwrap();
    let back: MediaLimits = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&back, limits);
    let mut old = json;
    old.as_object_mut().unwrap().remove("format");
    let read: MediaLimits = serde_json::from_value(old).unwrap();
    assert!(read.format.is_unbounded());
}
