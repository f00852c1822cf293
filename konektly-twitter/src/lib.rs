#![doc = include_str!("../README.md")]
//!
//! ```
//! use std::sync::Arc;
//! use konektly_core::{Content, Platform, TargetOptions};
//! use konektly_twitter::{XBuilder, XOptions, XPoll};
//!
//! # fn main() -> konektly_core::Result<()> {
//! let x = Arc::new(XBuilder::new().with_client_id("client-id").build()?);
//! let options = XOptions {
//!     poll: Some(XPoll { options: vec!["Rust".into(), "Go".into()], duration_minutes: 1440 }),
//!     ..XOptions::default()
//! };
//! let problems = x.validate(&Content::text("Which one?"), &TargetOptions::new(&options)?);
//! assert!(problems.is_empty());
//! assert_eq!(konektly_twitter::weighted_length("Hello 世界 https://konektly.app"), 34);
//! # Ok(())
//! # }
//! ```
//!
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
mod text;
mod upload;
mod validate;

pub use builder::{DEFAULT_SCOPES, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, XBuilder};
pub use error::{XApiError, XErrorEntry};
pub use model::{ReplySettings, XOptions, XPoll};
pub use platform::{PLATFORM_ID, XPlatform};
pub use text::{MAX_WEIGHTED_LENGTH, TextLength, parse_text, weighted_length};
pub use validate::{MAX_ALT_TEXT_CHARS, POLL_MINUTES, POLL_OPTION_CHARS, POLL_OPTIONS};

/// Entry points for the fuzz targets (`fuzz/`) and the hostile-answer tests: X's answers read by
/// the adapter's own parsing code, without a network. Not part of the public API.
#[doc(hidden)]
pub mod fuzzing {
    use konektly_core::http::ApiResponse;
    use konektly_core::ratelimit::RateLimitReport;
    use konektly_core::{CallKind, Error, Result};
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;
    use serde::de::DeserializeOwned;

    use crate::error::{classify, map_error, rate_limit_reports};
    use crate::model::{CreatedTweet, Data, Timeline, UploadData, User};
    use crate::upload::{MediaStep, expiry, processing_step};

    /// The answers [`read`] understands, by the call they answer.
    pub const ANSWERS: &[&str] = &[
        "POST /2/tweets",
        "POST /2/media/upload/initialize",
        "POST /2/media/upload/{id}/finalize",
        "GET /2/media/upload",
        "GET /2/users/me",
        "GET /2/users/{id}/tweets",
        "DELETE /2/tweets/{id}",
    ];

    /// Whether the call `answer` names creates something (an unreadable success is then an
    /// unknown outcome, never a plain error).
    pub fn creates(answer: &str) -> bool {
        matches!(answer, "POST /2/tweets" | "POST /2/media/upload/initialize")
    }

    /// Reads an answer to `answer` as the adapter does (`XPlatform::call_json`: rate-limit
    /// headers, the error table, then the JSON and what is read from it). `Ok` holds what was
    /// understood, for people.
    pub fn read(answer: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<String> {
        let kind = if creates(answer) { CallKind::Create } else { CallKind::Idempotent };
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        match answer {
            "POST /2/tweets" => call_json::<Data<CreatedTweet>>(&api, kind, answer).map(|d| d.data.id),
            "POST /2/media/upload/initialize" | "POST /2/media/upload/{id}/finalize" | "GET /2/media/upload" => {
                let d = call_json::<Data<UploadData>>(&api, kind, answer)?.data;
                let expires = expiry(d.expires_after_secs);
                let step = match processing_step(d.processing_info.as_ref(), &d.id)? {
                    MediaStep::Ready => "ready".to_owned(),
                    MediaStep::Wait(after, detail) => format!("wait {after:?}: {detail}"),
                };
                Ok(format!("{} {expires:?} {step}", d.id))
            }
            "GET /2/users/me" => call_json::<Data<User>>(&api, kind, answer).map(|u| format!("{:?}", u.data)),
            "GET /2/users/{id}/tweets" => {
                let t = call_json::<Timeline>(&api, kind, answer)?;
                Ok(format!("{} posts, next {:?}", t.data.len(), t.meta.and_then(|m| m.next_token)))
            }
            "DELETE /2/tweets/{id}" => call(&api, kind, answer).map(|_| "deleted".to_owned()),
            other => Err(Error::Config(format!("no such answer: {other}"))),
        }
    }

    /// What the headers say about X's rate limits.
    pub fn rate_limits(headers: &HeaderMap) -> Vec<RateLimitReport> {
        rate_limit_reports(headers, "fuzz")
    }

    /// An error answer through X's table: the error it maps to, for a create and otherwise.
    pub fn error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> [Error; 2] {
        let api = crate::XApiError::parse(status.as_u16(), body);
        let _ = (classify(&api), api.short_type(), api.message(), api.to_string());
        [CallKind::Create, CallKind::Idempotent].map(|kind| map_error(status, headers, body, kind, "fuzz"))
    }

    /// `XPlatform::call`: reports the rate-limit headers and maps an error answer.
    fn call(api: &ApiResponse, kind: CallKind, what: &str) -> Result<()> {
        let _ = rate_limit_reports(&api.headers, what);
        if api.is_success() { Ok(()) } else { Err(map_error(api.status, &api.headers, &api.body, kind, what)) }
    }

    /// `XPlatform::call_json`: an unreadable answer to a create is an unknown outcome.
    fn call_json<T: DeserializeOwned>(api: &ApiResponse, kind: CallKind, what: &str) -> Result<T> {
        call(api, kind, what)?;
        match api.json::<T>() {
            Ok(v) => Ok(v),
            Err(e) if kind == CallKind::Create => {
                Err(Error::UnknownOutcome { message: format!("{what}: {e}"), source: None })
            }
            Err(e) => Err(e),
        }
    }
}
