//! Graceful shutdown: the first SIGTERM or SIGINT drains, a second one exits at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Readiness;

/// A shutdown signal shared by every server of a process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    token: CancellationToken,
    drain_timeout: Duration,
}

impl Shutdown {
    /// A shutdown that only [`Shutdown::trigger`] starts (tests, embedded use).
    pub fn new(drain_timeout: Duration) -> Self {
        Self {
            token: CancellationToken::new(),
            drain_timeout,
        }
    }

    /// A shutdown started by the first SIGTERM or SIGINT. On that signal `readiness` goes false at once, so the
    /// load balancer or apiserver stops sending new work while in-flight requests finish; a second signal, or the
    /// drain timeout passing, exits the process immediately.
    pub fn on_signals(drain_timeout: Duration, readiness: Readiness) -> Self {
        let shutdown = Self::new(drain_timeout);
        let token = shutdown.token.clone();
        tokio::spawn(async move {
            first_signal().await;
            tracing::info!(
                ?drain_timeout,
                "shutdown signal received: draining (a second signal exits at once)"
            );
            readiness.set(false);
            token.cancel();
            tokio::select! {
                _ = first_signal() => tracing::warn!("second signal: exiting without draining"),
                _ = tokio::time::sleep(drain_timeout + Duration::from_secs(1)) => {
                    tracing::warn!("drain timeout passed: exiting");
                }
            }
            std::process::exit(130);
        });
        shutdown
    }

    /// Starts the shutdown.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when the shutdown starts.
    pub async fn triggered(&self) {
        self.token.cancelled().await
    }

    /// How long servers wait for in-flight connections before giving up on them.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }
}

#[cfg(unix)]
async fn first_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers a process can still be stopped by SIGKILL; never treat the failure as a signal.
            tracing::error!("could not install signal handlers");
            std::future::pending::<()>().await
        }
    }
}

#[cfg(not(unix))]
async fn first_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
