//! `kafka-pdp status`: the active policy set of a running server.

use std::process::ExitCode;

use anyhow::Context as _;
use kafka_pdp_server::{
    proto::{policy_admin_client::PolicyAdminClient, StatusRequest},
    COUNTER_KEYS,
};

use super::{client_runtime, unix_ms, ServerArgs, EXIT_OK};

/// Show a server's active policy version and its last reload.
///
/// Also prints the server's counters (decisions, cache hits and fail-closed
/// denials by reason) and its recent alerts.
#[derive(clap::Args, Debug)]
#[command(after_help = super::EXIT_CODES)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let status = client_runtime()?.block_on(async {
        let channel = args.server.connect().channel().await?;
        let response = PolicyAdminClient::new(channel)
            .status(StatusRequest {})
            .await
            .context("status call failed")?;
        anyhow::Ok(response)
    })?;
    let counters: Vec<(&str, String)> = COUNTER_KEYS
        .iter()
        .filter_map(|key| {
            let value = status.metadata().get(*key)?.to_str().ok()?;
            Some((*key, value.to_owned()))
        })
        .collect();
    let status = status.into_inner();

    println!("active version: {}", status.active_version);
    println!("activated at:   {}", unix_ms(status.activated_at_unix_ms));
    println!("policies:       {}", status.policy_count);
    let dir = if status.policy_dir.is_empty() {
        "(embedded defaults, not reloadable)"
    } else {
        &status.policy_dir
    };
    println!("policy dir:     {dir}");
    if let Some(last) = status.last_reload {
        super::reload::print_outcome(&last);
    }
    for (key, value) in counters {
        println!("{}: {value}", key.trim_start_matches("x-pdp-"));
    }
    for alert in &status.recent_alerts {
        println!(
            "alert: {} {} {} in {} s (threshold {}) at {}",
            alert.rule,
            alert.subject,
            alert.count,
            alert.window_secs,
            alert.threshold,
            unix_ms(alert.at_unix_ms)
        );
    }
    Ok(ExitCode::from(EXIT_OK))
}
