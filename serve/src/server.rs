//! Runs an axum router on a listener, over TLS or plain HTTP, until the shutdown drains it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::Shutdown;
use crate::connection::{self, CloseReason, Connections, Protocol};
use crate::tls::ReloadingConfig;

/// Serves `router` on `listener` (HTTP/1.1 and h2; TLS when `tls` is given, its files re-read when they change)
/// until `shutdown` is triggered; then stops accepting, lets in-flight requests finish (connections get a
/// graceful HTTP shutdown), and returns once they are done or the drain timeout passed. The caller loads the
/// TLS configuration ([`ReloadingConfig::new`]) before it starts anything, so an unusable certificate stops
/// the process at start-up, and the files are read once. Connections get the default limits
/// ([`serve_with`] to choose them).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<ReloadingConfig>,
    shutdown: Shutdown,
) {
    serve_with(listener, router, tls, shutdown, Connections::default()).await
}

/// [`serve`], each connection limited (and its early closes counted) as `connections` says.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    tls: Option<ReloadingConfig>,
    shutdown: Shutdown,
    connections: Connections,
) {
    let tls = tls.map(Arc::new);
    let tasks = TaskTracker::new();
    let builder = Arc::new(connection::builder(&connections.limits));
    let connections = Arc::new(connections);
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
        let router = router.clone();
        let shutdown = shutdown.clone();
        let builder = builder.clone();
        let connections = connections.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            let Some(tls) = tls else {
                return connection::serve(
                    &builder,
                    stream,
                    Protocol::Http1,
                    router,
                    &connections,
                    &shutdown,
                )
                .await;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            let handshake = acceptor.accept(stream);
            // A handshake that does not finish is dropped, so idle scanners cannot hold sockets.
            match tokio::time::timeout(connections.limits.tls_handshake_timeout, handshake).await {
                Ok(Ok(stream)) => {
                    let protocol = match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Protocol::Http2,
                        _ => Protocol::Http1,
                    };
                    connection::serve(&builder, stream, protocol, router, &connections, &shutdown)
                        .await
                }
                Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => {
                    connections.closed.count(CloseReason::HandshakeTimeout);
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        });
    }
    drop(listener);
    tasks.close();
    if tokio::time::timeout(shutdown.drain_timeout(), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = tasks.len(),
            "drain timeout passed with connections still open"
        );
    }
}
