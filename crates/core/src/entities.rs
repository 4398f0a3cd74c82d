//! The Cedar entities of one request, built cheaply.
//!
//! Per request the PDP needs three kinds of entity: the principal (with
//! every role and group it belongs to, transitively), the resource (with
//! every prefix entity named by some policy that its name starts with) and
//! the action (with the action groups that encode Kafka's implied
//! operations). Everything that does not depend on the request is built
//! once per snapshot here: principal entities from the bindings, the prefix
//! tables, the action entities, the parsed type names.
//!
//! Known shortcoming: only these entities are in a request's store. A
//! condition that tests two other entities against each other
//! (`Kafka::Role::"a" in Kafka::Role::"b"`) sees them without ancestors and
//! is false; conditions over `principal` and `resource` are unaffected.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Schema};

use crate::model::{Operation, Principal, ResourceType};

pub(crate) const NAMESPACE: &str = "Kafka";

/// A principal named in the bindings, prepared for requests.
pub(crate) struct BoundPrincipal {
    /// The principal with all its ancestors as direct parents, so that a
    /// request's store needs no transitive closure work.
    pub(crate) entity: Entity,
    /// Roles and groups, transitively, sorted.
    pub(crate) ancestors: Vec<EntityUid>,
    /// Index keys of the principal and its ancestors (set by the index).
    pub(crate) keys: Vec<u32>,
}

/// Prefix entities of one resource type, looked up by name.
#[derive(Default)]
pub(crate) struct PrefixTable {
    pub(crate) by_name: HashMap<Box<str>, (EntityUid, Option<u32>)>,
    /// The distinct lengths of the prefixes, ascending: a name of length n
    /// needs at most one lookup per length up to n.
    pub(crate) lengths: Vec<usize>,
}

impl PrefixTable {
    fn insert(&mut self, name: &str, uid: EntityUid) {
        self.by_name.entry(name.into()).or_insert((uid, None));
        if let Err(at) = self.lengths.binary_search(&name.len()) {
            self.lengths.insert(at, name.len());
        }
    }

    /// Every prefix entity whose name is a prefix of `name`.
    pub(crate) fn matches<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a (EntityUid, Option<u32>)> + 'a {
        self.lengths
            .iter()
            .take_while(move |&&len| len <= name.len())
            .filter(move |&&len| name.is_char_boundary(len))
            .filter_map(move |&len| self.by_name.get(&name[..len]))
    }
}

/// The request-independent part of every request's entities.
pub(crate) struct EntityModel {
    principal_type: EntityTypeName,
    resource_types: Vec<EntityTypeName>,
    /// By [`Operation::index`].
    action_uids: Vec<EntityUid>,
    action_entities: Vec<Entity>,
    /// For each operation, the operations whose `action in` covers it
    /// (itself and its action groups), as a bit set over
    /// [`Operation::index`].
    pub(crate) covered_by: Vec<u16>,
    /// Bound principals by entity id (`User:alice`).
    pub(crate) principals: HashMap<Box<str>, BoundPrincipal>,
    /// By [`ResourceType::index`].
    pub(crate) prefixes: Vec<PrefixTable>,
}

fn type_name(name: &str) -> Result<EntityTypeName, String> {
    EntityTypeName::from_str(&format!("{NAMESPACE}::{name}"))
        .map_err(|e| format!("invalid entity type `{name}`: {e}"))
}

impl EntityModel {
    /// Prepares entities for `schema`, the principals of `bindings` and the
    /// prefixes named anywhere in `policies`.
    pub(crate) fn build(
        schema: &Schema,
        bindings: &Entities,
        policies: &PolicySet,
    ) -> Result<Self, String> {
        let principal_type = type_name("Principal")?;
        let resource_types = ResourceType::ALL
            .iter()
            .map(|rt| type_name(rt.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let action_type = type_name("Action")?;
        let actions = schema
            .action_entities()
            .map_err(|e| format!("cannot read actions from the schema: {e}"))?;
        let mut action_uids = Vec::new();
        let mut action_entities = Vec::new();
        for op in Operation::ALL {
            let uid =
                EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(op.as_str()));
            let Some(entity) = actions.get(&uid) else {
                return Err(format!("the schema has no action `{}`", op.as_str()));
            };
            action_entities.push(entity.clone());
            action_uids.push(uid);
        }
        let covered_by = Operation::ALL
            .iter()
            .map(|op| {
                let uid = &action_uids[op.index()];
                let mut mask = 1u16 << op.index();
                for ancestor in actions.ancestors(uid).into_iter().flatten() {
                    if let Some(i) = action_uids.iter().position(|a| a == ancestor) {
                        mask |= 1 << i;
                    }
                }
                mask
            })
            .collect();
        let principals = bound_principals(&principal_type, bindings)?;
        let prefixes = prefix_tables(policies)?;
        Ok(EntityModel {
            principal_type,
            resource_types,
            action_uids,
            action_entities,
            covered_by,
            principals,
            prefixes,
        })
    }

    /// Records the index keys of bound principals and prefixes, so that a
    /// request finds them without hashing uids.
    pub(crate) fn attach_keys(&mut self, index: &crate::index::Index) {
        for bound in self.principals.values_mut() {
            let own = index.key(&bound.entity.uid());
            let ancestors = bound.ancestors.iter().filter_map(|a| index.key(a));
            bound.keys = own.into_iter().chain(ancestors).collect();
        }
        for table in &mut self.prefixes {
            for (uid, key) in table.by_name.values_mut() {
                *key = index.key(uid);
            }
        }
    }

    pub(crate) fn action_uid(&self, op: Operation) -> &EntityUid {
        &self.action_uids[op.index()]
    }

    pub(crate) fn action_entity(&self, op: Operation) -> &Entity {
        &self.action_entities[op.index()]
    }

    pub(crate) fn principal_uid(&self, principal: &Principal) -> EntityUid {
        EntityUid::from_type_name_and_id(
            self.principal_type.clone(),
            EntityId::new(principal.entity_id()),
        )
    }

    pub(crate) fn resource_uid(&self, rt: ResourceType, name: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(
            self.resource_types[rt.index()].clone(),
            EntityId::new(name),
        )
    }

    /// The principal's entity: prepared if bound, built fresh (no parents)
    /// if not. Unbound principals are valid: they are simply denied unless
    /// a policy names them.
    pub(crate) fn principal_entity(&self, principal: &Principal) -> Entity {
        match self.principals.get(principal.entity_id()) {
            Some(bound) => bound.entity.clone(),
            None => principal_entity(
                self.principal_uid(principal),
                principal.principal_type(),
                principal.name(),
                HashSet::new(),
            ),
        }
    }

    /// The resource's entity, with its matching prefixes as parents.
    pub(crate) fn resource_entity(&self, rt: ResourceType, name: &str) -> Entity {
        let parents = self.prefixes[rt.index()]
            .matches(name)
            .map(|(uid, _)| uid.clone())
            .collect();
        named_entity(self.resource_uid(rt, name), name, parents)
    }
}

/// A principal entity with its two attributes.
fn principal_entity(
    uid: EntityUid,
    principal_type: &str,
    name: &str,
    parents: HashSet<EntityUid>,
) -> Entity {
    let attrs = [("principal_type", principal_type), ("name", name)];
    entity_with_strings(uid, &attrs, parents)
}

/// A resource entity with its `name` attribute.
fn named_entity(uid: EntityUid, name: &str, parents: HashSet<EntityUid>) -> Entity {
    entity_with_strings(uid, &[("name", name)], parents)
}

/// An entity with string attributes, built in Cedar's own form: the public
/// constructor evaluates each attribute as an expression, which was a
/// seventh of a decision's time.
fn entity_with_strings(
    uid: EntityUid,
    attrs: &[(&str, &str)],
    parents: HashSet<EntityUid>,
) -> Entity {
    use cedar_policy_core::ast;
    let uid: &ast::EntityUID = uid.as_ref();
    let parents = parents
        .iter()
        .map(|p| AsRef::<ast::EntityUID>::as_ref(p).clone())
        .collect();
    let attrs = attrs.iter().map(|(key, value)| {
        let value = ast::PartialValue::from(ast::Value::from((*value).to_owned()));
        ((*key).into(), value)
    });
    Entity::from(ast::Entity::new_with_attr_partial_value(
        uid.clone(),
        attrs,
        HashSet::new(),
        parents,
        [],
    ))
}

fn bound_principals(
    principal_type: &EntityTypeName,
    bindings: &Entities,
) -> Result<HashMap<Box<str>, BoundPrincipal>, String> {
    let mut principals = HashMap::new();
    for entity in bindings.iter() {
        let uid = entity.uid();
        if uid.type_name() != principal_type {
            continue;
        }
        let id = uid.id().unescaped().to_owned();
        let Some((ptype, name)) = id.split_once(':') else {
            return Err(format!(
                "principal id `{id}` is not of the form `type:name`"
            ));
        };
        let mut ancestors: Vec<EntityUid> = bindings
            .ancestors(&uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        ancestors.sort_by_key(|a| a.to_string());
        let parents = ancestors.iter().cloned().collect();
        let entity = principal_entity(uid, ptype, name, parents);
        principals.insert(
            id.into(),
            BoundPrincipal {
                entity,
                ancestors,
                keys: Vec::new(),
            },
        );
    }
    Ok(principals)
}

/// Every prefix entity named anywhere in the policies: in scopes, in
/// template links and in conditions.
fn prefix_tables(policies: &PolicySet) -> Result<Vec<PrefixTable>, String> {
    let prefix_types: Vec<(usize, EntityTypeName)> = ResourceType::ALL
        .iter()
        .filter_map(|rt| Some((rt.index(), type_name(rt.prefix_type()?))))
        .map(|(i, t)| t.map(|t| (i, t)))
        .collect::<Result<_, _>>()?;
    let mut tables: Vec<PrefixTable> = ResourceType::ALL
        .iter()
        .map(|_| PrefixTable::default())
        .collect();
    for policy in policies.policies() {
        let mut uids = policy.entity_literals();
        uids.extend(crate::index::scope_uids(policy));
        for uid in uids {
            if let Some((i, _)) = prefix_types.iter().find(|(_, t)| t == uid.type_name()) {
                tables[*i].insert(uid.id().unescaped(), uid.clone());
            }
        }
    }
    Ok(tables)
}

/// Builds a request's entity store. Every entity given already carries its
/// full ancestry (principals: their transitive roles and groups; resources:
/// their prefixes, which have no parents; actions: from the schema's closed
/// hierarchy), so the transitive closure is not computed again: that work
/// was a quarter of a decision's time.
pub(crate) fn request_entities(entities: Vec<Entity>) -> cedar_policy_core::entities::Entities {
    let core = entities.into_iter().map(|e| e.as_ref().clone());
    let store = cedar_policy_core::entities::Entities::from_entities(
        core,
        None::<&cedar_policy_core::entities::NoEntitiesSchema>,
        cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
        cedar_policy_core::extensions::Extensions::all_available(),
    );
    // Duplicate uids are the only possible error, and the three entities
    // of a request have distinct types. Fail closed all the same: an empty
    // store makes every `in` false and every attribute read an error.
    store.unwrap_or_default()
}

/// The same store in the public API's form, for plain Cedar.
pub(crate) fn public_entities(store: cedar_policy_core::entities::Entities) -> Entities {
    Entities::from(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &str) -> EntityUid {
        EntityUid::from_str(s).unwrap()
    }

    #[test]
    fn prefixes_match_by_length() {
        let mut table = PrefixTable::default();
        table.insert("phi.", uid(r#"Kafka::TopicPrefix::"phi.""#));
        table.insert("phi.labs.", uid(r#"Kafka::TopicPrefix::"phi.labs.""#));
        table.insert("pay", uid(r#"Kafka::TopicPrefix::"pay""#));
        let names: Vec<String> = table
            .matches("phi.labs.results")
            .map(|(u, _)| u.id().unescaped().to_owned())
            .collect();
        assert_eq!(names, ["phi.", "phi.labs."]);
        assert_eq!(table.matches("phi").count(), 0);
        assert_eq!(table.matches("phi.").count(), 1);
        // A multi-byte character across a prefix length is skipped, not a panic.
        assert_eq!(table.matches("ph\u{e9}.x").count(), 0);
    }
}
