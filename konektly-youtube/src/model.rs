//! The typed per-target options ([`YouTubeOptions`]), the bodies the YouTube Data API sends and
//! receives, and the checkpoint an upload keeps between attempts.

use chrono::{DateTime, SecondsFormat, Utc};
use konektly_core::{Media, PlatformOptions};
use serde::{Deserialize, Serialize};

/// Who can watch a video (`status.privacyStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privacy {
    /// Everyone.
    Public,
    /// Only people with the link.
    Unlisted,
    /// Only the owner (required with `publish_at`).
    Private,
}

impl Privacy {
    /// The API's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Public => "public",
            Privacy::Unlisted => "unlisted",
            Privacy::Private => "private",
        }
    }
}

/// A video's license (`status.license`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum License {
    /// The standard YouTube license.
    Youtube,
    /// Creative Commons Attribution.
    CreativeCommon,
}

impl License {
    fn as_str(self) -> &'static str {
        match self {
            License::Youtube => "youtube",
            License::CreativeCommon => "creativeCommon",
        }
    }
}

/// Per-target options for YouTube. The post's text becomes the video's description; the one
/// video of the post is uploaded.
///
/// ```
/// use konektly_youtube::{Privacy, YouTubeOptions};
/// let opts = YouTubeOptions {
///     title: Some("Launch day".into()),
///     tags: vec!["launch".into(), "behind the scenes".into()],
///     privacy: Some(Privacy::Unlisted),
///     notify_subscribers: Some(false),
///     ..YouTubeOptions::default()
/// };
/// assert_eq!(opts.effective_privacy(), Privacy::Unlisted);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct YouTubeOptions {
    /// The title (required; at most 100 characters; no `<` or `>`).
    pub title: Option<String>,
    /// Tags (at most 500 characters in total, counted as YouTube counts them).
    pub tags: Vec<String>,
    /// The category id (`"22"` People & Blogs…); the builder's default when absent.
    pub category_id: Option<String>,
    /// The language of the title and description (BCP-47).
    pub default_language: Option<String>,
    /// The language of the audio (BCP-47).
    pub default_audio_language: Option<String>,
    /// Who can watch. Absent: private when `publish_at` is set, public otherwise.
    pub privacy: Option<Privacy>,
    /// Native scheduling: YouTube makes the (private) video public at this time.
    pub publish_at: Option<DateTime<Utc>>,
    /// The COPPA declaration (`status.selfDeclaredMadeForKids`).
    pub made_for_kids: Option<bool>,
    /// Discloses realistic altered or synthetic content (`status.containsSyntheticMedia`).
    pub contains_synthetic_media: Option<bool>,
    /// Whether subscribers are notified (`notifySubscribers`; YouTube's default is yes).
    pub notify_subscribers: Option<bool>,
    /// Whether the video may be embedded elsewhere.
    pub embeddable: Option<bool>,
    /// The license.
    pub license: Option<License>,
    /// Whether the like and view counts are public.
    pub public_stats_viewable: Option<bool>,
    /// A custom thumbnail (JPEG or PNG), set with `thumbnails.set` after the upload.
    pub thumbnail: Option<Media>,
}

impl PlatformOptions for YouTubeOptions {
    const PLATFORM: &'static str = "youtube";
}

impl YouTubeOptions {
    /// The privacy that will be sent.
    pub fn effective_privacy(&self) -> Privacy {
        self.privacy.unwrap_or(if self.publish_at.is_some() { Privacy::Private } else { Privacy::Public })
    }

    /// The `video` resource sent to `videos.insert`.
    pub(crate) fn video_resource(&self, description: &str, default_category: &str) -> VideoInsert {
        VideoInsert {
            snippet: SnippetInsert {
                title: self.title.clone().unwrap_or_default(),
                description: description.to_owned(),
                tags: self.tags.clone(),
                category_id: self.category_id.clone().unwrap_or_else(|| default_category.to_owned()),
                default_language: self.default_language.clone(),
                default_audio_language: self.default_audio_language.clone(),
            },
            status: StatusInsert {
                privacy_status: self.effective_privacy().as_str(),
                publish_at: self.publish_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                self_declared_made_for_kids: self.made_for_kids,
                contains_synthetic_media: self.contains_synthetic_media,
                embeddable: self.embeddable,
                license: self.license.map(License::as_str),
                public_stats_viewable: self.public_stats_viewable,
            },
        }
    }
}

/// The body of `videos.insert`.
#[derive(Debug, Serialize)]
pub(crate) struct VideoInsert {
    pub snippet: SnippetInsert,
    pub status: StatusInsert,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SnippetInsert {
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub category_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_audio_language: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusInsert {
    pub privacy_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_declared_made_for_kids: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contains_synthetic_media: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embeddable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_stats_viewable: Option<bool>,
}

/// A `video` resource as the API returns it (only the fields konektly reads).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Video {
    pub id: String,
    pub status: Option<VideoStatus>,
    pub processing_details: Option<ProcessingDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct VideoStatus {
    pub upload_status: Option<String>,
    pub failure_reason: Option<String>,
    pub rejection_reason: Option<String>,
    pub privacy_status: Option<String>,
    pub publish_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ProcessingDetails {
    pub processing_status: Option<String>,
    pub processing_failure_reason: Option<String>,
    pub processing_progress: Option<ProcessingProgress>,
}

/// Google writes 64-bit counts as JSON strings; a number is accepted too.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ProcessingProgress {
    pub parts_total: Option<serde_json::Value>,
    pub parts_processed: Option<serde_json::Value>,
}

impl ProcessingProgress {
    fn count(v: &Option<serde_json::Value>) -> Option<u64> {
        match v.as_ref()? {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// `processed/total` parts, when both are known.
    pub fn parts(&self) -> Option<(u64, u64)> {
        Some((Self::count(&self.parts_processed)?, Self::count(&self.parts_total)?))
    }
}

/// A `*.list` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ListResponse<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

/// A `channel` resource (snippet only).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Channel {
    pub id: String,
    pub snippet: ChannelSnippet,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ChannelSnippet {
    pub title: Option<String>,
    pub custom_url: Option<String>,
    pub thumbnails: Option<Thumbnails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Thumbnails {
    pub default: Option<ThumbnailUrl>,
    pub medium: Option<ThumbnailUrl>,
    pub high: Option<ThumbnailUrl>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ThumbnailUrl {
    pub url: Option<String>,
}

/// Google's token endpoint answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_token_expires_in: Option<i64>,
    /// Space-separated, as OAuth says; an array is read too (seen from some Google endpoints).
    #[serde(default, deserialize_with = "konektly_core::oauth::scopes_string_or_array")]
    pub scope: Vec<String>,
}

#[cfg(test)]
mod token_tests {
    use super::TokenResponse;

    #[test]
    fn scope_is_read_as_a_string_or_an_array() {
        let a: TokenResponse = serde_json::from_str(r#"{"access_token":"t","scope":"a b"}"#).unwrap();
        let b: TokenResponse = serde_json::from_str(r#"{"access_token":"t","scope":["a","b"]}"#).unwrap();
        assert_eq!(a.scope, ["a", "b"]);
        assert_eq!(b.scope, ["a", "b"]);
    }
}

/// Google's token endpoint error (`{"error":"invalid_grant","error_description":"…"}`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TokenError {
    pub error: String,
    pub error_description: Option<String>,
    pub error_subtype: Option<String>,
}

/// What an upload keeps in the target's checkpoint, so that a restarted process resumes the
/// same upload instead of starting again.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UploadState {
    /// The resumable session URI (`Location` of the session start): whoever holds it can send
    /// the bytes, so the stores encrypt it at rest and exports never show it.
    #[serde(with = "konektly_core::checkpoint_secret", skip_serializing_if = "Option::is_none")]
    pub session_uri: Option<String>,
    /// The file's size.
    pub total: u64,
    /// How many bytes the server said it holds, at the last answer.
    pub offset: u64,
    /// The video's id, once the upload completed.
    pub video_id: Option<String>,
    /// Whether the custom thumbnail was set (or there is none).
    pub thumbnail_done: bool,
    /// A note for the user about the thumbnail (refused, not allowed…).
    pub thumbnail_note: Option<String>,
}

impl konektly_core::CheckpointState for UploadState {
    const VERSION: u32 = 1;
}
