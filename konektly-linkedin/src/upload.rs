//! Media bytes: the Images API. `initializeUpload` (owner = the post's author) gives an upload
//! URL and an image URN; one `PUT` sends the whole image (at most a few MB), so there is no part
//! plan and core's `drive_upload` is not needed. Each URN is checkpointed as soon as its bytes
//! are stored, so a restarted attempt uploads only the images it has not sent; an image whose
//! `PUT` was interrupted is simply uploaded again under a new URN (unused URNs cost nothing).

use konektly_core::{PublishContext, Result};

use crate::client::LinkedInClient;
use crate::model::State;

/// Uploads the content's images that the checkpoint does not hold yet, saving each URN.
pub(crate) async fn upload_images(
    client: &LinkedInClient,
    ctx: &mut PublishContext<'_>,
    state: &mut State,
    author: &str,
    max_bytes: u64,
) -> Result<()> {
    let token = ctx.access_token().clone();
    let media = ctx.content.media.clone();
    for (i, m) in media.iter().enumerate().skip(state.images.len()) {
        let init = client.initialize_image(&token, author).await?;
        let bytes = m.read_all(client.http.client(), max_bytes).await?;
        client.put_image(&token, &init.upload_url, m.mime.essence_str(), bytes).await?;
        tracing::debug!(target: "konektly::linkedin", image = %init.image, index = i, "image uploaded");
        state.images.push(init.image);
        ctx.save_state(&*state).await?;
    }
    Ok(())
}
