//! A video's and a channel's metrics (issue 18) from the Data API: `videos.list
//! part=statistics` (views, likes, comments; `dislikeCount` is private since 2021) and
//! `channels.list part=statistics mine=true` (subscribers unless hidden, views, videos). Google
//! encodes these 64-bit counts as JSON strings. Watch time and average view duration are in the
//! YouTube Analytics API (another scope, `yt-analytics.readonly`), not read here: unavailable.

use konektly_core::analytics::{AccountMetrics, PostMetrics};
use konektly_core::oauth::bearer;
use konektly_core::{Account, CallKind, RemotePost, Result};
use serde_json::Value;

use crate::platform::YouTubePlatform;

/// A count Google sent as a string (or, leniently, as a number).
fn count(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// The normalized metrics of a `videos.list` item's `statistics`.
pub(crate) fn video_metrics_of(stats: &serde_json::Map<String, Value>) -> PostMetrics {
    let mut m = PostMetrics {
        impressions: None,
        video_views: count(stats.get("viewCount")),
        likes: count(stats.get("likeCount")),
        comments: count(stats.get("commentCount")),
        saves: count(stats.get("favoriteCount")),
        raw: stats.clone(),
        ..PostMetrics::default()
    };
    m = m.unavailable(
        "impressions",
        "thumbnail impressions are in the YouTube Analytics API (yt-analytics.readonly), not read yet",
    );
    m = m.unavailable("watch_time_secs", "in the YouTube Analytics API (yt-analytics.readonly), not read yet");
    m = m.unavailable("average_view_secs", "in the YouTube Analytics API (yt-analytics.readonly), not read yet");
    m = m.unavailable("shares", "YouTube's Data API gives no share count");
    m.unavailable("reach", "YouTube gives no reach")
}

impl YouTubePlatform {
    pub(crate) async fn video_metrics(&self, account: &Account, post: &RemotePost) -> Result<PostMetrics> {
        let url = self.api_url("videos", &[("part", "statistics"), ("id", post.id.as_str())]);
        let req =
            self.http.client().get(url).header(reqwest::header::AUTHORIZATION, bearer(&account.tokens.access_token));
        let body: Value = self.call(req, CallKind::Idempotent).await?.json()?;
        let item = body["items"].as_array().and_then(|i| i.first()).cloned();
        let Some(item) = item else {
            return Err(konektly_core::Error::NotFound(format!("video {} (deleted?)", post.id)));
        };
        Ok(video_metrics_of(item["statistics"].as_object().unwrap_or(&serde_json::Map::new())))
    }

    pub(crate) async fn channel_metrics(&self, account: &Account) -> Result<AccountMetrics> {
        let url = self.api_url("channels", &[("part", "statistics"), ("mine", "true")]);
        let req =
            self.http.client().get(url).header(reqwest::header::AUTHORIZATION, bearer(&account.tokens.access_token));
        let body: Value = self.call(req, CallKind::Idempotent).await?.json()?;
        let stats = body["items"][0]["statistics"].as_object().cloned().unwrap_or_default();
        let hidden = stats.get("hiddenSubscriberCount").and_then(Value::as_bool).unwrap_or(false);
        let mut m = AccountMetrics {
            followers: if hidden { None } else { count(stats.get("subscriberCount")) },
            following: None,
            posts: count(stats.get("videoCount")),
            views: count(stats.get("viewCount")),
            unavailable: Default::default(),
            raw: stats,
        };
        if hidden {
            m.unavailable.insert("followers".into(), "the channel hides its subscriber count".into());
        }
        m.unavailable.insert("following".into(), "YouTube gives no following count".into());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_encoded_counts_are_read() {
        let stats = serde_json::json!({"viewCount": "12345678901", "likeCount": "7", "favoriteCount": "0", "commentCount": "3"});
        let m = video_metrics_of(stats.as_object().unwrap());
        assert_eq!((m.video_views, m.likes, m.comments), (Some(12_345_678_901), Some(7), Some(3)));
        assert!(m.unavailable.contains_key("watch_time_secs"));
        let m = video_metrics_of(serde_json::json!({"viewCount": "not a number"}).as_object().unwrap());
        assert_eq!(m.video_views, None);
    }
}
