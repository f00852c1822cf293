//! The commands: each sets konektly up (store, platforms, sandbox), does its job and says what
//! happened in plain words, or as JSON.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use konektly_core::{
    Account, Content, Konektly, Media, MediaHost, OwnerId, Post, PostId, Target, TargetFilter, TargetOptions,
    TargetRecord, ThreadItem,
};
use konektly_testkit::Sandbox;
use serde_json::{Value, json};

use crate::app::{self, SandboxInfo, Store};
use crate::cli::{Cli, Command, PostArgs};
use crate::connect::{self, Browser};
use crate::demo::{self, DemoOptions};
use crate::ui::{Ui, remote_id, state_detail, table, violation_line};
use crate::{CliError, Result, fail};

/// Prints an error in plain words, with the violations listed.
pub fn print_error(e: &CliError, json: bool) {
    let violations = match e {
        CliError::Konektly(konektly_core::Error::InvalidPost(vs)) => vs.clone(),
        _ => Vec::new(),
    };
    if violations.is_empty() {
        eprintln!("error: {e}");
    } else {
        eprintln!(
            "error: the post cannot be published as written ({} problem{}):",
            violations.len(),
            if violations.len() == 1 { "" } else { "s" }
        );
        for v in &violations {
            eprintln!("  ✗ {}", violation_line(v));
        }
    }
    if json {
        println!("{}", json!({"error": e.to_string(), "violations": violations}));
    }
}

/// Everything a command needs.
pub struct Ctx {
    /// The engine.
    pub engine: Konektly,
    /// The store.
    pub store: Store,
    /// Whose accounts and posts.
    pub owner: OwnerId,
    /// Output.
    pub ui: Ui,
    /// The sandbox in use, if any.
    pub sandbox: Option<SandboxInfo>,
    /// A sandbox started for this command only.
    pub local_sandbox: Option<Sandbox>,
    /// Platforms that could not be configured, and why.
    pub unconfigured: app::Unconfigured,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("store", &self.store).field("owner", &self.owner).finish_non_exhaustive()
    }
}

/// Sets konektly up for a command.
pub async fn setup(cli: &Cli, ui: Ui) -> Result<Ctx> {
    let config = app::read_config(cli.config.as_deref())?;
    let (sandbox, local_sandbox) = if cli.sandbox || cli.sandbox_url.is_some() {
        match &cli.sandbox_url {
            Some(u) => (Some(SandboxInfo::fetch(u).await?), None),
            None => {
                let sb = Sandbox::start().await?;
                (Some(SandboxInfo::of(&sb)), Some(sb))
            }
        }
    } else {
        (None, None)
    };
    let store = app::open_store(cli.database_url.as_deref(), &cli.db).await?;
    let (platforms, missing) = app::platforms(sandbox.as_ref(), &config);
    if cli.verbose > 0 {
        for (p, why) in &missing {
            ui.say(format!("note: {p} is not configured: {why}"));
        }
    }
    let media_host: Option<Arc<dyn MediaHost>> = match &sandbox {
        Some(s) => Some(s.media_host.clone()),
        None => app::media_host_from_env(&config),
    };
    let engine = app::engine(platforms, &store, media_host, sandbox.is_some())?;
    Ok(Ctx { engine, store, owner: OwnerId::new(cli.owner.clone()), ui, sandbox, local_sandbox, unconfigured: missing })
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let ui = Ui::new(cli.json);
    match &cli.command {
        Command::Demo { schedule_in, chaos } => run_demo(&cli, ui, *schedule_in, *chaos).await,
        Command::Sandbox => run_sandbox(ui).await,
        _ => {
            let ctx = setup(&cli, ui).await?;
            if ctx.local_sandbox.is_some() && !matches!(cli.command, Command::Validate(_)) {
                ctx.ui.say("note: this sandbox lives only while the command runs; keep one with `konektly sandbox` and KONEKTLY_SANDBOX_URL");
            }
            match cli.command {
                Command::Connect { platform, port, no_browser, timeout } => {
                    cmd_connect(&ctx, &platform, port, no_browser, timeout).await
                }
                Command::Accounts => cmd_accounts(&ctx).await,
                Command::Validate(args) => cmd_validate(&ctx, &args).await,
                Command::Post(args) => cmd_post(&ctx, &args).await,
                Command::Status { post } => cmd_status(&ctx, post.as_deref()).await,
                Command::Worker { until_idle } => cmd_worker(&ctx, until_idle).await,
                Command::Cancel { post } => cmd_cancel(&ctx, &post).await,
                Command::Disconnect { account } => cmd_disconnect(&ctx, &account).await,
                Command::Export { account } => cmd_export(&ctx, &account).await,
                Command::Demo { .. } | Command::Sandbox => unreachable!("handled above"),
            }
        }
    }
}

async fn run_demo(cli: &Cli, ui: Ui, schedule_in: u64, chaos: bool) -> Result<ExitCode> {
    let sandbox = Sandbox::start().await?;
    let opts = DemoOptions {
        database_url: cli.database_url.clone(),
        db_path: cli.db.clone(),
        schedule_in: Duration::from_secs(schedule_in),
        chaos,
        ..DemoOptions::default()
    };
    let report = demo::run(&opts, &sandbox, &ui).await?;
    if ui.json {
        ui.json_out(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        ui.say(demo::render(&report));
        let posted = sandbox.posts();
        ui.say(format!(
            "The sandbox received {} posts ({} media files, {} bytes). Everything is stored in {}.",
            posted.len(),
            posted.iter().map(|p| p.media.len()).sum::<usize>(),
            posted.iter().flat_map(|p| &p.media).map(|m| m.size).sum::<u64>(),
            report.store
        ));
    }
    Ok(if report.all_published() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn run_sandbox(ui: Ui) -> Result<ExitCode> {
    let sb = Sandbox::start().await?;
    let control = sb.base_url("media");
    if ui.json {
        let urls: HashMap<&str, String> = konektly_testkit::PLATFORMS
            .iter()
            .chain(["media"].iter())
            .map(|p| (*p, sb.base_url(p).to_string()))
            .collect();
        ui.json_out(&json!({"sandbox_url": control.as_str(), "base_urls": urls}));
    } else {
        ui.say("The konektly sandbox is running. Point the program at it with:");
        ui.say(format!("  export KONEKTLY_SANDBOX_URL={control}"));
        for p in konektly_testkit::PLATFORMS {
            ui.say(format!("  {p:<10} {}", sb.base_url(p)));
        }
        ui.say(format!("  inspect    {control}_sandbox/posts"));
        ui.say("Ctrl-C stops it.");
    }
    let _ = tokio::signal::ctrl_c().await;
    Ok(ExitCode::SUCCESS)
}

fn account_json(a: &Account) -> Value {
    json!({"id": a.id, "platform": a.platform, "handle": a.handle, "name": a.display_name, "remote_id": a.remote_id,
        "status": a.status, "token_expires_at": a.tokens.expires_at, "scopes": a.tokens.scopes,
        "kind": a.metadata.get("kind")})
}

async fn cmd_connect(ctx: &Ctx, platform: &str, port: u16, no_browser: bool, timeout: u64) -> Result<ExitCode> {
    if ctx.engine.platform(&platform.into()).is_err() {
        let why = ctx
            .unconfigured
            .iter()
            .find(|(p, _)| p.split('/').any(|x| x == platform))
            .map(|(_, why)| format!(": {why}"))
            .unwrap_or_default();
        return fail(format!(
            "{platform} is not configured{why}. Set its app credentials (see `konektly --help`), or add --sandbox."
        ));
    }
    let browser = match (&ctx.sandbox, no_browser) {
        (_, true) => Browser::None,
        (Some(_), false) => Browser::Follow,
        (None, false) => Browser::System,
    };
    let ui = ctx.ui.clone();
    let accounts =
        connect::connect(&ctx.engine, &ctx.owner, platform, port, browser, Duration::from_secs(timeout), |url| {
            ui.say(format!("Open this page to authorize konektly on {platform}:\n  {url}"));
            ui.say("Waiting for the redirect…");
        })
        .await?;
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"accounts": accounts.iter().map(account_json).collect::<Vec<_>>()}));
    } else {
        for a in &accounts {
            ctx.ui.say(format!(
                "✓ connected {} {} ({})",
                a.platform,
                a.handle.clone().or(a.display_name.clone()).unwrap_or_default(),
                a.id
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_accounts(ctx: &Ctx) -> Result<ExitCode> {
    let accounts = ctx.engine.accounts(&ctx.owner).await?;
    if ctx.ui.json {
        ctx.ui.json_out(&json!(accounts.iter().map(account_json).collect::<Vec<_>>()));
        return Ok(ExitCode::SUCCESS);
    }
    if accounts.is_empty() {
        ctx.ui.say("No accounts yet: `konektly connect <platform>`.");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.platform.to_string(),
                a.handle.clone().or(a.display_name.clone()).unwrap_or_default(),
                match &a.status {
                    konektly_core::AccountStatus::Active => "active".into(),
                    konektly_core::AccountStatus::ReauthRequired { reason } => format!("reconnect needed: {reason}"),
                    konektly_core::AccountStatus::Disconnected => "disconnected".into(),
                },
                a.tokens
                    .expires_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    ctx.ui.say(table(&["account", "platform", "handle", "status", "token expires"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// Parses `--at`: RFC 3339, or `+30s` / `+10m` / `+2h` / `+1d` from now.
pub fn parse_at(s: &str) -> Result<DateTime<Utc>> {
    parse_at_from(s, Utc::now())
}

/// [`parse_at`] with `+…` counted from `now`. A time too far ahead to represent is an error,
/// never a panic.
pub fn parse_at_from(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let too_far = || CliError::Message(format!("`{s}` is too far in the future"));
    if let Some(rel) = s.strip_prefix('+') {
        let not_a_time = || CliError::Message(format!("`{s}` is not a time: use +30s, +10m, +2h, +1d or RFC 3339"));
        let (digits, unit) = rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len()));
        let delta: fn(i64) -> Option<chrono::TimeDelta> = match unit {
            "" | "s" => chrono::TimeDelta::try_seconds,
            "m" => chrono::TimeDelta::try_minutes,
            "h" => chrono::TimeDelta::try_hours,
            "d" => chrono::TimeDelta::try_days,
            _ => return Err(not_a_time()),
        };
        if digits.is_empty() {
            return Err(not_a_time());
        }
        // Only ASCII digits are left, so the only way not to fit an i64 is to be too large.
        let n: i64 = digits.parse().map_err(|_| too_far())?;
        return delta(n).and_then(|d| now.checked_add_signed(d)).ok_or_else(too_far);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| CliError::Message(format!("`{s}` is not a time: use RFC 3339 (2026-12-01T09:00:00Z) or +10m")))
}

/// When a wait of `wait` from now ends; `None` if that is past the clock's range (never).
pub fn deadline_after(wait: Duration) -> Option<tokio::time::Instant> {
    tokio::time::Instant::now().checked_add(wait)
}

/// How long to keep a local sandbox for a post due at `at`: until then, plus `extra_secs`
/// (saturating, whatever the numbers).
pub fn wait_for_due(at: DateTime<Utc>, now: DateTime<Utc>, extra_secs: u64) -> Duration {
    (at - now).to_std().unwrap_or_default().saturating_add(Duration::from_secs(extra_secs))
}

/// Builds a post from the command line.
pub async fn build_post(ctx: &Ctx, args: &PostArgs) -> Result<Post> {
    // Checked first: a bad time is refused before any file is read or account looked up.
    let at = args.at.as_deref().map(parse_at).transpose()?;
    let mut media = Vec::new();
    for path in &args.media {
        media.push(Media::from_file(path).await?);
    }
    let content = Content {
        text: args.text.clone(),
        media,
        link: None,
        thread: args.thread.iter().map(|t| ThreadItem { text: t.clone(), media: Vec::new() }).collect(),
    };
    let mut post = Post::new(ctx.owner.clone(), content);
    if let Some(k) = &args.idempotency_key {
        post = post.with_idempotency_key(k.clone());
    }
    let mut options: HashMap<String, serde_json::Map<String, Value>> = HashMap::new();
    for o in &args.options {
        let Some((key, value)) = o.split_once('=') else {
            return fail(format!("`--option {o}`: use platform.key=value"));
        };
        let Some((platform, key)) = key.split_once('.') else {
            return fail(format!("`--option {o}`: use platform.key=value"));
        };
        let v = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        options.entry(platform.to_owned()).or_default().insert(key.to_owned(), v);
    }
    if let Some(t) = &args.title {
        for p in ["youtube", "facebook"] {
            options.entry(p.to_owned()).or_default().entry("title").or_insert(json!(t));
        }
    }
    let mut seen = Vec::new();
    for spec in &args.to {
        let a = app::resolve_account(&ctx.engine, &ctx.owner, spec).await?;
        if seen.contains(&a.id) {
            continue;
        }
        seen.push(a.id);
        let mut t = Target::new(a.id);
        if let Some(o) = options.get(a.platform.as_str()) {
            t.options = TargetOptions::from_json(Value::Object(o.clone()));
        }
        post = post.to(t);
    }
    if let Some(at) = at {
        post = post.at(at);
    }
    Ok(post)
}

async fn cmd_validate(ctx: &Ctx, args: &PostArgs) -> Result<ExitCode> {
    let post = build_post(ctx, args).await?;
    let vs = ctx.engine.owner(&ctx.owner).validate(&post).await?;
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"valid": vs.is_empty(), "violations": vs}));
    } else if vs.is_empty() {
        ctx.ui.say(format!("✓ valid for all {} target(s)", post.targets.len()));
    } else {
        ctx.ui.say(format!("✗ {} problem(s):", vs.len()));
        ctx.ui.violations(&vs);
    }
    Ok(if vs.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn accounts_by_id(ctx: &Ctx) -> HashMap<konektly_core::AccountId, Account> {
    ctx.engine.accounts(&ctx.owner).await.unwrap_or_default().into_iter().map(|a| (a.id, a)).collect()
}

fn targets_table(records: &[TargetRecord], accounts: &HashMap<konektly_core::AccountId, Account>) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let (state, detail) = state_detail(r);
            let account = accounts
                .get(&r.account_id)
                .and_then(|a| a.handle.clone().or(a.display_name.clone()))
                .unwrap_or_else(|| r.account_id.to_string());
            let detail = if detail.is_empty() && !r.state.is_final() {
                format!("due {}", r.due_at.format("%H:%M:%S"))
            } else {
                detail
            };
            vec![r.platform.to_string(), account, state, remote_id(r), detail]
        })
        .collect();
    table(&["platform", "account", "state", "remote id", "url / detail"], &rows)
}

fn records_json(records: &[TargetRecord]) -> Value {
    json!(records
        .iter()
        .map(|r| {
            let (state, detail) = state_detail(r);
            json!({"target": r.id, "post": r.post_id, "platform": r.platform, "account": r.account_id, "state": state,
                "remote_id": remote_id(r), "detail": detail, "attempts": r.attempts, "due_at": r.due_at, "updated_at": r.updated_at})
        })
        .collect::<Vec<_>>())
}

/// Runs a worker until every target of `posts` has ended or `wait` passes.
async fn finish(ctx: &Ctx, posts: &[PostId], wait: Duration) -> Result<Vec<TargetRecord>> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let worker = ctx.engine.worker();
    let h = tokio::spawn(async move {
        worker
            .run(async {
                let _ = rx.await;
            })
            .await
    });
    let deadline = deadline_after(wait);
    let pb = ctx.ui.spinner("waiting for the platforms to finish…");
    let out = loop {
        let mut all = Vec::new();
        for p in posts {
            all.extend(ctx.engine.owner(&ctx.owner).status(*p).await?);
        }
        if let Some(pb) = &pb {
            let open: Vec<String> = all
                .iter()
                .filter(|r| !r.state.is_final())
                .map(|r| format!("{} {}", r.platform, r.state.name()))
                .collect();
            pb.set_message(format!("waiting for {}", open.join(", ")));
        }
        if all.iter().all(|r| r.state.is_final()) || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ctx.ui.done(pb, "");
    let _ = tx.send(());
    let _ = h.await;
    Ok(out)
}

async fn cmd_post(ctx: &Ctx, args: &PostArgs) -> Result<ExitCode> {
    let post = build_post(ctx, args).await?;
    let accounts = accounts_by_id(ctx).await;
    if let Some(at) = post.publish_at {
        let id = ctx.engine.owner(&ctx.owner).schedule(&post).await?;
        if ctx.local_sandbox.is_some() {
            ctx.ui.say("The sandbox of this command is kept running until the post is published.");
            let wait = wait_for_due(at, Utc::now(), args.wait);
            let records = finish(ctx, &[id], wait).await?;
            return report_post(ctx, id, &records, &accounts);
        }
        if ctx.ui.json {
            ctx.ui.json_out(
                &json!({"post": id, "scheduled_for": at, "targets": records_json(&ctx.engine.owner(&ctx.owner).status(id).await?)}),
            );
        } else {
            ctx.ui.say(format!(
                "✓ post {id} scheduled for {} UTC on {} target(s); `konektly worker` publishes it.",
                at.format("%Y-%m-%d %H:%M:%S"),
                post.targets.len()
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let pb = ctx.ui.spinner(format!("publishing to {} target(s)…", post.targets.len()));
    let progress = ctx.ui.upload_progress(&ctx.engine);
    let mut records = ctx.engine.owner(&ctx.owner).publish_now(&post).await?;
    progress.abort();
    ctx.ui.done(pb, format!("published post {}", post.id));
    if records.iter().any(|r| !r.state.is_final()) && args.wait > 0 {
        records = finish(ctx, &[post.id], Duration::from_secs(args.wait)).await?;
    }
    report_post(ctx, post.id, &records, &accounts)
}

fn report_post(
    ctx: &Ctx,
    id: PostId,
    records: &[TargetRecord],
    accounts: &HashMap<konektly_core::AccountId, Account>,
) -> Result<ExitCode> {
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"post": id, "targets": records_json(records)}));
    } else {
        ctx.ui.say(format!("Post {id}"));
        ctx.ui.say(targets_table(records, accounts));
    }
    let failed = records.iter().any(|r| {
        matches!(r.state, konektly_core::TargetState::Failed { .. } | konektly_core::TargetState::Blocked { .. })
    });
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn parse_post(s: &str) -> Result<PostId> {
    s.parse().map_err(|_| CliError::Message(format!("`{s}` is not a post id")))
}

async fn cmd_status(ctx: &Ctx, post: Option<&str>) -> Result<ExitCode> {
    let records = match post {
        Some(p) => ctx.engine.owner(&ctx.owner).status(parse_post(p)?).await?,
        None => {
            let f = TargetFilter { owner: Some(ctx.owner.clone()), limit: Some(50), ..TargetFilter::default() };
            ctx.store.scheduler.list(&f).await?
        }
    };
    if ctx.ui.json {
        ctx.ui.json_out(&records_json(&records));
    } else if records.is_empty() {
        ctx.ui.say("Nothing yet.");
    } else {
        ctx.ui.say(targets_table(&records, &accounts_by_id(ctx).await));
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_worker(ctx: &Ctx, until_idle: bool) -> Result<ExitCode> {
    let mut events = ctx.engine.subscribe();
    let ui = ctx.ui.clone();
    let printer = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if ui.json {
                println!("{}", serde_json::to_string(&ev).unwrap_or_default());
                continue;
            }
            let line = match ev {
                konektly_core::Event::Published { remote, .. } => {
                    format!(
                        "✓ published on {}: {} {}",
                        remote.platform,
                        remote.id,
                        remote.url.map(|u| u.to_string()).unwrap_or_default()
                    )
                }
                konektly_core::Event::Failed { failure, .. } => format!("✗ failed: {}", failure.message),
                konektly_core::Event::Retrying { failure, .. } => format!("… will retry: {}", failure.message),
                konektly_core::Event::ReauthRequired { account, reason } => {
                    format!("! account {account} must be reconnected: {reason}")
                }
                _ => continue,
            };
            ui.say(line);
        }
    });
    let worker = ctx.engine.worker();
    ctx.ui.say(format!(
        "worker {} running{}",
        worker.id(),
        if until_idle { " until idle" } else { "; Ctrl-C stops it" }
    ));
    let scheduler = ctx.store.scheduler.clone();
    let owner = ctx.owner.clone();
    let shutdown = async move {
        if until_idle {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let f = TargetFilter { owner: Some(owner.clone()), ..TargetFilter::default() };
                match scheduler.list(&f).await {
                    Ok(all)
                        if all.iter().all(|r| {
                            r.state.is_final() || matches!(r.state, konektly_core::TargetState::Blocked { .. })
                        }) =>
                    {
                        break;
                    }
                    _ => {}
                }
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    let progress = ctx.ui.upload_progress(&ctx.engine);
    let report = worker.run(shutdown).await;
    progress.abort();
    let report = report?;
    printer.abort();
    ctx.ui.say(format!("worker stopped: {} target(s) claimed, {} abandoned", report.claimed, report.abandoned));
    Ok(ExitCode::SUCCESS)
}

async fn cmd_cancel(ctx: &Ctx, post: &str) -> Result<ExitCode> {
    let r = ctx.engine.owner(&ctx.owner).cancel(parse_post(post)?).await?;
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"cancelled": r.cancelled, "cancel_requested": r.requested}));
    } else {
        ctx.ui.say(format!("cancelled {} target(s)", r.cancelled));
        if r.requested > 0 {
            ctx.ui.say(format!(
                "{} target(s) were already being published: each ends cancelled if nothing landed, or published \
                 (with its URL) if the platform published it before the cancel could stop it — see `konektly status {post}`",
                r.requested
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_disconnect(ctx: &Ctx, account: &str) -> Result<ExitCode> {
    let a = app::resolve_account(&ctx.engine, &ctx.owner, account).await?;
    ctx.engine.owner(&ctx.owner).disconnect(a.id).await?;
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"disconnected": a.id}));
    } else {
        ctx.ui.say(format!(
            "✓ disconnected {} {} (the grant was revoked at the platform)",
            a.platform,
            a.handle.unwrap_or_default()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_export(ctx: &Ctx, account: &str) -> Result<ExitCode> {
    let a = app::resolve_account(&ctx.engine, &ctx.owner, account).await?;
    let v = ctx.store.data.export_account(a.id).await?;
    ctx.ui.json_out(&v);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn error_of(s: &str) -> String {
        match parse_at_from(s, now()) {
            Ok(t) => panic!("`{s}` must be refused, got {t}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parse_at_reads_offsets_and_rfc3339() {
        assert_eq!(parse_at_from("+30s", now()).unwrap(), now() + chrono::TimeDelta::seconds(30));
        assert_eq!(parse_at_from("+30", now()).unwrap(), now() + chrono::TimeDelta::seconds(30));
        assert_eq!(parse_at_from("+10m", now()).unwrap(), now() + chrono::TimeDelta::minutes(10));
        assert_eq!(parse_at_from("+2h", now()).unwrap(), now() + chrono::TimeDelta::hours(2));
        assert_eq!(parse_at_from("+1d", now()).unwrap(), now() + chrono::TimeDelta::days(1));
        assert_eq!(parse_at_from("+0s", now()).unwrap(), now());
        assert_eq!(
            parse_at_from("2026-12-01T10:00:00+01:00", now()).unwrap(),
            DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z").unwrap()
        );
        // Far, but a time: year 200,000 or so.
        assert!(parse_at_from("+70000000d", now()).is_ok());
    }

    /// Issue 13: `--at +99999999999h` panicked (exit 101).
    #[test]
    fn parse_at_refuses_times_too_far_ahead_without_panicking() {
        for s in [
            "+99999999999h",
            "+99999999999d",
            "+9223372036854775807s", // i64::MAX seconds: more than a TimeDelta holds
            "+9223372036854775807m",
            "+9223372036854775807h",
            "+9223372036854775807d",
            "+9223372036854775808s", // one more than i64::MAX
            "+99999999999999999999999999999999h",
            "+100000000d",     // a TimeDelta, but past the last representable time
            "+9000000000000s", // a TimeDelta, but past the last representable time
        ] {
            let e = error_of(s);
            assert_eq!(e, format!("`{s}` is too far in the future"));
        }
        // The real clock too.
        assert!(parse_at("+99999999999h").is_err());
    }

    #[test]
    fn parse_at_refuses_what_is_not_a_time() {
        for s in [
            "",
            "+",
            "+h",
            "+-5m",
            "-5m",
            "+5x",
            "+5 m",
            "+5mm",
            "+1.5h",
            "+5M",
            "+٣m",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "+99999999999999999999999w",
        ] {
            let e = error_of(s);
            assert!(e.contains("is not a time"), "`{s}`: {e}");
        }
    }

    #[test]
    fn waits_saturate_instead_of_overflowing() {
        assert!(deadline_after(Duration::MAX).is_none());
        assert!(deadline_after(Duration::from_secs(u64::MAX)).is_none());
        assert!(deadline_after(Duration::from_secs(1)).is_some());
        let far = parse_at_from("+70000000d", now()).unwrap();
        assert_eq!(wait_for_due(far, now(), u64::MAX), Duration::MAX);
        assert_eq!(wait_for_due(now(), far, 5), Duration::from_secs(5), "a time already past waits only the extra");
        assert_eq!(wait_for_due(now() + chrono::TimeDelta::seconds(10), now(), 5), Duration::from_secs(15));
    }
}
