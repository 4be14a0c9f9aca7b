//! The generated server and the unix-socket client, end to end over a socket in a temporary directory.

use std::path::Path;

use irsa_externaljwt::proto::external_jwt_signer_server::{
    ExternalJwtSigner, ExternalJwtSignerServer,
};
use irsa_externaljwt::proto::{
    FetchKeysRequest, FetchKeysResponse, Key, MetadataRequest, MetadataResponse, SignJwtRequest,
    SignJwtResponse,
};
use irsa_externaljwt::{connect, connect_lazy};
use tonic::{Request, Response, Status};

/// A signer that signs nothing and publishes one made-up key.
struct Fixed;

#[tonic::async_trait]
impl ExternalJwtSigner for Fixed {
    async fn sign(&self, _: Request<SignJwtRequest>) -> Result<Response<SignJwtResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn fetch_keys(
        &self,
        _: Request<FetchKeysRequest>,
    ) -> Result<Response<FetchKeysResponse>, Status> {
        Ok(Response::new(FetchKeysResponse {
            keys: vec![Key {
                key_id: "k".into(),
                key: vec![1, 2, 3],
                exclude_from_oidc_discovery: false,
            }],
            data_timestamp: None,
            refresh_hint_seconds: 30,
        }))
    }

    async fn metadata(
        &self,
        _: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        Ok(Response::new(MetadataResponse {
            max_token_expiration_seconds: 600,
        }))
    }
}

fn serve(path: &Path) {
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ExternalJwtSignerServer::new(Fixed))
            .serve_with_incoming(incoming),
    );
}

#[tokio::test]
async fn both_clients_reach_the_server_on_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.sock");
    // The lazy client is made before the socket exists: it dials at its first call.
    let mut lazy = connect_lazy(&path);
    serve(&path);

    let mut client = connect(&path).await.unwrap();
    let metadata = client.metadata(MetadataRequest {}).await.unwrap();
    assert_eq!(metadata.into_inner().max_token_expiration_seconds, 600);
    let keys = lazy.fetch_keys(FetchKeysRequest {}).await.unwrap();
    let keys = keys.into_inner();
    assert_eq!(keys.refresh_hint_seconds, 30);
    assert_eq!(keys.keys[0].key_id, "k");
}

#[tokio::test]
async fn an_absent_socket_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sock");
    let error = connect(&path).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&*path.to_string_lossy()), "{text}");
    // The cause, not only tonic's "transport error".
    assert!(text.contains("No such file"), "{text}");
    assert_eq!(text.matches("No such file").count(), 1, "{text}");

    let mut lazy = connect_lazy(&path);
    assert!(lazy.metadata(MetadataRequest {}).await.is_err());
}
