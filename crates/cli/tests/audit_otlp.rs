//! `serve --audit-otlp-endpoint`: the real binary ships its audit records to
//! an OTLP/gRPC logs receiver over a real socket, each body the stored line
//! unchanged, and replays what it spooled while no receiver listened. Over
//! `https://` it verifies the receiver against `--audit-otlp-ca` (and shows
//! its own certificate when the receiver asks), and ships nothing to a
//! receiver whose certificate that CA did not sign.
//!
//! The receiver is the OTLP `LogsService` generated from the OpenTelemetry
//! protocol, served by tonic in this test: it only collects what arrives.
//! Certificates are made by the test with `rcgen`.

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
use support::{action, context, eventually, pki::Pki, run, stderr, Server};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

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

    /// Serves over TLS with `tls` (a server certificate, maybe a client CA).
    async fn serve_tls_on(self, listener: TcpListener, tls: ServerTlsConfig) {
        let incoming = TcpListenerStream::new(listener);
        let mut server = tonic::transport::Server::builder()
            .tls_config(tls)
            .expect("the receiver's TLS config");
        tokio::spawn(
            server
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

/// A CA that signs the receiver's and the PDP's certificates, and a CA
/// nobody told the PDP about, with its own receiver certificate.
fn pki() -> Pki {
    let pki = Pki::new();
    let ca = pki.ca("audit collectors CA", "ca");
    pki.leaf(&ca, "receiver", &[]);
    pki.leaf(&ca, "pdp", &[]);
    let other = pki.ca("some other CA", "other-ca");
    pki.leaf(&other, "impostor", &[]);
    pki
}

/// The TLS identity of the receiver `name`.
fn identity(pki: &Pki, name: &str) -> Identity {
    Identity::from_pem(
        pki.read(&format!("{name}.pem")),
        pki.read(&format!("{name}.key")),
    )
}

/// `serve` shipping to `https://receiver`, trusting only `ca.pem`, and
/// showing `pdp.pem` when asked; with the metrics endpoint on.
fn serve_tls(dir: &Path, key: &str, receiver: SocketAddr, pki: &Pki) -> Server {
    let endpoint = format!("https://{receiver}");
    let (ca, cert, pdp_key) = (pki.arg("ca.pem"), pki.arg("pdp.pem"), pki.arg("pdp.key"));
    Server::plaintext(&[
        "--metrics-listen",
        "127.0.0.1:0",
        "--audit-dir",
        dir.to_str().unwrap(),
        "--audit-key",
        key,
        "--audit-otlp-endpoint",
        &endpoint,
        "--audit-otlp-ca",
        &ca,
        "--audit-otlp-cert",
        &cert,
        "--audit-otlp-key",
        &pdp_key,
    ])
}

/// The OTLP sink's lag, from `GET /metrics` (it is the only sink: `0`).
async fn otlp_lag(server: &Server) -> Option<u64> {
    let mut stream = TcpStream::connect(server.metrics?).await.ok()?;
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let prefix = "kafka_pdp_audit_export_lag_records{sink=\"0\"} ";
    response
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .and_then(|value| value.parse().ok())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_records_reach_a_receiver_the_ca_vouches_for() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let pki = pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    // Mutual TLS: the receiver also wants a certificate from the PDP.
    let tls = ServerTlsConfig::new()
        .identity(identity(&pki, "receiver"))
        .client_ca_root(Certificate::from_pem(pki.read("ca.pem")));
    receiver.clone().serve_tls_on(listener, tls).await;

    let server = serve_tls(&dir, &keygen(root.path()), addr, &pki);
    decide(&server, 6).await;
    await_all(&receiver, &dir).await;
    let caught_up = eventually("the OTLP lag to fall to 0", || {
        let lag = otlp_lag(&server);
        async move { (lag.await? == 0).then_some(()) }
    });
    caught_up.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_whose_certificate_the_ca_did_not_sign_gets_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let pki = pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let impostor = Receiver::default();
    let tls = ServerTlsConfig::new().identity(identity(&pki, "impostor"));
    impostor.clone().serve_tls_on(listener, tls).await;

    let server = serve_tls(&dir, &keygen(root.path()), addr, &pki);
    decide(&server, 4).await;
    assert!(
        stored_lines(&dir).len() >= 4,
        "the decisions are in the local log"
    );
    eventually("the sink to report a failed export", || {
        let failed = server.stderr().contains("audit export failed");
        async move { failed.then_some(()) }
    })
    .await;
    // Every record stays behind the cursor, waiting in the local log.
    let lagging = eventually("the OTLP lag to count every stored record", || {
        let stored = stored_lines(&dir).len() as u64;
        let lag = otlp_lag(&server);
        async move { (lag.await? == stored).then_some(()) }
    });
    lagging.await;
    assert!(
        impostor.bodies().is_empty(),
        "nothing may reach the impostor"
    );
    let log = server.stderr();
    assert!(
        log.contains("invalid peer certificate"),
        "the failure names the certificate:\n{log}"
    );
}
