//! irsa side by side with the reference webhook, amazon-eks-pod-identity-webhook (pinned in `hack/peers.env`,
//! built by `hack/install-peers.sh reference-webhook`), in one run: the same apiserver, serving certificate,
//! annotation, ServiceAccount, 6.6 KB review and load generator.
//!
//! 1. Both servers start fresh (the harness's own webhook is stopped: the bench starts irsa itself, so that
//!    both are processes it controls alike) and must answer the review with a patch; both patches are applied
//!    to the review's pod, and the two pods must give every container the same credentials ([`agree`]).
//! 2. Both must listen on, and talk over, loopback only (their TCP sockets, from `/proc`).
//! 3. Rounds alternate between the servers (irsa, reference, irsa, ...): saturation on 16 connections, then a
//!    fixed 2,000 requests/s on 4; the server's CPU time (`/proc/<pid>/stat`) over the round divided by the
//!    admissions it answered.
//! 4. Memory: both restarted fresh, RSS idle, then after 100,000 ServiceAccounts are created and both have
//!    caught up (a sentinel account created last is served by both: a watch delivers in order).

use std::time::Duration;

use anyhow::{Context as _, bail};
use irsa_e2e::cluster::{AUDIENCE, Cluster, ROLE_ARN_PATTERN};
use irsa_e2e::peers::Listed;
use irsa_e2e::process::{Process, free_port};
use irsa_testing::wait::{Check, Wait};
use serde_json::{Value, json};

use crate::procstat::{cpu_ticks, rss_kib, tcp_sockets, ticks_per_second};
use crate::{Review, agree, create_accounts, create_annotated_account, oha, wait_indexed};

const ANNOTATION_PREFIX: &str = "eks.amazonaws.com";
const SENTINEL_NAMESPACE: &str = "mem-sentinel";
const SENTINEL_ACCOUNT: &str = "sentinel";
const SENTINEL_ROLE_ARN: &str = "arn:aws:iam::111122223333:role/sentinel";

/// Which webhook a [`Server`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Irsa,
    Reference,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Irsa => "irsa",
            Kind::Reference => "reference",
        }
    }
}

/// One running webhook.
struct Server {
    kind: Kind,
    /// Its process's name (and log file's, in the run's `logs/`).
    name: String,
    /// `https://127.0.0.1:PORT/mutate`.
    url: String,
    runs: Runs,
}

/// How a [`Server`] runs.
enum Runs {
    /// irsa, a process of the cluster (which stops it with the rest); its admin base URL (`/readyz`, and
    /// `/metrics`, which counts the indexed accounts).
    Irsa { admin: String },
    /// The reference, whose process the bench holds.
    Reference { process: Process },
}

impl Server {
    fn start(kind: Kind, cluster: &Cluster, generation: &str) -> anyhow::Result<Self> {
        let dir = &cluster.dir;
        let (port, admin_port) = (free_port(), free_port());
        let url = format!("https://127.0.0.1:{port}/mutate");
        let cert = dir.join("serving.crt").display().to_string();
        let key = dir.join("serving.key").display().to_string();
        let kubeconfig = cluster.kubeconfig.display().to_string();
        let name = format!("{}-{generation}", kind.label());
        match kind {
            Kind::Irsa => {
                cluster.start_irsa(
                    &name,
                    &[
                        "webhook".into(),
                        "serve".into(),
                        format!("--kubeconfig={kubeconfig}"),
                        format!("--tls-cert-file={cert}"),
                        format!("--tls-key-file={key}"),
                        format!("--listen=127.0.0.1:{port}"),
                        format!("--admin-listen=127.0.0.1:{admin_port}"),
                        format!("--role-arn-pattern={ROLE_ARN_PATTERN}"),
                        format!(
                            "--log-level={}",
                            std::env::var("IRSA_E2E_WEBHOOK_LOG").unwrap_or_else(|_| "info".into())
                        ),
                    ],
                )?;
                Ok(Self {
                    kind,
                    name,
                    url,
                    runs: Runs::Irsa {
                        admin: format!("http://127.0.0.1:{admin_port}"),
                    },
                })
            }
            Kind::Reference => {
                let binary = Listed::read()?.path("IRSA_REFERENCE_WEBHOOK")?;
                if !binary.exists() {
                    bail!(
                        "the reference webhook is not at {}: run `hack/install-peers.sh reference-webhook` (or set IRSA_REFERENCE_WEBHOOK)",
                        binary.display()
                    );
                }
                // Out of cluster: the harness's kubeconfig and certificate, not the in-cluster CSR flow. Its
                // build listens on 127.0.0.1 (hack/install-peers.sh: upstream has no flag for the address).
                // Nothing it runs here asks AWS anything: instance metadata is only read with
                // --compose-role-arn, which stays off; the env below makes sure the SDK would not try anyway.
                let args = vec![
                    "--in-cluster=false".to_string(),
                    format!("--kubeconfig={kubeconfig}"),
                    format!("--tls-cert={cert}"),
                    format!("--tls-key={key}"),
                    format!("--port={port}"),
                    format!("--metrics-port={admin_port}"),
                    format!("--annotation-prefix={ANNOTATION_PREFIX}"),
                    format!("--token-audience={AUDIENCE}"),
                ];
                let process = Process::start(
                    &name,
                    &binary,
                    &args,
                    &[("AWS_EC2_METADATA_DISABLED", "true".into())],
                    &dir.join("logs"),
                )?;
                Ok(Self {
                    kind,
                    name,
                    url,
                    runs: Runs::Reference { process },
                })
            }
        }
    }

    fn pid(&self, cluster: &Cluster) -> anyhow::Result<u32> {
        match &self.runs {
            Runs::Reference { process } => process.program_pid(),
            Runs::Irsa { .. } => cluster.pid_of(&self.name),
        }
        .with_context(|| format!("the PID of {}", self.name))
    }

    /// Waits until it answers its health endpoint, failing early with its log if it exited.
    async fn wait_ready(&mut self, cluster: &Cluster) -> anyhow::Result<()> {
        match &mut self.runs {
            Runs::Irsa { admin } => {
                cluster
                    .wait_ready(&self.name, &format!("{admin}/readyz"))
                    .await
            }
            Runs::Reference { process } => {
                let http = cluster.http()?;
                let health = self.url.replace("/mutate", "/healthz");
                Wait::up_to(Duration::from_secs(60))
                    .every(Duration::from_millis(200))
                    .try_until(&format!("{} answers {health}", self.name), || {
                        let exited = process.exited().then(|| process.log_tail(30));
                        let request = http.get(&health).send();
                        async move {
                            if let Some(tail) = exited {
                                bail!("it exited during start-up:\n{tail}");
                            }
                            Ok(match request.await {
                                Ok(r) if r.status().is_success() => Check::Ready(()),
                                Ok(r) => Check::NotYet(format!("HTTP {}", r.status())),
                                Err(err) => Check::NotYet(format!("{err:#}")),
                            })
                        }
                    })
                    .await
            }
        }
    }

    fn stop(&mut self, cluster: &Cluster) {
        match &mut self.runs {
            Runs::Reference { process } => process.stop(),
            Runs::Irsa { .. } => cluster.stop_peer(&self.name),
        }
    }
}

/// POSTs an AdmissionReview and returns the answer's body.
async fn admit(http: &reqwest::Client, url: &str, review: &Value) -> anyhow::Result<Value> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(review)?)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("the answer is not JSON: {text}"))
}

/// Waits until `server` answers `review` with a patch that gives every container `role_arn` (its cache has
/// the account), and returns the patched pod.
async fn wait_patched(
    cluster: &Cluster,
    server: &Server,
    review: &Value,
    role_arn: &str,
) -> anyhow::Result<Value> {
    let http = cluster.http()?;
    Wait::up_to(Duration::from_secs(300))
        .every(Duration::from_millis(500))
        .try_until(
            &format!("{} answers the review with {role_arn}", server.name),
            || async {
                let pod = match admit(&http, &server.url, review).await {
                    Ok(answer) => agree::patched_pod(review, &answer),
                    Err(err) => Err(err),
                };
                anyhow::Ok(match pod {
                    Ok(pod) => {
                        let views = agree::credentials(&pod);
                        if !views.is_empty()
                            && views.values().all(|v| v["AWS_ROLE_ARN"] == role_arn)
                        {
                            Check::Ready(pod)
                        } else {
                            Check::NotYet(format!(
                                "credentials {}",
                                serde_json::to_string(&views).unwrap_or_default()
                            ))
                        }
                    }
                    Err(err) => Check::NotYet(format!("{err:#}")),
                })
            },
        )
        .await
}

/// Fails unless every TCP socket of every server stays on loopback; prints them.
fn check_loopback(cluster: &Cluster, servers: &[Server]) -> anyhow::Result<()> {
    for server in servers {
        let sockets = tcp_sockets(server.pid(cluster)?)?;
        let shown: Vec<String> = sockets
            .iter()
            .map(|s| {
                if s.listening {
                    format!("listen {}", s.local)
                } else {
                    format!("{} -> {}", s.local, s.remote)
                }
            })
            .collect();
        eprintln!("[bench] {} TCP sockets: {}", server.name, shown.join(", "));
        if let Some(off) = sockets.iter().find(|s| !s.is_loopback()) {
            bail!("{} has a socket off loopback: {off:?}", server.name);
        }
    }
    Ok(())
}

/// One timed round of one server.
struct Round {
    saturation_rps: f64,
    /// The run at a fixed 2,000 req/s: its rate reached and latencies.
    fixed: oha::Report,
    cpu_us_per_admission: f64,
}

async fn round(
    cluster: &Cluster,
    server: &Server,
    review: &Review,
    seconds: u64,
) -> anyhow::Result<Round> {
    let pid = server.pid(cluster)?;
    let duration = format!("{seconds}s");
    let body = review.path.display().to_string();
    let fixed = ["-c", "4", "-q", "2000", "--latency-correction"];
    let before = cpu_ticks(pid)?;
    let saturation = oha::run(&duration, &["-c", "16"], Some(&body), &server.url)?;
    let steady = oha::run(&duration, &fixed, Some(&body), &server.url)?;
    let ticks = cpu_ticks(pid)? - before;
    for (what, report) in [("saturation", &saturation), ("fixed rate", &steady)] {
        // A server that answered errors fast would look good: every answer must be a 200.
        let statuses = report
            .statuses
            .as_object()
            .map(|m| m.keys().collect::<Vec<_>>());
        if statuses != Some(vec![&"200".to_string()]) || report.responses == 0 {
            bail!(
                "{} answered {what} with statuses {} (success {:.4}): see {}/logs/{}.log",
                server.name,
                report.statuses,
                report.success,
                cluster.dir.display(),
                server.name
            );
        }
    }
    let admissions = (saturation.responses + steady.responses) as f64;
    Ok(Round {
        saturation_rps: saturation.rps,
        fixed: steady,
        cpu_us_per_admission: ticks as f64 / ticks_per_second() / admissions * 1e6,
    })
}

/// The median of `values` (the mean of the middle two for an even count); NaN for none.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn list(values: &[f64], decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// One row of the side-by-side table: per-round values, medians, and irsa / reference of the medians.
fn row(figure: &str, irsa: &[f64], reference: &[f64], decimals: usize) {
    let (a, b) = (median(irsa), median(reference));
    println!(
        "| {figure} | {} (median **{a:.decimals$}**) | {} (median **{b:.decimals$}**) | **{:.2}** |",
        list(irsa, decimals),
        list(reference, decimals),
        a / b
    );
}

/// The side-by-side benchmark; prints markdown tables for bench/README.md.
pub async fn run(
    cluster: &Cluster,
    accounts: usize,
    seconds: u64,
    rounds: usize,
) -> anyhow::Result<()> {
    let review = Review::read()?;
    review.create_account(cluster).await?;
    // Admissions need neither the STS nor IAM, and the harness's webhook would watch the 100,000 accounts too.
    for peer in ["minio", "moto", "webhook"] {
        cluster.stop_peer(peer);
    }
    let mut servers = [
        Server::start(Kind::Irsa, cluster, "load")?,
        Server::start(Kind::Reference, cluster, "load")?,
    ];
    for server in &mut servers {
        server.wait_ready(cluster).await?;
    }
    let mut pods = Vec::new();
    for server in &servers {
        pods.push(wait_patched(cluster, server, &review.body, crate::REVIEW_ROLE_ARN).await?);
    }
    eprintln!(
        "[bench] both patches applied to the review's pod; differences (JSON pointer: irsa / reference):"
    );
    let differences = agree::differences(&pods[0], &pods[1]);
    if differences.is_empty() {
        eprintln!("[bench]   (none, list entries paired by name)");
    }
    for line in differences {
        eprintln!("[bench]   {line}");
    }
    let disagreements = agree::disagreements(["irsa", "reference"], [&pods[0], &pods[1]]);
    if !disagreements.is_empty() {
        bail!(
            "irsa and the reference give the pod different credentials:\n{}",
            disagreements.join("\n")
        );
    }
    eprintln!(
        "[bench] they agree on every container's credentials: {}",
        serde_json::to_string(&agree::credentials(&pods[0]))?
    );
    check_loopback(cluster, &servers)?;

    let mut results: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    println!(
        "\n| round | server | saturation, 16 connections | p99 at a fixed 2,000 req/s, 4 connections (rate reached) | its p50 / p90 / p99.9 | server CPU per admission |\n|---|---|---|---|---|---|"
    );
    for r in 1..=rounds {
        for (i, server) in servers.iter().enumerate() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let result = round(cluster, server, &review, seconds).await?;
            println!(
                "| {r} | {} | {:.0} req/s | {:.3} ms ({:.0} req/s) | {:.3} / {:.3} / {:.3} ms | {:.1} µs |",
                server.kind.label(),
                result.saturation_rps,
                result.fixed.p99_ms,
                result.fixed.rps,
                result.fixed.p50_ms,
                result.fixed.p90_ms,
                result.fixed.p999_ms,
                result.cpu_us_per_admission
            );
            results[i].push(result);
        }
    }
    check_loopback(cluster, &servers)?;
    for server in &mut servers {
        if let Runs::Reference { process } = &server.runs {
            // What it logs at its default verbosity, and whether it tried to reach anything (for the record).
            let log = std::fs::read_to_string(process.log()).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let shown = if lines.len() <= 10 {
                lines.join("\n")
            } else {
                format!(
                    "{}\n...\n{}",
                    lines[..5].join("\n"),
                    lines[lines.len() - 3..].join("\n")
                )
            };
            eprintln!(
                "[bench] {} logged {} lines from its start to the end of the rounds:\n{shown}",
                server.name,
                lines.len(),
            );
        }
        server.stop(cluster);
    }

    // Memory, from fresh processes: what the load left in their heaps is not what users' clusters cost them.
    let mut servers = [
        Server::start(Kind::Irsa, cluster, "memory")?,
        Server::start(Kind::Reference, cluster, "memory")?,
    ];
    for server in &mut servers {
        server.wait_ready(cluster).await?;
        wait_patched(cluster, server, &review.body, crate::REVIEW_ROLE_ARN).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = servers
        .iter()
        .map(|s| Ok(rss_kib(s.pid(cluster)?)?.0))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    let (namespaces, created) = create_accounts(cluster, accounts).await?;
    // Created last: a server that serves it has seen every account before it (one watch, in order).
    create_annotated_account(
        cluster,
        SENTINEL_NAMESPACE,
        SENTINEL_ACCOUNT,
        SENTINEL_ROLE_ARN,
    )
    .await?;
    let mut sentinel = review.body.clone();
    sentinel["request"]["namespace"] = json!(SENTINEL_NAMESPACE);
    sentinel["request"]["object"]["metadata"]["namespace"] = json!(SENTINEL_NAMESPACE);
    sentinel["request"]["object"]["spec"]["serviceAccountName"] = json!(SENTINEL_ACCOUNT);
    if let Runs::Irsa { admin } = &servers[0].runs {
        // The review's account, the sentinel and the created ones.
        wait_indexed(cluster, admin, accounts + 2).await?;
    }
    for server in &servers {
        wait_patched(cluster, server, &sentinel, SENTINEL_ROLE_ARN).await?;
    }
    let caught_up = servers
        .iter()
        .map(|s| Ok(rss_kib(s.pid(cluster)?)?.0))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    // Let both finish what the burst of events started (the reference's informer and its garbage collector).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let settled = servers
        .iter()
        .map(|s| rss_kib(s.pid(cluster)?))
        .collect::<anyhow::Result<Vec<(u64, u64)>>>()?;
    check_loopback(cluster, &servers)?;

    let [irsa, reference] = &results;
    let pick = |rounds: &[Round], f: fn(&Round) -> f64| rounds.iter().map(f).collect::<Vec<f64>>();
    println!(
        "\n| figure ({rounds} rounds each, alternating; {seconds} s per run) | irsa: rounds (median) | reference: rounds (median) | irsa / reference |\n|---|---|---|---|"
    );
    row(
        "saturation throughput, 16 connections, req/s",
        &pick(irsa, |r| r.saturation_rps),
        &pick(reference, |r| r.saturation_rps),
        0,
    );
    row(
        "server CPU per admission, µs (`/proc/<pid>/stat` over a round)",
        &pick(irsa, |r| r.cpu_us_per_admission),
        &pick(reference, |r| r.cpu_us_per_admission),
        1,
    );
    row(
        "p99 at a fixed 2,000 req/s, 4 connections, ms",
        &pick(irsa, |r| r.fixed.p99_ms),
        &pick(reference, |r| r.fixed.p99_ms),
        3,
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    row("RSS idle, MiB", &[mib(idle[0])], &[mib(idle[1])], 1);
    row(
        &format!(
            "RSS with {accounts} ServiceAccounts ({namespaces} namespaces, created in {:.0} s), MiB, at catch-up",
            created.as_secs_f64()
        ),
        &[mib(caught_up[0])],
        &[mib(caught_up[1])],
        1,
    );
    row(
        &format!("RSS with {accounts} ServiceAccounts, MiB, 10 s later"),
        &[mib(settled[0].0)],
        &[mib(settled[1].0)],
        1,
    );
    row(
        "peak RSS (VmHWM) of the memory run, MiB",
        &[mib(settled[0].1)],
        &[mib(settled[1].1)],
        1,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
