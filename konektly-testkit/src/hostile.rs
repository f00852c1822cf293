//! Hostile platform answers, for the bounded mutation tests of the adapters' response parsers
//! (`tests/hostile_answers.rs` in each adapter, through its `fuzzing` entry points).
//!
//! A [`Hostile`] generator starts from valid answers ([`Seed`]s) and mutates them, deterministic
//! for a given seed: JSON values of the wrong type, huge and negative numbers, numbers as strings
//! and strings as numbers, missing and unknown fields, deep nesting, byte flips, truncations,
//! invalid UTF-8; odd statuses; absurd rate-limit headers (`Retry-After: 99999999999`, a negative
//! `x-rate-limit-reset`, usage JSON with `1e308`…). [`run`] feeds each case to a check under
//! `catch_unwind` and times it: a panic, or a call slower than the bound, fails with the seed and
//! the case so it can be replayed (`KONEKTLY_HOSTILE_SEED`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// The seed used when `KONEKTLY_HOSTILE_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x6b6f_6e65_6b74_6c79;

/// A header map of `pairs` (names lower-case, values valid header text): how the tests spell a
/// platform's answer headers.
pub fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().expect("a valid header value"));
    }
    h
}

/// The seed to use: `KONEKTLY_HOSTILE_SEED` (decimal or `0x` hex) if set, else [`DEFAULT_SEED`].
pub fn seed() -> u64 {
    let Ok(v) = std::env::var("KONEKTLY_HOSTILE_SEED") else { return DEFAULT_SEED };
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("KONEKTLY_HOSTILE_SEED={v:?} is not a number"))
}

/// A valid answer to start mutating from.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The call it answers, as the adapter's `fuzzing::ANSWERS` name it.
    pub answer: &'static str,
    /// Its status.
    pub status: u16,
    /// Its body.
    pub body: Value,
}

impl Seed {
    /// A seed.
    pub fn new(answer: &'static str, status: u16, body: Value) -> Self {
        Self { answer, status, body }
    }
}

/// One mutated answer.
#[derive(Clone, Debug)]
pub struct Case {
    /// Its number in the run (the same for the same seed).
    pub index: usize,
    /// The call it answers.
    pub answer: &'static str,
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the body is a success answer that is not JSON at all (truncated, invalid UTF-8,
    /// garbage): an adapter cannot have read anything from it.
    pub unreadable: bool,
}

impl Case {
    /// The case for people: the call, status, headers and the start of the body.
    pub fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(600)]).into_owned();
        format!(
            "case {} — {} — status {} — headers {:?} — body ({} bytes) {:?}",
            self.index,
            self.answer,
            self.status,
            self.headers,
            self.body.len(),
            body
        )
    }
}

/// Numbers that break careless arithmetic, as JSON literals.
const HOSTILE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "1.5",
    "-1e3",
    "4294967295",
    "4294967296",
    "99999999999",
    "9999999999999",
    "9223372036854775",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "1e400",
    "123456789012345678901234567890",
    "0.000000000000000000001",
];

/// Header values that break careless parsing.
const HOSTILE_HEADER_VALUES: &[&str] = &[
    "0",
    "-1",
    "-9223372036854775808",
    "99999999999",
    "999999999999999",
    "9223372036854775",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e10",
    "1.5",
    "",
    " 7 ",
    "abc",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "bytes=0-18446744073709551615",
    "bytes=0-18446744073709551614",
    "bytes=5-3",
    "bytes=-",
    "bytes=0-",
    "bytes=0--1",
    "https://upload.example/session?upload_id=1",
    "not a url",
];

/// The rate-limit and protocol headers of the adapters, plus a few others.
const HEADER_NAMES: &[&str] = &[
    "retry-after",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "x-user-limit-24hour-limit",
    "x-user-limit-24hour-remaining",
    "x-user-limit-24hour-reset",
    "x-app-limit-24hour-limit",
    "x-app-limit-24hour-remaining",
    "x-app-limit-24hour-reset",
    "x-app-usage",
    "x-business-use-case-usage",
    "x-ad-account-usage",
    "range",
    "location",
    "content-type",
    "content-length",
];

/// A deterministic generator of hostile answers.
#[derive(Debug)]
pub struct Hostile {
    rng: StdRng,
    next: usize,
}

impl Hostile {
    /// A generator; the same seed gives the same cases.
    pub fn new(seed: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), next: 0 }
    }

    /// The next case, mutated from one of `seeds`.
    pub fn case(&mut self, seeds: &[Seed]) -> Case {
        let seed = seeds.choose(&mut self.rng).expect("at least one seed");
        let index = self.next;
        self.next += 1;
        let status = self.status(seed.status);
        let headers = self.headers();
        let body = self.body(&seed.body);
        let unreadable = status.is_success() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err();
        Case { index, answer: seed.answer, status, headers, body, unreadable }
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        *from.choose(&mut self.rng).expect("a non-empty list")
    }

    fn status(&mut self, seed: u16) -> StatusCode {
        let s = if self.rng.random_bool(0.6) {
            seed
        } else {
            self.pick(&[
                100, 200, 201, 202, 204, 299, 301, 308, 400, 401, 403, 404, 408, 410, 413, 429, 500, 502, 503, 599, 999,
            ])
        };
        StatusCode::from_u16(s).unwrap_or(StatusCode::OK)
    }

    fn number(&mut self) -> String {
        if self.rng.random_bool(0.7) {
            self.pick(HOSTILE_NUMBERS).to_owned()
        } else {
            self.rng.random::<i64>().to_string()
        }
    }

    /// None, or a few rate-limit and protocol headers with absurd values.
    pub fn headers(&mut self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if self.rng.random_bool(0.2) {
            return h;
        }
        for _ in 0..self.rng.random_range(1..8) {
            let name = self.pick(HEADER_NAMES);
            let value: Vec<u8> = match (name, self.rng.random_range(0..10)) {
                ("x-app-usage" | "x-ad-account-usage", 0..7) => {
                    let (a, b, c) = (self.number(), self.number(), self.number());
                    format!(r#"{{"call_count":{a},"total_cputime":{b},"total_time":{c}}}"#).into_bytes()
                }
                ("x-business-use-case-usage", 0..7) => {
                    let (a, b) = (self.number(), self.number());
                    let kind = self.pick(&["\"pages\"", "\"instagram\"", "null", "7", "[]"]);
                    format!(
                        r#"{{"1234":[{{"type":{kind},"call_count":{a},"total_cputime":1,"total_time":2,"estimated_time_to_regain_access":{b}}}]}}"#
                    )
                    .into_bytes()
                }
                (_, 0..7) => self.pick(HOSTILE_HEADER_VALUES).as_bytes().to_vec(),
                (_, 7) => self.number().into_bytes(),
                // obs-text: bytes that are not UTF-8.
                (_, 8) => vec![b'1', 0xff, 0xfe, b'2'],
                _ => {
                    let n: u64 = self.rng.random();
                    n.to_string().into_bytes()
                }
            };
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                h.append(HeaderName::from_static(name), v);
            }
        }
        h
    }

    /// A mutated body.
    pub fn body(&mut self, seed: &Value) -> Vec<u8> {
        match self.rng.random_range(0..20) {
            // Mostly: the JSON with a few values changed, sometimes then broken as bytes.
            0..=11 => {
                let mut raws = Vec::new();
                let mut v = seed.clone();
                for _ in 0..self.rng.random_range(1..4) {
                    self.mutate_value(&mut v, &mut raws);
                }
                let mut text = serde_json::to_string(&v).expect("a Value serializes");
                for (i, raw) in raws.iter().enumerate() {
                    text = text.replace(&format!("\"@@raw{i}@@\""), raw);
                }
                let mut bytes = text.into_bytes();
                if self.rng.random_bool(0.2) {
                    self.mutate_bytes(&mut bytes);
                }
                bytes
            }
            12..=15 => {
                let mut bytes = serde_json::to_vec(seed).expect("a Value serializes");
                for _ in 0..self.rng.random_range(1..4) {
                    self.mutate_bytes(&mut bytes);
                }
                bytes
            }
            16 | 17 => self.nested(seed),
            _ => self.replacement(),
        }
    }

    /// A JSON value nested very deep, around the seed or alone.
    fn nested(&mut self, seed: &Value) -> Vec<u8> {
        let depth = self.pick(&[64usize, 127, 128, 129, 1000, 10_000]);
        let inner = serde_json::to_string(seed).expect("a Value serializes");
        let (open, close) = match self.rng.random_range(0..3) {
            0 => ("[", "]"),
            1 => (r#"{"data":"#, "}"),
            _ => (r#"{"error":"#, "}"),
        };
        let mut s = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
        for _ in 0..depth {
            s.push_str(open);
        }
        s.push_str(&inner);
        if self.rng.random_bool(0.8) {
            for _ in 0..depth {
                s.push_str(close);
            }
        }
        s.into_bytes()
    }

    /// A body that is not the answer at all.
    fn replacement(&mut self) -> Vec<u8> {
        match self.rng.random_range(0..10) {
            0 => Vec::new(),
            1 => b"null".to_vec(),
            2 => self
                .pick(&[&b"[]"[..], b"{}", b"\"\"", b"0", b"true", b"{\"data\":null}", b"{\"error\":null}"])
                .to_vec(),
            3 => b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
            4 => "[".repeat(200_000).into_bytes(),
            5 => "9".repeat(20_000).into_bytes(),
            6 => format!("{{\"data\":{{\"id\":\"{}\"}}}}", "a".repeat(200_000)).into_bytes(),
            7 => vec![0xff, 0xfe, 0x00, 0x7b, 0x22],
            8 => {
                let n = self.rng.random_range(1..512);
                (0..n).map(|_| self.rng.random::<u8>()).collect()
            }
            _ => format!("[{}]", vec!["{}"; 50_000].join(",")).into_bytes(),
        }
    }

    fn mutate_bytes(&mut self, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            bytes.push(b'{');
            return;
        }
        let at = self.rng.random_range(0..bytes.len());
        match self.rng.random_range(0..7) {
            0 => bytes[at] ^= 1 << self.rng.random_range(0..8),
            1 => {
                bytes[at] =
                    self.pick(&[b'"', b'{', b'}', b'[', b']', b',', b':', b'\\', b'0', b'-', b'e', 0xff, 0xc3, 0x80])
            }
            2 => bytes.truncate(at),
            3 => {
                let bad = self.pick(&[&[0xffu8][..], &[0xc3], &[0xed, 0xa0, 0x80], &[0xf4, 0x90, 0x80, 0x80], &[0]]);
                bytes.splice(at..at, bad.iter().copied());
            }
            4 => {
                let end = (at + self.rng.random_range(1..64)).min(bytes.len());
                bytes.drain(at..end);
            }
            5 => {
                let end = (at + self.rng.random_range(1..64)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let to = self.rng.random_range(0..=bytes.len());
                bytes.splice(to..to, copy);
            }
            _ => {
                let esc = self.pick(&[&b"\\ud800"[..], b"\\udfff", b"\\u0000", b"\\x41", b"\\"]);
                bytes.splice(at..at, esc.iter().copied());
            }
        }
    }

    /// Changes one value somewhere in `v`. Raw JSON text that a `Value` cannot hold (`1e400`,
    /// lone surrogates) goes in as a `"@@rawN@@"` placeholder for `raws[N]`.
    fn mutate_value(&mut self, node: &mut Value, raws: &mut Vec<String>) {
        // Walk down to a random node.
        let descend = self.rng.random_bool(0.75);
        match node {
            Value::Object(m) if descend && !m.is_empty() => {
                let i = self.rng.random_range(0..m.len());
                let key = m.keys().nth(i).expect("in range").clone();
                // Sometimes: the field is missing, or an unknown one is added.
                match self.rng.random_range(0..10) {
                    0 => {
                        m.remove(&key);
                    }
                    1 => {
                        m.insert(format!("{key}_unknown"), Value::from(1));
                    }
                    _ => self.mutate_value(m.get_mut(&key).expect("present"), raws),
                }
                return;
            }
            Value::Array(a) if descend && !a.is_empty() => {
                let i = self.rng.random_range(0..a.len());
                self.mutate_value(&mut a[i], raws);
                return;
            }
            _ => {}
        }
        let raw = |raws: &mut Vec<String>, text: String| {
            raws.push(text);
            Value::String(format!("@@raw{}@@", raws.len() - 1))
        };
        *node = match (std::mem::take(node), self.rng.random_range(0..12)) {
            // Numbers as strings, strings as numbers.
            (Value::Number(n), 0..=2) => Value::String(n.to_string()),
            (Value::String(s), 0..=2) => match s.parse::<f64>() {
                Ok(_) => raw(raws, s),
                Err(_) => raw(raws, self.number()),
            },
            (Value::String(s), 3) if !s.starts_with("@@raw") => raw(raws, format!("\"{s}\\ud800\"")),
            (Value::String(s), 4) if !s.starts_with("@@raw") => {
                // A long string, at most about 100 KB.
                let times = self.rng.random_range(100..2000).min(100_000 / s.len().max(1));
                Value::String(s.repeat(times))
            }
            (_, 0..=4) => raw(raws, self.number()),
            // Huge, negative, fractional numbers.
            (_, 5 | 6) => raw(raws, self.number()),
            (_, 7) => Value::Null,
            (_, 8) => Value::Bool(self.rng.random()),
            (old, 9) => Value::Array(vec![old; self.rng.random_range(0..3)]),
            (old, 10) => {
                let mut m = Map::new();
                m.insert("value".into(), old);
                Value::Object(m)
            }
            (_, _) => Value::String(
                self.pick(&["", "ok", "FAILED", "PUBLISH_COMPLETE", "processed", "-1", "null", "\u{0}"]).into(),
            ),
        };
    }
}

/// What a [`run`] measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Cases run.
    pub cases: usize,
    /// Cases whose body was an unreadable success answer.
    pub unreadable: usize,
    /// The slowest call.
    pub slowest: Duration,
    /// The slowest case, for people.
    pub slowest_case: String,
}

/// Runs `cases` hostile answers mutated from `seeds` (generator seeded with `seed`) through
/// `check`, which reads the case with the adapter's parsers and asserts what must hold. Fails
/// with the seed and the case on a panic, or when a case takes longer than `bound` (a slow case
/// is timed three more times and its fastest time counts, so a busy machine does not fail it, a
/// parser that is slow on that input does).
pub fn run(
    name: &str,
    seed: u64,
    cases: usize,
    seeds: &[Seed],
    bound: Duration,
    mut check: impl FnMut(&Case),
) -> Report {
    println!("{name}: {cases} hostile answers, seed {seed:#x} (replay with KONEKTLY_HOSTILE_SEED={seed:#x})");
    let mut g = Hostile::new(seed);
    let mut report = Report { cases, unreadable: 0, slowest: Duration::ZERO, slowest_case: String::new() };
    let mut timed = |case: &Case| -> Duration {
        let started = Instant::now();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(case))) {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{name}: seed {seed:#x}, {} panicked: {what}", case.describe());
        }
        started.elapsed()
    };
    for _ in 0..cases {
        let case = g.case(seeds);
        report.unreadable += usize::from(case.unreadable);
        let mut took = timed(&case);
        if took > bound {
            took = (0..3).map(|_| timed(&case)).min().unwrap_or(took);
        }
        assert!(took <= bound, "{name}: seed {seed:#x}, {} took {took:?} (bound {bound:?})", case.describe());
        if took > report.slowest {
            report.slowest = took;
            report.slowest_case = case.describe().chars().take(300).collect();
        }
    }
    println!(
        "{name}: {} cases ({} unreadable success answers), slowest {:?}: {}",
        report.cases, report.unreadable, report.slowest, report.slowest_case
    );
    report
}
