//! The Meta Graph API emulator, on two ports: the Facebook hosts (`www.facebook.com` dialog,
//! `graph.facebook.com`, `graph-video.facebook.com`, `rupload.facebook.com`) and the Instagram
//! Login hosts (`www.instagram.com`, `api.instagram.com`, `graph.instagram.com`).
//!
//! Facebook Login gives a user token (short, then long-lived by `fb_exchange_token`), Page tokens
//! from `/me/accounts` and the Instagram account linked to each Page. Pages publish feed posts
//! (scheduled too), photos, videos (file_url, source, the resumable `/{app-id}/uploads` session
//! and the legacy start/transfer/finish phases) and reels (rupload). Instagram publishes through
//! containers that finish after a delay, carousels of 2–10, `media_publish` with its daily limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Multipart, Request, State as AxState};
use axum::response::Response;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::digest::{Digest, consume, fetch, is_video};
use crate::oauth::{self, AuthorizeSpec, Params};
use crate::server::{answer_or_drop, graph_error, header as set_header, json, with_headers};
use crate::state::{Grant, Inner, MediaRecord, PostedRecord, State, chrono_dur, credentials, now, token};

type S = AxState<Arc<State>>;

/// A Facebook Page.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub instagram: Option<String>,
}

#[derive(Default)]
pub(crate) struct MetaState {
    pub pages: HashMap<String, Page>,
    nodes: HashMap<String, Node>,
    page_tokens: HashMap<(u64, String), String>,
    next: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IgKind {
    Image,
    Video,
    Reels,
    Stories,
    Carousel,
}

enum Node {
    FbPost { page: String, message: String, created: DateTime<Utc>, scheduled: Option<DateTime<Utc>>, deleted: bool },
    Photo { page: String, media: MediaRecord, published: bool, attached: bool },
    Video(Box<Video>),
    Upload { total: u64, digest: Digest, busy: bool, handle: Option<String> },
    Container(Box<Container>),
    IgMedia { ig: String, caption: String, kind: IgKind, permalink: String, shortcode: String, created: DateTime<Utc> },
}

struct Video {
    page: String,
    reel: bool,
    title: String,
    description: String,
    total: Option<u64>,
    digest: Digest,
    media: Option<MediaRecord>,
    uploaded_at: Option<DateTime<Utc>>,
    error: Option<String>,
    finished: bool,
    post_state: String,
    legacy_session: Option<String>,
    busy: bool,
}

struct Container {
    ig: String,
    kind: IgKind,
    caption: String,
    carousel_item: bool,
    children: Vec<String>,
    created: DateTime<Utc>,
    ready_at: Option<DateTime<Utc>>,
    media: Option<MediaRecord>,
    error: Option<String>,
    published: Option<String>,
    resumable_total: Option<u64>,
    digest: Digest,
    busy: bool,
    options: Value,
}

impl MetaState {
    fn id(&mut self, base: u64) -> String {
        self.next += 1;
        (base + self.next).to_string()
    }
}

pub(crate) fn facebook_router(state: Arc<State>) -> Router {
    Router::new().fallback(facebook).layer(axum::extract::DefaultBodyLimit::disable()).with_state(state)
}

pub(crate) fn instagram_router(state: Arc<State>) -> Router {
    Router::new().fallback(instagram).layer(axum::extract::DefaultBodyLimit::disable()).with_state(state)
}

fn is_version(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(|r| r.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
}

fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn err100(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, 100, None, &format!("(#100) {message}"))
}

fn err_sub(code: i64, subcode: i64, message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, code, Some(subcode), message)
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
                    params.get("upload_session_id").and_then(|s| session_digest(state, s)).unwrap_or_default()
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

fn session_digest(state: &State, session: &str) -> Option<Digest> {
    let inner = state.lock();
    inner.meta.nodes.values().find_map(|n| match n {
        Node::Video(v) if v.legacy_session.as_deref() == Some(session) => Some(v.digest.clone()),
        _ => None,
    })
}

// ---- dispatch ------------------------------------------------------------------------------

async fn facebook(AxState(state): S, req: Request) -> Response {
    let segs = segments(req.uri().path());
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method().clone(), s.as_slice()) {
        (Method::POST, ["video-upload", _, id]) => return rupload_reel(&state, id, req).await,
        (Method::POST, ["ig-api-upload", _, id]) => return rupload_ig(&state, id, req).await,
        (Method::POST, [v, node]) if is_version(v) && node.starts_with("upload:") => {
            return upload_session_post(&state, node, req).await;
        }
        _ => {}
    }
    let g = match parse(&state, req).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mut segs: Vec<String> = g.segs.clone();
    if segs.first().is_some_and(|v| is_version(v)) {
        segs.remove(0);
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&g.method, s.as_slice()) {
        (&Method::GET, ["dialog", "oauth"]) => {
            let mut q = g.params.clone();
            q.entry("response_type".into()).or_insert_with(|| "code".into());
            oauth::authorize(&state, &FB_SPEC, &q)
        }
        (_, ["oauth", "access_token"]) => fb_token(&state, &g),
        (&Method::GET, ["debug_token"]) => debug_token(&state, &g),
        _ => graph(&state, &g, &s, "facebook").await,
    }
}

async fn instagram(AxState(state): S, req: Request) -> Response {
    let g = match parse(&state, req).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mut segs: Vec<String> = g.segs.clone();
    if segs.first().is_some_and(|v| is_version(v)) {
        segs.remove(0);
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&g.method, s.as_slice()) {
        (&Method::GET, ["oauth", "authorize"]) => oauth::authorize(&state, &IG_SPEC, &g.params),
        (&Method::POST, ["oauth", "access_token"]) => ig_code_exchange(&state, &g),
        (&Method::GET, ["access_token"]) => ig_long_lived(&state, &g),
        (&Method::GET, ["refresh_access_token"]) => ig_refresh(&state, &g),
        _ => graph(&state, &g, &s, "instagram").await,
    }
}

const FB_SPEC: AuthorizeSpec = AuthorizeSpec {
    platform: "facebook",
    client_param: "client_id",
    scope_sep: ",",
    code_ttl: Duration::from_secs(600),
    echo_scopes_as: None,
    fragment: None,
};

const IG_SPEC: AuthorizeSpec = AuthorizeSpec {
    platform: "instagram",
    client_param: "client_id",
    scope_sep: ",",
    code_ttl: Duration::from_secs(3600),
    echo_scopes_as: None,
    fragment: Some("#_"),
};

// ---- OAuth ---------------------------------------------------------------------------------

fn app_ok(platform: &str, g: &GraphReq) -> bool {
    oauth::client_ok(platform, g.p("client_id"), g.p("client_secret"), true)
}

fn fb_token(state: &State, g: &GraphReq) -> Response {
    if !app_ok("facebook", g) {
        return err_sub(101, 0, "Error validating application. Invalid application ID or secret.");
    }
    if g.p("grant_type") == Some("fb_exchange_token") {
        let mut inner = state.lock();
        let short = g.p("fb_exchange_token");
        let (info, _) = match inner.check_access(short, &["facebook"]) {
            Ok(v) => v,
            Err(_) => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    190,
                    Some(463),
                    "Error validating access token: Session has expired.",
                );
            }
        };
        let ttl = state.token_ttl(Duration::from_secs(5_184_000));
        let t = inner.issue_access("EAAL", info.grant, &info.subject, Some(ttl), true);
        return json(StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": ttl.as_secs()}));
    }
    let code = match oauth::take_code(
        state,
        "facebook",
        g.params.get("code"),
        g.params.get("redirect_uri"),
        g.params.get("code_verifier"),
    ) {
        Ok(c) => c,
        Err((_, d)) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(36008),
                &format!("Error validating verification code: {d}"),
            );
        }
    };
    let mut inner = state.lock();
    let grant = inner.new_grant("facebook", &code.user, code.scopes.clone());
    let ttl = state.token_ttl(Duration::from_secs(3600));
    let t = inner.issue_access("EAAS", grant, &code.user, Some(ttl), false);
    json(StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": ttl.as_secs()}))
}

fn debug_token(state: &State, g: &GraphReq) -> Response {
    let creds = credentials("facebook");
    if g.p("access_token") != Some(&format!("{}|{}", creds.client_id, creds.client_secret)) && g.token().is_none() {
        return graph_error(StatusCode::BAD_REQUEST, 190, None, "Invalid OAuth access token.");
    }
    let inner = state.lock();
    let input = g.p("input_token");
    let data = match inner.check_access(input, &["facebook", "instagram"]) {
        Ok((info, grant)) => {
            let is_page = info.subject != grant.user;
            json!({"app_id": creds.client_id, "type": if is_page { "PAGE" } else { "USER" }, "application": "konektly sandbox",
                "is_valid": true, "issued_at": info.issued_at.timestamp(),
                "expires_at": info.expires_at.map(|t| t.timestamp()).unwrap_or(0),
                "data_access_expires_at": (now() + chrono::Duration::days(90)).timestamp(),
                "scopes": grant.scopes, "user_id": grant.user, "profile_id": if is_page { Some(info.subject) } else { None }})
        }
        Err(_) => json!({"app_id": creds.client_id, "is_valid": false,
            "error": {"code": 190, "message": "The access token is invalid.", "subcode": 467}}),
    };
    json(StatusCode::OK, json!({ "data": data }))
}

fn ig_error(message: &str) -> Response {
    json(StatusCode::BAD_REQUEST, json!({"error_type": "OAuthException", "code": 400, "error_message": message}))
}

fn ig_code_exchange(state: &State, g: &GraphReq) -> Response {
    if !app_ok("instagram", g) {
        return ig_error("Invalid client_id or client_secret");
    }
    if g.p("grant_type") != Some("authorization_code") {
        return ig_error("Invalid grant_type");
    }
    let code = match oauth::take_code(
        state,
        "instagram",
        g.params.get("code"),
        g.params.get("redirect_uri"),
        g.params.get("code_verifier"),
    ) {
        Ok(c) => c,
        Err((_, d)) => return ig_error(&format!("Error validating verification code: {d}")),
    };
    let mut inner = state.lock();
    let grant = inner.new_grant("instagram", &code.user, code.scopes.clone());
    let ttl = state.token_ttl(Duration::from_secs(3600));
    let t = inner.issue_access("IGQS", grant, &code.user, Some(ttl), false);
    let one = json!({"access_token": t, "user_id": code.user, "permissions": code.scopes.join(",")});
    if state.cfg.instagram_token_wrapped {
        json(StatusCode::OK, json!({"data": [one]}))
    } else {
        json(
            StatusCode::OK,
            json!({"access_token": t, "user_id": code.user.parse::<u64>().ok(), "permissions": code.scopes}),
        )
    }
}

fn ig_long_lived(state: &State, g: &GraphReq) -> Response {
    if g.p("grant_type") != Some("ig_exchange_token")
        || g.p("client_secret") != Some(&credentials("instagram").client_secret)
    {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter: grant_type or client_secret");
    }
    let mut inner = state.lock();
    let Ok((info, _)) = inner.check_access(g.p("access_token"), &["instagram"]) else {
        return unparseable_token();
    };
    let ttl = state.token_ttl(Duration::from_secs(5_183_944));
    let t = inner.issue_access("IGQL", info.grant, &info.subject, Some(ttl), true);
    json(StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": ttl.as_secs()}))
}

fn ig_refresh(state: &State, g: &GraphReq) -> Response {
    if g.p("grant_type") != Some("ig_refresh_token") {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter: grant_type");
    }
    let mut inner = state.lock();
    let Ok((info, _)) = inner.check_access(g.p("access_token"), &["instagram"]) else {
        return unparseable_token();
    };
    if !info.long_lived {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Only long-lived tokens can be refreshed");
    }
    let ttl = state.token_ttl(Duration::from_secs(5_183_944));
    let t = inner.issue_access("IGQL", info.grant, &info.subject, Some(ttl), true);
    json(StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": ttl.as_secs()}))
}

// ---- Graph nodes ---------------------------------------------------------------------------

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

fn no_permission() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        200,
        None,
        "(#200) The user hasn't authorized the application to perform this action",
    )
}

fn pick(all: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return all;
    }
    let mut out = serde_json::Map::new();
    if let Some(id) = all.get("id") {
        out.insert("id".into(), id.clone());
    }
    for f in fields {
        let key = f.split('{').next().unwrap_or(f);
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
        (&Method::GET, Some("accounts")) if port == "facebook" => accounts(state, g, c, &fields),
        (&Method::POST, Some("uploads")) if node == app_id => upload_session_start(state, g),
        (&Method::POST, Some("feed")) => page_feed(state, g, c, &node).await,
        (&Method::GET, Some("feed" | "posts" | "published_posts" | "scheduled_posts")) => {
            page_posts(state, g, &node, edge == Some("scheduled_posts"))
        }
        (&Method::POST, Some("photos")) => page_photo(state, g, c, &node).await,
        (&Method::POST, Some("videos")) => page_video(state, g, c, &node).await,
        (&Method::POST, Some("video_reels")) => page_reel(state, g, c, &node).await,
        (&Method::POST, Some("media")) => ig_container(state, g, c, &node, port).await,
        (&Method::GET, Some("media")) => ig_list(state, c, &node, port),
        (&Method::POST, Some("media_publish")) => ig_publish(state, g, c, &node, port).await,
        (&Method::GET, Some("content_publishing_limit")) => ig_limit(state, c, &node, port),
        (&Method::GET, None) => get_node(state, c, &node, &fields, port),
        (&Method::DELETE, None) => delete_node(state, c, &node),
        _ => err100(&format!("Unsupported {} request.", g.method)),
    }
}

fn page_token(inner: &mut Inner, c: &Caller, page: &str) -> String {
    if let Some(t) = inner.meta.page_tokens.get(&(c.grant_id, page.to_owned())) {
        return t.clone();
    }
    let long = inner.access.values().any(|a| a.grant == c.grant_id && a.long_lived && a.subject == c.grant.user);
    // A Page token from a long-lived user token never expires; from a short one it lasts an hour.
    let ttl = if long { None } else { Some(Duration::from_secs(3600)) };
    let t = inner.issue_access("EAAP", c.grant_id, page, ttl, long);
    inner.meta.page_tokens.insert((c.grant_id, page.to_owned()), t.clone());
    t
}

fn page_json(inner: &mut Inner, c: &Caller, p: &Page, with_token: bool, expand_ig: bool) -> Value {
    let mut v = json!({"id": p.id, "name": p.name, "category": "Brand", "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]});
    if let Some(ig) = &p.instagram {
        v["instagram_business_account"] = json!({"id": ig});
        // Field expansion: `instagram_business_account{id,username,…}`.
        if expand_ig && let Some(u) = inner.user("instagram", ig) {
            v["instagram_business_account"] = json!({"id": ig, "username": u.handle, "name": u.name,
                "profile_picture_url": format!("https://scontent.cdninstagram.com/{}.jpg", u.handle)});
        }
    }
    if with_token {
        v["access_token"] = json!(page_token(inner, c, &p.id));
    }
    v
}

fn accounts(state: &State, g: &GraphReq, c: &Caller, fields: &[String]) -> Response {
    if c.is_page || !has_scope(c, &["pages_show_list"]) {
        return no_permission();
    }
    let mut inner = state.lock();
    let mut pages: Vec<Page> = inner.meta.pages.values().filter(|p| p.owner == c.grant.user).cloned().collect();
    // A stable order, so that cursors page through every Page once.
    pages.sort_by(|a, b| a.id.cmp(&b.id));
    let expand = fields.iter().any(|f| f.starts_with("instagram_business_account{"));
    let data: Vec<Value> = pages.iter().map(|p| pick(page_json(&mut inner, c, p, true, expand), fields)).collect();
    // Paged as Graph pages it: `limit` (25 by default), `after` cursors, `paging.next`.
    json(StatusCode::OK, graph_page(data, g))
}

/// Whether the caller may act as `page`.
fn may_act_as_page(inner: &Inner, c: &Caller, page: &str) -> bool {
    if c.is_page {
        return c.subject == page;
    }
    inner.meta.pages.get(page).is_some_and(|p| p.owner == c.grant.user)
}

/// Whether the caller may publish for Instagram account `ig`.
fn may_act_as_ig(inner: &Inner, c: &Caller, ig: &str, port: &str) -> bool {
    if port == "instagram" {
        return c.subject == ig;
    }
    inner
        .meta
        .pages
        .values()
        .any(|p| p.instagram.as_deref() == Some(ig) && (p.id == c.subject || p.owner == c.grant.user))
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(secs) = s.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0);
    }
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

fn is_false(v: Option<&str>) -> bool {
    matches!(v, Some("false" | "0"))
}

/// Checks `published` / `scheduled_publish_time`: returns the scheduled time, if any.
fn schedule_of(g: &GraphReq) -> Result<Option<DateTime<Utc>>, Response> {
    let Some(t) = g.p("scheduled_publish_time") else { return Ok(None) };
    let Some(at) = parse_time(t) else { return Err(err100("The specified scheduled publish time is invalid.")) };
    if !is_false(g.p("published")) && g.p("video_state") != Some("SCHEDULED") {
        return Err(err100("Scheduled posts must be unpublished (published=false)."));
    }
    let d = at - now();
    if d < chrono::Duration::minutes(10) || d > chrono::Duration::days(75) {
        return Err(err100(
            "The specified scheduled publish time is invalid: it must be between 10 minutes and 75 days from now.",
        ));
    }
    Ok(Some(at))
}

fn page_check(state: &State, c: &Caller, page: &str) -> Result<(String, String), Response> {
    let inner = state.lock();
    let Some(p) = inner.meta.pages.get(page) else {
        return Err(err100(&format!(
            "Object with ID '{page}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"
        )));
    };
    if !c.is_page {
        return Err(graph_error(
            StatusCode::FORBIDDEN,
            200,
            None,
            "(#200) Publishing to a Page requires a Page access token",
        ));
    }
    if !may_act_as_page(&inner, c, page) || !has_scope(c, &["pages_manage_posts"]) {
        return Err(graph_error(
            StatusCode::FORBIDDEN,
            200,
            None,
            "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission",
        ));
    }
    Ok((p.id.clone(), p.name.clone()))
}

fn fb_record(
    inner: &mut Inner,
    page: &(String, String),
    id: &str,
    kind: &str,
    text: &str,
    media: Vec<MediaRecord>,
    scheduled: Option<DateTime<Utc>>,
    url: String,
    options: Value,
) {
    inner.record(PostedRecord {
        seq: 0,
        platform: "facebook".into(),
        account_id: page.0.clone(),
        account_handle: page.1.clone(),
        id: id.to_owned(),
        url: Some(url),
        text: text.to_owned(),
        media,
        reply_to: None,
        kind: kind.into(),
        status: if scheduled.is_some() { "scheduled" } else { "published" }.into(),
        scheduled_for: scheduled,
        options,
        created_at: now(),
    });
}

async fn page_feed(state: &State, g: &GraphReq, c: &Caller, page: &str) -> Response {
    let p = match page_check(state, c, page) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let scheduled = match schedule_of(g) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let message = g.p("message").unwrap_or("").to_owned();
    // attached_media[0]={"media_fbid":"…"} or attached_media=[{…}]
    let mut fbids = Vec::new();
    let mut keys: Vec<&String> = g.params.keys().filter(|k| k.starts_with("attached_media")).collect();
    keys.sort_by_key(|k| k.trim_start_matches("attached_media[").trim_end_matches(']').parse::<usize>().unwrap_or(0));
    for k in keys {
        let v: Value = serde_json::from_str(&g.params[k]).unwrap_or(Value::Null);
        let items = if let Value::Array(a) = v { a } else { vec![v] };
        for it in items {
            if let Some(id) = it
                .get("media_fbid")
                .and_then(|m| m.as_str().map(str::to_owned).or_else(|| m.as_u64().map(|n| n.to_string())))
            {
                fbids.push(id);
            }
        }
    }
    if message.is_empty() && g.p("link").is_none() && fbids.is_empty() {
        return err100("Please provide a message, a link or attached media.");
    }
    let mut inner = state.lock();
    let mut media = Vec::new();
    for id in &fbids {
        match inner.meta.nodes.get_mut(id) {
            Some(Node::Photo { page: pp, media: m, published: false, attached }) if pp == page && !*attached => {
                *attached = true;
                media.push(m.clone());
            }
            _ => return err100(&format!("attached_media: {id} is not an unpublished photo of this Page")),
        }
    }
    let duplicate = inner.meta.nodes.values().any(|n| matches!(n, Node::FbPost { page: pp, message: m, deleted: false, .. } if pp == page && !message.is_empty() && *m == message));
    if duplicate {
        return graph_error(StatusCode::BAD_REQUEST, 506, None, "(#506) Duplicate status message");
    }
    let n = inner.meta.id(100_000_000_000_000);
    let id = format!("{page}_{n}");
    inner.meta.nodes.insert(
        id.clone(),
        Node::FbPost { page: page.to_owned(), message: message.clone(), created: now(), scheduled, deleted: false },
    );
    let mut opts = json!({});
    if let Some(l) = g.p("link") {
        opts["link"] = json!(l);
    }
    fb_record(&mut inner, &p, &id, "feed", &message, media, scheduled, format!("https://www.facebook.com/{id}"), opts);
    drop(inner);
    answer_or_drop(state, "facebook", json(StatusCode::OK, json!({"id": id})))
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

fn page_posts(state: &State, g: &GraphReq, page: &str, scheduled_only: bool) -> Response {
    // `since` / `until`: Unix times bounding `created_time`, as Graph's time-based paging.
    let bound = |k: &str| g.p(k).and_then(|v| v.parse::<i64>().ok()).and_then(|t| DateTime::from_timestamp(t, 0));
    let (since, until) = (bound("since"), bound("until"));
    let inner = state.lock();
    let visible_before = now() - chrono_dur(inner.faults.get("facebook").map(|f| f.listing_lag).unwrap_or_default());
    let mut items: Vec<(DateTime<Utc>, Value)> = inner
        .meta
        .nodes
        .iter()
        .filter_map(|(id, n)| match n {
            Node::FbPost { page: pp, message, created, scheduled, deleted: false }
                if pp == page
                    && *created <= visible_before
                    && (!scheduled_only || scheduled.is_some())
                    && since.is_none_or(|s| *created >= s)
                    && until.is_none_or(|u| *created <= u) => Some((
                *created,
                json!({"id": id, "message": message, "created_time": created.format("%Y-%m-%dT%H:%M:%S+0000").to_string(),
                    "permalink_url": format!("https://www.facebook.com/{id}"), "is_published": scheduled.is_none()}),
            )),
            _ => None,
        })
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.0));
    json(StatusCode::OK, graph_page(items.into_iter().map(|i| i.1).collect(), g))
}

async fn media_from(
    state: &State,
    g: &GraphReq,
    url_param: &str,
    file_param: &str,
) -> Result<Option<MediaRecord>, Response> {
    if let Some((_, d, ct)) = g.files.iter().find(|f| f.0 == file_param) {
        return Ok(Some(d.record(ct)));
    }
    if let Some(u) = g.p(url_param) {
        return match fetch(&state.http, u).await {
            Ok((d, ct)) => Ok(Some(d.record(ct.as_deref().unwrap_or("application/octet-stream")))),
            Err(e) => Err(graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(2_069_019),
                &format!("(#100) {url_param} could not be fetched: {e}"),
            )),
        };
    }
    Ok(None)
}

async fn page_photo(state: &State, g: &GraphReq, c: &Caller, page: &str) -> Response {
    let p = match page_check(state, c, page) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let scheduled = match schedule_of(g) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let media = match media_from(state, g, "url", "source").await {
        Ok(Some(m)) => m,
        Ok(None) => return err100("Requires a url or a source file."),
        Err(r) => return r,
    };
    if !media.mime.starts_with("image/") {
        return graph_error(
            StatusCode::BAD_REQUEST,
            324,
            None,
            "(#324) Requires upload file: the file is not an image",
        );
    }
    if media.size > 10 * 1024 * 1024 {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) The photo is larger than 10 MB");
    }
    let published = !is_false(g.p("published"));
    let caption = g.p("caption").or(g.p("message")).unwrap_or("").to_owned();
    let mut inner = state.lock();
    let id = inner.meta.id(300_000_000_000_000);
    inner
        .meta
        .nodes
        .insert(id.clone(), Node::Photo { page: page.to_owned(), media: media.clone(), published, attached: false });
    if !published && scheduled.is_none() {
        return json(StatusCode::OK, json!({"id": id}));
    }
    let n = inner.meta.id(100_000_000_000_000);
    let post_id = format!("{page}_{n}");
    inner.meta.nodes.insert(
        post_id.clone(),
        Node::FbPost { page: page.to_owned(), message: caption.clone(), created: now(), scheduled, deleted: false },
    );
    fb_record(
        &mut inner,
        &p,
        &post_id,
        "photo",
        &caption,
        vec![media],
        scheduled,
        format!("https://www.facebook.com/{post_id}"),
        json!({}),
    );
    drop(inner);
    answer_or_drop(state, "facebook", json(StatusCode::OK, json!({"id": id, "post_id": post_id})))
}

fn new_video(page: &str, reel: bool, g: &GraphReq) -> Video {
    Video {
        page: page.to_owned(),
        reel,
        title: g.p("title").unwrap_or("").to_owned(),
        description: g.p("description").unwrap_or("").to_owned(),
        total: None,
        digest: Digest::default(),
        media: None,
        uploaded_at: None,
        error: None,
        finished: false,
        post_state: "published".into(),
        legacy_session: None,
        busy: false,
    }
}

const CHUNK: u64 = 4 * 1024 * 1024;

async fn page_video(state: &Arc<State>, g: &GraphReq, c: &Caller, page: &str) -> Response {
    let p = match page_check(state, c, page) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match g.p("upload_phase") {
        Some("start") => {
            let Some(size) = g.p("file_size").and_then(|s| s.parse::<u64>().ok()).filter(|s| *s > 0) else {
                return err100("file_size is required");
            };
            if size > 10 * 1024 * 1024 * 1024 {
                return err_sub(6000, 1_363_023, "The video file is too large");
            }
            let mut inner = state.lock();
            let vid = inner.meta.id(400_000_000_000_000);
            let session = inner.meta.id(500_000_000_000_000);
            let mut v = new_video(page, false, g);
            v.total = Some(size);
            v.legacy_session = Some(session.clone());
            inner.meta.nodes.insert(vid.clone(), Node::Video(Box::new(v)));
            return json(
                StatusCode::OK,
                json!({"video_id": vid, "upload_session_id": session, "start_offset": "0", "end_offset": size.min(CHUNK).to_string()}),
            );
        }
        Some("transfer") => {
            let session = g.p("upload_session_id").unwrap_or("");
            let start = g.p("start_offset").and_then(|s| s.parse::<u64>().ok()).unwrap_or(u64::MAX);
            let Some((_, d, _)) = g.files.iter().find(|f| f.0 == "video_file_chunk") else {
                return err100("video_file_chunk is required");
            };
            let mut inner = state.lock();
            let Some(v) = inner.meta.nodes.values_mut().find_map(|n| match n {
                Node::Video(v) if v.legacy_session.as_deref() == Some(session) => Some(v),
                _ => None,
            }) else {
                return err100("upload_session_id is invalid");
            };
            let total = v.total.unwrap_or(0);
            let expected_end = (v.digest.size() + CHUNK).min(total);
            if start != v.digest.size() || d.size() != expected_end || v.uploaded_at.is_some() {
                return json(
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"message": "There was a problem uploading your video file. Please try again with another file.",
                        "type": "OAuthException", "code": 6000, "error_subcode": 1_363_037, "is_transient": false,
                        "error_data": {"start_offset": v.digest.size().to_string(), "end_offset": expected_end.to_string()},
                        "fbtrace_id": "AsandboxTrace"}}),
                );
            }
            v.digest = d.clone();
            let next_end = (v.digest.size() + CHUNK).min(total);
            return json(
                StatusCode::OK,
                json!({"start_offset": v.digest.size().to_string(), "end_offset": next_end.to_string()}),
            );
        }
        Some("finish") => {
            let session = g.p("upload_session_id").unwrap_or("").to_owned();
            let scheduled = match schedule_of(g) {
                Ok(s) => s,
                Err(r) => return r,
            };
            let mut inner = state.lock();
            let found = inner.meta.nodes.iter_mut().find_map(|(id, n)| match n {
                Node::Video(v) if v.legacy_session.as_deref() == Some(session.as_str()) => Some((id.clone(), v)),
                _ => None,
            });
            let Some((vid, v)) = found else { return err100("upload_session_id is invalid") };
            if Some(v.digest.size()) != v.total {
                return err_sub(6000, 1_363_019, "The video was not fully uploaded");
            }
            if let Some(t) = g.p("title") {
                v.title = t.to_owned();
            }
            if let Some(d) = g.p("description") {
                v.description = d.to_owned();
            }
            v.finished = true;
            v.uploaded_at = Some(now());
            let rec = v.digest.record("video/mp4");
            v.media = Some(rec.clone());
            let text = if v.description.is_empty() { v.title.clone() } else { v.description.clone() };
            fb_record(
                &mut inner,
                &p,
                &vid,
                "video",
                &text,
                vec![rec],
                scheduled,
                format!("https://www.facebook.com/{page}/videos/{vid}"),
                json!({"title": g.p("title")}),
            );
            drop(inner);
            return answer_or_drop(state, "facebook", json(StatusCode::OK, json!({"success": true})));
        }
        Some(_) => return err100("upload_phase must be start, transfer or finish"),
        None => {}
    }
    let scheduled = match schedule_of(g) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // One call: source, a file_url (fetched), or a handle from an /{app-id}/uploads session.
    let media = if let Some(h) = g.p("fbuploader_video_file_chunk") {
        let inner = state.lock();
        let found = inner.meta.nodes.values().find_map(|n| match n {
            Node::Upload { digest, handle: Some(hh), .. } if hh == h => Some(digest.record("video/mp4")),
            _ => None,
        });
        match found {
            Some(m) => m,
            None => return err_sub(6000, 1_363_019, "The upload handle is invalid or incomplete"),
        }
    } else {
        match media_from(state, g, "file_url", "source").await {
            Ok(Some(m)) => m,
            Ok(None) => return err100("Requires source, file_url or fbuploader_video_file_chunk"),
            Err(r) => return r,
        }
    };
    if !is_video(&media.mime) {
        return err_sub(
            352,
            1_363_024,
            "(#352) Sorry, the video file you selected is in a format that we don't support.",
        );
    }
    let mut inner = state.lock();
    let vid = inner.meta.id(400_000_000_000_000);
    let mut v = new_video(page, false, g);
    v.total = Some(media.size);
    v.media = Some(media.clone());
    v.uploaded_at = Some(now());
    v.finished = true;
    let text = if v.description.is_empty() { v.title.clone() } else { v.description.clone() };
    inner.meta.nodes.insert(vid.clone(), Node::Video(Box::new(v)));
    fb_record(
        &mut inner,
        &p,
        &vid,
        "video",
        &text,
        vec![media],
        scheduled,
        format!("https://www.facebook.com/{page}/videos/{vid}"),
        json!({"title": g.p("title")}),
    );
    drop(inner);
    answer_or_drop(state, "facebook", json(StatusCode::OK, json!({"id": vid})))
}

async fn page_reel(state: &Arc<State>, g: &GraphReq, c: &Caller, page: &str) -> Response {
    let p = match page_check(state, c, page) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match g.p("upload_phase") {
        Some("start") => {
            let mut inner = state.lock();
            let rs = inner.hit(format!("fb:reels:{page}"), 30, Duration::from_secs(86_400));
            if !rs.allowed {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    32,
                    None,
                    "(#32) The Page has reached its limit of 30 API-published reels in 24 hours",
                );
            }
            let vid = inner.meta.id(400_000_000_000_000);
            inner.meta.nodes.insert(vid.clone(), Node::Video(Box::new(new_video(page, true, g))));
            let ver = g.segs.first().filter(|v| is_version(v)).cloned().unwrap_or_else(|| "v25.0".into());
            let url = state.bases.url("facebook", &format!("/video-upload/{ver}/{vid}"));
            json(StatusCode::OK, json!({"video_id": vid, "upload_url": url}))
        }
        Some("finish") => {
            let vid = g.p("video_id").unwrap_or("").to_owned();
            let scheduled = match g.p("video_state") {
                Some("SCHEDULED") => match schedule_of(g) {
                    Ok(Some(s)) => Some(s),
                    Ok(None) => return err100("scheduled_publish_time is required with video_state=SCHEDULED"),
                    Err(r) => return r,
                },
                Some("PUBLISHED" | "DRAFT") => None,
                _ => return err100("video_state must be PUBLISHED, DRAFT or SCHEDULED"),
            };
            let draft = g.p("video_state") == Some("DRAFT");
            let mut inner = state.lock();
            let Some(Node::Video(v)) =
                inner.meta.nodes.get_mut(&vid).filter(|n| matches!(n, Node::Video(v) if v.page == page && v.reel))
            else {
                return err100("video_id is invalid");
            };
            let Some(media) = v.media.clone() else {
                return err_sub(6000, 1_363_019, "The video was not uploaded: upload it to the upload_url first");
            };
            if v.finished {
                return err100("This reel was already finished");
            }
            v.finished = true;
            v.post_state = if draft {
                "draft".into()
            } else if scheduled.is_some() {
                "scheduled".into()
            } else {
                "published".into()
            };
            if let Some(d) = g.p("description") {
                v.description = d.to_owned();
            }
            let text = v.description.clone();
            if !draft {
                fb_record(
                    &mut inner,
                    &p,
                    &vid,
                    "reel",
                    &text,
                    vec![media],
                    scheduled,
                    format!("https://www.facebook.com/reel/{vid}"),
                    json!({}),
                );
            }
            drop(inner);
            answer_or_drop(state, "facebook", json(StatusCode::OK, json!({"success": true})))
        }
        _ => err100("upload_phase must be start or finish"),
    }
}

fn upload_session_start(state: &State, g: &GraphReq) -> Response {
    let Some(len) = g.p("file_length").and_then(|s| s.parse::<u64>().ok()).filter(|n| *n > 0) else {
        return err100("file_length is required");
    };
    let ft = g.p("file_type").unwrap_or("");
    if !["video/mp4", "image/jpeg", "image/jpg", "image/png", "application/pdf"].contains(&ft) {
        return err100("file_type must be one of application/pdf, image/jpeg, image/jpg, image/png, video/mp4");
    }
    let mut inner = state.lock();
    let id = format!("upload:{}", token(""));
    inner
        .meta
        .nodes
        .insert(id.clone(), Node::Upload { total: len, digest: Digest::default(), busy: false, handle: None });
    json(StatusCode::OK, json!({"id": id}))
}

/// Authenticates a raw-body upload (`Authorization: OAuth …`).
fn raw_auth(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    let inner = state.lock();
    inner.check_access(oauth::bearer(headers).as_deref(), &["facebook"]).map(|_| ()).map_err(|_| unparseable_token())
}

/// Graph's answer to a token it cannot use (error 190, no subcode).
fn unparseable_token() -> Response {
    graph_error(StatusCode::BAD_REQUEST, 190, None, "Invalid OAuth access token - Cannot parse access token")
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

async fn upload_session_post(state: &State, node: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(r) = raw_auth(state, &parts.headers) {
        return r;
    }
    let offset = header_u64(&parts.headers, "file_offset").unwrap_or(0);
    let (mut digest, total) = {
        let mut inner = state.lock();
        let Some(Node::Upload { total, digest, busy, handle }) = inner.meta.nodes.get_mut(node) else {
            return err100("Invalid upload session");
        };
        if *busy || handle.is_some() || offset != digest.size() {
            return err_sub(6000, 1_363_037, &format!("file_offset must be {}", digest.size()));
        }
        *busy = true;
        (digest.clone(), *total)
    };
    let keep = total - digest.size();
    let got = consume(body, &mut digest, 0, keep).await;
    let mut inner = state.lock();
    let Some(Node::Upload { digest: d, busy, handle, .. }) = inner.meta.nodes.get_mut(node) else {
        return err100("Invalid upload session");
    };
    *busy = false;
    if got.is_err() {
        return err_sub(6000, 1_363_030, "The upload timed out; resume from file_offset");
    }
    *d = digest;
    if d.size() == total {
        let h = format!("4:{}", token(""));
        *handle = Some(h.clone());
        json(StatusCode::OK, json!({"h": h}))
    } else {
        json(StatusCode::OK, json!({"id": node, "file_offset": d.size()}))
    }
}

async fn rupload_reel(state: &State, vid: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(r) = raw_auth(state, &parts.headers) {
        return r;
    }
    let debug = |m: &str| {
        json(
            StatusCode::BAD_REQUEST,
            json!({"debug_info": {"retriable": false, "type": "ProcessingFailedError", "message": m}}),
        )
    };
    if let Some(url) = parts.headers.get("file_url").and_then(|v| v.to_str().ok()) {
        let fetched = fetch(&state.http, url).await;
        let mut inner = state.lock();
        let Some(Node::Video(v)) = inner.meta.nodes.get_mut(vid) else { return debug("Invalid video id") };
        return match fetched {
            Ok((d, ct)) => {
                v.total = Some(d.size());
                v.media = Some(d.record(ct.as_deref().unwrap_or("video/mp4")));
                v.uploaded_at = Some(now());
                json(StatusCode::OK, json!({"success": true}))
            }
            Err(e) => debug(&e),
        };
    }
    let offset = header_u64(&parts.headers, "offset").unwrap_or(0);
    let Some(size) = header_u64(&parts.headers, "file_size") else { return debug("file_size header is required") };
    let mut digest = {
        let mut inner = state.lock();
        let Some(Node::Video(v)) = inner.meta.nodes.get_mut(vid) else { return debug("Invalid video id") };
        if v.busy || v.media.is_some() || offset != v.digest.size() || v.total.is_some_and(|t| t != size) {
            return debug(&format!("Upload must resume at offset {}", v.digest.size()));
        }
        v.busy = true;
        v.total = Some(size);
        v.digest.clone()
    };
    let keep = size - digest.size();
    let got = consume(body, &mut digest, 0, keep).await;
    let mut inner = state.lock();
    let Some(Node::Video(v)) = inner.meta.nodes.get_mut(vid) else { return debug("Invalid video id") };
    v.busy = false;
    if let Err(e) = got {
        return json(
            StatusCode::BAD_REQUEST,
            json!({"debug_info": {"retriable": true, "type": "PartialRequestError", "message": e}}),
        );
    }
    v.digest = digest;
    if v.digest.size() == size {
        v.media = Some(v.digest.record("video/mp4"));
        v.uploaded_at = Some(now());
    }
    json(StatusCode::OK, json!({"success": true}))
}

// ---- Instagram -----------------------------------------------------------------------------

fn ig_check(state: &State, c: &Caller, ig: &str, port: &str, write: bool) -> Result<String, Response> {
    let inner = state.lock();
    let Some(u) = inner.user("instagram", ig) else {
        return Err(err100(&format!(
            "Object with ID '{ig}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"
        )));
    };
    if !may_act_as_ig(&inner, c, ig, port) {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            10,
            None,
            "(#10) Application does not have permission for this action",
        ));
    }
    if write && !has_scope(c, &["instagram_content_publish", "instagram_business_content_publish"]) {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            10,
            None,
            "(#10) Application does not have permission for this action",
        ));
    }
    Ok(u.handle.clone())
}

fn caption_problem(caption: &str) -> Option<Response> {
    let hashtags = caption.split_whitespace().filter(|w| w.starts_with('#')).count();
    let mentions = caption.split_whitespace().filter(|w| w.starts_with('@')).count();
    if caption.chars().count() > 2200 {
        Some(err_sub(36004, 2_207_010, "The caption is too long: at most 2,200 characters."))
    } else if hashtags > 30 {
        Some(err_sub(100, 2_207_010, "The caption has more than 30 hashtags."))
    } else if mentions > 20 {
        Some(err_sub(100, 2_207_040, "The caption has more than 20 @ tags."))
    } else {
        None
    }
}

async fn ig_container(state: &Arc<State>, g: &GraphReq, c: &Caller, ig: &str, port: &'static str) -> Response {
    if let Err(r) = ig_check(state, c, ig, port, true) {
        return r;
    }
    let carousel_item = g.p("is_carousel_item") == Some("true");
    let kind = match (g.p("media_type"), g.p("image_url"), g.p("video_url")) {
        (None | Some("IMAGE"), Some(_), None) => IgKind::Image,
        (Some("CAROUSEL"), _, _) => IgKind::Carousel,
        (Some("REELS"), _, _) => IgKind::Reels,
        (Some("STORIES"), _, _) => IgKind::Stories,
        (Some("VIDEO"), _, _) if carousel_item => IgKind::Video,
        (Some("VIDEO"), _, _) => {
            return err_sub(
                100,
                2_207_089,
                "The media type VIDEO is no longer supported for single posts. Please use REELS.",
            );
        }
        (None, None, Some(_)) => {
            return err_sub(100, 2_207_089, "A video needs media_type=REELS (or VIDEO for a carousel item).");
        }
        (None, None, None) => return err100("image_url, video_url or media_type is required"),
        _ => return err_sub(100, 2_207_023, "The media type is unknown"),
    };
    let caption = g.p("caption").unwrap_or("").to_owned();
    if carousel_item && !caption.is_empty() {
        return err100("Carousel items cannot have a caption");
    }
    if let Some(r) = caption_problem(&caption) {
        return r;
    }
    let resumable = g.p("upload_type") == Some("resumable");
    let now = now();
    let mut cont = Container {
        ig: ig.to_owned(),
        kind,
        caption,
        carousel_item,
        children: Vec::new(),
        created: now,
        ready_at: None,
        media: None,
        error: None,
        published: None,
        resumable_total: None,
        digest: Digest::default(),
        busy: false,
        options: json!({"media_type": g.p("media_type"), "share_to_feed": g.p("share_to_feed"), "alt_text": g.p("alt_text")}),
    };
    let delay = chrono_dur(state.cfg.processing_delay);
    let mut pull_video = None;
    match kind {
        IgKind::Carousel => {
            let children: Vec<String> = g
                .p("children")
                .map(|c| {
                    let t = c.trim();
                    if t.starts_with('[') {
                        serde_json::from_str::<Vec<Value>>(t)
                            .unwrap_or_default()
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                            .collect()
                    } else {
                        t.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
                    }
                })
                .unwrap_or_default();
            if !(2..=10).contains(&children.len()) {
                return err_sub(100, 2_207_028, "A carousel must have 2 to 10 items");
            }
            let inner = state.lock();
            for ch in &children {
                match inner.meta.nodes.get(ch) {
                    Some(Node::Container(k)) if k.ig == ig && k.carousel_item => {}
                    _ => return err_sub(24, 2_207_006, &format!("The carousel item {ch} was not found")),
                }
            }
            cont.children = children;
        }
        IgKind::Image => {
            let url = g.p("image_url").unwrap_or("");
            // Images are fetched when the container is created.
            match fetch(&state.http, url).await {
                Ok((d, _)) => {
                    if d.sniff() != Some("image/jpeg") {
                        return err_sub(36001, 2_207_005, "The image format is not supported: only JPEG is.");
                    }
                    if d.size() > 8 * 1024 * 1024 {
                        return err_sub(36000, 2_207_004, "The image is larger than 8 MB.");
                    }
                    cont.media = Some(d.record("image/jpeg"));
                    cont.ready_at = Some(now + delay / 2);
                }
                Err(_) => {
                    return err_sub(
                        9004,
                        2_207_052,
                        "The media could not be fetched from this URI. Make sure it is publicly reachable.",
                    );
                }
            }
        }
        IgKind::Video | IgKind::Reels | IgKind::Stories => {
            if resumable {
                cont.resumable_total = Some(0);
            } else if let Some(u) = g.p("video_url") {
                pull_video = Some(u.to_owned());
            } else if let Some(u) = g.p("image_url").filter(|_| kind == IgKind::Stories) {
                match fetch(&state.http, u).await {
                    Ok((d, _)) if d.sniff() == Some("image/jpeg") => {
                        cont.media = Some(d.record("image/jpeg"));
                        cont.ready_at = Some(now + delay / 2);
                    }
                    Ok(_) => return err_sub(36001, 2_207_005, "The image format is not supported: only JPEG is."),
                    Err(_) => return err_sub(9004, 2_207_052, "The media could not be fetched from this URI."),
                }
            } else {
                return err100("video_url is required (or upload_type=resumable)");
            }
        }
    }
    let mut inner = state.lock();
    let id = inner.meta.id(17_900_000_000_000_000);
    inner.meta.nodes.insert(id.clone(), Node::Container(Box::new(cont)));
    drop(inner);
    if let Some(url) = pull_video {
        spawn_container_fetch(state.clone(), id.clone(), url);
    }
    let mut body = json!({"id": id});
    if resumable {
        let ver = g.segs.first().filter(|v| is_version(v)).cloned().unwrap_or_else(|| "v25.0".into());
        body["uri"] = json!(state.bases.url("facebook", &format!("/ig-api-upload/{ver}/{id}")));
    }
    json(StatusCode::OK, body)
}

fn spawn_container_fetch(state: Arc<State>, id: String, url: String) {
    tokio::spawn(async move {
        let r = fetch(&state.http, &url).await;
        finish_container_media(&state, &id, r.map(|(d, _)| d));
    });
}

fn finish_container_media(state: &State, id: &str, r: Result<Digest, String>) {
    let delay = chrono_dur(state.cfg.processing_delay);
    let mut inner = state.lock();
    if let Some(Node::Container(k)) = inner.meta.nodes.get_mut(id) {
        match r {
            Ok(d) => {
                match d.sniff() {
                    Some("video/mp4" | "video/quicktime") => {}
                    _ => {
                        k.error = Some(
                            "2207026: The video format is not supported. Please check the spec for supported formats."
                                .into(),
                        )
                    }
                }
                k.media = Some(d.record("video/mp4"));
            }
            Err(_) => k.error = Some("2207052: The media could not be fetched from this URI.".into()),
        }
        k.ready_at = Some(now() + delay);
    }
}

async fn rupload_ig(state: &Arc<State>, id: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(r) = raw_auth(state, &parts.headers) {
        return r;
    }
    let debug = |m: &str, retriable: bool| {
        json(
            StatusCode::BAD_REQUEST,
            json!({"debug_info": {"retriable": retriable, "type": "ProcessingFailedError", "message": m}}),
        )
    };
    if let Some(url) = parts.headers.get("file_url").and_then(|v| v.to_str().ok()) {
        let r = fetch(&state.http, url).await;
        finish_container_media(state, id, r.map(|(d, _)| d));
        return json(StatusCode::OK, json!({"success": true, "message": "Upload successful."}));
    }
    let offset = header_u64(&parts.headers, "offset").unwrap_or(0);
    let Some(size) = header_u64(&parts.headers, "file_size") else {
        return debug("file_size header is required", false);
    };
    let mut digest = {
        let mut inner = state.lock();
        let Some(Node::Container(k)) = inner.meta.nodes.get_mut(id) else {
            return debug("Invalid container id", false);
        };
        if k.resumable_total.is_none() || k.busy || k.media.is_some() || offset != k.digest.size() {
            return debug(&format!("Upload must resume at offset {}", k.digest.size()), false);
        }
        k.busy = true;
        k.resumable_total = Some(size);
        k.digest.clone()
    };
    let keep = size - digest.size();
    let got = consume(body, &mut digest, 0, keep).await;
    let complete = {
        let mut inner = state.lock();
        let Some(Node::Container(k)) = inner.meta.nodes.get_mut(id) else {
            return debug("Invalid container id", false);
        };
        k.busy = false;
        if let Err(e) = got {
            return debug(&e, true);
        }
        k.digest = digest;
        (k.digest.size() == size).then(|| k.digest.clone())
    };
    if let Some(d) = complete {
        finish_container_media(state, id, Ok(d));
    }
    json(StatusCode::OK, json!({"success": true, "message": "Upload successful."}))
}

/// A container's `status_code` now.
fn container_status(inner: &Inner, k: &Container) -> (&'static str, Option<String>) {
    let now = now();
    if k.published.is_some() {
        return ("PUBLISHED", None);
    }
    if k.created + chrono::Duration::hours(24) <= now {
        return ("EXPIRED", None);
    }
    if let Some(e) = &k.error {
        return ("ERROR", Some(format!("Error: {e}")));
    }
    if k.kind == IgKind::Carousel {
        let mut all = "FINISHED";
        for ch in &k.children {
            if let Some(Node::Container(c)) = inner.meta.nodes.get(ch) {
                match container_status(inner, c).0 {
                    "FINISHED" => {}
                    "ERROR" => return ("ERROR", Some("Error: a carousel item failed".into())),
                    _ => all = "IN_PROGRESS",
                }
            }
        }
        return (all, None);
    }
    match k.ready_at {
        Some(t) if t <= now && k.media.is_some() => ("FINISHED", None),
        _ => ("IN_PROGRESS", None),
    }
}

async fn ig_publish(state: &State, g: &GraphReq, c: &Caller, ig: &str, port: &str) -> Response {
    let handle = match ig_check(state, c, ig, port, true) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let Some(cid) = g.p("creation_id") else { return err100("creation_id is required") };
    let mut inner = state.lock();
    let (status, kind, caption, media, options) = match inner.meta.nodes.get(cid) {
        Some(Node::Container(k)) if k.ig == ig && !k.carousel_item => {
            let (st, _) = container_status(&inner, k);
            let media: Vec<MediaRecord> = if k.kind == IgKind::Carousel {
                k.children
                    .iter()
                    .filter_map(|ch| match inner.meta.nodes.get(ch) {
                        Some(Node::Container(c)) => c.media.clone(),
                        _ => None,
                    })
                    .collect()
            } else {
                k.media.iter().cloned().collect()
            };
            (st, k.kind, k.caption.clone(), media, k.options.clone())
        }
        _ => return err_sub(24, 2_207_008, "The media container does not exist or has expired"),
    };
    match status {
        "FINISHED" => {}
        "IN_PROGRESS" => {
            return err_sub(
                9007,
                2_207_027,
                "Media ID is not available: the media is not ready for publishing, please wait for a moment",
            );
        }
        "EXPIRED" => return err_sub(-2, 2_207_020, "The media container has expired; create a new one"),
        "PUBLISHED" => return err100("This media container was already published"),
        _ => return err_sub(-1, 2_207_032, "The media container failed; create a new one"),
    }
    let limit = state.cfg.instagram_publish_limit;
    let rs = inner.hit(format!("ig:publish:{ig}"), limit, Duration::from_secs(86_400));
    if !rs.allowed {
        return err_sub(
            9,
            2_207_042,
            "The account has reached its limit of posts published through the API in 24 hours",
        );
    }
    let id = inner.meta.id(18_000_000_000_000_000);
    let shortcode: String = uuid::Uuid::new_v4().simple().to_string()[..11].to_owned();
    let path = if kind == IgKind::Reels {
        "reel"
    } else if kind == IgKind::Stories {
        "stories"
    } else {
        "p"
    };
    let permalink = if kind == IgKind::Stories {
        format!("https://www.instagram.com/stories/{handle}/{id}/")
    } else {
        format!("https://www.instagram.com/{path}/{shortcode}/")
    };
    if let Some(Node::Container(k)) = inner.meta.nodes.get_mut(cid) {
        k.published = Some(id.clone());
    }
    inner.meta.nodes.insert(
        id.clone(),
        Node::IgMedia {
            ig: ig.to_owned(),
            caption: caption.clone(),
            kind,
            permalink: permalink.clone(),
            shortcode,
            created: now(),
        },
    );
    let kind_name = match kind {
        IgKind::Image => "image",
        IgKind::Video => "video",
        IgKind::Reels => "reel",
        IgKind::Stories => "story",
        IgKind::Carousel => "carousel",
    };
    inner.record(PostedRecord {
        seq: 0,
        platform: "instagram".into(),
        account_id: ig.to_owned(),
        account_handle: handle,
        id: id.clone(),
        url: Some(permalink),
        text: caption,
        media,
        reply_to: None,
        kind: kind_name.into(),
        status: "published".into(),
        scheduled_for: None,
        options,
        created_at: now(),
    });
    drop(inner);
    answer_or_drop(state, port, json(StatusCode::OK, json!({"id": id})))
}

fn ig_media_json(id: &str, n: &Node, handle: &str) -> Value {
    match n {
        Node::IgMedia { caption, kind, permalink, shortcode, created, .. } => {
            let (mt, pt) = match kind {
                IgKind::Image => ("IMAGE", "FEED"),
                IgKind::Carousel => ("CAROUSEL_ALBUM", "FEED"),
                IgKind::Reels => ("VIDEO", "REELS"),
                IgKind::Stories => ("IMAGE", "STORY"),
                IgKind::Video => ("VIDEO", "FEED"),
            };
            json!({"id": id, "caption": caption, "media_type": mt, "media_product_type": pt, "permalink": permalink,
                "shortcode": shortcode, "timestamp": created.format("%Y-%m-%dT%H:%M:%S+0000").to_string(), "username": handle})
        }
        _ => json!({"id": id}),
    }
}

fn ig_list(state: &State, c: &Caller, ig: &str, port: &str) -> Response {
    let handle = match ig_check(state, c, ig, port, false) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let inner = state.lock();
    let visible_before = now() - chrono_dur(inner.faults.get(port).map(|f| f.listing_lag).unwrap_or_default());
    let mut items: Vec<(DateTime<Utc>, Value)> = inner
        .meta
        .nodes
        .iter()
        .filter_map(|(id, n)| match n {
            Node::IgMedia { ig: i, created, .. } if i == ig && *created <= visible_before => {
                Some((*created, ig_media_json(id, n, &handle)))
            }
            _ => None,
        })
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.0));
    json(StatusCode::OK, json!({"data": items.into_iter().map(|i| i.1).collect::<Vec<_>>()}))
}

fn ig_limit(state: &State, c: &Caller, ig: &str, port: &str) -> Response {
    if let Err(r) = ig_check(state, c, ig, port, false) {
        return r;
    }
    let inner = state.lock();
    let used = inner.windows.get(&format!("ig:publish:{ig}")).filter(|w| w.0 > now()).map(|w| w.1).unwrap_or(0);
    json(
        StatusCode::OK,
        json!({"data": [{"quota_usage": used, "config": {"quota_total": state.cfg.instagram_publish_limit, "quota_duration": 86400}}]}),
    )
}

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
    if let Some(p) = inner.meta.pages.get(node).cloned() {
        if port != "facebook" {
            return err100("Unsupported get request.");
        }
        let with_token = fields.iter().any(|f| f == "access_token") && may_act_as_page(&inner, c, node) && !c.is_page;
        let expand = fields.iter().any(|f| f.starts_with("instagram_business_account{"));
        let v = page_json(&mut inner, c, &p, with_token, expand);
        return json(StatusCode::OK, pick(v, fields));
    }
    let delay = chrono_dur(state.cfg.processing_delay);
    let v = match inner.meta.nodes.get(node) {
        Some(Node::FbPost { message, created, scheduled, deleted: false, .. }) => {
            json!({"id": node, "message": message,
            "created_time": created.format("%Y-%m-%dT%H:%M:%S+0000").to_string(), "permalink_url": format!("https://www.facebook.com/{node}"),
            "is_published": scheduled.is_none(), "scheduled_publish_time": scheduled.map(|s| s.timestamp())})
        }
        Some(Node::Photo { page, .. }) => {
            json!({"id": node, "link": format!("https://www.facebook.com/photo/?fbid={node}&set={page}")})
        }
        Some(Node::Video(v)) => {
            let (vs, pct) = match (&v.error, v.uploaded_at) {
                (Some(_), _) => ("error", 0),
                (None, Some(t)) if t + delay <= now() => ("ready", 100),
                (None, Some(t)) => (
                    "processing",
                    ((now() - t).num_milliseconds() * 100 / delay.num_milliseconds().max(1)).clamp(0, 99),
                ),
                (None, None) => ("upload_incomplete", 0),
            };
            let uploaded = if v.media.is_some() { "complete" } else { "in_progress" };
            let processing = match vs {
                "ready" => "complete",
                "processing" => "in_progress",
                _ => "not_started",
            };
            let publishing = if vs == "ready" && v.finished { "complete" } else { "not_started" };
            let permalink = if v.reel { format!("/reel/{node}") } else { format!("/{}/videos/{node}", v.page) };
            json!({"id": node, "title": v.title, "description": v.description, "permalink_url": permalink,
                "status": {"video_status": vs, "processing_progress": pct,
                    "uploading_phase": {"status": uploaded, "bytes_transfered": v.digest.size().max(v.media.as_ref().map(|m| m.size).unwrap_or(0))},
                    "processing_phase": {"status": processing},
                    "publishing_phase": {"status": publishing, "publish_status": v.post_state}}})
        }
        Some(Node::Container(k)) => {
            let (st, detail) = container_status(&inner, k);
            // `status` is Meta's sentence, `status_code` the machine value.
            let sentence = detail.unwrap_or_else(|| {
                match st {
                    "FINISHED" => "Finished: Media has been uploaded and it is ready to be published.",
                    "IN_PROGRESS" => "In Progress: Media is still being processed.",
                    "PUBLISHED" => "Published: Media has been published.",
                    "EXPIRED" => "Expired: The container was not published within 24 hours and has expired.",
                    _ => "Error: Media could not be processed.",
                }
                .to_owned()
            });
            let mut v = json!({"id": node, "status_code": st, "status": sentence});
            if matches!(k.kind, IgKind::Reels | IgKind::Video) {
                v["copyright_check_status"] = json!({"status": if st == "FINISHED" { "completed" } else { "in_progress" }, "matches_found": false});
            }
            v
        }
        n @ Some(Node::IgMedia { ig, .. }) => {
            let handle = inner.user("instagram", ig).map(|u| u.handle.clone()).unwrap_or_default();
            ig_media_json(node, n.expect("matched"), &handle)
        }
        Some(Node::Upload { digest, .. }) => json!({"id": node, "file_offset": digest.size()}),
        _ => {
            return err100(&format!(
                "Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"
            ));
        }
    };
    json(StatusCode::OK, pick(v, fields))
}

fn delete_node(state: &State, c: &Caller, node: &str) -> Response {
    let mut inner = state.lock();
    let page = match inner.meta.nodes.get(node) {
        Some(Node::FbPost { page, deleted: false, .. }) => page.clone(),
        Some(Node::Video(v)) => v.page.clone(),
        Some(Node::Photo { page, .. }) => page.clone(),
        Some(Node::IgMedia { .. }) => return err100("Unsupported delete request."),
        _ => return err100(&format!("Object with ID '{node}' does not exist")),
    };
    if !may_act_as_page(&inner, c, &page) {
        return no_permission();
    }
    if let Some(Node::FbPost { deleted, .. }) = inner.meta.nodes.get_mut(node) {
        *deleted = true;
    } else {
        inner.meta.nodes.remove(node);
    }
    if let Some(p) = inner.post_mut("facebook", node) {
        p.status = "deleted".into();
    }
    json(StatusCode::OK, json!({"success": true}))
}

/// Adds a text post to a Page, created at `at` (for filling an account; see `Sandbox::fill`).
pub(crate) fn fill_page(inner: &mut Inner, page: &str, text: &str, at: DateTime<Utc>) -> (String, String) {
    let n = inner.meta.id(100_000_000_000_000);
    let id = format!("{page}_{n}");
    inner.meta.nodes.insert(
        id.clone(),
        Node::FbPost { page: page.to_owned(), message: text.to_owned(), created: at, scheduled: None, deleted: false },
    );
    (id.clone(), format!("https://www.facebook.com/{id}"))
}

/// Adds an image post to an Instagram account, created at `at`.
pub(crate) fn fill_ig(inner: &mut Inner, ig: &str, text: &str, at: DateTime<Utc>) -> (String, String) {
    let id = inner.meta.id(18_000_000_000_000_000);
    let shortcode = format!("C{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let permalink = format!("https://www.instagram.com/p/{shortcode}/");
    inner.meta.nodes.insert(
        id.clone(),
        Node::IgMedia {
            ig: ig.to_owned(),
            caption: text.to_owned(),
            kind: IgKind::Image,
            permalink: permalink.clone(),
            shortcode,
            created: at,
        },
    );
    (id, permalink)
}

/// Adds a Page owned by Facebook user `owner` (see `Sandbox::add_page`).
pub(crate) fn add_page(inner: &mut Inner, owner: &str, name: &str) -> String {
    let n = inner.meta.id(20_500_000_000_000);
    inner
        .meta
        .pages
        .insert(n.clone(), Page { id: n.clone(), name: name.to_owned(), owner: owner.to_owned(), instagram: None });
    n
}
