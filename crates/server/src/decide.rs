//! The decision path: every RPC that decides goes through [`Pdp`].
//!
//! A call takes one snapshot, answers what it can from the cache, evaluates
//! the rest, and then passes every decision through [`Pdp::settle`] before
//! the response leaves. `settle` logs and counts; it is also where the audit
//! trail records each decision durably, so that no answer is returned
//! without its record.

use std::sync::Arc;

use kafka_pdp_core::model::{Action, RequestContext};

use crate::{
    cache::{ContextKey, DecisionCache, Key},
    config::Limits,
    error::ServiceError,
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
}

impl Pdp {
    /// `cache_max_entries` of `None` turns the cache off.
    pub fn new(store: Arc<PolicyStore>, cache_max_entries: Option<usize>, limits: Limits) -> Self {
        Self {
            store,
            cache: cache_max_entries.map(DecisionCache::new),
            metrics: Metrics::default(),
            limits,
        }
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
    pub fn authorize(
        &self,
        req: proto::AuthorizeRequest,
    ) -> Result<proto::AuthorizeResponse, ServiceError> {
        let batch = request::batch(req, self.limits.max_actions_per_request)
            .inspect_err(|_| self.metrics.fail_closed(FailClosed::InvalidRequest, 1))?;
        let active = self.store.active();
        let results = self.decide(&active, &batch.context, &batch.actions);
        self.settle(&active, &batch.context, &batch.actions, &results)?;
        Ok(proto::AuthorizeResponse {
            policy_version: active.version().to_owned(),
            results,
        })
    }

    /// `AuthorizeByResourceType`: is the operation allowed on any resource
    /// of the type (under the prefix)?
    pub fn authorize_by_resource_type(
        &self,
        req: proto::AuthorizeByResourceTypeRequest,
    ) -> Result<proto::AuthorizeByResourceTypeResponse, ServiceError> {
        let parsed = by_resource_type(req)
            .inspect_err(|_| self.metrics.fail_closed(FailClosed::InvalidRequest, 1))?;
        let (context, operation, resource_type, prefix) = parsed;
        let active = self.store.active();
        let answer =
            active.snapshot.authorize_by_resource_type(&context, operation, resource_type, &prefix);
        let result = crate::engine::by_resource_type_result(&answer);
        let action = crate::engine::by_resource_type_action(operation, resource_type, &prefix);
        self.settle(&active, &context, &[action], &[result.clone()])?;
        Ok(proto::AuthorizeByResourceTypeResponse {
            policy_version: active.version().to_owned(),
            decision: result.decision,
            example_resource_name: crate::engine::example_resource(&answer),
            determining_policies: result.determining_policies,
        })
    }

    /// `Check`: one decision, never cached, with an explanation on request.
    pub fn check(&self, req: proto::CheckRequest) -> Result<proto::CheckResponse, ServiceError> {
        let parsed = check_request(&req)
            .inspect_err(|_| self.metrics.fail_closed(FailClosed::InvalidRequest, 1))?;
        let (context, action) = parsed;
        let active = self.store.active();
        let response = crate::engine::check(&active, &context, &action, req.explain);
        let result = proto::ActionResult {
            decision: response.decision,
            cacheable: false,
            determining_policies: response.determining_policies.clone(),
            errors: Vec::new(),
        };
        self.settle(&active, &context, &[action], &[result])?;
        Ok(response)
    }

    /// Decides `actions` under `active`, from the cache where it can.
    fn decide(
        &self,
        active: &Active,
        context: &Arc<RequestContext>,
        actions: &[Action],
    ) -> Vec<proto::ActionResult> {
        let Some(cache) = &self.cache else {
            return actions.iter().map(|a| crate::engine::decide(active, context, a)).collect();
        };
        let context_key = ContextKey::new(context.clone(), active.generation);
        let mut hits = 0;
        let results = actions
            .iter()
            .map(|action| {
                let key = Key::new(context_key.clone(), action.clone());
                if let Some(hit) = cache.get(&key) {
                    hits += 1;
                    return hit;
                }
                let result = crate::engine::decide(active, context, action);
                // INVARIANT: a decision that read the request time is never stored.
                if result.cacheable {
                    cache.insert(key, result.clone());
                }
                result
            })
            .collect();
        self.metrics.decided(0, hits);
        results
    }

    /// Every decision passes here before its response is sent: logged (DENY
    /// at info, ALLOW at debug), counted, and (with the audit trail) recorded.
    /// An error here fails the call, so nothing unrecorded is answered.
    fn settle(
        &self,
        active: &Active,
        context: &RequestContext,
        actions: &[Action],
        results: &[proto::ActionResult],
    ) -> Result<(), ServiceError> {
        self.metrics.decided(results.len() as u64, 0);
        for (action, result) in actions.iter().zip(results) {
            log_decision(active, context, action, result);
            if result.decision != Decision::Allow as i32 && !result.errors.is_empty() {
                self.metrics.fail_closed(FailClosed::EvaluationError, 1);
            }
        }
        Ok(())
    }
}

fn log_decision(
    active: &Active,
    context: &RequestContext,
    action: &Action,
    result: &proto::ActionResult,
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
    if allowed {
        event!(tracing::Level::DEBUG, "ALLOW");
    } else {
        event!(tracing::Level::INFO, "DENY");
    }
}

type ByResourceType = (
    RequestContext,
    kafka_pdp_core::model::Operation,
    kafka_pdp_core::model::ResourceType,
    String,
);

fn by_resource_type(
    req: proto::AuthorizeByResourceTypeRequest,
) -> Result<ByResourceType, crate::error::InvalidRequest> {
    let context = request::context(req.context)?;
    let operation = request::operation("operation", req.operation)?;
    let resource_type = request::resource_type("resource_type", req.resource_type)?;
    Ok((context, operation, resource_type, req.name_prefix))
}

fn check_request(
    req: &proto::CheckRequest,
) -> Result<(RequestContext, Action), crate::error::InvalidRequest> {
    let context = request::context(req.context.clone())?;
    let action = req.action.clone().ok_or(crate::error::InvalidRequest::Missing("action"))?;
    Ok((context, request::action(action)?))
}
