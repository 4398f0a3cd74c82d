//! `kafka-pdp explain`: one decision with the policies behind it.

use std::process::ExitCode;

use super::check::{self, list, RequestArgs, SourceArgs};

/// Decide one request and show why.
///
/// Prints the decision, the policies considered with source and text, and
/// the principal's and resource's ancestors. Exits like `check`: ALLOW 0,
/// DENY 3.
#[derive(clap::Args, Debug)]
#[command(after_help = super::EXIT_CODES)]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,

    #[command(flatten)]
    request: RequestArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let response = check::decide(&args.source, &args.request, true)?;
    check::print_decision(&response);
    println!("principal parents: {}", list(&response.principal_parents));
    println!("resource parents: {}", list(&response.resource_parents));
    println!(
        "considered policies: {}",
        response.considered_policies.len()
    );
    for policy in &response.considered_policies {
        println!();
        println!("  {} ({})", policy.policy_id, policy.source);
        for line in policy.text.lines() {
            println!("    {line}");
        }
    }
    Ok(check::exit_code(&response))
}
