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
//! Known shortcoming: plaintext `http://` endpoints only; TLS to the
//! collector is not implemented yet (run the collector on the same host or
//! behind a local TLS proxy until it is).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::{
    collector::logs::v1::{logs_service_client::LogsServiceClient, ExportLogsServiceRequest},
    common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber},
    resource::v1::Resource,
};
use tonic::transport::{Channel, Endpoint};

use crate::exporter::{ExportSettings, Exporter, Sink, DEFAULT_BATCH, DEFAULT_POLL};
use crate::{error::ExportError, RawRecord};

/// File name of the cursor, in the audit log directory.
pub const CURSOR_FILE: &str = "export-otlp.cursor";

/// How long one `Export` call may take before it counts as failed.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the collector.
#[derive(Clone, Debug)]
pub struct OtlpSinkConfig {
    /// The audit log directory (the spool); the cursor lives in it.
    pub dir: PathBuf,
    /// `http://host:port` of an OTLP/gRPC logs receiver.
    pub endpoint: String,
    pub max_lag: u64,
    pub batch: usize,
    pub poll: Duration,
}

impl OtlpSinkConfig {
    pub fn new(dir: impl Into<PathBuf>, endpoint: impl Into<String>) -> Self {
        OtlpSinkConfig {
            dir: dir.into(),
            endpoint: endpoint.into(),
            max_lag: crate::DEFAULT_MAX_LAG,
            batch: DEFAULT_BATCH,
            poll: DEFAULT_POLL,
        }
    }
}

/// The collector as a [`Sink`].
pub struct OtlpSink {
    client: LogsServiceClient<Channel>,
}

/// Tails the log and ships it to the collector.
pub type OtlpExporter = Exporter<OtlpSink>;

impl Exporter<OtlpSink> {
    /// Loads the cursor; connects lazily.
    pub fn new(config: OtlpSinkConfig) -> Result<OtlpExporter, ExportError> {
        if !config.endpoint.starts_with("http://") {
            return Err(ExportError::Endpoint(format!(
                "`{}`: only `http://host:port` is supported",
                config.endpoint
            )));
        }
        let endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| ExportError::Endpoint(format!("`{}`: {e}", config.endpoint)))?
            .timeout(EXPORT_TIMEOUT)
            .connect_timeout(EXPORT_TIMEOUT);
        let client = LogsServiceClient::new(endpoint.connect_lazy());
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

    #[test]
    fn a_line_that_is_not_a_record_is_an_error_naming_its_number() {
        let record = RawRecord {
            seq: 9,
            line: b"{}".to_vec(),
        };
        assert!(log_record(&record).unwrap_err().starts_with("record 9:"));
    }
}
