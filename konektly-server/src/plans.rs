//! Queues with time slots and recurring series (issue 17) over HTTP: the same operations as the
//! library's `Queues` and `SeriesRunner`, as the caller's owner.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use konektly_core::queue::{Queue, QueuedPost, Queues, SlotPlan};
use konektly_core::series::{MissedPolicy, Recurrence, Series, SeriesId, SeriesRunner};
use konektly_core::{AccountId, Content, Post, PostId, Target};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiError, ApiResult, Problem};

type St = State<Arc<AppState>>;

impl AppState {
    fn queues(&self) -> Queues {
        Queues::new(self.engine.clone(), self.store.clone())
    }

    /// The series runner over this server's engine and store.
    pub fn series(&self) -> SeriesRunner {
        SeriesRunner::new(self.engine.clone(), self.store.clone())
    }
}

/// A new queue.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QueueRequest {
    /// Its name (unique per owner).
    pub name: String,
    /// Its accounts.
    #[schema(value_type = Vec<String>)]
    pub accounts: Vec<AccountId>,
    /// An IANA time zone.
    pub time_zone: String,
    /// The weekly slots: `09:00,12:30 Mon-Fri; 10:00 Sat`.
    pub slots: String,
}

/// A queue and its pending posts by slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// The queue.
    #[schema(value_type = Object)]
    pub queue: Queue,
    /// Its pending posts, in slot order.
    #[schema(value_type = Vec<Object>)]
    pub pending: Vec<QueuedPost>,
}

/// Makes a queue.
#[utoipa::path(post, path = "/v1/queues", tag = "queues", request_body = QueueRequest,
    responses((status = 201, body = Object), (status = "4XX", body = Problem)), security(("api_key" = [])))]
pub async fn create_queue(
    State(s): St,
    caller: Caller,
    Json(r): Json<QueueRequest>,
) -> ApiResult<(StatusCode, Json<Queue>)> {
    let plan = SlotPlan::parse(&r.time_zone, &r.slots)?;
    let q = s.queues().create(caller.owner()?, &r.name, &r.accounts, plan).await?;
    Ok((StatusCode::CREATED, Json(q)))
}

/// The caller's queues.
#[utoipa::path(get, path = "/v1/queues", tag = "queues", responses((status = 200, body = Vec<Object>)), security(("api_key" = [])))]
pub async fn list_queues(State(s): St, caller: Caller) -> ApiResult<Json<Vec<Queue>>> {
    Ok(Json(s.queues().list(caller.owner()?).await?))
}

/// A queue and its pending posts.
#[utoipa::path(get, path = "/v1/queues/{name}", tag = "queues", params(("name" = String, Path, description = "The queue's name or id")),
    responses((status = 200, body = QueueView), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn get_queue(State(s): St, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<QueueView>> {
    let owner = caller.owner()?;
    let qs = s.queues();
    Ok(Json(QueueView { queue: qs.get(owner, &name).await?, pending: qs.pending(owner, &name).await? }))
}

/// A post for a queue: its content, and optionally some of the queue's accounts with options.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QueuePostRequest {
    /// The content.
    #[schema(value_type = Object)]
    pub content: Content,
    /// Targets among the queue's accounts (absent: all of them).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub targets: Vec<Target>,
}

/// Adds a post at the queue's next free slot (atomic across nodes).
#[utoipa::path(post, path = "/v1/queues/{name}/posts", tag = "queues", params(("name" = String, Path)), request_body = QueuePostRequest,
    responses((status = 201, body = Object), (status = 422, body = Problem)), security(("api_key" = [])))]
pub async fn add_to_queue(
    State(s): St,
    caller: Caller,
    Path(name): Path<String>,
    Json(r): Json<QueuePostRequest>,
) -> ApiResult<(StatusCode, Json<QueuedPost>)> {
    let owner = caller.owner()?;
    let mut post = Post::new(owner.clone(), r.content);
    post.targets = r.targets;
    Ok((StatusCode::CREATED, Json(s.queues().add(owner, &name, post).await?)))
}

/// A queue operation's name: `pause`, `resume`, `shuffle`.
#[utoipa::path(post, path = "/v1/queues/{name}/{action}", tag = "queues",
    params(("name" = String, Path), ("action" = String, Path, description = "pause, resume or shuffle")),
    responses((status = 204), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn queue_action(
    State(s): St,
    caller: Caller,
    Path((name, action)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let owner = caller.owner()?;
    let qs = s.queues();
    match action.as_str() {
        "pause" => qs.pause(owner, &name).await?,
        "resume" => qs.resume(owner, &name).await.map(drop)?,
        "shuffle" => qs.shuffle(owner, &name).await.map(drop)?,
        other => return Err(ApiError::not_found(format!("no queue action `{other}` (pause, resume, shuffle)"))),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A new order of a queue's pending posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReorderRequest {
    /// Every pending post once, in the new order.
    #[schema(value_type = Vec<String>)]
    pub posts: Vec<PostId>,
}

/// Reorders a queue's pending posts over their slots.
#[utoipa::path(put, path = "/v1/queues/{name}/order", tag = "queues", params(("name" = String, Path)), request_body = ReorderRequest,
    responses((status = 200, body = Vec<Object>), (status = "4XX", body = Problem)), security(("api_key" = [])))]
pub async fn reorder_queue(
    State(s): St,
    caller: Caller,
    Path(name): Path<String>,
    Json(r): Json<ReorderRequest>,
) -> ApiResult<Json<Vec<QueuedPost>>> {
    Ok(Json(s.queues().reorder(caller.owner()?, &name, &r.posts).await?))
}

/// A new plan.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanRequest {
    /// An IANA time zone.
    pub time_zone: String,
    /// The weekly slots.
    pub slots: String,
}

/// Replaces a queue's plan; its pending posts take the new plan's first slots, in order.
#[utoipa::path(put, path = "/v1/queues/{name}/plan", tag = "queues", params(("name" = String, Path)), request_body = PlanRequest,
    responses((status = 200, body = Vec<Object>), (status = "4XX", body = Problem)), security(("api_key" = [])))]
pub async fn set_plan(
    State(s): St,
    caller: Caller,
    Path(name): Path<String>,
    Json(r): Json<PlanRequest>,
) -> ApiResult<Json<Vec<QueuedPost>>> {
    let plan = SlotPlan::parse(&r.time_zone, &r.slots)?;
    Ok(Json(s.queues().set_plan(caller.owner()?, &name, plan).await?))
}

/// Publishes a queued post now ("skip the line"); its slot is freed.
#[utoipa::path(post, path = "/v1/queues/{name}/posts/{post}/now", tag = "queues", params(("name" = String, Path), ("post" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn post_now(
    State(s): St,
    caller: Caller,
    Path((name, post)): Path<(String, PostId)>,
) -> ApiResult<StatusCode> {
    s.queues().post_now(caller.owner()?, &name, post).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cancels a queued post; its slot is freed.
#[utoipa::path(delete, path = "/v1/queues/{name}/posts/{post}", tag = "queues", params(("name" = String, Path), ("post" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn remove_from_queue(
    State(s): St,
    caller: Caller,
    Path((name, post)): Path<(String, PostId)>,
) -> ApiResult<StatusCode> {
    s.queues().remove(caller.owner()?, &name, post).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new recurring series.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SeriesRequest {
    /// An RFC 5545 rule: `FREQ=WEEKLY;BYDAY=MO,TH;COUNT=10`.
    pub rule: String,
    /// An IANA time zone.
    pub time_zone: String,
    /// The first occurrence, local (`2026-12-07T09:00`).
    pub start: String,
    /// The content (`{n}` and `{date}` are replaced).
    #[schema(value_type = Object)]
    pub content: Content,
    /// The targets.
    #[schema(value_type = Vec<Object>)]
    pub targets: Vec<Target>,
    /// Texts cycled over the occurrences.
    #[serde(default)]
    pub variants: Vec<String>,
    /// `skip` (default) or `publish_latest_once`.
    #[serde(default)]
    #[schema(value_type = String)]
    pub missed: MissedPolicy,
    /// How far ahead occurrences are created, seconds (default a week).
    #[serde(default)]
    pub horizon_secs: Option<u64>,
}

/// Makes a recurring series and creates its occurrences within the horizon.
#[utoipa::path(post, path = "/v1/series", tag = "series", request_body = SeriesRequest,
    responses((status = 201, body = Object), (status = "4XX", body = Problem)), security(("api_key" = [])))]
pub async fn create_series(
    State(s): St,
    caller: Caller,
    Json(r): Json<SeriesRequest>,
) -> ApiResult<(StatusCode, Json<Series>)> {
    let owner = caller.owner()?.clone();
    let mut template = Post::new(owner.clone(), r.content);
    template.targets = r.targets;
    let series = Series {
        id: SeriesId::new(),
        owner,
        rule: Recurrence::parse(&r.rule)?,
        time_zone: r.time_zone,
        start: r.start,
        template,
        variants: r.variants,
        missed: r.missed,
        horizon_secs: r.horizon_secs.unwrap_or(7 * 86_400),
        grace_secs: 15 * 60,
        paused: false,
        next: 0,
        end_before: None,
        overrides: Default::default(),
        version: 0,
    };
    Ok((StatusCode::CREATED, Json(s.series().create(series).await?)))
}

/// The caller's series.
#[utoipa::path(get, path = "/v1/series", tag = "series", responses((status = 200, body = Vec<Object>)), security(("api_key" = [])))]
pub async fn list_series(State(s): St, caller: Caller) -> ApiResult<Json<Vec<Series>>> {
    Ok(Json(s.store.list_series(Some(caller.owner()?)).await?))
}

/// Pauses or resumes a series, or skips an occurrence (`skip-<n>`, from 1).
#[utoipa::path(post, path = "/v1/series/{id}/{action}", tag = "series",
    params(("id" = String, Path), ("action" = String, Path, description = "pause, resume, or skip-N (N from 1)")),
    responses((status = 204), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn series_action(
    State(s): St,
    caller: Caller,
    Path((id, action)): Path<(SeriesId, String)>,
) -> ApiResult<StatusCode> {
    let owner = caller.owner()?;
    let r = s.series();
    match action.as_str() {
        "pause" => r.pause(owner, id).await.map(drop)?,
        "resume" => r.resume(owner, id).await.map(drop)?,
        a => match a.strip_prefix("skip-").and_then(|n| n.parse::<u32>().ok()).filter(|n| *n >= 1) {
            Some(n) => r.skip(owner, id, n - 1).await?,
            None => return Err(ApiError::not_found(format!("no series action `{a}` (pause, resume, skip-N)"))),
        },
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a series (its created posts stay scheduled).
#[utoipa::path(delete, path = "/v1/series/{id}", tag = "series", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn delete_series(State(s): St, caller: Caller, Path(id): Path<SeriesId>) -> ApiResult<StatusCode> {
    s.series().delete(caller.owner()?, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// When a series pass last ran, for the background task.
pub(crate) async fn materialize_all(s: &AppState) {
    if let Err(e) = s.series().materialize_all(Utc::now()).await {
        tracing::warn!(target: "konektly::server", error = %e, "creating recurring posts failed");
    }
}

/// A published post's metrics now, per target, with the snapshots taken since.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetMetricsView {
    /// The target.
    #[schema(value_type = String)]
    pub target: konektly_core::TargetId,
    /// Its platform.
    pub platform: String,
    /// The figures now, if the platform gave them.
    #[schema(value_type = Option<Object>)]
    pub now: Option<konektly_core::analytics::PostMetrics>,
    /// Why there are none (not published, not supported, a scope missing…).
    pub error: Option<String>,
    /// The snapshots, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub snapshots: Vec<konektly_core::analytics::Snapshot>,
}

/// A post's metrics (issue 18): each target's figures now and its snapshots over time.
#[utoipa::path(get, path = "/v1/posts/{id}/metrics", tag = "posts", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TargetMetricsView>), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn post_metrics(
    State(s): St,
    caller: Caller,
    Path(id): Path<PostId>,
) -> ApiResult<Json<Vec<TargetMetricsView>>> {
    let owner = caller.owner()?;
    let analytics = konektly_core::analytics::Analytics::new(s.engine.clone(), s.store.clone());
    let mut out = Vec::new();
    for t in s.engine.owner(owner).status(id).await? {
        let now = analytics.post_metrics(owner, t.id).await;
        out.push(TargetMetricsView {
            target: t.id,
            platform: t.platform.to_string(),
            error: now.as_ref().err().map(ToString::to_string),
            now: now.ok(),
            snapshots: analytics.series(owner, t.id).await?,
        });
    }
    Ok(Json(out))
}

/// An account's metrics now (followers…).
#[utoipa::path(get, path = "/v1/accounts/{id}/metrics", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = "4XX", body = Problem)), security(("api_key" = [])))]
pub async fn account_metrics(
    State(s): St,
    caller: Caller,
    Path(id): Path<AccountId>,
) -> ApiResult<Json<konektly_core::analytics::AccountMetrics>> {
    let analytics = konektly_core::analytics::Analytics::new(s.engine.clone(), s.store.clone());
    Ok(Json(analytics.account_metrics(caller.owner()?, id).await?))
}
