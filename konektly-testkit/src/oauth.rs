//! What every platform's OAuth has in common: an authorize page that approves at once and
//! redirects with `code` and `state`, codes bound to a client, a redirect URI and a PKCE
//! challenge, and client authentication at the token endpoint.

use std::collections::HashMap;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

use crate::state::{AuthCode, State, chrono_dur, credentials, now, token};

pub(crate) type Params = HashMap<String, String>;

pub(crate) fn parse_form(bytes: &[u8]) -> Params {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

pub(crate) fn parse_query(q: Option<&str>) -> Params {
    q.map(|q| parse_form(q.as_bytes())).unwrap_or_default()
}

fn page(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], format!("<html><body><h1>{text}</h1></body></html>"))
        .into_response()
}

/// How a platform's authorize page reads its parameters.
pub(crate) struct AuthorizeSpec {
    pub platform: &'static str,
    /// `client_id` (`client_key` on TikTok).
    pub client_param: &'static str,
    pub scope_sep: &'static str,
    pub code_ttl: Duration,
    /// Extra parameters added to the redirect (`scopes` on TikTok, `scope` on Google).
    pub echo_scopes_as: Option<&'static str>,
    /// Appended to the redirect (Instagram adds `#_`).
    pub fragment: Option<&'static str>,
}

/// The authorize page: checks the client and redirect URI, then approves at once.
pub(crate) fn authorize(state: &State, spec: &AuthorizeSpec, q: &Params) -> Response {
    let creds = credentials(spec.platform);
    if q.get(spec.client_param) != Some(&creds.client_id) {
        return page(StatusCode::BAD_REQUEST, &format!("Invalid {}: this app is not registered", spec.client_param));
    }
    let Some(redirect) = q.get("redirect_uri").and_then(|r| url::Url::parse(r).ok()) else {
        return page(StatusCode::BAD_REQUEST, "redirect_uri is missing or invalid");
    };
    if !matches!(redirect.scheme(), "http" | "https") || redirect.fragment().is_some() {
        return page(StatusCode::BAD_REQUEST, "redirect_uri does not match a registered callback");
    }
    let redirect_with = |pairs: &[(&str, &str)]| {
        let mut u = redirect.clone();
        {
            let mut qp = u.query_pairs_mut();
            for (k, v) in pairs {
                qp.append_pair(k, v);
            }
        }
        let mut loc = u.to_string();
        if let Some(f) = spec.fragment {
            loc.push_str(f);
        }
        (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response()
    };
    let st = q.get("state").cloned().unwrap_or_default();
    if q.get("response_type").map(String::as_str) != Some("code") {
        return redirect_with(&[("error", "unsupported_response_type"), ("state", &st)]);
    }
    let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (None, _) => None,
        (Some(c), m) => {
            let m = m.map(String::as_str).unwrap_or("plain");
            if m != "S256" && m != "plain" {
                return redirect_with(&[
                    ("error", "invalid_request"),
                    ("error_description", "unsupported code_challenge_method"),
                    ("state", &st),
                ]);
            }
            Some((c.clone(), m.to_owned()))
        }
    };
    let scopes: Vec<String> = q
        .get("scope")
        .map(|s| s.split(spec.scope_sep).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let mut inner = state.lock();
    let users: Vec<_> = inner.users.iter().filter(|u| u.platform == spec.platform).collect();
    let user = q
        .get("login_hint")
        .and_then(|h| users.iter().find(|u| &u.handle == h || &u.id == h))
        .or(users.first())
        .map(|u| u.id.clone());
    let Some(user) = user else {
        return page(StatusCode::BAD_REQUEST, "no user can sign in");
    };
    let code = token("code_");
    inner.codes.insert(
        code.clone(),
        AuthCode {
            platform: spec.platform.to_owned(),
            redirect_uri: redirect.to_string(),
            challenge,
            user,
            scopes: scopes.clone(),
            expires_at: now() + chrono_dur(spec.code_ttl),
            used: false,
        },
    );
    drop(inner);
    let joined = scopes.join(spec.scope_sep);
    let mut pairs = vec![("code", code.as_str()), ("state", st.as_str())];
    if let Some(name) = spec.echo_scopes_as {
        pairs.push((name, &joined));
    }
    redirect_with(&pairs)
}

/// Why a code exchange failed: an OAuth `error` and its description.
pub(crate) type ExchangeError = (&'static str, String);

/// Takes a code: it must be unused, unexpired, issued to this client for this redirect URI,
/// and the verifier must match its PKCE challenge.
pub(crate) fn take_code(
    state: &State,
    platform: &str,
    code: Option<&String>,
    redirect_uri: Option<&String>,
    verifier: Option<&String>,
) -> Result<AuthCode, ExchangeError> {
    let mut inner = state.lock();
    let code = code.ok_or(("invalid_request", "code is missing".to_owned()))?;
    let c = inner
        .codes
        .get_mut(code)
        .filter(|c| c.platform == platform)
        .ok_or(("invalid_grant", "Value passed for the authorization code was invalid.".to_owned()))?;
    if c.used {
        // A replayed code revokes nothing here, but is refused.
        return Err(("invalid_grant", "The authorization code was already used.".into()));
    }
    c.used = true;
    if c.expires_at <= now() {
        return Err(("invalid_grant", "The authorization code has expired.".into()));
    }
    if redirect_uri.map(|r| normalize(r)) != Some(normalize(&c.redirect_uri)) {
        return Err(("invalid_grant", "redirect_uri does not match the one used at authorization.".into()));
    }
    if let Some((challenge, method)) = &c.challenge {
        let Some(v) = verifier else {
            return Err(("invalid_request", "Code verifier or code challenge is invalid.".into()));
        };
        let ok = match method.as_str() {
            "plain" => v == challenge,
            _ => {
                let digest = Sha256::digest(v.as_bytes());
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                &b64 == challenge || &hex == challenge
            }
        };
        if !ok {
            return Err(("invalid_request", "Code verifier or code challenge is invalid.".into()));
        }
    }
    Ok(c.clone())
}

fn normalize(u: &str) -> String {
    url::Url::parse(u).map(|u| u.to_string()).unwrap_or_else(|_| u.to_owned())
}

/// The client's id and secret, from HTTP Basic or the form body (`id_field`/`client_secret`).
pub(crate) fn client_of(headers: &HeaderMap, form: &Params, id_field: &str) -> (Option<String>, Option<String>) {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(basic.trim())
        && let Ok(s) = String::from_utf8(raw)
        && let Some((id, secret)) = s.split_once(':')
    {
        return (Some(unescape(id)), Some(unescape(secret)));
    }
    (form.get(id_field).cloned(), form.get("client_secret").cloned())
}

fn unescape(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// Whether the client is the sandbox's app for `platform` (a secret, when sent or required,
/// must match).
pub(crate) fn client_ok(platform: &str, id: Option<&str>, secret: Option<&str>, secret_required: bool) -> bool {
    let creds = credentials(platform);
    if id != Some(creds.client_id.as_str()) {
        return false;
    }
    match secret {
        Some(s) => s == creds.client_secret,
        None => !secret_required,
    }
}

/// The bearer token of a request (`Authorization: Bearer …` or `OAuth …`).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, tok) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth") {
        Some(tok.trim().to_owned())
    } else {
        None
    }
}
