//! One issuer URL, one verdict: `irsa issuer publish` and `irsa associate-oidc-provider` judge the same URL the
//! same way, because both parse it with `irsa_core::IssuerUrl`. Before that type, the issuer parsed by hand and
//! the IAM side with the `url` crate, and the two could disagree (a `..` segment, a 300-character URL).
//!
//! Run through the real binary, so the test covers the commands' wiring and not only the type. Every host is
//! a loopback address: `associate-oidc-provider` fetches discovery from an accepted URL (it gets "connection
//! refused" from 127.0.0.1:9, which is past the URL check), and no traffic may leave the machine.

use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../issuer/tests/fixtures/p256.key"
);

fn irsa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irsa"))
        .args(args)
        // No AWS credentials or endpoints from the developer's environment: the URL must be judged first.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run irsa")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What `issuer publish --dry-run` says of `url`: `Ok(())`, or the error line.
fn publish_verdict(url: &str, site: &Path) -> Result<(), String> {
    let out = irsa(&[
        "issuer",
        "publish",
        "--dry-run",
        "--issuer-url",
        url,
        "--public-key-file",
        KEY,
        "--out",
        site.to_str().unwrap(),
    ]);
    if out.status.success() {
        Ok(())
    } else {
        Err(stderr(&out))
    }
}

/// What `associate-oidc-provider` says of `url`: `Ok(())` when it got past the URL (and failed to fetch
/// discovery from a closed loopback port), or the error line when it refused the URL.
fn associate_verdict(url: &str) -> Result<(), String> {
    let out = irsa(&["associate-oidc-provider", "--issuer-url", url]);
    assert!(
        !out.status.success(),
        "{url}: nothing listens there, so it cannot succeed"
    );
    let err = stderr(&out);
    if err.contains("issuer URL") {
        Err(err)
    } else {
        Ok(())
    }
}

#[test]
fn both_commands_judge_each_url_the_same() {
    let site = tempfile::tempdir().unwrap();
    let accepted = [
        "https://127.0.0.1:9",
        "https://127.0.0.1:9/",
        "https://127.0.0.1:9/cluster-1",
        "https://127.0.0.1:9/cluster-1/",
        "https://LOCALHOST:9/c",
        "https://[::1]:9/c",
        "https://127.0.0.1:9/a%20b",
    ];
    let refused = [
        "http://127.0.0.1:9/c",
        "ftp://127.0.0.1:9/c",
        "HTTPS://127.0.0.1:9/c",
        "127.0.0.1:9/c",
        "https://127.0.0.1:9/c?x=1",
        "https://127.0.0.1:9/c#f",
        "https://user@127.0.0.1:9/c",
        "https://127.0.0.1:9/c d",
        "https://",
        "https://127.0.0.1:99999/c",
        "https://127.0.0.1:9//c",
        "https://127.0.0.1:9/a/../c",
        "https://127.0.0.1:9/a/./c",
    ];
    let too_long = format!("https://127.0.0.1:9/{}", "a".repeat(255));
    for url in accepted {
        assert_eq!(
            publish_verdict(url, site.path()),
            Ok(()),
            "issuer publish, {url}"
        );
        assert_eq!(
            associate_verdict(url),
            Ok(()),
            "associate-oidc-provider, {url}"
        );
    }
    for url in refused.iter().copied().chain([too_long.as_str()]) {
        let publish = publish_verdict(url, site.path()).expect_err(url);
        let associate = associate_verdict(url).expect_err(url);
        // The same rule refused it, so the same words explain it.
        assert_eq!(publish, associate, "{url}");
    }
    assert_eq!(
        std::fs::read_dir(site.path()).unwrap().count(),
        0,
        "--dry-run writes nothing"
    );
}
