//! TLS with rustls: TLS 1.2 and 1.3 only (rustls has no older versions), ring
//! provider. The certificate and key are loaded and checked with the rest of the
//! configuration, so a bad pair refuses to start.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::variables as v;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificates from {0}; expected a PEM certificate chain")]
    Certificates(String),
    #[error("cannot read a private key from {0}; expected a PEM (PKCS#8, PKCS#1 or SEC1) key")]
    PrivateKey(String),
    #[error(
        "the certificate and key do not form a usable pair; check that TLS_KEY_PATH belongs to TLS_CERT_PATH"
    )]
    Mismatch,
}

impl TlsError {
    /// The configuration variable to fix.
    pub fn variable(&self) -> &'static str {
        match self {
            TlsError::Certificates(_) | TlsError::Mismatch => v::TLS_CERT_PATH,
            TlsError::PrivateKey(_) => v::TLS_KEY_PATH,
        }
    }
}

/// Loads and checks the certificate chain and key into a server configuration.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| TlsError::Certificates(cert_path.display().to_string()))?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|_| TlsError::PrivateKey(key_path.display().to_string()))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|_| TlsError::Mismatch)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|_| TlsError::Mismatch)
}
