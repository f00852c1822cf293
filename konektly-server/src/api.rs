//! The `/v1` handlers. Every handler acts as its caller's owner ([`Konektly::owner`]): another
//! owner's post or account is `404`, exactly like one that does not exist.
//!
//! [`Konektly::owner`]: konektly_core::Konektly::owner

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use konektly_core::{
    Account, AccountId, Content, MediaSource, Post, PostId, StateName, Target, TargetFilter, TargetRecord, TargetState,
};
use konektly_store::IdempotencyCheck;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiError, ApiResult, Problem};

type St = State<Arc<AppState>>;

/// A connected account, as the API shows it (never its tokens).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// Our id.
    #[schema(value_type = String)]
    pub id: AccountId,
    /// `x`, `tiktok`, `facebook`, `instagram`, `youtube`.
    pub platform: String,
    /// The platform's id of the user, Page or channel.
    pub remote_id: String,
    /// `@handle`, if any.
    pub handle: Option<String>,
    /// Display name, if any.
    pub display_name: Option<String>,
    /// `active`, `reauth_required` or `disconnected`.
    pub status: String,
    /// Why it must be reconnected, when it must.
    pub status_reason: Option<String>,
    /// The user account a Page or Instagram account was reached through.
    #[schema(value_type = Option<String>)]
    pub parent: Option<AccountId>,
    /// When it was connected.
    pub created_at: DateTime<Utc>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        let (status, reason) = match &a.status {
            konektly_core::AccountStatus::Active => ("active", None),
            konektly_core::AccountStatus::ReauthRequired { reason } => ("reauth_required", Some(reason.clone())),
            konektly_core::AccountStatus::Disconnected => ("disconnected", None),
        };
        Self {
            id: a.id,
            platform: a.platform.as_str().to_owned(),
            remote_id: a.remote_id.clone(),
            handle: a.handle.clone(),
            display_name: a.display_name.clone(),
            status: status.into(),
            status_reason: reason,
            parent: a.parent,
            created_at: a.created_at,
        }
    }
}

/// A connect's start.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConnectRequest {
    /// The platform to connect.
    pub platform: String,
    /// Where to send the user's browser once the connection is done: a page of this server
    /// (its origin; another is refused). Default: a page of the server's that says so.
    #[serde(default)]
    pub return_to: Option<url::Url>,
}

/// Where to send the user.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectStartView {
    /// The platform's authorization page.
    pub url: url::Url,
    /// The OAuth `state` the callback will carry.
    pub state: String,
    /// When the pending authorization expires.
    pub expires_at: DateTime<Utc>,
}

/// The OAuth callback's query.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The state of [`ConnectStartView`].
    pub state: Option<String>,
    /// The platform's error, when the user refused.
    pub error: Option<String>,
    /// The platform's description of it.
    pub error_description: Option<String>,
}

/// Starts connecting an account: returns the platform's authorization page.
#[utoipa::path(post, path = "/v1/accounts/connect", request_body = ConnectRequest, tag = "accounts",
    responses((status = 200, body = ConnectStartView), (status = "4XX", body = Problem)), security(("api_key" = [])))]
pub async fn connect(
    State(s): St,
    caller: Caller,
    Json(req): Json<ConnectRequest>,
) -> ApiResult<Json<ConnectStartView>> {
    let owner = caller.owner()?;
    // The callback redirects the browser to `return_to`: only to this server's own pages, or it
    // would be an open redirect anyone with a key could point at another site.
    if let Some(to) = &req.return_to
        && to.origin() != s.config.public_url.origin()
    {
        return Err(ApiError::bad_request(format!(
            "return_to must be a page of this server ({}), not {}",
            s.config.public_url.origin().ascii_serialization(),
            to.origin().ascii_serialization()
        )));
    }
    let platform = konektly_core::PlatformId::new(req.platform);
    let start = s.engine.owner(owner).connect(&platform, &s.callback_url()).await?;
    s.remember_return(&start.state, req.return_to);
    Ok(Json(ConnectStartView { url: start.url, state: start.state, expires_at: start.expires_at }))
}

/// Starts reconnecting an account (same remote account only).
#[utoipa::path(post, path = "/v1/accounts/{id}/reconnect", tag = "accounts", params(("id" = String, Path, description = "The account id")),
    responses((status = 200, body = ConnectStartView), (status = "4XX", body = Problem)), security(("api_key" = [])))]
pub async fn reconnect(State(s): St, caller: Caller, Path(id): Path<AccountId>) -> ApiResult<Json<ConnectStartView>> {
    let start = s.engine.owner(caller.owner()?).reconnect(id, &s.callback_url()).await?;
    Ok(Json(ConnectStartView { url: start.url, state: start.state, expires_at: start.expires_at }))
}

/// The OAuth redirect URI: completes a connection on any node (the pending authorization is in
/// the database). No API key: the `state` is the credential, and it is used once.
#[utoipa::path(get, path = "/v1/oauth/callback", tag = "accounts", params(CallbackQuery),
    responses((status = 200, description = "The connection is done"), (status = 303, description = "Sent to `return_to`"), (status = "4XX", body = Problem)))]
pub async fn callback(State(s): St, Query(q): Query<CallbackQuery>) -> Response {
    let page = |status: StatusCode, title: &str, body: String| {
        (status, Html(crate::console::page(title, &format!("<p>{}</p>", crate::console::escape(&body)))))
            .into_response()
    };
    if let Some(e) = q.error {
        let why = q.error_description.unwrap_or(e);
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            format!("The platform did not connect the account: {why}"),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return page(StatusCode::BAD_REQUEST, "Not connected", "The callback needs `code` and `state`.".into());
    };
    let return_to = s.take_return(&state);
    match s.engine.complete_connect(&state, &code).await {
        Ok(accounts) => match return_to {
            Some(url) => Redirect::to(url.as_str()).into_response(),
            None => {
                let names: Vec<String> = accounts
                    .iter()
                    .map(|a| format!("{} {}", a.platform, a.handle.as_deref().unwrap_or(&a.remote_id)))
                    .collect();
                page(StatusCode::OK, "Connected", format!("Connected: {}. You can close this page.", names.join(", ")))
            }
        },
        Err(e) => page(StatusCode::BAD_REQUEST, "Not connected", format!("The connection failed: {e}")),
    }
}

/// The caller's accounts.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", responses((status = 200, body = Vec<AccountView>)), security(("api_key" = [])))]
pub async fn list_accounts(State(s): St, caller: Caller) -> ApiResult<Json<Vec<AccountView>>> {
    let accounts = s.engine.owner(caller.owner()?).accounts().await?;
    Ok(Json(accounts.iter().map(AccountView::from).collect()))
}

/// One account.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path, description = "The account id")),
    responses((status = 200, body = AccountView), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn get_account(State(s): St, caller: Caller, Path(id): Path<AccountId>) -> ApiResult<Json<AccountView>> {
    Ok(Json(AccountView::from(&s.engine.owner(caller.owner()?).account(id).await?)))
}

/// Disconnects an account: revokes the grant, cancels its pending targets, erases its tokens.
#[utoipa::path(delete, path = "/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path, description = "The account id")),
    responses((status = 204), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn disconnect(State(s): St, caller: Caller, Path(id): Path<AccountId>) -> ApiResult<StatusCode> {
    s.engine.owner(caller.owner()?).disconnect(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything stored about an account, as JSON (data portability; tokens are named, never
/// exported).
#[utoipa::path(get, path = "/v1/accounts/{id}/export", tag = "accounts", params(("id" = String, Path, description = "The account id")),
    responses((status = 200, body = Object), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn export_account(
    State(s): St,
    caller: Caller,
    Path(id): Path<AccountId>,
) -> ApiResult<Json<serde_json::Value>> {
    s.engine.owner(caller.owner()?).account(id).await?;
    Ok(Json(s.store.export_account(id).await?))
}

/// What an erasure removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    /// Accounts erased.
    pub accounts: usize,
    /// Targets removed.
    pub targets: u64,
}

/// Erases everything of the caller's owner: every account (revoked first where the platform
/// allows), its tokens and its post history.
#[utoipa::path(delete, path = "/v1/owner", tag = "accounts", responses((status = 200, body = ErasureView)), security(("api_key" = [])))]
pub async fn erase_owner(State(s): St, caller: Caller) -> ApiResult<Json<ErasureView>> {
    let owner = caller.owner()?.clone();
    let mine = s.engine.owner(&owner);
    let mut out = ErasureView { accounts: 0, targets: 0 };
    for a in mine.accounts().await? {
        // Revoke and cancel first; a platform that cannot be reached leaves the grant, not the data.
        if let Err(e) = mine.disconnect(a.id).await {
            tracing::warn!(target: "konektly::server", account = %a.id, error = %e, "revoking during an erasure failed; erasing anyway");
        }
        let erased = s.store.erase_account(a.id, konektly_store::ErasePolicy::default()).await?;
        out.accounts += 1;
        out.targets += erased.targets;
    }
    let rest = s.store.delete(&TargetFilter { owner: Some(owner), ..TargetFilter::default() }).await?;
    out.targets += rest as u64;
    Ok(Json(out))
}

/// A post to validate or create: the post's content, its targets, and when.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PostRequest {
    /// Text, media (as `/v1/media` returned them, or by URL), link, thread.
    #[schema(value_type = Object)]
    pub content: Content,
    /// The accounts, each with optional content and per-platform options.
    #[schema(value_type = Vec<Object>)]
    pub targets: Vec<Target>,
    /// When to publish (RFC 3339); absent: now.
    #[serde(default)]
    pub publish_at: Option<DateTime<Utc>>,
}

/// The violations of a post, per target, each listed once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationView {
    /// Whether it can be published as written.
    pub valid: bool,
    /// Every violation (each names its target and platform).
    #[schema(value_type = Vec<Object>)]
    pub violations: Vec<konektly_core::Violation>,
}

impl AppState {
    /// The post of a request, its stored media checked again (a client cannot state their facts).
    async fn post_of(&self, owner: &konektly_core::OwnerId, req: PostRequest, id: PostId) -> ApiResult<Post> {
        let mut post = Post::new(owner.clone(), req.content);
        post.id = id;
        post.targets = req.targets;
        post.publish_at = req.publish_at;
        self.check_media(&mut post.content).await?;
        for t in &mut post.targets {
            if let Some(c) = &mut t.content {
                self.check_media(c).await?;
            }
        }
        Ok(post)
    }

    async fn check_media(&self, content: &mut Content) -> ApiResult<()> {
        for (i, m) in content.media.iter_mut().enumerate() {
            match &m.source {
                MediaSource::File(_) => {
                    return Err(ApiError::bad_request(format!(
                        "media[{i}] names a file: upload it with POST /v1/media, or give a URL"
                    )));
                }
                MediaSource::Stored(stored) => {
                    let alt = m.alt_text.take();
                    *m = crate::media::probe_stored(self, &stored.key).await?;
                    m.alt_text = alt;
                }
                MediaSource::Url(_) | MediaSource::Bytes(_) => {}
            }
        }
        Ok(())
    }
}

/// Validates a post against every target's platform rules; nothing is stored or sent.
#[utoipa::path(post, path = "/v1/posts/validate", tag = "posts", request_body = PostRequest,
    responses((status = 200, body = ValidationView), (status = "4XX", body = Problem)), security(("api_key" = [])))]
pub async fn validate(State(s): St, caller: Caller, Json(req): Json<PostRequest>) -> ApiResult<Json<ValidationView>> {
    let owner = caller.owner()?;
    let post = s.post_of(owner, req, PostId::new()).await?;
    let violations = s.engine.owner(owner).validate(&post).await?;
    Ok(Json(ValidationView { valid: violations.is_empty(), violations }))
}

/// A post and its targets.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostView {
    /// The post.
    #[schema(value_type = String)]
    pub id: PostId,
    /// Each target's state.
    pub targets: Vec<TargetView>,
}

/// One target: where it stands, and the post at its platform once published.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    /// The target.
    #[schema(value_type = String)]
    pub id: konektly_core::TargetId,
    /// Its account.
    #[schema(value_type = String)]
    pub account: AccountId,
    /// Its platform.
    pub platform: String,
    /// `scheduled`, `in_flight`, `processing`, `unknown`, `published`, `failed`, `blocked`,
    /// `cancelled`.
    pub state: String,
    /// When it is (or was) due.
    pub due_at: DateTime<Utc>,
    /// Attempts made.
    pub attempts: u32,
    /// The platform's id of the post, once published.
    pub remote_id: Option<String>,
    /// Its public URL, when known.
    pub url: Option<url::Url>,
    /// Why it failed, or the last error it is retrying after.
    #[schema(value_type = Option<Object>)]
    pub last_error: Option<konektly_core::FailureRecord>,
    /// Whether a cancel was asked while the platform might be publishing it.
    pub cancel_requested: bool,
}

impl From<&TargetRecord> for TargetView {
    fn from(t: &TargetRecord) -> Self {
        let (remote_id, url) = match &t.state {
            TargetState::Published { remote } => (Some(remote.id.clone()), remote.url.clone()),
            _ => (None, None),
        };
        let last_error = match &t.state {
            TargetState::Failed { failure } => Some(failure.clone()),
            _ => t.last_error.clone(),
        };
        Self {
            id: t.id,
            account: t.account_id,
            platform: t.platform.as_str().to_owned(),
            state: t.state.name().to_owned(),
            due_at: t.due_at,
            attempts: t.attempts,
            remote_id,
            url,
            last_error,
            cancel_requested: t.cancel_requested_at.is_some(),
        }
    }
}

fn post_view(id: PostId, targets: &[TargetRecord]) -> PostView {
    PostView { id, targets: targets.iter().map(TargetView::from).collect() }
}

/// Creates a post, now or at `publish_at`. With an `Idempotency-Key`, the same request sent
/// again returns the same post (200) instead of creating another; the key with another body is
/// `422`.
#[utoipa::path(post, path = "/v1/posts", tag = "posts", request_body = PostRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request create the post once")),
    responses((status = 201, body = PostView), (status = 200, body = PostView, description = "A replay of an earlier request"),
        (status = 422, body = Problem)), security(("api_key" = [])))]
pub async fn create_post(State(s): St, caller: Caller, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let owner = caller.owner()?.clone();
    let req: PostRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the post: {e}")))?;
    let key = headers.get("idempotency-key").map(|v| v.to_str().map(str::to_owned));
    let id = match key {
        None => PostId::new(),
        Some(Err(_)) => return Err(ApiError::bad_request("the Idempotency-Key must be visible ASCII")),
        Some(Ok(k)) if k.is_empty() || k.len() > 255 => {
            return Err(ApiError::bad_request("the Idempotency-Key must have 1 to 255 characters"));
        }
        Some(Ok(k)) => {
            let id = PostId::from_idempotency_key(&owner, &k);
            let hash: String = sha2::Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
            match s.store.check_idempotency(&owner, &k, &hash, id).await? {
                IdempotencyCheck::New => id,
                IdempotencyCheck::Replay(post) => match s.engine.owner(&owner).status(post).await {
                    Ok(targets) => return Ok((StatusCode::OK, Json(post_view(post, &targets))).into_response()),
                    // The first request with this key stored no post (it was refused, or its
                    // process died before it stored it): this one makes it, under the same id.
                    Err(e) if e.kind() == konektly_core::ErrorKind::NotFound => post,
                    Err(e) => return Err(e.into()),
                },
                IdempotencyCheck::Mismatch => return Err(ApiError::idempotency_mismatch()),
            }
        }
    };
    let post = s.post_of(&owner, req, id).await?;
    let mine = s.engine.owner(&owner);
    let post_id = mine.schedule(&post).await?;
    let targets = mine.status(post_id).await?;
    Ok((StatusCode::CREATED, Json(post_view(post_id, &targets))).into_response())
}

/// A post's targets.
#[utoipa::path(get, path = "/v1/posts/{id}", tag = "posts", params(("id" = String, Path, description = "The post id")),
    responses((status = 200, body = PostView), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn get_post(State(s): St, caller: Caller, Path(id): Path<PostId>) -> ApiResult<Json<PostView>> {
    let targets = s.engine.owner(caller.owner()?).status(id).await?;
    Ok(Json(post_view(id, &targets)))
}

/// Filters and paging of the post list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only posts with a target in this state.
    pub state: Option<String>,
    /// Only posts with a target of this account.
    #[param(value_type = Option<String>)]
    pub account: Option<AccountId>,
    /// At most this many posts (1–200, default 50).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<PostId>,
}

/// A page of posts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostPage {
    /// The posts.
    pub posts: Vec<PostView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[schema(value_type = Option<String>)]
    pub next_cursor: Option<PostId>,
}

/// The caller's posts, newest first, with filters and cursor paging.
#[utoipa::path(get, path = "/v1/posts", tag = "posts", params(ListQuery),
    responses((status = 200, body = PostPage), (status = 400, body = Problem)), security(("api_key" = [])))]
pub async fn list_posts(State(s): St, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult<Json<PostPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 200"));
    }
    let mut filter = TargetFilter { account: q.account, ..TargetFilter::default() };
    if let Some(st) = &q.state {
        let name: StateName = st.parse().map_err(|_| ApiError::bad_request(format!("no target state `{st}`")))?;
        filter = filter.with_states(&[name]);
    }
    let targets = s.engine.owner(caller.owner()?).list(&filter).await?;
    // Post ids are time-ordered (UUID v7): newest first is descending.
    let mut posts: BTreeMap<std::cmp::Reverse<PostId>, Vec<TargetRecord>> = BTreeMap::new();
    for t in targets {
        if q.cursor.is_none_or(|c| t.post_id < c) {
            posts.entry(std::cmp::Reverse(t.post_id)).or_default().push(t);
        }
    }
    let more = posts.len() > limit;
    let page: Vec<PostView> = posts.iter().take(limit).map(|(id, ts)| post_view(id.0, ts)).collect();
    let next_cursor = if more { page.last().map(|p| p.id) } else { None };
    Ok(Json(PostPage { posts: page, next_cursor }))
}

/// What a cancel did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelView {
    /// Targets cancelled: nothing of them was or will be sent.
    pub cancelled: usize,
    /// Targets the platform may be publishing: they end `cancelled`, or `published` with a
    /// `cancel_requested` mark if it was too late. Watch their state.
    pub requested: usize,
}

/// Cancels a post's unfinished targets.
#[utoipa::path(post, path = "/v1/posts/{id}/cancel", tag = "posts", params(("id" = String, Path, description = "The post id")),
    responses((status = 200, body = CancelView), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn cancel_post(State(s): St, caller: Caller, Path(id): Path<PostId>) -> ApiResult<Json<CancelView>> {
    let r = s.engine.owner(caller.owner()?).cancel(id).await?;
    Ok(Json(CancelView { cancelled: r.cancelled, requested: r.requested }))
}

/// A new time.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RescheduleRequest {
    /// When to publish (RFC 3339).
    pub publish_at: DateTime<Utc>,
}

/// Moves a post's unpublished targets to a new time.
#[utoipa::path(post, path = "/v1/posts/{id}/reschedule", tag = "posts", params(("id" = String, Path, description = "The post id")), request_body = RescheduleRequest,
    responses((status = 200, body = PostView), (status = 404, body = Problem), (status = 409, body = Problem)), security(("api_key" = [])))]
pub async fn reschedule_post(
    State(s): St,
    caller: Caller,
    Path(id): Path<PostId>,
    Json(req): Json<RescheduleRequest>,
) -> ApiResult<Json<PostView>> {
    let mine = s.engine.owner(caller.owner()?);
    mine.reschedule(id, req.publish_at).await?;
    Ok(Json(post_view(id, &mine.status(id).await?)))
}

/// What deleting a post did, per target.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedTarget {
    /// The target.
    #[schema(value_type = String)]
    pub id: konektly_core::TargetId,
    /// `deleted` (removed at the platform), `cancelled` (never published), `cancel_requested`
    /// (the platform may be publishing it: delete again once it is published), or `failed`.
    pub result: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Deletes a post: its published targets are deleted at their platforms, its unfinished ones
/// cancelled.
#[utoipa::path(delete, path = "/v1/posts/{id}", tag = "posts", params(("id" = String, Path, description = "The post id")),
    responses((status = 200, body = Vec<DeletedTarget>), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn delete_post(State(s): St, caller: Caller, Path(id): Path<PostId>) -> ApiResult<Json<Vec<DeletedTarget>>> {
    let mine = s.engine.owner(caller.owner()?);
    let targets = mine.status(id).await?;
    let mut out = Vec::with_capacity(targets.len());
    for t in &targets {
        let (result, error) = match &t.state {
            TargetState::Published { remote } => match delete_remote(&s, t, remote).await {
                Ok(()) => ("deleted", None),
                Err(e) => ("failed", Some(e.to_string())),
            },
            state if state.is_final() => continue,
            _ => match s.engine.scheduler().cancel(t.id).await {
                Ok(r) if matches!(r.state, TargetState::Cancelled) => ("cancelled", None),
                Ok(_) => ("cancel_requested", None),
                Err(e) => ("failed", Some(e.to_string())),
            },
        };
        out.push(DeletedTarget { id: t.id, result: result.into(), error });
    }
    Ok(Json(out))
}

/// Deletes the post at the platform through the engine, which records it in the target's
/// state (`deleted_at`).
async fn delete_remote(
    s: &AppState,
    t: &TargetRecord,
    _remote: &konektly_core::RemotePost,
) -> konektly_core::Result<()> {
    s.engine.owner(&t.owner).delete_target(t.id).await.map(drop)
}
