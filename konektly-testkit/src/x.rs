//! The X API v2 emulator: OAuth 2.0 with PKCE and rotating refresh tokens, `/2/tweets`
//! (duplicate refusal, media rules, replies for threads), chunked media upload with processing
//! states, `/2/users/me`, and the `x-rate-limit-*` headers on every call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::digest::{Digest, is_video};
use crate::oauth::{self, AuthorizeSpec};
use crate::server::{answer_or_drop, header as set_header, json, with_headers, x_problem};
use crate::state::{Grant, PostedRecord, State, now};

type S = AxState<Arc<State>>;

#[derive(Default)]
pub(crate) struct XState {
    media: HashMap<String, XMedia>,
    tweets: Vec<Tweet>,
    next_id: u64,
}

struct XMedia {
    owner: String,
    media_type: String,
    category: String,
    total: u64,
    digest: Digest,
    next_segment: u32,
    finalized_at: Option<DateTime<Utc>>,
    busy: bool,
}

struct Tweet {
    id: String,
    author: String,
    text: String,
    created_at: DateTime<Utc>,
    deleted: bool,
    /// The post it replies to (a thread's next item, a first comment).
    reply_to: Option<String>,
}

impl XState {
    fn id(&mut self, base: u64) -> String {
        self.next_id += 1;
        (base + self.next_id).to_string()
    }
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/i/oauth2/authorize", get(authorize))
        .route("/2/oauth2/authorize", get(authorize))
        .route("/2/oauth2/token", post(token))
        .route("/2/oauth2/revoke", post(revoke))
        .route("/2/users/me", get(me))
        .route("/2/users/{id}/tweets", get(timeline))
        .route("/2/tweets", post(create_tweet))
        .route("/2/tweets/{id}", delete(delete_tweet).get(get_tweet))
        .route("/2/media/upload", post(upload_simple).get(media_status))
        .route("/2/media/upload/initialize", post(media_init))
        .route("/2/media/upload/{id}/append", post(media_append))
        .route("/2/media/upload/{id}/finalize", post(media_finalize))
        .route("/2/media/metadata", post(media_metadata))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

const SPEC: AuthorizeSpec = AuthorizeSpec {
    platform: "x",
    client_param: "client_id",
    scope_sep: " ",
    code_ttl: Duration::from_secs(30),
    echo_scopes_as: None,
    fragment: None,
};

async fn authorize(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    oauth::authorize(&state, &SPEC, &oauth::parse_query(q.as_deref()))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(status, json!({"error": error, "error_description": description}))
}

async fn token(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let form = oauth::parse_form(&body);
    let (id, secret) = oauth::client_of(&headers, &form, "client_id");
    if !oauth::client_ok("x", id.as_deref(), secret.as_deref(), false) {
        return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized_client", "Missing valid authorization header");
    }
    let ttl = state.token_ttl(Duration::from_secs(7200));
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = match oauth::take_code(
                &state,
                "x",
                form.get("code"),
                form.get("redirect_uri"),
                form.get("code_verifier"),
            ) {
                Ok(c) => c,
                Err((_, d)) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &d),
            };
            let mut inner = state.lock();
            let grant = inner.new_grant("x", &code.user, code.scopes.clone());
            let access = inner.issue_access("x-at-", grant, &code.user, Some(ttl), false);
            let mut body = json!({"token_type": "bearer", "expires_in": ttl.as_secs(), "access_token": access,
                "scope": code.scopes.join(" ")});
            if code.scopes.iter().any(|s| s == "offline.access") {
                body["refresh_token"] = json!(inner.issue_refresh("x-rt-", grant, None));
            }
            json(StatusCode::OK, body)
        }
        Some("refresh_token") => {
            let invalid =
                || oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Value passed for the token was invalid.");
            let mut inner = state.lock();
            let Some(rt) = form.get("refresh_token").and_then(|t| inner.refresh.get(t).cloned()) else {
                return invalid();
            };
            if rt.used {
                // A replayed refresh token ends the whole token family.
                inner.revoke_grant(rt.grant);
                return invalid();
            }
            let Some(grant) = inner.grants.get(&rt.grant).cloned().filter(|g| !g.revoked) else {
                return invalid();
            };
            if let Some(r) = form.get("refresh_token").and_then(|t| inner.refresh.get_mut(t)) {
                r.used = true;
            }
            let access = inner.issue_access("x-at-", rt.grant, &grant.user, Some(ttl), false);
            let refresh = inner.issue_refresh("x-rt-", rt.grant, None);
            json(
                StatusCode::OK,
                json!({"token_type": "bearer", "expires_in": ttl.as_secs(), "access_token": access,
                    "scope": grant.scopes.join(" "), "refresh_token": refresh}),
            )
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing required parameter [grant_type]."),
    }
}

async fn revoke(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let form = oauth::parse_form(&body);
    let (id, secret) = oauth::client_of(&headers, &form, "client_id");
    if !oauth::client_ok("x", id.as_deref(), secret.as_deref(), false) {
        return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized_client", "Missing valid authorization header");
    }
    let mut inner = state.lock();
    if let Some(t) = form.get("token") {
        let grant = inner.access.get(t).map(|a| a.grant).or_else(|| inner.refresh.get(t).map(|r| r.grant));
        if let Some(g) = grant {
            inner.revoke_grant(g);
        }
    }
    json(StatusCode::OK, json!({"revoked": true}))
}

fn unauthorized() -> Response {
    x_problem(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized", "about:blank")
}

/// Authenticates a call and counts it in its window; returns the user and the rate headers.
fn auth(
    state: &State,
    headers: &HeaderMap,
    endpoint: &str,
    limit: u32,
    scope: Option<&str>,
) -> Result<(Grant, HeaderMap), Response> {
    let mut inner = state.lock();
    let (_, grant) = inner.check_access(oauth::bearer(headers).as_deref(), &["x"]).map_err(|_| unauthorized())?;
    let rs = inner.hit(format!("x:{}:{endpoint}", grant.user), limit, Duration::from_secs(900));
    let mut h = HeaderMap::new();
    set_header(&mut h, "x-rate-limit-limit", rs.limit);
    set_header(&mut h, "x-rate-limit-remaining", rs.remaining);
    set_header(&mut h, "x-rate-limit-reset", rs.reset.timestamp());
    if !rs.allowed {
        return Err(with_headers(
            json(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
            ),
            h,
        ));
    }
    if let Some(s) = scope
        && !grant.scopes.iter().any(|g| g == s)
    {
        return Err(x_problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("You are not permitted to perform this action: the token lacks the `{s}` scope."),
            "https://api.x.com/2/problems/client-forbidden",
        ));
    }
    Ok((grant, h))
}

fn invalid(detail: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"errors": [{"message": detail}], "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.x.com/2/problems/invalid-request"}),
    )
}

async fn me(
    AxState(state): S,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let (grant, h) = match auth(&state, &headers, "users_me", 75, Some("users.read")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let inner = state.lock();
    let Some(u) = inner.user("x", &grant.user) else { return unauthorized() };
    let tweets = inner.x.tweets.iter().filter(|t| t.author == grant.user && !t.deleted).count();
    // Followers grow with the account's posts, so account snapshots differ over time.
    let metrics = json!({"followers_count": 100 + tweets * 3, "following_count": 42, "tweet_count": tweets,
        "listed_count": 1, "like_count": tweets * 2});
    let mut data = json!({"id": u.id, "name": u.name, "username": u.handle});
    // Like X, only the fields asked for.
    if q.get("user.fields").is_some_and(|f| f.split(',').any(|f| f == "public_metrics")) {
        data["public_metrics"] = metrics;
    }
    with_headers(json(StatusCode::OK, json!({"data": data})), h)
}

/// Weighted length as twitter-text counts it (config v3), simplified: URLs count 23, code
/// points in the light ranges 1, joiners and modifiers 0, everything else 2.
pub(crate) fn weighted_length(text: &str) -> usize {
    let mut total = 0;
    for word in text.split_inclusive(char::is_whitespace) {
        let trimmed = word.trim_end();
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            total += 23 + (word.len() - trimmed.len());
            continue;
        }
        for c in word.chars() {
            let cp = c as u32;
            total += match cp {
                0..=4351 | 8192..=8205 | 8208..=8223 | 8242..=8247 => 1,
                0xFE00..=0xFE0F | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F => 0,
                _ => 2,
            };
        }
    }
    total
}

const TWEET_FIELDS: [&str; 19] = [
    "text",
    "media",
    "reply",
    "quote_tweet_id",
    "poll",
    "reply_settings",
    "for_super_followers_only",
    "share_with_followers",
    "community_id",
    "geo",
    "direct_message_deep_link",
    "card_uri",
    "nullcast",
    "edit_options",
    "made_with_ai",
    "paid_partnership",
    "exclude_reply_user_ids",
    "quote_post_id",
    "super_followers_only",
];

async fn create_tweet(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let limit = state.cfg.x_tweets_per_15min;
    let (grant, h) = match auth(&state, &headers, "tweets_create", limit, Some("tweet.write")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return invalid("The request body is not a JSON object.");
    };
    if let Some(k) = req.keys().find(|k| !TWEET_FIELDS.contains(&k.as_str())) {
        return invalid(&format!("The `{k}` field is not allowed."));
    }
    let text = req.get("text").and_then(Value::as_str).unwrap_or("").to_owned();
    let media_ids: Vec<String> = req
        .get("media")
        .and_then(|m| m.get("media_ids"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let exclusive = ["media", "poll", "quote_tweet_id", "card_uri"].iter().filter(|k| req.contains_key(**k)).count();
    if exclusive > 1 {
        return invalid("media, poll, quote_tweet_id and card_uri are mutually exclusive.");
    }
    if text.is_empty() && media_ids.is_empty() {
        return invalid("The text field is required when no media is attached.");
    }
    if weighted_length(&text) > 280 {
        return x_problem(StatusCode::FORBIDDEN, "Forbidden", "Your Tweet text is too long.", "about:blank");
    }
    if req.contains_key("media") && (media_ids.is_empty() || media_ids.len() > 4) {
        return invalid("media.media_ids must hold 1 to 4 ids.");
    }
    let reply_to =
        req.get("reply").and_then(|r| r.get("in_reply_to_tweet_id")).and_then(Value::as_str).map(str::to_owned);
    let mut inner = state.lock();
    let now = now();
    // Media: owned, finalized, processed, and 4 images or 1 GIF or 1 video.
    let mut media = Vec::new();
    let (mut images, mut others) = (0, 0);
    for id in &media_ids {
        let Some(m) = inner.x.media.get(id).filter(|m| m.owner == grant.user) else {
            return invalid("Your media IDs are invalid.");
        };
        let Some(fin) = m.finalized_at else { return invalid("Your media IDs are invalid.") };
        if needs_processing(m) && processing(&state, m, fin, now).0 != "succeeded" {
            return invalid("Your media IDs are invalid.");
        }
        if m.category == "tweet_image" {
            images += 1
        } else {
            others += 1
        }
        media.push(m.digest.record(&m.media_type));
    }
    if others > 1 || (others == 1 && images > 0) {
        return invalid("A post may carry 4 images, or 1 GIF, or 1 video.");
    }
    if let Some(r) = &reply_to
        && !inner.x.tweets.iter().any(|t| &t.id == r && !t.deleted)
    {
        return x_problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You attempted to reply to a Tweet that is deleted or not visible to you.",
            "about:blank",
        );
    }
    if !text.is_empty() && inner.x.tweets.iter().any(|t| t.author == grant.user && !t.deleted && t.text == text) {
        return x_problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You are not allowed to create a Tweet with duplicate content.",
            "about:blank",
        );
    }
    let id = inner.x.id(1_860_000_000_000_000_000);
    let handle = inner.user("x", &grant.user).map(|u| u.handle.clone()).unwrap_or_default();
    inner.x.tweets.push(Tweet {
        id: id.clone(),
        author: grant.user.clone(),
        text: text.clone(),
        created_at: now,
        deleted: false,
        reply_to: reply_to.clone(),
    });
    inner.record(PostedRecord {
        seq: 0,
        platform: "x".into(),
        account_id: grant.user.clone(),
        account_handle: handle.clone(),
        id: id.clone(),
        url: Some(format!("https://x.com/{handle}/status/{id}")),
        text: text.clone(),
        media,
        reply_to,
        kind: "tweet".into(),
        status: "published".into(),
        scheduled_for: None,
        options: Value::Object(req.clone()),
        created_at: now,
    });
    drop(inner);
    let mut h = h;
    set_header(&mut h, "location", format!("https://api.x.com/2/tweets/{id}"));
    let resp = with_headers(
        json(StatusCode::CREATED, json!({"data": {"id": id, "text": text, "edit_history_tweet_ids": [id]}})),
        h,
    );
    answer_or_drop(&state, "x", resp)
}

fn tweet_json(t: &Tweet) -> Value {
    let mut v = json!({"id": t.id, "text": t.text, "author_id": t.author,
        "created_at": t.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "edit_history_tweet_ids": [t.id]});
    if let Some(parent) = &t.reply_to {
        v["referenced_tweets"] = json!([{"type": "replied_to", "id": parent}]);
    }
    v
}

/// The live replies to `post` (first comments, threads' next items), oldest first.
pub(crate) fn replies(inner: &crate::state::Inner, post: &str) -> Vec<crate::control::SandboxComment> {
    inner
        .x
        .tweets
        .iter()
        .filter(|t| t.reply_to.as_deref() == Some(post))
        .map(|t| crate::control::SandboxComment {
            platform: "x".into(),
            id: t.id.clone(),
            post: post.to_owned(),
            author: t.author.clone(),
            text: t.text.clone(),
            created_at: t.created_at,
            deleted: t.deleted,
        })
        .collect()
}

fn not_found(id: &str) -> Response {
    json(
        StatusCode::OK,
        json!({"errors": [{"value": id, "detail": format!("Could not find tweet with id: [{id}]."),
            "title": "Not Found Error", "resource_type": "tweet", "parameter": "id", "resource_id": id,
            "type": "https://api.x.com/2/problems/resource-not-found"}]}),
    )
}

async fn get_tweet(
    AxState(state): S,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let (grant, h) = match auth(&state, &headers, "tweets_lookup", 900, None) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let inner = state.lock();
    match inner.x.tweets.iter().find(|t| t.id == id && !t.deleted) {
        Some(t) => {
            let mut data = tweet_json(t);
            let fields = q.get("tweet.fields").map(String::as_str).unwrap_or("");
            let (public, private) = tweet_metrics(t, Utc::now());
            if fields.split(',').any(|f| f == "public_metrics") {
                data["public_metrics"] = public;
            }
            // X gives non-public metrics to the author only, for posts of the last 30 days.
            if fields.split(',').any(|f| f == "non_public_metrics") {
                if t.author == grant.user && Utc::now() - t.created_at < chrono::Duration::days(30) {
                    data["non_public_metrics"] = private;
                } else {
                    let err = json!({"errors": [{"title": "Field Authorization Error", "resource_type": "tweet",
                        "field": "non_public_metrics", "resource_id": t.id, "parameter": "tweet.fields",
                        "detail": "Sorry, you are not authorized to access 'non_public_metrics' on a Tweet.",
                        "type": "https://api.x.com/2/problems/not-authorized-for-field"}]});
                    return with_headers(json(StatusCode::OK, json!({"data": data, "errors": err["errors"]})), h);
                }
            }
            with_headers(json(StatusCode::OK, json!({"data": data})), h)
        }
        None => with_headers(not_found(&id), h),
    }
}

/// A tweet's metrics, growing with its age (so that snapshots over time differ): public and
/// non-public, with X's field names.
fn tweet_metrics(t: &Tweet, now: DateTime<Utc>) -> (Value, Value) {
    let age = (now - t.created_at).num_seconds().max(0) as u64;
    let impressions = age * 3 + 10;
    (
        json!({"retweet_count": age / 120, "reply_count": age / 300, "like_count": age / 20,
            "quote_count": age / 600, "bookmark_count": age / 900, "impression_count": impressions}),
        json!({"impression_count": impressions, "url_link_clicks": age / 60, "user_profile_clicks": age / 240}),
    )
}

async fn delete_tweet(AxState(state): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (grant, h) = match auth(&state, &headers, "tweets_delete", 50, Some("tweet.write")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut inner = state.lock();
    let Some(t) = inner.x.tweets.iter_mut().find(|t| t.id == id && !t.deleted) else {
        return with_headers(not_found(&id), h);
    };
    if t.author != grant.user {
        return x_problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You are not allowed to delete this Tweet.",
            "about:blank",
        );
    }
    t.deleted = true;
    if let Some(p) = inner.post_mut("x", &id) {
        p.status = "deleted".into();
    }
    with_headers(json(StatusCode::OK, json!({"data": {"deleted": true}})), h)
}

async fn timeline(AxState(state): S, headers: HeaderMap, Path(user): Path<String>, RawQuery(q): RawQuery) -> Response {
    let (_, h) = match auth(&state, &headers, "user_tweets", 900, None) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let q = oauth::parse_query(q.as_deref());
    let time = |k: &str| q.get(k).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|d| d.with_timezone(&Utc));
    let (since, until) = (time("start_time"), time("end_time"));
    let max = q.get("max_results").and_then(|m| m.parse::<usize>().ok()).unwrap_or(10).clamp(5, 100);
    // `pagination_token` is opaque to clients; here it is the index of the page's first tweet.
    let start = q.get("pagination_token").and_then(|t| t.strip_prefix("pg")).and_then(|t| t.parse::<usize>().ok());
    if q.contains_key("pagination_token") && start.is_none() {
        return x_problem(
            StatusCode::BAD_REQUEST,
            "Invalid Request",
            "The `pagination_token` query parameter value is invalid.",
            "https://api.twitter.com/2/problems/invalid-request",
        );
    }
    let start = start.unwrap_or(0);
    let inner = state.lock();
    let visible_before =
        now() - crate::state::chrono_dur(inner.faults.get("x").map(|f| f.listing_lag).unwrap_or_default());
    let all: Vec<&Tweet> = inner
        .x
        .tweets
        .iter()
        .rev()
        .filter(|t| {
            t.author == user
                && !t.deleted
                && t.created_at <= visible_before
                && since.is_none_or(|s| t.created_at >= s)
                && until.is_none_or(|u| t.created_at < u)
        })
        .collect();
    let items: Vec<Value> = all.iter().skip(start).take(max).map(|t| tweet_json(t)).collect();
    let body = if items.is_empty() {
        json!({"meta": {"result_count": 0}})
    } else {
        let mut meta = json!({"result_count": items.len(), "newest_id": items[0]["id"], "oldest_id": items[items.len() - 1]["id"]});
        if start + max < all.len() {
            meta["next_token"] = json!(format!("pg{}", start + max));
        }
        if start > 0 {
            meta["previous_token"] = json!(format!("pg{}", start.saturating_sub(max)));
        }
        json!({"data": items, "meta": meta})
    };
    with_headers(json(StatusCode::OK, body), h)
}

/// Adds a post by `author` created at `at` (for filling an account; see `Sandbox::fill`).
pub(crate) fn fill(inner: &mut crate::state::Inner, author: &str, text: &str, at: DateTime<Utc>) -> (String, String) {
    let id = inner.x.id(1_860_000_000_000_000_000);
    let pos = inner.x.tweets.iter().position(|t| t.created_at > at).unwrap_or(inner.x.tweets.len());
    inner.x.tweets.insert(
        pos,
        Tweet {
            id: id.clone(),
            author: author.to_owned(),
            text: text.to_owned(),
            created_at: at,
            deleted: false,
            reply_to: None,
        },
    );
    let handle = inner.user("x", author).map(|u| u.handle.clone()).unwrap_or_default();
    (id.clone(), format!("https://x.com/{handle}/status/{id}"))
}

// ---- media ---------------------------------------------------------------------------------

const MEDIA_TYPES: [&str; 15] = [
    "video/mp4",
    "video/webm",
    "video/mp2t",
    "video/quicktime",
    "text/srt",
    "text/vtt",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/png",
    "image/webp",
    "image/pjpeg",
    "image/tiff",
    "model/gltf-binary",
    "model/vnd.usdz+zip",
];

fn category_for(media_type: &str, given: Option<&str>) -> String {
    if let Some(c) = given {
        return c.to_owned();
    }
    if media_type == "image/gif" {
        "tweet_gif".into()
    } else if is_video(media_type) {
        "tweet_video".into()
    } else {
        "tweet_image".into()
    }
}

fn max_size(category: &str) -> u64 {
    match category {
        "tweet_image" | "dm_image" => 5 * 1024 * 1024,
        "tweet_gif" | "dm_gif" => 15 * 1024 * 1024,
        "subtitles" => 1024 * 1024,
        _ => 512 * 1024 * 1024,
    }
}

fn needs_processing(m: &XMedia) -> bool {
    m.category != "tweet_image" && m.category != "dm_image" && m.category != "subtitles"
}

/// The processing state of finalized media: pending, then in_progress, then succeeded (or
/// failed when the bytes are not what was declared).
fn processing(state: &State, m: &XMedia, fin: DateTime<Utc>, now: DateTime<Utc>) -> (&'static str, u32) {
    let delay = state.cfg.processing_delay.as_millis().max(1) as i64;
    let elapsed = (now - fin).num_milliseconds();
    let declared_video = is_video(&m.media_type) || m.media_type == "image/gif";
    let ok = match m.digest.sniff() {
        Some(s) => is_video(s) == is_video(&m.media_type) || (declared_video && s == "image/gif"),
        None => false,
    };
    if elapsed * 3 < delay {
        ("pending", 0)
    } else if elapsed < delay {
        ("in_progress", (elapsed * 100 / delay) as u32)
    } else if ok {
        ("succeeded", 100)
    } else {
        ("failed", 100)
    }
}

fn media_key(m: &XMedia, id: &str) -> String {
    let p = match m.category.as_str() {
        "tweet_gif" | "dm_gif" => 16,
        "tweet_image" | "dm_image" => 3,
        _ => 7,
    };
    format!("{p}_{id}")
}

fn media_json(state: &State, id: &str, m: &XMedia) -> Value {
    let mut v = json!({"id": id, "media_key": media_key(m, id), "size": m.digest.size(), "expires_after_secs": 86400});
    if let Some(fin) = m.finalized_at
        && needs_processing(m)
    {
        let (st, pct) = processing(state, m, fin, now());
        let mut info = json!({"state": st, "progress_percent": pct});
        if st == "pending" || st == "in_progress" {
            info["check_after_secs"] = json!(1);
        }
        if st == "failed" {
            info["error"] = json!({"code": 1, "name": "InvalidMedia", "message": "Invalid or Unsupported media, Reason: UnsupportedMedia."});
        }
        v["processing_info"] = info;
        if is_video(&m.media_type) {
            v["video"] = json!({"video_type": m.media_type});
        }
    }
    v
}

async fn media_init(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let (grant, h) = match auth(&state, &headers, "media_init", 1875, Some("media.write")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let req: Value = if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"))
    {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        let f = oauth::parse_form(&body);
        json!({"media_type": f.get("media_type"), "total_bytes": f.get("total_bytes").and_then(|t| t.parse::<u64>().ok()),
            "media_category": f.get("media_category")})
    };
    let Some(media_type) = req.get("media_type").and_then(Value::as_str) else {
        return invalid("media_type is required.");
    };
    if !MEDIA_TYPES.contains(&media_type) {
        return invalid(&format!("media_type `{media_type}` is not supported."));
    }
    let Some(total) = req.get("total_bytes").and_then(Value::as_u64).filter(|t| *t > 0) else {
        return invalid("total_bytes is required.");
    };
    let category = category_for(media_type, req.get("media_category").and_then(Value::as_str));
    if total > max_size(&category) {
        return invalid(&format!("total_bytes {total} is larger than {} for {category}.", max_size(&category)));
    }
    let mut inner = state.lock();
    let id = inner.x.id(1_880_000_000_000_000_000);
    let m = XMedia {
        owner: grant.user,
        media_type: media_type.to_owned(),
        category,
        total,
        digest: Digest::default(),
        next_segment: 0,
        finalized_at: None,
        busy: false,
    };
    let body = json!({"data": {"id": id, "media_key": media_key(&m, &id), "expires_after_secs": 1_296_000}});
    inner.x.media.insert(id, m);
    with_headers(json(StatusCode::OK, body), h)
}

enum AppendBody {
    Multipart(Multipart),
    Json(Value),
}

async fn media_append(AxState(state): S, headers: HeaderMap, Path(id): Path<String>, req: Request) -> Response {
    let (grant, h) = match auth(&state, &headers, "media_append", 1875, Some("media.write")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let is_json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json"));
    let body = if is_json {
        match Bytes::from_request(req, &()).await {
            Ok(b) => AppendBody::Json(serde_json::from_slice(&b).unwrap_or(Value::Null)),
            Err(_) => return invalid("The body could not be read."),
        }
    } else {
        match Multipart::from_request(req, &()).await {
            Ok(m) => AppendBody::Multipart(m),
            Err(_) => return invalid("Expected a multipart/form-data body with `media` and `segment_index`."),
        }
    };
    // Take the upload's digest out (the lock is not held while bytes stream in).
    let (mut digest, expected, total) = {
        let mut inner = state.lock();
        let Some(m) = inner.x.media.get_mut(&id).filter(|m| m.owner == grant.user) else {
            return invalid("Your media IDs are invalid.");
        };
        if m.finalized_at.is_some() || m.busy {
            return invalid("This media is finalized or is receiving another segment.");
        }
        m.busy = true;
        (m.digest.clone(), m.next_segment, m.total)
    };
    let before = digest.clone();
    let max = state.cfg.x_max_chunk as u64;
    let result = read_segment(body, &mut digest, max).await;
    let mut inner = state.lock();
    let Some(m) = inner.x.media.get_mut(&id) else { return invalid("Your media IDs are invalid.") };
    m.busy = false;
    let (index, len) = match result {
        Ok(v) => v,
        Err(SegmentError::TooLarge) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(SegmentError::Bad(msg)) => return invalid(&msg),
    };
    if index + 1 == expected && expected > 0 {
        // A retried segment that already arrived: accepted, not counted twice.
    } else if index != expected {
        return invalid(&format!("segment_index {index} is out of order; expected {expected}."));
    } else if digest.size() > total {
        return invalid(&format!("The segments carry more than total_bytes ({total})."));
    } else if len == 0 {
        return invalid("The media segment is empty.");
    } else {
        m.digest = digest;
        m.next_segment += 1;
    }
    let _ = before;
    let expires = (now() + chrono::Duration::days(1)).timestamp();
    with_headers(json(StatusCode::OK, json!({"data": {"expires_at": expires}})), h)
}

enum SegmentError {
    TooLarge,
    Bad(String),
}

async fn read_segment(body: AppendBody, digest: &mut Digest, max: u64) -> Result<(u32, u64), SegmentError> {
    match body {
        AppendBody::Json(v) => {
            let index = v
                .get("segment_index")
                .and_then(Value::as_u64)
                .ok_or(SegmentError::Bad("segment_index is required.".into()))?;
            let data = v.get("media").and_then(Value::as_str).ok_or(SegmentError::Bad("media is required.".into()))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| SegmentError::Bad("media is not valid base64.".into()))?;
            if bytes.len() as u64 > max {
                return Err(SegmentError::TooLarge);
            }
            digest.update(&bytes);
            Ok((index as u32, bytes.len() as u64))
        }
        AppendBody::Multipart(mut mp) => {
            let mut index = None;
            let mut len = None;
            while let Some(mut field) =
                mp.next_field().await.map_err(|e| SegmentError::Bad(format!("bad multipart body: {e}")))?
            {
                match field.name() {
                    Some("segment_index") => {
                        let t = field.text().await.map_err(|_| SegmentError::Bad("bad segment_index".into()))?;
                        index = Some(
                            t.trim()
                                .parse::<u32>()
                                .map_err(|_| SegmentError::Bad("segment_index must be 0–999".into()))?,
                        );
                    }
                    Some("media") | Some("media_data") => {
                        let b64 = field.name() == Some("media_data");
                        let mut n = 0u64;
                        if b64 {
                            let t = field.text().await.map_err(|_| SegmentError::Bad("bad media_data".into()))?;
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(t.trim())
                                .map_err(|_| SegmentError::Bad("media_data is not valid base64.".into()))?;
                            n = bytes.len() as u64;
                            if n > max {
                                return Err(SegmentError::TooLarge);
                            }
                            digest.update(&bytes);
                        } else {
                            while let Some(chunk) = field
                                .chunk()
                                .await
                                .map_err(|e| SegmentError::Bad(format!("the body broke off: {e}")))?
                            {
                                n += chunk.len() as u64;
                                if n > max {
                                    return Err(SegmentError::TooLarge);
                                }
                                digest.update(&chunk);
                            }
                        }
                        len = Some(n);
                    }
                    _ => {}
                }
            }
            let index = index.ok_or(SegmentError::Bad("segment_index is required.".into()))?;
            if index > 999 {
                return Err(SegmentError::Bad("segment_index must be 0–999".into()));
            }
            Ok((index, len.ok_or(SegmentError::Bad("media is required.".into()))?))
        }
    }
}

async fn media_finalize(AxState(state): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (grant, h) = match auth(&state, &headers, "media_finalize", 1875, Some("media.write")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut inner = state.lock();
    let Some(m) = inner.x.media.get_mut(&id).filter(|m| m.owner == grant.user) else {
        return invalid("Your media IDs are invalid.");
    };
    if m.digest.size() != m.total {
        return invalid(&format!("Segments total {} bytes, but total_bytes was {}.", m.digest.size(), m.total));
    }
    if !needs_processing(m) && m.digest.sniff().is_none_or(|s| !s.starts_with("image/")) {
        return invalid("media type unrecognized.");
    }
    if m.finalized_at.is_none() {
        m.finalized_at = Some(now());
    }
    let m = inner.x.media.get(&id).expect("present");
    with_headers(json(StatusCode::OK, json!({"data": media_json(&state, &id, m)})), h)
}

async fn media_status(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let (grant, h) = match auth(&state, &headers, "media_status", 1000, Some("media.write")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let q = oauth::parse_query(q.as_deref());
    let inner = state.lock();
    let Some((id, m)) =
        q.get("media_id").and_then(|id| inner.x.media.get(id).map(|m| (id, m))).filter(|(_, m)| m.owner == grant.user)
    else {
        return invalid("Your media IDs are invalid.");
    };
    with_headers(json(StatusCode::OK, json!({"data": media_json(&state, id, m)})), h)
}

async fn upload_simple(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery, req: Request) -> Response {
    let (grant, h) = match auth(&state, &headers, "media_upload", 500, Some("media.write")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if oauth::parse_query(q.as_deref()).contains_key("command") {
        return invalid(
            "The `command` parameter is no longer supported: use /2/media/upload/initialize, /append and /finalize.",
        );
    }
    let is_json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json"));
    let mut digest = Digest::default();
    let mut category = None;
    let mut declared = None;
    if is_json {
        let Ok(b) = Bytes::from_request(req, &()).await else { return invalid("The body could not be read.") };
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        if v.get("command").is_some() {
            return invalid("The `command` parameter is no longer supported.");
        }
        let Some(bytes) = v
            .get("media")
            .and_then(Value::as_str)
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        else {
            return invalid("media is required.");
        };
        digest.update(&bytes);
        category = v.get("media_category").and_then(Value::as_str).map(str::to_owned);
        declared = v.get("media_type").and_then(Value::as_str).map(str::to_owned);
    } else {
        let Ok(mut mp) = Multipart::from_request(req, &()).await else {
            return invalid("Expected a multipart/form-data body with `media`.");
        };
        while let Ok(Some(mut field)) = mp.next_field().await {
            match field.name() {
                Some("media") => {
                    while let Ok(Some(chunk)) = field.chunk().await {
                        digest.update(&chunk);
                    }
                }
                Some("media_category") => category = field.text().await.ok(),
                Some("media_type") => declared = field.text().await.ok(),
                Some("command") => return invalid("The `command` parameter is no longer supported."),
                _ => {}
            }
        }
    }
    let Some(sniffed) = digest.sniff().filter(|s| s.starts_with("image/")) else {
        return invalid("media type unrecognized: the one-shot upload takes images; use the chunked upload for video.");
    };
    let media_type = declared.unwrap_or_else(|| sniffed.to_owned());
    let category = category_for(&media_type, category.as_deref());
    if digest.size() > max_size(&category) {
        return invalid("File size exceeds 5242880 bytes.");
    }
    let mut inner = state.lock();
    let id = inner.x.id(1_880_000_000_000_000_000);
    let m = XMedia {
        owner: grant.user,
        media_type,
        category,
        total: digest.size(),
        digest,
        next_segment: 1,
        finalized_at: Some(now()),
        busy: false,
    };
    let mut v = media_json(&state, &id, &m);
    v["image"] = json!({"image_type": sniffed});
    inner.x.media.insert(id, m);
    with_headers(json(StatusCode::OK, json!({"data": v})), h)
}

async fn media_metadata(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let (grant, h) = match auth(&state, &headers, "media_metadata", 500, Some("media.write")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let inner = state.lock();
    let Some(id) =
        v.get("id").and_then(Value::as_str).filter(|id| inner.x.media.get(*id).is_some_and(|m| m.owner == grant.user))
    else {
        return invalid("Your media IDs are invalid.");
    };
    if v.pointer("/metadata/alt_text/text").and_then(Value::as_str).is_some_and(|t| t.chars().count() > 1000) {
        return invalid("alt_text is longer than 1000 characters.");
    }
    with_headers(json(StatusCode::OK, json!({"data": {"id": id, "associated_metadata": true}})), h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_twitter_text() {
        assert_eq!(weighted_length("hello"), 5);
        assert_eq!(weighted_length("日本"), 4);
        assert_eq!(weighted_length("see https://example.com/a/very/long/path"), 4 + 23);
        assert_eq!(weighted_length(&"a".repeat(280)), 280);
    }

    #[test]
    fn sniffs() {
        assert_eq!(crate::digest::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
    }
}
