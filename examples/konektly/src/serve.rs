//! `konektly serve` (the HTTP API, webhooks and console, with workers in the same process
//! unless `--no-workers`) and `konektly keys` (its API keys).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use konektly_server::{Server, ServerConfig};
use url::Url;

use crate::cli::KeysAction;
use crate::commands::Ctx;
use crate::ui::table;
use crate::{CliError, Exit, Result};

/// The limits and webhook timing of `konektly serve` (each absent one keeps the server's default).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServeTuning {
    /// The largest media upload, in bytes [default: 4 GiB].
    #[arg(long, value_name = "BYTES")]
    pub max_media_bytes: Option<u64>,
    /// How long one webhook delivery attempt may take, in milliseconds [default: 15000].
    #[arg(long, value_name = "MS")]
    pub webhook_timeout_ms: Option<u64>,
    /// The first webhook retry's delay, in milliseconds; each next one doubles [default: 5000].
    #[arg(long, value_name = "MS")]
    pub webhook_first_backoff_ms: Option<u64>,
    /// The longest wait between two webhook attempts, in milliseconds [default: 3600000].
    #[arg(long, value_name = "MS")]
    pub webhook_max_backoff_ms: Option<u64>,
}

impl ServeTuning {
    /// Applies the options given to `config`.
    pub fn apply(&self, config: &mut ServerConfig) {
        if let Some(n) = self.max_media_bytes {
            config.max_media_bytes = n;
        }
        let ms = Duration::from_millis;
        if let Some(n) = self.webhook_timeout_ms {
            config.dispatch.timeout = ms(n.max(1));
        }
        if let Some(n) = self.webhook_first_backoff_ms {
            config.dispatch.first_backoff = ms(n);
        }
        if let Some(n) = self.webhook_max_backoff_ms {
            config.dispatch.max_backoff = ms(n);
        }
    }
}

/// Serves until Ctrl-C.
pub async fn cmd_serve(
    ctx: &Ctx,
    listen: SocketAddr,
    public_url: Option<Url>,
    no_workers: bool,
    rate_limit: u32,
    tuning: &ServeTuning,
) -> Result<Exit> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Message(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| CliError::Message(e.to_string()))?;
    let public = match public_url {
        Some(u) => u,
        None => Url::parse(&format!("http://{bound}")).map_err(|e| CliError::Message(e.to_string()))?,
    };
    let mut config = ServerConfig::new(public.clone());
    config.requests_per_minute = rate_limit;
    tuning.apply(&mut config);
    let server = Server::new(ctx.engine.clone(), ctx.store.server.clone(), config);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = (!no_workers).then(|| {
        let w = ctx.engine.worker();
        let mut rx = stop_rx.clone();
        tokio::spawn(w.run(async move {
            let _ = rx.wait_for(|s| *s).await;
        }))
    });
    ctx.ui.say(format!(
        "konektly serving at {public} (API reference {public}v1/docs, OpenAPI {public}v1/openapi.json){}",
        if no_workers { "; publishing is left to `konektly worker` processes" } else { ", with a worker" }
    ));
    let keys = ctx.store.server.list_api_keys(Some(&ctx.owner)).await?;
    if keys.iter().all(|k| k.revoked_at.is_some()) {
        ctx.ui.note(format!("note: owner `{}` has no API key yet: `{}` makes one", ctx.owner, ctx.cmd("keys create")));
    }
    let mut rx = stop_rx.clone();
    let shutdown = async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let stopper = tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    server.serve(listener, shutdown).await.map_err(|e| CliError::Message(format!("the server stopped: {e}")))?;
    stopper.abort();
    if let Some(w) = worker {
        let _ = w.await;
    }
    Ok(Exit::Done)
}

/// `konektly keys create|list|revoke`.
pub async fn cmd_keys(ctx: &Ctx, action: &KeysAction) -> Result<Exit> {
    let store: &Arc<dyn konektly_store::ServerStore> = &ctx.store.server;
    match action {
        KeysAction::Create { name, admin } => {
            let owner = (!admin).then_some(&ctx.owner);
            let issued = store.create_api_key(owner, *admin, name).await?;
            if ctx.ui.json {
                ctx.ui.json_out(&serde_json::json!({ "key": issued.key, "token": issued.token.expose() }));
            } else {
                ctx.ui.say(format!(
                    "{} key {} for {}; it is shown once, keep it:\n{}",
                    if *admin { "admin" } else { "API" },
                    issued.key.id,
                    if *admin { "every owner".to_owned() } else { format!("owner `{}`", ctx.owner) },
                    issued.token.expose()
                ));
            }
        }
        KeysAction::List { all } => {
            let keys = store.list_api_keys(if *all { None } else { Some(&ctx.owner) }).await?;
            if ctx.ui.json {
                ctx.ui.json_out(&serde_json::to_value(&keys).unwrap_or_default());
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.id.clone(),
                            k.owner.as_ref().map_or("(admin)".into(), |o| o.to_string()),
                            k.name.clone(),
                            k.created_at.format("%Y-%m-%d %H:%M").to_string(),
                            k.revoked_at.map_or("active".into(), |t| format!("revoked {}", t.format("%Y-%m-%d"))),
                        ]
                    })
                    .collect();
                ctx.ui.say(table(&["ID", "OWNER", "NAME", "CREATED", "STATE"], &rows));
            }
        }
        KeysAction::Revoke { id } => {
            if !store.revoke_api_key(id).await? {
                return Err(CliError::Message(format!("no active API key `{id}`")));
            }
            ctx.ui.say(format!("revoked API key {id}"));
        }
    }
    Ok(Exit::Done)
}
