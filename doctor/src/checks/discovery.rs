//! Discovery and JWKS, as STS fetched them: reachable, a trusted chain, the same `issuer`, keys by STS's
//! rules (irsa-iam's preflight rules), and the key the apiserver signs with now.

use irsa_iam::preflight::{Discovery, JwksSummary, PreflightError, check_discovery, check_jwks};

use super::cluster::differs_by;
use super::{Fetched, Gathered};
use crate::finding::{CheckId, Finding};

/// STS gives up after about this long; answers slower than half of it are a warning.
const SLOW_MILLIS: u64 = 2_500;

/// How a document's fetch went, as a finding of `id` (`discovery.fetch` or `jwks.keys`): `Err` is the
/// failure to report, `Ok` the fetched answer. `tls` is the verdict on the chain the host presented
/// (against what STS trusts), when it was recorded.
pub fn reach<'a>(
    id: CheckId,
    issuer: &str,
    fetched: &'a Gathered<Fetched>,
    tls: Option<&Result<(), String>>,
) -> Result<&'a Fetched, Finding> {
    const STS: &str = "STS answers InvalidIdentityToken \"Couldn't retrieve verification key from your identity provider\"";
    if let Some(Err(e)) = tls {
        return Err(Finding::fail(
            id,
            format!("the issuer's certificate is not trusted ({e}); {STS}"),
            format!(
                "serve the issuer with a certificate from a public CA, or register its CA's thumbprint: irsa associate-oidc-provider --issuer-url {issuer} --ca-file CA.pem (and give irsa doctor --ca-file CA.pem)"
            ),
        ));
    }
    let fetched = fetched.as_ref().map_err(|e| {
        Finding::fail(
            id,
            format!("cannot fetch it the way STS does (https, no redirects, 5 s): {e}; {STS}"),
            "serve the issuer publicly over HTTPS (irsa issuer serve, or irsa issuer publish to S3) and check DNS, firewall and certificate from outside the cluster",
        )
    })?;
    if fetched.status != 200 {
        let redirect = fetched
            .location
            .as_deref()
            .map(|l| format!(" (a redirect to {l}: STS follows none)"))
            .unwrap_or_default();
        return Err(Finding::fail(
            id,
            format!(
                "{} answered HTTP {}{redirect}; {STS}",
                fetched.url, fetched.status
            ),
            "serve the document with 200 at exactly this URL",
        ));
    }
    Ok(fetched)
}

/// A cache lifetime above this many seconds keeps a newly published key out of caches too long.
const LONG_MAX_AGE: u64 = 86_400;

const SERVING_FIX: &str = "serve discovery and JWKS with Cache-Control: public, max-age=3600, from a host that answers within 2.5 s: irsa issuer serve (--max-age), or irsa issuer publish to S3 behind a CDN";

/// How a document is served, beyond reaching it: what is wrong with its response time and `Cache-Control`,
/// one note each; empty when nothing is.
pub fn serving(fetched: &Fetched) -> Vec<String> {
    let mut notes = Vec::new();
    if fetched.millis > SLOW_MILLIS {
        notes.push(format!(
            "{} took {} ms; STS gives up after about 5 s",
            fetched.url, fetched.millis
        ));
    }
    let directives: Vec<String> = fetched
        .cache_control
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    let max_age = directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age="))
        .map(|v| v.trim_matches('"').parse::<u64>());
    let uncacheable = directives
        .iter()
        .find(|d| matches!(d.as_str(), "no-store" | "no-cache" | "private"));
    match (&fetched.cache_control, uncacheable, max_age) {
        (None, _, _) => notes.push(format!(
            "{} has no Cache-Control: every cache guesses, and a burst of pods refetches it from the origin",
            fetched.url
        )),
        (Some(c), Some(d), _) => notes.push(format!(
            "{} is served with Cache-Control {c:?}: {d} keeps STS and CDNs from caching it",
            fetched.url
        )),
        (Some(c), None, Some(Ok(0))) => notes.push(format!(
            "{} is served with Cache-Control {c:?}: max-age=0 makes every fetch go to the origin",
            fetched.url
        )),
        (Some(c), None, Some(Ok(age))) if age > LONG_MAX_AGE => notes.push(format!(
            "{} is served with Cache-Control {c:?}: a newly published key waits up to {age} s in caches",
            fetched.url
        )),
        (Some(c), None, Some(Err(_))) | (Some(c), None, None) => notes.push(format!(
            "{} is served with Cache-Control {c:?}, which sets no usable max-age",
            fetched.url
        )),
        _ => {}
    }
    notes
}

/// `discovery.fetch`: the discovery document came back 200 over a trusted chain, quickly and cacheable.
pub fn discovery_fetch(
    issuer: &str,
    fetched: &Gathered<Fetched>,
    tls: Option<&Result<(), String>>,
) -> (Finding, Option<Fetched>) {
    let id = CheckId::DiscoveryFetch;
    match reach(id, issuer, fetched, tls) {
        Err(f) => (f, None),
        Ok(d) => {
            let notes = serving(d);
            let f = if notes.is_empty() {
                Finding::pass(
                    id,
                    format!(
                        "{} answered 200 in {} ms, Cache-Control {}",
                        d.url,
                        d.millis,
                        d.cache_control.as_deref().unwrap_or_default()
                    ),
                )
            } else {
                Finding::warn(id, notes.join("; "), SERVING_FIX)
            };
            (f, Some(d.clone()))
        }
    }
}

/// `discovery.issuer`: the document's `issuer` is byte for byte `issuer` (the apiserver's, or
/// `--issuer-url`) and the token's `iss`; on success, what the document says of its JWKS.
pub fn discovery_issuer(
    issuer: &str,
    document: &Fetched,
    token_iss: Option<&str>,
) -> (Finding, Option<Discovery>) {
    let id = CheckId::DiscoveryIssuer;
    let found = serde_json::from_slice::<serde_json::Value>(&document.body)
        .ok()
        .and_then(|v| v.get("issuer").and_then(|i| i.as_str()).map(str::to_owned));
    let Some(found) = found else {
        return (
            Finding::fail(
                id,
                format!(
                    "{} is not a discovery document with an \"issuer\"",
                    document.url
                ),
                "serve the OpenID discovery document (irsa issuer serve/publish writes one)",
            ),
            None,
        );
    };
    if found != issuer {
        return (
            Finding::fail(
                id,
                format!(
                    "{} says issuer {found:?} but tokens carry {issuer:?}{}: STS refuses every token",
                    document.url,
                    differs_by(issuer, &found)
                ),
                format!(
                    "serve discovery for exactly the apiserver's issuer: irsa issuer serve --issuer-url {issuer}"
                ),
            ),
            None,
        );
    }
    if let Some(iss) = token_iss.filter(|iss| *iss != issuer) {
        return (
            Finding::fail(
                id,
                format!(
                    "the token's iss {iss:?} is not the discovery issuer {issuer:?}{}",
                    differs_by(issuer, iss)
                ),
                format!("set kube-apiserver --service-account-issuer={issuer} first in its list"),
            ),
            None,
        );
    }
    // The rest of the document by irsa-iam's preflight rules (jwks_uri https, the required fields).
    match check_discovery(&found, &document.url, &document.body) {
        Ok(d) => {
            let warnings = if d.warnings.is_empty() {
                String::new()
            } else {
                format!(" (note: {})", d.warnings.join("; "))
            };
            (
                Finding::pass(
                    id,
                    format!(
                        "issuer {found} is byte-identical in discovery, the apiserver and the token; jwks_uri {}{warnings}",
                        d.jwks_uri
                    ),
                ),
                Some(d),
            )
        }
        Err(e) => (preflight_failure(id, e), None),
    }
}

/// `jwks.keys`: the JWKS came back and passes STS's rules (types, sizes, `use`, `key_ops`, at most
/// [`irsa_core::jwks::MAX_KEYS_PER_TYPE`] per type).
pub fn jwks_keys(
    issuer: &str,
    fetched: &Gathered<Fetched>,
    tls: Option<&Result<(), String>>,
) -> (Finding, Option<JwksSummary>) {
    let id = CheckId::JwksKeys;
    let jwks = match reach(id, issuer, fetched, tls) {
        Ok(j) => j,
        Err(f) => return (f, None),
    };
    match check_jwks(&jwks.url, &jwks.body) {
        Ok(s) => {
            let served = serving(jwks);
            let f = if !s.warnings.is_empty() {
                Finding::warn(
                    id,
                    s.warnings
                        .iter()
                        .chain(&served)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; "),
                    "publish the keys with irsa issuer serve/publish, which writes a clean JWKS",
                )
            } else if !served.is_empty() {
                Finding::warn(id, served.join("; "), SERVING_FIX)
            } else {
                Finding::pass(
                    id,
                    format!(
                        "{} RSA and {} EC keys, all within STS's rules; answered in {} ms, Cache-Control {}",
                        s.rsa_keys,
                        s.ec_keys,
                        jwks.millis,
                        jwks.cache_control.as_deref().unwrap_or_default()
                    ),
                )
            };
            (f, Some(s))
        }
        Err(e) => (preflight_failure(id, e), None),
    }
}

/// `jwks.current-kid`: the JWKS holds the key that signed the freshly minted token.
pub fn current_kid(issuer: &str, kids: &[String], token_kid: Option<&str>) -> Finding {
    let id = CheckId::JwksCurrentKid;
    match token_kid {
        None => Finding::warn(
            id,
            "the token has no kid: STS tries every key",
            "nothing to do for STS; kube-apiserver sets kid on tokens since 1.16",
        ),
        Some(kid) if kids.iter().any(|k| k == kid) => {
            Finding::pass(id, format!("the JWKS holds the signing key {kid}"))
        }
        Some(kid) => Finding::fail(
            id,
            format!(
                "the apiserver signs with kid {kid} but the JWKS only has {kids:?} (a rotated key not published): STS answers \"Couldn't retrieve verification key\""
            ),
            format!(
                "publish the new public key before signing with it: add it to irsa issuer serve --public-key-file (or --apiserver-jwks) for {issuer}, keeping the old one until old tokens expire"
            ),
        ),
    }
}

/// A preflight error as a finding: its message says what, its fix (where it names one) says how.
fn preflight_failure(id: CheckId, e: PreflightError) -> Finding {
    let text = e.to_string();
    let (what, fix) = match text.split_once("; fix: ") {
        Some((what, fix)) => (what.to_owned(), fix.to_owned()),
        None => (
            text,
            "publish the documents with irsa issuer serve/publish".to_owned(),
        ),
    };
    Finding::fail(id, what, fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Status;

    const ISSUER: &str = "https://oidc.example.com/c1";

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn fetched(url: &str, body: Vec<u8>) -> Gathered<Fetched> {
        Ok(Fetched {
            url: url.to_owned(),
            status: 200,
            millis: 40,
            cache_control: Some("public, max-age=3600".to_owned()),
            body,
            ..Fetched::default()
        })
    }

    #[test]
    fn healthy_documents_pass() {
        let doc = fetched(
            &format!("{ISSUER}/.well-known/openid-configuration"),
            fixture("discovery.json"),
        );
        let (f, d) = discovery_fetch(ISSUER, &doc, Some(&Ok(())));
        assert_eq!(f.status, Status::Pass, "{f:?}");
        let (f, disc) = discovery_issuer(ISSUER, &d.unwrap(), Some(ISSUER));
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert_eq!(disc.unwrap().jwks_uri, format!("{ISSUER}/openid/v1/jwks"));
        let (f, s) = jwks_keys(
            ISSUER,
            &fetched(
                "https://oidc.example.com/c1/openid/v1/jwks",
                fixture("jwks.json"),
            ),
            None,
        );
        assert_eq!(f.status, Status::Pass, "{f:?}");
        let kids = s.unwrap().kids;
        assert_eq!(
            current_kid(ISSUER, &kids, Some("current-kid")).status,
            Status::Pass
        );
    }

    #[test]
    fn discovery_unreachable_redirected_or_untrusted() {
        let (f, _) = discovery_fetch(ISSUER, &Err("connection refused".into()), None);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.what.contains("connection refused")
                && f.what.contains("Couldn't retrieve verification key"),
            "{}",
            f.what
        );
        let moved = Ok(Fetched {
            url: "u".into(),
            status: 301,
            location: Some("https://elsewhere".into()),
            ..Fetched::default()
        });
        let (f, _) = discovery_fetch(ISSUER, &moved, None);
        assert!(
            f.what.contains("redirect to https://elsewhere"),
            "{}",
            f.what
        );
        let doc = fetched("u", fixture("discovery.json"));
        let (f, _) = discovery_fetch(
            ISSUER,
            &doc,
            Some(&Err("invalid peer certificate: UnknownIssuer".into())),
        );
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains("not trusted"), "{}", f.what);
        assert!(f.fix.unwrap().contains(
            "irsa associate-oidc-provider --issuer-url https://oidc.example.com/c1 --ca-file"
        ));
        let slow = Ok(Fetched {
            millis: 4_000,
            ..doc.clone().unwrap()
        });
        assert_eq!(discovery_fetch(ISSUER, &slow, None).0.status, Status::Warn);
    }

    #[test]
    fn discovery_issuer_trailing_slash() {
        let doc = fetched("u", fixture("discovery.json")).unwrap();
        let (f, d) = discovery_issuer(&format!("{ISSUER}/"), &doc, None);
        assert_eq!((f.status, d), (Status::Fail, None));
        assert!(f.what.contains("trailing slash"), "{}", f.what);
        let (f, _) = discovery_issuer(ISSUER, &doc, Some("https://oidc.example.com/c2"));
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains("token's iss"), "{}", f.what);
        let bad_uri = fetched(
            "u",
            br#"{"issuer": "https://oidc.example.com/c1", "jwks_uri": "http://x/jwks"}"#.to_vec(),
        )
        .unwrap();
        let (f, _) = discovery_issuer(ISSUER, &bad_uri, None);
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains("not an https:// URL"), "{}", f.what);
        assert!(!f.what.contains("fix:"), "{}", f.what);
    }

    #[test]
    fn jwks_missing_the_current_kid_or_breaking_rules() {
        let f = current_kid(ISSUER, &["old-kid".to_owned()], Some("new-kid"));
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.what.contains("new-kid") && f.what.contains("rotated"),
            "{}",
            f.what
        );
        let (f, _) = jwks_keys(ISSUER, &fetched("u", fixture("jwks-key-ops.json")), None);
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains("key_ops"), "{}", f.what);
        assert!(f.fix.unwrap().contains("remove key_ops"));
        let (f, _) = jwks_keys(ISSUER, &fetched("u", b"[]".to_vec()), None);
        assert_eq!(f.status, Status::Fail);
    }

    #[test]
    fn slow_or_uncacheable_documents_warn() {
        let good = fetched("https://i/jwks", fixture("jwks.json")).unwrap();
        assert!(serving(&good).is_empty(), "{:?}", serving(&good));
        let with = |cache: Option<&str>, millis: u64| Fetched {
            cache_control: cache.map(str::to_owned),
            millis,
            ..good.clone()
        };
        for (cache, expect) in [
            (None, "no Cache-Control"),
            (
                Some("no-store"),
                "no-store keeps STS and CDNs from caching it",
            ),
            (Some("public, no-cache"), "no-cache"),
            (Some("private, max-age=60"), "private"),
            (Some("max-age=0"), "max-age=0"),
            (Some("public, max-age=31536000"), "waits up to 31536000 s"),
            (Some("public"), "no usable max-age"),
            (Some("max-age=soon"), "no usable max-age"),
        ] {
            let notes = serving(&with(cache, 40));
            assert!(
                notes.len() == 1 && notes[0].contains(expect),
                "{cache:?}: {notes:?}"
            );
            let (f, _) = jwks_keys(ISSUER, &Ok(with(cache, 40)), None);
            assert_eq!(f.status, Status::Warn, "{cache:?}: {f:?}");
            assert!(f.fix.unwrap().contains("max-age=3600"));
            let (f, d) = discovery_fetch(ISSUER, &Ok(with(cache, 40)), None);
            assert_eq!(f.status, Status::Warn, "{cache:?}: {f:?}");
            assert!(d.is_some(), "a warning still passes the document on");
        }
        let (f, _) = jwks_keys(ISSUER, &Ok(with(Some("max-age=300"), 4_000)), None);
        assert_eq!(f.status, Status::Warn);
        assert!(f.what.contains("took 4000 ms"), "{}", f.what);
    }
}
