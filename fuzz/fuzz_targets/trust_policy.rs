//! The IAM trust policy: reading a document IAM returns (percent-encoded JSON, or plain), and comparing it
//! with the one `create-role` writes.
//!
//! The whole input is the document; its last three lines, when it has them, are also the namespace,
//! ServiceAccount and audience of a policy that must then be satisfied by its own JSON, plain and
//! percent-encoded (whatever characters those names hold).
#![no_main]

use std::sync::OnceLock;

use irsa_core::IssuerUrl;
use irsa_iam::trust_policy::{TrustPolicy, decode_policy_document};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

const PROVIDER_ARN: &str = "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/cluster";

fn issuer() -> &'static IssuerUrl {
    static ISSUER: OnceLock<IssuerUrl> = OnceLock::new();
    ISSUER.get_or_init(|| IssuerUrl::parse("https://oidc.example.com/cluster", false).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    let _ = decode_policy_document(doc);
    let fixed = TrustPolicy::new(
        issuer(),
        PROVIDER_ARN,
        "default",
        "app",
        "sts.amazonaws.com",
    );
    let _ = fixed.is_satisfied_by(doc);

    let lines: Vec<&str> = doc.rsplitn(4, '\n').collect();
    if let [audience, service_account, namespace, _] = lines[..] {
        let policy = TrustPolicy::new(issuer(), PROVIDER_ARN, namespace, service_account, audience);
        let json = policy.to_json();
        assert_eq!(policy.is_satisfied_by(&json), Ok(true), "{json}");
        let encoded = utf8_percent_encode(&json, NON_ALPHANUMERIC).to_string();
        assert_eq!(policy.is_satisfied_by(&encoded), Ok(true), "{encoded}");
    }
});
