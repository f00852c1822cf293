//! Shared helpers: a builder pointed at the mock server, accounts, contexts, and matchers for
//! form and multipart bodies.
#![allow(dead_code)]

pub mod facebook;
pub mod instagram;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use konektly_core::{
    AccessToken, Account, AccountId, AccountStatus, Checkpoint, Content, MediaHost, MemoryCheckpoints, OwnerId,
    Platform, PlatformId, PublishContext, PublishOutcome, Reconciliation, Result, TargetId, TargetOptions, TokenSet,
};
use konektly_meta::{MetaBuilder, MetaPlatforms};
use wiremock::{Match, MockServer, Request};

pub const APP_SECRET: &str = "app-secret-do-not-leak";
pub const IG_APP_SECRET: &str = "ig-secret-do-not-leak";
pub const PAGE_ID: &str = "101";
pub const IG_ID: &str = "17841400000000001";
pub const PAGE_TOKEN: &str = "EAAPageToken";
pub const IG_TOKEN: &str = "IGQWLongLivedToken";

pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

pub fn builder(server: &MockServer) -> MetaBuilder {
    MetaBuilder::new()
        .with_app("123456", APP_SECRET)
        .with_instagram_app("654321", IG_APP_SECRET)
        .with_base_url(server.uri())
        .with_instagram_base_url(server.uri())
        .with_container_poll_interval(Duration::from_millis(5))
        .with_container_poll_deadline(Duration::from_secs(5))
        .with_video_poll_interval(Duration::from_secs(30))
}

pub fn meta(server: &MockServer) -> MetaPlatforms {
    builder(server).build().unwrap()
}

pub fn account(platform: &str, remote: &str, token: &str, metadata: &[(&str, &str)]) -> Account {
    let now = Utc::now();
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("owner-1"),
        platform: PlatformId::new(platform),
        remote_id: remote.into(),
        handle: None,
        display_name: None,
        avatar_url: None,
        tokens: TokenSet::new(AccessToken::new(token)),
        status: AccountStatus::Active,
        parent: None,
        metadata: metadata.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

pub fn page_account() -> Account {
    account("facebook", PAGE_ID, PAGE_TOKEN, &[("kind", "page")])
}

/// An Instagram account reached through Facebook Login (graph.facebook.com, the Page token).
pub fn ig_fb_account() -> Account {
    account("instagram", IG_ID, PAGE_TOKEN, &[("login", "facebook"), ("page_id", PAGE_ID)])
}

/// An Instagram account connected with Instagram Login (graph.instagram.com).
pub fn ig_login_account() -> Account {
    account("instagram", IG_ID, IG_TOKEN, &[("login", "instagram")])
}

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Publish,
    Poll,
    Reconcile,
}

pub enum Outcome {
    Publish(PublishOutcome),
    Reconcile(Reconciliation),
}

/// One call with a fresh context, starting from `checkpoint`.
pub struct Step {
    pub result: Result<Outcome>,
    pub checkpoint: Checkpoint,
    pub saves: Arc<MemoryCheckpoints>,
}

impl Step {
    pub fn published(&self) -> konektly_core::RemotePost {
        match &self.result {
            Ok(Outcome::Publish(PublishOutcome::Published(r))) => r.clone(),
            Ok(Outcome::Reconcile(Reconciliation::Published(r))) => r.clone(),
            Ok(_) => panic!("not published"),
            Err(e) => panic!("failed: {e:?}"),
        }
    }

    pub fn is_processing(&self) -> bool {
        matches!(
            &self.result,
            Ok(Outcome::Publish(PublishOutcome::Processing { .. }))
                | Ok(Outcome::Reconcile(Reconciliation::Processing { .. }))
        )
    }

    pub fn err(self) -> konektly_core::Error {
        match self.result {
            Err(e) => e,
            Ok(_) => panic!("expected an error"),
        }
    }

    pub fn state(&self) -> serde_json::Value {
        self.checkpoint.as_json().clone()
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn step(
    platform: &dyn Platform,
    op: Op,
    account: &Account,
    content: &Content,
    options: &TargetOptions,
    checkpoint: Checkpoint,
    host: Option<&dyn MediaHost>,
    started: DateTime<Utc>,
) -> Step {
    let saves = MemoryCheckpoints::new();
    let mut ctx = PublishContext::builder(TargetId::new(), account, content, options)
        .started_at(started)
        .checkpoint(checkpoint)
        .hooks(&*saves)
        .media_host(host)
        .build();
    let result = match op {
        Op::Publish => platform.publish(&mut ctx).await.map(Outcome::Publish),
        Op::Poll => platform.poll(&mut ctx).await.map(Outcome::Publish),
        Op::Reconcile => platform.reconcile(&mut ctx).await.map(Outcome::Reconcile),
    };
    let checkpoint = ctx.checkpoint().clone();
    drop(ctx);
    Step { result, checkpoint, saves }
}

pub async fn publish(platform: &dyn Platform, account: &Account, content: &Content, options: &TargetOptions) -> Step {
    step(platform, Op::Publish, account, content, options, Checkpoint::default(), None, Utc::now()).await
}

/// Matches an `application/x-www-form-urlencoded` body holding exactly these pairs.
pub struct FormIs(pub Vec<(String, String)>);

pub fn form(pairs: &[(&str, &str)]) -> FormIs {
    let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    v.sort();
    FormIs(v)
}

impl Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let mut got: Vec<(String, String)> =
            url::form_urlencoded::parse(&request.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        got.sort();
        got == self.0
    }
}

/// Matches a multipart body with a text field `name` = `value`.
pub struct MultipartField(pub String, pub Vec<u8>);

pub fn multipart_field(name: &str, value: &[u8]) -> MultipartField {
    MultipartField(name.into(), value.to_vec())
}

impl Match for MultipartField {
    fn matches(&self, request: &Request) -> bool {
        let head = format!("name=\"{}\"", self.0);
        let body = &request.body;
        let Some(at) = find(body, head.as_bytes()) else { return false };
        let rest = &body[at..];
        let Some(start) = find(rest, b"\r\n\r\n") else { return false };
        let value = &rest[start + 4..];
        value.starts_with(&self.1) && value[self.1.len()..].starts_with(b"\r\n")
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The requests the server received, as `METHOD /path`.
pub async fn calls(server: &MockServer) -> Vec<String> {
    server.received_requests().await.unwrap().iter().map(|r| format!("{} {}", r.method, r.url.path())).collect()
}
