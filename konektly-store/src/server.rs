//! What the HTTP server keeps beside the engine's state (issue 16), on both backends: API keys
//! (hashed), webhook endpoints (their signing secrets sealed like tokens), webhook deliveries
//! (one per event and endpoint, claimed with a lease, retried on a schedule the caller gives)
//! and idempotency keys.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use konektly_core::{Error, EventId, OwnerId, PostId, Result, StoredEvent};
use rand::RngCore;
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

use crate::codec::{from_ns, ns, parse_id};
use crate::common::{ReadRow, db_err};
use crate::sql::{Arg, Dialect, SqlStore, args};

/// A secret handed to a person once (an API key, a webhook signing secret): never printed by
/// `Debug`, wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret string.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An API key's record (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiKey {
    /// Its public id (the part of the key before the secret).
    pub id: String,
    /// The owner whose data it reaches; `None` for an admin key.
    pub owner: Option<OwnerId>,
    /// Whether it is an operator's key (every owner's data, key management).
    pub admin: bool,
    /// A name for people.
    pub name: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new API key: its record and the key itself, shown once.
#[derive(Debug)]
pub struct IssuedApiKey {
    /// The record.
    pub key: ApiKey,
    /// `kk_<id>_<secret>`: what a client sends as `Authorization: Bearer …`.
    pub token: Secret,
}

/// A webhook endpoint of an owner.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Webhook {
    /// Its id.
    pub id: String,
    /// Whose events it receives.
    pub owner: OwnerId,
    /// Where they are posted.
    pub url: Url,
    /// The event kinds it receives (`target.published`…); empty: all.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub active: bool,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed until the retry period ended (it can be replayed).
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            other => return Err(Error::Storage { message: format!("unknown delivery state `{other}`"), source: None }),
        })
    }
}

/// One event's delivery to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// Its id (`<event id>:<webhook id>`).
    pub id: String,
    /// The event.
    pub event_id: EventId,
    /// The endpoint.
    pub webhook_id: String,
    /// Whose.
    pub owner: OwnerId,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last answer's status, if one came.
    pub last_status: Option<u16>,
    /// What went wrong last, if anything.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

/// A delivery claimed for an attempt: what to send, where, and how to sign it.
#[derive(Debug)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: Delivery,
    /// The event to send.
    pub event: StoredEvent,
    /// The endpoint.
    pub url: Url,
    /// The endpoint's signing secret (`whsec_…`).
    pub secret: Secret,
    /// The claim: finishing it needs this (a claim that ran out may be taken by another node).
    pub lease: i64,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptResult {
    /// The status the endpoint answered, if it answered.
    pub status: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// Delivered (a 2xx).
    pub delivered: bool,
    /// When to try again; `None` with `delivered == false`: give up (failed).
    pub retry_at: Option<DateTime<Utc>>,
}

/// What an idempotency key says about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyCheck {
    /// First use: the key now names this request and post.
    New,
    /// The same request was made with this key: its post.
    Replay(PostId),
    /// The key was used for a different request.
    Mismatch,
}

fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn webhook_aad(id: &str) -> Vec<u8> {
    format!("konektly/v1/webhook/{id}/secret").into_bytes()
}

pub(crate) async fn create_api_key<S: SqlStore>(
    s: &S,
    owner: Option<&OwnerId>,
    admin: bool,
    name: &str,
) -> Result<IssuedApiKey> {
    if owner.is_none() && !admin {
        return Err(Error::Config("an API key needs an owner unless it is an admin key".into()));
    }
    let id = random_token(9);
    let secret = random_token(32);
    let now = Utc::now();
    let sql =
        "INSERT INTO konektly_api_keys (id, owner, admin, hash, name, created_at_ns) VALUES ($1, $2, $3, $4, $5, $6)";
    let owner_s = owner.map(|o| o.as_str().to_owned());
    let a = args![id.clone(), owner_s, i64::from(admin), sha256_hex(&secret), name, ns(now)];
    S::Db::execute(s.writer(), sql.into(), a).await.map_err(db_err("storing an API key"))?;
    let key = ApiKey {
        id: id.clone(),
        owner: owner.cloned(),
        admin,
        name: name.to_owned(),
        created_at: now,
        revoked_at: None,
    };
    Ok(IssuedApiKey { key, token: Secret::new(format!("kk_{id}_{secret}")) })
}

const KEY_COLS: &str = "id, owner, admin, hash, name, created_at_ns, revoked_at_ns";

fn api_key_of(r: &impl ReadRow) -> Result<(ApiKey, String)> {
    let read = |e| db_err("reading an API key")(e);
    Ok((
        ApiKey {
            id: r.text("id").map_err(read)?,
            owner: r.opt_text("owner").map_err(read)?.map(OwnerId::new),
            admin: r.int("admin").map_err(read)? != 0,
            name: r.text("name").map_err(read)?,
            created_at: from_ns(r.int("created_at_ns").map_err(read)?),
            revoked_at: r.opt_int("revoked_at_ns").map_err(read)?.map(from_ns),
        },
        r.text("hash").map_err(read)?,
    ))
}

/// The key a bearer token names, if it is valid and not revoked.
pub(crate) async fn verify_api_key<S: SqlStore>(s: &S, token: &str) -> Result<Option<ApiKey>> {
    // `kk_<id>_<secret>`; the id and the secret are base64url, which has `_` too: the id has 12
    // characters.
    let Some(rest) = token.strip_prefix("kk_") else { return Ok(None) };
    if rest.len() < 14 || !rest.is_char_boundary(12) || rest.as_bytes()[12] != b'_' {
        return Ok(None);
    }
    let (id, secret) = (&rest[..12], &rest[13..]);
    let sql = format!("SELECT {KEY_COLS} FROM konektly_api_keys WHERE id = $1");
    let Some(row) = S::Db::fetch_optional(s.pool(), sql, args![id]).await.map_err(db_err("reading an API key"))? else {
        return Ok(None);
    };
    let (key, hash) = api_key_of(&row)?;
    Ok((same(&hash, &sha256_hex(secret)) && key.revoked_at.is_none()).then_some(key))
}

pub(crate) async fn list_api_keys<S: SqlStore>(s: &S, owner: Option<&OwnerId>) -> Result<Vec<ApiKey>> {
    let (sql, a) = match owner {
        Some(o) => (
            format!("SELECT {KEY_COLS} FROM konektly_api_keys WHERE owner = $1 ORDER BY created_at_ns, id"),
            args![o.as_str()],
        ),
        None => (format!("SELECT {KEY_COLS} FROM konektly_api_keys ORDER BY created_at_ns, id"), args![]),
    };
    let rows = S::Db::fetch_all(s.pool(), sql, a).await.map_err(db_err("listing API keys"))?;
    rows.iter().map(|r| api_key_of(r).map(|(k, _)| k)).collect()
}

pub(crate) async fn revoke_api_key<S: SqlStore>(s: &S, id: &str) -> Result<bool> {
    let sql = "UPDATE konektly_api_keys SET revoked_at_ns = $1 WHERE id = $2 AND revoked_at_ns IS NULL";
    let n = S::Db::execute(s.writer(), sql.into(), args![ns(Utc::now()), id])
        .await
        .map_err(db_err("revoking an API key"))?;
    Ok(n > 0)
}

pub(crate) async fn create_webhook<S: SqlStore>(
    s: &S,
    owner: &OwnerId,
    url: &Url,
    events: &[String],
) -> Result<(Webhook, Secret)> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!("a webhook URL must be http or https, not `{}`", url.scheme())));
    }
    for e in events {
        if !konektly_core::Event::KINDS.contains(&e.as_str()) {
            return Err(Error::Config(format!(
                "unknown event kind `{e}`; known kinds: {}",
                konektly_core::Event::KINDS.join(", ")
            )));
        }
    }
    let id = format!("wh_{}", random_token(12));
    let secret = Secret::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode({
            let mut b = [0u8; 24];
            rand::rng().fill_bytes(&mut b);
            b
        })
    ));
    let sealed = s.keys().seal(secret.expose().as_bytes(), &webhook_aad(&id));
    let kinds = if events.is_empty() { "*".to_owned() } else { format!(",{},", events.join(",")) };
    let now = Utc::now();
    let sql = "INSERT INTO konektly_webhooks (id, owner, url, events, secret, active, created_at_ns) \
               VALUES ($1, $2, $3, $4, $5, 1, $6)";
    let a = args![id.clone(), owner.as_str(), url.as_str(), kinds, sealed, ns(now)];
    S::Db::execute(s.writer(), sql.into(), a).await.map_err(db_err("storing a webhook"))?;
    let hook =
        Webhook { id, owner: owner.clone(), url: url.clone(), events: events.to_vec(), active: true, created_at: now };
    Ok((hook, secret))
}

const HOOK_COLS: &str = "id, owner, url, events, active, created_at_ns";

fn webhook_of(r: &impl ReadRow) -> Result<Webhook> {
    let read = |e| db_err("reading a webhook")(e);
    let url = r.text("url").map_err(read)?;
    let events = r.text("events").map_err(read)?;
    Ok(Webhook {
        id: r.text("id").map_err(read)?,
        owner: OwnerId::new(r.text("owner").map_err(read)?),
        url: Url::parse(&url).map_err(|e| Error::storage("a stored webhook URL does not parse", e))?,
        events: events.split(',').filter(|k| !k.is_empty() && *k != "*").map(str::to_owned).collect(),
        active: r.int("active").map_err(read)? != 0,
        created_at: from_ns(r.int("created_at_ns").map_err(read)?),
    })
}

pub(crate) async fn list_webhooks<S: SqlStore>(s: &S, owner: &OwnerId) -> Result<Vec<Webhook>> {
    let sql = format!("SELECT {HOOK_COLS} FROM konektly_webhooks WHERE owner = $1 ORDER BY created_at_ns, id");
    let rows = S::Db::fetch_all(s.pool(), sql, args![owner.as_str()]).await.map_err(db_err("listing webhooks"))?;
    rows.iter().map(webhook_of).collect()
}

pub(crate) async fn delete_webhook<S: SqlStore>(s: &S, owner: &OwnerId, id: &str) -> Result<bool> {
    let mut tx = s.write_tx("deleting a webhook").await?;
    let sql = "DELETE FROM konektly_webhooks WHERE id = $1 AND owner = $2";
    let n = S::Db::tx_execute(&mut tx, sql.into(), args![id, owner.as_str()])
        .await
        .map_err(db_err("deleting a webhook"))?;
    // Its pending deliveries go with it; the delivered ones stay in the log.
    let sql = "DELETE FROM konektly_deliveries WHERE webhook_id = $1 AND state = 'pending'";
    S::Db::tx_execute(&mut tx, sql.into(), args![id]).await.map_err(db_err("deleting a webhook"))?;
    tx.commit().await.map_err(db_err("deleting a webhook"))?;
    Ok(n > 0)
}

const DELIVERY_COLS: &str = "d.id, d.event_id, d.webhook_id, d.owner, d.state, d.attempts, d.next_attempt_ns, \
                             d.last_status, d.last_error, d.delivered_at_ns, d.created_at_ns";

fn delivery_of(r: &impl ReadRow) -> Result<Delivery> {
    let read = |e| db_err("reading a delivery")(e);
    Ok(Delivery {
        id: r.text("id").map_err(read)?,
        event_id: parse_id(&r.text("event_id").map_err(read)?, "an event id")?,
        webhook_id: r.text("webhook_id").map_err(read)?,
        owner: OwnerId::new(r.text("owner").map_err(read)?),
        state: DeliveryState::parse(&r.text("state").map_err(read)?)?,
        attempts: u32::try_from(r.int("attempts").map_err(read)?).unwrap_or(u32::MAX),
        next_attempt_at: r.opt_int("next_attempt_ns").map_err(read)?.map(from_ns),
        last_status: r.opt_int("last_status").map_err(read)?.and_then(|v| u16::try_from(v).ok()),
        last_error: r.opt_text("last_error").map_err(read)?,
        delivered_at: r.opt_int("delivered_at_ns").map_err(read)?.map(from_ns),
        created_at: from_ns(r.int("created_at_ns").map_err(read)?),
    })
}

/// Claims up to `limit` due deliveries for `lease_for`.
pub(crate) async fn claim_deliveries<S: SqlStore>(
    s: &S,
    limit: usize,
    lease_for: Duration,
) -> Result<Vec<DueDelivery>> {
    let now = Utc::now();
    let lease = ns(crate::codec::expiry(now, lease_for));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The outer conditions are checked again on the row a concurrent claim left (PostgreSQL),
    // so two nodes never hold one delivery.
    let sql = "UPDATE konektly_deliveries SET leased_until_ns = $1 WHERE id IN (SELECT id FROM konektly_deliveries \
               WHERE state = 'pending' AND next_attempt_ns <= $2 AND (leased_until_ns IS NULL OR leased_until_ns < $2) \
               ORDER BY next_attempt_ns LIMIT $3) \
               AND state = 'pending' AND (leased_until_ns IS NULL OR leased_until_ns < $2) RETURNING id";
    let rows = S::Db::fetch_all(s.writer(), sql.into(), args![lease, ns(now), limit])
        .await
        .map_err(db_err("claiming webhook deliveries"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id = r.text("id").map_err(db_err("claiming webhook deliveries"))?;
        let sql = format!(
            "SELECT {DELIVERY_COLS}, w.url, w.secret, e.seq, e.body, e.created_at_ns AS event_at \
             FROM konektly_deliveries d JOIN konektly_webhooks w ON w.id = d.webhook_id \
             JOIN konektly_events e ON e.id = d.event_id WHERE d.id = $1"
        );
        let Some(row) =
            S::Db::fetch_optional(s.writer(), sql, args![id]).await.map_err(db_err("reading a delivery"))?
        else {
            continue; // its endpoint was deleted meanwhile
        };
        out.push(due_of(s, &row, lease)?);
    }
    Ok(out)
}

fn due_of<S: SqlStore>(s: &S, r: &impl ReadRow, lease: i64) -> Result<DueDelivery> {
    let read = |e| db_err("reading a delivery")(e);
    let delivery = delivery_of(r)?;
    let sealed = r.bytes("secret").map_err(read)?;
    let secret = s.keys().open_string(&sealed, &webhook_aad(&delivery.webhook_id), "a webhook secret")?;
    let url = r.text("url").map_err(read)?;
    let body = r.text("body").map_err(read)?;
    let event = StoredEvent {
        id: delivery.event_id,
        seq: r.opt_int("seq").map_err(read)?.unwrap_or(0) as u64,
        owner: delivery.owner.clone(),
        at: from_ns(r.int("event_at").map_err(read)?),
        event: serde_json::from_str(&body).map_err(|e| Error::storage("a stored event does not parse", e))?,
    };
    Ok(DueDelivery {
        url: Url::parse(&url).map_err(|e| Error::storage("a stored webhook URL does not parse", e))?,
        secret: Secret::new(secret),
        event,
        delivery,
        lease,
    })
}

/// Records an attempt's result; `false` when the claim had run out (another node took it).
pub(crate) async fn finish_delivery<S: SqlStore>(s: &S, id: &str, lease: i64, result: &AttemptResult) -> Result<bool> {
    let now = ns(Utc::now());
    let state = match (result.delivered, result.retry_at) {
        (true, _) => DeliveryState::Delivered,
        (false, Some(_)) => DeliveryState::Pending,
        (false, None) => DeliveryState::Failed,
    };
    let sql = "UPDATE konektly_deliveries SET state = $1, attempts = attempts + 1, next_attempt_ns = $2, \
               leased_until_ns = NULL, last_status = $3, last_error = $4, delivered_at_ns = $5 \
               WHERE id = $6 AND leased_until_ns = $7";
    let a: Vec<Arg> = args![
        state.as_str(),
        result.retry_at.filter(|_| !result.delivered).map(ns),
        result.status.map(i64::from),
        result.error.clone(),
        result.delivered.then_some(now),
        id,
        lease,
    ];
    let n = S::Db::execute(s.writer(), sql.into(), a).await.map_err(db_err("recording a delivery"))?;
    Ok(n > 0)
}

/// An owner's deliveries, newest first, optionally of one endpoint, before the delivery `before`.
pub(crate) async fn list_deliveries<S: SqlStore>(
    s: &S,
    owner: &OwnerId,
    webhook: Option<&str>,
    limit: usize,
) -> Result<Vec<Delivery>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (sql, a) = match webhook {
        Some(w) => (
            format!(
                "SELECT {DELIVERY_COLS} FROM konektly_deliveries d WHERE d.owner = $1 AND d.webhook_id = $2 \
                 ORDER BY d.created_at_ns DESC, d.id DESC LIMIT $3"
            ),
            args![owner.as_str(), w, limit],
        ),
        None => (
            format!(
                "SELECT {DELIVERY_COLS} FROM konektly_deliveries d WHERE d.owner = $1 \
                 ORDER BY d.created_at_ns DESC, d.id DESC LIMIT $2"
            ),
            args![owner.as_str(), limit],
        ),
    };
    let rows = S::Db::fetch_all(s.pool(), sql, a).await.map_err(db_err("listing deliveries"))?;
    rows.iter().map(delivery_of).collect()
}

/// Makes a delivery of `owner` due again now (a replay); `false` if there is none.
pub(crate) async fn replay_delivery<S: SqlStore>(s: &S, owner: &OwnerId, id: &str) -> Result<bool> {
    let sql = "UPDATE konektly_deliveries SET state = 'pending', next_attempt_ns = $1, leased_until_ns = NULL \
               WHERE id = $2 AND owner = $3";
    let n = S::Db::execute(s.writer(), sql.into(), args![ns(Utc::now()), id, owner.as_str()])
        .await
        .map_err(db_err("replaying a delivery"))?;
    Ok(n > 0)
}

/// When the next pending delivery is due.
pub(crate) async fn next_delivery_at<S: SqlStore>(s: &S) -> Result<Option<DateTime<Utc>>> {
    let sql = "SELECT MIN(next_attempt_ns) AS m FROM konektly_deliveries WHERE state = 'pending'";
    let row = S::Db::fetch_optional(s.pool(), sql.into(), args![]).await.map_err(db_err("reading deliveries"))?;
    Ok(row.map(|r| r.opt_int("m")).transpose().map_err(db_err("reading deliveries"))?.flatten().map(from_ns))
}

/// Pending deliveries (the webhook backlog).
pub(crate) async fn pending_deliveries<S: SqlStore>(s: &S) -> Result<u64> {
    let sql = "SELECT COUNT(*) AS n FROM konektly_deliveries WHERE state = 'pending'";
    let row = S::Db::fetch_optional(s.pool(), sql.into(), args![]).await.map_err(db_err("counting deliveries"))?;
    Ok(row.map(|r| r.int("n")).transpose().map_err(db_err("counting deliveries"))?.unwrap_or(0) as u64)
}

/// Records `key` for `request_hash` and `post` unless it is known; says what it was.
pub(crate) async fn check_idempotency<S: SqlStore>(
    s: &S,
    owner: &OwnerId,
    key: &str,
    request_hash: &str,
    post: PostId,
) -> Result<IdempotencyCheck> {
    let sql = "INSERT INTO konektly_idempotency (owner, key, request_hash, post_id, created_at_ns) \
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    let a = args![owner.as_str(), key, request_hash, post.to_string(), ns(Utc::now())];
    if S::Db::execute(s.writer(), sql.into(), a).await.map_err(db_err("storing an idempotency key"))? > 0 {
        return Ok(IdempotencyCheck::New);
    }
    let sql = "SELECT request_hash, post_id FROM konektly_idempotency WHERE owner = $1 AND key = $2";
    let row = S::Db::fetch_optional(s.writer(), sql.into(), args![owner.as_str(), key])
        .await
        .map_err(db_err("reading an idempotency key"))?
        .ok_or_else(|| Error::Conflict("an idempotency key vanished while it was checked".into()))?;
    let read = |e| db_err("reading an idempotency key")(e);
    let hash = row.text("request_hash").map_err(read)?;
    if hash != request_hash {
        return Ok(IdempotencyCheck::Mismatch);
    }
    Ok(IdempotencyCheck::Replay(parse_id(&row.text("post_id").map_err(read)?, "a post id")?))
}

/// What the HTTP server keeps beside the engine's state, on both durable stores.
#[async_trait::async_trait]
pub trait ServerStore:
    crate::KonektlyStore
    + konektly_core::EventLog
    + konektly_core::queue::QueueStore
    + konektly_core::series::SeriesStore
    + konektly_core::analytics::MetricsStore
{
    /// A new API key for `owner` (or an admin key when `admin` and no owner).
    async fn create_api_key(&self, owner: Option<&OwnerId>, admin: bool, name: &str) -> Result<IssuedApiKey>;
    /// The key a bearer token names, if valid and not revoked.
    async fn verify_api_key(&self, token: &str) -> Result<Option<ApiKey>>;
    /// The keys of `owner`, or all.
    async fn list_api_keys(&self, owner: Option<&OwnerId>) -> Result<Vec<ApiKey>>;
    /// Revokes a key; `false` if there was none to revoke.
    async fn revoke_api_key(&self, id: &str) -> Result<bool>;
    /// A new webhook endpoint and its signing secret (shown once).
    async fn create_webhook(&self, owner: &OwnerId, url: &Url, events: &[String]) -> Result<(Webhook, Secret)>;
    /// An owner's endpoints.
    async fn list_webhooks(&self, owner: &OwnerId) -> Result<Vec<Webhook>>;
    /// Removes an endpoint of `owner` (and its pending deliveries).
    async fn delete_webhook(&self, owner: &OwnerId, id: &str) -> Result<bool>;
    /// Claims due deliveries.
    async fn claim_deliveries(&self, limit: usize, lease_for: Duration) -> Result<Vec<DueDelivery>>;
    /// Records an attempt; `false` if the claim had run out.
    async fn finish_delivery(&self, id: &str, lease: i64, result: &AttemptResult) -> Result<bool>;
    /// An owner's deliveries, newest first.
    async fn list_deliveries(&self, owner: &OwnerId, webhook: Option<&str>, limit: usize) -> Result<Vec<Delivery>>;
    /// Makes a delivery due again now.
    async fn replay_delivery(&self, owner: &OwnerId, id: &str) -> Result<bool>;
    /// When the next pending delivery is due.
    async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>>;
    /// How many deliveries are pending.
    async fn pending_deliveries(&self) -> Result<u64>;
    /// Checks and records an idempotency key.
    async fn check_idempotency(
        &self,
        owner: &OwnerId,
        key: &str,
        request_hash: &str,
        post: PostId,
    ) -> Result<IdempotencyCheck>;
}

macro_rules! impl_server_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl ServerStore for $store {
            async fn create_api_key(&self, owner: Option<&OwnerId>, admin: bool, name: &str) -> Result<IssuedApiKey> {
                create_api_key(self, owner, admin, name).await
            }
            async fn verify_api_key(&self, token: &str) -> Result<Option<ApiKey>> {
                verify_api_key(self, token).await
            }
            async fn list_api_keys(&self, owner: Option<&OwnerId>) -> Result<Vec<ApiKey>> {
                list_api_keys(self, owner).await
            }
            async fn revoke_api_key(&self, id: &str) -> Result<bool> {
                revoke_api_key(self, id).await
            }
            async fn create_webhook(&self, owner: &OwnerId, url: &Url, events: &[String]) -> Result<(Webhook, Secret)> {
                create_webhook(self, owner, url, events).await
            }
            async fn list_webhooks(&self, owner: &OwnerId) -> Result<Vec<Webhook>> {
                list_webhooks(self, owner).await
            }
            async fn delete_webhook(&self, owner: &OwnerId, id: &str) -> Result<bool> {
                delete_webhook(self, owner, id).await
            }
            async fn claim_deliveries(&self, limit: usize, lease_for: Duration) -> Result<Vec<DueDelivery>> {
                claim_deliveries(self, limit, lease_for).await
            }
            async fn finish_delivery(&self, id: &str, lease: i64, result: &AttemptResult) -> Result<bool> {
                finish_delivery(self, id, lease, result).await
            }
            async fn list_deliveries(
                &self,
                owner: &OwnerId,
                webhook: Option<&str>,
                limit: usize,
            ) -> Result<Vec<Delivery>> {
                list_deliveries(self, owner, webhook, limit).await
            }
            async fn replay_delivery(&self, owner: &OwnerId, id: &str) -> Result<bool> {
                replay_delivery(self, owner, id).await
            }
            async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>> {
                next_delivery_at(self).await
            }
            async fn pending_deliveries(&self) -> Result<u64> {
                pending_deliveries(self).await
            }
            async fn check_idempotency(
                &self,
                owner: &OwnerId,
                key: &str,
                request_hash: &str,
                post: PostId,
            ) -> Result<IdempotencyCheck> {
                check_idempotency(self, owner, key, request_hash, post).await
            }
        }
    };
}

impl_server_store!(crate::SqliteStore);
impl_server_store!(crate::PostgresStore);
