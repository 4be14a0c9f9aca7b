//! The MutatingWebhookConfiguration: which webhook gets this namespace's pods, and whether the apiserver can
//! trust it (its caBundle verifies the certificate the webhook serves).

use std::collections::BTreeMap;

use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::Value;

use super::{Gathered, tls};
use crate::finding::{CheckId, Finding, Status};

/// The webhook of a MutatingWebhookConfiguration that receives pod creations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodWebhook {
    /// The configuration's name.
    pub configuration: String,
    /// The webhook's name.
    pub name: String,
    /// Its index in the configuration's `webhooks` (for JSON patches).
    pub index: usize,
    /// `clientConfig.url`, when the webhook is reached by URL.
    pub url: Option<String>,
    /// `clientConfig.service` as `namespace/name:port`, when reached through a Service.
    pub service: Option<String>,
    /// `clientConfig.caBundle`, decoded (PEM).
    pub ca_bundle: Option<Vec<u8>>,
    /// `failurePolicy` (the API's default is `Fail`).
    pub failure_policy: String,
    /// Whether the namespace selector admits the namespace.
    pub namespace_selected: bool,
    /// Whether the object selector admits a pod without labels.
    pub object_selected: bool,
}

/// The webhooks of `configurations` (MutatingWebhookConfiguration objects as JSON) that mutate pod
/// creations, judged for a namespace labelled `namespace_labels`: those named like irsa's (or the EKS pod
/// identity webhook's) when there are any, else every pod webhook.
pub fn pod_webhooks(
    configurations: &[Value],
    namespace_labels: &BTreeMap<String, String>,
) -> Vec<PodWebhook> {
    let mut found = Vec::new();
    for config in configurations {
        let configuration = text(config.pointer("/metadata/name")).unwrap_or_default();
        for (index, hook) in config
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if !mutates_pod_creation(hook) {
                continue;
            }
            let client = hook.get("clientConfig").cloned().unwrap_or_default();
            let service = client.get("service").map(|s| {
                format!(
                    "{}/{}:{}",
                    text(s.get("namespace")).unwrap_or_default(),
                    text(s.get("name")).unwrap_or_default(),
                    s.get("port").and_then(Value::as_u64).unwrap_or(443)
                )
            });
            use base64::Engine;
            let ca_bundle = text(client.get("caBundle"))
                .filter(|b| !b.is_empty())
                .map(|b| {
                    // Already PEM when someone wrote it without base64 (the API would refuse that, a fixture may not).
                    base64::engine::general_purpose::STANDARD
                        .decode(&b)
                        .unwrap_or_else(|_| b.into_bytes())
                });
            found.push(PodWebhook {
                configuration: configuration.clone(),
                name: text(hook.get("name")).unwrap_or_default(),
                index,
                url: text(client.get("url")),
                service,
                ca_bundle,
                failure_policy: text(hook.get("failurePolicy"))
                    .unwrap_or_else(|| "Fail".to_owned()),
                namespace_selected: selects(hook.get("namespaceSelector"), namespace_labels),
                object_selected: selects(hook.get("objectSelector"), &BTreeMap::new()),
            });
        }
    }
    let ours = |w: &PodWebhook| {
        let names = format!("{} {}", w.configuration, w.name).to_ascii_lowercase();
        names.contains("irsa") || names.contains("pod-identity")
    };
    if found.iter().any(ours) {
        found.retain(ours);
    }
    found
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

fn mutates_pod_creation(hook: &Value) -> bool {
    let has = |rule: &Value, field: &str, want: &[&str]| {
        rule.get(field).and_then(Value::as_array).is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|v| want.contains(&v))
        })
    };
    hook.get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|rule| {
            has(rule, "apiGroups", &["", "*"])
                && has(rule, "resources", &["pods", "*"])
                && has(rule, "operations", &["CREATE", "*"])
        })
}

/// Whether a label selector (absent = everything) admits `labels`.
pub fn selects(selector: Option<&Value>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let match_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let value = labels.get(key).map(String::as_str);
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => value.is_some_and(|v| values.contains(&v)),
                Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                _ => false,
            }
        });
    match_labels && expressions
}

/// Judges the pod webhooks for `namespace`: there is one, it selects the namespace, the caBundle of each
/// that does verifies the chain it serves (`served`, by URL: URL webhooks only), and the failure policy.
/// The worst verdict is reported.
pub fn webhook(
    configurations: &Gathered<Vec<Value>>,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    served: &BTreeMap<String, Gathered<Vec<CertificateDer<'static>>>>,
    now: UnixTime,
) -> Finding {
    let id = CheckId::Webhook;
    let configurations = match configurations {
        Ok(c) => c,
        Err(e) => {
            return Finding::skipped(
                id,
                format!("cannot list MutatingWebhookConfigurations: {e}"),
            );
        }
    };
    let hooks = pod_webhooks(configurations, namespace_labels);
    let Some(first) = hooks.first() else {
        return Finding::fail(
            id,
            "no MutatingWebhookConfiguration mutates pod creations: no pod gets web identity",
            "install the webhook: helm install irsa charts/irsa (or kubectl apply -k manifests/)",
        );
    };
    let selecting: Vec<&PodWebhook> = hooks
        .iter()
        .filter(|h| h.namespace_selected && h.object_selected)
        .collect();
    if selecting.is_empty() {
        let who = format!("webhook {} of {}", first.name, first.configuration);
        return if !first.namespace_selected {
            Finding::fail(
                id,
                format!("{who}: its namespaceSelector excludes namespace {namespace}"),
                format!(
                    "kubectl get mutatingwebhookconfiguration {} -o jsonpath='{{.webhooks[*].namespaceSelector}}', then relabel namespace {namespace} or widen the selector",
                    first.configuration
                ),
            )
        } else {
            Finding::fail(
                id,
                format!("{who}: its objectSelector excludes pods without labels"),
                format!("widen the objectSelector of {}", first.configuration),
            )
        };
    }
    let findings: Vec<Finding> = selecting
        .iter()
        .map(|h| judge(h, h.url.as_ref().and_then(|u| served.get(u)), now))
        .collect();
    let worst = [Status::Fail, Status::Warn]
        .into_iter()
        .find_map(|s| findings.iter().find(|f| f.status == s));
    worst.unwrap_or(&findings[0]).clone()
}

/// One webhook that receives the namespace's pods: its caBundle against what it serves, its failure policy.
fn judge(
    hook: &PodWebhook,
    served: Option<&Gathered<Vec<CertificateDer<'static>>>>,
    now: UnixTime,
) -> Finding {
    let id = CheckId::Webhook;
    let who = format!("webhook {} of {}", hook.name, hook.configuration);
    let Some(bundle) = &hook.ca_bundle else {
        return Finding::fail(
            id,
            format!("{who} has no caBundle: the apiserver cannot verify it and every call fails"),
            "set clientConfig.caBundle (cert-manager's cainjector, or irsa webhook serve --self-signed patches it)",
        );
    };
    let fix = format!(
        "kubectl patch mutatingwebhookconfiguration {} --type=json -p '[{{\"op\":\"replace\",\"path\":\"/webhooks/{}/clientConfig/caBundle\",\"value\":\"'$(base64 -w0 < CA.pem)'\"}}]' with the CA that signed the webhook's certificate",
        hook.configuration, hook.index
    );
    let verifier = match tls::verifier_of_pem(bundle) {
        Ok(v) => v,
        Err(e) => {
            return Finding::fail(id, format!("{who}: the caBundle is unusable: {e}"), fix);
        }
    };
    let verdict = match (served, &hook.url) {
        (Some(Ok(chain)), Some(url)) => {
            let host = url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
                .unwrap_or_default();
            match tls::verify(verifier.as_ref(), chain, &host, now) {
                Ok(()) => format!("its caBundle verifies the certificate served at {url}"),
                Err(e) => {
                    return Finding::fail(
                        id,
                        format!(
                            "{who}: the caBundle does not verify the certificate served at {url} ({e}): the apiserver cannot call it"
                        ),
                        fix,
                    );
                }
            }
        }
        (Some(Err(e)), Some(url)) => {
            format!("its certificate at {url} could not be fetched from here ({e})")
        }
        _ => format!(
            "it is reached through Service {}; the dry-run below shows whether the apiserver trusts it",
            hook.service.as_deref().unwrap_or("?")
        ),
    };
    if hook.failure_policy == "Ignore" {
        return Finding::warn(
            id,
            format!(
                "{who}: {verdict}; failurePolicy Ignore: when the webhook is down pods start without credentials and fall back to the node's"
            ),
            "set failurePolicy: Fail (with a namespaceSelector that leaves kube-system out)",
        );
    }
    Finding::pass(
        id,
        format!("{who}: {verdict}; failurePolicy {}", hook.failure_policy),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use irsa_testing::pki::{Ca, LOOPBACK};
    use serde_json::json;

    fn config(ca_pem: &str, url: &str, namespace_selector: Value, policy: &str) -> Value {
        json!({
            "metadata": {"name": "irsa"},
            "webhooks": [{
                "name": "pod-identity.irsa.dev",
                "clientConfig": {"url": url, "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem)},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
                "failurePolicy": policy,
                "namespaceSelector": namespace_selector,
                "objectSelector": {"matchExpressions": [{"key": "eks.amazonaws.com/skip-pod-identity-webhook", "operator": "DoesNotExist"}]},
            }]
        })
    }

    fn served(
        url: &str,
        chain: Vec<CertificateDer<'static>>,
    ) -> BTreeMap<String, Gathered<Vec<CertificateDer<'static>>>> {
        BTreeMap::from([(url.to_owned(), Ok(chain))])
    }

    fn labels(ns: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), ns.to_owned())])
    }

    #[test]
    fn ca_bundle_that_verifies_passes_and_a_wrong_one_fails() {
        let ca = Ca::new("webhook-ca");
        let chain = vec![ca.leaf(LOOPBACK).cert_der, ca.der()];
        let url = "https://127.0.0.1:8443/mutate";
        let good = config(&ca.pem(), url, json!({}), "Fail");
        let f = webhook(
            &Ok(vec![good]),
            "team-a",
            &labels("team-a"),
            &served(url, chain.clone()),
            UnixTime::now(),
        );
        assert_eq!(f.status, Status::Pass, "{f:?}");

        let wrong = config(&Ca::new("another").pem(), url, json!({}), "Fail");
        let f = webhook(
            &Ok(vec![wrong]),
            "team-a",
            &labels("team-a"),
            &served(url, chain),
            UnixTime::now(),
        );
        assert_eq!(f.status, Status::Fail);
        assert!(f.what.contains("caBundle does not verify"), "{}", f.what);
        assert!(
            f.fix
                .unwrap()
                .contains("kubectl patch mutatingwebhookconfiguration irsa")
        );

        let garbage = config("not a pem", url, json!({}), "Fail");
        let f = webhook(
            &Ok(vec![garbage]),
            "team-a",
            &labels("team-a"),
            &BTreeMap::new(),
            UnixTime::now(),
        );
        assert!(f.what.contains("unusable"), "{}", f.what);
    }

    #[test]
    fn namespace_excluded_missing_webhook_and_ignore_policy() {
        let ca = Ca::new("webhook-ca");
        let url = "https://127.0.0.1:8443/mutate";
        let excluding = config(
            &ca.pem(),
            url,
            json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["team-a"]}]}),
            "Fail",
        );
        let f = webhook(
            &Ok(vec![excluding]),
            "team-a",
            &labels("team-a"),
            &BTreeMap::new(),
            UnixTime::now(),
        );
        assert!(f.what.contains("excludes namespace team-a"), "{}", f.what);
        let f = webhook(
            &Ok(vec![]),
            "team-a",
            &labels("team-a"),
            &BTreeMap::new(),
            UnixTime::now(),
        );
        assert_eq!(f.status, Status::Fail);
        let ignore = config(
            &ca.pem(),
            url,
            json!({"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}),
            "Ignore",
        );
        let f = webhook(
            &Ok(vec![ignore]),
            "team-a",
            &labels("team-a"),
            &BTreeMap::new(),
            UnixTime::now(),
        );
        assert_eq!(f.status, Status::Warn, "{f:?}");
    }

    #[test]
    fn a_second_webhook_with_a_wrong_ca_bundle_is_the_one_reported() {
        let ca = Ca::new("webhook-ca");
        let good_url = "https://127.0.0.1:8443/mutate";
        let bad_url = "https://127.0.0.1:9443/mutate";
        let mut bad = config(&Ca::new("another").pem(), bad_url, json!({}), "Ignore");
        bad["metadata"]["name"] = json!("irsa-second");
        let served = BTreeMap::from([
            (
                good_url.to_owned(),
                Ok(vec![ca.leaf(LOOPBACK).cert_der, ca.der()]),
            ),
            (
                bad_url.to_owned(),
                Ok(vec![ca.leaf(LOOPBACK).cert_der, ca.der()]),
            ),
        ]);
        let configs = vec![config(&ca.pem(), good_url, json!({}), "Fail"), bad];
        let f = webhook(
            &Ok(configs),
            "team-a",
            &labels("team-a"),
            &served,
            UnixTime::now(),
        );
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.what.contains("irsa-second"), "{}", f.what);
        let other_pod_webhook = json!({"metadata": {"name": "sidecar-injector"}, "webhooks": [{"name": "x",
            "rules": [{"apiGroups": [""], "operations": ["CREATE"], "resources": ["pods"]}]}]});
        let hooks = pod_webhooks(std::slice::from_ref(&other_pod_webhook), &labels("a"));
        assert_eq!(
            hooks.len(),
            1,
            "another pod webhook is judged when irsa's is absent"
        );
        let hooks = pod_webhooks(
            &[
                other_pod_webhook,
                config(&ca.pem(), good_url, json!({}), "Fail"),
            ],
            &labels("a"),
        );
        assert_eq!(
            hooks
                .iter()
                .map(|h| h.configuration.as_str())
                .collect::<Vec<_>>(),
            ["irsa"]
        );
    }

    #[test]
    fn selectors() {
        let l = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        assert!(selects(None, &l));
        assert!(selects(Some(&json!({})), &l));
        assert!(selects(Some(&json!({"matchLabels": {"a": "1"}})), &l));
        assert!(!selects(Some(&json!({"matchLabels": {"a": "2"}})), &l));
        assert!(selects(
            Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]})
            ),
            &l
        ));
        assert!(!selects(
            Some(&json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]})),
            &l
        ));
        assert!(selects(
            Some(
                &json!({"matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["1"]}]})
            ),
            &l
        ));
        assert!(!selects(
            Some(&json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})),
            &l
        ));
    }
}
