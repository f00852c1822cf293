//! The `Scheduler` port: the durable publishing queue, with leases and fencing.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{AccountId, OwnerId, PlatformId, PostId, TargetId, WorkerId};
use crate::lifecycle::StateName;
use crate::model::{Checkpoint, FailureRecord, Lease, RemotePost, TargetRecord};
use crate::ratelimit::BudgetKey;

/// What a claimed target needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// Publish it (it was `Scheduled`); its state is now `InFlight`.
    Publish,
    /// Poll the platform (it was `Processing`).
    Poll,
    /// Reconcile with the platform before anything is sent (it was `Unknown`, or `InFlight` with
    /// an expired lease: its worker died).
    Reconcile,
}

impl ClaimKind {
    /// As stored: `publish`, `poll`, `reconcile`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Publish => "publish",
            ClaimKind::Poll => "poll",
            ClaimKind::Reconcile => "reconcile",
        }
    }

    /// The kind named `name` ([`as_str`](Self::as_str)), if any.
    pub fn parse(name: &str) -> Option<Self> {
        [ClaimKind::Publish, ClaimKind::Poll, ClaimKind::Reconcile].into_iter().find(|k| k.as_str() == name)
    }
}

/// A request to claim due targets.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    /// Who claims.
    pub worker: WorkerId,
    /// At most this many.
    pub limit: usize,
    /// How long the lease lasts unless a heartbeat extends it.
    pub lease_for: Duration,
    /// The time to judge "due" by.
    pub now: DateTime<Utc>,
    /// Only these targets (the engine's `publish_now`), if given.
    pub only: Option<Vec<TargetId>>,
    /// Only targets of these platforms, if given.
    pub platforms: Option<Vec<PlatformId>>,
}

impl ClaimRequest {
    /// Claims up to `limit` due targets for `worker` with a lease of `lease_for`.
    pub fn new(worker: WorkerId, limit: usize, lease_for: Duration) -> Self {
        Self { worker, limit, lease_for, now: Utc::now(), only: None, platforms: None }
    }
}

/// A claimed target: the record (state already moved), the lease, and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// The target as stored after the claim.
    pub record: TargetRecord,
    /// The lease; every write must present it.
    pub lease: Lease,
    /// What to do.
    pub kind: ClaimKind,
}

/// How an attempt ended, recorded with [`Scheduler::complete`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "completion", rename_all = "snake_case")]
pub enum Completion {
    /// Published.
    Published(RemotePost),
    /// The platform is still working: poll at `poll_at`.
    Processing {
        /// When to poll.
        poll_at: DateTime<Utc>,
    },
    /// Try again at `at` (rate limit, transient error, reconcile found nothing, budget deferral).
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// The error that caused it, if any.
        error: Option<FailureRecord>,
        /// The attempt count to store (unchanged for a deferral).
        attempts: u32,
    },
    /// The outcome is unknown: reconcile at `at`.
    Unknown {
        /// When.
        at: DateTime<Utc>,
        /// The error, if any.
        error: Option<FailureRecord>,
        /// The attempt count to store: unknown outcomes and failed lookups count, so that a
        /// target whose every reconciliation fails ends (as `outcome_unknown`) instead of
        /// retrying forever.
        #[serde(default)]
        attempts: u32,
    },
    /// Waits for the account to be reconnected.
    Blocked {
        /// Why.
        reason: String,
    },
    /// Ended without publishing.
    Failed(FailureRecord),
}

/// Which targets to list or delete.
#[derive(Clone, Debug, Default)]
pub struct TargetFilter {
    /// Of this post.
    pub post: Option<PostId>,
    /// Of this account.
    pub account: Option<AccountId>,
    /// Of this owner.
    pub owner: Option<OwnerId>,
    /// In one of these states; empty: any.
    pub states: Vec<StateName>,
    /// Last changed before this time.
    pub updated_before: Option<DateTime<Utc>>,
    /// At most this many (listing only).
    pub limit: Option<usize>,
}

impl TargetFilter {
    /// Targets of a post.
    pub fn post(post: PostId) -> Self {
        Self { post: Some(post), ..Self::default() }
    }

    /// Targets of an account.
    pub fn account(account: AccountId) -> Self {
        Self { account: Some(account), ..Self::default() }
    }

    /// Only targets in these states.
    pub fn with_states(mut self, states: &[StateName]) -> Self {
        self.states = states.to_vec();
        self
    }

    /// Only targets in the states of these names ([`StateName::as_str`]): the string form of
    /// [`with_states`](Self::with_states).
    ///
    /// # Panics
    /// On a name that is no state's (a programming error, like a misspelt column).
    pub fn in_states(self, states: &[&str]) -> Self {
        let states: Vec<StateName> = states
            .iter()
            .map(|s| StateName::parse(s).unwrap_or_else(|| panic!("`{s}` is not the name of a target state")))
            .collect();
        self.with_states(&states)
    }

    /// Whether a record matches (for stores that filter in memory).
    pub fn matches(&self, r: &TargetRecord) -> bool {
        self.post.is_none_or(|p| p == r.post_id)
            && self.account.is_none_or(|a| a == r.account_id)
            && self.owner.as_ref().is_none_or(|o| *o == r.owner)
            && (self.states.is_empty() || self.states.contains(&StateName::of(&r.state)))
            && self.updated_before.is_none_or(|t| r.updated_at < t)
    }
}

/// One spend of [`Scheduler::acquire_budgets`]: `cost` units of the budget `key` (`limit` per
/// `window`), as [`Scheduler::acquire_budget`] would spend them.
#[derive(Clone, Debug)]
pub struct BudgetSpend {
    /// The budget's key.
    pub key: BudgetKey,
    /// Units per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// Units to spend (at least 1).
    pub cost: u32,
    /// The time of the spend.
    pub now: DateTime<Utc>,
}

/// One write of [`Scheduler::write_leases`]: a heartbeat (`extend` only), a checkpoint save
/// (`checkpoint` only) or both in one write.
#[derive(Clone, Debug)]
pub struct LeaseWrite {
    /// The lease the write is made under.
    pub lease: Lease,
    /// The checkpoint to save, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Extend the lease by this from now, if set.
    pub extend: Option<Duration>,
}

/// The publishing queue. Claims are exclusive across processes; every write by a worker
/// presents its [`Lease`], and a lease that was taken over (stale fencing token) is refused
/// with [`Error::LeaseLost`](crate::Error::LeaseLost).
#[async_trait]
pub trait Scheduler: Send + Sync + std::fmt::Debug {
    /// Adds targets. A target whose id exists already is left as it is (enqueueing is
    /// idempotent). Returns how many were new.
    async fn enqueue(&self, targets: &[TargetRecord]) -> Result<usize>;

    /// Reads a target.
    async fn get(&self, id: TargetId) -> Result<Option<TargetRecord>>;

    /// Lists targets, oldest due first.
    async fn list(&self, filter: &TargetFilter) -> Result<Vec<TargetRecord>>;

    /// Cancels a target that has not ended: a scheduled or blocked one at once (`Cancelled`; a
    /// worker holding it loses its lease). One the platform may be publishing already (in
    /// flight, processing, unknown) keeps its state and gets `cancel_requested_at`: it ends
    /// `Cancelled` if its attempt ends without publishing, or `Published` (reported as
    /// published before the cancel could stop it). Returns the record as it is after the call.
    /// `Conflict` if it has ended already.
    async fn cancel(&self, id: TargetId) -> Result<TargetRecord>;

    /// Moves a scheduled, blocked, failed or cancelled target to `Scheduled` at `at`, as a new
    /// start: its attempt count goes back to zero and an earlier cancel request is forgotten
    /// (its checkpoint stays, so an adapter resumes rather than repeats).
    async fn reschedule(&self, id: TargetId, at: DateTime<Utc>) -> Result<TargetRecord>;

    /// Claims due targets (see [`ClaimKind`] for what each needs).
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claimed>>;

    /// Extends a lease by `extend` from now.
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease>;

    /// Saves a checkpoint under a lease.
    async fn save_checkpoint(&self, lease: &Lease, checkpoint: &Checkpoint) -> Result<()>;

    /// Saves a checkpoint and extends the lease by `extend` from now, under the lease: the
    /// write that precedes a call creating something at the platform, so that the lease
    /// outlives that call (see ARCHITECTURE.md, "Fencing"). Returns the extended lease;
    /// `LeaseLost` if the lease was taken over (nothing is written then).
    ///
    /// The default extends, then saves (two writes, each guarded by the lease); a store that
    /// can do both in one statement or transaction should.
    async fn save_checkpoint_renewing(
        &self,
        lease: &Lease,
        checkpoint: &Checkpoint,
        extend: Duration,
    ) -> Result<Lease> {
        let renewed = self.heartbeat(lease, extend).await?;
        self.save_checkpoint(&renewed, checkpoint).await?;
        Ok(renewed)
    }

    /// Many lease writes at once — heartbeats, checkpoint saves, or both in one — each as
    /// [`heartbeat`](Self::heartbeat), [`save_checkpoint`](Self::save_checkpoint) or
    /// [`save_checkpoint_renewing`](Self::save_checkpoint_renewing) would do it, each guarded by
    /// its own lease: one result per item, in order (a stale lease is that item's `LeaseLost`,
    /// and nothing of that item is written). The outer error means nothing was written. A
    /// target appears at most once per call.
    ///
    /// The default writes them one by one; a store that can write a batch in one statement
    /// should (the engine's workers send the lease writes of their concurrent targets here in
    /// groups).
    async fn write_leases(&self, writes: &[LeaseWrite]) -> Result<Vec<Result<Lease>>> {
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            out.push(match (&w.checkpoint, w.extend) {
                (Some(c), Some(extend)) => self.save_checkpoint_renewing(&w.lease, c, extend).await,
                (Some(c), None) => self.save_checkpoint(&w.lease, c).await.map(|()| w.lease.clone()),
                (None, Some(extend)) => self.heartbeat(&w.lease, extend).await,
                (None, None) => Ok(w.lease.clone()),
            });
        }
        Ok(out)
    }

    /// Records how an attempt ended and releases the lease.
    async fn complete(&self, lease: &Lease, completion: &Completion) -> Result<TargetRecord>;

    /// Records many outcomes at once, each as [`complete`](Self::complete) would; one result
    /// per item, in order (a stale lease is that item's `LeaseLost`, never the batch's). The
    /// outer error means nothing was recorded. Unlike `complete`, the records are not returned:
    /// the caller has them already, and reading them back is most of a batch's cost.
    ///
    /// The default records them one by one; a store that can write a batch in one statement
    /// should (the engine's workers send their outcomes here in groups).
    async fn complete_many(&self, items: &[(Lease, Completion)]) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(items.len());
        for (lease, completion) in items {
            out.push(self.complete(lease, completion).await.map(drop));
        }
        Ok(out)
    }

    /// Makes an account's `Blocked` targets claimable at `at` (after a reconnect): `Scheduled`,
    /// or `Unknown` — reconciled before anything is sent — when the target has a checkpoint
    /// (it was blocked midway and may have reached the platform).
    async fn unblock_account(&self, account: AccountId, at: DateTime<Utc>) -> Result<usize>;

    /// The earliest time a target becomes claimable (due, or a lease expiring), if any.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>>;

    /// Waits until work may be there (a notification) or `timeout` passes. The default sleeps.
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }

    /// Deletes the targets that match (erasure, retention). Returns how many.
    async fn delete(&self, filter: &TargetFilter) -> Result<usize>;

    /// Replaces the remote post of a `Published` target (what a deletion or an edit at the
    /// platform changed: [`RemotePost::deleted_at`](crate::RemotePost::deleted_at),
    /// `edited_at`), and returns the record. `Conflict` if the target is not published,
    /// `NotFound` if it does not exist. The default is `NotSupported` (stores written before it).
    async fn update_published(&self, id: TargetId, remote: &crate::model::RemotePost) -> Result<TargetRecord> {
        let _ = (id, remote);
        Err(crate::Error::NotSupported("this scheduler cannot record changes to published posts".into()))
    }

    /// Spends `cost` units of the budget `key` (`limit` per `window`). `None`: granted;
    /// `Some(t)`: not before `t`. Atomic across every process sharing the store.
    async fn acquire_budget(
        &self,
        key: &BudgetKey,
        limit: u32,
        window: Duration,
        cost: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>>;

    /// Many spends at once, each judged in order as [`acquire_budget`](Self::acquire_budget)
    /// would judge it (two spends of one key in a call see each other): one result per item, in
    /// order. Atomic across every process sharing the store. The default spends them one by
    /// one; a store that can do a batch in one transaction should (the engine's workers send
    /// the spends of their concurrent targets here in groups — one busy app-wide budget is
    /// otherwise a queue of single transactions on one row).
    async fn acquire_budgets(&self, spends: &[BudgetSpend]) -> Result<Vec<Result<Option<DateTime<Utc>>>>> {
        let mut out = Vec::with_capacity(spends.len());
        for s in spends {
            out.push(self.acquire_budget(&s.key, s.limit, s.window, s.cost, s.now).await);
        }
        Ok(out)
    }

    /// Records that a platform reported the bucket `key` at `remaining`, refilling at `reset_at`.
    async fn observe_budget(&self, key: &BudgetKey, remaining: u32, reset_at: DateTime<Utc>) -> Result<()>;
}
