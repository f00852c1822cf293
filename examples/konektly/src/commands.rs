//! The commands: each sets konektly up (store, platforms, sandbox), does its job and says what
//! happened in plain words, or as JSON, and ends with the exit status that matches what it said
//! ([`Exit`]): 0 when everything is done as asked, 3 when something needs attention, 1 on an
//! error.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::CommandFactory;
use konektly_core::{
    Account, AccountId, AccountStatus, Content, Konektly, Media, MediaHost, OwnerId, Post, PostId, Target,
    TargetFilter, TargetOptions, TargetRecord, TargetState, ThreadItem,
};
use konektly_testkit::Sandbox;
use serde_json::{Value, json};

use crate::app::{self, SandboxInfo, Store};
use crate::background::{self, Background, Found, Stopped};
use crate::cli::{Cli, Command, PostArgs};
use crate::connect::{self, Browser};
use crate::demo::{self, DemoOptions};
use crate::doctor;
use crate::ui::{Standing, Tally, Ui, remote_id, state_detail, table, violation_line};
use crate::{CliError, Exit, Result, fail};

/// Prints an error in plain words, with the violations listed (and, with `--json`, as JSON on
/// standard output).
pub fn print_error(e: &CliError, json: bool) {
    let violations = match e {
        CliError::Konektly(konektly_core::Error::InvalidPost(vs)) => vs.clone(),
        _ => Vec::new(),
    };
    if violations.is_empty() {
        eprintln!("error: {e}");
    } else {
        eprintln!(
            "error: the post breaks {} rule{} of its platforms; nothing was sent:",
            violations.len(),
            if violations.len() == 1 { "" } else { "s" }
        );
        for v in &violations {
            eprintln!("  ✗ {}", violation_line(v));
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"error": e.to_string(), "violations": violations, "exit_code": e.exit_code()})
            )
            .unwrap_or_default()
        );
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
    /// The database's background sandbox, when `--sandbox` uses it.
    pub background: Option<Background>,
    /// Platforms that could not be configured, and why.
    pub unconfigured: app::Unconfigured,
    /// How to run konektly again on the same database, owner and sandbox (for the next steps
    /// the program suggests): `konektly --sandbox --owner alice`.
    pub again: String,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("store", &self.store).field("owner", &self.owner).finish_non_exhaustive()
    }
}

impl Ctx {
    /// A command line to suggest: `konektly <global options> <rest>`.
    pub fn cmd(&self, rest: &str) -> String {
        format!("{} {rest}", self.again)
    }
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `konektly` with the global options a later command needs to find the same database, owner
/// and sandbox — those not taken from the environment, which a later command gets as well.
pub fn again(cli: &Cli) -> String {
    again_as(cli, cli.owner.as_deref(), cli.sandbox || cli.sandbox_url.is_some())
}

/// [`again`] for `owner` (`None`: the default one), with the sandbox options if `sandbox`.
pub fn again_as(cli: &Cli, owner: Option<&str>, sandbox: bool) -> String {
    let from_env = |name: &str, value: &str| std::env::var(name).is_ok_and(|v| v == value);
    let mut out = vec!["konektly".to_owned()];
    match &cli.database_url {
        Some(u) if !from_env("KONEKTLY_DATABASE_URL", u) => {
            // A password is never printed; such a URL is best kept in KONEKTLY_DATABASE_URL.
            let shown = url::Url::parse(u)
                .ok()
                .filter(|p| p.password().is_none())
                .map(|_| shell_quote(u))
                .unwrap_or_else(|| "\"$KONEKTLY_DATABASE_URL\"".to_owned());
            out.push(format!("--database-url {shown}"));
        }
        _ => {}
    }
    if cli.db != std::path::Path::new(crate::cli::DEFAULT_DB) {
        out.push(format!("--db {}", shell_quote(&cli.db.to_string_lossy())));
    }
    if sandbox {
        match &cli.sandbox_url {
            Some(u) if !from_env("KONEKTLY_SANDBOX_URL", u.as_str()) => out.push(format!("--sandbox-url {u}")),
            Some(_) => {}
            None => out.push("--sandbox".to_owned()),
        }
    }
    if let Some(o) = owner
        && !from_env("KONEKTLY_OWNER", o)
    {
        out.push(format!("--owner {}", shell_quote(o)));
    }
    out.join(" ")
}

/// Sets konektly up for a command.
pub async fn setup(cli: &Cli, ui: Ui) -> Result<Ctx> {
    let config = app::read_config(cli.config.as_deref())?;
    let (sandbox, background) = match (&cli.sandbox_url, cli.sandbox) {
        (Some(u), _) => (Some(SandboxInfo::fetch(u).await?), None),
        (None, true) => {
            let bg = background::ensure(&cli.db).await?;
            (Some(bg.info.clone()), Some(bg))
        }
        (None, false) => (None, None),
    };
    let store = app::open_store(cli.database_url.as_deref(), &cli.db).await?;
    let (platforms, missing) = app::platforms(sandbox.as_ref(), &config);
    if cli.verbose > 0 {
        for (p, why) in &missing {
            ui.note(format!("note: {p} is not configured: {why}"));
        }
    }
    let media_host: Option<Arc<dyn MediaHost>> = match &sandbox {
        Some(s) => Some(s.media_host.clone()),
        None => app::media_host_from_env(&config),
    };
    let media_store = app::media_store(cli.media_store.as_deref(), cli.database_url.as_deref(), &cli.db)?;
    let engine = app::engine(platforms, &store, media_host, Some(media_store), sandbox.is_some())?;
    let ctx = Ctx {
        engine,
        store,
        owner: OwnerId::new(cli.owner_or(crate::cli::DEFAULT_OWNER)),
        ui,
        sandbox,
        background,
        unconfigured: missing,
        again: again(cli),
    };
    if let Some(bg) = &ctx.background {
        say_how_found(&ctx, bg).await;
    }
    Ok(ctx)
}

/// Says on standard error that a background sandbox was started (and where, and how to stop
/// it), or replaced one that no longer answered. Nothing when it was running.
fn note_background(ui: &Ui, bg: &Background, stop: &str) {
    let new = format!("{} (process {}, log {})", bg.record.url, bg.record.pid, bg.log_file.display());
    match &bg.found {
        Found::Running => {}
        Found::Started => ui.note(format!(
            "note: started a sandbox in the background at {new}; later --sandbox commands on this database use it, \
             `{stop}` stops it"
        )),
        Found::Restarted { old } => ui.note(format!(
            "note: the sandbox recorded in {} ({old}) no longer answers; started a new one at {new}",
            bg.state_file.display(),
        )),
    }
}

/// [`note_background`], and, for a new sandbox, which accounts must be connected again: it
/// never gave their tokens.
async fn say_how_found(ctx: &Ctx, bg: &Background) {
    note_background(&ctx.ui, bg, &ctx.cmd("sandbox --stop").replace(" --sandbox ", " "));
    if bg.found == Found::Running {
        return;
    }
    let accounts = ctx.engine.accounts(&ctx.owner).await.unwrap_or_default();
    let mut platforms: Vec<String> = accounts.iter().map(|a| a.platform.to_string()).collect();
    platforms.sort();
    platforms.dedup();
    if !platforms.is_empty() {
        ctx.ui.note(format!(
            "note: this new sandbox does not know the tokens of the accounts connected before; connect them again: {}",
            platforms.iter().map(|p| format!("`{}`", ctx.cmd(&format!("connect {p}")))).collect::<Vec<_>>().join(", ")
        ));
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<Exit> {
    let ui = Ui::new(cli.json);
    let Some(command) = &cli.command else {
        println!("{}", doctor::guide(&cli));
        return Ok(Exit::Done);
    };
    match command {
        Command::Init => {
            println!("{}", doctor::guide(&cli));
            Ok(Exit::Done)
        }
        Command::Doctor { port } => doctor::doctor(&cli, &ui, *port).await,
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut crate::cli::Cli::command(), "konektly", &mut out);
            Ok(Exit::Done)
        }
        Command::Man { command } => {
            let page = man_page(command.as_deref())?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &page)
                .map_err(|e| CliError::Message(format!("cannot write the man page: {e}")))?;
            Ok(Exit::Done)
        }
        Command::Demo { schedule_in, chaos } => run_demo(&cli, ui, *schedule_in, *chaos).await,
        Command::Sandbox { start, stop, detached } => run_sandbox(&cli, ui, *start, *stop, detached.as_deref()).await,
        _ => {
            let ctx = setup(&cli, ui).await?;
            match command {
                Command::Connect { platform, port, no_browser, timeout } => {
                    cmd_connect(&ctx, platform, *port, *no_browser, *timeout).await
                }
                Command::Accounts => cmd_accounts(&ctx).await,
                Command::Validate(args) => cmd_validate(&ctx, args).await,
                Command::Post(args) => cmd_post(&ctx, args).await,
                Command::Status { post } => cmd_status(&ctx, post.as_deref()).await,
                Command::Worker { until_idle } => cmd_worker(&ctx, *until_idle).await,
                Command::Cancel { post } => cmd_cancel(&ctx, post).await,
                Command::Delete { post } => cmd_delete(&ctx, post).await,
                Command::Disconnect { account } => cmd_disconnect(&ctx, account).await,
                Command::Export { account } => cmd_export(&ctx, account).await,
                Command::Serve { listen, public_url, no_workers, rate_limit, tuning } => {
                    crate::serve::cmd_serve(&ctx, *listen, public_url.clone(), *no_workers, *rate_limit, tuning).await
                }
                Command::Keys { action } => crate::serve::cmd_keys(&ctx, action).await,
                Command::Queue { action } => crate::queue::cmd_queue(&ctx, action).await,
                Command::Series { action } => crate::queue::cmd_series(&ctx, action).await,
                Command::Stats { post, account } => {
                    crate::queue::cmd_stats(&ctx, post.as_deref(), account.as_deref()).await
                }
                Command::Demo { .. }
                | Command::Sandbox { .. }
                | Command::Init
                | Command::Doctor { .. }
                | Command::Completions { .. }
                | Command::Man { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

async fn run_demo(cli: &Cli, ui: Ui, schedule_in: u64, chaos: bool) -> Result<Exit> {
    // The database's background sandbox (or the one at --sandbox-url): it outlives the demo, so
    // what the demo made can be looked at, and used, afterwards.
    let (info, bg) = match &cli.sandbox_url {
        Some(u) => (SandboxInfo::fetch(u).await?, None),
        None => {
            let bg = background::ensure(&cli.db).await?;
            (bg.info.clone(), Some(bg))
        }
    };
    let owner = cli.owner_or(crate::cli::DEMO_OWNER);
    let look = again_as(cli, Some(&owner), false);
    let with_sandbox = again_as(cli, Some(&owner), true);
    let stop = again_as(cli, None, false) + " sandbox --stop";
    if let Some(bg) = &bg {
        note_background(&ui, bg, &stop);
    }
    let before = demo::sandbox_posts(&info).await?.len();
    let opts = DemoOptions {
        database_url: cli.database_url.clone(),
        db_path: cli.db.clone(),
        schedule_in: Duration::from_secs(schedule_in),
        chaos,
        owner: owner.clone(),
        ..DemoOptions::default()
    };
    let report = demo::run(&opts, &info, &ui).await?;
    let posted: Vec<_> = demo::sandbox_posts(&info).await?.into_iter().skip(before).collect();
    let control = &info.control;
    let next = [
        (format!("{look} accounts"), "the accounts the demo connected"),
        (format!("{look} status"), "the targets of its posts"),
        (format!("curl {control}_sandbox/posts"), "what the sandbox received"),
        (format!("{with_sandbox} post --to x --text \"Hello again\""), "post with its accounts"),
    ];
    if ui.json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("sandbox_url".into(), json!(control));
            m.insert("sandbox_posts".into(), json!(posted.len()));
            m.insert("next".into(), json!(next.iter().map(|(c, _)| c).collect::<Vec<_>>()));
        }
        ui.json_out(&v);
    } else {
        ui.say(demo::render(&report));
        ui.say(format!(
            "The sandbox received {} posts ({} media files, {} bytes) from this demo.",
            posted.len(),
            posted.iter().map(|p| p.media.len()).sum::<usize>(),
            posted.iter().flat_map(|p| &p.media).map(|m| m.size).sum::<u64>(),
        ));
        let kept = match &bg {
            Some(_) => format!("the sandbox keeps running in the background at {control}"),
            None => format!("the sandbox at {control} keeps them"),
        };
        ui.say(format!(
            "\nThe demo's accounts and posts are kept in {} under the owner `{owner}`, and {kept}. Next:",
            report.store
        ));
        let mut lines: Vec<(String, &str)> = next.iter().map(|(c, w)| (c.clone(), *w)).collect();
        if bg.is_some() {
            lines.push((stop, "stop the sandbox when you are done"));
        }
        let width = lines.iter().map(|(c, _)| c.chars().count()).max().unwrap_or(0);
        for (c, what) in lines {
            ui.say(format!("  {c:<width$}  # {what}"));
        }
    }
    Ok(Exit::attention_if(!report.all_published()))
}

async fn run_sandbox(cli: &Cli, ui: Ui, start: bool, stop: bool, detached: Option<&std::path::Path>) -> Result<Exit> {
    if let Some(state_file) = detached {
        background::serve_detached(state_file).await?;
        return Ok(Exit::Done);
    }
    let db = cli.db.display();
    if stop {
        let stopped = background::stop(&cli.db).await?;
        if ui.json {
            let (outcome, record) = match &stopped {
                Stopped::NoneRecorded => ("none_recorded", None),
                Stopped::Stopped(r) => ("stopped", Some(r)),
                Stopped::WasNotRunning(r) => ("was_not_running", Some(r)),
            };
            ui.json_out(&json!({"outcome": outcome, "sandbox_url": record.map(|r| r.url.as_str()),
                "pid": record.map(|r| r.pid)}));
        } else {
            ui.say(match stopped {
                Stopped::NoneRecorded => format!("· No background sandbox is recorded for {db}: nothing to stop."),
                Stopped::Stopped(r) => {
                    format!("✓ Stopped the background sandbox of {db} (process {}, {}).", r.pid, r.url)
                }
                Stopped::WasNotRunning(r) => format!(
                    "· The background sandbox recorded for {db} ({}, process {}) was not running; its record is removed.",
                    r.url, r.pid
                ),
            });
        }
        return Ok(Exit::Done);
    }
    if start {
        let bg = background::ensure(&cli.db).await?;
        let url = &bg.record.url;
        if ui.json {
            ui.json_out(&json!({"sandbox_url": url.as_str(), "pid": bg.record.pid,
                "state_file": bg.state_file, "log": bg.log_file,
                "found": match &bg.found { Found::Running => "running", Found::Started => "started", Found::Restarted { .. } => "restarted" },
                "base_urls": bg.info.base_urls}));
        } else {
            let how = match &bg.found {
                Found::Running => "was already running".to_owned(),
                Found::Started => "started".to_owned(),
                Found::Restarted { old } => format!("started (the one recorded before, {old}, was gone)"),
            };
            ui.say(format!("✓ The background sandbox of {db} {how}: {url} (process {}).", bg.record.pid));
            ui.say(format!("  use it:   konektly --sandbox connect x   (every --sandbox command on {db})"));
            ui.say(format!("  inspect:  curl {url}_sandbox/posts"));
            ui.say(format!("  log:      {}", bg.log_file.display()));
            ui.say("  stop it:  konektly sandbox --stop");
        }
        return Ok(Exit::Done);
    }
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
    Ok(Exit::Done)
}

/// Text for roff: backslashes and hyphens escaped, no line starting as a request.
fn roff_text(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') { format!("\\&{s}") } else { s }
}

/// The man page of konektly (`command: None`) or of one of its commands (`konektly-post(1)`,
/// as the main page's SUBCOMMANDS section names them), with an EXIT STATUS section.
pub fn man_page(command: Option<&str>) -> Result<Vec<u8>> {
    let mut cmd = crate::cli::Cli::command();
    cmd.build();
    let cmd = match command {
        None => cmd,
        Some(name) => {
            let sub = cmd
                .find_subcommand(name)
                .filter(|c| !c.is_hide_set())
                .ok_or_else(|| {
                    CliError::Message(format!("`{name}` is not a konektly command (see `konektly --help`)"))
                })?
                .clone();
            let (page, bin) = (format!("konektly-{}", sub.get_name()), format!("konektly {}", sub.get_name()));
            sub.name(page).bin_name(bin)
        }
    };
    let man = clap_mangen::Man::new(cmd.clone()).source(format!("konektly {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    let w = &mut out;
    let io = |e: std::io::Error| CliError::Message(format!("cannot render the man page: {e}"));
    man.render_title(w).map_err(io)?;
    man.render_name_section(w).map_err(io)?;
    man.render_synopsis_section(w).map_err(io)?;
    man.render_description_section(w).map_err(io)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w).map_err(io)?;
    }
    if cmd.get_subcommands().any(|c| !c.is_hide_set()) {
        man.render_subcommands_section(w).map_err(io)?;
    }
    out.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for (code, text) in crate::EXIT_STATUSES {
        out.extend_from_slice(format!(".TP\n\\fB{code}\\fR\n{}\n", roff_text(text)).as_bytes());
    }
    if cmd.get_version().is_some() {
        clap_mangen::Man::new(cmd).render_version_section(&mut out).map_err(io)?;
    }
    Ok(out)
}

fn label(a: &Account) -> String {
    a.handle.clone().or(a.display_name.clone()).unwrap_or_else(|| a.remote_id.clone())
}

fn account_json(a: &Account) -> Value {
    json!({"id": a.id, "platform": a.platform, "handle": a.handle, "name": a.display_name, "remote_id": a.remote_id,
        "status": a.status, "token_expires_at": a.tokens.expires_at, "scopes": a.tokens.scopes,
        "kind": a.metadata.get("kind")})
}

/// The error for a platform that is not configured, saying why and what to do.
fn not_configured(ctx: &Ctx, platform: &str) -> CliError {
    let why = ctx
        .unconfigured
        .iter()
        .find(|(p, _)| p.split('/').any(|x| x == platform))
        .map(|(_, why)| format!(": {why}"))
        .unwrap_or_default();
    CliError::Message(format!(
        "{platform} is not configured{why}. Set its app credentials (`konektly init` lists them; `konektly doctor` \
         checks them), or add --sandbox."
    ))
}

async fn cmd_connect(ctx: &Ctx, platform: &str, port: u16, no_browser: bool, timeout: u64) -> Result<Exit> {
    if ctx.engine.platform(&platform.into()).is_err() {
        return Err(not_configured(ctx, platform));
    }
    let browser = match (&ctx.sandbox, no_browser) {
        (_, true) => Browser::None,
        (Some(_), false) => Browser::Follow,
        (None, false) => Browser::System,
    };
    let owned = ctx.engine.owner(&ctx.owner);
    let blocked_before = owned.list(&TargetFilter::default().in_states(&["blocked"])).await?;
    let ui = ctx.ui.clone();
    let accounts =
        connect::connect(&ctx.engine, &ctx.owner, platform, port, browser, Duration::from_secs(timeout), |url| {
            ui.say(format!("Open this page to authorize konektly on {platform}:\n  {url}"));
            ui.say("Waiting for the redirect…");
        })
        .await?;
    // Targets that waited for these accounts are due again.
    let ids: HashSet<AccountId> = accounts.iter().map(|a| a.id).collect();
    let mut unblocked = 0;
    for t in blocked_before.iter().filter(|t| ids.contains(&t.account_id)) {
        if let Ok(Some(now)) = ctx.engine.scheduler().get(t.id).await
            && !matches!(now.state, TargetState::Blocked { .. })
        {
            unblocked += 1;
        }
    }
    if ctx.ui.json {
        ctx.ui.json_out(
            &json!({"accounts": accounts.iter().map(account_json).collect::<Vec<_>>(), "unblocked_targets": unblocked}),
        );
    } else {
        for a in &accounts {
            ctx.ui.say(format!("✓ connected {} {} ({})", a.platform, label(a), a.id));
        }
        if unblocked > 0 {
            ctx.ui.say(format!(
                "  {unblocked} target(s) that waited for this account are due again: `{}` sends them.",
                ctx.cmd("worker --until-idle")
            ));
        }
    }
    Ok(Exit::Done)
}

async fn cmd_accounts(ctx: &Ctx) -> Result<Exit> {
    let accounts = ctx.engine.accounts(&ctx.owner).await?;
    let stale: Vec<&Account> =
        accounts.iter().filter(|a| matches!(a.status, AccountStatus::ReauthRequired { .. })).collect();
    if ctx.ui.json {
        ctx.ui.json_out(&json!(accounts.iter().map(account_json).collect::<Vec<_>>()));
        return Ok(Exit::attention_if(!stale.is_empty()));
    }
    if accounts.is_empty() {
        ctx.ui.say(format!("No accounts yet for owner `{}`: `{}`.", ctx.owner, ctx.cmd("connect <platform>")));
        return Ok(Exit::Done);
    }
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.platform.to_string(),
                label(a),
                match &a.status {
                    AccountStatus::Active => "active".into(),
                    AccountStatus::ReauthRequired { reason } => format!("reconnect needed: {reason}"),
                    AccountStatus::Disconnected => "disconnected".into(),
                },
                a.tokens
                    .expires_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    ctx.ui.say(table(&["account", "platform", "handle", "status", "token expires"], &rows));
    for a in &stale {
        ctx.ui.say(format!(
            "→ reconnect {} {}: `{}`",
            a.platform,
            label(a),
            ctx.cmd(&format!("connect {}", a.platform))
        ));
    }
    Ok(Exit::attention_if(!stale.is_empty()))
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
        comments: args.comments.clone(),
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
        if ctx.engine.platform(&a.platform).is_err() {
            return Err(not_configured(ctx, a.platform.as_str()));
        }
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

async fn cmd_validate(ctx: &Ctx, args: &PostArgs) -> Result<Exit> {
    let post = build_post(ctx, args).await?;
    let vs = ctx.engine.owner(&ctx.owner).validate(&post).await?;
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"valid": vs.is_empty(), "violations": vs}));
    } else if vs.is_empty() {
        ctx.ui.say(format!("✓ valid for all {} target(s); nothing was sent", post.targets.len()));
    } else {
        ctx.ui.say(format!(
            "✗ the post breaks {} rule{} of its platforms (nothing was sent):",
            vs.len(),
            if vs.len() == 1 { "" } else { "s" }
        ));
        ctx.ui.violations(&vs);
    }
    Ok(Exit::attention_if(!vs.is_empty()))
}

async fn accounts_by_id(ctx: &Ctx) -> HashMap<AccountId, Account> {
    ctx.engine.accounts(&ctx.owner).await.unwrap_or_default().into_iter().map(|a| (a.id, a)).collect()
}

fn account_label(r: &TargetRecord, accounts: &HashMap<AccountId, Account>) -> String {
    accounts.get(&r.account_id).map(label).unwrap_or_else(|| r.account_id.to_string())
}

/// A table of targets: one line each, what happened and why (with a post column when they are
/// of several posts).
pub fn targets_table(records: &[TargetRecord], accounts: &HashMap<AccountId, Account>) -> String {
    let several = records.iter().any(|r| r.post_id != records[0].post_id);
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let (state, detail) = state_detail(r);
            let mut row = vec![r.platform.to_string(), account_label(r, accounts), state, remote_id(r), detail];
            if several {
                row.insert(0, r.post_id.to_string());
            }
            row
        })
        .collect();
    let mut headers = vec!["platform", "account", "state", "remote id", "url / detail"];
    if several {
        headers.insert(0, "post");
    }
    table(&headers, &rows)
}

/// Targets as JSON: where each stands, and why.
pub fn records_json(records: &[TargetRecord]) -> Value {
    json!(
        records
            .iter()
            .map(|r| {
                let standing = Standing::of(r);
                let (_, detail) = state_detail(r);
                let url = match &r.state {
                    TargetState::Published { remote } => remote.url.as_ref().map(|u| u.to_string()),
                    _ => None,
                };
                json!({"target": r.id, "post": r.post_id, "platform": r.platform, "account": r.account_id,
                "state": r.state.name(), "standing": standing.name(), "needs_attention": standing.needs_attention(),
                "remote_id": remote_id(r), "url": url, "detail": detail,
                "failure": match &r.state { TargetState::Failed { failure } => json!(failure), _ => Value::Null },
                "blocked_reason": match &r.state { TargetState::Blocked { reason } => json!(reason), _ => Value::Null },
                "last_error": r.last_error,
                "cancel_requested": r.cancel_requested_at.is_some(),
                "published_despite_cancel": r.published_despite_cancel(),
                "attempts": r.attempts, "due_at": r.due_at, "updated_at": r.updated_at})
            })
            .collect::<Vec<_>>()
    )
}

/// What to do next about `records`, in commands that work when copied.
fn next_steps(
    ctx: &Ctx,
    post: Option<PostId>,
    records: &[TargetRecord],
    accounts: &HashMap<AccountId, Account>,
) -> Vec<String> {
    let status = match post {
        Some(p) => ctx.cmd(&format!("status {p}")),
        None => ctx.cmd("status"),
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for r in records.iter().filter(|r| Standing::of(r) == Standing::Blocked) {
        if seen.insert(r.account_id) {
            out.push(format!(
                "→ reconnect {} {}: `{}`, then `{}` sends what waits for it",
                r.platform,
                account_label(r, accounts),
                ctx.cmd(&format!("connect {}", r.platform)),
                ctx.cmd("worker --until-idle")
            ));
        }
    }
    let tally = Tally::of(records);
    if tally.count(Standing::InProgress) > 0 {
        out.push(format!(
            "→ `{}` finishes what is still in progress; `{status}` shows where it stands",
            ctx.cmd("worker --until-idle")
        ));
    }
    if tally.count(Standing::Failed) > 0 {
        out.push(format!("→ failed targets are not tried again; the table says why (`{status}`)"));
    }
    for r in records.iter().filter(|r| Standing::of(r) == Standing::OutcomeUnknown) {
        out.push(format!(
            "→ look at {} {} on the platform: whether the post went out could not be established",
            r.platform,
            account_label(r, accounts)
        ));
    }
    out
}

/// Runs a worker until every target of `posts` has ended or waits for a person (blocked), or
/// `wait` passes.
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
                .filter(|r| !Standing::of(r).settled())
                .map(|r| format!("{} {}", r.platform, state_detail(r).0))
                .collect();
            if !open.is_empty() {
                pb.set_message(format!("waiting for {}", open.join(", ")));
            }
        }
        if all.iter().all(|r| Standing::of(r).settled()) || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ctx.ui.done(pb, "");
    let _ = tx.send(());
    let _ = h.await;
    Ok(out)
}

async fn cmd_post(ctx: &Ctx, args: &PostArgs) -> Result<Exit> {
    if let Some(queue) = &args.queue {
        return crate::queue::post_to_queue(ctx, args, queue).await;
    }
    if let Some(rule) = &args.repeat {
        return crate::queue::post_series(ctx, args, rule).await;
    }
    let post = build_post(ctx, args).await?;
    let accounts = accounts_by_id(ctx).await;
    let owned = ctx.engine.owner(&ctx.owner);
    if let Some(at) = post.publish_at {
        let id = owned.schedule(&post).await?;
        let records = owned.status(id).await?;
        return Ok(report_post(ctx, id, &records, &accounts, Some(at)));
    }
    let pb = ctx.ui.spinner(format!("publishing to {} target(s)…", post.targets.len()));
    let progress = ctx.ui.upload_progress(&ctx.engine);
    let published = owned.publish_now(&post).await;
    progress.abort();
    ctx.ui.done(pb, "");
    let mut records = published?;
    if records.iter().any(|r| !Standing::of(r).settled()) && args.wait > 0 {
        records = finish(ctx, &[post.id], Duration::from_secs(args.wait)).await?;
    }
    Ok(report_post(ctx, post.id, &records, &accounts, None))
}

/// What a post came to, in words or JSON: a headline that is true of every target, a line per
/// target, and what to do next. `scheduled_for`: the post was scheduled for then, as asked.
fn report_post(
    ctx: &Ctx,
    id: PostId,
    records: &[TargetRecord],
    accounts: &HashMap<AccountId, Account>,
    scheduled_for: Option<DateTime<Utc>>,
) -> Exit {
    let tally = Tally::of(records);
    let n = tally.total;
    let (outcome, headline) = if scheduled_for.is_some() && tally.all(Standing::Scheduled) {
        let at = scheduled_for.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
        (
            "scheduled",
            format!(
                "✓ Post {id} is scheduled for {at} on {n} target(s); `{}` publishes it when it is due.",
                ctx.cmd("worker")
            ),
        )
    } else if tally.all(Standing::Published) {
        (
            "published",
            format!(
                "✓ Post {id} is published on {}.",
                if n == 1 { "its target".to_owned() } else { format!("all {n} targets") }
            ),
        )
    } else if tally.needs_attention() || tally.count(Standing::Cancelled) > 0 {
        let line = if tally.count(Standing::Published) == 0 {
            format!("✗ Post {id} did not go out: {}.", tally.words())
        } else {
            format!("✗ Post {id}, not everywhere: {}.", tally.words())
        };
        ("needs_attention", line)
    } else {
        let line = if tally.count(Standing::Published) == 0 {
            format!("… Post {id} is not out yet: {}.", tally.words())
        } else {
            format!("… Post {id}, not everywhere yet: {}.", tally.words())
        };
        ("in_progress", line)
    };
    let exit = Exit::attention_if(!matches!(outcome, "published" | "scheduled"));
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"post": id, "outcome": outcome, "scheduled_for": scheduled_for,
            "tally": tally.json(), "targets": records_json(records)}));
    } else {
        ctx.ui.say(headline);
        ctx.ui.say(targets_table(records, accounts));
        for line in next_steps(ctx, Some(id), records, accounts) {
            ctx.ui.say(line);
        }
    }
    exit
}

fn parse_post(s: &str) -> Result<PostId> {
    s.parse().map_err(|_| CliError::Message(format!("`{s}` is not a post id")))
}

/// How many targets `status` without a post shows: the latest.
const STATUS_LATEST: usize = 50;

async fn cmd_status(ctx: &Ctx, post: Option<&str>) -> Result<Exit> {
    let post = post.map(parse_post).transpose()?;
    let owned = ctx.engine.owner(&ctx.owner);
    let mut records = match post {
        Some(p) => owned.status(p).await?,
        // The store lists by due time; the latest are the last created.
        None => owned.list(&TargetFilter::default()).await?,
    };
    records.sort_by_key(|r| (r.created_at, r.post_id));
    let total = records.len();
    let records = records.split_off(total.saturating_sub(STATUS_LATEST));
    let tally = Tally::of(&records);
    if ctx.ui.json {
        ctx.ui.json_out(&records_json(&records));
    } else if records.is_empty() {
        ctx.ui.say(format!("Nothing yet for owner `{}`: `{}`.", ctx.owner, ctx.cmd("post --to <account> --text …")));
    } else {
        let accounts = accounts_by_id(ctx).await;
        ctx.ui.say(targets_table(&records, &accounts));
        if total > records.len() {
            ctx.ui.say(format!(
                "The latest {} of {total} targets: {}. `{}` shows one post's.",
                records.len(),
                tally.words(),
                ctx.cmd("status POST")
            ));
        } else {
            ctx.ui.say(format!("{} target(s): {}.", tally.total, tally.words()));
        }
        for line in next_steps(ctx, post, &records, &accounts) {
            ctx.ui.say(line);
        }
    }
    Ok(Exit::attention_if(tally.needs_attention()))
}

/// How far ahead a scheduled target may be due for `worker --until-idle` to wait for it.
const IDLE_HORIZON: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Whether nothing of `records` is left to do now: nothing in flight, processing or being
/// checked, and nothing due within [`IDLE_HORIZON`].
fn idle(records: &[TargetRecord], now: DateTime<Utc>) -> bool {
    records.iter().all(|r| match r.state {
        TargetState::Scheduled => r.due_at > now + IDLE_HORIZON,
        TargetState::InFlight | TargetState::Processing | TargetState::Unknown => false,
        _ => true,
    })
}

/// What a worker did, from its events.
#[derive(Default)]
struct WorkerTally {
    published: HashSet<konektly_core::TargetId>,
    failed: HashSet<konektly_core::TargetId>,
    unknown: HashSet<konektly_core::TargetId>,
}

/// Says what a worker does, event by event, and counts its outcomes.
struct WorkerPrinter {
    ui: Ui,
    engine: Konektly,
    accounts: HashMap<AccountId, Account>,
    again: String,
    tally: Arc<std::sync::Mutex<WorkerTally>>,
}

impl WorkerPrinter {
    /// Handles events until `stop`, then those already sent, and ends.
    async fn run(
        self,
        mut events: tokio::sync::broadcast::Receiver<konektly_core::Event>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        loop {
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Ok(ev) => self.handle(ev).await,
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                _ = &mut stop => loop {
                    match events.try_recv() {
                        Ok(ev) => self.handle(ev).await,
                        Err(TryRecvError::Lagged(_)) => {}
                        Err(_) => return,
                    }
                },
            }
        }
    }

    async fn handle(&self, ev: konektly_core::Event) {
        use konektly_core::Event;
        {
            let mut t = self.tally.lock().unwrap_or_else(|p| p.into_inner());
            match &ev {
                Event::Published { target, .. } => {
                    t.published.insert(*target);
                }
                Event::Failed { target, failure, .. } if failure.kind == konektly_core::ErrorKind::OutcomeUnknown => {
                    t.unknown.insert(*target);
                }
                Event::Failed { target, .. } => {
                    t.failed.insert(*target);
                }
                _ => {}
            }
        }
        if self.ui.json {
            self.ui.json_line(&serde_json::to_value(&ev).unwrap_or_default());
            return;
        }
        let about = |target: konektly_core::TargetId| async move {
            match self.engine.scheduler().get(target).await {
                Ok(Some(r)) => format!("{} {} (post {})", r.platform, account_label(&r, &self.accounts), r.post_id),
                _ => format!("target {target}"),
            }
        };
        let line = match ev {
            Event::Published { target, remote, .. } => format!(
                "✓ {}: published {}",
                about(target).await,
                remote.url.map(|u| u.to_string()).unwrap_or(remote.id)
            ),
            Event::Failed { target, failure, .. } if failure.kind == konektly_core::ErrorKind::OutcomeUnknown => {
                format!(
                    "✗ {}: outcome unknown — {}; check the account, it may or may not be live",
                    about(target).await,
                    failure.message
                )
            }
            Event::Failed { target, failure, .. } => {
                format!("✗ {}: failed — {}", about(target).await, failure.message)
            }
            Event::Retrying { target, failure } => {
                format!("… {}: will try again — {}", about(target).await, failure.message)
            }
            Event::Processing { target } => {
                format!("· {}: the platform is processing it", about(target).await)
            }
            Event::ReauthRequired { account, reason } => {
                let (platform, who) = match self.accounts.get(&account) {
                    Some(a) => (a.platform.to_string(), label(a)),
                    None => ("<platform>".to_owned(), account.to_string()),
                };
                format!(
                    "! {platform} {who} must be reconnected ({reason}); its targets wait, blocked: `{} connect {platform}`",
                    self.again
                )
            }
            _ => return,
        };
        self.ui.say(line);
    }
}

/// How often a running worker removes media no unfinished post refers to.
const MEDIA_COLLECT_EVERY: Duration = Duration::from_secs(600);

async fn cmd_worker(ctx: &Ctx, until_idle: bool) -> Result<Exit> {
    let events = ctx.engine.subscribe();
    let printer = WorkerPrinter {
        ui: ctx.ui.clone(),
        engine: ctx.engine.clone(),
        accounts: accounts_by_id(ctx).await,
        again: ctx.again.clone(),
        tally: Default::default(),
    };
    let tally = printer.tally.clone();
    let (stop_printer, stopped) = tokio::sync::oneshot::channel::<()>();
    let printer = tokio::spawn(printer.run(events, stopped));
    let worker = ctx.engine.worker();
    let worker_id = worker.id().to_string();
    ctx.ui.say(format!(
        "worker {worker_id} running{}",
        if until_idle { " until nothing is left to do now" } else { "; Ctrl-C stops it" }
    ));
    let owned_engine = ctx.engine.clone();
    let owner = ctx.owner.clone();
    let shutdown = async move {
        if until_idle {
            let open = ["scheduled", "in_flight", "processing", "unknown"];
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let f = TargetFilter::default().in_states(&open);
                if let Ok(all) = owned_engine.owner(&owner).list(&f).await
                    && idle(&all, Utc::now())
                {
                    break;
                }
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    let progress = ctx.ui.upload_progress(&ctx.engine);
    // Media no unfinished post refers to any more are removed every few minutes and at the end.
    let collector = ctx.engine.clone();
    let collector_ui = ctx.ui.clone();
    let collecting = tokio::spawn(async move {
        let mut every = tokio::time::interval(MEDIA_COLLECT_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            if let Err(e) = collector.collect_media(Duration::ZERO).await {
                collector_ui.note(format!("note: the media store could not be cleaned up: {e}"));
            }
        }
    });
    // Recurring series create their next occurrences every minute (and once now); published
    // posts' metrics are snapshotted on their schedule.
    let series = crate::queue::series_task(ctx);
    let report = worker.run(shutdown).await;
    progress.abort();
    collecting.abort();
    series.abort();
    let report = report?;
    let media_removed = match ctx.engine.collect_media(Duration::ZERO).await {
        Ok(c) => c.removed.len(),
        Err(e) => {
            ctx.ui.note(format!("note: the media store could not be cleaned up: {e}"));
            0
        }
    };
    // Every event of the worker was sent before `run` returned: the printer takes them all, then ends.
    let _ = stop_printer.send(());
    let _ = printer.await;

    let owned = ctx.engine.owner(&ctx.owner);
    let open = owned
        .list(&TargetFilter::default().in_states(&["scheduled", "in_flight", "processing", "unknown", "blocked"]))
        .await?;
    let blocked: Vec<&TargetRecord> = open.iter().filter(|r| matches!(r.state, TargetState::Blocked { .. })).collect();
    let later: Vec<&TargetRecord> = open.iter().filter(|r| matches!(r.state, TargetState::Scheduled)).collect();
    let busy = open.len() - blocked.len() - later.len();
    let (published, failed, unknown) = {
        let t = tally.lock().unwrap_or_else(|p| p.into_inner());
        (t.published.len(), t.failed.len(), t.unknown.len())
    };
    let attention = failed + unknown + blocked.len() > 0;
    if ctx.ui.json {
        ctx.ui.json_line(&json!({"worker": worker_id, "claimed": report.claimed, "abandoned": report.abandoned,
            "published": published, "failed": failed, "outcome_unknown": unknown, "blocked": blocked.len(),
            "scheduled_later": later.len(), "in_progress": busy,
            "next_due": later.iter().map(|r| r.due_at).min(), "media_removed": media_removed,
            "outcome": if attention { "needs_attention" } else { "done" }}));
    } else {
        let mut parts = vec![format!("{published} published")];
        if failed > 0 {
            parts.push(format!("{failed} failed"));
        }
        if unknown > 0 {
            parts.push(format!("{unknown} with an unknown outcome"));
        }
        ctx.ui.say(format!("worker stopped: {} (of {} target(s) it took up).", parts.join(", "), report.claimed));
        if !blocked.is_empty() {
            let accounts = accounts_by_id(ctx).await;
            let mut platforms: Vec<String> = blocked.iter().map(|r| r.platform.to_string()).collect();
            platforms.sort();
            platforms.dedup();
            ctx.ui.say(format!(
                "✗ {} target(s) of owner `{}` wait, blocked, for their account to be reconnected:",
                blocked.len(),
                ctx.owner
            ));
            let owned_blocked: Vec<TargetRecord> = blocked.iter().map(|r| (*r).clone()).collect();
            for line in next_steps(ctx, None, &owned_blocked, &accounts) {
                ctx.ui.say(format!("  {line}"));
            }
        }
        if let Some(next) = later.iter().map(|r| r.due_at).min() {
            ctx.ui.say(format!(
                "· {} target(s) are scheduled later (the next at {} UTC): run a worker then, or keep one running.",
                later.len(),
                next.format("%Y-%m-%d %H:%M:%S")
            ));
        }
        if busy > 0 {
            ctx.ui.say(format!("· {busy} target(s) are still in progress: a worker finishes them."));
        }
    }
    Ok(Exit::attention_if(attention))
}

async fn cmd_delete(ctx: &Ctx, post: &str) -> Result<Exit> {
    let id = parse_post(post)?;
    let owned = ctx.engine.owner(&ctx.owner);
    let results = owned.delete(id).await?;
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if ctx.ui.json {
        let items: Vec<Value> = results
            .iter()
            .map(|(t, r)| match r {
                Ok(rec) => json!({"target": t, "platform": rec.platform, "deleted": true}),
                Err(e) => json!({"target": t, "deleted": false, "error": e.to_string()}),
            })
            .collect();
        ctx.ui.json_out(&json!({"post": id, "targets": items}));
        return Ok(Exit::attention_if(failed > 0));
    }
    if results.is_empty() {
        ctx.ui.say(format!("· Post {id} has no published target: nothing to delete (cancel what is pending)."));
    }
    for (t, r) in &results {
        match r {
            Ok(rec) => ctx.ui.say(format!("✓ Deleted target {t} on {}.", rec.platform)),
            Err(e) => ctx.ui.say(format!("✗ Target {t}: {e}")),
        }
    }
    Ok(Exit::attention_if(failed > 0))
}

async fn cmd_cancel(ctx: &Ctx, post: &str) -> Result<Exit> {
    let id = parse_post(post)?;
    let owned = ctx.engine.owner(&ctx.owner);
    let before = owned.status(id).await?;
    let open_before: HashSet<konektly_core::TargetId> =
        before.iter().filter(|r| !r.state.is_final()).map(|r| r.id).collect();
    let report = owned.cancel(id).await?;
    let after = owned.status(id).await?;
    let cancelled =
        after.iter().filter(|r| open_before.contains(&r.id) && matches!(r.state, TargetState::Cancelled)).count();
    let being_published: Vec<&TargetRecord> =
        after.iter().filter(|r| !r.state.is_final() && r.cancel_requested_at.is_some()).collect();
    let published: Vec<&TargetRecord> =
        after.iter().filter(|r| matches!(r.state, TargetState::Published { .. })).collect();
    let uncancelled = open_before.len().saturating_sub(cancelled + being_published.len());
    let attention = !being_published.is_empty() || !published.is_empty() || uncancelled > 0;
    let outcome = if open_before.is_empty() {
        "nothing_to_cancel"
    } else if attention {
        "needs_attention"
    } else {
        "cancelled"
    };
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"post": id, "outcome": outcome, "cancelled": cancelled,
            "being_published": being_published.len(), "already_published": published.len(),
            "not_cancelled": uncancelled, "cancel_requested": report.requested,
            "targets": records_json(&after)}));
        return Ok(Exit::attention_if(attention));
    }
    let status = ctx.cmd(&format!("status {id}"));
    if open_before.is_empty() {
        ctx.ui.say(format!(
            "{} Nothing to cancel: the {} target(s) of post {id} had already ended ({}).",
            if attention { "✗" } else { "·" },
            after.len(),
            Tally::of(&after).words()
        ));
    } else {
        let of = if cancelled == open_before.len() {
            format!("{cancelled} target(s)")
        } else {
            format!("{cancelled} of the {} target(s) that had not ended", open_before.len())
        };
        ctx.ui.say(format!(
            "{} Cancelled {of} of post {id}: nothing of them was or will be sent.",
            if attention { "✗" } else { "✓" }
        ));
    }
    if !being_published.is_empty() {
        ctx.ui.say(format!(
            "✗ {} target(s) could not be cancelled: they are being published ({}). Each ends cancelled if \
             nothing lands, or published, with its URL, if the platform published it first: `{status}` shows which.",
            being_published.len(),
            being_published.iter().map(|r| r.platform.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    if uncancelled > 0 {
        ctx.ui.say(format!("✗ {uncancelled} target(s) changed while being cancelled and were not: `{status}`."));
    }
    for r in &published {
        ctx.ui.say(format!(
            "✗ {} was already published: {} (a cancel does not delete a published post)",
            r.platform,
            state_detail(r).1
        ));
    }
    Ok(Exit::attention_if(attention))
}

async fn cmd_disconnect(ctx: &Ctx, account: &str) -> Result<Exit> {
    let a = app::resolve_account(&ctx.engine, &ctx.owner, account).await?;
    let owned = ctx.engine.owner(&ctx.owner);
    let open_before: HashSet<konektly_core::TargetId> =
        owned.list(&TargetFilter::account(a.id)).await?.iter().filter(|r| !r.state.is_final()).map(|r| r.id).collect();
    owned.disconnect(a.id).await?;
    let after = owned.list(&TargetFilter::account(a.id)).await?;
    let cancelled =
        after.iter().filter(|r| open_before.contains(&r.id) && matches!(r.state, TargetState::Cancelled)).count();
    let being_published: Vec<&TargetRecord> = after.iter().filter(|r| !r.state.is_final()).collect();
    // Instagram has no revocation endpoint (konektly-meta says so, and the engine goes on).
    let revocable = a.platform.as_str() != "instagram";
    let grant = if revocable {
        "its grant was revoked at the platform (or was already no longer valid there)".to_owned()
    } else {
        "Instagram cannot revoke a grant through its API: remove the app in the account's settings \
         (Settings → Apps and websites) to end it"
            .to_owned()
    };
    if ctx.ui.json {
        ctx.ui.json_out(&json!({"disconnected": a.id, "platform": a.platform, "handle": a.handle,
            "grant": if revocable { "revoked" } else { "not_revocable" },
            "cancelled": cancelled, "being_published": being_published.len(),
            "outcome": if being_published.is_empty() { "disconnected" } else { "needs_attention" }}));
    } else {
        ctx.ui.say(format!(
            "✓ disconnected {} {} ({}): {grant}; konektly forgot the account and its tokens.",
            a.platform,
            label(&a),
            a.id
        ));
        if cancelled > 0 {
            ctx.ui.say(format!("  {cancelled} target(s) waiting for it were cancelled."));
        }
        if !being_published.is_empty() {
            let posts: HashSet<PostId> = being_published.iter().map(|r| r.post_id).collect();
            ctx.ui.say(format!(
                "✗ {} target(s) were being published and could not be stopped: {}",
                being_published.len(),
                posts.iter().map(|p| format!("`{}`", ctx.cmd(&format!("status {p}")))).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(Exit::attention_if(!being_published.is_empty()))
}

async fn cmd_export(ctx: &Ctx, account: &str) -> Result<Exit> {
    let a = app::resolve_account(&ctx.engine, &ctx.owner, account).await?;
    let v = ctx.store.data.export_account(a.id).await?;
    ctx.ui.json_out(&v);
    Ok(Exit::Done)
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

    fn target_due(state: TargetState, due_in_secs: i64) -> TargetRecord {
        let post = Post::new(OwnerId::new("o"), Content::text("hi")).to(Target::new(AccountId::new()));
        let mut r = TargetRecord::new(&post, &post.targets[0], "x".into(), now());
        r.state = state;
        r.due_at = now() + chrono::TimeDelta::seconds(due_in_secs);
        r
    }

    #[test]
    fn a_worker_is_idle_when_nothing_is_due_soon_or_under_way() {
        assert!(idle(&[], now()));
        assert!(idle(&[target_due(TargetState::Scheduled, 3600)], now()), "tomorrow's post is not waited for");
        assert!(!idle(&[target_due(TargetState::Scheduled, 5)], now()), "a retry in 5 s is");
        assert!(!idle(&[target_due(TargetState::Scheduled, -5)], now()), "nor one already due");
        for busy in [TargetState::InFlight, TargetState::Processing, TargetState::Unknown] {
            assert!(!idle(&[target_due(busy, 3600)], now()));
        }
        assert!(
            idle(&[target_due(TargetState::Blocked { reason: "r".into() }, -5)], now()),
            "blocked waits for a person"
        );
    }

    #[test]
    fn suggested_commands_are_quoted_for_a_shell() {
        assert_eq!(shell_quote("konektly.db"), "konektly.db");
        assert_eq!(shell_quote("my db"), "'my db'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
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
    }
}
