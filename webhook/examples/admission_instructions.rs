//! Runs one step of the admission hot path N times over the 6.6 KB review, for instruction counts under
//! valgrind (`bench/README.md`, decode section): wall-clock timings on the shared 2-core VM are too noisy to
//! compare a few microseconds, instruction counts are not.
//!
//! `cargo build --release -p irsa-webhook --example admission_instructions`, then
//! `valgrind --tool=cachegrind --cache-sim=no target/release/examples/admission_instructions STEP N` for
//! N = 0 and N = 2000: the difference over 2000 is the step's instructions. STEP is `decode`, `admit`,
//! `mutate`, `encode`, `skip` (serde_json skipping the whole review), `reader-skip` (the webhook's own
//! reader skipping it: the decode's floor), or `old-decode`, `old-encode`, `old-admit`: the decode and
//! response encode before issue #16 (the pod built as a `serde_json::Value` minus managedFields and status,
//! the response through `Serialize` structs; from 6f35d38), kept here to compare side by side. The old
//! mutation, which walked that `Value`, is gone: `old-admit` runs today's on the pod decoded beforehand, so
//! its count is a lower bound of the old path's (its mutate was 58k instructions, today's is less). It
//! allocates with mimalloc, as the image does.

use std::hint::black_box;

use irsa_webhook::{
    config::InjectionConfig,
    json_reader::Reader,
    mutate::mutate_pod,
    pod::Pod,
    policy::Policy,
    review::{self, AdmissionRequestView, Decision},
    views::ServiceAccountView,
};

/// As in the `irsa` binary, every build allocates with mimalloc (bench/README.md's counts of 2026-11-29's second
/// part are of glibc's allocator, or mimalloc where they say `--target x86_64-unknown-linux-musl`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REVIEW_6KB: &[u8] = include_bytes!("../benches/fixtures/review-6kb.json");

fn main() {
    let mut args = std::env::args().skip(1);
    let step = args.next().unwrap_or_else(|| "admit".into());
    let n: usize = args.next().map_or(1, |n| n.parse().expect("N is a count"));
    let cfg = InjectionConfig {
        aws_default_region: Some("eu-west-1".into()),
        ..InjectionConfig::default()
    };
    let sa = ServiceAccountView::new("arn:aws:iam::123456789012:role/orders-api");
    let request = review::decode(REVIEW_6KB).expect("a valid review");
    let pod = request.pod.as_ref().expect("a pod");
    let decision = Policy::default().mutation(mutate_pod(pod, Some(&sa), None, &cfg));
    // The old and new paths answer the same bytes.
    assert_eq!(
        old_admit(REVIEW_6KB, &sa, &cfg, pod),
        admit(REVIEW_6KB, &sa, &cfg)
    );
    for _ in 0..n {
        match step.as_str() {
            "decode" => drop(black_box(decode(black_box(REVIEW_6KB)))),
            "old-decode" => drop(black_box(old::decode(black_box(REVIEW_6KB)))),
            "admit" => drop(black_box(admit(black_box(REVIEW_6KB), &sa, &cfg))),
            "old-admit" => drop(black_box(old_admit(black_box(REVIEW_6KB), &sa, &cfg, pod))),
            "skip" => drop(black_box(
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(REVIEW_6KB)).unwrap(),
            )),
            "reader-skip" => {
                let mut reader = Reader::new(black_box(REVIEW_6KB));
                reader.skip().and_then(|()| reader.end()).unwrap();
            }
            "mutate" => drop(black_box(mutate_pod(black_box(pod), Some(&sa), None, &cfg))),
            "encode" => drop(black_box(review::response(
                black_box(&request.uid),
                black_box(&decision),
            ))),
            "old-encode" => drop(black_box(old::response(
                black_box(&request.uid),
                black_box(&decision),
            ))),
            other => panic!("unknown step {other}"),
        }
    }
}

fn decode(body: &[u8]) -> AdmissionRequestView<'_> {
    review::decode(body).expect("a valid review")
}

/// As `benches/mutate.rs`: decode + mutate + encode.
fn admit(body: &[u8], sa: &ServiceAccountView, cfg: &InjectionConfig) -> Vec<u8> {
    let request = decode(body);
    let decision = match request.pod.as_ref().filter(|_| request.is_pod_create()) {
        Some(pod) => Policy::default().mutation(mutate_pod(pod, Some(sa), None, cfg)),
        None => Decision::allow(),
    };
    review::response(&request.uid, &decision)
}

/// The old decode and encode around today's mutation of `pod` (decoded beforehand from the same review).
fn old_admit(
    body: &[u8],
    sa: &ServiceAccountView,
    cfg: &InjectionConfig,
    pod: &Pod<'_>,
) -> Vec<u8> {
    let request = old::decode(body);
    let decision = match request.pod.as_ref().filter(|_| request.is_pod_create()) {
        Some(_) => Policy::default().mutation(mutate_pod(pod, Some(sa), None, cfg)),
        None => Decision::allow(),
    };
    old::response(&request.uid, &decision)
}

/// The decode of 6f35d38 (`git show 6f35d38:webhook/src/review.rs`), errors left out.
mod old {
    use base64::Engine as _;
    use irsa_webhook::review::Decision;
    use serde::{
        Deserialize, Deserializer, Serialize,
        de::{IgnoredAny, MapAccess, Visitor},
    };
    use serde_json::{Map, Value};

    #[derive(Deserialize)]
    struct ReviewIn {
        #[serde(rename = "apiVersion")]
        _api_version: Option<String>,
        #[serde(rename = "kind")]
        _kind: Option<String>,
        request: Option<RequestIn>,
    }

    #[derive(Deserialize)]
    struct RequestIn {
        uid: Option<String>,
        kind: Option<GroupVersionKind>,
        operation: Option<String>,
        namespace: Option<String>,
        name: Option<String>,
        #[serde(rename = "subResource")]
        sub_resource: Option<String>,
        object: Option<TrimmedObject>,
        #[serde(rename = "dryRun")]
        dry_run: Option<bool>,
    }

    #[derive(Deserialize)]
    struct GroupVersionKind {
        #[serde(default)]
        group: String,
        #[serde(default)]
        kind: String,
    }

    struct TrimmedObject(Value);

    impl<'de> Deserialize<'de> for TrimmedObject {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_map(SkippingVisitor {
                    skip: "status",
                    metadata: true,
                })
                .map(TrimmedObject)
        }
    }

    struct SkippingVisitor {
        skip: &'static str,
        metadata: bool,
    }

    struct Metadata(Value);

    impl<'de> Deserialize<'de> for Metadata {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_map(SkippingVisitor {
                    skip: "managedFields",
                    metadata: false,
                })
                .map(Metadata)
        }
    }

    impl<'de> Visitor<'de> for SkippingVisitor {
        type Value = Value;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if key == self.skip {
                    map.next_value::<IgnoredAny>()?;
                } else if self.metadata && key == "metadata" {
                    object.insert(key, map.next_value::<Metadata>()?.0);
                } else {
                    object.insert(key, map.next_value::<Value>()?);
                }
            }
            Ok(Value::Object(object))
        }
    }

    #[derive(Serialize)]
    struct ReviewOut<'a> {
        #[serde(rename = "apiVersion")]
        api_version: &'static str,
        kind: &'static str,
        response: ResponseOut<'a>,
    }

    #[derive(Serialize)]
    struct ResponseOut<'a> {
        uid: &'a str,
        allowed: bool,
        #[serde(rename = "patchType", skip_serializing_if = "Option::is_none")]
        patch_type: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<String>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        warnings: &'a [String],
    }

    /// The old response of an admitted pod (the denial left out).
    pub fn response(uid: &str, decision: &Decision) -> Vec<u8> {
        let Decision::Allow { patch, warnings } = decision else {
            unimplemented!("only admissions are measured")
        };
        let patch = (!patch.is_empty()).then(|| {
            let json = serde_json::to_vec(patch).expect("a JSON Patch always serializes");
            base64::engine::general_purpose::STANDARD.encode(json)
        });
        let review = ReviewOut {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response: ResponseOut {
                uid,
                allowed: true,
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch,
                warnings,
            },
        };
        serde_json::to_vec(&review).expect("an AdmissionReview response always serializes")
    }

    /// What the old decode kept (all of it decoded, whether this harness reads it or not).
    #[allow(dead_code)]
    pub struct Request {
        pub uid: String,
        pub kind_is_pod: bool,
        pub operation: String,
        pub namespace: String,
        pub name: String,
        pub sub_resource: Option<String>,
        pub pod: Option<Value>,
        pub dry_run: bool,
    }

    impl Request {
        pub fn is_pod_create(&self) -> bool {
            self.kind_is_pod
                && self.operation == "CREATE"
                && self.sub_resource.is_none()
                && self.pod.is_some()
        }
    }

    /// The old decode, for a valid review.
    pub fn decode(body: &[u8]) -> Request {
        let review: ReviewIn = serde_json::from_slice(body).expect("a valid review");
        let request = review.request.expect("a request");
        Request {
            uid: request.uid.unwrap_or_default(),
            kind_is_pod: request
                .kind
                .is_some_and(|gvk| gvk.group.is_empty() && gvk.kind == "Pod"),
            operation: request.operation.unwrap_or_default(),
            namespace: request.namespace.unwrap_or_default(),
            name: request.name.unwrap_or_default(),
            sub_resource: request.sub_resource.filter(|s| !s.is_empty()),
            pod: request.object.map(|object| object.0),
            dry_run: request.dry_run.unwrap_or(false),
        }
    }
}
