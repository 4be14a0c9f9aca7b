//! Re-reading the key files when they change, and the reload loop every key source shares (`poll_every`: the
//! apiserver's JWKS is refreshed by it too; `poll_paced` under it also runs the signer's, at the signer's pace).
//!
//! The files are read and hashed every few seconds rather than watched: it costs a few small reads, and it
//! sees every kind of change, including the symlink swap by which the kubelet updates a mounted Secret or
//! ConfigMap (which inotify on the file path misses).

use std::fmt::Display;
use std::future::{self, Future};
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::documents::Publisher;
use crate::keys::{self, KeyError, LoadedKeys};

/// The watched key files and the fingerprint of what they held last time.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    paths: Vec<PathBuf>,
    last: Option<[u8; 32]>,
}

impl KeyFiles {
    /// Watches `paths` (nothing read yet).
    pub fn new(paths: Vec<PathBuf>) -> KeyFiles {
        KeyFiles { paths, last: None }
    }

    /// The watched paths.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Reads every file. `Ok(None)` when nothing changed since the previous call; otherwise the new keys, or
    /// the error. An error is returned once per distinct state, not on every poll.
    pub fn poll(&mut self) -> Result<Option<LoadedKeys>, KeyError> {
        let mut hasher = Sha256::new();
        let mut contents = Vec::with_capacity(self.paths.len());
        for path in &self.paths {
            let read = keys::read_file(path);
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update([0]);
            match &read {
                Ok(bytes) => {
                    hasher.update((bytes.len() as u64).to_le_bytes());
                    hasher.update(bytes);
                }
                Err(e) => hasher.update(format!("error: {e}")),
            }
            contents.push(read);
        }
        let fingerprint: [u8; 32] = hasher.finalize().into();
        if self.last == Some(fingerprint) {
            return Ok(None);
        }
        self.last = Some(fingerprint);
        if self.paths.is_empty() {
            return Err(KeyError::NoFiles);
        }
        let mut parts = Vec::with_capacity(contents.len());
        for (path, read) in self.paths.iter().zip(contents) {
            parts.push(keys::parse_pem(path, &read?)?);
        }
        Ok(Some(keys::merge(parts)))
    }
}

/// Polls `files` every `interval` and publishes each change until `shutdown` completes. A failed reload
/// keeps the last good documents, logs the error and counts it.
pub async fn run(
    mut files: KeyFiles,
    interval: Duration,
    publisher: Publisher,
    shutdown: impl Future<Output = ()>,
) {
    let source = Source {
        label: "key_files",
        doing: "reloading the key files",
    };
    let poll = move || future::ready(files.poll());
    poll_every(interval, &publisher, source, poll, || {}, shutdown).await;
}

/// A source of keys, as a reload loop reports its failures.
pub(crate) struct Source {
    /// The `source` label of `irsa_issuer_reload_errors_total`.
    pub label: &'static str,
    /// What failed, for the log line (`<doing> failed; still serving the previous keys`).
    pub doing: &'static str,
}

/// The reload loop of every key source (the files, the apiserver): `poll` every `interval` until `shutdown`
/// completes, which also cancels a poll under way. New keys (`Some`) are published, then `on_published`
/// runs; an error keeps the last good documents, and is counted and logged.
pub(crate) async fn poll_every<P, E>(
    interval: Duration,
    publisher: &Publisher,
    source: Source,
    mut poll: impl FnMut() -> P,
    on_published: impl Fn(),
    shutdown: impl Future<Output = ()>,
) where
    P: Future<Output = Result<Option<LoadedKeys>, E>>,
    E: Display,
{
    let paced = move || {
        let polled = poll();
        async move { (polled.await, interval) }
    };
    poll_paced(publisher, source, paced, on_published, shutdown).await;
}

/// [`poll_every`] for a source that sets its own pace (the signer's refresh hint, a backoff after errors):
/// each poll also says how long after its start the next one begins. The first poll is immediate.
pub(crate) async fn poll_paced<P, E>(
    publisher: &Publisher,
    source: Source,
    mut poll: impl FnMut() -> P,
    on_published: impl Fn(),
    shutdown: impl Future<Output = ()>,
) where
    P: Future<Output = (Result<Option<LoadedKeys>, E>, Duration)>,
    E: Display,
{
    tokio::pin!(shutdown);
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let started = tokio::time::Instant::now();
        let (polled, wait) = tokio::select! {
            _ = &mut shutdown => return,
            polled = poll() => polled,
        };
        // Paced from the start of the poll, as a ticker would: a slow poll does not stretch the period.
        next = started + wait;
        match polled {
            Ok(None) => {}
            Ok(Some(loaded)) => {
                publisher.publish(&loaded.keys, &loaded.warnings);
                on_published();
            }
            Err(e) => {
                publisher.metrics().reload_error(source.label);
                tracing::error!(
                    "{} failed; still serving the previous keys: {e}",
                    source.doing
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_changes_and_errors_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let mut files = KeyFiles::new(vec![path.clone()]);
        assert!(matches!(files.poll(), Err(KeyError::Unreadable { .. })));
        assert!(
            matches!(files.poll(), Ok(None)),
            "the same error reported twice"
        );
        std::fs::write(&path, "no pem here").unwrap();
        assert!(matches!(files.poll(), Err(KeyError::NoPem { .. })));
        assert!(matches!(files.poll(), Ok(None)));
    }
}
