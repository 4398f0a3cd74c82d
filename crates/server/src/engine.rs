//! The adapter between the core's decisions and the contract's messages.

use kafka_pdp_core::{ByTypeDecision, Decision as CoreDecision, EvalError, Explanation};

use crate::proto::{self, Decision};

/// One decided action, as the contract carries it.
pub fn action_result(d: CoreDecision) -> proto::ActionResult {
    proto::ActionResult {
        decision: decision(d.allowed),
        cacheable: d.cacheable,
        determining_policies: d.determining,
        errors: d.errors.iter().map(EvalError::to_string).collect(),
    }
}

/// The answer to `Check`; the explanation's parts only when asked for.
pub fn check_response(version: &str, e: Explanation, explain: bool) -> proto::CheckResponse {
    let mut response = proto::CheckResponse {
        policy_version: version.to_owned(),
        decision: decision(e.decision.allowed),
        determining_policies: e.decision.determining,
        errors: e
            .decision
            .errors
            .into_iter()
            .map(evaluation_error)
            .collect(),
        ..Default::default()
    };
    if explain {
        response.considered_policies = e
            .considered
            .into_iter()
            .map(|p| proto::PolicyText {
                policy_id: p.id,
                source: p.source,
                text: p.text,
            })
            .collect();
        response.principal_parents = e.principal_parents;
        response.resource_parents = e.resource_parents;
    }
    response
}

/// The by-resource-type answer as an action result, for the decision log.
pub fn by_type_result(d: &ByTypeDecision) -> proto::ActionResult {
    proto::ActionResult {
        decision: decision(d.allowed),
        cacheable: d.cacheable,
        determining_policies: d.determining.clone(),
        errors: d.errors.iter().map(EvalError::to_string).collect(),
    }
}

/// The check response's decision as an action result, for the decision log.
pub fn check_result(r: &proto::CheckResponse) -> proto::ActionResult {
    proto::ActionResult {
        decision: r.decision,
        cacheable: false,
        determining_policies: r.determining_policies.clone(),
        errors: r
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.policy_id, e.message))
            .collect(),
    }
}

fn evaluation_error(e: EvalError) -> proto::EvaluationError {
    proto::EvaluationError {
        policy_id: e.policy_id.unwrap_or_default(),
        message: e.message,
    }
}

// INVARIANT: only an explicit `allowed` becomes ALLOW; everything else is DENY.
fn decision(allowed: bool) -> i32 {
    if allowed {
        Decision::Allow as i32
    } else {
        Decision::Deny as i32
    }
}
