//! What one connection is doing, as far as its timeouts care: whether a request is in progress, since when
//! it has been waiting for the next one, and whether that one has begun to arrive.
//!
//! The I/O wrapper reports bytes read, the service wrapper requests begun and finished; the connection's
//! watchdog asks for the next deadline and sleeps until it, or until something changed.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::CloseReason;
use crate::args::ConnectionArgs;

/// The protocol of a connection: the timeouts differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/1.1: one request at a time, headers in the clear.
    Http1,
    /// HTTP/2: streams, PINGs and window updates flow while no request is in progress, so bytes read say
    /// nothing about a request beginning.
    Http2,
}

/// The shared state of one connection.
pub(crate) struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    protocol: Protocol,
    /// How many bytes of the h2 preface a plain-text connection has sent so far; `None` once decided.
    preface_matched: Option<usize>,
    in_flight: usize,
    served: bool,
    /// Since when no request has been in progress.
    waiting_since: Instant,
    /// When the first byte of the next request arrived (HTTP/1.1 only).
    request_begun: Option<Instant>,
}

/// The HTTP/2 connection preface (RFC 9113, 3.4): how a plain-text connection says it speaks h2.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl Activity {
    /// A connection accepted now; `protocol` as ALPN said, or [`Protocol::Http1`] until the first bytes say
    /// otherwise.
    pub(crate) fn new(protocol: Protocol) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                protocol,
                preface_matched: (protocol == Protocol::Http1).then_some(0),
                in_flight: 0,
                served: false,
                waiting_since: Instant::now(),
                request_begun: None,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `bytes` arrived from the client.
    pub(crate) fn read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut state = self.lock();
        if let Some(matched) = state.preface_matched {
            // A trickling client may send the preface (or "POST") a byte at a time: decide on a mismatch or
            // on the whole preface.
            let rest = &H2_PREFACE[matched..];
            let n = bytes.len().min(rest.len());
            state.preface_matched = if bytes[..n] != rest[..n] {
                None
            } else if n == rest.len() {
                state.protocol = Protocol::Http2;
                None
            } else {
                Some(matched + n)
            };
        }
        if state.in_flight == 0 && state.request_begun.is_none() {
            state.request_begun = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// A request's headers were read: the connection is busy until the returned guard is dropped (with the
    /// response body).
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        let mut state = self.lock();
        state.in_flight += 1;
        state.served = true;
        state.request_begun = None;
        drop(state);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// The next deadline of the connection and what passing it means; `None` while a request is in progress
    /// (its body has its own deadline, its handler is the application's business).
    pub(crate) fn deadline(&self, limits: &ConnectionArgs) -> Option<(Instant, CloseReason)> {
        let state = self.lock();
        if state.in_flight > 0 {
            return None;
        }
        Some(match (state.protocol, state.request_begun) {
            (Protocol::Http2, _) => (
                state.waiting_since + limits.idle_timeout,
                CloseReason::IdleTimeout,
            ),
            (Protocol::Http1, Some(begun)) => (
                begun + limits.header_read_timeout,
                CloseReason::HeaderTimeout,
            ),
            // A new connection owes its first request at once: nothing legitimate connects to wait.
            (Protocol::Http1, None) if !state.served => (
                state.waiting_since + limits.header_read_timeout,
                CloseReason::HeaderTimeout,
            ),
            (Protocol::Http1, None) => (
                state.waiting_since + limits.idle_timeout,
                CloseReason::IdleTimeout,
            ),
        })
    }

    /// Completes when something changed since the last call (a permit is kept if nobody waited).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await
    }
}

/// A request in progress on its connection; dropped with the response body.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.waiting_since = Instant::now();
            state.request_begun = None;
        }
        drop(state);
        self.0.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> ConnectionArgs {
        ConnectionArgs {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(100),
            ..ConnectionArgs::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn http1_deadlines_follow_the_requests() {
        let activity = Activity::new(Protocol::Http1);
        let start = Instant::now();
        let second = Duration::from_secs(1);
        // A new connection: its first request's headers are due from the handshake.
        assert_eq!(
            activity.deadline(&limits()),
            Some((start + second, CloseReason::HeaderTimeout))
        );
        let guard = activity.begin();
        assert_eq!(activity.deadline(&limits()), None);
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(guard);
        let idle = Instant::now();
        assert_eq!(
            activity.deadline(&limits()),
            Some((idle + Duration::from_secs(100), CloseReason::IdleTimeout))
        );
        // The next request's first byte starts its header clock.
        tokio::time::advance(Duration::from_secs(50)).await;
        activity.read(b"P");
        activity.read(b"OST");
        assert_eq!(
            activity.deadline(&limits()),
            Some((Instant::now() + second, CloseReason::HeaderTimeout))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn http2_is_only_ever_idle_and_is_recognised_by_its_preface() {
        let activity = Activity::new(Protocol::Http1);
        activity.read(b"PR");
        activity.read(b"I * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let start = Instant::now();
        assert_eq!(
            activity.deadline(&limits()),
            Some((start + Duration::from_secs(100), CloseReason::IdleTimeout))
        );
    }
}
