//! The builder and 3-legged OAuth: authorize URL, code exchange (the secret in the body), the
//! member from `/v2/userinfo`, expiries without refresh tokens, refresh where configured.

use std::collections::HashMap;

use chrono::Utc;
use konektly_core::{Error, OwnerId, PendingAuthorization, Platform, PlatformId, RefreshToken};
use serde_json::json;
use url::Url;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;
use common::*;

fn pending() -> PendingAuthorization {
    PendingAuthorization {
        state: "st".into(),
        platform: PlatformId::new("linkedin"),
        owner: OwnerId::new("o"),
        redirect_uri: Url::parse("https://app.example/callback/linkedin").unwrap(),
        pkce_verifier: None,
        expires_at: Utc::now() + chrono::Duration::minutes(5),
        reconnect: None,
    }
}

#[test]
fn the_authorization_url_asks_for_the_scopes_space_separated() {
    let p = builder("http://127.0.0.1:9").build().unwrap();
    let req = p.authorization_request(&Url::parse("https://app.example/cb").unwrap()).unwrap();
    assert_eq!(req.url.as_str().split('?').next().unwrap(), "http://127.0.0.1:9/oauth/v2/authorization");
    let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "86abc");
    assert_eq!(q["scope"], "openid profile w_member_social");
    assert_eq!(q["state"], req.state);
    assert!(req.pkce_verifier.is_none(), "web apps use the client secret");
}

async fn mount_userinfo(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v2/userinfo"))
        .and(header("authorization", "Bearer AQV-new"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sub": SUB, "email_verified": true, "name": "Ada Lovelace", "locale": {"country": "GB", "language": "en"},
            "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com",
            "picture": "https://media.licdn.com/dms/image/ada.jpg"})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_code_exchange_yields_the_member_with_a_sixty_day_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/accessToken"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("client_secret=the-secret"))
        .and(body_string_contains("client_id=86abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "AQV-new", "expires_in": 5_184_000, "scope": "email,openid,profile,w_member_social",
            "token_type": "Bearer", "id_token": "eyJ.x.y"})))
        .expect(1)
        .mount(&server)
        .await;
    mount_userinfo(&server).await;
    let grants = platform(&server).exchange_code("the-code", &pending()).await.unwrap();
    assert_eq!(grants.len(), 1);
    let g = &grants[0];
    assert_eq!(g.profile.remote_id, SUB);
    assert_eq!(g.profile.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(g.metadata["author"], AUTHOR);
    let t = &g.tokens;
    assert!(t.refresh_token.is_none());
    let days = (t.expires_at.unwrap() - Utc::now()).num_days();
    assert!((59..=60).contains(&days), "{days}");
    assert_eq!(t.refresh_expires_at, t.expires_at, "the engine warns before the member must reconnect");
    assert!(t.scopes.iter().any(|s| s == "w_member_social"));
}

#[tokio::test]
async fn a_grant_without_posting_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/accessToken"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "AQV-new", "expires_in": 5_184_000, "scope": "openid,profile"})),
        )
        .mount(&server)
        .await;
    let e = platform(&server).exchange_code("c", &pending()).await.unwrap_err();
    assert!(matches!(e, Error::Authorization(_)), "{e:?}");
}

#[tokio::test]
async fn a_refused_code_is_not_retried_and_never_shows_the_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/accessToken"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_request",
            "error_description": "Unable to retrieve access token: appid/redirect uri/code verifier does not match authorization code"})))
        .expect(1)
        .mount(&server)
        .await;
    let e = platform(&server).exchange_code("c", &pending()).await.unwrap_err();
    assert!(!format!("{e:?}{e}").contains("the-secret"));
}

#[tokio::test]
async fn without_refresh_tokens_refresh_asks_to_reconnect() {
    let server = MockServer::start().await;
    let mut a = account();
    a.tokens.refresh_token = Some(RefreshToken::new("r"));
    let e = platform(&server).refresh(&a).await.unwrap_err();
    assert!(matches!(e, Error::ReauthRequired { .. }), "{e:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn approved_apps_refresh_and_keep_the_refresh_token_when_none_comes_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/accessToken"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=AQW-refresh"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"access_token": "AQV-2", "expires_in": 5_184_000})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = builder(&server.uri()).with_refresh_tokens(true).build().unwrap();
    let mut a = account();
    a.tokens.refresh_token = Some(RefreshToken::new("AQW-refresh"));
    let ends = Utc::now() + chrono::Duration::days(300);
    a.tokens.refresh_expires_at = Some(ends);
    let t = p.refresh(&a).await.unwrap();
    assert_eq!(t.access_token.expose(), "AQV-2");
    assert_eq!(t.refresh_token.unwrap().expose(), "AQW-refresh");
    assert_eq!(t.refresh_expires_at, Some(ends));
}

#[tokio::test]
async fn the_profile_is_read_from_userinfo() {
    let server = MockServer::start().await;
    mount_userinfo(&server).await;
    let mut a = account();
    a.tokens.access_token = konektly_core::AccessToken::new("AQV-new");
    let p = platform(&server).profile(&a).await.unwrap();
    assert_eq!(p.remote_id, SUB);
    assert!(p.avatar_url.is_some());
}
