//! `serve --alert-*`: the thresholds of the alert rules, and `--metrics-*`.
//!
//! The rules and their math are documented in `kafka_pdp_server::alerts`;
//! an alert is a WARN line with target `kafka_pdp::alert` on stderr and a
//! count in `kafka_pdp_alerts_total{rule}` on the metrics endpoint.

use std::{net::SocketAddr, time::Duration};

use kafka_pdp_server::{
    alerts::{
        AlertConfig, DEFAULT_COOLDOWN, DEFAULT_DENIALS_THRESHOLD, DEFAULT_DENIALS_WINDOW,
        DEFAULT_MAX_PRINCIPALS, DEFAULT_PHI_BASELINE_WINDOWS, DEFAULT_PHI_FACTOR,
        DEFAULT_PHI_MIN_READS, DEFAULT_PHI_PREFIX, DEFAULT_PHI_WINDOW,
    },
    config::MetricsEndpoint,
};

/// The metrics endpoint's flags.
#[derive(clap::Args, Debug)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics (text format) at `http://ADDR/metrics`:
    /// decisions by outcome, cache hits, fail-closed denials by reason,
    /// audit failures and export lag, the policy version, alerts by rule.
    /// Plain HTTP without authentication, so a loopback address unless
    /// `--allow-remote-metrics`; port 0 picks a free port, printed on a
    /// second stdout line, `metrics on <ip:port>`. Default: off.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// Serve metrics on a non-loopback address too. Default: off.
    #[arg(long, requires = "metrics_listen")]
    allow_remote_metrics: bool,
}

impl MetricsArgs {
    pub fn endpoint(&self) -> Option<MetricsEndpoint> {
        self.metrics_listen.map(|listen| MetricsEndpoint {
            listen,
            allow_remote: self.allow_remote_metrics,
        })
    }
}

/// The alert rules' flags.
#[derive(clap::Args, Debug)]
pub struct AlertArgs {
    /// Alert when one principal is denied this many times within
    /// `--alert-denials-window` (a sliding window). 0 turns the rule off.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DENIALS_THRESHOLD)]
    alert_denials: u64,

    /// The window of `--alert-denials`, in seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = DEFAULT_DENIALS_WINDOW.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    alert_denials_window: u64,

    /// Topic prefix whose allowed reads are watched for a sudden rise;
    /// repeat the flag for several prefixes.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PHI_PREFIX)]
    alert_phi_prefix: Vec<String>,

    /// Turn the PHI read rule off. Default: on.
    #[arg(long)]
    no_alert_phi: bool,

    /// PHI reads are counted in windows of this many seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = DEFAULT_PHI_WINDOW.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    alert_phi_window: u64,

    /// The baseline is the mean of this many past windows.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_PHI_BASELINE_WINDOWS as u64,
        value_parser = clap::value_parser!(u64).range(1..=10_000)
    )]
    alert_phi_baseline_windows: u64,

    /// Alert when a window's PHI reads exceed F times the baseline (F at
    /// least 1) and reach `--alert-phi-min-reads`.
    #[arg(
        long,
        value_name = "F",
        default_value_t = DEFAULT_PHI_FACTOR,
        value_parser = parse_factor
    )]
    alert_phi_factor: f64,

    /// Fewest PHI reads in a window that can raise an alert, whatever the
    /// baseline (guards quiet prefixes against a handful of reads).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PHI_MIN_READS)]
    alert_phi_min_reads: u64,

    /// An alert fires once per episode (while a rule keeps holding), and
    /// not again for the same principal or prefix within this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_COOLDOWN.as_secs())]
    alert_cooldown: u64,

    /// Most principals whose denials are tracked at once (bounded memory;
    /// idle ones are swept when full).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_PRINCIPALS as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    alert_max_principals: u64,
}

impl AlertArgs {
    pub fn config(&self) -> AlertConfig {
        let phi_prefixes = match self.no_alert_phi {
            true => Vec::new(),
            false => self.alert_phi_prefix.clone(),
        };
        AlertConfig {
            denials_threshold: self.alert_denials,
            denials_window: Duration::from_secs(self.alert_denials_window),
            phi_prefixes,
            phi_window: Duration::from_secs(self.alert_phi_window),
            phi_baseline_windows: usize::try_from(self.alert_phi_baseline_windows)
                .unwrap_or(usize::MAX),
            phi_factor: self.alert_phi_factor,
            phi_min_reads: self.alert_phi_min_reads,
            cooldown: Duration::from_secs(self.alert_cooldown),
            max_principals: usize::try_from(self.alert_max_principals).unwrap_or(usize::MAX),
        }
    }
}

fn parse_factor(s: &str) -> Result<f64, String> {
    let factor: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !factor.is_finite() || factor < 1.0 {
        return Err(format!("`{s}` must be a finite number of at least 1"));
    }
    Ok(factor)
}
