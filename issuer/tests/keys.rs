//! Key loading against openssl-made fixtures: kids, formats, refusals, and the absence of private material.

mod common;

use std::path::PathBuf;

use common::{expected_kids, fixture, kid_of};
use irsa_issuer::jwks;
use irsa_issuer::keys::{self, KeyError, PublicKey};
use serde_json::Value;

fn load(names: &[&str]) -> Result<keys::LoadedKeys, KeyError> {
    let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    keys::load_files(&paths)
}

#[test]
fn kid_equals_the_openssl_computed_value_for_every_format() {
    let cases = expected_kids();
    assert!(cases.len() >= 17);
    for (file, kid) in cases {
        let loaded = load(&[&file]).unwrap_or_else(|e| panic!("{file}: {e}"));
        let kids: Vec<&str> = loaded.keys.iter().map(PublicKey::kid).collect();
        assert_eq!(kids, [kid.as_str()], "{file}");
        assert!(loaded.warnings.is_empty(), "{file}: {:?}", loaded.warnings);
    }
}

#[test]
fn a_compressed_point_gets_the_kid_of_the_uncompressed_key() {
    let loaded = load(&["p256.compressed.pub"]).unwrap();
    assert_eq!(loaded.keys[0].kid(), kid_of("p256.pub"));
}

#[test]
fn several_keys_per_file_and_per_files_are_deduplicated() {
    let loaded = load(&["bundle.pem"]).unwrap();
    let kids: Vec<&str> = loaded.keys.iter().map(PublicKey::kid).collect();
    assert_eq!(kids, [kid_of("rsa2048.pub"), kid_of("p256.pub")]);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].message.contains("Ed25519"),
        "{}",
        loaded.warnings[0]
    );
    assert!(loaded.warnings[0].source.ends_with("bundle.pem"));

    let loaded = load(&["rsa2048.key", "bundle.pem", "p384.crt", "p384.sec1.key"]).unwrap();
    let kids: Vec<&str> = loaded.keys.iter().map(PublicKey::kid).collect();
    assert_eq!(
        kids,
        [
            kid_of("rsa2048.pub"),
            kid_of("p256.pub"),
            kid_of("p384.pub")
        ]
    );
}

/// The JWK members each key type may have: nothing else, in particular no private member.
fn assert_only_public_members(jwks: &[u8]) {
    let doc: Value = serde_json::from_slice(jwks).unwrap();
    assert_eq!(
        doc.as_object().unwrap().len(),
        1,
        "only \"keys\" at the top"
    );
    for key in doc["keys"].as_array().unwrap() {
        let mut members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        let expected: &[&str] = match key["kty"].as_str().unwrap() {
            "RSA" => &["alg", "e", "kid", "kty", "n", "use"],
            "EC" => &["alg", "crv", "kid", "kty", "use", "x", "y"],
            other => panic!("kty {other}"),
        };
        assert_eq!(members, expected);
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "key_ops"] {
            assert!(key.get(private).is_none(), "{private} in {key}");
        }
        assert_eq!(key["use"], "sig");
    }
}

#[test]
fn private_keys_publish_only_their_public_half() {
    let private = [
        "rsa2048.key",
        "rsa3072.key",
        "p256.key",
        "p256.sec1.key",
        "p384.key",
        "p384.sec1.key",
        "p521.key",
        "p521.sec1.key",
    ];
    let loaded = load(&private).unwrap();
    assert_eq!(loaded.keys.len(), 5, "each key once");
    let rendered = jwks::render(&loaded.keys);
    assert_only_public_members(&rendered.json);
    // The private numbers, encoded as a JWK would carry them, appear nowhere.
    let text = String::from_utf8(rendered.json.clone()).unwrap();
    let b64 = |b: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let pkcs1 = pem_body(&fixture("rsa3072.key"));
    let rsa = rsa::pkcs1::RsaPrivateKey::try_from(pkcs1.as_slice()).unwrap();
    for secret in [
        rsa.private_exponent,
        rsa.prime1,
        rsa.prime2,
        rsa.exponent1,
        rsa.exponent2,
        rsa.coefficient,
    ] {
        assert!(
            !text.contains(&b64(secret.as_bytes())),
            "an RSA private number leaked"
        );
    }
    for (file, scalar) in [
        (
            "p256.sec1.key",
            p256::SecretKey::from_sec1_der(&pem_body(&fixture("p256.sec1.key")))
                .unwrap()
                .to_bytes()
                .to_vec(),
        ),
        (
            "p384.sec1.key",
            p384::SecretKey::from_sec1_der(&pem_body(&fixture("p384.sec1.key")))
                .unwrap()
                .to_bytes()
                .to_vec(),
        ),
    ] {
        assert!(
            !text.contains(&b64(&scalar)),
            "{file}: the private scalar leaked"
        );
    }
}

fn pem_body(path: &std::path::Path) -> Vec<u8> {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(path).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn jwk_shape_per_key_type() {
    let loaded = load(&[
        "rsa2048.pub",
        "rsa3072.crt",
        "p256.pub",
        "p384.pub",
        "p521.pub",
    ])
    .unwrap();
    let rendered = jwks::render(&loaded.keys);
    let doc: Value = serde_json::from_slice(&rendered.json).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    let shape: Vec<(&str, &str, Option<&str>)> = keys
        .iter()
        .map(|k| {
            (
                k["kty"].as_str().unwrap(),
                k["alg"].as_str().unwrap(),
                k["crv"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("RSA", "RS256", None),
            ("RSA", "RS256", None),
            ("EC", "ES256", Some("P-256")),
            ("EC", "ES384", Some("P-384")),
            ("EC", "ES512", Some("P-521"))
        ]
    );
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    for (k, bits) in keys[..2].iter().zip([2048, 3072]) {
        let n = b64(&k["n"]);
        assert_eq!(n.len() * 8, bits, "n is unsigned, no leading zero byte");
        assert_ne!(n[0], 0);
        assert_eq!(b64(&k["e"]), [1, 0, 1]);
    }
    for (k, width) in keys[2..].iter().zip([32, 48, 66]) {
        assert_eq!(b64(&k["x"]).len(), width, "x is fixed width");
        assert_eq!(b64(&k["y"]).len(), width, "y is fixed width");
    }
}

#[test]
fn tokens_signed_with_the_private_keys_verify_against_the_rendered_jwks() {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::JwkSet};
    let cases = [
        ("rsa2048.key", Algorithm::RS256, true),
        ("rsa3072.key", Algorithm::RS256, true),
        ("p256.key", Algorithm::ES256, false),
        ("p384.key", Algorithm::ES384, false),
    ];
    let public: Vec<PathBuf> = [
        "rsa2048.pub",
        "rsa3072.pkcs1.pub",
        "p256.crt",
        "p384.sec1.key",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let rendered = jwks::render(&keys::load_files(&public).unwrap().keys);
    let set: JwkSet = serde_json::from_slice(&rendered.json).unwrap();
    let claims = serde_json::json!({
        "iss": "https://issuer.example", "sub": "system:serviceaccount:default:app",
        "aud": ["sts.amazonaws.com"], "exp": 4_000_000_000u64,
    });
    for (file, alg, rsa) in cases {
        let pem = std::fs::read(fixture(file)).unwrap();
        let key = if rsa {
            EncodingKey::from_rsa_pem(&pem)
        } else {
            EncodingKey::from_ec_pem(&pem)
        }
        .unwrap();
        let kid = kid_of(file);
        let header = Header {
            kid: Some(kid.clone()),
            ..Header::new(alg)
        };
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();

        let jwk = set
            .find(&kid)
            .unwrap_or_else(|| panic!("{file}: kid {kid} not in the JWKS"));
        let mut validation = Validation::new(alg);
        validation.set_audience(&["sts.amazonaws.com"]);
        validation.set_issuer(&["https://issuer.example"]);
        let decoded = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        );
        assert!(decoded.is_ok(), "{file}: {decoded:?}");
        // And not against another key of the set.
        let other = set
            .keys
            .iter()
            .find(|j| j.common.key_id.as_deref() != Some(&kid))
            .unwrap();
        if let Ok(other) = DecodingKey::from_jwk(other) {
            assert!(
                jsonwebtoken::decode::<Value>(&token, &other, &validation).is_err(),
                "{file}"
            );
        }
    }
}

#[test]
fn p521_signature_verifies_with_the_rendered_coordinates() {
    // jsonwebtoken has no ES512: verify with aws-lc-rs from the JWK's x and y.
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
    use base64::Engine as _;
    let pem = std::fs::read_to_string(fixture("p521.key")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P521_SHA512_FIXED_SIGNING, &der).unwrap();
    let sig = pair.sign(&SystemRandom::new(), b"header.payload").unwrap();

    let rendered = jwks::render(&load(&["p521.pub"]).unwrap().keys);
    let doc: Value = serde_json::from_slice(&rendered.json).unwrap();
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let mut point = vec![4u8];
    point.extend(b64(&doc["keys"][0]["x"]));
    point.extend(b64(&doc["keys"][0]["y"]));
    assert_eq!(point, pair.public_key().as_ref());
    UnparsedPublicKey::new(&signature::ECDSA_P521_SHA512_FIXED, &point)
        .verify(b"header.payload", sig.as_ref())
        .unwrap();
}

#[test]
fn bad_inputs_are_clear_errors_naming_the_file() {
    let missing = load(&["does-not-exist.pem"]).unwrap_err();
    assert!(matches!(missing, KeyError::Unreadable { .. }));
    assert!(
        missing.to_string().contains("does-not-exist.pem"),
        "{missing}"
    );

    let csr = load(&["no-key.csr"]).unwrap_err();
    assert!(matches!(csr, KeyError::NoUsableKey { .. }), "{csr:?}");
    assert!(
        csr.to_string().contains("no-key.csr") && csr.to_string().contains("CERTIFICATE REQUEST"),
        "{csr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just text\n").unwrap();
    let e = keys::load_files(&[text]).unwrap_err();
    assert!(
        matches!(e, KeyError::NoPem { .. }) && e.to_string().contains("notes.txt"),
        "{e}"
    );

    for file in ["rsa1024.key", "rsa1024.pub"] {
        let e = load(&[file]).unwrap_err();
        assert!(
            matches!(e, KeyError::RsaTooSmall { bits: 1024, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string().contains(file) && e.to_string().contains("2048"),
            "{e}"
        );
    }
    for (file, says) in [
        ("ed25519.pub", "Ed25519"),
        ("ed25519.key", "Ed25519"),
        ("secp256k1.key", "secp256k1"),
    ] {
        let e = load(&[file]).unwrap_err();
        assert!(matches!(e, KeyError::NoUsableKey { .. }), "{e:?}");
        assert!(
            e.to_string().contains(file) && e.to_string().contains(says),
            "{e}"
        );
    }
    // One bad file among good ones fails the whole load: never publish half a key set by accident.
    assert!(load(&["rsa2048.pub", "ed25519.pub"]).is_err());
    assert!(matches!(keys::load_files(&[]), Err(KeyError::NoFiles)));

    // An unterminated or encrypted section is reported, not skipped silently.
    let enc = dir.path().join("enc.pem");
    std::fs::write(
        &enc,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = keys::load_files(&[enc]).unwrap_err();
    assert!(e.to_string().contains("ENCRYPTED"), "{e}");
}

#[test]
fn small_keys_next_to_good_ones_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mixed.pem");
    let mut pem = std::fs::read(fixture("rsa1024.pub")).unwrap();
    pem.extend(std::fs::read(fixture("p256.pub")).unwrap());
    std::fs::write(&mixed, pem).unwrap();
    let loaded = keys::load_files(&[mixed]).unwrap();
    assert_eq!(loaded.keys.len(), 1);
    assert!(
        loaded.warnings[0].message.contains("1024 bits"),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn at_most_100_keys_of_each_type() {
    let base = load(&["rsa2048.pub", "p256.pub"]).unwrap().keys;
    let mut many = Vec::new();
    for i in 0..105 {
        many.push(base[0].clone().with_kid(format!("rsa-{i}")));
        many.push(base[1].clone().with_kid(format!("ec-{i}")));
    }
    let rendered = jwks::render(&many);
    assert_eq!(rendered.keys.iter().filter(|k| k.is_rsa()).count(), 100);
    assert_eq!(rendered.keys.iter().filter(|k| !k.is_rsa()).count(), 100);
    assert_eq!(rendered.warnings.len(), 10);
    assert!(
        rendered.warnings[0].message.contains("rsa-100"),
        "{}",
        rendered.warnings[0]
    );
}

#[test]
fn a_broken_pem_section_refuses_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("p256.pub")).unwrap();
    for (name, content, says) in [
        // Truncated: a good key, then a BEGIN line without its END.
        (
            "truncated.pem",
            format!("{good}-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n"),
            "END",
        ),
        // Not base64.
        (
            "garbled.pem",
            format!(
                "{good}-----BEGIN PUBLIC KEY-----\n!!!not base64!!!\n-----END PUBLIC KEY-----\n"
            ),
            "invalid data",
        ),
        // Labels that do not match.
        (
            "mismatched.pem",
            "-----BEGIN PUBLIC KEY-----\nAAEC\n-----END CERTIFICATE-----\n".to_string(),
            "CERTIFICATE",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let e = keys::load_files(&[path]).unwrap_err();
        assert!(matches!(e, KeyError::MalformedPem { .. }), "{name}: {e:?}");
        assert!(
            e.to_string().contains(name) && e.to_string().contains(says),
            "{e}"
        );
    }
}

#[test]
fn a_legacy_encrypted_key_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let enc = dir.path().join("legacy.key");
    std::fs::write(
        &enc,
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAEC\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = keys::load_files(std::slice::from_ref(&enc)).unwrap_err();
    assert!(matches!(e, KeyError::NoUsableKey { .. }), "{e:?}");
    assert!(
        e.to_string().contains("legacy.key")
            && e.to_string()
                .contains("RSA PRIVATE KEY is encrypted: give the public key instead"),
        "{e}"
    );
    // Next to a usable key it is a warning, and the usable key is published.
    let mut pem = std::fs::read(fixture("p256.pub")).unwrap();
    pem.extend(std::fs::read(&enc).unwrap());
    let mixed = dir.path().join("mixed.pem");
    std::fs::write(&mixed, pem).unwrap();
    let loaded = keys::load_files(&[mixed]).unwrap();
    assert_eq!(loaded.keys.len(), 1);
    assert!(
        loaded.warnings[0].message.contains("is encrypted"),
        "{}",
        loaded.warnings[0]
    );
}

/// A PKCS#1 `RSA PUBLIC KEY` of exactly `bits` bits (odd modulus, e = 65537): only the public numbers matter
/// here, so no private key of that size has to be generated.
fn rsa_public_pem(bits: usize) -> String {
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = body.len().to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        if body.len() < 0x80 {
            out.push(body.len() as u8);
        } else {
            out.push(0x80 | (len.len() - skip) as u8);
            out.extend_from_slice(&len[skip..]);
        }
        out.extend_from_slice(body);
        out
    }
    let mut n = vec![0xabu8; bits.div_ceil(8)];
    n[0] = 0xff >> (n.len() * 8 - bits);
    // A leading zero keeps the INTEGER positive when its top bit is set (and only then: DER is canonical).
    if n[0] & 0x80 != 0 {
        n.insert(0, 0);
    }
    let modulus = der(0x02, &n);
    let exponent = der(0x02, &[1, 0, 1]);
    pem::encode(&pem::Pem::new(
        "RSA PUBLIC KEY",
        der(0x30, &[modulus, exponent].concat()),
    ))
}

#[test]
fn rsa_keys_over_16384_bits_are_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let at_cap = dir.path().join("rsa16384.pub");
    std::fs::write(&at_cap, rsa_public_pem(16384)).unwrap();
    let loaded = keys::load_files(&[at_cap]).unwrap();
    assert_eq!(loaded.keys.len(), 1);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    // Next to a usable key: that key is published, the huge one is a warning.
    let mixed = dir.path().join("mixed.pem");
    let mut pem = rsa_public_pem(100_000);
    pem.push_str(&std::fs::read_to_string(fixture("p256.pub")).unwrap());
    std::fs::write(&mixed, pem).unwrap();
    let loaded = keys::load_files(std::slice::from_ref(&mixed)).unwrap();
    let kids: Vec<&str> = loaded.keys.iter().map(PublicKey::kid).collect();
    assert_eq!(kids, [kid_of("p256.pub")]);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let message = &loaded.warnings[0].message;
    assert!(
        message.contains("100000 bits") && message.contains("16384"),
        "{message}"
    );
    let rendered: Value = serde_json::from_slice(&jwks::render(&loaded.keys).json).unwrap();
    assert_eq!(rendered["keys"].as_array().unwrap().len(), 1);

    // Alone in its file: nothing to publish, an error naming the file and the cap.
    let alone = dir.path().join("huge.pub");
    std::fs::write(&alone, rsa_public_pem(16385)).unwrap();
    let e = keys::load_files(&[alone]).unwrap_err();
    assert!(matches!(e, KeyError::NoUsableKey { .. }), "{e:?}");
    assert!(
        e.to_string().contains("huge.pub") && e.to_string().contains("16385 bits"),
        "{e}"
    );
}

#[test]
fn apiserver_rsa_keys_over_16384_bits_are_left_out_with_a_warning() {
    use base64::Engine as _;
    let jwk = |kid: &str, bits: usize| {
        let mut n = vec![0xabu8; bits / 8];
        n[0] = 0xc1;
        serde_json::json!({"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256",
            "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
    };
    let fetched = serde_json::json!({"keys": [jwk("huge", 100_000), jwk("cap", 16384)]});
    let cleaned = jwks::clean(fetched.to_string().as_bytes()).unwrap();
    let kids: Vec<&str> = cleaned.keys.iter().map(PublicKey::kid).collect();
    assert_eq!(kids, ["cap"]);
    assert_eq!(cleaned.warnings.len(), 1, "{:?}", cleaned.warnings);
    let message = &cleaned.warnings[0].message;
    assert!(
        message.contains("key huge left out")
            && message.contains("100000 bits")
            && message.contains("16384"),
        "{message}"
    );
}
