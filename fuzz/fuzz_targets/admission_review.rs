//! The bytes of an AdmissionReview, through what `POST /mutate` runs on them: decode, mutate, the default
//! policy, the encoded response.
//!
//! The ServiceAccount and the Namespace the route would look up come from two top-level members the
//! apiserver never sends (`serviceAccount`, `namespace`: `{"annotations": {...}}`), which `decode` ignores
//! like any unknown member; without `serviceAccount`, the pod's account is annotated with a fixed role, so
//! that every decodable pod is mutated.
//!
//! Asserts, beyond "no panic": the webhook's JSON reader accepts exactly what serde_json accepts (but for
//! nesting deeper than its limit); the response is JSON echoing the uid; the patch applies to the pod; and
//! the mutation of the patched pod adds nothing (the webhook is reinvoked on its own output).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use irsa_webhook::config::InjectionConfig;
use irsa_webhook::json_reader::Reader;
use irsa_webhook::mutate::{mutate, mutate_pod};
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

/// The reader skipping the whole input agrees with serde_json, which skips any depth.
fn check_reader(data: &[u8]) {
    let mut reader = Reader::new(data);
    let read = reader.skip().and_then(|()| reader.end());
    let serde = serde_json::from_slice::<serde::de::IgnoredAny>(data);
    match (read, serde) {
        (Ok(()), Ok(_)) => {}
        (Ok(()), Err(err)) => panic!("the reader accepts what serde_json refuses: {err}"),
        (Err(err), Ok(_)) => assert!(
            err.what.contains("nested deeper"),
            "the reader refuses what serde_json accepts: {err}"
        ),
        (Err(_), Err(_)) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    check_reader(data);
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

    let mutation = mutate_pod(pod, sa.as_ref(), ns.as_ref(), cfg);
    let expected = mutation.clone();
    let patch = mutation.patch.clone();

    let body = review::response(&request.uid, &Policy::default().mutation(mutation));
    let answer: Value = serde_json::from_slice(&body).expect("the response is not JSON");
    assert_eq!(
        answer["response"]["uid"].as_str(),
        Some(request.uid.as_ref())
    );

    // The whole pod, when serde_json can build it (not when a skipped string is not UTF-8, a number is out
    // of f64's range, or the nesting is deeper than it builds).
    let Some(mut patched) = doc.pointer("/request/object").cloned() else {
        return;
    };
    // The mutation of the whole pod is the mutation of the decoded one.
    assert_eq!(mutate(&patched, sa.as_ref(), ns.as_ref(), cfg), expected);
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
