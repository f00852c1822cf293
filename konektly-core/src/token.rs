//! Token freshness: the engine's job, not the adapters'.
//!
//! Before a call, [`TokenManager::fresh_account`] refreshes a token that expires within a window
//! (with jitter, so a fleet does not refresh at one instant). One refresh per account at a time:
//! an in-process lock, plus a refresh claim written to the store with compare-and-swap, so that
//! across processes only one calls the token endpoint and the others wait for and use its result.
//! A rotated refresh token is stored before the new access token is used; an answer without a
//! refresh token never erases the stored one; a dead grant marks the account `ReauthRequired`
//! and raises an event; a network failure does not.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::events::Event;
use crate::id::{AccountId, PlatformId};
use crate::model::{Account, AccountStatus};
use crate::platform::Platform;
use crate::store::TokenStore;

/// The metadata key of a refresh claim (when the claiming process gives up on it).
pub const REFRESH_CLAIM_KEY: &str = "konektly:refresh_claim_until";

/// The metadata key (seconds, a number) by which an adapter asks that an account's token be
/// refreshed that long before it expires, when that is longer than the engine's window: a
/// 60-day Instagram token is refreshed days ahead, not minutes.
pub const REFRESH_AHEAD_KEY: &str = "konektly:refresh_ahead_secs";

/// Account metadata: the refresh-token expiry (Unix seconds) that [`Event::TokenExpiringSoon`]
/// was raised for, so that it is raised once per expiry, not once per process.
pub const EXPIRY_WARNED_KEY: &str = "konektly:expiry_warned_for";

fn refresh_ahead(account: &Account) -> chrono::Duration {
    account
        .metadata
        .get(REFRESH_AHEAD_KEY)
        .and_then(|v| v.as_i64())
        .filter(|s| *s > 0)
        .map(chrono::Duration::seconds)
        .unwrap_or(chrono::Duration::zero())
}

/// How long a refresh claim lasts by default: longer than the HTTP layer's default timeout
/// (60 s) plus [`REFRESH_CLAIM_MARGIN`], so that a refresh call always ends before its claim.
pub const DEFAULT_REFRESH_CLAIM: Duration = Duration::from_secs(90);

/// The part of a refresh claim kept free at its end: the refresh call is dropped this long
/// before the claim runs out (the claim's own write, clock skew between processes).
pub const REFRESH_CLAIM_MARGIN: Duration = Duration::from_secs(15);

/// Refreshes tokens before they expire, once per account at a time across processes.
pub struct TokenManager {
    store: Arc<dyn TokenStore>,
    platforms: Arc<HashMap<PlatformId, Arc<dyn Platform>>>,
    window: Duration,
    jitter: Duration,
    claim_for: Duration,
    locks: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>>,
    warned: Mutex<HashSet<(AccountId, i64)>>,
    events: broadcast::Sender<Event>,
    cache_ttl: Duration,
    cache: Mutex<HashMap<AccountId, (std::time::Instant, Account)>>,
}

/// Forgets an account's cached copy when a refresh or a status change ends, however it ends.
struct ForgetOnDrop<'a>(&'a TokenManager, AccountId);

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("window", &self.window)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

fn claim_until(account: &Account) -> Option<DateTime<Utc>> {
    account
        .metadata
        .get(REFRESH_CLAIM_KEY)
        .and_then(|v| v.as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl TokenManager {
    /// A manager refreshing tokens that expire within `window` (plus up to `jitter`).
    pub fn new(
        store: Arc<dyn TokenStore>,
        platforms: Arc<HashMap<PlatformId, Arc<dyn Platform>>>,
        window: Duration,
        jitter: Duration,
        events: broadcast::Sender<Event>,
    ) -> Self {
        Self {
            store,
            platforms,
            window,
            jitter,
            claim_for: DEFAULT_REFRESH_CLAIM,
            locks: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
            events,
            cache_ttl: Duration::ZERO,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Serves [`fresh_account`](Self::fresh_account) from a copy read at most `ttl` ago
    /// (default: none, every call reads the store). A worker publishing many targets of one
    /// account then reads it once per `ttl` instead of once per target. What this process
    /// changes (refresh, reauth, [`forget`](Self::forget)) is seen at once; a change made by
    /// another process is seen within `ttl` (a token it refreshed meanwhile is still accepted by
    /// the platforms until it expires, and a refused one is refreshed from the store).
    pub fn with_account_cache(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Sets how long a refresh claim lasts (default [`DEFAULT_REFRESH_CLAIM`]). The refresh call
    /// itself is dropped [`REFRESH_CLAIM_MARGIN`] (or a sixth of `claim`, if less) before the
    /// claim ends, whatever the HTTP timeout: another process can take the claim over only once
    /// this process's call is over, so a rotating refresh token is never used twice.
    pub fn with_refresh_claim(mut self, claim: Duration) -> Self {
        self.claim_for = claim;
        self
    }

    /// How long this process may spend in one refresh call under a claim written at `sent`.
    fn refresh_deadline(&self, sent: tokio::time::Instant) -> tokio::time::Instant {
        sent + self.claim_for.saturating_sub(REFRESH_CLAIM_MARGIN.min(self.claim_for / 6))
    }

    /// Drops the cached copy of an account (after this process changed it).
    pub fn forget(&self, id: AccountId) {
        if !self.cache_ttl.is_zero() {
            self.cache.lock().unwrap().remove(&id);
        }
    }

    fn cached(&self, id: AccountId) -> Option<Account> {
        if self.cache_ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap();
        cache.get(&id).filter(|(at, _)| at.elapsed() < self.cache_ttl).map(|(_, a)| a.clone())
    }

    /// The refresh window for `account`: no more than a quarter of its token's lifetime (from
    /// when the account was last written — a refresh writes it — to the token's expiry), but
    /// at least 30 s (clock skew, a slow call): a token that lives 2 minutes is refreshed 30 s
    /// before it ends, not on every attempt because it never lives longer than a 5-minute
    /// window.
    fn within_lifetime(window: chrono::Duration, account: &Account) -> chrono::Duration {
        const FLOOR: chrono::Duration = chrono::Duration::seconds(30);
        match account.tokens.expires_at {
            Some(exp) if exp > account.updated_at => window.min(((exp - account.updated_at) / 4).max(FLOOR)),
            _ => window,
        }
    }

    fn window_with_jitter(&self) -> chrono::Duration {
        let jitter_ms = self.jitter.as_millis() as u64;
        let extra = if jitter_ms == 0 { 0 } else { rand::rng().random_range(0..=jitter_ms) };
        chrono::Duration::from_std(self.window + Duration::from_millis(extra)).unwrap_or(chrono::Duration::MAX)
    }

    fn lock_for(&self, id: AccountId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap().entry(id).or_default().clone()
    }

    fn platform(&self, account: &Account) -> Result<&Arc<dyn Platform>> {
        self.platforms
            .get(&account.platform)
            .ok_or_else(|| Error::Config(format!("no platform `{}` is registered", account.platform)))
    }

    /// Reads the account from the store (and keeps the copy, when caching).
    async fn load(&self, id: AccountId) -> Result<Account> {
        let account = self.store.get_account(id).await?.ok_or_else(|| Error::NotFound(format!("account {id}")))?;
        if !self.cache_ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap();
            if cache.len() >= 10_000 {
                let ttl = self.cache_ttl;
                cache.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            cache.insert(id, (std::time::Instant::now(), account.clone()));
        }
        Ok(account)
    }

    fn check_status(account: &Account) -> Result<()> {
        match &account.status {
            AccountStatus::Active => Ok(()),
            AccountStatus::ReauthRequired { reason } => Err(Error::reauth(reason.clone())),
            AccountStatus::Disconnected => Err(Error::reauth("the account was disconnected")),
        }
    }

    /// The account with an access token that stays valid for at least the window, refreshing it
    /// if needed.
    pub async fn fresh_account(&self, id: AccountId) -> Result<Account> {
        let account = match self.cached(id) {
            Some(a) => a,
            None => self.load(id).await?,
        };
        Self::check_status(&account)?;
        let account = self.warn_if_refresh_expiring(account).await;
        let window = Self::within_lifetime(self.window_with_jitter(), &account).max(refresh_ahead(&account));
        if !account.tokens.expires_within(Utc::now(), window) {
            return Ok(account);
        }
        self.refresh_if(id, |a| a.tokens.expires_within(Utc::now(), window)).await
    }

    /// Refreshes after the platform refused `rejected`'s access token, unless another task has
    /// replaced that token already (then its result is used).
    pub async fn force_refresh(&self, rejected: &Account) -> Result<Account> {
        let old = rejected.tokens.access_token.clone();
        self.refresh_if(rejected.id, move |a| a.tokens.access_token == old).await
    }

    async fn refresh_if(&self, id: AccountId, needs: impl Fn(&Account) -> bool) -> Result<Account> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let _forget = ForgetOnDrop(self, id);
        let deadline = tokio::time::Instant::now() + self.claim_for * 2;
        loop {
            let account = self.load(id).await?;
            Self::check_status(&account)?;
            if !needs(&account) {
                return Ok(account);
            }
            let now = Utc::now();
            if let Some(until) = claim_until(&account)
                && until > now
            {
                // Another process is refreshing: wait for its result.
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::transient("another process holds the token refresh for too long"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let mut claimed = account.clone();
            let until = now + chrono::Duration::from_std(self.claim_for).unwrap_or(chrono::Duration::MAX);
            claimed.metadata.insert(REFRESH_CLAIM_KEY.into(), until.to_rfc3339().into());
            let sent = tokio::time::Instant::now();
            let claimed = match self.store.update_account(&claimed).await {
                Ok(a) => a,
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            };
            return self.refresh_claimed(claimed, self.refresh_deadline(sent)).await;
        }
    }

    async fn refresh_claimed(&self, claimed: Account, deadline: tokio::time::Instant) -> Result<Account> {
        let platform = self.platform(&claimed)?.clone();
        tracing::debug!(target: "konektly::token", account = %claimed.id, platform = %claimed.platform, "refreshing token");
        // The call ends before the claim does: dropped at the deadline, its outcome unknown.
        let refreshed = tokio::time::timeout_at(deadline, platform.refresh(&claimed)).await.unwrap_or_else(|_| {
            Err(Error::Transient {
                message: "the token refresh did not answer before its claim ran out".into(),
                retry_after: None,
                source: None,
            })
        });
        match refreshed {
            Ok(fresh) => {
                // Stored before it is used: a rotated refresh token must never be lost, so a
                // write that loses a race with another writer is applied again on top of it.
                let mut current = claimed;
                for _ in 0..8 {
                    let mut next = current.clone();
                    next.tokens = current.tokens.merged_with(fresh.clone());
                    next.metadata.remove(REFRESH_CLAIM_KEY);
                    match self.store.update_account(&next).await {
                        Err(Error::Conflict(_)) => current = self.load(current.id).await?,
                        other => return other,
                    }
                }
                Err(Error::Conflict(format!("account {} keeps changing", current.id)))
            }
            Err(Error::ReauthRequired { reason, source }) => {
                let mut next = claimed.clone();
                next.metadata.remove(REFRESH_CLAIM_KEY);
                next.status = AccountStatus::ReauthRequired { reason: reason.clone() };
                let event = Event::ReauthRequired { account: claimed.id, reason: reason.clone() };
                self.store.update_account_raising(&next, std::slice::from_ref(&event)).await?;
                tracing::warn!(target: "konektly::token", account = %claimed.id, %reason, "account needs reconnecting");
                let _ = self.events.send(event);
                Err(Error::ReauthRequired { reason, source })
            }
            Err(e) => {
                // A network failure is not a dead grant: release the claim, keep the account.
                let mut next = claimed.clone();
                next.metadata.remove(REFRESH_CLAIM_KEY);
                let _ = self.store.update_account(&next).await;
                let still_valid =
                    claimed.tokens.expires_at.is_none_or(|t| t > Utc::now() + chrono::Duration::seconds(30));
                if still_valid && e.is_retryable() {
                    tracing::warn!(target: "konektly::token", account = %claimed.id, error = %e, "refresh failed; the current token is still valid");
                    return self.load(claimed.id).await;
                }
                Err(match e {
                    Error::UnknownOutcome { message, source } => {
                        Error::Transient { message, retry_after: None, source }
                    }
                    other => other,
                })
            }
        }
    }

    /// Marks an account `ReauthRequired` (the platform refused its token twice) and raises the
    /// event.
    pub async fn mark_reauth(&self, id: AccountId, reason: &str) -> Result<()> {
        let _forget = ForgetOnDrop(self, id);
        for _ in 0..5 {
            let mut account = self.load(id).await?;
            if matches!(account.status, AccountStatus::ReauthRequired { .. }) {
                return Ok(());
            }
            account.status = AccountStatus::ReauthRequired { reason: reason.to_owned() };
            let event = Event::ReauthRequired { account: id, reason: reason.to_owned() };
            match self.store.update_account_raising(&account, std::slice::from_ref(&event)).await {
                Ok(_) => {
                    let _ = self.events.send(event);
                    return Ok(());
                }
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!("account {id} keeps changing")))
    }

    /// Raises [`Event::TokenExpiringSoon`] once per refresh token that ends within 7 days: the
    /// account records which expiry it warned of ([`EXPIRY_WARNED_KEY`]), so the event is written
    /// to the outbox once, whichever process notices first.
    async fn warn_if_refresh_expiring(&self, account: Account) -> Account {
        let soon = Utc::now() + chrono::Duration::days(7);
        let Some(ends) = account.tokens.refresh_expires_at.filter(|t| *t < soon) else { return account };
        let marker = serde_json::Value::from(ends.timestamp());
        if account.metadata.get(EXPIRY_WARNED_KEY) == Some(&marker)
            || !self.warned.lock().unwrap().insert((account.id, ends.timestamp()))
        {
            return account;
        }
        let mut next = account.clone();
        next.metadata.insert(EXPIRY_WARNED_KEY.to_owned(), marker);
        let event = Event::TokenExpiringSoon { account: account.id };
        match self.store.update_account_raising(&next, std::slice::from_ref(&event)).await {
            Ok(stored) => {
                self.forget(account.id);
                let _ = self.events.send(event);
                stored
            }
            // Another process changed the account meanwhile (and may have warned): next load tells.
            Err(e) => {
                self.warned.lock().unwrap().remove(&(account.id, ends.timestamp()));
                tracing::debug!(target: "konektly::token", account = %account.id, error = %e, "could not record the expiry warning");
                account
            }
        }
    }
}

#[cfg(test)]
mod refresh_ahead_tests {
    use super::*;
    use crate::memory::MemoryTokenStore;
    use crate::model::TokenSet;
    use crate::secret::AccessToken;

    fn account(expires_in: chrono::Duration, ahead: Option<i64>) -> Account {
        let now = Utc::now();
        let mut tokens = TokenSet::new(AccessToken::new("t"));
        tokens.expires_at = Some(now + expires_in);
        let mut metadata = serde_json::Map::new();
        if let Some(a) = ahead {
            metadata.insert(REFRESH_AHEAD_KEY.into(), a.into());
        }
        Account {
            id: AccountId::new(),
            owner: crate::OwnerId::new("o"),
            platform: PlatformId::new("p"),
            remote_id: format!("r-{}", uuid::Uuid::new_v4()),
            handle: None,
            display_name: None,
            avatar_url: None,
            tokens,
            status: AccountStatus::Active,
            parent: None,
            metadata,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// A manager with a 5-minute window, no jitter and no platform registered (reaching a
    /// refresh shows up as a `Config` error).
    fn manager(store: Arc<dyn TokenStore>) -> TokenManager {
        TokenManager::new(
            store,
            Arc::new(HashMap::new()),
            Duration::from_secs(300),
            Duration::ZERO,
            broadcast::channel(4).0,
        )
    }

    #[tokio::test]
    async fn an_account_asking_to_refresh_ahead_is_refreshed_within_that_time() {
        let store = Arc::new(MemoryTokenStore::new());
        // No platform is registered: reaching the refresh shows up as a `Config` error.
        let tm = manager(store.clone());
        let plain = account(chrono::Duration::days(3), None);
        let ahead = account(chrono::Duration::days(3), Some(7 * 86_400));
        store.insert_account(&plain).await.unwrap();
        store.insert_account(&ahead).await.unwrap();
        assert!(tm.fresh_account(plain.id).await.is_ok(), "3 days left is fresh for a 5-minute window");
        assert!(matches!(tm.fresh_account(ahead.id).await, Err(Error::Config(_))), "7 days ahead asks for a refresh");
    }

    #[tokio::test]
    async fn a_token_that_lives_less_than_the_window_is_not_refreshed_at_once() {
        let store = Arc::new(MemoryTokenStore::new());
        let tm = manager(store.clone());
        // Issued now, lives 2 minutes: a 5-minute window would refresh it on every attempt.
        let short = account(chrono::Duration::minutes(2), None);
        store.insert_account(&short).await.unwrap();
        assert!(tm.fresh_account(short.id).await.is_ok(), "fresh until its last 30 s");
        // Issued 100 s ago, 20 s left: refreshed.
        let mut old = account(chrono::Duration::seconds(20), None);
        old.updated_at = Utc::now() - chrono::Duration::seconds(100);
        store.insert_account(&old).await.unwrap();
        assert!(matches!(tm.fresh_account(old.id).await, Err(Error::Config(_))), "near its end: refreshed");
    }

    /// Counts the store's account reads.
    #[derive(Debug, Default)]
    struct CountingStore {
        inner: MemoryTokenStore,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl TokenStore for CountingStore {
        async fn insert_account_raising(&self, account: &Account, events: &[Event]) -> Result<()> {
            self.inner.insert_account_raising(account, events).await
        }
        async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.get_account(id).await
        }
        async fn find_account(
            &self,
            owner: &crate::OwnerId,
            platform: &PlatformId,
            remote_id: &str,
        ) -> Result<Option<Account>> {
            self.inner.find_account(owner, platform, remote_id).await
        }
        async fn update_account_raising(&self, account: &Account, events: &[Event]) -> Result<Account> {
            self.inner.update_account_raising(account, events).await
        }
        async fn list_accounts(&self, owner: &crate::OwnerId) -> Result<Vec<Account>> {
            self.inner.list_accounts(owner).await
        }
        async fn delete_account_raising(&self, id: AccountId, events: &[Event]) -> Result<bool> {
            self.inner.delete_account_raising(id, events).await
        }
        async fn put_pending(&self, pending: &crate::platform::PendingAuthorization) -> Result<()> {
            self.inner.put_pending(pending).await
        }
        async fn take_pending(&self, state: &str) -> Result<Option<crate::platform::PendingAuthorization>> {
            self.inner.take_pending(state).await
        }
    }

    #[tokio::test]
    async fn a_cached_account_is_read_once_per_ttl_and_forgotten_when_this_process_changes_it() {
        let store = Arc::new(CountingStore::default());
        let reads = || store.reads.load(std::sync::atomic::Ordering::SeqCst);
        let tm = manager(store.clone()).with_account_cache(Duration::from_secs(3600));
        let a = account(chrono::Duration::days(3), None);
        store.insert_account(&a).await.unwrap();
        for _ in 0..5 {
            assert_eq!(tm.fresh_account(a.id).await.unwrap().id, a.id);
        }
        assert_eq!(reads(), 1, "five uses, one read");
        tm.forget(a.id);
        tm.fresh_account(a.id).await.unwrap();
        assert_eq!(reads(), 2, "a forgotten account is read again");

        tm.mark_reauth(a.id, "refused twice").await.unwrap();
        assert!(
            matches!(tm.fresh_account(a.id).await, Err(Error::ReauthRequired { .. })),
            "a status this process set is seen at once"
        );

        // A token that nears its expiry is never served from the cache: the refresh path reads
        // the store (no platform is registered, so it ends in a `Config` error).
        let b = account(chrono::Duration::days(3), None);
        store.insert_account(&b).await.unwrap();
        let mut stored = tm.fresh_account(b.id).await.unwrap();
        stored.tokens.expires_at = Some(Utc::now() + chrono::Duration::seconds(10));
        store.update_account(&stored).await.unwrap();
        assert!(tm.fresh_account(b.id).await.is_ok(), "within the ttl the copy read before is used");
        tm.forget(b.id);
        assert!(matches!(tm.fresh_account(b.id).await, Err(Error::Config(_))), "an expiring copy goes to refresh");

        let uncached = manager(store.clone());
        let before = reads();
        let c = account(chrono::Duration::days(3), None);
        store.insert_account(&c).await.unwrap();
        uncached.fresh_account(c.id).await.unwrap();
        uncached.fresh_account(c.id).await.unwrap();
        assert_eq!(reads() - before, 2, "without a cache every use reads the store");
    }
}
