//! # konektly-meta
//!
//! Facebook Pages and Instagram for [konektly](konektly_core), through Meta's Graph API: two
//! [`Platform`](konektly_core::Platform)s built from one [`MetaBuilder`].
//!
//! - [`FacebookPagePlatform`] (`facebook`): Facebook Login yields the user, each Page they manage
//!   (its own account, with a Page token that does not expire) and each Instagram professional
//!   account linked to a Page. Publishes text and link posts, one or several photos, videos
//!   (chunked upload streamed from the source, offsets checkpointed), Reels, and natively
//!   scheduled posts (10 minutes to 30 days ahead).
//! - [`InstagramPlatform`] (`instagram`): Instagram Login (`graph.instagram.com`, no Page needed,
//!   60-day tokens refreshed with `ig_refresh_token`) or an account found through Facebook Login.
//!   Publishes single images, carousels (2–10 items), Reels and Stories through containers: each
//!   container is polled until `FINISHED` before `media_publish`, container ids are
//!   checkpointed, and the publishing quota is read first. Media goes to Instagram by public URL
//!   (a [`MediaHost`](konektly_core::MediaHost), or media that is already at a public URL).
//!
//! Meta's errors are mapped through one table (see [`GraphApiError`]): a dead token is
//! `ReauthRequired` with the reason, throttling is `RateLimited` until the time Meta estimates,
//! and the `fbtrace_id` stays in the error. Usage headers feed the engine's budgets.
//!
//! ```
//! use konektly_core::Platform;
//! use konektly_meta::{InstagramOptions, InstagramMediaKind, MetaBuilder};
//!
//! let meta = MetaBuilder::new().with_app("app-id", "app-secret").build().unwrap();
//! assert_eq!(meta.facebook.id().as_str(), "facebook");
//! assert_eq!(meta.instagram.id().as_str(), "instagram");
//! let story = InstagramOptions { kind: Some(InstagramMediaKind::Story), ..Default::default() };
//! # let _ = story;
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
    DEFAULT_FACEBOOK_SCOPES, DEFAULT_GRAPH_VERSION, DEFAULT_INSTAGRAM_SCOPES, MetaBuilder, MetaPlatforms,
};
pub use error::{GraphApiError, GraphErrorBody, graph_error};
pub use model::{
    FacebookOptions, FacebookPostKind, GraduationStrategy, InstagramMediaKind, InstagramOptions, InstagramTrialParams,
    InstagramUserTag,
};
pub use platform::{FacebookPagePlatform, InstagramPlatform, KIND_PAGE, KIND_USER, LOGIN_KEY, PAGE_ID_KEY};
pub use validate::{
    FACEBOOK_MAX_TEXT, INSTAGRAM_MAX_CAPTION, INSTAGRAM_MAX_HASHTAGS, INSTAGRAM_MAX_MENTIONS, INSTAGRAM_MAX_SPONSORS,
    INSTAGRAM_MAX_USER_TAGS, facebook_reel_format, instagram_video_format,
};

/// Entry points for the fuzz targets (`fuzz/`) and the hostile-answer tests: the Graph API's
/// answers (Facebook Pages and Instagram) read by the adapter's own parsing code, without a
/// network. Not part of the public API.
#[doc(hidden)]
pub mod fuzzing {
    use chrono::Utc;
    use konektly_core::http::ApiResponse;
    use konektly_core::ratelimit::RateLimitReport;
    use konektly_core::{CallKind, Error, Result};
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;
    use serde::de::DeserializeOwned;

    use crate::error::{
        APP_USAGE_COOL_DOWN, GraphApiError, MetaDialect, expected_offsets, map_error, regain_access_at, usage_reports,
    };
    use konektly_core::oauth::{Grant, TokenStep, read_tokens};

    use crate::model::{
        ContainerStatus, IdBody, ListBody, PublishingLimit, ReelStartBody, VideoPhaseBody, VideoStatusBody,
    };
    use crate::oauth::MetaTokens;

    /// The answers [`read`] understands, by the call they answer.
    pub const ANSWERS: &[&str] = &[
        "POST /{page-id}/feed",
        "POST /{ig-user-id}/media",
        "POST /{ig-user-id}/media_publish",
        "GET /{container-id}",
        "GET /oauth/access_token",
        "POST api.instagram.com/oauth/access_token",
        "GET /{ig-user-id}/content_publishing_limit",
        "GET /{video-id}?fields=status",
        "POST /{page-id}/video_reels",
        "POST /{page-id}/videos",
    ];

    /// Whether the call `answer` names creates something (an unreadable success is then an
    /// unknown outcome).
    pub fn creates(answer: &str) -> bool {
        matches!(
            answer,
            "POST /{page-id}/feed"
                | "POST /{ig-user-id}/media"
                | "POST /{ig-user-id}/media_publish"
                | "POST api.instagram.com/oauth/access_token"
                | "POST /{page-id}/video_reels"
                | "POST /{page-id}/videos"
        )
    }

    /// Reads an answer to `answer` as the adapter does (`MetaClient::execute`: usage headers,
    /// the error table, then the JSON and what is read from it). `Ok` holds what was understood.
    pub fn read(answer: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<String> {
        let kind = if creates(answer) { CallKind::Create } else { CallKind::Idempotent };
        let api = ApiResponse { status, headers: headers.clone(), body: body.to_vec().into() };
        let now = Utc::now();
        match answer {
            "POST /{page-id}/feed" | "POST /{ig-user-id}/media" | "POST /{ig-user-id}/media_publish" => {
                execute::<IdBody>(&api, kind, answer).map(|b| format!("{} {:?}", b.id, b.post_id))
            }
            "GET /{container-id}" => execute::<ContainerStatus>(&api, kind, answer).map(|s| format!("{s:?}")),
            "GET /oauth/access_token" | "POST api.instagram.com/oauth/access_token" => {
                // `MetaClient::facebook_long_lived` / `instagram_exchange_code`: core's OAuth
                // client in Meta's token dialect.
                let grant = if kind == CallKind::Create { Grant::Code } else { Grant::Refresh };
                let step = TokenStep { grant, kind, what: answer };
                let dialect = MetaTokens(MetaDialect { usage_cool_down: APP_USAGE_COOL_DOWN });
                read_tokens(&dialect, &api, step, now).map(|t| format!("{:?} {:?}", t.tokens, t.user_id))
            }
            "GET /{ig-user-id}/content_publishing_limit" => {
                execute::<ListBody<PublishingLimit>>(&api, kind, answer).map(|l| format!("{:?}", l.data))
            }
            "GET /{video-id}?fields=status" => execute::<VideoStatusBody>(&api, kind, answer).map(|s| format!("{s:?}")),
            "POST /{page-id}/video_reels" => execute::<ReelStartBody>(&api, kind, answer).map(|s| format!("{s:?}")),
            "POST /{page-id}/videos" => execute::<VideoPhaseBody>(&api, kind, answer).map(|s| format!("{s:?}")),
            other => Err(Error::Config(format!("no such answer: {other}"))),
        }
    }

    /// What the usage headers say (`X-App-Usage`, `X-Business-Use-Case-Usage`).
    pub fn rate_limits(headers: &HeaderMap) -> Vec<RateLimitReport> {
        let _ = regain_access_at(headers, Utc::now());
        usage_reports(headers, Utc::now(), APP_USAGE_COOL_DOWN)
    }

    /// An error answer through the Graph API's table: the error it maps to, for a create and
    /// otherwise, and the upload offsets it may carry.
    pub fn error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> [Error; 2] {
        if let Some(g) = GraphApiError::parse(status, body) {
            let _ = (g.to_string(), g.code_string(), g.user_message(), g.is_not_ready());
        }
        let errors =
            [CallKind::Create, CallKind::Idempotent].map(|kind| map_error(status, headers, body, kind, "fuzz"));
        for e in &errors {
            let _ = expected_offsets(e);
        }
        errors
    }

    /// `MetaClient::execute` after the answer is read.
    fn execute<T: DeserializeOwned>(api: &ApiResponse, kind: CallKind, what: &str) -> Result<T> {
        let _ = usage_reports(&api.headers, Utc::now(), APP_USAGE_COOL_DOWN);
        if !api.is_success() {
            return Err(map_error(api.status, &api.headers, &api.body, kind, what));
        }
        serde_json::from_slice(&api.body).map_err(|e| match kind {
            CallKind::Create => Error::UnknownOutcome {
                message: format!("{what}: unexpected answer (status {}): {e}", api.status),
                source: None,
            },
            CallKind::Idempotent => Error::transient(format!("{what}: unexpected answer (status {}): {e}", api.status)),
        })
    }
}
