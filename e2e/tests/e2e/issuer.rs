//! The OIDC issuer: the keys it serves are the apiserver's, and `issuer publish` writes what it serves.

use std::sync::Arc;

use anyhow::{Context as _, ensure};
use irsa_e2e::cluster::{BUCKET, Cluster};
use irsa_e2e::scenario::*;
use serde_json::Value;

pub(crate) async fn issuer_kids_equal_the_apiservers(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let http = cluster.http()?;
    let ours = jwks_kids(
        &http,
        &format!("{}/openid/v1/jwks", cluster.issuer_url),
        None,
    )
    .await?;
    let token = std::fs::read_to_string(cluster.dir.join("tokens.csv"))?;
    let token = token.split(',').next().unwrap_or_default().to_string();
    let theirs = jwks_kids(
        &http,
        &format!("{}/openid/v1/jwks", cluster.apiserver_url),
        Some(&token),
    )
    .await?;
    ensure!(
        !ours.is_empty() && ours == theirs,
        "issuer kids {ours:?} != apiserver kids {theirs:?}"
    );
    let discovery = issuer_document(&cluster, "/.well-known/openid-configuration").await?;
    ensure!(
        discovery["issuer"] == cluster.issuer_url.as_str(),
        "discovery issuer: {discovery}"
    );
    Ok(())
}

pub(crate) async fn issuer_publish_to_s3_matches_the_live_issuer(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let keys = cluster.issuer_keys.display().to_string();
    let publish = cluster.as_minio_root(
        &cluster.peers.irsa,
        &[
            "issuer",
            "publish",
            "--issuer-url",
            &cluster.issuer_url,
            "--public-key-file",
            &keys,
            "--s3-uri",
            &format!("s3://{BUCKET}/oidc"),
        ],
    )?;
    ensure!(
        publish.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let aws = cluster.peers.venv_bin("aws");
    for (key, content_type, live) in [
        (
            "oidc/.well-known/openid-configuration",
            "application/json",
            "/.well-known/openid-configuration",
        ),
        (
            "oidc/openid/v1/jwks",
            "application/jwk-set+json",
            "/openid/v1/jwks",
        ),
    ] {
        let head = cluster.as_minio_root(
            &aws,
            &["s3api", "head-object", "--bucket", BUCKET, "--key", key],
        )?;
        let head: Value = serde_json::from_slice(&head.stdout).with_context(|| {
            format!(
                "head-object {key}: {}",
                String::from_utf8_lossy(&head.stderr)
            )
        })?;
        ensure!(head["ContentType"] == content_type, "{key}: {head}");
        ensure!(
            head["CacheControl"]
                .as_str()
                .is_some_and(|c| c.contains("max-age")),
            "{key}: {head}"
        );
        let file = cluster.dir.join("published.json");
        let file_arg = file.display().to_string();
        let get = cluster.as_minio_root(
            &aws,
            &[
                "s3api",
                "get-object",
                "--bucket",
                BUCKET,
                "--key",
                key,
                &file_arg,
            ],
        )?;
        ensure!(
            get.status.success(),
            "get-object {key}: {}",
            String::from_utf8_lossy(&get.stderr)
        );
        let published: Value = serde_json::from_slice(&std::fs::read(&file)?)?;
        let served = issuer_document(&cluster, live).await?;
        ensure!(
            published == served,
            "{key} differs from the live issuer:\n{published}\n{served}"
        );
    }
    Ok(())
}
