//! Errors as RFC 9457 problem details (`application/problem+json`), with a stable `type` per
//! [`ErrorKind`](konektly_core::ErrorKind) and, for a refused post, every violation.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use konektly_core::{Error, ErrorKind, Violation};
use serde::Serialize;
use utoipa::ToSchema;

/// The base of every problem `type`: `https://konektly.dev/problems/<kind>`.
pub const PROBLEM_BASE: &str = "https://konektly.dev/problems/";

/// A problem details document (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; stable.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// Every rule a refused post breaks, once each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub violations: Vec<Violation>,
    /// When to try again (a rate limit), as seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// An API error: a problem to answer.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl ApiError {
    /// A problem of `slug` with `status`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self(Problem {
            kind: format!("{PROBLEM_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            violations: Vec::new(),
            retry_after: None,
        })
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", "The request is malformed", detail)
    }

    /// 401: no valid API key.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "A valid API key is required", detail)
    }

    /// 403: the key may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "This API key may not do that", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests for this API key",
            format!("slow down: try again in {retry_after_secs} s"),
        );
        e.0.retry_after = Some(retry_after_secs);
        e
    }

    /// 422: an idempotency key reused for another request.
    pub fn idempotency_mismatch() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "The Idempotency-Key was used for a different request",
            "this Idempotency-Key was sent before with a different body; use a new key for a new post",
        )
    }
}

/// The status and title of an error kind.
fn status_of(kind: ErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ErrorKind::InvalidPost => (StatusCode::UNPROCESSABLE_ENTITY, "The post breaks the platforms' rules"),
        ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "A platform's rate limit was reached"),
        ErrorKind::ReauthRequired => (StatusCode::CONFLICT, "The account must be reconnected"),
        ErrorKind::Rejected => (StatusCode::UNPROCESSABLE_ENTITY, "The platform refused it"),
        ErrorKind::Transient => (StatusCode::SERVICE_UNAVAILABLE, "A temporary failure; try again"),
        ErrorKind::UnknownOutcome => (StatusCode::BAD_GATEWAY, "The platform's answer was lost"),
        ErrorKind::NotSupported => (StatusCode::UNPROCESSABLE_ENTITY, "Not supported by the platform"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "Not found"),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "Conflict with the current state"),
        ErrorKind::Authorization => (StatusCode::BAD_REQUEST, "The authorization failed"),
        ErrorKind::Storage => (StatusCode::INTERNAL_SERVER_ERROR, "A storage error"),
        ErrorKind::Config => (StatusCode::BAD_REQUEST, "Invalid settings or input"),
        ErrorKind::MediaUnreadable => (StatusCode::UNPROCESSABLE_ENTITY, "The media cannot be read"),
        ErrorKind::OutcomeUnknown => (StatusCode::BAD_GATEWAY, "The outcome is unknown"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "An error"),
    }
}

/// The stable slug of an error kind (its serde name).
pub fn slug_of(kind: ErrorKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "error".into())
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let (status, title) = status_of(kind);
        if status.is_server_error() {
            tracing::error!(target: "konektly::server", error = %e, "request failed");
        }
        let detail = match (&e, status.is_server_error() && kind == ErrorKind::Storage) {
            // A storage error's detail may name tables and statements: the log has it.
            (_, true) => "the server could not read or write its database; see its log".to_owned(),
            _ => e.to_string(),
        };
        let mut p = ApiError::new(status, &slug_of(kind), title, detail);
        if let Error::RateLimited { retry_at: Some(at), .. } = &e {
            p.0.retry_after = Some((*at - chrono::Utc::now()).num_seconds().max(1) as u64);
        }
        if let Error::InvalidPost(v) = e {
            p.0.violations = v;
        }
        p
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.0.retry_after;
        let mut resp = (status, axum::Json(self.0)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(s) = retry
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Makes every error answer of the API a problem document: axum's own rejections (a path
/// parameter or query that does not parse, a JSON body that is malformed, of the wrong type or
/// too large, an unsupported method) are plain text otherwise. HTML pages (the OAuth
/// callback's) are left as they are: a browser reads them.
///
/// An error to a request with a body closes the connection (`Connection: close`): the body may
/// not have been read to its end (an upload refused as too large, a key refused before it),
/// and a client that sent its next request on that connection would see it fail.
pub async fn as_problem(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|n| n.trim() != "0");
    let mut resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    if has_body {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let kind = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if kind.starts_with("application/problem+json") || kind.starts_with("text/html") {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let said = axum::body::to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let (slug, title) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "The request is malformed"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "A valid API key is required"),
        StatusCode::FORBIDDEN => ("forbidden", "This API key may not do that"),
        StatusCode::NOT_FOUND => ("not_found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "This route does not take this method"),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "The request body is larger than this server takes"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "Send the body as `application/json`"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_request", "The request's content is invalid"),
        s if s.is_server_error() => ("internal", "An error"),
        _ => ("error", "An error"),
    };
    let detail = match said {
        Ok(s) if !s.is_empty() => s,
        _ => title.to_owned(),
    };
    let mut out = ApiError::new(status, slug, title, detail).into_response();
    // Keep what else it said (`Allow` of a 405…).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !out.headers().contains_key(name) {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A handler's result.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
