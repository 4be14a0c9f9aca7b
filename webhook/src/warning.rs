//! Warnings returned to the client (the AdmissionResponse `warnings` that kubectl prints) and counted by
//! reason.

use std::fmt;

/// Why a warning was raised; doubles as the `reason` label of the warnings metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum WarningReason {
    /// The service account's role ARN does not match `--role-arn-pattern`.
    InvalidRoleArn,
    /// The namespace's `iam.amazonaws.com/permitted` does not admit the role.
    ForbiddenRole,
    /// The namespace's `iam.amazonaws.com/permitted` is not a valid regex.
    InvalidNamespaceRegex,
    /// A volume named `aws-iam-token` exists and is not the token projection.
    VolumeConflict,
    /// A container mounts another volume at the token mount path.
    MountPathConflict,
    /// A container has exactly one of `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`.
    HalfConfigured,
    /// A container sets `AWS_ACCESS_KEY_ID`, which wins over web identity in every SDK.
    StaticCredentials,
    /// `token-expiration` was outside 600..=86400 and was clamped.
    TokenExpirationClamped,
    /// `token-expiration` is not an integer and was ignored.
    TokenExpirationInvalid,
    /// `sts-regional-endpoints` is neither `true` nor `false` and was ignored.
    StsRegionalEndpointsInvalid,
    /// `include-containers` names a container the pod does not have.
    UnknownContainer,
    /// A field the webhook appends to (`env`, `volumeMounts`, `volumes`) is not an array.
    MalformedPod,
}

impl WarningReason {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidRoleArn => "invalid-role-arn",
            Self::ForbiddenRole => "forbidden-role",
            Self::InvalidNamespaceRegex => "invalid-namespace-regex",
            Self::VolumeConflict => "volume-conflict",
            Self::MountPathConflict => "mount-path-conflict",
            Self::HalfConfigured => "half-configured",
            Self::StaticCredentials => "static-credentials",
            Self::TokenExpirationClamped => "token-expiration-clamped",
            Self::TokenExpirationInvalid => "token-expiration-invalid",
            Self::StsRegionalEndpointsInvalid => "sts-regional-endpoints-invalid",
            Self::UnknownContainer => "unknown-container",
            Self::MalformedPod => "malformed-pod",
        }
    }

    /// Every reason, for pre-registering metric label values.
    pub const ALL: &'static [WarningReason] = &[
        Self::InvalidRoleArn,
        Self::ForbiddenRole,
        Self::InvalidNamespaceRegex,
        Self::VolumeConflict,
        Self::MountPathConflict,
        Self::HalfConfigured,
        Self::StaticCredentials,
        Self::TokenExpirationClamped,
        Self::TokenExpirationInvalid,
        Self::StsRegionalEndpointsInvalid,
        Self::UnknownContainer,
        Self::MalformedPod,
    ];

    /// Parses a metric label back (fixtures store reasons by label).
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|reason| reason.as_str() == label)
    }
}

impl fmt::Display for WarningReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

    #[test]
    fn labels_are_unique_and_parse_back() {
        let mut labels: Vec<_> = WarningReason::ALL
            .iter()
            .map(WarningReason::as_str)
            .collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), WarningReason::ALL.len());
        for reason in WarningReason::ALL {
            assert_eq!(WarningReason::from_label(reason.as_str()), Some(*reason));
        }
        assert_eq!(WarningReason::from_label("nope"), None);
    }
}
