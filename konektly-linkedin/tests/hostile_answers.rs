//! Bounded mutation test of LinkedIn's answer parsers: thousands of hostile answers — mutated
//! token, userinfo, post-list and image answers, wrong types, invalid UTF-8 — read through
//! `konektly_linkedin::fuzzing`. None may panic, each must return within the bound, and an
//! unreadable answer to a create is an unknown outcome or `Transient`. Replay a failure with the
//! seed it prints: `KONEKTLY_HOSTILE_SEED=0x… cargo test -p konektly-linkedin --test
//! hostile_answers -- --nocapture`.

use std::time::Duration;

use konektly_core::Error;
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_linkedin::fuzzing;
use konektly_testkit::hostile::{self, Seed, headers};
use serde_json::json;

const CASES: usize = 3000;
const BOUND: Duration = Duration::from_millis(50);

fn seeds() -> Vec<Seed> {
    vec![
        Seed::new(
            "POST oauth/v2/accessToken",
            200,
            json!({"access_token": "AQV", "expires_in": 5_184_000, "scope": "openid,profile,w_member_social",
                "refresh_token": "AQW", "refresh_token_expires_in": 31_536_000}),
        ),
        Seed::new(
            "POST oauth/v2/accessToken",
            400,
            json!({"error": "invalid_request", "error_description": "Unable to retrieve access token"}),
        ),
        Seed::new("GET v2/userinfo", 200, json!({"sub": "782bbtaQ", "name": "Ada", "picture": "https://x/y.jpg"})),
        Seed::new("POST rest/posts", 201, json!({})),
        Seed::new(
            "POST rest/posts",
            422,
            json!({"message": "Content is a duplicate of urn:li:share:7141", "status": 422,
                "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}]}}),
        ),
        Seed::new(
            "POST rest/posts",
            401,
            json!({"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN", "message": "revoked"}),
        ),
        Seed::new(
            "GET rest/posts?q=author",
            200,
            json!({"paging": {"start": 0, "count": 10}, "elements": [{"id": "urn:li:share:1", "commentary": "hi",
                "createdAt": 1_790_000_000_000_i64, "lifecycleState": "PUBLISHED"}]}),
        ),
        Seed::new("DELETE rest/posts", 204, json!({})),
        Seed::new(
            "POST rest/images?action=initializeUpload",
            200,
            json!({"value": {"uploadUrlExpiresAt": 1_790_000_000_000_i64, "uploadUrl": "https://up/x", "image": "urn:li:image:1"}}),
        ),
    ]
}

#[test]
fn hostile_answers_never_panic_and_return_quickly() {
    for s in seeds() {
        assert!(fuzzing::ANSWERS.contains(&s.answer), "{} is an answer fuzzing reads", s.answer);
    }
    let report = hostile::run("linkedin", hostile::seed(), CASES, &seeds(), BOUND, |case| {
        let read = fuzzing::read(case.answer, case.status, &case.headers, &case.body);
        if let Err(e) = &read {
            let _ = (e.to_string(), format!("{e:?}"));
        }
        if case.unreadable && fuzzing::creates(case.answer) {
            assert!(
                matches!(read, Err(Error::UnknownOutcome { .. } | Error::Transient { .. })),
                "an unreadable create answer: {read:?}"
            );
        }
        for e in fuzzing::error(case.status, &case.headers, &case.body) {
            let _ = e.to_string();
        }
    });
    assert!(report.unreadable > 0, "the mix has unreadable answers: {report:?}");
}

#[test]
fn a_create_is_a_success_only_with_a_urn_in_x_restli_id() {
    let ok = fuzzing::read("POST rest/posts", StatusCode::CREATED, &headers(&[("x-restli-id", "urn:li:share:9")]), b"");
    assert_eq!(ok.unwrap(), "urn:li:share:9");
    for h in [HeaderMap::new(), headers(&[("x-restli-id", "")]), headers(&[("x-restli-id", "9")])] {
        let read = fuzzing::read("POST rest/posts", StatusCode::CREATED, &h, b"<html>");
        assert!(matches!(read, Err(Error::UnknownOutcome { .. })), "{h:?}: {read:?}");
    }
}
