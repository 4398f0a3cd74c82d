//! `serve --audit-kafka-*`, `--audit-otlp-*`: ship the audit trail off the
//! host. The audit directory is the spool; each sink has its own cursor and
//! lag bound, and while any sink is over its bound the PDP denies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use kafka_pdp_audit_export::{
    kafka::{KafkaExporter, KafkaSinkConfig, DEFAULT_TOPIC},
    otlp::{OtlpExporter, OtlpSinkConfig, OtlpTls},
    ExportError, Gate, TlsFile, DEFAULT_MAX_LAG,
};

/// The off-host sinks' flags.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Also ship every audit record, unchanged, to a Kafka topic through an
    /// idempotent producer (at-least-once; the record's sequence number is
    /// the message key). The audit directory is the spool: records wait
    /// there while Kafka is away. Needs `--audit-dir`. Default: off.
    #[arg(long, value_name = "HOST:PORT", requires = "audit_dir")]
    audit_kafka_bootstrap: Option<String>,

    /// Topic the audit records go to.
    #[arg(
        long,
        value_name = "NAME",
        default_value = DEFAULT_TOPIC,
        requires = "audit_kafka_bootstrap"
    )]
    audit_kafka_topic: String,

    /// librdkafka properties file (`key=value` lines) with the SASL and TLS
    /// settings for the sink (`security.protocol=SASL_SSL`,
    /// `ssl.ca.location`, `sasl.*`), so that no secret is on the command
    /// line. Its values are never logged. Without `SSL` or `SASL_SSL` the
    /// bootstrap servers must be loopback addresses. Default: none
    /// (PLAINTEXT).
    #[arg(long, value_name = "FILE", requires = "audit_kafka_bootstrap")]
    audit_kafka_config: Option<PathBuf>,

    /// Undelivered records past which the PDP denies every decision until
    /// the Kafka sink catches up.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_LAG,
        requires = "audit_kafka_bootstrap"
    )]
    audit_kafka_max_lag: u64,

    /// Also ship every audit record as an OpenTelemetry log record (body:
    /// the stored line) to this OTLP/gRPC logs receiver: `https://host:port`
    /// with `--audit-otlp-ca`, or `http://host:port` to a loopback address
    /// only. At-least-once, spooled like the Kafka sink. Needs
    /// `--audit-dir`. Default: off.
    #[arg(long, value_name = "URL", requires = "audit_dir")]
    audit_otlp_endpoint: Option<String>,

    /// PEM file with the CA certificate(s) that verify the OTLP collector's
    /// certificate; the only roots trusted. Required for `https://`.
    #[arg(long, value_name = "FILE", requires = "audit_otlp_endpoint")]
    audit_otlp_ca: Option<PathBuf>,

    /// PEM certificate chain the PDP presents to a collector that requires
    /// mutual TLS. Needs `--audit-otlp-key` and `--audit-otlp-ca`.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["audit_otlp_key", "audit_otlp_ca"]
    )]
    audit_otlp_cert: Option<PathBuf>,

    /// PEM private key of `--audit-otlp-cert`.
    #[arg(long, value_name = "FILE", requires = "audit_otlp_cert")]
    audit_otlp_key: Option<PathBuf>,

    /// Undelivered records past which the PDP denies every decision until
    /// the OTLP sink catches up.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_LAG,
        requires = "audit_otlp_endpoint"
    )]
    audit_otlp_max_lag: u64,
}

/// The configured sinks; none runs until [`Exporters::spawn`].
pub struct Exporters {
    kafka: Option<KafkaExporter>,
    otlp: Option<OtlpExporter>,
}

impl Exporters {
    /// Builds the exporters the flags ask for; they connect lazily.
    pub fn new(args: &ExportArgs, audit_dir: Option<&Path>) -> anyhow::Result<Exporters> {
        let mut exporters = Exporters {
            kafka: None,
            otlp: None,
        };
        let Some(dir) = audit_dir else {
            return Ok(exporters);
        };
        if let Some(bootstrap) = &args.audit_kafka_bootstrap {
            let mut config = KafkaSinkConfig::new(dir, bootstrap.clone());
            config.topic = args.audit_kafka_topic.clone();
            config.client_config = args.audit_kafka_config.clone();
            config.max_lag = args.audit_kafka_max_lag;
            let exporter = KafkaExporter::new(config).context("the audit Kafka sink")?;
            exporters.kafka = Some(exporter);
        }
        if let Some(endpoint) = &args.audit_otlp_endpoint {
            if endpoint.starts_with("https://") && args.audit_otlp_ca.is_none() {
                anyhow::bail!(
                    "--audit-otlp-endpoint `{endpoint}`: `https://` needs `--audit-otlp-ca FILE`, \
                     the CA that verifies the collector"
                );
            }
            let mut config = OtlpSinkConfig::new(dir, endpoint.clone());
            config.tls = args.audit_otlp_ca.clone().map(|ca| OtlpTls {
                ca,
                identity: args
                    .audit_otlp_cert
                    .clone()
                    .zip(args.audit_otlp_key.clone()),
            });
            config.max_lag = args.audit_otlp_max_lag;
            let exporter = OtlpExporter::new(config).map_err(otlp_error)?;
            exporters.otlp = Some(exporter);
        }
        Ok(exporters)
    }

    /// The sinks' lag bounds, for the decision path.
    pub fn gates(&self) -> Vec<Arc<Gate>> {
        let kafka = self.kafka.as_ref().map(|e| e.gate());
        let otlp = self.otlp.as_ref().map(|e| e.gate());
        kafka.into_iter().chain(otlp).collect()
    }

    /// Starts every sink on the runtime; they stop with it.
    pub fn spawn(self, runtime: &tokio::runtime::Runtime) {
        if let Some(exporter) = self.kafka {
            runtime.spawn(exporter.run(std::future::pending()));
        }
        if let Some(exporter) = self.otlp {
            runtime.spawn(exporter.run(std::future::pending()));
        }
    }
}

/// Names the flag behind a bad OTLP setting, so the error says what to fix.
fn otlp_error(error: ExportError) -> anyhow::Error {
    let flag = match &error {
        ExportError::TlsFile { file, .. } => match file {
            TlsFile::Ca => "--audit-otlp-ca",
            TlsFile::Cert => "--audit-otlp-cert",
            TlsFile::Key => "--audit-otlp-key",
        },
        ExportError::Endpoint(_) => "--audit-otlp-endpoint",
        _ => "the audit OTLP sink",
    };
    anyhow::Error::new(error).context(flag)
}
