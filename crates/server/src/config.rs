//! How a server is configured: listen address, transport security, limits.
//!
//! Every default is a named constant here, so `--help` and the docs state the
//! same figure the server uses.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Address the server listens on when none is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Largest request message the server decodes, in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Most HTTP/2 streams (concurrent calls) one connection may open.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1024;

/// A call that has not been answered after this long fails with `CANCELLED`
/// (the broker's own deadline is much shorter, 100 ms by default).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Most actions one `Authorize` call may carry. Kafka sends one action per
/// distinct resource of a request; a metadata request for every topic of a
/// large cluster is the biggest, and is split by the shim above this.
pub const DEFAULT_MAX_ACTIONS_PER_REQUEST: usize = 10_000;

/// Most decisions the decision cache holds before it starts over.
pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 100_000;

/// How long a shutdown waits for open calls and connections to finish
/// before the server stops regardless (a client that never answers the
/// HTTP/2 GOAWAY would otherwise hold it forever).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Quiet time after the last change in the policy directory before a reload.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(150);

/// Transport security of the listening socket.
#[derive(Clone, Debug)]
pub enum Transport {
    /// No TLS: only when asked for explicitly.
    Plaintext {
        /// Serve plaintext on a non-loopback address too.
        allow_remote: bool,
    },
    /// TLS with the server's certificate chain and key (PEM files).
    Tls {
        cert: PathBuf,
        key: PathBuf,
        /// When set, clients must present a certificate issued by this CA.
        client_ca: Option<PathBuf>,
    },
}

/// Limits that protect the server from oversized or slow requests.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_concurrent_streams: u32,
    pub request_timeout: Duration,
    pub max_actions_per_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_actions_per_request: DEFAULT_MAX_ACTIONS_PER_REQUEST,
        }
    }
}

/// The Prometheus endpoint, `serve --metrics-listen`.
#[derive(Clone, Debug)]
pub struct MetricsEndpoint {
    pub listen: SocketAddr,
    /// Serve on a non-loopback address too (the endpoint has no TLS and no
    /// authentication).
    pub allow_remote: bool,
}

/// Where the policies come from.
#[derive(Clone, Debug)]
pub enum PolicySource {
    /// A directory, watched and reloadable.
    Dir(PathBuf),
    /// A fixed set (the defaults embedded in the binary); never reloaded.
    Embedded(crate::EmbeddedPolicies),
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub transport: Transport,
    pub policies: PolicySource,
    pub limits: Limits,
    /// `None` turns the decision cache off.
    pub cache_max_entries: Option<usize>,
    /// `None` turns the audit trail off.
    pub audit: Option<crate::audit::AuditSettings>,
    /// `None` serves no metrics endpoint.
    pub metrics: Option<MetricsEndpoint>,
    /// The alert rules' thresholds.
    pub alerts: crate::alerts::AlertConfig,
}
