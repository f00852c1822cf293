//! Processing one claimed target: the attempt under its lease, its outcome and its events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use super::Konektly;
use super::lease::{Fenced, LeaseKeeper};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::id::{AccountId, PlatformId, TargetId};
use crate::lifecycle::after;
use crate::model::{Account, Checkpoint, FailureRecord, Lease, PublishOutcome, Reconciliation, TargetRecord};
use crate::platform::{AttemptHooks, Platform, PublishContext};
use crate::ratelimit::{BudgetScope, RateLimitReport, budget_key, observed_key};
use crate::scheduler::{BudgetSpend, ClaimKind, Claimed, Completion};

impl Konektly {
    // ---- processing one claimed target ----------------------------------------------------

    fn semaphore<K: std::hash::Hash + Eq + Clone>(
        map: &Mutex<HashMap<K, Arc<Semaphore>>>,
        key: &K,
        n: usize,
    ) -> Arc<Semaphore> {
        map.lock().unwrap().entry(key.clone()).or_insert_with(|| Arc::new(Semaphore::new(n.max(1)))).clone()
    }

    /// Processes one claimed target to its next state. Used by workers and `publish_now`.
    ///
    /// Heartbeats run beside the attempt in the same task. The attempt is dropped — at its next
    /// await point, whatever it is doing — as soon as the lease is lost or its local deadline
    /// passes without a renewal: nothing more is sent under a lease another worker may own.
    pub async fn process(&self, claimed: Claimed) {
        let Claimed { record, lease, kind } = claimed;
        let target = record.id;
        let keeper = Arc::new(LeaseKeeper::new(self.inner.leases.clone(), lease, &self.inner.config));
        let completion = {
            // Boxed: the attempt's state machine is large, and moving it into every spawned
            // task's cell by value cost more than the rest of the engine together.
            let mut attempt = Fenced { inner: Box::pin(self.attempt(&record, &keeper, kind)), keeper: keeper.clone() };
            let every = self.inner.config.heartbeat;
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            let abandoned =
                |why: &str| tracing::warn!(target: "konektly::worker", %target, why, "abandoning the attempt");
            loop {
                let deadline = keeper.deadline();
                tokio::select! {
                    biased;
                    // Wakes the loop when the lease runs out while the attempt waits on a call.
                    _ = tokio::time::sleep_until(deadline) => {
                        if keeper.deadline() <= tokio::time::Instant::now() {
                            abandoned("the lease ran out before it could be renewed");
                            break None;
                        }
                    }
                    _ = ticks.tick() => {
                        match keeper.heartbeat().await {
                            Ok(()) => {}
                            Err(Error::LeaseLost(_)) => {
                                abandoned("the lease was lost");
                                break None;
                            }
                            Err(e) => tracing::warn!(target: "konektly::worker", %e, "heartbeat failed"),
                        }
                    }
                    c = &mut attempt => match c {
                        Some(c) => break c,
                        None => {
                            abandoned("the lease ran out");
                            break None;
                        }
                    },
                }
            }
        };
        let Some(completion) = completion else { return };
        let current = keeper.lease();
        match self.record_outcome(current, &completion).await {
            Ok(()) => self.emit_for(&record, &completion),
            Err(Error::LeaseLost(_)) => {
                tracing::info!(target: "konektly::worker", %target, "lease lost; another worker owns the target now");
            }
            Err(e) => {
                tracing::error!(target: "konektly::worker", %target, error = %e, "could not record the outcome; the lease will expire and the target will be reconciled")
            }
        }
    }

    /// Records an outcome, together with the others that finish meanwhile (group commit).
    async fn record_outcome(&self, lease: Lease, completion: &Completion) -> Result<()> {
        if self.inner.config.completion_batch <= 1 {
            return self.inner.scheduler.complete(&lease, completion).await.map(drop);
        }
        self.inner.outcomes.submit((lease, completion.clone())).await
    }

    fn emit_for(&self, rec: &TargetRecord, completion: &Completion) {
        let ev = match completion {
            Completion::Published(remote) => {
                Event::Published { target: rec.id, post: rec.post_id, remote: remote.clone() }
            }
            Completion::Processing { .. } => Event::Processing { target: rec.id },
            Completion::Retry { error: Some(f), .. } | Completion::Unknown { error: Some(f), .. } => {
                Event::Retrying { target: rec.id, failure: f.clone() }
            }
            Completion::Failed(f) => {
                if f.kind == crate::error::ErrorKind::OutcomeUnknown {
                    let _ = self.inner.events.send(Event::OutcomeUnknown {
                        target: rec.id,
                        post: rec.post_id,
                        account: rec.account_id,
                        failure: f.clone(),
                    });
                }
                Event::Failed { target: rec.id, post: rec.post_id, failure: f.clone() }
            }
            _ => return,
        };
        let _ = self.inner.events.send(ev);
    }

    /// Runs one attempt and says how it ended; `None` when nothing may be written (lease lost).
    async fn attempt(&self, record: &TargetRecord, keeper: &Arc<LeaseKeeper>, kind: ClaimKind) -> Option<Completion> {
        let Some(platform) = self.inner.platforms.get(&record.platform).cloned() else {
            return Some(Completion::Failed(FailureRecord::from(&Error::NotSupported(format!(
                "no platform `{}` is registered in this process",
                record.platform
            )))));
        };
        let _slots = self.acquire_slots(record).await?;
        let account = match self.inner.tokens.fresh_account(record.account_id).await {
            Ok(a) => a,
            Err(e) => return self.on_error(record, kind, e),
        };
        if let Some(deferred) = self.budget_deferral(platform.as_ref(), &account, record, kind).await {
            return Some(deferred);
        }
        let account_id = account.id;
        let hooks = EngineHooks { keeper, events: &self.inner.events, reports: Mutex::default() };
        // The post is published already: only its comments remain (see `comments.rs`).
        match Self::comment_phase_of(record) {
            Err(ended) => return Some(ended),
            Ok(Some(phase)) => {
                let checkpoint = record.checkpoint.clone();
                let c = self.comment_phase(record, platform.as_ref(), account, phase, &hooks, checkpoint).await;
                self.flush_reports(&hooks, &platform.id(), account_id).await;
                return c;
            }
            Ok(None) => {}
        }
        let for_comments = (!record.content.comments.is_empty()).then(|| account.clone());
        let (kind_now, result, checkpoint) =
            match self.run_platform(record, platform.as_ref(), account, kind, &hooks).await {
                Run::Ended { completion, flush } => {
                    if flush {
                        self.flush_reports(&hooks, &platform.id(), account_id).await;
                    }
                    return Some(completion);
                }
                Run::Answered { kind, result, checkpoint } => (kind, result, checkpoint),
            };
        let result = self.settle(account_id, keeper, result).await;
        if let (Ok(PublishOutcome::Published(remote)), Some(account)) = (&result, for_comments) {
            let phase = super::comments::CommentPhase::new(remote.clone(), record.content.comments.len());
            let c = self.comment_phase(record, platform.as_ref(), account, phase, &hooks, checkpoint).await;
            self.flush_reports(&hooks, &platform.id(), account_id).await;
            return c;
        }
        self.flush_reports(&hooks, &platform.id(), account_id).await;
        match result {
            Ok(PublishOutcome::Published(remote)) => Some(Completion::Published(remote)),
            Ok(PublishOutcome::Processing { poll_after, detail }) => {
                let now = Utc::now();
                Some(self.inner.rules.processing_or_end(record, after(now, poll_after), now, || FailureRecord {
                    kind: crate::error::ErrorKind::Transient,
                    code: None,
                    message: detail.unwrap_or_else(|| "the platform was still processing the post".into()),
                    violations: Vec::new(),
                }))
            }
            Err(e) => self.on_error(record, kind_now, e),
        }
    }

    /// Waits for a slot of the target's platform and one of its account (this process's
    /// concurrency limits); `None` if the engine is shutting them down.
    async fn acquire_slots(&self, record: &TargetRecord) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let cfg = &self.inner.config;
        let platform_sem = Self::semaphore(&self.inner.platform_limits, &record.platform, cfg.per_platform_concurrency);
        let account_sem = Self::semaphore(&self.inner.account_limits, &record.account_id, cfg.per_account_concurrency);
        let p = platform_sem.acquire_owned().await.ok()?;
        let a = account_sem.acquire_owned().await.ok()?;
        Some((p, a))
    }

    /// When a budget is spent, the attempt is deferred until it refills (a reconciliation is
    /// never deferred: it must not wait behind new posts).
    async fn budget_deferral(
        &self,
        platform: &dyn Platform,
        account: &Account,
        record: &TargetRecord,
        kind: ClaimKind,
    ) -> Option<Completion> {
        if kind == ClaimKind::Reconcile {
            // A lookup spends no declared budget, but a wait the platform stated (a 429's
            // reset, an exhausted usage bucket) holds it too: the lookup is deferred to it,
            // still unknown, without counting an attempt.
            let until = self.observed_wait(platform, account).await?;
            tracing::debug!(target: "konektly::worker", target = %record.id, %until, "platform wait; lookup deferred");
            return Some(Completion::Unknown { at: until, error: None, attempts: record.attempts });
        }
        let until = self.budget_wait(platform, account, kind).await?;
        tracing::debug!(target: "konektly::worker", target = %record.id, %until, "budget spent; deferred");
        Some(match kind {
            ClaimKind::Poll => Completion::Processing { poll_at: until },
            _ => Completion::Retry { at: until, error: None, attempts: record.attempts },
        })
    }

    /// Calls the platform until it answers: a reconciliation that finds nothing continues as a
    /// publish from the checkpoint, and a token the platform rejects is refreshed once.
    async fn run_platform(
        &self,
        record: &TargetRecord,
        platform: &dyn Platform,
        mut account: Account,
        kind: ClaimKind,
        hooks: &EngineHooks<'_>,
    ) -> Run {
        let started = record.attempt_started_at.unwrap_or_else(Utc::now);
        let mut checkpoint = record.checkpoint.clone();
        let mut kind_now = kind;
        let mut refreshed = false;
        // Stored media are read through this process's media store.
        let content = crate::media_store::attach(self.inner.media_store.as_ref(), &record.content);
        loop {
            let mut ctx = PublishContext::builder(record.id, &account, &content, &record.options)
                .started_at(started)
                .checkpoint(checkpoint.clone())
                .hooks(hooks)
                .media_host(self.inner.media_host.as_deref())
                .build();
            let call = Self::call_platform(record, platform, kind_now, &mut ctx).await;
            checkpoint = ctx.checkpoint().clone();
            drop(ctx);
            let r = match call {
                Call::Ended { completion, flush } => return Run::Ended { completion, flush },
                Call::PublishAgain => {
                    kind_now = ClaimKind::Publish;
                    continue;
                }
                Call::Answered(r) => r,
            };
            let result = match r {
                Err(Error::AccessTokenRejected { .. }) if !refreshed => {
                    refreshed = true;
                    match self.inner.tokens.force_refresh(&account).await {
                        Ok(a) => {
                            account = a;
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(Error::AccessTokenRejected { message, source }) => Err(Error::ReauthRequired {
                    reason: format!("the platform refused a freshly refreshed token: {message}"),
                    source,
                }),
                other => other,
            };
            return Run::Answered { kind: kind_now, result, checkpoint };
        }
    }

    /// One call for `kind`; a reconciliation's answer read as what to do next.
    async fn call_platform(
        record: &TargetRecord,
        platform: &dyn Platform,
        kind: ClaimKind,
        ctx: &mut PublishContext<'_>,
    ) -> Call {
        match kind {
            ClaimKind::Publish => Call::Answered(platform.publish(ctx).await),
            ClaimKind::Poll => Call::Answered(platform.poll(ctx).await),
            ClaimKind::Reconcile => match platform.reconcile(ctx).await {
                Ok(Reconciliation::Published(remote)) => Call::Answered(Ok(PublishOutcome::Published(remote))),
                Ok(Reconciliation::Processing { poll_after }) => {
                    Call::Answered(Ok(PublishOutcome::Processing { poll_after, detail: None }))
                }
                Ok(Reconciliation::Unknowable { reason }) => Call::ended(Completion::Failed(FailureRecord {
                    kind: crate::error::ErrorKind::OutcomeUnknown,
                    code: Some("outcome_unknowable".into()),
                    message: format!(
                        "whether this post was published on {} cannot be established: {reason}; check the \
                         account before publishing it again",
                        record.platform
                    ),
                    violations: Vec::new(),
                })),
                // Nothing landed and a cancel waits: stop here (recorded as cancelled).
                Ok(Reconciliation::NotFound) if record.cancel_requested_at.is_some() => {
                    // (As before the engine was split, this call's rate-limit reports are not
                    // recorded.)
                    Call::Ended {
                        completion: Completion::Retry { at: Utc::now(), error: None, attempts: record.attempts },
                        flush: false,
                    }
                }
                // Nothing landed: publishing again is safe, from the saved checkpoint.
                Ok(Reconciliation::NotFound) => Call::PublishAgain,
                Err(e) => Call::Answered(Err(e)),
            },
        }
    }

    /// What the platform's answer means beyond this target: a dead grant marks the account; a
    /// transient failure while a create's answer is outstanding becomes an unknown outcome.
    async fn settle(
        &self,
        account: AccountId,
        keeper: &LeaseKeeper,
        result: Result<PublishOutcome>,
    ) -> Result<PublishOutcome> {
        // Whatever the platform, a dead grant marks the account and raises `ReauthRequired`
        // once, so the application can ask its user to reconnect.
        if let Err(Error::ReauthRequired { reason, .. }) = &result
            && let Err(e) = self.inner.tokens.mark_reauth(account, reason).await
        {
            tracing::warn!(target: "konektly::worker", error = %e, "could not mark the account");
        }
        // While a create's answer is outstanding (sent, and no checkpoint saved since), a
        // transient failure does not say that nothing landed: reconcile before sending again.
        match result {
            Err(Error::Transient { message, source, .. }) if keeper.create_outstanding() => {
                Err(Error::UnknownOutcome {
                    message: format!("{message} (after a create was sent: it may have landed)"),
                    source,
                })
            }
            other => other,
        }
    }

    /// How an attempt that failed with `e` ends (the rules are in `lifecycle`).
    fn on_error(&self, record: &TargetRecord, kind: ClaimKind, e: Error) -> Option<Completion> {
        tracing::info!(target: "konektly::worker", target = %record.id, platform = %record.platform, error = %e, "attempt ended with an error");
        self.inner.rules.on_error(record, kind, e, Utc::now())
    }

    /// The end of a wait the platform stated for this account or the app, if one is running.
    async fn observed_wait(&self, platform: &dyn Platform, account: &Account) -> Option<DateTime<Utc>> {
        let pid = platform.id();
        let now = Utc::now();
        for scope in [BudgetScope::Account, BudgetScope::App] {
            let key = observed_key(&pid, scope, account.id);
            if let Ok(Some(t)) =
                self.inner.scheduler.acquire_budget(&key, u32::MAX, Duration::from_secs(1), 0, now).await
            {
                return Some(t);
            }
        }
        None
    }

    async fn budget_wait(&self, platform: &dyn Platform, account: &Account, kind: ClaimKind) -> Option<DateTime<Utc>> {
        if let Some(t) = self.observed_wait(platform, account).await {
            return Some(t);
        }
        let pid = platform.id();
        let now = Utc::now();
        for b in &platform.capabilities().budgets {
            let cost = if kind == ClaimKind::Poll { b.per_poll } else { b.per_publish };
            if cost == 0 {
                continue;
            }
            let key = budget_key(&pid, b.scope, account.id, &b.name);
            let spend = BudgetSpend { key, limit: b.limit, window: b.window, cost, now };
            match self.inner.budgets.submit(spend).await {
                Ok(None) => {}
                Ok(Some(t)) => return Some(t),
                Err(e) => tracing::warn!(target: "konektly::worker", error = %e, "budget check failed; proceeding"),
            }
        }
        None
    }

    async fn flush_reports(&self, hooks: &EngineHooks<'_>, platform: &PlatformId, account: AccountId) {
        let reports = std::mem::take(&mut *hooks.reports.lock().unwrap());
        for r in reports {
            let key = observed_key(platform, r.scope, account);
            if let Err(e) = self.inner.scheduler.observe_budget(&key, r.remaining, r.reset_at).await {
                tracing::warn!(target: "konektly::worker", error = %e, "could not record a rate-limit report");
            }
        }
    }
}

/// How one run of the platform ended.
enum Run {
    /// The attempt ends here, as this; `flush`: the rate-limit reports are recorded first.
    Ended { completion: Completion, flush: bool },
    /// The platform answered a call of this kind, leaving this checkpoint.
    Answered { kind: ClaimKind, result: Result<PublishOutcome>, checkpoint: Checkpoint },
}

/// How one call ended.
enum Call {
    Ended {
        completion: Completion,
        flush: bool,
    },
    /// A reconciliation found nothing: publish from the checkpoint.
    PublishAgain,
    Answered(Result<PublishOutcome>),
}

impl Call {
    /// Ends the attempt as `completion`, recording the rate-limit reports first.
    fn ended(completion: Completion) -> Self {
        Call::Ended { completion, flush: true }
    }
}

/// The engine's hooks for one attempt: checkpoints written under the lease, rate-limit reports
/// kept until the attempt ends (then recorded as budget observations by `flush_reports`),
/// upload progress sent as events while someone listens.
pub(super) struct EngineHooks<'a> {
    keeper: &'a LeaseKeeper,
    events: &'a broadcast::Sender<Event>,
    reports: Mutex<Vec<RateLimitReport>>,
}

#[async_trait::async_trait]
impl AttemptHooks for EngineHooks<'_> {
    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.keeper.save_checkpoint(checkpoint).await
    }

    async fn save_before_create(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.keeper.save_before_create(checkpoint).await
    }

    fn report_rate_limit(&self, report: RateLimitReport) {
        self.reports.lock().unwrap().push(report);
    }

    fn report_progress(&self, target: TargetId, sent: u64, total: u64) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(Event::UploadProgress { target, sent, total });
        }
    }
}
