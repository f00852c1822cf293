//! The one HTTP layer: a shared client with timeouts and no redirects, retries with jittered
//! backoff for idempotent calls, `Retry-After` honoured, and the mapping of transport failures
//! and statuses to [`Error`] kinds. Adapters only build requests and parse bodies.
//!
//! A call that creates something at the platform is never retried blindly: if the request may
//! have reached the platform (a timeout or reset after sending), the result is
//! [`Error::UnknownOutcome`]. Errors and traces name the method and the path, never the query
//! (it may hold a token), headers or bodies.

use std::sync::{Arc, Once};
use std::time::Duration;

use backon::BackoffBuilder;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::error::{Error, Result};

/// Whether a call may be repeated safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// Reading, or a write the platform makes idempotent (an upload chunk at an offset): retried
    /// on transport errors, 5xx, 408 and 429 (with its `Retry-After`).
    Idempotent,
    /// Creates something (a post, a token exchange): never retried. A failure after the request
    /// may have been sent is `UnknownOutcome`.
    Create,
}

/// Timeouts and retries.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request and its response, unless the request sets its own with
    /// `RequestBuilder::timeout` (uploads of large chunks should).
    pub timeout: Duration,
    /// Time for one upload request (a media chunk): set it with
    /// `RequestBuilder::timeout(http.config().upload_timeout)`.
    pub upload_timeout: Duration,
    /// Retries of an idempotent call (after the first try).
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for in place: the call returns
    /// `RateLimited` and the engine reschedules.
    pub max_inline_wait: Duration,
    /// The `User-Agent`.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(600),
            max_retries: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_inline_wait: Duration::from_secs(10),
            user_agent: concat!("konektly/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The shared HTTP client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    config: Arc<HttpConfig>,
}

static INSTALL_PROVIDER: Once = Once::new();

/// Installs rustls' `ring` crypto provider as the process default, once. [`HttpClient`] calls it;
/// call it yourself before building a bare `reqwest::Client` (konektly builds reqwest without a
/// provider of its own, to keep the dependency tree lean).
pub fn install_crypto_provider() {
    INSTALL_PROVIDER.call_once(|| {
        // Another crate may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl HttpClient {
    /// A client with the default configuration.
    pub fn new() -> Result<Self> {
        Self::with_config(HttpConfig::default())
    }

    /// A client with the given configuration. Redirects are not followed (an OAuth endpoint that
    /// redirects must not be able to send a code or token elsewhere).
    pub fn with_config(config: HttpConfig) -> Result<Self> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, config: Arc::new(config) })
    }

    /// The reqwest client, for building requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends a request. Idempotent calls are retried on transport errors, 408, 5xx, and 429
    /// with a `Retry-After` (honoured up to `max_inline_wait`). Any response that comes back in the end
    /// is returned, whatever its status: the adapter maps its error body.
    pub async fn send(&self, request: RequestBuilder, kind: CallKind) -> Result<Response> {
        let mut request =
            request.build().map_err(|e| Error::Config(format!("invalid request: {}", e.without_url())))?;
        if request.timeout().is_none() {
            // Per request, not per client: an upload sets its own, longer `.timeout()`.
            *request.timeout_mut() = Some(self.config.timeout);
        }
        let what = describe(&request);
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.config.min_delay)
            .with_max_delay(self.config.max_delay)
            .with_max_times(self.config.max_retries)
            .with_jitter()
            .build();
        let mut next = Some(request);
        loop {
            let req = next.take().expect("a request to send");
            let retry_copy = if kind == CallKind::Idempotent { req.try_clone() } else { None };
            tracing::debug!(target: "konektly::http", request = %what, "sending");
            match self.client.execute(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    // A 429 is retried in place only when it says when (`Retry-After`): platforms
                    // that announce their reset in their own headers (X's `x-rate-limit-reset`)
                    // are answered by the adapter, and blind retries would spend the window.
                    let retryable = status.is_server_error()
                        || status == StatusCode::REQUEST_TIMEOUT
                        || (status == StatusCode::TOO_MANY_REQUESTS && resp.headers().contains_key(RETRY_AFTER));
                    if retryable && let Some(copy) = retry_copy {
                        let wait = retry_after(resp.headers());
                        if wait.is_none_or(|w| w <= self.config.max_inline_wait)
                            && let Some(delay) = delays.next()
                        {
                            let delay = wait.unwrap_or(delay).max(delay.min(Duration::from_millis(50)));
                            tracing::debug!(target: "konektly::http", request = %what, %status, ?delay, "retrying");
                            tokio::time::sleep(delay).await;
                            next = Some(copy);
                            continue;
                        }
                    }
                    tracing::debug!(target: "konektly::http", request = %what, %status, "response");
                    return Ok(resp);
                }
                Err(err) => {
                    let message = format!("{what}: {}", transport_message(&err));
                    let never_sent = err.is_connect();
                    if let Some(copy) = retry_copy
                        && let Some(delay) = delays.next()
                    {
                        tracing::debug!(target: "konektly::http", request = %what, ?delay, "transport error, retrying");
                        tokio::time::sleep(delay).await;
                        next = Some(copy);
                        continue;
                    }
                    let source: Box<dyn std::error::Error + Send + Sync> = Box::new(err.without_url());
                    return Err(if kind == CallKind::Create && !never_sent {
                        Error::UnknownOutcome { message, source: Some(source) }
                    } else {
                        Error::Transient { message, retry_after: None, source: Some(source) }
                    });
                }
            }
        }
    }
}

fn describe(request: &reqwest::Request) -> String {
    format!("{} {}", request.method(), redact_url(request.url()))
}

fn transport_message(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "could not connect".into()
    } else if err.is_body() || err.is_decode() {
        "the connection failed while reading the response".into()
    } else {
        "the connection failed".into()
    }
}

/// A URL fit for logs and errors: scheme, host, port and path; no query, no credentials.
pub fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        u.set_query(Some("…"));
    }
    u.set_fragment(None);
    u.to_string()
}

/// Reads `Retry-After` (seconds, or an HTTP date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// The time `wait` from now; `None` beyond the calendar (a `Retry-After` of 10^15 seconds).
pub fn time_after(wait: Duration) -> Option<DateTime<Utc>> {
    crate::disposition::later(Utc::now(), wait)
}

/// When a `Retry-After` says to come back, as a time: what `Error::RateLimited::retry_at`
/// holds. The one conversion every adapter uses.
pub fn retry_at(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    retry_at_from(headers, Utc::now())
}

/// [`retry_at`] counted from `now` (for tables tested at a fixed time).
pub fn retry_at_from(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    crate::disposition::later(now, retry_after(headers)?)
}

/// Reads a header as an integer.
pub fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Reads a header holding Unix seconds as a time.
pub fn header_epoch(headers: &HeaderMap, name: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(header_u64(headers, name)?).ok()?, 0)
}

/// The longest platform answer [`ApiResponse::read`] reads: 16 MiB.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A response read whole: status, headers and body. For API answers (small), not media.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl ApiResponse {
    /// Reads a response's body. A failure while reading a `Create` call's answer is
    /// `UnknownOutcome`: the platform has acted already.
    ///
    /// An answer longer than [`MAX_ANSWER_BYTES`] is not read further (a platform's JSON answer
    /// is kilobytes; a broken or hostile endpoint must not fill the memory): that is a failure
    /// like an answer cut off — an unknown outcome for an accepted create, else transient.
    pub async fn read(mut resp: Response, kind: CallKind) -> Result<Self> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let failed = |message: String, source: Option<crate::BoxError>| match kind {
            CallKind::Create if status.is_success() => Error::UnknownOutcome { message, source },
            _ => Error::Transient { message, retry_after: None, source },
        };
        let mut body = bytes::BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(failed(
                            format!("the answer (status {status}) is longer than {MAX_ANSWER_BYTES} bytes; not read"),
                            None,
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    let message = format!("reading the response failed: {}", transport_message(&e));
                    return Err(failed(message, Some(Box::new(e.without_url()))));
                }
            }
        }
        Ok(Self { status, headers, body: body.freeze() })
    }

    /// The body as JSON of type `T`; a body that does not parse is `Transient` for an error
    /// status and `Rejected`-free `Transient` for success too (the platform answered oddly), with
    /// the start of the body for diagnosis (bodies of these endpoints carry no secrets).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Transient {
            message: format!("unexpected response (status {}): {e}", self.status),
            retry_after: None,
            source: None,
        })
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The default mapping of an error status to an [`Error`], for adapters whose table has no
    /// row for it: 401 → `AccessTokenRejected`, 429 → `RateLimited` (with `Retry-After`),
    /// 408/5xx → `Transient` (`UnknownOutcome` for a create: reconcile before sending it
    /// again), other 4xx → `Rejected`.
    pub fn status_error(&self, kind: CallKind, message: impl Into<String>, source: Option<crate::BoxError>) -> Error {
        status_error(self.status, &self.headers, kind, message.into(), source)
    }
}

/// See [`ApiResponse::status_error`]: [`Disposition::ByStatus`](crate::disposition::Disposition::ByStatus)
/// through [`to_error`](crate::disposition::to_error), at the status as its code.
pub fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    kind: CallKind,
    message: String,
    source: Option<crate::BoxError>,
) -> Error {
    use crate::disposition::{Answered, Disposition, to_error};
    to_error(Disposition::ByStatus, &Answered::new(status, headers, kind), None, message, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let later = Utc::now() + chrono::Duration::seconds(90);
        h.insert(RETRY_AFTER, later.to_rfc2822().replace("+0000", "GMT").parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(80) && d <= Duration::from_secs(90), "{d:?}");
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        assert_eq!(retry_at(&h), None);
        h.insert(RETRY_AFTER, "1000000000000000".parse().unwrap());
        assert_eq!(retry_at(&h), None, "beyond the calendar: no time, no panic");
        h.insert(RETRY_AFTER, "60".parse().unwrap());
        let at = retry_at(&h).unwrap();
        assert!(at > Utc::now() + chrono::Duration::seconds(55) && at <= Utc::now() + chrono::Duration::seconds(60));
    }

    #[test]
    fn redacted_urls_keep_no_query_or_credentials() {
        let u: url::Url = "https://user:pw@graph.example/v25.0/me?access_token=SECRET&fields=id".parse().unwrap();
        let r = redact_url(&u);
        assert!(!r.contains("SECRET") && !r.contains("pw") && !r.contains("user"), "{r}");
        assert!(r.contains("graph.example/v25.0/me"));
    }
}
