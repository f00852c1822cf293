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

/// The `TokenStore`, the shared `Scheduler` operations, rotation and data rights.
macro_rules! impl_common {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl konektly_core::TokenStore for $store {
            async fn insert_account_raising(
                &self,
                account: &konektly_core::Account,
                events: &[konektly_core::Event],
            ) -> konektly_core::Result<()> {
                $crate::accounts::insert_account(self, account, events).await
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
            async fn update_account_raising(
                &self,
                account: &konektly_core::Account,
                events: &[konektly_core::Event],
            ) -> konektly_core::Result<konektly_core::Account> {
                $crate::accounts::update_account(self, account, events).await
            }
            async fn list_accounts(
                &self,
                owner: &konektly_core::OwnerId,
            ) -> konektly_core::Result<Vec<konektly_core::Account>> {
                $crate::accounts::list_accounts(self, owner).await
            }
            async fn delete_account_raising(
                &self,
                id: konektly_core::AccountId,
                events: &[konektly_core::Event],
            ) -> konektly_core::Result<bool> {
                $crate::accounts::delete_account(self, id, events).await
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
        impl konektly_core::EventLog for $store {
            async fn append_events(
                &self,
                owner: &konektly_core::OwnerId,
                events: &[konektly_core::Event],
            ) -> konektly_core::Result<()> {
                $crate::outbox::append(self, owner, events).await
            }
            async fn sequence_events(&self, limit: usize) -> konektly_core::Result<usize> {
                $crate::outbox::sequence(self, limit).await
            }
            async fn events_after(
                &self,
                owner: Option<&konektly_core::OwnerId>,
                after: u64,
                limit: usize,
            ) -> konektly_core::Result<Vec<konektly_core::StoredEvent>> {
                $crate::outbox::after(self, owner, after, limit).await
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
            async fn purge_published_before(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> konektly_core::Result<u64> {
                <$store>::purge_published_before(self, before).await
            }
            async fn rotate_keys(&self) -> konektly_core::Result<u64> {
                <$store>::rotate_keys(self).await
            }
        }

        impl $store {
            /// Re-encrypts every stored secret that is not sealed with the newest key of the
            /// key ring. Returns how many rows were rewritten. Safe to run while workers run,
            /// and to run again after an interruption.
            pub async fn rotate_keys(&self) -> konektly_core::Result<u64> {
                $crate::rights::rotate_keys(self).await
            }

            /// Everything stored about an account, as JSON: its profile, status, scopes and token
            /// expiry (the tokens themselves are credentials of the application and are not
            /// exported), its pending reconnections and every target it publishes.
            pub async fn export_account(
                &self,
                id: konektly_core::AccountId,
            ) -> konektly_core::Result<serde_json::Value> {
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

pub(crate) use impl_common;
