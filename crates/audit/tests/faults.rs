//! A full disk: appends fail (the PDP denies), nothing acknowledged is lost,
//! and the log resumes by itself once there is room.
//!
//! The disk is real files behind a byte quota (the `Storage` seam): once the
//! quota is spent, a write puts down what fits and fails with `ENOSPC`, as a
//! full file system does. A real full file system is not available to tests
//! here (no tmpfs mounts), so this is the honest substitute.

mod support;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kafka_pdp_audit::storage::{AppendFile, FsStorage, Storage};
use kafka_pdp_audit::*;
use support::*;

/// Real files sharing one byte quota; `i64::MAX` means unlimited.
#[derive(Clone)]
struct Quota(Arc<AtomicI64>);

impl Quota {
    fn set(&self, bytes: i64) {
        self.0.store(bytes, Ordering::SeqCst);
    }
}

impl Storage for Quota {
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let inner = FsStorage.open_append(path)?;
        Ok(Box::new(QuotaFile {
            inner,
            quota: self.clone(),
        }))
    }
}

struct QuotaFile {
    inner: Box<dyn AppendFile>,
    quota: Quota,
}

impl AppendFile for QuotaFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let left = self.quota.0.fetch_sub(bytes.len() as i64, Ordering::SeqCst);
        if left >= bytes.len() as i64 {
            return self.inner.write_all(bytes);
        }
        let fits = left.max(0) as usize;
        self.quota.set(0);
        self.inner.write_all(&bytes[..fits])?;
        Err(io::Error::from_raw_os_error(28)) // ENOSPC
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.inner.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

#[tokio::test]
async fn a_full_disk_fails_appends_then_the_log_resumes_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota(Arc::new(AtomicI64::new(i64::MAX)));
    let mut config = config(dir.path());
    config.storage = Arc::new(quota.clone());
    let (log, _) = AuditLog::open(config).unwrap();
    log.append(vec![event(1), event(2)]).await.unwrap();

    // Room for half a record: the batch is written in part, then fails.
    quota.set(300);
    let err = log.append(vec![event(3), event(4)]).await.unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    let err = log.append(vec![event(5)]).await.unwrap_err();
    assert!(matches!(err, AuditError::Io { .. }), "{err}");
    assert_eq!(log.stats().failed_appends, 2);

    // Space is freed: the partial bytes are cut off and numbering resumes
    // where the last acknowledged record left it.
    quota.set(i64::MAX);
    let receipt = log.append(vec![event(6)]).await.unwrap();
    assert_eq!(receipt.first_seq, 3);
    log.shutdown().await.unwrap();

    let report = verify_with_key(dir.path());
    assert!(report.is_intact(), "{:#?}", report.findings);
    assert_eq!(report.records, 3);
    let names: Vec<String> = query(dir.path(), Filter::default())
        .unwrap()
        .map(|r| r.unwrap().event.resource.name)
        .collect();
    assert_eq!(
        names,
        [
            "phi.labs.results-1",
            "phi.labs.results-2",
            "phi.labs.results-6"
        ]
    );
}

#[tokio::test]
async fn a_log_that_cannot_open_its_files_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota(Arc::new(AtomicI64::new(i64::MAX)));
    let mut config = config(dir.path());
    config.storage = Arc::new(quota.clone());
    let (log, _) = AuditLog::open(config).unwrap();
    log.append(vec![event(1)]).await.unwrap();
    // The open checkpoint needs room too; there is none.
    quota.set(0);
    drop(log);

    let mut config = support::config(dir.path());
    config.storage = Arc::new(quota);
    let err = AuditLog::open(config).expect_err("open must fail");
    assert!(err.to_string().contains("No space left on device"), "{err}");
}
