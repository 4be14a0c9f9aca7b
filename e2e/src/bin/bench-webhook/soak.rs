//! Soak: each server of the topology at 80 % of its measured saturation for many minutes, to show that nothing
//! grows (memory, file descriptors, the tail) and nothing fails.
//!
//! For the webhook (the 6.6 KB review POSTed to `/mutate`) and then the issuer (GET `/openid/v1/jwks`), both
//! over TLS: `oha -c 16` for 10 s measures saturation, then back-to-back windows of `oha -c 16 -q <80 %>
//! --latency-correction -w` (`-w` lets the requests in flight at a window's end finish, so they are not
//! counted as errors). After each window the server's VmRSS, open fds and CPU are read from `/proc`; the
//! verdict ([`verdict`]) is printed per server with a markdown table of the windows.

mod verdict;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use irsa_e2e::cluster::Cluster;

use crate::Review;
use crate::oha;
use crate::procstat::{cpu_ticks, open_fds, rss_kib, ticks_per_second};
use verdict::{Rules, Window};

/// Connections for both the saturation probe and the soak, as the load mode's saturation row.
const CONNECTIONS: &str = "16";
/// How long saturation is measured.
const SATURATION: &str = "10s";
/// The share of saturation the soak runs at.
const LOAD: f64 = 0.8;

/// One server under soak.
struct Target<'a> {
    /// Its name in the report and in the cluster (`webhook`, `issuer`).
    name: &'a str,
    /// What is requested, for the report.
    request: &'a str,
    /// The URL.
    url: String,
    /// The file POSTed, or none for a GET.
    body: Option<String>,
}

/// Soaks the webhook, then the issuer (those of them that `servers`, a comma-separated list, names), for
/// `minutes` each in windows of `window_seconds`; fails naming every verdict that failed, after all ran.
pub async fn run(
    cluster: &Cluster,
    servers: &str,
    minutes: u64,
    window_seconds: u64,
) -> anyhow::Result<()> {
    if window_seconds == 0 || minutes * 60 < window_seconds {
        bail!(
            "--minutes {minutes} --window-seconds {window_seconds}: a soak needs at least one whole window"
        );
    }
    let windows = minutes * 60 / window_seconds;
    let review = Review::read()?;
    let targets = [
        Target {
            name: "webhook",
            request: "POST /mutate, the 6.6 KB review",
            url: cluster.webhook_url.clone(),
            body: Some(review.path.display().to_string()),
        },
        Target {
            name: "issuer",
            request: "GET /openid/v1/jwks",
            url: format!("{}/openid/v1/jwks", cluster.issuer_url),
            body: None,
        },
    ];
    // Checked against the targets themselves, before the topology is touched.
    let wanted: Vec<&str> = servers.split(',').map(str::trim).collect();
    if let Some(unknown) = wanted
        .iter()
        .find(|name| !targets.iter().any(|t| t.name == **name))
    {
        let known: Vec<&str> = targets.iter().map(|t| t.name).collect();
        bail!(
            "--servers {servers}: {unknown:?} is not one of {}",
            known.join(", ")
        );
    }
    review.create_account(cluster).await?;
    // Neither server needs the STS or IAM during the soak: stop them so their background work stays out of it.
    cluster.stop_peer("minio");
    cluster.stop_peer("moto");
    // Let the watch deliver the account: the soak measures the cache-hit path, as the load mode does.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut failures = Vec::new();
    for target in targets.iter().filter(|t| wanted.contains(&t.name)) {
        let pid = cluster
            .pid_of(target.name)
            .with_context(|| format!("the {}'s PID", target.name))?;
        for failed in soak(target, pid, windows, window_seconds)? {
            failures.push(format!("{}: {failed}", target.name));
        }
    }
    if !failures.is_empty() {
        bail!("soak verdict failed: {}", failures.join("; "));
    }
    Ok(())
}

/// Soaks one server; prints its table and verdict and returns the checks that failed.
fn soak(
    target: &Target,
    pid: u32,
    windows: u64,
    window_seconds: u64,
) -> anyhow::Result<Vec<verdict::Check>> {
    let body = target.body.as_deref();
    let saturation = oha::run(SATURATION, &["-c", CONNECTIONS], body, &target.url)?;
    let rate = (saturation.rps * LOAD).round();
    if !rate.is_finite() || rate < 1.0 {
        bail!(
            "{}: saturation measured {} req/s, nothing to soak at",
            target.name,
            saturation.rps
        );
    }
    let rate_arg = format!("{rate:.0}");
    let duration = format!("{window_seconds}s");
    let soak_flags = [
        "-c",
        CONNECTIONS,
        "-q",
        rate_arg.as_str(),
        "--latency-correction",
        "-w",
    ];
    eprintln!(
        "[soak] {}: saturation {:.0} req/s (p99 {:.3} ms); {windows} windows of {window_seconds} s at {rate_arg} req/s",
        target.name, saturation.rps, saturation.p99_ms
    );
    let ticks = ticks_per_second();
    let started = Instant::now();
    let mut series = Vec::new();
    for i in 1..=windows {
        let cpu_before = cpu_ticks(pid)?;
        let window_start = Instant::now();
        let report = oha::run(&duration, &soak_flags, body, &target.url)?;
        let elapsed = window_start.elapsed().as_secs_f64();
        let cpu = (cpu_ticks(pid)? - cpu_before) as f64 / ticks / elapsed * 100.0;
        // The server's state once the window's connections are closed: what it keeps, not what is in flight.
        std::thread::sleep(Duration::from_millis(500));
        let window = Window {
            requests: report.responses,
            rps: report.rps,
            non_200: report.non_200(),
            errors: report.errors,
            p50_ms: report.p50_ms,
            p99_ms: report.p99_ms,
            rss_kib: rss_kib(pid)?.0,
            fds: open_fds(pid)?,
            cpu_percent: cpu,
        };
        eprintln!(
            "[soak] {} window {i}/{windows} ({:.0} s in): {:.0} req/s, p99 {:.3} ms, RSS {:.1} MB, {} fds, CPU {:.0} %{}",
            target.name,
            started.elapsed().as_secs_f64(),
            window.rps,
            window.p99_ms,
            window.rss_kib as f64 / 1024.0,
            window.fds,
            window.cpu_percent,
            if report.errors > 0 {
                format!(", errors {}", report.error_kinds)
            } else {
                String::new()
            }
        );
        series.push(window);
    }
    let rules = Rules::default();
    println!(
        "\n{} soak: {}, {windows} x {window_seconds} s at {rate_arg} req/s (80 % of {:.0} req/s measured with `oha -z {SATURATION} -c {CONNECTIONS}`), `{}`\n",
        target.name,
        target.request,
        saturation.rps,
        oha::command_line(&duration, &soak_flags, body.is_some()),
    );
    println!(
        "| window | requests | req/s | non-200 | errors | p50 ms | p99 ms | VmRSS MB | open fds | CPU % of a core |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, w) in series.iter().enumerate() {
        println!(
            "| {}{} | {} | {:.0} | {} | {} | {:.3} | {:.3} | {:.1} | {} | {:.0} |",
            i + 1,
            if i < rules.warm_up { " (warm-up)" } else { "" },
            w.requests,
            w.rps,
            w.non_200,
            w.errors,
            w.p50_ms,
            w.p99_ms,
            w.rss_kib as f64 / 1024.0,
            w.fds,
            w.cpu_percent
        );
    }
    println!();
    let mut failed = Vec::new();
    for outcome in verdict::verdict(&series, &rules) {
        println!(
            "- {} {}: **{}**, {}",
            target.name,
            outcome.check,
            if outcome.passed { "pass" } else { "FAIL" },
            outcome.detail
        );
        if !outcome.passed {
            failed.push(outcome.check);
        }
    }
    Ok(failed)
}
