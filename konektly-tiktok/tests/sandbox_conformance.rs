//! The shared adapter conformance suite (konektly-testkit), run against the sandbox's TikTok.

use std::sync::Arc;
use std::time::Duration;

use konektly_core::{Content, Platform, TargetOptions};
use konektly_testkit::Sandbox;
use konektly_testkit::conformance::{CreateKind, Subject, Upload, sample_jpeg, sample_mp4};
use konektly_tiktok::{PostMode, PrivacyLevel, TikTokBuilder, TikTokOptions};

fn platforms(sandbox: &Sandbox) -> Vec<Arc<dyn Platform>> {
    let c = sandbox.credentials("tiktok");
    let tiktok = TikTokBuilder::new()
        .with_client_key(c.client_id)
        .with_client_secret(c.client_secret)
        .with_base_url(sandbox.base_url("tiktok").to_string())
        .with_poll_interval(Duration::from_millis(100))
        // The sandbox's rate-limit answers clear after a second (as its config says).
        .with_rate_limit_wait(Duration::from_secs(1))
        .with_chunk_size(5 * 1024 * 1024)
        .build()
        .expect("the TikTok platform builds");
    vec![Arc::new(tiktok)]
}

fn options(mode: PostMode) -> TargetOptions {
    // Public, so that TikTok gives the post's id (private posts are known by their publish id).
    let privacy_level = (mode == PostMode::DirectPost).then_some(PrivacyLevel::PublicToEveryone);
    TargetOptions::new(&TikTokOptions { mode, privacy_level, ..Default::default() }).expect("options serialise")
}

fn subject() -> Subject {
    let kind = |name, request, post, publishes| CreateKind {
        name,
        request,
        post,
        duplicate_refusal: false,
        publishes,
        // A photo post's init makes TikTok pull the photos: once sent, it may publish, and
        // nothing can look it up until its answer (the publish id) arrives.
        unknowable: request == "content_init",
    };
    Subject {
        platform: "tiktok",
        connect_via: "tiktok",
        platforms,
        deletes: false,
        searches_posts: false,
        // TikTok's parts are 5 MB at least (the last one takes the rest): 11 MB take two.
        uploads: vec![Upload {
            kind: "video/init",
            part: "upload_chunk",
            post: |t| (Content::text(t).with_media(sample_mp4(11 * 1024 * 1024, 20)), options(PostMode::DirectPost)),
            parts: 2,
        }],
        kinds: vec![
            kind(
                "video/init",
                "video_init",
                |t| (Content::text(t).with_media(sample_mp4(300_000, 20)), options(PostMode::DirectPost)),
                false,
            ),
            kind(
                "video/chunk",
                "upload_chunk",
                |t| (Content::text(t).with_media(sample_mp4(300_000, 20)), options(PostMode::DirectPost)),
                false,
            ),
            kind(
                "inbox video/init",
                "inbox_init",
                |t| (Content::text(t).with_media(sample_mp4(300_000, 20)), options(PostMode::Inbox)),
                false,
            ),
            kind(
                "photo/init",
                "content_init",
                |t| (Content::text(t).with_media(sample_jpeg(1080, 1080)), options(PostMode::DirectPost)),
                true,
            ),
        ],
    }
}

konektly_testkit::conformance_suite!(subject(), readme: include_str!("../README.md"), platforms: platforms);
