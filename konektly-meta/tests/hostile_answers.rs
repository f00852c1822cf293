//! Bounded mutation test of the Graph API response parsers, Facebook Pages and Instagram
//! (issue 13): thousands of hostile answers — mutated bodies and error envelopes, wrong types,
//! huge numbers, deep nesting, invalid UTF-8, absurd usage headers — read through
//! `konektly_meta::fuzzing`, the entry points the fuzz targets use. None may panic, each must
//! return within the bound, and an unreadable answer to a create is an unknown outcome. Replay a
//! failure with the seed it prints: `KONEKTLY_HOSTILE_SEED=0x… cargo test -p konektly-meta
//! --test hostile_answers -- --nocapture`.

use std::time::Duration;

use konektly_core::Error;
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_meta::fuzzing;
use konektly_testkit::hostile::{self, Seed, headers};
use serde_json::json;

const CASES: usize = 4000;
const BOUND: Duration = Duration::from_millis(50);

fn seeds() -> Vec<Seed> {
    let graph_error = |code: i64, subcode: i64| {
        json!({"error": {"message": "Error validating access token", "type": "OAuthException", "code": code,
            "error_subcode": subcode, "error_user_title": "Session expired", "error_user_msg": "Log in again",
            "fbtrace_id": "AbCdEf123", "is_transient": false,
            "error_data": {"start_offset": "1048576", "end_offset": 2097152}}})
    };
    vec![
        Seed::new("POST /{page-id}/feed", 200, json!({"id": "123456789_987654321"})),
        Seed::new("POST /{page-id}/feed", 400, graph_error(368, 1_390_008)),
        Seed::new("POST /{ig-user-id}/media", 200, json!({"id": 17_889_455_560_051_444_u64})),
        Seed::new("POST /{ig-user-id}/media", 400, graph_error(9004, 2_207_052)),
        Seed::new("POST /{ig-user-id}/media_publish", 200, json!({"id": "17920238422030506"})),
        Seed::new("POST /{ig-user-id}/media_publish", 400, graph_error(9007, 2_207_027)),
        Seed::new("POST /{ig-user-id}/media_publish", 403, graph_error(4, 0)),
        Seed::new(
            "GET /{container-id}",
            200,
            json!({"status_code": "IN_PROGRESS", "status": "Finished: 40%",
            "id": "17889455560051444"}),
        ),
        Seed::new("GET /{container-id}", 401, graph_error(190, 463)),
        Seed::new(
            "GET /oauth/access_token",
            200,
            json!({"access_token": "EAAB...", "token_type": "bearer",
            "expires_in": 5_183_944}),
        ),
        Seed::new(
            "POST api.instagram.com/oauth/access_token",
            200,
            json!({"data": [{"access_token": "IGQ...",
            "user_id": 17_841_400_000_000_000_u64, "permissions": "instagram_business_basic,instagram_business_content_publish"}]}),
        ),
        Seed::new(
            "POST api.instagram.com/oauth/access_token",
            400,
            json!({"error_type": "OAuthException",
            "code": 400, "error_message": "Invalid authorization code"}),
        ),
        Seed::new(
            "GET /{ig-user-id}/content_publishing_limit",
            200,
            json!({"data": [{"quota_usage": 2,
            "config": {"quota_total": 50, "quota_duration": 86400}}]}),
        ),
        Seed::new(
            "GET /{video-id}?fields=status",
            200,
            json!({"status": {"video_status": "processing",
            "uploading_phase": {"status": "complete"}, "processing_phase": {"status": "in_progress"},
            "publishing_phase": {"status": "not_started", "publish_status": "not_published"}}, "id": "1"}),
        ),
        Seed::new(
            "POST /{page-id}/video_reels",
            200,
            json!({"video_id": "1234567890",
            "upload_url": "https://rupload.facebook.com/video-upload/v25.0/1234567890"}),
        ),
        Seed::new(
            "POST /{page-id}/videos",
            200,
            json!({"upload_session_id": "2918", "video_id": "1234",
            "start_offset": "0", "end_offset": "1048576"}),
        ),
        Seed::new("POST /{page-id}/videos", 400, graph_error(6000, 1_363_037)),
    ]
}

#[test]
fn hostile_answers_never_panic_and_return_quickly() {
    for s in seeds() {
        assert!(fuzzing::ANSWERS.contains(&s.answer), "{} is an answer fuzzing reads", s.answer);
    }
    let report = hostile::run("meta", hostile::seed(), CASES, &seeds(), BOUND, |case| {
        let read = fuzzing::read(case.answer, case.status, &case.headers, &case.body);
        match &read {
            Ok(summary) => assert!(case.status.is_success(), "an error status is never a success: {summary}"),
            Err(e) => {
                let _ = (e.to_string(), format!("{e:?}"));
            }
        }
        if case.unreadable && fuzzing::creates(case.answer) {
            assert!(matches!(read, Err(Error::UnknownOutcome { .. })), "an unreadable create answer: {read:?}");
        }
        for report in fuzzing::rate_limits(&case.headers) {
            assert!(report.remaining <= 100, "{report:?}");
        }
        if !case.status.is_success() {
            for e in fuzzing::error(case.status, &case.headers, &case.body) {
                let _ = e.to_string();
            }
        }
    });
    assert!(report.unreadable > CASES / 20, "the mix has unreadable answers: {report:?}");
}

/// Found by this test: an `expires_in` of 10^16 panicked in `Duration::seconds`, an
/// `estimated_time_to_regain_access` of 10^17 minutes in `Duration::minutes`, and a `Retry-After`
/// of 10^15 seconds overflowed `now + d`.
#[test]
fn regression_huge_expiry_regain_and_retry_after_do_not_panic() {
    let body = br#"{"access_token":"EAAB","expires_in":9223372036854775807}"#;
    let read = fuzzing::read("GET /oauth/access_token", StatusCode::OK, &HeaderMap::new(), body);
    assert!(read.as_deref().is_ok_and(|s| s.contains("expires_at: None")), "{read:?}");
    let h = headers(&[
        (
            "x-business-use-case-usage",
            r#"{"1":[{"type":"pages","call_count":100,"estimated_time_to_regain_access":99999999999999999}]}"#,
        ),
        ("x-app-usage", r#"{"call_count":1e308,"total_cputime":-5,"total_time":null}"#),
        ("retry-after", "999999999999999"),
    ]);
    let reports = fuzzing::rate_limits(&h);
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports.iter().all(|r| r.remaining == 0), "{reports:?}");
    let body = br#"{"error":{"message":"Too many calls","type":"OAuthException","code":4}}"#;
    for e in fuzzing::error(StatusCode::FORBIDDEN, &h, body) {
        assert!(matches!(e, Error::RateLimited { retry_at: None, .. }), "{e:?}");
    }
}

#[test]
fn unreadable_create_answers_are_unknown_outcomes() {
    for body in [&b"{\"id\":\"123456789_98"[..], b"", b"<html>", b"\xff\xfe", b"{\"id\":null}"] {
        for answer in ["POST /{page-id}/feed", "POST /{ig-user-id}/media_publish"] {
            let read = fuzzing::read(answer, StatusCode::OK, &HeaderMap::new(), body);
            assert!(matches!(read, Err(Error::UnknownOutcome { .. })), "{answer} {body:?}: {read:?}");
        }
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
