//! The compact views of ServiceAccounts and Namespaces that the cache stores and the mutation reads.
//!
//! A view holds raw annotation values only: parsing and validation happen in the mutation, where a bad value
//! becomes a warning on the pod that uses it rather than a silently dropped cache entry.

use std::collections::BTreeMap;

use regex::Regex;

pub use irsa_core::names::{
    IRSA_ANNOTATION_PREFIX, PERMITTED_ANNOTATION, annotation, annotation_key, irsa_annotation,
};

/// A misspelling of `eks.amazonaws.com` common enough to be recognised whatever `--annotation-prefix` is.
const KNOWN_PREFIX_TYPO: &str = "eks.amazon.com";

/// Looks up `<prefix>/<suffix>` without allocating the key.
pub(crate) fn prefixed_get<'a, I>(entries: I, prefix: &str, suffix: &str) -> Option<&'a str>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    entries
        .into_iter()
        .find_map(|(key, value)| is_prefixed_key(key, prefix, suffix).then_some(value))
}

/// Whether `key` is `<prefix>/<suffix>`, without building that key.
pub(crate) fn is_prefixed_key(key: &str, prefix: &str, suffix: &str) -> bool {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| rest == suffix)
}

/// What the mutation needs from an annotated ServiceAccount: the raw annotation values.
///
/// The cache holds one per annotated ServiceAccount, so it is kept small: the role ARN, and the rarer
/// annotations boxed apart ([`AccountOptions`]), absent for the common account that carries only a role. 24
/// bytes instead of the 112 of seven inline fields: about 3 MB less with 100,000 ServiceAccounts, a third of
/// them annotated (issue #16, `bench/README.md`).
///
/// A ServiceAccount without `<prefix>/role-arn` but with a [near miss](AccountOptions::near_miss) also gets a
/// view, with an empty `role_arn`: the cache stores views only, so the finding must travel in one for the
/// mutation to warn about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountView {
    /// `<prefix>/role-arn`, as written (validated by the mutation).
    pub role_arn: Box<str>,
    /// The other annotations, `None` when the account has none of them (never a box of `None`s).
    options: Option<Box<AccountOptions>>,
}

/// The annotations of an annotated ServiceAccount other than its role ARN, as written.
///
/// Boxed strings rather than `String`s: no spare capacity, 16 bytes per field, `None` free.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountOptions {
    /// `<prefix>/audience`, when present.
    pub audience: Option<Box<str>>,
    /// `<prefix>/sts-regional-endpoints`, when present.
    pub sts_regional_endpoints: Option<Box<str>>,
    /// `<prefix>/token-expiration`, when present.
    pub token_expiration: Option<Box<str>>,
    /// `irsa-rs.github.io/sts-endpoint-url`, when present.
    pub sts_endpoint_url: Option<Box<str>>,
    /// `irsa-rs.github.io/role-session-name`, when present: a template (parsed by the mutation).
    pub role_session_name: Option<Box<str>>,
    /// The first annotation key that looks like a misspelt `<prefix>/role-arn`, kept only when the real key
    /// is absent (`role_arn` is then empty and nothing is injected).
    pub near_miss: Option<Box<str>>,
}

/// What [`ServiceAccountView::options`] lends for an account with a role ARN only.
static NO_OPTIONS: AccountOptions = AccountOptions {
    audience: None,
    sts_regional_endpoints: None,
    token_expiration: None,
    sts_endpoint_url: None,
    role_session_name: None,
    near_miss: None,
};

impl ServiceAccountView {
    /// A view with only a role ARN.
    pub fn new(role_arn: impl Into<Box<str>>) -> Self {
        Self {
            role_arn: role_arn.into(),
            options: None,
        }
    }

    /// A view with a role ARN and other annotations (boxed only when there is one).
    pub fn with_options(role_arn: impl Into<Box<str>>, options: AccountOptions) -> Self {
        Self {
            role_arn: role_arn.into(),
            options: (options != NO_OPTIONS).then(|| Box::new(options)),
        }
    }

    /// The annotations other than the role ARN (all `None` when it has none).
    pub fn options(&self) -> &AccountOptions {
        self.options.as_deref().unwrap_or(&NO_OPTIONS)
    }

    /// Extracts the view from a ServiceAccount's annotations; `None` when it has no (or an empty)
    /// `<prefix>/role-arn`, i.e. when its pods are not to be injected.
    pub fn from_annotations(prefix: &str, annotations: &BTreeMap<String, String>) -> Option<Self> {
        let get = |suffix: &str| {
            prefixed_get(
                annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                prefix,
                suffix,
            )
        };
        let Some(role_arn) = get(annotation::ROLE_ARN) else {
            let near_miss = near_miss_role_arn_key(prefix, annotations.keys().map(String::as_str))?;
            return Some(Self::with_options(
                "",
                AccountOptions {
                    near_miss: Some(near_miss.into()),
                    ..AccountOptions::default()
                },
            ));
        };
        // An emptied annotation is how people switch injection off without deleting the key.
        if role_arn.trim().is_empty() {
            return None;
        }
        let irsa = |suffix: &str| {
            prefixed_get(
                annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                IRSA_ANNOTATION_PREFIX,
                suffix,
            )
        };
        Some(Self::with_options(
            role_arn,
            AccountOptions {
                audience: get(annotation::AUDIENCE).map(Into::into),
                sts_regional_endpoints: get(annotation::STS_REGIONAL_ENDPOINTS).map(Into::into),
                token_expiration: get(annotation::TOKEN_EXPIRATION).map(Into::into),
                sts_endpoint_url: irsa(irsa_annotation::STS_ENDPOINT_URL).map(Into::into),
                role_session_name: irsa(irsa_annotation::ROLE_SESSION_NAME).map(Into::into),
                near_miss: None,
            },
        ))
    }
}

/// The first key that is probably a misspelt `<prefix>/role-arn`: equal to it once both are normalised
/// (lower-cased, without `-`, `_`, `.`, `/` and white space), or `eks.amazon.com/role-arn`, a common typo of
/// the EKS key. One rule, so that `eks.amazonaws.com/rolearn`, `.../role_arn`, `.../Role-Arn` and
/// `eks-amazonaws.com/role-arn` are all caught without a list of spellings.
fn near_miss_role_arn_key<'a>(
    prefix: &str,
    mut keys: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    fn normalised(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_' | '.' | '/') && !c.is_whitespace())
            .flat_map(char::to_lowercase)
    }
    let intended = |key: &str, prefix: &str| {
        let mut wanted = normalised(prefix).chain(normalised(annotation::ROLE_ARN));
        normalised(key).eq(&mut wanted)
    };
    keys.find(|key| intended(key, prefix) || intended(key, KNOWN_PREFIX_TYPO))
}

/// kube2iam's namespace annotation: a JSON list of the roles (names or ARNs, glob or regexp patterns) that
/// pod-annotated roles may be. Read only with `--legacy-role-annotations`, for pods' `iam.amazonaws.com/role`.
pub const ALLOWED_ROLES_ANNOTATION: &str = "iam.amazonaws.com/allowed-roles";

/// A Namespace's role restrictions: kiam's `iam.amazonaws.com/permitted` (a regex that every role injected
/// in the namespace must match in full) and kube2iam's `iam.amazonaws.com/allowed-roles` (a JSON list, which
/// only [`legacy`](crate::legacy) pod roles are judged by).
#[derive(Debug, Clone)]
pub struct NamespaceView {
    permitted: Option<Permitted>,
    allowed_roles: Option<AllowedRoles>,
}

/// `iam.amazonaws.com/permitted`, compiled to match whole ARNs.
#[derive(Debug, Clone)]
pub enum Permitted {
    /// Only role ARNs that this regex matches in full are injected.
    Regex(Regex),
    /// The annotation is not a valid regex: no role is permitted (fail closed) and pods get a warning.
    Invalid {
        /// The annotation value as written.
        pattern: Box<str>,
        /// Why it did not compile.
        error: Box<str>,
    },
}

/// `iam.amazonaws.com/allowed-roles`, decoded (the patterns are judged by [`crate::legacy`], whose flags say
/// whether they are globs or regexps and which base ARN a name takes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedRoles {
    /// The entries, as written.
    List(Box<[Box<str>]>),
    /// Not a JSON list of strings: no role is permitted by it (kube2iam, too, permits nothing then).
    Invalid {
        /// The annotation value as written.
        value: Box<str>,
        /// Why it did not decode.
        error: Box<str>,
    },
}

impl AllowedRoles {
    /// Decodes the annotation; an empty value is an empty list, as in kube2iam.
    pub fn parse(value: &str) -> Self {
        if value.trim().is_empty() {
            return Self::List(Box::default());
        }
        match serde_json::from_str::<Vec<String>>(value) {
            Ok(list) => Self::List(list.into_iter().map(Into::into).collect()),
            Err(error) => Self::Invalid {
                value: value.into(),
                error: error.to_string().into(),
            },
        }
    }
}

impl Permitted {
    fn compile(pattern: &str) -> Self {
        match crate::config::full_match_regex(pattern) {
            Ok(regex) => Self::Regex(regex),
            Err(error) => Self::Invalid {
                pattern: pattern.into(),
                error: error.into(),
            },
        }
    }

    /// Whether a role ARN is allowed; `Err` carries the invalid pattern and its error.
    pub fn permits(&self, role_arn: &str) -> Result<bool, (&str, &str)> {
        match self {
            Self::Regex(regex) => Ok(regex.is_match(role_arn)),
            Self::Invalid { pattern, error } => Err((pattern, error)),
        }
    }

    /// The pattern as written in the annotation.
    pub fn pattern(&self) -> &str {
        match self {
            // Strip the `^(?:` ... `)$` wrapper added by `full_match_regex`.
            Self::Regex(regex) => {
                let s = regex.as_str();
                &s[4..s.len() - 2]
            }
            Self::Invalid { pattern, .. } => pattern,
        }
    }
}

impl NamespaceView {
    /// Extracts the restrictions from a Namespace's annotations; `None` when the namespace restricts nothing.
    ///
    /// An empty `permitted` is a restriction that admits no role: full-match semantics, and failing closed is
    /// the safe reading of a policy someone bothered to write.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Option<Self> {
        let permitted = annotations
            .get(PERMITTED_ANNOTATION)
            .map(|pattern| Permitted::compile(pattern));
        let allowed_roles = annotations
            .get(ALLOWED_ROLES_ANNOTATION)
            .map(|value| AllowedRoles::parse(value));
        (permitted.is_some() || allowed_roles.is_some()).then_some(Self {
            permitted,
            allowed_roles,
        })
    }

    /// A namespace restricted by a `permitted` pattern alone.
    pub fn compile(pattern: &str) -> Self {
        Self {
            permitted: Some(Permitted::compile(pattern)),
            allowed_roles: None,
        }
    }

    /// Whether `permitted` allows a role ARN (a namespace without it allows every ARN); `Err` carries the
    /// invalid pattern and its error.
    pub fn permits(&self, role_arn: &str) -> Result<bool, (&str, &str)> {
        self.permitted
            .as_ref()
            .map_or(Ok(true), |permitted| permitted.permits(role_arn))
    }

    /// The `permitted` pattern as written in the annotation (empty without one).
    pub fn pattern(&self) -> &str {
        self.permitted.as_ref().map_or("", Permitted::pattern)
    }

    /// `iam.amazonaws.com/permitted`, when the namespace has it.
    pub fn permitted(&self) -> Option<&Permitted> {
        self.permitted.as_ref()
    }

    /// `iam.amazonaws.com/allowed-roles`, when the namespace has it.
    pub fn allowed_roles(&self) -> Option<&AllowedRoles> {
        self.allowed_roles.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn service_account_view_reads_prefixed_annotations_only() {
        let sa = annotations(&[
            (
                "eks.amazonaws.com/role-arn",
                "arn:aws:iam::123456789012:role/app",
            ),
            ("eks.amazonaws.com/audience", "minio"),
            ("eks.amazonaws.com/token-expiration", "3600"),
            ("other.example.com/sts-regional-endpoints", "true"),
            ("unrelated", "x"),
        ]);
        let view = ServiceAccountView::from_annotations("eks.amazonaws.com", &sa).unwrap();
        assert_eq!(&*view.role_arn, "arn:aws:iam::123456789012:role/app");
        assert_eq!(view.options().audience.as_deref(), Some("minio"));
        assert_eq!(view.options().token_expiration.as_deref(), Some("3600"));
        assert_eq!(view.options().sts_regional_endpoints, None);
        assert!(ServiceAccountView::from_annotations("other.example.com", &sa).is_none());
    }

    #[test]
    fn service_account_view_reads_the_irsa_prefix_for_the_sts_endpoint() {
        let sa = annotations(&[
            (
                "eks.amazonaws.com/role-arn",
                "arn:aws:iam::123456789012:role/app",
            ),
            ("irsa-rs.github.io/sts-endpoint-url", "https://sts.example"),
            ("irsa-rs.github.io/role-session-name", "{pod}"),
            (
                "eks.amazonaws.com/sts-endpoint-url",
                "https://wrong.example",
            ),
        ]);
        let view = ServiceAccountView::from_annotations("eks.amazonaws.com", &sa).unwrap();
        assert_eq!(
            view.options().sts_endpoint_url.as_deref(),
            Some("https://sts.example")
        );
        assert_eq!(view.options().role_session_name.as_deref(), Some("{pod}"));
        assert_eq!(view.options().near_miss, None);
    }

    #[test]
    fn near_misses_are_kept_when_the_role_arn_is_absent() {
        for key in [
            "eks.amazon.com/role-arn",
            "eks.amazonaws.com/rolearn",
            "eks.amazonaws.com/role_arn",
            "eks.amazonaws.com/Role-ARN",
            "eks-amazonaws.com/role-arn",
            "eks.amazonaws.com/role-arn ",
        ] {
            let sa = annotations(&[
                ("unrelated", "x"),
                (key, "arn:aws:iam::123456789012:role/app"),
            ]);
            let view = ServiceAccountView::from_annotations("eks.amazonaws.com", &sa)
                .unwrap_or_else(|| panic!("{key:?}"));
            assert_eq!(view.options().near_miss.as_deref(), Some(key));
            assert_eq!(&*view.role_arn, "");
        }
        for key in [
            "eks.amazonaws.com/audience",
            "example.com/role-arn",
            "role-arn",
        ] {
            let sa = annotations(&[(key, "arn:aws:iam::123456789012:role/app")]);
            assert!(
                ServiceAccountView::from_annotations("eks.amazonaws.com", &sa).is_none(),
                "{key:?}"
            );
        }
        // The real key wins: no near miss is reported next to it.
        let sa = annotations(&[
            (
                "eks.amazonaws.com/role-arn",
                "arn:aws:iam::123456789012:role/app",
            ),
            ("eks.amazonaws.com/rolearn", "x"),
        ]);
        let view = ServiceAccountView::from_annotations("eks.amazonaws.com", &sa).unwrap();
        assert_eq!(view.options().near_miss, None);
    }

    #[test]
    fn prefix_must_be_followed_by_a_slash() {
        let sa = annotations(&[(
            "eks.amazonaws.com.evil/role-arn",
            "arn:aws:iam::123456789012:role/x",
        )]);
        assert!(ServiceAccountView::from_annotations("eks.amazonaws.com", &sa).is_none());
    }

    #[test]
    fn empty_role_arn_means_not_annotated() {
        let sa = annotations(&[("eks.amazonaws.com/role-arn", " ")]);
        assert!(ServiceAccountView::from_annotations("eks.amazonaws.com", &sa).is_none());
    }

    #[test]
    fn service_account_view_is_compact() {
        // The cache holds one per annotated account: a role ARN and one pointer, the other annotations boxed
        // apart only when there is one (seven inline optional strings were 112 bytes).
        assert_eq!(std::mem::size_of::<ServiceAccountView>(), 24);
        let role_only = annotations(&[(
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::123456789012:role/app",
        )]);
        let view = ServiceAccountView::from_annotations("eks.amazonaws.com", &role_only).unwrap();
        assert!(view.options.is_none(), "no box for a role-only account");
        assert_eq!(
            view,
            ServiceAccountView::new("arn:aws:iam::123456789012:role/app")
        );
        let unboxed = ServiceAccountView::with_options("arn", AccountOptions::default());
        assert!(unboxed.options.is_none(), "never a box of Nones");
        let with_audience = ServiceAccountView::with_options(
            "arn",
            AccountOptions {
                audience: Some("minio".into()),
                ..AccountOptions::default()
            },
        );
        assert_eq!(with_audience.options().audience.as_deref(), Some("minio"));
        assert_ne!(with_audience, unboxed);
    }

    #[test]
    fn namespace_view_matches_whole_arns() {
        let ns = NamespaceView::from_annotations(&annotations(&[(
            PERMITTED_ANNOTATION,
            "arn:aws:iam::123456789012:role/team-a-.*",
        )]))
        .unwrap();
        assert_eq!(
            ns.permits("arn:aws:iam::123456789012:role/team-a-app"),
            Ok(true)
        );
        assert_eq!(
            ns.permits("arn:aws:iam::123456789012:role/team-b-app"),
            Ok(false)
        );
        assert_eq!(
            ns.permits("x-arn:aws:iam::123456789012:role/team-a-app"),
            Ok(false)
        );
        assert_eq!(ns.pattern(), "arn:aws:iam::123456789012:role/team-a-.*");

        let alternation = NamespaceView::compile("a|b");
        assert_eq!(alternation.permits("a"), Ok(true));
        assert_eq!(alternation.permits("ab"), Ok(false));
    }

    #[test]
    fn allowed_roles_are_read_beside_permitted() {
        let ns = NamespaceView::from_annotations(&annotations(&[(
            ALLOWED_ROLES_ANNOTATION,
            "[\"app\", \"team/*\"]\n",
        )]))
        .expect("a restriction");
        // Without `permitted`, the ServiceAccount's role is not restricted by kube2iam's annotation.
        assert_eq!(ns.permits("arn:aws:iam::123456789012:role/x"), Ok(true));
        assert!(ns.permitted().is_none());
        assert_eq!(
            ns.allowed_roles(),
            Some(&AllowedRoles::List(
                vec!["app".into(), "team/*".into()].into()
            ))
        );
        assert_eq!(AllowedRoles::parse(" "), AllowedRoles::List(Box::default()));
        for bad in ["app", "{\"a\": 1}", "[1]", "[\"a\""] {
            assert!(
                matches!(AllowedRoles::parse(bad), AllowedRoles::Invalid { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn namespace_view_absent_empty_and_invalid() {
        assert!(NamespaceView::from_annotations(&annotations(&[("other", "x")])).is_none());
        let empty =
            NamespaceView::from_annotations(&annotations(&[(PERMITTED_ANNOTATION, "")])).unwrap();
        assert_eq!(
            empty.permits("arn:aws:iam::123456789012:role/app"),
            Ok(false)
        );
        let invalid = NamespaceView::compile("role/(unclosed");
        let (pattern, error) = invalid.permits("x").unwrap_err();
        assert_eq!(pattern, "role/(unclosed");
        assert_eq!(error, "unclosed group");
        assert_eq!(invalid.pattern(), "role/(unclosed");
    }
}
