//! The decision path: every RPC that decides goes through [`Pdp`].
//!
//! A call takes one snapshot, answers what it can from the cache, evaluates
//! the rest, and then passes every decision through [`Pdp::settle`] before
//! the response leaves. `settle` logs and counts; it is also where the audit
//! trail records each decision durably, so that no answer is returned
//! without its record.

use std::{sync::Arc, time::SystemTime};

use kafka_pdp_core::{Action, PatternType, Principal, RequestContext};

use crate::{
    alerts::Alerts,
    audit::{self, Auditor, Recorded, RequestMeta},
    cache::{ContextKey, DecisionCache, Key},
    config::Limits,
    engine,
    error::{InvalidRequest, ServiceError},
    metrics::{FailClosed, Metrics},
    proto::{self, Decision},
    request,
    store::{Active, PolicyStore},
};

/// The policy decision point: the store, the cache, the counters.
#[derive(Debug)]
pub struct Pdp {
    store: Arc<PolicyStore>,
    cache: Option<DecisionCache<proto::ActionResult>>,
    metrics: Metrics,
    limits: Limits,
    /// The audit trail every decision is recorded in; `None` when off.
    audit: Option<Auditor>,
    /// Watches every decision returned for repeated denials and PHI reads.
    alerts: Alerts,
}

impl Pdp {
    /// `cache_max_entries` of `None` turns the cache off.
    pub fn new(store: Arc<PolicyStore>, cache_max_entries: Option<usize>, limits: Limits) -> Self {
        Self {
            store,
            cache: cache_max_entries.map(DecisionCache::new),
            metrics: Metrics::default(),
            limits,
            audit: None,
            alerts: Alerts::default(),
        }
    }

    /// Replaces the default alert rules (see [`crate::alerts`]).
    pub fn with_alerts(mut self, alerts: Alerts) -> Self {
        self.alerts = alerts;
        self
    }

    pub fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// Counts decisions a shim answered from its cache and reported
    /// (`count` of them folded into one), and feeds them to the alert rules,
    /// as [`Pdp::settle`] does for the PDP's own decisions.
    pub fn observe_reported(
        &self,
        principal: &Principal,
        action: &Action,
        allowed: bool,
        count: u64,
    ) {
        self.metrics.reported(allowed, count);
        self.alerts.observe(principal, action, allowed, count);
    }

    /// Records every decision in `auditor`'s trail before it is answered.
    pub fn with_audit(mut self, auditor: Auditor) -> Self {
        self.audit = Some(auditor);
        self
    }

    pub fn auditor(&self) -> Option<&Auditor> {
        self.audit.as_ref()
    }

    pub fn store(&self) -> &Arc<PolicyStore> {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Frees the cache's memory after a swap; correctness does not depend on
    /// it, since every key carries the generation of its snapshot.
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// `Authorize`: every action of a Kafka request, under one snapshot.
    pub async fn authorize(
        &self,
        req: proto::AuthorizeRequest,
    ) -> Result<proto::AuthorizeResponse, ServiceError> {
        let meta = RequestMeta::of(req.context.as_ref(), &req.actions);
        let batch = request::batch(req, self.limits.max_actions_per_request)
            .inspect_err(|_| self.metrics.fail_closed(FailClosed::InvalidRequest, 1))?;
        let active = self.store.active();
        let mut results = self.decide(&active, &batch.context, &batch.actions);
        let (context, actions) = (&batch.context, &batch.actions);
        self.settle(&active, context, &meta, actions, &mut results)
            .await?;
        Ok(proto::AuthorizeResponse {
            policy_version: active.version().to_owned(),
            results,
        })
    }

    /// `AuthorizeByResourceType`: is the operation allowed on any resource
    /// of the type (under the prefix)? Never cached.
    pub async fn authorize_by_resource_type(
        &self,
        req: proto::AuthorizeByResourceTypeRequest,
    ) -> Result<proto::AuthorizeByResourceTypeResponse, ServiceError> {
        let meta = RequestMeta::of(req.context.as_ref(), &[]);
        let (context, action) = by_resource_type(req)
            .inspect_err(|_| self.metrics.fail_closed(FailClosed::InvalidRequest, 1))?;
        let active = self.store.active();
        let prefix = match action.resource_name() {
            ANY_NAME => "",
            prefix => prefix,
        };
        let answer = active.snapshot.authorize_by_resource_type(
            &context,
            action.operation(),
            action.resource_type(),
            prefix,
            SystemTime::now(),
        );
        let mut result = engine::by_type_result(&answer);
        let action = std::slice::from_ref(&action);
        let results = std::slice::from_mut(&mut result);
        self.settle(&active, &context, &meta, action, results)
            .await?;
        let allowed = result.decision == Decision::Allow as i32;
        Ok(proto::AuthorizeByResourceTypeResponse {
            policy_version: active.version().to_owned(),
            decision: result.decision,
            example_resource_name: answer
                .example_resource_name
                .filter(|_| allowed)
                .unwrap_or_default(),
            determining_policies: result.determining_policies,
        })
    }

    /// `Check`: one decision, never cached, with an explanation on request.
    pub async fn check(
        &self,
        req: proto::CheckRequest,
    ) -> Result<proto::CheckResponse, ServiceError> {
        let meta = RequestMeta::of(req.context.as_ref(), req.action.as_slice());
        let (context, action) = check_request(&req)
            .inspect_err(|_| self.metrics.fail_closed(FailClosed::InvalidRequest, 1))?;
        let active = self.store.active();
        let explanation = active
            .snapshot
            .explain(&context, &action, SystemTime::now());
        let mut response = engine::check_response(active.version(), explanation, req.explain);
        let mut result = engine::check_result(&response);
        let action = std::slice::from_ref(&action);
        let results = std::slice::from_mut(&mut result);
        self.settle(&active, &context, &meta, action, results)
            .await?;
        audit::overrule_check(&mut response, &result);
        Ok(response)
    }

    /// `ReportCachedDecisions`: decisions the shim answered from its cache,
    /// recorded in the trail (one record per fold). Answers once they are
    /// durable; without a trail there is nothing to record them in.
    pub async fn report_cached(
        &self,
        req: proto::ReportCachedDecisionsRequest,
    ) -> Result<proto::ReportCachedDecisionsResponse, ServiceError> {
        let reported = request::reported(req, self.limits.max_actions_per_request)?;
        let mut recorded = 0;
        if let Some(auditor) = &self.audit {
            auditor.record_reported(&reported).await.map_err(|error| {
                let records = reported.len();
                tracing::error!(%error, records, "audit trail failed; shim report refused");
                ServiceError::AuditUnavailable(error.to_string())
            })?;
            recorded = reported.len() as u64;
        }
        // Observed once taken: a refused report comes again and would count twice.
        for r in &reported {
            self.observe_reported(r.context.principal(), &r.action, r.allowed, r.count);
        }
        Ok(proto::ReportCachedDecisionsResponse { recorded })
    }

    /// Decides `actions` under `active`: from the cache where it can, the
    /// misses in one batch (the core prepares the principal once).
    fn decide(
        &self,
        active: &Active,
        context: &Arc<RequestContext>,
        actions: &[Action],
    ) -> Vec<proto::ActionResult> {
        let now = SystemTime::now();
        let Some(cache) = &self.cache else {
            let decisions = active.snapshot.decide_all(context, actions, now);
            return decisions.into_iter().map(engine::action_result).collect();
        };
        let context_key = ContextKey::new(context.clone(), active.generation);
        let mut results: Vec<Option<proto::ActionResult>> = Vec::with_capacity(actions.len());
        let mut misses = Vec::new();
        for action in actions {
            let hit = cache.get(&Key::new(context_key.clone(), action.clone()));
            if hit.is_none() {
                misses.push(action.clone());
            }
            results.push(hit);
        }
        let hits = (actions.len() - misses.len()) as u64;
        self.metrics.decided(0, hits);
        if misses.is_empty() {
            return results.into_iter().flatten().collect();
        }

        let mut decided = active
            .snapshot
            .decide_all(context, &misses, now)
            .into_iter();
        let mut misses = misses.into_iter();
        results
            .into_iter()
            .map(|hit| {
                if let Some(hit) = hit {
                    return hit;
                }
                let (action, decision) = (misses.next(), decided.next());
                let result = decision.map(engine::action_result).unwrap_or_else(missing);
                // INVARIANT: a decision that read the request time is never stored.
                if let (Some(action), true) = (action, result.cacheable) {
                    cache.insert(Key::new(context_key.clone(), action), result.clone());
                }
                result
            })
            .collect()
    }

    /// Every decision passes here before its response is sent: recorded in
    /// the audit trail (when on) and durable, then logged (DENY at info
    /// unless Kafka asked not to log it, ALLOW at debug), counted and shown
    /// to the alert rules. A decision the trail could not record is turned
    /// into a DENY here, so nothing unrecorded is answered ALLOW. A DENY
    /// that carries errors (evaluation error, audit trail down or behind)
    /// says nothing about the principal and is not shown to the rules.
    async fn settle(
        &self,
        active: &Active,
        context: &RequestContext,
        meta: &RequestMeta,
        actions: &[Action],
        results: &mut [proto::ActionResult],
    ) -> Result<(), ServiceError> {
        let mut recorded = Recorded::AsDecided;
        if let Some(auditor) = &self.audit {
            recorded = auditor
                .record(active, context, meta, actions, results)
                .await;
            if recorded == Recorded::Failed {
                let denied = results.len() as u64;
                self.metrics
                    .fail_closed(FailClosed::AuditUnavailable, denied);
            }
        }
        // Denials the trail forced are counted above or by the export gate;
        // only a policy's evaluation error is counted here.
        let as_decided = recorded == Recorded::AsDecided;
        self.metrics.decided(results.len() as u64, 0);
        let mut allowed = 0;
        for (index, (action, result)) in actions.iter().zip(results.iter()).enumerate() {
            log_decision(active, context, action, result, meta.log_if_denied(index));
            let denied = result.decision != Decision::Allow as i32;
            allowed += u64::from(!denied);
            let errors = !result.errors.is_empty();
            if as_decided && denied && errors {
                self.metrics.fail_closed(FailClosed::EvaluationError, 1);
            }
            // A DENY with errors failed closed: not the principal's doing.
            if !(denied && errors) {
                self.alerts.observe(context.principal(), action, !denied, 1);
            }
        }
        let denied = results.len() as u64 - allowed;
        self.metrics.outcomes(allowed, denied);
        Ok(())
    }
}

fn log_decision(
    active: &Active,
    context: &RequestContext,
    action: &Action,
    result: &proto::ActionResult,
    log_if_denied: bool,
) {
    let allowed = result.decision == Decision::Allow as i32;
    macro_rules! event {
        ($level:expr, $decision:literal) => {
            tracing::event!(
                $level,
                principal = %context.principal(),
                client.address = %context.client_address(),
                operation = %action.operation(),
                resource.kind = %action.resource_type(),
                resource.name = action.resource_name(),
                decision = $decision,
                policy.version = active.version(),
                determining = ?result.determining_policies,
                errors = result.errors.len(),
                "decision"
            )
        };
    }
    // Kafka's convention: denials it asked not to log (authorized-operations
    // listings) go to debug with the allows; the audit trail has them all.
    match (allowed, log_if_denied) {
        (true, _) => event!(tracing::Level::DEBUG, "ALLOW"),
        (false, true) => event!(tracing::Level::INFO, "DENY"),
        (false, false) => event!(tracing::Level::DEBUG, "DENY"),
    }
}

/// How a by-resource-type question without a prefix names its resource in
/// the decision log and audit trail: any name.
const ANY_NAME: &str = "*";

/// Checks a by-resource-type question; the answer is logged as a PREFIXED
/// action on the prefix (or on [`ANY_NAME`]).
fn by_resource_type(
    req: proto::AuthorizeByResourceTypeRequest,
) -> Result<(RequestContext, Action), InvalidRequest> {
    let context = request::context(req.context)?;
    let operation = request::operation("operation", req.operation)?;
    let resource_type = request::resource_type("resource_type", req.resource_type)?;
    let name = match req.name_prefix.as_str() {
        "" => ANY_NAME.to_owned(),
        _ => req.name_prefix,
    };
    let action =
        Action::new(operation, resource_type, name, PatternType::Prefixed).map_err(|source| {
            InvalidRequest::Field {
                field: "name_prefix",
                source,
            }
        })?;
    Ok((context, action))
}

fn check_request(req: &proto::CheckRequest) -> Result<(RequestContext, Action), InvalidRequest> {
    let context = request::context(req.context.clone())?;
    let action = req
        .action
        .clone()
        .ok_or(InvalidRequest::Missing("action"))?;
    Ok((context, request::action(action)?))
}

/// The core answers every action it is given; should it not, the action is
/// denied rather than left out.
fn missing() -> proto::ActionResult {
    proto::ActionResult {
        decision: Decision::Deny as i32,
        cacheable: false,
        determining_policies: Vec::new(),
        errors: vec!["internal: no decision was made for this action".to_owned()],
    }
}
