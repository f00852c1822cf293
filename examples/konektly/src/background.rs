//! The sandbox a database keeps: `--sandbox` without a URL uses one sandbox per database file,
//! running in the background, so that its state — accounts, tokens, posts, media — survives
//! from one command to the next (`connect`, then `post`, then `status`, then `worker`).
//!
//! The first `--sandbox` command starts `konektly sandbox --detached <db>.sandbox`: the same
//! program, in its own process group (so a Ctrl-C in the terminal does not reach it), its
//! standard streams on `<db>.sandbox.log`. Once its servers listen it writes its control URL and
//! process id to `<db>.sandbox`. Later commands read that file and check that the sandbox answers
//! (`GET <url>_sandbox`); if it does not, they start a new one and say so (the tokens the old one
//! gave are unknown to the new one: accounts must be connected again).
//!
//! The background sandbox runs until `konektly sandbox --stop`, which removes the file: the
//! sandbox checks twice a second that the file still names it, and exits when it does not (so
//! deleting the directory stops it too). SIGTERM and SIGINT stop it as well; it ignores SIGHUP,
//! so closing the terminal it was started from does not.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use konektly_testkit::Sandbox;
use url::Url;

use crate::app::SandboxInfo;
use crate::{CliError, Result, fail};

/// The file naming the background sandbox of the database `db`: `<db>.sandbox`.
pub fn state_path(db: &Path) -> PathBuf {
    with_suffix(db, ".sandbox")
}

/// Where the background sandbox of `db` writes its log: `<db>.sandbox.log`.
pub fn log_path(db: &Path) -> PathBuf {
    with_suffix(db, ".sandbox.log")
}

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// What `<db>.sandbox` says: where the sandbox is and which process runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its control URL (the media host and the inspection API, `<url>_sandbox/posts`).
    pub url: Url,
    /// Its process id.
    pub pid: u32,
}

impl Record {
    /// The file's text: the URL on the first line (so `$(head -1 konektly.db.sandbox)` is the
    /// URL), then `pid=<n>`.
    fn text(&self) -> String {
        format!("{}\npid={}\n", self.url, self.pid)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let url = Url::parse(lines.next()?.trim()).ok()?;
        let pid = lines.find_map(|l| l.trim().strip_prefix("pid=")).and_then(|p| p.parse().ok())?;
        Some(Record { url, pid })
    }
}

/// The record in `path`, if there is a readable one.
pub fn read_record(path: &Path) -> Option<Record> {
    std::fs::read_to_string(path).ok().and_then(|t| Record::parse(&t))
}

/// Writes `record` to `path` whole (a reader sees the old file or the new one).
fn write_record(path: &Path, record: &Record) -> std::io::Result<()> {
    let tmp = with_suffix(path, &format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, record.text())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Whether a sandbox answers at `url` (its summary, `GET <url>_sandbox`, within two seconds).
pub async fn answers(url: &Url) -> bool {
    let Ok(http) = konektly_core::HttpClient::new() else { return false };
    let Ok(summary) = url.join("_sandbox") else { return false };
    match http.client().get(summary).timeout(Duration::from_secs(2)).send().await {
        Ok(r) if r.status().is_success() => {
            r.json::<serde_json::Value>().await.is_ok_and(|v| v.get("base_urls").is_some())
        }
        _ => false,
    }
}

/// How the background sandbox was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// It was running and answered.
    Running,
    /// None was recorded: this command started it.
    Started,
    /// The recorded one (at this URL) did not answer: this command started a new one.
    Restarted {
        /// The old one's URL.
        old: Url,
    },
}

/// The background sandbox of a database.
#[derive(Clone, Debug)]
pub struct Background {
    /// Where it is, and its credentials.
    pub info: SandboxInfo,
    /// Its record.
    pub record: Record,
    /// How it was found.
    pub found: Found,
    /// Its record's file.
    pub state_file: PathBuf,
    /// Its log.
    pub log_file: PathBuf,
}

/// How long a new background sandbox may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped background sandbox may take to stop answering.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The background sandbox of `db`: the recorded one if it answers, else a new one.
pub async fn ensure(db: &Path) -> Result<Background> {
    let state_file = absolute(&state_path(db))?;
    let log_file = absolute(&log_path(db))?;
    let recorded = read_record(&state_file);
    let found = match &recorded {
        Some(r) if answers(&r.url).await => Found::Running,
        Some(r) => Found::Restarted { old: r.url.clone() },
        None => Found::Started,
    };
    let record = match (&found, recorded) {
        (Found::Running, Some(r)) => r,
        (_, old) => start(&state_file, &log_file, old.as_ref()).await?,
    };
    let info = SandboxInfo::fetch(&record.url).await?;
    Ok(Background { info, record, found, state_file, log_file })
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| CliError::Message(format!("cannot use the path {}: {e}", p.display())))
}

/// Starts `konektly sandbox --detached <state_file>` in the background and waits until it has
/// recorded itself and answers. `old`: the dead sandbox recorded before, if any.
async fn start(state_file: &Path, log_file: &Path, old: Option<&Record>) -> Result<Record> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Message(format!("cannot find this program to start the sandbox: {e}")))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .map_err(|e| CliError::Message(format!("cannot open the sandbox's log {}: {e}", log_file.display())))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("sandbox")
        .arg("--detached")
        .arg(state_file)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env_remove("KONEKTLY_SANDBOX_URL");
    #[cfg(unix)]
    {
        // Its own process group: a Ctrl-C in the terminal goes to this command, not to it.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const DETACHED_PROCESS: u32 = 0x0000_0008;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        cmd.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
    }
    let mut child = cmd.spawn().map_err(|e| CliError::Message(format!("cannot start the background sandbox: {e}")))?;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(r) = read_record(state_file)
            && Some(&r) != old
            && answers(&r.url).await
        {
            // Ours, or one another command started at the same moment (ours then leaves).
            return Ok(r);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return fail(format!(
                "the background sandbox stopped at once ({status}); its log, {}, says:\n{}",
                log_file.display(),
                tail(log_file, 10)
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            return fail(format!(
                "the background sandbox did not start within {} s; its log, {}, says:\n{}",
                START_TIMEOUT.as_secs(),
                log_file.display(),
                tail(log_file, 10)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last `n` lines of a file, indented.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

/// What `konektly sandbox --stop` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// No background sandbox was recorded.
    NoneRecorded,
    /// It was running and has stopped.
    Stopped(Record),
    /// It was recorded but no longer answered; the record is removed.
    WasNotRunning(Record),
}

/// Stops the background sandbox of `db`: removes its record, which it watches, and waits until
/// it no longer answers.
pub async fn stop(db: &Path) -> Result<Stopped> {
    let state_file = state_path(db);
    let Some(record) = read_record(&state_file) else {
        if state_file.exists() {
            let _ = std::fs::remove_file(&state_file);
        }
        return Ok(Stopped::NoneRecorded);
    };
    let running = answers(&record.url).await;
    std::fs::remove_file(&state_file)
        .map_err(|e| CliError::Message(format!("cannot remove {}: {e}", state_file.display())))?;
    if !running {
        return Ok(Stopped::WasNotRunning(record));
    }
    let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
    while answers(&record.url).await {
        if tokio::time::Instant::now() >= deadline {
            return fail(format!(
                "the sandbox at {} (process {}) still answers {} s after being told to stop; stop it with `kill {}`",
                record.url,
                record.pid,
                STOP_TIMEOUT.as_secs(),
                record.pid
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Stopped::Stopped(record))
}

/// The background sandbox itself (`konektly sandbox --detached <state_file>`): starts a sandbox,
/// records it in `state_file`, and serves until the file no longer names it, or SIGTERM/SIGINT.
pub async fn serve_detached(state_file: &Path) -> Result<()> {
    let sandbox = Sandbox::start().await?;
    let url = sandbox.base_url("media");
    let me = Record { url: url.clone(), pid: std::process::id() };
    // Another command may have started one at the same moment: the first recorded stays.
    if let Some(other) = read_record(state_file)
        && other.url != url
        && answers(&other.url).await
    {
        eprintln!("{} another sandbox runs at {}: leaving", chrono::Utc::now().to_rfc3339(), other.url);
        return Ok(());
    }
    write_record(state_file, &me)
        .map_err(|e| CliError::Message(format!("cannot write {}: {e}", state_file.display())))?;
    eprintln!(
        "{} konektly sandbox (process {}) at {url} for {}",
        chrono::Utc::now().to_rfc3339(),
        me.pid,
        state_file.display()
    );
    let still_mine = || read_record(state_file).is_some_and(|r| r == me);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => if !still_mine() { break },
                _ = hangup.recv() => {}
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
            }
        }
    }
    #[cfg(not(unix))]
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => if !still_mine() { break },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    if still_mine() {
        let _ = std::fs::remove_file(state_file);
    }
    eprintln!("{} konektly sandbox (process {}) stopped", chrono::Utc::now().to_rfc3339(), me.pid);
    drop(sandbox);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_read_back_and_its_url_is_the_first_line() {
        let r = Record { url: Url::parse("http://127.0.0.1:4242/").unwrap(), pid: 77 };
        assert_eq!(r.text(), "http://127.0.0.1:4242/\npid=77\n");
        assert_eq!(Record::parse(&r.text()), Some(r));
        assert_eq!(Record::parse("not a url\npid=1"), None);
        assert_eq!(Record::parse("http://127.0.0.1:1/"), None);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.db");
        assert_eq!(state_path(&db), dir.path().join("k.db.sandbox"));
        assert_eq!(log_path(&db), dir.path().join("k.db.sandbox.log"));
        let rec = Record { url: Url::parse("http://127.0.0.1:1/").unwrap(), pid: 1 };
        write_record(&state_path(&db), &rec).unwrap();
        assert_eq!(read_record(&state_path(&db)), Some(rec));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.db.sandbox")], "no temporary file left");
    }

    #[tokio::test]
    async fn stopping_when_nothing_runs_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.db");
        assert_eq!(stop(&db).await.unwrap(), Stopped::NoneRecorded);
        // A record of a sandbox that is gone: forgotten.
        let gone = Record { url: Url::parse("http://127.0.0.1:9/").unwrap(), pid: 1 };
        write_record(&state_path(&db), &gone).unwrap();
        assert_eq!(stop(&db).await.unwrap(), Stopped::WasNotRunning(gone));
        assert!(!state_path(&db).exists());
    }
}
