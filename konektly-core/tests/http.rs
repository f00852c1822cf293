//! The HTTP layer: retries only where safe, `Retry-After` honoured, failures mapped to kinds,
//! secrets kept out of errors.

use std::time::Duration;

use konektly_core::http::ApiResponse;
use konektly_core::{CallKind, Error, HttpClient, HttpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client() -> HttpClient {
    HttpClient::with_config(HttpConfig {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn an_idempotent_call_is_retried_after_a_5xx() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/status"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/status"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let http = client();
    let resp = http.send(http.client().get(format!("{}/status", server.uri())), CallKind::Idempotent).await.unwrap();
    assert_eq!(resp.status(), 200);
    server.verify().await;
}

#[tokio::test]
async fn a_429_without_retry_after_is_returned_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("x-rate-limit-reset", "1700000000"))
        .expect(1)
        .mount(&server)
        .await;
    let http = client();
    let resp = http.send(http.client().get(format!("{}/limited", server.uri())), CallKind::Idempotent).await.unwrap();
    assert_eq!(resp.status(), 429, "the adapter reads its own reset header; no blind retries");
    server.verify().await;
}

#[tokio::test]
async fn a_create_is_never_retried_and_a_5xx_is_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/posts"))
        .respond_with(ResponseTemplate::new(500).set_body_string("{}"))
        .expect(1)
        .mount(&server)
        .await;
    let http = client();
    let resp = http.send(http.client().post(format!("{}/posts", server.uri())), CallKind::Create).await.unwrap();
    let api = ApiResponse::read(resp, CallKind::Create).await.unwrap();
    assert!(matches!(api.status_error(CallKind::Create, "boom", None), Error::UnknownOutcome { .. }));
    server.verify().await;
}

#[tokio::test]
async fn retry_after_is_honoured_in_place_when_short_and_returned_when_long() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/short"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path("/short")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/long"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let http = client();
    let ok = http.send(http.client().get(format!("{}/short", server.uri())), CallKind::Idempotent).await.unwrap();
    assert_eq!(ok.status(), 200);
    let resp = http.send(http.client().get(format!("{}/long", server.uri())), CallKind::Idempotent).await.unwrap();
    let api = ApiResponse::read(resp, CallKind::Idempotent).await.unwrap();
    let Error::RateLimited { retry_at: Some(at), .. } = api.status_error(CallKind::Idempotent, "slow down", None)
    else {
        panic!("expected RateLimited")
    };
    let wait = at - chrono::Utc::now();
    assert!(wait > chrono::Duration::seconds(3500) && wait <= chrono::Duration::seconds(3600));
    server.verify().await;
}

/// A server that reads the request and hangs up without answering: the platform may have acted.
async fn hang_up_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock.shutdown().await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_create_cut_off_after_sending_is_an_unknown_outcome_and_names_no_secret() {
    let base = hang_up_server().await;
    let http = client();
    let req = http.client().post(format!("{base}/2/tweets?access_token=TOP-SECRET")).body("{}");
    let err = http.send(req, CallKind::Create).await.unwrap_err();
    assert!(matches!(err, Error::UnknownOutcome { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("TOP-SECRET"), "{shown}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        assert!(!s.to_string().contains("TOP-SECRET"));
        source = s.source();
    }
}

#[tokio::test]
async fn a_create_that_never_connected_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let http = client();
    let err = http.send(http.client().post(format!("http://{addr}/posts")), CallKind::Create).await.unwrap_err();
    assert!(matches!(err, Error::Transient { .. }), "nothing was sent, so retrying is safe: {err:?}");
}

#[tokio::test]
async fn the_default_timeout_applies_unless_a_request_sets_its_own() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/chunk"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(600)))
        .mount(&server)
        .await;
    let http = HttpClient::with_config(HttpConfig {
        timeout: Duration::from_millis(200),
        max_retries: 0,
        ..HttpConfig::default()
    })
    .unwrap();
    let url = format!("{}/chunk", server.uri());
    let err = http.send(http.client().put(&url), CallKind::Create).await.unwrap_err();
    assert!(matches!(err, Error::UnknownOutcome { .. }), "the default timeout cut the call: {err:?}");
    let slow_upload = http.client().put(&url).timeout(Duration::from_secs(10));
    assert_eq!(http.send(slow_upload, CallKind::Create).await.unwrap().status(), 200, "its own timeout wins");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "https://evil.example/steal"))
        .mount(&server)
        .await;
    let http = client();
    let resp = http.send(http.client().post(format!("{}/token", server.uri())), CallKind::Create).await.unwrap();
    assert_eq!(resp.status(), 302);
}

/// Issue 14: the client asks for gzip and reads a gzipped answer; a gzipped answer to a
/// create is its answer, never an unknown outcome.
#[tokio::test]
async fn a_gzipped_answer_to_a_create_is_read() {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"id":"12345","text":"hello"}"#).unwrap();
    let body = gz.finish().unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/posts"))
        .and(wiremock::matchers::header_regex("accept-encoding", "gzip"))
        .respond_with(
            ResponseTemplate::new(201).insert_header("content-encoding", "gzip").set_body_raw(body, "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let http = client();
    let resp = http.send(http.client().post(format!("{}/posts", server.uri())), CallKind::Create).await.unwrap();
    let api = ApiResponse::read(resp, CallKind::Create).await.unwrap();
    let v: serde_json::Value = api.json().unwrap();
    assert_eq!(v["id"], "12345");
    server.verify().await;
}

#[tokio::test]
async fn an_answer_longer_than_the_limit_is_not_read_into_memory() {
    let server = MockServer::start().await;
    let huge = vec![b' '; konektly_core::http::MAX_ANSWER_BYTES + 1];
    Mock::given(method("POST"))
        .and(path("/posts"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(huge.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/posts"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(huge))
        .mount(&server)
        .await;
    let http = client();
    // An accepted create whose answer cannot be read: it may have landed.
    let resp = http.send(http.client().post(format!("{}/posts", server.uri())), CallKind::Create).await.unwrap();
    let e = ApiResponse::read(resp, CallKind::Create).await.unwrap_err();
    assert!(matches!(e, Error::UnknownOutcome { .. }), "{e:?}");
    assert!(e.to_string().contains("longer than"), "{e}");
    // A read: try again later.
    let resp = http.send(http.client().get(format!("{}/posts", server.uri())), CallKind::Idempotent).await.unwrap();
    let e = ApiResponse::read(resp, CallKind::Idempotent).await.unwrap_err();
    assert!(matches!(e, Error::Transient { .. }), "{e:?}");
}
