//! Shared helpers: a platform pointed at a wiremock server, accounts, a publish/reconcile driver
//! with in-memory checkpoints, request matchers.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::Utc;
use konektly_core::{
    AccessToken, Account, AccountId, AccountStatus, Checkpoint, Content, Media, MemoryCheckpoints, OwnerId, Platform,
    PlatformId, PublishContext, PublishOutcome, Reconciliation, Result, TargetId, TargetOptions, TokenSet,
};
use konektly_linkedin::{LinkedInBuilder, LinkedInPlatform};
use serde_json::Value;
use wiremock::MockServer;

pub const SUB: &str = "782bbtaQ";
pub const AUTHOR: &str = "urn:li:person:782bbtaQ";
pub const ACCESS: &str = "AQXdSP_W41_UPs5ioT_t8HESyODB4FqbkJ8LrV_5mff4gPODzOYR";
pub const VERSION: &str = "202603";

pub fn builder(base: &str) -> LinkedInBuilder {
    LinkedInBuilder::new().with_client_id("86abc").with_client_secret("the-secret").with_base_url(base)
}

pub fn platform(server: &MockServer) -> LinkedInPlatform {
    builder(&server.uri()).build().unwrap()
}

pub fn account() -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(AccessToken::new(ACCESS));
    tokens.expires_at = Some(now + chrono::Duration::days(60));
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("owner-1"),
        platform: PlatformId::new("linkedin"),
        remote_id: SUB.into(),
        handle: None,
        display_name: Some("Ada Lovelace".into()),
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

/// A JPEG-looking image of `n` bytes.
pub fn image(n: usize) -> Media {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.resize(n, 7);
    let mut m = Media::from_bytes(bytes);
    m.probe_error = None;
    m.mime = "image/jpeg".parse().unwrap();
    m.size = Some(n as u64);
    m.width = Some(1200);
    m.height = Some(800);
    m.alt_text = Some("a cat".into());
    m
}

pub struct Run<T> {
    pub result: Result<T>,
    pub checkpoint: Checkpoint,
    pub saves: Arc<MemoryCheckpoints>,
}

pub async fn run(
    p: &LinkedInPlatform,
    account: &Account,
    content: &Content,
    opts: &TargetOptions,
    checkpoint: Checkpoint,
) -> Run<PublishOutcome> {
    let saves = MemoryCheckpoints::new();
    let mut ctx =
        PublishContext::builder(TargetId::new(), account, content, opts).checkpoint(checkpoint).hooks(&*saves).build();
    let result = p.publish(&mut ctx).await;
    Run { result, checkpoint: ctx.checkpoint().clone(), saves }
}

pub async fn reconcile(
    p: &LinkedInPlatform,
    account: &Account,
    content: &Content,
    checkpoint: Checkpoint,
) -> Run<Reconciliation> {
    let saves = MemoryCheckpoints::new();
    let opts = TargetOptions::none();
    let mut ctx =
        PublishContext::builder(TargetId::new(), account, content, &opts).checkpoint(checkpoint).hooks(&*saves).build();
    let result = p.reconcile(&mut ctx).await;
    Run { result, checkpoint: ctx.checkpoint().clone(), saves }
}

/// The JSON body of a request.
pub fn body_of(r: &wiremock::Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}
