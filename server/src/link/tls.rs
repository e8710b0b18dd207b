//! TLS on links to other servers ([`LinkTls`]): the accepting half (our certificate,
//! with `verify: true` a peer certificate signed by `ca_file` required) and the
//! dialling half (the peer verified against `ca_file` for the URL's host, our
//! certificate presented when the block has one).
//!
//! Routes (`cluster { tls {} }`) build both halves from one block and, as nats-server,
//! start TLS as soon as the TCP connection is up. Leaf nodes build the accepting half
//! from `leafnodes { tls {} }` and a dialling half per remote (`remotes [{ tls {} }]`);
//! when TLS starts on a leaf link is decided in [`crate::leaf`] (`handshake_first`).

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::TlsConfig;
use crate::tls::{TlsError, acceptor, load_certs, load_key, provider};

/// The accepting and dialling halves of TLS on links (either may be missing).
#[derive(Clone)]
pub struct LinkTls {
    acceptor: Option<TlsAcceptor>,
    connector: Option<TlsConnector>,
    timeout: Duration,
    /// The block's `handshake_first`.
    pub(crate) handshake_first: bool,
    /// The block's `verify`.
    pub(crate) verify: bool,
}

impl std::fmt::Debug for LinkTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkTls")
            .field("timeout", &self.timeout)
            .field("handshake_first", &self.handshake_first)
            .finish_non_exhaustive()
    }
}

/// A link connection after the TLS handshake.
pub(crate) type TlsLink<S> = tokio_rustls::TlsStream<S>;

impl LinkTls {
    /// Both halves from one `tls {}` block (routes: two servers with one config verify
    /// each other).
    ///
    /// # Errors
    /// [`TlsError`] naming the file that is missing or malformed; a block without
    /// `ca_file` (routes verify their peers against it).
    pub fn new(tls: &TlsConfig) -> Result<Self, TlsError> {
        if tls.ca_file.is_none() {
            return Err(TlsError::Config(
                "route TLS needs a ca_file to verify the other servers".into(),
            ));
        }
        Ok(Self {
            acceptor: Some(TlsAcceptor::from(acceptor(tls)?)),
            ..Self::client(tls)?
        })
    }

    /// The accepting half only (a leaf-node hub's `leafnodes { tls {} }`).
    ///
    /// # Errors
    /// [`TlsError`] naming the file that is missing or malformed.
    pub fn server(tls: &TlsConfig) -> Result<Self, TlsError> {
        Ok(Self {
            acceptor: Some(TlsAcceptor::from(acceptor(tls)?)),
            connector: None,
            timeout: tls.timeout,
            handshake_first: tls.handshake_first,
            verify: tls.verify,
        })
    }

    /// The dialling half only (a leaf remote's `tls {}`): the peer is verified against
    /// `ca_file`; the block's certificate, when it has one, is presented.
    ///
    /// # Errors
    /// [`TlsError`] naming the file that is missing or malformed; a block without
    /// `ca_file`, or with `pinned_certs` (not checked when dialling yet).
    pub fn client(tls: &TlsConfig) -> Result<Self, TlsError> {
        // The dialling side does not check pins yet: refuse rather than half-enforce.
        if !tls.pinned_certs.is_empty() {
            return Err(TlsError::Config(
                "pinned_certs is not supported by rill for links to other servers yet".into(),
            ));
        }
        let Some(ca) = &tls.ca_file else {
            return Err(TlsError::Config(
                "TLS to another server needs a ca_file to verify it".into(),
            ));
        };
        let mut roots = RootCertStore::empty();
        for cert in load_certs("CA", ca)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Config(format!("CA {}: {e}", ca.display())))?;
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let client = if tls.cert_file.as_os_str().is_empty() {
            builder.with_no_client_auth()
        } else {
            builder
                .with_client_auth_cert(
                    load_certs("certificate", &tls.cert_file)?,
                    load_key(&tls.key_file)?,
                )
                .map_err(|e| TlsError::Config(e.to_string()))?
        };
        Ok(Self {
            acceptor: None,
            connector: Some(TlsConnector::from(Arc::new(client))),
            timeout: tls.timeout,
            handshake_first: tls.handshake_first,
            verify: tls.verify,
        })
    }

    /// The accepting side's handshake.
    pub(crate) async fn accept<S>(&self, stream: S) -> std::io::Result<TlsLink<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(acceptor) = &self.acceptor else {
            return Err(std::io::Error::other("no TLS certificate to accept with"));
        };
        match tokio::time::timeout(self.timeout, acceptor.accept(stream)).await {
            Ok(stream) => Ok(stream?.into()),
            Err(_) => Err(timed_out()),
        }
    }

    /// The dialling side's handshake, verifying the peer for `host`.
    pub(crate) async fn connect<S>(&self, host: &str, stream: S) -> std::io::Result<TlsLink<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(connector) = &self.connector else {
            return Err(std::io::Error::other("no TLS settings to dial with"));
        };
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        match tokio::time::timeout(self.timeout, connector.connect(name, stream)).await {
            Ok(stream) => Ok(stream?.into()),
            Err(_) => Err(timed_out()),
        }
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timeout")
}
