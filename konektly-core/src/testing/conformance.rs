//! Conformance suites: public async functions that every `TokenStore`, `Scheduler` and
//! `Platform` implementation runs. They panic with a message naming the broken rule.
//!
//! They leave their records behind under fresh owners and platform names, so they may run
//! against a shared database beside other tests.

use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;
use url::Url;

use crate::error::Error;
use crate::id::{AccountId, OwnerId, PlatformId, WorkerId};
use crate::model::{
    Account, AccountStatus, Checkpoint, Content, FailureRecord, Post, PublishOutcome, RemotePost, Target,
    TargetOptions, TargetRecord, TargetState, TokenSet,
};
use crate::platform::{Capabilities, MemoryCheckpoints, PendingAuthorization, Platform, PublishContext};
use crate::scheduler::{ClaimKind, ClaimRequest, Completion, Scheduler, TargetFilter};
use crate::secret::{AccessToken, PkceVerifier, RefreshToken};
use crate::store::TokenStore;

fn sample_account(owner: &OwnerId, platform: &str, remote: &str) -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(AccessToken::new(format!("access-{}", uuid::Uuid::new_v4())));
    tokens.refresh_token = Some(RefreshToken::new(format!("refresh-{}", uuid::Uuid::new_v4())));
    tokens.expires_at = Some(now + chrono::Duration::hours(1));
    tokens.scopes = vec!["a".into(), "b".into()];
    Account {
        id: AccountId::new(),
        owner: owner.clone(),
        platform: PlatformId::new(platform),
        remote_id: remote.into(),
        handle: Some("@who".into()),
        display_name: Some("Who".into()),
        avatar_url: None,
        tokens,
        status: AccountStatus::Active,
        parent: None,
        metadata: Default::default(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// Runs every `TokenStore` rule against `store`.
pub async fn token_store_conformance(store: &dyn TokenStore) {
    let owner = OwnerId::new(format!("conformance-{}", uuid::Uuid::new_v4()));
    let other = OwnerId::new(format!("conformance-{}", uuid::Uuid::new_v4()));
    let a = sample_account(&owner, "x", "r1");

    // Round trip.
    store.insert_account(&a).await.expect("insert_account");
    let got = store.get_account(a.id).await.expect("get_account").expect("the inserted account");
    assert_eq!(got.id, a.id);
    assert_eq!(got.tokens, a.tokens, "tokens must round-trip exactly");
    assert_eq!(got.version, 1);
    assert_eq!(got.status, AccountStatus::Active);
    assert!(store.get_account(AccountId::new()).await.unwrap().is_none(), "an unknown id reads as None");

    // Duplicate insert.
    assert!(
        matches!(store.insert_account(&a).await, Err(Error::Conflict(_))),
        "inserting an existing id is a Conflict"
    );
    let mut twin = sample_account(&owner, "x", "r1");
    twin.id = AccountId::new();
    assert!(
        matches!(store.insert_account(&twin).await, Err(Error::Conflict(_))),
        "one account per owner, platform and remote id: a second is a Conflict"
    );
    assert!(store.get_account(twin.id).await.unwrap().is_none(), "the refused twin was not stored");
    let mut elsewhere = sample_account(&other, "x", "r1");
    elsewhere.id = AccountId::new();
    store.insert_account(&elsewhere).await.expect("the same login under another owner is another account");
    assert!(store.delete_account(elsewhere.id).await.unwrap());

    // Compare-and-swap.
    let mut next = got.clone();
    next.tokens.access_token = AccessToken::new("rotated");
    let stored = store.update_account(&next).await.expect("update with the current version");
    assert_eq!(stored.version, 2, "an update bumps the version");
    assert_eq!(store.get_account(a.id).await.unwrap().unwrap().tokens.access_token.expose(), "rotated");
    let stale = store.update_account(&next).await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "an update with a stale version is a Conflict, got {stale:?}");
    let mut ghost = a.clone();
    ghost.id = AccountId::new();
    assert!(
        matches!(store.update_account(&ghost).await, Err(Error::NotFound(_))),
        "updating a missing account is NotFound"
    );

    // Exactly one of many concurrent writers with the same version wins.
    let current = store.get_account(a.id).await.unwrap().unwrap();
    let writers = (0..16).map(|i| {
        let mut c = current.clone();
        c.tokens.access_token = AccessToken::new(format!("writer-{i}"));
        async move { store.update_account(&c).await }
    });
    let results = join_all(writers).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one concurrent compare-and-swap wins");
    assert!(results.iter().all(|r| r.is_ok() || matches!(r, Err(Error::Conflict(_)))));

    // Find and list.
    let found = store.find_account(&owner, &PlatformId::new("x"), "r1").await.unwrap().expect("find_account");
    assert_eq!(found.id, a.id);
    assert!(store.find_account(&other, &PlatformId::new("x"), "r1").await.unwrap().is_none(), "find is per owner");
    let b = sample_account(&owner, "tiktok", "r2");
    store.insert_account(&b).await.unwrap();
    store.insert_account(&sample_account(&other, "x", "r3")).await.unwrap();
    let listed: Vec<AccountId> = store.list_accounts(&owner).await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(listed.len(), 2, "list_accounts returns only the owner's accounts");
    assert!(listed.contains(&a.id) && listed.contains(&b.id));

    // Pending authorizations are taken once.
    let pending = PendingAuthorization {
        state: format!("state-{}", uuid::Uuid::new_v4()),
        platform: PlatformId::new("x"),
        owner: owner.clone(),
        redirect_uri: Url::parse("https://app.example/cb").unwrap(),
        pkce_verifier: Some(PkceVerifier::new("verifier-123")),
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        reconnect: None,
    };
    store.put_pending(&pending).await.unwrap();
    assert!(store.take_pending("no-such-state").await.unwrap().is_none());
    let taken = store.take_pending(&pending.state).await.unwrap().expect("the pending authorization");
    assert_eq!(taken, pending, "a pending authorization round-trips");
    assert!(store.take_pending(&pending.state).await.unwrap().is_none(), "a state is taken once");

    // Delete.
    assert!(store.delete_account(a.id).await.unwrap());
    assert!(store.get_account(a.id).await.unwrap().is_none());
    assert!(!store.delete_account(a.id).await.unwrap(), "deleting twice reports false");
}

fn record(platform: &PlatformId, owner: &OwnerId, due_in_secs: i64) -> TargetRecord {
    let account = AccountId::new();
    let post = Post::new(owner.clone(), Content::text("hello")).to(Target::new(account));
    TargetRecord::new(&post, &post.targets[0], platform.clone(), Utc::now() + chrono::Duration::seconds(due_in_secs))
}

fn claim_req(platform: &PlatformId, worker: &str, limit: usize, lease: Duration) -> ClaimRequest {
    let mut r = ClaimRequest::new(WorkerId::new(worker), limit, lease);
    r.platforms = Some(vec![platform.clone()]);
    r
}

fn failure(msg: &str) -> FailureRecord {
    FailureRecord::from(&Error::transient(msg))
}

/// Runs every `Scheduler` rule against `scheduler`.
pub async fn scheduler_conformance(scheduler: &dyn Scheduler) {
    let platform = PlatformId::new(format!("conf-{}", uuid::Uuid::new_v4()));
    let owner = OwnerId::new(format!("conformance-{}", uuid::Uuid::new_v4()));
    let lease_for = Duration::from_secs(60);
    let (due1, later, now) = claims_and_completions(scheduler, &platform, &owner, lease_for).await;
    cancels_and_blocks(scheduler, &platform, &owner, lease_for, &due1, &later, now).await;

    // Listing with filters.
    let by_post = scheduler.list(&TargetFilter::post(due1.post_id)).await.unwrap();
    assert_eq!(by_post.len(), 1);
    let mut f = TargetFilter { owner: Some(owner.clone()), ..TargetFilter::default() };
    assert_eq!(scheduler.list(&f).await.unwrap().len(), 4);
    f = f.in_states(&["published", "failed"]);
    assert_eq!(scheduler.list(&f).await.unwrap().len(), 2);
    f.limit = Some(1);
    assert_eq!(scheduler.list(&f).await.unwrap().len(), 1);
    assert!(scheduler.next_due_at().await.unwrap().is_some(), "a scheduled target makes next_due_at known");

    concurrent_claims(scheduler, &platform, &owner, lease_for).await;
    budgets(scheduler, &platform).await;

    // Delete.
    let removed =
        scheduler.delete(&TargetFilter { owner: Some(owner.clone()), ..TargetFilter::default() }).await.unwrap();
    assert_eq!(removed, 64);
    assert!(scheduler.get(due1.id).await.unwrap().is_none());
    assert!(
        scheduler.claim(&claim_req(&platform, "w6", 100, lease_for)).await.unwrap().is_empty(),
        "a deleted target is never claimed"
    );

    batch_completion(scheduler, &platform, lease_for).await;
    batch_lease_writes(scheduler, &platform, lease_for).await;
}

/// Enqueue, claims, heartbeats, checkpoints, completions and fencing; returns the first due
/// target, the later one and the time the completions were judged at.
async fn claims_and_completions(
    scheduler: &dyn Scheduler,
    platform: &PlatformId,
    owner: &OwnerId,
    lease_for: Duration,
) -> (TargetRecord, TargetRecord, chrono::DateTime<Utc>) {
    // Enqueue is idempotent.
    let due1 = record(platform, owner, -10);
    let due2 = record(platform, owner, -5);
    let later = record(platform, owner, 3600);
    let all = vec![due1.clone(), due2.clone(), later.clone()];
    assert_eq!(scheduler.enqueue(&all).await.unwrap(), 3);
    assert_eq!(scheduler.enqueue(&all).await.unwrap(), 0, "enqueueing the same targets again adds nothing");
    let got = scheduler.get(due1.id).await.unwrap().expect("get");
    assert_eq!(got.content, due1.content);
    assert_eq!(got.state, TargetState::Scheduled);

    // Claim due targets only, oldest first, exclusively.
    let claims = scheduler.claim(&claim_req(platform, "w1", 10, lease_for)).await.unwrap();
    let ids: Vec<_> = claims.iter().map(|c| c.record.id).collect();
    assert_eq!(ids, vec![due1.id, due2.id], "only due targets are claimed, oldest first");
    assert!(claims.iter().all(|c| c.kind == ClaimKind::Publish && c.record.state == TargetState::InFlight));
    assert!(claims.iter().all(|c| c.lease.owner.as_str() == "w1"));
    assert!(claims[0].record.attempt_started_at.is_some(), "a publish claim stamps the attempt start");
    assert!(
        scheduler.claim(&claim_req(platform, "w2", 10, lease_for)).await.unwrap().is_empty(),
        "a leased target is not claimed again"
    );
    let c1 = &claims[0];
    let c2 = &claims[1];

    // Heartbeat and checkpoint.
    let extended = scheduler.heartbeat(&c1.lease, Duration::from_secs(120)).await.unwrap();
    assert!(extended.expires_at > c1.lease.expires_at, "a heartbeat extends the lease");
    let cp = Checkpoint::from_json(serde_json::json!({"media_ids": ["1", "2"]}));
    scheduler.save_checkpoint(&extended, &cp).await.unwrap();
    assert_eq!(scheduler.get(c1.record.id).await.unwrap().unwrap().checkpoint, cp, "the checkpoint is stored");

    // Complete: published.
    let remote = RemotePost::new(platform.clone(), "remote-1", None);
    let done = scheduler.complete(&extended, &Completion::Published(remote.clone())).await.unwrap();
    assert_eq!(done.state, TargetState::Published { remote });
    assert!(done.lease.is_none(), "completing releases the lease");
    assert!(
        matches!(scheduler.complete(&extended, &Completion::Failed(failure("late"))).await, Err(Error::LeaseLost(_))),
        "a completed lease cannot write again"
    );

    // Fencing: a lease that expired and was taken over cannot write.
    let short = scheduler.heartbeat(&c2.lease, Duration::ZERO).await.unwrap();
    let taken = scheduler.claim(&claim_req(platform, "w2", 10, lease_for)).await.unwrap();
    assert_eq!(taken.len(), 1, "an expired lease is claimed by another worker");
    let t = &taken[0];
    assert_eq!(t.record.id, c2.record.id);
    assert_eq!(t.kind, ClaimKind::Reconcile, "a target whose worker died is reconciled, not published again");
    assert_eq!(t.record.state, TargetState::Unknown);
    assert!(t.lease.fencing_token > short.fencing_token, "every claim raises the fencing token");
    assert!(
        matches!(scheduler.save_checkpoint(&short, &cp).await, Err(Error::LeaseLost(_))),
        "stale checkpoint refused"
    );
    assert!(
        matches!(scheduler.heartbeat(&short, lease_for).await, Err(Error::LeaseLost(_))),
        "stale heartbeat refused"
    );
    assert!(
        matches!(scheduler.complete(&short, &Completion::Failed(failure("x"))).await, Err(Error::LeaseLost(_))),
        "stale completion refused"
    );

    // Unknown → retry later; Processing → poll.
    let now = Utc::now();
    let r = scheduler
        .complete(&t.lease, &Completion::Processing { poll_at: now - chrono::Duration::seconds(1) })
        .await
        .unwrap();
    assert_eq!(r.state, TargetState::Processing);
    let polls = scheduler.claim(&claim_req(platform, "w3", 10, lease_for)).await.unwrap();
    assert_eq!(polls.len(), 1);
    assert_eq!(polls[0].kind, ClaimKind::Poll, "a processing target is claimed for polling");
    let r = scheduler
        .complete(
            &polls[0].lease,
            &Completion::Unknown { at: now - chrono::Duration::seconds(1), error: Some(failure("lost")), attempts: 2 },
        )
        .await
        .unwrap();
    assert_eq!(r.state, TargetState::Unknown);
    assert!(r.last_error.is_some());
    assert_eq!(r.attempts, 2, "an unknown outcome stores its attempt count");
    let rec = scheduler.claim(&claim_req(platform, "w3", 10, lease_for)).await.unwrap();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].kind, ClaimKind::Reconcile);
    let r = scheduler
        .complete(
            &rec[0].lease,
            &Completion::Retry { at: now + chrono::Duration::hours(1), error: Some(failure("again")), attempts: 2 },
        )
        .await
        .unwrap();
    assert_eq!(r.state, TargetState::Scheduled);
    assert_eq!(r.attempts, 2);
    assert!(
        scheduler.claim(&claim_req(platform, "w3", 10, lease_for)).await.unwrap().is_empty(),
        "a retry waits for its time"
    );
    (due1, later, now)
}

/// Reschedule and cancel (at once, or recorded while the platform may be publishing), blocked
/// targets and their return.
async fn cancels_and_blocks(
    scheduler: &dyn Scheduler,
    platform: &PlatformId,
    owner: &OwnerId,
    lease_for: Duration,
    due1: &TargetRecord,
    later: &TargetRecord,
    now: chrono::DateTime<Utc>,
) {
    // Reschedule, cancel.
    let moved = scheduler.reschedule(later.id, now - chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!(moved.state, TargetState::Scheduled);
    let again = scheduler.claim(&claim_req(platform, "w4", 10, lease_for)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].record.id, later.id, "a rescheduled target is claimable at its new time");
    // A cancel while the platform may be publishing is recorded; the attempt's outcome decides.
    let requested = scheduler.cancel(later.id).await.unwrap();
    assert_eq!(requested.state, TargetState::InFlight, "an in-flight target is never reported cancelled");
    assert!(requested.cancel_requested_at.is_some(), "the request is recorded");
    assert!(
        scheduler.heartbeat(&again[0].lease, lease_for).await.is_ok(),
        "the worker keeps its lease: its create may be at the platform"
    );
    let r = scheduler
        .complete(
            &again[0].lease,
            &Completion::Retry { at: now - chrono::Duration::seconds(1), error: None, attempts: 1 },
        )
        .await
        .unwrap();
    assert_eq!(r.state, TargetState::Cancelled, "nothing landed: the requested cancel ends it");
    assert!(
        scheduler.claim(&claim_req(platform, "w4", 10, lease_for)).await.unwrap().is_empty(),
        "a cancelled target is never claimed again"
    );
    assert!(matches!(scheduler.cancel(later.id).await, Err(Error::Conflict(_))), "an ended target cannot be cancelled");

    // Too late: the platform published it. It stays published, with its remote id.
    let other = OwnerId::new(format!("{}-late", owner.as_str()));
    let late = record(platform, &other, -1);
    scheduler.enqueue(std::slice::from_ref(&late)).await.unwrap();
    let c = scheduler.claim(&claim_req(platform, "w4", 10, lease_for)).await.unwrap();
    assert_eq!(c.len(), 1);
    assert!(scheduler.cancel(late.id).await.unwrap().cancel_requested_at.is_some());
    let r = scheduler
        .complete(&c[0].lease, &Completion::Published(RemotePost::new(platform.clone(), "late-1", None)))
        .await
        .unwrap();
    assert!(r.published_despite_cancel(), "published before the cancel could stop it: {:?}", r.state);
    let got = scheduler.get(late.id).await.unwrap().unwrap();
    assert!(got.published_despite_cancel(), "stored as published, cancel requested");

    // A scheduled target cancels at once, and a worker holding a stale claim of it cannot write.
    let waiting = record(platform, &other, 3600);
    scheduler.enqueue(std::slice::from_ref(&waiting)).await.unwrap();
    let cancelled = scheduler.cancel(waiting.id).await.unwrap();
    assert_eq!(cancelled.state, TargetState::Cancelled);
    assert!(cancelled.cancel_requested_at.is_none());
    assert!(
        matches!(scheduler.cancel(due1.id).await, Err(Error::Conflict(_))),
        "a published target cannot be cancelled"
    );
    assert!(matches!(scheduler.cancel(crate::TargetId::new()).await, Err(Error::NotFound(_))));

    // Blocked targets come back when the account is reconnected.
    let blocked = record(platform, owner, -1);
    scheduler.enqueue(std::slice::from_ref(&blocked)).await.unwrap();
    let c = scheduler.claim(&claim_req(platform, "w5", 10, lease_for)).await.unwrap();
    assert_eq!(c.len(), 1);
    scheduler.complete(&c[0].lease, &Completion::Blocked { reason: "token revoked".into() }).await.unwrap();
    assert!(scheduler.claim(&claim_req(platform, "w5", 10, lease_for)).await.unwrap().is_empty(), "blocked waits");
    assert_eq!(
        scheduler.unblock_account(blocked.account_id, Utc::now() - chrono::Duration::seconds(1)).await.unwrap(),
        1
    );
    let c = scheduler.claim(&claim_req(platform, "w5", 10, lease_for)).await.unwrap();
    assert_eq!(c.len(), 1, "an unblocked target is claimable");
    assert_eq!(c[0].kind, ClaimKind::Publish, "blocked before anything was sent: published");
    scheduler.complete(&c[0].lease, &Completion::Failed(failure("rejected"))).await.unwrap();

    // Blocked midway (a checkpoint was saved): reconciled before anything is sent again.
    let midway = record(platform, &other, -1);
    scheduler.enqueue(std::slice::from_ref(&midway)).await.unwrap();
    let c = scheduler.claim(&claim_req(platform, "w5", 10, lease_for)).await.unwrap();
    assert_eq!(c.len(), 1);
    scheduler
        .save_checkpoint(&c[0].lease, &Checkpoint::from_json(serde_json::json!({"create_sent": true})))
        .await
        .unwrap();
    scheduler.complete(&c[0].lease, &Completion::Blocked { reason: "token revoked".into() }).await.unwrap();
    scheduler.unblock_account(midway.account_id, Utc::now() - chrono::Duration::seconds(1)).await.unwrap();
    let c = scheduler.claim(&claim_req(platform, "w5", 10, lease_for)).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].kind, ClaimKind::Reconcile, "blocked midway: reconciled");
    scheduler
        .complete(&c[0].lease, &Completion::Published(RemotePost::new(platform.clone(), "m", None)))
        .await
        .unwrap();

    // A reschedule is a new start: attempts from zero, no earlier cancel request.
    let again = scheduler.reschedule(later.id, now + chrono::Duration::hours(3)).await.unwrap();
    assert_eq!(again.state, TargetState::Scheduled);
    assert_eq!(again.attempts, 0);
    assert!(again.cancel_requested_at.is_none(), "the earlier cancel request is forgotten");
    assert_eq!(scheduler.cancel(later.id).await.unwrap().state, TargetState::Cancelled);
}

/// Concurrent claimers never share a target.
async fn concurrent_claims(scheduler: &dyn Scheduler, platform: &PlatformId, owner: &OwnerId, lease_for: Duration) {
    // Concurrent claimers never share a target.
    let many: Vec<TargetRecord> = (0..60).map(|_| record(platform, owner, -1)).collect();
    scheduler.enqueue(&many).await.unwrap();
    let claimers = (0..6).map(|i| {
        let req = claim_req(platform, &format!("c{i}"), 15, lease_for);
        async move { scheduler.claim(&req).await.unwrap() }
    });
    let mut claimed: Vec<_> = join_all(claimers).await.into_iter().flatten().map(|c| c.record.id).collect();
    let n = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), n, "no target is claimed twice");
    assert!(n >= 15, "concurrent claimers make progress");
}

/// Budgets: spends, observed resets, batches judged in order.
async fn budgets(scheduler: &dyn Scheduler, platform: &PlatformId) {
    // Budgets.
    use crate::ratelimit::{BudgetScope, budget_key, observed_key};
    let pid = PlatformId::new(platform.to_string());
    let key = budget_key(&pid, BudgetScope::Account, AccountId::new(), "video_init");
    let t0 = Utc::now();
    for i in 0..3 {
        assert_eq!(scheduler.acquire_budget(&key, 3, Duration::from_secs(60), 1, t0).await.unwrap(), None, "unit {i}");
    }
    let wait = scheduler.acquire_budget(&key, 3, Duration::from_secs(60), 1, t0).await.unwrap();
    assert!(wait.is_some_and(|t| t > t0), "a spent budget says when it returns");
    let okey = observed_key(&pid, BudgetScope::App, AccountId::new());
    let reset = t0 + chrono::Duration::seconds(30);
    scheduler.observe_budget(&okey, 0, reset).await.unwrap();
    assert_eq!(scheduler.acquire_budget(&okey, u32::MAX, Duration::from_secs(1), 0, t0).await.unwrap(), Some(reset));
    // A batch of spends is judged in order, two spends of one key seeing each other, and is
    // seen by single spends after it.
    let app_key = |name: &str| budget_key(&pid, BudgetScope::App, AccountId::new(), name);
    let (ka, kb) = (app_key("batch-a"), app_key("batch-b"));
    let spend = |key: &crate::ratelimit::BudgetKey, cost: u32| crate::BudgetSpend {
        key: key.clone(),
        limit: 3,
        window: Duration::from_secs(60),
        cost,
        now: t0,
    };
    let out = scheduler
        .acquire_budgets(&[spend(&ka, 1), spend(&ka, 1), spend(&kb, 3), spend(&ka, 1), spend(&ka, 1), spend(&kb, 1)])
        .await
        .expect("acquire_budgets");
    let granted: Vec<bool> = out.iter().map(|r| r.as_ref().expect("a spend is judged").is_none()).collect();
    assert_eq!(granted, [true, true, true, true, false, false], "in order, per key: {out:?}");
    assert!(
        scheduler.acquire_budget(&ka, 3, Duration::from_secs(60), 1, t0).await.unwrap().is_some(),
        "a batch's spends are stored"
    );
    assert!(scheduler.acquire_budgets(&[]).await.unwrap().is_empty());
}

/// Batch completion: every item is judged on its own lease.
async fn batch_completion(scheduler: &dyn Scheduler, platform: &PlatformId, lease_for: Duration) {
    // Batch completion: every item is judged on its own lease.
    let owner2 = OwnerId::new(format!("conformance-{}", uuid::Uuid::new_v4()));
    let batch: Vec<TargetRecord> = (0..3).map(|_| record(platform, &owner2, -1)).collect();
    scheduler.enqueue(&batch).await.unwrap();
    let c = scheduler.claim(&claim_req(platform, "w6", 10, lease_for)).await.unwrap();
    assert_eq!(c.len(), 3);
    let mut stale = c[2].lease.clone();
    stale.fencing_token += 7;
    let now = Utc::now();
    let remote = RemotePost::new(platform.clone(), "batch-1", None);
    let out = scheduler
        .complete_many(&[
            (c[0].lease.clone(), Completion::Published(remote.clone())),
            (
                c[1].lease.clone(),
                Completion::Retry { at: now - chrono::Duration::seconds(1), error: Some(failure("busy")), attempts: 1 },
            ),
            (stale, Completion::Failed(failure("stale"))),
        ])
        .await
        .expect("complete_many");
    assert_eq!(out.len(), 3, "one result per item");
    assert!(out[0].is_ok() && out[1].is_ok(), "current leases are recorded: {out:?}");
    assert!(matches!(out[2], Err(Error::LeaseLost(id)) if id == c[2].record.id), "a stale item is its own LeaseLost");
    let first = scheduler.get(c[0].record.id).await.unwrap().unwrap();
    assert_eq!(first.state, TargetState::Published { remote });
    assert!(first.lease.is_none(), "a batch completion releases the lease");
    let second = scheduler.get(c[1].record.id).await.unwrap().unwrap();
    assert_eq!((&second.state, second.attempts, &second.lease), (&TargetState::Scheduled, 1, &None));
    let third = scheduler.get(c[2].record.id).await.unwrap().unwrap();
    assert_eq!(
        (&third.state, &third.lease),
        (&TargetState::InFlight, &Some(c[2].lease.clone())),
        "a stale item wrote nothing"
    );
    let again = scheduler.claim(&claim_req(platform, "w7", 10, lease_for)).await.unwrap();
    let ids: Vec<_> = again.iter().map(|c| c.record.id).collect();
    assert_eq!(
        ids,
        vec![c[1].record.id],
        "the retried target is claimable again; the live lease still holds the third"
    );
    let out = scheduler
        .complete_many(&[
            (again[0].lease.clone(), Completion::Failed(failure("no"))),
            (c[2].lease.clone(), Completion::Blocked { reason: "revoked".into() }),
        ])
        .await
        .unwrap();
    assert!(out.iter().all(Result::is_ok), "both leases were current: {out:?}");
    assert!(scheduler.complete_many(&[]).await.unwrap().is_empty());
    let f = TargetFilter { owner: Some(owner2.clone()), ..TargetFilter::default() };
    assert_eq!(scheduler.delete(&f).await.unwrap(), 3);
}

/// Batched lease writes: heartbeat, checkpoint, both, and a stale lease in one call.
async fn batch_lease_writes(scheduler: &dyn Scheduler, platform: &PlatformId, lease_for: Duration) {
    // Batched lease writes: heartbeat, checkpoint, both, and a stale lease in one call.
    let owner3 = OwnerId::new(format!("conformance-{}", uuid::Uuid::new_v4()));
    let batch: Vec<TargetRecord> = (0..4).map(|_| record(platform, &owner3, -1)).collect();
    scheduler.enqueue(&batch).await.unwrap();
    let short = Duration::from_millis(300);
    let c = scheduler.claim(&claim_req(platform, "w8", 10, short)).await.unwrap();
    assert_eq!(c.len(), 4);
    let mut stale = c[3].lease.clone();
    stale.fencing_token += 3;
    let cp = |n: u32| Checkpoint::from_json(serde_json::json!({ "step": n }));
    let long = Duration::from_secs(120);
    let out = scheduler
        .write_leases(&[
            crate::LeaseWrite { lease: c[0].lease.clone(), checkpoint: None, extend: Some(long) },
            crate::LeaseWrite { lease: c[1].lease.clone(), checkpoint: Some(cp(1)), extend: None },
            crate::LeaseWrite { lease: c[2].lease.clone(), checkpoint: Some(cp(2)), extend: Some(long) },
            crate::LeaseWrite { lease: stale, checkpoint: Some(cp(3)), extend: Some(long) },
        ])
        .await
        .expect("write_leases");
    assert_eq!(out.len(), 4, "one result per item");
    let leases: Vec<_> = out[..3].iter().map(|r| r.as_ref().expect("a current lease is written").clone()).collect();
    assert!(matches!(out[3], Err(Error::LeaseLost(id)) if id == c[3].record.id), "a stale item is its own LeaseLost");
    assert!(leases[0].expires_at > Utc::now() + chrono::Duration::seconds(100), "a heartbeat extends the lease");
    assert_eq!(leases[1].expires_at, c[1].lease.expires_at, "a checkpoint alone keeps the expiry");
    assert!(leases[2].expires_at > Utc::now() + chrono::Duration::seconds(100), "checkpoint and renewal in one write");
    for (i, want) in [(0usize, None), (1, Some(cp(1))), (2, Some(cp(2))), (3, None)] {
        let r = scheduler.get(c[i].record.id).await.unwrap().unwrap();
        assert_eq!(r.checkpoint.is_empty(), want.is_none(), "item {i}'s checkpoint");
        if let Some(w) = want {
            assert_eq!(r.checkpoint.as_json(), w.as_json(), "item {i}'s checkpoint was saved");
        }
        let expires = r.lease.as_ref().map(|l| l.expires_at);
        let expect = if i == 1 || i == 3 { Some(c[i].lease.expires_at) } else { Some(leases[i].expires_at) };
        assert_eq!(expires, expect, "item {i}'s stored expiry");
    }
    // Once the short leases are over, only the two never extended are claimable again: the
    // extended ones stay with their holder, in the queue too.
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    let mut again: Vec<_> =
        scheduler.claim(&claim_req(platform, "w9", 10, lease_for)).await.unwrap().iter().map(|c| c.record.id).collect();
    again.sort();
    let mut want = vec![c[1].record.id, c[3].record.id];
    want.sort();
    assert_eq!(again, want, "extended leases hold, the others expire");
    assert!(scheduler.write_leases(&[]).await.unwrap().is_empty());
    let f = TargetFilter { owner: Some(owner3.clone()), ..TargetFilter::default() };
    assert_eq!(scheduler.delete(&f).await.unwrap(), 4);
}

/// What a platform's conformance run needs: an account its mock server accepts, content that
/// publishes against the mocks, and the secrets that must never show in `Debug`.
#[derive(Debug)]
pub struct PlatformCase {
    /// An account whose token the mocks accept.
    pub account: Account,
    /// Content that is valid and publishes against the mocks.
    pub content: Content,
    /// Options for it.
    pub options: TargetOptions,
    /// Strings (client secret…) that must not appear in the platform's `Debug` output.
    pub secrets: Vec<String>,
    /// How many polls to allow before the post must be published.
    pub max_polls: usize,
}

impl PlatformCase {
    /// A case for `account` publishing `content`.
    pub fn new(account: Account, content: Content) -> Self {
        Self { account, content, options: TargetOptions::none(), secrets: Vec::new(), max_polls: 10 }
    }
}

/// Runs the shared rules against a platform and its mock server.
pub async fn platform_conformance(platform: &dyn Platform, case: PlatformCase) {
    let caps = platform.capabilities().clone();
    assert!(!platform.id().as_str().is_empty(), "a platform has an id");
    assert!(caps.max_text_len > 0, "capabilities state a text limit");
    let debug = format!("{platform:?}");
    for s in &case.secrets {
        assert!(!debug.contains(s.as_str()), "the platform's Debug output shows a secret");
    }

    validation_rules(platform, &case, &caps);
    declared_limits_enforced(platform, &case, &caps);
    authorization_rules(platform);
    publish_sample(platform, &case, &caps).await;
}

/// Validation: the sample is valid; too long a text is caught with every other violation.
fn validation_rules(platform: &dyn Platform, case: &PlatformCase, caps: &Capabilities) {
    let v = platform.validate(&case.content, &case.options);
    assert!(v.is_empty(), "the sample content must be valid, got {v:?}");
    let mut long = case.content.clone();
    long.text = "a".repeat(caps.max_text_len + 1);
    let v = platform.validate(&long, &case.options);
    assert!(v.iter().any(|v| v.code == "text_too_long"), "too long a text is a `text_too_long` violation: {v:?}");
    if let Some(limits) = caps.media.first() {
        let mut heavy = long.clone();
        let mut m = crate::Media::from_bytes(bytes::Bytes::from_static(b"not really media"));
        m.mime = limits.mime_types.first().map(|t| t.parse().unwrap()).unwrap_or(mime::IMAGE_JPEG);
        m.size = Some(limits.max_bytes + 1);
        heavy.media = vec![m];
        let v = platform.validate(&heavy, &case.options);
        assert!(v.iter().any(|v| v.code == "text_too_long"), "every violation is listed at once");
        assert!(v.iter().any(|v| v.field.starts_with("media")), "too large a file is a media violation: {v:?}");
    }
}

/// The declared limits and the validator agree: every declared bound is enforced.
fn declared_limits_enforced(platform: &dyn Platform, case: &PlatformCase, caps: &Capabilities) {
    for limits in &caps.media {
        let Some(mime) = limits.mime_types.first().and_then(|t| t.parse::<mime::Mime>().ok()) else { continue };
        let item = |f: &dyn Fn(&mut crate::Media)| {
            let mut m = crate::Media::from_bytes(bytes::Bytes::from_static(b"not really media"));
            m.mime = mime.clone();
            m.size = Some(limits.min_bytes.max(1024).min(limits.max_bytes));
            m.duration = limits.min_duration.map(|d| d + Duration::from_secs(1)).or(Some(Duration::from_secs(5)));
            f(&mut m);
            let mut c = case.content.clone();
            c.media = vec![m];
            platform.validate(&c, &case.options)
        };
        let has = |v: &[crate::Violation], code: &str| v.iter().any(|v| v.code == code);
        let d = limits.dimensions;
        if let Some(w) = d.max_width {
            let v = item(&|m| (m.width, m.height) = (Some(w + 1), Some(d.min_height.unwrap_or(w))));
            assert!(has(&v, "dimensions_too_large"), "declared max width {w} is enforced: {v:?}");
        }
        if let Some(h) = d.min_height {
            let v = item(&|m| (m.width, m.height) = (Some(d.min_width.unwrap_or(h)), Some(h - 1)));
            assert!(has(&v, "dimensions_too_small"), "declared min height {h} is enforced: {v:?}");
        }
        if limits.min_bytes > 1 {
            let v = item(&|m| m.size = Some(limits.min_bytes - 1));
            assert!(has(&v, "media_too_small"), "declared min size {} is enforced: {v:?}", limits.min_bytes);
        }
        if let Some(max) = limits.max_duration {
            let v = item(&|m| m.duration = Some(max + Duration::from_secs(1)));
            assert!(has(&v, "video_too_long"), "declared max duration {max:?} is enforced: {v:?}");
        }
    }
}

/// Authorization request: state and PKCE.
fn authorization_rules(platform: &dyn Platform) {
    let redirect = Url::parse("https://app.example/callback").unwrap();
    let req = platform.authorization_request(&redirect).expect("authorization_request");
    assert!(req.state.len() >= 22, "the state carries at least 128 random bits");
    let pairs: std::collections::HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    assert_eq!(pairs.get("state"), Some(&req.state), "the URL carries the state");
    assert!(pairs.values().any(|v| v == redirect.as_str()), "the URL carries the redirect URI");
    if let Some(v) = &req.pkce_verifier {
        assert_eq!(pairs.get("code_challenge_method").map(String::as_str), Some("S256"));
        assert_eq!(pairs.get("code_challenge"), Some(&crate::oauth::pkce_challenge(v.expose())), "S256 challenge");
    }
    let again = platform.authorization_request(&redirect).unwrap();
    assert_ne!(again.state, req.state, "every request has a fresh state");
}

/// Publishes the sample, polling if the platform works asynchronously.
async fn publish_sample(platform: &dyn Platform, case: &PlatformCase, caps: &Capabilities) {
    let saver = MemoryCheckpoints::new();
    let target = crate::TargetId::new();
    let mut checkpoint = Checkpoint::default();
    let mut outcome = {
        let mut ctx = PublishContext::builder(target, &case.account, &case.content, &case.options)
            .checkpoint(checkpoint.clone())
            .hooks(&*saver)
            .build();
        let o = platform.publish(&mut ctx).await.expect("publishing the sample");
        checkpoint = ctx.checkpoint().clone();
        o
    };
    let mut polls = 0;
    while let PublishOutcome::Processing { .. } = outcome {
        assert!(caps.asynchronous_processing, "Processing is only answered by platforms that declare it");
        polls += 1;
        assert!(polls <= case.max_polls, "the sample did not finish within {} polls", case.max_polls);
        let mut ctx = PublishContext::builder(target, &case.account, &case.content, &case.options)
            .checkpoint(checkpoint.clone())
            .hooks(&*saver)
            .build();
        outcome = platform.poll(&mut ctx).await.expect("polling the sample");
        checkpoint = ctx.checkpoint().clone();
    }
    let PublishOutcome::Published(remote) = outcome else { unreachable!() };
    assert_eq!(remote.platform, platform.id(), "the remote post names its platform");
    assert!(!remote.id.is_empty(), "the remote post has an id");
}

/// Runs the tenant-isolation rules of [`Owned`](crate::Owned) against a pair of stores: one
/// owner can neither see, cancel, reschedule nor target another owner's posts and accounts,
/// and an id of another owner gets the same `NotFound` (or `unknown_account`) as an id that
/// does not exist.
pub async fn owner_isolation_conformance(
    tokens: std::sync::Arc<dyn TokenStore>,
    scheduler: std::sync::Arc<dyn Scheduler>,
) {
    use crate::testing::StubPlatform;
    let platform = format!("iso{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let engine = crate::Konektly::builder()
        .platform(std::sync::Arc::new(StubPlatform::new(&platform)))
        .token_store(tokens)
        .scheduler(scheduler)
        .build()
        .expect("the engine builds");
    let (a, b) = (
        OwnerId::new(format!("iso-a-{}", uuid::Uuid::new_v4())),
        OwnerId::new(format!("iso-b-{}", uuid::Uuid::new_v4())),
    );
    let redirect = Url::parse("https://app.example/callback").unwrap();
    let connect = |owner: OwnerId, code: &'static str| {
        let engine = engine.clone();
        let platform = platform.clone();
        let redirect = redirect.clone();
        async move {
            let start = engine.owner(&owner).connect(&PlatformId::new(platform), &redirect).await.expect("connect");
            engine.complete_connect(&start.state, code).await.expect("complete_connect").remove(0)
        }
    };
    let alice = connect(a.clone(), "alice").await;
    let bob = connect(b.clone(), "bob").await;
    let (mine, theirs) = (engine.owner(&a), engine.owner(&b));
    let at = Utc::now() + chrono::Duration::hours(1);
    let post = Post::new(a.clone(), Content::text("a's post")).to(Target::new(alice.id)).at(at);
    mine.schedule(&post).await.expect("the owner schedules its post");
    let missing = crate::PostId::new();
    let not_found = |r: Result<(), Error>, what: &str| {
        assert!(matches!(r, Err(Error::NotFound(_))), "{what}: another owner's id must be NotFound, got {r:?}")
    };

    // Posts.
    not_found(theirs.status(post.id).await.map(|_| ()), "status");
    not_found(theirs.status(missing).await.map(|_| ()), "status of a missing post");
    not_found(theirs.cancel(post.id).await.map(|_| ()), "cancel");
    not_found(theirs.reschedule(post.id, at + chrono::Duration::hours(1)).await.map(|_| ()), "reschedule");
    let f = TargetFilter { post: Some(post.id), ..TargetFilter::default() };
    assert!(theirs.list(&f).await.unwrap().is_empty(), "list shows nothing of another owner");
    let still = mine.status(post.id).await.expect("the owner sees its post");
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].state, TargetState::Scheduled, "another owner's cancel did nothing");
    assert_eq!(still[0].due_at, at, "another owner's reschedule did nothing");

    // Accounts.
    not_found(theirs.account(alice.id).await.map(|_| ()), "account");
    not_found(theirs.disconnect(alice.id).await, "disconnect");
    not_found(theirs.reconnect(alice.id, &redirect).await.map(|_| ()), "reconnect");
    assert!(theirs.accounts().await.unwrap().iter().all(|x| x.owner == b), "accounts lists only the owner's");
    assert!(mine.account(alice.id).await.is_ok(), "another owner's disconnect did nothing");

    // Targeting another owner's account: the same answer as a missing account.
    let sneaky = Post::new(b.clone(), Content::text("b's post")).to(Target::new(alice.id));
    let ghost = Post::new(b.clone(), Content::text("b's post")).to(Target::new(AccountId::new()));
    let codes = |v: Vec<crate::Violation>| v.into_iter().map(|v| v.code).collect::<Vec<_>>();
    let (v1, v2) = (theirs.validate(&sneaky).await.unwrap(), theirs.validate(&ghost).await.unwrap());
    assert_eq!(codes(v1), codes(v2), "another owner's account looks exactly like a missing one");
    assert!(matches!(theirs.schedule(&sneaky).await, Err(Error::InvalidPost(_))), "cannot target another's account");
    // A post written by another owner is refused by this owner's handle.
    assert!(matches!(theirs.schedule(&post).await, Err(Error::InvalidPost(_))), "a foreign post is refused");
    let _ = bob;

    // The owner itself can do all of it.
    assert_eq!(mine.reschedule(post.id, at + chrono::Duration::hours(2)).await.unwrap(), 1);
    assert_eq!(mine.cancel(post.id).await.unwrap().cancelled, 1);
    assert_eq!(mine.status(post.id).await.unwrap()[0].state, TargetState::Cancelled);
    mine.disconnect(alice.id).await.expect("the owner disconnects its account");
    not_found(mine.account(alice.id).await.map(|_| ()), "a disconnected account");
}
