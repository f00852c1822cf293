//! # konektly-linkedin
//!
//! LinkedIn for [konektly](konektly_core): connect members with 3-legged OAuth 2.0 and publish
//! text and image posts as the member through the versioned Posts API, exactly once.
//!
//! - **Connect**: the authorization code flow (`openid profile w_member_social` by default,
//!   configurable), the client secret in the token request's body; the member is read from
//!   OpenID `/v2/userinfo` (`sub` → author `urn:li:person:{sub}`). Access tokens last 60 days.
//!   Refresh tokens come only to apps LinkedIn approved for them
//!   ([`LinkedInBuilder::with_refresh_tokens`]); without them the account's refresh expiry is
//!   its token's, so the engine raises `TokenExpiringSoon` a week before the member must
//!   reconnect.
//! - **Publish**: `POST /rest/posts` with `LinkedIn-Version` (configurable, default
//!   [`DEFAULT_VERSION`]) and `X-Restli-Protocol-Version: 2.0.0`; the post's URN comes from the
//!   `x-restli-id` header. The commentary is written in LinkedIn's "little text"
//!   ([`text::escape`]): a `(` or `_` of the user's no longer cuts the post short. Images go
//!   through the Images API (`initializeUpload`, then one `PUT`), one as `content.media`, 2–20
//!   as `content.multiImage`.
//! - **Exactly once**: the "create sent" mark is checkpointed before the create; a lost answer is
//!   reconciled by listing the author's recent posts (`q=author`) and matching the commentary
//!   (needs `r_member_social`, for approved partners; without it the outcome is unknowable); a
//!   create sent again after a landed one is refused as `DUPLICATE_POST` naming the post, which
//!   is adopted.
//!
//! ```
//! use std::sync::Arc;
//! use konektly_core::{Content, Target};
//! use konektly_linkedin::{LinkedInBuilder, LinkedInOptions, Visibility};
//!
//! # fn main() -> konektly_core::Result<()> {
//! let linkedin = Arc::new(LinkedInBuilder::new().with_client_id("86abc").with_client_secret("s3cr3t").build()?);
//! let options = LinkedInOptions { visibility: Visibility::Connections, ..Default::default() };
//! let target = Target::new(konektly_core::AccountId::new()).with_options(&options)?;
//! # let _ = (linkedin, target, Content::text("hi (all)"));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod client;
mod config;
mod error;
mod model;
mod oauth;
mod platform;
pub mod text;
mod upload;
mod validate;

pub use builder::{DEFAULT_SCOPES, DEFAULT_VERSION, LinkedInBuilder};
pub use client::RESTLI_ID;
pub use error::LinkedInApiError;
pub use model::{LinkedInOptions, Visibility};
pub use platform::{LinkedInPlatform, PLATFORM_ID, author_urn, post_url};
pub use validate::{DEFAULT_MAX_IMAGE_BYTES, IMAGE_TYPES, MAX_COMMENTARY, MAX_IMAGE_PIXELS, MAX_IMAGES};

/// Entry points for the fuzz targets and the hostile-answer tests: LinkedIn's answers read by
/// the adapter's own parsing code, without a network. Not part of the public API.
#[doc(hidden)]
pub mod fuzzing {
    use chrono::Utc;
    use konektly_core::http::ApiResponse;
    use konektly_core::oauth::{Grant, TokenStep, read_tokens};
    use konektly_core::reqwest::StatusCode;
    use konektly_core::reqwest::header::HeaderMap;
    use konektly_core::{CallKind, Error, Result, api};
    use serde::de::DeserializeOwned;

    use crate::client::created_urn;
    use crate::error::{DEFAULT_RATE_LIMIT_WAIT, LinkedInDialect, map_error, parse};
    use crate::model::{Elements, ImageUpload, PostElement, UserInfo, Value};
    use crate::oauth::LinkedInTokens;

    /// The answers [`read`] understands, by the call they answer.
    pub const ANSWERS: &[&str] = &[
        "POST oauth/v2/accessToken",
        "GET v2/userinfo",
        "POST rest/posts",
        "GET rest/posts?q=author",
        "DELETE rest/posts",
        "POST rest/images?action=initializeUpload",
    ];

    /// Whether the call `answer` names creates something.
    pub fn creates(answer: &str) -> bool {
        matches!(answer, "POST rest/posts" | "POST oauth/v2/accessToken")
    }

    /// Reads an answer to `answer` as the adapter does. `Ok` holds what was understood.
    pub fn read(answer: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<String> {
        let kind = if creates(answer) { CallKind::Create } else { CallKind::Idempotent };
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        let dialect = LinkedInDialect { rate_limit_wait: DEFAULT_RATE_LIMIT_WAIT };
        fn json<T: DeserializeOwned>(d: &LinkedInDialect, api: ApiResponse, kind: CallKind) -> Result<T> {
            let answer = api::check(d, None, api, kind, "fuzzing")?;
            api::payload(d, &answer, kind, "fuzzing")
        }
        match answer {
            "POST oauth/v2/accessToken" => {
                let step = TokenStep { grant: Grant::Code, kind, what: "fuzzing" };
                let t = read_tokens(&LinkedInTokens, &api, step, Utc::now())?.tokens;
                Ok(format!("expires {:?}, refresh expires {:?}, {:?}", t.expires_at, t.refresh_expires_at, t.scopes))
            }
            "GET v2/userinfo" => json::<UserInfo>(&dialect, api, kind).map(|u| format!("{u:?}")),
            "POST rest/posts" => created_urn(&api::check(&dialect, None, api, kind, "fuzzing")?),
            "GET rest/posts?q=author" => {
                json::<Elements<PostElement>>(&dialect, api, kind).map(|p| format!("{:?}", p.elements))
            }
            "DELETE rest/posts" => api::check(&dialect, None, api, kind, "fuzzing").map(|_| "deleted".into()),
            "POST rest/images?action=initializeUpload" => {
                json::<Value<ImageUpload>>(&dialect, api, kind).map(|v| format!("{:?}", v.value))
            }
            other => Err(Error::Config(format!("no such answer: {other}"))),
        }
    }

    /// An error answer through LinkedIn's table, as the adapter maps it.
    pub fn error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Vec<Error> {
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        let Some(err) = parse(&api) else { return Vec::new() };
        vec![
            map_error(err.clone(), headers, CallKind::Create, "fuzzing", DEFAULT_RATE_LIMIT_WAIT),
            map_error(err, headers, CallKind::Idempotent, "fuzzing", DEFAULT_RATE_LIMIT_WAIT),
        ]
    }
}
