//! `IssuerUrl::parse` (the `--issuer-url` of every command, and the `iss` STS compares byte for byte).
//!
//! Asserts, beyond "no panic": an accepted URL is kept verbatim, within the length cap, https unless http
//! was allowed; its parts slice it consistently; it parses again to itself; every accessor and the warnings
//! run.
#![no_main]

use irsa_core::issuer_url::MAX_URL_LEN;
use irsa_core::{IssuerUrl, Partition};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for allow_http in [false, true] {
        let Ok(url) = IssuerUrl::parse(raw, allow_http) else {
            continue;
        };
        assert_eq!(url.as_str(), raw);
        assert!(raw.len() <= MAX_URL_LEN);
        assert!(allow_http || url.is_https());
        assert!(!url.host().is_empty());
        assert!(url.host_path().starts_with(url.authority()));
        assert_eq!(format!("{}{}", url.origin(), url.path()), raw);
        assert!(raw.ends_with(url.host_path()));
        assert!(url.discovery_url().starts_with(raw.trim_end_matches('/')));
        let _ = (url.port(), url.port_or_default(), url.base_path());
        let _ = (url.discovery_path(), url.default_jwks_path());
        let _ = url.provider_arn(Partition::Aws, "123456789012");
        for warning in url.warnings() {
            let _ = warning.to_string();
        }
        assert_eq!(
            IssuerUrl::parse(url.as_str(), allow_http).as_ref(),
            Ok(&url)
        );
    }
});
