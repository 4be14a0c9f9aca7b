//! One accepted connection, served with its limits: the header, body and idle timeouts, HTTP/2 keep-alive,
//! and a lingering close so that a refusal (a 413) reaches the client instead of a TCP reset.
//!
//! hyper's own HTTP/1.1 header timeout is not used: hyper starts it whenever it waits for a request, so an
//! idle keep-alive connection would be closed after the header timeout instead of the idle timeout, racing
//! the apiserver's next request. Here the header clock starts at a request's first byte (or the handshake,
//! for a connection's first request), and the idle clock when the last response was sent.

mod activity;
mod body;
mod io;
mod metrics;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use self::activity::Activity;
pub(crate) use self::activity::Protocol;
use self::body::{DeadlineBody, Guarded};
use self::io::Tracked;
pub use self::metrics::{CloseReason, ClosedConnections};
use crate::Shutdown;
use crate::args::ConnectionArgs;

/// How long a connection closed for idleness may take to finish closing (an HTTP/2 GOAWAY exchange).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The limits a server puts on its connections, and where it counts the connections they close.
#[derive(Clone, Debug, Default)]
pub struct Connections {
    /// The timeouts.
    pub limits: ConnectionArgs,
    /// Where closed connections are counted.
    pub closed: ClosedConnections,
}

/// The HTTP/1.1 + h2 connection builder for `limits`: h2 PINGs, and hyper's clock for them.
pub(crate) fn builder(limits: &ConnectionArgs) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout);
    builder
}

/// Serves `router` on one accepted (and, for TLS, handshaken) `stream` until the client closes it, a limit
/// does, or the shutdown drains it.
pub(crate) async fn serve<S>(
    builder: &auto::Builder<TokioExecutor>,
    stream: S,
    protocol: Protocol,
    router: Router,
    connections: &Connections,
    shutdown: &Shutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &connections.limits;
    let activity = Activity::new(protocol);
    let service = service(router, activity.clone(), connections.clone());
    let (stream, mut handover) = Tracked::new(stream, activity.clone());
    // In its own future, so that the connection, and with it hyper's hold on the stream, is dropped when it
    // ends.
    let watch = async {
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(connection);
        loop {
            let deadline = activity.deadline(limits);
            let expiry = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        let timed_out = err
                            .downcast_ref::<hyper::Error>()
                            .is_some_and(hyper::Error::is_timeout);
                        // hyper's only clock here is the h2 keep-alive: an unanswered PING.
                        if timed_out {
                            connections.closed.count(CloseReason::KeepAliveTimeout);
                        }
                        tracing::debug!(%err, "connection ended with an error");
                    }
                    return;
                }
                _ = shutdown.triggered() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                    return;
                }
                _ = activity.changed() => continue,
                _ = expiry => {
                    // Re-read: a request may have begun since the deadline was taken.
                    let Some((at, reason)) = activity.deadline(limits) else { continue };
                    if Instant::now() < at {
                        continue;
                    }
                    connections.closed.count(reason);
                    tracing::debug!(reason = reason.as_str(), "closing a connection");
                    if reason == CloseReason::IdleTimeout {
                        // Between requests: close politely (h2: GOAWAY), so the client opens a new connection.
                        connection.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
                    }
                    // Mid-headers, or nothing said: no request to answer; dropping the connection closes it.
                    return;
                }
            }
        }
    };
    watch.await;
    // If hyper closed the stream, let the client read the last answer before the socket goes: after the
    // close was counted, not before. (An upgraded stream is not hyper's to hand over: nothing to wait for.)
    if let Ok(stream) = handover.try_recv() {
        io::linger(stream).await;
    }
}

/// `router` as a hyper service that tracks its requests in `activity` and gives each request body the body
/// read timeout.
fn service(
    router: Router,
    activity: Arc<Activity>,
    connections: Connections,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<axum::body::Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<axum::body::Body>, Infallible>> + Send + 'static,
> + Clone {
    let router = TowerToHyperService::new(router);
    let service = move |request: Request<Incoming>| {
        let in_flight = activity.begin();
        let expired = Arc::new(AtomicBool::new(false));
        let version = request.version();
        let deadline = Instant::now() + connections.limits.body_read_timeout;
        let request = request
            .map(|body| axum::body::Body::new(DeadlineBody::new(body, deadline, expired.clone())));
        let response = hyper::service::Service::call(&router, request);
        let closed = connections.closed.clone();
        async move {
            let response = match response.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = if expired.load(Ordering::Acquire) {
                // Whatever the handler made of a failed body (axum: 400), the client was too slow.
                closed.count(CloseReason::BodyTimeout);
                request_timeout(version)
            } else {
                response
            };
            Ok(response.map(|body| {
                axum::body::Body::new(Guarded {
                    inner: body,
                    _in_flight: in_flight,
                })
            }))
        }
    };
    hyper::service::service_fn(service)
}

/// 408, closing an HTTP/1 connection (the rest of the body is still on its way; h2 resets the stream).
fn request_timeout(version: Version) -> Response<axum::body::Body> {
    let mut response = Response::new(axum::body::Body::from(
        "the request body did not arrive in time\n",
    ));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
