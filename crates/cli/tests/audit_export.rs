//! The Kafka sink's lag bound, through the real binary: with no broker
//! listening at the sink's address, records pile up in the local log, and
//! once more than `--audit-kafka-max-lag` wait, the PDP answers DENY, records
//! that DENY, and counts it. (Delivery to a real broker is proven by the Java
//! end-to-end suite, `AuditTrailTest`.)

mod support;

use std::path::Path;

use kafka_pdp_server::proto::{
    AuthorizeRequest, Decision, Operation as Op, RequestContext, ResourceType as Rt, StatusRequest,
};
use support::{action, context, eventually, run, stderr, stdout, Server};

fn request(correlation_id: i32) -> AuthorizeRequest {
    AuthorizeRequest {
        context: Some(RequestContext {
            correlation_id,
            ..context("User:lab-results-consumer")
        }),
        actions: vec![action(Op::Read, Rt::Topic, "phi.labs.results")],
    }
}

/// A loopback port where nothing listens (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn keygen(root: &Path) -> String {
    let key = root.join("audit.key");
    let out = run(&["audit", "keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "keygen: {}", stderr(&out));
    key.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn past_the_lag_bound_the_pdp_denies_records_the_deny_and_counts_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let key = keygen(root.path());
    let bootstrap = format!("127.0.0.1:{}", closed_port());
    let server = Server::plaintext(&[
        "--audit-dir",
        dir.to_str().unwrap(),
        "--audit-key",
        &key,
        "--audit-kafka-bootstrap",
        &bootstrap,
        "--audit-kafka-max-lag",
        "2",
    ]);
    let mut client = server.authorizer().await;
    let first = client.authorize(request(1)).await.unwrap().into_inner();
    assert_eq!(first.results[0].decision, Decision::Allow as i32);

    // Every call adds a record nobody ships; soon the sink is over bound.
    let mut next_id = 2;
    let denied = eventually("a DENY for an over-bound sink", || {
        let mut client = client.clone();
        next_id += 1;
        let id = next_id;
        async move {
            let answer = client.authorize(request(id)).await.unwrap().into_inner();
            let result = answer.results.into_iter().next().unwrap();
            (result.decision == Decision::Deny as i32).then_some((id, result))
        }
    })
    .await;
    let (id, result) = denied;
    assert!(!result.cacheable, "a fail-closed DENY must not be cached");
    assert!(
        result.errors[0].contains("audit export is behind"),
        "{:?}",
        result.errors
    );

    // The DENY itself is in the trail.
    let out = run(&[
        "audit",
        "query",
        dir.to_str().unwrap(),
        "--json",
        "--decision",
        "deny",
    ]);
    assert!(out.status.success(), "query: {}", stderr(&out));
    let needle = format!("\"correlation_id\":{id}");
    assert!(stdout(&out).contains(&needle), "{}", stdout(&out));

    let status = server.admin().await.status(StatusRequest {}).await.unwrap();
    let counter = |key: &str| -> u64 {
        let value = status.metadata().get(key).expect(key).to_str().unwrap();
        value.parse().unwrap()
    };
    assert!(counter("x-pdp-fail-closed-audit-export-behind") >= 1);
    // Counted once, under its own reason: no policy failed to evaluate.
    assert_eq!(counter("x-pdp-fail-closed-evaluation-error"), 0);
    assert!(counter("x-pdp-audit-export-lag") > 2);
}
