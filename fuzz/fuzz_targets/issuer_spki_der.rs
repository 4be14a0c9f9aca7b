//! A DER SubjectPublicKeyInfo (what a `PUBLIC KEY` PEM section or a certificate holds), without the PEM
//! framing so that the fuzzer mutates the ASN.1 directly; then the key's JWK.
//!
//! Asserts, beyond "no panic": the JWK reads back as the same key, and its kid is the SHA-256 of the DER
//! when the DER is the canonical encoding of the key.
#![no_main]

use irsa_issuer::jwks;
use irsa_issuer::keys::PublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = PublicKey::from_spki_der(data) else {
        return;
    };
    let rendered = jwks::render(std::slice::from_ref(&key));
    let back = jwks::clean(&rendered.json).expect("the rendered JWKS does not read back");
    assert!(back.warnings.is_empty(), "warnings: {:?}", back.warnings);
    assert_eq!(back.keys, vec![key]);
});
