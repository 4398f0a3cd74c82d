//! `verify` against real segment files tampered with byte by byte: each kind
//! of damage is reported at the record where it was done, and only there.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use kafka_pdp_audit::*;
use sha2::{Digest, Sha256};
use support::*;

/// A pristine log of 30 records over several segments, and a scratch copy.
async fn pristine_and_copy() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    write_log(&pristine, 30, 4096).await;
    let report = verify_with_key(&pristine);
    assert!(report.is_intact(), "pristine log: {:?}", report.findings);
    let copy = root.path().join("copy");
    copy_dir(&pristine, &copy);
    (root, copy)
}

/// The segment holding record `seq` and the index of its line.
fn find_record(dir: &Path, seq: u64) -> (PathBuf, usize) {
    for path in segments(dir) {
        if let Some(i) = lines(&path).iter().position(|l| seq_of(l) == seq) {
            return (path, i);
        }
    }
    panic!("record {seq} not found");
}

fn only_finding(dir: &Path) -> Finding {
    let report = verify_with_key(dir);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    report.findings[0].clone()
}

#[tokio::test]
async fn an_intact_log_verifies() {
    let (_root, copy) = pristine_and_copy().await;
    let report = verify_with_key(&copy);
    assert!(report.is_intact());
    assert!(report.signatures_checked);
    assert_eq!(
        (report.records, report.first_seq, report.last_seq),
        (30, Some(1), Some(30))
    );
    assert!(report.checkpoints >= 6);
}

#[tokio::test]
async fn an_edited_record_is_named() {
    let (_root, copy) = pristine_and_copy().await;
    let (path, i) = find_record(&copy, 17);
    let mut all = lines(&path);
    let at = all[i].windows(5).position(|w| w == b"ALLOW").unwrap();
    all[i][at..at + 5].copy_from_slice(b"DENY ");
    write_lines(&path, &all);

    match only_finding(&copy) {
        Finding::Edited { seq: 17, at } => assert_eq!(at.line, i as u64 + 1),
        other => panic!("expected record 17 edited, got {other}"),
    }
}

#[tokio::test]
async fn an_edited_and_rehashed_record_breaks_the_chain_after_it() {
    let (_root, copy) = pristine_and_copy().await;
    let (path, i) = find_record(&copy, 11);
    let mut all = lines(&path);
    all[i] = rehash(&all[i], b"lab-consumer", b"lab-producer");
    write_lines(&path, &all);

    // A checkpoint that happens to cover record 11 also disagrees with it.
    let report = verify_with_key(&copy);
    let text: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f, Finding::ChainBroken { seq: 12, .. })),
        "{text:#?}"
    );
    assert!(
        report.findings.iter().all(|f| matches!(
            f,
            Finding::ChainBroken { seq: 12, .. } | Finding::CheckpointMismatch { seq: 11, .. }
        )),
        "{text:#?}"
    );
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let (_root, copy) = pristine_and_copy().await;
    let (path, i) = find_record(&copy, 9);
    let mut all = lines(&path);
    all.remove(i);
    write_lines(&path, &all);

    match only_finding(&copy) {
        Finding::Deleted {
            first: 9, last: 9, ..
        } => {}
        other => panic!("expected record 9 deleted, got {other}"),
    }
}

#[tokio::test]
async fn swapped_records_are_named() {
    let (_root, copy) = pristine_and_copy().await;
    let (path, _) = find_record(&copy, 20);
    let mut all = lines(&path);
    let (a, b) = (seq_of(&all[0]), seq_of(&all[1]));
    all.swap(0, 1);
    write_lines(&path, &all);

    match only_finding(&copy) {
        Finding::Reordered { seq, ahead_of, .. } if (seq, ahead_of) == (b, a) => {}
        other => panic!("expected {b} before {a}, got {other}"),
    }
}

#[tokio::test]
async fn a_file_cut_mid_record_is_named() {
    let (_root, copy) = pristine_and_copy().await;
    let last = segments(&copy).pop().unwrap();
    let data = fs::read(&last).unwrap();
    fs::write(&last, &data[..data.len() - 40]).unwrap();

    let report = verify_with_key(&copy);
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f, Finding::Torn { .. })),
        "{:#?}",
        report.findings
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f, Finding::Truncated { covers: 30, .. })),
        "{:#?}",
        report.findings
    );
}

#[tokio::test]
async fn whole_records_cut_off_the_end_are_caught_by_the_checkpoint() {
    let (_root, copy) = pristine_and_copy().await;
    let (path, i) = find_record(&copy, 28);
    let mut all = lines(&path);
    all.truncate(i);
    write_lines(&path, &all);
    for later in segments(&copy).into_iter().filter(|p| *p > path) {
        fs::remove_file(later).unwrap();
    }

    match only_finding(&copy) {
        Finding::Truncated {
            covers: 30,
            log_ends: 27,
            ..
        } => {}
        other => panic!("expected truncation after 27, got {other}"),
    }
}

#[tokio::test]
async fn a_deleted_first_segment_is_unanchored() {
    let (_root, copy) = pristine_and_copy().await;
    let first = segments(&copy).remove(0);
    let first_lines = lines(&first);
    let next_seq = seq_of(first_lines.last().unwrap()) + 1;
    fs::remove_file(&first).unwrap();
    // Also drop the checkpoint that anchors the boundary, as an attacker would.
    let cps = copy.join("checkpoints.jsonl");
    let kept: Vec<_> = lines(&cps)
        .into_iter()
        .filter(|l| !String::from_utf8_lossy(l).contains(&format!("\"seq\":{},", next_seq - 1)))
        .collect();
    write_lines(&cps, &kept);

    let report = verify_with_key(&copy);
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f, Finding::UnanchoredStart { seq, .. } if *seq == next_seq)),
        "{:#?}",
        report.findings
    );
    assert!(report
        .findings
        .iter()
        .any(|f| matches!(f, Finding::CheckpointsMissing { .. })));
}

#[tokio::test]
async fn a_forged_checkpoint_fails_its_signature() {
    let (_root, copy) = pristine_and_copy().await;
    let cps = copy.join("checkpoints.jsonl");
    let mut all = lines(&cps);
    let at = all[1].windows(8).position(|w| w == b"\"reason\"").unwrap();
    all[1].insert(at, b' ');
    write_lines(&cps, &all);

    match only_finding(&copy) {
        Finding::BadSignature { checkpoint: 2, .. } => {}
        other => panic!("expected checkpoint 2 bad, got {other}"),
    }
}

#[tokio::test]
async fn checkpoints_signed_by_another_key_fail() {
    let (_root, copy) = pristine_and_copy().await;
    let other = SigningKey::from_bytes(&[9; 32]).verifying_key();
    let report = verify(&copy, Some(&[other])).unwrap();
    assert!(!report.findings.is_empty());
    assert!(report
        .findings
        .iter()
        .all(|f| matches!(f, Finding::BadSignature { .. })));

    // After a key rotation both keys are trusted; either signature passes.
    let both = [other, key().verifying_key()];
    assert!(verify(&copy, Some(&both)).unwrap().is_intact());

    let unchecked = verify(&copy, None).unwrap();
    assert!(unchecked.is_intact() && !unchecked.signatures_checked);
}

/// Replaces `from` with `to` in a record line and recomputes its hash, as a
/// tamperer who knows the format would.
fn rehash(line: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(line.to_vec()).unwrap();
    let edited = text.replacen(
        std::str::from_utf8(from).unwrap(),
        std::str::from_utf8(to).unwrap(),
        1,
    );
    let body_end = edited.rfind(",\"audithash\":\"").unwrap();
    let body = &edited[..body_end];
    let hash: String = Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{body},\"audithash\":\"{hash}\"}}\n").into_bytes()
}

/// Every record, one at a time: deleting it, flipping a byte of it, or
/// swapping it with its neighbour is never reported as intact.
#[tokio::test]
async fn no_single_record_tampering_goes_unnoticed() {
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    write_log(&pristine, 24, 3000).await;
    let scratch = root.path().join("scratch");
    let mut checked = 0;
    for (s, path) in segments(&pristine).iter().enumerate() {
        let original = lines(path);
        for i in 0..original.len() {
            let seq = seq_of(&original[i]);
            let mut edits: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();

            let mut deleted = original.clone();
            deleted.remove(i);
            edits.push(("deleted", deleted));

            let mut flipped = original.clone();
            let middle = flipped[i].len() / 2;
            flipped[i][middle] ^= 0x01;
            edits.push(("flipped", flipped));

            if i + 1 < original.len() {
                let mut swapped = original.clone();
                swapped.swap(i, i + 1);
                edits.push(("swapped", swapped));
            }

            for (what, edited) in edits {
                let _ = fs::remove_dir_all(&scratch);
                copy_dir(&pristine, &scratch);
                write_lines(&scratch.join(path.file_name().unwrap()), &edited);
                let report = verify_with_key(&scratch);
                assert!(
                    !report.is_intact(),
                    "record {seq} {what} in segment {s} went unnoticed"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 24 * 3 - 8, "only {checked} cases");
}
