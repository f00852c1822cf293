//! What both backends do with the same SQL (`$n` placeholders work on SQLite and PostgreSQL):
//! the `TokenStore`, most of the `Scheduler`, key rotation and the data-rights operations. A
//! macro writes it once for each store type; each backend adds claims, budgets, migrations and
//! wake-ups of its own.

use konektly_core::{Error, TargetFilter};

pub(crate) use crate::sql::Arg;

/// The `WHERE` clause of a target filter, with placeholders from `$first`.
pub(crate) fn filter_where(f: &TargetFilter, args: &mut Vec<Arg>) -> String {
    let mut clauses: Vec<String> = vec!["1 = 1".into()];
    let mut push = |sql: &str, a: Arg, args: &mut Vec<Arg>| {
        args.push(a);
        clauses.push(sql.replace('?', &format!("${}", args.len())));
    };
    if let Some(p) = f.post {
        push("post_id = ?", Arg::Text(p.to_string()), args);
    }
    if let Some(a) = f.account {
        push("account_id = ?", Arg::Text(a.to_string()), args);
    }
    if let Some(o) = &f.owner {
        push("owner = ?", Arg::Text(o.as_str().to_owned()), args);
    }
    if let Some(t) = f.updated_before {
        push("updated_at_ns < ?", Arg::Int(crate::codec::ns(t)), args);
    }
    if !f.states.is_empty() {
        let mut ph = Vec::new();
        for s in &f.states {
            args.push(Arg::Text(s.as_str().to_owned()));
            ph.push(format!("${}", args.len()));
        }
        clauses.push(format!("state IN ({})", ph.join(", ")));
    }
    clauses.join(" AND ")
}

pub(crate) fn db_err(what: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| Error::storage(format!("database error while {what}"), e)
}

/// What [`erase_account`](crate::SqliteStore::erase_account) removes. The default erases
/// everything, post history included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErasePolicy {
    /// Keep the account's finished targets (published, failed, cancelled) as post history.
    /// Unfinished targets are always removed: nothing can publish them any more.
    pub keep_post_history: bool,
}

/// What an erasure removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    /// Whether the account (and its tokens) existed and is gone.
    pub account: bool,
    /// Pending authorizations (reconnections of it) removed.
    pub pending_authorizations: u64,
    /// Targets removed.
    pub targets: u64,
    /// Rate-limit budgets kept for the account removed.
    pub budgets: u64,
}

/// How long a "blocked until?" answer of a budget is reused within one process. Another
/// process's report is seen at most this late (its platform's own 429 still applies meanwhile).
pub(crate) const PEEK_TTL: std::time::Duration = std::time::Duration::from_millis(250);

/// Recent answers of `peek_budget`, per key.
#[derive(Debug, Default)]
pub(crate) struct PeekCache(std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Option<i64>)>>);

impl PeekCache {
    pub(crate) fn get(&self, key: &str) -> Option<Option<i64>> {
        let map = self.0.lock().unwrap();
        map.get(key).filter(|(at, _)| at.elapsed() < PEEK_TTL).map(|(_, b)| *b)
    }

    pub(crate) fn put(&self, key: &str, blocked: Option<i64>) {
        let mut map = self.0.lock().unwrap();
        if map.len() > 100_000 {
            map.retain(|_, (at, _)| at.elapsed() < PEEK_TTL);
        }
        map.insert(key.to_owned(), (std::time::Instant::now(), blocked));
    }

    pub(crate) fn forget(&self, key: &str) {
        self.0.lock().unwrap().remove(key);
    }
}

/// What both durable stores offer beyond the two ports: key rotation and the data-rights
/// operations an application's privacy policy promises its users.
#[async_trait::async_trait]
pub trait KonektlyStore: konektly_core::TokenStore + konektly_core::Scheduler {
    /// Everything stored about an account, as JSON (tokens are named, never exported).
    async fn export_account(&self, id: konektly_core::AccountId) -> konektly_core::Result<serde_json::Value>;
    /// Erases an account, its tokens, its pending reconnections and (per `policy`) its post history.
    async fn erase_account(&self, id: konektly_core::AccountId, policy: ErasePolicy) -> konektly_core::Result<Erasure>;
    /// Deletes finished targets last changed before `before`; returns how many.
    async fn purge_published_before(&self, before: chrono::DateTime<chrono::Utc>) -> konektly_core::Result<u64>;
    /// Re-encrypts every secret not sealed with the newest key; returns how many rows changed.
    async fn rotate_keys(&self) -> konektly_core::Result<u64>;
}

/// The column reads the stores' rows need, on any backend's row (the bounds are stated once,
/// here, instead of in every reader).
pub(crate) trait ReadRow {
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error>;
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

impl<R: sqlx::Row> ReadRow for R
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(col)
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(col)
    }
    fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.try_get(col)
    }
}

/// Reads the columns of an account row.
pub(crate) fn account_row(r: &impl ReadRow) -> konektly_core::Result<crate::codec::AccountRow> {
    (|| -> Result<crate::codec::AccountRow, sqlx::Error> {
        Ok(crate::codec::AccountRow {
            id: r.text("id")?,
            owner: r.text("owner")?,
            platform: r.text("platform")?,
            remote_id: r.text("remote_id")?,
            version: r.int("version")?,
            key_id: r.text("key_id")?,
            access_token: r.bytes("access_token")?,
            refresh_token: r.opt_bytes("refresh_token")?,
            profile: r.text("profile")?,
            created_at_ns: r.int("created_at_ns")?,
            updated_at_ns: r.int("updated_at_ns")?,
        })
    })()
    .map_err(db_err("reading an account"))
}

/// Reads the columns of a pending authorization row.
pub(crate) fn pending_row(r: &impl ReadRow) -> konektly_core::Result<crate::codec::PendingRow> {
    (|| -> Result<crate::codec::PendingRow, sqlx::Error> {
        Ok(crate::codec::PendingRow {
            state: r.text("state")?,
            owner: r.text("owner")?,
            platform: r.text("platform")?,
            reconnect: r.opt_text("reconnect")?,
            key_id: r.text("key_id")?,
            pkce_verifier: r.opt_bytes("pkce_verifier")?,
            body: r.text("body")?,
            expires_at_ns: r.int("expires_at_ns")?,
        })
    })()
    .map_err(db_err("reading a pending authorization"))
}

/// Reads the columns of a target row.
pub(crate) fn target_row(r: &impl ReadRow) -> konektly_core::Result<crate::codec::TargetRow> {
    (|| -> Result<crate::codec::TargetRow, sqlx::Error> {
        Ok(crate::codec::TargetRow {
            id: r.text("id")?,
            post_id: r.text("post_id")?,
            owner: r.text("owner")?,
            account_id: r.text("account_id")?,
            platform: r.text("platform")?,
            body: r.text("body")?,
            state: r.text("state")?,
            state_detail: r.opt_text("state_detail")?,
            due_at_ns: r.int("due_at_ns")?,
            attempts: r.int("attempts")?,
            checkpoint: r.opt_text("checkpoint")?,
            last_error: r.opt_text("last_error")?,
            lease_owner: r.opt_text("lease_owner")?,
            lease_expires_ns: r.opt_int("lease_expires_ns")?,
            fencing: r.int("fencing")?,
            attempt_started_ns: r.opt_int("attempt_started_ns")?,
            created_at_ns: r.int("created_at_ns")?,
            updated_at_ns: r.int("updated_at_ns")?,
            claim_kind: r.opt_text("claim_kind")?,
            cancel_requested_ns: r.opt_int("cancel_requested_ns")?,
        })
    })()
    .map_err(db_err("reading a target"))
}

/// Inside an open migration transaction: creates `konektly_schema`, refuses a newer schema, and
/// applies (and records) every migration of `$list` above the stored version. Both backends
/// run it; each opens its transaction its own way (an advisory lock, `BEGIN IMMEDIATE`).
macro_rules! apply_migrations {
    ($tx:expr, $list:expr) => {{
        let tx = &mut $tx;
        sqlx::query($crate::migrations::SCHEMA_TABLE)
            .execute(&mut **tx)
            .await
            .map_err($crate::common::db_err("creating konektly_schema"))?;
        let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM konektly_schema")
            .fetch_one(&mut **tx)
            .await
            .map_err($crate::common::db_err("reading the schema version"))?;
        $crate::migrations::check_not_newer(found)?;
        for m in $list.iter().filter(|m| Some(m.version) > found) {
            for s in m.statements {
                sqlx::query(sqlx::AssertSqlSafe(*s))
                    .execute(&mut **tx)
                    .await
                    .map_err($crate::common::db_err("migrating"))?;
            }
            sqlx::query("INSERT INTO konektly_schema (version, applied_at_ns) VALUES ($1, $2)")
                .bind(m.version)
                .bind($crate::codec::ns(chrono::Utc::now()))
                .execute(&mut **tx)
                .await
                .map_err($crate::common::db_err("recording a migration"))?;
        }
    }};
}

/// The `TokenStore`, the shared `Scheduler` operations, rotation and data rights.
macro_rules! impl_common {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl konektly_core::TokenStore for $store {
            async fn insert_account(&self, account: &konektly_core::Account) -> konektly_core::Result<()> {
                $crate::accounts::insert_account(self, account).await
            }
            async fn get_account(
                &self,
                id: konektly_core::AccountId,
            ) -> konektly_core::Result<Option<konektly_core::Account>> {
                $crate::accounts::get_account(self, id).await
            }
            async fn find_account(
                &self,
                owner: &konektly_core::OwnerId,
                platform: &konektly_core::PlatformId,
                remote_id: &str,
            ) -> konektly_core::Result<Option<konektly_core::Account>> {
                $crate::accounts::find_account(self, owner, platform, remote_id).await
            }
            async fn update_account(&self, account: &konektly_core::Account) -> konektly_core::Result<konektly_core::Account> {
                $crate::accounts::update_account(self, account).await
            }
            async fn list_accounts(&self, owner: &konektly_core::OwnerId) -> konektly_core::Result<Vec<konektly_core::Account>> {
                $crate::accounts::list_accounts(self, owner).await
            }
            async fn delete_account(&self, id: konektly_core::AccountId) -> konektly_core::Result<bool> {
                $crate::accounts::delete_account(self, id).await
            }
            async fn put_pending(&self, pending: &konektly_core::PendingAuthorization) -> konektly_core::Result<()> {
                $crate::accounts::put_pending(self, pending).await
            }
            async fn take_pending(
                &self,
                state: &str,
            ) -> konektly_core::Result<Option<konektly_core::PendingAuthorization>> {
                $crate::accounts::take_pending(self, state).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::KonektlyStore for $store {
            async fn export_account(&self, id: konektly_core::AccountId) -> konektly_core::Result<serde_json::Value> {
                <$store>::export_account(self, id).await
            }
            async fn erase_account(
                &self,
                id: konektly_core::AccountId,
                policy: $crate::ErasePolicy,
            ) -> konektly_core::Result<$crate::Erasure> {
                <$store>::erase_account(self, id, policy).await
            }
            async fn purge_published_before(&self, before: chrono::DateTime<chrono::Utc>) -> konektly_core::Result<u64> {
                <$store>::purge_published_before(self, before).await
            }
            async fn rotate_keys(&self) -> konektly_core::Result<u64> {
                <$store>::rotate_keys(self).await
            }
        }

        impl $store {
            async fn enqueue_rows(&self, targets: &[konektly_core::TargetRecord]) -> konektly_core::Result<usize> {
                use $crate::codec::{TARGET_INSERT_ARITY, TARGET_INSERT_COLS, TargetRow};
                let mut n = 0usize;
                let mut tx = self.write_tx("an enqueue").await?;
                for chunk in targets.chunks(200) {
                    let mut values = Vec::with_capacity(chunk.len());
                    for i in 0..chunk.len() {
                        let ph: Vec<String> =
                            (1..=TARGET_INSERT_ARITY).map(|j| format!("${}", i * TARGET_INSERT_ARITY + j)).collect();
                        values.push(format!("({})", ph.join(", ")));
                    }
                    let sql = format!(
                        "INSERT INTO konektly_targets ({TARGET_INSERT_COLS}) VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
                        values.join(", ")
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    let mut queue = std::collections::HashMap::new();
                    for t in chunk {
                        let row = TargetRow::encode(&self.keys, t)?;
                        if let Some(at) = row.claim_at(t) {
                            queue.insert(row.id.clone(), (at, row.platform.clone()));
                        }
                        q = q
                            .bind(row.id)
                            .bind(row.post_id)
                            .bind(row.owner)
                            .bind(row.account_id)
                            .bind(row.platform)
                            .bind(row.body)
                            .bind(row.state)
                            .bind(row.state_detail)
                            .bind(row.due_at_ns)
                            .bind(row.attempts)
                            .bind(row.checkpoint)
                            .bind(row.last_error)
                            .bind(row.lease_owner)
                            .bind(row.lease_expires_ns)
                            .bind(row.attempt_started_ns)
                            .bind(row.created_at_ns)
                            .bind(row.updated_at_ns);
                    }
                    let rows = q.fetch_all(&mut *tx).await.map_err($crate::common::db_err("enqueueing targets"))?;
                    n += rows.len();
                    // Only targets this call inserted join the queue (an existing one keeps its state).
                    let mut due = Vec::new();
                    for r in &rows {
                        use sqlx::Row as _;
                        let id: String = r.try_get(0).map_err($crate::common::db_err("enqueueing targets"))?;
                        if let Some((at, platform)) = queue.remove(&id) {
                            due.push((id, at, platform));
                        }
                    }
                    if !due.is_empty() {
                        let ph: Vec<String> =
                            (0..due.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
                        let sql = format!(
                            "INSERT INTO konektly_queue (id, claim_at_ns, platform) VALUES {} \
                             ON CONFLICT (id) DO UPDATE SET claim_at_ns = excluded.claim_at_ns, leased_until_ns = NULL",
                            ph.join(", ")
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for (id, at, platform) in due {
                            q = q.bind(id).bind(at).bind(platform);
                        }
                        q.execute(&mut *tx).await.map_err($crate::common::db_err("queueing targets"))?;
                    }
                }
                if n > 0 && let Some((sql, channel)) = self.notify_statement() {
                    // Delivered when the enqueue commits: no extra round trip, never early.
                    sqlx::query(sql)
                        .bind(channel)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::common::db_err("notifying workers"))?;
                }
                tx.commit().await.map_err($crate::common::db_err("committing an enqueue"))?;
                Ok(n)
            }

            async fn get_row(&self, id: konektly_core::TargetId) -> konektly_core::Result<Option<konektly_core::TargetRecord>> {
                let sql = format!("SELECT {} FROM konektly_targets WHERE id = $1", $crate::codec::TARGET_COLS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::common::db_err("reading a target"))?;
                match row {
                    Some(r) => Ok(Some($crate::common::target_row(&r)?.decode(&self.keys)?.0)),
                    None => Ok(None),
                }
            }

            async fn list_rows(&self, filter: &konektly_core::TargetFilter) -> konektly_core::Result<Vec<konektly_core::TargetRecord>> {
                let mut args = Vec::new();
                let w = $crate::common::filter_where(filter, &mut args);
                let limit = filter.limit.map(|l| format!(" LIMIT {}", l.min(i64::MAX as usize))).unwrap_or_default();
                let sql = format!(
                    "SELECT {} FROM konektly_targets WHERE {w} ORDER BY due_at_ns, id{limit}",
                    $crate::codec::TARGET_COLS
                );
                let rows = $crate::sql::bind_args(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::common::db_err("listing targets"))?;
                rows.iter().map(|r| Ok($crate::common::target_row(r)?.decode(&self.keys)?.0)).collect()
            }

            async fn delete_rows(&self, filter: &konektly_core::TargetFilter) -> konektly_core::Result<usize> {
                let mut args = Vec::new();
                let w = $crate::common::filter_where(filter, &mut args);
                // The queue rows first (every path takes a queue row before its target row).
                let mut tx = self.write_tx("a deletion").await?;
                let sql = format!("DELETE FROM konektly_queue WHERE id IN (SELECT id FROM konektly_targets WHERE {w})");
                $crate::sql::bind_args(sqlx::query(sqlx::AssertSqlSafe(sql)), args.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::common::db_err("deleting queued targets"))?;
                let sql = format!("DELETE FROM konektly_targets WHERE {w}");
                let done = $crate::sql::bind_args(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::common::db_err("deleting targets"))?;
                tx.commit().await.map_err($crate::common::db_err("committing a deletion"))?;
                Ok(done.rows_affected() as usize)
            }

            async fn cancel_row(&self, id: konektly_core::TargetId) -> konektly_core::Result<konektly_core::TargetRecord> {
                let now = $crate::codec::ns(chrono::Utc::now());
                let mut tx = self.write_tx("a cancellation").await?;
                // Only a scheduled or blocked target leaves the queue and ends at once: one the
                // platform may be publishing already keeps its queue row, its lease and its
                // state, and records the request (its outcome decides; see `complete_sql`).
                sqlx::query(
                    "DELETE FROM konektly_queue WHERE id = $1 AND EXISTS \
                     (SELECT 1 FROM konektly_targets WHERE id = $1 AND state IN ('scheduled', 'blocked'))",
                )
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err($crate::common::db_err("unqueueing a target"))?;
                let sql = format!(
                    "UPDATE konektly_targets SET \
                     cancel_requested_ns = CASE WHEN state IN ('scheduled', 'blocked') THEN cancel_requested_ns \
                       ELSE COALESCE(cancel_requested_ns, $1) END, \
                     lease_owner = CASE WHEN state IN ('scheduled', 'blocked') THEN NULL ELSE lease_owner END, \
                     lease_expires_ns = CASE WHEN state IN ('scheduled', 'blocked') THEN NULL ELSE lease_expires_ns END, \
                     fencing = CASE WHEN state IN ('scheduled', 'blocked') THEN fencing + 1 ELSE fencing END, \
                     state_detail = CASE WHEN state IN ('scheduled', 'blocked') THEN NULL ELSE state_detail END, \
                     state = CASE WHEN state IN ('scheduled', 'blocked') THEN 'cancelled' ELSE state END, \
                     updated_at_ns = $1 \
                     WHERE id = $2 AND state NOT IN ('published', 'failed', 'cancelled') RETURNING {}",
                    $crate::codec::TARGET_COLS
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(now)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($crate::common::db_err("cancelling a target"))?;
                match row {
                    Some(r) => {
                        tx.commit().await.map_err($crate::common::db_err("committing a cancellation"))?;
                        Ok($crate::common::target_row(&r)?.decode(&self.keys)?.0)
                    }
                    None => {
                        // Rolled back before reading (an in-memory SQLite has one connection).
                        drop(tx);
                        Err(self.refusal(id, |t| format!("target {id} has ended ({})", t.state.name())).await?)
                    }
                }
            }

            /// Why an operation on `id` changed nothing: `Conflict` (described by `why`) if the
            /// target exists, else `NotFound`.
            async fn refusal(
                &self,
                id: konektly_core::TargetId,
                why: impl FnOnce(&konektly_core::TargetRecord) -> String,
            ) -> konektly_core::Result<konektly_core::Error> {
                Ok(match self.get_row(id).await? {
                    Some(t) => konektly_core::Error::Conflict(why(&t)),
                    None => konektly_core::Error::NotFound(format!("target {id}")),
                })
            }

            async fn reschedule_row(
                &self,
                id: konektly_core::TargetId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> konektly_core::Result<konektly_core::TargetRecord> {
                let now = $crate::codec::ns(chrono::Utc::now());
                let at = $crate::codec::ns(at);
                let mut tx = self.write_tx("a reschedule").await?;
                sqlx::query("DELETE FROM konektly_queue WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::common::db_err("unqueueing a target"))?;
                let sql = format!(
                    "UPDATE konektly_targets SET state = 'scheduled', state_detail = NULL, due_at_ns = $1, \
                     lease_owner = NULL, lease_expires_ns = NULL, attempts = 0, cancel_requested_ns = NULL, \
                     updated_at_ns = $2 \
                     WHERE id = $3 AND state IN ('scheduled', 'blocked', 'failed', 'cancelled') RETURNING {}",
                    $crate::codec::TARGET_COLS
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(at)
                    .bind(now)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($crate::common::db_err("rescheduling a target"))?;
                match row {
                    Some(r) => {
                        let row = $crate::common::target_row(&r)?;
                        sqlx::query("INSERT INTO konektly_queue (id, claim_at_ns, platform) VALUES ($1, $2, $3)")
                            .bind(&row.id)
                            .bind(at)
                            .bind(&row.platform)
                            .execute(&mut *tx)
                            .await
                            .map_err($crate::common::db_err("queueing a target"))?;
                        tx.commit().await.map_err($crate::common::db_err("committing a reschedule"))?;
                        self.wake().await;
                        Ok(row.decode(&self.keys)?.0)
                    }
                    None => {
                        // Rolled back before reading (an in-memory SQLite has one connection).
                        drop(tx);
                        Err(self.refusal(id, |t| format!("target {id} cannot be rescheduled while {}", t.state.name())).await?)
                    }
                }
            }

            /// Extends a lease, and with `checkpoint` also saves it, in one transaction guarded by
            /// the lease (the write before a create call: `save_checkpoint_renewing`).
            async fn heartbeat_row(
                &self,
                lease: &konektly_core::Lease,
                extend: std::time::Duration,
                checkpoint: Option<&konektly_core::Checkpoint>,
            ) -> konektly_core::Result<konektly_core::Lease> {
                let now = chrono::Utc::now();
                let exp = $crate::codec::expiry(now, extend);
                let cp = match checkpoint {
                    Some(c) => $crate::codec::seal_checkpoint(&self.keys, &lease.target, c)?,
                    None => None,
                };
                // The queue row first; a stale lease rolls both back.
                let mut tx = self.write_tx("a heartbeat").await?;
                sqlx::query("UPDATE konektly_queue SET leased_until_ns = $1 WHERE id = $2")
                    .bind($crate::codec::ns(exp))
                    .bind(lease.target.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::common::db_err("extending a lease"))?;
                let done = sqlx::query(
                    "UPDATE konektly_targets SET lease_expires_ns = $1, \
                     checkpoint = CASE WHEN $5 = 1 THEN $6 ELSE checkpoint END, \
                     updated_at_ns = CASE WHEN $5 = 1 THEN $7 ELSE updated_at_ns END \
                     WHERE id = $2 AND lease_owner = $3 AND fencing = $4",
                )
                .bind($crate::codec::ns(exp))
                .bind(lease.target.to_string())
                .bind(lease.owner.as_str())
                .bind(lease.fencing_token as i64)
                .bind(i64::from(checkpoint.is_some()))
                .bind(cp)
                .bind($crate::codec::ns(now))
                .execute(&mut *tx)
                .await
                .map_err($crate::common::db_err("extending a lease"))?;
                if done.rows_affected() == 0 {
                    return Err(konektly_core::Error::LeaseLost(lease.target));
                }
                tx.commit().await.map_err($crate::common::db_err("committing a heartbeat"))?;
                let mut l = lease.clone();
                l.expires_at = $crate::codec::from_ns($crate::codec::ns(exp));
                Ok(l)
            }

            async fn checkpoint_row(
                &self,
                lease: &konektly_core::Lease,
                checkpoint: &konektly_core::Checkpoint,
            ) -> konektly_core::Result<()> {
                let cp = $crate::codec::seal_checkpoint(&self.keys, &lease.target, checkpoint)?;
                let done = sqlx::query(
                    "UPDATE konektly_targets SET checkpoint = $1, updated_at_ns = $2 \
                     WHERE id = $3 AND lease_owner = $4 AND fencing = $5",
                )
                .bind(cp)
                .bind($crate::codec::ns(chrono::Utc::now()))
                .bind(lease.target.to_string())
                .bind(lease.owner.as_str())
                .bind(lease.fencing_token as i64)
                .execute(&self.writer)
                .await
                .map_err($crate::common::db_err("saving a checkpoint"))?;
                if done.rows_affected() == 0 {
                    return Err(konektly_core::Error::LeaseLost(lease.target));
                }
                Ok(())
            }

            async fn unblock_rows(
                &self,
                account: konektly_core::AccountId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> konektly_core::Result<usize> {
                let at = $crate::codec::ns(at);
                let mut tx = self.write_tx("an unblock").await?;
                sqlx::query(
                    "INSERT INTO konektly_queue (id, claim_at_ns, platform) \
                     SELECT id, $1, platform FROM konektly_targets WHERE account_id = $2 AND state = 'blocked' \
                     ON CONFLICT (id) DO UPDATE SET claim_at_ns = excluded.claim_at_ns, leased_until_ns = NULL",
                )
                .bind(at)
                .bind(account.to_string())
                .execute(&mut *tx)
                .await
                .map_err($crate::common::db_err("queueing unblocked targets"))?;
                let done = sqlx::query(
                    // A target blocked midway (its checkpoint says it reached the platform) is
                    // reconciled before anything is sent again.
                    "UPDATE konektly_targets SET state = CASE WHEN checkpoint IS NULL THEN 'scheduled' ELSE 'unknown' END, \
                     state_detail = NULL, due_at_ns = $1, \
                     updated_at_ns = $2 WHERE account_id = $3 AND state = 'blocked'",
                )
                .bind(at)
                .bind($crate::codec::ns(chrono::Utc::now()))
                .bind(account.to_string())
                .execute(&mut *tx)
                .await
                .map_err($crate::common::db_err("unblocking targets"))?;
                tx.commit().await.map_err($crate::common::db_err("committing an unblock"))?;
                let n = done.rows_affected() as usize;
                if n > 0 {
                    self.wake().await;
                }
                Ok(n)
            }

            async fn next_due_row(&self) -> konektly_core::Result<Option<chrono::DateTime<chrono::Utc>>> {
                // A leased row is claimable again when its lease expires; leased rows were due
                // when claimed, so they all sit at or before `now` in the index.
                let min: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(t) FROM (\
                     SELECT MIN(CASE WHEN leased_until_ns > claim_at_ns THEN leased_until_ns ELSE claim_at_ns END) AS t \
                     FROM konektly_queue WHERE claim_at_ns <= $1 \
                     UNION ALL SELECT MIN(claim_at_ns) AS t FROM konektly_queue WHERE claim_at_ns > $1) AS due",
                )
                .bind($crate::codec::ns(chrono::Utc::now()))
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::common::db_err("reading the next due time"))?;
                Ok(min.map($crate::codec::from_ns))
            }

            async fn observe_row(
                &self,
                key: &str,
                remaining: u32,
                reset_at: chrono::DateTime<chrono::Utc>,
            ) -> konektly_core::Result<()> {
                if remaining > 0 {
                    return Ok(());
                }
                sqlx::query(
                    "INSERT INTO konektly_budgets (key, used, blocked_until_ns) VALUES ($1, 0, $2) \
                     ON CONFLICT (key) DO UPDATE SET blocked_until_ns = CASE \
                     WHEN konektly_budgets.blocked_until_ns IS NULL OR konektly_budgets.blocked_until_ns < excluded.blocked_until_ns \
                     THEN excluded.blocked_until_ns ELSE konektly_budgets.blocked_until_ns END",
                )
                .bind(key)
                .bind($crate::codec::ns(reset_at))
                .execute(&self.writer)
                .await
                .map_err($crate::common::db_err("recording a rate-limit report"))?;
                self.peeks.forget(key);
                Ok(())
            }

            /// The budget check that spends nothing: blocked until a reported reset, or not. The
            /// answer is cached for [`PEEK_TTL`]($crate::common::PEEK_TTL) (the engine asks before
            /// every call); a report observed in this process updates it at once.
            async fn peek_budget(
                &self,
                key: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> konektly_core::Result<Option<chrono::DateTime<chrono::Utc>>> {
                let blocked = match self.peeks.get(key) {
                    Some(b) => b,
                    None => {
                        let b: Option<Option<i64>> =
                            sqlx::query_scalar("SELECT blocked_until_ns FROM konektly_budgets WHERE key = $1")
                                .bind(key)
                                .fetch_optional(&self.pool)
                                .await
                                .map_err($crate::common::db_err("reading a budget"))?;
                        let b = b.flatten();
                        self.peeks.put(key, b);
                        b
                    }
                };
                Ok(blocked.filter(|&t| t > $crate::codec::ns(now)).map($crate::codec::from_ns))
            }

            /// Re-encrypts every stored secret that is not sealed with the newest key of the
            /// key ring. Returns how many rows were rewritten. Safe to run while workers run,
            /// and to run again after an interruption.
            pub async fn rotate_keys(&self) -> konektly_core::Result<u64> {
                $crate::rights::rotate_keys(self).await
            }

            /// Everything stored about an account, as JSON: its profile, status, scopes and token
            /// expiry (the tokens themselves are credentials of the application and are not
            /// exported), its pending reconnections and every target it publishes.
            pub async fn export_account(&self, id: konektly_core::AccountId) -> konektly_core::Result<serde_json::Value> {
                $crate::rights::export_account(self, id).await
            }

            /// Erases an account: its tokens, its pending reconnections, its rate-limit budgets
            /// and its targets (finished ones are kept as post history if `policy` says so), in
            /// one transaction.
            pub async fn erase_account(
                &self,
                id: konektly_core::AccountId,
                policy: $crate::ErasePolicy,
            ) -> konektly_core::Result<$crate::Erasure> {
                $crate::rights::erase_account(self, id, policy).await
            }

            /// Retention: deletes finished targets (published, failed, cancelled) last changed
            /// before `before`, and pending authorizations that expired before it. Returns how
            /// many targets were deleted.
            pub async fn purge_published_before(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> konektly_core::Result<u64> {
                $crate::rights::purge_published_before(self, before).await
            }
        }
    };
}

pub(crate) use {apply_migrations, impl_common};
