//! SQLite: one file (WAL) or memory. Claims are one `UPDATE … RETURNING` (SQLite has one writer
//! at a time, so a claim is exclusive across connections and processes); idle workers wake on
//! an in-process notification or an adaptive poll that notices other processes' work.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use konektly_core::ratelimit::BudgetKey;
use konektly_core::ratelimit::BudgetState;
use konektly_core::{
    AccountId, BudgetSpend, Checkpoint, ClaimKind, ClaimRequest, Claimed, Completion, Error, Lease, LeaseWrite, Result,
    Scheduler, TargetFilter, TargetId, TargetRecord,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row as _};
use tokio::sync::Notify;

use crate::codec::{TARGET_COLS, claim_set, expiry, from_ns, ns};
use crate::common::{db_err, impl_common, target_row};
use crate::crypto::KeyRing;
use crate::migrations;

/// Accounts, tokens (encrypted) and the publishing queue in SQLite: the embedded default for one
/// machine. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    /// Readers.
    pub(crate) pool: SqlitePool,
    /// The one connection that writes: writers of this process queue here instead of spinning
    /// on SQLite's busy handler (other processes still meet the busy timeout).
    pub(crate) writer: SqlitePool,
    pub(crate) keys: Arc<KeyRing>,
    notify: Arc<Notify>,
    peeks: Arc<crate::common::PeekCache>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database file at `path` in WAL mode and applies the
    /// migrations. Several processes may open the same file.
    pub async fn open(path: impl AsRef<Path>, keys: KeyRing) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        let fail = |e| Error::storage(format!("cannot open the SQLite database {}", path.as_ref().display()), e);
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await.map_err(fail)?;
        migrate(&writer).await?;
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await.map_err(fail)?;
        Ok(Self::assemble(pool, writer, keys))
    }

    /// A private database in memory (tests, examples): gone when the store is dropped.
    pub async fn in_memory(keys: KeyRing) -> Result<Self> {
        let opts =
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| Error::storage("bad SQLite options", e))?;
        // One connection that is never closed: a memory database lives as long as it does.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await
            .map_err(|e| Error::storage("cannot open an in-memory SQLite database", e))?;
        migrate(&pool).await?;
        Ok(Self::assemble(pool.clone(), pool, keys))
    }

    fn assemble(pool: SqlitePool, writer: SqlitePool, keys: KeyRing) -> Self {
        Self { pool, writer, keys: Arc::new(keys), notify: Arc::new(Notify::new()), peeks: Arc::default() }
    }

    /// The key ring in use.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Records many outcomes in one transaction (each still guarded by its own lease); see
    /// [`Scheduler::complete_many`].
    pub async fn complete_many(&self, items: &[(Lease, Completion)]) -> Result<Vec<Result<()>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(items.len());
        let mut wake = false;
        let now = ns(Utc::now());
        let mut tx = self.write_tx("a batch of outcomes").await?;
        let (mut done, mut again) = (Vec::new(), Vec::new());
        for (lease, c) in items {
            let p = crate::codec::CompletionPatch::new(c)?;
            let cols = "id, due_at_ns, platform, state, post_id, owner, claim_kind";
            out.push(match complete_in(&mut tx, lease, &p, now, cols).await? {
                Some(r) => {
                    if let Some((owner, event)) = crate::outbox::completion_event(&r, c)? {
                        crate::outbox::insert_tx(&mut tx, &owner, &[event]).await?;
                    }
                    let id: String = r.try_get(0).map_err(db_err("recording an outcome"))?;
                    let state: String = r.try_get(3).map_err(db_err("recording an outcome"))?;
                    // A requested cancel may have ended it (see `complete_sql`).
                    if p.wakes() && state != "cancelled" {
                        wake = true;
                        let due: i64 = r.try_get(1).map_err(db_err("recording an outcome"))?;
                        again.push((id, due, r.try_get(2).map_err(db_err("recording an outcome"))?));
                    } else {
                        done.push(id);
                    }
                    Ok(())
                }
                None => Err(Error::LeaseLost(lease.target)),
            });
        }
        requeue(&mut tx, &done, &again).await?;
        tx.commit().await.map_err(db_err("committing a batch of outcomes"))?;
        if wake {
            self.wake().await;
        }
        Ok(out)
    }

    /// Lease writes in one transaction (see [`Scheduler::write_leases`]): SQLite has one
    /// writer, so the batch costs one lock and one commit instead of one each.
    pub async fn write_leases(&self, writes: &[LeaseWrite]) -> Result<Vec<Result<Lease>>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let mut sealed = Vec::with_capacity(writes.len());
        for w in writes {
            sealed.push(match &w.checkpoint {
                Some(c) => crate::codec::seal_checkpoint(&self.keys, &w.lease.target, c)?,
                None => None,
            });
        }
        let mut tx = self.write_tx("lease writes").await?;
        let mut out = Vec::with_capacity(writes.len());
        for (w, cp) in writes.iter().zip(sealed) {
            let exp = w.extend.map(|d| ns(expiry(now, d)));
            let done = sqlx::query(
                "UPDATE konektly_targets SET lease_expires_ns = COALESCE($1, lease_expires_ns), \
                 checkpoint = CASE WHEN $5 = 1 THEN $6 ELSE checkpoint END, \
                 updated_at_ns = CASE WHEN $5 = 1 THEN $7 ELSE updated_at_ns END \
                 WHERE id = $2 AND lease_owner = $3 AND fencing = $4",
            )
            .bind(exp)
            .bind(w.lease.target.to_string())
            .bind(w.lease.owner.as_str())
            .bind(w.lease.fencing_token as i64)
            .bind(i64::from(w.checkpoint.is_some()))
            .bind(cp)
            .bind(ns(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err("writing a lease"))?;
            if done.rows_affected() == 0 {
                out.push(Err(Error::LeaseLost(w.lease.target)));
                continue;
            }
            let mut lease = w.lease.clone();
            if let Some(exp) = exp {
                sqlx::query("UPDATE konektly_queue SET leased_until_ns = $1 WHERE id = $2")
                    .bind(exp)
                    .bind(w.lease.target.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("extending a lease"))?;
                lease.expires_at = crate::codec::from_ns(exp);
            }
            out.push(Ok(lease));
        }
        tx.commit().await.map_err(db_err("committing lease writes"))?;
        Ok(out)
    }

    /// A write transaction, taking the write lock at once (no deferred upgrade to fail).
    async fn write_tx(&self, what: &str) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| Error::storage(format!("database error while starting {what}"), e))
    }

    fn notify_statement(&self) -> Option<(&'static str, String)> {
        None
    }

    async fn wake(&self) {
        self.notify.notify_waiters();
        // Also leaves a permit, so a worker about to wait does not miss it.
        self.notify.notify_one();
    }
}

/// Records one outcome's target row inside `tx`, returning `cols` of it; `None` when the lease
/// is stale. The caller keeps the queue in step ([`requeue`]).
async fn complete_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    lease: &Lease,
    p: &crate::codec::CompletionPatch,
    now: i64,
    cols: &str,
) -> Result<Option<sqlx::sqlite::SqliteRow>> {
    sqlx::query(AssertSqlSafe(crate::codec::complete_sql(cols)))
        .bind(p.state)
        .bind(p.state_detail.clone())
        .bind(p.due_at_ns)
        .bind(p.attempts)
        .bind(p.set_error)
        .bind(p.last_error.clone())
        .bind(now)
        .bind(lease.target.to_string())
        .bind(lease.owner.as_str())
        .bind(lease.fencing_token as i64)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err("recording an outcome"))
}

/// Keeps the queue in step with recorded outcomes: `done` targets leave it, `again` ones
/// (id, due time, platform) are claimable at their due time.
async fn requeue(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    done: &[String],
    again: &[(String, i64, String)],
) -> Result<()> {
    let json = |v: serde_json::Value| v.to_string();
    if !done.is_empty() {
        sqlx::query("DELETE FROM konektly_queue WHERE id IN (SELECT value FROM json_each($1))")
            .bind(json(serde_json::json!(done)))
            .execute(&mut **tx)
            .await
            .map_err(db_err("updating the queue"))?;
    }
    if !again.is_empty() {
        sqlx::query(
            "INSERT INTO konektly_queue (id, claim_at_ns, platform) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') \
             FROM json_each($1) WHERE true \
             ON CONFLICT (id) DO UPDATE SET claim_at_ns = excluded.claim_at_ns, leased_until_ns = NULL",
        )
        .bind(json(serde_json::json!(again)))
        .execute(&mut **tx)
        .await
        .map_err(db_err("updating the queue"))?;
    }
    Ok(())
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err("starting the migrations"))?;
    migrations::apply(&mut tx, migrations::SQLITE).await?;
    tx.commit().await.map_err(db_err("committing the migrations"))?;
    Ok(())
}

impl_common!(SqliteStore);

impl crate::sql::SqlStore for SqliteStore {
    type Db = sqlx::Sqlite;
    fn pool(&self) -> &sqlx::Pool<Self::Db> {
        &self.pool
    }
    fn writer(&self) -> &sqlx::Pool<Self::Db> {
        &self.writer
    }
    fn keys(&self) -> &KeyRing {
        &self.keys
    }
    fn write_tx(
        &self,
        what: &str,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>>> + Send {
        SqliteStore::write_tx(self, what)
    }
    fn notify_statement(&self) -> Option<(&'static str, String)> {
        SqliteStore::notify_statement(self)
    }
    fn lock_statement(&self, _key: i64) -> Option<String> {
        None
    }
    fn wake(&self) -> impl std::future::Future<Output = ()> + Send {
        SqliteStore::wake(self)
    }
    fn peeks(&self) -> &crate::common::PeekCache {
        &self.peeks
    }
}

#[async_trait]
impl Scheduler for SqliteStore {
    async fn enqueue(&self, targets: &[TargetRecord]) -> Result<usize> {
        let n = crate::targets::enqueue_rows(self, targets).await?;
        if n > 0 {
            self.wake().await;
        }
        Ok(n)
    }

    async fn get(&self, id: TargetId) -> Result<Option<TargetRecord>> {
        crate::targets::get_row(self, id).await
    }

    async fn list(&self, filter: &TargetFilter) -> Result<Vec<TargetRecord>> {
        crate::targets::list_rows(self, filter).await
    }

    async fn cancel(&self, id: TargetId) -> Result<TargetRecord> {
        crate::targets::cancel_row(self, id).await
    }

    async fn reschedule(&self, id: TargetId, at: DateTime<Utc>) -> Result<TargetRecord> {
        crate::targets::reschedule_row(self, id, at).await
    }

    async fn update_published(&self, id: TargetId, remote: &konektly_core::RemotePost) -> Result<TargetRecord> {
        crate::targets::update_published_row(self, id, remote).await
    }

    async fn claim(&self, req: &ClaimRequest) -> Result<Vec<Claimed>> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let exp = ns(expiry(req.now, req.lease_for));
        let now = ns(req.now);
        let mut filters = String::new();
        let mut args: Vec<String> = Vec::new();
        let mut next = 4;
        for (col, list) in [
            ("platform", req.platforms.as_ref().map(|p| p.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
            ("id", req.only.as_ref().map(|ids| ids.iter().map(|i| i.to_string()).collect())),
        ] {
            if let Some(list) = list {
                if list.is_empty() {
                    return Ok(Vec::new());
                }
                let ph: Vec<String> = (0..list.len()).map(|i| format!("${}", next + i)).collect();
                next += list.len();
                filters.push_str(&format!(" AND {col} IN ({})", ph.join(", ")));
                args.extend(list);
            }
        }
        // One writer: the queue rows move to the lease's expiry, then their targets are leased.
        let mut tx = self.write_tx("a claim").await?;
        let sql = format!(
            "UPDATE konektly_queue SET leased_until_ns = $1 WHERE id IN (SELECT id FROM konektly_queue \
             WHERE claim_at_ns <= $2 AND (leased_until_ns IS NULL OR leased_until_ns <= $2){filters} \
             ORDER BY claim_at_ns, id LIMIT $3) RETURNING id"
        );
        let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql))
            .bind(exp)
            .bind(now)
            .bind(i64::try_from(req.limit).unwrap_or(i64::MAX));
        for a in args {
            q = q.bind(a);
        }
        let ids = q.fetch_all(&mut *tx).await.map_err(db_err("claiming targets"))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let claim_set = claim_set();
        let sql = format!(
            "UPDATE konektly_targets SET {claim_set} WHERE id IN (SELECT value FROM json_each($4)) RETURNING {TARGET_COLS}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(req.worker.as_str())
            .bind(exp)
            .bind(now)
            .bind(serde_json::to_string(&ids).map_err(|e| Error::storage("claimed ids do not serialize", e))?)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("claiming targets"))?;
        if rows.len() < ids.len() {
            // Queue rows whose target was deleted meanwhile: drop them.
            sqlx::query(
                "DELETE FROM konektly_queue WHERE id IN (SELECT value FROM json_each($1)) \
                 AND id NOT IN (SELECT id FROM konektly_targets)",
            )
            .bind(serde_json::to_string(&ids).map_err(|e| Error::storage("claimed ids do not serialize", e))?)
            .execute(&mut *tx)
            .await
            .map_err(db_err("dropping orphaned queue rows"))?;
        }
        tx.commit().await.map_err(db_err("committing a claim"))?;
        claimed_from_rows(&self.keys, rows.iter().map(target_row).collect::<Result<Vec<_>>>()?)
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease> {
        crate::targets::heartbeat_row(self, lease, extend, None).await
    }

    async fn save_checkpoint_renewing(
        &self,
        lease: &Lease,
        checkpoint: &Checkpoint,
        extend: Duration,
    ) -> Result<Lease> {
        crate::targets::heartbeat_row(self, lease, extend, Some(checkpoint)).await
    }

    async fn save_checkpoint(&self, lease: &Lease, checkpoint: &Checkpoint) -> Result<()> {
        crate::targets::checkpoint_row(self, lease, checkpoint).await
    }

    async fn write_leases(&self, writes: &[LeaseWrite]) -> Result<Vec<Result<Lease>>> {
        SqliteStore::write_leases(self, writes).await
    }

    async fn complete(&self, lease: &Lease, completion: &Completion) -> Result<TargetRecord> {
        let p = crate::codec::CompletionPatch::new(completion)?;
        let mut tx = self.write_tx("an outcome").await?;
        let Some(row) = complete_in(&mut tx, lease, &p, ns(Utc::now()), TARGET_COLS).await? else {
            return Err(Error::LeaseLost(lease.target));
        };
        if let Some((owner, event)) = crate::outbox::completion_event(&row, completion)? {
            crate::outbox::insert_tx(&mut tx, &owner, &[event]).await?;
        }
        let row = target_row(&row)?;
        let wakes = p.wakes() && row.state != "cancelled";
        if wakes {
            requeue(&mut tx, &[], &[(row.id.clone(), row.due_at_ns, row.platform.clone())]).await?;
        } else {
            requeue(&mut tx, std::slice::from_ref(&row.id), &[]).await?;
        }
        let record = row.decode(&self.keys)?.0;
        tx.commit().await.map_err(db_err("committing an outcome"))?;
        if wakes {
            self.wake().await;
        }
        Ok(record)
    }

    async fn complete_many(&self, items: &[(Lease, Completion)]) -> Result<Vec<Result<()>>> {
        SqliteStore::complete_many(self, items).await
    }

    async fn unblock_account(&self, account: AccountId, at: DateTime<Utc>) -> Result<usize> {
        crate::targets::unblock_rows(self, account, at).await
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        crate::targets::next_due_row(self).await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        // In-process wake-ups are immediate; work from other processes is noticed by polling,
        // quickly at first and less often the longer nothing comes.
        let deadline = tokio::time::Instant::now() + timeout;
        let notified = self.notify.notified();
        tokio::pin!(notified);
        let mut interval = Duration::from_millis(5);
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return;
            }
            let nap = interval.min(deadline - now);
            tokio::select! {
                _ = &mut notified => return,
                _ = tokio::time::sleep(nap) => {}
            }
            if let Ok(Some(t)) = crate::targets::next_due_row(self).await
                && t <= Utc::now()
            {
                return;
            }
            interval = (interval * 2).min(Duration::from_millis(200));
        }
    }

    async fn delete(&self, filter: &TargetFilter) -> Result<usize> {
        crate::targets::delete_rows(self, filter).await
    }

    async fn acquire_budget(
        &self,
        key: &BudgetKey,
        limit: u32,
        window: Duration,
        cost: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        if cost == 0 {
            return crate::targets::peek_budget(self, key.as_str(), now).await;
        }
        // A spend is a batch of one: one transaction, the same rules.
        let spend = BudgetSpend { key: key.clone(), limit, window, cost, now };
        let mut out = self.acquire_budgets(std::slice::from_ref(&spend)).await?;
        out.pop()
            .unwrap_or_else(|| Err(Error::Storage { message: "a budget spend got no answer".into(), source: None }))
    }

    async fn acquire_budgets(&self, spends: &[BudgetSpend]) -> Result<Vec<Result<Option<DateTime<Utc>>>>> {
        if spends.is_empty() {
            return Ok(Vec::new());
        }
        // One write transaction for the batch: each key read once, every spend judged in
        // order, each key written once.
        let mut tx = self.write_tx("a budget update").await?;
        let mut states: std::collections::HashMap<&str, BudgetState> = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(spends.len());
        for s in spends {
            let state = match states.entry(s.key.as_str()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let row = sqlx::query(
                        "SELECT window_start_ns, used, blocked_until_ns FROM konektly_budgets WHERE key = $1",
                    )
                    .bind(s.key.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err("reading a budget"))?;
                    e.insert(budget_state(row.as_ref().map(|r| (r.try_get(0), r.try_get(1), r.try_get(2))))?)
                }
            };
            out.push(Ok(state.acquire(s.limit, s.window, s.cost, s.now)));
        }
        for (key, state) in &states {
            write_budget(&mut tx, key, state).await?;
        }
        tx.commit().await.map_err(db_err("committing a budget update"))?;
        Ok(out)
    }

    async fn observe_budget(&self, key: &BudgetKey, remaining: u32, reset_at: DateTime<Utc>) -> Result<()> {
        crate::targets::observe_row(self, key.as_str(), remaining, reset_at).await
    }
}

type BudgetCols = (
    std::result::Result<Option<i64>, sqlx::Error>,
    std::result::Result<i64, sqlx::Error>,
    std::result::Result<Option<i64>, sqlx::Error>,
);

pub(crate) fn budget_state(row: Option<BudgetCols>) -> Result<BudgetState> {
    let Some((ws, used, bu)) = row else { return Ok(BudgetState::default()) };
    let err = db_err("reading a budget");
    Ok(BudgetState {
        window_start: ws.map_err(db_err("reading a budget"))?.map(from_ns),
        used: u32::try_from(used.map_err(db_err("reading a budget"))?).unwrap_or(u32::MAX),
        blocked_until: bu.map_err(err)?.map(from_ns),
    })
}

async fn write_budget(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, key: &str, s: &BudgetState) -> Result<()> {
    sqlx::query(
        "INSERT INTO konektly_budgets (key, window_start_ns, used, blocked_until_ns) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET window_start_ns = excluded.window_start_ns, used = excluded.used, \
         blocked_until_ns = excluded.blocked_until_ns",
    )
    .bind(key)
    .bind(s.window_start.map(ns))
    .bind(i64::from(s.used))
    .bind(s.blocked_until.map(ns))
    .execute(&mut **tx)
    .await
    .map_err(db_err("writing a budget"))?;
    Ok(())
}

/// Claimed rows, oldest due first.
pub(crate) fn claimed_from_rows(keys: &crate::KeyRing, rows: Vec<crate::codec::TargetRow>) -> Result<Vec<Claimed>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (record, kind) = row.decode(keys)?;
        let lease = record.lease.clone().ok_or_else(|| Error::Storage {
            message: format!("a claimed target {} has no lease", record.id),
            source: None,
        })?;
        out.push(Claimed { record, lease, kind: kind.unwrap_or(ClaimKind::Reconcile) });
    }
    out.sort_by_key(|c| (c.record.due_at, c.record.id));
    Ok(out)
}
