//! Sending media bytes to Meta, each protocol a session of core's upload driver: Facebook's
//! chunked video upload (start → transfer → finish, each chunk checkpointed, the offsets Meta
//! expects on a refused chunk), and `rupload.facebook.com` — Reels and Instagram's resumable
//! uploads to the containers that asked for them — the whole file streamed in one request.

use konektly_core::upload::{
    Backoff, Part, PartAck, UploadEnd, UploadPolicy, UploadProgress, UploadSession, drive_upload,
};
use konektly_core::{
    AccessToken, CallKind, CheckpointState, Error, Media, MediaSource, PublishContext, PublishOutcome, Result,
    async_trait,
};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use url::Url;

use crate::client::{Host, MetaClient};
use crate::error::expected_offsets;
use crate::model::{
    FacebookOptions, FacebookState, InstagramState, ReelStartBody, ReelUpload, SuccessBody, VideoPhaseBody, VideoUpload,
};
use crate::platform::{FacebookPagePlatform, InstagramPlatform};

/// Facebook names where to continue after a refused chunk: up to three resyncs, no wait.
const VIDEO_POLICY: UploadPolicy = UploadPolicy::new(Backoff::immediate(3));
/// `rupload.facebook.com` takes the whole file in one request, streamed (no retry: a failed
/// request ends the attempt, which sends it again).
const RUPLOAD_POLICY: UploadPolicy = UploadPolicy::new(Backoff::immediate(0)).streamed();

/// `Authorization: OAuth …` (what `rupload.facebook.com` takes), marked sensitive.
fn oauth_header(token: &AccessToken) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("OAuth {}", token.expose()))
        .map_err(|_| Error::Config("the access token is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Facebook's chunked video transfer (`upload_phase=transfer`): the server names each chunk's
/// bounds, a refused chunk names the offsets it expects; the progress is the checkpointed
/// `start_offset`.
struct VideoChunks<'a> {
    client: &'a MetaClient,
    st: &'a mut FacebookState,
    up: VideoUpload,
    url: Url,
    size: u64,
    /// The offsets a refused chunk named, for [`UploadSession::resume`].
    expected: Option<(u64, u64)>,
}

#[async_trait]
impl UploadSession for VideoChunks<'_> {
    type State = FacebookState;

    fn state(&self) -> &FacebookState {
        self.st
    }

    fn progress(&self) -> UploadProgress {
        UploadProgress { bytes_sent: self.up.start_offset, parts_sent: 0 }
    }

    fn set_progress(&mut self, progress: UploadProgress) {
        self.up.start_offset = progress.bytes_sent;
        self.st.video = Some(self.up.clone());
    }

    fn total(&self) -> u64 {
        self.size
    }

    fn part_len(&self, _index: u64, offset: u64) -> u64 {
        self.up.end_offset.saturating_sub(offset)
    }

    async fn put_part(&mut self, ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck> {
        let (offset, len) = (part.offset, part.len);
        let chunk = reqwest::multipart::Part::stream_with_length(part.into_body(), len).file_name("chunk");
        let form = reqwest::multipart::Form::new()
            .text("upload_phase", "transfer")
            .text("upload_session_id", self.up.session_id.clone())
            .text("start_offset", offset.to_string())
            .part("video_file_chunk", chunk);
        let rb = self
            .client
            .http
            .client()
            .post(self.url.clone())
            .query(&[("access_token", ctx.access_token().expose())])
            .timeout(self.client.http.config().upload_timeout)
            .multipart(form);
        match self
            .client
            .execute::<VideoPhaseBody>(rb, CallKind::Idempotent, Some(&*ctx), "uploading a video chunk")
            .await
        {
            Ok(next) => {
                self.up.end_offset = next.end_offset;
                if next.start_offset >= next.end_offset {
                    self.up.start_offset = next.start_offset;
                    return Ok(PartAck::Done);
                }
                Ok(PartAck::Holds(next.start_offset))
            }
            // Meta holds other bytes than we thought (an answer was lost): continue from the
            // offsets it names.
            Err(e) => match expected_offsets(&e) {
                Some(named) if named.1 <= self.size => {
                    self.expected = Some(named);
                    Ok(PartAck::Retry(e))
                }
                _ => Err(e),
            },
        }
    }

    async fn resume(&mut self, _ctx: &mut PublishContext<'_>, cause: Error) -> Result<PartAck> {
        let Some((start, end)) = self.expected.take() else { return Err(cause) };
        self.up.end_offset = end;
        self.st.video = Some(self.up.clone());
        Ok(PartAck::Holds(start))
    }
}

/// One upload to `rupload.facebook.com` (a Reel's bytes, or an Instagram container's resumable
/// upload): the whole file in one request from `offset`, streamed from its source. What the
/// state records once it is done is `done`'s to say.
struct Rupload<'a, S> {
    client: &'a MetaClient,
    state: &'a mut S,
    url: Url,
    size: u64,
    progress: UploadProgress,
    done: Box<dyn Fn(&mut S) + Send + 'a>,
    what: &'static str,
    refused: &'static str,
}

#[async_trait]
impl<S: CheckpointState + Send + Sync> UploadSession for Rupload<'_, S> {
    type State = S;

    fn state(&self) -> &S {
        self.state
    }

    fn progress(&self) -> UploadProgress {
        self.progress
    }

    fn set_progress(&mut self, progress: UploadProgress) {
        self.progress = progress;
        if progress.bytes_sent >= self.size {
            (self.done)(self.state);
        }
    }

    fn total(&self) -> u64 {
        self.size
    }

    fn part_len(&self, _index: u64, offset: u64) -> u64 {
        self.size - offset
    }

    async fn put_part(&mut self, ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck> {
        // One request carries the whole file: allow at least 256 KiB/s.
        let allowance = std::time::Duration::from_secs(part.len / 262_144);
        let rb = self
            .client
            .http
            .client()
            .post(self.url.clone())
            .header(AUTHORIZATION, oauth_header(ctx.access_token())?)
            .header("offset", part.offset.to_string())
            .timeout(self.client.http.config().upload_timeout + allowance)
            .header("file_size", self.size.to_string())
            .header(CONTENT_LENGTH, part.len.to_string())
            .body(part.into_body());
        let done: SuccessBody = self.client.execute(rb, CallKind::Idempotent, Some(&*ctx), self.what).await?;
        if !done.success {
            return Err(Error::transient(self.refused));
        }
        Ok(PartAck::Done)
    }
}

/// Sends a media item through `session` to the end, or a transient error.
async fn drive<S: UploadSession>(
    ctx: &mut PublishContext<'_>,
    client: &MetaClient,
    media: &Media,
    session: &mut S,
    policy: &UploadPolicy,
) -> Result<()> {
    match drive_upload(ctx, client.http.client(), media, session, policy).await? {
        UploadEnd::Complete => Ok(()),
        UploadEnd::Gone => Err(Error::transient("Meta dropped the upload session")),
    }
}

impl FacebookPagePlatform {
    pub(crate) async fn publish_video(
        &self,
        ctx: &mut PublishContext<'_>,
        st: &mut FacebookState,
        opts: &FacebookOptions,
    ) -> Result<PublishOutcome> {
        let media = ctx.content.media[0].clone();
        let page = ctx.account.remote_id.clone();
        let url = self.client.versioned(Host::GraphVideo, &format!("{page}/videos"));
        if let (MediaSource::Url(file_url), None) = (&media.source, &st.video) {
            return self.publish_video_by_url(ctx, st, opts, url, file_url.clone()).await;
        }
        let mut up = match st.video.clone() {
            Some(up) => up,
            None => {
                let size = media.require_size()?;
                let started: VideoPhaseBody = self
                    .client
                    .post_form(
                        url.clone(),
                        ctx.access_token(),
                        &[("upload_phase", "start".into()), ("file_size", size.to_string())],
                        CallKind::Create,
                        Some(&*ctx),
                        "starting the video upload",
                    )
                    .await?;
                let (Some(video_id), Some(session_id)) = (started.video_id, started.upload_session_id) else {
                    return Err(Error::transient("the video upload start answered without ids"));
                };
                let up = VideoUpload {
                    video_id,
                    session_id,
                    start_offset: started.start_offset,
                    end_offset: started.end_offset,
                    finished: false,
                };
                st.video = Some(up.clone());
                ctx.save_state(&*st).await?;
                up
            }
        };
        // Transfer: the server names each chunk's bounds; offsets are checkpointed after each.
        if up.start_offset < up.end_offset && !up.finished {
            let size = media.require_size()?;
            let mut session =
                VideoChunks { client: &self.client, st: &mut *st, up, url: url.clone(), size, expected: None };
            drive(ctx, &self.client, &media, &mut session, &VIDEO_POLICY).await?;
            up = session.up;
        }
        if !up.finished {
            let mut form: Vec<(&'static str, String)> =
                vec![("upload_phase", "finish".into()), ("upload_session_id", up.session_id.clone())];
            Self::video_text_fields(ctx, opts, &mut form);
            Self::schedule_fields(opts, &mut form);
            st.create_sent.mark();
            ctx.before_create(&*st).await?;
            let done: SuccessBody = self
                .client
                .post_form(url, ctx.access_token(), &form, CallKind::Create, Some(&*ctx), "finishing the video upload")
                .await?;
            if !done.success {
                return Err(Error::rejected(None, "Facebook refused to finish the video upload"));
            }
            up.finished = true;
            st.video = Some(up);
            ctx.save_state(&*st).await?;
        }
        self.video_status(ctx, st, opts).await
    }

    pub(crate) async fn publish_reel(
        &self,
        ctx: &mut PublishContext<'_>,
        st: &mut FacebookState,
        opts: &FacebookOptions,
    ) -> Result<PublishOutcome> {
        let media = ctx.content.media[0].clone();
        let page = ctx.account.remote_id.clone();
        let reels = self.client.versioned(Host::Graph, &format!("{page}/video_reels"));
        let mut reel = match st.reel.clone() {
            Some(reel) => reel,
            None => {
                let started: ReelStartBody = self
                    .client
                    .post_form(
                        reels.clone(),
                        ctx.access_token(),
                        &[("upload_phase", "start".into())],
                        CallKind::Create,
                        Some(&*ctx),
                        "starting the Reel upload",
                    )
                    .await?;
                let reel = ReelUpload { video_id: started.video_id, uploaded: false, finished: false };
                st.reel = Some(reel.clone());
                ctx.save_state(&*st).await?;
                reel
            }
        };
        if !reel.uploaded {
            self.upload_reel(ctx, st, &media, &reel.video_id).await?;
            reel.uploaded = true;
        }
        if !reel.finished {
            let mut form: Vec<(&'static str, String)> = vec![
                ("upload_phase", "finish".into()),
                ("video_id", reel.video_id.clone()),
                ("video_state", if opts.schedule_at.is_some() { "SCHEDULED" } else { "PUBLISHED" }.into()),
            ];
            Self::video_text_fields(ctx, opts, &mut form);
            if let Some(at) = opts.schedule_at {
                form.push(("scheduled_publish_time", at.timestamp().to_string()));
            }
            st.create_sent.mark();
            ctx.before_create(&*st).await?;
            let done: SuccessBody = match self
                .client
                .post_form(reels, ctx.access_token(), &form, CallKind::Create, Some(&*ctx), "publishing the Reel")
                .await
            {
                // A repeated finish of a Reel whose first finish did land: it is publishing.
                Err(Error::Rejected { message, .. }) if message.contains("already finished") => {
                    SuccessBody { success: true }
                }
                other => other?,
            };
            if !done.success {
                return Err(Error::rejected(None, "Facebook refused to publish the Reel"));
            }
            reel.finished = true;
            st.reel = Some(reel);
            ctx.save_state(&*st).await?;
        }
        self.video_status(ctx, st, opts).await
    }

    /// A Reel's bytes to `rupload.facebook.com`: a URL source as `file_url`, anything else
    /// streamed through the upload driver. The state records it uploaded.
    async fn upload_reel(
        &self,
        ctx: &mut PublishContext<'_>,
        st: &mut FacebookState,
        media: &Media,
        video_id: &str,
    ) -> Result<()> {
        let url =
            self.client.url(Host::Rupload, &format!("video-upload/{}/{}", self.client.cfg.graph_version, video_id));
        if let MediaSource::Url(u) = &media.source {
            let rb = self
                .client
                .http
                .client()
                .post(url)
                .header(AUTHORIZATION, oauth_header(ctx.access_token())?)
                .header("file_url", u.as_str());
            let done: SuccessBody =
                self.client.execute(rb, CallKind::Idempotent, Some(&*ctx), "uploading the Reel").await?;
            if !done.success {
                return Err(Error::transient("the Reel upload was not accepted"));
            }
            if let Some(r) = st.reel.as_mut() {
                r.uploaded = true;
            }
            ctx.save_state(&*st).await?;
        } else {
            let mut session = Rupload {
                client: &self.client,
                state: &mut *st,
                url,
                size: media.require_size()?,
                progress: UploadProgress::default(),
                done: Box::new(|st: &mut FacebookState| {
                    if let Some(r) = st.reel.as_mut() {
                        r.uploaded = true;
                    }
                }),
                what: "uploading the Reel",
                refused: "the Reel upload was not accepted",
            };
            drive(ctx, &self.client, media, &mut session, &RUPLOAD_POLICY).await?;
        }
        Ok(())
    }
}

impl InstagramPlatform {
    /// Uploads the bytes of every container created for a resumable upload (streamed, one
    /// piece in memory), checkpointing each one done.
    pub(crate) async fn flush_uploads(&self, ctx: &mut PublishContext<'_>, st: &mut InstagramState) -> Result<()> {
        for id in st.uploads_pending.clone() {
            let index = st.children.iter().position(|c| c == &id).unwrap_or(0);
            let media = ctx.content.media.get(index).cloned().ok_or_else(|| Error::transient("no media to upload"))?;
            let url = self.client.url(Host::Rupload, &format!("ig-api-upload/{}/{id}", self.client.cfg.graph_version));
            let mut session = Rupload {
                client: &self.client,
                state: &mut *st,
                url,
                size: media.require_size()?,
                progress: UploadProgress::default(),
                done: Box::new(move |st: &mut InstagramState| st.uploads_pending.retain(|c| c != &id)),
                what: "uploading the video to Instagram",
                refused: "Instagram did not accept the uploaded video",
            };
            drive(ctx, &self.client, &media, &mut session, &RUPLOAD_POLICY).await?;
        }
        Ok(())
    }
}
