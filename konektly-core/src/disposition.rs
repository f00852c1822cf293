//! What a platform's error means for konektly, and the one mapping from that meaning to the
//! public [`Error`].
//!
//! Each adapter's error table (its `error.rs`) sorts the platform's errors — X's problem types,
//! TikTok's envelope codes, Meta's Graph codes, Google's reasons — into a [`Disposition`]; the
//! adapter writes the message (in words a user understands, with the platform's trace id) and
//! keeps the platform's error as the `source`; [`to_error`] does the rest, the same way for every
//! platform: which [`Error`] variant, when a rate limit returns (`Retry-After` read once, here),
//! and the rule that a create answered with a server error (5xx) or a timeout (408) may have
//! landed ([`Error::UnknownOutcome`]: reconcile before sending it again).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::error::{BoxError, Error};
use crate::http::{ApiResponse, CallKind, retry_after};

/// What a platform's error means for konektly: one row of an adapter's error table.
///
/// [`to_error`] turns it into the public [`Error`]. The `code` given to [`to_error`] is kept by
/// the variants that make an [`Error::Rejected`] (`Reject`, `Duplicate` on an idempotent call,
/// `ByStatus` on a 4xx); the others carry no code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// The access token was refused: [`Error::AccessTokenRejected`]. The engine refreshes it
    /// once and tries again; refused again, the account needs reconnecting.
    RefreshToken,
    /// The grant is gone (revoked, a permission removed, the account closed): the user must
    /// connect the account again. [`Error::ReauthRequired`], the message being the reason.
    Reauth,
    /// Not now: [`Error::RateLimited`]. It returns at `retry_at` when the platform said when (its
    /// own headers or body, a known reset); else at the answer's `Retry-After`; else `wait` from
    /// now; else at no known time. An absurd `Retry-After` (beyond the calendar) is no time.
    RateLimited {
        /// When the limit returns, as the platform said it outside `Retry-After`.
        retry_at: Option<DateTime<Utc>>,
        /// How long to wait when neither `retry_at` nor `Retry-After` says.
        wait: Option<Duration>,
    },
    /// Refused, and trying again will not help: [`Error::Rejected`] with the code.
    Reject,
    /// The platform refused the request as a repeat of one it already took (X's duplicate
    /// content). For a [`CallKind::Create`] the post is probably there already:
    /// [`Error::UnknownOutcome`] (reconcile). For another call, [`Error::Rejected`] with the code.
    Duplicate,
    /// The platform says the call failed and asks to try again (TikTok's `internal_error`,
    /// Google's `backendError`, "not ready yet, keep polling"): [`Error::Transient`], even for a
    /// create. It waits `retry_after`, else the answer's `Retry-After`, if any.
    Transient {
        /// How long to wait, when the table knows better than the headers.
        retry_after: Option<Duration>,
    },
    /// The platform failed on its side without saying what it did (Meta's "unknown error",
    /// `is_transient`): [`Error::Transient`] with the answer's `Retry-After`, except for a
    /// [`CallKind::Create`] answered with a server error (5xx) or a timeout (408), which may have
    /// landed: [`Error::UnknownOutcome`].
    ServerFailure,
    /// Not in the table: the HTTP status decides (see [`Disposition::for_status`]). A refusal
    /// (another 4xx) keeps the code given to [`to_error`], else the status as its code.
    ByStatus,
}

impl Disposition {
    /// The disposition of an error status alone, when the platform's body says nothing the table
    /// knows: 401 → [`RefreshToken`](Self::RefreshToken), 429 → [`RateLimited`](Self::RateLimited)
    /// (at its `Retry-After`), 408 and 5xx → [`ServerFailure`](Self::ServerFailure), any other
    /// status → [`Reject`](Self::Reject).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::RefreshToken,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited { retry_at: None, wait: None },
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => Self::ServerFailure,
            _ => Self::Reject,
        }
    }
}

/// The answer an error came in: what [`to_error`] reads besides the disposition.
#[derive(Clone, Copy, Debug)]
pub struct Answered<'a> {
    /// The HTTP status.
    pub status: StatusCode,
    /// The headers (`Retry-After`).
    pub headers: &'a HeaderMap,
    /// Whether the call creates something.
    pub kind: CallKind,
    /// The time rate-limit waits count from.
    pub now: DateTime<Utc>,
}

impl<'a> Answered<'a> {
    /// An answer with `status` and `headers` to a call of `kind`, read now.
    pub fn new(status: StatusCode, headers: &'a HeaderMap, kind: CallKind) -> Self {
        Self { status, headers, kind, now: Utc::now() }
    }

    /// The status and headers of `answer`, to a call of `kind`, read now.
    pub fn of(answer: &'a ApiResponse, kind: CallKind) -> Self {
        Self::new(answer.status, &answer.headers, kind)
    }

    /// The same answer, its waits counted from `now` (for tables tested at a fixed time).
    pub fn at(self, now: DateTime<Utc>) -> Self {
        Self { now, ..self }
    }

    fn may_have_landed(&self) -> bool {
        self.kind == CallKind::Create && (self.status.is_server_error() || self.status == StatusCode::REQUEST_TIMEOUT)
    }
}

/// The public error for a platform's error: the one mapping every adapter uses.
///
/// `message` is what the user reads (the reason, for [`Disposition::Reauth`]); `code` is kept by
/// a refusal (see [`Disposition`]); `source` is the platform's own error.
pub fn to_error(
    disposition: Disposition,
    answered: &Answered<'_>,
    code: Option<String>,
    message: impl Into<String>,
    source: Option<BoxError>,
) -> Error {
    let message = message.into();
    let rejected = |code: Option<String>, message, source| Error::Rejected {
        code: code.or_else(|| Some(answered.status.as_u16().to_string())),
        message,
        source,
    };
    match disposition {
        Disposition::RefreshToken => Error::AccessTokenRejected { message, source },
        Disposition::Reauth => Error::ReauthRequired { reason: message, source },
        Disposition::RateLimited { retry_at, wait } => {
            let retry_at = retry_at.or_else(|| match retry_after(answered.headers) {
                Some(after) => later(answered.now, after),
                None => wait.and_then(|w| later(answered.now, w)),
            });
            Error::RateLimited { retry_at, message, source }
        }
        Disposition::Reject => rejected(code, message, source),
        Disposition::Duplicate => match answered.kind {
            CallKind::Create => Error::UnknownOutcome { message, source },
            CallKind::Idempotent => rejected(code, message, source),
        },
        Disposition::Transient { retry_after: wait } => {
            Error::Transient { message, retry_after: wait.or_else(|| retry_after(answered.headers)), source }
        }
        Disposition::ServerFailure if answered.may_have_landed() => Error::UnknownOutcome { message, source },
        Disposition::ServerFailure => Error::Transient { message, retry_after: retry_after(answered.headers), source },
        // `for_status` never answers `ByStatus`: this recurses once.
        Disposition::ByStatus => to_error(Disposition::for_status(answered.status), answered, code, message, source),
    }
}

/// `now + wait`; `None` beyond the calendar (a `Retry-After` of 10^15 seconds). The one
/// conversion of a wait into a time: `http::retry_at`, `http::time_after` and [`to_error`] use it.
pub(crate) fn later(now: DateTime<Utc>, wait: Duration) -> Option<DateTime<Utc>> {
    now.checked_add_signed(chrono::Duration::from_std(wait).ok()?)
}

#[cfg(test)]
mod tests {
    use reqwest::header::RETRY_AFTER;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T08:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = retry_after {
            h.insert(RETRY_AFTER, v.parse().unwrap());
        }
        h
    }

    /// The error for `d` answered with `status` (and `Retry-After`) to a call of `kind`.
    fn map(d: Disposition, status: u16, retry: Option<&str>, kind: CallKind, code: Option<&str>) -> Error {
        let h = headers(retry);
        let answered = Answered::new(StatusCode::from_u16(status).unwrap(), &h, kind).at(now());
        let source: BoxError = "the platform's error".into();
        to_error(d, &answered, code.map(str::to_owned), "what happened", Some(source))
    }

    fn both(d: Disposition, status: u16) -> [Error; 2] {
        [CallKind::Create, CallKind::Idempotent].map(|kind| map(d, status, None, kind, Some("c")))
    }

    #[test]
    fn refresh_token_is_a_refused_token_for_every_call() {
        for e in both(Disposition::RefreshToken, 401) {
            assert!(
                matches!(&e, Error::AccessTokenRejected { message, source: Some(_) } if message == "what happened")
            );
        }
    }

    #[test]
    fn reauth_gives_the_message_as_the_reason() {
        for e in both(Disposition::Reauth, 403) {
            assert!(matches!(&e, Error::ReauthRequired { reason, source: Some(_) } if reason == "what happened"));
        }
    }

    #[test]
    fn rate_limited_returns_at_the_platforms_time_then_retry_after_then_the_wait() {
        let at = now() + chrono::Duration::minutes(7);
        let limited = |retry_at, wait, retry: Option<&str>| match map(
            Disposition::RateLimited { retry_at, wait },
            429,
            retry,
            CallKind::Create,
            None,
        ) {
            Error::RateLimited { retry_at, source: Some(_), .. } => retry_at,
            other => panic!("{other:?}"),
        };
        let minute = Some(Duration::from_secs(60));
        assert_eq!(limited(Some(at), minute, Some("5")), Some(at), "the platform's own time first");
        assert_eq!(limited(None, minute, Some("5")), Some(now() + chrono::Duration::seconds(5)));
        assert_eq!(limited(None, minute, None), Some(now() + chrono::Duration::seconds(60)));
        assert_eq!(limited(None, minute, Some("soon")), Some(now() + chrono::Duration::seconds(60)));
        assert_eq!(limited(None, None, None), None);
        assert_eq!(limited(None, minute, Some("1000000000000000")), None, "beyond the calendar: no time");
    }

    #[test]
    fn reject_keeps_the_code_or_the_status() {
        for e in both(Disposition::Reject, 400) {
            assert!(matches!(&e, Error::Rejected { code: Some(c), source: Some(_), .. } if c == "c"), "{e:?}");
        }
        let e = map(Disposition::Reject, 403, None, CallKind::Create, None);
        assert!(matches!(&e, Error::Rejected { code: Some(c), .. } if c == "403"), "{e:?}");
    }

    #[test]
    fn a_duplicate_create_is_an_unknown_outcome_and_another_call_a_refusal() {
        let [create, idempotent] = both(Disposition::Duplicate, 403);
        assert!(matches!(create, Error::UnknownOutcome { source: Some(_), .. }), "{create:?}");
        assert!(matches!(&idempotent, Error::Rejected { code: Some(c), .. } if c == "c"), "{idempotent:?}");
    }

    #[test]
    fn transient_is_transient_even_for_a_create() {
        for e in both(Disposition::Transient { retry_after: None }, 500) {
            assert!(matches!(e, Error::Transient { retry_after: None, source: Some(_), .. }), "{e:?}");
        }
        let d = Disposition::Transient { retry_after: None };
        let e = map(d, 500, Some("30"), CallKind::Create, None);
        assert!(matches!(e, Error::Transient { retry_after: Some(w), .. } if w == Duration::from_secs(30)));
        let d = Disposition::Transient { retry_after: Some(Duration::from_secs(10)) };
        let e = map(d, 400, Some("30"), CallKind::Idempotent, None);
        assert!(matches!(e, Error::Transient { retry_after: Some(w), .. } if w == Duration::from_secs(10)));
    }

    #[test]
    fn a_server_failure_on_a_create_answered_5xx_or_408_may_have_landed() {
        for status in [500, 502, 503, 408] {
            let [create, idempotent] = both(Disposition::ServerFailure, status);
            assert!(matches!(create, Error::UnknownOutcome { source: Some(_), .. }), "{status}: {create:?}");
            assert!(matches!(idempotent, Error::Transient { .. }), "{status}: {idempotent:?}");
        }
        // A failure answered with another status: nothing landed.
        for e in both(Disposition::ServerFailure, 400) {
            assert!(matches!(e, Error::Transient { .. }), "{e:?}");
        }
        let e = map(Disposition::ServerFailure, 503, Some("7"), CallKind::Idempotent, None);
        assert!(matches!(e, Error::Transient { retry_after: Some(w), .. } if w == Duration::from_secs(7)));
    }

    #[test]
    fn by_status_is_the_status_table() {
        let by = |status, kind, code| map(Disposition::ByStatus, status, Some("60"), kind, code);
        assert!(matches!(by(401, CallKind::Create, None), Error::AccessTokenRejected { .. }));
        let e = by(429, CallKind::Create, None);
        assert!(
            matches!(e, Error::RateLimited { retry_at: Some(t), .. } if t == now() + chrono::Duration::seconds(60))
        );
        for status in [500, 503, 408] {
            assert!(matches!(by(status, CallKind::Create, None), Error::UnknownOutcome { .. }), "{status}");
            let e = by(status, CallKind::Idempotent, None);
            assert!(matches!(e, Error::Transient { retry_after: Some(w), .. } if w == Duration::from_secs(60)));
        }
        assert!(matches!(by(404, CallKind::Create, None), Error::Rejected { code: Some(c), .. } if c == "404"));
        let e = by(400, CallKind::Idempotent, Some("invalid_params"));
        assert!(matches!(&e, Error::Rejected { code: Some(c), .. } if c == "invalid_params"), "{e:?}");
        // A code never replaces what the status says about the token or the outcome.
        assert!(matches!(by(503, CallKind::Create, Some("x")), Error::UnknownOutcome { .. }));
    }

    #[test]
    fn for_status_sorts_the_statuses() {
        assert_eq!(Disposition::for_status(StatusCode::UNAUTHORIZED), Disposition::RefreshToken);
        assert_eq!(
            Disposition::for_status(StatusCode::TOO_MANY_REQUESTS),
            Disposition::RateLimited { retry_at: None, wait: None }
        );
        assert_eq!(Disposition::for_status(StatusCode::BAD_GATEWAY), Disposition::ServerFailure);
        assert_eq!(Disposition::for_status(StatusCode::REQUEST_TIMEOUT), Disposition::ServerFailure);
        assert_eq!(Disposition::for_status(StatusCode::FORBIDDEN), Disposition::Reject);
        assert_eq!(Disposition::for_status(StatusCode::OK), Disposition::Reject);
    }
}
