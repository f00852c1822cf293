//! The `konektly` command-line program, as a library so that its flows can be tested: the demo
//! ([`demo`]), connecting an account through the OAuth redirect ([`connect`]), and the real-use
//! commands ([`commands`]), all against the real platforms or the sandbox
//! (`konektly-testkit`).
#![forbid(unsafe_code)]

pub mod app;
pub mod background;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod demo;
pub mod doctor;
pub mod queue;
pub mod serve;
pub mod ui;

/// What a command returns: its errors are konektly's, or plain words.
pub type Result<T> = std::result::Result<T, CliError>;

/// How a command that ran ended, as its exit status says. Errors are [`CliError`]s (status 1,
/// or 3 for a post refused by the platforms' rules); a command line that does not parse is
/// clap's status 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Status 0: everything is done as asked (published, scheduled as asked, valid, all fine).
    Done,
    /// Status 3: the command ran, and what it reports needs you: a target blocked, failed, its
    /// outcome unknown, cancelled or still in progress; a post refused by the rules; a cancel
    /// that came too late for some targets; a problem `doctor` found.
    Attention,
}

impl Exit {
    /// The status number.
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Attention => ATTENTION,
        }
    }

    /// [`Exit::Attention`] if `attention`, else [`Exit::Done`].
    pub fn attention_if(attention: bool) -> Self {
        if attention { Exit::Attention } else { Exit::Done }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// Exit status of an error.
pub const ERROR: u8 = 1;
/// Exit status of something that needs attention (see [`Exit::Attention`]).
pub const ATTENTION: u8 = 3;

/// The exit statuses and what each means, as `--help`, the man page and the README say.
pub const EXIT_STATUSES: [(u8, &str); 4] = [
    (
        0,
        "done as asked: every target published (or scheduled, with --at), the post valid, the cancel complete, \
         the check clean",
    ),
    (
        1,
        "error: the command could not do its job (configuration, database, network, an unknown id, a refused \
         authorization)",
    ),
    (2, "usage: the command line does not parse"),
    (
        3,
        "needs attention: some target is blocked (reconnect its account), failed, its outcome unknown, cancelled \
         or still in progress; the post breaks the platforms' rules (validate, post); a cancel came too late for \
         some targets; `doctor` found a problem",
    ),
];

/// The exit statuses for `--help`, wrapped.
pub fn exit_status_help() -> String {
    let mut out = vec!["Exit status:".to_owned()];
    for (code, text) in EXIT_STATUSES {
        let indent = format!("  {code}  ");
        let mut line = indent.clone();
        let mut empty = true;
        for word in text.split_whitespace() {
            if !empty && line.chars().count() + 1 + word.chars().count() > 96 {
                out.push(std::mem::replace(&mut line, " ".repeat(indent.len())));
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        out.push(line);
    }
    out.join("\n")
}

/// An error of the program, said in plain words.
#[derive(Debug)]
pub enum CliError {
    /// From konektly.
    Konektly(konektly_core::Error),
    /// Anything else.
    Message(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Konektly(e) => write!(f, "{e}"),
            CliError::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

impl CliError {
    /// The exit status it ends the program with: 3 for a post refused by the rules (it needs
    /// rewriting, as `validate` says), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Konektly(konektly_core::Error::InvalidPost(_)) => ATTENTION,
            _ => ERROR,
        }
    }
}

impl From<konektly_core::Error> for CliError {
    fn from(e: konektly_core::Error) -> Self {
        CliError::Konektly(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Message(e.to_string())
    }
}

/// An error in plain words.
pub fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(CliError::Message(message.into()))
}
