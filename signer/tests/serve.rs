//! `irsa signer serve` as a whole: the socket, the admin port (`/readyz`, `/metrics`), the automatic mode's
//! first key, and the start-up errors.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use common::{expected_kid, fixture};
use irsa_signer::cmd::serve::{ServeArgs, serve};
use irsa_signer::proto::SignJwtRequest;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Debug, Parser)]
struct Cmd {
    #[command(flatten)]
    serve: ServeArgs,
}

fn args(dir: &Path, extra: &[String]) -> ServeArgs {
    let base = [
        "serve".to_string(),
        format!("--socket={}", dir.join("s.sock").display()),
        format!("--key-dir={}", dir.join("keys").display()),
    ];
    Cmd::try_parse_from(base.iter().chain(extra)).unwrap().serve
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` on 127.0.0.1:`port`: the status code and the body.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

/// Whether `/readyz` turns 200 within 5 s (readiness is set a moment after the socket is bound).
async fn becomes_ready(port: u16) -> bool {
    for _ in 0..100 {
        if get(port, "/readyz")
            .await
            .is_some_and(|(status, _)| status == 200)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn wait_for(socket: &Path) {
    for _ in 0..100 {
        if socket.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no socket at {}", socket.display());
}

async fn sign_once(socket: PathBuf) {
    irsa_externaljwt::connect(&socket)
        .await
        .unwrap()
        .sign(SignJwtRequest {
            claims: URL_SAFE_NO_PAD.encode("{}"),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_admin_port_reports_readiness_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::copy(fixture("rsa2048.key"), dir.path().join("keys/sa.key")).unwrap();
    let port = free_port();
    let server = tokio::spawn(serve(args(
        dir.path(),
        &[format!("--metrics-address=127.0.0.1:{port}")],
    )));
    wait_for(&dir.path().join("s.sock")).await;
    assert!(becomes_ready(port).await);

    sign_once(dir.path().join("s.sock")).await;
    let (status, metrics) = get(port, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let kid = expected_kid("rsa2048.key");
    for line in [
        format!(r#"irsa_signer_signs_total{{kid="{kid}"}} 1"#),
        "irsa_signer_sign_duration_seconds_count 1".to_string(),
        r#"irsa_signer_keys{state="active"} 1"#.to_string(),
        r#"irsa_signer_keys{state="retired"} 0"#.to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    server.abort();
}

// A key file that is a FIFO blocks the first load until the test writes the key into it: the window in which
// the admin port is up and the keys are not loaded yet, held open deterministically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_false_until_the_keys_are_loaded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let fifo = dir.path().join("keys/sa.key");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let port = free_port();
    // No reload during the test: it would read the FIFO again.
    let server = tokio::spawn(serve(args(
        dir.path(),
        &[
            format!("--metrics-address=127.0.0.1:{port}"),
            "--reload-interval=1h".into(),
        ],
    )));
    let mut unready = None;
    for _ in 0..100 {
        unready = get(port, "/readyz").await;
        if unready.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let socket_early = dir.path().join("s.sock").exists();
    // The key goes in before any assertion: a failed one must not leave the load blocked on the FIFO (the
    // runtime would wait for it forever). A plain thread, so a writer with no reader cannot hang the runtime.
    let key = std::fs::read(fixture("rsa2048.key")).unwrap();
    std::thread::spawn(move || std::fs::write(fifo, key));
    wait_for(&dir.path().join("s.sock")).await;
    assert_eq!(unready.unwrap().0, 503, "unready while the keys load");
    assert!(
        !socket_early,
        "the socket is bound before the keys are loaded"
    );
    assert!(becomes_ready(port).await);
    server.abort();
}

#[tokio::test]
async fn an_empty_key_directory_fails_unless_the_automatic_mode_starts_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let err = serve(args(dir.path(), &[])).await.unwrap_err();
    assert!(format!("{err:#}").contains("no key file"), "{err:#}");
    assert!(!dir.path().join("s.sock").exists());

    let server = tokio::spawn(serve(args(
        dir.path(),
        &[
            "--rotate-after=30m".into(),
            "--rotate-algorithm=ES256".into(),
        ],
    )));
    wait_for(&dir.path().join("s.sock")).await;
    sign_once(dir.path().join("s.sock")).await;
    let keys: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .collect();
    assert_eq!(keys.len(), 1);
    server.abort();
}

#[tokio::test]
async fn a_pre_publication_shorter_than_the_refresh_hint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = serve(args(
        dir.path(),
        &[
            "--pre-publish=10s".into(),
            "--jwks-max-age=1".into(),
            "--rotation-margin=1s".into(),
            "--refresh-hint-seconds=60".into(),
        ],
    ))
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("61 s"), "{err:#}");
}
