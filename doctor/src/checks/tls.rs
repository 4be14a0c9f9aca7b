//! Judging a certificate chain a server presented (recorded, unverified) against a set of roots: the
//! issuer's against what STS trusts, the webhook's against its caBundle.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// A verifier trusting exactly the certificates of `pem` (a caBundle, a `--ca-file`).
pub fn verifier_of_pem(pem: &[u8]) -> Result<Arc<WebPkiServerVerifier>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block".to_owned());
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("unusable CA certificate: {e}"))?;
    }
    WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .map_err(|e| e.to_string())
}

/// Whether `chain` (leaf first, as presented) is valid for `host` at `now` under `verifier`; the error says
/// why not, as rustls puts it.
pub fn verify(
    verifier: &dyn ServerCertVerifier,
    chain: &[CertificateDer<'static>],
    host: &str,
    now: UnixTime,
) -> Result<(), String> {
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| "the server presented no certificate".to_owned())?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host:?} is not a valid TLS server name"))?;
    verifier
        .verify_server_cert(leaf, intermediates, &name, &[], now)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use irsa_testing::pki::{Ca, LOOPBACK};

    fn now() -> UnixTime {
        UnixTime::now()
    }

    #[test]
    fn chain_verifies_under_its_ca_only() {
        let ca = Ca::new("right");
        let leaf = ca.leaf(LOOPBACK);
        let chain = vec![leaf.cert_der.clone(), ca.der()];
        let right = verifier_of_pem(ca.pem().as_bytes()).unwrap();
        assert_eq!(verify(right.as_ref(), &chain, "127.0.0.1", now()), Ok(()));
        let wrong = verifier_of_pem(Ca::new("wrong").pem().as_bytes()).unwrap();
        let err = verify(wrong.as_ref(), &chain, "127.0.0.1", now()).unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
        let err = verify(right.as_ref(), &chain, "other.example.com", now()).unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
        assert!(verify(right.as_ref(), &[], "127.0.0.1", now()).is_err());
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(verifier_of_pem(b"").is_err());
        assert!(
            verifier_of_pem(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
