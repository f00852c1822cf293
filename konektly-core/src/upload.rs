//! Uploads: one driver for every chunked or resumable upload protocol.
//!
//! An adapter describes one upload session of its platform's protocol as an [`UploadSession`]
//! — how long the part at an offset is, how a part is sent and what the answer means, how to
//! ask the server what it holds — and hands it to [`drive_upload`], which does the rest the same
//! way for every platform: it reads the media from the checkpointed offset (one part in memory
//! at most; a file or a stored object may be streamed into each request), sends the parts in
//! order, records the [`UploadProgress`] in the adapter's state and saves it after every part,
//! reports progress, refuses a source whose size changed and a plan with too many parts, resumes
//! from the server's offset after a part that failed in a resumable way, and backs off between
//! those retries with one bounded [`Backoff`].
//!
//! The model is `object_store`'s `MultipartUpload` (the protocol) and `WriteMultipart` (the
//! loop).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::media::ChunkReader;
use crate::platform::{CheckpointState, PublishContext};
use crate::{Error, Media, MediaSource, Result};

/// Read size of a part streamed into its request.
const STREAM_PIECE: usize = 256 * 1024;

/// Where an upload stands: what the adapter's checkpoint state records (embedded, or mapped to
/// its own fields) so that a restarted worker continues instead of starting over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadProgress {
    /// Bytes the platform holds (the offset of the next part).
    #[serde(default)]
    pub bytes_sent: u64,
    /// Parts the platform acknowledged (the index of the next part).
    #[serde(default)]
    pub parts_sent: u64,
}

/// One part of the media, as the driver hands it to [`UploadSession::put_part`].
pub struct Part {
    /// The part's index (parts acknowledged before it).
    pub index: u64,
    /// Its first byte's offset in the media.
    pub offset: u64,
    /// Its length in bytes (never 0).
    pub len: u64,
    body: PartBody,
}

enum PartBody {
    /// Read ahead (one part in memory) or sliced from bytes in memory; cheap to clone, so the
    /// HTTP layer may resend it.
    Bytes(Bytes),
    /// Streamed from the source into the request (a file or a stored object).
    Stream(Pin<Box<dyn AsyncRead + Send>>),
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("index", &self.index)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

impl Part {
    /// The part's bytes when they are in memory (`None` when the part is streamed).
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.body {
            PartBody::Bytes(b) => Some(b),
            PartBody::Stream(_) => None,
        }
    }

    /// The last byte's offset (inclusive).
    pub fn last(&self) -> u64 {
        self.offset + self.len - 1
    }

    /// `bytes FIRST-LAST/TOTAL`, the `Content-Range` of this part.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.offset, self.last())
    }

    /// The part's bytes, read whole (tests).
    #[cfg(test)]
    async fn read_all(self) -> Result<Vec<u8>> {
        match self.body {
            PartBody::Bytes(b) => Ok(b.to_vec()),
            PartBody::Stream(mut reader) => {
                let mut out = Vec::new();
                reader.read_to_end(&mut out).await.map_err(|e| Error::transient(e.to_string()))?;
                Ok(out)
            }
        }
    }

    /// The request body (send `Content-Length: len` with a streamed one).
    pub fn into_body(self) -> reqwest::Body {
        match self.body {
            PartBody::Bytes(b) => reqwest::Body::from(b),
            PartBody::Stream(reader) => {
                reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(reader, STREAM_PIECE))
            }
        }
    }
}

/// What the server said after a part (or when asked where it stands).
#[derive(Debug)]
pub enum PartAck {
    /// It holds the first `n` bytes: the next part starts there. Less than what was sent means
    /// the rest is sent again; a part it keeps none of counts as a failed try.
    Holds(u64),
    /// The upload is complete (the session keeps whatever the answer named).
    Done,
    /// The part's fate is unknown, or it was refused in a way the session can recover from:
    /// back off, then ask the server where it stands ([`UploadSession::resume`]) and continue.
    Retry(Error),
    /// The session no longer exists at the server: nothing more can be sent to it.
    Gone,
}

/// How [`drive_upload`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadEnd {
    /// Every byte is at the platform.
    Complete,
    /// The session is gone ([`PartAck::Gone`]): the adapter starts a new one or gives up.
    Gone,
}

/// The one backoff between retries of a part: `first`, doubled each time, at most `max`, for at
/// most `retries` failures in a row (a part the server acknowledges resets the count). No
/// jitter: the waits are exactly known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// How many failed tries in a row are retried; the next one ends the upload with its error.
    pub retries: u32,
    /// The wait before the first retry.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// `retries` retries, waiting `first`, then twice as long each time, at most `max`.
    pub const fn new(retries: u32, first: Duration, max: Duration) -> Self {
        Self { retries, first, max }
    }

    /// `retries` retries without waiting (the server named where to continue).
    pub const fn immediate(retries: u32) -> Self {
        Self { retries, first: Duration::ZERO, max: Duration::ZERO }
    }

    /// The wait before retry number `failure` (1 for the first).
    pub fn delay(&self, failure: u32) -> Duration {
        let factor = 1u32 << failure.saturating_sub(1).min(16);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// How [`drive_upload`] runs one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadPolicy {
    /// Retries of a failed part and the waits between them.
    pub backoff: Backoff,
    /// The most parts the platform takes; the driver refuses to send one more.
    pub max_parts: Option<u64>,
    /// Stream each part of a file or stored object into its request instead of reading it ahead
    /// (a URL source is streamed only when one part is the whole media, else fetched once and
    /// read one part at a time). Streamed parts cannot be resent by the HTTP layer.
    pub streamed: bool,
    /// Ask the server where it stands ([`UploadSession::resume`]) before sending anything: a
    /// session from an earlier attempt may hold more than the checkpoint says.
    pub ask_first: bool,
}

impl UploadPolicy {
    /// Parts read ahead, no part limit, not asking first, with this backoff.
    pub const fn new(backoff: Backoff) -> Self {
        Self { backoff, max_parts: None, streamed: false, ask_first: false }
    }

    /// At most `max` parts.
    pub const fn with_max_parts(mut self, max: u64) -> Self {
        self.max_parts = Some(max);
        self
    }

    /// Parts of files and stored objects streamed.
    pub const fn streamed(mut self) -> Self {
        self.streamed = true;
        self
    }

    /// Asks the server first.
    pub const fn ask_first(mut self, ask: bool) -> Self {
        self.ask_first = ask;
        self
    }
}

/// One upload session of a platform's protocol. The session holds (or borrows) the adapter's
/// checkpoint state, which records the [`UploadProgress`]; the driver saves that state after
/// every part.
#[async_trait]
pub trait UploadSession: Send {
    /// The adapter's checkpoint state.
    type State: CheckpointState + Send + Sync;

    /// The state to save (with the progress recorded in it).
    fn state(&self) -> &Self::State;

    /// Where the upload stands, as the state records it.
    fn progress(&self) -> UploadProgress;

    /// Records where the upload stands in the state (the driver saves it next).
    fn set_progress(&mut self, progress: UploadProgress);

    /// The media's size, as announced to the platform.
    fn total(&self) -> u64;

    /// The length of part `index`, which starts at `offset` (the driver sends no more than what
    /// is left).
    fn part_len(&self, index: u64, offset: u64) -> u64;

    /// Sends one part and reads the answer. An `Err` ends the upload with it.
    async fn put_part(&mut self, ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck>;

    /// After `cause` ([`PartAck::Retry`], or before anything is sent with
    /// [`UploadPolicy::ask_first`]): asks the server what it holds. The default cannot ask, and
    /// ends the upload with `cause`.
    async fn resume(&mut self, _ctx: &mut PublishContext<'_>, cause: Error) -> Result<PartAck> {
        Err(cause)
    }
}

/// Sends `media` through `session`, from where its progress says, until the platform holds it
/// all ([`UploadEnd::Complete`]) or the session is gone ([`UploadEnd::Gone`]).
///
/// After each acknowledged part the progress is recorded in the session's state, the state saved
/// with [`PublishContext::save_state`], and the progress reported with
/// [`PublishContext::report_progress`]. A part answered [`PartAck::Retry`] is retried after the
/// policy's backoff from the offset the server names ([`UploadSession::resume`]); more failures
/// in a row than the backoff allows end the upload with the last error. A source shorter or
/// longer than [`UploadSession::total`], a file whose size changed, and a plan of more parts
/// than [`UploadPolicy::max_parts`] are `Error::Config`.
pub async fn drive_upload<S: UploadSession>(
    ctx: &mut PublishContext<'_>,
    http: &reqwest::Client,
    media: &Media,
    session: &mut S,
    policy: &UploadPolicy,
) -> Result<UploadEnd> {
    let total = session.total();
    check_source_size(media, total).await?;
    let mut source = PartSource { media, http, streamed: policy.streamed, total, reader: None };
    let mut failures = 0u32;
    let mut pending = policy.ask_first.then(|| Error::transient("resuming an upload session from an earlier attempt"));
    loop {
        let progress = session.progress();
        let ack = if let Some(cause) = pending.take() {
            match ask(ctx, session, cause, &mut failures, &policy.backoff).await? {
                PartAck::Holds(n) => {
                    record(ctx, session, UploadProgress { bytes_sent: n.min(total), ..progress }, total).await?;
                    continue;
                }
                other => other,
            }
        } else {
            if progress.bytes_sent >= total {
                source.check_end().await?;
                return Ok(UploadEnd::Complete);
            }
            let len = next_len(session, progress, policy)?;
            let part = source.part(progress.parts_sent, progress.bytes_sent, len).await?;
            let sent_to = part.offset + part.len;
            let ack = session.put_part(ctx, part).await?;
            if let PartAck::Holds(n) = ack {
                acknowledged(ctx, session, progress, n, sent_to, &mut failures, &policy.backoff).await?;
                continue;
            }
            ack
        };
        match ack {
            PartAck::Holds(_) => {}
            PartAck::Done => {
                let done = UploadProgress { bytes_sent: total, parts_sent: progress.parts_sent + 1 };
                record(ctx, session, done, total).await?;
                return Ok(UploadEnd::Complete);
            }
            PartAck::Gone => return Ok(UploadEnd::Gone),
            PartAck::Retry(e) => {
                failures += 1;
                if failures > policy.backoff.retries {
                    return Err(e);
                }
                tokio::time::sleep(policy.backoff.delay(failures)).await;
                pending = Some(e);
            }
        }
    }
}

/// The length of the next part, after checking the part limit (not `async`: the session is
/// not held across a wait, so it need not be `Sync`).
fn next_len<S: UploadSession>(session: &S, progress: UploadProgress, policy: &UploadPolicy) -> Result<u64> {
    if let Some(max) = policy.max_parts
        && progress.parts_sent >= max
    {
        return Err(Error::Config(format!(
            "the upload needs more than {max} parts, the most the platform accepts: use larger parts"
        )));
    }
    let offset = progress.bytes_sent;
    let len = session.part_len(progress.parts_sent, offset).min(session.total().saturating_sub(offset));
    if len == 0 {
        return Err(Error::Config(format!("the upload session planned an empty part at offset {offset}")));
    }
    Ok(len)
}

/// A part answered [`PartAck::Holds`]: records the new offset; a part the server kept none of
/// counts as a failure (no wait: the server answered).
async fn acknowledged<S: UploadSession>(
    ctx: &mut PublishContext<'_>,
    session: &mut S,
    before: UploadProgress,
    holds: u64,
    sent_to: u64,
    failures: &mut u32,
    backoff: &Backoff,
) -> Result<()> {
    let total = session.total();
    if holds > total {
        return Err(Error::transient(format!("the platform says it holds {holds} bytes of a {total}-byte upload")));
    }
    if holds > before.bytes_sent {
        *failures = 0;
    } else {
        *failures += 1;
        if *failures > backoff.retries {
            return Err(Error::transient("the upload session keeps none of the bytes sent"));
        }
    }
    if holds != sent_to {
        tracing::debug!(target: "konektly::upload", sent_to, holds, "continuing from the server's offset");
    }
    let progress = UploadProgress { bytes_sent: holds, parts_sent: before.parts_sent + 1 };
    record(ctx, session, progress, total).await
}

/// Asks the server where it stands until it answers something else than [`PartAck::Retry`],
/// backing off between the asks.
async fn ask<S: UploadSession>(
    ctx: &mut PublishContext<'_>,
    session: &mut S,
    mut cause: Error,
    failures: &mut u32,
    backoff: &Backoff,
) -> Result<PartAck> {
    loop {
        match session.resume(ctx, cause).await? {
            PartAck::Retry(e) => {
                *failures += 1;
                if *failures > backoff.retries {
                    return Err(e);
                }
                tokio::time::sleep(backoff.delay(*failures)).await;
                cause = e;
            }
            other => return Ok(other),
        }
    }
}

/// Records `progress` in the session's state, saves the state and reports the progress.
async fn record<S: UploadSession>(
    ctx: &mut PublishContext<'_>,
    session: &mut S,
    progress: UploadProgress,
    total: u64,
) -> Result<()> {
    if progress == session.progress() {
        return Ok(());
    }
    session.set_progress(progress);
    ctx.save_state(session.state()).await?;
    ctx.report_progress(progress.bytes_sent, total);
    Ok(())
}

/// Bytes in memory and a local file must still have the size announced to the platform.
async fn check_source_size(media: &Media, total: u64) -> Result<()> {
    let now = match &media.source {
        MediaSource::Bytes(bytes) => bytes.len() as u64,
        MediaSource::File(path) => match tokio::fs::metadata(path).await {
            Ok(meta) => meta.len(),
            // Opening it will say what is wrong.
            Err(_) => return Ok(()),
        },
        MediaSource::Url(_) | MediaSource::Stored(_) => return Ok(()),
    };
    if now != total {
        return Err(size_changed(total, now));
    }
    Ok(())
}

fn size_changed(total: u64, now: u64) -> Error {
    Error::Config(format!("the media's size changed: {total} bytes were announced, the source now has {now}"))
}

/// Reads the parts: bytes in memory sliced, files and stored objects streamed (when the policy
/// says so) or read ahead one part at a time through one reader, re-opened at the server's
/// offset whenever it is not where the reader stands.
struct PartSource<'m> {
    media: &'m Media,
    http: &'m reqwest::Client,
    streamed: bool,
    total: u64,
    /// The reader of the read-ahead parts and the offset it stands at.
    reader: Option<(u64, ChunkReader)>,
}

impl PartSource<'_> {
    async fn part(&mut self, index: u64, offset: u64, len: u64) -> Result<Part> {
        let body = match &self.media.source {
            MediaSource::Bytes(bytes) => {
                let have = bytes.len() as u64;
                if offset + len > have {
                    return Err(size_changed(self.total, have));
                }
                PartBody::Bytes(bytes.slice(offset as usize..(offset + len) as usize))
            }
            MediaSource::File(_) | MediaSource::Stored(_) if self.streamed => {
                Self::stream(self.media, self.http, offset, len).await?
            }
            MediaSource::Url(_) if self.streamed && offset == 0 && len == self.total => {
                Self::stream(self.media, self.http, offset, len).await?
            }
            _ => PartBody::Bytes(self.read_ahead(offset, len).await?),
        };
        Ok(Part { index, offset, len, body })
    }

    /// A streamed part (a free function: `&self` held across the read would need `Sync`).
    async fn stream(media: &Media, http: &reqwest::Client, offset: u64, len: u64) -> Result<PartBody> {
        let reader = media.open_at(http, offset).await?.into_inner().take(len);
        Ok(PartBody::Stream(Box::pin(reader)))
    }

    async fn read_ahead(&mut self, offset: u64, len: u64) -> Result<Bytes> {
        let mut chunks = match self.reader.take() {
            Some((at, reader)) if at == offset => reader,
            _ => self.media.open_at(self.http, offset).await?.chunks(STREAM_PIECE),
        };
        let chunk = chunks.next_chunk_of(len as usize).await?.unwrap_or_default();
        if (chunk.len() as u64) < len {
            return Err(Error::Config(format!(
                "the media is shorter than its stated size of {} bytes (the part at {offset} has {} of {len} bytes)",
                self.total,
                chunk.len()
            )));
        }
        self.reader = Some((offset + len, chunks));
        Ok(chunk)
    }

    /// After the last part: a source read here must have nothing more (it grew).
    async fn check_end(&mut self) -> Result<()> {
        if let Some((at, mut chunks)) = self.reader.take()
            && at == self.total
            && let Some(extra) = chunks.next_chunk_of(1).await?
            && !extra.is_empty()
        {
            return Err(Error::Config(format!(
                "the media is longer than its stated size of {} bytes: it changed during the upload",
                self.total
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
