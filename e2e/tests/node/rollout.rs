//! The webhook Deployment under change while pods are created: a rollout, a replica killed, both gone.
//!
//! The pods created here carry a scheduling gate: they are admitted (mutated) and stored like any pod, but
//! never scheduled, so hundreds of them cost the node nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use irsa_e2e::cluster::Cluster;
use irsa_e2e::scenario;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use irsa_e2e::node::install::wait_mutating;
use irsa_e2e::node::pods::{IRSA_NAMESPACE, namespace_with_app, rollout_status};

/// Creates gated pods of ServiceAccount `app` in `ns` one after another until `stop` is set; returns how many
/// were created and the errors of those the apiserver refused.
async fn create_pods_until(
    cluster: Arc<Cluster>,
    ns: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(usize, Vec<String>)> {
    let api: Api<Pod> = Api::namespaced(cluster.client().await?, &ns);
    let (mut created, mut refused) = (0, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"generateName": "loop-"},
            "spec": {
                "serviceAccountName": "app",
                "schedulingGates": [{"name": "irsa.test/never"}],
                "containers": [{"name": "app", "image": "local/irsa-sdk-probe:1"}],
            },
        }))?;
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => created += 1,
            Err(err) => refused.push(format!("{err}")),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((created, refused))
}

/// The stored pods of `ns` that the webhook did not mutate (no role, no token volume), by name.
async fn unmutated(cluster: &Cluster, ns: &str) -> anyhow::Result<(usize, Vec<String>)> {
    let api: Api<Pod> = Api::namespaced(cluster.client().await?, ns);
    let pods = api.list(&ListParams::default()).await?;
    let mut missed = Vec::new();
    for pod in &pods.items {
        let pod = serde_json::to_value(pod)?;
        if scenario::left_alone(&pod)? {
            missed.push(
                pod["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    Ok((pods.items.len(), missed))
}

/// Runs `change` while pods are created in a loop; returns (created, refused, unmutated names).
async fn while_creating<F, Fut>(
    cluster: &Arc<Cluster>,
    prefix: &str,
    change: F,
) -> anyhow::Result<(usize, Vec<String>, Vec<String>)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let ns = namespace_with_app(cluster, prefix, json!({})).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let creating = tokio::spawn(create_pods_until(cluster.clone(), ns.clone(), stop.clone()));
    // Some pods before the change, some during, some after.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changed = change().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (created, refused) = creating.await.context("the creating task")??;
    changed?;
    let (stored, missed) = unmutated(cluster, &ns).await?;
    ensure!(stored == created, "{created} pods created, {stored} stored");
    Ok((created, refused, missed))
}

/// `kubectl rollout restart` of the webhook while pods are created: maxUnavailable 0, readiness on the cache
/// sync and a draining SIGTERM mean every pod created meanwhile is mutated, none refused.
pub async fn rollout_restart_under_pod_creation_mutates_every_pod(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let before = webhook_pod_names(&cluster)?;
    let (created, refused, missed) = while_creating(&cluster, "rollout", || async {
        cluster.kubectl(&[
            "rollout",
            "restart",
            "deployment/irsa-webhook",
            "-n",
            IRSA_NAMESPACE,
        ])?;
        rollout_status(&cluster, IRSA_NAMESPACE, "irsa-webhook")?;
        // The rollout is "complete" once the new pods are available; the old ones are still terminating
        // (shutdown delay, drain). Go on creating pods until they are gone, so their last moments are covered.
        let mut args = vec![
            "wait",
            "--for=delete",
            "-n",
            IRSA_NAMESPACE,
            "--timeout=60s",
        ];
        let pods: Vec<String> = before.iter().map(|name| format!("pod/{name}")).collect();
        args.extend(pods.iter().map(String::as_str));
        cluster.kubectl(&args).map(drop)
    })
    .await?;
    ensure!(
        refused.is_empty(),
        "{} pod creations refused: {refused:?}",
        refused.len()
    );
    ensure!(
        missed.is_empty(),
        "{} of {created} pods admitted without credentials: {missed:?}",
        missed.len()
    );
    ensure!(
        created >= 20,
        "only {created} pods created during the rollout"
    );
    eprintln!(
        "  rollout restart: {created} pods created in {:.1} s, every one mutated",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn webhook_pod_names(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    Ok(cluster
        .kubectl(&[
            "get",
            "pods",
            "-n",
            IRSA_NAMESPACE,
            "-l",
            "app.kubernetes.io/component=webhook",
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])?
        .split_whitespace()
        .map(String::from)
        .collect())
}

/// One replica deleted (SIGTERM, as a node drain or an eviction does) while pods are created: the other
/// replica serves, every pod is mutated, and the Deployment brings the second back.
pub async fn one_webhook_pod_killed_the_other_serves(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let names = webhook_pod_names(&cluster)?;
    ensure!(names.len() == 2, "webhook pods: {names:?}");
    let victim = names[0].clone();
    let (created, refused, missed) = while_creating(&cluster, "kill", || async {
        cluster.kubectl(&[
            "delete",
            "pod",
            &victim,
            "-n",
            IRSA_NAMESPACE,
            "--wait=true",
        ])?;
        rollout_status(&cluster, IRSA_NAMESPACE, "irsa-webhook")
    })
    .await?;
    ensure!(
        refused.is_empty(),
        "{} pod creations refused: {refused:?}",
        refused.len()
    );
    ensure!(
        missed.is_empty(),
        "{} of {created} pods admitted without credentials: {missed:?}",
        missed.len()
    );
    eprintln!("  {victim} deleted: {created} pods created meanwhile, every one mutated");
    Ok(())
}

/// The documented `failurePolicy: Ignore`: with no webhook replica at all, pods are still created (the
/// cluster keeps working, the webhook's own replacement pods included) but without credentials; once a
/// replica is back, pods are mutated again.
pub async fn both_webhook_pods_gone_pods_start_without_credentials(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    cluster.kubectl(&[
        "scale",
        "deployment/irsa-webhook",
        "-n",
        IRSA_NAMESPACE,
        "--replicas=0",
    ])?;
    cluster.kubectl(&[
        "wait",
        "--for=delete",
        "pod",
        "-l",
        "app.kubernetes.io/component=webhook",
        "-n",
        IRSA_NAMESPACE,
        "--timeout=60s",
    ])?;
    let ns = namespace_with_app(&cluster, "gone", json!({})).await?;
    let started = Instant::now();
    let pod = scenario::create_pod(&cluster, &ns, scenario::simple_pod("unprotected", "app")).await;
    let took = started.elapsed();
    // Back to two replicas before judging, so that a failure here leaves the webhook for the tests after.
    cluster.kubectl(&[
        "scale",
        "deployment/irsa-webhook",
        "-n",
        IRSA_NAMESPACE,
        "--replicas=2",
    ])?;
    rollout_status(&cluster, IRSA_NAMESPACE, "irsa-webhook")?;
    wait_mutating(&cluster).await?;
    let pod =
        pod.context("with the webhook down, the pod was refused (failurePolicy is Ignore)")?;
    ensure!(
        scenario::left_alone(&pod)?,
        "a pod was mutated with no webhook running: {pod}"
    );
    eprintln!(
        "  no replica: pod created in {:.2} s without credentials (failurePolicy: Ignore); replicas back, pods mutated again",
        took.as_secs_f64()
    );
    Ok(())
}
