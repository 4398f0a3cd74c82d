//! The Kafka topic sink.
//!
//! Each stored record line is produced unchanged as the message value, keyed
//! by its sequence number (the 20-digit `sequence` attribute). The key
//! spreads records evenly over the topic's partitions and names each one, so
//! a consumer finds duplicates by key and gaps by missing numbers; a topic
//! with a single partition also keeps the log's order. (Keying by principal
//! would keep one principal's records together but put a busy service
//! account's whole history on one partition.)
//!
//! The producer is idempotent (`enable.idempotence=true`, `acks=all`): the
//! broker drops the retries of a batch it already has. A batch is shipped
//! whole or retried whole, with exponential backoff; the cursor moves only
//! after every record of the batch is confirmed.
//!
//! SASL and TLS settings come from a librdkafka properties file
//! (`serve --audit-kafka-config`), readable by the PDP's user only, e.g.:
//!
//! ```text
//! security.protocol=SASL_SSL
//! ssl.ca.location=/etc/kafka-pdp/kafka-ca.pem
//! sasl.mechanism=SCRAM-SHA-512
//! sasl.username=kafka-pdp-audit
//! sasl.password=<secret>
//! ```
//!
//! librdkafka is built with TLS (system OpenSSL), so SSL and SASL_SSL with
//! PLAIN or SCRAM connect, and it verifies the broker's certificate and host
//! name (`ssl.endpoint.identification.algorithm=https`, its default) against
//! `ssl.ca.location`; mutual TLS takes `ssl.certificate.location` and
//! `ssl.key.location`. The file's keys are passed through as written, and
//! no value of it reaches a log or an error message: librdkafka redacts its
//! sensitive settings itself, and a setting it refuses is reported by key.
//! PLAINTEXT and SASL_PLAINTEXT are refused at start unless every bootstrap
//! server is a loopback address (a broker on the same host).
//!
//! Several PDPs may share one topic: their records carry distinct CloudEvents
//! `source`s, so a consumer tells them apart by (`source`, key).
//!
//! Known shortcomings:
//! - librdkafka reads `ssl.ca.location` and the client certificate when the
//!   producer is built: a rotated file takes effect after a restart (or after
//!   a fatal producer error replaces the producer).
//! - The decisions denied while the sink is over bound are recorded too, so
//!   the lag keeps growing during an outage; it falls back under the bound
//!   only once the exporter ships faster than the brokers ask.
//! - Segments that retention deletes before they are shipped are skipped
//!   (their numbers show as a gap in the topic). With the six-year default
//!   this needs an outage of years; a short retention makes it real.
//! - The log is read with blocking file I/O on the runtime (at most one
//!   8 MiB chunk per batch and a 16 KiB head probe per poll), which can
//!   hold one async worker that long on a slow disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::exporter::{ExportSettings, Exporter, Sink, DEFAULT_BATCH, DEFAULT_POLL};
use crate::{error::ExportError, RawRecord};

/// Topic the records go to when none is named.
pub const DEFAULT_TOPIC: &str = "kafka-pdp-audit";

/// File name of the cursor, in the audit log directory.
pub const CURSOR_FILE: &str = "export-kafka.cursor";

/// How long librdkafka keeps trying one record before it reports failure
/// (`message.timeout.ms`; the client config file may change it).
pub const DEFAULT_MESSAGE_TIMEOUT_MS: u32 = 30_000;

/// Settings the exporter owns; a client config file may not change them.
const FIXED: [(&str, &[&str]); 2] = [("enable.idempotence", &["true"]), ("acks", &["all", "-1"])];

/// How to reach the topic.
#[derive(Clone, Debug)]
pub struct KafkaSinkConfig {
    /// The audit log directory (the spool); the cursor lives in it.
    pub dir: PathBuf,
    /// `host:port[,host:port...]`.
    pub bootstrap: String,
    pub topic: String,
    /// A librdkafka properties file (`key=value` lines) for SASL and TLS
    /// settings, so that no secret appears on a command line. Its values
    /// are never logged.
    pub client_config: Option<PathBuf>,
    pub max_lag: u64,
    pub batch: usize,
    pub poll: Duration,
}

impl KafkaSinkConfig {
    /// The defaults above.
    pub fn new(dir: impl Into<PathBuf>, bootstrap: impl Into<String>) -> Self {
        KafkaSinkConfig {
            dir: dir.into(),
            bootstrap: bootstrap.into(),
            topic: DEFAULT_TOPIC.to_owned(),
            client_config: None,
            max_lag: crate::DEFAULT_MAX_LAG,
            batch: DEFAULT_BATCH,
            poll: DEFAULT_POLL,
        }
    }
}

/// Reads a properties file: `key=value` (or `key: value`) lines, `#` and `!`
/// comments. Errors name the line and the key, never a value.
pub fn read_client_config(path: &Path) -> Result<Vec<(String, String)>, ExportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExportError::io("read", path, e))?;
    let mut pairs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let bad = |why: String| ExportError::Config {
            path: path.to_owned(),
            line: i + 1,
            why,
        };
        let Some((key, value)) = line.split_once(['=', ':']) else {
            return Err(bad("expected `key=value`".into()));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(bad("empty key".into()));
        }
        if key == "bootstrap.servers" {
            return Err(bad("`bootstrap.servers` comes from the command line".into()));
        }
        if let Some((_, allowed)) = FIXED.iter().find(|(k, _)| *k == key) {
            if !allowed.contains(&value) {
                return Err(bad(format!("`{key}` must be `{}`", allowed[0])));
            }
        }
        pairs.push((key.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

/// Builds the idempotent producer. The config is never printed: it may hold
/// a SASL password.
fn producer(config: &KafkaSinkConfig) -> Result<FutureProducer, ExportError> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap)
        .set("message.timeout.ms", DEFAULT_MESSAGE_TIMEOUT_MS.to_string())
        .set("client.id", "kafka-pdp-audit-export");
    let pairs = match &config.client_config {
        Some(path) => read_client_config(path)?,
        None => Vec::new(),
    };
    require_tls_beyond_loopback(&config.bootstrap, &pairs)?;
    for (key, value) in pairs {
        client.set(key, value);
    }
    for (key, allowed) in FIXED {
        client.set(key, allowed[0]);
    }
    client
        .create()
        .map_err(|e| ExportError::Producer(without_values(e)))
}

/// Without TLS (librdkafka's default `security.protocol` is PLAINTEXT) every
/// bootstrap host must be on this machine: the records are PHI metadata.
/// The brokers a bootstrap server names later are not checked here; with a
/// loopback bootstrap they are the same host's in any sane deployment.
fn require_tls_beyond_loopback(
    bootstrap: &str,
    pairs: &[(String, String)],
) -> Result<(), ExportError> {
    let protocol = pairs
        .iter()
        .rfind(|(key, _)| key == "security.protocol")
        .map_or("plaintext", |(_, value)| value.as_str());
    if protocol.to_ascii_lowercase().ends_with("ssl") {
        return Ok(());
    }
    for server in bootstrap.split(',').map(str::trim) {
        let address = server.split_once("://").map_or(server, |(_, rest)| rest);
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        if !crate::is_loopback(host) {
            return Err(ExportError::ClearText(server.to_owned()));
        }
    }
    Ok(())
}

/// librdkafka's text for a setting it refused quotes the value (`Invalid
/// value "..." for configuration property "..."`), and rdkafka appends it
/// again: for `sasl.password`, or any misspelt key, that is the secret.
/// Keep the key, hide the value wherever it appears.
fn without_values(error: KafkaError) -> String {
    match error {
        KafkaError::ClientConfig(_, desc, key, value) if !value.is_empty() => {
            format!("`{key}`: {}", desc.replace(&value, "<value not shown>"))
        }
        KafkaError::ClientConfig(_, desc, key, _) => format!("`{key}`: {desc}"),
        other => other.to_string(),
    }
}

/// The topic as a [`Sink`].
pub struct KafkaSink {
    config: KafkaSinkConfig,
    producer: FutureProducer,
}

/// Tails the log and ships it to the topic. See the module docs.
pub type KafkaExporter = Exporter<KafkaSink>;

impl Exporter<KafkaSink> {
    /// Loads the cursor and builds the producer; connects lazily.
    pub fn new(config: KafkaSinkConfig) -> Result<KafkaExporter, ExportError> {
        let settings = ExportSettings {
            dir: config.dir.clone(),
            cursor_file: CURSOR_FILE,
            max_lag: config.max_lag,
            batch: config.batch,
            poll: config.poll,
        };
        let producer = producer(&config)?;
        tracing::info!(topic = %config.topic, "audit export to Kafka configured");
        Exporter::with_sink(settings, KafkaSink { config, producer })
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &'static str {
        "Kafka"
    }

    /// Produces every record and waits for all delivery reports.
    async fn ship(&mut self, batch: &[RawRecord]) -> Result<(), String> {
        let mut pending = Vec::with_capacity(batch.len());
        for record in batch {
            pending.push(self.send(record)?);
        }
        futures_all(pending).await
    }

    /// An idempotent producer that hit a fatal error (the broker lost its
    /// producer state, say) refuses every later record: start a new one,
    /// which gets a new producer id. The retried batch may then duplicate
    /// records already written; their sequence numbers show it.
    fn recover(&mut self) {
        if self.producer.client().fatal_error().is_none() {
            return;
        }
        match producer(&self.config) {
            Ok(fresh) => {
                tracing::warn!("audit export: the Kafka producer failed fatally; replaced it");
                self.producer = fresh;
            }
            Err(why) => tracing::warn!(%why, "audit export: cannot replace the Kafka producer"),
        }
    }
}

impl KafkaSink {
    fn send(&self, record: &RawRecord) -> Result<DeliveryFuture, String> {
        let key = format!("{:020}", record.seq);
        let message = FutureRecord::to(&self.config.topic)
            .key(&key)
            .payload(&record.line);
        self.producer
            .send_result(message)
            .map_err(|(e, _)| format!("record {}: {e}", record.seq))
    }
}

/// Waits for every delivery report, in order; the first failure fails all.
async fn futures_all(pending: Vec<DeliveryFuture>) -> Result<(), String> {
    for report in pending {
        match report.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(format!("delivery failed: {e}")),
            Err(_) => return Err("the producer dropped a delivery report".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.properties");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn client_config_reads_pairs_and_skips_comments() {
        let (_dir, path) = config_file(
            "# SASL\nsecurity.protocol=SASL_PLAINTEXT\n\nsasl.mechanism: PLAIN\n\
             ! other comment\nacks=all\n",
        );
        let pairs = read_client_config(&path).unwrap();
        let keys: Vec<_> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["security.protocol", "sasl.mechanism", "acks"]);
        assert_eq!(pairs[1].1, "PLAIN");
    }

    #[test]
    fn client_config_errors_name_line_and_key_but_never_the_value() {
        let (_dir, path) = config_file("sasl.password=hunter2\nenable.idempotence=false\n");
        let err = read_client_config(&path).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("`enable.idempotence`"),
            "{err}"
        );
        let (_dir, path) = config_file("sasl.password=hunter2\nsasl.username hunter2\n");
        let err = read_client_config(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && !err.contains("hunter2"), "{err}");
        let (_dir, path) = config_file("bootstrap.servers=x:1\n");
        assert!(read_client_config(&path).is_err());
    }

    fn sink_config(path: PathBuf) -> KafkaSinkConfig {
        let mut config = KafkaSinkConfig::new("unused", "127.0.0.1:9");
        config.client_config = Some(path);
        config
    }

    #[test]
    fn a_setting_librdkafka_refuses_is_named_by_key_without_its_value() {
        let (_dir, path) = config_file("sasl.passwrd=hunter2\n");
        let Err(err) = producer(&sink_config(path)) else {
            panic!("a misspelt key must be refused");
        };
        let err = err.to_string();
        assert!(
            err.contains("`sasl.passwrd`") && !err.contains("hunter2"),
            "{err}"
        );

        let (_dir, path) = config_file("security.protocol=hunter2\n");
        let Err(err) = producer(&sink_config(path)) else {
            panic!("an unknown protocol must be refused");
        };
        let err = err.to_string();
        assert!(
            err.contains("`security.protocol`") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn plaintext_reaches_only_loopback_brokers() {
        let plain = |protocol: &str| vec![("security.protocol".to_owned(), protocol.to_owned())];
        for local in [
            "127.0.0.1:9092",
            "localhost:9092,127.0.0.2:9093",
            "[::1]:9092",
        ] {
            assert!(require_tls_beyond_loopback(local, &[]).is_ok(), "{local}");
        }
        let err = require_tls_beyond_loopback("127.0.0.1:9092,10.0.0.5:9092", &[]).unwrap_err();
        assert!(err.to_string().contains("`10.0.0.5:9092`"), "{err}");
        let remote = "kafka-1.example:9093";
        assert!(require_tls_beyond_loopback(remote, &plain("SASL_PLAINTEXT")).is_err());
        assert!(require_tls_beyond_loopback(remote, &plain("SASL_SSL")).is_ok());
        assert!(require_tls_beyond_loopback(remote, &plain("ssl")).is_ok());
    }

    /// Built without librdkafka's `ssl` feature, SASL_SSL is refused here
    /// ("OpenSSL not available at build time").
    #[test]
    fn librdkafka_is_built_with_tls() {
        let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let (dir, path) = config_file(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.username=u\nsasl.password=p\n",
        );
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, ca.cert.pem()).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("ssl.ca.location={}\n", pem.display()));
        std::fs::write(&path, text).unwrap();
        if let Err(e) = producer(&sink_config(path)) {
            panic!("a SASL_SSL producer must build: {e}");
        }
    }
}
