//! The real binary's metrics endpoint and alerts: denials and reads sent
//! over gRPC, the alert read back from `GET /metrics` and from the WARN line
//! on stderr. Real sockets on loopback, port 0, polling with a deadline.

mod support;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use kafka_pdp_server::proto::{
    authorizer_client::AuthorizerClient, AuthorizeRequest, CachedDecision, Decision,
    Operation as Op, ReportCachedDecisionsRequest, ResourceType as Rt, StatusRequest,
};
use support::{action, context, run, stderr, stdout, Server, Trail, DEADLINE};
use tonic::transport::Channel;

/// `kafka-pdp serve --plaintext --metrics-listen 127.0.0.1:0 <args>`.
fn served(args: &[&str]) -> Server {
    let mut all = vec!["--metrics-listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Server::plaintext(&all)
}

/// Reading the metrics endpoint of a [`Server`] started by [`served`].
trait Metrics {
    /// The value of the sample line starting with `sample ` (name and labels).
    fn sample(&self, sample: &str) -> Option<f64>;
    /// Polls `/metrics` until `sample` equals `want`, or panics with the body.
    fn wait_for(&self, sample: &str, want: f64);
    fn scrape(&self) -> String;
}

impl Metrics for Server {
    fn sample(&self, sample: &str) -> Option<f64> {
        let body = self.scrape();
        let prefix = format!("{sample} ");
        body.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|value| value.parse().expect("a number"))
    }

    fn wait_for(&self, sample: &str, want: f64) {
        let start = Instant::now();
        while self.sample(sample) != Some(want) {
            assert!(
                start.elapsed() < DEADLINE,
                "no `{sample} {want}` in:\n{}",
                self.scrape()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn scrape(&self) -> String {
        scrape(self.metrics.expect("started with --metrics-listen"))
    }
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
    let server = served(&["--alert-denials", "5", "--alert-denials-window", "600"]);
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

    // Status lists it, and `kafka-pdp status` prints it.
    let status = server.admin().await.status(StatusRequest {}).await.unwrap();
    let alerts = status.into_inner().recent_alerts;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(
        (alert.rule.as_str(), alert.subject.as_str(), alert.count),
        ("principal_denials", "User:mallory", 5)
    );
    assert_eq!((alert.window_secs, alert.threshold), (600, 5));
    let printed = run(&[
        "status",
        "--server",
        &server.addr.to_string(),
        "--plaintext",
    ]);
    assert!(
        stdout(&printed).contains("alert: principal_denials User:mallory 5 in 600 s (threshold 5)"),
        "{}",
        stdout(&printed)
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
            super_user: false,
        }],
    }
}

#[tokio::test]
async fn denials_a_shim_reports_from_its_cache_count_with_their_fold() {
    let server = served(&["--alert-denials", "5", "--alert-denials-window", "600"]);
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
    let server = served(&[
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
        assert!(start.elapsed() < DEADLINE, "{}", server.scrape());
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

#[tokio::test]
async fn the_trail_counts_its_records_and_group_commits() {
    let trail = Trail::new();
    let server = trail.serve_with(&["--metrics-listen", "127.0.0.1:0"]);
    let mut client = server.authorizer().await;
    deny(&mut client, "User:unbound-app", 3).await;
    // Each call waited for its record to be synced: all three are counted.
    let records = server.sample("kafka_pdp_audit_records_total");
    assert_eq!(records, Some(3.0), "{}", server.scrape());
    let commits = server
        .sample("kafka_pdp_audit_group_commits_total")
        .expect("a group commit counter");
    // One call at a time: one to three syncs, never more than records.
    assert!((1.0..=3.0).contains(&commits), "{commits} group commits");
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
