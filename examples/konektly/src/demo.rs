//! `konektly demo`: starts the sandbox, connects one account on each of the five platforms
//! through the real OAuth redirect flow, validates a post (and shows one that fails), publishes
//! it to all five, schedules a second one a few seconds ahead, runs a worker until it is
//! published, and prints a table per post.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use konektly_core::{
    Account, Content, Konektly, Media, OwnerId, Post, PostId, Target, TargetRecord, ThreadItem, Violation,
};
use konektly_testkit::{Faults, PostedRecord};
use serde::Serialize;

use crate::app::{self, SandboxInfo};
use crate::connect::{self, Browser};
use crate::ui::{Ui, remote_id, state_detail, table};
use crate::{CliError, Result, fail};

/// The image the demo posts (a 1080×1080 JPEG test pattern).
pub const DEMO_JPEG: &[u8] = include_bytes!("../assets/demo.jpg");
/// The video the demo posts (4 s, 540×960, H.264 MP4).
pub const DEMO_MP4: &[u8] = include_bytes!("../assets/demo.mp4");

/// The platforms, in the demo's order.
pub const DEMO_PLATFORMS: [&str; 5] = ["x", "tiktok", "facebook", "instagram", "youtube"];

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// `postgres://…` (or `sqlite://path`); `None` uses `db_path`.
    pub database_url: Option<String>,
    /// The SQLite file.
    pub db_path: PathBuf,
    /// How far ahead the second post is scheduled.
    pub schedule_in: Duration,
    /// How long the worker may take to finish everything.
    pub timeout: Duration,
    /// Turn the sandbox's fault knobs on while publishing: each platform accepts the next post
    /// and drops the connection without answering.
    pub chaos: bool,
    /// Whose accounts and posts: the same every run, so that `konektly --owner demo status`
    /// shows them afterwards.
    pub owner: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            database_url: None,
            db_path: PathBuf::from("konektly.db"),
            schedule_in: Duration::from_secs(5),
            timeout: Duration::from_secs(120),
            chaos: false,
            owner: crate::cli::DEMO_OWNER.to_owned(),
        }
    }
}

/// One target in the demo's tables.
#[derive(Clone, Debug, Serialize)]
pub struct DemoRow {
    /// `now` or `scheduled`.
    pub post: String,
    /// The platform id.
    pub platform: String,
    /// The account's handle.
    pub account: String,
    /// The target's state.
    pub state: String,
    /// The post's id at the platform.
    pub remote_id: String,
    /// Its URL, or why it failed.
    pub url: String,
    /// Seconds from publishing (or the scheduled time) to the end.
    pub seconds: f64,
}

/// What the demo did.
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    /// Where everything is stored.
    pub store: String,
    /// The owner the demo used.
    pub owner: String,
    /// The connected accounts posted to: (platform, handle, account id).
    pub accounts: Vec<(String, String, String)>,
    /// The violations of the deliberately invalid post.
    pub invalid_post_violations: Vec<Violation>,
    /// The post published now.
    pub now_post: PostId,
    /// The scheduled post.
    pub scheduled_post: PostId,
    /// When it was scheduled for.
    pub scheduled_for: DateTime<Utc>,
    /// Every target of both posts.
    pub rows: Vec<DemoRow>,
    /// With `--chaos`: the platforms that did drop an answer after accepting a post.
    pub chaos_dropped: Vec<String>,
}

impl DemoReport {
    /// Whether every target was published.
    pub fn all_published(&self) -> bool {
        self.rows.iter().all(|r| r.state == "published")
    }
}

fn handle(a: &Account) -> String {
    a.handle.clone().or_else(|| a.display_name.clone()).unwrap_or_else(|| a.remote_id.clone())
}

/// Picks the account to publish with among those a grant reached (a Facebook Page, not the
/// user; the Instagram account itself).
fn publishable(platform: &str, accounts: &[Account]) -> Option<Account> {
    accounts
        .iter()
        .find(|a| {
            a.platform.as_str() == platform
                && a.metadata.get("kind").and_then(|k| k.as_str()) != Some(konektly_meta::KIND_USER)
        })
        .cloned()
}

/// The demo post: text, an image and a video; each platform gets what it can publish.
fn build_post(
    owner: &OwnerId,
    accounts: &HashMap<String, Account>,
    text: &str,
    second: &str,
    title: &str,
) -> Result<Post> {
    let image = Media::from_bytes(DEMO_JPEG).with_alt_text("A colourful test pattern");
    let video = Media::from_bytes(DEMO_MP4);
    let content = Content::text(text).with_media(image.clone()).with_media(video.clone());
    let acc = |p: &str| accounts.get(p).map(|a| a.id).ok_or_else(|| CliError::Message(format!("no {p} account")));
    let x = Target::new(acc("x")?).with_content(
        Content::text(text)
            .with_media(image.clone())
            .with_thread_item(ThreadItem { text: second.to_owned(), media: vec![video.clone()] }),
    );
    let tiktok = Target::new(acc("tiktok")?).with_content(Content::text(text).with_media(video.clone())).with_options(
        &konektly_tiktok::TikTokOptions {
            privacy_level: Some(konektly_tiktok::PrivacyLevel::PublicToEveryone),
            ..Default::default()
        },
    )?;
    let facebook = Target::new(acc("facebook")?).with_content(Content::text(text).with_media(image.clone()));
    let instagram = Target::new(acc("instagram")?);
    let youtube = Target::new(acc("youtube")?).with_content(Content::text(text).with_media(video)).with_options(
        &konektly_youtube::YouTubeOptions {
            title: Some(title.into()),
            privacy: Some(konektly_youtube::Privacy::Public),
            ..Default::default()
        },
    )?;
    Ok(Post::new(owner.clone(), content).to(x).to(tiktok).to(facebook).to(instagram).to(youtube))
}

/// A post that breaks rules on several platforms.
fn invalid_post(owner: &OwnerId, accounts: &HashMap<String, Account>) -> Post {
    let long = "konektly validates before anything is sent. ".repeat(8);
    let mut post = Post::new(owner.clone(), Content::text(long));
    for p in ["x", "tiktok", "instagram", "youtube"] {
        if let Some(a) = accounts.get(p) {
            post = post.to(Target::new(a.id));
        }
    }
    post
}

fn row(post: &str, r: &TargetRecord, accounts: &HashMap<String, Account>, from: DateTime<Utc>) -> DemoRow {
    let (state, detail) = state_detail(r);
    let account = accounts.values().find(|a| a.id == r.account_id).map(handle).unwrap_or_default();
    DemoRow {
        post: post.into(),
        platform: r.platform.to_string(),
        account,
        state,
        remote_id: remote_id(r),
        url: detail,
        seconds: ((r.updated_at - from).num_milliseconds().max(0) as f64) / 1000.0,
    }
}

async fn statuses(engine: &Konektly, ids: &[PostId]) -> Result<Vec<TargetRecord>> {
    let mut out = Vec::new();
    for id in ids {
        out.extend(engine.status(*id).await?);
    }
    Ok(out)
}

/// When a post scheduled `schedule_in` after `now` is due; an error (not a panic) if that is
/// beyond what a time can hold.
pub fn scheduled_for(now: DateTime<Utc>, schedule_in: Duration) -> Result<DateTime<Utc>> {
    chrono::TimeDelta::from_std(schedule_in)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| CliError::Message(format!("`--schedule-in {}` is too far in the future", schedule_in.as_secs())))
}

/// Sets a platform's fault knobs through the sandbox's control API (the sandbox may run in
/// another process).
async fn set_faults(info: &SandboxInfo, platform: &str, faults: &Faults) -> Result<()> {
    let http = konektly_core::HttpClient::new()?.client().clone();
    let url =
        info.control.join(&format!("_sandbox/faults/{platform}")).map_err(|e| CliError::Message(e.to_string()))?;
    let r = http
        .put(url)
        .json(faults)
        .send()
        .await
        .map_err(|e| CliError::Message(format!("the sandbox did not take the faults: {}", e.without_url())))?;
    if !r.status().is_success() {
        return fail(format!("the sandbox refused the faults for {platform}: {}", r.status()));
    }
    Ok(())
}

/// A platform's fault knobs, as the sandbox has them now.
async fn get_faults(info: &SandboxInfo, platform: &str) -> Result<Faults> {
    sandbox_get(info, &format!("_sandbox/faults/{platform}")).await
}

/// What the sandbox has received so far (`GET <control>_sandbox/posts`).
pub async fn sandbox_posts(info: &SandboxInfo) -> Result<Vec<PostedRecord>> {
    sandbox_get(info, "_sandbox/posts").await
}

/// `GET <control><path>` from the sandbox's inspection API, as JSON.
async fn sandbox_get<T: serde::de::DeserializeOwned>(info: &SandboxInfo, path: &str) -> Result<T> {
    let http = konektly_core::HttpClient::new()?.client().clone();
    let url = info.control.join(path).map_err(|e| CliError::Message(e.to_string()))?;
    http.get(url)
        .send()
        .await
        .map_err(|e| CliError::Message(format!("the sandbox does not answer: {}", e.without_url())))?
        .json()
        .await
        .map_err(|e| CliError::Message(format!("the sandbox answered badly: {e}")))
}

/// Runs the demo against the sandbox `info` describes (in this process or another).
pub async fn run(opts: &DemoOptions, info: &SandboxInfo, ui: &Ui) -> Result<DemoReport> {
    // Refused before anything is created or connected.
    scheduled_for(Utc::now(), opts.schedule_in)?;
    ui.say(format!(
        "Sandbox up: X {} · TikTok {} · Facebook {} · Instagram {} · YouTube {} · media {}",
        info.base_urls["x"],
        info.base_urls["tiktok"],
        info.base_urls["facebook"],
        info.base_urls["instagram"],
        info.base_urls["youtube"],
        info.base_urls["media"]
    ));
    let store = app::open_store(opts.database_url.as_deref(), &opts.db_path).await?;
    ui.say(format!("Store: {}", store.location));
    let (platforms, missing) = app::platforms(Some(info), &HashMap::new());
    if let Some((p, why)) = missing.first() {
        return fail(format!("the {p} adapter could not be configured: {why}"));
    }
    let engine = app::engine(platforms, &store, Some(info.media_host.clone()), None, true)?;
    let owner = OwnerId::new(opts.owner.clone());
    ui.say(format!("Owner: {owner} (the demo's accounts and posts are kept under it)"));

    ui.say("\n1. Connecting one account per platform through the OAuth redirect flow");
    let mut accounts: HashMap<String, Account> = HashMap::new();
    for p in DEMO_PLATFORMS {
        let pb = ui.spinner(format!("{p}: authorize → redirect → code exchange…"));
        let got = connect::connect(&engine, &owner, p, 0, Browser::Follow, Duration::from_secs(30), |_| {}).await?;
        let a = publishable(p, &got)
            .ok_or_else(|| CliError::Message(format!("{p}: the grant reached no account to publish with")))?;
        let also: Vec<String> =
            got.iter().filter(|g| g.id != a.id).map(|g| format!("{} {}", g.platform, handle(g))).collect();
        let extra =
            if also.is_empty() { String::new() } else { format!(" (the grant also reached: {})", also.join(", ")) };
        ui.done(pb, format!("  ✓ {p:<9} {}{extra}", handle(&a)));
        accounts.insert(p.to_owned(), a);
    }

    ui.say("\n2. Validating");
    let bad = invalid_post(&owner, &accounts);
    let violations = engine.validate(&bad).await?;
    ui.say(format!(
        "  A post of {} characters with no media breaks {} rules:",
        bad.content.text.chars().count(),
        violations.len()
    ));
    ui.violations(&violations);
    // The time makes each run's texts new: X refuses a text the account has posted before, and
    // the sandbox keeps what earlier runs posted.
    let stamp = Utc::now().format("%H:%M:%S");
    let text = format!(
        "Hello from the konektly demo 👋 One post, five networks: text, an image and a short video ({stamp} UTC)."
    );
    let reply = format!("…and here is the short video ({stamp}).");
    let post = build_post(&owner, &accounts, &text, &reply, "Hello from the konektly demo")?;
    let vs = engine.validate(&post).await?;
    if !vs.is_empty() {
        ui.say("  The demo post itself is invalid:");
        ui.violations(&vs);
        return Err(CliError::Konektly(konektly_core::Error::InvalidPost(vs)));
    }
    ui.say("  ✓ The demo post (text + JPEG + MP4, per-platform media) is valid on all five.");

    if opts.chaos {
        for p in DEMO_PLATFORMS {
            set_faults(info, p, &Faults { drop_after_accept: 1, ..Faults::default() }).await?;
        }
        ui.say("\n   Chaos: each platform will accept the next post and then drop the connection without");
        ui.say("   answering. konektly must find out what landed and still publish everything exactly once.");
    }
    ui.say("\n3. Publishing now to all five");
    let t0 = Utc::now();
    let pb = ui.spinner("publishing (uploads, containers, processing)…");
    let progress = ui.upload_progress(&engine);
    let records = engine.publish_now(&post).await?;
    progress.abort();
    let summary: Vec<String> = records.iter().map(|r| format!("{} {}", r.platform, r.state.name())).collect();
    ui.done(
        pb,
        format!(
            "  ✓ first pass done in {:.1} s: {}",
            (Utc::now() - t0).num_milliseconds() as f64 / 1000.0,
            summary.join(", ")
        ),
    );

    let at = scheduled_for(Utc::now(), opts.schedule_in)?;
    let text2 = format!("Scheduled by the konektly demo for {} UTC.", at.format("%H:%M:%S"));
    let reply2 = format!("…with the same short video ({}).", at.format("%H:%M:%S"));
    let mut post2 = build_post(&owner, &accounts, &text2, &reply2, "Scheduled by the konektly demo")?;
    post2 = post2.at(at);
    engine.schedule(&post2).await?;
    ui.say(format!(
        "\n4. Scheduled a second post for {} UTC ({} s ahead); running a worker",
        at.format("%H:%M:%S"),
        opts.schedule_in.as_secs()
    ));

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let worker = engine.worker().with_id("demo-worker");
    let handle_w = tokio::spawn(async move {
        worker
            .run(async {
                let _ = rx.await;
            })
            .await
    });
    let ids = [post.id, post2.id];
    let deadline = crate::commands::deadline_after(opts.timeout);
    let mut bars: HashMap<String, indicatif::ProgressBar> = HashMap::new();
    let mut last: HashMap<String, String> = HashMap::new();
    loop {
        let all = statuses(&engine, &ids).await?;
        for r in &all {
            let which = if r.post_id == post.id { "now" } else { "scheduled" };
            let key = format!("{which}/{}", r.platform);
            let name = r.state.name().to_owned();
            if last.get(&key) != Some(&name) {
                last.insert(key.clone(), name.clone());
                let mark = if r.state.is_final() { "✓" } else { "·" };
                if ui.term {
                    if r.state.is_final() {
                        if let Some(pb) = bars.remove(&key) {
                            pb.finish_and_clear();
                        }
                        ui.say(format!("  {mark} {key}: {name}"));
                    } else {
                        let pb =
                            bars.entry(key.clone()).or_insert_with(|| ui.spinner(key.clone()).expect("a terminal"));
                        pb.set_message(format!("{key}: {name}"));
                    }
                } else {
                    ui.say(format!("  {mark} {key}: {name}"));
                }
            }
        }
        if all.iter().all(|r| r.state.is_final()) || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (_, pb) in bars {
        pb.finish_and_clear();
    }
    let _ = tx.send(());
    let _ = handle_w.await;
    let mut chaos_dropped = Vec::new();
    if opts.chaos {
        for p in DEMO_PLATFORMS {
            if get_faults(info, p).await?.drop_after_accept == 0 {
                chaos_dropped.push(p.to_owned());
            } else {
                // The sandbox outlives the demo: leave it without faults.
                set_faults(info, p, &Faults::default()).await?;
            }
        }
    }

    let mut rows = Vec::new();
    for r in engine.status(post.id).await? {
        rows.push(row("now", &r, &accounts, t0));
    }
    for r in engine.status(post2.id).await? {
        rows.push(row("scheduled", &r, &accounts, at));
    }
    let order = |p: &str| DEMO_PLATFORMS.iter().position(|x| *x == p).unwrap_or(9);
    rows.sort_by_key(|r| (r.post != "now", order(&r.platform)));
    let report = DemoReport {
        store: store.location.clone(),
        owner: owner.to_string(),
        accounts: DEMO_PLATFORMS
            .iter()
            .filter_map(|p| accounts.get(*p).map(|a| ((*p).to_owned(), handle(a), a.id.to_string())))
            .collect(),
        invalid_post_violations: violations,
        now_post: post.id,
        scheduled_post: post2.id,
        scheduled_for: at,
        rows,
        chaos_dropped,
    };
    Ok(report)
}

/// The report's tables, as printed.
pub fn render(report: &DemoReport) -> String {
    let mut out = String::new();
    for (which, title) in [
        ("now", format!("Post {} — published now", report.now_post)),
        (
            "scheduled",
            format!("Post {} — scheduled for {} UTC", report.scheduled_post, report.scheduled_for.format("%H:%M:%S")),
        ),
    ] {
        let rows: Vec<Vec<String>> = report
            .rows
            .iter()
            .filter(|r| r.post == which)
            .map(|r| {
                vec![
                    r.platform.clone(),
                    r.account.clone(),
                    r.state.clone(),
                    r.remote_id.clone(),
                    format!("{:.2} s", r.seconds),
                    r.url.clone(),
                ]
            })
            .collect();
        out.push_str(&format!("\n{title}\n"));
        out.push_str(&table(&["platform", "account", "state", "remote id", "time", "url"], &rows));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_too_far_ahead_is_an_error_not_a_panic() {
        let now = Utc::now();
        assert_eq!(scheduled_for(now, Duration::from_secs(5)).unwrap(), now + chrono::TimeDelta::seconds(5));
        for secs in [u64::MAX, 9_000_000_000_000_000, 99_999_999_999_999] {
            let e = scheduled_for(now, Duration::from_secs(secs)).unwrap_err().to_string();
            assert_eq!(e, format!("`--schedule-in {secs}` is too far in the future"));
        }
    }
}
