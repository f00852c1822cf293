//! The `konektly` command-line program, as a library so that its flows can be tested: the demo
//! ([`demo`]), connecting an account through the OAuth redirect ([`connect`]), and the real-use
//! commands ([`commands`]), all against the real platforms or the sandbox
//! (`konektly-testkit`).
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod demo;
pub mod ui;

/// What a command returns: its errors are konektly's, or plain words.
pub type Result<T> = std::result::Result<T, CliError>;

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
