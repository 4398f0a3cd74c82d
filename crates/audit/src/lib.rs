//! The audit trail: decision events, the chained local log, sinks and verification.
