//! The `kafka-pdp` binary: parses arguments, sets up tracing, dispatches.
//!
//! Exit codes, for every subcommand: 0 success (for `check`: ALLOW), 1 an
//! error or a failed check (invalid policies, failing policy tests, a server
//! that cannot be reached), 2 a usage error, 3 DENY (`check` and `explain`).

mod cmd;

use std::{io::IsTerminal, process::ExitCode};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// A policy decision point for Apache Kafka, on Cedar policies.
#[derive(Parser)]
#[command(name = "kafka-pdp", version, about, after_help = cmd::EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(cmd::serve::Args),
    Validate(cmd::validate::Args),
    Test(cmd::test::Args),
    Check(cmd::check::Args),
    Explain(cmd::explain::Args),
    Status(cmd::status::Args),
    Reload(cmd::reload::Args),
    Audit(cmd::audit::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Test(args) => cmd::test::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Reload(args) => cmd::reload::run(args),
        Command::Audit(args) => cmd::audit::run(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", chain(&e));
        ExitCode::from(cmd::EXIT_ERROR)
    })
}

/// The error and its causes, `: `-separated. Most errors here already say
/// their cause in their message; a cause is printed only when it adds words.
fn chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Logs go to stderr (stdout carries results); `RUST_LOG` filters, default `info`.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
