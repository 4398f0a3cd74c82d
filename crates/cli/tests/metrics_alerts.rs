//! The real binary's metrics endpoint and alerts: denials and reads sent
//! over gRPC, the alert read back from `GET /metrics` and from the WARN line
//! on stderr. Real sockets on loopback, port 0, polling with a deadline.

mod support;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use kafka_pdp_server::{
    client::Connect,
    proto::{
        authorizer_client::AuthorizerClient, AuthorizeRequest, CachedDecision, Decision,
        Operation as Op, ReportCachedDecisionsRequest, ResourceType as Rt,
    },
};
use support::{action, context, run, stderr, BIN, DEADLINE};
use tonic::transport::Channel;

/// `kafka-pdp serve --plaintext --metrics-listen 127.0.0.1:0`, killed on drop.
struct Served {
    child: Child,
    grpc: SocketAddr,
    metrics: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--plaintext", "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kafka-pdp");
        let stderr = collect(child.stderr.take().expect("stderr is piped"));
        let lines = first_lines(child.stdout.take().expect("stdout is piped"), 2);
        let (first, second) = match lines.as_slice() {
            [first, second] => (first.as_str(), second.as_str()),
            _ => panic!("stdout said {lines:?}; stderr:\n{}", stderr.lock().unwrap()),
        };
        let grpc = first.strip_prefix("listening on ").expect("first line");
        let metrics = second.strip_prefix("metrics on ").expect("second line");
        Served {
            child,
            grpc: grpc.parse().expect("grpc address"),
            metrics: metrics.parse().expect("metrics address"),
            stderr,
        }
    }

    async fn authorizer(&self) -> AuthorizerClient<Channel> {
        let connect = Connect {
            server: self.grpc.to_string(),
            plaintext: true,
            ca: None,
            identity: None,
        };
        AuthorizerClient::new(connect.channel().await.expect("connect"))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The value of the sample line starting with `sample ` (name and labels).
    fn sample(&self, sample: &str) -> Option<f64> {
        let body = scrape(self.metrics);
        let prefix = format!("{sample} ");
        body.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|value| value.parse().expect("a number"))
    }

    /// Polls `/metrics` until `sample` equals `want`, or panics with the body.
    fn wait_for(&self, sample: &str, want: f64) {
        let start = Instant::now();
        while self.sample(sample) != Some(want) {
            assert!(
                start.elapsed() < DEADLINE,
                "no `{sample} {want}` in:\n{}",
                scrape(self.metrics)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `n` lines from the child's stdout, waiting up to [`DEADLINE`].
fn first_lines(stdout: impl Read + Send + 'static, n: usize) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        for _ in 0..n {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let _ = tx.send(line.trim().to_owned());
        }
    });
    let deadline = Instant::now() + DEADLINE;
    (0..n)
        .map_while(|_| {
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        })
        .collect()
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// `GET /metrics` over a plain socket; panics unless the answer is 200 with
/// the Prometheus text content type.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to metrics");
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_owned()
}

/// Sends `n` denied decisions for `principal`, one call each.
async fn deny(client: &mut AuthorizerClient<Channel>, principal: &str, n: usize) {
    for _ in 0..n {
        let response = client
            .authorize(AuthorizeRequest {
                context: Some(context(principal)),
                actions: vec![action(Op::Write, Rt::Topic, "phi.labs.results")],
            })
            .await
            .expect("authorize")
            .into_inner();
        assert_eq!(response.results[0].decision, Decision::Deny as i32);
    }
}

const DENIALS_ALERTS: &str = "kafka_pdp_alerts_total{rule=\"principal_denials\"}";
const PHI_ALERTS: &str = "kafka_pdp_alerts_total{rule=\"phi_read_rise\"}";
const DENIES: &str = "kafka_pdp_decisions_total{decision=\"deny\"}";

#[tokio::test]
async fn repeated_denials_of_one_principal_raise_one_alert_and_fewer_raise_none() {
    let server = Served::start(&["--alert-denials", "5", "--alert-denials-window", "600"]);
    let mut client = server.authorizer().await;

    // Four denials each for two principals: under the threshold of five.
    deny(&mut client, "User:mallory", 4).await;
    deny(&mut client, "User:eve", 4).await;
    server.wait_for(DENIES, 8.0);
    assert_eq!(server.sample(DENIALS_ALERTS), Some(0.0));
    assert!(
        !server.stderr().contains("kafka_pdp::alert"),
        "{}",
        server.stderr()
    );

    // The fifth denial of one principal raises the alert, once.
    deny(&mut client, "User:mallory", 1).await;
    server.wait_for(DENIALS_ALERTS, 1.0);
    deny(&mut client, "User:mallory", 10).await;
    server.wait_for(DENIES, 19.0);
    assert_eq!(server.sample(DENIALS_ALERTS), Some(1.0), "once per episode");
    assert_eq!(server.sample(PHI_ALERTS), Some(0.0));

    let log = support::eventually("the alert's WARN line", || {
        let log = server.stderr();
        async move { log.contains("kafka_pdp::alert").then_some(log) }
    })
    .await;
    let alerts: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("kafka_pdp::alert"))
        .collect();
    assert_eq!(alerts.len(), 1, "{log}");
    let line = alerts[0];
    for field in [
        "WARN",
        "rule=principal_denials",
        "principal=User:mallory",
        "count=5",
        "window_secs=600",
        "threshold=5",
    ] {
        assert!(line.contains(field), "no `{field}` in: {line}");
    }
    assert!(
        !line.contains("phi.labs"),
        "no resource name in an alert: {line}"
    );
}

/// A shim's report of `count` identical denials it answered from its cache.
fn cached_denials(principal: &str, count: u64) -> ReportCachedDecisionsRequest {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    ReportCachedDecisionsRequest {
        decisions: vec![CachedDecision {
            context: Some(context(principal)),
            action: Some(action(Op::Write, Rt::Topic, "phi.labs.results")),
            decision: Decision::Deny as i32,
            policy_version: "0".repeat(64),
            determining_policies: Vec::new(),
            count,
            first_time_unix_ms: now_ms,
            last_time_unix_ms: now_ms,
        }],
    }
}

#[tokio::test]
async fn denials_a_shim_reports_from_its_cache_count_with_their_fold() {
    let server = Served::start(&["--alert-denials", "5", "--alert-denials-window", "600"]);
    let mut client = server.authorizer().await;

    client
        .report_cached_decisions(cached_denials("User:eve", 4))
        .await
        .expect("report");
    assert_eq!(server.sample(DENIALS_ALERTS), Some(0.0), "4 folded denials");
    client
        .report_cached_decisions(cached_denials("User:eve", 1))
        .await
        .expect("report");
    server.wait_for(DENIALS_ALERTS, 1.0);
    let reported = "kafka_pdp_shim_cached_decisions_total{decision=\"deny\"}";
    assert_eq!(server.sample(reported), Some(5.0));
    assert_eq!(server.sample(DENIES), Some(0.0), "none decided by the PDP");
    let line = support::eventually("the alert's WARN line", || {
        let log = server.stderr();
        let line = log.lines().find(|l| l.contains("kafka_pdp::alert"));
        let line = line.map(str::to_owned);
        async move { line }
    })
    .await;
    assert!(line.contains("principal=User:eve"), "{line}");
    assert!(line.contains("count=5"), "{line}");
}

#[tokio::test]
async fn a_burst_of_phi_reads_after_quiet_windows_raises_the_read_rise_alert() {
    // One-second windows, the baseline is the last window, and only a burst
    // of 20 reads after a quiet window can fire (factor 1000 rules out a
    // busy baseline).
    let server = Served::start(&[
        "--alert-phi-window",
        "1",
        "--alert-phi-baseline-windows",
        "1",
        "--alert-phi-factor",
        "1000",
        "--alert-phi-min-reads",
        "20",
        "--alert-cooldown",
        "0",
    ]);
    let mut client = server.authorizer().await;
    let reads = || AuthorizeRequest {
        context: Some(context("User:lab-results-consumer")),
        actions: vec![action(Op::Read, Rt::Topic, "phi.labs.results"); 25],
    };

    // The rule works on wall-clock windows, so the test must let two of
    // them pass quietly before a burst; a burst that straddles a window
    // edge does not count, and the next try waits again.
    let start = Instant::now();
    loop {
        let quiet = Instant::now() + Duration::from_millis(2100);
        while Instant::now() < quiet {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let answer = client.authorize(reads()).await.expect("authorize");
        let results = answer.into_inner().results;
        assert!(results.iter().all(|r| r.decision == Decision::Allow as i32));
        if server.sample(PHI_ALERTS) == Some(1.0) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "{}", scrape(server.metrics));
    }
    let line = support::eventually("the PHI alert's WARN line", || {
        let log = server.stderr();
        let line = log.lines().find(|l| l.contains("rule=phi_read_rise"));
        let line = line.map(str::to_owned);
        async move { line }
    })
    .await;
    assert!(line.contains("prefix=phi."), "{line}");
    assert!(line.contains("threshold=20"), "{line}");
    assert!(
        !line.contains("phi.labs"),
        "no topic name in an alert: {line}"
    );
}

#[test]
fn metrics_on_a_non_loopback_address_need_the_operator_to_say_so() {
    let out = run(&[
        "serve",
        "--plaintext",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "0.0.0.0:0",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("non-loopback address `0.0.0.0:0`"), "{err}");
    assert!(err.contains("--allow-remote-metrics"), "{err}");
}

#[test]
fn a_phi_factor_below_one_is_refused_by_name() {
    let out = run(&["serve", "--plaintext", "--alert-phi-factor", "0.5"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = stderr(&out);
    assert!(err.contains("--alert-phi-factor"), "{err}");
    assert!(err.contains("at least 1"), "{err}");
}
