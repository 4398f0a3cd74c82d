//! Transport security: TLS and mutual TLS for the server and its clients.
//!
//! rustls through tonic. The server presents its certificate chain; with a
//! client CA it requires a client certificate issued by that CA and refuses
//! the handshake without one.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A TLS file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} `{path}`: {source}")]
pub struct TlsFileError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// The server side: certificate chain and key, and optionally a client CA.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerTlsConfig, TlsFileError> {
    let identity = Identity::from_pem(read("certificate", cert)?, read("key", key)?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = client_ca {
        // With a client CA, tonic requires a client certificate (client auth
        // is optional only when asked for, which we never do).
        config = config.client_ca_root(Certificate::from_pem(read("client CA", ca)?));
    }
    Ok(config)
}

/// The client side: the CA that issued the server's certificate, and
/// optionally the client's own certificate and key for mutual TLS.
pub fn client_config(
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<ClientTlsConfig, TlsFileError> {
    let mut config = ClientTlsConfig::new();
    if let Some(ca) = ca {
        config = config.ca_certificate(Certificate::from_pem(read("CA", ca)?));
    }
    if let Some((cert, key)) = identity {
        let identity = Identity::from_pem(read("certificate", cert)?, read("key", key)?);
        config = config.identity(identity);
    }
    Ok(config)
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError {
        what,
        path: path.to_owned(),
        source,
    })
}
