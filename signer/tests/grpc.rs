//! The signer over its unix socket, as kube-apiserver calls it: Metadata, FetchKeys, Sign; and the socket.

mod common;

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{expected_kid, fixture, verify};
use irsa_signer::live::Live;
use irsa_signer::proto::{FetchKeysRequest, MetadataRequest, SignJwtRequest};
use irsa_signer::reload;
use irsa_signer::rotation::Policy;
use irsa_signer::service::Signer;
use irsa_signer::socket::{self, SocketError};

/// Serves `signer` on a socket at `path` in the background.
fn serve(signer: Signer, path: &Path) {
    let listener = socket::bind(path).unwrap();
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(signer.into_server())
            .serve_with_incoming(incoming),
    );
}

async fn client(path: PathBuf) -> irsa_externaljwt::Client {
    irsa_externaljwt::connect(&path).await.unwrap()
}

fn key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("rsa2048.key"), dir.path().join("sa.key")).unwrap();
    dir
}

/// The keys of `dir` under a policy with no pre-publication, evaluated now.
fn live(dir: &Path) -> Arc<Live> {
    let policy = Policy {
        pre_publish: Duration::ZERO,
        max_token_expiration: Duration::from_secs(7200),
        margin: Duration::ZERO,
    };
    Arc::new(Live::new(reload::load_dir(dir).unwrap(), policy, SystemTime::now()).unwrap())
}

fn signer(dir: &Path) -> Signer {
    Signer::new(live(dir), 7200, 30)
}

#[tokio::test]
async fn the_apiserver_gets_metadata_keys_and_verifiable_signatures() {
    let dir = key_dir();
    let path = dir.path().join("signer.sock");
    serve(signer(dir.path()), &path);
    let mut client = client(path).await;

    let metadata = client
        .metadata(MetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.max_token_expiration_seconds, 7200);

    let keys = client
        .fetch_keys(FetchKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.refresh_hint_seconds, 30);
    assert!(keys.data_timestamp.is_some());
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].key_id, expected_kid("rsa2048.key"));
    assert!(!keys.keys[0].exclude_from_oidc_discovery);
    let public = pem::parse(std::fs::read(fixture("rsa2048.pub")).unwrap()).unwrap();
    assert_eq!(keys.keys[0].key, public.contents(), "PKIX DER of the key");

    let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"system:serviceaccount:a:b"}"#);
    let signed = client
        .sign(SignJwtRequest {
            claims: claims.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = format!("{}.{claims}.{}", signed.header, signed.signature);
    let pem = std::fs::read(fixture("rsa2048.pub")).unwrap();
    assert_eq!(
        verify(&token, &pem, jsonwebtoken::Algorithm::RS256)["sub"],
        "system:serviceaccount:a:b"
    );

    let refused = client
        .sign(SignJwtRequest {
            claims: "not base64!".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn metadata_never_goes_under_what_the_apiserver_accepts() {
    let dir = key_dir();
    let path = dir.path().join("signer.sock");
    serve(Signer::new(live(dir.path()), 5, 0), &path);
    let mut client = client(path).await;
    let metadata = client
        .metadata(MetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.max_token_expiration_seconds, 600);
    let keys = client
        .fetch_keys(FetchKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.refresh_hint_seconds, 1);
}

#[tokio::test]
async fn the_socket_is_private_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.sock");
    let _listener = socket::bind(&path).unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // The private staging directory is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.sock");
    // A socket whose listener is gone: what a crashed signer leaves.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let listener = socket::bind(&path).unwrap();
    let accept = tokio::spawn(async move { listener.accept().await.map(drop) });
    tokio::net::UnixStream::connect(&path).await.unwrap();
    accept.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_live_socket_or_another_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.sock");
    let _live = socket::bind(&path).unwrap();
    assert!(matches!(socket::bind(&path), Err(SocketError::InUse(_))));

    let file = dir.path().join("important.txt");
    std::fs::write(&file, "data").unwrap();
    assert!(matches!(
        socket::bind(&file),
        Err(SocketError::NotASocket(_))
    ));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
}
