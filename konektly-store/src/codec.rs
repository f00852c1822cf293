//! Rows ⇄ model, shared by both backends: times as nanoseconds since the epoch (exact round
//! trips), JSON text for the parts no query looks into, sealed bytes for secrets.

use chrono::{DateTime, Utc};
use konektly_core::{
    Account, AccountId, AccountStatus, Checkpoint, ClaimKind, Completion, Content, Error, FailureRecord, Lease,
    OwnerId, PendingAuthorization, PkceVerifier, PlatformId, PostId, Result, TargetId, TargetOptions, TargetRecord,
    TargetState, TokenSet, WorkerId,
};
use serde::{Deserialize, Serialize};
use url::Url;

use base64::Engine as _;
use konektly_core::checkpoint_secret;
use konektly_core::lifecycle::{ErrorChange, StateName, Transition, claimable_from};

use crate::crypto::{KeyRing, account_aad, checkpoint_aad, pending_aad};

/// A checkpoint as stored: every secret (`{"$secret": …}`) sealed with the token keys, bound
/// to its target (`{"$sealed": base64}`); `None` when empty.
pub(crate) fn seal_checkpoint(keys: &KeyRing, target: &TargetId, c: &Checkpoint) -> Result<Option<String>> {
    if c.is_empty() {
        return Ok(None);
    }
    let mut v = c.as_json().clone();
    let aad = checkpoint_aad(target);
    checkpoint_secret::replace::<Error>(&mut v, &mut |x| {
        Ok(checkpoint_secret::as_secret(x).map(|plain| {
            let sealed = base64::engine::general_purpose::STANDARD.encode(keys.seal(plain.as_bytes(), &aad));
            serde_json::json!({ (checkpoint_secret::SEALED): sealed })
        }))
    })?;
    Ok(Some(to_json(&v, "a checkpoint")?))
}

/// A stored checkpoint, its sealed secrets opened.
pub(crate) fn open_checkpoint(keys: &KeyRing, target: &TargetId, stored: Option<&str>) -> Result<Checkpoint> {
    let Some(text) = stored else { return Ok(Checkpoint::default()) };
    let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| json_err("checkpoint", e))?;
    let aad = checkpoint_aad(target);
    checkpoint_secret::replace::<Error>(&mut v, &mut |x| {
        let Some(sealed) = checkpoint_secret::as_sealed(x) else { return Ok(None) };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|e| Error::storage("a sealed checkpoint secret is not base64", e))?;
        let plain = keys.open_string(&bytes, &aad, "a checkpoint secret")?;
        Ok(Some(serde_json::json!({ (checkpoint_secret::SECRET): plain })))
    })?;
    Ok(Checkpoint::from_json(v))
}

/// Nanoseconds since the epoch, saturating far outside the years 1677–2262.
pub(crate) fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn from_ns(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

pub(crate) fn json_err(what: &str, e: serde_json::Error) -> Error {
    Error::storage(format!("a stored {what} does not parse"), e)
}

pub(crate) fn to_json<T: Serialize>(v: &T, what: &str) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::storage(format!("{what} does not serialize"), e))
}

pub(crate) fn parse_id<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse().map_err(|_| Error::Storage { message: format!("a stored {what} id is not a UUID: {s:?}"), source: None })
}

/// The non-secret part of an account, stored as JSON.
#[derive(Serialize, Deserialize)]
struct StoredProfile {
    handle: Option<String>,
    display_name: Option<String>,
    avatar_url: Option<Url>,
    status: AccountStatus,
    parent: Option<AccountId>,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
    expires_at: Option<DateTime<Utc>>,
    refresh_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// An account as stored.
pub(crate) struct AccountRow {
    pub id: String,
    pub owner: String,
    pub platform: String,
    pub remote_id: String,
    pub version: i64,
    pub key_id: String,
    pub access_token: Vec<u8>,
    pub refresh_token: Option<Vec<u8>>,
    pub profile: String,
    pub created_at_ns: i64,
    pub updated_at_ns: i64,
}

pub(crate) const ACCOUNT_COLS: &str = "id, owner, platform, remote_id, version, key_id, access_token, refresh_token, profile, created_at_ns, updated_at_ns";

impl AccountRow {
    pub fn encode(keys: &KeyRing, a: &Account) -> Result<Self> {
        let profile = StoredProfile {
            handle: a.handle.clone(),
            display_name: a.display_name.clone(),
            avatar_url: a.avatar_url.clone(),
            status: a.status.clone(),
            parent: a.parent,
            metadata: a.metadata.clone(),
            expires_at: a.tokens.expires_at,
            refresh_expires_at: a.tokens.refresh_expires_at,
            scopes: a.tokens.scopes.clone(),
        };
        Ok(Self {
            id: a.id.to_string(),
            owner: a.owner.as_str().to_owned(),
            platform: a.platform.as_str().to_owned(),
            remote_id: a.remote_id.clone(),
            version: a.version as i64,
            key_id: keys.newest_id().to_owned(),
            access_token: keys.seal(a.tokens.access_token.expose().as_bytes(), &account_aad(&a.id, "access")),
            refresh_token: a
                .tokens
                .refresh_token
                .as_ref()
                .map(|t| keys.seal(t.expose().as_bytes(), &account_aad(&a.id, "refresh"))),
            profile: to_json(&profile, "an account")?,
            created_at_ns: ns(a.created_at),
            updated_at_ns: ns(a.updated_at),
        })
    }

    pub fn decode(self, keys: &KeyRing) -> Result<Account> {
        let id: AccountId = parse_id(&self.id, "account")?;
        let p: StoredProfile = serde_json::from_str(&self.profile).map_err(|e| json_err("account", e))?;
        let access = keys.open_string(
            &self.access_token,
            &account_aad(&id, "access"),
            &format!("access token of account {id}"),
        )?;
        let refresh = match &self.refresh_token {
            Some(b) => {
                Some(keys.open_string(b, &account_aad(&id, "refresh"), &format!("refresh token of account {id}"))?)
            }
            None => None,
        };
        Ok(Account {
            id,
            owner: OwnerId::new(self.owner),
            platform: PlatformId::new(self.platform),
            remote_id: self.remote_id,
            handle: p.handle,
            display_name: p.display_name,
            avatar_url: p.avatar_url,
            tokens: TokenSet {
                access_token: konektly_core::AccessToken::new(access),
                refresh_token: refresh.map(konektly_core::RefreshToken::new),
                expires_at: p.expires_at,
                refresh_expires_at: p.refresh_expires_at,
                scopes: p.scopes,
            },
            status: p.status,
            parent: p.parent,
            metadata: p.metadata,
            version: self.version as u64,
            created_at: from_ns(self.created_at_ns),
            updated_at: from_ns(self.updated_at_ns),
        })
    }
}

/// The non-secret part of a pending authorization.
#[derive(Serialize, Deserialize)]
struct StoredPending {
    redirect_uri: Url,
}

pub(crate) struct PendingRow {
    pub state: String,
    pub owner: String,
    pub platform: String,
    pub reconnect: Option<String>,
    pub key_id: String,
    pub pkce_verifier: Option<Vec<u8>>,
    pub body: String,
    pub expires_at_ns: i64,
}

pub(crate) const PENDING_COLS: &str = "state, owner, platform, reconnect, key_id, pkce_verifier, body, expires_at_ns";

impl PendingRow {
    pub fn encode(keys: &KeyRing, p: &PendingAuthorization) -> Result<Self> {
        Ok(Self {
            state: p.state.clone(),
            owner: p.owner.as_str().to_owned(),
            platform: p.platform.as_str().to_owned(),
            reconnect: p.reconnect.map(|a| a.to_string()),
            key_id: keys.newest_id().to_owned(),
            pkce_verifier: p.pkce_verifier.as_ref().map(|v| keys.seal(v.expose().as_bytes(), &pending_aad(&p.state))),
            body: to_json(&StoredPending { redirect_uri: p.redirect_uri.clone() }, "a pending authorization")?,
            expires_at_ns: ns(p.expires_at),
        })
    }

    pub fn decode(self, keys: &KeyRing) -> Result<PendingAuthorization> {
        let body: StoredPending = serde_json::from_str(&self.body).map_err(|e| json_err("pending authorization", e))?;
        let pkce_verifier = match &self.pkce_verifier {
            Some(b) => Some(PkceVerifier::new(keys.open_string(
                b,
                &pending_aad(&self.state),
                "PKCE verifier of a pending authorization",
            )?)),
            None => None,
        };
        Ok(PendingAuthorization {
            reconnect: self.reconnect.as_deref().map(|s| parse_id(s, "account")).transpose()?,
            state: self.state,
            platform: PlatformId::new(self.platform),
            owner: OwnerId::new(self.owner),
            redirect_uri: body.redirect_uri,
            pkce_verifier,
            expires_at: from_ns(self.expires_at_ns),
        })
    }
}

/// The immutable part of a target.
#[derive(Serialize, Deserialize)]
struct StoredBody {
    content: Content,
    #[serde(default)]
    options: TargetOptions,
}

/// A target as stored.
pub(crate) struct TargetRow {
    pub id: String,
    pub post_id: String,
    pub owner: String,
    pub account_id: String,
    pub platform: String,
    pub body: String,
    pub state: String,
    pub state_detail: Option<String>,
    pub due_at_ns: i64,
    pub attempts: i64,
    pub checkpoint: Option<String>,
    pub last_error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_ns: Option<i64>,
    pub fencing: i64,
    pub attempt_started_ns: Option<i64>,
    pub created_at_ns: i64,
    pub updated_at_ns: i64,
    pub claim_kind: Option<String>,
    pub cancel_requested_ns: Option<i64>,
}

pub(crate) const TARGET_COLS: &str = "id, post_id, owner, account_id, platform, body, state, state_detail, due_at_ns, attempts, checkpoint, last_error, lease_owner, lease_expires_ns, fencing, attempt_started_ns, created_at_ns, updated_at_ns, claim_kind, cancel_requested_ns";

/// [`TARGET_COLS`] qualified by a table alias (`t.id, t.post_id, …`).
pub(crate) fn target_cols_of(alias: &str) -> String {
    TARGET_COLS.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// The columns an insert writes (all but `fencing` and `claim_kind`).
pub(crate) const TARGET_INSERT_COLS: &str = "id, post_id, owner, account_id, platform, body, state, state_detail, due_at_ns, attempts, checkpoint, last_error, lease_owner, lease_expires_ns, attempt_started_ns, created_at_ns, updated_at_ns";
pub(crate) const TARGET_INSERT_ARITY: usize = 17;

/// When a target in `state` becomes claimable (see [`konektly_core::lifecycle::claimable_from`]):
/// the `claim_at_ns` of its row in `konektly_queue`, or no row.
pub(crate) fn claim_at(state: &TargetState, due_at: i64, lease_expires: Option<i64>) -> Option<i64> {
    claimable_from(StateName::of(state), due_at, lease_expires, i64::MIN)
}

pub(crate) fn state_detail(state: &TargetState) -> Result<Option<String>> {
    match state {
        TargetState::Published { .. } | TargetState::Failed { .. } | TargetState::Blocked { .. } => {
            to_json(state, "a target state").map(Some)
        }
        _ => Ok(None),
    }
}

impl TargetRow {
    pub fn encode(keys: &KeyRing, r: &TargetRecord) -> Result<Self> {
        let lease_expires_ns = r.lease.as_ref().map(|l| ns(l.expires_at));
        Ok(Self {
            id: r.id.to_string(),
            post_id: r.post_id.to_string(),
            owner: r.owner.as_str().to_owned(),
            account_id: r.account_id.to_string(),
            platform: r.platform.as_str().to_owned(),
            body: to_json(&StoredBody { content: r.content.clone(), options: r.options.clone() }, "a target")?,
            state: r.state.name().to_owned(),
            state_detail: state_detail(&r.state)?,
            due_at_ns: ns(r.due_at),
            attempts: i64::from(r.attempts),
            checkpoint: seal_checkpoint(keys, &r.id, &r.checkpoint)?,
            last_error: r.last_error.as_ref().map(|e| to_json(e, "an error")).transpose()?,
            lease_owner: r.lease.as_ref().map(|l| l.owner.as_str().to_owned()),
            lease_expires_ns,
            fencing: r.lease.as_ref().map_or(0, |l| l.fencing_token as i64),
            attempt_started_ns: r.attempt_started_at.map(ns),
            created_at_ns: ns(r.created_at),
            updated_at_ns: ns(r.updated_at),
            claim_kind: None,
            cancel_requested_ns: r.cancel_requested_at.map(ns),
        })
    }

    pub fn claim_at(&self, r: &TargetRecord) -> Option<i64> {
        claim_at(&r.state, self.due_at_ns, self.lease_expires_ns)
    }

    pub fn decode(self, keys: &KeyRing) -> Result<(TargetRecord, Option<ClaimKind>)> {
        let id: TargetId = parse_id(&self.id, "target")?;
        let body: StoredBody = serde_json::from_str(&self.body).map_err(|e| json_err("target", e))?;
        let state = match StateName::parse(&self.state) {
            Some(StateName::Scheduled) => TargetState::Scheduled,
            Some(StateName::InFlight) => TargetState::InFlight,
            Some(StateName::Processing) => TargetState::Processing,
            Some(StateName::Unknown) => TargetState::Unknown,
            Some(StateName::Cancelled) => TargetState::Cancelled,
            Some(StateName::Published | StateName::Failed | StateName::Blocked) => {
                let detail = self.state_detail.as_deref().unwrap_or("null");
                serde_json::from_str(detail).map_err(|e| json_err("target state", e))?
            }
            None => {
                let other = &self.state;
                return Err(Error::Storage { message: format!("unknown stored target state {other:?}"), source: None });
            }
        };
        let lease = match (self.lease_owner, self.lease_expires_ns) {
            (Some(owner), Some(exp)) => Some(Lease {
                target: id,
                owner: WorkerId::new(owner),
                fencing_token: self.fencing as u64,
                expires_at: from_ns(exp),
            }),
            _ => None,
        };
        let kind = self.claim_kind.as_deref().and_then(ClaimKind::parse);
        let record = TargetRecord {
            id,
            post_id: parse_id::<PostId>(&self.post_id, "post")?,
            owner: OwnerId::new(self.owner),
            account_id: parse_id(&self.account_id, "account")?,
            platform: PlatformId::new(self.platform),
            content: body.content,
            options: body.options,
            due_at: from_ns(self.due_at_ns),
            state,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            checkpoint: open_checkpoint(keys, &id, self.checkpoint.as_deref())?,
            last_error: self
                .last_error
                .as_deref()
                .map(serde_json::from_str::<FailureRecord>)
                .transpose()
                .map_err(|e| json_err("error", e))?,
            lease,
            attempt_started_at: self.attempt_started_ns.map(from_ns),
            cancel_requested_at: self.cancel_requested_ns.map(from_ns),
            created_at: from_ns(self.created_at_ns),
            updated_at: from_ns(self.updated_at_ns),
        };
        Ok((record, kind))
    }
}

/// How a completion changes a target's columns (its [`Transition`], which
/// [`konektly_core::apply_completion`] applies to a record), applied in one guarded `UPDATE`.
pub(crate) struct CompletionPatch {
    pub state: &'static str,
    pub state_detail: Option<String>,
    /// A new due time, or keep the stored one.
    pub due_at_ns: Option<i64>,
    pub attempts: Option<i64>,
    /// 1: replace `last_error` with `last_error`; 0: keep it.
    pub set_error: i64,
    pub last_error: Option<String>,
    /// 1: the target stays claimable at its (new) due time; 0: it is not claimable.
    pub claimable: i64,
}

impl CompletionPatch {
    pub fn new(c: &Completion) -> Result<Self> {
        let t = Transition::of(c);
        let (set_error, last_error) = match &t.last_error {
            ErrorChange::Keep => (0, None),
            ErrorChange::Set(e) => (1, e.as_ref().map(|f| to_json(f, "an error")).transpose()?),
        };
        Ok(Self {
            state: StateName::of(&t.state).as_str(),
            state_detail: state_detail(&t.state)?,
            due_at_ns: t.due_at.map(ns),
            attempts: t.attempts.map(i64::from),
            set_error,
            last_error,
            claimable: i64::from(t.claimable),
        })
    }

    /// Whether workers should be woken (the target is claimable again).
    pub fn wakes(&self) -> bool {
        self.claimable == 1
    }
}

/// The states for which `pred` holds, as an SQL list (`'scheduled', 'blocked'` for
/// [`StateName::cancels_at_once`]): the stores' SQL names states through the lifecycle's rules.
pub(crate) fn states_sql(pred: impl Fn(StateName) -> bool) -> String {
    let names: Vec<String> =
        StateName::ALL.into_iter().filter(|s| pred(*s)).map(|s| format!("'{}'", s.as_str())).collect();
    names.join(", ")
}

/// The guarded completion `UPDATE` of the target row, returning `cols` (same text on both
/// backends); the caller keeps `konektly_queue` in step. A waiting cancel ends a target that the
/// completion leaves in a state it [cancels at once](StateName::cancels_at_once).
pub(crate) fn complete_sql(cols: &str) -> String {
    let cancels = states_sql(StateName::cancels_at_once);
    format!(
        "UPDATE konektly_targets SET state = CASE WHEN cancel_requested_ns IS NOT NULL AND $1 IN ({cancels}) \
         THEN 'cancelled' ELSE $1 END, \
         state_detail = CASE WHEN cancel_requested_ns IS NOT NULL AND $1 IN ({cancels}) THEN NULL ELSE $2 END, \
         due_at_ns = COALESCE($3, due_at_ns), \
         attempts = COALESCE($4, attempts), \
         last_error = CASE WHEN $5 = 1 THEN $6 ELSE last_error END, \
         lease_owner = NULL, lease_expires_ns = NULL, updated_at_ns = $7 \
         WHERE id = $8 AND lease_owner = $9 AND fencing = $10 RETURNING {cols}"
    )
}

/// How the claim `UPDATE` moves a target row (same text on both backends; `$1` owner, `$2` lease
/// expiry, `$3` now), from [`StateName::claim`] and [`StateName::after_claim`]: the claim's kind,
/// the attempt's start for a publish, the state after the claim. Its queue row is marked leased
/// until that expiry.
pub(crate) fn claim_set() -> &'static str {
    static SET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut kind = String::from("CASE state");
        let mut state = String::from("CASE state");
        let mut publish = Vec::new();
        for s in StateName::ALL {
            let Some(k) = s.claim() else { continue };
            kind += &format!(" WHEN '{}' THEN '{}'", s.as_str(), k.as_str());
            if s.after_claim() != s {
                state += &format!(" WHEN '{}' THEN '{}'", s.as_str(), s.after_claim().as_str());
            }
            if k == ClaimKind::Publish {
                publish.push(format!("'{}'", s.as_str()));
            }
        }
        format!(
            "fencing = fencing + 1, lease_owner = $1, lease_expires_ns = $2, claim_kind = {kind} END, \
             attempt_started_ns = CASE WHEN state IN ({}) THEN $3 ELSE attempt_started_ns END, \
             state = {state} ELSE state END, updated_at_ns = $3",
            publish.join(", ")
        )
    });
    &SET
}

/// Lease expiry from now, saturating.
pub(crate) fn expiry(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    now.checked_add_signed(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod lifecycle_sql {
    use super::*;

    #[test]
    fn claim_and_completion_sql_follow_the_lifecycle() {
        assert_eq!(
            claim_set(),
            "fencing = fencing + 1, lease_owner = $1, lease_expires_ns = $2, claim_kind = CASE state WHEN 'scheduled' \
             THEN 'publish' WHEN 'in_flight' THEN 'reconcile' WHEN 'processing' THEN 'poll' WHEN 'unknown' THEN \
             'reconcile' END, attempt_started_ns = CASE WHEN state IN ('scheduled') THEN $3 ELSE attempt_started_ns END, \
             state = CASE state WHEN 'scheduled' THEN 'in_flight' WHEN 'in_flight' THEN 'unknown' ELSE state END, \
             updated_at_ns = $3"
        );
        assert!(complete_sql("id").contains("AND $1 IN ('scheduled', 'blocked') THEN 'cancelled'"));
        assert_eq!(states_sql(StateName::is_final), "'published', 'failed', 'cancelled'");
        assert_eq!(states_sql(StateName::reschedulable), "'scheduled', 'failed', 'blocked', 'cancelled'");
        // The queue's claim time, as before the lifecycle module.
        for (state, due, lease, want) in [
            (TargetState::InFlight, 5, Some(9), Some(9)),
            (TargetState::InFlight, 5, None, Some(i64::MIN)),
            (TargetState::Processing, 5, Some(3), Some(3)),
            (TargetState::Unknown, 5, None, Some(5)),
            (TargetState::Scheduled, 5, Some(3), Some(5)),
            (TargetState::Scheduled, 5, Some(7), Some(7)),
            (TargetState::Cancelled, 5, None, None),
        ] {
            assert_eq!(claim_at(&state, due, lease), want, "{}", state.name());
        }
        for k in [ClaimKind::Publish, ClaimKind::Poll, ClaimKind::Reconcile] {
            assert_eq!(ClaimKind::parse(k.as_str()), Some(k));
        }
    }
}
