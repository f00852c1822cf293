//! Shared by the integration tests: stores on SQLite and, when `KONEKTLY_TEST_POSTGRES_URL` is
//! set, on PostgreSQL in a schema of their own.
#![allow(dead_code)]

use konektly_store::{KeyRing, PostgresStore};

pub const PG_ENV: &str = "KONEKTLY_TEST_POSTGRES_URL";

/// The PostgreSQL URL, if the tests should use PostgreSQL. CI always sets it.
pub fn pg_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("{PG_ENV} is not set: skipping the PostgreSQL part");
            None
        }
    }
}

/// A fresh schema name.
pub fn fresh_schema(tag: &str) -> String {
    format!("konektly_test_{tag}_{}", uuid::Uuid::new_v4().simple())
}

/// A store in a schema of its own.
pub async fn pg_store(url: &str, schema: &str, keys: KeyRing) -> PostgresStore {
    PostgresStore::builder(url).schema(schema).keys(keys).connect().await.expect("connect to PostgreSQL")
}

use chrono::Utc;
use konektly_core::{AccessToken, Account, AccountId, AccountStatus, OwnerId, PlatformId, RefreshToken, TokenSet};
use sqlx::{AssertSqlSafe, Row as _};

/// An account with the given tokens.
pub fn account(owner: &str, access: &str, refresh: Option<&str>) -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(AccessToken::new(access));
    tokens.refresh_token = refresh.map(RefreshToken::new);
    tokens.expires_at = Some(now + chrono::Duration::hours(1));
    tokens.scopes = vec!["post".into()];
    Account {
        id: AccountId::new(),
        owner: OwnerId::new(owner),
        platform: PlatformId::new("x"),
        remote_id: format!("remote-{}", uuid::Uuid::new_v4()),
        handle: Some("@someone".into()),
        display_name: Some("Someone".into()),
        avatar_url: None,
        tokens,
        status: AccountStatus::Active,
        parent: None,
        metadata: Default::default(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// A secret-looking token that is easy to search for.
pub fn token(kind: &str) -> String {
    format!("{kind}-TOKEN-{}", uuid::Uuid::new_v4().simple())
}

/// Direct access to the database behind a store, to look at and damage what it wrote.
pub enum Raw {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool, String),
}

impl Raw {
    pub async fn sqlite(path: &std::path::Path) -> Self {
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        Raw::Sqlite(sqlx::SqlitePool::connect_with(opts).await.unwrap())
    }

    pub async fn pg(url: &str, schema: &str) -> Self {
        let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let opts = opts.options([("search_path", schema)]);
        Raw::Pg(sqlx::PgPool::connect_with(opts).await.unwrap(), schema.to_owned())
    }

    pub async fn blob(&self, table_col: (&str, &str), key_col: &str, key: &str) -> Vec<u8> {
        let sql = format!("SELECT {} FROM {} WHERE {key_col} = $1", table_col.1, table_col.0);
        match self {
            Raw::Sqlite(p) => sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_one(p).await.unwrap().get(0),
            Raw::Pg(p, _) => sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_one(p).await.unwrap().get(0),
        }
    }

    pub async fn set_blob(&self, table_col: (&str, &str), key_col: &str, key: &str, value: Vec<u8>) {
        let sql = format!("UPDATE {} SET {} = $1 WHERE {key_col} = $2", table_col.0, table_col.1);
        let n = match self {
            Raw::Sqlite(p) => {
                sqlx::query(AssertSqlSafe(sql)).bind(value).bind(key).execute(p).await.unwrap().rows_affected()
            }
            Raw::Pg(p, _) => {
                sqlx::query(AssertSqlSafe(sql)).bind(value).bind(key).execute(p).await.unwrap().rows_affected()
            }
        };
        assert_eq!(n, 1);
    }

    pub async fn exec(&self, sql: &str) {
        match self {
            Raw::Sqlite(p) => sqlx::query(AssertSqlSafe(sql.to_owned())).execute(p).await.map(drop).unwrap(),
            Raw::Pg(p, _) => sqlx::query(AssertSqlSafe(sql.to_owned())).execute(p).await.map(drop).unwrap(),
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(p).await.unwrap(),
            Raw::Pg(p, _) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(p).await.unwrap(),
        }
    }

    /// Every row of every table of the schema, as PostgreSQL prints it (bytea as hex).
    pub async fn pg_dump_text(&self) -> String {
        let Raw::Pg(p, schema) = self else { panic!("PostgreSQL only") };
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1")
                .bind(schema)
                .fetch_all(p)
                .await
                .unwrap();
        assert!(tables.len() >= 5, "the dump sees konektly's tables: {tables:?}");
        let mut out = String::new();
        for t in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT t::text FROM \"{schema}\".\"{t}\" t")))
                    .fetch_all(p)
                    .await
                    .unwrap();
            for r in rows {
                out.push_str(&r);
                out.push('\n');
            }
        }
        out
    }
}

/// Whether `needle` appears in `hay` as bytes, or as lower-case hex.
pub fn leaks(hay: &[u8], needle: &str) -> bool {
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    let contains = |n: &[u8]| hay.windows(n.len()).any(|w| w == n);
    contains(needle.as_bytes()) || contains(hex.as_bytes())
}

/// Drops a test's schema once it passed (a failed test leaves its schema for a look).
pub async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))).execute(&pool).await.unwrap();
    pool.close().await;
}
