//! What the cluster sees of the signer: tokens it signs that MinIO's STS accepts, a rotation while a token is
//! in use (no apiserver restart, no key copied: the issuer's JWKS follows the signer), the signer down
//! (TokenRequest refused, the issuer keeps serving its last key set) and back (the apiserver recovers).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use irsa_e2e::cluster::{AUDIENCE, Cluster};
use irsa_e2e::scenario;
use irsa_testing::wait::{Check, Wait};
use serde_json::{Value, json};

use crate::the_signer;

/// The `kid` of a JWT's header.
fn kid_in(token: &str) -> anyhow::Result<String> {
    let header = token.split('.').next().context("a JWT")?;
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header)?)?;
    Ok(header["kid"].as_str().context("a kid")?.to_string())
}

/// A token for pod `app` of `ns`, as the kubelet requests it.
fn mint(cluster: &Cluster, ns: &str) -> anyhow::Result<String> {
    cluster.mint_token(ns, "app", "app", AUDIENCE, 3600)
}

/// Whether kube-apiserver authenticates `token` (a TokenReview, as webhooks and aggregated APIs ask).
fn apiserver_accepts(cluster: &Cluster, token: &str) -> anyhow::Result<bool> {
    let review = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": [AUDIENCE]},
    });
    let out = cluster.kubectl_stdin(
        &["create", "-f", "-", "-o", "json"],
        Some(&review.to_string()),
    )?;
    let review: Value = serde_json::from_str(&out)?;
    Ok(review["status"]["authenticated"] == true)
}

/// Whether MinIO's STS gives credentials for `token`.
fn minio_accepts(cluster: &Cluster, token: &str) -> anyhow::Result<bool> {
    let output = scenario::assume_role_at_minio(cluster, token)?;
    if !output.status.success() {
        eprintln!(
            "MinIO refused a token: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Ok(false);
    }
    let credentials: Value = serde_json::from_slice(&output.stdout)?;
    Ok(credentials["Credentials"]["AccessKeyId"].is_string())
}

/// The kids kube-apiserver publishes at `/openid/v1/jwks`: the signer's keys as FetchKeys last gave them.
fn apiserver_kids(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    let jwks: Value =
        serde_json::from_str(&cluster.kubectl(&["get", "--raw", "/openid/v1/jwks"])?)?;
    Ok(jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(String::from))
        .collect())
}

/// The kids the issuer publishes (what MinIO's STS verifies against), read by it from the signer.
async fn issuer_kids(cluster: &Cluster) -> anyhow::Result<BTreeSet<String>> {
    let jwks = format!("{}/openid/v1/jwks", cluster.issuer_url);
    scenario::jwks_kids(&cluster.http()?, &jwks, None).await
}

/// Whether the issuer's `/readyz` answers 200.
async fn issuer_ready(cluster: &Cluster) -> anyhow::Result<bool> {
    let url = format!("{}/readyz", cluster.issuer_admin);
    Ok(cluster.http()?.get(url).send().await?.status().is_success())
}

/// The issuer's failed reads of the signer's key set so far (`irsa_issuer_reload_errors{source="signer"}`).
async fn issuer_signer_errors(cluster: &Cluster) -> anyhow::Result<u64> {
    let metrics = cluster.metrics(&cluster.issuer_admin).await?;
    let line = metrics
        .lines()
        .find(|l| l.starts_with(r#"irsa_issuer_reload_errors_total{source="signer"} "#));
    Ok(match line {
        // Absent until the first error.
        None => 0,
        Some(line) => line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("not a count: {line}"))?,
    })
}

/// The signer's signing kid, from `irsa signer status`.
fn signing_kid() -> anyhow::Result<String> {
    let status = the_signer().status()?;
    Ok(status["signing"]
        .as_str()
        .context("a signing key")?
        .to_string())
}

/// A TokenRequest token carries the signer's kid, and MinIO's STS accepts it.
pub async fn apiserver_signs_through_irsa_and_minio_accepts_the_token(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = scenario::app_with_minio_role(&cluster, "signer").await?;
    let token = mint(&cluster, &ns)?;
    let kid = signing_kid()?;
    ensure!(
        kid_in(&token)? == kid,
        "the token's kid {} is not the signer's {kid}",
        kid_in(&token)?
    );
    let published = issuer_kids(&cluster).await?;
    ensure!(
        published.contains(&kid),
        "the issuer does not publish the signer's kid {kid}: {published:?}"
    );
    ensure!(
        minio_accepts(&cluster, &token)?,
        "MinIO refused the signer's token"
    );
    ensure!(
        apiserver_accepts(&cluster, &token)?,
        "the apiserver refused its own token"
    );
    Ok(())
}

/// `irsa signer rotate` while a token is in use: the new key is published first (the apiserver's JWKS and the
/// issuer's list it, the issuer reading it from the signer with no copy step) while the old one still signs;
/// then new tokens carry the new kid and verify at MinIO; the old key stays in the issuer's JWKS while
/// retiring, and the old token keeps verifying at the apiserver and at MinIO; the apiserver is never
/// restarted.
pub async fn a_rotation_keeps_the_token_in_use_valid_and_new_tokens_carry_the_new_kid(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let signer = the_signer();
    let apiserver = cluster.pid_of("kube-apiserver");
    let ns = scenario::app_with_minio_role(&cluster, "rotation").await?;
    let old_kid = signing_kid()?;
    let in_use = mint(&cluster, &ns)?;
    ensure!(
        kid_in(&in_use)? == old_kid,
        "the token in use is not the old key's"
    );
    let before = issuer_kids(&cluster).await?;
    ensure!(
        before.contains(&old_kid),
        "the issuer does not publish the signing key {old_kid}: {before:?}"
    );

    let out = signer.command("rotate", &[])?;
    let new_kid = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("kid "))
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no kid in the output of irsa signer rotate:\n{out}"))?
        .to_string();
    ensure!(new_kid != old_kid, "the rotation wrote the same key");
    ensure!(
        out.contains("signs from"),
        "the new key must not sign at once:\n{out}"
    );

    // Pre-published: the apiserver and the issuer learn the new key (FetchKeys, hint 1 s) with no restart and
    // no copy, before it signs.
    let kids = Wait::up_to(Duration::from_secs(20))
        .every(Duration::from_millis(250))
        .try_until("the apiserver and the issuer publish both keys", || async {
            let (apiserver, issuer) = (apiserver_kids(&cluster)?, issuer_kids(&cluster).await?);
            let both = |kid: &String| apiserver.contains(kid) && issuer.contains(kid);
            anyhow::Ok(if both(&old_kid) && both(&new_kid) {
                Check::Ready(format!("apiserver {apiserver:?}, issuer {issuer:?}"))
            } else {
                Check::NotYet(format!("apiserver {apiserver:?}, issuer {issuer:?}"))
            })
        })
        .await?;
    let during = mint(&cluster, &ns)?;
    let state = signer.state_of(&new_kid)?;
    ensure!(
        state == "pre-published",
        "the new key is {state} already, 10 s after the rotation started: the pre-publication was not observed \
         ({kids})"
    );
    ensure!(
        kid_in(&during)? == old_kid,
        "a token was signed with the pre-published key"
    );

    let fresh = Wait::up_to(Duration::from_secs(30))
        .every(Duration::from_millis(500))
        .try_until("a token signed with the new key", || async {
            let token = mint(&cluster, &ns)?;
            let kid = kid_in(&token)?;
            anyhow::Ok(if kid == new_kid {
                Check::Ready(token)
            } else {
                Check::NotYet(format!("kid {kid}"))
            })
        })
        .await?;
    ensure!(
        signer.state_of(&old_kid)? == "retiring",
        "the old key must stay published"
    );
    let retiring = issuer_kids(&cluster).await?;
    ensure!(
        retiring.contains(&old_kid) && retiring.contains(&new_kid),
        "the issuer must publish the retiring key {old_kid} and the signing key {new_kid}: {retiring:?}"
    );
    ensure!(
        apiserver_accepts(&cluster, &fresh)?,
        "the apiserver refused the new key's token"
    );
    ensure!(
        minio_accepts(&cluster, &fresh)?,
        "MinIO refused the new key's token"
    );
    ensure!(
        apiserver_accepts(&cluster, &in_use)?,
        "the apiserver refused the token in use after the rotation"
    );
    ensure!(
        minio_accepts(&cluster, &in_use)?,
        "MinIO refused the token in use after the rotation"
    );
    ensure!(
        apiserver_kids(&cluster)?.contains(&old_kid),
        "the apiserver dropped the old key"
    );
    ensure!(
        cluster.pid_of("kube-apiserver") == apiserver,
        "kube-apiserver was restarted"
    );
    Ok(())
}

/// With the signer down, kube-apiserver cannot sign: a TokenRequest hangs until the apiserver's request
/// deadline (about 34 s here) and is answered 504 `Timeout` (so the kubelet can neither start pods that mount
/// a projected token nor refresh tokens), while tokens already issued still verify from the keys it fetched
/// last ("Stale set of keys will be supported"). The issuer keeps serving the key set it read last (still
/// ready, its failed reads counted in `irsa_issuer_reload_errors{source="signer"}`), so MinIO keeps accepting
/// issued tokens. Once the signer is back on the same socket, the apiserver signs again with no restart and
/// the issuer's reads succeed again.
pub async fn with_the_signer_down_token_requests_fail_and_a_restart_recovers(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let signer = the_signer();
    let apiserver = cluster.pid_of("kube-apiserver");
    let ns = scenario::app_with_minio_role(&cluster, "outage").await?;
    let before = mint(&cluster, &ns)?;
    let published = issuer_kids(&cluster).await?;
    let errors_before = issuer_signer_errors(&cluster).await?;

    signer.stop();
    let asked = std::time::Instant::now();
    let refused = mint(&cluster, &ns);
    let waited = asked.elapsed();
    let err = match refused {
        Ok(_) => anyhow::bail!("a TokenRequest succeeded with the signer down"),
        Err(err) => format!("{err:#}"),
    };
    eprintln!("TokenRequest with the signer down, answered after {waited:?}: {err}");
    // The apiserver's gRPC client waits for the socket to come back rather than failing fast: the request is
    // held until the apiserver's own deadline, then answered 504 (its log: "failed to generate token: while
    // signing jwt: rpc error: code = DeadlineExceeded").
    ensure!(
        err.contains("Timeout: request did not complete within requested timeout"),
        "expected the apiserver's 504 Timeout, got: {err}"
    );
    ensure!(
        waited >= Duration::from_secs(5),
        "answered after {waited:?}: the apiserver did not wait for the signer"
    );
    ensure!(
        apiserver_accepts(&cluster, &before)?,
        "an issued token stopped verifying while the signer was down"
    );
    // The issuer tried the signer (every second, its retry capped at the refresh hint) and failed ...
    let errors_down = issuer_signer_errors(&cluster).await?;
    ensure!(
        errors_down > errors_before,
        "the issuer counted no failed read of the signer in {waited:?} down ({errors_before} -> {errors_down})"
    );
    // ... and still serves its last key set, ready, so STS keeps verifying issued tokens.
    let down = issuer_kids(&cluster).await?;
    ensure!(
        down == published,
        "the issuer's JWKS changed with the signer down: {published:?} -> {down:?}"
    );
    ensure!(
        issuer_ready(&cluster).await?,
        "the issuer went unready with the signer down"
    );
    ensure!(
        minio_accepts(&cluster, &before)?,
        "MinIO refused an issued token while the signer was down"
    );

    signer.start("signer-restarted").await?;
    let after = Wait::up_to(Duration::from_secs(30))
        .every(Duration::from_millis(500))
        .try_until("a TokenRequest after the signer's restart", || async {
            anyhow::Ok(match mint(&cluster, &ns) {
                Ok(token) => Check::Ready(token),
                Err(err) => Check::NotYet(format!("{err:#}")),
            })
        })
        .await?;
    ensure!(
        kid_in(&after)? == signing_kid()?,
        "the token after the restart is not the signer's"
    );
    ensure!(
        apiserver_accepts(&cluster, &after)?,
        "the apiserver refused the token after the restart"
    );
    ensure!(
        minio_accepts(&cluster, &after)?,
        "MinIO refused the token after the restart"
    );
    // The issuer reads the restarted signer again: its failures stop growing (with the signer down they grew
    // every second).
    let settled = issuer_signer_errors(&cluster).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = issuer_signer_errors(&cluster).await?;
    ensure!(
        later == settled,
        "the issuer still fails to read the restarted signer ({settled} -> {later} in 3 s)"
    );
    ensure!(
        cluster.pid_of("kube-apiserver") == apiserver,
        "kube-apiserver was restarted"
    );
    Ok(())
}
