//! `--from-apiserver`: cleaning the apiserver's JWKS per the hygiene rules.

mod common;

use common::fixture;
use irsa_issuer::{jwks, keys};
use serde_json::{Value, json};

#[test]
fn keeps_hygienic_keys_under_the_apiserver_kid_and_drops_the_rest() {
    let good = keys::load_files(&[fixture("rsa2048.pub"), fixture("p384.pub")])
        .unwrap()
        .keys;
    let rendered: Value = serde_json::from_slice(&jwks::render(&good).json).unwrap();
    let mut rsa = rendered["keys"][0].clone();
    let mut ec = rendered["keys"][1].clone();
    // What newer apiservers or other issuers add; all must go.
    rsa["kid"] = json!("apiserver-kid-1");
    rsa["key_ops"] = json!(["verify"]);
    rsa["x5c"] = json!(["MIIB"]);
    ec["kid"] = json!("apiserver-kid-2");
    ec["ext"] = json!(true);
    let small = keys::load_files(&[fixture("rsa1024.pub")]);
    assert!(small.is_err());
    let fetched = json!({"keys": [
        rsa,
        {"use": "enc", "kty": "RSA", "kid": "enc", "alg": "RS256", "n": rendered["keys"][0]["n"], "e": "AQAB"},
        {"use": "sig", "kty": "RSA", "kid": "small", "alg": "RS256", "n": "wVRkn4r4xIkeN4NQ1rHyAo-4TbJu_tJ1T3F7k2j3EyE", "e": "AQAB"},
        {"use": "sig", "kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"use": "sig", "kty": "AKP", "kid": "mldsa", "alg": "ML-DSA-65", "pub": "AAAA"},
        {"use": "sig", "kty": "EC", "kid": "k1", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {"use": "sig", "kty": "RSA", "kid": "ps", "alg": "PS256", "n": rendered["keys"][0]["n"], "e": "AQAB"},
        {"use": "sig", "kty": "EC", "kid": "off-curve", "crv": "P-384", "x": ec["x"], "y": ec["x"]},
        ec,
        rsa,
    ]});
    let cleaned = jwks::clean(fetched.to_string().as_bytes()).unwrap();
    let kids: Vec<&str> = cleaned.keys.iter().map(|k| k.kid()).collect();
    assert_eq!(kids, ["apiserver-kid-1", "apiserver-kid-2"]);
    let dropped: Vec<String> = cleaned.warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(dropped.len(), 8, "{dropped:#?}");
    for (kid, why) in [
        ("enc", "\"use\""),
        ("small", "bits"),
        ("ed", "OKP"),
        ("mldsa", "AKP"),
        ("k1", "secp256k1"),
        ("ps", "PS256"),
        ("off-curve", "curve point"),
        ("apiserver-kid-1", "duplicate"),
    ] {
        assert!(
            dropped.iter().any(|m| m.contains(kid) && m.contains(why)),
            "{kid}/{why} not in {dropped:#?}"
        );
    }
    // Republished with exactly the members STS accepts, and the numbers unchanged.
    let out: Value = serde_json::from_slice(&jwks::render(&cleaned.keys).json).unwrap();
    let rsa_out = out["keys"][0].as_object().unwrap();
    let mut members: Vec<&String> = rsa_out.keys().collect();
    members.sort();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(rsa_out["n"], rendered["keys"][0]["n"]);
    assert_eq!(out["keys"][1]["x"], rendered["keys"][1]["x"]);
}

#[test]
fn garbage_is_an_error() {
    assert!(jwks::clean(b"not json").is_err());
    assert!(jwks::clean(b"{\"nokeys\":[]}").is_err());
    assert!(jwks::clean(b"{\"keys\":[]}").unwrap().keys.is_empty());
}
