//! The issuer's key files (`--key-file`): PEM sections of public keys, private keys and certificates, then
//! the JWKS rendered from what was accepted.
//!
//! Asserts, beyond "no panic": the JWKS is JSON, and reading it back the way the issuer reads an
//! apiserver's JWKS gives the same keys under the same kids with no warning (what is published from a file
//! is publishable).
#![no_main]

use std::path::Path;

use irsa_issuer::jwks;
use irsa_issuer::keys::parse_pem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(loaded) = parse_pem(Path::new("fuzz.pem"), data) else {
        return;
    };
    assert!(!loaded.keys.is_empty(), "parse_pem succeeded with no key");
    let rendered = jwks::render(&loaded.keys);
    let back = jwks::clean(&rendered.json).expect("the rendered JWKS does not read back");
    assert!(
        back.warnings.is_empty(),
        "the rendered JWKS reads back with warnings: {:?}",
        back.warnings
    );
    assert_eq!(back.keys, rendered.keys);
});
