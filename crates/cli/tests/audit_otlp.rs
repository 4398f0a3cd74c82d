//! `serve --audit-otlp-endpoint`: the real binary ships its audit records to
//! an OTLP/gRPC logs receiver over a real socket, each body the stored line
//! unchanged, and replays what it spooled while no receiver listened.
//!
//! The receiver is the OTLP `LogsService` generated from the OpenTelemetry
//! protocol, served by tonic in this test: it only collects what arrives.

mod support;

use std::{
    collections::BTreeMap,
    fs,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
};

use kafka_pdp_server::proto::{
    AuthorizeRequest, Decision, Operation as Op, RequestContext, ResourceType as Rt,
};
use opentelemetry_proto::tonic::{
    collector::logs::v1::{
        logs_service_server::{LogsService, LogsServiceServer},
        ExportLogsServiceRequest, ExportLogsServiceResponse,
    },
    common::v1::any_value::Value,
};
use support::{action, context, eventually, run, stderr, Server};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// Bodies received, by `kafka_pdp.audit.sequence`.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<BTreeMap<i64, String>>>,
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut bodies = self.bodies.lock().unwrap();
        let records = request
            .into_inner()
            .resource_logs
            .into_iter()
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records);
        for record in records {
            let seq = record
                .attributes
                .iter()
                .find(|a| a.key == "kafka_pdp.audit.sequence")
                .and_then(|a| a.value.clone()?.value);
            let body = record.body.and_then(|b| b.value);
            if let (Some(Value::IntValue(seq)), Some(Value::StringValue(body))) = (seq, body) {
                bodies.insert(seq, body);
            }
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

impl Receiver {
    async fn serve_on(self, listener: TcpListener) {
        let incoming = TcpListenerStream::new(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(LogsServiceServer::new(self))
                .serve_with_incoming(incoming),
        );
    }

    fn bodies(&self) -> BTreeMap<i64, String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The stored lines of the log, in order.
fn stored_lines(dir: &Path) -> Vec<String> {
    let mut segments: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("seg-"))
        .collect();
    segments.sort();
    segments
        .iter()
        .flat_map(|p| {
            let text = fs::read_to_string(p).unwrap();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

fn request(op: Op, correlation_id: i32) -> AuthorizeRequest {
    AuthorizeRequest {
        context: Some(RequestContext {
            correlation_id,
            ..context("User:lab-results-consumer")
        }),
        actions: vec![action(op, Rt::Topic, "phi.labs.results")],
    }
}

async fn decide(server: &Server, n: i32) {
    let mut client = server.authorizer().await;
    for id in 0..n {
        let op = if id % 2 == 0 { Op::Read } else { Op::Write };
        let answer = client
            .authorize(request(op, id))
            .await
            .unwrap()
            .into_inner();
        let want = if op == Op::Read {
            Decision::Allow
        } else {
            Decision::Deny
        };
        assert_eq!(answer.results[0].decision, want as i32);
    }
}

/// Waits until the receiver holds exactly the stored lines 1..=n.
async fn await_all(receiver: &Receiver, dir: &Path) {
    let lines = stored_lines(dir);
    let n = lines.len() as i64;
    let got = eventually("every stored record at the receiver", || {
        let bodies = receiver.bodies();
        async move { (bodies.range(1..=n).count() as i64 == n).then_some(bodies) }
    })
    .await;
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            &got[&(i as i64 + 1)],
            line,
            "record {} must arrive unchanged",
            i + 1
        );
    }
}

fn keygen(root: &Path) -> String {
    let key = root.join("audit.key");
    let out = run(&["audit", "keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "keygen: {}", stderr(&out));
    key.to_str().unwrap().to_owned()
}

fn serve(dir: &Path, key: &str, receiver: SocketAddr) -> Server {
    let endpoint = format!("http://{receiver}");
    Server::plaintext(&[
        "--audit-dir",
        dir.to_str().unwrap(),
        "--audit-key",
        key,
        "--audit-otlp-endpoint",
        &endpoint,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_receiver_unchanged_and_in_full() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    receiver.clone().serve_on(listener).await;

    let server = serve(&dir, &keygen(root.path()), addr);
    decide(&server, 6).await;
    await_all(&receiver, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_spooled_while_no_receiver_listens_arrive_once_it_does() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    // Reserve a port, then leave it closed while the PDP decides.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let server = serve(&dir, &keygen(root.path()), addr);
    decide(&server, 4).await;
    eventually("the sink to report a failed export", || {
        let failed = server.stderr().contains("audit export failed");
        async move { failed.then_some(()) }
    })
    .await;

    let listener = TcpListener::bind(addr).await.unwrap();
    let receiver = Receiver::default();
    receiver.clone().serve_on(listener).await;
    decide(&server, 2).await;
    await_all(&receiver, &dir).await;
}
