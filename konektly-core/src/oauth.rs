//! OAuth 2.0 building blocks shared by the adapters: random `state`, PKCE S256, and an
//! authorization-code client over the core HTTP layer (the `oauth2` crate's flows, with a small
//! adapter to our client so that redirects are never followed and secrets never reach a log).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, EmptyExtraTokenFields, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken as OAuthRefreshToken, RequestTokenError, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
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

/// An authorization-code client (with PKCE S256) over the core HTTP layer.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    config: OAuthConfig,
    http: HttpClient,
}

type StdTokenResponse = StandardTokenResponse<EmptyExtraTokenFields, BasicTokenType>;

type Oauth2Client = oauth2::Client<
    StandardErrorResponse<BasicErrorResponseType>,
    StdTokenResponse,
    oauth2::StandardTokenIntrospectionResponse<EmptyExtraTokenFields, BasicTokenType>,
    oauth2::StandardRevocableToken,
    oauth2::StandardErrorResponse<oauth2::RevocationErrorResponseType>,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

#[derive(Debug)]
struct TransportError(Error);

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for TransportError {}

impl OAuthClient {
    /// A client for `config`, sending through `http`.
    pub fn new(config: OAuthConfig, http: HttpClient) -> Self {
        Self { config, http }
    }

    /// The configuration.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
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

    fn oauth2_error(err: RequestTokenError<TransportError, StandardErrorResponse<BasicErrorResponseType>>) -> Error {
        match err {
            RequestTokenError::ServerResponse(resp) => {
                let detail = resp.error_description().cloned().unwrap_or_default();
                match resp.error() {
                    BasicErrorResponseType::InvalidGrant => {
                        Error::reauth(format!("the platform refused the grant (invalid_grant): {detail}"))
                    }
                    BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                        Error::Config(format!(
                            "the platform refused the app's client credentials ({}): {detail}",
                            resp.error()
                        ))
                    }
                    BasicErrorResponseType::InvalidScope => {
                        Error::reauth(format!("the requested scopes were refused: {detail}"))
                    }
                    other => {
                        Error::rejected(Some(other.to_string()), format!("token endpoint error {other}: {detail}"))
                    }
                }
            }
            RequestTokenError::Request(TransportError(e)) => e,
            RequestTokenError::Parse(e, _) => {
                Error::transient(format!("the token endpoint answered with an unexpected body: {e}"))
            }
            RequestTokenError::Other(e) => Error::transient(format!("token endpoint: {e}")),
        }
    }

    fn client(&self) -> Result<Oauth2Client> {
        let mut client = oauth2::Client::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(self.config.auth_url.clone()))
            .set_token_uri(TokenUrl::from_url(self.config.token_url.clone()))
            .set_auth_type(match self.config.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::RequestBody => AuthType::RequestBody,
            });
        if let Some(secret) = &self.config.client_secret {
            client = client.set_client_secret(oauth2::ClientSecret::new(secret.expose().to_owned()));
        }
        Ok(client)
    }

    fn transport(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<oauth2::HttpResponse, TransportError>> + Send>>
    + '_ {
        move |req: oauth2::HttpRequest| {
            let http = self.http.clone();
            Box::pin(async move {
                let (parts, body) = req.into_parts();
                let url = Url::parse(&parts.uri.to_string())
                    .map_err(|e| TransportError(Error::Config(format!("invalid token URL: {e}"))))?;
                let mut rb = http.client().request(parts.method, url).body(body);
                for (name, value) in parts.headers.iter() {
                    rb = rb.header(name, value);
                }
                let resp = http.send(rb, CallKind::Create).await.map_err(TransportError)?;
                let api = ApiResponse::read(resp, CallKind::Create).await.map_err(TransportError)?;
                let mut out = http::Response::builder().status(api.status.as_u16());
                for (name, value) in api.headers.iter() {
                    out = out.header(name, value);
                }
                out.body(api.body.to_vec())
                    .map_err(|e| TransportError(Error::transient(format!("bad token response: {e}"))))
            })
        }
    }

    /// Exchanges an authorization code (with the PKCE verifier, if one was used).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: Option<&PkceVerifier>,
        extra: &[(&str, &str)],
    ) -> Result<TokenSet> {
        let client = self.client()?;
        let redirect = RedirectUrl::from_url(redirect_uri.clone());
        let mut req =
            client.exchange_code(AuthorizationCode::new(code.to_owned())).set_redirect_uri(Cow::Owned(redirect));
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v.expose().to_owned()));
        }
        for (k, v) in extra {
            req = req.add_extra_param(*k, *v);
        }
        let transport = self.transport();
        let resp = req.request_async(&transport).await.map_err(Self::oauth2_error)?;
        Ok(token_set_from(&resp, Utc::now()))
    }

    /// Refreshes with a refresh token. The answer may lack a refresh token (the caller keeps
    /// the stored one) or carry a new one (it rotated).
    pub async fn refresh(&self, refresh_token: &RefreshToken, extra: &[(&str, &str)]) -> Result<TokenSet> {
        let client = self.client()?;
        let rt = OAuthRefreshToken::new(refresh_token.expose().to_owned());
        let mut req = client.exchange_refresh_token(&rt);
        for (k, v) in extra {
            req = req.add_extra_param(*k, *v);
        }
        let transport = self.transport();
        let resp = req.request_async(&transport).await.map_err(Self::oauth2_error)?;
        Ok(token_set_from(&resp, Utc::now()))
    }

    /// Revokes a token (RFC 7009 form: `token` and optional `token_type_hint`), authenticating as
    /// configured. Sent over the core HTTP layer directly: `oauth2` refuses plain-HTTP
    /// revocation URLs, which tests and the sandbox use.
    pub async fn revoke(&self, token: &str, hint: Option<&str>) -> Result<()> {
        let url = self.config.revoke_url.clone().ok_or_else(|| Error::NotSupported("token revocation".into()))?;
        let mut form: Vec<(&str, &str)> = vec![("token", token)];
        if let Some(h) = hint {
            form.push(("token_type_hint", h));
        }
        let mut rb = self.http.client().post(url);
        match (self.config.client_auth, &self.config.client_secret) {
            (ClientAuth::Basic, Some(secret)) => {
                rb = rb.header(AUTHORIZATION, basic_auth(&self.config.client_id, secret.expose()));
            }
            (_, secret) => {
                form.push(("client_id", &self.config.client_id));
                if let Some(s) = secret {
                    form.push(("client_secret", s.expose()));
                }
            }
        }
        let resp = self.http.send(rb.form(&form), CallKind::Idempotent).await?;
        let api = ApiResponse::read(resp, CallKind::Idempotent).await?;
        if api.is_success() {
            Ok(())
        } else {
            let msg = serde_json::from_slice::<OAuthErrorBody>(&api.body)
                .map(|b| format!("{}: {}", b.error, b.error_description.unwrap_or_default()))
                .unwrap_or_else(|_| format!("status {}", api.status));
            Err(api.status_error(CallKind::Idempotent, format!("revocation failed: {msg}"), None))
        }
    }
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

fn token_set_from(resp: &StdTokenResponse, now: DateTime<Utc>) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(resp.access_token().secret().clone()),
        refresh_token: resp.refresh_token().map(|t| RefreshToken::new(t.secret().clone())),
        // `checked_add`: an `expires_in` of 10^15 seconds overflows the calendar.
        expires_at: resp
            .expires_in()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_add_signed(d)),
        refresh_expires_at: None,
        scopes: resp.scopes().map(|s| s.iter().map(|s: &Scope| s.to_string()).collect()).unwrap_or_default(),
    }
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
