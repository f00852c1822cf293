//! Counting and hashing bytes as they stream in: uploads are never kept whole in memory.

use axum::body::Body;
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::state::MediaRecord;

const HEAD: usize = 64;

/// Size, SHA-256 and the first bytes (to sniff the type) of a stream.
#[derive(Clone, Default)]
pub(crate) struct Digest {
    size: u64,
    sha: Sha256,
    head: Vec<u8>,
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digest").field("size", &self.size).finish()
    }
}

impl Digest {
    pub fn update(&mut self, bytes: &[u8]) {
        if self.head.len() < HEAD {
            let n = (HEAD - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
        }
        self.sha.update(bytes);
        self.size += bytes.len() as u64;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn hex(&self) -> String {
        let out = self.sha.clone().finalize();
        out.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The type the bytes start like.
    pub fn sniff(&self) -> Option<&'static str> {
        sniff(&self.head)
    }

    pub fn record(&self, declared: &str) -> MediaRecord {
        MediaRecord { mime: self.sniff().unwrap_or(declared).to_owned(), size: self.size, sha256: self.hex() }
    }
}

pub(crate) fn sniff(h: &[u8]) -> Option<&'static str> {
    if h.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if h.starts_with(b"\x89PNG") {
        Some("image/png")
    } else if h.starts_with(b"GIF8") {
        Some("image/gif")
    } else if h.len() >= 12 && &h[..4] == b"RIFF" && &h[8..12] == b"WEBP" {
        Some("image/webp")
    } else if h.len() >= 12 && &h[4..8] == b"ftyp" {
        if &h[8..10] == b"qt" { Some("video/quicktime") } else { Some("video/mp4") }
    } else if h.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("video/webm")
    } else {
        None
    }
}

pub(crate) fn is_video(mime: &str) -> bool {
    mime.starts_with("video/")
}

/// Feeds a request body into `digest`, skipping the first `skip` bytes and keeping at most
/// `keep` bytes after them. Returns the bytes the body carried.
pub(crate) async fn consume(body: Body, digest: &mut Digest, skip: u64, keep: u64) -> Result<u64, String> {
    let mut stream = body.into_data_stream();
    let mut seen = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("the body broke off: {e}"))?;
        let start = seen;
        seen += chunk.len() as u64;
        let from = skip.saturating_sub(start).min(chunk.len() as u64) as usize;
        let upto = (skip + keep).saturating_sub(start).min(chunk.len() as u64) as usize;
        if from < upto {
            digest.update(&chunk[from..upto]);
        }
    }
    Ok(seen)
}

/// Fetches a URL the way a platform's crawler does, hashing as it streams. Only loopback URLs
/// are fetched: the sandbox never reaches the internet.
pub(crate) async fn fetch(http: &reqwest::Client, url: &str) -> Result<(Digest, Option<String>), String> {
    let parsed = url::Url::parse(url).map_err(|_| "the URL is not valid".to_owned())?;
    match parsed.host_str() {
        Some("127.0.0.1" | "localhost" | "[::1]") => {}
        _ => return Err("the media could not be fetched from this URI".into()),
    }
    let resp = http.get(parsed).send().await.map_err(|e| format!("fetch failed: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("fetch answered {}", resp.status()));
    }
    let ctype = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut digest = Digest::default();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        digest.update(&chunk.map_err(|e| format!("fetch broke off: {}", e.without_url()))?);
    }
    Ok((digest, ctype))
}
