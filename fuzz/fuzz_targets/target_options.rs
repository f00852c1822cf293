//! The JSON a server takes from its users: per-target options (`TargetOptions::from_json`, read
//! back as an adapter's typed options) and post content (`Content`). Parsing must never panic,
//! and what parses must serialize and parse again.

#![no_main]

use konektly_core::{Content, PlatformOptions, TargetOptions};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

/// Options shaped like an adapter's: known keys only, an enum, nested values.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FuzzOptions {
    #[serde(default)]
    privacy: Privacy,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    reply_settings: Option<ReplySettings>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Privacy {
    #[default]
    Public,
    Unlisted,
    Private,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReplySettings {
    audience: String,
    #[serde(default)]
    limit: Option<u32>,
}

impl PlatformOptions for FuzzOptions {
    const PLATFORM: &'static str = "fuzz";
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let options = TargetOptions::from_json(value);
        let _ = options.is_empty();
        match options.get::<FuzzOptions>() {
            Ok(typed) => {
                TargetOptions::new(&typed).expect("typed options serialize");
            }
            Err(violation) => {
                // The violation names a field of the options.
                assert!(violation.field == "options" || violation.field.starts_with("options."));
                assert_eq!(violation.code, "invalid_options");
            }
        }
        let json = serde_json::to_vec(&options).expect("options serialize");
        serde_json::from_slice::<TargetOptions>(&json).expect("serialized options parse");
    }
    if let Ok(content) = serde_json::from_slice::<Content>(data) {
        let json = serde_json::to_vec(&content).expect("content serializes");
        serde_json::from_slice::<Content>(&json).expect("serialized content parses");
    }
});
