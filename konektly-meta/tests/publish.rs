//! Publishing to a Page and to Instagram against a mock Graph API: every step's exact request,
//! success and error, polling, uploads, and reconciling a lost create.

mod common;

mod facebook {
    use crate::common::facebook::*;
    use crate::common::*;
    use chrono::Utc;
    use konektly_core::{Checkpoint, Content, Error, Media, Platform, PlatformId, RemotePost, TargetOptions};
    use konektly_meta::{FacebookOptions, FacebookPostKind};
    use serde_json::json;
    use wiremock::matchers::{body_bytes, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_dead_page_token_is_reauth_required_with_the_reason_and_trace() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/feed"))
            .respond_with(ResponseTemplate::new(400).set_body_json(fixture("graph_error_190_460.json")))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let err = publish(fb.as_ref(), &page_account(), &Content::text("hi"), &TargetOptions::none()).await.err();
        match &err {
            Error::ReauthRequired { reason, .. } => {
                assert!(reason.contains("password changed"), "{reason}");
                assert!(reason.contains("A1b2C3d4E5f"), "fbtrace_id kept: {reason}");
            }
            other => panic!("{other:?}"),
        }
        let g = konektly_meta::graph_error(&err).unwrap();
        assert_eq!((g.body.code, g.body.error_subcode), (Some(190), Some(460)));
        assert!(!format!("{err:?}{err}").contains(PAGE_TOKEN), "no token in errors");
    }

    #[tokio::test]
    async fn a_text_post_goes_to_the_feed_and_usage_headers_are_reported() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
        .and(path("/v25.0/101/feed"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(form(&[("message", "Hello, Page"), ("link", "https://example.com/article")]))
        .respond_with(
            ok(json!({"id": "101_2002"}))
                .insert_header("x-app-usage", r#"{"call_count":12,"total_cputime":3,"total_time":5}"#)
                .insert_header(
                    "x-business-use-case-usage",
                    r#"{"101":[{"type":"pages","call_count":96,"total_cputime":10,"total_time":12,"estimated_time_to_regain_access":0}]}"#,
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
        let fb = meta(&server).facebook;
        let content = Content::text("Hello, Page").with_link("https://example.com/article".parse().unwrap());
        let step = publish(fb.as_ref(), &page_account(), &content, &TargetOptions::none()).await;
        let remote = step.published();
        assert_eq!(remote.id, "101_2002");
        assert_eq!(remote.url.unwrap().as_str(), "https://www.facebook.com/101_2002");
        let reports = step.saves.rate_limit_reports();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].remaining, 88);
        assert_eq!(reports[1].remaining, 4);
        assert_eq!(step.state()["post_id"], "101_2002");
    }

    #[tokio::test]
    async fn native_scheduling_sends_published_false_and_the_time() {
        let server = MockServer::start().await;
        let at = chrono::DateTime::from_timestamp(Utc::now().timestamp() + 86_400, 0).unwrap();
        let ts = at.timestamp().to_string();
        Mock::given(method("POST"))
            .and(path("/v25.0/101/feed"))
            .and(form(&[("message", "Tomorrow"), ("published", "false"), ("scheduled_publish_time", ts.as_str())]))
            .respond_with(ok(json!({"id": "101_3003"})))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let opts = TargetOptions::new(&FacebookOptions { schedule_at: Some(at), ..Default::default() }).unwrap();
        assert!(fb.validate(&Content::text("Tomorrow"), &opts).is_empty());
        let step = publish(fb.as_ref(), &page_account(), &Content::text("Tomorrow"), &opts).await;
        assert_eq!(step.published().scheduled_for, Some(at));
    }

    #[tokio::test]
    async fn a_single_photo_is_uploaded_as_bytes_with_its_message() {
        let server = MockServer::start().await;
        let jpeg = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00fake-jpeg-bytes".to_vec();
        Mock::given(method("POST"))
            .and(path("/v25.0/101/photos"))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(multipart_field("message", b"A photo"))
            .and(multipart_field("source", &jpeg))
            .respond_with(ok(json!({"id": "4004", "post_id": "101_4005"})))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let content = Content::text("A photo").with_media(Media::from_bytes(jpeg.clone()));
        let step = publish(fb.as_ref(), &page_account(), &content, &TargetOptions::none()).await;
        assert_eq!(step.published().id, "101_4005");
    }

    #[tokio::test]
    async fn several_photos_are_uploaded_unpublished_then_attached_to_one_post() {
        let server = MockServer::start().await;
        for (i, id) in ["5001", "5002"].iter().enumerate() {
            Mock::given(method("POST"))
                .and(path("/v25.0/101/photos"))
                .and(form(&[("published", "false"), ("url", &format!("https://cdn.example/{i}.jpg"))]))
                .respond_with(ok(json!({ "id": id })))
                .expect(1)
                .mount(&server)
                .await;
        }
        Mock::given(method("POST"))
            .and(path("/v25.0/101/feed"))
            .and(form(&[
                ("message", "Two photos"),
                ("attached_media[0]", r#"{"media_fbid":"5001"}"#),
                ("attached_media[1]", r#"{"media_fbid":"5002"}"#),
            ]))
            .respond_with(ok(json!({"id": "101_5003"})))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let content = (0..2).fold(Content::text("Two photos"), |c, i| {
            c.with_media(Media::from_url(format!("https://cdn.example/{i}.jpg").parse().unwrap(), mime_jpeg()))
        });
        let step = publish(fb.as_ref(), &page_account(), &content, &TargetOptions::none()).await;
        assert_eq!(step.published().id, "101_5003");
        let saved: Vec<serde_json::Value> =
            step.saves.saved().iter().map(|c| c.as_json()["photo_ids"].clone()).collect();
        assert_eq!(saved[0], json!(["5001"]), "each photo id is checkpointed as it is uploaded");
        assert_eq!(saved[1], json!(["5001", "5002"]));
    }

    #[tokio::test]
    async fn a_video_is_uploaded_in_the_chunks_the_server_names_then_polled() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(form(&[("upload_phase", "start"), ("file_size", "10")]))
            .respond_with(ok(fixture("fb_video_start.json")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(multipart_field("upload_phase", b"transfer"))
            .and(multipart_field("upload_session_id", b"7770001"))
            .and(multipart_field("start_offset", b"0"))
            .and(multipart_field("video_file_chunk", b"abcd"))
            .respond_with(ok(json!({"start_offset": "4", "end_offset": "10"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(multipart_field("start_offset", b"4"))
            .and(multipart_field("video_file_chunk", b"efghij"))
            .respond_with(ok(json!({"start_offset": "10", "end_offset": "10"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(form(&[
                ("upload_phase", "finish"),
                ("upload_session_id", "7770001"),
                ("description", "Launch video"),
                ("title", "Launch"),
            ]))
            .respond_with(ok(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/5550001"))
            .and(query_param("fields", "status"))
            .respond_with(ok(fixture("fb_video_status_processing.json")))
            .up_to_n_times(1)
            .expect(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/5550001"))
            .respond_with(ok(fixture("fb_video_status_ready.json")))
            .expect(1)
            .mount(&server)
            .await;

        let fb = meta(&server).facebook;
        let content = Content::text("Launch video").with_media(mp4_bytes(10));
        let opts = TargetOptions::new(&FacebookOptions { title: Some("Launch".into()), ..Default::default() }).unwrap();
        let first =
            step(fb.as_ref(), Op::Publish, &page_account(), &content, &opts, Checkpoint::default(), None, Utc::now())
                .await;
        assert!(first.is_processing());
        let offsets: Vec<u64> =
            first.saves.saved().iter().filter_map(|c| c.as_json()["video"]["start_offset"].as_u64()).collect();
        assert_eq!(offsets, vec![0, 4, 10, 10, 10], "offsets are checkpointed after each chunk");
        let done =
            step(fb.as_ref(), Op::Poll, &page_account(), &content, &opts, first.checkpoint.clone(), None, Utc::now())
                .await;
        let remote = done.published();
        assert_eq!(remote.id, "5550001");
        assert_eq!(remote.url.unwrap().as_str(), "https://www.facebook.com/101/videos/5550001");
    }

    #[tokio::test]
    async fn a_video_upload_resumes_from_its_checkpointed_offset() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(multipart_field("start_offset", b"4"))
            .and(multipart_field("video_file_chunk", b"efghij"))
            .respond_with(ok(json!({"start_offset": "10", "end_offset": "10"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(form(&[("upload_phase", "finish"), ("upload_session_id", "7770001"), ("description", "v")]))
            .respond_with(ok(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/5550001"))
            .respond_with(ok(fixture("fb_video_status_ready.json")))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let checkpoint = Checkpoint::from_json(json!({
            "video": {"video_id": "5550001", "session_id": "7770001", "start_offset": 4, "end_offset": 10}
        }));
        let content = Content::text("v").with_media(mp4_bytes(10));
        let s = step(
            fb.as_ref(),
            Op::Publish,
            &page_account(),
            &content,
            &TargetOptions::none(),
            checkpoint,
            None,
            Utc::now(),
        )
        .await;
        assert_eq!(s.published().id, "5550001");
        let paths = calls(&server).await;
        assert!(!paths.is_empty() && paths.iter().filter(|p| p.as_str() == "POST /v25.0/101/videos").count() == 2);
    }

    #[tokio::test]
    async fn a_reel_starts_uploads_to_rupload_and_finishes() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/video_reels"))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(form(&[("upload_phase", "start")]))
            .respond_with(ok(
                json!({"video_id": "8880001", "upload_url": "https://rupload.facebook.com/video-upload/v25.0/8880001"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/video-upload/v25.0/8880001"))
            .and(header("authorization", &*format!("OAuth {PAGE_TOKEN}")))
            .and(header("offset", "0"))
            .and(header("file_size", "12"))
            .and(body_bytes(b"abcdefghijkl".to_vec()))
            .respond_with(ok(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/video_reels"))
            .and(form(&[
                ("upload_phase", "finish"),
                ("video_id", "8880001"),
                ("video_state", "PUBLISHED"),
                ("description", "My reel"),
            ]))
            .respond_with(ok(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/8880001"))
            .and(query_param("fields", "status"))
            .respond_with(ok(fixture("fb_video_status_ready.json")))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let opts = TargetOptions::new(&FacebookOptions { kind: FacebookPostKind::Reel, ..Default::default() }).unwrap();
        let content = Content::text("My reel").with_media(mp4_bytes(12));
        let s = publish(fb.as_ref(), &page_account(), &content, &opts).await;
        let remote = s.published();
        assert_eq!(remote.id, "8880001");
        assert_eq!(remote.url.unwrap().as_str(), "https://www.facebook.com/reel/8880001");
    }

    #[tokio::test]
    async fn a_throttled_page_is_rate_limited_until_meta_says() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
        .and(path("/v25.0/101/feed"))
        .respond_with(ResponseTemplate::new(400).set_body_json(fixture("graph_error_80001.json")).insert_header(
            "x-business-use-case-usage",
            r#"{"101":[{"type":"pages","call_count":100,"total_cputime":4,"total_time":5,"estimated_time_to_regain_access":12}]}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
        let fb = meta(&server).facebook;
        let before = Utc::now();
        let s = publish(fb.as_ref(), &page_account(), &Content::text("hi"), &TargetOptions::none()).await;
        let reports = s.saves.rate_limit_reports();
        assert_eq!(reports.len(), 1, "the usage header of an error is reported too");
        assert_eq!(reports[0].remaining, 0);
        match s.err() {
            Error::RateLimited { retry_at: Some(at), message, .. } => {
                assert!(at - before >= chrono::Duration::minutes(12) && at - before < chrono::Duration::minutes(13));
                assert!(message.contains("AxYzThrottle"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn delete_removes_the_post() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path("/v25.0/101_2002"))
            .and(query_param("access_token", PAGE_TOKEN))
            .respond_with(ok(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let post = RemotePost::new(PlatformId::new("facebook"), "101_2002", None);
        fb.delete(&page_account(), &post).await.unwrap();
    }

    #[tokio::test]
    async fn reconcile_finds_a_post_whose_answer_was_lost() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v25.0/101/feed"))
            .and(query_param("fields", "id,message,created_time"))
            .respond_with(ok(json!({"data": [
                {"id": "101_1", "message": "something else", "created_time": graph_time(-5)},
                {"id": "101_7", "message": "Lost answer", "created_time": graph_time(-9)}
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let content = Content::text("Lost answer");
        let sent = lost_create(10);
        let s =
            step(fb.as_ref(), Op::Reconcile, &page_account(), &content, &TargetOptions::none(), sent, None, Utc::now())
                .await;
        assert_eq!(s.published().id, "101_7");
        // Nothing was sent: nothing to look for, publishing is safe.
        let s = step(
            fb.as_ref(),
            Op::Reconcile,
            &page_account(),
            &content,
            &TargetOptions::none(),
            Checkpoint::default(),
            None,
            Utc::now(),
        )
        .await;
        assert!(matches!(s.result, Ok(Outcome::Reconcile(konektly_core::Reconciliation::NotFound))));
    }

    #[tokio::test]
    async fn a_video_at_a_public_url_is_fetched_by_facebook() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(form(&[("file_url", "https://cdn.example/launch.mp4"), ("description", "From a URL")]))
            .respond_with(ok(json!({"id": "5550001"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/5550001"))
            .respond_with(ok(fixture("fb_video_status_processing.json")))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let media = Media::from_url("https://cdn.example/launch.mp4".parse().unwrap(), "video/mp4".parse().unwrap());
        let s = publish(
            fb.as_ref(),
            &page_account(),
            &Content::text("From a URL").with_media(media),
            &TargetOptions::none(),
        )
        .await;
        assert!(s.is_processing());
        assert_eq!(s.state()["video"]["video_id"], "5550001");
    }

    #[tokio::test]
    async fn a_chunk_at_the_wrong_offset_continues_from_the_offsets_meta_names() {
        let server = MockServer::start().await;
        // The first chunk already landed (its answer was lost): Meta names where to continue.
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(multipart_field("start_offset", b"0"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "There was a problem uploading your video file. Please try again with another file.",
            "type": "OAuthException", "code": 6000, "error_subcode": 1363037, "is_transient": false,
            "error_data": {"start_offset": "4", "end_offset": "10"}, "fbtrace_id": "AOffset1"}})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(multipart_field("start_offset", b"4"))
            .and(multipart_field("video_file_chunk", b"efghij"))
            .respond_with(ok(json!({"start_offset": "10", "end_offset": "10"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v25.0/101/videos"))
            .and(form(&[("upload_phase", "finish"), ("upload_session_id", "7770001"), ("description", "v")]))
            .respond_with(ok(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/5550001"))
            .respond_with(ok(fixture("fb_video_status_ready.json")))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let checkpoint = Checkpoint::from_json(json!({
            "video": {"video_id": "5550001", "session_id": "7770001", "start_offset": 0, "end_offset": 4}
        }));
        let content = Content::text("v").with_media(mp4_bytes(10));
        let s = step(
            fb.as_ref(),
            Op::Publish,
            &page_account(),
            &content,
            &TargetOptions::none(),
            checkpoint,
            None,
            Utc::now(),
        )
        .await;
        assert_eq!(s.published().id, "5550001");
        assert_eq!(s.saves.saved()[0].as_json()["video"]["start_offset"], 4, "the named offsets are checkpointed");
    }

    #[tokio::test]
    async fn reconcile_on_a_busy_page_reads_every_page_of_the_window_and_finds_exactly_ours() {
        let server = MockServer::start().await;
        // 200 posts by others came after ours; ours is on the third page.
        Mock::given(method("GET"))
            .and(path("/v25.0/101/feed"))
            .and(wiremock::matchers::query_param_is_missing("after"))
            .respond_with(ok(busy_page(100, -1, Some("p2"))))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/101/feed"))
            .and(query_param("after", "p2"))
            .respond_with(ok(busy_page(100, -101, Some("p3"))))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/101/feed"))
            .and(query_param("after", "p3"))
            .respond_with(ok(json!({"data": [
            {"id": "101_42", "message": "Busy day", "created_time": graph_time(-230)},
            // The same text, posted by someone a day ago: outside the window, never adopted.
            {"id": "101_1", "message": "Busy day", "created_time": graph_time(-86_400)}
        ], "paging": {"cursors": {"before": "b", "after": "z"}}})))
            .expect(1)
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let s = reconcile_lost(fb.as_ref(), "Busy day", 231).await;
        assert_eq!(s.published().id, "101_42");
        let asked: Vec<String> =
            server.received_requests().await.unwrap().iter().map(|r| r.url.query().unwrap_or("").to_owned()).collect();
        assert!(
            asked.iter().all(|q| q.contains("since=") && q.contains("until=") && q.contains("limit=100")),
            "{asked:?}"
        );
    }

    #[tokio::test]
    async fn reconcile_that_cannot_read_the_whole_window_says_unknown_never_absent() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v25.0/101/feed"))
            .respond_with(ok(busy_page(100, -1, Some("more"))))
            .mount(&server)
            .await;
        let fb = builder(&server).with_reconcile_pages(3).build().unwrap().facebook;
        let s = reconcile_lost(fb.as_ref(), "Lost in the crowd", 30).await;
        assert!(matches!(s.err(), Error::UnknownOutcome { .. }));
        assert_eq!(server.received_requests().await.unwrap().len(), 3, "bounded by the page budget");
    }

    #[tokio::test]
    async fn reconcile_adopts_no_post_when_two_with_our_text_were_created_around_the_create() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v25.0/101/feed"))
            .respond_with(ok(json!({"data": [
                {"id": "101_8", "message": "Same words", "created_time": graph_time(-3)},
                {"id": "101_7", "message": "Same words", "created_time": graph_time(-9)}
            ]})))
            .mount(&server)
            .await;
        let fb = meta(&server).facebook;
        let s = reconcile_lost(fb.as_ref(), "Same words", 10).await;
        let e = s.err();
        assert!(matches!(e, Error::UnknownOutcome { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn a_duplicate_refusal_after_our_own_lost_create_is_reconciled_not_failed() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path("/v25.0/101/feed")).respond_with(duplicate_status()).mount(&server).await;
        let fb = meta(&server).facebook;
        let content = Content::text("Said once");
        // This target's earlier create was sent and its answer lost: the refusal proves it landed.
        let s = step(
            fb.as_ref(),
            Op::Publish,
            &page_account(),
            &content,
            &TargetOptions::none(),
            lost_create(20),
            None,
            Utc::now(),
        )
        .await;
        assert!(matches!(s.err(), Error::UnknownOutcome { .. }));
        // No earlier create: a clear refusal, nothing adopted.
        let s = publish(fb.as_ref(), &page_account(), &content, &TargetOptions::none()).await;
        match s.err() {
            Error::Rejected { code, .. } => assert_eq!(code.as_deref(), Some("duplicate")),
            other => panic!("{other:?}"),
        }
    }
}

mod instagram {
    use crate::common::instagram::*;
    use crate::common::*;
    use chrono::Utc;
    use konektly_core::{Checkpoint, Content, Error, Media, Platform, Reconciliation, TargetOptions};
    use konektly_meta::{InstagramMediaKind, InstagramOptions, InstagramUserTag};
    use serde_json::json;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_single_image_is_a_container_polled_until_finished_then_published() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(form(&[
                ("image_url", "https://cdn.example/cat.jpg"),
                ("caption", "A cat #cats"),
                ("alt_text", "a sleeping cat"),
            ]))
            .respond_with(ok(json!({"id": "c-1"})))
            .expect(1)
            .mount(&server)
            .await;
        container(&server, "c-1", 2, "FINISHED").await;
        media_publish(&server, "c-1", "m-1").await;
        let ig = meta(&server).instagram;
        let content = Content::text("A cat #cats")
            .with_media(jpeg("https://cdn.example/cat.jpg").with_alt_text("a sleeping cat"));
        let s = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await;
        let remote = s.published();
        assert_eq!(remote.id, "m-1");
        assert_eq!(remote.url.unwrap().as_str(), "https://www.instagram.com/p/m-1/");
        assert_eq!(s.saves.saved()[0].as_json()["container"], "c-1", "the container id is checkpointed first");
        let quota_report =
            s.saves.rate_limit_reports().into_iter().find(|r| r.bucket == "instagram_content_publishing");
        assert_eq!(quota_report.map(|r| (r.limit, r.remaining)), Some((Some(50), 48)));
        let order = calls(&server).await;
        assert_eq!(order[0], format!("GET /v25.0/{IG_ID}/content_publishing_limit"), "the quota is read first");
        let publish_at = order.iter().position(|c| c.ends_with("/media_publish")).unwrap();
        assert_eq!(order[publish_at - 1], "GET /v25.0/c-1", "published only after FINISHED");
    }

    #[tokio::test]
    async fn a_carousel_waits_for_children_that_finish_at_different_times() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[("is_carousel_item", "true"), ("image_url", "https://cdn.example/1.jpg")]))
            .respond_with(ok(json!({"id": "child-1"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[
                ("is_carousel_item", "true"),
                ("media_type", "VIDEO"),
                ("video_url", "https://cdn.example/2.mp4"),
            ]))
            .respond_with(ok(json!({"id": "child-2"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[("media_type", "CAROUSEL"), ("children", "child-1,child-2"), ("caption", "Two things")]))
            .respond_with(ok(json!({"id": "parent-1"})))
            .expect(1)
            .mount(&server)
            .await;
        // The image is ready at once; the video needs three more looks; the parent one.
        container(&server, "child-1", 0, "FINISHED").await;
        container(&server, "child-2", 3, "FINISHED").await;
        container(&server, "parent-1", 1, "FINISHED").await;
        media_publish(&server, "parent-1", "m-2").await;
        let ig = meta(&server).instagram;
        let content = Content::text("Two things")
            .with_media(jpeg("https://cdn.example/1.jpg"))
            .with_media(mp4("https://cdn.example/2.mp4"));
        assert!(ig.validate(&content, &TargetOptions::none()).is_empty());
        let s = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await;
        assert_eq!(s.published().id, "m-2");
        let saved: Vec<serde_json::Value> = s.saves.saved().iter().map(|c| c.as_json().clone()).collect();
        assert_eq!(saved[0]["children"], json!(["child-1"]));
        assert_eq!(saved[1]["children"], json!(["child-1", "child-2"]));
        assert_eq!(saved[2]["container"], "parent-1");
        let order = calls(&server).await;
        let parent_created = order.iter().rposition(|c| c == &format!("POST /v25.0/{IG_ID}/media")).unwrap();
        let last_child_look = order.iter().rposition(|c| c == "GET /v25.0/child-2").unwrap();
        assert!(last_child_look < parent_created, "the parent is created only after every child finished");
    }

    #[tokio::test]
    async fn user_tags_go_on_each_image_and_the_partnership_on_the_post() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        let child = |url: &str, tags: Option<&str>, id: &str| {
            let mut f = vec![("is_carousel_item", "true"), ("image_url", url)];
            if let Some(t) = tags {
                f.push(("user_tags", t));
            }
            Mock::given(method("POST"))
                .and(path(format!("/v25.0/{IG_ID}/media")))
                .and(form(&f))
                .respond_with(ok(json!({ "id": id })))
                .expect(1)
        };
        child("https://cdn.example/1.jpg", Some(r#"[{"username":"friend.one","x":0.5,"y":0.25}]"#), "child-1")
            .mount(&server)
            .await;
        child("https://cdn.example/2.jpg", Some(r#"[{"username":"friend.two","x":0.0,"y":1.0}]"#), "child-2")
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[
                ("is_carousel_item", "true"),
                ("media_type", "VIDEO"),
                ("video_url", "https://cdn.example/3.mp4"),
            ]))
            .respond_with(ok(json!({"id": "child-3"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[
                ("media_type", "CAROUSEL"),
                ("children", "child-1,child-2,child-3"),
                ("caption", "Tagged"),
                ("branded_content_sponsor_ids", r#"["17841400000000001"]"#),
                ("is_paid_partnership", "true"),
            ]))
            .respond_with(ok(json!({"id": "parent-t"})))
            .expect(1)
            .mount(&server)
            .await;
        for c in ["child-1", "child-2", "child-3", "parent-t"] {
            container(&server, c, 0, "FINISHED").await;
        }
        media_publish(&server, "parent-t", "m-t").await;
        let ig = meta(&server).instagram;
        let opts = TargetOptions::new(&InstagramOptions {
            user_tags: vec![
                InstagramUserTag::at("@friend.one", 0.5, 0.25),
                InstagramUserTag::at("friend.two", 0.0, 1.0).on_item(1),
            ],
            branded_content_sponsor_ids: vec!["17841400000000001".into()],
            is_paid_partnership: Some(true),
            ..Default::default()
        })
        .unwrap();
        let content = Content::text("Tagged")
            .with_media(jpeg("https://cdn.example/1.jpg"))
            .with_media(jpeg("https://cdn.example/2.jpg"))
            .with_media(mp4("https://cdn.example/3.mp4"));
        assert!(ig.validate(&content, &opts).is_empty());
        assert_eq!(publish(ig.as_ref(), &ig_fb_account(), &content, &opts).await.published().id, "m-t");
    }

    #[tokio::test]
    async fn a_single_image_carries_its_tags_and_the_options_read_from_json() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[
                ("image_url", "https://cdn.example/cat.jpg"),
                ("caption", "A cat"),
                ("user_tags", r#"[{"username":"cat.owner","x":0.3,"y":0.7}]"#),
            ]))
            .respond_with(ok(json!({"id": "c-t"})))
            .expect(1)
            .mount(&server)
            .await;
        container(&server, "c-t", 0, "FINISHED").await;
        media_publish(&server, "c-t", "m-ct").await;
        let ig = meta(&server).instagram;
        // As an application sends them: plain JSON.
        let opts = TargetOptions::from_json(json!({"user_tags": [{"username": "cat.owner", "x": 0.3, "y": 0.7}]}));
        let content = Content::text("A cat").with_media(jpeg("https://cdn.example/cat.jpg"));
        assert!(ig.validate(&content, &opts).is_empty());
        assert_eq!(publish(ig.as_ref(), &ig_fb_account(), &content, &opts).await.published().id, "m-ct");
        let typo = TargetOptions::from_json(json!({"user_tags": [{"username": "a", "x": 0.3, "z": 0.7}]}));
        let v = ig.validate(&content, &typo);
        assert_eq!(v.iter().map(|v| v.code.as_str()).collect::<Vec<_>>(), vec!["invalid_options"], "{v:?}");
    }

    #[tokio::test]
    async fn a_container_that_ends_in_error_stops_with_the_reason() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[("media_type", "REELS"), ("video_url", "https://cdn.example/silent.mp4"), ("caption", "Reel")]))
            .respond_with(ok(json!({"id": "c-err"})))
            .expect(1)
            .mount(&server)
            .await;
        container(&server, "c-err", 1, "ERROR").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media_publish")))
            .respond_with(ok(json!({})))
            .expect(0)
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        let content = Content::text("Reel").with_media(mp4("https://cdn.example/silent.mp4"));
        match publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await.err() {
            Error::Rejected { code, message, .. } => {
                assert_eq!(code.as_deref(), Some("2207082"));
                assert!(message.contains("2207082") && message.contains("could not process"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_expired_container_is_replaced_by_a_new_one_and_refused_only_after_repeated_expiry() {
        let server = MockServer::start().await;
        container(&server, "c-old", 0, "EXPIRED").await;
        let ig = meta(&server).instagram;
        let content = Content::text("late").with_media(jpeg("https://cdn.example/a.jpg"));
        // Expired while the publish waited for the quota: it was never published (a published
        // container reads PUBLISHED), so the post starts over with a new container.
        let cp = Checkpoint::from_json(json!({"container": "c-old"}));
        let s =
            step(ig.as_ref(), Op::Poll, &ig_fb_account(), &content, &TargetOptions::none(), cp, None, Utc::now()).await;
        assert!(s.is_processing(), "a new container is on its way");
        let state = s.state();
        assert!(state.get("container").is_none(), "the expired container is dropped: {state}");
        assert_eq!(state["expired_restarts"], 1);
        let publishes = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().ends_with("media_publish"))
            .count();
        assert_eq!(publishes, 0, "nothing is published from an expired container");
        // After the second expiry in a row, a clear refusal.
        let cp = Checkpoint::from_json(json!({"container": "c-old", "expired_restarts": 2}));
        let s =
            step(ig.as_ref(), Op::Poll, &ig_fb_account(), &content, &TargetOptions::none(), cp, None, Utc::now()).await;
        match s.err() {
            Error::Rejected { code, message, .. } => {
                assert_eq!(code.as_deref(), Some("container_expired"));
                assert!(message.contains("24 hours"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slow_container_answers_processing_and_poll_resumes_from_the_checkpoint() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .respond_with(ok(json!({"id": "c-slow"})))
            .expect(1)
            .mount(&server)
            .await;
        let ig = builder(&server)
            .with_container_poll_interval(std::time::Duration::from_millis(5))
            .with_container_poll_deadline(std::time::Duration::ZERO)
            .build()
            .unwrap()
            .instagram;
        Mock::given(method("GET"))
            .and(path("/v25.0/c-slow"))
            .respond_with(ok(json!({"status_code": "IN_PROGRESS"})))
            .up_to_n_times(1)
            .expect(1)
            .with_priority(1)
            .mount(&server)
            .await;
        container(&server, "c-slow", 0, "FINISHED").await;
        media_publish(&server, "c-slow", "m-slow").await;
        let content = Content::text("slow").with_media(mp4("https://cdn.example/long.mp4"));
        let acct = ig_fb_account();
        let first = step(
            ig.as_ref(),
            Op::Publish,
            &acct,
            &content,
            &TargetOptions::none(),
            Checkpoint::default(),
            None,
            Utc::now(),
        )
        .await;
        assert!(first.is_processing(), "the deadline passed: the engine polls later");
        let done =
            step(ig.as_ref(), Op::Poll, &acct, &content, &TargetOptions::none(), first.checkpoint, None, Utc::now())
                .await;
        assert_eq!(done.published().id, "m-slow", "the same container is published; none is created again");
    }

    #[tokio::test]
    async fn a_spent_quota_is_rate_limited_before_anything_is_created() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit_spent.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .respond_with(ok(json!({"id": "x"})))
            .expect(0)
            .mount(&server)
            .await;
        let ig = builder(&server).with_quota_retry(std::time::Duration::from_secs(1800)).build().unwrap().instagram;
        let before = Utc::now();
        let content = Content::text("q").with_media(jpeg("https://cdn.example/a.jpg"));
        let s = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await;
        let report =
            s.saves.rate_limit_reports().into_iter().find(|r| r.bucket == "instagram_content_publishing").unwrap();
        assert_eq!(report.remaining, 0);
        match s.err() {
            Error::RateLimited { retry_at: Some(at), message, .. } => {
                assert!(at - before >= chrono::Duration::minutes(30) && at - before < chrono::Duration::minutes(31));
                assert!(message.contains("50 of 50"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_media_url_instagram_cannot_fetch_is_rejected_saying_it_must_be_public() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .respond_with(ResponseTemplate::new(400).set_body_json(fixture("ig_error_9004.json")))
            .expect(1)
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        let content = Content::text("p").with_media(jpeg("https://cdn.example/private.jpg"));
        let err = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await.err();
        match &err {
            Error::Rejected { message, .. } => assert!(message.contains("must be public"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(konektly_meta::graph_error(&err).unwrap().body.fbtrace_id.as_deref(), Some("AFetchFail1"));
    }

    #[tokio::test]
    async fn media_publish_answering_not_ready_keeps_polling() {
        let server = MockServer::start().await;
        container(&server, "c-9", 0, "FINISHED").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media_publish")))
            .respond_with(ResponseTemplate::new(400).set_body_json(fixture("ig_error_9007.json")))
            .expect(1)
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        let content = Content::text("n").with_media(jpeg("https://cdn.example/a.jpg"));
        let cp = Checkpoint::from_json(json!({"container": "c-9"}));
        let s =
            step(ig.as_ref(), Op::Poll, &ig_fb_account(), &content, &TargetOptions::none(), cp, None, Utc::now()).await;
        assert!(s.is_processing());
        assert_eq!(s.state()["create_sent"], false, "nothing was published: the mark is cleared");
    }

    #[tokio::test]
    async fn stories_from_local_bytes_go_through_the_media_host_on_instagram_login() {
        let server = MockServer::start().await;
        quota_n(&server, "/v25.0", "ig_publishing_limit.json", 2).await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(query_param("access_token", IG_TOKEN))
            .and(form(&[("media_type", "STORIES"), ("image_url", "https://media.app.example/abc123.jpg")]))
            .respond_with(ok(json!({"id": "story-c"})))
            .expect(1)
            .mount(&server)
            .await;
        container(&server, "story-c", 0, "FINISHED").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media_publish")))
            .and(query_param("access_token", IG_TOKEN))
            .and(form(&[("creation_id", "story-c")]))
            .respond_with(ok(json!({"id": "story-m"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/story-m"))
            .respond_with(ok(json!({"id": "story-m", "permalink": "https://www.instagram.com/stories/ada.codes/1/"})))
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        let host = RecordingHost::default();
        let mut media = Media::from_bytes(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00story".to_vec());
        media.width = Some(1080);
        media.height = Some(1920);
        let content = Content::text("").with_media(media);
        let opts =
            TargetOptions::new(&InstagramOptions { kind: Some(InstagramMediaKind::Story), ..Default::default() })
                .unwrap();
        assert!(ig.validate(&content, &opts).is_empty());
        // Without a host, local media cannot be published.
        let no_host = publish(ig.as_ref(), &ig_login_account(), &content, &opts).await;
        assert!(matches!(no_host.err(), Error::Config(_)));
        let s = step(
            ig.as_ref(),
            Op::Publish,
            &ig_login_account(),
            &content,
            &opts,
            Checkpoint::default(),
            Some(&host),
            Utc::now(),
        )
        .await;
        assert_eq!(s.published().id, "story-m");
        assert_eq!(*host.0.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn reels_are_reels_with_their_options() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[
                ("media_type", "REELS"),
                ("video_url", "https://cdn.example/r.mp4"),
                ("caption", "Reel time"),
                ("collaborators", r#"["friend.one"]"#),
                ("share_to_feed", "true"),
                ("thumb_offset", "1500"),
                ("audio_name", "Original sound"),
                ("trial_params", r#"{"graduation_strategy":"MANUAL"}"#),
            ]))
            .respond_with(ok(json!({"id": "reel-c"})))
            .expect(1)
            .mount(&server)
            .await;
        container(&server, "reel-c", 1, "FINISHED").await;
        media_publish(&server, "reel-c", "reel-m").await;
        let ig = meta(&server).instagram;
        let opts = TargetOptions::new(&InstagramOptions {
            share_to_feed: Some(true),
            thumb_offset_ms: Some(1500),
            collaborators: vec!["friend.one".into()],
            audio_name: Some("Original sound".into()),
            trial_params: Some(konektly_meta::InstagramTrialParams {
                graduation_strategy: konektly_meta::GraduationStrategy::Manual,
            }),
            ..Default::default()
        })
        .unwrap();
        let content = Content::text("Reel time").with_media(mp4("https://cdn.example/r.mp4"));
        assert_eq!(publish(ig.as_ref(), &ig_fb_account(), &content, &opts).await.published().id, "reel-m");
    }

    #[tokio::test]
    async fn reconcile_uses_the_checkpointed_container() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v25.0/c-done"))
            .respond_with(ok(json!({"status_code": "PUBLISHED", "id": "c-done"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
        .and(path(format!("/v25.0/{IG_ID}/media")))
        .and(query_param("fields", "id,caption,permalink,timestamp"))
        .respond_with(ok(json!({"data": [
            {"id": "m-other", "caption": "not it", "timestamp": "2099-01-01T00:00:00+0000"},
            {"id": "m-found", "caption": "Did it land?", "permalink": "https://www.instagram.com/p/found/", "timestamp": "2099-01-01T00:00:00+0000"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/c-ready"))
            .respond_with(ok(json!({"status_code": "FINISHED", "id": "c-ready"})))
            .expect(1)
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        let content = Content::text("Did it land?").with_media(jpeg("https://cdn.example/a.jpg"));
        let acct = ig_fb_account();
        let none = TargetOptions::none();
        let landed = Checkpoint::from_json(json!({"container": "c-done", "publish_sent": true}));
        let s = step(ig.as_ref(), Op::Reconcile, &acct, &content, &none, landed, None, Utc::now()).await;
        let remote = s.published();
        assert_eq!(remote.id, "m-found");
        assert_eq!(remote.url.unwrap().as_str(), "https://www.instagram.com/p/found/");
        let not_landed = Checkpoint::from_json(json!({"container": "c-ready", "publish_sent": true}));
        let s = step(ig.as_ref(), Op::Reconcile, &acct, &content, &none, not_landed, None, Utc::now()).await;
        assert!(matches!(s.result, Ok(Outcome::Reconcile(Reconciliation::NotFound))));
        assert_eq!(s.state()["container"], "c-ready", "the container is kept for the next attempt");
        let never = Checkpoint::default();
        let s = step(ig.as_ref(), Op::Reconcile, &acct, &content, &none, never, None, Utc::now()).await;
        assert!(matches!(s.result, Ok(Outcome::Reconcile(Reconciliation::NotFound))));
    }

    #[tokio::test]
    async fn a_local_reel_without_a_media_host_uses_the_resumable_upload() {
        let server = MockServer::start().await;
        quota(&server, "/v25.0", "ig_publishing_limit.json").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media")))
            .and(form(&[("media_type", "REELS"), ("upload_type", "resumable"), ("caption", "Straight from disk")]))
            .respond_with(ok(json!({"id": "res-c", "uri": "https://rupload.facebook.com/ig-api-upload/v25.0/res-c"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/ig-api-upload/v25.0/res-c"))
            .and(wiremock::matchers::header("authorization", &*format!("OAuth {PAGE_TOKEN}")))
            .and(wiremock::matchers::header("offset", "0"))
            .and(wiremock::matchers::header("file_size", "9"))
            .and(wiremock::matchers::body_bytes(b"123456789".to_vec()))
            .respond_with(ok(json!({"success": true, "message": "Upload successful."})))
            .expect(1)
            .mount(&server)
            .await;
        container(&server, "res-c", 1, "FINISHED").await;
        media_publish(&server, "res-c", "res-m").await;
        let ig = meta(&server).instagram;
        let mut video = Media::from_bytes(b"123456789".to_vec());
        video.mime = "video/mp4".parse().unwrap();
        let content = Content::text("Straight from disk").with_media(video);
        let s = publish(ig.as_ref(), &ig_fb_account(), &content, &TargetOptions::none()).await;
        assert_eq!(s.published().id, "res-m");
        let saved: Vec<serde_json::Value> = s.saves.saved().iter().map(|c| c.as_json().clone()).collect();
        assert_eq!(saved[0]["uploads_pending"], json!(["res-c"]), "the container is checkpointed before its bytes go");
        assert!(saved[1].get("uploads_pending").is_none(), "and marked uploaded after");
    }

    #[tokio::test]
    async fn a_publish_refused_for_the_quota_is_rate_limited_and_resumes_with_the_same_container() {
        let server = MockServer::start().await;
        container(&server, "c-q", 0, "FINISHED").await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_ID}/media_publish")))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Application request limit reached", "type": "OAuthException", "code": 9,
            "error_subcode": 2207042, "is_transient": false,
            "error_user_msg": "You have reached the maximum number of posts allowed in 24 hours.",
            "fbtrace_id": "AQuota1"}})))
            .expect(1)
            .mount(&server)
            .await;
        let ig = meta(&server).instagram;
        let content = Content::text("q").with_media(jpeg("https://cdn.example/a.jpg"));
        let cp = Checkpoint::from_json(json!({"container": "c-q"}));
        let s =
            step(ig.as_ref(), Op::Poll, &ig_fb_account(), &content, &TargetOptions::none(), cp, None, Utc::now()).await;
        assert_eq!(s.state()["container"], "c-q", "the container is kept");
        assert_eq!(s.state()["create_sent"], false, "nothing was published");
        assert!(matches!(s.err(), Error::RateLimited { .. }));
    }
}
