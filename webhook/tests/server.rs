//! The admission server in-process (router + request) and over real TLS, with a mock apiserver (kube's
//! `tower-test` pattern) behind the ServiceAccount lookups: cache hits, the miss path, its coalescing, an
//! apiserver error, a timeout, and every kind of bad request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use irsa_webhook::cache::{AccountEntry, Index};
use irsa_webhook::config::InjectionConfig;
use irsa_webhook::lookup::{LookupLimits, Resolver};
use irsa_webhook::metrics::{Metrics, OutcomeLabel, ReasonLabel};
use irsa_webhook::policy::{OnFailure, Policy};
use irsa_webhook::routes::{AdmissionState, router};
use irsa_webhook::views::ServiceAccountView;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ROLE: &str = "arn:aws:iam::111122223333:role/app";

/// How the mock apiserver answers.
#[derive(Clone, Copy)]
enum Apiserver {
    /// The ServiceAccount exists with the role annotation; namespaces exist unrestricted.
    Annotated,
    /// Every request fails with 500.
    Failing,
    /// Never answers.
    Silent,
}

struct Fixture {
    state: Arc<AdmissionState>,
    service_account_gets: Arc<AtomicUsize>,
}

fn fixture(apiserver: Apiserver, on_lookup_failure: OnFailure, timeout: Duration) -> Fixture {
    let (service, mut handle) =
        tower_test::mock::pair::<Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let service_account_gets = Arc::new(AtomicUsize::new(0));
    let gets = service_account_gets.clone();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let path = request.uri().path().to_owned();
            if path.contains("/serviceaccounts/") {
                gets.fetch_add(1, Ordering::SeqCst);
            }
            let (status, body) = match apiserver {
                Apiserver::Silent => {
                    // Keep the responder alive so the request hangs rather than failing.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(respond);
                    });
                    continue;
                }
                Apiserver::Failing => (
                    500,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "etcd is down", "reason": "InternalError", "code": 500}),
                ),
                Apiserver::Annotated if path.contains("/serviceaccounts/") => {
                    // A little latency, so concurrent misses overlap and must be coalesced.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let name = path.rsplit('/').next().unwrap_or_default();
                    (
                        200,
                        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                        "metadata": {"name": name, "namespace": "team", "annotations": {"eks.amazonaws.com/role-arn": ROLE}}}),
                    )
                }
                Apiserver::Annotated => (
                    200,
                    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                    "metadata": {"name": "team"}}),
                ),
            };
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            respond.send_response(response);
        }
    });
    let client = kube::Client::new(service, "default");
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let limits = LookupLimits {
        timeout,
        ..LookupLimits::default()
    };
    let index = Arc::new(Index::new());
    index.apply_namespace("cached", None);
    index.apply_service_account(
        "cached",
        "app",
        AccountEntry::Annotated(Arc::new(ServiceAccountView::new(ROLE))),
    );
    index.apply_service_account("cached", "plain", AccountEntry::Unannotated);
    let resolver = Resolver::new(
        index,
        client,
        "eks.amazonaws.com".into(),
        limits,
        metrics.clone(),
    );
    let state = Arc::new(AdmissionState {
        config: InjectionConfig::default(),
        resolver,
        policy: Policy {
            on_lookup_failure,
            on_forbidden_role: OnFailure::Admit,
        },
        metrics,
    });
    Fixture {
        state,
        service_account_gets,
    }
}

fn review(namespace: &str, account: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": namespace,
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": namespace},
                "spec": {"serviceAccountName": account, "containers": [{"name": "app", "image": "app:1"}]}
            }
        }
    })
}

async fn post(state: &Arc<AdmissionState>, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
    let request = Request::post("/mutate")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let response = router(state.clone(), 64 * 1024)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

async fn admit(state: &Arc<AdmissionState>, review: &Value) -> Value {
    let (status, body) = post(state, serde_json::to_vec(review).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice::<Value>(&body).unwrap()["response"].clone()
}

fn patch_of(response: &Value) -> Vec<Value> {
    let Some(patch) = response["patch"].as_str() else {
        return Vec::new();
    };
    serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap(),
    )
    .unwrap()
}

fn injects_role(response: &Value) -> bool {
    patch_of(response)
        .iter()
        .any(|op| op.to_string().contains(ROLE))
}

#[tokio::test]
async fn cache_hit_mutates_without_asking_the_apiserver() {
    let f = fixture(Apiserver::Failing, OnFailure::Deny, Duration::from_secs(1));
    let response = admit(&f.state, &review("cached", "app", "u-1")).await;
    assert_eq!(response["uid"], "u-1");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    assert!(injects_role(&response), "{response}");
    assert_eq!(f.service_account_gets.load(Ordering::SeqCst), 0);

    let plain = admit(&f.state, &review("cached", "plain", "u-2")).await;
    assert_eq!(plain["allowed"], true);
    assert!(
        plain.get("patch").is_none(),
        "an unannotated account gets no patch: {plain}"
    );
}

#[tokio::test]
async fn a_miss_gets_the_account_at_once_and_concurrent_misses_share_one_get() {
    let f = fixture(
        Apiserver::Annotated,
        OnFailure::Deny,
        Duration::from_secs(2),
    );
    let admissions = (0..8).map(|i| {
        let state = f.state.clone();
        async move { admit(&state, &review("team", "fresh", &format!("u-{i}"))).await }
    });
    for response in futures::future::join_all(admissions).await {
        assert!(
            injects_role(&response),
            "a miss was admitted unmutated: {response}"
        );
    }
    assert_eq!(
        f.service_account_gets.load(Ordering::SeqCst),
        1,
        "misses for one key are coalesced"
    );
    // The answer was kept: the next admission is a hit.
    let response = admit(&f.state, &review("team", "fresh", "u-9")).await;
    assert!(injects_role(&response));
    assert_eq!(f.service_account_gets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_apiserver_error_admits_with_a_warning_by_default() {
    let f = fixture(Apiserver::Failing, OnFailure::Admit, Duration::from_secs(1));
    let response = admit(&f.state, &review("team", "unknown", "u-1")).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("WITHOUT AWS") && warning.contains("team/unknown"),
        "{warning}"
    );
}

/// A failed lookup is counted under its own warning reason and the `error` outcome, whatever the policy.
#[tokio::test]
async fn a_failed_lookup_is_counted() {
    for policy in [OnFailure::Admit, OnFailure::Deny] {
        let f = fixture(Apiserver::Failing, policy, Duration::from_secs(1));
        admit(&f.state, &review("team", "unknown", "u-1")).await;
        let metrics = &f.state.metrics;
        let warnings = metrics.warnings.get_or_create(&ReasonLabel {
            reason: "lookup-failed",
        });
        assert_eq!(warnings.get(), 1);
        let errors = metrics
            .admissions
            .get_or_create(&OutcomeLabel { outcome: "error" });
        assert_eq!(errors.get(), 1);
    }
}

#[tokio::test]
async fn an_apiserver_error_denies_with_on_lookup_failure_deny() {
    let f = fixture(Apiserver::Failing, OnFailure::Deny, Duration::from_secs(1));
    let response = admit(&f.state, &review("team", "unknown", "u-1")).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("could not look up"),
        "{response}"
    );
}

#[tokio::test]
async fn a_silent_apiserver_times_out_instead_of_hanging_the_admission() {
    let f = fixture(
        Apiserver::Silent,
        OnFailure::Deny,
        Duration::from_millis(200),
    );
    let started = std::time::Instant::now();
    let response = admit(&f.state, &review("team", "unknown", "u-1")).await;
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{response}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the lookup timeout"
    );
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_change_nothing() {
    let f = fixture(Apiserver::Failing, OnFailure::Deny, Duration::from_secs(1));
    let (status, body) = post(&f.state, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("not a JSON AdmissionReview"));

    let mut wrong_kind = review("cached", "app", "u");
    wrong_kind["kind"] = json!("ConfigMap");
    assert_eq!(
        post(&f.state, serde_json::to_vec(&wrong_kind).unwrap())
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let mut v1beta1 = review("cached", "app", "u");
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, body) = post(&f.state, serde_json::to_vec(&v1beta1).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("v1beta1"));

    let oversized = vec![b' '; 65 * 1024];
    assert_eq!(
        post(&f.state, oversized).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let get = Request::get("/mutate").body(Body::empty()).unwrap();
    let response = router(f.state.clone(), 1024).oneshot(get).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let elsewhere = Request::post("/other").body(Body::empty()).unwrap();
    assert_eq!(
        router(f.state.clone(), 1024)
            .oneshot(elsewhere)
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn other_kinds_and_operations_are_admitted_untouched() {
    let f = fixture(Apiserver::Failing, OnFailure::Deny, Duration::from_secs(1));
    let mut update = review("cached", "app", "u-1");
    update["request"]["operation"] = json!("UPDATE");
    let response = admit(&f.state, &update).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());

    let mut config_map = review("cached", "app", "u-2");
    config_map["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    let response = admit(&f.state, &config_map).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
}

#[tokio::test]
async fn serves_admissions_over_real_tls() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
    let f = fixture(Apiserver::Failing, OnFailure::Deny, Duration::from_secs(1));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = irsa_serve::tls::TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let shutdown = irsa_serve::Shutdown::new(Duration::from_secs(1));
    tokio::spawn(irsa_serve::serve(
        listener,
        router(f.state.clone(), 1 << 20),
        Some(irsa_serve::tls::ReloadingConfig::new(tls).unwrap()),
        shutdown,
    ));

    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let response = client
        .post(format!("https://{addr}/mutate"))
        .json(&review("cached", "app", "tls-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "AdmissionReview");
    assert_eq!(body["response"]["uid"], "tls-1");
    assert!(injects_role(&body["response"]));
    let malformed = client
        .post(format!("https://{addr}/mutate"))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    // Without a Content-Type, refused as what it is.
    let untyped = client
        .post(format!("https://{addr}/mutate"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(untyped.status(), 415);
    // Too large by its Content-Length: refused before it is sent, never "100 Continue".
    let oversized = client
        .post(format!("https://{addr}/mutate"))
        .header("content-type", "application/json")
        .header("expect", "100-continue")
        .body(vec![b' '; (1 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
}

/// The apiserver sends `application/json`; anything else is refused with 415 and a body that says what is
/// expected, and counted as an invalid request.
#[tokio::test]
async fn a_body_that_is_not_json_gets_415() {
    let f = fixture(Apiserver::Failing, OnFailure::Deny, Duration::from_secs(1));
    let body = serde_json::to_vec(&review("cached", "app", "u-1")).unwrap();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        None,
    ] {
        let mut request = Request::post("/mutate");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = router(f.state.clone(), 64 * 1024)
            .oneshot(request.body(Body::from(body.clone())).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let text = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("Content-Type: application/json"), "{text}");
        assert!(text.contains(content_type.unwrap_or("none")), "{text}");
    }
    let invalid = f.state.metrics.admissions.get_or_create(&OutcomeLabel {
        outcome: "invalid-request",
    });
    assert_eq!(invalid.get(), 4);

    // The apiserver's own, and its variants, are accepted.
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
    ] {
        let request = Request::post("/mutate")
            .header("content-type", content_type)
            .body(Body::from(body.clone()))
            .unwrap();
        let response = router(f.state.clone(), 64 * 1024)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{content_type}");
    }
}
