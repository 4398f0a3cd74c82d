//! Decisions: one request, a batch of actions, an explanation, and Kafka's
//! authorize-by-resource-type.
//!
//! Every path fails closed: an action Kafka does not define on its resource
//! type, a question the PDP cannot answer soundly, or an internal error is a
//! DENY carrying an error that says why. Nothing here logs; the caller
//! decides what to record.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression,
};

use crate::entities::{public_entities, request_entities};
use crate::index::{Bucket, ResourceScope, ANY};
use crate::model::{Action, Operation, PatternType, RequestContext, ResourceType, CLUSTER_NAME};
use crate::store::{
    ContextFields, PolicyInfo, PolicySnapshot, ALL_CONTEXT_FIELDS, CONTEXT_FIELDS, NOW,
};

/// The answer for one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// ALLOW when true; everything else is a DENY.
    pub allowed: bool,
    /// Ids of the policies that determined the decision, sorted: the
    /// satisfied forbids of a DENY, the satisfied permits of an ALLOW, none
    /// for a default DENY.
    pub determining: Vec<String>,
    /// Evaluation errors, sorted by policy id. A policy that errors is
    /// skipped, as Cedar specifies; the request is still decided.
    pub errors: Vec<EvalError>,
    /// False when a policy that may have taken part read `context.now`: the
    /// decision must not be cached.
    pub cacheable: bool,
}

impl Decision {
    /// A DENY that no policy made, with the reason as an error.
    fn refused(message: String) -> Self {
        Decision {
            allowed: false,
            determining: Vec::new(),
            errors: vec![EvalError {
                policy_id: None,
                message,
            }],
            cacheable: true,
        }
    }
}

/// An error met while deciding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvalError {
    /// The policy that failed to evaluate; `None` for a problem of the
    /// request itself (an operation that does not apply to the resource
    /// type, say).
    pub policy_id: Option<String>,
    /// What went wrong, lowercase, as Cedar says it.
    pub message: String,
}

impl std::fmt::Display for EvalError {
    /// `policy id: message`, as the gRPC contract carries errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.policy_id {
            Some(id) => write!(f, "{id}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A decision with what led to it, for people and admin tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The decision, exactly as `decide` gives it.
    pub decision: Decision,
    /// Every policy the index selected for evaluation, sorted by id; the
    /// others cannot apply to this request.
    pub considered: Vec<PolicyInfo>,
    /// The principal's roles and groups (transitively) as Cedar uids.
    pub principal_parents: Vec<String>,
    /// The prefix entities the resource is in, as Cedar uids.
    pub resource_parents: Vec<String>,
}

/// Kafka's `authorizeByResourceType` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByTypeDecision {
    /// ALLOW when true.
    pub allowed: bool,
    /// When allowed: a resource name on which the operation is allowed.
    pub example_resource_name: Option<String>,
    /// The determining policies of the allowing decision.
    pub determining: Vec<String>,
    /// Errors of the decisions that were tried.
    pub errors: Vec<EvalError>,
    /// False when any decision tried read the request time.
    pub cacheable: bool,
}

/// The most candidate names authorize-by-resource-type evaluates.
const MAX_BY_TYPE_CANDIDATES: usize = 1024;

/// Name tried for a resource type when a permit names no resource and the
/// question names no prefix.
const ANY_NAME_PROBE: &str = "kafka-pdp-any-name";

/// The per-request work shared by all actions of a request.
struct Prepared<'s> {
    principal: EntityUid,
    principal_keys: Vec<u32>,
    principal_entity: Entity,
    principal_parents: &'s [EntityUid],
}

impl PolicySnapshot {
    /// Decides one action.
    pub fn decide(&self, ctx: &RequestContext, action: &Action, now: SystemTime) -> Decision {
        let mut decisions = self.decide_all(ctx, std::slice::from_ref(action), now);
        decisions
            .pop()
            .unwrap_or_else(|| Decision::refused("no decision".into()))
    }

    /// Decides every action of one Kafka request, in order. The principal
    /// entity, its index keys and the context are built once for all.
    pub fn decide_all(
        &self,
        ctx: &RequestContext,
        actions: &[Action],
        now: SystemTime,
    ) -> Vec<Decision> {
        let prepared = self.prepare(ctx);
        let plans: Vec<Plan<'_>> = actions.iter().map(|a| self.plan(&prepared, a)).collect();
        let fields = plans
            .iter()
            .fold(0, |acc, plan| acc | plan.context_fields());
        let context = match context(ctx, now, fields) {
            Ok(context) => context,
            Err(message) => {
                return actions
                    .iter()
                    .map(|_| Decision::refused(message.clone()))
                    .collect()
            }
        };
        plans
            .into_iter()
            .zip(actions)
            .map(|(plan, action)| self.run(&prepared, &context, action, plan))
            .collect()
    }

    /// Decides one action with plain Cedar over the whole policy set, with
    /// no index: the reference the index is tested against, and the
    /// benchmark's baseline. `cacheable` is false if any policy of the set
    /// reads `context.now`.
    pub fn decide_whole_set(
        &self,
        ctx: &RequestContext,
        action: &Action,
        now: SystemTime,
    ) -> Decision {
        if let Some(refusal) = refusal(action) {
            return refusal;
        }
        let prepared = self.prepare(ctx);
        let request = context(ctx, now, ALL_CONTEXT_FIELDS)
            .and_then(|context| self.request(&prepared, &context, action));
        let request = match request {
            Ok(request) => request,
            Err(message) => return Decision::refused(message),
        };
        let entities = public_entities(self.entities(&prepared, action));
        let mut merged = Merged::default();
        merged.add(&self.policies, &request, &entities);
        merged.finish(!self.any_reads_now)
    }

    /// Decides one action and says why: the policies considered, the
    /// principal's and the resource's ancestors.
    pub fn explain(&self, ctx: &RequestContext, action: &Action, now: SystemTime) -> Explanation {
        let resource_parents: Vec<String> = match action.resource_type().prefix_type() {
            Some(_) => self.model.prefixes[action.resource_type().index()]
                .matches(action.resource_name())
                .map(|(uid, _)| uid.to_string())
                .collect(),
            None => Vec::new(),
        };
        let prepared = self.prepare(ctx);
        let plan = self.plan(&prepared, action);
        let considered: Vec<String> = match &plan {
            Plan::Refused(_) => Vec::new(),
            Plan::Buckets(buckets) => buckets.iter().flat_map(|b| b.ids()).collect(),
        };
        let decision = match context(ctx, now, plan.context_fields()) {
            Ok(context) => self.run(&prepared, &context, action, plan),
            Err(message) => Decision::refused(message),
        };
        let principal_parents = prepared
            .principal_parents
            .iter()
            .map(|u| u.to_string())
            .collect();
        let mut considered: Vec<PolicyInfo> = considered
            .iter()
            .filter_map(|id| self.policy(id).cloned())
            .collect();
        considered.sort_by(|a, b| a.id.cmp(&b.id));
        Explanation {
            decision,
            considered,
            principal_parents,
            resource_parents,
        }
    }

    /// Kafka's `authorizeByResourceType`: may the principal perform `op` on
    /// at least one resource of type `rt` whose name starts with
    /// `name_prefix` (empty: any name)?
    ///
    /// The answer is found by deciding concrete names: every resource and
    /// prefix named by a permit that can apply to the principal and covers
    /// `op`, narrowed to `name_prefix`. It is sound (an ALLOW is always a
    /// real decision on a real name) but may miss a grant that only a
    /// condition expresses (`when { resource.name like "x*" }`): such a
    /// grant gives a DENY here. Kafka asks this when a producer starts;
    /// the cost grows with the number of permits that can apply to the
    /// principal, not with the whole set.
    pub fn authorize_by_resource_type(
        &self,
        ctx: &RequestContext,
        op: Operation,
        rt: ResourceType,
        name_prefix: &str,
        now: SystemTime,
    ) -> ByTypeDecision {
        let denied = |errors: Vec<EvalError>, cacheable| ByTypeDecision {
            allowed: false,
            example_resource_name: None,
            determining: Vec::new(),
            errors,
            cacheable,
        };
        if !rt.supports(op) {
            return denied(Decision::refused(not_applicable(op, rt)).errors, true);
        }
        let mut errors = BTreeSet::new();
        let mut cacheable = true;
        for name in self.by_type_candidates(ctx, op, rt, name_prefix) {
            let Ok(action) = Action::literal(op, rt, name.clone()) else {
                continue;
            };
            let decision = self.decide(ctx, &action, now);
            cacheable &= decision.cacheable;
            if decision.allowed {
                return ByTypeDecision {
                    allowed: true,
                    example_resource_name: Some(name),
                    determining: decision.determining,
                    errors: decision.errors,
                    cacheable: decision.cacheable,
                };
            }
            errors.extend(decision.errors);
        }
        denied(errors.into_iter().collect(), cacheable)
    }

    fn by_type_candidates(
        &self,
        ctx: &RequestContext,
        op: Operation,
        rt: ResourceType,
        name_prefix: &str,
    ) -> Vec<String> {
        if rt == ResourceType::Cluster {
            return vec![CLUSTER_NAME.to_owned()];
        }
        let principal_keys = self.principal_keys(ctx);
        let prefix_type = rt.prefix_type();
        let bit = 1u16 << op.index();
        let mut names = BTreeSet::new();
        let scopes = principal_keys
            .iter()
            .filter_map(|k| self.index.permits_by_principal.get(k))
            .flatten()
            .map(|&i| &self.index.scopes[i])
            .filter(|s| s.permit && s.operations & bit != 0);
        for scope in scopes {
            let name = match &scope.resource {
                ResourceScope::Any => {
                    if name_prefix.is_empty() {
                        ANY_NAME_PROBE.to_owned()
                    } else {
                        name_prefix.to_owned()
                    }
                }
                ResourceScope::Entity(uid) => {
                    let id = uid.id().unescaped();
                    let ty = uid.type_name().basename();
                    if ty == rt.as_str() && id.starts_with(name_prefix) {
                        id.to_owned()
                    } else if Some(ty) != prefix_type {
                        continue;
                    } else if id.starts_with(name_prefix) {
                        id.to_owned()
                    } else if name_prefix.starts_with(id) {
                        name_prefix.to_owned()
                    } else {
                        continue;
                    }
                }
            };
            names.insert(name);
            if names.len() >= MAX_BY_TYPE_CANDIDATES {
                break;
            }
        }
        names.into_iter().collect()
    }

    /// Index keys of the principal: itself, its ancestors, and [`ANY`].
    fn principal_keys(&self, ctx: &RequestContext) -> Vec<u32> {
        let principal = ctx.principal();
        let mut keys = match self.model.principals.get(principal.entity_id()) {
            Some(bound) => bound.keys.clone(),
            None => self
                .index
                .key(&self.model.principal_uid(principal))
                .into_iter()
                .collect(),
        };
        keys.push(ANY);
        keys
    }

    /// Index keys of the resource: itself, its matching prefixes, [`ANY`].
    fn resource_keys(&self, uid: &EntityUid, action: &Action) -> Vec<u32> {
        let mut keys: Vec<u32> = self.index.key(uid).into_iter().collect();
        let table = &self.model.prefixes[action.resource_type().index()];
        keys.extend(
            table
                .matches(action.resource_name())
                .filter_map(|(_, key)| *key),
        );
        keys.push(ANY);
        keys
    }

    fn prepare(&self, ctx: &RequestContext) -> Prepared<'_> {
        let principal_entity = self.model.principal_entity(ctx.principal());
        let principal_parents = self
            .model
            .principals
            .get(ctx.principal().entity_id())
            .map_or(&[][..], |b| &b.ancestors[..]);
        Prepared {
            principal: principal_entity.uid(),
            principal_entity,
            principal_keys: self.principal_keys(ctx),
            principal_parents,
        }
    }

    /// The entity store of one action: the principal, the resource and the
    /// action. Each action gets its own, so that a decision never depends
    /// on the other actions of its batch.
    fn entities(
        &self,
        prepared: &Prepared<'_>,
        action: &Action,
    ) -> cedar_policy_core::entities::Entities {
        let entities = vec![
            prepared.principal_entity.clone(),
            self.model
                .resource_entity(action.resource_type(), action.resource_name()),
            self.model.action_entity(action.operation()).clone(),
        ];
        request_entities(entities)
    }

    fn request(
        &self,
        prepared: &Prepared<'_>,
        context: &Context,
        action: &Action,
    ) -> Result<Request, String> {
        let resource = self
            .model
            .resource_uid(action.resource_type(), action.resource_name());
        Request::new(
            prepared.principal.clone(),
            self.model.action_uid(action.operation()).clone(),
            resource,
            context.clone(),
            None,
        )
        .map_err(|e| format!("cannot build the request: {e}"))
    }

    /// What deciding `action` takes: a refusal, or the buckets to evaluate.
    fn plan<'a>(&'a self, prepared: &Prepared<'_>, action: &Action) -> Plan<'a> {
        if let Some(refusal) = refusal(action) {
            return Plan::Refused(refusal);
        }
        let resource = self
            .model
            .resource_uid(action.resource_type(), action.resource_name());
        let resource_keys = self.resource_keys(&resource, action);
        Plan::Buckets(self.index.candidates(
            &prepared.principal_keys,
            &resource_keys,
            action.operation(),
        ))
    }

    /// The indexed decision of a planned action. `context` holds at least
    /// the fields the plan's buckets read.
    fn run(
        &self,
        prepared: &Prepared<'_>,
        context: &Context,
        action: &Action,
        plan: Plan<'_>,
    ) -> Decision {
        let buckets = match plan {
            Plan::Refused(refusal) => return refusal,
            // No policy can apply: the default DENY, without building a
            // Cedar request at all.
            Plan::Buckets(buckets) if buckets.is_empty() => return Merged::default().finish(true),
            Plan::Buckets(buckets) => buckets,
        };
        let request = match self.request(prepared, context, action) {
            Ok(request) => request,
            Err(message) => return Decision::refused(message),
        };
        let entities = self.entities(prepared, action);
        let evaluator = cedar_policy_core::evaluator::Evaluator::new(
            request.as_ref().clone(),
            &entities,
            cedar_policy_core::extensions::Extensions::all_available(),
        );
        let mut merged = Merged::default();
        let mut reads_now = false;
        for bucket in buckets {
            reads_now |= bucket.context_fields & NOW != 0;
            for policy in &bucket.policies {
                merged.evaluate(&evaluator, policy);
            }
        }
        merged.finish(!reads_now)
    }
}

/// What deciding one action takes.
enum Plan<'a> {
    Refused(Decision),
    Buckets(Vec<&'a Bucket>),
}

impl Plan<'_> {
    fn context_fields(&self) -> ContextFields {
        match self {
            Plan::Refused(_) => 0,
            Plan::Buckets(buckets) => buckets.iter().fold(0, |acc, b| acc | b.context_fields),
        }
    }
}

/// A DENY for an action the PDP does not decide, if it is one.
fn refusal(action: &Action) -> Option<Decision> {
    let (op, rt) = (action.operation(), action.resource_type());
    if !rt.supports(op) {
        return Some(Decision::refused(not_applicable(op, rt)));
    }
    if action.pattern_type() == PatternType::Prefixed {
        // Known shortcoming: a question about a whole prefix is not decided
        // (it would need every name under the prefix); it is denied, and
        // the error says so.
        return Some(Decision::refused(format!(
            "prefixed resource pattern `{}` is not decided: ask about a literal name",
            action.resource_name()
        )));
    }
    None
}

fn not_applicable(op: Operation, rt: ResourceType) -> String {
    format!("operation `{op}` does not apply to resource type `{rt}`")
}

/// Satisfied permits, satisfied forbids and errors, united over the
/// partitions of a policy set.
#[derive(Default)]
struct Merged {
    permits: BTreeSet<String>,
    forbids: BTreeSet<String>,
    errors: BTreeSet<EvalError>,
}

impl Merged {
    fn add(&mut self, policies: &PolicySet, request: &Request, entities: &Entities) {
        let response = Authorizer::new().is_authorized(request, policies, entities);
        let reasons = response.diagnostics().reason().map(|id| id.to_string());
        // Cedar's reasons are the satisfied forbids of a DENY and the
        // satisfied permits of an ALLOW (an ALLOW has no satisfied forbid).
        match response.decision() {
            cedar_policy::Decision::Allow => self.permits.extend(reasons),
            cedar_policy::Decision::Deny => self.forbids.extend(reasons),
        }
        self.errors
            .extend(response.diagnostics().errors().map(eval_error));
    }

    /// Evaluates one policy as Cedar's authorizer does: satisfied or not,
    /// and an error counts as not satisfied (and is reported).
    fn evaluate(
        &mut self,
        evaluator: &cedar_policy_core::evaluator::Evaluator<'_>,
        policy: &cedar_policy_core::ast::Policy,
    ) {
        match evaluator.evaluate(policy) {
            Ok(false) => {}
            Ok(true) => {
                let id = policy.id().to_string();
                match policy.effect() {
                    cedar_policy::Effect::Permit => self.permits.insert(id),
                    cedar_policy::Effect::Forbid => self.forbids.insert(id),
                };
            }
            Err(error) => {
                self.errors.insert(EvalError {
                    policy_id: Some(policy.id().to_string()),
                    message: error.to_string(),
                });
            }
        }
    }

    fn finish(self, cacheable: bool) -> Decision {
        let allowed = self.forbids.is_empty() && !self.permits.is_empty();
        let determining = if self.forbids.is_empty() {
            self.permits
        } else {
            self.forbids
        };
        Decision {
            allowed,
            determining: determining.into_iter().collect(),
            errors: self.errors.into_iter().collect(),
            cacheable,
        }
    }
}

/// Cedar's evaluation error, with the message apart from the policy id.
fn eval_error(error: &cedar_policy::AuthorizationError) -> EvalError {
    let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = error;
    EvalError {
        policy_id: Some(e.policy_id().to_string()),
        message: e.inner().to_string(),
    }
}

/// The request context record with the fields in `fields` (a policy that
/// reads no field does not pay for building it; one that reads a field gets
/// it). Built from checked values, so Cedar cannot reject it; an error is
/// reported (and the request denied) all the same.
fn context(
    ctx: &RequestContext,
    now: SystemTime,
    fields: ContextFields,
) -> Result<Context, String> {
    if fields == 0 {
        return Ok(Context::empty());
    }
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let mut pairs = Vec::with_capacity(CONTEXT_FIELDS.len());
    for (bit, name) in CONTEXT_FIELDS.iter().enumerate() {
        if fields & (1 << bit) == 0 {
            continue;
        }
        let value = match *name {
            "client_address" => {
                extension_call(&EXTENSION_NAMES.ip, ctx.client_address().to_string())
            }
            "listener" => string(ctx.listener()),
            "security_protocol" => string(ctx.security_protocol()),
            "client_id" => string(ctx.client_id()),
            "request_api" => string(ctx.request_api()),
            _ => extension_call(&EXTENSION_NAMES.datetime, cedar_datetime(now)),
        };
        pairs.push(((*name).to_owned(), value));
    }
    Context::from_pairs(pairs).map_err(|e| format!("cannot build the request context: {e}"))
}

/// The names of the extension constructors the context uses, parsed once:
/// `RestrictedExpression::new_ip` parses the name `ip` with the full Cedar
/// parser on every call, which was half of a decision's time.
struct ExtensionNames {
    ip: Option<cedar_policy_core::ast::Name>,
    datetime: Option<cedar_policy_core::ast::Name>,
}

static EXTENSION_NAMES: std::sync::LazyLock<ExtensionNames> =
    std::sync::LazyLock::new(|| ExtensionNames {
        ip: cedar_policy_core::ast::Name::parse_unqualified_name("ip").ok(),
        datetime: cedar_policy_core::ast::Name::parse_unqualified_name("datetime").ok(),
    });

/// `name(arg)` as a restricted expression. Without a parsed name (which
/// cannot happen for these two), falls back to the string form that Cedar
/// evaluates to an error, so policies reading the value fail closed.
fn extension_call(
    name: &Option<cedar_policy_core::ast::Name>,
    arg: String,
) -> RestrictedExpression {
    use cedar_policy_core::ast::RestrictedExpr;
    match name {
        Some(name) => RestrictedExpression::from(RestrictedExpr::call_extension_fn(
            name.clone(),
            [RestrictedExpr::val(arg)],
        )),
        None => RestrictedExpression::new_string(arg),
    }
}

/// `now` as a Cedar datetime, `YYYY-MM-DDThh:mm:ss.sssZ` (UTC): Cedar takes
/// exactly three fractional digits. Times before 1970 are clamped to the epoch.
pub(crate) fn cedar_datetime(now: SystemTime) -> String {
    let now = now.max(UNIX_EPOCH);
    // A SystemTime past jiff's range (year 9999) is clamped to its maximum.
    let ts = jiff::Timestamp::try_from(now).unwrap_or(jiff::Timestamp::MAX);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn datetimes_are_utc_with_millis() {
        assert_eq!(cedar_datetime(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(cedar_datetime(t), "2024-02-29T23:59:59.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(cedar_datetime(t), "2000-02-29T00:00:00.000Z");
    }
}
