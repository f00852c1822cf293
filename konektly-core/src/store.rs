//! The `TokenStore` port: accounts, their tokens, and pending authorizations.

use async_trait::async_trait;

use crate::error::Result;
use crate::events::{Event, StoredEvent};
use crate::id::{AccountId, OwnerId, PlatformId};
use crate::model::Account;
use crate::platform::PendingAuthorization;

/// Persistence of accounts and tokens. Every account has a version: an update is a
/// compare-and-swap on it, so two processes refreshing one token cannot both win.
///
/// The `…_raising` writes also append events to the store's outbox in the same transaction
/// (the account's owner owns them): a crash never keeps the change and loses its event, nor
/// the reverse. The plain writes raise nothing.
#[async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// Stores a new account (its version must be 1). `Conflict` if the id exists, or if the
    /// owner has an account with the same platform and remote id already (one account each).
    async fn insert_account(&self, account: &Account) -> Result<()> {
        self.insert_account_raising(account, &[]).await
    }

    /// [`insert_account`](Self::insert_account), and `events` into the outbox.
    async fn insert_account_raising(&self, account: &Account, events: &[Event]) -> Result<()>;

    /// Reads an account.
    async fn get_account(&self, id: AccountId) -> Result<Option<Account>>;

    /// Finds an owner's account by platform and the platform's id (for reconnecting).
    async fn find_account(&self, owner: &OwnerId, platform: &PlatformId, remote_id: &str) -> Result<Option<Account>>;

    /// Replaces an account if its stored version is still `account.version`; returns the stored
    /// account with the next version. `Conflict` if another writer got there first, `NotFound`
    /// if it is gone.
    async fn update_account(&self, account: &Account) -> Result<Account> {
        self.update_account_raising(account, &[]).await
    }

    /// [`update_account`](Self::update_account), and `events` into the outbox when it lands.
    async fn update_account_raising(&self, account: &Account, events: &[Event]) -> Result<Account>;

    /// An owner's accounts, oldest first.
    async fn list_accounts(&self, owner: &OwnerId) -> Result<Vec<Account>>;

    /// Erases an account and its tokens. Returns whether it existed.
    async fn delete_account(&self, id: AccountId) -> Result<bool> {
        self.delete_account_raising(id, &[]).await
    }

    /// [`delete_account`](Self::delete_account), and `events` into the outbox when it existed.
    async fn delete_account_raising(&self, id: AccountId, events: &[Event]) -> Result<bool>;

    /// Stores a pending authorization under its `state`.
    async fn put_pending(&self, pending: &PendingAuthorization) -> Result<()>;

    /// Takes (reads and removes) a pending authorization: a second take of the same state finds
    /// nothing. Expiry is checked by the caller.
    async fn take_pending(&self, state: &str) -> Result<Option<PendingAuthorization>>;
}

/// The outbox of a store: every durable [`Event`] written with the change that raised it, read
/// back in order. A store gives events their place in the log (`seq`) after they commit, one
/// sequencing pass at a time, so a reader paging with `after` never skips an event that
/// committed late.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends events not tied to a stored change (a token that expires soon).
    async fn append_events(&self, owner: &OwnerId, events: &[Event]) -> Result<()>;

    /// Gives the next `seq` numbers to up to `limit` committed events that have none, oldest
    /// first; returns how many. Any process may run it; passes do not overlap.
    async fn sequence_events(&self, limit: usize) -> Result<usize>;

    /// Up to `limit` sequenced events after `after` (0: from the start), of `owner` or of
    /// everyone, in order.
    async fn events_after(&self, owner: Option<&OwnerId>, after: u64, limit: usize) -> Result<Vec<StoredEvent>>;
}
