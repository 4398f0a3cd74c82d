use super::*;

use proto::{Operation, ResourceType};

fn ctx() -> proto::RequestContext {
    proto::RequestContext {
        principal: Some(proto::Principal {
            r#type: "User".into(),
            name: "alice".into(),
        }),
        client_address: "10.0.0.7".into(),
        ..Default::default()
    }
}

fn read(topic: &str) -> proto::Action {
    proto::Action {
        operation: Operation::Read as i32,
        resource_type: ResourceType::Topic as i32,
        resource_name: topic.into(),
        ..Default::default()
    }
}

fn request(actions: Vec<proto::Action>) -> proto::AuthorizeRequest {
    proto::AuthorizeRequest {
        context: Some(ctx()),
        actions,
    }
}

#[test]
fn a_good_batch_passes_and_keeps_order() {
    let b = batch(request(vec![read("a"), read("b")]), 10).unwrap();
    assert_eq!(b.context.principal().entity_id(), "User:alice");
    assert_eq!(b.actions[1].resource_name(), "b");
    assert_eq!(b.actions[0].pattern_type(), PatternType::Literal);
}

#[test]
fn an_unknown_operation_names_the_action_index() {
    let mut bad = read("b");
    bad.operation = 99;
    let err = batch(request(vec![read("a"), bad]), 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`actions[1]`: `operation` has unknown value 99"
    );
}

#[test]
fn an_unspecified_resource_type_is_refused() {
    let mut bad = read("a");
    bad.resource_type = 0;
    let err = batch(request(vec![bad]), 10).unwrap_err();
    assert_eq!(err.to_string(), "`actions[0]`: `resource_type` is required");
}

#[test]
fn an_empty_principal_is_refused() {
    let mut req = request(vec![read("a")]);
    req.context
        .as_mut()
        .unwrap()
        .principal
        .as_mut()
        .unwrap()
        .name = String::new();
    let err = batch(req, 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`context.principal`: principal name is empty"
    );
}

#[test]
fn a_missing_principal_is_refused() {
    let mut req = request(vec![read("a")]);
    req.context.as_mut().unwrap().principal = None;
    assert_eq!(
        batch(req, 10).unwrap_err(),
        InvalidRequest::Missing("context.principal")
    );
}

#[test]
fn a_bad_ip_is_refused_with_the_value() {
    let mut req = request(vec![read("a")]);
    req.context.as_mut().unwrap().client_address = "10.0.0.300".into();
    let err = batch(req, 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`context.client_address`: invalid client address `10.0.0.300`"
    );
}

#[test]
fn an_oversized_batch_is_refused() {
    let err = batch(request(vec![read("a"); 3]), 2).unwrap_err();
    assert_eq!(err, InvalidRequest::TooManyActions { count: 3, max: 2 });
}

#[test]
fn an_over_long_topic_name_is_refused() {
    let long = "x".repeat(250);
    let err = batch(request(vec![read("a"), read(&long)]), 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`actions[1]`: `resource_name`: resource name is 250 bytes long; the limit is 249"
    );
}

#[test]
fn an_unknown_pattern_type_is_refused() {
    let mut bad = read("a");
    bad.pattern_type = 7;
    let err = batch(request(vec![bad]), 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`actions[0]`: `pattern_type` has unknown value 7"
    );
}

#[test]
fn an_empty_address_reads_as_unspecified() {
    let mut req = request(vec![read("a")]);
    req.context.as_mut().unwrap().client_address = String::new();
    let b = batch(req, 10).unwrap();
    assert!(b.context.client_address().is_unspecified());
}

#[test]
fn every_operation_and_resource_type_round_trips() {
    for op in model::Operation::ALL {
        assert_eq!(
            operation("operation", operation_to_proto(op) as i32),
            Ok(op)
        );
    }
    for rt in model::ResourceType::ALL {
        assert_eq!(
            resource_type("resource_type", resource_type_to_proto(rt) as i32),
            Ok(rt)
        );
    }
}
