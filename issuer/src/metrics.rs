//! The issuer's Prometheus metrics. Counters for the hot path are resolved once, so a request costs one
//! atomic increment.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of `irsa_issuer_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// `discovery`, `jwks` or `other`.
    pub route: &'static str,
    /// The HTTP status answered.
    pub status: u16,
}

/// Labels of `irsa_issuer_reload_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `key_files`, `apiserver` or `signer`.
    pub source: &'static str,
}

/// The issuer's metrics; cheap to clone (the handles share their values).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    keys_published: Gauge,
    reload_errors: Family<ReloadLabels, Counter>,
    reloads: Counter,
    signer_keys_refused: Gauge,
}

impl Metrics {
    /// Metrics registered under `irsa_issuer_` in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        let sub = registry.sub_registry_with_prefix("irsa_issuer");
        sub.register(
            "requests",
            "HTTP requests answered, by route and status",
            m.requests.clone(),
        );
        sub.register(
            "keys_published",
            "Keys in the published JWKS",
            m.keys_published.clone(),
        );
        sub.register(
            "reload_errors",
            "Key reloads that failed; the last good documents stay published",
            m.reload_errors.clone(),
        );
        sub.register("reloads", "Key changes published", m.reloads.clone());
        sub.register(
            "signer_keys_refused",
            "Keys of the signer's last key set left out of the JWKS because the issuer refuses them",
            m.signer_keys_refused.clone(),
        );
        m
    }

    /// The counter for one route and status, to keep and increment on the hot path.
    pub fn requests(&self, route: &'static str, status: u16) -> Counter {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .clone()
    }

    /// Records how many keys are published now.
    pub fn set_keys_published(&self, n: usize) {
        self.keys_published
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records a failed reload from `source`.
    pub fn reload_error(&self, source: &'static str) {
        self.reload_errors
            .get_or_create(&ReloadLabels { source })
            .inc();
    }

    /// Records a published key change.
    pub fn reloaded(&self) {
        self.reloads.inc();
    }

    /// Records how many keys of the signer's last key set were refused.
    pub fn set_signer_keys_refused(&self, n: usize) {
        self.signer_keys_refused
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
