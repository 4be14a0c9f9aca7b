//! Public keys from PEM files, with the key ID kube-apiserver gives them.
//!
//! Accepted sections: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1), `CERTIFICATE` (X.509), and the private
//! keys `RSA PRIVATE KEY` (PKCS#1), `PRIVATE KEY` (PKCS#8) and `EC PRIVATE KEY` (SEC1), of which only the public
//! half is kept: nothing private survives parsing. Keys STS would refuse (RSA under 2048 bits, curves other
//! than P-256/384/521, Ed25519, ML-DSA...) are left out with a [`Warning`].

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs1::{RsaPrivateKey as Pkcs1Private, RsaPublicKey as Pkcs1Public};
use rsa::pkcs8::PrivateKeyInfo;
use sha2::{Digest, Sha256};
use spki::der::asn1::{BitString, UintRef};
use spki::der::{Any, Encode};
use spki::{
    AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef,
};

use crate::Warning;

/// The smallest RSA modulus STS (and this issuer) accepts, in bits.
pub const MIN_RSA_BITS: usize = 2048;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const OID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
/// The arc of NIST's ML-DSA / SLH-DSA algorithm identifiers (2.16.840.1.101.3.4.3.*).
const OID_NIST_SIG_ARC: &str = "2.16.840.1.101.3.4.3.";

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

    fn from_oid(oid: ObjectIdentifier) -> Option<Curve> {
        match oid {
            OID_P256 => Some(Curve::P256),
            OID_P384 => Some(Curve::P384),
            OID_P521 => Some(Curve::P521),
            _ => None,
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

    /// An RSA key from its modulus and exponent (big-endian, leading zeros allowed).
    pub fn from_rsa(n: &[u8], e: &[u8]) -> Result<PublicKey, Rejection> {
        let n = UintRef::new(n).map_err(|_| unsupported("RSA modulus is malformed"))?;
        let e = UintRef::new(e).map_err(|_| unsupported("RSA exponent is malformed"))?;
        Self::from_pkcs1(Pkcs1Public {
            modulus: n,
            public_exponent: e,
        })
    }

    /// An EC key from its affine coordinates (big-endian, at most the curve's width); checked to be on
    /// the curve.
    pub fn from_ec(curve: Curve, x: &[u8], y: &[u8]) -> Result<PublicKey, Rejection> {
        let width = curve.coordinate_len();
        if x.len() > width || y.len() > width {
            return Err(unsupported(format!(
                "{} point has over-long coordinates",
                curve.as_str()
            )));
        }
        let mut point = Vec::with_capacity(1 + 2 * width);
        point.push(0x04);
        point.resize(1 + width - x.len(), 0);
        point.extend_from_slice(x);
        point.resize(1 + 2 * width - y.len(), 0);
        point.extend_from_slice(y);
        Self::from_ec_point(curve, &point)
    }

    /// A key from a DER SubjectPublicKeyInfo (`PUBLIC KEY`, or the one inside a certificate).
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, Rejection> {
        let spki = SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| unsupported(format!("malformed SubjectPublicKeyInfo: {e}")))?;
        let oid = spki.algorithm.oid;
        let Some(key) = spki.subject_public_key.as_bytes() else {
            return Err(unsupported(
                "malformed SubjectPublicKeyInfo: unaligned key bits",
            ));
        };
        match oid {
            OID_RSA => {
                let pkcs1 = Pkcs1Public::try_from(key)
                    .map_err(|e| unsupported(format!("malformed RSA public key: {e}")))?;
                Self::from_pkcs1(pkcs1)
            }
            OID_EC => {
                let curve_oid = spki
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| unsupported("EC key without a named curve left out"))?;
                let curve =
                    Curve::from_oid(curve_oid).ok_or_else(|| unsupported_curve(curve_oid))?;
                Self::from_ec_point(curve, key)
            }
            other => Err(unsupported_algorithm(other)),
        }
    }

    fn from_pkcs1(key: Pkcs1Public<'_>) -> Result<PublicKey, Rejection> {
        let n = key.modulus.as_bytes();
        let e = key.public_exponent.as_bytes();
        let bits = bit_len(n);
        if bits < MIN_RSA_BITS {
            return Err(Rejection::RsaTooSmall(bits));
        }
        // Verifiers (Go's crypto/rsa, STS) refuse even moduli and exponents that are even, 1 or beyond 64 bits.
        if n.last().is_some_and(|b| b & 1 == 0) {
            return Err(unsupported("RSA key with an even modulus left out"));
        }
        if e.is_empty() || e.len() > 8 || e.last().is_some_and(|b| b & 1 == 0) || e == [1] {
            return Err(unsupported(
                "RSA key with an invalid public exponent left out",
            ));
        }
        // The kid hashes the DER Go's x509.MarshalPKIXPublicKey produces: rsaEncryption with NULL
        // parameters around the PKCS#1 key, whatever encoding the key came in.
        let pkcs1 = key
            .to_der()
            .map_err(|e| unsupported(format!("cannot encode RSA key: {e}")))?;
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: OID_RSA,
                parameters: Some(Any::null()),
            },
            subject_public_key: BitString::from_bytes(&pkcs1)
                .map_err(|e| unsupported(format!("cannot encode RSA key: {e}")))?,
        };
        let spki_der = spki
            .to_der()
            .map_err(|e| unsupported(format!("cannot encode RSA key: {e}")))?;
        Ok(PublicKey {
            kid: kid_of_spki_der(&spki_der),
            params: KeyParams::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            },
        })
    }

    fn from_ec_point(curve: Curve, sec1_point: &[u8]) -> Result<PublicKey, Rejection> {
        use p256::pkcs8::EncodePublicKey as _;
        let not_on_curve = || {
            unsupported(format!(
                "{} public key is not a valid curve point",
                curve.as_str()
            ))
        };
        let cannot_encode = |e: spki::Error| unsupported(format!("cannot encode EC key: {e}"));
        // Decoding validates the point; re-encoding uncompressed gives the DER Go marshals, so a key that
        // arrived compressed still gets the apiserver's kid.
        let (spki_der, uncompressed) = match curve {
            Curve::P256 => {
                let k = p256::PublicKey::from_sec1_bytes(sec1_point).map_err(|_| not_on_curve())?;
                let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&k, false);
                (
                    k.to_public_key_der().map_err(cannot_encode)?,
                    point.as_bytes().to_vec(),
                )
            }
            Curve::P384 => {
                let k = p384::PublicKey::from_sec1_bytes(sec1_point).map_err(|_| not_on_curve())?;
                let point = p384::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&k, false);
                (
                    k.to_public_key_der().map_err(cannot_encode)?,
                    point.as_bytes().to_vec(),
                )
            }
            Curve::P521 => {
                let k = p521::PublicKey::from_sec1_bytes(sec1_point).map_err(|_| not_on_curve())?;
                let point = p521::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&k, false);
                (
                    k.to_public_key_der().map_err(cannot_encode)?,
                    point.as_bytes().to_vec(),
                )
            }
        };
        let width = curve.coordinate_len();
        debug_assert_eq!(uncompressed.len(), 1 + 2 * width);
        Ok(PublicKey {
            kid: kid_of_spki_der(spki_der.as_bytes()),
            params: KeyParams::Ec {
                curve,
                x: uncompressed[1..1 + width].to_vec(),
                y: uncompressed[1 + width..].to_vec(),
            },
        })
    }

    fn from_ec_secret(curve: Curve, scalar: &[u8]) -> Result<PublicKey, Rejection> {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        let bad = || unsupported(format!("malformed {} private key", curve.as_str()));
        // The public point is recomputed from the scalar rather than trusted from the optional field.
        let point = match curve {
            Curve::P256 => p256::SecretKey::from_slice(scalar)
                .map_err(|_| bad())?
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Curve::P384 => p384::SecretKey::from_slice(scalar)
                .map_err(|_| bad())?
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Curve::P521 => p521::SecretKey::from_slice(scalar)
                .map_err(|_| bad())?
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        };
        Self::from_ec_point(curve, &point)
    }
}

/// `kid` of a DER SubjectPublicKeyInfo: base64url_nopad(sha256(der)), as kube-apiserver computes it.
pub fn kid_of_spki_der(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(spki_der))
}

fn bit_len(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (be.len() - i - 1) * 8 + (8 - be[i].leading_zeros() as usize),
    }
}

fn unsupported_curve(oid: ObjectIdentifier) -> Rejection {
    let name = if oid == OID_SECP256K1 {
        "secp256k1".to_string()
    } else {
        oid.to_string()
    };
    unsupported(format!(
        "EC key on curve {name} left out: STS accepts only P-256, P-384 and P-521"
    ))
}

fn unsupported_algorithm(oid: ObjectIdentifier) -> Rejection {
    let name = match oid {
        OID_ED25519 => "Ed25519".to_string(),
        OID_ED448 => "Ed448".to_string(),
        OID_X25519 => "X25519".to_string(),
        OID_DSA => "DSA".to_string(),
        OID_RSA_PSS => "RSA-PSS".to_string(),
        o if o.to_string().starts_with(OID_NIST_SIG_ARC) => format!("ML-DSA/SLH-DSA ({o})"),
        o => format!("algorithm {o}"),
    };
    unsupported(format!(
        "{name} key left out: STS accepts only RSA (2048 bits or more) and EC P-256/P-384/P-521"
    ))
}

/// Keys loaded from files, in file order, deduplicated by key ID, with what was left out.
#[derive(Debug, Clone, Default)]
pub struct LoadedKeys {
    /// The usable keys.
    pub keys: Vec<PublicKey>,
    /// Keys left out and other findings.
    pub warnings: Vec<Warning>,
}

/// One PEM section: its label and its decoded body.
struct PemSection {
    label: String,
    der: Vec<u8>,
    /// RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`) were present.
    has_headers: bool,
}

/// Splits a PEM file into sections. Text outside sections is ignored (openssl writes comments there);
/// a section whose base64 does not decode is reported as a rejection.
fn pem_sections(text: &str) -> Vec<Result<PemSection, String>> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut has_headers = false;
        let mut closed = false;
        for line in lines.by_ref() {
            let line = line.trim();
            if line == end {
                closed = true;
                break;
            }
            if line.contains(':') {
                has_headers = true;
            } else {
                body.push_str(line);
            }
        }
        if !closed {
            out.push(Err(format!("{label} section has no END line")));
            break;
        }
        match STANDARD.decode(body.as_bytes()) {
            Ok(der) => out.push(Ok(PemSection {
                label: label.to_string(),
                der,
                has_headers,
            })),
            Err(_) if has_headers => out.push(Err(format!(
                "{label} is encrypted: give the public key instead"
            ))),
            Err(e) => out.push(Err(format!("{label} section is not valid base64: {e}"))),
        }
    }
    out
}

/// What one section yielded.
enum SectionOutcome {
    Key(PublicKey),
    Rejected(Rejection),
    /// Not a key and not worth a warning (`EC PARAMETERS` that `openssl ecparam -genkey` writes).
    Ignored,
}

fn parse_section(section: &PemSection) -> SectionOutcome {
    if section.has_headers {
        return SectionOutcome::Rejected(unsupported(format!(
            "{} is encrypted: give the public key instead",
            section.label
        )));
    }
    let result = match section.label.as_str() {
        "PUBLIC KEY" => PublicKey::from_spki_der(&section.der),
        "RSA PUBLIC KEY" => Pkcs1Public::try_from(section.der.as_slice())
            .map_err(|e| unsupported(format!("malformed RSA PUBLIC KEY: {e}")))
            .and_then(PublicKey::from_pkcs1),
        "CERTIFICATE" => match x509_parser::parse_x509_certificate(&section.der) {
            Ok((_, cert)) => PublicKey::from_spki_der(cert.tbs_certificate.subject_pki.raw),
            Err(e) => Err(unsupported(format!("malformed CERTIFICATE: {e}"))),
        },
        "RSA PRIVATE KEY" => Pkcs1Private::try_from(section.der.as_slice())
            .map_err(|_| unsupported("malformed RSA PRIVATE KEY"))
            .and_then(|k| PublicKey::from_pkcs1(k.public_key())),
        "PRIVATE KEY" => from_pkcs8(&section.der),
        "EC PRIVATE KEY" => sec1::EcPrivateKey::try_from(section.der.as_slice())
            .map_err(|_| unsupported("malformed EC PRIVATE KEY"))
            .and_then(|k| {
                let oid = k
                    .parameters
                    .and_then(|p| p.named_curve())
                    .ok_or_else(|| unsupported("EC PRIVATE KEY without a named curve left out"))?;
                let curve = Curve::from_oid(oid).ok_or_else(|| unsupported_curve(oid))?;
                PublicKey::from_ec_secret(curve, k.private_key)
            }),
        "EC PARAMETERS" => return SectionOutcome::Ignored,
        "ENCRYPTED PRIVATE KEY" => Err(unsupported(
            "ENCRYPTED PRIVATE KEY left out: give the public key instead",
        )),
        other => Err(unsupported(format!("PEM section {other} is not a key"))),
    };
    match result {
        Ok(k) => SectionOutcome::Key(k),
        Err(r) => SectionOutcome::Rejected(r),
    }
}

fn from_pkcs8(der: &[u8]) -> Result<PublicKey, Rejection> {
    let info = PrivateKeyInfo::try_from(der).map_err(|_| unsupported("malformed PRIVATE KEY"))?;
    match info.algorithm.oid {
        OID_RSA => Pkcs1Private::try_from(info.private_key)
            .map_err(|_| unsupported("malformed RSA key in PRIVATE KEY"))
            .and_then(|k| PublicKey::from_pkcs1(k.public_key())),
        OID_EC => {
            let oid = info
                .algorithm
                .parameters_oid()
                .map_err(|_| unsupported("EC key without a named curve left out"))?;
            let curve = Curve::from_oid(oid).ok_or_else(|| unsupported_curve(oid))?;
            let inner = sec1::EcPrivateKey::try_from(info.private_key)
                .map_err(|_| unsupported("malformed EC key in PRIVATE KEY"))?;
            PublicKey::from_ec_secret(curve, inner.private_key)
        }
        other => Err(unsupported_algorithm(other)),
    }
}

/// Parses the keys of one PEM file's content. `source` names the file in messages.
///
/// Errors when the content holds no usable key; otherwise returns the keys (deduplicated) and a warning
/// for every section left out.
pub fn parse_pem(source: &Path, content: &[u8]) -> Result<LoadedKeys, KeyError> {
    let text = String::from_utf8_lossy(content);
    let sections = pem_sections(&text);
    if sections.is_empty() {
        return Err(KeyError::NoPem {
            path: source.to_path_buf(),
        });
    }
    let mut loaded = LoadedKeys::default();
    let mut rejections = Vec::new();
    for section in &sections {
        match section {
            Ok(section) => match parse_section(section) {
                SectionOutcome::Key(k) => push_unique(&mut loaded.keys, k),
                SectionOutcome::Rejected(r) => rejections.push(r),
                SectionOutcome::Ignored => {}
            },
            Err(msg) => rejections.push(unsupported(msg.clone())),
        }
    }
    if loaded.keys.is_empty() {
        if let Some(Rejection::RsaTooSmall(bits)) = rejections.first()
            && rejections
                .iter()
                .all(|r| matches!(r, Rejection::RsaTooSmall(_)))
        {
            return Err(KeyError::RsaTooSmall {
                path: source.to_path_buf(),
                bits: *bits,
            });
        }
        let reasons = if rejections.is_empty() {
            "no key section".to_string()
        } else {
            rejections
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(KeyError::NoUsableKey {
            path: source.to_path_buf(),
            reasons,
        });
    }
    let name = source.display().to_string();
    loaded.warnings = rejections
        .into_iter()
        .map(|r| Warning::new(&name, r.to_string()))
        .collect();
    Ok(loaded)
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

/// Reads one file. Kept apart from parsing so the reloader can hash the bytes it already read.
pub fn read_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads every key of every file: any file that is unreadable or has no usable key is an error.
pub fn load_files(paths: &[PathBuf]) -> Result<LoadedKeys, KeyError> {
    if paths.is_empty() {
        return Err(KeyError::NoFiles);
    }
    let mut parts = Vec::with_capacity(paths.len());
    for path in paths {
        parts.push(parse_pem(path, &read_file(path)?)?);
    }
    Ok(merge(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_len_counts_from_the_top_bit() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
    }

    #[test]
    fn pem_splitter_handles_comments_and_several_sections() {
        let text = "comment\n-----BEGIN A-----\nAAEC\n-----END A-----\nx\n-----BEGIN B-----\nAw==\n-----END B-----\n";
        let s: Vec<_> = pem_sections(text).into_iter().map(Result::unwrap).collect();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].label.as_str(), s[0].der.as_slice()),
            ("A", &[0u8, 1, 2][..])
        );
        assert_eq!(
            (s[1].label.as_str(), s[1].der.as_slice()),
            ("B", &[3u8][..])
        );
    }

    #[test]
    fn unterminated_section_is_reported() {
        let s = pem_sections("-----BEGIN PUBLIC KEY-----\nAAAA\n");
        assert!(matches!(&s[..], [Err(m)] if m.contains("END")));
    }

    #[test]
    fn ec_coordinates_roundtrip_with_padding() {
        // P-256 generator.
        let x = hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
        let y = hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
        let k = PublicKey::from_ec(Curve::P256, &x, &y).unwrap();
        assert_eq!(
            k.params,
            KeyParams::Ec {
                curve: Curve::P256,
                x: x.clone(),
                y: y.clone()
            }
        );
        assert!(
            PublicKey::from_ec(Curve::P256, &x, &x).is_err(),
            "off-curve point accepted"
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
