//! [`YouTubePlatform`]: `impl Platform` for YouTube — connecting (Google OAuth through
//! `oauth.rs`, the granted scopes checked), publishing (the resumable upload in `upload.rs`, the
//! thumbnail, processing status), deletion and reconciliation. The requests are in `client.rs`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use konektly_core::oauth::{Credentials, Grant, TokenMethod, TokenRequest, TokenStep, bearer, pkce_pair, random_state};
use konektly_core::{
    Account, AccountGrant, AuthorizationRequest, CallKind, Capabilities, ClientSecret, Content, Error, HttpClient,
    MediaKind, PendingAuthorization, Platform, PlatformId, Profile, PublishContext, PublishOutcome, Reconciliation,
    RemotePost, Result, TargetOptions, TokenSet, Violation, ViolationCode,
};
use url::Url;

use crate::builder::{SCOPE_FORCE_SSL, SCOPE_READONLY, SCOPE_UPLOAD, SCOPE_YOUTUBE, YouTubeBuilder};
use crate::config::Endpoints;
use crate::error::budget_report;
use crate::model::{UploadState, YouTubeOptions};
use crate::upload::Answer;

/// The scopes that allow `videos.insert` and `thumbnails.set`.
const UPLOAD_SCOPES: &[&str] =
    &[SCOPE_UPLOAD, SCOPE_YOUTUBE, SCOPE_FORCE_SSL, "https://www.googleapis.com/auth/youtubepartner"];
/// The scopes that allow reading the channel and its videos.
const READ_SCOPES: &[&str] =
    &[SCOPE_READONLY, SCOPE_YOUTUBE, SCOPE_FORCE_SSL, "https://www.googleapis.com/auth/youtubepartner"];
/// The scopes that allow `videos.delete`.
const DELETE_SCOPES: &[&str] = &[SCOPE_YOUTUBE, SCOPE_FORCE_SSL, "https://www.googleapis.com/auth/youtubepartner"];

/// YouTube as a konektly [`Platform`] (id `youtube`). Build it with [`YouTubeBuilder`].
pub struct YouTubePlatform {
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<ClientSecret>,
    pub(crate) scopes: Vec<String>,
    pub(crate) endpoints: Endpoints,
    pub(crate) http: HttpClient,
    /// For chunks and thumbnails: a longer timeout.
    pub(crate) upload_http: HttpClient,
    pub(crate) chunk_size: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) default_category_id: String,
    pub(crate) max_thumbnail_bytes: u64,
    pub(crate) upload_retries: u32,
    pub(crate) retry_delay: Duration,
    caps: Capabilities,
}

impl fmt::Debug for YouTubePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YouTubePlatform")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("scopes", &self.scopes)
            .field("endpoints", &self.endpoints)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

impl YouTubePlatform {
    /// Validates as [`Platform::validate`] does, at the time `now` (the native `publish_at` must
    /// be in the future): for tests and for checking a post as it will stand later.
    pub fn validate_at(
        &self,
        content: &Content,
        options: &TargetOptions,
        now: chrono::DateTime<Utc>,
    ) -> Vec<Violation> {
        crate::validate::validate(&self.caps, content, options, self.max_thumbnail_bytes, now)
    }

    /// A builder.
    pub fn builder() -> YouTubeBuilder {
        YouTubeBuilder::new()
    }

    pub(crate) fn from_parts(
        b: YouTubeBuilder,
        client_id: String,
        scopes: Vec<String>,
        chunk_size: usize,
        endpoints: Endpoints,
        http: HttpClient,
        upload_http: HttpClient,
    ) -> Self {
        Self {
            client_id,
            client_secret: b.client_secret,
            scopes,
            endpoints,
            http,
            upload_http,
            chunk_size,
            poll_interval: b.poll_interval,
            default_category_id: b.default_category_id,
            max_thumbnail_bytes: b.max_thumbnail_bytes,
            upload_retries: b.upload_retries,
            retry_delay: b.retry_delay,
            caps: crate::validate::capabilities(b.daily_insert_budget),
        }
    }

    /// The upload chunk size in bytes.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Where each call goes.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// A user may untick scopes on Google's consent screen: without an upload scope the account
    /// is of no use, so it must be connected again.
    fn check_granted(&self, tokens: &TokenSet) -> Result<()> {
        if tokens.scopes.is_empty() {
            // Google always answers `scope`; a sandbox that does not is trusted.
            return Ok(());
        }
        let granted = |set: &[&str]| tokens.scopes.iter().any(|s| set.contains(&s.as_str()));
        if !granted(UPLOAD_SCOPES) {
            return Err(Error::reauth(
                "Google did not grant permission to upload videos (the \"Manage your YouTube videos\" box was \
                 unticked): connect again and allow it",
            ));
        }
        // Processing status is read with `videos.list`: needed when the app asked for it.
        let asked_read = self.scopes.iter().any(|s| READ_SCOPES.contains(&s.as_str()));
        if asked_read && !granted(READ_SCOPES) {
            return Err(Error::reauth(
                "Google did not grant permission to view the YouTube account (the \"View your YouTube account\" box \
                 was unticked), which konektly needs to follow a video's processing: connect again and allow it",
            ));
        }
        Ok(())
    }

    /// Comments (`commentThreads.insert`) need `youtube.force-ssl`.
    fn check_comment_scope(&self, tokens: &TokenSet) -> Result<()> {
        const COMMENT_SCOPES: &[&str] = &[SCOPE_FORCE_SSL];
        if !tokens.scopes.is_empty() && !tokens.scopes.iter().any(|s| COMMENT_SCOPES.contains(&s.as_str())) {
            return Err(Error::NotSupported(
                "commenting on a YouTube video needs the youtube.force-ssl scope: add SCOPE_FORCE_SSL to the \
                 builder's scopes and connect the account again"
                    .into(),
            ));
        }
        Ok(())
    }

    fn remote(&self, id: &str, opts: &YouTubeOptions) -> RemotePost {
        let url = Url::parse(&format!("https://www.youtube.com/watch?v={id}")).ok();
        let mut r = RemotePost::new(PlatformId::new(crate::PLATFORM_ID), id, url);
        r.scheduled_for = opts.publish_at;
        r
    }

    async fn publish_steps(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let opts: YouTubeOptions = ctx.typed_options()?;
        let content: &Content = ctx.content;
        let mut state: UploadState = ctx.state()?;
        if state.video_id.is_none() {
            if state.session_uri.is_none() {
                let violations = self.validate(content, ctx.options);
                if !violations.is_empty() {
                    return Err(Error::InvalidPost(violations));
                }
            }
            let media = content.media.iter().find(|m| m.kind() == MediaKind::Video).ok_or_else(|| {
                Error::InvalidPost(vec![Violation::new(ViolationCode::MediaRequired, "media", "a video is needed")])
            })?;
            let video = self.upload(ctx, &mut state, media, &opts).await?;
            state.video_id = Some(video.id);
            state.session_uri = None;
            state.thumbnail_done = opts.thumbnail.is_none();
            ctx.save_state(&state).await?;
        }
        let id = state.video_id.clone().unwrap_or_default();
        if !state.thumbnail_done
            && let Some(thumb) = &opts.thumbnail
        {
            match self.set_thumbnail(ctx.access_token(), &id, thumb).await {
                Ok(()) => {}
                Err(Error::Rejected { code, message, .. }) => {
                    // The video is up: a refused thumbnail must not fail (and so repeat) it.
                    tracing::warn!(target: "konektly::youtube", video = %id, ?code, %message, "the custom thumbnail was refused");
                    state.thumbnail_note = Some(format!("the custom thumbnail was refused: {message}"));
                }
                Err(e) => return Err(e),
            }
            state.thumbnail_done = true;
            ctx.save_state(&state).await?;
        }
        let mut detail = "uploaded; YouTube is processing the video".to_string();
        if let Some(note) = &state.thumbnail_note {
            detail = format!("{detail} ({note})");
        }
        Ok(PublishOutcome::processing(self.poll_interval, detail))
    }
}

#[async_trait]
impl Platform for YouTubePlatform {
    fn id(&self) -> PlatformId {
        PlatformId::new(crate::PLATFORM_ID)
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn validate(&self, content: &Content, options: &TargetOptions) -> Vec<Violation> {
        crate::validate::validate(&self.caps, content, options, self.max_thumbnail_bytes, Utc::now())
    }

    fn validate_at(&self, content: &Content, options: &TargetOptions, now: chrono::DateTime<Utc>) -> Vec<Violation> {
        crate::validate::validate(&self.caps, content, options, self.max_thumbnail_bytes, now)
    }

    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        let state = random_state();
        let (verifier, challenge) = pkce_pair();
        let mut url = self.endpoints.auth.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("scope", &self.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("include_granted_scopes", "true");
        Ok(AuthorizationRequest { url, state, pkce_verifier: Some(verifier) })
    }

    async fn exchange_code(&self, code: &str, pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        let tokens =
            self.oauth().exchange_code(code, &pending.redirect_uri, pending.pkce_verifier.as_ref(), &[]).await?;
        self.check_granted(&tokens)?;
        let profile = self.channel(&tokens.access_token).await?;
        Ok(vec![AccountGrant::new(self.id(), profile, tokens)])
    }

    async fn refresh(&self, account: &Account) -> Result<TokenSet> {
        let rt = account
            .tokens
            .refresh_token
            .as_ref()
            .ok_or_else(|| Error::reauth("no Google refresh token is stored: connect the account again"))?;
        let fresh = self.oauth().refresh(rt, &[]).await?;
        // Google answers a refresh without a refresh token: the stored one stays.
        let tokens = account.tokens.merged_with(fresh);
        self.check_granted(&tokens)?;
        Ok(tokens)
    }

    async fn revoke(&self, account: &Account) -> Result<()> {
        let token = match &account.tokens.refresh_token {
            Some(rt) => rt.expose(),
            None => account.tokens.access_token.expose(),
        };
        // The token alone; `invalid_token` means the grant is gone already.
        self.oauth()
            .revoke_with(TokenRequest {
                url: Some(self.endpoints.revoke.clone()),
                method: TokenMethod::PostForm,
                params: vec![("token", token)],
                credentials: Credentials::None,
                step: TokenStep { grant: Grant::Revoke, kind: CallKind::Idempotent, what: "revoking the grant" },
            })
            .await
    }

    async fn profile(&self, account: &Account) -> Result<Profile> {
        self.channel(&account.tokens.access_token).await
    }

    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let result = self.publish_steps(ctx).await;
        if let Err(e) = &result
            && let Some(report) = budget_report(e)
        {
            ctx.report_rate_limit(report);
        }
        result
    }

    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let opts: YouTubeOptions = ctx.typed_options()?;
        let state: UploadState = ctx.state()?;
        let Some(id) = state.video_id.clone() else {
            return Err(Error::transient("nothing was uploaded yet: publish again"));
        };
        let Some(video) = self.video_status(ctx.access_token(), &id).await? else {
            return Err(Error::transient(format!("video {id} is not listed (yet)")));
        };
        let status = video.status.unwrap_or_default();
        match status.upload_status.as_deref() {
            Some("processed") => Ok(PublishOutcome::Published(self.remote(&id, &opts))),
            Some("failed") => {
                let reason = status.failure_reason.unwrap_or_else(|| "unknown".into());
                Err(Error::rejected(Some(reason.clone()), format!("YouTube could not process the video ({reason})")))
            }
            Some("rejected") => {
                let reason = status.rejection_reason.unwrap_or_else(|| "unknown".into());
                Err(Error::rejected(Some(reason.clone()), format!("YouTube rejected the video ({reason})")))
            }
            Some("deleted") => Err(Error::rejected(Some("deleted".into()), "the video was deleted on YouTube")),
            other => {
                let mut detail = format!("YouTube is processing the video ({})", other.unwrap_or("uploaded"));
                if let Some((done, total)) =
                    video.processing_details.and_then(|d| d.processing_progress).and_then(|p| p.parts())
                {
                    detail = format!("{detail}: {done}/{total} parts");
                }
                Ok(PublishOutcome::processing(self.poll_interval, detail))
            }
        }
    }

    async fn delete(&self, account: &Account, post: &RemotePost) -> Result<()> {
        if !account.tokens.scopes.is_empty()
            && !account.tokens.scopes.iter().any(|s| DELETE_SCOPES.contains(&s.as_str()))
        {
            return Err(Error::NotSupported(
                "deleting a YouTube video needs the `youtube` scope: add SCOPE_YOUTUBE to the builder's scopes and \
                 connect the account again"
                    .into(),
            ));
        }
        let url = self.api_url("videos", &[("id", &post.id)]);
        let req =
            self.http.client().delete(url).header(reqwest::header::AUTHORIZATION, bearer(&account.tokens.access_token));
        match self.call(req, CallKind::Idempotent).await {
            Ok(_) => Ok(()),
            // Already gone.
            Err(Error::Rejected { code: Some(c), .. }) if c == "videoNotFound" || c == "404" => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn publish_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        _index: usize,
        text: &str,
    ) -> Result<String> {
        self.check_comment_scope(&ctx.account.tokens)?;
        // `commentThreads.insert`: a top-level comment on the video, by the channel.
        let url = self.api_url("commentThreads", &[("part", "snippet")]);
        let body = serde_json::json!({"snippet": {
            "channelId": ctx.account.remote_id,
            "videoId": post.id,
            "topLevelComment": {"snippet": {"textOriginal": text}},
        }});
        let req =
            self.http.client().post(url).header(reqwest::header::AUTHORIZATION, bearer(ctx.access_token())).json(&body);
        let api = self.call(req, CallKind::Create).await?;
        let created: serde_json::Value = api.json().map_err(|e| Error::UnknownOutcome {
            message: format!("commentThreads.insert answered something unreadable: {e}"),
            source: None,
        })?;
        created.get("id").and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(|| Error::UnknownOutcome {
            message: "commentThreads.insert answered without an id".into(),
            source: None,
        })
    }

    async fn find_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        text: &str,
        _sent_from: chrono::DateTime<Utc>,
    ) -> Result<Option<String>> {
        self.check_comment_scope(&ctx.account.tokens)?;
        let mut page_token: Option<String> = None;
        for _ in 0..5 {
            let mut q =
                vec![("part", "snippet"), ("videoId", post.id.as_str()), ("maxResults", "100"), ("order", "time")];
            if let Some(t) = &page_token {
                q.push(("pageToken", t));
            }
            let url = self.api_url("commentThreads", &q);
            let req = self.http.client().get(url).header(reqwest::header::AUTHORIZATION, bearer(ctx.access_token()));
            let list: serde_json::Value = self.call(req, CallKind::Idempotent).await?.json()?;
            let items = list.get("items").and_then(|v| v.as_array()).cloned().unwrap_or_default();
            for item in &items {
                let top = &item["snippet"]["topLevelComment"]["snippet"];
                let author = top["authorChannelId"]["value"].as_str();
                let said = top["textOriginal"].as_str().or(top["textDisplay"].as_str());
                if author == Some(ctx.account.remote_id.as_str()) && said == Some(text) {
                    return Ok(item["id"].as_str().map(str::to_owned));
                }
            }
            page_token = list.get("nextPageToken").and_then(|v| v.as_str()).map(str::to_owned);
            if page_token.is_none() || items.is_empty() {
                return Ok(None);
            }
        }
        Err(Error::UnknownOutcome {
            message: "the video has more than 500 comment threads: whether this one landed is unknown".into(),
            source: None,
        })
    }

    async fn edit(&self, account: &Account, post: &RemotePost, edit: &konektly_core::EditRequest) -> Result<()> {
        if !account.tokens.scopes.is_empty()
            && !account.tokens.scopes.iter().any(|s| DELETE_SCOPES.contains(&s.as_str()))
        {
            return Err(Error::NotSupported(
                "editing a YouTube video (videos.update) needs the `youtube` or `youtube.force-ssl` scope: add it to \
                 the builder's scopes and connect the account again"
                    .into(),
            ));
        }
        // videos.update replaces the parts it is sent: read them, change what is asked, send
        // them back whole (a snippet without its categoryId or tags would lose them).
        let url = self.api_url("videos", &[("part", "snippet,status"), ("id", &post.id)]);
        let req =
            self.http.client().get(url).header(reqwest::header::AUTHORIZATION, bearer(&account.tokens.access_token));
        let list: serde_json::Value = self.call(req, CallKind::Idempotent).await?.json()?;
        let Some(video) = list.get("items").and_then(|v| v.as_array()).and_then(|a| a.first()) else {
            return Err(Error::NotFound(format!("YouTube video {}", post.id)));
        };
        let mut snippet = video.get("snippet").cloned().unwrap_or_default();
        let mut status = video.get("status").cloned().unwrap_or_default();
        if let Some(obj) = snippet.as_object_mut() {
            // Read-only fields YouTube refuses to be sent back.
            for k in ["publishedAt", "channelId", "thumbnails", "channelTitle", "liveBroadcastContent", "localized"] {
                obj.remove(k);
            }
        }
        if let Some(title) = &edit.title {
            snippet["title"] = title.clone().into();
        }
        if let Some(text) = &edit.text {
            snippet["description"] = text.clone().into();
        }
        if let Some(p) = &edit.privacy {
            if !matches!(p.as_str(), "public" | "unlisted" | "private") {
                return Err(Error::InvalidPost(vec![Violation::new(
                    ViolationCode::InvalidOptions,
                    "privacy",
                    "a YouTube privacy is public, unlisted or private",
                )]));
            }
            status["privacyStatus"] = p.clone().into();
        }
        if let Some(at) = edit.publish_at {
            // YouTube publishes a private video at publishAt.
            status["publishAt"] = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into();
            if edit.privacy.is_none() {
                status["privacyStatus"] = "private".into();
            }
        }
        let mut parts = Vec::new();
        let mut body = serde_json::json!({"id": post.id});
        if edit.title.is_some() || edit.text.is_some() {
            parts.push("snippet");
            body["snippet"] = snippet;
        }
        if edit.privacy.is_some() || edit.publish_at.is_some() {
            parts.push("status");
            body["status"] = status;
        }
        if parts.is_empty() {
            return Ok(());
        }
        let url = self.api_url("videos", &[("part", &parts.join(","))]);
        let req = self
            .http
            .client()
            .put(url)
            .header(reqwest::header::AUTHORIZATION, bearer(&account.tokens.access_token))
            .json(&body);
        self.call(req, CallKind::Idempotent).await.map(drop)
    }

    async fn post_metrics(
        &self,
        account: &Account,
        post: &RemotePost,
    ) -> Result<konektly_core::analytics::PostMetrics> {
        self.video_metrics(account, post).await
    }

    async fn account_metrics(&self, account: &Account) -> Result<konektly_core::analytics::AccountMetrics> {
        self.channel_metrics(account).await
    }

    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        let opts: YouTubeOptions = ctx.typed_options()?;
        let mut state: UploadState = ctx.state()?;
        if state.video_id.is_none()
            && let Some(session) = state.session_uri.clone()
        {
            match self.query_status(ctx.access_token(), &session, state.total).await? {
                Answer::Done(video) => {
                    state.video_id = Some(video.id);
                    state.session_uri = None;
                    state.thumbnail_done = opts.thumbnail.is_none();
                }
                Answer::Incomplete(offset) => state.offset = offset,
                Answer::Gone => {
                    state.session_uri = None;
                    state.offset = 0;
                }
                Answer::Retry(e) => return Err(e),
            }
            ctx.save_state(&state).await?;
        }
        if state.video_id.is_some() && state.thumbnail_done {
            Ok(Reconciliation::Processing { poll_after: self.poll_interval })
        } else {
            // Nothing landed yet, or the thumbnail is still to set: publishing resumes from the
            // checkpoint (it never uploads a finished video again).
            Ok(Reconciliation::NotFound)
        }
    }
}
