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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
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
    /// rustls refused the pair, for example a key that does not match the certificate.
    #[error("invalid certificate or key ({cert} / {key}): {source}")]
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
                    tracing::warn!(%err, "serving certificate changed but does not load; keeping the previous one");
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
