//! irsa installed as the README says (`kubectl apply -k`), through the test overlay: from its image, as its
//! own ServiceAccounts, with the shipped RBAC and probes.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context as _, ensure};
use irsa_e2e::cluster::Cluster;
use irsa_e2e::node::pods::IRSA_NAMESPACE;
use serde_json::Value;

/// The image every irsa pod must run: the manifests' own name, which `make image` builds.
const IMAGE: &str = "ghcr.io/irsa-rs/irsa:0.1.0";

fn pods_of(cluster: &Cluster, component: &str) -> anyhow::Result<Vec<Value>> {
    let list: Value = serde_json::from_str(&cluster.kubectl(&[
        "get",
        "pods",
        "-n",
        IRSA_NAMESPACE,
        "-l",
        &format!("app.kubernetes.io/component={component}"),
        "-o",
        "json",
    ])?)?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// Both Deployments run the image's binary as uid 65532, as their own ServiceAccounts, Ready through
/// `/readyz`; the webhook's caBundle was written by the webhook itself (self-signed mode).
pub async fn irsa_runs_from_its_image_as_its_own_service_accounts(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    for (component, account) in [("webhook", "irsa-webhook"), ("issuer", "irsa-issuer")] {
        let pods = pods_of(&cluster, component)?;
        ensure!(
            pods.len() == 2,
            "{component}: {} pods, expected 2",
            pods.len()
        );
        for pod in &pods {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            ensure!(
                pod["spec"]["serviceAccountName"] == account,
                "{name}: runs as {}",
                pod["spec"]["serviceAccountName"]
            );
            ensure!(
                pod["spec"]["securityContext"]["runAsUser"] == 65532,
                "{name}: not uid 65532"
            );
            let container = &pod["spec"]["containers"][0];
            ensure!(
                container["image"] == IMAGE,
                "{name}: image {}",
                container["image"]
            );
            ensure!(
                container["readinessProbe"]["httpGet"]["path"] == "/readyz",
                "{name}: readiness probe"
            );
            let status = &pod["status"]["containerStatuses"][0];
            ensure!(status["ready"] == true, "{name}: not ready: {status}");
            ensure!(
                status["restartCount"] == 0,
                "{name}: restarted {} times",
                status["restartCount"]
            );
            eprintln!(
                "  {name}: {} ({}), ServiceAccount {account}, uid 65532, ready",
                status["image"].as_str().unwrap_or_default(),
                status["imageID"].as_str().unwrap_or_default()
            );
        }
    }
    let ca_bundle = cluster.kubectl(&[
        "get",
        "mutatingwebhookconfiguration",
        "irsa",
        "-o",
        "jsonpath={.webhooks[0].clientConfig.caBundle}",
    ])?;
    ensure!(
        !ca_bundle.is_empty(),
        "the self-signed webhook did not write its caBundle"
    );
    Ok(())
}

/// What `kubectl auth can-i --list` grants a ServiceAccount in `ns`, minus what every authenticated user has
/// (discovery, self reviews): `resource/name verb` lines.
fn granted(cluster: &Cluster, account: &str, ns: &str) -> anyhow::Result<BTreeSet<String>> {
    let table = cluster.kubectl(&[
        "auth",
        "can-i",
        "--list",
        "-n",
        ns,
        &format!("--as=system:serviceaccount:{IRSA_NAMESPACE}:{account}"),
    ])?;
    let mut granted = BTreeSet::new();
    for line in table.lines().skip(1) {
        // Resources   Non-Resource URLs   Resource Names   Verbs
        let columns: Vec<&str> = line
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let [resource, non_resource, names, verbs] = columns[..] else {
            continue;
        };
        if resource.starts_with("selfsubject") || non_resource != "[]" {
            continue;
        }
        let names = names.trim_matches(['[', ']']);
        for verb in verbs.trim_matches(['[', ']']).split_whitespace() {
            let object = if names.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}/{names}")
            };
            granted.insert(format!("{object} {verb}"));
        }
    }
    Ok(granted)
}

fn can_i(cluster: &Cluster, account: &str, args: &[&str]) -> bool {
    let who = format!("--as=system:serviceaccount:{IRSA_NAMESPACE}:{account}");
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    all.push(&who);
    cluster
        .kubectl(&all)
        .is_ok_and(|answer| answer.trim() == "yes")
}

/// The webhook may read ServiceAccounts and Namespaces everywhere, patch only its own
/// MutatingWebhookConfiguration and write only its own Secret; the issuer may read only the apiserver's
/// JWKS and discovery document. Nothing else.
pub async fn rbac_is_exactly_what_the_manifests_grant(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let expected_cluster_wide: BTreeSet<String> = [
        "namespaces get",
        "namespaces list",
        "namespaces watch",
        "serviceaccounts get",
        "serviceaccounts list",
        "serviceaccounts watch",
        "mutatingwebhookconfigurations.admissionregistration.k8s.io/irsa get",
        "mutatingwebhookconfigurations.admissionregistration.k8s.io/irsa patch",
    ]
    .map(String::from)
    .into();
    let in_default = granted(&cluster, "irsa-webhook", "default")?;
    ensure!(
        in_default == expected_cluster_wide,
        "the webhook's grants outside its namespace differ:\n  got      {in_default:?}\n  expected {expected_cluster_wide:?}"
    );
    let mut expected_home = expected_cluster_wide.clone();
    expected_home.extend(
        [
            "secrets/irsa-webhook-tls get",
            "secrets/irsa-webhook-tls update",
            "secrets create",
        ]
        .map(String::from),
    );
    let at_home = granted(&cluster, "irsa-webhook", IRSA_NAMESPACE)?;
    ensure!(
        at_home == expected_home,
        "the webhook's grants in {IRSA_NAMESPACE} differ:\n  got      {at_home:?}\n  expected {expected_home:?}"
    );
    for (args, allowed) in [
        (vec!["list", "serviceaccounts", "-A"], true),
        (vec!["watch", "namespaces"], true),
        (vec!["patch", "mutatingwebhookconfigurations/irsa"], true),
        (
            vec!["patch", "mutatingwebhookconfigurations/another"],
            false,
        ),
        (
            vec!["update", "secrets/irsa-webhook-tls", "-n", IRSA_NAMESPACE],
            true,
        ),
        (vec!["get", "secrets/another", "-n", IRSA_NAMESPACE], false),
        (vec!["get", "secrets", "-n", "default"], false),
        (vec!["create", "pods", "-n", "default"], false),
        (
            vec!["create", "serviceaccounts/token", "-n", "default"],
            false,
        ),
    ] {
        let answer = can_i(&cluster, "irsa-webhook", &args);
        ensure!(
            answer == allowed,
            "irsa-webhook can-i {}: {answer}, expected {allowed}",
            args.join(" ")
        );
    }
    let issuer = granted(&cluster, "irsa-issuer", IRSA_NAMESPACE)?;
    ensure!(
        issuer.is_empty(),
        "the issuer may touch API objects: {issuer:?}"
    );
    ensure!(
        can_i(&cluster, "irsa-issuer", &["get", "/openid/v1/jwks"]),
        "the issuer cannot read the JWKS"
    );
    for (args, what) in [
        (vec!["get", "/metrics"], "/metrics"),
        (vec!["list", "serviceaccounts", "-A"], "ServiceAccounts"),
        (vec!["get", "secrets", "-n", IRSA_NAMESPACE], "Secrets"),
    ] {
        ensure!(
            !can_i(&cluster, "irsa-issuer", &args),
            "the issuer may read {what}"
        );
    }
    Ok(())
}

/// The issuer pods (`--from-apiserver`) serve, at their pod IPs, the very keys the apiserver signs with.
pub async fn issuer_in_the_cluster_republishes_the_apiservers_keys(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let apiserver: Value =
        serde_json::from_str(&cluster.kubectl(&["get", "--raw", "/openid/v1/jwks"])?)?;
    let http = cluster.http()?;
    for pod in pods_of(&cluster, "issuer")? {
        let ip = pod["status"]["podIP"].as_str().context("a pod IP")?;
        let served: Value = http
            .get(format!("http://{ip}:8080/openid/v1/jwks"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ensure!(
            served["keys"] == apiserver["keys"],
            "issuer pod {ip} serves {served}, the apiserver {apiserver}"
        );
        let discovery: Value = http
            .get(format!("http://{ip}:8080/.well-known/openid-configuration"))
            .send()
            .await?
            .json()
            .await?;
        ensure!(
            discovery["issuer"] == cluster.issuer_url,
            "issuer pod {ip}: discovery {discovery}"
        );
    }
    Ok(())
}
