//! TLS on routes (`cluster { tls {} }`): as nats-server, both sides start TLS as soon as
//! the TCP connection is up, before any INFO. The accepting side presents the cluster
//! certificate and, with `verify: true`, requires a peer certificate signed by `ca_file`;
//! the dialling side verifies the peer against `ca_file` for the route URL's host and
//! presents the same certificate (so two servers with one config verify each other).

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::TlsConfig;
use crate::tls::{TlsError, acceptor, load_certs, load_key, provider};

/// The accepting and dialling halves of route TLS (built at start from `cluster { tls {} }`).
#[derive(Clone)]
pub struct RouteTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for RouteTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTls")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A route connection after the TLS handshake.
pub(super) type TlsRoute<S> = tokio_rustls::TlsStream<S>;

impl RouteTls {
    /// Builds both halves from the cluster's `tls {}` block.
    ///
    /// # Errors
    /// [`TlsError`] naming the file that is missing or malformed; a block without
    /// `ca_file` (routes verify their peers against it).
    pub fn new(tls: &TlsConfig) -> Result<Self, TlsError> {
        // The dialling side does not check pins yet: refuse rather than half-enforce.
        if !tls.pinned_certs.is_empty() {
            return Err(TlsError::Config(
                "pinned_certs is not supported by rill for routes yet".into(),
            ));
        }
        let Some(ca) = &tls.ca_file else {
            return Err(TlsError::Config(
                "route TLS needs a ca_file to verify the other servers".into(),
            ));
        };
        let mut roots = RootCertStore::empty();
        for cert in load_certs("CA", ca)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Config(format!("CA {}: {e}", ca.display())))?;
        }
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                load_certs("certificate", &tls.cert_file)?,
                load_key(&tls.key_file)?,
            )
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(acceptor(tls)?),
            connector: TlsConnector::from(Arc::new(client)),
            timeout: tls.timeout,
        })
    }

    /// The accepting side's handshake.
    pub(super) async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsRoute<TcpStream>> {
        let handshake = self.acceptor.accept(stream);
        match tokio::time::timeout(self.timeout, handshake).await {
            Ok(stream) => Ok(stream?.into()),
            Err(_) => Err(timed_out()),
        }
    }

    /// The dialling side's handshake, verifying the peer for `host`.
    pub(super) async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<TlsRoute<TcpStream>> {
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let handshake = self.connector.connect(name, stream);
        match tokio::time::timeout(self.timeout, handshake).await {
            Ok(stream) => Ok(stream?.into()),
            Err(_) => Err(timed_out()),
        }
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timeout")
}
