//! Decisions through the public API, on the default policies: explanations,
//! batches, authorize-by-resource-type and refusals.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::SystemTime;

use kafka_pdp_core::testing::parse_utc;
use kafka_pdp_core::{
    Action, Operation, PatternType, PolicySnapshot, RequestContext, ResourceType,
};

fn snapshot() -> PolicySnapshot {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    PolicySnapshot::load_dir(dir).unwrap_or_else(|e| panic!("{e}"))
}

fn ctx(principal: &str) -> RequestContext {
    let principal = principal.parse().unwrap();
    RequestContext::new(
        principal,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        "L",
        "SSL",
        "c",
        "FETCH",
    )
    .unwrap()
}

fn topic(op: Operation, name: &str) -> Action {
    Action::literal(op, ResourceType::Topic, name).unwrap()
}

#[test]
fn explain_names_the_considered_policies_and_ancestors() {
    let s = snapshot();
    let action = topic(Operation::Write, "phi.labs.results");
    let e = s.explain(
        &ctx("User:lab-results-producer"),
        &action,
        SystemTime::now(),
    );
    assert!(e.decision.allowed);
    assert_eq!(e.decision.determining, ["producer-labs"]);
    let considered: Vec<&str> = e.considered.iter().map(|p| p.id.as_str()).collect();
    assert!(considered.contains(&"producer-labs"), "{considered:?}");
    assert!(!considered.contains(&"auditor-describe"), "{considered:?}");
    let link = &e.considered[considered
        .iter()
        .position(|id| *id == "producer-labs")
        .unwrap()];
    assert!(link.source.starts_with("links.json:") || link.source.contains("/links.json:"));
    assert!(
        link.text
            .contains("?resource = Kafka::TopicPrefix::\"phi.labs.\""),
        "{}",
        link.text
    );
    assert_eq!(
        e.principal_parents,
        [
            "Kafka::PrincipalGroup::\"lab-services\"",
            "Kafka::Role::\"producer-labs\""
        ]
    );
    assert_eq!(
        e.resource_parents,
        [
            "Kafka::TopicPrefix::\"phi.\"",
            "Kafka::TopicPrefix::\"phi.labs.\""
        ]
    );
    let static_policy = s.policy("platform-admin-no-phi-read").unwrap();
    assert!(
        static_policy.source.ends_with("platform.cedar:46:1"),
        "{}",
        static_policy.source
    );
}

#[test]
fn a_batch_answers_in_order() {
    let s = snapshot();
    let actions = [
        topic(Operation::Read, "phi.labs.results"),
        topic(Operation::Write, "phi.labs.results"),
        Action::literal(Operation::Read, ResourceType::Group, "clinical-x").unwrap(),
        Action::literal(Operation::Read, ResourceType::Cluster, "kafka-cluster").unwrap(),
    ];
    let got: Vec<bool> = s
        .decide_all(
            &ctx("User:lab-results-consumer"),
            &actions,
            SystemTime::now(),
        )
        .iter()
        .map(|d| d.allowed)
        .collect();
    assert_eq!(got, [true, false, true, false]);
}

#[test]
fn an_operation_that_does_not_apply_is_denied_with_a_reason() {
    let s = snapshot();
    let action = Action::literal(Operation::Read, ResourceType::Cluster, "kafka-cluster").unwrap();
    let d = s.decide(&ctx("User:platform-ops-bot"), &action, SystemTime::now());
    assert!(!d.allowed);
    assert_eq!(
        d.errors[0].to_string(),
        "operation `Read` does not apply to resource type `Cluster`"
    );
}

#[test]
fn a_prefixed_question_is_denied_with_a_reason() {
    let s = snapshot();
    let action = Action::new(
        Operation::Read,
        ResourceType::Topic,
        "phi.labs.",
        PatternType::Prefixed,
    )
    .unwrap();
    let d = s.decide(
        &ctx("User:lab-results-consumer"),
        &action,
        SystemTime::now(),
    );
    assert!(!d.allowed);
    assert!(d.errors[0].message.contains("prefixed"), "{:?}", d.errors);
}

#[test]
fn decisions_that_read_the_time_are_not_cacheable() {
    let s = snapshot();
    let action = topic(Operation::Read, "phi.labs.results");
    let inside = parse_utc("2026-01-01T10:00:00Z").unwrap();
    let d = s.decide(&ctx("User:on-call-responder"), &action, inside);
    assert!(d.allowed);
    assert!(!d.cacheable);
    let d = s.decide(&ctx("User:lab-results-consumer"), &action, inside);
    assert!(d.allowed);
    assert!(d.cacheable);
}

#[test]
fn authorize_by_resource_type_finds_a_granted_name() {
    let s = snapshot();
    let now = SystemTime::now();
    let producer = ctx("User:lab-results-producer");
    let d = s.authorize_by_resource_type(&producer, Operation::Write, ResourceType::Topic, "", now);
    assert!(d.allowed);
    assert_eq!(d.example_resource_name.as_deref(), Some("phi.labs."));
    let d = s.authorize_by_resource_type(
        &producer,
        Operation::Write,
        ResourceType::TransactionalId,
        "lab-results-tx",
        now,
    );
    assert!(d.allowed);
    assert_eq!(d.example_resource_name.as_deref(), Some("lab-results-tx"));
    let d = s.authorize_by_resource_type(
        &producer,
        Operation::Write,
        ResourceType::Topic,
        "ops.",
        now,
    );
    assert!(!d.allowed);
    let consumer = ctx("User:lab-results-consumer");
    let d = s.authorize_by_resource_type(&consumer, Operation::Write, ResourceType::Topic, "", now);
    assert!(!d.allowed);
    let d =
        s.authorize_by_resource_type(&consumer, Operation::Read, ResourceType::Cluster, "", now);
    assert!(!d.allowed);
    assert!(!d.errors.is_empty());
    // The platform admin's grant covers every topic, but its forbid covers `phi.`.
    let admin = ctx("User:platform-ops-bot");
    let d =
        s.authorize_by_resource_type(&admin, Operation::Delete, ResourceType::Topic, "phi.", now);
    assert!(d.allowed);
    let d = s.authorize_by_resource_type(&admin, Operation::Read, ResourceType::Topic, "phi.", now);
    assert!(!d.allowed);
}

#[test]
fn the_version_depends_on_content_not_location() {
    let a = snapshot();
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let b = PolicySnapshot::load_dir(dir.path()).unwrap();
    assert_eq!(a.version(), b.version());
    let extra = "\n@id(\"extra\")\nforbid (principal, action, resource);\n";
    std::fs::write(dir.path().join("extra.cedar"), extra).unwrap();
    let c = PolicySnapshot::load_dir(dir.path()).unwrap();
    assert_ne!(a.version(), c.version());
    assert_eq!(c.policy_count(), a.policy_count() + 1);
}
