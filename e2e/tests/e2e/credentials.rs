//! Credentials from the injected env alone: the unmodified AWS CLI, boto3 and an aws-sdk-go-v2 program
//! (sdk-probe) against MinIO's STS, whose endpoint too comes from the injection (`AWS_ENDPOINT_URL_STS`);
//! the programs are given only the S3 endpoint and the region. And the token's audience checked at STS.

use std::sync::Arc;

use anyhow::ensure;
use irsa_e2e::cluster::{AUDIENCE, BUCKET, Cluster};
use irsa_e2e::scenario::*;

pub(crate) async fn aws_cli_gets_credentials_from_the_injected_env_alone(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let PodWithToken { env, root, .. } = pod_with_token(&cluster, "cli").await?;
    ensure!(
        env.iter()
            .any(|(k, v)| k == "AWS_ENDPOINT_URL_STS" && *v == cluster.minio_url),
        "the STS endpoint was not injected: {env:?}"
    );
    let output = run_unmodified(&cluster, "aws", &["s3", "ls"], &env, root.path())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success() && stdout.contains(BUCKET),
        "aws s3 ls failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

pub(crate) async fn boto3_gets_credentials_from_the_injected_env_alone(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let PodWithToken { env, root, .. } = pod_with_token(&cluster, "boto3").await?;
    let script =
        "import boto3; print([b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']])";
    let output = run_unmodified(&cluster, "python", &["-c", script], &env, root.path())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success() && stdout.contains(BUCKET),
        "boto3 list_buckets failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

pub(crate) async fn go_sdk_gets_credentials_from_the_injected_env_alone(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let PodWithToken { env, root, .. } = pod_with_token(&cluster, "go-sdk").await?;
    let output = run_unmodified_at(
        &cluster,
        &cluster.peers.sdk_probe,
        &[BUCKET],
        &env,
        root.path(),
    )?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success() && stdout.contains("source=WebIdentityCredentials"),
        "sdk-probe (aws-sdk-go-v2) failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

pub(crate) async fn token_with_a_wrong_audience_is_refused(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = app_with_minio_role(&cluster, "audience").await?;
    let right = assume_role_at_minio(
        &cluster,
        &cluster.mint_token(&ns, "app", "app", AUDIENCE, 3600)?,
    )?;
    ensure!(
        right.status.success(),
        "the right audience was refused: {}",
        String::from_utf8_lossy(&right.stderr)
    );
    let wrong = assume_role_at_minio(
        &cluster,
        &cluster.mint_token(&ns, "app", "app", "not-sts.example", 3600)?,
    )?;
    ensure!(
        !wrong.status.success(),
        "a token for another audience was accepted"
    );
    Ok(())
}
