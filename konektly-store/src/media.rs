//! `ObjectMediaStore`: konektly-core's [`MediaStore`] on the `object_store` crate — a local
//! directory by default, S3, GCS or Azure chosen by URL (behind the `s3`, `gcs` and `azure`
//! features), or memory for tests.
//!
//! Layout under the store's root (a directory, or a bucket and a prefix):
//!
//! - `media/<sha256>.<ext>`: the objects, named by the SHA-256 of their bytes;
//! - `tmp/<uuid>`: copies being written (hashed while written, then renamed to their name);
//! - `trash/<key>.<uuid>`: objects a collector set aside (see `Konektly::collect_media`).
//!
//! Why here and not in core: core keeps the port ([`MediaStore`]) and stays free of
//! `object_store`; the store crate already holds the durable backends an application picks at
//! start, and the cloud SDK code only comes with a cargo feature.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use konektly_core::mime::Mime;
use konektly_core::url::Url;
use konektly_core::{Error, MediaKey, MediaReader, MediaStore, Result, StoredObject, TrashedObject};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutMultipartOptions,
    WriteMultipart,
};
use sha2::{Digest, Sha256};

/// Size of the parts a copy is uploaded in (S3's smallest part is 5 MiB). At most
/// [`PARTS_IN_FLIGHT`] parts are in memory at once: a video is never held whole.
const PART_SIZE: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 2;
/// Read size when copying a source in.
const READ_CHUNK: usize = 1 << 20;
/// A copy in `tmp/` this old was abandoned by a process that died mid-copy.
const TMP_ABANDONED: Duration = Duration::from_secs(24 * 3600);

/// Signs a `GET` URL of a path for a while (`object_store`'s `Signer`, which exists only with
/// a cloud feature).
type SignFn =
    Arc<dyn Fn(Path, Duration) -> futures_util::future::BoxFuture<'static, object_store::Result<Url>> + Send + Sync>;

#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn sign_fn(signer: Arc<dyn object_store::signer::Signer>) -> SignFn {
    Arc::new(move |path, expires_in| {
        let signer = signer.clone();
        Box::pin(async move { signer.signed_url(object_store::signer::Method::GET, &path, expires_in).await })
    })
}

/// A [`MediaStore`] on an [`ObjectStore`]. Cheap to clone.
///
/// ```no_run
/// # async fn f() -> konektly_core::Result<()> {
/// use std::sync::Arc;
/// use konektly_store::ObjectMediaStore;
///
/// // A directory (created if missing)…
/// let store = ObjectMediaStore::from_url("file:///var/lib/konektly/media")?;
/// // …or, with the `s3` feature, a bucket and prefix (credentials from AWS_* variables):
/// // let store = ObjectMediaStore::from_url("s3://my-bucket/konektly-media")?;
/// let engine = konektly_core::Konektly::builder()
///     .media_store(Arc::new(store))
///     /* .token_store(…).scheduler(…).platform(…) */;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ObjectMediaStore {
    store: Arc<dyn ObjectStore>,
    signer: Option<SignFn>,
    root: Path,
    /// Where it is, for messages: scheme, host and path, never a credential or a query.
    location: String,
    /// Whether the backend keeps a content type with an object (not a local directory).
    content_types: bool,
}

impl std::fmt::Debug for ObjectMediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectMediaStore")
            .field("location", &self.location)
            .field("signs_urls", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

impl ObjectMediaStore {
    /// A store chosen by URL:
    ///
    /// - `file:///abs/dir`: a local directory (created if missing); share it (NFS…) for
    ///   workers on several machines, or serve it for pull-from-URL platforms;
    /// - `memory://`: in this process only (tests);
    /// - `s3://bucket/prefix` (feature `s3`), `gs://bucket/prefix` (feature `gcs`),
    ///   `az://container/prefix` (feature `azure`): the cloud store, configured from the
    ///   environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    ///   `AWS_ENDPOINT`…; `GOOGLE_SERVICE_ACCOUNT`…; `AZURE_STORAGE_ACCOUNT_NAME`…) and from the
    ///   URL's query (`?region=eu-west-1&endpoint=http://…`, any key `object_store` knows for
    ///   that backend). These sign URLs for [`StoreMediaHost`](konektly_core::StoreMediaHost).
    ///
    /// A URL without a scheme is taken as a directory path. Errors and `Debug` show the URL
    /// without its query and user info, so credentials given there never appear.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = match Url::parse(url) {
            Ok(u) => u,
            Err(_) => return Self::local(url),
        };
        let location = redact(&parsed);
        let (scheme, root) = ObjectStoreScheme::parse(&parsed)
            .map_err(|_| Error::Config(format!("the media store URL {location} names no store konektly knows")))?;
        let options: Vec<(String, String)> =
            parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let mut bare = parsed.clone();
        bare.set_query(None);
        let cloud_error = |e: object_store::Error| {
            Error::Config(format!("cannot configure the media store {location}: {}", Sanitized(&e)))
        };
        #[cfg(not(any(feature = "s3", feature = "gcs", feature = "azure")))]
        let _ = (&root, &cloud_error);
        match scheme {
            ObjectStoreScheme::Local => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| Error::Config(format!("the media store URL {location} is not a local path")))?;
                Self::local(dir)
            }
            ObjectStoreScheme::Memory => Ok(Self::in_memory()),
            #[cfg(feature = "s3")]
            ObjectStoreScheme::AmazonS3 => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(bare.as_str());
                for (k, v) in &options {
                    if let Ok(key) = k.to_ascii_lowercase().parse() {
                        b = b.with_config(key, v.clone());
                    }
                }
                let s = Arc::new(b.build().map_err(cloud_error)?);
                Ok(Self::cloud(s.clone(), Some(sign_fn(s)), root, location))
            }
            #[cfg(feature = "gcs")]
            ObjectStoreScheme::GoogleCloudStorage => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(bare.as_str());
                for (k, v) in &options {
                    if let Ok(key) = k.to_ascii_lowercase().parse() {
                        b = b.with_config(key, v.clone());
                    }
                }
                let s = Arc::new(b.build().map_err(cloud_error)?);
                Ok(Self::cloud(s.clone(), Some(sign_fn(s)), root, location))
            }
            #[cfg(feature = "azure")]
            ObjectStoreScheme::MicrosoftAzure => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(bare.as_str());
                for (k, v) in &options {
                    if let Ok(key) = k.to_ascii_lowercase().parse() {
                        b = b.with_config(key, v.clone());
                    }
                }
                let s = Arc::new(b.build().map_err(cloud_error)?);
                Ok(Self::cloud(s.clone(), Some(sign_fn(s)), root, location))
            }
            _ => {
                // Whatever object_store itself builds from the URL (a backend whose konektly
                // feature is off fails here, saying which feature to turn on).
                let (s, root) = object_store::parse_url_opts(&bare, options).map_err(|_| {
                    let feature = match parsed.scheme() {
                        "s3" | "s3a" => " (build konektly-store with the `s3` feature)",
                        "gs" => " (build konektly-store with the `gcs` feature)",
                        "az" | "azure" | "abfs" | "abfss" | "adl" => " (build konektly-store with the `azure` feature)",
                        _ => "",
                    };
                    Error::Config(format!("the media store {location} is not available{feature}"))
                })?;
                Ok(Self::cloud(Arc::from(s), None, root, location))
            }
        }
    }

    /// A local directory (created if missing).
    pub fn local(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = std::path::absolute(dir.as_ref())
            .map_err(|e| Error::Config(format!("the media directory {}: {e}", dir.as_ref().display())))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Config(format!("cannot create the media directory {}: {e}", dir.display())))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| Error::Config(format!("the media directory {}: {}", dir.display(), Sanitized(&e))))?;
        Ok(Self {
            store: Arc::new(fs),
            signer: None,
            root: Path::default(),
            location: format!("file://{}", dir.display()),
            content_types: false,
        })
    }

    /// A store in this process's memory (tests).
    pub fn in_memory() -> Self {
        Self {
            store: Arc::new(object_store::memory::InMemory::new()),
            signer: None,
            root: Path::default(),
            location: "memory://".into(),
            content_types: true,
        }
    }

    /// Any `object_store` backend, under `root`. `location` names it in messages: give no
    /// credential. Signed URLs: [`with_signer`](Self::with_signer).
    pub fn new(store: Arc<dyn ObjectStore>, root: Path, location: impl Into<String>) -> Self {
        Self::cloud(store, None, root, location.into())
    }

    /// Signs media URLs with `signer` (e.g. the same `AmazonS3` as the store).
    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    pub fn with_signer(mut self, signer: Arc<dyn object_store::signer::Signer>) -> Self {
        self.signer = Some(sign_fn(signer));
        self
    }

    fn cloud(store: Arc<dyn ObjectStore>, signer: Option<SignFn>, root: Path, location: String) -> Self {
        Self { store, signer, root, location, content_types: true }
    }

    /// Where the store is (no credentials).
    pub fn location(&self) -> &str {
        &self.location
    }

    fn path(&self, dir: &str, name: &str) -> Path {
        self.root.clone().join(dir).join(name)
    }

    fn object(&self, key: &MediaKey) -> Path {
        self.path("media", key.as_str())
    }

    fn failed(&self, what: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::MediaUnreadable {
                message: format!("{what}: not found in the media store {}", self.location),
                source: None,
            },
            e => Error::Transient {
                message: format!("{what} in the media store {}: {}", self.location, Sanitized(&e)),
                retry_after: None,
                source: None,
            },
        }
    }

    async fn list_dir(&self, dir: &str) -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = self.root.clone().join(dir);
        self.store.list(Some(&prefix)).try_collect().await.map_err(|e| self.failed("cannot list", e))
    }

    /// The trashed copies of `key` (normally none, or one).
    async fn trashed_copies(&self, key: &MediaKey) -> Result<Vec<TrashedObject>> {
        Ok(self.list_trash().await?.into_iter().filter(|t| &t.key == key).collect())
    }

    async fn read(&self, location: &Path, offset: u64) -> std::result::Result<MediaReader, object_store::Error> {
        if offset > 0 {
            let meta = self.store.head(location).await?;
            if offset >= meta.size {
                return Ok(reader(futures_util::stream::empty().boxed()));
            }
        }
        let opts = GetOptions { range: (offset > 0).then_some(GetRange::Offset(offset)), ..GetOptions::default() };
        let got = self.store.get_opts(location, opts).await?;
        Ok(reader(got.into_stream()))
    }
}

fn reader(stream: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>) -> MediaReader {
    let stream = stream.map_err(std::io::Error::other);
    MediaReader::new(Box::pin(tokio_util::io::StreamReader::new(stream)))
}

/// The URL as shown in messages: no user info, no query, no fragment.
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// An `object_store` error as shown: only its kind and the path it names, never a URL's query
/// (a signed URL, a credential given in the configuration) that its text may hold.
struct Sanitized<'a>(&'a object_store::Error);

impl std::fmt::Display for Sanitized<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_string();
        // Cut every URL's query away; keep the rest (the path, the status, the reason).
        let mut out = String::with_capacity(text.len());
        let mut in_query = false;
        for c in text.chars() {
            if in_query {
                if c.is_whitespace() {
                    in_query = false;
                    out.push(c);
                }
                continue;
            }
            if c == '?' {
                in_query = true;
                out.push_str("?…");
                continue;
            }
            out.push(c);
        }
        f.write_str(&out)
    }
}

#[async_trait]
impl MediaStore for ObjectMediaStore {
    async fn put(&self, reader: MediaReader, mime: &Mime) -> Result<StoredObject> {
        let tmp = self.path("tmp", &uuid::Uuid::new_v4().to_string());
        let mut opts = PutMultipartOptions::default();
        if self.content_types {
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, mime.essence_str().to_owned().into());
            opts.attributes = attributes;
        }
        let upload =
            self.store.put_multipart_opts(&tmp, opts).await.map_err(|e| self.failed("cannot start a copy", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut chunks = reader.chunks(READ_CHUNK);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let copied: Result<()> = async {
            while let Some(chunk) = chunks.next_chunk().await? {
                hasher.update(&chunk);
                size += chunk.len() as u64;
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| self.failed("cannot copy", e))?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(e) = copied {
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map_err(|e| self.failed("cannot finish a copy", e))?;
        let key = MediaKey::new(&format!("{:x}", hasher.finalize()), Some(konektly_core::extension_of(mime)))?;
        let dest = self.object(&key);
        // Content addressing: an object of that name holds these very bytes.
        match self.store.head(&dest).await {
            Ok(_) => {
                let _ = self.store.delete(&tmp).await;
            }
            Err(object_store::Error::NotFound { .. }) => {
                self.store.rename(&tmp, &dest).await.map_err(|e| self.failed("cannot name a copy", e))?;
            }
            Err(e) => {
                let _ = self.store.delete(&tmp).await;
                return Err(self.failed("cannot look up a copy", e));
            }
        }
        Ok(StoredObject { key, size, last_modified: chrono::Utc::now() })
    }

    async fn open_at(&self, key: &MediaKey, offset: u64) -> Result<MediaReader> {
        // A collector may be setting the object aside or putting it back right now: look in
        // both places, a few times, before calling it missing.
        for _ in 0..3 {
            match self.read(&self.object(key), offset).await {
                Ok(r) => return Ok(r),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed(&format!("cannot read media {key}"), e)),
            }
            for t in self.trashed_copies(key).await? {
                match self.read(&self.path("trash", &t.id), offset).await {
                    Ok(r) => return Ok(r),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.failed(&format!("cannot read media {key}"), e)),
                }
            }
        }
        Err(Error::MediaUnreadable {
            message: format!("media {key} is not in the media store {}", self.location),
            source: None,
        })
    }

    async fn exists(&self, key: &MediaKey) -> Result<bool> {
        match self.store.head(&self.object(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed(&format!("cannot look up media {key}"), e)),
        }
    }

    async fn list(&self) -> Result<Vec<StoredObject>> {
        let mut out = Vec::new();
        for meta in self.list_dir("media").await? {
            // Anything else in the directory (a staging file, a stranger's file) is not ours.
            let Some(Ok(key)) = meta.location.filename().map(MediaKey::parse) else { continue };
            out.push(StoredObject { key, size: meta.size, last_modified: meta.last_modified });
        }
        // Copies abandoned by a process that died while writing them.
        let abandoned = chrono::Utc::now() - chrono::Duration::from_std(TMP_ABANDONED).unwrap_or_default();
        for meta in self.list_dir("tmp").await? {
            if meta.last_modified < abandoned {
                let _ = self.store.delete(&meta.location).await;
            }
        }
        Ok(out)
    }

    async fn trash(&self, key: &MediaKey) -> Result<Option<TrashedObject>> {
        // A v7 UUID: the name says when the copy was set aside, whatever the backend's clock.
        let id = format!("{key}.{}", uuid::Uuid::now_v7().simple());
        match self.store.rename(&self.object(key), &self.path("trash", &id)).await {
            Ok(()) => Ok(Some(TrashedObject { key: key.clone(), id, trashed_at: chrono::Utc::now() })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(&format!("cannot set media {key} aside"), e)),
        }
    }

    async fn list_trash(&self) -> Result<Vec<TrashedObject>> {
        let mut out = Vec::new();
        for meta in self.list_dir("trash").await? {
            let Some(name) = meta.location.filename() else { continue };
            // `<key>.<32 hex>`: the key is everything before the last dot.
            let Some((key, uuid)) = name.rsplit_once('.') else { continue };
            let Ok(key) = MediaKey::parse(key) else { continue };
            let trashed_at = uuid::Uuid::parse_str(uuid)
                .ok()
                .and_then(|u| u.get_timestamp())
                .and_then(|t| {
                    let (secs, nanos) = t.to_unix();
                    chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
                })
                .unwrap_or(chrono::DateTime::UNIX_EPOCH);
            out.push(TrashedObject { key, id: name.to_owned(), trashed_at });
        }
        Ok(out)
    }

    async fn restore(&self, trashed: &TrashedObject) -> Result<()> {
        let from = self.path("trash", &trashed.id);
        // Same bytes whoever wrote them: overwriting a copy stored meanwhile is harmless.
        self.store
            .copy(&from, &self.object(&trashed.key))
            .await
            .map_err(|e| self.failed(&format!("cannot restore media {}", trashed.key), e))?;
        self.purge(trashed).await
    }

    async fn purge(&self, trashed: &TrashedObject) -> Result<()> {
        match self.store.delete(&self.path("trash", &trashed.id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed(&format!("cannot delete media {}", trashed.key), e)),
        }
    }

    async fn signed_url(&self, key: &MediaKey, expires_in: Duration) -> Result<Option<Url>> {
        let Some(signer) = &self.signer else { return Ok(None) };
        let url = signer(self.object(key), expires_in)
            .await
            .map_err(|e| self.failed(&format!("cannot sign a URL for media {key}"), e))?;
        Ok(Some(url))
    }
}
