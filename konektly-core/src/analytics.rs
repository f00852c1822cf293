//! What happened after publishing (issue 18): a post's and an account's metrics, normalized
//! across platforms with the platform's own numbers kept beside them, and snapshots over time.
//!
//! A metric a platform does not give, dropped or restricts is `None` with a reason in
//! [`PostMetrics::unavailable`] — never an error. Snapshots are taken on a decaying schedule
//! after publishing ([`SNAPSHOT_AFTER`]) by [`Analytics::snapshot_due`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::Konektly;
use crate::error::{Error, Result};
use crate::id::{OwnerId, TargetId};
use crate::lifecycle::StateName;
use crate::model::TargetState;
use crate::scheduler::TargetFilter;

/// A post's metrics at one moment, normalized. Counts the platform does not give are `None`,
/// with the reason in `unavailable`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PostMetrics {
    /// Times shown (X `impression_count`, Graph `impressions`/`views`, YouTube `views`).
    pub impressions: Option<u64>,
    /// Distinct accounts reached, where given.
    pub reach: Option<u64>,
    /// Likes or reactions.
    pub likes: Option<u64>,
    /// Comments or replies.
    pub comments: Option<u64>,
    /// Shares, reposts, retweets and quotes.
    pub shares: Option<u64>,
    /// Saves or bookmarks.
    pub saves: Option<u64>,
    /// Video views.
    pub video_views: Option<u64>,
    /// Total watch time, seconds.
    pub watch_time_secs: Option<u64>,
    /// Average view duration, seconds.
    pub average_view_secs: Option<f64>,
    /// Link clicks, where given.
    pub link_clicks: Option<u64>,
    /// Why a metric is `None` (by field name): not given by the platform, restricted to the
    /// owner, older than the platform keeps it, a scope the user did not grant…
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<String, String>,
    /// The platform's own numbers, as it named them.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub raw: serde_json::Map<String, serde_json::Value>,
    /// The period the figures cover (lifetime when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl PostMetrics {
    /// Marks `field` unavailable for `reason`.
    pub fn unavailable(mut self, field: &str, reason: impl Into<String>) -> Self {
        self.unavailable.insert(field.to_owned(), reason.into());
        self
    }
}

/// An account's metrics at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountMetrics {
    /// Followers or subscribers.
    pub followers: Option<u64>,
    /// Accounts followed.
    pub following: Option<u64>,
    /// Posts or videos published.
    pub posts: Option<u64>,
    /// Total views, where the platform keeps one.
    pub views: Option<u64>,
    /// Why a metric is `None`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<String, String>,
    /// The platform's own numbers.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub raw: serde_json::Map<String, serde_json::Value>,
}

/// One snapshot of a target's metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The target.
    pub target: TargetId,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The figures.
    pub metrics: PostMetrics,
}

/// When snapshots are taken, after publishing: 1 h, 6 h, 24 h, 7 days, 30 days.
pub const SNAPSHOT_AFTER: [Duration; 5] = [
    Duration::from_secs(3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(7 * 24 * 3600),
    Duration::from_secs(30 * 24 * 3600),
];

/// Persistence of snapshots.
#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// Stores a snapshot.
    async fn record_snapshot(&self, snapshot: &Snapshot) -> Result<()>;
    /// A target's snapshots, oldest first.
    async fn snapshots(&self, target: TargetId) -> Result<Vec<Snapshot>>;
}

/// Snapshots in memory.
#[derive(Debug, Default)]
pub struct MemoryMetricsStore(std::sync::Mutex<Vec<Snapshot>>);

#[async_trait]
impl MetricsStore for MemoryMetricsStore {
    async fn record_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(snapshot.clone());
        Ok(())
    }
    async fn snapshots(&self, target: TargetId) -> Result<Vec<Snapshot>> {
        let mut v: Vec<Snapshot> =
            self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|s| s.target == target).cloned().collect();
        v.sort_by_key(|s| s.taken_at);
        Ok(v)
    }
}

/// Metrics over an engine: reads them through each platform's adapter and keeps snapshots.
#[derive(Clone)]
pub struct Analytics {
    engine: Konektly,
    store: std::sync::Arc<dyn MetricsStore>,
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics").finish_non_exhaustive()
    }
}

/// What a snapshot pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotReport {
    /// Snapshots taken.
    pub taken: usize,
    /// Targets whose platform gives no metrics (or not through this API).
    pub not_supported: usize,
    /// Targets whose account must grant more (a scope): not retried until it does.
    pub needs_scope: usize,
    /// Other failures (tried again at the next pass).
    pub failed: usize,
}

impl Analytics {
    /// Analytics of `engine`'s targets, snapshots kept in `store`.
    pub fn new(engine: Konektly, store: std::sync::Arc<dyn MetricsStore>) -> Self {
        Self { engine, store }
    }

    /// A published target's metrics now, read from its platform (not stored).
    pub async fn post_metrics(&self, owner: &OwnerId, target: TargetId) -> Result<PostMetrics> {
        let t = self
            .engine
            .scheduler()
            .get(target)
            .await?
            .filter(|t| &t.owner == owner)
            .ok_or_else(|| Error::NotFound(format!("target {target}")))?;
        let TargetState::Published { remote } = &t.state else {
            return Err(Error::Conflict(format!("target {target} is not published ({})", t.state.name())));
        };
        let platform = self.engine.platform(&t.platform)?;
        let account = self.engine.tokens().fresh_account(t.account_id).await?;
        match platform.post_metrics(&account, remote).await {
            // A token refused before its expiry (revoked and re-granted, rotated elsewhere):
            // refreshed once, like a publish.
            Err(Error::AccessTokenRejected { .. }) => {
                let account = self.engine.tokens().force_refresh(&account).await?;
                platform.post_metrics(&account, remote).await
            }
            other => other,
        }
    }

    /// An account's metrics now.
    pub async fn account_metrics(&self, owner: &OwnerId, account: crate::id::AccountId) -> Result<AccountMetrics> {
        let a = self.engine.owner(owner).account(account).await?;
        let platform = self.engine.platform(&a.platform)?;
        let a = self.engine.tokens().fresh_account(a.id).await?;
        platform.account_metrics(&a).await
    }

    /// A target's stored snapshots, oldest first.
    pub async fn series(&self, owner: &OwnerId, target: TargetId) -> Result<Vec<Snapshot>> {
        match self.engine.scheduler().get(target).await? {
            Some(t) if &t.owner == owner => self.store.snapshots(target).await,
            _ => Err(Error::NotFound(format!("target {target}"))),
        }
    }

    /// Takes the snapshots that are due at `now`: for each published target, the next point of
    /// [`SNAPSHOT_AFTER`] after it was published that has no snapshot yet (only the latest due
    /// point: a target found days late gets one snapshot, not five).
    pub async fn snapshot_due(&self, now: DateTime<Utc>) -> Result<SnapshotReport> {
        let mut report = SnapshotReport::default();
        let published =
            self.engine.scheduler().list(&TargetFilter::default().with_states(&[StateName::Published])).await?;
        for t in published {
            let TargetState::Published { remote } = &t.state else { continue };
            // The latest point of the schedule that has passed; a snapshot after it means done.
            let published_at = t.updated_at;
            let Some(point) = SNAPSHOT_AFTER
                .iter()
                .filter_map(|d| chrono::Duration::from_std(*d).ok())
                .map(|d| published_at + d)
                .filter(|at| *at <= now)
                .max()
            else {
                continue;
            };
            let taken = self.store.snapshots(t.id).await?;
            if taken.last().is_some_and(|s| s.taken_at >= point) {
                continue;
            }
            let Ok(platform) = self.engine.platform(&t.platform) else { continue };
            let account = match self.engine.tokens().fresh_account(t.account_id).await {
                Ok(a) => a,
                Err(_) => {
                    report.failed += 1;
                    continue;
                }
            };
            match platform.post_metrics(&account, remote).await {
                Ok(metrics) => {
                    self.store.record_snapshot(&Snapshot { target: t.id, taken_at: now, metrics }).await?;
                    report.taken += 1;
                }
                Err(Error::NotSupported(_)) => report.not_supported += 1,
                Err(Error::ReauthRequired { .. }) => report.needs_scope += 1,
                Err(e) => {
                    tracing::info!(target: "konektly::analytics", target_id = %t.id, error = %e, "reading metrics failed; tried again later");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}
