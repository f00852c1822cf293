//! Embedded schema migrations, applied at connect. A database whose schema is newer than this
//! code is refused before anything is written to it.

use konektly_core::Error;

/// One migration: its version and its statements.
pub(crate) struct Migration {
    pub version: i64,
    pub statements: &'static [&'static str],
}

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: i64 = 7;

const V1_COMMON_TARGETS: &str = "CREATE TABLE IF NOT EXISTS konektly_targets (
    id TEXT PRIMARY KEY,
    post_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    account_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    state_detail TEXT,
    due_at_ns BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    checkpoint TEXT,
    last_error TEXT,
    lease_owner TEXT,
    lease_expires_ns BIGINT,
    fencing BIGINT NOT NULL DEFAULT 0,
    claim_kind TEXT,
    claim_at_ns BIGINT,
    attempt_started_ns BIGINT,
    created_at_ns BIGINT NOT NULL,
    updated_at_ns BIGINT NOT NULL
)";

const V1_INDEXES: [&str; 6] = [
    "CREATE INDEX IF NOT EXISTS konektly_targets_claim ON konektly_targets (claim_at_ns, id) WHERE claim_at_ns IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS konektly_targets_post ON konektly_targets (post_id)",
    "CREATE INDEX IF NOT EXISTS konektly_targets_account ON konektly_targets (account_id)",
    "CREATE INDEX IF NOT EXISTS konektly_targets_owner ON konektly_targets (owner)",
    "CREATE INDEX IF NOT EXISTS konektly_accounts_owner ON konektly_accounts (owner, created_at_ns, id)",
    "CREATE INDEX IF NOT EXISTS konektly_accounts_remote ON konektly_accounts (owner, platform, remote_id)",
];

const V1_BUDGETS: &str = "CREATE TABLE IF NOT EXISTS konektly_budgets (
    key TEXT PRIMARY KEY,
    window_start_ns BIGINT,
    used BIGINT NOT NULL DEFAULT 0,
    blocked_until_ns BIGINT
)";

macro_rules! v1 {
    ($blob:literal) => {
        &[
            concat!(
                "CREATE TABLE IF NOT EXISTS konektly_accounts (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    platform TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    access_token ",
                $blob,
                " NOT NULL,
    refresh_token ",
                $blob,
                ",
    profile TEXT NOT NULL,
    created_at_ns BIGINT NOT NULL,
    updated_at_ns BIGINT NOT NULL
)"
            ),
            concat!(
                "CREATE TABLE IF NOT EXISTS konektly_pending (
    state TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    platform TEXT NOT NULL,
    reconnect TEXT,
    key_id TEXT NOT NULL,
    pkce_verifier ",
                $blob,
                ",
    body TEXT NOT NULL,
    expires_at_ns BIGINT NOT NULL
)"
            ),
            "CREATE INDEX IF NOT EXISTS konektly_pending_reconnect ON konektly_pending (reconnect)",
            V1_COMMON_TARGETS,
            V1_INDEXES[0],
            V1_INDEXES[1],
            V1_INDEXES[2],
            V1_INDEXES[3],
            V1_INDEXES[4],
            V1_INDEXES[5],
            V1_BUDGETS,
        ]
    };
}

/// Version 2: the queue moves out of the wide target row into a narrow `konektly_queue` (one row
/// per claimable target: its id, when it may be claimed, its platform, and the expiry of the
/// lease it is under, if any). Neither a claim (which sets `leased_until_ns`) nor the target
/// row's own updates touch an indexed column: on PostgreSQL both are HOT updates, kept on their
/// page by the fillfactor. Existing claimable targets are carried over.
const V2_QUEUE: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS konektly_queue (
    id TEXT PRIMARY KEY,
    claim_at_ns BIGINT NOT NULL,
    platform TEXT NOT NULL,
    leased_until_ns BIGINT
)",
    "INSERT INTO konektly_queue (id, claim_at_ns, platform) \
     SELECT id, claim_at_ns, platform FROM konektly_targets WHERE claim_at_ns IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS konektly_queue_due ON konektly_queue (claim_at_ns, id)",
    "DROP INDEX IF EXISTS konektly_targets_claim",
];
const V2_DROP_CLAIM_AT: &str = "ALTER TABLE konektly_targets DROP COLUMN claim_at_ns";

/// Version 3: one account per `(owner, platform, remote id)` (parallel connects of one login
/// made duplicates), and `cancel_requested_ns` on targets (a cancel that came while the platform
/// may already be publishing). A database that already holds duplicate accounts fails this
/// migration with the unique index's error and is left at version 2: remove or merge the
/// duplicates (`konektly_accounts` rows with the same owner, platform and remote_id), then start
/// again.
const V3: [&str; 3] = [
    "ALTER TABLE konektly_targets ADD COLUMN cancel_requested_ns BIGINT",
    "DROP INDEX IF EXISTS konektly_accounts_remote",
    "CREATE UNIQUE INDEX IF NOT EXISTS konektly_accounts_remote_unique ON konektly_accounts (owner, platform, remote_id)",
];

/// Version 4: the outbox and what the server keeps. `konektly_events` holds every durable event,
/// written in the transaction of the change that raised it; `seq` is given after commit by one
/// sequencing pass at a time (readers page on it and never skip a late commit). API keys are
/// stored as SHA-256 hashes; webhook endpoints keep their signing secret sealed like tokens;
/// each (event, endpoint) pair is one delivery with its attempts; idempotency keys remember the
/// post a request created.
macro_rules! v4 {
    ($blob:literal) => {
        &[
            "CREATE TABLE IF NOT EXISTS konektly_events (
    id TEXT PRIMARY KEY,
    seq BIGINT UNIQUE,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_ns BIGINT NOT NULL
)",
            "CREATE INDEX IF NOT EXISTS konektly_events_unsequenced ON konektly_events (created_at_ns, id) WHERE seq IS NULL",
            "CREATE INDEX IF NOT EXISTS konektly_events_owner ON konektly_events (owner, seq)",
            "CREATE TABLE IF NOT EXISTS konektly_api_keys (
    id TEXT PRIMARY KEY,
    owner TEXT,
    admin BIGINT NOT NULL DEFAULT 0,
    hash TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at_ns BIGINT NOT NULL,
    revoked_at_ns BIGINT
)",
            concat!(
                "CREATE TABLE IF NOT EXISTS konektly_webhooks (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret ",
                $blob,
                " NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at_ns BIGINT NOT NULL
)"
            ),
            "CREATE INDEX IF NOT EXISTS konektly_webhooks_owner ON konektly_webhooks (owner)",
            "CREATE TABLE IF NOT EXISTS konektly_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ns BIGINT,
    leased_until_ns BIGINT,
    last_status BIGINT,
    last_error TEXT,
    delivered_at_ns BIGINT,
    created_at_ns BIGINT NOT NULL,
    UNIQUE (event_id, webhook_id)
)",
            "CREATE INDEX IF NOT EXISTS konektly_deliveries_due ON konektly_deliveries (next_attempt_ns) WHERE state = 'pending'",
            "CREATE INDEX IF NOT EXISTS konektly_deliveries_owner ON konektly_deliveries (owner, created_at_ns)",
            "CREATE TABLE IF NOT EXISTS konektly_idempotency (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    post_id TEXT NOT NULL,
    created_at_ns BIGINT NOT NULL,
    PRIMARY KEY (owner, key)
)",
        ]
    };
}

/// Version 5: posting queues (issue 17). A slot is a row keyed by (queue, instant): the primary
/// key is what makes taking a slot atomic across processes; a post holds one slot of a queue.
const V5: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS konektly_post_queues (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    paused BIGINT NOT NULL DEFAULT 0,
    created_at_ns BIGINT NOT NULL,
    UNIQUE (owner, name)
)",
    "CREATE TABLE IF NOT EXISTS konektly_queue_slots (
    queue_id TEXT NOT NULL,
    slot_at_ns BIGINT NOT NULL,
    post_id TEXT NOT NULL,
    PRIMARY KEY (queue_id, slot_at_ns),
    UNIQUE (queue_id, post_id)
)",
];

/// Version 6: recurring series (issue 17), one row each, updated by compare-and-swap.
const V6: [&str; 1] = ["CREATE TABLE IF NOT EXISTS konektly_series (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    body TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at_ns BIGINT NOT NULL
)"];

/// Version 7: metric snapshots of published targets (issue 18).
const V7: [&str; 1] = ["CREATE TABLE IF NOT EXISTS konektly_metric_snapshots (
    target_id TEXT NOT NULL,
    taken_at_ns BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (target_id, taken_at_ns)
)"];

pub(crate) const SQLITE: &[Migration] = &[
    Migration { version: 1, statements: v1!("BLOB") },
    Migration { version: 2, statements: &[V2_QUEUE[0], V2_QUEUE[1], V2_QUEUE[2], V2_QUEUE[3], V2_DROP_CLAIM_AT] },
    Migration { version: 3, statements: &V3 },
    Migration { version: 4, statements: v4!("BLOB") },
    Migration { version: 5, statements: &V5 },
    Migration { version: 6, statements: &V6 },
    Migration { version: 7, statements: &V7 },
];
pub(crate) const POSTGRES: &[Migration] = &[
    Migration { version: 1, statements: v1!("BYTEA") },
    Migration {
        version: 2,
        statements: &[
            // Ids compare bytewise whatever the database's collation: a lookup of 100 ids by
            // primary key under a libc locale (even C.UTF-8) spends most of its time in strcoll.
            "CREATE TABLE IF NOT EXISTS konektly_queue (
    id TEXT COLLATE \"C\" PRIMARY KEY,
    claim_at_ns BIGINT NOT NULL,
    platform TEXT COLLATE \"C\" NOT NULL,
    leased_until_ns BIGINT
) WITH (fillfactor = 80)",
            "ALTER TABLE konektly_targets ALTER COLUMN id TYPE TEXT COLLATE \"C\"",
            "ALTER TABLE konektly_accounts ALTER COLUMN id TYPE TEXT COLLATE \"C\"",
            V2_QUEUE[1],
            V2_QUEUE[2],
            V2_QUEUE[3],
            V2_DROP_CLAIM_AT,
            // Room on each page for the new versions of a target row (HOT updates).
            "ALTER TABLE konektly_targets SET (fillfactor = 70)",
        ],
    },
    Migration { version: 3, statements: &V3 },
    Migration { version: 4, statements: v4!("BYTEA") },
    Migration { version: 5, statements: &V5 },
    Migration { version: 6, statements: &V6 },
    Migration { version: 7, statements: &V7 },
];

/// The bookkeeping table (same on both backends).
pub(crate) const SCHEMA_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS konektly_schema (version BIGINT PRIMARY KEY, applied_at_ns BIGINT NOT NULL)";

/// Refuses a database whose schema is newer than this code.
pub(crate) fn check_not_newer(found: Option<i64>) -> konektly_core::Result<()> {
    match found {
        Some(v) if v > SCHEMA_VERSION => Err(Error::Config(format!(
            "the database schema is at version {v}, newer than this konektly-store understands ({SCHEMA_VERSION}); \
             it was left untouched: upgrade konektly-store"
        ))),
        _ => Ok(()),
    }
}

/// Inside an open migration transaction: creates `konektly_schema`, refuses a newer schema, and
/// applies (and records) every migration of `list` above the stored version. Both backends run
/// it; each opens its transaction its own way (an advisory lock, `BEGIN IMMEDIATE`).
pub(crate) async fn apply<D: crate::sql::Dialect>(
    tx: &mut sqlx::Transaction<'static, D>,
    list: &[Migration],
) -> konektly_core::Result<()> {
    use crate::common::{ReadRow, db_err};
    use crate::sql::args;
    D::tx_execute(tx, SCHEMA_TABLE.into(), Vec::new()).await.map_err(db_err("creating konektly_schema"))?;
    let row = D::tx_fetch_optional(tx, "SELECT MAX(version) AS v FROM konektly_schema".into(), Vec::new())
        .await
        .map_err(db_err("reading the schema version"))?;
    let found = row.map(|r| r.opt_int("v")).transpose().map_err(db_err("reading the schema version"))?.flatten();
    check_not_newer(found)?;
    for m in list.iter().filter(|m| Some(m.version) > found) {
        for s in m.statements {
            D::tx_execute(tx, (*s).to_owned(), Vec::new()).await.map_err(db_err("migrating"))?;
        }
        let sql = "INSERT INTO konektly_schema (version, applied_at_ns) VALUES ($1, $2)";
        D::tx_execute(tx, sql.into(), args![m.version, crate::codec::ns(chrono::Utc::now())])
            .await
            .map_err(db_err("recording a migration"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use konektly_core::{
        AccountId, ClaimKind, ClaimRequest, Content, OwnerId, PlatformId, Post, Scheduler, Target, TargetRecord,
        WorkerId,
    };
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use crate::{KeyRing, SqliteStore};

    /// A database written by version 1 (claim times on the target rows) keeps its queue when
    /// version 2 moves it to `konektly_queue`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn version_1_targets_stay_queued_after_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let opts = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
        sqlx::query(super::SCHEMA_TABLE).execute(&pool).await.unwrap();
        for s in super::SQLITE[0].statements {
            sqlx::query(sqlx::AssertSqlSafe(*s)).execute(&pool).await.unwrap();
        }
        sqlx::query("INSERT INTO konektly_schema (version, applied_at_ns) VALUES (1, 0)").execute(&pool).await.unwrap();
        let platform = PlatformId::new("x");
        let post = Post::new(OwnerId::new("o"), Content::text("hello")).to(Target::new(AccountId::new()));
        let due = chrono::Utc::now() - chrono::Duration::seconds(5);
        let record = TargetRecord::new(&post, &post.targets[0], platform.clone(), due);
        let row = crate::codec::TargetRow::encode(&crate::KeyRing::generate("k1"), &record).unwrap();
        let due_ns = crate::codec::ns(due);
        // What version 1 wrote for a scheduled target, and for a published one (not claimable).
        for (id, state, claim_at) in
            [(row.id.clone(), "scheduled", Some(due_ns)), (uuid::Uuid::new_v4().to_string(), "published", None)]
        {
            sqlx::query(
                "INSERT INTO konektly_targets (id, post_id, owner, account_id, platform, body, state, state_detail, \
                 due_at_ns, created_at_ns, updated_at_ns, claim_at_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9, $10)",
            )
            .bind(id)
            .bind(&row.post_id)
            .bind(&row.owner)
            .bind(&row.account_id)
            .bind(&row.platform)
            .bind(&row.body)
            .bind(state)
            .bind(if state == "published" {
                Some(r#"{"state":"published","remote":{"platform":"x","id":"1","url":null}}"#)
            } else {
                None
            })
            .bind(due_ns)
            .bind(claim_at)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;

        let store = SqliteStore::open(&path, KeyRing::generate("k")).await.expect("the upgrade applies");
        let version: i64 =
            sqlx::query_scalar("SELECT MAX(version) FROM konektly_schema").fetch_one(&store.pool).await.unwrap();
        assert_eq!(version, super::SCHEMA_VERSION);
        assert_eq!(store.next_due_at().await.unwrap().map(crate::codec::ns), Some(due_ns));
        let claims =
            store.claim(&ClaimRequest::new(WorkerId::new("w"), 10, std::time::Duration::from_secs(60))).await.unwrap();
        let ids: Vec<_> = claims.iter().map(|c| (c.record.id, c.kind)).collect();
        assert_eq!(ids, vec![(record.id, ClaimKind::Publish)], "only the scheduled target is queued");
    }
}
