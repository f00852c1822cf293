//! Metrics (issue 18) from the Graph API's object fields, which the publishing permissions
//! already allow: a Page post's `reactions`, `comments` (with `.limit(0).summary(true)`) and
//! `shares`; an Instagram media's `like_count` and `comments_count`; a Page's
//! `followers_count`/`fan_count`, an Instagram account's `followers_count`, `follows_count`,
//! `media_count`. Reach, impressions, saves and views come from the Insights edges, which need
//! `read_insights`/`instagram_manage_insights` and whose metric names Meta is changing in 2025
//! (`impressions` → `views`): named unavailable here rather than guessed.

use konektly_core::analytics::{AccountMetrics, PostMetrics};
use serde_json::Value;

const INSIGHTS: &str =
    "in the Insights edges (read_insights / instagram_manage_insights), whose metrics Meta is renaming; not read yet";

fn total(v: &Value, field: &str) -> Option<u64> {
    v.get(field)?.get("summary")?.get("total_count")?.as_u64()
}

/// A Page post's metrics from `GET /{post-id}?fields=reactions.limit(0).summary(true),
/// comments.limit(0).summary(true),shares`.
pub(crate) fn page_post_metrics(v: &Value) -> PostMetrics {
    let mut m = PostMetrics {
        likes: total(v, "reactions"),
        comments: total(v, "comments"),
        // A post never shared has no `shares` field at all.
        shares: Some(v.get("shares").and_then(|s| s.get("count")).and_then(Value::as_u64).unwrap_or(0)),
        ..PostMetrics::default()
    };
    if let Some(o) = v.as_object() {
        m.raw = o.clone();
    }
    for f in ["impressions", "reach", "video_views", "watch_time_secs", "link_clicks"] {
        m = m.unavailable(f, INSIGHTS);
    }
    m.unavailable("saves", "Facebook gives no save count for Page posts")
}

/// An Instagram media's metrics from `GET /{ig-media-id}?fields=like_count,comments_count`.
pub(crate) fn ig_media_metrics(v: &Value) -> PostMetrics {
    let mut m = PostMetrics {
        likes: v.get("like_count").and_then(Value::as_u64),
        comments: v.get("comments_count").and_then(Value::as_u64),
        ..PostMetrics::default()
    };
    if let Some(o) = v.as_object() {
        m.raw = o.clone();
    }
    if m.likes.is_none() {
        m = m.unavailable("likes", "the account hides like counts on this media");
    }
    for f in ["impressions", "reach", "saves", "shares", "video_views", "watch_time_secs"] {
        m = m.unavailable(f, INSIGHTS);
    }
    m
}

/// A Page's or an Instagram account's metrics from its fields.
pub(crate) fn account_metrics_of(v: &Value) -> AccountMetrics {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    AccountMetrics {
        followers: n("followers_count").or(n("fan_count")),
        following: n("follows_count"),
        posts: n("media_count"),
        views: None,
        unavailable: [("views".to_owned(), INSIGHTS.to_owned())].into(),
        raw: v.as_object().cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_fields_are_normalized() {
        let v = serde_json::json!({"id": "1_2", "reactions": {"data": [], "summary": {"total_count": 12, "can_like": true}},
            "comments": {"data": [], "summary": {"order": "ranked", "total_count": 3, "can_comment": true}}});
        let m = page_post_metrics(&v);
        assert_eq!((m.likes, m.comments, m.shares), (Some(12), Some(3), Some(0)));
        assert!(m.unavailable["reach"].contains("Insights"));
        let m = ig_media_metrics(&serde_json::json!({"id": "17", "comments_count": 5}));
        assert_eq!((m.likes, m.comments), (None, Some(5)));
        assert!(m.unavailable.contains_key("likes"));
        let a = account_metrics_of(
            &serde_json::json!({"id": "9", "followers_count": 77, "follows_count": 3, "media_count": 10}),
        );
        assert_eq!((a.followers, a.following, a.posts), (Some(77), Some(3), Some(10)));
    }
}
