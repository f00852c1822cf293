//! Probes arbitrary bytes as media: `Media::from_bytes` must return (quickly: libFuzzer's
//! `-timeout` catches a hang) and never panic. libfuzzer-sys aborts on any panic, even one the
//! probe catches and turns into a `probe_error`, so a panicking parser is found too.

#![no_main]

use konektly_core::Media;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let media = Media::from_bytes(data.to_vec());
    if media.probe_error.is_some() {
        // A malformed file has no facts beside its type and size.
        assert!(media.width.is_none() && media.duration.is_none() && media.video_codec.is_none());
    }
    assert_eq!(media.size, Some(data.len() as u64));
    if let Some(fps) = media.frame_rate {
        assert!(fps.is_finite() && fps > 0.0);
    }
    // What is probed is stored with a post: it must serialize.
    serde_json::to_vec(&media).expect("probed media serializes");
});
