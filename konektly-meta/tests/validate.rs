//! Offline rules through the `Platform` trait: schedules checked against the given clock, and
//! accounts that cannot be published to.

mod common;

mod facebook {
    use crate::common::*;
    use konektly_core::{Content, Error, TargetOptions};

    use wiremock::MockServer;

    #[tokio::test]
    async fn a_user_account_cannot_be_published_to() {
        let server = MockServer::start().await;
        let fb = meta(&server).facebook;
        let user = account("facebook", "900", "EAAUser", &[("kind", "user")]);
        let s = publish(fb.as_ref(), &user, &Content::text("hi"), &TargetOptions::none()).await;
        assert!(matches!(s.err(), Error::NotSupported(_)));
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn schedules_are_checked_against_the_clock_given_through_the_platform_trait() {
        let server = MockServer::start().await;
        let fb: std::sync::Arc<dyn konektly_core::Platform> = meta(&server).facebook;
        let now = chrono::Utc::now() + chrono::Duration::days(100);
        let o = TargetOptions::new(&konektly_meta::FacebookOptions {
            schedule_at: Some(now + chrono::Duration::days(2)),
            ..Default::default()
        })
        .unwrap();
        let content = Content::text("later");
        assert!(fb.validate_at(&content, &o, now).is_empty());
        let codes: Vec<String> = fb.validate(&content, &o).into_iter().map(|v| v.code.to_string()).collect();
        assert_eq!(codes, vec!["schedule_out_of_window"], "validate is validate_at now");
    }
}

mod instagram {
    use crate::common::facebook::mp4_bytes;
    use crate::common::instagram::mp4;
    use crate::common::*;
    use konektly_core::{Content, Platform, TargetOptions};

    use wiremock::MockServer;

    #[tokio::test]
    async fn a_local_video_needs_a_media_host_only_on_an_instagram_login_account() {
        let server = MockServer::start().await;
        let ig: std::sync::Arc<dyn Platform> = meta(&server).instagram;
        let local = Content::text("reel").with_media(mp4_bytes(2048));
        let none = TargetOptions::none();
        // Facebook Login: the resumable upload sends the bytes; no host needed.
        assert!(!ig.needs_media_host_for(&ig_fb_account(), &local, &none));
        // Instagram Login cannot use it: the video goes by URL, so a host is needed.
        assert!(ig.needs_media_host_for(&ig_login_account(), &local, &none));
        // Media already at a URL never need one.
        let at_url = Content::text("reel").with_media(mp4("https://cdn.example/r.mp4"));
        assert!(!ig.needs_media_host_for(&ig_login_account(), &at_url, &none));
        assert!(server.received_requests().await.unwrap().is_empty(), "decided offline");
    }
}
