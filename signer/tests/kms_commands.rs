//! `irsa signer serve`, `rotate` and `status` with `--kms-key-set`, against moto's KMS (set
//! `IRSA_MOTO_ENDPOINT=http://127.0.0.1:PORT`, as hack/test.sh does; without it each test says "skipped").
//!
//! The commands configure their KMS client the standard way (environment), which a test cannot change in its
//! own process without `unsafe`: each test re-runs itself in a child process of this test binary with the AWS
//! environment pointing at moto, and the parent checks that the child passed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use irsa_signer::cmd::rotate::{RotateArgs, rotate};
use irsa_signer::cmd::serve::{ServeArgs, serve};
use irsa_signer::cmd::status::{StatusArgs, status};
use irsa_signer::kms::KmsKeySet;
use irsa_signer::proto::{FetchKeysRequest, SignJwtRequest};

/// Set in the child process: the test body runs there.
const CHILD: &str = "IRSA_SIGNER_TEST_CHILD";

/// In the parent: runs `test` alone in a child with the AWS environment set to moto and asserts it passed,
/// then returns `false`. In the child: returns `true` (run the body). Without moto: `false`, skipped.
fn in_child(test: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let Ok(endpoint) = std::env::var("IRSA_MOTO_ENDPOINT") else {
        println!(
            "skipped: set IRSA_MOTO_ENDPOINT=http://127.0.0.1:PORT (a running moto_server) to run"
        );
        return false;
    };
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("AWS_ENDPOINT_URL_KMS", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("IRSA_SIGNER_KEY_DIR")
        .env_remove("IRSA_SIGNER_KMS_KEY_SET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child run of {test} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    false
}

/// The test's own view of moto (not the commands' client): to look at the set from outside.
fn moto_set(name: &str) -> KmsKeySet {
    let endpoint = std::env::var("IRSA_MOTO_ENDPOINT").unwrap();
    KmsKeySet::new(common::moto_kms(&endpoint), name).unwrap()
}

/// Short rotation durations every command of a test shares (the policy check allows them: 3 s >= 1 + 1 s).
const SHORT: [&str; 4] = [
    "--pre-publish=3s",
    "--jwks-max-age=1",
    "--rotation-margin=1s",
    "--max-token-expiration-seconds=600",
];

#[derive(Debug, Parser)]
enum Cmd {
    Serve(ServeArgs),
    Rotate(RotateArgs),
    Status(StatusArgs),
}

fn parse(args: &[&str]) -> Result<Cmd, clap::Error> {
    Cmd::try_parse_from([&["signer"], args].concat())
}

async fn run(args: &[&str]) -> anyhow::Result<String> {
    let mut out = Vec::new();
    match parse(args)? {
        Cmd::Rotate(args) => rotate(&args, &mut out).await?,
        Cmd::Status(args) => status(&args, &mut out).await?,
        Cmd::Serve(_) => unreachable!("serve runs in the background"),
    }
    Ok(String::from_utf8(out)?)
}

fn serve_args(socket: &Path, set: &str) -> ServeArgs {
    let socket = format!("--socket={}", socket.display());
    let set = format!("--kms-key-set={set}");
    let args = [
        &["serve", socket.as_str(), set.as_str()][..],
        &SHORT,
        &["--refresh-hint-seconds=1", "--reload-interval=1s"],
    ]
    .concat();
    match parse(&args).unwrap() {
        Cmd::Serve(args) => args,
        _ => unreachable!(),
    }
}

async fn wait_for(socket: &Path) {
    for _ in 0..200 {
        if socket.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no socket at {}", socket.display());
}

/// Signs a token over the socket: its kid and the token.
async fn sign(socket: &Path) -> (String, String) {
    let mut client = irsa_externaljwt::connect(socket).await.unwrap();
    let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"system:serviceaccount:a:b"}"#);
    let signed = client
        .sign(SignJwtRequest {
            claims: claims.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&signed.header).unwrap()).unwrap();
    (
        header["kid"].as_str().unwrap().to_string(),
        format!("{}.{claims}.{}", signed.header, signed.signature),
    )
}

/// FetchKeys over the socket: (kid, SPKI DER) of each published key.
async fn fetch(socket: &Path) -> Vec<(String, Vec<u8>)> {
    let mut client = irsa_externaljwt::connect(socket).await.unwrap();
    let keys = client
        .fetch_keys(FetchKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    keys.into_iter().map(|k| (k.key_id, k.key)).collect()
}

/// Verifies `token` with the public key FetchKeys published under its kid.
fn verify_with_published(token: &str, kid: &str, published: &[(String, Vec<u8>)]) {
    let (_, spki) = published
        .iter()
        .find(|(k, _)| k == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not published: {published:?}"));
    let alg = match irsa_issuer::keys::PublicKey::from_spki_der(spki)
        .unwrap()
        .algorithm()
        .as_str()
    {
        "RS256" => jsonwebtoken::Algorithm::RS256,
        "ES256" => jsonwebtoken::Algorithm::ES256,
        other => panic!("unexpected algorithm {other}"),
    };
    let public = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.clone()));
    common::verify(token, public.as_bytes(), alg);
}

/// The kids in `status`'s table with their state (first column).
fn states(table: &str) -> Vec<(String, String)> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cells = l.split_whitespace();
            Some((cells.next()?.to_string(), cells.next()?.to_string()))
        })
        .filter(|(state, _)| state != "now")
        .map(|(state, kid)| (kid, state))
        .collect()
}

#[test]
fn serve_with_a_kms_key_set_signs_tokens_that_verify_with_fetch_keys() {
    if !in_child("serve_with_a_kms_key_set_signs_tokens_that_verify_with_fetch_keys") {
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let set = common::unique_set("cmd-serve");
        let key = moto_set(&set)
            .create(irsa_signer::kms::KmsKeySpec::EccNistP256)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let server = tokio::spawn(serve(serve_args(&socket, &set)));
        wait_for(&socket).await;

        let published = fetch(&socket).await;
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].0, key.kid());
        let (kid, token) = sign(&socket).await;
        assert_eq!(kid, key.kid());
        verify_with_published(&token, &kid, &published);
        server.abort();
    });
}

#[test]
fn rotate_adds_a_kms_key_that_is_published_first_then_signs() {
    if !in_child("rotate_adds_a_kms_key_that_is_published_first_then_signs") {
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let set = common::unique_set("cmd-rotate");
        let set_arg = format!("--kms-key-set={set}");
        let rotate_args = [&["rotate", set_arg.as_str()][..], &SHORT].concat();
        let status_args = [&["status", set_arg.as_str()][..], &SHORT].concat();

        // The first key of an empty set signs at once.
        let first = run(&rotate_args).await.unwrap();
        assert!(first.contains("created KMS key"), "{first}");
        assert!(first.contains("signs now"), "{first}");
        let old = moto_set(&set).list().await.unwrap();
        assert_eq!(old.len(), 1);
        let old = old[0].kid().to_string();

        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let server = tokio::spawn(serve(serve_args(&socket, &set)));
        wait_for(&socket).await;
        // Past the first key's own pre-publication, so that it is plainly the active key below.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sign(&socket).await.0, old);

        let second = run(&[&rotate_args[..], &["--algorithm=ES256"]].concat())
            .await
            .unwrap();
        assert!(second.contains("published now; signs from"), "{second}");
        let new = moto_set(&set)
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid().to_string())
            .find(|k| *k != old)
            .unwrap();
        assert!(second.contains(&new), "{second}");

        let table = run(&status_args).await.unwrap();
        assert_eq!(
            states(&table),
            vec![
                (old.clone(), "active".to_string()),
                (new.clone(), "pre-published".to_string())
            ],
            "{table}"
        );

        // Published within a reload interval, while the old key still signs.
        let mut published = Vec::new();
        for _ in 0..40 {
            published = fetch(&socket).await;
            if published.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(published.len(), 2, "{published:?}");
        let (kid, token) = sign(&socket).await;
        assert_eq!(
            kid, old,
            "the new key signs before its pre-publication ended"
        );
        verify_with_published(&token, &kid, &published);

        // After the pre-publication (3 s from its creation), the new key signs; the old one stays published.
        let mut signed = (String::new(), String::new());
        for _ in 0..60 {
            signed = sign(&socket).await;
            if signed.0 == new {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(signed.0, new);
        let published = fetch(&socket).await;
        verify_with_published(&signed.1, &new, &published);
        assert!(published.iter().any(|(k, _)| *k == old));

        let table = run(&status_args).await.unwrap();
        assert_eq!(
            states(&table),
            vec![
                (old.clone(), "retiring".to_string()),
                (new.clone(), "active".to_string())
            ],
            "{table}"
        );
        server.abort();
    });
}

#[test]
fn a_kms_key_set_without_keys_is_a_clear_error_and_nothing_changes() {
    if !in_child("a_kms_key_set_without_keys_is_a_clear_error_and_nothing_changes") {
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let set = common::unique_set("cmd-empty");
        let expected = format!(
            "no KMS key tagged irsa-signer-key-set={set}; create one with irsa signer rotate --kms-key-set {set}"
        );
        let set_arg = format!("--kms-key-set={set}");
        let err = run(&[&["status", set_arg.as_str()][..], &SHORT].concat())
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), expected);

        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let err = serve(serve_args(&socket, &set)).await.unwrap_err();
        assert_eq!(format!("{err:#}"), expected);
        assert!(!socket.exists(), "no socket for a signer with no key");
        assert!(moto_set(&set).list().await.unwrap().is_empty());
    });
}

#[test]
fn the_key_directory_and_the_kms_key_set_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let keys: PathBuf = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let key_dir = format!("--key-dir={}", keys.display());
    for command in ["serve", "rotate", "status"] {
        let mut args = vec![command, key_dir.as_str(), "--kms-key-set=prod"];
        if command == "serve" {
            args.push("--socket=/nonexistent/s.sock");
        }
        let err = parse(&args).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{command}: {err}"
        );
        let mut args = vec![command];
        if command == "serve" {
            args.push("--socket=/nonexistent/s.sock");
        }
        let err = parse(&args).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{command}: {err}"
        );
    }
    // Nothing ran: the directory is as it was.
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 0);
}

#[test]
fn the_automatic_mode_starts_an_empty_kms_key_set_with_its_first_key() {
    if !in_child("the_automatic_mode_starts_an_empty_kms_key_set_with_its_first_key") {
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let set = common::unique_set("cmd-auto");
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let mut args = serve_args(&socket, &set);
        args.rotate_after = Some(Duration::from_secs(1800));
        let server = tokio::spawn(serve(args));
        wait_for(&socket).await;
        let keys = moto_set(&set).list().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].spec(), irsa_signer::kms::KmsKeySpec::Rsa2048);
        let (kid, token) = sign(&socket).await;
        assert_eq!(kid, keys[0].kid());
        verify_with_published(&token, &kid, &fetch(&socket).await);
        server.abort();
    });
}
