//! The signer's Prometheus metrics, served on `--metrics-address` by `irsa_serve`'s admin router.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::live::Snapshot;

/// The prefix of the signer's metrics.
pub const PREFIX: &str = "irsa_signer";

/// Labels of the per-key counters: a handful of keys at a time, so a bounded set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KidLabels {
    /// The key ID.
    pub kid: String,
}

/// Labels of `irsa_signer_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateLabels {
    /// `pre-published`, `active`, `retiring` or `retired`.
    pub state: &'static str,
}

/// Labels of `irsa_signer_key_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `reload` (the key source could not be read; the last good set stays) or `rotate` (the automatic
    /// rotation could not write a key).
    pub operation: &'static str,
}

/// The signer's metrics; cheap to clone (the handles share their values).
#[derive(Debug, Clone)]
pub struct Metrics {
    sign_duration: Histogram,
    signs: Family<KidLabels, Counter>,
    sign_errors: Family<KidLabels, Counter>,
    keys: Family<StateLabels, Gauge>,
    key_errors: Family<ErrorLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            // 10 µs (an in-memory ECDSA signature) to about 160 ms (a slow remote signer).
            sign_duration: Histogram::new(exponential_buckets(10e-6, 2.0, 15)),
            signs: Family::default(),
            sign_errors: Family::default(),
            keys: Family::default(),
            key_errors: Family::default(),
        }
    }
}

impl Metrics {
    /// Metrics registered under `irsa_signer_` in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        let sub = registry.sub_registry_with_prefix(PREFIX);
        sub.register(
            "sign_duration_seconds",
            "Time to sign one token (the apiserver waits for it on every TokenRequest)",
            m.sign_duration.clone(),
        );
        sub.register("signs", "Tokens signed, by key", m.signs.clone());
        sub.register(
            "sign_errors",
            "Signatures that failed, by key",
            m.sign_errors.clone(),
        );
        sub.register(
            "keys",
            "Keys by rotation state (pre-published, active, retiring, retired)",
            m.keys.clone(),
        );
        sub.register(
            "key_errors",
            "Key reloads and automatic rotations that failed; the last good key set stays in use",
            m.key_errors.clone(),
        );
        m
    }

    /// Records one signature by `kid` that took `took`.
    pub fn signed(&self, kid: &str, took: Duration, ok: bool) {
        self.sign_duration.observe(took.as_secs_f64());
        let labels = KidLabels {
            kid: kid.to_string(),
        };
        if ok {
            self.signs.get_or_create(&labels).inc();
        } else {
            self.sign_errors.get_or_create(&labels).inc();
        }
    }

    /// Records the number of keys in each state.
    pub fn set_states(&self, snapshot: &Snapshot) {
        for state in ["pre-published", "active", "retiring", "retired"] {
            let n = snapshot.states().filter(|(_, s)| s.name() == state).count();
            self.keys
                .get_or_create(&StateLabels { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Records a failed reload of the key source.
    pub fn reload_error(&self) {
        self.key_errors
            .get_or_create(&ErrorLabels {
                operation: "reload",
            })
            .inc();
    }

    /// Records a failed automatic rotation.
    pub fn rotate_error(&self) {
        self.key_errors
            .get_or_create(&ErrorLabels {
                operation: "rotate",
            })
            .inc();
    }
}
