//! Shared helpers of the integration tests: a platform pointed at a wiremock server, an account,
//! deterministic video bytes, a form-body matcher and a publish context.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use konektly_core::{
    AccessToken, Account, AccountId, AccountStatus, Checkpoint, Content, HttpConfig, Media, MemoryCheckpoints, OwnerId,
    PlatformId, PublishContext, RefreshToken, TargetId, TargetOptions, TokenSet,
};
use konektly_youtube::{SCOPE_READONLY, SCOPE_UPLOAD, YouTubeBuilder, YouTubeOptions, YouTubePlatform};
use wiremock::{Match, Request};

pub const CLIENT_SECRET: &str = "GOCSPX-test-client-secret";
pub const ACCESS: &str = "ya29.stored-access-token";
pub const REFRESH: &str = "1//stored-refresh-token";
/// A chunk of 256 KiB, the smallest allowed.
pub const CHUNK: usize = 256 * 1024;

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("a fixture")
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).expect("a JSON fixture")
}

/// An HTTP client that never retries on its own, so each request in a test is one the adapter
/// chose to send.
pub fn http_config() -> HttpConfig {
    HttpConfig { max_retries: 0, timeout: Duration::from_secs(5), ..HttpConfig::default() }
}

pub fn builder(base: &str) -> YouTubeBuilder {
    YouTubeBuilder::new()
        .with_client_id("1234.apps.googleusercontent.com")
        .with_client_secret(CLIENT_SECRET)
        .with_base_url(base)
        .with_chunk_size(CHUNK)
        .with_poll_interval(Duration::from_secs(20))
        .with_upload_retries(3, Duration::ZERO)
        .with_http_config(http_config())
}

pub fn platform(base: &str) -> YouTubePlatform {
    builder(base).build().expect("a platform")
}

pub fn account() -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(AccessToken::new(ACCESS));
    tokens.refresh_token = Some(RefreshToken::new(REFRESH));
    tokens.expires_at = Some(now + chrono::Duration::hours(1));
    tokens.scopes = vec![SCOPE_UPLOAD.into(), SCOPE_READONLY.into()];
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("owner-1"),
        platform: PlatformId::new("youtube"),
        remote_id: "UC_x5XG1OV2P6uZZ5FSM9Ttw".into(),
        handle: Some("@konektlydemo".into()),
        display_name: Some("Konektly Demo".into()),
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

/// `len` bytes that differ from position to position, so a misplaced byte shows.
pub fn video_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ ((i / 251) % 256) as u8).collect()
}

pub fn video(len: usize) -> Media {
    let mut m = Media::from_bytes(video_bytes(len));
    m.mime = "video/mp4".parse().unwrap();
    m
}

pub fn png() -> Media {
    // A 1×1 PNG.
    let bytes: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00,
        0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D,
        0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    Media::from_bytes(bytes.to_vec())
}

/// Matches a form body with exactly these fields (in any order).
pub struct FormIs(pub BTreeMap<String, String>);

pub fn form_is(pairs: &[(&str, &str)]) -> FormIs {
    FormIs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

impl Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let got: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body).into_owned().collect();
        let is_form = request
            .headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("application/x-www-form-urlencoded"));
        is_form && got == self.0
    }
}

/// Runs `f` with a publish context over `account`, `content`, `options` and `checkpoint`;
/// returns its result, the checkpoint it left and every checkpoint it saved.
pub async fn with_ctx<T>(
    account: &Account,
    content: &Content,
    options: &TargetOptions,
    checkpoint: Checkpoint,
    f: impl AsyncFnOnce(&mut PublishContext<'_>) -> T,
) -> (T, Checkpoint, std::sync::Arc<MemoryCheckpoints>) {
    let saver = MemoryCheckpoints::new();
    let mut ctx = PublishContext::builder(TargetId::new(), account, content, options)
        .checkpoint(checkpoint)
        .hooks(&*saver)
        .build();
    let out = f(&mut ctx).await;
    let cp = ctx.checkpoint().clone();
    (out, cp, saver)
}

/// The requests the server received with this method and path.
pub async fn requests(server: &wiremock::MockServer, method: &str, path: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == method && r.url.path() == path)
        .collect()
}

pub fn header_of(r: &Request, name: &str) -> Option<String> {
    r.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

pub fn content(len: usize) -> Content {
    Content::text("What we shipped this week.").with_media(video(len))
}

pub fn opts(o: &YouTubeOptions) -> TargetOptions {
    TargetOptions::new(o).unwrap()
}
