//! Helpers for the Facebook tests (connect, publish, validate).

use super::*;
use chrono::Utc;
use konektly_core::{Checkpoint, Content, Media, PendingAuthorization, PlatformId, TargetOptions};
use serde_json::json;
use url::Url;
use wiremock::ResponseTemplate;

pub fn pending(platform: &str) -> PendingAuthorization {
    PendingAuthorization {
        state: "state-1".into(),
        platform: PlatformId::new(platform),
        owner: konektly_core::OwnerId::new("owner-1"),
        redirect_uri: Url::parse("https://app.example/callback").unwrap(),
        pkce_verifier: None,
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        reconnect: None,
    }
}

pub fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

pub fn mime_jpeg() -> konektly_core::mime::Mime {
    "image/jpeg".parse().unwrap()
}

pub fn mp4_bytes(n: usize) -> Media {
    let mut m = Media::from_bytes((0..n).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
    m.mime = "video/mp4".parse().unwrap();
    m
}

/// Graph's `created_time` for a moment `secs` seconds from now.
pub fn graph_time(secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(secs)).format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

/// A checkpoint saying the create was sent `secs_ago` seconds ago and its answer lost.
pub fn lost_create(secs_ago: i64) -> Checkpoint {
    Checkpoint::from_json(
        json!({"create_sent": true, "create_sent_at": (Utc::now() - chrono::Duration::seconds(secs_ago)).to_rfc3339()}),
    )
}

/// Reconciles a text post whose create was sent `secs_ago` seconds ago and whose answer was lost.
pub async fn reconcile_lost(fb: &dyn konektly_core::Platform, text: &str, secs_ago: i64) -> Step {
    step(
        fb,
        Op::Reconcile,
        &page_account(),
        &Content::text(text),
        &TargetOptions::none(),
        lost_create(secs_ago),
        None,
        Utc::now(),
    )
    .await
}

/// A page of a busy Page's feed: `n` posts by others (some with our text, but created long
/// before our create), newest first, with a cursor to the next page when `next` is given.
pub fn busy_page(n: usize, from_secs: i64, next: Option<&str>) -> serde_json::Value {
    let data: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({"id": format!("101_9{i:03}"), "message": format!("someone else #{i}"),
            "created_time": graph_time(from_secs - i as i64)})
        })
        .collect();
    let mut paging = json!({"cursors": {"before": "b", "after": next.unwrap_or("end")}});
    if let Some(n) = next {
        paging["next"] = json!(format!("https://graph.facebook.com/v25.0/101/feed?after={n}"));
    }
    json!({"data": data, "paging": paging})
}

pub fn duplicate_status() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "(#506) Duplicate status message",
        "type": "OAuthException", "code": 506, "fbtrace_id": "A1"}}))
}
