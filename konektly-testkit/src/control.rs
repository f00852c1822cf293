//! The media files and the inspection API, on their own port: `GET /media/<name>` (with
//! `Range`), `GET /_sandbox/posts`, `GET|PUT /_sandbox/faults/{platform}`, `GET /_sandbox/users`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::oauth;
use crate::server::json;
use crate::state::{Faults, State, credentials};

type S = AxState<Arc<State>>;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/media/{name}", get(media))
        .route("/_sandbox", get(summary))
        .route("/_sandbox/posts", get(posts))
        .route("/_sandbox/media", axum::routing::post(upload_media))
        .route("/_sandbox/users", get(users))
        .route("/_sandbox/comments/{platform}/{post}", get(comments))
        .route("/_sandbox/faults/{platform}", get(get_faults).put(put_faults))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

fn mime_of(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("mp4") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        _ => "application/octet-stream",
    }
}

async fn media(AxState(state): S, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if name.contains('/') || name.contains("..") || name.starts_with('.') {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = state.media_dir.join(&name);
    let Ok(mut file) = tokio::fs::File::open(&path).await else { return StatusCode::NOT_FOUND.into_response() };
    let Ok(meta) = file.metadata().await else { return StatusCode::NOT_FOUND.into_response() };
    let total = meta.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| {
            let a: u64 = a.parse().ok()?;
            let b: u64 = if b.is_empty() { total.saturating_sub(1) } else { b.parse().ok()? };
            (a <= b && a < total).then_some((a, b.min(total - 1)))
        });
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None if headers.contains_key(header::RANGE) => {
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{total}"))])
                .into_response();
        }
        None => (StatusCode::OK, 0, total),
    };
    if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let stream = tokio_util::io::ReaderStream::new(file.take(len));
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, mime_of(&name).parse().expect("a valid header"));
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(header::ACCEPT_RANGES, "bytes".parse().expect("a valid header"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", start + len - 1).parse().expect("a valid header"),
        );
    }
    resp
}

async fn summary(AxState(state): S) -> Response {
    let bases: serde_json::Map<String, serde_json::Value> = crate::PLATFORMS
        .iter()
        .chain(["media"].iter())
        .map(|p| ((*p).to_owned(), json!(state.bases.get(p).map(|u| u.as_str()))))
        .collect();
    let creds: serde_json::Map<String, serde_json::Value> =
        crate::PLATFORMS.iter().map(|p| ((*p).to_owned(), json!(credentials(p)))).collect();
    json(StatusCode::OK, json!({"base_urls": bases, "credentials": creds}))
}

async fn posts(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    let q = oauth::parse_query(q.as_deref());
    let list = state.posts(q.get("platform").map(String::as_str), q.get("account").map(String::as_str));
    json(StatusCode::OK, json!(list))
}

async fn users(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    let q = oauth::parse_query(q.as_deref());
    let all: Vec<_> =
        state.lock().users.iter().filter(|u| q.get("platform").is_none_or(|p| &u.platform == p)).cloned().collect();
    json(StatusCode::OK, json!(all))
}

async fn get_faults(AxState(state): S, Path(platform): Path<String>) -> Response {
    json(StatusCode::OK, json!(state.faults(&platform)))
}

async fn put_faults(AxState(state): S, Path(platform): Path<String>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            state.set_faults(&platform, f.clone());
            json(StatusCode::OK, json!(f))
        }
        Err(e) => json(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

fn ext_of(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        _ => "bin",
    }
}

/// Stores an uploaded file under its SHA-256 (streamed, never whole in memory) and answers its URL.
async fn upload_media(AxState(state): S, headers: HeaderMap, body: Body) -> Response {
    use futures_util::StreamExt;
    use sha2::Digest as _;
    use tokio::io::AsyncWriteExt;
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/octet-stream");
    let ext = ext_of(mime);
    let tmp = state.media_dir.join(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
    let Ok(mut out) = tokio::fs::File::create(&tmp).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut sha = sha2::Sha256::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return StatusCode::BAD_REQUEST.into_response() };
        sha.update(&chunk);
        if out.write_all(&chunk).await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    if out.flush().await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    drop(out);
    let hex: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("{hex}.{ext}");
    if tokio::fs::rename(&tmp, state.media_dir.join(&name)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    json(StatusCode::OK, json!({"url": state.bases.url("media", &format!("/media/{name}"))}))
}

/// A comment (or a reply from the same account on X) the sandbox keeps under a post.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SandboxComment {
    /// `x`, `facebook`, `instagram` or `youtube`.
    pub platform: String,
    /// The platform's id of the comment (X: the reply's post id; YouTube: the thread's id).
    pub id: String,
    /// The post, media or video it is under.
    pub post: String,
    /// Who wrote it (the user, Page, Instagram account or channel id).
    pub author: String,
    /// Its text.
    pub text: String,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Whether it was deleted since (X: the reply was deleted).
    pub deleted: bool,
}

/// Every comment under `post` on `platform`, oldest first.
pub(crate) fn comments_of(inner: &crate::state::Inner, platform: &str, post: &str) -> Vec<SandboxComment> {
    match platform {
        "x" => crate::x::replies(inner, post),
        "facebook" | "instagram" => {
            inner.meta.comments.iter().filter(|c| c.platform == platform && c.post == post).cloned().collect()
        }
        "youtube" => inner.youtube.comments.iter().filter(|c| c.post == post).cloned().collect(),
        _ => Vec::new(),
    }
}

/// The edits of published posts the sandbox received on `platform`: the post's id and the
/// fields sent, in order.
pub(crate) fn edits_of(inner: &crate::state::Inner, platform: &str) -> Vec<(String, serde_json::Value)> {
    match platform {
        "facebook" | "instagram" => inner.meta.edits.clone(),
        "youtube" => inner.youtube.edits.clone(),
        _ => Vec::new(),
    }
}

async fn comments(AxState(state): S, Path((platform, post)): Path<(String, String)>) -> Response {
    let list = comments_of(&state.lock(), &platform, &post);
    json(StatusCode::OK, json!({ "comments": list }))
}

impl crate::Sandbox {
    /// Every comment under `post` (the platform's id of the post, media or video) on
    /// `platform`, oldest first: X's replies, Facebook's and Instagram's comments, YouTube's
    /// comment threads. Also at `GET /_sandbox/comments/{platform}/{post}`.
    pub fn comments(&self, platform: &str, post: &str) -> Vec<SandboxComment> {
        comments_of(&self.state.lock(), platform, post)
    }

    /// The edits of published posts `platform` received (Facebook's message, YouTube's
    /// `videos.update`): the post's id and what was sent.
    pub fn edits(&self, platform: &str) -> Vec<(String, serde_json::Value)> {
        edits_of(&self.state.lock(), platform)
    }
}
