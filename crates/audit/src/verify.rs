//! Verification: reads a whole log and says exactly what is wrong with it.
//!
//! Records are read in file order (segments by index, lines in order) and
//! fed through a reorder window: a record whose number is ahead of the next
//! expected one waits there until its predecessors show up. From that stream
//! [`verify`] reports:
//!
//! - an **edited** record: its bytes do not match its own hash;
//! - a **broken chain**: a record does not name its predecessor's hash
//!   (the predecessor was edited and re-hashed, or this one replaced);
//! - **deleted** records: numbers that never show up (a gap `N..=M`);
//! - **reordered** records: a record that appears in the files before its
//!   predecessor (a swap of two records is one such finding);
//! - **truncation**: a file that ends mid-record without a recovery
//!   checkpoint naming it, or a checkpoint that covers records the log no
//!   longer has;
//! - **bad signatures**, checkpoints that disagree with the records, missing
//!   checkpoint numbers, and a log whose oldest record is not anchored by a
//!   checkpoint (records deleted from the start).
//!
//! A log that a running PDP is writing can be verified; the one false alarm
//! possible is a batch caught half-written at the very end of the newest
//! segment, reported as torn. Verify again: a real torn write stays.
//!
//! Limits: a record moved further than [`REORDER_WINDOW`] records from its
//! place is reported as deleted at its place and misplaced where it is. The
//! newest records after the last checkpoint can be cut off without a trace
//! unless checkpoints are also kept elsewhere (a SIEM, the Kafka sink); this
//! is inherent to any log whose newest state lives on one disk.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use ed25519_dalek::VerifyingKey;

use crate::checkpoint::{self, CHECKPOINTS_FILE};
use crate::error::AuditError;
use crate::record::{self, hash_from_hex, Hash, GENESIS};
use crate::segment::{self, Line};

/// How far (in records) a record may be out of place and still be reported
/// as reordered rather than deleted and misplaced.
pub const REORDER_WINDOW: usize = 65_536;

/// Where in the log something is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line's start.
    pub offset: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} (byte {})", self.file, self.line, self.offset)
    }
}

/// One problem found by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The record's bytes do not match its hash.
    Edited {
        seq: u64,
        at: Location,
    },
    /// The record does not name its predecessor's hash.
    ChainBroken {
        seq: u64,
        at: Location,
    },
    /// Records `first..=last` are missing; the log continues at `resumes_at`.
    Deleted {
        first: u64,
        last: u64,
        resumes_at: Option<Location>,
    },
    /// Record `seq` appears in the files before record `ahead_of`, which
    /// precedes it in the sequence.
    Reordered {
        seq: u64,
        at: Location,
        ahead_of: u64,
    },
    /// Record `seq` shows up again, or too far from its place to be matched.
    Misplaced {
        seq: u64,
        at: Location,
    },
    /// A line that is not a well-formed record or checkpoint.
    Malformed {
        at: Location,
        problem: String,
    },
    /// A file ends mid-line and no recovery checkpoint names those bytes.
    Torn {
        at: Location,
        len: u64,
    },
    /// Checkpoint `checkpoint` covers record `covers`, but the log ends at
    /// `log_ends` (0: no records).
    Truncated {
        checkpoint: u64,
        covers: u64,
        log_ends: u64,
    },
    BadSignature {
        checkpoint: u64,
        at: Location,
    },
    /// Record `seq` differs from the hash checkpoint `checkpoint` signed.
    CheckpointMismatch {
        checkpoint: u64,
        seq: u64,
        at: Location,
    },
    /// Checkpoints `first..=last` are missing.
    CheckpointsMissing {
        first: u64,
        last: u64,
    },
    /// The oldest record follows a record no checkpoint vouches for.
    UnanchoredStart {
        seq: u64,
        at: Location,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Finding::*;
        match self {
            Edited { seq, at } => write!(f, "edited: record {seq} at {at} does not match its hash"),
            ChainBroken { seq, at } => write!(
                f,
                "edited: record {seq} at {at} does not chain to record {}; \
                 one of the two was altered and re-hashed or replaced",
                seq.saturating_sub(1)
            ),
            Deleted {
                first,
                last,
                resumes_at,
            } => {
                let range = if first == last {
                    format!("record {first} is")
                } else {
                    format!("records {first}..={last} are")
                };
                match resumes_at {
                    Some(at) => write!(f, "deleted: {range} missing before {at}"),
                    None => write!(f, "deleted: {range} missing"),
                }
            }
            Reordered { seq, at, ahead_of } => write!(
                f,
                "reordered: record {seq} at {at} appears before record {ahead_of}"
            ),
            Misplaced { seq, at } => {
                write!(
                    f,
                    "reordered: record {seq} at {at} is a repeat or far from its place"
                )
            }
            Malformed { at, problem } => write!(f, "malformed line at {at}: {problem}"),
            Torn { at, len } => write!(
                f,
                "truncated: {at} ends mid-record ({len} bytes without a line end) \
                 and no recovery checkpoint names it"
            ),
            Truncated {
                checkpoint,
                covers,
                log_ends,
            } => write!(
                f,
                "truncated: checkpoint {checkpoint} covers record {covers} \
                 but the log ends at record {log_ends}"
            ),
            BadSignature { checkpoint, at } => {
                write!(f, "bad signature: checkpoint {checkpoint} at {at}")
            }
            CheckpointMismatch {
                checkpoint,
                seq,
                at,
            } => write!(
                f,
                "edited: record {seq} at {at} differs from the hash checkpoint {checkpoint} signed"
            ),
            CheckpointsMissing { first, last } => {
                write!(f, "deleted: checkpoints {first}..={last} are missing")
            }
            UnanchoredStart { seq, at } => write!(
                f,
                "deleted: the oldest record {seq} at {at} follows a record \
                 that no checkpoint vouches for"
            ),
        }
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: usize,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoints: u64,
    /// False when no public key was given: signatures were not checked.
    pub signatures_checked: bool,
    pub findings: Vec<Finding>,
    /// Things worth knowing that are not damage (recovered crashes, say).
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Verifies the log in `dir`. With `keys`, every checkpoint must be signed
/// by one of them (more than one when the signing key was rotated); with
/// `None`, signatures are not checked and the report says so. Errors only
/// when the files cannot be read; damage is reported in the findings.
pub fn verify(dir: &Path, keys: Option<&[VerifyingKey]>) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        signatures_checked: keys.is_some(),
        ..VerifyReport::default()
    };
    let anchors = read_checkpoints(dir, keys, &mut report)?;
    let segments = segment::list(dir)?;
    report.segments = segments.len();
    let mut chain = Chain::new(&anchors);
    for seg in &segments {
        let data = seg.read()?;
        let name = seg.name();
        for line in segment::lines(&data) {
            let at = location(&name, &line);
            if !line.complete {
                chain.torn(at, line.bytes.len() as u64);
                continue;
            }
            match record::parse_header(line.bytes) {
                Ok(header) => chain.push(header, at),
                Err(problem) => chain.findings.push(Finding::Malformed { at, problem }),
            }
        }
    }
    chain.finish(&mut report);
    if !report.signatures_checked {
        let note = "checkpoint signatures not checked: no public key given";
        report.notes.push(note.to_owned());
    }
    Ok(report)
}

fn location(file: &str, line: &Line<'_>) -> Location {
    Location {
        file: file.to_owned(),
        line: line.number,
        offset: line.offset,
    }
}

/// The trusted checkpoints, by the record they cover.
#[derive(Default)]
struct Anchors {
    /// seq -> (checkpoint number, hash) for each valid checkpoint.
    by_seq: HashMap<u64, Vec<(u64, Hash)>>,
    /// The checkpoint that covers the highest record.
    highest: Option<(u64, u64)>,
    /// Torn bytes named by recovery checkpoints: (file, offset).
    recovered: HashSet<(String, u64)>,
}

fn read_checkpoints(
    dir: &Path,
    keys: Option<&[VerifyingKey]>,
    report: &mut VerifyReport,
) -> Result<Anchors, AuditError> {
    let path = dir.join(CHECKPOINTS_FILE);
    let data = match fs::read(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(AuditError::io("read", &path, e)),
    };
    let mut anchors = Anchors::default();
    let mut bad_lines = Vec::new();
    let mut last_number = 0;
    for line in segment::lines(&data) {
        let at = location(CHECKPOINTS_FILE, &line);
        if !line.complete {
            bad_lines.push((at, None, line.bytes.len() as u64));
            continue;
        }
        let signed = match checkpoint::parse(line.bytes) {
            Ok(signed) => signed,
            Err(problem) => {
                bad_lines.push((at, Some(problem), 0));
                continue;
            }
        };
        report.checkpoints += 1;
        let cp = &signed.checkpoint;
        if cp.number > last_number + 1 {
            report.findings.push(Finding::CheckpointsMissing {
                first: last_number + 1,
                last: cp.number - 1,
            });
        }
        last_number = last_number.max(cp.number);
        if keys.is_some_and(|keys| !keys.iter().any(|key| signed.is_signed_by(key))) {
            let checkpoint = cp.number;
            report
                .findings
                .push(Finding::BadSignature { checkpoint, at });
            continue;
        }
        let Some(hash) = hash_from_hex(cp.hash.as_bytes()) else {
            let problem = "checkpoint `hash` is not 64 hex digits".to_owned();
            report.findings.push(Finding::Malformed { at, problem });
            continue;
        };
        anchors
            .by_seq
            .entry(cp.seq)
            .or_default()
            .push((cp.number, hash));
        if anchors.highest.is_none_or(|(_, seq)| cp.seq > seq) {
            anchors.highest = Some((cp.number, cp.seq));
        }
        for torn in &cp.torn {
            anchors.recovered.insert((torn.file.clone(), torn.offset));
        }
    }
    // Judged after reading all: a recovery checkpoint comes after the torn
    // line it names.
    for (at, problem, len) in bad_lines {
        if anchors.recovered.contains(&(at.file.clone(), at.offset)) {
            report.notes.push(format!("recovered torn write at {at}"));
            continue;
        }
        report.findings.push(match problem {
            Some(problem) => Finding::Malformed { at, problem },
            None => Finding::Torn { at, len },
        });
    }
    Ok(anchors)
}

/// A record on its way through the reorder window.
struct Seen {
    header: record::LineHeader,
    at: Location,
    /// Position in file order.
    pos: u64,
}

/// Follows the sequence and the hash chain.
struct Chain<'a> {
    anchors: &'a Anchors,
    /// The next sequence number expected; `None` before the first record.
    expected: Option<u64>,
    /// (seq, hash, pos) of the last record taken in sequence order.
    last: Option<(u64, Hash, u64)>,
    /// The next record taken follows a gap: its `auditprev` cannot be checked.
    after_gap: bool,
    pending: BTreeMap<u64, Seen>,
    next_pos: u64,
    records: u64,
    first_seq: Option<u64>,
    findings: Vec<Finding>,
    notes: Vec<String>,
}

impl<'a> Chain<'a> {
    fn new(anchors: &'a Anchors) -> Self {
        Chain {
            anchors,
            expected: None,
            last: None,
            after_gap: false,
            pending: BTreeMap::new(),
            next_pos: 0,
            records: 0,
            first_seq: None,
            findings: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn torn(&mut self, at: Location, len: u64) {
        if self
            .anchors
            .recovered
            .contains(&(at.file.clone(), at.offset))
        {
            self.notes
                .push(format!("recovered torn write at {at} ({len} bytes)"));
        } else {
            self.findings.push(Finding::Torn { at, len });
        }
    }

    fn push(&mut self, header: record::LineHeader, at: Location) {
        if header.seq == 0 {
            let problem = "record number 0 (numbers start at 1)".to_owned();
            self.findings.push(Finding::Malformed { at, problem });
            return;
        }
        self.records += 1;
        let seen = Seen {
            pos: self.next_pos,
            header,
            at,
        };
        self.next_pos += 1;
        let seq = seen.header.seq;
        // The first record read may start the log if something vouches for
        // its predecessor; otherwise the start is decided at the end.
        if self.expected.is_none() && self.pending.is_empty() && self.is_known_start(seq) {
            self.expected = Some(seq);
        }
        match self.expected {
            Some(expected) if seq == expected => {
                self.take(seen);
                self.drain();
            }
            Some(expected) if seq < expected => {
                self.findings.push(Finding::Misplaced { seq, at: seen.at });
            }
            _ => {
                if self.pending.insert(seq, seen).is_some() {
                    // Two records claim the same number; the later one stays.
                    let at = self.pending[&seq].at.clone();
                    self.findings.push(Finding::Misplaced { seq, at });
                }
                if self.pending.len() > REORDER_WINDOW {
                    self.skip_gap();
                }
            }
        }
    }

    /// Seq 1, or a record right after a checkpointed one, can start the log.
    fn is_known_start(&self, seq: u64) -> bool {
        seq == 1 || self.anchors.by_seq.contains_key(&(seq - 1))
    }

    /// Gives up waiting for the next expected record: everything up to the
    /// lowest pending record is missing.
    fn skip_gap(&mut self) {
        let Some((&next, _)) = self.pending.first_key_value() else {
            return;
        };
        if let Some(expected) = self.expected.filter(|&e| e < next) {
            self.findings.push(Finding::Deleted {
                first: expected,
                last: next - 1,
                resumes_at: Some(self.pending[&next].at.clone()),
            });
            self.after_gap = true;
        }
        self.expected = Some(next);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(expected) = self.expected {
            let Some(seen) = self.pending.remove(&expected) else {
                break;
            };
            self.take(seen);
        }
    }

    /// Takes the record that is next in sequence.
    fn take(&mut self, seen: Seen) {
        let h = &seen.header;
        if h.stored != h.computed {
            let at = seen.at.clone();
            self.findings.push(Finding::Edited { seq: h.seq, at });
        }
        match self.last {
            None => self.check_start(&seen),
            Some((_, hash, _)) if !self.after_gap && h.prev != hash => {
                let at = seen.at.clone();
                self.findings.push(Finding::ChainBroken { seq: h.seq, at });
            }
            _ => {}
        }
        if let Some((seq, _, pos)) = self.last {
            if seen.pos < pos {
                self.findings.push(Finding::Reordered {
                    seq: h.seq,
                    at: seen.at.clone(),
                    ahead_of: seq,
                });
            }
        }
        for &(checkpoint, hash) in self.anchors.by_seq.get(&h.seq).into_iter().flatten() {
            if hash != h.stored {
                let at = seen.at.clone();
                let seq = h.seq;
                self.findings.push(Finding::CheckpointMismatch {
                    checkpoint,
                    seq,
                    at,
                });
            }
        }
        self.first_seq.get_or_insert(h.seq);
        self.after_gap = false;
        self.last = Some((h.seq, h.stored, seen.pos));
        self.expected = Some(h.seq + 1);
    }

    /// The oldest record must follow the genesis or a checkpointed record.
    fn check_start(&mut self, seen: &Seen) {
        let h = &seen.header;
        let at = seen.at.clone();
        if h.seq == 1 {
            if h.prev != GENESIS {
                self.findings.push(Finding::ChainBroken { seq: 1, at });
            }
            return;
        }
        let anchors = self.anchors.by_seq.get(&(h.seq - 1));
        match anchors.and_then(|a| a.iter().find(|(_, hash)| *hash == h.prev)) {
            Some((number, _)) => self.notes.push(format!(
                "the log starts at record {} (older segments deleted), \
                 anchored by checkpoint {number}",
                h.seq
            )),
            None => self
                .findings
                .push(Finding::UnanchoredStart { seq: h.seq, at }),
        }
    }

    fn finish(mut self, report: &mut VerifyReport) {
        while !self.pending.is_empty() {
            self.skip_gap();
        }
        let log_ends = self.last.map_or(0, |(seq, _, _)| seq);
        let covered = self.anchors.highest.map_or(0, |(_, covers)| covers);
        if let Some((checkpoint, covers)) = self.anchors.highest {
            if covers > log_ends {
                self.findings.push(Finding::Truncated {
                    checkpoint,
                    covers,
                    log_ends,
                });
            }
        }
        if log_ends > covered {
            self.notes.push(format!(
                "records {}..={log_ends} come after the newest checkpoint: \
                 had they been cut off, nothing here could show it",
                covered + 1
            ));
        }
        report.records = self.records;
        report.first_seq = self.first_seq;
        report.last_seq = self.last.map(|(seq, _, _)| seq);
        report.findings.extend(self.findings);
        report.notes.extend(self.notes);
    }
}
