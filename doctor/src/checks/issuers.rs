//! Several issuers during an issuer change: kube-apiserver signs with its first `--service-account-issuer`
//! and accepts every one listed. Changing the issuer without listing the old one second breaks every
//! running pod's token until the kubelet refreshes it; keeping an old issuer that IAM no longer knows
//! leaves the pods still holding its tokens refused by STS.
//!
//! The flags are only visible where kube-apiserver runs as a pod (kubeadm-like clusters: the kube-system
//! static pod labelled `component=kube-apiserver`); elsewhere the check says it cannot judge, and why.

use serde_json::Value;

use super::Gathered;
use crate::finding::{CheckId, Finding};

/// The label of kubeadm's (and most installers') kube-apiserver static pod in kube-system.
pub const APISERVER_POD_SELECTOR: &str = "component=kube-apiserver";

const FLAG: &str = "--service-account-issuer";

/// Every `--service-account-issuer` of the pod's kube-apiserver container, in order (`--flag=v` and
/// `--flag v` both count).
pub fn issuer_flags(pod: &Value) -> Vec<String> {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("kube-apiserver"))
        .or_else(|| containers.first());
    let words: Vec<&str> = container
        .into_iter()
        .flat_map(|c| ["command", "args"].map(|k| c.get(k)))
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        if let Some(value) = word.strip_prefix(FLAG).and_then(|r| r.strip_prefix('=')) {
            out.push(value.to_owned());
        } else if word == FLAG
            && let Some(value) = words.next()
        {
            out.push(value.to_owned());
        }
    }
    out
}

/// An IAM OIDC provider, by its ARN.
fn provider_url(arn: &str) -> Option<String> {
    arn.split_once(":oidc-provider/")
        .map(|(_, host_path)| format!("https://{host_path}"))
}

/// Where an issuer URL lives: its host and path but the last segment (`https://s3.example.com/bucket/c1` →
/// `s3.example.com/bucket`), so that a renamed cluster path is recognised while another bucket's or host's
/// clusters are not taken for this one's.
fn parent(url: &str) -> &str {
    let rest = url
        .strip_prefix("https://")
        .unwrap_or(url)
        .trim_end_matches('/');
    rest.rsplit_once('/').map_or(rest, |(parent, _)| parent)
}

/// `cluster.issuers`: which issuers kube-apiserver accepts (from `apiserver_pod`, its static pod, `None`
/// when there is none), against `signing` (the token's `iss`) and `providers` (every IAM OIDC provider ARN
/// of the account, when IAM was read).
pub fn issuers(
    apiserver_pod: &Gathered<Option<Value>>,
    signing: Option<&str>,
    providers: Option<&[String]>,
) -> Finding {
    let id = CheckId::ClusterIssuers;
    let pod = match apiserver_pod {
        Err(e) => {
            return Finding::skipped(
                id,
                format!(
                    "cannot list kube-system pods to read kube-apiserver's flags ({e}): which issuers it accepts is unknown"
                ),
            );
        }
        Ok(None) => {
            return Finding::skipped(
                id,
                format!(
                    "kube-apiserver's flags are not visible (no kube-system pod labelled {APISERVER_POD_SELECTOR}: a managed or hand-run control plane), so which issuers it accepts is unknown; when changing the issuer, list the new one first and keep the old: {FLAG}=NEW {FLAG}=OLD"
                ),
            );
        }
        Ok(Some(pod)) => pod,
    };
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("kube-apiserver");
    let flags = issuer_flags(pod);
    let Some(first) = flags.first() else {
        return Finding::skipped(
            id,
            format!("pod kube-system/{name} sets no {FLAG}: its issuers are unknown"),
        );
    };
    if let Some(signing) = signing.filter(|s| s != first) {
        return Finding::warn(
            id,
            format!(
                "pod kube-system/{name} lists {FLAG}={first} first, but tokens carry iss {signing}: the pod's flags are not what runs (a change not yet rolled out, or several apiservers that disagree)"
            ),
            format!(
                "roll the change out to every kube-apiserver, keeping the old issuer as a second flag: {FLAG}={first} {FLAG}={signing}"
            ),
        );
    }
    let accepted = flags.join(", ");
    let Some(providers) = providers else {
        return Finding::pass(
            id,
            format!(
                "kube-apiserver signs with {first} and accepts [{accepted}]; IAM not read, so old providers were not compared"
            ),
        );
    };
    let registered: Vec<(String, &str)> = providers
        .iter()
        .filter_map(|arn| provider_url(arn).map(|u| (u, arn.as_str())))
        .collect();
    // A provider next to this cluster's issuers that the apiserver no longer accepts: the trace of an
    // issuer change made without keeping the old issuer.
    let parents: Vec<&str> = flags.iter().map(|f| parent(f)).collect();
    let dropped: Vec<&(String, &str)> = registered
        .iter()
        .filter(|(url, _)| parents.contains(&parent(url)) && !flags.contains(url))
        .collect();
    if let Some((url, arn)) = dropped.first() {
        return Finding::warn(
            id,
            format!(
                "IAM has a provider for {url}, next to this cluster's issuer, but kube-apiserver no longer accepts that issuer (it accepts [{accepted}]): if the issuer changed recently, running pods still holding tokens of {url} are refused until the kubelet refreshes them"
            ),
            format!(
                "while such tokens may live, keep the old issuer as a later flag ({FLAG}={first} {FLAG}={url}); once the change is over, remove the provider: aws iam delete-open-id-connect-provider --open-id-connect-provider-arn {arn}"
            ),
        );
    }
    // An old issuer still accepted that IAM no longer knows: STS refuses the tokens it signed.
    let unknown: Vec<&String> = flags[1..]
        .iter()
        .filter(|f| !registered.iter().any(|(url, _)| url == *f))
        .collect();
    if let Some(old) = unknown.first() {
        return Finding::warn(
            id,
            format!(
                "kube-apiserver still accepts {old} (an issuer change in progress) but IAM has no provider for it: pods whose token still carries iss {old} are refused by STS until the kubelet refreshes it"
            ),
            format!(
                "until every such token is refreshed, keep its provider: irsa associate-oidc-provider --issuer-url {old}; after that, drop {FLAG}={old}"
            ),
        );
    }
    Finding::pass(
        id,
        format!("kube-apiserver signs with {first} and accepts [{accepted}], each known to IAM"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Status;

    const NEW: &str = "https://oidc.example.com/c1";
    const OLD: &str = "https://oidc.example.com/old";

    fn recorded(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn arn(url: &str) -> String {
        format!(
            "arn:aws:iam::111122223333:oidc-provider/{}",
            url.trim_start_matches("https://")
        )
    }

    #[test]
    fn flags_of_a_kubeadm_static_pod() {
        let pod = recorded("kube-apiserver-pod.json");
        assert_eq!(issuer_flags(&pod), [NEW, OLD]);
        let split = serde_json::json!({"spec": {"containers": [{"name": "kube-apiserver",
            "command": ["kube-apiserver"], "args": ["--service-account-issuer", NEW, "--v=2"]}]}});
        assert_eq!(issuer_flags(&split), [NEW]);
        assert!(issuer_flags(&serde_json::json!({"spec": "odd"})).is_empty());
    }

    #[test]
    fn an_issuer_change_with_both_providers_passes() {
        let pod = Ok(Some(recorded("kube-apiserver-pod.json")));
        let f = issuers(&pod, Some(NEW), Some(&[arn(NEW), arn(OLD)]));
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert!(
            f.what.contains(&format!("accepts [{NEW}, {OLD}]")),
            "{}",
            f.what
        );
    }

    #[test]
    fn an_old_issuer_still_accepted_without_its_provider_warns() {
        let pod = Ok(Some(recorded("kube-apiserver-pod.json")));
        let f = issuers(&pod, Some(NEW), Some(&[arn(NEW)]));
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(
            f.what.contains(&format!("still accepts {OLD}")),
            "{}",
            f.what
        );
        assert!(
            f.fix
                .unwrap()
                .contains(&format!("irsa associate-oidc-provider --issuer-url {OLD}"))
        );
    }

    #[test]
    fn a_provider_for_an_issuer_no_longer_accepted_warns() {
        let mut pod = recorded("kube-apiserver-pod.json");
        // The change made without keeping the old issuer.
        let command = pod
            .pointer_mut("/spec/containers/0/command")
            .and_then(Value::as_array_mut)
            .unwrap();
        command.retain(|w| w.as_str() != Some(&format!("--service-account-issuer={OLD}")));
        let f = issuers(&Ok(Some(pod)), Some(NEW), Some(&[arn(NEW), arn(OLD)]));
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(
            f.what.contains(&format!("provider for {OLD}")) && f.what.contains("no longer accepts"),
            "{}",
            f.what
        );
        let fix = f.fix.unwrap();
        assert!(
            fix.contains(&format!(
                "--service-account-issuer={NEW} --service-account-issuer={OLD}"
            )) && fix.contains(&format!("--open-id-connect-provider-arn {}", arn(OLD))),
            "{fix}"
        );
        // A provider on another host, or under another path (another bucket's clusters), is not this one's.
        let f = issuers(
            &Ok(Some(recorded("kube-apiserver-pod.json"))),
            Some(NEW),
            Some(&[
                arn(NEW),
                arn(OLD),
                arn("https://elsewhere.example.org/x"),
                arn("https://oidc.example.com/other-bucket/c1"),
            ]),
        );
        assert_eq!(f.status, Status::Pass, "{f:?}");
    }

    #[test]
    fn flags_that_are_not_what_runs_warn() {
        let pod = Ok(Some(recorded("kube-apiserver-pod.json")));
        let f = issuers(&pod, Some(OLD), None);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.what.contains("not what runs"), "{}", f.what);
        assert_eq!(issuers(&pod, Some(NEW), None).status, Status::Pass);
    }

    #[test]
    fn invisible_flags_are_skipped_with_why() {
        let f = issuers(&Ok(None), Some(NEW), None);
        assert_eq!(f.status, Status::Skipped);
        assert!(f.what.contains("not visible"), "{}", f.what);
        let f = issuers(&Err("pods is forbidden (403)".into()), Some(NEW), None);
        assert_eq!(f.status, Status::Skipped);
        assert!(f.what.contains("forbidden"), "{}", f.what);
        let bare = serde_json::json!({"metadata": {"name": "kube-apiserver-cp1"},
            "spec": {"containers": [{"name": "kube-apiserver", "command": ["kube-apiserver"]}]}});
        let f = issuers(&Ok(Some(bare)), Some(NEW), None);
        assert_eq!(f.status, Status::Skipped);
        assert!(
            f.what.contains("sets no --service-account-issuer"),
            "{}",
            f.what
        );
    }
}
