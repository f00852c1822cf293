//! Builder and Login Kit v2: authorize URL, code exchange, refresh, revoke, profile.

use std::collections::HashMap;

use chrono::Utc;
use konektly_core::{Error, OwnerId, PendingAuthorization, PkceVerifier, Platform, PlatformId};
use konektly_tiktok::{Pkce, TikTokBuilder};
use url::Url;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;
use common::*;

fn pending(verifier: Option<&str>) -> PendingAuthorization {
    PendingAuthorization {
        state: "st".into(),
        platform: PlatformId::new("tiktok"),
        owner: OwnerId::new("o"),
        redirect_uri: Url::parse("https://app.example/callback/tiktok").unwrap(),
        pkce_verifier: verifier.map(PkceVerifier::new),
        expires_at: Utc::now() + chrono::Duration::minutes(5),
        reconnect: None,
    }
}

#[tokio::test]
async fn build_needs_a_key_and_a_secret_and_sane_chunks() {
    assert!(matches!(TikTokBuilder::new().build(), Err(Error::Config(_))));
    assert!(matches!(TikTokBuilder::new().with_client_key("k").build(), Err(Error::Config(m)) if m.contains("secret")));
    let e = TikTokBuilder::new().with_client_key("k").with_client_secret("s").with_chunk_size(1024).build();
    assert!(matches!(e, Err(Error::Config(m)) if m.contains("chunk")));
}

#[tokio::test]
async fn debug_output_never_shows_the_secret() {
    let b = TikTokBuilder::new().with_client_key("k").with_client_secret(CLIENT_SECRET);
    assert!(!format!("{b:?}").contains(CLIENT_SECRET));
    let p = b.build().unwrap();
    let shown = format!("{p:?}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    assert!(shown.contains("k"));
}

/// Runs in a child process (setting variables in this one would need `unsafe`): the parent
/// test starts this binary again with the variables set.
#[tokio::test]
async fn from_env_child() {
    if std::env::var("KONEKTLY_TIKTOK_TEST_CHILD").is_err() {
        return;
    }
    let p = TikTokBuilder::from_env().build().unwrap();
    let req = p.authorization_request(&Url::parse("http://localhost:3455/callback/").unwrap()).unwrap();
    let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    assert_eq!(req.url.as_str().split('?').next().unwrap(), "http://127.0.0.1:9/v2/auth/authorize/");
    assert_eq!(q["client_key"], "env-key");
    assert_eq!(q["scope"], "user.info.basic,video.upload");
    assert!(req.pkce_verifier.is_some());
    assert!(!format!("{p:?}").contains("env-secret-value"));
}

#[tokio::test]
async fn from_env_child_bad_pkce() {
    if std::env::var("KONEKTLY_TIKTOK_TEST_CHILD").is_err() {
        return;
    }
    assert!(matches!(TikTokBuilder::from_env().build(), Err(Error::Config(m)) if m.contains("PKCE")));
}

#[test]
fn from_env_reads_only_konektly_tiktok_variables() {
    let child = |name: &str, pkce: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture"])
            .env("KONEKTLY_TIKTOK_TEST_CHILD", "1")
            .env("KONEKTLY_TIKTOK_CLIENT_KEY", "env-key")
            .env("KONEKTLY_TIKTOK_CLIENT_SECRET", "env-secret-value")
            .env("KONEKTLY_TIKTOK_SCOPES", "user.info.basic,video.upload")
            .env("KONEKTLY_TIKTOK_BASE_URL", "http://127.0.0.1:9/")
            .env("KONEKTLY_TIKTOK_PKCE", pkce)
            .env("TIKTOK_CLIENT_KEY", "not-ours")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    child("from_env_child", "s256");
    child("from_env_child_bad_pkce", "sometimes");
}

#[tokio::test]
async fn the_authorize_url_uses_client_key_and_comma_separated_scopes() {
    let server = MockServer::start().await;
    let p = platform(&server);
    let redirect = Url::parse("https://app.example/callback/tiktok").unwrap();
    let req = p.authorization_request(&redirect).unwrap();
    assert_eq!(req.url.as_str().split('?').next().unwrap(), format!("{}/v2/auth/authorize/", server.uri()));
    let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q["client_key"], CLIENT_KEY);
    assert!(!q.contains_key("client_id"), "TikTok wants client_key, not client_id");
    assert_eq!(q["scope"], "user.info.basic,video.publish,video.upload");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], redirect.as_str());
    assert_eq!(q["state"], req.state);
    assert!(req.pkce_verifier.is_none() && !q.contains_key("code_challenge"), "no PKCE for web apps by default");
}

#[tokio::test]
async fn pkce_is_an_option_in_base64url_or_hex() {
    let server = MockServer::start().await;
    let redirect = Url::parse("http://localhost:3455/callback/").unwrap();
    let p = builder(&server).with_pkce(Pkce::S256).build().unwrap();
    let req = p.authorization_request(&redirect).unwrap();
    let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    let v = req.pkce_verifier.unwrap();
    assert_eq!(q["code_challenge"], konektly_core::oauth::pkce_challenge(v.expose()));
    assert_eq!(q["code_challenge_method"], "S256");

    let p = builder(&server).with_pkce(Pkce::S256Hex).build().unwrap();
    let req = p.authorization_request(&redirect).unwrap();
    let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    let v = req.pkce_verifier.unwrap();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(v.expose().as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(q["code_challenge"], hex);
}

#[tokio::test]
async fn exchanging_a_code_sends_key_and_secret_in_the_body_and_reads_the_profile() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/oauth/token/"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(FormIs::new(&[
            ("client_key", CLIENT_KEY),
            ("client_secret", CLIENT_SECRET),
            ("code", "code-from-callback"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://app.example/callback/tiktok"),
            ("code_verifier", "the-verifier"),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("token.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/user/info/"))
        .and(query_param("fields", "open_id,union_id,avatar_url,display_name"))
        .and(header("authorization", "Bearer act.1d1021d2aee3d41fee2d2add43456badMFokOfZDPrBQt4DBtLFWGUfZaiDy"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("user_info.json")))
        .expect(1)
        .mount(&server)
        .await;
    let p = platform(&server);
    let before = Utc::now();
    let grants = p.exchange_code("code-from-callback", &pending(Some("the-verifier"))).await.unwrap();
    assert_eq!(grants.len(), 1);
    let g = &grants[0];
    assert_eq!(g.platform.as_str(), "tiktok");
    assert_eq!(g.profile.remote_id, "723f24d7-e717-40f8-a2b6-cb8464cd23b4");
    assert_eq!(g.profile.display_name.as_deref(), Some("Jamie Creator"));
    assert!(g.profile.avatar_url.is_some());
    let t = &g.tokens;
    assert_eq!(t.scopes, vec!["user.info.basic", "video.publish", "video.upload"]);
    let exp = t.expires_at.unwrap();
    assert!(exp >= before + chrono::Duration::seconds(7200) && exp <= Utc::now() + chrono::Duration::seconds(7200));
    let rexp = t.refresh_expires_at.unwrap();
    assert!(rexp >= before + chrono::Duration::seconds(15_552_000), "the refresh lifetime comes from the response");
    assert_eq!(
        t.refresh_token.as_ref().unwrap().expose(),
        "rft.713ace4f96cd4a1ff17c6a6e8a6c3bfa1eSBtGvSAvdNg6XIsgUgKxxYmj6M"
    );
}

#[tokio::test]
async fn a_grant_without_posting_scopes_is_refused() {
    let server = MockServer::start().await;
    let mut body: serde_json::Value = serde_json::from_str(&fixture("token.json")).unwrap();
    body["scope"] = "user.info.basic".into();
    Mock::given(method("POST"))
        .and(path("/v2/oauth/token/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let e = platform(&server).exchange_code("c", &pending(None)).await.unwrap_err();
    assert!(matches!(&e, Error::Authorization(m) if m.contains("video.publish")), "{e:?}");
}

#[tokio::test]
async fn refreshing_rotates_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/oauth/token/"))
        .and(FormIs::new(&[
            ("client_key", CLIENT_KEY),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", "rft.valid-refresh-token"),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("token_refreshed.json")))
        .expect(1)
        .mount(&server)
        .await;
    let t = platform(&server).refresh(&account()).await.unwrap();
    assert_eq!(t.refresh_token.unwrap().expose(), "rft.rotated00000000000000000000000000000000000000000000000000");
    assert_eq!(t.access_token.expose(), "act.rotated0000000000000000000000000000000000000000000000000000");
    let exp = t.expires_at.unwrap();
    assert!(exp > Utc::now() + chrono::Duration::seconds(86_000), "24 h here, from expires_in: never hard-coded");
}

#[tokio::test]
async fn a_dead_refresh_token_requires_reconnecting_and_keeps_the_log_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/oauth/token/"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("token_invalid_grant.json")))
        .mount(&server)
        .await;
    let e = platform(&server).refresh(&account()).await.unwrap_err();
    assert!(matches!(e, Error::ReauthRequired { .. }), "{e:?}");
    assert!(e.to_string().contains("20261129080112345678901234567890"), "{e}");
    assert!(!e.to_string().contains(CLIENT_SECRET) && !e.to_string().contains("rft.valid"));
}

#[tokio::test]
async fn an_expired_refresh_token_is_not_sent() {
    let server = MockServer::start().await;
    let mut a = account();
    a.tokens.refresh_expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
    assert!(matches!(platform(&server).refresh(&a).await, Err(Error::ReauthRequired { .. })));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn revoking_posts_key_secret_and_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/oauth/revoke/"))
        .and(FormIs::new(&[("client_key", CLIENT_KEY), ("client_secret", CLIENT_SECRET), ("token", TOKEN)]))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .expect(1)
        .mount(&server)
        .await;
    platform(&server).revoke(&account()).await.unwrap();
}

#[tokio::test]
async fn the_profile_comes_from_user_info() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/user/info/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("user_info.json")))
        .expect(1)
        .mount(&server)
        .await;
    let prof = platform(&server).profile(&account()).await.unwrap();
    assert_eq!(prof.remote_id, "723f24d7-e717-40f8-a2b6-cb8464cd23b4");
    assert_eq!(prof.display_name.as_deref(), Some("Jamie Creator"));
}
