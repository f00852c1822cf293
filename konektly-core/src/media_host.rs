//! The optional `MediaHost` port: turns local media into a public URL for platforms that only
//! fetch media by URL (Instagram, TikTok photos and pull-from-URL).

use std::path::PathBuf;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::error::{Error, Result};
use crate::media::{Media, MediaSource};

/// Makes media reachable at a public URL.
#[async_trait]
pub trait MediaHost: Send + Sync + std::fmt::Debug {
    /// Returns a URL at which the platform can fetch the media.
    async fn url_for(&self, media: &Media) -> Result<Url>;
}

/// Serves a directory under a base URL (a web server or CDN in front of the directory is the
/// application's). Media is copied in under the hex SHA-256 of its bytes, streamed, so the same
/// file is stored once and its URL is unguessable without the content.
#[derive(Clone, Debug)]
pub struct DirectoryMediaHost {
    dir: PathBuf,
    base_url: Url,
    http: reqwest::Client,
}

impl DirectoryMediaHost {
    /// A host copying into `dir`, served at `base_url` (which should end with `/`).
    pub fn new(dir: impl Into<PathBuf>, base_url: Url) -> Result<Self> {
        let mut base_url = base_url;
        if !base_url.path().ends_with('/') {
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        Ok(Self { dir: dir.into(), base_url, http: crate::HttpClient::new()?.client().clone() })
    }

    /// The directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

fn extension(media: &Media) -> &'static str {
    match media.mime.essence_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        _ => "bin",
    }
}

#[async_trait]
impl MediaHost for DirectoryMediaHost {
    async fn url_for(&self, media: &Media) -> Result<Url> {
        if let MediaSource::Url(u) = &media.source {
            return Ok(u.clone());
        }
        let io = |e: std::io::Error| Error::storage("the media host cannot write its directory", e);
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        let tmp = self.dir.join(format!(".upload-{}", uuid::Uuid::new_v4()));
        let mut out = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut chunks = media.open_at(&self.http, 0).await?.chunks(1 << 20);
        while let Some(chunk) = chunks.next_chunk().await? {
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        drop(out);
        let name = format!("{:x}.{}", hasher.finalize(), extension(media));
        tokio::fs::rename(&tmp, self.dir.join(&name)).await.map_err(io)?;
        self.base_url.join(&name).map_err(|e| Error::Config(format!("invalid media URL: {e}")))
    }
}
