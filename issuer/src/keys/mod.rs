//! Public keys from PEM files, with the key ID kube-apiserver gives them.
//!
//! Accepted sections: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1), `CERTIFICATE` (X.509), and the private
//! keys `RSA PRIVATE KEY` (PKCS#1), `PRIVATE KEY` (PKCS#8) and `EC PRIVATE KEY` (SEC1), of which only the public
//! half is kept: nothing private survives parsing. Keys STS would refuse (RSA under 2048 bits or over 16384,
//! curves other than P-256/384/521, Ed25519, ML-DSA...) are left out with a [`Warning`].
//!
//! This module is the model: [`PublicKey`], its key ID, what was loaded and why loading failed. The DER
//! structures are decoded in `der`, the files read and split into PEM sections in `pem_file`.

mod der;
mod pem_file;

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irsa_core::jwks::{MAX_RSA_BITS, MIN_RSA_BITS};
use sha2::{Digest, Sha256};

pub use pem_file::{load_files, parse_pem, read_file};

use crate::Warning;

/// Why loading keys failed. Each variant names the file it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read (missing, unreadable, a directory...).
    #[error("key file {path}: cannot read it: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file has no PEM section at all.
    #[error(
        "key file {path}: no PEM key found (expected PUBLIC KEY, RSA PUBLIC KEY, CERTIFICATE or a private key section)"
    )]
    NoPem {
        /// The file.
        path: PathBuf,
    },
    /// A PEM section is broken (no END line, bad base64, mismatched labels): the file is refused whole rather
    /// than published without the keys it was meant to hold.
    #[error("key file {path}: malformed PEM: {reason}")]
    MalformedPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file's only keys are RSA keys under 2048 bits.
    #[error(
        "key file {path}: RSA key of {bits} bits is too small: STS accepts RSA keys of {MIN_RSA_BITS} bits or more"
    )]
    RsaTooSmall {
        /// The file.
        path: PathBuf,
        /// The modulus size of the (first) small key.
        bits: usize,
    },
    /// The file has PEM sections, but none is a key this issuer can publish.
    #[error("key file {path}: no usable key ({reasons})")]
    NoUsableKey {
        /// The file.
        path: PathBuf,
        /// Why each section was left out, joined with `; `.
        reasons: String,
    },
    /// No key file was given at all.
    #[error("no key file given")]
    NoFiles,
}

/// The JWS algorithm a key signs with, as the apiserver uses it. Ordered by name, as the apiserver lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// ECDSA P-521 with SHA-512.
    ES512,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (every RSA key).
    RS256,
}

impl Algorithm {
    /// The JOSE name, e.g. `RS256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A NIST curve STS accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// secp256r1.
    P256,
    /// secp384r1.
    P384,
    /// secp521r1.
    P521,
}

impl Curve {
    /// The JWK `crv` name, e.g. `P-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// The curve from its JWK `crv` name.
    pub fn from_jwk_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    /// The width of one coordinate in bytes (what `x` and `y` are padded to).
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The signing algorithm for this curve.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Curve::P256 => Algorithm::ES256,
            Curve::P384 => Algorithm::ES384,
            Curve::P521 => Algorithm::ES512,
        }
    }
}

/// The public numbers of a key, as they go into a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyParams {
    /// An RSA key.
    Rsa {
        /// Modulus, unsigned big-endian without leading zero bytes.
        n: Vec<u8>,
        /// Public exponent, unsigned big-endian without leading zero bytes.
        e: Vec<u8>,
    },
    /// An EC key.
    Ec {
        /// The curve.
        curve: Curve,
        /// X coordinate, big-endian, padded to the curve's width.
        x: Vec<u8>,
        /// Y coordinate, big-endian, padded to the curve's width.
        y: Vec<u8>,
    },
}

/// A public key ready to publish: its numbers and its key ID. Holds no private material by construction.
///
/// Built only by the decoders (`from_spki_der`, `from_rsa`, `from_ec`), which validate the numbers and compute
/// the key ID from the DER Go would marshal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    kid: String,
    params: KeyParams,
}

/// Why a key was left out (becomes a warning or, when a file has nothing else, an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// An RSA key under 2048 bits.
    RsaTooSmall(usize),
    /// An RSA key over [`MAX_RSA_BITS`]: no verifier would use it, and each verification would cost
    /// time quadratic in its size.
    RsaTooLarge(usize),
    /// Anything else, described.
    Unsupported(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::RsaTooSmall(bits) => {
                write!(
                    f,
                    "RSA key of {bits} bits left out: STS needs {MIN_RSA_BITS} bits or more"
                )
            }
            Rejection::RsaTooLarge(bits) => {
                write!(
                    f,
                    "RSA key of {bits} bits left out: verifiers accept at most {MAX_RSA_BITS} bits"
                )
            }
            Rejection::Unsupported(what) => f.write_str(what),
        }
    }
}

fn unsupported(what: impl Into<String>) -> Rejection {
    Rejection::Unsupported(what.into())
}

impl PublicKey {
    /// The key ID: base64url (no padding) of the SHA-256 of the key's DER SubjectPublicKeyInfo, as
    /// kube-apiserver's `keyIDFromPublicKey` computes it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public numbers.
    pub fn params(&self) -> &KeyParams {
        &self.params
    }

    /// The algorithm the apiserver signs with for this key.
    pub fn algorithm(&self) -> Algorithm {
        match &self.params {
            KeyParams::Rsa { .. } => Algorithm::RS256,
            KeyParams::Ec { curve, .. } => curve.algorithm(),
        }
    }

    /// Whether this is an RSA key (the JWKS limit counts RSA and EC keys apart).
    pub fn is_rsa(&self) -> bool {
        matches!(self.params, KeyParams::Rsa { .. })
    }

    /// The same key published under another key ID (the apiserver's own, when republishing its JWKS).
    pub fn with_kid(mut self, kid: impl Into<String>) -> PublicKey {
        self.kid = kid.into();
        self
    }
}

/// `kid` of a DER SubjectPublicKeyInfo: base64url_nopad(sha256(der)), as kube-apiserver computes it.
pub fn kid_of_spki_der(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(spki_der))
}

/// Keys loaded from files, in file order, deduplicated by key ID, with what was left out.
#[derive(Debug, Clone, Default)]
pub struct LoadedKeys {
    /// The usable keys.
    pub keys: Vec<PublicKey>,
    /// Keys left out and other findings.
    pub warnings: Vec<Warning>,
}

fn push_unique(keys: &mut Vec<PublicKey>, key: PublicKey) {
    // A certificate next to its private key is the same key: publish it once.
    if !keys.iter().any(|k| k.kid == key.kid) {
        keys.push(key);
    }
}

/// Merges per-file results in order, deduplicating keys across files.
pub fn merge(parts: impl IntoIterator<Item = LoadedKeys>) -> LoadedKeys {
    let mut all = LoadedKeys::default();
    for part in parts {
        for k in part.keys {
            push_unique(&mut all.keys, k);
        }
        all.warnings.extend(part.warnings);
    }
    all
}
