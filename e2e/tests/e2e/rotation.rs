//! Rotating the service-account signing key: tokens of the old and the new key are both accepted.
//!
//! Disruptive (it restarts kube-apiserver): the runner runs it after every other test.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use irsa_e2e::cluster::{AUDIENCE, Cluster};
use irsa_e2e::scenario::*;
use irsa_testing::wait::{Check, Wait};
use serde_json::Value;

pub(crate) async fn rotation_keeps_old_and_new_tokens_valid(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = app_with_minio_role(&cluster, "rotate").await?;
    let old_token = cluster.mint_token(&ns, "app", "app", AUDIENCE, 3600)?;
    cluster.rotate_signing_key().await?;
    let new_token = cluster.mint_token(&ns, "app", "app", AUDIENCE, 3600)?;
    let kid = |token: &str| -> anyhow::Result<String> {
        use base64::Engine as _;
        let header = token.split('.').next().context("a JWT")?;
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header)?,
        )?;
        Ok(header["kid"].as_str().context("kid")?.to_string())
    };
    ensure!(
        kid(&old_token)? != kid(&new_token)?,
        "the apiserver still signs with the old key"
    );
    // The issuer re-reads its key file; wait until it publishes both kids.
    let http = cluster.http()?;
    let url = format!("{}/openid/v1/jwks", cluster.issuer_url);
    let (old_kid, new_kid) = (kid(&old_token)?, kid(&new_token)?);
    Wait::up_to(Duration::from_secs(20))
        .every(Duration::from_millis(300))
        .try_until("the issuer publishes both keys", || async {
            let kids = jwks_kids(&http, &url, None).await?;
            anyhow::Ok(Check::ready_if(
                kids.contains(&old_kid) && kids.contains(&new_kid),
                || format!("{kids:?}"),
            ))
        })
        .await?;
    for (which, token) in [("old", &old_token), ("new", &new_token)] {
        let output = assume_role_at_minio(&cluster, token)?;
        ensure!(
            output.status.success(),
            "{which} token refused after rotation: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
