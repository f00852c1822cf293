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

mod builder;
mod client;
mod error;
mod model;
mod text;
mod validate;

pub use builder::{DEFAULT_SCOPES, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, XBuilder};
pub use client::{PLATFORM_ID, XPlatform};
pub use error::{XApiError, XErrorEntry};
pub use model::{ReplySettings, XOptions, XPoll};
pub use text::{MAX_WEIGHTED_LENGTH, TextLength, parse_text, weighted_length};
pub use validate::{MAX_ALT_TEXT_CHARS, POLL_MINUTES, POLL_OPTION_CHARS, POLL_OPTIONS};
