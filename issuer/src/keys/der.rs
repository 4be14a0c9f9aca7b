//! Decoding the DER inside PEM sections (SPKI, PKCS#1, PKCS#8, SEC1, X.509) and bare key numbers into
//! [`PublicKey`]s, with the checks STS and Go's verifiers make.
//!
//! Every path ends in the same two constructors, which re-encode the key as Go's `x509.MarshalPKIXPublicKey`
//! does before hashing it: that is what makes the key ID the apiserver's, whatever encoding the key came in.

use irsa_core::jwks::{MAX_RSA_BITS, MIN_RSA_BITS};
use rsa::pkcs1::{RsaPrivateKey as Pkcs1Private, RsaPublicKey as Pkcs1Public};
use rsa::pkcs8::PrivateKeyInfo;
use spki::der::asn1::{BitString, UintRef};
use spki::der::{Any, Encode};
use spki::{
    AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef,
};

use super::{Curve, KeyParams, PublicKey, Rejection, kid_of_spki_der, unsupported};

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

/// What one PEM section yielded.
pub(super) enum SectionOutcome {
    Key(PublicKey),
    Rejected(Rejection),
    /// Not a key and not worth a warning (`EC PARAMETERS` that `openssl ecparam -genkey` writes).
    Ignored,
}

/// Decodes the DER body of a PEM section according to its label.
pub(super) fn decode_section(label: &str, der: &[u8]) -> SectionOutcome {
    let result = match label {
        "PUBLIC KEY" => PublicKey::from_spki_der(der),
        "RSA PUBLIC KEY" => Pkcs1Public::try_from(der)
            .map_err(|e| unsupported(format!("malformed RSA PUBLIC KEY: {e}")))
            .and_then(PublicKey::from_pkcs1),
        "CERTIFICATE" => match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => PublicKey::from_spki_der(cert.tbs_certificate.subject_pki.raw),
            Err(e) => Err(unsupported(format!("malformed CERTIFICATE: {e}"))),
        },
        "RSA PRIVATE KEY" => Pkcs1Private::try_from(der)
            .map_err(|_| unsupported("malformed RSA PRIVATE KEY"))
            .and_then(|k| PublicKey::from_pkcs1(k.public_key())),
        "PRIVATE KEY" => from_pkcs8(der),
        "EC PRIVATE KEY" => sec1::EcPrivateKey::try_from(der)
            .map_err(|_| unsupported("malformed EC PRIVATE KEY"))
            .and_then(|k| {
                let oid = k
                    .parameters
                    .and_then(|p| p.named_curve())
                    .ok_or_else(|| unsupported("EC PRIVATE KEY without a named curve left out"))?;
                let curve = curve_of(oid).ok_or_else(|| unsupported_curve(oid))?;
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

impl PublicKey {
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
                let curve = curve_of(curve_oid).ok_or_else(|| unsupported_curve(curve_oid))?;
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
        if bits > MAX_RSA_BITS {
            return Err(Rejection::RsaTooLarge(bits));
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
            let curve = curve_of(oid).ok_or_else(|| unsupported_curve(oid))?;
            let inner = sec1::EcPrivateKey::try_from(info.private_key)
                .map_err(|_| unsupported("malformed EC key in PRIVATE KEY"))?;
            PublicKey::from_ec_secret(curve, inner.private_key)
        }
        other => Err(unsupported_algorithm(other)),
    }
}

/// The curve of a named-curve OID, if STS accepts it.
fn curve_of(oid: ObjectIdentifier) -> Option<Curve> {
    match oid {
        OID_P256 => Some(Curve::P256),
        OID_P384 => Some(Curve::P384),
        OID_P521 => Some(Curve::P521),
        _ => None,
    }
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
        "{name} key left out: STS accepts only RSA ({MIN_RSA_BITS} to {MAX_RSA_BITS} bits) and EC P-256/P-384/P-521"
    ))
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
