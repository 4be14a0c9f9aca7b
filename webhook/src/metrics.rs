//! The webhook's Prometheus metrics. Label values are `&'static str`s from the outcome, warning and error
//! enums, so recording a sample never allocates.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strum::VariantArray as _;

use crate::lookup::LookupError;
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

/// What a direct lookup was for: the `kind` label of the lookup metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum LookupKind {
    /// A pod's ServiceAccount.
    ServiceAccount,
    /// A pod's Namespace.
    Namespace,
}

/// Admission outcomes that only the server produces (the mutation's are [`Outcome`]).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[strum(serialize_all = "kebab-case")]
#[non_exhaustive]
pub enum ServerOutcome {
    /// The request was not a pod CREATE: admitted untouched.
    Ignored,
    /// The body was not a valid AdmissionReview: answered 400.
    InvalidRequest,
    /// The ServiceAccount or Namespace could not be looked up.
    Error,
}

/// The `outcome` label of the admissions metric: the mutation's, or the server's when it did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdmissionOutcome {
    /// The mutation ran.
    Mutation(Outcome),
    /// It did not.
    Server(ServerOutcome),
}

impl AdmissionOutcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutation(outcome) => outcome.as_str(),
            Self::Server(outcome) => outcome.into(),
        }
    }

    /// Every outcome, for pre-registering metric label values.
    pub fn all() -> impl Iterator<Item = Self> {
        let mutation = Outcome::VARIANTS.iter().copied().map(Self::Mutation);
        mutation.chain(ServerOutcome::VARIANTS.iter().copied().map(Self::Server))
    }
}

impl From<Outcome> for AdmissionOutcome {
    fn from(outcome: Outcome) -> Self {
        Self::Mutation(outcome)
    }
}

impl From<ServerOutcome> for AdmissionOutcome {
    fn from(outcome: ServerOutcome) -> Self {
        Self::Server(outcome)
    }
}

impl std::fmt::Display for AdmissionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
        for outcome in AdmissionOutcome::all() {
            let _ = metrics.admissions.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for reason in WarningReason::VARIANTS {
            let _ = metrics.warnings.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        metrics
    }

    /// Counts one admission.
    pub fn admission(&self, outcome: impl Into<AdmissionOutcome>) {
        let outcome = outcome.into().as_str();
        self.admissions
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Counts a lookup the index could not answer.
    pub fn cache_miss(&self, kind: LookupKind) {
        let label = LookupLabel {
            kind: kind.into(),
            result: "miss",
        };
        self.cache_misses.get_or_create(&label).inc();
    }

    /// Counts a direct GET made for a miss: `Ok(found)`, or why it failed.
    pub fn fallback_get(&self, kind: LookupKind, result: Result<bool, &LookupError>) {
        let result = match result {
            Ok(true) => "found",
            Ok(false) => "not-found",
            Err(err) => err.as_str(),
        };
        let label = LookupLabel {
            kind: kind.into(),
            result,
        };
        self.fallback_gets.get_or_create(&label).inc();
    }

    /// Counts one warning.
    pub fn warning(&self, reason: WarningReason) {
        let reason = reason.as_str();
        self.warnings.get_or_create(&ReasonLabel { reason }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    /// Dashboards and alerts see a zero, not a gap, for every label value the code can record.
    #[test]
    fn every_outcome_and_warning_reason_is_registered_at_zero() {
        let mut registry = Registry::default();
        let _metrics = Metrics::register(&mut registry);
        let text = encoded(&registry);
        for reason in WarningReason::VARIANTS {
            let series = format!("irsa_webhook_warnings_total{{reason=\"{reason}\"}} 0\n");
            assert!(text.contains(&series), "{series} missing from\n{text}");
        }
        for outcome in AdmissionOutcome::all() {
            let series = format!("irsa_webhook_admissions_total{{outcome=\"{outcome}\"}} 0\n");
            assert!(text.contains(&series), "{series} missing from\n{text}");
        }
        // The one the server raises when a lookup fails was once a bare string, missing from this list.
        assert!(text.contains("irsa_webhook_warnings_total{reason=\"lookup-failed\"} 0\n"));
        assert!(text.contains("irsa_webhook_admissions_total{outcome=\"error\"} 0\n"));
    }

    #[test]
    fn recording_counts_under_the_label() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.warning(WarningReason::LookupFailed);
        metrics.admission(ServerOutcome::Error);
        metrics.admission(Outcome::AlreadyMutated);
        let text = encoded(&registry);
        assert!(text.contains("irsa_webhook_warnings_total{reason=\"lookup-failed\"} 1\n"));
        assert!(text.contains("irsa_webhook_admissions_total{outcome=\"error\"} 1\n"));
        assert!(text.contains("irsa_webhook_admissions_total{outcome=\"already-mutated\"} 1\n"));
    }

    #[test]
    fn lookups_are_counted_by_kind_and_result() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.cache_miss(LookupKind::ServiceAccount);
        metrics.fallback_get(LookupKind::ServiceAccount, Ok(true));
        metrics.fallback_get(LookupKind::Namespace, Ok(false));
        metrics.fallback_get(LookupKind::Namespace, Err(&LookupError::RateLimited));
        let text = encoded(&registry);
        for series in [
            "irsa_webhook_cache_misses_total{kind=\"serviceaccount\",result=\"miss\"} 1\n",
            "irsa_webhook_fallback_gets_total{kind=\"serviceaccount\",result=\"found\"} 1\n",
            "irsa_webhook_fallback_gets_total{kind=\"namespace\",result=\"not-found\"} 1\n",
            "irsa_webhook_fallback_gets_total{kind=\"namespace\",result=\"rate-limited\"} 1\n",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
    }

    #[test]
    fn admission_outcome_labels_are_unique() {
        let mut labels: Vec<_> = AdmissionOutcome::all()
            .map(AdmissionOutcome::as_str)
            .collect();
        let count = labels.len();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), count);
        assert_eq!(count, Outcome::VARIANTS.len() + 3);
    }
}
