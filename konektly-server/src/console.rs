//! The web console: a few static pages built into the binary (`assets/console/`: one HTML
//! shell, a stylesheet and a script), served at `/` and `/console/…`, that call the `/v1` API
//! with `fetch` and the API key the user signed in with (kept in the tab's `sessionStorage`,
//! never in a URL). No separate front end to run or build.
//!
//! Pages: sign in, accounts (connect through the platform's real redirect, back to the
//! console), compose (uploads with progress, per-platform previews, live validation through
//! `POST /v1/posts/validate`, scheduling with an `Idempotency-Key`), posts (by day, each
//! target's state, refreshed), webhooks (endpoints, their secret shown once, the delivery log
//! with replays). Every console response carries a strict Content-Security-Policy: no inline
//! script or style, requests to this origin only.
//!
//! Also the HTML helpers of the server's own pages (the OAuth callback, the API reference).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use konektly_core::PlatformId;
use serde::Serialize;

use crate::AppState;

const SHELL: &str = include_str!("../assets/console/index.html");
const SCRIPT: &str = include_str!("../assets/console/app.js");
const STYLE: &str = include_str!("../assets/console/app.css");

/// The console's pages (each is the same shell; the script shows the one its path names).
pub const PAGES: [&str; 4] = ["accounts", "compose", "posts", "webhooks"];

/// The Content-Security-Policy of the console's pages: scripts, styles and requests from this
/// origin only, images also from `blob:` (previews of files being uploaded), no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The platforms the console offers, in its order, with their names for people.
const PLATFORMS: [(&str, &str); 6] = [
    ("x", "X"),
    ("tiktok", "TikTok"),
    ("facebook", "Facebook Page"),
    ("instagram", "Instagram"),
    ("youtube", "YouTube"),
    ("bluesky", "Bluesky"),
];

/// The console's routes: `/`, `/console`, `/console/{page}`, its script and stylesheet, and
/// `/console/platforms.json` (the registered platforms' text and media limits, for previews).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(shell))
        .route("/console", get(shell))
        .route("/console/{page}", get(named_page))
        .route("/console/assets/app.js", get(script))
        .route("/console/assets/app.css", get(style))
        .route("/console/platforms.json", get(platforms))
}

fn hardened(mut r: Response, content_type: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn shell() -> Response {
    hardened(SHELL.into_response(), "text/html; charset=utf-8")
}

async fn named_page(Path(name): Path<String>) -> Response {
    if PAGES.contains(&name.as_str()) {
        return shell().await;
    }
    let body = page("Not found", "<p>No such page. <a href=\"/\">The console</a>.</p>");
    hardened((StatusCode::NOT_FOUND, body).into_response(), "text/html; charset=utf-8")
}

async fn script() -> Response {
    hardened(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    hardened(STYLE.into_response(), "text/css; charset=utf-8")
}

/// What the console's previews need of a platform.
#[derive(Debug, Serialize)]
struct PlatformView {
    id: &'static str,
    name: &'static str,
    /// `chars`, `utf16`, `bytes` or `weighted` (X).
    counting: serde_json::Value,
    max_text_len: usize,
    max_media_per_post: usize,
    media_required: bool,
    media_kinds: Vec<serde_json::Value>,
}

async fn platforms(State(s): State<Arc<AppState>>) -> Response {
    let views: Vec<PlatformView> = PLATFORMS
        .iter()
        .filter_map(|(id, name)| {
            let caps = s.engine.platform(&PlatformId::new(*id)).ok()?.capabilities();
            Some(PlatformView {
                id,
                name,
                counting: serde_json::to_value(caps.text_counting).unwrap_or_default(),
                max_text_len: caps.max_text_len,
                max_media_per_post: caps.max_media_per_post,
                media_required: caps.media_required,
                media_kinds: caps.media.iter().map(|m| serde_json::to_value(m.kind).unwrap_or_default()).collect(),
            })
        })
        .collect();
    hardened(axum::Json(views).into_response(), "application/json")
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page with `title` (escaped here) and `body` (HTML, escaped by the caller).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t} · konektly</title><style>{CSS}</style></head><body><header><b>konektly</b></header><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title)
    )
}

const CSS: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1f}header{background:#1b1b1f;color:#fff;padding:.6em 1.2em}\
main{max-width:60em;margin:1em auto;padding:0 1em}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left}\
code{background:#f2f2f5;padding:0 .2em}";

/// The API reference page: every operation of the OpenAPI document, grouped by tag.
pub fn reference(doc: &utoipa::openapi::OpenApi) -> String {
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let tag = op.tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_default();
            let summary = op.summary.clone().or_else(|| op.description.clone()).unwrap_or_default();
            rows.push_str(&format!(
                "<tr><td>{}</td><td><code>{method} {}</code></td><td>{}</td></tr>",
                escape(&tag),
                escape(path),
                escape(&summary)
            ));
        }
    }
    page(
        "API reference",
        &format!(
            "<p>The machine-readable document: <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI 3.1). \
             Authenticate with <code>Authorization: Bearer &lt;API key&gt;</code>; errors are RFC 9457 \
             <code>application/problem+json</code>.</p><table><tr><th>Tag</th><th>Operation</th><th>What it does</th></tr>{rows}</table>"
        ),
    )
}
