//! `irsa signer rotate` and `irsa signer status`, called as the binary calls them: their output, the files they
//! write or remove, and every bad input leaving the directory as it was.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Parser;
use common::{expected_kid, fixture};
use irsa_signer::cmd::rotate::{RotateArgs, rotate};
use irsa_signer::cmd::status::{StatusArgs, status};
use irsa_signer::key_file;

#[derive(Debug, Parser)]
enum Cmd {
    Rotate(RotateArgs),
    Status(StatusArgs),
}

fn run(args: &[&str]) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match Cmd::try_parse_from([&["signer"], args].concat())? {
        Cmd::Rotate(args) => runtime.block_on(rotate(&args, &mut out))?,
        Cmd::Status(args) => runtime.block_on(status(&args, &mut out))?,
    }
    Ok(String::from_utf8(out)?)
}

fn dir_arg(dir: &Path) -> String {
    format!("--key-dir={}", dir.display())
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_first_rotation_writes_a_key_that_signs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["rotate", &dir_arg(dir.path())]).unwrap();
    let names = files(dir.path());
    assert_eq!(names.len(), 1, "{names:?}");
    let path = dir.path().join(&names[0]);
    assert!(
        key_file::time_in_name(&names[0]).is_some(),
        "named after its time: {names:?}"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "PKCS#8");
    let key = irsa_signer::keys::SigningKey::load(&path).unwrap();
    assert_eq!(key.algorithm().as_str(), "RS256");
    assert!(out.contains(key.kid()), "{out}");
    assert!(out.contains("signs now"), "{out}");
}

#[test]
fn a_second_rotation_is_pre_published_and_says_when_it_signs() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("sa.key");
    std::fs::copy(fixture("rsa2048.key"), &old).unwrap();
    // A key file without a time in its name: its modification time counts (a minute ago: not this second).
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    let out = run(&["rotate", &dir_arg(dir.path()), "--algorithm=ES256"]).unwrap();
    assert!(out.contains("signs from"), "{out}");
    assert!(
        out.contains("in 1h 5m"),
        "the default pre-publication: {out}"
    );
    assert!(out.contains(&expected_kid("rsa2048.key")), "{out}");
    let new = files(dir.path())
        .into_iter()
        .find(|n| n.starts_with("key-"))
        .unwrap();
    let key = irsa_signer::keys::SigningKey::load(&dir.path().join(new)).unwrap();
    assert_eq!(key.algorithm().as_str(), "ES256");

    let status = run(&["status", &dir_arg(dir.path())]).unwrap();
    assert!(status.starts_with("STATE"), "{status}");
    let lines: Vec<&str> = status.lines().collect();
    assert!(
        lines[1].starts_with("active") && lines[1].contains("sa.key"),
        "{status}"
    );
    assert!(lines[2].starts_with("pre-published"), "{status}");
    assert!(lines[3].contains("next change"), "{status}");

    let json: serde_json::Value =
        serde_json::from_str(&run(&["status", &dir_arg(dir.path()), "--output=json"]).unwrap())
            .unwrap();
    assert_eq!(json["signing"], expected_kid("rsa2048.key"));
    assert_eq!(
        json["keys"][0]["public_key_pem"].as_str().unwrap().trim(),
        std::fs::read_to_string(fixture("rsa2048.pub"))
            .unwrap()
            .trim(),
        "the PEM an issuer publishes"
    );
    assert_eq!(json["keys"][1]["state"], "pre-published");
    assert_eq!(json["keys"][1]["kid"], key.kid());
    assert!(json["keys"][1]["signs_from"].is_string(), "{json}");
    assert_eq!(json["policy"]["pre_publish_seconds"], 3900);
}

#[test]
fn prune_removes_only_retired_keys_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    // Replaced 10 days ago (retired), replaced 3 hours ago (retiring), signing since then.
    let (retired, retiring, active) = (
        key_file::file_name(now - 20 * day),
        key_file::file_name(now - 10 * day),
        key_file::file_name(now - Duration::from_secs(3 * 3600)),
    );
    std::fs::copy(fixture("p384.key"), dir.path().join(&retired)).unwrap();
    std::fs::copy(fixture("rsa2048.key"), dir.path().join(&retiring)).unwrap();
    std::fs::copy(fixture("p256.key"), dir.path().join(&active)).unwrap();
    let status = run(&["status", &dir_arg(dir.path())]).unwrap();
    for state in ["retired", "retiring", "active"] {
        assert!(
            status.lines().any(|l| l.starts_with(state)),
            "{state}: {status}"
        );
    }

    let out = run(&["rotate", &dir_arg(dir.path()), "--prune"]).unwrap();
    assert!(
        out.contains(&format!("removed {}", dir.path().join(&retired).display())),
        "{out}"
    );
    assert!(out.contains(&expected_kid("p384.key")), "{out}");
    let left = files(dir.path());
    assert!(!left.contains(&retired), "{left:?}");
    assert!(
        left.contains(&retiring) && left.contains(&active),
        "{left:?}"
    );
    assert_eq!(left.len(), 3, "the new key too: {left:?}");

    // Keys are named to the second: the next rotation waits for the next one.
    std::thread::sleep(Duration::from_secs(1));
    let out = run(&["rotate", &dir_arg(dir.path()), "--prune"]).unwrap();
    assert!(out.contains("no retired key to remove"), "{out}");
}

#[test]
fn a_missing_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = run(&["rotate", &dir_arg(&missing)]).unwrap_err();
    assert!(format!("{err:#}").contains("no such directory"), "{err:#}");
    assert!(!missing.exists());
    assert!(run(&["status", &dir_arg(&missing)]).is_err());
}

#[test]
fn a_directory_whose_keys_do_not_load_is_not_rotated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("rsa1024.key"), dir.path().join("small.pem")).unwrap();
    let err = run(&["rotate", &dir_arg(dir.path())]).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("small.pem") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(files(dir.path()), ["small.pem"]);
}

#[test]
fn a_pre_publication_shorter_than_the_jwks_cache_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = run(&["rotate", &dir_arg(dir.path()), "--pre-publish=10m"]).unwrap_err();
    assert!(format!("{err:#}").contains("too short"), "{err:#}");
    assert!(files(dir.path()).is_empty());
}

/// A directory no process can write into, even root's (which ignores modes): mode 0555 and, where that is not
/// enough, the immutable attribute. Undone on drop.
struct ReadOnly(PathBuf, bool);

impl ReadOnly {
    fn new(dir: &Path) -> ReadOnly {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = dir.join("probe");
        let immutable = std::fs::write(&probe, "").is_ok();
        if immutable {
            std::fs::remove_file(&probe).unwrap();
            let status = std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .expect("chattr, to make a directory read-only for root");
            assert!(status.success());
            assert!(
                std::fs::write(&probe, "").is_err(),
                "the directory is still writable"
            );
        }
        ReadOnly(dir.to_path_buf(), immutable)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status();
        }
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn a_read_only_directory_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("rsa2048.key"), dir.path().join("sa.key")).unwrap();
    let read_only = ReadOnly::new(dir.path());
    let err = run(&["rotate", &dir_arg(dir.path())]).unwrap_err();
    drop(read_only);
    assert!(
        format!("{err:#}").contains("cannot write a new key"),
        "{err:#}"
    );
    assert_eq!(files(dir.path()), ["sa.key"]);
}

#[test]
fn two_rotations_in_one_second_never_replace_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let at = SystemTime::now();
    let pem = key_file::generate(key_file::NewKeyAlgorithm::Es256).unwrap();
    let first = key_file::write_new(dir.path(), &pem, at).unwrap();
    let before = std::fs::read(&first).unwrap();
    let other = key_file::generate(key_file::NewKeyAlgorithm::Es256).unwrap();
    let err = key_file::write_new(dir.path(), &other, at).unwrap_err();
    assert!(matches!(err, key_file::WriteError::Exists(_)), "{err}");
    assert_eq!(std::fs::read(&first).unwrap(), before);
    assert_eq!(files(dir.path()).len(), 1, "no temporary file left");
}
