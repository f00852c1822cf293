//! # konektly-testkit
//!
//! A local sandbox of the platforms konektly publishes to. [`Sandbox::start`] serves, on
//! loopback ports, stateful emulators of X, TikTok, Facebook Pages, Instagram, YouTube, Bluesky
//! (a PDS with its PLC directory) and Google OAuth that follow the real APIs (paths, bodies,
//! status codes, limits), so the real
//! adapters, pointed at [`Sandbox::base_url`] with their `with_base_url` setters, run against
//! them unchanged:
//!
//! - authorize pages approve at once and redirect to the `redirect_uri` with `code` and
//!   `state`; token endpoints check the redirect URI and PKCE (S256), give real expiries and
//!   rotate refresh tokens where the platform does; revoke ends the grant;
//! - posting and upload endpoints enforce the documented rules: X chunked media
//!   (initialize/append/finalize/status, with processing states) and duplicate-content refusal,
//!   TikTok's chunk plan and status polling, Instagram containers that finish after a delay,
//!   YouTube resumable sessions with `308` and `Range`;
//! - rate limits with the platform's own headers;
//! - a media host serving files at public-looking URLs ([`SandboxMediaHost`], a
//!   [`konektly_core::MediaHost`]);
//! - an inspection API ([`Sandbox::posts`]: what each account posted, in order, with media sizes
//!   and SHA-256 hashes) and fault knobs ([`Faults`]: error rate, 429 bursts, latency, dropping
//!   the connection after a post was accepted).
//!
//! Uploads are counted and hashed as they stream in, never kept whole in memory.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use konektly_testkit::Sandbox;
//! let sandbox = Sandbox::start().await?;
//! let x_base = sandbox.base_url("x"); // give this to XBuilder::with_base_url
//! let creds = sandbox.credentials("x"); // and these as the app's client id and secret
//! # let _ = (x_base, creds);
//! // … publish with konektly …
//! for post in sandbox.posts() {
//!     println!("{} {} {} media={}", post.platform, post.account_handle, post.id, post.media.len());
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Handlers answer errors as HTTP responses, and publishing records carry many facts.
#![allow(clippy::result_large_err, clippy::too_many_arguments)]

mod bluesky;
pub mod conformance;
mod control;
mod digest;
pub mod hostile;
mod media_host;
mod meta;
mod oauth;
mod server;
mod state;
mod tiktok;
mod x;
mod youtube;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use bluesky::{APP_PASSWORD as BLUESKY_APP_PASSWORD, BlueskyRecord};
pub use control::SandboxComment;
pub use media_host::SandboxMediaHost;
pub use state::{ClientCredentials, Faults, MediaRecord, PostedRecord, SandboxUser};

use state::{Bases, State};

/// The platform ids the sandbox serves (as konektly names them), plus `google` (the OAuth
/// host of YouTube, served on the same port) and `media` (the media host).
pub const PLATFORMS: [&str; 6] = ["x", "tiktok", "facebook", "instagram", "youtube", "bluesky"];

/// How the sandbox behaves. The defaults suit demos and end-to-end tests.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// How long asynchronous work takes at the platforms: X video processing, TikTok
    /// processing, Instagram containers, Facebook and YouTube video processing.
    pub processing_delay: Duration,
    /// Overrides every access token's lifetime (to exercise refresh); `None` keeps each
    /// platform's real lifetime (X 2 h, TikTok 24 h, Google 1 h, Meta 1 h / 60 days).
    pub access_token_ttl: Option<Duration>,
    /// How long a 429 of a burst (see [`Faults::rate_limit_burst`]) asks the client to wait.
    pub rate_limit_retry: Duration,
    /// Largest chunk X accepts on `/2/media/upload/{id}/append` (larger ones get `413`).
    pub x_max_chunk: usize,
    /// Posts per user per 15 minutes on X `POST /2/tweets`.
    pub x_tweets_per_15min: u32,
    /// Instagram API-published posts per account per 24 h (`content_publishing_limit`).
    pub instagram_publish_limit: u32,
    /// YouTube quota units per day (general bucket).
    pub youtube_daily_quota: u32,
    /// YouTube `videos.insert` calls per day (own bucket).
    pub youtube_daily_uploads: u32,
    /// Whether `api.instagram.com/oauth/access_token` wraps its answer in `data: [...]` as the
    /// Instagram docs show (the live API has been seen answering flat).
    pub instagram_token_wrapped: bool,
    /// The window of TikTok's per-token limits (6 post inits, 20 creator_info, 30 status
    /// fetches): one minute as TikTok documents; shorter for load tests (with konektly-tiktok's
    /// `RateLimits::window` set to match).
    pub tiktok_rate_window: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            processing_delay: Duration::from_millis(1500),
            access_token_ttl: None,
            rate_limit_retry: Duration::from_secs(2),
            x_max_chunk: 4 * 1024 * 1024,
            x_tweets_per_15min: 100,
            instagram_publish_limit: 50,
            youtube_daily_quota: 10_000,
            youtube_daily_uploads: 100,
            instagram_token_wrapped: true,
            tiktok_rate_window: Duration::from_secs(60),
        }
    }
}

/// A running sandbox. Servers stop when it is dropped.
pub struct Sandbox {
    state: Arc<State>,
    media_host: Arc<SandboxMediaHost>,
    cancel: CancellationToken,
    _media_dir: tempfile::TempDir,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("bases", &self.state.bases).finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Sandbox {
    /// Starts a sandbox with the default configuration on free loopback ports.
    pub async fn start() -> std::io::Result<Sandbox> {
        Self::start_with(SandboxConfig::default()).await
    }

    /// Starts a sandbox with `config`.
    pub async fn start_with(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let mut listeners = Vec::new();
        let mut urls = Vec::new();
        for _ in 0..7 {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let port = l.local_addr()?.port();
            urls.push(Url::parse(&format!("http://127.0.0.1:{port}/")).expect("a loopback URL parses"));
            listeners.push(l);
        }
        let bases = Bases {
            x: urls[0].clone(),
            tiktok: urls[1].clone(),
            facebook: urls[2].clone(),
            instagram: urls[3].clone(),
            youtube: urls[4].clone(),
            media: urls[5].clone(),
            bluesky: urls[6].clone(),
        };
        let media_dir = tempfile::tempdir()?;
        let state = Arc::new(State::new(config, bases, media_dir.path().to_path_buf()));
        let cancel = CancellationToken::new();
        let routers = [
            ("x", x::router(state.clone())),
            ("tiktok", tiktok::router(state.clone())),
            ("facebook", meta::facebook_router(state.clone())),
            ("instagram", meta::instagram_router(state.clone())),
            ("youtube", youtube::router(state.clone())),
            ("media", control::router(state.clone())),
            ("bluesky", bluesky::router(state.clone())),
        ];
        for (listener, (name, router)) in listeners.into_iter().zip(routers) {
            tokio::spawn(server::serve(listener, name, router, state.clone(), cancel.clone()));
        }
        let media_host = Arc::new(SandboxMediaHost::new(media_dir.path().to_path_buf(), state.bases.media.clone()));
        Ok(Sandbox { state, media_host, cancel, _media_dir: media_dir })
    }

    /// The base URL to give an adapter's `with_base_url` for `platform` (`x`, `tiktok`,
    /// `facebook`, `instagram`, `youtube`; `google` is YouTube's; `media` is the media host and
    /// the inspection API). Every host of a platform is served there, at its real paths.
    ///
    /// # Panics
    /// On an unknown platform id.
    pub fn base_url(&self, platform: &str) -> Url {
        self.try_base_url(platform).unwrap_or_else(|| panic!("the sandbox has no platform `{platform}`"))
    }

    /// Like [`Sandbox::base_url`], `None` for an unknown platform.
    pub fn try_base_url(&self, platform: &str) -> Option<Url> {
        self.state.bases.get(platform).cloned()
    }

    /// The app credentials the sandbox accepts for `platform` (`instagram` is the Instagram
    /// Login app; Instagram through Facebook Login uses `facebook`'s).
    pub fn credentials(&self, platform: &str) -> ClientCredentials {
        state::credentials(platform)
    }

    /// The users who approve an authorization on `platform` (the first is the default;
    /// `login_hint=<handle>` on the authorize URL picks another).
    pub fn users(&self, platform: &str) -> Vec<SandboxUser> {
        self.state.users(platform)
    }

    /// Adds a user to `platform` (on `facebook` it comes with a Page and a linked Instagram
    /// account). Returns it.
    pub fn add_user(&self, platform: &str, handle: &str) -> SandboxUser {
        self.state.add_user(platform, handle)
    }

    /// Adds a Page (without a linked Instagram account) to Facebook user `owner` (a user id,
    /// as in [`Sandbox::users`]). Returns the Page's id.
    pub fn add_page(&self, owner: &str, name: &str) -> String {
        meta::add_page(&mut self.state.lock(), owner, name)
    }

    /// Everything published so far on every platform, in order.
    pub fn posts(&self) -> Vec<PostedRecord> {
        self.state.posts(None, None)
    }

    /// What `account` (the platform's id of the user, Page, channel or Instagram account)
    /// published on `platform`, in order.
    pub fn posts_of(&self, platform: &str, account: &str) -> Vec<PostedRecord> {
        self.state.posts(Some(platform), Some(account))
    }

    /// The fault knobs of `platform`, as set.
    pub fn faults(&self, platform: &str) -> Faults {
        self.state.faults(platform)
    }

    /// Sets the fault knobs of `platform`.
    pub fn set_faults(&self, platform: &str, faults: Faults) {
        self.state.set_faults(platform, faults)
    }

    /// Requests that came before the wait a `429` had given their caller for the same call
    /// (`Retry-After`, or X's `x-rate-limit-reset`): a client that honours every wait has none.
    pub fn early_requests(&self, platform: &str) -> u64 {
        self.state.lock().early_requests.get(platform).copied().unwrap_or(0)
    }

    /// The [early requests](Self::early_requests) that were not reads (`GET`): creates,
    /// uploads, deletes.
    pub fn early_writes(&self, platform: &str) -> u64 {
        self.state.lock().early_writes.get(platform).copied().unwrap_or(0)
    }

    /// How many API requests `platform` received (authorize pages and the inspection API are
    /// not counted).
    pub fn request_count(&self, platform: &str) -> u64 {
        self.state.request_count(platform)
    }

    /// The media host: makes local media reachable at a URL served by the sandbox (Instagram,
    /// TikTok photos and pull-from-URL fetch from it).
    pub fn media_host(&self) -> Arc<SandboxMediaHost> {
        self.media_host.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.state.cfg
    }

    /// Changes the fault knobs of `platform` in place (`|f| f.lose_answer.insert("tweet".into(), 1)`).
    pub fn update_faults(&self, platform: &str, change: impl FnOnce(&mut Faults)) {
        let mut inner = self.state.lock();
        change(inner.faults.entry(platform.to_owned()).or_default());
    }

    /// How many requests of `kind` (see [`Faults::lose_answer`]) `platform` received, lost
    /// ones included.
    pub fn requests_of(&self, platform: &str, kind: &str) -> u64 {
        self.state.lock().request_kinds.get(&(platform.to_owned(), kind.to_owned())).copied().unwrap_or(0)
    }

    /// How many requests of `kind` `platform` carried out with a `2xx` — answered, or with the
    /// answer lost after it acted — as opposed to [`Sandbox::requests_of`], which counts every
    /// arrival.
    pub fn successes_of(&self, platform: &str, kind: &str) -> u64 {
        self.state.lock().succeeded_kinds.get(&(platform.to_owned(), kind.to_owned())).copied().unwrap_or(0)
    }

    /// Fills an account with posts made outside konektly, as a busy account has: one post per
    /// `(text, created_at)`, published by `account` (the platform's id of the user, Page or
    /// Instagram account) without any request. They show in the account's listings (X
    /// timeline, Page feed, Instagram media) and in [`Sandbox::posts_of`] (kind `filler`).
    /// Returns their ids.
    ///
    /// # Panics
    /// On a platform without listings here (`tiktok`, `youtube`: their reconcile reads ids
    /// from the checkpoint, so filling them tests nothing).
    pub fn fill(&self, platform: &str, account: &str, posts: &[(String, DateTime<Utc>)]) -> Vec<String> {
        let mut inner = self.state.lock();
        let handle = inner.user(platform, account).map(|u| u.handle.clone()).unwrap_or_default();
        let mut ids = Vec::new();
        for (text, at) in posts {
            let (id, url) = match platform {
                "x" => x::fill(&mut inner, account, text, *at),
                "facebook" => meta::fill_page(&mut inner, account, text, *at),
                "instagram" => meta::fill_ig(&mut inner, account, text, *at),
                other => panic!("the sandbox cannot fill accounts of `{other}`"),
            };
            inner.record(PostedRecord {
                seq: 0,
                platform: platform.to_owned(),
                account_id: account.to_owned(),
                account_handle: handle.clone(),
                id: id.clone(),
                url: Some(url),
                text: text.clone(),
                media: Vec::new(),
                reply_to: None,
                kind: "filler".into(),
                status: "published".into(),
                scheduled_for: None,
                options: serde_json::Value::Null,
                created_at: *at,
            });
            ids.push(id);
        }
        ids
    }

    /// The records of Bluesky repository `did` in `collection` (`app.bsky.feed.post`), oldest
    /// record key first, as the sandbox's PDS holds them.
    pub fn bluesky_records(&self, did: &str, collection: &str) -> Vec<BlueskyRecord> {
        bluesky::records(&self.state.lock(), did, collection)
    }

    /// Revokes every authorization `user` (a platform user id, as in [`Sandbox::users`]) gave
    /// on `platform`, as the user would in the platform's settings: their tokens stop working.
    pub fn revoke_user(&self, platform: &str, user: &str) {
        let mut inner = self.state.lock();
        let grants: Vec<u64> =
            inner.grants.iter().filter(|(_, g)| g.platform == platform && g.user == user).map(|(id, _)| *id).collect();
        for g in grants {
            inner.revoke_grant(g);
        }
    }
}
