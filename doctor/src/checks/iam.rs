//! IAM: the OIDC provider for exactly the issuer URL, its client IDs and thumbprints, the role and the
//! trust policy that must admit this ServiceAccount's tokens.

use irsa_core::IssuerUrl;
use irsa_iam::plan::ExistingProvider;
use irsa_iam::thumbprint::Thumbprint;
use irsa_iam::trust_policy::{ASSUME_ROLE_WITH_WEB_IDENTITY, decode_policy_document};
use rustls_pki_types::CertificateDer;
use serde_json::Value;

use super::Gathered;
use crate::finding::{CheckId, Finding};

/// `iam.provider`: a provider exists for exactly `issuer`; when not, `listed` (every provider ARN of the
/// account) names the near misses (a trailing slash, another path, case).
pub fn provider(
    issuer: &IssuerUrl,
    provider_arn: &str,
    existing: &Gathered<Option<ExistingProvider>>,
    listed: &Gathered<Vec<String>>,
) -> Finding {
    let id = CheckId::IamProvider;
    let associate = format!(
        "irsa associate-oidc-provider --issuer-url {}",
        issuer.as_str()
    );
    match existing {
        Err(e) => Finding::skipped(id, format!("cannot read {provider_arn}: {e}")),
        Ok(Some(_)) => Finding::pass(id, format!("{provider_arn} exists")),
        Ok(None) => {
            let ours = issuer
                .host_path()
                .trim_end_matches('/')
                .to_ascii_lowercase();
            let near: Vec<&str> = listed
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter_map(|arn| arn.split_once(":oidc-provider/").map(|(_, hp)| hp))
                .filter(|hp| {
                    let hp = hp.trim_end_matches('/').to_ascii_lowercase();
                    hp == ours || hp.split('/').next() == ours.split('/').next()
                })
                .collect();
            let near = if near.is_empty() {
                String::new()
            } else {
                format!(
                    " (providers exist for {}, which is not the same URL: STS compares byte for byte)",
                    near.join(", ")
                )
            };
            Finding::fail(
                id,
                format!(
                    "no IAM OIDC provider for {}{near}: STS answers InvalidIdentityToken \"No OpenIDConnect provider found in your account\"",
                    issuer.as_str()
                ),
                associate,
            )
        }
    }
}

/// `iam.client-id`: the provider's client IDs contain the tokens' audience.
pub fn client_id(issuer: &IssuerUrl, provider: &ExistingProvider, audience: &str) -> Finding {
    let id = CheckId::IamClientId;
    if provider.client_ids.iter().any(|c| c == audience) {
        Finding::pass(id, format!("the provider accepts audience {audience}"))
    } else {
        Finding::fail(
            id,
            format!(
                "the provider's client IDs are {:?}, not the tokens' audience {audience:?}: STS answers \"Incorrect token audience\"",
                provider.client_ids
            ),
            format!(
                "irsa associate-oidc-provider --issuer-url {} --client-id {audience}",
                issuer.as_str()
            ),
        )
    }
}

/// `iam.thumbprint`: the provider's thumbprints include the last certificate the JWKS host presents
/// (`chain`, leaf first), computed as AWS does; unneeded when `public` (the chain verifies under the public
/// roots alone, which AWS trusts by itself).
pub fn thumbprint(
    issuer: &IssuerUrl,
    provider: &ExistingProvider,
    chain: &Gathered<Vec<CertificateDer<'static>>>,
    public: bool,
) -> Finding {
    let id = CheckId::IamThumbprint;
    if public {
        return Finding::pass(
            id,
            "the JWKS host's certificate is from a public CA: AWS does not need thumbprints",
        );
    }
    let chain = match chain {
        Ok(c) => c,
        Err(e) => {
            return Finding::skipped(
                id,
                format!("the JWKS host's certificate chain could not be read: {e}"),
            );
        }
    };
    let Some(last) = chain.last() else {
        return Finding::skipped(id, "the JWKS host presented no certificate");
    };
    let want = Thumbprint::of_der(last);
    let registered: Vec<String> = provider
        .thumbprints
        .iter()
        .map(|t| t.to_ascii_lowercase())
        .collect();
    if registered.iter().any(|t| t == want.as_str()) {
        Finding::pass(
            id,
            format!("the provider's thumbprints include {want}, the JWKS host's last certificate"),
        )
    } else {
        Finding::fail(
            id,
            format!(
                "the provider's thumbprints {:?} do not include {want}, the SHA-1 of the last certificate the JWKS host presents: STS will not trust its private CA",
                provider.thumbprints
            ),
            format!(
                "irsa associate-oidc-provider --issuer-url {} --thumbprint auto --ca-file CA.pem",
                issuer.as_str()
            ),
        )
    }
}

/// The role's name from its ARN (`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`), when it is an IAM role ARN.
pub fn role_name(role_arn: &str) -> Option<&str> {
    let rest = role_arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    if !partition.starts_with("aws") {
        return None;
    }
    let resource = rest.strip_prefix("iam::")?.split_once(':')?.1;
    resource.strip_prefix("role/")?.rsplit('/').next()
}

/// `iam.role`: the role exists; `policy` is its trust policy document, `None` when there is no such role.
pub fn role(role_arn: &str, policy: &Gathered<Option<String>>) -> Finding {
    let id = CheckId::IamRole;
    match policy {
        Err(e) => Finding::skipped(id, format!("cannot read role {role_arn}: {e}")),
        Ok(Some(_)) => Finding::pass(id, format!("role {role_arn} exists")),
        Ok(None) => Finding::fail(
            id,
            format!("role {role_arn} does not exist: STS answers AccessDenied"),
            "irsa create-role --issuer-url URL --namespace NS --service-account SA --role-name NAME --annotate-service-account",
        ),
    }
}

/// What a trust policy must admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// The issuer.
    pub issuer: &'a IssuerUrl,
    /// The provider's ARN.
    pub provider_arn: &'a str,
    /// The ServiceAccount's namespace.
    pub namespace: &'a str,
    /// Its name.
    pub service_account: &'a str,
    /// The tokens' audience.
    pub audience: &'a str,
    /// The role's name, for the fix.
    pub role_name: &'a str,
}

/// `iam.trust-policy`: some statement of `document` allows `sts:AssumeRoleWithWebIdentity` to the
/// provider with `sub`/`aud` conditions this ServiceAccount's tokens meet; else the exact mismatch.
pub fn trust_policy(document: &str, w: &Wanted<'_>) -> Finding {
    let id = CheckId::IamTrustPolicy;
    let fix = format!(
        "irsa create-role --issuer-url {} --namespace {} --service-account {} --role-name {} --audience {}",
        w.issuer.as_str(),
        w.namespace,
        w.service_account,
        w.role_name,
        w.audience
    );
    let doc = match decode_policy_document(document) {
        Ok(d) => d,
        Err(e) => return Finding::fail(id, e.to_string(), fix),
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(s)) => s.clone(),
        Some(s) => vec![s.clone()],
        None => Vec::new(),
    };
    let mut why = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        match judge_statement(s, w) {
            Ok(()) => {
                return Finding::pass(
                    id,
                    format!(
                        "statement {i} lets system:serviceaccount:{}:{} with aud {} assume the role",
                        w.namespace, w.service_account, w.audience
                    ),
                );
            }
            Err(reason) => why.push(format!("statement {i}: {reason}")),
        }
    }
    if why.is_empty() {
        why.push("no statements".to_owned());
    }
    Finding::fail(
        id,
        format!(
            "the trust policy does not admit this ServiceAccount ({}): STS answers AccessDenied \"Not authorized to perform sts:AssumeRoleWithWebIdentity\"",
            why.join("; ")
        ),
        fix,
    )
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn judge_statement(s: &Value, w: &Wanted<'_>) -> Result<(), String> {
    if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return Err("not an Allow".to_owned());
    }
    let actions = strings(s.get("Action"));
    if !actions
        .iter()
        .any(|a| glob(a, ASSUME_ROLE_WITH_WEB_IDENTITY))
    {
        return Err(format!(
            "Action is {actions:?}, not {ASSUME_ROLE_WITH_WEB_IDENTITY}"
        ));
    }
    let federated = strings(s.pointer("/Principal/Federated"));
    if !federated.contains(&w.provider_arn) {
        return Err(format!(
            "Principal.Federated is {federated:?}, not {}",
            w.provider_arn
        ));
    }
    let subject = format!(
        "system:serviceaccount:{}:{}",
        w.namespace, w.service_account
    );
    let prefix = w.issuer.host_path();
    let conditions = s.get("Condition").and_then(Value::as_object);
    for (operator, pairs) in conditions.into_iter().flatten() {
        let like = match operator.as_str() {
            "StringEquals" => false,
            "StringLike" => true,
            other => {
                return Err(format!(
                    "condition operator {other} is not judged by irsa doctor"
                ));
            }
        };
        for (key, values) in pairs.as_object().into_iter().flatten() {
            let values = strings(Some(values));
            let matches = |have: &str| {
                values
                    .iter()
                    .any(|v| if like { glob(v, have) } else { *v == have })
            };
            let Some((issuer, claim)) = key.rsplit_once(':') else {
                continue;
            };
            if issuer != prefix {
                return Err(format!(
                    "condition key {key} names issuer {issuer}, not {prefix}"
                ));
            }
            match claim {
                "sub" if !matches(&subject) => {
                    return Err(format!(
                        "{operator} {key} is {values:?}, which {subject} does not match{}",
                        sub_hint(&values, w, like)
                    ));
                }
                "aud" if !matches(w.audience) => {
                    return Err(format!(
                        "{operator} {key} is {values:?}, not the tokens' audience {}",
                        w.audience
                    ));
                }
                "amr" => {
                    return Err(format!(
                        "{key} conditions on amr, which service-account tokens do not carry (use {prefix}:aud)"
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// What in a `sub` pattern differs: the namespace, the name, or `*` under StringEquals.
fn sub_hint(values: &[&str], w: &Wanted<'_>, like: bool) -> String {
    for v in values {
        if !like && (v.contains('*') || v.contains('?')) {
            return " (a wildcard under StringEquals is literal: use StringLike)".to_owned();
        }
        if let Some(rest) = v.strip_prefix("system:serviceaccount:")
            && let Some((ns, name)) = rest.split_once(':')
        {
            if ns != w.namespace {
                return format!(" (namespace {ns}, not {})", w.namespace);
            }
            if name != w.service_account {
                return format!(" (ServiceAccount {name}, not {})", w.service_account);
            }
        }
    }
    String::new()
}

/// IAM's `StringLike`: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Status;
    use irsa_core::Partition;
    use irsa_iam::trust_policy::TrustPolicy;
    use irsa_testing::pki::{Ca, LOOPBACK};

    fn url() -> IssuerUrl {
        IssuerUrl::parse("https://oidc.example.com/c1", false).unwrap()
    }

    fn existing(client_ids: &[&str], thumbprints: &[&str]) -> ExistingProvider {
        ExistingProvider {
            client_ids: client_ids.iter().map(|s| s.to_string()).collect(),
            thumbprints: thumbprints.iter().map(|s| s.to_string()).collect(),
            tags: Default::default(),
        }
    }

    const ARN: &str = "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/c1";

    #[test]
    fn provider_for_another_url_is_named() {
        let listed = Ok(vec![
            "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/c1/".to_owned(),
        ]);
        let f = provider(&url(), ARN, &Ok(None), &listed);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.what.contains("providers exist for oidc.example.com/c1/"),
            "{}",
            f.what
        );
        assert_eq!(
            f.fix.as_deref(),
            Some("irsa associate-oidc-provider --issuer-url https://oidc.example.com/c1")
        );
        let f = provider(&url(), ARN, &Ok(None), &Ok(vec![]));
        assert!(!f.what.contains("providers exist"), "{}", f.what);
        assert_eq!(
            provider(&url(), ARN, &Ok(Some(existing(&[], &[]))), &Ok(vec![])).status,
            Status::Pass
        );
        assert_eq!(
            provider(&url(), ARN, &Err("AccessDenied".into()), &Ok(vec![])).status,
            Status::Skipped
        );
    }

    #[test]
    fn missing_client_id() {
        let f = client_id(&url(), &existing(&["other"], &[]), "sts.amazonaws.com");
        assert_eq!(f.status, Status::Fail);
        assert_eq!(
            f.fix.as_deref(),
            Some(
                "irsa associate-oidc-provider --issuer-url https://oidc.example.com/c1 --client-id sts.amazonaws.com"
            )
        );
        assert_eq!(
            client_id(
                &url(),
                &existing(&["sts.amazonaws.com"], &[]),
                "sts.amazonaws.com"
            )
            .status,
            Status::Pass
        );
    }

    #[test]
    fn wrong_thumbprint() {
        let ca = Ca::new("issuer-ca");
        let chain = vec![ca.leaf(LOOPBACK).cert_der, ca.der()];
        let right = Thumbprint::of_der(&ca.der()).to_string();
        let f = thumbprint(
            &url(),
            &existing(&[], &[&"a".repeat(40)]),
            &Ok(chain.clone()),
            false,
        );
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains(&right), "{}", f.what);
        assert!(f.fix.unwrap().contains("--thumbprint auto"));
        let upper = right.to_ascii_uppercase();
        assert_eq!(
            thumbprint(&url(), &existing(&[], &[&upper]), &Ok(chain.clone()), false).status,
            Status::Pass
        );
        assert_eq!(
            thumbprint(&url(), &existing(&[], &[]), &Ok(chain), true).status,
            Status::Pass
        );
    }

    #[test]
    fn role_names() {
        assert_eq!(role_name("arn:aws:iam::1:role/app"), Some("app"));
        assert_eq!(role_name("arn:aws-cn:iam::1:role/path/to/app"), Some("app"));
        for other in [
            "arn:minio:iam:us-east-1::role/abc",
            "arn:aws:iam::1:user/x",
            "nope",
            "",
        ] {
            assert_eq!(role_name(other), None, "{other}");
        }
        assert_eq!(
            role("arn:aws:iam::1:role/app", &Ok(None)).status,
            Status::Fail
        );
    }

    fn wanted<'a>(u: &'a IssuerUrl) -> Wanted<'a> {
        Wanted {
            issuer: u,
            provider_arn: ARN,
            namespace: "team-a",
            service_account: "uploader",
            audience: "sts.amazonaws.com",
            role_name: "uploader",
        }
    }

    fn policy(ns: &str, sa: &str, aud: &str) -> String {
        let u = url();
        let arn = u.provider_arn(Partition::Aws, "111122223333");
        TrustPolicy::new(&u, &arn, ns, sa, aud).to_json()
    }

    #[test]
    fn trust_policy_as_create_role_writes_it_passes() {
        let u = url();
        let f = trust_policy(
            &policy("team-a", "uploader", "sts.amazonaws.com"),
            &wanted(&u),
        );
        assert_eq!(f.status, Status::Pass, "{f:?}");
        let like = policy("team-a", "*", "sts.amazonaws.com").replace("StringEquals", "StringLike");
        assert_eq!(trust_policy(&like, &wanted(&u)).status, Status::Pass);
    }

    #[test]
    fn trust_policy_for_another_namespace_or_audience_is_named() {
        let u = url();
        let f = trust_policy(
            &policy("team-b", "uploader", "sts.amazonaws.com"),
            &wanted(&u),
        );
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.what.contains("namespace team-b, not team-a"),
            "{}",
            f.what
        );
        assert!(f.fix.unwrap().starts_with("irsa create-role --issuer-url https://oidc.example.com/c1 --namespace team-a --service-account uploader"));
        let f = trust_policy(&policy("team-a", "uploader", "wrong-aud"), &wanted(&u));
        assert!(
            f.what
                .contains("not the tokens' audience sts.amazonaws.com"),
            "{}",
            f.what
        );
        let f = trust_policy(&policy("team-a", "upl*", "sts.amazonaws.com"), &wanted(&u));
        assert!(f.what.contains("use StringLike"), "{}", f.what);
        let amr = policy("team-a", "uploader", "sts.amazonaws.com").replace(":aud", ":amr");
        assert!(trust_policy(&amr, &wanted(&u)).what.contains("amr"));
        let other = policy("team-a", "uploader", "sts.amazonaws.com")
            .replace("oidc.example.com/c1:", "oidc.example.com/c2:");
        assert!(
            trust_policy(&other, &wanted(&u))
                .what
                .contains("names issuer oidc.example.com/c2")
        );
        assert_eq!(trust_policy("%7Bnope", &wanted(&u)).status, Status::Fail);
    }

    #[test]
    fn globs() {
        assert!(
            glob("a*c", "abbbc")
                && glob("a?c", "abc")
                && glob("*", "")
                && glob("sts:*", "sts:AssumeRoleWithWebIdentity")
        );
        assert!(!glob("a?c", "ac") && !glob("abc", "abd"));
    }
}
