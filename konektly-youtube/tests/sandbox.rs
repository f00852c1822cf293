//! End to end with the engine and the konektly sandbox (konektly-testkit): connect through the
//! consent redirect, publish a scheduled video with a thumbnail while the sandbox drops the
//! connection after accepting the last chunk, poll to published, check the bytes the sandbox
//! received, and delete the video.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{CHUNK, png};
use konektly_core::{
    Account, Content, Konektly, Media, MemoryScheduler, MemoryTokenStore, OwnerId, Platform, Post, RemotePost, Target,
    TargetRecord, TargetState,
};
use konektly_testkit::{Faults, Sandbox, SandboxConfig};
use konektly_youtube::{SCOPE_READONLY, SCOPE_UPLOAD, SCOPE_YOUTUBE, YouTubeBuilder, YouTubeOptions, YouTubePlatform};
use sha2::{Digest, Sha256};
use url::Url;

/// A real MP4 header (probing refuses a broken one), then filler.
fn mp4_bytes(len: usize) -> Vec<u8> {
    match konektly_testkit::conformance::sample_mp4(len, 20).source {
        konektly_core::MediaSource::Bytes(b) => b.to_vec(),
        other => unreachable!("{other:?}"),
    }
}

async fn connect(engine: &Konektly, owner: &OwnerId) -> Vec<Account> {
    let redirect: Url = "https://app.example/callback".parse().unwrap();
    let start = engine.connect(owner, &"youtube".into(), &redirect).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(start.url.clone()).send().await.unwrap();
    let location = resp.headers().get("location").unwrap_or_else(|| panic!("no redirect from {}", start.url));
    let back = Url::parse(location.to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q["state"], start.state);
    engine.complete_connect(&start.state, &q["code"]).await.unwrap()
}

async fn until_done(engine: &Konektly, post: &Post) -> Vec<TargetRecord> {
    let mut records = engine.publish_now(post).await.unwrap();
    let worker = engine.worker();
    for _ in 0..200 {
        if records.iter().all(|r| r.state.is_final()) {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        worker.run_once().await.unwrap();
        records = engine.status(post.id).await.unwrap();
    }
    let states: Vec<_> = records.iter().map(|r| (r.state.name(), r.last_error.clone(), r.checkpoint.clone())).collect();
    panic!("not done: {states:?}");
}

#[tokio::test]
async fn publish_a_scheduled_video_through_the_sandbox() {
    let sandbox =
        Sandbox::start_with(SandboxConfig { processing_delay: Duration::from_millis(200), ..SandboxConfig::default() })
            .await
            .unwrap();
    let creds = sandbox.credentials("youtube");
    let youtube: Arc<YouTubePlatform> = Arc::new(
        YouTubeBuilder::new()
            .with_client_id(creds.client_id)
            .with_client_secret(creds.client_secret)
            .with_scopes([SCOPE_UPLOAD, SCOPE_READONLY, SCOPE_YOUTUBE])
            .with_base_url(sandbox.base_url("youtube").as_str().trim_end_matches('/'))
            .with_chunk_size(CHUNK)
            .with_poll_interval(Duration::from_millis(50))
            .with_upload_retries(3, Duration::ZERO)
            .build()
            .unwrap(),
    );
    let engine = Konektly::builder()
        .platform(youtube.clone())
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .build()
        .unwrap();
    let owner = OwnerId::new("owner-1");
    let accounts = connect(&engine, &owner).await;
    assert_eq!(accounts.len(), 1);
    let channel = accounts[0].remote_id.clone();
    assert!(channel.starts_with("UC"), "{channel}");

    let bytes = mp4_bytes(700_000);
    let mut video = Media::from_bytes(bytes.clone());
    video.mime = "video/mp4".parse().unwrap();
    let publish_at = chrono::Utc::now() + chrono::Duration::days(2);
    let options = YouTubeOptions {
        title: Some("Sandbox release notes".into()),
        tags: vec!["release".into()],
        publish_at: Some(publish_at),
        made_for_kids: Some(false),
        thumbnail: Some(png()),
        ..YouTubeOptions::default()
    };
    let post = Post::new(owner, Content::text("What we shipped.").with_media(video))
        .to(Target::new(accounts[0].id).with_options(&options).unwrap());
    // The sandbox accepts the last chunk, creates the video, and drops the connection.
    sandbox.set_faults("youtube", Faults { drop_after_accept: 1, ..Faults::default() });

    let records = until_done(&engine, &post).await;
    let TargetState::Published { remote } = &records[0].state else {
        panic!("published: {:?} {:?}", records[0].state, records[0].last_error)
    };
    assert_eq!(remote.scheduled_for.map(|t| t.timestamp()), Some(publish_at.timestamp()));

    let posts = sandbox.posts_of("youtube", &channel);
    assert_eq!(posts.len(), 1, "one video, despite the dropped answer: {posts:?}");
    let p = &posts[0];
    assert_eq!(p.id, remote.id);
    assert_eq!(p.text, "Sandbox release notes");
    assert_eq!(p.status, "scheduled");
    assert_eq!(p.media[0].size, bytes.len() as u64);
    assert_eq!(p.media[0].sha256, format!("{:x}", Sha256::digest(&bytes)), "every byte arrived, in order");

    // Delete it.
    let account = engine.account(accounts[0].id).await.unwrap();
    youtube.delete(&account, &RemotePost::new("youtube".into(), remote.id.clone(), None)).await.unwrap();
    assert_eq!(sandbox.posts_of("youtube", &channel)[0].status, "deleted");
}
