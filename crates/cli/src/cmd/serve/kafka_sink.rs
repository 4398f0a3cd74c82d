//! `serve --audit-kafka-*`: ship the audit trail to a Kafka topic.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kafka_pdp_audit_export::kafka::{KafkaExporter, KafkaSinkConfig, DEFAULT_TOPIC};

/// The Kafka topic sink's flags.
#[derive(clap::Args, Debug)]
pub struct KafkaSinkArgs {
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
    /// settings for the sink, so that no secret is on the command line. Its
    /// values are never logged. Default: none (PLAINTEXT).
    #[arg(long, value_name = "FILE", requires = "audit_kafka_bootstrap")]
    audit_kafka_config: Option<PathBuf>,

    /// Undelivered records past which the PDP denies every decision until
    /// the sink catches up.
    #[arg(
        long,
        value_name = "N",
        default_value_t = kafka_pdp_audit_export::DEFAULT_MAX_LAG,
        requires = "audit_kafka_bootstrap"
    )]
    audit_kafka_max_lag: u64,
}

/// Builds the exporter when a bootstrap address is given; it connects lazily.
pub fn exporter(
    args: &KafkaSinkArgs,
    audit_dir: Option<&Path>,
) -> anyhow::Result<Option<KafkaExporter>> {
    let (Some(bootstrap), Some(dir)) = (&args.audit_kafka_bootstrap, audit_dir) else {
        return Ok(None);
    };
    let mut config = KafkaSinkConfig::new(dir, bootstrap.clone());
    config.topic = args.audit_kafka_topic.clone();
    config.client_config = args.audit_kafka_config.clone();
    config.max_lag = args.audit_kafka_max_lag;
    let exporter = KafkaExporter::new(config).context("the audit Kafka sink")?;
    Ok(Some(exporter))
}

/// Starts `exporter` on the runtime; it stops with the runtime.
pub fn spawn(runtime: &tokio::runtime::Runtime, exporter: KafkaExporter) {
    runtime.spawn(exporter.run(std::future::pending()));
}
