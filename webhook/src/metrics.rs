//! The webhook's Prometheus metrics. Label values are `&'static str`s from the outcome, warning and error
//! enums, so recording a sample never allocates.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::mutate::Outcome;
use crate::warning::WarningReason;

/// `outcome` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// What happened to the admission.
    pub outcome: &'static str,
}

/// `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: &'static str,
}

/// `kind` + `result` labels of the direct lookups.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabel {
    /// `serviceaccount` or `namespace`.
    pub kind: &'static str,
    /// `found`, `not-found`, `error`, `timeout`, `rate-limited`.
    pub result: &'static str,
}

/// Outcomes beyond [`Outcome`] that only the server produces.
pub mod outcome {
    /// The request was not a pod CREATE: admitted untouched.
    pub const IGNORED: &str = "ignored";
    /// The body was not a valid AdmissionReview: answered 400.
    pub const INVALID_REQUEST: &str = "invalid-request";
    /// The ServiceAccount or Namespace could not be looked up.
    pub const ERROR: &str = "error";
}

/// Every metric the webhook records.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Time from a request's body being read to its response being encoded.
    pub admission_duration: Histogram,
    /// Admissions by outcome.
    pub admissions: Family<OutcomeLabel, Counter>,
    /// Warnings returned, by reason.
    pub warnings: Family<ReasonLabel, Counter>,
    /// ServiceAccounts in the index.
    pub cached_service_accounts: Gauge,
    /// Lookups the index could not answer.
    pub cache_misses: Family<LookupLabel, Counter>,
    /// Direct GETs made for misses, by result.
    pub fallback_gets: Family<LookupLabel, Counter>,
    /// Errors of the ServiceAccount and Namespace watches (each is retried with backoff).
    pub watch_errors: Family<ReasonLabel, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them under `irsa_webhook_`.
    pub fn register(registry: &mut Registry) -> Self {
        // 25 µs .. ~1.6 s: an admission is tens of microseconds when the cache answers and up to the lookup
        // timeout when it does not; the reference's first bucket (125 ms) hides everything that matters.
        let admission_duration = Histogram::new(exponential_buckets(25e-6, 2.0, 17));
        let metrics = Self {
            admission_duration,
            admissions: Family::default(),
            warnings: Family::default(),
            cached_service_accounts: Gauge::default(),
            cache_misses: Family::default(),
            fallback_gets: Family::default(),
            watch_errors: Family::default(),
        };
        let registry = registry.sub_registry_with_prefix("irsa_webhook");
        registry.register(
            "admission_duration_seconds",
            "Time to answer an admission request, from body read to response encoded",
            metrics.admission_duration.clone(),
        );
        registry.register(
            "admissions",
            "Admission requests by outcome",
            metrics.admissions.clone(),
        );
        registry.register(
            "warnings",
            "Warnings returned to clients, by reason",
            metrics.warnings.clone(),
        );
        registry.register(
            "cached_service_accounts",
            "ServiceAccounts held by the lookup index",
            metrics.cached_service_accounts.clone(),
        );
        registry.register(
            "cache_misses",
            "Lookups the index could not answer (the watch was behind)",
            metrics.cache_misses.clone(),
        );
        registry.register(
            "fallback_gets",
            "Direct GETs to the apiserver made for cache misses, by result",
            metrics.fallback_gets.clone(),
        );
        registry.register(
            "watch_errors",
            "Errors of the ServiceAccount and Namespace watches",
            metrics.watch_errors.clone(),
        );
        // Pre-create every label value so dashboards see zeros rather than gaps.
        for outcome in Outcome::ALL {
            let _ = metrics.admissions.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for outcome in [outcome::IGNORED, outcome::INVALID_REQUEST, outcome::ERROR] {
            let _ = metrics.admissions.get_or_create(&OutcomeLabel { outcome });
        }
        for reason in WarningReason::ALL {
            let _ = metrics.warnings.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        metrics
    }

    /// Counts one admission.
    pub fn admission(&self, outcome: &'static str) {
        self.admissions
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Counts one warning.
    pub fn warning(&self, reason: &'static str) {
        self.warnings.get_or_create(&ReasonLabel { reason }).inc();
    }
}
