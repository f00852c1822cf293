//! The engine as one owner (tenant) sees it.

use chrono::{DateTime, Utc};
use url::Url;

use crate::engine::{CancelReport, ConnectStart, Konektly};
use crate::error::{Error, Result};
use crate::id::{AccountId, OwnerId, PlatformId, PostId};
use crate::model::{Account, Post, TargetRecord, Violation};
use crate::scheduler::TargetFilter;
use crate::violation_code::ViolationCode;

/// Konektly as one owner — a tenant of a multi-tenant application — sees it: every call that
/// names a post or an account checks that it belongs to this owner, and the stores are asked
/// only for this owner's records. Another owner's post or account is [`Error::NotFound`],
/// exactly as one that does not exist: nothing tells a caller that an id is used elsewhere.
///
/// Get one with [`Konektly::owner`] for the owner the application has authenticated, and use
/// it for everything that handles a request on that owner's behalf:
///
/// ```ignore
/// let mine = engine.owner(&OwnerId::new(session.tenant_id));
/// let targets = mine.status(post_id).await?; // NotFound for another tenant's post
/// mine.cancel(post_id).await?;
/// ```
///
/// The unscoped methods of [`Konektly`] (`status`, `cancel`, `account`…) act on any owner's
/// records: they are for operators and background jobs, not for request handlers.
#[derive(Clone, Debug)]
pub struct Owned<'a> {
    engine: &'a Konektly,
    owner: OwnerId,
}

impl Konektly {
    /// This engine as `owner` sees it (see [`Owned`]).
    pub fn owner(&self, owner: &OwnerId) -> Owned<'_> {
        Owned { engine: self, owner: owner.clone() }
    }
}

impl<'a> Owned<'a> {
    /// The owner.
    pub fn id(&self) -> &OwnerId {
        &self.owner
    }

    /// The whole engine (unscoped).
    pub fn engine(&self) -> &'a Konektly {
        self.engine
    }

    /// Starts connecting an account on `platform` for this owner.
    pub async fn connect(&self, platform: &PlatformId, redirect_uri: &Url) -> Result<ConnectStart> {
        self.engine.connect(&self.owner, platform, redirect_uri).await
    }

    /// Starts reconnecting one of this owner's accounts.
    pub async fn reconnect(&self, account: AccountId, redirect_uri: &Url) -> Result<ConnectStart> {
        self.account(account).await?;
        self.engine.reconnect(account, redirect_uri).await
    }

    /// One of this owner's accounts; `NotFound` for any other.
    pub async fn account(&self, id: AccountId) -> Result<Account> {
        match self.engine.token_store().get_account(id).await? {
            Some(a) if a.owner == self.owner => Ok(a),
            _ => Err(Error::NotFound(format!("account {id}"))),
        }
    }

    /// This owner's accounts.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        self.engine.accounts(&self.owner).await
    }

    /// Disconnects one of this owner's accounts (revoking its grant, cancelling its pending
    /// targets).
    pub async fn disconnect(&self, account: AccountId) -> Result<()> {
        self.account(account).await?;
        self.engine.disconnect(account).await
    }

    /// Validates a post of this owner (see [`Konektly::validate`]).
    pub async fn validate(&self, post: &Post) -> Result<Vec<Violation>> {
        self.check_post(post)?;
        self.engine.validate(post).await
    }

    /// Schedules a post of this owner (see [`Konektly::schedule`]).
    pub async fn schedule(&self, post: &Post) -> Result<PostId> {
        self.check_post(post)?;
        self.engine.schedule(post).await
    }

    /// Publishes a post of this owner now (see [`Konektly::publish_now`]).
    pub async fn publish_now(&self, post: &Post) -> Result<Vec<TargetRecord>> {
        self.check_post(post)?;
        self.engine.publish_now(post).await
    }

    /// The targets of one of this owner's posts; `NotFound` for any other post.
    pub async fn status(&self, post: PostId) -> Result<Vec<TargetRecord>> {
        let filter = TargetFilter { post: Some(post), owner: Some(self.owner.clone()), ..TargetFilter::default() };
        let records = self.engine.scheduler().list(&filter).await?;
        // Belt and braces: a store that ignored the owner filter still leaks nothing.
        let records: Vec<TargetRecord> = records.into_iter().filter(|r| r.owner == self.owner).collect();
        if records.is_empty() {
            return Err(Error::NotFound(format!("post {post}")));
        }
        Ok(records)
    }

    /// This owner's targets matching `filter` (its `owner` is set to this owner).
    pub async fn list(&self, filter: &TargetFilter) -> Result<Vec<TargetRecord>> {
        let filter = TargetFilter { owner: Some(self.owner.clone()), ..filter.clone() };
        let records = self.engine.scheduler().list(&filter).await?;
        Ok(records.into_iter().filter(|r| r.owner == self.owner).collect())
    }

    /// Cancels one of this owner's posts (see [`Konektly::cancel`]); `NotFound` for any other.
    pub async fn cancel(&self, post: PostId) -> Result<CancelReport> {
        let records = self.status(post).await?;
        self.engine.cancel_records(records).await
    }

    /// Reschedules one of this owner's posts (see [`Konektly::reschedule`]); `NotFound` for
    /// any other.
    pub async fn reschedule(&self, post: PostId, at: DateTime<Utc>) -> Result<usize> {
        let records = self.status(post).await?;
        self.engine.reschedule_records(records, at).await
    }

    /// Deletes the published targets of one of this owner's posts at their platforms (see
    /// [`Konektly::delete_target`]); one result per published target. `NotFound` for any other
    /// post.
    pub async fn delete(&self, post: PostId) -> Result<Vec<(crate::id::TargetId, Result<TargetRecord>)>> {
        let records = self.status(post).await?;
        Ok(self.engine.delete_records(records).await)
    }

    /// Deletes one published target of this owner (see [`Konektly::delete_target`]).
    pub async fn delete_target(&self, target: crate::id::TargetId) -> Result<TargetRecord> {
        let record = self.target(target).await?;
        self.engine.delete_record(record).await
    }

    /// Edits one published target of this owner (see [`Konektly::edit_target`]).
    pub async fn edit_target(&self, target: crate::id::TargetId, edit: &crate::EditRequest) -> Result<TargetRecord> {
        let record = self.target(target).await?;
        self.engine.edit_record(record, edit).await
    }

    /// One of this owner's targets; `NotFound` for any other.
    pub async fn target(&self, target: crate::id::TargetId) -> Result<TargetRecord> {
        match self.engine.scheduler().get(target).await? {
            Some(r) if r.owner == self.owner => Ok(r),
            _ => Err(Error::NotFound(format!("target {target}"))),
        }
    }

    fn check_post(&self, post: &Post) -> Result<()> {
        if post.owner != self.owner {
            return Err(Error::InvalidPost(vec![Violation::new(
                ViolationCode::OwnerMismatch,
                "owner",
                format!("the post is written by another owner than `{}`: build posts with this owner", self.owner),
            )]));
        }
        Ok(())
    }
}
