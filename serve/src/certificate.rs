//! Reading the validity and public key of a DER certificate, without an X.509 library.
//!
//! rustls and webpki verify certificates but do not expose their dates; the two users here (the webhook's
//! self-signed renewal and the serving-certificate expiry metric) need `notAfter`, and the renewal the
//! SubjectPublicKeyInfo. Only the outer elements of the TBSCertificate are walked.

use std::time::{Duration, SystemTime};

/// The fields of a certificate that webpki does not expose and irsa needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFields {
    /// End of the validity period.
    pub not_after: SystemTime,
    /// The whole SubjectPublicKeyInfo element, as rcgen's `subject_public_key_info()` encodes it.
    pub spki: Vec<u8>,
}

/// Reads `validity.notAfter` and `subjectPublicKeyInfo` from a DER certificate (RFC 5280, 4.1). Only walks
/// the outer elements: `None` for what it cannot read.
pub fn fields(der: &[u8]) -> Option<CertificateFields> {
    let certificate = Der::read(der)?.expect(SEQUENCE)?;
    let tbs = Der::read(certificate.contents)?.expect(SEQUENCE)?;
    let mut rest = tbs.contents;
    // [0] EXPLICIT version, absent for v1.
    if let Some(version) = Der::read(rest).and_then(|e| e.expect(0xa0)) {
        rest = version.rest;
    }
    for _ in ["serialNumber", "signature", "issuer"] {
        rest = Der::read(rest)?.rest;
    }
    let validity = Der::read(rest)?.expect(SEQUENCE)?;
    let not_before = Der::read(validity.contents)?;
    let not_after = Der::read(not_before.rest)?;
    let subject = Der::read(validity.rest)?;
    let spki = Der::read(subject.rest)?.expect(SEQUENCE)?;
    Some(CertificateFields {
        not_after: der_time(not_after.tag, not_after.contents)?,
        spki: spki.whole.to_vec(),
    })
}

const SEQUENCE: u8 = 0x30;

/// One DER element.
struct Der<'a> {
    tag: u8,
    /// The element, header included.
    whole: &'a [u8],
    contents: &'a [u8],
    /// What follows the element.
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    /// The first element of `input` (single-octet tags, definite lengths: all that DER allows here).
    fn read(input: &'a [u8]) -> Option<Self> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (length, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let octets = usize::from(first & 0x7f);
            if octets == 0 || octets > 4 || rest.len() < octets {
                return None;
            }
            let length = rest[..octets]
                .iter()
                .fold(0usize, |length, &b| (length << 8) | usize::from(b));
            (length, &rest[octets..])
        };
        if rest.len() < length {
            return None;
        }
        let header = input.len() - rest.len();
        Some(Self {
            tag,
            whole: &input[..header + length],
            contents: &rest[..length],
            rest: &rest[length..],
        })
    }

    fn expect(self, tag: u8) -> Option<Self> {
        (self.tag == tag).then_some(self)
    }
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as RFC 5280 restricts them.
fn der_time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |at: usize| rest[at..at + 2].parse::<i64>().ok();
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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
        assert!(der_time(0x17, b"9912312359Z").is_none());
    }
}
