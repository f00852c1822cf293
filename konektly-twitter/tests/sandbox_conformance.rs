//! The shared adapter conformance suite (konektly-testkit), run against the sandbox's X.

use std::sync::Arc;

use konektly_core::{Content, Platform, TargetOptions};
use konektly_testkit::Sandbox;
use konektly_testkit::conformance::{CreateKind, Subject, Upload, sample_jpeg, sample_mp4};
use konektly_twitter::XBuilder;

fn platforms(sandbox: &Sandbox) -> Vec<Arc<dyn Platform>> {
    let c = sandbox.credentials("x");
    let x = XBuilder::new()
        .with_client_id(c.client_id)
        .with_client_secret(c.client_secret)
        .with_base_url(sandbox.base_url("x").to_string())
        // Small parts, so that a test video takes several.
        .with_chunk_size(1024 * 1024)
        .build()
        .expect("the X platform builds");
    vec![Arc::new(x)]
}

/// X takes videos of at most 1280×1024.
fn landscape(mut m: konektly_core::Media) -> konektly_core::Media {
    (m.width, m.height) = (Some(1280), Some(720));
    m
}

fn subject() -> Subject {
    Subject {
        platform: "x",
        connect_via: "x",
        platforms,
        deletes: true,
        searches_posts: true,
        uploads: vec![Upload {
            kind: "video",
            part: "media_append",
            post: |t| (Content::text(t).with_media(landscape(sample_mp4(2_600_000, 20))), TargetOptions::none()),
            parts: 3,
        }],
        kinds: vec![
            CreateKind {
                name: "text",
                request: "tweet",
                post: |t| (Content::text(t), TargetOptions::none()),
                duplicate_refusal: true,
                publishes: true,
                unknowable: false,
            },
            CreateKind {
                name: "image",
                request: "tweet",
                post: |t| (Content::text(t).with_media(sample_jpeg(800, 600)), TargetOptions::none()),
                duplicate_refusal: true,
                publishes: true,
                unknowable: false,
            },
            CreateKind {
                name: "video",
                request: "tweet",
                post: |t| (Content::text(t).with_media(landscape(sample_mp4(300_000, 20))), TargetOptions::none()),
                duplicate_refusal: true,
                publishes: true,
                unknowable: false,
            },
            CreateKind {
                name: "video/upload init",
                request: "media_init",
                post: |t| (Content::text(t).with_media(landscape(sample_mp4(300_000, 20))), TargetOptions::none()),
                duplicate_refusal: false,
                publishes: false,
                unknowable: false,
            },
        ],
    }
}

konektly_testkit::conformance_suite!(subject(), readme: include_str!("../README.md"), platforms: platforms);
