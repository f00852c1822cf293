//! The `FILE_UPLOAD` upload: the chunk plan, by the media transfer guide's rules: chunks of 5–64 MB, the
//! last one absorbing the trailing bytes (up to 128 MB), `total_chunk_count = floor(size /
//! chunk_size)`, a file under 5 MB — or one that would be a single chunk — sent as one chunk of
//! its own size, at most 1,000 chunks.

use konektly_core::upload::{
    Backoff, Part, PartAck, UploadEnd, UploadPolicy, UploadProgress, UploadSession, drive_upload,
};
use konektly_core::{Error, PublishContext, Result, async_trait};

use crate::model::State;
use crate::platform::TikTokPlatform;

const MB: u64 = 1024 * 1024;
/// Smallest chunk (but for a single-chunk file).
pub const MIN_CHUNK: u64 = 5 * MB;
/// Largest chunk (but for the last, which may be up to twice this).
pub const MAX_CHUNK: u64 = 64 * MB;
/// Most chunks per upload.
pub const MAX_CHUNKS: u64 = 1000;

/// How a file is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    /// The file's size.
    pub video_size: u64,
    /// `source_info.chunk_size`.
    pub chunk_size: u64,
    /// `source_info.total_chunk_count`.
    pub total_chunks: u64,
}

impl ChunkPlan {
    /// The plan for a file of `size` bytes with the preferred chunk size (5–64 MB).
    pub fn new(size: u64, preferred: u64) -> Result<Self> {
        if size == 0 {
            return Err(Error::Config("the video is empty".into()));
        }
        let single = Self { video_size: size, chunk_size: size, total_chunks: 1 };
        if size < MIN_CHUNK {
            return Ok(single);
        }
        let mut chunk = preferred.clamp(MIN_CHUNK, MAX_CHUNK);
        let mut count = size / chunk;
        if count <= 1 {
            if size <= MAX_CHUNK {
                return Ok(single);
            }
            // Over 64 MB must be several chunks: two, the second absorbing the odd byte.
            chunk = size / 2;
            count = 2;
        }
        if count > MAX_CHUNKS {
            chunk = size.div_ceil(MAX_CHUNKS);
            count = size / chunk;
            if chunk > MAX_CHUNK {
                return Err(Error::Config(format!("a video of {size} bytes is too large for TikTok's upload")));
            }
        }
        Ok(Self { video_size: size, chunk_size: chunk, total_chunks: count })
    }

    /// The first and last byte (inclusive) of chunk `index` (0-based).
    pub fn range(&self, index: u64) -> (u64, u64) {
        let first = index * self.chunk_size;
        let last = if index + 1 >= self.total_chunks { self.video_size - 1 } else { first + self.chunk_size - 1 };
        (first, last)
    }

    /// The `Content-Range` header of chunk `index`.
    pub fn content_range(&self, index: u64) -> String {
        let (first, last) = self.range(index);
        format!("bytes {first}-{last}/{}", self.video_size)
    }
}

/// Chunks are retried only after an out-of-order refusal, and only when TikTok holds more than
/// the checkpoint says (it names where to go on: no wait).
const CHUNK_POLICY: UploadPolicy = UploadPolicy::new(Backoff::immediate(3)).with_max_parts(MAX_CHUNKS);

/// Whole chunks of `plan` in its first `bytes` bytes (the last one ends at the video's size).
fn chunks_in(plan: &ChunkPlan, bytes: u64) -> u64 {
    (0..plan.total_chunks).take_while(|i| plan.range(*i).1 < bytes).count() as u64
}

/// One `FILE_UPLOAD`: the chunk plan announced at init, each chunk `PUT` to the upload URL with
/// its `Content-Range`; the progress is the state's `chunks_sent`.
struct Chunks<'a> {
    platform: &'a TikTokPlatform,
    state: &'a mut State,
    plan: ChunkPlan,
    url: String,
    content_type: String,
}

#[async_trait]
impl UploadSession for Chunks<'_> {
    type State = State;

    fn state(&self) -> &State {
        self.state
    }

    fn progress(&self) -> UploadProgress {
        let sent = self.state.chunks_sent.min(self.plan.total_chunks);
        let bytes = if sent >= self.plan.total_chunks { self.plan.video_size } else { self.plan.range(sent).0 };
        UploadProgress { bytes_sent: bytes, parts_sent: sent }
    }

    fn set_progress(&mut self, progress: UploadProgress) {
        self.state.chunks_sent = chunks_in(&self.plan, progress.bytes_sent);
    }

    fn total(&self) -> u64 {
        self.plan.video_size
    }

    fn part_len(&self, _index: u64, offset: u64) -> u64 {
        let (first, last) = self.plan.range(chunks_in(&self.plan, offset));
        last + 1 - first
    }

    async fn put_part(&mut self, _ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck> {
        let range = part.content_range(self.plan.video_size);
        let held = part.offset + part.len;
        let chunk = part.bytes().cloned().ok_or_else(|| Error::Config("TikTok's chunks are read ahead".into()))?;
        match self.platform.client.upload_chunk(&self.url, &self.content_type, &range, chunk).await {
            Ok(()) => Ok(PartAck::Holds(held)),
            Err(e @ Error::Rejected { .. }) if is_url_expired(&e) => Err(e),
            // Out of order: an earlier copy landed but its answer was lost. Ask TikTok.
            Err(e @ Error::Rejected { .. }) if self.state.publish_id.is_some() => Ok(PartAck::Retry(e)),
            Err(e) => Err(e),
        }
    }

    /// Asks TikTok how many bytes it holds and goes on from there, unless that is no more than
    /// the checkpoint says (then the refusal stands).
    async fn resume(&mut self, ctx: &mut PublishContext<'_>, cause: Error) -> Result<PartAck> {
        let pid = self.state.publish_id.clone().unwrap_or_default();
        let st = self.platform.client.status(ctx.access_token(), &pid).await?;
        let held = st.uploaded_bytes.unwrap_or(0).min(self.plan.video_size);
        let chunks = chunks_in(&self.plan, held);
        if chunks <= self.state.chunks_sent {
            return Err(cause);
        }
        tracing::info!(target: "konektly::tiktok", held, chunks, "TikTok holds more than the checkpoint says; going on from there");
        let offset = if chunks >= self.plan.total_chunks { self.plan.video_size } else { self.plan.range(chunks).0 };
        Ok(PartAck::Holds(offset))
    }
}

impl TikTokPlatform {
    /// Sends the remaining chunks through core's upload driver, checkpointing after each. A
    /// chunk refused as out of order (its earlier copy landed but the answer was lost) makes it
    /// ask TikTok how many bytes it holds and go on from there, at most a few times.
    pub(crate) async fn upload(&self, ctx: &mut PublishContext<'_>, state: &mut State) -> Result<()> {
        let content = ctx.content;
        let media = content.media.first().ok_or_else(|| Error::Config("no video to upload".into()))?;
        let url = state.upload_url.clone().ok_or_else(|| Error::transient("TikTok gave no upload URL"))?;
        let plan = state.chunk_plan();
        let content_type = media.mime.essence_str().to_owned();
        let mut session = Chunks { platform: self, state, plan, url, content_type };
        match drive_upload(ctx, self.client.http.client(), media, &mut session, &CHUNK_POLICY).await? {
            UploadEnd::Complete => Ok(()),
            UploadEnd::Gone => Err(Error::transient("TikTok dropped the upload")),
        }
    }
}

/// Whether TikTok refused a chunk because the upload URL expired (the upload starts over).
pub(crate) fn is_url_expired(e: &Error) -> bool {
    matches!(e, Error::Rejected { code: Some(c), .. } if c == crate::client::UPLOAD_URL_EXPIRED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(plan: &ChunkPlan) {
        let mut next = 0;
        for i in 0..plan.total_chunks {
            let (a, b) = plan.range(i);
            assert_eq!(a, next, "chunks are contiguous");
            let len = b - a + 1;
            if plan.total_chunks > 1 {
                assert!(len >= MIN_CHUNK, "chunk {i} is {len} bytes");
                if i + 1 < plan.total_chunks {
                    assert!(len <= MAX_CHUNK);
                } else {
                    assert!(len <= 2 * MAX_CHUNK);
                }
            }
            next = b + 1;
        }
        assert_eq!(next, plan.video_size, "the chunks cover the file");
        assert!(plan.total_chunks >= 1 && plan.total_chunks <= MAX_CHUNKS);
        assert_eq!(plan.total_chunks, (plan.video_size / plan.chunk_size).max(1), "count = floor(size / chunk)");
    }

    #[test]
    fn small_files_are_one_chunk_of_their_own_size() {
        let p = ChunkPlan::new(3 * MB, 10 * MB).unwrap();
        assert_eq!(p, ChunkPlan { video_size: 3 * MB, chunk_size: 3 * MB, total_chunks: 1 });
        assert_eq!(p.content_range(0), format!("bytes 0-{}/{}", 3 * MB - 1, 3 * MB));
        check(&p);
    }

    #[test]
    fn a_file_that_would_be_one_chunk_is_sent_whole() {
        // 15 MB with 10 MB chunks: floor = 1 → one chunk of 15 MB, not chunk_size 10 MB.
        let p = ChunkPlan::new(15 * MB, 10 * MB).unwrap();
        assert_eq!(p, ChunkPlan { video_size: 15 * MB, chunk_size: 15 * MB, total_chunks: 1 });
        check(&p);
    }

    #[test]
    fn the_last_chunk_absorbs_the_remainder() {
        let size = 25 * MB + 123;
        let p = ChunkPlan::new(size, 10 * MB).unwrap();
        assert_eq!((p.chunk_size, p.total_chunks), (10 * MB, 2));
        assert_eq!(p.content_range(0), format!("bytes 0-{}/{size}", 10 * MB - 1));
        assert_eq!(p.content_range(1), format!("bytes {}-{}/{size}", 10 * MB, size - 1));
        check(&p);
    }

    #[test]
    fn over_64_mb_is_never_one_chunk() {
        let size = 100 * MB;
        let p = ChunkPlan::new(size, 64 * MB).unwrap();
        assert_eq!(p.total_chunks, 2);
        check(&p);
    }

    #[test]
    fn preferred_sizes_are_clamped_and_counts_capped() {
        let p = ChunkPlan::new(4 * 1024 * MB, 1).unwrap();
        assert_eq!(p.chunk_size, MIN_CHUNK);
        check(&p);
        let p = ChunkPlan::new(4 * 1024 * MB, 1 << 40).unwrap();
        assert_eq!(p.chunk_size, MAX_CHUNK);
        check(&p);
        for size in [5 * MB, 5 * MB + 1, 64 * MB, 64 * MB + 1, 128 * MB - 1, 999 * MB + 7, 4096 * MB] {
            check(&ChunkPlan::new(size, 10 * MB).unwrap());
        }
        assert!(ChunkPlan::new(0, 10 * MB).is_err());
    }
}
