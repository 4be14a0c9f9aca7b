//! The files `irsa signer rotate` writes: a new private key (PKCS#8 PEM) named after the instant it was
//! written, `key-YYYYMMDDTHHMMSSZ.pem`, so that its publication time survives copies, restores and Secret
//! volumes (which give every file one modification time). Files named otherwise fall back to their
//! modification time.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

const PREFIX: &str = "key-";
const SUFFIX: &str = ".pem";
/// The time in the name: UTC, to the second, sortable.
const FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The algorithm of a key `irsa signer rotate` generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewKeyAlgorithm {
    /// RSA 2048, PKCS#1 v1.5 with SHA-256: what every verifier accepts.
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256: smaller tokens, faster signing.
    #[value(name = "ES256")]
    Es256,
}

/// Why a new key could not be generated or written. Nothing is left behind in either case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The crypto library could not generate the key.
    #[error("generating the key failed")]
    Generate,
    /// The directory does not exist or is not a directory.
    #[error("key directory {0}: no such directory")]
    NoDirectory(PathBuf),
    /// The temporary file could not be created, written or synced (a read-only directory, a full disk).
    #[error("key directory {path}: cannot write a new key: {source}")]
    Write {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key written in the same second already has the name.
    #[error("{0}: exists already (a key was written this second); try again in a second")]
    Exists(PathBuf),
}

/// The name of a key written at `at`: `key-YYYYMMDDTHHMMSSZ.pem`.
pub fn file_name(at: SystemTime) -> String {
    let at = jiff::Timestamp::try_from(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{PREFIX}{}{SUFFIX}", at.strftime(FORMAT))
}

/// The instant in a name [`file_name`] wrote, or `None` for any other name.
pub fn time_in_name(name: &str) -> Option<SystemTime> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let civil = jiff::civil::DateTime::strptime(FORMAT, stamp).ok()?;
    let at = jiff::tz::Offset::UTC.to_timestamp(civil).ok()?;
    Some(SystemTime::from(at))
}

/// A key file's publication time: the instant in its name, else its modification time.
pub fn published_at(path: &Path, modified: SystemTime) -> SystemTime {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(time_in_name)
        .unwrap_or(modified)
}

/// A new private key as PKCS#8 PEM (RSA 2048 or P-256).
pub fn generate(algorithm: NewKeyAlgorithm) -> Result<String, WriteError> {
    let der = match algorithm {
        NewKeyAlgorithm::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .and_then(|k| k.as_der())
            .map_err(|_| WriteError::Generate)?
            .as_ref()
            .to_vec(),
        NewKeyAlgorithm::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| WriteError::Generate)?
            .as_ref()
            .to_vec(),
    };
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    Ok(pem::encode_config(
        &pem::Pem::new("PRIVATE KEY", der),
        config,
    ))
}

/// Writes `pem` into `dir` as the key written at `at`: mode 0600, complete or not at all.
///
/// The key goes to a hidden temporary file (which the key loader skips, should the process die), is synced,
/// then linked to its final name without replacing anything: a running signer never reads half a key, and a
/// key already named so is never lost.
pub fn write_new(dir: &Path, pem: &str, at: SystemTime) -> Result<PathBuf, WriteError> {
    if !dir.is_dir() {
        return Err(WriteError::NoDirectory(dir.to_path_buf()));
    }
    let write = |source| WriteError::Write {
        path: dir.to_path_buf(),
        source,
    };
    // tempfile creates the file 0600 with O_EXCL.
    let mut file = tempfile::Builder::new()
        .prefix(".key-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write)?;
    file.write_all(pem.as_bytes()).map_err(write)?;
    file.as_file().sync_all().map_err(write)?;
    let path = dir.join(file_name(at));
    file.persist_noclobber(&path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            WriteError::Exists(path.clone())
        } else {
            write(e.error)
        }
    })?;
    // The new name must survive a crash too: sync the directory entry (best effort: not every file system
    // lets a directory be opened for that).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// The rotation step: a new key of `algorithm`, written into `dir` as published at `now`.
pub fn rotate(
    dir: &Path,
    algorithm: NewKeyAlgorithm,
    now: SystemTime,
) -> Result<PathBuf, WriteError> {
    if !dir.is_dir() {
        return Err(WriteError::NoDirectory(dir.to_path_buf()));
    }
    write_new(dir, &generate(algorithm)?, now)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn names_round_trip_to_the_second() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let name = file_name(at + Duration::from_millis(900));
        assert_eq!(name, "key-20261118T110640Z.pem");
        assert_eq!(time_in_name(&name), Some(at));
    }

    #[test]
    fn other_names_have_no_time() {
        for name in [
            "sa.key",
            "key-.pem",
            "key-20261118T110640Z.key",
            "key-20261118T110640.pem",
            "key-20261318T054640Z.pem",
            "xkey-20261118T110640Z.pem",
            "key-20261118T110640Z.pem.bak",
        ] {
            assert_eq!(time_in_name(name), None, "{name}");
        }
    }

    #[test]
    fn the_name_wins_over_the_modification_time() {
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        assert_eq!(
            published_at(Path::new("/k/key-20261118T110640Z.pem"), mtime),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000)
        );
        assert_eq!(published_at(Path::new("/k/sa.key"), mtime), mtime);
    }
}
