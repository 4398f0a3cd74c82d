//! `kafka-pdp audit subscribe`: follow a running PDP's audit trail over gRPC.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use kafka_pdp_server::proto::{audit_stream_client::AuditStreamClient, SubscribeRequest};

use crate::cmd::{client_runtime, ServerArgs, EXIT_OK};

/// Print a running PDP's audit records as JSON lines, live, until
/// interrupted. The PDP must run with `--audit-dir`.
#[derive(clap::Args, Debug)]
pub struct SubscribeArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// `User:alice`, or `alice` for any principal type.
    #[arg(long)]
    principal: Option<String>,

    /// `Topic`, `Group`, `Cluster`, `TransactionalId`, ...
    #[arg(long, value_name = "TYPE")]
    resource_type: Option<String>,

    /// Only resources whose name starts with this.
    #[arg(long, value_name = "PREFIX")]
    resource_prefix: Option<String>,

    #[arg(long, value_enum)]
    decision: Option<DecisionArg>,

    /// Replay from this sequence number (1 is the first record) before
    /// following. Default: only records written after the call.
    #[arg(long, value_name = "SEQ")]
    from_sequence: Option<u64>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DecisionArg {
    Allow,
    Deny,
}

pub fn run(args: SubscribeArgs) -> anyhow::Result<ExitCode> {
    use kafka_pdp_server::proto::Decision;
    let decision = match args.decision {
        None => Decision::Unspecified,
        Some(DecisionArg::Allow) => Decision::Allow,
        Some(DecisionArg::Deny) => Decision::Deny,
    };
    let request = SubscribeRequest {
        principal: args.principal.unwrap_or_default(),
        resource_type: args.resource_type.unwrap_or_default(),
        resource_name_prefix: args.resource_prefix.unwrap_or_default(),
        decision: decision as i32,
        from_sequence: args.from_sequence.unwrap_or(0),
    };
    client_runtime()?.block_on(async {
        let channel = args.server.connect().channel().await?;
        let mut records = AuditStreamClient::new(channel)
            .subscribe(request)
            .await
            .context("subscribe call failed")?
            .into_inner();
        let mut out = io::stdout().lock();
        while let Some(record) = records.message().await.context("audit stream failed")? {
            writeln!(out, "{}", record.json)?;
            // One line at a time: a reader (a pipe to a shipper) sees each at once.
            out.flush()?;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::from(EXIT_OK))
}
