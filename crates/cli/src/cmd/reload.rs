//! `kafka-pdp reload`: ask a running server to reload its policy directory.

use std::process::ExitCode;

use anyhow::Context as _;
use kafka_pdp_server::proto::{
    policy_admin_client::PolicyAdminClient, ReloadOutcome, ReloadRequest,
};

use super::{client_runtime, unix_ms, ServerArgs, EXIT_ERROR, EXIT_OK};

/// Reload a server's policy directory now.
///
/// Exits 1 if the new set is rejected; the server keeps serving the last
/// good set.
#[derive(clap::Args, Debug)]
#[command(after_help = super::EXIT_CODES)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let response = client_runtime()?.block_on(async {
        let channel = args.server.connect().channel().await?;
        let response = PolicyAdminClient::new(channel)
            .reload(ReloadRequest {})
            .await
            .context("reload call failed")?;
        anyhow::Ok(response.into_inner())
    })?;

    let outcome = response.outcome.unwrap_or_default();
    print_outcome(&outcome);
    println!("active version: {}", response.active_version);
    let code = if outcome.accepted {
        EXIT_OK
    } else {
        EXIT_ERROR
    };
    Ok(ExitCode::from(code))
}

/// Prints a reload outcome, the rejection's error lines included.
pub fn print_outcome(outcome: &ReloadOutcome) {
    let verdict = if outcome.accepted {
        "accepted"
    } else {
        "rejected"
    };
    println!(
        "last reload:    {verdict} at {}",
        unix_ms(outcome.at_unix_ms)
    );
    println!("  version:      {}", outcome.version);
    for line in outcome.error.lines() {
        println!("  {line}");
    }
}
