//! Segment files: naming, listing and splitting into lines.
//!
//! Segments are named `seg-<index>.jsonl` with a zero-padded index that only
//! grows; the log is the segments in index order. The index is not a sequence
//! number, so a segment that holds no complete record (a crash right after
//! rotation) never collides with the one that follows it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::AuditError;

const PREFIX: &str = "seg-";
const SUFFIX: &str = ".jsonl";

/// The file name of segment `index`.
pub(crate) fn segment_name(index: u64) -> String {
    format!("{PREFIX}{index:010}{SUFFIX}")
}

/// The segments of `dir`, in index order.
pub(crate) fn list(dir: &Path) -> Result<Vec<Segment>, AuditError> {
    let entries = fs::read_dir(dir).map_err(|e| AuditError::io("list", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(index) = name.to_str().and_then(parse_index) else {
            continue;
        };
        segments.push(Segment {
            index,
            path: entry.path(),
        });
    }
    segments.sort_by_key(|s| s.index);
    Ok(segments)
}

fn parse_index(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub index: u64,
    pub path: PathBuf,
}

impl Segment {
    pub fn name(&self) -> String {
        segment_name(self.index)
    }

    pub fn read(&self) -> Result<Vec<u8>, AuditError> {
        fs::read(&self.path).map_err(|e| AuditError::io("read", &self.path, e))
    }
}

/// One line of a file, without its `\n`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line<'a> {
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// 1-based line number.
    pub number: u64,
    pub bytes: &'a [u8],
    /// False for a last line that has no `\n`: a torn write or a truncation.
    pub complete: bool,
}

/// The lines of `data`.
pub(crate) fn lines(data: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    let mut number = 0;
    std::iter::from_fn(move || {
        if offset >= data.len() {
            return None;
        }
        let rest = &data[offset..];
        number += 1;
        let line = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => Line {
                offset: offset as u64,
                number,
                bytes: &rest[..end],
                complete: true,
            },
            None => Line {
                offset: offset as u64,
                number,
                bytes: rest,
                complete: false,
            },
        };
        offset += line.bytes.len() + 1;
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_strangers_are_ignored() {
        assert_eq!(parse_index(&segment_name(42)), Some(42));
        assert_eq!(parse_index("seg-42.jsonl"), None);
        assert_eq!(parse_index("checkpoints.jsonl"), None);
        assert_eq!(parse_index("seg-0000000001.jsonl.bak"), None);
    }

    #[test]
    fn a_last_line_without_newline_is_incomplete() {
        let found: Vec<_> = lines(b"a\nbc\nd")
            .map(|l| (l.offset, l.bytes, l.complete))
            .collect();
        assert_eq!(
            found,
            vec![
                (0, &b"a"[..], true),
                (2, &b"bc"[..], true),
                (5, &b"d"[..], false)
            ]
        );
    }
}
