//! The names the webhook injects and reads, which the IAM side and the manifests must spell the same way.
//!
//! Annotation keys are `<prefix>/<suffix>`: the prefix is `--annotation-prefix` (EKS's by default, so
//! manifests written for EKS work unchanged), the suffixes are fixed.

/// Default annotation and label prefix: the one EKS uses.
pub const DEFAULT_ANNOTATION_PREFIX: &str = "eks.amazonaws.com";

/// The prefix irsa owns for annotations EKS does not define: the project's GitHub Pages domain
/// (github.com/irsa-rs), so no other tool's keys collide. Fixed, whatever `--annotation-prefix` says.
pub const IRSA_ANNOTATION_PREFIX: &str = "irsa-rs.github.io";

/// Suffixes of annotation keys under [`IRSA_ANNOTATION_PREFIX`] (`irsa-rs.github.io/<suffix>`).
pub mod irsa_annotation {
    /// ServiceAccount: the STS endpoint injected as `AWS_ENDPOINT_URL_STS`, over `--sts-endpoint-url`.
    pub const STS_ENDPOINT_URL: &str = "sts-endpoint-url";
    /// ServiceAccount: the template of `AWS_ROLE_SESSION_NAME`, over `--role-session-name`.
    pub const ROLE_SESSION_NAME: &str = "role-session-name";
    /// Pod: a JSON object from container names to role ARNs, for containers that are to assume another
    /// role than the ServiceAccount's (with the same projected token).
    pub const CONTAINER_ROLE_ARNS: &str = "container-role-arns";
}

/// Suffixes of the annotation keys (`<prefix>/<suffix>`) the webhook reads.
pub mod annotation {
    /// ServiceAccount: the role pods of this account assume; its presence triggers injection.
    pub const ROLE_ARN: &str = "role-arn";
    /// ServiceAccount: the projected token's audience.
    pub const AUDIENCE: &str = "audience";
    /// ServiceAccount: `true`/`false`, inject `AWS_STS_REGIONAL_ENDPOINTS=regional` or not.
    pub const STS_REGIONAL_ENDPOINTS: &str = "sts-regional-endpoints";
    /// ServiceAccount or pod: the projected token's lifetime in seconds.
    pub const TOKEN_EXPIRATION: &str = "token-expiration";
    /// Pod: containers (comma-separated) to leave alone.
    pub const SKIP_CONTAINERS: &str = "skip-containers";
    /// Pod: the only containers (comma-separated) to inject into.
    pub const INCLUDE_CONTAINERS: &str = "include-containers";
    /// Pod label: any value opts the pod out of injection.
    pub const SKIP_POD_LABEL: &str = "skip-pod-identity-webhook";
}

/// `<prefix>/<suffix>`: the full annotation key for `suffix` under `prefix`.
pub fn annotation_key(prefix: &str, suffix: &str) -> String {
    // Sized once: the webhook builds keys on its admission path.
    let mut key = String::with_capacity(prefix.len() + 1 + suffix.len());
    key.push_str(prefix);
    key.push('/');
    key.push_str(suffix);
    key
}

/// An annotation prefix that Kubernetes would refuse as the prefix of an annotation key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--annotation-prefix {0:?} must be a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253 characters) without '/'"
)]
pub struct InvalidAnnotationPrefix(pub String);

/// Validates an annotation prefix (surrounding white space ignored) and returns it trimmed: the prefix of an
/// annotation key must be a DNS subdomain, or the apiserver refuses every annotation written with it (and
/// the webhook would wait for keys that cannot exist).
pub fn annotation_prefix(raw: &str) -> Result<&str, InvalidAnnotationPrefix> {
    let prefix = raw.trim();
    if !is_dns_subdomain(prefix) {
        return Err(InvalidAnnotationPrefix(raw.to_owned()));
    }
    Ok(prefix)
}

/// Whether `s` is a DNS label as Kubernetes means it (RFC 1123): 1 to 63 lower-case letters, digits and
/// '-', starting and ending with a letter or digit. A namespace's name is one.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a DNS subdomain as Kubernetes means it (RFC 1123): DNS labels joined by '.', at most 253
/// characters. Most object names (a ServiceAccount's) and annotation-key prefixes are one.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Namespace annotation (kiam's): a regex the whole role ARN must match for pods of the namespace.
pub const PERMITTED_ANNOTATION: &str = "iam.amazonaws.com/permitted";

/// The env variables the webhook injects or looks at.
pub mod env {
    /// The role to assume.
    pub const ROLE_ARN: &str = "AWS_ROLE_ARN";
    /// Where the projected token is.
    pub const WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
    /// `regional` makes older SDKs call the regional STS endpoint.
    pub const STS_REGIONAL_ENDPOINTS: &str = "AWS_STS_REGIONAL_ENDPOINTS";
    /// The region, for SDKs that read this one.
    pub const REGION: &str = "AWS_REGION";
    /// The region, for SDKs that read this one.
    pub const DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
    /// Static credentials, which win over web identity in every SDK (a warning when a container sets it).
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// The STS endpoint: aws-sdk-go-v2 ignores `AWS_ENDPOINT_URL` for its web-identity call but honours this.
    pub const ENDPOINT_URL_STS: &str = "AWS_ENDPOINT_URL_STS";
    /// The session name of the web-identity call, which CloudTrail shows (the SDKs pick one otherwise).
    pub const ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
}

/// The projected token volume's name.
pub const TOKEN_VOLUME_NAME: &str = "aws-iam-token";
/// Default directory where the token volume is mounted in each container.
pub const DEFAULT_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
/// The token's file name inside the mount.
pub const TOKEN_FILE_NAME: &str = "token";

/// Default audience of the projected token, and the `aud` a role's trust policy requires.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";

/// Shortest token lifetime accepted, in seconds (kube-apiserver refuses less than ten minutes).
pub const MIN_TOKEN_EXPIRATION: i64 = 600;
/// Longest token lifetime accepted, in seconds (one day, as in the reference webhook).
pub const MAX_TOKEN_EXPIRATION: i64 = 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_prefixes_are_dns_subdomains() {
        for good in [
            "eks.amazonaws.com",
            "irsa.example.com",
            " irsa.io ",
            "a",
            "x-1.y2",
        ] {
            assert_eq!(annotation_prefix(good), Ok(good.trim()), "{good:?}");
        }
        let long = format!("{}.com", "a".repeat(250));
        for bad in [
            "",
            " ",
            "eks.amazonaws.com/",
            "a/b",
            "Eks.amazonaws.com",
            "under_score.io",
            "-a.io",
            "a-.io",
            "a..io",
            ".a.io",
            "a.io.",
            long.as_str(),
        ] {
            assert_eq!(
                annotation_prefix(bad),
                Err(InvalidAnnotationPrefix(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dns_labels_and_subdomains() {
        for good in ["a", "team-a", "x1", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good:?}");
            assert!(is_dns_subdomain(good), "{good:?}");
        }
        for bad in ["", "Team", "a_b", "-a", "a-", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
        assert!(is_dns_subdomain("a.b-c.d"));
        let long = format!("{}.com", "a".repeat(250));
        for bad in ["", "a..b", ".a", "a.", "A.b", long.as_str()] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
    }

    #[test]
    fn annotation_keys_join_prefix_and_suffix() {
        assert_eq!(
            annotation_key(DEFAULT_ANNOTATION_PREFIX, annotation::ROLE_ARN),
            "eks.amazonaws.com/role-arn"
        );
        assert_eq!(
            annotation_key("irsa.example.org", annotation::AUDIENCE),
            "irsa.example.org/audience"
        );
    }
}
