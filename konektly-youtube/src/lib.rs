//! # konektly-youtube
//!
//! YouTube for [konektly](konektly_core): connect a channel with Google OAuth, then upload and
//! schedule videos through the YouTube Data API v3.
//!
//! - **Connect**: Google's consent page with `access_type=offline`, `prompt=consent`,
//!   `include_granted_scopes=true` and PKCE S256; scopes `youtube.upload` and
//!   `youtube.readonly` by default. The granted scopes are checked (a user may untick upload),
//!   and the channel is read with `channels.list?mine=true` — a Google account without a channel
//!   gets a clear error. Google omits `refresh_token` when refreshing: the stored one is kept.
//! - **Publish**: the resumable `videos.insert` upload, in chunks that are multiples of 256 KiB
//!   (8 MiB by default) with one chunk in memory at most. The server's `Range` is trusted; after a
//!   transport error or a 5xx the session is asked where it is; the session URI and offset are
//!   checkpointed, so a restarted worker resumes the same upload. Then the custom thumbnail, and
//!   `poll` follows YouTube's processing until the video is `processed`.
//! - **Schedule natively** with [`YouTubeOptions::publish_at`] (the video stays private until then).
//! - **Validate offline**: one video, title, description, tags as YouTube counts them,
//!   `publishAt`, thumbnail — every violation at once.
//! - **Errors**: Google's `reason` goes through a table ([`YouTubeApiError`] is kept as the
//!   source): `quotaExceeded` waits for midnight Pacific time, `uploadLimitExceeded` a day, and
//!   account states ask for reconnecting with the reason.
//!
//! ```
//! use std::sync::Arc;
//! use konektly_core::{Content, Media, Platform, Target, TargetOptions};
//! use konektly_youtube::{Privacy, YouTubeBuilder, YouTubeOptions};
//!
//! let youtube = Arc::new(
//!     YouTubeBuilder::new()
//!         .with_client_id("1234.apps.googleusercontent.com")
//!         .with_client_secret("GOCSPX-…")
//!         .build()?,
//! );
//! // Media at a URL: its size is needed for the resumable upload (local files are measured).
//! let video = Media::from_url("https://cdn.example/release.mp4".parse().unwrap(), "video/mp4".parse().unwrap())
//!     .with_size(48_000_000);
//! let content = Content::text("What we shipped this week.").with_media(video);
//! let options = YouTubeOptions {
//!     title: Some("Release notes".into()),
//!     tags: vec!["release".into()],
//!     privacy: Some(Privacy::Unlisted),
//!     ..YouTubeOptions::default()
//! };
//! assert!(youtube.validate(&content, &TargetOptions::new(&options)?).is_empty());
//! // With an engine: Target::new(account_id).with_options(&options)?
//! # let _ = Target::new(konektly_core::AccountId::new()).with_options(&options)?;
//! # Ok::<(), konektly_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod analytics;
mod builder;
mod client;
mod config;
mod error;
mod model;
mod oauth;
mod platform;
mod upload;
mod validate;

pub use builder::{
    CHUNK_GRANULARITY, DEFAULT_CHUNK_SIZE, DEFAULT_DAILY_INSERT_BUDGET, DEFAULT_MAX_THUMBNAIL_BYTES,
    DEFAULT_UPLOAD_TIMEOUT, SCOPE_FORCE_SSL, SCOPE_READONLY, SCOPE_UPLOAD, SCOPE_YOUTUBE, YouTubeBuilder,
};
pub use config::Endpoints;
pub use error::{YouTubeApiError, next_pacific_midnight};
pub use model::{License, Privacy, YouTubeOptions};
pub use platform::YouTubePlatform;
pub use validate::{MAX_DESCRIPTION_BYTES, MAX_TAGS_CHARS, MAX_TITLE_CHARS, MAX_VIDEO_BYTES, tags_length};

/// The platform id.
pub const PLATFORM_ID: &str = "youtube";

/// Entry points for the fuzz targets (`fuzz/`) and the hostile-answer tests: YouTube's and
/// Google's answers read by the adapter's own parsing code, without a network. Not part of the
/// public API.
#[doc(hidden)]
pub mod fuzzing {
    use chrono::Utc;
    use konektly_core::http::ApiResponse;
    use konektly_core::{CallKind, Error, Result};
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    use konektly_core::oauth::{Grant, TokenStep, read_tokens};

    use crate::error::{budget_report, map_api_error};
    use crate::model::{Channel, ListResponse, Video};
    use crate::oauth::GoogleTokens;
    use crate::upload::next_offset;

    /// The answers [`read`] understands, by the call they answer.
    pub const ANSWERS: &[&str] =
        &["POST oauth2 token", "GET channels", "GET videos", "PUT upload session", "POST thumbnails/set"];

    /// Whether the call `answer` names creates something. The upload session is resumable: an
    /// unreadable answer there is asked about again, never final.
    pub fn creates(answer: &str) -> bool {
        answer == "POST oauth2 token"
    }

    /// Reads an answer to `answer` as the adapter does (`YouTubePlatform::call`, core's OAuth
    /// client in `GoogleTokens`, `session_answer`). `Ok` holds what was understood, for people.
    pub fn read(answer: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<String> {
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        let now = Utc::now();
        match answer {
            "POST oauth2 token" => {
                let step = TokenStep { grant: Grant::Code, kind: CallKind::Create, what: "fuzzing" };
                let t = read_tokens(&GoogleTokens, &api, step, now)?.tokens;
                let scope = (!t.scopes.is_empty()).then(|| t.scopes.join(" "));
                Ok(format!("expires {:?}, refresh expires {:?}, scope {:?}", t.expires_at, t.refresh_expires_at, scope))
            }
            "GET channels" => {
                let list: ListResponse<Channel> = call(&api, CallKind::Idempotent)?.json()?;
                Ok(format!("{:?}", list.items.first()))
            }
            "GET videos" => {
                let list: ListResponse<Video> = call(&api, CallKind::Idempotent)?.json()?;
                Ok(format!("{:?}", list.items.first()))
            }
            "PUT upload session" => match api.status.as_u16() {
                308 => next_offset(&api.headers).map(|n| format!("incomplete at {n}")),
                200 | 201 => match api.json::<Video>() {
                    Ok(v) if !v.id.is_empty() => Ok(format!("done {v:?}")),
                    _ => Err(Error::transient("the finished upload's answer named no video")),
                },
                404 | 410 => Ok("gone".to_owned()),
                _ => Err(map_api_error(api.status, &api.headers, &api.body, CallKind::Idempotent, now)),
            },
            "POST thumbnails/set" => call(&api, CallKind::Idempotent).map(|_| "set".to_owned()),
            other => Err(Error::Config(format!("no such answer: {other}"))),
        }
    }

    /// An error answer through YouTube's table, for a create and otherwise, and the budget
    /// report it may give the engine.
    pub fn error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> [Error; 2] {
        let _ = crate::YouTubeApiError::parse(status, body).to_string();
        let errors =
            [CallKind::Create, CallKind::Idempotent].map(|kind| map_api_error(status, headers, body, kind, Utc::now()));
        for e in &errors {
            let _ = budget_report(e);
        }
        errors
    }

    /// `YouTubePlatform::call` after the answer is read.
    fn call(api: &ApiResponse, kind: CallKind) -> Result<&ApiResponse> {
        if api.is_success() {
            Ok(api)
        } else {
            Err(map_api_error(api.status, &api.headers, &api.body, kind, Utc::now()))
        }
    }
}
