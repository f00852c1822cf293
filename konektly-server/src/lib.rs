//! # konektly-server
//!
//! A self-hosted publishing API over the konektly engine, for backends in any language: a
//! versioned REST API (`/v1`, OpenAPI 3.1 at `/v1/openapi.json`, a reference page at
//! `/v1/docs`), API keys per owner (hashed at rest), RFC 9457 errors, durable events (written
//! in the same transaction as the change that raised them, read with `GET /v1/events` or as
//! Server-Sent Events) and webhooks signed the Standard Webhooks way, retried for over a day,
//! with a delivery log and replays. Prometheus metrics at `/metrics`, `/healthz`.
//!
//! Everything goes through the engine and the store: the server keeps no state of its own, so
//! several nodes can serve one database (any node completes an OAuth callback, claims a
//! delivery, numbers events).
//!
//! ```no_run
//! # async fn run(engine: konektly_core::Konektly, store: std::sync::Arc<dyn konektly_store::ServerStore>) -> std::io::Result<()> {
//! let server = konektly_server::Server::new(engine, store, konektly_server::ServerConfig::new("http://127.0.0.1:8080".parse().unwrap()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server.serve(listener, std::future::pending()).await
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod console;
pub mod feeds;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod plans;
pub mod problem;
pub mod webhooks;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{Html, IntoResponse};
use axum::routing::{delete, get, post};
use konektly_core::Konektly;
use konektly_store::ServerStore;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use webhooks::DispatchConfig;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The server's public address: the OAuth redirect URI is `<public_url>/v1/oauth/callback`.
    pub public_url: Url,
    /// Requests per minute per API key (0: no limit).
    pub requests_per_minute: u32,
    /// The largest JSON body.
    pub max_body_bytes: usize,
    /// The largest media upload.
    pub max_media_bytes: u64,
    /// How long a request may take (uploads excepted).
    pub request_timeout: Duration,
    /// Webhook delivery.
    pub dispatch: DispatchConfig,
    /// Whether this node numbers events and delivers webhooks (every node may; they take turns).
    pub background: bool,
}

impl ServerConfig {
    /// Defaults for a server reachable at `public_url`.
    pub fn new(public_url: Url) -> Self {
        Self {
            public_url,
            requests_per_minute: 600,
            max_body_bytes: 1024 * 1024,
            max_media_bytes: 4 * 1024 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            dispatch: DispatchConfig::default(),
            background: true,
        }
    }
}

/// What the handlers share.
pub struct AppState {
    /// The engine.
    pub engine: Konektly,
    /// The store.
    pub store: Arc<dyn ServerStore>,
    /// The settings.
    pub config: ServerConfig,
    /// Per-key rate limits.
    pub limiter: auth::RateLimiter,
    /// Notified when events were numbered (wakes event streams).
    pub sequenced: Notify,
    /// Notified when a delivery became due (a replay).
    pub deliveries_due: Notify,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Cancelled when the server stops: background tasks and event streams end.
    pub stopping: tokio_util::sync::CancellationToken,
    returns: Mutex<HashMap<String, Url>>,
}

impl AppState {
    /// The OAuth redirect URI.
    pub fn callback_url(&self) -> Url {
        let mut u = self.config.public_url.clone();
        u.set_path("/v1/oauth/callback");
        u.set_query(None);
        u
    }

    fn remember_return(&self, state: &str, to: Option<Url>) {
        if let Some(to) = to {
            let mut r = self.returns.lock().unwrap_or_else(|p| p.into_inner());
            // Bounded: a page that starts connects and never finishes them cannot grow it.
            if r.len() > 10_000 {
                r.clear();
            }
            r.insert(state.to_owned(), to);
        }
    }

    fn take_return(&self, state: &str) -> Option<Url> {
        self.returns.lock().unwrap_or_else(|p| p.into_inner()).remove(state)
    }
}

/// The server.
#[derive(Clone)]
pub struct Server {
    state: Arc<AppState>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("public_url", &self.state.config.public_url.as_str()).finish_non_exhaustive()
    }
}

impl Server {
    /// A server over `engine` and `store` (the same store the engine was built with).
    pub fn new(engine: Konektly, store: Arc<dyn ServerStore>, config: ServerConfig) -> Self {
        let limiter = auth::RateLimiter::new(config.requests_per_minute);
        Self {
            state: Arc::new(AppState {
                engine,
                store,
                config,
                limiter,
                sequenced: Notify::new(),
                deliveries_due: Notify::new(),
                metrics: metrics::Metrics::default(),
                stopping: tokio_util::sync::CancellationToken::new(),
                returns: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The routes.
    pub fn router(&self) -> Router {
        let s = &self.state.config;
        let v1 = Router::new()
            .route("/accounts", get(api::list_accounts))
            .route("/accounts/connect", post(api::connect))
            .route("/accounts/{id}", get(api::get_account).delete(api::disconnect))
            .route("/accounts/{id}/reconnect", post(api::reconnect))
            .route("/accounts/{id}/export", get(api::export_account))
            .route("/owner", delete(api::erase_owner))
            .route("/oauth/callback", get(api::callback))
            .route("/posts", get(api::list_posts).post(api::create_post))
            .route("/posts/validate", post(api::validate))
            .route("/posts/{id}", get(api::get_post).delete(api::delete_post))
            .route("/posts/{id}/cancel", post(api::cancel_post))
            .route("/posts/{id}/reschedule", post(api::reschedule_post))
            .route("/events", get(feeds::list_events))
            .route("/webhooks", get(feeds::list_webhooks).post(feeds::create_webhook))
            .route("/webhooks/{id}", delete(feeds::delete_webhook))
            .route("/webhooks/deliveries", get(feeds::list_deliveries))
            .route("/webhooks/deliveries/{id}/replay", post(feeds::replay_delivery))
            .route("/queues", get(plans::list_queues).post(plans::create_queue))
            .route("/queues/{name}", get(plans::get_queue))
            .route("/queues/{name}/posts", post(plans::add_to_queue))
            .route("/queues/{name}/order", axum::routing::put(plans::reorder_queue))
            .route("/queues/{name}/plan", axum::routing::put(plans::set_plan))
            .route("/queues/{name}/posts/{post}/now", post(plans::post_now))
            .route("/queues/{name}/posts/{post}", delete(plans::remove_from_queue))
            .route("/queues/{name}/{action}", post(plans::queue_action))
            .route("/posts/{id}/metrics", get(plans::post_metrics))
            .route("/accounts/{id}/metrics", get(plans::account_metrics))
            .route("/series", get(plans::list_series).post(plans::create_series))
            .route("/series/{id}", delete(plans::delete_series))
            .route("/series/{id}/{action}", post(plans::series_action))
            .route("/openapi.json", get(openapi_json))
            .route("/docs", get(reference))
            .fallback(no_route)
            .layer(DefaultBodyLimit::max(s.max_body_bytes))
            .layer(axum::middleware::from_fn_with_state(self.state.clone(), metrics::timed));
        // Long-lived or large requests: no request timeout, their own body limit.
        let streams = Router::new()
            .route("/events/stream", get(feeds::stream_events))
            .route("/media", post(media::upload))
            .layer(DefaultBodyLimit::disable());
        // Every error of the API is a problem, axum's own rejections included.
        let api = v1.merge(streams).layer(axum::middleware::from_fn(problem::as_problem));
        Router::new()
            .nest("/v1", api)
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics::render))
            .merge(console::routes())
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes, running the background tasks (event
    /// numbering, webhook delivery) when the config says so.
    pub async fn serve<F>(self, listener: tokio::net::TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Set when `shutdown` completes: the background tasks and the event streams end (an
        // open stream would otherwise keep the graceful shutdown waiting forever).
        let stop = self.state.stopping.clone();
        let stopping = stop.clone();
        let shutdown = async move {
            shutdown.await;
            stopping.cancel();
        };
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(count_outcomes(self.state.clone(), stop.clone())));
        if self.state.config.background {
            tasks.push(tokio::spawn(series_pass(self.state.clone(), stop.clone())));
            tasks.push(tokio::spawn(sequencer(self.state.clone(), stop.clone())));
            tasks.push(tokio::spawn(dispatcher(self.state.clone(), stop.clone())));
        }
        let result = axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await;
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        result
    }
}

async fn no_route() -> problem::ApiError {
    problem::ApiError::not_found("no such route: see /v1/openapi.json")
}

async fn openapi_json() -> impl IntoResponse {
    axum::Json(openapi::document())
}

async fn reference() -> Html<String> {
    Html(console::reference(&openapi::document()))
}

async fn healthz(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    match s.engine.scheduler().next_due_at().await {
        Ok(_) => (axum::http::StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(target: "konektly::server", error = %e, "health check failed");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "the database cannot be reached").into_response()
        }
    }
}

/// Numbers committed events (see [`konektly_core::EventLog`]) and wakes event streams.
async fn sequencer(s: Arc<AppState>, stop: CancellationToken) {
    loop {
        if stop.is_cancelled() {
            return;
        }
        let n = match s.store.sequence_events(500).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(target: "konektly::server", error = %e, "numbering events failed");
                0
            }
        };
        if n > 0 {
            s.sequenced.notify_waiters();
            s.deliveries_due.notify_one();
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Delivers due webhooks.
async fn dispatcher(s: Arc<AppState>, stop: CancellationToken) {
    konektly_core::http::install_crypto_provider();
    let http = match reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target: "konektly::webhooks", error = %e, "no HTTP client: webhooks are not delivered");
            return;
        }
    };
    let cfg = s.config.dispatch.clone();
    loop {
        if stop.is_cancelled() {
            return;
        }
        match webhooks::dispatch_once(&s.store, &http, &cfg).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(target: "konektly::webhooks", error = %e, "delivering webhooks failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = s.deliveries_due.notified() => {}
            _ = tokio::time::sleep(cfg.idle_poll) => {}
        }
    }
}

/// Counts this process's outcomes for `/metrics`.
async fn count_outcomes(s: Arc<AppState>, stop: CancellationToken) {
    let mut events = s.engine.subscribe();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            e = events.recv() => match e {
                Ok(konektly_core::Event::Published { remote, .. }) => s.metrics.outcome(remote.platform.as_str(), "published"),
                Ok(konektly_core::Event::Failed { failure, .. }) => {
                    s.metrics.outcome("any", &problem::slug_of(failure.kind));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Creates recurring series' next occurrences now and every minute.
async fn series_pass(s: Arc<AppState>, stop: CancellationToken) {
    let analytics = konektly_core::analytics::Analytics::new(s.engine.clone(), s.store.clone());
    loop {
        plans::materialize_all(&s).await;
        if let Err(e) = analytics.snapshot_due(chrono::Utc::now()).await {
            tracing::warn!(target: "konektly::server", error = %e, "taking metric snapshots failed");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}
