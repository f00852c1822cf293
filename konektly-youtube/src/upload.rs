//! The resumable upload of `videos.insert`: start a session, send the file in chunks that are
//! multiples of 256 KiB (never more than one chunk in memory; a file is streamed), trust the server's `Range` over our own
//! count, ask `Content-Range: bytes */TOTAL` after a transport error or a 5xx, and checkpoint the
//! session URI and offset so that a restarted process resumes the same upload.

use std::time::Duration;

use chrono::Utc;
use konektly_core::http::ApiResponse;
use konektly_core::oauth::bearer;
use konektly_core::upload::{
    Backoff, Part, PartAck, UploadEnd, UploadPolicy, UploadProgress, UploadSession, drive_upload,
};
use konektly_core::{AccessToken, CallKind, Error, Media, PublishContext, Result, async_trait};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};

use crate::error::map_api_error;
use crate::model::{UploadState, Video, YouTubeOptions};
use crate::platform::YouTubePlatform;

/// What the upload session says.
#[derive(Debug)]
pub(crate) enum Answer {
    /// `308`: the server holds this many bytes; send from there.
    Incomplete(u64),
    /// `200`/`201`: the video exists.
    Done(Video),
    /// `404`/`410`: the session is gone; a new upload must start.
    Gone,
    /// A transport error or a 5xx: ask the session where it is, then continue.
    Retry(Error),
}

/// Reads `Range: bytes=0-N` as the next offset (`N + 1`); no header means nothing is stored.
pub(crate) fn next_offset(headers: &reqwest::header::HeaderMap) -> Result<u64> {
    let Some(v) = headers.get(RANGE) else { return Ok(0) };
    let s = v.to_str().unwrap_or_default().trim();
    let next = s
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .and_then(|(_, end)| end.trim().parse::<u64>().ok())
        // `checked_add`: `bytes=0-18446744073709551615` overflowed (a panic in debug builds).
        .and_then(|last| last.checked_add(1))
        .ok_or_else(|| Error::transient(format!("the upload session answered an unreadable Range {s:?}")))?;
    Ok(next)
}

fn as_transient(e: Error) -> Error {
    match e {
        // The session is resumable: whatever happened to a chunk, asking the session is safe.
        Error::UnknownOutcome { message, source } => Error::Transient { message, retry_after: None, source },
        other => other,
    }
}

impl YouTubePlatform {
    /// Reads an answer of the session URI (a chunk or a status query).
    async fn session_answer(&self, sent: Result<reqwest::Response>, kind: CallKind) -> Result<Answer> {
        let resp = match sent {
            Ok(r) => r,
            Err(e @ (Error::Transient { .. } | Error::UnknownOutcome { .. })) => {
                return Ok(Answer::Retry(as_transient(e)));
            }
            Err(e) => return Err(e),
        };
        let api = match ApiResponse::read(resp, kind).await {
            Ok(a) => a,
            Err(e) => return Ok(Answer::Retry(as_transient(e))),
        };
        match api.status.as_u16() {
            308 => Ok(Answer::Incomplete(next_offset(&api.headers)?)),
            200 | 201 => match api.json::<Video>() {
                Ok(v) if !v.id.is_empty() => Ok(Answer::Done(v)),
                _ => Ok(Answer::Retry(Error::transient("the finished upload's answer named no video"))),
            },
            404 | 410 => Ok(Answer::Gone),
            s if s >= 500 || s == 408 => Ok(Answer::Retry(as_transient(map_api_error(
                api.status,
                &api.headers,
                &api.body,
                CallKind::Idempotent,
                Utc::now(),
            )))),
            _ => Err(map_api_error(api.status, &api.headers, &api.body, kind, Utc::now())),
        }
    }

    /// Asks the session how much it holds: `PUT` with `Content-Range: bytes */TOTAL` and no body.
    pub(crate) async fn query_status(&self, token: &AccessToken, session: &str, total: u64) -> Result<Answer> {
        let req = self
            .http
            .client()
            .put(session)
            .header(AUTHORIZATION, bearer(token))
            .header(CONTENT_RANGE, format!("bytes */{total}"))
            .header(CONTENT_LENGTH, 0)
            .body(Vec::new());
        let sent = self.http.send(req, CallKind::Idempotent).await;
        self.session_answer(sent, CallKind::Idempotent).await
    }

    async fn put_chunk(
        &self,
        token: &AccessToken,
        session: &str,
        mime: &str,
        part: Part,
        total: u64,
    ) -> Result<Answer> {
        let (range, len) = (part.content_range(total), part.len);
        let req = self
            .upload_http
            .client()
            .put(session)
            .header(AUTHORIZATION, bearer(token))
            .header(CONTENT_TYPE, mime)
            .header(CONTENT_RANGE, range)
            .header(CONTENT_LENGTH, len)
            .body(part.into_body());
        // `Create`: the HTTP layer must not resend a chunk on its own; a failure is followed by
        // a status query instead.
        let sent = self.upload_http.send(req, CallKind::Create).await;
        self.session_answer(sent, CallKind::Create).await
    }

    /// Starts a session: `POST …/videos?uploadType=resumable&part=snippet,status` with the
    /// metadata; the session URI comes back in `Location`.
    async fn start_session(
        &self,
        token: &AccessToken,
        opts: &YouTubeOptions,
        description: &str,
        media: &Media,
        total: u64,
    ) -> Result<String> {
        let mut query = vec![("uploadType", "resumable"), ("part", "snippet,status")];
        if let Some(n) = opts.notify_subscribers {
            query.push(("notifySubscribers", if n { "true" } else { "false" }));
        }
        let url = self.upload_url("videos", &query);
        let body = serde_json::to_vec(&opts.video_resource(description, &self.default_category_id))
            .map_err(|e| Error::Config(format!("the video metadata does not serialize: {e}")))?;
        let req = self
            .http
            .client()
            .post(url.clone())
            .header(AUTHORIZATION, bearer(token))
            .header(CONTENT_TYPE, "application/json; charset=UTF-8")
            .header("X-Upload-Content-Length", total)
            .header("X-Upload-Content-Type", media.mime.essence_str())
            .body(body);
        let api = self.call(req, CallKind::Create).await?;
        let location = api
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::transient("YouTube started an upload session but gave no Location"))?;
        let session = url
            .join(location)
            .map_err(|_| Error::transient("YouTube answered an unreadable upload session Location"))?;
        Ok(session.to_string())
    }

    /// Uploads `media`, resuming the session in `state` if there is one (asking it first where
    /// it stands), through core's upload driver. A session that is gone is replaced, once.
    /// Returns the video.
    pub(crate) async fn upload(
        &self,
        ctx: &mut PublishContext<'_>,
        state: &mut UploadState,
        media: &Media,
        opts: &YouTubeOptions,
    ) -> Result<Video> {
        let total = media.require_size()?;
        let mime = media.mime.essence_str().to_owned();
        let description = ctx.content.text.clone();
        let mut sessions_started = 0;
        if state.session_uri.is_some() && state.total != total {
            // The file changed since the session began: its bytes cannot continue that upload.
            tracing::info!(target: "konektly::youtube", was = state.total, now = total, "the video's size changed; starting a new upload");
            state.session_uri = None;
        }
        // A session from an earlier attempt: ask where it is before sending anything.
        let mut resumed = state.session_uri.is_some();
        let backoff = Backoff::new(self.upload_retries, self.retry_delay, MAX_BACKOFF);
        loop {
            let uri = match state.session_uri.clone() {
                Some(s) => s,
                None => {
                    if sessions_started >= 2 {
                        return Err(Error::transient("YouTube keeps dropping the upload session"));
                    }
                    sessions_started += 1;
                    let s = self.start_session(ctx.access_token(), opts, &description, media, total).await?;
                    *state = UploadState { session_uri: Some(s.clone()), total, ..UploadState::default() };
                    ctx.save_state(state).await?;
                    resumed = false;
                    s
                }
            };
            let policy = UploadPolicy::new(backoff).streamed().ask_first(resumed);
            let mut session = Resumable { platform: self, state: &mut *state, uri, mime: &mime, total, video: None };
            match drive_upload(ctx, self.upload_http.client(), media, &mut session, &policy).await? {
                UploadEnd::Complete => {
                    return session
                        .video
                        .ok_or_else(|| Error::transient("the upload session never confirmed the whole file"));
                }
                UploadEnd::Gone => {
                    tracing::info!(target: "konektly::youtube", "the upload session is gone; starting a new upload");
                    state.session_uri = None;
                }
            }
        }
    }
}

/// The longest wait between retries of a chunk.
const MAX_BACKOFF: Duration = Duration::from_secs(32);

/// One resumable session: chunks of the configured size (a multiple of 256 KiB) streamed from
/// the source, each `PUT` with its `Content-Range`; the server's `Range` is trusted over our
/// count, and after a transport error or a 5xx the session is asked (`bytes */TOTAL`). The
/// progress is the state's `offset`.
struct Resumable<'a> {
    platform: &'a YouTubePlatform,
    state: &'a mut UploadState,
    uri: String,
    mime: &'a str,
    total: u64,
    /// The video, once the session answered with it.
    video: Option<Video>,
}

impl Resumable<'_> {
    /// A session answer as the driver reads it.
    fn ack(&mut self, answer: Answer) -> PartAck {
        match answer {
            // Everything was sent but the session has not said it is done: ask it.
            Answer::Incomplete(o) if o >= self.total => {
                PartAck::Retry(Error::transient("the upload session never confirmed the whole file"))
            }
            Answer::Incomplete(o) => PartAck::Holds(o),
            Answer::Done(v) => {
                self.video = Some(v);
                PartAck::Done
            }
            Answer::Gone => PartAck::Gone,
            Answer::Retry(e) => PartAck::Retry(e),
        }
    }
}

#[async_trait]
impl UploadSession for Resumable<'_> {
    type State = UploadState;

    fn state(&self) -> &UploadState {
        self.state
    }

    fn progress(&self) -> UploadProgress {
        UploadProgress { bytes_sent: self.state.offset, parts_sent: 0 }
    }

    fn set_progress(&mut self, progress: UploadProgress) {
        self.state.offset = progress.bytes_sent;
    }

    fn total(&self) -> u64 {
        self.total
    }

    fn part_len(&self, _index: u64, _offset: u64) -> u64 {
        self.platform.chunk_size as u64
    }

    async fn put_part(&mut self, ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck> {
        let answer = self.platform.put_chunk(ctx.access_token(), &self.uri, self.mime, part, self.total).await?;
        Ok(self.ack(answer))
    }

    async fn resume(&mut self, ctx: &mut PublishContext<'_>, _cause: Error) -> Result<PartAck> {
        let answer = self.platform.query_status(ctx.access_token(), &self.uri, self.total).await?;
        Ok(self.ack(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_read_as_the_next_offset() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(next_offset(&h).unwrap(), 0, "no Range: nothing stored");
        h.insert(RANGE, "bytes=0-262143".parse().unwrap());
        assert_eq!(next_offset(&h).unwrap(), 262_144);
        h.insert(RANGE, "garbage".parse().unwrap());
        assert!(next_offset(&h).is_err());
    }
}
