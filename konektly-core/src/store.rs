//! The `TokenStore` port: accounts, their tokens, and pending authorizations.

use async_trait::async_trait;

use crate::error::Result;
use crate::id::{AccountId, OwnerId, PlatformId};
use crate::model::Account;
use crate::platform::PendingAuthorization;

/// Persistence of accounts and tokens. Every account has a version: an update is a
/// compare-and-swap on it, so two processes refreshing one token cannot both win.
#[async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// Stores a new account (its version must be 1). `Conflict` if the id exists, or if the
    /// owner has an account with the same platform and remote id already (one account each).
    async fn insert_account(&self, account: &Account) -> Result<()>;

    /// Reads an account.
    async fn get_account(&self, id: AccountId) -> Result<Option<Account>>;

    /// Finds an owner's account by platform and the platform's id (for reconnecting).
    async fn find_account(&self, owner: &OwnerId, platform: &PlatformId, remote_id: &str) -> Result<Option<Account>>;

    /// Replaces an account if its stored version is still `account.version`; returns the stored
    /// account with the next version. `Conflict` if another writer got there first, `NotFound`
    /// if it is gone.
    async fn update_account(&self, account: &Account) -> Result<Account>;

    /// An owner's accounts, oldest first.
    async fn list_accounts(&self, owner: &OwnerId) -> Result<Vec<Account>>;

    /// Erases an account and its tokens. Returns whether it existed.
    async fn delete_account(&self, id: AccountId) -> Result<bool>;

    /// Stores a pending authorization under its `state`.
    async fn put_pending(&self, pending: &PendingAuthorization) -> Result<()>;

    /// Takes (reads and removes) a pending authorization: a second take of the same state finds
    /// nothing. Expiry is checked by the caller.
    async fn take_pending(&self, state: &str) -> Result<Option<PendingAuthorization>>;
}
