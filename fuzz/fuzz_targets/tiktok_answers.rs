//! Arbitrary answers to the calls `konektly_tiktok` makes (status, headers, body; see `answers.rs`
//! for the layout), read by its `fuzzing` entry points: success bodies, error bodies,
//! rate-limit headers and token answers. Nothing may panic (libFuzzer's `-timeout` catches a hang).

#![no_main]

mod answers;

use konektly_tiktok::fuzzing;
use libfuzzer_sys::fuzz_target;

const ADAPTER: answers::Adapter = answers::Adapter {
    answers: fuzzing::ANSWERS,
    creates: fuzzing::creates,
    read: fuzzing::read,
    errors: |s, h, b| fuzzing::error(s, h, b).into_iter().collect(),
    rate_limits: |_| 0,
};

fuzz_target!(|data: &[u8]| answers::check(&ADAPTER, data));
