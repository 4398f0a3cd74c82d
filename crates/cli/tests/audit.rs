//! The audit trail end to end through the real binary: `serve --audit-dir`
//! records every decision before answering, survives `kill -9`, and
//! `audit verify`, `query` and `tail` read what it wrote.

mod support;

use std::{
    collections::BTreeSet,
    fs,
    path::Path,
    process::Command,
    sync::{Arc, Mutex},
};

use kafka_pdp_server::proto::{
    AuthorizeRequest, CachedDecision, Decision, Operation as Op, ReportCachedDecisionsRequest,
    RequestContext, ResourceType as Rt,
};
use support::{action, context, run, stderr, stdout, Server, Trail};

/// Reading the trail back with the CLI.
impl Trail {
    fn public_key(&self) -> String {
        format!("{}.pub", self.key.display())
    }

    /// `audit verify` with the public key: (exit code, stdout).
    fn verify(&self, dir: &Path) -> (i32, String) {
        let out = run(&[
            "audit",
            "verify",
            dir.to_str().unwrap(),
            "--public-key",
            &self.public_key(),
        ]);
        (out.status.code().unwrap_or(-1), stdout(&out))
    }

    /// Correlation ids of the records `audit query` returns for `filters`.
    fn correlation_ids(&self, filters: &[&str]) -> BTreeSet<i32> {
        let mut args = vec!["audit", "query", self.dir.to_str().unwrap(), "--json"];
        args.extend_from_slice(filters);
        let out = run(&args);
        assert!(out.status.success(), "query: {}", stderr(&out));
        stdout(&out).lines().map(correlation_id).collect()
    }
}

fn correlation_id(json_line: &str) -> i32 {
    let key = "\"correlation_id\":";
    let start = json_line.find(key).expect("a correlation id") + key.len();
    let digits: String = json_line[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().unwrap()
}

fn request(principal: &str, op: Op, topic: &str, correlation_id: i32) -> AuthorizeRequest {
    AuthorizeRequest {
        context: Some(RequestContext {
            correlation_id,
            broker_id: 3,
            ..context(principal)
        }),
        actions: vec![action(op, Rt::Topic, topic)],
    }
}

#[tokio::test]
async fn every_decision_is_in_the_trail_when_its_answer_arrives() {
    let trail = Trail::new();
    let server = trail.serve();
    let mut client = server.authorizer().await;

    let allowed = request(
        "User:lab-results-consumer",
        Op::Read,
        "phi.labs.results",
        101,
    );
    let answer = client.authorize(allowed).await.unwrap().into_inner();
    assert_eq!(answer.results[0].decision, Decision::Allow as i32);
    // Read at once, while the server runs: the record came before the answer.
    assert_eq!(
        trail.correlation_ids(&["--decision", "allow"]),
        BTreeSet::from([101])
    );

    let denied = request(
        "User:lab-results-consumer",
        Op::Write,
        "phi.labs.results",
        102,
    );
    let answer = client.authorize(denied).await.unwrap().into_inner();
    assert_eq!(answer.results[0].decision, Decision::Deny as i32);
    let denials = trail.correlation_ids(&[
        "--decision",
        "deny",
        "--principal",
        "User:lab-results-consumer",
    ]);
    assert_eq!(denials, BTreeSet::from([102]));

    let tail = run(&["audit", "tail", trail.dir.to_str().unwrap(), "-n", "1"]);
    let line = stdout(&tail);
    assert!(
        line.contains("DENY  User:lab-results-consumer Write Topic:phi.labs.results")
            && line.contains("broker=3"),
        "{line}"
    );
    let (code, report) = trail.verify(&trail.dir);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("2 records") && report.ends_with("intact\n"),
        "{report}"
    );
}

#[tokio::test]
async fn no_answered_decision_is_lost_to_kill_9_under_load() {
    const CLIENTS: i32 = 8;
    let trail = Trail::new();
    let server = trail.serve();
    let answered = Arc::new(Mutex::new(BTreeSet::new()));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = server.authorizer().await;
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let id = c * 1_000_000 + i;
                let req = request(
                    "User:lab-results-producer",
                    Op::Write,
                    "phi.labs.results",
                    id,
                );
                match client.authorize(req).await {
                    Ok(_) => answered.lock().unwrap().insert(id),
                    Err(_) => return, // the server is gone
                };
            }
        }));
    }
    support::eventually("500 answered decisions", || {
        let n = answered.lock().unwrap().len();
        async move { (n >= 500).then_some(()) }
    })
    .await;

    let killed = Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status();
    assert!(killed.unwrap().success());
    for task in tasks {
        task.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();

    // Restart on the same trail: it must open (recovering a torn write if
    // the kill left one) and then verify.
    drop(server);
    let restarted = trail.serve();
    drop(restarted);
    let (code, report) = trail.verify(&trail.dir);
    assert_eq!(code, 0, "{report}");
    let recorded = trail.correlation_ids(&[]);
    let lost: Vec<_> = answered.difference(&recorded).collect();
    assert!(
        lost.is_empty(),
        "{} answered but not recorded: {lost:?}",
        lost.len()
    );
}

#[tokio::test]
async fn verify_names_an_edited_record_in_a_copy() {
    let trail = Trail::new();
    let server = trail.serve();
    let mut client = server.authorizer().await;
    for id in 1..=3 {
        let req = request(
            "User:lab-results-consumer",
            Op::Read,
            "phi.labs.results",
            id,
        );
        client.authorize(req).await.unwrap();
    }
    drop(server);

    let copy = trail.root().join("copy");
    fs::create_dir(&copy).unwrap();
    for entry in fs::read_dir(&trail.dir).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let segment = copy.join("seg-0000000001.jsonl");
    let text = fs::read_to_string(&segment).unwrap();
    fs::write(
        &segment,
        text.replacen("\"correlation_id\":2}", "\"correlation_id\":7}", 1),
    )
    .unwrap();

    let (code, report) = trail.verify(&copy);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("edited: record 2 at seg-0000000001.jsonl:2"),
        "{report}"
    );
    assert_eq!(trail.verify(&trail.dir).0, 0);
}

fn cached(decision: Decision, count: u64) -> CachedDecision {
    CachedDecision {
        context: Some(RequestContext {
            broker_id: 3,
            ..context("User:lab-results-consumer")
        }),
        action: Some(action(Op::Read, Rt::Topic, "phi.labs.results")),
        decision: decision as i32,
        policy_version: "v-test".into(),
        determining_policies: vec!["consumer-read".into()],
        count,
        first_time_unix_ms: 1_790_000_000_000,
        last_time_unix_ms: 1_790_000_004_500,
        super_user: false,
    }
}

#[tokio::test]
async fn decisions_the_shim_answered_from_its_cache_are_recorded_folded() {
    let trail = Trail::new();
    let server = trail.serve();
    let mut client = server.authorizer().await;

    let super_user = CachedDecision {
        super_user: true,
        policy_version: String::new(),
        determining_policies: vec![],
        ..cached(Decision::Allow, 3)
    };
    let report = ReportCachedDecisionsRequest {
        decisions: vec![
            cached(Decision::Allow, 412),
            cached(Decision::Deny, 1),
            super_user,
        ],
    };
    let answer = client.report_cached_decisions(report).await.unwrap();
    assert_eq!(answer.into_inner().recorded, 3);

    let query = run(&["audit", "query", trail.dir.to_str().unwrap(), "--json"]);
    let lines: Vec<_> = stdout(&query).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[2].contains(r#""by":"shim-super-user","count":3"#),
        "{}",
        lines[2]
    );
    let allow = &lines[0];
    for expected in [
        r#""decision":"ALLOW""#,
        r#""by":"shim-cache""#,
        r#""count":412"#,
        r#""first_time":"2026-09-21T14:13:20Z""#,
        r#""last_time":"2026-09-21T14:13:24.5Z""#,
        r#""version":"v-test""#,
        r#""determining":["consumer-read"]"#,
        r#""broker_id":3"#,
    ] {
        assert!(allow.contains(expected), "{expected} missing from {allow}");
    }
    assert!(lines[1].contains(r#""decision":"DENY""#), "{}", lines[1]);
    let (code, report) = trail.verify(&trail.dir);
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn a_bad_report_is_refused_naming_the_decision_and_nothing_is_recorded() {
    let trail = Trail::new();
    let server = trail.serve();
    let mut client = server.authorizer().await;

    let mut backwards = cached(Decision::Allow, 2);
    backwards.last_time_unix_ms = backwards.first_time_unix_ms - 1;
    for (bad, message) in [
        (
            cached(Decision::Allow, 0),
            "`decisions[1]`: `count` must be at least 1",
        ),
        (
            cached(Decision::Unspecified, 1),
            "`decisions[1]`: `decision` is required",
        ),
        (
            backwards,
            "`decisions[1]`: `last_time_unix_ms` is before `first_time_unix_ms`",
        ),
        (
            CachedDecision {
                super_user: true,
                ..cached(Decision::Deny, 1)
            },
            "`decisions[1]`: `decision` must be ALLOW for a super user",
        ),
    ] {
        let report = ReportCachedDecisionsRequest {
            decisions: vec![cached(Decision::Allow, 1), bad],
        };
        let status = client.report_cached_decisions(report).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), message);
    }
    let query = run(&["audit", "query", trail.dir.to_str().unwrap(), "--json"]);
    assert_eq!(stdout(&query), "");
}

#[tokio::test]
async fn the_trail_takes_its_source_and_checkpoint_interval_from_flags() {
    let trail = Trail::new();
    let server = trail.serve_with(&[
        "--audit-source",
        "pdp-east-1",
        "--audit-checkpoint-every",
        "2",
    ]);
    let mut client = server.authorizer().await;
    for id in 1..=5 {
        let call = request(
            "User:lab-results-consumer",
            Op::Read,
            "phi.labs.results",
            id,
        );
        client.authorize(call).await.unwrap();
    }
    let query = run(&["audit", "query", trail.dir.to_str().unwrap(), "--json"]);
    let lines = stdout(&query);
    assert_eq!(lines.lines().count(), 5, "{lines}");
    assert!(
        lines
            .lines()
            .all(|line| line.contains(r#""source":"pdp-east-1""#)),
        "{lines}"
    );
    let (code, report) = trail.verify(&trail.dir);
    assert_eq!(code, 0, "{report}");
    // Signed after records 2 and 4: only the fifth is past the newest.
    assert!(
        report.contains("records 5..=5 come after the newest checkpoint"),
        "{report}"
    );
}

#[test]
fn serve_refuses_a_zero_segment_size_by_name() {
    let out = run(&[
        "serve",
        "--plaintext",
        "--audit-dir",
        "x",
        "--audit-key",
        "k",
        "--audit-segment-max-mib",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--audit-segment-max-mib"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_refuses_an_audit_dir_it_cannot_use() {
    let trail = Trail::new();
    fs::write(&trail.dir, "not a directory").unwrap();
    let err = Server::try_start(&[
        "--plaintext",
        "--audit-dir",
        trail.dir.to_str().unwrap(),
        "--audit-key",
        trail.key.to_str().unwrap(),
    ])
    .err()
    .expect("the server must not start");
    assert!(err.contains("audit"), "{err}");

    let no_key = run(&[
        "serve",
        "--plaintext",
        "--audit-dir",
        trail.dir.to_str().unwrap(),
    ]);
    assert_eq!(no_key.status.code(), Some(2), "{}", stderr(&no_key));
}
