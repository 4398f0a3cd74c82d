//! Alerts on the decision stream: repeated denials of one principal, and a
//! sudden rise in reads of PHI topics.
//!
//! Every decision the PDP returns (and every decision a shim reports from
//! its cache, with its fold count) passes through [`Alerts::observe`],
//! except a fail-closed DENY (an evaluation error, the audit trail down or
//! behind): that one says nothing about the principal, and
//! `kafka_pdp_fail_closed_total` counts it. An
//! alert is a WARN event with target `kafka_pdp::alert`, a count in
//! `kafka_pdp_alerts_total{rule}`, and an entry in a short list of recent
//! alerts. It carries names and figures only: the rule, the principal or the
//! configured topic prefix, the count, the window and the threshold; never a
//! topic name or anything read from a message.
//!
//! # Repeated denials ([`Rule::PrincipalDenials`])
//!
//! Per principal, a sliding-window counter with two buckets of one window
//! each: `current` counts the denials since the bucket started at `start`,
//! `previous` those of the bucket before. At time `t` the estimate of the
//! denials in the last window is
//!
//! ```text
//! estimate = current + previous * (window - (t - start)) / window
//! ```
//!
//! which assumes the previous bucket's denials were spread evenly. The rule
//! holds while `estimate >= denials_threshold`. Unlike a fixed window, a
//! burst that straddles a bucket boundary is still seen whole.
//!
//! # A rise in PHI reads ([`Rule::PhiReadRise`])
//!
//! Per configured prefix (`phi.` by default), allowed `Read`s of topics
//! whose name starts with it are counted in fixed windows. The baseline is
//! the mean of the last `baseline_windows` completed windows (windows with
//! no reads count as 0). The rule holds while the current window's count
//!
//! ```text
//! count > factor * baseline   and   count >= min_reads
//! ```
//!
//! so the threshold is `max(min_reads, floor(factor * baseline) + 1)`. Until
//! one window has completed there is no baseline and the rule stays quiet.
//! A sustained rise becomes the new baseline after about `baseline_windows`
//! windows; that is the point of a moving average. Denied reads are left to
//! the denial rule.
//!
//! # Episodes and cooldown
//!
//! An episode starts when a rule starts to hold for a principal or prefix,
//! and ends when it is next seen not to hold (for PHI reads: at the end of a
//! window that stayed under its threshold). An alert fires once, when an
//! episode starts, unless the same rule fired for the same subject less than
//! `cooldown` ago; then that episode passes silently.
//!
//! # Bounded memory
//!
//! Only denials create per-principal state, and at most `max_principals`
//! entries are kept. When the map is full, idle entries (no denial for two
//! windows, no alert within the cooldown) are swept, at most once a second;
//! if it is still full, the new principal is not tracked and its denials
//! are counted in `kafka_pdp_alert_untracked_denials_total`.
//!
//! # Known shortcomings
//!
//! - A client that sprays denials across more than `max_principals`
//!   distinct principals within two windows fills the map, and the denials
//!   of principals seen after that are counted but not alerted on, until
//!   the sweep frees entries.
//! - The state is in memory and per PDP: a restart forgets the counts and
//!   the PHI baseline (no PHI alert until a window has passed), and with
//!   several replicas each sees only its share of a principal's denials.

use std::{
    collections::VecDeque,
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use dashmap::DashMap;
use kafka_pdp_core::{Action, Operation, PatternType, Principal, ResourceType};

/// Denials of one principal within [`DEFAULT_DENIALS_WINDOW`] that raise an alert.
pub const DEFAULT_DENIALS_THRESHOLD: u64 = 20;

/// The window of the denial rule.
pub const DEFAULT_DENIALS_WINDOW: Duration = Duration::from_secs(60);

/// Topic prefix whose reads are watched when none is configured.
pub const DEFAULT_PHI_PREFIX: &str = "phi.";

/// The window PHI reads are counted in.
pub const DEFAULT_PHI_WINDOW: Duration = Duration::from_secs(60);

/// Completed windows the PHI read baseline is the mean of.
pub const DEFAULT_PHI_BASELINE_WINDOWS: usize = 10;

/// How many times the baseline a window's PHI reads must exceed.
pub const DEFAULT_PHI_FACTOR: f64 = 3.0;

/// Fewest PHI reads in a window that can raise an alert, whatever the baseline.
pub const DEFAULT_PHI_MIN_READS: u64 = 100;

/// Least time between two alerts of one rule for one subject.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);

/// Most principals whose denials are tracked at once.
pub const DEFAULT_MAX_PRINCIPALS: usize = 10_000;

/// Alerts kept for `recent`; older ones are dropped.
pub const RECENT_ALERTS: usize = 64;

/// Least time between two sweeps of idle principals.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The thresholds, from `serve --alert-*`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertConfig {
    /// Denials of one principal within `denials_window` that raise an
    /// alert; 0 turns the rule off.
    pub denials_threshold: u64,
    pub denials_window: Duration,
    /// Topic prefixes whose reads are watched; empty turns the rule off.
    pub phi_prefixes: Vec<String>,
    pub phi_window: Duration,
    pub phi_baseline_windows: usize,
    pub phi_factor: f64,
    pub phi_min_reads: u64,
    pub cooldown: Duration,
    pub max_principals: usize,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            denials_threshold: DEFAULT_DENIALS_THRESHOLD,
            denials_window: DEFAULT_DENIALS_WINDOW,
            phi_prefixes: vec![DEFAULT_PHI_PREFIX.to_owned()],
            phi_window: DEFAULT_PHI_WINDOW,
            phi_baseline_windows: DEFAULT_PHI_BASELINE_WINDOWS,
            phi_factor: DEFAULT_PHI_FACTOR,
            phi_min_reads: DEFAULT_PHI_MIN_READS,
            cooldown: DEFAULT_COOLDOWN,
            max_principals: DEFAULT_MAX_PRINCIPALS,
        }
    }
}

/// A configuration the rules cannot work with.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AlertConfigError {
    #[error("alert window `{0}` must be longer than zero")]
    ZeroWindow(&'static str),
    #[error("`phi_baseline_windows` must be at least 1")]
    NoBaseline,
    #[error("`phi_factor` must be a finite number of at least 1, not `{0}`")]
    Factor(f64),
    #[error("a PHI topic prefix must not be empty")]
    EmptyPrefix,
}

impl AlertConfig {
    /// Checks the figures the math divides by or compares against.
    pub fn validate(&self) -> Result<(), AlertConfigError> {
        if self.denials_window.is_zero() {
            return Err(AlertConfigError::ZeroWindow("denials_window"));
        }
        if self.phi_window.is_zero() {
            return Err(AlertConfigError::ZeroWindow("phi_window"));
        }
        if self.phi_baseline_windows == 0 {
            return Err(AlertConfigError::NoBaseline);
        }
        if !self.phi_factor.is_finite() || self.phi_factor < 1.0 {
            return Err(AlertConfigError::Factor(self.phi_factor));
        }
        if self.phi_prefixes.iter().any(String::is_empty) {
            return Err(AlertConfigError::EmptyPrefix);
        }
        Ok(())
    }
}

/// Which rule fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    PrincipalDenials,
    PhiReadRise,
}

impl Rule {
    pub const ALL: [Rule; 2] = [Rule::PrincipalDenials, Rule::PhiReadRise];

    /// The `rule` label and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::PrincipalDenials => "principal_denials",
            Rule::PhiReadRise => "phi_read_rise",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert, as logged and kept in [`Alerts::recent`].
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub rule: Rule,
    /// The principal (`User:alice`) or the topic prefix (`phi.`).
    pub subject: String,
    /// Denials in the window, or PHI reads in the current window.
    pub count: u64,
    pub window: Duration,
    pub threshold: u64,
    pub at: SystemTime,
}

/// The rules' state; one per PDP.
#[derive(Debug)]
pub struct Alerts {
    config: AlertConfig,
    /// Window numbers of the PHI rule count from here.
    origin: Instant,
    principals: DashMap<String, Denials>,
    last_sweep: Mutex<Instant>,
    phi: Vec<PhiReads>,
    fired: [AtomicU64; Rule::ALL.len()],
    untracked_denials: AtomicU64,
    recent: Mutex<VecDeque<Alert>>,
}

impl Default for Alerts {
    fn default() -> Self {
        Self::new(AlertConfig::default())
    }
}

impl Alerts {
    /// Call [`AlertConfig::validate`] first: a zero window here is read as
    /// one nanosecond.
    pub fn new(config: AlertConfig) -> Self {
        Self::starting_at(config, Instant::now())
    }

    fn starting_at(config: AlertConfig, origin: Instant) -> Self {
        let history = config.phi_baseline_windows.max(1);
        let phi = config
            .phi_prefixes
            .iter()
            .map(|prefix| PhiReads::new(prefix.clone(), history))
            .collect();
        Self {
            config,
            origin,
            principals: DashMap::new(),
            last_sweep: Mutex::new(origin),
            phi,
            fired: Default::default(),
            untracked_denials: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_ALERTS)),
        }
    }

    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Feeds one decision (or `count` identical ones, folded by a shim)
    /// to the rules. Cheap for the common case: an allow of a non-PHI
    /// resource is a few comparisons.
    pub fn observe(&self, principal: &Principal, action: &Action, allowed: bool, count: u64) {
        self.observe_with(Instant::now, principal, action, allowed, count);
    }

    /// The clock is read only once a rule has something to count: reading
    /// it costs more than deciding that an allow is of no interest.
    fn observe_with(
        &self,
        now: impl FnOnce() -> Instant,
        principal: &Principal,
        action: &Action,
        allowed: bool,
        count: u64,
    ) {
        if count == 0 {
            return;
        }
        if !allowed {
            if self.config.denials_threshold > 0 {
                self.denied(now(), principal.entity_id(), count);
            }
            return;
        }
        if !is_read_of_one_topic(action) {
            return;
        }
        let topic = action.resource_name();
        if let Some(phi) = self.phi.iter().find(|p| topic.starts_with(&p.prefix)) {
            self.read(now(), phi, count);
        }
    }

    /// Alerts fired since start, by rule.
    pub fn fired(&self, rule: Rule) -> u64 {
        self.fired[rule as usize].load(Relaxed)
    }

    /// Denials of principals the full map could not track.
    pub fn untracked_denials(&self) -> u64 {
        self.untracked_denials.load(Relaxed)
    }

    /// Principals whose denials are being tracked.
    pub fn tracked_principals(&self) -> usize {
        self.principals.len()
    }

    /// The last [`RECENT_ALERTS`] alerts, oldest first.
    ///
    /// Known shortcoming: `Status` does not carry them yet (the contract has
    /// no field for them); the WARN lines and the metrics do.
    pub fn recent(&self) -> Vec<Alert> {
        lock(&self.recent).iter().cloned().collect()
    }

    fn denied(&self, now: Instant, principal: &str, count: u64) {
        let threshold = self.config.denials_threshold;
        let (window, cooldown) = (self.config.denials_window, self.config.cooldown);
        // The shard guard is dropped before alerting (which logs and locks).
        let estimate = match self.principals.get_mut(principal) {
            Some(mut denials) => denials.add(now, count, window, threshold, cooldown),
            None if self.admit(now) => self
                .principals
                .entry(principal.to_owned())
                .or_insert_with(|| Denials::new(now))
                .add(now, count, window, threshold, cooldown),
            None => {
                self.untracked_denials.fetch_add(count, Relaxed);
                return;
            }
        };
        if let Some(estimate) = estimate {
            self.fire(Alert {
                rule: Rule::PrincipalDenials,
                subject: principal.to_owned(),
                count: estimate,
                window,
                threshold,
                at: SystemTime::now(),
            });
        }
    }

    /// Whether a new principal may be tracked: below the cap, or below it
    /// after sweeping idle entries (at most once per [`SWEEP_INTERVAL`]).
    fn admit(&self, now: Instant) -> bool {
        if self.principals.len() < self.config.max_principals {
            return true;
        }
        {
            let mut last = lock(&self.last_sweep);
            if now.saturating_duration_since(*last) < SWEEP_INTERVAL {
                return false;
            }
            *last = now;
        }
        let (window, cooldown) = (self.config.denials_window, self.config.cooldown);
        self.principals
            .retain(|_, denials| !denials.idle(now, window, cooldown));
        self.principals.len() < self.config.max_principals
    }

    fn read(&self, now: Instant, phi: &PhiReads, count: u64) {
        let window = self.config.phi_window;
        let index = window_index(now.saturating_duration_since(self.origin), window);
        let fired = lock(&phi.state).add(index, count, &self.config, now);
        if let Some((count, threshold)) = fired {
            self.fire(Alert {
                rule: Rule::PhiReadRise,
                subject: phi.prefix.clone(),
                count,
                window,
                threshold,
                at: SystemTime::now(),
            });
        }
    }

    fn fire(&self, alert: Alert) {
        self.fired[alert.rule as usize].fetch_add(1, Relaxed);
        let window_secs = alert.window.as_secs();
        match alert.rule {
            Rule::PrincipalDenials => tracing::warn!(
                target: "kafka_pdp::alert",
                rule = %alert.rule,
                principal = %alert.subject,
                count = alert.count,
                window_secs,
                threshold = alert.threshold,
                "alert: repeated denials of one principal"
            ),
            Rule::PhiReadRise => tracing::warn!(
                target: "kafka_pdp::alert",
                rule = %alert.rule,
                prefix = %alert.subject,
                count = alert.count,
                window_secs,
                threshold = alert.threshold,
                "alert: sudden rise in reads of PHI topics"
            ),
        }
        let mut recent = lock(&self.recent);
        if recent.len() == RECENT_ALERTS {
            recent.pop_front();
        }
        recent.push_back(alert);
    }
}

/// Only Kafka's own checks name one topic: a by-resource-type question
/// (a prefixed pattern) is not a read of data.
fn is_read_of_one_topic(action: &Action) -> bool {
    action.operation() == Operation::Read
        && action.resource_type() == ResourceType::Topic
        && action.pattern_type() == PatternType::Literal
}

/// A poisoned lock only means another thread panicked while counting; the
/// figures are still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn window_index(elapsed: Duration, window: Duration) -> u64 {
    let window = window.as_nanos().max(1);
    u64::try_from(elapsed.as_nanos() / window).unwrap_or(u64::MAX)
}

/// One episode-and-cooldown tracker, shared by both rules.
#[derive(Debug, Default)]
struct Episode {
    holding: bool,
    last_fired: Option<Instant>,
}

impl Episode {
    /// Records whether the rule holds now; true when an alert must fire.
    fn update(&mut self, holds: bool, now: Instant, cooldown: Duration) -> bool {
        if !holds {
            self.holding = false;
            return false;
        }
        self.hold(now, cooldown)
    }

    /// The rule holds now: starts an episode unless one is going on. True
    /// when an alert must fire (a new episode, out of the cooldown).
    fn hold(&mut self, now: Instant, cooldown: Duration) -> bool {
        if self.holding {
            return false;
        }
        self.holding = true;
        let cooled = !self.cooling(now, cooldown);
        if cooled {
            self.last_fired = Some(now);
        }
        cooled
    }

    fn cooling(&self, now: Instant, cooldown: Duration) -> bool {
        self.last_fired
            .is_some_and(|at| now.saturating_duration_since(at) < cooldown)
    }
}

// === impl Denials ===

/// The sliding-window counter of one principal's denials.
#[derive(Debug)]
struct Denials {
    start: Instant,
    current: u64,
    previous: u64,
    last_seen: Instant,
    episode: Episode,
}

impl Denials {
    fn new(now: Instant) -> Self {
        Self {
            start: now,
            current: 0,
            previous: 0,
            last_seen: now,
            episode: Episode::default(),
        }
    }

    /// Adds `count` denials at `now`; returns the estimate when an alert
    /// must fire.
    fn add(
        &mut self,
        now: Instant,
        count: u64,
        window: Duration,
        threshold: u64,
        cooldown: Duration,
    ) -> Option<u64> {
        self.advance(now, window);
        self.current = self.current.saturating_add(count);
        self.last_seen = now;
        let estimate = self.estimate(now, window);
        let holds = estimate >= threshold;
        self.episode
            .update(holds, now, cooldown)
            .then_some(estimate)
    }

    /// Moves the buckets forward so that `now` falls in the current one.
    fn advance(&mut self, now: Instant, window: Duration) {
        let elapsed = now.saturating_duration_since(self.start);
        match window_index(elapsed, window) {
            0 => {}
            1 => {
                self.previous = self.current;
                self.current = 0;
                self.start += window;
            }
            buckets => {
                self.previous = 0;
                self.current = 0;
                let skipped = u32::try_from(buckets).unwrap_or(u32::MAX);
                self.start += window.saturating_mul(skipped);
            }
        }
    }

    fn estimate(&self, now: Instant, window: Duration) -> u64 {
        let window = window.as_nanos().max(1);
        let into = now
            .saturating_duration_since(self.start)
            .as_nanos()
            .min(window);
        let carried = u128::from(self.previous) * (window - into) / window;
        self.current
            .saturating_add(u64::try_from(carried).unwrap_or(u64::MAX))
    }

    /// Nothing left to count and no cooldown to remember.
    fn idle(&self, now: Instant, window: Duration, cooldown: Duration) -> bool {
        let quiet = now.saturating_duration_since(self.last_seen) >= window * 2;
        quiet && !self.episode.cooling(now, cooldown)
    }
}

// === impl PhiReads ===

/// The reads of one PHI prefix.
#[derive(Debug)]
struct PhiReads {
    prefix: String,
    state: Mutex<PhiWindows>,
}

impl PhiReads {
    fn new(prefix: String, history: usize) -> Self {
        Self {
            prefix,
            state: Mutex::new(PhiWindows {
                index: 0,
                current: 0,
                threshold: None,
                history: VecDeque::with_capacity(history),
                episode: Episode::default(),
            }),
        }
    }
}

#[derive(Debug)]
struct PhiWindows {
    /// The window `current` counts.
    index: u64,
    current: u64,
    /// The current window's threshold; `None` until a window completed.
    threshold: Option<u64>,
    /// Counts of the last completed windows, newest last.
    history: VecDeque<u64>,
    episode: Episode,
}

impl PhiWindows {
    /// Adds `count` reads in window `index`; returns `(count, threshold)`
    /// when an alert must fire.
    fn add(
        &mut self,
        index: u64,
        count: u64,
        config: &AlertConfig,
        now: Instant,
    ) -> Option<(u64, u64)> {
        if index > self.index {
            self.roll(index, config);
        }
        self.current = self.current.saturating_add(count);
        // Below the threshold mid-window ends nothing: an episode ends only
        // with a window that stayed under it (see `roll`).
        let threshold = self.threshold?;
        let fires = self.current >= threshold && self.episode.hold(now, config.cooldown);
        fires.then_some((self.current, threshold))
    }

    /// Closes the current window (and any empty ones after it) and sets the
    /// threshold of window `index` from the new baseline.
    fn roll(&mut self, index: u64, config: &AlertConfig) {
        let keep = config.phi_baseline_windows.max(1);
        let empty = usize::try_from(index - self.index - 1).unwrap_or(usize::MAX);
        // An episode goes on only while whole windows stay over threshold.
        let closed_over = self.threshold.is_some_and(|t| self.current >= t);
        self.episode.holding = closed_over && empty == 0;
        self.history.push_back(self.current);
        for _ in 0..empty.min(keep) {
            self.history.push_back(0);
        }
        while self.history.len() > keep {
            self.history.pop_front();
        }
        let sum: u64 = self.history.iter().sum();
        let baseline = sum as f64 / self.history.len() as f64;
        let over = (config.phi_factor * baseline).floor() as u64 + 1;
        self.threshold = Some(over.max(config.phi_min_reads));
        self.index = index;
        self.current = 0;
    }
}

#[cfg(test)]
mod tests;
