//! The audit hook of the decision path.
//!
//! [`Auditor::record`] turns the decisions of one call into audit records
//! and waits until the trail has them durably (group commit with the other
//! calls in flight). When it cannot, every decision of the call becomes a
//! DENY that must not be cached, naming the reason, and the failure is
//! counted: nothing leaves the PDP unrecorded.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use kafka_pdp_audit::{self as audit, checkpoint, AuditConfig, AuditLog, DecisionEvent};
use kafka_pdp_audit_export::Gate;
use kafka_pdp_core::{Action, RequestContext};

use crate::{
    proto::{self, Decision},
    request::Reported,
    store::Active,
};

/// Where the trail lives and what signs it (`serve --audit-dir`,
/// `--audit-key`), and its shape; batching is the audit crate's default.
#[derive(Clone, Debug)]
pub struct AuditSettings {
    pub dir: PathBuf,
    /// Ed25519 PKCS#8 PEM private key, readable by its owner only.
    pub key: PathBuf,
    pub log: LogSettings,
    /// The lag bounds of the sinks that ship the trail off the host (Kafka,
    /// OTLP); while any is over its bound every decision is DENY.
    pub export_gates: Vec<Arc<Gate>>,
}

/// Rotation, retention, checkpoints and the name records carry.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// CloudEvents `source`: names this PDP among the replicas.
    pub source: String,
    pub max_segment_bytes: u64,
    pub max_segment_age: Duration,
    /// `None` keeps every segment.
    pub retention: Option<Duration>,
    pub checkpoint_every: u64,
}

/// Opens the trail before serving: checks its newest segment and checkpoint,
/// and steps over a torn write from a crash, saying so. Blocks while it
/// reads; it runs once, before the socket is bound.
pub fn open(settings: &AuditSettings) -> Result<Auditor, audit::AuditError> {
    let key = checkpoint::load_signing_key(&settings.key)?;
    let mut config = AuditConfig::new(&settings.dir, key);
    let shape = &settings.log;
    config.source.clone_from(&shape.source);
    config.max_segment_bytes = shape.max_segment_bytes;
    config.max_segment_age = shape.max_segment_age;
    config.retention = shape.retention;
    config.checkpoint_every = shape.checkpoint_every;
    let (log, report) = AuditLog::open(config)?;
    for torn in &report.recovered {
        tracing::warn!(
            file = %torn.file,
            offset = torn.offset,
            len = torn.len,
            "audit trail: stepped over a write torn by a crash (never acknowledged)"
        );
    }
    tracing::info!(
        dir = %settings.dir.display(),
        next_seq = report.next_seq,
        segment = %report.segment,
        "audit trail open"
    );
    let mut auditor = Auditor::new(log);
    auditor.export_gates = settings.export_gates.clone();
    Ok(auditor)
}

/// What an audit record needs from a request beyond what the core keeps:
/// fields the contract carries for the audit trail only.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    api_version: i32,
    correlation_id: i32,
    broker_id: i32,
    /// Kafka's `(logIfAllowed, logIfDenied)` of each action, in order.
    log_flags: Vec<(bool, bool)>,
}

impl RequestMeta {
    /// Taken from the request before it is validated (and consumed).
    pub fn of(context: Option<&proto::RequestContext>, actions: &[proto::Action]) -> Self {
        let context = context.cloned().unwrap_or_default();
        Self {
            api_version: context.request_api_version,
            correlation_id: context.correlation_id,
            broker_id: context.broker_id,
            log_flags: actions
                .iter()
                .map(|a| (a.log_if_allowed, a.log_if_denied))
                .collect(),
        }
    }
}

impl RequestMeta {
    /// Kafka's `logIfDenied` of action `index`: false for the checks Kafka
    /// expects to fail, such as listing a client's authorized operations.
    /// Unknown (no such action) counts as true, so a denial is never hidden.
    pub fn log_if_denied(&self, index: usize) -> bool {
        self.log_flags.get(index).is_none_or(|&(_, denied)| denied)
    }
}

/// What [`Auditor::record`] did with a call's decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded as the policies decided them.
    AsDecided,
    /// Turned into DENY because an off-host sink lags past its bound (counted
    /// by its gate), and recorded.
    DeniedExportBehind,
    /// Not recorded: every decision became a DENY.
    Failed,
}

/// The audit trail as the decision path sees it.
#[derive(Debug)]
pub struct Auditor {
    log: AuditLog,
    /// Calls whose decisions were turned into DENY because the trail failed.
    failures: AtomicU64,
    export_gates: Vec<Arc<Gate>>,
}

impl Auditor {
    pub fn new(log: AuditLog) -> Self {
        Self {
            log,
            failures: AtomicU64::new(0),
            export_gates: Vec::new(),
        }
    }

    /// The off-host sinks' lags and bounds.
    pub fn export_gates(&self) -> &[Arc<Gate>] {
        &self.export_gates
    }

    /// Calls denied because their decisions could not be recorded.
    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// Records one event per action and returns once they are durable. If
    /// the trail fails, or an off-host copy lags past its bound, every result
    /// becomes a DENY (fail closed), and the outcome says which.
    pub async fn record(
        &self,
        active: &Active,
        context: &RequestContext,
        meta: &RequestMeta,
        actions: &[Action],
        results: &mut [proto::ActionResult],
    ) -> Recorded {
        let mut outcome = Recorded::AsDecided;
        // Fail closed while the off-host copy lags too far: the decisions are
        // still recorded (as DENY), and the sink counts them.
        if let Some(gate) = self.export_gates.iter().find(|g| g.over_bound()) {
            gate.count_denied(results.len() as u64);
            results.iter_mut().for_each(deny_export_behind);
            outcome = Recorded::DeniedExportBehind;
        }
        let events = actions
            .iter()
            .zip(results.iter())
            .enumerate()
            .map(|(i, (action, result))| event(active, context, meta, i, action, result))
            .collect();
        if let Err(error) = self.log.append(events).await {
            self.failures.fetch_add(1, Relaxed);
            tracing::error!(%error, decisions = results.len(), "audit trail failed; denying");
            for result in results {
                deny(result, &error);
            }
            return Recorded::Failed;
        }
        outcome
    }
}

impl Auditor {
    /// Records decisions the shim answered from its cache, one record per
    /// fold, and returns once they are durable. An error leaves the shim
    /// holding them, to send again.
    pub async fn record_reported(&self, reported: &[Reported]) -> Result<(), audit::AuditError> {
        let events = reported.iter().map(reported_event).collect();
        self.log.append(events).await.map(drop)
    }
}

/// Carries a DENY forced by the trail into a `Check` answer built before it.
pub fn overrule_check(response: &mut proto::CheckResponse, result: &proto::ActionResult) {
    if response.decision == result.decision {
        return;
    }
    response.decision = result.decision;
    response.determining_policies.clear();
    response.errors = result
        .errors
        .iter()
        .map(|message| proto::EvaluationError {
            policy_id: String::new(),
            message: message.clone(),
        })
        .collect();
}

fn event(
    active: &Active,
    context: &RequestContext,
    meta: &RequestMeta,
    index: usize,
    action: &Action,
    result: &proto::ActionResult,
) -> DecisionEvent {
    // Admin tools ask without Kafka's flags: record them as "log both".
    let log_flags = meta.log_flags.get(index).copied().unwrap_or((true, true));
    let mut event = event_of(
        context,
        action,
        result.decision == Decision::Allow as i32,
        log_flags,
    );
    event.request.api_version = meta.api_version;
    event.request.correlation_id = meta.correlation_id;
    event.broker_id = meta.broker_id;
    event.policy = audit::PolicyRef {
        version: active.version().to_owned(),
        determining: result.determining_policies.clone(),
        errored: result.errors.iter().map(|e| errored_policy(e)).collect(),
    };
    event
}

/// The record of decisions the shim answered itself, from its cache or for a
/// super user: the fields of the decision, the count and the times of the
/// fold.
fn reported_event(reported: &Reported) -> DecisionEvent {
    let mut event = event_of(
        &reported.context,
        &reported.action,
        reported.allowed,
        reported.log_flags,
    );
    event.broker_id = reported.broker_id;
    event.policy.version.clone_from(&reported.policy_version);
    event.policy.determining.clone_from(&reported.determining);
    let (count, first_time, last_time) = (reported.count, reported.first, reported.last);
    event.decided_by = if reported.super_user {
        audit::DecidedBy::ShimSuperUser {
            count,
            first_time,
            last_time,
        }
    } else {
        audit::DecidedBy::ShimCache {
            count,
            first_time,
            last_time,
        }
    };
    event
}

/// A PDP-made event for `action` in `context`, made now; the request's api
/// version, correlation id, broker and policies are left for the caller.
fn event_of(
    context: &RequestContext,
    action: &Action,
    allowed: bool,
    (log_if_allowed, log_if_denied): (bool, bool),
) -> DecisionEvent {
    let principal = context.principal();
    DecisionEvent {
        time: audit::Timestamp::now(),
        schema: audit::SCHEMA_VERSION,
        decision: if allowed {
            audit::Decision::Allow
        } else {
            audit::Decision::Deny
        },
        principal: audit::Principal {
            kind: principal.principal_type().to_owned(),
            name: principal.name().to_owned(),
        },
        operation: action.operation().as_str().to_owned(),
        resource: audit::Resource {
            kind: action.resource_type().as_str().to_owned(),
            name: action.resource_name().to_owned(),
            pattern: match action.pattern_type() {
                kafka_pdp_core::PatternType::Literal => audit::PatternType::Literal,
                kafka_pdp_core::PatternType::Prefixed => audit::PatternType::Prefixed,
            },
        },
        client: audit::Client {
            address: context.client_address().to_string(),
            id: context.client_id().to_owned(),
        },
        listener: context.listener().to_owned(),
        security_protocol: context.security_protocol().to_owned(),
        request: audit::RequestInfo {
            api: context.request_api().to_owned(),
            api_version: 0,
            correlation_id: 0,
        },
        broker_id: 0,
        policy: audit::PolicyRef {
            version: String::new(),
            determining: Vec::new(),
            errored: Vec::new(),
        },
        decided_by: audit::DecidedBy::Pdp,
        log_if_allowed,
        log_if_denied,
    }
}

/// The policy id of an evaluation error (`policy id: message`); the message
/// stays out of the trail, since it can quote attribute values. An error
/// without a policy is the request's own.
fn errored_policy(error: &str) -> String {
    match error.split_once(": ") {
        Some((id, _)) => id.to_owned(),
        None => "request".to_owned(),
    }
}

/// Turns a decision that could not be recorded into a DENY nobody caches.
fn deny(result: &mut proto::ActionResult, error: &audit::AuditError) {
    result.decision = Decision::Deny as i32;
    result.cacheable = false;
    result.determining_policies.clear();
    result.errors = vec![format!("audit trail unavailable: {error}")];
}

/// A DENY because the audit sink is past its lag bound; not cacheable.
fn deny_export_behind(result: &mut proto::ActionResult) {
    result.decision = Decision::Deny as i32;
    result.cacheable = false;
    result.determining_policies.clear();
    result.errors = vec!["audit export is behind its bound; denying until it catches up".into()];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_is_logged_unless_kafka_asked_not_to() {
        let quiet = proto::Action {
            log_if_denied: false,
            ..Default::default()
        };
        let loud = proto::Action {
            log_if_denied: true,
            ..Default::default()
        };
        let meta = RequestMeta::of(None, &[quiet, loud]);
        assert!(!meta.log_if_denied(0));
        assert!(meta.log_if_denied(1));
        // A by-resource-type question carries no actions: its denial is logged.
        assert!(meta.log_if_denied(2));
    }

    #[test]
    fn only_the_policy_id_of_an_error_is_recorded() {
        assert_eq!(
            errored_policy("phi-readers: attribute `ssn` missing"),
            "phi-readers"
        );
        assert_eq!(errored_policy("operation does not apply"), "request");
    }

    #[test]
    fn a_denied_result_is_not_cacheable_and_says_why() {
        let mut result = proto::ActionResult {
            decision: Decision::Allow as i32,
            cacheable: true,
            determining_policies: vec!["p".into()],
            errors: vec![],
        };
        deny(&mut result, &audit::AuditError::Closed);
        assert_eq!(result.decision, Decision::Deny as i32);
        assert!(!result.cacheable && result.determining_policies.is_empty());
        assert_eq!(
            result.errors,
            ["audit trail unavailable: audit log is closed"]
        );
    }
}
