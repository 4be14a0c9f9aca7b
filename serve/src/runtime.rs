//! The one start-up every irsa server shares: its two listeners, the metrics registry, the readiness flag, the
//! signal-driven shutdown, then the admin and the main server run together until drained.
//!
//! A command binds a [`Runtime`] first (so a port already taken fails before anything else starts), registers
//! its metrics in [`Runtime::registry`], starts its background tasks with [`Runtime::readiness`] and
//! [`Runtime::shutdown`], and hands its router and TLS configuration to [`Runtime::run`]. Tests build the same
//! runtime on listeners they bound themselves, with a shutdown they trigger ([`Runtime::new`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::args::{AdminArgs, ConnectionArgs, DrainArgs, ListenArgs};
use crate::connection::{ClosedConnections, Connections};
use crate::tls::{ReloadingConfig, TlsError, TlsFiles};
use crate::{Readiness, Shutdown};

/// An address could not be listened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why: usually the address is in use, or not an address of this host.
    #[source]
    pub source: std::io::Error,
}

/// The two bound listeners of a server.
#[derive(Debug)]
pub struct Listeners {
    /// The serving port.
    pub main: TcpListener,
    /// The admin port (`/livez`, `/readyz`, `/metrics`).
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds `--listen` and `--admin-listen`.
    pub async fn bind(listen: &ListenArgs, admin: &AdminArgs) -> Result<Self, BindError> {
        Ok(Self {
            main: bind(listen.listen).await?,
            admin: bind(admin.admin_listen).await?,
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// A server's listeners, registry, readiness and shutdown, until [`Runtime::run`] serves them.
#[derive(Debug)]
pub struct Runtime {
    /// The server's metric prefix (`irsa_webhook`, `irsa_issuer`): its own families are registered under it.
    metric_prefix: &'static str,
    listeners: Listeners,
    registry: Registry,
    readiness: Readiness,
    shutdown: Shutdown,
    connections: Connections,
}

impl Runtime {
    /// Binds both ports and arms the signals: the first SIGTERM or SIGINT makes the process unready and drains
    /// it for `--drain-timeout` after `--shutdown-delay`, a second one exits at once ([`Shutdown::on_signals`]).
    pub async fn bind(
        metric_prefix: &'static str,
        listen: &ListenArgs,
        admin: &AdminArgs,
        drain: &DrainArgs,
    ) -> Result<Self, BindError> {
        let listeners = Listeners::bind(listen, admin).await?;
        let readiness = Readiness::new();
        let shutdown =
            Shutdown::on_signals(drain.drain_timeout, drain.shutdown_delay, readiness.clone());
        Ok(Self::new(metric_prefix, listeners, shutdown, readiness))
    }

    /// A runtime on listeners bound by the caller, stopped by `shutdown` (tests and embedding).
    pub fn new(
        metric_prefix: &'static str,
        listeners: Listeners,
        shutdown: Shutdown,
        readiness: Readiness,
    ) -> Self {
        Self {
            metric_prefix,
            listeners,
            registry: Registry::default(),
            readiness,
            shutdown,
            connections: Connections::default(),
        }
    }

    /// Limits the serving port's connections as `limits` says (else the defaults), and counts the ones a
    /// limit closes as `<prefix>_connections_closed_total{reason}`.
    pub fn limit_connections(&mut self, limits: &ConnectionArgs) {
        self.connections = Connections {
            limits: limits.clone(),
            closed: ClosedConnections::register(
                self.registry.sub_registry_with_prefix(self.metric_prefix),
            ),
        };
    }

    /// Loads (and so checks) the serving certificate once, before anything starts, with its expiry exposed as
    /// `<prefix>_serving_certificate_expiry_timestamp_seconds`; [`Runtime::run`] serves it, re-read on change.
    pub fn load_tls(&mut self, files: TlsFiles) -> Result<ReloadingConfig, TlsError> {
        let registry = self.registry.sub_registry_with_prefix(self.metric_prefix);
        Ok(ReloadingConfig::new(files)?.with_expiry_metric(registry))
    }

    /// The registry `/metrics` serves; register the command's metrics here before [`Runtime::run`].
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The flag `/readyz` reports; the command sets it once what it serves is complete.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The shutdown; background tasks stop when it is triggered.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Serves `router` on the main port (over TLS when `tls` is given) and the admin router on the admin
    /// port, until the shutdown has drained both.
    pub async fn run(self, router: Router, tls: Option<ReloadingConfig>) {
        let Self {
            metric_prefix: _,
            listeners,
            registry,
            readiness,
            shutdown,
            connections,
        } = self;
        tracing::info!(
            listen = %display_addr(&listeners.main),
            admin = %display_addr(&listeners.admin),
            tls = tls.is_some(),
            "serving"
        );
        // The admin port has the same limits; its early closes are not counted with the serving port's.
        let admin = crate::serve_with(
            listeners.admin,
            crate::admin::router(Arc::new(registry), readiness),
            None,
            shutdown.clone(),
            Connections {
                limits: connections.limits.clone(),
                closed: ClosedConnections::default(),
            },
        );
        let main = crate::serve_with(listeners.main, router, tls, shutdown, connections);
        tokio::join!(main, admin);
        tracing::info!("drained; exiting");
    }
}

fn display_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|err| format!("unknown ({err})"), |addr| addr.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;

    use super::*;

    async fn loopback() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.unwrap()
    }

    #[tokio::test]
    async fn an_address_in_use_is_named_in_the_error() {
        let taken = loopback().await;
        let addr = taken.local_addr().unwrap();
        let err = Listeners::bind(
            &ListenArgs { listen: addr },
            &AdminArgs {
                admin_listen: "127.0.0.1:0".parse().unwrap(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.addr, addr);
        assert_eq!(err.to_string(), format!("cannot listen on {addr}"));
    }

    #[tokio::test]
    async fn serves_both_ports_until_drained() {
        let (main, admin) = (loopback().await, loopback().await);
        let (main_addr, admin_addr) = (main.local_addr().unwrap(), admin.local_addr().unwrap());
        let shutdown = Shutdown::new(Duration::from_secs(1));
        let mut runtime = Runtime::new(
            "test",
            Listeners { main, admin },
            shutdown.clone(),
            Readiness::new(),
        );
        let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
        runtime
            .registry()
            .register("test_starts", "starts", counter.clone());
        counter.inc();
        let readiness = runtime.readiness().clone();
        let task =
            tokio::spawn(runtime.run(Router::new().route("/", get(|| async { "hi" })), None));

        let get = |url: String| async move {
            let response = reqwest::get(url).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        };
        assert_eq!(
            get(format!("http://{main_addr}/")).await,
            (200, "hi".into())
        );
        assert_eq!(get(format!("http://{admin_addr}/readyz")).await.0, 503);
        readiness.set(true);
        assert_eq!(get(format!("http://{admin_addr}/readyz")).await.0, 200);
        let metrics = get(format!("http://{admin_addr}/metrics")).await.1;
        assert!(metrics.contains("test_starts_total 1"), "{metrics}");

        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("drained within the timeout")
            .unwrap();
        assert!(
            TcpListener::bind(main_addr).await.is_ok(),
            "the port is released"
        );
    }
}
