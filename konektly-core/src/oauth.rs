//! OAuth 2.0 for every adapter: random `state`, PKCE S256, and the one token-endpoint client
//! ([`OAuthClient`]) through which every adapter exchanges codes, refreshes and revokes, over the
//! core HTTP layer (redirects never followed, secrets never in a log, a `Debug` or an error).
//!
//! What differs between platforms is a [`TokenDialect`]: how the token endpoint answers an
//! error (RFC 6749's `{error, error_description}`, TikTok's flat error or v2 envelope — with status
//! 200 —, Meta's Graph errors, Google's `error_subtype`), what that error means, and the shape of
//! its tokens (TikTok's `open_id` and `refresh_expires_in`, Instagram Login's `data: [...]`,
//! Google's scope as a string or an array). [`Rfc6749`] is the standard one. The client sends,
//! reads, maps an error through the dialect and reads the tokens; an answer to a one-time grant
//! (a code, a token exchange) that cannot be read is [`Error::UnknownOutcome`], never `Transient`:
//! the code may be spent.

use std::fmt;

use chrono::{DateTime, Utc};
use oauth2::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::error::{Error, Result};
use crate::http::{ApiResponse, CallKind, HttpClient};
use crate::model::TokenSet;
use crate::platform::AuthorizationRequest;
use crate::secret::{AccessToken, ClientSecret, PkceVerifier, RefreshToken};

/// A random `state` of 256 bits, URL-safe.
pub fn random_state() -> String {
    CsrfToken::new_random_len(32).secret().clone()
}

/// A new PKCE S256 pair: the verifier (keep it secret until the exchange) and the challenge.
pub fn pkce_pair() -> (PkceVerifier, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (PkceVerifier::new(verifier.secret().clone()), challenge.as_str().to_owned())
}

/// Adds a fresh PKCE S256 challenge to an authorize URL (`code_challenge`,
/// `code_challenge_method=S256`) and returns the verifier to keep for the code exchange.
pub fn add_pkce_s256(url: &mut Url) -> PkceVerifier {
    let (verifier, challenge) = pkce_pair();
    url.query_pairs_mut().append_pair("code_challenge", &challenge).append_pair("code_challenge_method", "S256");
    verifier
}

/// The S256 challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_owned())).as_str().to_owned()
}

/// How a client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with `client_id:client_secret` (confidential clients).
    Basic,
    /// `client_id` (and `client_secret`, if any) in the form body.
    RequestBody,
}

/// An application's OAuth client registration and endpoints.
#[derive(Clone)]
pub struct OAuthConfig {
    /// The client id.
    pub client_id: String,
    /// The client secret, for confidential clients.
    pub client_secret: Option<ClientSecret>,
    /// The authorization endpoint (the browser goes there).
    pub auth_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The revocation endpoint, if any.
    pub revoke_url: Option<Url>,
    /// How the client authenticates.
    pub client_auth: ClientAuth,
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("auth_url", &self.auth_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("revoke_url", &self.revoke_url.as_ref().map(Url::as_str))
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// A token endpoint's answer, in the fields the platforms use.
#[derive(Clone, Debug)]
pub struct TokenResponseData {
    /// The tokens, with expiry computed from `expires_in`.
    pub tokens: TokenSet,
}

/// What a token request asks for. An answer to a one-time grant (`Code`, `Exchange`) that
/// cannot be read is an unknown outcome; a refresh's is transient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// `authorization_code`: a one-time code for tokens.
    Code,
    /// A token for another (Meta's `fb_exchange_token`, `ig_exchange_token`).
    Exchange,
    /// A refresh (`refresh_token`, Meta's re-exchange of a user token, `ig_refresh_token`).
    Refresh,
    /// A revocation.
    Revoke,
}

impl Grant {
    /// Whether what is sent can be spent by the request (a code, a short-lived token).
    pub fn one_time(self) -> bool {
        matches!(self, Grant::Code | Grant::Exchange)
    }
}

/// One token request as its dialect sees it: what it asks for, how it was sent, its name for
/// people (`exchanging the code`).
#[derive(Clone, Copy, Debug)]
pub struct TokenStep<'a> {
    /// What is asked for.
    pub grant: Grant,
    /// How it was sent (`Create`: never retried, e.g. a rotating refresh token).
    pub kind: CallKind,
    /// Its name, for messages.
    pub what: &'a str,
}

impl TokenStep<'_> {
    /// The kind an answer is read as: a refresh or a revocation is asked again safely even
    /// when it was sent once only (an unreadable answer is transient); a one-time grant is not.
    pub fn answer_kind(&self) -> CallKind {
        if self.grant.one_time() { self.kind } else { CallKind::Idempotent }
    }
}

/// The tokens a token endpoint answered, and whom they belong to when it says so (TikTok's
/// `open_id`, Instagram Login's `user_id`).
#[derive(Clone, Debug)]
pub struct TokenAnswer {
    /// The tokens, expiries computed from the answer's lifetimes.
    pub tokens: TokenSet,
    /// The user the platform named, if any.
    pub user_id: Option<String>,
}

/// One platform's token endpoint: its error answers, their meaning, its token shape.
pub trait TokenDialect: Send + Sync {
    /// The platform's error as it answered it.
    type TokenError;

    /// The platform's error in `answer`, when the answer is one (TikTok's may come with 200).
    fn parse_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Option<Self::TokenError>;

    /// The public error for the platform's error: the adapter's table.
    fn classify(&self, error: Self::TokenError, answer: &ApiResponse, step: TokenStep<'_>) -> Error;

    /// The tokens in a success answer. An error here is an answer that cannot be read.
    fn tokens(&self, answer: &ApiResponse, step: TokenStep<'_>, now: DateTime<Utc>) -> Result<TokenAnswer>;

    /// The error of an error status without the platform's error body: core's mapping.
    fn unparsed_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        answer.status_error(step.answer_kind(), format!("{}: answered with status {}", step.what, answer.status), None)
    }

    /// Whether a refused revocation means the grant is gone already (Google's `invalid_token`).
    fn already_revoked(&self, error: &Self::TokenError) -> bool {
        let _ = error;
        false
    }
}

/// Reads a token endpoint's answer as the client does: the dialect's error, an error status,
/// then the tokens (an unreadable answer to a one-time grant sent as a create is an unknown
/// outcome). For fuzzing entry points and tests holding an answer.
pub fn read_tokens<D: TokenDialect>(
    dialect: &D,
    answer: &ApiResponse,
    step: TokenStep<'_>,
    now: DateTime<Utc>,
) -> Result<TokenAnswer> {
    if let Some(e) = dialect.parse_error(answer, step) {
        return Err(dialect.classify(e, answer, step));
    }
    if !answer.is_success() {
        return Err(dialect.unparsed_error(answer, step));
    }
    dialect.tokens(answer, step, now).map_err(|e| match (step.answer_kind(), e) {
        (CallKind::Create, Error::UnknownOutcome { message, source }) => Error::UnknownOutcome { message, source },
        (CallKind::Create, e) => Error::UnknownOutcome {
            message: format!("{}: the answer could not be read, the grant may be spent: {e}", step.what),
            source: Some(Box::new(e)),
        },
        (CallKind::Idempotent, e) => e,
    })
}

/// Reads a revocation's answer as the client does: a success, or a refusal that says the grant
/// is gone already, is done.
pub fn read_revocation<D: TokenDialect>(dialect: &D, answer: &ApiResponse, step: TokenStep<'_>) -> Result<()> {
    if let Some(e) = dialect.parse_error(answer, step) {
        if dialect.already_revoked(&e) {
            return Ok(());
        }
        return Err(dialect.classify(e, answer, step));
    }
    if answer.is_success() { Ok(()) } else { Err(dialect.unparsed_error(answer, step)) }
}

/// How a token request travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenMethod {
    /// `POST` with a form body (RFC 6749).
    PostForm,
    /// `GET` with the parameters in the query (Meta's Graph token endpoints).
    Get,
}

/// Whether the app's client credentials go with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// As the configuration says ([`ClientAuth`]).
    Client,
    /// None (Google's revocation, Instagram's `ig_refresh_token`): the parameters say it all.
    None,
}

/// One request to a token endpoint.
#[derive(Clone, Debug)]
pub struct TokenRequest<'a> {
    /// Where (default: the configuration's token URL).
    pub url: Option<Url>,
    /// How.
    pub method: TokenMethod,
    /// The parameters, in order (the client's credentials are added after them).
    pub params: Vec<(&'a str, &'a str)>,
    /// Whether the client's credentials go too.
    pub credentials: Credentials,
    /// What it asks for, how it is sent, its name.
    pub step: TokenStep<'a>,
}

/// The RFC 6749 token endpoint: `{access_token, expires_in, refresh_token, scope}` answers,
/// `{error, error_description}` errors, the standard table (`invalid_grant`/`invalid_scope` →
/// `ReauthRequired`, `invalid_client`/`unauthorized_client` → `Config`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rfc6749;

/// An RFC 6749 token answer.
#[derive(Debug, Deserialize)]
pub struct StandardTokenBody {
    /// The access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// A refresh token (absent: keep the stored one).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The granted scopes (a string, or an array).
    #[serde(default, deserialize_with = "scopes_string_or_array")]
    pub scope: Vec<String>,
}

impl StandardTokenBody {
    /// The tokens, expiry from `now`.
    pub fn token_set(self, now: DateTime<Utc>) -> TokenSet {
        TokenSet {
            access_token: AccessToken::new(self.access_token),
            refresh_token: self.refresh_token.filter(|t| !t.is_empty()).map(RefreshToken::new),
            expires_at: expires_after(now, self.expires_in),
            refresh_expires_at: None,
            scopes: self.scope,
        }
    }
}

impl Rfc6749 {
    /// The standard error body of a non-success answer.
    pub fn error_body(answer: &ApiResponse) -> Option<OAuthErrorBody> {
        if answer.is_success() {
            return None;
        }
        serde_json::from_slice::<OAuthErrorBody>(&answer.body).ok().filter(|b| !b.error.is_empty())
    }

    /// The standard table.
    pub fn standard_error(error: OAuthErrorBody, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        let detail = error.error_description.unwrap_or_default();
        if step.grant == Grant::Revoke {
            return answer.status_error(
                CallKind::Idempotent,
                format!("revocation failed: {}: {detail}", error.error),
                None,
            );
        }
        match error.error.as_str() {
            "invalid_grant" => Error::reauth(format!("the platform refused the grant (invalid_grant): {detail}")),
            "invalid_client" | "unauthorized_client" => {
                Error::Config(format!("the platform refused the app's client credentials ({}): {detail}", error.error))
            }
            "invalid_scope" => Error::reauth(format!("the requested scopes were refused: {detail}")),
            other => Error::rejected(Some(other.to_owned()), format!("token endpoint error {other}: {detail}")),
        }
    }
}

impl TokenDialect for Rfc6749 {
    type TokenError = OAuthErrorBody;

    fn parse_error(&self, answer: &ApiResponse, _: TokenStep<'_>) -> Option<OAuthErrorBody> {
        Self::error_body(answer)
    }

    fn classify(&self, error: OAuthErrorBody, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        Self::standard_error(error, answer, step)
    }

    fn tokens(&self, answer: &ApiResponse, _: TokenStep<'_>, now: DateTime<Utc>) -> Result<TokenAnswer> {
        let body: StandardTokenBody = answer.json()?;
        Ok(TokenAnswer { tokens: body.token_set(now), user_id: None })
    }

    fn unparsed_error(&self, answer: &ApiResponse, step: TokenStep<'_>) -> Error {
        let what = if step.grant == Grant::Revoke { "revocation failed" } else { step.what };
        answer.status_error(step.answer_kind(), format!("{what}: status {}", answer.status), None)
    }
}

/// The token-endpoint client every adapter uses (with PKCE S256 authorization URLs), over the
/// core HTTP layer, in a platform's [`TokenDialect`].
#[derive(Clone, Debug)]
pub struct OAuthClient<D = Rfc6749> {
    config: OAuthConfig,
    http: HttpClient,
    dialect: D,
    client_id_field: &'static str,
    method: TokenMethod,
    no_cache: bool,
    refresh_kind: CallKind,
}

impl OAuthClient<Rfc6749> {
    /// A client for `config`, sending through `http`, in the standard dialect.
    pub fn new(config: OAuthConfig, http: HttpClient) -> Self {
        Self {
            config,
            http,
            dialect: Rfc6749,
            client_id_field: "client_id",
            method: TokenMethod::PostForm,
            no_cache: false,
            refresh_kind: CallKind::Create,
        }
    }
}

impl<D: TokenDialect> OAuthClient<D> {
    /// The same client in another dialect.
    pub fn with_dialect<E: TokenDialect>(self, dialect: E) -> OAuthClient<E> {
        OAuthClient {
            config: self.config,
            http: self.http,
            dialect,
            client_id_field: self.client_id_field,
            method: self.method,
            no_cache: self.no_cache,
            refresh_kind: self.refresh_kind,
        }
    }

    /// The name of the client id in a body (`client_id`; TikTok's `client_key`).
    pub fn with_client_id_field(mut self, field: &'static str) -> Self {
        self.client_id_field = field;
        self
    }

    /// How the code exchange and the refresh travel (default `POST` form).
    pub fn with_method(mut self, method: TokenMethod) -> Self {
        self.method = method;
        self
    }

    /// Sends `Cache-Control: no-cache` with every token request (TikTok asks for it).
    pub fn with_no_cache(mut self) -> Self {
        self.no_cache = true;
        self
    }

    /// How a refresh is sent: `Create` (default: never retried blindly, for refresh tokens that
    /// rotate) or `Idempotent` (retried on a transport failure, for those that do not).
    pub fn with_refresh_kind(mut self, kind: CallKind) -> Self {
        self.refresh_kind = kind;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The dialect.
    pub fn dialect(&self) -> &D {
        &self.dialect
    }

    /// The authorization URL with `response_type=code`, `client_id`, `redirect_uri`, `scope`
    /// (joined with `scope_separator`), `state`, PKCE S256 (if `pkce`), and `extra` parameters.
    pub fn authorization_request(
        &self,
        redirect_uri: &Url,
        scopes: &[String],
        scope_separator: &str,
        pkce: bool,
        extra: &[(&str, &str)],
    ) -> AuthorizationRequest {
        let state = random_state();
        let mut url = self.config.auth_url.clone();
        let mut verifier = None;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", redirect_uri.as_str());
            if !scopes.is_empty() {
                q.append_pair("scope", &scopes.join(scope_separator));
            }
            q.append_pair("state", &state);
            if pkce {
                let (v, challenge) = pkce_pair();
                q.append_pair("code_challenge", &challenge).append_pair("code_challenge_method", "S256");
                verifier = Some(v);
            }
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        AuthorizationRequest { url, state, pkce_verifier: verifier }
    }

    /// Sends one token request and reads its answer ([`read_tokens`]).
    pub async fn request(&self, request: TokenRequest<'_>) -> Result<TokenAnswer> {
        let step = request.step;
        let answer = self.send(request).await?;
        read_tokens(&self.dialect, &answer, step, Utc::now())
    }

    /// Sends one revocation request and reads its answer ([`read_revocation`]).
    pub async fn revoke_with(&self, request: TokenRequest<'_>) -> Result<()> {
        let step = request.step;
        let answer = self.send(request).await?;
        read_revocation(&self.dialect, &answer, step)
    }

    async fn send(&self, request: TokenRequest<'_>) -> Result<ApiResponse> {
        let url = request.url.unwrap_or_else(|| self.config.token_url.clone());
        let mut params = request.params;
        let mut basic = None;
        if request.credentials == Credentials::Client {
            match (self.config.client_auth, &self.config.client_secret) {
                (ClientAuth::Basic, Some(secret)) => {
                    // RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
                    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                    basic = Some(basic_auth(&enc(&self.config.client_id), &enc(secret.expose())));
                }
                (_, secret) => {
                    params.push((self.client_id_field, &self.config.client_id));
                    if let Some(s) = secret {
                        params.push(("client_secret", s.expose()));
                    }
                }
            }
        }
        let mut rb = match request.method {
            TokenMethod::PostForm => self.http.client().post(url).form(&params),
            TokenMethod::Get => self.http.client().get(url).query(&params),
        };
        rb = rb.header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = basic {
            rb = rb.header(AUTHORIZATION, b);
        }
        if self.no_cache {
            rb = rb.header(reqwest::header::CACHE_CONTROL, "no-cache");
        }
        let kind = request.step.kind;
        let resp = self.http.send(rb, kind).await?;
        ApiResponse::read(resp, kind).await
    }

    /// Exchanges an authorization code (with the PKCE verifier, if one was used): `grant_type`,
    /// `code`, `redirect_uri`, `code_verifier`, then `extra`. Sent once (`Create`).
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: Option<&PkceVerifier>,
        extra: &[(&str, &str)],
    ) -> Result<TokenAnswer> {
        let mut params =
            vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri.as_str())];
        if let Some(v) = verifier {
            params.push(("code_verifier", v.expose()));
        }
        params.extend_from_slice(extra);
        let step = TokenStep { grant: Grant::Code, kind: CallKind::Create, what: "exchanging the code" };
        self.at_token_url(params, step).await
    }

    /// [`exchange`](Self::exchange), the tokens only.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: Option<&PkceVerifier>,
        extra: &[(&str, &str)],
    ) -> Result<TokenSet> {
        Ok(self.exchange(code, redirect_uri, verifier, extra).await?.tokens)
    }

    /// Refreshes with a refresh token (`grant_type=refresh_token`, then `extra`). The answer may
    /// lack a refresh token (the caller keeps the stored one) or carry a new one (it rotated).
    pub async fn refresh_grant(&self, refresh_token: &RefreshToken, extra: &[(&str, &str)]) -> Result<TokenAnswer> {
        let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())];
        params.extend_from_slice(extra);
        let step = TokenStep { grant: Grant::Refresh, kind: self.refresh_kind, what: "refreshing the token" };
        self.at_token_url(params, step).await
    }

    /// A request to the configured token URL, as configured, with the client's credentials.
    async fn at_token_url(&self, params: Vec<(&str, &str)>, step: TokenStep<'_>) -> Result<TokenAnswer> {
        let request = TokenRequest { url: None, method: self.method, params, credentials: Credentials::Client, step };
        self.request(request).await
    }

    /// [`refresh_grant`](Self::refresh_grant), the tokens only.
    pub async fn refresh(&self, refresh_token: &RefreshToken, extra: &[(&str, &str)]) -> Result<TokenSet> {
        Ok(self.refresh_grant(refresh_token, extra).await?.tokens)
    }

    /// Revokes a token at the configured revocation URL (RFC 7009 form: `token` and optional
    /// `token_type_hint`), authenticating as configured.
    pub async fn revoke(&self, token: &str, hint: Option<&str>) -> Result<()> {
        let url = self.config.revoke_url.clone().ok_or_else(|| Error::NotSupported("token revocation".into()))?;
        let mut params: Vec<(&str, &str)> = vec![("token", token)];
        if let Some(h) = hint {
            params.push(("token_type_hint", h));
        }
        self.revoke_with(TokenRequest {
            url: Some(url),
            method: TokenMethod::PostForm,
            params,
            credentials: Credentials::Client,
            step: TokenStep { grant: Grant::Revoke, kind: CallKind::Idempotent, what: "revoking the token" },
        })
        .await
    }
}

/// `now + secs` for a token's lifetime: `None` for none, a non-positive or an absurd one
/// (`Duration::seconds` and the addition panic beyond the calendar).
pub fn expires_after(now: DateTime<Utc>, secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.filter(|s| *s > 0).and_then(chrono::Duration::try_seconds).and_then(|d| now.checked_add_signed(d))
}

/// Reads granted scopes given as one string (split on spaces or commas), an array of strings,
/// or nothing (`deserialize_with`).
pub fn scopes_string_or_array<'de, De: Deserializer<'de>>(d: De) -> std::result::Result<Vec<String>, De::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scopes {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Scopes>::deserialize(d)? {
        Some(Scopes::One(s)) => split_scopes(&s),
        Some(Scopes::Many(v)) => v.into_iter().filter(|s| !s.is_empty()).collect(),
        None => Vec::new(),
    })
}

/// An `Authorization: Basic` header value, marked sensitive so it is never printed.
pub fn basic_auth(user: &str, password: &str) -> HeaderValue {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header value");
    v.set_sensitive(true);
    v
}

/// An `Authorization: Bearer` header value, marked sensitive.
pub fn bearer(token: &AccessToken) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
    v.set_sensitive(true);
    v
}

/// The standard OAuth error body.
#[derive(Debug, Deserialize)]
pub struct OAuthErrorBody {
    /// `invalid_grant`…
    pub error: String,
    /// Details.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// Splits a granted `scope` string on spaces or commas.
pub fn split_scopes(scope: &str) -> Vec<String> {
    scope.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn state_has_at_least_128_bits_and_is_unique() {
        let a = random_state();
        let b = random_state();
        assert_ne!(a, b);
        // 32 random bytes, base64url without padding.
        assert!(a.len() >= 43, "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn pkce_pair_challenge_matches_its_verifier() {
        let (v, c) = pkce_pair();
        assert_eq!(pkce_challenge(v.expose()), c);
        assert!(v.expose().len() >= 43);
    }

    fn answer(status: u16, body: &str) -> ApiResponse {
        ApiResponse {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: reqwest::header::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    fn step(grant: Grant, kind: CallKind) -> TokenStep<'static> {
        TokenStep { grant, kind, what: "test" }
    }

    #[test]
    fn an_unreadable_answer_to_a_code_is_an_unknown_outcome_and_to_a_refresh_transient() {
        let now = Utc::now();
        let a = answer(200, "<html>");
        let e = read_tokens(&Rfc6749, &a, step(Grant::Code, CallKind::Create), now).unwrap_err();
        assert!(matches!(e, Error::UnknownOutcome { .. }), "{e:?}");
        let e = read_tokens(&Rfc6749, &a, step(Grant::Refresh, CallKind::Create), now).unwrap_err();
        assert!(matches!(e, Error::Transient { .. }), "{e:?}");
    }

    #[test]
    fn the_standard_table_and_tokens() {
        let now = Utc::now();
        let e = read_tokens(
            &Rfc6749,
            &answer(400, r#"{"error":"invalid_grant","error_description":"used"}"#),
            step(Grant::Refresh, CallKind::Create),
            now,
        )
        .unwrap_err();
        assert!(matches!(e, Error::ReauthRequired { .. }), "{e:?}");
        let t = read_tokens(
            &Rfc6749,
            &answer(200, r#"{"access_token":"a","expires_in":99999999999999999,"scope":["x","y"]}"#),
            step(Grant::Code, CallKind::Create),
            now,
        )
        .unwrap();
        assert_eq!((t.tokens.expires_at, t.tokens.scopes), (None, vec!["x".to_owned(), "y".to_owned()]));
    }

    #[test]
    fn config_debug_hides_the_secret() {
        let c = OAuthConfig {
            client_id: "id".into(),
            client_secret: Some(ClientSecret::new("s3cr3t-value")),
            auth_url: "https://a.example/auth".parse().unwrap(),
            token_url: "https://a.example/token".parse().unwrap(),
            revoke_url: None,
            client_auth: ClientAuth::Basic,
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
