//! `admission.k8s.io/v1` AdmissionReview, decoded with [`Reader`] and encoded member by member.
//!
//! Only the request fields the webhook uses are decoded, borrowed from the request bytes (everything else,
//! `oldObject` and `userInfo` included, is skipped without being built), and of the pod only what the
//! mutation reads ([`pod_decode`]). A member given twice counts once, the last one, as in serde_json's
//! `Value` and Go.

use base64::Engine as _;
use json_patch::Patch;
use serde::Serialize;

use crate::{
    json_reader::{JsonError, Kind, Reader},
    pod::{self, Pod, Text},
    pod_decode,
};

/// The only AdmissionReview version served.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The kind of the envelope.
pub const KIND: &str = "AdmissionReview";

/// Why a request body is not an AdmissionReview this webhook can answer; the variant's name in kebab-case is
/// its log label.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
#[non_exhaustive]
pub enum ReviewError {
    /// The body is not JSON, or a field has the wrong JSON type.
    #[error("the request body is not a JSON AdmissionReview: {0}")]
    Malformed(#[source] JsonError),
    /// `admission.k8s.io/v1beta1`: not served.
    #[strum(serialize = "v1beta1")]
    #[error(
        "AdmissionReview admission.k8s.io/v1beta1 is not served: set admissionReviewVersions to [v1] in the \
         MutatingWebhookConfiguration"
    )]
    V1beta1,
    /// Any other `apiVersion`, or none.
    #[error("unsupported AdmissionReview apiVersion {0:?}: only admission.k8s.io/v1 is served")]
    WrongApiVersion(String),
    /// `kind` is not `AdmissionReview`.
    #[error("expected kind AdmissionReview, got {0:?}")]
    WrongKind(String),
    /// No `request`.
    #[error("the AdmissionReview has no request")]
    MissingRequest,
    /// No `request.uid` (or an empty one): a response could not be matched to the request.
    #[error("the AdmissionReview request has no uid")]
    MissingUid,
}

impl ReviewError {
    /// A log label.
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
}

/// The parts of an admission request the webhook uses, borrowed from the request bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionRequestView<'a> {
    /// `request.uid`, echoed in the response.
    pub uid: Text<'a>,
    /// `request.kind` is group `""`, kind `Pod`.
    pub kind_is_pod: bool,
    /// `request.operation` (`CREATE`, `UPDATE`, ...).
    pub operation: Text<'a>,
    /// `request.namespace`.
    pub namespace: Text<'a>,
    /// `request.name` (empty for pods created with `generateName`).
    pub name: Text<'a>,
    /// `request.subResource`, when the request is for one (`pods/ephemeralcontainers`, ...).
    pub sub_resource: Option<Text<'a>>,
    /// `request.object` as the mutation reads it ([`Pod`]): not the whole pod.
    pub pod: Option<Pod<'a>>,
    /// `request.dryRun`.
    pub dry_run: bool,
}

impl AdmissionRequestView<'_> {
    /// Whether this is a pod CREATE with an object to mutate; anything else is admitted untouched.
    pub fn is_pod_create(&self) -> bool {
        self.kind_is_pod
            && self.operation == "CREATE"
            && self.sub_resource.is_none()
            && self.pod.is_some()
    }

    /// `spec.serviceAccountName` of the pod, `default` when unset.
    pub fn service_account_name(&self) -> &str {
        self.pod
            .as_ref()
            .map_or("default", pod::service_account_name)
    }

    /// The pod's name, else its `generateName`, for logs.
    pub fn pod_name(&self) -> &str {
        if !self.name.is_empty() {
            return &self.name;
        }
        self.pod.as_ref().map_or("", pod::pod_name)
    }
}

/// The envelope's members, as the body has them (`None`: absent or `null`).
#[derive(Default)]
struct ReviewIn<'a> {
    api_version: Option<Text<'a>>,
    kind: Option<Text<'a>>,
    request: Option<RequestIn<'a>>,
}

#[derive(Default)]
struct RequestIn<'a> {
    uid: Option<Text<'a>>,
    /// `request.kind`'s group and kind (each "" when absent).
    kind: Option<(Text<'a>, Text<'a>)>,
    operation: Option<Text<'a>>,
    namespace: Option<Text<'a>>,
    name: Option<Text<'a>>,
    sub_resource: Option<Text<'a>>,
    object: Option<Pod<'a>>,
    dry_run: Option<bool>,
}

/// Decodes an `admission.k8s.io/v1` AdmissionReview request body.
pub fn decode(body: &[u8]) -> Result<AdmissionRequestView<'_>, ReviewError> {
    let mut r = Reader::new(body);
    let review = review_in(&mut r)
        .and_then(|review| r.end().map(|()| review))
        .map_err(ReviewError::Malformed)?;
    view(review)
}

/// `Some` object read by `read`, or `None` for `null`; another type is an error.
fn optional_object<'a, T>(
    r: &mut Reader<'a>,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, JsonError>,
) -> Result<Option<T>, JsonError> {
    match r.kind()? {
        Kind::Null => r.skip().map(|()| None),
        Kind::Object => read(r).map(Some),
        _ => r.error("expected an object"),
    }
}

fn review_in<'a>(r: &mut Reader<'a>) -> Result<ReviewIn<'a>, JsonError> {
    let mut review = ReviewIn::default();
    // `object` refuses any other value ("expected an object").
    r.object(|r, member| {
        match member.as_ref() {
            "apiVersion" => review.api_version = r.optional_string()?,
            "kind" => review.kind = r.optional_string()?,
            "request" => review.request = optional_object(r, request_in)?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok(review)
}

fn request_in<'a>(r: &mut Reader<'a>) -> Result<RequestIn<'a>, JsonError> {
    let mut request = RequestIn::default();
    r.object(|r, member| {
        match member.as_ref() {
            "uid" => request.uid = r.optional_string()?,
            "kind" => request.kind = optional_object(r, group_kind)?,
            "operation" => request.operation = r.optional_string()?,
            "namespace" => request.namespace = r.optional_string()?,
            "name" => request.name = r.optional_string()?,
            "subResource" => request.sub_resource = r.optional_string()?,
            "object" => request.object = optional_object(r, pod_decode::pod)?,
            "dryRun" => request.dry_run = r.optional_bool()?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok(request)
}

/// A GroupVersionKind's group and kind; a missing one is "", a `null` one an error.
fn group_kind<'a>(r: &mut Reader<'a>) -> Result<(Text<'a>, Text<'a>), JsonError> {
    let (mut group, mut kind) = (Text::Borrowed(""), Text::Borrowed(""));
    r.object(|r, member| {
        match member.as_ref() {
            "group" => group = r.string()?,
            "kind" => kind = r.string()?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok((group, kind))
}

/// Checks the envelope and keeps what the webhook uses.
fn view(review: ReviewIn<'_>) -> Result<AdmissionRequestView<'_>, ReviewError> {
    match review.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some("admission.k8s.io/v1beta1") => return Err(ReviewError::V1beta1),
        other => {
            return Err(ReviewError::WrongApiVersion(
                other.unwrap_or_default().to_owned(),
            ));
        }
    }
    match review.kind {
        Some(kind) if kind == KIND => {}
        other => {
            return Err(ReviewError::WrongKind(
                other.map(Text::into_owned).unwrap_or_default(),
            ));
        }
    }
    let request = review.request.ok_or(ReviewError::MissingRequest)?;
    let uid = request
        .uid
        .filter(|uid| !uid.is_empty())
        .ok_or(ReviewError::MissingUid)?;
    let kind_is_pod = request
        .kind
        .is_some_and(|(group, kind)| group.is_empty() && kind == "Pod");
    Ok(AdmissionRequestView {
        uid,
        kind_is_pod,
        operation: request.operation.unwrap_or_default(),
        namespace: request.namespace.unwrap_or_default(),
        name: request.name.unwrap_or_default(),
        sub_resource: request.sub_resource.filter(|s| !s.is_empty()),
        pod: request.object,
        dry_run: request.dry_run.unwrap_or(false),
    })
}

/// What the webhook answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Admit, with a patch when it is not empty.
    Allow {
        /// The JSON Patch to apply; empty for none.
        patch: Patch,
        /// Warnings kubectl prints.
        warnings: Vec<String>,
    },
    /// Refuse the pod.
    Deny {
        /// Why, shown to the user.
        message: String,
        /// Warnings kubectl prints.
        warnings: Vec<String>,
    },
}

impl Decision {
    /// Admit without a patch.
    pub fn allow() -> Self {
        Self::Allow {
            patch: Patch(Vec::new()),
            warnings: Vec::new(),
        }
    }
}

/// Serializes the AdmissionReview response for `uid`.
///
/// Written member by member rather than through a `Serialize` struct: the patch's base64 goes in as it is,
/// while serde_json would scan its every byte for characters to escape (base64 has none); that scan of the
/// response's largest string was a tenth of an admission's instructions. Every other string goes through
/// serde_json's escaping.
pub fn response(uid: &str, decision: &Decision) -> Vec<u8> {
    let (allowed, patch, warnings, message) = match decision {
        Decision::Allow { patch, warnings } => (true, Some(patch), warnings, None),
        Decision::Deny { message, warnings } => (false, None, warnings, Some(message)),
    };
    // Sized up front (an operation is about 230 bytes of JSON): no buffer grows and is copied on the way.
    let patch = patch.filter(|patch| !patch.is_empty()).map(|patch| {
        let mut json = Vec::with_capacity(256 * patch.len());
        serde_json::to_writer(&mut json, patch).expect("a JSON Patch always serializes");
        json
    });
    let encoded_len = patch.as_ref().map_or(0, |json| {
        base64::encoded_len(json.len(), true)
            .expect("a Vec holds at most isize::MAX bytes, whose base64 length fits in a usize")
    });
    let mut out = Vec::with_capacity(256 + encoded_len);
    out.extend_from_slice(b"{\"apiVersion\":");
    json(&mut out, API_VERSION);
    out.extend_from_slice(b",\"kind\":");
    json(&mut out, KIND);
    out.extend_from_slice(b",\"response\":{\"uid\":");
    json(&mut out, uid);
    out.extend_from_slice(b",\"allowed\":");
    json(&mut out, &allowed);
    if let Some(patch) = patch {
        out.extend_from_slice(b",\"patchType\":\"JSONPatch\",\"patch\":\"");
        let at = out.len();
        out.resize(at + encoded_len, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(&patch, &mut out[at..])
            .expect("the buffer has the encoded length");
        out.truncate(at + written);
        out.push(b'"');
    }
    if !warnings.is_empty() {
        out.extend_from_slice(b",\"warnings\":");
        json(&mut out, warnings);
    }
    if let Some(message) = message {
        out.extend_from_slice(
            b",\"status\":{\"status\":\"Failure\",\"code\":403,\"reason\":\"Forbidden\",\"message\":",
        );
        json(&mut out, message);
        out.push(b'}');
    }
    out.extend_from_slice(b"}}");
    out
}

/// Appends `value` as JSON.
fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("strings, booleans and string lists always serialize");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::InjectionConfig,
        mutate::mutate_pod,
        policy::{OnFailure, Policy},
        views::ServiceAccountView,
    };
    use serde_json::{Value, json};

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": API_VERSION, "kind": KIND, "request": request}))
            .unwrap()
    }

    fn pod_request() -> Value {
        json!({
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "team-a",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["x"]},
            "object": {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"generateName": "web-5d8f7-", "namespace": "team-a",
                                    "managedFields": [{"manager": "kube-controller-manager"}]},
                       "status": {"phase": "Pending"},
                       "spec": {"serviceAccountName": "web", "containers": [{"name": "app"}]}},
            "oldObject": null,
            "dryRun": true,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        })
    }

    #[test]
    fn decodes_a_pod_create() {
        let body = review(pod_request());
        let view = decode(&body).unwrap();
        assert_eq!(view.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert!(view.kind_is_pod);
        assert!(view.is_pod_create());
        assert_eq!(view.operation, "CREATE");
        assert_eq!(view.namespace, "team-a");
        assert!(view.dry_run);
        assert_eq!(view.service_account_name(), "web");
        assert_eq!(view.pod_name(), "web-5d8f7-");
        assert_eq!(
            view.pod.as_ref().unwrap().spec.containers.items()[0].name,
            "app"
        );
    }

    #[test]
    fn malformed_json_is_a_clear_error() {
        let err = decode(b"{\"apiVersion\": ").unwrap_err();
        assert!(matches!(err, ReviewError::Malformed(_)));
        assert!(
            err.to_string()
                .starts_with("the request body is not a JSON AdmissionReview"),
            "{err}"
        );
        assert!(matches!(decode(b"[]"), Err(ReviewError::Malformed(_))));
        // A field of the wrong type is malformed too, not silently defaulted.
        let mut request = pod_request();
        request["uid"] = json!(42);
        assert!(matches!(
            decode(&review(request)),
            Err(ReviewError::Malformed(_))
        ));
        let mut request = pod_request();
        request["object"] = json!("a pod");
        assert!(matches!(
            decode(&review(request)),
            Err(ReviewError::Malformed(_))
        ));
        let mut request = pod_request();
        request["object"]["metadata"] = json!([]);
        assert!(matches!(
            decode(&review(request)),
            Err(ReviewError::Malformed(_))
        ));
        let mut request = pod_request();
        request["object"] = Value::Null;
        assert_eq!(decode(&review(request)).unwrap().pod, None);
    }

    // Found by the fuzzer (fuzz/regressions/admission_review/): sonic-rs, once tried as a faster first parser,
    // panicked on invalid UTF-8 inside a string the decoder skips.
    #[test]
    fn invalid_utf8_in_a_skipped_string_is_an_error_not_a_panic() {
        let body = b"{\"request\":{\"object\":{\"spec\":{\"volumes\":{\"\":\"\xac\"";
        assert!(matches!(decode(body), Err(ReviewError::Malformed(_))));
    }

    // The body's UTF-8 is checked up front for speed only: what the byte parser accepted (invalid UTF-8 in a
    // member nothing reads) it still accepts, and what it refused it still refuses.
    #[test]
    fn a_body_that_is_not_utf8_decodes_as_the_byte_parser_says() {
        let mut body = review(pod_request());
        let at = body.windows(6).position(|w| w == b"Create").unwrap();
        body[at] = 0xff;
        assert!(std::str::from_utf8(&body).is_err());
        let view = decode(&body).unwrap();
        assert_eq!(view, decode(&review(pod_request())).unwrap());
    }

    #[test]
    fn what_serde_json_refuses_stays_malformed() {
        let body = review(pod_request());
        let mut trailing = body.clone();
        trailing.extend_from_slice(b" x");
        assert!(matches!(decode(&trailing), Err(ReviewError::Malformed(_))));
        let mut not_utf8 = body.clone();
        let at = not_utf8.windows(4).position(|w| w == b"team").unwrap();
        not_utf8[at] = 0xff;
        assert!(matches!(decode(&not_utf8), Err(ReviewError::Malformed(_))));
        assert!(matches!(
            decode(&body[..body.len() - 1]),
            Err(ReviewError::Malformed(_))
        ));
        // A string with escapes is copied, not borrowed, and decodes the same.
        let text = String::from_utf8(body).unwrap();
        let escaped = text
            .replace(r#""namespace":"team-a""#, r#""namespace":"team-\u0061\"""#)
            .replace(r#""uid":"705ab4f5"#, r#""uid":"\u00e9705ab4f5"#);
        assert_ne!(escaped, text);
        let view = decode(escaped.as_bytes()).unwrap();
        assert_eq!(view.namespace, "team-a\"");
        assert_eq!(view.uid, "é705ab4f5-6393-11e8-b7cc-42010a800002");
    }

    #[test]
    fn a_member_given_twice_counts_once_the_last() {
        let body = br#"{"apiVersion": "v1", "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
            "request": {"uid": "first", "uid": "second", "kind": {"group": "", "kind": "Pod"},
                        "operation": "DELETE", "operation": "CREATE", "object": null, "object": {}}}"#;
        let view = decode(body).unwrap();
        assert_eq!(view.uid, "second");
        assert!(view.is_pod_create());
        let body = br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "uid": ""}}"#;
        assert!(matches!(decode(body), Err(ReviewError::MissingUid)));
        // A repeated member is still read with its type checked.
        let body = br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "uid": 1}}"#;
        assert!(matches!(decode(body), Err(ReviewError::Malformed(_))));
    }

    #[test]
    fn v1beta1_and_other_versions_are_refused() {
        let body = serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": KIND,
                                              "request": pod_request()}),
        )
        .unwrap();
        let err = decode(&body).unwrap_err();
        assert!(matches!(err, ReviewError::V1beta1));
        assert!(err.to_string().contains("admissionReviewVersions"), "{err}");

        let body = serde_json::to_vec(&json!({"kind": KIND, "request": pod_request()})).unwrap();
        assert!(matches!(decode(&body), Err(ReviewError::WrongApiVersion(v)) if v.is_empty()));
        let body = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": KIND})).unwrap();
        assert!(matches!(decode(&body), Err(ReviewError::WrongApiVersion(v)) if v == "v1"));
    }

    #[test]
    fn wrong_kind_is_refused() {
        let body = serde_json::to_vec(
            &json!({"apiVersion": API_VERSION, "kind": "Pod", "request": pod_request()}),
        )
        .unwrap();
        let err = decode(&body).unwrap_err();
        assert!(matches!(&err, ReviewError::WrongKind(k) if k == "Pod"));
        assert_eq!(
            err.to_string(),
            "expected kind AdmissionReview, got \"Pod\""
        );
    }

    #[test]
    fn missing_request_or_uid_is_refused() {
        let body = serde_json::to_vec(&json!({"apiVersion": API_VERSION, "kind": KIND})).unwrap();
        assert!(matches!(decode(&body), Err(ReviewError::MissingRequest)));
        let mut request = pod_request();
        request.as_object_mut().unwrap().remove("uid");
        assert!(matches!(
            decode(&review(request)),
            Err(ReviewError::MissingUid)
        ));
        let mut request = pod_request();
        request["uid"] = json!("");
        let err = decode(&review(request)).unwrap_err();
        assert!(matches!(err, ReviewError::MissingUid));
        assert_eq!(err.as_str(), "missing-uid");
    }

    #[test]
    fn other_kinds_operations_and_subresources_pass_through() {
        let mut request = pod_request();
        request["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        let body = review(request);
        let view = decode(&body).unwrap();
        assert!(!view.kind_is_pod);
        assert!(!view.is_pod_create());

        let mut request = pod_request();
        request["kind"] = json!({"group": "example.com", "version": "v1", "kind": "Pod"});
        assert!(!decode(&review(request)).unwrap().kind_is_pod);

        let mut request = pod_request();
        request["operation"] = json!("UPDATE");
        assert!(!decode(&review(request)).unwrap().is_pod_create());

        let mut request = pod_request();
        request["subResource"] = json!("ephemeralcontainers");
        assert!(!decode(&review(request)).unwrap().is_pod_create());

        let mut request = pod_request();
        request.as_object_mut().unwrap().remove("object");
        let body = review(request);
        let view = decode(&body).unwrap();
        assert!(!view.is_pod_create());
        assert_eq!(view.service_account_name(), "default");
    }

    fn decode_response(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn response_round_trips_the_patch() {
        let body = review(pod_request());
        let view = decode(&body).unwrap();
        let sa = ServiceAccountView::new("arn:aws:iam::123456789012:role/web");
        let mutation = mutate_pod(
            view.pod.as_ref().unwrap(),
            Some(&sa),
            None,
            &InjectionConfig::default(),
        );
        assert!(!mutation.patch.is_empty());
        let expected_patch = mutation.patch.clone();
        let policy = Policy {
            on_forbidden_role: OnFailure::Deny,
            ..Policy::default()
        };
        let bytes = response(&view.uid, &policy.mutation(mutation));
        let out = decode_response(&bytes);
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(out["kind"], "AdmissionReview");
        assert_eq!(out["response"]["uid"], view.uid.as_ref());
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(out["response"]["patchType"], "JSONPatch");
        assert!(out["response"].get("warnings").is_none());
        assert!(out["response"].get("status").is_none());
        let raw = base64::engine::general_purpose::STANDARD
            .decode(out["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: Patch = serde_json::from_slice(&raw).unwrap();
        assert_eq!(patch, expected_patch);
    }

    #[test]
    fn empty_patch_has_no_patch_type() {
        let decision = Decision::Allow {
            patch: Patch(vec![]),
            warnings: vec!["careful".into()],
        };
        let out = decode_response(&response("u1", &decision));
        assert_eq!(
            out,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "u1", "allowed": true, "warnings": ["careful"]}})
        );
        assert_eq!(
            decode_response(&response("u2", &Decision::allow()))["response"],
            json!({"uid": "u2", "allowed": true})
        );
    }

    #[test]
    fn a_denial_has_the_status_and_every_string_is_escaped() {
        let decision = Decision::Deny {
            message: "role \"r\" is not permitted\n\u{1}".into(),
            warnings: vec!["w \\ \"1\"".into(), "é".into()],
        };
        let bytes = response("u\"1", &decision);
        assert_eq!(
            decode_response(&bytes),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "u\"1", "allowed": false, "warnings": ["w \\ \"1\"", "é"],
                                "status": {"status": "Failure", "code": 403, "reason": "Forbidden",
                                           "message": "role \"r\" is not permitted\n\u{1}"}}})
        );
        // Written as serde_json writes it: compact, members in this order.
        assert_eq!(
            String::from_utf8(response("u", &Decision::allow())).unwrap(),
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}}"#
        );
    }

    #[test]
    fn error_labels_are_the_kebab_case_variant_names() {
        let malformed = decode(b"[]").unwrap_err();
        let labels = [
            (malformed, "malformed"),
            (ReviewError::V1beta1, "v1beta1"),
            (
                ReviewError::WrongApiVersion(String::new()),
                "wrong-api-version",
            ),
            (ReviewError::WrongKind(String::new()), "wrong-kind"),
            (ReviewError::MissingRequest, "missing-request"),
            (ReviewError::MissingUid, "missing-uid"),
        ];
        for (err, label) in labels {
            assert_eq!(err.as_str(), label, "{err:?}");
        }
    }
}
