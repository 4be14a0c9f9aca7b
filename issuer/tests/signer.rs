//! `serve --signer-socket` and `publish --signer-socket` against a stand-in external signer (the generated
//! ExternalJWTSigner server, answering FetchKeys with fixture keys) on a unix socket in a temporary directory.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, fixture, kid_of, kids, reload_errors, wait_for_reload_errors};
use irsa_externaljwt::proto::external_jwt_signer_server::{
    ExternalJwtSigner, ExternalJwtSignerServer,
};
use irsa_externaljwt::proto::{
    FetchKeysRequest, FetchKeysResponse, Key, MetadataRequest, MetadataResponse, SignJwtRequest,
    SignJwtResponse,
};
use irsa_issuer::cmd::publish::{PublishArgs, publish};
use irsa_issuer::cmd::{KeyFileArgs, SignerArgs};
use irsa_issuer::{jwks, keys};
use irsa_serve::Readiness;
use irsa_testing::wait::{Check, wait_until};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

/// What the stand-in answers to FetchKeys; the test changes it.
type Answer = Arc<Mutex<FetchKeysResponse>>;

/// A signer that only publishes keys: the issuer calls nothing else.
struct StandIn {
    answer: Answer,
}

#[tonic::async_trait]
impl ExternalJwtSigner for StandIn {
    async fn sign(&self, _: Request<SignJwtRequest>) -> Result<Response<SignJwtResponse>, Status> {
        Err(Status::unimplemented("the issuer never signs"))
    }

    async fn fetch_keys(
        &self,
        _: Request<FetchKeysRequest>,
    ) -> Result<Response<FetchKeysResponse>, Status> {
        Ok(Response::new(self.answer.lock().unwrap().clone()))
    }

    async fn metadata(
        &self,
        _: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        Ok(Response::new(MetadataResponse {
            max_token_expiration_seconds: 3600,
        }))
    }
}

/// The stand-in serving on its socket until stopped.
struct Signer {
    path: PathBuf,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Signer {
    fn start(path: &Path, answer: Answer) -> Signer {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ExternalJwtSignerServer::new(StandIn { answer }))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                }),
        );
        Signer {
            path: path.to_path_buf(),
            stop,
            task,
        }
    }

    /// Stops serving, closes its connections and removes the socket: the signer is gone.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the stand-in signer stops")
            .unwrap()
            .unwrap();
        std::fs::remove_file(&self.path).unwrap();
    }
}

/// The key of a fixture `.pub` file as the signer sends it: its DER SPKI under the kid openssl computed.
fn key(file: &str) -> Key {
    let text = std::fs::read(fixture(file)).unwrap();
    Key {
        key_id: kid_of(file),
        key: pem::parse(text).unwrap().into_contents(),
        exclude_from_oidc_discovery: false,
    }
}

/// The RSA-1024 fixture (STS refuses it), under the kid kube-apiserver would give it.
fn small_key() -> Key {
    let text = std::fs::read(fixture("rsa1024.pub")).unwrap();
    let der = pem::parse(text).unwrap().into_contents();
    Key {
        key_id: keys::kid_of_spki_der(&der),
        key: der,
        exclude_from_oidc_discovery: false,
    }
}

/// A FetchKeys answer asking to be called again every second.
fn answer(keys: Vec<Key>) -> FetchKeysResponse {
    FetchKeysResponse {
        keys,
        data_timestamp: None,
        refresh_hint_seconds: 1,
    }
}

/// The JWKS the issuer renders for the keys of fixture files.
fn expected_jwks(files: &[&str]) -> Value {
    let paths: Vec<_> = files.iter().map(|f| fixture(f)).collect();
    serde_json::from_slice(&jwks::render(&keys::load_files(&paths).unwrap().keys).json).unwrap()
}

async fn served_jwks(client: &reqwest::Client, base: &str) -> Option<Value> {
    let r = client
        .get(format!("{base}/openid/v1/jwks"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

async fn wait_for_jwks(client: &reqwest::Client, base: &str, expected: &Value) {
    wait_until(
        Duration::from_secs(15),
        "the expected JWKS is served",
        || async {
            let served = served_jwks(client, base).await;
            Check::ready_if(served.as_ref() == Some(expected), || {
                format!("served {served:?}, expected {expected}")
            })
        },
    )
    .await
    .unwrap();
}

/// A gauge or counter without labels from the admin port.
async fn metric(admin_base: &str, name: &str) -> Option<String> {
    let text = reqwest::get(format!("{admin_base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().to_string())
}

/// `serve --signer-socket` on 127.0.0.1 with plain HTTP: (base URL, admin base URL, readiness, stop).
async fn issuer(socket: &Path) -> (String, String, Readiness, irsa_serve::Shutdown) {
    let mut server = Server::bind(|addr| format!("http://{addr}")).await;
    server.args.signer.signer_socket = Some(socket.to_path_buf());
    server.args.plain_http = true;
    let base = server.args.issuer_url.clone();
    let admin_base = server.admin_base();
    let readiness = Readiness::new();
    let (shutdown, _task) = server.spawn(readiness.clone());
    (base, admin_base, readiness, shutdown)
}

#[tokio::test]
async fn publishes_the_signers_keys_and_follows_their_changes() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("signer.sock");
    let (base, admin_base, readiness, shutdown) = issuer(&socket).await;
    let client = reqwest::Client::new();

    // The signer is not there yet: nothing served, not ready, counted.
    wait_for_reload_errors(&admin_base, "signer", 1).await;
    assert!(!readiness.is_ready());
    assert!(served_jwks(&client, &base).await.is_none());

    let keys: Answer = Arc::new(Mutex::new(answer(vec![key("rsa2048.pub")])));
    let signer = Signer::start(&socket, keys.clone());
    wait_for_jwks(&client, &base, &expected_jwks(&["rsa2048.pub"])).await;
    assert!(readiness.is_ready());

    // A rotation on the signer's side (a new key pre-published next to the old one) is followed after the
    // refresh hint. The legacy key excluded from discovery is not published; the RSA-1024 key is refused,
    // and counted.
    let mut legacy = key("p384.pub");
    legacy.exclude_from_oidc_discovery = true;
    *keys.lock().unwrap() = answer(vec![
        key("rsa2048.pub"),
        legacy,
        small_key(),
        key("p256.pub"),
    ]);
    wait_for_jwks(&client, &base, &expected_jwks(&["rsa2048.pub", "p256.pub"])).await;
    assert_eq!(
        metric(&admin_base, "irsa_issuer_signer_keys_refused")
            .await
            .as_deref(),
        Some("1")
    );

    // The old key retired.
    *keys.lock().unwrap() = answer(vec![key("p256.pub")]);
    wait_for_jwks(&client, &base, &expected_jwks(&["p256.pub"])).await;

    signer.stop().await;
    shutdown.trigger();
}

#[tokio::test]
async fn a_kid_mismatch_is_refused_and_the_last_set_kept() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("signer.sock");
    let keys: Answer = Arc::new(Mutex::new(answer(vec![key("rsa2048.pub")])));
    let signer = Signer::start(&socket, keys.clone());
    let (base, admin_base, _readiness, shutdown) = issuer(&socket).await;
    let client = reqwest::Client::new();
    let first = expected_jwks(&["rsa2048.pub"]);
    wait_for_jwks(&client, &base, &first).await;

    // A new key announced under a kid that is not its own: tokens signed with it would not verify.
    let mut wrong = key("p256.pub");
    wrong.key_id = kid_of("p384.pub");
    *keys.lock().unwrap() = answer(vec![key("rsa2048.pub"), wrong.clone()]);
    let before = reload_errors(&admin_base, "signer").await;
    wait_for_reload_errors(&admin_base, "signer", before + 2).await;
    assert_eq!(served_jwks(&client, &base).await.as_ref(), Some(&first));

    // `publish` refuses it too, naming both kids.
    let out = tempfile::tempdir().unwrap();
    let error = publish(publish_args(&socket, out.path()), &mut Vec::<u8>::new())
        .await
        .unwrap_err();
    let text = format!("{error:#}");
    assert!(
        text.contains(&kid_of("p384.pub")) && text.contains(&kid_of("p256.pub")),
        "{text}"
    );

    signer.stop().await;
    shutdown.trigger();
}

#[tokio::test]
async fn a_signer_gone_keeps_the_last_set_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("signer.sock");
    let keys: Answer = Arc::new(Mutex::new(answer(vec![key("p256.pub")])));
    let signer = Signer::start(&socket, keys.clone());
    let (base, admin_base, readiness, shutdown) = issuer(&socket).await;
    let client = reqwest::Client::new();
    let first = expected_jwks(&["p256.pub"]);
    wait_for_jwks(&client, &base, &first).await;

    signer.stop().await;
    wait_for_reload_errors(&admin_base, "signer", 1).await;
    assert_eq!(served_jwks(&client, &base).await.as_ref(), Some(&first));
    assert!(readiness.is_ready(), "keys were loaded: still ready");

    // The signer restarted (with a rotated set): dialled again, followed.
    *keys.lock().unwrap() = answer(vec![key("p256.pub"), key("rsa2048.pub")]);
    let signer = Signer::start(&socket, keys);
    wait_for_jwks(&client, &base, &expected_jwks(&["p256.pub", "rsa2048.pub"])).await;

    signer.stop().await;
    shutdown.trigger();
}

fn publish_args(socket: &Path, out: &Path) -> PublishArgs {
    PublishArgs {
        issuer_url: "https://oidc.example.com/clusters/prod-1".into(),
        keys: KeyFileArgs::default(),
        signer: SignerArgs {
            signer_socket: Some(socket.to_path_buf()),
        },
        jwks_uri: None,
        out: Some(out.to_path_buf()),
        s3_uri: None,
        max_age: 3600,
        dry_run: false,
    }
}

#[tokio::test]
async fn publish_writes_the_signers_keys_once() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("signer.sock");
    let out = tempfile::tempdir().unwrap();

    // No signer: an error that names the socket, and nothing written.
    let error = publish(publish_args(&socket, out.path()), &mut Vec::<u8>::new())
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains(&*socket.to_string_lossy()),
        "{error:#}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    let mut legacy = key("p384.pub");
    legacy.exclude_from_oidc_discovery = true;
    let keys: Answer = Arc::new(Mutex::new(answer(vec![
        key("rsa2048.pub"),
        legacy,
        key("p256.pub"),
    ])));
    let signer = Signer::start(&socket, keys);
    let mut report = Vec::new();
    publish(publish_args(&socket, out.path()), &mut report)
        .await
        .unwrap();
    let jwks: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("clusters/prod-1/openid/v1/jwks")).unwrap(),
    )
    .unwrap();
    assert_eq!(jwks, expected_jwks(&["rsa2048.pub", "p256.pub"]));
    assert_eq!(kids(&jwks), [kid_of("rsa2048.pub"), kid_of("p256.pub")]);
    let report = String::from_utf8(report).unwrap();
    assert!(report.contains("publishes 2 key(s)"), "{report}");

    signer.stop().await;
}
