//! The engine: `Konektly` connects accounts, validates, schedules and publishes, and runs
//! workers that move each target through its states (see ARCHITECTURE.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, broadcast};
use url::Url;

use crate::error::{Error, Result};
use crate::events::Event;
use crate::group::GroupCommit;
use crate::id::{AccountId, PlatformId};
use crate::lifecycle::OutcomeRules;
use crate::media_host::MediaHost;
use crate::media_store::MediaStore;
use crate::model::Lease;
use crate::platform::Platform;
use crate::scheduler::{BudgetSpend, Completion, LeaseWrite, Scheduler};
use crate::store::TokenStore;
use crate::token::TokenManager;

mod attempt;
mod comments;
mod connect;
mod lease;
mod manage;
mod posts;
mod worker;

pub use comments::{COMMENTS_KEY, CommentPhase, CommentProgress};
pub use worker::{Worker, WorkerReport};

/// Tuning of the engine. The defaults suit most applications.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Refresh tokens that expire within this window.
    pub refresh_window: Duration,
    /// Up to this much is added to the window at random.
    pub refresh_jitter: Duration,
    /// How long a pending authorization is accepted.
    pub pending_authorization_ttl: Duration,
    /// Attempts before a target fails for good (transient errors and unknown outcomes count;
    /// rate limits and budget deferrals do not).
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with jitter.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// How often a worker extends its leases.
    pub heartbeat: Duration,
    /// How many targets a worker claims at once.
    pub claim_batch: usize,
    /// How many targets a worker processes at once.
    pub worker_concurrency: usize,
    /// Calls in flight per platform, per process.
    pub per_platform_concurrency: usize,
    /// Calls in flight per account, per process.
    pub per_account_concurrency: usize,
    /// Longest sleep of an idle worker between looks at the queue.
    pub idle_poll: Duration,
    /// Wait before reconciling after an unknown outcome.
    pub reconcile_delay: Duration,
    /// After a shutdown signal, how long in-flight work may take before it is abandoned (its
    /// checkpoints are kept; its leases expire and another worker reconciles).
    pub shutdown_grace: Duration,
    /// Most outcomes recorded together. Outcomes that finish while a batch is being written
    /// wait for the next one and go to the store together ([`Scheduler::complete_many`]): no
    /// timer, so a lone outcome is written at once. 1 records each on its own.
    ///
    /// The same bound applies to lease writes (heartbeats and checkpoint saves) and budget
    /// spends, which go to the store together the same way ([`Scheduler::write_leases`],
    /// [`Scheduler::acquire_budgets`]).
    pub completion_batch: usize,
    /// How long a worker reuses an account it read (its tokens and status) before reading it
    /// again; see [`TokenManager::with_account_cache`]. Zero reads it for every target.
    pub account_cache: Duration,
    /// The longest a call that creates something at a platform may take (the adapters' HTTP
    /// timeout for such calls: `HttpConfig::timeout`, 60 s by default). Before each create the
    /// worker renews its lease to outlive this plus [`create_margin`](Self::create_margin),
    /// and drops the call when its lease runs out: a call can never be in flight while
    /// another worker reconciles the target.
    pub create_call_limit: Duration,
    /// Time added to [`create_call_limit`](Self::create_call_limit) when renewing a lease
    /// before a create (clock skew between processes, the write itself).
    pub create_margin: Duration,
    /// How long a process holds an account's token refresh (see
    /// [`TokenManager::with_refresh_claim`]); the refresh call is dropped before it ends.
    pub refresh_claim: Duration,
    /// How long after an attempt began an unknown or processing outcome may stay unresolved
    /// before the target ends as `Failed` with kind `outcome_unknown` (also ended by
    /// `max_attempts` failed lookups).
    pub outcome_deadline: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            refresh_window: Duration::from_secs(300),
            refresh_jitter: Duration::from_secs(30),
            pending_authorization_ttl: Duration::from_secs(600),
            max_attempts: 5,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(20),
            claim_batch: 32,
            worker_concurrency: 16,
            per_platform_concurrency: 8,
            per_account_concurrency: 2,
            idle_poll: Duration::from_secs(1),
            reconcile_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            completion_batch: 128,
            account_cache: Duration::from_secs(1),
            create_call_limit: Duration::from_secs(60),
            create_margin: Duration::from_secs(10),
            refresh_claim: crate::token::DEFAULT_REFRESH_CLAIM,
            outcome_deadline: Duration::from_secs(24 * 3600),
        }
    }
}

/// What [`Konektly::cancel`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CancelReport {
    /// Targets cancelled: nothing of them was or will be sent.
    pub cancelled: usize,
    /// Targets the platform may be publishing already: they end `Cancelled` if nothing lands,
    /// or `Published` if it was too late; look at their state once it is final.
    pub requested: usize,
}

/// The start of a connection: send the user to `url`.
#[derive(Clone, Debug)]
pub struct ConnectStart {
    /// Where to send the user's browser.
    pub url: Url,
    /// The `state` the callback will carry.
    pub state: String,
    /// When the pending authorization expires.
    pub expires_at: DateTime<Utc>,
}

/// Builds a [`Konektly`].
#[derive(Default)]
pub struct KonektlyBuilder {
    platforms: Vec<Arc<dyn Platform>>,
    store: Option<Arc<dyn TokenStore>>,
    scheduler: Option<Arc<dyn Scheduler>>,
    media_host: Option<Arc<dyn MediaHost>>,
    media_store: Option<Arc<dyn MediaStore>>,
    config: EngineConfig,
}

impl std::fmt::Debug for KonektlyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KonektlyBuilder").field("platforms", &self.platforms.len()).finish_non_exhaustive()
    }
}

impl KonektlyBuilder {
    /// Registers a platform.
    pub fn platform(mut self, platform: Arc<dyn Platform>) -> Self {
        self.platforms.push(platform);
        self
    }

    /// Sets the token store.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets the scheduler.
    pub fn scheduler(mut self, scheduler: Arc<dyn Scheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Sets the media host (needed by platforms that fetch media by URL).
    pub fn media_host(mut self, host: Arc<dyn MediaHost>) -> Self {
        self.media_host = Some(host);
        self
    }

    /// Sets the media store: scheduled posts' local media are copied into it and read from it
    /// by every worker (see [`MediaStore`] and [`Konektly::collect_media`]). Without one, a
    /// post keeps its files' paths, which only workers that see those paths can read.
    pub fn media_store(mut self, store: Arc<dyn MediaStore>) -> Self {
        self.media_store = Some(store);
        self
    }

    /// Sets the tuning.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the engine. Fails on a missing store or scheduler, or two platforms with one id.
    pub fn build(self) -> Result<Konektly> {
        let store = self.store.ok_or_else(|| Error::Config("a TokenStore is required".into()))?;
        let scheduler = self.scheduler.ok_or_else(|| Error::Config("a Scheduler is required".into()))?;
        let mut platforms = HashMap::new();
        for p in self.platforms {
            let id = p.id();
            if platforms.insert(id.clone(), p).is_some() {
                return Err(Error::Config(format!("platform `{id}` is registered twice")));
            }
        }
        let platforms = Arc::new(platforms);
        let (events, _) = broadcast::channel(1024);
        let scheduler_for_groups = scheduler.clone();
        let batch = self.config.completion_batch;
        let tokens = TokenManager::new(
            store.clone(),
            platforms.clone(),
            self.config.refresh_window,
            self.config.refresh_jitter,
            events.clone(),
        )
        .with_account_cache(self.config.account_cache)
        .with_refresh_claim(self.config.refresh_claim);
        Ok(Konektly {
            inner: Arc::new(Inner {
                platforms,
                store,
                scheduler,
                media_host: self.media_host,
                media_store: self.media_store,
                tokens,
                events,
                rules: OutcomeRules {
                    max_attempts: self.config.max_attempts,
                    retry_base: self.config.retry_base,
                    retry_max: self.config.retry_max,
                    reconcile_delay: self.config.reconcile_delay,
                    outcome_deadline: self.config.outcome_deadline,
                },
                config: self.config,
                platform_limits: Mutex::new(HashMap::new()),
                account_limits: Mutex::new(HashMap::new()),
                outcomes: outcome_writer(&scheduler_for_groups, batch),
                leases: Arc::new(lease_writer(&scheduler_for_groups, batch)),
                budgets: budget_spender(&scheduler_for_groups, batch),
            }),
        })
    }
}

struct Inner {
    platforms: Arc<HashMap<PlatformId, Arc<dyn Platform>>>,
    store: Arc<dyn TokenStore>,
    scheduler: Arc<dyn Scheduler>,
    media_host: Option<Arc<dyn MediaHost>>,
    media_store: Option<Arc<dyn MediaStore>>,
    tokens: TokenManager,
    events: broadcast::Sender<Event>,
    config: EngineConfig,
    /// How attempts end (from `config`).
    rules: OutcomeRules,
    platform_limits: Mutex<HashMap<PlatformId, Arc<Semaphore>>>,
    account_limits: Mutex<HashMap<AccountId, Arc<Semaphore>>>,
    /// Outcomes, written in groups ([`Scheduler::complete_many`]).
    outcomes: GroupCommit<(Lease, Completion), ()>,
    /// Heartbeats and checkpoint saves, written in groups ([`Scheduler::write_leases`]).
    leases: Arc<GroupCommit<LeaseWrite, Lease>>,
    /// Budget spends, written in groups ([`Scheduler::acquire_budgets`]).
    budgets: GroupCommit<BudgetSpend, Option<DateTime<Utc>>>,
}

fn budget_spender(scheduler: &Arc<dyn Scheduler>, max: usize) -> GroupCommit<BudgetSpend, Option<DateTime<Utc>>> {
    let scheduler = scheduler.clone();
    GroupCommit::new(
        max,
        "budget spends",
        Arc::new(move |spends: Vec<BudgetSpend>| {
            let scheduler = scheduler.clone();
            Box::pin(async move { scheduler.acquire_budgets(&spends).await })
        }),
    )
}

fn outcome_writer(scheduler: &Arc<dyn Scheduler>, max: usize) -> GroupCommit<(Lease, Completion), ()> {
    let scheduler = scheduler.clone();
    GroupCommit::new(
        max,
        "outcomes",
        Arc::new(move |items: Vec<(Lease, Completion)>| {
            let scheduler = scheduler.clone();
            Box::pin(async move { scheduler.complete_many(&items).await })
        }),
    )
}

/// Lease writes go in rounds in which each target appears once (a store writes a batch with
/// one statement, which cannot apply two writes to one row); a second write of a target in the
/// same group waits for the next statement.
fn lease_writer(scheduler: &Arc<dyn Scheduler>, max: usize) -> GroupCommit<LeaseWrite, Lease> {
    let scheduler = scheduler.clone();
    GroupCommit::new(
        max,
        "lease writes",
        Arc::new(move |writes: Vec<LeaseWrite>| {
            let scheduler = scheduler.clone();
            Box::pin(async move {
                let mut out: Vec<Option<Result<Lease>>> = (0..writes.len()).map(|_| None).collect();
                let mut left: Vec<usize> = (0..writes.len()).collect();
                while !left.is_empty() {
                    let mut seen = std::collections::HashSet::with_capacity(left.len());
                    let (now, later): (Vec<usize>, Vec<usize>) =
                        left.into_iter().partition(|&i| seen.insert(writes[i].lease.target));
                    let round: Vec<LeaseWrite> = now.iter().map(|&i| writes[i].clone()).collect();
                    let results = scheduler.write_leases(&round).await?;
                    if results.len() != round.len() {
                        return Err(Error::Storage {
                            message: format!("the store answered {} lease writes for {}", results.len(), round.len()),
                            source: None,
                        });
                    }
                    for (i, r) in now.into_iter().zip(results) {
                        out[i] = Some(r);
                    }
                    left = later;
                }
                Ok(out
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(Error::transient("lease write not made"))))
                    .collect())
            })
        }),
    )
}

/// The engine. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Konektly {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Konektly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&str> = self.inner.platforms.keys().map(PlatformId::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("Konektly").field("platforms", &ids).finish_non_exhaustive()
    }
}

impl Konektly {
    /// A builder.
    pub fn builder() -> KonektlyBuilder {
        KonektlyBuilder::default()
    }

    /// The registered platform with this id.
    pub fn platform(&self, id: &PlatformId) -> Result<&Arc<dyn Platform>> {
        self.inner.platforms.get(id).ok_or_else(|| Error::Config(format!("no platform `{id}` is registered")))
    }

    /// The token store.
    pub fn token_store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Arc<dyn Scheduler> {
        &self.inner.scheduler
    }

    /// The media store, when one is set.
    pub fn media_store(&self) -> Option<&Arc<dyn MediaStore>> {
        self.inner.media_store.as_ref()
    }

    /// The token manager.
    pub fn tokens(&self) -> &TokenManager {
        &self.inner.tokens
    }

    /// Subscribes to events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }
}
