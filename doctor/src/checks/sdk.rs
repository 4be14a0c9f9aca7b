//! What the pod's AWS SDK would do: variables that win over or redirect web identity, the region and the
//! STS endpoint, and annotation keys that are near misses of the role annotation.

use std::collections::BTreeMap;

use irsa_core::names::{DEFAULT_ANNOTATION_PREFIX, annotation, annotation_key, env};
use serde_json::Value;

use super::sa_ref;
use crate::finding::{CheckId, Finding};

/// Variables that make every SDK use other credentials than web identity.
const STATIC_KEYS: &[&str] = &[
    env::ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];
/// Variables that redirect the credential chain or its endpoints.
const REDIRECTS: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_ENDPOINT",
    "AWS_ENDPOINT_URL",
];

/// Each container's name and its env names (with values, where given literally).
fn containers(pod: &Value) -> Vec<(String, BTreeMap<String, Option<String>>)> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| {
            pod.pointer(&format!("/spec/{list}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let env = c
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    let k = e.get("name")?.as_str()?.to_owned();
                    Some((k, e.get("value").and_then(Value::as_str).map(str::to_owned)))
                })
                .collect();
            (name, env)
        })
        .collect()
}

/// `sdk.environment`: no container of `pod` sets static keys (which win over web identity in every SDK) or
/// variables that redirect the credential chain.
pub fn environment(pod: &Value, what: &str) -> Finding {
    let id = CheckId::SdkEnvironment;
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("POD");
    let mut keys = Vec::new();
    let mut redirects = Vec::new();
    for (container, env) in containers(pod) {
        for k in env.keys() {
            if STATIC_KEYS.contains(&k.as_str()) {
                keys.push(format!("{container}: {k}"));
            } else if REDIRECTS.contains(&k.as_str()) {
                redirects.push(format!("{container}: {k}"));
            }
        }
    }
    if !keys.is_empty() {
        let unset: Vec<String> = STATIC_KEYS.iter().map(|k| format!("{k}-")).collect();
        return Finding::fail(
            id,
            format!(
                "{what} sets static keys ({}): every SDK uses them before web identity, so the role is never assumed",
                keys.join(", ")
            ),
            format!(
                "remove them from the pod spec (for a Deployment: kubectl set env deployment/NAME {})",
                unset.join(" ")
            ),
        );
    }
    if !redirects.is_empty() {
        return Finding::warn(
            id,
            format!(
                "{what} sets {}: the SDK may take credentials or endpoints from elsewhere before web identity",
                redirects.join(", ")
            ),
            format!(
                "remove them unless intended: kubectl get pod {pod_name} -o yaml | grep -n AWS_"
            ),
        );
    }
    Finding::pass(
        id,
        format!("{what} sets nothing that wins over web identity"),
    )
}

/// `sdk.region`: the pod has a region and calls the regional STS endpoint (older SDKs default to the global
/// one, which is slower and lives in us-east-1 only).
pub fn region(pod: &Value, what: &str, sts_endpoint: Option<&str>) -> Finding {
    let id = CheckId::SdkRegion;
    let env: BTreeMap<String, Option<String>> = containers(pod)
        .into_iter()
        .next()
        .map(|(_, e)| e)
        .unwrap_or_default();
    let value = |k: &str| env.get(k).cloned().flatten();
    let region = value(env::REGION).or_else(|| value(env::DEFAULT_REGION));
    let regional = value(env::STS_REGIONAL_ENDPOINTS);
    match (region, regional.as_deref()) {
        (None, _) => Finding::warn(
            id,
            format!(
                "{what} has no AWS_REGION: SDKs fall back to IMDS or fail, and older ones call the global STS endpoint"
            ),
            "set AWS_REGION in the pod (or let the webhook inject it: irsa webhook serve --region/--sts-regional-endpoints)",
        ),
        (Some(r), Some("legacy")) => Finding::warn(
            id,
            format!(
                "{what} sets AWS_STS_REGIONAL_ENDPOINTS=legacy with region {r}: STS is called in us-east-1"
            ),
            "set AWS_STS_REGIONAL_ENDPOINTS=regional, and activate STS in the region (an inactive region answers a misleading \"No OpenIDConnect provider found\")",
        ),
        (Some(r), _) => Finding::pass(
            id,
            format!(
                "{what} uses region {r} and {}",
                sts_endpoint.map_or_else(|| format!("sts.{r}.amazonaws.com"), str::to_owned)
            ),
        ),
    }
}

/// `sdk.annotations`: no annotation key of the ServiceAccount is a near miss of `eks.amazonaws.com/role-arn`
/// (a typo in the prefix or the suffix means no injection, silently).
pub fn annotations(
    annotations: &BTreeMap<String, String>,
    namespace: &str,
    service_account: &str,
) -> Finding {
    let id = CheckId::SdkAnnotations;
    let want = annotation_key(DEFAULT_ANNOTATION_PREFIX, annotation::ROLE_ARN);
    let near: Vec<&String> = annotations
        .keys()
        .filter(|k| **k != want && distance(&k.to_ascii_lowercase(), &want) <= 3)
        .collect();
    match near.first() {
        None => Finding::pass(
            id,
            "no annotation key is a near miss of the role annotation",
        ),
        Some(key) => Finding::fail(
            id,
            format!("annotation {key:?} looks like {want:?} but is not: the webhook ignores it"),
            format!(
                "kubectl annotate {} {key}- {want}={}",
                sa_ref(namespace, service_account),
                annotations
                    .get(*key)
                    .map(String::as_str)
                    .unwrap_or_default()
            ),
        ),
    }
}

/// Levenshtein distance, for near misses.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Status;
    use serde_json::json;

    fn pod(env: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "env": env}]}})
    }

    #[test]
    fn static_keys_in_the_pod_fail() {
        let f = environment(
            &pod(
                json!([{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA"}, {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {}}]),
            ),
            "pod p",
        );
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains("app: AWS_ACCESS_KEY_ID"), "{}", f.what);
        assert!(
            f.fix
                .unwrap()
                .contains("kubectl set env deployment/NAME AWS_ACCESS_KEY_ID-")
        );
        let f = environment(
            &pod(json!([{"name": "AWS_PROFILE", "value": "x"}])),
            "pod p",
        );
        assert_eq!(f.status, Status::Warn);
        assert_eq!(
            environment(
                &pod(json!([{"name": "AWS_REGION", "value": "eu-west-1"}])),
                "pod p"
            )
            .status,
            Status::Pass
        );
        assert_eq!(environment(&json!({}), "pod p").status, Status::Pass);
    }

    #[test]
    fn region_and_regional_endpoints() {
        assert_eq!(region(&pod(json!([])), "pod p", None).status, Status::Warn);
        let legacy = pod(
            json!([{"name": "AWS_REGION", "value": "eu-west-1"}, {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "legacy"}]),
        );
        assert_eq!(region(&legacy, "pod p", None).status, Status::Warn);
        let ok = pod(json!([{"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"}]));
        let f = region(&ok, "pod p", None);
        assert_eq!(f.status, Status::Pass);
        assert!(f.what.contains("sts.eu-west-1.amazonaws.com"));
    }

    #[test]
    fn near_miss_annotations() {
        let a = BTreeMap::from([(
            "eks.amazon.com/role-arn".to_owned(),
            "arn:aws:iam::1:role/r".to_owned(),
        )]);
        let f = annotations(&a, "ns", "sa");
        assert_eq!(f.status, Status::Fail);
        assert_eq!(
            f.fix.as_deref(),
            Some(
                "kubectl annotate serviceaccount sa -n ns eks.amazon.com/role-arn- eks.amazonaws.com/role-arn=arn:aws:iam::1:role/r"
            )
        );
        for near in [
            "eks.amazonaws.com/role_arn",
            "eks.amazonaws.com/rolearn",
            "EKS.amazonaws.com/role-arn",
        ] {
            let a = BTreeMap::from([(near.to_owned(), "x".to_owned())]);
            assert_eq!(annotations(&a, "ns", "sa").status, Status::Fail, "{near}");
        }
        let fine = BTreeMap::from([
            ("eks.amazonaws.com/role-arn".to_owned(), "x".to_owned()),
            ("eks.amazonaws.com/audience".to_owned(), "x".to_owned()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_owned(),
                "x".to_owned(),
            ),
        ]);
        assert_eq!(annotations(&fine, "ns", "sa").status, Status::Pass);
    }
}
