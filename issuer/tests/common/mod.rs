//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

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
