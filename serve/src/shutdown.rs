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
    /// load balancer or apiserver stops sending new work; the servers go on serving for `delay` (until the
    /// endpoint's removal has reached every client), then drain: stop accepting, let in-flight requests finish.
    /// A second signal, or the drain timeout passing, exits the process immediately.
    pub fn on_signals(drain_timeout: Duration, delay: Duration, readiness: Readiness) -> Self {
        let shutdown = Self::new(drain_timeout);
        let draining = shutdown.clone();
        tokio::spawn(async move {
            first_signal().await;
            tracing::info!(
                ?delay,
                ?drain_timeout,
                "shutdown signal received: unready, serving for the shutdown delay, then draining (a second \
                 signal exits at once)"
            );
            tokio::select! {
                _ = draining.begin_after(delay, &readiness) => {}
                _ = first_signal() => {
                    tracing::warn!("second signal: exiting without draining");
                    std::process::exit(130);
                }
            }
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

    /// Makes `readiness` false at once, and starts the shutdown `delay` later.
    async fn begin_after(&self, delay: Duration, readiness: &Readiness) {
        readiness.set(false);
        tokio::time::sleep(delay).await;
        if !delay.is_zero() {
            tracing::info!("shutdown delay over: draining");
        }
        self.trigger();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn unready_at_once_and_draining_only_after_the_delay() {
        let shutdown = Shutdown::new(Duration::from_secs(15));
        let readiness = Readiness::default();
        readiness.set(true);
        let begun = {
            let (shutdown, readiness) = (shutdown.clone(), readiness.clone());
            tokio::spawn(async move {
                shutdown
                    .begin_after(Duration::from_secs(5), &readiness)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!readiness.is_ready(), "unready as soon as the signal came");
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        assert!(
            !shutdown.is_triggered(),
            "still serving during the shutdown delay"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(shutdown.is_triggered(), "draining once the delay is over");
        begun.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn no_delay_drains_at_once() {
        let shutdown = Shutdown::new(Duration::from_secs(15));
        let readiness = Readiness::default();
        shutdown.begin_after(Duration::ZERO, &readiness).await;
        assert!(shutdown.is_triggered());
    }
}
