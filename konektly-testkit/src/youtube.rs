//! The YouTube Data API v3 and Google OAuth emulator: the consent page, `/token` (refresh
//! tokens not rotated), `/revoke`, `channels.list?mine=true`, resumable `videos.insert`
//! sessions (`308 Resume Incomplete` with `Range`, 256 KiB chunk alignment, status queries with
//! `bytes */total`), `videos.list` with processing, `videos.delete`, `thumbnails.set`, and the
//! daily quota buckets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::digest::{Digest, consume, is_video};
use crate::oauth::{self, AuthorizeSpec};
use crate::server::{answer_or_drop, google_error, header as set_header, json, with_headers};
use crate::state::{Grant, PostedRecord, State, chrono_dur, now, token};

type S = AxState<Arc<State>>;

const CHUNK_ALIGN: u64 = 256 * 1024;
const UPLOAD_SCOPES: [&str; 4] = [
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.force-ssl",
    "https://www.googleapis.com/auth/youtubepartner",
];

#[derive(Default)]
pub(crate) struct YouTubeState {
    sessions: HashMap<String, Session>,
    videos: HashMap<String, Video>,
    /// Comment threads (`commentThreads.insert`).
    pub comments: Vec<crate::control::SandboxComment>,
    /// `videos.update` bodies received: the video id and the body.
    pub edits: Vec<(String, Value)>,
    next_comment: u64,
}

struct Session {
    channel: String,
    total: Option<u64>,
    digest: Digest,
    busy: bool,
    resource: Value,
    video: Option<String>,
}

struct Video {
    channel: String,
    resource: Value,
    uploaded_at: DateTime<Utc>,
    valid: bool,
    deleted: bool,
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/o/oauth2/v2/auth", get(authorize))
        .route("/token", post(token_endpoint))
        .route("/revoke", post(revoke))
        .route("/youtube/v3/channels", get(channels))
        .route("/youtube/v3/videos", get(videos_list).delete(videos_delete).put(videos_update))
        .route("/youtube/v3/commentThreads", get(comment_threads_list).post(comment_threads_insert))
        .route("/upload/youtube/v3/videos", post(insert).put(upload))
        .route("/upload/youtube/v3/thumbnails/set", post(thumbnail))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

const SPEC: AuthorizeSpec = AuthorizeSpec {
    platform: "youtube",
    client_param: "client_id",
    scope_sep: " ",
    code_ttl: Duration::from_secs(600),
    echo_scopes_as: Some("scope"),
    fragment: None,
};

async fn authorize(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    oauth::authorize(&state, &SPEC, &oauth::parse_query(q.as_deref()))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(status, json!({"error": error, "error_description": description}))
}

async fn token_endpoint(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let form = oauth::parse_form(&body);
    let (id, secret) = oauth::client_of(&headers, &form, "client_id");
    if !oauth::client_ok("youtube", id.as_deref(), secret.as_deref(), true) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    let ttl = state.token_ttl(Duration::from_secs(3599));
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = match oauth::take_code(
                &state,
                "youtube",
                form.get("code"),
                form.get("redirect_uri"),
                form.get("code_verifier"),
            ) {
                Ok(c) => c,
                Err((_, d)) if d.contains("redirect_uri") => {
                    return oauth_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", "Bad Request");
                }
                Err((_, d)) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &d),
            };
            let mut inner = state.lock();
            let grant = inner.new_grant("youtube", &code.user, code.scopes.clone());
            let access = inner.issue_access("ya29.", grant, &code.user, Some(ttl), false);
            let refresh = inner.issue_refresh("1//", grant, None);
            json(
                StatusCode::OK,
                json!({"access_token": access, "expires_in": ttl.as_secs(), "refresh_token": refresh,
                    "scope": code.scopes.join(" "), "token_type": "Bearer"}),
            )
        }
        Some("refresh_token") => {
            let mut inner = state.lock();
            let rt = form.get("refresh_token").and_then(|t| inner.refresh.get(t).cloned());
            let grant = rt.as_ref().and_then(|r| inner.grants.get(&r.grant).cloned()).filter(|g| !g.revoked);
            let (Some(rt), Some(grant)) = (rt, grant) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Token has been expired or revoked.");
            };
            let access = inner.issue_access("ya29.", rt.grant, &grant.user, Some(ttl), false);
            json(
                StatusCode::OK,
                json!({"access_token": access, "expires_in": ttl.as_secs(), "scope": grant.scopes.join(" "), "token_type": "Bearer"}),
            )
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Invalid grant_type"),
    }
}

async fn revoke(AxState(state): S, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let mut params = oauth::parse_query(q.as_deref());
    params.extend(oauth::parse_form(&body));
    let mut inner = state.lock();
    let grant = params
        .get("token")
        .and_then(|t| inner.access.get(t).map(|a| a.grant).or_else(|| inner.refresh.get(t).map(|r| r.grant)))
        .filter(|g| inner.grants.get(g).is_some_and(|g| !g.revoked));
    match grant {
        Some(g) => {
            inner.revoke_grant(g);
            json(StatusCode::OK, json!({}))
        }
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_token", "Token expired or revoked"),
    }
}

fn unauthorized() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"code": 401, "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError", "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED"}}),
    )
}

/// Authenticates a call and charges its quota (`units` in the general bucket, `insert` in the
/// uploads bucket).
fn auth(state: &State, headers: &HeaderMap, units: u32, insert: bool) -> Result<Grant, Response> {
    let mut inner = state.lock();
    let (_, grant) = inner.check_access(oauth::bearer(headers).as_deref(), &["youtube"]).map_err(|_| unauthorized())?;
    let day = Duration::from_secs(86_400);
    let mut allowed = true;
    for _ in 0..units {
        allowed &= inner.hit("youtube:quota".into(), state.cfg.youtube_daily_quota, day).allowed;
    }
    if insert {
        allowed &= inner.hit("youtube:inserts".into(), state.cfg.youtube_daily_uploads, day).allowed;
    }
    if !allowed {
        return Err(google_error(
            StatusCode::FORBIDDEN,
            "quotaExceeded",
            "youtube.quota",
            "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
        ));
    }
    Ok(grant)
}

async fn channels(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let grant = match auth(&state, &headers, 1, false) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let q = oauth::parse_query(q.as_deref());
    if !q.contains_key("part") {
        return google_error(StatusCode::BAD_REQUEST, "required", "global", "Required parameter: part");
    }
    let inner = state.lock();
    let items: Vec<Value> = if q.get("mine").map(String::as_str) == Some("true") {
        inner
            .user("youtube", &grant.user)
            .map(|u| {
                vec![json!({"kind": "youtube#channel", "etag": token(""), "id": u.id,
                "snippet": {"title": u.name, "description": "", "customUrl": format!("@{}", u.handle), "publishedAt": "2020-01-01T00:00:00Z",
                    "thumbnails": {"default": {"url": format!("https://yt3.ggpht.com/{}.jpg", u.handle), "width": 88, "height": 88}}},
                "contentDetails": {"relatedPlaylists": {"likes": "", "uploads": format!("UU{}", &u.id[2..])}},
                "status": {"privacyStatus": "public", "isLinked": true, "longUploadsStatus": "allowed"},
                "statistics": {"viewCount": "1200", "subscriberCount": "340", "hiddenSubscriberCount": false,
                    "videoCount": inner.youtube.videos.values().filter(|v| v.channel == grant.user && !v.deleted).count().to_string()}})]
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    json(
        StatusCode::OK,
        json!({"kind": "youtube#channelListResponse", "etag": token(""),
            "pageInfo": {"totalResults": items.len(), "resultsPerPage": 5}, "items": items}),
    )
}

fn bad(reason: &str, message: &str) -> Response {
    google_error(StatusCode::BAD_REQUEST, reason, "youtube.video", message)
}

/// Checks a `video` resource for insert; returns it completed with defaults.
fn check_resource(v: &Value) -> Result<Value, Response> {
    let mut v = if v.is_object() { v.clone() } else { json!({}) };
    let title = v.pointer("/snippet/title").and_then(Value::as_str).unwrap_or("");
    if title.trim().is_empty() || title.chars().count() > 100 || title.contains(['<', '>']) {
        return Err(bad("invalidTitle", "The request metadata specifies an invalid or empty video title."));
    }
    let description = v.pointer("/snippet/description").and_then(Value::as_str).unwrap_or("");
    if description.len() > 5000 || description.contains(['<', '>']) {
        return Err(bad("invalidDescription", "The request metadata specifies an invalid video description."));
    }
    if let Some(tags) = v.pointer("/snippet/tags").and_then(Value::as_array) {
        let total: usize = tags
            .iter()
            .filter_map(Value::as_str)
            .map(|t| t.chars().count() + if t.contains(' ') { 2 } else { 0 })
            .sum::<usize>()
            + tags.len().saturating_sub(1);
        if total > 500 {
            return Err(bad("invalidTags", "The request metadata specifies invalid video keywords."));
        }
    }
    if let Some(c) = v.pointer("/snippet/categoryId").and_then(Value::as_str)
        && (c.is_empty() || !c.chars().all(|ch| ch.is_ascii_digit()))
    {
        return Err(bad("invalidCategoryId", "The snippet.categoryId property specifies an invalid category ID."));
    }
    let privacy = v.pointer("/status/privacyStatus").and_then(Value::as_str).unwrap_or("public").to_owned();
    if !["public", "private", "unlisted"].contains(&privacy.as_str()) {
        return Err(bad("invalidVideoMetadata", "The request metadata is invalid: privacyStatus."));
    }
    if let Some(at) = v.pointer("/status/publishAt").and_then(Value::as_str)
        && (privacy != "private" || DateTime::parse_from_rfc3339(at).is_err())
    {
        {
            return Err(bad(
                "invalidPublishAt",
                "The request metadata specifies an invalid scheduled publishing time.",
            ));
        }
    }
    if v.get("status").is_none() {
        v["status"] = json!({});
    }
    v["status"]["privacyStatus"] = json!(privacy);
    Ok(v)
}

async fn insert(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let q = oauth::parse_query(q.as_deref());
    if q.get("uploadType").map(String::as_str) != Some("resumable") {
        return google_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "global",
            "The sandbox takes uploadType=resumable.",
        );
    }
    if q.get("part").is_none_or(|p| !p.split(',').any(|x| x == "snippet")) {
        return google_error(StatusCode::BAD_REQUEST, "required", "global", "Required parameter: part (with snippet)");
    }
    let grant = match auth(&state, &headers, 0, true) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if !grant.scopes.iter().any(|s| UPLOAD_SCOPES.contains(&s.as_str())) {
        return google_error(
            StatusCode::FORBIDDEN,
            "insufficientPermissions",
            "global",
            "Request had insufficient authentication scopes.",
        );
    }
    let total =
        headers.get("x-upload-content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(t) = headers.get("x-upload-content-type").and_then(|v| v.to_str().ok())
        && !(t.starts_with("video/") || t == "application/octet-stream")
    {
        return google_error(
            StatusCode::BAD_REQUEST,
            "invalidContentType",
            "youtube.video",
            "The uploaded file has an unsupported content type.",
        );
    }
    if total.is_some_and(|t| t > 256 * 1024 * 1024 * 1024) {
        return bad("uploadLimitExceeded", "The file is larger than 256 GB.");
    }
    let resource: Value =
        if body.is_empty() { json!({}) } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    let resource = match check_resource(&resource) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let upload_id = token("ADPycd");
    let mut inner = state.lock();
    inner.youtube.sessions.insert(
        upload_id.clone(),
        Session { channel: grant.user, total, digest: Digest::default(), busy: false, resource, video: None },
    );
    let parts = q.get("part").cloned().unwrap_or_default();
    let loc = state.bases.url(
        "youtube",
        &format!(
            "/upload/youtube/v3/videos?uploadType=resumable&part={}&upload_id={upload_id}",
            parts.replace(',', "%2C")
        ),
    );
    let mut h = HeaderMap::new();
    set_header(&mut h, "location", loc);
    set_header(&mut h, "x-guploader-uploadid", &upload_id);
    with_headers((StatusCode::OK, "").into_response(), h)
}

fn range_header(received: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    if received > 0 {
        set_header(&mut h, "range", format!("bytes=0-{}", received - 1));
    }
    h
}

fn incomplete(received: u64) -> Response {
    with_headers(StatusCode::PERMANENT_REDIRECT.into_response(), range_header(received))
}

enum Range {
    Query,
    Chunk(u64, u64, Option<u64>),
    Whole,
}

fn parse_range(v: Option<&str>) -> Option<Range> {
    let Some(v) = v else { return Some(Range::Whole) };
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = if total == "*" { None } else { Some(total.parse().ok()?) };
    if range == "*" {
        let _ = total;
        return Some(Range::Query);
    }
    let (a, b) = range.split_once('-')?;
    Some(Range::Chunk(a.parse().ok()?, b.parse().ok()?, total))
}

/// Marks an upload session free when dropped.
struct Unbusy {
    state: std::sync::Arc<State>,
    upload_id: String,
}

impl Drop for Unbusy {
    fn drop(&mut self) {
        if let Some(s) = self.state.lock().youtube.sessions.get_mut(&self.upload_id) {
            s.busy = false;
        }
    }
}

async fn upload(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery, body: Body) -> Response {
    let q = oauth::parse_query(q.as_deref());
    let gone = || google_error(StatusCode::NOT_FOUND, "notFound", "global", "The upload session was not found.");
    let Some(upload_id) = q.get("upload_id").cloned() else { return gone() };
    let Some(range) = parse_range(headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok())) else {
        return google_error(StatusCode::BAD_REQUEST, "badRequest", "global", "Failed to parse Content-Range header.");
    };
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let (mut digest, skip, keep, final_total) = {
        let mut inner = state.lock();
        let Some(s) = inner.youtube.sessions.get_mut(&upload_id) else { return gone() };
        if let Some(vid) = s.video.clone() {
            let v = inner.youtube.videos.get(&vid).map(|v| v.resource.clone()).unwrap_or(Value::Null);
            return json(StatusCode::OK, v);
        }
        // A status query is answered whatever else is going on: it only reads.
        if matches!(range, Range::Query) {
            return incomplete(s.digest.size());
        }
        if s.busy {
            return google_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "backendError",
                "global",
                "Another request is uploading to this session.",
            );
        }
        let received = s.digest.size();
        match range {
            Range::Query => return incomplete(received),
            Range::Whole => {
                if received != 0 {
                    return incomplete(received);
                }
                let total = s.total.or(length).unwrap_or(0);
                s.total = Some(total);
                s.busy = true;
                (s.digest.clone(), 0, total, total)
            }
            Range::Chunk(a, b, total) => {
                let total = total.or(s.total);
                if let (Some(t), Some(st)) = (total, s.total)
                    && t != st
                {
                    return google_error(
                        StatusCode::BAD_REQUEST,
                        "badRequest",
                        "global",
                        "The total size differs from X-Upload-Content-Length.",
                    );
                }
                if b < a || a > received || total.is_some_and(|t| b >= t) {
                    return google_error(
                        StatusCode::BAD_REQUEST,
                        "badRequest",
                        "global",
                        "Invalid Content-Range: the bytes must continue from the last persisted byte.",
                    );
                }
                let is_final = total.is_some_and(|t| b + 1 == t);
                // Only whole 256 KiB blocks of a non-final chunk are persisted.
                let end = if is_final { b + 1 } else { (b + 1) / CHUNK_ALIGN * CHUNK_ALIGN };
                s.total = total;
                s.busy = true;
                (s.digest.clone(), received - a, end.saturating_sub(received), total.unwrap_or(u64::MAX))
            }
        }
    };
    // A client that goes away mid-chunk (killed, or its connection dropped) must not leave the
    // session busy for ever: the guard frees it however this handler ends.
    let mut guard = Unbusy { state: state.clone(), upload_id: upload_id.clone() };
    let got = consume(body, &mut digest, skip, keep).await;
    // Ended normally: the session is freed below, together with what it received.
    guard.upload_id.clear();
    drop(guard);
    let mut inner = state.lock();
    let Some(s) = inner.youtube.sessions.get_mut(&upload_id) else { return gone() };
    s.busy = false;
    if got.is_ok() {
        s.digest = digest;
    }
    let received = s.digest.size();
    if received < final_total || received == 0 {
        return incomplete(received);
    }
    // Complete: the video exists.
    let channel = s.channel.clone();
    let mut resource = s.resource.clone();
    let d = s.digest.clone();
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    let vid: String = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)[..11].to_owned();
    s.video = Some(vid.clone());
    let (title, handle) = (
        resource.pointer("/snippet/title").and_then(Value::as_str).unwrap_or("").to_owned(),
        inner.user("youtube", &channel).map(|u| (u.name.clone(), u.handle.clone())).unwrap_or_default(),
    );
    let now = now();
    resource["kind"] = json!("youtube#video");
    resource["etag"] = json!(token(""));
    resource["id"] = json!(vid);
    resource["snippet"]["publishedAt"] = json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    resource["snippet"]["channelId"] = json!(channel);
    resource["snippet"]["channelTitle"] = json!(handle.0);
    resource["snippet"]["liveBroadcastContent"] = json!("none");
    resource["status"]["uploadStatus"] = json!("uploaded");
    resource["status"]["license"] = json!("youtube");
    resource["status"]["embeddable"] = json!(true);
    resource["status"]["publicStatsViewable"] = json!(true);
    let privacy = resource["status"]["privacyStatus"].as_str().unwrap_or("public").to_owned();
    let publish_at = resource
        .pointer("/status/publishAt")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc));
    let valid = d.sniff().is_some_and(is_video);
    inner.youtube.videos.insert(
        vid.clone(),
        Video { channel: channel.clone(), resource: resource.clone(), uploaded_at: now, valid, deleted: false },
    );
    inner.record(PostedRecord {
        seq: 0,
        platform: "youtube".into(),
        account_id: channel,
        account_handle: handle.1,
        id: vid.clone(),
        url: Some(format!("https://www.youtube.com/watch?v={vid}")),
        text: title,
        media: vec![d.record("video/mp4")],
        reply_to: None,
        kind: "video".into(),
        status: match (privacy.as_str(), publish_at) {
            ("private", Some(_)) => "scheduled",
            ("private", None) => "private",
            ("unlisted", _) => "unlisted",
            _ => "published",
        }
        .into(),
        scheduled_for: publish_at,
        options: json!({"status": resource["status"].clone(), "categoryId": resource.pointer("/snippet/categoryId")}),
        created_at: now,
    });
    drop(inner);
    answer_or_drop(&state, "youtube", json(StatusCode::OK, resource))
}

fn video_view(state: &State, v: &Video, id: &str, parts: &[&str]) -> Value {
    let delay = chrono_dur(state.cfg.processing_delay);
    let elapsed = now() - v.uploaded_at;
    let done = elapsed >= delay;
    let mut out = json!({"kind": "youtube#video", "etag": v.resource["etag"], "id": id});
    if parts.contains(&"snippet") {
        out["snippet"] = v.resource["snippet"].clone();
    }
    if parts.contains(&"status") {
        let mut st = v.resource["status"].clone();
        st["uploadStatus"] = json!(match (done, v.valid) {
            (false, _) => "uploaded",
            (true, true) => "processed",
            (true, false) => "failed",
        });
        if done && !v.valid {
            st["failureReason"] = json!("invalidFile");
        }
        out["status"] = st;
    }
    if parts.contains(&"processingDetails") {
        let total = 1000;
        let processed = ((elapsed.num_milliseconds().max(0) * total) / delay.num_milliseconds().max(1)).min(total);
        out["processingDetails"] = match (done, v.valid) {
            (false, _) => {
                // Google encodes 64-bit integers as JSON strings.
                json!({"processingStatus": "processing", "processingProgress": {"partsTotal": total.to_string(),
                    "partsProcessed": processed.to_string(), "timeLeftMs": (delay - elapsed).num_milliseconds().max(0).to_string()}})
            }
            (true, true) => json!({"processingStatus": "succeeded"}),
            (true, false) => json!({"processingStatus": "failed", "processingFailureReason": "other"}),
        };
    }
    if parts.contains(&"statistics") {
        // Growing with the video's age; Google encodes these 64-bit counts as JSON strings.
        let age = elapsed.num_seconds().max(0) as u64;
        out["statistics"] = json!({"viewCount": (age * 2).to_string(), "likeCount": (age / 30).to_string(),
            "favoriteCount": "0", "commentCount": (age / 120).to_string()});
    }
    out
}

async fn videos_list(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = auth(&state, &headers, 1, false) {
        return r;
    }
    let q = oauth::parse_query(q.as_deref());
    let Some(part) = q.get("part") else {
        return google_error(StatusCode::BAD_REQUEST, "required", "global", "Required parameter: part");
    };
    let parts: Vec<&str> = part.split(',').collect();
    let inner = state.lock();
    let items: Vec<Value> = q
        .get("id")
        .map(|ids| ids.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|id| inner.youtube.videos.get(id).filter(|v| !v.deleted).map(|v| video_view(&state, v, id, &parts)))
        .collect();
    json(
        StatusCode::OK,
        json!({"kind": "youtube#videoListResponse", "etag": token(""), "items": items,
            "pageInfo": {"totalResults": items.len(), "resultsPerPage": items.len()}}),
    )
}

async fn videos_delete(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let grant = match auth(&state, &headers, 50, false) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let q = oauth::parse_query(q.as_deref());
    let id = q.get("id").cloned().unwrap_or_default();
    let mut inner = state.lock();
    let Some(v) = inner.youtube.videos.get_mut(&id).filter(|v| !v.deleted) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "videoNotFound",
            "youtube.video",
            "The video that you are trying to delete cannot be found.",
        );
    };
    if v.channel != grant.user {
        return google_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "youtube.video",
            "The video that you are trying to delete cannot be deleted.",
        );
    }
    v.deleted = true;
    if let Some(p) = inner.post_mut("youtube", &id) {
        p.status = "deleted".into();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn thumbnail(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery, body: Body) -> Response {
    let grant = match auth(&state, &headers, 50, false) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let q = oauth::parse_query(q.as_deref());
    let id = q.get("videoId").cloned().unwrap_or_default();
    {
        let inner = state.lock();
        if !inner.youtube.videos.get(&id).is_some_and(|v| v.channel == grant.user && !v.deleted) {
            return google_error(
                StatusCode::NOT_FOUND,
                "videoNotFound",
                "youtube.thumbnail",
                "The video that you are trying to update cannot be found.",
            );
        }
    }
    let mut d = Digest::default();
    if consume(body, &mut d, 0, 50 * 1024 * 1024 + 1).await.is_err() || d.size() == 0 {
        return bad("mediaBodyRequired", "The request does not include the image content.");
    }
    if d.size() > 50 * 1024 * 1024 || !matches!(d.sniff(), Some("image/jpeg" | "image/png")) {
        return bad("invalidImage", "The provided image content is invalid.");
    }
    let url = format!("https://i.ytimg.com/vi/{id}/default.jpg");
    json(
        StatusCode::OK,
        json!({"kind": "youtube#thumbnailSetResponse", "etag": token(""),
            "items": [{"default": {"url": url, "width": 120, "height": 90}}]}),
    )
}

/// `videos.update`: the parts sent (`snippet`, `status`) replace the video's.
async fn videos_update(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let grant = match auth(&state, &headers, 50, false) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let q = oauth::parse_query(q.as_deref());
    let parts = q.get("part").cloned().unwrap_or_default();
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return google_error(StatusCode::BAD_REQUEST, "parseError", "global", "Parse Error");
    };
    let id = req["id"].as_str().unwrap_or_default().to_owned();
    let mut inner = state.lock();
    let Some(v) = inner.youtube.videos.get_mut(&id).filter(|v| !v.deleted && v.channel == grant.user) else {
        return google_error(StatusCode::NOT_FOUND, "videoNotFound", "youtube.video", "The video cannot be found.");
    };
    for part in parts.split(',').filter(|p| !p.is_empty()) {
        if part == "snippet" && req["snippet"]["title"].as_str().is_none_or(|t| t.trim().is_empty()) {
            return google_error(StatusCode::BAD_REQUEST, "invalidTitle", "youtube.video", "The title is empty.");
        }
        if !req[part].is_null() {
            v.resource[part] = req[part].clone();
        }
    }
    let out = v.resource.clone();
    inner.youtube.edits.push((id, req));
    json(StatusCode::OK, out)
}

/// `commentThreads.insert`: a top-level comment on a public or unlisted video, by the channel.
async fn comment_threads_insert(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let grant = match auth(&state, &headers, 50, false) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return google_error(StatusCode::BAD_REQUEST, "parseError", "global", "Parse Error");
    };
    let video = req["snippet"]["videoId"].as_str().unwrap_or_default().to_owned();
    let text = req["snippet"]["topLevelComment"]["snippet"]["textOriginal"].as_str().unwrap_or_default().to_owned();
    if text.trim().is_empty() {
        return google_error(
            StatusCode::BAD_REQUEST,
            "commentTextRequired",
            "youtube.commentThread",
            "The comment is empty.",
        );
    }
    let mut inner = state.lock();
    let Some(v) = inner.youtube.videos.get(&video).filter(|v| !v.deleted) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "videoNotFound",
            "youtube.commentThread",
            "The video cannot be found.",
        );
    };
    if v.resource["status"]["privacyStatus"].as_str() == Some("private") {
        return google_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "youtube.commentThread",
            "The comment thread could not be created due to insufficient permissions (the video is private).",
        );
    }
    inner.youtube.next_comment += 1;
    let id = format!("Ugz{:020}", inner.youtube.next_comment);
    let now = Utc::now();
    inner.youtube.comments.push(crate::control::SandboxComment {
        platform: "youtube".into(),
        id: id.clone(),
        post: video.clone(),
        author: grant.user.clone(),
        text: text.clone(),
        created_at: now,
        deleted: false,
    });
    json(StatusCode::OK, thread_json(&id, &video, &grant.user, &text, now))
}

fn thread_json(id: &str, video: &str, channel: &str, text: &str, at: DateTime<Utc>) -> Value {
    json!({"kind": "youtube#commentThread", "id": id, "snippet": {"videoId": video, "topLevelComment": {
        "kind": "youtube#comment", "id": id, "snippet": {"videoId": video, "textOriginal": text, "textDisplay": text,
        "authorChannelId": {"value": channel}, "publishedAt": at.to_rfc3339()}}}})
}

/// `commentThreads.list?videoId=…`: newest first, one page.
async fn comment_threads_list(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = auth(&state, &headers, 1, false) {
        return r;
    }
    let q = oauth::parse_query(q.as_deref());
    let video = q.get("videoId").cloned().unwrap_or_default();
    let inner = state.lock();
    let items: Vec<Value> = inner
        .youtube
        .comments
        .iter()
        .rev()
        .filter(|c| c.post == video && !c.deleted)
        .map(|c| thread_json(&c.id, &c.post, &c.author, &c.text, c.created_at))
        .collect();
    json(StatusCode::OK, json!({"kind": "youtube#commentThreadListResponse", "items": items}))
}
