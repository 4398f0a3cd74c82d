//! Reading the log for people: filtered queries and following new records.
//!
//! These readers trust the files; [`verify`](crate::verify()) is what checks
//! them. They read complete lines only: a last line without its `\n` is a
//! write in progress (or a torn one, which `verify` reports), not a record.
//! A complete line that is not a record is returned as an error, never
//! skipped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::error::AuditError;
use crate::event::Decision;
use crate::record::{self, AuditRecord};
use crate::segment::{self, Segment};

/// Which records to return. Every criterion that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// `User:alice`, or `alice` for any principal type.
    pub principal: Option<String>,
    /// `Topic:payments.eu`, or `payments.eu` for any resource type; a
    /// trailing `*` matches a name prefix (`Topic:phi.*`).
    pub resource: Option<String>,
    pub decision: Option<Decision>,
    /// Inclusive lower bound on the decision time.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound on the decision time.
    pub until: Option<Timestamp>,
}

impl Filter {
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let event = &record.event;
        if self.decision.is_some_and(|d| d != event.decision) {
            return false;
        }
        if self.since.is_some_and(|t| event.time < t) || self.until.is_some_and(|t| event.time >= t)
        {
            return false;
        }
        if let Some(want) = &self.principal {
            let p = &event.principal;
            if !matches_typed(want, &p.kind, &p.name, false) {
                return false;
            }
        }
        if let Some(want) = &self.resource {
            let r = &event.resource;
            if !matches_typed(want, &r.kind, &r.name, true) {
                return false;
            }
        }
        true
    }
}

/// `Type:name` or `name`, with an optional trailing `*` when `prefix_ok`.
fn matches_typed(want: &str, kind: &str, name: &str, prefix_ok: bool) -> bool {
    let want_name = match want.split_once(':') {
        Some((want_kind, rest)) if want_kind == kind => rest,
        // Kafka principal and resource names may themselves contain `:`.
        Some(_) if want == name => want,
        Some(_) => return false,
        None => want,
    };
    match want_name.strip_suffix('*') {
        Some(prefix) if prefix_ok => name.starts_with(prefix),
        _ => want_name == name,
    }
}

/// The records of `dir` that match `filter`, oldest first.
pub fn query(dir: &Path, filter: Filter) -> Result<Query, AuditError> {
    Ok(Query {
        segments: segment::list(dir)?.into(),
        current: None,
        filter,
    })
}

/// The last `n` records of `dir` that match `filter`, oldest first. Reads
/// segments from the newest back, only as far as it must.
pub fn last_records(dir: &Path, n: usize, filter: Filter) -> Result<Vec<AuditRecord>, AuditError> {
    let mut newest_first = Vec::new();
    for seg in segment::list(dir)?.into_iter().rev() {
        if newest_first.len() >= n {
            break;
        }
        let one = Query {
            segments: VecDeque::from([seg]),
            current: None,
            filter: filter.clone(),
        };
        let records = one.collect::<Result<Vec<_>, _>>()?;
        newest_first.extend(records.into_iter().rev());
    }
    newest_first.truncate(n);
    newest_first.reverse();
    Ok(newest_first)
}

/// Iterator over matching records; see [`query`].
pub struct Query {
    segments: VecDeque<Segment>,
    /// The segment being read: its bytes, its path, the next offset.
    current: Option<(Vec<u8>, PathBuf, usize)>,
    filter: Filter,
}

impl Iterator for Query {
    type Item = Result<AuditRecord, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some((data, path, offset)) = &mut self.current else {
                let seg = self.segments.pop_front()?;
                match seg.read() {
                    Ok(data) => self.current = Some((data, seg.path, 0)),
                    Err(e) => return Some(Err(e)),
                }
                continue;
            };
            let rest = &data[*offset..];
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                self.current = None;
                continue;
            };
            let at = *offset as u64;
            *offset += end + 1;
            match record::parse_record(&rest[..end]) {
                Ok(record) if self.filter.matches(&record) => return Some(Ok(record)),
                Ok(_) => {}
                Err(problem) => return Some(Err(AuditError::corrupt(path.clone(), at, problem))),
            }
        }
    }
}

/// Follows a log as it grows, across segment rotations.
pub struct Follower {
    dir: PathBuf,
    segment: Option<u64>,
    offset: u64,
}

impl Follower {
    /// Starts after the records that exist now.
    pub fn from_end(dir: &Path) -> Result<Follower, AuditError> {
        let newest = segment::list(dir)?.pop();
        let offset = match &newest {
            Some(seg) => complete_len(&seg.path)?,
            None => 0,
        };
        Ok(Follower {
            dir: dir.to_owned(),
            segment: newest.map(|s| s.index),
            offset,
        })
    }

    /// Starts at the oldest record.
    pub fn from_start(dir: &Path) -> Follower {
        Follower {
            dir: dir.to_owned(),
            segment: None,
            offset: 0,
        }
    }

    /// The records written since the last call (complete lines only).
    pub fn poll(&mut self) -> Result<Vec<AuditRecord>, AuditError> {
        let mut found = Vec::new();
        loop {
            let segments = segment::list(&self.dir)?;
            let current = match self.segment {
                Some(index) => segments.iter().find(|s| s.index == index),
                None => segments.first(),
            };
            let next = segments
                .iter()
                .find(|s| self.segment.is_none_or(|i| s.index > i));
            let Some(current) = current.or(next) else {
                return Ok(found);
            };
            if self.segment != Some(current.index) {
                self.segment = Some(current.index);
                self.offset = 0;
            }
            self.read_new(&current.path, &mut found)?;
            // A newer segment exists: this one gets no more writes.
            match segments.iter().find(|s| s.index > current.index) {
                Some(newer) => {
                    self.segment = Some(newer.index);
                    self.offset = 0;
                }
                None => return Ok(found),
            }
        }
    }

    fn read_new(&mut self, path: &Path, found: &mut Vec<AuditRecord>) -> Result<(), AuditError> {
        let data = match read_from(path, self.offset) {
            Ok(data) => data,
            // Deleted by retention while we were behind.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(AuditError::io("read", path, e)),
        };
        for line in segment::lines(&data).filter(|l| l.complete) {
            let at = self.offset + line.offset;
            let record = record::parse_record(line.bytes)
                .map_err(|problem| AuditError::corrupt(path, at, problem))?;
            found.push(record);
        }
        let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        self.offset += complete as u64;
        Ok(())
    }
}

fn read_from(path: &Path, offset: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(data)
}

/// Length of `path` up to and including its last `\n`.
fn complete_len(path: &Path) -> Result<u64, AuditError> {
    let data = std::fs::read(path).map_err(|e| AuditError::io("read", path, e))?;
    Ok(data
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_names_match_by_type_and_name_or_name_alone() {
        assert!(matches_typed("User:alice", "User", "alice", false));
        assert!(matches_typed("alice", "User", "alice", false));
        assert!(!matches_typed("Group:alice", "User", "alice", false));
        assert!(matches_typed("Topic:phi.*", "Topic", "phi.labs", true));
        assert!(!matches_typed("Topic:phi.*", "Topic", "phi.labs", false));
        assert!(matches_typed("a:b", "Topic", "a:b", true));
    }
}
