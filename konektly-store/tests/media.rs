//! The media store (issue 13): scheduled posts' local media are copied into an
//! `ObjectMediaStore` by hash, workers read them from it (from another directory, another
//! engine), and `collect_media` removes an object once every target referring to it has ended
//! — never while another unfinished post shares it. On the memory stores, SQLite and, when
//! `KONEKTLY_TEST_POSTGRES_URL` is set, PostgreSQL (a failure to connect then fails the test).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use konektly_core::testing::StubPlatform;
use konektly_core::{
    Account, AccountGrant, AccountId, AccountStatus, Capabilities, Content, Error, Konektly, Media, MediaSource,
    MediaStore, MemoryScheduler, MemoryTokenStore, OwnerId, PendingAuthorization, Platform, PlatformId, Post, Profile,
    PublishContext, PublishOutcome, Reconciliation, RemotePost, Scheduler, Target, TargetOptions, TargetState,
    TokenSet, TokenStore, Violation,
};
use konektly_store::{KeyRing, ObjectMediaStore, SqliteStore};
use sha2::{Digest, Sha256};

/// The stub platform, reading every media item's bytes when it publishes (as an upload would)
/// and recording their SHA-256.
#[derive(Debug)]
struct Reading {
    stub: StubPlatform,
    read: Mutex<Vec<String>>,
}

impl Reading {
    fn new() -> Arc<Self> {
        Arc::new(Self { stub: StubPlatform::new("stub"), read: Mutex::new(Vec::new()) })
    }
    fn read(&self) -> Vec<String> {
        self.read.lock().unwrap().clone()
    }
}

#[async_trait]
impl Platform for Reading {
    fn id(&self) -> PlatformId {
        self.stub.id()
    }
    fn capabilities(&self) -> &Capabilities {
        self.stub.capabilities()
    }
    fn validate(&self, content: &Content, options: &TargetOptions) -> Vec<Violation> {
        self.stub.validate(content, options)
    }
    fn authorization_request(
        &self,
        redirect_uri: &url::Url,
    ) -> konektly_core::Result<konektly_core::AuthorizationRequest> {
        self.stub.authorization_request(redirect_uri)
    }
    async fn exchange_code(&self, code: &str, p: &PendingAuthorization) -> konektly_core::Result<Vec<AccountGrant>> {
        self.stub.exchange_code(code, p).await
    }
    async fn refresh(&self, account: &Account) -> konektly_core::Result<TokenSet> {
        self.stub.refresh(account).await
    }
    async fn revoke(&self, account: &Account) -> konektly_core::Result<()> {
        self.stub.revoke(account).await
    }
    async fn profile(&self, account: &Account) -> konektly_core::Result<Profile> {
        self.stub.profile(account).await
    }
    async fn publish(&self, ctx: &mut PublishContext<'_>) -> konektly_core::Result<PublishOutcome> {
        let http = konektly_core::reqwest::Client::new();
        for m in &ctx.content.media {
            let bytes = m.read_all(&http, 64 << 20).await?;
            self.read.lock().unwrap().push(format!("{:x}", Sha256::digest(&bytes)));
        }
        self.stub.publish(ctx).await
    }
    async fn poll(&self, ctx: &mut PublishContext<'_>) -> konektly_core::Result<PublishOutcome> {
        self.stub.poll(ctx).await
    }
    async fn delete(&self, account: &Account, post: &RemotePost) -> konektly_core::Result<()> {
        self.stub.delete(account, post).await
    }
    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> konektly_core::Result<Reconciliation> {
        self.stub.reconcile(ctx).await
    }
}

fn account(owner: &OwnerId) -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(konektly_core::AccessToken::new("access"));
    tokens.expires_at = Some(now + chrono::Duration::hours(1));
    Account {
        id: AccountId::new(),
        owner: owner.clone(),
        platform: PlatformId::new("stub"),
        remote_id: uuid::Uuid::new_v4().to_string(),
        handle: None,
        display_name: None,
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

fn engine(
    tokens: Arc<dyn TokenStore>,
    scheduler: Arc<dyn Scheduler>,
    media: Arc<dyn MediaStore>,
    platform: Arc<Reading>,
) -> Konektly {
    Konektly::builder().token_store(tokens).scheduler(scheduler).media_store(media).platform(platform).build().unwrap()
}

/// A real JPEG header (probing refuses a broken one), then `n` distinct bytes.
fn jpeg(seed: u8, n: usize) -> Vec<u8> {
    let mut v = match konektly_testkit_free_jpeg().source {
        MediaSource::Bytes(b) => b.to_vec(),
        _ => unreachable!(),
    };
    v.extend((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

/// The smallest JPEG `Media::from_bytes` accepts: SOI, a SOF0 of 2×2, EOI.
fn konektly_testkit_free_jpeg() -> Media {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x02, 0x00, 0x02, 0x03];
    v.extend([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    v.extend([0xFF, 0xD9]);
    Media::from_bytes(v)
}

/// The whole scenario on one pair of stores. `second` is another engine on the same stores
/// (another process, in production), started in another directory.
async fn scenario(tokens: Arc<dyn TokenStore>, scheduler: Arc<dyn Scheduler>, media_url: &str, dir: &std::path::Path) {
    let owner = OwnerId::new("media-owner");
    let acct = account(&owner);
    tokens.insert_account(&acct).await.unwrap();

    // A file given by a path relative to the scheduler's directory.
    let bytes = jpeg(7, 300_000);
    let sha = format!("{:x}", Sha256::digest(&bytes));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("a").join("photo.jpg"), &bytes).unwrap();
    let media = Media::from_file(dir.join("a").join("photo.jpg")).await.unwrap();
    assert!(media.probe_error.is_none(), "{:?}", media.probe_error);

    let store_a: Arc<dyn MediaStore> = Arc::new(ObjectMediaStore::from_url(media_url).unwrap());
    let scheduling = engine(tokens.clone(), scheduler.clone(), store_a.clone(), Reading::new());
    // The scheduler reads the file where it is: give it the absolute path it probed.
    let later = Post::new(owner.clone(), Content { media: vec![media.clone()], ..Content::text("later") })
        .to(Target::new(acct.id))
        .at(Utc::now() + chrono::Duration::hours(1));
    let now = Post::new(owner.clone(), Content { media: vec![media.clone()], ..Content::text("now") })
        .to(Target::new(acct.id));
    scheduling.schedule(&later).await.unwrap();
    scheduling.schedule(&now).await.unwrap();
    // The file may go: the store has the bytes.
    std::fs::remove_file(dir.join("a").join("photo.jpg")).unwrap();

    // The stored target refers to the object by hash; the object has the bytes.
    let rec = &scheduler.list(&konektly_core::TargetFilter::post(now.id)).await.unwrap()[0];
    let MediaSource::Stored(s) = &rec.content.media[0].source else { panic!("not stored: {:?}", rec.content.media[0]) };
    assert_eq!(s.key.sha256(), sha);
    assert_eq!(s.key.as_str(), format!("{sha}.jpg"));
    assert_eq!(store_a.list().await.unwrap().len(), 1, "the same bytes are stored once");

    // Another engine (another process, started elsewhere) publishes with the exact bytes.
    let platform = Reading::new();
    let store_b: Arc<dyn MediaStore> = Arc::new(ObjectMediaStore::from_url(media_url).unwrap());
    let worker = engine(tokens.clone(), scheduler.clone(), store_b.clone(), platform.clone());
    worker.worker().run_once().await.unwrap();
    let st = worker.status(now.id).await.unwrap();
    assert!(matches!(st[0].state, TargetState::Published { .. }), "{:?}", st[0].state);
    assert_eq!(platform.read(), vec![sha.clone()]);

    // `now` is final but `later` still needs the object: kept.
    let report = worker.collect_media(Duration::ZERO).await.unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert!(store_b.exists(&s.key).await.unwrap());

    // `later` cancelled: every target referring to it has ended; collected.
    worker.cancel(later.id).await.unwrap();
    let report = worker.collect_media(Duration::ZERO).await.unwrap();
    assert_eq!(report.removed, vec![s.key.clone()]);
    assert!(!store_b.exists(&s.key).await.unwrap());
    assert!(store_b.list_trash().await.unwrap().is_empty());

    // A target whose object is gone ends with a typed error, not a panic.
    let gone =
        Post::new(owner.clone(), Content { media: vec![Media::from_bytes(bytes.clone())], ..Content::text("gone") })
            .to(Target::new(acct.id));
    scheduling.schedule(&gone).await.unwrap();
    let trashed = store_a.trash(&s.key).await.unwrap().expect("stored again");
    store_a.purge(&trashed).await.unwrap();
    worker.worker().run_once().await.unwrap();
    let st = worker.status(gone.id).await.unwrap();
    match &st[0].state {
        TargetState::Failed { failure } => {
            assert_eq!(failure.code.as_deref(), Some("media_unreadable"), "{failure:?}");
            assert_eq!(failure.kind, konektly_core::ErrorKind::MediaUnreadable);
        }
        other => panic!("expected media_unreadable, got {other:?}"),
    }
}

#[tokio::test]
async fn media_store_on_memory_stores() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Arc::new(MemoryTokenStore::new());
    let scheduler = Arc::new(MemoryScheduler::new());
    let url = format!("file://{}", dir.path().join("media").display());
    scenario(tokens, scheduler, &url, dir.path()).await;
}

#[tokio::test]
async fn media_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("k.db"), KeyRing::generate("k1")).await.unwrap());
    let url = format!("file://{}", dir.path().join("k.db.media").display());
    scenario(store.clone(), store, &url, dir.path()).await;
}

#[tokio::test]
async fn media_store_on_postgres() {
    let Some(url) = support::pg_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(support::pg_store(&url, &support::fresh_schema("media"), KeyRing::generate("k1")).await);
    let media = format!("file://{}", dir.path().join("media").display());
    scenario(store.clone(), store, &media, dir.path()).await;
}

/// A collector racing a scheduler: whatever the interleaving, the scheduled post's object is
/// there when the scheduler returns (stored again if collected between copy and enqueue), and
/// a trashed object is still readable.
#[tokio::test]
async fn collection_never_loses_media_of_a_post_being_scheduled() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Arc::new(MemoryTokenStore::new());
    let scheduler = Arc::new(MemoryScheduler::new());
    let store: Arc<dyn MediaStore> = Arc::new(ObjectMediaStore::local(dir.path().join("m")).unwrap());
    let owner = OwnerId::new("o");
    let acct = account(&owner);
    tokens.insert_account(&acct).await.unwrap();
    let e = engine(tokens, scheduler, store.clone(), Reading::new());
    for round in 0..20u8 {
        let media = Media::from_bytes(jpeg(round, 10_000));
        let post = Post::new(owner.clone(), Content { media: vec![media], ..Content::text("x") })
            .to(Target::new(acct.id))
            .at(Utc::now() + chrono::Duration::hours(1));
        let (scheduled, collected) = tokio::join!(e.schedule(&post), e.collect_media(Duration::ZERO));
        scheduled.unwrap();
        collected.unwrap();
        let rec = &e.status(post.id).await.unwrap()[0];
        let MediaSource::Stored(s) = &rec.content.media[0].source else { panic!() };
        assert!(store.exists(&s.key).await.unwrap() || !store.list_trash().await.unwrap().is_empty(), "round {round}");
        // Whatever a concurrent run did, the next finds it referred to and keeps (or restores) it.
        e.collect_media(Duration::ZERO).await.unwrap();
        assert!(store.exists(&s.key).await.unwrap(), "round {round}: lost");
    }
    // Trashed, an object is still read (a worker may open it while a collector decides).
    let key = store.list().await.unwrap()[0].key.clone();
    let t = store.trash(&key).await.unwrap().unwrap();
    assert!(store.open_at(&key, 0).await.is_ok());
    store.restore(&t).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
}

/// Reading from an offset (a resumed upload), past the end, and a missing key.
#[tokio::test]
async fn ranged_reads_and_missing_objects() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    for store in [ObjectMediaStore::in_memory(), ObjectMediaStore::local(dir.path()).unwrap()] {
        let bytes = jpeg(1, 5000);
        let media = Media::from_bytes(bytes.clone());
        let http = konektly_core::reqwest::Client::new();
        let o = store.put(media.open_at(&http, 0).await.unwrap(), &media.mime).await.unwrap();
        assert_eq!(o.size, bytes.len() as u64);
        let mut rest = Vec::new();
        store.open_at(&o.key, 1000).await.unwrap().into_inner().read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, bytes[1000..]);
        let mut none = Vec::new();
        store.open_at(&o.key, 5000 + 999).await.unwrap().into_inner().read_to_end(&mut none).await.unwrap();
        assert!(none.is_empty());
        let missing = konektly_core::MediaKey::new(&"0".repeat(64), Some("jpg")).unwrap();
        match store.open_at(&missing, 0).await {
            Err(Error::MediaUnreadable { message, .. }) => assert!(message.contains(missing.as_str()), "{message}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert!(store.signed_url(&o.key, Duration::from_secs(60)).await.unwrap().is_none());
    }
}

/// Credentials given in the URL never show in `Debug` or in an error.
#[test]
fn no_credential_in_debug_or_errors() {
    let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
    let url = format!("s3://bucket/prefix?aws_secret_access_key={secret}&aws_access_key_id=AKIDEXAMPLE");
    match ObjectMediaStore::from_url(&url) {
        Ok(s) => assert!(!format!("{s:?}").contains(secret)),
        Err(e) => {
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!format!("{e:?}").contains(secret), "{e:?}");
        }
    }
    let s = ObjectMediaStore::from_url("memory://").unwrap();
    assert!(format!("{s:?}").contains("memory://"));
}

/// Posts stored before the media store keep loading: their `File` and `Bytes` sources read as
/// before, and a stored source round-trips through JSON without the store it was read with.
#[test]
fn serde_compatibility() {
    let old = r#"{"source":{"type":"file","value":"/srv/media/a.jpg"},"mime":"image/jpeg","size":3}"#;
    let m: Media = serde_json::from_str(old).unwrap();
    assert_eq!(m.source, MediaSource::File("/srv/media/a.jpg".into()));
    let key = konektly_core::MediaKey::new(&"ab".repeat(32), Some("jpg")).unwrap();
    let stored = Media { source: MediaSource::Stored(konektly_core::StoredMedia::new(key.clone())), ..m };
    let json = serde_json::to_value(&stored).unwrap();
    assert_eq!(json["source"], serde_json::json!({"type": "stored", "value": {"key": key.as_str()}}));
    let back: Media = serde_json::from_value(json).unwrap();
    assert_eq!(back, stored);
    // A key that is not a hash (a path, a traversal) does not load.
    let traversal = ["..", "..", "etc", "passwd"].join("/");
    let bad = serde_json::json!({"source": {"type": "stored", "value": {"key": traversal}}, "mime": "image/jpeg"});
    assert!(serde_json::from_value::<Media>(bad).is_err());
}
