//! The engine: `Konektly` connects accounts, validates, schedules and publishes, and runs
//! workers that move each target through its states (see ARCHITECTURE.md).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use url::Url;

use crate::error::{Error, Result};
use crate::events::Event;
use crate::group::GroupCommit;
use crate::id::{AccountId, OwnerId, PlatformId, PostId, TargetId, WorkerId};
use crate::media_host::MediaHost;
use crate::media_store::MediaStore;
use crate::model::{
    Account, AccountStatus, Checkpoint, FailureRecord, Lease, Post, PublishOutcome, Reconciliation, TargetRecord,
    TargetState, Violation,
};
use crate::platform::{CheckpointSaver, PendingAuthorization, Platform, PublishContext, RateLimitSink};
use crate::ratelimit::{BudgetScope, RateLimitReport, budget_key, observed_key};
use crate::scheduler::{
    BudgetSpend, ClaimKind, ClaimRequest, Claimed, Completion, LeaseWrite, Scheduler, TargetFilter,
};
use crate::store::TokenStore;
use crate::token::TokenManager;

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

    // ---- connecting accounts -------------------------------------------------------------

    /// Starts connecting an account of `owner` on `platform`: returns the URL to send the user
    /// to. The callback, on any node sharing the store, calls [`Konektly::complete_connect`].
    pub async fn connect(&self, owner: &OwnerId, platform: &PlatformId, redirect_uri: &Url) -> Result<ConnectStart> {
        self.start_connect(owner, platform, redirect_uri, None).await
    }

    /// Starts reconnecting an existing account (after `ReauthRequired`).
    pub async fn reconnect(&self, account: AccountId, redirect_uri: &Url) -> Result<ConnectStart> {
        let a = self.account(account).await?;
        self.start_connect(&a.owner, &a.platform, redirect_uri, Some(account)).await
    }

    async fn start_connect(
        &self,
        owner: &OwnerId,
        platform: &PlatformId,
        redirect_uri: &Url,
        reconnect: Option<AccountId>,
    ) -> Result<ConnectStart> {
        let p = self.platform(platform)?;
        let req = p.authorization_request(redirect_uri)?;
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.inner.config.pending_authorization_ttl).unwrap_or_default();
        let pending = PendingAuthorization {
            state: req.state.clone(),
            platform: platform.clone(),
            owner: owner.clone(),
            redirect_uri: redirect_uri.clone(),
            pkce_verifier: req.pkce_verifier,
            expires_at,
            reconnect,
        };
        self.inner.store.put_pending(&pending).await?;
        Ok(ConnectStart { url: req.url, state: req.state, expires_at })
    }

    /// Completes a connection from the callback's `state` and `code`. The state is accepted
    /// once, before it expires. Stores every account the grant reaches (Facebook Login: the
    /// user, each Page and each linked Instagram account) and returns them; the application may
    /// [`disconnect`](Konektly::disconnect) those it does not want. Reconnecting an account
    /// unblocks its waiting targets.
    pub async fn complete_connect(&self, state: &str, code: &str) -> Result<Vec<Account>> {
        let pending = self
            .inner
            .store
            .take_pending(state)
            .await?
            .ok_or_else(|| Error::Authorization("unknown or already used `state`".into()))?;
        if pending.expires_at <= Utc::now() {
            return Err(Error::Authorization("the authorization expired; start again".into()));
        }
        let platform = self.platform(&pending.platform)?.clone();
        // One meaning, one error, whatever the adapter: a code the platform refuses (replayed,
        // expired, for another redirect) is `Authorization` — never `ReauthRequired`, which is
        // about an account's grant. An answer lost or unreadable after the code was sent spent
        // the code: the user must start again, which is `Authorization` too.
        let grants = platform.exchange_code(code, &pending).await.map_err(|e| match e {
            Error::ReauthRequired { reason, .. } | Error::AccessTokenRejected { message: reason, .. } => {
                Error::Authorization(format!("the platform refused the authorization code: {reason}; connect again"))
            }
            Error::UnknownOutcome { message, .. } => Error::Authorization(format!(
                "the answer to the code exchange was lost ({message}); the code is spent: connect again"
            )),
            other => other,
        })?;
        if let Some(id) = pending.reconnect {
            // A reconnect must bring back the same remote account, or nothing is stored: signing
            // in with another login would leave the old account blocked and add a stranger.
            let old = self.account(id).await?;
            if !grants.iter().any(|g| g.platform == old.platform && g.profile.remote_id == old.remote_id) {
                let got: Vec<String> = grants
                    .iter()
                    .filter(|g| g.platform == old.platform)
                    .map(|g| g.profile.handle.clone().unwrap_or_else(|| g.profile.remote_id.clone()))
                    .collect();
                return Err(Error::Authorization(format!(
                    "reconnecting {} account {} needs a sign-in as that account, but the platform answered for {}; \
                     sign in with the account being reconnected",
                    old.platform,
                    old.handle.as_deref().unwrap_or(&old.remote_id),
                    if got.is_empty() { "no account of that platform".to_owned() } else { got.join(", ") }
                )));
            }
        }
        let mut out: Vec<Account> = Vec::with_capacity(grants.len());
        for grant in grants {
            let parent =
                grant.parent_remote_id.as_ref().and_then(|r| out.iter().find(|a| &a.remote_id == r).map(|a| a.id));
            let account = self.upsert_account(&pending.owner, grant, parent).await?;
            let _ = self.inner.events.send(Event::AccountConnected { account: account.id });
            out.push(account);
        }
        Ok(out)
    }

    /// Stores a grant's account: updates the owner's account for the same remote account if
    /// there is one (reconnect), else inserts it. Accounts are unique per owner, platform and
    /// remote id: an insert that loses a race with a parallel connect of the same login
    /// updates the winner's row instead.
    async fn upsert_account(
        &self,
        owner: &OwnerId,
        grant: crate::model::AccountGrant,
        parent: Option<AccountId>,
    ) -> Result<Account> {
        for _ in 0..5 {
            let now = Utc::now();
            match self.inner.store.find_account(owner, &grant.platform, &grant.profile.remote_id).await? {
                Some(mut a) => {
                    a.tokens = a.tokens.merged_with(grant.tokens.clone());
                    a.status = AccountStatus::Active;
                    a.handle = grant.profile.handle.clone();
                    a.display_name = grant.profile.display_name.clone();
                    a.avatar_url = grant.profile.avatar_url.clone();
                    a.parent = parent.or(a.parent);
                    a.metadata.extend(grant.metadata.clone());
                    a.metadata.remove(crate::token::REFRESH_CLAIM_KEY);
                    let a = match self.inner.store.update_account(&a).await {
                        Ok(a) => a,
                        Err(Error::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    self.inner.tokens.forget(a.id);
                    self.inner.scheduler.unblock_account(a.id, now).await?;
                    return Ok(a);
                }
                None => {
                    let a = Account {
                        id: AccountId::new(),
                        owner: owner.clone(),
                        platform: grant.platform.clone(),
                        remote_id: grant.profile.remote_id.clone(),
                        handle: grant.profile.handle.clone(),
                        display_name: grant.profile.display_name.clone(),
                        avatar_url: grant.profile.avatar_url.clone(),
                        tokens: grant.tokens.clone(),
                        status: AccountStatus::Active,
                        parent,
                        metadata: grant.metadata.clone(),
                        version: 1,
                        created_at: now,
                        updated_at: now,
                    };
                    match self.inner.store.insert_account(&a).await {
                        Ok(()) => return Ok(a),
                        // A parallel connect of the same login stored it first: update that one.
                        Err(Error::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(Error::Conflict(format!(
            "{} account {} keeps changing while it is being connected",
            grant.platform, grant.profile.remote_id
        )))
    }

    /// Disconnects an account: revokes the grant at the platform, cancels its pending targets,
    /// then erases it. A temporary failure to revoke leaves everything as it was (try again); a
    /// grant the platform says is already dead is erased anyway.
    pub async fn disconnect(&self, account: AccountId) -> Result<()> {
        let a = self.account(account).await?;
        if let Ok(platform) = self.platform(&a.platform) {
            match platform.revoke(&a).await {
                Ok(())
                | Err(Error::ReauthRequired { .. } | Error::AccessTokenRejected { .. } | Error::NotSupported(_)) => {}
                Err(Error::Rejected { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for t in self.inner.scheduler.list(&TargetFilter::account(account)).await? {
            if !t.state.is_final() {
                let _ = self.inner.scheduler.cancel(t.id).await;
            }
        }
        self.inner.store.delete_account(account).await?;
        self.inner.tokens.forget(account);
        Ok(())
    }

    /// An account.
    pub async fn account(&self, id: AccountId) -> Result<Account> {
        self.inner.store.get_account(id).await?.ok_or_else(|| Error::NotFound(format!("account {id}")))
    }

    /// An owner's accounts.
    pub async fn accounts(&self, owner: &OwnerId) -> Result<Vec<Account>> {
        self.inner.store.list_accounts(owner).await
    }

    // ---- posts ---------------------------------------------------------------------------

    /// Checks a post against every target platform's rules, offline. Returns every violation
    /// (each naming its platform and target); empty means it can be published.
    pub async fn validate(&self, post: &Post) -> Result<Vec<Violation>> {
        Ok(self.validate_inner(post).await?.1)
    }

    async fn validate_inner(&self, post: &Post) -> Result<(Vec<TargetRecord>, Vec<Violation>)> {
        let mut violations = Vec::new();
        let mut records = Vec::new();
        if post.targets.is_empty() {
            violations.push(Violation::new("no_targets", "targets", "the post has no target account"));
        }
        let due = post.publish_at.unwrap_or_else(Utc::now);
        for (i, target) in post.targets.iter().enumerate() {
            let target_id = TargetId::for_post(post.id, target.account);
            let mut push = |mut v: Violation, platform: Option<&PlatformId>| {
                v.target = Some(target_id);
                if v.platform.is_none() {
                    v.platform = platform.cloned();
                }
                violations.push(v);
            };
            // Another owner's account is reported exactly as a missing one: no hint that it exists.
            let account = match self.inner.store.get_account(target.account).await? {
                Some(a) if a.owner == post.owner => a,
                _ => {
                    push(Violation::new("unknown_account", format!("targets[{i}].account"), "no such account"), None);
                    continue;
                }
            };
            let Some(platform) = self.inner.platforms.get(&account.platform) else {
                push(
                    Violation::new(
                        "unknown_platform",
                        format!("targets[{i}]"),
                        format!("no platform `{}` is registered", account.platform),
                    ),
                    Some(&account.platform),
                );
                continue;
            };
            let content = post.content_for(target);
            // The platform says whether this post needs a host (TikTok photos do, its uploaded
            // videos do not; media already at a URL never do).
            if self.inner.media_host.is_none() && platform.needs_media_host(content, &target.options) {
                push(
                    Violation::new(
                        "media_host_required",
                        format!("targets[{i}]"),
                        "this platform fetches media by URL: configure a MediaHost or give public URLs",
                    ),
                    Some(&account.platform),
                );
            }
            for v in platform.validate(content, &target.options) {
                push(v, Some(&account.platform));
            }
            let mut record = TargetRecord::new_unchecked(post, target, account.platform.clone(), due);
            record.id = target_id;
            records.push(record);
        }
        Ok((records, violations))
    }

    /// Validates and stores a post for publishing at its `publish_at` (or now); workers publish
    /// it. Submitting a post with the same idempotency key again adds nothing. With a media
    /// store, local media are copied into it first and the stored post refers to them by hash.
    pub async fn schedule(&self, post: &Post) -> Result<PostId> {
        let (mut records, violations) = self.validate_inner(post).await?;
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let copied = self.store_media(&mut records).await?;
        self.inner.scheduler.enqueue(&records).await?;
        self.confirm_media(&copied).await?;
        Ok(post.id)
    }

    /// Validates, stores and publishes a post now, in this process, and returns its targets as
    /// they stand afterwards (published, processing, retrying, failed…). The post is stored
    /// first, so if this process dies a worker finishes the job.
    pub async fn publish_now(&self, post: &Post) -> Result<Vec<TargetRecord>> {
        let mut post = post.clone();
        post.publish_at = None;
        let (mut records, violations) = self.validate_inner(&post).await?;
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let copied = self.store_media(&mut records).await?;
        self.inner.scheduler.enqueue(&records).await?;
        self.confirm_media(&copied).await?;
        let ids: Vec<TargetId> = records.iter().map(|r| r.id).collect();
        let mut req = ClaimRequest::new(
            WorkerId::new(format!("publish-now-{}", uuid::Uuid::new_v4())),
            ids.len(),
            self.inner.config.lease,
        );
        req.only = Some(ids);
        let claims = self.inner.scheduler.claim(&req).await?;
        let mut set = JoinSet::new();
        for c in claims {
            let engine = self.clone();
            set.spawn(async move { Box::pin(engine.process(c)).await });
        }
        while set.join_next().await.is_some() {}
        self.status(post.id).await
    }

    /// The targets of a post, as they stand.
    pub async fn status(&self, post: PostId) -> Result<Vec<TargetRecord>> {
        self.inner.scheduler.list(&TargetFilter::post(post)).await
    }

    /// Cancels every target of a post that has not ended. Scheduled and blocked targets are
    /// cancelled at once; those the platform may be publishing already (in flight, processing,
    /// unknown) are marked and end `Cancelled` if nothing lands, or `Published` — with their
    /// remote id — if the platform published them before the cancel could stop it (see
    /// [`TargetRecord::published_despite_cancel`]). Nothing is ever reported cancelled while
    /// it may be live.
    pub async fn cancel(&self, post: PostId) -> Result<CancelReport> {
        let records = self.status(post).await?;
        self.cancel_records(records).await
    }

    pub(crate) async fn cancel_records(&self, records: Vec<TargetRecord>) -> Result<CancelReport> {
        let mut report = CancelReport::default();
        for t in records {
            if !t.state.is_final() {
                match self.inner.scheduler.cancel(t.id).await {
                    Ok(r) if r.state == TargetState::Cancelled => report.cancelled += 1,
                    Ok(_) => report.requested += 1,
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(report)
    }

    /// Moves every scheduled (or failed, blocked, cancelled) target of a post to `at`.
    pub async fn reschedule(&self, post: PostId, at: DateTime<Utc>) -> Result<usize> {
        let records = self.status(post).await?;
        self.reschedule_records(records, at).await
    }

    pub(crate) async fn reschedule_records(&self, records: Vec<TargetRecord>, at: DateTime<Utc>) -> Result<usize> {
        let mut n = 0;
        for t in records {
            if matches!(
                t.state,
                TargetState::Scheduled
                    | TargetState::Failed { .. }
                    | TargetState::Blocked { .. }
                    | TargetState::Cancelled
            ) {
                match self.inner.scheduler.reschedule(t.id, at).await {
                    Ok(_) => n += 1,
                    // Claimed by a worker between the listing and now: it is being published.
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }

    /// A worker that publishes due targets until told to stop.
    pub fn worker(&self) -> Worker {
        Worker { engine: self.clone(), id: WorkerId::new(format!("worker-{}", uuid::Uuid::now_v7())) }
    }

    // ---- processing one claimed target ----------------------------------------------------

    fn semaphore<K: std::hash::Hash + Eq + Clone>(
        map: &Mutex<HashMap<K, Arc<Semaphore>>>,
        key: &K,
        n: usize,
    ) -> Arc<Semaphore> {
        map.lock().unwrap().entry(key.clone()).or_insert_with(|| Arc::new(Semaphore::new(n.max(1)))).clone()
    }

    fn backoff(&self, attempts: u32) -> Duration {
        use rand::Rng;
        let c = &self.inner.config;
        let exp = c.retry_base.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
        let d = exp.min(c.retry_max);
        // Full jitter in the upper half: spreads a burst without shortening waits much.
        let ms = d.as_millis() as u64;
        Duration::from_millis(ms / 2 + rand::rng().random_range(0..=ms / 2))
    }

    fn at(d: Duration) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
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
        let cfg = &self.inner.config;
        let platform_sem = Self::semaphore(&self.inner.platform_limits, &record.platform, cfg.per_platform_concurrency);
        let account_sem = Self::semaphore(&self.inner.account_limits, &record.account_id, cfg.per_account_concurrency);
        let _p = platform_sem.acquire_owned().await.ok()?;
        let _a = account_sem.acquire_owned().await.ok()?;

        let mut account = match self.inner.tokens.fresh_account(record.account_id).await {
            Ok(a) => a,
            Err(e) => return self.on_error(record, kind, e),
        };

        if kind != ClaimKind::Reconcile
            && let Some(until) = self.budget_wait(platform.as_ref(), &account, kind).await
        {
            tracing::debug!(target: "konektly::worker", target = %record.id, %until, "budget spent; deferred");
            return Some(match kind {
                ClaimKind::Poll => Completion::Processing { poll_at: until },
                _ => Completion::Retry { at: until, error: None, attempts: record.attempts },
            });
        }

        let saver = LeaseSaver(keeper.clone());
        let sink = BudgetSink::default();
        let progress = EventProgress(self.inner.events.clone());
        let started = record.attempt_started_at.unwrap_or_else(Utc::now);
        let mut checkpoint = record.checkpoint.clone();
        let mut kind_now = kind;
        let mut refreshed = false;
        // Stored media are read through this process's media store.
        let content = crate::media_store::attach(self.inner.media_store.as_ref(), &record.content);
        let result = loop {
            let mut ctx = PublishContext::new(
                record.id,
                &account,
                &content,
                &record.options,
                started,
                checkpoint.clone(),
                &saver,
                &sink,
                self.inner.media_host.as_deref(),
            )
            .with_progress(&progress);
            let r = match kind_now {
                ClaimKind::Publish => platform.publish(&mut ctx).await,
                ClaimKind::Poll => platform.poll(&mut ctx).await,
                ClaimKind::Reconcile => match platform.reconcile(&mut ctx).await {
                    Ok(Reconciliation::Published(remote)) => Ok(PublishOutcome::Published(remote)),
                    Ok(Reconciliation::Processing { poll_after }) => {
                        Ok(PublishOutcome::Processing { poll_after, detail: None })
                    }
                    Ok(Reconciliation::Unknowable { reason }) => {
                        self.flush_reports(&sink, &platform.id(), account.id).await;
                        return Some(Completion::Failed(FailureRecord {
                            kind: crate::error::ErrorKind::OutcomeUnknown,
                            code: Some("outcome_unknowable".into()),
                            message: format!(
                                "whether this post was published on {} cannot be established: {reason}; check the \
                                 account before publishing it again",
                                record.platform
                            ),
                            violations: Vec::new(),
                        }));
                    }
                    Ok(Reconciliation::NotFound) if record.cancel_requested_at.is_some() => {
                        // Nothing landed and a cancel waits: stop here (recorded as cancelled).
                        return Some(Completion::Retry { at: Utc::now(), error: None, attempts: record.attempts });
                    }
                    Ok(Reconciliation::NotFound) => {
                        // Nothing landed: publishing again is safe, from the saved checkpoint.
                        checkpoint = ctx.checkpoint().clone();
                        kind_now = ClaimKind::Publish;
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            checkpoint = ctx.checkpoint().clone();
            drop(ctx);
            match r {
                Err(Error::AccessTokenRejected { .. }) if !refreshed => {
                    refreshed = true;
                    match self.inner.tokens.force_refresh(&account).await {
                        Ok(a) => {
                            account = a;
                            continue;
                        }
                        Err(e) => break Err(e),
                    }
                }
                Err(Error::AccessTokenRejected { message, source }) => {
                    break Err(Error::ReauthRequired {
                        reason: format!("the platform refused a freshly refreshed token: {message}"),
                        source,
                    });
                }
                other => break other,
            }
        };
        // Whatever the platform, a dead grant marks the account and raises `ReauthRequired`
        // once, so the application can ask its user to reconnect.
        if let Err(Error::ReauthRequired { reason, .. }) = &result
            && let Err(e) = self.inner.tokens.mark_reauth(account.id, reason).await
        {
            tracing::warn!(target: "konektly::worker", error = %e, "could not mark the account");
        }
        // While a create's answer is outstanding (sent, and no checkpoint saved since), a
        // transient failure does not say that nothing landed: reconcile before sending again.
        let result = match result {
            Err(Error::Transient { message, source, .. }) if keeper.create_outstanding() => {
                Err(Error::UnknownOutcome {
                    message: format!("{message} (after a create was sent: it may have landed)"),
                    source,
                })
            }
            other => other,
        };
        self.flush_reports(&sink, &platform.id(), account.id).await;
        match result {
            Ok(PublishOutcome::Published(remote)) => Some(Completion::Published(remote)),
            Ok(PublishOutcome::Processing { poll_after, detail }) => {
                Some(self.processing_or_end(record, Self::at(poll_after), || FailureRecord {
                    kind: crate::error::ErrorKind::Transient,
                    code: None,
                    message: detail.unwrap_or_else(|| "the platform was still processing the post".into()),
                    violations: Vec::new(),
                }))
            }
            Err(e) => self.on_error(record, kind_now, e),
        }
    }

    fn on_error(&self, record: &TargetRecord, kind: ClaimKind, e: Error) -> Option<Completion> {
        let cfg = &self.inner.config;
        let failure = FailureRecord::from(&e);
        tracing::info!(target: "konektly::worker", target = %record.id, platform = %record.platform, error = %e, "attempt ended with an error");
        Some(match e {
            Error::LeaseLost(_) => return None,
            Error::ReauthRequired { reason, .. } | Error::AccessTokenRejected { message: reason, .. } => {
                Completion::Blocked { reason }
            }
            Error::RateLimited { retry_at, .. } => {
                let at = retry_at.unwrap_or_else(|| Self::at(self.backoff(record.attempts + 1)));
                match kind {
                    ClaimKind::Poll => self.processing_or_end(record, at, || failure),
                    ClaimKind::Reconcile => self.unknown_or_end(record, record.attempts, at, failure),
                    ClaimKind::Publish => Completion::Retry { at, error: Some(failure), attempts: record.attempts },
                }
            }
            Error::Transient { .. } | Error::Storage { .. } => {
                let retry_after = match &e {
                    Error::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let attempts = record.attempts + 1;
                let at = Self::at(retry_after.unwrap_or_else(|| self.backoff(attempts)));
                match kind {
                    ClaimKind::Poll => self.processing_or_end(record, at, || failure),
                    // A failed lookup leaves the outcome unknown: it counts, and ends.
                    ClaimKind::Reconcile => self.unknown_or_end(record, attempts, at, failure),
                    ClaimKind::Publish if attempts >= cfg.max_attempts => Completion::Failed(failure),
                    ClaimKind::Publish => Completion::Retry { at, error: Some(failure), attempts },
                }
            }
            Error::UnknownOutcome { .. } => {
                self.unknown_or_end(record, record.attempts + 1, Self::at(cfg.reconcile_delay), failure)
            }
            _ => Completion::Failed(failure),
        })
    }

    /// An unknown outcome to reconcile at `at`, unless the target has used up its attempts or
    /// its deadline: then it ends as `outcome_unknown`.
    fn unknown_or_end(
        &self,
        record: &TargetRecord,
        attempts: u32,
        at: DateTime<Utc>,
        failure: FailureRecord,
    ) -> Completion {
        let cfg = &self.inner.config;
        if attempts >= cfg.max_attempts || self.past_outcome_deadline(record) {
            return Completion::Failed(outcome_unknown(record, attempts, &failure));
        }
        Completion::Unknown { at, error: Some(failure), attempts }
    }

    /// Poll again at `at`, unless the target's deadline has passed.
    /// `last` is built only when the target ends (this is the path of every processing answer).
    fn processing_or_end(
        &self,
        record: &TargetRecord,
        at: DateTime<Utc>,
        last: impl FnOnce() -> FailureRecord,
    ) -> Completion {
        if self.past_outcome_deadline(record) {
            return Completion::Failed(outcome_unknown(record, record.attempts, &last()));
        }
        Completion::Processing { poll_at: at }
    }

    fn past_outcome_deadline(&self, record: &TargetRecord) -> bool {
        let started = record.attempt_started_at.unwrap_or(record.created_at);
        let limit = chrono::Duration::from_std(self.inner.config.outcome_deadline).unwrap_or(chrono::Duration::MAX);
        started.checked_add_signed(limit).is_some_and(|end| Utc::now() >= end)
    }

    async fn budget_wait(&self, platform: &dyn Platform, account: &Account, kind: ClaimKind) -> Option<DateTime<Utc>> {
        let sched = &self.inner.scheduler;
        let pid = platform.id();
        let now = Utc::now();
        for scope in [BudgetScope::Account, BudgetScope::App] {
            let key = observed_key(&pid, scope, account.id);
            if let Ok(Some(t)) = sched.acquire_budget(&key, u32::MAX, Duration::from_secs(1), 0, now).await {
                return Some(t);
            }
        }
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

    async fn flush_reports(&self, sink: &BudgetSink, platform: &PlatformId, account: AccountId) {
        let reports = std::mem::take(&mut *sink.reports.lock().unwrap());
        for r in reports {
            let key = observed_key(platform, r.scope, account);
            if let Err(e) = self.inner.scheduler.observe_budget(&key, r.remaining, r.reset_at).await {
                tracing::warn!(target: "konektly::worker", error = %e, "could not record a rate-limit report");
            }
        }
    }
}

/// Longest wait of a busy worker for half a batch of free slots before it claims what it has
/// (an idle worker claims at once).
const CLAIM_GATHER: Duration = Duration::from_millis(20);

/// The failure of a target whose outcome could not be established within its attempts or its
/// deadline: the operator must look at the account.
fn outcome_unknown(record: &TargetRecord, attempts: u32, last: &FailureRecord) -> FailureRecord {
    FailureRecord {
        kind: crate::error::ErrorKind::OutcomeUnknown,
        code: last.code.clone(),
        message: format!(
            "whether this post was published on {} could not be established ({attempts} attempts; last: {}); \
             check the account before publishing it again",
            record.platform, last.message
        ),
        violations: Vec::new(),
    }
}

/// The lease of one target being processed, shared by its heartbeats, its checkpoint writes
/// and the attempt.
///
/// It keeps a local deadline (monotonic clock): the last moment this worker may send anything
/// for the target. Each renewal counts from the moment it was sent, before the store stamped
/// it, so the deadline comes before the stored expiry. While a create's answer is outstanding
/// the stored expiry is renewed a further `create_call_limit` beyond the local deadline: a
/// create sent just before the deadline has that long to be done at the platform before any
/// other worker may claim the target and reconcile it.
struct LeaseKeeper {
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
    fn new(writes: Arc<GroupCommit<LeaseWrite, Lease>>, lease: Lease, cfg: &EngineConfig) -> Self {
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

    fn lease(&self) -> Lease {
        self.kept.lock().unwrap().lease.clone()
    }

    /// One lease write, sent to the store with the concurrent writes of other targets.
    async fn write(&self, lease: Lease, checkpoint: Option<Checkpoint>, extend: Option<Duration>) -> Result<Lease> {
        self.writes.submit(LeaseWrite { lease, checkpoint, extend }).await
    }

    fn deadline(&self) -> tokio::time::Instant {
        self.kept.lock().unwrap().deadline
    }

    fn create_outstanding(&self) -> bool {
        self.create_outstanding.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How far to extend the stored lease for a local extension of `local`.
    fn stored_extension(&self, local: Duration, create: bool) -> Duration {
        if create { local + self.create_call_limit } else { local }
    }

    /// Extends the lease by the configured lease (and, while a create is outstanding, keeps the
    /// stored expiry `create_call_limit` beyond it). Gives up at the local deadline: a store
    /// that does not answer cannot renew in time.
    async fn heartbeat(&self) -> Result<()> {
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

    /// Saves the checkpoint that precedes a create call and renews the lease in the same write,
    /// so that the call and the platform's work on it end before the lease does; refuses
    /// (`LeaseLost`) when the renewal came back too late for that.
    async fn save_before_create(&self, checkpoint: &Checkpoint) -> Result<()> {
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
struct Fenced<F> {
    inner: std::pin::Pin<Box<F>>,
    keeper: Arc<LeaseKeeper>,
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

struct LeaseSaver(Arc<LeaseKeeper>);

#[async_trait]
impl CheckpointSaver for LeaseSaver {
    async fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        let keeper = &self.0;
        if !keeper.create_outstanding() {
            return keeper.write(keeper.lease(), Some(checkpoint.clone()), None).await.map(drop);
        }
        // The adapter saves what a create answered (its id) before anything else: from here on
        // no create of this attempt is waiting for its answer. In the same write the lease's
        // create extension (minutes) is given back, so that a worker that dies later
        // (mid-upload, say) holds the target for one lease, not for the create's allowance too.
        // (The flag is cleared first, so that a heartbeat racing this write does not extend the
        // lease again; it is set back if the write fails.)
        let lease_for = keeper.lease_for;
        keeper.create_outstanding.store(false, std::sync::atomic::Ordering::Relaxed);
        let saved =
            keeper.renew(lease_for, |lease| keeper.write(lease, Some(checkpoint.clone()), Some(lease_for))).await;
        if saved.is_err() {
            keeper.create_outstanding.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        saved.map(|_| ())
    }

    async fn save_before_create(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.0.save_before_create(checkpoint).await
    }
}

struct EventProgress(broadcast::Sender<Event>);

impl crate::platform::ProgressSink for EventProgress {
    fn progress(&self, target: TargetId, sent: u64, total: u64) {
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(Event::UploadProgress { target, sent, total });
        }
    }
}

#[derive(Default)]
struct BudgetSink {
    reports: Mutex<Vec<RateLimitReport>>,
}

impl RateLimitSink for BudgetSink {
    fn report(&self, report: RateLimitReport) {
        self.reports.lock().unwrap().push(report);
    }
}

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
        let engine = self.engine;
        let cfg = engine.inner.config.clone();
        let sched = engine.inner.scheduler.clone();
        let slots = Arc::new(Semaphore::new(cfg.worker_concurrency.max(1)));
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut report = WorkerReport::default();
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        // Claim in batches: while work is running and fewer than half a batch of slots is free,
        // wait (at most CLAIM_GATHER) for more to free up rather than claim one target at a time.
        let refill = (cfg.claim_batch.min(cfg.worker_concurrency) / 2).max(1);
        let mut gather_until: Option<tokio::time::Instant> = None;
        loop {
            while tasks.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tasks.join_next() => continue,
                }
            }
            if free < refill && !tasks.is_empty() {
                let until = *gather_until.get_or_insert_with(|| tokio::time::Instant::now() + CLAIM_GATHER);
                if tokio::time::Instant::now() < until {
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tasks.join_next() => {}
                        _ = tokio::time::sleep_until(until) => {}
                    }
                    continue;
                }
            }
            gather_until = None;
            let mut req = ClaimRequest::new(self.id.clone(), free.min(cfg.claim_batch), cfg.lease);
            req.now = Utc::now();
            let claims = match sched.claim(&req).await {
                Ok(c) => {
                    failures = 0;
                    c
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(target: "konektly::worker", error = %e, "claim failed");
                    let wait = cfg.idle_poll.saturating_mul(failures.min(10));
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            if claims.is_empty() && !tasks.is_empty() {
                // Busy, and the queue is empty or held by other workers: wait for a slot or a
                // notification rather than asking for the next due time on every turn.
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = sched.wait_for_work(cfg.idle_poll) => {}
                    Some(_) = tasks.join_next() => {}
                }
                continue;
            }
            if claims.is_empty() {
                let wait = match sched.next_due_at().await {
                    Ok(Some(t)) => (t - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(cfg.idle_poll),
                    _ => cfg.idle_poll,
                };
                if wait.is_zero() {
                    tokio::task::yield_now().await;
                    // Due now but not claimable (held by a live lease elsewhere): avoid spinning.
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                    }
                    continue;
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = sched.wait_for_work(wait) => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
                continue;
            }
            for c in claims {
                report.claimed += 1;
                let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                let engine = engine.clone();
                tasks.spawn(async move {
                    Box::pin(engine.process(c)).await;
                    drop(permit);
                });
            }
        }
        let drained =
            tokio::time::timeout(cfg.shutdown_grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            report.abandoned = tasks.len() as u64;
            tasks.abort_all();
        }
        Ok(report)
    }
}
