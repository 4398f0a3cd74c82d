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
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (day_secs / 3600, day_secs % 3600 / 60, day_secs % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{millis:03}Z")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's
/// well-known algorithm, restated).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
