//! Helpers shared by the integration tests: keys, events, logs and files.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use kafka_pdp_audit::*;

pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// A distinct, realistic event: `i` shows in the principal and resource.
pub fn event(i: u64) -> DecisionEvent {
    let time = jiff::Timestamp::from_second(1_780_000_000 + i as i64).unwrap();
    DecisionEvent {
        time,
        schema: SCHEMA_VERSION,
        decision: if i.is_multiple_of(3) {
            Decision::Deny
        } else {
            Decision::Allow
        },
        principal: Principal {
            kind: "User".into(),
            name: format!("svc-{}", i % 5),
        },
        operation: "Read".into(),
        resource: Resource {
            kind: "Topic".into(),
            name: format!("phi.labs.results-{i}"),
            pattern: PatternType::Literal,
        },
        client: Client {
            address: "10.1.2.3".into(),
            id: "lab-consumer".into(),
        },
        listener: "SASL_SSL".into(),
        security_protocol: "SASL_SSL".into(),
        request: RequestInfo {
            api: "FETCH".into(),
            api_version: 17,
            correlation_id: i as i32,
        },
        broker_id: 1,
        policy: PolicyRef {
            version: "sha256:0123".into(),
            determining: vec!["lab-readers".into()],
            errored: vec![],
        },
        decided_by: DecidedBy::Pdp,
        log_if_allowed: false,
        log_if_denied: true,
    }
}

pub fn config(dir: &Path) -> AuditConfig {
    let mut config = AuditConfig::new(dir, key());
    config.source = "test-pdp".into();
    config
}

/// Writes `n` records, one append each, with segments of at most
/// `segment_bytes`, and shuts the log down.
pub async fn write_log(dir: &Path, n: u64, segment_bytes: u64) {
    let mut config = config(dir);
    config.max_segment_bytes = segment_bytes;
    config.checkpoint_every = 5;
    let (log, _) = AuditLog::open(config).unwrap();
    for i in 1..=n {
        log.append(vec![event(i)]).await.unwrap();
    }
    log.shutdown().await.unwrap();
}

pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("seg-"))
        .collect();
    found.sort();
    found
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The lines of a file, each with its `\n`.
pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    let data = fs::read(path).unwrap();
    data.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    fs::write(path, lines.concat()).unwrap();
}

/// The sequence number a record line carries.
pub fn seq_of(line: &[u8]) -> u64 {
    let value: serde_json::Value = serde_json::from_slice(line).unwrap();
    value["sequence"].as_str().unwrap().parse().unwrap()
}

pub fn verify_with_key(dir: &Path) -> VerifyReport {
    verify(dir, Some(&[key().verifying_key()])).unwrap()
}
