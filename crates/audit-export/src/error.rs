//! What can go wrong while exporting.

use std::path::{Path, PathBuf};

/// Why the exporter could not read the log, keep its cursor or configure
/// its producer. Delivery failures are not errors of this type: the exporter
/// retries them and they show as lag.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` at byte offset {offset}: not an audit record: {why}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    #[error("cursor file `{path}`: {why}")]
    Cursor { path: PathBuf, why: String },
    /// Names the file, line and key, never a value: the file holds secrets.
    #[error("Kafka client config `{path}` line {line}: {why}")]
    Config {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("cannot create the Kafka producer: {0}")]
    Producer(String),
    /// The audit records would cross a network in clear text.
    #[error(
        "Kafka bootstrap `{0}` is not a loopback address: the client config must set \
         `security.protocol` to `SASL_SSL` or `SSL`"
    )]
    ClearText(String),
    #[error("OTLP endpoint {0}")]
    Endpoint(String),
    /// A PEM file for TLS to the collector that is missing, unreadable or
    /// holds nothing usable; checked at start so a typo fails `serve`.
    #[error("OTLP {file} `{path}`: {why}")]
    TlsFile {
        file: TlsFile,
        path: PathBuf,
        why: String,
    },
}

/// Which of the OTLP sink's TLS files an [`ExportError::TlsFile`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFile {
    /// The CA that issued the collector's certificate.
    Ca,
    /// The PDP's own certificate chain, for mutual TLS.
    Cert,
    /// The key of that certificate.
    Key,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::Ca => "CA certificate",
            TlsFile::Cert => "client certificate",
            TlsFile::Key => "client key",
        })
    }
}

impl ExportError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        ExportError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}
