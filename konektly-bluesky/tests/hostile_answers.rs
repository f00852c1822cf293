//! Bounded mutation test of Bluesky's answer parsers: thousands of hostile answers — mutated
//! sessions, DID documents, blob and record answers, wrong types, huge numbers, invalid UTF-8,
//! absurd `RateLimit-Reset` — read through `konektly_bluesky::fuzzing`. None may panic, each
//! must return within the bound, and an unreadable answer to a create is an unknown outcome or
//! `Transient`. Replay a failure with the seed it prints: `KONEKTLY_HOSTILE_SEED=0x… cargo test -p
//! konektly-bluesky --test hostile_answers -- --nocapture`.

use std::time::Duration;

use konektly_bluesky::fuzzing;
use konektly_core::Error;
use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::HeaderMap;
use konektly_testkit::hostile::{self, Seed, headers};
use serde_json::json;

const CASES: usize = 4000;
const BOUND: Duration = Duration::from_millis(50);

const JWT: &str =
    "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6ImNvbS5hdHByb3RvLmFwcFBhc3MiLCJleHAiOjE5MDAwMDAwMDB9.c2ln";

fn seeds() -> Vec<Seed> {
    let session = json!({"accessJwt": JWT, "refreshJwt": JWT, "handle": "alice.test",
        "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "active": true});
    vec![
        Seed::new("POST com.atproto.server.createSession", 200, session.clone()),
        Seed::new(
            "POST com.atproto.server.createSession",
            401,
            json!({"error": "AuthenticationRequired", "message": "Invalid identifier or password"}),
        ),
        Seed::new("POST com.atproto.server.refreshSession", 200, session),
        Seed::new(
            "POST com.atproto.server.refreshSession",
            400,
            json!({"error": "ExpiredToken", "message": "Token has been revoked"}),
        ),
        Seed::new("POST com.atproto.server.deleteSession", 200, json!({})),
        Seed::new("GET com.atproto.identity.resolveHandle", 200, json!({"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"})),
        Seed::new(
            "GET com.atproto.identity.resolveHandle",
            400,
            json!({"error": "InvalidRequest", "message": "Unable to resolve handle"}),
        ),
        Seed::new(
            "GET DID document",
            200,
            json!({"id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "alsoKnownAs": ["at://alice.test"],
                "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example"}]}),
        ),
        Seed::new(
            "GET app.bsky.actor.getProfile",
            200,
            json!({"did": "did:plc:x", "handle": "alice.test", "displayName": "Alice"}),
        ),
        Seed::new(
            "POST com.atproto.repo.uploadBlob",
            200,
            json!({"blob": {"$type": "blob", "ref": {"$link": "bafkreib"}, "mimeType": "image/jpeg", "size": 12345}}),
        ),
        Seed::new(
            "POST com.atproto.repo.createRecord",
            200,
            json!({"uri": "at://did:plc:x/app.bsky.feed.post/3l6ojy2mnvv2a", "cid": "bafyrei", "commit": {"cid": "bafyrei", "rev": "3l6"},
                "validationStatus": "valid"}),
        ),
        Seed::new(
            "POST com.atproto.repo.createRecord",
            500,
            json!({"error": "InternalServerError", "message": "Internal Server Error"}),
        ),
        Seed::new(
            "POST com.atproto.repo.createRecord",
            429,
            json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}),
        ),
        Seed::new(
            "GET com.atproto.repo.getRecord",
            200,
            json!({"uri": "at://did:plc:x/app.bsky.feed.post/3l6ojy2mnvv2a", "cid": "bafyrei", "value": {"text": "hi"}}),
        ),
        Seed::new(
            "GET com.atproto.repo.getRecord",
            400,
            json!({"error": "RecordNotFound", "message": "Could not locate record"}),
        ),
        Seed::new("POST com.atproto.repo.deleteRecord", 200, json!({"commit": {"cid": "bafyrei", "rev": "3l6"}})),
    ]
}

#[test]
fn hostile_answers_never_panic_and_return_quickly() {
    for s in seeds() {
        assert!(fuzzing::ANSWERS.contains(&s.answer), "{} is an answer fuzzing reads", s.answer);
    }
    let report = hostile::run("bluesky", hostile::seed(), CASES, &seeds(), BOUND, |case| {
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
        let _ = fuzzing::rate_limits(&case.headers);
    });
    assert!(report.unreadable > CASES / 20, "the mix has unreadable answers: {report:?}");
}

#[test]
fn an_absurd_rate_limit_reset_does_not_panic() {
    let h = headers(&[
        ("ratelimit-reset", "999999999999999999"),
        ("ratelimit-remaining", "0"),
        ("ratelimit-policy", "5000;w=3600"),
    ]);
    let body = br#"{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}"#;
    let read = fuzzing::read("POST com.atproto.repo.createRecord", StatusCode::TOO_MANY_REQUESTS, &h, body);
    assert!(matches!(read, Err(Error::RateLimited { .. })), "{read:?}");
    let _ = fuzzing::rate_limits(&h);
}

#[test]
fn unreadable_create_answers_are_not_final() {
    for body in [&b"{\"uri\":\"at://"[..], b"", b"<html>", b"\xff\xfe", b"{}", b"{\"uri\":\"https://x\",\"cid\":\"b\"}"]
    {
        let read = fuzzing::read("POST com.atproto.repo.createRecord", StatusCode::OK, &HeaderMap::new(), body);
        assert!(matches!(read, Err(Error::UnknownOutcome { .. } | Error::Transient { .. })), "{body:?}: {read:?}");
    }
}
