//! Ships the local audit trail to sinks beyond one machine.
//!
//! The local chained log (crate `kafka-pdp-audit`) is the spool: every
//! decision is durable there before the PDP answers. An exporter tails the
//! log directory from a persisted [`Cursor`] (the last sequence number a sink
//! confirmed), ships each stored record line unchanged, and moves the cursor
//! only after delivery is confirmed. Delivery is therefore at-least-once:
//! after a crash or a sink outage a few records may arrive twice, never zero
//! times, and their sequence numbers let a consumer find duplicates and gaps.
//!
//! - [`exporter`]: the loop every sink shares (cursor, batches, backoff, lag).
//! - [`kafka`]: the Kafka topic sink (librdkafka, SASL and TLS from a
//!   properties file).
//! - [`otlp`]: the OpenTelemetry logs sink (OTLP over gRPC; `https://` with
//!   a CA file, optionally mutual TLS, or `http://` to loopback only).
//! - [`Gate`]: the lag gauge and the "over bound" flag the decision path
//!   checks: past [`DEFAULT_MAX_LAG`] undelivered records the PDP must deny
//!   until the sink catches up (fail closed, like a full disk).
//!
//! The records are PHI metadata (who read which patient topic), so neither
//! sink sends them in clear text beyond the host, and no secret of a sink's
//! configuration (a SASL password, a key) reaches a log or an error.
//!
//! Known shortcoming: only records are shipped, not the signed checkpoints;
//! a consumer off the host can follow the hash chain but cannot check its
//! signatures without the local log.

mod cursor;
mod error;
pub mod exporter;
pub mod kafka;
pub mod otlp;
mod tail;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub use cursor::Cursor;
pub use error::{ExportError, TlsFile};
pub use exporter::{Exporter, Sink};
pub use tail::{head_seq, RawRecord, Tail};

/// Undelivered records past which a sink is "over bound" and the PDP denies
/// new decisions. At about 1 KiB a record this is 100 MiB of spool, minutes
/// of a busy cluster's decisions: room for a broker restart or a short
/// network partition, not for an outage nobody notices.
pub const DEFAULT_MAX_LAG: u64 = 100_000;

/// `localhost`, or an address in 127.0.0.0/8 or `::1` (brackets allowed):
/// the only hosts a sink may reach without TLS.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A sink's lag and bound, shared between its exporter task, the decision
/// path and the metrics. Plain atomics: the decision path reads one flag.
#[derive(Debug)]
pub struct Gate {
    max_lag: u64,
    lag: AtomicU64,
    over: AtomicBool,
    delivered: AtomicU64,
    failed_batches: AtomicU64,
    denied: AtomicU64,
}

/// A snapshot of a [`Gate`] for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Records in the local log not yet confirmed by the sink.
    pub lag: u64,
    pub max_lag: u64,
    pub over_bound: bool,
    /// Records confirmed since start.
    pub delivered: u64,
    /// Batches that failed and were retried.
    pub failed_batches: u64,
    /// Decisions denied because the sink was over bound.
    pub denied: u64,
}

impl Gate {
    pub fn new(max_lag: u64) -> Gate {
        Gate {
            max_lag,
            lag: AtomicU64::new(0),
            over: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        }
    }

    /// True while the sink is more than `max_lag` records behind: the
    /// decision path must answer DENY and call [`Gate::count_denied`].
    pub fn over_bound(&self) -> bool {
        self.over.load(Relaxed)
    }

    /// Counts `n` decisions denied because of [`Gate::over_bound`].
    pub fn count_denied(&self, n: u64) {
        self.denied.fetch_add(n, Relaxed);
    }

    pub fn stats(&self) -> ExportStats {
        ExportStats {
            lag: self.lag.load(Relaxed),
            max_lag: self.max_lag,
            over_bound: self.over_bound(),
            delivered: self.delivered.load(Relaxed),
            failed_batches: self.failed_batches.load(Relaxed),
            denied: self.denied.load(Relaxed),
        }
    }

    /// Sets the lag; returns true when the bound state changed.
    fn set_lag(&self, lag: u64) -> bool {
        self.lag.store(lag, Relaxed);
        let over = lag > self.max_lag;
        self.over.swap(over, Relaxed) != over
    }

    fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Relaxed);
    }

    fn failed_batch(&self) {
        self.failed_batches.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_is_over_bound_only_past_the_maximum_lag() {
        let gate = Gate::new(10);
        assert!(!gate.set_lag(10));
        assert!(!gate.over_bound());
        assert!(gate.set_lag(11), "crossing the bound is a change");
        assert!(gate.over_bound());
        assert!(!gate.set_lag(12));
        assert!(gate.set_lag(0));
        assert_eq!(gate.stats().lag, 0);
        assert!(!gate.stats().over_bound);
    }
}
