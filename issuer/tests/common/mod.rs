//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use irsa_testing::wait::{Check, wait_until};

/// A fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `(file, kid)` pairs that make.sh computed with openssl.
pub fn expected_kids() -> Vec<(String, String)> {
    std::fs::read_to_string(fixture("expected-kids.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (f, k) = l.split_once(' ').unwrap();
            (f.to_string(), k.to_string())
        })
        .collect()
}

/// The kid openssl computed for `file`.
pub fn kid_of(file: &str) -> String {
    expected_kids()
        .into_iter()
        .find(|(f, _)| f == file)
        .unwrap_or_else(|| panic!("{file} not in expected-kids.txt"))
        .1
}

/// `irsa_issuer_reload_errors_total{source=...}` from the admin port (0 while absent).
pub async fn reload_errors(admin_base: &str, source: &str) -> u64 {
    let text = reqwest::get(format!("{admin_base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("irsa_issuer_reload_errors_total{{source=\"{source}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Waits (up to 15 s) until the reload error count of `source` reaches `at_least`.
pub async fn wait_for_reload_errors(admin_base: &str, source: &str, at_least: u64) {
    let what = format!("{source} counts {at_least} reload errors");
    wait_until(Duration::from_secs(15), &what, || async {
        let count = reload_errors(admin_base, source).await;
        Check::ready_if(count >= at_least, || format!("{count} reload errors"))
    })
    .await
    .unwrap();
}
