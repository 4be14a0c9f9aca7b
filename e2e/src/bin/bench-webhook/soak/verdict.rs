//! The soak's verdict, from the series of windows it measured: no I/O here, so every rule has a unit test.

use std::fmt;

use crate::reference::median;

/// One window of a soak: what the client saw, and the server's state at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Responses received (any status).
    pub requests: u64,
    /// Responses per second over the window.
    pub rps: f64,
    /// Responses whose status was not 200.
    pub non_200: u64,
    /// Requests that got no answer at all (connect, TLS or I/O errors).
    pub errors: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// The server's VmRSS after the window, KiB.
    pub rss_kib: u64,
    /// The server's open file descriptors after the window.
    pub fds: u64,
    /// The server's CPU (user + system) over the window, percent of one core.
    pub cpu_percent: f64,
}

/// The thresholds of the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Windows at the start left out of the RSS, fd and p99 comparisons (allocator pools, TLS session caches
    /// and the runtime's threads settle in the first one).
    pub warm_up: usize,
    /// How much the RSS may grow from the first window after the warm-up to the last (0.05 = 5 %).
    pub rss_growth: f64,
    /// How many more file descriptors the last window may hold than the first after the warm-up (a watch
    /// reconnecting to kube-apiserver, a connection still closing).
    pub fd_allowance: u64,
    /// How many windows at each end the p99 comparison takes the median of (fewer when the run is short).
    pub p99_span: usize,
    /// How many times the first windows' median p99 the last windows' may be.
    pub p99_factor: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            warm_up: 1,
            rss_growth: 0.05,
            fd_allowance: 4,
            p99_span: 3,
            p99_factor: 2.0,
        }
    }
}

/// The four things a soak checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Every window answered, all 200, no error.
    Errors,
    /// The RSS did not grow.
    Rss,
    /// The file descriptors did not grow.
    Fds,
    /// The p99 did not drift.
    P99,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Errors => "zero errors",
            Check::Rss => "RSS flat",
            Check::Fds => "fds flat",
            Check::P99 => "p99 stable",
        })
    }
}

/// The outcome of one check: whether it passed, and the figures it compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Which check.
    pub check: Check,
    /// Whether it passed.
    pub passed: bool,
    /// The rule and the figures, for the report.
    pub detail: String,
}

/// Every check against `windows` (in the order they ran), by `rules`.
pub fn verdict(windows: &[Window], rules: &Rules) -> Vec<Outcome> {
    vec![
        errors(windows),
        rss(windows, rules),
        fds(windows, rules),
        p99(windows, rules),
    ]
}

fn outcome(check: Check, passed: bool, detail: String) -> Outcome {
    Outcome {
        check,
        passed,
        detail,
    }
}

fn errors(windows: &[Window]) -> Outcome {
    let bad: Vec<String> = windows
        .iter()
        .enumerate()
        .filter(|(_, w)| w.requests == 0 || w.non_200 > 0 || w.errors > 0)
        .map(|(i, w)| {
            format!(
                "window {}: {} requests, {} non-200, {} errors",
                i + 1,
                w.requests,
                w.non_200,
                w.errors
            )
        })
        .collect();
    let total: u64 = windows.iter().map(|w| w.requests).sum();
    if windows.is_empty() {
        outcome(Check::Errors, false, "no window ran".into())
    } else if bad.is_empty() {
        outcome(
            Check::Errors,
            true,
            format!(
                "{total} requests in {} windows, all 200, no error",
                windows.len()
            ),
        )
    } else {
        outcome(Check::Errors, false, bad.join("; "))
    }
}

/// The first window after the warm-up and the last, or why there are not enough windows to compare.
fn ends<'w>(windows: &'w [Window], rules: &Rules) -> Result<(&'w [Window], String), String> {
    let compared = windows.get(rules.warm_up..).unwrap_or_default();
    if compared.len() < 2 {
        return Err(format!(
            "too few windows: {} ran, the comparison needs {} (a warm-up of {} and two to compare)",
            windows.len(),
            rules.warm_up + 2,
            rules.warm_up
        ));
    }
    Ok((
        compared,
        format!(
            "window {} (the first after a warm-up of {}) against window {} (the last)",
            rules.warm_up + 1,
            rules.warm_up,
            windows.len()
        ),
    ))
}

fn rss(windows: &[Window], rules: &Rules) -> Outcome {
    let (compared, which) = match ends(windows, rules) {
        Ok(ends) => ends,
        Err(why) => return outcome(Check::Rss, false, why),
    };
    let (first, last) = (compared[0].rss_kib, compared[compared.len() - 1].rss_kib);
    let growth = (last as f64 - first as f64) / first.max(1) as f64;
    // A leak is what a soak looks for: RSS that falls (the allocator returning memory) is not one.
    let passed = growth <= rules.rss_growth;
    outcome(
        Check::Rss,
        passed,
        format!(
            "VmRSS {:.1} MB -> {:.1} MB ({:+.1} %, at most +{:.0} % allowed), {which}",
            first as f64 / 1024.0,
            last as f64 / 1024.0,
            growth * 100.0,
            rules.rss_growth * 100.0
        ),
    )
}

fn fds(windows: &[Window], rules: &Rules) -> Outcome {
    let (compared, which) = match ends(windows, rules) {
        Ok(ends) => ends,
        Err(why) => return outcome(Check::Fds, false, why),
    };
    let (first, last) = (compared[0].fds, compared[compared.len() - 1].fds);
    let passed = last <= first + rules.fd_allowance;
    outcome(
        Check::Fds,
        passed,
        format!(
            "{first} -> {last} open fds (at most +{} allowed), {which}",
            rules.fd_allowance
        ),
    )
}

fn p99(windows: &[Window], rules: &Rules) -> Outcome {
    let compared = match ends(windows, rules) {
        Ok((compared, _)) => compared,
        Err(why) => return outcome(Check::P99, false, why),
    };
    // The two ends never overlap: a short run compares fewer windows at each end.
    let span = rules.p99_span.min(compared.len() / 2).max(1);
    let p99s: Vec<f64> = compared.iter().map(|w| w.p99_ms).collect();
    let first = median(&p99s[..span]);
    let last = median(&p99s[p99s.len() - span..]);
    // A NaN (a window with no latency) fails the comparison, as it should.
    let passed = last <= rules.p99_factor * first;
    let from = rules.warm_up + 1;
    outcome(
        Check::P99,
        passed,
        format!(
            "median p99 of windows {from}-{} {first:.3} ms, of windows {}-{} {last:.3} ms ({:.2}x, at most {:.0}x allowed)",
            from + span - 1,
            windows.len() - span + 1,
            windows.len(),
            last / first,
            rules.p99_factor
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A healthy window: 60 s at 16,000 req/s, all 200, RSS 20 MB, 12 fds, p99 1 ms.
    fn steady() -> Window {
        Window {
            requests: 960_000,
            rps: 16_000.0,
            non_200: 0,
            errors: 0,
            p50_ms: 0.3,
            p99_ms: 1.0,
            rss_kib: 20_480,
            fds: 12,
            cpu_percent: 90.0,
        }
    }

    fn series(n: usize, change: impl Fn(usize, &mut Window)) -> Vec<Window> {
        (0..n)
            .map(|i| {
                let mut w = steady();
                change(i, &mut w);
                w
            })
            .collect()
    }

    fn failed(windows: &[Window]) -> Vec<Check> {
        verdict(windows, &Rules::default())
            .into_iter()
            .filter(|o| !o.passed)
            .map(|o| o.check)
            .collect()
    }

    #[test]
    fn a_steady_series_passes_every_check() {
        assert_eq!(failed(&series(10, |_, _| ())), []);
    }

    #[test]
    fn growth_during_the_warm_up_window_is_not_held_against_the_server() {
        let windows = series(10, |i, w| {
            if i == 0 {
                w.rss_kib = 12_000;
                w.fds = 6;
                w.p99_ms = 9.0;
            }
        });
        assert_eq!(failed(&windows), []);
    }

    #[test]
    fn a_leaking_rss_fails() {
        // 1 % per window: 9 % over the windows compared, each step small.
        let windows = series(10, |i, w| w.rss_kib = 20_480 + 205 * i as u64);
        assert_eq!(failed(&windows), [Check::Rss]);
    }

    #[test]
    fn rss_within_five_percent_passes_and_just_over_fails() {
        let at = |last: u64| {
            series(6, move |i, w| {
                w.rss_kib = if i == 5 { last } else { 20_000 }
            })
        };
        assert_eq!(failed(&at(21_000)), []);
        assert_eq!(failed(&at(21_001)), [Check::Rss]);
    }

    #[test]
    fn falling_rss_is_not_a_leak() {
        let windows = series(6, |i, w| w.rss_kib = 30_000 - 1_000 * i as u64);
        assert_eq!(failed(&windows), []);
    }

    #[test]
    fn a_growing_fd_count_fails() {
        let windows = series(10, |i, w| w.fds = 12 + i as u64);
        assert_eq!(failed(&windows), [Check::Fds]);
    }

    #[test]
    fn fds_within_the_allowance_pass() {
        let windows = series(10, |i, w| w.fds = if i == 9 { 16 } else { 12 });
        assert_eq!(failed(&windows), []);
    }

    #[test]
    fn one_window_with_an_error_fails() {
        let windows = series(10, |i, w| w.errors = u64::from(i == 4));
        let outcomes = verdict(&windows, &Rules::default());
        assert_eq!(failed(&windows), [Check::Errors]);
        assert!(outcomes[0].detail.contains("window 5"), "{outcomes:?}");
    }

    #[test]
    fn one_window_with_a_non_200_answer_fails() {
        let windows = series(10, |i, w| w.non_200 = u64::from(i == 9));
        assert_eq!(failed(&windows), [Check::Errors]);
    }

    #[test]
    fn a_window_without_any_answer_fails() {
        let windows = series(10, |i, w| {
            if i == 7 {
                w.requests = 0;
                w.p99_ms = f64::NAN;
            }
        });
        assert!(failed(&windows).contains(&Check::Errors));
    }

    #[test]
    fn a_p99_drift_fails() {
        // 1 ms for the first windows, 2.5 ms at the end.
        let windows = series(10, |i, w| w.p99_ms = if i >= 7 { 2.5 } else { 1.0 });
        assert_eq!(failed(&windows), [Check::P99]);
    }

    #[test]
    fn one_slow_window_at_the_end_is_not_a_drift_but_a_median_is() {
        let one = series(10, |i, w| w.p99_ms = if i == 9 { 5.0 } else { 1.0 });
        assert_eq!(failed(&one), []);
        let two = series(10, |i, w| w.p99_ms = if i >= 8 { 5.0 } else { 1.0 });
        assert_eq!(failed(&two), [Check::P99]);
    }

    #[test]
    fn a_short_run_compares_fewer_windows_at_each_end() {
        // Three windows: the warm-up, then one at each end.
        let windows = series(3, |i, w| w.p99_ms = if i == 2 { 2.5 } else { 1.0 });
        assert_eq!(failed(&windows), [Check::P99]);
        let outcome = &verdict(&windows, &Rules::default())[3];
        assert!(outcome.detail.contains("windows 2-2"), "{outcome:?}");
        assert!(outcome.detail.contains("windows 3-3"), "{outcome:?}");
    }

    #[test]
    fn too_few_windows_cannot_pass() {
        assert_eq!(
            failed(&series(2, |_, _| ())),
            [Check::Rss, Check::Fds, Check::P99]
        );
        assert_eq!(
            failed(&[]),
            [Check::Errors, Check::Rss, Check::Fds, Check::P99]
        );
    }
}
