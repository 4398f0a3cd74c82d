//! `serve --audit-source`, `--audit-segment-*`, `--audit-retention-days`,
//! `--audit-checkpoint-every`: the shape of the local trail. The defaults are
//! the audit crate's, and the retention default is HIPAA's six years.

use std::time::Duration;

use kafka_pdp_audit::{
    DEFAULT_CHECKPOINT_EVERY, DEFAULT_MAX_SEGMENT_AGE, DEFAULT_MAX_SEGMENT_BYTES, DEFAULT_RETENTION,
};
use kafka_pdp_server::audit::LogSettings;

const MIB: u64 = 1024 * 1024;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// The local trail's flags; they take effect only with `--audit-dir`.
#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// CloudEvents `source` of every record: names this PDP. Replicas that
    /// feed one SIEM need distinct names.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "kafka-pdp",
        requires = "audit_dir"
    )]
    audit_source: String,

    /// A segment file is closed once it reaches this many MiB.
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = DEFAULT_MAX_SEGMENT_BYTES / MIB,
        value_parser = clap::value_parser!(u64).range(1..),
        requires = "audit_dir"
    )]
    audit_segment_max_mib: u64,

    /// A segment file is closed once it has been open this many hours.
    #[arg(
        long,
        value_name = "HOURS",
        default_value_t = DEFAULT_MAX_SEGMENT_AGE.as_secs() / HOUR,
        value_parser = clap::value_parser!(u64).range(1..),
        requires = "audit_dir"
    )]
    audit_segment_max_age_hours: u64,

    /// Closed segments older than this many days are deleted; 0 keeps every
    /// segment. The default is six years, HIPAA's retention for compliance
    /// documentation.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = DEFAULT_RETENTION.as_secs() / DAY,
        requires = "audit_dir"
    )]
    audit_retention_days: u64,

    /// A signed checkpoint is written after this many records (and at every
    /// rotation and shutdown).
    #[arg(
        long,
        value_name = "RECORDS",
        default_value_t = DEFAULT_CHECKPOINT_EVERY,
        value_parser = clap::value_parser!(u64).range(1..),
        requires = "audit_dir"
    )]
    audit_checkpoint_every: u64,
}

impl LogArgs {
    pub fn settings(&self) -> LogSettings {
        LogSettings {
            source: self.audit_source.clone(),
            max_segment_bytes: self.audit_segment_max_mib.saturating_mul(MIB),
            max_segment_age: Duration::from_secs(
                self.audit_segment_max_age_hours.saturating_mul(HOUR),
            ),
            retention: (self.audit_retention_days > 0)
                .then(|| Duration::from_secs(self.audit_retention_days.saturating_mul(DAY))),
            checkpoint_every: self.audit_checkpoint_every,
        }
    }
}
