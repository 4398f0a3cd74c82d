//! The gRPC services of the policy decision point: TLS, caching, reload, wiring.
//!
//! [`serve`] runs a server; [`decide::Pdp`] is the decision path every RPC
//! goes through; [`client::Connect`] reaches a server from the CLI and tests.

pub mod alerts;
pub mod audit;
pub mod audit_stream;
pub mod cache;
pub mod client;
pub mod config;
pub mod decide;
mod engine;
pub mod error;
pub mod metrics;
pub mod metrics_http;
pub mod proto;
pub mod request;
mod serve;
mod service;
pub mod store;
pub mod tls;
mod watcher;

pub use serve::{serve, Bound, ServeError};
pub use service::COUNTER_KEYS;

/// The default policy set compiled into a binary: file names and texts.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedPolicies {
    pub schema: &'static str,
    /// `(file name, text)` of every `*.cedar` file.
    pub policies: &'static [(&'static str, &'static str)],
    pub entities: &'static str,
    pub links: &'static str,
}
