//! Media uploads: the request body is streamed to a temporary file (never whole in memory),
//! refused as soon as it passes the size limit, probed (type, dimensions, duration, codecs),
//! and copied into the engine's media store under its SHA-256.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use futures_util::StreamExt;
use konektly_core::{Media, MediaKey, MediaReader, MediaSource, StoredMedia};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiError, ApiResult, Problem};

/// An uploaded media item.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaView {
    /// Its key in the media store (the SHA-256 of its bytes).
    pub id: String,
    /// Put this in a post's `content.media` (add `alt_text` if you like).
    #[schema(value_type = Object)]
    pub media: Media,
}

/// Uploads a media item (the raw bytes as the body). Its facts are read from the bytes; the
/// limit is the largest any registered platform takes (`--max-media-bytes`).
#[utoipa::path(post, path = "/v1/media", tag = "media", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = MediaView), (status = 413, body = Problem), (status = 422, body = Problem)), security(("api_key" = [])))]
pub async fn upload(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> ApiResult<(StatusCode, Json<MediaView>)> {
    caller.owner()?;
    let store = s.engine.media_store().ok_or_else(|| ApiError::bad_request("this server has no media store"))?.clone();
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| ApiError::from(konektly_core::Error::storage("a temporary file", e)))?;
    let mut file = tokio::fs::File::from_std(
        tmp.reopen().map_err(|e| ApiError::from(konektly_core::Error::storage("a temporary file", e)))?,
    );
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
        size += chunk.len() as u64;
        if size > s.config.max_media_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "media_too_large",
                "The media is larger than this server takes",
                format!("at most {} bytes", s.config.max_media_bytes),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::from(konektly_core::Error::storage("writing an upload", e)))?;
    }
    file.flush().await.map_err(|e| ApiError::from(konektly_core::Error::storage("writing an upload", e)))?;
    drop(file);
    if size == 0 {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    let probed = Media::from_file(tmp.path()).await?;
    let reader = tokio::fs::File::open(tmp.path())
        .await
        .map_err(|e| ApiError::from(konektly_core::Error::storage("reading an upload", e)))?;
    let stored = store.put(MediaReader::new(Box::pin(reader)), &probed.mime).await?;
    let media = Media { source: MediaSource::Stored(StoredMedia::new(stored.key.clone())), ..probed };
    Ok((StatusCode::CREATED, Json(MediaView { id: stored.key.to_string(), media })))
}

/// The facts of a stored object, read again from its bytes (a client's word is not taken).
pub(crate) async fn probe_stored(s: &AppState, key: &MediaKey) -> ApiResult<Media> {
    let store = s.engine.media_store().ok_or_else(|| ApiError::bad_request("this server has no media store"))?;
    let mut reader = store.open_at(key, 0).await?.into_inner();
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| ApiError::from(konektly_core::Error::storage("a temporary file", e)))?;
    let mut file = tokio::fs::File::from_std(
        tmp.reopen().map_err(|e| ApiError::from(konektly_core::Error::storage("a temporary file", e)))?,
    );
    tokio::io::copy(&mut reader, &mut file)
        .await
        .map_err(|e| ApiError::from(konektly_core::Error::storage("reading stored media", e)))?;
    file.flush().await.map_err(|e| ApiError::from(konektly_core::Error::storage("reading stored media", e)))?;
    let probed = Media::from_file(tmp.path()).await?;
    Ok(Media { source: MediaSource::Stored(StoredMedia::new(key.clone())), ..probed })
}
