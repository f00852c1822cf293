//! Embedded schema migrations, applied at connect. A database whose schema is newer than this
//! code is refused before anything is written to it.

use konektly_core::Error;

/// One migration: its version and its statements.
pub(crate) struct Migration {
    pub version: i64,
    pub statements: &'static [&'static str],
}

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

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

pub(crate) const SQLITE: &[Migration] = &[Migration { version: 1, statements: v1!("BLOB") }];
pub(crate) const POSTGRES: &[Migration] = &[Migration { version: 1, statements: v1!("BYTEA") }];

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
