//! The model: accounts and their tokens, posts and their targets, violations and outcomes.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::id::{AccountId, OwnerId, PlatformId, PostId, TargetId};
use crate::media::Media;
use crate::secret::{AccessToken, RefreshToken};
use crate::violation_code::ViolationCode;

/// An account's OAuth tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token sent with each call.
    pub access_token: AccessToken,
    /// The refresh token, if the platform gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires; `None` if it does not (Facebook Page tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires, if the platform says (TikTok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// The scopes the user granted (which may be fewer than were asked for).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl TokenSet {
    /// A token set with only an access token.
    pub fn new(access_token: AccessToken) -> Self {
        Self { access_token, refresh_token: None, expires_at: None, refresh_expires_at: None, scopes: Vec::new() }
    }

    /// Whether the access token expires before `now + window`.
    pub fn expires_within(&self, now: DateTime<Utc>, window: chrono::Duration) -> bool {
        self.expires_at.is_some_and(|t| t <= now + window)
    }

    /// Whether every scope in `required` was granted.
    pub fn has_scopes<'a>(&self, required: impl IntoIterator<Item = &'a str>) -> bool {
        required.into_iter().all(|s| self.scopes.iter().any(|g| g == s))
    }

    /// Merges a refresh response into this set: a response without a refresh token never erases
    /// the stored one, and one without scopes keeps the old scopes.
    pub fn merged_with(&self, fresh: TokenSet) -> TokenSet {
        TokenSet {
            access_token: fresh.access_token,
            refresh_token: fresh.refresh_token.or_else(|| self.refresh_token.clone()),
            expires_at: fresh.expires_at,
            refresh_expires_at: fresh.refresh_expires_at.or(self.refresh_expires_at),
            scopes: if fresh.scopes.is_empty() { self.scopes.clone() } else { fresh.scopes },
        }
    }
}

/// Whether an account can be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AccountStatus {
    /// Tokens are good (or can be refreshed).
    Active,
    /// The grant is gone: the user must connect again. Targets for it wait as `Blocked`.
    ReauthRequired {
        /// Why.
        reason: String,
    },
    /// The user disconnected it.
    Disconnected,
}

/// A connected account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Our id.
    pub id: AccountId,
    /// Who owns it in the application.
    pub owner: OwnerId,
    /// Which platform.
    pub platform: PlatformId,
    /// The platform's id of the user, Page or channel.
    pub remote_id: String,
    /// `@handle` or similar, if any.
    #[serde(default)]
    pub handle: Option<String>,
    /// Display name, if any.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Avatar, if any.
    #[serde(default)]
    pub avatar_url: Option<Url>,
    /// The tokens.
    pub tokens: TokenSet,
    /// Whether it can be used.
    pub status: AccountStatus,
    /// For a Facebook Page or an Instagram account reached through one: the user account.
    #[serde(default)]
    pub parent: Option<AccountId>,
    /// Platform-specific facts the adapter needs later (e.g. the Instagram user id of a Page).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The record's version: every update is a compare-and-swap on it.
    pub version: u64,
    /// When it was connected.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A platform's view of an account, read with `profile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The platform's id of the user, Page or channel.
    pub remote_id: String,
    /// `@handle` or similar.
    pub handle: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Avatar.
    pub avatar_url: Option<Url>,
}

/// One account that a completed authorization yields. Most platforms yield one; Facebook Login
/// yields the user, each Page and each linked Instagram account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountGrant {
    /// The platform of this account (it may differ from the one that was asked: an Instagram
    /// account found through Facebook Login).
    pub platform: PlatformId,
    /// Who it is.
    pub profile: Profile,
    /// Its tokens.
    pub tokens: TokenSet,
    /// The `remote_id` of the grant it was reached through, if any.
    pub parent_remote_id: Option<String>,
    /// Platform-specific facts (stored as [`Account::metadata`]).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl AccountGrant {
    /// A grant of one account on `platform`, reached directly (no parent) and with no
    /// platform-specific metadata.
    pub fn new(platform: PlatformId, profile: Profile, tokens: TokenSet) -> Self {
        Self { platform, profile, tokens, parent_remote_id: None, metadata: Default::default() }
    }
}

/// One item of a thread (X): text and media of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadItem {
    /// The item's text.
    pub text: String,
    /// The item's media.
    #[serde(default)]
    pub media: Vec<Media>,
}

/// What a post says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// The text (caption, description…).
    #[serde(default)]
    pub text: String,
    /// Images and videos, in order.
    #[serde(default)]
    pub media: Vec<Media>,
    /// A link to attach, where the platform supports link posts.
    #[serde(default)]
    pub link: Option<Url>,
    /// Further items posted as replies to the first (a thread), where supported.
    #[serde(default)]
    pub thread: Vec<ThreadItem>,
    /// Comments published right after the post, in order: the first comment, then follow-ups
    /// (X: replies from the same account; Facebook Pages and Instagram: comments on the new
    /// post; YouTube: comments on the video once it is public). Each has its own checkpoint and
    /// remote id; a failing comment never fails or re-posts the post (see
    /// [`RemotePost::comments`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<String>,
}

impl Content {
    /// Text only.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Self::default() }
    }

    /// Adds a media item.
    pub fn with_media(mut self, media: Media) -> Self {
        self.media.push(media);
        self
    }

    /// Sets the link.
    pub fn with_link(mut self, link: Url) -> Self {
        self.link = Some(link);
        self
    }

    /// Adds a thread item.
    pub fn with_thread_item(mut self, item: ThreadItem) -> Self {
        self.thread.push(item);
        self
    }

    /// Adds a comment published right after the post (the first one added is the first comment).
    pub fn with_comment(mut self, text: impl Into<String>) -> Self {
        self.comments.push(text.into());
        self
    }
}

/// Typed per-platform options, implemented by each adapter's options struct (e.g. `XOptions`).
pub trait PlatformOptions: Serialize + DeserializeOwned {
    /// The platform these options are for.
    const PLATFORM: &'static str;
}

/// A target's per-platform options, stored as JSON and read back as the adapter's typed struct.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TargetOptions(serde_json::Value);

impl TargetOptions {
    /// No options.
    pub fn none() -> Self {
        Self(serde_json::Value::Null)
    }

    /// Options from an adapter's typed struct.
    pub fn new<T: PlatformOptions>(options: &T) -> Result<Self> {
        serde_json::to_value(options)
            .map(Self)
            .map_err(|e| Error::Config(format!("{} options do not serialize: {e}", T::PLATFORM)))
    }

    /// Options from raw JSON (a config file, an HTTP request).
    pub fn from_json(value: serde_json::Value) -> Self {
        Self(value)
    }

    /// The raw JSON.
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }

    /// Whether no options were given.
    pub fn is_empty(&self) -> bool {
        self.0.is_null() || self.0.as_object().is_some_and(|o| o.is_empty())
    }

    /// The options as the adapter's typed struct; absent options give `T::default()`.
    #[allow(clippy::result_large_err)] // a Violation is what validation collects anyway
    pub fn get<T: PlatformOptions + Default>(&self) -> std::result::Result<T, Violation> {
        if self.0.is_null() {
            return Ok(T::default());
        }
        serde_json::from_value(self.0.clone()).map_err(|e| {
            // serde names an unknown key and the allowed ones: "unknown field `x`, expected one
            // of `a`, `b`"; the violation points at the key.
            let msg = e.to_string();
            let field = msg
                .strip_prefix("unknown field `")
                .or_else(|| msg.strip_prefix("unknown variant `").map(|_| ""))
                .and_then(|rest| rest.split('`').next())
                .filter(|k| !k.is_empty())
                .map_or_else(|| "options".to_owned(), |k| format!("options.{k}"));
            Violation::new(
                ViolationCode::InvalidOptions,
                field,
                format!("the {} options are malformed: {msg}", T::PLATFORM),
            )
        })
    }
}

/// Where a post goes: an account, optional content override, and options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The account to publish with.
    pub account: AccountId,
    /// Content for this target only (a shorter caption for X…), replacing the post's content.
    #[serde(default)]
    pub content: Option<Content>,
    /// Per-platform options.
    #[serde(default)]
    pub options: TargetOptions,
}

impl Target {
    /// A target with the post's content and no options.
    pub fn new(account: AccountId) -> Self {
        Self { account, content: None, options: TargetOptions::none() }
    }

    /// Overrides the content for this target.
    pub fn with_content(mut self, content: Content) -> Self {
        self.content = Some(content);
        self
    }

    /// Sets typed per-platform options.
    pub fn with_options<T: PlatformOptions>(mut self, options: &T) -> Result<Self> {
        self.options = TargetOptions::new(options)?;
        Ok(self)
    }
}

/// What the user wrote once, and where it goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// The post's id.
    pub id: PostId,
    /// Who wrote it (the accounts must belong to the same owner).
    pub owner: OwnerId,
    /// The content, unless a target overrides it.
    pub content: Content,
    /// Where it goes.
    pub targets: Vec<Target>,
    /// When to publish; `None` for now.
    #[serde(default)]
    pub publish_at: Option<DateTime<Utc>>,
    /// An application key: the same key submitted twice creates the post once.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl Post {
    /// A new post for `owner`.
    pub fn new(owner: OwnerId, content: Content) -> Self {
        Self { id: PostId::new(), owner, content, targets: Vec::new(), publish_at: None, idempotency_key: None }
    }

    /// Adds a target.
    pub fn to(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    /// Publishes at `at` instead of now.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.publish_at = Some(at);
        self
    }

    /// Sets an idempotency key; the post id is derived from it.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.id = PostId::from_idempotency_key(&self.owner, &key);
        self.idempotency_key = Some(key);
        self
    }

    /// The content a target publishes: its override, or the post's.
    pub fn content_for<'a>(&'a self, target: &'a Target) -> &'a Content {
        target.content.as_ref().unwrap_or(&self.content)
    }
}

/// One reason why a target cannot be published as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// A stable code (`text_too_long`, `too_many_media`…), written as that string.
    pub code: ViolationCode,
    /// The field (`text`, `media[2]`, `options.privacy_level`…).
    pub field: String,
    /// A sentence for people.
    pub message: String,
    /// The limit, if there is one (`280`, `5 MB`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// The actual value, if it helps (`312`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// The platform whose rule it is (filled in by the engine when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformId>,
    /// The target concerned (filled in by the engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetId>,
}

impl Violation {
    /// A violation with a code, a field and a message.
    pub fn new(code: ViolationCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
            limit: None,
            actual: None,
            platform: None,
            target: None,
        }
    }

    /// Adds the limit and the actual value.
    pub fn with_values(mut self, limit: impl ToString, actual: impl ToString) -> Self {
        self.limit = Some(limit.to_string());
        self.actual = Some(actual.to_string());
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.platform {
            write!(f, "{p}: ")?;
        }
        write!(f, "{} ({}): {}", self.field, self.code, self.message)?;
        match (&self.limit, &self.actual) {
            (Some(l), Some(a)) => write!(f, " [limit {l}, actual {a}]"),
            (Some(l), None) => write!(f, " [limit {l}]"),
            _ => Ok(()),
        }
    }
}

/// A post as it exists at the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemotePost {
    /// The platform.
    pub platform: PlatformId,
    /// The platform's id of the post (the first item of a thread).
    pub id: String,
    /// Its public URL, when known.
    #[serde(default)]
    pub url: Option<Url>,
    /// Ids of the further items of a thread, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thread_ids: Vec<String>,
    /// When the platform will make it public, for natively scheduled posts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// What became of the target's comments ([`Content::comments`]), one per comment, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<RemoteComment>,
    /// When it was deleted at the platform through konektly (the target stays `published`,
    /// with this set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// When it was last edited at the platform through konektly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
}

impl RemotePost {
    /// A remote post with an id and an optional URL.
    pub fn new(platform: PlatformId, id: impl Into<String>, url: Option<Url>) -> Self {
        Self {
            platform,
            id: id.into(),
            url,
            thread_ids: Vec::new(),
            scheduled_for: None,
            comments: Vec::new(),
            deleted_at: None,
            edited_at: None,
        }
    }

    /// The platform's ids of the comments that were published, in order.
    pub fn comment_ids(&self) -> impl Iterator<Item = &str> {
        self.comments.iter().filter_map(|c| c.id.as_deref())
    }
}

/// One comment of a published target: its id at the platform, or why it is not there. A
/// comment that failed leaves the post published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteComment {
    /// The platform's id of the comment, when it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why it was not published (after its own bounded retries), when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommentFailure>,
}

/// Why a comment was not published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentFailure {
    /// What kind of error.
    pub kind: ErrorKind,
    /// The platform's code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A sentence for people.
    pub message: String,
}

impl From<&Error> for CommentFailure {
    fn from(e: &Error) -> Self {
        Self { kind: e.kind(), code: e.code().map(str::to_owned), message: e.to_string() }
    }
}

/// What one `publish` or `poll` call achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PublishOutcome {
    /// Done: the post is live (or natively scheduled at the platform).
    Published(RemotePost),
    /// The platform accepted it and is still working; `poll` again after `poll_after`.
    Processing {
        /// When to poll next.
        #[serde(with = "crate::model::duration_ms")]
        poll_after: std::time::Duration,
        /// What the platform said about progress, if anything.
        #[serde(default)]
        detail: Option<String>,
    },
}

impl PublishOutcome {
    /// Still processing: poll again after `poll_after`, with what the platform said.
    pub fn processing(poll_after: std::time::Duration, detail: impl Into<String>) -> Self {
        Self::Processing { poll_after, detail: Some(detail.into()) }
    }
}

/// What `reconcile` found about an attempt whose outcome was unknown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum Reconciliation {
    /// The attempt landed: here is the post.
    Published(RemotePost),
    /// The attempt landed and the platform is still working on it.
    Processing {
        /// When to poll next.
        #[serde(with = "crate::model::duration_ms")]
        poll_after: std::time::Duration,
    },
    /// The attempt did not land (or left nothing to finish): publishing again is safe. Saved
    /// checkpoints (uploaded media…) are kept, so work is resumed, not redone.
    NotFound,
    /// The platform offers no way to find out whether the attempt landed (TikTok after a lost
    /// answer to a pull-from-URL init: no publish id, no listing). The target ends as
    /// `outcome_unknown` at once — never published again, never looked up in vain — and the
    /// application is told, so that a person checks the account.
    Unknowable {
        /// Why, for the person who checks.
        reason: String,
    },
}

/// Why a target failed, stored with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// What kind of error.
    pub kind: ErrorKind,
    /// The platform's code, if any.
    #[serde(default)]
    pub code: Option<String>,
    /// The message (never a secret).
    pub message: String,
    /// The violations, for `InvalidPost`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

impl From<&Error> for FailureRecord {
    fn from(e: &Error) -> Self {
        FailureRecord {
            kind: e.kind(),
            code: e.code().map(str::to_owned),
            message: e.to_string(),
            violations: match e {
                Error::InvalidPost(v) => v.clone(),
                _ => Vec::new(),
            },
        }
    }
}

/// Where a target is in its life (see ARCHITECTURE.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TargetState {
    /// Waiting for its time (or for a retry).
    Scheduled,
    /// A worker holds it and is publishing.
    InFlight,
    /// The platform accepted it and is still working; it is polled.
    Processing,
    /// Its worker died mid-attempt: it is reconciled with the platform before anything is sent.
    Unknown,
    /// Done.
    Published {
        /// The post at the platform.
        remote: RemotePost,
    },
    /// Ended without publishing.
    Failed {
        /// Why.
        failure: FailureRecord,
    },
    /// Waits for its account to be reconnected.
    Blocked {
        /// Why.
        reason: String,
    },
    /// Cancelled by the application.
    Cancelled,
}

impl TargetState {
    /// The state's name (`scheduled`, `in_flight`…).
    pub fn name(&self) -> &'static str {
        crate::lifecycle::StateName::of(self).as_str()
    }

    /// Whether nothing more will happen to it.
    pub fn is_final(&self) -> bool {
        crate::lifecycle::StateName::of(self).is_final()
    }
}

/// A target as the scheduler stores it: everything a worker on any machine needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetRecord {
    /// Its id.
    pub id: TargetId,
    /// The post it belongs to.
    pub post_id: PostId,
    /// The owner of the post.
    pub owner: OwnerId,
    /// The account it publishes with.
    pub account_id: AccountId,
    /// The account's platform.
    pub platform: PlatformId,
    /// The content (override already applied).
    pub content: Content,
    /// Per-platform options.
    #[serde(default)]
    pub options: TargetOptions,
    /// When it is due (publish, retry, or next poll).
    pub due_at: DateTime<Utc>,
    /// Where it is.
    pub state: TargetState,
    /// How many attempts were made (deferrals for rate-limit budgets do not count).
    pub attempts: u32,
    /// What the adapter saved before its last step that changed something at the platform.
    #[serde(default)]
    pub checkpoint: Checkpoint,
    /// The last error, if any.
    #[serde(default)]
    pub last_error: Option<FailureRecord>,
    /// The current lease, if a worker holds it.
    #[serde(default)]
    pub lease: Option<Lease>,
    /// When the current attempt began (for `reconcile` to search from).
    #[serde(default)]
    pub attempt_started_at: Option<DateTime<Utc>>,
    /// When the application asked to cancel it while it was being published (in flight,
    /// processing, or its outcome unknown). Such a target goes on until its outcome is known:
    /// if nothing landed it ends `Cancelled`; if it was published it stays `Published`, with
    /// its remote id and URL — "published before the cancel could stop it".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl TargetRecord {
    /// Whether it was published although the application had asked to cancel it (the cancel
    /// came while the platform was already publishing it).
    pub fn published_despite_cancel(&self) -> bool {
        self.cancel_requested_at.is_some() && matches!(self.state, TargetState::Published { .. })
    }

    /// A new, scheduled target.
    pub fn new(post: &Post, target: &Target, platform: PlatformId, due_at: DateTime<Utc>) -> Self {
        let mut record = Self::new_unchecked(post, target, platform, due_at);
        record.id = TargetId::for_post(post.id, target.account);
        record
    }

    /// The same without deriving the id (the caller sets it; the engine has it already).
    pub(crate) fn new_unchecked(post: &Post, target: &Target, platform: PlatformId, due_at: DateTime<Utc>) -> Self {
        let now = Utc::now();
        Self {
            id: TargetId::from_uuid(uuid::Uuid::nil()),
            post_id: post.id,
            owner: post.owner.clone(),
            account_id: target.account,
            platform,
            content: post.content_for(target).clone(),
            options: target.options.clone(),
            due_at,
            state: TargetState::Scheduled,
            attempts: 0,
            checkpoint: Checkpoint::default(),
            last_error: None,
            lease: None,
            attempt_started_at: None,
            cancel_requested_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A worker's exclusive, expiring hold on a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The target.
    pub target: TargetId,
    /// Who holds it.
    pub owner: crate::id::WorkerId,
    /// Increases with every claim: a write with an older token is refused.
    pub fencing_token: u64,
    /// When it runs out unless extended by a heartbeat.
    pub expires_at: DateTime<Utc>,
}

/// An adapter's progress on a target (upload session, media ids, container ids, thread ids…),
/// saved before each step that changes something at the platform.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Checkpoint(serde_json::Value);

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Checkpoint({})", self.redacted())
    }
}

impl Checkpoint {
    /// The checkpoint with every secret (see [`checkpoint_secret`](crate::checkpoint_secret))
    /// and every sealed value replaced by `"[secret]"`: what logs and exports may show.
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = self.0.clone();
        let _ = crate::checkpoint_secret::replace::<std::convert::Infallible>(&mut v, &mut |x| {
            Ok((crate::checkpoint_secret::as_secret(x).is_some() || crate::checkpoint_secret::as_sealed(x).is_some())
                .then(|| serde_json::Value::String("[secret]".into())))
        });
        v
    }

    /// A checkpoint from an adapter's state.
    pub fn new<T: Serialize>(state: &T) -> Result<Self> {
        serde_json::to_value(state).map(Self).map_err(|e| Error::storage("a checkpoint does not serialize", e))
    }

    /// A checkpoint from raw JSON.
    pub fn from_json(value: serde_json::Value) -> Self {
        Self(value)
    }

    /// The raw JSON.
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }

    /// Whether nothing was saved.
    pub fn is_empty(&self) -> bool {
        self.0.is_null()
    }

    /// The adapter's state, or `None` if nothing was saved or it is of another shape. Adapters
    /// read their state with [`PublishContext::state`](crate::PublishContext::state), which
    /// checks its version and never takes a checkpoint that does not parse for an empty one.
    pub fn get<T: DeserializeOwned>(&self) -> Option<T> {
        if self.0.is_null() { None } else { serde_json::from_value(self.0.clone()).ok() }
    }

    /// A checkpoint from an adapter's state, with the state's version stored beside its fields
    /// under [`CHECKPOINT_VERSION_KEY`]. The state must serialize to a JSON object.
    pub fn versioned<T: crate::CheckpointState>(state: &T) -> Result<Self> {
        let mut value =
            serde_json::to_value(state).map_err(|e| Error::storage("a checkpoint does not serialize", e))?;
        let Some(fields) = value.as_object_mut() else {
            return Err(Error::Storage { message: "a checkpoint state must be a JSON object".into(), source: None });
        };
        fields.insert(CHECKPOINT_VERSION_KEY.into(), serde_json::Value::from(T::VERSION));
        Ok(Self(value))
    }

    /// The adapter's state: `None` when nothing was saved, [`Error::CheckpointUnreadable`] when
    /// something was saved that is not this version of `T` (it does not parse, or it names
    /// another version). A checkpoint without a version was written before versions existed
    /// and is read as version 1.
    pub fn read<T: crate::CheckpointState>(&self) -> Result<Option<T>> {
        if self.0.is_null() {
            return Ok(None);
        }
        let unreadable = |message: String, source: Option<crate::BoxError>| Error::CheckpointUnreadable {
            message: format!("{message}; check the account before publishing it again"),
            source,
        };
        let Some(fields) = self.0.as_object() else {
            return Err(unreadable("it is not a JSON object".into(), None));
        };
        let mut fields = fields.clone();
        let version = match fields.remove(CHECKPOINT_VERSION_KEY) {
            None => 1,
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| unreadable(format!("its {CHECKPOINT_VERSION_KEY} is not a number"), None))?,
        };
        if version != T::VERSION {
            let whose = if version > T::VERSION { "a newer" } else { "an older" };
            return Err(unreadable(
                format!(
                    "it was written by {whose} version of the adapter (state version {version}; this build reads {})",
                    T::VERSION
                ),
                None,
            ));
        }
        serde_json::from_value(serde_json::Value::Object(fields))
            .map(Some)
            .map_err(|e| unreadable(format!("it does not parse as state version {version}: {e}"), Some(Box::new(e))))
    }
}

/// The key under which [`Checkpoint::versioned`] stores the version of an adapter's state.
pub const CHECKPOINT_VERSION_KEY: &str = "checkpoint_version";

/// Serde for `std::time::Duration` as whole milliseconds.
pub mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    /// Deserializes from milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Serde for `Option<std::time::Duration>` as whole milliseconds.
pub mod option_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as milliseconds.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes from milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}
