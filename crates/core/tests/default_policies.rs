//! The default policies load, validate, and pass their own test cases.

use std::path::PathBuf;

use kafka_pdp_core::testing::run_tests;
use kafka_pdp_core::PolicySnapshot;

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

#[test]
fn default_policies_load() {
    let snapshot = PolicySnapshot::load_dir(policies_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(snapshot.policy_count() > 10);
    assert_eq!(snapshot.version().len(), 64);
}

#[test]
fn default_policy_cases_pass() {
    let report = run_tests(policies_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.success(), "{report}");
}

#[test]
fn a_wrong_expectation_fails_and_names_the_case() {
    let snapshot = PolicySnapshot::load_dir(policies_dir()).unwrap();
    let cases = r#"{ "cases": [
        { "name": "consumer writes", "principal": "User:lab-results-consumer",
          "operation": "Write", "resource_type": "Topic", "resource": "phi.labs.results",
          "expect": "allow" },
        { "name": "consumer reads, wrong reason", "principal": "User:lab-results-consumer",
          "operation": "Read", "resource_type": "Topic", "resource": "phi.labs.results",
          "expect": "allow", "determining": ["producer-labs"] },
        { "name": "bad operation", "principal": "User:x", "operation": "Fly",
          "resource_type": "Topic", "resource": "t", "expect": "deny" }
    ] }"#;
    let results = kafka_pdp_core::testing::run_file(&snapshot, "tests/wrong.json", cases);
    assert_eq!(results.len(), 3);
    assert!(results
        .iter()
        .all(|r| !r.passed && r.file == "tests/wrong.json"));
    assert_eq!(results[0].message, "expected allow, got deny");
    assert!(
        results[1].message.contains("expected determining"),
        "{}",
        results[1].message
    );
    assert!(
        results[2].message.contains("unknown operation `Fly`"),
        "{}",
        results[2].message
    );
    let report = kafka_pdp_core::testing::TestReport { results };
    assert!(!report.success());
    assert!(report
        .to_string()
        .contains("FAIL  tests/wrong.json: consumer writes: "));
}

#[test]
fn a_malformed_case_file_is_one_failure_with_its_position() {
    let snapshot = PolicySnapshot::load_dir(policies_dir()).unwrap();
    let results = kafka_pdp_core::testing::run_file(&snapshot, "t.json", "{ \"cases\": [ { } ] }");
    assert_eq!(results.len(), 1);
    assert!(!results[0].passed);
    assert!(
        results[0].message.starts_with("1:"),
        "{}",
        results[0].message
    );
}
