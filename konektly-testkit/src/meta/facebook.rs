//! The Facebook Pages emulator: Pages and their tokens (`/me/accounts`), feed posts (scheduled
//! too), photos (published or attached to a post), the Pages' post listings, and `GET`/`DELETE`
//! of its nodes. Videos, reels and the upload sessions are in `video.rs`.

pub(super) mod video;

use std::collections::HashMap;
use std::time::Duration;

use axum::response::Response;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::{Value, json};

use super::{Caller, GraphReq, err100, graph_page, has_scope, no_permission, pick};
use crate::digest::{Digest, fetch};
use crate::server::{answer_or_drop, graph_error, json};
use crate::state::{Inner, MediaRecord, PostedRecord, State, chrono_dur, now};

/// A Facebook Page.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub instagram: Option<String>,
}

/// The Facebook emulator's state: the Pages, the Page tokens given out, and the Pages' nodes by
/// Graph id.
#[derive(Default)]
pub(crate) struct FacebookState {
    pub pages: HashMap<String, Page>,
    page_tokens: HashMap<(u64, String), String>,
    posts: HashMap<String, Post>,
    photos: HashMap<String, Photo>,
    videos: HashMap<String, Video>,
    /// Resumable `/{app-id}/uploads` sessions.
    uploads: HashMap<String, Upload>,
}

/// A feed post (the post of a photo or a scheduled post too).
struct Post {
    page: String,
    message: String,
    created: DateTime<Utc>,
    scheduled: Option<DateTime<Utc>>,
    deleted: bool,
}

struct Photo {
    page: String,
    media: MediaRecord,
    published: bool,
    /// An unpublished photo attached to a feed post (once only).
    attached: bool,
}

/// A video or a reel, from its upload to its publishing.
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

/// A resumable upload session of `/{app-id}/uploads`; its handle once complete.
struct Upload {
    total: u64,
    digest: Digest,
    busy: bool,
    handle: Option<String>,
}

// ---- Pages ---------------------------------------------------------------------------------

fn page_token(inner: &mut Inner, c: &Caller, page: &str) -> String {
    if let Some(t) = inner.meta.facebook.page_tokens.get(&(c.grant_id, page.to_owned())) {
        return t.clone();
    }
    let long = inner.access.values().any(|a| a.grant == c.grant_id && a.long_lived && a.subject == c.grant.user);
    // A Page token from a long-lived user token never expires; from a short one it lasts an hour.
    let ttl = if long { None } else { Some(Duration::from_secs(3600)) };
    let t = inner.issue_access("EAAP", c.grant_id, page, ttl, long);
    inner.meta.facebook.page_tokens.insert((c.grant_id, page.to_owned()), t.clone());
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

pub(super) fn accounts(state: &State, g: &GraphReq, c: &Caller, fields: &[String]) -> Response {
    if c.is_page || !has_scope(c, &["pages_show_list"]) {
        return no_permission();
    }
    let mut inner = state.lock();
    let mut pages: Vec<Page> =
        inner.meta.facebook.pages.values().filter(|p| p.owner == c.grant.user).cloned().collect();
    // A stable order, so that cursors page through every Page once.
    pages.sort_by(|a, b| a.id.cmp(&b.id));
    let expand = fields.iter().any(|f| f.starts_with("instagram_business_account{"));
    let data: Vec<Value> = pages.iter().map(|p| pick(page_json(&mut inner, c, p, true, expand), fields)).collect();
    // Paged as Graph pages it: `limit` (25 by default), `after` cursors, `paging.next`.
    json(StatusCode::OK, graph_page(data, g))
}

/// `GET /{page-id}` on the Facebook host; `None` when `node` is no Page.
pub(super) fn get_page(inner: &mut Inner, c: &Caller, node: &str, fields: &[String], port: &str) -> Option<Response> {
    let p = inner.meta.facebook.pages.get(node).cloned()?;
    if port != "facebook" {
        return Some(err100("Unsupported get request."));
    }
    let with_token = fields.iter().any(|f| f == "access_token") && may_act_as_page(inner, c, node) && !c.is_page;
    let expand = fields.iter().any(|f| f.starts_with("instagram_business_account{"));
    let v = page_json(inner, c, &p, with_token, expand);
    Some(json(StatusCode::OK, pick(v, fields)))
}

/// Whether the caller may act as `page`.
fn may_act_as_page(inner: &Inner, c: &Caller, page: &str) -> bool {
    if c.is_page {
        return c.subject == page;
    }
    inner.meta.facebook.pages.get(page).is_some_and(|p| p.owner == c.grant.user)
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

/// The Page's id and name, if the caller may publish to it with a Page token.
fn page_check(state: &State, c: &Caller, page: &str) -> Result<(String, String), Response> {
    let inner = state.lock();
    let Some(p) = inner.meta.facebook.pages.get(page) else {
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

/// Records a Facebook post in the sandbox's post log.
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

// ---- feed posts and photos -----------------------------------------------------------------

/// The photo ids of `attached_media[0]={"media_fbid":"…"}` or `attached_media=[{…}]`.
fn attached_media(g: &GraphReq) -> Vec<String> {
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
    fbids
}

pub(super) async fn page_feed(state: &State, g: &GraphReq, c: &Caller, page: &str) -> Response {
    let p = match page_check(state, c, page) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let scheduled = match schedule_of(g) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let message = g.p("message").unwrap_or("").to_owned();
    let fbids = attached_media(g);
    if message.is_empty() && g.p("link").is_none() && fbids.is_empty() {
        return err100("Please provide a message, a link or attached media.");
    }
    let mut inner = state.lock();
    let mut media = Vec::new();
    for id in &fbids {
        match inner.meta.facebook.photos.get_mut(id) {
            Some(ph) if ph.page == page && !ph.published && !ph.attached => {
                ph.attached = true;
                media.push(ph.media.clone());
            }
            _ => return err100(&format!("attached_media: {id} is not an unpublished photo of this Page")),
        }
    }
    let duplicate = inner
        .meta
        .facebook
        .posts
        .values()
        .any(|post| post.page == page && !post.deleted && !message.is_empty() && post.message == message);
    if duplicate {
        return graph_error(StatusCode::BAD_REQUEST, 506, None, "(#506) Duplicate status message");
    }
    let n = inner.meta.id(100_000_000_000_000);
    let id = format!("{page}_{n}");
    inner.meta.facebook.posts.insert(
        id.clone(),
        Post { page: page.to_owned(), message: message.clone(), created: now(), scheduled, deleted: false },
    );
    let mut opts = json!({});
    if let Some(l) = g.p("link") {
        opts["link"] = json!(l);
    }
    fb_record(&mut inner, &p, &id, "feed", &message, media, scheduled, format!("https://www.facebook.com/{id}"), opts);
    drop(inner);
    answer_or_drop(state, "facebook", json(StatusCode::OK, json!({"id": id})))
}

pub(super) fn page_posts(state: &State, g: &GraphReq, page: &str, scheduled_only: bool) -> Response {
    // `since` / `until`: Unix times bounding `created_time`, as Graph's time-based paging.
    let bound = |k: &str| g.p(k).and_then(|v| v.parse::<i64>().ok()).and_then(|t| DateTime::from_timestamp(t, 0));
    let (since, until) = (bound("since"), bound("until"));
    let inner = state.lock();
    let visible_before = now() - chrono_dur(inner.faults.get("facebook").map(|f| f.listing_lag).unwrap_or_default());
    let mut items: Vec<(DateTime<Utc>, Value)> = inner
        .meta
        .facebook
        .posts
        .iter()
        .filter(|(_, p)| {
            p.page == page
                && !p.deleted
                && p.created <= visible_before
                && (!scheduled_only || p.scheduled.is_some())
                && since.is_none_or(|s| p.created >= s)
                && until.is_none_or(|u| p.created <= u)
        })
        .map(|(id, p)| {
            (
                p.created,
                json!({"id": id, "message": p.message, "created_time": p.created.format("%Y-%m-%dT%H:%M:%S+0000").to_string(),
                    "permalink_url": format!("https://www.facebook.com/{id}"), "is_published": p.scheduled.is_none()}),
            )
        })
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.0));
    json(StatusCode::OK, graph_page(items.into_iter().map(|i| i.1).collect(), g))
}

/// The media of a request: the file part `file_param`, or the URL `url_param` fetched.
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

pub(super) async fn page_photo(state: &State, g: &GraphReq, c: &Caller, page: &str) -> Response {
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
        .facebook
        .photos
        .insert(id.clone(), Photo { page: page.to_owned(), media: media.clone(), published, attached: false });
    if !published && scheduled.is_none() {
        return json(StatusCode::OK, json!({"id": id}));
    }
    let n = inner.meta.id(100_000_000_000_000);
    let post_id = format!("{page}_{n}");
    inner.meta.facebook.posts.insert(
        post_id.clone(),
        Post { page: page.to_owned(), message: caption.clone(), created: now(), scheduled, deleted: false },
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

// ---- nodes ---------------------------------------------------------------------------------

/// `GET /{id}` of a post, photo, video or upload session; `None` when `node` is none of them.
pub(super) fn node_json(fb: &FacebookState, node: &str, delay: chrono::Duration) -> Option<Value> {
    if let Some(p) = fb.posts.get(node).filter(|p| !p.deleted) {
        // Engagement grows with the post's age (summaries as `?fields=reactions.limit(0).summary(true)` gives them).
        let age = (chrono::Utc::now() - p.created).num_seconds().max(0) as u64;
        let summary = |n: u64| json!({"data": [], "summary": {"total_count": n}});
        return Some(json!({"id": node, "message": p.message,
            "created_time": p.created.format("%Y-%m-%dT%H:%M:%S+0000").to_string(), "permalink_url": format!("https://www.facebook.com/{node}"),
            "is_published": p.scheduled.is_none(), "scheduled_publish_time": p.scheduled.map(|s| s.timestamp()),
            "reactions": summary(age / 25), "comments": summary(age / 100), "shares": {"count": age / 300}}));
    }
    if let Some(ph) = fb.photos.get(node) {
        return Some(
            json!({"id": node, "link": format!("https://www.facebook.com/photo/?fbid={node}&set={}", ph.page)}),
        );
    }
    if let Some(v) = fb.videos.get(node) {
        return Some(video::video_json(node, v, delay));
    }
    fb.uploads.get(node).map(|u| json!({"id": node, "file_offset": u.digest.size()}))
}

/// `DELETE /{id}` of a post, photo or video, by a caller that may act as its Page.
pub(super) fn delete_node(inner: &mut Inner, c: &Caller, node: &str) -> Response {
    let fb = &inner.meta.facebook;
    let page = if let Some(p) = fb.posts.get(node).filter(|p| !p.deleted) {
        p.page.clone()
    } else if let Some(v) = fb.videos.get(node) {
        v.page.clone()
    } else if let Some(ph) = fb.photos.get(node) {
        ph.page.clone()
    } else {
        return err100(&format!("Object with ID '{node}' does not exist"));
    };
    if !may_act_as_page(inner, c, &page) {
        return no_permission();
    }
    let fb = &mut inner.meta.facebook;
    if let Some(p) = fb.posts.get_mut(node) {
        p.deleted = true;
    } else {
        fb.videos.remove(node);
        fb.photos.remove(node);
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
    inner.meta.facebook.posts.insert(
        id.clone(),
        Post { page: page.to_owned(), message: text.to_owned(), created: at, scheduled: None, deleted: false },
    );
    (id.clone(), format!("https://www.facebook.com/{id}"))
}

/// Adds a Page owned by Facebook user `owner` (see `Sandbox::add_page`).
pub(crate) fn add_page(inner: &mut Inner, owner: &str, name: &str) -> String {
    let n = inner.meta.id(20_500_000_000_000);
    inner
        .meta
        .facebook
        .pages
        .insert(n.clone(), Page { id: n.clone(), name: name.to_owned(), owner: owner.to_owned(), instagram: None });
    n
}

/// The Page of a live post, video or photo, if the caller may act for it (`Err`: it may not).
pub(super) fn live_object_page(inner: &Inner, c: &Caller, node: &str) -> Option<Result<String, Response>> {
    let fb = &inner.meta.facebook;
    let page = if let Some(p) = fb.posts.get(node).filter(|p| !p.deleted) {
        if p.scheduled.is_some_and(|t| t > Utc::now()) {
            return Some(Err(err100("(#100) A scheduled post cannot be commented on before it is published")));
        }
        p.page.clone()
    } else if let Some(v) = fb.videos.get(node) {
        v.page.clone()
    } else if let Some(ph) = fb.photos.get(node) {
        ph.page.clone()
    } else {
        return None;
    };
    Some(if may_act_as_page(inner, c, &page) { Ok(page) } else { Err(no_permission()) })
}

/// `POST /{post-id}?message=…` (a feed post) or `POST /{video-id}?description=…`: an edit.
pub(super) fn edit_node(inner: &mut Inner, g: &GraphReq, c: &Caller, node: &str) -> Response {
    let page = match live_object_page(inner, c, node) {
        Some(Ok(p)) => p,
        Some(Err(r)) => return r,
        None => return err100("Unsupported post request."),
    };
    let _ = page;
    let fb = &mut inner.meta.facebook;
    let change = if let (Some(p), Some(m)) = (fb.posts.get_mut(node), g.p("message")) {
        p.message = m.to_owned();
        json!({"message": m})
    } else if let (Some(v), Some(d)) = (fb.videos.get_mut(node), g.p("description")) {
        v.description = d.to_owned();
        json!({"description": d})
    } else {
        return err100("(#100) Nothing to update: give message (a post) or description (a video)");
    };
    inner.meta.edits.push((node.to_owned(), change));
    json(StatusCode::OK, json!({"success": true}))
}
