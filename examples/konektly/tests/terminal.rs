//! The `konektly` program in a real terminal (a pty), its output read back through a terminal
//! emulator (vt100): spinners and progress bars are drawn while it works and leave no trace on
//! the screen — what remains are the lines and tables, whole and aligned. The same commands
//! with their output piped print plain lines: no escape sequence, no spinner, progress as lines.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{BIN, Run, Workdir, demo_mp4, wait_for};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ROWS: u16 = 120;
const COLS: u16 = 220;

/// What a command left in a terminal: its exit status, every byte it wrote, and the screen.
struct Screen {
    code: u32,
    raw: Vec<u8>,
    lines: Vec<String>,
}

impl Screen {
    fn all(&self) -> String {
        format!(
            "exit {}\n--- screen\n{}\n--- raw\n{:?}",
            self.code,
            self.lines.join("\n"),
            String::from_utf8_lossy(&self.raw)
        )
    }
}

/// Runs `konektly <args>` in `dir` on a pty of [`ROWS`]×[`COLS`] and reads its screen.
fn in_terminal(dir: &Workdir, args: &[&str]) -> Screen {
    let pty = native_pty_system().openpty(PtySize { rows: ROWS, cols: COLS, pixel_width: 0, pixel_height: 0 }).unwrap();
    let mut cmd = CommandBuilder::new(BIN);
    cmd.cwd(dir.path());
    cmd.env_clear();
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.env("TERM", "xterm-256color");
    cmd.args(args);
    let mut child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        // Ends with EOF, or EIO once the terminal's last user is gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(raw);
    });
    let status = wait_for("the command to end in the terminal", Duration::from_secs(120), || child.try_wait().unwrap());
    drop(pty.master);
    let raw = rx.recv_timeout(Duration::from_secs(10)).expect("the terminal's output");
    let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    let mut parser = vt100::Parser::new(size(ROWS), size(COLS), 0);
    parser.process(&raw);
    let lines = parser.screen().contents().lines().map(|l| l.trim_end().to_owned()).filter(|l| !l.is_empty()).collect();
    Screen { code: status.exit_code(), raw, lines }
}

/// Whether `s` shows a spinner (indicatif's braille frames) or a progress bar.
fn shows_progress(s: &str) -> bool {
    s.chars().any(|c| ('\u{2800}'..='\u{28FF}').contains(&c)) || s.contains("[=") || s.contains("=>")
}

fn plain(run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains('\x1b'), "{name} has an escape sequence: {}", run.all());
        assert!(!shows_progress(text), "{name} shows progress drawing: {}", run.all());
        assert!(!text.contains('\r'), "{name} redraws a line: {}", run.all());
    }
}

#[test]
fn progress_and_tables_render_cleanly_on_a_terminal_and_piped_output_is_plain() {
    let dir = Workdir::new();
    dir.run(&["--sandbox", "connect", "x", "--port", "0"]).expect(0);
    let video = demo_mp4();
    let video = video.to_str().unwrap();

    // On a terminal: a spinner while publishing and waiting for X to process the video…
    let tty = in_terminal(&dir, &["--sandbox", "post", "--to", "x", "--text", "on a terminal", "--media", video]);
    assert_eq!(tty.code, 0, "{}", tty.all());
    let raw = String::from_utf8_lossy(&tty.raw);
    assert!(raw.contains('\x1b') && raw.contains("publishing to 1 target(s)"), "a spinner was drawn: {}", tty.all());
    assert!(raw.contains("waiting for x processing"), "the wait was shown: {}", tty.all());
    // …and none of it left: the screen holds the headline and the table, each line whole.
    assert_eq!(tty.lines.len(), 4, "{}", tty.all());
    assert!(
        tty.lines[0].starts_with("✓ Post ") && tty.lines[0].ends_with(" is published on its target."),
        "{}",
        tty.all()
    );
    assert!(tty.lines[1].starts_with("platform  account           state      remote id"), "{}", tty.all());
    assert!(tty.lines[2].chars().all(|c| c == '─' || c == ' '), "{}", tty.all());
    assert!(tty.lines[3].starts_with("x         konektly_sandbox  published  "), "{}", tty.all());
    assert!(tty.lines[3].contains("https://x.com/konektly_sandbox/status/"), "{}", tty.all());
    assert!(!tty.lines.iter().any(|l| shows_progress(l)), "{}", tty.all());
    // The columns line up: the URL starts where its header does.
    let url_col = tty.lines[1].find("url / detail").unwrap();
    assert_eq!(tty.lines[3].find("https://"), Some(url_col), "{}", tty.all());

    // Piped: the same command prints plain lines, progress included.
    let piped = dir.run(&["--sandbox", "post", "--to", "x", "--text", "piped", "--media", video]).expect(0);
    plain(&piped);
    let lines: Vec<&str> = piped.stdout.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("  x upload: 100% (")), "{}", piped.all());
    let at = lines.iter().position(|l| l.starts_with("✓ Post ")).unwrap_or_else(|| panic!("{}", piped.all()));
    assert_eq!(lines.len(), at + 4, "headline and table last: {}", piped.all());

    // A table on a terminal is the table piped, line for line.
    let tty = in_terminal(&dir, &["status"]);
    assert_eq!(tty.code, 0, "{}", tty.all());
    let piped = dir.run(&["status"]).expect(0);
    plain(&piped);
    assert_eq!(tty.lines, piped.stdout.lines().map(|l| l.trim_end().to_owned()).collect::<Vec<_>>());
}

/// The demo draws the most: a spinner per connection and per target, then tables. On a
/// terminal, the screen ends with every step's line and both tables, and no drawing left.
#[test]
fn the_demo_on_a_terminal_leaves_only_its_lines_and_tables() {
    let dir = Workdir::new();
    let tty = in_terminal(&dir, &["demo", "--schedule-in", "2"]);
    assert_eq!(tty.code, 0, "{}", tty.all());
    assert!(String::from_utf8_lossy(&tty.raw).contains("authorize → redirect → code exchange"), "{}", tty.all());
    assert!(!tty.lines.iter().any(|l| shows_progress(l)), "{}", tty.all());
    for platform in ["x", "tiktok", "facebook", "instagram", "youtube"] {
        let connected = tty.lines.iter().filter(|l| l.starts_with(&format!("  ✓ {platform:<9} "))).count();
        assert_eq!(connected, 1, "{platform}: {}", tty.all());
        let rows = tty
            .lines
            .iter()
            .filter(|l| l.starts_with(&format!("{platform:<9}  ")) && l.contains(" published "))
            .count();
        assert_eq!(rows, 2, "{platform}: {}", tty.all());
    }
    assert!(tty.lines.iter().any(|l| l.starts_with("The sandbox received 12 posts")), "{}", tty.all());
    assert!(tty.lines.iter().any(|l| l.starts_with("  konektly --owner demo status")), "{}", tty.all());
    // Each line is whole: nothing starts in the middle of another's words.
    let expected_starts = [
        "Sandbox up:",
        "Store:",
        "Owner:",
        "1.",
        "2.",
        "3.",
        "4.",
        "  ",
        "Post ",
        "platform",
        "─",
        "x ",
        "tiktok",
        "facebook",
        "instagram",
        "youtube",
        "The ",
        "note:",
    ];
    for l in &tty.lines {
        assert!(expected_starts.iter().any(|s| l.starts_with(s)), "an unexpected line `{l}`: {}", tty.all());
    }
}
