//! Crashes and damage found when the log is opened.

mod support;

use std::fs::{self, OpenOptions};
use std::io::Write;

use kafka_pdp_audit::*;
use support::*;

/// The bytes of a record line that a crash cut short.
async fn torn_record() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1, 1 << 20).await;
    let line = lines(&segments(dir.path())[0]).remove(0);
    line[..line.len() / 2].to_vec()
}

fn append_bytes(path: &std::path::Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[tokio::test]
async fn a_torn_last_record_is_reported_stepped_over_and_verifies_as_recovered() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 6, 1 << 20).await;
    let segment = segments(dir.path()).pop().unwrap();
    let intact_len = fs::metadata(&segment).unwrap().len();
    let torn = torn_record().await;
    append_bytes(&segment, &torn);

    // Before restart, the torn write is a finding.
    let before = verify_with_key(dir.path());
    assert!(
        matches!(before.findings[..], [Finding::Torn { len, .. }] if len == torn.len() as u64),
        "{:#?}",
        before.findings
    );

    let (log, report) = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(report.next_seq, 7);
    assert_eq!(report.recovered.len(), 1);
    assert_eq!(report.recovered[0].offset, intact_len);
    assert_eq!(report.recovered[0].len, torn.len() as u64);
    assert_ne!(
        report.segment,
        segment.file_name().unwrap().to_str().unwrap()
    );
    log.append(vec![event(7)]).await.unwrap();
    log.shutdown().await.unwrap();

    // History is not rewritten: the torn bytes are still there.
    assert!(fs::read(&segment).unwrap().ends_with(&torn));
    let after = verify_with_key(dir.path());
    assert!(after.is_intact(), "{:#?}", after.findings);
    assert_eq!(after.last_seq, Some(7));
    assert!(after
        .notes
        .iter()
        .any(|n| n.contains("recovered torn write")));
}

#[tokio::test]
async fn a_torn_checkpoint_line_is_recovered_too() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 3, 1 << 20).await;
    let cps = dir.path().join("checkpoints.jsonl");
    append_bytes(&cps, b"{\"specversion\":\"1.0\",\"id\":\"checkp");

    let (log, report) = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(report.recovered.len(), 1);
    assert_eq!(report.recovered[0].file, "checkpoints.jsonl");
    log.append(vec![event(4)]).await.unwrap();
    log.shutdown().await.unwrap();

    let after = verify_with_key(dir.path());
    assert!(after.is_intact(), "{:#?}", after.findings);
}

#[tokio::test]
async fn a_corrupt_complete_record_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5, 1 << 20).await;
    let segment = segments(dir.path()).pop().unwrap();
    let mut all = lines(&segment);
    let last = all.len() - 1;
    let at = all[last].windows(5).position(|w| w == b"svc-0").unwrap();
    all[last][at + 4] = b'9';
    write_lines(&segment, &all);

    let err = AuditLog::open(config(dir.path())).expect_err("open must fail");
    let text = err.to_string();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{text}");
    assert!(text.contains("record 5 does not match its hash"), "{text}");
}

#[tokio::test]
async fn records_cut_off_behind_a_checkpoint_stop_open() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5, 1 << 20).await;
    let segment = segments(dir.path()).pop().unwrap();
    let mut all = lines(&segment);
    all.truncate(3);
    write_lines(&segment, &all);

    let err = AuditLog::open(config(dir.path())).expect_err("open must fail");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[tokio::test]
async fn a_log_whose_segments_vanished_does_not_start_over() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 3, 1 << 20).await;
    for segment in segments(dir.path()) {
        fs::remove_file(segment).unwrap();
    }

    let err = AuditLog::open(config(dir.path())).expect_err("open must fail");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[tokio::test]
async fn an_empty_newest_segment_from_a_crash_during_rotation_is_used() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12, 2048).await;
    let newest = segments(dir.path()).pop().unwrap();
    let name = newest.file_name().unwrap().to_str().unwrap().to_owned();
    let index: u64 = name["seg-".len()..name.len() - ".jsonl".len()]
        .parse()
        .unwrap();
    let empty = dir.path().join(format!("seg-{:010}.jsonl", index + 1));
    fs::write(&empty, b"").unwrap();

    let (log, report) = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(report.next_seq, 13);
    assert_eq!(report.segment, empty.file_name().unwrap().to_str().unwrap());
    log.append(vec![event(13)]).await.unwrap();
    log.shutdown().await.unwrap();

    assert_eq!(lines(&empty).len(), 1);
    let after = verify_with_key(dir.path());
    assert!(after.is_intact(), "{:#?}", after.findings);
}

#[tokio::test]
async fn a_missing_middle_segment_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20, 2048).await;
    let files = segments(dir.path());
    assert!(files.len() >= 4);
    fs::remove_file(&files[1]).unwrap();

    let err = AuditLog::open(config(dir.path())).expect_err("open must fail");
    let text = err.to_string();
    assert!(text.contains("does not follow record"), "{text}");
    assert!(
        text.contains(files[2].file_name().unwrap().to_str().unwrap()),
        "{text}"
    );
}

#[tokio::test]
async fn a_segment_cut_at_a_line_end_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20, 2048).await;
    let files = segments(dir.path());
    let mut first = lines(&files[0]);
    first.pop();
    write_lines(&files[0], &first);

    let err = AuditLog::open(config(dir.path())).expect_err("open must fail");
    assert!(err.to_string().contains("does not follow record"), "{err}");
}
