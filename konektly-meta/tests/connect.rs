//! Connecting through both logins against a mock Graph API: the dialog URLs, the code exchanges
//! and long-lived tokens, refresh, revoke, profiles, and the builder (environment, configuration,
//! secrets never shown).

mod common;

mod facebook {
    use crate::common::facebook::*;
    use crate::common::*;
    use chrono::Utc;
    use konektly_core::{Error, Platform, PlatformId, RemotePost};
    use konektly_meta::MetaBuilder;
    use serde_json::json;
    use url::Url;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer};

    #[tokio::test]
    async fn the_dialog_url_carries_scopes_or_a_config_id() {
        let server = MockServer::start().await;
        let fb = meta(&server).facebook;
        let redirect = Url::parse("https://app.example/callback").unwrap();
        let req = fb.authorization_request(&redirect).unwrap();
        assert_eq!(req.url.path(), "/v25.0/dialog/oauth");
        assert!(req.url.as_str().starts_with(&server.uri()), "the browser page is on the base URL too");
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "123456");
        assert_eq!(q["redirect_uri"], "https://app.example/callback");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["state"], req.state);
        assert_eq!(
            q["scope"],
            "pages_show_list,pages_read_engagement,pages_manage_posts,business_management,instagram_basic,instagram_content_publish"
        );
        // PKCE S256 by default (issue 13): the challenge is the verifier's.
        let verifier = req.pkce_verifier.as_ref().expect("PKCE is on by default");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], konektly_core::oauth::pkce_challenge(verifier.expose()));
        let off = builder(&server).with_pkce(false).build().unwrap().facebook.authorization_request(&redirect).unwrap();
        assert!(off.pkce_verifier.is_none() && !off.url.as_str().contains("code_challenge"), "PKCE can be turned off");

        let business = builder(&server).with_config_id("cfg-42").with_graph_version("v27.0").build().unwrap().facebook;
        let req = business.authorization_request(&redirect).unwrap();
        assert_eq!(req.url.path(), "/v27.0/dialog/oauth", "the version is configuration");
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        assert_eq!(q["config_id"], "cfg-42");
        assert!(!q.contains_key("scope"), "Login for Business sends config_id instead of scope");
    }

    #[tokio::test]
    async fn facebook_login_yields_the_user_each_page_and_each_linked_instagram_account() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v25.0/oauth/access_token"))
            .and(query_param("client_id", "123456"))
            .and(query_param("client_secret", APP_SECRET))
            .and(query_param("redirect_uri", "https://app.example/callback"))
            .and(query_param("code", "the-code"))
            .respond_with(ok(fixture("fb_token_short.json")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/oauth/access_token"))
            .and(query_param("grant_type", "fb_exchange_token"))
            .and(query_param("client_id", "123456"))
            .and(query_param("client_secret", APP_SECRET))
            .and(query_param("fb_exchange_token", "EAAShortLivedUserToken"))
            .respond_with(ok(fixture("fb_token_long.json")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/me/permissions"))
            .and(query_param("access_token", "EAALongLivedUserToken"))
            .respond_with(ok(fixture("fb_permissions.json")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/me"))
            .and(query_param("access_token", "EAALongLivedUserToken"))
            .and(query_param("fields", "id,name,picture"))
            .respond_with(ok(fixture("fb_me.json")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
        .and(path("/v25.0/me/accounts"))
        .and(query_param("access_token", "EAALongLivedUserToken"))
        .and(query_param(
            "fields",
            "id,name,access_token,category,tasks,picture,instagram_business_account{id,username,name,profile_picture_url}",
        ))
        .respond_with(ok(fixture("fb_me_accounts.json")))
        .expect(1)
        .mount(&server)
        .await;

        let before = Utc::now();
        let grants = meta(&server).facebook.exchange_code("the-code", &pending("facebook")).await.unwrap();
        let ids: Vec<(&str, &str)> =
            grants.iter().map(|g| (g.platform.as_str(), g.profile.remote_id.as_str())).collect();
        assert_eq!(ids, vec![("facebook", "900"), ("facebook", "101"), ("facebook", "102"), ("instagram", IG_ID)]);

        let user = &grants[0];
        assert_eq!(user.tokens.access_token.expose(), "EAALongLivedUserToken");
        let exp = user.tokens.expires_at.unwrap() - before;
        assert!(exp > chrono::Duration::days(59) && exp < chrono::Duration::days(61), "{exp}");
        assert_eq!(user.tokens.scopes, vec!["pages_show_list", "pages_manage_posts", "instagram_content_publish"]);
        assert_eq!(user.metadata["kind"], "user");
        assert_eq!(user.parent_remote_id, None);

        let page = &grants[1];
        assert_eq!(page.tokens.access_token.expose(), "EAAPageToken");
        assert_eq!(page.tokens.expires_at, None, "a Page token from a long-lived user token does not expire");
        assert_eq!(page.parent_remote_id.as_deref(), Some("900"));
        assert_eq!(page.profile.display_name.as_deref(), Some("Analytical Engines"));
        assert_eq!(page.metadata["kind"], "page");
        assert_eq!(grants[2].tokens.access_token.expose(), "EAAOtherPageToken");

        let ig = &grants[3];
        assert_eq!(ig.profile.handle.as_deref(), Some("analytical.engines"));
        assert_eq!(ig.tokens.access_token.expose(), "EAAPageToken", "publishes with its Page's token");
        assert_eq!(ig.parent_remote_id.as_deref(), Some("900"));
        assert_eq!(ig.metadata["login"], "facebook");
        assert_eq!(ig.metadata["page_id"], "101");
    }

    #[tokio::test]
    async fn a_user_token_is_extended_and_a_page_token_cannot_be_refreshed() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v25.0/oauth/access_token"))
            .and(query_param("grant_type", "fb_exchange_token"))
            .and(query_param("fb_exchange_token", "EAAUserToken"))
            .respond_with(ok(fixture("fb_token_long.json")))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let user = account("facebook", "900", "EAAUserToken", &[("kind", "user")]);
        let fresh = fb.refresh(&user).await.unwrap();
        assert_eq!(fresh.access_token.expose(), "EAALongLivedUserToken");
        assert!(fresh.expires_at.is_some());
        assert!(matches!(fb.refresh(&page_account()).await, Err(Error::ReauthRequired { .. })));
    }

    #[tokio::test]
    async fn debug_output_never_shows_secrets() {
        let server = MockServer::start().await;
        let b = builder(&server);
        let m = b.clone().build().unwrap();
        for text in [format!("{b:?}"), format!("{:?}", m.facebook), format!("{:?}", m.instagram), format!("{m:?}")] {
            assert!(!text.contains(APP_SECRET) && !text.contains(IG_APP_SECRET), "{text}");
        }
    }

    #[test]
    fn build_fails_early_on_missing_or_wrong_configuration() {
        assert!(matches!(MetaBuilder::new().build(), Err(Error::Config(_))));
        assert!(matches!(
            MetaBuilder::new().with_app("1", "s").with_base_url("not a url").build(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            MetaBuilder::new().with_app("1", "s").with_graph_version("25").build(),
            Err(Error::Config(_))
        ));
        let m = MetaBuilder::new().with_app("1", "s").build().unwrap();
        let err = m.instagram.authorization_request(&"https://a.example/cb".parse().unwrap()).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "Instagram Login needs its own app");
    }

    #[tokio::test]
    async fn a_page_profile_is_read_with_its_token() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v25.0/101"))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(query_param("fields", "id,name,picture"))
            .respond_with(ok(json!({"id": "101", "name": "Analytical Engines"})))
            .expect(1)
            .mount(&server)
            .await;
        let p = meta(&server).facebook.profile(&page_account()).await.unwrap();
        assert_eq!(p.display_name.as_deref(), Some("Analytical Engines"));
    }

    /// Runs in a child process (environment variables cannot be set safely in a threaded test).
    #[test]
    fn from_env_reads_only_konektly_meta_variables() {
        if std::env::var("KONEKTLY_META_TEST_CHILD").is_ok() {
            let meta = MetaBuilder::from_env().build().unwrap();
            let req = meta.facebook.authorization_request(&"https://a.example/cb".parse().unwrap()).unwrap();
            assert!(
                req.url.as_str().starts_with("http://127.0.0.1:9/v26.0/dialog/oauth?client_id=env-app"),
                "{}",
                req.url
            );
            let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
            assert_eq!(q["scope"], "pages_show_list,pages_manage_posts");
            let ig = meta.instagram.authorization_request(&"https://a.example/cb".parse().unwrap()).unwrap();
            assert!(ig.url.as_str().starts_with("http://127.0.0.1:8/oauth/authorize?client_id=env-ig"), "{}", ig.url);
            assert!(!format!("{:?}", MetaBuilder::from_env()).contains("env-secret"));
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "facebook::from_env_reads_only_konektly_meta_variables", "--nocapture"])
            .env("KONEKTLY_META_TEST_CHILD", "1")
            .env("KONEKTLY_META_APP_ID", "env-app")
            .env("KONEKTLY_META_APP_SECRET", "env-secret")
            .env("KONEKTLY_META_INSTAGRAM_APP_ID", "env-ig")
            .env("KONEKTLY_META_INSTAGRAM_APP_SECRET", "env-ig-secret")
            .env("KONEKTLY_META_SCOPES", "pages_show_list,pages_manage_posts")
            .env("KONEKTLY_META_GRAPH_VERSION", "v26.0")
            .env("KONEKTLY_META_BASE_URL", "http://127.0.0.1:9")
            .env("KONEKTLY_META_INSTAGRAM_BASE_URL", "http://127.0.0.1:8")
            .env("META_APP_ID", "not-ours")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[tokio::test]
    async fn revoking_a_user_removes_the_app_and_a_page_is_only_forgotten() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path("/v25.0/me/permissions"))
            .and(query_param("access_token", "EAAUser"))
            .respond_with(ok(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        let m = meta(&server);
        m.facebook.revoke(&account("facebook", "900", "EAAUser", &[("kind", "user")])).await.unwrap();
        m.facebook.revoke(&page_account()).await.unwrap();
        assert!(matches!(m.instagram.revoke(&ig_login_account()).await, Err(Error::NotSupported(_))));
        assert!(matches!(
            m.instagram.delete(&ig_login_account(), &RemotePost::new(PlatformId::new("instagram"), "m", None)).await,
            Err(Error::NotSupported(_))
        ));
    }
}

mod instagram {
    use crate::common::instagram::*;
    use crate::common::*;
    use chrono::Utc;
    use konektly_core::{Error, PendingAuthorization, Platform, PlatformId};
    use serde_json::json;

    use url::Url;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn instagram_login_authorizes_exchanges_and_extends_the_token() {
        let server = MockServer::start().await;
        let ig = meta(&server).instagram;
        let redirect = Url::parse("https://app.example/callback").unwrap();
        let req = ig.authorization_request(&redirect).unwrap();
        assert_eq!(req.url.path(), "/oauth/authorize");
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "654321");
        assert_eq!(q["scope"], "instagram_business_basic,instagram_business_content_publish");
        assert_eq!(q["response_type"], "code");

        Mock::given(method("POST"))
            .and(path("/oauth/access_token"))
            .and(form(&[
                ("client_id", "654321"),
                ("client_secret", IG_APP_SECRET),
                ("grant_type", "authorization_code"),
                ("redirect_uri", "https://app.example/callback"),
                ("code", "ig-code"),
            ]))
            .respond_with(ok(fixture("ig_token_short.json")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/access_token"))
            .and(query_param("grant_type", "ig_exchange_token"))
            .and(query_param("client_secret", IG_APP_SECRET))
            .and(query_param("access_token", "IGAAShortToken"))
            .respond_with(ok(fixture("ig_token_long.json")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/me"))
            .and(query_param("access_token", IG_TOKEN))
            .and(query_param("fields", "user_id,username,name,profile_picture_url"))
            .respond_with(ok(fixture("ig_me.json")))
            .expect(1)
            .mount(&server)
            .await;
        let pending = PendingAuthorization {
            state: req.state.clone(),
            platform: PlatformId::new("instagram"),
            owner: konektly_core::OwnerId::new("o"),
            redirect_uri: redirect,
            pkce_verifier: None,
            expires_at: Utc::now() + chrono::Duration::minutes(5),
            reconnect: None,
        };
        let before = Utc::now();
        let grants = ig.exchange_code("ig-code#_", &pending).await.unwrap();
        assert_eq!(grants.len(), 1);
        let g = &grants[0];
        assert_eq!(g.profile.remote_id, IG_ID, "the professional account id publishes");
        assert_eq!(g.profile.handle.as_deref(), Some("ada.codes"));
        assert_eq!(g.tokens.access_token.expose(), IG_TOKEN);
        assert_eq!(g.tokens.scopes, vec!["instagram_business_basic", "instagram_business_content_publish"]);
        let exp = g.tokens.expires_at.unwrap() - before;
        assert!(exp > chrono::Duration::days(59) && exp < chrono::Duration::days(61));
        assert_eq!(g.metadata["login"], "instagram");
        assert_eq!(g.metadata[konektly_core::REFRESH_AHEAD_KEY], 7 * 86_400, "the engine refreshes a week ahead");
    }

    #[tokio::test]
    async fn instagram_login_tokens_refresh_and_page_tokens_do_not() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/refresh_access_token"))
            .and(query_param("grant_type", "ig_refresh_token"))
            .and(query_param("access_token", IG_TOKEN))
            .respond_with(ok(json!({"access_token": "IGQWRefreshed", "token_type": "bearer", "expires_in": 5183944})))
            .expect(1)
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        let fresh = ig.refresh(&ig_login_account()).await.unwrap();
        assert_eq!(fresh.access_token.expose(), "IGQWRefreshed");
        assert!(fresh.expires_at.unwrap() > Utc::now() + chrono::Duration::days(59));
        assert!(matches!(ig.refresh(&ig_fb_account()).await, Err(Error::ReauthRequired { .. })));
    }

    #[tokio::test]
    async fn an_expired_instagram_token_refresh_is_reauth_required() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/refresh_access_token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: Session has expired", "type": "OAuthException",
            "code": 190, "error_subcode": 463, "fbtrace_id": "AExpired1"}})))
            .expect(1)
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        match ig.refresh(&ig_login_account()).await {
            Err(Error::ReauthRequired { reason, .. }) => assert!(reason.contains("expired"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn profiles_are_read_from_the_right_host() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{IG_ID}")))
            .and(query_param("fields", "id,username,name,profile_picture_url"))
            .and(query_param("access_token", PAGE_TOKEN))
            .respond_with(ok(json!({"id": IG_ID, "username": "analytical.engines", "name": "AE"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/me"))
            .and(query_param("access_token", IG_TOKEN))
            .respond_with(ok(fixture("ig_me.json")))
            .expect(1)
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        assert_eq!(ig.profile(&ig_fb_account()).await.unwrap().handle.as_deref(), Some("analytical.engines"));
        let p = ig.profile(&ig_login_account()).await.unwrap();
        assert_eq!((p.remote_id.as_str(), p.handle.as_deref()), (IG_ID, Some("ada.codes")));
    }
}
