//! # konektly-meta
//!
//! Facebook Pages and Instagram for [konektly](konektly_core), through Meta's Graph API: two
//! [`Platform`](konektly_core::Platform)s built from one [`MetaBuilder`].
//!
//! - [`FacebookPagePlatform`] (`facebook`): Facebook Login yields the user, each Page they manage
//!   (its own account, with a Page token that does not expire) and each Instagram professional
//!   account linked to a Page. Publishes text and link posts, one or several photos, videos
//!   (chunked upload streamed from the source, offsets checkpointed), Reels, and natively
//!   scheduled posts (10 minutes to 30 days ahead).
//! - [`InstagramPlatform`] (`instagram`): Instagram Login (`graph.instagram.com`, no Page needed,
//!   60-day tokens refreshed with `ig_refresh_token`) or an account found through Facebook Login.
//!   Publishes single images, carousels (2–10 items), Reels and Stories through containers: each
//!   container is polled until `FINISHED` before `media_publish`, container ids are
//!   checkpointed, and the publishing quota is read first. Media goes to Instagram by public URL
//!   (a [`MediaHost`](konektly_core::MediaHost), or media that is already at a public URL).
//!
//! Meta's errors are mapped through one table (see [`GraphApiError`]): a dead token is
//! `ReauthRequired` with the reason, throttling is `RateLimited` until the time Meta estimates,
//! and the `fbtrace_id` stays in the error. Usage headers feed the engine's budgets.
//!
//! ```
//! use konektly_core::Platform;
//! use konektly_meta::{InstagramOptions, InstagramMediaKind, MetaBuilder};
//!
//! let meta = MetaBuilder::new().with_app("app-id", "app-secret").build().unwrap();
//! assert_eq!(meta.facebook.id().as_str(), "facebook");
//! assert_eq!(meta.instagram.id().as_str(), "instagram");
//! let story = InstagramOptions { kind: Some(InstagramMediaKind::Story), ..Default::default() };
//! # let _ = story;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod client;
mod error;
mod facebook;
mod instagram;
mod model;
mod validate;

pub use builder::{
    DEFAULT_FACEBOOK_SCOPES, DEFAULT_GRAPH_VERSION, DEFAULT_INSTAGRAM_SCOPES, MetaBuilder, MetaPlatforms,
};
pub use error::{GraphApiError, GraphErrorBody, graph_error};
pub use facebook::{FacebookPagePlatform, KIND_PAGE, KIND_USER, LOGIN_KEY, PAGE_ID_KEY};
pub use instagram::InstagramPlatform;
pub use model::{FacebookOptions, FacebookPostKind, InstagramMediaKind, InstagramOptions, InstagramUserTag};
pub use validate::{
    FACEBOOK_MAX_TEXT, INSTAGRAM_MAX_CAPTION, INSTAGRAM_MAX_HASHTAGS, INSTAGRAM_MAX_MENTIONS, INSTAGRAM_MAX_SPONSORS,
    INSTAGRAM_MAX_USER_TAGS, facebook_reel_format, instagram_video_format,
};
