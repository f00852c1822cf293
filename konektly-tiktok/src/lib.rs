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

pub use builder::{DEFAULT_SCOPES, TikTokBuilder};
pub use config::{Pkce, RateLimits};

/// The `FILE_UPLOAD` chunk plan (kept at this path; the code is in `upload.rs`).
pub mod chunks {
    pub use crate::upload::{ChunkPlan, MAX_CHUNK, MAX_CHUNKS, MIN_CHUNK};
}
pub use error::TikTokApiError;
pub use model::{PostMode, PrivacyLevel, TikTokOptions, VideoSource};
pub use platform::{PLATFORM_ID, TikTokPlatform};
pub use validate::{
    MAX_CAPTION, MAX_PHOTO_BYTES, MAX_PHOTO_DESCRIPTION, MAX_PHOTO_TITLE, MAX_PHOTOS, MAX_VIDEO_BYTES,
    MAX_VIDEO_DURATION,
};

/// Entry points for the fuzz targets (`fuzz/`) and the hostile-answer tests: TikTok's answers
/// read by the adapter's own parsing code, without a network. Not part of the public API.
#[doc(hidden)]
pub mod fuzzing {
    use chrono::Utc;
    use konektly_core::http::ApiResponse;
    use konektly_core::reqwest::StatusCode;
    use konektly_core::reqwest::header::HeaderMap;
    use konektly_core::{CallKind, Error, Result};
    use serde::de::DeserializeOwned;

    use konektly_core::oauth::{Grant, TokenStep, read_revocation, read_tokens};

    use crate::client::{chunk_answer, envelope_error};
    use crate::error::{DEFAULT_RATE_LIMIT_WAIT, map_api_error, map_api_error_with, map_fail_reason, map_oauth_error};
    use crate::model::{CreatorInfo, Envelope, InitData, StatusData, UserInfoData};
    use crate::oauth::TikTokTokens;

    /// The answers [`read`] understands, by the call they answer.
    pub const ANSWERS: &[&str] = &[
        "POST v2/oauth/token/",
        "POST v2/oauth/revoke/",
        "GET v2/user/info/",
        "POST v2/post/publish/creator_info/query/",
        "POST v2/post/publish/video/init/",
        "POST v2/post/publish/content/init/",
        "POST v2/post/publish/status/fetch/",
        "PUT upload_url",
    ];

    /// Whether the call `answer` names creates something.
    pub fn creates(answer: &str) -> bool {
        answer.ends_with("/init/") || answer == "POST v2/oauth/token/"
    }

    /// Reads an answer to `answer` as the adapter does (`TikTokClient::call`, core's OAuth
    /// client in `TikTokTokens`, `upload_chunk`, and what a status means). `Ok` holds what was
    /// understood, for people.
    pub fn read(answer: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<String> {
        let kind = if creates(answer) { CallKind::Create } else { CallKind::Idempotent };
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        match answer {
            "POST v2/oauth/token/" => token(&api),
            "POST v2/oauth/revoke/" => revoke(&api).map(|()| "revoked".to_owned()),
            "GET v2/user/info/" => call::<UserInfoData>(&api, kind).map(|d| format!("{:?}", d.user)),
            "POST v2/post/publish/creator_info/query/" => call::<CreatorInfo>(&api, kind).map(|c| format!("{c:?}")),
            "POST v2/post/publish/video/init/" | "POST v2/post/publish/content/init/" => {
                let data: InitData = call(&api, kind)?;
                if data.publish_id.is_empty() {
                    return Err(Error::UnknownOutcome {
                        message: "TikTok accepted the init but gave no publish_id".into(),
                        source: None,
                    });
                }
                Ok(format!("{data:?}"))
            }
            "POST v2/post/publish/status/fetch/" => {
                let st: StatusData = call(&api, kind)?;
                match st.status.as_str() {
                    "FAILED" => Err(map_fail_reason(st.fail_reason.as_deref().unwrap_or("unknown"), "fuzz")),
                    s => Ok(format!("{s} {:?} {:?}", st.post_ids(), st.uploaded_bytes)),
                }
            }
            "PUT upload_url" => upload_chunk(&api).map(|()| "stored".to_owned()),
            other => Err(Error::Config(format!("no such answer: {other}"))),
        }
    }

    /// An envelope error through TikTok's tables (API, OAuth), as the adapter maps it.
    pub fn error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Vec<Error> {
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        let Some(err) = envelope_error(&api) else { return Vec::new() };
        let _ = err.to_string();
        vec![
            map_api_error(err.clone(), headers, CallKind::Create),
            map_api_error_with(err.clone(), headers, CallKind::Idempotent, DEFAULT_RATE_LIMIT_WAIT),
            map_oauth_error(err, headers),
        ]
    }

    /// `TikTokClient::call`: the envelope's error, the status, then `data`.
    fn call<T: DeserializeOwned>(api: &ApiResponse, kind: CallKind) -> Result<T> {
        if let Some(err) = envelope_error(api) {
            return Err(map_api_error_with(err, &api.headers, kind, DEFAULT_RATE_LIMIT_WAIT));
        }
        if !api.is_success() {
            return Err(api.status_error(kind, format!("TikTok answered status {}", api.status), None));
        }
        let env: Envelope<T> = api.json()?;
        match env.data {
            Some(d) => Ok(d),
            None if kind == CallKind::Create => Err(Error::UnknownOutcome {
                message: "TikTok answered without data; the request may have been accepted".into(),
                source: None,
            }),
            None => Err(Error::transient("TikTok answered without data")),
        }
    }

    fn step(grant: Grant) -> TokenStep<'static> {
        TokenStep { grant, kind: CallKind::Create, what: "fuzzing" }
    }

    /// `TikTokClient::exchange_code` after the answer is read (core's client, TikTok's dialect).
    fn token(api: &ApiResponse) -> Result<String> {
        let answer = read_tokens(&TikTokTokens, api, step(Grant::Code), Utc::now())?;
        let t = &answer.tokens;
        Ok(format!(
            "{} chars, expires {:?}, refresh expires {:?}, {:?}, {:?}",
            t.access_token.expose().len(),
            t.expires_at,
            t.refresh_expires_at,
            t.scopes,
            answer.user_id
        ))
    }

    /// `TikTokClient::revoke` after the answer is read.
    fn revoke(api: &ApiResponse) -> Result<()> {
        read_revocation(
            &TikTokTokens,
            api,
            TokenStep { grant: Grant::Revoke, kind: CallKind::Idempotent, what: "fuzzing" },
        )
    }

    /// `TikTokClient::upload_chunk` after the answer is read.
    fn upload_chunk(api: &ApiResponse) -> Result<()> {
        chunk_answer(api, "bytes 0-0/1", DEFAULT_RATE_LIMIT_WAIT)
    }
}
