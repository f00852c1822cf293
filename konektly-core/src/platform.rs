//! The `Platform` port: one implementation per social network.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};
use crate::id::{PlatformId, TargetId};
use crate::media::{Media, MediaKind};
use crate::model::{
    Account, AccountGrant, Checkpoint, Content, Profile, PublishOutcome, Reconciliation, RemotePost, TargetOptions,
    TokenSet, Violation,
};
use crate::ratelimit::{DeclaredBudget, RateLimitReport};
use crate::secret::PkceVerifier;
use crate::violation_code::ViolationCode;

/// How a platform counts a text's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextCounting {
    /// Unicode scalar values (`char`s).
    Chars,
    /// UTF-16 code units (what JavaScript's `length` says).
    Utf16,
    /// UTF-8 bytes.
    Bytes,
    /// Grapheme-like weighting defined by the platform (X's twitter-text).
    Weighted,
}

/// Limits of one media kind on a platform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaLimits {
    /// The kind.
    pub kind: MediaKind,
    /// Accepted MIME types (`image/jpeg`…).
    pub mime_types: Vec<String>,
    /// At most this many items of the kind in one post.
    pub max_count: usize,
    /// At most this many bytes per item.
    pub max_bytes: u64,
    /// Shortest duration (videos), if limited.
    #[serde(default, with = "crate::model::option_duration_ms")]
    pub min_duration: Option<Duration>,
    /// Longest duration (videos), if limited.
    #[serde(default, with = "crate::model::option_duration_ms")]
    pub max_duration: Option<Duration>,
    /// At least this many bytes per item (Facebook refuses a video under 1 KB).
    #[serde(default)]
    pub min_bytes: u64,
    /// Pixel bounds, checked when the item's width and height are known (probed from local
    /// files; given with `Media::with_dimensions` for URL media).
    #[serde(default)]
    pub dimensions: Dimensions,
    /// Encoding bounds (codecs, frame rate, bit rate), checked when the facts are known
    /// (probed from local files; URL media are not probed, so nothing is checked for them).
    #[serde(default, skip_serializing_if = "VideoFormat::is_unbounded")]
    pub format: VideoFormat,
}

impl Default for MediaLimits {
    /// No limits on an `Other` kind: a base for `MediaLimits { kind, …, ..Default::default() }`.
    fn default() -> Self {
        Self {
            kind: MediaKind::Other,
            mime_types: Vec::new(),
            max_count: usize::MAX,
            max_bytes: u64::MAX,
            min_duration: None,
            max_duration: None,
            min_bytes: 0,
            dimensions: Dimensions::default(),
            format: VideoFormat::default(),
        }
    }
}

/// Encoding bounds of a video: codecs, frame rate and bit rate (all optional). Each is checked
/// only when the fact is known ([`Media::video_codec`], [`Media::audio_codec`],
/// [`Media::frame_rate`], [`Media::bit_rate`] are probed from local files and bytes; a URL
/// media item knows none of them, and an unknown fact is never a violation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VideoFormat {
    /// Accepted video codecs, as [`Media::video_codec`] names them (`h264`, `hevc`, `vp9`…);
    /// empty accepts any.
    pub video_codecs: Vec<String>,
    /// Accepted audio codecs, as [`Media::audio_codec`] names them (`aac`…); empty accepts any.
    /// A video without an audio track has no audio codec and passes.
    pub audio_codecs: Vec<String>,
    /// Lowest frame rate (frames per second), inclusive.
    pub min_frame_rate: Option<f64>,
    /// Highest frame rate (frames per second), inclusive.
    pub max_frame_rate: Option<f64>,
    /// Highest average bit rate of the whole file (bits per second, as [`Media::bit_rate`]
    /// measures it: size × 8 over duration, audio and container included), inclusive.
    pub max_bit_rate: Option<u64>,
}

impl VideoFormat {
    /// Whether no bound is set.
    pub fn is_unbounded(&self) -> bool {
        *self == VideoFormat::default()
    }

    /// The violations of `media` at `field`: at most one per bound (video codec, audio codec,
    /// frame rate, bit rate), and none for a fact not known.
    pub fn check(&self, media: &Media, field: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        let listed = |codecs: &[String], codec: &str| codecs.is_empty() || codecs.iter().any(|c| c == codec);
        if let Some(codec) = &media.video_codec
            && !listed(&self.video_codecs, codec)
        {
            out.push(
                Violation::new(
                    ViolationCode::VideoCodecNotSupported,
                    field,
                    format!("{codec} video is not accepted; encode it as {}", self.video_codecs.join(" or ")),
                )
                .with_values(self.video_codecs.join(", "), codec),
            );
        }
        if let Some(codec) = &media.audio_codec
            && !listed(&self.audio_codecs, codec)
        {
            out.push(
                Violation::new(
                    ViolationCode::AudioCodecNotSupported,
                    field,
                    format!("{codec} audio is not accepted; encode it as {}", self.audio_codecs.join(" or ")),
                )
                .with_values(self.audio_codecs.join(", "), codec),
            );
        }
        if let Some(fps) = media.frame_rate {
            let low = self.min_frame_rate.is_some_and(|m| fps < m);
            let high = self.max_frame_rate.is_some_and(|m| fps > m);
            let bounded = self.min_frame_rate.is_some() || self.max_frame_rate.is_some();
            if bounded && (low || high || !fps.is_finite()) {
                let range = self.frame_rate_range();
                out.push(
                    Violation::new(
                        ViolationCode::FrameRateOutOfRange,
                        field,
                        format!("the frame rate must be {range} frames per second"),
                    )
                    .with_values(range, format!("{fps}")),
                );
            }
        }
        if let (Some(rate), Some(max)) = (media.bit_rate, self.max_bit_rate)
            && rate > max
        {
            out.push(
                Violation::new(ViolationCode::BitRateTooHigh, field, "the video's bit rate is too high")
                    .with_values(format!("{max} bit/s"), format!("{rate} bit/s")),
            );
        }
        out
    }

    /// The frame rates allowed, as words (`23–60`, `≤ 60`, `≥ 24`, or `any`).
    pub fn frame_rate_range(&self) -> String {
        match (self.min_frame_rate, self.max_frame_rate) {
            (Some(a), Some(b)) => format!("{a}–{b}"),
            (Some(a), None) => format!("≥ {a}"),
            (None, Some(b)) => format!("≤ {b}"),
            (None, None) => "any".into(),
        }
    }
}

/// A width:height ratio, compared exactly (in integers), as the platforms compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AspectRatio {
    /// Width part.
    pub width: u32,
    /// Height part.
    pub height: u32,
}

impl AspectRatio {
    /// `width:height`.
    pub const fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }

    /// `w:h` compared with this ratio: `Less` when `w:h` is narrower.
    pub fn compare(&self, w: u32, h: u32) -> std::cmp::Ordering {
        (u64::from(w) * u64::from(self.height)).cmp(&(u64::from(h) * u64::from(self.width)))
    }
}

impl std::fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.width, self.height)
    }
}

/// Pixel bounds of a media kind (all optional).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dimensions {
    /// Smallest width.
    pub min_width: Option<u32>,
    /// Smallest height.
    pub min_height: Option<u32>,
    /// Largest width.
    pub max_width: Option<u32>,
    /// Largest height.
    pub max_height: Option<u32>,
    /// Largest number of pixels (`1920 × 1080` for "at most 1080p", either orientation).
    pub max_pixels: Option<u64>,
    /// Largest side, either orientation.
    pub max_side: Option<u32>,
    /// Narrowest `width:height`.
    pub min_aspect: Option<AspectRatio>,
    /// Widest `width:height`.
    pub max_aspect: Option<AspectRatio>,
}

impl Dimensions {
    /// No bounds (the `Default`), usable in `const` items: `Dimensions { max_width: Some(1920), ..Dimensions::NONE }`.
    pub const NONE: Dimensions = Dimensions {
        min_width: None,
        min_height: None,
        max_width: None,
        max_height: None,
        max_pixels: None,
        max_side: None,
        min_aspect: None,
        max_aspect: None,
    };

    /// The violations of a `w`×`h` item at `field` (at most one per bound kind: size, then
    /// aspect).
    pub fn check(&self, w: u32, h: u32, field: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        let small = self.min_width.is_some_and(|m| w < m) || self.min_height.is_some_and(|m| h < m);
        let large = self.max_width.is_some_and(|m| w > m)
            || self.max_height.is_some_and(|m| h > m)
            || self.max_side.is_some_and(|m| w.max(h) > m)
            || self.max_pixels.is_some_and(|m| u64::from(w) * u64::from(h) > m);
        let bounds = |lo: Option<u32>, hi: Option<u32>| match (lo, hi) {
            (Some(a), Some(b)) => format!("{a}–{b}"),
            (Some(a), None) => format!("≥ {a}"),
            (None, Some(b)) => format!("≤ {b}"),
            (None, None) => "any".into(),
        };
        let allowed = || {
            let mut s = format!(
                "width {}, height {}",
                bounds(self.min_width, self.max_width),
                bounds(self.min_height, self.max_height)
            );
            if let Some(m) = self.max_side {
                s.push_str(&format!(", longest side ≤ {m}"));
            }
            if let Some(m) = self.max_pixels {
                s.push_str(&format!(", ≤ {m} pixels"));
            }
            s
        };
        if small {
            out.push(
                Violation::new(ViolationCode::DimensionsTooSmall, field, "the picture is too small")
                    .with_values(allowed(), format!("{w}×{h}")),
            );
        } else if large {
            out.push(
                Violation::new(ViolationCode::DimensionsTooLarge, field, "the picture is too large")
                    .with_values(allowed(), format!("{w}×{h}")),
            );
        }
        let narrow = self.min_aspect.is_some_and(|r| r.compare(w, h).is_lt());
        let wide = self.max_aspect.is_some_and(|r| r.compare(w, h).is_gt());
        if narrow || wide {
            let range = match (self.min_aspect, self.max_aspect) {
                (Some(a), Some(b)) => format!("{a} to {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            out.push(
                Violation::new(
                    ViolationCode::AspectRatioOutOfRange,
                    field,
                    format!("the aspect ratio must be {range}"),
                )
                .with_values(range, format!("{w}:{h}")),
            );
        }
        out
    }
}

/// What `reconcile` can find out after an attempt with an unknown outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileSupport {
    /// Exactly, from ids saved in the checkpoint (TikTok `publish_id`, Instagram containers…).
    FromCheckpoint,
    /// By searching the account's recent posts (X: by text since the attempt began).
    Search,
    /// Only what the checkpoint holds; an attempt that saved nothing cannot be found.
    CheckpointOnly,
}

/// What a platform can do, as data. The engine and the conformance suite read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// How text length is counted.
    pub text_counting: TextCounting,
    /// The longest text accepted (in `text_counting` units).
    pub max_text_len: usize,
    /// Limits per media kind; a kind not listed is not accepted.
    pub media: Vec<MediaLimits>,
    /// Most media items of any kind in one post.
    pub max_media_per_post: usize,
    /// Whether different media kinds may be mixed in one post.
    pub mixed_media: bool,
    /// Whether a post must carry media (TikTok, Instagram, YouTube).
    pub media_required: bool,
    /// Whether threads (reply chains) are supported.
    pub threads: bool,
    /// Whether polls are supported.
    pub polls: bool,
    /// Whether link posts are supported.
    pub links: bool,
    /// Whether the platform can hold a post and publish it later itself.
    pub native_scheduling: bool,
    /// Whether publishing may end in `Processing` and need `poll`.
    pub asynchronous_processing: bool,
    /// Whether refresh tokens rotate (each refresh returns a new one and kills the old).
    pub rotating_refresh_tokens: bool,
    /// What `reconcile` can find.
    pub reconcile: ReconcileSupport,
    /// Whether media must be reachable at a public URL (a `MediaHost` is then required).
    pub needs_media_host: bool,
    /// Known per-account and per-app budgets, so the engine spaces calls instead of collecting 429s.
    #[serde(default)]
    pub budgets: Vec<DeclaredBudget>,
    /// Whether (and how) comments are published under a new post ([`Content::comments`]);
    /// `None`: a target with comments is refused (`comments_not_supported`).
    #[serde(default)]
    pub comments: Option<CommentSupport>,
    /// Whether a published post can be deleted through the API ([`Platform::delete`]).
    #[serde(default)]
    pub delete: bool,
    /// What of a published post can be edited through the API ([`Platform::edit`]).
    #[serde(default)]
    pub edit: EditSupport,
}

/// How a platform takes the comments published right after a post.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommentSupport {
    /// The longest comment, counted as the post's text is ([`Capabilities::text_counting`]).
    pub max_len: usize,
    /// Most comments konektly publishes under one post.
    pub max_comments: usize,
    /// What comments need beyond the post's grant, or when they wait (YouTube: the
    /// `youtube.force-ssl` scope, and a public video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What of a published post a platform lets an application change. Nothing by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EditSupport {
    /// The text (Facebook's message, YouTube's description).
    pub text: bool,
    /// The title (YouTube).
    pub title: bool,
    /// Who may see it (YouTube's privacy status).
    pub privacy: bool,
    /// When it becomes public (YouTube's `publishAt`, for a private video).
    pub publish_at: bool,
    /// Why some of it cannot be edited, in words (X: "X does not allow editing posts through
    /// this API").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl EditSupport {
    /// Whether anything at all can be edited.
    pub fn any(&self) -> bool {
        self.text || self.title || self.privacy || self.publish_at
    }

    /// Nothing can be edited, for this reason.
    pub fn none(note: impl Into<String>) -> Self {
        Self { note: Some(note.into()), ..Self::default() }
    }
}

/// A change to a published post ([`Platform::edit`]): the fields given are changed, the others
/// left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EditRequest {
    /// New text (Facebook's message, YouTube's description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// New title (YouTube).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New privacy, as the platform names it (YouTube: `public`, `unlisted`, `private`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy: Option<String>,
    /// New publication time (YouTube: a private video becomes public then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_at: Option<DateTime<Utc>>,
}

impl EditRequest {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// What it asks that `support` does not allow, by field name.
    pub fn unsupported(&self, support: &EditSupport) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (asked, allowed, name) in [
            (self.text.is_some(), support.text, "text"),
            (self.title.is_some(), support.title, "title"),
            (self.privacy.is_some(), support.privacy, "privacy"),
            (self.publish_at.is_some(), support.publish_at, "publish_at"),
        ] {
            if asked && !allowed {
                out.push(name);
            }
        }
        out
    }
}

impl Capabilities {
    /// The limits for a media kind, if the platform accepts it.
    pub fn media_limits(&self, kind: MediaKind) -> Option<&MediaLimits> {
        self.media.iter().find(|m| m.kind == kind)
    }
}

/// The start of an OAuth authorization: the URL to send the user to, and what must be kept until
/// the callback (the engine keeps it as a pending authorization).
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    /// Where to send the user's browser.
    pub url: Url,
    /// The `state` parameter (≥ 128 random bits).
    pub state: String,
    /// The PKCE verifier, if PKCE is used.
    pub pkce_verifier: Option<PkceVerifier>,
}

/// What the engine keeps between `connect` and `complete_connect`: taken once, on any node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The `state` parameter.
    pub state: String,
    /// The platform being connected.
    pub platform: PlatformId,
    /// The owner the account will belong to.
    pub owner: crate::id::OwnerId,
    /// The redirect URI used (the code exchange must repeat it).
    pub redirect_uri: Url,
    /// The PKCE verifier.
    pub pkce_verifier: Option<PkceVerifier>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// When reconnecting an existing account: its id.
    #[serde(default)]
    pub reconnect: Option<crate::id::AccountId>,
}

/// What an attempt reports back to whoever runs it: the adapter's checkpoints, the rate limits
/// its answers announced and its upload progress. The engine's implementation writes
/// checkpoints through the scheduler under the worker's lease, turns the reports into budget
/// observations when the attempt ends and the progress into [`Event::UploadProgress`];
/// [`MemoryCheckpoints`] keeps checkpoints and reports in memory (tests, one-shot tools).
///
/// Adapters do not call it: they call [`PublishContext::save_state`],
/// [`PublishContext::before_create`], [`PublishContext::report_rate_limit`] and
/// [`PublishContext::report_progress`], which forward here.
///
/// [`Event::UploadProgress`]: crate::Event::UploadProgress
#[async_trait]
pub trait AttemptHooks: Send + Sync {
    /// Saves the checkpoint durably before the adapter's next step.
    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()>;

    /// Saves the checkpoint durably right before a request that creates something at the
    /// platform. The engine's hooks also renew the lease in the same write so that it
    /// outlives the call, refuse with `LeaseLost` when they cannot, and remember that this
    /// attempt sent a create (a later transient error is then an unknown outcome). The default
    /// saves.
    async fn save_before_create(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.save_checkpoint(checkpoint).await
    }

    /// Records what a platform's response headers said about rate limits. The default drops it.
    fn report_rate_limit(&self, report: RateLimitReport) {
        let _ = report;
    }

    /// `sent` of `total` bytes of the media item being uploaded for `target` are at the
    /// platform (for progress bars). The default drops it.
    fn report_progress(&self, target: TargetId, sent: u64, total: u64) {
        let _ = (target, sent, total);
    }
}

/// Hooks that keep checkpoints and rate-limit reports in memory (tests, one-shot tools).
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    saved: std::sync::Mutex<Vec<Checkpoint>>,
    reports: std::sync::Mutex<Vec<RateLimitReport>>,
}

impl MemoryCheckpoints {
    /// New, empty hooks.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every checkpoint saved, in order.
    pub fn saved(&self) -> Vec<Checkpoint> {
        self.saved.lock().unwrap().clone()
    }

    /// The last checkpoint saved.
    pub fn last(&self) -> Option<Checkpoint> {
        self.saved.lock().unwrap().last().cloned()
    }

    /// Every rate-limit report received.
    pub fn rate_limit_reports(&self) -> Vec<RateLimitReport> {
        self.reports.lock().unwrap().clone()
    }
}

#[async_trait]
impl AttemptHooks for MemoryCheckpoints {
    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.saved.lock().unwrap().push(checkpoint.clone());
        Ok(())
    }

    fn report_rate_limit(&self, report: RateLimitReport) {
        self.reports.lock().unwrap().push(report);
    }
}

/// The hooks of a context built without any: checkpoints are kept in the context only
/// ([`PublishContext::checkpoint`]), reports and progress are dropped.
struct NoHooks;

#[async_trait]
impl AttemptHooks for NoHooks {
    async fn save_checkpoint(&self, _checkpoint: &Checkpoint) -> Result<()> {
        Ok(())
    }
}

/// An adapter's checkpoint: what it saves with [`PublishContext::save_state`] and
/// [`PublishContext::before_create`] and reads back with [`PublishContext::state`]. It must
/// serialize to a JSON object; its version is stored beside its fields.
///
/// Raise `VERSION` whenever a change to the struct would make a checkpoint saved by the older
/// code parse differently or not at all (a renamed or retyped field, a field whose meaning
/// changed). A target whose checkpoint has another version ends as `outcome_unknown` instead
/// of starting over; deploy such a change when no target of the platform is in flight.
pub trait CheckpointState: Serialize + DeserializeOwned + Default {
    /// The version of the state's shape. Checkpoints saved before versions existed read as 1.
    const VERSION: u32;
}

/// Everything a `publish`, `poll` or `reconcile` call gets: the account with a fresh token, the
/// content, the options, the saved checkpoint, and ways to save progress and report rate limits
/// (forwarded to its [`AttemptHooks`]). Built with [`PublishContext::builder`].
pub struct PublishContext<'a> {
    /// The target.
    pub target: TargetId,
    /// The account, with a token that is fresh for the next few minutes.
    pub account: &'a Account,
    /// What to publish.
    pub content: &'a Content,
    /// Per-platform options.
    pub options: &'a TargetOptions,
    /// When the current attempt began (the first `publish` call of it).
    pub attempt_started_at: DateTime<Utc>,
    checkpoint: Checkpoint,
    hooks: &'a dyn AttemptHooks,
    media_host: Option<&'a dyn crate::MediaHost>,
}

impl fmt::Debug for PublishContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishContext")
            .field("target", &self.target)
            .field("account", &self.account.id)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

/// Builds a [`PublishContext`]: what the call is about up front, the rest by name, each with a
/// default. The engine builds one per call; tests and tools may too.
///
/// | setter | default |
/// |---|---|
/// | [`started_at`](Self::started_at) | now |
/// | [`checkpoint`](Self::checkpoint) | empty (the first attempt) |
/// | [`hooks`](Self::hooks) | none: checkpoints are kept in the context only, reports and progress dropped |
/// | [`media_host`](Self::media_host) | none ([`PublishContext::media_host`] is a `Config` error) |
///
/// ```
/// use konektly_core::{Account, Checkpoint, Content, MemoryCheckpoints, PublishContext, TargetId, TargetOptions};
///
/// fn context<'a>(
///     account: &'a Account,
///     content: &'a Content,
///     options: &'a TargetOptions,
///     saved: Checkpoint,
///     hooks: &'a MemoryCheckpoints,
/// ) -> PublishContext<'a> {
///     PublishContext::builder(TargetId::new(), account, content, options).checkpoint(saved).hooks(hooks).build()
/// }
/// ```
#[must_use = "call build() to get the context"]
pub struct PublishContextBuilder<'a> {
    ctx: PublishContext<'a>,
}

impl<'a> PublishContextBuilder<'a> {
    /// When the current attempt began (the first `publish` call of it).
    pub fn started_at(mut self, at: DateTime<Utc>) -> Self {
        self.ctx.attempt_started_at = at;
        self
    }

    /// The checkpoint saved by an earlier call of the attempt.
    pub fn checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.ctx.checkpoint = checkpoint;
        self
    }

    /// Where checkpoints, rate-limit reports and upload progress go.
    pub fn hooks(mut self, hooks: &'a dyn AttemptHooks) -> Self {
        self.ctx.hooks = hooks;
        self
    }

    /// The media host for platforms that fetch media by URL, if one is configured.
    pub fn media_host(mut self, host: Option<&'a dyn crate::MediaHost>) -> Self {
        self.ctx.media_host = host;
        self
    }

    /// The context.
    pub fn build(self) -> PublishContext<'a> {
        self.ctx
    }
}

impl<'a> PublishContext<'a> {
    /// Starts a context for one call about `target` (see [`PublishContextBuilder`] for the
    /// rest and its defaults).
    pub fn builder(
        target: TargetId,
        account: &'a Account,
        content: &'a Content,
        options: &'a TargetOptions,
    ) -> PublishContextBuilder<'a> {
        PublishContextBuilder {
            ctx: Self {
                target,
                account,
                content,
                options,
                attempt_started_at: Utc::now(),
                checkpoint: Checkpoint::default(),
                hooks: &NoHooks,
                media_host: None,
            },
        }
    }

    /// Reports that `sent` of `total` bytes of the media being uploaded are at the platform.
    /// Adapters call it after each chunk (the engine turns it into [`Event::UploadProgress`]).
    ///
    /// [`Event::UploadProgress`]: crate::Event::UploadProgress
    pub fn report_progress(&self, sent: u64, total: u64) {
        self.hooks.report_progress(self.target, sent, total);
    }

    /// The access token to send.
    pub fn access_token(&self) -> &crate::AccessToken {
        &self.account.tokens.access_token
    }

    /// The checkpoint saved by an earlier step (empty at the first attempt).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The checkpoint as the adapter's own state, or `T::default()` when nothing was saved.
    ///
    /// A checkpoint that was saved but is not this version of `T` (it does not parse, or it
    /// names another [`CheckpointState::VERSION`]) is [`Error::CheckpointUnreadable`], never
    /// `T::default()`: starting over could send a create that was sent already. Return the
    /// error as it is; the engine ends the target as `outcome_unknown` without sending anything.
    pub fn state<T: CheckpointState>(&self) -> Result<T> {
        Ok(self.checkpoint.read::<T>()?.unwrap_or_default())
    }

    /// Saves the adapter's state durably, with its version. Call it before each step that
    /// changes something at the platform, so that a restarted worker resumes instead of
    /// repeating.
    pub async fn save_state<T: CheckpointState>(&mut self, state: &T) -> Result<()> {
        let cp = Checkpoint::versioned(state)?;
        self.hooks.save_checkpoint(&cp).await?;
        self.checkpoint = cp;
        Ok(())
    }

    /// Saves the adapter's state durably right before a request that creates something at the
    /// platform (a post, a container, a publish, an upload session), with the state's own
    /// "create sent" mark set by the adapter. Unlike [`save_state`](Self::save_state), this
    /// also renews the worker's lease so that it outlives the create call, and fails with
    /// [`Error::LeaseLost`] — send nothing then — when the lease cannot be renewed in time:
    /// another worker may own the target. Once it returns, a transient error, a 5xx or a
    /// dropped connection from the rest of the attempt is treated as an unknown outcome, and
    /// the target is reconciled before anything is sent again.
    pub async fn before_create<T: CheckpointState>(&mut self, state: &T) -> Result<()> {
        let cp = Checkpoint::versioned(state)?;
        self.hooks.save_before_create(&cp).await?;
        self.checkpoint = cp;
        Ok(())
    }

    /// Reports what a response's headers said about rate limits.
    pub fn report_rate_limit(&self, report: RateLimitReport) {
        self.hooks.report_rate_limit(report);
    }

    /// The media host, or a `Config` error saying one is needed.
    pub fn media_host(&self) -> Result<&'a dyn crate::MediaHost> {
        self.media_host.ok_or_else(|| Error::Config("this platform fetches media by URL: configure a MediaHost".into()))
    }

    /// The options as the adapter's typed struct.
    pub fn typed_options<T: crate::PlatformOptions + Default>(&self) -> Result<T> {
        self.options.get().map_err(|v| Error::InvalidPost(vec![v]))
    }
}

/// One social network. Object safe: the engine holds `Arc<dyn Platform>`.
///
/// Adapters only build requests and parse bodies; retries, token freshness, rate-limit
/// budgets and checkpoint persistence are the engine's (see ARCHITECTURE.md).
#[async_trait]
pub trait Platform: Send + Sync + fmt::Debug {
    /// The platform's id (`x`, `tiktok`…).
    fn id(&self) -> PlatformId;

    /// What it can do.
    fn capabilities(&self) -> &Capabilities;

    /// Checks content and options against the platform's rules, offline. Returns every violation.
    /// Rules that depend on the time (a native schedule's window) are checked against now.
    fn validate(&self, content: &Content, options: &TargetOptions) -> Vec<Violation>;

    /// [`validate`](Self::validate) with the clock given: rules that depend on the time are
    /// checked against `now`. Adapters with such rules override it (and `validate` calls it
    /// with `Utc::now()`); the default is `validate`, for platforms whose rules ignore the time.
    fn validate_at(&self, content: &Content, options: &TargetOptions, now: DateTime<Utc>) -> Vec<Violation> {
        let _ = now;
        self.validate(content, options)
    }

    /// Whether publishing this post needs a [`MediaHost`](crate::MediaHost): the platform
    /// fetches some of its media by URL and they are not at a URL yet (local files or bytes).
    /// The engine refuses such a post offline (`media_host_required`) when no host is
    /// configured. The default says what [`Capabilities::needs_media_host`] says, for posts
    /// with local media; adapters whose need depends on the post (TikTok photos, Instagram
    /// images) override it.
    fn needs_media_host(&self, content: &Content, options: &TargetOptions) -> bool {
        let _ = options;
        self.capabilities().needs_media_host
            && content
                .media
                .iter()
                .chain(content.thread.iter().flat_map(|t| &t.media))
                .any(|m| !matches!(m.source, crate::media::MediaSource::Url(_)))
    }

    /// [`needs_media_host`](Self::needs_media_host) for a post to `account`: the engine asks
    /// this one. The default ignores the account; an adapter whose upload paths depend on how
    /// the account was connected (Instagram: resumable video uploads need Facebook Login)
    /// overrides it.
    fn needs_media_host_for(&self, account: &Account, content: &Content, options: &TargetOptions) -> bool {
        let _ = account;
        self.needs_media_host(content, options)
    }

    /// Starts an authorization: URL, state and PKCE verifier.
    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest>;

    /// Exchanges the callback's code for tokens and reads who connected. Returns one grant per
    /// account reached (Facebook Login yields Pages and Instagram accounts too).
    async fn exchange_code(&self, code: &str, pending: &PendingAuthorization) -> Result<Vec<AccountGrant>>;

    /// Refreshes the tokens. May return a set without a refresh token (the engine keeps the old).
    /// A dead grant is `ReauthRequired`; a network failure is `Transient`.
    async fn refresh(&self, account: &Account) -> Result<TokenSet>;

    /// Revokes the grant at the platform.
    async fn revoke(&self, account: &Account) -> Result<()>;

    /// Reads the account's profile.
    async fn profile(&self, account: &Account) -> Result<Profile>;

    /// Publishes comment `index` of the target (`text`, from [`Content::comments`]) under
    /// `post`, the target's published post, and returns the comment's id at the platform. The
    /// engine calls it after the post is published, one comment at a time, having saved its
    /// own checkpoint (the comment is marked sent, with the lease renewed as before any create);
    /// an adapter must not save state here. Errors are read as for a create: `UnknownOutcome`
    /// (it may have landed: [`find_comment`](Self::find_comment) is asked before it is sent
    /// again), `Transient`/`RateLimited` (retried on its own, later), anything else ends the
    /// comment (the post stays published). Default: `NotSupported`.
    async fn publish_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        index: usize,
        text: &str,
    ) -> Result<String> {
        let _ = (ctx, post, index, text);
        Err(Error::NotSupported(format!("{} does not publish comments through konektly", self.id())))
    }

    /// Looks for a comment with `text` by the account under `post`, sent from `sent_from` on
    /// (a comment whose create's answer was lost): `Some(id)` when it landed, `None` when it did
    /// not (sending it again is safe). `NotSupported` when the platform cannot say: the engine
    /// then never sends it again and records it as unknown. Default: `NotSupported`.
    async fn find_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        text: &str,
        sent_from: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let _ = (ctx, post, text, sent_from);
        Err(Error::NotSupported(format!("{} cannot look comments up", self.id())))
    }

    /// Changes a published post as [`Capabilities::edit`] allows (the engine refuses the rest
    /// first). Default: `NotSupported`, with [`EditSupport::note`] when there is one.
    async fn edit(&self, account: &Account, post: &RemotePost, edit: &EditRequest) -> Result<()> {
        let _ = (account, post, edit);
        Err(Error::NotSupported(
            self.capabilities()
                .edit
                .note
                .clone()
                .unwrap_or_else(|| format!("{} posts cannot be edited through konektly", self.id())),
        ))
    }

    /// Publishes (or continues publishing, from the checkpoint).
    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome>;

    /// Asks how work the platform finishes later is going.
    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome>;

    /// Deletes a published post.
    async fn delete(&self, account: &Account, post: &RemotePost) -> Result<()>;

    /// Finds out whether an attempt whose outcome is unknown landed.
    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation>;

    /// A published post's metrics (issue 18), normalized; what the platform does not give is
    /// `None` with a reason. Default: `NotSupported`.
    async fn post_metrics(&self, account: &Account, post: &RemotePost) -> Result<crate::analytics::PostMetrics> {
        let _ = (account, post);
        Err(Error::NotSupported(format!("{} metrics are not read by this adapter yet", self.id())))
    }

    /// An account's metrics (followers…). Default: `NotSupported`.
    async fn account_metrics(&self, account: &Account) -> Result<crate::analytics::AccountMetrics> {
        let _ = account;
        Err(Error::NotSupported(format!("{} account metrics are not read by this adapter yet", self.id())))
    }
}

/// Checks shared by many adapters: text length (with the given counter), media counts, kinds,
/// sizes and durations against [`Capabilities`]. Adapters add their own rules on top.
pub fn validate_against_capabilities(
    caps: &Capabilities,
    content: &Content,
    count_text: impl Fn(&str) -> usize,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let len = count_text(&content.text);
    if len > caps.max_text_len {
        out.push(
            Violation::new(
                ViolationCode::TextTooLong,
                "text",
                format!("the text is {len} long; at most {} is allowed", caps.max_text_len),
            )
            .with_values(caps.max_text_len, len),
        );
    }
    validate_media_list(caps, &content.media, "media", &mut out);
    if caps.media_required && content.media.is_empty() {
        out.push(Violation::new(ViolationCode::MediaRequired, "media", "this platform needs an image or a video"));
    }
    if !content.thread.is_empty() && !caps.threads {
        out.push(Violation::new(
            ViolationCode::ThreadsNotSupported,
            "thread",
            "this platform does not publish threads",
        ));
    }
    if content.link.is_some() && !caps.links {
        out.push(Violation::new(
            ViolationCode::LinksNotSupported,
            "link",
            "this platform does not take link attachments",
        ));
    }
    validate_comments(caps, &content.comments, &count_text, &mut out);
    for (i, item) in content.thread.iter().enumerate() {
        let len = count_text(&item.text);
        if len > caps.max_text_len {
            out.push(
                Violation::new(
                    ViolationCode::TextTooLong,
                    format!("thread[{i}].text"),
                    "a thread item's text is too long",
                )
                .with_values(caps.max_text_len, len),
            );
        }
        validate_media_list(caps, &item.media, &format!("thread[{i}].media"), &mut out);
    }
    out
}

/// The comments' rules: supported at all, how many, each not empty and not too long (counted
/// as the post's text).
pub fn validate_comments(
    caps: &Capabilities,
    comments: &[String],
    count_text: impl Fn(&str) -> usize,
    out: &mut Vec<Violation>,
) {
    if comments.is_empty() {
        return;
    }
    let Some(support) = &caps.comments else {
        out.push(Violation::new(
            ViolationCode::CommentsNotSupported,
            "comments",
            "this platform does not publish comments under a post through its API",
        ));
        return;
    };
    if comments.len() > support.max_comments {
        out.push(
            Violation::new(
                ViolationCode::TooManyComments,
                "comments",
                format!("at most {} comments are published under a post", support.max_comments),
            )
            .with_values(support.max_comments, comments.len()),
        );
    }
    for (i, text) in comments.iter().enumerate() {
        let field = format!("comments[{i}]");
        if text.trim().is_empty() {
            out.push(Violation::new(ViolationCode::CommentEmpty, field, "a comment cannot be empty"));
            continue;
        }
        let len = count_text(text);
        if len > support.max_len {
            out.push(
                Violation::new(
                    ViolationCode::CommentTooLong,
                    field,
                    format!("the comment is {len} long; at most {} is allowed", support.max_len),
                )
                .with_values(support.max_len, len),
            );
        }
    }
}

fn validate_media_list(caps: &Capabilities, media: &[Media], field: &str, out: &mut Vec<Violation>) {
    let mut kinds: Vec<MediaKind> = Vec::new();
    for (i, m) in media.iter().enumerate() {
        let f = format!("{field}[{i}]");
        // The probe found the file malformed (a video whose boxes cannot be read, an image cut
        // off…): no platform will take it, whatever else holds.
        if let Some(reason) = &m.probe_error {
            out.push(Violation::new(ViolationCode::MediaUnreadable, &f, format!("the file is malformed: {reason}")));
        }
        let kind = m.kind();
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
        let Some(limits) = caps.media_limits(kind) else {
            out.push(Violation::new(
                ViolationCode::MediaKindNotSupported,
                f,
                format!("{} media is not accepted", m.mime),
            ));
            continue;
        };
        if !limits.mime_types.is_empty() && !limits.mime_types.iter().any(|t| t == m.mime.essence_str()) {
            out.push(
                Violation::new(
                    ViolationCode::MediaTypeNotSupported,
                    &f,
                    format!("{} is not accepted", m.mime.essence_str()),
                )
                .with_values(limits.mime_types.join(", "), m.mime.essence_str()),
            );
        }
        if let Some(size) = m.size
            && size > limits.max_bytes
        {
            out.push(
                Violation::new(ViolationCode::MediaTooLarge, &f, "the file is too large")
                    .with_values(limits.max_bytes, size),
            );
        }
        if let Some(size) = m.size
            && size < limits.min_bytes
        {
            out.push(
                Violation::new(ViolationCode::MediaTooSmall, &f, "the file is too small")
                    .with_values(limits.min_bytes, size),
            );
        }
        if let (Some(w), Some(h)) = (m.width, m.height) {
            out.extend(limits.dimensions.check(w, h, &f));
        }
        out.extend(limits.format.check(m, &f));
        if let Some(d) = m.duration {
            if let Some(min) = limits.min_duration
                && d < min
            {
                out.push(
                    Violation::new(ViolationCode::VideoTooShort, &f, "the video is too short")
                        .with_values(format!("{:.1}s", min.as_secs_f64()), format!("{:.1}s", d.as_secs_f64())),
                );
            }
            if let Some(max) = limits.max_duration
                && d > max
            {
                out.push(
                    Violation::new(ViolationCode::VideoTooLong, &f, "the video is too long")
                        .with_values(format!("{:.1}s", max.as_secs_f64()), format!("{:.1}s", d.as_secs_f64())),
                );
            }
        }
    }
    // One broken rule, one violation: a kind over its own count says it more precisely than
    // the post's total; kinds the platform refuses are reported once, not as a mix as well.
    let mut over_kind = false;
    for kind in &kinds {
        if let Some(limits) = caps.media_limits(*kind) {
            let n = media.iter().filter(|m| m.kind() == *kind).count();
            if n > limits.max_count {
                over_kind = true;
                out.push(
                    Violation::new(
                        ViolationCode::TooManyMediaOfKind,
                        field,
                        format!("at most {} {:?} items per post", limits.max_count, kind),
                    )
                    .with_values(limits.max_count, n),
                );
            }
        }
    }
    if media.len() > caps.max_media_per_post && !over_kind {
        out.push(
            Violation::new(
                ViolationCode::TooManyMedia,
                field,
                format!("at most {} media items per post", caps.max_media_per_post),
            )
            .with_values(caps.max_media_per_post, media.len()),
        );
    }
    let supported = kinds.iter().filter(|k| caps.media_limits(**k).is_some()).count();
    if !caps.mixed_media && supported > 1 {
        out.push(Violation::new(
            ViolationCode::MixedMedia,
            field,
            "images, GIFs and videos cannot be mixed in one post",
        ));
    }
}
