//! Webhook delivery: the Standard Webhooks convention (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` with the
//! endpoint's `whsec_` secret), at least once, retried with exponential backoff (with jitter)
//! for [`DispatchConfig::retry_for`], every attempt in the delivery log.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use konektly_core::{Result, StoredEvent};
use konektly_store::{AttemptResult, DueDelivery, ServerStore};
use serde::Serialize;
use sha2::Sha256;

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// How long a failing delivery is retried before it is marked failed (default 26 h: at
    /// least a day, as receivers expect).
    pub retry_for: Duration,
    /// The first retry's delay; each next one doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// One attempt's timeout.
    pub timeout: Duration,
    /// Deliveries claimed per round.
    pub batch: usize,
    /// How often to look for due deliveries when idle.
    pub idle_poll: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            retry_for: Duration::from_secs(26 * 3600),
            first_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            timeout: Duration::from_secs(15),
            batch: 32,
            idle_poll: Duration::from_millis(250),
        }
    }
}

/// The JSON body of a delivery: the event, its id and kind.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// The event's id (also `webhook-id`): de-duplicate on it.
    pub id: String,
    /// Its kind (`target.published`…).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Its place in the event log.
    pub seq: u64,
    /// What happened.
    pub data: &'a konektly_core::Event,
}

/// The body sent for `event`.
pub fn body_of(event: &StoredEvent) -> Vec<u8> {
    let body = WebhookBody {
        id: event.id.to_string(),
        kind: event.event.kind(),
        timestamp: event.at,
        seq: event.seq,
        data: &event.event,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `v1,<signature>` of `body` for message `id` at `timestamp` (Unix seconds) with `secret`
/// (`whsec_<base64>`; a secret without the prefix is used as it is).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Checks a delivery as a receiver would: the signature over the id, timestamp and body, and a
/// timestamp within `tolerance` of now. For receivers written in Rust, and the tests.
pub fn verify(secret: &str, id: &str, timestamp: &str, signatures: &str, body: &[u8], tolerance: Duration) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else { return false };
    if (Utc::now().timestamp() - ts).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    let want = sign(secret, id, ts, body);
    signatures
        .split(' ')
        .any(|s| s.len() == want.len() && s.bytes().zip(want.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0)
}

/// When attempt `attempts + 1` should follow a failure, or `None` once `retry_for` has passed
/// since the delivery was queued.
pub fn next_attempt(
    cfg: &DispatchConfig,
    attempts: u32,
    queued_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let exp = cfg.first_backoff.saturating_mul(1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX));
    let base = exp.min(cfg.max_backoff);
    // Up to a fifth more, so that endpoints that fail together are not retried in step.
    let jitter = base.mul_f64(rand_fraction() * 0.2);
    let at = now + chrono::Duration::from_std(base + jitter).ok()?;
    let give_up = queued_at + chrono::Duration::from_std(cfg.retry_for).ok()?;
    (now < give_up).then(|| at.min(give_up))
}

fn rand_fraction() -> f64 {
    let n = uuid::Uuid::new_v4().as_u128() as u64;
    (n >> 11) as f64 / (1u64 << 53) as f64
}

/// Makes one attempt of `d`.
pub async fn attempt(http: &reqwest::Client, cfg: &DispatchConfig, d: &DueDelivery) -> AttemptResult {
    let body = body_of(&d.event);
    let ts = Utc::now().timestamp();
    let id = d.event.id.to_string();
    let sent = http
        .post(d.url.clone())
        .timeout(cfg.timeout)
        .header("content-type", "application/json")
        .header("user-agent", concat!("konektly-webhooks/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sign(d.secret.expose(), &id, ts, &body))
        .body(body)
        .send()
        .await;
    let now = Utc::now();
    let retry = || next_attempt(cfg, d.delivery.attempts, d.delivery.created_at, now);
    match sent {
        Ok(r) if r.status().is_success() => {
            AttemptResult { status: Some(r.status().as_u16()), error: None, delivered: true, retry_at: None }
        }
        Ok(r) => AttemptResult {
            status: Some(r.status().as_u16()),
            error: Some(format!("the endpoint answered {}", r.status())),
            delivered: false,
            retry_at: retry(),
        },
        Err(e) => AttemptResult {
            status: None,
            error: Some(if e.is_timeout() { "timed out".into() } else { e.without_url().to_string() }),
            delivered: false,
            retry_at: retry(),
        },
    }
}

/// One round: claims due deliveries and attempts them concurrently; returns how many.
pub async fn dispatch_once(
    store: &Arc<dyn ServerStore>,
    http: &reqwest::Client,
    cfg: &DispatchConfig,
) -> Result<usize> {
    // Long enough for the attempt and recording its result; short enough that a delivery
    // claimed by a node that died is taken up again soon (a second of it is at least once).
    let lease = cfg.timeout * 2 + Duration::from_secs(5);
    let due = store.claim_deliveries(cfg.batch, lease).await?;
    let n = due.len();
    let results = futures_util::future::join_all(due.iter().map(|d| attempt(http, cfg, d))).await;
    for (d, r) in due.iter().zip(results) {
        if !r.delivered {
            tracing::info!(target: "konektly::webhooks", delivery = %d.delivery.id, error = r.error.as_deref().unwrap_or(""), "webhook delivery failed");
        }
        if !store.finish_delivery(&d.delivery.id, d.lease, &r).await? {
            tracing::warn!(target: "konektly::webhooks", delivery = %d.delivery.id, "the delivery's claim ran out before its result was recorded");
        }
    }
    Ok(n)
}
