//! The adapter's configuration beside the builder (`builder.rs`): where each call goes.

use url::Url;

/// Where each call goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The browser's authorization page.
    pub auth: Url,
    /// The token endpoint.
    pub token: Url,
    /// The revocation endpoint.
    pub revoke: Url,
    /// The Data API base, ending in `/youtube/v3/`.
    pub api: Url,
    /// The upload base, ending in `/upload/youtube/v3/`.
    pub upload: Url,
}
