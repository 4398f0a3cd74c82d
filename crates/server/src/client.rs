//! Connecting to a server, for the CLI, tests and the load generator.

use std::path::PathBuf;

use tonic::transport::{Channel, Endpoint};

use crate::tls;

/// How to reach a server.
#[derive(Clone, Debug)]
pub struct Connect {
    /// `host:port`, or a full `http://` / `https://` URI.
    pub server: String,
    /// No TLS.
    pub plaintext: bool,
    /// The CA that issued the server certificate.
    pub ca: Option<PathBuf>,
    /// Client certificate and key, for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid server address `{0}`")]
    Address(String),
    #[error(transparent)]
    TlsFile(#[from] tls::TlsFileError),
    #[error("cannot connect to `{server}`: {source}")]
    Transport {
        server: String,
        source: tonic::transport::Error,
    },
}

impl Connect {
    /// Opens a channel; both gRPC services are reached over it.
    pub async fn channel(&self) -> Result<Channel, ConnectError> {
        let endpoint = self.endpoint()?;
        endpoint
            .connect()
            .await
            .map_err(|source| self.transport_error(source))
    }

    fn endpoint(&self) -> Result<Endpoint, ConnectError> {
        let uri = if self.server.contains("://") {
            self.server.clone()
        } else if self.plaintext {
            format!("http://{}", self.server)
        } else {
            format!("https://{}", self.server)
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|_| ConnectError::Address(self.server.clone()))?
            .tcp_nodelay(true);
        if self.plaintext {
            return Ok(endpoint);
        }
        let identity = self
            .identity
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        let tls = tls::client_config(self.ca.as_deref(), identity)?;
        endpoint
            .tls_config(tls)
            .map_err(|source| self.transport_error(source))
    }

    fn transport_error(&self, source: tonic::transport::Error) -> ConnectError {
        ConnectError::Transport {
            server: self.server.clone(),
            source,
        }
    }
}
