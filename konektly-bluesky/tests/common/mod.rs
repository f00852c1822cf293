//! Shared helpers: a platform pointed at a mock PDS, accounts, a publish/reconcile driver with
//! in-memory checkpoints, recorded-shape answers.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::Utc;
use konektly_bluesky::{BlueskyBuilder, BlueskyPlatform};
use konektly_core::{
    AccessToken, Account, AccountId, AccountStatus, Checkpoint, Content, Media, MemoryCheckpoints, OwnerId, Platform,
    PlatformId, PublishContext, PublishOutcome, Reconciliation, RefreshToken, Result, TargetId, TargetOptions,
    TokenSet,
};
use serde_json::{Value, json};
use wiremock::MockServer;

pub const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
pub const HANDLE: &str = "alice.test";
pub const ACCESS: &str = "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6ImNvbS5hdHByb3RvLmFwcFBhc3MifQ.c2ln";

pub fn platform_for(base: &str) -> BlueskyPlatform {
    BlueskyBuilder::new().with_base_url(base).with_link_card_fetching(false).build().unwrap()
}

pub fn platform(server: &MockServer) -> BlueskyPlatform {
    platform_for(&server.uri())
}

pub fn account(server: &MockServer) -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(AccessToken::new(ACCESS));
    tokens.refresh_token = Some(RefreshToken::new("refresh.jwt.value"));
    tokens.expires_at = Some(now + chrono::Duration::hours(2));
    let mut metadata = serde_json::Map::new();
    metadata.insert("pds".into(), json!(format!("{}/", server.uri())));
    metadata.insert("did".into(), json!(DID));
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("owner-1"),
        platform: PlatformId::new("bluesky"),
        remote_id: DID.into(),
        handle: Some(HANDLE.into()),
        display_name: None,
        avatar_url: None,
        tokens,
        status: AccountStatus::Active,
        parent: None,
        metadata,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// A JPEG-looking image of `n` bytes, 1200×800 as declared.
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
    p: &BlueskyPlatform,
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
    p: &BlueskyPlatform,
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

/// `createRecord`'s answer, in the reference PDS's shape.
pub fn created(rkey: &str, cid: &str) -> Value {
    json!({"uri": format!("at://{DID}/app.bsky.feed.post/{rkey}"), "cid": cid,
        "commit": {"cid": "bafyreibqsu2lh2utvu2ovn7a6xhn7ivtyaau6w7sbhqkbmncqohmhahnui", "rev": "3l6ojy2mnvv2a"},
        "validationStatus": "valid"})
}

/// The JSON body of a request.
pub fn body_of(r: &wiremock::Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}
