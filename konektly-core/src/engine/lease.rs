//! The lease of a target being processed: renewals, the fence around the attempt, and
//! checkpoint saves under the lease (`save_checkpoint`, `save_before_create`: the engine's
//! `AttemptHooks` call them).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;

use super::EngineConfig;
use crate::error::{Error, Result};
use crate::group::GroupCommit;
use crate::model::{Checkpoint, Lease};
use crate::scheduler::{Completion, LeaseWrite};

/// The lease of one target being processed, shared by its heartbeats, its checkpoint writes
/// and the attempt.
///
/// It keeps a local deadline (monotonic clock): the last moment this worker may send anything
/// for the target. Each renewal counts from the moment it was sent, before the store stamped
/// it, so the deadline comes before the stored expiry. While a create's answer is outstanding
/// the stored expiry is renewed a further `create_call_limit` beyond the local deadline: a
/// create sent just before the deadline has that long to be done at the platform before any
/// other worker may claim the target and reconcile it.
pub(super) struct LeaseKeeper {
    /// The engine's group-committed lease writes.
    writes: Arc<GroupCommit<LeaseWrite, Lease>>,
    kept: Mutex<KeptLease>,
    lease_for: Duration,
    create_call_limit: Duration,
    create_margin: Duration,
    create_outstanding: std::sync::atomic::AtomicBool,
}

struct KeptLease {
    lease: Lease,
    /// Before this the lease is surely ours, and the attempt may send.
    deadline: tokio::time::Instant,
}

impl LeaseKeeper {
    pub(super) fn new(writes: Arc<GroupCommit<LeaseWrite, Lease>>, lease: Lease, cfg: &EngineConfig) -> Self {
        let left = (lease.expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Self {
            writes,
            kept: Mutex::new(KeptLease { lease, deadline: tokio::time::Instant::now() + left }),
            lease_for: cfg.lease,
            create_call_limit: cfg.create_call_limit,
            create_margin: cfg.create_margin,
            create_outstanding: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn lease(&self) -> Lease {
        self.kept.lock().unwrap().lease.clone()
    }

    /// One lease write, sent to the store with the concurrent writes of other targets.
    async fn write(&self, lease: Lease, checkpoint: Option<Checkpoint>, extend: Option<Duration>) -> Result<Lease> {
        self.writes.submit(LeaseWrite { lease, checkpoint, extend }).await
    }

    pub(super) fn deadline(&self) -> tokio::time::Instant {
        self.kept.lock().unwrap().deadline
    }

    pub(super) fn create_outstanding(&self) -> bool {
        self.create_outstanding.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How far to extend the stored lease for a local extension of `local`.
    fn stored_extension(&self, local: Duration, create: bool) -> Duration {
        if create { local + self.create_call_limit } else { local }
    }

    /// Extends the lease by the configured lease (and, while a create is outstanding, keeps the
    /// stored expiry `create_call_limit` beyond it). Gives up at the local deadline: a store
    /// that does not answer cannot renew in time.
    pub(super) async fn heartbeat(&self) -> Result<()> {
        let extend = self.stored_extension(self.lease_for, self.create_outstanding());
        self.renew(self.lease_for, |lease| self.write(lease, None, Some(extend))).await?;
        Ok(())
    }

    /// Renews the lease with `write` (given the current lease), giving up at the local
    /// deadline; on success the new local deadline is `local` from the moment the write was
    /// sent. Returns that deadline.
    async fn renew<F>(&self, local: Duration, write: impl FnOnce(Lease) -> F) -> Result<tokio::time::Instant>
    where
        F: Future<Output = Result<Lease>>,
    {
        let sent = tokio::time::Instant::now();
        let (lease, deadline) = {
            let k = self.kept.lock().unwrap();
            (k.lease.clone(), k.deadline)
        };
        let target = lease.target;
        let renewed = tokio::time::timeout_at(deadline, write(lease)).await.map_err(|_| Error::LeaseLost(target))??;
        let mut k = self.kept.lock().unwrap();
        k.lease = renewed;
        k.deadline = sent + local;
        Ok(k.deadline)
    }

    /// Saves a checkpoint under the lease. The first save after a create ends its wait for an
    /// answer and gives the create's extension back in the same write.
    pub(super) async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        if !self.create_outstanding() {
            return self.write(self.lease(), Some(checkpoint.clone()), None).await.map(drop);
        }
        // The adapter saves what a create answered (its id) before anything else: from here on
        // no create of this attempt is waiting for its answer. In the same write the lease's
        // create extension (minutes) is given back, so that a worker that dies later
        // (mid-upload, say) holds the target for one lease, not for the create's allowance too.
        // (The flag is cleared first, so that a heartbeat racing this write does not extend the
        // lease again; it is set back if the write fails.)
        let lease_for = self.lease_for;
        self.create_outstanding.store(false, std::sync::atomic::Ordering::Relaxed);
        let saved = self.renew(lease_for, |lease| self.write(lease, Some(checkpoint.clone()), Some(lease_for))).await;
        if saved.is_err() {
            self.create_outstanding.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        saved.map(|_| ())
    }

    /// Saves the checkpoint that precedes a create call and renews the lease in the same write,
    /// so that the call and the platform's work on it end before the lease does; refuses
    /// (`LeaseLost`) when the renewal came back too late for that.
    pub(super) async fn save_before_create(&self, checkpoint: &Checkpoint) -> Result<()> {
        let local = self.lease_for.max(self.create_call_limit + self.create_margin);
        let extend = self.stored_extension(local, true);
        let target = self.lease().target;
        let deadline = self.renew(local, |lease| self.write(lease, Some(checkpoint.clone()), Some(extend))).await?;
        self.create_outstanding.store(true, std::sync::atomic::Ordering::Relaxed);
        // The call may take `create_call_limit` from now: it must be over by the deadline.
        if tokio::time::Instant::now() + self.create_call_limit > deadline {
            return Err(Error::LeaseLost(target));
        }
        Ok(())
    }
}

/// An attempt that is polled only while its lease is surely held: once the local deadline has
/// passed, it is dropped at its next await point, before it can send anything more (a worker
/// resumed after a long stall finds its attempt gone).
pub(super) struct Fenced<F> {
    pub(super) inner: std::pin::Pin<Box<F>>,
    pub(super) keeper: Arc<LeaseKeeper>,
}

impl<F: Future<Output = Option<Completion>>> Future for Fenced<F> {
    type Output = Option<Option<Completion>>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        if tokio::time::Instant::now() >= self.keeper.deadline() {
            return std::task::Poll::Ready(None);
        }
        self.inner.as_mut().poll(cx).map(Some)
    }
}
