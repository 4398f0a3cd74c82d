//! The audit trail: one tamper-evident record per authorization decision.
//!
//! - [`event`]: what a record says ([`DecisionEvent`], schema version
//!   [`SCHEMA_VERSION`]).
//! - [`record`]: how it is stored: one CloudEvents 1.0 JSON object per line,
//!   each chained to the one before by SHA-256.
//! - [`checkpoint`]: Ed25519-signed statements of the chain head.
//! - [`AuditLog`]: the embedded sink; group commit with `fdatasync`,
//!   rotation, retention, crash recovery.
//! - [`verify()`]: reads a log and names every edited, deleted, reordered or
//!   truncated record.
//! - [`query()`] and [`Follower`]: reading for people.
//!
//! # Why CloudEvents
//!
//! The envelope is CloudEvents 1.0 in structured JSON mode: a small, stable
//! CNCF specification with `id`, `source`, `type`, `time` and `subject`
//! attributes that SIEM shippers (Elastic, Splunk, Azure Event Grid, Knative
//! brokers) read as is, and one JSON object per line that `jq` reads too.
//! OCSF was the other candidate. Its closest classes fit poorly: Authorize
//! Session (3003) describes privileges granted to a new session, not a
//! per-request decision; API Activity (6003) describes calls to an API rather
//! than the authorization of an operation on a resource. Mapping our event
//! into OCSF also drags in its large required-field set. `SCHEMA.md`
//! documents the fields and how they map onto OCSF API Activity for a SIEM
//! that wants it; an OCSF exporter can be a sink later without touching the
//! stored format.
//!
//! The decision path must treat every [`AuditError`] as "not audited" and
//! answer DENY.

pub mod checkpoint;
mod error;
pub mod event;
mod json;
mod log;
mod query;
pub mod record;
mod segment;
pub mod storage;
mod verify;

pub use error::AuditError;
pub use event::{
    Client, DecidedBy, Decision, DecisionEvent, PatternType, PolicyRef, Principal, RequestInfo,
    Resource, SCHEMA_VERSION,
};
/// Decision times are `jiff` timestamps; re-exported so callers need no
/// dependency of their own.
pub use jiff::Timestamp;
pub use log::{
    AuditConfig, AuditLog, AuditStats, OpenReport, Receipt, DEFAULT_CHECKPOINT_EVERY,
    DEFAULT_MAX_BATCH_EVENTS, DEFAULT_MAX_SEGMENT_AGE, DEFAULT_MAX_SEGMENT_BYTES,
    DEFAULT_QUEUE_DEPTH, DEFAULT_RETENTION,
};
pub use query::{last_records, query, Filter, Follower, Query};
pub use record::AuditRecord;
pub use verify::{verify, Finding, Location, VerifyReport, REORDER_WINDOW};
