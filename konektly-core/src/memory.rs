//! In-memory `TokenStore` and `Scheduler`: for tests, examples and single-process tools. They
//! follow the same rules as the durable stores (compare-and-swap, leases, fencing).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::events::{Event, StoredEvent};
use crate::id::{AccountId, OwnerId, PlatformId, TargetId};
use crate::lifecycle::{StateName, after_unblock, apply_claim, apply_completion, cancels_at_once, claim_kind};
use crate::model::{Account, Checkpoint, Lease, TargetRecord, TargetState};
use crate::platform::PendingAuthorization;
use crate::ratelimit::{BudgetKey, BudgetState};
use crate::scheduler::{ClaimKind, ClaimRequest, Claimed, Completion, Scheduler, TargetFilter};
use crate::store::{EventLog, TokenStore};

/// An outbox in memory: an event's `seq` is given as it is appended (nothing commits late).
#[derive(Debug, Default)]
pub(crate) struct MemoryOutbox(Mutex<Vec<StoredEvent>>);

impl MemoryOutbox {
    fn push(&self, owner: &OwnerId, events: &[Event]) {
        let mut log = self.0.lock().unwrap();
        for event in events.iter().filter(|e| e.is_durable()) {
            let seq = log.len() as u64 + 1;
            log.push(StoredEvent {
                id: crate::id::EventId::new(),
                seq,
                owner: owner.clone(),
                at: Utc::now(),
                event: event.clone(),
            });
        }
    }

    fn after(&self, owner: Option<&OwnerId>, after: u64, limit: usize) -> Vec<StoredEvent> {
        let log = self.0.lock().unwrap();
        log.iter().filter(|e| e.seq > after && owner.is_none_or(|o| &e.owner == o)).take(limit).cloned().collect()
    }
}

/// Accounts and pending authorizations in memory, with the events their changes raise.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    accounts: Mutex<BTreeMap<AccountId, Account>>,
    pending: Mutex<HashMap<String, PendingAuthorization>>,
    outbox: MemoryOutbox,
}

#[async_trait]
impl EventLog for MemoryTokenStore {
    async fn append_events(&self, owner: &OwnerId, events: &[Event]) -> Result<()> {
        self.outbox.push(owner, events);
        Ok(())
    }
    async fn sequence_events(&self, _limit: usize) -> Result<usize> {
        Ok(0)
    }
    async fn events_after(&self, owner: Option<&OwnerId>, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        Ok(self.outbox.after(owner, after, limit))
    }
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn insert_account_raising(&self, account: &Account, events: &[Event]) -> Result<()> {
        let mut accounts = self.accounts.lock().unwrap();
        if accounts.contains_key(&account.id) {
            return Err(Error::Conflict(format!("account {} exists", account.id)));
        }
        if accounts
            .values()
            .any(|a| a.owner == account.owner && a.platform == account.platform && a.remote_id == account.remote_id)
        {
            return Err(Error::Conflict(format!(
                "{} account {} of this owner is connected already",
                account.platform, account.remote_id
            )));
        }
        accounts.insert(account.id, account.clone());
        self.outbox.push(&account.owner, events);
        Ok(())
    }

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
        Ok(self.accounts.lock().unwrap().get(&id).cloned())
    }

    async fn find_account(&self, owner: &OwnerId, platform: &PlatformId, remote_id: &str) -> Result<Option<Account>> {
        Ok(self
            .accounts
            .lock()
            .unwrap()
            .values()
            .find(|a| &a.owner == owner && &a.platform == platform && a.remote_id == remote_id)
            .cloned())
    }

    async fn update_account_raising(&self, account: &Account, events: &[Event]) -> Result<Account> {
        let mut accounts = self.accounts.lock().unwrap();
        let stored = accounts.get_mut(&account.id).ok_or_else(|| Error::NotFound(format!("account {}", account.id)))?;
        if stored.version != account.version {
            return Err(Error::Conflict(format!(
                "account {} is at version {}, not {}",
                account.id, stored.version, account.version
            )));
        }
        let mut next = account.clone();
        next.version += 1;
        next.updated_at = Utc::now();
        *stored = next.clone();
        self.outbox.push(&next.owner, events);
        Ok(next)
    }

    async fn list_accounts(&self, owner: &OwnerId) -> Result<Vec<Account>> {
        let mut v: Vec<Account> =
            self.accounts.lock().unwrap().values().filter(|a| &a.owner == owner).cloned().collect();
        v.sort_by_key(|a| (a.created_at, a.id));
        Ok(v)
    }

    async fn delete_account_raising(&self, id: AccountId, events: &[Event]) -> Result<bool> {
        let removed = self.accounts.lock().unwrap().remove(&id);
        if let Some(a) = &removed {
            self.outbox.push(&a.owner, events);
        }
        Ok(removed.is_some())
    }

    async fn put_pending(&self, pending: &PendingAuthorization) -> Result<()> {
        self.pending.lock().unwrap().insert(pending.state.clone(), pending.clone());
        Ok(())
    }

    async fn take_pending(&self, state: &str) -> Result<Option<PendingAuthorization>> {
        Ok(self.pending.lock().unwrap().remove(state))
    }
}

#[derive(Debug)]
struct Entry {
    record: TargetRecord,
    fencing: u64,
}

/// The publishing queue in memory.
#[derive(Debug, Default)]
pub struct MemoryScheduler {
    targets: Mutex<HashMap<TargetId, Entry>>,
    budgets: Mutex<HashMap<String, BudgetState>>,
    notify: Notify,
    outbox: MemoryOutbox,
}

#[async_trait]
impl EventLog for MemoryScheduler {
    async fn append_events(&self, owner: &OwnerId, events: &[Event]) -> Result<()> {
        self.outbox.push(owner, events);
        Ok(())
    }
    async fn sequence_events(&self, _limit: usize) -> Result<usize> {
        Ok(0)
    }
    async fn events_after(&self, owner: Option<&OwnerId>, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        Ok(self.outbox.after(owner, after, limit))
    }
}

impl MemoryScheduler {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }
}

fn check_lease(entry: &Entry, lease: &Lease) -> Result<()> {
    match &entry.record.lease {
        Some(l)
            if l.owner == lease.owner
                && l.fencing_token == lease.fencing_token
                && entry.fencing == lease.fencing_token =>
        {
            Ok(())
        }
        _ => Err(Error::LeaseLost(lease.target)),
    }
}

#[async_trait]
impl Scheduler for MemoryScheduler {
    async fn enqueue(&self, targets: &[TargetRecord]) -> Result<usize> {
        let mut map = self.targets.lock().unwrap();
        let mut n = 0;
        for t in targets {
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(t.id) {
                slot.insert(Entry { record: t.clone(), fencing: 0 });
                n += 1;
            }
        }
        drop(map);
        if n > 0 {
            self.notify.notify_waiters();
        }
        Ok(n)
    }

    async fn get(&self, id: TargetId) -> Result<Option<TargetRecord>> {
        Ok(self.targets.lock().unwrap().get(&id).map(|e| e.record.clone()))
    }

    async fn list(&self, filter: &TargetFilter) -> Result<Vec<TargetRecord>> {
        let map = self.targets.lock().unwrap();
        let mut v: Vec<TargetRecord> = map.values().map(|e| &e.record).filter(|r| filter.matches(r)).cloned().collect();
        v.sort_by_key(|r| (r.due_at, r.id));
        if let Some(limit) = filter.limit {
            v.truncate(limit);
        }
        Ok(v)
    }

    async fn cancel(&self, id: TargetId) -> Result<TargetRecord> {
        let mut map = self.targets.lock().unwrap();
        let e = map.get_mut(&id).ok_or_else(|| Error::NotFound(format!("target {id}")))?;
        if e.record.state.is_final() {
            return Err(Error::Conflict(format!("target {id} has ended ({})", e.record.state.name())));
        }
        let now = Utc::now();
        if cancels_at_once(&e.record.state) {
            e.record.state = TargetState::Cancelled;
            e.record.lease = None;
            e.fencing += 1;
        } else if e.record.cancel_requested_at.is_none() {
            e.record.cancel_requested_at = Some(now);
        }
        e.record.updated_at = now;
        Ok(e.record.clone())
    }

    async fn update_published(&self, id: TargetId, remote: &crate::model::RemotePost) -> Result<TargetRecord> {
        let mut map = self.targets.lock().unwrap();
        let e = map.get_mut(&id).ok_or_else(|| Error::NotFound(format!("target {id}")))?;
        if !matches!(e.record.state, TargetState::Published { .. }) {
            return Err(Error::Conflict(format!("target {id} is not published ({})", e.record.state.name())));
        }
        e.record.state = TargetState::Published { remote: remote.clone() };
        e.record.updated_at = Utc::now();
        Ok(e.record.clone())
    }

    async fn reschedule(&self, id: TargetId, at: DateTime<Utc>) -> Result<TargetRecord> {
        let mut map = self.targets.lock().unwrap();
        let e = map.get_mut(&id).ok_or_else(|| Error::NotFound(format!("target {id}")))?;
        if !StateName::of(&e.record.state).reschedulable() {
            let s = e.record.state.name();
            return Err(Error::Conflict(format!("target {id} cannot be rescheduled while {s}")));
        }
        e.record.state = TargetState::Scheduled;
        e.record.due_at = at;
        e.record.lease = None;
        // A new start: its own attempts, and no earlier cancel request.
        e.record.attempts = 0;
        e.record.cancel_requested_at = None;
        e.record.updated_at = Utc::now();
        let r = e.record.clone();
        drop(map);
        self.notify.notify_waiters();
        Ok(r)
    }

    async fn claim(&self, req: &ClaimRequest) -> Result<Vec<Claimed>> {
        let mut map = self.targets.lock().unwrap();
        let mut candidates: Vec<(DateTime<Utc>, TargetId, ClaimKind)> = map
            .values()
            .filter(|e| req.only.as_ref().is_none_or(|ids| ids.contains(&e.record.id)))
            .filter(|e| req.platforms.as_ref().is_none_or(|p| p.contains(&e.record.platform)))
            .filter_map(|e| claim_kind(&e.record, req.now).map(|k| (e.record.due_at, e.record.id, k)))
            .collect();
        // Only the oldest `limit` need ordering: select them, then sort those few.
        if candidates.len() > req.limit && req.limit > 0 {
            candidates.select_nth_unstable_by_key(req.limit - 1, |(due, id, _)| (*due, *id));
        }
        candidates.truncate(req.limit);
        candidates.sort_unstable_by_key(|(due, id, _)| (*due, *id));
        let expires_at = req.now + chrono::Duration::from_std(req.lease_for).unwrap_or(chrono::Duration::MAX);
        let mut out = Vec::with_capacity(candidates.len());
        for (_, id, kind) in candidates {
            let e = map.get_mut(&id).expect("candidate exists");
            e.fencing += 1;
            let lease = Lease { target: id, owner: req.worker.clone(), fencing_token: e.fencing, expires_at };
            apply_claim(&mut e.record, kind, req.now);
            e.record.lease = Some(lease.clone());
            out.push(Claimed { record: e.record.clone(), lease, kind });
        }
        Ok(out)
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease> {
        let mut map = self.targets.lock().unwrap();
        let e = map.get_mut(&lease.target).ok_or(Error::LeaseLost(lease.target))?;
        check_lease(e, lease)?;
        let mut l = lease.clone();
        l.expires_at = Utc::now() + chrono::Duration::from_std(extend).unwrap_or(chrono::Duration::MAX);
        e.record.lease = Some(l.clone());
        Ok(l)
    }

    async fn save_checkpoint(&self, lease: &Lease, checkpoint: &Checkpoint) -> Result<()> {
        let mut map = self.targets.lock().unwrap();
        let e = map.get_mut(&lease.target).ok_or(Error::LeaseLost(lease.target))?;
        check_lease(e, lease)?;
        e.record.checkpoint = checkpoint.clone();
        e.record.updated_at = Utc::now();
        Ok(())
    }

    async fn complete(&self, lease: &Lease, completion: &Completion) -> Result<TargetRecord> {
        let mut map = self.targets.lock().unwrap();
        let e = map.get_mut(&lease.target).ok_or(Error::LeaseLost(lease.target))?;
        check_lease(e, lease)?;
        let claimed_as = matches!(e.record.state, TargetState::Processing).then_some(ClaimKind::Poll);
        apply_completion(&mut e.record, completion, Utc::now());
        let r = e.record.clone();
        drop(map);
        let event = if matches!(r.state, TargetState::Cancelled) {
            Some(Event::Cancelled { target: r.id, post: r.post_id })
        } else {
            Event::for_completion(r.id, r.post_id, claimed_as, completion)
        };
        self.outbox.push(&r.owner, event.as_slice());
        if matches!(completion, Completion::Retry { .. } | Completion::Processing { .. } | Completion::Unknown { .. }) {
            self.notify.notify_waiters();
        }
        Ok(r)
    }

    async fn unblock_account(&self, account: AccountId, at: DateTime<Utc>) -> Result<usize> {
        let mut map = self.targets.lock().unwrap();
        let mut n = 0;
        for e in map.values_mut() {
            if e.record.account_id == account && matches!(e.record.state, TargetState::Blocked { .. }) {
                // Blocked midway (the checkpoint says it reached the platform): reconcile first.
                e.record.state = match after_unblock(!e.record.checkpoint.is_empty()) {
                    StateName::Unknown => TargetState::Unknown,
                    _ => TargetState::Scheduled,
                };
                e.record.due_at = at;
                e.record.updated_at = Utc::now();
                n += 1;
            }
        }
        drop(map);
        if n > 0 {
            self.notify.notify_waiters();
        }
        Ok(n)
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        let map = self.targets.lock().unwrap();
        Ok(map
            .values()
            .filter_map(|e| match (&e.record.state, &e.record.lease) {
                (_, Some(l)) if !e.record.state.is_final() => Some(l.expires_at),
                (TargetState::Scheduled | TargetState::Processing | TargetState::Unknown, None) => {
                    Some(e.record.due_at)
                }
                _ => None,
            })
            .min())
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
    }

    async fn delete(&self, filter: &TargetFilter) -> Result<usize> {
        let mut map = self.targets.lock().unwrap();
        let before = map.len();
        map.retain(|_, e| !filter.matches(&e.record));
        Ok(before - map.len())
    }

    async fn acquire_budget(
        &self,
        key: &BudgetKey,
        limit: u32,
        window: Duration,
        cost: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let mut budgets = self.budgets.lock().unwrap();
        if cost == 0 {
            // A check only: no need to create an entry.
            return Ok(budgets.get_mut(key.as_str()).and_then(|b| b.acquire(limit, window, 0, now)));
        }
        Ok(budgets.entry(key.as_str().to_owned()).or_default().acquire(limit, window, cost, now))
    }

    async fn observe_budget(&self, key: &BudgetKey, remaining: u32, reset_at: DateTime<Utc>) -> Result<()> {
        self.budgets.lock().unwrap().entry(key.as_str().to_owned()).or_default().observe(remaining, reset_at);
        Ok(())
    }
}
