//! Validation of incoming requests: proto messages in, core types out.
//!
//! Every field is checked before anything is decided. A value this server
//! does not know (an enum number from a newer contract), a missing principal,
//! an address that is not an IP, too many actions or an over-long name is
//! refused with an error naming the field, and for actions the index of the
//! offending action, so that it can never be read as an ALLOW. The checks of
//! names and lengths are the core's (`Principal::new`, `Action::new`); this
//! module adds the proto side: enum numbers, missing messages, batch size.

use std::{net::IpAddr, sync::Arc};

use kafka_pdp_audit::Timestamp;
use kafka_pdp_core::{
    model::{self, parse_client_address, PatternType, Principal, RequestContext},
    RequestError,
};

use crate::{error::InvalidRequest, proto};

/// A validated `Authorize` call.
#[derive(Debug)]
pub struct Batch {
    pub context: Arc<RequestContext>,
    pub actions: Vec<model::Action>,
}

/// Checks an `Authorize` request; `max_actions` bounds the batch.
pub fn batch(req: proto::AuthorizeRequest, max_actions: usize) -> Result<Batch, InvalidRequest> {
    if req.actions.len() > max_actions {
        return Err(InvalidRequest::TooManyActions {
            count: req.actions.len(),
            max: max_actions,
        });
    }
    let context = Arc::new(context(req.context)?);
    let actions = req
        .actions
        .into_iter()
        .enumerate()
        .map(|(index, a)| action(a).map_err(|e| e.at_action(index)))
        .collect::<Result<_, _>>()?;
    Ok(Batch { context, actions })
}

/// Checks a request context. The principal is required; the client address
/// must be an IP when given; the other strings may be empty.
pub fn context(ctx: Option<proto::RequestContext>) -> Result<RequestContext, InvalidRequest> {
    let ctx = ctx.ok_or(InvalidRequest::Missing("context"))?;
    let principal = ctx
        .principal
        .ok_or(InvalidRequest::Missing("context.principal"))?;
    let principal =
        Principal::new(principal.r#type, principal.name).map_err(field("context.principal"))?;
    let client_address = client_address(&ctx.client_address)?;
    RequestContext::new(
        principal,
        client_address,
        ctx.listener,
        ctx.security_protocol,
        ctx.client_id,
        ctx.request_api,
    )
    .map_err(field("context"))
}

/// Checks one action, without its index (the caller adds it).
pub fn action(a: proto::Action) -> Result<model::Action, InvalidRequest> {
    let operation = operation("operation", a.operation)?;
    let resource_type = resource_type("resource_type", a.resource_type)?;
    let pattern_type = pattern_type(a.pattern_type)?;
    model::Action::new(operation, resource_type, a.resource_name, pattern_type)
        .map_err(field("resource_name"))
}

/// A validated decision the shim answered from its cache (and reports for the
/// audit trail), folded `count` times between `first` and `last`.
#[derive(Debug)]
pub struct Reported {
    pub context: RequestContext,
    pub broker_id: i32,
    pub action: model::Action,
    /// Kafka's `(logIfAllowed, logIfDenied)` of the action that filled the cache.
    pub log_flags: (bool, bool),
    pub allowed: bool,
    pub policy_version: String,
    pub determining: Vec<String>,
    pub count: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// Allowed by the broker's `super.users`, not from a cached decision.
    pub super_user: bool,
}

/// Checks a `ReportCachedDecisions` request; `max` bounds its size.
pub fn reported(
    req: proto::ReportCachedDecisionsRequest,
    max: usize,
) -> Result<Vec<Reported>, InvalidRequest> {
    if req.decisions.len() > max {
        return Err(InvalidRequest::TooManyDecisions {
            count: req.decisions.len(),
            max,
        });
    }
    req.decisions
        .into_iter()
        .enumerate()
        .map(|(index, d)| cached_decision(d).map_err(|e| e.at_decision(index)))
        .collect()
}

fn cached_decision(d: proto::CachedDecision) -> Result<Reported, InvalidRequest> {
    let broker_id = d.context.as_ref().map_or(0, |c| c.broker_id);
    let context = context(d.context)?;
    let a = d.action.ok_or(InvalidRequest::Missing("action"))?;
    let log_flags = (a.log_if_allowed, a.log_if_denied);
    let action = action(a)?;
    let allowed = match proto::Decision::try_from(d.decision) {
        Ok(proto::Decision::Allow) => true,
        Ok(proto::Decision::Deny) => false,
        Ok(proto::Decision::Unspecified) => return Err(InvalidRequest::Missing("decision")),
        Err(_) => {
            return Err(InvalidRequest::UnknownEnum {
                field: "decision",
                value: d.decision,
            })
        }
    };
    if d.super_user && !allowed {
        return Err(InvalidRequest::BadValue {
            field: "decision",
            reason: "must be ALLOW for a super user",
        });
    }
    if d.count == 0 {
        return Err(InvalidRequest::BadValue {
            field: "count",
            reason: "must be at least 1",
        });
    }
    let first = unix_ms("first_time_unix_ms", d.first_time_unix_ms)?;
    let last = unix_ms("last_time_unix_ms", d.last_time_unix_ms)?;
    if last < first {
        return Err(InvalidRequest::BadValue {
            field: "last_time_unix_ms",
            reason: "is before `first_time_unix_ms`",
        });
    }
    Ok(Reported {
        context,
        broker_id,
        action,
        log_flags,
        allowed,
        policy_version: d.policy_version,
        determining: d.determining_policies,
        count: d.count,
        first,
        last,
        super_user: d.super_user,
    })
}

fn unix_ms(field: &'static str, value: i64) -> Result<Timestamp, InvalidRequest> {
    if value <= 0 {
        return Err(InvalidRequest::BadValue {
            field,
            reason: "must be a time after the Unix epoch",
        });
    }
    Timestamp::from_millisecond(value).map_err(|_| InvalidRequest::BadValue {
        field,
        reason: "is out of range",
    })
}

/// Checks an operation number: known and not UNSPECIFIED.
pub fn operation(field: &'static str, value: i32) -> Result<model::Operation, InvalidRequest> {
    use model::Operation as Op;
    use proto::Operation as P;

    let known = P::try_from(value).map_err(|_| InvalidRequest::UnknownEnum { field, value })?;
    Ok(match known {
        P::Unspecified => return Err(InvalidRequest::Missing(field)),
        P::Read => Op::Read,
        P::Write => Op::Write,
        P::Create => Op::Create,
        P::Delete => Op::Delete,
        P::Alter => Op::Alter,
        P::Describe => Op::Describe,
        P::ClusterAction => Op::ClusterAction,
        P::DescribeConfigs => Op::DescribeConfigs,
        P::AlterConfigs => Op::AlterConfigs,
        P::IdempotentWrite => Op::IdempotentWrite,
        P::CreateTokens => Op::CreateTokens,
        P::DescribeTokens => Op::DescribeTokens,
        P::TwoPhaseCommit => Op::TwoPhaseCommit,
    })
}

/// Checks a resource type number: known and not UNSPECIFIED.
pub fn resource_type(
    field: &'static str,
    value: i32,
) -> Result<model::ResourceType, InvalidRequest> {
    use model::ResourceType as Rt;
    use proto::ResourceType as P;

    let known = P::try_from(value).map_err(|_| InvalidRequest::UnknownEnum { field, value })?;
    Ok(match known {
        P::Unspecified => return Err(InvalidRequest::Missing(field)),
        P::Topic => Rt::Topic,
        P::Group => Rt::Group,
        P::Cluster => Rt::Cluster,
        P::TransactionalId => Rt::TransactionalId,
        P::DelegationToken => Rt::DelegationToken,
        P::User => Rt::User,
    })
}

/// The proto enum of a core operation (clients build requests with it).
pub fn operation_to_proto(op: model::Operation) -> proto::Operation {
    use model::Operation as Op;
    use proto::Operation as P;

    match op {
        Op::Read => P::Read,
        Op::Write => P::Write,
        Op::Create => P::Create,
        Op::Delete => P::Delete,
        Op::Alter => P::Alter,
        Op::Describe => P::Describe,
        Op::ClusterAction => P::ClusterAction,
        Op::DescribeConfigs => P::DescribeConfigs,
        Op::AlterConfigs => P::AlterConfigs,
        Op::IdempotentWrite => P::IdempotentWrite,
        Op::CreateTokens => P::CreateTokens,
        Op::DescribeTokens => P::DescribeTokens,
        Op::TwoPhaseCommit => P::TwoPhaseCommit,
    }
}

/// The proto enum of a core resource type.
pub fn resource_type_to_proto(rt: model::ResourceType) -> proto::ResourceType {
    use model::ResourceType as Rt;
    use proto::ResourceType as P;

    match rt {
        Rt::Topic => P::Topic,
        Rt::Group => P::Group,
        Rt::Cluster => P::Cluster,
        Rt::TransactionalId => P::TransactionalId,
        Rt::DelegationToken => P::DelegationToken,
        Rt::User => P::User,
    }
}

fn pattern_type(value: i32) -> Result<PatternType, InvalidRequest> {
    match proto::PatternType::try_from(value) {
        // The contract reads UNSPECIFIED as LITERAL, as Kafka's `authorize` asks.
        Ok(proto::PatternType::Unspecified | proto::PatternType::Literal) => {
            Ok(PatternType::Literal)
        }
        Ok(proto::PatternType::Prefixed) => Ok(PatternType::Prefixed),
        Err(_) => Err(InvalidRequest::UnknownEnum {
            field: "pattern_type",
            value,
        }),
    }
}

/// An empty address is read as `0.0.0.0` (unknown), which no address range
/// in a policy contains; anything else must parse as an IP.
fn client_address(value: &str) -> Result<IpAddr, InvalidRequest> {
    if value.is_empty() {
        return Ok(IpAddr::from([0, 0, 0, 0]));
    }
    parse_client_address(value).map_err(field("context.client_address"))
}

/// Names the field a core validation error is about.
fn field(field: &'static str) -> impl Fn(RequestError) -> InvalidRequest {
    move |source| InvalidRequest::Field { field, source }
}

#[cfg(test)]
mod tests;
