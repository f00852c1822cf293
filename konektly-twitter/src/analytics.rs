//! A post's metrics (issue 18): `GET /2/tweets/:id` with `tweet.fields=public_metrics,
//! non_public_metrics`. Public metrics (impressions, likes, replies, retweets, quotes,
//! bookmarks) are given for any tweet; non-public ones (link and profile clicks) only to the
//! author, for tweets of the last 30 days — X answers a field authorization error for the
//! others, read here as "unavailable", not a failure. Account metrics: `GET /2/users/me` with
//! `user.fields=public_metrics`.

use konektly_core::analytics::{AccountMetrics, PostMetrics};
use konektly_core::{Account, CallKind, RemotePost, Result};
use reqwest::Method;
use serde::Deserialize;

use crate::platform::XPlatform;

#[derive(Debug, Default, Deserialize)]
struct Public {
    retweet_count: Option<u64>,
    reply_count: Option<u64>,
    like_count: Option<u64>,
    quote_count: Option<u64>,
    bookmark_count: Option<u64>,
    impression_count: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct NonPublic {
    impression_count: Option<u64>,
    url_link_clicks: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct TweetMetrics {
    #[serde(default)]
    public_metrics: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    non_public_metrics: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct Answer<T> {
    data: Option<T>,
}

#[derive(Debug, Deserialize)]
struct UserMetrics {
    #[serde(default)]
    public_metrics: Option<serde_json::Map<String, serde_json::Value>>,
}

fn parse<T: Default + for<'de> Deserialize<'de>>(m: &Option<serde_json::Map<String, serde_json::Value>>) -> T {
    m.clone().and_then(|m| serde_json::from_value(serde_json::Value::Object(m)).ok()).unwrap_or_default()
}

/// The normalized metrics of one tweet's answer.
pub(crate) fn post_metrics_of(data: serde_json::Value) -> PostMetrics {
    let t: TweetMetrics =
        serde_json::from_value(data).unwrap_or(TweetMetrics { public_metrics: None, non_public_metrics: None });
    let public: Public = parse(&t.public_metrics);
    let private: NonPublic = parse(&t.non_public_metrics);
    let mut m = PostMetrics {
        impressions: private.impression_count.or(public.impression_count),
        likes: public.like_count,
        comments: public.reply_count,
        shares: match (public.retweet_count, public.quote_count) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        },
        saves: public.bookmark_count,
        link_clicks: private.url_link_clicks,
        ..PostMetrics::default()
    };
    if let Some(p) = t.public_metrics {
        m.raw.insert("public_metrics".into(), serde_json::Value::Object(p));
    }
    if let Some(p) = t.non_public_metrics {
        m.raw.insert("non_public_metrics".into(), serde_json::Value::Object(p));
    } else {
        m = m.unavailable(
            "link_clicks",
            "X gives link clicks (non_public_metrics) only to the author, for posts of the last 30 days",
        );
    }
    for f in ["reach", "video_views", "watch_time_secs", "average_view_secs"] {
        m = m.unavailable(f, "X does not give it through tweet lookup");
    }
    m
}

impl XPlatform {
    pub(crate) async fn tweet_metrics(&self, account: &Account, post: &RemotePost) -> Result<PostMetrics> {
        let path = format!("/2/tweets/{}", post.id);
        let req = self
            .request(Method::GET, &path, &account.tokens.access_token)?
            .query(&[("tweet.fields", "public_metrics,non_public_metrics")]);
        let answer = self.call(None, req, CallKind::Idempotent, "GET /2/tweets/{id}").await?;
        let body: serde_json::Value = answer.json()?;
        let data = body.get("data").cloned().unwrap_or(serde_json::Value::Null);
        if data.is_null() {
            return Err(konektly_core::Error::NotFound(format!("tweet {} (deleted?)", post.id)));
        }
        Ok(post_metrics_of(data))
    }

    pub(crate) async fn user_metrics(&self, account: &Account) -> Result<AccountMetrics> {
        let req = self
            .request(Method::GET, "/2/users/me", &account.tokens.access_token)?
            .query(&[("user.fields", "public_metrics")]);
        let a: Answer<UserMetrics> = self.call_json(None, req, CallKind::Idempotent, "GET /2/users/me").await?;
        let pm = a.data.and_then(|d| d.public_metrics).unwrap_or_default();
        let get = |k: &str| pm.get(k).and_then(serde_json::Value::as_u64);
        Ok(AccountMetrics {
            followers: get("followers_count"),
            following: get("following_count"),
            posts: get("tweet_count"),
            views: None,
            unavailable: [("views".to_owned(), "X gives no account-wide view count".to_owned())].into(),
            raw: pm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_non_public_metrics_are_normalized() {
        let m = post_metrics_of(serde_json::json!({"id": "1", "public_metrics": {"retweet_count": 2, "reply_count": 3,
            "like_count": 40, "quote_count": 1, "bookmark_count": 5, "impression_count": 900},
            "non_public_metrics": {"impression_count": 1000, "url_link_clicks": 7}}));
        assert_eq!(
            (m.impressions, m.likes, m.comments, m.shares, m.saves, m.link_clicks),
            (Some(1000), Some(40), Some(3), Some(3), Some(5), Some(7))
        );
        assert!(m.raw.contains_key("public_metrics"));
        let m = post_metrics_of(serde_json::json!({"id": "1", "public_metrics": {"like_count": 1}}));
        assert_eq!(m.link_clicks, None);
        assert!(m.unavailable["link_clicks"].contains("30 days"));
        assert_eq!(m.shares, None, "no counts given: unknown, not zero");
    }
}
