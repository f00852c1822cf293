//! Tokens at rest: AES-256-GCM with a random 96-bit nonce per value. Each stored value carries
//! the id of the key that sealed it and its nonce; the associated data binds it to its account
//! (or pending authorization) and its kind, so a value copied into another row does not open.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use konektly_core::Error;
use rand::RngCore;
use zeroize::Zeroizing;

/// The environment variable [`KeyRing::from_env`] reads: `id:base64key,…`, newest first.
pub const KEYS_ENV: &str = "KONEKTLY_KEYS";

/// The format byte in front of every sealed value.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
/// The longest key id (it is stored, as one length byte and its bytes, with every value).
const MAX_ID_LEN: usize = 64;

/// Whether `id` may name a key: 1–64 ASCII letters, digits, `-`, `_` or `.`.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Whether `s` is standard base64 of exactly 32 bytes (a key, perhaps written where an id goes).
fn is_key_sized_base64(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(s).map(Zeroizing::new).is_ok_and(|b| b.len() == 32)
}

/// Why a stored secret could not be opened. Reached as the source of
/// [`konektly_core::Error::Storage`]; downcast it to branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The value was sealed with a key that is not in the key ring (a key was dropped too early,
    /// or the database belongs to another deployment).
    #[error("the stored {what} was encrypted with key `{key_id}`, which is not in the key ring")]
    UnknownKey {
        /// Which value (`access token of account …`).
        what: String,
        /// The key id stored with it.
        key_id: String,
    },
    /// Authentication failed: the ciphertext, its nonce or its row was altered, or the value was
    /// copied from another row.
    #[error("the stored {what} failed authentication (tampered with, or moved from another row)")]
    Tampered {
        /// Which value.
        what: String,
    },
    /// The stored bytes are not a sealed value of a format this version knows.
    #[error("the stored {what} is not in a known format")]
    Malformed {
        /// Which value.
        what: String,
    },
}

struct Key {
    id: String,
    // `aes-gcm` with its `zeroize` feature wipes the expanded key when the cipher is dropped.
    cipher: Aes256Gcm,
}

/// The keys that encrypt tokens at rest: the newest seals, every key opens. Key material is
/// zeroized on drop and never formatted.
///
/// ```
/// use konektly_store::KeyRing;
/// // 32 bytes, base64: generate with `openssl rand -base64 32`.
/// let keys = KeyRing::parse("k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
/// assert_eq!(keys.newest_id(), "k2");
/// assert!(!format!("{keys:?}").contains("AAEC"));
/// ```
pub struct KeyRing {
    keys: Vec<Key>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing").field("key_ids", &self.ids()).finish()
    }
}

impl KeyRing {
    /// Reads `KONEKTLY_KEYS` (`id:base64key,…`, newest first). A missing or malformed value is a
    /// [`Error::Config`] that names the faulty entry by its position, never its text.
    pub fn from_env() -> konektly_core::Result<Self> {
        let spec = match std::env::var(KEYS_ENV) {
            Ok(spec) => Zeroizing::new(spec),
            Err(std::env::VarError::NotPresent) => {
                return Err(Error::Config(format!(
                    "{KEYS_ENV} is not set: give at least one token encryption key as `id:base64key` (32 bytes, e.g. from `openssl rand -base64 32`)"
                )));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Error::Config(format!(
                    "{KEYS_ENV} is not valid UTF-8: give keys as `id:base64key,…` (32 bytes each, standard base64)"
                )));
            }
        };
        Self::parse(&spec)
    }

    /// Parses `id:base64key,…`, newest first. Each key is 32 bytes of standard base64.
    ///
    /// An error names the faulty entry by its position (`entry 2`, counting comma-separated
    /// entries from 1) and says what is wrong with it; it never repeats any part of the entry,
    /// so a key written in the wrong place (`base64key:id`) is not echoed into a log.
    pub fn parse(spec: &str) -> konektly_core::Result<Self> {
        Self::parse_in(spec, KEYS_ENV)
    }

    /// [`KeyRing::parse`] of keys read from `origin` (`the key file /srv/k.db.key`), which
    /// errors name instead of `KONEKTLY_KEYS`.
    pub fn parse_in(spec: &str, origin: &str) -> konektly_core::Result<Self> {
        let mut ring = KeyRing { keys: Vec::new() };
        // The position of the entry that gave each key, for "same id as entry N".
        let mut positions: Vec<usize> = Vec::new();
        for (i, part) in spec.split(',').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let n = i + 1;
            let bad = |what: String| {
                Error::Config(format!("{origin}: entry {n} {what} (each entry is `id:base64key`, newest first)"))
            };
            let Some((id, b64)) = part.split_once(':') else {
                return Err(bad("has no `:` between a key id and a key".into()));
            };
            let (id, b64) = (id.trim(), b64.trim());
            if is_key_sized_base64(id) && !is_key_sized_base64(b64) {
                return Err(bad(
                    "is written the wrong way round: the key id comes first, then `:`, then the key".into()
                ));
            }
            if !is_valid_id(id) {
                return Err(bad(format!(
                    "has an invalid key id: it must be 1–{MAX_ID_LEN} characters of letters, digits, `-`, `_` or `.`"
                )));
            }
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| bad("has a key that is not valid standard base64".into()))?,
            );
            if bytes.len() != 32 {
                return Err(bad(format!("has a key of {} bytes: it must be 32 bytes (AES-256)", bytes.len())));
            }
            if let Some(first) = ring.keys.iter().position(|k| k.id == id) {
                return Err(bad(format!("has the same key id as entry {}", positions[first])));
            }
            ring.push(id, &bytes)?;
            positions.push(n);
        }
        if ring.keys.is_empty() {
            return Err(Error::Config(format!(
                "{origin} holds no key: give at least one as `id:base64key` (32 bytes, standard base64)"
            )));
        }
        Ok(ring)
    }

    /// A ring of one key given as raw bytes.
    pub fn single(id: &str, key: &[u8; 32]) -> konektly_core::Result<Self> {
        let mut ring = KeyRing { keys: Vec::new() };
        ring.push(id, key)?;
        Ok(ring)
    }

    /// A ring of one freshly generated random key (tests, examples).
    pub fn generate(id: &str) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        Self::single(id, &key).expect("a generated key is valid")
    }

    /// Adds an older key (it opens values, never seals). Builder style.
    pub fn with_older(mut self, other: KeyRing) -> konektly_core::Result<Self> {
        for k in other.keys {
            if self.keys.iter().any(|m| m.id == k.id) {
                return Err(Error::Config(format!("key id `{}` appears twice", k.id)));
            }
            self.keys.push(k);
        }
        Ok(self)
    }

    fn push(&mut self, id: &str, key: &[u8]) -> konektly_core::Result<()> {
        // An invalid id is not repeated: it may be key material written in the wrong place.
        if !is_valid_id(id) {
            return Err(Error::Config(format!(
                "a key id must be 1–{MAX_ID_LEN} characters of letters, digits, `-`, `_` or `.`"
            )));
        }
        if key.len() != 32 {
            return Err(Error::Config(format!("key `{id}` must be 32 bytes (AES-256), got {}", key.len())));
        }
        if self.keys.iter().any(|k| k.id == id) {
            return Err(Error::Config(format!("key id `{id}` appears twice")));
        }
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| Error::Config(format!("key `{id}` is unusable")))?;
        self.keys.push(Key { id: id.to_owned(), cipher });
        Ok(())
    }

    /// The id of the key that seals new values.
    pub fn newest_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key id, newest first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Seals `plaintext` under the newest key, bound to `aad`.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = key
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad })
            .expect("AES-GCM encryption of a small value cannot fail");
        let mut out = Vec::with_capacity(2 + key.id.len() + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// The id of the key a sealed value names.
    pub(crate) fn key_id_of(sealed: &[u8]) -> Option<&str> {
        let (&fmt, rest) = sealed.split_first()?;
        let (&len, rest) = rest.split_first()?;
        if fmt != FORMAT_V1 || rest.len() < len as usize {
            return None;
        }
        std::str::from_utf8(&rest[..len as usize]).ok()
    }

    /// Opens a sealed value bound to `aad`. `what` names it in errors.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8], what: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let malformed = || CryptoError::Malformed { what: what.to_owned() };
        let key_id = Self::key_id_of(sealed).ok_or_else(malformed)?;
        let rest = &sealed[2 + key_id.len()..];
        if rest.len() < NONCE_LEN + 16 {
            return Err(malformed());
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| CryptoError::UnknownKey { what: what.to_owned(), key_id: key_id.to_owned() })?;
        let nonce: [u8; NONCE_LEN] = rest[..NONCE_LEN].try_into().expect("length checked");
        key.cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: &rest[NONCE_LEN..], aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Tampered { what: what.to_owned() })
    }

    /// Opens a sealed UTF-8 string.
    pub(crate) fn open_string(&self, sealed: &[u8], aad: &[u8], what: &str) -> konektly_core::Result<String> {
        let bytes = self.open(sealed, aad, what).map_err(crypto_error)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| crypto_error(CryptoError::Malformed { what: what.to_owned() }))
    }
}

/// Wraps a crypto failure as the store's error (typed source, no secret in the message).
pub(crate) fn crypto_error(e: CryptoError) -> Error {
    Error::storage(format!("cannot decrypt: {e}"), e)
}

/// Associated data of an account's token of `kind` (`access`, `refresh`).
pub(crate) fn account_aad(account: &konektly_core::AccountId, kind: &str) -> Vec<u8> {
    format!("konektly/v1/account/{account}/{kind}").into_bytes()
}

/// Associated data of a secret inside a target's checkpoint.
pub(crate) fn checkpoint_aad(target: &konektly_core::TargetId) -> Vec<u8> {
    format!("konektly/v1/target/{target}/checkpoint_secret").into_bytes()
}

/// Associated data of a pending authorization's PKCE verifier.
pub(crate) fn pending_aad(state: &str) -> Vec<u8> {
    format!("konektly/v1/pending/{state}/pkce_verifier").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn seals_and_opens_with_binding() {
        let ring = KeyRing::generate("k1");
        let sealed = ring.seal(b"secret-token", b"ad-1");
        assert!(!sealed.windows(12).any(|w| w == b"secret-token"));
        assert_eq!(&*ring.open(&sealed, b"ad-1", "x").unwrap(), b"secret-token");
        assert!(matches!(ring.open(&sealed, b"ad-2", "x"), Err(CryptoError::Tampered { .. })));
        let again = ring.seal(b"secret-token", b"ad-1");
        assert_ne!(sealed, again, "every value gets a fresh nonce");
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let ring = KeyRing::generate("k1");
        let sealed = ring.seal(b"secret-token", b"ad");
        for i in 2 + 2..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(matches!(ring.open(&t, b"ad", "x"), Err(CryptoError::Tampered { .. })), "byte {i}");
        }
        assert!(matches!(ring.open(&sealed[..10], b"ad", "x"), Err(CryptoError::Malformed { .. })));
        assert!(matches!(ring.open(b"", b"ad", "x"), Err(CryptoError::Malformed { .. })));
    }

    #[test]
    fn older_keys_open_newest_seals() {
        let old = KeyRing::generate("old");
        let sealed_old = old.seal(b"v", b"ad");
        let ring = KeyRing::generate("new").with_older(old).unwrap();
        assert_eq!(ring.ids(), vec!["new", "old"]);
        assert_eq!(&*ring.open(&sealed_old, b"ad", "x").unwrap(), b"v");
        assert_eq!(KeyRing::key_id_of(&ring.seal(b"v", b"ad")), Some("new"));
        let stranger = KeyRing::generate("other");
        assert!(matches!(stranger.open(&sealed_old, b"ad", "x"), Err(CryptoError::UnknownKey { .. })));
    }

    #[test]
    fn parse_accepts_newest_first_and_rejects_bad_specs() {
        let ring = KeyRing::parse(&format!("k2:{K1}, k1:{K1}")).unwrap();
        assert_eq!(ring.ids(), vec!["k2", "k1"]);
        for bad in ["", "k1", "k1:not base64!", "k1:AAEC", &format!("k1:{K1},k1:{K1}"), &format!(":{K1}")] {
            let e = KeyRing::parse(bad).err().unwrap_or_else(|| panic!("{bad:?} must be refused"));
            assert!(matches!(e, Error::Config(_)), "{bad:?}: {e}");
            assert!(!e.to_string().contains(K1), "the key never shows in an error");
        }
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = KeyRing::parse(&format!("k1:{K1}")).unwrap();
        let d = format!("{ring:?}");
        assert!(d.contains("k1") && !d.contains(K1) && !d.contains("AAEC"));
    }
}
