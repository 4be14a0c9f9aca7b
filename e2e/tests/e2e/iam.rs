//! The IAM commands against moto: `associate-oidc-provider` and `create-role`, idempotent, with the result
//! seen by IAM and by the apiserver.

use std::sync::Arc;

use anyhow::{Context as _, bail, ensure};
use irsa_e2e::cluster::{AUDIENCE, Cluster};
use irsa_e2e::scenario::*;
use serde_json::{Value, json};

/// Runs `irsa` with AWS pointed at moto; returns stdout, or an error with stderr.
fn irsa_against_moto(cluster: &Cluster, args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new(&cluster.peers.irsa)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &cluster.dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &cluster.moto_url)
        .output()?;
    if !output.status.success() {
        bail!(
            "irsa {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

pub(crate) async fn associate_oidc_provider_and_create_role_against_moto(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    use sha1_smol::Sha1;
    let ca_file = cluster.dir.join("ca.crt").display().to_string();
    let associate = [
        "associate-oidc-provider",
        "--issuer-url",
        &cluster.issuer_url,
        "--ca-file",
        &ca_file,
        "--output",
        "json",
    ];
    let first: Value = serde_json::from_str(&irsa_against_moto(&cluster, &associate)?)?;
    ensure!(
        first["applied"] == true && first["provider"]["changes"] == true,
        "first run created nothing: {first}"
    );
    let second: Value = serde_json::from_str(&irsa_against_moto(&cluster, &associate)?)?;
    ensure!(
        second["provider"]["changes"] == false && second["applied"] == false,
        "second run changed something: {second}"
    );
    // The thumbprint is the SHA-1 of the last certificate the issuer presents: our CA.
    let expected = Sha1::from(cluster.ca.der()).digest().to_string();
    let thumbprints = &second["provider"]["existing"]["thumbprints"];
    ensure!(
        thumbprints
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == expected.as_str())),
        "thumbprints {thumbprints} lack the CA's {expected}"
    );

    let ns = namespace(&cluster, "iam", json!({})).await?;
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let create_role = [
        "create-role",
        "--issuer-url",
        &cluster.issuer_url,
        "--namespace",
        &ns,
        "--service-account",
        "app",
        "--role-name",
        "e2e-app",
        "--annotate-service-account",
        "--kubeconfig",
        &kubeconfig,
        "--output",
        "json",
    ];
    let created: Value = serde_json::from_str(&irsa_against_moto(&cluster, &create_role)?)?;
    ensure!(
        created["applied"] == true,
        "create-role applied nothing: {created}"
    );
    let again: Value = serde_json::from_str(&irsa_against_moto(&cluster, &create_role)?)?;
    ensure!(
        again["role"]["changes"] == false,
        "second create-role changed something: {again}"
    );

    // The trust policy as IAM stores it.
    let role = std::process::Command::new(cluster.peers.venv_bin("aws"))
        .args([
            "iam",
            "get-role",
            "--role-name",
            "e2e-app",
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &cluster.moto_url)
        .output()?;
    let role: Value = serde_json::from_slice(&role.stdout).with_context(|| {
        format!(
            "aws iam get-role: {}",
            String::from_utf8_lossy(&role.stderr)
        )
    })?;
    let statement = &role["Role"]["AssumeRolePolicyDocument"]["Statement"][0];
    let host = cluster.issuer_url.trim_start_matches("https://");
    let condition = &statement["Condition"]["StringEquals"];
    ensure!(
        statement["Action"] == "sts:AssumeRoleWithWebIdentity"
            && statement["Principal"]["Federated"]
                == format!("arn:aws:iam::123456789012:oidc-provider/{host}").as_str()
            && condition[format!("{host}:sub")]
                == format!("system:serviceaccount:{ns}:app").as_str()
            && condition[format!("{host}:aud")] == AUDIENCE,
        "trust policy: {statement}"
    );

    // The annotated ServiceAccount in the real apiserver, and a pod of it mutated with that role.
    let role_arn = role["Role"]["Arn"]
        .as_str()
        .context("role ARN")?
        .to_string();
    let sa: Value = serde_json::from_str(&cluster.kubectl(&[
        "get",
        "serviceaccount",
        "app",
        "-n",
        &ns,
        "-o",
        "json",
    ])?)?;
    ensure!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role_arn.as_str(),
        "SA not annotated: {sa}"
    );
    let pod = create_pod(&cluster, &ns, simple_pod("app", "app")).await?;
    ensure!(
        env_of(container(&pod, "containers", "app")?, "AWS_ROLE_ARN") == Some(role_arn.as_str()),
        "pod: {pod}"
    );
    Ok(())
}
