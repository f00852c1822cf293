//! The `konektly` program.

use std::process::ExitCode;

use clap::Parser;
use konektly_cli::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info,konektly=debug",
        _ => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .try_init();
    let json = cli.json;
    match konektly_cli::commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            konektly_cli::commands::print_error(&e, json);
            ExitCode::FAILURE
        }
    }
}
