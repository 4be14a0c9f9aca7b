//! The webhook's load and memory benchmark against the real topology (see `bench/README.md`).
//!
//! - load: the realistic 6.6 KB review (`webhook/benches/fixtures/review-6kb.json`) POSTed over TLS with
//!   keep-alive by `oha`: a fixed 2,000 requests/s on 4 connections (p50/p99 as the client sees them, latency
//!   corrected for coordinated omission), then saturation on 16 connections;
//! - memory: the webhook's RSS after its watch has indexed N ServiceAccounts (default 100,000) created in the
//!   real apiserver across 1,000 namespaces, a third of them annotated;
//! - reference: irsa side by side with the reference webhook (amazon-eks-pod-identity-webhook, see
//!   [`reference`]): the same apiserver, certificate, review and load, rounds alternating between them;
//! - soak: the webhook, then the issuer, at 80 % of their measured saturation for `--minutes` (default 10) in
//!   windows of `--window-seconds` (default 60), with a verdict on errors, RSS, fds and p99 (see [`soak`]);
//!   `--servers issuer` (or `webhook`) soaks only that one.
//!
//! Usage: `bench-webhook --help`. IRSA_BIN should be a release build, OHA the oha binary, and for `reference`
//! IRSA_REFERENCE_WEBHOOK the reference's binary (default: where `hack/install-peers.sh reference-webhook` puts
//! it). Prints markdown rows for bench/README.md.

mod agree;
mod oha;
mod procstat;
mod reference;
mod soak;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use irsa_e2e::cluster::Cluster;
use irsa_e2e::peers::{Peers, workspace_root};
use irsa_testing::wait::{Check, Wait};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

use crate::procstat::rss_kib;

/// The webhook's benchmarks against the real topology (kube-apiserver, etcd, the issuer; loopback only); see
/// bench/README.md. Prints markdown rows.
#[derive(clap::Parser)]
#[command(name = "bench-webhook")]
struct Args {
    /// What to run, in this order whatever the order given, on one cluster; none: load and memory. What an
    /// earlier mode created stays (after `memory`, the reference's "idle" RSS already has the accounts), so run
    /// `memory` and `reference` alone for numbers to compare.
    #[arg(value_enum)]
    modes: Vec<Mode>,
    /// ServiceAccounts to create for `memory` and `reference` (across 1,000 namespaces, a third annotated).
    #[arg(long, default_value_t = 100_000)]
    accounts: usize,
    /// Seconds per oha run of `load` and `reference`.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Rounds of `reference`, alternating between the servers.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Minutes of `soak` per server.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Seconds per window of `soak`.
    #[arg(long, default_value_t = 60)]
    window_seconds: u64,
    /// The servers `soak` soaks, comma-separated: webhook, issuer.
    #[arg(long, default_value = "webhook,issuer")]
    servers: String,
}

/// One benchmark.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// The 6.6 KB review over TLS by oha: p50 to p99.9 at a fixed 2,000 req/s on 4 connections (and the server's
    /// own histogram), then saturation on 16.
    Load,
    /// The webhook's RSS once its watch has indexed `--accounts` ServiceAccounts.
    Memory,
    /// irsa side by side with amazon-eks-pod-identity-webhook: same apiserver, certificate, review and load.
    Reference,
    /// The webhook, then the issuer, at 80 % of saturation for `--minutes`, with a verdict (not in the default).
    Soak,
}

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let runs = |m: Mode| match args.modes.is_empty() {
        true => matches!(m, Mode::Load | Mode::Memory),
        false => args.modes.contains(&m),
    };
    let (load, memory, compare, soak) = (
        runs(Mode::Load),
        runs(Mode::Memory),
        runs(Mode::Reference),
        runs(Mode::Soak),
    );
    let Args {
        accounts,
        seconds,
        rounds,
        minutes,
        window_seconds,
        ref servers,
        ..
    } = args;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let cluster = Arc::new(Cluster::start(Peers::locate()?).await?);
        if load || memory {
            println!("| what | command | result |\n|---|---|---|");
        }
        if load {
            bench_load(&cluster, seconds).await?;
        }
        if memory {
            bench_memory(&cluster, accounts).await?;
        }
        if compare {
            reference::run(&cluster, accounts, seconds, rounds).await?;
        }
        if soak {
            soak::run(&cluster, servers, minutes, window_seconds).await?;
        }
        anyhow::Ok(())
    })
}

/// The realistic review: its path, its body, and the namespace and ServiceAccount its pod names.
pub struct Review {
    /// `webhook/benches/fixtures/review-6kb.json`.
    pub path: std::path::PathBuf,
    /// The AdmissionReview.
    pub body: Value,
    /// `request.namespace`.
    pub namespace: String,
    /// The pod's `serviceAccountName`.
    pub account: String,
}

/// The role ARN the review's ServiceAccount is annotated with.
pub const REVIEW_ROLE_ARN: &str = "arn:aws:iam::111122223333:role/orders-api";

impl Review {
    /// Reads the fixture.
    pub fn read() -> anyhow::Result<Self> {
        let path = workspace_root().join("webhook/benches/fixtures/review-6kb.json");
        let body: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let text = |v: &Value, what: &str| v.as_str().map(str::to_owned).context(what.to_owned());
        Ok(Self {
            namespace: text(&body["request"]["namespace"], "namespace")?,
            account: text(
                &body["request"]["object"]["spec"]["serviceAccountName"],
                "account",
            )?,
            path,
            body,
        })
    }

    /// Creates its namespace and its ServiceAccount, annotated with [`REVIEW_ROLE_ARN`].
    pub async fn create_account(&self, cluster: &Cluster) -> anyhow::Result<()> {
        create_annotated_account(cluster, &self.namespace, &self.account, REVIEW_ROLE_ARN).await
    }
}

/// Creates the namespace `namespace` and in it the ServiceAccount `name` annotated with `role_arn`.
pub async fn create_annotated_account(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    role_arn: &str,
) -> anyhow::Result<()> {
    let client = cluster.client().await?;
    create(
        &Api::<Namespace>::all(client.clone()),
        json!({"metadata": {"name": namespace}}),
    )
    .await?;
    create(
        &Api::<ServiceAccount>::namespaced(client, namespace),
        json!({"metadata": {"name": name, "annotations": {"eks.amazonaws.com/role-arn": role_arn}}}),
    )
    .await
}

/// Creates `manifest` through `api`; one that already exists counts as created, so that the modes of one run
/// (`bench-webhook load reference`, say) can each create what they need on the same cluster.
async fn create<K>(api: &Api<K>, manifest: Value) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(manifest)?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err.into()),
    }
}

async fn bench_load(cluster: &Cluster, seconds: u64) -> anyhow::Result<()> {
    let review = Review::read()?;
    review.create_account(cluster).await?;
    // Admissions need neither the STS nor IAM: stop them so their background work does not skew the tail.
    cluster.stop_peer("minio");
    cluster.stop_peer("moto");
    // Let the watch deliver the account, so the run measures the cache-hit path users see in steady state.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let duration = format!("{seconds}s");
    let fixture_name = "6.6 KB review";
    let fixture = review.path.display().to_string();
    let fixed = ["-c", "4", "-q", "2000", "--latency-correction"];
    let jwks = format!("{}/openid/v1/jwks", cluster.issuer_url);
    let before = server_histogram(cluster).await?;
    oha_row(
        &format!("webhook POST, fixed 2,000 req/s, 4 connections, {fixture_name}"),
        &duration,
        &fixed,
        Some(&fixture),
        &cluster.webhook_url,
    )?;
    let after = server_histogram(cluster).await?;
    // Whether the client's slowest answers were slow inside the server too.
    println!(
        "| webhook server-side time (histogram `irsa_webhook_admission_duration_seconds`, fixed-rate run) | `/metrics` | p50 <= {}, p99 <= {}, p99.9 <= {}; {} of {} over 0.8 ms (bucket upper bounds) |",
        bucket_quantile(&before, &after, 0.50),
        bucket_quantile(&before, &after, 0.99),
        bucket_quantile(&before, &after, 0.999),
        bucket_count_above(&before, &after, "0.0008"),
        bucket_count_above(&before, &after, "+Inf"),
    );
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
    let report = oha::run(duration, extra, body, url)?;
    println!(
        "| {what} | `{}` | {:.0} req/s, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, success {:.4}, statuses {} |",
        oha::command_line(duration, extra, body.is_some()),
        report.rps,
        report.p50_ms,
        report.p90_ms,
        report.p99_ms,
        report.p999_ms,
        report.success,
        report.statuses,
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

/// The requests between two snapshots of the histogram, per bucket: (upper bound, cumulative count).
fn between(before: &[(String, f64)], after: &[(String, f64)]) -> Vec<(String, f64)> {
    after
        .iter()
        .zip(before)
        .map(|((le, a), (_, b))| (le.clone(), a - b))
        .collect()
}

/// How many of the requests between two snapshots took longer than the bucket bound `le` (all of them for
/// `+Inf`).
fn bucket_count_above(before: &[(String, f64)], after: &[(String, f64)], le: &str) -> f64 {
    let counts = between(before, after);
    let total = counts.last().map_or(f64::NAN, |(_, c)| *c);
    if le == "+Inf" {
        return total;
    }
    counts
        .iter()
        .find(|(bound, _)| bound == le)
        .map_or(f64::NAN, |(_, c)| total - c)
}

/// The smallest bucket bound below which `q` of the requests between two snapshots fall.
fn bucket_quantile(before: &[(String, f64)], after: &[(String, f64)], q: f64) -> String {
    let counts = between(before, after);
    let total = counts.last().map_or(0.0, |(_, c)| *c);
    counts.iter().find(|(_, c)| *c >= q * total).map_or_else(
        || "n/a".into(),
        |(le, _)| format!("{:.3} ms", le.parse::<f64>().unwrap_or(f64::NAN) * 1e3),
    )
}

/// How many ServiceAccounts the irsa webhook with admin base URL `admin` has indexed.
pub async fn cached_accounts(cluster: &Cluster, admin: &str) -> anyhow::Result<u64> {
    let metrics = cluster.metrics(admin).await?;
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
            async move { create(&api, manifest).await }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await
}

/// Creates `accounts` ServiceAccounts across up to 1,000 namespaces `mem-N`, a third of them annotated with a
/// role ARN; returns the number of namespaces and how long it took.
pub async fn create_accounts(
    cluster: &Cluster,
    accounts: usize,
) -> anyhow::Result<(usize, Duration)> {
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
    Ok((namespaces, started.elapsed()))
}

/// Waits until the irsa webhook with admin base URL `admin` has indexed at least `accounts` ServiceAccounts.
pub async fn wait_indexed(cluster: &Cluster, admin: &str, accounts: usize) -> anyhow::Result<()> {
    Wait::up_to(Duration::from_secs(300))
        .every(Duration::from_millis(500))
        .try_until(
            &format!("the webhook indexes all {accounts} accounts"),
            || async {
                let cached = cached_accounts(cluster, admin).await?;
                anyhow::Ok(Check::ready_if(cached >= accounts as u64, || {
                    format!("{cached} indexed")
                }))
            },
        )
        .await
}

async fn bench_memory(cluster: &Cluster, accounts: usize) -> anyhow::Result<()> {
    let pid = cluster.pid_of("webhook").context("the webhook's PID")?;
    let (idle, _) = rss_kib(pid)?;
    let (namespaces, created) = create_accounts(cluster, accounts).await?;
    wait_indexed(cluster, &cluster.webhook_admin, accounts).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(counts: [f64; 4]) -> Vec<(String, f64)> {
        ["0.0004", "0.0008", "0.0016", "+Inf"]
            .iter()
            .zip(counts)
            .map(|(le, c)| (le.to_string(), c))
            .collect()
    }

    #[test]
    fn bucket_counts_are_taken_between_the_snapshots() {
        let before = snapshot([10.0, 12.0, 13.0, 13.0]);
        let after = snapshot([100.0, 104.0, 110.0, 113.0]);
        assert_eq!(bucket_count_above(&before, &after, "+Inf"), 100.0);
        assert_eq!(bucket_count_above(&before, &after, "0.0008"), 8.0);
        assert_eq!(bucket_count_above(&before, &after, "0.0004"), 10.0);
        assert!(bucket_count_above(&before, &after, "0.5").is_nan());
        assert_eq!(bucket_quantile(&before, &after, 0.9), "0.400 ms");
        assert_eq!(bucket_quantile(&before, &after, 0.95), "1.600 ms");
        assert_eq!(bucket_quantile(&before, &after, 0.999), "inf ms");
    }
}
