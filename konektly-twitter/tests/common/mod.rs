//! Shared helpers for the X adapter's tests: an account, a platform pointed at a wiremock
//! server, a publish/poll/reconcile driver with in-memory checkpoints, and request matchers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use konektly_core::{
    AccessToken, Account, AccountId, AccountStatus, Checkpoint, Content, MemoryCheckpoints, OwnerId, Platform,
    PlatformId, PublishContext, PublishOutcome, Reconciliation, RefreshToken, Result, TargetId, TargetOptions,
    TokenSet,
};
use konektly_twitter::{XBuilder, XPlatform};
use wiremock::Request;

pub const TOKEN: &str = "test-access-token-7f3a";
pub const REFRESH: &str = "test-refresh-token-9b2c";
pub const USER_ID: &str = "2244994945";

pub fn account() -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(AccessToken::new(TOKEN));
    tokens.refresh_token = Some(RefreshToken::new(REFRESH));
    tokens.expires_at = Some(now + chrono::Duration::hours(2));
    tokens.scopes = konektly_twitter::DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("owner-1"),
        platform: PlatformId::new("x"),
        remote_id: USER_ID.into(),
        handle: Some("konektly".into()),
        display_name: Some("Konektly".into()),
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

pub fn platform(base: &str) -> XPlatform {
    XBuilder::new().with_client_id("client-abc").with_base_url(base).with_chunk_size(1 << 20).build().unwrap()
}

/// What one call of publish, poll or reconcile did.
pub struct Run<T> {
    pub result: Result<T>,
    pub checkpoint: Checkpoint,
    pub saver: Arc<MemoryCheckpoints>,
}

pub enum Call {
    Publish,
    Poll,
}

pub async fn drive(
    x: &XPlatform,
    call: Call,
    content: &Content,
    options: &TargetOptions,
    checkpoint: Checkpoint,
    started: DateTime<Utc>,
) -> Run<PublishOutcome> {
    let account = account();
    let saver = MemoryCheckpoints::new();
    let mut ctx = PublishContext::builder(TargetId::new(), &account, content, options)
        .started_at(started)
        .checkpoint(checkpoint)
        .hooks(&*saver)
        .build();
    let result = match call {
        Call::Publish => x.publish(&mut ctx).await,
        Call::Poll => x.poll(&mut ctx).await,
    };
    let checkpoint = ctx.checkpoint().clone();
    Run { result, checkpoint, saver }
}

pub async fn publish(x: &XPlatform, content: &Content, options: &TargetOptions) -> Run<PublishOutcome> {
    drive(x, Call::Publish, content, options, Checkpoint::default(), Utc::now()).await
}

pub async fn reconcile(
    x: &XPlatform,
    content: &Content,
    options: &TargetOptions,
    checkpoint: Checkpoint,
    started: DateTime<Utc>,
) -> Run<Reconciliation> {
    let account = account();
    let saver = MemoryCheckpoints::new();
    let mut ctx = PublishContext::builder(TargetId::new(), &account, content, options)
        .started_at(started)
        .checkpoint(checkpoint)
        .hooks(&*saver)
        .build();
    let result = x.reconcile(&mut ctx).await;
    let checkpoint = ctx.checkpoint().clone();
    Run { result, checkpoint, saver }
}

/// The parts of a multipart/form-data body, by name.
pub fn multipart_parts(req: &Request) -> HashMap<String, Vec<u8>> {
    let ct = req.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(boundary) = ct.split("boundary=").nth(1) else { return HashMap::new() };
    let delim = format!("--{boundary}");
    let body = &req.body;
    let mut out = HashMap::new();
    let mut pos = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    };
    while let Some(start) = find(body, delim.as_bytes(), pos) {
        let head_start = start + delim.len() + 2;
        let Some(head_end) = find(body, b"\r\n\r\n", head_start) else { break };
        let head = String::from_utf8_lossy(&body[head_start..head_end]).to_string();
        let data_start = head_end + 4;
        let Some(next) = find(body, format!("\r\n{delim}").as_bytes(), data_start) else { break };
        if let Some(name) = head.split("name=\"").nth(1).and_then(|s| s.split('"').next()) {
            out.insert(name.to_owned(), body[data_start..next].to_vec());
        }
        pos = next + 2;
    }
    out
}

/// Matches an append of `segment` whose media part is exactly `bytes`.
pub fn append_of(segment: u32, bytes: Vec<u8>) -> impl Fn(&Request) -> bool + Send + Sync + 'static {
    move |req: &Request| {
        let parts = multipart_parts(req);
        parts.get("segment_index").map(|s| s.as_slice()) == Some(segment.to_string().as_bytes())
            && parts.get("media") == Some(&bytes)
    }
}

/// Matches a form-urlencoded body with exactly these fields.
pub fn form_is(expected: &[(&str, &str)]) -> impl Fn(&Request) -> bool + Send + Sync + 'static {
    let expected: HashMap<String, String> = expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |req: &Request| {
        let got: HashMap<String, String> = url::form_urlencoded::parse(&req.body).into_owned().collect();
        got == expected
    }
}

/// A PNG-looking payload of `len` bytes (sniffed as image/png).
pub fn png_bytes(len: usize, fill: u8) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0".to_vec();
    v.resize(len, fill);
    v
}

/// Epoch seconds an hour from now, as X sends in `x-rate-limit-reset`.
pub fn reset_in_an_hour() -> String {
    (Utc::now() + chrono::Duration::hours(1)).timestamp().to_string()
}

pub fn created(id: &str, text: &str) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(201)
        .set_body_json(serde_json::json!({"data": {"id": id, "text": text, "edit_history_tweet_ids": [id]}}))
}
