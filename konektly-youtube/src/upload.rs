//! The resumable upload of `videos.insert`: start a session, send the file in chunks that are
//! multiples of 256 KiB (never more than one chunk in memory; a file is streamed), trust the server's `Range` over our own
//! count, ask `Content-Range: bytes */TOTAL` after a transport error or a 5xx, and checkpoint the
//! session URI and offset so that a restarted process resumes the same upload.

use std::time::Duration;

use chrono::Utc;
use konektly_core::http::ApiResponse;
use konektly_core::oauth::bearer;
use konektly_core::{AccessToken, CallKind, ChunkReader, Error, Media, MediaSource, PublishContext, Result};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

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

/// One chunk's body: streamed from a file, or bytes read ahead from another source.
pub(crate) struct Chunk {
    len: u64,
    body: reqwest::Body,
}

/// How chunks are read. A file is streamed straight into each request from its offset (reading
/// and sending overlap, and no chunk is ever held whole); bytes already in memory are sliced
/// without copying; a URL is fetched once (not once per chunk) and read one chunk at a time.
enum ChunkSource {
    File { chunk_size: u64 },
    Memory { chunk_size: u64 },
    Buffered(ChunkReader),
}

/// Read size of a streamed chunk body.
const STREAM_BUFFER: usize = 256 * 1024;

impl ChunkSource {
    async fn open(media: &Media, http: &reqwest::Client, offset: u64, chunk_size: usize) -> Result<Self> {
        Ok(match media.source {
            // Stored media is read from the media store at each chunk's offset, like a file.
            MediaSource::File(_) | MediaSource::Stored(_) => ChunkSource::File { chunk_size: chunk_size as u64 },
            MediaSource::Bytes(_) => ChunkSource::Memory { chunk_size: chunk_size as u64 },
            MediaSource::Url(_) => ChunkSource::Buffered(media.open_at(http, offset).await?.chunks(chunk_size)),
        })
    }

    /// The chunk at `offset`, or `None` when everything was sent.
    async fn next(&mut self, media: &Media, http: &reqwest::Client, offset: u64, total: u64) -> Result<Option<Chunk>> {
        match self {
            ChunkSource::File { chunk_size } => {
                let len = (*chunk_size).min(total.saturating_sub(offset));
                if len == 0 {
                    return Ok(None);
                }
                let reader = media.open_at(http, offset).await?.into_inner().take(len);
                let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(reader, STREAM_BUFFER));
                Ok(Some(Chunk { len, body }))
            }
            ChunkSource::Memory { chunk_size } => {
                let MediaSource::Bytes(bytes) = &media.source else { unreachable!("a memory source holds bytes") };
                let start = offset.min(bytes.len() as u64) as usize;
                let end = (offset + *chunk_size).min(bytes.len() as u64) as usize;
                Ok((end > start).then(|| Chunk { len: (end - start) as u64, body: bytes.slice(start..end).into() }))
            }
            ChunkSource::Buffered(chunks) => {
                Ok(chunks.next_chunk().await?.map(|b| Chunk { len: b.len() as u64, body: reqwest::Body::from(b) }))
            }
        }
    }
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
        offset: u64,
        chunk: Chunk,
        total: u64,
    ) -> Result<Answer> {
        let last = offset + chunk.len - 1;
        let req = self
            .upload_http
            .client()
            .put(session)
            .header(AUTHORIZATION, bearer(token))
            .header(CONTENT_TYPE, mime)
            .header(CONTENT_RANGE, format!("bytes {offset}-{last}/{total}"))
            .header(CONTENT_LENGTH, chunk.len)
            .body(chunk.body);
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

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(5);
        (self.retry_delay * factor).min(Duration::from_secs(32))
    }

    /// Uploads `media`, resuming the session in `state` if there is one. Returns the video.
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
        let mut failures: u32 = 0;
        let mut sessions_started = 0;
        if state.session_uri.is_some() && state.total != total {
            // The file changed since the session began: its bytes cannot continue that upload.
            tracing::info!(target: "konektly::youtube", was = state.total, now = total, "the video's size changed; starting a new upload");
            state.session_uri = None;
        }
        // A session from an earlier attempt: ask where it is before sending anything.
        let mut must_ask = state.session_uri.is_some();
        loop {
            let session = match state.session_uri.clone() {
                Some(s) => s,
                None => {
                    if sessions_started >= 2 {
                        return Err(Error::transient("YouTube keeps dropping the upload session"));
                    }
                    sessions_started += 1;
                    let s = self.start_session(ctx.access_token(), opts, &description, media, total).await?;
                    *state = UploadState { session_uri: Some(s.clone()), total, ..UploadState::default() };
                    ctx.save_state(state).await?;
                    must_ask = false;
                    s
                }
            };
            if must_ask {
                match self.query_status(ctx.access_token(), &session, total).await? {
                    Answer::Incomplete(o) => {
                        must_ask = false;
                        if o != state.offset {
                            state.offset = o;
                            ctx.save_state(state).await?;
                        }
                    }
                    Answer::Done(v) => return Ok(v),
                    Answer::Gone => {
                        tracing::info!(target: "konektly::youtube", "the upload session is gone; starting a new upload");
                        state.session_uri = None;
                        continue;
                    }
                    Answer::Retry(e) => {
                        failures += 1;
                        if failures > self.upload_retries {
                            return Err(e);
                        }
                        tokio::time::sleep(self.backoff(failures)).await;
                        continue;
                    }
                }
            }
            // Send from the offset the server confirmed.
            let mut offset = state.offset;
            let mut source = ChunkSource::open(media, self.upload_http.client(), offset, self.chunk_size).await?;
            loop {
                let Some(chunk) = source.next(media, self.upload_http.client(), offset, total).await? else {
                    // Everything was sent but the session has not said it is done: ask it.
                    failures += 1;
                    if failures > self.upload_retries {
                        return Err(Error::transient("the upload session never confirmed the whole file"));
                    }
                    must_ask = true;
                    break;
                };
                let len = chunk.len;
                if offset + len > total {
                    return Err(Error::Config(format!(
                        "the video is larger than its stated size of {total} bytes; the file changed during the upload"
                    )));
                }
                match self.put_chunk(ctx.access_token(), &session, &mime, offset, chunk, total).await? {
                    Answer::Incomplete(o) => {
                        if o > offset {
                            failures = 0;
                        } else {
                            // A session that keeps none of what is sent must not be fed forever.
                            failures += 1;
                            if failures > self.upload_retries {
                                return Err(Error::transient("the upload session keeps none of the bytes sent"));
                            }
                        }
                        state.offset = o;
                        ctx.save_state(state).await?;
                        ctx.report_progress(o, total);
                        if o != offset + len {
                            // The server kept less (or more) than was sent: continue from its count.
                            tracing::debug!(target: "konektly::youtube", sent_to = offset + len, held = o, "resuming from the server's offset");
                            break;
                        }
                        offset = o;
                    }
                    Answer::Done(v) => return Ok(v),
                    Answer::Gone => {
                        tracing::info!(target: "konektly::youtube", "the upload session is gone; starting a new upload");
                        state.session_uri = None;
                        break;
                    }
                    Answer::Retry(e) => {
                        failures += 1;
                        if failures > self.upload_retries {
                            return Err(e);
                        }
                        tokio::time::sleep(self.backoff(failures)).await;
                        must_ask = true;
                        break;
                    }
                }
            }
        }
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
