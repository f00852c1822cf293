//! The life of a target, in one place: which claim a state allows and what a claim makes of it,
//! how each [`Completion`] changes a target, what a cancel does, and how an attempt's error
//! becomes a completion. The memory store, both SQL stores (`konektly-store` builds its SQL from
//! these tables) and the engine all follow this module.
//!
//! ```text
//! scheduled --claim--> in_flight --published----------> published
//!     ^                    |      --processing---------> processing --claim (poll)--> …
//!     |                    |      --retry--------------> scheduled (cancelled if a cancel waits)
//!     |                    |      --unknown------------> unknown --claim (reconcile)--> …
//!     |                    |      --blocked------------> blocked (cancelled if a cancel waits)
//!     |                    |      --failed-------------> failed
//!     |                    '--lease expired, claimed---> unknown (reconcile)
//!     '--reschedule-- failed, cancelled, blocked
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorKind};
use crate::model::{FailureRecord, TargetRecord, TargetState};
use crate::scheduler::{ClaimKind, Completion};

/// The name of a target's state, without its details (see [`TargetState::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateName {
    /// [`TargetState::Scheduled`].
    Scheduled,
    /// [`TargetState::InFlight`].
    InFlight,
    /// [`TargetState::Processing`].
    Processing,
    /// [`TargetState::Unknown`].
    Unknown,
    /// [`TargetState::Published`].
    Published,
    /// [`TargetState::Failed`].
    Failed,
    /// [`TargetState::Blocked`].
    Blocked,
    /// [`TargetState::Cancelled`].
    Cancelled,
}

impl StateName {
    /// Every state name.
    pub const ALL: [StateName; 8] = [
        StateName::Scheduled,
        StateName::InFlight,
        StateName::Processing,
        StateName::Unknown,
        StateName::Published,
        StateName::Failed,
        StateName::Blocked,
        StateName::Cancelled,
    ];

    /// The name of `state`.
    pub fn of(state: &TargetState) -> Self {
        match state {
            TargetState::Scheduled => StateName::Scheduled,
            TargetState::InFlight => StateName::InFlight,
            TargetState::Processing => StateName::Processing,
            TargetState::Unknown => StateName::Unknown,
            TargetState::Published { .. } => StateName::Published,
            TargetState::Failed { .. } => StateName::Failed,
            TargetState::Blocked { .. } => StateName::Blocked,
            TargetState::Cancelled => StateName::Cancelled,
        }
    }

    /// As stored and shown: `scheduled`, `in_flight`, `processing`, `unknown`, `published`,
    /// `failed`, `blocked`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Scheduled => "scheduled",
            StateName::InFlight => "in_flight",
            StateName::Processing => "processing",
            StateName::Unknown => "unknown",
            StateName::Published => "published",
            StateName::Failed => "failed",
            StateName::Blocked => "blocked",
            StateName::Cancelled => "cancelled",
        }
    }

    /// The state named `name` ([`as_str`](Self::as_str)), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a cancel ends a target in this state at once: nothing of it can be at the
    /// platform yet. Other unfinished states only record the request, and a completion that
    /// leaves the target in one of these states ends it `cancelled` instead.
    pub fn cancels_at_once(self) -> bool {
        matches!(self, StateName::Scheduled | StateName::Blocked)
    }

    /// Whether nothing more will happen to a target in this state: `published`, `failed`,
    /// `cancelled`.
    pub fn is_final(self) -> bool {
        matches!(self, StateName::Published | StateName::Failed | StateName::Cancelled)
    }

    /// Whether a target in this state may be rescheduled (a new start): every state in which
    /// nothing of it is at the platform or on its way there — `scheduled`, `blocked`, `failed`,
    /// `cancelled`.
    pub fn reschedulable(self) -> bool {
        matches!(self, StateName::Scheduled | StateName::Blocked | StateName::Failed | StateName::Cancelled)
    }

    /// What a claim of a target in this state is for, once it is due (see [`claim_kind`]).
    pub fn claim(self) -> Option<ClaimKind> {
        match self {
            StateName::Scheduled => Some(ClaimKind::Publish),
            StateName::Processing => Some(ClaimKind::Poll),
            StateName::Unknown | StateName::InFlight => Some(ClaimKind::Reconcile),
            _ => None,
        }
    }

    /// The state a claim leaves a target in: a publish is in flight; an in-flight target whose
    /// worker died has an unknown outcome; the others keep their state.
    pub fn after_claim(self) -> StateName {
        match self {
            StateName::Scheduled => StateName::InFlight,
            StateName::InFlight => StateName::Unknown,
            other => other,
        }
    }
}

impl std::fmt::Display for StateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StateName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s).ok_or_else(|| Error::Config(format!("unknown target state `{s}`")))
    }
}

/// The state a `blocked` target takes when its account is reconnected: `scheduled`, or
/// `unknown` — reconciled before anything is sent — when it has a checkpoint (it was blocked
/// midway and may have reached the platform).
pub fn after_unblock(has_checkpoint: bool) -> StateName {
    if has_checkpoint { StateName::Unknown } else { StateName::Scheduled }
}

/// Whether a cancel ends a target in this state at once (nothing of it can be at the platform
/// yet); other unfinished states only record the request (see
/// [`TargetRecord::cancel_requested_at`]).
pub fn cancels_at_once(state: &TargetState) -> bool {
    StateName::of(state).cancels_at_once()
}

/// From when a target in `state` (due at `due_at`, leased until `lease_expires`) may be
/// claimed: `None` never, `earliest` at once. In any time unit; the SQL stores keep it as the
/// queue's `claim_at_ns`.
pub fn claimable_from<T: Ord + Copy>(state: StateName, due_at: T, lease_expires: Option<T>, earliest: T) -> Option<T> {
    state.claim()?;
    Some(match (state, lease_expires) {
        // A worker died mid-publish: reconcile once its lease is over.
        (StateName::InFlight, Some(l)) => l,
        (StateName::InFlight, None) => earliest,
        // A worker died polling or reconciling: go on once its lease is over.
        (_, Some(l)) if state != StateName::Scheduled => l,
        (_, Some(l)) => l.max(due_at),
        (_, None) => due_at,
    })
}

/// Decides whether a record can be claimed at `now`, and for what.
pub fn claim_kind(record: &TargetRecord, now: DateTime<Utc>) -> Option<ClaimKind> {
    let lease_expires = record.lease.as_ref().map(|l| l.expires_at);
    if lease_expires.is_some_and(|t| t > now) {
        return None;
    }
    let state = StateName::of(&record.state);
    let from = claimable_from(state, record.due_at, lease_expires, DateTime::<Utc>::MIN_UTC)?;
    if from <= now { state.claim() } else { None }
}

/// What a claim for `kind` does to the record (besides the lease, which the store sets).
pub fn apply_claim(record: &mut TargetRecord, kind: ClaimKind, now: DateTime<Utc>) {
    match StateName::of(&record.state).after_claim() {
        StateName::InFlight => record.state = TargetState::InFlight,
        StateName::Unknown => record.state = TargetState::Unknown,
        _ => {}
    }
    if kind == ClaimKind::Publish {
        record.attempt_started_at = Some(now);
    }
    record.updated_at = now;
}

/// What a completion does to a target's last error.
#[derive(Clone, Debug, PartialEq)]
pub enum ErrorChange {
    /// Keeps the stored one.
    Keep,
    /// Replaces it (`None` clears it).
    Set(Option<FailureRecord>),
}

/// How a completion changes a target; the lease is always released. A waiting cancel then
/// turns a state that [cancels at once](StateName::cancels_at_once) into `cancelled`.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The new state (before a waiting cancel is applied).
    pub state: TargetState,
    /// The new due time, or keep the stored one.
    pub due_at: Option<DateTime<Utc>>,
    /// The new attempt count, or keep the stored one.
    pub attempts: Option<u32>,
    /// The last error.
    pub last_error: ErrorChange,
    /// Whether the target may be claimed again (at its due time), unless a cancel ends it.
    pub claimable: bool,
}

impl Transition {
    /// The transition of `completion`.
    pub fn of(completion: &Completion) -> Self {
        let keep =
            |state| Transition { state, due_at: None, attempts: None, last_error: ErrorChange::Keep, claimable: false };
        let error = |e: &Option<FailureRecord>| match e {
            Some(_) => ErrorChange::Set(e.clone()),
            None => ErrorChange::Keep,
        };
        match completion {
            Completion::Published(remote) => Transition {
                last_error: ErrorChange::Set(None),
                ..keep(TargetState::Published { remote: remote.clone() })
            },
            Completion::Processing { poll_at } => {
                Transition { due_at: Some(*poll_at), claimable: true, ..keep(TargetState::Processing) }
            }
            Completion::Retry { at, error: e, attempts } => Transition {
                due_at: Some(*at),
                attempts: Some(*attempts),
                last_error: error(e),
                claimable: true,
                ..keep(TargetState::Scheduled)
            },
            Completion::Unknown { at, error: e, attempts } => Transition {
                due_at: Some(*at),
                attempts: Some(*attempts),
                last_error: error(e),
                claimable: true,
                ..keep(TargetState::Unknown)
            },
            Completion::Blocked { reason } => keep(TargetState::Blocked { reason: reason.clone() }),
            Completion::Failed(f) => Transition {
                last_error: ErrorChange::Set(Some(f.clone())),
                ..keep(TargetState::Failed { failure: f.clone() })
            },
        }
    }
}

/// Applies a completion to a record (the memory store does this; the SQL stores apply the same
/// [`Transition`] in one `UPDATE`).
pub fn apply_completion(record: &mut TargetRecord, completion: &Completion, now: DateTime<Utc>) {
    let t = Transition::of(completion);
    record.lease = None;
    record.updated_at = now;
    // A cancel asked for while it was running takes effect once nothing more will be sent.
    record.state = if record.cancel_requested_at.is_some() && cancels_at_once(&t.state) {
        TargetState::Cancelled
    } else {
        t.state
    };
    if let Some(at) = t.due_at {
        record.due_at = at;
    }
    if let Some(n) = t.attempts {
        record.attempts = n;
    }
    if let ErrorChange::Set(e) = t.last_error {
        record.last_error = e;
    }
}

/// The engine's rules for turning an attempt's end into a [`Completion`] (from its
/// [`EngineConfig`](crate::EngineConfig)).
#[derive(Clone, Debug)]
pub(crate) struct OutcomeRules {
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub reconcile_delay: Duration,
    pub outcome_deadline: Duration,
}

impl OutcomeRules {
    /// The backoff before attempt `attempts + 1`: `retry_base × 2^(attempts−1)`, capped at
    /// `retry_max`, then a random point in its upper half.
    pub fn backoff(&self, attempts: u32) -> Duration {
        use rand::Rng;
        let exp = self.retry_base.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
        let d = exp.min(self.retry_max);
        // Full jitter in the upper half: spreads a burst without shortening waits much.
        let ms = d.as_millis() as u64;
        Duration::from_millis(ms / 2 + rand::rng().random_range(0..=ms / 2))
    }

    /// How an attempt of `kind` that failed with `e` ends; `None` when nothing may be written
    /// (the lease was lost).
    pub fn on_error(&self, record: &TargetRecord, kind: ClaimKind, e: Error, now: DateTime<Utc>) -> Option<Completion> {
        let failure = FailureRecord::from(&e);
        let at = |d: Duration| after(now, d);
        Some(match e {
            Error::LeaseLost(_) => return None,
            Error::ReauthRequired { reason, .. } | Error::AccessTokenRejected { message: reason, .. } => {
                Completion::Blocked { reason }
            }
            Error::RateLimited { retry_at, .. } => {
                let at = retry_at.unwrap_or_else(|| at(self.backoff(record.attempts + 1)));
                match kind {
                    ClaimKind::Poll => self.processing_or_end(record, at, now, || failure),
                    ClaimKind::Reconcile => self.unknown_or_end(record, record.attempts, at, now, failure),
                    ClaimKind::Publish => Completion::Retry { at, error: Some(failure), attempts: record.attempts },
                }
            }
            Error::Transient { .. } | Error::Storage { .. } => {
                let retry_after = match &e {
                    Error::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let attempts = record.attempts + 1;
                let at = at(retry_after.unwrap_or_else(|| self.backoff(attempts)));
                match kind {
                    ClaimKind::Poll => self.processing_or_end(record, at, now, || failure),
                    // A failed lookup leaves the outcome unknown: it counts, and ends.
                    ClaimKind::Reconcile => self.unknown_or_end(record, attempts, at, now, failure),
                    ClaimKind::Publish if attempts >= self.max_attempts => Completion::Failed(failure),
                    ClaimKind::Publish => Completion::Retry { at, error: Some(failure), attempts },
                }
            }
            Error::UnknownOutcome { .. } => {
                self.unknown_or_end(record, record.attempts + 1, at(self.reconcile_delay), now, failure)
            }
            _ => Completion::Failed(failure),
        })
    }

    /// An unknown outcome to reconcile at `at`, unless the target has used up its attempts or
    /// its deadline: then it ends as `outcome_unknown`.
    pub fn unknown_or_end(
        &self,
        record: &TargetRecord,
        attempts: u32,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        failure: FailureRecord,
    ) -> Completion {
        if attempts >= self.max_attempts || self.past_outcome_deadline(record, now) {
            return Completion::Failed(outcome_unknown(record, attempts, &failure));
        }
        Completion::Unknown { at, error: Some(failure), attempts }
    }

    /// Poll again at `at`, unless the target's deadline has passed.
    /// `last` is built only when the target ends (this is the path of every processing answer).
    pub fn processing_or_end(
        &self,
        record: &TargetRecord,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        last: impl FnOnce() -> FailureRecord,
    ) -> Completion {
        if self.past_outcome_deadline(record, now) {
            return Completion::Failed(outcome_unknown(record, record.attempts, &last()));
        }
        Completion::Processing { poll_at: at }
    }

    fn past_outcome_deadline(&self, record: &TargetRecord, now: DateTime<Utc>) -> bool {
        let started = record.attempt_started_at.unwrap_or(record.created_at);
        let limit = chrono::Duration::from_std(self.outcome_deadline).unwrap_or(chrono::Duration::MAX);
        started.checked_add_signed(limit).is_some_and(|end| now >= end)
    }
}

/// `now + d`, saturating.
pub(crate) fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The failure of a target whose outcome could not be established within its attempts or its
/// deadline: the operator must look at the account.
fn outcome_unknown(record: &TargetRecord, attempts: u32, last: &FailureRecord) -> FailureRecord {
    FailureRecord {
        kind: ErrorKind::OutcomeUnknown,
        code: last.code.clone(),
        message: format!(
            "whether this post was published on {} could not be established ({attempts} attempts; last: {}); \
             check the account before publishing it again",
            record.platform, last.message
        ),
        violations: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{AccountId, OwnerId, PlatformId, WorkerId};
    use crate::model::{Content, Lease, Post, RemotePost, Target};

    fn record(state: TargetState) -> TargetRecord {
        let post = Post::new(OwnerId::new("o"), Content::text("hi"));
        let mut r = TargetRecord::new(&post, &Target::new(AccountId::new()), PlatformId::new("p"), Utc::now());
        r.state = state;
        r
    }

    fn failure(message: &str) -> FailureRecord {
        FailureRecord { kind: ErrorKind::Transient, code: None, message: message.into(), violations: Vec::new() }
    }

    fn states() -> Vec<TargetState> {
        vec![
            TargetState::Scheduled,
            TargetState::InFlight,
            TargetState::Processing,
            TargetState::Unknown,
            TargetState::Published { remote: RemotePost::new(PlatformId::new("p"), "1", None) },
            TargetState::Failed { failure: failure("old") },
            TargetState::Blocked { reason: "r".into() },
            TargetState::Cancelled,
        ]
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(StateName::ALL.len(), states().len());
        for s in states() {
            let n = StateName::of(&s);
            assert_eq!(s.name(), n.as_str());
            assert_eq!(StateName::parse(n.as_str()), Some(n));
            assert_eq!(n.as_str().parse::<StateName>().unwrap(), n);
        }
        assert!("nope".parse::<StateName>().is_err());
    }

    /// Every state × completion, with and without a waiting cancel → the state it ends in.
    #[test]
    fn completion_table() {
        let t = Utc::now();
        let remote = RemotePost::new(PlatformId::new("p"), "9", None);
        let table: Vec<(Completion, StateName, StateName)> = vec![
            // completion, state reached, state reached with a cancel waiting
            (Completion::Published(remote), StateName::Published, StateName::Published),
            (Completion::Processing { poll_at: t }, StateName::Processing, StateName::Processing),
            (Completion::Retry { at: t, error: None, attempts: 2 }, StateName::Scheduled, StateName::Cancelled),
            (Completion::Unknown { at: t, error: None, attempts: 2 }, StateName::Unknown, StateName::Unknown),
            (Completion::Blocked { reason: "gone".into() }, StateName::Blocked, StateName::Cancelled),
            (Completion::Failed(failure("f")), StateName::Failed, StateName::Failed),
        ];
        for from in states() {
            for (c, to, to_cancelled) in &table {
                for cancel in [false, true] {
                    let mut r = record(from.clone());
                    r.cancel_requested_at = cancel.then_some(t);
                    r.lease = Some(Lease { target: r.id, owner: WorkerId::new("w"), fencing_token: 1, expires_at: t });
                    apply_completion(&mut r, c, t);
                    let want = if cancel { *to_cancelled } else { *to };
                    assert_eq!(StateName::of(&r.state), want, "{} × {c:?} (cancel: {cancel})", from.name());
                    assert!(r.lease.is_none());
                    assert_eq!(r.updated_at, t);
                }
            }
        }
    }

    #[test]
    fn completions_change_due_attempts_and_errors() {
        let t0 = Utc::now();
        let t1 = t0 + chrono::Duration::seconds(60);
        let mut r = record(TargetState::InFlight);
        r.last_error = Some(failure("old"));
        apply_completion(&mut r, &Completion::Retry { at: t1, error: None, attempts: 3 }, t0);
        assert_eq!((r.due_at, r.attempts, r.last_error.as_ref().map(|e| e.message.as_str())), (t1, 3, Some("old")));
        apply_completion(&mut r, &Completion::Unknown { at: t0, error: Some(failure("new")), attempts: 4 }, t0);
        assert_eq!((r.due_at, r.attempts, r.last_error.as_ref().map(|e| e.message.as_str())), (t0, 4, Some("new")));
        apply_completion(&mut r, &Completion::Blocked { reason: "r".into() }, t0);
        assert_eq!((r.attempts, r.last_error.is_some()), (4, true));
        apply_completion(&mut r, &Completion::Published(RemotePost::new(PlatformId::new("p"), "1", None)), t0);
        assert!(r.last_error.is_none());
        let mut r = record(TargetState::InFlight);
        apply_completion(&mut r, &Completion::Failed(failure("f")), t0);
        assert_eq!(r.last_error.map(|e| e.message), Some("f".into()));
        for (c, claimable) in [
            (Completion::Processing { poll_at: t0 }, true),
            (Completion::Retry { at: t0, error: None, attempts: 0 }, true),
            (Completion::Unknown { at: t0, error: None, attempts: 0 }, true),
            (Completion::Blocked { reason: "r".into() }, false),
            (Completion::Failed(failure("f")), false),
        ] {
            assert_eq!(Transition::of(&c).claimable, claimable, "{c:?}");
        }
    }

    #[test]
    fn claims() {
        let now = Utc::now();
        let past = now - chrono::Duration::seconds(5);
        let future = now + chrono::Duration::seconds(5);
        // state, due, lease expiry → claim now
        type Case = (TargetState, DateTime<Utc>, Option<DateTime<Utc>>, Option<ClaimKind>);
        let cases: Vec<Case> = vec![
            (TargetState::Scheduled, past, None, Some(ClaimKind::Publish)),
            (TargetState::Scheduled, future, None, None),
            (TargetState::Scheduled, past, Some(future), None),
            (TargetState::Scheduled, future, Some(past), None),
            (TargetState::Scheduled, past, Some(past), Some(ClaimKind::Publish)),
            (TargetState::InFlight, future, None, Some(ClaimKind::Reconcile)),
            (TargetState::InFlight, future, Some(past), Some(ClaimKind::Reconcile)),
            (TargetState::InFlight, past, Some(future), None),
            (TargetState::Processing, past, None, Some(ClaimKind::Poll)),
            (TargetState::Processing, future, None, None),
            (TargetState::Processing, future, Some(past), Some(ClaimKind::Poll)),
            (TargetState::Unknown, past, None, Some(ClaimKind::Reconcile)),
            (TargetState::Unknown, future, Some(past), Some(ClaimKind::Reconcile)),
            (TargetState::Unknown, past, Some(future), None),
            (TargetState::Blocked { reason: "r".into() }, past, None, None),
            (TargetState::Cancelled, past, None, None),
        ];
        for (state, due, expires, want) in cases {
            let mut r = record(state);
            r.due_at = due;
            r.lease =
                expires.map(|at| Lease { target: r.id, owner: WorkerId::new("w"), fencing_token: 1, expires_at: at });
            assert_eq!(claim_kind(&r, now), want, "{} due {due} lease {expires:?}", r.state.name());
            // The queue's claim time agrees.
            let from = claimable_from(StateName::of(&r.state), due, expires, DateTime::<Utc>::MIN_UTC);
            assert_eq!(from.is_some_and(|f| f <= now) && expires.is_none_or(|e| e <= now), want.is_some());
            if let Some(kind) = want {
                let before = StateName::of(&r.state);
                apply_claim(&mut r, kind, now);
                assert_eq!(StateName::of(&r.state), before.after_claim());
                assert_eq!(r.attempt_started_at == Some(now), kind == ClaimKind::Publish);
            }
        }
        assert!(
            cancels_at_once(&TargetState::Scheduled) && cancels_at_once(&TargetState::Blocked { reason: "r".into() })
        );
        assert!(!cancels_at_once(&TargetState::InFlight) && !cancels_at_once(&TargetState::Unknown));
    }

    fn rules() -> OutcomeRules {
        OutcomeRules {
            max_attempts: 3,
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            reconcile_delay: Duration::from_secs(5),
            outcome_deadline: Duration::from_secs(3600),
        }
    }

    #[test]
    fn errors_become_completions() {
        let rules = rules();
        let now = Utc::now();
        let mut r = record(TargetState::InFlight);
        r.attempts = 1;
        r.attempt_started_at = Some(now);
        let transient = || Error::transient("down");
        assert_eq!(rules.on_error(&r, ClaimKind::Publish, Error::LeaseLost(r.id), now), None);
        assert!(matches!(
            rules.on_error(&r, ClaimKind::Publish, Error::ReauthRequired { reason: "x".into(), source: None }, now),
            Some(Completion::Blocked { .. })
        ));
        // A transient failure counts; the backoff is in the upper half of 10 s × 2.
        match rules.on_error(&r, ClaimKind::Publish, transient(), now) {
            Some(Completion::Retry { at, error: Some(_), attempts: 2 }) => {
                assert!(at >= now + chrono::Duration::seconds(10) && at <= now + chrono::Duration::seconds(20));
            }
            other => panic!("{other:?}"),
        }
        r.attempts = 2;
        assert!(matches!(rules.on_error(&r, ClaimKind::Publish, transient(), now), Some(Completion::Failed(_))));
        // A failed lookup counts too, and ends as outcome_unknown.
        match rules.on_error(&r, ClaimKind::Reconcile, transient(), now) {
            Some(Completion::Failed(f)) => assert_eq!(f.kind, ErrorKind::OutcomeUnknown),
            other => panic!("{other:?}"),
        }
        r.attempts = 0;
        match rules.on_error(&r, ClaimKind::Publish, Error::UnknownOutcome { message: "?".into(), source: None }, now) {
            Some(Completion::Unknown { at, attempts: 1, .. }) => assert_eq!(at, now + chrono::Duration::seconds(5)),
            other => panic!("{other:?}"),
        }
        // Rate limits do not count.
        let at = now + chrono::Duration::seconds(30);
        let limited = || Error::RateLimited { retry_at: Some(at), message: "slow".into(), source: None };
        assert!(matches!(
            rules.on_error(&r, ClaimKind::Publish, limited(), now),
            Some(Completion::Retry { attempts: 0, at: a, .. }) if a == at
        ));
        assert_eq!(rules.on_error(&r, ClaimKind::Poll, limited(), now), Some(Completion::Processing { poll_at: at }));
        // Past the deadline, processing ends.
        let late = now + chrono::Duration::seconds(3601);
        assert!(matches!(rules.processing_or_end(&r, late, late, || failure("slow")), Completion::Failed(_)));
        assert!(matches!(
            rules.on_error(&r, ClaimKind::Publish, Error::Config("bad".into()), now),
            Some(Completion::Failed(_))
        ));
    }

    #[test]
    fn backoff_is_capped() {
        let rules = rules();
        for n in [1, 2, 5, 40] {
            let d = rules.backoff(n);
            let full = (rules.retry_base * (1 << (n - 1).min(16))).min(rules.retry_max);
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
    }
}
