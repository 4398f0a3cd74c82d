//! The subcommands that answer and exit: validate, test, check, explain,
//! status and reload, with their exit codes.

mod support;

use std::fs;

use support::{copy_policies, policies_dir, run, stderr, stdout, Server};

fn dir_arg() -> String {
    policies_dir().display().to_string()
}

#[test]
fn validate_accepts_the_default_policies() {
    let out = run(&["validate", &dir_arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("valid"));
}

#[test]
fn validate_names_every_problem_by_file_line_and_column() {
    let dir = copy_policies(&policies_dir());
    fs::write(
        dir.path().join("broken.cedar"),
        "@id(\"x\")\npermit (\n  principal,\n  act;\n",
    )
    .unwrap();
    let typo =
        "@id(\"typo\")\npermit (principal, action, resource)\nwhen { context.listner == \"x\" };\n";
    fs::write(dir.path().join("typo.cedar"), typo).unwrap();
    let out = run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let lines = stdout(&out);
    let shown = dir.path().display().to_string();
    let broken = format!("{shown}/broken.cedar:4:6: unexpected token `;`");
    assert_eq!(lines.lines().next(), Some(broken.as_str()), "{lines}");
    assert!(
        lines.contains(&format!("{shown}/typo.cedar:3:8: ")),
        "{lines}"
    );
    assert!(lines.contains("`listner`"), "{lines}");
    for line in lines.lines() {
        assert!(
            line.starts_with(&shown),
            "every line names its file: {line}"
        );
    }
    let count = lines.lines().count();
    assert!(
        stderr(&out).contains(&format!("invalid, {count} problems")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn test_runs_the_default_policy_tests() {
    let out = run(&["test", &dir_arg()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    assert!(!last.starts_with("0 passed"), "{last}");
}

#[test]
fn test_fails_on_a_wrong_expectation() {
    let dir = copy_policies(&policies_dir());
    fs::create_dir(dir.path().join("tests")).unwrap();
    let case = r#"{"cases": [{"name": "wrong on purpose", "principal": "User:lab-results-consumer",
        "operation": "Read", "resource_type": "Topic", "resource": "phi.labs.results",
        "expect": "deny"}]}"#;
    fs::write(dir.path().join("tests/wrong.json"), case).unwrap();
    let out = run(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL") && text.ends_with("0 passed, 1 failed\n"),
        "{text}"
    );
}

const CONSUMER_READS: [&str; 6] = [
    "--principal",
    "User:lab-results-consumer",
    "--operation",
    "Read",
    "--resource",
    "phi.labs.results",
];

const OPS_READS: [&str; 6] = [
    "--principal",
    "User:platform-ops-bot",
    "--operation",
    "READ",
    "--resource",
    "phi.labs.results",
];

fn with(head: &[&str], request: &[&str]) -> Vec<String> {
    head.iter().chain(request).map(|s| s.to_string()).collect()
}

fn run_owned(args: &[String]) -> std::process::Output {
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn check_locally_exits_0_on_allow_and_3_on_deny() {
    let dir = dir_arg();
    let allow = run_owned(&with(&["check", "--policy-dir", &dir], &CONSUMER_READS));
    assert_eq!(allow.status.code(), Some(0), "{}", stderr(&allow));
    let text = stdout(&allow);
    assert!(text.contains("decision: ALLOW"), "{text}");
    assert!(
        text.contains("determining policies: consumer-labs-topics"),
        "{text}"
    );

    let deny = run_owned(&with(&["check", "--policy-dir", &dir], &OPS_READS));
    assert_eq!(deny.status.code(), Some(3));
    assert!(stdout(&deny).contains("platform-admin-no-phi-read"));
}

#[test]
fn check_reports_bad_flags_as_errors() {
    let dir = dir_arg();
    let mut args = with(&["check", "--policy-dir", &dir], &CONSUMER_READS);
    args[6] = "Fly".into();
    let out = run_owned(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown operation `Fly`"),
        "{}",
        stderr(&out)
    );

    let neither = run(&["check", "--principal", "User:a", "--operation", "Read"]);
    assert_eq!(neither.status.code(), Some(2), "a usage error");
}

#[test]
fn explain_locally_shows_the_policies_and_ancestors() {
    let dir = dir_arg();
    let out = run_owned(&with(&["explain", "--policy-dir", &dir], &OPS_READS));
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(
        text.contains("principal parents: Kafka::Role::\"platform-admin\""),
        "{text}"
    );
    assert!(text.contains("Kafka::TopicPrefix::\"phi.labs.\""), "{text}");
    assert!(text.contains("platform-admin-no-phi-read ("), "{text}");
    assert!(text.contains("platform.cedar:"), "{text}");
    assert!(text.contains("forbid ("), "{text}");
}

#[test]
fn check_explain_status_and_reload_against_a_server() {
    let dir = copy_policies(&policies_dir());
    let server = Server::plaintext(&["--policy-dir", dir.path().to_str().unwrap()]);
    let addr = server.addr.to_string();
    let remote = ["--server", addr.as_str(), "--plaintext"];

    let allow = run_owned(&with(&[&["check"][..], &remote].concat(), &CONSUMER_READS));
    assert_eq!(allow.status.code(), Some(0), "{}", stderr(&allow));
    let local = run_owned(&with(
        &["check", "--policy-dir", &dir_arg()],
        &CONSUMER_READS,
    ));
    assert_eq!(
        stdout(&allow),
        stdout(&local),
        "the server and a local check agree"
    );

    let explain = run_owned(&with(&[&["explain"][..], &remote].concat(), &OPS_READS));
    assert_eq!(explain.status.code(), Some(3));
    assert!(stdout(&explain).contains("considered policies: "));

    let status = run(&[&["status"][..], &remote].concat());
    assert_eq!(status.status.code(), Some(0));
    let text = stdout(&status);
    assert!(
        text.contains(&format!("policy dir:     {}", dir.path().display())),
        "{text}"
    );
    assert!(text.contains("decisions: 2"), "{text}");

    let reload = run(&[&["reload"][..], &remote].concat());
    assert_eq!(reload.status.code(), Some(0), "{}", stdout(&reload));
    assert!(stdout(&reload).contains("accepted"));

    fs::write(dir.path().join("broken.cedar"), "permit (").unwrap();
    let rejected = run(&[&["reload"][..], &remote].concat());
    assert_eq!(rejected.status.code(), Some(1));
    assert!(
        stdout(&rejected).contains("rejected"),
        "{}",
        stdout(&rejected)
    );
    assert!(
        stdout(&rejected).contains("broken.cedar:1:"),
        "{}",
        stdout(&rejected)
    );
}

#[test]
fn a_client_without_a_server_fails_with_exit_1() {
    let out = run(&["status", "--server", "127.0.0.1:1", "--plaintext"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

#[test]
fn help_states_the_defaults() {
    let out = run(&["serve", "--help"]);
    let text = stdout(&out);
    for default in [
        "127.0.0.1:50051",
        "[default: 100000]",
        "[default: 10000]",
        "[default: 5000]",
    ] {
        assert!(text.contains(default), "`{default}` missing from:\n{text}");
    }
}
