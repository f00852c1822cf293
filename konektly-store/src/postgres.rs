//! PostgreSQL: many worker processes on many machines share one database. Claims lock due rows
//! with `FOR UPDATE SKIP LOCKED` in batches inside one statement (no transaction stays open
//! while a worker publishes); idle workers wake on `LISTEN`/`NOTIFY`.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use konektly_core::ratelimit::BudgetKey;
use konektly_core::{
    AccountId, BudgetSpend, Checkpoint, ClaimRequest, Claimed, Completion, Error, Lease, LeaseWrite, Result, Scheduler,
    TargetFilter, TargetId, TargetRecord,
};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row as _};
use tokio::sync::Notify;

use crate::codec::{TARGET_COLS, claim_set, expiry, ns};
use crate::common::{db_err, impl_common, target_row};
use crate::crypto::KeyRing;
use crate::migrations;
use crate::sqlite::{budget_state, claimed_from_rows};

/// The `NOTIFY` channel that wakes idle workers of the queue in `schema` (one per schema, so
/// queues that share a database do not wake each other).
fn channel(schema: Option<&str>) -> String {
    // FNV-1a: stable across processes and versions, short enough for an identifier.
    let h =
        schema.unwrap_or("").bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
    format!("konektly_work_{h:016x}")
}

/// Configures a [`PostgresStore`].
pub struct PostgresStoreBuilder {
    url: String,
    schema: Option<String>,
    max_connections: u32,
    keys: Option<KeyRing>,
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: show only that there is one.
        f.debug_struct("PostgresStoreBuilder")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl PostgresStoreBuilder {
    /// Puts konektly's tables in `schema` (created if missing) instead of the default search path.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The pool size (default 10).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// The token encryption keys (required).
    pub fn keys(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Connects and applies the migrations.
    pub async fn connect(self) -> Result<PostgresStore> {
        let keys = self.keys.ok_or_else(|| Error::Config("a KeyRing is required".into()))?;
        let mut opts = PgConnectOptions::from_str(&self.url)
            .map_err(|_| Error::Config("the PostgreSQL URL does not parse".into()))?;
        if let Some(s) = &self.schema {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(Error::Config(format!("schema name {s:?} must be letters, digits and `_`")));
            }
            opts = opts.options([("search_path", s.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .connect_with(opts)
            .await
            .map_err(|e| Error::storage("cannot connect to PostgreSQL", e))?;
        migrate(&pool, self.schema.as_deref()).await?;
        Ok(PostgresStore {
            writer: pool.clone(),
            pool,
            keys: Arc::new(keys),
            peeks: Arc::default(),
            waker: Arc::new(Waker {
                notify: Notify::new(),
                listener: Mutex::new(None),
                channel: channel(self.schema.as_deref()),
            }),
        })
    }
}

struct Waker {
    notify: Notify,
    channel: String,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Waker {
    fn drop(&mut self) {
        if let Some(h) = self.listener.lock().unwrap().take() {
            h.abort();
        }
    }
}

/// Accounts, tokens (encrypted) and the publishing queue in PostgreSQL: for many worker processes
/// on many machines. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    /// The same pool: PostgreSQL has no single-writer rule.
    pub(crate) writer: PgPool,
    pub(crate) keys: Arc<KeyRing>,
    peeks: Arc<crate::common::PeekCache>,
    waker: Arc<Waker>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// A builder for the database at `url` (`postgres://user@host:5432/db`).
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder { url: url.into(), schema: None, max_connections: 10, keys: None }
    }

    /// Connects to `url` with `keys` and applies the migrations.
    pub async fn connect(url: &str, keys: KeyRing) -> Result<Self> {
        Self::builder(url).keys(keys).connect().await
    }

    /// The key ring in use.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Closes the pool.
    pub async fn close(&self) {
        if let Some(h) = self.waker.listener.lock().unwrap().take() {
            h.abort();
        }
        self.pool.close().await;
    }

    /// The statement that wakes workers from inside a transaction.
    fn notify_statement(&self) -> Option<(&'static str, String)> {
        Some(("SELECT pg_notify($1, '')", self.waker.channel.clone()))
    }

    async fn wake(&self) {
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')").bind(&self.waker.channel).execute(&self.pool).await {
            tracing::warn!(target: "konektly::store", error = %e, "could not notify workers");
        }
    }

    fn ensure_listener(&self) {
        let mut slot = self.waker.listener.lock().unwrap();
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let pool = self.pool.clone();
        let waker = Arc::downgrade(&self.waker);
        let channel = self.waker.channel.clone();
        *slot = Some(tokio::spawn(async move {
            loop {
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(target: "konektly::store", error = %e, "LISTEN connection failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(e) = listener.listen(&channel).await {
                    tracing::warn!(target: "konektly::store", error = %e, "LISTEN failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                loop {
                    match listener.recv().await {
                        Ok(_) => {
                            let Some(w) = waker.upgrade() else { return };
                            w.notify.notify_waiters();
                            w.notify.notify_one();
                        }
                        Err(e) => {
                            tracing::warn!(target: "konektly::store", error = %e, "LISTEN connection lost");
                            break;
                        }
                    }
                }
            }
        }));
    }

    /// A write transaction.
    async fn write_tx(&self, what: &str) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(|e| Error::storage(format!("database error while starting {what}"), e))
    }

    /// Records many outcomes in one statement (each still guarded by its own lease); see
    /// [`Scheduler::complete_many`].
    pub async fn complete_many(&self, items: &[(Lease, Completion)]) -> Result<Vec<Result<()>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.complete_rows(items, "id").await?;
        let mut done = std::collections::HashSet::with_capacity(rows.len());
        for r in rows {
            done.insert(r.try_get::<String, _>(0).map_err(db_err("reading an outcome"))?);
        }
        Ok(items
            .iter()
            .map(|(l, _)| if done.contains(&l.target.to_string()) { Ok(()) } else { Err(Error::LeaseLost(l.target)) })
            .collect())
    }

    /// Lease writes in one statement (see [`Scheduler::write_leases`]): the queue rows are
    /// locked first, in id order (every path takes a target's queue row before its target row),
    /// then the target rows whose lease is current are updated, then the queue rows of those
    /// that were extended.
    pub async fn write_leases(&self, writes: &[LeaseWrite]) -> Result<Vec<Result<Lease>>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let mut ids = Vec::with_capacity(writes.len());
        let mut owners = Vec::with_capacity(writes.len());
        let mut fencings = Vec::with_capacity(writes.len());
        let mut exps: Vec<Option<i64>> = Vec::with_capacity(writes.len());
        let mut has_cps = Vec::with_capacity(writes.len());
        let mut cps: Vec<Option<String>> = Vec::with_capacity(writes.len());
        for w in writes {
            ids.push(w.lease.target.to_string());
            owners.push(w.lease.owner.as_str().to_owned());
            fencings.push(w.lease.fencing_token as i64);
            exps.push(w.extend.map(|d| ns(expiry(now, d))));
            has_cps.push(i64::from(w.checkpoint.is_some()));
            cps.push(match &w.checkpoint {
                Some(c) => crate::codec::seal_checkpoint(&self.keys, &w.lease.target, c)?,
                None => None,
            });
        }
        let rows = sqlx::query(
            "WITH q AS (SELECT id FROM konektly_queue WHERE id = ANY($1) ORDER BY id FOR UPDATE), \
             t AS (UPDATE konektly_targets t SET \
               lease_expires_ns = COALESCE(u.exp, t.lease_expires_ns), \
               checkpoint = CASE WHEN u.has_cp = 1 THEN u.cp ELSE t.checkpoint END, \
               updated_at_ns = CASE WHEN u.has_cp = 1 THEN $7 ELSE t.updated_at_ns END \
               FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::text[]) \
               AS u(id, owner, fencing, exp, has_cp, cp) \
               WHERE t.id = u.id AND t.lease_owner = u.owner AND t.fencing = u.fencing \
               AND (SELECT count(*) FROM q) >= 0 \
               RETURNING t.id, u.exp), \
             k AS (UPDATE konektly_queue k SET leased_until_ns = t.exp FROM t WHERE k.id = t.id AND t.exp IS NOT NULL) \
             SELECT id FROM t",
        )
        .bind(&ids)
        .bind(owners)
        .bind(fencings)
        .bind(&exps)
        .bind(has_cps)
        .bind(cps)
        .bind(ns(now))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("writing leases"))?;
        let mut done = std::collections::HashSet::with_capacity(rows.len());
        for r in rows {
            done.insert(r.try_get::<String, _>(0).map_err(db_err("reading a lease write"))?);
        }
        Ok(writes
            .iter()
            .zip(exps)
            .map(|(w, exp)| {
                if !done.contains(&w.lease.target.to_string()) {
                    return Err(Error::LeaseLost(w.lease.target));
                }
                let mut l = w.lease.clone();
                if let Some(exp) = exp {
                    l.expires_at = crate::codec::from_ns(exp);
                }
                Ok(l)
            })
            .collect())
    }

    /// The statement behind `complete` and `complete_many`, returning `cols` of each recorded
    /// target.
    ///
    /// It deletes the targets' queue rows first (taking them, as every path takes a queue row
    /// before its target row, so a claim never waits on a completion), then updates the target
    /// rows whose lease is current, then puts back in the queue those still claimable (at their
    /// new due time) and those whose lease was stale (as they were).
    async fn complete_rows(&self, items: &[(Lease, Completion)], cols: &str) -> Result<Vec<sqlx::postgres::PgRow>> {
        let mut ids = Vec::with_capacity(items.len());
        let mut owners = Vec::with_capacity(items.len());
        let mut fencings = Vec::with_capacity(items.len());
        let mut states = Vec::with_capacity(items.len());
        let mut details: Vec<Option<String>> = Vec::with_capacity(items.len());
        let mut dues: Vec<Option<i64>> = Vec::with_capacity(items.len());
        let mut attempts: Vec<Option<i64>> = Vec::with_capacity(items.len());
        let mut set_errors = Vec::with_capacity(items.len());
        let mut errors: Vec<Option<String>> = Vec::with_capacity(items.len());
        let mut claimables = Vec::with_capacity(items.len());
        let (mut ev_ids, mut ev_kinds, mut ev_bodies) = (Vec::new(), Vec::new(), Vec::new());
        let mut wake = false;
        for (lease, c) in items {
            let p = crate::codec::CompletionPatch::new(c)?;
            // The event the outcome raises; its post id comes from the row (see the SQL).
            let event = konektly_core::Event::for_completion(
                lease.target,
                konektly_core::PostId::from_uuid(uuid::Uuid::nil()),
                None,
                c,
            );
            ev_ids.push(konektly_core::EventId::new().to_string());
            ev_kinds.push(event.as_ref().map(|e| e.kind().to_owned()));
            ev_bodies.push(event.as_ref().map(|e| crate::codec::to_json(e, "an event")).transpose()?);
            wake |= p.wakes();
            ids.push(lease.target.to_string());
            owners.push(lease.owner.as_str().to_owned());
            fencings.push(lease.fencing_token as i64);
            states.push(p.state.to_owned());
            details.push(p.state_detail);
            dues.push(p.due_at_ns);
            attempts.push(p.attempts);
            set_errors.push(p.set_error);
            errors.push(p.last_error);
            claimables.push(p.claimable);
        }
        let cancels = crate::codec::states_sql(konektly_core::StateName::cancels_at_once);
        let sql = format!(
            "WITH d AS (DELETE FROM konektly_queue WHERE id = ANY($1) RETURNING id, claim_at_ns, platform, leased_until_ns), \
             t AS (UPDATE konektly_targets t SET \
               state = CASE WHEN t.cancel_requested_ns IS NOT NULL AND u.state IN ({cancels}) THEN 'cancelled' ELSE u.state END, \
               state_detail = CASE WHEN t.cancel_requested_ns IS NOT NULL AND u.state IN ({cancels}) THEN NULL ELSE u.detail END, \
               due_at_ns = COALESCE(u.due, t.due_at_ns), attempts = COALESCE(u.attempts, t.attempts), \
               last_error = CASE WHEN u.set_error = 1 THEN u.error ELSE t.last_error END, \
               lease_owner = NULL, lease_expires_ns = NULL, updated_at_ns = $11 \
               FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::text[], $10::int8[], \
               $12::text[], $13::text[], $14::text[]) \
               AS u(id, owner, fencing, state, detail, due, attempts, set_error, error, claimable, ev_id, ev_kind, ev_body) \
               WHERE t.id = u.id AND t.lease_owner = u.owner AND t.fencing = u.fencing \
               AND (SELECT count(*) FROM d) >= 0 \
               RETURNING CASE WHEN t.state = 'cancelled' THEN 0 ELSE u.claimable END AS queue_claimable, \
               u.ev_id, u.ev_kind, u.ev_body, t.owner AS ev_owner, t.post_id AS ev_post, t.state AS ev_state, \
               t.claim_kind AS ev_claim, {}), \
             e AS (INSERT INTO konektly_events (id, owner, kind, body, created_at_ns) \
               SELECT ev_id, ev_owner, CASE WHEN ev_state = 'cancelled' THEN 'target.cancelled' ELSE ev_kind END, \
               CASE WHEN ev_state = 'cancelled' THEN json_build_object('event', 'cancelled', 'target', id, 'post', ev_post)::text \
                 WHEN ev_body::jsonb ? 'post' THEN jsonb_set(ev_body::jsonb, '{{post}}', to_jsonb(ev_post))::text \
                 ELSE ev_body END, $11 \
               FROM t WHERE ev_state = 'cancelled' OR (ev_kind IS NOT NULL \
                 AND NOT (ev_kind = 'target.processing' AND ev_claim IS NOT DISTINCT FROM 'poll'))), \
             i AS (INSERT INTO konektly_queue (id, claim_at_ns, platform, leased_until_ns) \
               SELECT id, due_at_ns, platform, NULL::int8 FROM t WHERE queue_claimable = 1 \
               UNION ALL SELECT d.id, d.claim_at_ns, d.platform, d.leased_until_ns FROM d WHERE d.id NOT IN (SELECT id FROM t) \
               ON CONFLICT (id) DO UPDATE SET claim_at_ns = excluded.claim_at_ns, leased_until_ns = excluded.leased_until_ns) \
             SELECT {cols} FROM t",
            crate::codec::target_cols_of("t")
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(ids)
            .bind(owners)
            .bind(fencings)
            .bind(states)
            .bind(details)
            .bind(dues)
            .bind(attempts)
            .bind(set_errors)
            .bind(errors)
            .bind(claimables)
            .bind(ns(Utc::now()))
            .bind(ev_ids)
            .bind(ev_kinds)
            .bind(ev_bodies)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("recording outcomes"))?;
        if wake && !rows.is_empty() {
            self.wake().await;
        }
        Ok(rows)
    }
}

async fn migrate(pool: &PgPool, schema: Option<&str>) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db_err("starting the migrations"))?;
    // One migrator at a time, whichever process starts first.
    sqlx::query("SELECT pg_advisory_xact_lock(7245190143)")
        .execute(&mut *tx)
        .await
        .map_err(db_err("locking the migrations"))?;
    if let Some(s) = schema {
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{s}\"")))
            .execute(&mut *tx)
            .await
            .map_err(db_err("creating the schema"))?;
    }
    migrations::apply(&mut tx, migrations::POSTGRES).await?;
    tx.commit().await.map_err(db_err("committing the migrations"))?;
    Ok(())
}

impl_common!(PostgresStore);

impl crate::sql::SqlStore for PostgresStore {
    type Db = sqlx::Postgres;
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
        PostgresStore::write_tx(self, what)
    }
    fn notify_statement(&self) -> Option<(&'static str, String)> {
        PostgresStore::notify_statement(self)
    }
    fn lock_statement(&self, key: i64) -> Option<String> {
        Some(format!("SELECT pg_advisory_xact_lock({key})"))
    }
    fn wake(&self) -> impl std::future::Future<Output = ()> + Send {
        PostgresStore::wake(self)
    }
    fn peeks(&self) -> &crate::common::PeekCache {
        &self.peeks
    }
}

#[async_trait]
impl Scheduler for PostgresStore {
    async fn enqueue(&self, targets: &[TargetRecord]) -> Result<usize> {
        // The NOTIFY is sent inside the enqueue's transaction.
        crate::targets::enqueue_rows(self, targets).await
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
        let platforms: Option<Vec<String>> = req.platforms.as_ref().map(|p| p.iter().map(|p| p.to_string()).collect());
        let only: Option<Vec<String>> = req.only.as_ref().map(|ids| ids.iter().map(|i| i.to_string()).collect());
        let filters = " AND ($5::text[] IS NULL OR platform = ANY($5)) AND ($6::text[] IS NULL OR id = ANY($6))";
        // The queue rows are locked (skipping those another claim holds), their targets leased,
        // and the queue rows moved to the lease's expiry; a queue row whose target is gone is
        // dropped. One statement, no transaction held open.
        let claim_set = claim_set();
        let sql = format!(
            "WITH q AS (SELECT id FROM konektly_queue \
               WHERE claim_at_ns <= $3 AND (leased_until_ns IS NULL OR leased_until_ns <= $3){filters} \
               ORDER BY claim_at_ns, id LIMIT $4 FOR UPDATE SKIP LOCKED), \
             t AS (UPDATE konektly_targets SET {claim_set} WHERE id = ANY(ARRAY(SELECT id FROM q)) RETURNING {TARGET_COLS}), \
             k AS (UPDATE konektly_queue k SET leased_until_ns = $2 WHERE k.id = ANY(ARRAY(SELECT id FROM t))), \
             o AS (DELETE FROM konektly_queue o WHERE o.id = ANY(ARRAY(SELECT id FROM q EXCEPT SELECT id FROM t))) \
             SELECT * FROM t"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(req.worker.as_str())
            .bind(ns(expiry(req.now, req.lease_for)))
            .bind(ns(req.now))
            .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
            .bind(platforms)
            .bind(only)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("claiming targets"))?;
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

    async fn complete(&self, lease: &Lease, completion: &Completion) -> Result<TargetRecord> {
        let rows = self.complete_rows(&[(lease.clone(), completion.clone())], TARGET_COLS).await?;
        match rows.first() {
            Some(r) => Ok(target_row(r)?.decode(&self.keys)?.0),
            None => Err(Error::LeaseLost(lease.target)),
        }
    }

    async fn complete_many(&self, items: &[(Lease, Completion)]) -> Result<Vec<Result<()>>> {
        PostgresStore::complete_many(self, items).await
    }

    async fn write_leases(&self, writes: &[LeaseWrite]) -> Result<Vec<Result<Lease>>> {
        PostgresStore::write_leases(self, writes).await
    }

    async fn unblock_account(&self, account: AccountId, at: DateTime<Utc>) -> Result<usize> {
        crate::targets::unblock_rows(self, account, at).await
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        crate::targets::next_due_row(self).await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.ensure_listener();
        let _ = tokio::time::timeout(timeout, self.waker.notify.notified()).await;
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
        let mut keys: Vec<String> = spends.iter().map(|s| s.key.as_str().to_owned()).collect();
        keys.sort();
        keys.dedup();
        let mut tx = self.pool.begin().await.map_err(db_err("starting a budget update"))?;
        sqlx::query(
            "INSERT INTO konektly_budgets (key, used) SELECT k, 0 FROM UNNEST($1::text[]) AS k \
             ORDER BY k ON CONFLICT (key) DO NOTHING",
        )
        .bind(&keys)
        .execute(&mut *tx)
        .await
        .map_err(db_err("creating budgets"))?;
        // The row locks, taken in key order, make the batch atomic across every process.
        let rows = sqlx::query(
            "SELECT key, window_start_ns, used, blocked_until_ns FROM konektly_budgets \
             WHERE key = ANY($1) ORDER BY key FOR UPDATE",
        )
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err("reading budgets"))?;
        let mut states = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let key: String = r.try_get(0).map_err(db_err("reading a budget"))?;
            states.insert(key, budget_state(Some((r.try_get(1), r.try_get(2), r.try_get(3))))?);
        }
        let out: Vec<Result<Option<DateTime<Utc>>>> = spends
            .iter()
            .map(|s| Ok(states.entry(s.key.as_str().to_owned()).or_default().acquire(s.limit, s.window, s.cost, s.now)))
            .collect();
        let (mut ks, mut ws, mut used, mut bu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, st) in &states {
            ks.push(k.clone());
            ws.push(st.window_start.map(ns));
            used.push(i64::from(st.used));
            bu.push(st.blocked_until.map(ns));
        }
        sqlx::query(
            "UPDATE konektly_budgets b SET window_start_ns = u.ws, used = u.used, blocked_until_ns = u.bu \
             FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[]) AS u(key, ws, used, bu) WHERE b.key = u.key",
        )
        .bind(ks)
        .bind(ws)
        .bind(used)
        .bind(bu)
        .execute(&mut *tx)
        .await
        .map_err(db_err("writing budgets"))?;
        tx.commit().await.map_err(db_err("committing a budget update"))?;
        Ok(out)
    }

    async fn observe_budget(&self, key: &BudgetKey, remaining: u32, reset_at: DateTime<Utc>) -> Result<()> {
        crate::targets::observe_row(self, key.as_str(), remaining, reset_at).await
    }
}
