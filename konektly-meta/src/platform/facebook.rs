//! `FacebookPagePlatform`: Facebook Login (user → Pages → linked Instagram accounts) and
//! publishing to a Page (text, links, photos, chunked video, Reels, native scheduling).

use std::sync::Arc;

use async_trait::async_trait;
use konektly_core::{
    AccessToken, Account, AccountGrant, AuthorizationRequest, CallKind, Capabilities, Content, Error, Media, MediaKind,
    MediaSource, PendingAuthorization, Platform, PlatformId, Profile, PublishContext, PublishOutcome, Reconciliation,
    RemotePost, Result, TargetOptions, TokenSet, Violation, ViolationCode, oauth,
};
use serde_json::{Map, Value, json};
use url::Url;

use konektly_core::oauth::Grant;

use super::{KIND_PAGE, KIND_USER, LOGIN_KEY, PAGE_ID_KEY};
use crate::client::{Host, MetaClient};
use crate::model::{
    FacebookOptions, FacebookPostKind, FacebookState, FacebookUser, FeedEntry, IdBody, ListBody, PageEntry,
    VideoStatusBody, VideoUpload,
};
use crate::validate::{facebook_capabilities, validate_facebook};

fn meta(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Facebook Pages through the Graph API (`facebook`).
#[derive(Debug)]
pub struct FacebookPagePlatform {
    pub(crate) client: Arc<MetaClient>,
    caps: Capabilities,
}

impl FacebookPagePlatform {
    /// Validates as [`Platform::validate`] does, at the time `now` (a native schedule must lie
    /// 10 minutes to 30 days after it): for tests and for checking a post as it will stand later.
    pub fn validate_at(
        &self,
        content: &Content,
        options: &TargetOptions,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Violation> {
        crate::validate::validate_facebook_at(&self.caps, &self.client.cfg.limits, content, options, now)
    }

    pub(crate) fn new(client: Arc<MetaClient>) -> Self {
        let caps = facebook_capabilities(&client.cfg.limits);
        Self { client, caps }
    }

    async fn granted_scopes(&self, token: &AccessToken) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Perm {
            permission: String,
            #[serde(default)]
            status: Option<String>,
        }
        let list: ListBody<Perm> = self
            .client
            .get(self.client.versioned(Host::Graph, "me/permissions"), Some(token), &[], None, "reading permissions")
            .await?;
        Ok(list.data.into_iter().filter(|p| p.status.as_deref() != Some("declined")).map(|p| p.permission).collect())
    }

    async fn pages(&self, token: &AccessToken) -> Result<Vec<PageEntry>> {
        let fields = "id,name,access_token,category,tasks,picture,\
                      instagram_business_account{id,username,name,profile_picture_url}";
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..50 {
            let mut q = vec![("fields", fields), ("limit", "100")];
            if let Some(a) = &after {
                q.push(("after", a.as_str()));
            }
            let page: ListBody<PageEntry> = self
                .client
                .get(self.client.versioned(Host::Graph, "me/accounts"), Some(token), &q, None, "listing Pages")
                .await?;
            let n = page.data.len();
            out.extend(page.data);
            let next = page.paging.as_ref().and_then(|p| p.next.as_ref()).is_some();
            after = page.paging.and_then(|p| p.cursors).and_then(|c| c.after);
            if n == 0 || !next || after.is_none() {
                break;
            }
        }
        Ok(out)
    }

    fn is_user(account: &Account) -> bool {
        account.metadata.get("kind").and_then(Value::as_str) == Some(KIND_USER)
    }

    fn options(ctx: &PublishContext<'_>) -> Result<FacebookOptions> {
        ctx.typed_options::<FacebookOptions>()
    }

    fn post_url(id: &str) -> Option<Url> {
        Url::parse(&format!("https://www.facebook.com/{id}")).ok()
    }

    fn remote(&self, id: &str, url: Option<Url>, opts: &FacebookOptions) -> RemotePost {
        let mut r = RemotePost::new(self.id(), id, url);
        r.scheduled_for = opts.schedule_at;
        r
    }

    pub(crate) fn schedule_fields(opts: &FacebookOptions, form: &mut Vec<(&'static str, String)>) {
        if let Some(at) = opts.schedule_at {
            form.push(("published", "false".into()));
            form.push(("scheduled_publish_time", at.timestamp().to_string()));
        }
    }

    /// A video's or Reel's text: the post's text as `description`, and the title if any.
    pub(crate) fn video_text_fields(
        ctx: &PublishContext<'_>,
        opts: &FacebookOptions,
        form: &mut Vec<(&'static str, String)>,
    ) {
        if !ctx.content.text.is_empty() {
            form.push(("description", ctx.content.text.clone()));
        }
        if let Some(t) = &opts.title {
            form.push(("title", t.clone()));
        }
    }

    async fn post_feed(
        &self,
        ctx: &mut PublishContext<'_>,
        st: &mut FacebookState,
        opts: &FacebookOptions,
        attached: &[String],
    ) -> Result<PublishOutcome> {
        let page = ctx.account.remote_id.clone();
        let mut form: Vec<(&'static str, String)> = Vec::new();
        if !ctx.content.text.is_empty() {
            form.push(("message", ctx.content.text.clone()));
        }
        if let Some(link) = &ctx.content.link {
            form.push(("link", link.to_string()));
        }
        let keys: Vec<String> = (0..attached.len()).map(|i| format!("attached_media[{i}]")).collect();
        let mut attached_form: Vec<(&str, String)> = Vec::new();
        for (k, id) in keys.iter().zip(attached) {
            attached_form.push((k.as_str(), json!({ "media_fbid": id }).to_string()));
        }
        Self::schedule_fields(opts, &mut form);
        st.create_sent.mark();
        ctx.before_create(&*st).await?;
        let mut all: Vec<(&str, String)> = form.into_iter().collect();
        all.extend(attached_form);
        let created: IdBody = self
            .client
            .post_form(
                self.client.versioned(Host::Graph, &format!("{page}/feed")),
                ctx.access_token(),
                &all,
                CallKind::Create,
                Some(&*ctx),
                "creating the Page post",
            )
            .await?;
        st.post_id = Some(created.id.clone());
        ctx.save_state(&*st).await?;
        Ok(PublishOutcome::Published(self.remote(&created.id, Self::post_url(&created.id), opts)))
    }

    /// Uploads one photo to `/{page}/photos`: by URL when the media is a URL, else as bytes.
    async fn upload_photo(
        &self,
        ctx: &PublishContext<'_>,
        media: &Media,
        fields: Vec<(&'static str, String)>,
        what: &str,
    ) -> Result<IdBody> {
        let url = self.client.versioned(Host::Graph, &format!("{}/photos", ctx.account.remote_id));
        let token = ctx.access_token();
        let rb = if let MediaSource::Url(u) = &media.source {
            let mut form = fields;
            form.push(("url", u.to_string()));
            self.client.http.client().post(url).query(&[("access_token", token.expose())]).form(&form)
        } else {
            let bytes = media.read_all(self.client.http.client(), self.client.cfg.limits.fb_photo_max_bytes).await?;
            let len = bytes.len() as u64;
            let part = reqwest::multipart::Part::stream_with_length(bytes, len)
                .file_name("photo")
                .mime_str(media.mime.essence_str())
                .map_err(|e| Error::Config(format!("invalid media type: {e}")))?;
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in fields {
                form = form.text(k, v);
            }
            form = form.part("source", part);
            self.client.http.client().post(url).query(&[("access_token", token.expose())]).multipart(form)
        };
        self.client.execute(rb, CallKind::Create, Some(ctx), what).await
    }

    async fn publish_photos(
        &self,
        ctx: &mut PublishContext<'_>,
        st: &mut FacebookState,
        opts: &FacebookOptions,
    ) -> Result<PublishOutcome> {
        let media = ctx.content.media.clone();
        if media.len() == 1 {
            let mut fields: Vec<(&'static str, String)> = Vec::new();
            if !ctx.content.text.is_empty() {
                fields.push(("message", ctx.content.text.clone()));
            }
            Self::schedule_fields(opts, &mut fields);
            st.create_sent.mark();
            ctx.before_create(&*st).await?;
            let created = self.upload_photo(ctx, &media[0], fields, "publishing the photo").await?;
            let id = created.post_id.unwrap_or(created.id);
            st.post_id = Some(id.clone());
            ctx.save_state(&*st).await?;
            return Ok(PublishOutcome::Published(self.remote(&id, Self::post_url(&id), opts)));
        }
        // Several photos: each uploaded unpublished (ids checkpointed), then one feed post.
        for (i, m) in media.iter().enumerate().skip(st.photo_ids.len()) {
            let mut fields: Vec<(&'static str, String)> = vec![("published", "false".into())];
            if opts.schedule_at.is_some() {
                // Photos of a scheduled multi-photo post must be temporary.
                fields.push(("temporary", "true".into()));
            }
            let created = self.upload_photo(ctx, m, fields, &format!("uploading photo {}", i + 1)).await?;
            st.photo_ids.push(created.id);
            ctx.save_state(&*st).await?;
        }
        let ids = st.photo_ids.clone();
        self.post_feed(ctx, st, opts, &ids).await
    }

    /// A video at a public URL: Facebook fetches it (`file_url`), then it is polled.
    pub(crate) async fn publish_video_by_url(
        &self,
        ctx: &mut PublishContext<'_>,
        st: &mut FacebookState,
        opts: &FacebookOptions,
        url: Url,
        file_url: Url,
    ) -> Result<PublishOutcome> {
        let mut form: Vec<(&'static str, String)> = vec![("file_url", file_url.to_string())];
        Self::video_text_fields(ctx, opts, &mut form);
        Self::schedule_fields(opts, &mut form);
        st.create_sent.mark();
        ctx.before_create(&*st).await?;
        let created: IdBody = self
            .client
            .post_form(url, ctx.access_token(), &form, CallKind::Create, Some(&*ctx), "publishing the video")
            .await?;
        st.video = Some(VideoUpload {
            video_id: created.id,
            session_id: String::new(),
            start_offset: 0,
            end_offset: 0,
            finished: true,
        });
        ctx.save_state(&*st).await?;
        self.video_status(ctx, st, opts).await
    }

    /// Reads a finished upload's processing status.
    pub(crate) async fn video_status(
        &self,
        ctx: &mut PublishContext<'_>,
        st: &mut FacebookState,
        opts: &FacebookOptions,
    ) -> Result<PublishOutcome> {
        let (video_id, is_reel) = match (&st.video, &st.reel) {
            (_, Some(r)) => (r.video_id.clone(), true),
            (Some(v), None) => (v.video_id.clone(), false),
            _ => return Err(Error::transient("no video to poll")),
        };
        let body: VideoStatusBody = self
            .client
            .get(
                self.client.versioned(Host::Graph, &video_id),
                Some(ctx.access_token()),
                &[("fields", "status")],
                Some(&*ctx),
                "reading the video status",
            )
            .await?;
        let status = body.status.ok_or_else(|| Error::transient("the video status is missing"))?;
        let phase_failed = [&status.uploading_phase, &status.processing_phase, &status.publishing_phase]
            .into_iter()
            .flatten()
            .find(|p| p.status.as_deref() == Some("error"));
        if status.video_status.as_deref() == Some("error") || phase_failed.is_some() {
            let detail = phase_failed.and_then(|p| p.errors.as_ref()).map(|e| e.to_string()).unwrap_or_default();
            return Err(Error::rejected(
                Some("video_error".into()),
                format!("Facebook could not process the video {detail}"),
            ));
        }
        // The finish call never took effect (its request was lost before Facebook acted), so
        // the post does not exist: finish again from the checkpoint. A video shows it by an
        // upload still open with all bytes sent; a Reel by being processed with its publishing
        // never started.
        let never_finished = if is_reel {
            opts.schedule_at.is_none()
                && status.video_status.as_deref() == Some("ready")
                && phase(&status.processing_phase) == "complete"
                && phase(&status.publishing_phase) == "not_started"
        } else {
            status.video_status.as_deref() == Some("upload_incomplete")
                || !matches!(phase(&status.uploading_phase), "" | "complete")
        };
        let finished = st.video.as_ref().is_some_and(|v| v.finished) || st.reel.as_ref().is_some_and(|r| r.finished);
        if never_finished && finished {
            tracing::info!(target: "konektly::facebook", video = %video_id, reel = is_reel, "the finish did not take effect: finishing again");
            match (is_reel, st.reel.as_mut(), st.video.as_mut()) {
                (true, Some(r), _) => r.finished = false,
                (false, _, Some(v)) => v.finished = false,
                _ => {}
            }
            ctx.save_state(&*st).await?;
            return Ok(PublishOutcome::processing(std::time::Duration::ZERO, "finishing the upload again"));
        }
        let publishing_done = status
            .publishing_phase
            .as_ref()
            .and_then(|p| p.status.as_deref())
            .is_none_or(|s| s == "complete" || opts.schedule_at.is_some());
        if status.video_status.as_deref() == Some("ready") && publishing_done {
            let url = if is_reel {
                Url::parse(&format!("https://www.facebook.com/reel/{video_id}")).ok()
            } else {
                Url::parse(&format!("https://www.facebook.com/{}/videos/{video_id}", ctx.account.remote_id)).ok()
            };
            st.post_id = Some(video_id.clone());
            ctx.save_state(&*st).await?;
            return Ok(PublishOutcome::Published(self.remote(&video_id, url, opts)));
        }
        Ok(PublishOutcome::processing(
            self.client.cfg.video_poll_interval,
            format!(
                "{} ({}%)",
                status.video_status.as_deref().unwrap_or("processing"),
                status.processing_progress.unwrap_or(0)
            ),
        ))
    }

    async fn advance(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        if Self::is_user(ctx.account) {
            return Err(Error::NotSupported(
                "Facebook does not let apps publish to a personal profile: publish to one of its Pages".into(),
            ));
        }
        let opts = Self::options(ctx)?;
        let mut st: FacebookState = ctx.state()?;
        if let Some(id) = &st.post_id {
            let url = Self::post_url(id);
            return Ok(PublishOutcome::Published(self.remote(id, url, &opts)));
        }
        let media = &ctx.content.media;
        let has_video = media.iter().any(|m| m.kind() == MediaKind::Video);
        if opts.kind == FacebookPostKind::Reel || st.reel.is_some() {
            if !has_video {
                return Err(Error::InvalidPost(vec![Violation::new(
                    ViolationCode::ReelNeedsOneVideo,
                    "media",
                    "a Reel is one video",
                )]));
            }
            self.publish_reel(ctx, &mut st, &opts).await
        } else if has_video {
            self.publish_video(ctx, &mut st, &opts).await
        } else if !media.is_empty() {
            self.publish_photos(ctx, &mut st, &opts).await
        } else {
            self.post_feed(ctx, &mut st, &opts, &[]).await
        }
    }
}

#[async_trait]
impl Platform for FacebookPagePlatform {
    fn id(&self) -> PlatformId {
        PlatformId::new("facebook")
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn validate(&self, content: &Content, options: &TargetOptions) -> Vec<Violation> {
        validate_facebook(&self.caps, &self.client.cfg.limits, content, options)
    }

    fn validate_at(
        &self,
        content: &Content,
        options: &TargetOptions,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Violation> {
        crate::validate::validate_facebook_at(&self.caps, &self.client.cfg.limits, content, options, now)
    }

    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        let cfg = &self.client.cfg;
        let state = oauth::random_state();
        let mut url = self.client.versioned(Host::FacebookWww, "dialog/oauth");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &cfg.app_id)
                .append_pair("redirect_uri", redirect_uri.as_str())
                .append_pair("state", &state)
                .append_pair("response_type", "code");
            match &cfg.config_id {
                Some(id) => q.append_pair("config_id", id),
                None => q.append_pair("scope", &cfg.scopes.join(",")),
            };
        }
        let pkce_verifier = cfg.pkce.then(|| oauth::add_pkce_s256(&mut url));
        Ok(AuthorizationRequest { url, state, pkce_verifier })
    }

    async fn exchange_code(&self, code: &str, pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        let short =
            self.client.facebook_exchange_code(code, &pending.redirect_uri, pending.pkce_verifier.as_ref()).await?;
        let long = self
            .client
            .facebook_long_lived(short.tokens.access_token.expose(), Grant::Exchange, CallKind::Create)
            .await?
            .tokens;
        let user_token = long.access_token.clone();
        // The granted scopes are informative: a failure to read them does not fail the login.
        let scopes = match self.granted_scopes(&user_token).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(target: "konektly::meta", error = %e, "could not read the granted permissions");
                Vec::new()
            }
        };
        let user: FacebookUser = self
            .client
            .get(
                self.client.versioned(Host::Graph, "me"),
                Some(&user_token),
                &[("fields", "id,name,picture")],
                None,
                "reading the user",
            )
            .await?;
        let pages = self.pages(&user_token).await?;
        let mut grants = vec![AccountGrant {
            platform: self.id(),
            profile: Profile {
                remote_id: user.id.clone(),
                handle: None,
                display_name: user.name.clone(),
                avatar_url: user.picture.and_then(|p| p.data.url),
            },
            tokens: TokenSet { scopes: scopes.clone(), ..long },
            parent_remote_id: None,
            metadata: meta(&[("kind", KIND_USER.into())]),
        }];
        let mut instagram = Vec::new();
        for page in pages {
            let mut page_tokens = TokenSet::new(AccessToken::new(page.access_token.clone()));
            page_tokens.scopes = scopes.clone();
            if let Some(ig) = page.instagram_business_account {
                instagram.push(AccountGrant {
                    platform: PlatformId::new("instagram"),
                    profile: Profile {
                        remote_id: ig.id,
                        handle: ig.username,
                        display_name: ig.name,
                        avatar_url: ig.profile_picture_url,
                    },
                    tokens: page_tokens.clone(),
                    parent_remote_id: Some(user.id.clone()),
                    metadata: meta(&[(LOGIN_KEY, "facebook".into()), (PAGE_ID_KEY, page.id.clone().into())]),
                });
            }
            grants.push(AccountGrant {
                platform: self.id(),
                profile: Profile {
                    remote_id: page.id,
                    handle: None,
                    display_name: page.name,
                    avatar_url: page.picture.and_then(|p| p.data.url),
                },
                tokens: page_tokens,
                parent_remote_id: Some(user.id.clone()),
                metadata: meta(&[
                    ("kind", KIND_PAGE.into()),
                    ("category", page.category.map(Value::from).unwrap_or(Value::Null)),
                    ("tasks", Value::from(page.tasks)),
                ]),
            });
        }
        grants.extend(instagram);
        Ok(grants)
    }

    async fn refresh(&self, account: &Account) -> Result<TokenSet> {
        if !Self::is_user(account) {
            return Err(Error::reauth(
                "a Page token does not expire and cannot be refreshed; it was invalidated, so connect again",
            ));
        }
        // A user token is extended by exchanging it again while it is still valid.
        let answer = self
            .client
            .facebook_long_lived(account.tokens.access_token.expose(), Grant::Refresh, CallKind::Idempotent)
            .await?;
        Ok(answer.tokens)
    }

    async fn revoke(&self, account: &Account) -> Result<()> {
        if !Self::is_user(account) {
            // Revoking would log the user out of the app for every Page: the Page is only forgotten.
            return Ok(());
        }
        self.client
            .delete(self.client.versioned(Host::Graph, "me/permissions"), &account.tokens.access_token, "revoking")
            .await
    }

    async fn profile(&self, account: &Account) -> Result<Profile> {
        let path = if Self::is_user(account) { "me".to_owned() } else { account.remote_id.clone() };
        let user: FacebookUser = self
            .client
            .get(
                self.client.versioned(Host::Graph, &path),
                Some(&account.tokens.access_token),
                &[("fields", "id,name,picture")],
                None,
                "reading the profile",
            )
            .await?;
        Ok(Profile {
            remote_id: user.id,
            handle: None,
            display_name: user.name,
            avatar_url: user.picture.and_then(|p| p.data.url),
        })
    }

    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let sent_before = ctx.state::<FacebookState>()?.create_sent.is_sent();
        self.advance(ctx).await.map_err(|e| duplicate_refusal(e, sent_before))
    }

    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let opts = Self::options(ctx)?;
        let mut st: FacebookState = ctx.state()?;
        let finished = st.video.as_ref().is_some_and(|v| v.finished) || st.reel.as_ref().is_some_and(|r| r.finished);
        if st.post_id.is_none() && finished {
            return self.video_status(ctx, &mut st, &opts).await;
        }
        self.advance(ctx).await
    }

    async fn delete(&self, account: &Account, post: &RemotePost) -> Result<()> {
        self.client
            .delete(self.client.versioned(Host::Graph, &post.id), &account.tokens.access_token, "deleting the post")
            .await
    }

    async fn publish_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        _index: usize,
        text: &str,
    ) -> Result<String> {
        // `POST /{object-id}/comments` with the Page token: the comment is the Page's.
        let url = self.client.versioned(Host::Graph, &format!("{}/comments", post.id));
        let form = [("message", text.to_owned())];
        let token = ctx.access_token().clone();
        let created: IdBody =
            self.client.post_form(url, &token, &form, CallKind::Create, Some(ctx), "commenting on the post").await?;
        Ok(created.id)
    }

    async fn find_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        text: &str,
        _sent_from: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>> {
        let found =
            crate::platform::find_comment(&self.client, Host::Graph, ctx, &post.id, "id,message,from{id}", |c| {
                c.message.as_deref() == Some(text) && c.from.as_ref().is_some_and(|f| f.id == ctx.account.remote_id)
            })
            .await?;
        Ok(found)
    }

    async fn edit(&self, account: &Account, post: &RemotePost, edit: &konektly_core::EditRequest) -> Result<()> {
        let Some(text) = &edit.text else { return Ok(()) };
        // A feed post (`{page-id}_{post-id}`) takes a new `message`; a video node its
        // `description`.
        let field = if post.id.contains('_') { "message" } else { "description" };
        let url = self.client.versioned(Host::Graph, &post.id);
        let body: Value = self
            .client
            .post_form(
                url,
                &account.tokens.access_token,
                &[(field, text.clone())],
                CallKind::Idempotent,
                None,
                "editing the post",
            )
            .await?;
        if body.get("success").and_then(Value::as_bool) == Some(false) {
            return Err(Error::rejected(None, "editing the post: Meta answered success=false"));
        }
        Ok(())
    }

    async fn post_metrics(
        &self,
        account: &Account,
        post: &RemotePost,
    ) -> Result<konektly_core::analytics::PostMetrics> {
        let fields = "reactions.limit(0).summary(true),comments.limit(0).summary(true),shares";
        let url = self.client.versioned(Host::Graph, &post.id);
        let v: serde_json::Value = self
            .client
            .get(url, Some(&account.tokens.access_token), &[("fields", fields)], None, "reading the post's counts")
            .await?;
        Ok(crate::analytics::page_post_metrics(&v))
    }

    async fn account_metrics(&self, account: &Account) -> Result<konektly_core::analytics::AccountMetrics> {
        let url = self.client.versioned(Host::Graph, &account.remote_id);
        let q = [("fields", "followers_count,fan_count")];
        let v: serde_json::Value =
            self.client.get(url, Some(&account.tokens.access_token), &q, None, "reading the Page's counts").await?;
        Ok(crate::analytics::account_metrics_of(&v))
    }

    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        let opts = Self::options(ctx)?;
        let mut st: FacebookState = ctx.state()?;
        if let Some(id) = &st.post_id {
            return Ok(Reconciliation::Published(self.remote(id, Self::post_url(id), &opts)));
        }
        if !st.create_sent.is_sent() {
            return Ok(Reconciliation::NotFound);
        }
        if st.video.is_some() || st.reel.is_some() {
            // The finish call may or may not have landed: the video's status says.
            return match self.video_status(ctx, &mut st, &opts).await {
                Ok(PublishOutcome::Published(r)) => Ok(Reconciliation::Published(r)),
                // The finish never took effect: nothing was published; finish again.
                Ok(PublishOutcome::Processing { .. })
                    if st.video.as_ref().is_some_and(|v| !v.finished)
                        || st.reel.as_ref().is_some_and(|r| !r.finished) =>
                {
                    Ok(Reconciliation::NotFound)
                }
                Ok(PublishOutcome::Processing { poll_after, .. }) => {
                    let mut st = st;
                    if let Some(v) = st.video.as_mut() {
                        v.finished = true;
                    }
                    if let Some(r) = st.reel.as_mut() {
                        r.finished = true;
                    }
                    ctx.save_state(&st).await?;
                    Ok(Reconciliation::Processing { poll_after })
                }
                Err(Error::Rejected { .. }) => Ok(Reconciliation::NotFound),
                Err(e) => Err(e),
            };
        }
        // A feed or photo post whose answer was lost: read every post of the Page created
        // around the moment the create was sent, page by page, and adopt ours only if it is
        // the one post with our text there.
        let sent = st.create_sent.sent_at().or(st.legacy_sent_at).unwrap_or(ctx.attempt_started_at);
        let skew = chrono::Duration::from_std(self.client.cfg.reconcile_skew).unwrap_or(chrono::Duration::minutes(2));
        let call =
            chrono::Duration::from_std(self.client.http.config().timeout).unwrap_or(chrono::Duration::minutes(1));
        let (from, to) = (sent - skew, sent + call + skew);
        let (since, until) = (from.timestamp().to_string(), to.timestamp().to_string());
        let edge = if opts.schedule_at.is_some() { "scheduled_posts" } else { "feed" };
        let url = self.client.versioned(Host::Graph, &format!("{}/{edge}", ctx.account.remote_id));
        let text = ctx.content.text.trim();
        let mut ours: Vec<FeedEntry> = Vec::new();
        let mut after: Option<String> = None;
        let mut complete = false;
        for _ in 0..self.client.cfg.reconcile_pages {
            let mut query = vec![
                ("fields", "id,message,created_time"),
                ("since", since.as_str()),
                ("until", until.as_str()),
                ("limit", "100"),
            ];
            if let Some(a) = after.as_deref() {
                query.push(("after", a));
            }
            let page: ListBody<FeedEntry> = self
                .client
                .get(url.clone(), Some(ctx.access_token()), &query, Some(&*ctx), "searching the Page's posts")
                .await?;
            let mut past_window = false;
            for post in page.data {
                match post.created() {
                    Some(c) if c < from => past_window = true,
                    Some(c) if c > to => {}
                    _ if post.message.as_deref().map(str::trim).unwrap_or("") == text => ours.push(post),
                    _ => {}
                }
            }
            after = page.paging.and_then(|p| p.next.and(p.cursors).and_then(|c| c.after));
            if past_window || after.is_none() {
                complete = true;
                break;
            }
        }
        if !complete {
            return Err(Error::UnknownOutcome {
                message: format!(
                    "the Page published more than {} pages of posts around the lost create: whether it landed is \
                     still unknown",
                    self.client.cfg.reconcile_pages
                ),
                source: None,
            });
        }
        match ours.len() {
            0 => Ok(Reconciliation::NotFound),
            1 => {
                let post = ours.remove(0);
                st.post_id = Some(post.id.clone());
                ctx.save_state(&st).await?;
                Ok(Reconciliation::Published(self.remote(&post.id, Self::post_url(&post.id), &opts)))
            }
            n => Err(Error::UnknownOutcome {
                message: format!(
                    "{n} posts with this text were created on the Page around the lost create: konektly cannot tell \
                     which is this target's, and adopts none"
                ),
                source: None,
            }),
        }
    }
}

/// Facebook refuses a repeat of a recent status as a duplicate (code 506). After this target's
/// own create was sent and its answer lost, that refusal is evidence the first copy is live:
/// an unknown outcome, reconciled. Without an earlier create it is a clear refusal.
fn duplicate_refusal(e: Error, sent_before: bool) -> Error {
    match e {
        Error::Rejected { code: Some(code), message, source } if code == "506" || code.starts_with("506/") => {
            if sent_before {
                Error::UnknownOutcome {
                    message: format!("{message} (a repeat of this target's own earlier post: reconciling)"),
                    source,
                }
            } else {
                Error::Rejected {
                    code: Some("duplicate".into()),
                    message: format!("{message} (the Page posted this text recently: change the text)"),
                    source,
                }
            }
        }
        other => other,
    }
}

/// A video phase's `status` (`""` when absent).
fn phase(p: &Option<crate::model::Phase>) -> &str {
    p.as_ref().and_then(|p| p.status.as_deref()).unwrap_or("")
}
