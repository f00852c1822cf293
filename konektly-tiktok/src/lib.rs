//! # konektly-tiktok
//!
//! TikTok for [konektly](konektly_core): connect creators with Login Kit v2 and publish through
//! the Content Posting API — direct video posts (uploaded in chunks, or pulled from a URL),
//! drafts sent to the creator's inbox, and photo posts.
//!
//! - **Connect**: `client_key` and comma-separated scopes (default
//!   `user.info.basic,video.publish,video.upload`), optional PKCE for desktop apps; token,
//!   refresh and revoke with the client secret in the form body. Lifetimes come from
//!   `expires_in` / `refresh_expires_in`; refresh tokens rotate. The granted scopes are checked.
//! - **Publish**: before each direct post the creator's settings are read
//!   (`creator_info/query`): the privacy level must be one they may use, the video no longer than
//!   they may post. Progress (`publish_id`, upload URL, chunks sent) is checkpointed, so a
//!   restarted worker resumes the upload and reconciles instead of posting twice.
//! - **Limits**: TikTok's per-token limits (6 inits, 20 creator-info queries, 30 status fetches
//!   a minute) are declared as budgets, so the engine spaces a burst instead of collecting 429s.
//!
//! ```
//! use std::sync::Arc;
//! use konektly_core::{Content, Media, Target};
//! use konektly_tiktok::{PrivacyLevel, TikTokBuilder, TikTokOptions};
//!
//! # fn main() -> konektly_core::Result<()> {
//! let tiktok = Arc::new(TikTokBuilder::new().with_client_key("aw123").with_client_secret("s3cr3t").build()?);
//! // Register it with `Konektly::builder().platform(tiktok)`; then a target says how to post:
//! let options = TikTokOptions { privacy_level: Some(PrivacyLevel::SelfOnly), ..Default::default() };
//! let target = Target::new(konektly_core::AccountId::new()).with_options(&options)?;
//! # let _ = (tiktok, target, Content::text("hi"), Media::from_bytes(vec![0u8; 4]));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
pub mod chunks;
mod client;
mod error;
mod model;
mod platform;
mod validate;

pub use builder::{DEFAULT_SCOPES, Pkce, RateLimits, TikTokBuilder};
pub use error::TikTokApiError;
pub use model::{PostMode, PrivacyLevel, TikTokOptions, VideoSource};
pub use platform::{PLATFORM_ID, TikTokPlatform};
pub use validate::{
    MAX_CAPTION, MAX_PHOTO_BYTES, MAX_PHOTO_DESCRIPTION, MAX_PHOTO_TITLE, MAX_PHOTOS, MAX_VIDEO_BYTES,
    MAX_VIDEO_DURATION,
};
