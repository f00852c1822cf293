//! Bounded mutation test of X's response parsers (issue 13): thousands of hostile answers —
//! mutated JSON, wrong types, huge numbers, deep nesting, invalid UTF-8, absurd rate-limit
//! headers — read through `konektly_twitter::fuzzing`, the entry points the fuzz targets use.
//! None may panic, each must return within the bound, and an unreadable answer to a create is an
//! unknown outcome. Replay a failure with the seed it prints: `KONEKTLY_HOSTILE_SEED=0x… cargo
//! test -p konektly-twitter --test hostile_answers -- --nocapture`.

use std::time::Duration;

use konektly_core::Error;
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_testkit::hostile::{self, Seed, headers};
use konektly_twitter::fuzzing;
use serde_json::json;

const CASES: usize = 4000;
const BOUND: Duration = Duration::from_millis(50);

fn seeds() -> Vec<Seed> {
    let upload = |state: &str| {
        json!({"data": {"id": "1880028106020515840", "media_key": "3_1880028106020515840", "size": 1024,
            "expires_after_secs": 86400,
            "processing_info": {"state": state, "check_after_secs": 5, "progress_percent": 40,
                "error": {"code": 1, "name": "InvalidMedia", "message": "Unsupported video"}}}})
    };
    let problem = json!({"title": "Forbidden", "type": "about:blank", "status": 403,
        "detail": "You are not allowed to create a Tweet with duplicate content."});
    let capped = json!({"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped", "period": "Monthly", "scope": "Product"});
    let legacy = json!({"errors": [{"code": 88, "message": "Rate limit exceeded"},
        {"type": "https://api.x.com/2/problems/resource-not-found", "title": "Not Found", "detail": "gone"}]});
    vec![
        Seed::new(
            "POST /2/tweets",
            201,
            json!({"data": {"id": "1445880548472328192", "text": "hello",
            "edit_history_tweet_ids": ["1445880548472328192"]}}),
        ),
        Seed::new("POST /2/tweets", 403, problem.clone()),
        Seed::new("POST /2/tweets", 429, capped.clone()),
        Seed::new("POST /2/tweets", 400, legacy.clone()),
        Seed::new("POST /2/media/upload/initialize", 200, upload("pending")),
        Seed::new("POST /2/media/upload/{id}/finalize", 200, upload("in_progress")),
        Seed::new("GET /2/media/upload", 200, upload("failed")),
        Seed::new("GET /2/media/upload", 200, upload("succeeded")),
        Seed::new("GET /2/media/upload", 429, capped),
        Seed::new(
            "GET /2/users/me",
            200,
            json!({"data": {"id": "2244994945", "name": "X Dev",
            "username": "XDevelopers", "profile_image_url": "https://pbs.twimg.com/a.jpg"}}),
        ),
        Seed::new(
            "GET /2/users/me",
            401,
            json!({"title": "Unauthorized", "type": "about:blank",
            "status": 401, "detail": "Unauthorized"}),
        ),
        Seed::new(
            "GET /2/users/{id}/tweets",
            200,
            json!({"data": [
            {"id": "1", "text": "@jack hello https://t.co/x", "created_at": "2026-01-02T03:04:05.000Z",
             "referenced_tweets": [{"type": "replied_to", "id": "0"}]},
            {"id": "2", "text": "two", "created_at": "2026-01-02T03:04:06.000Z"}],
            "meta": {"result_count": 2, "next_token": "7140dibdnow9c7btw3w29grvxfcgvpb9n9coehpk7xz5i"}}),
        ),
        Seed::new("DELETE /2/tweets/{id}", 200, json!({"data": {"deleted": true}})),
        Seed::new("DELETE /2/tweets/{id}", 404, legacy),
        Seed::new("DELETE /2/tweets/{id}", 403, problem),
    ]
}

#[test]
fn hostile_answers_never_panic_and_return_quickly() {
    for s in seeds() {
        assert!(fuzzing::ANSWERS.contains(&s.answer), "{} is an answer fuzzing reads", s.answer);
    }
    let report = hostile::run("x", hostile::seed(), CASES, &seeds(), BOUND, |case| {
        let read = fuzzing::read(case.answer, case.status, &case.headers, &case.body);
        match &read {
            Ok(summary) => {
                assert!(case.status.is_success(), "an error status is never a success: {summary}");
            }
            Err(e) => {
                let _ = (e.to_string(), format!("{e:?}"));
            }
        }
        if case.unreadable && fuzzing::creates(case.answer) {
            assert!(matches!(read, Err(Error::UnknownOutcome { .. })), "an unreadable create answer: {read:?}");
        }
        for report in fuzzing::rate_limits(&case.headers) {
            let _ = report.reset_at.timestamp();
        }
        if !case.status.is_success() {
            for e in fuzzing::error(case.status, &case.headers, &case.body) {
                let _ = e.to_string();
            }
        }
    });
    assert!(report.unreadable > CASES / 20, "the mix has unreadable answers: {report:?}");
}

#[test]
fn absurd_rate_limit_headers_are_ignored_or_clamped() {
    let h = headers(&[
        ("x-rate-limit-remaining", "18446744073709551615"),
        ("x-rate-limit-reset", "-1"),
        ("x-user-limit-24hour-remaining", "0"),
        ("x-user-limit-24hour-reset", "99999999999999999"),
        ("x-app-limit-24hour-remaining", "5"),
        ("x-app-limit-24hour-reset", "1900000000"),
        ("retry-after", "99999999999"),
    ]);
    let reports = fuzzing::rate_limits(&h);
    assert_eq!(reports.len(), 1, "only the app's cap has a readable reset: {reports:?}");
    assert_eq!(reports[0].remaining, 5);
    let body = br#"{"title":"Too Many Requests","type":"about:blank","status":429}"#;
    for e in fuzzing::error(StatusCode::TOO_MANY_REQUESTS, &h, body) {
        assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    }
}

#[test]
fn unreadable_create_answers_are_unknown_outcomes() {
    for body in [&b"{\"data\":{\"id\":\"14458805"[..], b"", b"<html>", b"\xff\xfe", b"{\"data\":{\"id\":7}}"] {
        for answer in ["POST /2/tweets", "POST /2/media/upload/initialize"] {
            let read = fuzzing::read(answer, StatusCode::CREATED, &HeaderMap::new(), body);
            assert!(matches!(read, Err(Error::UnknownOutcome { .. })), "{answer} {body:?}: {read:?}");
        }
    }
}

/// Found by this test: `Retry-After: 999999999999999` (and an upload's `expires_after_secs` as
/// large) overflowed `Utc::now() + d` and panicked.
#[test]
fn regression_huge_retry_after_and_expiry_do_not_overflow() {
    let h = headers(&[("retry-after", "999999999999999")]);
    for e in fuzzing::error(StatusCode::TOO_MANY_REQUESTS, &h, b"[99999999999]") {
        assert!(matches!(e, Error::RateLimited { retry_at: None, .. }), "{e:?}");
    }
    let body = br#"{"data":{"id":"1","expires_after_secs":9000000000000000}}"#;
    let read = fuzzing::read("POST /2/media/upload/initialize", StatusCode::OK, &HeaderMap::new(), body);
    assert!(read.as_deref().is_ok_and(|s| s.contains("None")), "{read:?}");
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
        rate_limits: |h| fuzzing::rate_limits(h).len(),
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
