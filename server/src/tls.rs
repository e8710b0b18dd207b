//! TLS for client connections: the rustls `ServerConfig` built from the `tls {}` block
//! (certificate chain, private key, client CA, `verify`/`verify_and_map`, `min_version`),
//! with the ring provider. `pinned_certs` wraps the client-certificate verifier: a
//! certificate the CA accepts is still refused in the handshake unless the SHA-256 of its
//! public key (DER SubjectPublicKeyInfo) is one of the pins.
//!
//! Files are read when the acceptor is built: at start (a missing or malformed file stops
//! the server with an error naming it) and on reload (an error keeps the old acceptor).
//! The handshake itself is driven by the listener.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

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

/// When the first certificate of the PEM file at `path` expires (`tls_cert_not_after`
/// in `/varz`); `None` when it cannot be read.
pub(crate) fn cert_not_after(path: &Path) -> Option<std::time::SystemTime> {
    use x509_cert::der::Decode;
    let der = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    let cert = x509_cert::Certificate::from_der(&der).ok()?;
    Some(cert.tbs_certificate.validity.not_after.to_system_time())
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
            match tls.pinned_certs.is_empty() {
                true => builder.with_client_cert_verifier(verifier),
                false => builder.with_client_cert_verifier(Arc::new(Pinned {
                    inner: verifier,
                    pins: tls.pinned_certs.iter().cloned().collect(),
                })),
            }
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

/// The hex SHA-256 of a certificate's DER SubjectPublicKeyInfo (`pinned_certs`' form);
/// `None` when the certificate does not parse.
pub fn spki_pin(cert_der: &[u8]) -> Option<String> {
    use std::fmt::Write as _;
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
    let mut hex = String::with_capacity(64);
    for b in digest.as_ref() {
        let _ = write!(hex, "{b:02x}");
    }
    Some(hex)
}

/// A client-certificate verifier that also requires a pinned public key.
#[derive(Debug)]
struct Pinned {
    inner: Arc<dyn ClientCertVerifier>,
    pins: HashSet<String>,
}

impl ClientCertVerifier for Pinned {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match spki_pin(end_entity) {
            Some(pin) if self.pins.contains(&pin) => Ok(verified),
            _ => Err(rustls::Error::General(
                "client certificate is not pinned".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
