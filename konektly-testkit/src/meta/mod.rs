//! The Meta Graph API emulator, on two ports: the Facebook hosts (`www.facebook.com` dialog,
//! `graph.facebook.com`, `graph-video.facebook.com`, `rupload.facebook.com`) and the Instagram
//! Login hosts (`www.instagram.com`, `api.instagram.com`, `graph.instagram.com`).
//!
//! Facebook Login gives a user token (short, then long-lived by `fb_exchange_token`), Page tokens
//! from `/me/accounts` and the Instagram account linked to each Page. Pages publish feed posts
//! (scheduled too), photos, videos (file_url, source, the resumable `/{app-id}/uploads` session
//! and the legacy start/transfer/finish phases) and reels (rupload). Instagram publishes through
//! containers that finish after a delay, carousels of 2–10, `media_publish` with its daily limit.
//!
//! Split like the adapter it emulates (`konektly-meta`): this module holds what both emulators
//! share — the routing of both ports, request parsing, the caller behind a token (with the usage
//! headers and the throttling errors), Graph errors, field selection, paging and node lookups —
//! `login.rs` the token endpoints of Facebook Login and Instagram Login, `facebook.rs` the Pages
//! (with their videos, reels and upload sessions in `facebook/video.rs`) and `instagram.rs` the
//! containers, their resumable upload and publishing. Each emulator owns its state
//! ([`facebook::FacebookState`], [`instagram::InstagramState`]); Graph ids come from one counter
//! here, so that an id names one node whichever host is asked.

mod facebook;
mod instagram;
mod login;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Multipart, Request, State as AxState};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::oauth::{self, Params};
use crate::server::{graph_error, header as set_header, json, with_headers};
use crate::state::{Grant, Inner, State, chrono_dur, credentials, now};
use chrono::Utc;

pub(crate) use facebook::{Page, add_page, fill_page};
pub(crate) use instagram::fill_ig;

type S = AxState<Arc<State>>;

/// The Meta emulators' state: each emulator's own, and the counter Graph ids come from.
#[derive(Default)]
pub(crate) struct MetaState {
    pub facebook: facebook::FacebookState,
    pub instagram: instagram::InstagramState,
    next: u64,
    /// Comments on Page posts and Instagram media (`POST /{object}/comments`).
    pub comments: Vec<crate::control::SandboxComment>,
    /// Edits of published posts (`POST /{post-id}` with a new message or description).
    pub edits: Vec<(String, Value)>,
}

impl MetaState {
    /// A new Graph id: `base` plus the counter, which both emulators share.
    fn id(&mut self, base: u64) -> String {
        self.next += 1;
        (base + self.next).to_string()
    }
}

pub(crate) fn facebook_router(state: Arc<State>) -> Router {
    Router::new().fallback(serve_facebook).layer(axum::extract::DefaultBodyLimit::disable()).with_state(state)
}

pub(crate) fn instagram_router(state: Arc<State>) -> Router {
    Router::new().fallback(serve_instagram).layer(axum::extract::DefaultBodyLimit::disable()).with_state(state)
}

fn is_version(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(|r| r.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
}

fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

// ---- errors --------------------------------------------------------------------------------

fn err100(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, 100, None, &format!("(#100) {message}"))
}

fn err_sub(code: i64, subcode: i64, message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, code, Some(subcode), message)
}

/// Graph's answer to a token it cannot use (error 190, no subcode).
fn unparseable_token() -> Response {
    graph_error(StatusCode::BAD_REQUEST, 190, None, "Invalid OAuth access token - Cannot parse access token")
}

fn no_permission() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        200,
        None,
        "(#200) The user hasn't authorized the application to perform this action",
    )
}

// ---- request parsing -----------------------------------------------------------------------

struct GraphReq {
    method: Method,
    segs: Vec<String>,
    params: Params,
    files: Vec<(String, Digest, String)>,
    headers: HeaderMap,
}

impl GraphReq {
    fn token(&self) -> Option<String> {
        self.params.get("access_token").cloned().or_else(|| oauth::bearer(&self.headers))
    }
    fn p(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
    fn fields(&self) -> Vec<String> {
        self.p("fields").map(|f| f.split(',').map(|s| s.trim().to_owned()).collect()).unwrap_or_default()
    }
}

async fn parse(state: &State, req: Request) -> Result<GraphReq, Response> {
    let (parts, body) = req.into_parts();
    let mut params = oauth::parse_query(parts.uri.query());
    let ctype = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut files = Vec::new();
    if ctype.starts_with("multipart/form-data") {
        let req = Request::from_parts(parts.clone(), body);
        let mut mp = Multipart::from_request(req, &()).await.map_err(|_| err100("Invalid multipart body"))?;
        while let Some(mut field) = mp.next_field().await.map_err(|_| err100("Invalid multipart body"))? {
            let name = field.name().unwrap_or("").to_owned();
            if field.file_name().is_some() || name == "source" || name == "video_file_chunk" {
                let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
                // A legacy transfer chunk continues its session's digest.
                let mut d = if name == "video_file_chunk" {
                    params
                        .get("upload_session_id")
                        .and_then(|s| facebook::video::session_digest(state, s))
                        .unwrap_or_default()
                } else {
                    Digest::default()
                };
                while let Some(chunk) = field.chunk().await.map_err(|_| err100("The upload broke off"))? {
                    d.update(&chunk);
                }
                files.push((name, d, ct));
            } else {
                let t = field.text().await.unwrap_or_default();
                params.insert(name, t);
            }
        }
    } else {
        let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.map_err(|_| err100("The body is too large"))?;
        if ctype.contains("json") {
            if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&bytes) {
                for (k, v) in o {
                    params.insert(k, if let Value::String(s) = v { s } else { v.to_string() });
                }
            }
        } else {
            params.extend(oauth::parse_form(&bytes));
        }
    }
    Ok(GraphReq { method: parts.method, segs: segments(parts.uri.path()), params, files, headers: parts.headers })
}

/// Authenticates a raw-body upload (`Authorization: OAuth …`).
fn raw_auth(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    let inner = state.lock();
    inner.check_access(oauth::bearer(headers).as_deref(), &["facebook"]).map(|_| ()).map_err(|_| unparseable_token())
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

// ---- dispatch ------------------------------------------------------------------------------

/// The request's path without its Graph version.
fn unversioned(g: &GraphReq) -> Vec<String> {
    let mut segs: Vec<String> = g.segs.clone();
    if segs.first().is_some_and(|v| is_version(v)) {
        segs.remove(0);
    }
    segs
}

async fn serve_facebook(AxState(state): S, req: Request) -> Response {
    let segs = segments(req.uri().path());
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method().clone(), s.as_slice()) {
        (Method::POST, ["video-upload", _, id]) => return facebook::video::rupload_reel(&state, id, req).await,
        (Method::POST, ["ig-api-upload", _, id]) => return instagram::rupload(&state, id, req).await,
        (Method::POST, [v, node]) if is_version(v) && node.starts_with("upload:") => {
            return facebook::video::upload_session_post(&state, node, req).await;
        }
        _ => {}
    }
    let g = match parse(&state, req).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let segs = unversioned(&g);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&g.method, s.as_slice()) {
        (&Method::GET, ["dialog", "oauth"]) => {
            let mut q = g.params.clone();
            q.entry("response_type".into()).or_insert_with(|| "code".into());
            oauth::authorize(&state, &login::FB_SPEC, &q)
        }
        (_, ["oauth", "access_token"]) => login::fb_token(&state, &g),
        (&Method::GET, ["debug_token"]) => login::debug_token(&state, &g),
        _ => graph(&state, &g, &s, "facebook").await,
    }
}

async fn serve_instagram(AxState(state): S, req: Request) -> Response {
    let g = match parse(&state, req).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let segs = unversioned(&g);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&g.method, s.as_slice()) {
        (&Method::GET, ["oauth", "authorize"]) => oauth::authorize(&state, &login::IG_SPEC, &g.params),
        (&Method::POST, ["oauth", "access_token"]) => login::ig_code_exchange(&state, &g),
        (&Method::GET, ["access_token"]) => login::ig_long_lived(&state, &g),
        (&Method::GET, ["refresh_access_token"]) => login::ig_refresh(&state, &g),
        _ => graph(&state, &g, &s, "instagram").await,
    }
}

// ---- the caller ----------------------------------------------------------------------------

struct Caller {
    grant: Grant,
    grant_id: u64,
    /// The user or Page the token acts for.
    subject: String,
    is_page: bool,
}

fn caller(inner: &mut Inner, state: &State, g: &GraphReq, port: &str) -> Result<(Caller, HeaderMap), Response> {
    let tok = g.token();
    let (info, grant) = inner.check_access(tok.as_deref(), &[port]).map_err(|p| match p {
        crate::state::TokenProblem::Missing => {
            graph_error(StatusCode::BAD_REQUEST, 104, None, "An access token is required to request this resource.")
        }
        crate::state::TokenProblem::Expired => {
            graph_error(StatusCode::BAD_REQUEST, 190, Some(463), "Error validating access token: Session has expired.")
        }
        crate::state::TokenProblem::Revoked => graph_error(
            StatusCode::BAD_REQUEST,
            190,
            Some(458),
            "Error validating access token: The user has not authorized application.",
        ),
        crate::state::TokenProblem::Invalid => unparseable_token(),
    })?;
    let is_page = info.subject != grant.user;
    // Usage, in percent of an hourly budget.
    const BUDGET: u32 = 4800;
    let rs = inner.hit(format!("meta:{}", info.subject), BUDGET, Duration::from_secs(3600));
    let used = (BUDGET - rs.remaining) * 100 / BUDGET;
    let regain = if rs.allowed { 0 } else { ((rs.reset - now()).num_minutes() + 1).max(1) };
    let usage = json!({"call_count": used, "total_cputime": used / 2, "total_time": used / 2});
    let mut h = HeaderMap::new();
    if is_page || port == "instagram" {
        let kind = if port == "instagram" { "instagram" } else { "pages" };
        let mut u = usage.clone();
        u["type"] = json!(kind);
        u["estimated_time_to_regain_access"] = json!(regain);
        set_header(&mut h, "x-business-use-case-usage", json!({ info.subject.clone(): [u] }));
    } else {
        set_header(&mut h, "x-app-usage", usage);
    }
    if !rs.allowed {
        let resp = if is_page {
            graph_error(StatusCode::BAD_REQUEST, 32, None, "(#32) Page request limit reached")
        } else {
            graph_error(StatusCode::BAD_REQUEST, 17, None, "(#17) User request limit reached")
        };
        return Err(with_headers(resp, h));
    }
    let _ = state;
    Ok((Caller { grant, grant_id: info.grant, subject: info.subject, is_page }, h))
}

fn has_scope(c: &Caller, any: &[&str]) -> bool {
    any.iter().any(|s| c.grant.scopes.iter().any(|g| g == s))
}

// ---- Graph nodes and edges -----------------------------------------------------------------

fn pick(all: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return all;
    }
    let mut out = serde_json::Map::new();
    if let Some(id) = all.get("id") {
        out.insert("id".into(), id.clone());
    }
    for f in fields {
        // `reactions.limit(0).summary(true)`, `children{media_url}`: the field is before the modifiers.
        let key = f.split(['{', '.']).next().unwrap_or(f);
        if let Some(v) = all.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

async fn graph(state: &Arc<State>, g: &GraphReq, s: &[&str], port: &'static str) -> Response {
    let (c, h) = {
        let mut inner = state.lock();
        match caller(&mut inner, state, g, port) {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
    let r = graph_call(state, g, s, port, &c).await;
    with_headers(r, h)
}

async fn graph_call(state: &Arc<State>, g: &GraphReq, s: &[&str], port: &'static str, c: &Caller) -> Response {
    let fields = g.fields();
    // Resolve `me`.
    let node = match s.first() {
        Some(&"me") => c.subject.clone(),
        Some(n) => (*n).to_owned(),
        None => return err100("Unknown path components"),
    };
    let edge = s.get(1).copied();
    if s.len() > 2 {
        return err100("Unknown path components");
    }
    let app_id = credentials(port).client_id;
    match (&g.method, edge) {
        (&Method::DELETE, Some("permissions")) => {
            state.lock().revoke_grant(c.grant_id);
            json(StatusCode::OK, json!({"success": true}))
        }
        (&Method::GET, Some("permissions")) => {
            let data: Vec<Value> =
                c.grant.scopes.iter().map(|s| json!({"permission": s, "status": "granted"})).collect();
            json(StatusCode::OK, json!({ "data": data }))
        }
        (&Method::GET, Some("accounts")) if port == "facebook" => facebook::accounts(state, g, c, &fields),
        (&Method::POST, Some("uploads")) if node == app_id => facebook::video::upload_session_start(state, g),
        (&Method::POST, Some("feed")) => facebook::page_feed(state, g, c, &node).await,
        (&Method::GET, Some("feed" | "posts" | "published_posts" | "scheduled_posts")) => {
            facebook::page_posts(state, g, &node, edge == Some("scheduled_posts"))
        }
        (&Method::POST, Some("photos")) => facebook::page_photo(state, g, c, &node).await,
        (&Method::POST, Some("videos")) => facebook::video::page_video(state, g, c, &node).await,
        (&Method::POST, Some("video_reels")) => facebook::video::page_reel(state, g, c, &node).await,
        (&Method::POST, Some("media")) => instagram::container(state, g, c, &node, port).await,
        (&Method::GET, Some("media")) => instagram::list(state, c, &node, port),
        (&Method::POST, Some("media_publish")) => instagram::publish(state, g, c, &node, port).await,
        (&Method::GET, Some("content_publishing_limit")) => instagram::limit(state, c, &node, port),
        (&Method::POST, Some("comments")) => post_comment(state, g, c, &node, port),
        (&Method::GET, Some("comments")) => list_comments(state, g, &node, port),
        (&Method::POST, None) => facebook::edit_node(&mut state.lock(), g, c, &node),
        (&Method::GET, None) => get_node(state, c, &node, &fields, port),
        (&Method::DELETE, None) => delete_node(state, c, &node),
        _ => err100(&format!("Unsupported {} request.", g.method)),
    }
}

/// One page of a Graph list, as Graph pages it: `limit` (default 25, at most 100) items after
/// the `after` cursor, with `paging.cursors` and a `paging.next` only when more remain.
fn graph_page(items: Vec<Value>, g: &GraphReq) -> Value {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let limit = g.p("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(25).clamp(1, 100);
    let start = g
        .p("after")
        .and_then(|a| b64.decode(a).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(0)
        .min(items.len());
    let end = (start + limit).min(items.len());
    let cursor = |n: usize| b64.encode(format!("offset:{n}"));
    let mut paging = json!({"cursors": {"before": cursor(start), "after": cursor(end)}});
    if end < items.len() {
        let mut next = format!("/{}?limit={limit}&after={}", g.segs.join("/"), cursor(end));
        for k in ["fields", "since", "until"] {
            if let Some(v) = g.p(k) {
                next.push_str(&format!("&{k}={v}"));
            }
        }
        paging["next"] = json!(next);
    }
    json!({"data": items[start..end].to_vec(), "paging": paging})
}

/// `GET /{id}`: a user, a Page, or a node of either emulator.
fn get_node(state: &State, c: &Caller, node: &str, fields: &[String], port: &str) -> Response {
    let mut inner = state.lock();
    // Users, Pages, Instagram accounts.
    if let Some(u) =
        inner.users.iter().find(|u| u.id == node && (u.platform == "facebook" || u.platform == "instagram")).cloned()
    {
        let v = if u.platform == "facebook" {
            json!({"id": u.id, "name": u.name})
        } else {
            json!({"id": u.id, "user_id": u.id, "username": u.handle, "name": u.name, "account_type": "BUSINESS",
                "profile_picture_url": format!("https://scontent.cdninstagram.com/{}.jpg", u.handle), "followers_count": 42, "media_count": 0})
        };
        return json(StatusCode::OK, pick(v, fields));
    }
    if let Some(answer) = facebook::get_page(&mut inner, c, node, fields, port) {
        return answer;
    }
    let delay = chrono_dur(state.cfg.processing_delay);
    let Some(v) = facebook::node_json(&inner.meta.facebook, node, delay).or_else(|| instagram::node_json(&inner, node))
    else {
        return err100(&format!(
            "Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"
        ));
    };
    json(StatusCode::OK, pick(v, fields))
}

/// `DELETE /{id}`: Facebook's posts, photos and videos; Instagram media cannot be deleted.
fn delete_node(state: &State, c: &Caller, node: &str) -> Response {
    let mut inner = state.lock();
    if inner.meta.instagram.media.contains_key(node) {
        return err100("Unsupported delete request.");
    }
    facebook::delete_node(&mut inner, c, node)
}

/// `POST /{object-id}/comments?message=…`: a comment by the Page (Facebook) or the Instagram
/// account that owns the media.
fn post_comment(state: &State, g: &GraphReq, c: &Caller, node: &str, port: &'static str) -> Response {
    let Some(message) = g.p("message").map(str::to_owned).filter(|m| !m.trim().is_empty()) else {
        return err100("(#100) The parameter message is required");
    };
    let mut inner = state.lock();
    let (platform, author) = if let Some(ig) = instagram::media_owner(&inner, node) {
        ("instagram", ig)
    } else if let Some(page) = facebook::live_object_page(&inner, c, node) {
        match page {
            Ok(page) => ("facebook", page),
            Err(r) => return r,
        }
    } else {
        return err100(&format!("Object with ID '{node}' does not exist, cannot be loaded due to missing permissions"));
    };
    if port == "instagram" && platform == "facebook" {
        return err100("Unsupported post request.");
    }
    let id = inner.meta.id(17_900_000_000_000_000);
    inner.meta.comments.push(crate::control::SandboxComment {
        platform: platform.into(),
        id: id.clone(),
        post: node.to_owned(),
        author,
        text: message,
        created_at: Utc::now(),
        deleted: false,
    });
    json(StatusCode::OK, json!({ "id": id }))
}

/// `GET /{object-id}/comments`: Facebook's shape (`message`, `from`) or Instagram's (`text`,
/// `username`, `from`).
fn list_comments(state: &State, g: &GraphReq, node: &str, _port: &'static str) -> Response {
    let inner = state.lock();
    let items: Vec<Value> = inner
        .meta
        .comments
        .iter()
        .filter(|c| c.post == node && !c.deleted)
        .map(|c| {
            let created = c.created_at.to_rfc3339();
            if c.platform == "instagram" {
                let username = inner.user("instagram", &c.author).map(|u| u.handle.clone());
                json!({"id": c.id, "text": c.text, "username": username, "from": {"id": c.author}, "timestamp": created})
            } else {
                json!({"id": c.id, "message": c.text, "from": {"id": c.author}, "created_time": created})
            }
        })
        .collect();
    json(StatusCode::OK, graph_page(items, g))
}
