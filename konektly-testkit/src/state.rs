//! The sandbox's shared state: users, grants and tokens, rate-limit windows, fault knobs, the
//! log of what was published, and each platform's own objects.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::SandboxConfig;

/// The base URL of each served port.
#[derive(Clone, Debug)]
pub(crate) struct Bases {
    pub x: Url,
    pub tiktok: Url,
    pub facebook: Url,
    pub instagram: Url,
    pub youtube: Url,
    pub media: Url,
    pub bluesky: Url,
}

impl Bases {
    pub fn get(&self, platform: &str) -> Option<&Url> {
        Some(match platform {
            "x" | "twitter" => &self.x,
            "tiktok" => &self.tiktok,
            "facebook" | "meta" => &self.facebook,
            "instagram" => &self.instagram,
            "youtube" | "google" => &self.youtube,
            "media" | "control" => &self.media,
            "bluesky" => &self.bluesky,
            _ => return None,
        })
    }

    /// `base` joined with `path` (which starts with `/`).
    pub fn url(&self, platform: &str, path: &str) -> String {
        let base = self.get(platform).map(Url::as_str).unwrap_or("http://127.0.0.1/");
        format!("{}{}", base.trim_end_matches('/'), path)
    }
}

/// App credentials the sandbox accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCredentials {
    /// The client id (TikTok calls it `client_key`, Meta the app id).
    pub client_id: String,
    /// The client secret (sandbox-only, not a secret).
    pub client_secret: String,
}

pub(crate) fn credentials(platform: &str) -> ClientCredentials {
    let p = match platform {
        "twitter" => "x",
        "google" => "youtube",
        "meta" => "facebook",
        p => p,
    };
    let client_id = match p {
        // Meta app ids are numeric.
        "facebook" => "1000000000000001".to_owned(),
        "instagram" => "1000000000000002".to_owned(),
        p => format!("sandbox-{p}-client"),
    };
    ClientCredentials { client_id, client_secret: format!("sandbox-{p}-secret") }
}

/// A user who approves authorizations on a platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxUser {
    /// The platform.
    pub platform: String,
    /// The platform's id of the user (X user id, TikTok open_id, Facebook user id, Instagram
    /// user id, YouTube channel id).
    pub id: String,
    /// The handle (`@username`, channel handle…).
    pub handle: String,
    /// The display name.
    pub name: String,
    /// On Facebook: the id of the Page the user manages.
    pub page_id: Option<String>,
    /// On Facebook: the Instagram professional account linked to that Page.
    pub instagram_id: Option<String>,
}

/// Fault knobs of one platform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Share of API requests (0.0–1.0) refused with a `503` in the platform's error shape,
    /// before anything is done.
    #[serde(default)]
    pub error_rate: f64,
    /// The next this many API requests are refused as rate limited (`429` with the
    /// platform's headers; Meta answers its throttling codes as it really does).
    #[serde(default)]
    pub rate_limit_burst: u32,
    /// Added before every API response.
    #[serde(default, with = "konektly_core::duration_ms")]
    pub latency: Duration,
    /// The next this many posts are accepted (they are published) and then the connection is
    /// dropped without an answer.
    #[serde(default)]
    pub drop_after_accept: u32,
    /// Share of API requests (0.0–1.0) answered as rate limited (see `rate_limit_burst`).
    #[serde(default)]
    pub rate_limit_rate: f64,
    /// Share of accepted posts (0.0–1.0) whose answer is dropped after they were published.
    #[serde(default)]
    pub drop_after_accept_rate: f64,
    /// Share of API requests (0.0–1.0) delayed by `latency_spike` before they are handled.
    #[serde(default)]
    pub latency_spike_rate: f64,
    /// How long a latency spike lasts.
    #[serde(default, with = "konektly_core::duration_ms")]
    pub latency_spike: Duration,
    /// Per request kind (`tweet`, `feed`, `media_publish`, `upload`… see the crate docs): the
    /// next this many requests of that kind are carried out — the post is committed — and the
    /// connection is then dropped without an answer.
    #[serde(default)]
    pub lose_answer: BTreeMap<String, u32>,
    /// Per request kind: the next this many requests of that kind are dropped before anything
    /// is done (nothing is committed, no answer comes).
    #[serde(default)]
    pub lose_request: BTreeMap<String, u32>,
    /// Per request kind: the next this many requests of that kind are carried out and then
    /// answered `503` in the platform's error shape.
    #[serde(default)]
    pub error_after_commit: BTreeMap<String, u32>,
    /// Per request kind: after letting this many requests of that kind through, the next one
    /// is held without an answer (and without acting on it) until the client gives up — as a
    /// worker that died mid-request leaves it. The entry is then removed.
    #[serde(default)]
    pub stall_request: BTreeMap<String, u32>,
    /// How long after its creation a post shows in the account's listings (X timeline, Page
    /// feed, Instagram media, YouTube uploads), as the platforms' eventually consistent reads.
    #[serde(default, with = "konektly_core::duration_ms")]
    pub listing_lag: Duration,
}

/// One media item of a published post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// The type sniffed from the bytes (`image/jpeg`, `video/mp4`…), or the declared one.
    pub mime: String,
    /// Bytes received.
    pub size: u64,
    /// Hex SHA-256 of the bytes received.
    pub sha256: String,
}

/// One post as the sandbox published it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostedRecord {
    /// Order of publication across the sandbox.
    pub seq: u64,
    /// The platform id.
    pub platform: String,
    /// The platform's id of the account that posted (user, Page, channel, Instagram account).
    pub account_id: String,
    /// Its handle or name.
    pub account_handle: String,
    /// The post's id at the platform.
    pub id: String,
    /// Its public URL, when it has one.
    pub url: Option<String>,
    /// The text, caption or title.
    pub text: String,
    /// The media, in order.
    pub media: Vec<MediaRecord>,
    /// The post this one replies to (X threads).
    pub reply_to: Option<String>,
    /// What it is: `tweet`, `video`, `photo`, `feed`, `reel`, `image`, `carousel`…
    pub kind: String,
    /// `published`, `scheduled`, `inbox` (TikTok drafts), `private` or `deleted`.
    pub status: String,
    /// When the platform will make it public, for natively scheduled posts.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Platform options as sent (privacy level, YouTube status…).
    pub options: serde_json::Value,
    /// When it was published.
    pub created_at: DateTime<Utc>,
}

/// One authorization a user gave an app.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub platform: String,
    pub user: String,
    pub scopes: Vec<String>,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct AccessInfo {
    pub grant: u64,
    /// Whom the token acts for (a user, or a Page for Page tokens).
    pub subject: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub issued_at: DateTime<Utc>,
    pub long_lived: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct RefreshInfo {
    pub grant: u64,
    pub expires_at: Option<DateTime<Utc>>,
    pub used: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct AuthCode {
    pub platform: String,
    pub redirect_uri: String,
    pub challenge: Option<(String, String)>,
    pub user: String,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Missing,
    Invalid,
    Expired,
    Revoked,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct RateState {
    pub limit: u32,
    pub remaining: u32,
    pub reset: DateTime<Utc>,
    pub allowed: bool,
}

/// A call, for holding its caller to a 429's wait: platform, caller credential, call.
pub(crate) type CallKey = (String, String, String);

/// When a 429 was answered, and until when it asked the caller to wait.
pub(crate) type ToldToWait = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

#[derive(Default)]
pub(crate) struct Inner {
    pub users: Vec<SandboxUser>,
    pub grants: HashMap<u64, Grant>,
    pub access: HashMap<String, AccessInfo>,
    pub refresh: HashMap<String, RefreshInfo>,
    pub codes: HashMap<String, AuthCode>,
    pub posts: Vec<PostedRecord>,
    pub seq: u64,
    pub windows: HashMap<String, (DateTime<Utc>, u32)>,
    pub faults: HashMap<String, Faults>,
    pub requests: HashMap<String, u64>,
    /// Requests per (platform, kind), counted before any fault.
    pub request_kinds: HashMap<(String, String), u64>,
    /// Requests per (platform, kind) the platform carried out with a 2xx (answered or not).
    pub succeeded_kinds: HashMap<(String, String), u64>,
    /// Per (platform, caller, call): when a 429 asked that caller to wait, and until when.
    pub told_to_wait: HashMap<CallKey, ToldToWait>,
    /// Requests that came before the wait their caller was given (per platform).
    pub early_requests: HashMap<String, u64>,
    /// Of those, the ones that were not reads (`GET`): creates, uploads, deletes.
    pub early_writes: HashMap<String, u64>,
    pub x: crate::x::XState,
    pub tiktok: crate::tiktok::TikTokState,
    pub meta: crate::meta::MetaState,
    pub youtube: crate::youtube::YouTubeState,
    pub bluesky: crate::bluesky::BlueskyState,
}

pub(crate) struct State {
    pub cfg: SandboxConfig,
    pub bases: Bases,
    pub media_dir: PathBuf,
    pub inner: Mutex<Inner>,
    /// Fetches media by URL (Instagram, TikTok and Facebook pull from the media host).
    pub http: reqwest::Client,
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(crate) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A random URL-safe token with a prefix.
pub(crate) fn token(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl State {
    pub fn new(cfg: SandboxConfig, bases: Bases, media_dir: PathBuf) -> Self {
        let http = konektly_core::HttpClient::new().map(|c| c.client().clone()).unwrap_or_default();
        let state = State { cfg, bases, media_dir, inner: Mutex::new(Inner::default()), http };
        {
            let mut inner = state.inner.lock().unwrap();
            for p in crate::PLATFORMS {
                if p != "instagram" {
                    add_user_locked(&mut inner, p, "konektly_sandbox");
                }
            }
        }
        state
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn users(&self, platform: &str) -> Vec<SandboxUser> {
        self.lock().users.iter().filter(|u| u.platform == platform).cloned().collect()
    }

    pub fn add_user(&self, platform: &str, handle: &str) -> SandboxUser {
        add_user_locked(&mut self.lock(), platform, handle)
    }

    pub fn posts(&self, platform: Option<&str>, account: Option<&str>) -> Vec<PostedRecord> {
        let mut inner = self.lock();
        self.settle(&mut inner);
        inner
            .posts
            .iter()
            .filter(|p| platform.is_none_or(|x| p.platform == x) && account.is_none_or(|a| p.account_id == a))
            .cloned()
            .collect()
    }

    /// Moves time-driven work forward (TikTok processing ends in a post).
    pub fn settle(&self, inner: &mut Inner) {
        crate::tiktok::settle(self, inner);
    }

    pub fn faults(&self, platform: &str) -> Faults {
        self.lock().faults.get(platform).cloned().unwrap_or_default()
    }

    pub fn set_faults(&self, platform: &str, faults: Faults) {
        self.lock().faults.insert(platform.to_owned(), faults);
    }

    pub fn request_count(&self, platform: &str) -> u64 {
        self.lock().requests.get(platform).copied().unwrap_or(0)
    }

    /// Whether the post just accepted must be answered by dropping the connection.
    pub fn take_drop(&self, platform: &str) -> bool {
        let mut inner = self.lock();
        match inner.faults.get_mut(platform) {
            Some(f) if f.drop_after_accept > 0 => {
                f.drop_after_accept -= 1;
                true
            }
            Some(f) => f.drop_after_accept_rate > 0.0 && rand::random::<f64>() < f.drop_after_accept_rate,
            None => false,
        }
    }

    pub fn token_ttl(&self, real: Duration) -> Duration {
        self.cfg.access_token_ttl.unwrap_or(real)
    }
}

impl Inner {
    pub fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn user(&self, platform: &str, id: &str) -> Option<&SandboxUser> {
        self.users.iter().find(|u| u.platform == platform && u.id == id)
    }

    pub fn new_grant(&mut self, platform: &str, user: &str, scopes: Vec<String>) -> u64 {
        let id = self.next();
        self.grants.insert(id, Grant { platform: platform.to_owned(), user: user.to_owned(), scopes, revoked: false });
        id
    }

    pub fn issue_access(
        &mut self,
        prefix: &str,
        grant: u64,
        subject: &str,
        ttl: Option<Duration>,
        long_lived: bool,
    ) -> String {
        let t = token(prefix);
        let now = now();
        self.access.insert(
            t.clone(),
            AccessInfo {
                grant,
                subject: subject.to_owned(),
                expires_at: ttl.map(|d| now + chrono_dur(d)),
                issued_at: now,
                long_lived,
            },
        );
        t
    }

    pub fn issue_refresh(&mut self, prefix: &str, grant: u64, ttl: Option<Duration>) -> String {
        let t = token(prefix);
        self.refresh
            .insert(t.clone(), RefreshInfo { grant, expires_at: ttl.map(|d| now() + chrono_dur(d)), used: false });
        t
    }

    /// The token's facts, if it is live and belongs to one of `platforms`.
    pub fn check_access(&self, token: Option<&str>, platforms: &[&str]) -> Result<(AccessInfo, Grant), TokenProblem> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenProblem::Missing)?;
        let info = self.access.get(token).ok_or(TokenProblem::Invalid)?;
        let grant = self.grants.get(&info.grant).ok_or(TokenProblem::Invalid)?;
        if !platforms.contains(&grant.platform.as_str()) {
            return Err(TokenProblem::Invalid);
        }
        if grant.revoked {
            return Err(TokenProblem::Revoked);
        }
        if info.expires_at.is_some_and(|t| t <= now()) {
            return Err(TokenProblem::Expired);
        }
        Ok((info.clone(), grant.clone()))
    }

    pub fn revoke_grant(&mut self, grant: u64) {
        if let Some(g) = self.grants.get_mut(&grant) {
            g.revoked = true;
        }
    }

    /// Counts one call in a fixed window.
    pub fn hit(&mut self, key: String, limit: u32, window: Duration) -> RateState {
        let now = now();
        let entry = self.windows.entry(key).or_insert((now + chrono_dur(window), 0));
        if entry.0 <= now {
            *entry = (now + chrono_dur(window), 0);
        }
        let allowed = entry.1 < limit;
        if allowed {
            entry.1 += 1;
        }
        RateState { limit, remaining: limit.saturating_sub(entry.1), reset: entry.0, allowed }
    }

    pub fn record(&mut self, mut post: PostedRecord) -> u64 {
        post.seq = self.next();
        let seq = post.seq;
        self.posts.push(post);
        seq
    }

    pub fn post_mut(&mut self, platform: &str, id: &str) -> Option<&mut PostedRecord> {
        self.posts.iter_mut().find(|p| p.platform == platform && p.id == id)
    }
}

fn add_user_locked(inner: &mut Inner, platform: &str, handle: &str) -> SandboxUser {
    let n = inner.users.iter().filter(|u| u.platform == platform).count() as u64 + 1;
    // `konektly_sandbox` → `Konektly Sandbox`
    let name = handle
        .split(['_', '.', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut user = SandboxUser {
        platform: platform.to_owned(),
        id: String::new(),
        handle: handle.to_owned(),
        name,
        page_id: None,
        instagram_id: None,
    };
    match platform {
        "x" => user.id = format!("{}", 1_580_000_000_000_000_000u64 + n),
        "tiktok" => user.id = format!("-000sandbox-open-id-{n:04}"),
        "youtube" => user.id = format!("UCsandboxChannel{n:08}"),
        "facebook" => {
            user.id = format!("{}", 10_000_000_000_000u64 + n);
            let page = format!("{}", 20_000_000_000_000u64 + n);
            let ig = format!("{}", 17_841_400_000_000_000u64 + n);
            user.page_id = Some(page.clone());
            user.instagram_id = Some(ig.clone());
            inner.meta.facebook.pages.insert(
                page.clone(),
                crate::meta::Page {
                    id: page.clone(),
                    name: format!("{} Page", user.name),
                    owner: user.id.clone(),
                    instagram: Some(ig.clone()),
                },
            );
            let ig_user = SandboxUser {
                platform: "instagram".into(),
                id: ig,
                handle: format!("{handle}.ig"),
                name: user.name.clone(),
                page_id: Some(page),
                instagram_id: None,
            };
            inner.users.push(ig_user);
        }
        "instagram" => user.id = format!("{}", 17_841_409_000_000_000u64 + n),
        "bluesky" => {
            user.id = crate::bluesky::did_for(n);
            user.handle = crate::bluesky::handle_for(handle);
        }
        _ => user.id = format!("{platform}-{n}"),
    }
    inner.users.push(user.clone());
    user
}
