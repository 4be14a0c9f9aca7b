//! `AWS_ROLE_SESSION_NAME`, rendered from a template so that CloudTrail shows which workload called STS.
//!
//! A template mixes text with `{namespace}`, `{service_account}` and `{pod}`. The result is always a session
//! name STS accepts (`[\w+=,.@-]`, 2 to 64 characters), whatever the names it is made of:
//!
//! - a character STS refuses becomes `-` (Kubernetes names never hold one; hand-made input might);
//! - a name over 64 characters keeps its first 55 and ends with `-` and 8 hex digits of its SHA-256, so two
//!   long names that share a beginning still differ, and the same pod always gets the same name; a name
//!   under 2 characters gets the same suffix.
//!
//! `{pod}` needs care: pods of a ReplicaSet or a Job have only a `generateName` at admission, and the
//! apiserver appends the random part after the webhooks ran. So:
//!
//! - when `metadata.name` is set, it is rendered at admission like the rest;
//! - when the template is `{pod}` alone and only `generateName` is set, the variable takes the name through
//!   the downward API (`valueFrom.fieldRef: metadata.name`). That name is valid by construction: the
//!   apiserver cuts `generateName` to 58 characters and appends 5 of `[a-z0-9]`, so it is 6 to 63 characters
//!   of a DNS subdomain, all of which STS accepts. Only a `generateName` of such characters takes this way;
//! - otherwise (`{pod}` next to other parts, or a `generateName` with other characters) `{pod}` stands for the
//!   `generateName` without its trailing `-` (a Deployment's pod gets its ReplicaSet's name), rendered at
//!   admission: the exact name cannot be spliced into a longer value and still be cut to 64 characters.

use std::fmt;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::pod::{self, Pod};

/// The longest session name STS accepts.
pub const MAX_LEN: usize = 64;
/// The shortest session name STS accepts.
pub const MIN_LEN: usize = 2;
/// Hex digits of the hash that ends a cut or padded name.
const HASH_DIGITS: usize = 8;

/// A session name template, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionNameTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(Box<str>),
    Namespace,
    ServiceAccount,
    Pod,
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Nothing but white space.
    #[error("is empty")]
    Empty,
    /// A `{...}` that is not one of the three placeholders.
    #[error(
        "has an unknown placeholder {{{0}}} (known: {{namespace}}, {{service_account}}, {{pod}})"
    )]
    UnknownPlaceholder(String),
    /// A `{` without its `}`, or a `}` without its `{`.
    #[error("has an unmatched '{0}'")]
    Unmatched(char),
    /// Text with a character STS refuses in a session name.
    #[error(
        "has {0:?}, which STS refuses in a session name (allowed: letters, digits and _+=,.@-)"
    )]
    InvalidChar(char),
    /// More text than a session name can hold.
    #[error(
        "has {0} characters of text besides its placeholders; a session name has at most {MAX_LEN}"
    )]
    TooLong(usize),
}

impl SessionNameTemplate {
    /// Parses a template (surrounding white space ignored).
    pub fn parse(raw: &str) -> Result<Self, TemplateError> {
        let mut rest = raw.trim();
        if rest.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut text_len = 0;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let (name, tail) = after.split_once('}').ok_or(TemplateError::Unmatched('{'))?;
                parts.push(match name {
                    "namespace" => Part::Namespace,
                    "service_account" => Part::ServiceAccount,
                    "pod" => Part::Pod,
                    other => return Err(TemplateError::UnknownPlaceholder(other.to_owned())),
                });
                rest = tail;
                continue;
            }
            let end = rest.find('{').unwrap_or(rest.len());
            let text = &rest[..end];
            if text.contains('}') {
                return Err(TemplateError::Unmatched('}'));
            }
            if let Some(bad) = text.chars().find(|c| !is_session_char(*c)) {
                return Err(TemplateError::InvalidChar(bad));
            }
            text_len += text.len();
            parts.push(Part::Text(text.into()));
            rest = &rest[end..];
        }
        if text_len > MAX_LEN {
            return Err(TemplateError::TooLong(text_len));
        }
        Ok(Self { parts })
    }

    /// The env entry `AWS_ROLE_SESSION_NAME` for this pod: a value rendered now, or the pod's name through
    /// the downward API when only the apiserver will know it and it is valid by construction.
    pub fn env_entry(&self, pod: &Pod<'_>, name: &str) -> Value {
        let generated = pod::non_empty(&pod.metadata.name).is_none();
        if generated
            && self.parts == [Part::Pod]
            && let Some(stem) = pod::non_empty(&pod.metadata.generate_name)
            && stem
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}});
        }
        json!({"name": name, "value": self.render(pod)})
    }

    /// The session name rendered at admission (see the module documentation for `{pod}`).
    pub fn render(&self, pod: &Pod<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            let value = match part {
                Part::Text(text) => text,
                Part::Namespace => pod::non_empty(&pod.metadata.namespace).unwrap_or_default(),
                Part::ServiceAccount => pod::service_account_name(pod),
                Part::Pod => pod::non_empty(&pod.metadata.name)
                    .or_else(|| {
                        pod::non_empty(&pod.metadata.generate_name).map(|g| g.trim_end_matches('-'))
                    })
                    .unwrap_or_default(),
            };
            out.extend(
                value
                    .chars()
                    .map(|c| if is_session_char(c) { c } else { '-' }),
            );
        }
        fit(out)
    }
}

impl fmt::Display for SessionNameTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(text) => f.write_str(text)?,
                Part::Namespace => f.write_str("{namespace}")?,
                Part::ServiceAccount => f.write_str("{service_account}")?,
                Part::Pod => f.write_str("{pod}")?,
            }
        }
        Ok(())
    }
}

/// A session name given literally (kiam's pod annotation `iam.amazonaws.com/session-name`), made valid for
/// STS the way a rendered template is: other characters become `-`, and the length is fitted.
pub fn sanitize(raw: &str) -> String {
    fit(raw
        .trim()
        .chars()
        .map(|c| if is_session_char(c) { c } else { '-' })
        .collect())
}

/// `[\w+=,.@-]`, the characters of STS's `roleSessionName` (`\w` being ASCII there).
fn is_session_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// Cuts or pads an all-ASCII name into `MIN_LEN..=MAX_LEN`, deterministically.
fn fit(name: String) -> String {
    if (MIN_LEN..=MAX_LEN).contains(&name.len()) {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..HASH_DIGITS / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if name.is_empty() {
        return hash;
    }
    let keep = name.len().min(MAX_LEN - 1 - HASH_DIGITS);
    format!("{}-{hash}", &name[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(meta: Value) -> Pod<'static> {
        pod::from_value(&json!({"metadata": meta, "spec": {"serviceAccountName": "orders-api"}}))
    }

    fn is_valid(name: &str) -> bool {
        (MIN_LEN..=MAX_LEN).contains(&name.len()) && name.chars().all(is_session_char)
    }

    #[test]
    fn templates_render_the_names() {
        let t = SessionNameTemplate::parse(" {namespace}.{service_account}@{pod} ").unwrap();
        assert_eq!(t.to_string(), "{namespace}.{service_account}@{pod}");
        let p = pod(json!({"name": "web-0", "namespace": "team-a"}));
        assert_eq!(t.render(&p), "team-a.orders-api@web-0");
        // A ReplicaSet's pod: the stem of its generateName.
        let p = pod(json!({"generateName": "web-7d9c5b6f4-", "namespace": "team-a"}));
        assert_eq!(t.render(&p), "team-a.orders-api@web-7d9c5b6f4");
        assert_eq!(
            t.env_entry(&p, "X"),
            json!({"name": "X", "value": "team-a.orders-api@web-7d9c5b6f4"})
        );
    }

    #[test]
    fn pod_alone_takes_the_generated_name_from_the_downward_api() {
        let t = SessionNameTemplate::parse("{pod}").unwrap();
        let generated = pod(json!({"generateName": "web-7d9c5b6f4-"}));
        assert_eq!(
            t.env_entry(&generated, "X"),
            json!({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
        );
        // The longest generateName still yields at most 58 + 5 characters.
        let long = pod(json!({"generateName": "a".repeat(253)}));
        assert!(t.env_entry(&long, "X").get("valueFrom").is_some());
        // Characters no DNS name has: rendered now, not trusted to the apiserver.
        let odd = pod(json!({"generateName": "Web_"}));
        assert_eq!(
            t.env_entry(&odd, "X"),
            json!({"name": "X", "value": "Web_"})
        );
        // A known name is rendered now, and cut when it is long.
        let named = pod(json!({"name": "web-0", "generateName": "web-"}));
        assert_eq!(
            t.env_entry(&named, "X"),
            json!({"name": "X", "value": "web-0"})
        );
    }

    #[test]
    fn long_names_are_cut_with_a_hash_that_keeps_them_apart() {
        let t = SessionNameTemplate::parse("{namespace}.{pod}").unwrap();
        let a = pod(json!({"name": format!("{}-a", "x".repeat(200)), "namespace": "ns"}));
        let b = pod(json!({"name": format!("{}-b", "x".repeat(200)), "namespace": "ns"}));
        let (ra, rb) = (t.render(&a), t.render(&b));
        assert_eq!(ra.len(), MAX_LEN);
        assert_eq!(rb.len(), MAX_LEN);
        assert_ne!(ra, rb);
        assert_eq!(ra, t.render(&a), "deterministic");
        assert!(ra.starts_with("ns.xxxx"), "{ra}");
        assert!(is_valid(&ra) && is_valid(&rb));
        // Exactly 64 is kept whole.
        let exact = pod(json!({"name": "y".repeat(61), "namespace": "ns"}));
        assert_eq!(t.render(&exact), format!("ns.{}", "y".repeat(61)));
    }

    #[test]
    fn short_and_odd_names_are_made_valid() {
        let t = SessionNameTemplate::parse("{pod}").unwrap();
        let short = t.render(&pod(json!({"name": "a"})));
        assert!(is_valid(&short) && short.starts_with("a-"), "{short}");
        let empty = t.render(&pod(json!({})));
        assert!(is_valid(&empty) && empty.len() == HASH_DIGITS, "{empty}");
        let odd = t.render(&pod(json!({"name": "wéb pod/1"})));
        assert_eq!(odd, "w-b-pod-1");
    }

    #[test]
    fn literal_names_are_made_valid() {
        assert_eq!(sanitize("batch-nightly"), "batch-nightly");
        assert_eq!(sanitize(" a b/c "), "a-b-c");
        assert!(is_valid(&sanitize("x")));
        assert!(is_valid(&sanitize(&"n".repeat(100))));
    }

    #[test]
    fn bad_templates_are_named() {
        use TemplateError::*;
        for (raw, err) in [
            ("", Empty),
            ("  ", Empty),
            ("{ns}", UnknownPlaceholder("ns".into())),
            ("{pod", Unmatched('{')),
            ("pod}", Unmatched('}')),
            ("{namespace}/{pod}", InvalidChar('/')),
            ("a b", InvalidChar(' ')),
            ("{pod}:{namespace}", InvalidChar(':')),
        ] {
            assert_eq!(SessionNameTemplate::parse(raw), Err(err), "{raw:?}");
        }
        assert_eq!(
            SessionNameTemplate::parse(&"x".repeat(65)),
            Err(TooLong(65))
        );
        assert!(SessionNameTemplate::parse(&"x".repeat(64)).is_ok());
        assert_eq!(
            TemplateError::UnknownPlaceholder("ns".into()).to_string(),
            "has an unknown placeholder {ns} (known: {namespace}, {service_account}, {pod})"
        );
    }
}
