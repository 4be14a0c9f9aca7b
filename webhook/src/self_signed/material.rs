//! The pure core: what the Secret should hold (a CA and a leaf), judged and made without any I/O.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

use super::SelfSignedError;

/// Renew when less than this is left, so that a restart in the last month renews rather than expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
const CA_LIFETIME: Duration = Duration::from_secs(3650 * 24 * 3600);
const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Start validity a little in the past: the apiserver's clock may lag ours.
const BACKDATE: Duration = Duration::from_secs(3600);
const CA_COMMON_NAME: &str = "irsa webhook self-signed CA";

/// The Secret's keys.
pub(super) const TLS_CRT: &str = "tls.crt";
pub(super) const TLS_KEY: &str = "tls.key";
pub(super) const CA_CRT: &str = "ca.crt";
pub(super) const CA_KEY: &str = "ca.key";

/// The certificate's subject alternative names: the Service's four DNS forms, then the extra ones (trimmed,
/// without empties and duplicates).
pub fn san_list(
    service: &str,
    namespace: &str,
    extra: &[String],
) -> Result<Vec<String>, SelfSignedError> {
    let mut sans = vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ];
    for san in extra.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !sans.iter().any(|known| known == san) {
            sans.push(san.to_string());
        }
    }
    for san in &sans {
        // The verifier checks names as ServerNames: what it cannot parse could never match.
        if ServerName::try_from(san.as_str()).is_err() {
            return Err(SelfSignedError::InvalidSan(san.clone()));
        }
    }
    Ok(sans)
}

/// The PEM contents of the Secret. An absent or non-UTF-8 key reads as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Material {
    /// The CA certificate.
    pub ca_crt: String,
    /// The CA private key (PKCS#8), kept to sign the next leaf with the same CA.
    pub ca_key: String,
    /// The serving certificate followed by the CA certificate.
    pub tls_crt: String,
    /// The serving private key (PKCS#8).
    pub tls_key: String,
}

impl Material {
    /// Reads the four keys of a Secret.
    pub fn from_secret(secret: &Secret) -> Self {
        let read = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|data| data.get(key))
                .and_then(|value| String::from_utf8(value.0.clone()).ok())
                .unwrap_or_default()
        };
        Self {
            ca_crt: read(CA_CRT),
            ca_key: read(CA_KEY),
            tls_crt: read(TLS_CRT),
            tls_key: read(TLS_KEY),
        }
    }

    /// The Secret's `data` holding this material (the inverse of [`Material::from_secret`]).
    pub fn secret_data(&self) -> BTreeMap<String, ByteString> {
        [
            (TLS_CRT, &self.tls_crt),
            (TLS_KEY, &self.tls_key),
            (CA_CRT, &self.ca_crt),
            (CA_KEY, &self.ca_key),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), ByteString(value.as_bytes().to_vec())))
        .collect()
    }
}

/// What [`assess`] found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A key of the Secret is absent.
    Missing,
    /// A certificate or key does not parse.
    Unreadable,
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// The certificate expires within [`RENEW_BEFORE`] (or already has).
    Expiring,
    /// The serving certificate does not cover every wanted SAN.
    SanMismatch,
    /// The serving certificate does not chain to the CA.
    Untrusted,
}

/// What to do with the material found in the Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Good as it is.
    Reuse,
    /// The CA is good; issue a new serving certificate with it (the `caBundle` does not change).
    RenewLeaf(Reason),
    /// Start over with a new CA.
    NewCa(Reason),
}

/// Decides whether `material` can be served for `sans` at `now`. Pure: no I/O, no clock.
pub fn assess(material: &Material, sans: &[String], now: SystemTime) -> Verdict {
    let horizon = now + RENEW_BEFORE;
    // The CA: present, its key matches, far enough from expiry. A trust anchor's dates are not checked by
    // webpki, but the apiserver (Go) checks them: read notAfter ourselves.
    if material.ca_crt.is_empty() || material.ca_key.is_empty() {
        return Verdict::NewCa(Reason::Missing);
    }
    let Some(ca) = first_certificate(&material.ca_crt) else {
        return Verdict::NewCa(Reason::Unreadable);
    };
    let Some(ca_fields) = irsa_serve::certificate::fields(&ca) else {
        return Verdict::NewCa(Reason::Unreadable);
    };
    let Ok(ca_key) = KeyPair::from_pem(&material.ca_key) else {
        return Verdict::NewCa(Reason::Unreadable);
    };
    if ca_key.subject_public_key_info() != ca_fields.spki {
        return Verdict::NewCa(Reason::KeyMismatch);
    }
    if ca_fields.not_after <= horizon {
        return Verdict::NewCa(Reason::Expiring);
    }
    let mut roots = RootCertStore::empty();
    if roots.add(ca).is_err() {
        return Verdict::NewCa(Reason::Unreadable);
    }
    let Ok(verifier) = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build() else {
        return Verdict::NewCa(Reason::Unreadable);
    };

    // The serving certificate.
    if material.tls_crt.is_empty() || material.tls_key.is_empty() {
        return Verdict::RenewLeaf(Reason::Missing);
    }
    let Some(leaf) = first_certificate(&material.tls_crt) else {
        return Verdict::RenewLeaf(Reason::Unreadable);
    };
    let Some(leaf_fields) = irsa_serve::certificate::fields(&leaf) else {
        return Verdict::RenewLeaf(Reason::Unreadable);
    };
    let Ok(leaf_key) = KeyPair::from_pem(&material.tls_key) else {
        return Verdict::RenewLeaf(Reason::Unreadable);
    };
    if leaf_key.subject_public_key_info() != leaf_fields.spki {
        return Verdict::RenewLeaf(Reason::KeyMismatch);
    }
    // Verifying at the horizon checks the chain to the CA, the dates (still valid a month from now) and each
    // name, exactly as a TLS client would.
    let at = UnixTime::since_unix_epoch(since_epoch(horizon));
    for san in sans {
        let Ok(name) = ServerName::try_from(san.as_str()) else {
            return Verdict::RenewLeaf(Reason::SanMismatch);
        };
        if let Err(err) = verifier.verify_server_cert(&leaf, &[], &name, &[], at) {
            let reason = match err {
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => Reason::Expiring,
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => Reason::SanMismatch,
                _ => Reason::Untrusted,
            };
            return Verdict::RenewLeaf(reason);
        }
    }
    Verdict::Reuse
}

/// A new CA and a serving certificate signed by it.
pub fn new_material(sans: &[String], now: SystemTime) -> Result<Material, SelfSignedError> {
    let ca_key = KeyPair::generate()?;
    let mut params = ca_params();
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now - BACKDATE);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now + CA_LIFETIME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_crt = params.self_signed(&ca_key)?.pem();
    let ca_key = ca_key.serialize_pem();
    renew_leaf(ca_crt, ca_key, sans, now)
}

/// A new serving certificate signed by the given CA (whose key must match: see [`assess`]).
pub fn renew_leaf(
    ca_crt: String,
    ca_key: String,
    sans: &[String],
    now: SystemTime,
) -> Result<Material, SelfSignedError> {
    let signing_key = KeyPair::from_pem(&ca_key)?;
    // A leaf must not outlive its CA.
    let ca_not_after = first_certificate(&ca_crt)
        .as_ref()
        .and_then(|der| irsa_serve::certificate::fields(der))
        .map(|fields| fields.not_after)
        .ok_or(rcgen::Error::CouldNotParseCertificate)?;
    let issuer = Issuer::new(ca_params(), signing_key);

    let leaf_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        sans.get(2).or(sans.first()).cloned().unwrap_or_default(),
    );
    params.distinguished_name = name;
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now - BACKDATE);
    params.not_after =
        rcgen::date_time_ymd(1970, 1, 1) + since_epoch((now + LEAF_LIFETIME).min(ca_not_after));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&leaf_key, &issuer)?;
    Ok(Material {
        tls_crt: format!("{}{}", leaf.pem(), ca_crt),
        tls_key: leaf_key.serialize_pem(),
        ca_crt,
        ca_key,
    })
}

/// What the CA is named and may do; also rebuilds the issuer of a stored CA, whose subject must be this one.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// What to store after `material` was assessed: `None` when it is good as it is.
pub(super) fn next_material(
    material: &Material,
    sans: &[String],
    now: SystemTime,
) -> Result<Option<(Material, Verdict)>, SelfSignedError> {
    let verdict = assess(material, sans, now);
    let next = match verdict {
        Verdict::Reuse => return Ok(None),
        Verdict::RenewLeaf(_) => {
            match renew_leaf(material.ca_crt.clone(), material.ca_key.clone(), sans, now) {
                // A CA we did not make (another subject) cannot be re-issued from: start over.
                Ok(renewed) if assess(&renewed, sans, now) == Verdict::Reuse => renewed,
                _ => new_material(sans, now)?,
            }
        }
        Verdict::NewCa(_) => new_material(sans, now)?,
    };
    Ok(Some((next, verdict)))
}

/// Time since the epoch, for `rcgen::date_time_ymd(1970, 1, 1) + ...` (rcgen's time type is not ours to name).
fn since_epoch(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

pub(super) fn first_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::self_signed::test_support::*;

    #[test]
    fn san_list_has_the_service_forms_then_the_extras() {
        let sans = san_list(
            "hook",
            "ns",
            &[
                " 127.0.0.1".into(),
                "".into(),
                "hook.ns".into(),
                "::1".into(),
                "x.example".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            sans,
            [
                "hook",
                "hook.ns",
                "hook.ns.svc",
                "hook.ns.svc.cluster.local",
                "127.0.0.1",
                "::1",
                "x.example"
            ]
        );
    }

    #[test]
    fn san_list_refuses_what_is_neither_a_name_nor_an_ip() {
        let err = san_list("hook", "ns", &["not a name".into()]).unwrap_err();
        assert!(matches!(err, SelfSignedError::InvalidSan(san) if san == "not a name"));
    }

    #[test]
    fn fresh_material_is_reused() {
        let material = new_material(&sans(), now()).unwrap();
        assert_eq!(assess(&material, &sans(), now()), Verdict::Reuse);
        // The served chain is the leaf then the CA.
        assert_eq!(
            CertificateDer::pem_slice_iter(material.tls_crt.as_bytes()).count(),
            2
        );
        assert!(material.tls_crt.ends_with(&material.ca_crt));
        // Still good eleven months later; renewed in the last thirty days.
        assert_eq!(
            assess(&material, &sans(), now() + 330 * DAY),
            Verdict::Reuse
        );
        assert_eq!(
            assess(&material, &sans(), now() + 340 * DAY),
            Verdict::RenewLeaf(Reason::Expiring)
        );
    }

    #[test]
    fn an_expired_leaf_is_renewed_with_the_same_ca() {
        let old = new_material(&sans(), now() - 400 * DAY).unwrap();
        assert_eq!(
            assess(&old, &sans(), now()),
            Verdict::RenewLeaf(Reason::Expiring)
        );
        let (renewed, verdict) = next_material(&old, &sans(), now()).unwrap().unwrap();
        assert_eq!(verdict, Verdict::RenewLeaf(Reason::Expiring));
        assert_eq!(renewed.ca_crt, old.ca_crt, "the caBundle must not change");
        assert_eq!(renewed.ca_key, old.ca_key);
        assert_ne!(renewed.tls_key, old.tls_key);
        assert_eq!(assess(&renewed, &sans(), now()), Verdict::Reuse);
        assert_eq!(next_material(&renewed, &sans(), now()).unwrap(), None);
    }

    #[test]
    fn a_san_mismatch_renews_the_leaf() {
        let material = new_material(&sans(), now()).unwrap();
        let other_service = san_list("other", "irsa-system", &[]).unwrap();
        assert_eq!(
            assess(&material, &other_service, now()),
            Verdict::RenewLeaf(Reason::SanMismatch)
        );
        let more = san_list("irsa-webhook", "irsa-system", &["10.0.0.7".into()]).unwrap();
        assert_eq!(
            assess(&material, &more, now()),
            Verdict::RenewLeaf(Reason::SanMismatch)
        );
        // Fewer names than the certificate has is fine.
        let fewer = san_list("irsa-webhook", "irsa-system", &[]).unwrap();
        assert_eq!(assess(&material, &fewer, now()), Verdict::Reuse);
    }

    #[test]
    fn a_ca_near_its_end_is_replaced() {
        let old = new_material(&sans(), now() - 3640 * DAY).unwrap();
        assert_eq!(
            assess(&old, &sans(), now()),
            Verdict::NewCa(Reason::Expiring)
        );
        let (next, _) = next_material(&old, &sans(), now()).unwrap().unwrap();
        assert_ne!(next.ca_crt, old.ca_crt);
        assert_eq!(assess(&next, &sans(), now()), Verdict::Reuse);
    }

    #[test]
    fn a_leaf_never_outlives_its_ca() {
        // The CA has 200 days left: the renewed leaf gets 200 days, not a year.
        let old = new_material(&sans(), now() - 3450 * DAY).unwrap();
        let renewed = renew_leaf(old.ca_crt.clone(), old.ca_key.clone(), &sans(), now()).unwrap();
        let leaf = first_certificate(&renewed.tls_crt).unwrap();
        let ca = first_certificate(&renewed.ca_crt).unwrap();
        assert_eq!(
            irsa_serve::certificate::fields(&leaf).unwrap().not_after,
            irsa_serve::certificate::fields(&ca).unwrap().not_after
        );
    }

    #[test]
    fn broken_or_mixed_material_is_not_reused() {
        let good = new_material(&sans(), now()).unwrap();
        let other = new_material(&sans(), now()).unwrap();
        assert_eq!(
            assess(&Material::default(), &sans(), now()),
            Verdict::NewCa(Reason::Missing)
        );
        let garbage = Material {
            ca_crt: "garbage".into(),
            ..good.clone()
        };
        assert_eq!(
            assess(&garbage, &sans(), now()),
            Verdict::NewCa(Reason::Unreadable)
        );
        let foreign_ca_key = Material {
            ca_key: other.ca_key.clone(),
            ..good.clone()
        };
        assert_eq!(
            assess(&foreign_ca_key, &sans(), now()),
            Verdict::NewCa(Reason::KeyMismatch)
        );
        let no_leaf = Material {
            tls_crt: String::new(),
            ..good.clone()
        };
        assert_eq!(
            assess(&no_leaf, &sans(), now()),
            Verdict::RenewLeaf(Reason::Missing)
        );
        let foreign_leaf_key = Material {
            tls_key: other.tls_key.clone(),
            ..good.clone()
        };
        assert_eq!(
            assess(&foreign_leaf_key, &sans(), now()),
            Verdict::RenewLeaf(Reason::KeyMismatch)
        );
        let leaf_of_another_ca = Material {
            tls_crt: other.tls_crt.clone(),
            tls_key: other.tls_key.clone(),
            ..good.clone()
        };
        assert_eq!(
            assess(&leaf_of_another_ca, &sans(), now()),
            Verdict::RenewLeaf(Reason::Untrusted)
        );
    }

    #[test]
    fn a_foreign_ca_is_replaced_rather_than_reused_as_issuer() {
        // A CA with another subject: a leaf issued "by" it would not chain, so start over.
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "someone else");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now() - DAY);
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now() + 3000 * DAY);
        let foreign = Material {
            ca_crt: params.self_signed(&key).unwrap().pem(),
            ca_key: key.serialize_pem(),
            ..Material::default()
        };
        assert_eq!(
            assess(&foreign, &sans(), now()),
            Verdict::RenewLeaf(Reason::Missing)
        );
        let (next, _) = next_material(&foreign, &sans(), now()).unwrap().unwrap();
        assert_ne!(next.ca_crt, foreign.ca_crt);
        assert_eq!(assess(&next, &sans(), now()), Verdict::Reuse);
    }

    #[test]
    fn secret_round_trip() {
        let material = new_material(&sans(), now()).unwrap();
        let secret = Secret {
            data: Some(material.secret_data()),
            ..Secret::default()
        };
        assert_eq!(Material::from_secret(&secret), material);
        assert_eq!(
            secret.data.unwrap().keys().collect::<Vec<_>>(),
            ["ca.crt", "ca.key", "tls.crt", "tls.key"]
        );
    }
}
