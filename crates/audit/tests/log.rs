//! The chained log through its public API: appends, group commit,
//! reopening, rotation and retention.

mod support;

use std::collections::HashSet;
use std::fs::{self, File};
use std::time::{Duration, SystemTime};

use kafka_pdp_audit::*;
use support::*;

#[tokio::test]
async fn appended_events_read_back_equal_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(report.next_seq, 1);

    let first = log.append(vec![event(1), event(2)]).await.unwrap();
    let second = log.append(vec![event(3)]).await.unwrap();
    log.shutdown().await.unwrap();

    assert_eq!((first.first_seq, first.last_seq()), (1, 2));
    assert_eq!((second.first_seq, second.last_seq()), (3, 3));
    let records: Vec<_> = query(dir.path(), Filter::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let seqs: Vec<_> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(records[2].event, event(3));
    assert_eq!(records[0].source, "test-pdp");
    assert!(verify_with_key(dir.path()).is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_consecutive_numbers_and_all_are_durable() {
    const TASKS: u64 = 64;
    const PER_TASK: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = AuditLog::open(config(dir.path())).unwrap();

    let mut handles = Vec::new();
    for task in 0..TASKS {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let mut receipts = Vec::new();
            for i in 0..PER_TASK {
                let events = vec![event(task * 1000 + i), event(task * 1000 + i + 500)];
                receipts.push(log.append(events).await.unwrap());
            }
            receipts
        }));
    }
    let mut numbers = Vec::new();
    for handle in handles {
        for receipt in handle.await.unwrap() {
            // Both events of one call are consecutive.
            assert_eq!(receipt.count, 2);
            numbers.extend(receipt.first_seq..=receipt.last_seq());
        }
    }
    let stats = log.stats();
    drop(log); // no shutdown: durability must not depend on it

    numbers.sort_unstable();
    let expected: Vec<u64> = (1..=TASKS * PER_TASK * 2).collect();
    assert_eq!(numbers, expected, "receipts must cover 1..=N exactly once");
    assert!(
        stats.group_commits < TASKS * PER_TASK,
        "{} commits for {} appends: nothing was batched",
        stats.group_commits,
        TASKS * PER_TASK
    );

    // Every acknowledged record is on disk, readable by a fresh reader.
    let on_disk: HashSet<u64> = query(dir.path(), Filter::default())
        .unwrap()
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(on_disk.len() as u64, TASKS * PER_TASK * 2);
    assert!(verify_with_key(dir.path()).is_intact());
}

#[tokio::test]
async fn a_reopened_log_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 4, 1 << 20).await;

    let (log, report) = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(report.next_seq, 5);
    assert!(report.recovered.is_empty());
    let receipt = log.append(vec![event(5)]).await.unwrap();
    log.shutdown().await.unwrap();

    assert_eq!(receipt.first_seq, 5);
    let report = verify_with_key(dir.path());
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(5)));
}

#[tokio::test]
async fn segments_rotate_by_size_and_the_chain_crosses_them() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, 4096).await;

    let files = segments(dir.path());
    assert!(files.len() >= 4, "only {} segments", files.len());
    let report = verify_with_key(dir.path());
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!(report.records, 30);
    assert_eq!(report.segments, files.len());

    // The newest records, gathered back across segment boundaries.
    let last = last_records(dir.path(), 13, Filter::default()).unwrap();
    let seqs: Vec<u64> = last.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (18..=30).collect::<Vec<_>>());
}

#[tokio::test]
async fn retention_deletes_only_expired_segments_and_the_rest_stays_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, 4096).await;
    let files = segments(dir.path());
    // Age the two oldest segments past a one-day retention.
    let old = SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
    for path in &files[..2] {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    let mut config = config(dir.path());
    config.max_segment_bytes = 4096;
    config.retention = Some(Duration::from_secs(24 * 3600));
    let (log, _) = AuditLog::open(config).unwrap();
    for i in 31..=45 {
        log.append(vec![event(i)]).await.unwrap();
    }
    let stats = log.stats();
    log.shutdown().await.unwrap();

    assert_eq!(stats.segments_deleted, 2);
    assert!(!files[0].exists() && !files[1].exists());
    assert!(files[2].exists(), "a young segment was deleted");
    let report = verify_with_key(dir.path());
    assert!(report.is_intact(), "{:?}", report.findings);
    assert!(report.first_seq > Some(1));
    assert!(report
        .notes
        .iter()
        .any(|n| n.contains("anchored by checkpoint")));
}

#[tokio::test]
async fn the_default_retention_keeps_six_years() {
    assert!(DEFAULT_RETENTION >= Duration::from_secs(6 * 365 * 24 * 3600 + 2 * 24 * 3600));
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, 2048).await;
    let files = segments(dir.path());
    let five_years = SystemTime::now() - Duration::from_secs(5 * 366 * 24 * 3600);
    for path in &files {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(five_years)
            .unwrap();
    }

    let mut config = config(dir.path());
    config.max_segment_bytes = 2048;
    let (log, _) = AuditLog::open(config).unwrap();
    for i in 11..=20 {
        log.append(vec![event(i)]).await.unwrap();
    }
    log.shutdown().await.unwrap();

    assert!(
        files.iter().all(|p| p.exists()),
        "a five-year-old segment was deleted"
    );
}

#[tokio::test]
async fn queries_filter_by_principal_resource_decision_and_time() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, 1 << 20).await;
    let run = |filter: Filter| -> Vec<u64> {
        query(dir.path(), filter)
            .unwrap()
            .map(|r| r.unwrap().seq)
            .collect()
    };

    let by_principal = run(Filter {
        principal: Some("User:svc-2".into()),
        ..Filter::default()
    });
    assert_eq!(by_principal, [2, 7, 12, 17, 22, 27]);
    let denied_prefix = run(Filter {
        resource: Some("Topic:phi.labs.results-1*".into()),
        decision: Some(Decision::Deny),
        ..Filter::default()
    });
    assert_eq!(denied_prefix, [12, 15, 18]);
    let window = run(Filter {
        since: Some(event(10).time),
        until: Some(event(13).time),
        ..Filter::default()
    });
    assert_eq!(window, [10, 11, 12]);

    let last = last_records(dir.path(), 2, Filter::default()).unwrap();
    assert_eq!(last.iter().map(|r| r.seq).collect::<Vec<_>>(), [29, 30]);
}

#[tokio::test]
async fn a_follower_sees_new_records_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_segment_bytes = 2048;
    let (log, _) = AuditLog::open(config).unwrap();
    log.append(vec![event(1)]).await.unwrap();

    let mut follower = Follower::from_end(dir.path()).unwrap();
    assert!(follower.poll().unwrap().is_empty());
    for i in 2..=12 {
        log.append(vec![event(i)]).await.unwrap();
    }
    let seen: Vec<u64> = follower.poll().unwrap().iter().map(|r| r.seq).collect();
    log.shutdown().await.unwrap();

    assert!(segments(dir.path()).len() > 2, "no rotation happened");
    assert_eq!(seen, (2..=12).collect::<Vec<_>>());
}

#[tokio::test]
async fn appends_after_shutdown_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = AuditLog::open(config(dir.path())).unwrap();
    log.append(vec![event(1)]).await.unwrap();
    log.shutdown().await.unwrap();

    let err = log.append(vec![event(2)]).await.unwrap_err();
    assert!(matches!(err, AuditError::Closed), "{err}");
    assert_eq!(log.stats().failed_appends, 1);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.iter().any(|n| n == "checkpoints.jsonl"));
}

#[test]
fn a_zero_limit_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.checkpoint_every = 0;
    let err = AuditLog::open(config).expect_err("zero must be refused");
    assert_eq!(
        err.to_string(),
        "invalid audit configuration: `checkpoint_every` must be at least 1"
    );
}
