//! The event log (`GET /v1/events`, and as Server-Sent Events) and webhook endpoints with their
//! delivery log.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use konektly_core::StoredEvent;
use konektly_store::{Delivery, Webhook};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiError, ApiResult, Problem};

type St = State<Arc<AppState>>;

/// Paging of the event log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// The `seq` of the last event seen (`next_cursor`); absent: from the start.
    pub after: Option<u64>,
    /// At most this many (1–500, default 100).
    pub limit: Option<usize>,
}

/// One event as the API shows it (the same JSON a webhook receives).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Its id: stable, de-duplicate on it.
    #[schema(value_type = String)]
    pub id: konektly_core::EventId,
    /// Its kind (`target.published`…).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its place in the log.
    pub seq: u64,
    /// When it happened.
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// What happened.
    #[schema(value_type = Object)]
    pub data: konektly_core::Event,
}

impl From<StoredEvent> for EventView {
    fn from(e: StoredEvent) -> Self {
        Self { id: e.id, kind: e.event.kind().to_owned(), seq: e.seq, timestamp: e.at, data: e.event }
    }
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events, in order.
    pub events: Vec<EventView>,
    /// Pass as `after` for what follows (the last `seq`, or `after` when there was nothing).
    pub next_cursor: u64,
}

/// The caller's events after a cursor, in order; nothing is skipped, whatever commits late.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = EventPage), (status = 400, body = Problem)), security(("api_key" = [])))]
pub async fn list_events(State(s): St, caller: Caller, Query(q): Query<EventsQuery>) -> ApiResult<Json<EventPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 500"));
    }
    let after = q.after.unwrap_or(0);
    let events = s.store.events_after(Some(caller.owner()?), after, limit).await?;
    let next_cursor = events.last().map_or(after, |e| e.seq);
    Ok(Json(EventPage { events: events.into_iter().map(EventView::from).collect(), next_cursor }))
}

/// The caller's events as Server-Sent Events (`id:` is the `seq`: a client that reconnects with
/// `Last-Event-ID` continues where it stopped).
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(EventsQuery),
    responses((status = 200, description = "text/event-stream of events")), security(("api_key" = [])))]
pub async fn stream_events(
    State(s): St,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let owner = caller.owner()?.clone();
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let after = last.or(q.after).unwrap_or(0);
    let state = s.clone();
    let stream = futures_util::stream::unfold((after, Vec::<StoredEvent>::new()), move |(mut after, mut buf)| {
        let state = state.clone();
        let owner = owner.clone();
        async move {
            loop {
                // The server is stopping: the stream ends (the client reconnects with
                // `Last-Event-ID`), so that the shutdown does not wait for it forever.
                if state.stopping.is_cancelled() {
                    return None;
                }
                if !buf.is_empty() {
                    let e = buf.remove(0);
                    after = e.seq;
                    let view = EventView::from(e);
                    let ev = SseEvent::default()
                        .id(view.seq.to_string())
                        .event(view.kind.clone())
                        .json_data(&view)
                        .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"));
                    return Some((Ok(ev), (after, buf)));
                }
                let waiter = state.sequenced.notified();
                match state.store.events_after(Some(&owner), after, 100).await {
                    Ok(events) if !events.is_empty() => buf = events,
                    Ok(_) => {
                        tokio::select! {
                            _ = state.stopping.cancelled() => return None,
                            _ = tokio::time::timeout(Duration::from_secs(5), waiter) => {}
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: "konektly::server", error = %e, "reading events for a stream failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A new webhook endpoint.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookRequest {
    /// Where to post events (http or https).
    pub url: url::Url,
    /// The kinds to receive; empty or absent: all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// A webhook endpoint and, once, its signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The endpoint.
    #[schema(value_type = Object)]
    pub webhook: Webhook,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks). Shown only now.
    pub secret: String,
}

/// Adds a webhook endpoint.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookRequest,
    responses((status = 201, body = CreatedWebhook), (status = 400, body = Problem)), security(("api_key" = [])))]
pub async fn create_webhook(
    State(s): St,
    caller: Caller,
    Json(req): Json<WebhookRequest>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    if !matches!(req.url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request("a webhook URL must be http or https"));
    }
    if let Some(bad) = req.events.iter().find(|k| !konektly_core::Event::KINDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown event kind `{bad}`; known: {}",
            konektly_core::Event::KINDS.join(", ")
        )));
    }
    let (webhook, secret) = s.store.create_webhook(caller.owner()?, &req.url, &req.events).await?;
    Ok((StatusCode::CREATED, Json(CreatedWebhook { webhook, secret: secret.expose().to_owned() })))
}

/// The caller's webhook endpoints.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", responses((status = 200, body = Vec<Object>)), security(("api_key" = [])))]
pub async fn list_webhooks(State(s): St, caller: Caller) -> ApiResult<Json<Vec<Webhook>>> {
    Ok(Json(s.store.list_webhooks(caller.owner()?).await?))
}

/// Removes a webhook endpoint (its pending deliveries too).
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn delete_webhook(State(s): St, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if s.store.delete_webhook(caller.owner()?, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("webhook {id}")))
    }
}

/// Filters of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveriesQuery {
    /// Only this endpoint's.
    pub webhook: Option<String>,
    /// At most this many (1–500, default 100).
    pub limit: Option<usize>,
}

/// The delivery log, newest first: each event's delivery to each endpoint, its attempts and
/// last answer.
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "webhooks", params(DeliveriesQuery),
    responses((status = 200, body = Vec<Object>)), security(("api_key" = [])))]
pub async fn list_deliveries(
    State(s): St,
    caller: Caller,
    Query(q): Query<DeliveriesQuery>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 500"));
    }
    Ok(Json(s.store.list_deliveries(caller.owner()?, q.webhook.as_deref(), limit).await?))
}

/// Sends a delivery again (a failed one, or one the receiver lost).
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{id}/replay", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn replay_delivery(State(s): St, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if s.store.replay_delivery(caller.owner()?, &id).await? {
        s.deliveries_due.notify_one();
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::not_found(format!("delivery {id}")))
    }
}
