//! A client of the external signer over its unix socket, dialled as kube-apiserver dials it.

use std::error::Error as _;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Endpoint, Uri};

use crate::Client;
use crate::proto::external_jwt_signer_client::ExternalJwtSignerClient;

/// HTTP/2 wants an authority; the socket path is what is dialled. `localhost` is what grpc-go (and so
/// kube-apiserver) sends for a `unix://` target.
const AUTHORITY: &str = "http://localhost";

/// The signer's socket could not be dialled (absent, refused, not a socket, not HTTP/2).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the signer's socket {}: {reason}", path.display())]
pub struct ConnectError {
    /// The socket path.
    pub path: PathBuf,
    /// What failed, with its causes (tonic's own message alone is "transport error").
    pub reason: String,
}

/// A client of the signer listening on `socket_path`, connected now: an absent or dead socket is an error
/// here rather than at the first call.
pub async fn connect(socket_path: impl AsRef<Path>) -> Result<Client, ConnectError> {
    let path = socket_path.as_ref().to_path_buf();
    let channel = endpoint()
        .connect_with_connector(connector(path.clone()))
        .await
        .map_err(|e| ConnectError {
            path,
            reason: with_causes(&e),
        })?;
    Ok(ExternalJwtSignerClient::new(channel))
}

/// A client of the signer listening on `socket_path` that dials at its first call, and dials again after the
/// connection is lost (a signer restarted): for a long-running caller that must outlive the signer.
pub fn connect_lazy(socket_path: impl AsRef<Path>) -> Client {
    let channel =
        endpoint().connect_with_connector_lazy(connector(socket_path.as_ref().to_path_buf()));
    ExternalJwtSignerClient::new(channel)
}

fn endpoint() -> Endpoint {
    Endpoint::from_static(AUTHORITY)
}

/// Dials `path` for every connection the channel opens.
fn connector(
    path: PathBuf,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<UnixStream>,
    Error = std::io::Error,
    Future = impl Future<Output = std::io::Result<TokioIo<UnixStream>>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { Ok(TokioIo::new(UnixStream::connect(path).await?)) }
    })
}

/// An error and its causes, `: `-joined; a cause that only repeats the one before it (an I/O error wrapped
/// as is) is said once.
fn with_causes(e: &tonic::transport::Error) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if said != last {
            text.push_str(": ");
            text.push_str(&said);
        }
        last = said;
        cause = c.source();
    }
    text
}
