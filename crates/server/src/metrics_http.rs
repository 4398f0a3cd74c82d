//! The Prometheus endpoint: `GET /metrics` in the text format (0.0.4) on a
//! socket of its own (`serve --metrics-listen`), plain HTTP/1.1.
//!
//! Nothing is counted twice. The decision path keeps its plain atomics
//! ([`Metrics`](crate::metrics::Metrics), the audit export gates,
//! [`Alerts`](crate::alerts::Alerts)); a collector reads them on each scrape,
//! so `Status` and `/metrics` always agree.
//!
//! Metrics carry names and figures only, never a principal or a topic: the
//! labels are fixed sets (`decision`, `reason`, `rule`, `outcome`), the
//! sink's index and the policy version hash.
//!
//! Known shortcomings: the endpoint is plain HTTP without authentication,
//! which is why `serve` binds it to loopback unless told otherwise; and an
//! export sink is labelled by its index (`0` is Kafka when both run, then
//! OTLP), because the gates carry no names.

use std::{fmt, net::SocketAddr, sync::Arc};

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use prometheus_client::{
    collector::Collector,
    encoding::{prometheus_text, DescriptorEncoder, NoLabelSet},
    metrics::MetricType,
    registry::Registry,
};
use tokio::net::TcpListener;

use crate::{alerts::Rule, decide::Pdp, metrics::FailClosed};

/// The path metrics are served on; every other path is 404.
pub const METRICS_PATH: &str = "/metrics";

/// Binds the endpoint's socket; the caller checks the address is allowed.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` for `pdp` on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    pdp: Arc<Pdp>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PdpCollector { pdp }));
    let router = Router::new()
        .route(METRICS_PATH, get(scrape))
        .with_state(Arc::new(registry));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(registry): State<Arc<Registry>>) -> Response {
    let mut body = String::new();
    if let Err(error) = prometheus_text::encode(&mut body, &registry) {
        tracing::warn!(%error, "encoding the metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let content_type = [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)];
    (content_type, body).into_response()
}

/// Reads the PDP's counters on each scrape.
#[derive(Debug)]
struct PdpCollector {
    pdp: Arc<Pdp>,
}

impl Collector for PdpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let out = &mut encoder;
        self.decisions(out)?;
        self.fail_closed(out)?;
        self.audit(out)?;
        self.policies(out)?;
        self.alerts(out)
    }
}

impl PdpCollector {
    fn decisions(&self, out: &mut DescriptorEncoder) -> fmt::Result {
        let metrics = self.pdp.metrics();
        let (allowed, denied) = metrics.outcome_counts();
        let by_outcome = [("allow", allowed), ("deny", denied)];
        let help = "Decisions answered by the PDP, by outcome (fail-closed ones are denials)";
        counters(out, "kafka_pdp_decisions", help, "decision", &by_outcome)?;
        let (allowed, denied) = metrics.reported_counts();
        let by_outcome = [("allow", allowed), ("deny", denied)];
        let help = "Decisions shims answered from their caches and reported, by outcome";
        let name = "kafka_pdp_shim_cached_decisions";
        counters(out, name, help, "decision", &by_outcome)?;
        let (_, hits) = metrics.decisions();
        let help = "Decisions answered from the PDP's decision cache";
        counter(out, "kafka_pdp_cache_hits", help, hits)
    }

    fn fail_closed(&self, out: &mut DescriptorEncoder) -> fmt::Result {
        let metrics = self.pdp.metrics();
        let gates = self.gates();
        let export_behind = gates.iter().map(|g| g.stats().denied).sum();
        let by_reason = [
            (
                "invalid_request",
                metrics.fail_closed_count(FailClosed::InvalidRequest),
            ),
            (
                "evaluation_error",
                metrics.fail_closed_count(FailClosed::EvaluationError),
            ),
            (
                "audit_unavailable",
                metrics.fail_closed_count(FailClosed::AuditUnavailable),
            ),
            ("audit_export_behind", export_behind),
        ];
        let help = "Denials no policy decided (bad input, errors, audit trail down), by reason";
        counters(out, "kafka_pdp_fail_closed", help, "reason", &by_reason)
    }

    fn audit(&self, out: &mut DescriptorEncoder) -> fmt::Result {
        let Some(auditor) = self.pdp.auditor() else {
            return Ok(());
        };
        let help = "Calls whose decisions the audit trail could not record (answered DENY)";
        counter(out, "kafka_pdp_audit_failures", help, auditor.failures())?;
        let log = auditor.log().stats();
        let help = "Records made durable in the local audit log since start";
        counter(out, "kafka_pdp_audit_records", help, log.records)?;
        let help = "fdatasyncs of the local audit log that acknowledged records (group commits)";
        counter(
            out,
            "kafka_pdp_audit_group_commits",
            help,
            log.group_commits,
        )?;
        let stats: Vec<_> = self.gates().iter().map(|g| g.stats()).collect();
        if stats.is_empty() {
            return Ok(());
        }
        let sinks: Vec<String> = (0..stats.len()).map(|i| i.to_string()).collect();
        let per_sink = |value: fn(&kafka_pdp_audit_export::ExportStats) -> u64| {
            sinks
                .iter()
                .zip(&stats)
                .map(|(sink, s)| (sink.as_str(), value(s)))
                .collect::<Vec<_>>()
        };
        let lag = per_sink(|s| s.lag);
        let help =
            "Audit records not yet confirmed by the off-host sink (0: Kafka if on, then OTLP)";
        gauges(
            out,
            "kafka_pdp_audit_export_lag_records",
            help,
            "sink",
            &lag,
        )?;
        let bound = per_sink(|s| s.max_lag);
        let help = "Lag past which the PDP denies every decision";
        gauges(
            out,
            "kafka_pdp_audit_export_max_lag_records",
            help,
            "sink",
            &bound,
        )?;
        let over = per_sink(|s| u64::from(s.over_bound));
        let help = "1 while the sink is past its lag bound and the PDP denies";
        gauges(
            out,
            "kafka_pdp_audit_export_over_bound",
            help,
            "sink",
            &over,
        )?;
        let delivered = per_sink(|s| s.delivered);
        let help = "Audit records the sink confirmed since start";
        counters(
            out,
            "kafka_pdp_audit_export_delivered",
            help,
            "sink",
            &delivered,
        )?;
        let failed = per_sink(|s| s.failed_batches);
        let help = "Export batches that failed and were retried";
        counters(
            out,
            "kafka_pdp_audit_export_failed_batches",
            help,
            "sink",
            &failed,
        )
    }

    fn policies(&self, out: &mut DescriptorEncoder) -> fmt::Result {
        let store = self.pdp.store();
        let active = store.active();
        let version = [("version", active.version())];
        let mut metric = out.encode_descriptor(
            "kafka_pdp_policy_version_info",
            "The active policy set's version (a content hash); always 1",
            None,
            MetricType::Gauge,
        )?;
        metric.encode_family(&version)?.encode_gauge(&1u64)?;
        let help = "Policies in the active set";
        let count = u64::try_from(active.snapshot.policy_count()).unwrap_or(u64::MAX);
        gauge(out, "kafka_pdp_policies", help, count)?;
        let help = "When the active policy set became active, Unix seconds";
        let at = active.activated_at_unix_ms as f64 / 1000.0;
        float_gauge(
            out,
            "kafka_pdp_policy_activated_timestamp_seconds",
            help,
            at,
        )?;
        let (accepted, rejected) = store.reload_counts();
        let outcomes = [("accepted", accepted), ("rejected", rejected)];
        let help = "Policy reloads (file change, SIGHUP, Reload RPC), by outcome";
        counters(out, "kafka_pdp_policy_reloads", help, "outcome", &outcomes)?;
        let Some(last) = store.last_reload() else {
            return Ok(());
        };
        let help = "1 if the last reload was accepted, 0 if it was rejected (the old set serves)";
        let accepted = u64::from(last.accepted);
        gauge(out, "kafka_pdp_policy_last_reload_accepted", help, accepted)
    }

    fn alerts(&self, out: &mut DescriptorEncoder) -> fmt::Result {
        let alerts = self.pdp.alerts();
        let by_rule = Rule::ALL.map(|rule| (rule.as_str(), alerts.fired(rule)));
        let help = "Alerts raised, by rule (once per episode; see `serve --help`)";
        counters(out, "kafka_pdp_alerts", help, "rule", &by_rule)?;
        let help = "Denials of principals the full alert map could not track";
        let untracked = alerts.untracked_denials();
        counter(out, "kafka_pdp_alert_untracked_denials", help, untracked)?;
        let help = "Principals whose denials the alert rule is tracking";
        let tracked = alerts.tracked_principals() as u64;
        gauge(out, "kafka_pdp_alert_tracked_principals", help, tracked)
    }

    fn gates(&self) -> &[Arc<kafka_pdp_audit_export::Gate>] {
        self.pdp.auditor().map_or(&[][..], |a| a.export_gates())
    }
}

/// A counter without labels; the encoder appends `_total` to `name`.
fn counter(out: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    out.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// A counter with one label, one sample per `(label value, count)`.
fn counters(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> fmt::Result {
    let mut metric = out.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(value, count) in values {
        metric
            .encode_family(&[(label, value)])?
            .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
    }
    Ok(())
}

fn gauge(out: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    out.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn float_gauge(out: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    out.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn gauges(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> fmt::Result {
    let mut metric = out.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for &(value, level) in values {
        metric
            .encode_family(&[(label, value)])?
            .encode_gauge(&level)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Limits, store::PolicyStore};
    use kafka_pdp_core::{Action, Operation, Principal, ResourceType};

    fn pdp() -> Arc<Pdp> {
        let policies = crate::EmbeddedPolicies {
            schema: include_str!("../../../policies/schema.cedarschema"),
            policies: &[],
            entities: "[]",
            links: "[]",
        };
        let store = PolicyStore::embedded(&policies).expect("an empty policy set loads");
        Arc::new(Pdp::new(Arc::new(store), None, Limits::default()))
    }

    fn render(pdp: Arc<Pdp>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PdpCollector { pdp }));
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn every_family_is_rendered_with_its_labels() {
        let pdp = pdp();
        pdp.metrics().outcomes(3, 4);
        pdp.metrics().fail_closed(FailClosed::InvalidRequest, 2);
        let text = render(pdp);
        for line in [
            "# TYPE kafka_pdp_decisions_total counter",
            "kafka_pdp_decisions_total{decision=\"allow\"} 3",
            "kafka_pdp_decisions_total{decision=\"deny\"} 4",
            "kafka_pdp_cache_hits_total 0",
            "kafka_pdp_fail_closed_total{reason=\"invalid_request\"} 2",
            "kafka_pdp_fail_closed_total{reason=\"audit_export_behind\"} 0",
            "kafka_pdp_alerts_total{rule=\"principal_denials\"} 0",
            "kafka_pdp_alerts_total{rule=\"phi_read_rise\"} 0",
            "kafka_pdp_policies 0",
            "kafka_pdp_policy_reloads_total{outcome=\"rejected\"} 0",
            "# TYPE kafka_pdp_alert_tracked_principals gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(text.contains("kafka_pdp_policy_version_info{version=\""));
        assert!(
            !text.contains("kafka_pdp_audit_failures"),
            "no trail, no audit metrics"
        );
    }

    #[test]
    fn an_alert_shows_in_its_rule_counter() {
        let pdp = pdp();
        let mallory = Principal::new("User", "mallory").unwrap();
        let action = Action::literal(Operation::Read, ResourceType::Topic, "orders").unwrap();
        pdp.observe_reported(&mallory, &action, false, 1000);
        let text = render(pdp);
        let line = "kafka_pdp_alerts_total{rule=\"principal_denials\"} 1";
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        assert!(!text.contains("mallory"), "no principal in a metric");
    }
}
