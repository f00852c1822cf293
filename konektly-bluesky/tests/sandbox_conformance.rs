//! The shared adapter conformance suite (konektly-testkit), run against the sandbox's Bluesky
//! PDS. Every create names a record key chosen before it is sent, so a lost answer is looked up
//! at that key and a repeat can never post twice.

use std::sync::Arc;
use std::time::Duration;

use konektly_bluesky::{BlueskyBuilder, BlueskyOptions};
use konektly_core::{Content, Platform, TargetOptions};
use konektly_testkit::Sandbox;
use konektly_testkit::conformance::{CreateKind, Subject, sample_jpeg, sample_mp4};

fn platforms(sandbox: &Sandbox) -> Vec<Arc<dyn Platform>> {
    let base = sandbox.base_url("bluesky");
    let bluesky = BlueskyBuilder::new()
        .with_base_url(base.to_string())
        .with_sign_in_page(base.join("konektly/sign-in/authorize").expect("a URL").to_string())
        // The sandbox's rate-limit answers clear after a second (as its config says).
        .with_rate_limit_wait(Duration::from_secs(1))
        .build()
        .expect("the Bluesky platform builds");
    vec![Arc::new(bluesky)]
}

fn options() -> TargetOptions {
    TargetOptions::new(&BlueskyOptions { langs: vec!["en".into()], ..Default::default() }).expect("options serialise")
}

fn subject() -> Subject {
    let kind = |name, request, post, publishes| CreateKind {
        name,
        request,
        post,
        duplicate_refusal: false,
        publishes,
        unknowable: false,
    };
    Subject {
        platform: "bluesky",
        connect_via: "bluesky",
        platforms,
        deletes: true,
        searches_posts: false,
        // One `uploadBlob` holds a whole file: nothing is uploaded in parts.
        uploads: vec![],
        kinds: vec![
            kind("text", "create_record", |t| (Content::text(format!("{t} #konektly")), options()), true),
            kind(
                "images/record",
                "create_record",
                |t| (Content::text(t).with_media(sample_jpeg(1080, 1080)).with_media(sample_jpeg(640, 480)), options()),
                true,
            ),
            kind(
                "images/blob",
                "upload_blob",
                |t| (Content::text(t).with_media(sample_jpeg(1080, 1080)), options()),
                false,
            ),
            kind(
                "video/blob",
                "upload_blob",
                |t| (Content::text(t).with_media(sample_mp4(300_000, 20)), options()),
                false,
            ),
        ],
    }
}

konektly_testkit::conformance_suite!(subject(), readme: include_str!("../README.md"), platforms: platforms);
