//! Certificates and keys made for one run: a CA, serving certificates for 127.0.0.1, and the apiserver's
//! service-account signing keys.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, PKCS_RSA_SHA256,
};

/// A certificate authority that signs the serving certificates of every local server.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A PEM certificate chain (leaf then CA) and its PEM key.
pub struct ServingCert {
    /// Leaf then CA.
    pub chain_pem: String,
    /// PKCS#8.
    pub key_pem: String,
}

impl Ca {
    /// A new CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A serving certificate for `sans` (IP addresses or DNS names), chained to this CA.
    pub fn serving(&self, sans: &[&str]) -> anyhow::Result<ServingCert> {
        let params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServingCert {
            chain_pem: format!("{}{}", cert.pem(), self.pem()),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A service-account signing key pair as kube-apiserver takes it: (PKCS#8 private PEM, SPKI public PEM).
pub fn signing_key() -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256)?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}
