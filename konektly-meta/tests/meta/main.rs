//! konektly-meta against a mock Graph API: every step's exact request, success and error.

mod common;
mod conformance;
mod facebook;
mod instagram;
