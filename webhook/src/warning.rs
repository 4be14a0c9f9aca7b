//! Warnings returned to the client (the AdmissionResponse `warnings` that kubectl prints) and counted by
//! reason.

use std::fmt;

/// Why a warning was raised; doubles as the `reason` label of the warnings metric.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "kebab-case")]
#[non_exhaustive]
pub enum WarningReason {
    /// The service account's role ARN (or one of a pod's `container-role-arns`) does not match
    /// `--role-arn-pattern`, or is longer than IAM accepts (2048 characters, or a role path over 512), or is
    /// wrapped in white space or quotes.
    InvalidRoleArn,
    /// The namespace's `iam.amazonaws.com/permitted` does not admit the role (the service account's, or one
    /// of a pod's `container-role-arns`).
    ForbiddenRole,
    /// The namespace's `iam.amazonaws.com/permitted` is not a valid regex.
    InvalidNamespaceRegex,
    /// A volume named `aws-iam-token` exists and is not the token projection.
    VolumeConflict,
    /// A container mounts another volume at or inside the token mount path.
    MountPathConflict,
    /// A container has exactly one of `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`.
    HalfConfigured,
    /// A container sets `AWS_ACCESS_KEY_ID`, which wins over web identity in every SDK.
    StaticCredentials,
    /// `token-expiration` was outside `--min-token-expiration`..=86400 and was clamped.
    TokenExpirationClamped,
    /// `token-expiration` is not an integer and was ignored.
    TokenExpirationInvalid,
    /// `sts-regional-endpoints` is neither `true` nor `false` and was ignored.
    StsRegionalEndpointsInvalid,
    /// `irsa-rs.github.io/sts-endpoint-url` is not an absolute http(s) URL with a host: not injected.
    InvalidStsEndpointUrl,
    /// `irsa-rs.github.io/role-session-name` is not a valid template: the flag's (if any) is used.
    InvalidRoleSessionName,
    /// A pod's `irsa-rs.github.io/container-role-arns` is not a JSON object of container names to role ARNs.
    InvalidContainerRoleArns,
    /// An annotation key that looks like a misspelt `<prefix>/role-arn` on a ServiceAccount without the real
    /// one, or `<prefix>/role-arn` on a pod (it belongs on the ServiceAccount).
    NearMissAnnotation,
    /// `include-containers` or `container-role-arns` names a container the pod does not have.
    UnknownContainer,
    /// A pod's `iam.amazonaws.com/role` is a role name and no base ARN is known (`--base-role-arn`).
    UnresolvedRoleName,
    /// A namespace's `iam.amazonaws.com/allowed-roles` is not a JSON list of strings, or (regexp format) has
    /// an entry that is not a valid regex.
    InvalidAllowedRoles,
    /// A pod's `iam.amazonaws.com/role` names another role than its ServiceAccount's `<prefix>/role-arn`,
    /// which wins.
    RoleAnnotationConflict,
    /// A kiam/kube2iam pod annotation with no web-identity equivalent (`iam.amazonaws.com/external-id`).
    UnsupportedLegacyAnnotation,
    /// A field the webhook reads or appends to (`containers`, `initContainers`, `env`, `volumeMounts`,
    /// `volumes`) is not an array.
    MalformedPod,
    /// The pod's ServiceAccount or Namespace could not be looked up (raised by the server, not the mutation).
    LookupFailed,
}

impl WarningReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether [`mutate`](crate::mutate::mutate) can raise it (the others are the server's).
    pub fn raised_by_mutation(self) -> bool {
        self != Self::LookupFailed
    }
}

/// One warning: a reason for metrics, a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The metric label.
    pub reason: WarningReason,
    /// The text kubectl prints after `Warning: `.
    pub message: String,
}

impl Warning {
    /// A warning.
    pub fn new(reason: WarningReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use strum::VariantArray as _;

    #[test]
    fn labels_are_unique_and_parse_back() {
        let mut labels: Vec<_> = WarningReason::VARIANTS
            .iter()
            .map(|reason| reason.as_str())
            .collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), WarningReason::VARIANTS.len());
        for reason in WarningReason::VARIANTS {
            assert_eq!(reason.as_str().parse::<WarningReason>().ok(), Some(*reason));
        }
        assert_eq!("nope".parse::<WarningReason>().ok(), None);
    }

    #[test]
    fn labels_are_kebab_case() {
        assert_eq!(WarningReason::InvalidRoleArn.as_str(), "invalid-role-arn");
        assert_eq!(
            WarningReason::StsRegionalEndpointsInvalid.to_string(),
            "sts-regional-endpoints-invalid"
        );
        assert_eq!(WarningReason::LookupFailed.as_str(), "lookup-failed");
    }
}
