//! Post JSON as a server takes it from its users: arbitrary bytes to
//! `serde_json::from_slice::<Content>`. Parsing never panics, and what parses serializes and
//! parses again to the same JSON. (`target_options` also feeds `Content`; this target gives the
//! post model a corpus of its own.) The stable, bounded twin is
//! `konektly-core/tests/hostile_json.rs`.

#![no_main]

use konektly_core::Content;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = serde_json::from_slice::<Content>(data) {
        let json = serde_json::to_vec(&content).expect("content serializes");
        let again: Content = serde_json::from_slice(&json).expect("serialized content parses");
        assert_eq!(serde_json::to_vec(&again).expect("content serializes"), json, "a round trip is stable");
    }
});
