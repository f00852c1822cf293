//! Prometheus metrics (`/metrics`, text format 0.0.4): HTTP requests and their latency, outcomes
//! by platform and kind (from the engine's events in this process), the queue's due lag and the
//! webhook backlog (from the database, for every node).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::problem::ApiError;

const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Counters kept by this process.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    outcomes: BTreeMap<(String, String), u64>,
}

impl Metrics {
    fn request(&self, method: &str, status: u16, secs: f64) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.requests.entry((method.to_owned(), status)).or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                m.latency_buckets[i] += 1;
            }
        }
        m.latency_count += 1;
        m.latency_sum += secs;
    }

    /// Counts an outcome (`published`, or a failure's kind) of a platform's target.
    pub fn outcome(&self, platform: &str, outcome: &str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.outcomes.entry((platform.to_owned(), outcome.to_owned())).or_default() += 1;
    }
}

/// Times and counts a request, and ends it after the request timeout.
pub async fn timed(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = match tokio::time::timeout(s.config.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "The request took too long",
            format!("the server gives a request {} s", s.config.request_timeout.as_secs()),
        )
        .into_response(),
    };
    s.metrics.request(&method, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics`.
pub async fn render(State(s): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    {
        let m = s.metrics.inner.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str(
            "# HELP konektly_http_requests_total HTTP requests served.\n# TYPE konektly_http_requests_total counter\n",
        );
        for ((method, status), n) in &m.requests {
            let _ = writeln!(out, "konektly_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {n}");
        }
        out.push_str(
            "# HELP konektly_http_request_seconds Request latency.\n# TYPE konektly_http_request_seconds histogram\n",
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "konektly_http_request_seconds_bucket{{le=\"{b}\"}} {}", m.latency_buckets[i]);
        }
        let _ = writeln!(out, "konektly_http_request_seconds_bucket{{le=\"+Inf\"}} {}", m.latency_count);
        let _ = writeln!(out, "konektly_http_request_seconds_sum {}", m.latency_sum);
        let _ = writeln!(out, "konektly_http_request_seconds_count {}", m.latency_count);
        out.push_str("# HELP konektly_target_outcomes_total Target outcomes seen by this process, by platform and outcome.\n# TYPE konektly_target_outcomes_total counter\n");
        for ((platform, outcome), n) in &m.outcomes {
            let _ =
                writeln!(out, "konektly_target_outcomes_total{{platform=\"{platform}\",outcome=\"{outcome}\"}} {n}");
        }
    }
    let lag = match s.engine.scheduler().next_due_at().await {
        Ok(Some(due)) => (chrono::Utc::now() - due).num_milliseconds().max(0) as f64 / 1000.0,
        _ => 0.0,
    };
    out.push_str("# HELP konektly_queue_due_lag_seconds How late the most overdue target is.\n# TYPE konektly_queue_due_lag_seconds gauge\n");
    let _ = writeln!(out, "konektly_queue_due_lag_seconds {lag}");
    if let Ok(n) = s.store.pending_deliveries().await {
        out.push_str(
            "# HELP konektly_webhook_backlog Webhook deliveries waiting.\n# TYPE konektly_webhook_backlog gauge\n",
        );
        let _ = writeln!(out, "konektly_webhook_backlog {n}");
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
