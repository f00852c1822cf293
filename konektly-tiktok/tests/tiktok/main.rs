//! konektly-tiktok against a wiremock TikTok: exact requests, real-shaped answers.

mod common;
mod connect;
mod engine;
mod publish;
