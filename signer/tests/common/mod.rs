//! Shared by the signer's tests: the issuer's key fixtures (made with openssl, with openssl's kids).

#![allow(dead_code)]

use std::path::PathBuf;

/// A file of `issuer/tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../issuer/tests/fixtures")
        .join(name)
}

/// The kid openssl computed for fixture `name` (`expected-kids.txt`).
pub fn expected_kid(name: &str) -> String {
    let list = std::fs::read_to_string(fixture("expected-kids.txt")).unwrap();
    list.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(file, _)| *file == name)
        .map(|(_, kid)| kid.trim().to_string())
        .unwrap_or_else(|| panic!("no expected kid for {name}"))
}

/// Verifies `header.claims.signature` with the PEM public key `public_pem`, returning the claims.
pub fn verify(token: &str, public_pem: &[u8], alg: jsonwebtoken::Algorithm) -> serde_json::Value {
    let key = match alg {
        jsonwebtoken::Algorithm::RS256 => jsonwebtoken::DecodingKey::from_rsa_pem(public_pem),
        _ => jsonwebtoken::DecodingKey::from_ec_pem(public_pem),
    }
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("the signature verifies with the public key")
        .claims
}

/// A KMS client for moto at `endpoint` (`IRSA_MOTO_ENDPOINT`), with moto's dummy credentials.
pub fn moto_kms(endpoint: &str) -> aws_sdk_kms::Client {
    use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// A KMS key-set name no other test or run uses (moto is shared by every test and every run): `what`, then
/// the process, the time and a counter.
pub fn unique_set(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{what}-{}-{nanos}-{n}", std::process::id())
}
