//! [`XPlatform`]: `impl Platform` for X — connecting (OAuth 2.0 with PKCE through `oauth.rs`),
//! publishing posts, threads and polls (media through `upload.rs`), deletion and reconciliation.
//! The requests themselves are in `client.rs`.

use std::fmt;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use konektly_core::{
    Account, AccountGrant, AuthorizationRequest, CallKind, Capabilities, Content, Disposition, Error, Media,
    PendingAuthorization, Platform, PlatformId, Profile, PublishContext, PublishOutcome, Reconciliation, RemotePost,
    Result, TargetOptions, TokenSet, Violation,
};
use reqwest::Method;
use url::Url;

use crate::builder::XBuilder;
use crate::config::Config;
use crate::error::{XApiError, classify};
use crate::model::{
    CreateTweet, CreatedTweet, Data, MediaState, Timeline, TweetGeo, TweetMedia, TweetReply, XOptions, XState,
};
use crate::text::text_without_urls;
use crate::upload::MediaStep;

/// The platform id of X.
pub const PLATFORM_ID: &str = "x";
/// How many pages of the account's posts `reconcile` reads at most.
const RECONCILE_PAGES: usize = 5;

/// Clock skew allowed between this machine and X when bounding the reconcile window.
const RECONCILE_SKEW: std::time::Duration = std::time::Duration::from_secs(120);

/// X (Twitter) through API v2, as a konektly [`Platform`].
pub struct XPlatform {
    pub(crate) cfg: Config,
    caps: Capabilities,
}

impl fmt::Debug for XPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // OAuthConfig's own Debug redacts the client secret.
        f.debug_struct("XPlatform")
            .field("api_base", &self.cfg.api_base.as_str())
            .field("oauth", self.cfg.oauth.config())
            .field("scopes", &self.cfg.scopes)
            .field("chunk_size", &self.cfg.chunk_size)
            .finish_non_exhaustive()
    }
}

/// One item of a publication: the first post, then each thread item.
struct Item<'a> {
    text: &'a str,
    media: &'a [Media],
}

fn items(content: &Content) -> Vec<Item<'_>> {
    std::iter::once(Item { text: &content.text, media: &content.media })
        .chain(content.thread.iter().map(|t| Item { text: &t.text, media: &t.media }))
        .collect()
}

impl XPlatform {
    pub(crate) fn new(cfg: Config) -> Self {
        Self { cfg, caps: crate::validate::capabilities() }
    }

    /// A builder (same as [`XBuilder::new`]).
    pub fn builder() -> XBuilder {
        XBuilder::new()
    }

    /// The redirect URI given to the builder, if any.
    pub fn redirect_uri(&self) -> Option<&Url> {
        self.cfg.redirect_uri.as_ref()
    }

    fn remote(&self, account: &Account, state: &XState) -> RemotePost {
        let ids: Vec<String> = state.items.iter().filter_map(|i| i.posted_id.clone()).collect();
        let first = ids.first().cloned().unwrap_or_default();
        let handle = account.handle.as_deref().map(|h| h.trim_start_matches('@')).filter(|h| !h.is_empty());
        let url = match handle {
            Some(h) => format!("https://x.com/{h}/status/{first}"),
            None => format!("https://x.com/i/web/status/{first}"),
        };
        let mut remote = RemotePost::new(PlatformId::new(PLATFORM_ID), first, Url::parse(&url).ok());
        remote.thread_ids = ids.into_iter().skip(1).collect();
        remote
    }

    /// Publishes, or continues from the checkpoint: uploads what is not uploaded, waits for
    /// processing, then posts the items not posted yet, each replying to the one before.
    async fn run(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let violations = self.validate(ctx.content, ctx.options);
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let opts: XOptions = ctx.typed_options()?;
        let content = ctx.content;
        let items = items(content);
        let mut state: XState = ctx.state()?;
        state.items.resize_with(items.len(), Default::default);

        for (i, item) in items.iter().enumerate() {
            if state.items[i].posted_id.is_some() {
                continue;
            }
            if state.items[i].media.len() != item.media.len() {
                state.items[i].media = vec![MediaState::default(); item.media.len()];
            }
            for (j, media) in item.media.iter().enumerate() {
                if let MediaStep::Wait(after, detail) = self.prepare_media(ctx, &mut state, i, j, media).await? {
                    return Ok(PublishOutcome::processing(after, detail));
                }
            }
            let previous = if i == 0 { None } else { state.items[i - 1].posted_id.clone() };
            let media_ids: Vec<String> = state.items[i].media.iter().map(|m| m.media_id.clone()).collect();
            let body = tweet_body(&opts, i, item.text, media_ids, previous);

            // Whether an earlier create of this item may have landed (its answer was lost): only
            // then can a "duplicate content" refusal be about our own post.
            let sent_before = state.create_sent.item() == Some(i) || state.items[i].unanswered_creates > 0;
            state.create_sent.mark_item(i);
            state.duplicate = None;
            state.items[i].unanswered_creates += 1;
            let now = Utc::now();
            state.items[i].first_sent_at.get_or_insert(now);
            state.items[i].last_sent_at = Some(now);
            ctx.before_create(&state).await?;
            let req = self.request(Method::POST, "/2/tweets", ctx.access_token())?.json(&body);
            let what = "POST /2/tweets";
            match self.call_json::<Data<CreatedTweet>>(Some(ctx), req, CallKind::Create, what).await {
                Ok(created) => {
                    state.items[i].posted_id = Some(created.data.id);
                    state.create_sent.clear();
                    ctx.save_state(&state).await?;
                }
                Err(e) if is_duplicate(&e) => {
                    // This create was answered; an earlier one may not have been.
                    state.items[i].unanswered_creates -= 1;
                    if sent_before {
                        // Our own lost create landed: reconcile finds it and adopts its id.
                        state.duplicate = Some(i);
                        ctx.save_state(&state).await?;
                        return Err(e);
                    }
                    state.create_sent.clear();
                    ctx.save_state(&state).await?;
                    return Err(Error::Rejected {
                        code: Some("duplicate".into()),
                        message: "X refused the text as a duplicate of a post the account published before \
                                  (not by this target): change the text"
                            .into(),
                        source: Some(Box::new(e)),
                    });
                }
                Err(e) => {
                    if !matches!(e, Error::UnknownOutcome { .. }) {
                        // X answered: this create did not land.
                        state.items[i].unanswered_creates -= 1;
                        state.create_sent.clear();
                        ctx.save_state(&state).await?;
                    }
                    return Err(e);
                }
            }
        }
        Ok(PublishOutcome::Published(self.remote(ctx.account, &state)))
    }

    /// The account's posts since `since`, newest first, a few pages at most.
    /// The account's posts created while item `item`'s creates could have landed: from its
    /// first create (less clock skew) to its latest plus the call's time limit and skew, read
    /// page by page. `None` when the pages ran out before the window did: the lookup is then
    /// incomplete and cannot say "absent".
    async fn window(
        &self,
        ctx: &PublishContext<'_>,
        item: &crate::model::ItemState,
    ) -> Result<Option<Vec<crate::model::TimelineTweet>>> {
        let skew = chrono::TimeDelta::from_std(RECONCILE_SKEW).unwrap_or(chrono::TimeDelta::minutes(2));
        let call = chrono::TimeDelta::from_std(self.cfg.http.config().timeout).unwrap_or(chrono::TimeDelta::minutes(1));
        let first = item.first_sent_at.unwrap_or(ctx.attempt_started_at);
        let last = item.last_sent_at.unwrap_or(first).max(first);
        let (from, to) = (first - skew, last + call + skew);
        let since = from.to_rfc3339_opts(SecondsFormat::Secs, true);
        // X wants `end_time` in the past; a window still open is bounded by reading the dates.
        let until =
            (to < Utc::now() - chrono::TimeDelta::seconds(10)).then(|| to.to_rfc3339_opts(SecondsFormat::Secs, true));
        let path = format!("/2/users/{}/tweets", ctx.account.remote_id);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let mut query: Vec<(&str, &str)> =
                vec![("start_time", &since), ("max_results", "100"), ("tweet.fields", "created_at,referenced_tweets")];
            if let Some(u) = &until {
                query.push(("end_time", u));
            }
            if let Some(t) = &token {
                query.push(("pagination_token", t));
            }
            let req = self.request(Method::GET, &path, ctx.access_token())?.query(&query);
            let page: Timeline =
                self.call_json(Some(ctx), req, CallKind::Idempotent, "GET /2/users/{id}/tweets").await?;
            out.extend(page.data.into_iter().filter(|t| t.created_at.is_none_or(|c| c >= from && c <= to)));
            token = page.meta.and_then(|m| m.next_token);
            if token.is_none() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }
}

fn tweet_body(opts: &XOptions, i: usize, text: &str, media_ids: Vec<String>, previous: Option<String>) -> CreateTweet {
    let first = i == 0;
    let reply = match (first, previous) {
        (false, Some(prev)) => Some(TweetReply { in_reply_to_tweet_id: prev, exclude_reply_user_ids: Vec::new() }),
        _ if first => opts.reply_to.clone().map(|id| TweetReply {
            in_reply_to_tweet_id: id,
            exclude_reply_user_ids: opts.exclude_reply_user_ids.clone(),
        }),
        _ => None,
    };
    let has_media = !media_ids.is_empty();
    CreateTweet {
        text: text.to_owned(),
        media: has_media.then(|| TweetMedia {
            media_ids,
            tagged_user_ids: if first { opts.tagged_user_ids.clone() } else { Vec::new() },
        }),
        reply,
        poll: if first { opts.poll.clone() } else { None },
        quote_tweet_id: if first { opts.quote_tweet_id.clone() } else { None },
        reply_settings: opts.reply_settings,
        for_super_followers_only: first && opts.for_super_followers_only,
        community_id: if first { opts.community_id.clone() } else { None },
        made_with_ai: opts.made_with_ai && has_media,
        share_with_followers: first && opts.share_with_followers,
        geo: if first { opts.place_id.clone().map(|place_id| TweetGeo { place_id }) } else { None },
        paid_partnership: opts.paid_partnership,
    }
}

fn is_duplicate(e: &Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<XApiError>())
        .is_some_and(|api| classify(api).then == Disposition::Duplicate)
}

/// Whether a post read back from X is the one konektly sent: same words once URLs are left out
/// (X rewrites links into t.co links and appends a link to attached media), HTML entities
/// undone, and leading @mentions X adds to replies ignored.
fn same_text(remote: &str, sent: &str) -> bool {
    let unescaped = remote.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let remote = text_without_urls(&unescaped);
    let sent = text_without_urls(sent);
    if remote == sent {
        return true;
    }
    if sent.starts_with('@') {
        return false;
    }
    let mut rest = remote.as_str();
    while let Some(r) = rest.strip_prefix('@') {
        match r.split_once(' ') {
            Some((_, tail)) => rest = tail,
            None => return false,
        }
        if rest == sent {
            return true;
        }
    }
    false
}

#[async_trait]
impl Platform for XPlatform {
    fn id(&self) -> PlatformId {
        PlatformId::new(PLATFORM_ID)
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn validate(&self, content: &Content, options: &TargetOptions) -> Vec<Violation> {
        crate::validate::validate(&self.caps, content, options)
    }

    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        Ok(self.cfg.oauth.authorization_request(redirect_uri, &self.cfg.scopes, " ", true, &[]))
    }

    async fn exchange_code(&self, code: &str, pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        let tokens =
            self.cfg.oauth.exchange_code(code, &pending.redirect_uri, pending.pkce_verifier.as_ref(), &[]).await?;
        let profile = self.fetch_profile(&tokens.access_token).await?;
        Ok(vec![AccountGrant::new(self.id(), profile, tokens)])
    }

    async fn refresh(&self, account: &Account) -> Result<TokenSet> {
        let Some(refresh_token) = &account.tokens.refresh_token else {
            return Err(Error::reauth("X gave no refresh token (offline.access was not granted): reconnect"));
        };
        // X's dialect reads its `invalid_request` for a dead refresh token as `ReauthRequired`.
        self.cfg.oauth.refresh(refresh_token, &[]).await
    }

    async fn revoke(&self, account: &Account) -> Result<()> {
        let access = self.cfg.oauth.revoke(account.tokens.access_token.expose(), Some("access_token")).await;
        let refresh = match &account.tokens.refresh_token {
            Some(rt) => self.cfg.oauth.revoke(rt.expose(), Some("refresh_token")).await,
            None => Ok(()),
        };
        access.and(refresh)
    }

    async fn profile(&self, account: &Account) -> Result<Profile> {
        self.fetch_profile(&account.tokens.access_token).await
    }

    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        self.run(ctx).await
    }

    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        // Polling continues where publishing stopped: the media status, then the posts.
        self.run(ctx).await
    }

    async fn publish_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        _index: usize,
        text: &str,
    ) -> Result<String> {
        // A reply from the same account: `POST /2/tweets` with `reply.in_reply_to_tweet_id`.
        let mut body = tweet_body(&XOptions::default(), 0, text, Vec::new(), None);
        body.reply = Some(TweetReply { in_reply_to_tweet_id: post.id.clone(), exclude_reply_user_ids: Vec::new() });
        let req = self.request(Method::POST, "/2/tweets", ctx.access_token())?.json(&body);
        let created: Data<CreatedTweet> =
            self.call_json(Some(ctx), req, CallKind::Create, "POST /2/tweets (reply)").await?;
        Ok(created.data.id)
    }

    async fn find_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        text: &str,
        sent_from: chrono::DateTime<Utc>,
    ) -> Result<Option<String>> {
        let window = crate::model::ItemState {
            first_sent_at: Some(sent_from),
            last_sent_at: Some(Utc::now()),
            ..Default::default()
        };
        let Some(posts) = self.window(ctx, &window).await? else {
            return Err(Error::UnknownOutcome {
                message: format!(
                    "the account posted more than {RECONCILE_PAGES} pages of posts since the reply was sent"
                ),
                source: None,
            });
        };
        Ok(posts
            .into_iter()
            .find(|p| {
                same_text(&p.text, text)
                    && p.referenced_tweets.iter().any(|r| r.kind == "replied_to" && r.id == post.id)
            })
            .map(|p| p.id))
    }

    async fn delete(&self, account: &Account, post: &RemotePost) -> Result<()> {
        // Its replies from the same account (first comments) first, then the thread, last first.
        let comments = post.comments.iter().filter_map(|c| c.id.as_ref());
        for id in comments.chain(post.thread_ids.iter().rev()).chain(std::iter::once(&post.id)) {
            let req = self.request(Method::DELETE, &format!("/2/tweets/{id}"), &account.tokens.access_token)?;
            match self.call(None, req, CallKind::Idempotent, "DELETE /2/tweets/{id}").await {
                Ok(_) => {}
                // Already gone.
                Err(e)
                    if std::error::Error::source(&e)
                        .and_then(|s| s.downcast_ref::<XApiError>())
                        .is_some_and(|a| classify(a).gone) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn post_metrics(
        &self,
        account: &Account,
        post: &RemotePost,
    ) -> Result<konektly_core::analytics::PostMetrics> {
        self.tweet_metrics(account, post).await
    }

    async fn account_metrics(&self, account: &Account) -> Result<konektly_core::analytics::AccountMetrics> {
        self.user_metrics(account).await
    }

    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        let opts: XOptions = ctx.typed_options()?;
        let content = ctx.content;
        let items = items(content);
        let mut state: XState = ctx.state()?;
        state.items.resize_with(items.len(), Default::default);
        let Some(i) = state.create_sent.item().or(state.duplicate).filter(|i| *i < items.len()) else {
            // No post was in flight: nothing can have landed that the checkpoint does not know.
            return Ok(if state.items.iter().all(|it| it.posted_id.is_some()) {
                Reconciliation::Published(self.remote(ctx.account, &state))
            } else {
                Reconciliation::NotFound
            });
        };
        let parent = if i == 0 { opts.reply_to.clone() } else { state.items[i - 1].posted_id.clone() };
        let Some(posts) = self.window(ctx, &state.items[i]).await? else {
            return Err(Error::UnknownOutcome {
                message: format!(
                    "the account posted more than {RECONCILE_PAGES} pages of posts around the lost create: whether it \
                     landed is still unknown"
                ),
                source: None,
            });
        };
        let matches: Vec<&crate::model::TimelineTweet> = posts
            .iter()
            .filter(|p| {
                same_text(&p.text, items[i].text)
                    && parent.as_ref().is_none_or(|parent| {
                        p.referenced_tweets.iter().any(|r| r.kind == "replied_to" && &r.id == parent)
                    })
            })
            .collect();
        if matches.len() > 1 {
            return Err(Error::UnknownOutcome {
                message: format!(
                    "{} posts with this text were created by the account around the lost create: konektly cannot \
                     tell which is this target's, and adopts none",
                    matches.len()
                ),
                source: None,
            });
        }
        match matches.first() {
            Some(p) => {
                tracing::info!(target: "konektly::x", item = i, id = %p.id, "reconcile: the post had landed");
                state.items[i].posted_id = Some(p.id.clone());
                state.create_sent.clear();
                state.duplicate = None;
                ctx.save_state(&state).await?;
                if state.items.iter().all(|it| it.posted_id.is_some()) {
                    Ok(Reconciliation::Published(self.remote(ctx.account, &state)))
                } else {
                    // The rest of the thread is published from the checkpoint.
                    Ok(Reconciliation::NotFound)
                }
            }
            // X said our own earlier create is there, but the timeline does not show it yet: the
            // outcome stays unknown (looked up again later; bounded by the engine).
            None if state.duplicate == Some(i) => Err(Error::UnknownOutcome {
                message: "X refused a repeat of this target's post as a duplicate, but the post was not found in \
                          the account's timeline yet"
                    .into(),
                source: None,
            }),
            None => {
                state.create_sent.clear();
                ctx.save_state(&state).await?;
                Ok(Reconciliation::NotFound)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_once_links_are_rewritten() {
        assert!(same_text("hello https://t.co/abc", "hello"));
        assert!(same_text("see https://t.co/1 now", "see https://example.com/long/path now"));
        assert!(same_text("a &amp; b &lt;3", "a & b <3"));
        assert!(same_text("@jack @bob thanks", "thanks"));
        assert!(!same_text("hello world", "hello"));
        assert!(!same_text("@jack thanks", "@bob thanks"));
    }
}
