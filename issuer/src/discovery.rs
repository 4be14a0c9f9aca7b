//! The OpenID discovery document (pure), field for field what kube-apiserver serves.

use serde::Serialize;

use crate::keys::Algorithm;

#[derive(Serialize)]
struct Discovery<'a> {
    issuer: &'a str,
    jwks_uri: &'a str,
    response_types_supported: [&'static str; 1],
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: Vec<&'static str>,
}

/// Renders the discovery document as compact JSON. `issuer` is copied byte for byte (STS compares it with the
/// tokens' `iss`); `algorithms` are sorted and deduplicated.
pub fn render(issuer: &str, jwks_uri: &str, algorithms: &[Algorithm]) -> Vec<u8> {
    let mut algs = algorithms.to_vec();
    algs.sort();
    algs.dedup();
    let doc = Discovery {
        issuer,
        jwks_uri,
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: algs.into_iter().map(Algorithm::as_str).collect(),
    };
    serde_json::to_vec(&doc).expect("a document of strings always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_apiserver_shape() {
        let doc = render(
            "https://example.com/x/",
            "https://example.com/x/openid/v1/jwks",
            &[Algorithm::ES256, Algorithm::RS256, Algorithm::ES256],
        );
        assert_eq!(
            std::str::from_utf8(&doc).unwrap(),
            r#"{"issuer":"https://example.com/x/","jwks_uri":"https://example.com/x/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["ES256","RS256"]}"#
        );
    }
}
