//! OAuth 2.0 with PKCE against a wiremock X: the authorize URL, the code exchange, refresh with
//! rotation and revocation, for confidential clients (HTTP Basic) and public ones (`client_id`
//! in the body); the profile; and the builder's environment variables.

mod common;

use chrono::Utc;
use common::*;
use konektly_core::oauth::{basic_auth, pkce_challenge};
use konektly_core::{Error, OwnerId, PendingAuthorization, PkceVerifier, Platform, PlatformId};
use konektly_twitter::{XBuilder, XPlatform};
use serde_json::json;
use url::Url;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "s3cret-value-for-tests";
const REDIRECT: &str = "https://app.example/callback/x";

fn confidential(base: &str) -> XPlatform {
    XBuilder::new().with_client_id("client-abc").with_client_secret(SECRET).with_base_url(base).build().unwrap()
}

fn basic() -> String {
    basic_auth("client-abc", SECRET).to_str().unwrap().to_owned()
}

fn no_authorization(req: &Request) -> bool {
    !req.headers.contains_key("authorization")
}

fn pending() -> PendingAuthorization {
    PendingAuthorization {
        state: "state-123".into(),
        platform: PlatformId::new("x"),
        owner: OwnerId::new("owner-1"),
        redirect_uri: Url::parse(REDIRECT).unwrap(),
        pkce_verifier: Some(PkceVerifier::new("verifier-0123456789-0123456789-0123456789-abc")),
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        reconnect: None,
    }
}

fn token_response(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "bearer", "expires_in": 7200, "access_token": access,
        "scope": "tweet.read tweet.write users.read media.write offline.access", "refresh_token": refresh
    }))
}

async fn mount_me(server: &MockServer, token: &str) {
    Mock::given(method("GET"))
        .and(path("/2/users/me"))
        .and(query_param("user.fields", "profile_image_url"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "id": USER_ID, "name": "Konektly", "username": "konektly",
            "profile_image_url": "https://pbs.twimg.com/profile_images/1/a_normal.jpg"
        }})))
        .expect(1)
        .mount(server)
        .await;
}

#[test]
fn the_authorize_url_asks_for_the_default_scopes_with_pkce() {
    let x = XBuilder::new().with_client_id("client-abc").build().unwrap();
    let req = x.authorization_request(&Url::parse(REDIRECT).unwrap()).unwrap();
    assert_eq!(req.url.origin().ascii_serialization(), "https://x.com");
    assert_eq!(req.url.path(), "/i/oauth2/authorize");
    let q: std::collections::HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "client-abc");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "tweet.read tweet.write users.read media.write offline.access");
    assert_eq!(q["state"], req.state);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], pkce_challenge(req.pkce_verifier.as_ref().unwrap().expose()));
    assert_eq!(q.len(), 7);

    let local = XBuilder::new().with_client_id("c").with_base_url("http://127.0.0.1:9000").build().unwrap();
    let req = local.authorization_request(&Url::parse(REDIRECT).unwrap()).unwrap();
    assert!(req.url.as_str().starts_with("http://127.0.0.1:9000/i/oauth2/authorize?"), "{}", req.url);
    let custom = XBuilder::new().with_client_id("c").with_scopes(["tweet.read", "users.read"]).build().unwrap();
    let req = custom.authorization_request(&Url::parse(REDIRECT).unwrap()).unwrap();
    assert!(req.url.query_pairs().any(|(k, v)| k == "scope" && v == "tweet.read users.read"));
}

#[tokio::test]
async fn a_confidential_client_exchanges_the_code_with_http_basic() {
    let server = MockServer::start().await;
    let x = confidential(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/oauth2/token"))
        .and(header("authorization", basic().as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(form_is(&[
            ("grant_type", "authorization_code"),
            ("code", "the-code"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "verifier-0123456789-0123456789-0123456789-abc"),
        ]))
        .respond_with(token_response("new-access", "new-refresh"))
        .expect(1)
        .mount(&server)
        .await;
    mount_me(&server, "new-access").await;
    let grants = x.exchange_code("the-code", &pending()).await.unwrap();
    assert_eq!(grants.len(), 1);
    let g = &grants[0];
    assert_eq!(g.platform, PlatformId::new("x"));
    assert_eq!(g.profile.remote_id, USER_ID);
    assert_eq!(g.profile.handle.as_deref(), Some("konektly"));
    assert_eq!(g.profile.display_name.as_deref(), Some("Konektly"));
    assert!(g.profile.avatar_url.is_some());
    assert_eq!(g.tokens.access_token.expose(), "new-access");
    assert_eq!(g.tokens.refresh_token.as_ref().unwrap().expose(), "new-refresh");
    let expires = g.tokens.expires_at.unwrap() - Utc::now();
    assert!(expires > chrono::Duration::minutes(119) && expires <= chrono::Duration::minutes(120));
    assert!(g.tokens.has_scopes(["tweet.write", "media.write", "offline.access"]));
}

#[tokio::test]
async fn a_public_client_sends_its_client_id_in_the_body() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/oauth2/token"))
        .and(no_authorization)
        .and(form_is(&[
            ("grant_type", "authorization_code"),
            ("code", "the-code"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "verifier-0123456789-0123456789-0123456789-abc"),
            ("client_id", "client-abc"),
        ]))
        .respond_with(token_response("pub-access", "pub-refresh"))
        .expect(1)
        .mount(&server)
        .await;
    mount_me(&server, "pub-access").await;
    let grants = x.exchange_code("the-code", &pending()).await.unwrap();
    assert_eq!(grants[0].tokens.access_token.expose(), "pub-access");
}

#[tokio::test]
async fn refresh_returns_the_rotated_refresh_token() {
    let server = MockServer::start().await;
    // Confidential.
    let x = confidential(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/oauth2/token"))
        .and(header("authorization", basic().as_str()))
        .and(form_is(&[("grant_type", "refresh_token"), ("refresh_token", REFRESH)]))
        .respond_with(token_response("rotated-access", "rotated-refresh"))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = x.refresh(&account()).await.unwrap();
    assert_eq!(tokens.access_token.expose(), "rotated-access");
    assert_eq!(tokens.refresh_token.as_ref().unwrap().expose(), "rotated-refresh");

    // Public.
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/oauth2/token"))
        .and(no_authorization)
        .and(form_is(&[("grant_type", "refresh_token"), ("refresh_token", REFRESH), ("client_id", "client-abc")]))
        .respond_with(token_response("pub-rotated", "pub-rotated-refresh"))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = x.refresh(&account()).await.unwrap();
    assert_eq!(tokens.refresh_token.as_ref().unwrap().expose(), "pub-rotated-refresh");
}

#[tokio::test]
async fn a_dead_refresh_token_needs_reconnection() {
    let server = MockServer::start().await;
    let x = confidential(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/oauth2/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_request", "error_description": "Value passed for the token was invalid."}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = x.refresh(&account()).await.unwrap_err();
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(REFRESH) && !format!("{err:?}").contains(SECRET));

    let mut no_refresh = account();
    no_refresh.tokens.refresh_token = None;
    assert!(matches!(x.refresh(&no_refresh).await, Err(Error::ReauthRequired { .. })));
}

#[tokio::test]
async fn a_confidential_client_with_a_wrong_secret_is_a_config_error() {
    let server = MockServer::start().await;
    let x = confidential(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/oauth2/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": "unauthorized_client", "error_description": "Missing valid authorization header"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = x.refresh(&account()).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn revoke_revokes_both_tokens() {
    let server = MockServer::start().await;
    let x = confidential(&server.uri());
    for (token, hint) in [(TOKEN, "access_token"), (REFRESH, "refresh_token")] {
        Mock::given(method("POST"))
            .and(path("/2/oauth2/revoke"))
            .and(header("authorization", basic().as_str()))
            .and(form_is(&[("token", token), ("token_type_hint", hint)]))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"revoked": true})))
            .expect(1)
            .mount(&server)
            .await;
    }
    x.revoke(&account()).await.unwrap();

    let server = MockServer::start().await;
    let x = platform(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/oauth2/revoke"))
        .and(no_authorization)
        .and(form_is(&[("token", TOKEN), ("token_type_hint", "access_token"), ("client_id", "client-abc")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"revoked": true})))
        .expect(1)
        .mount(&server)
        .await;
    let mut acc = account();
    acc.tokens.refresh_token = None;
    x.revoke(&acc).await.unwrap();
}

#[tokio::test]
async fn profile_reads_users_me() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    mount_me(&server, TOKEN).await;
    let p = x.profile(&account()).await.unwrap();
    assert_eq!((p.remote_id.as_str(), p.handle.as_deref()), (USER_ID, Some("konektly")));

    let server = MockServer::start().await;
    let x = platform(&server.uri());
    Mock::given(method("GET"))
        .and(path("/2/users/me"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
        ))
        .mount(&server)
        .await;
    assert!(matches!(x.profile(&account()).await, Err(Error::AccessTokenRejected { .. })));
}

/// `from_env` reads `KONEKTLY_X_*`. Environment changes need `unsafe` in edition 2024, which
/// the crate forbids, so the test runs itself in a child process with the variables set.
#[test]
fn from_env_reads_konektly_x_variables() {
    if std::env::var("KONEKTLY_X_TEST_CHILD").is_ok() {
        let x = XBuilder::from_env().build().expect("from_env builds");
        assert!(!format!("{x:?}").contains("env-secret-value"), "Debug hides the secret");
        assert_eq!(x.redirect_uri().map(Url::as_str), Some("https://app.example/from-env"));
        let req = x.authorization_request(&Url::parse(REDIRECT).unwrap()).unwrap();
        assert!(req.url.as_str().starts_with("http://127.0.0.1:9/i/oauth2/authorize?"), "{}", req.url);
        assert!(req.url.query_pairs().any(|(k, v)| k == "client_id" && v == "env-client-id"));
        assert!(req.url.query_pairs().any(|(k, v)| k == "scope" && v == "tweet.read tweet.write"));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "from_env_reads_konektly_x_variables", "--nocapture"])
        .env("KONEKTLY_X_TEST_CHILD", "1")
        .env("KONEKTLY_X_CLIENT_ID", "env-client-id")
        .env("KONEKTLY_X_CLIENT_SECRET", "env-secret-value")
        .env("KONEKTLY_X_REDIRECT_URI", "https://app.example/from-env")
        .env("KONEKTLY_X_BASE_URL", "http://127.0.0.1:9")
        .env("KONEKTLY_X_SCOPES", "tweet.read,tweet.write")
        .env("KONEKTLY_X_CHUNK_SIZE", "2097152")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without the variables, build says what is missing; new() reads nothing.
    let err = XBuilder::new().build().unwrap_err();
    assert!(err.to_string().contains("KONEKTLY_X_CLIENT_ID"));
}
