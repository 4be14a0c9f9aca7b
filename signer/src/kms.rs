//! Signing keys in AWS KMS: the private key never exists outside KMS; the signer asks `kms:Sign` for each
//! token and publishes the public half `kms:GetPublicKey` returns.
//!
//! A key set is every enabled asymmetric `SIGN_VERIFY` key tagged [`SET_TAG`]`=<name>` in the client's account
//! and region. As for key files, the public half goes through `irsa_issuer::keys`, so the sizes and curves
//! accepted and the key ID are exactly the issuer's: what KMS signs with is what the issuer publishes.
//!
//! The pure parts (the key-spec table, [`der_ecdsa_to_jose`], the naming of AWS errors) sit apart from the
//! [`KmsKeySet`] calls that wrap them. The client is built by the caller, usually
//! `aws_sdk_kms::Client::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)`, so credentials,
//! region and endpoint (`AWS_ENDPOINT_URL_KMS`) follow the standard chain.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    KeyMetadata, KeySpec, KeyState, KeyUsageType, MessageType, SigningAlgorithmSpec, Tag,
};
use der::Decode as _;
use der::asn1::{SequenceOf, UintRef};
use irsa_issuer::keys::{Algorithm, PublicKey, kid_of_spki_der};

use crate::jwt;

/// The tag whose value names the key set a KMS key belongs to.
pub const SET_TAG: &str = "irsa-signer-key-set";

/// The longest message `kms:Sign` takes with `MessageType RAW` (a token's signing input is far shorter).
pub const MAX_RAW_MESSAGE: usize = 4096;

/// The shortest deletion window KMS allows: a retired key can still be recovered for this long.
pub const RETIRE_WINDOW_DAYS: i32 = 7;

/// The longest tag value KMS accepts.
const MAX_TAG_VALUE: usize = 256;

/// Why a KMS key or a KMS call cannot be used. Each variant names the key (or the key set) it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// The caller lacks a KMS permission (`AccessDeniedException`).
    #[error(
        "{subject}: access denied ({code}): the caller needs {permission}; AWS said: {message}"
    )]
    AccessDenied {
        /// `KMS key <id>` or `KMS key set <name>`.
        subject: String,
        /// The permission the call needs, e.g. `kms:Sign`.
        permission: &'static str,
        /// The KMS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// A KMS call failed for another reason (key disabled or deleted meanwhile, throttled, unreachable...).
    #[error("{subject}: {action} failed ({code}): {message}")]
    Call {
        /// `KMS key <id>` or `KMS key set <name>`.
        subject: String,
        /// The call, e.g. `kms:Sign`.
        action: &'static str,
        /// The KMS error code, or `no error code` when the request never got an answer.
        code: String,
        /// AWS's message, or the SDK's error with its causes.
        message: String,
    },
    /// The key is in the set but cannot sign tokens the issuer publishes and STS accepts.
    #[error("KMS key {key}: cannot sign service-account tokens: {reason}")]
    Unusable {
        /// The key ID.
        key: String,
        /// Why.
        reason: String,
    },
    /// KMS returned an ECDSA signature that is not a well-formed DER signature for the key's curve.
    #[error("KMS key {key}: kms:Sign returned a malformed signature: {source}")]
    BadSignature {
        /// The key ID.
        key: String,
        /// What is wrong with it.
        #[source]
        source: SignatureError,
    },
    /// The message is longer than `kms:Sign` takes in one RAW call.
    #[error(
        "KMS key {key}: the signing input is {len} bytes; kms:Sign takes at most {MAX_RAW_MESSAGE}"
    )]
    MessageTooLong {
        /// The key ID.
        key: String,
        /// The message length.
        len: usize,
    },
    /// `retire` was given a key of another set.
    #[error("KMS key {key} belongs to key set {key_set}, not {set}: not retired")]
    NotInSet {
        /// The key ID.
        key: String,
        /// The key's set.
        key_set: String,
        /// The set asked to retire it.
        set: String,
    },
    /// The set name cannot be a KMS tag value.
    #[error("KMS key set name {name:?}: {reason}")]
    InvalidSetName {
        /// The name given.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

/// Why a DER ECDSA signature cannot become a JOSE `r||s`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not a DER `SEQUENCE { r INTEGER, s INTEGER }` (bad tag or length, negative or non-minimal integer,
    /// trailing bytes, another number of integers).
    #[error("not a DER ECDSA signature: {0}")]
    Malformed(String),
    /// `r` or `s` is wider than the curve's field.
    #[error("{which} is {len} bytes long, more than the curve's {field_bytes}")]
    TooLong {
        /// `r` or `s`.
        which: &'static str,
        /// Its length without leading zeros.
        len: usize,
        /// The field width.
        field_bytes: usize,
    },
    /// `r` or `s` is zero, which no valid signature has.
    #[error("{0} is zero")]
    Zero(&'static str),
}

/// Converts an ECDSA signature from DER (`SEQUENCE { r INTEGER, s INTEGER }`, what KMS returns) to the JOSE
/// form JWS wants: `r` and `s` as unsigned big-endian numbers, each left-padded to `field_bytes` (32 for
/// P-256, 48 for P-384, 66 for P-521). Never panics: any malformed input is an error.
pub fn der_ecdsa_to_jose(der: &[u8], field_bytes: usize) -> Result<Vec<u8>, SignatureError> {
    let sequence = SequenceOf::<UintRef<'_>, 2>::from_der(der)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let mut jose = Vec::with_capacity(2 * field_bytes);
    let mut count = 0;
    for (which, integer) in ["r", "s"].into_iter().zip(sequence.iter()) {
        // UintRef has the sign byte and leading zeros stripped already.
        let bytes = integer.as_bytes();
        if bytes.iter().all(|b| *b == 0) {
            return Err(SignatureError::Zero(which));
        }
        if bytes.len() > field_bytes {
            return Err(SignatureError::TooLong {
                which,
                len: bytes.len(),
                field_bytes,
            });
        }
        jose.resize(jose.len() + field_bytes - bytes.len(), 0);
        jose.extend_from_slice(bytes);
        count += 1;
    }
    if count != 2 {
        return Err(SignatureError::Malformed(format!(
            "{count} integer(s), expected r and s"
        )));
    }
    Ok(jose)
}

/// A KMS key spec that can sign service-account tokens, with the JWS and KMS algorithms it signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KmsKeySpec {
    /// `RSA_2048`: RS256 (`RSASSA_PKCS1_V1_5_SHA_256`).
    Rsa2048,
    /// `RSA_3072`: RS256.
    Rsa3072,
    /// `RSA_4096`: RS256.
    Rsa4096,
    /// `ECC_NIST_P256`: ES256 (`ECDSA_SHA_256`).
    EccNistP256,
    /// `ECC_NIST_P384`: ES384 (`ECDSA_SHA_384`).
    EccNistP384,
    /// `ECC_NIST_P521`: ES512 (`ECDSA_SHA_512`).
    EccNistP521,
}

const SPECS: [KmsKeySpec; 6] = [
    KmsKeySpec::Rsa2048,
    KmsKeySpec::Rsa3072,
    KmsKeySpec::Rsa4096,
    KmsKeySpec::EccNistP256,
    KmsKeySpec::EccNistP384,
    KmsKeySpec::EccNistP521,
];

impl KmsKeySpec {
    /// KMS's name, e.g. `RSA_2048`.
    pub fn as_str(self) -> &'static str {
        match self {
            KmsKeySpec::Rsa2048 => "RSA_2048",
            KmsKeySpec::Rsa3072 => "RSA_3072",
            KmsKeySpec::Rsa4096 => "RSA_4096",
            KmsKeySpec::EccNistP256 => "ECC_NIST_P256",
            KmsKeySpec::EccNistP384 => "ECC_NIST_P384",
            KmsKeySpec::EccNistP521 => "ECC_NIST_P521",
        }
    }

    /// The JWS algorithm tokens signed with this key carry.
    pub fn algorithm(self) -> Algorithm {
        match self {
            KmsKeySpec::Rsa2048 | KmsKeySpec::Rsa3072 | KmsKeySpec::Rsa4096 => Algorithm::RS256,
            KmsKeySpec::EccNistP256 => Algorithm::ES256,
            KmsKeySpec::EccNistP384 => Algorithm::ES384,
            KmsKeySpec::EccNistP521 => Algorithm::ES512,
        }
    }

    fn signing_algorithm(self) -> SigningAlgorithmSpec {
        match self.algorithm() {
            Algorithm::RS256 => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
            Algorithm::ES256 => SigningAlgorithmSpec::EcdsaSha256,
            Algorithm::ES384 => SigningAlgorithmSpec::EcdsaSha384,
            Algorithm::ES512 => SigningAlgorithmSpec::EcdsaSha512,
        }
    }

    /// The width of r and s in a JOSE ECDSA signature; `None` for RSA.
    fn field_bytes(self) -> Option<usize> {
        match self {
            KmsKeySpec::EccNistP256 => Some(32),
            KmsKeySpec::EccNistP384 => Some(48),
            KmsKeySpec::EccNistP521 => Some(66),
            _ => None,
        }
    }
}

impl fmt::Display for KmsKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A KMS key spec that cannot sign tokens, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnsupportedKeySpec(String);

impl FromStr for KmsKeySpec {
    type Err = UnsupportedKeySpec;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Some(spec) = SPECS.into_iter().find(|s| s.as_str() == name) {
            return Ok(spec);
        }
        let why = match name {
            "ECC_SECG_P256K1" => "secp256k1 is not a curve STS accepts (NIST P-256, P-384, P-521)",
            "SYMMETRIC_DEFAULT" => "a symmetric key cannot sign",
            n if n.starts_with("HMAC_") => "an HMAC key makes MACs, not signatures",
            _ => "not a key spec STS verifies",
        };
        Err(UnsupportedKeySpec(format!(
            "key spec {name}: {why}; use one of {}",
            SPECS.map(KmsKeySpec::as_str).join(", ")
        )))
    }
}

/// Checks that `name` can be the value of the [`SET_TAG`] tag.
fn check_set_name(name: &str) -> Result<(), KmsError> {
    let invalid = |reason| {
        Err(KmsError::InvalidSetName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.chars().count() > MAX_TAG_VALUE {
        return invalid("longer than the 256 characters of a KMS tag value");
    }
    // KMS's tag-value pattern: letters, digits, white space and `_ . : / = + - @`.
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    {
        return invalid("a KMS tag value holds only letters, digits, spaces and _ . : / = + - @");
    }
    Ok(())
}

/// Names an SDK error: `AccessDenied*` says which permission is needed; anything else keeps the KMS code.
fn classify<E, R>(subject: String, action: &'static str, err: SdkError<E, R>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let message = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
    match code {
        Some(code) if code.starts_with("AccessDenied") => KmsError::AccessDenied {
            subject,
            permission: action,
            code,
            message,
        },
        code => KmsError::Call {
            subject,
            action,
            code: code.unwrap_or_else(|| "no error code".to_string()),
            message,
        },
    }
}

fn key_subject(key_id: &str) -> String {
    format!("KMS key {key_id}")
}

fn to_system_time(date: Option<&DateTime>) -> Option<SystemTime> {
    date.and_then(|d| SystemTime::try_from(*d).ok())
}

/// The spec of a key from its metadata, or why it cannot sign tokens: judged before its public key is
/// fetched, since KMS refuses `kms:GetPublicKey` on symmetric and HMAC keys with a less helpful error.
fn spec_of(meta: &KeyMetadata) -> Result<KmsKeySpec, KmsError> {
    let unusable = |reason: String| KmsError::Unusable {
        key: meta.key_id().to_string(),
        reason,
    };
    if meta.key_usage() != Some(&KeyUsageType::SignVerify) {
        let usage = meta.key_usage().map_or("unknown", |u| u.as_str());
        return Err(unusable(format!("key usage is {usage}, not SIGN_VERIFY")));
    }
    let spec_name = meta.key_spec().map_or("unknown", KeySpec::as_str);
    let spec = KmsKeySpec::from_str(spec_name).map_err(|e| unusable(e.to_string()))?;
    let wanted = spec.signing_algorithm();
    if !meta.signing_algorithms().is_empty() && !meta.signing_algorithms().contains(&wanted) {
        return Err(unusable(format!(
            "KMS does not offer {} for it",
            wanted.as_str()
        )));
    }
    Ok(spec)
}

/// One KMS key of a set: its public half, key ID and algorithm, and the means to sign with it.
#[derive(Clone)]
pub struct KmsKey {
    client: aws_sdk_kms::Client,
    set: String,
    key_id: String,
    arn: String,
    spec: KmsKeySpec,
    kid: String,
    spki_der: Vec<u8>,
    header: String,
    published_at: SystemTime,
}

impl fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKey")
            .field("key_id", &self.key_id)
            .field("spec", &self.spec)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KmsKey {
    /// Judges a key from its metadata, its spec (from [`spec_of`]) and the DER `kms:GetPublicKey` returned.
    fn new(
        client: aws_sdk_kms::Client,
        set: &str,
        meta: &KeyMetadata,
        spec: KmsKeySpec,
        spki_der: Vec<u8>,
    ) -> Result<KmsKey, KmsError> {
        let key_id = meta.key_id().to_string();
        let unusable = |reason: String| KmsError::Unusable {
            key: key_id.clone(),
            reason,
        };
        // The issuer's decoder judges the key and computes the kid from the DER Go would marshal.
        let public = PublicKey::from_spki_der(&spki_der).map_err(|r| unusable(r.to_string()))?;
        if public.algorithm() != spec.algorithm() {
            return Err(unusable(format!(
                "its public key is for {}, its key spec {spec} for {}",
                public.algorithm(),
                spec.algorithm()
            )));
        }
        // FetchKeys serves this DER under this kid: they must be one, as for key files.
        if kid_of_spki_der(&spki_der) != public.kid() {
            return Err(unusable(
                "kms:GetPublicKey returned a public key encoded unlike Go's x509.MarshalPKIXPublicKey"
                    .into(),
            ));
        }
        let published_at = to_system_time(meta.creation_date())
            .ok_or_else(|| unusable("KMS gave no creation date".into()))?;
        let kid = public.kid().to_string();
        Ok(KmsKey {
            client,
            set: set.to_string(),
            arn: meta.arn().unwrap_or(&key_id).to_string(),
            key_id,
            spec,
            header: jwt::header(spec.algorithm(), &kid),
            kid,
            spki_der,
            published_at,
        })
    }

    /// The KMS key ID (a UUID, or `mrk-...` for a multi-Region key).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key's ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The KMS key spec.
    pub fn spec(&self) -> KmsKeySpec {
        self.spec
    }

    /// The key ID tokens carry, as kube-apiserver and the issuer compute it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.spec.algorithm()
    }

    /// The public key as DER SubjectPublicKeyInfo (what `FetchKeys` returns).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The JWT header this key signs with, already base64url-encoded.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// When the key was created in KMS: the start of its publication.
    pub fn published_at(&self) -> SystemTime {
        self.published_at
    }

    /// Signs `message` (the JWS signing input) with `kms:Sign`: the JWS signature, PKCS#1 v1.5 SHA-256 for
    /// RSA, fixed-width `r||s` for ECDSA. At most [`MAX_RAW_MESSAGE`] bytes: KMS hashes the message itself.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KmsError> {
        // RAW, not DIGEST: KMS hashes, so what is signed is exactly the token's signing input.
        if message.len() > MAX_RAW_MESSAGE {
            return Err(KmsError::MessageTooLong {
                key: self.key_id.clone(),
                len: message.len(),
            });
        }
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(self.spec.signing_algorithm())
            .send()
            .await
            .map_err(|e| classify(key_subject(&self.key_id), "kms:Sign", e))?;
        let signature = out.signature().map(Blob::as_ref).unwrap_or_default();
        match self.spec.field_bytes() {
            Some(width) => {
                der_ecdsa_to_jose(signature, width).map_err(|source| KmsError::BadSignature {
                    key: self.key_id.clone(),
                    source,
                })
            }
            None if signature.is_empty() => Err(KmsError::BadSignature {
                key: self.key_id.clone(),
                source: SignatureError::Malformed("empty RSA signature".into()),
            }),
            None => Ok(signature.to_vec()),
        }
    }
}

impl crate::source::Key for KmsKey {
    fn kid(&self) -> &str {
        KmsKey::kid(self)
    }

    fn algorithm(&self) -> Algorithm {
        KmsKey::algorithm(self)
    }

    fn spki_der(&self) -> &[u8] {
        KmsKey::spki_der(self)
    }

    fn published_at(&self) -> SystemTime {
        KmsKey::published_at(self)
    }

    fn location(&self) -> String {
        key_subject(&self.key_id)
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> crate::source::SignFuture<'a> {
        Box::pin(async move {
            // KmsError's text keeps the KMS code and, when access is denied, the permission to grant.
            KmsKey::sign(self, message)
                .await
                .map_err(|e| crate::keys::SignFailed {
                    kid: self.kid.clone(),
                    reason: e.to_string(),
                })
        })
    }
}

/// What [`KmsKeySet::retire`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    /// The KMS key ID.
    pub key_id: String,
    /// The token key ID it published.
    pub kid: String,
    /// When KMS will delete it (until then `kms:CancelKeyDeletion` brings it back, disabled).
    pub deletion_date: Option<SystemTime>,
}

/// The keys of one set in KMS: those tagged [`SET_TAG`]`=<name>` in the client's account and region.
#[derive(Debug, Clone)]
pub struct KmsKeySet {
    client: aws_sdk_kms::Client,
    name: String,
}

impl KmsKeySet {
    /// The set `name` through `client`. The name must be a valid KMS tag value.
    pub fn new(client: aws_sdk_kms::Client, name: &str) -> Result<KmsKeySet, KmsError> {
        check_set_name(name)?;
        Ok(KmsKeySet {
            client,
            name: name.to_string(),
        })
    }

    /// The set's name (the value of its [`SET_TAG`] tags).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn subject(&self) -> String {
        format!("KMS key set {}", self.name)
    }

    /// Every enabled key of the set, oldest first. Needs `kms:ListKeys`, and on each key
    /// `kms:ListResourceTags`, then on the set's keys `kms:DescribeKey` and `kms:GetPublicKey`. Keys that are
    /// disabled, pending deletion or otherwise not enabled are skipped; a key of the set that cannot sign
    /// tokens (symmetric, HMAC, secp256k1...) is an error naming it, not a silent gap in the JWKS. So is a key
    /// whose tags cannot be read (it might be in the set): grant `kms:ListResourceTags` on `*`.
    pub async fn list(&self) -> Result<Vec<KmsKey>, KmsError> {
        let entries = self
            .client
            .list_keys()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(self.subject(), "kms:ListKeys", e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let Some(key_id) = entry.key_id() else {
                continue;
            };
            if !self.is_tagged(key_id).await? {
                continue;
            }
            let meta = self.describe(key_id).await?;
            if meta.key_state() != Some(&KeyState::Enabled) {
                tracing::debug!(
                    key = key_id,
                    state = meta.key_state().map_or("unknown", |s| s.as_str()),
                    "KMS key of the set skipped: not enabled"
                );
                continue;
            }
            keys.push(self.key_of(&meta).await?);
        }
        keys.sort_by(|a, b| (a.published_at, &a.key_id).cmp(&(b.published_at, &b.key_id)));
        Ok(keys)
    }

    /// Creates a key of the set with `kms:CreateKey` (and `kms:TagResource` for its tag) and reads its public
    /// key. The new key is in the set at once: publish it for the pre-publication period before it signs.
    pub async fn create(&self, spec: KmsKeySpec) -> Result<KmsKey, KmsError> {
        let tag = Tag::builder()
            .tag_key(SET_TAG)
            .tag_value(&self.name)
            .build()
            .map_err(|e| KmsError::Call {
                subject: self.subject(),
                action: "kms:CreateKey",
                code: "no error code".into(),
                message: e.to_string(),
            })?;
        let out = self
            .client
            .create_key()
            .key_spec(KeySpec::from(spec.as_str()))
            .key_usage(KeyUsageType::SignVerify)
            .tags(tag)
            .description(format!(
                "irsa: service-account token signing key of key set {}",
                self.name
            ))
            .send()
            .await
            .map_err(|e| classify(self.subject(), "kms:CreateKey", e))?;
        let meta = out.key_metadata().ok_or_else(|| KmsError::Call {
            subject: self.subject(),
            action: "kms:CreateKey",
            code: "no error code".into(),
            message: "KMS returned no key metadata".into(),
        })?;
        self.key_of(meta).await
    }

    /// Retires `key` with `kms:ScheduleKeyDeletion` and the shortest window KMS allows
    /// ([`RETIRE_WINDOW_DAYS`]): from now on it neither signs nor is listed. Call it only once every token
    /// the key signed has expired.
    pub async fn retire(&self, key: &KmsKey) -> Result<Retirement, KmsError> {
        if key.set != self.name {
            return Err(KmsError::NotInSet {
                key: key.key_id.clone(),
                key_set: key.set.clone(),
                set: self.name.clone(),
            });
        }
        let out = self
            .client
            .schedule_key_deletion()
            .key_id(&key.key_id)
            .pending_window_in_days(RETIRE_WINDOW_DAYS)
            .send()
            .await
            .map_err(|e| classify(key_subject(&key.key_id), "kms:ScheduleKeyDeletion", e))?;
        Ok(Retirement {
            key_id: key.key_id.clone(),
            kid: key.kid.clone(),
            deletion_date: to_system_time(out.deletion_date()),
        })
    }

    async fn is_tagged(&self, key_id: &str) -> Result<bool, KmsError> {
        let tags = self
            .client
            .list_resource_tags()
            .key_id(key_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(key_subject(key_id), "kms:ListResourceTags", e))?;
        Ok(tags
            .iter()
            .any(|t| t.tag_key() == SET_TAG && t.tag_value() == self.name))
    }

    async fn describe(&self, key_id: &str) -> Result<KeyMetadata, KmsError> {
        let out = self
            .client
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| classify(key_subject(key_id), "kms:DescribeKey", e))?;
        out.key_metadata().cloned().ok_or_else(|| KmsError::Call {
            subject: key_subject(key_id),
            action: "kms:DescribeKey",
            code: "no error code".into(),
            message: "KMS returned no key metadata".into(),
        })
    }

    async fn key_of(&self, meta: &KeyMetadata) -> Result<KmsKey, KmsError> {
        let spec = spec_of(meta)?;
        let key_id = meta.key_id();
        let out = self
            .client
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| classify(key_subject(key_id), "kms:GetPublicKey", e))?;
        let der = out
            .public_key()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        KmsKey::new(self.client.clone(), &self.name, meta, spec, der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kms::error::ErrorMetadata;
    use aws_sdk_kms::operation::sign::SignError;

    /// DER of SEQUENCE { INTEGER r, INTEGER s } from the integers' content octets (each under 128 bytes),
    /// with the long-form length P-521 signatures need when the body reaches 128 bytes.
    fn der(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut body = vec![0x02, r.len() as u8];
        body.extend_from_slice(r);
        body.extend_from_slice(&[0x02, s.len() as u8]);
        body.extend_from_slice(s);
        let mut out = vec![0x30];
        if body.len() >= 0x80 {
            out.push(0x81);
        }
        out.push(body.len() as u8);
        out.extend(body);
        out
    }

    #[test]
    fn full_width_integers_with_a_sign_byte_lose_it() {
        let r = [&[0x00][..], &[0x80; 32]].concat();
        let s = [&[0x00][..], &[0xff; 32]].concat();
        let jose = der_ecdsa_to_jose(&der(&r, &s), 32).unwrap();
        assert_eq!(jose, [[0x80; 32], [0xff; 32]].concat());
    }

    #[test]
    fn short_integers_are_left_padded() {
        // r has 3 leading zero bytes in the fixed form (a 1 in 2^24 event that breaks naive converters).
        let r = [0x11; 29];
        let s = [0x01];
        let jose = der_ecdsa_to_jose(&der(&r, &s), 32).unwrap();
        assert_eq!(jose.len(), 64);
        assert_eq!(&jose[..3], &[0, 0, 0]);
        assert_eq!(&jose[3..32], &r);
        assert_eq!(&jose[32..63], &[0; 31]);
        assert_eq!(jose[63], 1);
    }

    #[test]
    fn p521_integers_pad_to_66_bytes() {
        let r = [&[0x01][..], &[0xaa; 65]].concat();
        let s = [0x7f; 60];
        let jose = der_ecdsa_to_jose(&der(&r, &s), 66).unwrap();
        assert_eq!(jose.len(), 132);
        assert_eq!(&jose[..66], &r[..]);
        assert_eq!(&jose[66..72], &[0; 6]);
        assert_eq!(&jose[72..], &s);
    }

    #[test]
    fn malformed_der_is_an_error_never_a_panic() {
        let good = der(&[0x01; 32], &[0x02; 32]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("trailing byte", [&good[..], &[0]].concat()),
            ("not a sequence", [&[0x31], &good[1..]].concat()),
            ("one integer", vec![0x30, 0x03, 0x02, 0x01, 0x01]),
            ("three integers", {
                let mut d = der(&[1], &[2]);
                d[1] += 3;
                d.extend_from_slice(&[0x02, 0x01, 0x03]);
                d
            }),
            ("negative r", der(&[0x80; 32], &[0x01])),
            ("non-minimal r", der(&[0x00, 0x01], &[0x01])),
            ("empty r", der(&[], &[0x01])),
            ("length past the end", vec![0x30, 0x7f, 0x02, 0x01, 0x01]),
            ("octet string for s", {
                let mut d = der(&[1], &[2]);
                d[5] = 0x04;
                d
            }),
        ];
        for (name, input) in cases {
            let got = der_ecdsa_to_jose(&input, 32);
            assert!(
                matches!(got, Err(SignatureError::Malformed(_))),
                "{name}: {got:?}"
            );
        }
    }

    #[test]
    fn integers_wider_than_the_field_or_zero_are_refused() {
        assert_eq!(
            der_ecdsa_to_jose(&der(&[0x01; 33], &[0x01]), 32),
            Err(SignatureError::TooLong {
                which: "r",
                len: 33,
                field_bytes: 32
            })
        );
        assert_eq!(
            der_ecdsa_to_jose(&der(&[0x01], &[0x01; 49]), 48),
            Err(SignatureError::TooLong {
                which: "s",
                len: 49,
                field_bytes: 48
            })
        );
        assert_eq!(
            der_ecdsa_to_jose(&der(&[0x00], &[0x01]), 32),
            Err(SignatureError::Zero("r"))
        );
        assert_eq!(
            der_ecdsa_to_jose(&der(&[0x01], &[0x00]), 32),
            Err(SignatureError::Zero("s"))
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap sweep of short inputs around the valid shape.
        let good = der(&[0x01; 32], &[0x02; 32]);
        for i in 0..good.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut d = good.clone();
                d[i] = b;
                let _ = der_ecdsa_to_jose(&d, 32);
            }
        }
    }

    #[test]
    fn key_specs_map_to_the_algorithms_sts_accepts() {
        for (name, alg, kms) in [
            (
                "RSA_2048",
                Algorithm::RS256,
                SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
            ),
            (
                "RSA_4096",
                Algorithm::RS256,
                SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
            ),
            (
                "ECC_NIST_P256",
                Algorithm::ES256,
                SigningAlgorithmSpec::EcdsaSha256,
            ),
            (
                "ECC_NIST_P384",
                Algorithm::ES384,
                SigningAlgorithmSpec::EcdsaSha384,
            ),
            (
                "ECC_NIST_P521",
                Algorithm::ES512,
                SigningAlgorithmSpec::EcdsaSha512,
            ),
        ] {
            let spec: KmsKeySpec = name.parse().unwrap();
            assert_eq!(spec.as_str(), name);
            assert_eq!(spec.algorithm(), alg, "{name}");
            assert_eq!(spec.signing_algorithm(), kms, "{name}");
            // The SDK knows every name this module sends to CreateKey.
            #[allow(deprecated)]
            let unknown = matches!(KeySpec::from(name), KeySpec::Unknown(_));
            assert!(!unknown, "{name}");
        }
        for (name, why) in [
            ("ECC_SECG_P256K1", "secp256k1"),
            ("SYMMETRIC_DEFAULT", "symmetric"),
            ("HMAC_256", "HMAC"),
            ("SM2", "not a key spec STS verifies"),
            ("ML_DSA_65", "not a key spec STS verifies"),
        ] {
            let err = name.parse::<KmsKeySpec>().unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(why), "{err}");
            assert!(err.contains("RSA_2048, RSA_3072"), "{err}");
        }
    }

    #[test]
    fn set_names_are_kms_tag_values() {
        for ok in [
            "prod",
            "cluster-1.example.com",
            "a b_c:d/e=f+g@h",
            &"x".repeat(256),
        ] {
            check_set_name(ok).unwrap();
        }
        for bad in ["", &"x".repeat(257), "a,b", "quote\"", "semi;colon"] {
            let err = check_set_name(bad).unwrap_err();
            assert!(
                matches!(err, KmsError::InvalidSetName { .. }),
                "{bad}: {err}"
            );
        }
    }

    fn metadata(usage: KeyUsageType, spec: KeySpec, algs: &[SigningAlgorithmSpec]) -> KeyMetadata {
        algs.iter()
            .fold(KeyMetadata::builder(), |b, a| {
                b.signing_algorithms(a.clone())
            })
            .key_id("1234abcd")
            .key_usage(usage)
            .key_spec(spec)
            .build()
            .unwrap()
    }

    #[test]
    fn key_metadata_is_judged_before_the_public_key_is_fetched() {
        use SigningAlgorithmSpec as S;
        let ok = metadata(
            KeyUsageType::SignVerify,
            KeySpec::Rsa3072,
            &[S::RsassaPkcs1V15Sha256],
        );
        assert_eq!(spec_of(&ok).unwrap(), KmsKeySpec::Rsa3072);
        // KMS lists no algorithms: the spec decides.
        let ok = metadata(KeyUsageType::SignVerify, KeySpec::EccNistP384, &[]);
        assert_eq!(spec_of(&ok).unwrap(), KmsKeySpec::EccNistP384);
        for (meta, why) in [
            (
                metadata(KeyUsageType::EncryptDecrypt, KeySpec::SymmetricDefault, &[]),
                "key usage is ENCRYPT_DECRYPT, not SIGN_VERIFY",
            ),
            (
                metadata(KeyUsageType::GenerateVerifyMac, KeySpec::Hmac256, &[]),
                "key usage is GENERATE_VERIFY_MAC, not SIGN_VERIFY",
            ),
            (
                metadata(
                    KeyUsageType::SignVerify,
                    KeySpec::EccSecgP256K1,
                    &[S::EcdsaSha256],
                ),
                "secp256k1",
            ),
            (
                metadata(
                    KeyUsageType::SignVerify,
                    KeySpec::MlDsa65,
                    &[S::MlDsaShake256],
                ),
                "not a key spec STS verifies",
            ),
            (
                metadata(
                    KeyUsageType::SignVerify,
                    KeySpec::Rsa2048,
                    &[S::RsassaPssSha256],
                ),
                "KMS does not offer RSASSA_PKCS1_V1_5_SHA_256 for it",
            ),
        ] {
            let text = spec_of(&meta).unwrap_err().to_string();
            assert!(text.starts_with("KMS key 1234abcd: cannot sign"), "{text}");
            assert!(text.contains(why), "{text}");
        }
    }

    fn service_error(code: &str) -> SdkError<SignError, ()> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message(format!("{code} happened"))
            .build();
        SdkError::service_error(SignError::generic(meta), ())
    }

    #[test]
    fn errors_name_the_key_the_code_and_the_permission() {
        let e = classify(
            key_subject("1234"),
            "kms:Sign",
            service_error("AccessDeniedException"),
        );
        assert_eq!(
            e.to_string(),
            "KMS key 1234: access denied (AccessDeniedException): the caller needs kms:Sign; AWS said: AccessDeniedException happened"
        );
        let e = classify(
            key_subject("1234"),
            "kms:Sign",
            service_error("DisabledException"),
        );
        assert_eq!(
            e.to_string(),
            "KMS key 1234: kms:Sign failed (DisabledException): DisabledException happened"
        );
        let e = classify::<SignError, ()>(
            "KMS key set prod".into(),
            "kms:ListKeys",
            SdkError::timeout_error("read timed out"),
        );
        let text = e.to_string();
        assert!(
            text.starts_with("KMS key set prod: kms:ListKeys failed (no error code): "),
            "{text}"
        );
        assert!(text.contains("read timed out"), "{text}");
    }
}
