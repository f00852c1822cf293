//! The one public error of konektly. Its variants are named for what the caller does next.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Violation;

/// A boxed error source: the platform's own error (code, message, trace id), a database error…
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of konektly.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, sorted by what to do about it.
///
/// Adapters keep a private error for their API's body shape and convert it into one of these;
/// the platform's own code and message stay reachable through [`std::error::Error::source`].
/// No variant ever carries a token, a client secret or an `Authorization` header.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The post breaks the platform's rules; nothing was sent. Every violation is listed.
    #[error("the post is invalid: {}", violations_summary(.0))]
    InvalidPost(Vec<Violation>),

    /// The platform (or a declared budget) says: not now. Try again at `retry_at`, if known.
    #[error("rate limited{}: {message}", retry_at.map(|t| format!(" until {t}")).unwrap_or_default())]
    RateLimited {
        /// When the budget returns, if known.
        retry_at: Option<DateTime<Utc>>,
        /// What the platform said.
        message: String,
        /// The platform's own error.
        #[source]
        source: Option<BoxError>,
    },

    /// The access token was refused. The engine refreshes once and tries again; if it is still
    /// refused the account needs reconnecting.
    #[error("the access token was refused: {message}")]
    AccessTokenRejected {
        /// What the platform said.
        message: String,
        /// The platform's own error.
        #[source]
        source: Option<BoxError>,
    },

    /// The account's grant is gone (revoked, expired, password changed, scope removed): the user
    /// must connect the account again.
    #[error("the account must be reconnected: {reason}")]
    ReauthRequired {
        /// Why, in words a user understands.
        reason: String,
        /// The platform's own error.
        #[source]
        source: Option<BoxError>,
    },

    /// The platform refused this content or request. Retrying will not help.
    #[error("rejected by the platform: {message}")]
    Rejected {
        /// The platform's code (`code`, `reason`, problem `type`…), when it gives one.
        code: Option<String>,
        /// What the platform said, and what to do.
        message: String,
        /// The platform's own error.
        #[source]
        source: Option<BoxError>,
    },

    /// A passing failure (network, 5xx, a platform that asks to try again). Safe to retry.
    #[error("temporary failure: {message}")]
    Transient {
        /// What went wrong.
        message: String,
        /// When to try again, if the platform said.
        retry_after: Option<Duration>,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// A request that creates something may have reached the platform, but no answer came back.
    /// Reconcile with the platform before sending anything again.
    #[error("the outcome is unknown (the request may have reached the platform): {message}")]
    UnknownOutcome {
        /// What went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The platform or backend cannot do this.
    #[error("not supported: {0}")]
    NotSupported(String),

    /// A record that was asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),

    /// A compare-and-swap lost: the record changed since it was read. Read it again.
    #[error("conflict: {0}")]
    Conflict(String),

    /// This worker's lease was taken over (its fencing token is stale): it must stop writing.
    #[error("the lease on target {0} was lost")]
    LeaseLost(crate::TargetId),

    /// An authorization callback did not match a pending authorization (wrong, expired or
    /// replayed `state`), or the user refused.
    #[error("authorization failed: {0}")]
    Authorization(String),

    /// The store failed.
    #[error("storage error: {message}")]
    Storage {
        /// What went wrong.
        message: String,
        /// The database error.
        #[source]
        source: Option<BoxError>,
    },

    /// The target's saved checkpoint cannot be read: it does not parse as the adapter's state,
    /// or it was written by a version of the state this build does not read (a newer konektly,
    /// or a change of the state struct). Nobody knows whether a create was sent, and starting
    /// over could publish twice, so the target ends at once as `outcome_unknown` (kind
    /// [`ErrorKind::OutcomeUnknown`], code `checkpoint_unreadable`) and nothing is sent: check the
    /// account before publishing it again.
    #[error("the saved checkpoint cannot be read: {message}")]
    CheckpointUnreadable {
        /// What is wrong with it (never its content: it may hold ids of the platform's).
        message: String,
        /// The parse error.
        #[source]
        source: Option<BoxError>,
    },

    /// The configuration is missing or wrong. Raised at build time, not at first use.
    #[error("configuration error: {0}")]
    Config(String),

    /// A media item's bytes cannot be read, and trying again will not help: its object is
    /// missing from the media store (collected, deleted by hand, a store that is not the one
    /// the post was scheduled with), or stored media are read in a process without a media
    /// store. Its code is `media_unreadable`. A passing failure of the store is `Transient`.
    #[error("media unreadable: {message}")]
    MediaUnreadable {
        /// What is missing, and where it was looked for (never a credential).
        message: String,
        /// The store's error.
        #[source]
        source: Option<BoxError>,
    },
}

fn violations_summary(v: &[Violation]) -> String {
    v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
}

impl Error {
    /// A `Storage` error from a message and a source.
    pub fn storage(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Storage { message: message.into(), source: Some(source.into()) }
    }

    /// A `Rejected` error with a message.
    pub fn rejected(code: Option<String>, message: impl Into<String>) -> Self {
        Self::Rejected { code, message: message.into(), source: None }
    }

    /// A `Transient` error with a message.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient { message: message.into(), retry_after: None, source: None }
    }

    /// A `ReauthRequired` error with a reason.
    pub fn reauth(reason: impl Into<String>) -> Self {
        Self::ReauthRequired { reason: reason.into(), source: None }
    }

    /// The kind of this error, as stored with a failed target.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidPost(_) => ErrorKind::InvalidPost,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::AccessTokenRejected { .. } | Error::ReauthRequired { .. } => ErrorKind::ReauthRequired,
            Error::Rejected { .. } => ErrorKind::Rejected,
            Error::Transient { .. } => ErrorKind::Transient,
            Error::UnknownOutcome { .. } => ErrorKind::UnknownOutcome,
            Error::NotSupported(_) => ErrorKind::NotSupported,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) | Error::LeaseLost(_) => ErrorKind::Conflict,
            Error::Authorization(_) => ErrorKind::Authorization,
            Error::Storage { .. } => ErrorKind::Storage,
            Error::Config(_) => ErrorKind::Config,
            Error::MediaUnreadable { .. } => ErrorKind::MediaUnreadable,
            Error::CheckpointUnreadable { .. } => ErrorKind::OutcomeUnknown,
        }
    }

    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::RateLimited { .. } | Error::Transient { .. } | Error::Storage { .. })
    }

    /// The platform's code, when the error carries one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Rejected { code, .. } => code.as_deref(),
            Error::MediaUnreadable { .. } => Some("media_unreadable"),
            Error::CheckpointUnreadable { .. } => Some("checkpoint_unreadable"),
            _ => None,
        }
    }
}

/// What kind of error ended an attempt: stored with a target, so it is plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::InvalidPost`].
    InvalidPost,
    /// See [`Error::RateLimited`].
    RateLimited,
    /// See [`Error::ReauthRequired`].
    ReauthRequired,
    /// See [`Error::Rejected`].
    Rejected,
    /// See [`Error::Transient`].
    Transient,
    /// See [`Error::UnknownOutcome`].
    UnknownOutcome,
    /// See [`Error::NotSupported`].
    NotSupported,
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::Authorization`].
    Authorization,
    /// See [`Error::Storage`].
    Storage,
    /// See [`Error::Config`].
    Config,
    /// See [`Error::MediaUnreadable`].
    MediaUnreadable,
    /// Not an error of one call: the outcome of a target's create could not be established
    /// within its attempts or its deadline (every lookup failed, or the platform never finished
    /// processing), or its checkpoint could not be read ([`Error::CheckpointUnreadable`]). The
    /// post may or may not be live: check the account.
    OutcomeUnknown,
}
