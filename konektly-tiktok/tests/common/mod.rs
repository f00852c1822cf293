//! Shared helpers: fixtures, a platform pointed at a mock server, accounts, request matchers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use konektly_core::{
    AccessToken, Account, AccountId, AccountStatus, Checkpoint, Content, Media, MediaHost, MemoryCheckpoints, OwnerId,
    Platform, PlatformId, PublishContext, PublishOutcome, RefreshToken, Result, TargetId, TargetOptions, TokenSet,
    async_trait,
};
use konektly_tiktok::{PrivacyLevel, TikTokBuilder, TikTokOptions, TikTokPlatform};
use url::Url;
use wiremock::{Match, MockServer, Request};

pub const CLIENT_KEY: &str = "awtestclientkey123";
pub const CLIENT_SECRET: &str = "super-secret-client-value";
pub const TOKEN: &str = "act.valid-access-token";

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture with `{{key}}` replaced.
pub fn fixture_with(name: &str, vars: &[(&str, &str)]) -> serde_json::Value {
    let mut s = fixture(name);
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    serde_json::from_str(&s).unwrap()
}

pub fn builder(server: &MockServer) -> TikTokBuilder {
    TikTokBuilder::new()
        .with_client_key(CLIENT_KEY)
        .with_client_secret(CLIENT_SECRET)
        .with_base_url(server.uri())
        .with_chunk_size(5 * 1024 * 1024)
        .with_poll_interval(Duration::from_millis(10))
}

pub fn platform(server: &MockServer) -> TikTokPlatform {
    builder(server).build().unwrap()
}

pub fn account() -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(AccessToken::new(TOKEN));
    tokens.refresh_token = Some(RefreshToken::new("rft.valid-refresh-token"));
    tokens.expires_at = Some(now + chrono::Duration::hours(2));
    tokens.scopes = vec!["user.info.basic".into(), "video.publish".into(), "video.upload".into()];
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("owner-1"),
        platform: PlatformId::new("tiktok"),
        remote_id: "723f24d7-e717-40f8-a2b6-cb8464cd23b4".into(),
        handle: None,
        display_name: Some("Jamie Creator".into()),
        avatar_url: None,
        tokens,
        status: AccountStatus::Active,
        parent: None,
        metadata: Default::default(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// Video bytes of `n` bytes (the content is a counter, so ranges are checkable).
pub fn video(n: usize) -> Media {
    let bytes: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let mut m = Media::from_bytes(bytes);
    m.mime = "video/mp4".parse().unwrap();
    m
}

pub fn photo(url: &str) -> Media {
    Media::from_url(url.parse().unwrap(), "image/jpeg".parse().unwrap()).with_size(100_000)
}

pub fn options(o: TikTokOptions) -> TargetOptions {
    TargetOptions::new(&o).unwrap()
}

pub fn public() -> TikTokOptions {
    TikTokOptions { privacy_level: Some(PrivacyLevel::PublicToEveryone), ..Default::default() }
}

/// A media host that serves everything under one base URL.
#[derive(Debug)]
pub struct TestHost(pub Url);

#[async_trait]
impl MediaHost for TestHost {
    async fn url_for(&self, media: &Media) -> Result<Url> {
        if let konektly_core::MediaSource::Url(u) = &media.source {
            return Ok(u.clone());
        }
        Ok(self.0.join(&format!("media/{}.mp4", media.size.unwrap_or(0))).unwrap())
    }
}

/// What one publish/poll/reconcile call did.
pub struct Run<T> {
    pub result: Result<T>,
    pub checkpoint: Checkpoint,
    pub saves: Arc<MemoryCheckpoints>,
}

pub enum Call {
    Publish,
    Poll,
}

pub async fn run(
    p: &TikTokPlatform,
    account: &Account,
    content: &Content,
    opts: &TargetOptions,
    checkpoint: Checkpoint,
    host: Option<&dyn MediaHost>,
    call: Call,
) -> Run<PublishOutcome> {
    let saves = MemoryCheckpoints::new();
    let mut ctx = PublishContext::builder(TargetId::new(), account, content, opts)
        .checkpoint(checkpoint)
        .hooks(&*saves)
        .media_host(host)
        .build();
    let result = match call {
        Call::Publish => p.publish(&mut ctx).await,
        Call::Poll => p.poll(&mut ctx).await,
    };
    Run { result, checkpoint: ctx.checkpoint().clone(), saves }
}

pub async fn reconcile(
    p: &TikTokPlatform,
    account: &Account,
    checkpoint: Checkpoint,
) -> Result<konektly_core::Reconciliation> {
    let saves = MemoryCheckpoints::new();
    let content = Content::text("x").with_media(video(10));
    let opts = options(public());
    let mut ctx = PublishContext::builder(TargetId::new(), account, &content, &opts)
        .checkpoint(checkpoint)
        .hooks(&*saves)
        .build();
    p.reconcile(&mut ctx).await
}

/// Matches a form-urlencoded body with exactly these fields (any order).
pub struct FormIs(pub BTreeMap<String, String>);

impl FormIs {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        Self(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }
}

impl Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let got: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body).into_owned().collect();
        got == self.0
    }
}

/// Matches a body of exactly these bytes.
pub struct BodyIs(pub Vec<u8>);

impl Match for BodyIs {
    fn matches(&self, request: &Request) -> bool {
        request.body == self.0
    }
}

/// The bytes `video(n)` holds in `first..=last`.
pub fn video_range(first: usize, last: usize) -> Vec<u8> {
    (first..=last).map(|i| (i % 251) as u8).collect()
}
