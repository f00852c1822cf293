//! # konektly-store
//!
//! Durable [`TokenStore`](konektly_core::TokenStore) and [`Scheduler`](konektly_core::Scheduler)
//! implementations for konektly: [`SqliteStore`] (one machine, a file in WAL mode, or memory for
//! tests) and [`PostgresStore`] (many machines sharing one database, nothing else).
//!
//! - Tokens are encrypted at rest with AES-256-GCM under a [`KeyRing`] (`KONEKTLY_KEYS`), bound
//!   to their account and kind; [`SqliteStore::rotate_keys`] re-encrypts under the newest key.
//! - The queue claims with leases and fencing tokens; PostgreSQL claims batches with
//!   `FOR UPDATE SKIP LOCKED`, SQLite with one `UPDATE … RETURNING`. No transaction stays open
//!   while a worker publishes.
//! - Migrations are embedded and applied at connect; a newer schema is refused untouched.
//! - Data rights: `export_account`, `erase_account`, `purge_published_before`.
//!
//! ```
//! use konektly_store::{KeyRing, SqliteStore};
//! use konektly_core::TokenStore;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> konektly_core::Result<()> {
//! let store = SqliteStore::in_memory(KeyRing::generate("k1")).await?;
//! assert!(store.get_account(konektly_core::AccountId::new()).await?.is_none());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
mod analytics;
mod codec;
mod common;
mod crypto;
mod media;
mod migrations;
mod outbox;
mod postgres;
mod queues;
mod rights;
mod server;
mod sql;
mod sqlite;
mod targets;

pub use common::{ErasePolicy, Erasure, KonektlyStore};
pub use crypto::{CryptoError, KEYS_ENV, KeyRing};
pub use media::ObjectMediaStore;
pub use migrations::SCHEMA_VERSION;
pub use postgres::{PostgresStore, PostgresStoreBuilder};
pub use server::{
    ApiKey, AttemptResult, Delivery, DeliveryState, DueDelivery, IdempotencyCheck, IssuedApiKey, Secret, ServerStore,
    Webhook,
};
pub use sqlite::SqliteStore;
