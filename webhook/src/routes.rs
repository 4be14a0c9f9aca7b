//! The admission endpoint: `POST /mutate` with an `admission.k8s.io/v1` AdmissionReview.
//!
//! The handler decodes the review, looks up the pod's ServiceAccount (and, for annotated ones, its
//! Namespace's role restriction) through the [`Resolver`], runs the pure [`mutate_pod`], lets the [`Policy`] decide,
//! and encodes the answer.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::cache::AccountEntry;
use crate::config::InjectionConfig;
use crate::lookup::{LookupError, Resolver};
use crate::metrics::{AdmissionOutcome, Metrics, ServerOutcome};
use crate::mutate::mutate_pod;
use crate::policy::Policy;
use crate::review::{self, AdmissionRequestView, Decision};
use crate::warning::WarningReason;

/// Everything the admission handler needs.
pub struct AdmissionState {
    /// How pods are injected.
    pub config: InjectionConfig,
    /// ServiceAccount and Namespace lookups.
    pub resolver: Resolver,
    /// `--on-lookup-failure` and `--on-forbidden-role`.
    pub policy: Policy,
    /// Where admissions are counted.
    pub metrics: Metrics,
}

/// The default largest AdmissionReview accepted (`--max-body-bytes`): 4 MiB, well above the apiserver's own
/// object size limit (about 1.5 MiB in etcd), so any pod the apiserver stores fits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The webhook's router: `POST /mutate`, bodies over `max_body_bytes` refused with 413 (from their
/// `Content-Length` before they are read, see [`irsa_serve::body_limit`]), bodies that are not
/// `application/json` with 415.
pub fn router(state: Arc<AdmissionState>, max_body_bytes: usize) -> Router {
    let router = Router::new()
        .route("/mutate", post(admit))
        .with_state(state);
    irsa_serve::body_limit::limit(router, max_body_bytes)
}

/// Whether `headers` say the body is JSON: `application/json`, parameters (`charset=utf-8`) allowed, as the
/// apiserver sends it.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

async fn admit(
    State(state): State<Arc<AdmissionState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    if !is_json(&headers) {
        // Not what the apiserver sends: say what is expected rather than a JSON parse error about the body.
        let got = headers
            .get(header::CONTENT_TYPE)
            .map_or("none".into(), |value| {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            });
        tracing::warn!(content_type = %got, "AdmissionReview with the wrong Content-Type");
        state.metrics.admission(ServerOutcome::InvalidRequest);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "POST /mutate takes an AdmissionReview as Content-Type: application/json, not {got:?}\n"
            ),
        )
            .into_response();
    }
    let response = match review::decode(&body) {
        Ok(request) => {
            let (decision, outcome) = decide(&state, &request).await;
            log_admission(&request, outcome);
            state.metrics.admission(outcome);
            json(review::response(&request.uid, &decision))
        }
        Err(err) => {
            // Not an admission the apiserver sent: answer 400 so the failure shows in its logs and metrics.
            tracing::warn!(error = %err, reason = err.as_str(), "invalid AdmissionReview");
            state.metrics.admission(ServerOutcome::InvalidRequest);
            (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response()
        }
    };
    state
        .metrics
        .admission_duration
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Decides one decoded request; returns the decision and the outcome label.
async fn decide(
    state: &AdmissionState,
    request: &AdmissionRequestView<'_>,
) -> (Decision, AdmissionOutcome) {
    let Some(pod) = request.pod.as_ref().filter(|_| request.is_pod_create()) else {
        return (Decision::allow(), ServerOutcome::Ignored.into());
    };
    let namespace = request.namespace.as_ref();
    let account_name = request.service_account_name();
    let account = match state
        .resolver
        .service_account(namespace, account_name)
        .await
    {
        Ok(account) => account,
        Err(err) => {
            return lookup_failed(
                state,
                request,
                &format!("ServiceAccount {namespace}/{account_name}"),
                &err,
            );
        }
    };
    // Only annotated accounts (and legacy pod roles) need the namespace: unannotated pods are the common case
    // and stay one lookup.
    let needs_namespace = matches!(account, AccountEntry::Annotated(_))
        || crate::legacy::needs_namespace(pod, &state.config);
    let restriction = match needs_namespace {
        false => None,
        true => match state.resolver.namespace(namespace).await {
            Ok(restriction) => restriction,
            Err(err) => {
                return lookup_failed(state, request, &format!("Namespace {namespace}"), &err);
            }
        },
    };
    let mutation = mutate_pod(pod, account.view(), restriction.as_deref(), &state.config);
    for warning in mutation.all_warnings() {
        state.metrics.warning(warning.reason);
    }
    let outcome = mutation.outcome.into();
    (state.policy.mutation(mutation), outcome)
}

fn lookup_failed(
    state: &AdmissionState,
    request: &AdmissionRequestView<'_>,
    what: &str,
    err: &LookupError,
) -> (Decision, AdmissionOutcome) {
    state.metrics.warning(WarningReason::LookupFailed);
    tracing::warn!(namespace = %request.namespace, pod = %request.pod_name(), %err, "{what} lookup failed");
    (
        state.policy.lookup_failed(what, err),
        ServerOutcome::Error.into(),
    )
}

fn log_admission(request: &AdmissionRequestView<'_>, outcome: AdmissionOutcome) {
    tracing::debug!(
        namespace = %request.namespace,
        pod = %request.pod_name(),
        service_account = %request.service_account_name(),
        operation = %request.operation,
        outcome = outcome.as_str(),
        "admission"
    );
}

fn json(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
