//! The `FILE_UPLOAD` chunk plan, by the media transfer guide's rules: chunks of 5–64 MB, the
//! last one absorbing the trailing bytes (up to 128 MB), `total_chunk_count = floor(size /
//! chunk_size)`, a file under 5 MB — or one that would be a single chunk — sent as one chunk of
//! its own size, at most 1,000 chunks.

use konektly_core::{Error, Result};

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
