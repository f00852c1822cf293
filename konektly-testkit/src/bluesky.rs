//! The Bluesky emulator: a PDS (and the entryway and PLC directory, on the same port) that
//! follows the AT Protocol's shapes — `{"error": "<Name>", "message"}` bodies, session JWTs with
//! `exp` (access 2 h, refresh 90 days, or the configured lifetime), `ExpiredToken` answered 400,
//! refresh JWTs that rotate (a used one is refused), `RateLimit-*` headers on repository writes
//! (5,000 points an hour per DID, 3 a create), records at the client's record key (a TID; a
//! create at a key that is taken answers **500 `InternalServerError`**, as the reference PDS
//! does), `getRecord` answering `RecordNotFound`, blobs whose size is checked when a record
//! uses them (images 2,000,000 bytes: "blob too big …"), and `did:plc` documents at `/<did>`.
//!
//! Not Bluesky: `GET /konektly/sign-in/authorize`, a stand-in for an application's sign-in form,
//! which signs in the first sandbox user (or `login_hint`) with the sandbox app password
//! ([`APP_PASSWORD`]) and redirects with konektly-bluesky's app-password `code`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::digest::{Digest, consume};
use crate::oauth;
use crate::server::{answer_or_drop, json, with_headers};
use crate::state::{AccessInfo, Inner, MediaRecord, PostedRecord, RefreshInfo, State, chrono_dur, now};

type S = AxState<Arc<State>>;

/// The app password every sandbox Bluesky user signs in with.
pub const APP_PASSWORD: &str = "sbox-appp-pass-word";

const POST: &str = "app.bsky.feed.post";
const MAX_IMAGE: u64 = 2_000_000;
const MAX_VIDEO: u64 = 100_000_000;
const HOUR_POINTS: u32 = 5_000;
const CREATE_COST: u32 = 3;

/// A record in a sandbox repository.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlueskyRecord {
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: String,
    /// Its CID (a digest of the record as sent).
    pub cid: String,
    /// The record.
    pub value: Value,
}

#[derive(Default)]
pub(crate) struct BlueskyState {
    /// (did, collection, rkey) → record.
    records: BTreeMap<(String, String, String), BlueskyRecord>,
    /// blob CID → what was uploaded.
    blobs: HashMap<String, MediaRecord>,
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/konektly/sign-in/authorize", get(sign_in_page))
        .route("/xrpc/com.atproto.server.createSession", post(create_session))
        .route("/xrpc/com.atproto.server.refreshSession", post(refresh_session))
        .route("/xrpc/com.atproto.server.deleteSession", post(delete_session))
        .route("/xrpc/com.atproto.identity.resolveHandle", get(resolve_handle))
        .route("/xrpc/app.bsky.actor.getProfile", get(get_profile))
        .route("/xrpc/com.atproto.repo.uploadBlob", post(upload_blob))
        .route("/xrpc/com.atproto.repo.createRecord", post(create_record))
        .route("/xrpc/com.atproto.repo.getRecord", get(get_record))
        .route("/xrpc/com.atproto.repo.deleteRecord", post(delete_record))
        .route("/xrpc/com.atproto.repo.listRecords", get(list_records))
        .route("/{did}", get(plc_document))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

pub(crate) fn xrpc_error(status: StatusCode, error: &str, message: &str) -> Response {
    json(status, json!({"error": error, "message": message}))
}

fn invalid(message: &str) -> Response {
    xrpc_error(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

/// A sandbox user's DID: `did:plc:` and 24 base32 characters.
pub(crate) fn did_for(n: u64) -> String {
    const A: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let tail: String = (0..16u32).rev().map(|i| A[(n.checked_shr(5 * i).unwrap_or(0) & 31) as usize] as char).collect();
    format!("did:plc:konektly{tail}")
}

/// A sandbox handle: `konektly_sandbox` → `konektly-sandbox.bsky.test`.
pub(crate) fn handle_for(handle: &str) -> String {
    if handle.contains('.') {
        handle.to_ascii_lowercase()
    } else {
        format!("{}.bsky.test", handle.replace('_', "-").to_ascii_lowercase())
    }
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A JWT-shaped token (HS256-looking, the signature random): the adapter reads its `exp`.
fn jwt(scope: &str, did: &str, ttl: Duration) -> (String, chrono::DateTime<chrono::Utc>) {
    let iat = now();
    let exp = iat + chrono_dur(ttl);
    let claims = json!({"scope": scope, "sub": did, "aud": "did:web:pds.sandbox", "iat": iat.timestamp(),
        "exp": exp.timestamp(), "jti": uuid::Uuid::new_v4().simple().to_string()});
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    (format!("{}.{}.{sig}", b64(&json!({"typ": "at+jwt", "alg": "HS256"})), b64(&claims)), exp)
}

fn cid_of(prefix: &str, bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let d = sha2::Sha256::digest(bytes);
    let mut bits = 0u32;
    let mut n = 0u32;
    let mut out = String::from(prefix);
    for b in d {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 5 {
            out.push(A[((bits >> (n - 5)) & 31) as usize] as char);
            n -= 5;
        }
    }
    out
}

/// A new session for `user` (a grant, as the other platforms' authorizations are).
fn session(state: &State, inner: &mut Inner, user: &str) -> Value {
    let grant = inner.new_grant("bluesky", user, vec!["com.atproto.appPass".into()]);
    issue(state, inner, grant, user)
}

fn issue(state: &State, inner: &mut Inner, grant: u64, did: &str) -> Value {
    let (access, exp) = jwt("com.atproto.appPass", did, state.token_ttl(Duration::from_secs(2 * 3600)));
    let (refresh, rexp) = jwt("com.atproto.refresh", did, Duration::from_secs(90 * 86_400));
    inner.access.insert(
        access.clone(),
        AccessInfo { grant, subject: did.to_owned(), expires_at: Some(exp), issued_at: now(), long_lived: false },
    );
    inner.refresh.insert(refresh.clone(), RefreshInfo { grant, expires_at: Some(rexp), used: false });
    let handle = inner.user("bluesky", did).map(|u| u.handle.clone()).unwrap_or_default();
    json!({"accessJwt": access, "refreshJwt": refresh, "handle": handle, "did": did, "active": true,
        "didDoc": doc(state, did, &handle)})
}

fn doc(state: &State, did: &str, handle: &str) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "verificationMethod": [],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": state.bases.url("bluesky", "")}],
    })
}

/// The DID a request's access JWT acts for, or the XRPC error.
fn auth(state: &State, headers: &HeaderMap) -> Result<String, Response> {
    let inner = state.lock();
    let Some(tok) = oauth::bearer(headers) else {
        return Err(xrpc_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired", "Authentication Required"));
    };
    match inner.check_access(Some(&tok), &["bluesky"]) {
        Ok((info, _)) => Ok(info.subject),
        Err(crate::state::TokenProblem::Expired) => {
            Err(xrpc_error(StatusCode::BAD_REQUEST, "ExpiredToken", "Token has expired"))
        }
        Err(crate::state::TokenProblem::Revoked) => {
            Err(xrpc_error(StatusCode::BAD_REQUEST, "ExpiredToken", "Token has been revoked"))
        }
        Err(_) => Err(xrpc_error(StatusCode::BAD_REQUEST, "InvalidToken", "Token could not be verified")),
    }
}

async fn sign_in_page(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    let q = oauth::parse_query(q.as_deref());
    let Some(redirect) = q.get("redirect_uri").and_then(|r| url::Url::parse(r).ok()) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is missing or invalid").into_response();
    };
    let inner = state.lock();
    let users: Vec<_> = inner.users.iter().filter(|u| u.platform == "bluesky").collect();
    let user = q.get("login_hint").and_then(|h| users.iter().find(|u| &u.handle == h || &u.id == h)).or(users.first());
    let Some(user) = user else { return (StatusCode::BAD_REQUEST, "no user can sign in").into_response() };
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let code = format!("{}.{}", b.encode(&user.handle), b.encode(APP_PASSWORD));
    let mut back = redirect;
    back.query_pairs_mut().append_pair("code", &code).append_pair("state", q.get("state").map_or("", String::as_str));
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn create_session(AxState(state): S, body: Bytes) -> Response {
    let Ok(input) = serde_json::from_slice::<Value>(&body) else { return invalid("Input must be a JSON object") };
    let (Some(id), Some(password)) = (input["identifier"].as_str(), input["password"].as_str()) else {
        return invalid("Input must have the property \"identifier\" and \"password\"");
    };
    let id = id.trim_start_matches('@').to_ascii_lowercase();
    let mut inner = state.lock();
    let user =
        inner.users.iter().find(|u| u.platform == "bluesky" && (u.handle == id || u.id == id)).map(|u| u.id.clone());
    let (Some(user), true) = (user, password == APP_PASSWORD) else {
        return xrpc_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired", "Invalid identifier or password");
    };
    let body = session(&state, &mut inner, &user);
    json(StatusCode::OK, body)
}

async fn refresh_session(AxState(state): S, headers: HeaderMap) -> Response {
    let Some(tok) = oauth::bearer(&headers) else {
        return xrpc_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired", "Authentication Required");
    };
    let mut inner = state.lock();
    let Some(rt) = inner.refresh.get(&tok).cloned() else {
        return xrpc_error(StatusCode::BAD_REQUEST, "InvalidToken", "Token could not be verified");
    };
    let grant = inner.grants.get(&rt.grant).cloned();
    let Some(grant) = grant.filter(|g| !g.revoked) else {
        return xrpc_error(StatusCode::BAD_REQUEST, "ExpiredToken", "Token has been revoked");
    };
    if rt.used {
        return xrpc_error(StatusCode::BAD_REQUEST, "ExpiredToken", "Token has been revoked");
    }
    if rt.expires_at.is_some_and(|t| t <= now()) {
        return xrpc_error(StatusCode::BAD_REQUEST, "ExpiredToken", "Token has expired");
    }
    if let Some(r) = inner.refresh.get_mut(&tok) {
        r.used = true;
    }
    let body = issue(&state, &mut inner, rt.grant, &grant.user);
    json(StatusCode::OK, body)
}

async fn delete_session(AxState(state): S, headers: HeaderMap) -> Response {
    let Some(tok) = oauth::bearer(&headers) else {
        return xrpc_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired", "Authentication Required");
    };
    let mut inner = state.lock();
    let Some(rt) = inner.refresh.get(&tok).cloned() else {
        return xrpc_error(StatusCode::BAD_REQUEST, "InvalidToken", "Token could not be verified");
    };
    inner.revoke_grant(rt.grant);
    StatusCode::OK.into_response()
}

async fn resolve_handle(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    let q = oauth::parse_query(q.as_deref());
    let handle = q.get("handle").map(|h| h.to_ascii_lowercase()).unwrap_or_default();
    let inner = state.lock();
    match inner.users.iter().find(|u| u.platform == "bluesky" && u.handle == handle) {
        Some(u) => json(StatusCode::OK, json!({"did": u.id})),
        None => invalid("Unable to resolve handle"),
    }
}

async fn plc_document(AxState(state): S, Path(did): Path<String>) -> Response {
    let inner = state.lock();
    match inner.users.iter().find(|u| u.platform == "bluesky" && u.id == did) {
        Some(u) => json(StatusCode::OK, doc(&state, &u.id, &u.handle)),
        None => json(StatusCode::NOT_FOUND, json!({"message": format!("DID not registered: {did}")})),
    }
}

async fn get_profile(AxState(state): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = auth(&state, &headers) {
        return r;
    }
    let q = oauth::parse_query(q.as_deref());
    let actor = q.get("actor").cloned().unwrap_or_default();
    let inner = state.lock();
    match inner.users.iter().find(|u| u.platform == "bluesky" && (u.id == actor || u.handle == actor)) {
        Some(u) => json(
            StatusCode::OK,
            json!({"did": u.id, "handle": u.handle, "displayName": u.name,
            "followersCount": 0, "followsCount": 0, "postsCount": 0}),
        ),
        None => invalid("Profile not found"),
    }
}

async fn upload_blob(AxState(state): S, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = auth(&state, &headers) {
        return r;
    }
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if mime.is_empty() || mime == "*/*" {
        return invalid("Content-Type is required");
    }
    let mut digest = Digest::default();
    if let Err(e) = consume(body, &mut digest, 0, u64::MAX).await {
        return invalid(&e);
    }
    let record = digest.record(&mime);
    let cid = cid_of("bafkrei", record.sha256.as_bytes());
    let size = record.size;
    state.lock().bluesky.blobs.insert(cid.clone(), MediaRecord { mime: mime.clone(), ..record });
    json(StatusCode::OK, json!({"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": size}}))
}

fn is_tid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 13
        && b.iter().all(|c| b"234567abcdefghijklmnopqrstuvwxyz".contains(c))
        && b"234567abcdefghij".contains(&b[0])
}

/// The blobs a post's embed uses, with their JSON path and the limit that applies.
fn blobs_of(embed: &Value) -> Vec<(String, String, u64)> {
    let link = |b: &Value| b.get("ref").and_then(|r| r.get("$link")).and_then(Value::as_str).map(str::to_owned);
    let mut out = Vec::new();
    match embed.get("$type").and_then(Value::as_str) {
        Some("app.bsky.embed.images") => {
            for (i, img) in embed["images"].as_array().into_iter().flatten().enumerate() {
                if let Some(l) = link(&img["image"]) {
                    out.push((l, format!("$.record.embed.images[{i}].image"), MAX_IMAGE));
                }
            }
        }
        Some("app.bsky.embed.video") => {
            if let Some(l) = link(&embed["video"]) {
                out.push((l, "$.record.embed.video".into(), MAX_VIDEO));
            }
        }
        Some("app.bsky.embed.external") => {
            if let Some(l) = link(&embed["external"]["thumb"]) {
                out.push((l, "$.record.embed.external.thumb".into(), 1_000_000));
            }
        }
        _ => {}
    }
    out
}

fn write_limit(state: &State, did: &str) -> Result<HeaderMap, Response> {
    let mut inner = state.lock();
    let key = format!("bluesky:writes:{did}");
    let mut rs = inner.hit(key.clone(), HOUR_POINTS, Duration::from_secs(3600));
    for _ in 1..CREATE_COST {
        rs = inner.hit(key.clone(), HOUR_POINTS, Duration::from_secs(3600));
    }
    let mut h = HeaderMap::new();
    crate::server::header(&mut h, "ratelimit-limit", HOUR_POINTS);
    crate::server::header(&mut h, "ratelimit-remaining", rs.remaining);
    crate::server::header(&mut h, "ratelimit-reset", rs.reset.timestamp());
    crate::server::header(&mut h, "ratelimit-policy", format!("{HOUR_POINTS};w=3600"));
    if !rs.allowed {
        return Err(with_headers(
            xrpc_error(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", "Rate Limit Exceeded"),
            h,
        ));
    }
    Ok(h)
}

async fn create_record(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let did = match auth(&state, &headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Ok(input) = serde_json::from_slice::<Value>(&body) else { return invalid("Input must be a JSON object") };
    let repo = input["repo"].as_str().unwrap_or_default();
    if repo != did {
        return xrpc_error(StatusCode::BAD_REQUEST, "InvalidRequest", "Invalid repo");
    }
    let collection = input["collection"].as_str().unwrap_or_default().to_owned();
    if collection != POST {
        return invalid("Invalid collection");
    }
    let rkey = input["rkey"].as_str().map(str::to_owned).unwrap_or_else(|| {
        let micros = u64::try_from(now().timestamp_micros()).unwrap_or(0);
        let n = micros << 10;
        (0..13).map(|i| b"234567abcdefghijklmnopqrstuvwxyz"[((n >> (60 - 5 * i)) & 31) as usize] as char).collect()
    });
    if !is_tid(&rkey) {
        return invalid("Invalid record key: app.bsky.feed.post records take a TID");
    }
    let record = &input["record"];
    let Some(text) = record["text"].as_str() else {
        return invalid("Invalid app.bsky.feed.post record: Record must have the property \"text\"");
    };
    if record["$type"].as_str() != Some(POST) {
        return invalid("Invalid app.bsky.feed.post record: Record/$type must be app.bsky.feed.post");
    }
    if record["createdAt"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).is_none() {
        return invalid("Invalid app.bsky.feed.post record: Record/createdAt must be an valid atproto datetime");
    }
    // (Characters stand in for graphemes here.)
    if text.chars().count() > 300 {
        return invalid("Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes");
    }
    if text.len() > 3000 {
        return invalid("Invalid app.bsky.feed.post record: Record/text must not be longer than 3000 characters");
    }
    for f in record["facets"].as_array().into_iter().flatten() {
        let (s, e) = (f["index"]["byteStart"].as_u64(), f["index"]["byteEnd"].as_u64());
        match (s, e) {
            (Some(s), Some(e)) if s < e && e as usize <= text.len() => {}
            _ => return invalid("Invalid app.bsky.feed.post record: a facet's byte range is outside the text"),
        }
    }
    let headers = match write_limit(&state, &did) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let mut inner = state.lock();
    let mut media = Vec::new();
    for (cid, path, max) in blobs_of(&record["embed"]) {
        let Some(b) = inner.bluesky.blobs.get(&cid).cloned() else {
            return invalid(&format!("Could not find blob: {cid}"));
        };
        if b.size > max {
            return invalid(&format!("blob too big (maximum {max}, got {}) at {path}", b.size));
        }
        media.push(b);
    }
    let key = (did.clone(), collection.clone(), rkey.clone());
    if inner.bluesky.records.contains_key(&key) {
        // The reference PDS fails on a taken key without saying so.
        return xrpc_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal Server Error");
    }
    let uri = format!("at://{did}/{collection}/{rkey}");
    let cid = cid_of("bafyrei", record.to_string().as_bytes());
    inner.bluesky.records.insert(key, BlueskyRecord { uri: uri.clone(), cid: cid.clone(), value: record.clone() });
    let handle = inner.user("bluesky", &did).map(|u| u.handle.clone()).unwrap_or_default();
    let kind = if record["embed"].is_object() { "post_with_embed" } else { "post" };
    inner.record(PostedRecord {
        seq: 0,
        platform: "bluesky".into(),
        account_id: did.clone(),
        account_handle: handle,
        id: uri.clone(),
        url: Some(format!("https://bsky.app/profile/{did}/post/{rkey}")),
        text: text.to_owned(),
        media,
        reply_to: record["reply"]["parent"]["uri"].as_str().map(str::to_owned),
        kind: kind.into(),
        status: "published".into(),
        scheduled_for: None,
        options: json!({"langs": record["langs"], "facets": record["facets"]}),
        created_at: now(),
    });
    drop(inner);
    let rev = cid_of("", uri.as_bytes())[..13].to_owned();
    let resp = with_headers(
        json(
            StatusCode::OK,
            json!({"uri": uri, "cid": cid, "commit": {"cid": cid_of("bafyrei", rev.as_bytes()), "rev": rev},
            "validationStatus": "valid"}),
        ),
        headers,
    );
    answer_or_drop(&state, "bluesky", resp)
}

async fn get_record(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    let q = oauth::parse_query(q.as_deref());
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let key = (get("repo"), get("collection"), get("rkey"));
    let inner = state.lock();
    match inner.bluesky.records.get(&key) {
        Some(r) => json(StatusCode::OK, json!({"uri": r.uri, "cid": r.cid, "value": r.value})),
        None => xrpc_error(
            StatusCode::BAD_REQUEST,
            "RecordNotFound",
            &format!("Could not locate record: at://{}/{}/{}", key.0, key.1, key.2),
        ),
    }
}

async fn delete_record(AxState(state): S, headers: HeaderMap, body: Bytes) -> Response {
    let did = match auth(&state, &headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Ok(input) = serde_json::from_slice::<Value>(&body) else { return invalid("Input must be a JSON object") };
    if input["repo"].as_str() != Some(did.as_str()) {
        return invalid("Invalid repo");
    }
    let key = (
        did,
        input["collection"].as_str().unwrap_or_default().to_owned(),
        input["rkey"].as_str().unwrap_or_default().to_owned(),
    );
    let mut inner = state.lock();
    if let Some(r) = inner.bluesky.records.remove(&key)
        && let Some(p) = inner.post_mut("bluesky", &r.uri)
    {
        p.status = "deleted".into();
    }
    json(StatusCode::OK, json!({"commit": {"cid": cid_of("bafyrei", key.2.as_bytes()), "rev": key.2}}))
}

async fn list_records(AxState(state): S, RawQuery(q): RawQuery) -> Response {
    let q = oauth::parse_query(q.as_deref());
    let repo = q.get("repo").cloned().unwrap_or_default();
    let collection = q.get("collection").cloned().unwrap_or_default();
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(50).clamp(1, 100);
    let inner = state.lock();
    let mut records: Vec<&BlueskyRecord> =
        inner.bluesky.records.iter().filter(|((d, c, _), _)| *d == repo && *c == collection).map(|(_, r)| r).collect();
    // Newest first (keys are TIDs), after the cursor.
    records.reverse();
    if let Some(cursor) = q.get("cursor") {
        records.retain(|r| r.uri.rsplit('/').next().is_some_and(|k| k < cursor.as_str()));
    }
    records.truncate(limit);
    let cursor = (records.len() == limit).then(|| records.last().and_then(|r| r.uri.rsplit('/').next())).flatten();
    let mut body = json!({"records": records});
    if let Some(c) = cursor {
        body["cursor"] = json!(c);
    }
    json(StatusCode::OK, body)
}

/// The records of `did` in `collection`, oldest key first.
pub(crate) fn records(inner: &Inner, did: &str, collection: &str) -> Vec<BlueskyRecord> {
    inner.bluesky.records.iter().filter(|((d, c, _), _)| d == did && c == collection).map(|(_, r)| r.clone()).collect()
}
