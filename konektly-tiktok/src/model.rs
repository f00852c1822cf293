//! TikTok's request and response bodies, the per-target options ([`TikTokOptions`]) and the
//! checkpoint an attempt saves while it works.

use chrono::{DateTime, Utc};
use konektly_core::PlatformOptions;
use serde::{Deserialize, Serialize};

/// Who may see a post (`post_info.privacy_level`). It must be one of the creator's
/// `privacy_level_options`, read fresh before each post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PrivacyLevel {
    /// Everyone (not offered to private accounts).
    PublicToEveryone,
    /// Friends (mutual followers).
    MutualFollowFriends,
    /// Followers.
    FollowerOfCreator,
    /// Only the creator (forced for unaudited apps).
    SelfOnly,
}

impl PrivacyLevel {
    /// TikTok's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyLevel::PublicToEveryone => "PUBLIC_TO_EVERYONE",
            PrivacyLevel::MutualFollowFriends => "MUTUAL_FOLLOW_FRIENDS",
            PrivacyLevel::FollowerOfCreator => "FOLLOWER_OF_CREATOR",
            PrivacyLevel::SelfOnly => "SELF_ONLY",
        }
    }
}

/// Where a post lands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostMode {
    /// Published on the creator's profile (scope `video.publish`).
    #[default]
    DirectPost,
    /// Sent to the creator's TikTok inbox as a draft they finish in the app (scope
    /// `video.upload`). Captions and settings are not carried: the creator adds them.
    Inbox,
}

/// How a video's bytes reach TikTok.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoSource {
    /// `PULL_FROM_URL` for media that is already at a URL, `FILE_UPLOAD` otherwise.
    #[default]
    Auto,
    /// Upload the bytes in chunks (`FILE_UPLOAD`).
    FileUpload,
    /// Let TikTok fetch the video from the `MediaHost`'s URL (`PULL_FROM_URL`); the URL's domain
    /// or prefix must be verified in the TikTok developer portal.
    PullFromUrl,
}

/// TikTok options of a target. Every field has a default, so `{}` is valid JSON for them;
/// `privacy_level` is still required for a direct post.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TikTokOptions {
    /// Direct post or inbox draft.
    pub mode: PostMode,
    /// Who may see the post (required for direct posts).
    pub privacy_level: Option<PrivacyLevel>,
    /// Turn off duets (videos).
    pub disable_duet: bool,
    /// Turn off comments.
    pub disable_comment: bool,
    /// Turn off stitches (videos).
    pub disable_stitch: bool,
    /// The frame used as the cover, in milliseconds from the start (videos).
    pub video_cover_timestamp_ms: Option<u64>,
    /// A paid partnership ("Branded content"); not allowed with `SELF_ONLY`.
    pub brand_content_toggle: bool,
    /// Promotes the creator's own business ("Your brand").
    pub brand_organic_toggle: bool,
    /// Labels the content as AI-generated (videos).
    pub is_aigc: bool,
    /// The title of a photo post (at most 90 characters); the post's text is its description.
    pub photo_title: Option<String>,
    /// Which photo is the cover (0-based).
    pub photo_cover_index: usize,
    /// Let TikTok add music to a photo post.
    pub auto_add_music: bool,
    /// How a video's bytes reach TikTok.
    pub video_source: VideoSource,
}

impl PlatformOptions for TikTokOptions {
    const PLATFORM: &'static str = "tiktok";
}

// ---- API bodies --------------------------------------------------------------------------------

/// The envelope of every v2 API answer (its `error` is read by `client::envelope_error`).
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    #[serde(default = "Option::default")]
    pub data: Option<T>,
}

/// `error` of the envelope.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub log_id: Option<String>,
}

/// The token endpoint's answer (success or OAuth error fields).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenBody {
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_expires_in: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub log_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserInfoData {
    pub user: UserInfo,
}

/// `data.user` of `/v2/user/info/`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UserInfo {
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// `data` of `creator_info/query`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct CreatorInfo {
    #[serde(default)]
    pub creator_username: Option<String>,
    #[serde(default)]
    pub privacy_level_options: Vec<String>,
    #[serde(default)]
    pub comment_disabled: bool,
    #[serde(default)]
    pub duet_disabled: bool,
    #[serde(default)]
    pub stitch_disabled: bool,
    #[serde(default)]
    pub max_video_post_duration_sec: Option<u64>,
}

/// `data` of the init endpoints.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct InitData {
    pub publish_id: String,
    #[serde(default)]
    pub upload_url: Option<String>,
}

/// `data` of `status/fetch`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StatusData {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub fail_reason: Option<String>,
    /// Bytes of a `FILE_UPLOAD` TikTok holds.
    #[serde(default)]
    pub uploaded_bytes: Option<u64>,
    /// Sic: TikTok spells it this way. Ids may come as numbers or strings.
    #[serde(default, alias = "publicly_available_post_id")]
    pub publicaly_available_post_id: Vec<serde_json::Value>,
}

impl StatusData {
    pub(crate) fn post_ids(&self) -> Vec<String> {
        self.publicaly_available_post_id
            .iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    }
}

// ---- checkpoint --------------------------------------------------------------------------------

/// What an attempt is publishing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    #[default]
    DirectVideo,
    InboxVideo,
    Photo,
}

/// The source used at init.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Source {
    #[default]
    FileUpload,
    PullFromUrl,
}

/// The adapter's checkpoint: saved before the init call, after it (with the `publish_id` and
/// upload URL), and after each chunk.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    /// Marked just before an init request is sent (stored as `init_sent: true` before the mark
    /// was core's).
    #[serde(default, alias = "init_sent")]
    pub create_sent: konektly_core::CreateSent,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub publish_id: Option<String>,
    /// A short-lived, signed URL (it carries the upload token): kept only in the checkpoint,
    /// encrypted at rest by the stores, never logged or exported.
    #[serde(default, with = "konektly_core::checkpoint_secret", skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
    #[serde(default)]
    pub upload_started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub video_size: u64,
    #[serde(default)]
    pub chunk_size: u64,
    #[serde(default)]
    pub total_chunks: u64,
    #[serde(default)]
    pub chunks_sent: u64,
    /// The creator's username, for the post's URL.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub privacy_level: Option<PrivacyLevel>,
    /// When `PUBLISH_COMPLETE` was first seen without a public post id.
    #[serde(default)]
    pub complete_seen_at: Option<DateTime<Utc>>,
    /// Whether the upload was started over once after its URL expired early.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarted: bool,
}

impl konektly_core::CheckpointState for State {
    const VERSION: u32 = 1;
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("create_sent", &self.create_sent)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("publish_id", &self.publish_id)
            .field("upload_url", &self.upload_url.as_ref().map(|_| "[REDACTED]"))
            .field("chunks_sent", &self.chunks_sent)
            .field("total_chunks", &self.total_chunks)
            .finish_non_exhaustive()
    }
}

impl State {
    /// The chunk plan the init announced.
    pub(crate) fn chunk_plan(&self) -> crate::upload::ChunkPlan {
        crate::upload::ChunkPlan {
            video_size: self.video_size,
            chunk_size: self.chunk_size,
            total_chunks: self.total_chunks,
        }
    }

    /// Whether every byte of a file upload was sent (always true for pulls).
    pub(crate) fn upload_complete(&self) -> bool {
        self.source == Source::PullFromUrl || (self.total_chunks > 0 && self.chunks_sent >= self.total_chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use konektly_core::Checkpoint;

    #[test]
    fn a_checkpoint_saved_with_init_sent_still_reads() {
        // Saved before the "create sent" mark was core's `create_sent`.
        let old = serde_json::json!({"init_sent": true, "source": "FILE_UPLOAD", "chunks_sent": 2});
        let st: State = Checkpoint::from_json(old).read().unwrap().unwrap();
        assert!(st.create_sent.is_sent());
        assert_eq!(st.chunks_sent, 2);
        let not: State = Checkpoint::from_json(serde_json::json!({"init_sent": false})).read().unwrap().unwrap();
        assert!(!not.create_sent.is_sent());
        let mut st = State::default();
        st.create_sent.mark();
        let back: State = Checkpoint::versioned(&st).unwrap().read().unwrap().unwrap();
        assert!(back.create_sent.sent_at().is_some());
    }
}
