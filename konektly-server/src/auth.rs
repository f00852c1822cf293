//! API keys: `Authorization: Bearer kk_…`, each scoped to its owner (an admin key acts for the
//! owner named in `Konektly-Owner`), and a token bucket per key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use konektly_core::OwnerId;
use konektly_store::ApiKey;

use crate::AppState;
use crate::problem::ApiError;

/// The header an admin key names the owner it acts for with.
pub const OWNER_HEADER: &str = "konektly-owner";

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Its key.
    pub key: ApiKey,
    /// The owner it acts for, if any (an admin key without `Konektly-Owner` has none).
    pub owner: Option<OwnerId>,
}

impl Caller {
    /// The owner the request acts for; an admin key must name one.
    pub fn owner(&self) -> Result<&OwnerId, ApiError> {
        self.owner.as_ref().ok_or_else(|| {
            ApiError::bad_request(format!("an admin key acts for an owner: name it in the `{OWNER_HEADER}` header"))
        })
    }

    /// Refuses a key that is not an admin key.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.key.admin { Ok(()) } else { Err(ApiError::forbidden("only an admin key may do this")) }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <API key>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <API key>`"))?;
        let key = state
            .store
            .verify_api_key(token.trim())
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::unauthorized("the API key is unknown or revoked"))?;
        if let Err(wait) = state.limiter.take(&key.id) {
            return Err(ApiError::too_many_requests(wait));
        }
        let named = parts.headers.get(OWNER_HEADER).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
        let owner = match (&key.owner, named) {
            (Some(own), None) => Some(own.clone()),
            (Some(own), Some(n)) if n == own.as_str() => Some(own.clone()),
            (Some(_), Some(_)) => return Err(ApiError::forbidden("this key acts for its own owner only")),
            (None, n) => n.map(OwnerId::new),
        };
        Ok(Caller { key, owner })
    }
}

/// A token bucket per API key: `per_minute` requests, refilled evenly.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per key (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request's token; `Err(seconds)` until one is there.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let cap = f64::from(self.per_minute);
        let rate = cap / 60.0;
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = b.entry(key.to_owned()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_its_capacity_then_refuses_with_a_wait() {
        let l = RateLimiter::new(3);
        assert!(l.take("a").is_ok() && l.take("a").is_ok() && l.take("a").is_ok());
        let wait = l.take("a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.take("b").is_ok(), "per key");
        assert!(RateLimiter::new(0).take("a").is_ok());
    }
}
