//! STS's rules for the discovery document and the JWKS, as pure functions over the fetched bytes.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irsa_core::jwks::{MAX_KEYS_PER_TYPE, MAX_RSA_BITS, MIN_RSA_BITS};
use serde_json::{Map, Value};

use super::{FIX_JWKS, PreflightError};

/// The parts of a discovery document preflight uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The `jwks_uri`.
    pub jwks_uri: String,
    /// Its host.
    pub jwks_host: String,
    /// Its port.
    pub jwks_port: u16,
    /// Legal but suspicious findings.
    pub warnings: Vec<String>,
}

/// Judges a discovery document fetched from `url` for the issuer `expected_issuer`.
pub fn check_discovery(
    expected_issuer: &str,
    url: &str,
    body: &[u8],
) -> Result<Discovery, PreflightError> {
    let malformed = |reason: String| PreflightError::Malformed {
        url: url.to_owned(),
        what: "discovery document",
        reason,
        fix: "serve the OpenID discovery document (irsa issuer serve/publish writes one)",
    };
    let doc: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not a JSON object ({e})")))?;
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("no \"issuer\" string".to_owned()))?;
    if issuer != expected_issuer {
        return Err(PreflightError::IssuerMismatch {
            url: url.to_owned(),
            expected: expected_issuer.to_owned(),
            found: issuer.to_owned(),
        });
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("no \"jwks_uri\" string".to_owned()))?;
    let not_https = || PreflightError::JwksUriNotHttps {
        url: url.to_owned(),
        jwks_uri: jwks_uri.to_owned(),
    };
    if !jwks_uri.starts_with("https://") {
        return Err(not_https());
    }
    let parsed = url::Url::parse(jwks_uri).map_err(|_| not_https())?;
    let jwks_host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(not_https()),
    };

    let mut warnings = Vec::new();
    let listed = |field: &str, want: &str| {
        doc.get(field)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(want)))
    };
    if !listed("response_types_supported", "id_token") {
        warnings.push(format!(
            "{url}: response_types_supported does not list \"id_token\""
        ));
    }
    if !listed("subject_types_supported", "public") {
        warnings.push(format!(
            "{url}: subject_types_supported does not list \"public\""
        ));
    }
    if doc
        .get("id_token_signing_alg_values_supported")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        warnings.push(format!(
            "{url}: id_token_signing_alg_values_supported is missing or empty"
        ));
    }
    Ok(Discovery {
        jwks_uri: jwks_uri.to_owned(),
        jwks_host,
        jwks_port: parsed.port_or_known_default().unwrap_or(443),
        warnings,
    })
}

/// What a JWKS holds, once judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSummary {
    /// Key IDs, in document order.
    pub kids: Vec<String>,
    /// How many RSA keys.
    pub rsa_keys: usize,
    /// How many EC keys.
    pub ec_keys: usize,
    /// Legal but suspicious findings.
    pub warnings: Vec<String>,
}

struct Problem {
    what: String,
    fix: &'static str,
}

impl Problem {
    fn new(what: impl Into<String>, fix: &'static str) -> Problem {
        Problem {
            what: what.into(),
            fix,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    Ec,
}

/// Judges a JWKS fetched from `url` by STS's hygiene rules: only RSA ([`MIN_RSA_BITS`] to [`MAX_RSA_BITS`]) and EC
/// P-256/P-384/P-521 keys, each with a `kid`, `use: "sig"`, an `alg`, no `key_ops`, no private
/// members; at most [`MAX_KEYS_PER_TYPE`] keys of each type.
pub fn check_jwks(url: &str, body: &[u8]) -> Result<JwksSummary, PreflightError> {
    let malformed = |reason: String| PreflightError::Malformed {
        url: url.to_owned(),
        what: "JWKS",
        reason,
        fix: FIX_JWKS,
    };
    let doc: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not a JSON object ({e})")))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no \"keys\" array".to_owned()))?;

    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut summary = JwksSummary {
        kids: Vec::new(),
        rsa_keys: 0,
        ec_keys: 0,
        warnings: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    for (i, key) in keys.iter().enumerate() {
        match check_key(i, key, &mut warnings) {
            Ok((kid, kind)) => {
                if !seen.insert(kid.clone()) {
                    warnings.push(format!(
                        "JWKS {url}: kid {kid:?} appears more than once; STS may pick either key"
                    ));
                }
                match kind {
                    KeyType::Rsa => summary.rsa_keys += 1,
                    KeyType::Ec => summary.ec_keys += 1,
                }
                summary.kids.push(kid);
            }
            Err(p) => problems.push(p),
        }
    }
    for (count, name) in [(summary.rsa_keys, "RSA"), (summary.ec_keys, "EC")] {
        if count > MAX_KEYS_PER_TYPE {
            problems.push(Problem::new(
                format!("{count} {name} keys, more than the {MAX_KEYS_PER_TYPE} STS accepts"),
                "retire keys older than the longest token lifetime",
            ));
        }
    }
    if problems.is_empty() && keys.is_empty() {
        problems.push(Problem::new(
            "no keys",
            "publish the apiserver's service-account signing public key(s)",
        ));
    }
    let more = problems.len().saturating_sub(1);
    if let Some(first) = problems.into_iter().next() {
        return Err(PreflightError::Jwks {
            url: url.to_owned(),
            problem: first.what,
            fix: first.fix,
            more,
        });
    }
    summary.warnings = warnings;
    Ok(summary)
}

/// Members a JWK may carry, per type; anything else draws a warning.
const COMMON_MEMBERS: &[&str] = &["kty", "kid", "use", "alg"];
const RSA_MEMBERS: &[&str] = &["n", "e"];
const EC_MEMBERS: &[&str] = &["crv", "x", "y"];
/// Members that only a private key has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn check_key(
    index: usize,
    key: &Value,
    warnings: &mut Vec<String>,
) -> Result<(String, KeyType), Problem> {
    let key = key
        .as_object()
        .ok_or_else(|| Problem::new(format!("key #{index} is not a JSON object"), FIX_JWKS))?;
    let text = |name: &str| key.get(name).and_then(Value::as_str);
    let kid = match text("kid") {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => {
            return Err(Problem::new(
                format!("key #{index} has no \"kid\" (STS finds the key by the token's kid)"),
                "publish the keys with kid = base64url(sha256(SPKI DER)), as the apiserver computes it",
            ));
        }
    };
    let name = format!("key {kid:?}");
    if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| key.contains_key(**m)) {
        return Err(Problem::new(
            format!("{name} carries the private member {private:?}"),
            "publish public keys only, and rotate this key now: it has been exposed",
        ));
    }
    if key.contains_key("key_ops") {
        return Err(Problem::new(
            format!("{name} has \"key_ops\""),
            "remove key_ops from the JWKS (the apiserver publishes none)",
        ));
    }
    match key.get("use") {
        Some(Value::String(u)) if u == "sig" => {}
        Some(other) => {
            return Err(Problem::new(
                format!("{name} has \"use\": {other}, not \"sig\""),
                "publish signing keys only, with \"use\": \"sig\"",
            ));
        }
        None => {
            return Err(Problem::new(
                format!("{name} has no \"use\": \"sig\""),
                "add \"use\": \"sig\" to every key",
            ));
        }
    }
    let alg = text("alg").ok_or_else(|| {
        Problem::new(
            format!("{name} has no \"alg\""),
            "add the signing algorithm (RS256 for RSA keys, ES256/ES384/ES512 for EC keys)",
        )
    })?;
    let (kind, members) = match text("kty") {
        Some("RSA") => {
            check_rsa(&name, alg, text("n"), text("e"))?;
            (KeyType::Rsa, RSA_MEMBERS)
        }
        Some("EC") => {
            check_ec(&name, alg, text("crv"), text("x"), text("y"))?;
            (KeyType::Ec, EC_MEMBERS)
        }
        other => {
            return Err(Problem::new(
                format!(
                    "{name} has kty {}; STS accepts RSA and EC keys only",
                    other.map_or_else(|| "missing".to_owned(), |k| format!("{k:?}"))
                ),
                "leave keys of other types out of the JWKS",
            ));
        }
    };
    let extra: Vec<&str> = key
        .keys()
        .map(String::as_str)
        .filter(|m| !COMMON_MEMBERS.contains(m) && !members.contains(m))
        .collect();
    if !extra.is_empty() {
        warnings.push(format!(
            "{name} has members beyond the apiserver's ({}); STS may reject them",
            extra.join(", ")
        ));
    }
    Ok((kid, kind))
}

fn check_rsa(name: &str, alg: &str, n: Option<&str>, e: Option<&str>) -> Result<(), Problem> {
    const FIX_RSA: &str = "publish n and e as unsigned big-endian base64url without padding";
    if !matches!(
        alg,
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
    ) {
        return Err(Problem::new(
            format!("{name} is an RSA key with alg {alg:?}"),
            "use RS256 (what kube-apiserver signs with) for RSA keys",
        ));
    }
    let n = decode_member(name, "n", n, FIX_RSA)?;
    let e = decode_member(name, "e", e, FIX_RSA)?;
    if n[0] == 0 || e[0] == 0 {
        return Err(Problem::new(
            format!("{name} has a leading zero byte in n or e"),
            FIX_RSA,
        ));
    }
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    if bits < MIN_RSA_BITS {
        return Err(Problem::new(
            format!("{name} is a {bits}-bit RSA key; STS needs {MIN_RSA_BITS} bits or more"),
            "sign service-account tokens with an RSA key of at least 2048 bits",
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(Problem::new(
            format!("{name} is a {bits}-bit RSA key; verifiers accept at most {MAX_RSA_BITS} bits"),
            "sign service-account tokens with an RSA key of 2048 to 16384 bits (or an EC key)",
        ));
    }
    Ok(())
}

fn check_ec(
    name: &str,
    alg: &str,
    crv: Option<&str>,
    x: Option<&str>,
    y: Option<&str>,
) -> Result<(), Problem> {
    const FIX_EC: &str = "publish x and y as fixed-length base64url without padding";
    let (len, want_alg) = match crv {
        Some("P-256") => (32, "ES256"),
        Some("P-384") => (48, "ES384"),
        Some("P-521") => (66, "ES512"),
        other => {
            return Err(Problem::new(
                format!(
                    "{name} is an EC key on curve {}; STS accepts P-256, P-384 and P-521",
                    other.unwrap_or("(missing)")
                ),
                "sign with a P-256, P-384 or P-521 key",
            ));
        }
    };
    if alg != want_alg {
        return Err(Problem::new(
            format!("{name} has alg {alg:?} for its curve; want {want_alg:?}"),
            "set alg to match the curve",
        ));
    }
    for (member, value) in [("x", x), ("y", y)] {
        let bytes = decode_member(name, member, value, FIX_EC)?;
        if bytes.len() != len {
            return Err(Problem::new(
                format!(
                    "{name} has a {}-byte {member}; its curve needs {len}",
                    bytes.len()
                ),
                FIX_EC,
            ));
        }
    }
    Ok(())
}

fn decode_member(
    name: &str,
    member: &str,
    value: Option<&str>,
    fix: &'static str,
) -> Result<Vec<u8>, Problem> {
    let value = value.ok_or_else(|| Problem::new(format!("{name} has no \"{member}\""), fix))?;
    match URL_SAFE_NO_PAD.decode(value) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(Problem::new(
            format!("{name} has a \"{member}\" that is not non-empty base64url without padding"),
            fix,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://issuer.example.com/openid/v1/jwks";

    fn rsa_key(kid: &str, bits: usize) -> Value {
        let mut n = vec![0xabu8; bits / 8];
        n[0] = 0xc1;
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
               "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
    }

    fn ec_key(kid: &str, crv: &str, len: usize) -> Value {
        let alg = match crv {
            "P-256" => "ES256",
            "P-384" => "ES384",
            _ => "ES512",
        };
        let c = URL_SAFE_NO_PAD.encode(vec![7u8; len]);
        json!({"kty": "EC", "kid": kid, "use": "sig", "alg": alg, "crv": crv, "x": c, "y": c})
    }

    fn judge(keys: Vec<Value>) -> Result<JwksSummary, PreflightError> {
        check_jwks(URL, json!({ "keys": keys }).to_string().as_bytes())
    }

    fn problem(keys: Vec<Value>) -> String {
        let e = judge(keys).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("STS would answer"), "{e}");
        assert!(e.contains("fix: "), "{e}");
        e
    }

    #[test]
    fn good_jwks() {
        let s = judge(vec![
            rsa_key("r1", 2048),
            rsa_key("r2", 4096),
            ec_key("e1", "P-256", 32),
            ec_key("e2", "P-384", 48),
            ec_key("e3", "P-521", 66),
        ])
        .unwrap();
        assert_eq!(s.kids, ["r1", "r2", "e1", "e2", "e3"]);
        assert_eq!((s.rsa_keys, s.ec_keys), (2, 3));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn hygiene_failures() {
        let mut k = rsa_key("r", 2048);
        k["key_ops"] = json!(["verify"]);
        assert!(problem(vec![k]).contains("\"key_ops\""));

        let mut k = rsa_key("r", 2048);
        k["use"] = json!("enc");
        assert!(problem(vec![k]).contains("not \"sig\""));

        let mut k = rsa_key("r", 2048);
        k.as_object_mut().unwrap().remove("use");
        assert!(problem(vec![k]).contains("no \"use\""));

        assert!(problem(vec![rsa_key("r", 1024)]).contains("1024-bit RSA key"));

        let mut k = rsa_key("r", 2048);
        k["n"] = json!(URL_SAFE_NO_PAD.encode([&[0u8][..], &[0xc1; 256][..]].concat()));
        assert!(problem(vec![k]).contains("leading zero"));

        let mut k = rsa_key("r", 2048);
        k["d"] = json!("AQAB");
        assert!(problem(vec![k]).contains("private member"));

        assert!(problem(vec![ec_key("e", "P-256K", 32)]).contains("curve P-256K"));
        assert!(problem(vec![ec_key("e", "P-256", 31)]).contains("31-byte x"));

        let okp = json!({"kty": "OKP", "kid": "o", "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": "AA"});
        assert!(problem(vec![okp]).contains("RSA and EC keys only"));

        let mut k = rsa_key("", 2048);
        k.as_object_mut().unwrap().remove("kid");
        assert!(problem(vec![k]).contains("no \"kid\""));

        assert!(problem(vec![]).contains("no keys"));

        let many: Vec<Value> = (0..101)
            .map(|i| ec_key(&format!("e{i}"), "P-256", 32))
            .collect();
        assert!(problem(many).contains("101 EC keys"));

        let mut two = rsa_key("a", 1024);
        two["key_ops"] = json!([]);
        let e = problem(vec![two, rsa_key("b", 512)]);
        assert!(e.contains("(and 1 more problems)"), "{e}");
    }

    #[test]
    fn rsa_keys_over_the_cap_fail_as_the_issuer_leaves_them_out() {
        assert!(judge(vec![rsa_key("r", MAX_RSA_BITS)]).is_ok());
        let e = problem(vec![rsa_key("r", MAX_RSA_BITS + 8)]);
        assert!(
            e.contains("16392-bit RSA key") && e.contains("16384"),
            "{e}"
        );
        assert!(problem(vec![rsa_key("r", 100_000)]).contains("100000-bit RSA key"));
    }

    #[test]
    fn extra_members_and_duplicates_warn() {
        let mut k = rsa_key("r", 2048);
        k["x5t"] = json!("abc");
        let s = judge(vec![k, rsa_key("r", 2048)]).unwrap();
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    }

    #[test]
    fn discovery() {
        let issuer = "https://issuer.example.com";
        let url = "https://issuer.example.com/.well-known/openid-configuration";
        let good = json!({"issuer": issuer, "jwks_uri": "https://keys.example.com:8443/jwks",
            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]});
        let d = check_discovery(issuer, url, good.to_string().as_bytes()).unwrap();
        assert_eq!(d.jwks_host, "keys.example.com");
        assert_eq!(d.jwks_port, 8443);
        assert!(d.warnings.is_empty());

        let mut slash = good.clone();
        slash["issuer"] = json!("https://issuer.example.com/");
        let e = check_discovery(issuer, url, slash.to_string().as_bytes()).unwrap_err();
        assert!(matches!(e, PreflightError::IssuerMismatch { .. }));
        assert!(e.to_string().contains("trailing slash"), "{e}");

        let mut http = good.clone();
        http["jwks_uri"] = json!("http://issuer.example.com/jwks");
        let e = check_discovery(issuer, url, http.to_string().as_bytes()).unwrap_err();
        assert!(matches!(e, PreflightError::JwksUriNotHttps { .. }), "{e}");

        let e = check_discovery(issuer, url, b"<html>").unwrap_err();
        assert!(e.to_string().contains("not a JSON object"), "{e}");
    }
}
