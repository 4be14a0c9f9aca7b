//! What the binary prints when a command fails: one line, each cause once.
//!
//! Library errors often name their cause in their own message and also expose it as their source; printed
//! with anyhow's `{:#}` every such layer repeated it ("Is a directory (os error 21): Is a directory (os error
//! 21)"). The binary prints the chain with `irsa_serve::logging::error_chain`, which keeps each cause once.

use std::process::Command;

fn stderr_of(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_irsa"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("run irsa");
    assert!(!out.status.success(), "{args:?} must fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn each_cause_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap();
    let missing = format!("{dir}/no-such-kubeconfig");
    let cases: [(Vec<&str>, &str); 2] = [
        (
            vec!["issuer", "jwks", "--public-key-file", dir],
            "Is a directory (os error 21)",
        ),
        (
            vec![
                "webhook",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--tls-cert-file",
                dir,
                "--tls-key-file",
                dir,
                "--kubeconfig",
                &missing,
            ],
            "No such file or directory (os error 2)",
        ),
    ];
    for (args, cause) in cases {
        let err = stderr_of(&args);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert_eq!(
            err.matches(cause).count(),
            1,
            "{args:?}: {cause:?} once: {err}"
        );
    }
}

// `irsa doctor` has its own exit codes (0 all pass, 1 a check failed, 2 could not run), and gives them through
// the binary's own return path: stdout flushed, no `process::exit` from inside a library.
#[test]
fn doctor_that_cannot_run_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let out = Command::new(env!("CARGO_BIN_EXE_irsa"))
        .args(["doctor", "--namespace", "ns", "--service-account", "sa"])
        .arg(format!("--kubeconfig={}", missing.display()))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("run irsa");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not run"),
        "{out:?}"
    );
}
