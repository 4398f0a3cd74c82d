//! Reading the stored record lines of an audit log directory, unchanged.
//!
//! The exporter ships the bytes the chained log holds, so that a consumer
//! can check `audithash` and `auditprev` itself; it therefore reads the
//! segment files directly rather than through a parsed record. Segments are
//! `seg-<10 digits>.jsonl` in index order (see the audit crate's
//! `SCHEMA.md`); only complete lines (ending in `\n`) are records, a last
//! line without one is a write in progress.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::ExportError;

const PREFIX: &str = "seg-";
const SUFFIX: &str = ".jsonl";

/// How far back from the end of the newest segment [`head_seq`] looks for
/// the last complete line: a small window first (it runs every poll), then
/// a large one. Records are about 1 KiB.
const HEAD_WINDOWS: [u64; 2] = [16 * 1024, 256 * 1024];

/// How much of a segment's start [`Tail::after`] reads for its first line.
const FIRST_LINE_WINDOW: u64 = 256 * 1024;

/// Most bytes read from a segment per batch.
const READ_CHUNK: u64 = 8 * 1024 * 1024;

/// One stored record: its sequence number and its line without the `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    pub seq: u64,
    pub line: Vec<u8>,
}

/// A segment file and its index.
#[derive(Clone, Debug)]
struct Segment {
    index: u64,
    path: PathBuf,
}

/// The segments of `dir`, in index order; none when `dir` does not exist
/// yet (the log creates it when it opens).
fn segments(dir: &Path) -> Result<Vec<Segment>, ExportError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ExportError::io("list", dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ExportError::io("list", dir, e))?;
        let name = entry.file_name();
        if let Some(index) = name.to_str().and_then(segment_index) {
            found.push(Segment {
                index,
                path: entry.path(),
            });
        }
    }
    found.sort_by_key(|s| s.index);
    Ok(found)
}

fn segment_index(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `sequence` attribute of a stored line.
fn line_seq(line: &[u8], path: &Path, offset: u64) -> Result<u64, ExportError> {
    #[derive(serde::Deserialize)]
    struct Header<'a> {
        #[serde(borrow)]
        sequence: &'a str,
    }
    let corrupt = |why: String| ExportError::Corrupt {
        path: path.to_owned(),
        offset,
        why,
    };
    let header: Header = serde_json::from_slice(line).map_err(|e| corrupt(e.to_string()))?;
    header
        .sequence
        .parse()
        .map_err(|_| corrupt(format!("`sequence` is not a number: `{}`", header.sequence)))
}

/// Reads records in order from a position in the log, in bounded batches.
#[derive(Debug)]
pub struct Tail {
    dir: PathBuf,
    /// The segment being read and the offset of its next unread byte.
    at: Option<(u64, u64)>,
    /// Records up to this number are skipped (already shipped).
    after: u64,
}

impl Tail {
    /// Starts at the first record after sequence number `after`.
    pub fn after(dir: &Path, after: u64) -> Result<Tail, ExportError> {
        let mut tail = Tail {
            dir: dir.to_owned(),
            at: None,
            after,
        };
        // Skip whole segments whose successor starts at or before `after + 1`.
        let all = segments(dir)?;
        for next in all.iter().skip(1) {
            match first_seq(&next.path)? {
                Some(first) if first <= after + 1 => tail.at = Some((next.index, 0)),
                Some(_) => break,
                // An empty segment (a crash right after rotation): look on.
                None => {}
            }
        }
        Ok(tail)
    }

    /// Up to `max` records past the current position, without moving it:
    /// call [`Tail::advance`] once they are shipped.
    pub fn peek(&self, max: usize) -> Result<(Vec<RawRecord>, (u64, u64)), ExportError> {
        let mut out = Vec::new();
        let all = segments(&self.dir)?;
        let (mut index, mut offset) = match self.at {
            Some(at) => at,
            None => match all.first() {
                Some(seg) => (seg.index, 0),
                None => return Ok((out, (0, 0))),
            },
        };
        let start = index;
        for seg in all.iter().filter(|s| s.index >= start) {
            if seg.index != index {
                (index, offset) = (seg.index, 0);
            }
            offset = self.read_segment(seg, offset, max, &mut out)?;
            if out.len() >= max {
                break;
            }
        }
        Ok((out, (index, offset)))
    }

    /// Moves past what [`Tail::peek`] returned.
    pub fn advance(&mut self, to: (u64, u64), last_seq: u64) {
        self.at = Some(to);
        self.after = self.after.max(last_seq);
    }

    /// Appends the complete lines of `seg` from `offset` to `out` (at most
    /// `max` in all); returns the offset after the last line taken.
    fn read_segment(
        &self,
        seg: &Segment,
        mut offset: u64,
        max: usize,
        out: &mut Vec<RawRecord>,
    ) -> Result<u64, ExportError> {
        let data = match read_chunk(&seg.path, offset) {
            Ok(data) => data,
            // Deleted by retention while we were behind: nothing left to ship.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(offset),
            Err(e) => return Err(ExportError::io("read", &seg.path, e)),
        };
        let mut rest = &data[..];
        while out.len() < max {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = &rest[..end];
            let seq = line_seq(line, &seg.path, offset)?;
            if seq > self.after {
                out.push(RawRecord {
                    seq,
                    line: line.to_vec(),
                });
            }
            offset += end as u64 + 1;
            rest = &rest[end + 1..];
        }
        Ok(offset)
    }
}

/// The sequence number of the newest complete record in `dir`, or 0 when
/// the log holds none.
pub fn head_seq(dir: &Path) -> Result<u64, ExportError> {
    for seg in segments(dir)?.iter().rev() {
        if let Some(seq) = last_seq(&seg.path)? {
            return Ok(seq);
        }
    }
    Ok(0)
}

fn last_seq(path: &Path) -> Result<Option<u64>, ExportError> {
    let len = match fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ExportError::io("read", path, e)),
    };
    for window in HEAD_WINDOWS {
        let start = len.saturating_sub(window);
        let data = read_from(path, start).map_err(|e| ExportError::io("read", path, e))?;
        let Some(end) = data.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok(None);
            }
            continue;
        };
        // The line must begin inside the window: after a `\n`, or at 0.
        let begin = match data[..end].iter().rposition(|&b| b == b'\n') {
            Some(p) => p + 1,
            None if start == 0 => 0,
            None => continue,
        };
        return line_seq(&data[begin..end], path, start + begin as u64).map(Some);
    }
    // Known shortcoming: a last line longer than the largest window is not
    // measured; the lag then reads from the segment before. Records are about
    // 1 KiB, so only a damaged file has one, and `verify` reports it.
    Ok(None)
}

fn first_seq(path: &Path) -> Result<Option<u64>, ExportError> {
    let mut data = Vec::new();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ExportError::io("read", path, e)),
    };
    file.take(FIRST_LINE_WINDOW)
        .read_to_end(&mut data)
        .map_err(|e| ExportError::io("read", path, e))?;
    match data.iter().position(|&b| b == b'\n') {
        Some(end) => line_seq(&data[..end], path, 0).map(Some),
        None => Ok(None),
    }
}

/// At most [`READ_CHUNK`] bytes from `offset`: a batch never needs more, and
/// an exporter far behind must not read a whole segment per batch.
fn read_chunk(path: &Path, offset: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::new();
    file.take(READ_CHUNK).read_to_end(&mut data)?;
    Ok(data)
}

fn read_from(path: &Path, offset: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64) -> String {
        format!("{{\"id\":\"{seq}\",\"sequence\":\"{seq:020}\",\"audithash\":\"x\"}}\n")
    }

    fn write(dir: &Path, index: u64, seqs: std::ops::RangeInclusive<u64>, torn: bool) {
        let mut text: String = seqs.map(line).collect();
        if torn {
            text.push_str("{\"sequence\":\"0000");
        }
        fs::write(dir.join(format!("seg-{index:010}.jsonl")), text).unwrap();
    }

    fn seqs(records: &[RawRecord]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn reads_across_segments_from_a_cursor_in_bounded_batches() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1, 1..=3, false);
        write(dir.path(), 2, 4..=6, false);
        write(dir.path(), 3, 7..=8, true);
        let mut tail = Tail::after(dir.path(), 4).unwrap();
        let (batch, to) = tail.peek(3).unwrap();
        assert_eq!(seqs(&batch), [5, 6, 7]);
        assert_eq!(batch[0].line, line(5).trim_end().as_bytes());
        tail.advance(to, 7);
        let (batch, to) = tail.peek(10).unwrap();
        assert_eq!(seqs(&batch), [8], "the torn last line is not a record");
        tail.advance(to, 8);
        assert!(tail.peek(10).unwrap().0.is_empty());
        assert_eq!(head_seq(dir.path()).unwrap(), 8);
    }

    #[test]
    fn peeking_does_not_move_and_new_lines_show_up() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(head_seq(dir.path()).unwrap(), 0);
        assert!(Tail::after(dir.path(), 0)
            .unwrap()
            .peek(5)
            .unwrap()
            .0
            .is_empty());
        write(dir.path(), 1, 1..=2, false);
        let mut tail = Tail::after(dir.path(), 0).unwrap();
        assert_eq!(seqs(&tail.peek(5).unwrap().0), [1, 2]);
        let (batch, to) = tail.peek(5).unwrap();
        assert_eq!(seqs(&batch), [1, 2], "a failed shipment is read again");
        tail.advance(to, 2);
        write(dir.path(), 1, 1..=4, false);
        assert_eq!(seqs(&tail.peek(5).unwrap().0), [3, 4]);
    }

    #[test]
    fn the_head_is_found_past_the_small_window_and_behind_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let long = |seq: u64, pad: usize| {
            let padding = "x".repeat(pad);
            format!("{{\"sequence\":\"{seq:020}\",\"pad\":\"{padding}\"}}\n")
        };
        let mut text: String = (1..=100).map(|seq| long(seq, 300)).collect();
        text.push_str(&long(101, 40 * 1024));
        text.push_str("{\"sequence\":\"torn");
        fs::write(dir.path().join("seg-0000000001.jsonl"), text).unwrap();
        assert_eq!(head_seq(dir.path()).unwrap(), 101);
    }

    #[test]
    fn a_line_without_a_sequence_is_an_error_naming_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{}not json\n", line(1));
        fs::write(dir.path().join("seg-0000000001.jsonl"), text).unwrap();
        let tail = Tail::after(dir.path(), 0).unwrap();
        let err = tail.peek(5).unwrap_err().to_string();
        let offset = format!("offset {}", line(1).len());
        assert!(
            err.contains("seg-0000000001.jsonl") && err.contains(&offset),
            "{err}"
        );
    }
}
