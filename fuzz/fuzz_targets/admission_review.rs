//! The bytes of an AdmissionReview, through what `POST /mutate` runs on them: decode, mutate, the default
//! policy, the encoded response.
//!
//! The ServiceAccount and the Namespace the route would look up come from two top-level members the
//! apiserver never sends (`serviceAccount`, `namespace`: `{"annotations": {...}}`), which `decode` ignores
//! like any unknown member; without `serviceAccount`, the pod's account is annotated with a fixed role, so
//! that every decodable pod is mutated.
//!
//! Asserts, beyond "no panic": the response is JSON echoing the uid; the patch applies to the pod; and the
//! mutation of the patched pod adds nothing (the webhook is reinvoked on its own output).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use irsa_webhook::config::InjectionConfig;
use irsa_webhook::mutate::mutate;
use irsa_webhook::policy::Policy;
use irsa_webhook::review;
use irsa_webhook::views::{NamespaceView, ServiceAccountView};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const DEFAULT_ROLE: &str = "arn:aws:iam::123456789012:role/fuzz";

fn config() -> &'static InjectionConfig {
    static CONFIG: OnceLock<InjectionConfig> = OnceLock::new();
    CONFIG.get_or_init(InjectionConfig::default)
}

/// `{"annotations": {...}}` of member `name`, string values only (as the apiserver stores them).
fn annotations(doc: &Value, name: &str) -> Option<BTreeMap<String, String>> {
    let map = doc.get(name)?.get("annotations")?.as_object()?;
    Some(
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = review::decode(data) else {
        return;
    };
    let Some(pod) = request.pod.as_ref().filter(|_| request.is_pod_create()) else {
        return;
    };
    let cfg = config();
    // Not always JSON to serde_json::Value although decode accepted it: serde_json skips the members decode
    // ignores without checking their UTF-8 (harmless: nothing of them is read or echoed).
    let doc = serde_json::from_slice::<Value>(data).unwrap_or_default();
    let sa = match annotations(&doc, "serviceAccount") {
        Some(a) => ServiceAccountView::from_annotations(&cfg.annotation_prefix, &a),
        None => Some(ServiceAccountView::new(DEFAULT_ROLE)),
    };
    let ns = annotations(&doc, "namespace").and_then(|a| NamespaceView::from_annotations(&a));

    let mutation = mutate(pod, sa.as_ref(), ns.as_ref(), cfg);
    let patch = mutation.patch.clone();

    let body = review::response(&request.uid, &Policy::default().mutation(mutation));
    let answer: Value = serde_json::from_slice(&body).expect("the response is not JSON");
    assert_eq!(
        answer["response"]["uid"].as_str(),
        Some(request.uid.as_str())
    );

    let mut patched = pod.clone();
    if let Err(err) = json_patch::patch(&mut patched, &patch) {
        panic!("the patch does not apply to the pod: {err}\npatch: {patch:?}");
    }
    let again = mutate(&patched, sa.as_ref(), ns.as_ref(), cfg);
    assert!(
        again.patch.is_empty(),
        "mutating the mutated pod patches again ({:?} then {:?}): {:?}",
        patch,
        again.outcome,
        again.patch
    );
});
