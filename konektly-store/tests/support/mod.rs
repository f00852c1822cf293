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
