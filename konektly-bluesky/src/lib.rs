//! # konektly-bluesky
//!
//! Bluesky (the AT Protocol) for [konektly](konektly_core): sign in with an app password, find
//! each account's PDS from its handle and DID, and publish posts — text with facets (links,
//! mentions resolved to DIDs, hashtags; UTF-8 byte offsets), reply threads, up to 4 images with
//! alt text and aspect ratio, a video, or a link card — **exactly once**: every record key is a
//! TID konektly chooses and checkpoints before the create, so a create sent again after a lost
//! answer names the same record and can never post twice.
//!
//! - **Connect**: `createSession` with a handle (or DID, or e-mail) and an app password at the
//!   account's PDS; the access and refresh JWTs are the account's tokens, refreshed through
//!   `refreshSession` (the refresh JWT rotates). Through the engine: `connect` sends the user to
//!   a sign-in page ([`BlueskyBuilder::with_sign_in_page`]) that comes back with an
//!   [`app_password_code`]; or call [`BlueskyPlatform::sign_in`]. atproto OAuth (PAR, PKCE,
//!   DPoP) is not implemented yet.
//! - **Publish**: blobs through `uploadBlob` (checkpointed), the record frozen in the checkpoint
//!   (its `createdAt`, facets and blob references), then `createRecord` at the chosen key. A
//!   create whose answer is lost is looked up with `getRecord` at that key.
//! - **Limits**: 300 graphemes and 3,000 bytes of text; image, video and duration limits are
//!   settings ([`Limits`]); the PDS's write points per hour and day are declared as budgets.
//!
//! ```
//! use std::sync::Arc;
//! use konektly_bluesky::{BlueskyBuilder, BlueskyOptions};
//! use konektly_core::Target;
//!
//! # fn main() -> konektly_core::Result<()> {
//! let bluesky = Arc::new(BlueskyBuilder::new().build()?);
//! let options = BlueskyOptions { langs: vec!["en".into()], ..Default::default() };
//! let target = Target::new(konektly_core::AccountId::new()).with_options(&options)?;
//! # let _ = (bluesky, target);
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
pub mod richtext;
mod upload;
mod validate;

pub use builder::BlueskyBuilder;
pub use config::{Limits, RateLimits};
pub use error::BlueskyApiError;
pub use model::{BlueskyOptions, POST_COLLECTION, Tid};
pub use platform::{BlueskyPlatform, PLATFORM_ID, app_password_code};
pub use validate::{IMAGE_TYPES, MAX_GRAPHEMES, MAX_IMAGES, MAX_LANGS, MAX_TAGS, MAX_TEXT_BYTES};

/// Entry points for the fuzz targets and the hostile-answer tests: Bluesky's answers read by the
/// adapter's own parsing code, without a network. Not part of the public API.
#[doc(hidden)]
pub mod fuzzing {
    use chrono::Utc;
    use konektly_core::http::ApiResponse;
    use konektly_core::oauth::{Grant, read_revocation, read_tokens};
    use konektly_core::reqwest::StatusCode;
    use konektly_core::reqwest::header::HeaderMap;
    use konektly_core::{CallKind, Error, Result, api};
    use serde::de::DeserializeOwned;
    use std::time::Duration;

    use crate::error::{BlueskyDialect, DEFAULT_RATE_LIMIT_WAIT, map_error, parse, rate_limit_reports};
    use crate::model::{BlobOutput, DidDocument, ProfileView, RecordOutput, ResolvedHandle, WriteOutput, blob_ok};
    use crate::oauth::{BlueskySessions, step};

    /// The answers [`read`] understands, by the call they answer.
    pub const ANSWERS: &[&str] = &[
        "POST com.atproto.server.createSession",
        "POST com.atproto.server.refreshSession",
        "POST com.atproto.server.deleteSession",
        "GET com.atproto.identity.resolveHandle",
        "GET DID document",
        "GET app.bsky.actor.getProfile",
        "POST com.atproto.repo.uploadBlob",
        "POST com.atproto.repo.createRecord",
        "GET com.atproto.repo.getRecord",
        "POST com.atproto.repo.deleteRecord",
    ];

    /// Whether the call `answer` names creates something.
    pub fn creates(answer: &str) -> bool {
        answer == "POST com.atproto.repo.createRecord"
    }

    const DIALECT: BlueskyDialect = BlueskyDialect { rate_limit_wait: DEFAULT_RATE_LIMIT_WAIT };

    fn sessions() -> BlueskySessions {
        BlueskySessions {
            access_ttl: Duration::from_secs(7200),
            refresh_ttl: Duration::from_secs(86_400 * 90),
            rate_limit_wait: DEFAULT_RATE_LIMIT_WAIT,
        }
    }

    fn call<T: DeserializeOwned>(api: ApiResponse, kind: CallKind, what: &str) -> Result<T> {
        let answer = api::check(&DIALECT, None, api, kind, what)?;
        api::payload(&DIALECT, &answer, kind, what)
    }

    /// Reads an answer to `answer` as the adapter does. `Ok` holds what was understood.
    pub fn read(answer: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<String> {
        let kind = if creates(answer) { CallKind::Create } else { CallKind::Idempotent };
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        match answer {
            "POST com.atproto.server.createSession" | "POST com.atproto.server.refreshSession" => {
                let grant = if answer.ends_with("createSession") { Grant::Code } else { Grant::Refresh };
                let s = sessions();
                read_tokens(&s, &api, step(grant, "fuzzing"), Utc::now())?;
                let (t, body) = s.session(&api, Utc::now())?;
                Ok(format!("{:?} {:?} {:?} {:?}", body.did, body.handle, t.expires_at, t.refresh_expires_at))
            }
            "POST com.atproto.server.deleteSession" => {
                read_revocation(&sessions(), &api, step(Grant::Revoke, "fuzzing")).map(|()| "ended".into())
            }
            "GET com.atproto.identity.resolveHandle" => call::<ResolvedHandle>(api, kind, answer).map(|r| r.did),
            "GET DID document" => {
                let d: DidDocument = call(api, kind, answer)?;
                Ok(format!("{:?} {:?}", d.pds(), d.handle()))
            }
            "GET app.bsky.actor.getProfile" => call::<ProfileView>(api, kind, answer).map(|p| format!("{p:?}")),
            "POST com.atproto.repo.uploadBlob" => {
                let b: BlobOutput = call(api, kind, answer)?;
                if !blob_ok(&b.blob) {
                    return Err(Error::transient("no blob reference"));
                }
                Ok(b.blob.to_string())
            }
            "POST com.atproto.repo.createRecord" => {
                let w: WriteOutput = call(api, kind, answer)?;
                if !w.uri.starts_with("at://") || w.cid.is_empty() {
                    return Err(Error::UnknownOutcome { message: "no uri or cid".into(), source: None });
                }
                Ok(format!("{} {}", w.uri, w.cid))
            }
            "GET com.atproto.repo.getRecord" => match call::<RecordOutput>(api, kind, answer) {
                Ok(r) => Ok(format!("{} {:?}", r.uri, r.cid)),
                Err(e) if crate::client::is_not_found(&e) => Ok("not found".into()),
                Err(e) => Err(e),
            },
            "POST com.atproto.repo.deleteRecord" => {
                call::<serde_json::Value>(api, kind, answer).map(|_| "deleted".into())
            }
            other => Err(Error::Config(format!("no such answer: {other}"))),
        }
    }

    /// An XRPC error through Bluesky's table, as the adapter maps it.
    pub fn error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Vec<Error> {
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        let Some(err) = parse(&api) else { return Vec::new() };
        vec![
            map_error(err.clone(), headers, CallKind::Create, "fuzzing", DEFAULT_RATE_LIMIT_WAIT),
            map_error(err, headers, CallKind::Idempotent, "fuzzing", DEFAULT_RATE_LIMIT_WAIT),
        ]
    }

    /// How many budget reports a write's headers make.
    pub fn rate_limits(headers: &HeaderMap) -> usize {
        rate_limit_reports(headers, "POST com.atproto.repo.createRecord").len()
    }
}
