//! The adapter's configuration, as the builder (`builder.rs`) leaves it.

use konektly_core::HttpClient;
use konektly_core::oauth::OAuthClient;
use url::Url;

/// What `XBuilder::build` gives the platform.
pub(crate) struct Config {
    pub api_base: Url,
    pub oauth: OAuthClient<crate::oauth::XTokens>,
    pub http: HttpClient,
    pub scopes: Vec<String>,
    pub chunk_size: usize,
    pub redirect_uri: Option<Url>,
}
