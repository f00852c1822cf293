//! Publishing against wiremock with LinkedIn's shapes: the create with its versioned headers and
//! the URN from `x-restli-id`, escaped commentary, images, a lost answer reconciled by listing
//! the author's posts, `DUPLICATE_POST` adopted on a resend, the error table, delete.

mod common;
use common::*;
use konektly_core::{Checkpoint, Content, Error, Platform, PublishOutcome, Reconciliation, RemotePost, TargetOptions};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const POSTS: &str = "/rest/posts";

fn created(urn: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).insert_header("x-restli-id", urn)
}

async fn mount_create(server: &MockServer, answer: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(POSTS))
        .and(header("authorization", format!("Bearer {ACCESS}").as_str()))
        .and(header("linkedin-version", VERSION))
        .and(header("x-restli-protocol-version", "2.0.0"))
        .respond_with(answer)
        .expect(times)
        .mount(server)
        .await;
}

async fn sent(server: &MockServer, p: &str) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == p && r.method.as_str() == "POST")
        .map(body_of)
        .collect()
}

#[tokio::test]
async fn a_text_post_is_created_with_escaped_commentary_and_its_urn_read_from_x_restli_id() {
    let server = MockServer::start().await;
    mount_create(&server, created("urn:li:share:7141"), 1).await;
    let text = "Shipping v2 (finally) — see https://ex.com/a_b #rust";
    let r =
        run(&platform(&server), &account(), &Content::text(text), &TargetOptions::none(), Checkpoint::default()).await;
    let remote = match r.result {
        Ok(PublishOutcome::Published(remote)) => remote,
        other => panic!("{other:?}"),
    };
    assert_eq!(remote.id, "urn:li:share:7141");
    assert_eq!(remote.url.unwrap().as_str(), "https://www.linkedin.com/feed/update/urn:li:share:7141/");
    let body = &sent(&server, POSTS).await[0];
    assert_eq!(
        body,
        &json!({
            "author": AUTHOR,
            "commentary": r"Shipping v2 \(finally\) — see https://ex.com/a_b #rust",
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        })
    );
}

#[tokio::test]
async fn options_set_visibility_distribution_and_reshares() {
    let server = MockServer::start().await;
    mount_create(&server, created("urn:li:share:1"), 1).await;
    let opts =
        TargetOptions::from_json(json!({"visibility": "CONNECTIONS", "hide_from_feed": true, "disable_reshare": true}));
    let r = run(&platform(&server), &account(), &Content::text("hi"), &opts, Checkpoint::default()).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Published(_))), "{:?}", r.result);
    let body = &sent(&server, POSTS).await[0];
    assert_eq!(body["visibility"], "CONNECTIONS");
    assert_eq!(body["distribution"]["feedDistribution"], "NONE");
    assert_eq!(body["isReshareDisabledByAuthor"], true);
}

#[tokio::test]
async fn images_are_uploaded_then_posted_as_media_or_multi_image() {
    let server = MockServer::start().await;
    let upload = format!("{}/upload/img", server.uri());
    Mock::given(method("POST"))
        .and(path("/rest/images"))
        .and(query_param("action", "initializeUpload"))
        .and(header("linkedin-version", VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": {
            "uploadUrlExpiresAt": 1_790_000_000_000_i64, "uploadUrl": upload, "image": "urn:li:image:C4E10AQ"}})))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/img"))
        .respond_with(ResponseTemplate::new(201))
        .expect(2)
        .mount(&server)
        .await;
    mount_create(&server, created("urn:li:share:9"), 1).await;
    let content = Content::text("two").with_media(image(1000)).with_media(image(2000));
    let r = run(&platform(&server), &account(), &content, &TargetOptions::none(), Checkpoint::default()).await;
    assert!(matches!(r.result, Ok(PublishOutcome::Published(_))), "{:?}", r.result);
    let inits = sent(&server, "/rest/images").await;
    assert_eq!(inits[0], json!({"initializeUploadRequest": {"owner": AUTHOR}}));
    let body = &sent(&server, POSTS).await[0];
    assert_eq!(
        body["content"],
        json!({"multiImage": {"images": [{"id": "urn:li:image:C4E10AQ", "altText": "a cat"}, {"id": "urn:li:image:C4E10AQ", "altText": "a cat"}]}})
    );
}

#[tokio::test]
async fn a_success_without_x_restli_id_is_an_unknown_outcome() {
    let server = MockServer::start().await;
    mount_create(&server, ResponseTemplate::new(201), 1).await;
    let r =
        run(&platform(&server), &account(), &Content::text("hi"), &TargetOptions::none(), Checkpoint::default()).await;
    assert!(matches!(r.result, Err(Error::UnknownOutcome { .. })), "{:?}", r.result);
}

#[tokio::test]
async fn a_lost_answer_is_reconciled_by_listing_the_authors_posts() {
    let server = MockServer::start().await;
    mount_create(&server, ResponseTemplate::new(504), 1).await;
    let p = platform(&server);
    let content = Content::text("Launch (today)");
    let r = run(&p, &account(), &content, &TargetOptions::none(), Checkpoint::default()).await;
    assert!(matches!(r.result, Err(Error::UnknownOutcome { .. })), "{:?}", r.result);

    let now_ms = chrono::Utc::now().timestamp_millis();
    Mock::given(method("GET"))
        .and(path(POSTS))
        .and(query_param("author", AUTHOR))
        .and(query_param("q", "author"))
        .and(header("linkedin-version", VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"paging": {"start": 0, "count": 20}, "elements": [
            {"id": "urn:li:share:old", "author": AUTHOR, "commentary": r"Launch \(today\)", "createdAt": now_ms - 86_400_000, "lifecycleState": "PUBLISHED"},
            {"id": "urn:li:share:2", "author": AUTHOR, "commentary": "something else", "createdAt": now_ms, "lifecycleState": "PUBLISHED"},
            {"id": "urn:li:share:3", "author": AUTHOR, "commentary": r"Launch \(today\)", "createdAt": now_ms, "lifecycleState": "PUBLISHED"},
        ]})))
        .mount(&server)
        .await;
    let rec = reconcile(&p, &account(), &content, r.checkpoint).await;
    match rec.result {
        Ok(Reconciliation::Published(remote)) => assert_eq!(remote.id, "urn:li:share:3", "the old one is too old"),
        other => panic!("{other:?}"),
    }
    // Published now: publishing again sends nothing.
    let again = run(&p, &account(), &content, &TargetOptions::none(), rec.checkpoint).await;
    assert!(matches!(again.result, Ok(PublishOutcome::Published(ref r)) if r.id == "urn:li:share:3"));
    assert_eq!(sent(&server, POSTS).await.len(), 1);
}

#[tokio::test]
async fn reconcile_finds_nothing_then_a_resend_refused_as_duplicate_adopts_the_named_post() {
    let server = MockServer::start().await;
    mount_create(&server, ResponseTemplate::new(500), 1).await;
    let p = platform(&server);
    let content = Content::text("hello");
    let r = run(&p, &account(), &content, &TargetOptions::none(), Checkpoint::default()).await;
    assert!(matches!(r.result, Err(Error::UnknownOutcome { .. })), "{:?}", r.result);
    Mock::given(method("GET"))
        .and(path(POSTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"elements": []})))
        .mount(&server)
        .await;
    let rec = reconcile(&p, &account(), &content, r.checkpoint).await;
    assert!(matches!(rec.result, Ok(Reconciliation::NotFound)), "{:?}", rec.result);
    server.reset().await;
    mount_create(
        &server,
        ResponseTemplate::new(422).set_body_json(json!({
            "errorDetailType": "com.linkedin.common.error.BadRequest",
            "message": "Content is a duplicate of urn:li:share:7141997",
            "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}]},
            "status": 422})),
        1,
    )
    .await;
    let again = run(&p, &account(), &content, &TargetOptions::none(), rec.checkpoint).await;
    assert!(
        matches!(again.result, Ok(PublishOutcome::Published(ref r)) if r.id == "urn:li:share:7141997"),
        "{:?}",
        again.result
    );
}

#[tokio::test]
async fn without_read_permission_reconcile_says_it_cannot_know() {
    let server = MockServer::start().await;
    mount_create(&server, ResponseTemplate::new(502), 1).await;
    let p = platform(&server);
    let r = run(&p, &account(), &Content::text("x"), &TargetOptions::none(), Checkpoint::default()).await;
    Mock::given(method("GET"))
        .and(path(POSTS))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "Not enough permissions to access: posts.FINDER-author"})))
        .mount(&server)
        .await;
    let rec = reconcile(&p, &account(), &Content::text("x"), r.checkpoint).await;
    assert!(matches!(rec.result, Ok(Reconciliation::Unknowable { .. })), "{:?}", rec.result);
}

#[tokio::test]
async fn a_create_never_sent_reconciles_as_not_found() {
    let server = MockServer::start().await;
    let rec = reconcile(&platform(&server), &account(), &Content::text("x"), Checkpoint::default()).await;
    assert!(matches!(rec.result, Ok(Reconciliation::NotFound)));
}

#[tokio::test]
async fn errors_map_through_the_table() {
    let cases = [
        (
            401,
            json!({"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN", "message": "The token used in the request has been revoked by the user"}),
        ),
        (
            403,
            json!({"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "Not enough permissions"}),
        ),
        (
            426,
            json!({"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version 20250401 is not active"}),
        ),
        (429, json!({"status": 429, "message": "Resource level throttle APPLICATION DAY limit reached"})),
    ];
    for (status, body) in cases {
        let server = MockServer::start().await;
        mount_create(&server, ResponseTemplate::new(status).set_body_json(body), 1).await;
        let r = run(&platform(&server), &account(), &Content::text("x"), &TargetOptions::none(), Checkpoint::default())
            .await;
        let e = r.result.unwrap_err();
        let ok = match status {
            401 => matches!(e, Error::AccessTokenRejected { .. }),
            403 => matches!(e, Error::Rejected { .. }),
            426 => matches!(e, Error::Config(_)),
            _ => matches!(e, Error::RateLimited { retry_at: Some(_), .. }),
        };
        assert!(ok, "{status}: {e:?}");
    }
}

#[tokio::test]
async fn delete_sends_the_encoded_urn() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/rest/posts/urn%3Ali%3Ashare%3A7141"))
        .and(header("linkedin-version", VERSION))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let post =
        RemotePost::new(konektly_core::PlatformId::new("linkedin"), "urn:li:share:7141".to_owned(), None::<url::Url>);
    platform(&server).delete(&account(), &post).await.unwrap();
}
