//! The optional `MediaStore` port: a content-addressed store of media bytes that every worker
//! can read, so that a scheduled post never depends on a path that exists only where it was
//! written.
//!
//! - At [`Konektly::schedule`] (and [`Konektly::publish_now`], which stores the post first) every
//!   local media item ([`MediaSource::File`], [`MediaSource::Bytes`]) is streamed into the store,
//!   hashed while it is copied, and the stored post refers to it as
//!   [`MediaSource::Stored`] — the SHA-256 of its bytes plus an extension. Media at public URLs
//!   stay URLs. The same bytes are stored once, however many posts use them.
//! - A worker reads stored media through the store (streamed, from any offset): the engine
//!   attaches its store to the stored media of a target before an adapter sees them, so
//!   [`Media::open_at`] works as for a file.
//! - [`Konektly::collect_media`] removes the objects no unfinished target refers to (see its
//!   documentation for why this is safe while other processes schedule and publish).
//! - [`StoreMediaHost`] serves the stored objects to platforms that pull media by URL: signed,
//!   expiring URLs where the backend can sign them, else a public base URL.
//!
//! Core knows only this trait; `konektly_store::ObjectMediaStore` implements it on the
//! `object_store` crate (a local directory, S3, GCS or Azure, chosen by URL).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mime::Mime;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::engine::Konektly;
use crate::error::{Error, Result};
use crate::lifecycle::StateName;
use crate::media::{Media, MediaReader, MediaSource};
use crate::media_host::MediaHost;
use crate::model::{Content, TargetRecord};
use crate::scheduler::TargetFilter;

/// The name of a stored object: the lowercase hex SHA-256 of its bytes, then optionally a dot and
/// a short extension (`jpg`, `mp4`…) that says its type to a web server. Validated when built
/// and when read back from the store, so it is always safe as a path segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaKey(String);

impl MediaKey {
    /// A key from a hex SHA-256 and an optional extension (letters and digits, 1 to 8).
    pub fn new(sha256_hex: &str, extension: Option<&str>) -> Result<Self> {
        match extension {
            Some(e) => Self::parse(&format!("{sha256_hex}.{e}")),
            None => Self::parse(sha256_hex),
        }
    }

    /// Parses `"<64 lowercase hex>[.<ext>]"`.
    pub fn parse(s: &str) -> Result<Self> {
        let (hash, ext) = match s.split_once('.') {
            Some((h, e)) => (h, Some(e)),
            None => (s, None),
        };
        let hash_ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let ext_ok = ext.is_none_or(|e| {
            (1..=8).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if hash_ok && ext_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::Config(format!(
                "`{}` is not a media key (hex SHA-256 and an optional extension)",
                s.escape_debug()
            )))
        }
    }

    /// The hex SHA-256 of the bytes.
    pub fn sha256(&self) -> &str {
        self.0.split_once('.').map_or(self.0.as_str(), |(h, _)| h)
    }

    /// The whole key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MediaKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<MediaKey> for String {
    fn from(k: MediaKey) -> Self {
        k.0
    }
}

/// The extension a stored object of this type gets.
pub fn extension_of(mime: &Mime) -> &'static str {
    match mime.essence_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        _ => "bin",
    }
}

/// Media kept in a [`MediaStore`] ([`MediaSource::Stored`]): its key, and in a worker the store
/// it is read from (attached by the engine, never serialized).
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredMedia {
    /// The object's key.
    pub key: MediaKey,
    #[serde(skip)]
    store: Option<Arc<dyn MediaStore>>,
}

impl StoredMedia {
    /// Media stored under `key` (not attached to a store yet).
    pub fn new(key: MediaKey) -> Self {
        Self { key, store: None }
    }

    /// The same, read through `store`.
    pub fn attached(mut self, store: Arc<dyn MediaStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The store it is read from, once attached.
    pub fn store(&self) -> Option<&Arc<dyn MediaStore>> {
        self.store.as_ref()
    }

    pub(crate) async fn open_at(&self, offset: u64) -> Result<MediaReader> {
        match &self.store {
            Some(s) => s.open_at(&self.key, offset).await,
            None => Err(Error::MediaUnreadable {
                message: format!(
                    "media {} is in a media store, and none is configured in this process \
                     (KonektlyBuilder::media_store)",
                    self.key
                ),
                source: None,
            }),
        }
    }
}

impl PartialEq for StoredMedia {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl std::fmt::Debug for StoredMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMedia").field("key", &self.key).field("attached", &self.store.is_some()).finish()
    }
}

/// An object in a [`MediaStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Its key.
    pub key: MediaKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
}

/// An object set aside by [`MediaStore::trash`]: not yet deleted, still readable, restorable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashedObject {
    /// The key it had (and gets back on [`MediaStore::restore`]).
    pub key: MediaKey,
    /// The store's name for this trashed copy (opaque; two collectors' copies differ).
    pub id: String,
    /// When it was set aside.
    pub trashed_at: DateTime<Utc>,
}

/// A content-addressed store of media bytes that every worker can read. Writes are idempotent
/// (same bytes, same key), so two processes storing the same media at once both succeed.
///
/// Implementations: `konektly_store::ObjectMediaStore` (a directory, S3, GCS, Azure, or memory,
/// on the `object_store` crate). A missing object is [`Error::MediaUnreadable`]; a failure of
/// the backend that may pass is [`Error::Transient`]. Neither errors nor `Debug` may show a
/// credential of the backend.
#[async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug {
    /// Copies the bytes of `reader` into the store, streamed (never whole in memory) and hashed
    /// while copying; the key is their SHA-256 with the extension of `mime`. Storing bytes that
    /// are already there leaves one object.
    async fn put(&self, reader: MediaReader, mime: &Mime) -> Result<StoredObject>;

    /// Reads an object from `offset` (an offset at or past its end reads nothing). A trashed
    /// object not yet purged is still read. Missing: [`Error::MediaUnreadable`].
    async fn open_at(&self, key: &MediaKey, offset: u64) -> Result<MediaReader>;

    /// Whether the object is there (not counting trashed copies).
    async fn exists(&self, key: &MediaKey) -> Result<bool>;

    /// Every object (not the trashed ones).
    async fn list(&self) -> Result<Vec<StoredObject>>;

    /// Sets an object aside: it disappears from [`list`](Self::list) and
    /// [`exists`](Self::exists) but stays readable until [`purge`](Self::purge). `None` when
    /// it was not there.
    async fn trash(&self, key: &MediaKey) -> Result<Option<TrashedObject>>;

    /// Every trashed copy (also those a collector that died left behind).
    async fn list_trash(&self) -> Result<Vec<TrashedObject>>;

    /// Puts a trashed copy back under its key, and removes the copy.
    async fn restore(&self, trashed: &TrashedObject) -> Result<()>;

    /// Deletes a trashed copy for good.
    async fn purge(&self, trashed: &TrashedObject) -> Result<()>;

    /// A URL from which anyone holding it can `GET` the object until `expires_in` has passed,
    /// where the backend signs URLs (S3, GCS, Azure); `Ok(None)` where it cannot (a local
    /// directory, memory): [`StoreMediaHost`] then uses its public base URL.
    async fn signed_url(&self, key: &MediaKey, expires_in: Duration) -> Result<Option<Url>>;

    /// The object's path relative to the store's root (`media/<key>`), which a web server in
    /// front of a directory store serves under its public base URL.
    fn public_path(&self, key: &MediaKey) -> String {
        format!("media/{key}")
    }
}

/// The stored objects one [`Konektly::collect_media`] run found and what it did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaCollection {
    /// Objects still referred to by an unfinished target (or younger than the grace period).
    pub kept: usize,
    /// Objects deleted: every target referring to them had ended.
    pub removed: Vec<MediaKey>,
    /// Trashed copies put back because a target came to refer to them meanwhile.
    pub restored: usize,
}

/// A [`MediaHost`] for the objects of a [`MediaStore`]: a stored object's URL is signed and
/// expiring where the backend signs (S3, GCS, Azure), else its [`MediaStore::public_path`] under
/// `public_base` (a web server or CDN in front of the directory, as with
/// [`DirectoryMediaHost`](crate::DirectoryMediaHost)). Local media not stored yet (a post
/// published without the engine's store) is stored first. URL media is returned as is.
#[derive(Clone, Debug)]
pub struct StoreMediaHost {
    store: Arc<dyn MediaStore>,
    public_base: Option<Url>,
    expires_in: Duration,
}

impl StoreMediaHost {
    /// How long a signed URL is valid by default: long enough for a platform to fetch a video
    /// it queued (Instagram, TikTok pull-from-URL), short enough not to stay a public link.
    pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(6 * 3600);

    /// Serves `store`: signed URLs where it signs, else under `public_base` (`None`: such a
    /// store cannot serve media, and [`MediaHost::url_for`] says so).
    pub fn new(store: Arc<dyn MediaStore>, public_base: Option<Url>) -> Self {
        let public_base = public_base.map(|mut u| {
            if !u.path().ends_with('/') {
                u.set_path(&format!("{}/", u.path()));
            }
            u
        });
        Self { store, public_base, expires_in: Self::DEFAULT_EXPIRY }
    }

    /// Sets the life of the signed URLs.
    pub fn with_expiry(mut self, expires_in: Duration) -> Self {
        self.expires_in = expires_in;
        self
    }

    async fn url_of(&self, key: &MediaKey) -> Result<Url> {
        if let Some(u) = self.store.signed_url(key, self.expires_in).await? {
            return Ok(u);
        }
        let base = self.public_base.as_ref().ok_or_else(|| {
            Error::Config(
                "this media store cannot sign URLs: give the media host the public base URL at which its \
                 directory is served"
                    .into(),
            )
        })?;
        base.join(&self.store.public_path(key)).map_err(|e| Error::Config(format!("invalid media URL: {e}")))
    }
}

#[async_trait]
impl MediaHost for StoreMediaHost {
    async fn url_for(&self, media: &Media) -> Result<Url> {
        match &media.source {
            MediaSource::Url(u) => Ok(u.clone()),
            MediaSource::Stored(s) => self.url_of(&s.key).await,
            MediaSource::File(_) | MediaSource::Bytes(_) => {
                let http = crate::HttpClient::new()?.client().clone();
                let stored = self.store.put(media.open_at(&http, 0).await?, &media.mime).await?;
                self.url_of(&stored.key).await
            }
        }
    }
}

/// `content` with every stored media item attached to `store`, so that adapters read it through
/// the store. Borrowed as is when nothing is stored (or no store is configured: then reading a
/// stored item is [`Error::MediaUnreadable`]).
pub(crate) fn attach<'a>(store: Option<&Arc<dyn MediaStore>>, content: &'a Content) -> Cow<'a, Content> {
    let Some(store) = store else { return Cow::Borrowed(content) };
    let stored = |m: &Media| matches!(m.source, MediaSource::Stored(_));
    if !content.media.iter().chain(content.thread.iter().flat_map(|t| &t.media)).any(stored) {
        return Cow::Borrowed(content);
    }
    let mut owned = content.clone();
    for m in owned.media.iter_mut().chain(owned.thread.iter_mut().flat_map(|t| t.media.iter_mut())) {
        if let MediaSource::Stored(s) = &mut m.source {
            s.store = Some(store.clone());
        }
    }
    Cow::Owned(owned)
}

fn all_media_mut(content: &mut Content) -> impl Iterator<Item = &mut Media> {
    content.media.iter_mut().chain(content.thread.iter_mut().flat_map(|t| t.media.iter_mut()))
}

fn stored_keys(content: &Content) -> impl Iterator<Item = &MediaKey> {
    content.media.iter().chain(content.thread.iter().flat_map(|t| &t.media)).filter_map(|m| match &m.source {
        MediaSource::Stored(s) => Some(&s.key),
        _ => None,
    })
}

/// What [`Konektly::store_media`] copied: each key with the media it came from, to copy again
/// if a collector removed it before the records were enqueued.
pub(crate) type Copied = Vec<(MediaKey, Media)>;

/// A trashed copy this old was left by a collector that died (a run takes seconds).
const ABANDONED_TRASH: Duration = Duration::from_secs(3600);

/// The states of a target that may still read its media: every state that is not final
/// (blocked targets wait for a reconnection and then publish).
fn unfinished() -> Vec<StateName> {
    StateName::ALL.into_iter().filter(|s| !s.is_final()).collect()
}

impl Konektly {
    /// Copies the local media of `records` into the media store (when one is configured) and
    /// makes the records refer to them by key. The same source is copied once.
    pub(crate) async fn store_media(&self, records: &mut [TargetRecord]) -> Result<Copied> {
        let Some(store) = self.media_store().cloned() else { return Ok(Vec::new()) };
        let http = crate::HttpClient::new()?.client().clone();
        #[derive(PartialEq, Eq, Hash)]
        enum SourceId {
            File(std::path::PathBuf),
            Bytes(bytes::Bytes),
        }
        let mut done: HashMap<SourceId, MediaKey> = HashMap::new();
        let mut copied = Vec::new();
        for record in records.iter_mut() {
            for media in all_media_mut(&mut record.content) {
                let id = match &media.source {
                    MediaSource::File(p) => SourceId::File(p.clone()),
                    MediaSource::Bytes(b) => SourceId::Bytes(b.clone()),
                    MediaSource::Url(_) | MediaSource::Stored(_) => continue,
                };
                let key = match done.get(&id) {
                    Some(k) => k.clone(),
                    None => {
                        let stored = store.put(media.open_at(&http, 0).await?, &media.mime).await?;
                        if let Some(size) = media.size
                            && size != stored.size
                        {
                            return Err(Error::MediaUnreadable {
                                message: format!(
                                    "the media changed while it was read ({size} bytes when probed, {} copied)",
                                    stored.size
                                ),
                                source: None,
                            });
                        }
                        done.insert(id, stored.key.clone());
                        copied.push((stored.key.clone(), media.clone()));
                        stored.key
                    }
                };
                media.source = MediaSource::Stored(StoredMedia::new(key));
            }
        }
        Ok(copied)
    }

    /// After the records that refer to `copied` are enqueued: copies again any object a
    /// collector removed between the copy and the enqueue (see [`Konektly::collect_media`]).
    pub(crate) async fn confirm_media(&self, copied: &Copied) -> Result<()> {
        let Some(store) = self.media_store().cloned() else { return Ok(()) };
        let http = crate::HttpClient::new()?.client().clone();
        for (key, media) in copied {
            if !store.exists(key).await? {
                tracing::info!(target: "konektly::media", %key, "collected while scheduling; stored again");
                store.put(media.open_at(&http, 0).await?, &media.mime).await?;
            }
        }
        Ok(())
    }

    /// Deletes the media store's objects that no unfinished target (scheduled, in flight,
    /// processing, unknown or blocked) refers to, once they are older than `older_than`.
    /// Returns what it found and did; a no-op without a media store. Run it from time to time
    /// (the `konektly worker` program runs it when it stops and every 10 minutes); any number of
    /// processes may run it at once, beside any number of schedulers and workers.
    ///
    /// Why it never removes media a target still needs, with other processes at work:
    ///
    /// 1. it lists the objects older than `older_than`, then reads the keys that unfinished
    ///    targets refer to (one `Scheduler::list` of those states);
    /// 2. it *trashes* each object referred to by none: set aside, still readable by a worker
    ///    that opens it;
    /// 3. it reads the references again, restores the trashed copies that a target now refers
    ///    to (a post enqueued meanwhile), and purges the rest;
    /// 4. a scheduler stores its media *before* enqueueing the targets and checks *after*
    ///    enqueueing that every object is still there, storing again one that is not.
    ///
    /// A post enqueued before step 3 reads its references is seen there (its object is restored);
    /// one enqueued after it finds its object gone in step 4 and stores it again. Trashed copies
    /// left by a collector that died are restored or purged by a run an hour later. `older_than` only
    /// spares the work of storing again; correctness does not depend on it.
    ///
    /// A target rescheduled after it ended (failed or cancelled) whose media was collected meanwhile
    /// ends `Failed` with code `media_unreadable`: submit the post again.
    pub async fn collect_media(&self, older_than: Duration) -> Result<MediaCollection> {
        let Some(store) = self.media_store().cloned() else { return Ok(MediaCollection::default()) };
        let mut report = MediaCollection::default();
        let cutoff = Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::TimeDelta::MAX);
        let objects = store.list().await?;
        // Copies another collector is deciding about are its own; those older than any run
        // were left by a collector that died.
        let abandoned = Utc::now() - chrono::Duration::from_std(ABANDONED_TRASH).unwrap_or_default();
        let leftovers: Vec<TrashedObject> =
            store.list_trash().await?.into_iter().filter(|t| t.trashed_at < abandoned).collect();
        if objects.is_empty() && leftovers.is_empty() {
            return Ok(report);
        }
        let refs = self.media_references().await?;
        let mut trashed = leftovers;
        for o in objects {
            if o.last_modified > cutoff || refs.contains(&o.key) {
                report.kept += 1;
                continue;
            }
            if let Some(t) = store.trash(&o.key).await? {
                trashed.push(t);
            }
        }
        if trashed.is_empty() {
            return Ok(report);
        }
        let refs = self.media_references().await?;
        for t in trashed {
            if refs.contains(&t.key) {
                store.restore(&t).await?;
                report.restored += 1;
                report.kept += 1;
            } else {
                store.purge(&t).await?;
                tracing::debug!(target: "konektly::media", key = %t.key, "collected");
                report.removed.push(t.key);
            }
        }
        report.removed.sort();
        report.removed.dedup();
        Ok(report)
    }

    async fn media_references(&self) -> Result<HashSet<MediaKey>> {
        let live = self.scheduler().list(&TargetFilter::default().with_states(&unfinished())).await?;
        Ok(live.iter().flat_map(|r| stored_keys(&r.content).cloned()).collect())
    }
}
