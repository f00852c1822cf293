//! The configuration both platforms share, as the builder (`builder.rs`) leaves it.

use std::fmt;
use std::time::Duration;

use konektly_core::ClientSecret;
use url::Url;

/// The shared configuration, after `build`.
pub(crate) struct MetaConfig {
    pub app_id: String,
    pub app_secret: ClientSecret,
    pub config_id: Option<String>,
    pub scopes: Vec<String>,
    pub pkce: bool,
    pub instagram_pkce: bool,
    pub instagram_app_id: Option<String>,
    pub instagram_app_secret: Option<ClientSecret>,
    pub instagram_scopes: Vec<String>,
    pub graph_version: String,
    pub facebook_base: Option<Url>,
    pub instagram_base: Option<Url>,
    pub container_poll_interval: Duration,
    pub container_poll_deadline: Duration,
    pub video_poll_interval: Duration,
    pub quota_retry: Duration,
    pub reconcile_skew: Duration,
    pub reconcile_pages: usize,
    pub usage_cool_down: Duration,
    pub instagram_refresh_ahead: Duration,
    pub limits: Limits,
}

impl fmt::Debug for MetaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaConfig")
            .field("app_id", &self.app_id)
            .field("app_secret", &"[REDACTED]")
            .field("config_id", &self.config_id)
            .field("pkce", &self.pkce)
            .field("instagram_app_id", &self.instagram_app_id)
            .field("instagram_app_secret", &self.instagram_app_secret.as_ref().map(|_| "[REDACTED]"))
            .field("graph_version", &self.graph_version)
            .field("facebook_base", &self.facebook_base.as_ref().map(Url::as_str))
            .field("instagram_base", &self.instagram_base.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}
/// Limits where Meta's documents disagree or may change: all configurable.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Limits {
    pub fb_photo_max_bytes: u64,
    pub fb_video_max_bytes: u64,
    pub fb_schedule_min: chrono::Duration,
    pub fb_schedule_max: chrono::Duration,
    pub ig_reel_max_bytes: u64,
    pub ig_story_video_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Sources say 10 MB or 4 MB for photos; 2 GB is what the Video API's errors state.
            fb_photo_max_bytes: 10 * 1024 * 1024,
            fb_video_max_bytes: 2 * 1024 * 1024 * 1024,
            fb_schedule_min: chrono::Duration::minutes(10),
            // The Pages guide says 30 days; the feed reference 75: the stricter one by default.
            fb_schedule_max: chrono::Duration::days(30),
            // The Instagram reference says 300 MB; other documents say 1 GB.
            ig_reel_max_bytes: 300 * 1024 * 1024,
            ig_story_video_max_bytes: 100 * 1024 * 1024,
        }
    }
}
