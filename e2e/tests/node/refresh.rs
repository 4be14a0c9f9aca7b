//! Token refresh by the kubelet: with `eks.amazonaws.com/token-expiration: "600"` (the kubelet's minimum)
//! the kubelet rewrites the token file after 80 % of its life (480 s), and a program that keeps asking
//! keeps getting credentials across the rewrite.
//!
//! The probe pod starts first in the suite and is checked last, so the wait overlaps the other tests.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use irsa_e2e::cluster::{BUCKET, Cluster};
use irsa_e2e::scenario;
use irsa_testing::wait::{Check, Wait};
use serde_json::json;

use irsa_e2e::node::pods::{self as support, namespace_with_app};

/// The probe's namespace and when it started.
static PROBE: OnceLock<(String, Instant)> = OnceLock::new();

/// Seconds between the probe's rounds (each a new AssumeRoleWithWebIdentity with the file as it is then).
const EVERY: &str = "20";

/// Starts the looping probe pod with 600 s tokens.
pub async fn token_refresh_probe_starts(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace_with_app(
        &cluster,
        "refresh",
        json!({"eks.amazonaws.com/token-expiration": "600"}),
    )
    .await?;
    let pod = support::probe_pod("looping", &[BUCKET, EVERY], Some(1000), &cluster.minio_url);
    let created = scenario::create_pod(&cluster, &ns, pod).await?;
    let source =
        &scenario::token_volume(&created).context("no token volume")?["projected"]["sources"][0];
    ensure!(
        source["serviceAccountToken"]["expirationSeconds"] == 600,
        "token volume not of 600 s: {source}"
    );
    support::wait_running(&cluster, &ns, "looping").await?;
    PROBE
        .set((ns, Instant::now()))
        .ok()
        .context("the probe started twice")?;
    Ok(())
}

/// Waits for the kubelet's rewrite (up to 600 s after the pod started): every round before and after it
/// listed the bucket, with at least two different tokens.
pub async fn token_refresh_keeps_credentials_coming(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let (ns, started) = PROBE
        .get()
        .context("token_refresh_probe_starts did not run")?;
    let remaining = Duration::from_secs(600).saturating_sub(started.elapsed());
    eprintln!(
        "  waiting up to {} s more for the kubelet's refresh",
        remaining.as_secs()
    );
    let tokens = Wait::up_to(remaining + Duration::from_secs(30))
        .every(Duration::from_secs(5))
        .try_until(
            "the kubelet rewrites the token and the program uses the new one",
            || async {
                let log = support::logs(&cluster, ns, "looping")?;
                if let Some(error) = log.lines().find(|l| l.starts_with("error")) {
                    bail!("a round failed: {error}\nthe log:\n{log}");
                }
                let tokens: BTreeSet<&str> = log
                    .lines()
                    .filter(|l| l.starts_with("ok "))
                    .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("token_iat=")))
                    .collect();
                let rounds = log.lines().filter(|l| l.starts_with("ok ")).count();
                Ok(if tokens.len() >= 2 {
                    Check::Ready((
                        rounds,
                        tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                    ))
                } else {
                    Check::NotYet(format!("{rounds} rounds, tokens issued at {tokens:?}"))
                })
            },
        )
        .await?;
    eprintln!(
        "  {} rounds all listed the bucket, with tokens issued at {:?} (refreshed after {:.0} s)",
        tokens.0,
        tokens.1,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
