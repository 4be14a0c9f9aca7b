//! The mutating webhook as the apiserver calls it: what an annotated pod gets, what is left alone, and the
//! namespace restriction.

use std::sync::Arc;

use anyhow::{Context as _, ensure};
use irsa_e2e::cluster::{AUDIENCE, Cluster};
use irsa_e2e::scenario::*;
use serde_json::json;

use crate::ROLE;

const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

pub(crate) async fn annotated_pod_gets_env_mount_and_projected_volume(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "mutate", json!({})).await?;
    service_account(
        &cluster,
        &ns,
        "app",
        json!({"eks.amazonaws.com/role-arn": ROLE, "eks.amazonaws.com/token-expiration": "3600"}),
    )
    .await?;
    let pod = create_pod(
        &cluster,
        &ns,
        json!({
            "metadata": {"name": "app", "annotations": {"eks.amazonaws.com/skip-containers": "untouched"}},
            "spec": {
                "serviceAccountName": "app",
                "initContainers": [
                    {"name": "init", "image": "registry.example/init:1"},
                    {"name": "sidecar", "image": "registry.example/proxy:1", "restartPolicy": "Always"}
                ],
                "containers": [
                    {"name": "app", "image": "registry.example/app:1", "env": [{"name": "KEEP", "value": "me"}]},
                    {"name": "untouched", "image": "registry.example/other:1"}
                ]
            }
        }),
    )
    .await?;
    for (list, name) in [
        ("containers", "app"),
        ("initContainers", "init"),
        ("initContainers", "sidecar"),
    ] {
        let c = container(&pod, list, name)?;
        ensure!(
            env_of(c, "AWS_ROLE_ARN") == Some(ROLE),
            "{name}: AWS_ROLE_ARN missing: {c}"
        );
        ensure!(
            env_of(c, "AWS_WEB_IDENTITY_TOKEN_FILE") == Some(TOKEN_FILE),
            "{name}: token file env: {c}"
        );
        let mounted = c["volumeMounts"].as_array().into_iter().flatten().any(|m| {
            m["name"] == "aws-iam-token"
                && m["mountPath"] == "/var/run/secrets/eks.amazonaws.com/serviceaccount"
                && m["readOnly"] == true
        });
        ensure!(mounted, "{name}: token volume not mounted: {c}");
    }
    ensure!(
        env_of(container(&pod, "containers", "app")?, "KEEP") == Some("me"),
        "existing env kept"
    );
    ensure!(
        container(&pod, "initContainers", "sidecar")?["restartPolicy"] == "Always",
        "native sidecar kept"
    );
    let untouched = container(&pod, "containers", "untouched")?;
    ensure!(
        env_of(untouched, "AWS_ROLE_ARN").is_none(),
        "skip-containers ignored: {untouched}"
    );
    let volume = token_volume(&pod).context("no aws-iam-token volume")?;
    let source = &volume["projected"]["sources"][0]["serviceAccountToken"];
    ensure!(source["audience"] == AUDIENCE, "audience: {volume}");
    ensure!(
        source["expirationSeconds"] == 3600,
        "expiration from the SA annotation: {volume}"
    );
    ensure!(source["path"] == "token", "path: {volume}");
    Ok(())
}

pub(crate) async fn unannotated_pod_is_untouched(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "plain", json!({})).await?;
    service_account(&cluster, &ns, "plain", json!({"unrelated": "x"})).await?;
    let pod = create_pod(&cluster, &ns, simple_pod("plain", "plain")).await?;
    ensure!(left_alone(&pod)?, "mutated: {pod}");
    Ok(())
}

pub(crate) async fn skip_label_leaves_the_pod_alone(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "skip", json!({})).await?;
    service_account_with_role(&cluster, &ns, "app", ROLE).await?;
    let mut pod = simple_pod("skipped", "app");
    pod["metadata"]["labels"] = json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"});
    let pod = create_pod(&cluster, &ns, pod).await?;
    ensure!(token_volume(&pod).is_none(), "skip label ignored: {pod}");
    Ok(())
}

pub(crate) async fn already_injected_pod_gets_nothing_more(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "again", json!({})).await?;
    service_account_with_role(&cluster, &ns, "app", ROLE).await?;
    // What a first pass produced: a second invocation (reinvocationPolicy IfNeeded) must add nothing.
    let first = create_pod(&cluster, &ns, simple_pod("first", "app")).await?;
    let mut again = simple_pod("again", "app");
    again["spec"]["containers"] = first["spec"]["containers"].clone();
    token_volume(&first).context("first pod not mutated")?;
    again["spec"]["volumes"] = first["spec"]["volumes"].clone();
    let second = create_pod(&cluster, &ns, again).await?;
    let app = container(&second, "containers", "app")?;
    let count = |name: &str| {
        app["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"] == name)
            .count()
    };
    ensure!(
        count("AWS_ROLE_ARN") == 1 && count("AWS_WEB_IDENTITY_TOKEN_FILE") == 1,
        "duplicated env: {app}"
    );
    let volumes = second["spec"]["volumes"].as_array().into_iter().flatten();
    ensure!(
        volumes.filter(|v| v["name"] == "aws-iam-token").count() == 1,
        "duplicated volume: {second}"
    );
    Ok(())
}

pub(crate) async fn service_account_annotated_then_pod_created_at_once_is_mutated(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "race", json!({})).await?;
    // No sleep between the two: the watch is usually behind, and the miss path must answer.
    for i in 0..5 {
        let account = format!("fresh-{i}");
        service_account_with_role(&cluster, &ns, &account, ROLE).await?;
        let pod = create_pod(&cluster, &ns, simple_pod(&format!("fresh-{i}"), &account)).await?;
        let app = container(&pod, "containers", "app")?;
        ensure!(
            env_of(app, "AWS_ROLE_ARN") == Some(ROLE),
            "pod {i} admitted unmutated: {app}"
        );
    }
    Ok(())
}

pub(crate) async fn namespace_restriction_stops_a_forbidden_role(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace(
        &cluster,
        "restricted",
        json!({"iam.amazonaws.com/permitted": "arn:aws:iam::111122223333:role/team-a-.*"}),
    )
    .await?;
    service_account_with_role(
        &cluster,
        &ns,
        "allowed",
        "arn:aws:iam::111122223333:role/team-a-app",
    )
    .await?;
    service_account_with_role(
        &cluster,
        &ns,
        "forbidden",
        "arn:aws:iam::111122223333:role/admin",
    )
    .await?;
    let allowed = create_pod(&cluster, &ns, simple_pod("allowed", "allowed")).await?;
    ensure!(
        token_volume(&allowed).is_some(),
        "a permitted role was not injected: {allowed}"
    );
    let forbidden = create_pod(&cluster, &ns, simple_pod("forbidden", "forbidden")).await?;
    ensure!(
        left_alone(&forbidden)?,
        "forbidden role injected: {forbidden}"
    );
    Ok(())
}
