//! A throw-away PKI: a certificate authority made for one test (or one e2e run) and the serving leaves it
//! signs, in the forms the tests hand on (PEM for files and reqwest, DER for rustls and thumbprints).
//!
//! Everything here panics on failure: key generation and signing with fixed, valid parameters cannot fail
//! short of a broken crypto provider, and a test wants the backtrace then, not an error to thread through.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// The names a local test server answers to: its loopback address and `localhost`.
pub const LOOPBACK: &[&str] = &["127.0.0.1", "localhost"];

/// A certificate authority that exists for one test.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate signed by a [`Ca`], with its key.
pub struct Leaf {
    /// The leaf alone, PEM.
    pub cert_pem: String,
    /// The leaf then its CA, PEM: what a server presents so that clients (and thumbprints) see the CA.
    pub chain_pem: String,
    /// The leaf's private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The leaf alone, DER.
    pub cert_der: CertificateDer<'static>,
    /// The leaf's private key, PKCS#8 DER.
    pub key_der: PrivatePkcs8KeyDer<'static>,
}

impl Ca {
    /// A new CA with common name `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        // As a real CA states them (the IAM tests' CA always did); verifiers that read key usage then accept it.
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("a self-signed CA"),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `sans` (each an IP address or a DNS name), valid from now for rcgen's default span.
    pub fn leaf(&self, sans: &[&str]) -> Leaf {
        self.sign(Self::leaf_params(sans))
    }

    /// A leaf for `sans` that expires at the start of the given day (UTC): for tests that read expiry back.
    pub fn leaf_expiring(&self, sans: &[&str], year: i32, month: u8, day: u8) -> Leaf {
        let mut params = Self::leaf_params(sans);
        params.not_after = rcgen::date_time_ymd(year, month, day);
        self.sign(params)
    }

    fn leaf_params(sans: &[&str]) -> CertificateParams {
        // rcgen reads each name as an IP address when it parses as one, as a DNS name otherwise.
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("leaf subject alternative names");
        if let Some(first) = sans.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("a signed leaf");
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.pem()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

/// An RSA service-account signing key pair as kube-apiserver takes it: (PKCS#8 private PEM, SPKI public PEM).
pub fn signing_key() -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256).expect("an RSA key");
    (key.serialize_pem(), key.public_key_pem())
}
