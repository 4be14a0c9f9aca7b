//! The JWKS fetched from a kube-apiserver (`--jwks-from-apiserver`): cleaned to what STS accepts, then
//! rendered and published.
//!
//! Asserts, beyond "no panic": cleaning is a fixed point: the rendered document cleans to the same keys
//! with no warning.
#![no_main]

use irsa_issuer::jwks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(loaded) = jwks::clean(data) else {
        return;
    };
    let rendered = jwks::render(&loaded.keys);
    let again = jwks::clean(&rendered.json).expect("the rendered JWKS does not read back");
    assert!(again.warnings.is_empty(), "warnings: {:?}", again.warnings);
    assert_eq!(again.keys, rendered.keys);
});
