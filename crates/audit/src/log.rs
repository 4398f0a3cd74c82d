//! The embedded sink: an append-only, hash-chained log of segment files with
//! group commit.
//!
//! # Threading model
//!
//! Two OS threads own the files. [`AuditLog::append`] first serializes its
//! events on the caller's own thread, and runs SHA-256 over each line up to
//! its chain fields ([`Prepared`]), so that this work, most of the CPU a
//! record costs, runs on as many threads as there are callers. It then sends
//! the prepared records over a bounded channel and waits. The `audit-writer`
//! takes everything that is queued (up to `max_batch_events`), numbers and
//! chains it (a few dozen bytes and two or three SHA-256 blocks per record),
//! writes it with one `write`, and hands the batch to the `audit-syncer`, then
//! goes straight back to the queue. The syncer takes every batch handed over
//! since its last `fdatasync`, runs one `fdatasync`, and only then completes
//! every waiting call of those batches. So while one sync runs, the next batch
//! is gathered and written, and the next sync can start as soon as this one
//! ends; the cost of a sync is shared by everyone who arrived during the
//! previous one. The syncer syncs through its own handle on the segment file
//! (an `fdatasync` flushes the file, whichever descriptor names it).
//! Checkpoints, rotation, repair and close first wait until every written
//! batch is synced. When the queue is full, or `queue_depth` calls are written
//! and waiting for a sync, `append` waits: the decision path slows down rather
//! than dropping a record. These are threads, not tokio tasks, because
//! `fdatasync` blocks for milliseconds.
//!
//! Known shortcomings: a call that arrives while a sync runs is completed only
//! when the next sync ends, so with few callers throughput is bound by sync
//! latency (`n` callers making one call at a time get at most `n / sync
//! latency` calls per second, and the disk of the shared 2-core test machine
//! took 0.2 to 4 ms per `fdatasync` within one session). And every record
//! still costs CPU on the decision path: building its event, serializing about
//! 900 bytes, hashing all of them (about 0.5 µs with SHA-NI), the thread
//! hand-offs of each call (the writer's wake-up, the syncer's, the caller's)
//! and the kernel's `write` and `fdatasync`. `cargo bench -p kafka-pdp --bench
//! audit_load` measured about 4 µs of server CPU per record in all, against
//! about 1 µs for a decision answered from the PDP's cache, so the trail
//! cannot stay within 15% of cached throughput however the waiting is
//! arranged (figures in `DESIGN.md`). Two other arrangements were measured and
//! were no better: writing on the callers' threads under a lock (a `write` per
//! call instead of per batch, lock contention between the tokio workers), and
//! one thread doing both `write` and `fdatasync` (no pipelining).
//!
//! # Failure
//!
//! A failed write fails every call of that batch; a failed sync fails every
//! call of the batches it covered and of every batch written after them (their
//! bytes follow bytes that may be lost). Nothing of a failed batch counts as
//! written: the writer goes back to the last synced record, so the sequence
//! numbers are not used up. Before the next batch the writer cuts the file back
//! to its last durable length, so the partial bytes of the failed batches
//! (never acknowledged to anyone) disappear; while it cannot, every `append`
//! fails with [`AuditError::Unwritable`]. A full disk therefore makes the PDP
//! deny until space is freed, and then it resumes without a restart.
//!
//! # Crash recovery
//!
//! A crash (`kill -9`, power loss) can leave the newest segment ending in a
//! half-written line. Those bytes belong to a batch that was never
//! acknowledged. [`AuditLog::open`] finds them, leaves them where they are
//! (history is never rewritten), starts a new segment after them, and writes a
//! signed `recovery` checkpoint naming the torn bytes, so that
//! [`verify`](crate::verify()) can tell a recovered crash from a truncation.
//! Complete lines of an unacknowledged batch stay in the log: the trail may
//! name a decision the client never received, never the other way round. Any
//! other damage in the newest segment, or a newest checkpoint that covers
//! records the log does not have, makes `open` fail: the PDP must not start
//! over a damaged trail. `open` reads the newest segment, the newest
//! checkpoint, and the first and last record of every other segment (so a
//! missing or cut segment is found); `verify` reads everything.
//!
//! # Retention
//!
//! When a segment is closed, whole segments whose last write (file modification
//! time) is older than `retention` are deleted, oldest first, never the open
//! one. The default, [`DEFAULT_RETENTION`], is six years and two days: HIPAA
//! (45 CFR 164.316(b)(2)) asks that compliance documentation be kept six years,
//! and this trail is such documentation. Deleting old segments keeps the rest
//! verifiable because every segment boundary has a signed checkpoint (see
//! [`checkpoint`](crate::checkpoint)).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::SigningKey;
use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::{self, Checkpoint, Reason, TornWrite, CHECKPOINTS_FILE};
use crate::error::AuditError;
use crate::event::DecisionEvent;
use crate::record::{self, to_hex, Hash, Prepared, GENESIS};
use crate::segment::{self, segment_name, Segment};
use crate::storage::{AppendFile, FsStorage, Storage};

/// Segments are closed once they reach this size.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Segments are closed once they have been open this long (and hold a record).
pub const DEFAULT_MAX_SEGMENT_AGE: Duration = Duration::from_secs(24 * 3600);
/// A checkpoint is signed after this many records.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 10_000;
/// Six years and two days (leap days), HIPAA's retention for compliance
/// documentation; segments younger than this are never deleted by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(2_192 * 24 * 3600);
/// At most this many events go into one group commit.
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 8_192;
/// At most this many `append` calls wait in the queue; more wait to enqueue.
pub const DEFAULT_QUEUE_DEPTH: usize = 4_096;

/// How to open an [`AuditLog`].
pub struct AuditConfig {
    pub dir: PathBuf,
    pub signing_key: SigningKey,
    /// CloudEvents `source` of every record: names this PDP instance. PDP
    /// replicas that feed one SIEM need distinct sources.
    pub source: String,
    pub max_segment_bytes: u64,
    pub max_segment_age: Duration,
    pub checkpoint_every: u64,
    /// `None` keeps every segment forever.
    pub retention: Option<Duration>,
    pub max_batch_events: usize,
    pub queue_depth: usize,
    pub storage: Arc<dyn Storage>,
}

impl AuditConfig {
    /// The defaults above, writing to real files in `dir`.
    pub fn new(dir: impl Into<PathBuf>, signing_key: SigningKey) -> Self {
        AuditConfig {
            dir: dir.into(),
            signing_key,
            source: "kafka-pdp".to_owned(),
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            max_segment_age: DEFAULT_MAX_SEGMENT_AGE,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            retention: Some(DEFAULT_RETENTION),
            max_batch_events: DEFAULT_MAX_BATCH_EVENTS,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            storage: Arc::new(FsStorage),
        }
    }

    fn check(&self) -> Result<(), AuditError> {
        let positive = [
            ("max_segment_bytes", self.max_segment_bytes),
            ("checkpoint_every", self.checkpoint_every),
            ("max_batch_events", self.max_batch_events as u64),
            ("queue_depth", self.queue_depth as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(AuditError::Config(format!("`{name}` must be at least 1")));
            }
        }
        if self.source.is_empty() {
            return Err(AuditError::Config("`source` must not be empty".into()));
        }
        Ok(())
    }
}

/// Where a durable `append` put its events: `count` consecutive sequence
/// numbers from `first_seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub first_seq: u64,
    pub count: u64,
}

impl Receipt {
    /// The last sequence number, or `first_seq - 1` for an empty append.
    pub fn last_seq(&self) -> u64 {
        (self.first_seq + self.count).saturating_sub(1)
    }
}

/// What [`AuditLog::open`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// The segment new records go to.
    pub segment: String,
    /// Half-written lines from a crash that the writer stepped over; the
    /// caller should log them (they are also in a signed checkpoint).
    pub recovered: Vec<TornWrite>,
}

/// Counters for metrics. Monotonic since `open`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    pub records: u64,
    pub group_commits: u64,
    /// `append` calls that failed: each is a decision the PDP must deny.
    pub failed_appends: u64,
    pub segments_deleted: u64,
    /// Old segments retention could not delete (kept, tried again later).
    pub retention_errors: u64,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    group_commits: AtomicU64,
    failed_appends: AtomicU64,
    segments_deleted: AtomicU64,
    retention_errors: AtomicU64,
}

/// The handle to the log. Cheap to clone; all clones feed the one writer.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Request>,
    counters: Arc<Counters>,
    /// CloudEvents `source` of every record, serialized by the caller.
    source: Arc<str>,
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Request {
    Append {
        records: Prepared,
        reply: Reply<Receipt>,
    },
    Shutdown {
        reply: Reply<()>,
    },
}

// === impl AuditLog ===

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("stats", &self.stats())
            .finish()
    }
}

impl AuditLog {
    /// Opens (or creates) the log in `config.dir`, checks its newest segment
    /// and checkpoint, recovers from a torn write, and starts the writer.
    /// Blocking: call it before serving, or from `spawn_blocking`.
    pub fn open(config: AuditConfig) -> Result<(AuditLog, OpenReport), AuditError> {
        config.check()?;
        let counters = Arc::new(Counters::default());
        let source = Arc::from(config.source.as_str());
        let (mut writer, report) = Writer::open(config, counters.clone())?;
        let (tx, rx) = mpsc::channel(writer.limits.queue_depth);
        let syncs = writer.syncs.clone();
        let syncer = thread::Builder::new()
            .name("audit-syncer".into())
            .spawn(move || syncs.run())
            .map_err(|e| AuditError::io("start the syncer for", "audit log", e))?;
        writer.syncer = Some(syncer);
        let syncs = writer.syncs.clone();
        let started = thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx));
        if let Err(e) = started {
            syncs.stop();
            return Err(AuditError::io("start the writer for", "audit log", e));
        }
        let log = AuditLog {
            tx,
            counters,
            source,
        };
        Ok((log, report))
    }

    /// Appends `events` as consecutive records and returns once they are
    /// durable (written and `fdatasync`ed). An error means none of them is
    /// acknowledged: the caller must treat the decisions as not audited.
    pub async fn append(&self, events: Vec<DecisionEvent>) -> Result<Receipt, AuditError> {
        if events.is_empty() {
            return Ok(Receipt {
                first_seq: 0,
                count: 0,
            });
        }
        // Serialized here, on the caller's thread, in parallel with other
        // callers; the writer only numbers, chains and writes.
        let records = Prepared::new(&self.source, &events);
        drop(events);
        let (reply, done) = oneshot::channel();
        let sent = self.tx.send(Request::Append { records, reply }).await;
        let result = match sent {
            Ok(()) => done.await.unwrap_or(Err(AuditError::Closed)),
            Err(_) => Err(AuditError::Closed),
        };
        if result.is_err() {
            self.counters.failed_appends.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Signs a final checkpoint and stops the writer; later appends fail with
    /// [`AuditError::Closed`].
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        let (reply, done) = oneshot::channel();
        if self.tx.send(Request::Shutdown { reply }).await.is_err() {
            return Err(AuditError::Closed);
        }
        done.await.unwrap_or(Err(AuditError::Closed))
    }

    pub fn stats(&self) -> AuditStats {
        let c = &self.counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        AuditStats {
            records: get(&c.records),
            group_commits: get(&c.group_commits),
            failed_appends: get(&c.failed_appends),
            segments_deleted: get(&c.segments_deleted),
            retention_errors: get(&c.retention_errors),
        }
    }
}

// === impl Writer ===

struct Limits {
    max_segment_bytes: u64,
    max_segment_age: Duration,
    checkpoint_every: u64,
    retention: Option<Duration>,
    max_batch_events: usize,
    queue_depth: usize,
}

/// The segment records are appended to.
struct OpenSegment {
    index: u64,
    file: Box<dyn AppendFile>,
    /// The syncer's own handle on the same file.
    sync: Arc<SyncFile>,
    /// Bytes written; once every batch is synced, bytes known durable, and a
    /// failed write is cut back to this.
    len: u64,
    /// Records written by this writer; 1 for a reopened segment that holds
    /// older ones (only "none or some" matters).
    records: u64,
    opened: Instant,
}

/// The writer's state. Lives on the writer thread only.
struct Writer {
    dir: PathBuf,
    source: String,
    key: SigningKey,
    key_id: String,
    storage: Arc<dyn Storage>,
    limits: Limits,
    counters: Arc<Counters>,

    segment: OpenSegment,
    checkpoints: Box<dyn AppendFile>,
    checkpoints_len: u64,

    next_seq: u64,
    last_hash: Hash,
    /// The segment that holds record `next_seq - 1`.
    last_segment: String,
    next_checkpoint: u64,
    since_checkpoint: u64,
    /// Set after a failed write until the partial bytes are cut off.
    damaged: Option<String>,
    closed: bool,
    /// What the writer shares with the syncer thread.
    syncs: Arc<Syncs>,
    syncer: Option<thread::JoinHandle<()>>,
    /// The bytes of a batch; kept between batches so that its memory is
    /// reused, not allocated and first touched again for every batch.
    buf: Vec<u8>,
}

/// The newest state found on disk by `open`.
struct Found {
    next_seq: u64,
    last_hash: Hash,
    last_segment: String,
    /// Index of the newest segment and whether new records may go into it.
    newest: Option<(u64, bool)>,
    torn: Vec<TornWrite>,
}

impl Writer {
    fn open(
        config: AuditConfig,
        counters: Arc<Counters>,
    ) -> Result<(Writer, OpenReport), AuditError> {
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| AuditError::io("create", &dir, e))?;
        let tail = read_checkpoint_tail(&dir)?;
        check_boundaries(&segment::list(&dir)?)?;
        let mut found = scan_newest(&dir)?;
        check_against_checkpoint(&dir, &found, &tail)?;
        found.torn.extend(tail.torn.clone());

        let storage = config.storage.clone();
        let (index, reuse) = match found.newest {
            Some((index, true)) => (index, true),
            Some((index, false)) => (index + 1, false),
            None => (1, false),
        };
        let mut segment = open_segment(&*storage, &dir, index, reuse)?;
        if reuse && found.last_segment == segment_name(index) {
            // Holds records from before: rotation by size or age may apply.
            segment.records = 1;
        }
        let cp_path = dir.join(CHECKPOINTS_FILE);
        let checkpoints = storage
            .open_append(&cp_path)
            .map_err(|e| AuditError::io("open", &cp_path, e))?;
        sync_dir(&dir)?;
        let durable = Mark {
            len: segment.len,
            next_seq: found.next_seq,
            last_hash: found.last_hash,
            last_segment: found.last_segment.clone(),
            records: segment.records,
        };

        let mut writer = Writer {
            source: config.source,
            key_id: checkpoint::key_id(&config.signing_key.verifying_key()),
            key: config.signing_key,
            storage,
            limits: Limits {
                max_segment_bytes: config.max_segment_bytes,
                max_segment_age: config.max_segment_age,
                checkpoint_every: config.checkpoint_every,
                retention: config.retention,
                max_batch_events: config.max_batch_events,
                queue_depth: config.queue_depth,
            },
            counters: counters.clone(),
            segment,
            checkpoints,
            checkpoints_len: tail.len,
            next_seq: found.next_seq,
            last_hash: found.last_hash,
            last_segment: found.last_segment,
            next_checkpoint: tail.last.map_or(1, |c| c.number + 1),
            since_checkpoint: 0,
            damaged: None,
            closed: false,
            syncs: Arc::new(Syncs::new(durable, counters.clone())),
            syncer: None,
            buf: Vec::new(),
            dir,
        };
        let tail_torn = !tail.torn.is_empty();
        if found.torn.is_empty() {
            if writer.next_seq > 1 {
                writer.write_checkpoint(Reason::Open, Vec::new(), false)?;
            }
        } else {
            writer.write_checkpoint(Reason::Recovery, found.torn.clone(), tail_torn)?;
        }
        let report = OpenReport {
            next_seq: writer.next_seq,
            segment: segment_name(writer.segment.index),
            recovered: found.torn,
        };
        Ok((writer, report))
    }

    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut shutdown = None;
        while let Some(first) = rx.blocking_recv() {
            let mut batch = Vec::new();
            let mut count = 0;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Append { records, reply } => {
                        count += records.len();
                        batch.push((records, reply));
                    }
                    Request::Shutdown { reply } => shutdown = Some(reply),
                }
                if count < self.limits.max_batch_events && shutdown.is_none() {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            if let Some(reply) = shutdown.take() {
                let _ = reply.send(self.close());
            }
        }
        // Every handle is gone: close as a shutdown would.
        let _ = self.close();
        self.syncs.stop();
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
    }

    /// One group commit.
    fn commit(&mut self, batch: Vec<(Prepared, Reply<Receipt>)>) {
        if let Err(e) = self.prepare() {
            return fail_all(batch, &e);
        }
        let total: usize = batch.iter().map(|(records, _)| records.len()).sum();
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut seq = self.next_seq;
        let mut hash = self.last_hash;
        let mut receipts = Vec::with_capacity(batch.len());
        for (records, _) in &batch {
            receipts.push(Receipt {
                first_seq: seq,
                count: records.len() as u64,
            });
            hash = records.chain(seq, &hash, &mut buf);
            seq += records.len() as u64;
        }
        let written = self.write_segment(&buf);
        self.buf = buf;
        if let Err(e) = written {
            return fail_all(batch, &e);
        }
        self.next_seq = seq;
        self.last_hash = hash;
        self.last_segment = segment_name(self.segment.index);
        self.segment.records += total as u64;
        self.since_checkpoint += total as u64;
        let replies = batch.into_iter().map(|(_, reply)| reply).zip(receipts);
        self.hand_over(Written {
            file: self.segment.sync.clone(),
            replies: replies.collect(),
            records: total as u64,
            after: self.mark(),
        });
        if self.since_checkpoint >= self.limits.checkpoint_every {
            // A checkpoint may cover only synced records.
            self.drain();
            if self.damaged.is_none() {
                // A failure marks the writer damaged; the next batch retries
                // the repair and fails if it cannot.
                let _ = self.write_checkpoint(Reason::Interval, Vec::new(), false);
            }
        }
    }

    /// Where the writer stands after its newest written batch.
    fn mark(&self) -> Mark {
        Mark {
            len: self.segment.len,
            next_seq: self.next_seq,
            last_hash: self.last_hash,
            last_segment: self.last_segment.clone(),
            records: self.segment.records,
        }
    }

    /// Queues a written batch for the syncer. Waits while `queue_depth`
    /// calls already wait for a sync, so a slow disk slows `append` down.
    fn hand_over(&self, written: Written) {
        let mut state = self.syncs.lock();
        while state.waiting >= self.limits.queue_depth {
            state = self.syncs.wait(state);
        }
        state.waiting += written.replies.len();
        state.queue.push_back(written);
        self.syncs.changed.notify_all();
    }

    /// Waits until every written batch is synced. If a sync failed, goes
    /// back to the newest synced record (the failed batches' sequence
    /// numbers are free again) and marks the writer damaged, so that the
    /// next batch cuts their bytes off first.
    fn drain(&mut self) {
        let mut state = self.syncs.lock();
        while !state.queue.is_empty() || state.syncing {
            state = self.syncs.wait(state);
        }
        let Some(error) = state.failed.take() else {
            return;
        };
        let durable = state.durable.clone();
        drop(state);
        self.segment.len = durable.len;
        self.segment.records = durable.records;
        self.next_seq = durable.next_seq;
        self.last_hash = durable.last_hash;
        self.last_segment = durable.last_segment;
        if self.damaged.is_none() {
            self.damaged = Some(error.to_string());
        }
    }

    /// Repairs a failed write and rotates when due, before a batch.
    fn prepare(&mut self) -> Result<(), AuditError> {
        if self.closed {
            return Err(AuditError::Closed);
        }
        // Repair cuts back to the synced length and rotation checkpoints the
        // newest record: both need every written batch synced first.
        if self.damaged.is_some() || self.rotation_due() || self.syncs.lock().failed.is_some() {
            self.drain();
        }
        if self.damaged.is_some() {
            self.repair()?;
        }
        if self.rotation_due() {
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes a batch; the syncer makes it durable.
    fn write_segment(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        match self.segment.file.write_all(bytes) {
            Ok(()) => {
                self.segment.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let path = self.dir.join(segment_name(self.segment.index));
                self.damaged = Some(format!("writing `{}` failed: {e}", path.display()));
                Err(AuditError::io("append to", path, e))
            }
        }
    }

    /// Cuts both files back to their durable lengths after a failed write.
    fn repair(&mut self) -> Result<(), AuditError> {
        let cause = self.damaged.clone().unwrap_or_default();
        let seg_len = self.segment.len;
        let cp_len = self.checkpoints_len;
        let seg = &mut self.segment.file;
        let cut = |file: &mut Box<dyn AppendFile>, len: u64| -> io::Result<()> {
            if file.size()? != len {
                file.truncate(len)?;
                file.sync_data()?;
            }
            Ok(())
        };
        cut(seg, seg_len)
            .and_then(|()| cut(&mut self.checkpoints, cp_len))
            .map_err(|e| AuditError::Unwritable(format!("{cause}; undoing it failed: {e}")))?;
        self.damaged = None;
        Ok(())
    }

    fn rotation_due(&self) -> bool {
        let seg = &self.segment;
        seg.records > 0
            && (seg.len >= self.limits.max_segment_bytes
                || seg.opened.elapsed() >= self.limits.max_segment_age)
    }

    /// Closes the segment under a checkpoint, opens the next, applies retention.
    fn rotate(&mut self) -> Result<(), AuditError> {
        self.write_checkpoint(Reason::Rotation, Vec::new(), false)?;
        let index = self.segment.index + 1;
        self.segment = open_segment(&*self.storage, &self.dir, index, false)?;
        self.syncs.lock().durable = self.mark();
        sync_dir(&self.dir)?;
        self.apply_retention();
        Ok(())
    }

    /// Signs a checkpoint over the newest record and makes it durable.
    /// `after_torn` starts it on a new line, after a half-written one.
    fn write_checkpoint(
        &mut self,
        reason: Reason,
        torn: Vec<TornWrite>,
        after_torn: bool,
    ) -> Result<(), AuditError> {
        let checkpoint = Checkpoint {
            number: self.next_checkpoint,
            seq: self.next_seq - 1,
            hash: to_hex(&self.last_hash),
            segment: self.last_segment.clone(),
            reason,
            key: self.key_id.clone(),
            torn,
        };
        let mut buf = Vec::with_capacity(512);
        if after_torn {
            buf.push(b'\n');
        }
        checkpoint::encode(&checkpoint, &self.source, &self.key, &mut buf);
        let file = &mut self.checkpoints;
        let result = file.write_all(&buf).and_then(|()| file.sync_data());
        if let Err(e) = result {
            let path = self.dir.join(CHECKPOINTS_FILE);
            self.damaged = Some(format!("writing `{}` failed: {e}", path.display()));
            return Err(AuditError::io("append to", path, e));
        }
        self.checkpoints_len += buf.len() as u64;
        self.next_checkpoint += 1;
        self.since_checkpoint = 0;
        Ok(())
    }

    /// Deletes the oldest closed segments last written before the retention
    /// period. Failures are counted and retried at the next rotation; they
    /// never fail an append, since keeping a record too long loses nothing.
    fn apply_retention(&mut self) {
        let Some(retention) = self.limits.retention else {
            return;
        };
        let Ok(segments) = segment::list(&self.dir) else {
            self.counters
                .retention_errors
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = SystemTime::now();
        let mut deleted = 0;
        for seg in segments.iter().filter(|s| s.index < self.segment.index) {
            if !is_expired(seg, now, retention) {
                break;
            }
            // INVARIANT: the segment after `seg` starts right after a record
            // covered by a signed checkpoint (rotation, open or recovery), so
            // the remaining log stays anchored.
            match fs::remove_file(&seg.path) {
                Ok(()) => deleted += 1,
                Err(_) => {
                    self.counters
                        .retention_errors
                        .fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        if deleted > 0 {
            self.counters
                .segments_deleted
                .fetch_add(deleted, Ordering::Relaxed);
            if sync_dir(&self.dir).is_err() {
                self.counters
                    .retention_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn close(&mut self) -> Result<(), AuditError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.drain();
        if self.damaged.is_some() {
            self.repair()?;
        }
        if self.next_seq > 1 {
            self.write_checkpoint(Reason::Close, Vec::new(), false)?;
        }
        Ok(())
    }
}

// === impl Syncs ===

/// A segment file as the syncer sees it: a second handle, used only for
/// `fdatasync`, which flushes the file's data whichever handle wrote it.
struct SyncFile {
    path: PathBuf,
    file: Mutex<Box<dyn AppendFile>>,
}

/// Where the writer stands after a batch, and goes back to if a sync fails.
#[derive(Clone)]
struct Mark {
    len: u64,
    next_seq: u64,
    last_hash: Hash,
    last_segment: String,
    records: u64,
}

/// A batch that is written and waits for a sync.
struct Written {
    file: Arc<SyncFile>,
    replies: Vec<(Reply<Receipt>, Receipt)>,
    records: u64,
    after: Mark,
}

/// The hand-over between the writer and the syncer thread.
struct Syncs {
    state: Mutex<SyncState>,
    /// Signalled whenever `state` changes.
    changed: Condvar,
    counters: Arc<Counters>,
}

struct SyncState {
    /// Written batches, oldest first, not yet taken by a sync.
    queue: VecDeque<Written>,
    /// Calls waiting in `queue` and in the running sync.
    waiting: usize,
    syncing: bool,
    /// Where the writer stood after the newest synced batch.
    durable: Mark,
    /// Set by a failed sync; until the writer takes it (in `drain`), every
    /// batch fails unsynced: its bytes follow bytes that may be lost.
    failed: Option<AuditError>,
    stop: bool,
}

impl Syncs {
    fn new(durable: Mark, counters: Arc<Counters>) -> Syncs {
        Syncs {
            state: Mutex::new(SyncState {
                queue: VecDeque::new(),
                waiting: 0,
                syncing: false,
                durable,
                failed: None,
                stop: false,
            }),
            changed: Condvar::new(),
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, SyncState>) -> MutexGuard<'a, SyncState> {
        self.changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends `run` once the queue is empty.
    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }

    /// The syncer thread: one `fdatasync` for everything queued, then the
    /// replies of everything it covered.
    fn run(&self) {
        let mut state = self.lock();
        loop {
            while state.queue.is_empty() && !state.stop {
                state = self.wait(state);
            }
            let Some(first) = state.queue.pop_front() else {
                return;
            };
            // INVARIANT: a record is acknowledged only after an `fdatasync`
            // that began after its write completed. The writer queues a batch
            // only once its `write` returned, and the batches are taken off
            // the queue here, before the sync that acknowledges them starts;
            // a batch queued while a sync runs waits for the next one.
            let file = first.file.clone();
            let mut batches = vec![first];
            while let Some(next) = state.queue.pop_front() {
                if !Arc::ptr_eq(&next.file, &file) {
                    state.queue.push_front(next);
                    break;
                }
                batches.push(next);
            }
            let earlier = state.failed.as_ref().map(copy_error);
            let result = match earlier {
                Some(error) => Err(error),
                None => {
                    state.syncing = true;
                    drop(state);
                    let synced = file.sync();
                    state = self.lock();
                    state.syncing = false;
                    synced
                }
            };
            let calls: usize = batches.iter().map(|b| b.replies.len()).sum();
            state.waiting -= calls;
            match &result {
                Ok(()) => {
                    if let Some(last) = batches.last() {
                        state.durable = last.after.clone();
                    }
                    let records: u64 = batches.iter().map(|b| b.records).sum();
                    let counters = &self.counters;
                    counters.records.fetch_add(records, Ordering::Relaxed);
                    counters.group_commits.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    if state.failed.is_none() {
                        state.failed = Some(copy_error(error));
                    }
                }
            }
            self.changed.notify_all();
            drop(state);
            for (reply, receipt) in batches.into_iter().flat_map(|b| b.replies) {
                let _ = reply.send(result.as_ref().map(|()| receipt).map_err(copy_error));
            }
            state = self.lock();
        }
    }
}

impl SyncFile {
    fn sync(&self) -> Result<(), AuditError> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.sync_data()
            .map_err(|e| AuditError::io("sync", &self.path, e))
    }
}

fn is_expired(seg: &Segment, now: SystemTime, retention: Duration) -> bool {
    let modified = fs::metadata(&seg.path).and_then(|m| m.modified());
    match modified.map(|m| now.duration_since(m)) {
        Ok(Ok(age)) => age > retention,
        // Unknown age or a time in the future: keep it.
        _ => false,
    }
}

fn fail_all<T>(batch: Vec<(Prepared, Reply<T>)>, error: &AuditError) {
    for (_, reply) in batch {
        let _ = reply.send(Err(copy_error(error)));
    }
}

/// The same failure for each waiter of a batch (`io::Error` is not `Clone`).
fn copy_error(error: &AuditError) -> AuditError {
    match error {
        AuditError::Io {
            action,
            path,
            source,
        } => AuditError::io(
            action,
            path,
            io::Error::new(source.kind(), source.to_string()),
        ),
        AuditError::Corrupt {
            path,
            offset,
            problem,
        } => AuditError::corrupt(path, *offset, problem.clone()),
        AuditError::Key { path, problem } => AuditError::Key {
            path: path.clone(),
            problem: problem.clone(),
        },
        AuditError::Config(m) => AuditError::Config(m.clone()),
        AuditError::Unwritable(m) => AuditError::Unwritable(m.clone()),
        AuditError::Closed => AuditError::Closed,
    }
}

fn open_segment(
    storage: &dyn Storage,
    dir: &Path,
    index: u64,
    reuse: bool,
) -> Result<OpenSegment, AuditError> {
    let path = dir.join(segment_name(index));
    // An empty file is left by an earlier attempt that failed after
    // creating it; anything else must not be appended to blindly.
    let existing = fs::metadata(&path).map_or(0, |m| m.len());
    if !reuse && existing > 0 {
        return Err(AuditError::corrupt(
            &path,
            0,
            "a new segment's file already exists",
        ));
    }
    let file = storage
        .open_append(&path)
        .map_err(|e| AuditError::io("open", &path, e))?;
    let sync = storage
        .open_append(&path)
        .map_err(|e| AuditError::io("open", &path, e))?;
    let sync = Arc::new(SyncFile {
        path: path.clone(),
        file: Mutex::new(sync),
    });
    let len = file
        .size()
        .map_err(|e| AuditError::io("read the length of", &path, e))?;
    Ok(OpenSegment {
        index,
        file,
        sync,
        len,
        records: 0,
        opened: Instant::now(),
    })
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io("sync", dir, e))
}

// === opening: what is on disk ===

/// A cheap check of the whole log: each segment's first record must follow
/// the last record of the segment before it. Reads only the head and tail
/// of each segment, so a missing or cut segment stops the PDP at start even
/// in a log of years; `verify` checks every record.
fn check_boundaries(segments: &[Segment]) -> Result<(), AuditError> {
    let mut before: Option<(String, record::LineHeader)> = None;
    for seg in segments {
        let Some(first) = edge_record(seg, Edge::First)? else {
            continue;
        };
        if let Some((name, last)) = &before {
            if first.seq != last.seq + 1 || first.prev != last.stored {
                let problem = format!(
                    "its first record {} does not follow record {} at the end of `{name}`: \
                     records are missing or were altered (run `kafka-pdp audit verify`)",
                    first.seq, last.seq
                );
                return Err(AuditError::corrupt(&seg.path, 0, problem));
            }
        }
        let last = edge_record(seg, Edge::Last)?.unwrap_or(first);
        before = Some((seg.name(), last));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    First,
    Last,
}

/// The first or last complete record of `seg`, checked against its hash.
fn edge_record(seg: &Segment, edge: Edge) -> Result<Option<record::LineHeader>, AuditError> {
    const WINDOW: u64 = 64 * 1024;
    let read = match edge {
        Edge::First => read_head(&seg.path, WINDOW).map(|data| (data, 0)),
        Edge::Last => read_tail(&seg.path, WINDOW),
    };
    let (mut data, mut base) = read.map_err(|e| AuditError::io("read", &seg.path, e))?;
    let mut lines = complete_lines(&data, base);
    if lines.is_empty() && data.len() as u64 == WINDOW {
        // One record longer than the window: read the whole file.
        data = seg.read()?;
        base = 0;
        lines = complete_lines(&data, base);
    }
    let found = match edge {
        Edge::First => lines.first(),
        Edge::Last => lines.last(),
    };
    let Some(&(offset, bytes)) = found else {
        return Ok(None);
    };
    let bad = |problem: String| AuditError::corrupt(&seg.path, offset, problem);
    let header = record::parse_header(bytes).map_err(bad)?;
    if header.stored != header.computed {
        return Err(bad(format!(
            "record {} does not match its hash",
            header.seq
        )));
    }
    Ok(Some(header))
}

/// The complete lines of a window read at `base`, with their file offsets.
/// A window that starts mid-file starts mid-line: its first piece is skipped.
fn complete_lines(data: &[u8], base: u64) -> Vec<(u64, &[u8])> {
    let skip = if base > 0 {
        data.iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| p + 1)
    } else {
        0
    };
    segment::lines(&data[skip..])
        .filter(|line| line.complete)
        .map(|line| (base + (skip as u64) + line.offset, line.bytes))
        .collect()
}

fn read_head(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    File::open(path)?.take(max).read_to_end(&mut data)?;
    Ok(data)
}

/// Finds the newest record, checking the newest non-empty segment fully.
fn scan_newest(dir: &Path) -> Result<Found, AuditError> {
    let segments = segment::list(dir)?;
    let Some(newest) = segments.last() else {
        return Ok(Found {
            next_seq: 1,
            last_hash: GENESIS,
            last_segment: String::new(),
            newest: None,
            torn: Vec::new(),
        });
    };
    let mut torn = Vec::new();
    for (i, seg) in segments.iter().enumerate().rev() {
        let is_newest = i + 1 == segments.len();
        let scan = scan_segment(seg, is_newest)?;
        if is_newest {
            torn.extend(scan.torn);
        }
        if let Some((seq, hash)) = scan.last {
            return Ok(Found {
                next_seq: seq + 1,
                last_hash: hash,
                last_segment: seg.name(),
                newest: Some((newest.index, torn.is_empty())),
                torn,
            });
        }
    }
    Ok(Found {
        next_seq: 1,
        last_hash: GENESIS,
        last_segment: String::new(),
        newest: Some((newest.index, torn.is_empty())),
        torn,
    })
}

struct SegmentScan {
    last: Option<(u64, Hash)>,
    torn: Option<TornWrite>,
}

/// Checks every complete line of `seg`: well formed, hash intact, numbered
/// and chained consecutively. An incomplete last line is a torn write when
/// `is_newest`; in an older segment it was recovered earlier and is skipped
/// here (`verify` checks it against its recovery checkpoint).
fn scan_segment(seg: &Segment, is_newest: bool) -> Result<SegmentScan, AuditError> {
    let data = seg.read()?;
    let mut last: Option<(u64, Hash)> = None;
    let mut torn = None;
    for line in segment::lines(&data) {
        if !line.complete {
            if is_newest {
                torn = Some(TornWrite {
                    file: seg.name(),
                    offset: line.offset,
                    len: line.bytes.len() as u64,
                });
            }
            break;
        }
        let bad = |problem: String| AuditError::corrupt(&seg.path, line.offset, problem);
        let header = record::parse_header(line.bytes).map_err(bad)?;
        if header.stored != header.computed {
            return Err(bad(format!(
                "record {} does not match its hash",
                header.seq
            )));
        }
        if let Some((seq, hash)) = last {
            if header.seq != seq + 1 || header.prev != hash {
                let problem = format!("record {} does not follow record {seq}", header.seq);
                return Err(bad(problem));
            }
        }
        last = Some((header.seq, header.stored));
    }
    Ok(SegmentScan { last, torn })
}

struct CheckpointTail {
    last: Option<Checkpoint>,
    len: u64,
    torn: Vec<TornWrite>,
}

/// Reads the newest checkpoint (from the end of the file only).
fn read_checkpoint_tail(dir: &Path) -> Result<CheckpointTail, AuditError> {
    const TAIL: u64 = 64 * 1024;
    let path = dir.join(CHECKPOINTS_FILE);
    let (data, base) = match read_tail(&path, TAIL) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), 0),
        Err(e) => return Err(AuditError::io("read", &path, e)),
    };
    let mut last = None;
    let mut torn = Vec::new();
    // A read that starts mid-file starts mid-line: skip to the first `\n`.
    let skip = if base > 0 {
        data.iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| p + 1)
    } else {
        0
    };
    for line in segment::lines(&data[skip..]) {
        let offset = base + skip as u64 + line.offset;
        if !line.complete {
            torn.push(TornWrite {
                file: CHECKPOINTS_FILE.to_owned(),
                offset,
                len: line.bytes.len() as u64,
            });
            break;
        }
        last = Some((offset, line.bytes));
    }
    let last = match last {
        Some((offset, bytes)) => Some(
            checkpoint::parse(bytes)
                .map_err(|p| AuditError::corrupt(&path, offset, p))?
                .checkpoint,
        ),
        None => None,
    };
    Ok(CheckpointTail {
        last,
        len: base + data.len() as u64,
        torn,
    })
}

fn read_tail(path: &Path, max: u64) -> io::Result<(Vec<u8>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let base = len.saturating_sub(max);
    file.seek(SeekFrom::Start(base))?;
    let mut data = Vec::with_capacity((len - base) as usize);
    file.read_to_end(&mut data)?;
    Ok((data, base))
}

/// The newest checkpoint must not cover records the log lacks.
fn check_against_checkpoint(
    dir: &Path,
    found: &Found,
    tail: &CheckpointTail,
) -> Result<(), AuditError> {
    let Some(last) = &tail.last else {
        return Ok(());
    };
    let path = dir.join(CHECKPOINTS_FILE);
    let end = found.next_seq - 1;
    if last.seq > end {
        let problem = format!(
            "truncated: checkpoint {} covers record {} but the log ends at record {end}",
            last.number, last.seq
        );
        return Err(AuditError::corrupt(path, 0, problem));
    }
    if last.seq == end && last.hash != to_hex(&found.last_hash) {
        let problem = format!(
            "record {end} does not match checkpoint {}: it was rewritten",
            last.number
        );
        return Err(AuditError::corrupt(path, 0, problem));
    }
    // Signatures are not checked here: keys may rotate, and `verify` checks
    // them against the key an auditor trusts.
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::event::*;
    use crate::storage::FsStorage;

    /// Real files whose `fdatasync` fails while `failing` is set.
    #[derive(Clone)]
    struct FailingSync(Arc<AtomicBool>);

    struct FailingSyncFile {
        inner: Box<dyn AppendFile>,
        failing: Arc<AtomicBool>,
    }

    impl Storage for FailingSync {
        fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
            Ok(Box::new(FailingSyncFile {
                inner: FsStorage.open_append(path)?,
                failing: self.0.clone(),
            }))
        }
    }

    impl AppendFile for FailingSyncFile {
        fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.inner.write_all(bytes)
        }

        fn sync_data(&mut self) -> io::Result<()> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
            self.inner.sync_data()
        }

        fn truncate(&mut self, len: u64) -> io::Result<()> {
            self.inner.truncate(len)
        }

        fn size(&self) -> io::Result<u64> {
            self.inner.size()
        }
    }

    fn event(i: u64) -> DecisionEvent {
        DecisionEvent {
            time: jiff::Timestamp::from_second(1_780_000_000 + i as i64).unwrap(),
            schema: SCHEMA_VERSION,
            decision: Decision::Allow,
            principal: Principal {
                kind: "User".into(),
                name: "svc-1".into(),
            },
            operation: "Read".into(),
            resource: Resource {
                kind: "Topic".into(),
                name: format!("orders-{i}"),
                pattern: PatternType::Literal,
            },
            client: Client {
                address: "10.1.2.3".into(),
                id: "consumer".into(),
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
                determining: vec!["readers".into()],
                errored: vec![],
            },
            decided_by: DecidedBy::Pdp,
            log_if_allowed: false,
            log_if_denied: true,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_fails_its_batches_and_frees_their_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut config = AuditConfig::new(dir.path(), key.clone());
        config.storage = Arc::new(FailingSync(failing.clone()));
        let (log, _) = AuditLog::open(config).unwrap();
        log.append(vec![event(1), event(2)]).await.unwrap();

        // Concurrent appends while syncs fail: written, never acknowledged.
        failing.store(true, Ordering::SeqCst);
        let calls: Vec<_> = (3..11)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(vec![event(i)]).await })
            })
            .collect();
        for call in calls {
            let err = call.await.unwrap().unwrap_err();
            assert!(err.to_string().contains("sync"), "{err}");
        }

        failing.store(false, Ordering::SeqCst);
        let receipt = log.append(vec![event(11)]).await.unwrap();
        assert_eq!(receipt.first_seq, 3);
        log.shutdown().await.unwrap();
        assert_eq!(log.stats().records, 3);

        let report = crate::verify(dir.path(), Some(&[key.verifying_key()])).unwrap();
        assert!(report.is_intact(), "{:#?}", report.findings);
        assert_eq!(report.records, 3);
    }
}
