//! The real binary serving the default policies over real sockets.

mod support;

use kafka_pdp_server::proto::{
    AuthorizeByResourceTypeRequest, AuthorizeRequest, Decision, Operation as Op, ResourceType as Rt,
};
use support::{action, context, Server};
use tonic::Code;

/// (principal, operation, resource type, resource, expected decision) for each default role.
const ROLE_CASES: &[(&str, Op, Rt, &str, Decision)] = &[
    (
        "User:lab-results-consumer",
        Op::Read,
        Rt::Topic,
        "phi.labs.results",
        Decision::Allow,
    ),
    (
        "User:lab-results-consumer",
        Op::Describe,
        Rt::Topic,
        "phi.labs.results",
        Decision::Allow,
    ),
    (
        "User:lab-results-consumer",
        Op::Write,
        Rt::Topic,
        "phi.labs.results",
        Decision::Deny,
    ),
    (
        "User:lab-results-consumer",
        Op::Read,
        Rt::Topic,
        "phi.imaging.scans",
        Decision::Deny,
    ),
    (
        "User:lab-results-producer",
        Op::Write,
        Rt::Topic,
        "phi.labs.results",
        Decision::Allow,
    ),
    (
        "User:lab-results-producer",
        Op::Read,
        Rt::Topic,
        "phi.labs.results",
        Decision::Deny,
    ),
    (
        "User:platform-ops-bot",
        Op::Create,
        Rt::Topic,
        "phi.labs.new",
        Decision::Allow,
    ),
    (
        "User:platform-ops-bot",
        Op::AlterConfigs,
        Rt::Cluster,
        "kafka-cluster",
        Decision::Allow,
    ),
    (
        "User:platform-ops-bot",
        Op::Read,
        Rt::Topic,
        "phi.labs.results",
        Decision::Deny,
    ),
    (
        "User:compliance-audit-reader",
        Op::DescribeConfigs,
        Rt::Topic,
        "phi.labs.results",
        Decision::Allow,
    ),
    (
        "User:compliance-audit-reader",
        Op::Read,
        Rt::Topic,
        "phi.labs.results",
        Decision::Deny,
    ),
    (
        "User:labs-data-steward",
        Op::AlterConfigs,
        Rt::Topic,
        "phi.labs.results",
        Decision::Allow,
    ),
    (
        "User:labs-data-steward",
        Op::Read,
        Rt::Topic,
        "phi.labs.results",
        Decision::Deny,
    ),
    (
        "User:nobody",
        Op::Describe,
        Rt::Topic,
        "public.metrics",
        Decision::Deny,
    ),
];

#[tokio::test]
async fn default_policies_allow_and_deny_per_role() {
    let server = Server::plaintext(&[]);
    let mut client = server.authorizer().await;
    for &(principal, op, rt, name, expected) in ROLE_CASES {
        let response = client
            .authorize(AuthorizeRequest {
                context: Some(context(principal)),
                actions: vec![action(op, rt, name)],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.results.len(), 1);
        let got = response.results[0].decision;
        assert_eq!(got, expected as i32, "{principal} {op:?} {rt:?} {name}");
        assert_eq!(response.policy_version.len(), 64, "a sha-256 version");
    }
}

#[tokio::test]
async fn a_batch_is_answered_in_order_under_one_version_with_and_without_cache() {
    for extra in [&[][..], &["--no-cache"][..]] {
        let server = Server::plaintext(extra);
        let mut client = server.authorizer().await;
        let actions: Vec<_> = ROLE_CASES
            .iter()
            .filter(|c| c.0 == "User:lab-results-consumer")
            .map(|&(_, op, rt, name, _)| action(op, rt, name))
            .collect();
        let request = AuthorizeRequest {
            context: Some(context("User:lab-results-consumer")),
            actions,
        };
        // Twice: the second answer comes from the cache when it is on.
        for _ in 0..2 {
            let response = client
                .authorize(request.clone())
                .await
                .unwrap()
                .into_inner();
            let decisions: Vec<i32> = response.results.iter().map(|r| r.decision).collect();
            let allow = Decision::Allow as i32;
            let deny = Decision::Deny as i32;
            assert_eq!(decisions, vec![allow, allow, deny, deny], "with {extra:?}");
            assert!(response.results.iter().all(|r| r.cacheable));
        }
    }
}

async fn authorize_err(server: &Server, request: AuthorizeRequest) -> tonic::Status {
    let mut client = server.authorizer().await;
    client
        .authorize(request)
        .await
        .expect_err("must be refused")
}

fn consumer_request() -> AuthorizeRequest {
    AuthorizeRequest {
        context: Some(context("User:lab-results-consumer")),
        actions: vec![action(Op::Read, Rt::Topic, "phi.labs.results")],
    }
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let server = Server::plaintext(&["--max-actions-per-request", "5"]);

    let mut unknown_op = consumer_request();
    unknown_op.actions.push(action(Op::Read, Rt::Topic, "x"));
    unknown_op.actions[1].operation = 42;
    let status = authorize_err(&server, unknown_op).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "`actions[1]`: `operation` has unknown value 42"
    );

    let mut unknown_type = consumer_request();
    unknown_type.actions[0].resource_type = 99;
    let status = authorize_err(&server, unknown_type).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "`actions[0]`: `resource_type` has unknown value 99"
    );

    let mut bad_ip = consumer_request();
    bad_ip.context.as_mut().unwrap().client_address = "10.1.2.999".into();
    let status = authorize_err(&server, bad_ip).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "`context.client_address`: invalid client address `10.1.2.999`"
    );

    let mut empty_principal = consumer_request();
    empty_principal
        .context
        .as_mut()
        .unwrap()
        .principal
        .as_mut()
        .unwrap()
        .name
        .clear();
    let status = authorize_err(&server, empty_principal).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "`context.principal`: principal name is empty"
    );

    let mut oversized = consumer_request();
    oversized.actions = vec![action(Op::Read, Rt::Topic, "phi.labs.results"); 6];
    let status = authorize_err(&server, oversized).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "`actions` has 6 entries, more than the limit of 5 per request"
    );

    let mut long_name = consumer_request();
    long_name.actions[0].resource_name = "t".repeat(250);
    let status = authorize_err(&server, long_name).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("`actions[0]`: `resource_name`: "),
        "{status:?}"
    );

    // The server is still answering after all that.
    let mut client = server.authorizer().await;
    let ok = client
        .authorize(consumer_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.results[0].decision, Decision::Allow as i32);
}

#[tokio::test]
async fn an_oversized_message_is_refused_by_the_size_limit() {
    let server = Server::plaintext(&["--max-message-bytes", "1024"]);
    let mut request = consumer_request();
    request.actions = vec![action(Op::Read, Rt::Topic, &"t".repeat(200)); 10];
    let status = authorize_err(&server, request).await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}

#[tokio::test]
async fn authorize_by_resource_type_finds_a_granted_name() {
    let server = Server::plaintext(&[]);
    let mut client = server.authorizer().await;
    let ask = |principal: &str, prefix: &str| AuthorizeByResourceTypeRequest {
        context: Some(context(principal)),
        operation: Op::Write as i32,
        resource_type: Rt::Topic as i32,
        name_prefix: prefix.into(),
    };
    let yes = client
        .authorize_by_resource_type(ask("User:lab-results-producer", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(yes.decision, Decision::Allow as i32);
    assert!(
        yes.example_resource_name.starts_with("phi.labs."),
        "{yes:?}"
    );
    let no = client
        .authorize_by_resource_type(ask("User:lab-results-producer", "phi.imaging."))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(no.decision, Decision::Deny as i32);
}

#[tokio::test]
async fn health_reports_serving_and_reflection_lists_the_services() {
    use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };

    let server = Server::plaintext(&[]);
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "kafka_pdp.v1.Authorizer", "kafka_pdp.v1.PolicyAdmin"] {
        let request = tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        };
        let status = health.check(request).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"kafka_pdp.v1.Authorizer"), "{names:?}");
    assert!(names.contains(&"kafka_pdp.v1.PolicyAdmin"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    // The older reflection protocol too, which older grpcurl versions ask.
    use tonic_reflection::pb::v1alpha as alpha;
    let mut reflection =
        alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let list = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let listed = format!("{response:?}");
    assert!(listed.contains("kafka_pdp.v1.Authorizer"), "{listed}");
}

#[test]
fn plaintext_on_a_non_loopback_address_is_refused() {
    let out = support::run(&["serve", "--plaintext", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = support::stderr(&out);
    assert!(
        err.contains("refusing to serve plaintext on non-loopback address"),
        "{err}"
    );
    assert!(
        support::stdout(&out).is_empty(),
        "never announced a listener"
    );
}

#[test]
fn serving_without_tls_or_plaintext_is_refused() {
    let out = support::run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(support::stderr(&out).contains("`--tls-cert` and `--tls-key`, or `--plaintext`"));
}

// Two workers: the test blocks one while it waits for the exit, and the
// client's connection must still answer the server's GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_and_ends_open_watch_streams() {
    use kafka_pdp_server::proto::WatchPolicyVersionRequest;

    let mut server = Server::plaintext(&[]);
    let mut client = server.authorizer().await;
    let mut versions = client
        .watch_policy_version(WatchPolicyVersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(versions.message().await.unwrap().is_some());

    let status = server.terminate();
    let status = status.unwrap_or_else(|| panic!("still running:\n{}", server.stderr()));
    assert!(status.success(), "{status:?}");
    let log = server.stderr();
    assert!(!log.contains("still open after the grace period"), "{log}");
    // The stream ended with the server, cleanly or by a closed connection.
    assert!(!matches!(versions.message().await, Ok(Some(_))));
}
