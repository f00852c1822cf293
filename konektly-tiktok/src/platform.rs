//! [`TikTokPlatform`]: konektly's `Platform` for TikTok.

use std::fmt;
use std::time::Duration;

use chrono::Utc;
use konektly_core::oauth::{pkce_pair, random_state};
use konektly_core::ratelimit::DeclaredBudget;
use konektly_core::{
    Account, AccountGrant, AuthorizationRequest, Capabilities, Content, Error, HttpClient, Media, MediaSource,
    PendingAuthorization, Platform, PlatformId, Profile, PublishContext, PublishOutcome, Reconciliation, RemotePost,
    Result, TargetOptions, TokenSet, Violation, ViolationCode, async_trait,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::client::{TikTokClient, path};
use crate::config::{Config, Pkce, RateLimits};
use crate::error::map_fail_reason;
use crate::model::{CreatorInfo, Kind, PostMode, PrivacyLevel, Source, State, StatusData, TikTokOptions, VideoSource};
use crate::upload::{ChunkPlan, is_url_expired};
use crate::validate::{capabilities, is_photo_post, needs_media_host, validate};

/// The platform id.
pub const PLATFORM_ID: &str = "tiktok";

/// TikTok: Login Kit v2 and the Content Posting API. Build it with
/// [`TikTokBuilder`](crate::TikTokBuilder).
pub struct TikTokPlatform {
    pub(crate) client: TikTokClient,
    caps: Capabilities,
}

impl fmt::Debug for TikTokPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TikTokPlatform").field("config", &self.client.config).finish_non_exhaustive()
    }
}

/// The budgets declared to the engine: TikTok's sliding-window limits as even spacing.
pub(crate) fn budgets(r: &RateLimits) -> Vec<DeclaredBudget> {
    let spacing = |n: u32| r.window.div_f64(f64::from(n)).mul_f64(1.0 + r.margin);
    vec![
        DeclaredBudget::per_account("post_init", 1, spacing(r.post_inits)).spending(1, 0),
        DeclaredBudget::per_account("creator_info", 1, spacing(r.creator_info)).spending(1, 0),
        DeclaredBudget::per_account("status_fetch", 1, spacing(r.status_fetches)).spending(0, 1),
    ]
}

fn hex_challenge(verifier: &str) -> String {
    Sha256::digest(verifier.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl TikTokPlatform {
    pub(crate) fn new(config: Config, http: HttpClient) -> Self {
        let caps = capabilities(budgets(&config.rate_limits));
        Self { client: TikTokClient { config, http }, caps }
    }

    fn id_() -> PlatformId {
        PlatformId::new(PLATFORM_ID)
    }

    fn cfg(&self) -> &Config {
        &self.client.config
    }

    /// Checks a creator's answer against the post: who may see it, how long it may be, and
    /// whether they can post at all now.
    fn check_creator(info: &CreatorInfo, opts: &TikTokOptions, content: &Content, kind: Kind) -> Result<()> {
        if info.privacy_level_options.is_empty() {
            return Err(Error::rejected(
                Some("creator_cannot_post".into()),
                "this TikTok creator cannot post right now (TikTok offers no privacy level); try again later",
            ));
        }
        let mut v = Vec::new();
        if let Some(level) = opts.privacy_level
            && !info.privacy_level_options.iter().any(|o| o == level.as_str())
        {
            v.push(
                Violation::new(
                    ViolationCode::PrivacyLevelNotAllowed,
                    "options.privacy_level",
                    "the creator cannot use this privacy level now; choose one of their privacy_level_options",
                )
                .with_values(info.privacy_level_options.join(", "), level.as_str()),
            );
        }
        if kind == Kind::DirectVideo
            && let (Some(max), Some(d)) =
                (info.max_video_post_duration_sec, content.media.first().and_then(|m| m.duration))
            && d > Duration::from_secs(max)
        {
            v.push(
                Violation::new(
                    ViolationCode::VideoTooLong,
                    "media[0]",
                    "the video is longer than this creator may post",
                )
                .with_values(format!("{max}s"), format!("{:.1}s", d.as_secs_f64())),
            );
        }
        if v.is_empty() { Ok(()) } else { Err(Error::InvalidPost(v)) }
    }

    fn video_source(opts: &TikTokOptions, media: &Media) -> Source {
        match opts.video_source {
            VideoSource::FileUpload => Source::FileUpload,
            VideoSource::PullFromUrl => Source::PullFromUrl,
            VideoSource::Auto => match media.source {
                MediaSource::Url(_) => Source::PullFromUrl,
                _ => Source::FileUpload,
            },
        }
    }

    /// The URL TikTok pulls `media` from: its own when it is already at one, else the
    /// `MediaHost`'s (a `Config` error when none is configured; validation refuses that offline).
    async fn pull_url(ctx: &PublishContext<'_>, media: &Media) -> Result<Url> {
        match &media.source {
            MediaSource::Url(u) => Ok(u.clone()),
            _ => ctx.media_host()?.url_for(media).await,
        }
    }

    fn post_url(state: &State, id: &str) -> Option<Url> {
        let user = state.username.as_deref().filter(|u| !u.is_empty())?;
        let what = if state.kind == Kind::Photo { "photo" } else { "video" };
        Url::parse(&format!("https://www.tiktok.com/@{user}/{what}/{id}")).ok()
    }
    /// What a status says, as an outcome. May save the time `PUBLISH_COMPLETE` was first seen.
    async fn outcome(&self, ctx: &mut PublishContext<'_>, state: &mut State, st: StatusData) -> Result<PublishOutcome> {
        let pid = state.publish_id.clone().unwrap_or_default();
        let after = self.cfg().poll_interval;
        match st.status.as_str() {
            "PUBLISH_COMPLETE" => {
                let ids = st.post_ids();
                if let Some(first) = ids.first() {
                    let mut remote = RemotePost::new(Self::id_(), first.clone(), Self::post_url(state, first));
                    remote.thread_ids = ids[1..].to_vec();
                    return Ok(PublishOutcome::Published(remote));
                }
                let may_get_id = state.kind != Kind::InboxVideo && state.privacy_level != Some(PrivacyLevel::SelfOnly);
                let now = Utc::now();
                let since = match state.complete_seen_at {
                    Some(t) => t,
                    None => {
                        state.complete_seen_at = Some(now);
                        ctx.save_state(&*state).await?;
                        now
                    }
                };
                let waited = (now - since).to_std().unwrap_or_default();
                if may_get_id && waited < self.cfg().post_id_wait {
                    return Ok(PublishOutcome::processing(
                        after,
                        "published; waiting for TikTok's moderation to give the post id",
                    ));
                }
                Ok(PublishOutcome::Published(RemotePost::new(Self::id_(), pid, None)))
            }
            "SEND_TO_USER_INBOX" => Ok(PublishOutcome::Published(RemotePost::new(Self::id_(), pid, None))),
            "FAILED" => Err(map_fail_reason(st.fail_reason.as_deref().unwrap_or("unknown"), &pid)),
            "PROCESSING_DOWNLOAD" => Ok(PublishOutcome::processing(after, "TikTok is downloading the media")),
            _ => Ok(PublishOutcome::processing(after, "TikTok is processing the upload")),
        }
    }

    /// The upload URL expired before the upload ended (TikTok answered `404`): the unfinished
    /// publish is dropped (TikTok never publishes one without all its bytes) and the upload
    /// starts over once with a new publish id; a second expiry is the error.
    async fn start_over(&self, ctx: &mut PublishContext<'_>, opts: &TikTokOptions, e: Error) -> Result<PublishOutcome> {
        if ctx.state::<State>()?.restarted {
            return Err(e);
        }
        tracing::info!(target: "konektly::tiktok", "the upload URL expired early: starting the upload over");
        ctx.save_state(&State { restarted: true, ..State::default() }).await?;
        self.start(ctx, opts).await
    }

    async fn start(&self, ctx: &mut PublishContext<'_>, opts: &TikTokOptions) -> Result<PublishOutcome> {
        let content = ctx.content;
        let token = ctx.access_token().clone();
        let kind = if is_photo_post(content) {
            Kind::Photo
        } else if opts.mode == PostMode::Inbox {
            Kind::InboxVideo
        } else {
            Kind::DirectVideo
        };
        let scope = if opts.mode == PostMode::DirectPost { "video.publish" } else { "video.upload" };
        let granted = &ctx.account.tokens.scopes;
        if !granted.is_empty() && !granted.iter().any(|s| s == scope) {
            return Err(Error::reauth(format!(
                "the TikTok account did not grant `{scope}`; reconnect it and allow posting"
            )));
        }

        let restarted = ctx.state::<State>()?.restarted;
        let mut state = State { kind, privacy_level: opts.privacy_level, restarted, ..State::default() };
        let mut creator = CreatorInfo::default();
        if opts.mode == PostMode::DirectPost {
            creator = self.client.creator_info(&token).await?;
            Self::check_creator(&creator, opts, content, kind)?;
            state.username = creator.creator_username.clone();
        }

        let (init_path, body) = match kind {
            Kind::Photo => {
                let mut urls = Vec::with_capacity(content.media.len());
                for m in &content.media {
                    urls.push(Self::pull_url(ctx, m).await?.to_string());
                }
                state.source = Source::PullFromUrl;
                let mut post_info = json!({
                    "title": opts.photo_title.clone().unwrap_or_default(),
                    "description": content.text,
                    "disable_comment": opts.disable_comment || creator.comment_disabled,
                    "auto_add_music": opts.auto_add_music,
                    "brand_content_toggle": opts.brand_content_toggle,
                    "brand_organic_toggle": opts.brand_organic_toggle,
                });
                if let Some(p) = opts.privacy_level {
                    post_info["privacy_level"] = json!(p.as_str());
                }
                let mode = if opts.mode == PostMode::DirectPost { "DIRECT_POST" } else { "MEDIA_UPLOAD" };
                let body = json!({
                    "media_type": "PHOTO",
                    "post_mode": mode,
                    "post_info": post_info,
                    "source_info": {
                        "source": "PULL_FROM_URL",
                        "photo_images": urls,
                        "photo_cover_index": opts.photo_cover_index,
                    },
                });
                (path::CONTENT_INIT, body)
            }
            Kind::DirectVideo | Kind::InboxVideo => {
                let media = content.media.first().ok_or_else(|| Error::Config("no video to post".into()))?;
                state.source = Self::video_source(opts, media);
                let source_info = match state.source {
                    Source::FileUpload => {
                        let plan = ChunkPlan::new(media.require_size()?, self.cfg().chunk_size)?;
                        state.video_size = plan.video_size;
                        state.chunk_size = plan.chunk_size;
                        state.total_chunks = plan.total_chunks;
                        json!({
                            "source": "FILE_UPLOAD",
                            "video_size": plan.video_size,
                            "chunk_size": plan.chunk_size,
                            "total_chunk_count": plan.total_chunks,
                        })
                    }
                    Source::PullFromUrl => {
                        let url = Self::pull_url(ctx, media).await?;
                        json!({ "source": "PULL_FROM_URL", "video_url": url.as_str() })
                    }
                };
                if kind == Kind::InboxVideo {
                    (path::INBOX_VIDEO_INIT, json!({ "source_info": source_info }))
                } else {
                    let mut post_info = json!({
                        "title": content.text,
                        "privacy_level": opts.privacy_level.map(PrivacyLevel::as_str),
                        "disable_duet": opts.disable_duet || creator.duet_disabled,
                        "disable_comment": opts.disable_comment || creator.comment_disabled,
                        "disable_stitch": opts.disable_stitch || creator.stitch_disabled,
                        "brand_content_toggle": opts.brand_content_toggle,
                        "brand_organic_toggle": opts.brand_organic_toggle,
                        "is_aigc": opts.is_aigc,
                    });
                    if let Some(ms) = opts.video_cover_timestamp_ms {
                        post_info["video_cover_timestamp_ms"] = Value::from(ms);
                    }
                    (path::VIDEO_INIT, json!({ "post_info": post_info, "source_info": source_info }))
                }
            }
        };

        // Saved before the init: if the answer is lost, reconcile knows an init may have landed.
        state.create_sent.mark();
        ctx.before_create(&state).await?;
        let init = self.client.init(init_path, &token, &body).await?;
        state.publish_id = Some(init.publish_id);
        state.upload_url = init.upload_url;
        state.upload_started_at = Some(Utc::now());
        ctx.save_state(&state).await?;
        tracing::debug!(target: "konektly::tiktok", publish_id = ?state.publish_id, kind = ?state.kind, "post initialised");

        if state.source == Source::FileUpload {
            if state.upload_url.is_none() {
                // Nothing can be sent to this publish: start over next time.
                ctx.save_state(&State::default()).await?;
                return Err(Error::transient("TikTok accepted the upload but gave no upload URL"));
            }
            self.upload(ctx, &mut state).await?;
        }
        Ok(PublishOutcome::processing(self.cfg().poll_interval, "TikTok is processing the post"))
    }
}

#[async_trait]
impl Platform for TikTokPlatform {
    fn id(&self) -> PlatformId {
        Self::id_()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn validate(&self, content: &Content, options: &TargetOptions) -> Vec<Violation> {
        validate(&self.caps, content, options)
    }

    /// Photo posts and pull-from-URL videos are fetched by TikTok: they need a `MediaHost` when
    /// some of their media are local. Uploaded videos never do.
    fn needs_media_host(&self, content: &Content, options: &TargetOptions) -> bool {
        needs_media_host(content, options)
    }

    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        let state = random_state();
        let (verifier, challenge) = match self.cfg().pkce {
            Pkce::Off => (None, None),
            Pkce::S256 => {
                let (v, c) = pkce_pair();
                (Some(v), Some(c))
            }
            Pkce::S256Hex => {
                let (v, _) = pkce_pair();
                let c = hex_challenge(v.expose());
                (Some(v), Some(c))
            }
        };
        let url = self.client.authorize_url(redirect_uri, &state, challenge.as_deref())?;
        Ok(AuthorizationRequest { url, state, pkce_verifier: verifier })
    }

    async fn exchange_code(&self, code: &str, pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        let grant = self.client.exchange_code(code, &pending.redirect_uri, pending.pkce_verifier.as_ref()).await?;
        let scopes = &grant.tokens.scopes;
        if !scopes.is_empty() {
            let has = |s: &str| scopes.iter().any(|g| g == s);
            if !has("user.info.basic") {
                return Err(Error::Authorization(
                    "the user did not grant `user.info.basic`, which connecting needs; ask them to allow it".into(),
                ));
            }
            if !has("video.publish") && !has("video.upload") {
                return Err(Error::Authorization(
                    "the user granted neither `video.publish` nor `video.upload`: nothing could be posted; ask them to allow posting".into(),
                ));
            }
        }
        let user = self.client.user_info(&grant.tokens.access_token).await?;
        let remote_id = user
            .open_id
            .clone()
            .or(grant.open_id.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::transient("TikTok did not say who connected (no open_id)"))?;
        let profile = Profile {
            remote_id,
            handle: user.username.clone(),
            display_name: user.display_name.clone(),
            avatar_url: user.avatar_url.as_deref().and_then(|u| Url::parse(u).ok()),
        };
        Ok(vec![AccountGrant::new(Self::id_(), profile, grant.tokens)])
    }

    async fn refresh(&self, account: &Account) -> Result<TokenSet> {
        let Some(rt) = &account.tokens.refresh_token else {
            return Err(Error::reauth("the TikTok account has no refresh token; reconnect it"));
        };
        if account.tokens.refresh_expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(Error::reauth("the TikTok refresh token expired; reconnect the account"));
        }
        Ok(self.client.refresh(rt).await?.tokens)
    }

    async fn revoke(&self, account: &Account) -> Result<()> {
        self.client.revoke(&account.tokens.access_token).await
    }

    async fn profile(&self, account: &Account) -> Result<Profile> {
        let user = self.client.user_info(&account.tokens.access_token).await?;
        Ok(Profile {
            remote_id: user.open_id.unwrap_or_else(|| account.remote_id.clone()),
            handle: user.username,
            display_name: user.display_name,
            avatar_url: user.avatar_url.as_deref().and_then(|u| Url::parse(u).ok()),
        })
    }

    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let opts: TikTokOptions = ctx.typed_options()?;
        let violations = validate(&self.caps, ctx.content, ctx.options);
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let mut state: State = ctx.state()?;
        if state.publish_id.is_some() {
            if state.upload_complete() {
                return Ok(PublishOutcome::processing(self.cfg().poll_interval, "TikTok is processing the post"));
            }
            let fresh = state
                .upload_started_at
                .is_some_and(|t| (Utc::now() - t).to_std().unwrap_or_default() < self.cfg().upload_url_ttl);
            if fresh {
                return match self.upload(ctx, &mut state).await {
                    Ok(()) => Ok(PublishOutcome::processing(self.cfg().poll_interval, "TikTok is processing the post")),
                    Err(e) if is_url_expired(&e) => self.start_over(ctx, &opts, e).await,
                    Err(e) => Err(e),
                };
            }
            // The upload URL is stale: the unfinished publish is dropped and a new one begins.
            ctx.save_state(&State { restarted: state.restarted, ..State::default() }).await?;
        }
        match self.start(ctx, &opts).await {
            Err(e) if is_url_expired(&e) => self.start_over(ctx, &opts, e).await,
            other => other,
        }
    }

    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let mut state: State = ctx.state()?;
        let Some(pid) = state.publish_id.clone() else {
            return Err(Error::transient("nothing to poll: no TikTok publish_id was saved"));
        };
        let st = self.client.status(ctx.access_token(), &pid).await?;
        self.outcome(ctx, &mut state, st).await
    }

    async fn delete(&self, _account: &Account, _post: &RemotePost) -> Result<()> {
        Err(Error::NotSupported("TikTok's API cannot delete posts; delete it in the TikTok app".into()))
    }

    async fn post_metrics(
        &self,
        account: &Account,
        post: &RemotePost,
    ) -> Result<konektly_core::analytics::PostMetrics> {
        self.tiktok_video_metrics(account, post).await
    }

    async fn account_metrics(&self, account: &Account) -> Result<konektly_core::analytics::AccountMetrics> {
        self.tiktok_account_metrics(account).await
    }

    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        let mut state: State = ctx.state()?;
        let Some(pid) = state.publish_id.clone() else {
            if !state.create_sent.is_sent() || state.source == Source::FileUpload {
                // No init, or an upload session that never got bytes (TikTok drops it).
                return Ok(Reconciliation::NotFound);
            }
            return Ok(Reconciliation::Unknowable {
                reason: "TikTok may have received this post (the answer to its init was lost) and offers no way \
                         to check; look at the creator's TikTok profile"
                    .into(),
            });
        };
        if !state.upload_complete() {
            // The upload resumes from its checkpoint.
            return Ok(Reconciliation::NotFound);
        }
        let st = self.client.status(ctx.access_token(), &pid).await?;
        match self.outcome(ctx, &mut state, st).await? {
            PublishOutcome::Published(remote) => Ok(Reconciliation::Published(remote)),
            PublishOutcome::Processing { poll_after, .. } => Ok(Reconciliation::Processing { poll_after }),
        }
    }
}
