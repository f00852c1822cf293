//! Media bytes: one `com.atproto.repo.uploadBlob` per image or video — the whole file as the
//! body, streamed — run by core's `drive_upload` as a session of one part. The blob reference
//! the PDS answers is saved in the item's checkpoint at once, so a restarted attempt does not
//! upload it again (a PDS keeps an unreferenced blob for minutes only, but the same bytes make
//! the same blob, so sending them again is harmless).

use konektly_core::upload::{
    Backoff, Part, PartAck, UploadEnd, UploadPolicy, UploadProgress, UploadSession, drive_upload,
};
use konektly_core::{Error, Media, PublishContext, Result, async_trait};
use url::Url;

use crate::model::State;
use crate::platform::BlueskyPlatform;

/// One request holds the file: nothing to resume, no retry here (the attempt's retry sends it
/// again).
const BLOB_POLICY: UploadPolicy = UploadPolicy::new(Backoff::immediate(0)).with_max_parts(1).streamed();

/// The upload of media `index` of item `item`: its progress is whether the item holds its blob.
struct Blob<'a> {
    platform: &'a BlueskyPlatform,
    state: &'a mut State,
    item: usize,
    index: usize,
    total: u64,
    mime: String,
    pds: Url,
}

#[async_trait]
impl UploadSession for Blob<'_> {
    type State = State;

    fn state(&self) -> &State {
        self.state
    }

    fn progress(&self) -> UploadProgress {
        if self.state.items[self.item].blobs.len() > self.index {
            UploadProgress { bytes_sent: self.total, parts_sent: 1 }
        } else {
            UploadProgress::default()
        }
    }

    fn set_progress(&mut self, _progress: UploadProgress) {
        // The blob reference, kept by `put_part`, is the progress.
    }

    fn total(&self) -> u64 {
        self.total
    }

    fn part_len(&self, _index: u64, _offset: u64) -> u64 {
        self.total
    }

    async fn put_part(&mut self, ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck> {
        let len = part.len;
        let blob = self.platform.client.upload_blob(ctx, &self.pds, &self.mime, len, part.into_body()).await?;
        let blobs = &mut self.state.items[self.item].blobs;
        blobs.truncate(self.index);
        blobs.push(blob);
        Ok(PartAck::Holds(self.total))
    }
}

impl BlueskyPlatform {
    /// Uploads `media` as blob `index` of item `item` (skipped when the checkpoint holds it).
    pub(crate) async fn upload_blob(
        &self,
        ctx: &mut PublishContext<'_>,
        state: &mut State,
        pds: &Url,
        item: usize,
        index: usize,
        media: &Media,
    ) -> Result<()> {
        if state.items[item].blobs.len() > index {
            return Ok(());
        }
        let total = media.require_size()?;
        let mime = media.mime.essence_str().to_owned();
        let mut session = Blob { platform: self, state, item, index, total, mime, pds: pds.clone() };
        match drive_upload(ctx, self.client.http.client(), media, &mut session, &BLOB_POLICY).await? {
            UploadEnd::Complete => Ok(()),
            UploadEnd::Gone => Err(Error::transient("the PDS dropped the blob upload")),
        }
    }
}
