//! The cluster: the apiserver's issuer, the ServiceAccount, the TokenRequest, the injection.

use std::collections::BTreeMap;

use irsa_core::IssuerUrl;
use irsa_core::names::{self, DEFAULT_ANNOTATION_PREFIX, annotation, annotation_key};
use serde_json::Value;

use super::{Gathered, sa_ref};
use crate::finding::{CheckId, Finding};
use crate::token::Claims;

/// The apiserver's issuer from its own `/.well-known/openid-configuration`, judged against `--issuer-url`.
/// Returns the finding and the issuer the rest of the checks use (the given one wins when both exist, so
/// a mismatch is reported here once and the rest judge what the user asked about).
pub fn issuer(apiserver: &Gathered<Vec<u8>>, given: Option<&str>) -> (Finding, Option<String>) {
    let id = CheckId::ClusterIssuer;
    let served = apiserver.as_ref().map_err(String::clone).and_then(|body| {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("issuer").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| "its discovery document has no \"issuer\" string".to_owned())
    });
    let served = match (served, given) {
        (Ok(s), _) => s,
        (Err(e), Some(g)) => {
            return (
                Finding::warn(
                    id,
                    format!(
                        "cannot read the apiserver's /.well-known/openid-configuration ({e}); judging --issuer-url {g}"
                    ),
                    "grant this user get on the nonResourceURL /.well-known/openid-configuration (the system:service-account-issuer-discovery ClusterRole)",
                ),
                Some(g.to_owned()),
            );
        }
        (Err(e), None) => {
            return (
                Finding::fail(
                    id,
                    format!("cannot read the apiserver's /.well-known/openid-configuration: {e}"),
                    "pass --issuer-url with the apiserver's --service-account-issuer, or grant this user the system:service-account-issuer-discovery ClusterRole",
                ),
                None,
            );
        }
    };
    if let Err(e) = IssuerUrl::parse(&served, false) {
        return (
            Finding::fail(
                id,
                format!("the apiserver's issuer is unusable for STS: {e}"),
                "set kube-apiserver --service-account-issuer to the public https:// URL the issuer is served at",
            ),
            Some(given.unwrap_or(&served).to_owned()),
        );
    }
    match given {
        Some(g) if g != served => (
            Finding::fail(
                id,
                format!(
                    "the apiserver signs tokens with iss {served:?} but --issuer-url is {g:?}{}",
                    differs_by(&served, g)
                ),
                format!(
                    "set kube-apiserver --service-account-issuer={g} (during the change, list the old issuer as a second --service-account-issuer so running pods keep working), or run irsa doctor --issuer-url {served}"
                ),
            ),
            Some(g.to_owned()),
        ),
        _ => (
            Finding::pass(id, format!("the apiserver's issuer is {served}")),
            Some(served),
        ),
    }
}

/// Why two issuer spellings differ, when it is one of the usual traps.
pub fn differs_by(a: &str, b: &str) -> &'static str {
    if a.trim_end_matches('/') == b.trim_end_matches('/') {
        " (they differ by a trailing slash, which counts: STS compares byte for byte)"
    } else if a.eq_ignore_ascii_case(b) {
        " (they differ in case, which counts: STS compares byte for byte)"
    } else if strip_port(a) == strip_port(b) {
        " (they differ by a port, which counts: STS compares byte for byte)"
    } else {
        ""
    }
}

fn strip_port(url: &str) -> String {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    format!("{host}{path}")
}

/// What the ServiceAccount says: the role to assume and the audience of its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAccountView {
    /// `eks.amazonaws.com/role-arn`.
    pub role_arn: Option<String>,
    /// `eks.amazonaws.com/audience`, else the default.
    pub audience: String,
    /// Every annotation, for the near-miss check.
    pub annotations: BTreeMap<String, String>,
}

impl ServiceAccountView {
    /// The view of a ServiceAccount's annotations under the default prefix.
    pub fn of(annotations: BTreeMap<String, String>) -> ServiceAccountView {
        let key = |suffix| annotation_key(DEFAULT_ANNOTATION_PREFIX, suffix);
        ServiceAccountView {
            role_arn: annotations
                .get(&key(annotation::ROLE_ARN))
                .map(|s| s.trim().to_owned()),
            audience: annotations
                .get(&key(annotation::AUDIENCE))
                .cloned()
                .unwrap_or_else(|| names::DEFAULT_AUDIENCE.to_owned()),
            annotations,
        }
    }
}

/// The ServiceAccount exists and names a role. `sa` is its annotations, `None` when it does not exist.
pub fn service_account(
    sa: &Gathered<Option<BTreeMap<String, String>>>,
    namespace: &str,
    name: &str,
) -> (Finding, Option<ServiceAccountView>) {
    let id = CheckId::ServiceAccount;
    let key = annotation_key(DEFAULT_ANNOTATION_PREFIX, annotation::ROLE_ARN);
    match sa {
        Err(e) => (
            Finding::fail(
                id,
                format!("cannot read ServiceAccount {namespace}/{name}: {e}"),
                "check --kubeconfig and that this user may get serviceaccounts",
            ),
            None,
        ),
        Ok(None) => (
            Finding::fail(
                id,
                format!("ServiceAccount {namespace}/{name} does not exist"),
                format!(
                    "kubectl create {}, then irsa create-role --namespace {namespace} --service-account {name} --annotate-service-account ...",
                    sa_ref(namespace, name)
                ),
            ),
            None,
        ),
        Ok(Some(annotations)) => {
            let view = ServiceAccountView::of(annotations.clone());
            let finding = match &view.role_arn {
                None => Finding::fail(
                    id,
                    format!(
                        "ServiceAccount {namespace}/{name} has no {key} annotation: its pods get no web identity"
                    ),
                    format!(
                        "kubectl annotate {} {key}=arn:aws:iam::ACCOUNT:role/NAME (or irsa create-role --annotate-service-account)",
                        sa_ref(namespace, name)
                    ),
                ),
                Some(arn) => Finding::pass(
                    id,
                    format!(
                        "ServiceAccount {namespace}/{name} names role {arn}, audience {}",
                        view.audience
                    ),
                ),
            };
            (finding, Some(view))
        }
    }
}

/// A TokenRequest for the ServiceAccount with its audience succeeded, and the token says what STS needs.
pub fn token_request(
    token: &Gathered<Claims>,
    issuer: Option<&str>,
    audience: &str,
    namespace: &str,
    name: &str,
) -> Finding {
    let id = CheckId::TokenRequest;
    let claims = match token {
        Ok(c) => c,
        Err(e) => {
            return Finding::fail(
                id,
                format!(
                    "TokenRequest for {namespace}/{name} with audience {audience:?} failed: {e}"
                ),
                "check that this user may create serviceaccounts/token, and that kube-apiserver runs with --service-account-signing-key-file and --service-account-issuer",
            );
        }
    };
    let subject = format!("system:serviceaccount:{namespace}:{name}");
    if !claims.aud.iter().any(|a| a == audience) {
        return Finding::fail(
            id,
            format!("the token's aud is {:?}, not {audience:?}", claims.aud),
            "kube-apiserver must honour the requested audience: do not set --api-audiences to a list that drops it, and check the audience annotation",
        );
    }
    if claims.sub.as_deref() != Some(subject.as_str()) {
        return Finding::fail(
            id,
            format!("the token's sub is {:?}, not {subject:?}", claims.sub),
            "report this: the apiserver minted a token for another subject",
        );
    }
    match (issuer, claims.iss.as_deref()) {
        (Some(want), Some(iss)) if want != iss => Finding::fail(
            id,
            format!(
                "the token's iss is {iss:?} but the issuer is {want:?}{}",
                differs_by(want, iss)
            ),
            format!(
                "set kube-apiserver --service-account-issuer={want} (first in the list: it is the one that signs)"
            ),
        ),
        (_, None) => Finding::fail(
            id,
            "the token has no iss",
            "set kube-apiserver --service-account-issuer",
        ),
        (_, Some(iss)) => Finding::pass(
            id,
            format!(
                "TokenRequest with audience {audience:?} gives a token of {iss}, kid {}",
                claims.kid.as_deref().unwrap_or("(none)")
            ),
        ),
    }
}

/// A server-side dry-run create of a pod of the ServiceAccount came back with the injection.
pub fn injection(pod: &Gathered<Value>, role_arn: &str, namespace: &str, name: &str) -> Finding {
    let id = CheckId::Injection;
    let pod = match pod {
        Ok(p) => p,
        Err(e) => {
            return Finding::fail(
                id,
                format!("a dry-run create of a pod of {namespace}/{name} was refused: {e}"),
                "read the message: a webhook that denies or fails (failurePolicy Fail) stops every pod of the namespace; kubectl get mutatingwebhookconfigurations",
            );
        }
    };
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let env = |c: &Value, k: &str| -> Option<String> {
        c.get("env")?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(k))?
            .get("value")?
            .as_str()
            .map(str::to_owned)
    };
    let volume = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .is_some_and(|v| {
            v.iter()
                .any(|v| v.get("name").and_then(Value::as_str) == Some(names::TOKEN_VOLUME_NAME))
        });
    let injected = containers.first().map(|c| {
        (
            env(c, names::env::ROLE_ARN),
            env(c, names::env::WEB_IDENTITY_TOKEN_FILE),
        )
    });
    match injected {
        Some((Some(arn), Some(_))) if volume && arn == role_arn => Finding::pass(
            id,
            format!(
                "a dry-run pod of {namespace}/{name} gets AWS_ROLE_ARN={arn} and the token volume"
            ),
        ),
        Some((Some(arn), Some(_))) if volume => Finding::fail(
            id,
            format!("a dry-run pod gets AWS_ROLE_ARN={arn}, not the ServiceAccount's {role_arn}"),
            "a container or another webhook sets AWS_ROLE_ARN itself: remove it from the pod spec",
        ),
        _ => Finding::fail(
            id,
            format!(
                "a dry-run pod of {namespace}/{name} comes back without AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and the {} volume: the webhook did not inject",
                names::TOKEN_VOLUME_NAME
            ),
            "see cluster.webhook; check the webhook's logs (irsa webhook serve) and that its --annotation-prefix is the ServiceAccount's",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Status;
    use serde_json::json;

    fn discovery(issuer: &str) -> Gathered<Vec<u8>> {
        Ok(
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/openid/v1/jwks")})
                .to_string()
                .into_bytes(),
        )
    }

    #[test]
    fn issuer_trailing_slash_mismatch_is_named() {
        let (f, used) = issuer(
            &discovery("https://oidc.example.com/c1"),
            Some("https://oidc.example.com/c1/"),
        );
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains("trailing slash"), "{}", f.what);
        assert!(
            f.fix
                .unwrap()
                .contains("--service-account-issuer=https://oidc.example.com/c1/")
        );
        assert_eq!(used.as_deref(), Some("https://oidc.example.com/c1/"));
        let (f, used) = issuer(&discovery("https://oidc.example.com/c1"), None);
        assert_eq!(f.status, Status::Pass);
        assert_eq!(used.as_deref(), Some("https://oidc.example.com/c1"));
        let (f, _) = issuer(
            &discovery("https://Oidc.example.com"),
            Some("https://oidc.example.com"),
        );
        assert!(f.what.contains("case"), "{}", f.what);
        let (f, _) = issuer(
            &discovery("https://o.example.com:443/x"),
            Some("https://o.example.com/x"),
        );
        assert!(f.what.contains("port"), "{}", f.what);
    }

    #[test]
    fn issuer_unreadable_or_unusable() {
        let (f, used) = issuer(&Err("403 Forbidden".into()), None);
        assert_eq!((f.status, used), (Status::Fail, None));
        let (f, used) = issuer(&Err("403 Forbidden".into()), Some("https://x"));
        assert_eq!(
            (f.status, used.as_deref()),
            (Status::Warn, Some("https://x"))
        );
        let (f, _) = issuer(&Ok(b"not json".to_vec()), None);
        assert_eq!(f.status, Status::Fail);
        let (f, _) = issuer(
            &discovery("https://kubernetes.default.svc.cluster.local?x"),
            None,
        );
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains("unusable"), "{}", f.what);
    }

    #[test]
    fn service_account_states() {
        let (f, v) = service_account(&Ok(None), "a", "b");
        assert_eq!((f.status, v), (Status::Fail, None));
        let (f, v) = service_account(&Ok(Some(BTreeMap::new())), "a", "b");
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.fix
                .unwrap()
                .contains("kubectl annotate serviceaccount b -n a eks.amazonaws.com/role-arn=")
        );
        assert_eq!(v.unwrap().audience, "sts.amazonaws.com");
        let ann = BTreeMap::from([
            (
                "eks.amazonaws.com/role-arn".to_owned(),
                "arn:aws:iam::1:role/r".to_owned(),
            ),
            ("eks.amazonaws.com/audience".to_owned(), "custom".to_owned()),
        ]);
        let (f, v) = service_account(&Ok(Some(ann)), "a", "b");
        assert_eq!(f.status, Status::Pass);
        let v = v.unwrap();
        assert_eq!(
            (v.role_arn.as_deref(), v.audience.as_str()),
            (Some("arn:aws:iam::1:role/r"), "custom")
        );
        let (f, _) = service_account(&Err("forbidden".into()), "a", "b");
        assert_eq!(f.status, Status::Fail);
    }

    fn claims(iss: &str, aud: &str) -> Claims {
        Claims {
            kid: Some("k".into()),
            iss: Some(iss.into()),
            sub: Some("system:serviceaccount:a:b".into()),
            aud: vec![aud.into()],
            ..Claims::default()
        }
    }

    #[test]
    fn token_request_wrong_aud_or_iss() {
        let ok = token_request(
            &Ok(claims("https://i", "sts.amazonaws.com")),
            Some("https://i"),
            "sts.amazonaws.com",
            "a",
            "b",
        );
        assert_eq!(ok.status, Status::Pass);
        let aud = token_request(
            &Ok(claims("https://i", "other")),
            Some("https://i"),
            "sts.amazonaws.com",
            "a",
            "b",
        );
        assert_eq!(aud.status, Status::Fail);
        assert!(aud.what.contains("aud"), "{}", aud.what);
        let iss = token_request(
            &Ok(claims("https://i/", "sts.amazonaws.com")),
            Some("https://i"),
            "sts.amazonaws.com",
            "a",
            "b",
        );
        assert!(iss.what.contains("trailing slash"), "{}", iss.what);
        let sub = token_request(
            &Ok(claims("https://i", "sts.amazonaws.com")),
            Some("https://i"),
            "sts.amazonaws.com",
            "x",
            "b",
        );
        assert_eq!(sub.status, Status::Fail);
        let failed = token_request(
            &Err("forbidden".into()),
            None,
            "sts.amazonaws.com",
            "a",
            "b",
        );
        assert_eq!(failed.status, Status::Fail);
    }

    #[test]
    fn injection_seen_or_not() {
        let injected = json!({"spec": {
            "containers": [{"name": "app", "env": [
                {"name": "AWS_ROLE_ARN", "value": "arn:r"},
                {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/t"}]}],
            "volumes": [{"name": "aws-iam-token"}]}});
        assert_eq!(
            injection(&Ok(injected.clone()), "arn:r", "a", "b").status,
            Status::Pass
        );
        assert_eq!(
            injection(&Ok(injected), "arn:other", "a", "b").status,
            Status::Fail
        );
        let plain = json!({"spec": {"containers": [{"name": "app"}]}});
        let f = injection(&Ok(plain), "arn:r", "a", "b");
        assert!(f.what.contains("did not inject"), "{}", f.what);
        assert_eq!(
            injection(&Err("denied".into()), "arn:r", "a", "b").status,
            Status::Fail
        );
    }
}
