//! The outbox (issue 16): every durable [`Event`] is written in the transaction of the change
//! that raised it, then given its place in the log (`seq`) by a sequencing pass, which also
//! fans each event out to its owner's webhook endpoints as deliveries. The same SQL runs on
//! both backends; PostgreSQL serializes sequencing passes with an advisory lock, SQLite with
//! its single writer.
//!
//! Why `seq` is not a sequence column filled at insert: on PostgreSQL, transactions commit out
//! of the order in which they took sequence numbers, so a reader paging with `seq > last` could
//! pass over an event that commits a moment later. A pass reads only committed events and
//! numbers them after every number it has given, one pass at a time: what a reader has seen is
//! final.

use chrono::Utc;
use konektly_core::{ClaimKind, Completion, Error, Event, EventId, OwnerId, PostId, Result, StoredEvent, TargetId};

use crate::codec::{from_ns, ns};
use crate::common::{ReadRow, db_err};
use crate::sql::{Arg, Dialect, SqlStore, args};

/// The advisory lock key of a sequencing pass on PostgreSQL.
pub(crate) const SEQUENCE_LOCK: i64 = 7_245_190_144;

/// An event's row: its id, owner, kind and JSON body.
pub(crate) struct EventRow {
    pub id: String,
    pub owner: String,
    pub kind: &'static str,
    pub body: String,
}

impl EventRow {
    /// The row of `event`, if the outbox keeps it.
    pub fn new(owner: &str, event: &Event) -> Result<Option<Self>> {
        if !event.is_durable() {
            return Ok(None);
        }
        Ok(Some(Self {
            id: EventId::new().to_string(),
            owner: owner.to_owned(),
            kind: event.kind(),
            body: crate::codec::to_json(event, "an event")?,
        }))
    }
}

/// The event a recorded outcome raises (see [`Event::for_completion`]), or the cancel it ended
/// in, from the target row's columns after the update.
pub(crate) fn completion_event(row: &impl ReadRow, completion: &Completion) -> Result<Option<(String, Event)>> {
    let read = |e| db_err("reading an outcome")(e);
    let id: String = row.text("id").map_err(read)?;
    let post: String = row.text("post_id").map_err(read)?;
    let owner: String = row.text("owner").map_err(read)?;
    let state: String = row.text("state").map_err(read)?;
    let claim: Option<String> = row.opt_text("claim_kind").map_err(read)?;
    let target: TargetId = crate::codec::parse_id(&id, "a target id")?;
    let post: PostId = crate::codec::parse_id(&post, "a post id")?;
    let event = if state == "cancelled" {
        Some(Event::Cancelled { target, post })
    } else {
        Event::for_completion(target, post, claim.as_deref().and_then(ClaimKind::parse), completion)
    };
    Ok(event.map(|e| (owner, e)))
}

/// Writes `events` of `owner` inside `tx`.
pub(crate) async fn insert_tx<D: Dialect>(
    tx: &mut sqlx::Transaction<'static, D>,
    owner: &str,
    events: &[Event],
) -> Result<()> {
    let now = ns(Utc::now());
    for e in events {
        let Some(row) = EventRow::new(owner, e)? else { continue };
        let sql = "INSERT INTO konektly_events (id, owner, kind, body, created_at_ns) VALUES ($1, $2, $3, $4, $5)";
        D::tx_execute(tx, sql.into(), args![row.id, row.owner, row.kind, row.body, now])
            .await
            .map_err(db_err("writing an event"))?;
    }
    Ok(())
}

/// [`EventLog::append_events`](konektly_core::EventLog::append_events).
pub(crate) async fn append<S: SqlStore>(s: &S, owner: &OwnerId, events: &[Event]) -> Result<()> {
    if !events.iter().any(Event::is_durable) {
        return Ok(());
    }
    let mut tx = s.write_tx("writing events").await?;
    insert_tx(&mut tx, owner.as_str(), events).await?;
    tx.commit().await.map_err(db_err("committing events"))
}

/// One sequencing pass (see the module's documentation), fanning the newly numbered events out
/// to their owners' active webhook endpoints.
pub(crate) async fn sequence<S: SqlStore>(s: &S, limit: usize) -> Result<usize> {
    let mut tx = s.write_tx("numbering events").await?;
    if let Some(lock) = s.lock_statement(SEQUENCE_LOCK) {
        S::Db::tx_execute(&mut tx, lock, Vec::new()).await.map_err(db_err("locking the event log"))?;
    }
    let row =
        S::Db::tx_fetch_optional(&mut tx, "SELECT COALESCE(MAX(seq), 0) AS m FROM konektly_events".into(), args![])
            .await
            .map_err(db_err("reading the event log"))?;
    let last = row.map(|r| r.int("m")).transpose().map_err(db_err("reading the event log"))?.unwrap_or(0);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = "SELECT id FROM konektly_events WHERE seq IS NULL ORDER BY created_at_ns, id LIMIT $1";
    let rows = S::Db::tx_fetch_all(&mut tx, sql.into(), args![limit]).await.map_err(db_err("numbering events"))?;
    let ids = rows.iter().map(|r| r.text("id")).collect::<Result<Vec<_>, _>>().map_err(db_err("numbering events"))?;
    // One statement per few hundred events: each id's number is its place after the last.
    let mut n = 0u64;
    for chunk in ids.chunks(400) {
        let mut a: Vec<Arg> = vec![Arg::Int(last + n as i64)];
        let mut cases = String::new();
        let mut list = Vec::with_capacity(chunk.len());
        for (i, id) in chunk.iter().enumerate() {
            a.push(Arg::Text(id.clone()));
            let ph = format!("${}", a.len());
            cases.push_str(&format!(" WHEN {ph} THEN {}", i + 1));
            list.push(ph);
        }
        let sql = format!(
            "UPDATE konektly_events SET seq = $1 + CASE id{cases} END WHERE id IN ({}) AND seq IS NULL",
            list.join(", ")
        );
        n += S::Db::tx_execute(&mut tx, sql, a).await.map_err(db_err("numbering events"))?;
    }
    if n > 0 {
        let now = ns(Utc::now());
        let sql = "INSERT INTO konektly_deliveries (id, event_id, webhook_id, owner, state, attempts, next_attempt_ns, created_at_ns) \
                   SELECT e.id || ':' || w.id, e.id, w.id, e.owner, 'pending', 0, $2, $2 \
                   FROM konektly_events e JOIN konektly_webhooks w ON w.owner = e.owner AND w.active = 1 \
                   AND (w.events = '*' OR w.events LIKE '%,' || e.kind || ',%') \
                   WHERE e.seq > $1 ON CONFLICT DO NOTHING";
        S::Db::tx_execute(&mut tx, sql.into(), args![last, now])
            .await
            .map_err(db_err("queueing webhook deliveries"))?;
    }
    tx.commit().await.map_err(db_err("committing numbered events"))?;
    Ok(n as usize)
}

const EVENT_COLS: &str = "id, seq, owner, body, created_at_ns";

/// Reads a stored event's row.
pub(crate) fn event_of(r: &impl ReadRow) -> Result<StoredEvent> {
    let read = |e| db_err("reading an event")(e);
    let body = r.text("body").map_err(read)?;
    let event: Event = serde_json::from_str(&body).map_err(|e| {
        Error::storage("a stored event does not parse: a newer konektly wrote it, or the row was changed", e)
    })?;
    Ok(StoredEvent {
        id: crate::codec::parse_id(&r.text("id").map_err(read)?, "an event id")?,
        seq: r.opt_int("seq").map_err(read)?.unwrap_or(0) as u64,
        owner: OwnerId::new(r.text("owner").map_err(read)?),
        at: from_ns(r.int("created_at_ns").map_err(read)?),
        event,
    })
}

/// [`EventLog::events_after`](konektly_core::EventLog::events_after).
pub(crate) async fn after<S: SqlStore>(
    s: &S,
    owner: Option<&OwnerId>,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (sql, args) = match owner {
        Some(o) => (
            format!("SELECT {EVENT_COLS} FROM konektly_events WHERE owner = $1 AND seq > $2 ORDER BY seq LIMIT $3"),
            vec![Arg::Text(o.as_str().to_owned()), Arg::Int(after), Arg::Int(limit)],
        ),
        None => (
            format!("SELECT {EVENT_COLS} FROM konektly_events WHERE seq > $1 ORDER BY seq LIMIT $2"),
            vec![Arg::Int(after), Arg::Int(limit)],
        ),
    };
    let rows = S::Db::fetch_all(s.pool(), sql, args).await.map_err(db_err("reading events"))?;
    rows.iter().map(event_of).collect()
}
