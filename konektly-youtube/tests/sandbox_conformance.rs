//! The shared adapter conformance suite (konektly-testkit), run against the sandbox's YouTube.

use std::sync::Arc;
use std::time::Duration;

use konektly_core::{Content, Platform, TargetOptions};
use konektly_testkit::Sandbox;
use konektly_testkit::conformance::{CreateKind, Subject, Upload, sample_mp4};
use konektly_youtube::{YouTubeBuilder, YouTubeOptions};

fn platforms(sandbox: &Sandbox) -> Vec<Arc<dyn Platform>> {
    let c = sandbox.credentials("youtube");
    let youtube = YouTubeBuilder::new()
        .with_client_id(c.client_id)
        .with_client_secret(c.client_secret)
        .with_base_url(sandbox.base_url("youtube").to_string())
        .with_poll_interval(Duration::from_millis(100))
        .with_chunk_size(256 * 1024)
        // Deleting needs the full `youtube` scope (the delete scenario).
        .with_scopes([
            konektly_youtube::SCOPE_UPLOAD,
            konektly_youtube::SCOPE_READONLY,
            konektly_youtube::SCOPE_YOUTUBE,
        ])
        .build()
        .expect("the YouTube platform builds");
    vec![Arc::new(youtube)]
}

fn video(text: &str) -> (Content, TargetOptions) {
    let options = YouTubeOptions { title: Some(text.chars().take(90).collect()), ..YouTubeOptions::default() };
    (Content::text(text).with_media(sample_mp4(300_000, 20)), TargetOptions::new(&options).expect("options serialise"))
}

fn subject() -> Subject {
    let kind = |name, request, publishes| CreateKind {
        name,
        request,
        post: video,
        duplicate_refusal: false,
        publishes,
        unknowable: false,
    };
    Subject {
        platform: "youtube",
        connect_via: "youtube",
        platforms,
        deletes: true,
        searches_posts: false,
        // 256 KiB parts: 700 KB take three.
        uploads: vec![Upload {
            kind: "video/upload",
            part: "upload",
            post: |t| {
                let (content, options) = video(t);
                let content = Content { media: vec![sample_mp4(700_000, 20)], ..content };
                (content, options)
            },
            parts: 3,
        }],
        kinds: vec![kind("video/upload init", "upload_init", false), kind("video/upload", "upload", true)],
    }
}

konektly_testkit::conformance_suite!(subject(), readme: include_str!("../README.md"), platforms: platforms);
