//! The shared adapter conformance suite (konektly-testkit), run against the sandbox's
//! Facebook Pages and Instagram (through Facebook Login).

use std::sync::Arc;
use std::time::Duration;

use konektly_core::{Content, Platform, TargetOptions};
use konektly_meta::{FacebookOptions, FacebookPostKind, InstagramMediaKind, InstagramOptions, MetaBuilder};
use konektly_testkit::Sandbox;
use konektly_testkit::conformance::{CreateKind, Subject, Upload, readme_table, sample_jpeg, sample_mp4};

fn platforms(sandbox: &Sandbox) -> Vec<Arc<dyn Platform>> {
    let fb = sandbox.credentials("facebook");
    let ig = sandbox.credentials("instagram");
    MetaBuilder::new()
        .with_app(fb.client_id, fb.client_secret)
        .with_instagram_app(ig.client_id, ig.client_secret)
        .with_base_url(sandbox.base_url("facebook").to_string())
        .with_instagram_base_url(sandbox.base_url("instagram").to_string())
        .with_container_poll_interval(Duration::from_millis(50))
        .with_video_poll_interval(Duration::from_millis(50))
        // The sandbox's throttling answers clear after a second (as its config says).
        .with_usage_cool_down(Duration::from_secs(1))
        .build()
        .expect("the Meta platforms build")
        .platforms()
}

fn fb(options: FacebookOptions) -> TargetOptions {
    TargetOptions::new(&options).expect("options serialise")
}

fn ig(kind: InstagramMediaKind) -> TargetOptions {
    TargetOptions::new(&InstagramOptions { kind: Some(kind), ..Default::default() }).expect("options serialise")
}

fn reel() -> FacebookOptions {
    FacebookOptions { kind: FacebookPostKind::Reel, ..Default::default() }
}

fn facebook() -> Subject {
    let kind = |name, request, post, duplicate_refusal, publishes| CreateKind {
        name,
        request,
        post,
        duplicate_refusal,
        publishes,
        unknowable: false,
    };
    Subject {
        platform: "facebook",
        connect_via: "facebook",
        deletes: true,
        platforms,
        searches_posts: true,
        // Facebook hands out 4 MB parts: 9 MB take three.
        uploads: vec![Upload {
            kind: "video/finish",
            part: "video_transfer",
            post: |t| (Content::text(t).with_media(sample_mp4(9 * 1024 * 1024, 20)), TargetOptions::none()),
            parts: 3,
        }],
        kinds: vec![
            kind("text", "feed", |t| (Content::text(t), TargetOptions::none()), true, true),
            kind(
                "photo",
                "photo",
                |t| (Content::text(t).with_media(sample_jpeg(800, 600)), TargetOptions::none()),
                false,
                true,
            ),
            kind(
                "video/start",
                "video_start",
                |t| (Content::text(t).with_media(sample_mp4(300_000, 20)), TargetOptions::none()),
                false,
                false,
            ),
            kind(
                "video/finish",
                "video_finish",
                |t| (Content::text(t).with_media(sample_mp4(300_000, 20)), TargetOptions::none()),
                false,
                true,
            ),
            kind(
                "reel/finish",
                "reel_finish",
                |t| (Content::text(t).with_media(sample_mp4(300_000, 20)), fb(reel())),
                false,
                true,
            ),
        ],
    }
}

fn instagram() -> Subject {
    let kind = |name, request, post, publishes| CreateKind {
        name,
        request,
        post,
        duplicate_refusal: false,
        publishes,
        unknowable: false,
    };
    Subject {
        platform: "instagram",
        connect_via: "facebook",
        deletes: false,
        platforms,
        searches_posts: false,
        uploads: Vec::new(),
        kinds: vec![
            kind(
                "image/container",
                "container",
                |t| (Content::text(t).with_media(sample_jpeg(1080, 1080)), ig(InstagramMediaKind::Feed)),
                false,
            ),
            kind(
                "image/publish",
                "media_publish",
                |t| (Content::text(t).with_media(sample_jpeg(1080, 1080)), ig(InstagramMediaKind::Feed)),
                true,
            ),
            kind(
                "reel/publish",
                "media_publish",
                |t| (Content::text(t).with_media(sample_mp4(300_000, 20)), ig(InstagramMediaKind::Reel)),
                true,
            ),
        ],
    }
}

mod facebook_page {
    konektly_testkit::conformance_suite!(super::facebook());
}

mod instagram_account {
    konektly_testkit::conformance_suite!(super::instagram());
}

#[test]
fn the_readme_shows_the_current_conformance_tables() {
    let readme = include_str!("../README.md");
    let expected =
        format!("Facebook Pages:\n\n{}\nInstagram:\n\n{}", readme_table(&facebook()), readme_table(&instagram()));
    konektly_testkit::conformance::assert_readme_holds(readme, "conformance tables", &expected);
}

#[tokio::test]
async fn the_readme_shows_the_current_validation_rules() {
    let expected = konektly_testkit::conformance::rules_tables(platforms).await;
    konektly_testkit::conformance::assert_readme_holds(include_str!("../README.md"), "validation rules", &expected);
}
