//! The "create request sent" mark every adapter's checkpoint state keeps, under one name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether (and when) a request that creates something at the platform was sent and its answer
/// not read yet: what tells `reconcile` to look for it. Every adapter keeps it in its checkpoint
/// state as the field `create_sent`, marks it right before
/// [`PublishContext::before_create`](crate::PublishContext::before_create) and clears it once
/// the answer is read.
///
/// Adapters whose creates are several (X's thread) name the one outstanding with `item`.
///
/// Serialized as `false` when clear, else `{"at": …, "item": …}`. It also reads what the
/// adapters stored before it existed: `true`/`false` (TikTok's `init_sent`, Meta's
/// `create_sent` and Instagram's `publish_sent`), a number (X's `posting`: the item) and `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateSent {
    sent: bool,
    at: Option<DateTime<Utc>>,
    item: Option<usize>,
}

impl CreateSent {
    /// Marks a create as sent now.
    pub fn mark(&mut self) {
        *self = Self { sent: true, at: Some(Utc::now()), item: None };
    }

    /// Marks the create of `item` (of several) as sent now.
    pub fn mark_item(&mut self, item: usize) {
        *self = Self { sent: true, at: Some(Utc::now()), item: Some(item) };
    }

    /// The create's answer was read: nothing is outstanding.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Whether a create was sent and its answer not read.
    pub fn is_sent(&self) -> bool {
        self.sent
    }

    /// Whether nothing is outstanding (for `skip_serializing_if`).
    pub fn is_clear(&self) -> bool {
        !self.sent
    }

    /// When it was sent (unknown for a mark stored before times were).
    pub fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.at.filter(|_| self.sent)
    }

    /// The item whose create was sent, for adapters that send several.
    pub fn item(&self) -> Option<usize> {
        self.item.filter(|_| self.sent)
    }
}

#[derive(Serialize, Deserialize)]
struct Mark {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    item: Option<usize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Flag(bool),
    Item(usize),
    Mark(Mark),
}

impl Serialize for CreateSent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.sent {
            return s.serialize_bool(false);
        }
        Mark { at: self.at, item: self.item }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for CreateSent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<Stored>::deserialize(d)? {
            None | Some(Stored::Flag(false)) => Self::default(),
            Some(Stored::Flag(true)) => Self { sent: true, at: None, item: None },
            Some(Stored::Item(i)) => Self { sent: true, at: None, item: Some(i) },
            Some(Stored::Mark(m)) => Self { sent: true, at: m.at, item: m.item },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_the_older_shapes() {
        let mut c = CreateSent::default();
        assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(false));
        c.mark_item(2);
        let back: CreateSent = serde_json::from_value(serde_json::to_value(c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(back.is_sent() && back.item() == Some(2) && back.sent_at().is_some());
        c.clear();
        assert!(!c.is_sent() && c.item().is_none() && c.sent_at().is_none());

        let read = |v: serde_json::Value| serde_json::from_value::<CreateSent>(v).unwrap();
        assert!(!read(serde_json::json!(false)).is_sent());
        assert!(!read(serde_json::json!(null)).is_sent());
        let flag = read(serde_json::json!(true));
        assert!(flag.is_sent() && flag.sent_at().is_none() && flag.item().is_none());
        let item = read(serde_json::json!(3));
        assert_eq!((item.is_sent(), item.item()), (true, Some(3)));
        let at = read(serde_json::json!({"at": "2026-01-02T03:04:05Z"}));
        assert_eq!(at.sent_at().map(|t| t.to_rfc3339()), Some("2026-01-02T03:04:05+00:00".into()));
        assert!(serde_json::from_value::<CreateSent>(serde_json::json!("yes")).is_err());
    }
}
