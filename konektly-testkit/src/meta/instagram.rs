//! The Instagram emulator (Graph API, through a Page's token on the Facebook host or through
//! Instagram Login on its own): media containers (images fetched at once, videos fetched or
//! uploaded resumably, carousels of 2–10) that finish after a delay, `media_publish` with its
//! daily limit, the account's media and its publishing limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::{Value, json};

use super::{Caller, GraphReq, err_sub, err100, has_scope, header_u64, is_version, raw_auth};
use crate::digest::{Digest, consume, fetch};
use crate::server::{answer_or_drop, graph_error, json};
use crate::state::{Inner, MediaRecord, PostedRecord, State, chrono_dur, now};

/// The Instagram emulator's state: containers and published media, by Graph id.
#[derive(Default)]
pub(crate) struct InstagramState {
    containers: HashMap<String, Container>,
    pub(super) media: HashMap<String, IgMedia>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IgKind {
    Image,
    Video,
    Reels,
    Stories,
    Carousel,
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

/// A published media item.
pub(super) struct IgMedia {
    ig: String,
    caption: String,
    kind: IgKind,
    permalink: String,
    shortcode: String,
    created: DateTime<Utc>,
}

/// The account's handle, if the caller may read it (and publish, with `write`).
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

/// Whether the caller may publish for Instagram account `ig`.
fn may_act_as_ig(inner: &Inner, c: &Caller, ig: &str, port: &str) -> bool {
    if port == "instagram" {
        return c.subject == ig;
    }
    inner
        .meta
        .facebook
        .pages
        .values()
        .any(|p| p.instagram.as_deref() == Some(ig) && (p.id == c.subject || p.owner == c.grant.user))
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

// ---- containers ----------------------------------------------------------------------------

/// The kind of container a `POST /{ig-id}/media` asks for.
fn container_kind(g: &GraphReq, carousel_item: bool) -> Result<IgKind, Response> {
    Ok(match (g.p("media_type"), g.p("image_url"), g.p("video_url")) {
        (None | Some("IMAGE"), Some(_), None) => IgKind::Image,
        (Some("CAROUSEL"), _, _) => IgKind::Carousel,
        (Some("REELS"), _, _) => IgKind::Reels,
        (Some("STORIES"), _, _) => IgKind::Stories,
        (Some("VIDEO"), _, _) if carousel_item => IgKind::Video,
        (Some("VIDEO"), _, _) => {
            return Err(err_sub(
                100,
                2_207_089,
                "The media type VIDEO is no longer supported for single posts. Please use REELS.",
            ));
        }
        (None, None, Some(_)) => {
            return Err(err_sub(100, 2_207_089, "A video needs media_type=REELS (or VIDEO for a carousel item)."));
        }
        (None, None, None) => return Err(err100("image_url, video_url or media_type is required")),
        _ => return Err(err_sub(100, 2_207_023, "The media type is unknown")),
    })
}

/// `children`: a JSON array or a comma-separated list of container ids.
fn carousel_children(g: &GraphReq) -> Vec<String> {
    g.p("children")
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
        .unwrap_or_default()
}

/// Fills the new container's media as its kind wants: a carousel's items checked, an image
/// fetched now, a video left to upload or to fetch (its URL is returned).
async fn container_media(
    state: &State,
    g: &GraphReq,
    cont: &mut Container,
    resumable: bool,
) -> Result<Option<String>, Response> {
    let delay = chrono_dur(state.cfg.processing_delay);
    let now = cont.created;
    match cont.kind {
        IgKind::Carousel => {
            let children = carousel_children(g);
            if !(2..=10).contains(&children.len()) {
                return Err(err_sub(100, 2_207_028, "A carousel must have 2 to 10 items"));
            }
            let inner = state.lock();
            for ch in &children {
                match inner.meta.instagram.containers.get(ch) {
                    Some(k) if k.ig == cont.ig && k.carousel_item => {}
                    _ => return Err(err_sub(24, 2_207_006, &format!("The carousel item {ch} was not found"))),
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
                        return Err(err_sub(36001, 2_207_005, "The image format is not supported: only JPEG is."));
                    }
                    if d.size() > 8 * 1024 * 1024 {
                        return Err(err_sub(36000, 2_207_004, "The image is larger than 8 MB."));
                    }
                    cont.media = Some(d.record("image/jpeg"));
                    cont.ready_at = Some(now + delay / 2);
                }
                Err(_) => {
                    return Err(err_sub(
                        9004,
                        2_207_052,
                        "The media could not be fetched from this URI. Make sure it is publicly reachable.",
                    ));
                }
            }
        }
        IgKind::Video | IgKind::Reels | IgKind::Stories => {
            if resumable {
                cont.resumable_total = Some(0);
            } else if let Some(u) = g.p("video_url") {
                return Ok(Some(u.to_owned()));
            } else if let Some(u) = g.p("image_url").filter(|_| cont.kind == IgKind::Stories) {
                match fetch(&state.http, u).await {
                    Ok((d, _)) if d.sniff() == Some("image/jpeg") => {
                        cont.media = Some(d.record("image/jpeg"));
                        cont.ready_at = Some(now + delay / 2);
                    }
                    Ok(_) => {
                        return Err(err_sub(36001, 2_207_005, "The image format is not supported: only JPEG is."));
                    }
                    Err(_) => return Err(err_sub(9004, 2_207_052, "The media could not be fetched from this URI.")),
                }
            } else {
                return Err(err100("video_url is required (or upload_type=resumable)"));
            }
        }
    }
    Ok(None)
}

/// `POST /{ig-id}/media`: a container; with `upload_type=resumable`, the `uri` to upload to.
pub(super) async fn container(state: &Arc<State>, g: &GraphReq, c: &Caller, ig: &str, port: &'static str) -> Response {
    if let Err(r) = ig_check(state, c, ig, port, true) {
        return r;
    }
    let carousel_item = g.p("is_carousel_item") == Some("true");
    let kind = match container_kind(g, carousel_item) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let caption = g.p("caption").unwrap_or("").to_owned();
    if carousel_item && !caption.is_empty() {
        return err100("Carousel items cannot have a caption");
    }
    if let Some(r) = caption_problem(&caption) {
        return r;
    }
    let resumable = g.p("upload_type") == Some("resumable");
    let mut cont = Container {
        ig: ig.to_owned(),
        kind,
        caption,
        carousel_item,
        children: Vec::new(),
        created: now(),
        ready_at: None,
        media: None,
        error: None,
        published: None,
        resumable_total: None,
        digest: Digest::default(),
        busy: false,
        options: json!({"media_type": g.p("media_type"), "share_to_feed": g.p("share_to_feed"), "alt_text": g.p("alt_text")}),
    };
    let pull_video = match container_media(state, g, &mut cont, resumable).await {
        Ok(url) => url,
        Err(r) => return r,
    };
    let mut inner = state.lock();
    let id = inner.meta.id(17_900_000_000_000_000);
    inner.meta.instagram.containers.insert(id.clone(), cont);
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
    if let Some(k) = inner.meta.instagram.containers.get_mut(id) {
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

/// `POST /ig-api-upload/{version}/{container-id}`: a container's video bytes (`offset`,
/// `file_size`), or its `file_url` fetched.
pub(super) async fn rupload(state: &Arc<State>, id: &str, req: Request) -> Response {
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
        let Some(k) = inner.meta.instagram.containers.get_mut(id) else {
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
        let Some(k) = inner.meta.instagram.containers.get_mut(id) else {
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
fn container_status(ig: &InstagramState, k: &Container) -> (&'static str, Option<String>) {
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
            if let Some(c) = ig.containers.get(ch) {
                match container_status(ig, c).0 {
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

// ---- publishing ----------------------------------------------------------------------------

/// The permalink of a published item.
fn permalink(kind: IgKind, handle: &str, id: &str, shortcode: &str) -> String {
    let path = if kind == IgKind::Reels {
        "reel"
    } else if kind == IgKind::Stories {
        "stories"
    } else {
        "p"
    };
    if kind == IgKind::Stories {
        format!("https://www.instagram.com/stories/{handle}/{id}/")
    } else {
        format!("https://www.instagram.com/{path}/{shortcode}/")
    }
}

/// The post log's name of a kind.
fn kind_name(kind: IgKind) -> &'static str {
    match kind {
        IgKind::Image => "image",
        IgKind::Video => "video",
        IgKind::Reels => "reel",
        IgKind::Stories => "story",
        IgKind::Carousel => "carousel",
    }
}

/// `POST /{ig-id}/media_publish`: publishes a finished container (a daily limit per account).
pub(super) async fn publish(state: &State, g: &GraphReq, c: &Caller, ig: &str, port: &str) -> Response {
    let handle = match ig_check(state, c, ig, port, true) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let Some(cid) = g.p("creation_id") else { return err100("creation_id is required") };
    let mut inner = state.lock();
    let igs = &inner.meta.instagram;
    let (status, kind, caption, media, options) = match igs.containers.get(cid) {
        Some(k) if k.ig == ig && !k.carousel_item => {
            let (st, _) = container_status(igs, k);
            let media: Vec<MediaRecord> = if k.kind == IgKind::Carousel {
                k.children.iter().filter_map(|ch| igs.containers.get(ch).and_then(|c| c.media.clone())).collect()
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
    let permalink = permalink(kind, &handle, &id, &shortcode);
    if let Some(k) = inner.meta.instagram.containers.get_mut(cid) {
        k.published = Some(id.clone());
    }
    inner.meta.instagram.media.insert(
        id.clone(),
        IgMedia {
            ig: ig.to_owned(),
            caption: caption.clone(),
            kind,
            permalink: permalink.clone(),
            shortcode,
            created: now(),
        },
    );
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
        kind: kind_name(kind).into(),
        status: "published".into(),
        scheduled_for: None,
        options,
        created_at: now(),
    });
    drop(inner);
    answer_or_drop(state, port, json(StatusCode::OK, json!({"id": id})))
}

// ---- media, limits, nodes ------------------------------------------------------------------

fn media_json(id: &str, m: &IgMedia, handle: &str) -> Value {
    let (mt, pt) = match m.kind {
        IgKind::Image => ("IMAGE", "FEED"),
        IgKind::Carousel => ("CAROUSEL_ALBUM", "FEED"),
        IgKind::Reels => ("VIDEO", "REELS"),
        IgKind::Stories => ("IMAGE", "STORY"),
        IgKind::Video => ("VIDEO", "FEED"),
    };
    let age = (chrono::Utc::now() - m.created).num_seconds().max(0) as u64;
    json!({"id": id, "caption": m.caption, "media_type": mt, "media_product_type": pt, "permalink": m.permalink,
        "shortcode": m.shortcode, "timestamp": m.created.format("%Y-%m-%dT%H:%M:%S+0000").to_string(), "username": handle,
        "like_count": age / 20, "comments_count": age / 90})
}

/// `GET /{ig-id}/media`: the account's media, newest first.
pub(super) fn list(state: &State, c: &Caller, ig: &str, port: &str) -> Response {
    let handle = match ig_check(state, c, ig, port, false) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let inner = state.lock();
    let visible_before = now() - chrono_dur(inner.faults.get(port).map(|f| f.listing_lag).unwrap_or_default());
    let mut items: Vec<(DateTime<Utc>, Value)> = inner
        .meta
        .instagram
        .media
        .iter()
        .filter(|(_, m)| m.ig == ig && m.created <= visible_before)
        .map(|(id, m)| (m.created, media_json(id, m, &handle)))
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.0));
    json(StatusCode::OK, json!({"data": items.into_iter().map(|i| i.1).collect::<Vec<_>>()}))
}

/// `GET /{ig-id}/content_publishing_limit`.
pub(super) fn limit(state: &State, c: &Caller, ig: &str, port: &str) -> Response {
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

/// `GET /{id}` of a container or a media item; `None` when `node` is neither.
pub(super) fn node_json(inner: &Inner, node: &str) -> Option<Value> {
    let igs = &inner.meta.instagram;
    if let Some(k) = igs.containers.get(node) {
        let (st, detail) = container_status(igs, k);
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
            v["copyright_check_status"] =
                json!({"status": if st == "FINISHED" { "completed" } else { "in_progress" }, "matches_found": false});
        }
        return Some(v);
    }
    let m = igs.media.get(node)?;
    let handle = inner.user("instagram", &m.ig).map(|u| u.handle.clone()).unwrap_or_default();
    Some(media_json(node, m, &handle))
}

/// Adds an image post to an Instagram account, created at `at`.
pub(crate) fn fill_ig(inner: &mut Inner, ig: &str, text: &str, at: DateTime<Utc>) -> (String, String) {
    let id = inner.meta.id(18_000_000_000_000_000);
    let shortcode = format!("C{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let permalink = format!("https://www.instagram.com/p/{shortcode}/");
    inner.meta.instagram.media.insert(
        id.clone(),
        IgMedia {
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

/// The Instagram account that owns published media `node`, if it is one.
pub(super) fn media_owner(inner: &Inner, node: &str) -> Option<String> {
    inner.meta.instagram.media.get(node).map(|m| m.ig.clone())
}
