//! The scope index: which policies can apply to a request.
//!
//! Cedar evaluates every policy of a `PolicySet` on every request, so the
//! cost of a decision grows with the set. The index cuts the set into
//! buckets by the entities the policy scopes name, and a request evaluates
//! only the buckets its principal, resource and action can match:
//!
//! - key: (principal key, resource key), where a principal key is the uid of
//!   a `principal ==`, `principal in` or `principal is T in` scope, and a
//!   resource key likewise; a scope that names no entity (`principal`,
//!   `principal is T`) has the key [`ANY`];
//! - within a key, policies are grouped by the set of operations their
//!   action scope covers (`action in Kafka::Action::"Read"` covers Read and
//!   Describe), so a bucket is skipped unless it covers the request's
//!   operation;
//! - a request looks up every (p, r) with p in {its principal, each of its
//!   roles and groups, ANY} and r in {its resource, each matching prefix,
//!   ANY}: exactly the keys whose scope can be satisfied.
//!
//! Why the merge is sound: a policy outside these buckets has a scope that
//! is false for the request, so in the whole set it is neither satisfied
//! nor erroring (Cedar evaluates the scope before the condition). Cedar's
//! decision is a function of the sets of satisfied permits, satisfied
//! forbids and erroring policies, so evaluating the buckets apart and
//! uniting those sets gives the whole set's decision, reasons and errors.
//! A request evaluates its candidates one by one with Cedar's own
//! evaluator, as Cedar's authorizer does for every policy of a set (an
//! error counts as not satisfied and is reported); one evaluator serves all
//! candidate buckets of an action. `tests/index_equivalence.rs` checks on
//! generated sets that this equals Cedar's authorizer over the whole set.

use std::collections::{BTreeMap, HashMap};

use cedar_policy::{
    ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint,
};

use crate::entities::EntityModel;
use crate::model::Operation;
use crate::store::{context_fields, ContextFields};

/// The key of a scope that names no entity.
pub(crate) const ANY: u32 = 0;

const ALL_OPERATIONS: u16 = (1 << Operation::ALL.len()) - 1;

/// Policies sharing a scope key and the operations they cover.
pub(crate) struct Bucket {
    /// Bit set over [`Operation::index`].
    pub(crate) operations: u16,
    /// The context fields the bucket's policies read: a request builds
    /// only the fields its candidate buckets read.
    pub(crate) context_fields: ContextFields,
    /// The bucket's policies: Cedar's own form, sharing the parsed
    /// templates with the whole set, so a bucket costs a few pointers per
    /// policy rather than a copy of its text.
    pub(crate) policies: Vec<cedar_policy_core::ast::Policy>,
}

impl Bucket {
    /// The ids of the bucket's policies, for explanations.
    pub(crate) fn ids(&self) -> impl Iterator<Item = String> + '_ {
        self.policies.iter().map(|p| p.id().to_string())
    }
}

/// What the index keeps of one policy's scope, for questions that are not
/// a single request (authorize by resource type).
pub(crate) struct Scope {
    pub(crate) permit: bool,
    pub(crate) operations: u16,
    pub(crate) resource: ResourceScope,
}

/// The resource side of a scope.
pub(crate) enum ResourceScope {
    /// No entity named: any resource (of some type).
    Any,
    /// A resource or prefix entity.
    Entity(EntityUid),
}

/// Policies bucketed by scope; see the module docs.
pub(crate) struct Index {
    /// Every uid named in a principal or resource scope, numbered from 1.
    pub(crate) keys: HashMap<EntityUid, u32>,
    buckets: HashMap<(u32, u32), Vec<Bucket>>,
    pub(crate) scopes: Vec<Scope>,
    /// Indices into `scopes` of the permits, by principal key.
    pub(crate) permits_by_principal: HashMap<u32, Vec<usize>>,
}

/// The uids named by a policy's principal and resource scopes (with
/// template slots filled).
pub(crate) fn scope_uids(policy: &Policy) -> Vec<EntityUid> {
    [principal_uid(policy), resource_uid(policy)]
        .into_iter()
        .flatten()
        .collect()
}

fn principal_uid(policy: &Policy) -> Option<EntityUid> {
    match policy.principal_constraint() {
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
        PrincipalConstraint::In(uid)
        | PrincipalConstraint::Eq(uid)
        | PrincipalConstraint::IsIn(_, uid) => Some(uid),
    }
}

fn resource_uid(policy: &Policy) -> Option<EntityUid> {
    match policy.resource_constraint() {
        ResourceConstraint::Any | ResourceConstraint::Is(_) => None,
        ResourceConstraint::In(uid)
        | ResourceConstraint::Eq(uid)
        | ResourceConstraint::IsIn(_, uid) => Some(uid),
    }
}

/// The operations a policy's action scope covers.
fn operations(policy: &Policy, model: &EntityModel) -> u16 {
    let named: Vec<EntityUid> = match policy.action_constraint() {
        ActionConstraint::Any => return ALL_OPERATIONS,
        ActionConstraint::Eq(uid) => {
            return match position(model, &uid) {
                Some(i) => 1 << i,
                // Not a Kafka operation (validation prevents it): let Cedar
                // decide on every request rather than guess.
                None => ALL_OPERATIONS,
            };
        }
        ActionConstraint::In(uids) => uids,
    };
    let mut named_bits = 0u16;
    for uid in &named {
        match position(model, uid) {
            Some(i) => named_bits |= 1 << i,
            None => return ALL_OPERATIONS,
        }
    }
    let mut covered = 0u16;
    for op in Operation::ALL {
        if model.covered_by[op.index()] & named_bits != 0 {
            covered |= 1 << op.index();
        }
    }
    covered
}

fn position(model: &EntityModel, uid: &EntityUid) -> Option<usize> {
    Operation::ALL
        .iter()
        .position(|op| model.action_uid(*op) == uid)
}

impl Index {
    /// Buckets every policy of `policies`.
    pub(crate) fn build(policies: &PolicySet, model: &EntityModel) -> Index {
        let mut keys: HashMap<EntityUid, u32> = HashMap::new();
        let mut key_of = |uid: Option<EntityUid>| match uid {
            None => ANY,
            Some(uid) => {
                let next = keys.len() as u32 + 1;
                *keys.entry(uid).or_insert(next)
            }
        };
        // BTreeMap: a deterministic build order, so equal sets give equal
        // buckets.
        let mut grouped: HashMap<(u32, u32), BTreeMap<u16, Vec<&Policy>>> = HashMap::new();
        let mut scopes = Vec::new();
        let mut permits_by_principal: HashMap<u32, Vec<usize>> = HashMap::new();
        for policy in policies.policies() {
            let pk = key_of(principal_uid(policy));
            let rk = key_of(resource_uid(policy));
            let ops = operations(policy, model);
            grouped
                .entry((pk, rk))
                .or_default()
                .entry(ops)
                .or_default()
                .push(policy);
            let permit = policy.effect() == cedar_policy::Effect::Permit;
            if permit {
                permits_by_principal
                    .entry(pk)
                    .or_default()
                    .push(scopes.len());
            }
            scopes.push(Scope {
                permit,
                operations: ops,
                resource: resource_uid(policy).map_or(ResourceScope::Any, ResourceScope::Entity),
            });
        }
        let buckets = grouped
            .into_iter()
            .map(|(key, by_ops)| {
                let buckets = by_ops
                    .into_iter()
                    .map(|(ops, members)| bucket(ops, &members))
                    .collect();
                (key, buckets)
            })
            .collect();
        Index {
            keys,
            buckets,
            scopes,
            permits_by_principal,
        }
    }

    /// The buckets that can apply to a request whose principal has
    /// `principal_keys` and resource `resource_keys` (both including
    /// [`ANY`]), for operation `op`.
    pub(crate) fn candidates(
        &self,
        principal_keys: &[u32],
        resource_keys: &[u32],
        op: Operation,
    ) -> Vec<&Bucket> {
        let bit = 1u16 << op.index();
        let mut found = Vec::new();
        for &p in principal_keys {
            for &r in resource_keys {
                let Some(buckets) = self.buckets.get(&(p, r)) else {
                    continue;
                };
                found.extend(buckets.iter().filter(|b| b.operations & bit != 0));
            }
        }
        found
    }

    /// The key of a uid named in some scope.
    pub(crate) fn key(&self, uid: &EntityUid) -> Option<u32> {
        self.keys.get(uid).copied()
    }

    /// Number of buckets, for tests and benchmarks.
    #[cfg(test)]
    pub(crate) fn bucket_count(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }
}

/// A bucket of policies sharing a key and the operations they cover.
fn bucket(operations: u16, members: &[&Policy]) -> Bucket {
    let mut fields = 0;
    let mut policies = Vec::with_capacity(members.len());
    for policy in members {
        fields |= context_fields(policy);
        let ast: &cedar_policy_core::ast::Policy = (*policy).as_ref();
        policies.push(ast.clone());
    }
    Bucket {
        operations,
        context_fields: fields,
        policies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Principal;
    use crate::store::{PolicySnapshot, SourceFile};

    const SCHEMA: &str = include_str!("../../../policies/schema.cedarschema");

    fn snapshot(policies: &str) -> PolicySnapshot {
        let bindings = r#"[
          {"uid": {"type": "Kafka::Role", "id": "r"}, "attrs": {}, "parents": []},
          {"uid": {"type": "Kafka::Principal", "id": "User:a"},
           "attrs": {"principal_type": "User", "name": "a"},
           "parents": [{"type": "Kafka::Role", "id": "r"}]}
        ]"#;
        PolicySnapshot::from_sources(vec![
            SourceFile::new("schema.cedarschema", SCHEMA),
            SourceFile::new("p.cedar", policies),
            SourceFile::new("bindings.entities.json", bindings),
        ])
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn policies_are_bucketed_by_scope_and_operations() {
        let s = snapshot(
            r#"
            @id("a") permit (principal in Kafka::Role::"r", action in [Kafka::Action::"Read"],
                             resource in Kafka::TopicPrefix::"x.");
            @id("b") permit (principal in Kafka::Role::"r", action == Kafka::Action::"Write",
                             resource in Kafka::TopicPrefix::"x.");
            @id("c") forbid (principal, action, resource is Kafka::Topic);
            @id("d") permit (principal == Kafka::Principal::"User:z", action, resource);
            "#,
        );
        // a and b share a key but not their operations; c and d have their own keys.
        assert_eq!(s.index.bucket_count(), 4);
        let role = s.index.key(&"Kafka::Role::\"r\"".parse().unwrap()).unwrap();
        let prefix = s
            .index
            .key(&"Kafka::TopicPrefix::\"x.\"".parse().unwrap())
            .unwrap();
        let ids = |op| -> Vec<String> {
            s.index
                .candidates(&[role, ANY], &[prefix, ANY], op)
                .iter()
                .flat_map(|b| b.ids())
                .collect()
        };
        // Read implies Describe: `a` covers both; `b` only Write.
        assert_eq!(ids(Operation::Read), ["a", "c"]);
        assert_eq!(ids(Operation::Describe), ["a", "c"]);
        assert_eq!(ids(Operation::Write), ["b", "c"]);
        assert_eq!(ids(Operation::Delete), ["c"]);
    }

    #[test]
    fn bound_principals_know_their_keys() {
        let s = snapshot(r#"@id("a") permit (principal in Kafka::Role::"r", action, resource);"#);
        let a: Principal = "User:a".parse().unwrap();
        let bound = &s.model.principals[a.entity_id()];
        assert_eq!(bound.keys.len(), 1, "only the role is named by a policy");
    }
}
