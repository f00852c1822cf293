//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use url::Url;

/// The SQLite file used when `--db` is not given.
pub const DEFAULT_DB: &str = "konektly.db";
/// The owner used when `--owner` is not given (the demo uses its own, [`DEMO_OWNER`]).
pub const DEFAULT_OWNER: &str = "local";
/// The owner of the demo's accounts and posts, unless `--owner` is given.
pub const DEMO_OWNER: &str = "demo";

/// konektly: connect accounts, write once, validate, schedule and publish to X, TikTok,
/// Facebook Pages, Instagram and YouTube.
#[derive(Debug, Parser)]
#[command(name = "konektly", version, about, long_about = None, after_help = crate::exit_status_help())]
pub struct Cli {
    /// PostgreSQL URL (`postgres://…`) shared by every worker; default: the SQLite file `--db`.
    #[arg(long, global = true, env = "KONEKTLY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The SQLite file (its token key is kept beside it as `<file>.key` unless KONEKTLY_KEYS is set).
    #[arg(long, global = true, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Where scheduled posts' media are kept, readable by every worker: `file:///dir`, or
    /// `s3://bucket/prefix`, `gs://…`, `az://…` when konektly is built with those features
    /// [default: the directory `<db>.media` beside the SQLite file].
    #[arg(long, global = true, env = "KONEKTLY_MEDIA_STORE", value_name = "URL")]
    pub media_store: Option<String>,
    /// Use the local sandbox instead of the real platforms: the database's background sandbox
    /// (started by the first such command, kept between commands; `konektly sandbox --stop`
    /// stops it), or the one at --sandbox-url.
    #[arg(long, global = true)]
    pub sandbox: bool,
    /// A sandbox running elsewhere (`konektly sandbox` prints its URL); implies --sandbox.
    #[arg(long, global = true, env = "KONEKTLY_SANDBOX_URL")]
    pub sandbox_url: Option<Url>,
    /// Machine-readable output on standard output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Whose accounts and posts (your application's user id) [default: local; the demo's: demo].
    #[arg(long, global = true, env = "KONEKTLY_OWNER")]
    pub owner: Option<String>,
    /// A file of `KEY=VALUE` lines with app credentials (`KONEKTLY_X_CLIENT_ID`…); the
    /// environment wins.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// More logging (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do (without a command: what to set up first).
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The owner given, or `default`.
    pub fn owner_or(&self, default: &str) -> String {
        self.owner.clone().unwrap_or_else(|| default.to_owned())
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the sandbox, connect five accounts, validate, publish now and scheduled, and show
    /// the results.
    Demo {
        /// Seconds ahead the second post is scheduled.
        #[arg(long, default_value_t = 5)]
        schedule_in: u64,
        /// Lose answers after posts were accepted and rate-limit some calls, to watch konektly
        /// reconcile and retry without posting twice.
        #[arg(long)]
        chaos: bool,
    },
    /// What to configure for the real platforms (what `konektly` alone shows).
    Init,
    /// Check the configuration: credentials per platform, the redirect port, the database and
    /// its schema, the token key; say what to fix (exit status 0 only if all is fine).
    Doctor {
        /// The redirect listener's port to check.
        #[arg(long, default_value_t = crate::doctor::REDIRECT_PORT)]
        port: u16,
    },
    /// Print a shell completion script (`konektly completions bash > /etc/bash_completion.d/konektly`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output (`konektly man > konektly.1`), or a
    /// command's (`konektly man post > konektly-post.1`).
    Man {
        /// A command.
        command: Option<String>,
    },
    /// Run a sandbox of the five platforms in the foreground until Ctrl-C (or manage the
    /// database's background sandbox, the one `--sandbox` uses, with --start and --stop).
    Sandbox {
        /// Start the database's background sandbox if it is not running, and say where it is.
        #[arg(long, conflicts_with = "stop")]
        start: bool,
        /// Stop the database's background sandbox.
        #[arg(long)]
        stop: bool,
        /// Run as the background sandbox recorded in this file (what --sandbox starts).
        #[arg(long, hide = true, value_name = "STATE_FILE", conflicts_with_all = ["start", "stop"])]
        detached: Option<PathBuf>,
    },
    /// Connect an account: opens the authorize page and waits for the redirect on localhost.
    Connect {
        /// x, tiktok, facebook, instagram or youtube.
        platform: String,
        /// The port of the redirect listener (register http://127.0.0.1:PORT/callback with the app).
        #[arg(long, default_value_t = crate::doctor::REDIRECT_PORT)]
        port: u16,
        /// Only print the authorize URL (open it yourself).
        #[arg(long)]
        no_browser: bool,
        /// Seconds to wait for the redirect.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// List connected accounts.
    Accounts,
    /// Check a post against every target's rules, without sending anything.
    Validate(PostArgs),
    /// Publish a post now, or at `--at`.
    Post(PostArgs),
    /// Show the targets of a post (or the latest 50 targets).
    Status {
        /// A post id.
        post: Option<String>,
    },
    /// Publish due posts until Ctrl-C (run as many as you like against one database).
    Worker {
        /// Stop when nothing is left to do.
        #[arg(long)]
        until_idle: bool,
    },
    /// Cancel what has not been published of a post.
    Cancel {
        /// A post id.
        post: String,
    },
    /// Delete a published post at its platforms (X with its replies, Facebook, YouTube; TikTok
    /// and Instagram cannot), recorded in each target's state.
    Delete {
        /// A post id.
        post: String,
    },
    /// Revoke an account's grant at the platform and forget it.
    Disconnect {
        /// An account id, a platform, or platform:handle.
        account: String,
    },
    /// Everything stored about an account, as JSON (tokens are never exported).
    Export {
        /// An account id, a platform, or platform:handle.
        account: String,
    },
    /// Serve the HTTP API (`/v1`, OpenAPI at /v1/openapi.json), webhooks and the console, with
    /// workers in the same process unless --no-workers.
    Serve {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The address clients and browsers reach this server at (the OAuth redirect URI is
        /// `<public-url>/v1/oauth/callback`); default `http://<listen>`.
        #[arg(long)]
        public_url: Option<url::Url>,
        /// Serve the API only: publishing is left to `konektly worker` processes.
        #[arg(long)]
        no_workers: bool,
        /// Requests per minute per API key (0: no limit).
        #[arg(long, default_value_t = 600)]
        rate_limit: u32,
        /// Upload limit and webhook timing.
        #[command(flatten)]
        tuning: crate::serve::ServeTuning,
    },
    /// Posting queues: weekly time slots per account or group of accounts, in a time zone.
    Queue {
        /// What to do.
        #[command(subcommand)]
        action: QueueAction,
    },
    /// How a post did (its metrics now, and the snapshots taken since it was published, as a
    /// small chart), or an account (`--account`).
    Stats {
        /// A post id.
        post: Option<String>,
        /// An account instead: an account id, a platform, or platform:handle.
        #[arg(long, conflicts_with = "post")]
        account: Option<String>,
    },
    /// Recurring posts made with `post --repeat`: list, pause, resume, skip one, delete.
    Series {
        /// What to do.
        #[command(subcommand)]
        action: SeriesAction,
    },
    /// Manage the server's API keys (stored hashed: a key is shown once, when it is made).
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
}

/// `konektly queue …`.
#[derive(Debug, Clone, Subcommand)]
pub enum QueueAction {
    /// Make a queue: `konektly queue create main --to x --to instagram --tz Europe/Paris --slots "09:00,12:30 Mon-Fri; 10:00 Sat"`.
    Create {
        /// Its name.
        name: String,
        /// Its accounts: an account id, a platform, or platform:handle. Repeat.
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// An IANA time zone (`Europe/Paris`, `America/New_York`, `UTC`).
        #[arg(long)]
        tz: String,
        /// The weekly slots: `HH:MM,HH:MM Mon-Fri; HH:MM Sat` (days: Mon…Sun, ranges, `daily`).
        #[arg(long)]
        slots: String,
    },
    /// List the queues, or show one with its pending posts in slot order.
    Show {
        /// A queue's name or id.
        name: Option<String>,
    },
    /// Replace a queue's slots: its pending posts take the new plan's first slots, in order.
    Plan {
        /// The queue.
        name: String,
        /// An IANA time zone.
        #[arg(long)]
        tz: String,
        /// The weekly slots.
        #[arg(long)]
        slots: String,
    },
    /// Pause a queue: nothing of it is published until `queue resume`.
    Pause {
        /// The queue.
        name: String,
    },
    /// Resume a queue: its pending posts take the next slots from now, in order.
    Resume {
        /// The queue.
        name: String,
    },
    /// Put a queue's pending posts in this order (post ids, every pending post once).
    Reorder {
        /// The queue.
        name: String,
        /// The post ids in their new order.
        #[arg(required = true)]
        posts: Vec<String>,
    },
    /// Shuffle a queue's pending posts over their slots.
    Shuffle {
        /// The queue.
        name: String,
    },
    /// Publish a queued post now ("skip the line"); its slot is freed.
    Now {
        /// The queue.
        name: String,
        /// The post id.
        post: String,
    },
    /// Cancel a queued post; its slot is freed.
    Remove {
        /// The queue.
        name: String,
        /// The post id.
        post: String,
    },
    /// Delete a queue (its posts stay scheduled).
    Delete {
        /// The queue.
        name: String,
    },
}

/// `konektly series …`.
#[derive(Debug, Clone, Subcommand)]
pub enum SeriesAction {
    /// List the series.
    List,
    /// Pause a series: no more occurrences are created.
    Pause {
        /// The series id.
        id: String,
    },
    /// Resume a series; what it missed follows its policy (skipped, or the latest once).
    Resume {
        /// The series id.
        id: String,
    },
    /// Skip occurrence N (from 1); its post is cancelled if it was created.
    Skip {
        /// The series id.
        id: String,
        /// The occurrence's number, from 1.
        n: u32,
    },
    /// Delete a series (its created posts stay scheduled).
    Delete {
        /// The series id.
        id: String,
    },
}

/// `konektly keys …`.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysAction {
    /// Make a key for --owner (or an operator's key with --admin) and print it once.
    Create {
        /// A name for people.
        #[arg(long, default_value = "api")]
        name: String,
        /// An operator's key: every owner's data (name the owner with the Konektly-Owner header).
        #[arg(long)]
        admin: bool,
    },
    /// List the keys of --owner (all keys with --all).
    List {
        /// Every owner's keys.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a key by its id.
    Revoke {
        /// The key's id (`kk_<id>_…`; it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// A post on the command line.
#[derive(Debug, Clone, Args)]
pub struct PostArgs {
    /// Where to: an account id, a platform (its account), or platform:handle. Repeat.
    #[arg(long = "to", required_unless_present = "queue")]
    pub to: Vec<String>,
    /// Add to this queue at its next free slot (its accounts, or those of --to in it).
    #[arg(long, conflicts_with = "at")]
    pub queue: Option<String>,
    /// Repeat: an RFC 5545 rule (`FREQ=WEEKLY;BYDAY=MO,TH;COUNT=10`), from --at (default now)
    /// in --tz; use `{n}` and `{date}` in the text, or --variant, since platforms refuse
    /// identical repeated text.
    #[arg(long, conflicts_with = "queue")]
    pub repeat: Option<String>,
    /// The time zone of a repeated post's times (IANA).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// A text variant for a repeated post, cycled over its occurrences. Repeat.
    #[arg(long = "variant")]
    pub variants: Vec<String>,
    /// What a repeated post does with occurrences missed while nothing ran: skip, or
    /// latest-once (the latest of them is published once).
    #[arg(long, default_value = "skip", value_parser = ["skip", "latest-once"])]
    pub missed: String,
    /// The text.
    #[arg(long, default_value = "")]
    pub text: String,
    /// An image or video file. Repeat.
    #[arg(long = "media")]
    pub media: Vec<PathBuf>,
    /// When: RFC 3339 (`2026-12-01T09:00:00Z`) or `+30s`, `+10m`, `+2h`.
    #[arg(long)]
    pub at: Option<String>,
    /// A further item of a thread (X). Repeat.
    #[arg(long = "thread")]
    pub thread: Vec<String>,
    /// A comment published right after the post (X: a reply; Facebook, Instagram: a comment;
    /// YouTube: a comment once the video is public; not TikTok). Repeat: the first is the
    /// first comment.
    #[arg(long = "comment")]
    pub comments: Vec<String>,
    /// A title (YouTube, Facebook video).
    #[arg(long)]
    pub title: Option<String>,
    /// A per-platform option, `platform.key=value` (`tiktok.privacy_level=SELF_ONLY`). Repeat.
    #[arg(long = "option")]
    pub options: Vec<String>,
    /// Submitting the same key twice creates the post once.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// After publishing, keep polling this many seconds for platforms that finish later.
    #[arg(long, default_value_t = 120)]
    pub wait: u64,
}
