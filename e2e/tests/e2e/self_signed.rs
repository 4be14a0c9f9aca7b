//! The webhook's self-signed mode: it patches its caBundle, is called through it, renews its leaf and replaces
//! its CA while running, and drains on SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use irsa_e2e::cluster::Cluster;
use irsa_e2e::scenario::*;
use irsa_testing::wait::{Check, Wait};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use serde_json::json;

use crate::ROLE;

pub(crate) async fn self_signed_mode_patches_its_ca_bundle_and_is_called(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Secret;
    let ns = namespace(&cluster, "selfsigned", json!({})).await?;
    let client = cluster.client().await?;
    kube::Api::<Namespace>::all(client.clone())
        .patch(
            &ns,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"labels": {"irsa-e2e/self-signed": "yes"}}}),
            ),
        )
        .await?;
    let (port, admin_port) = (
        irsa_e2e::process::free_port(),
        irsa_e2e::process::free_port(),
    );
    let configuration_name = format!("irsa-self-signed-{ns}");
    // Registered without a caBundle: only the self-signed webhook can make the apiserver trust it.
    let configuration: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": configuration_name},
        "webhooks": [{
            "name": "pod-identity.self-signed.irsa.dev",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate")},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": 3,
            "namespaceSelector": {"matchLabels": {"irsa-e2e/self-signed": "yes"}},
        }],
    }))?;
    let configurations: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(client.clone());
    configurations
        .create(&PostParams::default(), &configuration)
        .await?;
    let tls_dir = cluster.dir.join(format!("self-signed-{ns}"));
    let s = |v: &str| v.to_string();
    cluster.start_irsa(
        "webhook-self-signed",
        &[
            s("webhook"),
            s("serve"),
            s("--self-signed"),
            format!("--kubeconfig={}", cluster.kubeconfig.display()),
            format!("--self-signed-namespace={ns}"),
            s("--self-signed-secret=irsa-webhook-tls"),
            format!("--webhook-configuration={configuration_name}"),
            s("--self-signed-extra-san=127.0.0.1"),
            format!("--self-signed-dir={}", tls_dir.display()),
            // Re-checked every second here (every minute by default), so the renewals below are seen quickly.
            s("--self-signed-check-interval=1s"),
            format!("--listen=127.0.0.1:{port}"),
            format!("--admin-listen=127.0.0.1:{admin_port}"),
        ],
    )?;
    cluster
        .wait_ready(
            "webhook-self-signed",
            &format!("http://127.0.0.1:{admin_port}/readyz"),
        )
        .await?;

    let secret = kube::Api::<Secret>::namespaced(client.clone(), &ns)
        .get("irsa-webhook-tls")
        .await?;
    let ca = secret
        .data
        .as_ref()
        .and_then(|d| d.get("ca.crt"))
        .context("the Secret has no ca.crt")?
        .0
        .clone();
    let patched = configurations.get(&configuration_name).await?;
    let bundle = patched
        .webhooks
        .as_ref()
        .and_then(|w| w[0].client_config.ca_bundle.clone())
        .context("no caBundle")?;
    ensure!(bundle.0 == ca, "the caBundle is not the Secret's CA");

    service_account_with_role(&cluster, &ns, "app", ROLE).await?;
    let pod = create_pod(&cluster, &ns, simple_pod("app", "app")).await?;
    ensure!(token_volume(&pod).is_some(), "pod not mutated: {pod}");
    // failurePolicy Fail: the pod exists only because the apiserver reached the webhook with that caBundle.
    let metrics = cluster
        .metrics(&format!("http://127.0.0.1:{admin_port}"))
        .await?;
    let called = metrics.lines().any(|l| {
        l.starts_with("irsa_webhook_admissions_total{outcome=\"")
            && !l.ends_with(" 0")
            && !l.contains("invalid-request")
    });
    ensure!(
        called,
        "the self-signed webhook counted no admission:\n{metrics}"
    );

    renews_while_running(&cluster, &ns, port, admin_port).await?;
    a_new_ca_keeps_the_previous_one_trusted(&cluster, &ns, port, &configuration_name).await?;

    // SIGTERM drains and exits on its own, well within the drain timeout.
    let pid = cluster
        .pid_of("webhook-self-signed")
        .context("the self-signed webhook's PID")?;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let proc_entry = format!("/proc/{pid}");
    Wait::up_to(Duration::from_secs(10))
        .every(Duration::from_millis(100))
        .until("the webhook exits on SIGTERM", || async {
            Check::ready_if(!Path::new(&proc_entry).exists(), || {
                format!("{proc_entry} still there")
            })
        })
        .await?;
    let log = std::fs::read_to_string(cluster.dir.join("logs/webhook-self-signed.log"))?;
    ensure!(
        log.contains("drained; exiting"),
        "no graceful drain in the log:\n{log}"
    );
    Ok(())
}

/// The self-signed webhook (serving on `port`, Secret `irsa-webhook-tls` in `ns`) renews its certificate while
/// running: its leaf is replaced by one in its last 30 days, signed by the same CA, as if eleven months had
/// passed; within a few check intervals the webhook has renewed the Secret, serves the new leaf without a
/// restart, reports the new expiry in its metrics, and the apiserver (same CA, same caBundle) still calls it.
async fn renews_while_running(
    cluster: &Cluster,
    ns: &str,
    port: u16,
    admin_port: u16,
) -> anyhow::Result<()> {
    use irsa_webhook::self_signed::{Material, renew_leaf, san_list};
    use k8s_openapi::api::core::v1::Secret;
    use std::time::SystemTime;

    let secrets = kube::Api::<Secret>::namespaced(cluster.client().await?, ns);
    let mut secret = secrets.get("irsa-webhook-tls").await?;
    let first = Material::from_secret(&secret);
    ensure!(
        served_leaf(port)? == first_pem(&first.tls_crt),
        "the webhook does not serve the Secret's certificate"
    );
    let sans = san_list("irsa-webhook", ns, &["127.0.0.1".to_string()])?;
    let eleven_months_ago = SystemTime::now() - Duration::from_secs(340 * 24 * 3600);
    let aged = renew_leaf(
        first.ca_crt.clone(),
        first.ca_key.clone(),
        &sans,
        eleven_months_ago,
    )?;
    // Same CA: only the leaf and its key differ from what the Secret held.
    secret.data = Some(aged.secret_data());
    secrets
        .replace("irsa-webhook-tls", &PostParams::default(), &secret)
        .await?;

    let renewed = Wait::up_to(Duration::from_secs(30))
        .every(Duration::from_millis(250))
        .try_until(
            "the webhook renews the aged certificate in the Secret and serves the renewal",
            || async {
                let now = Material::from_secret(&secrets.get("irsa-webhook-tls").await?);
                let renewed = now.tls_crt != aged.tls_crt && now.tls_crt != first.tls_crt;
                if renewed && served_leaf(port)? == first_pem(&now.tls_crt) {
                    return anyhow::Ok(Check::Ready(now));
                }
                Ok(Check::NotYet(format!("Secret renewed: {renewed}")))
            },
        )
        .await?;
    ensure!(
        renewed.ca_crt == first.ca_crt,
        "the renewal replaced the CA"
    );
    // The served leaf is a fresh one-year certificate, and the metric says so (the aged one had < 30 days).
    let metrics = cluster
        .metrics(&format!("http://127.0.0.1:{admin_port}"))
        .await?;
    let expiry: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("irsa_webhook_serving_certificate_expiry_timestamp_seconds "))
        .context("no serving-certificate expiry metric")?
        .parse()?;
    let in_300_days = SystemTime::now() + Duration::from_secs(300 * 24 * 3600);
    ensure!(
        expiry
            > in_300_days
                .duration_since(SystemTime::UNIX_EPOCH)?
                .as_secs(),
        "the expiry metric ({expiry}) is not the renewed certificate's"
    );

    let pod = create_pod(cluster, ns, simple_pod("after-renewal", "app")).await?;
    ensure!(
        token_volume(&pod).is_some(),
        "pod created after the renewal not mutated: {pod}"
    );
    Ok(())
}

/// The Secret is deleted while the self-signed webhook runs: within a few check intervals it has made a new CA,
/// serves a leaf of it, and the caBundle holds the new CA first and the previous one after it (so that another
/// replica still serving the previous CA's leaf stays verifiable until it adopts the new one); pods are still
/// mutated through the apiserver.
async fn a_new_ca_keeps_the_previous_one_trusted(
    cluster: &Cluster,
    ns: &str,
    port: u16,
    configuration_name: &str,
) -> anyhow::Result<()> {
    use irsa_webhook::self_signed::Material;
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Secret;

    let client = cluster.client().await?;
    let secrets = kube::Api::<Secret>::namespaced(client.clone(), ns);
    let previous = Material::from_secret(&secrets.get("irsa-webhook-tls").await?);
    secrets
        .delete("irsa-webhook-tls", &Default::default())
        .await?;

    let configurations: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(client);
    Wait::up_to(Duration::from_secs(30))
        .every(Duration::from_millis(250))
        .try_until(
            "after the Secret's deletion the webhook serves a new CA's leaf, the caBundle holding the new CA \
             then the previous one",
            || async {
                let current = secrets
                    .get_opt("irsa-webhook-tls")
                    .await?
                    .map(|secret| Material::from_secret(&secret));
                let bundle = configurations
                    .get(configuration_name)
                    .await?
                    .webhooks
                    .and_then(|w| w[0].client_config.ca_bundle.clone())
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .unwrap_or_default();
                if let Some(current) = current.filter(|c| c.ca_crt != previous.ca_crt) {
                    let expected = [first_pem(&current.ca_crt), first_pem(&previous.ca_crt)];
                    let served = served_leaf(port)? == first_pem(&current.tls_crt);
                    if served && pem_blocks(&bundle) == expected {
                        return anyhow::Ok(Check::Ready(()));
                    }
                }
                Ok(Check::NotYet(format!("bundle now:\n{bundle}")))
            },
        )
        .await?;
    let pod = create_pod(cluster, ns, simple_pod("after-new-ca", "app")).await?;
    ensure!(
        token_volume(&pod).is_some(),
        "pod created after the new CA not mutated: {pod}"
    );
    Ok(())
}

/// The PEM certificate blocks in `text`, each from its BEGIN line to its END line.
fn pem_blocks(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    text.split_inclusive(END)
        .filter_map(|part| Some(part[part.find(BEGIN)?..].to_string()))
        .filter(|block| block.ends_with(END))
        .collect()
}

/// The first PEM certificate block in `text` (empty when there is none).
fn first_pem(text: &str) -> String {
    pem_blocks(text).into_iter().next().unwrap_or_default()
}

/// The leaf certificate the server on 127.0.0.1:`port` presents, as PEM (read by `openssl s_client` on a fresh
/// connection: the server re-reads its files per connection).
fn served_leaf(port: u16) -> anyhow::Result<String> {
    let output = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .context("running openssl s_client")?;
    let leaf = first_pem(&String::from_utf8_lossy(&output.stdout));
    ensure!(!leaf.is_empty(), "openssl s_client printed no certificate");
    Ok(leaf)
}
