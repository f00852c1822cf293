//! X API v2 request and response bodies, the per-target options ([`XOptions`]) and the
//! adapter's checkpoint.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who may reply to a post (`reply_settings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplySettings {
    /// Only accounts the author follows.
    #[serde(rename = "following")]
    Following,
    /// Only accounts mentioned in the post.
    #[serde(rename = "mentionedUsers")]
    MentionedUsers,
    /// Only the author's subscribers.
    #[serde(rename = "subscribers")]
    Subscribers,
    /// Only verified accounts.
    #[serde(rename = "verified")]
    Verified,
}

/// A poll attached to the first post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XPoll {
    /// 2–4 choices of 1–25 characters each.
    pub options: Vec<String>,
    /// How long it stays open: 5–10080 minutes.
    pub duration_minutes: u32,
}

/// Per-target options for X. Unknown fields are refused, so a misspelt option is reported
/// (`invalid_options`) instead of silently ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XOptions {
    /// Post as a reply to this post id (the first item of a thread replies to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// User ids to leave out of the reply's mentions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_reply_user_ids: Vec<String>,
    /// Who may reply (applies to every item of a thread).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_settings: Option<ReplySettings>,
    /// A poll on the first item (not with media or a quote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll: Option<XPoll>,
    /// Quote this post id (Enterprise access only since April 2026).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_tweet_id: Option<String>,
    /// For the author's super followers only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub for_super_followers_only: bool,
    /// Users to tag in the first item's images (at most 10).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tagged_user_ids: Vec<String>,
    /// Post into this Community.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
    /// Discloses AI-made media.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub made_with_ai: bool,
    /// A Community post also shown to the author's followers (needs `community_id`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub share_with_followers: bool,
    /// Tag the first item with this place (`geo.place_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_id: Option<String>,
    /// Discloses a paid partnership (on every item of a thread).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paid_partnership: bool,
}

impl konektly_core::PlatformOptions for XOptions {
    const PLATFORM: &'static str = "x";
}

// ---- POST /2/tweets ----

#[derive(Debug, Default, Serialize)]
pub(crate) struct CreateTweet {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<TweetMedia>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<TweetReply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll: Option<XPoll>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_tweet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_settings: Option<ReplySettings>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub for_super_followers_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub made_with_ai: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub share_with_followers: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<TweetGeo>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paid_partnership: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct TweetGeo {
    pub place_id: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct TweetMedia {
    pub media_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tagged_user_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TweetReply {
    pub in_reply_to_tweet_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_reply_user_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Data<T> {
    pub data: T,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreatedTweet {
    pub id: String,
}

// ---- GET /2/users/me, GET /2/users/{id}/tweets ----

#[derive(Debug, Deserialize)]
pub(crate) struct User {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub profile_image_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Timeline {
    #[serde(default)]
    pub data: Vec<TimelineTweet>,
    #[serde(default)]
    pub meta: Option<TimelineMeta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TimelineTweet {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub referenced_tweets: Vec<ReferencedTweet>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReferencedTweet {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TimelineMeta {
    #[serde(default)]
    pub next_token: Option<String>,
}

// ---- media upload ----

#[derive(Debug, Serialize)]
pub(crate) struct InitializeUpload<'a> {
    pub media_type: &'a str,
    pub total_bytes: u64,
    pub media_category: &'a str,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UploadData {
    pub id: String,
    #[serde(default)]
    pub expires_after_secs: Option<i64>,
    #[serde(default)]
    pub processing_info: Option<ProcessingInfo>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ProcessingInfo {
    pub state: String,
    #[serde(default)]
    pub check_after_secs: Option<u64>,
    #[serde(default)]
    pub progress_percent: Option<u32>,
    #[serde(default)]
    pub error: Option<ProcessingError>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ProcessingError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct MediaMetadata<'a> {
    pub id: &'a str,
    pub metadata: AltTextMetadata<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AltTextMetadata<'a> {
    pub alt_text: AltText<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AltText<'a> {
    pub text: &'a str,
}

// ---- checkpoint ----

/// What the adapter saved before each step that changes something at X.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct XState {
    /// One entry per item: the first post, then the thread's items.
    pub items: Vec<ItemState>,
    /// The item whose `POST /2/tweets` was sent last without a known answer (`mark_item`);
    /// stored as `posting` (the item's index) before the mark was core's.
    #[serde(alias = "posting", skip_serializing_if = "konektly_core::CreateSent::is_clear")]
    pub create_sent: konektly_core::CreateSent,
    /// Set when X refused an item as a duplicate: reconcile then looks for the original.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<usize>,
}

impl konektly_core::CheckpointState for XState {
    const VERSION: u32 = 1;
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ItemState {
    /// The item's media, in order.
    pub media: Vec<MediaState>,
    /// The post id, once posted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posted_id: Option<String>,
    /// Creates of this item sent whose answer was lost (each may have landed).
    #[serde(skip_serializing_if = "is_zero")]
    pub unanswered_creates: u32,
    /// When this item's first and latest creates were sent: a post of ours can only have
    /// been created between them (plus the call's time and clock skew).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_sent_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MediaState {
    /// X's media id, from `initialize`.
    pub media_id: String,
    /// Segments appended so far (the next segment index).
    pub segments_sent: u32,
    /// Bytes appended so far.
    pub bytes_sent: u64,
    /// `finalize` was answered.
    pub finalized: bool,
    /// Processing succeeded (or was not needed): the id can be attached.
    pub ready: bool,
    /// Alt text was set.
    pub alt_text_set: bool,
    /// When the id stops being usable, if X said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use konektly_core::Checkpoint;

    #[test]
    fn a_checkpoint_saved_with_posting_still_reads() {
        // Saved before the "create sent" mark was core's `create_sent`.
        let old = Checkpoint::from_json(serde_json::json!({"items": [{}, {}], "posting": 1}));
        let st: XState = old.read().unwrap().unwrap();
        assert!(st.create_sent.is_sent());
        assert_eq!(st.create_sent.item(), Some(1));
        let none: XState = Checkpoint::from_json(serde_json::json!({"items": [{}]})).read().unwrap().unwrap();
        assert!(!none.create_sent.is_sent());
        // And the new shape round-trips.
        let mut st = XState::default();
        st.create_sent.mark_item(0);
        let back: XState = Checkpoint::versioned(&st).unwrap().read().unwrap().unwrap();
        assert_eq!(back.create_sent.item(), Some(0));
    }
}
