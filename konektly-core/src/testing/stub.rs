//! A platform that needs no network: it records calls and does what it is told.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};
use crate::http::{ApiResponse, CallKind, HttpClient};
use crate::id::{PlatformId, TargetId};
use crate::media::MediaKind;
use crate::model::{
    Account, AccountGrant, Content, Profile, PublishOutcome, Reconciliation, RemotePost, TargetOptions, TokenSet,
    Violation,
};
use crate::oauth::{OAuthErrorBody, pkce_pair, random_state};
use crate::platform::{
    AuthorizationRequest, Capabilities, MediaLimits, PendingAuthorization, Platform, PublishContext, ReconcileSupport,
    TextCounting, validate_against_capabilities,
};
use crate::ratelimit::DeclaredBudget;
use crate::secret::{AccessToken, RefreshToken};
use crate::violation_code::ViolationCode;

/// What the stub does on its next `publish`.
#[derive(Clone, Debug, PartialEq)]
pub enum StubBehavior {
    /// Publishes.
    Succeed,
    /// Refuses the content (`Rejected`).
    Reject(String),
    /// Answers `RateLimited` for this long.
    RateLimit(Duration),
    /// Fails with `Transient` before anything lands.
    Transient,
    /// Publishes, then loses the answer (`UnknownOutcome`): reconcile finds the post.
    TimeoutAfterAccept,
    /// Accepts, then needs this many polls before it is published.
    ProcessSlowly(u32),
    /// Refuses the access token (`AccessTokenRejected`).
    RejectToken,
    /// Posts this many items of a thread, then fails with `Transient`.
    FailThreadAfter(usize),
    /// The create call takes this long before the post lands (a slow platform, or a worker
    /// stalled mid-call): dropping the call before then lands nothing.
    SlowCreate(Duration),
    /// The post lands, then the platform answers with a transient error (a 503 after
    /// committing): only a reconcile can tell that it landed.
    TransientAfterCreate,
    /// Nothing lands and the answer is lost (`UnknownOutcome`): reconcile finds nothing.
    LoseAnswer,
    /// The grant is dead (`ReauthRequired`, as Meta's error 190).
    DeadGrant,
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq)]
pub struct StubCall {
    /// `publish`, `poll`, `reconcile`, `refresh`, `exchange_code`, `revoke`…
    pub method: &'static str,
    /// The target, for publishing calls.
    pub target: Option<TargetId>,
}

/// One post that landed at the stub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubPost {
    /// The platform's id of it.
    pub id: String,
    /// The target that sent it.
    pub target: TargetId,
    /// Its text.
    pub text: String,
    /// How many media items it had.
    pub media: usize,
}

#[derive(Default, Serialize, Deserialize)]
struct StubState {
    #[serde(default)]
    posted: Vec<String>,
    #[serde(default)]
    processing: Option<String>,
}

impl crate::CheckpointState for StubState {
    const VERSION: u32 = 1;
}

/// A platform for tests and examples: no network (except an optional real token endpoint for
/// refresh), every call recorded, behaviour scripted.
#[derive(Debug)]
pub struct StubPlatform {
    id: PlatformId,
    caps: Capabilities,
    script: Mutex<VecDeque<StubBehavior>>,
    default: Mutex<StubBehavior>,
    calls: Mutex<Vec<StubCall>>,
    posts: Mutex<Vec<StubPost>>,
    pending_polls: Mutex<HashMap<String, u32>>,
    token_endpoint: Option<Url>,
    token_lifetime: chrono::Duration,
    http: Option<HttpClient>,
    counter: AtomicU64,
    failing_lookups: std::sync::atomic::AtomicBool,
    comments: Mutex<Vec<StubComment>>,
    comment_script: Mutex<VecDeque<StubBehavior>>,
    edits: Mutex<Vec<(String, crate::platform::EditRequest)>>,
}

/// One comment that landed at the stub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubComment {
    /// The platform's id of it.
    pub id: String,
    /// The post it is under.
    pub post: String,
    /// Its text.
    pub text: String,
}

impl StubPlatform {
    /// A stub named `id` that publishes everything, with generous limits (500 characters, 4
    /// images, 1 video), threads, and rotating refresh tokens.
    pub fn new(id: &str) -> Self {
        let caps = Capabilities {
            text_counting: TextCounting::Chars,
            max_text_len: 500,
            media: vec![
                MediaLimits {
                    kind: MediaKind::Image,
                    mime_types: vec!["image/jpeg".into(), "image/png".into()],
                    max_count: 4,
                    max_bytes: 5 << 20,
                    min_duration: None,
                    max_duration: None,
                    ..MediaLimits::default()
                },
                MediaLimits {
                    kind: MediaKind::Video,
                    mime_types: vec!["video/mp4".into()],
                    max_count: 1,
                    max_bytes: 512 << 20,
                    min_duration: None,
                    max_duration: Some(Duration::from_secs(140)),
                    ..MediaLimits::default()
                },
            ],
            max_media_per_post: 4,
            mixed_media: false,
            media_required: false,
            threads: true,
            polls: false,
            links: true,
            native_scheduling: false,
            asynchronous_processing: true,
            rotating_refresh_tokens: true,
            reconcile: ReconcileSupport::Search,
            needs_media_host: false,
            budgets: Vec::new(),
            comments: Some(crate::platform::CommentSupport { max_len: 500, max_comments: 5, note: None }),
            delete: true,
            edit: crate::platform::EditSupport { text: true, ..Default::default() },
        };
        Self {
            id: PlatformId::new(id),
            caps,
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(StubBehavior::Succeed),
            calls: Mutex::new(Vec::new()),
            posts: Mutex::new(Vec::new()),
            pending_polls: Mutex::new(HashMap::new()),
            token_endpoint: None,
            token_lifetime: chrono::Duration::hours(2),
            http: None,
            counter: AtomicU64::new(0),
            failing_lookups: std::sync::atomic::AtomicBool::new(false),
            comments: Mutex::new(Vec::new()),
            comment_script: Mutex::new(VecDeque::new()),
            edits: Mutex::new(Vec::new()),
        }
    }

    /// Refreshes through a real token endpoint (a `wiremock` server, say): `POST` form
    /// `grant_type=refresh_token&refresh_token=…`, answer `{access_token, refresh_token?,
    /// expires_in}`; `400 {"error":"invalid_grant"}` is a dead grant.
    pub fn with_token_endpoint(mut self, url: Url) -> Self {
        self.token_endpoint = Some(url);
        self.http = Some(HttpClient::new().expect("an HTTP client"));
        self
    }

    /// Access tokens from `exchange_code` live this long.
    pub fn with_token_lifetime(mut self, lifetime: chrono::Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Declares a budget (as TikTok declares its per-minute limits).
    pub fn with_budget(mut self, budget: DeclaredBudget) -> Self {
        self.caps.budgets.push(budget);
        self
    }

    /// Replaces the capabilities.
    pub fn with_capabilities(mut self, caps: Capabilities) -> Self {
        self.caps = caps;
        self
    }

    /// Queues behaviours for the next `publish` calls, in order; then the default applies.
    pub fn script(&self, behaviors: impl IntoIterator<Item = StubBehavior>) {
        self.script.lock().unwrap().extend(behaviors);
    }

    /// Makes every `reconcile` fail with `Transient` (a lookup endpoint answering 503), or
    /// work again.
    pub fn fail_lookups(&self, fail: bool) {
        self.failing_lookups.store(fail, Ordering::Relaxed);
    }

    /// Sets the behaviour once the script is used up.
    pub fn set_default(&self, behavior: StubBehavior) {
        *self.default.lock().unwrap() = behavior;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<StubCall> {
        self.calls.lock().unwrap().clone()
    }

    /// How many calls of `method` were made.
    pub fn count(&self, method: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| c.method == method).count()
    }

    /// Every post that landed, in order.
    pub fn posts(&self) -> Vec<StubPost> {
        self.posts.lock().unwrap().clone()
    }

    /// Every comment that landed, in order.
    pub fn comments(&self) -> Vec<StubComment> {
        self.comments.lock().unwrap().clone()
    }

    /// What the next comments do, in order (`Succeed`, `Reject`, `Transient`, `RateLimit`,
    /// `TimeoutAfterAccept`: it lands and the answer is lost, `LoseAnswer`); then they succeed.
    pub fn script_comments(&self, behaviors: impl IntoIterator<Item = StubBehavior>) {
        self.comment_script.lock().unwrap().extend(behaviors);
    }

    /// Lands a comment as if it had been sent (a crash after the create, before its answer).
    pub fn land_comment(&self, post: &str, text: &str) -> String {
        let id = self.next_id();
        self.comments.lock().unwrap().push(StubComment { id: id.clone(), post: post.into(), text: text.into() });
        id
    }

    /// Every edit received: the post's id and the request.
    pub fn edits(&self) -> Vec<(String, crate::platform::EditRequest)> {
        self.edits.lock().unwrap().clone()
    }

    /// The posts a target landed.
    pub fn posts_of(&self, target: TargetId) -> Vec<StubPost> {
        self.posts.lock().unwrap().iter().filter(|p| p.target == target).cloned().collect()
    }

    fn record(&self, method: &'static str, target: Option<TargetId>) {
        self.calls.lock().unwrap().push(StubCall { method, target });
    }

    fn next_id(&self) -> String {
        format!("{}", 1_000_000 + self.counter.fetch_add(1, Ordering::Relaxed))
    }

    fn land(&self, target: TargetId, text: &str, media: usize) -> String {
        let id = self.next_id();
        self.posts.lock().unwrap().push(StubPost { id: id.clone(), target, text: text.to_owned(), media });
        id
    }

    fn remote(&self, ids: &[String]) -> RemotePost {
        let mut r = RemotePost::new(
            self.id.clone(),
            ids[0].clone(),
            Url::parse(&format!("https://stub.example/{}/{}", self.id, ids[0])).ok(),
        );
        r.thread_ids = ids[1..].to_vec();
        r
    }

    fn next_behavior(&self) -> StubBehavior {
        self.script.lock().unwrap().pop_front().unwrap_or_else(|| self.default.lock().unwrap().clone())
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

#[async_trait]
impl Platform for StubPlatform {
    fn id(&self) -> PlatformId {
        self.id.clone()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn validate(&self, content: &Content, _options: &TargetOptions) -> Vec<Violation> {
        let mut v = validate_against_capabilities(&self.caps, content, |t| t.chars().count());
        if content.text.trim().is_empty() && content.media.is_empty() {
            v.push(Violation::new(ViolationCode::EmptyPost, "text", "a post needs text or media"));
        }
        v
    }

    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        let state = random_state();
        let (verifier, challenge) = pkce_pair();
        let mut url = Url::parse("https://stub.example/authorize").expect("a valid URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "stub-client")
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(AuthorizationRequest { url, state, pkce_verifier: Some(verifier) })
    }

    async fn exchange_code(&self, code: &str, _pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        self.record("exchange_code", None);
        if code.is_empty() {
            return Err(Error::Authorization("no code".into()));
        }
        // As some platforms answer a replayed code (`invalid_grant`), and as a lost answer.
        if code == "replayed" {
            return Err(Error::reauth("invalid_grant: the code was already used"));
        }
        if code == "lost" {
            return Err(Error::UnknownOutcome { message: "the answer was lost".into(), source: None });
        }
        let n = self.next_id();
        let mut tokens = TokenSet::new(AccessToken::new(format!("stub-access-{n}")));
        tokens.refresh_token = Some(RefreshToken::new(format!("stub-refresh-{n}")));
        tokens.expires_at = Some(Utc::now() + self.token_lifetime);
        tokens.scopes = vec!["post".into()];
        let profile = Profile {
            remote_id: format!("stub-user-{code}"),
            handle: Some(format!("@{code}")),
            display_name: Some(format!("Stub user {code}")),
            avatar_url: None,
        };
        Ok(vec![AccountGrant::new(self.id.clone(), profile, tokens)])
    }

    async fn refresh(&self, account: &Account) -> Result<TokenSet> {
        self.record("refresh", None);
        let rt = account.tokens.refresh_token.as_ref().ok_or_else(|| Error::reauth("no refresh token"))?;
        let (Some(url), Some(http)) = (&self.token_endpoint, &self.http) else {
            let n = self.next_id();
            let mut t = TokenSet::new(AccessToken::new(format!("stub-access-{n}")));
            t.refresh_token = Some(RefreshToken::new(format!("stub-refresh-{n}")));
            t.expires_at = Some(Utc::now() + self.token_lifetime);
            return Ok(t);
        };
        let form = [("grant_type", "refresh_token"), ("refresh_token", rt.expose())];
        let resp = http.send(http.client().post(url.clone()).form(&form), CallKind::Create).await?;
        let api = ApiResponse::read(resp, CallKind::Create).await?;
        if !api.is_success() {
            if let Ok(body) = serde_json::from_slice::<OAuthErrorBody>(&api.body)
                && body.error == "invalid_grant"
            {
                return Err(Error::reauth(format!("invalid_grant: {}", body.error_description.unwrap_or_default())));
            }
            return Err(api.status_error(CallKind::Create, "refresh failed", None));
        }
        let body: TokenBody = api.json()?;
        let mut t = TokenSet::new(AccessToken::new(body.access_token));
        t.refresh_token = body.refresh_token.map(RefreshToken::new);
        t.expires_at = body.expires_in.map(|s| Utc::now() + chrono::Duration::seconds(s));
        Ok(t)
    }

    async fn revoke(&self, _account: &Account) -> Result<()> {
        self.record("revoke", None);
        Ok(())
    }

    async fn profile(&self, account: &Account) -> Result<Profile> {
        self.record("profile", None);
        Ok(Profile {
            remote_id: account.remote_id.clone(),
            handle: account.handle.clone(),
            display_name: account.display_name.clone(),
            avatar_url: None,
        })
    }

    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        self.record("publish", Some(ctx.target));
        let behavior = self.next_behavior();
        let mut state: StubState = ctx.state()?;
        match behavior {
            StubBehavior::Reject(m) => return Err(Error::rejected(Some("stub".into()), m)),
            StubBehavior::RateLimit(d) => {
                return Err(Error::RateLimited {
                    retry_at: Some(Utc::now() + chrono::Duration::from_std(d).unwrap_or_default()),
                    message: "stub rate limit".into(),
                    source: None,
                });
            }
            StubBehavior::Transient => return Err(Error::transient("stub transient failure")),
            StubBehavior::RejectToken => {
                return Err(Error::AccessTokenRejected { message: "stub refused the token".into(), source: None });
            }
            StubBehavior::DeadGrant => return Err(Error::reauth("stub: the session has been invalidated")),
            StubBehavior::LoseAnswer => {
                ctx.before_create(&state).await?;
                return Err(Error::UnknownOutcome { message: "stub lost the answer".into(), source: None });
            }
            _ => {}
        }
        // Items: the first post, then the thread, skipping what the checkpoint says was posted.
        let mut items: Vec<(&str, usize)> = vec![(ctx.content.text.as_str(), ctx.content.media.len())];
        items.extend(ctx.content.thread.iter().map(|t| (t.text.as_str(), t.media.len())));
        let fail_after = match behavior {
            StubBehavior::FailThreadAfter(n) => Some(n),
            _ => None,
        };
        for (posted_now, (text, media)) in items.iter().skip(state.posted.len()).enumerate() {
            if fail_after.is_some_and(|n| posted_now >= n) {
                return Err(Error::transient("stub failed in the middle of a thread"));
            }
            ctx.before_create(&state).await?;
            if let StubBehavior::SlowCreate(d) = behavior {
                tokio::time::sleep(d).await;
            }
            let id = self.land(ctx.target, text, *media);
            if behavior == StubBehavior::TransientAfterCreate {
                return Err(Error::transient("stub: 503 after the post landed"));
            }
            if *media > 0 {
                // The stub "uploads" an item's media at once: one progress report per item.
                let bytes: u64 = ctx.content.media.iter().filter_map(|m| m.size).sum();
                ctx.report_progress(bytes, bytes);
            }
            state.posted.push(id);
            ctx.save_state(&state).await?;
        }
        match behavior {
            StubBehavior::TimeoutAfterAccept => Err(Error::UnknownOutcome {
                message: "stub accepted the post but the answer was lost".into(),
                source: None,
            }),
            StubBehavior::ProcessSlowly(n) => {
                let id = state.posted[0].clone();
                self.pending_polls.lock().unwrap().insert(id.clone(), n);
                state.processing = Some(id);
                ctx.save_state(&state).await?;
                Ok(PublishOutcome::Processing { poll_after: Duration::ZERO, detail: Some("processing".into()) })
            }
            _ => Ok(PublishOutcome::Published(self.remote(&state.posted))),
        }
    }

    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        self.record("poll", Some(ctx.target));
        let state: StubState = ctx.state()?;
        let id = state.processing.clone().ok_or_else(|| Error::transient("nothing is processing"))?;
        let mut pending = self.pending_polls.lock().unwrap();
        let left = pending.entry(id).or_insert(0);
        if *left > 1 {
            *left -= 1;
            Ok(PublishOutcome::Processing { poll_after: Duration::ZERO, detail: Some(format!("{left} polls to go")) })
        } else {
            Ok(PublishOutcome::Published(self.remote(&state.posted)))
        }
    }

    async fn delete(&self, _account: &Account, post: &RemotePost) -> Result<()> {
        self.record("delete", None);
        self.posts.lock().unwrap().retain(|p| p.id != post.id);
        Ok(())
    }

    async fn publish_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        _index: usize,
        text: &str,
    ) -> Result<String> {
        self.record("publish_comment", Some(ctx.target));
        let behavior = self.comment_script.lock().unwrap().pop_front().unwrap_or(StubBehavior::Succeed);
        match behavior {
            StubBehavior::Reject(why) => Err(Error::rejected(Some("stub_rejected".into()), why)),
            StubBehavior::Transient => Err(Error::transient("the stub is busy")),
            StubBehavior::RateLimit(d) => Err(Error::RateLimited {
                retry_at: Some(Utc::now() + chrono::Duration::from_std(d).unwrap()),
                message: "slow down".into(),
                source: None,
            }),
            StubBehavior::TimeoutAfterAccept => {
                self.land_comment(&post.id, text);
                Err(Error::UnknownOutcome { message: "the answer was lost".into(), source: None })
            }
            StubBehavior::LoseAnswer => {
                Err(Error::UnknownOutcome { message: "the answer was lost".into(), source: None })
            }
            _ => Ok(self.land_comment(&post.id, text)),
        }
    }

    async fn find_comment(
        &self,
        ctx: &mut PublishContext<'_>,
        post: &RemotePost,
        text: &str,
        _sent_from: chrono::DateTime<Utc>,
    ) -> Result<Option<String>> {
        self.record("find_comment", Some(ctx.target));
        Ok(self.comments.lock().unwrap().iter().find(|c| c.post == post.id && c.text == text).map(|c| c.id.clone()))
    }

    async fn edit(&self, _account: &Account, post: &RemotePost, edit: &crate::platform::EditRequest) -> Result<()> {
        self.record("edit", None);
        self.edits.lock().unwrap().push((post.id.clone(), edit.clone()));
        Ok(())
    }

    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        self.record("reconcile", Some(ctx.target));
        if self.failing_lookups.load(Ordering::Relaxed) {
            return Err(Error::transient("stub: the lookup answered 503"));
        }
        let mut state: StubState = ctx.state()?;
        let landed: Vec<String> = self.posts_of(ctx.target).into_iter().map(|p| p.id).collect();
        let wanted = 1 + ctx.content.thread.len();
        if landed.is_empty() {
            return Ok(Reconciliation::NotFound);
        }
        if landed.len() < wanted {
            // Part of a thread landed: remember it, and let publishing continue from there.
            state.posted = landed;
            ctx.save_state(&state).await?;
            return Ok(Reconciliation::NotFound);
        }
        Ok(Reconciliation::Published(self.remote(&landed)))
    }
}
