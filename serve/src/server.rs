//! Runs an axum router on a listener, over TLS or plain HTTP, until the shutdown drains it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::Shutdown;
use crate::tls::ReloadingConfig;

/// A TLS handshake that has not finished by then is dropped, so idle scanners cannot hold sockets.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (HTTP/1.1 and h2; TLS when `tls` is given, its files re-read when they change)
/// until `shutdown` is triggered; then stops accepting, lets in-flight requests finish (connections get a
/// graceful HTTP shutdown), and returns once they are done or the drain timeout passed. The caller loads the
/// TLS configuration ([`ReloadingConfig::new`]) before it starts anything, so an unusable certificate stops
/// the process at start-up, and the files are read once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<ReloadingConfig>,
    shutdown: Shutdown,
) {
    let tls = tls.map(Arc::new);
    let connections = TaskTracker::new();
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.triggered() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning; the listener itself stays valid.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Admission latency is dominated by small writes; never let Nagle hold a response back.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let shutdown = shutdown.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(&builder, TokioIo::new(stream), service, &shutdown)
                                .await
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve_connection(&builder, TokioIo::new(stream), service, &shutdown).await,
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(shutdown.drain_timeout(), connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = connections.len(),
            "drain timeout passed with connections still open"
        );
    }
}

async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: TowerToHyperService<Router>,
    shutdown: &Shutdown,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%err, "connection ended with an error");
            }
        }
        _ = shutdown.triggered() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
