//! A rotation as kube-apiserver sees it over the socket, on a fake clock: the new key is published before it
//! signs, the old one stays published until its tokens expired, `data_timestamp` moves only when the published
//! set does. And the reloader: a bad new file or an unreadable directory keeps the last good set, counted.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{expected_kid, fixture, verify};
use irsa_signer::key_file;
use irsa_signer::live::Live;
use irsa_signer::metrics::Metrics;
use irsa_signer::proto::{FetchKeysRequest, FetchKeysResponse, SignJwtRequest};
use irsa_signer::reload::{self, Reloader};
use irsa_signer::rotation::Policy;
use irsa_signer::service::Signer;
use irsa_signer::socket;
use irsa_signer::source::Source;
use prometheus_client::registry::Registry;

/// The fake clock: seconds after 2026-11-01T00:00:00Z.
fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_793_491_200 + secs)
}

fn policy() -> Policy {
    Policy {
        pre_publish: Duration::from_secs(100),
        max_token_expiration: Duration::from_secs(1000),
        margin: Duration::from_secs(10),
    }
}

/// Copies fixture `name` into `dir` as a key `irsa signer rotate` wrote at `at`.
fn key_written_at(dir: &Path, name: &str, at: SystemTime) {
    std::fs::copy(fixture(name), dir.join(key_file::file_name(at))).unwrap();
}

async fn serve(signer: Signer, path: &Path) -> irsa_externaljwt::Client {
    let listener = socket::bind(path).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(signer.into_server())
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    irsa_externaljwt::connect(path).await.unwrap()
}

async fn sign(client: &mut irsa_externaljwt::Client) -> (String, String) {
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

async fn fetch(client: &mut irsa_externaljwt::Client) -> (Vec<String>, SystemTime) {
    let FetchKeysResponse {
        keys,
        data_timestamp,
        ..
    } = client
        .fetch_keys(FetchKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    let stamp = data_timestamp.unwrap();
    let at = SystemTime::UNIX_EPOCH
        + Duration::new(stamp.seconds as u64, u32::try_from(stamp.nanos).unwrap());
    (keys.into_iter().map(|k| k.key_id).collect(), at)
}

#[tokio::test]
async fn a_rotation_publishes_first_switches_later_and_retires_last() {
    let dir = tempfile::tempdir().unwrap();
    key_written_at(dir.path(), "rsa2048.key", t(0));
    key_written_at(dir.path(), "p256.key", t(1000));
    let (old, new) = (expected_kid("rsa2048.key"), expected_kid("p256.key"));
    let live =
        Arc::new(Live::new(reload::load_dir(dir.path()).unwrap(), policy(), t(1000)).unwrap());
    let mut client = serve(
        Signer::new(live.clone(), 3600, 1),
        &dir.path().join("s.sock"),
    )
    .await;

    // Just written: published, not signing.
    let (published, stamp) = fetch(&mut client).await;
    assert_eq!(published, [old.clone(), new.clone()]);
    assert_eq!(stamp, t(1000));
    let (kid, token) = sign(&mut client).await;
    assert_eq!(kid, old);
    let rsa = std::fs::read(fixture("rsa2048.pub")).unwrap();
    verify(&token, &rsa, jsonwebtoken::Algorithm::RS256);

    // After the pre-publication the new key signs; the published set is the same, so is its timestamp.
    live.update(None, t(1100)).unwrap();
    let (kid, token) = sign(&mut client).await;
    assert_eq!(kid, new);
    let p256 = std::fs::read(fixture("p256.pub")).unwrap();
    verify(&token, &p256, jsonwebtoken::Algorithm::ES256);
    assert_eq!(
        fetch(&mut client).await,
        (vec![old.clone(), new.clone()], t(1000))
    );

    // The old key's last token could live until 1100 + 1000; plus the margin, it is retired.
    live.update(None, t(1100 + 1009)).unwrap();
    assert_eq!(fetch(&mut client).await.0, [old.clone(), new.clone()]);
    live.update(None, t(1100 + 1010)).unwrap();
    assert_eq!(fetch(&mut client).await, (vec![new.clone()], t(2110)));
    assert_eq!(sign(&mut client).await.0, new);
}

fn reloader_for(dir: &Path, registry: &mut Registry) -> (Reloader, Arc<Live>) {
    let live =
        Arc::new(Live::new(reload::load_dir(dir).unwrap(), policy(), SystemTime::now()).unwrap());
    let reloader = Reloader {
        source: Source::Dir(dir.to_path_buf()),
        live: live.clone(),
        interval: Duration::from_secs(3600),
        auto_rotate: None,
        metrics: Metrics::register(registry),
    };
    (reloader, live)
}

fn metrics(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

fn kids(live: &Live) -> Vec<String> {
    live.current()
        .published()
        .map(|k| k.kid().to_string())
        .collect()
}

#[tokio::test]
async fn a_new_key_file_is_published_at_the_next_reload() {
    let dir = tempfile::tempdir().unwrap();
    key_written_at(dir.path(), "rsa2048.key", SystemTime::now());
    let mut registry = Registry::default();
    let (reloader, live) = reloader_for(dir.path(), &mut registry);
    key_written_at(
        dir.path(),
        "p256.key",
        SystemTime::now() + Duration::from_secs(1),
    );
    reloader.tick(&mut None).await;
    assert_eq!(
        kids(&live),
        [expected_kid("rsa2048.key"), expected_kid("p256.key")]
    );
    assert_eq!(live.current().signing().kid(), expected_kid("rsa2048.key"));
    let text = metrics(&registry);
    assert!(
        text.contains(r#"irsa_signer_keys{state="pre-published"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"irsa_signer_keys{state="active"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_bad_new_file_or_an_unreadable_directory_keeps_the_last_good_set() {
    let dir = tempfile::tempdir().unwrap();
    key_written_at(dir.path(), "rsa2048.key", SystemTime::now());
    let mut registry = Registry::default();
    let (reloader, live) = reloader_for(dir.path(), &mut registry);
    let mut last_error = None;

    std::fs::copy(fixture("rsa1024.key"), dir.path().join("small.pem")).unwrap();
    reloader.tick(&mut last_error).await;
    assert_eq!(kids(&live), [expected_kid("rsa2048.key")]);
    assert!(last_error.as_deref().unwrap().contains("small.pem"));
    let text = metrics(&registry);
    assert!(
        text.contains(r#"irsa_signer_key_errors_total{operation="reload"} 1"#),
        "{text}"
    );

    // The directory is gone (an unmounted volume): still the same keys, counted again.
    let moved = dir.path().with_extension("moved");
    std::fs::rename(dir.path(), &moved).unwrap();
    reloader.tick(&mut last_error).await;
    std::fs::rename(&moved, dir.path()).unwrap();
    assert_eq!(live.current().signing().kid(), expected_kid("rsa2048.key"));
    let text = metrics(&registry);
    assert!(
        text.contains(r#"irsa_signer_key_errors_total{operation="reload"} 2"#),
        "{text}"
    );

    // Fixed: the error clears.
    std::fs::remove_file(dir.path().join("small.pem")).unwrap();
    reloader.tick(&mut last_error).await;
    assert!(last_error.is_none());
}

#[tokio::test]
async fn the_automatic_mode_writes_the_next_key_when_the_active_one_is_old() {
    let dir = tempfile::tempdir().unwrap();
    key_written_at(
        dir.path(),
        "rsa2048.key",
        SystemTime::now() - Duration::from_secs(7200),
    );
    let mut registry = Registry::default();
    let (mut reloader, live) = reloader_for(dir.path(), &mut registry);
    reloader.auto_rotate = Some(reload::AutoRotate {
        after: Duration::from_secs(3600),
        algorithm: key_file::NewKeyAlgorithm::Es256,
    });
    reloader.tick(&mut None).await;
    let snapshot = live.current();
    let states: Vec<&str> = snapshot.states().map(|(_, s)| s.name()).collect();
    assert_eq!(states, ["active", "pre-published"]);
    // Once is enough: a successor waits, so no other key is written.
    reloader.tick(&mut None).await;
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);

    // A directory it cannot write into: counted, never fatal.
    let gone = tempfile::tempdir().unwrap();
    key_written_at(
        gone.path(),
        "rsa2048.key",
        SystemTime::now() - Duration::from_secs(7200),
    );
    let mut registry = Registry::default();
    let (mut reloader, live) = reloader_for(gone.path(), &mut registry);
    reloader.auto_rotate = Some(reload::AutoRotate {
        after: Duration::from_secs(3600),
        algorithm: key_file::NewKeyAlgorithm::Es256,
    });
    reloader.source = Source::Dir(gone.path().join("missing"));
    reloader.tick(&mut None).await;
    assert_eq!(live.current().signing().kid(), expected_kid("rsa2048.key"));
    let text = metrics(&registry);
    assert!(
        text.contains(r#"irsa_signer_key_errors_total{operation="rotate"} 1"#),
        "{text}"
    );
}
