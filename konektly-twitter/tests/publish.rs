//! Publishing against a wiremock X: the exact requests X expects for text + 4 images, a video,
//! a poll, a 5-item thread, replies, resumption from checkpoints, reconciliation and delete.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use konektly_core::ratelimit::BudgetScope;
use konektly_core::{
    Checkpoint, Content, Error, Media, Platform, PlatformId, PublishOutcome, Reconciliation, RemotePost, TargetOptions,
    ThreadItem,
};
use konektly_twitter::{ReplySettings, XOptions, XPoll};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

async fn expect_tweet(server: &MockServer, body: Value, id: &str) {
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    let (h, v) = bearer();
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(header(h, v.as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(body))
        .respond_with(created(id, &text))
        .expect(1)
        .mount(server)
        .await;
}

fn opts(o: &XOptions) -> TargetOptions {
    TargetOptions::new(o).unwrap()
}

fn published(outcome: &PublishOutcome) -> &RemotePost {
    match outcome {
        PublishOutcome::Published(r) => r,
        other => panic!("expected Published, got {other:?}"),
    }
}

/// Mounts initialize / append (one segment) / finalize for one image, and alt text if given.
async fn expect_image_upload(server: &MockServer, id: &str, bytes: &[u8], alt: Option<&str>) {
    let (h, v) = bearer();
    Mock::given(method("POST"))
        .and(path("/2/media/upload/initialize"))
        .and(header(h, v.as_str()))
        .and(body_json(json!({"media_type": "image/png", "total_bytes": bytes.len(), "media_category": "tweet_image"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"id": id, "media_key": format!("3_{id}"), "expires_after_secs": 1_295_999}}),
        ))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/2/media/upload/{id}/append")))
        .and(header(h, v.as_str()))
        .and(append_of(0, bytes.to_vec()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"expires_at": 1_900_000_000}})))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/2/media/upload/{id}/finalize")))
        .and(header(h, v.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "id": id, "media_key": format!("3_{id}"), "size": bytes.len(), "expires_after_secs": 86400,
            "image": {"image_type": "image/png", "w": 16, "h": 16}
        }})))
        .expect(1)
        .mount(server)
        .await;
    if let Some(alt) = alt {
        Mock::given(method("POST"))
            .and(path("/2/media/metadata"))
            .and(header(h, v.as_str()))
            .and(body_json(json!({"id": id, "metadata": {"alt_text": {"text": alt}}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"associated_metadata": true}})))
            .expect(1)
            .mount(server)
            .await;
    }
}

#[tokio::test]
async fn text_with_four_images_and_alt_text() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let mut content = Content::text("Four views of the harbour");
    for (k, id) in ["1001", "1002", "1003", "1004"].iter().enumerate() {
        let bytes = png_bytes(100 * (k + 1), k as u8);
        let alt = format!("View {}", k + 1);
        expect_image_upload(&server, id, &bytes, Some(&alt)).await;
        content.media.push(Media::from_bytes(bytes).with_alt_text(alt));
    }
    expect_tweet(
        &server,
        json!({"text": "Four views of the harbour", "media": {"media_ids": ["1001", "1002", "1003", "1004"]}}),
        "1500000000000000001",
    )
    .await;

    let run = publish(&x, &content, &TargetOptions::none()).await;
    let remote = published(run.result.as_ref().unwrap());
    assert_eq!(remote.id, "1500000000000000001");
    assert_eq!(remote.platform, PlatformId::new("x"));
    assert_eq!(remote.url.as_ref().unwrap().as_str(), "https://x.com/konektly/status/1500000000000000001");
    assert!(remote.thread_ids.is_empty());
    // Every media id was checkpointed before the post was sent.
    let saved = run.saver.saved();
    let before_post =
        saved.iter().find(|c| c.as_json()["create_sent"]["item"] == json!(0)).expect("a checkpoint before posting");
    let ids: Vec<&str> = before_post.as_json()["items"][0]["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["media_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1001", "1002", "1003", "1004"]);
}

#[tokio::test]
async fn video_is_uploaded_in_chunks_streamed_from_a_file_then_polled() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let (h, v) = bearer();

    // 2.5 MiB of "MP4": three segments of 1 MiB, 1 MiB and 0.5 MiB.
    let mut bytes = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
    bytes.extend((0..(5 << 19) - bytes.len()).map(|i| (i % 251) as u8));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let mut video = Media::from_file(&file).await.unwrap();
    assert_eq!(video.mime.essence_str(), "video/mp4");
    // Only an `ftyp`: probing calls it malformed; this test is about the upload, not the movie.
    video.probe_error = None;
    video.duration = Some(Duration::from_secs(12));

    Mock::given(method("POST"))
        .and(path("/2/media/upload/initialize"))
        .and(header(h, v.as_str()))
        .and(body_json(json!({"media_type": "video/mp4", "total_bytes": 2_621_440, "media_category": "tweet_video"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": "7001", "media_key": "7_7001", "expires_after_secs": 1_295_999}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mib = 1 << 20;
    for (segment, range) in [(0u32, 0..mib), (1, mib..2 * mib), (2, 2 * mib..bytes.len())] {
        Mock::given(method("POST"))
            .and(path("/2/media/upload/7001/append"))
            .and(header(h, v.as_str()))
            .and(append_of(segment, bytes[range].to_vec()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"expires_at": 1_900_000_000}})))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/2/media/upload/7001/finalize"))
        .and(header(h, v.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "id": "7001", "media_key": "7_7001", "size": 2_621_440, "expires_after_secs": 86400,
            "processing_info": {"state": "pending", "check_after_secs": 3}
        }})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2/media/upload"))
        .and(query_param("media_id", "7001"))
        .and(query_param("command", "STATUS"))
        .and(header(h, v.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "id": "7001", "media_key": "7_7001", "expires_after_secs": 86000,
            "processing_info": {"state": "succeeded", "progress_percent": 100}
        }})))
        .expect(1)
        .mount(&server)
        .await;
    expect_tweet(&server, json!({"text": "Launch day", "media": {"media_ids": ["7001"]}}), "1500000000000000002").await;

    let content = Content::text("Launch day").with_media(video);
    let first = publish(&x, &content, &TargetOptions::none()).await;
    match first.result.as_ref().unwrap() {
        PublishOutcome::Processing { poll_after, detail } => {
            assert_eq!(*poll_after, Duration::from_secs(3), "check_after_secs is honoured");
            assert!(detail.as_deref().unwrap().contains("7001"));
        }
        other => panic!("expected Processing, got {other:?}"),
    }
    // Progress is saved segment by segment.
    let segments: Vec<u64> = first
        .saver
        .saved()
        .iter()
        .filter_map(|c| c.as_json()["items"][0]["media"][0]["segments_sent"].as_u64())
        .collect();
    assert!(segments.windows(2).all(|w| w[0] <= w[1]) && segments.contains(&1) && segments.contains(&3));

    let second = drive(&x, Call::Poll, &content, &TargetOptions::none(), first.checkpoint, Utc::now()).await;
    assert_eq!(published(second.result.as_ref().unwrap()).id, "1500000000000000002");
}

#[tokio::test]
async fn a_gif_is_polled_until_processed_and_rate_limits_are_reported() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let mut gif_bytes = b"GIF89a\x10\x00\x10\x00".to_vec();
    gif_bytes.resize(3000, 7);
    let gif = Media::from_bytes(gif_bytes.clone()).with_alt_text("A dancing cat");
    assert_eq!(gif.mime.essence_str(), "image/gif");
    let reset = reset_in_an_hour();
    Mock::given(method("POST"))
        .and(path("/2/media/upload/initialize"))
        .and(body_json(json!({"media_type": "image/gif", "total_bytes": 3000, "media_category": "tweet_gif"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "3001", "media_key": "16_3001"}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/media/upload/3001/append"))
        .and(append_of(0, gif_bytes.clone()))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/media/upload/3001/finalize"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "3001",
            "processing_info": {"state": "pending", "check_after_secs": 1}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2/media/upload"))
        .and(query_param("media_id", "3001"))
        .and(query_param("command", "STATUS"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "3001",
            "processing_info": {"state": "in_progress", "check_after_secs": 5, "progress_percent": 40}}})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2/media/upload"))
        .and(query_param("media_id", "3001"))
        .and(query_param("command", "STATUS"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "3001",
            "processing_info": {"state": "succeeded", "progress_percent": 100}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/media/metadata"))
        .and(body_json(json!({"id": "3001", "metadata": {"alt_text": {"text": "A dancing cat"}}})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(body_json(json!({"text": "Friday", "media": {"media_ids": ["3001"]}})))
        .respond_with(
            created("1500000000000000010", "Friday")
                .insert_header("x-rate-limit-limit", "100")
                .insert_header("x-rate-limit-remaining", "99")
                .insert_header("x-rate-limit-reset", reset.as_str())
                .insert_header("x-user-limit-24hour-limit", "100")
                .insert_header("x-user-limit-24hour-remaining", "0")
                .insert_header("x-user-limit-24hour-reset", reset.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;

    let content = Content::text("Friday").with_media(gif);
    let first = publish(&x, &content, &TargetOptions::none()).await;
    assert!(
        matches!(first.result, Ok(PublishOutcome::Processing { poll_after, .. }) if poll_after == Duration::from_secs(1)),
        "{:?}",
        first.result
    );
    let second = drive(&x, Call::Poll, &content, &TargetOptions::none(), first.checkpoint, Utc::now()).await;
    match &second.result {
        Ok(PublishOutcome::Processing { poll_after, detail }) => {
            assert_eq!(*poll_after, Duration::from_secs(5));
            assert!(detail.as_deref().unwrap().contains("40%"));
        }
        other => panic!("{other:?}"),
    }
    let third = drive(&x, Call::Poll, &content, &TargetOptions::none(), second.checkpoint, Utc::now()).await;
    assert_eq!(published(third.result.as_ref().unwrap()).id, "1500000000000000010");
    let reports = third.saver.rate_limit_reports();
    let tweets: Vec<_> = reports.iter().filter(|r| r.bucket == "POST /2/tweets").collect();
    assert_eq!((tweets.len(), tweets[0].remaining, tweets[0].limit), (1, 99, Some(100)));
    assert!(reports.iter().any(|r| r.bucket == "24hour" && r.scope == BudgetScope::Account && r.remaining == 0));
}

#[tokio::test]
async fn a_413_on_append_is_rejected_with_a_chunk_hint() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/media/upload/initialize"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "4001"}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/media/upload/4001/append"))
        .respond_with(ResponseTemplate::new(413))
        .expect(1)
        .mount(&server)
        .await;
    let content = Content::text("big").with_media(Media::from_bytes(png_bytes(500, 3)));
    let run = publish(&x, &content, &TargetOptions::none()).await;
    let err = run.result.unwrap_err();
    assert!(matches!(&err, Error::Rejected { code: Some(c), .. } if c == "413"), "{err:?}");
    // The media id is kept: a retry does not initialize again.
    assert_eq!(run.checkpoint.as_json()["items"][0]["media"][0]["media_id"], json!("4001"));
}

#[tokio::test]
async fn failed_video_processing_is_rejected() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    Mock::given(method("GET"))
        .and(path("/2/media/upload"))
        .and(query_param("media_id", "7002"))
        .and(query_param("command", "STATUS"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "7002",
            "processing_info": {"state": "failed", "progress_percent": 100,
                "error": {"code": 1, "name": "InvalidMedia", "message": "Unsupported video format"}}}})))
        .expect(1)
        .mount(&server)
        .await;
    let mut video = Media::from_bytes(vec![0u8; 10]);
    video.mime = "video/mp4".parse().unwrap();
    let content = Content::text("clip").with_media(video);
    let cp = Checkpoint::from_json(json!({"items": [{"media": [
        {"media_id": "7002", "segments_sent": 1, "bytes_sent": 10, "finalized": true, "ready": false}
    ]}]}));
    let run = drive(&x, Call::Poll, &content, &TargetOptions::none(), cp, Utc::now()).await;
    let err = run.result.unwrap_err();
    assert!(matches!(&err, Error::Rejected { code: Some(c), .. } if c == "media-processing-failed"), "{err:?}");
    assert!(err.to_string().contains("Unsupported video format"));
}

#[tokio::test]
async fn an_interrupted_upload_resumes_at_the_next_segment() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let mut bytes = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
    bytes.extend((0..(3 << 20) - bytes.len()).map(|i| (i % 13) as u8));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let mut video = Media::from_file(&file).await.unwrap();
    video.probe_error = None; // only an `ftyp`: this test is about resuming the upload
    let mib = 1 << 20;
    // Segment 0 went through before the worker died: only 1 and 2 are sent, from the file's offset.
    for (segment, range) in [(1u32, mib..2 * mib), (2, 2 * mib..3 * mib)] {
        Mock::given(method("POST"))
            .and(path("/2/media/upload/7003/append"))
            .and(append_of(segment, bytes[range].to_vec()))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/2/media/upload/7003/finalize"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "7003", "expires_after_secs": 86400,
            "processing_info": {"state": "succeeded"}}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/media/upload/initialize"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    expect_tweet(&server, json!({"text": "resumed", "media": {"media_ids": ["7003"]}}), "1500000000000000003").await;

    let content = Content::text("resumed").with_media(video);
    let cp = Checkpoint::from_json(json!({"items": [{"media": [
        {"media_id": "7003", "segments_sent": 1, "bytes_sent": mib, "finalized": false, "ready": false}
    ]}]}));
    let run = drive(&x, Call::Publish, &content, &TargetOptions::none(), cp, Utc::now()).await;
    assert_eq!(published(run.result.as_ref().unwrap()).id, "1500000000000000003");
}

#[tokio::test]
async fn uploaded_media_ids_are_not_uploaded_again() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    expect_tweet(&server, json!({"text": "again", "media": {"media_ids": ["1001", "1002"]}}), "1500000000000000004")
        .await;
    let content = Content::text("again")
        .with_media(Media::from_bytes(png_bytes(100, 1)).with_alt_text("one"))
        .with_media(Media::from_bytes(png_bytes(100, 2)));
    let expires = (Utc::now() + chrono::Duration::hours(20)).to_rfc3339();
    let cp = Checkpoint::from_json(json!({"items": [{"media": [
        {"media_id": "1001", "segments_sent": 1, "bytes_sent": 100, "finalized": true, "ready": true, "alt_text_set": true, "expires_at": expires},
        {"media_id": "1002", "segments_sent": 1, "bytes_sent": 100, "finalized": true, "ready": true, "expires_at": expires}
    ]}]}));
    let run = drive(&x, Call::Publish, &content, &TargetOptions::none(), cp, Utc::now()).await;
    assert_eq!(published(run.result.as_ref().unwrap()).id, "1500000000000000004");
    // Only the post was sent (any upload call would have found no mock and failed).
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_poll_with_reply_settings() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    expect_tweet(
        &server,
        json!({"text": "Tabs or spaces?", "poll": {"options": ["Tabs", "Spaces", "Both"], "duration_minutes": 1440},
               "reply_settings": "following"}),
        "1500000000000000005",
    )
    .await;
    let o = XOptions {
        poll: Some(XPoll { options: vec!["Tabs".into(), "Spaces".into(), "Both".into()], duration_minutes: 1440 }),
        reply_settings: Some(ReplySettings::Following),
        ..XOptions::default()
    };
    let run = publish(&x, &Content::text("Tabs or spaces?"), &opts(&o)).await;
    assert_eq!(published(run.result.as_ref().unwrap()).id, "1500000000000000005");
}

#[tokio::test]
async fn community_sharing_place_and_paid_partnership_are_sent() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    expect_tweet(
        &server,
        json!({"text": "Our sponsor's launch", "community_id": "1146654567674912769", "share_with_followers": true,
               "geo": {"place_id": "5a110d312052166f"}, "paid_partnership": true}),
        "1500000000000000007",
    )
    .await;
    let o = XOptions {
        community_id: Some("1146654567674912769".into()),
        share_with_followers: true,
        place_id: Some("5a110d312052166f".into()),
        paid_partnership: true,
        ..XOptions::default()
    };
    let content = Content::text("Our sponsor's launch");
    assert!(x.validate(&content, &opts(&o)).is_empty());
    let run = publish(&x, &content, &opts(&o)).await;
    assert_eq!(published(run.result.as_ref().unwrap()).id, "1500000000000000007");
    let lonely = XOptions { share_with_followers: true, place_id: Some(" ".into()), ..XOptions::default() };
    let codes: Vec<String> = x.validate(&content, &opts(&lonely)).into_iter().map(|v| v.code.to_string()).collect();
    assert_eq!(codes, vec!["share_needs_community", "invalid_place_id"]);
}

#[tokio::test]
async fn a_reply_to_an_existing_post() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    expect_tweet(
        &server,
        json!({"text": "Agreed!", "reply": {"in_reply_to_tweet_id": "1400000000000000000", "exclude_reply_user_ids": ["6253282"]},
               "reply_settings": "mentionedUsers"}),
        "1500000000000000006",
    )
    .await;
    let o = XOptions {
        reply_to: Some("1400000000000000000".into()),
        exclude_reply_user_ids: vec!["6253282".into()],
        reply_settings: Some(ReplySettings::MentionedUsers),
        ..XOptions::default()
    };
    let run = publish(&x, &Content::text("Agreed!"), &opts(&o)).await;
    assert_eq!(published(run.result.as_ref().unwrap()).id, "1500000000000000006");
}

fn thread_content() -> Content {
    let mut c = Content::text("1/5 A thread about konektly");
    for k in 2..=5 {
        c = c.with_thread_item(ThreadItem { text: format!("{k}/5 more"), media: vec![] });
    }
    c
}

fn thread_body(k: usize) -> Value {
    let text = if k == 1 { "1/5 A thread about konektly".to_owned() } else { format!("{k}/5 more") };
    if k == 1 {
        json!({"text": text})
    } else {
        json!({"text": text, "reply": {"in_reply_to_tweet_id": format!("16000000000000000{:02}", k - 1)}})
    }
}

fn thread_id(k: usize) -> String {
    format!("16000000000000000{k:02}")
}

#[tokio::test]
async fn a_five_item_thread_is_a_reply_chain() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    for k in 1..=5 {
        expect_tweet(&server, thread_body(k), &thread_id(k)).await;
    }
    let run = publish(&x, &thread_content(), &TargetOptions::none()).await;
    let remote = published(run.result.as_ref().unwrap());
    assert_eq!(remote.id, thread_id(1));
    assert_eq!(remote.thread_ids, (2..=5).map(thread_id).collect::<Vec<_>>());
    // Each id was checkpointed as soon as it was posted.
    let last = run.saver.last().unwrap();
    let posted: Vec<&str> =
        last.as_json()["items"].as_array().unwrap().iter().map(|i| i["posted_id"].as_str().unwrap()).collect();
    assert_eq!(posted.len(), 5);
}

#[tokio::test]
async fn a_thread_resumed_from_a_checkpoint_posts_only_the_missing_items() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    for k in 3..=5 {
        expect_tweet(&server, thread_body(k), &thread_id(k)).await;
    }
    let cp = Checkpoint::from_json(json!({"items": [{"posted_id": thread_id(1)}, {"posted_id": thread_id(2)}]}));
    let run = drive(&x, Call::Publish, &thread_content(), &TargetOptions::none(), cp, Utc::now()).await;
    let remote = published(run.result.as_ref().unwrap());
    assert_eq!(remote.id, thread_id(1));
    assert_eq!(remote.thread_ids, (2..=5).map(thread_id).collect::<Vec<_>>());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_lost_answer_mid_thread_is_reconciled_then_the_rest_is_posted() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let started = Utc::now();
    for k in 1..=2 {
        expect_tweet(&server, thread_body(k), &thread_id(k)).await;
    }
    // The third post lands but X answers 500: the outcome is unknown.
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(body_json(thread_body(3)))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"title": "Internal Server Error", "type": "about:blank", "status": 500, "detail": "Internal Server Error"}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let first = publish(&x, &thread_content(), &TargetOptions::none()).await;
    assert!(matches!(first.result, Err(Error::UnknownOutcome { .. })), "{:?}", first.result);
    assert_eq!(first.checkpoint.as_json()["create_sent"]["item"], json!(2));

    // Reconcile finds item 3 among the account's posts created since its create was sent (less
    // two minutes of clock skew); a same-text reply to another post is not it.
    let sent: chrono::DateTime<Utc> =
        serde_json::from_value(first.checkpoint.as_json()["items"][2]["first_sent_at"].clone()).unwrap();
    let since = (sent - chrono::Duration::minutes(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let at = |ms: i64| (sent + chrono::Duration::milliseconds(ms)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (h, v) = bearer();
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{USER_ID}/tweets")))
        .and(header(h, v.as_str()))
        .and(query_param("start_time", since.as_str()))
        .and(query_param("max_results", "100"))
        .and(query_param("tweet.fields", "created_at,referenced_tweets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"id": thread_id(3), "text": "3/5 more", "created_at": at(200),
                 "referenced_tweets": [{"type": "replied_to", "id": thread_id(2)}], "edit_history_tweet_ids": [thread_id(3)]},
                {"id": "1599999999999999999", "text": "3/5 more", "created_at": at(100),
                 "referenced_tweets": [{"type": "replied_to", "id": "1"}], "edit_history_tweet_ids": ["1599999999999999999"]},
                {"id": thread_id(2), "text": "2/5 more", "referenced_tweets": [{"type": "replied_to", "id": thread_id(1)}]},
                {"id": thread_id(1), "text": "1/5 A thread about konektly"}
            ],
            "meta": {"result_count": 4, "newest_id": thread_id(3), "oldest_id": thread_id(1)}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let rec = reconcile(&x, &thread_content(), &TargetOptions::none(), first.checkpoint, started).await;
    assert!(matches!(rec.result, Ok(Reconciliation::NotFound)), "the rest must still be published: {:?}", rec.result);
    assert_eq!(rec.checkpoint.as_json()["items"][2]["posted_id"], json!(thread_id(3)));

    // Publishing again posts 4 and 5 only.
    for k in 4..=5 {
        expect_tweet(&server, thread_body(k), &thread_id(k)).await;
    }
    let last = drive(&x, Call::Publish, &thread_content(), &TargetOptions::none(), rec.checkpoint, started).await;
    let remote = published(last.result.as_ref().unwrap());
    assert_eq!(remote.thread_ids, (2..=5).map(thread_id).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_duplicate_answer_after_a_lost_create_is_reconciled_to_the_post_already_there() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let started = Utc::now();
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "detail": "You are not allowed to create a Tweet with duplicate content.",
            "type": "about:blank", "title": "Forbidden", "status": 403})))
        .expect(1)
        .mount(&server)
        .await;
    let content = Content::text("Read https://konektly.app/blog/launch & share");
    // An earlier create of this item was sent and its answer lost.
    let lost = Checkpoint::from_json(json!({"items": [{"unanswered_creates": 1}], "posting": 0}));
    let run = drive(&x, Call::Publish, &content, &TargetOptions::none(), lost, started).await;
    assert!(matches!(run.result, Err(Error::UnknownOutcome { .. })), "{:?}", run.result);
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{USER_ID}/tweets")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "1700000000000000001", "text": "Read https://t.co/AbCdEf &amp; share"}
        ], "meta": {"result_count": 1}})))
        .expect(1)
        .mount(&server)
        .await;
    let rec = reconcile(&x, &content, &TargetOptions::none(), run.checkpoint, started).await;
    match rec.result.unwrap() {
        Reconciliation::Published(r) => assert_eq!(r.id, "1700000000000000001"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn reconcile_without_a_match_allows_publishing_again_or_rejects_a_duplicate() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{USER_ID}/tweets")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"meta": {"result_count": 0}})))
        .expect(2)
        .mount(&server)
        .await;
    let content = Content::text("hello");
    let cp = Checkpoint::from_json(json!({"items": [{}], "posting": 0}));
    let rec = reconcile(&x, &content, &TargetOptions::none(), cp, Utc::now()).await;
    assert!(matches!(rec.result, Ok(Reconciliation::NotFound)));
    assert!(rec.checkpoint.as_json().get("create_sent").is_none(), "nothing is in flight any more");

    // X said our own earlier post exists, but it is not in the timeline yet: still unknown.
    let cp = Checkpoint::from_json(json!({"items": [{}], "duplicate": 0}));
    let rec = reconcile(&x, &content, &TargetOptions::none(), cp, Utc::now()).await;
    assert!(matches!(&rec.result, Err(Error::UnknownOutcome { .. })), "{:?}", rec.result);

    // Nothing in flight: no search at all.
    let rec = reconcile(&x, &content, &TargetOptions::none(), Checkpoint::default(), Utc::now()).await;
    assert!(matches!(rec.result, Ok(Reconciliation::NotFound)));
}

#[tokio::test]
async fn rate_limit_headers_are_reported_and_429_waits_for_the_reset() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let reset = reset_in_an_hour();
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-rate-limit-limit", "100")
                .insert_header("x-rate-limit-remaining", "0")
                .insert_header("x-rate-limit-reset", reset.as_str())
                .insert_header("x-app-limit-24hour-limit", "10000")
                .insert_header("x-app-limit-24hour-remaining", "9950")
                .insert_header("x-app-limit-24hour-reset", reset.as_str())
                .set_body_json(json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let run = publish(&x, &Content::text("busy"), &TargetOptions::none()).await;
    let Err(Error::RateLimited { retry_at, .. }) = &run.result else { panic!("{:?}", run.result) };
    assert_eq!(retry_at.unwrap().timestamp().to_string(), reset);
    let reports = run.saver.rate_limit_reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (reports[0].scope, reports[0].remaining, reports[0].bucket.as_str()),
        (BudgetScope::Account, 0, "POST /2/tweets")
    );
    assert_eq!((reports[1].scope, reports[1].remaining), (BudgetScope::App, 9950));
    assert!(run.checkpoint.as_json().get("create_sent").is_none(), "a 429 means nothing landed");
}

#[tokio::test]
async fn a_refused_token_is_reported_without_the_token() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    Mock::given(method("POST"))
        .and(path("/2/media/upload/initialize"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let content = Content::text("pic").with_media(Media::from_bytes(png_bytes(100, 0)));
    let run = publish(&x, &content, &TargetOptions::none()).await;
    let err = run.result.unwrap_err();
    assert!(matches!(err, Error::AccessTokenRejected { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(TOKEN));
}

#[tokio::test]
async fn delete_removes_every_item_and_accepts_already_gone() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    let (h, v) = bearer();
    for id in ["1800000000000000002", "1800000000000000001"] {
        Mock::given(method("DELETE"))
            .and(path(format!("/2/tweets/{id}")))
            .and(header(h, v.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"deleted": true}})))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("DELETE"))
        .and(path("/2/tweets/1800000000000000003"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "errors": [{"detail": "Could not find tweet", "type": "https://api.x.com/2/problems/resource-not-found"}],
            "title": "Not Found Error", "type": "https://api.x.com/2/problems/resource-not-found"})))
        .expect(1)
        .mount(&server)
        .await;
    let mut post = RemotePost::new(PlatformId::new("x"), "1800000000000000001", None);
    post.thread_ids = vec!["1800000000000000002".into(), "1800000000000000003".into()];
    x.delete(&account(), &post).await.unwrap();

    Mock::given(method("DELETE"))
        .and(path("/2/tweets/1800000000000000009"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "title": "Forbidden", "type": "about:blank", "status": 403, "detail": "You are not allowed to delete this Tweet."})))
        .mount(&server)
        .await;
    let err =
        x.delete(&account(), &RemotePost::new(PlatformId::new("x"), "1800000000000000009", None)).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn errors_of_the_other_endpoints_are_mapped() {
    let server = MockServer::start().await;
    let x = platform(&server.uri());
    // Alt text refused: the post is not sent.
    let bytes = png_bytes(100, 9);
    Mock::given(method("POST"))
        .and(path("/2/media/upload/initialize"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "5001"}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/media/upload/5001/append"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/media/upload/5001/finalize"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "5001"}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/media/metadata"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "errors": [{"message": "metadata.alt_text.text: must be at most 1000 characters"}],
            "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.x.com/2/problems/invalid-request"})))
        .expect(1)
        .mount(&server)
        .await;
    let content = Content::text("alt").with_media(Media::from_bytes(bytes).with_alt_text("x"));
    let run = publish(&x, &content, &TargetOptions::none()).await;
    let err = run.result.unwrap_err();
    assert!(matches!(&err, Error::Rejected { code: Some(c), .. } if c == "invalid-request"), "{err:?}");
    assert!(err.to_string().contains("must be at most 1000 characters"));
    assert!(!server.received_requests().await.unwrap().iter().any(|r| r.url.path() == "/2/tweets"));

    // The timeline read while reconciling is rate limited: reconcile again later.
    let reset = reset_in_an_hour();
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{USER_ID}/tweets")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-rate-limit-remaining", "0")
                .insert_header("x-rate-limit-reset", reset.as_str())
                .set_body_json(json!({"errors": [{"code": 88, "message": "Rate limit exceeded"}]})),
        )
        // Core retries an idempotent 429 that has no Retry-After a few times before giving up.
        .expect(1..=4)
        .mount(&server)
        .await;
    let cp = Checkpoint::from_json(json!({"items": [{}], "posting": 0}));
    let rec = reconcile(&x, &Content::text("hello"), &TargetOptions::none(), cp, Utc::now()).await;
    assert!(
        matches!(&rec.result, Err(Error::RateLimited { retry_at: Some(t), .. }) if t.timestamp().to_string() == reset)
    );
    // Not saved again: the checkpoint is the old-shaped one it was given.
    assert_eq!(rec.checkpoint.as_json()["posting"], json!(0), "still in flight: it must be looked for again");
}
