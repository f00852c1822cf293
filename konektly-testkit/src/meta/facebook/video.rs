//! Page videos and reels: a video in one call (`source`, `file_url`, or the handle of a
//! resumable `/{app-id}/uploads` session), the legacy `start`/`transfer`/`finish` phases, reels
//! (`start`, the bytes to `rupload`, `finish`), and the videos' status.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::{Upload, Video, fb_record, media_from, page_check, schedule_of};
use crate::digest::{Digest, consume, fetch, is_video};
use crate::meta::{Caller, GraphReq, err_sub, err100, header_u64, is_version, raw_auth};
use crate::server::{answer_or_drop, graph_error, json};
use crate::state::{State, now, token};

/// The legacy phases' chunk size.
const CHUNK: u64 = 4 * 1024 * 1024;

/// The digest so far of the video uploading in legacy session `session`.
pub(in crate::meta) fn session_digest(state: &State, session: &str) -> Option<Digest> {
    let inner = state.lock();
    inner.meta.facebook.videos.values().find(|v| v.legacy_session.as_deref() == Some(session)).map(|v| v.digest.clone())
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

/// `POST /{page-id}/videos`: one call, or a phase of the legacy upload.
pub(in crate::meta) async fn page_video(state: &Arc<State>, g: &GraphReq, c: &Caller, page: &str) -> Response {
    let p = match page_check(state, c, page) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match g.p("upload_phase") {
        Some("start") => legacy_start(state, g, page),
        Some("transfer") => legacy_transfer(state, g),
        Some("finish") => legacy_finish(state, g, page, &p),
        Some(_) => err100("upload_phase must be start, transfer or finish"),
        None => one_call(state, g, page, &p).await,
    }
}

fn legacy_start(state: &State, g: &GraphReq, page: &str) -> Response {
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
    inner.meta.facebook.videos.insert(vid.clone(), v);
    json(
        StatusCode::OK,
        json!({"video_id": vid, "upload_session_id": session, "start_offset": "0", "end_offset": size.min(CHUNK).to_string()}),
    )
}

fn legacy_transfer(state: &State, g: &GraphReq) -> Response {
    let session = g.p("upload_session_id").unwrap_or("");
    let start = g.p("start_offset").and_then(|s| s.parse::<u64>().ok()).unwrap_or(u64::MAX);
    let Some((_, d, _)) = g.files.iter().find(|f| f.0 == "video_file_chunk") else {
        return err100("video_file_chunk is required");
    };
    let mut inner = state.lock();
    let Some(v) = inner.meta.facebook.videos.values_mut().find(|v| v.legacy_session.as_deref() == Some(session)) else {
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
    json(StatusCode::OK, json!({"start_offset": v.digest.size().to_string(), "end_offset": next_end.to_string()}))
}

fn legacy_finish(state: &State, g: &GraphReq, page: &str, p: &(String, String)) -> Response {
    let session = g.p("upload_session_id").unwrap_or("").to_owned();
    let scheduled = match schedule_of(g) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut inner = state.lock();
    let found = inner
        .meta
        .facebook
        .videos
        .iter_mut()
        .find(|(_, v)| v.legacy_session.as_deref() == Some(session.as_str()))
        .map(|(id, v)| (id.clone(), v));
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
        p,
        &vid,
        "video",
        &text,
        vec![rec],
        scheduled,
        format!("https://www.facebook.com/{page}/videos/{vid}"),
        json!({"title": g.p("title")}),
    );
    drop(inner);
    answer_or_drop(state, "facebook", json(StatusCode::OK, json!({"success": true})))
}

/// A video in one call: `source`, a `file_url` (fetched), or a handle from an `/{app-id}/uploads`
/// session.
async fn one_call(state: &State, g: &GraphReq, page: &str, p: &(String, String)) -> Response {
    let scheduled = match schedule_of(g) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let media = if let Some(h) = g.p("fbuploader_video_file_chunk") {
        let inner = state.lock();
        let found = inner
            .meta
            .facebook
            .uploads
            .values()
            .find(|u| u.handle.as_deref() == Some(h))
            .map(|u| u.digest.record("video/mp4"));
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
    inner.meta.facebook.videos.insert(vid.clone(), v);
    fb_record(
        &mut inner,
        p,
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

/// `POST /{page-id}/video_reels`: `start` (30 a day per Page) or `finish`.
pub(in crate::meta) async fn page_reel(state: &Arc<State>, g: &GraphReq, c: &Caller, page: &str) -> Response {
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
            inner.meta.facebook.videos.insert(vid.clone(), new_video(page, true, g));
            let ver = g.segs.first().filter(|v| is_version(v)).cloned().unwrap_or_else(|| "v25.0".into());
            let url = state.bases.url("facebook", &format!("/video-upload/{ver}/{vid}"));
            json(StatusCode::OK, json!({"video_id": vid, "upload_url": url}))
        }
        Some("finish") => reel_finish(state, g, page, &p),
        _ => err100("upload_phase must be start or finish"),
    }
}

fn reel_finish(state: &State, g: &GraphReq, page: &str, p: &(String, String)) -> Response {
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
    let Some(v) = inner.meta.facebook.videos.get_mut(&vid).filter(|v| v.page == page && v.reel) else {
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
            p,
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

/// A video's `GET /{id}`: its status through upload, processing and publishing.
pub(super) fn video_json(node: &str, v: &Video, delay: chrono::Duration) -> Value {
    let (vs, pct) = match (&v.error, v.uploaded_at) {
        (Some(_), _) => ("error", 0),
        (None, Some(t)) if t + delay <= now() => ("ready", 100),
        (None, Some(t)) => {
            ("processing", ((now() - t).num_milliseconds() * 100 / delay.num_milliseconds().max(1)).clamp(0, 99))
        }
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

// ---- byte uploads --------------------------------------------------------------------------

/// `POST /{app-id}/uploads`: a resumable upload session.
pub(in crate::meta) fn upload_session_start(state: &State, g: &GraphReq) -> Response {
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
        .facebook
        .uploads
        .insert(id.clone(), Upload { total: len, digest: Digest::default(), busy: false, handle: None });
    json(StatusCode::OK, json!({"id": id}))
}

/// `POST /{version}/upload:…`: bytes of a session from `file_offset`; its handle once complete.
pub(in crate::meta) async fn upload_session_post(state: &State, node: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(r) = raw_auth(state, &parts.headers) {
        return r;
    }
    let offset = header_u64(&parts.headers, "file_offset").unwrap_or(0);
    let (mut digest, total) = {
        let mut inner = state.lock();
        let Some(Upload { total, digest, busy, handle }) = inner.meta.facebook.uploads.get_mut(node) else {
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
    let Some(Upload { digest: d, busy, handle, .. }) = inner.meta.facebook.uploads.get_mut(node) else {
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

/// `POST /video-upload/{version}/{video-id}`: a reel's bytes (`offset`, `file_size`), or its
/// `file_url` fetched.
pub(in crate::meta) async fn rupload_reel(state: &State, vid: &str, req: Request) -> Response {
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
        let Some(v) = inner.meta.facebook.videos.get_mut(vid) else { return debug("Invalid video id") };
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
        let Some(v) = inner.meta.facebook.videos.get_mut(vid) else { return debug("Invalid video id") };
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
    let Some(v) = inner.meta.facebook.videos.get_mut(vid) else { return debug("Invalid video id") };
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
