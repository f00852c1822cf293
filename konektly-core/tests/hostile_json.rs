//! Bounded mutation test of post JSON (issue 13): thousands of mutated `Content` documents —
//! wrong types, huge numbers, numbers as strings, missing and unknown fields, deep nesting, byte
//! flips, truncations, invalid UTF-8 — through `serde_json::from_slice::<Content>` (what a server
//! does with a post it is sent) and `TargetOptions::from_json`. None may panic, each must return
//! within the bound, and what parses serializes and parses again. The fuzz target
//! `fuzz/fuzz_targets/post_json.rs` does the same without bounds. Replay a failure with the seed
//! it prints: `KONEKTLY_HOSTILE_SEED=0x… cargo test -p konektly-core --test hostile_json`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use konektly_core::http::{retry_after, status_error};
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_core::{CallKind, Content, Error, Media, TargetOptions, ThreadItem};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CASES: usize = 4000;
const BOUND: Duration = Duration::from_millis(50);
const DEFAULT_SEED: u64 = 0x6b6f_6e65_6b74_6c79;

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1.5",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e400",
    "123456789012345678901234567890",
];

fn seed() -> u64 {
    match std::env::var("KONEKTLY_HOSTILE_SEED") {
        Ok(v) => match v.trim().strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).expect("a hex seed"),
            None => v.trim().parse().expect("a seed"),
        },
        Err(_) => DEFAULT_SEED,
    }
}

fn seeds() -> Vec<Value> {
    let image = Media::from_url("https://cdn.example/a.jpg".parse().unwrap(), "image/jpeg".parse().unwrap());
    let video = Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap());
    let mut content = Content::text("Hello 世界 #rust @konektly https://konektly.app").with_media(image.clone());
    content.link = Some("https://konektly.app/launch?utm=1".parse().unwrap());
    let item: ThreadItem = serde_json::from_value(json!({"text": "2/2", "media": []})).unwrap();
    content.thread = vec![item];
    let mut with_video = Content::text("").with_media(video);
    with_video.media[0].alt_text = Some("a cat".into());
    with_video.media[0].width = Some(1080);
    with_video.media[0].duration = Some(Duration::from_millis(12_345));
    vec![
        serde_json::to_value(&content).unwrap(),
        serde_json::to_value(&with_video).unwrap(),
        json!({"text": "options", "privacy_level": "SELF_ONLY", "poll": {"options": ["a", "b"], "duration_minutes": 60},
            "reply_settings": "following", "tags": ["x", "y"], "publish_at": "2030-01-01T00:00:00Z"}),
    ]
}

fn mutate(rng: &mut StdRng, v: &mut Value, raws: &mut Vec<String>) {
    let descend = rng.random_bool(0.75);
    match v {
        Value::Object(m) if descend && !m.is_empty() => {
            let key = m.keys().nth(rng.random_range(0..m.len())).unwrap().clone();
            match rng.random_range(0..10) {
                0 => drop(m.remove(&key)),
                1 => drop(m.insert(format!("{key}_x"), json!(1))),
                _ => mutate(rng, m.get_mut(&key).unwrap(), raws),
            }
            return;
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let i = rng.random_range(0..a.len());
            mutate(rng, &mut a[i], raws);
            return;
        }
        _ => {}
    }
    let raw = |raws: &mut Vec<String>, text: String| {
        raws.push(text);
        Value::String(format!("@@raw{}@@", raws.len() - 1))
    };
    *v = match (std::mem::take(v), rng.random_range(0..10)) {
        (Value::Number(n), 0 | 1) => Value::String(n.to_string()),
        (Value::String(s), 0 | 1) if !s.starts_with("@@raw") => {
            raw(raws, if s.parse::<f64>().is_ok() { s } else { NUMBERS.choose(rng).unwrap().to_string() })
        }
        (Value::String(s), 2) if !s.starts_with("@@raw") => raw(raws, format!("\"{s}\\ud800\"")),
        (_, 0..=3) => raw(raws, NUMBERS.choose(rng).unwrap().to_string()),
        (_, 4) => Value::Null,
        (_, 5) => Value::Bool(true),
        (old, 6) => Value::Array(vec![old; rng.random_range(0..3)]),
        (old, 7) => json!({ "value": old }),
        (_, 8) => Value::String("x".repeat(rng.random_range(0..100_000))),
        (_, _) => Value::String(
            ["", "file:///etc/passwd", "s3://b/k", "stored:zz", "\u{0}", "-1"].choose(rng).unwrap().to_string(),
        ),
    };
}

fn hostile(rng: &mut StdRng, seed: &Value) -> Vec<u8> {
    match rng.random_range(0..10) {
        0..=5 => {
            let mut v = seed.clone();
            let mut raws = Vec::new();
            for _ in 0..rng.random_range(1..4) {
                mutate(rng, &mut v, &mut raws);
            }
            let mut s = serde_json::to_string(&v).unwrap();
            for (i, r) in raws.iter().enumerate() {
                s = s.replace(&format!("\"@@raw{i}@@\""), r);
            }
            s.into_bytes()
        }
        6..=7 => {
            let mut b = serde_json::to_vec(seed).unwrap();
            for _ in 0..rng.random_range(1..4) {
                if b.is_empty() {
                    break;
                }
                let at = rng.random_range(0..b.len());
                match rng.random_range(0..4) {
                    0 => b[at] ^= 1 << rng.random_range(0..8),
                    1 => b.truncate(at),
                    2 => drop(b.splice(at..at, [0xff, 0xc3])),
                    _ => b[at] = *[b'"', b'{', b']', b'\\', b'9'].choose(rng).unwrap(),
                }
            }
            b
        }
        8 => {
            let depth = *[127usize, 128, 129, 10_000].choose(rng).unwrap();
            format!("{}{}", r#"{"text":"a","thread":[{"media":"#.repeat(depth), "[]}]}".repeat(depth)).into_bytes()
        }
        _ => (0..rng.random_range(0..256)).map(|_| rng.random::<u8>()).collect(),
    }
}

fn check(data: &[u8]) {
    if let Ok(content) = serde_json::from_slice::<Content>(data) {
        let json = serde_json::to_vec(&content).expect("content serializes");
        let again: Content = serde_json::from_slice(&json).expect("serialized content parses");
        assert_eq!(serde_json::to_vec(&again).unwrap(), json, "a round trip is stable");
    }
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let options = TargetOptions::from_json(value);
        let json = serde_json::to_vec(&options).expect("options serialize");
        serde_json::from_slice::<TargetOptions>(&json).expect("serialized options parse");
    }
}

#[test]
fn hostile_post_json_never_panics_and_returns_quickly() {
    let seed = seed();
    println!("{CASES} hostile post documents, seed {seed:#x} (replay with KONEKTLY_HOSTILE_SEED={seed:#x})");
    let seeds = seeds();
    for s in &seeds[..2] {
        serde_json::from_value::<Content>(s.clone()).expect("the seeds are valid posts");
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut slowest = Duration::ZERO;
    for index in 0..CASES {
        let start = seeds.choose(&mut rng).unwrap().clone();
        let data = hostile(&mut rng, &start);
        let describe = || format!("case {index}: {:?}", String::from_utf8_lossy(&data[..data.len().min(400)]));
        let run = || {
            let started = Instant::now();
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                panic!("seed {seed:#x}, {} panicked", describe());
            }
            started.elapsed()
        };
        let mut took = run();
        if took > BOUND {
            // Timed again: a busy machine does not fail the case, a slow parser does.
            took = (0..3).map(|_| run()).min().unwrap_or(took);
        }
        assert!(took <= BOUND, "seed {seed:#x}, {} took {took:?}", describe());
        slowest = slowest.max(took);
    }
    println!("slowest {slowest:?}");
}

/// Found by the adapters' hostile-answer tests: core's default mapping of a 429 added a
/// `Retry-After` of 10^15 seconds to now and panicked on the overflow.
#[test]
fn regression_huge_retry_after_on_429_does_not_panic() {
    let mut h = HeaderMap::new();
    h.insert("retry-after", "999999999999999".parse().unwrap());
    assert_eq!(retry_after(&h), Some(Duration::from_secs(999_999_999_999_999)));
    let e = status_error(StatusCode::TOO_MANY_REQUESTS, &h, CallKind::Create, "slow down".into(), None);
    assert!(matches!(e, Error::RateLimited { retry_at: None, .. }), "{e:?}");
}
