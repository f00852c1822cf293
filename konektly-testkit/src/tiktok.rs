//! The TikTok emulator: Login Kit v2 (client_key, comma-separated scopes, rotating refresh
//! tokens), user info, creator info, Direct Post and inbox video (FILE_UPLOAD with the chunk plan
//! enforced, or PULL_FROM_URL from a verified prefix: the media host), photo posts, status
//! polling, and per-token rate limits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State as AxState};
use axum::response::Response;
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::digest::{Digest, consume, fetch, is_video};
use crate::oauth::{self, AuthorizeSpec};
use crate::server::{answer_or_drop, json, tiktok_error, tiktok_ok};
use crate::state::{Grant, MediaRecord, PostedRecord, State, chrono_dur, now, token};

type S = AxState<Arc<State>>;

const MB: u64 = 1024 * 1024;

#[derive(Default)]
pub(crate) struct TikTokState {
    publishes: HashMap<String, Publish>,
    uploads: HashMap<String, String>,
    next: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Direct,
    Inbox,
    Photo,
}

struct Chunked {
    size: u64,
    chunk: u64,
    count: u64,
    received: u64,
    digest: Digest,
    busy: bool,
    token: String,
}

struct Publish {
    owner: String,
    mode: Mode,
    title: String,
    privacy: String,
    options: Value,
    upload: Option<Chunked>,
    pulls: usize,
    media: Vec<MediaRecord>,
    fetch_error: Option<String>,
    complete_at: Option<DateTime<Utc>>,
    settled: Option<(String, Option<String>, Option<String>)>,
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v2/auth/authorize/", get(authorize))
        .route("/v2/auth/authorize", get(authorize))
        .route("/v2/oauth/token/", post(token_endpoint))
        .route("/v2/oauth/revoke/", post(revoke))
        .route("/v2/user/info/", get(user_info))
        .route("/v2/video/query/", post(video_query))
        .route("/v2/post/publish/creator_info/query/", post(creator_info))
        .route("/v2/post/publish/video/init/", post(video_init))
        .route("/v2/post/publish/inbox/video/init/", post(inbox_init))
        .route("/v2/post/publish/content/init/", post(content_init))
        .route("/v2/post/publish/status/fetch/", post(status_fetch))
        .route("/video/", put(upload_chunk))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

const SPEC: AuthorizeSpec = AuthorizeSpec {
    platform: "tiktok",
    client_param: "client_key",
    scope_sep: ",",
    code_ttl: Duration::from_secs(600),
    echo_scopes_as: Some("scopes"),
    fragment: None,
};

async fn authorize(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    oauth::authorize(&state, &SPEC, &oauth::parse_query(q.as_deref()))
}

fn oauth_error(error: &str, description: &str) -> Response {
    json(StatusCode::BAD_REQUEST, json!({"error": error, "error_description": description, "log_id": token("")}))
}

fn token_body(inner: &mut crate::state::Inner, state: &State, grant: u64, user: &str, scopes: &[String]) -> Value {
    let ttl = state.token_ttl(Duration::from_secs(86_400));
    let rttl = Duration::from_secs(31_536_000);
    let access = inner.issue_access("act.", grant, user, Some(ttl), false);
    let refresh = inner.issue_refresh("rft.", grant, Some(rttl));
    json!({"access_token": access, "expires_in": ttl.as_secs(), "open_id": user, "refresh_expires_in": rttl.as_secs(),
        "refresh_token": refresh, "scope": scopes.join(","), "token_type": "Bearer"})
}

async fn token_endpoint(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let form = oauth::parse_form(&body);
    let (id, secret) = oauth::client_of(&headers, &form, "client_key");
    if !oauth::client_ok("tiktok", id.as_deref(), secret.as_deref(), true) {
        return oauth_error("invalid_client", "Client key or secret is invalid.");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = match oauth::take_code(
                &state,
                "tiktok",
                form.get("code"),
                form.get("redirect_uri"),
                form.get("code_verifier"),
            ) {
                Ok(c) => c,
                Err((e, d)) => return oauth_error(e, &d),
            };
            let mut inner = state.lock();
            let grant = inner.new_grant("tiktok", &code.user, code.scopes.clone());
            let body = token_body(&mut inner, &state, grant, &code.user, &code.scopes);
            json(StatusCode::OK, body)
        }
        Some("refresh_token") => {
            let mut inner = state.lock();
            let Some(rt) = form.get("refresh_token").and_then(|t| inner.refresh.get(t).cloned()) else {
                return oauth_error("invalid_grant", "Refresh token is invalid or expired.");
            };
            let grant = inner.grants.get(&rt.grant).cloned().filter(|g| !g.revoked);
            let expired = rt.expires_at.is_some_and(|t| t <= now());
            let (Some(grant), false, false) = (grant, rt.used, expired) else {
                return oauth_error("invalid_grant", "Refresh token is invalid or expired.");
            };
            if let Some(r) = form.get("refresh_token").and_then(|t| inner.refresh.get_mut(t)) {
                r.used = true;
            }
            let body = token_body(&mut inner, &state, rt.grant, &grant.user, &grant.scopes);
            json(StatusCode::OK, body)
        }
        _ => oauth_error("invalid_request", "grant_type is invalid."),
    }
}

async fn revoke(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let form = oauth::parse_form(&body);
    let (id, secret) = oauth::client_of(&headers, &form, "client_key");
    if !oauth::client_ok("tiktok", id.as_deref(), secret.as_deref(), true) {
        return oauth_error("invalid_client", "Client key or secret is invalid.");
    }
    let mut inner = state.lock();
    if let Some(g) = form.get("token").and_then(|t| inner.access.get(t)).map(|a| a.grant) {
        inner.revoke_grant(g);
    }
    json(StatusCode::OK, json!({}))
}

/// Authenticates a call, counts it in the token's one-minute window and checks a scope.
fn auth(state: &State, headers: &HeaderMap, endpoint: &str, per_min: u32, scopes: &[&str]) -> Result<Grant, Response> {
    let mut inner = state.lock();
    let tok = oauth::bearer(headers);
    let (_, grant) = inner.check_access(tok.as_deref(), &["tiktok"]).map_err(|_| {
        tiktok_error(
            StatusCode::UNAUTHORIZED,
            "access_token_invalid",
            "The access token is invalid or not found in the request.",
        )
    })?;
    if !scopes.is_empty() && !scopes.iter().any(|s| grant.scopes.iter().any(|g| g == s)) {
        return Err(tiktok_error(
            StatusCode::UNAUTHORIZED,
            "scope_not_authorized",
            &format!(
                "The user did not authorize the scope required for completing this request ({}).",
                scopes.join(" or ")
            ),
        ));
    }
    let window = state.cfg.tiktok_rate_window;
    let rs = inner.hit(format!("tiktok:{}:{endpoint}", tok.unwrap_or_default()), per_min, window);
    if !rs.allowed {
        return Err(tiktok_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "The API rate limit was exceeded. Please try again later.",
        ));
    }
    Ok(grant)
}

fn invalid(message: &str) -> Response {
    tiktok_error(StatusCode::BAD_REQUEST, "invalid_params", message)
}

async fn user_info(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let grant = match auth(&state, &headers, "user_info", 600, &["user.info.basic"]) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let q = oauth::parse_query(q.as_deref());
    let inner = state.lock();
    let Some(u) = inner.user("tiktok", &grant.user) else { return invalid("unknown user") };
    let videos = inner
        .posts
        .iter()
        .filter(|p| p.platform == "tiktok" && p.account_id == grant.user && p.status == "published")
        .count();
    let mut all = json!({"open_id": u.id, "union_id": format!("union-{}", u.id), "avatar_url": format!("https://p16.tiktokcdn.com/{}.jpeg", u.handle),
        "display_name": u.name, "username": u.handle});
    // The stats fields need `user.info.stats`.
    if grant.scopes.iter().any(|s| s == "user.info.stats") {
        for (k, v) in [
            ("follower_count", 250 + videos * 5),
            ("following_count", 12),
            ("likes_count", videos * 40),
            ("video_count", videos),
        ] {
            all[k] = json!(v);
        }
    }
    let fields: Vec<&str> = q.get("fields").map(|f| f.split(',').collect()).unwrap_or_default();
    if fields.is_empty() {
        return invalid("fields is required.");
    }
    let user: serde_json::Map<String, Value> =
        fields.iter().filter_map(|f| all.get(*f).map(|v| ((*f).to_owned(), v.clone()))).collect();
    tiktok_ok(json!({"user": user}))
}

const PRIVACY: [&str; 4] = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"];

async fn creator_info(AxState(state): S, headers: HeaderMap) -> Response {
    let grant = match auth(&state, &headers, "creator_info", 20, &["video.publish"]) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let inner = state.lock();
    let Some(u) = inner.user("tiktok", &grant.user) else { return invalid("unknown user") };
    tiktok_ok(json!({"creator_avatar_url": format!("https://p16.tiktokcdn.com/{}.jpeg", u.handle),
        "creator_username": u.handle, "creator_nickname": u.name, "privacy_level_options": PRIVACY,
        "comment_disabled": false, "duet_disabled": false, "stitch_disabled": false, "max_video_post_duration_sec": 600}))
}

/// Checks a FILE_UPLOAD chunk plan against the media transfer guide.
pub(crate) fn check_plan(size: u64, chunk: u64, count: u64) -> Result<(), &'static str> {
    if size == 0 {
        return Err("The video size is invalid.");
    }
    if size > 4 * 1024 * MB {
        return Err("The video size is too large.");
    }
    if size < 5 * MB {
        return if chunk == size && count == 1 { Ok(()) } else { Err("The chunk size is invalid.") };
    }
    if !(5 * MB..=64 * MB).contains(&chunk) {
        return Err("The chunk size is invalid.");
    }
    if count != size / chunk || count == 0 || count > 1000 {
        return Err("The total chunk count is invalid.");
    }
    if count == 1 && chunk != size {
        return Err("The chunk size is invalid.");
    }
    if size - (count - 1) * chunk > 128 * MB {
        return Err("The chunk size is invalid.");
    }
    Ok(())
}

async fn video_init(st: S, headers: HeaderMap, body: Bytes) -> Response {
    init(st, headers, body, Mode::Direct).await
}

async fn inbox_init(st: S, headers: HeaderMap, body: Bytes) -> Response {
    init(st, headers, body, Mode::Inbox).await
}

async fn content_init(st: S, headers: HeaderMap, body: Bytes) -> Response {
    init(st, headers, body, Mode::Photo).await
}

async fn init(AxState(state): S, headers: HeaderMap, body: Bytes, mode: Mode) -> Response {
    let scopes: &[&str] = match mode {
        Mode::Direct => &["video.publish"],
        Mode::Inbox => &["video.upload"],
        Mode::Photo => &["video.publish", "video.upload"],
    };
    let grant = match auth(&state, &headers, "init", 6, scopes) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Ok(req) = serde_json::from_slice::<Value>(&body) else { return invalid("The request body is not valid JSON.") };
    let post_info = req.get("post_info").cloned().unwrap_or(Value::Null);
    let source = req.get("source_info").cloned().unwrap_or(Value::Null);
    let (title, privacy) = (
        post_info.get("title").and_then(Value::as_str).unwrap_or("").to_owned(),
        post_info.get("privacy_level").and_then(Value::as_str).unwrap_or("").to_owned(),
    );
    if mode == Mode::Photo {
        if req.get("media_type").and_then(Value::as_str) != Some("PHOTO") {
            return invalid("media_type must be PHOTO.");
        }
        match req.get("post_mode").and_then(Value::as_str) {
            Some("DIRECT_POST") => {}
            Some("MEDIA_UPLOAD") => {}
            _ => return invalid("post_mode must be DIRECT_POST or MEDIA_UPLOAD."),
        }
        if title.chars().count() > 90 {
            return invalid("The title is longer than 90 characters.");
        }
        if post_info.get("description").and_then(Value::as_str).is_some_and(|d| d.chars().count() > 4000) {
            return invalid("The description is longer than 4000 characters.");
        }
    } else if title.encode_utf16().count() > 2200 {
        return invalid("The title is longer than 2200 characters.");
    }
    let direct = mode == Mode::Direct
        || (mode == Mode::Photo && req.get("post_mode").and_then(Value::as_str) == Some("DIRECT_POST"));
    if direct {
        if privacy.is_empty() {
            return invalid("post_info.privacy_level is required.");
        }
        if !PRIVACY.contains(&privacy.as_str()) {
            return tiktok_error(
                StatusCode::BAD_REQUEST,
                "privacy_level_option_mismatch",
                "privacy_level is not one of the creator's options.",
            );
        }
        if privacy == "SELF_ONLY" && post_info.get("brand_content_toggle").and_then(Value::as_bool) == Some(true) {
            return invalid("Branded content cannot be private (SELF_ONLY).");
        }
    }
    let media_base = state.bases.media.as_str().to_owned();
    let verified = |u: &str| u.starts_with(&media_base);
    let mut upload = None;
    let mut pulls = Vec::new();
    match (mode, source.get("source").and_then(Value::as_str)) {
        (Mode::Photo, Some("PULL_FROM_URL")) => {
            let images: Vec<String> = source
                .get("photo_images")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if images.is_empty() || images.len() > 35 {
                return invalid("photo_images must hold 1 to 35 URLs.");
            }
            let cover = source.get("photo_cover_index").and_then(Value::as_u64).unwrap_or(0);
            if cover as usize >= images.len() {
                return invalid("photo_cover_index is out of range.");
            }
            if let Some(u) = images.iter().find(|u| !verified(u)) {
                return tiktok_error(
                    StatusCode::FORBIDDEN,
                    "url_ownership_unverified",
                    &format!("The domain or URL prefix of {u} is not verified."),
                );
            }
            pulls = images;
        }
        (Mode::Photo, _) => return invalid("Photo posts take source PULL_FROM_URL only."),
        (_, Some("FILE_UPLOAD")) => {
            let get = |k: &str| source.get(k).and_then(Value::as_u64).unwrap_or(0);
            let (size, chunk, count) = (get("video_size"), get("chunk_size"), get("total_chunk_count"));
            if let Err(m) = check_plan(size, chunk, count) {
                return invalid(m);
            }
            upload = Some(Chunked {
                size,
                chunk,
                count,
                received: 0,
                digest: Digest::default(),
                busy: false,
                token: token(""),
            });
        }
        (_, Some("PULL_FROM_URL")) => {
            let Some(u) = source.get("video_url").and_then(Value::as_str) else {
                return invalid("video_url is required.");
            };
            if !verified(u) {
                return tiktok_error(
                    StatusCode::FORBIDDEN,
                    "url_ownership_unverified",
                    "The domain or URL prefix of video_url is not verified.",
                );
            }
            pulls.push(u.to_owned());
        }
        _ => return invalid("source_info.source must be FILE_UPLOAD or PULL_FROM_URL."),
    }
    let mut inner = state.lock();
    inner.tiktok.next += 1;
    let n = inner.tiktok.next;
    let kind = if upload.is_some() { "file" } else { "url" };
    let publish_id = format!("v_pub_{kind}~v2-1.{}", 7_400_000_000_000_000_000u64 + n);
    let mut data = json!({"publish_id": publish_id});
    if let Some(u) = &upload {
        let upload_id = format!("{}", 7_500_000_000_000_000_000u64 + n);
        data["upload_url"] =
            json!(state.bases.url("tiktok", &format!("/video/?upload_id={upload_id}&upload_token={}", u.token)));
        inner.tiktok.uploads.insert(upload_id, publish_id.clone());
    }
    let mut options = post_info.clone();
    if let Value::Object(o) = &mut options {
        o.remove("title");
        o.insert("post_mode".into(), json!(if direct { "DIRECT_POST" } else { "MEDIA_UPLOAD" }));
    }
    let npulls = pulls.len();
    inner.tiktok.publishes.insert(
        publish_id.clone(),
        Publish {
            owner: grant.user,
            mode,
            title: if mode == Mode::Inbox { String::new() } else { title },
            privacy,
            options,
            upload,
            pulls: npulls,
            media: Vec::new(),
            fetch_error: None,
            complete_at: None,
            settled: None,
        },
    );
    drop(inner);
    if npulls > 0 {
        spawn_pulls(state.clone(), publish_id.clone(), pulls);
    }
    let resp = tiktok_ok(data);
    answer_or_drop(&state, "tiktok", resp)
}

fn spawn_pulls(state: Arc<State>, publish_id: String, urls: Vec<String>) {
    tokio::spawn(async move {
        let mut records = Vec::new();
        let mut error = None;
        for u in urls {
            match fetch(&state.http, &u).await {
                Ok((d, ct)) => records.push(d.record(ct.as_deref().unwrap_or("application/octet-stream"))),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let mut inner = state.lock();
        if let Some(p) = inner.tiktok.publishes.get_mut(&publish_id) {
            p.media = records;
            p.fetch_error = error;
            p.pulls = 0;
            p.complete_at = Some(now());
        }
    });
}

async fn upload_chunk(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery, body: Body) -> Response {
    let q = oauth::parse_query(q.as_deref());
    let upload_err =
        |status: StatusCode, msg: &str| json(status, json!({"error": {"code": "invalid_params", "message": msg}}));
    let Some(upload_id) = q.get("upload_id") else { return upload_err(StatusCode::NOT_FOUND, "unknown upload") };
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !["video/mp4", "video/quicktime", "video/webm"].contains(&ctype) {
        return upload_err(StatusCode::BAD_REQUEST, "Content-Type must be video/mp4, video/quicktime or video/webm.");
    }
    let range = headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(parse_content_range);
    let Some((first, last, total)) = range else {
        return upload_err(StatusCode::BAD_REQUEST, "Content-Range is required: bytes {first}-{last}/{total}.");
    };
    let (mut digest, expected_len, publish_id) = {
        let mut inner = state.lock();
        let Some(pid) = inner.tiktok.uploads.get(upload_id).cloned() else {
            return upload_err(StatusCode::NOT_FOUND, "unknown upload");
        };
        let Some(u) = inner.tiktok.publishes.get_mut(&pid).and_then(|p| p.upload.as_mut()) else {
            return upload_err(StatusCode::NOT_FOUND, "unknown upload");
        };
        if q.get("upload_token") != Some(&u.token) {
            return upload_err(StatusCode::FORBIDDEN, "upload_token is invalid.");
        }
        if total != u.size {
            return upload_err(StatusCode::BAD_REQUEST, "The total in Content-Range differs from video_size.");
        }
        if u.busy || first != u.received || last < first || u.received >= u.size {
            return upload_err(StatusCode::RANGE_NOT_SATISFIABLE, "Chunks must be uploaded in order, each once.");
        }
        let index = u.received / u.chunk;
        let expected = if index + 1 < u.count { u.chunk } else { u.size - u.received };
        if last - first + 1 != expected {
            return upload_err(StatusCode::BAD_REQUEST, "The chunk does not match the chunk plan given at init.");
        }
        u.busy = true;
        (u.digest.clone(), expected, pid)
    };
    // A client that goes away mid-chunk must not leave the upload busy for ever.
    let mut guard = Unbusy { state: state.clone(), publish_id: publish_id.clone() };
    let got = consume(body, &mut digest, 0, expected_len).await;
    // Ended normally: freed below, together with what it received.
    guard.publish_id.clear();
    drop(guard);
    let mut inner = state.lock();
    let Some(p) = inner.tiktok.publishes.get_mut(&publish_id) else {
        return upload_err(StatusCode::NOT_FOUND, "unknown upload");
    };
    let Some(u) = p.upload.as_mut() else { return upload_err(StatusCode::NOT_FOUND, "unknown upload") };
    u.busy = false;
    match got {
        Ok(n) if n == expected_len => {
            u.digest = digest;
            u.received += n;
            if u.received == u.size {
                let rec = u.digest.record(ctype);
                p.media = vec![rec];
                p.complete_at = Some(now());
                StatusCode::CREATED.into_response_ok()
            } else {
                StatusCode::PARTIAL_CONTENT.into_response_ok()
            }
        }
        Ok(_) => upload_err(StatusCode::BAD_REQUEST, "The body length differs from Content-Range."),
        Err(e) => upload_err(StatusCode::BAD_REQUEST, &e),
    }
}

/// Marks an upload free when dropped.
struct Unbusy {
    state: Arc<State>,
    publish_id: String,
}

impl Drop for Unbusy {
    fn drop(&mut self) {
        if let Some(u) = self.state.lock().tiktok.publishes.get_mut(&self.publish_id).and_then(|p| p.upload.as_mut()) {
            u.busy = false;
        }
    }
}

trait EmptyOk {
    fn into_response_ok(self) -> Response;
}

impl EmptyOk for StatusCode {
    fn into_response_ok(self) -> Response {
        use axum::response::IntoResponse;
        self.into_response()
    }
}

pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// Ends processing that has had its time: the post appears (or fails) at the platform.
pub(crate) fn settle(state: &State, inner: &mut crate::state::Inner) {
    let now = now();
    let delay = chrono_dur(state.cfg.processing_delay);
    let due: Vec<String> = inner
        .tiktok
        .publishes
        .iter()
        .filter(|(_, p)| p.settled.is_none() && p.complete_at.is_some_and(|t| t + delay <= now))
        .map(|(k, _)| k.clone())
        .collect();
    for pid in due {
        let (owner, mode, title, privacy, options, media, fetch_error) = {
            let p = &inner.tiktok.publishes[&pid];
            (
                p.owner.clone(),
                p.mode,
                p.title.clone(),
                p.privacy.clone(),
                p.options.clone(),
                p.media.clone(),
                p.fetch_error.clone(),
            )
        };
        let format_ok = match mode {
            Mode::Photo => media.iter().all(|m| m.mime == "image/jpeg" || m.mime == "image/webp"),
            _ => media.iter().all(|m| is_video(&m.mime)),
        };
        let settled = if let Some(_e) = fetch_error {
            (
                "FAILED".to_owned(),
                Some(if mode == Mode::Photo { "photo_pull_failed" } else { "video_pull_failed" }.to_owned()),
                None,
            )
        } else if !format_ok || media.is_empty() {
            ("FAILED".to_owned(), Some("file_format_check_failed".to_owned()), None)
        } else if mode == Mode::Inbox
            || (mode == Mode::Photo && options.get("post_mode").and_then(Value::as_str) == Some("MEDIA_UPLOAD"))
        {
            let handle = inner.user("tiktok", &owner).map(|u| u.handle.clone()).unwrap_or_default();
            inner.record(PostedRecord {
                seq: 0,
                platform: "tiktok".into(),
                account_id: owner.clone(),
                account_handle: handle,
                id: pid.clone(),
                url: None,
                text: title,
                media,
                reply_to: None,
                kind: if mode == Mode::Photo { "photo" } else { "video" }.into(),
                status: "inbox".into(),
                scheduled_for: None,
                options,
                created_at: now,
            });
            ("SEND_TO_USER_INBOX".to_owned(), None, None)
        } else {
            let n = inner.next();
            let post_id = format!("{}", 7_300_000_000_000_000_000u64 + n);
            let handle = inner.user("tiktok", &owner).map(|u| u.handle.clone()).unwrap_or_default();
            let private = privacy == "SELF_ONLY";
            let path = if mode == Mode::Photo { "photo" } else { "video" };
            inner.record(PostedRecord {
                seq: 0,
                platform: "tiktok".into(),
                account_id: owner.clone(),
                account_handle: handle.clone(),
                id: post_id.clone(),
                url: (!private).then(|| format!("https://www.tiktok.com/@{handle}/{path}/{post_id}")),
                text: title,
                media,
                reply_to: None,
                kind: path.into(),
                status: if private { "private" } else { "published" }.into(),
                scheduled_for: None,
                options: {
                    let mut o = options;
                    o["privacy_level"] = json!(privacy);
                    o
                },
                created_at: now,
            });
            ("PUBLISH_COMPLETE".to_owned(), None, (!private).then_some(post_id))
        };
        if let Some(p) = inner.tiktok.publishes.get_mut(&pid) {
            p.settled = Some(settled);
        }
    }
}

async fn status_fetch(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let grant = match auth(&state, &headers, "status", 30, &["video.publish", "video.upload"]) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(pid) = req.get("publish_id").and_then(Value::as_str) else { return invalid("publish_id is required.") };
    let mut inner = state.lock();
    state.settle(&mut inner);
    let Some(p) = inner.tiktok.publishes.get(pid).filter(|p| p.owner == grant.user) else {
        return invalid("publish_id is invalid.");
    };
    let uploaded = p.upload.as_ref().map(|u| u.received).unwrap_or(0);
    let downloaded: u64 = if p.upload.is_none() { p.media.iter().map(|m| m.size).sum() } else { 0 };
    let mut data = json!({"uploaded_bytes": uploaded, "downloaded_bytes": downloaded});
    match &p.settled {
        Some((status, reason, post_id)) => {
            data["status"] = json!(status);
            if let Some(r) = reason {
                data["fail_reason"] = json!(r);
            }
            let ids: Vec<u64> = post_id.iter().filter_map(|i| i.parse().ok()).collect();
            data["publicaly_available_post_id"] = json!(ids);
        }
        None => {
            data["status"] = json!(if p.upload.is_some() { "PROCESSING_UPLOAD" } else { "PROCESSING_DOWNLOAD" });
            data["publicaly_available_post_id"] = json!([]);
        }
    }
    tiktok_ok(data)
}

/// `POST /v2/video/query/` (scope `video.list`): the caller's videos by id, with the fields asked
/// for; counts grow with a video's age.
async fn video_query(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let grant = match auth(&state, &headers, "video_query", 600, &["video.list"]) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let q = oauth::parse_query(q.as_deref());
    let fields: Vec<String> = q.get("fields").map(|f| f.split(',').map(str::to_owned).collect()).unwrap_or_default();
    if fields.is_empty() {
        return invalid("fields is required.");
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else { return invalid("the body is not JSON") };
    let ids: Vec<String> = req["filters"]["video_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > 20 {
        return invalid("filters.video_ids must hold 1 to 20 ids");
    }
    let inner = state.lock();
    let videos: Vec<Value> = inner
        .posts
        .iter()
        .filter(|p| {
            p.platform == "tiktok" && p.account_id == grant.user && p.status != "deleted" && ids.contains(&p.id)
        })
        .map(|p| {
            let age = (now() - p.created_at).num_seconds().max(0) as u64;
            let all = json!({"id": p.id, "title": p.text, "create_time": p.created_at.timestamp(),
                "share_url": p.url, "view_count": age * 4, "like_count": age / 15, "comment_count": age / 90,
                "share_count": age / 200});
            let v: serde_json::Map<String, Value> =
                fields.iter().filter_map(|f| all.get(f.as_str()).map(|v| (f.clone(), v.clone()))).collect();
            Value::Object(v)
        })
        .collect();
    tiktok_ok(json!({"videos": videos, "cursor": 0, "has_more": false}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_plan_rules() {
        assert!(check_plan(3 * MB, 3 * MB, 1).is_ok());
        assert!(check_plan(3 * MB, MB, 3).is_err());
        assert!(check_plan(50 * MB, 10 * MB, 5).is_ok());
        assert!(check_plan(55 * MB, 10 * MB, 5).is_ok());
        assert!(check_plan(55 * MB, 10 * MB, 6).is_err());
        assert!(check_plan(15 * MB, 10 * MB, 1).is_err());
        assert!(check_plan(15 * MB, 15 * MB, 1).is_ok());
        assert!(check_plan(200 * MB, 4 * MB, 50).is_err());
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 0-99/200"), Some((0, 99, 200)));
        assert_eq!(parse_content_range("bytes */200"), None);
    }
}
