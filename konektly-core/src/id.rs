//! Identifiers: newtypes so that an account id is never passed where a post id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Our id of a connected account (not the platform's user id).
    AccountId
);
uuid_id!(
    /// The id of a post: what the user wrote once, for one or more targets.
    PostId
);
uuid_id!(
    /// The id of one target: a post going to one account.
    TargetId
);
uuid_id!(
    /// The id of a posting queue.
    QueueId
);
uuid_id!(
    /// The id of a recurring series of posts.
    SeriesId
);
uuid_id!(
    /// The id of one event in the outbox: stable across deliveries, for de-duplication.
    EventId
);

impl PostId {
    /// The post id derived from an application's idempotency key: submitting the same key twice
    /// yields the same id, so the second submission adds nothing.
    pub fn from_idempotency_key(owner: &OwnerId, key: &str) -> Self {
        let name = format!("{}\u{0}{}", owner.as_str(), key);
        Self(Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()))
    }
}

impl TargetId {
    /// The target id of `account` within `post`: stable, so enqueueing a post twice is a no-op.
    pub fn for_post(post: PostId, account: AccountId) -> Self {
        let mut name = post.as_uuid().as_bytes().to_vec();
        name.extend_from_slice(account.as_uuid().as_bytes());
        Self(Uuid::new_v5(post.as_uuid(), &name))
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The string inside.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// A platform's name, such as `x`, `tiktok`, `facebook`, `instagram` or `youtube`. Platforms
    /// are an open set: a third-party crate may add `linkedin` without touching core.
    PlatformId
);
string_id!(
    /// Who owns an account in the application: a user or tenant id of the application's choosing.
    OwnerId
);
string_id!(
    /// The name of a worker (process and task) holding a lease.
    WorkerId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let owner = OwnerId::new("tenant-1");
        let a = PostId::from_idempotency_key(&owner, "k1");
        assert_eq!(a, PostId::from_idempotency_key(&owner, "k1"));
        assert_ne!(a, PostId::from_idempotency_key(&owner, "k2"));
        assert_ne!(a, PostId::from_idempotency_key(&OwnerId::new("tenant-2"), "k1"));
        let acc1 = AccountId::new();
        let acc2 = AccountId::new();
        assert_eq!(TargetId::for_post(a, acc1), TargetId::for_post(a, acc1));
        assert_ne!(TargetId::for_post(a, acc1), TargetId::for_post(a, acc2));
    }

    #[test]
    fn ids_parse_back_from_display() {
        let id = AccountId::new();
        let parsed: AccountId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }
}
