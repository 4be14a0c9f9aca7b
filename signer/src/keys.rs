//! Signing keys: one private key per PEM file in a directory, each with its publication time (the instant
//! in a `key-<time>.pem` name, else the file's modification time). Which of them sign and which are published
//! is [`crate::rotation`]'s decision; [`KeySet::active`] is the newest key, for callers without a policy.
//!
//! The public half of each key goes through `irsa_issuer::keys`, so the sizes and curves accepted and the key
//! ID are exactly the issuer's (kube-apiserver's `keyIDFromPublicKey`): what this signer signs with is what
//! the issuer publishes. Private keys stay in memory inside [`SigningKey`], whose `Debug` shows none of it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use irsa_issuer::keys::{Algorithm, KeyError, kid_of_spki_der, parse_pem};

use crate::jwt;

const PRIVATE_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// Why a key file or the key directory cannot be used. Each variant names the file or directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The directory or a file could not be read.
    #[error("{path}: cannot read it: {source}")]
    Unreadable {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM section is broken.
    #[error("key file {path}: malformed PEM: {reason}")]
    MalformedPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no private key (a public key or certificate cannot sign).
    #[error(
        "key file {path}: no private key (expected one PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)"
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The file holds more than one private key: which one signs would be a guess.
    #[error("key file {path}: {count} private keys; put each key in a file of its own")]
    SeveralPrivateKeys {
        /// The file.
        path: PathBuf,
        /// How many.
        count: usize,
    },
    /// The private key is encrypted: the signer has no passphrase to open it with.
    #[error("key file {path}: the private key is encrypted; give it unencrypted (mode 0600)")]
    Encrypted {
        /// The file.
        path: PathBuf,
    },
    /// The key is one the issuer could not publish or STS would refuse (size, curve, algorithm).
    #[error(transparent)]
    Unusable(#[from] KeyError),
    /// The key's numbers are inconsistent (the crypto library refused the private key).
    #[error("key file {path}: the private key is invalid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The library's words.
        reason: String,
    },
    /// The directory has no key file.
    #[error("key directory {path}: no key file")]
    Empty {
        /// The directory.
        path: PathBuf,
    },
    /// The signing key named is not among the loaded files.
    #[error("signing key {name}: no such key file in {dir}")]
    NoSuchSigningKey {
        /// The name given.
        name: String,
        /// The directory.
        dir: PathBuf,
    },
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// One private key with its public half, key ID and algorithm.
pub struct SigningKey {
    file: PathBuf,
    kid: String,
    algorithm: Algorithm,
    spki_der: Vec<u8>,
    header: String,
    published_at: SystemTime,
    pair: Pair,
}

impl fmt::Debug for SigningKey {
    // Never the private key: only what is public.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("file", &self.file)
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("published_at", &self.published_at)
            .finish_non_exhaustive()
    }
}

/// Signing failed: inside the crypto library (not expected with a key that loaded), or at a remote key source.
#[derive(Debug, thiserror::Error)]
#[error("signing with key {kid} failed: {reason}")]
pub struct SignFailed {
    /// The key.
    pub kid: String,
    /// What went wrong, in the source's words (never key material).
    pub reason: String,
}

impl SigningKey {
    /// Parses one key file's content. `path` names the file in errors; `published_at` orders keys.
    pub fn parse(
        path: &Path,
        content: &[u8],
        published_at: SystemTime,
    ) -> Result<Self, KeyFileError> {
        let sections = pem::parse_many(content).map_err(|e| KeyFileError::MalformedPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if sections.iter().any(|s| {
            s.tag() == "ENCRYPTED PRIVATE KEY"
                || (s.tag().ends_with("PRIVATE KEY") && s.headers().iter().next().is_some())
        }) {
            return Err(KeyFileError::Encrypted {
                path: path.to_path_buf(),
            });
        }
        let private: Vec<&pem::Pem> = sections
            .iter()
            .filter(|s| PRIVATE_LABELS.contains(&s.tag()))
            .collect();
        let section = match private.as_slice() {
            [] => {
                return Err(KeyFileError::NoPrivateKey {
                    path: path.to_path_buf(),
                });
            }
            [one] => *one,
            several => {
                return Err(KeyFileError::SeveralPrivateKeys {
                    path: path.to_path_buf(),
                    count: several.len(),
                });
            }
        };
        // The issuer's parser judges the key (size, curve) and computes its kid from the public half.
        let public = parse_pem(path, pem::encode(section).as_bytes())?
            .keys
            .into_iter()
            .next()
            .ok_or_else(|| KeyFileError::NoPrivateKey {
                path: path.to_path_buf(),
            })?;
        let invalid = |reason: String| KeyFileError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let der = section.contents();
        let pair = match public.algorithm() {
            Algorithm::RS256 if section.tag() == "RSA PRIVATE KEY" => {
                Pair::Rsa(RsaKeyPair::from_der(der).map_err(|e| invalid(e.to_string()))?)
            }
            Algorithm::RS256 => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|e| invalid(e.to_string()))?)
            }
            ec => {
                let alg = match ec {
                    Algorithm::ES256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
                    Algorithm::ES384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
                    _ => &ECDSA_P521_SHA512_FIXED_SIGNING,
                };
                Pair::Ec(
                    EcdsaKeyPair::from_private_key_der(alg, der)
                        .map_err(|e| invalid(e.to_string()))?,
                )
            }
        };
        let spki_der = match &pair {
            Pair::Rsa(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Pair::Ec(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|e| invalid(e.to_string()))?;
        // The kid published and the kid signed into headers must be one: refuse rather than drift.
        if kid_of_spki_der(&spki_der) != public.kid() {
            return Err(invalid(
                "the public key derived from the private key does not match its key ID".into(),
            ));
        }
        let kid = public.kid().to_string();
        let algorithm = public.algorithm();
        Ok(SigningKey {
            file: path.to_path_buf(),
            header: jwt::header(algorithm, &kid),
            kid,
            algorithm,
            spki_der,
            published_at,
            pair,
        })
    }

    /// Reads and parses one key file; its publication time is the one in its name, else its modification
    /// time ([`crate::key_file::published_at`]).
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let unreadable = |source| KeyFileError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let content = std::fs::read(path).map_err(unreadable)?;
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(unreadable)?;
        Self::parse(
            path,
            &content,
            crate::key_file::published_at(path, modified),
        )
    }

    /// The file the key came from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The key ID, as kube-apiserver and the issuer compute it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key as DER SubjectPublicKeyInfo (what `FetchKeys` returns).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// When the key was published: the time in its file name, else the file's modification time.
    pub fn published_at(&self) -> SystemTime {
        self.published_at
    }

    /// The JWT header this key signs with, already base64url-encoded.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Signs `message` (the JWS signing input): PKCS#1 v1.5 SHA-256 for RSA, fixed-width r||s for ECDSA.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignFailed> {
        let rng = SystemRandom::new();
        let failed = |e: aws_lc_rs::error::Unspecified| SignFailed {
            kid: self.kid.clone(),
            reason: e.to_string(),
        };
        match &self.pair {
            Pair::Rsa(k) => {
                let mut signature = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            Pair::Ec(k) => Ok(k.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
        }
    }
}

/// The keys of a directory: all are published, one signs.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    active: usize,
}

impl KeySet {
    /// A key set from parsed keys, oldest first. The key whose file is named `signing` is [`KeySet::active`];
    /// without a name, the newest is (ties, as in a Secret volume where every file has one date, go to the last
    /// name).
    pub fn new(
        mut keys: Vec<SigningKey>,
        signing: Option<&str>,
        dir: &Path,
    ) -> Result<KeySet, KeyFileError> {
        keys.sort_by(|a, b| (a.published_at, &a.file).cmp(&(b.published_at, &b.file)));
        // The same key in two files is published once.
        let mut unique: Vec<SigningKey> = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(at) = unique.iter().position(|k| k.kid == key.kid) {
                unique.remove(at);
            }
            unique.push(key);
        }
        let active = match signing {
            Some(name) => unique
                .iter()
                .position(|k| {
                    k.file.file_name().is_some_and(|n| n == name) || k.file == Path::new(name)
                })
                .ok_or_else(|| KeyFileError::NoSuchSigningKey {
                    name: name.to_string(),
                    dir: dir.to_path_buf(),
                })?,
            None => unique
                .len()
                .checked_sub(1)
                .ok_or_else(|| KeyFileError::Empty {
                    path: dir.to_path_buf(),
                })?,
        };
        Ok(KeySet {
            keys: unique.into_iter().map(Arc::new).collect(),
            active,
        })
    }

    /// Loads every key file of `dir`. Hidden entries (a Secret volume's `..data` links) and directories are
    /// skipped; any other file that is not a usable private key is an error naming it.
    pub fn load_dir(dir: &Path, signing: Option<&str>) -> Result<KeySet, KeyFileError> {
        let unreadable = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyFileError::Unreadable { path, source }
        };
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable(dir))? {
            let path = entry.map_err(unreadable(dir))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            // metadata() follows symlinks: a Secret volume's files are links into `..data/`.
            if hidden || std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            keys.push(SigningKey::load(&path)?);
        }
        KeySet::new(keys, signing, dir)
    }

    /// The key named at load, else the newest.
    pub fn active(&self) -> &Arc<SigningKey> {
        &self.keys[self.active]
    }

    /// Every key, oldest first (ties in file-name order).
    pub fn keys(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }
}
