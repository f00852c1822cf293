//! Tokens at rest: never readable in the database, tampering is a typed error, rotation keeps
//! every account usable.

mod support;

use konektly_core::{Error, OwnerId, PendingAuthorization, PkceVerifier, PlatformId};
use konektly_store::{CryptoError, KeyRing, KonektlyStore, SqliteStore};
use support::{Raw, account, leaks, token};

const ACCOUNTS: (&str, &str) = ("konektly_accounts", "access_token");

fn crypto_source(e: &Error) -> &CryptoError {
    let Error::Storage { source: Some(s), .. } = e else { panic!("expected a Storage error with a source, got {e:?}") };
    s.downcast_ref::<CryptoError>().unwrap_or_else(|| panic!("the source is a CryptoError: {e:?}"))
}

/// Stores accounts (inserted, then updated) and a pending authorization; returns every secret.
async fn store_secrets(store: &dyn KonektlyStore) -> Vec<String> {
    let mut secrets = Vec::new();
    for _ in 0..3 {
        let (a, r) = (token("access"), token("refresh"));
        let acc = account("owner-enc", &a, Some(&r));
        store.insert_account(&acc).await.unwrap();
        let mut next = store.get_account(acc.id).await.unwrap().unwrap();
        assert_eq!(next.tokens.access_token.expose(), a);
        let rotated = token("rotated");
        next.tokens.access_token = konektly_core::AccessToken::new(rotated.clone());
        store.update_account(&next).await.unwrap();
        secrets.extend([a, r, rotated]);
    }
    let verifier = token("pkce");
    store
        .put_pending(&PendingAuthorization {
            state: format!("state-{}", uuid::Uuid::new_v4()),
            platform: PlatformId::new("x"),
            owner: OwnerId::new("owner-enc"),
            redirect_uri: "https://app.example/cb".parse().unwrap(),
            pkce_verifier: Some(PkceVerifier::new(verifier.clone())),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(5),
            reconnect: None,
        })
        .await
        .unwrap();
    secrets.push(verifier);
    secrets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_bytes_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = SqliteStore::open(&path, KeyRing::generate("k1")).await.unwrap();
    let secrets = store_secrets(&store).await;
    store.close().await;
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        files += 1;
        for s in &secrets {
            assert!(!leaks(&bytes, s), "{} holds a token in clear", p.display());
        }
    }
    assert!(files >= 1);
    // The file does hold what is not secret, so the search is meaningful.
    let bytes = std::fs::read(&path).unwrap();
    assert!(leaks(&bytes, "owner-enc"), "the search finds plain data in the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_bytes_in_a_dump_of_the_postgres_tables() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("enc");
    let store = support::pg_store(&url, &schema, KeyRing::generate("k1")).await;
    let secrets = store_secrets(&store).await;
    let dump = Raw::pg(&url, &schema).await.pg_dump_text().await;
    assert!(dump.contains("owner-enc"), "the dump shows plain data");
    for s in &secrets {
        assert!(!leaks(dump.as_bytes(), s), "the dump shows a token");
    }
    support::drop_schema(&url, &schema).await;
}

async fn tampering_is_a_typed_error(store: &dyn KonektlyStore, raw: &Raw) {
    let a = account("owner-tamper", &token("access"), Some(&token("refresh")));
    let b = account("owner-tamper", &token("access"), None);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let original = raw.blob(ACCOUNTS, "id", &a.id.to_string()).await;

    // One flipped bit in the ciphertext.
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    raw.set_blob(ACCOUNTS, "id", &a.id.to_string(), flipped).await;
    let e = store.get_account(a.id).await.unwrap_err();
    assert!(matches!(crypto_source(&e), CryptoError::Tampered { .. }), "{e}");
    assert!(!e.to_string().contains(a.tokens.access_token.expose()));

    // A ciphertext copied from another account's row does not open in this one.
    raw.set_blob(ACCOUNTS, "id", &a.id.to_string(), raw.blob(ACCOUNTS, "id", &b.id.to_string()).await).await;
    let e = store.get_account(a.id).await.unwrap_err();
    assert!(matches!(crypto_source(&e), CryptoError::Tampered { .. }), "{e}");

    // Garbage is malformed, not a panic.
    raw.set_blob(ACCOUNTS, "id", &a.id.to_string(), vec![7, 7, 7]).await;
    let e = store.get_account(a.id).await.unwrap_err();
    assert!(matches!(crypto_source(&e), CryptoError::Malformed { .. }), "{e}");

    // Restored, it reads again.
    raw.set_blob(ACCOUNTS, "id", &a.id.to_string(), original).await;
    assert_eq!(store.get_account(a.id).await.unwrap().unwrap().tokens, a.tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_ciphertext_is_a_typed_error_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path, KeyRing::generate("k1")).await.unwrap();
    tampering_is_a_typed_error(&store, &Raw::sqlite(&path).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_ciphertext_is_a_typed_error_postgres() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("tamper");
    let store = support::pg_store(&url, &schema, KeyRing::generate("k1")).await;
    tampering_is_a_typed_error(&store, &Raw::pg(&url, &schema).await).await;
    support::drop_schema(&url, &schema).await;
}

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Accounts written under k1 stay usable under "k2,k1", rotation moves them to k2, and then
/// k1 can be retired.
async fn rotation_keeps_accounts_usable<S, F, Fut>(open: F)
where
    S: KonektlyStore,
    F: Fn(KeyRing) -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let old = open(KeyRing::parse(K1).unwrap()).await;
    let mut accounts = Vec::new();
    for _ in 0..5 {
        let a = account("owner-rot", &token("access"), Some(&token("refresh")));
        old.insert_account(&a).await.unwrap();
        accounts.push(a);
    }
    drop(old);

    let only_new = open(KeyRing::parse(K2).unwrap()).await;
    let e = only_new.get_account(accounts[0].id).await.unwrap_err();
    assert!(matches!(crypto_source(&e), CryptoError::UnknownKey { key_id, .. } if key_id == "k1"), "{e}");
    drop(only_new);

    let both = open(KeyRing::parse(&format!("{K2},{K1}")).unwrap()).await;
    for a in &accounts {
        assert_eq!(both.get_account(a.id).await.unwrap().unwrap().tokens, a.tokens, "older keys still decrypt");
    }
    assert_eq!(both.rotate_keys().await.unwrap(), 5, "every account is re-encrypted");
    assert_eq!(both.rotate_keys().await.unwrap(), 0, "a second rotation has nothing to do");
    drop(both);

    let retired = open(KeyRing::parse(K2).unwrap()).await;
    for a in &accounts {
        let got = retired.get_account(a.id).await.unwrap().unwrap();
        assert_eq!(got.tokens, a.tokens, "after rotation the newest key alone opens every account");
        assert_eq!(got.version, a.version, "rotation is not an update of the account");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_every_account_usable_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    rotation_keeps_accounts_usable(|k| {
        let path = path.clone();
        async move { SqliteStore::open(path, k).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_every_account_usable_postgres() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("rot");
    rotation_keeps_accounts_usable(|k| {
        let (url, schema) = (url.clone(), schema.clone());
        async move { support::pg_store(&url, &schema, k).await }
    })
    .await;
    support::drop_schema(&url, &schema).await;
}

#[test]
fn a_missing_or_malformed_key_is_a_config_error_that_hides_the_key() {
    for spec in
        ["", " , ", "k1", "k1:", "k1:!!!!", "k1:AAECAwQ=", "bad id:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
    {
        match KeyRing::parse(spec) {
            Err(Error::Config(m)) => assert!(!m.contains("AAECAwQF"), "{m}"),
            other => panic!("{spec:?} must be a Config error, got {other:?}"),
        }
    }
}

/// Whether `text` holds any run of 8 or more characters of `key`.
fn shows_part_of(text: &str, key: &str) -> Option<String> {
    let chars: Vec<char> = key.chars().collect();
    chars.windows(8).map(|w| w.iter().collect::<String>()).find(|part| text.contains(part.as_str()))
}

/// Issue 13: a key written where the id goes (`base64key:id`), or any other malformed entry,
/// gives an error that names the entry by position and what is wrong, never the key.
#[test]
fn a_key_written_the_wrong_way_round_is_refused_without_echoing_it() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let unpadded = key.trim_end_matches('=');
    let short = "AAECAwQFBgcICQoLDA0ODw=="; // 16 bytes
    let cases: Vec<(String, &str)> = vec![
        (format!("{key}:k1"), "entry 1 is written the wrong way round"),
        (format!("k2:{K2_KEY}, {key}:k1"), "entry 2 is written the wrong way round"),
        (key.to_owned(), "entry 1 has no `:`"),
        (format!("{unpadded}:k1"), "entry 1 has a key that is not valid standard base64"),
        (format!("my key:{key}"), "entry 1 has an invalid key id"),
        (format!("{key}:{key}"), "entry 1 has an invalid key id"),
        (format!("k1:{key}x"), "entry 1 has a key that is not valid standard base64"),
        (format!("k1:{short}"), "entry 1 has a key of 16 bytes"),
        (format!("k1:{key},,k1:{key}"), "entry 3 has the same key id as entry 1"),
        (format!("{}:{key}", "k".repeat(65)), "entry 1 has an invalid key id"),
    ];
    for (spec, expected) in &cases {
        let e = KeyRing::parse(spec).err().unwrap_or_else(|| panic!("{spec:?} must be refused"));
        assert!(matches!(e, Error::Config(_)), "{spec:?}: {e:?}");
        let (display, debug) = (e.to_string(), format!("{e:?}"));
        assert!(display.contains(expected), "{spec:?}: `{display}` should say `{expected}`");
        for text in [&display, &debug] {
            for secret in [key, short, K2_KEY] {
                assert_eq!(shows_part_of(text, secret), None, "{spec:?}: the error shows key material: {text}");
            }
        }
    }
}

const K2_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Issue 13: an upload URL or session URI kept in a checkpoint (marked secret by the adapter)
/// is sealed at rest, read back intact by the worker, and never shown by `export` or `Debug`.
async fn checkpoint_secrets_are_sealed(store: &dyn KonektlyStore) -> String {
    use konektly_core::{Checkpoint, ClaimRequest, Content, Post, Target, TargetRecord, WorkerId};
    let acc = account("owner-cp", &token("access"), None);
    store.insert_account(&acc).await.unwrap();
    let post = Post::new(acc.owner.clone(), Content::text("a video")).to(Target::new(acc.id));
    let record = TargetRecord::new(&post, &post.targets[0], acc.platform.clone(), chrono::Utc::now());
    store.enqueue(std::slice::from_ref(&record)).await.unwrap();
    let mut req = ClaimRequest::new(WorkerId::new("w1"), 1, std::time::Duration::from_secs(30));
    req.only = Some(vec![record.id]);
    let claimed = store.claim(&req).await.unwrap().remove(0);
    let secret = format!("https://upload.example/video/?upload_token={}", token("upl"));
    let cp = Checkpoint::from_json(serde_json::json!({"publish_id": "p-1", "upload_url": {"$secret": secret}}));
    store.save_checkpoint(&claimed.lease, &cp).await.unwrap();
    let back = store.get(record.id).await.unwrap().unwrap();
    assert_eq!(back.checkpoint, cp, "the worker reads the secret back");
    assert!(!format!("{back:?}").contains(&secret), "Debug hides it");
    let export = store.export_account(acc.id).await.unwrap().to_string();
    assert!(export.contains("p-1") && !export.contains(&secret), "export hides it: {export}");
    // The lease renewal that saves a checkpoint before a create seals it too.
    store.save_checkpoint_renewing(&claimed.lease, &cp, std::time::Duration::from_secs(30)).await.unwrap();
    assert_eq!(store.get(record.id).await.unwrap().unwrap().checkpoint, cp);
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_secrets_are_sealed_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.db");
    let store = SqliteStore::open(&path, KeyRing::generate("k1")).await.unwrap();
    let secret = checkpoint_secrets_are_sealed(&store).await;
    store.close().await;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        assert!(!leaks(&std::fs::read(&p).unwrap(), &secret), "{} holds an upload URL in clear", p.display());
    }
    assert!(leaks(&std::fs::read(&path).unwrap(), "p-1"), "the search finds the rest of the checkpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_secrets_are_sealed_in_postgres() {
    let Some(url) = support::pg_url() else { return };
    let schema = support::fresh_schema("cpenc");
    let store = support::pg_store(&url, &schema, KeyRing::generate("k1")).await;
    let secret = checkpoint_secrets_are_sealed(&store).await;
    let dump = Raw::pg(&url, &schema).await.pg_dump_text().await;
    assert!(dump.contains("p-1"), "the dump shows the rest of the checkpoint");
    assert!(!leaks(dump.as_bytes(), &secret), "the dump shows an upload URL");
    support::drop_schema(&url, &schema).await;
}
