//! irsa installed on the node as the README says: `kubectl apply -k` of the shipped overlay through the test
//! overlay `e2e/manifests/node`, which changes only what this machine forces.

use std::time::Duration;

use irsa_testing::wait::{Check, Wait};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::node::pods::{IRSA_NAMESPACE, namespace_with_app, rollout_status};
use crate::peers::workspace_root;
use crate::scenario;

/// `kubectl apply -k e2e/manifests/node`, then waits until both Deployments have rolled out and the webhook
/// mutates a pod (server-side dry run): the self-signed mode has written its caBundle and the apiserver calls
/// a Ready replica.
pub async fn kustomize_install(cluster: &Cluster) -> anyhow::Result<()> {
    let overlay = workspace_root().join("e2e/manifests/node");
    eprintln!("[node] kubectl apply -k {}", overlay.display());
    cluster.kubectl(&["apply", "-k", &overlay.display().to_string()])?;
    for deployment in ["irsa-webhook", "irsa-issuer"] {
        rollout_status(cluster, IRSA_NAMESPACE, deployment)?;
    }
    wait_mutating(cluster).await
}

/// Waits until a server-side dry-run pod of an annotated ServiceAccount comes back mutated.
pub async fn wait_mutating(cluster: &Cluster) -> anyhow::Result<()> {
    let ns = namespace_with_app(cluster, "install", json!({})).await?;
    let mut pod = scenario::simple_pod("dry", "app");
    pod["apiVersion"] = json!("v1");
    pod["kind"] = json!("Pod");
    let pod = serde_json::to_string(&pod)?;
    Wait::up_to(Duration::from_secs(60))
        .every(Duration::from_millis(500))
        .try_until("the installed webhook mutates a pod", || async {
            let created = cluster.kubectl_stdin(
                &[
                    "create",
                    "-n",
                    &ns,
                    "--dry-run=server",
                    "-o",
                    "json",
                    "-f",
                    "-",
                ],
                Some(&pod),
            )?;
            let created: Value = serde_json::from_str(&created)?;
            Ok::<_, anyhow::Error>(Check::ready_if(
                scenario::token_volume(&created).is_some(),
                || "pod not mutated yet".into(),
            ))
        })
        .await
}
