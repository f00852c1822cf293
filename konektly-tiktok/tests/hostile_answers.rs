//! Bounded mutation test of TikTok's response parsers (issue 13): thousands of hostile answers —
//! mutated envelopes and token answers, wrong types, huge numbers, deep nesting, invalid UTF-8,
//! absurd `Retry-After` — read through `konektly_tiktok::fuzzing`, the entry points the fuzz
//! targets use. None may panic, each must return within the bound, and an unreadable answer to
//! a create is an unknown outcome, or `Transient` (which the engine turns into one while a create
//! is outstanding). Replay a failure with the seed it prints: `KONEKTLY_HOSTILE_SEED=0x… cargo
//! test -p konektly-tiktok --test hostile_answers -- --nocapture`.

use std::time::Duration;

use konektly_core::Error;
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_testkit::hostile::{self, Seed, headers};
use konektly_tiktok::fuzzing;
use serde_json::{Value, json};

const CASES: usize = 4000;
const BOUND: Duration = Duration::from_millis(50);

fn ok(data: Value) -> Value {
    json!({"data": data, "error": {"code": "ok", "message": "", "log_id": "202206221854370101130062290E"}})
}

fn err(code: &str) -> Value {
    json!({"data": {}, "error": {"code": code, "message": "something", "log_id": "202206221854370101130062290E"}})
}

fn seeds() -> Vec<Seed> {
    vec![
        Seed::new(
            "POST v2/oauth/token/",
            200,
            json!({"access_token": "act.example", "expires_in": 86400,
            "open_id": "afd97af1-b87b-48b9-ac98-410aghda5344", "refresh_expires_in": 31536000,
            "refresh_token": "rft.example", "scope": "user.info.basic,video.publish", "token_type": "Bearer"}),
        ),
        Seed::new(
            "POST v2/oauth/token/",
            200,
            json!({"error": "invalid_grant",
            "error_description": "Authorization code is expired.", "log_id": "202206221854370101130062290E"}),
        ),
        Seed::new("POST v2/oauth/token/", 429, err("rate_limit_exceeded")),
        Seed::new("POST v2/oauth/revoke/", 200, json!({})),
        Seed::new(
            "GET v2/user/info/",
            200,
            ok(json!({"user": {"open_id": "723f24d7", "display_name": "Tik",
            "avatar_url": "https://p16.tiktokcdn.com/a.jpeg", "username": "tik"}})),
        ),
        Seed::new("GET v2/user/info/", 401, err("access_token_invalid")),
        Seed::new(
            "POST v2/post/publish/creator_info/query/",
            200,
            ok(json!({
            "creator_avatar_url": "https://lf16.tiktokcdn.com/a.jpeg", "creator_username": "tiktok",
            "creator_nickname": "TikTok", "privacy_level_options": ["PUBLIC_TO_EVERYONE", "SELF_ONLY"],
            "comment_disabled": false, "duet_disabled": false, "stitch_disabled": true,
            "max_video_post_duration_sec": 300})),
        ),
        Seed::new(
            "POST v2/post/publish/video/init/",
            200,
            ok(json!({"publish_id": "v_pub_file~v2-1.123456789",
            "upload_url": "https://open-upload.tiktokapis.com/video/?upload_id=67890&upload_token=Xza123"})),
        ),
        Seed::new("POST v2/post/publish/video/init/", 403, err("spam_risk_too_many_posts")),
        Seed::new("POST v2/post/publish/content/init/", 200, ok(json!({"publish_id": "p_pub_url~v2.123456789"}))),
        Seed::new("POST v2/post/publish/content/init/", 429, err("rate_limit_exceeded")),
        Seed::new(
            "POST v2/post/publish/status/fetch/",
            200,
            ok(json!({"status": "PUBLISH_COMPLETE",
            "publicaly_available_post_id": [7_245_987_654_321_u64, "7245987654321"], "uploaded_bytes": 10_000})),
        ),
        Seed::new(
            "POST v2/post/publish/status/fetch/",
            200,
            ok(json!({"status": "FAILED",
            "fail_reason": "file_format_check_failed"})),
        ),
        Seed::new("POST v2/post/publish/status/fetch/", 500, err("internal_error")),
        Seed::new("PUT upload_url", 206, json!({})),
        Seed::new("PUT upload_url", 403, err("invalid_file_upload")),
    ]
}

#[test]
fn hostile_answers_never_panic_and_return_quickly() {
    for s in seeds() {
        assert!(fuzzing::ANSWERS.contains(&s.answer), "{} is an answer fuzzing reads", s.answer);
    }
    let report = hostile::run("tiktok", hostile::seed(), CASES, &seeds(), BOUND, |case| {
        let read = fuzzing::read(case.answer, case.status, &case.headers, &case.body);
        if let Err(e) = &read {
            let _ = (e.to_string(), format!("{e:?}"));
        }
        if case.unreadable && fuzzing::creates(case.answer) && case.answer != "POST v2/oauth/token/" {
            assert!(
                matches!(read, Err(Error::UnknownOutcome { .. } | Error::Transient { .. })),
                "an unreadable create answer: {read:?}"
            );
        }
        for e in fuzzing::error(case.status, &case.headers, &case.body) {
            let _ = e.to_string();
        }
    });
    assert!(report.unreadable > CASES / 20, "the mix has unreadable answers: {report:?}");
}

/// Found by this test: an `expires_in` of 10^16 panicked in `Duration::seconds`, and a
/// `Retry-After` of 10^15 seconds on `rate_limit_exceeded` overflowed `Utc::now() + d`.
#[test]
fn regression_huge_expires_in_and_retry_after_do_not_panic() {
    let body = br#"{"access_token":"act.x","expires_in":9223372036854775807,"refresh_expires_in":999999999999999}"#;
    let read = fuzzing::read("POST v2/oauth/token/", StatusCode::OK, &HeaderMap::new(), body);
    assert!(read.as_deref().is_ok_and(|s| s.contains("expires None, refresh expires None")), "{read:?}");
    let h = headers(&[("retry-after", "999999999999999")]);
    let body = serde_json::to_vec(&err("rate_limit_exceeded")).unwrap();
    let read = fuzzing::read("POST v2/post/publish/video/init/", StatusCode::TOO_MANY_REQUESTS, &h, &body);
    assert!(matches!(read, Err(Error::RateLimited { retry_at: None, .. })), "{read:?}");
}

#[test]
fn unreadable_init_answers_are_not_final() {
    for body in [&b"{\"data\":{\"publish_id\":\"v_pub"[..], b"", b"<html>", b"\xff\xfe", b"{\"data\":null}"] {
        let read = fuzzing::read("POST v2/post/publish/video/init/", StatusCode::OK, &HeaderMap::new(), body);
        assert!(matches!(read, Err(Error::UnknownOutcome { .. } | Error::Transient { .. })), "{body:?}: {read:?}");
    }
}

#[path = "../../fuzz/fuzz_targets/answers.rs"]
mod answers;

/// The fuzz target's own code (`fuzz/fuzz_targets/answers.rs`), compiled and run on stable over
/// hostile cases encoded as fuzz inputs.
#[test]
fn the_fuzz_target_reads_hostile_cases() {
    let adapter = answers::Adapter {
        answers: fuzzing::ANSWERS,
        creates: fuzzing::creates,
        read: fuzzing::read,
        errors: |s, h, b| fuzzing::error(s, h, b).into_iter().collect(),
        rate_limits: |_| 0,
    };
    let mut g = hostile::Hostile::new(hostile::seed());
    for _ in 0..500 {
        let c = g.case(&seeds());
        let input = answers::encode(&adapter, c.answer, c.status, &c.headers, &c.body);
        let decoded = answers::decode(&adapter, &input).expect("an encoded case decodes");
        assert_eq!((decoded.answer, decoded.status, decoded.body), (c.answer, c.status, &c.body[..]));
        answers::check(&adapter, &input);
    }
}
