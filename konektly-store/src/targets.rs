//! The `Scheduler` operations both backends run with the same SQL: enqueue, read, list,
//! delete, cancel, reschedule, heartbeats and checkpoints under a lease, unblock, the next due
//! time and the budgets' reports and checks. Claims, completions and budget spends are each
//! backend's own (`sqlite.rs`, `postgres.rs`).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use konektly_core::lifecycle::after_unblock;
use konektly_core::{AccountId, Checkpoint, Error, Lease, Result, StateName, TargetFilter, TargetId, TargetRecord};

use crate::codec::states_sql;
use crate::codec::{
    TARGET_COLS, TARGET_INSERT_ARITY, TARGET_INSERT_COLS, TargetRow, expiry, from_ns, ns, seal_checkpoint,
};
use crate::common::{ReadRow, db_err, filter_where, target_row};
use crate::sql::{Arg, Dialect, SqlStore, args};

/// Inserts the targets not stored yet (by id) and queues the claimable ones; returns how many
/// were inserted.
pub(crate) async fn enqueue_rows<S: SqlStore>(s: &S, targets: &[TargetRecord]) -> Result<usize> {
    let mut n = 0usize;
    let mut tx = s.write_tx("an enqueue").await?;
    for chunk in targets.chunks(200) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let ph: Vec<String> =
                    (1..=TARGET_INSERT_ARITY).map(|j| format!("${}", i * TARGET_INSERT_ARITY + j)).collect();
                format!("({})", ph.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO konektly_targets ({TARGET_INSERT_COLS}) VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
            values.join(", ")
        );
        let mut args = Vec::with_capacity(chunk.len() * TARGET_INSERT_ARITY);
        let mut queue = HashMap::new();
        for t in chunk {
            let row = TargetRow::encode(s.keys(), t)?;
            if let Some(at) = row.claim_at(t) {
                queue.insert(row.id.clone(), (at, row.platform.clone()));
            }
            args.extend(args![
                row.id,
                row.post_id,
                row.owner,
                row.account_id,
                row.platform,
                row.body,
                row.state,
                row.state_detail,
                row.due_at_ns,
                row.attempts,
                row.checkpoint,
                row.last_error,
                row.lease_owner,
                row.lease_expires_ns,
                row.attempt_started_ns,
                row.created_at_ns,
                row.updated_at_ns,
            ]);
        }
        let rows = S::Db::tx_fetch_all(&mut tx, sql, args).await.map_err(db_err("enqueueing targets"))?;
        n += rows.len();
        // Only targets this call inserted join the queue (an existing one keeps its state).
        let mut due = Vec::new();
        for r in &rows {
            let id = r.text("id").map_err(db_err("enqueueing targets"))?;
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
            let args: Vec<Arg> = due.into_iter().flat_map(|(id, at, platform)| args![id, at, platform]).collect();
            S::Db::tx_execute(&mut tx, sql, args).await.map_err(db_err("queueing targets"))?;
        }
    }
    if n > 0
        && let Some((sql, channel)) = s.notify_statement()
    {
        // Delivered when the enqueue commits: no extra round trip, never early.
        S::Db::tx_execute(&mut tx, sql.into(), args![channel]).await.map_err(db_err("notifying workers"))?;
    }
    tx.commit().await.map_err(db_err("committing an enqueue"))?;
    Ok(n)
}

pub(crate) async fn get_row<S: SqlStore>(s: &S, id: TargetId) -> Result<Option<TargetRecord>> {
    let sql = format!("SELECT {TARGET_COLS} FROM konektly_targets WHERE id = $1");
    let row = S::Db::fetch_optional(s.pool(), sql, args![id.to_string()]).await.map_err(db_err("reading a target"))?;
    row.map(|r| Ok(target_row(&r)?.decode(s.keys())?.0)).transpose()
}

pub(crate) async fn list_rows<S: SqlStore>(s: &S, filter: &TargetFilter) -> Result<Vec<TargetRecord>> {
    let mut args = Vec::new();
    let w = filter_where(filter, &mut args);
    let limit = filter.limit.map(|l| format!(" LIMIT {}", l.min(i64::MAX as usize))).unwrap_or_default();
    let sql = format!("SELECT {TARGET_COLS} FROM konektly_targets WHERE {w} ORDER BY due_at_ns, id{limit}");
    let rows = S::Db::fetch_all(s.pool(), sql, args).await.map_err(db_err("listing targets"))?;
    rows.iter().map(|r| Ok(target_row(r)?.decode(s.keys())?.0)).collect()
}

pub(crate) async fn delete_rows<S: SqlStore>(s: &S, filter: &TargetFilter) -> Result<usize> {
    let mut args = Vec::new();
    let w = filter_where(filter, &mut args);
    // The queue rows first (every path takes a queue row before its target row).
    let mut tx = s.write_tx("a deletion").await?;
    let sql = format!("DELETE FROM konektly_queue WHERE id IN (SELECT id FROM konektly_targets WHERE {w})");
    S::Db::tx_execute(&mut tx, sql, args.clone()).await.map_err(db_err("deleting queued targets"))?;
    let sql = format!("DELETE FROM konektly_targets WHERE {w}");
    let done = S::Db::tx_execute(&mut tx, sql, args).await.map_err(db_err("deleting targets"))?;
    tx.commit().await.map_err(db_err("committing a deletion"))?;
    Ok(done as usize)
}

pub(crate) async fn cancel_row<S: SqlStore>(s: &S, id: TargetId) -> Result<TargetRecord> {
    let now = ns(Utc::now());
    let mut tx = s.write_tx("a cancellation").await?;
    // Only a scheduled or blocked target leaves the queue and ends at once: one the platform
    // may be publishing already keeps its queue row, its lease and its state, and records the
    // request (its outcome decides; see `complete_sql`).
    let at_once = states_sql(StateName::cancels_at_once);
    let finished = states_sql(StateName::is_final);
    let sql = format!(
        "DELETE FROM konektly_queue WHERE id = $1 AND EXISTS \
         (SELECT 1 FROM konektly_targets WHERE id = $1 AND state IN ({at_once}))"
    );
    S::Db::tx_execute(&mut tx, sql, args![id.to_string()]).await.map_err(db_err("unqueueing a target"))?;
    let sql = format!(
        "UPDATE konektly_targets SET \
         cancel_requested_ns = CASE WHEN state IN ({at_once}) THEN cancel_requested_ns \
           ELSE COALESCE(cancel_requested_ns, $1) END, \
         lease_owner = CASE WHEN state IN ({at_once}) THEN NULL ELSE lease_owner END, \
         lease_expires_ns = CASE WHEN state IN ({at_once}) THEN NULL ELSE lease_expires_ns END, \
         fencing = CASE WHEN state IN ({at_once}) THEN fencing + 1 ELSE fencing END, \
         state_detail = CASE WHEN state IN ({at_once}) THEN NULL ELSE state_detail END, \
         state = CASE WHEN state IN ({at_once}) THEN 'cancelled' ELSE state END, \
         updated_at_ns = $1 \
         WHERE id = $2 AND state NOT IN ({finished}) RETURNING {TARGET_COLS}"
    );
    let row = S::Db::tx_fetch_optional(&mut tx, sql, args![now, id.to_string()])
        .await
        .map_err(db_err("cancelling a target"))?;
    match row {
        Some(r) => {
            let row = target_row(&r)?;
            if row.state == "cancelled" {
                let target = crate::codec::parse_id(&row.id, "a target id")?;
                let post = crate::codec::parse_id(&row.post_id, "a post id")?;
                crate::outbox::insert_tx(&mut tx, &row.owner, &[konektly_core::Event::Cancelled { target, post }])
                    .await?;
            }
            tx.commit().await.map_err(db_err("committing a cancellation"))?;
            Ok(row.decode(s.keys())?.0)
        }
        None => {
            // Rolled back before reading (an in-memory SQLite has one connection).
            drop(tx);
            Err(refusal(s, id, |t| format!("target {id} has ended ({})", t.state.name())).await?)
        }
    }
}

/// Why an operation on `id` changed nothing: `Conflict` (described by `why`) if the target
/// exists, else `NotFound`.
async fn refusal<S: SqlStore>(s: &S, id: TargetId, why: impl FnOnce(&TargetRecord) -> String) -> Result<Error> {
    Ok(match get_row(s, id).await? {
        Some(t) => Error::Conflict(why(&t)),
        None => Error::NotFound(format!("target {id}")),
    })
}

/// Replaces a published target's remote post (a deletion or an edit at the platform).
pub(crate) async fn update_published_row<S: SqlStore>(
    s: &S,
    id: TargetId,
    remote: &konektly_core::RemotePost,
) -> Result<TargetRecord> {
    let now = ns(Utc::now());
    let detail = crate::codec::state_detail(&konektly_core::TargetState::Published { remote: remote.clone() })?;
    let mut tx = s.write_tx("recording a change to a published post").await?;
    let sql = format!(
        "UPDATE konektly_targets SET state_detail = $1, updated_at_ns = $2 \
         WHERE id = $3 AND state = 'published' RETURNING {TARGET_COLS}"
    );
    let row = S::Db::tx_fetch_optional(&mut tx, sql, args![detail, now, id.to_string()])
        .await
        .map_err(db_err("recording a change to a published post"))?;
    let Some(r) = row else {
        // Rolled back before reading (an in-memory SQLite has one connection).
        drop(tx);
        return Err(refusal(s, id, |t| format!("target {id} is not published ({})", t.state.name())).await?);
    };
    let row = target_row(&r)?;
    tx.commit().await.map_err(db_err("committing a change to a published post"))?;
    Ok(row.decode(s.keys())?.0)
}

pub(crate) async fn reschedule_row<S: SqlStore>(s: &S, id: TargetId, at: DateTime<Utc>) -> Result<TargetRecord> {
    let now = ns(Utc::now());
    let at = ns(at);
    let mut tx = s.write_tx("a reschedule").await?;
    let sql = "DELETE FROM konektly_queue WHERE id = $1";
    S::Db::tx_execute(&mut tx, sql.into(), args![id.to_string()]).await.map_err(db_err("unqueueing a target"))?;
    let reschedulable = states_sql(StateName::reschedulable);
    let sql = format!(
        "UPDATE konektly_targets SET state = 'scheduled', state_detail = NULL, due_at_ns = $1, \
         lease_owner = NULL, lease_expires_ns = NULL, attempts = 0, cancel_requested_ns = NULL, \
         updated_at_ns = $2 \
         WHERE id = $3 AND state IN ({reschedulable}) RETURNING {TARGET_COLS}"
    );
    let row = S::Db::tx_fetch_optional(&mut tx, sql, args![at, now, id.to_string()])
        .await
        .map_err(db_err("rescheduling a target"))?;
    let Some(r) = row else {
        // Rolled back before reading (an in-memory SQLite has one connection).
        drop(tx);
        return Err(refusal(s, id, |t| format!("target {id} cannot be rescheduled while {}", t.state.name())).await?);
    };
    let row = target_row(&r)?;
    let sql = "INSERT INTO konektly_queue (id, claim_at_ns, platform) VALUES ($1, $2, $3)";
    S::Db::tx_execute(&mut tx, sql.into(), args![row.id.as_str(), at, row.platform.as_str()])
        .await
        .map_err(db_err("queueing a target"))?;
    tx.commit().await.map_err(db_err("committing a reschedule"))?;
    s.wake().await;
    Ok(row.decode(s.keys())?.0)
}

/// Extends a lease, and with `checkpoint` also saves it, in one transaction guarded by the
/// lease (the write before a create call: `save_checkpoint_renewing`).
pub(crate) async fn heartbeat_row<S: SqlStore>(
    s: &S,
    lease: &Lease,
    extend: Duration,
    checkpoint: Option<&Checkpoint>,
) -> Result<Lease> {
    let now = Utc::now();
    let exp = expiry(now, extend);
    let cp = match checkpoint {
        Some(c) => seal_checkpoint(s.keys(), &lease.target, c)?,
        None => None,
    };
    // The queue row first; a stale lease rolls both back.
    let mut tx = s.write_tx("a heartbeat").await?;
    let sql = "UPDATE konektly_queue SET leased_until_ns = $1 WHERE id = $2";
    S::Db::tx_execute(&mut tx, sql.into(), args![ns(exp), lease.target.to_string()])
        .await
        .map_err(db_err("extending a lease"))?;
    let sql = "UPDATE konektly_targets SET lease_expires_ns = $1, \
               checkpoint = CASE WHEN $5 = 1 THEN $6 ELSE checkpoint END, \
               updated_at_ns = CASE WHEN $5 = 1 THEN $7 ELSE updated_at_ns END \
               WHERE id = $2 AND lease_owner = $3 AND fencing = $4";
    let args = args![
        ns(exp),
        lease.target.to_string(),
        lease.owner.as_str(),
        lease.fencing_token as i64,
        i64::from(checkpoint.is_some()),
        cp,
        ns(now),
    ];
    let done = S::Db::tx_execute(&mut tx, sql.into(), args).await.map_err(db_err("extending a lease"))?;
    if done == 0 {
        return Err(Error::LeaseLost(lease.target));
    }
    tx.commit().await.map_err(db_err("committing a heartbeat"))?;
    let mut l = lease.clone();
    l.expires_at = from_ns(ns(exp));
    Ok(l)
}

pub(crate) async fn checkpoint_row<S: SqlStore>(s: &S, lease: &Lease, checkpoint: &Checkpoint) -> Result<()> {
    let cp = seal_checkpoint(s.keys(), &lease.target, checkpoint)?;
    let sql = "UPDATE konektly_targets SET checkpoint = $1, updated_at_ns = $2 \
               WHERE id = $3 AND lease_owner = $4 AND fencing = $5";
    let args = args![cp, ns(Utc::now()), lease.target.to_string(), lease.owner.as_str(), lease.fencing_token as i64];
    let done = S::Db::execute(s.writer(), sql.into(), args).await.map_err(db_err("saving a checkpoint"))?;
    if done == 0 {
        return Err(Error::LeaseLost(lease.target));
    }
    Ok(())
}

pub(crate) async fn unblock_rows<S: SqlStore>(s: &S, account: AccountId, at: DateTime<Utc>) -> Result<usize> {
    let at = ns(at);
    let mut tx = s.write_tx("an unblock").await?;
    let sql = "INSERT INTO konektly_queue (id, claim_at_ns, platform) \
               SELECT id, $1, platform FROM konektly_targets WHERE account_id = $2 AND state = 'blocked' \
               ON CONFLICT (id) DO UPDATE SET claim_at_ns = excluded.claim_at_ns, leased_until_ns = NULL";
    S::Db::tx_execute(&mut tx, sql.into(), args![at, account.to_string()])
        .await
        .map_err(db_err("queueing unblocked targets"))?;
    // A target blocked midway (its checkpoint says it reached the platform) is reconciled
    // before anything is sent again.
    let (fresh, midway) = (after_unblock(false), after_unblock(true));
    let sql = format!(
        "UPDATE konektly_targets SET state = CASE WHEN checkpoint IS NULL THEN '{fresh}' ELSE '{midway}' END, \
         state_detail = NULL, due_at_ns = $1, \
         updated_at_ns = $2 WHERE account_id = $3 AND state = 'blocked'"
    );
    let done = S::Db::tx_execute(&mut tx, sql, args![at, ns(Utc::now()), account.to_string()])
        .await
        .map_err(db_err("unblocking targets"))?;
    tx.commit().await.map_err(db_err("committing an unblock"))?;
    let n = done as usize;
    if n > 0 {
        s.wake().await;
    }
    Ok(n)
}

pub(crate) async fn next_due_row<S: SqlStore>(s: &S) -> Result<Option<DateTime<Utc>>> {
    // A leased row is claimable again when its lease expires; leased rows were due when
    // claimed, so they all sit at or before `now` in the index.
    let sql = "SELECT MIN(t) AS t FROM (\
               SELECT MIN(CASE WHEN leased_until_ns > claim_at_ns THEN leased_until_ns ELSE claim_at_ns END) AS t \
               FROM konektly_queue WHERE claim_at_ns <= $1 \
               UNION ALL SELECT MIN(claim_at_ns) AS t FROM konektly_queue WHERE claim_at_ns > $1) AS due";
    let row = S::Db::fetch_optional(s.pool(), sql.into(), args![ns(Utc::now())])
        .await
        .map_err(db_err("reading the next due time"))?;
    let min = row.map(|r| r.opt_int("t")).transpose().map_err(db_err("reading the next due time"))?.flatten();
    Ok(min.map(from_ns))
}

/// Records a rate-limit report: an empty bucket blocks its key until the reset.
pub(crate) async fn observe_row<S: SqlStore>(s: &S, key: &str, remaining: u32, reset_at: DateTime<Utc>) -> Result<()> {
    if remaining > 0 {
        return Ok(());
    }
    let sql = "INSERT INTO konektly_budgets (key, used, blocked_until_ns) VALUES ($1, 0, $2) \
               ON CONFLICT (key) DO UPDATE SET blocked_until_ns = CASE \
               WHEN konektly_budgets.blocked_until_ns IS NULL OR konektly_budgets.blocked_until_ns < excluded.blocked_until_ns \
               THEN excluded.blocked_until_ns ELSE konektly_budgets.blocked_until_ns END";
    S::Db::execute(s.writer(), sql.into(), args![key, ns(reset_at)])
        .await
        .map_err(db_err("recording a rate-limit report"))?;
    s.peeks().forget(key);
    Ok(())
}

/// The budget check that spends nothing: blocked until a reported reset, or not. The answer is
/// cached for [`PEEK_TTL`](crate::common::PEEK_TTL) (the engine asks before every call); a
/// report observed in this process updates it at once.
pub(crate) async fn peek_budget<S: SqlStore>(s: &S, key: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let blocked = match s.peeks().get(key) {
        Some(b) => b,
        None => {
            let sql = "SELECT blocked_until_ns FROM konektly_budgets WHERE key = $1";
            let row =
                S::Db::fetch_optional(s.pool(), sql.into(), args![key]).await.map_err(db_err("reading a budget"))?;
            let b =
                row.map(|r| r.opt_int("blocked_until_ns")).transpose().map_err(db_err("reading a budget"))?.flatten();
            s.peeks().put(key, b);
            b
        }
    };
    Ok(blocked.filter(|&t| t > ns(now)).map(from_ns))
}
