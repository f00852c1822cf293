//! The first-run guide (`konektly` alone, or `konektly init`): what to configure for the real
//! platforms; and `konektly doctor`, which checks that configuration and says what to fix.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::app;
use crate::background;
use crate::cli::Cli;
use crate::ui::Ui;
use crate::{Exit, Result};

/// The app credentials of one platform (or one app serving two).
#[derive(Clone, Copy, Debug)]
pub struct AppVars {
    /// For people.
    pub name: &'static str,
    /// How the program names it when it cannot be configured (`facebook/instagram`).
    pub key: &'static str,
    /// The client id variable.
    pub id: &'static str,
    /// The client secret variable.
    pub secret: &'static str,
    /// Where the app is registered.
    pub console: &'static str,
}

/// Every platform's app credentials, as the adapters read them.
pub const APPS: [AppVars; 4] = [
    AppVars {
        name: "X",
        key: "x",
        id: "KONEKTLY_X_CLIENT_ID",
        secret: "KONEKTLY_X_CLIENT_SECRET",
        console: "developer.x.com",
    },
    AppVars {
        name: "TikTok",
        key: "tiktok",
        id: "KONEKTLY_TIKTOK_CLIENT_KEY",
        secret: "KONEKTLY_TIKTOK_CLIENT_SECRET",
        console: "developers.tiktok.com",
    },
    AppVars {
        name: "Facebook, Instagram",
        key: "facebook/instagram",
        id: "KONEKTLY_META_APP_ID",
        secret: "KONEKTLY_META_APP_SECRET",
        console: "developers.facebook.com",
    },
    AppVars {
        name: "YouTube",
        key: "youtube",
        id: "KONEKTLY_YOUTUBE_CLIENT_ID",
        secret: "KONEKTLY_YOUTUBE_CLIENT_SECRET",
        console: "console.cloud.google.com",
    },
];

/// The port `connect` listens on for the redirect unless told otherwise.
pub const REDIRECT_PORT: u16 = 8976;

/// The redirect URI to register for `port`.
pub fn redirect_uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}/callback")
}

fn is_postgres(cli: &Cli) -> bool {
    cli.database_url.as_deref().is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// Where the tokens' key is, in words.
fn key_words(cli: &Cli) -> String {
    if std::env::var_os(konektly_store::KEYS_ENV).is_some() {
        return "the key in KONEKTLY_KEYS (set now)".to_owned();
    }
    if is_postgres(cli) {
        return "the key you give in KONEKTLY_KEYS=id:base64key (required with PostgreSQL)".to_owned();
    }
    let path = app::key_path(&cli.db);
    let shown = std::path::absolute(&path).unwrap_or(path);
    format!("the key in {}, made on first use (or KONEKTLY_KEYS=id:base64key)", shown.display())
}

/// The first-run guide: one screen on what to configure for the real platforms.
pub fn guide(cli: &Cli) -> String {
    let config = app::read_config(cli.config.as_deref()).unwrap_or_default();
    let set = |v: &str| app::setting(&config, v).is_some();
    let mut out = vec![
        "konektly publishes to X, TikTok, Facebook Pages, Instagram and YouTube on your users' behalf.".to_owned(),
        String::new(),
        "Try it first, with no account anywhere (a local sandbox of the five platforms):".to_owned(),
        "  konektly demo".to_owned(),
        String::new(),
        "To publish for real, register an app with each platform you want and give konektly its".to_owned(),
        "credentials, in the environment or in a file of KEY=VALUE lines passed with --config FILE:".to_owned(),
    ];
    let width = APPS.iter().map(|a| a.id.len() + a.secret.len() + 2).max().unwrap_or(0);
    for a in APPS {
        let state = match (set(a.id), set(a.secret)) {
            (true, true) => "set",
            (false, false) => "not set",
            _ => "half set",
        };
        let vars = format!("{}, {}", a.id, a.secret);
        out.push(format!("  {:<20} {vars:<width$}  {:<25} ({state})", a.name, a.console));
    }
    out.extend([
        format!(
            "Register this redirect URI with each app: {} (another port: connect --port N).",
            redirect_uri(REDIRECT_PORT)
        ),
        format!("Tokens are encrypted at rest with {}.", key_words(cli)),
        "Keep that key with the database: without it the stored tokens cannot be read.".to_owned(),
        "Instagram, and TikTok photos, fetch media by URL: serve KONEKTLY_MEDIA_DIR at KONEKTLY_MEDIA_BASE_URL."
            .to_owned(),
        String::new(),
        "Then:".to_owned(),
        "  konektly doctor                       # checks all of this and says what to fix".to_owned(),
        "  konektly connect x                    # opens the authorize page".to_owned(),
        "  konektly post --to x --text \"Hello\"".to_owned(),
        "Every command: konektly --help. Shell completions: konektly completions bash|zsh|fish; konektly man."
            .to_owned(),
    ]);
    out.join("\n")
}

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Fine.
    Ok,
    /// Worth knowing; not a problem.
    Note,
    /// To fix.
    Problem,
}

impl Mark {
    fn sign(self) -> &'static str {
        match self {
            Mark::Ok => "✓",
            Mark::Note => "·",
            Mark::Problem => "✗",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mark::Ok => "ok",
            Mark::Note => "note",
            Mark::Problem => "problem",
        }
    }
}

/// One finding of `doctor`.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked: `platforms`, `redirect`, `key`, `database`, `media`, `sandbox`.
    pub area: &'static str,
    /// How it came out.
    pub mark: Mark,
    /// What was found, and what to do.
    pub message: String,
}

fn check(area: &'static str, mark: Mark, message: impl Into<String>) -> Check {
    Check { area, mark, message: message.into() }
}

/// Runs every check.
pub async fn checks(cli: &Cli, port: u16) -> Vec<Check> {
    let mut out = Vec::new();
    let config = match app::read_config(cli.config.as_deref()) {
        Ok(c) => {
            if let Some(p) = &cli.config {
                out.push(check("config", Mark::Ok, format!("{} is readable", p.display())));
            }
            c
        }
        Err(e) => {
            out.push(check("config", Mark::Problem, format!("{e}: fix the path given with --config")));
            HashMap::new()
        }
    };
    out.extend(platform_checks(&config));
    out.push(port_check(port).await);
    out.extend(database_and_key_checks(cli).await);
    out.push(media_check(&config));
    out.push(sandbox_check(cli).await);
    out
}

fn platform_checks(config: &HashMap<String, String>) -> Vec<Check> {
    let (_, unconfigured) = app::platforms(None, config);
    let mut out = Vec::new();
    let mut configured = 0;
    for a in APPS {
        let (id, secret) = (app::setting(config, a.id).is_some(), app::setting(config, a.secret).is_some());
        out.push(match (id, secret) {
            (true, true) => match unconfigured.iter().find(|(k, _)| k == a.key) {
                Some((_, why)) => check("platforms", Mark::Problem, format!("{}: {why}", a.name)),
                None => {
                    configured += 1;
                    check("platforms", Mark::Ok, format!("{}: {} and {} are set", a.name, a.id, a.secret))
                }
            },
            (false, false) => check(
                "platforms",
                Mark::Note,
                format!("{}: not configured (set {} and {} to use it; app at {})", a.name, a.id, a.secret, a.console),
            ),
            (true, false) => {
                check("platforms", Mark::Problem, format!("{}: {} is set but {} is not", a.name, a.id, a.secret))
            }
            (false, true) => {
                check("platforms", Mark::Problem, format!("{}: {} is set but {} is not", a.name, a.secret, a.id))
            }
        });
    }
    if configured == 0 && !out.iter().any(|c| c.mark == Mark::Problem) {
        out.push(check(
            "platforms",
            Mark::Problem,
            "no platform is configured: set the credentials of at least one (`konektly init` lists them), \
             or use the sandbox (--sandbox)",
        ));
    }
    out
}

async fn port_check(port: u16) -> Check {
    let uri = redirect_uri(port);
    match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(_) => check(
            "redirect",
            Mark::Ok,
            format!("127.0.0.1:{port} is free: `connect` receives the redirect at {uri} (register it with each app)"),
        ),
        Err(e) => check(
            "redirect",
            Mark::Problem,
            format!(
                "127.0.0.1:{port} cannot be listened on ({e}): stop what holds it, or use `connect --port N` and \
                 register http://127.0.0.1:N/callback"
            ),
        ),
    }
}

/// What a look at the database found.
struct DbFound {
    /// `konektly_schema`'s version; `None`: no konektly tables yet.
    schema: Option<i64>,
    accounts: i64,
    targets: i64,
}

fn db_err(e: sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        other => other.to_string(),
    }
}

async fn database_and_key_checks(cli: &Cli) -> Vec<Check> {
    let mut out = Vec::new();
    let found: std::result::Result<Option<DbFound>, String>;
    let location: String;
    if is_postgres(cli) {
        let url = cli.database_url.clone().unwrap_or_default();
        location = url::Url::parse(&url).map(|u| konektly_core::http::redact_url(&u)).unwrap_or_else(|_| url.clone());
        found = postgres_look(&url).await.map(Some);
    } else {
        let path = match &cli.database_url {
            Some(u) => {
                Path::new(u.strip_prefix("sqlite://").or_else(|| u.strip_prefix("sqlite:")).unwrap_or(u)).to_owned()
            }
            None => cli.db.clone(),
        };
        location = path.display().to_string();
        found = match app::check_sqlite_path(&path) {
            Err(e) => Err(e.to_string()),
            Ok(()) if !path.exists() => Ok(None),
            Ok(()) => sqlite_look(&path).await.map(Some),
        };
    }
    let kind = if is_postgres(cli) { "PostgreSQL" } else { "SQLite" };
    let mut accounts = 0;
    match &found {
        Err(e) => out.push(check("database", Mark::Problem, format!("{location}: {e}"))),
        Ok(None) => out.push(check(
            "database",
            Mark::Note,
            format!("{location} does not exist yet: it is created on first use"),
        )),
        Ok(Some(f)) => {
            accounts = f.accounts;
            let current = konektly_store::SCHEMA_VERSION;
            out.push(match f.schema {
                None => check("database", Mark::Note, format!("{location} ({kind}) is reachable and has no konektly tables yet: they are created on first use")),
                Some(v) if v == current => check(
                    "database",
                    Mark::Ok,
                    format!("{location} ({kind}): schema version {v}, this konektly's; {} account(s), {} target(s)", f.accounts, f.targets),
                ),
                Some(v) if v < current => check(
                    "database",
                    Mark::Note,
                    format!("{location} ({kind}): schema version {v}; it is migrated to {current} on next use"),
                ),
                Some(v) => check(
                    "database",
                    Mark::Problem,
                    format!("{location} ({kind}): schema version {v} is newer than this konektly's ({current}): use a newer konektly"),
                ),
            });
        }
    }
    out.push(key_check(cli, accounts));
    out
}

async fn sqlite_look(path: &Path) -> std::result::Result<DbFound, String> {
    use sqlx::ConnectOptions;
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true).create_if_missing(false);
    let mut conn = opts.connect().await.map_err(db_err)?;
    let schema: std::result::Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT MAX(version) FROM konektly_schema").fetch_one(&mut conn).await;
    let schema = match schema {
        Ok(v) => v,
        Err(sqlx::Error::Database(d)) if d.message().contains("no such table") => {
            return Ok(DbFound { schema: None, accounts: 0, targets: 0 });
        }
        Err(e) => return Err(db_err(e)),
    };
    let accounts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM konektly_accounts").fetch_one(&mut conn).await.unwrap_or(0);
    let targets: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM konektly_targets").fetch_one(&mut conn).await.unwrap_or(0);
    Ok(DbFound { schema, accounts, targets })
}

async fn postgres_look(url: &str) -> std::result::Result<DbFound, String> {
    use sqlx::ConnectOptions;
    let opts: sqlx::postgres::PgConnectOptions = url.parse().map_err(db_err)?;
    let mut conn = match tokio::time::timeout(Duration::from_secs(5), opts.connect()).await {
        Ok(c) => c.map_err(db_err)?,
        Err(_) => return Err("no answer within 5 s".to_owned()),
    };
    let schema: std::result::Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT MAX(version) FROM konektly_schema").fetch_one(&mut conn).await;
    let schema = match schema {
        Ok(v) => v,
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P01") => {
            return Ok(DbFound { schema: None, accounts: 0, targets: 0 });
        }
        Err(e) => return Err(db_err(e)),
    };
    let accounts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM konektly_accounts").fetch_one(&mut conn).await.unwrap_or(0);
    let targets: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM konektly_targets").fetch_one(&mut conn).await.unwrap_or(0);
    Ok(DbFound { schema, accounts, targets })
}

fn key_check(cli: &Cli, accounts: i64) -> Check {
    if std::env::var_os(konektly_store::KEYS_ENV).is_some() {
        return match konektly_store::KeyRing::from_env() {
            Ok(k) => {
                check("key", Mark::Ok, format!("KONEKTLY_KEYS holds {} key(s): {}", k.ids().len(), k.ids().join(", ")))
            }
            Err(e) => check("key", Mark::Problem, format!("KONEKTLY_KEYS: {e}")),
        };
    }
    if is_postgres(cli) {
        return check(
            "key",
            Mark::Problem,
            "KONEKTLY_KEYS is not set: with PostgreSQL the token key must be given as KONEKTLY_KEYS=id:base64key \
             (the same on every machine)",
        );
    }
    let path = app::key_path(&cli.db);
    let shown = path.display();
    match app::inspect_key_file(&path) {
        Ok(None) if accounts > 0 => check(
            "key",
            Mark::Problem,
            format!(
                "{shown} is missing, but the database holds {accounts} account(s): their tokens cannot be read \
                 without it; restore it from your backup (or set KONEKTLY_KEYS)"
            ),
        ),
        Ok(None) => check(
            "key",
            Mark::Note,
            format!(
                "{shown} does not exist yet: it is made on first use (readable by you only); back it up with the database"
            ),
        ),
        Ok(Some(k)) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(m) = std::fs::metadata(&path)
                    && m.permissions().mode() & 0o077 != 0
                {
                    return check(
                        "key",
                        Mark::Problem,
                        format!(
                            "{shown} can be read by others (mode {:o}): `chmod 600 {shown}`",
                            m.permissions().mode() & 0o777
                        ),
                    );
                }
            }
            check("key", Mark::Ok, format!("{shown} is readable by you only and holds {} key(s)", k.ids().len()))
        }
        Err(e) => check("key", Mark::Problem, e.to_string()),
    }
}

fn media_check(config: &HashMap<String, String>) -> Check {
    let dir = app::setting(config, "KONEKTLY_MEDIA_DIR");
    let base = app::setting(config, "KONEKTLY_MEDIA_BASE_URL");
    match (dir, base) {
        (None, None) => check(
            "media",
            Mark::Note,
            "no media host (KONEKTLY_MEDIA_DIR served at KONEKTLY_MEDIA_BASE_URL): Instagram posts and TikTok photos \
             need one",
        ),
        (Some(d), Some(b)) => match url::Url::parse(&b) {
            Err(e) => check("media", Mark::Problem, format!("KONEKTLY_MEDIA_BASE_URL `{b}` is not a URL: {e}")),
            Ok(_) if !Path::new(&d).is_dir() => {
                check("media", Mark::Problem, format!("KONEKTLY_MEDIA_DIR {d} is not a directory"))
            }
            Ok(_) => check("media", Mark::Ok, format!("media files are copied to {d} and served at {b}")),
        },
        (Some(_), None) => {
            check("media", Mark::Problem, "KONEKTLY_MEDIA_DIR is set but KONEKTLY_MEDIA_BASE_URL is not")
        }
        (None, Some(_)) => {
            check("media", Mark::Problem, "KONEKTLY_MEDIA_BASE_URL is set but KONEKTLY_MEDIA_DIR is not")
        }
    }
}

async fn sandbox_check(cli: &Cli) -> Check {
    let state = background::state_path(&cli.db);
    match background::read_record(&state) {
        None => check(
            "sandbox",
            Mark::Note,
            format!("no background sandbox for {} (--sandbox starts one)", cli.db.display()),
        ),
        Some(r) if background::answers(&r.url).await => check(
            "sandbox",
            Mark::Note,
            format!("a background sandbox runs at {} (process {}); `konektly sandbox --stop` stops it", r.url, r.pid),
        ),
        Some(r) => check(
            "sandbox",
            Mark::Note,
            format!(
                "the background sandbox recorded at {} is not running; the next --sandbox command starts a new one",
                r.url
            ),
        ),
    }
}

/// `konektly doctor`: every check, what to fix; [`Exit::Done`] only if nothing is to fix.
pub async fn doctor(cli: &Cli, ui: &Ui, port: u16) -> Result<Exit> {
    let found = checks(cli, port).await;
    let problems = found.iter().filter(|c| c.mark == Mark::Problem).count();
    if ui.json {
        ui.json_out(&json!({"ok": problems == 0, "problems": problems,
            "checks": found.iter().map(|c| json!({"area": c.area, "status": c.mark.name(), "message": c.message})).collect::<Vec<_>>()}));
    } else {
        let titles = [
            ("config", "Config file"),
            ("platforms", "Platforms (app credentials, from the environment or --config)"),
            ("redirect", "Redirect listener"),
            ("database", "Database"),
            ("key", "Token key"),
            ("media", "Media host"),
            ("sandbox", "Sandbox"),
        ];
        for (area, title) in titles {
            let mine: Vec<&Check> = found.iter().filter(|c| c.area == area).collect();
            if mine.is_empty() {
                continue;
            }
            ui.say(format!("{title}:"));
            for c in mine {
                ui.say(format!("  {} {}", c.mark.sign(), c.message));
            }
        }
        ui.say(if problems == 0 {
            "\nAll good.".to_owned()
        } else {
            format!("\n{problems} problem(s) to fix (✗ above).")
        });
    }
    Ok(Exit::attention_if(problems > 0))
}
