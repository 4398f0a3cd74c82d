//! `kafka-pdp check`: one decision, locally or from a running server.
//!
//! Both ways build the same `CheckRequest` and answer it with the server's
//! own decision path, so a local check says what the server would say.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use kafka_pdp_core::{
    model::{self, PatternType},
    PolicySnapshot,
};
use kafka_pdp_server::{
    config::Limits,
    decide::Pdp,
    proto::{self, policy_admin_client::PolicyAdminClient, Decision},
    request::{operation_to_proto, resource_type_to_proto},
    store::PolicyStore,
};

use super::{client_runtime, TlsArgs, EXIT_DENY, EXIT_OK};

/// Decide one request, locally or on a server.
///
/// ALLOW exits 0, DENY exits 3. Both ways use the server's own decision path,
/// so a local check says what a server with the same policies would say.
#[derive(clap::Args, Debug)]
#[command(after_help = super::EXIT_CODES)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub request: RequestArgs,
}

/// Where the decision is made: a local policy directory or a server.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false, id = "source")]
pub struct SourceArgs {
    /// Decide locally against this policy directory.
    #[arg(long, value_name = "DIR", group = "source")]
    pub policy_dir: Option<PathBuf>,

    /// Ask the server at this address, `host:port`.
    #[arg(long, value_name = "ADDR", group = "source")]
    pub server: Option<String>,

    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The request, as Kafka would send it.
#[derive(clap::Args, Clone, Debug)]
pub struct RequestArgs {
    /// The Kafka principal, `type:name`, such as `User:alice`.
    #[arg(long, value_name = "TYPE:NAME")]
    pub principal: String,

    /// The operation, in Kafka or Cedar spelling (`DESCRIBE_CONFIGS`, `DescribeConfigs`).
    #[arg(long, value_name = "OP")]
    pub operation: String,

    /// The resource type: Topic, Group, Cluster, TransactionalId, DelegationToken, User.
    #[arg(long, value_name = "TYPE", default_value = "Topic")]
    pub resource_type: String,

    /// The resource name. Default for the Cluster type: `kafka-cluster`;
    /// required for every other type.
    #[arg(long, value_name = "NAME")]
    pub resource: Option<String>,

    /// `literal`, or `prefixed` to ask about every name under a prefix.
    #[arg(long, value_name = "PATTERN", default_value = "literal")]
    pub pattern_type: String,

    /// Client address, IPv4 or IPv6.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub client_address: String,

    /// Listener name.
    #[arg(long, value_name = "NAME", default_value = "SASL_SSL")]
    pub listener: String,

    /// Security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long, value_name = "PROTOCOL", default_value = "SASL_SSL")]
    pub security_protocol: String,

    /// Client id.
    #[arg(long, value_name = "ID", default_value = "kafka-pdp-cli")]
    pub client_id: String,

    /// Kafka API name of the request, such as `FETCH` or `PRODUCE`.
    /// Default: empty (no particular request).
    #[arg(long, value_name = "API", default_value = "")]
    pub request_api: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let response = decide(&args.source, &args.request, false)?;
    print_decision(&response);
    Ok(exit_code(&response))
}

/// Answers the request locally or remotely, with or without explanation.
pub fn decide(
    source: &SourceArgs,
    request: &RequestArgs,
    explain: bool,
) -> anyhow::Result<proto::CheckResponse> {
    let request = check_request(request, explain)?;
    match (&source.policy_dir, &source.server) {
        (Some(dir), _) => decide_locally(dir, request),
        (None, Some(server)) => decide_remotely(&source.tls.connect(server), request),
        (None, None) => anyhow::bail!("give `--policy-dir DIR` or `--server ADDR`"),
    }
}

fn decide_locally(
    dir: &PathBuf,
    request: proto::CheckRequest,
) -> anyhow::Result<proto::CheckResponse> {
    let snapshot = PolicySnapshot::load_dir(dir)
        .map_err(|e| anyhow::anyhow!("the policy set is invalid:\n{e}"))?;
    let store = Arc::new(PolicyStore::new(snapshot, None));
    let pdp = Pdp::new(store, None, Limits::default());
    Ok(client_runtime()?.block_on(pdp.check(request))?)
}

fn decide_remotely(
    connect: &kafka_pdp_server::client::Connect,
    request: proto::CheckRequest,
) -> anyhow::Result<proto::CheckResponse> {
    client_runtime()?.block_on(async {
        let channel = connect.channel().await?;
        let response = PolicyAdminClient::new(channel)
            .check(request)
            .await
            .context("check call failed")?;
        Ok(response.into_inner())
    })
}

/// Parses the flags with the core's own parsers, so a typo is named here.
fn check_request(args: &RequestArgs, explain: bool) -> anyhow::Result<proto::CheckRequest> {
    let principal: model::Principal = args.principal.parse()?;
    let operation: model::Operation = args.operation.parse()?;
    let resource_type: model::ResourceType = args.resource_type.parse()?;
    let pattern_type: PatternType = args.pattern_type.parse()?;
    let resource = match (&args.resource, resource_type) {
        (Some(name), _) => name.clone(),
        (None, model::ResourceType::Cluster) => kafka_pdp_core::model::CLUSTER_NAME.to_owned(),
        (None, _) => anyhow::bail!("`--resource NAME` is required for type `{resource_type}`"),
    };
    Ok(proto::CheckRequest {
        context: Some(proto::RequestContext {
            principal: Some(proto::Principal {
                r#type: principal.principal_type().to_owned(),
                name: principal.name().to_owned(),
            }),
            client_address: args.client_address.clone(),
            listener: args.listener.clone(),
            security_protocol: args.security_protocol.clone(),
            client_id: args.client_id.clone(),
            request_api: args.request_api.clone(),
            ..Default::default()
        }),
        action: Some(proto::Action {
            operation: operation_to_proto(operation) as i32,
            resource_type: resource_type_to_proto(resource_type) as i32,
            resource_name: resource,
            pattern_type: match pattern_type {
                PatternType::Literal => proto::PatternType::Literal,
                PatternType::Prefixed => proto::PatternType::Prefixed,
            } as i32,
            ..Default::default()
        }),
        explain,
    })
}

/// ALLOW 0, DENY 3; anything else (never sent) reads as DENY.
pub fn exit_code(response: &proto::CheckResponse) -> ExitCode {
    match Decision::try_from(response.decision) {
        Ok(Decision::Allow) => ExitCode::from(EXIT_OK),
        Ok(Decision::Deny | Decision::Unspecified) | Err(_) => ExitCode::from(EXIT_DENY),
    }
}

pub fn print_decision(response: &proto::CheckResponse) {
    let decision = match Decision::try_from(response.decision) {
        Ok(Decision::Allow) => "ALLOW",
        _ => "DENY",
    };
    println!("decision: {decision}");
    println!("policy version: {}", response.policy_version);
    println!(
        "determining policies: {}",
        list(&response.determining_policies)
    );
    if response.errors.is_empty() {
        println!("errors: (none)");
    }
    for error in &response.errors {
        println!("error: {}: {}", error.policy_id, error.message);
    }
}

/// Comma-separated, or `(none)`.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}
