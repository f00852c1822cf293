//! The Graph API's bodies, the typed per-target options, and the checkpoints saved between steps.

use chrono::{DateTime, Utc};
use konektly_core::PlatformOptions;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// What a Facebook Page target publishes as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FacebookPostKind {
    /// A feed post: text, link, photo(s) or a video (the default).
    #[default]
    Post,
    /// A Reel (one vertical video, 3–90 s).
    Reel,
}

/// Per-target options for a Facebook Page (`"facebook"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FacebookOptions {
    /// A feed post or a Reel.
    pub kind: FacebookPostKind,
    /// Let Facebook publish it at this time (native scheduling: 10 minutes to 30 days ahead).
    pub schedule_at: Option<DateTime<Utc>>,
    /// A video's title.
    pub title: Option<String>,
}

impl PlatformOptions for FacebookOptions {
    const PLATFORM: &'static str = "facebook";
}

/// What an Instagram target publishes as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstagramMediaKind {
    /// A feed post: one image, or a carousel of 2–10 images and videos.
    Feed,
    /// A Reel (one video).
    Reel,
    /// A Story (one image or video).
    Story,
}

/// Per-target options for Instagram (`"instagram"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstagramOptions {
    /// Feed, Reel or Story; when absent, one video is a Reel and anything else a feed post.
    pub kind: Option<InstagramMediaKind>,
    /// Reels: also show it in the profile grid.
    pub share_to_feed: Option<bool>,
    /// Reels: a JPEG cover at a public URL.
    pub cover_url: Option<Url>,
    /// Reels: the cover frame, in milliseconds into the video.
    pub thumb_offset_ms: Option<u64>,
    /// A location (a Facebook Page id with location data); not for Stories.
    pub location_id: Option<String>,
    /// Up to 3 usernames invited as collaborators (feed posts and Reels).
    pub collaborators: Vec<String>,
    /// Send videos' bytes to Instagram (resumable upload; accounts reached through Facebook
    /// Login only) instead of a public URL. When absent: for videos that are not at a URL when
    /// no `MediaHost` is configured.
    pub resumable_upload: Option<bool>,
    /// People tagged in the post's images (and Reels and Stories): at most 20 per media item;
    /// an image's tags need a position; a video inside a carousel takes none. For a carousel,
    /// each tag names its item with `media_index`.
    pub user_tags: Vec<InstagramUserTag>,
    /// Up to 2 Instagram user ids of the brands that sponsor the post (a paid partnership).
    pub branded_content_sponsor_ids: Vec<String>,
    /// Label the post as a paid partnership.
    pub is_paid_partnership: Option<bool>,
    /// Reels: the name of the Reel's original audio (Instagram lets it be renamed once).
    pub audio_name: Option<String>,
    /// Reels: publish as a trial Reel, shown to non-followers first, and how it graduates to
    /// the account's followers.
    pub trial_params: Option<InstagramTrialParams>,
}

/// A trial Reel's settings (Graph `trial_params`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstagramTrialParams {
    /// How the trial Reel graduates to the followers.
    pub graduation_strategy: GraduationStrategy,
}

/// How a trial Reel graduates (is shown to the account's followers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GraduationStrategy {
    /// The account graduates it by hand in the app.
    Manual,
    /// Instagram graduates it if it performs well with non-followers.
    SsPerformance,
}

/// A person tagged in an Instagram image: their public username and, for images, where the tag
/// sits — `x` and `y` from the image's top-left corner, each in `0.0..=1.0`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstagramUserTag {
    /// The public username (a leading `@` is dropped when sent).
    pub username: String,
    /// Horizontal position, `0.0` (left) to `1.0` (right); required on images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    /// Vertical position, `0.0` (top) to `1.0` (bottom); required on images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    /// Which media item of the post the tag is on (0-based; carousels). Default 0.
    #[serde(default, skip_serializing_if = "is_first")]
    pub media_index: usize,
}

fn is_first(n: &usize) -> bool {
    *n == 0
}

impl InstagramUserTag {
    /// A tag at `x`, `y` on the first (or only) media item.
    pub fn at(username: impl Into<String>, x: f64, y: f64) -> Self {
        Self { username: username.into(), x: Some(x), y: Some(y), media_index: 0 }
    }

    /// The same tag on the carousel item at `index`.
    pub fn on_item(mut self, index: usize) -> Self {
        self.media_index = index;
        self
    }

    /// The username as Graph takes it (no leading `@`).
    pub fn graph_username(&self) -> &str {
        self.username.trim().trim_start_matches('@')
    }
}

impl PlatformOptions for InstagramOptions {
    const PLATFORM: &'static str = "instagram";
}

/// Graph ids come back as strings, sometimes as numbers.
pub(crate) fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}

fn opt_id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}

fn u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| serde::de::Error::custom("not an offset")),
        other => Err(serde::de::Error::custom(format!("expected an offset, got {other}"))),
    }
}

/// `{"access_token", "token_type", "expires_in"}` from the OAuth endpoints.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenBody {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub user_id: Option<String>,
    #[serde(default)]
    pub permissions: Option<serde_json::Value>,
}

/// Instagram's code exchange: the token, or the token inside `data: [...]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum InstagramCodeBody {
    Wrapped { data: Vec<TokenBody> },
    Plain(TokenBody),
}

/// `{"id": "…"}` and friends.
#[derive(Debug, Deserialize)]
pub(crate) struct IdBody {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub post_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Picture {
    pub data: PictureData,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PictureData {
    #[serde(default)]
    pub url: Option<Url>,
}

/// `/me` of a Facebook user.
#[derive(Debug, Deserialize)]
pub(crate) struct FacebookUser {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub picture: Option<Picture>,
}

/// One Instagram professional account behind a Page.
#[derive(Debug, Deserialize)]
pub(crate) struct LinkedInstagram {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub profile_picture_url: Option<Url>,
}

/// One Page of `/me/accounts`.
#[derive(Debug, Deserialize)]
pub(crate) struct PageEntry {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub access_token: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
    #[serde(default)]
    pub picture: Option<Picture>,
    #[serde(default)]
    pub instagram_business_account: Option<LinkedInstagram>,
}

/// A comment as the `comments` edge lists it: Facebook names its text `message` and its
/// author `from`; Instagram names them `text` and `username` (and `from` with Facebook Login).
#[derive(Debug, Deserialize)]
pub(crate) struct GraphComment {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub from: Option<CommentAuthor>,
}

/// A comment's author.
#[derive(Debug, Deserialize)]
pub(crate) struct CommentAuthor {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
}

/// A page of a Graph list.
#[derive(Debug, Deserialize)]
pub(crate) struct ListBody<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    pub cursors: Option<Cursors>,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Cursors {
    #[serde(default)]
    pub after: Option<String>,
}

/// `/me` of an Instagram user (Instagram Login).
#[derive(Debug, Deserialize)]
pub(crate) struct InstagramUser {
    #[serde(default, deserialize_with = "opt_id_string")]
    pub user_id: Option<String>,
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub profile_picture_url: Option<Url>,
}

/// The legacy chunked video upload's `start` / `transfer` answers.
#[derive(Debug, Deserialize)]
pub(crate) struct VideoPhaseBody {
    #[serde(default, deserialize_with = "opt_id_string")]
    pub video_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub upload_session_id: Option<String>,
    #[serde(deserialize_with = "u64_lenient")]
    pub start_offset: u64,
    #[serde(deserialize_with = "u64_lenient")]
    pub end_offset: u64,
}

/// `/video_reels` start.
#[derive(Debug, Deserialize)]
pub(crate) struct ReelStartBody {
    #[serde(deserialize_with = "id_string")]
    pub video_id: String,
}

/// `{"success": true}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SuccessBody {
    #[serde(default)]
    pub success: bool,
}

/// `GET /{video-id}?fields=status`.
#[derive(Debug, Deserialize)]
pub(crate) struct VideoStatusBody {
    #[serde(default)]
    pub status: Option<VideoStatus>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VideoStatus {
    #[serde(default)]
    pub video_status: Option<String>,
    #[serde(default)]
    pub processing_progress: Option<u32>,
    #[serde(default)]
    pub publishing_phase: Option<Phase>,
    #[serde(default)]
    pub processing_phase: Option<Phase>,
    #[serde(default)]
    pub uploading_phase: Option<Phase>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Phase {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub errors: Option<serde_json::Value>,
}

/// A post of `/{page-id}/feed` (reconcile searches these).
#[derive(Debug, Deserialize)]
pub(crate) struct FeedEntry {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub message: Option<String>,
    /// `2026-12-05T12:00:00+0000`.
    #[serde(default)]
    pub created_time: Option<String>,
}

impl FeedEntry {
    /// When it was created, if Graph said (and said it readably).
    pub fn created(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let t = self.created_time.as_deref()?;
        chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%z").ok().map(|d| d.with_timezone(&chrono::Utc))
    }
}

/// `GET /{container-id}?fields=status_code,status`.
#[derive(Debug, Deserialize)]
pub(crate) struct ContainerStatus {
    #[serde(default)]
    pub status_code: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// `content_publishing_limit`.
#[derive(Debug, Deserialize)]
pub(crate) struct PublishingLimit {
    #[serde(default)]
    pub quota_usage: Option<u32>,
    #[serde(default)]
    pub config: Option<QuotaConfig>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct QuotaConfig {
    #[serde(default)]
    pub quota_total: Option<u32>,
    #[serde(default)]
    pub quota_duration: Option<u64>,
}

/// A published Instagram media's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct InstagramMedia {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub permalink: Option<Url>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// The Facebook adapter's checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FacebookState {
    /// Photos uploaded unpublished, in order (multi-photo posts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photo_ids: Vec<String>,
    /// A chunked video upload in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoUpload>,
    /// A Reel upload in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reel: Option<ReelUpload>,
    /// Marked just before the request that creates the post is sent (reconcile searches then),
    /// with the time: reconcile reads the Page's posts around it.
    #[serde(default)]
    pub create_sent: konektly_core::CreateSent,
    /// The time of a mark stored before it was core's (`create_sent: true` beside it); read,
    /// never written.
    #[serde(default, rename = "create_sent_at", skip_serializing)]
    pub legacy_sent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The post's id, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
}

impl konektly_core::CheckpointState for FacebookState {
    const VERSION: u32 = 1;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct VideoUpload {
    pub video_id: String,
    pub session_id: String,
    pub start_offset: u64,
    pub end_offset: u64,
    #[serde(default)]
    pub finished: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReelUpload {
    pub video_id: String,
    #[serde(default)]
    pub uploaded: bool,
    #[serde(default)]
    pub finished: bool,
}

/// The Instagram adapter's checkpoint: container ids, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct InstagramState {
    /// Carousel children, in the order of the media.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    /// The container that is published (the single item or the carousel parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Containers created for a resumable upload whose bytes are not uploaded yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads_pending: Vec<String>,
    /// Marked just before `media_publish` is sent (stored as `publish_sent` before the mark
    /// was core's).
    #[serde(default, alias = "publish_sent")]
    pub create_sent: konektly_core::CreateSent,
    /// The published media's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// The published media's public link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<Url>,
    /// How many times a container expired before it was published and the post started over.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expired_restarts: u32,
}

impl konektly_core::CheckpointState for InstagramState {
    const VERSION: u32 = 1;
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instagram_code_answer_parses_wrapped_or_flat() {
        let wrapped = r#"{"data":[{"access_token":"A","user_id":17841400000000001,"permissions":"x,y"}]}"#;
        let flat = r#"{"access_token":"A","user_id":"17841400000000001","permissions":["x","y"]}"#;
        for raw in [wrapped, flat] {
            let token = match serde_json::from_str::<InstagramCodeBody>(raw).unwrap() {
                InstagramCodeBody::Wrapped { mut data } => data.remove(0),
                InstagramCodeBody::Plain(t) => t,
            };
            assert_eq!(token.access_token, "A");
            assert_eq!(token.user_id.as_deref(), Some("17841400000000001"), "numeric ids become strings");
        }
    }

    #[test]
    fn video_offsets_parse_from_strings_or_numbers() {
        let b: VideoPhaseBody = serde_json::from_str(r#"{"start_offset":"0","end_offset":1048576}"#).unwrap();
        assert_eq!((b.start_offset, b.end_offset), (0, 1_048_576));
    }

    #[test]
    fn options_round_trip_and_default() {
        let o =
            InstagramOptions { kind: Some(InstagramMediaKind::Reel), share_to_feed: Some(true), ..Default::default() };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["kind"], "reel");
        assert_eq!(serde_json::from_value::<InstagramOptions>(v).unwrap(), o);
        let f: FacebookOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(f.kind, FacebookPostKind::Post);
    }

    #[test]
    fn checkpoints_saved_with_the_older_create_marks_still_read() {
        use konektly_core::Checkpoint;
        // Facebook: `create_sent: true` and the time beside it.
        let old = serde_json::json!({"create_sent": true, "create_sent_at": "2026-01-02T03:04:05Z", "post_id": "p"});
        let st: FacebookState = Checkpoint::from_json(old).read().unwrap().unwrap();
        assert!(st.create_sent.is_sent());
        assert_eq!(st.legacy_sent_at.map(|t| t.timestamp()), Some(1_767_323_045));
        let st: FacebookState =
            Checkpoint::from_json(serde_json::json!({"create_sent": false})).read().unwrap().unwrap();
        assert!(!st.create_sent.is_sent());
        // Instagram: `publish_sent`.
        let old = serde_json::json!({"container": "c", "publish_sent": true});
        let st: InstagramState = Checkpoint::from_json(old).read().unwrap().unwrap();
        assert!(st.create_sent.is_sent());
        // The new shape round-trips, and the old time is never written.
        let mut st = FacebookState::default();
        st.create_sent.mark();
        let cp = Checkpoint::versioned(&st).unwrap();
        assert!(cp.as_json().get("create_sent_at").is_none());
        let back: FacebookState = cp.read().unwrap().unwrap();
        assert!(back.create_sent.sent_at().is_some());
    }
}
