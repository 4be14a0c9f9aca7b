//! Several roles in one pod: the pod annotation `irsa-rs.github.io/container-role-arns`, a JSON object from
//! container names to role ARNs, gives those containers another `AWS_ROLE_ARN` than the ServiceAccount's.
//!
//! They share the pod's projected token, so this grants nothing the ServiceAccount's token could not already
//! get: any container could set `AWS_ROLE_ARN` itself, and each role's trust policy decides whether that
//! token may assume it. The annotation saves that hand-written env, and each ARN is judged like the
//! ServiceAccount's: IAM's length caps, `--role-arn-pattern`, and the namespace's
//! `iam.amazonaws.com/permitted`. A JSON object rather than `container=arn,...`, because role names may hold
//! both `=` and `,`.
//!
//! Bad input never costs the pod its credentials: a container whose entry is refused keeps the
//! ServiceAccount's role, with a warning. Only a role the namespace forbids can deny the pod, and only with
//! `--on-forbidden-role=deny`, as for the ServiceAccount's own role.

use std::collections::BTreeMap;

use regex::Regex;

use crate::{
    mutate::role_arn_problem,
    pod::{self, ContainerKind, Pod},
    views::{IRSA_ANNOTATION_PREFIX, NamespaceView, irsa_annotation},
    warning::{Warning, WarningReason},
};

/// The role ARNs accepted from the annotation, by container name.
#[derive(Debug, Default)]
pub struct ContainerRoles {
    roles: BTreeMap<String, String>,
}

/// `irsa-rs.github.io/container-role-arns`, as warnings display it.
struct Key;

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{IRSA_ANNOTATION_PREFIX}/{}",
            irsa_annotation::CONTAINER_ROLE_ARNS
        )
    }
}

impl ContainerRoles {
    /// Reads and judges the pod's annotation. Refused entries become `warnings`; the first role the
    /// namespace forbids becomes `forbidden` (when it is still empty), which the policy may turn into a
    /// denial.
    pub fn read(
        pod: &Pod<'_>,
        pattern: &Regex,
        ns: Option<&NamespaceView>,
        warnings: &mut Vec<Warning>,
        forbidden: &mut Option<Warning>,
    ) -> Self {
        let raw = pod::prefixed_annotation(
            pod,
            IRSA_ANNOTATION_PREFIX,
            irsa_annotation::CONTAINER_ROLE_ARNS,
        );
        // An emptied annotation is how people switch it off without deleting the key.
        let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
            return Self::default();
        };
        let entries: BTreeMap<String, String> = match serde_json::from_str(raw) {
            Ok(entries) => entries,
            Err(err) => {
                warnings.push(Warning::new(
                    WarningReason::InvalidContainerRoleArns,
                    format!(
                        "pod annotation {Key} is not a JSON object of container names to role ARNs ({err}); \
                         every container gets the service account's role"
                    ),
                ));
                return Self::default();
            }
        };
        let known = |name: &str| {
            [ContainerKind::Container, ContainerKind::InitContainer]
                .into_iter()
                .any(|kind| pod::containers(pod, kind).any(|c| c.name() == name))
        };
        let mut roles = BTreeMap::new();
        for (container, arn) in entries {
            if !known(&container) {
                warnings.push(Warning::new(
                    WarningReason::UnknownContainer,
                    format!(
                        "pod annotation {Key} names {container:?}, which is not a container of this pod; its \
                         role is not used"
                    ),
                ));
                continue;
            }
            if let Some(problem) = role_arn_problem(&arn, pattern) {
                warnings.push(Warning::new(
                    WarningReason::InvalidRoleArn,
                    format!(
                        "pod annotation {Key}, container {container:?}: {problem}; the container gets the \
                         service account's role"
                    ),
                ));
                continue;
            }
            if let Some(ns) = ns
                && ns.permits(&arn) != Ok(true)
            {
                let reason = Warning::new(
                    WarningReason::ForbiddenRole,
                    format!(
                        "pod annotation {Key}, container {container:?}: role {arn:?} is not permitted in this \
                         namespace (iam.amazonaws.com/permitted: {:?}); the container gets the service \
                         account's role",
                        ns.pattern()
                    ),
                );
                match forbidden {
                    None => *forbidden = Some(reason),
                    Some(_) => warnings.push(reason),
                }
                continue;
            }
            roles.insert(container, arn);
        }
        Self { roles }
    }

    /// The role the annotation gives this container, if any.
    pub fn role_for(&self, container: &str) -> Option<&str> {
        self.roles.get(container).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:iam::123456789012:role/uploader";

    fn pod(annotation: &str) -> Pod<'static> {
        pod::from_value(&json!({
            "metadata": {"annotations": {"irsa-rs.github.io/container-role-arns": annotation}},
            "spec": {"containers": [{"name": "app"}, {"name": "uploader"}],
                     "initContainers": [{"name": "migrate"}]}}))
    }

    fn read(
        pod: &Pod<'_>,
        ns: Option<&NamespaceView>,
    ) -> (ContainerRoles, Vec<Warning>, Option<Warning>) {
        let pattern = crate::config::InjectionConfig::default().role_arn_pattern;
        let (mut warnings, mut forbidden) = (Vec::new(), None);
        let roles = ContainerRoles::read(pod, &pattern, ns, &mut warnings, &mut forbidden);
        (roles, warnings, forbidden)
    }

    #[test]
    fn known_containers_get_their_role() {
        let annotation =
            json!({"uploader": ARN, "migrate": "arn:aws:iam::123456789012:role/m,x=y"});
        let (roles, warnings, forbidden) = read(&pod(&annotation.to_string()), None);
        assert!(warnings.is_empty() && forbidden.is_none(), "{warnings:?}");
        assert_eq!(roles.role_for("uploader"), Some(ARN));
        assert_eq!(
            roles.role_for("migrate"),
            Some("arn:aws:iam::123456789012:role/m,x=y")
        );
        assert_eq!(roles.role_for("app"), None);
        let (roles, warnings, _) = read(
            &pod::from_value(&json!({"spec": {"containers": [{"name": "app"}]}})),
            None,
        );
        assert!(warnings.is_empty());
        assert_eq!(roles.role_for("app"), None);
        let (_, warnings, _) = read(&pod(" "), None);
        assert!(warnings.is_empty());
    }

    #[test]
    fn bad_entries_are_warned_and_dropped() {
        for (annotation, reason) in [
            (
                "uploader=arn:aws:iam::123456789012:role/x",
                WarningReason::InvalidContainerRoleArns,
            ),
            (
                r#"{"uploader": 1}"#,
                WarningReason::InvalidContainerRoleArns,
            ),
            (r#"["uploader"]"#, WarningReason::InvalidContainerRoleArns),
            (
                r#"{"typo": "arn:aws:iam::123456789012:role/x"}"#,
                WarningReason::UnknownContainer,
            ),
            (
                r#"{"uploader": "arn:aws:iam::123456789012:user/x"}"#,
                WarningReason::InvalidRoleArn,
            ),
            (
                r#"{"uploader": " arn:aws:iam::123456789012:role/x"}"#,
                WarningReason::InvalidRoleArn,
            ),
        ] {
            let (roles, warnings, forbidden) = read(&pod(annotation), None);
            assert_eq!(roles.role_for("uploader"), None, "{annotation}");
            assert!(forbidden.is_none());
            assert_eq!(warnings.len(), 1, "{annotation}: {warnings:?}");
            assert_eq!(warnings[0].reason, reason, "{annotation}");
        }
        let long = format!("arn:aws:iam::123456789012:role/{}", "x".repeat(3000));
        let (_, warnings, _) = read(&pod(&json!({"uploader": long}).to_string()), None);
        assert!(
            warnings[0].message.contains("2048"),
            "{}",
            warnings[0].message
        );
        assert!(warnings[0].message.len() < 400);
    }

    #[test]
    fn the_namespace_restriction_applies() {
        let ns = NamespaceView::compile("arn:aws:iam::123456789012:role/up.*");
        let annotation = json!({"uploader": ARN, "app": "arn:aws:iam::123456789012:role/other",
                                "migrate": "arn:aws:iam::123456789012:role/other2"});
        let (roles, warnings, forbidden) = read(&pod(&annotation.to_string()), Some(&ns));
        assert_eq!(roles.role_for("uploader"), Some(ARN));
        assert_eq!(roles.role_for("app"), None);
        let forbidden = forbidden.expect("the first forbidden role");
        assert_eq!(forbidden.reason, WarningReason::ForbiddenRole);
        assert!(
            forbidden.message.contains("\"app\""),
            "{}",
            forbidden.message
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].reason, WarningReason::ForbiddenRole);
    }
}
