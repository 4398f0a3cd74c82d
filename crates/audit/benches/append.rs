//! Audit throughput to the local chained log, against baselines measured in
//! the same run on the same disk with the same bytes.
//!
//! - `chained/N`: N tasks each appending one decision per call to an
//!   [`AuditLog`] (serialize, hash-chain, group commit with `fdatasync`).
//! - `baseline/fsync_per_event`: one writer doing `write_all` + `sync_data`
//!   for each record line, what a logger without group commit pays.
//! - `baseline/write_no_fsync`: one writer doing `write_all` per line, with
//!   no hashing and no sync: the page-cache ceiling.
//! - `chained_nosync/64`: the chained log with `sync_data` made a no-op
//!   through the storage seam: the CPU cost of serializing, chaining and
//!   batching alone, i.e. what the log could do on a disk with free syncs.
//!
//! After criterion's own report, a summary prints events/s and the ratios.
//! The log directory is under `AUDIT_BENCH_DIR` if set, else the system temp
//! directory; point it at the disk the PDP will use (a tmpfs makes `fsync`
//! free and the figures meaningless).
//!
//! Run: `cargo bench -p kafka-pdp-audit --bench append` (add `-- --quick`
//! while developing).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ed25519_dalek::SigningKey;
use kafka_pdp_audit::storage::{AppendFile, FsStorage, Storage};
use kafka_pdp_audit::*;

const CONCURRENCY: [u64; 3] = [1, 16, 64];

/// (benchmark name, events, time) of every measured batch of iterations.
static MEASURED: Mutex<Vec<(String, u64, Duration)>> = Mutex::new(Vec::new());

fn record(name: &str, events: u64, took: Duration) {
    MEASURED
        .lock()
        .unwrap()
        .push((name.to_owned(), events, took));
}

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("AUDIT_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    tempfile::tempdir_in(base).unwrap()
}

fn event(i: u64) -> DecisionEvent {
    DecisionEvent {
        time: jiff::Timestamp::now(),
        schema: SCHEMA_VERSION,
        decision: Decision::Allow,
        principal: Principal {
            kind: "User".into(),
            name: format!("svc-{}", i % 100),
        },
        operation: "Write".into(),
        resource: Resource {
            kind: "Topic".into(),
            name: format!("phi.labs.results-{}", i % 1000),
            pattern: PatternType::Literal,
        },
        client: Client {
            address: "10.20.30.40".into(),
            id: "lab-producer-7".into(),
        },
        listener: "SASL_SSL".into(),
        security_protocol: "SASL_SSL".into(),
        request: RequestInfo {
            api: "PRODUCE".into(),
            api_version: 11,
            correlation_id: i as i32,
        },
        broker_id: 2,
        policy: PolicyRef {
            version: "sha256:6f1d2c0e9a7b".into(),
            determining: vec!["lab-producers".into()],
            errored: vec![],
        },
        decided_by: DecidedBy::Pdp,
        log_if_allowed: false,
        log_if_denied: true,
    }
}

fn config(dir: &std::path::Path) -> AuditConfig {
    let mut config = AuditConfig::new(dir, SigningKey::from_bytes(&[3; 32]));
    config.retention = None;
    config
}

/// One record line as the log writes it, for the baselines.
fn sample_line(rt: &tokio::runtime::Runtime) -> Vec<u8> {
    let dir = bench_dir();
    let (log, _) = AuditLog::open(config(dir.path())).unwrap();
    rt.block_on(log.append(vec![event(1)])).unwrap();
    rt.block_on(log.shutdown()).unwrap();
    let segment = dir.path().join("seg-0000000001.jsonl");
    std::fs::read(segment).unwrap()
}

/// Real files whose `sync_data` does nothing.
struct NoSync;

impl Storage for NoSync {
    fn open_append(&self, path: &std::path::Path) -> std::io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(NoSyncFile(FsStorage.open_append(path)?)))
    }
}

struct NoSyncFile(Box<dyn AppendFile>);

impl AppendFile for NoSyncFile {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes)
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.0.truncate(len)
    }
    fn size(&self) -> std::io::Result<u64> {
        self.0.size()
    }
}

fn chained(c: &mut Criterion, rt: &tokio::runtime::Runtime, group_name: &str, sync: bool) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    let concurrency: &[u64] = if sync { &CONCURRENCY } else { &[64] };
    for &tasks in concurrency {
        let dir = bench_dir();
        let mut config = config(dir.path());
        if !sync {
            config.storage = std::sync::Arc::new(NoSync);
        }
        let (log, _) = AuditLog::open(config).unwrap();
        let name = format!("{group_name}/{tasks}");
        group.bench_function(tasks.to_string(), |b| {
            b.iter_custom(|iters| {
                let per_task = iters.div_ceil(tasks);
                let start = Instant::now();
                rt.block_on(append_concurrently(&log, tasks, per_task));
                let took = start.elapsed();
                record(&name, per_task * tasks, took);
                // Report per requested iteration, as criterion expects.
                took.mul_f64(iters as f64 / (per_task * tasks) as f64)
            })
        });
        rt.block_on(log.shutdown()).unwrap();
    }
    group.finish();
}

async fn append_concurrently(log: &AuditLog, tasks: u64, per_task: u64) {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                log.append(vec![event(t * per_task + i)]).await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
}

fn baselines(c: &mut Criterion, line: &[u8]) {
    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Elements(1));
    for (label, sync) in [("fsync_per_event", true), ("write_no_fsync", false)] {
        let dir = bench_dir();
        let mut file = open(dir.path().join("baseline.jsonl"));
        let name = format!("baseline/{label}");
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    file.write_all(line).unwrap();
                    if sync {
                        file.sync_data().unwrap();
                    }
                }
                let took = start.elapsed();
                record(&name, iters, took);
                took
            })
        });
    }
    group.finish();
}

fn open(path: PathBuf) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn rate(name: &str) -> f64 {
    let measured = MEASURED.lock().unwrap();
    let (events, secs) = measured
        .iter()
        .filter(|(n, _, _)| n == name)
        .fold((0, 0.0), |(e, s), (_, events, took)| {
            (e + events, s + took.as_secs_f64())
        });
    events as f64 / secs
}

fn summary(line_len: usize) {
    let fsync = rate("baseline/fsync_per_event");
    let write = rate("baseline/write_no_fsync");
    println!();
    println!("audit append throughput, events/s ({line_len}-byte records), same run:");
    println!("  baseline write_all+sync_data per event, 1 writer  {fsync:>12.0}");
    println!("  baseline write_all, no hash, no sync, 1 writer    {write:>12.0}");
    for tasks in CONCURRENCY {
        let chained = rate(&format!("chained/{tasks}"));
        println!(
            "  chained log, group commit, {tasks:>2} appenders          {chained:>12.0}   \
             {:>6.2}x per-event fsync   {:>6.3}x no-sync ceiling",
            chained / fsync,
            chained / write
        );
    }
    let nosync = rate("chained_nosync/64");
    println!(
        "  chained log, sync_data a no-op, 64 appenders     {nosync:>12.0}   \
         {:>6.3}x no-sync ceiling (CPU cost of the pipeline)",
        nosync / write
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let line = sample_line(&rt);
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    baselines(&mut c, &line);
    chained(&mut c, &rt, "chained", true);
    chained(&mut c, &rt, "chained_nosync", false);
    c.final_summary();
    summary(line.len());
}
