//! The small dialect the shared code runs on. Statements shared by both backends (the same text:
//! `$n` placeholders work on SQLite and PostgreSQL) are ordinary functions generic over a
//! [`SqlStore`], whose [`Dialect`] runs a statement with [`Arg`]s on a pool or in a
//! transaction. Each backend's own statements (claims, completions, budgets, wake-ups) stay in
//! `sqlite.rs` and `postgres.rs`.

use sqlx::{AssertSqlSafe, Pool, Transaction};

use crate::common::ReadRow;
use crate::crypto::KeyRing;

/// A bind value of a statement built at run time.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
    Bytes(Vec<u8>),
    OptBytes(Option<Vec<u8>>),
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(v)
    }
}

impl From<Option<Vec<u8>>> for Arg {
    fn from(v: Option<Vec<u8>>) -> Self {
        Arg::OptBytes(v)
    }
}

/// `[a.into(), b.into(), …]` as a `Vec<Arg>`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::sql::Arg::from($a)),*] };
}
pub(crate) use args;

/// Binds `args` in order.
pub(crate) fn bind_args<'q, DB: sqlx::Database>(
    mut q: sqlx::query::Query<'q, DB, DB::Arguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Vec<u8>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<Vec<u8>>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
            Arg::OptBytes(v) => q.bind(v),
        };
    }
    q
}

/// Runs a statement on a pool or in a transaction of one backend.
#[async_trait::async_trait]
pub(crate) trait Dialect: sqlx::Database<Row: ReadRow> {
    async fn fetch_optional(pool: &Pool<Self>, sql: String, args: Vec<Arg>) -> Result<Option<Self::Row>, sqlx::Error>;
    async fn fetch_all(pool: &Pool<Self>, sql: String, args: Vec<Arg>) -> Result<Vec<Self::Row>, sqlx::Error>;
    /// Returns the rows affected.
    async fn execute(pool: &Pool<Self>, sql: String, args: Vec<Arg>) -> Result<u64, sqlx::Error>;
    async fn tx_fetch_all(
        tx: &mut Transaction<'static, Self>,
        sql: String,
        args: Vec<Arg>,
    ) -> Result<Vec<Self::Row>, sqlx::Error>;
    async fn tx_fetch_optional(
        tx: &mut Transaction<'static, Self>,
        sql: String,
        args: Vec<Arg>,
    ) -> Result<Option<Self::Row>, sqlx::Error>;
    /// Returns the rows affected.
    async fn tx_execute(tx: &mut Transaction<'static, Self>, sql: String, args: Vec<Arg>) -> Result<u64, sqlx::Error>;
}

/// The same one-line bodies for each backend (their types differ: no generic code can
/// name the executors without restating sqlx's bounds at every use).
macro_rules! dialect {
    ($db:ty) => {
        #[async_trait::async_trait]
        impl Dialect for $db {
            async fn fetch_optional(
                pool: &Pool<Self>,
                sql: String,
                args: Vec<Arg>,
            ) -> Result<Option<Self::Row>, sqlx::Error> {
                bind_args(sqlx::query(AssertSqlSafe(sql)), args).fetch_optional(pool).await
            }
            async fn fetch_all(pool: &Pool<Self>, sql: String, args: Vec<Arg>) -> Result<Vec<Self::Row>, sqlx::Error> {
                bind_args(sqlx::query(AssertSqlSafe(sql)), args).fetch_all(pool).await
            }
            async fn execute(pool: &Pool<Self>, sql: String, args: Vec<Arg>) -> Result<u64, sqlx::Error> {
                Ok(bind_args(sqlx::query(AssertSqlSafe(sql)), args).execute(pool).await?.rows_affected())
            }
            async fn tx_fetch_all(
                tx: &mut Transaction<'static, Self>,
                sql: String,
                args: Vec<Arg>,
            ) -> Result<Vec<Self::Row>, sqlx::Error> {
                bind_args(sqlx::query(AssertSqlSafe(sql)), args).fetch_all(&mut **tx).await
            }
            async fn tx_fetch_optional(
                tx: &mut Transaction<'static, Self>,
                sql: String,
                args: Vec<Arg>,
            ) -> Result<Option<Self::Row>, sqlx::Error> {
                bind_args(sqlx::query(AssertSqlSafe(sql)), args).fetch_optional(&mut **tx).await
            }
            async fn tx_execute(
                tx: &mut Transaction<'static, Self>,
                sql: String,
                args: Vec<Arg>,
            ) -> Result<u64, sqlx::Error> {
                Ok(bind_args(sqlx::query(AssertSqlSafe(sql)), args).execute(&mut **tx).await?.rows_affected())
            }
        }
    };
}

dialect!(sqlx::Sqlite);
dialect!(sqlx::Postgres);

/// What the shared code needs of a store.
pub(crate) trait SqlStore: Send + Sync {
    type Db: Dialect;
    /// Where reads go.
    fn pool(&self) -> &Pool<Self::Db>;
    /// Where single writes go (SQLite: its one writing connection).
    fn writer(&self) -> &Pool<Self::Db>;
    fn keys(&self) -> &KeyRing;
    /// A write transaction (SQLite: `BEGIN IMMEDIATE` on the writer).
    fn write_tx(
        &self,
        what: &str,
    ) -> impl std::future::Future<Output = konektly_core::Result<Transaction<'static, Self::Db>>> + Send;
    /// A statement and its argument that wake idle workers when a transaction commits
    /// (PostgreSQL's `pg_notify`), if the backend has one.
    fn notify_statement(&self) -> Option<(&'static str, String)>;
    /// Wakes idle workers now.
    fn wake(&self) -> impl std::future::Future<Output = ()> + Send;
    /// This process's cache of budget checks.
    fn peeks(&self) -> &crate::common::PeekCache;
    /// A statement that makes the current write transaction the only one holding lock `key`
    /// until it ends (PostgreSQL's advisory lock); `None` where write transactions are serial.
    fn lock_statement(&self, key: i64) -> Option<String>;
}
