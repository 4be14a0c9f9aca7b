//! `connections_closed_total{reason}`: the connections a limit closed, by the limit.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Why the server closed a connection before the client did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The TLS handshake did not finish within `--tls-handshake-timeout`.
    HandshakeTimeout,
    /// A request's headers did not arrive within `--header-read-timeout`.
    HeaderTimeout,
    /// A request's body did not arrive within `--body-read-timeout` (HTTP/2: the stream is reset).
    BodyTimeout,
    /// No request came within `--idle-timeout`.
    IdleTimeout,
    /// An HTTP/2 PING went unanswered for `--http2-keep-alive-timeout`.
    KeepAliveTimeout,
}

impl CloseReason {
    /// Every reason, to register each at zero: a rate over a series that appears only on the first event
    /// misses that event.
    pub const ALL: [CloseReason; 5] = [
        CloseReason::HandshakeTimeout,
        CloseReason::HeaderTimeout,
        CloseReason::BodyTimeout,
        CloseReason::IdleTimeout,
        CloseReason::KeepAliveTimeout,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::HandshakeTimeout => "handshake-timeout",
            CloseReason::HeaderTimeout => "header-timeout",
            CloseReason::BodyTimeout => "body-timeout",
            CloseReason::IdleTimeout => "idle-timeout",
            CloseReason::KeepAliveTimeout => "keep-alive-timeout",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The counter family; cheap to clone, all clones count into one family. A default one counts without being
/// exposed (the admin port, tests that do not look).
#[derive(Clone, Debug, Default)]
pub struct ClosedConnections(Family<ReasonLabel, Counter>);

impl ClosedConnections {
    /// Registers `connections_closed_total` in `registry` (under its prefix), every reason at zero.
    pub fn register(registry: &mut Registry) -> Self {
        let closed = Self::default();
        for reason in CloseReason::ALL {
            let _ = closed.0.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        registry.register(
            "connections_closed",
            "Connections the server closed because a client was too slow or idle, by reason",
            closed.0.clone(),
        );
        closed
    }

    /// Counts one connection closed for `reason`.
    pub fn count(&self, reason: CloseReason) {
        self.0
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// How many connections were closed for `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        self.0
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_exposed_at_zero() {
        let mut registry = Registry::default();
        let closed = ClosedConnections::register(registry.sub_registry_with_prefix("irsa_test"));
        closed.count(CloseReason::IdleTimeout);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for reason in CloseReason::ALL {
            let value = if reason == CloseReason::IdleTimeout {
                1
            } else {
                0
            };
            let line = format!(
                "irsa_test_connections_closed_total{{reason=\"{}\"}} {value}",
                reason.as_str()
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }
}
