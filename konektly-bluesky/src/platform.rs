//! [`BlueskyPlatform`]: konektly's `Platform` for Bluesky.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use konektly_core::oauth::random_state;
use konektly_core::ratelimit::DeclaredBudget;
use konektly_core::{
    Account, AccountGrant, AuthorizationRequest, Capabilities, Content, Error, HttpClient, Media, MediaKind,
    PendingAuthorization, Platform, PlatformId, Profile, PublishContext, PublishOutcome, Reconciliation, RemotePost,
    Result, TargetOptions, TokenSet, Violation, async_trait,
};
use serde_json::{Value, json};
use url::Url;

use crate::client::BlueskyClient;
use crate::config::{Config, RateLimits};
use crate::error::{DAILY_WRITES, HOURLY_WRITES};
use crate::model::{BlueskyOptions, DidDocument, Item, POST_COLLECTION, State, Tid, parse_at_uri};
use crate::richtext::{Feature, detect, facet};
use crate::validate::{capabilities, validate};

/// The platform id.
pub const PLATFORM_ID: &str = "bluesky";

/// Bluesky: app-password sessions and posts in the account's repository. Build it with
/// [`BlueskyBuilder`](crate::BlueskyBuilder).
pub struct BlueskyPlatform {
    pub(crate) client: BlueskyClient,
    caps: Capabilities,
}

impl fmt::Debug for BlueskyPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlueskyPlatform").field("config", &self.client.config).finish_non_exhaustive()
    }
}

/// The budgets declared to the engine: the PDS's repository write points, per hour and per
/// day, a create costing `create_cost` (a thread spends that per item; the PDS's headers keep
/// the budgets true).
pub(crate) fn budgets(r: &RateLimits) -> Vec<DeclaredBudget> {
    vec![
        DeclaredBudget::per_account(HOURLY_WRITES, r.points_per_hour, Duration::from_secs(3600))
            .spending(r.create_cost, 0),
        DeclaredBudget::per_account(DAILY_WRITES, r.points_per_day, Duration::from_secs(86_400))
            .spending(r.create_cost, 0),
    ]
}

/// The `code` that completes a connection with an app password: what a sign-in page (the
/// application's form) hands to `Konektly::complete_connect` with the `state` of `connect`.
/// `<base64url(identifier)>.<base64url(app password)>`, unpadded. It is a credential: keep it
/// out of URLs and logs outside a sandbox.
pub fn app_password_code(identifier: &str, app_password: &str) -> String {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}", b.encode(identifier.trim()), b.encode(app_password.trim()))
}

fn parse_code(code: &str) -> Option<(String, String)> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (i, p) = code.split_once('.')?;
    let i = String::from_utf8(b.decode(i).ok()?).ok()?;
    let p = String::from_utf8(b.decode(p).ok()?).ok()?;
    (!i.is_empty() && !p.is_empty()).then_some((i, p))
}

/// Whether a failed create may mean the record is there already (a lost answer, a server
/// failure, or the refusal of a repeat at the same record key).
fn may_exist(e: &Error) -> bool {
    match e {
        Error::UnknownOutcome { .. } => true,
        Error::Rejected { code: Some(c), message, .. } => {
            c == "InvalidSwap" || c == "RecordAlreadyExists" || message.contains("already exists")
        }
        _ => false,
    }
}

fn now_datetime() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `content` of `<meta property|name="{key}" content="…">` in `html`.
fn meta_content(html: &str, key: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("<meta") {
        let start = from + at;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        from = end;
        let names = [format!("property=\"{key}\""), format!("name=\"{key}\""), format!("property='{key}'")];
        if !names.iter().any(|n| tag.contains(n.as_str())) {
            continue;
        }
        for quote in ['"', '\''] {
            if let Some(c) = tag.find(&format!("content={quote}")) {
                let v = start + c + 9;
                let close = html[v..].find(quote).map_or(end, |e| v + e);
                return Some(unescape(html[v..close].trim()));
            }
        }
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn title_of(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let a = lower.find("<title")?;
    let a = a + lower[a..].find('>')? + 1;
    let b = a + lower[a..].find("</title")?;
    Some(unescape(html[a..b].trim())).filter(|t| !t.is_empty())
}

impl BlueskyPlatform {
    pub(crate) fn new(config: Config, http: HttpClient) -> Self {
        let caps = capabilities(&config.limits, budgets(&config.rate_limits));
        Self { client: BlueskyClient { config, http }, caps }
    }

    fn id_() -> PlatformId {
        PlatformId::new(PLATFORM_ID)
    }

    fn cfg(&self) -> &Config {
        &self.client.config
    }

    /// The account's PDS, as found when it connected.
    fn pds_of(account: &Account) -> Result<Url> {
        let pds = account
            .metadata
            .get("pds")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::reauth("this Bluesky account was stored without its PDS; reconnect it"))?;
        Url::parse(pds)
            .map_err(|e| Error::reauth(format!("this Bluesky account's PDS `{pds}` is not a URL ({e}); reconnect it")))
    }

    /// The post's page in the web app.
    fn post_url(&self, did: &str, rkey: &str) -> Option<Url> {
        self.cfg().app_url.join(&format!("profile/{did}/post/{rkey}")).ok()
    }

    /// Where an identifier's account lives: its DID (unless it is an e-mail) and PDS.
    async fn discover(&self, identifier: &str) -> Result<(Option<String>, Url)> {
        if identifier.contains('@') {
            // An e-mail: only the entryway knows whose it is.
            return Ok((None, self.cfg().service.clone()));
        }
        let (did, handle) = if identifier.starts_with("did:") {
            (identifier.to_owned(), None)
        } else {
            let handle = identifier.to_ascii_lowercase();
            let did = self.client.resolve_handle(&self.cfg().service, &handle).await.map_err(|e| match e {
                Error::Rejected { message, .. } => {
                    Error::Authorization(format!("Bluesky cannot find the handle `{handle}`: {message}"))
                }
                e => e,
            })?;
            (did, Some(handle))
        };
        let doc = self.client.did_document(&did).await?;
        if let Some(h) = &handle
            && !doc.handle().is_some_and(|d| d.eq_ignore_ascii_case(h))
        {
            return Err(Error::Authorization(format!(
                "the handle `{h}` points to {did}, whose DID document does not claim it back"
            )));
        }
        let pds = doc.pds().ok_or_else(|| Error::Authorization(format!("the DID document of {did} names no PDS")))?;
        Ok((Some(did), pds))
    }

    /// Signs in with an app password (`identifier`: a handle, a DID or the account's e-mail):
    /// finds the account's PDS (handle → DID → DID document), opens a session there and reads the
    /// profile. What `exchange_code` does with an [`app_password_code`]; applications that keep
    /// accounts themselves call it directly.
    pub async fn sign_in(&self, identifier: &str, app_password: &str) -> Result<AccountGrant> {
        let identifier = identifier.trim().trim_start_matches('@');
        if identifier.is_empty() || app_password.trim().is_empty() {
            return Err(Error::Authorization("Bluesky needs a handle and an app password".into()));
        }
        let (expected, mut pds) = self.discover(identifier).await?;
        let (tokens, body) = self.client.create_session(&pds, identifier, app_password.trim()).await?;
        if body.active == Some(false) {
            return Err(Error::Authorization(format!(
                "the Bluesky account is not active ({}); it cannot post",
                body.status.as_deref().unwrap_or("inactive")
            )));
        }
        let did = body.did.clone().unwrap_or_default();
        if let Some(expected) = expected.as_ref().filter(|e| **e != did) {
            return Err(Error::Authorization(format!("the PDS signed in {did}, not {expected}")));
        }
        if expected.is_none() {
            // Signed in at the entryway with an e-mail: the account's PDS is in its DID document.
            let doc = match body.did_doc.clone().and_then(|d| serde_json::from_value::<DidDocument>(d).ok()) {
                Some(d) if d.pds().is_some() => d,
                _ => self.client.did_document(&did).await?,
            };
            pds = doc.pds().ok_or_else(|| Error::Authorization(format!("the DID document of {did} names no PDS")))?;
        }
        let mut profile =
            Profile { remote_id: did.clone(), handle: body.handle.clone(), display_name: None, avatar_url: None };
        match self.client.get_profile(&pds, &tokens.access_token, &did).await {
            Ok(p) => {
                profile.display_name = p.display_name.filter(|n| !n.is_empty());
                profile.avatar_url = p.avatar.as_deref().and_then(|u| Url::parse(u).ok());
                profile.handle = p.handle.or(profile.handle);
            }
            Err(e) => tracing::debug!(target: "konektly::bluesky", error = %e, "the profile could not be read"),
        }
        let mut grant = AccountGrant::new(Self::id_(), profile, tokens);
        grant.metadata.insert("pds".into(), json!(pds.as_str()));
        grant.metadata.insert("did".into(), json!(did));
        Ok(grant)
    }

    /// The facets of `text`: links and hashtags as found, mentions resolved to DIDs (one that
    /// does not resolve stays plain text).
    async fn facets(&self, pds: &Url, text: &str) -> Result<Vec<Value>> {
        let spans = detect(text);
        let mut dids: BTreeMap<String, Option<String>> = BTreeMap::new();
        for s in &spans {
            if let Feature::Mention(handle) = &s.feature
                && !dids.contains_key(handle)
            {
                let did = match self.client.resolve_handle(pds, handle).await {
                    Ok(d) => Some(d),
                    Err(Error::Rejected { .. }) => None,
                    Err(e) => return Err(e),
                };
                dids.insert(handle.clone(), did);
            }
        }
        Ok(spans
            .iter()
            .filter_map(|s| {
                let did = match &s.feature {
                    Feature::Mention(h) => dids.get(h).cloned().flatten(),
                    _ => None,
                };
                facet(s, did.as_deref())
            })
            .collect())
    }

    /// The link card of `uri`: the options' title and description, else the page's Open
    /// Graph tags (when allowed), else the URL.
    async fn link_card(&self, uri: &Url, opts: &BlueskyOptions) -> Value {
        let mut title = opts.link_title.clone();
        let mut description = opts.link_description.clone();
        if title.is_none() && self.cfg().fetch_link_cards {
            match self.client.fetch_page(uri).await {
                Ok(html) => {
                    title = meta_content(&html, "og:title").or_else(|| title_of(&html));
                    description = description.or_else(|| {
                        meta_content(&html, "og:description").or_else(|| meta_content(&html, "description"))
                    });
                }
                Err(e) => {
                    tracing::debug!(target: "konektly::bluesky", error = %e, "no Open Graph data for the link card")
                }
            }
        }
        json!({
            "$type": "app.bsky.embed.external",
            "external": {
                "uri": uri.as_str(),
                "title": title.unwrap_or_else(|| uri.to_string()),
                "description": description.unwrap_or_default(),
            }
        })
    }

    fn aspect(m: &Media) -> Option<Value> {
        match (m.width, m.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => Some(json!({"width": w, "height": h})),
            _ => None,
        }
    }

    /// Uploads item `i`'s media and fixes its record (text, facets, `createdAt`, reply
    /// references, embed), saved before it is sent: a retry sends the same record.
    async fn freeze(
        &self,
        ctx: &mut PublishContext<'_>,
        state: &mut State,
        i: usize,
        opts: &BlueskyOptions,
        pds: &Url,
    ) -> Result<()> {
        let content = ctx.content;
        let (text, media) = if i == 0 {
            (content.text.as_str(), &content.media)
        } else {
            let t = &content.thread[i - 1];
            (t.text.as_str(), &t.media)
        };
        for (k, m) in media.iter().enumerate() {
            self.upload_blob(ctx, state, pds, i, k, m).await?;
        }
        let mut record = json!({"$type": POST_COLLECTION, "text": text, "createdAt": now_datetime()});
        let facets = self.facets(pds, text).await?;
        if !facets.is_empty() {
            record["facets"] = Value::Array(facets);
        }
        if !opts.langs.is_empty() {
            record["langs"] = json!(opts.langs);
        }
        if i == 0 && !opts.tags.is_empty() {
            record["tags"] = json!(opts.tags);
        }
        if i > 0 {
            let r = |it: &Item| json!({"uri": it.uri, "cid": it.cid});
            record["reply"] = json!({"root": r(&state.items[0]), "parent": r(&state.items[i - 1])});
        }
        let blobs = &state.items[i].blobs;
        if let Some(first) = media.first() {
            record["embed"] = if first.kind() == MediaKind::Video {
                let mut v = json!({"$type": "app.bsky.embed.video", "video": blobs[0]});
                if let Some(alt) = first.alt_text.as_deref().filter(|a| !a.is_empty()) {
                    v["alt"] = json!(alt);
                }
                if let Some(a) = Self::aspect(first) {
                    v["aspectRatio"] = a;
                }
                v
            } else {
                let images: Vec<Value> = media
                    .iter()
                    .zip(blobs)
                    .map(|(m, b)| {
                        let mut img = json!({"image": b, "alt": m.alt_text.clone().unwrap_or_default()});
                        if let Some(a) = Self::aspect(m) {
                            img["aspectRatio"] = a;
                        }
                        img
                    })
                    .collect();
                json!({"$type": "app.bsky.embed.images", "images": images})
            };
        } else if i == 0
            && let Some(link) = &content.link
        {
            record["embed"] = self.link_card(link, opts).await;
        }
        state.items[i].record = Some(record);
        ctx.save_state(&*state).await
    }

    /// The record at `item`'s key, if the PDS holds it: its URI and CID when it is ours (same
    /// text), an error when another record holds the key.
    async fn lookup(&self, pds: &Url, repo: &str, item: &Item) -> Result<Option<(String, String)>> {
        let Some(rkey) = &item.rkey else { return Ok(None) };
        let Some(found) = self.client.get_record(pds, repo, rkey.as_str()).await? else { return Ok(None) };
        let ours = item.record.as_ref().and_then(|r| r.get("text"));
        if ours.is_some() && found.value.get("text") != ours {
            return Err(Error::rejected(
                Some("rkey_taken".into()),
                format!("another post holds the record key {rkey} chosen for this one; it was not published"),
            ));
        }
        let cid = found
            .cid
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::transient("Bluesky gave the record without its cid"))?;
        let uri =
            if found.uri.starts_with("at://") { found.uri } else { format!("at://{repo}/{POST_COLLECTION}/{rkey}") };
        Ok(Some((uri, cid)))
    }

    /// Creates item `i`'s record at its key. A create that may have landed is looked up at
    /// once: found, it is adopted; a repeat at the same key can never make a second post.
    async fn create(
        &self,
        ctx: &mut PublishContext<'_>,
        state: &mut State,
        i: usize,
        pds: &Url,
        repo: &str,
    ) -> Result<()> {
        let item = state.items[i].clone();
        let (Some(rkey), Some(record)) = (&item.rkey, &item.record) else {
            return Err(Error::Config("a Bluesky record was sent before it was prepared".into()));
        };
        state.create_sent.mark();
        ctx.before_create(&*state).await?;
        let (uri, cid) = match self.client.create_record(ctx, pds, repo, rkey.as_str(), record).await {
            Ok(out) => (out.uri, out.cid),
            Err(e) if may_exist(&e) => match self.lookup(pds, repo, &item).await {
                Ok(Some(found)) => {
                    tracing::info!(target: "konektly::bluesky", rkey = %rkey, "the record is there already: adopted");
                    found
                }
                Ok(None) | Err(_) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        state.items[i].uri = Some(uri);
        state.items[i].cid = Some(cid);
        state.create_sent.clear();
        ctx.save_state(&*state).await
    }

    fn remote(&self, state: &State) -> Result<RemotePost> {
        let uris: Vec<String> = state.items.iter().filter_map(|i| i.uri.clone()).collect();
        let first = uris.first().ok_or_else(|| Error::transient("nothing was published yet"))?;
        let url = parse_at_uri(first).and_then(|(did, _, rkey)| self.post_url(&did, &rkey));
        let mut remote = RemotePost::new(Self::id_(), first.clone(), url);
        remote.thread_ids = uris[1..].to_vec();
        Ok(remote)
    }

    /// Chooses every record key of the target before anything is sent (ascending, distinct).
    fn plan(content: &Content, repo: &str) -> State {
        let first = Tid::now();
        let clock = rand::random::<u16>();
        let items = (0..=content.thread.len())
            .map(|k| Item { rkey: Some(Tid::from_parts(first.micros() + k as u64, clock)), ..Item::default() })
            .collect();
        State { repo: Some(repo.to_owned()), items, ..State::default() }
    }
}

#[async_trait]
impl Platform for BlueskyPlatform {
    fn id(&self) -> PlatformId {
        Self::id_()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn validate(&self, content: &Content, options: &TargetOptions) -> Vec<Violation> {
        validate(&self.caps, content, options)
    }

    /// Bluesky sessions start from an app password: the user is sent to the configured sign-in
    /// page (see [`BlueskyBuilder::with_sign_in_page`](crate::BlueskyBuilder::with_sign_in_page)),
    /// which comes back with an [`app_password_code`]. atproto OAuth is not implemented.
    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        let Some(page) = &self.cfg().sign_in_page else {
            return Err(Error::NotSupported(
                "Bluesky accounts connect with an app password: configure a sign-in page \
                 (KONEKTLY_BLUESKY_SIGN_IN_PAGE), or complete the connection with \
                 konektly_bluesky::app_password_code (atproto OAuth is not implemented yet)"
                    .into(),
            ));
        };
        let state = random_state();
        let mut url = page.clone();
        url.query_pairs_mut().append_pair("redirect_uri", redirect_uri.as_str()).append_pair("state", &state);
        Ok(AuthorizationRequest { url, state, pkce_verifier: None })
    }

    async fn exchange_code(&self, code: &str, _pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        let (identifier, password) = parse_code(code).ok_or_else(|| {
            Error::Authorization("the code is not a Bluesky app-password code (see app_password_code)".into())
        })?;
        Ok(vec![self.sign_in(&identifier, &password).await?])
    }

    /// `refreshSession` at the account's PDS: both JWTs rotate (the old refresh JWT is revoked).
    async fn refresh(&self, account: &Account) -> Result<TokenSet> {
        let pds = Self::pds_of(account)?;
        let refresh = account
            .tokens
            .refresh_token
            .as_ref()
            .ok_or_else(|| Error::reauth("the Bluesky session has no refresh token; reconnect the account"))?;
        let (tokens, body) = self.client.refresh_session(&pds, refresh).await?;
        if body.did.as_deref().is_some_and(|d| d != account.remote_id) {
            return Err(Error::reauth("the refreshed Bluesky session belongs to another account; reconnect it"));
        }
        Ok(tokens)
    }

    /// `deleteSession`: ends konektly's session (the app password itself stays until the user
    /// revokes it in Bluesky's settings).
    async fn revoke(&self, account: &Account) -> Result<()> {
        let Some(refresh) = &account.tokens.refresh_token else { return Ok(()) };
        self.client.delete_session(&Self::pds_of(account)?, refresh).await
    }

    async fn profile(&self, account: &Account) -> Result<Profile> {
        let pds = Self::pds_of(account)?;
        let p = self.client.get_profile(&pds, &account.tokens.access_token, &account.remote_id).await?;
        Ok(Profile {
            remote_id: if p.did.is_empty() { account.remote_id.clone() } else { p.did },
            handle: p.handle,
            display_name: p.display_name,
            avatar_url: p.avatar.as_deref().and_then(|u| Url::parse(u).ok()),
        })
    }

    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let violations = validate(&self.caps, ctx.content, ctx.options);
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let opts: BlueskyOptions = ctx.typed_options()?;
        let pds = Self::pds_of(ctx.account)?;
        let mut state: State = ctx.state()?;
        if state.items.is_empty() {
            state = Self::plan(ctx.content, &ctx.account.remote_id);
            ctx.save_state(&state).await?;
        }
        let repo = state.repo.clone().unwrap_or_else(|| ctx.account.remote_id.clone());
        for i in 0..state.items.len() {
            if state.items[i].done() {
                continue;
            }
            if state.items[i].record.is_none() {
                self.freeze(ctx, &mut state, i, &opts, &pds).await?;
            }
            self.create(ctx, &mut state, i, &pds, &repo).await?;
        }
        Ok(PublishOutcome::Published(self.remote(&state)?))
    }

    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let state: State = ctx.state()?;
        if state.all_done() {
            return Ok(PublishOutcome::Published(self.remote(&state)?));
        }
        Err(Error::transient("Bluesky posts need no polling: nothing was published yet"))
    }

    /// Deletes the post and its thread's replies (`deleteRecord`, last first).
    async fn delete(&self, account: &Account, post: &RemotePost) -> Result<()> {
        let pds = Self::pds_of(account)?;
        for uri in post.thread_ids.iter().rev().chain(std::iter::once(&post.id)) {
            let (repo, collection, rkey) = parse_at_uri(uri)
                .ok_or_else(|| Error::rejected(Some("invalid_id".into()), format!("`{uri}` is not an at:// URI")))?;
            if collection != POST_COLLECTION {
                return Err(Error::rejected(Some("invalid_id".into()), format!("`{uri}` is not a post")));
            }
            self.client.delete_record(&pds, &account.tokens.access_token, &repo, &rkey).await?;
        }
        Ok(())
    }

    /// Looks every record up by the key chosen for it (`getRecord`): found, it is adopted;
    /// missing, publishing again is safe (it repeats the key).
    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        let mut state: State = ctx.state()?;
        if state.items.is_empty() {
            return Ok(Reconciliation::NotFound);
        }
        let pds = Self::pds_of(ctx.account)?;
        let repo = state.repo.clone().unwrap_or_else(|| ctx.account.remote_id.clone());
        let mut changed = false;
        let mut missing = false;
        for i in 0..state.items.len() {
            if state.items[i].done() {
                continue;
            }
            match self.lookup(&pds, &repo, &state.items[i]).await? {
                Some((uri, cid)) => {
                    state.items[i].uri = Some(uri);
                    state.items[i].cid = Some(cid);
                    changed = true;
                }
                None => {
                    missing = true;
                    break;
                }
            }
        }
        if changed {
            if !missing {
                state.create_sent.clear();
            }
            ctx.save_state(&state).await?;
        }
        if missing {
            return Ok(Reconciliation::NotFound);
        }
        Ok(Reconciliation::Published(self.remote(&state)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        let c = app_password_code("alice.bsky.social", "abcd-efgh-ijkl-mnop");
        assert_eq!(parse_code(&c), Some(("alice.bsky.social".into(), "abcd-efgh-ijkl-mnop".into())));
        assert!(!c.contains("abcd"), "not in clear");
        assert_eq!(parse_code("nope"), None);
        assert_eq!(parse_code("."), None);
    }

    #[test]
    fn open_graph_tags_are_read() {
        let html = r#"<html><head><title>T</title><meta property="og:title" content="Rust &amp; you">
            <meta name="description" content='plain'></head></html>"#;
        assert_eq!(meta_content(html, "og:title").as_deref(), Some("Rust & you"));
        assert_eq!(meta_content(html, "description").as_deref(), Some("plain"));
        assert_eq!(title_of(html).as_deref(), Some("T"));
        assert_eq!(meta_content(html, "og:image"), None);
    }
}
