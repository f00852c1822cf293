//! # konektly-core
//!
//! The heart of konektly: publish to social networks on your users' behalf. This crate holds
//! the model ([`Post`], [`Target`], [`Media`], [`Account`]…), the three ports ([`Platform`],
//! [`TokenStore`], [`Scheduler`]) and the engine ([`Konektly`]) that connects accounts, keeps
//! their tokens fresh, validates posts before anything is sent, and publishes them — never
//! twice, and without losing any.
//!
//! Platform adapters (`konektly-twitter`, `konektly-tiktok`, `konektly-meta`,
//! `konektly-youtube`) and durable stores (`konektly-store`: SQLite and PostgreSQL) plug in.
//!
//! ```
//! use std::sync::Arc;
//! use konektly_core::{Content, Konektly, MemoryScheduler, MemoryTokenStore, OwnerId, Post, Target};
//! use konektly_core::testing::StubPlatform;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> konektly_core::Result<()> {
//! let stub = Arc::new(StubPlatform::new("stub"));
//! let engine = Konektly::builder()
//!     .platform(stub.clone())
//!     .token_store(Arc::new(MemoryTokenStore::new()))
//!     .scheduler(Arc::new(MemoryScheduler::new()))
//!     .build()?;
//!
//! // Connect an account through the OAuth redirect flow.
//! let owner = OwnerId::new("user-42");
//! let start = engine.connect(&owner, &"stub".into(), &"https://app.example/callback".parse().unwrap()).await?;
//! // … the user approves; the platform redirects to the callback with `state` and `code` …
//! let accounts = engine.complete_connect(&start.state, "the-code").await?;
//!
//! // Write once, publish to every target.
//! let post = Post::new(owner, Content::text("Hello from konektly"))
//!     .to(Target::new(accounts[0].id));
//! let targets = engine.publish_now(&post).await?;
//! assert_eq!(targets[0].state.name(), "published");
//! # Ok(())
//! # }
//! ```
//!
//! Scheduling is the same with [`Post::at`] and [`Konektly::schedule`]; a [`Worker`] (from
//! [`Konektly::worker`]) publishes due targets until told to stop.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod analytics;
pub mod api;
pub mod checkpoint_secret;
mod create_sent;
pub mod disposition;
mod engine;
mod error;
mod events;
mod group;
pub mod http;
mod id;
pub mod lifecycle;
mod media;
mod media_host;
mod media_store;
mod memory;
mod model;
pub mod oauth;
mod owned;
mod platform;
pub mod queue;
pub mod ratelimit;
mod scheduler;
mod secret;
pub mod series;
mod store;
mod token;
pub mod upload;
mod violation_code;

#[cfg(feature = "testing")]
pub mod testing;

pub use create_sent::CreateSent;
pub use disposition::Disposition;
pub use engine::{
    COMMENTS_KEY, CancelReport, CommentPhase, CommentProgress, ConnectStart, EngineConfig, Konektly, KonektlyBuilder,
    Worker, WorkerReport,
};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use events::{Event, StoredEvent};
pub use http::{CallKind, HttpClient, HttpConfig};
pub use id::{AccountId, EventId, OwnerId, PlatformId, PostId, TargetId, WorkerId};
pub use lifecycle::{StateName, apply_completion, cancels_at_once, claim_kind};
pub use media::{ChunkReader, Media, MediaKind, MediaReader, MediaSource};
pub use media_host::{DirectoryMediaHost, MediaHost};
pub use media_store::{
    MediaCollection, MediaKey, MediaStore, StoreMediaHost, StoredMedia, StoredObject, TrashedObject, extension_of,
};
pub use memory::{MemoryScheduler, MemoryTokenStore};
pub use model::{
    Account, AccountGrant, AccountStatus, CHECKPOINT_VERSION_KEY, Checkpoint, CommentFailure, Content, FailureRecord,
    Lease, PlatformOptions, Post, Profile, PublishOutcome, Reconciliation, RemoteComment, RemotePost, Target,
    TargetOptions, TargetRecord, TargetState, ThreadItem, TokenSet, Violation, duration_ms, option_duration_ms,
};
pub use owned::Owned;
pub use platform::{
    AspectRatio, AttemptHooks, AuthorizationRequest, Capabilities, CheckpointState, CommentSupport, Dimensions,
    EditRequest, EditSupport, MediaLimits, MemoryCheckpoints, PendingAuthorization, Platform, PublishContext,
    PublishContextBuilder, ReconcileSupport, TextCounting, VideoFormat, validate_against_capabilities,
    validate_comments,
};
pub use scheduler::{BudgetSpend, ClaimKind, ClaimRequest, Claimed, Completion, LeaseWrite, Scheduler, TargetFilter};
pub use secret::{AccessToken, ClientSecret, PkceVerifier, RefreshToken};
pub use store::{EventLog, TokenStore};
pub use token::{EXPIRY_WARNED_KEY, REFRESH_AHEAD_KEY, TokenManager};
pub use violation_code::ViolationCode;

/// Re-exported so adapters and applications use the same versions.
pub use {async_trait::async_trait, bytes, chrono, mime, reqwest, serde_json, url};
