//! One module per subcommand, and the flags several of them share.

pub mod audit;
pub mod check;
pub mod explain;
pub mod reload;
pub mod serve;
pub mod status;
pub mod test;
pub mod validate;

use std::path::PathBuf;

use kafka_pdp_server::{client::Connect, config::DEFAULT_LISTEN};

/// Success; for `check` and `explain`: ALLOW.
pub const EXIT_OK: u8 = 0;
/// An error, invalid policies or a failing policy test.
pub const EXIT_ERROR: u8 = 1;
/// `check` and `explain`: the decision was DENY. (2 is clap's usage error.)
pub const EXIT_DENY: u8 = 3;

/// Shown under every `--help`.
pub const EXIT_CODES: &str = "\
Exit codes: 0 success (check/explain: ALLOW), 1 error, invalid policies or \
failed tests, 2 usage error, 3 DENY (check/explain).";

/// How a client reaches a server's TLS: the flags of `check`, `status`, `reload`.
#[derive(clap::Args, Clone, Debug)]
pub struct TlsArgs {
    /// Connect without TLS (the server must run with `--plaintext`).
    #[arg(long, conflicts_with_all = ["tls_ca", "tls_cert", "tls_key"])]
    pub plaintext: bool,

    /// CA certificate (PEM) that issued the server's certificate.
    /// Default: none, which trusts no server; give it unless `--plaintext`.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM), for a server that requires mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Key (PEM) of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn connect(&self, server: &str) -> Connect {
        Connect {
            server: server.to_owned(),
            plaintext: self.plaintext,
            ca: self.tls_ca.clone(),
            identity: self.tls_cert.clone().zip(self.tls_key.clone()),
        }
    }
}

/// The server address and TLS flags of `status` and `reload`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Address of the server, `host:port`.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub server: String,

    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ServerArgs {
    pub fn connect(&self) -> Connect {
        self.tls.connect(&self.server)
    }
}

/// A runtime for the client subcommands, which make one call each.
pub fn client_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Milliseconds since the epoch as UTC, `2026-01-02T03:04:05.678Z`.
pub fn unix_ms(ms: i64) -> String {
    if ms <= 0 {
        return "never".to_owned();
    }
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => format!("{ms} ms after the epoch (out of range)"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_ms_prints_utc() {
        assert_eq!(super::unix_ms(0), "never");
        assert_eq!(super::unix_ms(1_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(super::unix_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            super::unix_ms(1_767_225_600_000),
            "2026-01-01T00:00:00.000Z"
        );
    }
}
