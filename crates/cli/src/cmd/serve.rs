//! `kafka-pdp serve`: run the policy decision point.

use std::{
    io::Write, net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration,
};

use anyhow::bail;
use kafka_pdp_audit_export::Gate;
use kafka_pdp_server::audit::AuditSettings;
use kafka_pdp_server::config::{
    Limits, PolicySource, ServeConfig, Transport, DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_LISTEN,
    DEFAULT_MAX_ACTIONS_PER_REQUEST, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_REQUEST_TIMEOUT,
};
use kafka_pdp_server::Bound;

use super::EXIT_OK;

mod alerts;
mod audit_export;
mod audit_log;

/// The default policies of `policies/`, compiled in.
pub const EMBEDDED: kafka_pdp_server::EmbeddedPolicies =
    include!(concat!(env!("OUT_DIR"), "/embedded_policies.rs"));

/// Serve authorization decisions over gRPC.
///
/// Prints `listening on <ip:port>` to stdout once the socket is bound (the
/// real port when `--listen` asks for port 0), then `metrics on <ip:port>`
/// with `--metrics-listen`; logs go to stderr, filtered by `RUST_LOG`
/// (default `info`: DENY decisions at info, ALLOW at debug, alerts at warn
/// with target `kafka_pdp::alert`).
/// SIGHUP reloads the policy directory; SIGTERM and Ctrl-C stop the server
/// after open calls finish (at most 5 s).
#[derive(clap::Args, Debug)]
#[command(after_help = super::EXIT_CODES)]
pub struct Args {
    /// Policy directory (schema.cedarschema, *.cedar, bindings.entities.json,
    /// links.json), reloaded on change, on SIGHUP and on the Reload RPC.
    /// Default: the policies embedded in the binary, which are never reloaded.
    #[arg(long, value_name = "DIR")]
    policy_dir: Option<PathBuf>,

    /// Address to listen on, `ip:port`; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Serve without TLS. Only on a loopback address, unless
    /// `--allow-remote-plaintext`. Default: off (TLS is required).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_client_ca"])]
    plaintext: bool,

    /// With `--plaintext`, also listen on a non-loopback address. Default: off.
    #[arg(long, requires = "plaintext")]
    allow_remote_plaintext: bool,

    /// Server certificate chain (PEM). Required unless `--plaintext`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// Key (PEM) of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Require client certificates issued by this CA (PEM): mutual TLS.
    /// Default: none (clients are not asked for a certificate).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,

    /// Turn the decision cache off. Default: on.
    #[arg(long)]
    no_cache: bool,

    /// Most decisions the cache holds before it is emptied and starts over.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CACHE_MAX_ENTRIES)]
    cache_max_entries: usize,

    /// Most actions one Authorize call may carry.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ACTIONS_PER_REQUEST)]
    max_actions_per_request: usize,

    /// Largest request message decoded, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,

    /// Most concurrent calls (HTTP/2 streams) per connection.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONCURRENT_STREAMS)]
    max_concurrent_streams: u32,

    /// A call unanswered after this many milliseconds fails with CANCELLED.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = DEFAULT_REQUEST_TIMEOUT.as_millis() as u64
    )]
    request_timeout_ms: u64,

    /// Record every decision in a tamper-evident audit trail in DIR (created
    /// if missing), durably, before answering; a decision the trail cannot
    /// record is answered DENY. Needs `--audit-key`. Default: off.
    #[arg(long, value_name = "DIR", requires = "audit_key")]
    audit_dir: Option<PathBuf>,

    /// Ed25519 private key (PKCS#8 PEM, readable by its owner only) that
    /// signs the trail's checkpoints; `kafka-pdp audit keygen --out FILE`
    /// makes one.
    #[arg(long, value_name = "FILE", requires = "audit_dir")]
    audit_key: Option<PathBuf>,

    #[command(flatten)]
    audit_log: audit_log::LogArgs,

    // Boxed: the sinks' flags would make `Serve` the one large variant of
    // the subcommand enum.
    #[command(flatten)]
    audit_export: Box<audit_export::ExportArgs>,

    #[command(flatten)]
    metrics: alerts::MetricsArgs,

    #[command(flatten)]
    alerts: alerts::AlertArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The sinks' clients bind to the runtime they are made in.
    let exporters = {
        let _entered = runtime.enter();
        audit_export::Exporters::new(&args.audit_export, args.audit_dir.as_deref())?
    };
    let config = config(args, exporters.gates())?;
    exporters.spawn(&runtime);
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        anyhow::Ok(kafka_pdp_server::serve(config, announce, shutdown).await?)
    })?;
    Ok(ExitCode::from(EXIT_OK))
}

fn config(args: Args, export_gates: Vec<Arc<Gate>>) -> anyhow::Result<ServeConfig> {
    let transport = match (args.plaintext, args.tls_cert, args.tls_key) {
        (true, _, _) => Transport::Plaintext {
            allow_remote: args.allow_remote_plaintext,
        },
        (false, Some(cert), Some(key)) => Transport::Tls {
            cert,
            key,
            client_ca: args.tls_client_ca,
        },
        _ => bail!("serving needs `--tls-cert` and `--tls-key`, or `--plaintext`"),
    };
    let policies = match args.policy_dir {
        Some(dir) => PolicySource::Dir(dir),
        None => PolicySource::Embedded(EMBEDDED),
    };
    let metrics = args.metrics.endpoint();
    let alerts = args.alerts.config();
    Ok(ServeConfig {
        listen: args.listen,
        transport,
        policies,
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_concurrent_streams: args.max_concurrent_streams,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            max_actions_per_request: args.max_actions_per_request,
        },
        cache_max_entries: (!args.no_cache).then_some(args.cache_max_entries),
        audit: args
            .audit_dir
            .zip(args.audit_key)
            .map(|(dir, key)| AuditSettings {
                dir,
                key,
                log: args.audit_log.settings(),
                export_gates,
            }),
        metrics,
        alerts,
    })
}

/// The lines on stdout: tests and scripts read the bound ports from them.
/// `listening on` is always the first.
fn announce(bound: Bound) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", bound.listen);
    if let Some(metrics) = bound.metrics {
        let _ = writeln!(out, "metrics on {metrics}");
    }
    let _ = out.flush();
}

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are
/// installed here, before the server binds and announces its address: a
/// signal sent right after the `listening on` line must stop the server
/// gracefully, not kill it.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
