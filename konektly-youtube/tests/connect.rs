//! Google OAuth against a mock: the consent URL, the code exchange, the granted-scope check, the
//! channel read at connect time, refresh (keeping the stored refresh token), dead grants, revoke.

mod common;

use std::collections::HashMap;

use chrono::Utc;
use common::*;
use konektly_core::oauth::pkce_challenge;
use konektly_core::{Error, OwnerId, PendingAuthorization, PkceVerifier, Platform, PlatformId};
use url::Url;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn pending(server: &MockServer) -> PendingAuthorization {
    let _ = server;
    PendingAuthorization {
        state: "state-1".into(),
        platform: PlatformId::new("youtube"),
        owner: OwnerId::new("owner-1"),
        redirect_uri: Url::parse("https://app.example/callback").unwrap(),
        pkce_verifier: Some(PkceVerifier::new("verifier-0123456789-0123456789-0123456789-abc")),
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        reconnect: None,
    }
}

async fn mount_exchange(server: &MockServer, fixture_name: &str) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(form_is(&[
            ("grant_type", "authorization_code"),
            ("code", "4/0Ab-the-code"),
            ("redirect_uri", "https://app.example/callback"),
            ("code_verifier", "verifier-0123456789-0123456789-0123456789-abc"),
            ("client_id", "1234.apps.googleusercontent.com"),
            ("client_secret", CLIENT_SECRET),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture(fixture_name), "application/json"))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_consent_url_asks_for_offline_access_consent_and_pkce() {
    let server = MockServer::start().await;
    let p = platform(&server.uri());
    let redirect = Url::parse("https://app.example/callback").unwrap();
    let req = p.authorization_request(&redirect).unwrap();
    assert_eq!(req.url.path(), "/o/oauth2/v2/auth");
    assert!(req.url.as_str().starts_with(&server.uri()));
    let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    let verifier = req.pkce_verifier.expect("PKCE is used");
    let expected: HashMap<String, String> = [
        ("response_type", "code"),
        ("client_id", "1234.apps.googleusercontent.com"),
        ("redirect_uri", "https://app.example/callback"),
        ("scope", "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly"),
        ("state", req.state.as_str()),
        ("code_challenge", pkce_challenge(verifier.expose()).as_str()),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("include_granted_scopes", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(q, expected);
    assert!(!req.url.as_str().contains(CLIENT_SECRET));
}

#[tokio::test]
async fn connecting_exchanges_the_code_and_reads_the_channel() {
    let server = MockServer::start().await;
    mount_exchange(&server, "token.json").await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/channels"))
        .and(query_param("part", "snippet"))
        .and(query_param("mine", "true"))
        .and(header("authorization", "Bearer ya29.first-access-token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("channels.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let p = platform(&server.uri());
    let grants = p.exchange_code("4/0Ab-the-code", &pending(&server)).await.unwrap();
    assert_eq!(grants.len(), 1);
    let g = &grants[0];
    assert_eq!(g.platform.as_str(), "youtube");
    assert_eq!(g.profile.remote_id, "UC_x5XG1OV2P6uZZ5FSM9Ttw");
    assert_eq!(g.profile.handle.as_deref(), Some("@konektlydemo"));
    assert_eq!(g.profile.display_name.as_deref(), Some("Konektly Demo"));
    assert_eq!(g.profile.avatar_url.as_ref().map(Url::as_str), Some("https://yt3.ggpht.com/demo=s88-c-k"));
    assert_eq!(g.tokens.access_token.expose(), "ya29.first-access-token");
    assert_eq!(g.tokens.refresh_token.as_ref().unwrap().expose(), "1//first-refresh-token");
    assert_eq!(
        g.tokens.scopes,
        vec!["https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube.readonly"]
    );
    let expires = g.tokens.expires_at.unwrap();
    let left = expires - Utc::now();
    assert!(left > chrono::Duration::minutes(55) && left <= chrono::Duration::seconds(3599), "{left}");
}

#[tokio::test]
async fn a_user_who_unticked_upload_must_connect_again() {
    let server = MockServer::start().await;
    mount_exchange(&server, "token_upload_unticked.json").await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/channels"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let err = platform(&server.uri()).exchange_code("4/0Ab-the-code", &pending(&server)).await.unwrap_err();
    match err {
        Error::ReauthRequired { reason, .. } => {
            assert!(reason.contains("upload") && reason.contains("connect again"), "{reason}")
        }
        other => panic!("expected ReauthRequired, got {other:?}"),
    }
}

#[tokio::test]
async fn an_account_without_a_channel_is_told_so_at_connect() {
    for (status, body) in [(200, "channels_empty.json"), (401, "error_signup_required.json")] {
        let server = MockServer::start().await;
        mount_exchange(&server, "token.json").await;
        Mock::given(method("GET"))
            .and(path("/youtube/v3/channels"))
            .respond_with(ResponseTemplate::new(status).set_body_raw(fixture(body), "application/json"))
            .expect(1)
            .mount(&server)
            .await;
        let err = platform(&server.uri()).exchange_code("4/0Ab-the-code", &pending(&server)).await.unwrap_err();
        match err {
            Error::ReauthRequired { reason, .. } => assert!(reason.contains("no YouTube channel"), "{body}: {reason}"),
            other => panic!("{body}: expected ReauthRequired, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_used_code_is_an_authorization_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_raw(r#"{"error":"invalid_grant","error_description":"Bad Request"}"#, "application/json"),
        )
        .mount(&server)
        .await;
    let err = platform(&server.uri()).exchange_code("4/0Ab-the-code", &pending(&server)).await.unwrap_err();
    assert!(matches!(err, Error::Authorization(ref m) if m.contains("invalid_grant")), "{err:?}");
}

#[tokio::test]
async fn refresh_keeps_the_stored_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(form_is(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH),
            ("client_id", "1234.apps.googleusercontent.com"),
            ("client_secret", CLIENT_SECRET),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("token_refreshed.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let fresh = platform(&server.uri()).refresh(&account()).await.unwrap();
    assert_eq!(fresh.access_token.expose(), "ya29.refreshed-access-token");
    assert_eq!(fresh.refresh_token.as_ref().map(|r| r.expose()), Some(REFRESH), "the stored refresh token survives");
    assert!(fresh.expires_at.unwrap() > Utc::now() + chrono::Duration::minutes(55));
}

#[tokio::test]
async fn a_dead_grant_needs_reconnecting_with_the_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(fixture("invalid_grant.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let err = platform(&server.uri()).refresh(&account()).await.unwrap_err();
    let text = err.to_string();
    match &err {
        Error::ReauthRequired { reason, .. } => {
            assert!(
                reason.contains("revoked") && reason.contains("Testing") && reason.contains("invalid_grant"),
                "{reason}"
            )
        }
        other => panic!("expected ReauthRequired, got {other:?}"),
    }
    assert!(!text.contains(REFRESH) && !text.contains(CLIENT_SECRET), "{text}");
}

#[tokio::test]
async fn a_workspace_reauth_is_named() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"error":"invalid_grant","error_description":"reauth related error (invalid_rapt)","error_subtype":"invalid_rapt"}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = platform(&server.uri()).refresh(&account()).await.unwrap_err();
    assert!(matches!(&err, Error::ReauthRequired { reason, .. } if reason.contains("Workspace")), "{err:?}");
}

#[tokio::test]
async fn a_failing_token_endpoint_is_not_a_dead_grant() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>unavailable</html>"))
        .mount(&server)
        .await;
    let err = platform(&server.uri()).refresh(&account()).await.unwrap_err();
    assert!(matches!(err, Error::Transient { .. }), "{err:?}");
}

#[tokio::test]
async fn a_refresh_without_the_upload_scope_needs_reconnecting() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"access_token":"ya29.x","expires_in":3599,"scope":"https://www.googleapis.com/auth/youtube.readonly","token_type":"Bearer"}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = platform(&server.uri()).refresh(&account()).await.unwrap_err();
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err:?}");
}

#[tokio::test]
async fn refresh_without_a_refresh_token_needs_reconnecting() {
    let server = MockServer::start().await;
    let mut a = account();
    a.tokens.refresh_token = None;
    assert!(matches!(platform(&server.uri()).refresh(&a).await, Err(Error::ReauthRequired { .. })));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn revoke_sends_the_refresh_token_and_accepts_an_already_dead_one() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(form_is(&[("token", REFRESH)]))
        .respond_with(ResponseTemplate::new(200))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"error":"invalid_token","error_description":"Token expired or revoked"}"#,
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let p = platform(&server.uri());
    p.revoke(&account()).await.unwrap();
    p.revoke(&account()).await.unwrap();
}

#[tokio::test]
async fn profile_reads_the_channel() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/channels"))
        .and(query_param("mine", "true"))
        .and(header("authorization", format!("Bearer {ACCESS}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("channels.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let profile = platform(&server.uri()).profile(&account()).await.unwrap();
    assert_eq!(profile.remote_id, "UC_x5XG1OV2P6uZZ5FSM9Ttw");
}

#[tokio::test]
async fn an_expired_access_token_is_refused_for_a_refresh() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/channels"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(fixture("error_auth.json"), "application/json"))
        .mount(&server)
        .await;
    let err = platform(&server.uri()).profile(&account()).await.unwrap_err();
    assert!(matches!(err, Error::AccessTokenRejected { .. }), "{err:?}");
    assert!(!err.to_string().contains(ACCESS));
}

#[tokio::test]
async fn a_user_who_unticked_viewing_must_connect_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"access_token":"ya29.x","expires_in":3599,"refresh_token":"1//r","scope":"https://www.googleapis.com/auth/youtube.upload","token_type":"Bearer"}"#,
            "application/json",
        ))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/channels"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("channels.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let err = platform(&server.uri()).exchange_code("4/0Ab-the-code", &pending(&server)).await.unwrap_err();
    assert!(
        matches!(&err, Error::ReauthRequired { reason, .. } if reason.contains("View your YouTube account")),
        "{err:?}"
    );
    // An app that asked for upload only is content with it.
    let upload_only = builder(&server.uri()).with_scopes([konektly_youtube::SCOPE_UPLOAD]).build().unwrap();
    upload_only.exchange_code("4/0Ab-the-code", &pending(&server)).await.unwrap();
}
