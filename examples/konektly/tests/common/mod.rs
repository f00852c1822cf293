//! Running the built `konektly` as a person does: from a fresh directory, with a clean
//! environment, and stopping the background sandbox it starts whatever happens.
#![allow(dead_code)] // Each test file uses its part.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The program under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_konektly");

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// The exit status (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn of(out: Output) -> Self {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Both streams, for failure messages.
    pub fn all(&self) -> String {
        format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    /// Standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.all()))
    }

    /// Asserts the exit status.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "{}", self.all());
        self
    }
}

/// A fresh directory to run konektly in, as a newcomer would: no `KONEKTLY_*` variable, the
/// default database `konektly.db`. Dropping it stops the background sandbox started there.
pub struct Workdir {
    dir: tempfile::TempDir,
    /// Process ids of the background sandboxes seen.
    pids: std::cell::RefCell<Vec<u32>>,
}

impl Workdir {
    /// A new, empty directory.
    pub fn new() -> Self {
        Workdir { dir: tempfile::tempdir().unwrap(), pids: Default::default() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The command `konektly <args>` in this directory with a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.path()).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).args(args);
        c
    }

    /// Runs `konektly <args>` to the end; remembers the background sandbox it may have started.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().unwrap();
        self.remember_sandbox();
        Run::of(out)
    }

    /// Starts `konektly <args>` without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        let child = self
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Spawned(Some(child))
    }

    /// Runs a command line the program printed (`konektly …` or `curl URL`), as a shell would
    /// split it.
    pub fn run_line(&self, line: &str) -> Run {
        let words = shell_words(line);
        match words[0].as_str() {
            "konektly" => self.run(&words[1..].iter().map(String::as_str).collect::<Vec<_>>()),
            "curl" => {
                let url = words.iter().find(|w| w.starts_with("http")).expect("a URL");
                let body = http_get(url);
                Run { code: Some(0), stdout: body, stderr: String::new() }
            }
            other => panic!("unexpected command `{other}` in `{line}`"),
        }
    }

    /// The background sandbox recorded for `konektly.db`: its URL and process id.
    pub fn sandbox(&self) -> Option<(String, u32)> {
        let text = std::fs::read_to_string(self.path().join("konektly.db.sandbox")).ok()?;
        let mut lines = text.lines();
        let url = lines.next()?.to_owned();
        let pid = lines.find_map(|l| l.strip_prefix("pid="))?.parse().ok()?;
        Some((url, pid))
    }

    fn remember_sandbox(&self) {
        if let Some((_, pid)) = self.sandbox() {
            let mut pids = self.pids.borrow_mut();
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
}

/// A running `konektly`; killed if dropped before it was waited for.
pub struct Spawned(Option<std::process::Child>);

impl Spawned {
    /// Waits for it to end, with a deadline: killed (and the test fails) after `within`.
    #[track_caller]
    pub fn wait(mut self, within: Duration) -> Run {
        let mut child = self.0.take().unwrap();
        let deadline = Instant::now() + within;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("still running after {within:?}: {}", Run::of(out).all());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Run::of(child.wait_with_output().unwrap())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        self.remember_sandbox();
        // The way a person stops it; then, whatever that did, no sandbox of this test is left.
        let _ = self.command(&["sandbox", "--stop"]).output();
        for pid in self.pids.borrow().iter() {
            if is_our_sandbox(*pid) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).output();
            }
        }
    }
}

/// Whether `pid` is a background sandbox of konektly (not a recycled process id).
fn is_our_sandbox(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmd) => {
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains("konektly") && cmd.contains("--detached")
        }
        // Not Linux: trust the pid if it is alive.
        Err(_) => {
            !Path::new("/proc/self").exists()
                && Command::new("kill").arg("-0").arg(pid.to_string()).status().is_ok_and(|s| s.success())
        }
    }
}

/// Splits a command line as a POSIX shell does for the simple lines the program prints (words,
/// `'…'` and `"…"` quotes).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    word.push(d);
                }
            }
            '"' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '"' {
                        break;
                    }
                    word.push(d);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// `GET url` over plain HTTP/1.0; the body.
pub fn http_get(url: &str) -> String {
    http("GET", url, None)
}

/// `PUT url` with a JSON body; the answer's body.
pub fn http_put_json(url: &str, body: &serde_json::Value) -> String {
    http("PUT", url, Some(body.to_string()))
}

fn http(method: &str, url: &str, body: Option<String>) -> String {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".to_owned()));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{method} {url}: {head}");
    body.to_owned()
}

/// Polls `check` every 100 ms until it gives a value or `within` passes (then panics with
/// `what`).
#[track_caller]
pub fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The demo's video, to post.
pub fn demo_mp4() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.mp4")
}

/// The demo's image, to post.
pub fn demo_jpg() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.jpg")
}
