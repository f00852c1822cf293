//! The sandbox's media host: local media copied under its SHA-256 and served by the sandbox at a
//! public-looking URL, for the platforms that fetch media by URL.

use std::path::PathBuf;

use async_trait::async_trait;
use konektly_core::{DirectoryMediaHost, Error, Media, MediaHost, MediaSource};
use url::Url;

#[derive(Debug, Clone)]
enum Host {
    /// In the sandbox's process: files are copied into its directory.
    Local(DirectoryMediaHost),
    /// A sandbox in another process: files are uploaded to its control port.
    Remote { upload: Url, http: reqwest::Client },
}

/// A [`MediaHost`] whose URLs the sandbox serves (with `Range` support), at
/// `http://127.0.0.1:<port>/media/<sha256>.<ext>`.
#[derive(Debug, Clone)]
pub struct SandboxMediaHost {
    host: Host,
    base: Url,
}

impl SandboxMediaHost {
    pub(crate) fn new(dir: PathBuf, base: Url) -> Self {
        let base = base.join("media/").expect("a relative path joins");
        let inner = DirectoryMediaHost::new(dir, base.clone()).expect("the HTTP client builds");
        Self { host: Host::Local(inner), base }
    }

    /// The media host of a sandbox running in another process, reached at its control URL
    /// (`Sandbox::base_url("media")`): files are streamed to it.
    pub fn remote(control_url: &Url) -> konektly_core::Result<Self> {
        let base = control_url.join("media/").map_err(|e| Error::Config(format!("bad sandbox URL: {e}")))?;
        let upload = control_url.join("_sandbox/media").map_err(|e| Error::Config(format!("bad sandbox URL: {e}")))?;
        let http = konektly_core::HttpClient::new()?.client().clone();
        Ok(Self { host: Host::Remote { upload, http }, base })
    }

    /// The URL prefix of hosted media (the "verified domain" of TikTok's pull-from-URL).
    pub fn base_url(&self) -> &Url {
        &self.base
    }
}

#[async_trait]
impl MediaHost for SandboxMediaHost {
    async fn url_for(&self, media: &Media) -> konektly_core::Result<Url> {
        match &self.host {
            Host::Local(d) => d.url_for(media).await,
            Host::Remote { upload, http } => {
                if let MediaSource::Url(u) = &media.source {
                    return Ok(u.clone());
                }
                let reader = media.open_at(http, 0).await?.chunks(1 << 20);
                let stream = futures_util::stream::unfold(Some(reader), |r| async move {
                    let mut r = r?;
                    match r.next_chunk().await {
                        Ok(Some(b)) => Some((Ok::<_, std::io::Error>(b), Some(r))),
                        Ok(None) => None,
                        Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
                    }
                });
                let resp = http
                    .post(upload.clone())
                    .header(reqwest::header::CONTENT_TYPE, media.mime.essence_str())
                    .body(reqwest::Body::wrap_stream(stream))
                    .send()
                    .await
                    .map_err(|e| {
                        Error::transient(format!("the sandbox media host is unreachable: {}", e.without_url()))
                    })?;
                let v: serde_json::Value = resp
                    .json()
                    .await
                    .map_err(|e| Error::transient(format!("the sandbox media host answered badly: {e}")))?;
                v.get("url")
                    .and_then(|u| u.as_str())
                    .and_then(|u| Url::parse(u).ok())
                    .ok_or_else(|| Error::transient("the sandbox media host gave no URL"))
            }
        }
    }
}
