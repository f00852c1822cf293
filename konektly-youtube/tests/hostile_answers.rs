//! Bounded mutation test of YouTube's and Google's response parsers (issue 13): thousands of
//! hostile answers — mutated bodies and error envelopes, wrong types, huge numbers, deep nesting,
//! invalid UTF-8, absurd `Retry-After` and `Range` headers — read through
//! `konektly_youtube::fuzzing`, the entry points the fuzz targets use. None may panic and each
//! must return within the bound. Replay a failure with the seed it prints:
//! `KONEKTLY_HOSTILE_SEED=0x… cargo test -p konektly-youtube --test hostile_answers -- --nocapture`.

use std::time::Duration;

use konektly_core::Error;
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_testkit::hostile::{self, Seed, headers};
use konektly_youtube::fuzzing;
use serde_json::json;

const CASES: usize = 4000;
const BOUND: Duration = Duration::from_millis(50);

fn seeds() -> Vec<Seed> {
    let google_error = |code: u16, reason: &str| {
        json!({"error": {"code": code, "message": "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
            "errors": [{"message": "quota", "domain": "youtube.quota", "reason": reason}],
            "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"}]}})
    };
    let video = json!({"kind": "youtube#video", "id": "Ks-_Mh1QhMc", "status": {"uploadStatus": "processed",
        "privacyStatus": "private", "publishAt": "2030-01-01T00:00:00Z", "rejectionReason": null},
        "processingDetails": {"processingStatus": "processing",
            "processingProgress": {"partsTotal": "1000", "partsProcessed": 37, "timeLeftMs": "12000"}}});
    vec![
        Seed::new(
            "POST oauth2 token",
            200,
            json!({"access_token": "ya29.a0", "expires_in": 3599,
            "refresh_token": "1//0g", "refresh_token_expires_in": 604799,
            "scope": "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly",
            "token_type": "Bearer"}),
        ),
        Seed::new(
            "POST oauth2 token",
            400,
            json!({"error": "invalid_grant",
            "error_description": "Token has been expired or revoked.", "error_subtype": "invalid_rapt"}),
        ),
        Seed::new(
            "GET channels",
            200,
            json!({"items": [{"id": "UC_x5XG1OV2P6uZZ5FSM9Ttw",
            "snippet": {"title": "Google Developers", "customUrl": "@googledevelopers",
                "thumbnails": {"default": {"url": "https://yt3.ggpht.com/a.jpg"}}}}]}),
        ),
        Seed::new("GET channels", 401, google_error(401, "authError")),
        Seed::new("GET videos", 200, json!({"items": [video.clone()]})),
        Seed::new("GET videos", 403, google_error(403, "quotaExceeded")),
        Seed::new("PUT upload session", 308, json!({})),
        Seed::new("PUT upload session", 200, video),
        Seed::new("PUT upload session", 503, google_error(503, "backendError")),
        Seed::new("PUT upload session", 400, google_error(400, "uploadLimitExceeded")),
        Seed::new("POST thumbnails/set", 200, json!({"items": []})),
        Seed::new("POST thumbnails/set", 429, google_error(429, "rateLimitExceeded")),
    ]
}

#[test]
fn hostile_answers_never_panic_and_return_quickly() {
    for s in seeds() {
        assert!(fuzzing::ANSWERS.contains(&s.answer), "{} is an answer fuzzing reads", s.answer);
    }
    let report = hostile::run("youtube", hostile::seed(), CASES, &seeds(), BOUND, |case| {
        let read = fuzzing::read(case.answer, case.status, &case.headers, &case.body);
        if let Err(e) = &read {
            let _ = (e.to_string(), format!("{e:?}"));
        }
        if case.unreadable {
            // Nothing was read: never a success, and an unreadable finished upload is asked about again.
            let done = read.as_deref().is_ok_and(|s| s.starts_with("done") || s.starts_with("expires"));
            assert!(!done, "an unreadable answer read as a success: {read:?}");
        }
        if !case.status.is_success() {
            for e in fuzzing::error(case.status, &case.headers, &case.body) {
                let _ = e.to_string();
            }
        }
    });
    assert!(report.unreadable > CASES / 20, "the mix has unreadable answers: {report:?}");
}

/// Found by this test: `Range: bytes=0-18446744073709551615` overflowed `last + 1` (a panic in
/// debug builds), an `expires_in` of 10^16 panicked in `Duration::seconds`, and a `Retry-After`
/// of 10^15 seconds overflowed `now + d`.
#[test]
fn regression_huge_range_expiry_and_retry_after_do_not_panic() {
    let h = headers(&[("range", "bytes=0-18446744073709551615")]);
    let read = fuzzing::read("PUT upload session", StatusCode::PERMANENT_REDIRECT, &h, b"");
    assert!(matches!(read, Err(Error::Transient { .. })), "{read:?}");
    let h = headers(&[("range", "bytes=0-262143")]);
    let read = fuzzing::read("PUT upload session", StatusCode::PERMANENT_REDIRECT, &h, b"");
    assert_eq!(read.unwrap(), "incomplete at 262144");

    let body =
        br#"{"access_token":"ya29","expires_in":9223372036854775807,"refresh_token_expires_in":999999999999999}"#;
    let read = fuzzing::read("POST oauth2 token", StatusCode::OK, &HeaderMap::new(), body);
    assert_eq!(read.unwrap(), "expires None, refresh expires None, scope None");

    let h = headers(&[("retry-after", "999999999999999")]);
    let body = br#"{"error":{"code":429,"message":"slow down","errors":[{"reason":"rateLimitExceeded"}]}}"#;
    for e in fuzzing::error(StatusCode::TOO_MANY_REQUESTS, &h, body) {
        assert!(matches!(e, Error::RateLimited { retry_at: None, .. }), "{e:?}");
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
