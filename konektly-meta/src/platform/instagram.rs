//! `InstagramPlatform`: Instagram Login (`graph.instagram.com`) and content publishing through
//! containers (single image, carousel, Reels, Stories) for accounts reached by either login.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use konektly_core::ratelimit::{BudgetScope, RateLimitReport};
use konektly_core::{
    Account, AccountGrant, AuthorizationRequest, CallKind, Capabilities, Content, Error, Media, MediaKind, MediaSource,
    PendingAuthorization, Platform, PlatformId, Profile, PublishContext, PublishOutcome, Reconciliation, RemotePost,
    Result, TargetOptions, TokenSet, Violation, ViolationCode, oauth,
};
use serde_json::{Map, Value};
use url::Url;

use crate::client::{Host, MetaClient};
use crate::error::graph_error;
use crate::model::{
    ContainerStatus, IdBody, InstagramMedia, InstagramMediaKind, InstagramOptions, InstagramState, InstagramUser,
    ListBody, PublishingLimit,
};
use crate::platform::LOGIN_KEY;
use crate::validate::{instagram_capabilities, instagram_kind, instagram_needs_media_host, validate_instagram};

/// How a container's wait ended.
enum Wait {
    Finished,
    Published,
    TimedOut,
    /// Not published within 24 hours of its creation (a quota wait, a long outage): an expired
    /// container was never published — a published one reads `PUBLISHED`.
    Expired,
}

/// How many times a post starts over with new containers after one expired.
const MAX_EXPIRED_RESTARTS: u32 = 2;

/// Instagram professional accounts through the Graph API (`instagram`).
#[derive(Debug)]
pub struct InstagramPlatform {
    pub(crate) client: Arc<MetaClient>,
    caps: Capabilities,
}

fn is_instagram_login(account: &Account) -> bool {
    account.metadata.get(LOGIN_KEY).and_then(Value::as_str) == Some("instagram")
}

/// The 2207xxx code inside a container's `status` text, if any.
fn status_subcode(status: &str) -> Option<String> {
    status.split(|c: char| !c.is_ascii_digit()).find(|t| t.len() == 7 && t.starts_with("2207")).map(str::to_owned)
}

impl InstagramPlatform {
    pub(crate) fn new(client: Arc<MetaClient>) -> Self {
        let caps = instagram_capabilities(&client.cfg.limits);
        Self { client, caps }
    }

    /// The Graph host an account's calls go to.
    fn host(account: &Account) -> Host {
        if is_instagram_login(account) { Host::InstagramGraph } else { Host::Graph }
    }

    fn graph(&self, account: &Account, path: &str) -> Url {
        self.client.versioned(Self::host(account), path)
    }

    fn remote(&self, st: &InstagramState, id: &str) -> RemotePost {
        RemotePost::new(self.id(), id, st.permalink.clone())
    }

    /// Reads `content_publishing_limit`; a spent quota is `RateLimited`.
    async fn check_quota(&self, ctx: &PublishContext<'_>) -> Result<()> {
        let url = self.graph(ctx.account, &format!("{}/content_publishing_limit", ctx.account.remote_id));
        let body: ListBody<PublishingLimit> = self
            .client
            .get(
                url,
                Some(ctx.access_token()),
                &[("fields", "quota_usage,config")],
                Some(ctx),
                "reading the publishing limit",
            )
            .await?;
        let Some(limit) = body.data.into_iter().next() else { return Ok(()) };
        let (Some(used), Some(total)) = (limit.quota_usage, limit.config.as_ref().and_then(|c| c.quota_total)) else {
            return Ok(());
        };
        let now = Utc::now();
        let wait = chrono::Duration::from_std(self.client.cfg.quota_retry).unwrap_or(chrono::Duration::hours(1));
        let window = limit
            .config
            .and_then(|c| c.quota_duration)
            // An absurd window (`seconds` panics past i64::MAX ms) is read as a day.
            .and_then(|s| i64::try_from(s).ok())
            .and_then(chrono::Duration::try_seconds)
            .filter(|d| *d <= chrono::Duration::days(366))
            .unwrap_or(chrono::Duration::hours(24));
        let remaining = total.saturating_sub(used);
        ctx.report_rate_limit(RateLimitReport {
            scope: BudgetScope::Account,
            bucket: "instagram_content_publishing".into(),
            limit: Some(total),
            remaining,
            reset_at: now + if remaining == 0 { wait } else { window },
        });
        if remaining == 0 {
            return Err(Error::RateLimited {
                retry_at: Some(now + wait),
                message: format!(
                    "Instagram's publishing quota is spent ({used} of {total} posts in the last 24 hours)"
                ),
                source: None,
            });
        }
        Ok(())
    }

    async fn media_url(ctx: &PublishContext<'_>, media: &Media) -> Result<Url> {
        match &media.source {
            // Already public: Instagram fetches it itself.
            MediaSource::Url(u) => Ok(u.clone()),
            _ => ctx.media_host()?.url_for(media).await,
        }
    }

    /// Whether a video's bytes go to Instagram by resumable upload rather than by URL.
    fn resumable(ctx: &PublishContext<'_>, opts: &InstagramOptions, m: &Media) -> bool {
        m.kind() == MediaKind::Video
            && !is_instagram_login(ctx.account)
            && !matches!(m.source, MediaSource::Url(_))
            && opts.resumable_upload.unwrap_or_else(|| ctx.media_host().is_err())
    }

    /// Adds a video's source to a container's form: its URL, or `upload_type=resumable`.
    async fn video_source(
        ctx: &PublishContext<'_>,
        opts: &InstagramOptions,
        m: &Media,
        form: &mut Vec<(&'static str, String)>,
    ) -> Result<bool> {
        if Self::resumable(ctx, opts, m) {
            form.push(("upload_type", "resumable".into()));
            Ok(true)
        } else {
            form.push(("video_url", Self::media_url(ctx, m).await?.to_string()));
            Ok(false)
        }
    }

    async fn create_container(
        &self,
        ctx: &PublishContext<'_>,
        form: Vec<(&'static str, String)>,
        what: &str,
    ) -> Result<String> {
        let url = self.graph(ctx.account, &format!("{}/media", ctx.account.remote_id));
        let created: IdBody =
            self.client.post_form(url, ctx.access_token(), &form, CallKind::Create, Some(ctx), what).await?;
        Ok(created.id)
    }

    /// `user_tags` for the media item at `index`: Graph's JSON array of `{username, x, y}`
    /// (the position only where given).
    fn user_tags(opts: &InstagramOptions, index: usize, form: &mut Vec<(&'static str, String)>) {
        let tags: Vec<Value> = opts
            .user_tags
            .iter()
            .filter(|t| t.media_index == index)
            .map(|t| {
                let mut tag = serde_json::Map::new();
                tag.insert("username".into(), Value::from(t.graph_username()));
                if let Some(x) = t.x {
                    tag.insert("x".into(), Value::from(x));
                }
                if let Some(y) = t.y {
                    tag.insert("y".into(), Value::from(y));
                }
                Value::Object(tag)
            })
            .collect();
        if !tags.is_empty() {
            form.push(("user_tags", Value::from(tags).to_string()));
        }
    }

    /// The paid-partnership fields, on the post's own container (a carousel's parent).
    fn partnership(opts: &InstagramOptions, form: &mut Vec<(&'static str, String)>) {
        if !opts.branded_content_sponsor_ids.is_empty() {
            form.push((
                "branded_content_sponsor_ids",
                Value::from(opts.branded_content_sponsor_ids.clone()).to_string(),
            ));
        }
        if let Some(p) = opts.is_paid_partnership {
            form.push(("is_paid_partnership", p.to_string()));
        }
    }

    fn shared_fields(ctx: &PublishContext<'_>, opts: &InstagramOptions, form: &mut Vec<(&'static str, String)>) {
        Self::partnership(opts, form);
        if !ctx.content.text.is_empty() {
            form.push(("caption", ctx.content.text.clone()));
        }
        if let Some(l) = &opts.location_id {
            form.push(("location_id", l.clone()));
        }
        if !opts.collaborators.is_empty() {
            form.push(("collaborators", Value::from(opts.collaborators.clone()).to_string()));
        }
    }

    /// Waits for a container to reach `FINISHED` (or `PUBLISHED`), reading its status every
    /// interval until `deadline`. `ERROR` and `EXPIRED` end the attempt with the reason.
    async fn wait(
        &self,
        ctx: &PublishContext<'_>,
        container: &str,
        label: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Wait> {
        let interval = self.client.cfg.container_poll_interval;
        loop {
            let status: ContainerStatus = self
                .client
                .get(
                    self.graph(ctx.account, container),
                    Some(ctx.access_token()),
                    &[("fields", "status_code,status")],
                    Some(ctx),
                    "reading a container's status",
                )
                .await?;
            let detail = status.status.clone().unwrap_or_default();
            match status.status_code.as_deref() {
                Some("FINISHED") => return Ok(Wait::Finished),
                Some("PUBLISHED") => return Ok(Wait::Published),
                Some("ERROR") => {
                    return Err(Error::rejected(
                        Some(status_subcode(&detail).unwrap_or_else(|| "container_error".into())),
                        format!("Instagram could not process {label}: {detail}"),
                    ));
                }
                Some("EXPIRED") => return Ok(Wait::Expired),
                _ => {}
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Ok(Wait::TimedOut);
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// A container expired unpublished: start over with new containers (the next poll creates
    /// them), at most [`MAX_EXPIRED_RESTARTS`] times; then a clear refusal.
    async fn start_over(
        &self,
        ctx: &mut PublishContext<'_>,
        st: &InstagramState,
        label: &str,
    ) -> Result<PublishOutcome> {
        if st.expired_restarts >= MAX_EXPIRED_RESTARTS {
            return Err(Error::rejected(
                Some("container_expired".into()),
                format!(
                    "{label} expired: it was not published within 24 hours of its creation, {} times",
                    st.expired_restarts + 1
                ),
            ));
        }
        let fresh = InstagramState { expired_restarts: st.expired_restarts + 1, ..InstagramState::default() };
        ctx.save_state(&fresh).await?;
        tracing::info!(target: "konektly::instagram", label, "a container expired unpublished; creating new ones");
        Ok(PublishOutcome::processing(
            std::time::Duration::ZERO,
            format!("{label} expired before it was published (nothing was published); creating a new one"),
        ))
    }

    /// Creates what is missing, waits for every container, then publishes: resumable from the
    /// checkpoint at every step.
    async fn advance(&self, ctx: &mut PublishContext<'_>, check_quota: bool) -> Result<PublishOutcome> {
        let opts: InstagramOptions = ctx.typed_options()?;
        let mut st: InstagramState = ctx.state()?;
        if let Some(id) = &st.media_id {
            return Ok(PublishOutcome::Published(self.remote(&st, id)));
        }
        if st.create_sent.is_sent() {
            // The publish call may have landed: look before publishing again.
            match self.reconcile(ctx).await? {
                Reconciliation::Unknowable { reason } => {
                    return Err(Error::UnknownOutcome { message: reason, source: None });
                }
                Reconciliation::Published(r) => return Ok(PublishOutcome::Published(r)),
                Reconciliation::Processing { poll_after } => {
                    return Ok(PublishOutcome::Processing { poll_after, detail: None });
                }
                Reconciliation::NotFound => st = ctx.state()?,
            }
        }
        if check_quota {
            self.check_quota(ctx).await?;
        }
        let deadline = tokio::time::Instant::now() + self.client.cfg.container_poll_deadline;
        let media = ctx.content.media.clone();
        let kind = instagram_kind(ctx.content, &opts);
        if media.is_empty() {
            return Err(Error::InvalidPost(vec![Violation::new(
                ViolationCode::MediaRequired,
                "media",
                "Instagram needs media",
            )]));
        }
        // Uploads interrupted by a restart are finished first.
        self.flush_uploads(ctx, &mut st).await?;
        let container = match st.container.clone() {
            Some(container) => container,
            None => {
                let mut form: Vec<(&'static str, String)> = Vec::new();
                let mut resumable = false;
                match kind {
                    InstagramMediaKind::Feed if media.len() > 1 => {
                        for (i, m) in media.iter().enumerate().skip(st.children.len()) {
                            let mut child: Vec<(&'static str, String)> = vec![("is_carousel_item", "true".into())];
                            let mut resumable = false;
                            if m.kind() == MediaKind::Video {
                                child.push(("media_type", "VIDEO".into()));
                                resumable = Self::video_source(ctx, &opts, m, &mut child).await?;
                            } else {
                                child.push(("image_url", Self::media_url(ctx, m).await?.to_string()));
                                if let Some(alt) = &m.alt_text {
                                    child.push(("alt_text", alt.clone()));
                                }
                                // Tags go on the image they are on (videos in a carousel take none).
                                Self::user_tags(&opts, i, &mut child);
                            }
                            let id =
                                self.create_container(ctx, child, &format!("creating carousel item {}", i + 1)).await?;
                            if resumable {
                                st.uploads_pending.push(id.clone());
                            }
                            st.children.push(id);
                            ctx.save_state(&st).await?;
                        }
                        self.flush_uploads(ctx, &mut st).await?;
                        for (i, child) in st.children.iter().enumerate() {
                            let label = format!("carousel item {}", i + 1);
                            match self.wait(ctx, child, &label, deadline).await? {
                                Wait::TimedOut => {
                                    return Ok(PublishOutcome::processing(
                                        self.client.cfg.container_poll_interval,
                                        format!("waiting for {label}"),
                                    ));
                                }
                                Wait::Expired => return self.start_over(ctx, &st, &label).await,
                                Wait::Finished | Wait::Published => {}
                            }
                        }
                        form.push(("media_type", "CAROUSEL".into()));
                        form.push(("children", st.children.join(",")));
                        Self::shared_fields(ctx, &opts, &mut form);
                    }
                    InstagramMediaKind::Feed => {
                        let m = &media[0];
                        if m.kind() == MediaKind::Video {
                            return Err(Error::InvalidPost(vec![Violation::new(
                                ViolationCode::VideoMustBeReel,
                                "media[0]",
                                "a single Instagram video is published as a Reel",
                            )]));
                        }
                        form.push(("image_url", Self::media_url(ctx, m).await?.to_string()));
                        if let Some(alt) = &m.alt_text {
                            form.push(("alt_text", alt.clone()));
                        }
                        Self::user_tags(&opts, 0, &mut form);
                        Self::shared_fields(ctx, &opts, &mut form);
                    }
                    InstagramMediaKind::Reel => {
                        // Never standalone VIDEO: Instagram publishes single videos as Reels.
                        form.push(("media_type", "REELS".into()));
                        resumable = Self::video_source(ctx, &opts, &media[0], &mut form).await?;
                        Self::user_tags(&opts, 0, &mut form);
                        Self::shared_fields(ctx, &opts, &mut form);
                        if let Some(s) = opts.share_to_feed {
                            form.push(("share_to_feed", s.to_string()));
                        }
                        if let Some(c) = &opts.cover_url {
                            form.push(("cover_url", c.to_string()));
                        }
                        if let Some(t) = opts.thumb_offset_ms {
                            form.push(("thumb_offset", t.to_string()));
                        }
                        if let Some(a) = &opts.audio_name {
                            form.push(("audio_name", a.clone()));
                        }
                        if let Some(t) = &opts.trial_params {
                            form.push((
                                "trial_params",
                                serde_json::to_string(t).map_err(|e| {
                                    konektly_core::Error::rejected(None, format!("trial_params do not serialize: {e}"))
                                })?,
                            ));
                        }
                    }
                    InstagramMediaKind::Story => {
                        let m = &media[0];
                        form.push(("media_type", "STORIES".into()));
                        if m.kind() == MediaKind::Video {
                            resumable = Self::video_source(ctx, &opts, m, &mut form).await?;
                        } else {
                            form.push(("image_url", Self::media_url(ctx, m).await?.to_string()));
                        }
                        Self::user_tags(&opts, 0, &mut form);
                        Self::partnership(&opts, &mut form);
                    }
                }
                let id = self.create_container(ctx, form, "creating the media container").await?;
                if resumable {
                    st.uploads_pending.push(id.clone());
                }
                st.container = Some(id.clone());
                ctx.save_state(&st).await?;
                self.flush_uploads(ctx, &mut st).await?;
                id
            }
        };
        match self.wait(ctx, &container, "the media container", deadline).await? {
            Wait::TimedOut => {
                return Ok(PublishOutcome::processing(
                    self.client.cfg.container_poll_interval,
                    "waiting for the media container",
                ));
            }
            Wait::Expired => return self.start_over(ctx, &st, "the media container").await,
            Wait::Published => {
                st.create_sent.mark();
                ctx.before_create(&st).await?;
                return match self.reconcile(ctx).await? {
                    Reconciliation::Published(r) => Ok(PublishOutcome::Published(r)),
                    _ => Err(Error::transient("the container was published but its media was not found yet")),
                };
            }
            Wait::Finished => {}
        }
        st.create_sent.mark();
        ctx.before_create(&st).await?;
        let url = self.graph(ctx.account, &format!("{}/media_publish", ctx.account.remote_id));
        let published: Result<IdBody> = self
            .client
            .post_form(
                url,
                ctx.access_token(),
                &[("creation_id", container.clone())],
                CallKind::Create,
                Some(&*ctx),
                "publishing the container",
            )
            .await;
        let published = match published {
            Ok(p) => p,
            Err(e) if graph_error(&e).is_some_and(|g| g.is_not_ready()) => {
                // 9007 / 2207027: not ready after all; nothing was published.
                st.create_sent.clear();
                ctx.save_state(&st).await?;
                return Ok(PublishOutcome::processing(
                    self.client.cfg.container_poll_interval,
                    "the media is not ready yet",
                ));
            }
            Err(e @ Error::UnknownOutcome { .. }) => return Err(e),
            Err(e) => {
                // Refused outright (a spent quota…): nothing was published, nothing to look for.
                st.create_sent.clear();
                ctx.save_state(&st).await?;
                return Err(e);
            }
        };
        st.media_id = Some(published.id.clone());
        ctx.save_state(&st).await?;
        // The permalink is a nicety: a failure to read it does not fail the post.
        if let Ok(m) = self
            .client
            .get::<InstagramMedia>(
                self.graph(ctx.account, &published.id),
                Some(ctx.access_token()),
                &[("fields", "id,permalink")],
                Some(&*ctx),
                "reading the permalink",
            )
            .await
        {
            st.permalink = m.permalink;
            ctx.save_state(&st).await?;
        }
        Ok(PublishOutcome::Published(self.remote(&st, &published.id)))
    }

    /// The media a published container became: matched by caption among the newest media.
    async fn find_published(&self, ctx: &PublishContext<'_>) -> Result<Option<InstagramMedia>> {
        let url = self.graph(ctx.account, &format!("{}/media", ctx.account.remote_id));
        let list: ListBody<InstagramMedia> = self
            .client
            .get(
                url,
                Some(ctx.access_token()),
                &[("fields", "id,caption,permalink,timestamp"), ("limit", "10")],
                Some(ctx),
                "listing recent media",
            )
            .await?;
        let text = ctx.content.text.trim();
        let since = ctx.attempt_started_at - chrono::Duration::minutes(1);
        let recent = |m: &InstagramMedia| {
            m.timestamp
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%z").ok())
                .is_none_or(|t| t >= since)
        };
        let mut candidates = list.data.into_iter().filter(|m| recent(m));
        Ok(candidates.find(|m| m.caption.as_deref().unwrap_or("").trim() == text))
    }
}

#[async_trait]
impl Platform for InstagramPlatform {
    fn id(&self) -> PlatformId {
        PlatformId::new("instagram")
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn validate(&self, content: &Content, options: &TargetOptions) -> Vec<Violation> {
        validate_instagram(&self.client.cfg.limits, content, options)
    }

    /// Images are always fetched by URL; videos too unless their bytes go by resumable upload.
    fn needs_media_host(&self, content: &Content, options: &TargetOptions) -> bool {
        instagram_needs_media_host(content, options)
    }

    /// An account connected through Instagram Login cannot use the resumable upload (it needs
    /// a Facebook Login token): its local videos go by URL too.
    fn needs_media_host_for(&self, account: &Account, content: &Content, options: &TargetOptions) -> bool {
        if is_instagram_login(account) {
            return content.media.iter().any(|m| !matches!(m.source, konektly_core::MediaSource::Url(_)));
        }
        instagram_needs_media_host(content, options)
    }

    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        let cfg = &self.client.cfg;
        let app_id = cfg.instagram_app_id.as_deref().ok_or_else(|| {
            Error::Config(
                "Instagram Login needs the Instagram app (with_instagram_app); accounts linked to a Page connect \
                 through Facebook Login"
                    .into(),
            )
        })?;
        let state = oauth::random_state();
        let mut url = self.client.url(Host::InstagramWww, "oauth/authorize");
        url.query_pairs_mut()
            .append_pair("client_id", app_id)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("response_type", "code")
            .append_pair("scope", &cfg.instagram_scopes.join(","))
            .append_pair("state", &state);
        let pkce_verifier = cfg.instagram_pkce.then(|| oauth::add_pkce_s256(&mut url));
        Ok(AuthorizationRequest { url, state, pkce_verifier })
    }

    async fn exchange_code(&self, code: &str, pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        // The redirect may carry a trailing `#_`; the code never contains it.
        let code = code.trim_end_matches("#_");
        let short =
            self.client.instagram_exchange_code(code, &pending.redirect_uri, pending.pkce_verifier.as_ref()).await?;
        let long = self.client.instagram_long_lived(&short.tokens.access_token).await?.tokens;
        let token = long.access_token.clone();
        let me: InstagramUser = self
            .client
            .get(
                self.client.versioned(Host::InstagramGraph, "me"),
                Some(&token),
                &[("fields", "user_id,username,name,profile_picture_url")],
                None,
                "reading the Instagram account",
            )
            .await?;
        let remote_id = me.user_id.or(short.user_id).unwrap_or(me.id);
        let mut metadata = Map::new();
        metadata.insert(LOGIN_KEY.into(), "instagram".into());
        // A 60-day token that dies unless refreshed: the engine refreshes it days ahead.
        metadata.insert(
            konektly_core::REFRESH_AHEAD_KEY.into(),
            Value::from(self.client.cfg.instagram_refresh_ahead.as_secs()),
        );
        Ok(vec![AccountGrant {
            platform: self.id(),
            profile: Profile {
                remote_id,
                handle: me.username,
                display_name: me.name,
                avatar_url: me.profile_picture_url,
            },
            tokens: TokenSet { scopes: short.tokens.scopes, ..long },
            parent_remote_id: None,
            metadata,
        }])
    }

    async fn refresh(&self, account: &Account) -> Result<TokenSet> {
        if !is_instagram_login(account) {
            return Err(Error::reauth(
                "this Instagram account uses its Page's token, which cannot be refreshed: connect the Page again",
            ));
        }
        Ok(self.client.instagram_refresh(&account.tokens.access_token).await?.tokens)
    }

    async fn revoke(&self, _account: &Account) -> Result<()> {
        Err(Error::NotSupported(
            "Instagram has no token revocation endpoint; the user removes the app in the account's settings".into(),
        ))
    }

    async fn profile(&self, account: &Account) -> Result<Profile> {
        let (path, fields) = if is_instagram_login(account) {
            ("me".to_owned(), "user_id,username,name,profile_picture_url")
        } else {
            (account.remote_id.clone(), "id,username,name,profile_picture_url")
        };
        let me: InstagramUser = self
            .client
            .get(
                self.graph(account, &path),
                Some(&account.tokens.access_token),
                &[("fields", fields)],
                None,
                "reading the profile",
            )
            .await?;
        Ok(Profile {
            remote_id: me.user_id.unwrap_or(me.id),
            handle: me.username,
            display_name: me.name,
            avatar_url: me.profile_picture_url,
        })
    }

    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        // The quota is read first (after a look for a publish that may have landed already).
        self.advance(ctx, true).await
    }

    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        self.advance(ctx, false).await
    }

    async fn delete(&self, _account: &Account, _post: &RemotePost) -> Result<()> {
        Err(Error::NotSupported("the Instagram API does not delete published media".into()))
    }

    async fn publish_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        _index: usize,
        text: &str,
    ) -> Result<String> {
        // `POST /{ig-media-id}/comments?message=…`: a comment by the account on its own media.
        let url = self.graph(ctx.account, &format!("{}/comments", post.id));
        let form = [("message", text.to_owned())];
        let token = ctx.access_token().clone();
        let created: IdBody =
            self.client.post_form(url, &token, &form, CallKind::Create, Some(ctx), "commenting on the media").await?;
        Ok(created.id)
    }

    async fn find_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        text: &str,
        _sent_from: chrono::DateTime<Utc>,
    ) -> Result<Option<String>> {
        let account = ctx.account;
        let handle = account.handle.as_deref().map(|h| h.trim_start_matches('@').to_owned());
        crate::platform::find_comment(
            &self.client,
            Self::host(account),
            ctx,
            &post.id,
            "id,text,username,from{id}",
            |c| {
                let by_us = c.from.as_ref().is_some_and(|f| f.id == account.remote_id)
                    || (c.username.is_some() && c.username == handle);
                by_us && c.text.as_deref() == Some(text)
            },
        )
        .await
    }

    async fn post_metrics(
        &self,
        account: &Account,
        post: &RemotePost,
    ) -> Result<konektly_core::analytics::PostMetrics> {
        let url = self.graph(account, &post.id);
        let q = [("fields", "like_count,comments_count")];
        let v: serde_json::Value =
            self.client.get(url, Some(&account.tokens.access_token), &q, None, "reading the media's counts").await?;
        Ok(crate::analytics::ig_media_metrics(&v))
    }

    async fn account_metrics(&self, account: &Account) -> Result<konektly_core::analytics::AccountMetrics> {
        let url = self.graph(account, &account.remote_id);
        let q = [("fields", "followers_count,follows_count,media_count")];
        let v: serde_json::Value =
            self.client.get(url, Some(&account.tokens.access_token), &q, None, "reading the account's counts").await?;
        Ok(crate::analytics::account_metrics_of(&v))
    }

    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        let mut st: InstagramState = ctx.state()?;
        if let Some(id) = &st.media_id {
            return Ok(Reconciliation::Published(self.remote(&st, id)));
        }
        let Some(container) = st.container.clone() else { return Ok(Reconciliation::NotFound) };
        if !st.create_sent.is_sent() {
            // Containers are kept in the checkpoint: publishing again resumes with them.
            return Ok(Reconciliation::NotFound);
        }
        let status: ContainerStatus = self
            .client
            .get(
                self.graph(ctx.account, &container),
                Some(ctx.access_token()),
                &[("fields", "status_code,status")],
                Some(&*ctx),
                "reading a container's status",
            )
            .await?;
        if status.status_code.as_deref() != Some("PUBLISHED") {
            st.create_sent.clear();
            ctx.save_state(&st).await?;
            return Ok(Reconciliation::NotFound);
        }
        let found = self.find_published(ctx).await?;
        let (id, permalink) = match found {
            Some(m) => (m.id, m.permalink),
            // Published, but not found among the newest media (a Story): the container stands in.
            None => (container, None),
        };
        st.media_id = Some(id.clone());
        st.permalink = permalink;
        ctx.save_state(&st).await?;
        Ok(Reconciliation::Published(self.remote(&st, &id)))
    }
}
