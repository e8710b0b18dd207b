//! TLS for client connections: the rustls `ServerConfig` built from the `tls {}` block
//! (certificate chain, private key, client CA, `verify`/`verify_and_map`, `min_version`),
//! with the ring provider.
//!
//! Files are read when the acceptor is built: at start (a missing or malformed file stops
//! the server with an error naming it) and on reload (an error keeps the old acceptor).
//! The handshake itself is driven by the listener.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or held nothing usable.
    #[error("error parsing {what} file {path}: {reason}")]
    File {
        /// Which file (certificate, private key, CA).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the combination.
    #[error("TLS configuration error: {0}")]
    Config(String),
}

fn file_err(what: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The certificates of the PEM file at `path` (`what` names it in errors).
pub(crate) fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(what, path, e))?;
    if certs.is_empty() {
        return Err(file_err(what, path, "no certificate found"));
    }
    Ok(certs)
}

/// The ring crypto provider every TLS config uses.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The private key of the PEM file at `path`.
pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err("private key", path, e))
}

/// Builds the rustls server configuration for `tls`.
///
/// # Errors
/// [`TlsError`] naming the file that is missing or malformed, or the setting rustls refused.
pub fn acceptor(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs("certificate", &tls.cert_file)?;
    let key = load_key(&tls.key_file)?;
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version.as_deref() {
        Some("1.3") => &[&rustls::version::TLS13],
        _ => rustls::ALL_VERSIONS,
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (&tls.ca_file, tls.verify) {
        (Some(ca), true) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs("CA", ca)? {
                roots.add(cert).map_err(|e| file_err("CA", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        (None, true) => {
            return Err(TlsError::Config(
                "verify requires a ca_file with the client CA".into(),
            ));
        }
        (_, false) => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| file_err("private key", &tls.key_file, e))?;
    Ok(Arc::new(config))
}
