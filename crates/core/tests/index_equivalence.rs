//! Property tests: the index never changes a decision, and a satisfied
//! forbid always wins.
//!
//! Policy sets are generated over a small world (five principals, roles and
//! a group bound to them, topics and groups whose names share prefixes) so
//! that scopes overlap often: `==`, `in`, `is` and unconstrained scopes,
//! action groups (Read and Write imply Describe, AlterConfigs implies
//! DescribeConfigs), conditions that read the context and `context.now`,
//! and conditions that fail to evaluate for some requests.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_pdp_core::{Action, Operation, PolicySnapshot, RequestContext, ResourceType, SourceFile};
use proptest::prelude::*;

const SCHEMA: &str = include_str!("../../../policies/schema.cedarschema");

const PRINCIPALS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5-unbound"];
const ROLES: [&str; 3] = ["r0", "r1", "r2"];
const TOPICS: [&str; 6] = ["a", "a.b", "a.b.c", "a.x", "b.c", "bb"];
const TOPIC_PREFIXES: [&str; 5] = ["a", "a.", "a.b.", "b", "zz"];
const GROUPS: [&str; 3] = ["g1", "g1-x", "h"];
const GROUP_PREFIXES: [&str; 2] = ["g1", "h"];
const OPERATIONS: [&str; 8] = [
    "Read",
    "Write",
    "Describe",
    "Delete",
    "Alter",
    "DescribeConfigs",
    "AlterConfigs",
    "Create",
];

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        (0..5usize)
            .prop_map(|i| format!("principal == Kafka::Principal::\"User:{}\"", PRINCIPALS[i])),
        (0..3usize).prop_map(|i| format!("principal in Kafka::Role::\"{}\"", ROLES[i])),
        Just("principal in Kafka::PrincipalGroup::\"g\"".to_owned()),
        Just("principal is Kafka::Principal".to_owned()),
        (0..3usize).prop_map(|i| format!(
            "principal is Kafka::Principal in Kafka::Role::\"{}\"",
            ROLES[i]
        )),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    let op = || (0..OPERATIONS.len()).prop_map(|i| OPERATIONS[i]);
    prop_oneof![
        Just("action".to_owned()),
        op().prop_map(|a| format!("action == Kafka::Action::\"{a}\"")),
        (op(), op()).prop_map(|(a, b)| format!(
            "action in [Kafka::Action::\"{a}\", Kafka::Action::\"{b}\"]"
        )),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        (0..TOPICS.len()).prop_map(|i| format!("resource == Kafka::Topic::\"{}\"", TOPICS[i])),
        (0..TOPIC_PREFIXES.len())
            .prop_map(|i| format!("resource in Kafka::TopicPrefix::\"{}\"", TOPIC_PREFIXES[i])),
        Just("resource is Kafka::Topic".to_owned()),
        (0..TOPIC_PREFIXES.len()).prop_map(|i| format!(
            "resource is Kafka::Topic in Kafka::TopicPrefix::\"{}\"",
            TOPIC_PREFIXES[i]
        )),
        (0..GROUPS.len()).prop_map(|i| format!("resource == Kafka::Group::\"{}\"", GROUPS[i])),
        (0..GROUP_PREFIXES.len())
            .prop_map(|i| format!("resource in Kafka::GroupPrefix::\"{}\"", GROUP_PREFIXES[i])),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just(" when { context.client_id == \"x\" }".to_owned()),
        1 => Just(" when { resource.name like \"a*\" }".to_owned()),
        1 => Just(" when { principal.name == \"u1\" }".to_owned()),
        1 => Just(" unless { context.now < datetime(\"2026-01-01T00:00:00Z\") }".to_owned()),
        // Overflows, so errors, whenever the client id is `err`.
        1 => Just(
            " when { context.client_id == \"err\" && 9223372036854775807 + 1 > 0 }".to_owned()
        ),
        // An entity that is not in the request's store: errors unless the
        // request's resource is that topic.
        1 => Just(" when { Kafka::Topic::\"a\".name == \"a\" }".to_owned()),
        1 => Just(" when { context.client_address.isLoopback() && 1 * 1 == 1 }".to_owned()),
    ]
}

#[derive(Clone, Debug)]
struct GenPolicy {
    permit: bool,
    principal: String,
    action: String,
    resource: String,
    condition: String,
}

fn policy() -> impl Strategy<Value = GenPolicy> {
    (
        prop::bool::weighted(0.7),
        principal_scope(),
        action_scope(),
        resource_scope(),
        condition(),
    )
        .prop_map(
            |(permit, principal, action, resource, condition)| GenPolicy {
                permit,
                principal,
                action,
                resource,
                condition,
            },
        )
}

fn policies_text(policies: &[GenPolicy]) -> String {
    let mut text = String::new();
    for (i, p) in policies.iter().enumerate() {
        let effect = if p.permit { "permit" } else { "forbid" };
        text.push_str(&format!(
            "@id(\"p{i}\")\n{effect} (\n  {},\n  {},\n  {}\n){};\n\n",
            p.principal, p.action, p.resource, p.condition
        ));
    }
    text
}

/// Bindings: each bound principal gets a random subset of roles and maybe
/// the group; the group is in `r2`; `r1` is in `r0`.
fn bindings(memberships: &[(u8, bool)]) -> String {
    let uid = |t: &str, id: &str| format!("{{\"type\": \"Kafka::{t}\", \"id\": \"{id}\"}}");
    let mut entities = vec![
        format!(
            "{{\"uid\": {}, \"attrs\": {{}}, \"parents\": []}}",
            uid("Role", "r0")
        ),
        format!(
            "{{\"uid\": {}, \"attrs\": {{}}, \"parents\": [{}]}}",
            uid("Role", "r1"),
            uid("Role", "r0")
        ),
        format!(
            "{{\"uid\": {}, \"attrs\": {{}}, \"parents\": []}}",
            uid("Role", "r2")
        ),
        format!(
            "{{\"uid\": {}, \"attrs\": {{}}, \"parents\": [{}]}}",
            uid("PrincipalGroup", "g"),
            uid("Role", "r2")
        ),
    ];
    for (i, (roles, in_group)) in memberships.iter().enumerate() {
        let name = PRINCIPALS[i];
        let mut parents: Vec<String> = (0..3)
            .filter(|r| roles & (1 << r) != 0)
            .map(|r| uid("Role", ROLES[r]))
            .collect();
        if *in_group {
            parents.push(uid("PrincipalGroup", "g"));
        }
        entities.push(format!(
            "{{\"uid\": {}, \"attrs\": {{\"principal_type\": \"User\", \"name\": \"{name}\"}}, \
             \"parents\": [{}]}}",
            uid("Principal", &format!("User:{name}")),
            parents.join(", ")
        ));
    }
    format!("[{}]", entities.join(",\n"))
}

fn snapshot(policies: &[GenPolicy], memberships: &[(u8, bool)]) -> PolicySnapshot {
    let sources = vec![
        SourceFile::new("schema.cedarschema", SCHEMA),
        SourceFile::new("generated.cedar", policies_text(policies)),
        SourceFile::new("bindings.entities.json", bindings(memberships)),
    ];
    PolicySnapshot::from_sources(sources)
        .unwrap_or_else(|e| panic!("generated set refused:\n{e}\n{}", policies_text(policies)))
}

#[derive(Clone, Debug)]
struct GenRequest {
    principal: usize,
    operation: usize,
    group: bool,
    name: usize,
    client_id: &'static str,
    loopback: bool,
    late: bool,
}

fn request() -> impl Strategy<Value = GenRequest> {
    (
        0..PRINCIPALS.len(),
        0..OPERATIONS.len(),
        prop::bool::weighted(0.25),
        0..TOPICS.len(),
        prop_oneof![Just(""), Just("x"), Just("err")],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(principal, operation, group, name, client_id, loopback, late)| GenRequest {
                principal,
                operation,
                group,
                name,
                client_id,
                loopback,
                late,
            },
        )
}

fn build(req: &GenRequest) -> (RequestContext, Action, SystemTime) {
    let principal = format!("User:{}", PRINCIPALS[req.principal])
        .parse()
        .unwrap();
    let address = if req.loopback {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))
    };
    let ctx =
        RequestContext::new(principal, address, "L", "SASL_SSL", req.client_id, "FETCH").unwrap();
    let op: Operation = OPERATIONS[req.operation].parse().unwrap();
    let group = req.group && ResourceType::Group.supports(op);
    let (rt, name) = if group {
        (ResourceType::Group, GROUPS[req.name % GROUPS.len()])
    } else {
        (ResourceType::Topic, TOPICS[req.name])
    };
    let action = Action::literal(op, rt, name).unwrap();
    // 2025-12-31 or 2026-01-02.
    let days = if req.late { 20_455 } else { 20_453 };
    let now = UNIX_EPOCH + Duration::from_secs(days * 86_400);
    (ctx, action, now)
}

fn memberships() -> impl Strategy<Value = Vec<(u8, bool)>> {
    prop::collection::vec((0u8..8, prop::bool::weighted(0.3)), 5)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 192,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_index_decides_like_the_whole_set(
        policies in prop::collection::vec(policy(), 0..24),
        memberships in memberships(),
        requests in prop::collection::vec(request(), 1..8),
    ) {
        let snapshot = snapshot(&policies, &memberships);
        for req in &requests {
            let (ctx, action, now) = build(req);
            let indexed = snapshot.decide(&ctx, &action, now);
            let whole = snapshot.decide_whole_set(&ctx, &action, now);
            prop_assert_eq!(indexed.allowed, whole.allowed, "{:?}", req);
            prop_assert_eq!(&indexed.determining, &whole.determining, "{:?}", req);
            prop_assert_eq!(&indexed.errors, &whole.errors, "{:?}", req);
            // The index may only be more precise about time, never less.
            prop_assert!(whole.cacheable || !indexed.cacheable || !snapshot
                .policies().iter().any(|p| p.reads_now && indexed.determining.contains(&p.id)));
        }
        // A batch decides each action as if alone.
        let (ctx, _, now) = build(&requests[0]);
        let actions: Vec<Action> = requests
            .iter()
            .map(|r| {
                let (_, action, _) = build(r);
                action
            })
            .collect();
        let batch = snapshot.decide_all(&ctx, &actions, now);
        for (action, decision) in actions.iter().zip(&batch) {
            prop_assert_eq!(decision, &snapshot.decide(&ctx, action, now));
        }
    }

    #[test]
    fn a_satisfied_forbid_always_wins(
        mut policies in prop::collection::vec(policy(), 0..16),
        memberships in memberships(),
        req in request(),
    ) {
        let (ctx, action, now) = build(&req);
        let resource_type = action.resource_type().to_string();
        policies.push(GenPolicy {
            permit: false,
            principal: format!("principal == Kafka::Principal::\"{}\"", ctx.principal()),
            action: format!("action == Kafka::Action::\"{}\"", action.operation()),
            resource: format!(
                "resource == Kafka::{resource_type}::\"{}\"",
                action.resource_name()
            ),
            condition: String::new(),
        });
        let forbid_id = format!("p{}", policies.len() - 1);
        let snapshot = snapshot(&policies, &memberships);
        let decision = snapshot.decide(&ctx, &action, now);
        prop_assert!(!decision.allowed);
        prop_assert!(decision.determining.contains(&forbid_id), "{:?}", decision);
    }
}

#[test]
fn an_unbound_principal_is_denied_by_default() {
    let permit = GenPolicy {
        permit: true,
        principal: "principal in Kafka::Role::\"r0\"".into(),
        action: "action".into(),
        resource: "resource".into(),
        condition: String::new(),
    };
    let snapshot = snapshot(&[permit], &[(1, false); 5]);
    let req = GenRequest {
        principal: 5,
        operation: 0,
        group: false,
        name: 0,
        client_id: "",
        loopback: true,
        late: false,
    };
    let (ctx, action, now) = build(&req);
    let decision = snapshot.decide(&ctx, &action, now);
    assert!(!decision.allowed);
    assert!(decision.determining.is_empty());
    let bound = GenRequest {
        principal: 0,
        ..req
    };
    let (ctx, action, now) = build(&bound);
    assert!(snapshot.decide(&ctx, &action, now).allowed);
}
