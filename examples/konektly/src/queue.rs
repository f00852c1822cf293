//! `konektly queue …` and `konektly post --queue NAME`: posting queues with weekly slots.

use konektly_core::PostId;
use konektly_core::queue::{Queues, SlotPlan};

use crate::cli::{PostArgs, QueueAction, SeriesAction};
use crate::commands::{Ctx, build_post};
use crate::ui::table;
use crate::{CliError, Exit, Result, app};

fn queues(ctx: &Ctx) -> Queues {
    Queues::new(ctx.engine.clone(), ctx.store.queues.clone())
}

fn post_id(s: &str) -> Result<PostId> {
    s.parse().map_err(|_| CliError::Message(format!("`{s}` is not a post id")))
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `konektly post --queue NAME`: the post at the queue's next free slot.
pub async fn post_to_queue(ctx: &Ctx, args: &PostArgs, queue: &str) -> Result<Exit> {
    let qs = queues(ctx);
    let q = qs.get(&ctx.owner, queue).await?;
    let mut args = args.clone();
    if args.to.is_empty() {
        args.to = q.accounts.iter().map(|a| a.to_string()).collect();
    }
    let post = build_post(ctx, &args).await?;
    let queued = qs.add(&ctx.owner, queue, post).await?;
    if ctx.ui.json {
        ctx.ui.json_out(&serde_json::json!({"post": queued.post, "queue": q.name, "slot_at": queued.slot_at}));
    } else {
        ctx.ui.say(format!(
            "✓ Post {} is queued in {} for {}{}; `{}` publishes it when it is due.",
            queued.post,
            q.name,
            when(queued.slot_at),
            if q.paused { " (the queue is paused: it waits until `queue resume`)" } else { "" },
            ctx.cmd("worker")
        ));
    }
    Ok(Exit::Done)
}

/// `konektly queue …`.
pub async fn cmd_queue(ctx: &Ctx, action: &QueueAction) -> Result<Exit> {
    let qs = queues(ctx);
    let owner = &ctx.owner;
    match action {
        QueueAction::Create { name, to, tz, slots } => {
            let plan = SlotPlan::parse(tz, slots)?;
            let mut accounts = Vec::new();
            for spec in to {
                accounts.push(app::resolve_account(&ctx.engine, owner, spec).await?.id);
            }
            let q = qs.create(owner, name, &accounts, plan).await?;
            let next: Vec<String> = q.plan.slots_after(chrono::Utc::now())?.take(3).map(when).collect();
            ctx.ui.say(format!("✓ Queue {} ({}), next slots: {}", q.name, q.plan, next.join(", ")));
        }
        QueueAction::Show { name: None } => {
            let rows: Vec<Vec<String>> = qs
                .list(owner)
                .await?
                .iter()
                .map(|q| {
                    vec![
                        q.name.clone(),
                        q.plan.to_string(),
                        q.accounts.len().to_string(),
                        if q.paused { "paused".into() } else { "active".into() },
                    ]
                })
                .collect();
            ctx.ui.say(table(&["QUEUE", "SLOTS", "ACCOUNTS", "STATE"], &rows));
        }
        QueueAction::Show { name: Some(name) } => {
            let q = qs.get(owner, name).await?;
            let pending = qs.pending(owner, name).await?;
            if ctx.ui.json {
                ctx.ui.json_out(&serde_json::json!({"queue": q, "pending": pending}));
                return Ok(Exit::Done);
            }
            ctx.ui.say(format!("{} — {}{}", q.name, q.plan, if q.paused { " (paused)" } else { "" }));
            let rows: Vec<Vec<String>> = pending.iter().map(|p| vec![when(p.slot_at), p.post.to_string()]).collect();
            ctx.ui.say(table(&["SLOT", "POST"], &rows));
        }
        QueueAction::Plan { name, tz, slots } => {
            let moved = qs.set_plan(owner, name, SlotPlan::parse(tz, slots)?).await?;
            ctx.ui.say(format!("✓ {name}: new slots; {} pending post(s) moved in order", moved.len()));
        }
        QueueAction::Pause { name } => {
            qs.pause(owner, name).await?;
            ctx.ui.say(format!("✓ {name} is paused; its posts wait"));
        }
        QueueAction::Resume { name } => {
            let moved = qs.resume(owner, name).await?;
            ctx.ui.say(format!("✓ {name} resumed; {} pending post(s) take the next slots", moved.len()));
        }
        QueueAction::Reorder { name, posts } => {
            let order = posts.iter().map(|p| post_id(p)).collect::<Result<Vec<_>>>()?;
            qs.reorder(owner, name, &order).await?;
            ctx.ui.say(format!("✓ {name} reordered"));
        }
        QueueAction::Shuffle { name } => {
            qs.shuffle(owner, name).await?;
            ctx.ui.say(format!("✓ {name} shuffled"));
        }
        QueueAction::Now { name, post } => {
            qs.post_now(owner, name, post_id(post)?).await?;
            ctx.ui.say(format!("✓ {post} is due now; `{}` publishes it", ctx.cmd("worker")));
        }
        QueueAction::Remove { name, post } => {
            let r = qs.remove(owner, name, post_id(post)?).await?;
            ctx.ui.say(format!(
                "✓ {post} removed from {name} ({} cancelled, {} cancel requested)",
                r.cancelled, r.requested
            ));
        }
        QueueAction::Delete { name } => {
            qs.delete(owner, name).await?;
            ctx.ui.say(format!("✓ queue {name} deleted; its posts stay scheduled"));
        }
    }
    Ok(Exit::Done)
}

fn runner(ctx: &Ctx) -> konektly_core::series::SeriesRunner {
    konektly_core::series::SeriesRunner::new(ctx.engine.clone(), ctx.store.series.clone())
}

/// Creates the next occurrences of every series and takes the metric snapshots that are due,
/// now and every minute, until aborted.
pub fn series_task(ctx: &Ctx) -> tokio::task::JoinHandle<()> {
    let r = runner(ctx);
    let analytics = konektly_core::analytics::Analytics::new(ctx.engine.clone(), ctx.store.metrics.clone());
    let ui = ctx.ui.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            if let Err(e) = r.materialize_all(chrono::Utc::now()).await {
                ui.note(format!("note: recurring posts could not be created: {e}"));
            }
            if let Err(e) = analytics.snapshot_due(chrono::Utc::now()).await {
                ui.note(format!("note: metrics could not be read: {e}"));
            }
        }
    })
}

/// A sparkline of `values` (▁ to █).
pub fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (lo, hi) = (values.iter().min().copied().unwrap_or(0), values.iter().max().copied().unwrap_or(0));
    values.iter().map(|v| if hi == lo { BARS[3] } else { BARS[((v - lo) * 7 / (hi - lo)) as usize] }).collect()
}

fn num(v: Option<u64>) -> String {
    v.map_or("—".into(), |v| v.to_string())
}

/// `konektly stats <post>` / `konektly stats --account X`.
pub async fn cmd_stats(ctx: &Ctx, post: Option<&str>, account: Option<&str>) -> Result<Exit> {
    let analytics = konektly_core::analytics::Analytics::new(ctx.engine.clone(), ctx.store.metrics.clone());
    if let Some(spec) = account {
        let a = app::resolve_account(&ctx.engine, &ctx.owner, spec).await?;
        let m = analytics.account_metrics(&ctx.owner, a.id).await?;
        if ctx.ui.json {
            ctx.ui.json_out(&serde_json::to_value(&m).unwrap_or_default());
        } else {
            ctx.ui.say(format!(
                "{} {}: followers {}, following {}, posts {}, views {}",
                a.platform,
                a.handle.as_deref().unwrap_or(&a.remote_id),
                num(m.followers),
                num(m.following),
                num(m.posts),
                num(m.views)
            ));
            for (k, why) in &m.unavailable {
                ctx.ui.say(format!("  {k}: {why}"));
            }
        }
        return Ok(Exit::Done);
    }
    let Some(post) = post else {
        return Err(CliError::Message("name a post (`konektly stats POST`) or an account (`--account x`)".into()));
    };
    let targets = ctx.engine.owner(&ctx.owner).status(post_id(post)?).await?;
    let mut out = Vec::new();
    let mut rows = Vec::new();
    for t in &targets {
        if !matches!(t.state, konektly_core::TargetState::Published { .. }) {
            rows.push(vec![
                t.platform.to_string(),
                t.state.name().to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            continue;
        }
        let now = analytics.post_metrics(&ctx.owner, t.id).await;
        let series = analytics.series(&ctx.owner, t.id).await.unwrap_or_default();
        let mut imps: Vec<u64> = series.iter().filter_map(|s| s.metrics.impressions).collect();
        match &now {
            Ok(m) => {
                imps.extend(m.impressions);
                rows.push(vec![
                    t.platform.to_string(),
                    num(m.impressions),
                    num(m.likes),
                    num(m.comments),
                    num(m.shares),
                    sparkline(&imps),
                ]);
            }
            Err(e) => rows.push(vec![
                t.platform.to_string(),
                format!("({e})"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
        out.push(serde_json::json!({"target": t.id, "now": now.as_ref().ok(), "error": now.as_ref().err().map(|e| e.to_string()), "snapshots": series}));
    }
    if ctx.ui.json {
        ctx.ui.json_out(&serde_json::json!(out));
    } else {
        ctx.ui.say(table(&["PLATFORM", "IMPRESSIONS", "LIKES", "COMMENTS", "SHARES", "OVER TIME"], &rows));
    }
    Ok(Exit::Done)
}

/// `konektly post --repeat RULE`: a series from --at (default now) in --tz.
pub async fn post_series(ctx: &Ctx, args: &PostArgs, rule: &str) -> Result<Exit> {
    use konektly_core::series::{MissedPolicy, Recurrence, Series, SeriesId};
    let rule = Recurrence::parse(rule)?;
    let mut plain = args.clone();
    plain.at = None;
    let template = build_post(ctx, &plain).await?;
    let first = match &args.at {
        Some(at) => crate::commands::parse_at(at)?,
        None => chrono::Utc::now(),
    };
    let zone = jiff::tz::TimeZone::get(&args.tz).map_err(|e| CliError::Message(format!("--tz {}: {e}", args.tz)))?;
    let local = jiff::Timestamp::from_second(first.timestamp())
        .map_err(|e| CliError::Message(e.to_string()))?
        .to_zoned(zone)
        .datetime();
    let series = Series {
        id: SeriesId::new(),
        owner: ctx.owner.clone(),
        rule,
        time_zone: args.tz.clone(),
        start: local.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        template,
        variants: args.variants.clone(),
        missed: if args.missed == "latest-once" { MissedPolicy::PublishLatestOnce } else { MissedPolicy::Skip },
        horizon_secs: 7 * 86_400,
        grace_secs: 15 * 60,
        paused: false,
        next: 0,
        end_before: None,
        overrides: Default::default(),
        version: 0,
    };
    let s = runner(ctx).create(series).await?;
    let next: Vec<String> = s.rule.occurrences(&s.time_zone, &s.start)?.take(3).map(|(_, t)| when(t)).collect();
    ctx.ui.say(format!(
        "✓ Series {} created: {}…; the next week's posts are scheduled, `{}` creates the rest as they come",
        s.id,
        next.join(", "),
        ctx.cmd("worker")
    ));
    Ok(Exit::Done)
}

fn series_id(s: &str) -> Result<konektly_core::series::SeriesId> {
    s.parse().map_err(|_| CliError::Message(format!("`{s}` is not a series id")))
}

/// `konektly series …`.
pub async fn cmd_series(ctx: &Ctx, action: &SeriesAction) -> Result<Exit> {
    let r = runner(ctx);
    let owner = &ctx.owner;
    match action {
        SeriesAction::List => {
            let rows: Vec<Vec<String>> = ctx
                .store
                .series
                .list_series(Some(owner))
                .await?
                .iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        format!("{} ({})", s.start, s.time_zone),
                        s.next.to_string(),
                        if s.paused { "paused".into() } else { "active".into() },
                    ]
                })
                .collect();
            ctx.ui.say(table(&["SERIES", "FROM", "CREATED", "STATE"], &rows));
        }
        SeriesAction::Pause { id } => {
            r.pause(owner, series_id(id)?).await?;
            ctx.ui.say(format!("✓ series {id} paused"));
        }
        SeriesAction::Resume { id } => {
            let m = r.resume(owner, series_id(id)?).await?;
            ctx.ui.say(format!(
                "✓ series {id} resumed: {} post(s) created, {} missed occurrence(s) skipped",
                m.created.len(),
                m.skipped.len()
            ));
        }
        SeriesAction::Skip { id, n } => {
            if *n == 0 {
                return Err(CliError::Message("occurrences are numbered from 1".into()));
            }
            r.skip(owner, series_id(id)?, n - 1).await?;
            ctx.ui.say(format!("✓ occurrence {n} of series {id} skipped"));
        }
        SeriesAction::Delete { id } => {
            r.delete(owner, series_id(id)?).await?;
            ctx.ui.say(format!("✓ series {id} deleted; its created posts stay scheduled"));
        }
    }
    Ok(Exit::Done)
}
