//! Media: where an image or video comes from, what it is (sniffed from its bytes, never from its
//! name), and the facts validation needs (size, dimensions, duration, codecs, frame and bit
//! rates), read from headers without decoding. Reading is streamed: [`ChunkReader`] holds at most
//! one chunk in memory.
//!
//! Probing treats every file as hostile: it reads a bounded amount, in bounded time, never
//! panics, and records a file it finds malformed in [`Media::probe_error`] (see `probe`).

mod probe;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mime::Mime;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};
use url::Url;

use crate::error::{Error, Result};

/// Where a media item's bytes are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum MediaSource {
    /// A local file, read when it is uploaded.
    File(PathBuf),
    /// A URL the bytes can be fetched from (or that a platform fetches itself).
    Url(Url),
    /// Bytes in memory (small media only: they are stored with the post).
    Bytes(#[serde(with = "base64_bytes")] Bytes),
    /// An object of the engine's media store, by the SHA-256 of its bytes: what a scheduled
    /// post's local media become (see [`MediaStore`](crate::MediaStore)). Read through the
    /// store, which the engine attaches in a worker.
    Stored(crate::media_store::StoredMedia),
}

/// What kind of media an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A still image (JPEG, PNG, WebP…).
    Image,
    /// An animated GIF.
    Gif,
    /// A video.
    Video,
    /// Anything else.
    Other,
}

impl MediaKind {
    /// The kind of a MIME type.
    pub fn of(mime: &Mime) -> Self {
        match (mime.type_(), mime.subtype()) {
            (mime::IMAGE, mime::GIF) => MediaKind::Gif,
            (mime::IMAGE, _) => MediaKind::Image,
            (mime::VIDEO, _) => MediaKind::Video,
            _ => MediaKind::Other,
        }
    }
}

/// One image or video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Media {
    /// Where the bytes are.
    pub source: MediaSource,
    /// The MIME type, sniffed from the content.
    #[serde(with = "mime_serde")]
    pub mime: Mime,
    /// Size in bytes, when known.
    #[serde(default)]
    pub size: Option<u64>,
    /// Width in pixels, when known. A video's is as shown: a track turned a quarter (a phone
    /// filming upright) swaps width and height.
    #[serde(default)]
    pub width: Option<u32>,
    /// Height in pixels, when known.
    #[serde(default)]
    pub height: Option<u32>,
    /// Duration of a video, when known.
    #[serde(default, with = "crate::model::option_duration_ms")]
    pub duration: Option<Duration>,
    /// Alt text, for platforms that take it.
    #[serde(default)]
    pub alt_text: Option<String>,
    /// The codec of a video's (first) video track, read from its sample description: `"h264"`
    /// (`avc1`/`avc3`), `"hevc"` (`hvc1`/`hev1`), `"av1"`, `"vp9"`, `"vp8"`, `"mpeg4"`
    /// (`mp4v`), `"h263"`, `"prores"`, or the sample entry's four-character code for anything
    /// else. `None` when not probed (URL media) or when the file has no video track.
    ///
    /// Platforms differ here (most take H.264, some HEVC too): a platform's
    /// [`VideoFormat`](crate::VideoFormat) bounds are checked by
    /// [`validate_against_capabilities`](crate::validate_against_capabilities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// The codec of a video's (first) audio track: `"aac"` (`mp4a` holding AAC), `"mp3"`,
    /// `"opus"`, `"flac"`, `"alac"`, `"ac3"`, `"eac3"`, `"pcm"`, `"mp4a"` (MPEG-4 audio other
    /// than AAC and MP3), or the sample entry's four-character code. `None` when not probed or
    /// when the file has no audio track. Checked like `video_codec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    /// Frames per second of a video's video track (sample count over the track's duration; an
    /// average for a variable frame rate), to 1/1000. Probed; checked like `video_codec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Average bits per second of a video: its size × 8 over its duration (container included).
    /// Probed; checked like `video_codec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    /// Why the probe found the file malformed: a video whose boxes cannot be read (a box of size
    /// 0 inside the movie header, a truncated file, no movie header…), an image whose header is
    /// corrupt or cut off. The other facts are then unknown;
    /// [`validate_against_capabilities`](crate::validate_against_capabilities) refuses the item
    /// with a `media_unreadable` violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<String>,
}

impl Media {
    /// Reads a file's type, size and facts from its headers (the file itself is read only when it
    /// is uploaded). The probe reads a bounded part of the file in bounded time; a malformed file
    /// is not an error here but a [`Media::probe_error`], which validation reports. An error is
    /// a file that cannot be opened or read, or that is not a regular file.
    pub async fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || probe_file(&path))
            .await
            .map_err(|e| Error::Config(format!("media probe panicked: {e}")))?
    }

    /// Media from bytes in memory; the facts are read from them (bounded, as with
    /// [`Media::from_file`]; a malformed file gets a [`Media::probe_error`]).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes: Bytes = bytes.into();
        let facts = probe::probe_bytes(&bytes);
        let size = bytes.len() as u64;
        Self::probed(MediaSource::Bytes(bytes), size, facts)
    }

    fn probed(source: MediaSource, size: u64, facts: probe::Facts) -> Self {
        Self {
            source,
            mime: facts.mime,
            size: Some(size),
            width: facts.width,
            height: facts.height,
            duration: facts.duration,
            alt_text: None,
            video_codec: facts.video_codec,
            audio_codec: facts.audio_codec,
            frame_rate: facts.frame_rate,
            bit_rate: facts.bit_rate,
            probe_error: facts.probe_error,
        }
    }

    /// Media at a URL, of a type the caller states (nothing is fetched here).
    pub fn from_url(url: Url, mime: Mime) -> Self {
        Self {
            source: MediaSource::Url(url),
            mime,
            size: None,
            width: None,
            height: None,
            duration: None,
            alt_text: None,
            video_codec: None,
            audio_codec: None,
            frame_rate: None,
            bit_rate: None,
            probe_error: None,
        }
    }

    /// Sets the alt text.
    pub fn with_alt_text(mut self, alt: impl Into<String>) -> Self {
        self.alt_text = Some(alt.into());
        self
    }

    /// Sets the size (for URL media whose size is known).
    pub fn with_size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Sets the width and height in pixels (for URL media whose dimensions are known).
    pub fn with_dimensions(mut self, width: u32, height: u32) -> Self {
        self.width = Some(width);
        self.height = Some(height);
        self
    }

    /// Sets the duration (for URL media whose length is known). Validation needs, for media
    /// given by URL (nothing is probed): the size (`with_size`; YouTube's resumable upload
    /// needs it), the dimensions (`with_dimensions`; pixel and aspect rules) and, for videos,
    /// the duration — a fact left unknown is not checked, and the platform may still refuse.
    pub fn with_duration(mut self, duration: std::time::Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// The kind of media.
    pub fn kind(&self) -> MediaKind {
        MediaKind::of(&self.mime)
    }

    /// Width / height, when both are known.
    pub fn aspect_ratio(&self) -> Option<f64> {
        match (self.width, self.height) {
            (Some(w), Some(h)) if h > 0 => Some(f64::from(w) / f64::from(h)),
            _ => None,
        }
    }

    /// The size, or an error naming the media when it is unknown (chunked uploads need it).
    pub fn require_size(&self) -> Result<u64> {
        self.size.ok_or_else(|| Error::Config("the media's size is unknown; give it with Media::with_size".into()))
    }

    /// Opens the bytes for reading from `offset` (a file is seeked, not read from the start; a
    /// URL is fetched with a `Range` request; stored media is read from the media store, a
    /// missing object being [`Error::MediaUnreadable`]).
    pub async fn open_at(&self, http: &reqwest::Client, offset: u64) -> Result<MediaReader> {
        match &self.source {
            MediaSource::File(path) => {
                let mut file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| Error::Config(format!("cannot open media file {}: {e}", path.display())))?;
                if offset > 0 {
                    file.seek(std::io::SeekFrom::Start(offset))
                        .await
                        .map_err(|e| Error::Config(format!("cannot seek media file {}: {e}", path.display())))?;
                }
                Ok(MediaReader(Box::pin(file)))
            }
            MediaSource::Stored(stored) => stored.open_at(offset).await,
            MediaSource::Bytes(bytes) => {
                let start = (offset as usize).min(bytes.len());
                Ok(MediaReader(Box::pin(std::io::Cursor::new(bytes.slice(start..)))))
            }
            MediaSource::Url(url) => {
                let mut req = http.get(url.clone());
                if offset > 0 {
                    req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
                }
                let resp = req.send().await.map_err(|e| Error::Transient {
                    message: format!("cannot fetch media: {}", e.without_url()),
                    retry_after: None,
                    source: None,
                })?;
                let status = resp.status();
                if offset > 0 && status != reqwest::StatusCode::PARTIAL_CONTENT {
                    return Err(Error::Transient {
                        message: format!("the media server did not honour a ranged read (status {status})"),
                        retry_after: None,
                        source: None,
                    });
                }
                if !status.is_success() {
                    return Err(Error::Transient {
                        message: format!("cannot fetch media: status {status}"),
                        retry_after: None,
                        source: None,
                    });
                }
                use futures_util::TryStreamExt;
                let stream = resp.bytes_stream().map_err(std::io::Error::other);
                Ok(MediaReader(Box::pin(tokio_util::io::StreamReader::new(stream))))
            }
        }
    }

    /// All the bytes, for small media (images). Refuses anything over `max` bytes.
    pub async fn read_all(&self, http: &reqwest::Client, max: u64) -> Result<Bytes> {
        if let MediaSource::Bytes(b) = &self.source {
            return Ok(b.clone());
        }
        let mut reader = self.open_at(http, 0).await?;
        let mut buf = Vec::with_capacity(self.size.unwrap_or(0).min(max) as usize);
        let n = (&mut reader.0)
            .take(max + 1)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| Error::transient(format!("cannot read media: {e}")))?;
        if n as u64 > max {
            return Err(Error::Config(format!("media larger than {max} bytes cannot be read whole")));
        }
        Ok(Bytes::from(buf))
    }
}

/// A media item's bytes, as an async reader.
pub struct MediaReader(Pin<Box<dyn AsyncRead + Send>>);

impl std::fmt::Debug for MediaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaReader")
    }
}

impl MediaReader {
    /// A reader of any source (a [`MediaStore`](crate::MediaStore) returns its objects so).
    pub fn new(reader: Pin<Box<dyn AsyncRead + Send>>) -> Self {
        Self(reader)
    }

    /// Reads in chunks of `chunk_size` bytes.
    pub fn chunks(self, chunk_size: usize) -> ChunkReader {
        ChunkReader { reader: self, chunk_size, buf: BytesMut::new() }
    }

    /// The reader inside.
    pub fn into_inner(self) -> Pin<Box<dyn AsyncRead + Send>> {
        self.0
    }
}

/// Reads a source in chunks of a fixed size: every chunk is full but the last. At most one chunk
/// is in memory at a time.
#[derive(Debug)]
pub struct ChunkReader {
    reader: MediaReader,
    chunk_size: usize,
    buf: BytesMut,
}

impl ChunkReader {
    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        self.next_chunk_of(self.chunk_size).await
    }

    /// The next chunk of `len` bytes (fewer only at the end), or `None` at the end.
    pub async fn next_chunk_of(&mut self, len: usize) -> Result<Option<Bytes>> {
        self.buf.clear();
        self.buf.reserve(len);
        while self.buf.len() < len {
            let want = len - self.buf.len();
            let n = (&mut self.reader.0)
                .take(want as u64)
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| Error::transient(format!("cannot read media: {e}")))?;
            if n == 0 {
                break;
            }
        }
        if self.buf.is_empty() { Ok(None) } else { Ok(Some(self.buf.split().freeze())) }
    }
}

fn probe_file(path: &Path) -> Result<Media> {
    let cannot = |e: std::io::Error| Error::Config(format!("cannot read media file {}: {e}", path.display()));
    // Not a FIFO or a device: opening one could block, reading one need never end.
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(Error::Config(format!("media file {} is not a regular file", path.display())));
    }
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let size = file.metadata().map_err(cannot)?.len();
    let facts = probe::probe_file(&mut file, size).map_err(cannot)?;
    Ok(Media::probed(MediaSource::File(path.to_path_buf()), size, facts))
}

mod mime_serde {
    use mime::Mime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(m: &Mime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.as_ref())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mime, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map(Bytes::from).map_err(serde::de::Error::custom)
    }
}
