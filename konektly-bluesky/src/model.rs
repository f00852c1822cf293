//! Bluesky's wire types (XRPC bodies of `com.atproto.*` and the `app.bsky.feed.post` record's
//! parts), the per-target options ([`BlueskyOptions`]), record keys ([`Tid`]) and the checkpoint
//! an attempt saves while it works.

use konektly_core::PlatformOptions;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The collection of posts.
pub const POST_COLLECTION: &str = "app.bsky.feed.post";

/// Bluesky options of a target. Every field has a default, so `{}` is valid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlueskyOptions {
    /// The post's languages (BCP-47 tags, at most 3), e.g. `["en"]`.
    pub langs: Vec<String>,
    /// The link card's title (for `Content::link`); without it the page's Open Graph title is
    /// read when the platform is allowed to fetch it, else the URL is the title.
    pub link_title: Option<String>,
    /// The link card's description.
    pub link_description: Option<String>,
    /// Extra hashtags not in the text (`tags`, at most 8, without `#`).
    pub tags: Vec<String>,
}

impl PlatformOptions for BlueskyOptions {
    const PLATFORM: &'static str = "bluesky";
}

// ---- record keys -------------------------------------------------------------------------------

const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A timestamp identifier (the record key type of `app.bsky.feed.post`): 13 characters of
/// base32-sortable, the 64-bit value `0 | µs since 1970 (53 bits) | clock id (10 bits)`.
/// konektly chooses it before the create and keeps it in the checkpoint, so a create sent twice
/// names one record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tid(String);

impl Tid {
    /// The TID of `micros` since the epoch and `clock_id` (its low 10 bits).
    pub fn from_parts(micros: u64, clock_id: u16) -> Self {
        let n = ((micros & ((1u64 << 53) - 1)) << 10) | u64::from(clock_id & 0x3ff);
        let s: String = (0..13).map(|i| TID_ALPHABET[((n >> (60 - 5 * i)) & 31) as usize] as char).collect();
        Tid(s)
    }

    /// A fresh TID: now, with a random clock id.
    pub fn now() -> Self {
        let micros = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
        Self::from_parts(micros, rand::random::<u16>())
    }

    /// Reads a TID, if `s` is one.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let ok = b.len() == 13 && b.iter().all(|c| TID_ALPHABET.contains(c)) && b"234567abcdefghij".contains(&b[0]);
        ok.then(|| Tid(s.to_owned()))
    }

    /// The 13 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Microseconds since the epoch it carries.
    pub fn micros(&self) -> u64 {
        let n = self.0.bytes().fold(0u64, |n, c| {
            let v = TID_ALPHABET.iter().position(|a| *a == c).unwrap_or(0) as u64;
            (n << 5) | v
        });
        n >> 10
    }
}

impl std::fmt::Display for Tid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---- XRPC bodies -------------------------------------------------------------------------------

/// An XRPC error body: `{"error": "<Name>", "message": "…"}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct XrpcErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `com.atproto.server.createSession` / `refreshSession` output.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionBody {
    #[serde(default)]
    pub access_jwt: Option<String>,
    #[serde(default)]
    pub refresh_jwt: Option<String>,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub did: Option<String>,
    #[serde(default)]
    pub did_doc: Option<Value>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub status: Option<String>,
}

/// `com.atproto.identity.resolveHandle` output.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ResolvedHandle {
    pub did: String,
}

/// A DID document: what the adapter reads of it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DidDocument {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub also_known_as: Vec<String>,
    #[serde(default)]
    pub service: Vec<DidService>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DidService {
    #[serde(default)]
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub service_endpoint: Value,
}

impl DidDocument {
    /// The PDS: the `#atproto_pds` service of type `AtprotoPersonalDataServer`.
    pub(crate) fn pds(&self) -> Option<url::Url> {
        self.service
            .iter()
            .find(|s| {
                (s.id == "#atproto_pds" || s.id.ends_with("#atproto_pds")) && s.kind == "AtprotoPersonalDataServer"
            })
            .and_then(|s| s.service_endpoint.as_str())
            .and_then(|e| url::Url::parse(e).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    }

    /// The handle the document claims (`at://<handle>` in `alsoKnownAs`).
    pub(crate) fn handle(&self) -> Option<&str> {
        self.also_known_as.iter().find_map(|a| a.strip_prefix("at://"))
    }
}

/// `com.atproto.repo.createRecord` / `putRecord` output.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct WriteOutput {
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub cid: String,
}

/// `com.atproto.repo.getRecord` output.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct RecordOutput {
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub cid: Option<String>,
    #[serde(default)]
    pub value: Value,
}

/// `com.atproto.repo.uploadBlob` output: `{blob: {$type: "blob", ref: {$link}, mimeType, size}}`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct BlobOutput {
    pub blob: Value,
}

/// `app.bsky.actor.getProfile` output (what the adapter reads).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProfileView {
    #[serde(default)]
    pub did: String,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
}

/// Whether a blob reference is well formed (a `$link` and a size).
pub(crate) fn blob_ok(blob: &Value) -> bool {
    blob.get("ref").and_then(|r| r.get("$link")).and_then(Value::as_str).is_some_and(|l| !l.is_empty())
        && blob.get("size").and_then(Value::as_u64).is_some()
}

// ---- checkpoint --------------------------------------------------------------------------------

/// One post of the target (the first, then each thread item as a reply).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    /// The record key chosen before anything was sent.
    pub rkey: Option<Tid>,
    /// Blobs uploaded for this item, in media order.
    #[serde(default)]
    pub blobs: Vec<Value>,
    /// The record exactly as sent (its `createdAt`, facets and blob refs frozen): a retry
    /// sends the same bytes.
    #[serde(default)]
    pub record: Option<Value>,
    /// The record's `at://` URI and CID once the PDS holds it.
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub cid: Option<String>,
}

impl Item {
    pub(crate) fn done(&self) -> bool {
        self.uri.is_some() && self.cid.is_some()
    }
}

/// The adapter's checkpoint: saved when the record keys are chosen, after each blob, when a
/// record is frozen, before each create (`create_sent`) and after it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(default)]
    pub create_sent: konektly_core::CreateSent,
    /// The repository (the account's DID) the records go to.
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub items: Vec<Item>,
}

impl konektly_core::CheckpointState for State {
    const VERSION: u32 = 1;
}

impl State {
    pub(crate) fn all_done(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(Item::done)
    }
}

/// `at://<did>/<collection>/<rkey>` split in its parts.
pub(crate) fn parse_at_uri(uri: &str) -> Option<(String, String, String)> {
    let rest = uri.strip_prefix("at://")?;
    let mut parts = rest.splitn(3, '/');
    let (repo, collection, rkey) = (parts.next()?, parts.next()?, parts.next()?);
    if repo.is_empty() || collection.is_empty() || rkey.is_empty() || rkey.contains('/') {
        return None;
    }
    Some((repo.to_owned(), collection.to_owned(), rkey.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tids_are_13_sortable_characters() {
        let a = Tid::from_parts(1_700_000_000_000_000, 0);
        let b = Tid::from_parts(1_700_000_000_000_001, 0);
        assert_eq!(a.as_str().len(), 13);
        assert!(a < b, "later is greater: {a} {b}");
        assert_eq!(a.micros(), 1_700_000_000_000_000);
        assert!(Tid::parse(a.as_str()).is_some());
        assert!(Tid::parse("3jzfcijpj2z2a").is_some(), "the spec's example");
        assert!(Tid::parse("kjzfcijpj2z2a").is_none(), "first character too high");
        assert!(Tid::parse("3jzfcijpj2z2").is_none());
        let now = Tid::now();
        assert!(Tid::parse(now.as_str()).is_some(), "{now}");
        assert!(b"234567abcdefghij".contains(&now.as_str().as_bytes()[0]));
    }

    #[test]
    fn at_uris_split() {
        assert_eq!(
            parse_at_uri("at://did:plc:abc/app.bsky.feed.post/3k2a"),
            Some(("did:plc:abc".into(), "app.bsky.feed.post".into(), "3k2a".into()))
        );
        assert_eq!(parse_at_uri("https://bsky.app"), None);
        assert_eq!(parse_at_uri("at://did:plc:abc/app.bsky.feed.post"), None);
    }
}
