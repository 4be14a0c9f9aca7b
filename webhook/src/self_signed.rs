//! `--self-signed`: the webhook makes its own CA and serving certificate, for clusters without cert-manager.
//!
//! At start [`ensure`] makes the Secret hold a usable pair (reusing it when it is still good), writes the
//! certificate and key where the server reads them, and patches the CA into the `caBundle` of every webhook of
//! its MutatingWebhookConfiguration. The CA key is kept in the Secret (`ca.key`) so that a renewed leaf is
//! signed by the same CA: the `caBundle` then stays the same, and a replica still serving the previous leaf
//! keeps being trusted while the other one renews. When a new CA has to be made, the `caBundle` keeps the
//! previous CA after the new one ([`merged_bundle`]), for the replica that has not adopted it yet.
//! [`keep_renewed`] repeats all of this while the webhook runs.
//!
//! Replicas starting together race on the Secret: the apiserver lets exactly one create (or update, by
//! resourceVersion) win; the losers get 409, re-read, and adopt the winner's material.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use irsa_serve::tls::TlsFiles;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

/// Settings of `--self-signed` mode (flattened into `irsa webhook serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct SelfSignedArgs {
    /// Create a CA and serving certificate at start, keep them in a Secret, patch the caBundle of the webhook
    /// configuration. The certificate and key are then read from `--self-signed-dir`.
    #[arg(long, env = "IRSA_SELF_SIGNED")]
    pub self_signed: bool,

    /// Name of the `kubernetes.io/tls` Secret that keeps the CA and the serving certificate.
    #[arg(
        long,
        env = "IRSA_SELF_SIGNED_SECRET",
        default_value = "irsa-webhook-tls",
        value_name = "NAME"
    )]
    pub self_signed_secret: String,

    /// Namespace of that Secret and of the webhook Service (default: `$POD_NAMESPACE`, else `irsa-system`).
    #[arg(long, env = "IRSA_SELF_SIGNED_NAMESPACE", default_value_t = default_namespace(), value_name = "NAMESPACE")]
    pub self_signed_namespace: String,

    /// Name of the webhook's Service: the certificate is valid for `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`
    /// and `<svc>.<ns>.svc.cluster.local`.
    #[arg(
        long,
        env = "IRSA_SERVICE_NAME",
        default_value = "irsa-webhook",
        value_name = "NAME"
    )]
    pub service_name: String,

    /// Name of the MutatingWebhookConfiguration whose webhooks get the CA as `clientConfig.caBundle`.
    #[arg(
        long,
        env = "IRSA_WEBHOOK_CONFIGURATION",
        default_value = "irsa",
        value_name = "NAME"
    )]
    pub webhook_configuration: String,

    /// More subject alternative names: IP addresses or DNS names (comma-separated in the env var).
    #[arg(
        long = "self-signed-extra-san",
        env = "IRSA_SELF_SIGNED_EXTRA_SANS",
        value_delimiter = ',',
        value_name = "SAN"
    )]
    pub extra_sans: Vec<String>,

    /// Directory where `tls.crt`, `tls.key` and `ca.crt` are written for the server to read. With a
    /// read-only root filesystem, mount an emptyDir there.
    #[arg(
        long = "self-signed-dir",
        env = "IRSA_SELF_SIGNED_DIR",
        default_value = "/tmp/irsa-tls",
        value_name = "DIR"
    )]
    pub dir: PathBuf,

    /// How often the running webhook re-checks the Secret and the caBundle (two GETs when nothing changed): it
    /// renews the serving certificate in its last 30 days (a pod may run for longer than the certificate's
    /// year), adopts what another replica made, and restores a caBundle that was edited.
    #[arg(
        long = "self-signed-check-interval",
        env = "IRSA_SELF_SIGNED_CHECK_INTERVAL",
        value_parser = irsa_serve::duration::parse,
        default_value = "1m",
        value_name = "DURATION"
    )]
    pub check_interval: Duration,
}

/// `$POD_NAMESPACE` (set from the downward API), else `irsa-system`.
pub fn default_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "irsa-system".to_string())
}

/// Why the self-signed certificate could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelfSignedError {
    /// A subject alternative name is neither an IP address nor a DNS name.
    #[error("invalid subject alternative name {0:?}: expected an IP address or a DNS name")]
    InvalidSan(String),
    /// rcgen could not generate a key or a certificate.
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A call to the apiserver failed (RBAC: see the manifests' self-signed overlay).
    #[error("cannot {action}: {source}")]
    Kube {
        /// What was attempted, naming the object.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Other writers kept changing the Secret while this replica tried to settle it.
    #[error("Secret {0} kept changing under concurrent updates; giving up")]
    Contended(String),
    /// The MutatingWebhookConfiguration does not exist (apply the manifests first).
    #[error("MutatingWebhookConfiguration {0} not found")]
    WebhookConfigurationNotFound(String),
    /// A file could not be written to the certificate directory.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Renew when less than this is left, so that a restart in the last month renews rather than expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
const CA_LIFETIME: Duration = Duration::from_secs(3650 * 24 * 3600);
const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Start validity a little in the past: the apiserver's clock may lag ours.
const BACKDATE: Duration = Duration::from_secs(3600);
const CA_COMMON_NAME: &str = "irsa webhook self-signed CA";
const FIELD_MANAGER: &str = "irsa-webhook-self-signed";
/// Attempts at settling the Secret (each loss of a race costs one) and at patching the configuration.
const ATTEMPTS: usize = 10;
const RETRY_DELAY: Duration = Duration::from_secs(3);

/// The Secret's keys.
const TLS_CRT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";

/// Ensures the Secret holds a valid CA and serving certificate (reused when present, valid for more than
/// [`RENEW_BEFORE`] and covering the SANs; otherwise renewed or created), writes `tls.crt` (leaf then CA),
/// `tls.key` and `ca.crt` into `args.dir`, then sets `clientConfig.caBundle` of every webhook of the
/// MutatingWebhookConfiguration (a JSON patch that touches nothing else). Returns the files to serve.
///
/// Idempotent and cheap when nothing changed (two GETs, no write), so it may be called again periodically.
pub async fn ensure(
    client: kube::Client,
    args: &SelfSignedArgs,
) -> Result<TlsFiles, SelfSignedError> {
    let sans = san_list(
        &args.service_name,
        &args.self_signed_namespace,
        &args.extra_sans,
    )?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &args.self_signed_namespace);
    let material = ensure_secret(
        &secrets,
        &args.self_signed_namespace,
        &args.self_signed_secret,
        &sans,
    )
    .await?;
    let files = write_files(&args.dir, &material).await?;
    let configurations: Api<MutatingWebhookConfiguration> = Api::all(client);
    patch_ca_bundle(
        &configurations,
        &args.webhook_configuration,
        &material.ca_crt,
    )
    .await?;
    Ok(files)
}

/// Calls [`ensure`] every `args.check_interval`, for as long as the webhook runs. The server re-reads the
/// files on the next connection after they change; the CA stays the same across renewals, so the `caBundle`
/// does too. A failed check is logged and retried at the next interval: the certificate in use has at least
/// [`RENEW_BEFORE`] left when renewal becomes due, so there is time for RBAC or the apiserver to be fixed.
pub async fn keep_renewed(client: kube::Client, args: SelfSignedArgs) {
    let mut ticks = tokio::time::interval(args.check_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate, and `ensure` just ran at start
    loop {
        ticks.tick().await;
        match ensure(client.clone(), &args).await {
            Ok(_) => tracing::debug!("self-signed: certificate checked"),
            Err(err) => tracing::warn!(
                error = %irsa_serve::logging::error_chain(&err),
                retry_in = ?args.check_interval,
                "self-signed: cannot check or renew the serving certificate"
            ),
        }
    }
}

/// The certificate's subject alternative names: the Service's four DNS forms, then the extra ones (trimmed,
/// without empties and duplicates).
pub fn san_list(
    service: &str,
    namespace: &str,
    extra: &[String],
) -> Result<Vec<String>, SelfSignedError> {
    let mut sans = vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ];
    for san in extra.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !sans.iter().any(|known| known == san) {
            sans.push(san.to_string());
        }
    }
    for san in &sans {
        // The verifier checks names as ServerNames: what it cannot parse could never match.
        if ServerName::try_from(san.as_str()).is_err() {
            return Err(SelfSignedError::InvalidSan(san.clone()));
        }
    }
    Ok(sans)
}

/// The PEM contents of the Secret. An absent or non-UTF-8 key reads as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Material {
    /// The CA certificate.
    pub ca_crt: String,
    /// The CA private key (PKCS#8), kept to sign the next leaf with the same CA.
    pub ca_key: String,
    /// The serving certificate followed by the CA certificate.
    pub tls_crt: String,
    /// The serving private key (PKCS#8).
    pub tls_key: String,
}

impl Material {
    /// Reads the four keys of a Secret.
    pub fn from_secret(secret: &Secret) -> Self {
        let read = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|data| data.get(key))
                .and_then(|value| String::from_utf8(value.0.clone()).ok())
                .unwrap_or_default()
        };
        Self {
            ca_crt: read(CA_CRT),
            ca_key: read(CA_KEY),
            tls_crt: read(TLS_CRT),
            tls_key: read(TLS_KEY),
        }
    }

    fn secret_data(&self) -> BTreeMap<String, ByteString> {
        [
            (TLS_CRT, &self.tls_crt),
            (TLS_KEY, &self.tls_key),
            (CA_CRT, &self.ca_crt),
            (CA_KEY, &self.ca_key),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), ByteString(value.as_bytes().to_vec())))
        .collect()
    }
}

/// What [`assess`] found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A key of the Secret is absent.
    Missing,
    /// A certificate or key does not parse.
    Unreadable,
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// The certificate expires within [`RENEW_BEFORE`] (or already has).
    Expiring,
    /// The serving certificate does not cover every wanted SAN.
    SanMismatch,
    /// The serving certificate does not chain to the CA.
    Untrusted,
}

/// What to do with the material found in the Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Good as it is.
    Reuse,
    /// The CA is good; issue a new serving certificate with it (the `caBundle` does not change).
    RenewLeaf(Reason),
    /// Start over with a new CA.
    NewCa(Reason),
}

/// Decides whether `material` can be served for `sans` at `now`. Pure: no I/O, no clock.
pub fn assess(material: &Material, sans: &[String], now: SystemTime) -> Verdict {
    let horizon = now + RENEW_BEFORE;
    // The CA: present, its key matches, far enough from expiry. A trust anchor's dates are not checked by
    // webpki, but the apiserver (Go) checks them: read notAfter ourselves.
    if material.ca_crt.is_empty() || material.ca_key.is_empty() {
        return Verdict::NewCa(Reason::Missing);
    }
    let Some(ca) = first_certificate(&material.ca_crt) else {
        return Verdict::NewCa(Reason::Unreadable);
    };
    let Some(ca_fields) = irsa_serve::certificate::fields(&ca) else {
        return Verdict::NewCa(Reason::Unreadable);
    };
    let Ok(ca_key) = KeyPair::from_pem(&material.ca_key) else {
        return Verdict::NewCa(Reason::Unreadable);
    };
    if ca_key.subject_public_key_info() != ca_fields.spki {
        return Verdict::NewCa(Reason::KeyMismatch);
    }
    if ca_fields.not_after <= horizon {
        return Verdict::NewCa(Reason::Expiring);
    }
    let mut roots = RootCertStore::empty();
    if roots.add(ca).is_err() {
        return Verdict::NewCa(Reason::Unreadable);
    }
    let Ok(verifier) = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build() else {
        return Verdict::NewCa(Reason::Unreadable);
    };

    // The serving certificate.
    if material.tls_crt.is_empty() || material.tls_key.is_empty() {
        return Verdict::RenewLeaf(Reason::Missing);
    }
    let Some(leaf) = first_certificate(&material.tls_crt) else {
        return Verdict::RenewLeaf(Reason::Unreadable);
    };
    let Some(leaf_fields) = irsa_serve::certificate::fields(&leaf) else {
        return Verdict::RenewLeaf(Reason::Unreadable);
    };
    let Ok(leaf_key) = KeyPair::from_pem(&material.tls_key) else {
        return Verdict::RenewLeaf(Reason::Unreadable);
    };
    if leaf_key.subject_public_key_info() != leaf_fields.spki {
        return Verdict::RenewLeaf(Reason::KeyMismatch);
    }
    // Verifying at the horizon checks the chain to the CA, the dates (still valid a month from now) and each
    // name, exactly as a TLS client would.
    let at = UnixTime::since_unix_epoch(since_epoch(horizon));
    for san in sans {
        let Ok(name) = ServerName::try_from(san.as_str()) else {
            return Verdict::RenewLeaf(Reason::SanMismatch);
        };
        if let Err(err) = verifier.verify_server_cert(&leaf, &[], &name, &[], at) {
            let reason = match err {
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => Reason::Expiring,
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => Reason::SanMismatch,
                _ => Reason::Untrusted,
            };
            return Verdict::RenewLeaf(reason);
        }
    }
    Verdict::Reuse
}

/// A new CA and a serving certificate signed by it.
pub fn new_material(sans: &[String], now: SystemTime) -> Result<Material, SelfSignedError> {
    let ca_key = KeyPair::generate()?;
    let mut params = ca_params();
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now - BACKDATE);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now + CA_LIFETIME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_crt = params.self_signed(&ca_key)?.pem();
    let ca_key = ca_key.serialize_pem();
    renew_leaf(ca_crt, ca_key, sans, now)
}

/// A new serving certificate signed by the given CA (whose key must match: see [`assess`]).
pub fn renew_leaf(
    ca_crt: String,
    ca_key: String,
    sans: &[String],
    now: SystemTime,
) -> Result<Material, SelfSignedError> {
    let signing_key = KeyPair::from_pem(&ca_key)?;
    // A leaf must not outlive its CA.
    let ca_not_after = first_certificate(&ca_crt)
        .as_ref()
        .and_then(|der| irsa_serve::certificate::fields(der))
        .map(|fields| fields.not_after)
        .ok_or(rcgen::Error::CouldNotParseCertificate)?;
    let issuer = Issuer::new(ca_params(), signing_key);

    let leaf_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        sans.get(2).or(sans.first()).cloned().unwrap_or_default(),
    );
    params.distinguished_name = name;
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now - BACKDATE);
    params.not_after =
        rcgen::date_time_ymd(1970, 1, 1) + since_epoch((now + LEAF_LIFETIME).min(ca_not_after));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&leaf_key, &issuer)?;
    Ok(Material {
        tls_crt: format!("{}{}", leaf.pem(), ca_crt),
        tls_key: leaf_key.serialize_pem(),
        ca_crt,
        ca_key,
    })
}

/// What the CA is named and may do; also rebuilds the issuer of a stored CA, whose subject must be this one.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// What to store after `material` was assessed: `None` when it is good as it is.
fn next_material(
    material: &Material,
    sans: &[String],
    now: SystemTime,
) -> Result<Option<(Material, Verdict)>, SelfSignedError> {
    let verdict = assess(material, sans, now);
    let next = match verdict {
        Verdict::Reuse => return Ok(None),
        Verdict::RenewLeaf(_) => {
            match renew_leaf(material.ca_crt.clone(), material.ca_key.clone(), sans, now) {
                // A CA we did not make (another subject) cannot be re-issued from: start over.
                Ok(renewed) if assess(&renewed, sans, now) == Verdict::Reuse => renewed,
                _ => new_material(sans, now)?,
            }
        }
        Verdict::NewCa(_) => new_material(sans, now)?,
    };
    Ok(Some((next, verdict)))
}

async fn ensure_secret(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
    sans: &[String],
) -> Result<Material, SelfSignedError> {
    let kube_err = |action: &str| {
        let action = format!("{action} Secret {namespace}/{name}");
        move |source| SelfSignedError::Kube { action, source }
    };
    for _ in 0..ATTEMPTS {
        let existing = secrets.get_opt(name).await.map_err(kube_err("get"))?;
        let now = SystemTime::now();
        match existing {
            None => {
                let material = new_material(sans, now)?;
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(namespace.to_string()),
                        labels: Some(BTreeMap::from([
                            ("app.kubernetes.io/name".to_string(), "irsa".to_string()),
                            (
                                "app.kubernetes.io/component".to_string(),
                                "webhook".to_string(),
                            ),
                            (
                                "app.kubernetes.io/managed-by".to_string(),
                                "irsa-webhook".to_string(),
                            ),
                        ])),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/tls".to_string()),
                    data: Some(material.secret_data()),
                    ..Secret::default()
                };
                match secrets.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(secret = %format!("{namespace}/{name}"), "self-signed: created a CA and serving certificate");
                        return Ok(material);
                    }
                    // Another replica created it first: re-read and use its material.
                    Err(kube::Error::Api(status))
                        if status.is_already_exists() || status.is_conflict() =>
                    {
                        tracing::debug!(
                            "self-signed: lost the race to create the Secret; re-reading"
                        );
                    }
                    Err(source) => return Err(kube_err("create")(source)),
                }
            }
            Some(mut secret) => {
                let current = Material::from_secret(&secret);
                let Some((next, verdict)) = next_material(&current, sans, now)? else {
                    // Debug: the periodic check lands here every interval.
                    tracing::debug!(secret = %format!("{namespace}/{name}"), "self-signed: the certificate in the Secret is good; reusing it");
                    return Ok(current);
                };
                // The metadata (resourceVersion included) is kept: a concurrent update makes this one fail.
                secret.data = Some(next.secret_data());
                match secrets.replace(name, &PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(secret = %format!("{namespace}/{name}"), ?verdict, "self-signed: renewed the certificate");
                        return Ok(next);
                    }
                    Err(kube::Error::Api(status)) if status.is_conflict() => {
                        tracing::debug!("self-signed: the Secret changed meanwhile; re-reading");
                    }
                    Err(source) => return Err(kube_err("update")(source)),
                }
            }
        }
    }
    Err(SelfSignedError::Contended(format!("{namespace}/{name}")))
}

/// Writes the files the server reads. Each file is replaced by a rename, so the server (which re-reads on
/// change) never sees half a file; the key goes first, and a moment of new-key-old-cert only makes the
/// server keep the previous pair for one more connection.
async fn write_files(dir: &Path, material: &Material) -> Result<TlsFiles, SelfSignedError> {
    let dir = dir.to_path_buf();
    let material = material.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|source| SelfSignedError::Write {
            path: dir.clone(),
            source,
        })?;
        let files = TlsFiles {
            cert: dir.join(TLS_CRT),
            key: dir.join(TLS_KEY),
        };
        write_atomically(&files.key, &material.tls_key, 0o600)?;
        write_atomically(&files.cert, &material.tls_crt, 0o644)?;
        write_atomically(&dir.join(CA_CRT), &material.ca_crt, 0o644)?;
        Ok(files)
    })
    .await
    .map_err(|join| SelfSignedError::Write {
        path: PathBuf::new(),
        source: std::io::Error::other(join),
    })?
}

fn write_atomically(path: &Path, contents: &str, mode: u32) -> Result<(), SelfSignedError> {
    use std::io::Write as _;
    let err = |source| SelfSignedError::Write {
        path: path.to_path_buf(),
        source,
    };
    // Unchanged (the periodic check, mostly): leave the file alone, so the server does not reload for nothing.
    if std::fs::read(path).is_ok_and(|current| current == contents.as_bytes()) {
        return Ok(());
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.tmp"));
    // A leftover from an interrupted run would keep its old mode: start from a fresh file.
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temporary).map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(err)
}

/// The JSON patch that sets `caBundle` on every webhook whose bundle is not [`merged_bundle`] of its own, each
/// guarded by a `test` of the webhook's name (the list may have been edited since it was read). Empty when all
/// are current.
pub fn ca_bundle_patch(
    configuration: &MutatingWebhookConfiguration,
    ca_pem: &str,
    now: SystemTime,
) -> serde_json::Value {
    let mut ops = Vec::new();
    for (i, webhook) in configuration.webhooks.iter().flatten().enumerate() {
        let existing = webhook.client_config.ca_bundle.as_ref();
        let bundle = ByteString(
            merged_bundle(existing.map_or(&[][..], |b| &b.0[..]), ca_pem, now).into_bytes(),
        );
        if existing == Some(&bundle) {
            continue;
        }
        let encoded = serde_json::to_value(&bundle).unwrap_or_default();
        ops.push(serde_json::json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook.name}));
        ops.push(serde_json::json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded}));
    }
    serde_json::Value::Array(ops)
}

/// The `caBundle` to set: `ca_pem` (the CA of the Secret), then the first other CA of the `existing` bundle
/// that is still valid at `now`. When a replica makes a new CA (the Secret was deleted, or the CA neared its
/// end), the other replica serves a certificate of the previous CA until its next check adopts the new one;
/// keeping the previous CA trusted meanwhile leaves no moment in which the apiserver cannot verify it. One
/// previous CA at most, and none once expired, so the bundle does not grow.
pub fn merged_bundle(existing: &[u8], ca_pem: &str, now: SystemTime) -> String {
    let current = first_certificate(ca_pem);
    let previous = CertificateDer::pem_slice_iter(existing)
        .filter_map(Result::ok)
        .find(|der| {
            Some(der) != current.as_ref()
                && irsa_serve::certificate::fields(der).is_some_and(|fields| fields.not_after > now)
        });
    let mut bundle = ca_pem.to_string();
    if let Some(der) = previous {
        if !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str(&certificate_pem(&der));
    }
    bundle
}

/// A DER certificate as PEM, 64 characters a line.
fn certificate_pem(der: &[u8]) -> String {
    let base64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

async fn patch_ca_bundle(
    configurations: &Api<MutatingWebhookConfiguration>,
    name: &str,
    ca_pem: &str,
) -> Result<(), SelfSignedError> {
    let kube_err = |action: &str, source| SelfSignedError::Kube {
        action: format!("{action} MutatingWebhookConfiguration {name}"),
        source,
    };
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    for attempt in 1..=ATTEMPTS {
        let last = attempt == ATTEMPTS;
        // Pods may start before `kubectl apply` has created the configuration: wait a little for it.
        let Some(configuration) = configurations
            .get_opt(name)
            .await
            .map_err(|source| kube_err("get", source))?
        else {
            if last {
                return Err(SelfSignedError::WebhookConfigurationNotFound(
                    name.to_string(),
                ));
            }
            tracing::info!(
                configuration = name,
                "self-signed: waiting for the MutatingWebhookConfiguration"
            );
            tokio::time::sleep(RETRY_DELAY).await;
            continue;
        };
        let ops = ca_bundle_patch(&configuration, ca_pem, SystemTime::now());
        if ops.as_array().is_none_or(Vec::is_empty) {
            if configuration.webhooks.as_ref().is_none_or(Vec::is_empty) {
                tracing::warn!(
                    configuration = name,
                    "self-signed: the MutatingWebhookConfiguration has no webhooks"
                );
            }
            return Ok(());
        }
        let patch: json_patch::Patch =
            serde_json::from_value(ops).expect("the operations built above are valid JSON patch");
        match configurations
            .patch(name, &params, &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {
                tracing::info!(configuration = name, "self-signed: caBundle patched");
                return Ok(());
            }
            // A failed `test` (the list changed), a conflict, a deletion: read again.
            Err(kube::Error::Api(status))
                if !last
                    && (status.is_conflict()
                        || status.is_invalid()
                        || status.is_not_found()
                        || status.code == 400
                        || status.code >= 500) =>
            {
                tracing::debug!(%status.message, "self-signed: caBundle patch refused; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(source) => return Err(kube_err("patch", source)),
        }
    }
    Err(SelfSignedError::WebhookConfigurationNotFound(
        name.to_string(),
    ))
}

/// Time since the epoch, for `rcgen::date_time_ymd(1970, 1, 1) + ...` (rcgen's time type is not ours to name).
fn since_epoch(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

fn first_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn sans() -> Vec<String> {
        san_list("irsa-webhook", "irsa-system", &["127.0.0.1".to_string()]).unwrap()
    }

    fn now() -> SystemTime {
        // A fixed instant keeps the tests independent of the clock: 2030-01-01T00:00:00Z.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000)
    }

    #[test]
    fn san_list_has_the_service_forms_then_the_extras() {
        let sans = san_list(
            "hook",
            "ns",
            &[
                " 127.0.0.1".into(),
                "".into(),
                "hook.ns".into(),
                "::1".into(),
                "x.example".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            sans,
            [
                "hook",
                "hook.ns",
                "hook.ns.svc",
                "hook.ns.svc.cluster.local",
                "127.0.0.1",
                "::1",
                "x.example"
            ]
        );
    }

    #[test]
    fn san_list_refuses_what_is_neither_a_name_nor_an_ip() {
        let err = san_list("hook", "ns", &["not a name".into()]).unwrap_err();
        assert!(matches!(err, SelfSignedError::InvalidSan(san) if san == "not a name"));
    }

    #[test]
    fn fresh_material_is_reused() {
        let material = new_material(&sans(), now()).unwrap();
        assert_eq!(assess(&material, &sans(), now()), Verdict::Reuse);
        // The served chain is the leaf then the CA.
        assert_eq!(
            CertificateDer::pem_slice_iter(material.tls_crt.as_bytes()).count(),
            2
        );
        assert!(material.tls_crt.ends_with(&material.ca_crt));
        // Still good eleven months later; renewed in the last thirty days.
        assert_eq!(
            assess(&material, &sans(), now() + 330 * DAY),
            Verdict::Reuse
        );
        assert_eq!(
            assess(&material, &sans(), now() + 340 * DAY),
            Verdict::RenewLeaf(Reason::Expiring)
        );
    }

    #[test]
    fn an_expired_leaf_is_renewed_with_the_same_ca() {
        let old = new_material(&sans(), now() - 400 * DAY).unwrap();
        assert_eq!(
            assess(&old, &sans(), now()),
            Verdict::RenewLeaf(Reason::Expiring)
        );
        let (renewed, verdict) = next_material(&old, &sans(), now()).unwrap().unwrap();
        assert_eq!(verdict, Verdict::RenewLeaf(Reason::Expiring));
        assert_eq!(renewed.ca_crt, old.ca_crt, "the caBundle must not change");
        assert_eq!(renewed.ca_key, old.ca_key);
        assert_ne!(renewed.tls_key, old.tls_key);
        assert_eq!(assess(&renewed, &sans(), now()), Verdict::Reuse);
        assert_eq!(next_material(&renewed, &sans(), now()).unwrap(), None);
    }

    #[test]
    fn a_san_mismatch_renews_the_leaf() {
        let material = new_material(&sans(), now()).unwrap();
        let other_service = san_list("other", "irsa-system", &[]).unwrap();
        assert_eq!(
            assess(&material, &other_service, now()),
            Verdict::RenewLeaf(Reason::SanMismatch)
        );
        let more = san_list("irsa-webhook", "irsa-system", &["10.0.0.7".into()]).unwrap();
        assert_eq!(
            assess(&material, &more, now()),
            Verdict::RenewLeaf(Reason::SanMismatch)
        );
        // Fewer names than the certificate has is fine.
        let fewer = san_list("irsa-webhook", "irsa-system", &[]).unwrap();
        assert_eq!(assess(&material, &fewer, now()), Verdict::Reuse);
    }

    #[test]
    fn a_ca_near_its_end_is_replaced() {
        let old = new_material(&sans(), now() - 3640 * DAY).unwrap();
        assert_eq!(
            assess(&old, &sans(), now()),
            Verdict::NewCa(Reason::Expiring)
        );
        let (next, _) = next_material(&old, &sans(), now()).unwrap().unwrap();
        assert_ne!(next.ca_crt, old.ca_crt);
        assert_eq!(assess(&next, &sans(), now()), Verdict::Reuse);
    }

    #[test]
    fn a_leaf_never_outlives_its_ca() {
        // The CA has 200 days left: the renewed leaf gets 200 days, not a year.
        let old = new_material(&sans(), now() - 3450 * DAY).unwrap();
        let renewed = renew_leaf(old.ca_crt.clone(), old.ca_key.clone(), &sans(), now()).unwrap();
        let leaf = first_certificate(&renewed.tls_crt).unwrap();
        let ca = first_certificate(&renewed.ca_crt).unwrap();
        assert_eq!(
            irsa_serve::certificate::fields(&leaf).unwrap().not_after,
            irsa_serve::certificate::fields(&ca).unwrap().not_after
        );
    }

    #[test]
    fn broken_or_mixed_material_is_not_reused() {
        let good = new_material(&sans(), now()).unwrap();
        let other = new_material(&sans(), now()).unwrap();
        assert_eq!(
            assess(&Material::default(), &sans(), now()),
            Verdict::NewCa(Reason::Missing)
        );
        let garbage = Material {
            ca_crt: "garbage".into(),
            ..good.clone()
        };
        assert_eq!(
            assess(&garbage, &sans(), now()),
            Verdict::NewCa(Reason::Unreadable)
        );
        let foreign_ca_key = Material {
            ca_key: other.ca_key.clone(),
            ..good.clone()
        };
        assert_eq!(
            assess(&foreign_ca_key, &sans(), now()),
            Verdict::NewCa(Reason::KeyMismatch)
        );
        let no_leaf = Material {
            tls_crt: String::new(),
            ..good.clone()
        };
        assert_eq!(
            assess(&no_leaf, &sans(), now()),
            Verdict::RenewLeaf(Reason::Missing)
        );
        let foreign_leaf_key = Material {
            tls_key: other.tls_key.clone(),
            ..good.clone()
        };
        assert_eq!(
            assess(&foreign_leaf_key, &sans(), now()),
            Verdict::RenewLeaf(Reason::KeyMismatch)
        );
        let leaf_of_another_ca = Material {
            tls_crt: other.tls_crt.clone(),
            tls_key: other.tls_key.clone(),
            ..good.clone()
        };
        assert_eq!(
            assess(&leaf_of_another_ca, &sans(), now()),
            Verdict::RenewLeaf(Reason::Untrusted)
        );
    }

    #[test]
    fn a_foreign_ca_is_replaced_rather_than_reused_as_issuer() {
        // A CA with another subject: a leaf issued "by" it would not chain, so start over.
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "someone else");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now() - DAY);
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(now() + 3000 * DAY);
        let foreign = Material {
            ca_crt: params.self_signed(&key).unwrap().pem(),
            ca_key: key.serialize_pem(),
            ..Material::default()
        };
        assert_eq!(
            assess(&foreign, &sans(), now()),
            Verdict::RenewLeaf(Reason::Missing)
        );
        let (next, _) = next_material(&foreign, &sans(), now()).unwrap().unwrap();
        assert_ne!(next.ca_crt, foreign.ca_crt);
        assert_eq!(assess(&next, &sans(), now()), Verdict::Reuse);
    }

    #[test]
    fn secret_round_trip() {
        let material = new_material(&sans(), now()).unwrap();
        let secret = Secret {
            data: Some(material.secret_data()),
            ..Secret::default()
        };
        assert_eq!(Material::from_secret(&secret), material);
        assert_eq!(
            secret.data.unwrap().keys().collect::<Vec<_>>(),
            ["ca.crt", "ca.key", "tls.crt", "tls.key"]
        );
    }

    #[test]
    fn the_patch_sets_only_stale_bundles_guarded_by_name() {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let configuration: MutatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "irsa"},
            "webhooks": [
                {"name": "a.irsa.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                 "clientConfig": {"service": {"name": "irsa-webhook", "namespace": "irsa-system"}}},
                {"name": "b.irsa.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                 "clientConfig": {"caBundle": ByteString(ca.as_bytes().to_vec())}}
            ]
        }))
        .unwrap();
        let patch = ca_bundle_patch(&configuration, ca, now());
        let encoded = serde_json::to_value(ByteString(ca.as_bytes().to_vec())).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                {"op": "test", "path": "/webhooks/0/name", "value": "a.irsa.dev"},
                {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": encoded}
            ])
        );
        serde_json::from_value::<json_patch::Patch>(patch).unwrap();
        assert_eq!(
            ca_bundle_patch(&configuration, "other", now()),
            serde_json::json!([
                {"op": "test", "path": "/webhooks/0/name", "value": "a.irsa.dev"},
                {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": serde_json::to_value(ByteString(b"other".to_vec())).unwrap()},
                {"op": "test", "path": "/webhooks/1/name", "value": "b.irsa.dev"},
                {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": serde_json::to_value(ByteString(b"other".to_vec())).unwrap()}
            ])
        );
    }

    #[test]
    fn the_bundle_keeps_one_previous_ca_while_it_is_valid() {
        let ders = |pem: &str| -> Vec<Vec<u8>> {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .map(|der| der.unwrap().to_vec())
                .collect()
        };
        let [first, second, third] = [(); 3].map(|()| new_material(&sans(), now()).unwrap().ca_crt);

        // A fresh configuration, and the steady state: the CA alone.
        assert_eq!(merged_bundle(b"", &first, now()), first);
        assert_eq!(merged_bundle(first.as_bytes(), &first, now()), first);

        // A new CA: the previous one stays trusted after it, until the other replica has adopted the new one.
        let both = merged_bundle(first.as_bytes(), &second, now());
        assert_eq!(ders(&both), [ders(&second), ders(&first)].concat());
        // That is the steady state from then on: no patch at every check.
        assert_eq!(merged_bundle(both.as_bytes(), &second, now()), both);

        // One previous CA at most: the bundle does not grow with each new CA.
        let next = merged_bundle(both.as_bytes(), &third, now());
        assert_eq!(ders(&next), [ders(&third), ders(&second)].concat());

        // A previous CA that has expired is dropped (this one ended a year ago).
        let expired = new_material(&sans(), now() - 11 * 365 * DAY)
            .unwrap()
            .ca_crt;
        assert_eq!(merged_bundle(expired.as_bytes(), &first, now()), first);
    }

    #[tokio::test]
    async fn files_are_written_with_a_private_key_mode() {
        let dir = tempfile::tempdir().unwrap();
        let material = new_material(&sans(), now()).unwrap();
        let files = write_files(&dir.path().join("tls"), &material)
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&files.cert).unwrap(),
            material.tls_crt
        );
        assert_eq!(
            std::fs::read_to_string(&files.key).unwrap(),
            material.tls_key
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "tls.key must not be readable by others");
        }
        // Rewriting replaces in place; the server's loader accepts the pair.
        write_files(&dir.path().join("tls"), &material)
            .await
            .unwrap();
        irsa_serve::tls::load(&files).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unchanged_files_are_left_alone_and_changed_ones_replaced() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let material = new_material(&sans(), now()).unwrap();
        let files = write_files(dir.path(), &material).await.unwrap();
        let inode = |path: &Path| std::fs::metadata(path).unwrap().ino();
        let (cert, key) = (inode(&files.cert), inode(&files.key));

        // The periodic check with nothing renewed: same files, so the server has nothing to reload.
        write_files(dir.path(), &material).await.unwrap();
        assert_eq!((inode(&files.cert), inode(&files.key)), (cert, key));

        let renewed = renew_leaf(
            material.ca_crt.clone(),
            material.ca_key.clone(),
            &sans(),
            now(),
        )
        .unwrap();
        write_files(dir.path(), &renewed).await.unwrap();
        assert_ne!(inode(&files.cert), cert);
        assert_ne!(inode(&files.key), key);
        assert_eq!(
            std::fs::read_to_string(&files.cert).unwrap(),
            renewed.tls_crt
        );
        // The CA is the same after a leaf renewal: its file is not rewritten.
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CA_CRT)).unwrap(),
            material.ca_crt
        );
    }
}
