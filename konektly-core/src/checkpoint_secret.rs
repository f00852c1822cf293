//! Secrets inside checkpoints: an upload URL that carries a token (TikTok), a resumable
//! session URI that accepts bytes from anyone who holds it (YouTube).
//!
//! An adapter marks such a field with `#[serde(with = "konektly_core::checkpoint_secret")]`
//! (on an `Option<String>`). In the checkpoint it is then written `{"$secret": "…"}`; the
//! stores encrypt every such value at rest with the token keys (written `{"$sealed": "…"}`)
//! and decrypt it when the checkpoint is read back; [`Checkpoint`](crate::Checkpoint)'s
//! `Debug` and [`Checkpoint::redacted`](crate::Checkpoint::redacted) (what exports show)
//! replace it with `"[secret]"`. A plain string is still read, so checkpoints saved before a
//! field was marked keep working.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The key marking a secret value in a checkpoint.
pub const SECRET: &str = "$secret";

/// The key marking a value a store has encrypted.
pub const SEALED: &str = "$sealed";

/// Writes `Some(v)` as `{"$secret": v}`.
pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => {
            let mut m = serde_json::Map::new();
            m.insert(SECRET.into(), serde_json::Value::String(v.clone()));
            serde_json::Value::Object(m).serialize(s)
        }
        None => s.serialize_none(),
    }
}

/// Reads `{"$secret": v}`, or a plain string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Marked {
            #[serde(rename = "$secret")]
            secret: String,
        },
        Plain(String),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|e| match e {
        Either::Marked { secret } => secret,
        Either::Plain(s) => s,
    }))
}

/// The secret marked by `v`, if `v` is `{"$secret": "…"}`.
pub fn as_secret(v: &serde_json::Value) -> Option<&str> {
    marked(v, SECRET)
}

/// The sealed text marked by `v`, if `v` is `{"$sealed": "…"}`.
pub fn as_sealed(v: &serde_json::Value) -> Option<&str> {
    marked(v, SEALED)
}

fn marked<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    match v {
        serde_json::Value::Object(m) if m.len() == 1 => m.get(key).and_then(serde_json::Value::as_str),
        _ => None,
    }
}

/// Replaces, depth first, every value for which `f` returns `Some` (secrets, sealed values).
pub fn replace<E>(
    v: &mut serde_json::Value,
    f: &mut dyn FnMut(&serde_json::Value) -> Result<Option<serde_json::Value>, E>,
) -> Result<(), E> {
    if let Some(new) = f(v)? {
        *v = new;
        return Ok(());
    }
    match v {
        serde_json::Value::Object(m) => m.values_mut().try_for_each(|x| replace(x, f)),
        serde_json::Value::Array(a) => a.iter_mut().try_for_each(|x| replace(x, f)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct S {
        #[serde(with = "super", default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    }

    #[test]
    fn marks_and_reads_back_and_reads_plain_strings() {
        let s = S { url: Some("https://up.example/?upload_token=t0k3n".into()) };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v, serde_json::json!({"url": {"$secret": "https://up.example/?upload_token=t0k3n"}}));
        assert_eq!(serde_json::from_value::<S>(v).unwrap(), s);
        let old: S = serde_json::from_value(serde_json::json!({"url": "https://plain"})).unwrap();
        assert_eq!(old.url.as_deref(), Some("https://plain"));
        assert_eq!(serde_json::from_value::<S>(serde_json::json!({})).unwrap(), S::default());
    }
}
