//! The irsa OIDC issuer: public keys to kube-apiserver key IDs, the discovery document and the JWKS, served
//! over HTTPS or published for static hosting (a directory or S3).
//!
//! The core is pure (`keys` parsing aside, which reads files): [`keys`] turns PEM into [`keys::PublicKey`]s,
//! [`paths`] says where the documents live (the issuer URL itself is `irsa_core`'s), [`jwks`] and
//! [`discovery`] render the two documents, [`documents`] renders both once per key change.
//! [`routes`] (the HTTP router), [`reload`], [`apiserver`], [`signer`] and [`publish`] do the I/O around it; [`cmd`] is the
//! command line.

pub mod apiserver;
pub mod cmd;
pub mod discovery;
pub mod documents;
pub mod jwks;
pub mod keys;
pub mod metrics;
pub mod paths;
pub mod publish;
pub mod reload;
pub mod routes;
pub mod signer;

use std::fmt;

/// A finding that does not stop publication: a key left out, a URL STS will not like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What it is about (a file, `JWKS`, `apiserver JWKS`...).
    pub source: String,
    /// What happened and, where it helps, what to do.
    pub message: String,
}

impl Warning {
    /// A warning about `source`.
    pub fn new(source: impl Into<String>, message: impl Into<String>) -> Warning {
        Warning {
            source: source.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}
