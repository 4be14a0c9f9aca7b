//! What the signer needs of a key, whichever source holds it (a PEM file here, a KMS key elsewhere): its
//! public half, its publication time (which [`crate::rotation`] turns into a state) and a signature, possibly
//! computed far away, hence asynchronous.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use irsa_issuer::keys::Algorithm;

use crate::keys::{SignFailed, SigningKey};

/// A signature being computed.
pub type SignFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, SignFailed>> + Send + 'a>>;

/// A key the signer can publish and sign with. `Debug` must show nothing secret.
pub trait Key: fmt::Debug + Send + Sync {
    /// The key ID, as kube-apiserver computes it from the public key.
    fn kid(&self) -> &str;
    /// The JWS algorithm.
    fn algorithm(&self) -> Algorithm;
    /// The public key as DER SubjectPublicKeyInfo (what `FetchKeys` returns).
    fn spki_der(&self) -> &[u8];
    /// When the key was published: the start of its rotation.
    fn published_at(&self) -> SystemTime;
    /// Where the key lives (a file, a KMS key), for logs and `irsa signer status`.
    fn location(&self) -> String;
    /// Signs `message` (the JWS signing input), returning the JWS signature bytes.
    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a>;
}

impl Key for SigningKey {
    fn kid(&self) -> &str {
        SigningKey::kid(self)
    }

    fn algorithm(&self) -> Algorithm {
        SigningKey::algorithm(self)
    }

    fn spki_der(&self) -> &[u8] {
        SigningKey::spki_der(self)
    }

    fn published_at(&self) -> SystemTime {
        SigningKey::published_at(self)
    }

    fn location(&self) -> String {
        self.file().display().to_string()
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        // In memory and fast (tens of microseconds): no need for a blocking thread.
        Box::pin(std::future::ready(SigningKey::sign(self, message)))
    }
}
