//! The `konektly` program.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use konektly_cli::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The program says itself what happened; the log is for -v. Colours only on a terminal.
    let filter = match cli.verbose {
        0 => "error",
        1 => "info,konektly=debug",
        _ => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let json = cli.json;
    match konektly_cli::commands::run(cli).await {
        Ok(exit) => exit.into(),
        Err(e) => {
            konektly_cli::commands::print_error(&e, json);
            ExitCode::from(e.exit_code())
        }
    }
}
