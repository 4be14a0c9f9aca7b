//! What the signer needs of a key, whichever source holds it (a PEM file, a KMS key): its public half, its
//! publication time (which [`crate::rotation`] turns into a state) and a signature, possibly computed far
//! away, hence asynchronous; and [`Source`], the two places keys come from, read and added to alike.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use irsa_issuer::keys::Algorithm;

use crate::key_file::{NewKeyAlgorithm, WriteError};
use crate::keys::{KeyFileError, SignFailed, SigningKey};
use crate::kms::{KmsError, KmsKeySet, KmsKeySpec, SET_TAG};

/// A signature being computed.
pub type SignFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, SignFailed>> + Send + 'a>>;

/// A key the signer can publish and sign with. `Debug` must show nothing secret.
pub trait Key: fmt::Debug + Send + Sync {
    /// The key ID, as kube-apiserver computes it from the public key.
    fn kid(&self) -> &str;
    /// The JWS algorithm.
    fn algorithm(&self) -> Algorithm;
    /// The public key as DER SubjectPublicKeyInfo (what `FetchKeys` returns).
    fn spki_der(&self) -> &[u8];
    /// When the key was published: the start of its rotation.
    fn published_at(&self) -> SystemTime;
    /// Where the key lives (a file, a KMS key), for logs and `irsa signer status`.
    fn location(&self) -> String;
    /// Signs `message` (the JWS signing input), returning the JWS signature bytes.
    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a>;
}

impl Key for SigningKey {
    fn kid(&self) -> &str {
        SigningKey::kid(self)
    }

    fn algorithm(&self) -> Algorithm {
        SigningKey::algorithm(self)
    }

    fn spki_der(&self) -> &[u8] {
        SigningKey::spki_der(self)
    }

    fn published_at(&self) -> SystemTime {
        SigningKey::published_at(self)
    }

    fn location(&self) -> String {
        self.file().display().to_string()
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        // In memory and fast (tens of microseconds): no need for a blocking thread.
        Box::pin(std::future::ready(SigningKey::sign(self, message)))
    }
}

/// Where the keys are: a directory of PEM files, or the keys of a set in AWS KMS. `serve`'s reload loop,
/// `rotate` and `status` read both the same way.
#[derive(Debug, Clone)]
pub enum Source {
    /// A directory of PEM private keys.
    Dir(PathBuf),
    /// The KMS keys tagged with the set's name.
    Kms(KmsKeySet),
}

/// Why a source gave no key set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The directory does not load.
    #[error(transparent)]
    Dir(#[from] KeyFileError),
    /// A KMS call failed or a key of the set cannot sign.
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// The set has no enabled key.
    #[error(
        "no KMS key tagged {SET_TAG}={set}; create one with irsa signer rotate --kms-key-set {set}"
    )]
    NoKmsKey {
        /// The set's name.
        set: String,
    },
    /// A new key could not be written into the directory.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The blocking work on the directory did not finish.
    #[error("the key directory task failed: {0}")]
    Task(String),
}

impl SourceError {
    /// Whether the source holds no key at all (the automatic mode then creates the first one).
    pub fn is_empty(&self) -> bool {
        matches!(
            self,
            SourceError::Dir(KeyFileError::Empty { .. }) | SourceError::NoKmsKey { .. }
        )
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Dir(dir) => write!(f, "key directory {}", dir.display()),
            Source::Kms(set) => write!(f, "KMS key set {}", set.name()),
        }
    }
}

impl Source {
    /// Every key of the source, oldest first. The directory is read off the async threads.
    pub async fn load(&self) -> Result<Vec<Arc<dyn Key>>, SourceError> {
        match self {
            Source::Dir(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || crate::reload::load_dir(&dir))
                    .await
                    .map_err(|e| SourceError::Task(e.to_string()))?
                    .map_err(SourceError::from)
            }
            Source::Kms(set) => {
                let keys = set.list().await?;
                if keys.is_empty() {
                    return Err(SourceError::NoKmsKey {
                        set: set.name().to_string(),
                    });
                }
                Ok(keys
                    .into_iter()
                    .map(|k| Arc::new(k) as Arc<dyn Key>)
                    .collect())
            }
        }
    }

    /// Adds a new key (published from `now`), returning where it is, for logs.
    pub async fn create(
        &self,
        algorithm: NewKeyAlgorithm,
        now: SystemTime,
    ) -> Result<String, SourceError> {
        match self {
            Source::Dir(dir) => {
                let dir = dir.clone();
                let path = tokio::task::spawn_blocking(move || {
                    crate::key_file::rotate(&dir, algorithm, now)
                })
                .await
                .map_err(|e| SourceError::Task(e.to_string()))??;
                Ok(path.display().to_string())
            }
            Source::Kms(set) => {
                let key = set.create(kms_spec(algorithm)).await?;
                Ok(format!("KMS key {} (kid {})", key.key_id(), key.kid()))
            }
        }
    }
}

/// The KMS key spec of a new key of `algorithm`.
pub fn kms_spec(algorithm: NewKeyAlgorithm) -> KmsKeySpec {
    match algorithm {
        NewKeyAlgorithm::Rs256 => KmsKeySpec::Rsa2048,
        NewKeyAlgorithm::Es256 => KmsKeySpec::EccNistP256,
    }
}
