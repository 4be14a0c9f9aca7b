//! The pod mutation: a pure function from (pod, service-account view, namespace view, config) to a surgical
//! JSON Patch, warnings and an outcome. No I/O, no async, no clock: the server, the offline `mutate`
//! subcommand and the tests all call the same function, [`mutate_pod`] (the server on the pod it decoded
//! from the AdmissionReview, the others through [`mutate`] on a pod's JSON).

use std::borrow::Cow;

use json_patch::Patch;
use serde_json::{Value, json};

use crate::{
    config::{InjectionConfig, MAX_TOKEN_EXPIRATION, is_sts_endpoint_url},
    container_roles::ContainerRoles,
    legacy::{self, PodRole},
    patch::PatchBuilder,
    pod::{self, ContainerKind, ContainerRef, ListField, Pod, TOKEN_VOLUME_NAME},
    pod_decode,
    session_name::SessionNameTemplate,
    views::{
        IRSA_ANNOTATION_PREFIX, NamespaceView, ServiceAccountView, annotation, irsa_annotation,
    },
    warning::{Warning, WarningReason},
};

use irsa_core::arn::check_role_arn_len;
use irsa_core::names::TOKEN_FILE_NAME;
pub use irsa_core::names::env;

/// What the mutation decided; doubles as the `outcome` label of the admissions metric.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// The patch injects something.
    Mutated,
    /// Every selected container is already injected: an empty patch (reinvocation, or a re-created pod).
    AlreadyMutated,
    /// The service account has no role ARN (or there is no service account view).
    NotAnnotated,
    /// The pod carries the skip label, or no container is selected or injectable.
    Skipped,
    /// The namespace's `iam.amazonaws.com/permitted` does not admit the role, or is not a valid regex.
    /// The [`policy`](crate::policy) chooses between admitting unmutated and denying.
    Forbidden,
    /// The service account's role ARN does not match `--role-arn-pattern`, or is longer than IAM accepts.
    InvalidRoleArn,
    /// A foreign volume named `aws-iam-token` exists: nothing injected.
    VolumeConflict,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The result of [`mutate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The JSON Patch against the request's pod; empty when there is nothing to do.
    pub patch: Patch,
    /// Warnings for the client and the metrics, [`forbidden`](Self::forbidden) excepted.
    pub warnings: Vec<Warning>,
    /// What happened.
    pub outcome: Outcome,
    /// Why the namespace forbids the role, when it does: the ServiceAccount's (outcome
    /// [`Outcome::Forbidden`], no patch), or one a pod's `container-role-arns` asks for (the patch gives that
    /// container the ServiceAccount's role). The [`policy`](crate::policy) makes it the denial message, or
    /// the first warning of an admitted pod.
    pub forbidden: Option<Warning>,
}

impl Mutation {
    fn without_patch(outcome: Outcome, warnings: Vec<Warning>) -> Self {
        Self {
            patch: Patch(Vec::new()),
            warnings,
            outcome,
            forbidden: None,
        }
    }

    fn forbidden_by(reason: Warning, warnings: Vec<Warning>) -> Self {
        Self {
            forbidden: Some(reason),
            ..Self::without_patch(Outcome::Forbidden, warnings)
        }
    }

    /// Every warning, the [`forbidden`](Self::forbidden) one first: what the client of an admitted pod sees,
    /// and what the warnings metric counts.
    pub fn all_warnings(&self) -> impl Iterator<Item = &Warning> {
        self.forbidden.iter().chain(&self.warnings)
    }
}

/// [`mutate_pod`] on a pod given as JSON (`irsa webhook mutate`, the tests). A value that is not a pod (not an
/// object, or its metadata not an object) is left alone with a warning.
pub fn mutate(
    pod: &Value,
    sa: Option<&ServiceAccountView>,
    ns: Option<&NamespaceView>,
    cfg: &InjectionConfig,
) -> Mutation {
    let json = pod.to_string();
    match pod_decode::pod_json(json.as_bytes()) {
        Ok(pod) => mutate_pod(&pod, sa, ns, cfg),
        Err(err) => Mutation::without_patch(
            Outcome::Skipped,
            vec![Warning::new(
                WarningReason::MalformedPod,
                format!("{}; AWS credentials were not injected", err.what),
            )],
        ),
    }
}

/// Computes the patch that gives a pod the web-identity credentials of its service account.
///
/// `sa` is the view of the pod's service account (`None`: not annotated), `ns` the role restriction of the
/// pod's namespace (`None`: unrestricted).
pub fn mutate_pod(
    pod: &Pod<'_>,
    sa: Option<&ServiceAccountView>,
    ns: Option<&NamespaceView>,
    cfg: &InjectionConfig,
) -> Mutation {
    let prefix = cfg.annotation_prefix.as_str();
    let mut warnings = Vec::new();

    if pod::prefixed_label(pod, prefix, annotation::SKIP_POD_LABEL).is_some() {
        return Mutation::without_patch(Outcome::Skipped, warnings);
    }
    // Displayed in warnings only: no key is built on the admission path.
    let role_arn_key = Key(prefix, annotation::ROLE_ARN);
    if pod::prefixed_annotation(pod, prefix, annotation::ROLE_ARN).is_some() {
        // The reference webhook reads it on the ServiceAccount only; a pod cannot choose its own role.
        warnings.push(Warning::new(
            WarningReason::NearMissAnnotation,
            format!(
                "pod annotation {role_arn_key} is ignored: the role is read from the ServiceAccount; annotate \
                 service account {:?} with {role_arn_key} instead",
                pod::service_account_name(pod)
            ),
        ));
    }
    let sa_name = pod::service_account_name(pod);
    if let Some(near_miss) = sa.and_then(|sa| sa.options().near_miss.as_ref()) {
        warnings.push(Warning::new(
            WarningReason::NearMissAnnotation,
            format!(
                "service account {sa_name:?} has annotation {near_miss:?} but no {role_arn_key}: did you mean \
                 {role_arn_key}? AWS credentials were not injected"
            ),
        ));
        return Mutation::without_patch(Outcome::NotAnnotated, warnings);
    }
    // kiam's and kube2iam's pod annotations (opt-in): a role for a pod whose ServiceAccount has none.
    let pod_role = match &cfg.legacy {
        None => PodRole::None,
        Some(legacy) => {
            let sa_role = sa.map(|sa| sa.role_arn.trim());
            match legacy::pod_role(pod, sa_role, ns, cfg, legacy, &mut warnings) {
                PodRole::Refused(refusal) => return refusal.into_mutation(warnings),
                other => other,
            }
        }
    };
    let legacy_view;
    let (sa, source) = match (sa, pod_role) {
        (Some(sa), _) => (sa, RoleSource::ServiceAccount(sa_name)),
        (None, PodRole::Role(arn)) => {
            legacy_view = ServiceAccountView::new(arn);
            (&legacy_view, RoleSource::PodAnnotation)
        }
        (None, PodRole::Default(arn)) => {
            legacy_view = ServiceAccountView::new(arn);
            (&legacy_view, RoleSource::DefaultRole)
        }
        (None, _) => return Mutation::without_patch(Outcome::NotAnnotated, warnings),
    };
    // A pod-annotated role was judged (ARN and namespace) by `legacy::pod_role`, against either restriction.
    if !matches!(source, RoleSource::PodAnnotation)
        && let Err(refusal) = judge_role(sa, source, ns, cfg, &mut warnings)
    {
        return refusal.into_mutation(warnings);
    }
    let role_arn = sa.role_arn.trim();

    let settings = Settings::resolve(pod, sa, sa_name, cfg, &mut warnings);

    let volumes = &pod.spec.volumes;
    if let ListField::Malformed = volumes {
        warnings.push(Warning::new(
            WarningReason::MalformedPod,
            "spec.volumes is not an array; AWS credentials were not injected",
        ));
        return Mutation::without_patch(Outcome::Skipped, warnings);
    }
    // The first volume named `aws-iam-token`, which the decode kept whole.
    let existing = volumes.items().iter().find_map(|v| v.token_volume.as_ref());
    let volume_exists = match existing {
        None => false,
        Some(volume) if settings.is_own_volume(volume) => true,
        Some(volume) => {
            warnings.push(Warning::new(
                WarningReason::VolumeConflict,
                format!(
                    "volume {TOKEN_VOLUME_NAME:?} already exists and is {}, not the service account token \
                     projection (audience {:?}, expirationSeconds {}); AWS credentials were not injected",
                    describe_volume(volume),
                    settings.audience,
                    settings.expiration
                ),
            ));
            return Mutation::without_patch(Outcome::VolumeConflict, warnings);
        }
    };

    // The apiserver decodes pods before admission, so only hand-made input (`webhook mutate`) gets here; say
    // why nothing was injected rather than skip silently.
    for kind in [ContainerKind::Container, ContainerKind::InitContainer] {
        if let ListField::Malformed = pod::container_list(pod, kind) {
            warnings.push(Warning::new(
                WarningReason::MalformedPod,
                format!(
                    "spec.{} is not an array; its containers were left alone",
                    kind.field()
                ),
            ));
        }
    }

    let selection = Selection::read(pod, prefix);
    selection.warn_unknown(pod, prefix, &mut warnings);
    let mut forbidden = None;
    let roles = ContainerRoles::read(
        pod,
        &cfg.role_arn_pattern,
        ns,
        &mut warnings,
        &mut forbidden,
    );

    let mut builder = PatchBuilder::new();
    let mut any_injected = false;
    for kind in [ContainerKind::Container, ContainerKind::InitContainer] {
        for container in pod::containers(pod, kind) {
            if selection.selects(container.name()) {
                let role_arn = roles.role_for(container.name()).unwrap_or(role_arn);
                any_injected |= settings.inject(container, role_arn, &mut builder, &mut warnings);
            }
        }
    }
    if any_injected && !volume_exists {
        builder.append(
            &["spec"],
            "volumes",
            volumes.exists(),
            vec![settings.volume()],
        );
    }

    let outcome = if !builder.is_empty() {
        Outcome::Mutated
    } else if any_injected {
        Outcome::AlreadyMutated
    } else {
        Outcome::Skipped
    };
    Mutation {
        patch: builder.build(),
        warnings,
        outcome,
        forbidden,
    }
}

/// Where the role being injected comes from, as warnings name it.
#[derive(Clone, Copy)]
enum RoleSource<'a> {
    /// The ServiceAccount's `<prefix>/role-arn` (the service account's name).
    ServiceAccount(&'a str),
    /// The pod's `iam.amazonaws.com/role` (`--legacy-role-annotations`).
    PodAnnotation,
    /// `--default-role` (`--legacy-role-annotations`).
    DefaultRole,
}

impl std::fmt::Display for RoleSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServiceAccount(name) => write!(f, "service account {name:?}"),
            Self::PodAnnotation => write!(f, "pod annotation {}", legacy::ROLE_ANNOTATION),
            Self::DefaultRole => f.write_str("--default-role"),
        }
    }
}

/// Why a role is not injected: the outcome, and the namespace's reason when it is a restriction (which
/// `--on-forbidden-role` may turn into a denial).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The role cannot be used (invalid, unresolved): this outcome.
    Invalid(Outcome),
    /// The namespace forbids the role, for this reason.
    Forbidden(Warning),
}

impl Refusal {
    fn into_mutation(self, warnings: Vec<Warning>) -> Mutation {
        match self {
            Self::Invalid(outcome) => Mutation::without_patch(outcome, warnings),
            Self::Forbidden(reason) => Mutation::forbidden_by(reason, warnings),
        }
    }
}

/// Judges the ServiceAccount's role ARN (or `--default-role`): white space, [`role_arn_problem`] and the
/// namespace's `permitted`.
fn judge_role(
    sa: &ServiceAccountView,
    source: RoleSource<'_>,
    ns: Option<&NamespaceView>,
    cfg: &InjectionConfig,
    warnings: &mut Vec<Warning>,
) -> Result<(), Refusal> {
    let prefix = cfg.annotation_prefix.as_str();
    // White space around the ARN (a YAML block scalar's line break, a pasted space) was always trimmed, and
    // still is, so such ServiceAccounts keep working; the warning says to clean it up.
    let role_arn = sa.role_arn.trim();
    if role_arn.len() != sa.role_arn.len() {
        warnings.push(Warning::new(
            WarningReason::InvalidRoleArn,
            format!(
                "{source}: {prefix}/role-arn {} has white space around it; it was trimmed and injected, but \
                 remove it from the annotation",
                Abbreviated(&sa.role_arn)
            ),
        ));
    }
    if let Some(problem) = role_arn_problem(role_arn, &cfg.role_arn_pattern) {
        warnings.push(Warning::new(
            WarningReason::InvalidRoleArn,
            format!("{source}: {prefix}/role-arn {problem}; AWS credentials were not injected"),
        ));
        return Err(Refusal::Invalid(Outcome::InvalidRoleArn));
    }
    let Some(ns) = ns else { return Ok(()) };
    let reason = match ns.permits(role_arn) {
        Ok(true) => return Ok(()),
        Ok(false) => Warning::new(
            WarningReason::ForbiddenRole,
            format!(
                "{source}: role {role_arn:?} is not permitted in this namespace \
                 (iam.amazonaws.com/permitted: {:?}); AWS credentials were not injected",
                ns.pattern()
            ),
        ),
        Err((pattern, error)) => Warning::new(
            WarningReason::InvalidNamespaceRegex,
            format!(
                "namespace annotation iam.amazonaws.com/permitted {pattern:?} is not a valid regular \
                 expression ({error}); no role is permitted, AWS credentials were not injected"
            ),
        ),
    };
    Err(Refusal::Forbidden(reason))
}

/// The values resolved for this pod from its annotations, its service account's and the flags.
struct Settings<'a> {
    audience: &'a str,
    expiration: i64,
    regional: bool,
    region: Option<&'a str>,
    sts_endpoint_url: Option<&'a str>,
    /// The `AWS_ROLE_SESSION_NAME` entry, when a template applies.
    session_name: Option<Value>,
    mount_path: &'a str,
    token_file: String,
}

impl<'a> Settings<'a> {
    fn resolve(
        pod: &'a Pod<'_>,
        sa: &'a ServiceAccountView,
        sa_name: &str,
        cfg: &'a InjectionConfig,
        warnings: &mut Vec<Warning>,
    ) -> Self {
        let prefix = cfg.annotation_prefix.as_str();
        let options = sa.options();
        let audience = options
            .audience
            .as_deref()
            .map(str::trim)
            .filter(|aud| !aud.is_empty())
            .unwrap_or(&cfg.token_audience);

        let regional = match options.sts_regional_endpoints.as_deref().map(str::trim) {
            None => cfg.sts_regional_endpoint,
            Some(raw) => parse_bool(raw).unwrap_or_else(|| {
                warnings.push(Warning::new(
                    WarningReason::StsRegionalEndpointsInvalid,
                    format!(
                        "service account {sa_name:?}: {prefix}/sts-regional-endpoints {raw:?} is not true or \
                         false; using {}",
                        cfg.sts_regional_endpoint
                    ),
                ));
                cfg.sts_regional_endpoint
            }),
        };

        let sources = [
            (
                "pod",
                pod::prefixed_annotation(pod, prefix, annotation::TOKEN_EXPIRATION),
            ),
            ("service account", options.token_expiration.as_deref()),
        ];
        let expiration = resolve_expiration(
            &sources,
            Key(prefix, annotation::TOKEN_EXPIRATION),
            cfg.token_expiration,
            cfg.min_token_expiration,
            warnings,
        );

        let sts_endpoint_url = match options.sts_endpoint_url.as_deref().map(str::trim) {
            // An emptied annotation means "no override", as for the audience.
            None | Some("") => cfg.sts_endpoint_url.as_deref(),
            Some(url) if is_sts_endpoint_url(url) => Some(url),
            Some(url) => {
                // Not the flag's endpoint either: the account asked for another one, and a wrong STS is worse
                // than the SDK's default.
                warnings.push(Warning::new(
                    WarningReason::InvalidStsEndpointUrl,
                    format!(
                        "service account {sa_name:?}: {IRSA_ANNOTATION_PREFIX}/{} {} is not an absolute \
                         https:// (or http://) URL with a host; {} was not injected",
                        irsa_annotation::STS_ENDPOINT_URL,
                        Abbreviated(url),
                        env::ENDPOINT_URL_STS
                    ),
                ));
                None
            }
        };

        let session_name = match options.role_session_name.as_deref().map(str::trim) {
            // An emptied annotation means "no override", as for the STS endpoint.
            None | Some("") => cfg.role_session_name.as_ref().map(Cow::Borrowed),
            Some(raw) => match SessionNameTemplate::parse(raw) {
                Ok(template) => Some(Cow::Owned(template)),
                Err(error) => {
                    // The flag is the cluster's policy: a typo on one account must not switch it off.
                    let fallback = match &cfg.role_session_name {
                        Some(template) => {
                            format!("the --role-session-name template \"{template}\" is used")
                        }
                        None => format!("{} was not injected", env::ROLE_SESSION_NAME),
                    };
                    warnings.push(Warning::new(
                        WarningReason::InvalidRoleSessionName,
                        format!(
                            "service account {sa_name:?}: {IRSA_ANNOTATION_PREFIX}/{} {} {error}; {fallback}",
                            irsa_annotation::ROLE_SESSION_NAME,
                            Abbreviated(raw),
                        ),
                    ));
                    cfg.role_session_name.as_ref().map(Cow::Borrowed)
                }
            },
        }
        .map(|template| template.env_entry(pod, env::ROLE_SESSION_NAME));
        // kiam's pod annotation names this pod's session: the most specific choice, so it wins.
        let session_name = cfg
            .legacy
            .as_ref()
            .and_then(|_| legacy::session_name(pod, warnings))
            .or(session_name);

        let mount_path = cfg.token_mount_path.trim_end_matches('/');
        let token_file = if pod::is_windows(pod) {
            // Windows containers see the same mount path under the system drive.
            format!("C:{}\\token", mount_path.replace('/', "\\"))
        } else {
            format!("{mount_path}/{TOKEN_FILE_NAME}")
        };

        Self {
            audience,
            expiration,
            regional,
            region: cfg.aws_default_region.as_deref(),
            sts_endpoint_url,
            session_name,
            mount_path,
            token_file,
        }
    }

    /// Injects one container with `role_arn` (the ServiceAccount's, or the one `container-role-arns` gives
    /// it); `false` when it was left alone (half-configured, conflicting, malformed).
    fn inject(
        &self,
        container: ContainerRef<'_, '_>,
        role_arn: &str,
        builder: &mut PatchBuilder,
        warnings: &mut Vec<Warning>,
    ) -> bool {
        let name = container.name();
        let (env_list, mounts) = (container.env(), container.volume_mounts());
        if matches!(env_list, ListField::Malformed) || matches!(mounts, ListField::Malformed) {
            warnings.push(Warning::new(
                WarningReason::MalformedPod,
                format!(
                    "container {name:?}: env or volumeMounts is not an array; it was left alone"
                ),
            ));
            return false;
        }

        let has_role = container.has_env(env::ROLE_ARN);
        let has_file = container.has_env(env::WEB_IDENTITY_TOKEN_FILE);
        if has_role != has_file {
            let (set, unset) = if has_role {
                (env::ROLE_ARN, env::WEB_IDENTITY_TOKEN_FILE)
            } else {
                (env::WEB_IDENTITY_TOKEN_FILE, env::ROLE_ARN)
            };
            warnings.push(Warning::new(
                WarningReason::HalfConfigured,
                format!(
                    "container {name:?} sets {set} but not {unset}; the SDKs need both, so nothing was injected \
                     into this container"
                ),
            ));
            return false;
        }

        // Another injector (a service mesh's reinvocation) or the user may have mounted something at or
        // under the token mount path. At it: a second mount would make the apiserver refuse the pod. Under
        // it: that mount would shadow the token file, or need a mount point inside the read-only token
        // volume. Either way the whole container is left alone: the token file env without the mount would
        // point the SDK at a missing or foreign file.
        let mut own_mount = false;
        for mount in mounts.items() {
            let Some(path) = mount.mount_path.as_deref().map(|p| p.trim_end_matches('/')) else {
                continue;
            };
            let volume = mount.name.as_deref().unwrap_or("");
            let inside = path
                .strip_prefix(self.mount_path)
                .is_some_and(|rest| rest.starts_with('/'));
            if volume == TOKEN_VOLUME_NAME {
                own_mount |= path == self.mount_path;
            } else if path == self.mount_path || inside {
                let place = if inside {
                    format!("at {path}, inside the token mount path {}", self.mount_path)
                } else {
                    format!("at the token mount path {}", self.mount_path)
                };
                warnings.push(Warning::new(
                    WarningReason::MountPathConflict,
                    format!(
                        "container {name:?} already mounts volume {volume:?} {place}; nothing was injected into \
                         this container (move one of the mounts, or list the container in skip-containers)"
                    ),
                ));
                return false;
            }
        }

        if container.has_env(env::ACCESS_KEY_ID) {
            warnings.push(Warning::new(
                WarningReason::StaticCredentials,
                format!(
                    "container {name:?} sets {}: static keys take precedence over the injected web identity in \
                     every AWS SDK, so role {role_arn:?} will not be used",
                    env::ACCESS_KEY_ID,
                ),
            ));
        }

        let mut vars = Vec::new();
        if !has_role {
            vars.push(env_var(env::ROLE_ARN, role_arn));
            vars.push(env_var(env::WEB_IDENTITY_TOKEN_FILE, &self.token_file));
        }
        if let Some(entry) = &self.session_name
            && !container.has_env(env::ROLE_SESSION_NAME)
        {
            vars.push(entry.clone());
        }
        if self.regional && !container.has_env(env::STS_REGIONAL_ENDPOINTS) {
            vars.push(env_var(env::STS_REGIONAL_ENDPOINTS, "regional"));
        }
        if let Some(region) = self.region
            && !container.has_env(env::REGION)
            && !container.has_env(env::DEFAULT_REGION)
        {
            vars.push(env_var(env::DEFAULT_REGION, region));
            vars.push(env_var(env::REGION, region));
        }
        // A container's own endpoint wins, as its own region does.
        if let Some(url) = self.sts_endpoint_url
            && !container.has_env(env::ENDPOINT_URL_STS)
        {
            vars.push(env_var(env::ENDPOINT_URL_STS, url));
        }

        let index = container.index.to_string();
        let parent = ["spec", container.kind.field(), index.as_str()];
        builder.append(&parent, "env", env_list.exists(), vars);
        if !own_mount {
            let mount =
                json!({"name": TOKEN_VOLUME_NAME, "mountPath": self.mount_path, "readOnly": true});
            builder.append(&parent, "volumeMounts", mounts.exists(), vec![mount]);
        }
        true
    }

    fn volume(&self) -> Value {
        json!({
            "name": TOKEN_VOLUME_NAME,
            "projected": {"sources": [{"serviceAccountToken": {
                "audience": self.audience,
                "expirationSeconds": self.expiration,
                "path": TOKEN_FILE_NAME,
            }}]},
        })
    }

    /// Whether a volume named `aws-iam-token` is exactly the projection this webhook would add. The
    /// apiserver defaults `defaultMode` before admission, so that one extra field is expected.
    fn is_own_volume(&self, volume: &Value) -> bool {
        let only = |value: &Value, allowed: &[&str]| {
            value
                .as_object()
                .is_some_and(|obj| obj.keys().all(|key| allowed.contains(&key.as_str())))
        };
        let Some(projected) = volume.get("projected") else {
            return false;
        };
        let sources = projected
            .get("sources")
            .and_then(Value::as_array)
            .map(Vec::as_slice);
        let [source] = sources.unwrap_or_default() else {
            return false;
        };
        let Some(token) = source.get("serviceAccountToken") else {
            return false;
        };
        only(volume, &["name", "projected"])
            && only(projected, &["sources", "defaultMode"])
            && only(source, &["serviceAccountToken"])
            && only(token, &["audience", "expirationSeconds", "path"])
            && token.get("audience").and_then(Value::as_str) == Some(self.audience)
            && token.get("expirationSeconds").and_then(Value::as_i64) == Some(self.expiration)
            && token.get("path").and_then(Value::as_str) == Some(TOKEN_FILE_NAME)
    }
}

/// The first parsable expiration in precedence order, clamped to `floor..=MAX_TOKEN_EXPIRATION`; unparsable
/// values are skipped with a warning.
fn resolve_expiration(
    sources: &[(&str, Option<&str>)],
    key: Key<'_>,
    default: i64,
    floor: i64,
    warnings: &mut Vec<Warning>,
) -> i64 {
    for (source, raw) in sources {
        let Some(raw) = raw else { continue };
        match raw.trim().parse::<i64>() {
            Ok(seconds) => {
                let clamped = seconds.clamp(floor, MAX_TOKEN_EXPIRATION);
                if clamped != seconds {
                    warnings.push(Warning::new(
                        WarningReason::TokenExpirationClamped,
                        format!(
                            "{source} annotation {key}={raw:?} is outside {floor}..{MAX_TOKEN_EXPIRATION} \
                             seconds; using {clamped}"
                        ),
                    ));
                }
                return clamped;
            }
            Err(_) => warnings.push(Warning::new(
                WarningReason::TokenExpirationInvalid,
                format!("{source} annotation {key}={raw:?} is not a number of seconds; ignored"),
            )),
        }
    }
    // The flag is validated at startup; clamping here only guards hand-built configurations.
    default.clamp(floor, MAX_TOKEN_EXPIRATION)
}

/// Why `role_arn` cannot be injected, as "<the ARN, quoted> <what is wrong>", or `None`. IAM's length caps
/// come first: they hold whatever the pattern says, and no regex runs over a 10 KB annotation; then the
/// mistakes the pattern would only call invalid (quotes, white space); then `--role-arn-pattern`.
pub(crate) fn role_arn_problem(role_arn: &str, pattern: &regex::Regex) -> Option<String> {
    if let Err(too_long) = check_role_arn_len(role_arn) {
        return Some(format!("{} {too_long}", Abbreviated(role_arn)));
    }
    if let Some(defect) = role_arn_defect(role_arn) {
        return Some(format!("{} {defect}", Abbreviated(role_arn)));
    }
    (!pattern.is_match(role_arn)).then(|| format!("{role_arn:?} is not a valid role ARN"))
}

/// What is wrong with a role ARN that a pattern check would only call invalid: surrounding quotes (a YAML
/// value quoted twice) or white space (pasted with a line break or a space).
fn role_arn_defect(role_arn: &str) -> Option<&'static str> {
    let quotes = ['"', '\'', '`'];
    if role_arn.starts_with(quotes) || role_arn.ends_with(quotes) {
        Some("is wrapped in quotes (remove the inner pair)")
    } else if role_arn.contains(char::is_whitespace) {
        Some("contains white space")
    } else {
        None
    }
}

/// Go's `strconv.ParseBool`, which the reference webhook uses for this annotation.
fn parse_bool(raw: &str) -> Option<bool> {
    match raw {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn env_var(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// The annotation key `<prefix>/<suffix>`, written out only when a warning displays it.
#[derive(Clone, Copy)]
struct Key<'a>(&'a str, &'a str);

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

/// A value quoted in a warning, cut after [`Abbreviated::MAX_CHARS`] characters: kubectl prints warnings
/// whole, and the apiserver truncates long ones anyway.
struct Abbreviated<'a>(&'a str);

impl Abbreviated<'_> {
    const MAX_CHARS: usize = 64;
}

impl std::fmt::Display for Abbreviated<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.char_indices().nth(Self::MAX_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((end, _)) => write!(f, "{:?}...", &self.0[..end]),
        }
    }
}

/// A short description of a volume for the conflict warning.
fn describe_volume(volume: &Value) -> String {
    let source = volume
        .as_object()
        .and_then(|obj| obj.keys().find(|key| key.as_str() != "name"))
        .map_or("an empty", String::as_str);
    match source {
        "projected" => "a projected volume with other sources".to_owned(),
        "an empty" => "a volume without a source".to_owned(),
        other => format!("a {other} volume"),
    }
}

/// Which containers the pod's `include-containers` / `skip-containers` annotations select.
struct Selection<'a> {
    include: Option<Vec<&'a str>>,
    skip: Vec<&'a str>,
}

impl<'a> Selection<'a> {
    fn read(pod: &'a Pod<'_>, prefix: &str) -> Self {
        let names = |suffix| pod::prefixed_annotation(pod, prefix, suffix).map(split_names);
        Self {
            include: names(annotation::INCLUDE_CONTAINERS),
            skip: names(annotation::SKIP_CONTAINERS).unwrap_or_default(),
        }
    }

    fn selects(&self, name: &str) -> bool {
        self.include
            .as_ref()
            .is_none_or(|include| include.contains(&name))
            && !self.skip.contains(&name)
    }

    /// A typo in `include-containers` would silently disable injection: say so.
    fn warn_unknown(&self, pod: &Pod<'_>, prefix: &str, warnings: &mut Vec<Warning>) {
        let Some(include) = &self.include else { return };
        let known = |name: &&str| {
            [ContainerKind::Container, ContainerKind::InitContainer]
                .into_iter()
                .any(|kind| pod::containers(pod, kind).any(|c| c.name() == *name))
        };
        for name in include.iter().filter(|name| !known(name)) {
            warnings.push(Warning::new(
                WarningReason::UnknownContainer,
                format!("pod annotation {prefix}/include-containers names {name:?}, which is not a container of this pod"),
            ));
        }
    }
}

fn split_names(raw: &str) -> Vec<&str> {
    raw.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::AccountOptions;

    fn cfg() -> InjectionConfig {
        InjectionConfig::default()
    }

    const ARN: &str = "arn:aws:iam::123456789012:role/app";

    #[test]
    fn outcome_labels_are_unique_and_parse_back() {
        use strum::VariantArray as _;
        for outcome in Outcome::VARIANTS {
            assert_eq!(outcome.as_str().parse::<Outcome>().ok(), Some(*outcome));
        }
        let mut labels: Vec<_> = Outcome::VARIANTS.iter().map(|o| o.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Outcome::VARIANTS.len());
        assert_eq!(Outcome::AlreadyMutated.to_string(), "already-mutated");
    }

    #[test]
    fn basic_pod_gets_whole_arrays() {
        let pod = json!({"spec": {"containers": [{"name": "app", "image": "x"}]}});
        let m = mutate(&pod, Some(&ServiceAccountView::new(ARN)), None, &cfg());
        assert_eq!(m.outcome, Outcome::Mutated);
        assert!(m.warnings.is_empty());
        let ops = serde_json::to_value(&m.patch).unwrap();
        let paths: Vec<_> = ops
            .as_array()
            .unwrap()
            .iter()
            .map(|op| op["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "/spec/containers/0/env",
                "/spec/containers/0/volumeMounts",
                "/spec/volumes"
            ]
        );
        assert_eq!(
            ops[0]["value"][1]["value"],
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
        );
    }

    #[test]
    fn windows_token_path_is_derived_from_the_mount_path() {
        let pod = json!({"spec": {"os": {"name": "windows"}, "containers": [{"name": "app"}]}});
        let cfg = InjectionConfig {
            token_mount_path: "/run/irsa/".into(),
            ..cfg()
        };
        let m = mutate(&pod, Some(&ServiceAccountView::new(ARN)), None, &cfg);
        let ops = serde_json::to_value(&m.patch).unwrap();
        assert_eq!(ops[0]["value"][1]["value"], "C:\\run\\irsa\\token");
        assert_eq!(ops[1]["value"][0]["mountPath"], "/run/irsa");
    }

    #[test]
    fn role_arn_defects_are_named() {
        assert_eq!(role_arn_defect(ARN), None);
        assert_eq!(
            role_arn_defect(&format!("\"{ARN}\"")),
            Some("is wrapped in quotes (remove the inner pair)")
        );
        assert_eq!(
            role_arn_defect(&format!("'{ARN}'")),
            Some("is wrapped in quotes (remove the inner pair)")
        );
        // White space around it is trimmed before this check (and warned about): injected as before.
        let pod = json!({"spec": {"containers": [{"name": "app"}]}});
        let m = mutate(
            &pod,
            Some(&ServiceAccountView::new(format!(" {ARN}\n").as_str())),
            None,
            &cfg(),
        );
        assert_eq!(m.outcome, Outcome::Mutated);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert_eq!(m.warnings[0].reason, WarningReason::InvalidRoleArn);
        assert!(
            m.warnings[0].message.contains("trimmed"),
            "{:?}",
            m.warnings
        );
        assert_eq!(
            role_arn_defect("arn:aws:iam::123456789012:role/a b"),
            Some("contains white space")
        );
    }

    #[test]
    fn the_sts_endpoint_annotation_wins_over_the_flag() {
        let pod = json!({"spec": {"containers": [{"name": "app"}]}});
        let cfg = InjectionConfig {
            sts_endpoint_url: Some("https://flag.example".into()),
            ..cfg()
        };
        let endpoint = |sa: &ServiceAccountView| {
            let m = mutate(&pod, Some(sa), None, &cfg);
            let ops = serde_json::to_value(&m.patch).unwrap();
            ops[0]["value"]
                .as_array()
                .unwrap()
                .iter()
                .find(|var| var["name"] == env::ENDPOINT_URL_STS)
                .map(|var| var["value"].as_str().unwrap().to_owned())
        };
        let with_url = |url: &str| {
            ServiceAccountView::with_options(
                ARN,
                AccountOptions {
                    sts_endpoint_url: Some(url.into()),
                    ..AccountOptions::default()
                },
            )
        };
        assert_eq!(
            endpoint(&ServiceAccountView::new(ARN)).as_deref(),
            Some("https://flag.example")
        );
        assert_eq!(
            endpoint(&with_url(" http://minio:9000 ")).as_deref(),
            Some("http://minio:9000")
        );
        assert_eq!(
            endpoint(&with_url("")).as_deref(),
            Some("https://flag.example")
        );
        assert_eq!(endpoint(&with_url("minio:9000")), None);
    }

    #[test]
    fn expiration_precedence_and_fallback() {
        let mut w = Vec::new();
        let key = Key("eks.amazonaws.com", annotation::TOKEN_EXPIRATION);
        assert_eq!(
            resolve_expiration(
                &[("pod", Some("3600")), ("sa", Some("7200"))],
                key,
                86400,
                600,
                &mut w
            ),
            3600
        );
        assert_eq!(
            resolve_expiration(
                &[("pod", None), ("sa", Some("7200"))],
                key,
                86400,
                600,
                &mut w
            ),
            7200
        );
        assert_eq!(
            resolve_expiration(&[("pod", None), ("sa", None)], key, 4000, 600, &mut w),
            4000
        );
        assert!(w.is_empty());
        assert_eq!(
            resolve_expiration(
                &[("pod", Some("1h")), ("sa", Some("7200"))],
                key,
                86400,
                600,
                &mut w
            ),
            7200
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].reason, WarningReason::TokenExpirationInvalid);
        assert_eq!(
            resolve_expiration(&[("pod", Some("-5"))], key, 86400, 600, &mut w),
            600
        );
        assert_eq!(w[1].reason, WarningReason::TokenExpirationClamped);
        // A raised floor clamps what the kubelet would have accepted.
        assert_eq!(
            resolve_expiration(&[("pod", Some("900"))], key, 86400, 3600, &mut w),
            3600
        );
        assert_eq!(w[2].reason, WarningReason::TokenExpirationClamped);
        assert!(
            w[2].message.contains("outside 3600..86400"),
            "{}",
            w[2].message
        );
    }

    #[test]
    fn parse_bool_is_go_compatible() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn skip_label_uses_the_configured_prefix() {
        let pod = json!({"metadata": {"labels": {"irsa.example.com/skip-pod-identity-webhook": "true"}},
                         "spec": {"containers": [{"name": "app"}]}});
        let sa = ServiceAccountView::new(ARN);
        assert_eq!(
            mutate(&pod, Some(&sa), None, &cfg()).outcome,
            Outcome::Mutated
        );
        let custom = InjectionConfig {
            annotation_prefix: "irsa.example.com".into(),
            ..cfg()
        };
        assert_eq!(
            mutate(&pod, Some(&sa), None, &custom).outcome,
            Outcome::Skipped
        );
    }

    #[test]
    fn role_arns_beyond_iam_caps_are_refused_whatever_the_pattern() {
        let anything = InjectionConfig {
            role_arn_pattern: crate::config::compile_role_arn_pattern(".*").unwrap(),
            ..cfg()
        };
        let pod = json!({"spec": {"containers": [{"name": "app"}]}});
        let long_path = format!("arn:aws:iam::123456789012:role/{}/app", "p".repeat(10_240));
        let m = mutate(
            &pod,
            Some(&ServiceAccountView::new(long_path.as_str())),
            None,
            &anything,
        );
        assert_eq!((m.outcome, m.patch.len()), (Outcome::InvalidRoleArn, 0));
        assert_eq!(m.warnings[0].reason, WarningReason::InvalidRoleArn);
        // The warning quotes the start of the ARN, not 10 KB of it.
        assert!(
            m.warnings[0].message.len() < 300,
            "{}",
            m.warnings[0].message
        );
        assert!(
            m.warnings[0].message.contains("2048"),
            "{}",
            m.warnings[0].message
        );
    }

    #[test]
    fn malformed_container_lists_are_warned_about() {
        let sa = ServiceAccountView::new(ARN);
        let pod = json!({"spec": {"containers": "app"}});
        let m = mutate(&pod, Some(&sa), None, &cfg());
        assert_eq!((m.outcome, m.patch.len()), (Outcome::Skipped, 0));
        assert_eq!(m.warnings.len(), 1);
        assert_eq!(m.warnings[0].reason, WarningReason::MalformedPod);
        // A malformed init container list leaves the containers injectable.
        let pod = json!({"spec": {"initContainers": {}, "containers": [{"name": "app"}]}});
        let m = mutate(&pod, Some(&sa), None, &cfg());
        assert_eq!(m.outcome, Outcome::Mutated);
        assert_eq!(
            m.warnings[0].message,
            "spec.initContainers is not an array; its containers were left alone"
        );
    }

    #[test]
    fn malformed_fields_are_left_alone() {
        let sa = ServiceAccountView::new(ARN);
        let pod = json!({"spec": {"volumes": {}, "containers": [{"name": "app"}]}});
        let m = mutate(&pod, Some(&sa), None, &cfg());
        assert_eq!((m.outcome, m.patch.len()), (Outcome::Skipped, 0));
        assert_eq!(m.warnings[0].reason, WarningReason::MalformedPod);
        let pod = json!({"spec": {"containers": [{"name": "a", "env": "x"}, {"name": "b"}]}});
        let m = mutate(&pod, Some(&sa), None, &cfg());
        assert_eq!(m.outcome, Outcome::Mutated);
        assert_eq!(m.warnings[0].reason, WarningReason::MalformedPod);
        assert!(
            m.patch
                .iter()
                .all(|op| !op.path().as_str().starts_with("/spec/containers/0/"))
        );
    }
}
