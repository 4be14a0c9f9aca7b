//! Reading the validity and public key of a DER certificate.
//!
//! rustls and webpki verify certificates but do not expose their dates; the two users here (the webhook's
//! self-signed renewal and the serving-certificate expiry metric) need `notAfter`, and the renewal the
//! SubjectPublicKeyInfo. `x509-parser` (which the issuer uses already) reads both.

use std::time::{Duration, SystemTime};

use x509_parser::prelude::{FromDer as _, X509Certificate};

/// The fields of a certificate that webpki does not expose and irsa needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFields {
    /// End of the validity period.
    pub not_after: SystemTime,
    /// The whole SubjectPublicKeyInfo element, as rcgen's `subject_public_key_info()` encodes it.
    pub spki: Vec<u8>,
}

/// Reads `validity.notAfter` and `subjectPublicKeyInfo` from a DER certificate (RFC 5280, 4.1): `None` when
/// the certificate cannot be parsed or expires before 1970.
pub fn fields(der: &[u8]) -> Option<CertificateFields> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let seconds = u64::try_from(certificate.validity().not_after.timestamp()).ok()?;
    Some(CertificateFields {
        not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
        spki: certificate.public_key().raw.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, PublicKeyData as _};

    #[test]
    fn not_after_is_read_from_utc_and_generalized_times() {
        for (year, month, day) in [(2035, 6, 15), (2049, 12, 31), (2050, 1, 1), (2101, 3, 1)] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
            params.not_after = rcgen::date_time_ymd(year, month, day) + Duration::from_secs(3723);
            let der = params.self_signed(&key).unwrap().der().clone();
            let read = fields(&der).unwrap();
            let expected = rcgen::date_time_ymd(year, month, day).unix_timestamp() + 3723;
            assert_eq!(
                read.not_after
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
                expected as u64,
                "{year}-{month}-{day}"
            );
            assert_eq!(read.spki, key.subject_public_key_info());
        }
        assert!(fields(b"\x30\x03\x02\x01\x01").is_none());
    }

    #[test]
    fn an_unreadable_not_after_is_none() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2035, 6, 15) + Duration::from_secs(3723);
        let mut der = params.self_signed(&key).unwrap().der().to_vec();
        // The UTCTime `350615010203Z` with a letter for its last digit, same length: still DER, not a time.
        let at = der
            .windows(13)
            .position(|w| w == b"350615010203Z")
            .expect("notAfter as UTCTime");
        der[at + 11] = b'x';
        assert!(fields(&der).is_none());
    }
}
