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
