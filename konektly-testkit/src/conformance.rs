//! One behavioural contract for every adapter, checked against its emulator here.
//!
//! As object_store runs one set of integration tests against every backend, every konektly
//! adapter crate runs these scenarios in its own tests, through the real engine (in-memory
//! stores) and this crate's sandbox:
//!
//! ```ignore
//! fn subject() -> konektly_testkit::conformance::Subject { /* the adapter, its create kinds */ }
//! konektly_testkit::conformance_suite!(subject());
//! ```
//!
//! Each scenario is a named test; a scenario about creates runs once for every
//! [`CreateKind`] the subject declares (post, container, publish, upload init, thread item),
//! each on a fresh sandbox. [`readme_table`] renders the scenario → result table an adapter's
//! README shows; the adapter's tests check that the README holds the current one.
//!
//! What the scenarios hold an adapter to:
//!
//! | scenario | contract |
//! |---|---|
//! | `publishes_each_kind_exactly_once` | one post at the platform, its id and URL recorded |
//! | `lost_answer_after_commit_on_busy_account` | the platform committed, the answer was lost, 200 other posts around ours: reconcile adopts exactly ours, no second create |
//! | `lost_request_is_sent_once_more` | the request never arrived: reconcile says absent, one more create, one post |
//! | `same_text_in_window_is_never_adopted` | ours landed with its answer lost and another post with our text is in the lookup window: that post is never adopted (ours is, or the outcome stays unknown), no second create |
//! | `duplicate_refusal_after_own_lost_create` | a repeat refused as duplicate after our own lost create: published with the first copy's id |
//! | `duplicate_refusal_without_own_create` | the account posted this text already: a `duplicate` refusal, nothing adopted |
//! | `server_error_after_commit_reconciles_first` | a 5xx after the platform committed: reconciled before any new create |
//! | `rate_limit_wait_is_honoured` | a 429: nothing sent before the time it gives |
//! | `revoked_grant_marks_reauth` | the user revoked the app: account `reauth_required`, event raised, target blocked, nothing posted |
//! | `short_lived_tokens_refresh_and_rotate` | tokens that expire at once: refreshed before each attempt, a rotating refresh token used once |
//! | `cancel_before_publish_posts_nothing` | a cancelled scheduled post never reaches the platform |
//! | `delete_removes_the_post` | `Platform::delete` removes the post at the platform — or, where the API cannot delete, is `NotSupported` and leaves it |
//! | `restart_mid_upload_resumes` | the worker dies while a part is on its way: another resumes after the lease, no part the platform acknowledged is sent again, one post with the exact bytes |
//!
//! What no lookup can tell, and the suite does not ask: a post by the same account, with the
//! same text, created in the very seconds of a create whose request was lost before it
//! arrived, is indistinguishable from ours by anything X or Facebook return. Reconcile adopts
//! it (a unique match in the window); X and Facebook would refuse a second copy as a
//! duplicate anyway. With two such posts it adopts neither and the outcome stays unknown.
//!
//! Kinds whose lost answer leaves nothing to look up ([`CreateKind::unknowable`]) end as
//! `outcome_unknown` at once: never looked up in vain, never sent again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use konektly_core::{
    Account, AccountStatus, Content, EngineConfig, Event, Konektly, MemoryScheduler, MemoryTokenStore, OwnerId,
    Platform, Post, PostId, Target, TargetOptions, TargetRecord, TargetState,
};
use url::Url;

use crate::{PostedRecord, Sandbox, SandboxConfig};

/// One way an adapter creates something at its platform.
#[derive(Clone)]
pub struct CreateKind {
    /// A short name for reports: `text`, `image/container`, `video/upload`…
    pub name: &'static str,
    /// The sandbox request kind whose success commits something at the platform (see
    /// [`Faults::lose_answer`](crate::Faults::lose_answer)): `tweet`, `feed`, `media_publish`…
    pub request: &'static str,
    /// A valid post of this kind carrying `text` (unique per run), with its options.
    pub post: fn(&str) -> (Content, TargetOptions),
    /// Whether the platform refuses a repeat of this kind's text as a duplicate (X tweets,
    /// Facebook status posts).
    pub duplicate_refusal: bool,
    /// Whether `request`'s success is the post itself (a second one would be a second post),
    /// rather than a step before it (an upload session, a container).
    pub publishes: bool,
    /// Whether a lost answer to `request` leaves nothing to look the post up by (TikTok's
    /// pull-from-URL init: no publish id yet, no listing). The adapter then declares the
    /// outcome unknowable ([`Reconciliation::Unknowable`](konektly_core::Reconciliation)): the
    /// target ends as `outcome_unknown`, at most one post exists, none is sent again.
    pub unknowable: bool,
}

impl std::fmt::Debug for CreateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateKind").field("name", &self.name).field("request", &self.request).finish()
    }
}

/// A create kind that uploads its media in parts, for the restart scenario.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The [`CreateKind::name`] it belongs to (its table cell).
    pub kind: &'static str,
    /// The sandbox request kind of one part (`media_append`, `upload_chunk`, `upload`,
    /// `video_transfer`).
    pub part: &'static str,
    /// A post whose media takes at least two parts with the adapter's chunk size.
    pub post: fn(&str) -> (Content, TargetOptions),
    /// How many part requests that media takes in a run without faults.
    pub parts: u64,
}

/// An adapter under test.
pub struct Subject {
    /// The platform id its targets use (`x`, `facebook`, `instagram`, `tiktok`, `youtube`).
    pub platform: &'static str,
    /// The platform whose login connects it (`facebook` for Instagram through Facebook Login).
    /// Its sandbox host serves the account's API calls, so the fault knobs and request counts
    /// of the scenarios are that host's.
    pub connect_via: &'static str,
    /// Builds the adapter's platforms against a sandbox.
    pub platforms: fn(&Sandbox) -> Vec<Arc<dyn Platform>>,
    /// Every kind of create it sends.
    pub kinds: Vec<CreateKind>,
    /// Whether its reconcile searches the account's posts (X timeline, Page feed) rather than
    /// reading ids from the checkpoint: the busy-account and same-text scenarios then matter.
    pub searches_posts: bool,
    /// Its create kinds that upload in parts.
    pub uploads: Vec<Upload>,
    /// Whether its API deletes published posts (TikTok's and Instagram's do not: `delete` is
    /// then `NotSupported` and the post stays).
    pub deletes: bool,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject").field("platform", &self.platform).field("kinds", &self.kinds).finish()
    }
}

/// The scenarios, in order, with what each holds the adapter to.
pub const SCENARIOS: [(&str, &str); 13] = [
    ("publishes_each_kind_exactly_once", "one post, its id and URL recorded"),
    ("lost_answer_after_commit_on_busy_account", "committed, answer lost, 200 other posts around: adopts exactly ours"),
    ("lost_request_is_sent_once_more", "request lost before the platform acted: one more create, one post"),
    (
        "same_text_in_window_is_never_adopted",
        "another post with our text in the window: never adopted, no second create",
    ),
    ("duplicate_refusal_after_own_lost_create", "duplicate refusal after our own lost create: the first copy's id"),
    ("duplicate_refusal_without_own_create", "text already posted by the account: a `duplicate` refusal"),
    ("server_error_after_commit_reconciles_first", "5xx after commit: reconciled, no second create"),
    ("rate_limit_wait_is_honoured", "429: nothing sent before the time it gives"),
    ("revoked_grant_marks_reauth", "revoked grant: account reauth_required, event, target blocked"),
    ("short_lived_tokens_refresh_and_rotate", "tokens expiring at once: refreshed, rotating refresh used once"),
    ("cancel_before_publish_posts_nothing", "cancelled scheduled post never reaches the platform"),
    ("restart_mid_upload_resumes", "worker killed mid-upload: resumed, no committed part re-sent, one post"),
    ("delete_removes_the_post", "delete removes the published post, or says NotSupported and leaves it"),
];

/// Whether `scenario` applies to `kind` of `subject`; `Err` says why not.
pub fn applies(subject: &Subject, scenario: &str, kind: &CreateKind) -> Result<(), &'static str> {
    match scenario {
        "same_text_in_window_is_never_adopted" if !subject.searches_posts => {
            Err("reconcile reads ids from the checkpoint, never by text")
        }
        "same_text_in_window_is_never_adopted" if !kind.publishes => Err("this request is not the post itself"),
        "restart_mid_upload_resumes" if !subject.uploads.iter().any(|u| u.kind == kind.name) => {
            Err("not an upload in parts")
        }
        "duplicate_refusal_after_own_lost_create" | "duplicate_refusal_without_own_create"
            if !kind.duplicate_refusal =>
        {
            Err("the platform does not refuse repeats")
        }
        _ => Ok(()),
    }
}

/// The conformance table of `subject` for its README: one row per scenario, one column per
/// create kind (`pass` — the suite runs in `cargo test` and fails on any broken rule — or why
/// the scenario does not apply). Per-account scenarios are run once, with the first kind.
pub fn readme_table(subject: &Subject) -> String {
    let mut out = String::from("| scenario |");
    for k in &subject.kinds {
        out.push_str(&format!(" {} |", k.name));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(subject.kinds.len()));
    out.push('\n');
    for (name, _) in SCENARIOS {
        out.push_str(&format!("| `{name}` |"));
        for (i, k) in subject.kinds.iter().enumerate() {
            let cell = match applies(subject, name, k) {
                Err(why) => format!("n/a: {why}"),
                Ok(()) if per_account(name) && i > 0 => "(per account)".into(),
                Ok(()) if name == "delete_removes_the_post" && !subject.deletes => {
                    "pass: the API cannot delete, `NotSupported`".into()
                }
                Ok(())
                    if k.unknowable
                        && matches!(
                            name,
                            "lost_answer_after_commit_on_busy_account"
                                | "lost_request_is_sent_once_more"
                                | "server_error_after_commit_reconciles_first"
                        ) =>
                {
                    "pass: unknowable, ends `outcome_unknown`, never re-sent".into()
                }
                Ok(()) => "pass".into(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

fn per_account(scenario: &str) -> bool {
    matches!(
        scenario,
        "rate_limit_wait_is_honoured"
            | "revoked_grant_marks_reauth"
            | "short_lived_tokens_refresh_and_rotate"
            | "cancel_before_publish_posts_nothing"
            | "delete_removes_the_post"
    )
}

/// Runs the suite's scenarios as named tests. `$subject` is an expression building a
/// [`Subject`].
#[macro_export]
macro_rules! conformance_suite {
    // With the README checks: its conformance table and its validation rules are current.
    ($subject:expr, readme: $readme:expr, platforms: $platforms:expr) => {
        $crate::conformance_suite!($subject);

        #[test]
        fn the_readme_shows_the_current_conformance_table() {
            let table = $crate::conformance::readme_table(&$subject);
            $crate::conformance::assert_readme_holds($readme, "conformance table", &table);
        }

        #[::tokio::test]
        async fn the_readme_shows_the_current_validation_rules() {
            let expected = $crate::conformance::rules_tables($platforms).await;
            $crate::conformance::assert_readme_holds($readme, "validation rules", &expected);
        }
    };
    ($subject:expr) => {
        $crate::conformance_suite!(@tests $subject;
            publishes_each_kind_exactly_once,
            lost_answer_after_commit_on_busy_account,
            lost_request_is_sent_once_more,
            same_text_in_window_is_never_adopted,
            duplicate_refusal_after_own_lost_create,
            duplicate_refusal_without_own_create,
            server_error_after_commit_reconciles_first,
            rate_limit_wait_is_honoured,
            revoked_grant_marks_reauth,
            short_lived_tokens_refresh_and_rotate,
            cancel_before_publish_posts_nothing,
            restart_mid_upload_resumes,
            delete_removes_the_post);
    };
    (@tests $subject:expr; $($name:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::run(&$subject, stringify!($name)).await;
            }
        )*
    };
}

/// Runs one scenario for every kind it applies to.
///
/// # Panics
/// When the adapter breaks the scenario's rule (the message names the scenario and kind), or
/// on an unknown scenario name.
pub async fn run(subject: &Subject, scenario: &str) {
    assert!(SCENARIOS.iter().any(|(n, _)| *n == scenario), "unknown scenario `{scenario}`");
    for (i, kind) in subject.kinds.iter().enumerate() {
        if applies(subject, scenario, kind).is_err() || (per_account(scenario) && i > 0) {
            continue;
        }
        let h = Harness::start(subject, scenario, kind).await;
        match scenario {
            "publishes_each_kind_exactly_once" => h.publishes_exactly_once().await,
            "lost_answer_after_commit_on_busy_account" => h.lost_answer_busy().await,
            "lost_request_is_sent_once_more" => h.lost_request().await,
            "same_text_in_window_is_never_adopted" => h.same_text_never_adopted().await,
            "duplicate_refusal_after_own_lost_create" => h.duplicate_after_own_create().await,
            "duplicate_refusal_without_own_create" => h.duplicate_without_own_create().await,
            "server_error_after_commit_reconciles_first" => h.server_error_after_commit().await,
            "rate_limit_wait_is_honoured" => h.rate_limit().await,
            "revoked_grant_marks_reauth" => h.revoked().await,
            "short_lived_tokens_refresh_and_rotate" => h.short_tokens().await,
            "cancel_before_publish_posts_nothing" => h.cancel().await,
            "restart_mid_upload_resumes" => h.restart_mid_upload().await,
            "delete_removes_the_post" => h.delete().await,
            _ => unreachable!(),
        }
    }
}

/// The engine settings the suite runs with: fast retries and reconciles, short leases.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        max_attempts: 12,
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        reconcile_delay: Duration::from_millis(300),
        idle_poll: Duration::from_millis(20),
        // Short leases, so that a killed worker's targets return within seconds.
        lease: Duration::from_secs(2),
        heartbeat: Duration::from_millis(400),
        ..EngineConfig::default()
    }
}

struct Harness<'a> {
    subject: &'a Subject,
    scenario: &'a str,
    kind: &'a CreateKind,
    sandbox: Sandbox,
    engine: Konektly,
    owner: OwnerId,
    account: Account,
}

impl<'a> Harness<'a> {
    async fn start(subject: &'a Subject, scenario: &'a str, kind: &'a CreateKind) -> Harness<'a> {
        let mut config = SandboxConfig {
            processing_delay: Duration::from_millis(100),
            rate_limit_retry: Duration::from_secs(1),
            ..SandboxConfig::default()
        };
        if scenario == "short_lived_tokens_refresh_and_rotate" {
            config.access_token_ttl = Some(Duration::from_secs(1));
        }
        let sandbox = Sandbox::start_with(config).await.expect("the sandbox starts");
        let mut b = Konektly::builder()
            .token_store(Arc::new(MemoryTokenStore::new()))
            .scheduler(Arc::new(MemoryScheduler::new()))
            .media_host(sandbox.media_host())
            .config(engine_config());
        for p in (subject.platforms)(&sandbox) {
            b = b.platform(p);
        }
        let engine = b.build().expect("the engine builds");
        let owner = OwnerId::new(format!("conformance-{}", uuid::Uuid::new_v4().simple()));
        let account = connect(&engine, &owner, subject.connect_via, subject.platform).await;
        Harness { subject, scenario, kind, sandbox, engine, owner, account }
    }

    /// The sandbox host serving the account's API calls.
    fn host(&self) -> &'static str {
        self.subject.connect_via
    }

    fn ctx(&self) -> String {
        format!("[{} / {} / {}]", self.subject.platform, self.scenario, self.kind.name)
    }

    fn text(&self) -> String {
        format!("konektly conformance {} {}", self.kind.name, &uuid::Uuid::new_v4().simple().to_string()[..10])
    }

    fn post(&self, text: &str) -> Post {
        self.post_of((self.kind.post)(text))
    }

    /// A post of this owner to the connected account.
    fn post_of(&self, (content, options): (Content, TargetOptions)) -> Post {
        let mut target = Target::new(self.account.id);
        target.options = options;
        Post::new(self.owner.clone(), content).to(target)
    }

    /// Posts of the account at the platform that konektly made (fillers excluded).
    fn ours(&self) -> Vec<PostedRecord> {
        self.sandbox
            .posts_of(self.subject.platform, &self.account.remote_id)
            .into_iter()
            .filter(|p| p.kind != "filler" && p.status != "deleted")
            .collect()
    }

    /// How many of this kind's create requests arrived (lost ones included).
    fn commits(&self) -> u64 {
        self.sandbox.requests_of(self.host(), self.kind.request)
    }

    /// How many of this kind's create requests the platform carried out.
    fn landed(&self) -> u64 {
        self.sandbox.successes_of(self.host(), self.kind.request)
    }

    /// Publishes `post` and runs workers until its target is final (or panics after a minute).
    async fn publish(&self, post: &Post) -> TargetRecord {
        self.engine.publish_now(post).await.unwrap_or_else(|e| panic!("{} publish_now: {e}", self.ctx()));
        self.until_final(post.id).await
    }

    async fn until_final(&self, post: PostId) -> TargetRecord {
        let worker = self.engine.worker();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let records = self.engine.status(post).await.expect("status");
            // Final, or waiting for the user (`Blocked` ends the worker's part).
            if records.iter().all(|r| r.state.is_final() || matches!(r.state, TargetState::Blocked { .. })) {
                return records.into_iter().next().expect("one target");
            }
            if tokio::time::Instant::now() >= deadline {
                let r = &records[0];
                panic!(
                    "{} not final after a minute: {:?} (lease {:?}, now {}), attempts {}, last error {:?}, checkpoint {}",
                    self.ctx(),
                    r.state,
                    r.lease,
                    Utc::now(),
                    r.attempts,
                    r.last_error,
                    r.checkpoint.as_json()
                );
            }
            worker.run_once().await.expect("run_once");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs workers until the platform has received this kind's create request.
    async fn until_committed(&self) {
        let worker = self.engine.worker();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.commits() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} no `{}` request after a minute",
                self.ctx(),
                self.kind.request
            );
            worker.run_once().await.expect("run_once");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn published(&self, r: &TargetRecord) -> konektly_core::RemotePost {
        match &r.state {
            TargetState::Published { remote } => remote.clone(),
            other => panic!("{} expected published, got {other:?}", self.ctx()),
        }
    }

    /// The one post konektly made, matching the recorded remote post.
    fn exactly_one(&self, r: &TargetRecord) -> PostedRecord {
        let remote = self.published(r);
        let ours = self.ours();
        assert_eq!(ours.len(), 1, "{} exactly one post at the platform, found {}: {ours:#?}", self.ctx(), ours.len());
        let post = ours.into_iter().next().expect("one");
        assert_eq!(remote.id, post.id, "{} the recorded id is the platform's", self.ctx());
        if let (Some(url), Some(theirs)) = (&remote.url, &post.url) {
            assert_eq!(url.as_str(), theirs, "{} the recorded URL is the platform's", self.ctx());
        }
        post
    }

    /// After a lost answer or request: exactly one post recorded — or, where the kind's lost
    /// answer is unknowable, an `outcome_unknown` end with `posts` posts and nothing re-sent.
    fn settled_after_loss(&self, r: &TargetRecord, posts: usize) {
        if !self.kind.unknowable {
            self.exactly_one(r);
            return;
        }
        match &r.state {
            TargetState::Failed { failure } => assert_eq!(
                failure.kind,
                konektly_core::ErrorKind::OutcomeUnknown,
                "{} an unknowable outcome ends as outcome_unknown: {failure:?}",
                self.ctx()
            ),
            other => panic!("{} expected an unknowable outcome, got {other:?}", self.ctx()),
        }
        assert_eq!(self.ours().len(), posts, "{} {posts} post(s) at the platform", self.ctx());
        assert!(self.landed() <= 1, "{} `{}` never sent again", self.ctx(), self.kind.request);
        assert_eq!(self.commits(), 1, "{} `{}` never sent again", self.ctx(), self.kind.request);
    }

    /// Fills the account with `n` posts of other texts, created from `from` on, 100 ms apart.
    fn fill_others(&self, n: usize, from: chrono::DateTime<Utc>) -> Vec<String> {
        let posts: Vec<(String, chrono::DateTime<Utc>)> = (0..n)
            .map(|i| {
                (
                    format!("someone else's post {i} {}", uuid::Uuid::new_v4().simple()),
                    from + chrono::Duration::milliseconds(i as i64 * 100),
                )
            })
            .collect();
        self.sandbox.fill(self.subject.platform, &self.account.remote_id, &posts)
    }

    async fn publishes_exactly_once(&self) {
        let text = self.text();
        let r = self.publish(&self.post(&text)).await;
        let post = self.exactly_one(&r);
        assert!(self.published(&r).url.is_some() || post.url.is_none(), "{} the URL is recorded", self.ctx());
    }

    async fn lost_answer_busy(&self) {
        let busy = self.subject.searches_posts;
        if busy {
            // 150 posts just before ours, inside any lookup window.
            self.fill_others(150, Utc::now() - chrono::Duration::seconds(20));
        }
        self.sandbox.update_faults(self.host(), |f| {
            f.lose_answer.insert(self.kind.request.into(), 1);
        });
        let text = self.text();
        let post = self.post(&text);
        self.engine.publish_now(&post).await.expect("publish_now");
        self.until_committed().await;
        if busy {
            // And more after ours, while the worker waits to reconcile.
            self.fill_others(60, Utc::now());
        }
        let r = self.until_final(post.id).await;
        self.settled_after_loss(&r, 1);
        assert_eq!(
            self.sandbox.faults(self.host()).lose_answer.get(self.kind.request),
            Some(&0),
            "{} the answer to `{}` was lost as staged",
            self.ctx(),
            self.kind.request
        );
        if self.kind.publishes {
            assert_eq!(self.landed(), 1, "{} reconcile found it: no second `{}`", self.ctx(), self.kind.request);
        }
    }

    async fn lost_request(&self) {
        self.sandbox.update_faults(self.host(), |f| {
            f.lose_request.insert(self.kind.request.into(), 1);
        });
        let r = self.publish(&self.post(&self.text())).await;
        self.settled_after_loss(&r, 0);
        if !self.kind.unknowable {
            assert!(self.commits() >= 2, "{} the lost `{}` was sent again", self.ctx(), self.kind.request);
        }
    }

    async fn same_text_never_adopted(&self) {
        let text = self.text();
        self.sandbox.update_faults(self.host(), |f| {
            f.lose_answer.insert(self.kind.request.into(), 1);
        });
        let post = self.post(&text);
        self.engine.publish_now(&post).await.expect("publish_now");
        self.until_committed().await;
        // Someone posts our very text on the account, inside the lookup window, while our
        // create's answer is lost: two candidates, and nothing tells which is ours.
        let other = self.sandbox.fill(self.subject.platform, &self.account.remote_id, &[(text.clone(), Utc::now())]);
        let r = self.until_final(post.id).await;
        match &r.state {
            TargetState::Published { remote } => {
                assert_ne!(remote.id, other[0], "{} adopted another post with the same text", self.ctx())
            }
            TargetState::Failed { failure } => assert_eq!(
                failure.kind,
                konektly_core::ErrorKind::OutcomeUnknown,
                "{} an ambiguous lookup ends as an unknown outcome: {failure:?}",
                self.ctx()
            ),
            other => panic!("{} unexpected end {other:?}", self.ctx()),
        }
        assert_eq!(self.ours().len(), 1, "{} exactly one post of ours, no second create", self.ctx());
    }

    async fn duplicate_after_own_create(&self) {
        // Our create lands, its answer is lost, and the account's listings lag behind: the
        // first lookup sees nothing, the repeat is refused as a duplicate — of our own post.
        self.sandbox.update_faults(self.host(), |f| {
            f.lose_answer.insert(self.kind.request.into(), 1);
            f.listing_lag = Duration::from_millis(1500);
        });
        let r = self.publish(&self.post(&self.text())).await;
        self.exactly_one(&r);
    }

    async fn duplicate_without_own_create(&self) {
        let text = self.text();
        let earlier = self.sandbox.fill(
            self.subject.platform,
            &self.account.remote_id,
            &[(text.clone(), Utc::now() - chrono::Duration::minutes(10))],
        );
        let r = self.publish(&self.post(&text)).await;
        match &r.state {
            TargetState::Failed { failure } => {
                assert_eq!(
                    failure.code.as_deref(),
                    Some("duplicate"),
                    "{} a `duplicate` refusal: {failure:?}",
                    self.ctx()
                )
            }
            other => panic!("{} expected a duplicate refusal, got {other:?} (earlier post {earlier:?})", self.ctx()),
        }
        assert!(self.ours().is_empty(), "{} nothing posted", self.ctx());
    }

    async fn server_error_after_commit(&self) {
        self.sandbox.update_faults(self.host(), |f| {
            f.error_after_commit.insert(self.kind.request.into(), 1);
        });
        let r = self.publish(&self.post(&self.text())).await;
        self.settled_after_loss(&r, 1);
        if self.kind.publishes {
            assert_eq!(self.landed(), 1, "{} reconciled before any new `{}`", self.ctx(), self.kind.request);
        }
    }

    async fn rate_limit(&self) {
        self.sandbox.update_faults(self.host(), |f| f.rate_limit_burst = 1);
        let r = self.publish(&self.post(&self.text())).await;
        self.exactly_one(&r);
        assert_eq!(self.sandbox.faults(self.host()).rate_limit_burst, 0, "{} the 429 was answered", self.ctx());
        assert_eq!(self.sandbox.early_requests(self.host()), 0, "{} a request came before the 429's wait", self.ctx());
    }

    async fn revoked(&self) {
        let mut events = self.engine.subscribe();
        let user = self.sandbox.users(self.subject.connect_via)[0].id.clone();
        self.sandbox.revoke_user(self.subject.connect_via, &user);
        let r = self.publish(&self.post(&self.text())).await;
        assert!(
            matches!(r.state, TargetState::Blocked { .. }),
            "{} the target waits blocked: {:?}",
            self.ctx(),
            r.state
        );
        let account = self.engine.account(self.account.id).await.expect("account");
        assert!(
            matches!(account.status, AccountStatus::ReauthRequired { .. }),
            "{} the account is marked: {:?}",
            self.ctx(),
            account.status
        );
        let mut raised = false;
        while let Ok(e) = events.try_recv() {
            raised |= matches!(e, Event::ReauthRequired { account, .. } if account == self.account.id);
        }
        assert!(raised, "{} a ReauthRequired event was raised", self.ctx());
        assert!(self.ours().is_empty(), "{} nothing posted", self.ctx());
    }

    async fn short_tokens(&self) {
        for _ in 0..3 {
            // Every access token has expired by the time the next post goes out.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let r = self.publish(&self.post(&self.text())).await;
            self.published(&r);
        }
        assert_eq!(self.ours().len(), 3, "{} three posts", self.ctx());
    }

    async fn restart_mid_upload(&self) {
        let upload = self.subject.uploads.iter().find(|u| u.kind == self.kind.name).expect("an upload");
        let post = self.post_of((upload.post)(&self.text()));
        let bytes: Vec<u8> = match &post.content.media.first().expect("one media").source {
            konektly_core::MediaSource::Bytes(b) => b.to_vec(),
            other => panic!("{} upload media must be bytes, got {other:?}", self.ctx()),
        };
        // The second part is held; the worker is killed while it waits.
        self.sandbox.update_faults(self.host(), |f| {
            f.stall_request.insert(upload.part.into(), 1);
        });
        self.engine.schedule(&post).await.expect("schedule");
        let worker = self.engine.worker();
        let run = tokio::spawn(async move { worker.run_once().await });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.sandbox.requests_of(self.host(), upload.part) < 2 {
            assert!(tokio::time::Instant::now() < deadline, "{} the second part never came", self.ctx());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        run.abort();
        let _ = run.await;
        let r = self.until_final(post.id).await;
        let posted = self.exactly_one(&r);
        let want = {
            use sha2::Digest as _;
            sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert_eq!(posted.media.len(), 1, "{} one media item", self.ctx());
        assert_eq!(posted.media[0].sha256, want, "{} the platform got the exact bytes", self.ctx());
        // Every part was sent once, and the held one (never acted on) once more.
        let sent = self.sandbox.requests_of(self.host(), upload.part);
        assert_eq!(
            sent,
            upload.parts + 1,
            "{} `{}` requests for {} parts and one held: a part was sent again",
            self.ctx(),
            upload.part,
            upload.parts
        );
    }

    async fn delete(&self) {
        let r = self.publish(&self.post(&self.text())).await;
        let remote = self.published(&r);
        self.exactly_one(&r);
        let platform = self.engine.platform(&remote.platform).expect("the platform").clone();
        let account = self.engine.account(self.account.id).await.expect("the account");
        match platform.delete(&account, &remote).await {
            Ok(()) => {
                assert!(self.subject.deletes, "{} deleted although declared unable to", self.ctx());
                assert!(self.ours().is_empty(), "{} the post is gone at the platform", self.ctx());
            }
            Err(konektly_core::Error::NotSupported(why)) => {
                assert!(!self.subject.deletes, "{} declared able to delete, but: {why}", self.ctx());
                assert_eq!(self.ours().len(), 1, "{} the post stays", self.ctx());
            }
            Err(e) => panic!("{} delete failed: {e}", self.ctx()),
        }
    }

    async fn cancel(&self) {
        let post = self.post(&self.text()).at(Utc::now() + chrono::Duration::hours(1));
        self.engine.schedule(&post).await.expect("schedule");
        let report = self.engine.cancel(post.id).await.expect("cancel");
        assert_eq!(report.cancelled, 1, "{} a scheduled target cancels at once", self.ctx());
        self.engine.worker().run_once().await.expect("run_once");
        let r = self.engine.status(post.id).await.expect("status");
        assert!(matches!(r[0].state, TargetState::Cancelled), "{} cancelled: {:?}", self.ctx(), r[0].state);
        assert!(self.ours().is_empty(), "{} nothing posted", self.ctx());
    }
}

/// Connects `owner` on `via` through the sandbox's real authorize redirect, signed in as the
/// sandbox user `login_hint` (the platform's first user when `None`); returns the accounts the
/// grant reached. Panics on any failure: for tests and load runs.
pub async fn connect_as(engine: &Konektly, owner: &OwnerId, via: &str, login_hint: Option<&str>) -> Vec<Account> {
    let redirect: Url = "https://app.example/callback".parse().expect("a URL");
    let start = engine.connect(owner, &via.into(), &redirect).await.expect("connect");
    let mut url = start.url.clone();
    if let Some(handle) = login_hint {
        url.query_pairs_mut().append_pair("login_hint", handle);
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
    let resp = http.get(url).send().await.expect("the authorize page answers");
    let location = resp.headers().get("location").expect("the authorize page redirects back");
    let back = Url::parse(location.to_str().expect("ASCII")).expect("a URL");
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    engine.complete_connect(&start.state, &q["code"]).await.expect("complete_connect")
}

/// Connects `platform`'s account for `owner` through `via`'s real authorize redirect.
async fn connect(engine: &Konektly, owner: &OwnerId, via: &str, platform: &str) -> Account {
    connect_as(engine, owner, via, None)
        .await
        .into_iter()
        .find(|a| {
            a.platform.as_str() == platform
                && a.metadata.get("kind").and_then(|k| k.as_str()).is_none_or(|k| k != "user")
        })
        .unwrap_or_else(|| panic!("connecting through {via} gives a {platform} account"))
}

/// A small JPEG the sandbox accepts, `w`×`h` as declared (the dimensions are set, not real).
pub fn sample_jpeg(w: u32, h: u32) -> konektly_core::Media {
    // A real 64×48 JPEG (made for this crate), so that probing reads it as valid.
    let mut m = konektly_core::Media::from_bytes(&include_bytes!("../assets/sample.jpg")[..]);
    m.mime = mime::IMAGE_JPEG;
    m.width = Some(w);
    m.height = Some(h);
    m
}

/// An MP4 of about `len` bytes that probes as valid (the `ftyp` and `moov` of the demo video,
/// then an `mdat` of filler), 1080×1920 and `secs` long as declared.
pub fn sample_mp4(len: usize, secs: u64) -> konektly_core::Media {
    let head = include_bytes!("../assets/sample-moov.mp4");
    // The asset ends with an empty `mdat` header: it is replaced by one holding the filler.
    let mut bytes = head[..head.len() - 8].to_vec();
    let filler = len.saturating_sub(bytes.len() + 8);
    bytes.extend_from_slice(&u32::try_from(filler + 8).unwrap_or(u32::MAX).to_be_bytes());
    bytes.extend_from_slice(b"mdat");
    bytes.extend((0..filler).map(|i| (i % 251) as u8));
    let mut m = konektly_core::Media::from_bytes(bytes);
    m.mime = "video/mp4".parse().expect("a MIME type");
    m.duration = Some(Duration::from_secs(secs));
    m.width = Some(1080);
    m.height = Some(1920);
    m
}

/// The media rules a platform declares ([`Capabilities`](konektly_core::Capabilities)), as a
/// table for its README: one row per media kind. The adapter's tests check that the README
/// holds the current one, so the table cannot drift from the code.
pub fn limits_table(caps: &konektly_core::Capabilities) -> String {
    fn bytes(n: u64) -> String {
        const MB: u64 = 1024 * 1024;
        match n {
            u64::MAX => "any".into(),
            n if n >= 1_000_000_000 && n % 1_000_000_000 == 0 => format!("{} GB (10⁹ bytes)", n / 1_000_000_000),
            n if n >= MB * 1024 && n % (MB * 1024) == 0 => format!("{} GB", n / (MB * 1024)),
            n if n >= MB && n % MB == 0 => format!("{} MB", n / MB),
            n if n >= 1024 && n % 1024 == 0 => format!("{} KB", n / 1024),
            n => format!("{n} B"),
        }
    }
    fn secs(d: Option<Duration>) -> String {
        d.map(|d| format!("{} s", d.as_secs_f64())).unwrap_or_else(|| "–".into())
    }
    let mut out = format!(
        "Text: at most {} ({:?} counting). Media per post: at most {}{}{}.\n\n",
        caps.max_text_len,
        caps.text_counting,
        caps.max_media_per_post,
        if caps.mixed_media { ", kinds may be mixed" } else { ", one kind per post" },
        if caps.media_required { ", media required" } else { "" },
    );
    out.push_str(
        "| kind | types | per post | size | duration | pixels | aspect (w:h) | encoding |\n|---|---|---|---|---|---|---|---|\n",
    );
    for l in &caps.media {
        let d = l.dimensions;
        let range = |lo: Option<u32>, hi: Option<u32>| match (lo, hi) {
            (None, None) => None,
            (a, b) => Some(format!(
                "{}–{}",
                a.map(|v| v.to_string()).unwrap_or_else(|| "0".into()),
                b.map(|v| v.to_string()).unwrap_or_else(|| "any".into())
            )),
        };
        let mut px = Vec::new();
        if let Some(w) = range(d.min_width, d.max_width) {
            px.push(format!("width {w}"));
        }
        if let Some(h) = range(d.min_height, d.max_height) {
            px.push(format!("height {h}"));
        }
        if let Some(s) = d.max_side {
            px.push(format!("longest side ≤ {s}"));
        }
        if let Some(p) = d.max_pixels {
            px.push(format!("≤ {p} pixels"));
        }
        let aspect = match (d.min_aspect, d.max_aspect) {
            (None, None) => "–".to_owned(),
            (a, b) => format!(
                "{} – {}",
                a.map(|r| r.to_string()).unwrap_or_else(|| "any".into()),
                b.map(|r| r.to_string()).unwrap_or_else(|| "any".into())
            ),
        };
        let f = &l.format;
        let mut enc = Vec::new();
        if !f.video_codecs.is_empty() {
            enc.push(format!("video {}", f.video_codecs.join("/")));
        }
        if !f.audio_codecs.is_empty() {
            enc.push(format!("audio {}", f.audio_codecs.join("/")));
        }
        if f.min_frame_rate.is_some() || f.max_frame_rate.is_some() {
            enc.push(format!("{} fps", f.frame_rate_range()));
        }
        if let Some(b) = f.max_bit_rate {
            enc.push(format!("≤ {} kbit/s", b as f64 / 1000.0));
        }
        out.push_str(&format!(
            "| {:?} | {} | {} | {}{} | {} | {} | {} | {} |\n",
            l.kind,
            if l.mime_types.is_empty() { "any".into() } else { l.mime_types.join(", ") },
            if l.max_count == usize::MAX { "any".into() } else { l.max_count.to_string() },
            if l.min_bytes > 0 { format!("{} – ", bytes(l.min_bytes)) } else { String::new() },
            bytes(l.max_bytes),
            match (l.min_duration, l.max_duration) {
                (None, None) => "–".to_owned(),
                (a, b) => format!("{} – {}", a.map_or_else(|| "0 s".to_owned(), |_| secs(a)), secs(b)),
            },
            if px.is_empty() { "–".into() } else { px.join(", ") },
            aspect,
            if enc.is_empty() { "–".into() } else { enc.join(", ") },
        ));
    }
    out
}

/// The validation-rule tables of every platform `platforms` builds, as an adapter's README
/// shows them (`` `id`: `` then [`limits_table`]).
pub async fn rules_tables(platforms: fn(&Sandbox) -> Vec<Arc<dyn Platform>>) -> String {
    let sandbox = Sandbox::start().await.expect("the sandbox starts");
    platforms(&sandbox).iter().map(|p| format!("`{}`:\n\n{}\n", p.id(), limits_table(p.capabilities()))).collect()
}

/// Asserts that `readme` holds `expected` (a generated table), printing it when not, so that
/// the README can be brought up to date by pasting.
///
/// # Panics
/// When the README does not hold it.
pub fn assert_readme_holds(readme: &str, what: &str, expected: &str) {
    assert!(readme.contains(expected), "the README must hold the current {what}:\n{expected}");
}
