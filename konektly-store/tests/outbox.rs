//! The outbox and what the server keeps, on both backends: events are written with the change
//! that raised them (and not without it), numbered in commit order, fanned out to webhook
//! deliveries; API keys, delivery claims and idempotency keys.

mod support;

use std::time::Duration;

use chrono::Utc;
use konektly_core::{
    AccountId, ClaimRequest, Completion, Content, Error, Event, EventLog, FailureRecord, OwnerId, PlatformId, Post,
    RemotePost, Target, TargetRecord, TokenStore, WorkerId,
};
use konektly_store::{AttemptResult, DeliveryState, IdempotencyCheck, KeyRing, ServerStore, SqliteStore};
use support::{Raw, account};

fn target(platform: &PlatformId, owner: &str) -> TargetRecord {
    let post = Post::new(OwnerId::new(owner), Content::text("hello")).to(Target::new(AccountId::new()));
    TargetRecord::new(&post, &post.targets[0], platform.clone(), Utc::now() - chrono::Duration::seconds(1))
}

async fn claim_one(s: &dyn ServerStore, platform: &PlatformId) -> konektly_core::Claimed {
    let mut r = ClaimRequest::new(WorkerId::new("w"), 10, Duration::from_secs(60));
    r.platforms = Some(vec![platform.clone()]);
    s.claim(&r).await.unwrap().pop().expect("a claim")
}

/// Every sequenced event of `owner`, numbering what is committed first.
async fn events_of(s: &dyn ServerStore, owner: &str) -> Vec<konektly_core::StoredEvent> {
    while s.sequence_events(100).await.unwrap() > 0 {}
    s.events_after(Some(&OwnerId::new(owner)), 0, 1000).await.unwrap()
}

async fn outcomes_raise_their_events(s: &dyn ServerStore) {
    let platform = PlatformId::new(format!("p-{}", uuid::Uuid::new_v4()));
    let owner = format!("o-{}", uuid::Uuid::new_v4());
    let remote = RemotePost::new(platform.clone(), "r1", None);

    // Published, through the group write.
    let t = target(&platform, &owner);
    s.enqueue(std::slice::from_ref(&t)).await.unwrap();
    let c = claim_one(s, &platform).await;
    let out = s.complete_many(&[(c.lease.clone(), Completion::Published(remote.clone()))]).await.unwrap();
    assert!(out[0].is_ok());
    // A second completion with the same (now stale) lease changes nothing and raises nothing.
    let stale = s.complete_many(&[(c.lease.clone(), Completion::Published(remote.clone()))]).await.unwrap();
    assert!(matches!(stale[0], Err(Error::LeaseLost(_))));

    // Processing the first time, not again at a poll; then failed, through the single write.
    let t2 = target(&platform, &owner);
    s.enqueue(std::slice::from_ref(&t2)).await.unwrap();
    let c = claim_one(s, &platform).await;
    let poll_at = Utc::now() - chrono::Duration::seconds(1);
    s.complete(&c.lease, &Completion::Processing { poll_at }).await.unwrap();
    let c = claim_one(s, &platform).await;
    assert_eq!(c.kind, konektly_core::ClaimKind::Poll);
    s.complete(&c.lease, &Completion::Processing { poll_at }).await.unwrap();
    let c = claim_one(s, &platform).await;
    let failure = FailureRecord::from(&Error::rejected(Some("bad".into()), "refused"));
    s.complete(&c.lease, &Completion::Failed(failure.clone())).await.unwrap();

    // A deferral raises nothing; a cancel at once raises `cancelled`.
    let t3 = target(&platform, &owner);
    s.enqueue(std::slice::from_ref(&t3)).await.unwrap();
    let c = claim_one(s, &platform).await;
    let later = Utc::now() + chrono::Duration::hours(1);
    s.complete(&c.lease, &Completion::Retry { at: later, error: None, attempts: 0 }).await.unwrap();
    s.cancel(t3.id).await.unwrap();

    let got: Vec<Event> = events_of(s, &owner).await.into_iter().map(|e| e.event).collect();
    assert_eq!(
        got,
        vec![
            Event::Published { target: t.id, post: t.post_id, remote },
            Event::Processing { target: t2.id },
            Event::Failed { target: t2.id, post: t2.post_id, failure },
            Event::Cancelled { target: t3.id, post: t3.post_id },
        ]
    );
}

async fn account_changes_raise_their_events(s: &dyn ServerStore) {
    let owner = format!("o-{}", uuid::Uuid::new_v4());
    let mut a = account(&owner, "access", None);
    s.insert_account_raising(&a, &[Event::AccountConnected { account: a.id }]).await.unwrap();
    // A refused insert (same remote account) raises nothing.
    let mut twin = a.clone();
    twin.id = AccountId::new();
    assert!(s.insert_account_raising(&twin, &[Event::AccountConnected { account: twin.id }]).await.is_err());
    // A plain update raises nothing; a stale one fails and raises nothing.
    a = s.update_account(&a).await.unwrap();
    let mut stale = a.clone();
    stale.version -= 1;
    let reauth = Event::ReauthRequired { account: a.id, reason: "revoked".into() };
    assert!(matches!(s.update_account_raising(&stale, std::slice::from_ref(&reauth)).await, Err(Error::Conflict(_))));
    s.update_account_raising(&a, std::slice::from_ref(&reauth)).await.unwrap();
    assert!(s.delete_account_raising(a.id, &[Event::AccountDisconnected { account: a.id }]).await.unwrap());
    assert!(!s.delete_account_raising(a.id, &[Event::AccountDisconnected { account: a.id }]).await.unwrap());

    let got: Vec<Event> = events_of(s, &owner).await.into_iter().map(|e| e.event).collect();
    assert_eq!(
        got,
        vec![Event::AccountConnected { account: a.id }, reauth, Event::AccountDisconnected { account: a.id }]
    );
}

async fn events_page_in_order_and_stay_per_owner(s: &dyn ServerStore) {
    let (mine, theirs) = (OwnerId::new(format!("o-{}", uuid::Uuid::new_v4())), OwnerId::new("someone-else"));
    let accounts: Vec<AccountId> = (0..7).map(|_| AccountId::new()).collect();
    for (i, a) in accounts.iter().enumerate() {
        let owner = if i % 3 == 2 { &theirs } else { &mine };
        s.append_events(owner, &[Event::TokenExpiringSoon { account: *a }]).await.unwrap();
    }
    // Not sequenced yet: nothing to read.
    assert!(s.events_after(Some(&mine), 0, 100).await.unwrap().is_empty());
    let all = events_of(s, mine.as_str()).await;
    let want: Vec<AccountId> = accounts.iter().enumerate().filter(|(i, _)| i % 3 != 2).map(|(_, a)| *a).collect();
    assert_eq!(all.iter().map(|e| e.event.account().unwrap()).collect::<Vec<_>>(), want);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    // Paging with the last seq seen continues where it stopped.
    let first = s.events_after(Some(&mine), 0, 2).await.unwrap();
    let rest = s.events_after(Some(&mine), first[1].seq, 100).await.unwrap();
    assert_eq!(first.iter().chain(&rest).cloned().collect::<Vec<_>>(), all);
}

async fn webhooks_get_deliveries_that_retry_and_replay(s: &dyn ServerStore) {
    let owner = OwnerId::new(format!("o-{}", uuid::Uuid::new_v4()));
    let url: url::Url = "http://127.0.0.1:9/hook".parse().unwrap();
    let (all, secret) = s.create_webhook(&owner, &url, &[]).await.unwrap();
    assert!(secret.expose().starts_with("whsec_"));
    assert!(!format!("{secret:?}").contains(secret.expose()), "the secret is not in Debug");
    let (published_only, _) = s.create_webhook(&owner, &url, &["target.published".into()]).await.unwrap();
    assert!(s.create_webhook(&owner, &url, &["no.such.kind".into()]).await.is_err());
    assert_eq!(s.list_webhooks(&owner).await.unwrap().len(), 2);

    let account = AccountId::new();
    s.append_events(&owner, &[Event::AccountConnected { account }]).await.unwrap();
    while s.sequence_events(100).await.unwrap() > 0 {}
    let due = s.claim_deliveries(10, Duration::from_secs(30)).await.unwrap();
    let mine: Vec<_> = due.iter().filter(|d| d.delivery.owner == owner).collect();
    assert_eq!(mine.len(), 1, "only the endpoint that takes every kind gets it");
    let d = mine[0];
    assert_eq!(d.delivery.webhook_id, all.id);
    assert_eq!(d.secret, secret);
    assert_eq!(d.event.event, Event::AccountConnected { account });
    // Claimed: not claimable again while the lease lasts.
    assert!(
        s.claim_deliveries(10, Duration::from_secs(30)).await.unwrap().iter().all(|x| x.delivery.id != d.delivery.id)
    );

    // A failed attempt due again at once; the old lease cannot finish it twice.
    let retry = AttemptResult {
        status: Some(500),
        error: Some("500".into()),
        delivered: false,
        retry_at: Some(Utc::now() - chrono::Duration::seconds(1)),
    };
    assert!(s.finish_delivery(&d.delivery.id, d.lease, &retry).await.unwrap());
    assert!(!s.finish_delivery(&d.delivery.id, d.lease, &retry).await.unwrap(), "the lease was used");
    let again = s.claim_deliveries(10, Duration::from_secs(30)).await.unwrap();
    let d = again.into_iter().find(|x| x.delivery.owner == owner).expect("due again");
    assert_eq!(d.delivery.attempts, 1);
    let gave_up = AttemptResult { status: None, error: Some("refused".into()), delivered: false, retry_at: None };
    assert!(s.finish_delivery(&d.delivery.id, d.lease, &gave_up).await.unwrap());
    let log = s.list_deliveries(&owner, None, 10).await.unwrap();
    assert_eq!((log[0].state, log[0].attempts, log[0].last_status), (DeliveryState::Failed, 2, None));
    assert_eq!(log[0].last_error.as_deref(), Some("refused"));
    assert!(s.list_deliveries(&owner, Some(&published_only.id), 10).await.unwrap().is_empty());

    // A replay makes it due now; delivered, it stays in the log.
    assert!(!s.replay_delivery(&OwnerId::new("someone-else"), &d.delivery.id).await.unwrap(), "per owner");
    assert!(s.replay_delivery(&owner, &d.delivery.id).await.unwrap());
    let d =
        s.claim_deliveries(10, Duration::from_secs(30)).await.unwrap().into_iter().find(|x| x.delivery.owner == owner);
    let d = d.expect("replayed");
    let ok = AttemptResult { status: Some(204), error: None, delivered: true, retry_at: None };
    assert!(s.finish_delivery(&d.delivery.id, d.lease, &ok).await.unwrap());
    let log = s.list_deliveries(&owner, None, 10).await.unwrap();
    assert_eq!(log[0].state, DeliveryState::Delivered);
    assert!(log[0].delivered_at.is_some());
    assert!(s.delete_webhook(&owner, &all.id).await.unwrap());
    assert!(!s.delete_webhook(&owner, &all.id).await.unwrap());
}

async fn api_keys_and_idempotency(s: &dyn ServerStore) {
    let owner = OwnerId::new(format!("o-{}", uuid::Uuid::new_v4()));
    let issued = s.create_api_key(Some(&owner), false, "ci").await.unwrap();
    let token = issued.token.expose().to_owned();
    assert!(!format!("{issued:?}").contains(&token), "the key is not in Debug");
    let k = s.verify_api_key(&token).await.unwrap().expect("valid");
    assert_eq!((k.owner.as_ref(), k.admin), (Some(&owner), false));
    let mut wrong = token.clone();
    wrong.pop();
    wrong.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(s.verify_api_key(&wrong).await.unwrap().is_none(), "one character off");
    for junk in ["", "kk_", "kk_short", "Bearer x", "kk_ééééééééééééé_x"] {
        assert!(s.verify_api_key(junk).await.unwrap().is_none(), "{junk:?}");
    }
    assert!(s.revoke_api_key(&k.id).await.unwrap());
    assert!(s.verify_api_key(&token).await.unwrap().is_none(), "revoked");
    assert!(s.create_api_key(None, false, "nobody's").await.is_err());
    let admin = s.create_api_key(None, true, "ops").await.unwrap();
    assert!(s.verify_api_key(admin.token.expose()).await.unwrap().unwrap().admin);

    let post = konektly_core::PostId::new();
    assert_eq!(s.check_idempotency(&owner, "k1", "h1", post).await.unwrap(), IdempotencyCheck::New);
    assert_eq!(
        s.check_idempotency(&owner, "k1", "h1", konektly_core::PostId::new()).await.unwrap(),
        IdempotencyCheck::Replay(post)
    );
    assert_eq!(s.check_idempotency(&owner, "k1", "h2", post).await.unwrap(), IdempotencyCheck::Mismatch);
    let other = OwnerId::new("someone-else-entirely");
    assert_eq!(s.check_idempotency(&other, "k1", "h2", post).await.unwrap(), IdempotencyCheck::New, "per owner");
}

async fn all(s: &dyn ServerStore) {
    outcomes_raise_their_events(s).await;
    account_changes_raise_their_events(s).await;
    events_page_in_order_and_stay_per_owner(s).await;
    webhooks_get_deliveries_that_retry_and_replay(s).await;
    api_keys_and_idempotency(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("k.db"), KeyRing::generate("k1")).await.unwrap();
    all(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("outbox");
    let s = support::pg_store(&url, &schema, KeyRing::generate("k1")).await;
    all(&s).await;
    s.close().await;
    support::drop_schema(&url, &schema).await;
}

/// On PostgreSQL, an event whose transaction commits after a later one's is still read by a
/// reader that already paged past the later one: numbers are given after commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_late_commits_are_not_skipped() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("outbox_late");
    let s = support::pg_store(&url, &schema, KeyRing::generate("k1")).await;
    let owner = OwnerId::new("late");
    let raw = Raw::pg(&url, &schema).await;
    let Raw::Pg(pool, _) = &raw else { unreachable!() };
    // A transaction writes an event and stays open.
    let mut slow = pool.begin().await.unwrap();
    let early = AccountId::new();
    let body = serde_json::to_string(&Event::TokenExpiringSoon { account: early }).unwrap();
    sqlx::query("INSERT INTO konektly_events (id, owner, kind, body, created_at_ns) VALUES ($1, 'late', 'account.token_expiring_soon', $2, 0)")
        .bind(konektly_core::EventId::new().to_string())
        .bind(body)
        .execute(&mut *slow)
        .await
        .unwrap();
    // A later event commits and is read.
    let later = AccountId::new();
    s.append_events(&owner, &[Event::TokenExpiringSoon { account: later }]).await.unwrap();
    s.sequence_events(100).await.unwrap();
    let seen = s.events_after(Some(&owner), 0, 100).await.unwrap();
    assert_eq!(seen.iter().map(|e| e.event.account().unwrap()).collect::<Vec<_>>(), vec![later]);
    // The slow one commits; the reader, going on from where it stopped, gets it.
    slow.commit().await.unwrap();
    s.sequence_events(100).await.unwrap();
    let next = s.events_after(Some(&owner), seen[0].seq, 100).await.unwrap();
    assert_eq!(next.iter().map(|e| e.event.account().unwrap()).collect::<Vec<_>>(), vec![early]);
    s.close().await;
    support::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_stores_keep_the_same_events() {
    let tokens = konektly_core::MemoryTokenStore::new();
    let a = account("m", "access", None);
    tokens.insert_account_raising(&a, &[Event::AccountConnected { account: a.id }]).await.unwrap();
    let got = tokens.events_after(None, 0, 10).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        vec![Event::AccountConnected { account: a.id }]
    );
}
