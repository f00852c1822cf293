//! The adapter's configuration: what the builder (`builder.rs`) leaves for the platform — the
//! hosts (entryway, PLC directory, web app), the media limits the fact sheet marks as moving,
//! the write budgets and the session lifetimes used when a token does not say.

use std::fmt;
use std::time::Duration;

use url::Url;

/// Media limits that changed over time or differ between hosts: each is a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest image blob (`app.bsky.embed.images`): 2,000,000 bytes since 2026-04-08 (it was
    /// 1,000,000; a PDS checks it when the record is created, not at upload).
    pub max_image_bytes: u64,
    /// Largest video sent through `uploadBlob` (`app.bsky.embed.video`): the Bluesky PDS's
    /// request cap, 50,000,000 bytes by its docs (the lexicon allows more; self-hosted PDSes
    /// default to 5 MB).
    pub max_video_bytes: u64,
    /// Longest video: 3 minutes (Bluesky, 2025-03; a 10-minute figure is unconfirmed).
    pub max_video_duration: Duration,
    /// Largest link-card thumbnail: 1,000,000 bytes.
    pub max_thumb_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_image_bytes: 2_000_000,
            max_video_bytes: 50_000_000,
            max_video_duration: Duration::from_secs(180),
            max_thumb_bytes: 1_000_000,
        }
    }
}

/// The repository write limits of a PDS, in points: each DID may spend 5,000 points an hour
/// and 35,000 a day; a create costs 3, an update 2, a delete 1 (Bluesky's rate-limit docs; other
/// hosts may differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Points per hour: 5,000.
    pub points_per_hour: u32,
    /// Points per day: 35,000.
    pub points_per_day: u32,
    /// Points a create costs: 3.
    pub create_cost: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { points_per_hour: 5_000, points_per_day: 35_000, create_cost: 3 }
    }
}

/// Everything a built platform knows.
#[derive(Clone)]
pub(crate) struct Config {
    /// Where handles are resolved and e-mail sign-ins go (the entryway): `https://bsky.social/`.
    pub service: Url,
    /// The PLC directory that resolves `did:plc`: `https://plc.directory/`.
    pub plc_directory: Url,
    /// The web app whose post URLs are recorded: `https://bsky.app/`.
    pub app_url: Url,
    /// The page where a user gives their handle and app password (the application's own form,
    /// or the sandbox's); without one, `connect` is not available and `sign_in` is the way.
    pub sign_in_page: Option<Url>,
    /// Whether `did:web` documents are fetched over plain HTTP (tests only).
    pub did_web_http: bool,
    pub limits: Limits,
    pub rate_limits: RateLimits,
    /// Access-token lifetime when the JWT carries no `exp`: 120 min (reference PDS).
    pub access_ttl: Duration,
    /// Refresh-token lifetime when the JWT carries no `exp`: 90 days (reference PDS).
    pub refresh_ttl: Duration,
    /// Wait after `RateLimitExceeded` without a reset header.
    pub rate_limit_wait: Duration,
    /// Whether link cards without a title fetch the page's Open Graph tags.
    pub fetch_link_cards: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlueskyConfig")
            .field("service", &self.service.as_str())
            .field("plc_directory", &self.plc_directory.as_str())
            .field("app_url", &self.app_url.as_str())
            .field("sign_in_page", &self.sign_in_page.as_ref().map(Url::as_str))
            .field("limits", &self.limits)
            .field("rate_limits", &self.rate_limits)
            .finish_non_exhaustive()
    }
}
