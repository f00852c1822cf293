//! The sandbox's media host: local media copied under its SHA-256 and served by the sandbox at a
//! public-looking URL, for the platforms that fetch media by URL.

use std::path::PathBuf;

use async_trait::async_trait;
use konektly_core::{DirectoryMediaHost, Media, MediaHost};
use url::Url;

/// A [`MediaHost`] whose URLs the sandbox serves (with `Range` support), at
/// `http://127.0.0.1:<port>/media/<sha256>.<ext>`.
#[derive(Debug, Clone)]
pub struct SandboxMediaHost {
    inner: DirectoryMediaHost,
    base: Url,
}

impl SandboxMediaHost {
    pub(crate) fn new(dir: PathBuf, base: Url) -> Self {
        let base = base.join("media/").expect("a relative path joins");
        let inner = DirectoryMediaHost::new(dir, base.clone()).expect("the HTTP client builds");
        Self { inner, base }
    }

    /// The URL prefix of hosted media (the "verified domain" of TikTok's pull-from-URL).
    pub fn base_url(&self) -> &Url {
        &self.base
    }
}

#[async_trait]
impl MediaHost for SandboxMediaHost {
    async fn url_for(&self, media: &Media) -> konektly_core::Result<Url> {
        self.inner.url_for(media).await
    }
}
