//! The `MetricsStore` of both backends: one row per snapshot of a target's metrics (issue 18).

use konektly_core::analytics::{MetricsStore, Snapshot};
use konektly_core::{Error, Result, TargetId};

use crate::codec::{from_ns, ns, to_json};
use crate::common::{ReadRow, db_err};
use crate::sql::{Dialect, SqlStore, args};

pub(crate) async fn record<S: SqlStore>(s: &S, snap: &Snapshot) -> Result<()> {
    let sql = "INSERT INTO konektly_metric_snapshots (target_id, taken_at_ns, body) VALUES ($1, $2, $3) \
               ON CONFLICT DO NOTHING";
    let a = args![snap.target.to_string(), ns(snap.taken_at), to_json(&snap.metrics, "metrics")?];
    S::Db::execute(s.writer(), sql.into(), a).await.map_err(db_err("storing a metrics snapshot"))?;
    Ok(())
}

pub(crate) async fn list<S: SqlStore>(s: &S, target: TargetId) -> Result<Vec<Snapshot>> {
    let sql = "SELECT taken_at_ns, body FROM konektly_metric_snapshots WHERE target_id = $1 ORDER BY taken_at_ns";
    let rows =
        S::Db::fetch_all(s.pool(), sql.into(), args![target.to_string()]).await.map_err(db_err("reading snapshots"))?;
    rows.iter()
        .map(|r| {
            let body = r.text("body").map_err(db_err("reading a snapshot"))?;
            Ok(Snapshot {
                target,
                taken_at: from_ns(r.int("taken_at_ns").map_err(db_err("reading a snapshot"))?),
                metrics: serde_json::from_str(&body)
                    .map_err(|e| Error::storage("a stored snapshot does not parse", e))?,
            })
        })
        .collect()
}

macro_rules! impl_metrics_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl MetricsStore for $store {
            async fn record_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
                record(self, snapshot).await
            }
            async fn snapshots(&self, target: TargetId) -> Result<Vec<Snapshot>> {
                list(self, target).await
            }
        }
    };
}

impl_metrics_store!(crate::SqliteStore);
impl_metrics_store!(crate::PostgresStore);
