//! The certificate authorities a remote issuer is judged against: the public web PKI (what STS
//! trusts by itself) plus, with `--ca-file`, a private CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why the roots could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The CA file cannot be read or parsed.
    #[error("cannot use --ca-file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The certificate verifier could not be built from the roots.
    #[error("cannot build a certificate verifier: {0}")]
    Verifier(String),
    /// rustls refused the configuration.
    #[error("cannot build a TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Root certificates for judging an issuer's TLS, shared by preflight and thumbprints.
#[derive(Debug, Clone)]
pub struct Trust {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl Trust {
    /// The Mozilla roots (as shipped in `webpki-roots`) plus every certificate in `ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<Trust, TrustError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            let ca_error = |reason: String| TrustError::CaFile {
                path: path.to_owned(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ca_error(format!("not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(ca_error("no CERTIFICATE block in the file".to_owned()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| ca_error(format!("unusable CA certificate: {e}")))?;
            }
        }
        Ok(Trust {
            roots: Arc::new(roots),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        })
    }

    /// The root store.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    /// The crypto provider every configuration here is built with (aws-lc-rs, explicitly, so no
    /// process-wide default is needed).
    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }

    /// A verifier that checks server certificates against these roots.
    pub fn verifier(&self) -> Result<Arc<WebPkiServerVerifier>, TrustError> {
        WebPkiServerVerifier::builder_with_provider(self.roots(), self.provider())
            .build()
            .map_err(|e| TrustError::Verifier(e.to_string()))
    }

    /// A client configuration that verifies servers against these roots, speaking HTTP/1.1.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TrustError> {
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}
