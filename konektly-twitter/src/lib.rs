//! # konektly-twitter
//!
//! The X (Twitter) API v2 platform for konektly.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod text;

pub use text::{MAX_WEIGHTED_LENGTH, TextLength, parse_text, weighted_length};
