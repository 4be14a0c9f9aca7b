//! The load generator: `oha` (the binary in `$OHA`) over TLS with keep-alive, its JSON report read back.

use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// What one `oha` run measured.
pub struct Report {
    /// Responses per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile latency, ms: with p99.9, whether a p99 is the tail of one shape or a few slow outliers.
    pub p90_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile latency, ms.
    pub p999_ms: f64,
    /// Responses received (any status).
    pub responses: u64,
    /// oha's success rate (0..1).
    pub success: f64,
    /// Responses by HTTP status, as oha reports them.
    pub statuses: Value,
    /// Requests that got no HTTP answer (connect, TLS or I/O errors), as oha's `errorDistribution` counts them.
    pub errors: u64,
    /// Those errors by message.
    pub error_kinds: Value,
}

impl Report {
    /// Responses whose status is not 200.
    pub fn non_200(&self) -> u64 {
        self.responses
            .saturating_sub(self.statuses["200"].as_u64().unwrap_or(0))
    }
}

/// One run of `-z duration` with `extra` flags against `url`, POSTing the file `body` if given.
pub fn run(
    duration: &str,
    extra: &[&str],
    body: Option<&str>,
    url: &str,
) -> anyhow::Result<Report> {
    let oha = std::env::var("OHA").unwrap_or_else(|_| "oha".into());
    let mut command = Command::new(&oha);
    if single_threaded(extra) {
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
    let statuses = report["statusCodeDistribution"].clone();
    let count = |v: &Value| {
        v.as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    };
    let responses = count(&statuses);
    let error_kinds = report["errorDistribution"].clone();
    Ok(Report {
        rps: summary["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        p50_ms: percentile("p50"),
        p90_ms: percentile("p90"),
        p99_ms: percentile("p99"),
        p999_ms: percentile("p99.9"),
        responses,
        success: summary["successRate"].as_f64().unwrap_or(f64::NAN),
        statuses,
        errors: count(&error_kinds),
        error_kinds,
    })
}

/// At a modest fixed rate one client thread is plenty, and oha's own cross-thread wake-ups would otherwise be
/// most of the tail it reports; at saturation, and at rates one thread cannot keep (the soak's 80 % of
/// saturation: one oha thread fell behind at 50,000 GETs/s here, and its latency correction then reports its
/// own lag), it gets every core.
fn single_threaded(extra: &[&str]) -> bool {
    const ONE_THREAD_KEEPS: f64 = 10_000.0;
    extra
        .iter()
        .position(|a| *a == "-q")
        .and_then(|i| extra.get(i + 1)?.parse::<f64>().ok())
        .is_some_and(|rate| rate <= ONE_THREAD_KEEPS)
}

/// The command line of a run, as the tables print it.
pub fn command_line(duration: &str, extra: &[&str], body: bool) -> String {
    format!(
        "{}oha -z {duration} {}{}",
        if single_threaded(extra) {
            "TOKIO_WORKER_THREADS=1 "
        } else {
            ""
        },
        extra.join(" "),
        if body {
            " -m POST -D review-6kb.json"
        } else {
            ""
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_modest_fixed_rates_run_on_one_client_thread() {
        assert!(single_threaded(&["-c", "4", "-q", "2000"]));
        assert!(!single_threaded(&["-c", "16", "-q", "19355"]));
        assert!(!single_threaded(&["-c", "16"]));
        assert!(!single_threaded(&["-q"]));
        assert!(!single_threaded(&["-q", "fast"]));
    }
}
