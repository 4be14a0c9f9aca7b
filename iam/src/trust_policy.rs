//! The trust policy that lets exactly one service account assume a role, and the comparison of it
//! with what IAM already holds.

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use irsa_core::IssuerUrl;

/// The one action a web-identity trust policy allows.
pub const ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";

/// A policy document IAM returned that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustPolicyError {
    /// The document is neither JSON nor percent-encoded JSON.
    #[error("the role's trust policy is not JSON (even after URL-decoding): {0}")]
    NotJson(String),
}

/// The trust policy `create-role` writes: `sts:AssumeRoleWithWebIdentity` for the provider, limited
/// by `StringEquals` to one subject and one audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    provider_arn: String,
    host_path: String,
    subject: String,
    audience: String,
}

impl TrustPolicy {
    /// The policy for `system:serviceaccount:<namespace>:<service_account>` tokens with `audience`,
    /// issued by `provider` and registered in IAM as `provider_arn`.
    pub fn new(
        provider: &IssuerUrl,
        provider_arn: &str,
        namespace: &str,
        service_account: &str,
        audience: &str,
    ) -> TrustPolicy {
        TrustPolicy {
            provider_arn: provider_arn.to_owned(),
            host_path: provider.host_path().to_owned(),
            subject: format!("system:serviceaccount:{namespace}:{service_account}"),
            audience: audience.to_owned(),
        }
    }

    /// The subject the policy admits.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The audience the policy admits.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The document as compact JSON, keys in the order AWS documents them.
    pub fn to_json(&self) -> String {
        // Serializing plain structs cannot fail.
        serde_json::to_string(&self.document()).unwrap_or_default()
    }

    /// The document as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self.document()).unwrap_or_default()
    }

    /// Whether a document IAM holds (percent-encoded, as IAM returns it, or plain) grants exactly
    /// what this policy grants. Spelling differences IAM introduces (a single statement or value
    /// given without its array, key order, white space) do not count as drift.
    pub fn is_satisfied_by(&self, existing: &str) -> Result<bool, TrustPolicyError> {
        let existing = decode_policy_document(existing)?;
        Ok(normalize(existing) == normalize(self.to_value()))
    }

    fn document(&self) -> Document<'_> {
        Document {
            version: "2012-10-17",
            statement: [Statement {
                effect: "Allow",
                principal: Principal {
                    federated: &self.provider_arn,
                },
                action: ASSUME_ROLE_WITH_WEB_IDENTITY,
                condition: Condition {
                    string_equals: SubjectAndAudience(self),
                },
            }],
        }
    }
}

/// Reads a policy document as IAM returns it: percent-encoded JSON (or plain JSON from emulators
/// and older tools).
pub fn decode_policy_document(doc: &str) -> Result<Value, TrustPolicyError> {
    if let Ok(v) = serde_json::from_str(doc) {
        return Ok(v);
    }
    let decoded = percent_encoding::percent_decode_str(doc)
        .decode_utf8()
        .map_err(|e| TrustPolicyError::NotJson(e.to_string()))?;
    serde_json::from_str(&decoded).map_err(|e| TrustPolicyError::NotJson(e.to_string()))
}

/// Brings a policy to one spelling: one-element arrays become their element and arrays of strings
/// are sorted, which is how IAM treats them.
pub(crate) fn normalize(v: Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.into_iter().map(normalize).collect();
            if items.len() == 1 {
                return items.remove(0);
            }
            if items.iter().all(Value::is_string) {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, normalize(v))).collect())
        }
        other => other,
    }
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Statement")]
    statement: [Statement<'a>; 1],
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "Effect")]
    effect: &'static str,
    #[serde(rename = "Principal")]
    principal: Principal<'a>,
    #[serde(rename = "Action")]
    action: &'static str,
    #[serde(rename = "Condition")]
    condition: Condition<'a>,
}

#[derive(Serialize)]
struct Principal<'a> {
    #[serde(rename = "Federated")]
    federated: &'a str,
}

#[derive(Serialize)]
struct Condition<'a> {
    #[serde(rename = "StringEquals")]
    string_equals: SubjectAndAudience<'a>,
}

/// `{"<host/path>:sub": ..., "<host/path>:aud": ...}`: keys depend on the issuer, order is fixed.
struct SubjectAndAudience<'a>(&'a TrustPolicy);

impl Serialize for SubjectAndAudience<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry(&format!("{}:sub", p.host_path), &p.subject)?;
        map.serialize_entry(&format!("{}:aud", p.host_path), &p.audience)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use irsa_core::Partition;
    use irsa_core::names::DEFAULT_AUDIENCE;

    fn policy() -> TrustPolicy {
        let url = IssuerUrl::parse("https://oidc.example.com/cluster-1", false).unwrap();
        let arn = url.provider_arn(Partition::Aws, "111122223333");
        TrustPolicy::new(&url, &arn, "team-a", "uploader", DEFAULT_AUDIENCE)
    }

    #[test]
    fn exact_document() {
        assert_eq!(
            policy().to_json(),
            concat!(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","#,
                r#""Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.example.com/cluster-1"},"#,
                r#""Action":"sts:AssumeRoleWithWebIdentity","#,
                r#""Condition":{"StringEquals":{"oidc.example.com/cluster-1:sub":"system:serviceaccount:team-a:uploader","#,
                r#""oidc.example.com/cluster-1:aud":"sts.amazonaws.com"}}}]}"#
            )
        );
    }

    #[test]
    fn same_document_is_no_drift_plain_or_url_encoded() {
        let p = policy();
        assert!(p.is_satisfied_by(&p.to_json()).unwrap());
        let encoded =
            percent_encoding::utf8_percent_encode(&p.to_json(), percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(encoded.starts_with("%7B%22Version"));
        assert!(p.is_satisfied_by(&encoded).unwrap());
    }

    #[test]
    fn iam_respelling_is_no_drift() {
        // Statement as an object, Federated as a one-element array, keys reordered, white space.
        let respelled = r#"{ "Statement": { "Condition": { "StringEquals": {
            "oidc.example.com/cluster-1:aud": ["sts.amazonaws.com"],
            "oidc.example.com/cluster-1:sub": "system:serviceaccount:team-a:uploader" } },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Principal": { "Federated": ["arn:aws:iam::111122223333:oidc-provider/oidc.example.com/cluster-1"] },
            "Effect": "Allow" }, "Version": "2012-10-17" }"#;
        assert!(policy().is_satisfied_by(respelled).unwrap());
    }

    #[test]
    fn other_subject_or_extra_statement_is_drift() {
        let p = policy();
        let other = p.to_json().replace("uploader", "other");
        assert!(!p.is_satisfied_by(&other).unwrap());
        let mut v = p.to_value();
        let extra = v["Statement"][0].clone();
        v["Statement"].as_array_mut().unwrap().push(extra);
        v["Statement"][1]["Effect"] = "Deny".into();
        assert!(!p.is_satisfied_by(&v.to_string()).unwrap());
        let like = p.to_json().replace("StringEquals", "StringLike");
        assert!(!p.is_satisfied_by(&like).unwrap());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            policy().is_satisfied_by("%7Bnope"),
            Err(TrustPolicyError::NotJson(_))
        ));
    }
}
