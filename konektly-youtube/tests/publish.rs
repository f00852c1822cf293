//! Publishing against a mock: the resumable upload request by request (session, chunks, ranges,
//! bodies), recovery after a 5xx or a dropped connection, resuming from a checkpoint in a fresh
//! platform instance, a vanished session, the thumbnail, processing status, reconcile, delete.

mod common;

use std::io::ErrorKind;

use chrono::{TimeZone, Utc};
use common::*;
use konektly_core::ratelimit::BudgetScope;
use konektly_core::{Checkpoint, Content, Error, Media, Platform, PublishOutcome, Reconciliation, RemotePost};
use konektly_youtube::{License, Privacy, YouTubeOptions};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOTAL: usize = 600_000;
const UPLOAD_PATH: &str = "/upload/youtube/v3/videos";

fn options() -> YouTubeOptions {
    YouTubeOptions { title: Some("Release notes".into()), ..YouTubeOptions::default() }
}

fn session_uri(server: &MockServer, id: &str) -> String {
    format!("{}{UPLOAD_PATH}?uploadType=resumable&upload_id={id}", server.uri())
}

/// The session start, answering with the session URI.
async fn mount_session(server: &MockServer, id: &str, expect: u64) {
    Mock::given(method("POST"))
        .and(path(UPLOAD_PATH))
        .and(query_param("uploadType", "resumable"))
        .and(query_param("part", "snippet,status"))
        .respond_with(ResponseTemplate::new(200).insert_header("Location", session_uri(server, id).as_str()))
        .expect(expect)
        .named("session start")
        .mount(server)
        .await;
}

/// One chunk PUT with an exact `Content-Range`, answered by `resp`.
async fn mount_chunk(server: &MockServer, upload_id: &str, range: &str, resp: ResponseTemplate, expect: u64) {
    Mock::given(method("PUT"))
        .and(path(UPLOAD_PATH))
        .and(query_param("upload_id", upload_id))
        .and(header("content-range", range))
        .and(header("authorization", format!("Bearer {ACCESS}").as_str()))
        .respond_with(resp)
        .expect(expect)
        .named(range.to_string())
        .mount(server)
        .await;
}

fn incomplete(last: usize) -> ResponseTemplate {
    ResponseTemplate::new(308).insert_header("Range", format!("bytes=0-{last}").as_str())
}

fn done() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_raw(fixture("video_inserted.json"), "application/json")
}

/// The bytes of every chunk PUT (not status queries), in order, with their `Content-Range`.
async fn chunks_sent(server: &MockServer, upload_id: &str) -> Vec<(String, Vec<u8>)> {
    requests(server, "PUT", UPLOAD_PATH)
        .await
        .into_iter()
        .filter(|r| r.url.query_pairs().any(|(k, v)| k == "upload_id" && v == upload_id))
        .filter_map(|r| {
            let range = header_of(&r, "content-range")?;
            (!range.starts_with("bytes */")).then(|| (range, r.body.clone()))
        })
        .collect()
}

#[tokio::test]
async fn publish_uploads_in_chunks_with_exact_requests_then_sets_the_thumbnail() {
    let server = MockServer::start().await;
    let o = YouTubeOptions {
        title: Some("Release notes".into()),
        tags: vec!["release".into(), "behind the scenes".into()],
        category_id: Some("28".into()),
        default_language: Some("en".into()),
        default_audio_language: Some("en-US".into()),
        privacy: None,
        publish_at: Some(Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0).unwrap()),
        made_for_kids: Some(false),
        contains_synthetic_media: Some(true),
        notify_subscribers: Some(false),
        embeddable: Some(true),
        license: Some(License::CreativeCommon),
        public_stats_viewable: Some(false),
        thumbnail: Some(png()),
    };
    Mock::given(method("POST"))
        .and(path(UPLOAD_PATH))
        .and(query_param("uploadType", "resumable"))
        .and(query_param("part", "snippet,status"))
        .and(query_param("notifySubscribers", "false"))
        .and(header("authorization", format!("Bearer {ACCESS}").as_str()))
        .and(header("content-type", "application/json; charset=UTF-8"))
        .and(header("x-upload-content-length", TOTAL.to_string().as_str()))
        .and(header("x-upload-content-type", "video/mp4"))
        .and(body_json(json!({
            "snippet": {
                "title": "Release notes",
                "description": "What we shipped this week.",
                "tags": ["release", "behind the scenes"],
                "categoryId": "28",
                "defaultLanguage": "en",
                "defaultAudioLanguage": "en-US"
            },
            "status": {
                "privacyStatus": "private",
                "publishAt": "2030-01-01T09:00:00Z",
                "selfDeclaredMadeForKids": false,
                "containsSyntheticMedia": true,
                "embeddable": true,
                "license": "creativeCommon",
                "publicStatsViewable": false
            }
        })))
        .respond_with(ResponseTemplate::new(200).insert_header("Location", session_uri(&server, "s1").as_str()))
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, "s1", "bytes 0-262143/600000", incomplete(262_143), 1).await;
    mount_chunk(&server, "s1", "bytes 262144-524287/600000", incomplete(524_287), 1).await;
    mount_chunk(&server, "s1", "bytes 524288-599999/600000", done(), 1).await;
    Mock::given(method("POST"))
        .and(path("/upload/youtube/v3/thumbnails/set"))
        .and(query_param("videoId", "dQw4w9WgXcQ"))
        .and(header("authorization", format!("Bearer {ACCESS}").as_str()))
        .and(header("content-type", "image/png"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(r#"{"kind":"youtube#thumbnailSetResponse","items":[]}"#, "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let p = platform(&server.uri());
    let a = account();
    let c = content(TOTAL);
    let (out, cp, saver) = with_ctx(&a, &c, &opts(&o), Checkpoint::default(), async |ctx| p.publish(ctx).await).await;
    let out = out.unwrap();
    assert!(matches!(&out, PublishOutcome::Processing { poll_after, .. } if poll_after.as_secs() == 20), "{out:?}");

    // The bytes arrived whole, in order, in chunks of 256 KiB with the matching headers.
    let sent = chunks_sent(&server, "s1").await;
    let expected = video_bytes(TOTAL);
    assert_eq!(sent.iter().map(|(_, b)| b.len()).collect::<Vec<_>>(), vec![CHUNK, CHUNK, TOTAL - 2 * CHUNK]);
    assert_eq!(sent.iter().flat_map(|(_, b)| b.clone()).collect::<Vec<_>>(), expected);
    for r in requests(&server, "PUT", UPLOAD_PATH).await {
        assert_eq!(header_of(&r, "content-type").as_deref(), Some("video/mp4"));
        assert_eq!(header_of(&r, "content-length"), Some(r.body.len().to_string()));
    }
    let thumb = &requests(&server, "POST", "/upload/youtube/v3/thumbnails/set").await[0];
    assert_eq!(
        thumb.body,
        match &png().source {
            konektly_core::MediaSource::Bytes(b) => b.to_vec(),
            _ => unreachable!(),
        }
    );

    // The session (marked secret: stores seal it) and each confirmed offset were checkpointed.
    let offsets: Vec<u64> = saver.saved().iter().map(|c| c.as_json()["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets[..3], [0, 262_144, 524_288]);
    assert_eq!(saver.saved()[0].as_json()["session_uri"], json!({"$secret": session_uri(&server, "s1")}));
    assert_eq!(cp.as_json()["video_id"], json!("dQw4w9WgXcQ"));
    assert_eq!(cp.as_json()["thumbnail_done"], json!(true));

    // Polling: processing, then processed.
    Mock::given(method("GET"))
        .and(path("/youtube/v3/videos"))
        .and(query_param("part", "status,processingDetails"))
        .and(query_param("id", "dQw4w9WgXcQ"))
        .and(header("authorization", format!("Bearer {ACCESS}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("videos_uploaded.json"), "application/json"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/videos"))
        .and(query_param("id", "dQw4w9WgXcQ"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("videos_processed.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let (first, cp, _) = with_ctx(&a, &c, &opts(&o), cp, async |ctx| p.poll(ctx).await).await;
    assert!(
        matches!(first.unwrap(), PublishOutcome::Processing { detail: Some(d), .. } if d.contains("370/1000")),
        "progress is reported"
    );
    let (second, _, _) = with_ctx(&a, &c, &opts(&o), cp, async |ctx| p.poll(ctx).await).await;
    let PublishOutcome::Published(remote) = second.unwrap() else { panic!("published after processing") };
    assert_eq!(remote.id, "dQw4w9WgXcQ");
    assert_eq!(remote.url.unwrap().as_str(), "https://www.youtube.com/watch?v=dQw4w9WgXcQ");
    assert_eq!(remote.scheduled_for, o.publish_at, "a natively scheduled video says when it goes public");
}

#[tokio::test]
async fn notify_subscribers_is_only_sent_when_chosen() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(UPLOAD_PATH))
        .and(query_param_is_missing("notifySubscribers"))
        .and(body_json(json!({
            "snippet": {"title": "Release notes", "description": "", "categoryId": "22"},
            "status": {"privacyStatus": "public"}
        })))
        .respond_with(ResponseTemplate::new(200).insert_header("Location", session_uri(&server, "s1").as_str()))
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, "s1", "bytes 0-999/1000", done(), 1).await;
    let a = account();
    let c = Content::default().with_media(video(1000));
    let (out, _, _) = with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| {
        platform(&server.uri()).publish(ctx).await
    })
    .await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
}

#[tokio::test]
async fn a_5xx_mid_upload_asks_the_session_and_continues_from_its_range() {
    let server = MockServer::start().await;
    mount_session(&server, "s1", 1).await;
    mount_chunk(&server, "s1", "bytes 0-262143/600000", incomplete(262_143), 1).await;
    mount_chunk(&server, "s1", "bytes 262144-524287/600000", ResponseTemplate::new(503), 1).await;
    // The status query: no body, `bytes */TOTAL`; the server kept part of the failed chunk.
    Mock::given(method("PUT"))
        .and(path(UPLOAD_PATH))
        .and(header("content-range", "bytes */600000"))
        .and(header("content-length", "0"))
        .respond_with(incomplete(400_000))
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, "s1", "bytes 400001-599999/600000", done(), 1).await;

    let a = account();
    let c = content(TOTAL);
    let (out, cp, _) = with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| {
        platform(&server.uri()).publish(ctx).await
    })
    .await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
    assert_eq!(cp.as_json()["video_id"], json!("dQw4w9WgXcQ"));
    let sent = chunks_sent(&server, "s1").await;
    let data = video_bytes(TOTAL);
    assert_eq!(sent[2].1, data[400_001..], "the rest is sent from the server's offset, not ours");
}

#[tokio::test]
async fn an_upload_interrupted_mid_chunk_resumes_from_its_checkpoint_in_a_fresh_instance() {
    let server = MockServer::start().await;
    mount_session(&server, "s1", 1).await; // once, across both instances
    mount_chunk(&server, "s1", "bytes 0-262143/600000", incomplete(262_143), 1).await;
    // The connection drops while the second chunk is in flight.
    Mock::given(method("PUT"))
        .and(path(UPLOAD_PATH))
        .and(header("content-range", "bytes 262144-524287/600000"))
        .respond_with_err(|_: &wiremock::Request| std::io::Error::new(ErrorKind::ConnectionReset, "reset"))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;

    // The file on disk, read from an offset by the second instance.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("video.mp4");
    std::fs::write(&file, video_bytes(TOTAL)).unwrap();
    let mut media = Media::from_file(&file).await.unwrap();
    media.mime = "video/mp4".parse().unwrap();
    let c = Content::text("What we shipped this week.").with_media(media);
    let a = account();

    // First process: gives up after the drop (no retries), leaving its checkpoint.
    let first = builder(&server.uri()).with_upload_retries(0, std::time::Duration::ZERO).build().unwrap();
    let (out, cp, _) =
        with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| first.publish(ctx).await).await;
    let err = out.unwrap_err();
    assert!(matches!(err, Error::Transient { .. }), "a dropped chunk is retryable: {err:?}");
    assert!(!err.to_string().contains("upload_id"), "the session URI is a capability: never in errors: {err}");
    assert_eq!(cp.as_json()["session_uri"], json!({"$secret": session_uri(&server, "s1")}));
    assert_eq!(cp.as_json()["offset"], json!(262_144));
    drop(first);

    // Second process, from the saved checkpoint only: asks the session, which holds part of the
    // dropped chunk, and sends the rest from there.
    Mock::given(method("PUT"))
        .and(path(UPLOAD_PATH))
        .and(query_param("upload_id", "s1"))
        .and(header("content-range", "bytes */600000"))
        .and(header("content-length", "0"))
        .respond_with(incomplete(300_000))
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, "s1", "bytes 300001-562144/600000", incomplete(562_144), 1).await;
    mount_chunk(&server, "s1", "bytes 562145-599999/600000", done(), 1).await;
    let second = platform(&server.uri());
    let stored = Checkpoint::from_json(cp.as_json().clone());
    let (out, cp, _) = with_ctx(&a, &c, &opts(&options()), stored, async |ctx| second.publish(ctx).await).await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
    assert_eq!(cp.as_json()["video_id"], json!("dQw4w9WgXcQ"));
    let sent = chunks_sent(&server, "s1").await;
    let data = video_bytes(TOTAL);
    let resumed: Vec<u8> = sent[sent.len() - 2..].iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(resumed, data[300_001..], "the fresh instance sends exactly the bytes the server lacks");
}

#[tokio::test]
async fn a_vanished_session_starts_a_new_upload() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(UPLOAD_PATH))
        .and(query_param("upload_id", "old"))
        .and(header("content-range", "bytes */600000"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    mount_session(&server, "new", 1).await;
    mount_chunk(&server, "new", "bytes 0-262143/600000", incomplete(262_143), 1).await;
    mount_chunk(&server, "new", "bytes 262144-524287/600000", incomplete(524_287), 1).await;
    mount_chunk(&server, "new", "bytes 524288-599999/600000", done(), 1).await;
    let stored =
        Checkpoint::from_json(json!({"session_uri": session_uri(&server, "old"), "total": TOTAL, "offset": 262_144}));
    let a = account();
    let c = content(TOTAL);
    let (out, cp, _) =
        with_ctx(&a, &c, &opts(&options()), stored, async |ctx| platform(&server.uri()).publish(ctx).await).await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
    assert_eq!(cp.as_json()["video_id"], json!("dQw4w9WgXcQ"));
    assert_eq!(chunks_sent(&server, "new").await.iter().map(|(_, b)| b.len()).sum::<usize>(), TOTAL);
}

#[tokio::test]
async fn a_session_that_finished_before_the_crash_is_not_uploaded_again() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(UPLOAD_PATH))
        .and(header("content-range", "bytes */600000"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("video_inserted.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    mount_session(&server, "s2", 0).await;
    let stored =
        Checkpoint::from_json(json!({"session_uri": session_uri(&server, "s1"), "total": TOTAL, "offset": 524_288}));
    let a = account();
    let c = content(TOTAL);
    let (out, cp, _) =
        with_ctx(&a, &c, &opts(&options()), stored, async |ctx| platform(&server.uri()).publish(ctx).await).await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
    assert_eq!(cp.as_json()["video_id"], json!("dQw4w9WgXcQ"));
    assert!(chunks_sent(&server, "s1").await.is_empty());
}

#[tokio::test]
async fn quota_exceeded_waits_for_pacific_midnight_and_tells_the_engine() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(UPLOAD_PATH))
        .respond_with(ResponseTemplate::new(403).set_body_raw(fixture("error_quota.json"), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let a = account();
    let c = content(1000);
    let (out, cp, saver) = with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| {
        platform(&server.uri()).publish(ctx).await
    })
    .await;
    let err = out.unwrap_err();
    let Error::RateLimited { retry_at: Some(at), .. } = &err else { panic!("expected RateLimited, got {err:?}") };
    assert_eq!(*at, konektly_youtube::next_pacific_midnight(*at - chrono::Duration::seconds(1)));
    assert!(*at > Utc::now() && *at <= Utc::now() + chrono::Duration::hours(24));
    assert!(!err.to_string().contains("href"), "no HTML in what users see: {err}");
    let reports = saver.rate_limit_reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].scope, BudgetScope::App, "the quota belongs to the whole app");
    assert_eq!(reports[0].reset_at, *at);
    assert!(cp.is_empty(), "nothing to resume");
}

#[tokio::test]
async fn the_channel_upload_cap_waits_a_day_for_that_account() {
    let server = MockServer::start().await;
    mount_session(&server, "s1", 1).await;
    mount_chunk(
        &server,
        "s1",
        "bytes 0-999/1000",
        ResponseTemplate::new(400).set_body_raw(fixture("error_upload_limit.json"), "application/json"),
        1,
    )
    .await;
    let a = account();
    let c = content(1000);
    let (out, _, saver) = with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| {
        platform(&server.uri()).publish(ctx).await
    })
    .await;
    let err = out.unwrap_err();
    let Error::RateLimited { retry_at: Some(at), .. } = &err else { panic!("expected RateLimited, got {err:?}") };
    let wait = *at - Utc::now();
    assert!(wait > chrono::Duration::hours(23) && wait <= chrono::Duration::hours(24), "{wait}");
    assert_eq!(saver.rate_limit_reports()[0].scope, BudgetScope::Account);
}

#[tokio::test]
async fn a_refused_token_mid_upload_keeps_the_checkpoint_for_the_retry() {
    let server = MockServer::start().await;
    mount_session(&server, "s1", 1).await;
    mount_chunk(&server, "s1", "bytes 0-262143/600000", incomplete(262_143), 1).await;
    mount_chunk(
        &server,
        "s1",
        "bytes 262144-524287/600000",
        ResponseTemplate::new(401).set_body_raw(fixture("error_auth.json"), "application/json"),
        1,
    )
    .await;
    let a = account();
    let c = content(TOTAL);
    let (out, cp, _) = with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| {
        platform(&server.uri()).publish(ctx).await
    })
    .await;
    assert!(matches!(out.unwrap_err(), Error::AccessTokenRejected { .. }));
    assert_eq!(cp.as_json()["offset"], json!(262_144));
    assert_eq!(cp.as_json()["session_uri"], json!({"$secret": session_uri(&server, "s1")}));
}

#[tokio::test]
async fn a_refused_thumbnail_does_not_fail_the_uploaded_video() {
    let server = MockServer::start().await;
    mount_session(&server, "s1", 1).await;
    mount_chunk(&server, "s1", "bytes 0-999/1000", done(), 1).await;
    Mock::given(method("POST"))
        .and(path("/upload/youtube/v3/thumbnails/set"))
        .respond_with(
            ResponseTemplate::new(403).set_body_raw(fixture("error_thumbnail_forbidden.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let a = account();
    let c = content(1000);
    let o = YouTubeOptions { thumbnail: Some(png()), ..options() };
    let p = platform(&server.uri());
    let (out, cp, _) = with_ctx(&a, &c, &opts(&o), Checkpoint::default(), async |ctx| p.publish(ctx).await).await;
    let Ok(PublishOutcome::Processing { detail: Some(d), .. }) = out else { panic!("still processing: {out:?}") };
    assert!(d.contains("thumbnail was refused"), "{d}");
    // Publishing again (a retry) neither uploads nor sets the thumbnail again.
    let (again, _, _) = with_ctx(&a, &c, &opts(&o), cp, async |ctx| p.publish(ctx).await).await;
    assert!(matches!(again.unwrap(), PublishOutcome::Processing { .. }));
}

#[tokio::test]
async fn processing_failures_and_rejections_are_rejected_with_youtubes_reason() {
    for (fixture_name, code) in [("videos_failed.json", "codec"), ("videos_rejected.json", "duplicate")] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/youtube/v3/videos"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(fixture(fixture_name), "application/json"))
            .expect(1)
            .mount(&server)
            .await;
        let a = account();
        let c = content(1000);
        let cp = Checkpoint::from_json(json!({"video_id": "dQw4w9WgXcQ", "thumbnail_done": true}));
        let (out, _, _) =
            with_ctx(&a, &c, &opts(&options()), cp, async |ctx| platform(&server.uri()).poll(ctx).await).await;
        let err = out.unwrap_err();
        assert!(matches!(&err, Error::Rejected { code: Some(c), .. } if c == code), "{fixture_name}: {err:?}");
    }
}

#[tokio::test]
async fn reconcile_reads_the_session() {
    let server = MockServer::start().await;
    let a = account();
    let c = content(TOTAL);
    let p = platform(&server.uri());

    // Nothing saved: nothing landed, and nothing is asked.
    let (r, _, _) =
        with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| p.reconcile(ctx).await).await;
    assert_eq!(r.unwrap(), Reconciliation::NotFound);
    assert!(server.received_requests().await.unwrap().is_empty());

    // A session that finished: the video is there, processing.
    Mock::given(method("PUT"))
        .and(query_param("upload_id", "done"))
        .and(header("content-range", "bytes */600000"))
        .respond_with(done())
        .expect(1)
        .mount(&server)
        .await;
    let cp = Checkpoint::from_json(json!({"session_uri": session_uri(&server, "done"), "total": TOTAL, "offset": 0}));
    let (r, cp, _) = with_ctx(&a, &c, &opts(&options()), cp, async |ctx| p.reconcile(ctx).await).await;
    assert_eq!(r.unwrap(), Reconciliation::Processing { poll_after: std::time::Duration::from_secs(20) });
    assert_eq!(cp.as_json()["video_id"], json!("dQw4w9WgXcQ"));

    // A session still incomplete: resume (publishing again continues it).
    Mock::given(method("PUT"))
        .and(query_param("upload_id", "half"))
        .and(header("content-range", "bytes */600000"))
        .respond_with(incomplete(262_143))
        .expect(1)
        .mount(&server)
        .await;
    let cp = Checkpoint::from_json(json!({"session_uri": session_uri(&server, "half"), "total": TOTAL, "offset": 0}));
    let (r, cp, _) = with_ctx(&a, &c, &opts(&options()), cp, async |ctx| p.reconcile(ctx).await).await;
    assert_eq!(r.unwrap(), Reconciliation::NotFound);
    assert_eq!(cp.as_json()["offset"], json!(262_144));
    assert_eq!(
        cp.as_json()["session_uri"],
        json!({"$secret": session_uri(&server, "half")}),
        "the session is kept for the resume"
    );

    // An uploaded video whose thumbnail is still to set: publishing continues with the thumbnail.
    let o = YouTubeOptions { thumbnail: Some(png()), ..options() };
    let cp = Checkpoint::from_json(json!({"video_id": "dQw4w9WgXcQ", "thumbnail_done": false}));
    let (r, _, _) = with_ctx(&a, &c, &opts(&o), cp, async |ctx| p.reconcile(ctx).await).await;
    assert_eq!(r.unwrap(), Reconciliation::NotFound);
}

#[tokio::test]
async fn delete_removes_the_video_and_needs_a_manage_scope() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/youtube/v3/videos"))
        .and(query_param("id", "dQw4w9WgXcQ"))
        .and(header("authorization", format!("Bearer {ACCESS}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let p = platform(&server.uri());
    let post = RemotePost::new("youtube".into(), "dQw4w9WgXcQ", None);
    let mut a = account();
    // The default scopes (upload, readonly) cannot delete: say so without calling.
    assert!(matches!(p.delete(&a, &post).await, Err(Error::NotSupported(m)) if m.contains("youtube")));
    a.tokens.scopes.push(konektly_youtube::SCOPE_YOUTUBE.into());
    p.delete(&a, &post).await.unwrap();
}

#[tokio::test]
async fn a_file_that_changed_size_since_its_session_starts_over() {
    let server = MockServer::start().await;
    mount_session(&server, "new", 1).await;
    mount_chunk(&server, "new", "bytes 0-999/1000", done(), 1).await;
    // The old session is never asked: its total no longer matches the file.
    let stored =
        Checkpoint::from_json(json!({"session_uri": session_uri(&server, "old"), "total": TOTAL, "offset": 262_144}));
    let a = account();
    let c = content(1000);
    let (out, _, _) =
        with_ctx(&a, &c, &opts(&options()), stored, async |ctx| platform(&server.uri()).publish(ctx).await).await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
    assert!(requests(&server, "PUT", UPLOAD_PATH).await.iter().all(|r| !r.url.as_str().contains("upload_id=old")));
}

#[tokio::test]
async fn a_video_fetched_by_url_resumes_with_a_ranged_read() {
    let server = MockServer::start().await;
    let data = video_bytes(TOTAL);
    Mock::given(method("GET"))
        .and(path("/media/v.mp4"))
        .and(header("range", "bytes=400001-"))
        .respond_with(ResponseTemplate::new(206).set_body_bytes(data[400_001..].to_vec()))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/media/v.mp4"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(data.clone()))
        .expect(1)
        .mount(&server)
        .await;
    mount_session(&server, "s1", 1).await;
    mount_chunk(&server, "s1", "bytes 0-262143/600000", incomplete(262_143), 1).await;
    mount_chunk(&server, "s1", "bytes 262144-524287/600000", ResponseTemplate::new(502), 1).await;
    Mock::given(method("PUT"))
        .and(path(UPLOAD_PATH))
        .and(header("content-range", "bytes */600000"))
        .respond_with(incomplete(400_000))
        .expect(1)
        .mount(&server)
        .await;
    mount_chunk(&server, "s1", "bytes 400001-599999/600000", done(), 1).await;

    let media = Media::from_url(format!("{}/media/v.mp4", server.uri()).parse().unwrap(), "video/mp4".parse().unwrap())
        .with_size(TOTAL as u64);
    let c = Content::text("By URL.").with_media(media);
    let a = account();
    let (out, _, _) = with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| {
        platform(&server.uri()).publish(ctx).await
    })
    .await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
    let sent = chunks_sent(&server, "s1").await;
    assert_eq!(sent.last().unwrap().1, data[400_001..]);
}

#[tokio::test]
async fn a_session_that_keeps_nothing_is_not_fed_forever() {
    let server = MockServer::start().await;
    mount_session(&server, "s1", 1).await;
    // 308 without Range: nothing stored, every time. The builder allows 3 retries: 4 tries.
    mount_chunk(&server, "s1", "bytes 0-262143/600000", ResponseTemplate::new(308), 4).await;
    let a = account();
    let c = content(TOTAL);
    let (out, cp, _) = with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| {
        platform(&server.uri()).publish(ctx).await
    })
    .await;
    assert!(matches!(out.unwrap_err(), Error::Transient { .. }));
    assert_eq!(cp.as_json()["session_uri"], json!({"$secret": session_uri(&server, "s1")}), "kept for a later resume");
}

#[tokio::test]
async fn a_file_is_streamed_chunk_by_chunk_with_exact_ranges_and_lengths() {
    let server = MockServer::start().await;
    mount_session(&server, "s1", 1).await;
    mount_chunk(&server, "s1", "bytes 0-262143/600000", incomplete(262_143), 1).await;
    mount_chunk(&server, "s1", "bytes 262144-524287/600000", incomplete(524_287), 1).await;
    mount_chunk(&server, "s1", "bytes 524288-599999/600000", done(), 1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("video.mp4");
    std::fs::write(&file, video_bytes(TOTAL)).unwrap();
    let mut media = Media::from_file(&file).await.unwrap();
    media.mime = "video/mp4".parse().unwrap();
    let c = Content::text("From a file.").with_media(media);
    let a = account();
    let (out, _, _) = with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| {
        platform(&server.uri()).publish(ctx).await
    })
    .await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
    let puts = requests(&server, "PUT", UPLOAD_PATH).await;
    let lengths: Vec<_> = puts.iter().map(|r| header_of(r, "content-length")).collect();
    assert_eq!(lengths, [Some("262144".into()), Some("262144".into()), Some("75712".into())]);
    assert!(puts.iter().all(|r| header_of(r, "transfer-encoding").is_none()), "a sized body, not chunked encoding");
    let sent: Vec<u8> = chunks_sent(&server, "s1").await.into_iter().flat_map(|(_, b)| b).collect();
    assert_eq!(sent, video_bytes(TOTAL));
}

#[tokio::test]
async fn a_slow_chunk_answer_is_waited_for_longer_than_an_api_call() {
    let server = MockServer::start().await;
    mount_session(&server, "s1", 1).await;
    // The chunk's answer comes after the API calls' timeout, well within the upload timeout.
    mount_chunk(&server, "s1", "bytes 0-999/1000", done().set_delay(std::time::Duration::from_millis(1200)), 1).await;
    let p = builder(&server.uri())
        .with_http_config(konektly_core::HttpConfig {
            max_retries: 0,
            timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        })
        .with_upload_timeout(std::time::Duration::from_secs(30))
        .with_upload_retries(0, std::time::Duration::ZERO)
        .build()
        .unwrap();
    let a = account();
    let c = content(1000);
    let (out, _, _) =
        with_ctx(&a, &c, &opts(&options()), Checkpoint::default(), async |ctx| p.publish(ctx).await).await;
    assert!(matches!(out.unwrap(), PublishOutcome::Processing { .. }));
}

#[test]
fn publish_at_is_checked_against_the_clock_given_through_the_platform_trait() {
    let p: std::sync::Arc<dyn konektly_core::Platform> = std::sync::Arc::new(platform("http://127.0.0.1:9"));
    let at = Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap();
    let o = konektly_core::TargetOptions::new(&YouTubeOptions {
        title: Some("Later".into()),
        privacy: Some(Privacy::Private),
        publish_at: Some(at),
        ..Default::default()
    })
    .unwrap();
    let video =
        konektly_core::Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap())
            .with_size(1000);
    let content = konektly_core::Content::text("d").with_media(video);
    let codes = |now| p.validate_at(&content, &o, now).into_iter().map(|v| v.code).collect::<Vec<_>>();
    assert!(codes(at - chrono::Duration::hours(1)).is_empty());
    assert_eq!(codes(at + chrono::Duration::hours(1)), vec!["publish_at_in_past"]);
}
