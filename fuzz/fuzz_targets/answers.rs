//! Shared by the `*_answers` targets: decodes a fuzz input into a platform answer and reads it
//! with an adapter's `fuzzing` entry points. The adapters' stable tests
//! (`konektly-*/tests/hostile_answers.rs`) include this file too, so it is compiled and run
//! without nightly.
//!
//! Input layout: byte 0 picks the answer (modulo the adapter's list), bytes 1–2 the status
//! (big-endian; outside 100–999 it is 200), then `name: value` header lines up to an empty line,
//! then the body.

#![allow(dead_code)]

use konektly_core::reqwest::StatusCode;
use konektly_core::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use konektly_core::{Error, Result};

/// An adapter's `fuzzing` entry points.
pub struct Adapter {
    /// `fuzzing::ANSWERS`.
    pub answers: &'static [&'static str],
    /// `fuzzing::creates`.
    pub creates: fn(&str) -> bool,
    /// `fuzzing::read`.
    pub read: fn(&str, StatusCode, &HeaderMap, &[u8]) -> Result<String>,
    /// `fuzzing::error`, as a list.
    pub errors: fn(StatusCode, &HeaderMap, &[u8]) -> Vec<Error>,
    /// `fuzzing::rate_limits` (how many reports), or `|_| 0`.
    pub rate_limits: fn(&HeaderMap) -> usize,
}

/// One decoded answer.
pub struct Answer<'a> {
    /// The call it answers.
    pub answer: &'static str,
    /// The status.
    pub status: StatusCode,
    /// The headers (lines that are not valid headers are skipped).
    pub headers: HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// Decodes `data` (see the module's documentation).
pub fn decode<'a>(adapter: &Adapter, data: &'a [u8]) -> Option<Answer<'a>> {
    let (&pick, rest) = data.split_first()?;
    let answer = adapter.answers[usize::from(pick) % adapter.answers.len()];
    let (code, mut rest) = rest.split_at_checked(2)?;
    let status = StatusCode::from_u16(u16::from_be_bytes([code[0], code[1]])).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    loop {
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    Some(Answer { answer, status, headers, body: rest })
}

/// Encodes an answer the way [`decode`] reads it (to seed a corpus from the tests' cases).
pub fn encode(adapter: &Adapter, answer: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let pick = adapter.answers.iter().position(|a| *a == answer).unwrap_or(0);
    let mut out = vec![u8::try_from(pick).unwrap_or(0)];
    out.extend_from_slice(&status.as_u16().to_be_bytes());
    for (n, v) in headers {
        out.extend_from_slice(n.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Reads the answer `data` encodes with every entry point: nothing may panic; an error status is
/// never a success; a success body that is not JSON is never read as a success of a create.
pub fn check(adapter: &Adapter, data: &[u8]) {
    let Some(a) = decode(adapter, data) else { return };
    let read = (adapter.read)(a.answer, a.status, &a.headers, a.body);
    match &read {
        Ok(summary) => {
            assert!(
                a.status.is_success()
                    || a.status.as_u16() == 308
                    || a.status.as_u16() == 404
                    || a.status.as_u16() == 410,
                "{}: status {} read as a success: {summary}",
                a.answer,
                a.status
            );
        }
        Err(e) => {
            let _ = (e.to_string(), format!("{e:?}"));
        }
    }
    let unreadable = a.status.is_success() && serde_json::from_slice::<serde::de::IgnoredAny>(a.body).is_err();
    if unreadable && (adapter.creates)(a.answer) {
        assert!(read.is_err(), "{}: an unreadable create answer read as a success: {read:?}", a.answer);
    }
    let _ = (adapter.rate_limits)(&a.headers);
    if !a.status.is_success() {
        for e in (adapter.errors)(a.status, &a.headers, a.body) {
            let _ = e.to_string();
        }
    }
}
