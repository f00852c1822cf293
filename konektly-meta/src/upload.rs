//! Sending media bytes to Meta: a video streamed from its source (one piece in memory), Facebook's
//! chunked video upload (start → transfer → finish, each chunk checkpointed, the offsets Meta
//! expects on a refused chunk), Reels through `rupload.facebook.com`, and Instagram's
//! resumable uploads to the containers that asked for them.

use konektly_core::{AccessToken, CallKind, Error, Media, MediaSource, PublishContext, PublishOutcome, Result};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};

use crate::client::{Host, MetaClient};
use crate::error::expected_offsets;
use crate::model::{
    FacebookOptions, FacebookState, InstagramState, ReelStartBody, ReelUpload, SuccessBody, VideoPhaseBody, VideoUpload,
};
use crate::platform::{FacebookPagePlatform, InstagramPlatform};

/// Bytes read per piece when a video is streamed to Meta (one piece in memory at a time).
const STREAM_PIECE: usize = 1 << 20;

/// `Authorization: OAuth …` (what `rupload.facebook.com` takes), marked sensitive.
fn oauth_header(token: &AccessToken) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("OAuth {}", token.expose()))
        .unwrap_or_else(|_| HeaderValue::from_static("OAuth invalid"));
    v.set_sensitive(true);
    v
}

/// Streams a media item's bytes as a request body: at most one piece in memory.
pub(crate) async fn streamed_body(client: &MetaClient, media: &Media) -> Result<reqwest::Body> {
    let reader = media.open_at(client.http.client(), 0).await?.chunks(STREAM_PIECE);
    let stream = futures_util::stream::try_unfold(reader, |mut r| async move {
        match r.next_chunk().await {
            Ok(Some(b)) => Ok(Some((b, r))),
            Ok(None) => Ok(None),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
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
        let mut reader: Option<(u64, konektly_core::ChunkReader)> = None;
        let size = media.size.unwrap_or(u64::MAX);
        let mut resyncs = 0;
        while up.start_offset < up.end_offset && !up.finished {
            let len = (up.end_offset - up.start_offset) as usize;
            let chunks = match reader.take() {
                Some((at, r)) if at == up.start_offset => r,
                _ => media.open_at(self.client.http.client(), up.start_offset).await?.chunks(len),
            };
            let mut chunks = chunks;
            let chunk = chunks
                .next_chunk_of(len)
                .await?
                .ok_or_else(|| Error::Config("the video ended before the size it declared".into()))?;
            let chunk_len = chunk.len() as u64;
            let part = reqwest::multipart::Part::stream_with_length(chunk, chunk_len).file_name("chunk");
            let form = reqwest::multipart::Form::new()
                .text("upload_phase", "transfer")
                .text("upload_session_id", up.session_id.clone())
                .text("start_offset", up.start_offset.to_string())
                .part("video_file_chunk", part);
            let rb = self
                .client
                .http
                .client()
                .post(url.clone())
                .query(&[("access_token", ctx.access_token().expose())])
                .timeout(self.client.http.config().upload_timeout)
                .multipart(form);
            let next: VideoPhaseBody =
                match self.client.execute(rb, CallKind::Idempotent, Some(&*ctx), "uploading a video chunk").await {
                    Ok(next) => next,
                    // Meta holds other bytes than we thought (an answer was lost): continue from
                    // the offsets it names.
                    Err(e) => match expected_offsets(&e) {
                        Some((start, end)) if resyncs < 3 && end <= size => {
                            resyncs += 1;
                            up.start_offset = start;
                            up.end_offset = end;
                            st.video = Some(up.clone());
                            ctx.save_state(&*st).await?;
                            continue;
                        }
                        _ => return Err(e),
                    },
                };
            reader = Some((up.end_offset, chunks));
            up.start_offset = next.start_offset;
            up.end_offset = next.end_offset;
            st.video = Some(up.clone());
            ctx.save_state(&*st).await?;
            ctx.report_progress(up.start_offset.min(size), size);
        }
        if !up.finished {
            let mut form: Vec<(&'static str, String)> =
                vec![("upload_phase", "finish".into()), ("upload_session_id", up.session_id.clone())];
            Self::video_text_fields(ctx, opts, &mut form);
            Self::schedule_fields(opts, &mut form);
            st.create_sent = true;
            st.create_sent_at = Some(chrono::Utc::now());
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
            let url = self
                .client
                .url(Host::Rupload, &format!("video-upload/{}/{}", self.client.cfg.graph_version, reel.video_id));
            let mut rb = self.client.http.client().post(url).header(AUTHORIZATION, oauth_header(ctx.access_token()));
            rb = match &media.source {
                MediaSource::Url(u) => rb.header("file_url", u.as_str()),
                _ => {
                    let size = media.require_size()?;
                    // One request carries the whole file: allow at least 256 KiB/s.
                    let allowance = std::time::Duration::from_secs(size / 262_144);
                    rb.header("offset", "0")
                        .timeout(self.client.http.config().upload_timeout + allowance)
                        .header("file_size", size.to_string())
                        .header(CONTENT_LENGTH, size.to_string())
                        .body(streamed_body(&self.client, &media).await?)
                }
            };
            let done: SuccessBody =
                self.client.execute(rb, CallKind::Idempotent, Some(&*ctx), "uploading the Reel").await?;
            if !done.success {
                return Err(Error::transient("the Reel upload was not accepted"));
            }
            reel.uploaded = true;
            st.reel = Some(reel.clone());
            ctx.save_state(&*st).await?;
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
            st.create_sent = true;
            st.create_sent_at = Some(chrono::Utc::now());
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
}

impl InstagramPlatform {
    /// Uploads the bytes of every container created for a resumable upload (streamed, one
    /// piece in memory), checkpointing each one done.
    pub(crate) async fn flush_uploads(&self, ctx: &mut PublishContext<'_>, st: &mut InstagramState) -> Result<()> {
        for id in st.uploads_pending.clone() {
            let index = st.children.iter().position(|c| c == &id).unwrap_or(0);
            let media = ctx.content.media.get(index).cloned().ok_or_else(|| Error::transient("no media to upload"))?;
            let size = media.require_size()?;
            let url = self.client.url(Host::Rupload, &format!("ig-api-upload/{}/{id}", self.client.cfg.graph_version));
            let mut auth = reqwest::header::HeaderValue::from_str(&format!("OAuth {}", ctx.access_token().expose()))
                .map_err(|_| Error::Config("the access token is not a valid header value".into()))?;
            auth.set_sensitive(true);
            let rb = self
                .client
                .http
                .client()
                .post(url)
                .header(reqwest::header::AUTHORIZATION, auth)
                .header("offset", "0")
                // One request carries the whole file: allow at least 256 KiB/s.
                .timeout(self.client.http.config().upload_timeout + std::time::Duration::from_secs(size / 262_144))
                .header("file_size", size.to_string())
                .header(reqwest::header::CONTENT_LENGTH, size.to_string())
                .body(streamed_body(&self.client, &media).await?);
            let done: crate::model::SuccessBody =
                self.client.execute(rb, CallKind::Idempotent, Some(&*ctx), "uploading the video to Instagram").await?;
            if !done.success {
                return Err(Error::transient("Instagram did not accept the uploaded video"));
            }
            st.uploads_pending.retain(|c| c != &id);
            ctx.save_state(&*st).await?;
        }
        Ok(())
    }
}
