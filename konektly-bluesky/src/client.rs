//! Requests to Bluesky, and only them: XRPC calls (`{pds}/xrpc/<nsid>`) through core's call
//! pipeline in Bluesky's dialect (`error.rs`), the session calls read by core's token reader in
//! the session dialect (`oauth.rs`), and identity lookups (handle → DID → DID document).

use chrono::Utc;
use konektly_core::api;
use konektly_core::http::ApiResponse;
use konektly_core::oauth::{Grant, read_revocation, read_tokens};
use konektly_core::reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use konektly_core::reqwest::{Body, RequestBuilder};
use konektly_core::{AccessToken, CallKind, Error, HttpClient, PublishContext, RefreshToken, Result, TokenSet};
use serde_json::{Value, json};
use url::Url;

use crate::config::Config;
use crate::error::BlueskyDialect;
use crate::model::{
    BlobOutput, DidDocument, POST_COLLECTION, ProfileView, RecordOutput, ResolvedHandle, SessionBody, WriteOutput,
};
use crate::oauth::{BlueskySessions, step};

/// The XRPC methods the adapter calls.
pub(crate) mod nsid {
    pub const CREATE_SESSION: &str = "com.atproto.server.createSession";
    pub const REFRESH_SESSION: &str = "com.atproto.server.refreshSession";
    pub const DELETE_SESSION: &str = "com.atproto.server.deleteSession";
    pub const RESOLVE_HANDLE: &str = "com.atproto.identity.resolveHandle";
    pub const GET_PROFILE: &str = "app.bsky.actor.getProfile";
    pub const UPLOAD_BLOB: &str = "com.atproto.repo.uploadBlob";
    pub const CREATE_RECORD: &str = "com.atproto.repo.createRecord";
    pub const GET_RECORD: &str = "com.atproto.repo.getRecord";
    pub const DELETE_RECORD: &str = "com.atproto.repo.deleteRecord";
}

/// Largest page read for a link card's Open Graph tags.
const MAX_PAGE: usize = 512 * 1024;

/// The HTTP side of the adapter.
#[derive(Clone, Debug)]
pub(crate) struct BlueskyClient {
    pub config: Config,
    pub http: HttpClient,
}

fn bearer(token: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::Config("a Bluesky token is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// `{base}/xrpc/<nsid>`.
pub(crate) fn xrpc(base: &Url, method: &str) -> Result<Url> {
    base.join(&format!("xrpc/{method}")).map_err(|e| Error::Config(format!("invalid Bluesky URL: {e}")))
}

impl BlueskyClient {
    pub(crate) fn dialect(&self) -> BlueskyDialect {
        BlueskyDialect { rate_limit_wait: self.config.rate_limit_wait }
    }

    pub(crate) fn sessions(&self) -> BlueskySessions {
        BlueskySessions {
            access_ttl: self.config.access_ttl,
            refresh_ttl: self.config.refresh_ttl,
            rate_limit_wait: self.config.rate_limit_wait,
        }
    }

    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        ctx: Option<&PublishContext<'_>>,
        req: RequestBuilder,
        kind: CallKind,
        what: &str,
    ) -> Result<T> {
        api::call_json(&self.http, &self.dialect(), ctx, req.header(ACCEPT, "application/json"), kind, what).await
    }

    // ---- identity --------------------------------------------------------------------------

    /// `com.atproto.identity.resolveHandle` at `service` (the entryway, or a PDS).
    pub async fn resolve_handle(&self, service: &Url, handle: &str) -> Result<String> {
        let mut url = xrpc(service, nsid::RESOLVE_HANDLE)?;
        url.query_pairs_mut().append_pair("handle", handle);
        let req = self.http.client().get(url);
        let r: ResolvedHandle =
            self.call_json(None, req, CallKind::Idempotent, "GET com.atproto.identity.resolveHandle").await?;
        if !r.did.starts_with("did:") {
            return Err(Error::transient("Bluesky resolved the handle to something that is not a DID"));
        }
        Ok(r.did)
    }

    /// The DID document: `did:plc` from the PLC directory, `did:web` from the host's
    /// `/.well-known/did.json`.
    pub async fn did_document(&self, did: &str) -> Result<DidDocument> {
        let url = if did.starts_with("did:plc:") {
            Url::parse(&format!("{}{did}", self.config.plc_directory))
                .map_err(|e| Error::Config(format!("invalid PLC URL: {e}")))?
        } else if let Some(host) = did.strip_prefix("did:web:") {
            let host = host.replace("%3A", ":");
            let scheme = if self.config.did_web_http { "http" } else { "https" };
            Url::parse(&format!("{scheme}://{host}/.well-known/did.json"))
                .map_err(|e| Error::rejected(Some("invalid_did".into()), format!("an invalid did:web `{did}`: {e}")))?
        } else {
            return Err(Error::rejected(Some("unsupported_did".into()), format!("unsupported DID method: `{did}`")));
        };
        let req = self.http.client().get(url);
        let doc: DidDocument = self.call_json(None, req, CallKind::Idempotent, "GET DID document").await?;
        if doc.id != did {
            return Err(Error::rejected(
                Some("did_mismatch".into()),
                format!("the DID document of `{did}` names `{}`", doc.id),
            ));
        }
        Ok(doc)
    }

    // ---- sessions --------------------------------------------------------------------------

    async fn session_answer(
        &self,
        req: RequestBuilder,
        grant: Grant,
        what: &'static str,
    ) -> Result<(TokenSet, SessionBody)> {
        let step = step(grant, what);
        let resp = self.http.send(req, step.kind).await?;
        let answer = ApiResponse::read(resp, step.kind).await?;
        let dialect = self.sessions();
        read_tokens(&dialect, &answer, step, Utc::now())?;
        dialect.session(&answer, Utc::now())
    }

    /// `com.atproto.server.createSession` with an identifier (handle, DID or e-mail) and an app
    /// password.
    pub async fn create_session(&self, pds: &Url, identifier: &str, password: &str) -> Result<(TokenSet, SessionBody)> {
        let body = json!({"identifier": identifier, "password": password});
        let req = self
            .http
            .client()
            .post(xrpc(pds, nsid::CREATE_SESSION)?)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.session_answer(req, Grant::Code, "POST com.atproto.server.createSession").await
    }

    /// `com.atproto.server.refreshSession` (sent once: the refresh JWT rotates).
    pub async fn refresh_session(&self, pds: &Url, refresh: &RefreshToken) -> Result<(TokenSet, SessionBody)> {
        let req =
            self.http.client().post(xrpc(pds, nsid::REFRESH_SESSION)?).header(AUTHORIZATION, bearer(refresh.expose())?);
        self.session_answer(req, Grant::Refresh, "POST com.atproto.server.refreshSession").await
    }

    /// `com.atproto.server.deleteSession`: ends the session (the app password stays).
    pub async fn delete_session(&self, pds: &Url, refresh: &RefreshToken) -> Result<()> {
        let step = step(Grant::Revoke, "POST com.atproto.server.deleteSession");
        let req =
            self.http.client().post(xrpc(pds, nsid::DELETE_SESSION)?).header(AUTHORIZATION, bearer(refresh.expose())?);
        let resp = self.http.send(req, step.kind).await?;
        let answer = ApiResponse::read(resp, step.kind).await?;
        read_revocation(&self.sessions(), &answer, step)
    }

    // ---- reads -----------------------------------------------------------------------------

    /// `app.bsky.actor.getProfile` through the PDS.
    pub async fn get_profile(&self, pds: &Url, token: &AccessToken, actor: &str) -> Result<ProfileView> {
        let mut url = xrpc(pds, nsid::GET_PROFILE)?;
        url.query_pairs_mut().append_pair("actor", actor);
        let req = self.http.client().get(url).header(AUTHORIZATION, bearer(token.expose())?);
        self.call_json(None, req, CallKind::Idempotent, "GET app.bsky.actor.getProfile").await
    }

    /// `com.atproto.repo.getRecord` of a post; `None` when the PDS has no such record.
    pub async fn get_record(&self, pds: &Url, repo: &str, rkey: &str) -> Result<Option<RecordOutput>> {
        let mut url = xrpc(pds, nsid::GET_RECORD)?;
        url.query_pairs_mut()
            .append_pair("repo", repo)
            .append_pair("collection", POST_COLLECTION)
            .append_pair("rkey", rkey);
        let req = self.http.client().get(url);
        match self.call_json::<RecordOutput>(None, req, CallKind::Idempotent, "GET com.atproto.repo.getRecord").await {
            Ok(r) => Ok(Some(r)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ---- writes ----------------------------------------------------------------------------

    /// `com.atproto.repo.uploadBlob`: the bytes as the body, their type as `Content-Type`. The
    /// same bytes make the same blob: safe to send again.
    pub async fn upload_blob(
        &self,
        ctx: &PublishContext<'_>,
        pds: &Url,
        mime: &str,
        len: u64,
        body: Body,
    ) -> Result<serde_json::Value> {
        let req = self
            .http
            .client()
            .post(xrpc(pds, nsid::UPLOAD_BLOB)?)
            .header(AUTHORIZATION, bearer(ctx.access_token().expose())?)
            .header(CONTENT_TYPE, mime)
            .header(CONTENT_LENGTH, len)
            .timeout(self.http.config().upload_timeout)
            .body(body);
        let out: BlobOutput =
            self.call_json(Some(ctx), req, CallKind::Idempotent, "POST com.atproto.repo.uploadBlob").await?;
        if !crate::model::blob_ok(&out.blob) {
            return Err(Error::transient("Bluesky answered the upload without a blob reference"));
        }
        Ok(out.blob)
    }

    /// `com.atproto.repo.createRecord` of a post at the record key konektly chose.
    pub async fn create_record(
        &self,
        ctx: &PublishContext<'_>,
        pds: &Url,
        repo: &str,
        rkey: &str,
        record: &Value,
    ) -> Result<WriteOutput> {
        let body = json!({"repo": repo, "collection": POST_COLLECTION, "rkey": rkey, "record": record});
        let req = self
            .http
            .client()
            .post(xrpc(pds, nsid::CREATE_RECORD)?)
            .header(AUTHORIZATION, bearer(ctx.access_token().expose())?)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let out: WriteOutput =
            self.call_json(Some(ctx), req, CallKind::Create, "POST com.atproto.repo.createRecord").await?;
        if !out.uri.starts_with("at://") || out.cid.is_empty() {
            return Err(Error::UnknownOutcome {
                message: "Bluesky accepted the record but its answer names no uri or cid".into(),
                source: None,
            });
        }
        Ok(out)
    }

    /// `com.atproto.repo.deleteRecord` (repeating it is harmless).
    pub async fn delete_record(&self, pds: &Url, token: &AccessToken, repo: &str, rkey: &str) -> Result<()> {
        let body = json!({"repo": repo, "collection": POST_COLLECTION, "rkey": rkey});
        let req = self
            .http
            .client()
            .post(xrpc(pds, nsid::DELETE_RECORD)?)
            .header(AUTHORIZATION, bearer(token.expose())?)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let _: Value = self.call_json(None, req, CallKind::Idempotent, "POST com.atproto.repo.deleteRecord").await?;
        Ok(())
    }

    // ---- link cards ------------------------------------------------------------------------

    /// The first part of a web page (for its Open Graph tags).
    pub async fn fetch_page(&self, url: &Url) -> Result<String> {
        let req = self.http.client().get(url.clone()).header(ACCEPT, "text/html");
        let mut resp = self.http.send(req, CallKind::Idempotent).await?;
        if !resp.status().is_success() {
            return Err(Error::transient(format!("the link's page answered {}", resp.status())));
        }
        let mut out = Vec::new();
        while out.len() < MAX_PAGE {
            match resp.chunk().await {
                Ok(Some(c)) => out.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => return Err(Error::transient(format!("reading the link's page: {e}"))),
            }
        }
        out.truncate(MAX_PAGE);
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Whether an error says the record does not exist (`RecordNotFound`; older PDSes answer
/// `InvalidRequest` "Could not locate record").
pub(crate) fn is_not_found(e: &Error) -> bool {
    match e {
        Error::Rejected { code: Some(c), message, .. } => {
            c == "RecordNotFound" || (c == "InvalidRequest" && message.contains("Could not locate record"))
        }
        _ => false,
    }
}
