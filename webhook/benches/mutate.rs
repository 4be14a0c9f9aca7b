//! The admission hot path without the network: AdmissionReview bytes in, response bytes out
//! (decode + mutate + encode), on a minimal pod and on a realistic ~6 KB review of a Deployment's pod.
//!
//! `benches/fixtures/review-6kb.json` is shared with the load generator.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use irsa_webhook::{
    config::InjectionConfig,
    mutate::mutate_pod,
    policy::Policy,
    review::{self, Decision},
    views::ServiceAccountView,
};
use serde_json::json;

/// As in the `irsa` binary, every build allocates with mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REVIEW_6KB: &str = include_str!("fixtures/review-6kb.json");

fn small_review() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b1f4c0de-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "default",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "app", "namespace": "default"},
                "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": "app:1"}]}
            }
        }
    }))
    .unwrap()
}

/// What the server does per request, minus the cache lookup and HTTP.
fn admit(body: &[u8], sa: &ServiceAccountView, cfg: &InjectionConfig) -> Vec<u8> {
    let request = review::decode(body).expect("a valid review");
    let decision = match request.pod.as_ref().filter(|_| request.is_pod_create()) {
        Some(pod) => Policy::default().mutation(mutate_pod(pod, Some(sa), None, cfg)),
        None => Decision::allow(),
    };
    review::response(&request.uid, &decision)
}

fn bench(c: &mut Criterion) {
    let cfg = InjectionConfig {
        aws_default_region: Some("eu-west-1".into()),
        ..InjectionConfig::default()
    };
    let sa = ServiceAccountView::new("arn:aws:iam::123456789012:role/orders-api");
    let small = small_review();
    let large = REVIEW_6KB.as_bytes();

    // Make sure both inputs take the full path: a patch is produced.
    for body in [&small[..], large] {
        let out: serde_json::Value = serde_json::from_slice(&admit(body, &sa, &cfg)).unwrap();
        assert_eq!(out["response"]["patchType"], "JSONPatch", "{out}");
    }

    let mut group = c.benchmark_group("admit");
    for (name, body) in [("small", &small[..]), ("review-6kb", large)] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| b.iter(|| admit(black_box(body), &sa, &cfg)));
    }
    group.finish();

    let request = review::decode(large).unwrap();
    let pod = request.pod.as_ref().unwrap();
    c.bench_function("decode/review-6kb", |b| {
        b.iter(|| review::decode(black_box(large)).unwrap())
    });
    c.bench_function("mutate/review-6kb", |b| {
        b.iter(|| mutate_pod(black_box(pod), Some(&sa), None, &cfg))
    });
    // The third part of `admit`: the response with its base64 patch (the 9 operations of the review).
    let decision = Policy::default().mutation(mutate_pod(pod, Some(&sa), None, &cfg));
    c.bench_function("encode/review-6kb", |b| {
        b.iter(|| review::response(black_box(&request.uid), black_box(&decision)))
    });
}

mod group {
    // `criterion_group!` generates a `pub fn` without a doc comment.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
