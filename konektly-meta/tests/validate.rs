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
        let codes: Vec<String> = fb.validate(&content, &o).into_iter().map(|v| v.code).collect();
        assert_eq!(codes, vec!["schedule_out_of_window"], "validate is validate_at now");
    }
}
