//! # konektly-store
//!
//! Durable [`TokenStore`](konektly_core::TokenStore) and [`Scheduler`](konektly_core::Scheduler)
//! implementations for konektly.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
