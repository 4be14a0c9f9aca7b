//! kiam's and kube2iam's pod annotations, honoured with `--legacy-role-annotations`, so that their users move
//! to web identity without editing their workloads first.
//!
//! A pod's `iam.amazonaws.com/role` is a role ARN, or a name that takes a base ARN (kube2iam's
//! `--base-role-arn`: `arn:aws:iam::123456789012:role/` + the name; kiam also drops a leading `/`). The pod is
//! then injected exactly as if its ServiceAccount carried that ARN, under one more rule: its namespace must
//! permit the role, through kiam's `iam.amazonaws.com/permitted` (a regex matched against the whole ARN, as
//! kiam's default strict mode does) or kube2iam's `iam.amazonaws.com/allowed-roles` (a JSON list of names or
//! ARNs, globs or, with `--namespace-restriction-format=regexp`, regexps matched against the whole ARN; a
//! name entry takes the base ARN). A namespace with neither permits nothing, unless
//! `--legacy-unrestricted-namespaces` says the cluster never restricted them.
//!
//! This is defence in depth, as it was in kiam: with web identity, the role's trust policy decides which
//! ServiceAccount's token may assume it, and any container could set `AWS_ROLE_ARN` itself.
//!
//! Precedence: a ServiceAccount's `<prefix>/role-arn` wins over the pod's annotation (the ServiceAccount is
//! where web identity reads the role, and where a migration ends); a pod whose annotation names another role
//! gets a warning. kube2iam's `--default-role` applies to pods with neither; as in kube2iam, `allowed-roles`
//! is not asked about it (a `permitted` is, as for every role irsa injects). kiam's `iam.amazonaws.com/session-name` becomes `AWS_ROLE_SESSION_NAME`; their
//! `iam.amazonaws.com/external-id` has no web-identity equivalent and gets a warning.

use regex::Regex;
use serde_json::Value;

use crate::{
    config::{ConfigError, InjectionConfig, full_match_regex},
    mutate::{Outcome, Refusal, role_arn_problem},
    pod::{self, Pod},
    session_name,
    views::{ALLOWED_ROLES_ANNOTATION, AllowedRoles, NamespaceView, PERMITTED_ANNOTATION},
    warning::{Warning, WarningReason},
};

/// The pod annotation kiam and kube2iam read the role from: an ARN, or a name under the base ARN.
pub const ROLE_ANNOTATION: &str = "iam.amazonaws.com/role";
/// kiam's pod annotation for the STS session name.
pub const SESSION_NAME_ANNOTATION: &str = "iam.amazonaws.com/session-name";
/// kiam's and kube2iam's pod annotation for `sts:ExternalId`, which web identity cannot send.
pub const EXTERNAL_ID_ANNOTATION: &str = "iam.amazonaws.com/external-id";

/// How the entries of `iam.amazonaws.com/allowed-roles` are read (kube2iam's `--namespace-restriction-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RestrictionFormat {
    /// `*` matches any run of characters, `/` included; nothing else is special.
    #[default]
    Glob,
    /// A regular expression that must match the whole ARN.
    Regexp,
}

/// The flags of the legacy annotations, part of the injection flags of `irsa webhook serve` and `mutate`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LegacyArgs {
    /// Also inject pods that pick their role the kiam/kube2iam way, with the pod annotation
    /// `iam.amazonaws.com/role` (an ARN, or a name under `--base-role-arn`), when their namespace permits the
    /// role through `iam.amazonaws.com/permitted` (a regex) or `iam.amazonaws.com/allowed-roles` (a JSON
    /// list). A ServiceAccount's role ARN wins over the pod's annotation.
    #[arg(long, env = "IRSA_LEGACY_ROLE_ANNOTATIONS")]
    pub legacy_role_annotations: bool,

    /// The ARN a role name in `iam.amazonaws.com/role` or `iam.amazonaws.com/allowed-roles` is appended to,
    /// as kube2iam's flag of that name, e.g. `arn:aws:iam::123456789012:role/`. Without it, the base of an
    /// ARN `--default-role` is used; otherwise a pod annotated with a bare name gets a warning and nothing.
    #[arg(
        long,
        env = "IRSA_BASE_ROLE_ARN",
        value_name = "ARN",
        requires = "legacy_role_annotations"
    )]
    pub base_role_arn: Option<String>,

    /// The role of pods that have neither a role-annotated ServiceAccount nor `iam.amazonaws.com/role`
    /// (kube2iam's flag of that name; an ARN, or a name under `--base-role-arn`). As in kube2iam,
    /// `iam.amazonaws.com/allowed-roles` does not restrict it (`permitted` does); its trust policy must trust
    /// each ServiceAccount that uses it.
    #[arg(
        long,
        env = "IRSA_DEFAULT_ROLE",
        value_name = "ROLE",
        requires = "legacy_role_annotations"
    )]
    pub default_role: Option<String>,

    /// How the entries of `iam.amazonaws.com/allowed-roles` match (kube2iam's flag of that name): `glob`
    /// (`*` only) or `regexp` (matched against the whole ARN, where kube2iam matched anywhere in it).
    #[arg(
        long,
        env = "IRSA_NAMESPACE_RESTRICTION_FORMAT",
        value_enum,
        default_value_t = RestrictionFormat::Glob,
        value_name = "FORMAT"
    )]
    pub namespace_restriction_format: RestrictionFormat,

    /// Let a namespace with neither `iam.amazonaws.com/permitted` nor `iam.amazonaws.com/allowed-roles`
    /// permit every pod-annotated role, as kube2iam did without `--namespace-restrictions`. RISK: anyone who
    /// can create a pod there then picks any role, and only that role's trust policy still decides: one that
    /// trusts every ServiceAccount of the issuer (a `sub` wildcard) is handed to every such namespace.
    #[arg(
        long,
        env = "IRSA_LEGACY_UNRESTRICTED_NAMESPACES",
        requires = "legacy_role_annotations"
    )]
    pub legacy_unrestricted_namespaces: bool,
}

/// The validated legacy settings; present in [`InjectionConfig`] only with `--legacy-role-annotations`.
#[derive(Debug, Clone)]
pub struct LegacyConfig {
    /// What a role name is appended to, ending with `/`; `None` when no base is known.
    pub base_role_arn: Option<String>,
    /// `--default-role`, resolved to an ARN.
    pub default_role_arn: Option<String>,
    /// How `allowed-roles` entries match.
    pub restriction_format: RestrictionFormat,
    /// A namespace without either annotation permits every role.
    pub unrestricted_namespaces: bool,
}

impl LegacyArgs {
    /// Validates the flags; `None` when `--legacy-role-annotations` is off. `pattern` is the
    /// `--role-arn-pattern` every resolved role must match.
    pub fn into_config(self, pattern: &Regex) -> Result<Option<LegacyConfig>, ConfigError> {
        match self.legacy_role_annotations {
            true => self.into_legacy(pattern).map(Some),
            false => Ok(None),
        }
    }

    /// Validates the flags other than the switch (`irsa migrate` plans with them whatever it says).
    pub fn into_legacy(self, pattern: &Regex) -> Result<LegacyConfig, ConfigError> {
        let base_role_arn = self
            .base_role_arn
            .as_deref()
            .map(|raw| {
                let base = raw.trim();
                // kube2iam concatenates as is; a base without its `/` would glue the name to `role`.
                let base = if base.ends_with('/') {
                    base.to_owned()
                } else {
                    format!("{base}/")
                };
                match role_arn_problem(&format!("{base}name"), pattern) {
                    None if is_arn(&base) => Ok(base),
                    _ => Err(ConfigError::InvalidBaseRoleArn(raw.to_owned())),
                }
            })
            .transpose()?;
        let mut legacy = LegacyConfig {
            base_role_arn,
            default_role_arn: None,
            restriction_format: self.namespace_restriction_format,
            unrestricted_namespaces: self.legacy_unrestricted_namespaces,
        };
        if let Some(raw) = self.default_role.as_deref().map(str::trim) {
            let arn = legacy
                .resolve(raw)
                .ok_or_else(|| ConfigError::UnresolvedDefaultRole(raw.to_owned()))?;
            if let Some(problem) = role_arn_problem(&arn, pattern) {
                return Err(ConfigError::InvalidDefaultRole(problem));
            }
            // The operator named this role's account: names in pods resolve into it, as kube2iam resolves
            // them into the node's account. Nothing a pod or a namespace writes chooses the base.
            if legacy.base_role_arn.is_none() {
                legacy.base_role_arn = base_of(&arn);
            }
            legacy.default_role_arn = Some(arn);
        }
        Ok(legacy)
    }
}

/// `arn:<partition>:iam::<account>:role/` of a role ARN (its path dropped, as kube2iam derives its base).
fn base_of(arn: &str) -> Option<String> {
    let (base, _) = arn.split_once('/')?;
    Some(format!("{base}/"))
}

/// kube2iam tells ARNs from names by this prefix, in any case.
fn is_arn(role: &str) -> bool {
    role.get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("arn:"))
}

impl LegacyConfig {
    /// The ARN of a role as a pod annotation writes it; `None` for a name when no base ARN is known.
    pub fn resolve(&self, role: &str) -> Option<String> {
        if is_arn(role) {
            return Some(role.to_owned());
        }
        // kiam accepts `/name` for a role without a path.
        let name = role.strip_prefix('/').unwrap_or(role);
        Some(format!("{}{name}", self.base_role_arn.as_deref()?))
    }

    /// An `allowed-roles` entry as a full ARN pattern: a name takes the base ARN (escaped for a regexp), as
    /// kube2iam normalises entries; without a base it is taken as written.
    fn entry_pattern(&self, entry: &str) -> String {
        match (&self.base_role_arn, self.restriction_format) {
            (Some(base), _) if !is_arn(entry) => match self.restriction_format {
                RestrictionFormat::Glob => format!("{base}{entry}"),
                RestrictionFormat::Regexp => format!("{}{entry}", regex::escape(base)),
            },
            _ => entry.to_owned(),
        }
    }
}

/// kube2iam's glob: `*` matches any run of characters (`/` included); every other character is itself.
pub fn glob_matches(pattern: &str, subject: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };
    let mut middle: Vec<&str> = parts.collect();
    // No `*`: the whole subject must be the pattern.
    let Some(last) = middle.pop() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// What the legacy annotations decide for one pod.
#[derive(Debug)]
pub(crate) enum PodRole {
    /// Nothing to add: no legacy role, or the ServiceAccount's role wins.
    None,
    /// Inject this role ARN from the pod's annotation, as if the ServiceAccount carried it (already judged).
    Role(String),
    /// Inject `--default-role` (judged by the caller like a ServiceAccount's role: `permitted` applies,
    /// `allowed-roles` does not, as kube2iam never asked it for its default role).
    Default(String),
    /// The pod's role cannot be injected.
    Refused(Refusal),
}

/// Whether the pod's namespace must be looked up for a legacy role, its annotation's or `--default-role`
/// (the server skips the lookup for pods of unannotated ServiceAccounts otherwise).
pub fn needs_namespace(pod: &Pod<'_>, cfg: &InjectionConfig) -> bool {
    cfg.legacy
        .as_ref()
        .is_some_and(|legacy| legacy.default_role_arn.is_some() || role_annotation(pod).is_some())
}

fn role_annotation<'p>(pod: &'p Pod<'_>) -> Option<&'p str> {
    pod::annotation(pod, ROLE_ANNOTATION)
        .map(str::trim)
        .filter(|role| !role.is_empty())
}

/// Reads the pod's legacy annotations. `sa_role` is the ServiceAccount's role ARN when it has one (it wins).
pub(crate) fn pod_role(
    pod: &Pod<'_>,
    sa_role: Option<&str>,
    ns: Option<&NamespaceView>,
    cfg: &InjectionConfig,
    legacy: &LegacyConfig,
    warnings: &mut Vec<Warning>,
) -> PodRole {
    let sa_name = pod::service_account_name(pod);
    if pod::annotation(pod, EXTERNAL_ID_ANNOTATION).is_some_and(|id| !id.trim().is_empty()) {
        warnings.push(Warning::new(
            WarningReason::UnsupportedLegacyAnnotation,
            format!(
                "pod annotation {EXTERNAL_ID_ANNOTATION} is not used: AssumeRoleWithWebIdentity sends no \
                 external ID, so the role's trust policy must trust service account {sa_name:?} instead of \
                 asking for sts:ExternalId (`irsa migrate` writes that statement)"
            ),
        ));
    }
    let annotated = role_annotation(pod);
    if let Some(sa_role) = sa_role {
        if let Some(raw) = annotated
            && legacy.resolve(raw).as_deref() != Some(sa_role)
        {
            warnings.push(Warning::new(
                WarningReason::RoleAnnotationConflict,
                format!(
                    "pod annotation {ROLE_ANNOTATION} {raw:?} is ignored: service account {sa_name:?} has \
                     {}/role-arn {sa_role:?}, which wins; remove one of them",
                    cfg.annotation_prefix
                ),
            ));
        }
        return PodRole::None;
    }
    let Some(raw) = annotated else {
        // kube2iam's fallback, never judged by the namespace (kube2iam skips the check for it too).
        return legacy
            .default_role_arn
            .clone()
            .map_or(PodRole::None, PodRole::Default);
    };
    let Some(arn) = legacy.resolve(raw) else {
        warnings.push(Warning::new(
            WarningReason::UnresolvedRoleName,
            format!(
                "pod annotation {ROLE_ANNOTATION} {raw:?} is a role name and the webhook knows no base ARN to \
                 put it under: start it with --base-role-arn (e.g. arn:aws:iam::<account>:role/) or annotate \
                 the role's full ARN; AWS credentials were not injected"
            ),
        ));
        return PodRole::Refused(Refusal::Invalid(Outcome::InvalidRoleArn));
    };
    if let Some(problem) = role_arn_problem(&arn, &cfg.role_arn_pattern) {
        warnings.push(Warning::new(
            WarningReason::InvalidRoleArn,
            format!(
                "pod annotation {ROLE_ANNOTATION}: {problem}; AWS credentials were not injected"
            ),
        ));
        return PodRole::Refused(Refusal::Invalid(Outcome::InvalidRoleArn));
    }
    match judge_namespace(ns, &arn, legacy, warnings) {
        Ok(()) => PodRole::Role(arn),
        Err(why) => {
            let reason = Warning::new(
                WarningReason::ForbiddenRole,
                format!(
                    "pod annotation {ROLE_ANNOTATION}: role {arn:?} is not permitted in this namespace ({why}); \
                     to permit it, annotate the namespace with {PERMITTED_ANNOTATION}: {:?} or \
                     {ALLOWED_ROLES_ANNOTATION}: '[{:?}]'; AWS credentials were not injected",
                    literal_pattern(&arn),
                    arn
                ),
            );
            PodRole::Refused(Refusal::Forbidden(reason))
        }
    }
}

/// A `permitted` pattern that matches exactly `arn` (already a whole-ARN match): its regex metacharacters
/// escaped, and only those, so that the suggestion reads like the ARN (`regex::escape` also escapes `-`).
fn literal_pattern(arn: &str) -> String {
    let mut pattern = String::with_capacity(arn.len());
    for c in arn.chars() {
        if "\\.+*?()|[]{}^$#&~".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// Whether the namespace permits a pod-annotated role (resolved to `arn`): either annotation may. `Err` says
/// why not, naming what the namespace has. A broken annotation permits nothing (fail closed, as kiam and
/// kube2iam do) and is a warning of its own. `irsa migrate` judges with this same rule.
pub fn judge_namespace(
    ns: Option<&NamespaceView>,
    arn: &str,
    legacy: &LegacyConfig,
    warnings: &mut Vec<Warning>,
) -> Result<(), String> {
    let permitted = ns.and_then(NamespaceView::permitted);
    let allowed = ns.and_then(NamespaceView::allowed_roles);
    if permitted.is_none() && allowed.is_none() {
        return if legacy.unrestricted_namespaces {
            Ok(())
        } else {
            Err(format!(
                "it has neither {PERMITTED_ANNOTATION} nor {ALLOWED_ROLES_ANNOTATION}"
            ))
        };
    }
    let mut why = Vec::new();
    if let Some(permitted) = permitted {
        match permitted.permits(arn) {
            Ok(true) => return Ok(()),
            Ok(false) => why.push(format!("{PERMITTED_ANNOTATION}: {:?}", permitted.pattern())),
            Err((pattern, error)) => {
                warnings.push(Warning::new(
                    WarningReason::InvalidNamespaceRegex,
                    format!(
                        "namespace annotation {PERMITTED_ANNOTATION} {pattern:?} is not a valid regular \
                         expression ({error}); it permits no role"
                    ),
                ));
                why.push(format!("{PERMITTED_ANNOTATION} is invalid"));
            }
        }
    }
    match allowed {
        None => {}
        Some(AllowedRoles::Invalid { value, error }) => {
            warnings.push(Warning::new(
                WarningReason::InvalidAllowedRoles,
                format!(
                    "namespace annotation {ALLOWED_ROLES_ANNOTATION} {value:?} is not a JSON list of role names \
                     or ARNs ({error}); it permits no role"
                ),
            ));
            why.push(format!("{ALLOWED_ROLES_ANNOTATION} is invalid"));
        }
        Some(AllowedRoles::List(entries)) => {
            for entry in entries.iter().map(|entry| entry.trim()) {
                let pattern = legacy.entry_pattern(entry);
                let matched = match legacy.restriction_format {
                    RestrictionFormat::Glob => glob_matches(&pattern, arn),
                    // Compiled per admission: only pods with a legacy role in a regexp-format namespace
                    // get here, and the view stays independent of the flags.
                    RestrictionFormat::Regexp => match full_match_regex(&pattern) {
                        Ok(regex) => regex.is_match(arn),
                        Err(error) => {
                            warnings.push(Warning::new(
                                WarningReason::InvalidAllowedRoles,
                                format!(
                                    "namespace annotation {ALLOWED_ROLES_ANNOTATION}: entry {entry:?} is not a \
                                     valid regular expression ({error}); it permits no role"
                                ),
                            ));
                            false
                        }
                    },
                };
                if matched {
                    return Ok(());
                }
            }
            let format = match legacy.restriction_format {
                RestrictionFormat::Glob => "globs",
                RestrictionFormat::Regexp => "regexps",
            };
            why.push(format!(
                "{ALLOWED_ROLES_ANNOTATION} ({format}): {}",
                serde_json::to_string(entries).unwrap_or_default()
            ));
        }
    }
    Err(why.join("; "))
}

/// kiam's `iam.amazonaws.com/session-name` as the `AWS_ROLE_SESSION_NAME` entry, made valid for STS (with a
/// warning when it had to be changed); `None` without the annotation.
pub(crate) fn session_name(pod: &Pod<'_>, warnings: &mut Vec<Warning>) -> Option<Value> {
    let raw = pod::annotation(pod, SESSION_NAME_ANNOTATION)
        .map(str::trim)
        .filter(|raw| !raw.is_empty())?;
    let name = session_name::sanitize(raw);
    if name != raw {
        warnings.push(Warning::new(
            WarningReason::InvalidRoleSessionName,
            format!(
                "pod annotation {SESSION_NAME_ANNOTATION} {raw:?} is not a valid STS session name; {name:?} \
                 was injected instead"
            ),
        ));
    }
    Some(serde_json::json!({"name": crate::mutate::env::ROLE_SESSION_NAME, "value": name}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(base: Option<&str>, format: RestrictionFormat) -> LegacyConfig {
        LegacyConfig {
            base_role_arn: base.map(str::to_owned),
            default_role_arn: None,
            restriction_format: format,
            unrestricted_namespaces: false,
        }
    }

    const BASE: &str = "arn:aws:iam::123456789012:role/";

    #[test]
    fn globs_match_like_kube2iam() {
        for (pattern, subject, expected) in [
            ("a*", "abc", true),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a*c", "abc/xc", true),
            ("a*b*c", "axbyc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("role/team/*", "role/team/app", true),
            ("role/team/*", "role/other/app", false),
            ("*/app", "role/team/app", true),
            ("a.c", "abc", false),
        ] {
            assert_eq!(
                glob_matches(pattern, subject),
                expected,
                "{pattern} {subject}"
            );
        }
    }

    #[test]
    fn suggested_patterns_match_exactly_the_role() {
        for arn in [
            "arn:aws:iam::123456789012:role/team-a/app",
            "arn:aws:iam::123456789012:role/a.b+c=d,e@f_g",
        ] {
            let pattern = literal_pattern(arn);
            let regex = full_match_regex(&pattern).unwrap();
            assert!(regex.is_match(arn), "{pattern}");
            assert!(!regex.is_match(&arn.replace('.', "x")) || !arn.contains('.'));
        }
        assert_eq!(literal_pattern("arn:x:role/a.b-c"), "arn:x:role/a\\.b-c");
    }

    #[test]
    fn names_resolve_under_the_base() {
        let with = legacy(Some(BASE), RestrictionFormat::Glob);
        assert_eq!(
            with.resolve("app").as_deref(),
            Some("arn:aws:iam::123456789012:role/app")
        );
        assert_eq!(
            with.resolve("/app").as_deref(),
            Some("arn:aws:iam::123456789012:role/app")
        );
        assert_eq!(
            with.resolve("path/app").as_deref(),
            Some("arn:aws:iam::123456789012:role/path/app")
        );
        assert_eq!(
            with.resolve("ARN:aws:iam::1:role/x").as_deref(),
            Some("ARN:aws:iam::1:role/x")
        );
        let without = legacy(None, RestrictionFormat::Glob);
        assert_eq!(without.resolve("app"), None);
        assert_eq!(
            without.resolve("arn:aws:iam::1:role/x").as_deref(),
            Some("arn:aws:iam::1:role/x")
        );
    }

    #[test]
    fn allowed_entries_take_the_base_escaped_for_regexps() {
        let glob = legacy(Some("arn:aws:iam::1:role/p.q/"), RestrictionFormat::Glob);
        assert_eq!(glob.entry_pattern("a*"), "arn:aws:iam::1:role/p.q/a*");
        assert_eq!(
            glob.entry_pattern("arn:aws:iam::2:role/*"),
            "arn:aws:iam::2:role/*"
        );
        let regexp = legacy(Some("arn:aws:iam::1:role/p.q/"), RestrictionFormat::Regexp);
        assert_eq!(regexp.entry_pattern("a.*"), "arn:aws:iam::1:role/p\\.q/a.*");
    }

    fn parse(args: &[&str]) -> Result<Option<LegacyConfig>, ConfigError> {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            legacy: LegacyArgs,
        }
        let cli = Cli::try_parse_from(std::iter::once("irsa").chain(args.iter().copied()))
            .expect("arguments parse");
        cli.legacy
            .into_config(&crate::config::InjectionConfig::default().role_arn_pattern)
    }

    #[test]
    fn flags_are_validated() {
        assert!(parse(&[]).unwrap().is_none());
        let cfg = parse(&["--legacy-role-annotations"]).unwrap().unwrap();
        assert_eq!((cfg.base_role_arn, cfg.default_role_arn), (None, None));
        let cfg = parse(&[
            "--legacy-role-annotations",
            "--base-role-arn",
            "arn:aws:iam::123456789012:role",
            "--default-role",
            "fallback",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(cfg.base_role_arn.as_deref(), Some(BASE));
        assert_eq!(
            cfg.default_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/fallback")
        );
        // The base of an ARN default role is derived, its path dropped.
        let cfg = parse(&[
            "--legacy-role-annotations",
            "--default-role",
            "arn:aws-cn:iam::123456789012:role/ops/fallback",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            cfg.base_role_arn.as_deref(),
            Some("arn:aws-cn:iam::123456789012:role/")
        );
        for (args, message) in [
            (
                &[
                    "--legacy-role-annotations",
                    "--base-role-arn",
                    "123456789012",
                ][..],
                "--base-role-arn \"123456789012\" is not the start of a role ARN (e.g. \
                 arn:aws:iam::123456789012:role/)",
            ),
            (
                &[
                    "--legacy-role-annotations",
                    "--base-role-arn",
                    "arn:aws:iam::1:user/",
                ][..],
                "--base-role-arn \"arn:aws:iam::1:user/\" is not the start of a role ARN (e.g. \
                 arn:aws:iam::123456789012:role/)",
            ),
            (
                &["--legacy-role-annotations", "--default-role", "fallback"][..],
                "--default-role \"fallback\" is a role name: give --base-role-arn, or its full ARN",
            ),
            (
                &[
                    "--legacy-role-annotations",
                    "--default-role",
                    "arn:aws:iam::1:user/x",
                ][..],
                "--default-role \"arn:aws:iam::1:user/x\" is not a valid role ARN",
            ),
        ] {
            assert_eq!(parse(args).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn the_other_flags_need_the_switch() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            legacy: LegacyArgs,
        }
        for flag in [
            &["--base-role-arn", BASE][..],
            &["--default-role", "x"],
            &["--legacy-unrestricted-namespaces"],
        ] {
            assert!(
                Cli::try_parse_from(std::iter::once("irsa").chain(flag.iter().copied())).is_err(),
                "{flag:?}"
            );
        }
    }
}
