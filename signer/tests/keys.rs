//! Key files: kids equal the issuer's and openssl's, signatures verify, bad files give clear errors.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{expected_kid, fixture, verify};
use irsa_signer::jwt::{self, ClaimsError};
use irsa_signer::keys::{KeyFileError, KeySet, SigningKey};

const CLAIMS: &str = r#"{"iss":"https://issuer.example","sub":"system:serviceaccount:ns:app"}"#;

fn claims() -> String {
    URL_SAFE_NO_PAD.encode(CLAIMS)
}

fn load_err(content: &str) -> KeyFileError {
    SigningKey::parse(Path::new("k.pem"), content.as_bytes(), SystemTime::now()).unwrap_err()
}

#[test]
fn kids_equal_openssls_and_the_issuers() {
    for name in [
        "rsa2048.key",
        "rsa3072.key",
        "p256.key",
        "p256.sec1.key",
        "p384.key",
        "p521.sec1.key",
    ] {
        let key = SigningKey::load(&fixture(name)).unwrap();
        assert_eq!(key.kid(), expected_kid(name), "{name}");
        let issuer = irsa_issuer::keys::load_files(&[fixture(name)]).unwrap();
        assert_eq!(key.kid(), issuer.keys[0].kid(), "{name}");
        assert_eq!(key.algorithm(), issuer.keys[0].algorithm(), "{name}");
        // FetchKeys' DER is the key the kid names.
        assert_eq!(
            irsa_issuer::keys::kid_of_spki_der(key.spki_der()),
            key.kid()
        );
    }
}

#[test]
fn signatures_verify_with_the_public_key() {
    for (name, public, alg) in [
        ("rsa2048.key", "rsa2048.pub", jsonwebtoken::Algorithm::RS256),
        ("p256.sec1.key", "p256.pub", jsonwebtoken::Algorithm::ES256),
        ("p384.key", "p384.pub", jsonwebtoken::Algorithm::ES384),
    ] {
        let key = SigningKey::load(&fixture(name)).unwrap();
        let signed = jwt::sign(&key, &claims()).unwrap();
        let token = format!("{}.{}.{}", signed.header, claims(), signed.signature);
        let public = std::fs::read(fixture(public)).unwrap();
        let got = verify(&token, &public, alg);
        assert_eq!(got["sub"], "system:serviceaccount:ns:app");
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.alg, alg);
    }
}

#[test]
fn header_holds_only_alg_kid_and_typ() {
    let key = SigningKey::load(&fixture("p256.key")).unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(key.header()).unwrap()).unwrap();
    assert_eq!(
        header,
        serde_json::json!({"alg": "ES256", "kid": key.kid(), "typ": "JWT"})
    );
}

#[test]
fn claims_that_are_not_a_jwt_segment_are_refused() {
    let key = SigningKey::load(&fixture("p256.key")).unwrap();
    let err = |c: &str| match jwt::sign(&key, c) {
        Err(jwt::SignError::Claims(e)) => e,
        other => panic!("{c:?} was signed: {other:?}"),
    };
    assert_eq!(err(""), ClaimsError::Empty);
    assert!(matches!(err("e30="), ClaimsError::NotBase64Url(_)));
    assert!(matches!(err("e3+0"), ClaimsError::NotBase64Url(_)));
    let long = "A".repeat(jwt::MAX_CLAIMS_LEN + 4);
    assert!(matches!(err(&long), ClaimsError::TooLong(_)));
}

#[test]
fn debug_shows_no_private_key() {
    let key = SigningKey::load(&fixture("rsa2048.key")).unwrap();
    let private = std::fs::read_to_string(fixture("rsa2048.key")).unwrap();
    let body: String = private.lines().nth(1).unwrap().chars().take(20).collect();
    let shown = format!("{key:?}");
    assert!(shown.contains(key.kid()));
    assert!(!shown.contains(&body));
}

#[test]
fn a_small_rsa_key_is_refused_with_its_size() {
    let err = SigningKey::load(&fixture("rsa1024.key")).unwrap_err();
    assert!(err.to_string().contains("1024 bits"), "{err}");
}

#[test]
fn keys_sts_refuses_are_refused() {
    for name in ["ed25519.key", "secp256k1.key"] {
        let err = SigningKey::load(&fixture(name)).unwrap_err();
        assert!(matches!(err, KeyFileError::Unusable(_)), "{name}: {err}");
    }
}

#[test]
fn public_keys_and_certificates_cannot_sign() {
    for name in ["rsa2048.pub", "p256.crt", "no-key.csr"] {
        let err = SigningKey::load(&fixture(name)).unwrap_err();
        assert!(
            matches!(err, KeyFileError::NoPrivateKey { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn two_private_keys_in_one_file_are_refused() {
    let both = std::fs::read_to_string(fixture("p256.key")).unwrap()
        + &std::fs::read_to_string(fixture("rsa2048.key")).unwrap();
    assert!(matches!(
        load_err(&both),
        KeyFileError::SeveralPrivateKeys { count: 2, .. }
    ));
}

#[test]
fn encrypted_keys_are_refused() {
    let pkcs8 =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(matches!(load_err(pkcs8), KeyFileError::Encrypted { .. }));
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
    assert!(matches!(load_err(legacy), KeyFileError::Encrypted { .. }));
}

#[test]
fn broken_pem_and_broken_keys_are_refused() {
    let bad_base64 = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
    let err = load_err(bad_base64);
    assert!(
        matches!(
            err,
            KeyFileError::MalformedPem { .. } | KeyFileError::Unusable(_)
        ),
        "{err}"
    );
    let not_der = "-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n";
    assert!(matches!(load_err(not_der), KeyFileError::Unusable(_)));
}

fn copy_with_age(dir: &Path, name: &str, as_name: &str, age_secs: u64) {
    let to = dir.join(as_name);
    std::fs::copy(fixture(name), &to).unwrap();
    let file = std::fs::File::options().write(true).open(&to).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(age_secs))
        .unwrap();
}

#[test]
fn the_newest_file_signs_and_every_key_is_published() {
    let dir = tempfile::tempdir().unwrap();
    copy_with_age(dir.path(), "p256.key", "b-new.pem", 10);
    copy_with_age(dir.path(), "rsa2048.key", "a-old.pem", 1000);
    std::fs::create_dir(dir.path().join("..data")).unwrap();
    let set = KeySet::load_dir(dir.path(), None).unwrap();
    assert_eq!(set.active().kid(), expected_kid("p256.key"));
    let kids: Vec<&str> = set.keys().iter().map(|k| k.kid()).collect();
    assert_eq!(
        kids,
        [expected_kid("rsa2048.key"), expected_kid("p256.key")]
    );

    let named = KeySet::load_dir(dir.path(), Some("a-old.pem")).unwrap();
    assert_eq!(named.active().kid(), expected_kid("rsa2048.key"));
}

#[test]
fn a_bad_file_in_the_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    copy_with_age(dir.path(), "p256.key", "good.pem", 0);
    copy_with_age(dir.path(), "rsa1024.key", "small.pem", 0);
    let err = KeySet::load_dir(dir.path(), None).unwrap_err();
    assert!(err.to_string().contains("small.pem"), "{err}");
}

#[test]
fn an_empty_directory_or_an_unknown_signing_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        KeySet::load_dir(dir.path(), None),
        Err(KeyFileError::Empty { .. })
    ));
    copy_with_age(dir.path(), "p256.key", "good.pem", 0);
    assert!(matches!(
        KeySet::load_dir(dir.path(), Some("other.pem")),
        Err(KeyFileError::NoSuchSigningKey { .. })
    ));
    assert!(matches!(
        KeySet::load_dir(&dir.path().join("missing"), None),
        Err(KeyFileError::Unreadable { .. })
    ));
}
