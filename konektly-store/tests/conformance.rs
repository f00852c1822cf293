//! Both backends pass konektly-core's conformance suites.

mod support;

use konektly_core::testing::{scheduler_conformance, token_store_conformance};
use konektly_store::{KeyRing, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_passes_the_token_store_suite() {
    let store = SqliteStore::in_memory(KeyRing::generate("k1")).await.unwrap();
    token_store_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_passes_the_scheduler_suite() {
    let store = SqliteStore::in_memory(KeyRing::generate("k1")).await.unwrap();
    scheduler_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_passes_both_suites() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("k.db"), KeyRing::generate("k1")).await.unwrap();
    token_store_conformance(&store).await;
    scheduler_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_both_suites() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("conf");
    let store = support::pg_store(&url, &schema, KeyRing::generate("k1")).await;
    token_store_conformance(&store).await;
    scheduler_conformance(&store).await;
    store.close().await;
    support::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_owners_apart() {
    let store = std::sync::Arc::new(SqliteStore::in_memory(KeyRing::generate("k1")).await.unwrap());
    konektly_core::testing::owner_isolation_conformance(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_owners_apart() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("iso");
    let store = std::sync::Arc::new(support::pg_store(&url, &schema, KeyRing::generate("k1")).await);
    konektly_core::testing::owner_isolation_conformance(store.clone(), store.clone()).await;
    store.close().await;
    support::drop_schema(&url, &schema).await;
}
