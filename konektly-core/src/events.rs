//! Events the application subscribes to, to send its own notifications.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::id::{AccountId, EventId, OwnerId, PostId, TargetId};
use crate::model::{FailureRecord, RemotePost};
use crate::scheduler::{ClaimKind, Completion};

/// Something that happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A target was published.
    Published {
        /// The target.
        target: TargetId,
        /// Its post.
        post: PostId,
        /// The post at the platform.
        remote: RemotePost,
    },
    /// The platform accepted a target and is processing it.
    Processing {
        /// The target.
        target: TargetId,
    },
    /// Bytes of a media item being uploaded reached the platform.
    UploadProgress {
        /// The target.
        target: TargetId,
        /// Bytes the platform holds.
        sent: u64,
        /// Bytes in all.
        total: u64,
    },
    /// A target will be tried again.
    Retrying {
        /// The target.
        target: TargetId,
        /// Why.
        failure: FailureRecord,
    },
    /// A target failed for good.
    Failed {
        /// The target.
        target: TargetId,
        /// Its post.
        post: PostId,
        /// Why.
        failure: FailureRecord,
    },
    /// A target ended because whether it was published could not be established (its answer
    /// was lost and every lookup failed, or the platform never finished): someone should look
    /// at the account. A [`Event::Failed`] with kind `outcome_unknown` follows.
    OutcomeUnknown {
        /// The target.
        target: TargetId,
        /// Its post.
        post: PostId,
        /// The account to check.
        account: AccountId,
        /// What is known.
        failure: FailureRecord,
    },
    /// An account must be reconnected; its targets wait as `Blocked`.
    ReauthRequired {
        /// The account.
        account: AccountId,
        /// Why.
        reason: String,
    },
    /// An account's refresh token expires soon and cannot be renewed without the user.
    TokenExpiringSoon {
        /// The account.
        account: AccountId,
    },
    /// An account was connected (or reconnected).
    AccountConnected {
        /// The account.
        account: AccountId,
    },
    /// An account was disconnected and its tokens erased.
    AccountDisconnected {
        /// The account.
        account: AccountId,
    },
    /// A target was cancelled: a cancel requested while the platform might have been publishing
    /// ended it once its outcome came back unpublished.
    Cancelled {
        /// The target.
        target: TargetId,
        /// Its post.
        post: PostId,
    },
}

impl Event {
    /// Its stable name for webhooks and the event log: `target.published`, `account.connected`…
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Published { .. } => "target.published",
            Event::Processing { .. } => "target.processing",
            Event::UploadProgress { .. } => "target.upload_progress",
            Event::Retrying { .. } => "target.retrying",
            Event::Failed { .. } => "target.failed",
            Event::OutcomeUnknown { .. } => "target.outcome_unknown",
            Event::Cancelled { .. } => "target.cancelled",
            Event::ReauthRequired { .. } => "account.reauth_required",
            Event::TokenExpiringSoon { .. } => "account.token_expiring_soon",
            Event::AccountConnected { .. } => "account.connected",
            Event::AccountDisconnected { .. } => "account.disconnected",
        }
    }

    /// Every kind [`Event::kind`] can return, the durable ones first.
    pub const KINDS: [&'static str; 11] = [
        "target.published",
        "target.processing",
        "target.retrying",
        "target.failed",
        "target.cancelled",
        "account.reauth_required",
        "account.token_expiring_soon",
        "account.connected",
        "account.disconnected",
        "target.outcome_unknown",
        "target.upload_progress",
    ];

    /// Whether the outbox keeps it. Upload progress is a moment's news, and an unknown outcome
    /// is told by the [`Event::Failed`] (kind `outcome_unknown`) recorded with it.
    pub fn is_durable(&self) -> bool {
        !matches!(self, Event::UploadProgress { .. } | Event::OutcomeUnknown { .. })
    }

    /// The target it is about, if any.
    pub fn target(&self) -> Option<TargetId> {
        match self {
            Event::Published { target, .. }
            | Event::Processing { target }
            | Event::UploadProgress { target, .. }
            | Event::Retrying { target, .. }
            | Event::Failed { target, .. }
            | Event::OutcomeUnknown { target, .. }
            | Event::Cancelled { target, .. } => Some(*target),
            _ => None,
        }
    }

    /// The account it is about, if it is an account's event.
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Event::ReauthRequired { account, .. }
            | Event::TokenExpiringSoon { account }
            | Event::AccountConnected { account }
            | Event::AccountDisconnected { account }
            | Event::OutcomeUnknown { account, .. } => Some(*account),
            _ => None,
        }
    }

    /// The durable event a recorded outcome raises, the same on every store: published, failed,
    /// retrying (an error to try again after), processing (the first time the platform accepts
    /// it, not at every poll), none for a deferral or a block (the account's event tells that).
    /// `claimed_as` is the kind of claim the outcome ends.
    pub fn for_completion(
        target: TargetId,
        post: PostId,
        claimed_as: Option<ClaimKind>,
        completion: &Completion,
    ) -> Option<Event> {
        Some(match completion {
            Completion::Published(remote) => Event::Published { target, post, remote: remote.clone() },
            Completion::Processing { .. } if claimed_as != Some(ClaimKind::Poll) => Event::Processing { target },
            Completion::Retry { error: Some(f), .. } | Completion::Unknown { error: Some(f), .. } => {
                Event::Retrying { target, failure: f.clone() }
            }
            Completion::Failed(f) => Event::Failed { target, post, failure: f.clone() },
            _ => return None,
        })
    }
}

/// An event as the outbox keeps it: written in the same transaction as the change that raised
/// it, given its place in the log (`seq`) once committed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its stable id: a receiver de-duplicates on it (a webhook may be delivered twice).
    pub id: EventId,
    /// Its place in the log: readers page with `after = seq` and miss nothing.
    pub seq: u64,
    /// Whose it is.
    pub owner: OwnerId,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: Event,
}
