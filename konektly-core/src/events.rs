//! Events the application subscribes to, to send its own notifications.

use serde::{Deserialize, Serialize};

use crate::id::{AccountId, PostId, TargetId};
use crate::model::{FailureRecord, RemotePost};

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
}
