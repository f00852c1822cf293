//! `konektly queue …` and `konektly post --queue NAME`: posting queues with weekly slots.

use konektly_core::PostId;
use konektly_core::queue::{Queues, SlotPlan};

use crate::cli::{PostArgs, QueueAction};
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
