//! Workers: the claim loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{EngineConfig, Konektly};
use crate::error::Result;
use crate::id::WorkerId;
use crate::scheduler::{ClaimRequest, Claimed};

impl Konektly {
    /// A worker that publishes due targets until told to stop.
    pub fn worker(&self) -> Worker {
        Worker { engine: self.clone(), id: WorkerId::new(format!("worker-{}", uuid::Uuid::now_v7())) }
    }
}

/// Longest wait of a busy worker for half a batch of free slots before it claims what it has
/// (an idle worker claims at once).
const CLAIM_GATHER: Duration = Duration::from_millis(20);

/// What a worker did before it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Targets claimed.
    pub claimed: u64,
    /// Targets still running when the grace period ended (their leases expire; they will be
    /// reconciled by another worker).
    pub abandoned: u64,
}

/// Claims and processes due targets. Run as many as you like, in as many processes as share the
/// store.
#[derive(Debug, Clone)]
pub struct Worker {
    engine: Konektly,
    id: WorkerId,
}

impl Worker {
    /// Names the worker (it appears as the lease owner).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = WorkerId::new(id);
        self
    }

    /// The worker's id.
    pub fn id(&self) -> &WorkerId {
        &self.id
    }

    /// Claims one batch and processes it to the end. Returns how many targets were claimed.
    pub async fn run_once(&self) -> Result<usize> {
        let cfg = &self.engine.inner.config;
        let req = ClaimRequest::new(self.id.clone(), cfg.claim_batch, cfg.lease);
        let claims = self.engine.inner.scheduler.claim(&req).await?;
        let n = claims.len();
        let mut set = JoinSet::new();
        for c in claims {
            let engine = self.engine.clone();
            set.spawn(async move { Box::pin(engine.process(c)).await });
        }
        while set.join_next().await.is_some() {}
        Ok(n)
    }

    /// Runs until `shutdown` completes; then stops claiming and lets in-flight work finish
    /// within the grace period.
    pub async fn run<F: Future<Output = ()>>(self, shutdown: F) -> Result<WorkerReport> {
        tokio::pin!(shutdown);
        let mut claimer = ClaimLoop::new(self);
        while claimer.turn(&mut shutdown).await {}
        Ok(claimer.drain().await)
    }
}

/// The state of [`Worker::run`]: the running attempts, their slots and what was claimed.
struct ClaimLoop {
    engine: Konektly,
    id: WorkerId,
    cfg: EngineConfig,
    slots: Arc<Semaphore>,
    tasks: JoinSet<()>,
    report: WorkerReport,
    /// Claims failed in a row (the wait after one grows with them).
    failures: u32,
    /// Claim in batches: while work is running and fewer than `refill` slots are free, wait (at
    /// most [`CLAIM_GATHER`]) for more to free up rather than claim one target at a time.
    refill: usize,
    gather_until: Option<tokio::time::Instant>,
}

/// Waits for `wait` unless `shutdown` comes first: `false` when it did.
async fn unless_shutdown<S: Future<Output = ()> + Unpin>(shutdown: &mut S, wait: impl Future) -> bool {
    tokio::select! {
        _ = shutdown => false,
        _ = wait => true,
    }
}

impl ClaimLoop {
    fn new(worker: Worker) -> Self {
        let cfg = worker.engine.inner.config.clone();
        Self {
            slots: Arc::new(Semaphore::new(cfg.worker_concurrency.max(1))),
            refill: (cfg.claim_batch.min(cfg.worker_concurrency) / 2).max(1),
            engine: worker.engine,
            id: worker.id,
            cfg,
            tasks: JoinSet::new(),
            report: WorkerReport::default(),
            failures: 0,
            gather_until: None,
        }
    }

    /// One turn: wait for free slots, claim, and start what was claimed. `false` once
    /// `shutdown` has come.
    async fn turn<S: Future<Output = ()> + Unpin>(&mut self, shutdown: &mut S) -> bool {
        while self.tasks.try_join_next().is_some() {}
        let free = self.slots.available_permits();
        if free == 0 {
            return unless_shutdown(shutdown, self.tasks.join_next()).await;
        }
        if let Some(go_on) = self.gather(free, shutdown).await {
            return go_on;
        }
        let claims = match self.claim(free).await {
            Ok(claims) => claims,
            Err(wait) => return unless_shutdown(shutdown, tokio::time::sleep(wait)).await,
        };
        if claims.is_empty() {
            return self.idle(shutdown).await;
        }
        self.start(claims).await;
        true
    }

    /// While busy with fewer than `refill` free slots, waits a little for more; `None` when it
    /// is time to claim.
    async fn gather<S: Future<Output = ()> + Unpin>(&mut self, free: usize, shutdown: &mut S) -> Option<bool> {
        if free < self.refill && !self.tasks.is_empty() {
            let until = *self.gather_until.get_or_insert_with(|| tokio::time::Instant::now() + CLAIM_GATHER);
            if tokio::time::Instant::now() < until {
                let tasks = &mut self.tasks;
                let wait = async {
                    tokio::select! {
                        _ = tasks.join_next() => {}
                        _ = tokio::time::sleep_until(until) => {}
                    }
                };
                return Some(unless_shutdown(shutdown, wait).await);
            }
        }
        self.gather_until = None;
        None
    }

    /// Claims up to `free` targets; on failure, how long to wait before the next claim.
    async fn claim(&mut self, free: usize) -> std::result::Result<Vec<Claimed>, Duration> {
        let mut req = ClaimRequest::new(self.id.clone(), free.min(self.cfg.claim_batch), self.cfg.lease);
        req.now = Utc::now();
        match self.engine.inner.scheduler.claim(&req).await {
            Ok(c) => {
                self.failures = 0;
                Ok(c)
            }
            Err(e) => {
                self.failures += 1;
                tracing::warn!(target: "konektly::worker", error = %e, "claim failed");
                Err(self.cfg.idle_poll.saturating_mul(self.failures.min(10)))
            }
        }
    }

    /// Nothing was claimed: waits for a slot, a notification or the next due time.
    async fn idle<S: Future<Output = ()> + Unpin>(&mut self, shutdown: &mut S) -> bool {
        let sched = self.engine.inner.scheduler.clone();
        let idle_poll = self.cfg.idle_poll;
        let tasks = &mut self.tasks;
        if !tasks.is_empty() {
            // Busy, and the queue is empty or held by other workers: wait for a slot or a
            // notification rather than asking for the next due time on every turn.
            let wait = async {
                tokio::select! {
                    _ = sched.wait_for_work(idle_poll) => {}
                    Some(_) = tasks.join_next() => {}
                }
            };
            return unless_shutdown(shutdown, wait).await;
        }
        let wait = match sched.next_due_at().await {
            Ok(Some(t)) => (t - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(idle_poll),
            _ => idle_poll,
        };
        if wait.is_zero() {
            tokio::task::yield_now().await;
            // Due now but not claimable (held by a live lease elsewhere): avoid spinning.
            return unless_shutdown(shutdown, tokio::time::sleep(Duration::from_millis(5))).await;
        }
        let wait = async {
            tokio::select! {
                _ = sched.wait_for_work(wait) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        };
        unless_shutdown(shutdown, wait).await
    }

    /// Starts each claimed target in a task of its own, holding one slot.
    async fn start(&mut self, claims: Vec<Claimed>) {
        for c in claims {
            self.report.claimed += 1;
            let permit = self.slots.clone().acquire_owned().await.expect("the semaphore is never closed");
            let engine = self.engine.clone();
            self.tasks.spawn(async move {
                Box::pin(engine.process(c)).await;
                drop(permit);
            });
        }
    }

    /// After shutdown: lets in-flight work finish within the grace period, then abandons it.
    async fn drain(mut self) -> WorkerReport {
        let tasks = &mut self.tasks;
        let drained =
            tokio::time::timeout(self.cfg.shutdown_grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            self.report.abandoned = self.tasks.len() as u64;
            self.tasks.abort_all();
        }
        self.report
    }
}
