//! Serving: one loopback port per platform, with the fault knobs applied in front of the
//! emulators, and connections that a handler can drop after it acted (to emulate a lost answer).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::state::{State, now};

/// Lets a handler drop its connection without answering.
#[derive(Clone)]
pub(crate) struct ConnKill(pub Arc<Notify>);

impl ConnKill {
    /// Drops the connection and never answers.
    pub async fn drop_connection(&self) -> Response {
        self.0.notify_one();
        std::future::pending::<()>().await;
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

/// Marks a response whose connection must be dropped instead of answered.
#[derive(Clone, Copy)]
pub(crate) struct DropConnection;

/// If the platform's `drop_after_accept` knob is set, the connection is dropped instead of
/// answering (the post stays published); otherwise `resp` is sent.
pub(crate) fn answer_or_drop(state: &State, platform: &str, mut resp: Response) -> Response {
    if state.take_drop(platform) {
        tracing::debug!(target: "konektly::sandbox", platform, "dropping the connection after accepting a post");
        resp.extensions_mut().insert(DropConnection);
    }
    resp
}

pub(crate) async fn serve(
    listener: TcpListener,
    name: &'static str,
    router: Router,
    state: Arc<State>,
    cancel: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
            _ = cancel.cancelled() => return,
        };
        let router = router.clone();
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let k = kill.clone();
            let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let router = router.clone();
                let state = state.clone();
                let k = k.clone();
                async move {
                    let resp = handle(name, &state, router, req.map(Body::new)).await;
                    if resp.extensions().get::<DropConnection>().is_some() {
                        return Ok(ConnKill(k.clone()).drop_connection().await);
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

fn is_browser(path: &str) -> bool {
    path.ends_with("/authorize")
        || path.ends_with("/authorize/")
        || path.ends_with("/dialog/oauth")
        || path == "/o/oauth2/v2/auth"
}

/// Bodies up to this size are part of a call's identity (a create carries its text); larger
/// ones (media) are streamed and their path identifies them.
const SMALL_BODY: u64 = 64 * 1024;

/// Who is calling what, to hold a caller to the wait a 429 gave it: the platform, the caller's
/// credential (kept in memory only), and the call — method, path, query but the token, and a
/// small body's hash — so that a retry of the refused request is recognised.
fn wait_key(name: &str, req: &http::Request<Body>, body_hash: &str) -> (String, String, String) {
    let caller = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            req.uri().query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "access_token")
                    .map(|(_, v)| v.into_owned())
            })
        })
        .unwrap_or_default();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().filter(|(k, _)| k != "access_token").collect())
        .unwrap_or_default();
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
    (name.to_owned(), caller, format!("{} {}?{query} {body_hash}", req.method(), req.uri().path()))
}

/// Requests already on their way when a 429 was answered cannot have seen it: those arriving
/// within this long after it are not held to its wait.
const IN_FLIGHT_GRACE: chrono::Duration = chrono::Duration::milliseconds(250);

/// The wait a 429 states (`Retry-After` seconds, or X's `x-rate-limit-reset` or Bluesky's
/// `RateLimit-Reset` epoch).
fn stated_wait(resp: &Response) -> Option<chrono::DateTime<chrono::Utc>> {
    if resp.status() != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let h = resp.headers();
    let num = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    num("retry-after")
        .map(|s| now() + chrono::Duration::seconds(s))
        .or_else(|| num("x-rate-limit-reset").and_then(|t| chrono::DateTime::from_timestamp(t, 0)))
        .or_else(|| num("ratelimit-reset").and_then(|t| chrono::DateTime::from_timestamp(t, 0)))
}

async fn handle(name: &'static str, state: &State, router: Router, req: http::Request<Body>) -> Response {
    let api = name != "media" && !is_browser(req.uri().path());
    if !api {
        return match router.oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
    }
    // A small body is read whole here (to recognise a retried create) and handed on as it was.
    let small = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= SMALL_BODY);
    let (req, body_hash, kind) = if small {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, SMALL_BODY as usize).await.unwrap_or_default();
        let hash = {
            use sha2::Digest as _;
            sha2::Sha256::digest(&bytes)[..8].iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let kind = request_kind(
            name,
            &parts.method,
            &parts.headers,
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            &bytes,
        );
        (http::Request::from_parts(parts, Body::from(bytes)), hash, kind)
    } else {
        let kind =
            request_kind(name, req.method(), req.headers(), req.uri().path(), req.uri().query().unwrap_or(""), b"");
        (req, String::new(), kind)
    };
    let key = wait_key(name, &req, &body_hash);
    let (lose_request, lose_answer, error_after, stall) = {
        let mut inner = state.lock();
        *inner.request_kinds.entry((name.to_owned(), kind.clone())).or_default() += 1;
        let f = inner.faults.entry(name.to_owned()).or_default();
        let stall = match f.stall_request.get_mut(&kind) {
            Some(0) => {
                f.stall_request.remove(&kind);
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        };
        (
            take(&mut f.lose_request, &kind),
            take(&mut f.lose_answer, &kind),
            take(&mut f.error_after_commit, &kind),
            stall,
        )
    };
    if stall {
        tracing::debug!(target: "konektly::sandbox", platform = name, kind, "holding a request without an answer");
        return std::future::pending().await;
    }
    if lose_request {
        tracing::debug!(target: "konektly::sandbox", platform = name, kind, "dropping a request before acting on it");
        let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        r.extensions_mut().insert(DropConnection);
        return r;
    }
    let faults = {
        let mut inner = state.lock();
        *inner.requests.entry(name.to_owned()).or_default() += 1;
        if inner.told_to_wait.get(&key).is_some_and(|(told, until)| now() < *until && now() > *told + IN_FLIGHT_GRACE) {
            tracing::warn!(target: "konektly::sandbox", platform = name, call = %key.2, "a request came before the wait a 429 gave");
            *inner.early_requests.entry(name.to_owned()).or_default() += 1;
            if !key.2.starts_with("GET ") {
                *inner.early_writes.entry(name.to_owned()).or_default() += 1;
            }
        }
        let f = inner.faults.entry(name.to_owned()).or_default();
        let mut limited = f.rate_limit_burst > 0;
        if limited {
            f.rate_limit_burst -= 1;
        }
        limited |= f.rate_limit_rate > 0.0 && rand::random::<f64>() < f.rate_limit_rate;
        let spike = f.latency_spike_rate > 0.0 && rand::random::<f64>() < f.latency_spike_rate;
        (f.latency + if spike { f.latency_spike } else { Duration::ZERO }, limited, f.error_rate)
    };
    if !faults.0.is_zero() {
        tokio::time::sleep(faults.0).await;
    }
    let resp = if faults.1 {
        rate_limited(name, state)
    } else if faults.2 > 0.0 && rand::random::<f64>() < faults.2 {
        unavailable(name)
    } else {
        match router.oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        }
    };
    if let Some(until) = stated_wait(&resp) {
        state.lock().told_to_wait.insert(key, (now(), until));
    }
    if resp.status().is_success() {
        *state.lock().succeeded_kinds.entry((name.to_owned(), kind.clone())).or_default() += 1;
    }
    if resp.status().is_success() && lose_answer {
        tracing::debug!(target: "konektly::sandbox", platform = name, kind, "dropping the answer to a committed request");
        let mut resp = resp;
        resp.extensions_mut().insert(DropConnection);
        return resp;
    }
    if resp.status().is_success() && error_after {
        return unavailable(name);
    }
    resp
}

/// Takes one from a per-kind fault counter.
fn take(counters: &mut std::collections::BTreeMap<String, u32>, kind: &str) -> bool {
    match counters.get_mut(kind) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

pub(crate) fn json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

pub(crate) fn with_headers(mut resp: Response, headers: HeaderMap) -> Response {
    resp.headers_mut().extend(headers);
    resp
}

pub(crate) fn header(map: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        map.insert(name, v);
    }
}

fn log_id() -> String {
    format!("{}{}", now().format("%Y%m%d%H%M%S"), &uuid::Uuid::new_v4().simple().to_string()[..16]).to_uppercase()
}

pub(crate) fn tiktok_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, json!({"data": {}, "error": {"code": code, "message": message, "log_id": log_id()}}))
}

pub(crate) fn tiktok_ok(data: Value) -> Response {
    json(StatusCode::OK, json!({"data": data, "error": {"code": "ok", "message": "", "log_id": log_id()}}))
}

pub(crate) fn graph_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut err = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": &uuid::Uuid::new_v4().simple().to_string()[..11],
    });
    if let Some(s) = subcode {
        err["error_subcode"] = json!(s);
    }
    if matches!(code, 1 | 2 | -1 | -2) {
        err["is_transient"] = json!(true);
    }
    json(status, json!({ "error": err }))
}

pub(crate) fn google_error(status: StatusCode, reason: &str, domain: &str, message: &str) -> Response {
    json(
        status,
        json!({"error": {"code": status.as_u16(), "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}]}}),
    )
}

pub(crate) fn x_problem(status: StatusCode, title: &str, detail: &str, kind: &str) -> Response {
    json(status, json!({"title": title, "detail": detail, "type": kind, "status": status.as_u16()}))
}

fn rate_limited(name: &str, state: &State) -> Response {
    let wait = state.cfg.rate_limit_retry;
    let secs = wait.as_secs().max(1);
    let mut h = HeaderMap::new();
    match name {
        "x" => {
            header(&mut h, "x-rate-limit-limit", 100);
            header(&mut h, "x-rate-limit-remaining", 0);
            header(&mut h, "x-rate-limit-reset", now().timestamp() as u64 + secs);
            with_headers(
                json(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
                ),
                h,
            )
        }
        "tiktok" => tiktok_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "The API rate limit was exceeded. Please try again later.",
        ),
        "bluesky" => {
            header(&mut h, "ratelimit-limit", 3000);
            header(&mut h, "ratelimit-remaining", 0);
            header(&mut h, "ratelimit-reset", now().timestamp() as u64 + secs);
            header(&mut h, "ratelimit-policy", "3000;w=300");
            with_headers(
                crate::bluesky::xrpc_error(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", "Rate Limit Exceeded"),
                h,
            )
        }
        "facebook" | "instagram" => {
            header(&mut h, "x-app-usage", json!({"call_count": 100, "total_cputime": 10, "total_time": 10}));
            with_headers(graph_error(StatusCode::BAD_REQUEST, 4, None, "(#4) Application request limit reached"), h)
        }
        _ => {
            header(&mut h, "retry-after", secs);
            with_headers(
                google_error(StatusCode::TOO_MANY_REQUESTS, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded"),
                h,
            )
        }
    }
}

fn unavailable(name: &str) -> Response {
    let s = StatusCode::SERVICE_UNAVAILABLE;
    match name {
        "x" => x_problem(s, "Service Unavailable", "Service Unavailable", "about:blank"),
        "tiktok" => tiktok_error(s, "internal_error", "Something went wrong. Please try again later."),
        "bluesky" => crate::bluesky::xrpc_error(s, "NotEnoughResources", "Service Unavailable"),
        "facebook" | "instagram" => {
            graph_error(s, 2, None, "An unexpected error has occurred. Please retry your request later.")
        }
        _ => google_error(s, "backendError", "global", "Backend Error"),
    }
}

/// The kind of an API request, as fault knobs and counters name it (see
/// [`Faults::lose_answer`](crate::Faults::lose_answer)): `tweet`, `media_init`, `media_append`,
/// `media_finalize` (X); `video_init`, `inbox_init`, `content_init`, `upload_chunk` (TikTok);
/// `upload_init`, `upload`, `upload_status` (YouTube); `create_record`, `upload_blob`,
/// `delete_record`, `create_session`, `refresh_session` (Bluesky); `feed`, `photo`,
/// `video_start`, `video_transfer`,
/// `video_finish`, `reel_start`, `reel_finish` (Facebook); `container`, `media_publish`
/// (Instagram). Reads are `read`; anything else `other`.
pub(crate) fn request_kind(
    platform: &str,
    method: &http::Method,
    headers: &HeaderMap,
    path: &str,
    query: &str,
    body: &[u8],
) -> String {
    use http::Method;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if method == Method::GET {
        return "read".into();
    }
    let param = |k: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .chain(url::form_urlencoded::parse(body))
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    let kind = match (platform, method, segs.as_slice()) {
        ("x", &Method::POST, ["2", "tweets"]) => "tweet",
        ("x", &Method::POST, ["2", "media", "upload", "initialize"]) => "media_init",
        ("x", &Method::POST, ["2", "media", "upload", _, "append"]) => "media_append",
        ("x", &Method::POST, ["2", "media", "upload", _, "finalize"]) => "media_finalize",
        ("x", &Method::POST, ["2", "media", "upload"]) => "media_upload",
        ("tiktok", &Method::POST, [.., "inbox", "video", "init"]) => "inbox_init",
        ("tiktok", &Method::POST, [.., "video", "init"]) => "video_init",
        ("tiktok", &Method::POST, [.., "content", "init"]) => "content_init",
        ("tiktok", &Method::PUT, ["video"]) => "upload_chunk",
        ("bluesky", &Method::POST, ["xrpc", "com.atproto.repo.createRecord"]) => "create_record",
        ("bluesky", &Method::POST, ["xrpc", "com.atproto.repo.uploadBlob"]) => "upload_blob",
        ("bluesky", &Method::POST, ["xrpc", "com.atproto.repo.deleteRecord"]) => "delete_record",
        ("bluesky", &Method::POST, ["xrpc", "com.atproto.server.createSession"]) => "create_session",
        ("bluesky", &Method::POST, ["xrpc", "com.atproto.server.refreshSession"]) => "refresh_session",
        ("youtube", &Method::POST, ["upload", "youtube", "v3", "videos"]) => "upload_init",
        // `Content-Range: bytes */N` asks how much of a resumable upload arrived.
        ("youtube", &Method::PUT, ["upload", "youtube", "v3", "videos"])
            if headers
                .get(http::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start_matches("bytes ").starts_with('*')) =>
        {
            "upload_status"
        }
        ("youtube", &Method::PUT, ["upload", "youtube", "v3", "videos"]) => "upload",
        ("facebook" | "instagram", &Method::POST, [.., edge]) => {
            let phase = param("upload_phase").unwrap_or_default();
            return match *edge {
                "feed" => "feed".into(),
                "photos" => "photo".into(),
                // Transfer parts travel as multipart bodies (not read here): the phase is inside.
                "videos"
                    if phase.is_empty()
                        && headers
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.starts_with("multipart/")) =>
                {
                    "video_transfer".into()
                }
                "videos" if phase.is_empty() => "video".into(),
                "videos" => format!("video_{phase}"),
                "video_reels" => format!("reel_{phase}"),
                "media" => "container".into(),
                "media_publish" => "media_publish".into(),
                _ => "other".into(),
            };
        }
        _ => "other",
    };
    kind.into()
}
