//! TLS server configuration re-read from files when they change.
//!
//! Kubernetes updates a mounted Secret by writing a new timestamped directory and swapping the `..data`
//! symlink, so a watcher on the file paths never fires. Instead the files are `stat`ed (following symlinks)
//! on every accepted connection, and the certificate chain and key are re-read only when the identity of
//! either file changed. A `stat` costs about a microsecond; keep-alive connections amortise even that.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Paths of a PEM certificate chain (leaf first, then intermediates) and its PEM private key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain file.
    pub cert: PathBuf,
    /// The private key file (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate or key could not be loaded.
///
/// A message never repeats its cause: the cause is the error's `source()`, which `{:#}` (anyhow) and
/// [`crate::logging::error_chain`] print after it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{0}: no PEM CERTIFICATE found")]
    NoCertificate(PathBuf),
    /// The key file holds no PEM private key.
    #[error(
        "{0}: no PEM private key found (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
    )]
    NoKey(PathBuf),
    /// The key file holds an encrypted private key; a server has nobody to ask for the passphrase.
    #[error(
        "{0}: the private key is encrypted ({1}); give an unencrypted key, for example \
         `openssl pkey -in key.pem -out key.plain.pem` (it asks for the passphrase)"
    )]
    EncryptedKey(PathBuf, &'static str),
    /// rustls refused the pair, for example a key that does not match the certificate.
    #[error("invalid certificate or key ({cert} / {key})")]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
}

/// What identifies one version of a file: if any of these change, the content may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let meta = fs::metadata(path).ok()?;
        Some(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        })
    }
}

struct Loaded {
    stamps: (Option<FileStamp>, Option<FileStamp>),
    config: Arc<ServerConfig>,
}

/// A [`ServerConfig`] that follows its files. Clone the `Arc` it returns per connection.
pub struct ReloadingConfig {
    files: TlsFiles,
    loaded: Mutex<Loaded>,
    /// The leaf's `notAfter` in Unix seconds, set on every load; exposed by [`Self::with_expiry_metric`].
    expiry: Gauge,
}

impl ReloadingConfig {
    /// Loads the files once; fails when they are unusable, so a server never starts without a certificate.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let stamps = (FileStamp::of(&files.cert), FileStamp::of(&files.key));
        let (config, not_after) = read(&files)?;
        let expiry = Gauge::default();
        set_expiry(&expiry, not_after, &files.cert);
        Ok(Self {
            files,
            loaded: Mutex::new(Loaded { stamps, config }),
            expiry,
        })
    }

    /// Registers `serving_certificate_expiry_timestamp_seconds` in `registry` (under its prefix): the
    /// `notAfter` of the leaf certificate being served, in Unix seconds, kept current across reloads. Alert
    /// on it approaching: a certificate that nothing renews ends every connection at its expiry.
    pub fn with_expiry_metric(self, registry: &mut Registry) -> Self {
        registry.register(
            "serving_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use (Unix time)",
            self.expiry.clone(),
        );
        self
    }

    /// The configuration for the next connection: re-read when either file changed. A change that does not
    /// load (a half-written pair during an update) keeps the previous configuration and logs why.
    pub fn current(&self) -> Arc<ServerConfig> {
        let stamps = (
            FileStamp::of(&self.files.cert),
            FileStamp::of(&self.files.key),
        );
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if stamps != loaded.stamps {
            match read(&self.files) {
                Ok((config, not_after)) => {
                    tracing::info!(cert = %self.files.cert.display(), "serving certificate reloaded");
                    loaded.config = config;
                    loaded.stamps = stamps;
                    set_expiry(&self.expiry, not_after, &self.files.cert);
                }
                Err(err) => {
                    // Keep the stamps old so the next connection retries; keep serving the last good pair.
                    tracing::warn!(
                        err = crate::logging::error_chain(&err),
                        "serving certificate changed but does not load; keeping the previous one"
                    );
                }
            }
        }
        loaded.config.clone()
    }
}

/// Sets `gauge` to `not_after` in Unix seconds; a certificate whose date could not be read leaves the previous
/// value (rustls accepted it, so only the metric is missing) and says so.
fn set_expiry(gauge: &Gauge, not_after: Option<SystemTime>, cert: &Path) {
    match not_after.and_then(|at| at.duration_since(SystemTime::UNIX_EPOCH).ok()) {
        Some(seconds) => {
            gauge.set(i64::try_from(seconds.as_secs()).unwrap_or(i64::MAX));
        }
        None => {
            tracing::warn!(cert = %cert.display(), "cannot read the serving certificate's notAfter")
        }
    }
}

/// Reads a certificate chain and key into a rustls server configuration offering h2 and HTTP/1.1.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    read(files).map(|(config, _)| config)
}

/// How `pem` says its private key is encrypted, if it does: a PKCS#8 `ENCRYPTED PRIVATE KEY`, or the
/// RFC 1421 `Proc-Type: 4,ENCRYPTED` header of a legacy `RSA`/`EC PRIVATE KEY`. Neither parses as a key, and
/// "no key found" would send the operator looking for the wrong problem.
fn encrypted(pem: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        Some("ENCRYPTED PRIVATE KEY")
    } else if text
        .lines()
        .any(|line| line.trim() == "Proc-Type: 4,ENCRYPTED")
    {
        Some("Proc-Type: 4,ENCRYPTED")
    } else {
        None
    }
}

/// [`load`], and the leaf's `notAfter` when it can be read.
fn read(files: &TlsFiles) -> Result<(Arc<ServerConfig>, Option<SystemTime>), TlsError> {
    let cert_pem = fs::read(&files.cert).map_err(|source| TlsError::Read {
        path: files.cert.clone(),
        source,
    })?;
    let key_pem = fs::read(&files.key).map_err(|source| TlsError::Read {
        path: files.key.clone(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    if let Some(kind) = encrypted(&key_pem) {
        return Err(TlsError::EncryptedKey(files.key.clone(), kind));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(files.key.clone()))?;
    let not_after = crate::certificate::fields(&chain[0]).map(|fields| fields.not_after);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|source| TlsError::Rejected {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install_provider() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }

    /// A certificate and its key, in `dir`.
    fn pair(dir: &Path) -> (TlsFiles, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let files = TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        fs::write(&files.cert, cert.pem()).unwrap();
        fs::write(&files.key, key.serialize_pem()).unwrap();
        (files, key)
    }

    /// How an error reaches the operator: anyhow's one-line chain, as `irsa` prints it.
    fn chain(err: TlsError) -> String {
        format!("{:#}", anyhow::Error::from(err))
    }

    #[test]
    fn an_encrypted_key_is_called_encrypted_and_the_fix_is_given() {
        install_provider();
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = pair(dir.path());
        let pkcs8 = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        for (pem, kind) in [
            (pkcs8, "ENCRYPTED PRIVATE KEY"),
            (legacy, "Proc-Type: 4,ENCRYPTED"),
        ] {
            fs::write(&files.key, pem).unwrap();
            let err = chain(load(&files).unwrap_err());
            assert!(
                err.contains("tls.key: the private key is encrypted"),
                "{err}"
            );
            assert!(err.contains(kind), "{err}");
            assert!(
                err.contains("openssl pkey -in key.pem -out key.plain.pem"),
                "{err}"
            );
            assert!(!err.contains("no PEM private key"), "{err}");
        }
    }

    #[test]
    fn an_error_names_its_cause_once() {
        install_provider();
        let dir = tempfile::tempdir().unwrap();
        let (mut files, _) = pair(dir.path());

        // A directory where the key should be: the I/O error, once.
        let key = std::mem::replace(&mut files.key, dir.path().to_owned());
        let err = chain(load(&files).unwrap_err());
        let cause = std::io::Error::from_raw_os_error(21).to_string();
        assert!(
            err.starts_with(&format!("cannot read {}: ", dir.path().display())),
            "{err}"
        );
        assert_eq!(err.matches(&cause).count(), 1, "{err}");

        // A key that is not the certificate's: rustls's reason, once.
        files.key = key;
        fs::write(
            &files.key,
            rcgen::KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let TlsError::Rejected { source, .. } = load(&files).unwrap_err() else {
            panic!("a mismatched key must be rejected by rustls");
        };
        let reason = source.to_string();
        let err = chain(load(&files).unwrap_err());
        assert!(err.starts_with("invalid certificate or key ("), "{err}");
        assert_eq!(err.matches(&reason).count(), 1, "{reason} in {err}");
    }
}
