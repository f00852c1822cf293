//! Helpers for the Instagram tests (connect, publish, validate).

use super::*;
use konektly_core::{Media, MediaHost};
use serde_json::json;
use std::sync::Mutex;
use url::Url;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

pub fn jpeg(url: &str) -> Media {
    Media::from_url(url.parse().unwrap(), "image/jpeg".parse().unwrap())
}

pub fn mp4(url: &str) -> Media {
    Media::from_url(url.parse().unwrap(), "video/mp4".parse().unwrap())
}

/// Mounts `content_publishing_limit` answering `fixture`, read once.
pub async fn quota(server: &MockServer, prefix: &str, fixture_name: &str) {
    quota_n(server, prefix, fixture_name, 1).await
}

pub async fn quota_n(server: &MockServer, prefix: &str, fixture_name: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/{IG_ID}/content_publishing_limit")))
        .and(query_param("fields", "quota_usage,config"))
        .respond_with(ok(fixture(fixture_name)))
        .expect(times)
        .mount(server)
        .await;
}

/// A container whose status is IN_PROGRESS `pending` times, then `last`.
pub async fn container(server: &MockServer, id: &str, pending: u64, last: &str) {
    if pending > 0 {
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{id}")))
            .and(query_param("fields", "status_code,status"))
            .respond_with(ok(json!({"status_code": "IN_PROGRESS", "status": "In Progress", "id": id})))
            .up_to_n_times(pending)
            .expect(pending)
            .with_priority(1)
            .mount(server)
            .await;
    }
    let status = if last == "ERROR" { "Error: Media upload has failed with error code 2207082" } else { last };
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{id}")))
        .and(query_param("fields", "status_code,status"))
        .respond_with(ok(json!({"status_code": last, "status": status, "id": id})))
        .expect(1..)
        .with_priority(2)
        .mount(server)
        .await;
}

pub async fn media_publish(server: &MockServer, creation: &str, media_id: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_ID}/media_publish")))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(form(&[("creation_id", creation)]))
        .respond_with(ok(json!({ "id": media_id })))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{media_id}")))
        .and(query_param("fields", "id,permalink"))
        .respond_with(ok(json!({"id": media_id, "permalink": format!("https://www.instagram.com/p/{media_id}/")})))
        .expect(1)
        .mount(server)
        .await;
}

#[derive(Debug, Default)]
pub struct RecordingHost(pub Mutex<usize>);

#[konektly_core::async_trait]
impl MediaHost for RecordingHost {
    async fn url_for(&self, _media: &Media) -> konektly_core::Result<Url> {
        *self.0.lock().unwrap() += 1;
        Ok("https://media.app.example/abc123.jpg".parse().unwrap())
    }
}
