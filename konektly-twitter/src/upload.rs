//! X's chunked media upload (`/2/media/upload`: initialize → append → finalize → status, then
//! the alt text), each step checkpointed, and what `processing_info` means.

use std::time::Duration;

use chrono::Utc;
use konektly_core::upload::{
    Backoff, Part, PartAck, UploadEnd, UploadPolicy, UploadProgress, UploadSession, drive_upload,
};
use konektly_core::{CallKind, Error, Media, MediaKind, PublishContext, Result, async_trait};
use reqwest::Method;

use crate::model::{
    AltText, AltTextMetadata, Data, InitializeUpload, MediaMetadata, MediaState, ProcessingInfo, UploadData, XState,
};
use crate::platform::XPlatform;

/// The longest wait between media status checks that X's `check_after_secs` may ask for.
pub(crate) const MAX_POLL_AFTER: Duration = Duration::from_secs(60);
/// Media ids this close to expiring are uploaded again rather than attached.
const EXPIRY_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// X takes at most 1000 segments per media item; an append is not retried (a failed one ends
/// the attempt, which resumes from the checkpoint).
const APPEND_POLICY: UploadPolicy = UploadPolicy::new(Backoff::immediate(0)).with_max_parts(1000);

/// The segments of one media item (`POST /2/media/upload/{id}/append`, `segment_index` and the
/// bytes as a multipart form); the progress is the item's `segments_sent` and `bytes_sent`.
struct Segments<'a> {
    platform: &'a XPlatform,
    state: &'a mut XState,
    i: usize,
    j: usize,
    path: String,
    total: u64,
    chunk: u64,
}

#[async_trait]
impl UploadSession for Segments<'_> {
    type State = XState;

    fn state(&self) -> &XState {
        self.state
    }

    fn progress(&self) -> UploadProgress {
        let ms = &self.state.items[self.i].media[self.j];
        UploadProgress { bytes_sent: ms.bytes_sent, parts_sent: u64::from(ms.segments_sent) }
    }

    fn set_progress(&mut self, progress: UploadProgress) {
        let ms = &mut self.state.items[self.i].media[self.j];
        ms.bytes_sent = progress.bytes_sent;
        ms.segments_sent = u32::try_from(progress.parts_sent).unwrap_or(u32::MAX);
    }

    fn total(&self) -> u64 {
        self.total
    }

    fn part_len(&self, _index: u64, _offset: u64) -> u64 {
        self.chunk
    }

    async fn put_part(&mut self, ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck> {
        let (index, len, held) = (part.index, part.len, part.offset + part.len);
        let media = reqwest::multipart::Part::stream_with_length(part.into_body(), len)
            .file_name("chunk")
            .mime_str("application/octet-stream")
            .map_err(|e| Error::Config(format!("multipart: {e}")))?;
        let form = reqwest::multipart::Form::new().text("segment_index", index.to_string()).part("media", media);
        let req = self
            .platform
            .request(Method::POST, &self.path, ctx.access_token())?
            .timeout(self.platform.cfg.http.config().upload_timeout)
            .multipart(form);
        // Appending a segment again at the same index is harmless.
        self.platform.call(Some(ctx), req, CallKind::Idempotent, "POST /2/media/upload/{id}/append").await?;
        Ok(PartAck::Holds(held))
    }
}

/// Where a media item's upload stands after one step.
pub(crate) enum MediaStep {
    Ready,
    Wait(Duration, String),
}
impl XPlatform {
    /// One media item through initialize → append (chunks streamed from the source) →
    /// finalize → status, then its alt text. Progress is checkpointed after every step.
    pub(crate) async fn prepare_media(
        &self,
        ctx: &mut PublishContext<'_>,
        state: &mut XState,
        i: usize,
        j: usize,
        media: &Media,
    ) -> Result<MediaStep> {
        let ms = &state.items[i].media[j];
        if ms.ready && ms.expires_at.is_some_and(|t| t <= Utc::now() + EXPIRY_MARGIN) {
            tracing::debug!(target: "konektly::x", media_id = %ms.media_id, "uploaded media expired; uploading again");
            state.items[i].media[j] = MediaState::default();
        }
        let size = media.require_size()?;

        if state.items[i].media[j].media_id.is_empty() {
            let body = InitializeUpload {
                media_type: media.mime.essence_str(),
                total_bytes: size,
                media_category: category(media),
            };
            let req = self.request(Method::POST, "/2/media/upload/initialize", ctx.access_token())?.json(&body);
            let what = "POST /2/media/upload/initialize";
            let init: Data<UploadData> = self.call_json(Some(ctx), req, CallKind::Create, what).await?;
            let ms = &mut state.items[i].media[j];
            ms.media_id = init.data.id;
            ms.expires_at = expiry(init.data.expires_after_secs);
            ctx.save_state(&*state).await?;
        }

        if !state.items[i].media[j].finalized {
            let media_id = state.items[i].media[j].media_id.clone();
            let chunk = self.cfg.chunk_size as u64;
            let path = format!("/2/media/upload/{media_id}/append");
            let mut session = Segments { platform: self, state: &mut *state, i, j, path, total: size, chunk };
            let http = self.cfg.http.client();
            if drive_upload(ctx, http, media, &mut session, &APPEND_POLICY).await? != UploadEnd::Complete {
                return Err(Error::transient("X dropped the media upload"));
            }
            let req =
                self.request(Method::POST, &format!("/2/media/upload/{media_id}/finalize"), ctx.access_token())?;
            let what = "POST /2/media/upload/{id}/finalize";
            let fin: Data<UploadData> = self.call_json(Some(ctx), req, CallKind::Idempotent, what).await?;
            let ms = &mut state.items[i].media[j];
            ms.finalized = true;
            ms.expires_at = expiry(fin.data.expires_after_secs).or(ms.expires_at);
            let step = processing_step(fin.data.processing_info.as_ref(), &media_id)?;
            ms.ready = matches!(step, MediaStep::Ready);
            ctx.save_state(&*state).await?;
            if let MediaStep::Wait(..) = step {
                return Ok(step);
            }
        }

        if !state.items[i].media[j].ready {
            let media_id = state.items[i].media[j].media_id.clone();
            let req = self
                .request(Method::GET, "/2/media/upload", ctx.access_token())?
                // `command=STATUS` is optional in v2; X's own sample sends it.
                .query(&[("command", "STATUS"), ("media_id", media_id.as_str())]);
            let status: Data<UploadData> =
                self.call_json(Some(ctx), req, CallKind::Idempotent, "GET /2/media/upload").await?;
            let step = processing_step(status.data.processing_info.as_ref(), &media_id)?;
            if let MediaStep::Wait(..) = step {
                return Ok(step);
            }
            let ms = &mut state.items[i].media[j];
            ms.ready = true;
            ms.expires_at = expiry(status.data.expires_after_secs).or(ms.expires_at);
            ctx.save_state(&*state).await?;
        }

        if let Some(alt) = media.alt_text.as_deref().filter(|a| !a.is_empty())
            && !state.items[i].media[j].alt_text_set
        {
            let media_id = state.items[i].media[j].media_id.clone();
            let body = MediaMetadata { id: &media_id, metadata: AltTextMetadata { alt_text: AltText { text: alt } } };
            let req = self.request(Method::POST, "/2/media/metadata", ctx.access_token())?.json(&body);
            // Setting the same alt text again is harmless.
            self.call(Some(ctx), req, CallKind::Idempotent, "POST /2/media/metadata").await?;
            state.items[i].media[j].alt_text_set = true;
            ctx.save_state(&*state).await?;
        }
        Ok(MediaStep::Ready)
    }
}

fn category(media: &Media) -> &'static str {
    match media.kind() {
        MediaKind::Gif => "tweet_gif",
        MediaKind::Video => "tweet_video",
        _ => "tweet_image",
    }
}

pub(crate) fn expiry(secs: Option<i64>) -> Option<chrono::DateTime<Utc>> {
    secs.and_then(chrono::TimeDelta::try_seconds).and_then(|d| Utc::now().checked_add_signed(d))
}

/// What `processing_info` says: absent or `succeeded` → ready; `failed` → rejected; else wait
/// `check_after_secs`.
pub(crate) fn processing_step(info: Option<&ProcessingInfo>, media_id: &str) -> Result<MediaStep> {
    let Some(info) = info else { return Ok(MediaStep::Ready) };
    match info.state.as_str() {
        "succeeded" => Ok(MediaStep::Ready),
        "failed" => {
            let detail = info.error.as_ref().map(|e| {
                format!(
                    "{} {}{}",
                    e.name.as_deref().unwrap_or(""),
                    e.message.as_deref().unwrap_or(""),
                    e.code.map(|c| format!(" (code {c})")).unwrap_or_default()
                )
            });
            Err(Error::rejected(
                Some("media-processing-failed".into()),
                format!("X could not process media {media_id}: {}", detail.unwrap_or_else(|| "no reason given".into())),
            ))
        }
        other => {
            let after = Duration::from_secs(info.check_after_secs.unwrap_or(1).max(1)).min(MAX_POLL_AFTER);
            let progress = info.progress_percent.map(|p| format!(", {p}%")).unwrap_or_default();
            Ok(MediaStep::Wait(after, format!("X is processing media {media_id} ({other}{progress})")))
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_info_states() {
        let info = |state: &str, after| ProcessingInfo {
            state: state.into(),
            check_after_secs: after,
            progress_percent: Some(10),
            error: None,
        };
        assert!(matches!(processing_step(None, "1"), Ok(MediaStep::Ready)));
        assert!(matches!(processing_step(Some(&info("succeeded", None)), "1"), Ok(MediaStep::Ready)));
        assert!(matches!(
            processing_step(Some(&info("pending", Some(5))), "1"),
            Ok(MediaStep::Wait(d, _)) if d == Duration::from_secs(5)
        ));
        assert!(matches!(
            processing_step(Some(&info("in_progress", Some(3600))), "1"),
            Ok(MediaStep::Wait(d, _)) if d == MAX_POLL_AFTER
        ));
        assert!(matches!(
            processing_step(Some(&info("failed", None)), "1"),
            Err(Error::Rejected { code: Some(c), .. }) if c == "media-processing-failed"
        ));
    }
}
