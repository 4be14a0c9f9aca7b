//! The webhook's load and memory benchmark against the real topology (see `bench/README.md`).
//!
//! - load: the realistic 6.6 KB review (`webhook/benches/fixtures/review-6kb.json`) POSTed over TLS with
//!   keep-alive by `oha`: a fixed 2,000 requests/s on 4 connections (p50/p99 as the client sees them, latency
//!   corrected for coordinated omission), then saturation on 16 connections;
//! - memory: the webhook's RSS after its watch has indexed N ServiceAccounts (default 100,000) created in the
//!   real apiserver across 1,000 namespaces, a third of them annotated.
//!
//! Usage: bench-webhook [load] [memory] [--accounts N] [--seconds S]; IRSA_BIN should be a release build and
//! OHA the oha binary. Prints markdown rows for bench/README.md.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use irsa_e2e::cluster::Cluster;
use irsa_e2e::peers::{Peers, workspace_root};
use irsa_testing::wait::{Check, Wait};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

fn arg_value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (mut load, mut memory) = (
        args.iter().any(|a| a == "load"),
        args.iter().any(|a| a == "memory"),
    );
    if !load && !memory {
        (load, memory) = (true, true);
    }
    let accounts: usize = arg_value("--accounts").map_or(Ok(100_000), |v| v.parse())?;
    let seconds: u64 = arg_value("--seconds").map_or(Ok(20), |v| v.parse())?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let cluster = Arc::new(Cluster::start(Peers::locate()?).await?);
        println!("| what | command | result |\n|---|---|---|");
        if load {
            bench_load(&cluster, seconds).await?;
        }
        if memory {
            bench_memory(&cluster, accounts).await?;
        }
        anyhow::Ok(())
    })
}

async fn bench_load(cluster: &Cluster, seconds: u64) -> anyhow::Result<()> {
    let fixture = workspace_root().join("webhook/benches/fixtures/review-6kb.json");
    let review: Value = serde_json::from_slice(&std::fs::read(&fixture)?)?;
    let namespace = review["request"]["namespace"]
        .as_str()
        .context("namespace")?;
    let account = review["request"]["object"]["spec"]["serviceAccountName"]
        .as_str()
        .context("account")?;
    let client = cluster.client().await?;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}}))?,
        )
        .await?;
    Api::<ServiceAccount>::namespaced(client, namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": account, "annotations": {
                "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/orders-api"}}}))?,
        )
        .await?;
    // Admissions need neither the STS nor IAM: stop them so their background work does not skew the tail.
    cluster.stop_peer("minio");
    cluster.stop_peer("moto");
    // Let the watch deliver the account, so the run measures the cache-hit path users see in steady state.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let duration = format!("{seconds}s");
    let fixture_name = "6.6 KB review";
    let fixture = fixture.display().to_string();
    let fixed = ["-c", "4", "-q", "2000", "--latency-correction"];
    let jwks = format!("{}/openid/v1/jwks", cluster.issuer_url);
    oha_row(
        &format!("webhook POST, fixed 2,000 req/s, 4 connections, {fixture_name}"),
        &duration,
        &fixed,
        Some(&fixture),
        &cluster.webhook_url,
    )?;
    let before = server_histogram(cluster).await?;
    oha_row(
        "webhook POST, saturation, 16 connections",
        &duration,
        &["-c", "16"],
        Some(&fixture),
        &cluster.webhook_url,
    )?;
    let after = server_histogram(cluster).await?;
    println!(
        "| webhook server-side time (histogram `irsa_webhook_admission_duration_seconds`, saturation run) | `/metrics` | p50 <= {}, p99 <= {} (bucket upper bounds) |",
        bucket_quantile(&before, &after, 0.50),
        bucket_quantile(&before, &after, 0.99)
    );
    // The floor of this machine: the same client and rate against the smallest TLS handler of the topology.
    oha_row(
        "floor: issuer GET JWKS (667 B), fixed 2,000 req/s, 4 connections",
        &duration,
        &fixed,
        None,
        &jwks,
    )?;
    Ok(())
}

fn oha_row(
    what: &str,
    duration: &str,
    extra: &[&str],
    body: Option<&str>,
    url: &str,
) -> anyhow::Result<()> {
    let oha = std::env::var("OHA").unwrap_or_else(|_| "oha".into());
    let mut command = Command::new(&oha);
    // At a fixed rate one client thread is plenty, and oha's own cross-thread wake-ups would otherwise be most of
    // the tail it reports; at saturation it gets every core.
    let single_threaded = extra.contains(&"-q");
    if single_threaded {
        command.env("TOKIO_WORKER_THREADS", "1");
    }
    command
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--insecure",
            "-z",
            duration,
        ])
        .args(extra);
    if let Some(body) = body {
        command.args(["-m", "POST", "-T", "application/json", "-D", body]);
    }
    let output = command
        .arg(url)
        .output()
        .with_context(|| format!("running {oha}"))?;
    if !output.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("oha's JSON report")?;
    let summary = &report["summary"];
    let percentile = |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1e3;
    println!(
        "| {what} | `{}oha -z {duration} {}{}` | {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, success {:.4}, statuses {} |",
        if single_threaded {
            "TOKIO_WORKER_THREADS=1 "
        } else {
            ""
        },
        extra.join(" "),
        if body.is_some() {
            " -m POST -D review-6kb.json"
        } else {
            ""
        },
        summary["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        percentile("p50"),
        percentile("p99"),
        summary["successRate"].as_f64().unwrap_or(f64::NAN),
        report["statusCodeDistribution"],
    );
    Ok(())
}

/// The webhook's latency histogram as (upper bound, cumulative count) pairs.
async fn server_histogram(cluster: &Cluster) -> anyhow::Result<Vec<(String, f64)>> {
    let metrics = cluster.metrics(&cluster.webhook_admin).await?;
    Ok(metrics
        .lines()
        .filter_map(|l| l.strip_prefix("irsa_webhook_admission_duration_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, rest) = l.split_once("\"}")?;
            Some((le.to_string(), rest.trim().parse().ok()?))
        })
        .collect())
}

/// The smallest bucket bound below which `q` of the requests between two snapshots fall.
fn bucket_quantile(before: &[(String, f64)], after: &[(String, f64)], q: f64) -> String {
    let counts: Vec<(String, f64)> = after
        .iter()
        .zip(before)
        .map(|((le, a), (_, b))| (le.clone(), a - b))
        .collect();
    let total = counts.last().map_or(0.0, |(_, c)| *c);
    counts.iter().find(|(_, c)| *c >= q * total).map_or_else(
        || "n/a".into(),
        |(le, _)| format!("{:.3} ms", le.parse::<f64>().unwrap_or(f64::NAN) * 1e3),
    )
}

fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Ok((
        field("VmRSS:").context("VmRSS")?,
        field("VmHWM:").context("VmHWM")?,
    ))
}

async fn cached_accounts(cluster: &Cluster) -> anyhow::Result<u64> {
    let metrics = cluster.metrics(&cluster.webhook_admin).await?;
    Ok(metrics
        .lines()
        .find_map(|l| l.strip_prefix("irsa_webhook_cached_service_accounts "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Creates `count` objects in the apiserver, `concurrency` at a time; `object(i)` names where and what.
async fn create_many<K>(
    count: usize,
    concurrency: usize,
    object: impl Fn(usize) -> (Api<K>, Value),
) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    use futures::TryStreamExt as _;
    futures::stream::iter(0..count)
        .map(|i| {
            let (api, manifest) = object(i);
            async move {
                let object: K = serde_json::from_value(manifest)?;
                api.create(&PostParams::default(), &object).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await
}

async fn bench_memory(cluster: &Cluster, accounts: usize) -> anyhow::Result<()> {
    let pid = cluster.pid_of("webhook").context("the webhook's PID")?;
    let (idle, _) = rss_kib(pid)?;
    let client = cluster.client().await?;
    let namespaces = 1_000.min(accounts.max(1));
    let started = Instant::now();
    create_many(namespaces, 32, |n| {
        (
            Api::<Namespace>::all(client.clone()),
            json!({"metadata": {"name": format!("mem-{n}")}}),
        )
    })
    .await?;
    create_many(accounts, 48, |i| {
        let annotations = if i % 3 == 0 {
            json!({"eks.amazonaws.com/role-arn": format!("arn:aws:iam::111122223333:role/workload-{i:06}")})
        } else {
            json!({})
        };
        (
            Api::<ServiceAccount>::namespaced(client.clone(), &format!("mem-{}", i % namespaces)),
            json!({"metadata": {"name": format!("workload-{i:06}-service-account"), "annotations": annotations}}),
        )
    })
    .await?;
    let created = started.elapsed();
    Wait::up_to(Duration::from_secs(300))
        .every(Duration::from_millis(500))
        .try_until(
            &format!("the webhook indexes all {accounts} accounts"),
            || async {
                let cached = cached_accounts(cluster).await?;
                anyhow::Ok(Check::ready_if(cached >= accounts as u64, || {
                    format!("{cached} indexed")
                }))
            },
        )
        .await?;
    let (rss, peak) = rss_kib(pid)?;
    println!(
        "| webhook RSS with {accounts} ServiceAccounts indexed (1/3 annotated, {namespaces} namespaces; created in {:.0} s) | `/proc/<webhook>/status` | VmRSS {:.1} MB (idle {:.1} MB), VmHWM {:.1} MB |",
        created.as_secs_f64(),
        rss as f64 / 1024.0,
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}
