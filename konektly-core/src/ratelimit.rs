//! Rate limits as data: budgets a platform declares (TikTok: 6 video inits per minute per
//! token…) and what response headers report (remaining, reset). The engine consults them before
//! each call and defers a target whose budget is spent, instead of collecting a 429.
//!
//! Budgets live in the [`Scheduler`](crate::Scheduler)'s storage, so every process sharing a
//! database respects one limit together.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{AccountId, PlatformId};

/// Whose budget it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// Per connected account (per user token).
    Account,
    /// Per application (shared by every account of the platform).
    App,
}

/// A budget a platform documents: at most `limit` units per `window`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeclaredBudget {
    /// A short name (`video_init`, `creator_info`…).
    pub name: String,
    /// Whose budget.
    pub scope: BudgetScope,
    /// Units per window.
    pub limit: u32,
    /// The window.
    #[serde(with = "crate::model::duration_ms")]
    pub window: Duration,
    /// Units one `publish` call spends.
    pub per_publish: u32,
    /// Units one `poll` call spends.
    pub per_poll: u32,
}

impl DeclaredBudget {
    /// A budget of `limit` per `window`, spent once per publish.
    pub fn per_account(name: impl Into<String>, limit: u32, window: Duration) -> Self {
        Self { name: name.into(), scope: BudgetScope::Account, limit, window, per_publish: 1, per_poll: 0 }
    }

    /// Sets the units spent per publish and per poll.
    pub fn spending(mut self, per_publish: u32, per_poll: u32) -> Self {
        self.per_publish = per_publish;
        self.per_poll = per_poll;
        self
    }

    /// The storage key of this budget for an account.
    pub fn key(&self, platform: &PlatformId, account: AccountId) -> BudgetKey {
        budget_key(platform, self.scope, account, &self.name)
    }
}

/// The storage key of a budget (`<platform>:account:<account>:<name>` or
/// `<platform>:app:<name>`), built only by [`budget_key`] and [`observed_key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BudgetKey(String);

impl BudgetKey {
    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BudgetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The storage key of a budget.
pub fn budget_key(platform: &PlatformId, scope: BudgetScope, account: AccountId, name: &str) -> BudgetKey {
    BudgetKey(match scope {
        BudgetScope::Account => format!("{platform}:account:{account}:{name}"),
        BudgetScope::App => format!("{platform}:app:{name}"),
    })
}

/// The key under which exhausted header-reported buckets block an account or an app.
pub fn observed_key(platform: &PlatformId, scope: BudgetScope, account: AccountId) -> BudgetKey {
    budget_key(platform, scope, account, "observed")
}

/// What a response's headers said about one rate-limit bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimitReport {
    /// Whose bucket.
    pub scope: BudgetScope,
    /// The bucket (an endpoint, `24hour`…), for logs.
    pub bucket: String,
    /// Its size, if reported.
    pub limit: Option<u32>,
    /// What is left.
    pub remaining: u32,
    /// When it fills up again.
    pub reset_at: DateTime<Utc>,
}

/// A fixed-window budget's state, as every store keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetState {
    /// When the current window began.
    pub window_start: Option<DateTime<Utc>>,
    /// Units spent in it.
    pub used: u32,
    /// Set when a platform reported the bucket empty: nothing until then.
    pub blocked_until: Option<DateTime<Utc>>,
}

impl BudgetState {
    /// Tries to spend `cost` units of `limit` per `window` at `now`. Returns `None` when granted
    /// (and records the spending), or the time at which to try again.
    pub fn acquire(&mut self, limit: u32, window: Duration, cost: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Some(until) = self.blocked_until {
            if until > now {
                return Some(until);
            }
            self.blocked_until = None;
        }
        if cost == 0 {
            return None;
        }
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let start = match self.window_start {
            Some(s) if s + window > now => s,
            _ => {
                self.used = 0;
                now
            }
        };
        self.window_start = Some(start);
        if self.used.saturating_add(cost) <= limit {
            self.used += cost;
            None
        } else {
            Some(start + window)
        }
    }

    /// Records a header report: an empty bucket blocks until its reset.
    pub fn observe(&mut self, remaining: u32, reset_at: DateTime<Utc>) {
        if remaining == 0 {
            self.blocked_until = Some(self.blocked_until.map_or(reset_at, |b| b.max(reset_at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_grants_then_defers_until_the_window_ends() {
        let mut s = BudgetState::default();
        let t0 = Utc::now();
        for _ in 0..6 {
            assert_eq!(s.acquire(6, Duration::from_secs(60), 1, t0), None);
        }
        let next = s.acquire(6, Duration::from_secs(60), 1, t0 + chrono::Duration::seconds(10));
        assert_eq!(next, Some(t0 + chrono::Duration::seconds(60)));
        assert_eq!(s.acquire(6, Duration::from_secs(60), 1, t0 + chrono::Duration::seconds(60)), None);
    }

    #[test]
    fn an_empty_reported_bucket_blocks_until_reset() {
        let mut s = BudgetState::default();
        let now = Utc::now();
        let reset = now + chrono::Duration::seconds(30);
        s.observe(0, reset);
        assert_eq!(s.acquire(100, Duration::from_secs(60), 0, now), Some(reset));
        assert_eq!(s.acquire(100, Duration::from_secs(60), 1, reset), None);
    }
}
