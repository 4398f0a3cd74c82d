//! The OpenTelemetry logs sink: OTLP over gRPC to a collector.
//!
//! Each record becomes one OTLP log record whose body is the stored line,
//! unchanged (so a backend can still check the chain), with the CloudEvents
//! attributes under OpenTelemetry's `cloudevents.*` names, the sequence
//! number as `kafka_pdp.audit.sequence`, and severity INFO for an ALLOW,
//! WARN for a DENY. A batch is one `Export` call; the cursor moves once the
//! collector accepts it without rejecting any record (at-least-once).
//!
//! The OTLP messages are built with `opentelemetry-proto` and sent with its
//! generated tonic client rather than through the OpenTelemetry SDK's log
//! pipeline: the SDK's exporter takes its batches from its own processors,
//! and building them by hand is not part of its public interface, while the
//! cursor needs to know exactly which records a collector confirmed.
//!
//! Transport: `https://` to a collector on another host, its certificate
//! verified against a CA file (rustls through tonic, like the PDP's own
//! server), with the PDP's certificate and key for mutual TLS if the
//! collector asks for one. Plain `http://` is accepted only for a collector
//! on a loopback address (a sidecar on the same host): the records are PHI
//! metadata and never cross a network in clear text. A collector whose
//! certificate the CA did not sign gets nothing: the handshake fails, the
//! batch counts as failed, and the records wait in the local log.
//!
//! Known shortcoming: the CA and client certificate are read once, at
//! start; a certificate rotated on disk takes effect only after a restart
//! (bites when the client certificate expires while the PDP runs).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::{
    collector::logs::v1::{logs_service_client::LogsServiceClient, ExportLogsServiceRequest},
    common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber},
    resource::v1::Resource,
};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use crate::exporter::{ExportSettings, Exporter, Sink, DEFAULT_BATCH, DEFAULT_POLL};
use crate::{error::ExportError, error::TlsFile, RawRecord};

/// File name of the cursor, in the audit log directory.
pub const CURSOR_FILE: &str = "export-otlp.cursor";

/// How long one `Export` call may take before it counts as failed.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the collector.
#[derive(Clone, Debug)]
pub struct OtlpSinkConfig {
    /// The audit log directory (the spool); the cursor lives in it.
    pub dir: PathBuf,
    /// `https://host:port` of an OTLP/gRPC logs receiver, or
    /// `http://host:port` when `host` is a loopback address.
    pub endpoint: String,
    /// Required for `https://`, refused for `http://`.
    pub tls: Option<OtlpTls>,
    pub max_lag: u64,
    pub batch: usize,
    pub poll: Duration,
}

impl OtlpSinkConfig {
    pub fn new(dir: impl Into<PathBuf>, endpoint: impl Into<String>) -> Self {
        OtlpSinkConfig {
            dir: dir.into(),
            endpoint: endpoint.into(),
            tls: None,
            max_lag: crate::DEFAULT_MAX_LAG,
            batch: DEFAULT_BATCH,
            poll: DEFAULT_POLL,
        }
    }
}

/// The PEM files for TLS to the collector.
#[derive(Clone, Debug)]
pub struct OtlpTls {
    /// The CA (one or more certificates) that issued the collector's
    /// certificate; the only roots trusted.
    pub ca: PathBuf,
    /// The PDP's certificate chain and key, for a collector that requires
    /// mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The collector as a [`Sink`].
pub struct OtlpSink {
    client: LogsServiceClient<Channel>,
}

/// Tails the log and ships it to the collector.
pub type OtlpExporter = Exporter<OtlpSink>;

impl Exporter<OtlpSink> {
    /// Checks the endpoint and reads the TLS files, then loads the cursor;
    /// connects lazily.
    pub fn new(config: OtlpSinkConfig) -> Result<OtlpExporter, ExportError> {
        let client = LogsServiceClient::new(endpoint(&config)?.connect_lazy());
        let settings = ExportSettings {
            dir: config.dir,
            cursor_file: CURSOR_FILE,
            max_lag: config.max_lag,
            batch: config.batch,
            poll: config.poll,
        };
        Exporter::with_sink(settings, OtlpSink { client })
    }
}

/// The tonic endpoint for `config`: `https://` with its TLS files, or
/// `http://` to a loopback address.
fn endpoint(config: &OtlpSinkConfig) -> Result<Endpoint, ExportError> {
    let url = &config.endpoint;
    let bad = |why: &str| ExportError::Endpoint(format!("`{url}`: {why}"));
    let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let endpoint = Endpoint::from(uri.clone())
        .timeout(EXPORT_TIMEOUT)
        .connect_timeout(EXPORT_TIMEOUT);
    match (uri.scheme_str(), &config.tls) {
        (Some("https"), Some(tls)) => endpoint
            .tls_config(client_tls(tls)?)
            .map_err(|e| bad(&e.to_string())),
        (Some("https"), None) => Err(bad(
            "`https://` needs the CA file that verifies the collector",
        )),
        (Some("http"), None) if crate::is_loopback(host) => Ok(endpoint),
        (Some("http"), None) => Err(bad(
            "plain `http://` only to a loopback address; use `https://` with a CA file",
        )),
        (Some("http"), Some(_)) => Err(bad("TLS files given for a plain `http://` endpoint")),
        _ => Err(bad("expected `https://host:port` or `http://host:port`")),
    }
}

/// Reads and checks every file now, so that a typo fails at start and
/// names the file, not at the first handshake.
fn client_tls(tls: &OtlpTls) -> Result<ClientTlsConfig, ExportError> {
    let ca = read_certs(TlsFile::Ca, &tls.ca)?;
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((cert, key)) = &tls.identity {
        let identity = Identity::from_pem(read_certs(TlsFile::Cert, cert)?, read_key(key)?);
        config = config.identity(identity);
    }
    Ok(config)
}

/// A PEM file with at least one certificate, every one well formed.
fn read_certs(file: TlsFile, path: &Path) -> Result<Vec<u8>, ExportError> {
    let pem = read_pem(file, path)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| tls_error(file, path, format!("not a PEM certificate: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(tls_error(file, path, "holds no PEM certificate".into()));
    }
    Ok(pem)
}

/// A PEM file with a private key. The error never quotes the file.
fn read_key(path: &Path) -> Result<Vec<u8>, ExportError> {
    let pem = read_pem(TlsFile::Key, path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| tls_error(TlsFile::Key, path, format!("no PEM private key: {e}")))?;
    Ok(pem)
}

fn read_pem(file: TlsFile, path: &Path) -> Result<Vec<u8>, ExportError> {
    std::fs::read(path).map_err(|e| tls_error(file, path, format!("cannot read: {e}")))
}

fn tls_error(file: TlsFile, path: &Path, why: String) -> ExportError {
    ExportError::TlsFile {
        file,
        path: path.to_owned(),
        why,
    }
}

impl Sink for OtlpSink {
    fn name(&self) -> &'static str {
        "OTLP"
    }

    async fn ship(&mut self, batch: &[RawRecord]) -> Result<(), String> {
        let log_records = batch.iter().map(log_record).collect::<Result<_, _>>()?;
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![string_attr("service.name", "kafka-pdp")],
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "kafka-pdp.audit".into(),
                        ..InstrumentationScope::default()
                    }),
                    log_records,
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let response = self
            .client
            .export(request)
            .await
            .map_err(|s| s.to_string())?;
        match response.into_inner().partial_success {
            Some(partial) if partial.rejected_log_records > 0 => Err(format!(
                "the collector rejected {} records: {}",
                partial.rejected_log_records, partial.error_message
            )),
            _ => Ok(()),
        }
    }
}

/// The attributes of a stored line that the log record repeats.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    time: &'a str,
    #[serde(default)]
    subject: &'a str,
    data: Data<'a>,
}

#[derive(serde::Deserialize)]
struct Data<'a> {
    decision: &'a str,
}

fn log_record(record: &RawRecord) -> Result<LogRecord, String> {
    let bad = |why: String| format!("record {}: {why}", record.seq);
    let envelope: Envelope =
        serde_json::from_slice(&record.line).map_err(|e| bad(e.to_string()))?;
    let line = std::str::from_utf8(&record.line).map_err(|e| bad(e.to_string()))?;
    let (severity, text) = match envelope.data.decision {
        "ALLOW" => (SeverityNumber::Info, "INFO"),
        _ => (SeverityNumber::Warn, "WARN"),
    };
    Ok(LogRecord {
        time_unix_nano: unix_nanos(envelope.time).map_err(bad)?,
        observed_time_unix_nano: now_nanos(),
        severity_number: severity as i32,
        severity_text: text.into(),
        body: Some(string_value(line)),
        attributes: vec![
            string_attr("cloudevents.event_id", envelope.id),
            string_attr("cloudevents.event_source", envelope.source),
            string_attr("cloudevents.event_type", envelope.kind),
            string_attr("cloudevents.event_subject", envelope.subject),
            KeyValue {
                key: "kafka_pdp.audit.sequence".into(),
                value: Some(AnyValue {
                    value: Some(Value::IntValue(record.seq as i64)),
                }),
                ..KeyValue::default()
            },
            string_attr("kafka_pdp.audit.decision", envelope.data.decision),
        ],
        ..LogRecord::default()
    })
}

fn string_value(text: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(text.to_owned())),
    }
}

fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(string_value(value)),
        ..KeyValue::default()
    }
}

fn unix_nanos(rfc3339: &str) -> Result<u64, String> {
    let time: jiff::Timestamp = rfc3339
        .parse()
        .map_err(|e| format!("`time` `{rfc3339}`: {e}"))?;
    u64::try_from(time.as_nanosecond()).map_err(|_| format!("`time` `{rfc3339}` is before 1970"))
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_its_line_as_body_and_its_envelope_as_attributes() {
        let line = br#"{"specversion":"1.0","id":"7","source":"pdp-a","type":"dev.kafkapdp.audit.decision.v1","time":"2026-12-03T10:00:00.5Z","subject":"Topic:t","sequence":"00000000000000000007","data":{"decision":"DENY"},"audithash":"ab"}"#;
        let record = RawRecord {
            seq: 7,
            line: line.to_vec(),
        };
        let log = log_record(&record).unwrap();
        let body = log.body.unwrap().value.unwrap();
        assert_eq!(
            body,
            Value::StringValue(String::from_utf8(line.to_vec()).unwrap())
        );
        assert_eq!(log.severity_number, SeverityNumber::Warn as i32);
        assert_eq!(log.time_unix_nano, 1_796_292_000_500_000_000);
        let keys: Vec<_> = log.attributes.iter().map(|a| a.key.as_str()).collect();
        assert!(keys.contains(&"kafka_pdp.audit.sequence"), "{keys:?}");
    }

    fn config(endpoint: &str, tls: Option<OtlpTls>) -> OtlpSinkConfig {
        OtlpSinkConfig {
            tls,
            ..OtlpSinkConfig::new("unused", endpoint)
        }
    }

    fn endpoint_error(endpoint: &str, tls: Option<OtlpTls>) -> String {
        match super::endpoint(&config(endpoint, tls)) {
            Ok(_) => panic!("`{endpoint}` must be refused"),
            Err(e) => e.to_string(),
        }
    }

    /// A CA file, a client certificate and key, and a file that is not PEM.
    fn pem_files() -> (tempfile::TempDir, OtlpTls) {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let tls = OtlpTls {
            ca: write("ca.pem", &cert.cert.pem()),
            identity: Some((
                write("client.pem", &cert.cert.pem()),
                write("client.key", &cert.signing_key.serialize_pem()),
            )),
        };
        write("junk.pem", "not a certificate\n");
        (dir, tls)
    }

    #[test]
    fn plain_http_is_only_for_a_loopback_collector() {
        for url in [
            "http://127.0.0.1:4317",
            "http://localhost:4317",
            "http://[::1]:4317",
        ] {
            assert!(super::endpoint(&config(url, None)).is_ok(), "{url}");
        }
        let err = endpoint_error("http://10.1.2.3:4317", None);
        assert!(
            err.contains("`http://10.1.2.3:4317`") && err.contains("loopback"),
            "{err}"
        );
        let err = endpoint_error("grpc://127.0.0.1:4317", None);
        assert!(err.contains("expected `https://"), "{err}");
    }

    #[test]
    fn https_needs_a_ca_and_a_ca_needs_https() {
        let err = endpoint_error("https://collector.example:4317", None);
        assert!(err.contains("CA file"), "{err}");
        let (_dir, tls) = pem_files();
        let err = endpoint_error("http://127.0.0.1:4317", Some(tls.clone()));
        assert!(err.contains("plain `http://`"), "{err}");
        assert!(super::endpoint(&config("https://10.1.2.3:4317", Some(tls))).is_ok());
    }

    #[test]
    fn a_missing_or_unusable_tls_file_is_named_at_start() {
        let (dir, tls) = pem_files();
        let url = "https://127.0.0.1:4317";
        let missing = OtlpTls {
            ca: dir.path().join("nope.pem"),
            ..tls.clone()
        };
        let err = super::endpoint(&config(url, Some(missing))).unwrap_err();
        assert!(
            matches!(
                err,
                ExportError::TlsFile {
                    file: TlsFile::Ca,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("nope.pem"), "{err}");

        let junk = dir.path().join("junk.pem");
        let not_pem = OtlpTls {
            ca: junk.clone(),
            ..tls.clone()
        };
        let err = super::endpoint(&config(url, Some(not_pem))).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");

        let (cert, _) = tls.identity.clone().unwrap();
        let bad_key = OtlpTls {
            identity: Some((cert, junk)),
            ..tls
        };
        let err = super::endpoint(&config(url, Some(bad_key))).unwrap_err();
        assert!(
            matches!(
                err,
                ExportError::TlsFile {
                    file: TlsFile::Key,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("not a certificate"), "{err}");
    }

    #[test]
    fn a_line_that_is_not_a_record_is_an_error_naming_its_number() {
        let record = RawRecord {
            seq: 9,
            line: b"{}".to_vec(),
        };
        assert!(log_record(&record).unwrap_err().starts_with("record 9:"));
    }
}
