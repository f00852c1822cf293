//! A video's and an account's metrics (issue 18): `POST /v2/video/query/` (scope `video.list`:
//! views, likes, comments, shares of the caller's own videos) and `GET /v2/user/info/` with the
//! stats fields (scope `user.info.stats`). Neither scope is asked for by default (see the
//! builder's `with_scopes`): without it, TikTok refuses the call with `scope_not_authorized`,
//! which reads as "reconnect with the scope", not as a failure to retry.

use konektly_core::analytics::{AccountMetrics, PostMetrics};
use konektly_core::{Account, Error, RemotePost, Result};
use serde_json::Value;

use crate::platform::TikTokPlatform;

/// The normalized metrics of one `video/query` video.
pub(crate) fn video_metrics_of(v: &serde_json::Map<String, Value>) -> PostMetrics {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    let mut m = PostMetrics {
        video_views: n("view_count"),
        impressions: None,
        likes: n("like_count"),
        comments: n("comment_count"),
        shares: n("share_count"),
        raw: v.clone(),
        ..PostMetrics::default()
    };
    for f in ["impressions", "reach", "saves", "watch_time_secs", "average_view_secs", "link_clicks"] {
        m = m.unavailable(f, "TikTok's Display API gives views, likes, comments and shares only");
    }
    m
}

impl TikTokPlatform {
    pub(crate) async fn tiktok_video_metrics(&self, account: &Account, post: &RemotePost) -> Result<PostMetrics> {
        let videos = self.client.video_query(&account.tokens.access_token, &[post.id.as_str()]).await?;
        let v = videos
            .iter()
            .find(|v| v["id"].as_str() == Some(post.id.as_str()))
            .and_then(Value::as_object)
            .ok_or_else(|| Error::NotFound(format!("TikTok video {} (deleted, or not public?)", post.id)))?;
        Ok(video_metrics_of(v))
    }

    pub(crate) async fn tiktok_account_metrics(&self, account: &Account) -> Result<AccountMetrics> {
        let user = self.client.user_stats(&account.tokens.access_token).await?;
        let n = |k: &str| user.get(k).and_then(Value::as_u64);
        Ok(AccountMetrics {
            followers: n("follower_count"),
            following: n("following_count"),
            posts: n("video_count"),
            views: None,
            unavailable: [("views".to_owned(), "TikTok gives no account-wide view count".to_owned())].into(),
            raw: user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_query_counts_are_normalized() {
        let v =
            serde_json::json!({"id": "73", "view_count": 1000, "like_count": 50, "comment_count": 4, "share_count": 2});
        let m = video_metrics_of(v.as_object().unwrap());
        assert_eq!((m.video_views, m.likes, m.comments, m.shares), (Some(1000), Some(50), Some(4), Some(2)));
        assert!(m.unavailable.contains_key("saves"));
    }
}
