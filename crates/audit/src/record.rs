//! The on-disk record: one CloudEvents 1.0 structured-mode JSON object per
//! line, chained to the previous record by SHA-256.
//!
//! A record line is `BODY,"audithash":"<64 hex>"}` followed by `\n`, where
//! `BODY` is the event serialized as JSON without its closing brace, and the
//! hash is SHA-256 over exactly the bytes of `BODY`. `BODY` holds the record's
//! sequence number (`sequence`) and the previous record's hash
//! (`auditprev`), so each hash covers the whole history before it. The line
//! stays one valid JSON object that `jq` or a SIEM shipper can read as is.
//!
//! The chain fields (`id`, `sequence`, `auditprev`) are written last, after
//! `data`: everything before them is serialized (by [`json`](crate::json))
//! and hashed on the appending caller's thread, and the log's single writer
//! only chains (see [`Prepared`]). Readers find fields by name, never by position, so
//! lines written before this order (chain fields first) read and verify the
//! same.
//!
//! Hashing the stored bytes, rather than a re-serialization, means a verifier
//! needs no canonical JSON: any change to any byte before the hash shows.

use jiff::Timestamp;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::event::{DecidedBy, DecisionEvent};
use crate::json;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `auditprev` of the first record ever written.
pub const GENESIS: Hash = [0; 32];

/// CloudEvents `type` of a decision record.
pub const DECISION_TYPE: &str = "dev.kafkapdp.audit.decision.v1";

/// CloudEvents `dataschema` of a decision record.
pub const DECISION_SCHEMA: &str = "urn:kafka-pdp:audit:decision:1";

const HASH_KEY: &[u8] = b",\"audithash\":\"";

/// One decision as read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: u64,
    /// CloudEvents `source`: which PDP wrote the record.
    pub source: String,
    pub event: DecisionEvent,
}

impl AuditRecord {
    /// The record as one JSON object for tools: `seq`, `source`, `time` and
    /// the `data` payload.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "seq": self.seq,
            "source": self.source,
            "time": self.event.time.to_string(),
        });
        // INVARIANT: the event is plain data; it always converts to JSON.
        let data = serde_json::to_value(&self.event).expect("an event converts to JSON");
        value["data"] = data;
        value
    }
}

/// One line for people: number, time, decision, who, what, on which
/// resource, from where, and why.
impl std::fmt::Display for AuditRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.event;
        let decision = match e.decision {
            crate::event::Decision::Allow => "ALLOW",
            crate::event::Decision::Deny => "DENY ",
        };
        write!(
            f,
            "{seq:>8} {time} {decision} {principal} {op} {resource}",
            seq = self.seq,
            time = e.time,
            principal = e.principal_string(),
            op = e.operation,
            resource = e.subject(),
        )?;
        if e.resource.pattern == crate::event::PatternType::Prefixed {
            f.write_str(" (prefixed)")?;
        }
        write!(f, " from {}", or_dash(&e.client.address))?;
        write!(
            f,
            " client={} api={}",
            or_dash(&e.client.id),
            or_dash(&e.request.api)
        )?;
        write!(
            f,
            " broker={} policies=[{}]",
            e.broker_id,
            e.policy.determining.join(",")
        )?;
        if !e.policy.errored.is_empty() {
            write!(f, " errored=[{}]", e.policy.errored.join(","))?;
        }
        match &e.decided_by {
            DecidedBy::Pdp => f.write_str(" by=pdp"),
            DecidedBy::ShimCache { count, .. } => write!(f, " by=shim-cache x{count}"),
            DecidedBy::ShimSuperUser { count, .. } => write!(f, " by=shim-super-user x{count}"),
        }
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The envelope as read.
#[derive(Deserialize)]
struct EnvelopeIn {
    source: String,
    time: Timestamp,
    sequence: String,
    data: DecisionEvent,
}

/// The chain fields of a record line, enough to verify it.
#[derive(Debug, Clone)]
pub(crate) struct LineHeader {
    pub seq: u64,
    pub prev: Hash,
    /// The hash written in the line.
    pub stored: Hash,
    /// The hash of the line's bytes; differs from `stored` if it was edited.
    pub computed: Hash,
}

#[derive(Deserialize)]
struct HeaderIn {
    sequence: String,
    auditprev: String,
}

/// The records of one append, serialized before they have a place in the
/// chain: each line up to its chain fields, and SHA-256 already run over
/// those bytes.
///
/// [`AuditLog::append`](crate::AuditLog::append) prepares records on the
/// caller's thread, many callers in parallel, so that the one writer thread
/// only has to [`chain`](Prepared::chain) them: a few dozen bytes and two or
/// three SHA-256 blocks per record instead of a whole serialization and hash.
pub(crate) struct Prepared {
    /// The bodies, one after the other.
    bytes: Vec<u8>,
    /// Where each body ends in `bytes`, and the hash state after it.
    records: Vec<(usize, Sha256)>,
}

impl Prepared {
    /// Serializes everything of the records of `events` that does not depend
    /// on their sequence numbers or predecessors.
    pub(crate) fn new(source: &str, events: &[DecisionEvent]) -> Prepared {
        let mut bytes = Vec::with_capacity(events.len() * 1024);
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let start = bytes.len();
            json::write_envelope(source, event, &mut bytes);
            records.push((bytes.len(), Sha256::new_with_prefix(&bytes[start..])));
        }
        Prepared { bytes, records }
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Appends the record lines as records `first_seq`, `first_seq + 1`, ...
    /// after a record hashed `prev` to `out`, and returns the last one's hash
    /// (`prev` when there are none).
    ///
    /// The chain fields come last, after `data`, so that the hash of
    /// everything before them is already computed; each line is still
    /// `BODY` + the `audithash` suffix, and its hash still covers every byte
    /// of `BODY`.
    pub(crate) fn chain(&self, first_seq: u64, prev: &Hash, out: &mut Vec<u8>) -> Hash {
        let mut hash = *prev;
        let mut start = 0;
        for (seq, (end, hasher)) in (first_seq..).zip(&self.records) {
            let line = out.len();
            out.extend_from_slice(&self.bytes[start..*end]);
            let fields = out.len();
            write_chain_fields(seq, &hash, out);
            let mut hasher = hasher.clone();
            hasher.update(&out[fields..]);
            hash = hasher.finalize().into();
            debug_assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(&out[line..])));
            out.extend_from_slice(HASH_KEY);
            push_hex(&hash, out);
            out.extend_from_slice(b"\"}\n");
            start = *end;
        }
        hash
    }
}

/// `,"id":"<seq>","sequence":"<seq>","auditprev":"<hex>"`; `sequence` is the
/// CloudEvents sequence extension, zero-padded to 20 digits so that string
/// order is numeric order.
fn write_chain_fields(seq: u64, prev: &Hash, out: &mut Vec<u8>) {
    use std::io::Write;
    // INVARIANT: writing into a Vec cannot fail.
    write!(
        out,
        ",\"id\":\"{seq}\",\"sequence\":\"{seq:020}\",\"auditprev\":\""
    )
    .expect("writing into a Vec");
    push_hex(prev, out);
    out.push(b'"');
}

/// Appends the record line for `event` to `out` and returns its hash: what
/// [`Prepared::new`] and [`Prepared::chain`] do, in one step.
#[cfg(test)]
pub(crate) fn encode(
    seq: u64,
    prev: &Hash,
    source: &str,
    event: &DecisionEvent,
    out: &mut Vec<u8>,
) -> Hash {
    Prepared::new(source, std::slice::from_ref(event)).chain(seq, prev, out)
}

/// Reads the chain fields of one line (without its `\n`).
pub(crate) fn parse_header(line: &[u8]) -> Result<LineHeader, String> {
    let (body, stored) = split_suffix(line, HASH_KEY, 64)?;
    let stored = hash_from_hex(stored).ok_or("`audithash` is not 64 hex digits")?;
    let header: HeaderIn =
        serde_json::from_slice(line).map_err(|e| format!("not a record: {e}"))?;
    let seq = parse_sequence(&header.sequence)?;
    let prev = hash_from_hex(header.auditprev.as_bytes()).ok_or("`auditprev` is not 64 hex")?;
    Ok(LineHeader {
        seq,
        prev,
        stored,
        computed: Sha256::digest(body).into(),
    })
}

/// Reads a whole record line (without its `\n`); the chain is not checked.
pub(crate) fn parse_record(line: &[u8]) -> Result<AuditRecord, String> {
    let envelope: EnvelopeIn =
        serde_json::from_slice(line).map_err(|e| format!("not a record: {e}"))?;
    let mut event = envelope.data;
    event.time = envelope.time;
    Ok(AuditRecord {
        seq: parse_sequence(&envelope.sequence)?,
        source: envelope.source,
        event,
    })
}

/// Splits `line` into the body and the hex value of a trailing
/// `key<hex_len hex digits>"}`.
pub(crate) fn split_suffix<'a>(
    line: &'a [u8],
    key: &[u8],
    hex_len: usize,
) -> Result<(&'a [u8], &'a [u8]), String> {
    let suffix_len = key.len() + hex_len + 2;
    let key_name = String::from_utf8_lossy(&key[2..key.len() - 3]).into_owned();
    if line.len() < suffix_len + 1 || !line.ends_with(b"\"}") {
        return Err(format!("line does not end with `{key_name}`"));
    }
    let (body, suffix) = line.split_at(line.len() - suffix_len);
    if !suffix.starts_with(key) {
        return Err(format!("line does not end with `{key_name}`"));
    }
    Ok((body, &suffix[key.len()..key.len() + hex_len]))
}

fn parse_sequence(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("`sequence` is not a number: `{text}`"))
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX_DIGITS[usize::from(b >> 4)] as char);
        s.push(HEX_DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Appends lowercase hex of `bytes` to `out`.
fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    for b in bytes {
        out.push(HEX_DIGITS[usize::from(b >> 4)]);
        out.push(HEX_DIGITS[usize::from(b & 0xf)]);
    }
}

pub(crate) fn from_hex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    if hex.len() != out.len() * 2 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(())
}

pub(crate) fn hash_from_hex(hex: &[u8]) -> Option<Hash> {
    let mut hash = [0; 32];
    from_hex(hex, &mut hash)?;
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;

    pub(crate) fn event() -> DecisionEvent {
        DecisionEvent {
            time: "2026-01-02T03:04:05.123456789Z".parse().unwrap(),
            schema: SCHEMA_VERSION,
            decision: Decision::Allow,
            principal: Principal {
                kind: "User".into(),
                name: "alice".into(),
            },
            operation: "Read".into(),
            resource: Resource {
                kind: "Topic".into(),
                name: "payments.eu".into(),
                pattern: PatternType::Literal,
            },
            client: Client {
                address: "10.0.0.7".into(),
                id: "console-consumer".into(),
            },
            listener: "SASL_SSL".into(),
            security_protocol: "SASL_SSL".into(),
            request: RequestInfo {
                api: "FETCH".into(),
                api_version: 17,
                correlation_id: 9,
            },
            broker_id: 1,
            policy: PolicyRef {
                version: "v1".into(),
                determining: vec!["consumers".into()],
                errored: vec![],
            },
            decided_by: DecidedBy::Pdp,
            log_if_allowed: false,
            log_if_denied: true,
        }
    }

    #[test]
    fn a_line_is_one_json_object_whose_hash_covers_its_body() {
        let mut out = Vec::new();
        let hash = encode(7, &GENESIS, "pdp-a", &event(), &mut out);

        assert_eq!(out.last(), Some(&b'\n'));
        let line = &out[..out.len() - 1];
        let value: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(value["specversion"], "1.0");
        assert_eq!(value["sequence"], "00000000000000000007");
        assert_eq!(value["data"]["resource"]["name"], "payments.eu");
        assert_eq!(value["data"]["decided_by"]["by"], "pdp");

        let header = parse_header(line).unwrap();
        assert_eq!(
            (header.seq, header.stored, header.computed),
            (7, hash, hash)
        );
        assert!(line.ends_with(format!(",\"audithash\":\"{}\"}}", to_hex(&hash)).as_bytes()));
    }

    #[test]
    fn a_record_reads_as_one_line_for_people() {
        let record = AuditRecord {
            seq: 42,
            source: "pdp-a".into(),
            event: event(),
        };
        assert_eq!(
            record.to_string(),
            "      42 2026-01-02T03:04:05.123456789Z ALLOW User:alice Read \
             Topic:payments.eu from 10.0.0.7 client=console-consumer api=FETCH \
             broker=1 policies=[consumers] by=pdp"
        );
        assert_eq!(record.to_json()["data"]["principal"]["name"], "alice");
        assert_eq!(record.to_json()["time"], "2026-01-02T03:04:05.123456789Z");
    }

    #[test]
    fn a_record_reads_back_equal() {
        let mut out = Vec::new();
        encode(1, &GENESIS, "pdp-a", &event(), &mut out);
        let record = parse_record(&out[..out.len() - 1]).unwrap();
        assert_eq!(record.event, event());
        assert_eq!(record.seq, 1);
    }

    /// Lines written before the chain fields moved behind `data` put them
    /// right after `specversion`; they read and check the same.
    #[test]
    fn a_line_with_the_chain_fields_first_reads_and_checks_the_same() {
        let mut out = Vec::new();
        encode(3, &[9; 32], "pdp-a", &event(), &mut out);
        let line = std::str::from_utf8(&out[..out.len() - 1]).unwrap();
        let (body, _) = line.rsplit_once(",\"audithash\"").unwrap();
        let at = body.rfind(",\"id\":").unwrap();
        let (head, chain_fields) = body.split_at(at);
        let old_body = head.replacen(
            "{\"specversion\":\"1.0\"",
            &format!("{{\"specversion\":\"1.0\"{chain_fields}"),
            1,
        );
        let hash = to_hex(&Sha256::digest(old_body.as_bytes()));
        let old_line = format!("{old_body},\"audithash\":\"{hash}\"}}");

        let header = parse_header(old_line.as_bytes()).unwrap();
        assert_eq!((header.seq, header.prev), (3, [9; 32]));
        assert_eq!(header.stored, header.computed);
        let record = parse_record(old_line.as_bytes()).unwrap();
        assert_eq!((record.seq, record.event), (3, event()));
    }

    /// The example in `SCHEMA.md` is a line this crate reads and checks.
    #[test]
    fn the_documented_example_line_checks() {
        let schema = include_str!("../SCHEMA.md");
        let line = schema
            .lines()
            .find(|l| l.starts_with("{\"specversion\"") && l.contains(DECISION_TYPE))
            .unwrap();
        let header = parse_header(line.as_bytes()).unwrap();
        assert_eq!((header.seq, header.prev), (1, GENESIS));
        assert_eq!(header.stored, header.computed);
        assert_eq!(
            parse_record(line.as_bytes()).unwrap().event.principal.name,
            "svc-1"
        );
    }

    #[test]
    fn an_edited_byte_changes_the_computed_hash() {
        let mut out = Vec::new();
        encode(1, &GENESIS, "pdp-a", &event(), &mut out);
        let at = out.windows(5).position(|w| w == b"alice").unwrap();
        out[at] = b'A';
        let header = parse_header(&out[..out.len() - 1]).unwrap();
        assert_ne!(header.stored, header.computed);
    }
}
