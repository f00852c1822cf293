//! The call pipeline every adapter shares: send → read → report rate limits → map an error
//! answer → parse, with an unreadable answer to a create being [`Error::UnknownOutcome`].
//!
//! What differs between platforms is an [`ApiDialect`]: how an error answer looks (X's problem
//! JSON, TikTok's envelope that may come with status 200, Meta's Graph errors, Google's error
//! list), how it maps to konektly's [`Error`], which headers say what about rate limits, and
//! where a success answer keeps its payload. An adapter's `client.rs` builds requests and names
//! its dialect; [`call`] and [`call_json`] do the rest.

use reqwest::RequestBuilder;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::http::{ApiResponse, CallKind, HttpClient};
use crate::platform::PublishContext;
use crate::ratelimit::RateLimitReport;

/// One platform's API: its error bodies, their meaning, its rate-limit headers.
pub trait ApiDialect: Send + Sync {
    /// The platform's error as it answered it; it becomes the `source` of the public error.
    type ApiError;

    /// The platform's error in `answer`, when the answer is one. Most platforms answer errors
    /// with an error status only; TikTok may answer one with 200.
    fn parse_error(&self, answer: &ApiResponse) -> Option<Self::ApiError>;

    /// The public error for the platform's error: the adapter's table. `what` names the call
    /// for people (`POST /2/tweets`).
    fn classify(&self, error: Self::ApiError, answer: &ApiResponse, kind: CallKind, what: &str) -> Error;

    /// The error of an error status whose body is not the platform's error: core's mapping of
    /// the status ([`ApiResponse::status_error`]).
    fn unparsed_error(&self, answer: &ApiResponse, kind: CallKind, what: &str) -> Error {
        answer.status_error(kind, format!("{what}: answered with status {}", answer.status), None)
    }

    /// What an answer's headers say about rate limits (reported to the engine's budgets).
    fn rate_limits(&self, headers: &HeaderMap, what: &str) -> Vec<RateLimitReport> {
        let _ = (headers, what);
        Vec::new()
    }

    /// The payload of a success answer: by default the whole body as JSON of type `T`; TikTok's
    /// is the envelope's `data`. An error here is a body that does not parse.
    fn payload<T: DeserializeOwned>(&self, answer: &ApiResponse) -> Result<T> {
        answer.json()
    }
}

/// Sends `request`, reads the answer, reports its rate-limit headers to `ctx` (when there is
/// one), and returns it when it is a success; an error answer is mapped through the dialect.
pub async fn call<D: ApiDialect>(
    http: &HttpClient,
    dialect: &D,
    ctx: Option<&PublishContext<'_>>,
    request: RequestBuilder,
    kind: CallKind,
    what: &str,
) -> Result<ApiResponse> {
    let resp = http.send(request, kind).await?;
    let answer = ApiResponse::read(resp, kind).await?;
    check(dialect, ctx, answer, kind, what)
}

/// What [`call`] does once the answer is read: reports its rate limits to `ctx`, and returns it
/// when it is a success or maps its error. For tests and fuzzing entry points that hold an
/// answer already: they run the adapter's own code path.
pub fn check<D: ApiDialect>(
    dialect: &D,
    ctx: Option<&PublishContext<'_>>,
    answer: ApiResponse,
    kind: CallKind,
    what: &str,
) -> Result<ApiResponse> {
    if let Some(ctx) = ctx {
        for report in dialect.rate_limits(&answer.headers, what) {
            ctx.report_rate_limit(report);
        }
    }
    if let Some(err) = dialect.parse_error(&answer) {
        return Err(dialect.classify(err, &answer, kind, what));
    }
    if !answer.is_success() {
        return Err(dialect.unparsed_error(&answer, kind, what));
    }
    Ok(answer)
}

/// [`call`], then the answer's payload as `T`. A success answer to a create whose payload does
/// not parse is [`Error::UnknownOutcome`]: the platform acted, nobody knows what landed.
pub async fn call_json<D: ApiDialect, T: DeserializeOwned>(
    http: &HttpClient,
    dialect: &D,
    ctx: Option<&PublishContext<'_>>,
    request: RequestBuilder,
    kind: CallKind,
    what: &str,
) -> Result<T> {
    let answer = call(http, dialect, ctx, request, kind, what).await?;
    payload(dialect, &answer, kind, what)
}

/// The payload of a success answer (see [`call_json`]), for an answer read with [`call`].
pub fn payload<D: ApiDialect, T: DeserializeOwned>(
    dialect: &D,
    answer: &ApiResponse,
    kind: CallKind,
    what: &str,
) -> Result<T> {
    dialect.payload(answer).map_err(|e| match (kind, e) {
        (CallKind::Create, Error::Transient { message, source, .. }) => {
            Error::UnknownOutcome { message: format!("{what}: {message}"), source }
        }
        (CallKind::Idempotent, Error::Transient { message, retry_after, source }) => {
            Error::Transient { message: format!("{what}: {message}"), retry_after, source }
        }
        // Another refusal of a create's answer (an envelope without data): it may have landed.
        (CallKind::Create, e) => Error::UnknownOutcome { message: format!("{what}: {e}"), source: Some(Box::new(e)) },
        (CallKind::Idempotent, e) => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;

    impl ApiDialect for Plain {
        type ApiError = String;
        fn parse_error(&self, answer: &ApiResponse) -> Option<String> {
            (!answer.is_success()).then(|| String::from_utf8_lossy(&answer.body).into_owned())
        }
        fn classify(&self, error: String, _: &ApiResponse, _: CallKind, what: &str) -> Error {
            Error::rejected(None, format!("{what}: {error}"))
        }
    }

    fn answer(status: u16, body: &str) -> ApiResponse {
        ApiResponse {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn an_error_answer_goes_through_the_dialect_and_a_success_is_returned() {
        let e = check(&Plain, None, answer(400, "bad"), CallKind::Create, "POST /posts").unwrap_err();
        assert!(matches!(&e, Error::Rejected { message, .. } if message == "POST /posts: bad"), "{e:?}");
        let ok = check(&Plain, None, answer(200, "{}"), CallKind::Create, "POST /posts").unwrap();
        assert_eq!(&ok.body[..], b"{}");
    }

    #[test]
    fn an_unreadable_payload_is_an_unknown_outcome_for_a_create_only() {
        let a = answer(200, "not json");
        let e = payload::<_, serde_json::Value>(&Plain, &a, CallKind::Create, "POST /posts").unwrap_err();
        assert!(matches!(&e, Error::UnknownOutcome { message, .. } if message.starts_with("POST /posts: ")), "{e:?}");
        let e = payload::<_, serde_json::Value>(&Plain, &a, CallKind::Idempotent, "GET /posts").unwrap_err();
        assert!(matches!(&e, Error::Transient { message, .. } if message.starts_with("GET /posts: ")), "{e:?}");
    }
}
