//! Counters of fail-closed denials, by reason.
//!
//! A DENY that the policies did not decide (bad input, an evaluation error)
//! is counted here, so an operator can tell "the policies said no"
//! from "the PDP could not say yes". Kept to plain atomics: `Status` reads them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a request was denied without a policy deciding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailClosed {
    /// The request was malformed; every action of it counts as denied.
    InvalidRequest,
    /// A policy raised an evaluation error and no other policy allowed.
    EvaluationError,
    /// The audit trail could not record the decision (a full disk, an I/O
    /// error); every action of the call counts as denied.
    AuditUnavailable,
}

/// The counters, one per reason.
#[derive(Debug, Default)]
pub struct Metrics {
    invalid_request: AtomicU64,
    evaluation_error: AtomicU64,
    audit_unavailable: AtomicU64,
    decisions: AtomicU64,
    cache_hits: AtomicU64,
    allowed: AtomicU64,
    denied: AtomicU64,
    /// Decisions shims answered from their caches and reported, unfolded.
    reported_allowed: AtomicU64,
    reported_denied: AtomicU64,
}

impl Metrics {
    pub fn fail_closed(&self, reason: FailClosed, n: u64) {
        self.counter(reason).fetch_add(n, Relaxed);
    }

    pub fn fail_closed_count(&self, reason: FailClosed) -> u64 {
        self.counter(reason).load(Relaxed)
    }

    pub fn decided(&self, n: u64, cache_hits: u64) {
        self.decisions.fetch_add(n, Relaxed);
        self.cache_hits.fetch_add(cache_hits, Relaxed);
    }

    /// Decisions made and how many of them came from the cache.
    pub fn decisions(&self) -> (u64, u64) {
        (self.decisions.load(Relaxed), self.cache_hits.load(Relaxed))
    }

    /// Counts the outcomes of decisions as they were answered.
    pub fn outcomes(&self, allowed: u64, denied: u64) {
        self.allowed.fetch_add(allowed, Relaxed);
        self.denied.fetch_add(denied, Relaxed);
    }

    /// Decisions answered `(ALLOW, DENY)`, fail-closed ones among the denials.
    pub fn outcome_counts(&self) -> (u64, u64) {
        (self.allowed.load(Relaxed), self.denied.load(Relaxed))
    }

    /// Counts `count` decisions a shim answered from its cache.
    pub fn reported(&self, allowed: bool, count: u64) {
        let counter = match allowed {
            true => &self.reported_allowed,
            false => &self.reported_denied,
        };
        counter.fetch_add(count, Relaxed);
    }

    /// Decisions shims reported from their caches, `(ALLOW, DENY)`.
    pub fn reported_counts(&self) -> (u64, u64) {
        let allowed = self.reported_allowed.load(Relaxed);
        (allowed, self.reported_denied.load(Relaxed))
    }

    fn counter(&self, reason: FailClosed) -> &AtomicU64 {
        match reason {
            FailClosed::InvalidRequest => &self.invalid_request,
            FailClosed::EvaluationError => &self.evaluation_error,
            FailClosed::AuditUnavailable => &self.audit_unavailable,
        }
    }
}

// Known shortcoming: a call cut off by the server's request timeout is
// answered CANCELLED by tonic's timeout layer and not counted here; the broker
// shim counts it as a fail-closed DENY on its side.
