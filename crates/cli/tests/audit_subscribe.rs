//! `AuditStream.Subscribe` and `kafka-pdp audit subscribe` against the real
//! binary over a real socket: a replay from the log, then live records, with
//! filters applied on the server.

mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use kafka_pdp_server::proto::{
    audit_stream_client::AuditStreamClient, AuthorizeRequest, Decision, Operation as Op,
    RequestContext, ResourceType as Rt, SubscribeRequest,
};
use support::{action, context, Server, Trail};

const BIN: &str = env!("CARGO_BIN_EXE_kafka-pdp");

/// How long a test waits for a record it expects.
const DEADLINE: Duration = Duration::from_secs(20);

fn request(op: Op, topic: &str, correlation_id: i32) -> AuthorizeRequest {
    AuthorizeRequest {
        context: Some(RequestContext {
            correlation_id,
            ..context("User:lab-results-consumer")
        }),
        actions: vec![action(op, Rt::Topic, topic)],
    }
}

/// Sends `request` and checks the answer.
async fn decide(server: &Server, request: AuthorizeRequest, want: Decision) {
    let answer = server.authorizer().await.authorize(request).await.unwrap();
    assert_eq!(answer.into_inner().results[0].decision, want as i32);
}

fn correlation_id(json: &str) -> i32 {
    let value: serde_json::Value = serde_json::from_str(json).expect("a JSON record");
    value["data"]["request"]["correlation_id"]
        .as_i64()
        .expect("a correlation id") as i32
}

#[tokio::test]
async fn a_subscriber_replays_then_follows_only_the_records_it_asked_for() {
    let trail = Trail::new();
    let server = trail.serve();
    decide(
        &server,
        request(Op::Read, "phi.labs.results", 1),
        Decision::Allow,
    )
    .await;
    decide(
        &server,
        request(Op::Write, "phi.labs.results", 2),
        Decision::Deny,
    )
    .await;

    let mut stream = AuditStreamClient::new(server.channel().await)
        .subscribe(SubscribeRequest {
            decision: Decision::Deny as i32,
            resource_type: "Topic".into(),
            resource_name_prefix: "phi.".into(),
            from_sequence: 1,
            ..SubscribeRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The replay: record 1 was an ALLOW, filtered out; record 2 is the DENY.
    let first = next(&mut stream).await;
    assert_eq!((first.sequence, correlation_id(&first.json)), (2, 2));

    // Live: an ALLOW and a DENY elsewhere are filtered out, this DENY is not.
    decide(
        &server,
        request(Op::Read, "phi.labs.results", 3),
        Decision::Allow,
    )
    .await;
    decide(
        &server,
        request(Op::Write, "other.topic", 4),
        Decision::Deny,
    )
    .await;
    decide(
        &server,
        request(Op::Write, "phi.labs.more", 5),
        Decision::Deny,
    )
    .await;
    let live = next(&mut stream).await;
    assert_eq!((live.sequence, correlation_id(&live.json)), (5, 5));
}

async fn next(
    stream: &mut tonic::Streaming<kafka_pdp_server::proto::AuditRecord>,
) -> kafka_pdp_server::proto::AuditRecord {
    tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a record within the deadline")
        .expect("a healthy stream")
        .expect("the stream stays open")
}

#[tokio::test]
async fn without_an_audit_dir_subscribe_fails_with_failed_precondition() {
    let server = Server::plaintext(&[]);
    let status = AuditStreamClient::new(server.channel().await)
        .subscribe(SubscribeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
}

/// Kills the subscriber process on drop.
struct Subscriber(Child);

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_cli_prints_records_as_json_lines_as_they_arrive() {
    let trail = Trail::new();
    let server = trail.serve();
    let addr = server.addr.to_string();
    let mut child = Command::new(BIN)
        .args(["audit", "subscribe", "--server", &addr, "--plaintext"])
        .args([
            "--principal",
            "User:lab-results-consumer",
            "--from-sequence",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start audit subscribe");
    let stdout = child.stdout.take().unwrap();
    let _subscriber = Subscriber(child);
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });

    decide(
        &server,
        request(Op::Read, "phi.labs.results", 7),
        Decision::Allow,
    )
    .await;
    decide(
        &server,
        request(Op::Write, "phi.labs.results", 8),
        Decision::Deny,
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = lines
            .recv_timeout(DEADLINE)
            .expect("a JSON line from the subscriber");
        seen.push(correlation_id(&line));
    }
    assert_eq!(seen, [7, 8]);
}
