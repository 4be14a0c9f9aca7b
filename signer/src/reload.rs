//! `irsa signer serve`'s background task: re-reads the key source (a directory, or a KMS key set with
//! `kms:ListKeys`) every interval, re-evaluates the states at least at the next transition, and (in the
//! automatic mode) adds the next key when the active one is old.
//!
//! A source that cannot be read or a bad new key never stops the signer: the last good key set stays in use,
//! the error is logged (once per distinct error) and counted.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::key_file::NewKeyAlgorithm;
use crate::keys::{KeyFileError, KeySet};
use crate::live::{Change, Live};
use crate::metrics::Metrics;
use crate::source::{Key, Source};

/// The automatic rotation (`--rotate-after`).
#[derive(Debug, Clone, Copy)]
pub struct AutoRotate {
    /// The age of the active key at which the next one is written.
    pub after: Duration,
    /// The algorithm of the keys written.
    pub algorithm: NewKeyAlgorithm,
}

/// Reloads the keys of a source into a [`Live`] set.
#[derive(Debug)]
pub struct Reloader {
    /// Where the keys are.
    pub source: Source,
    /// The shared key set.
    pub live: Arc<Live>,
    /// How often to re-read the source.
    pub interval: Duration,
    /// The automatic rotation, if on.
    pub auto_rotate: Option<AutoRotate>,
    /// Where errors and states are counted.
    pub metrics: Metrics,
}

/// Reads every key of `dir` (blocking: run it off the async threads).
pub fn load_dir(dir: &std::path::Path) -> Result<Vec<Arc<dyn Key>>, KeyFileError> {
    let set = KeySet::load_dir(dir, None)?;
    Ok(set
        .keys()
        .iter()
        .map(|k| k.clone() as Arc<dyn Key>)
        .collect())
}

impl Reloader {
    /// Runs until `stop` completes.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut last_error: Option<String> = None;
        loop {
            let wait = self.wait(SystemTime::now());
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(wait) => {}
            }
            self.tick(&mut last_error).await;
        }
    }

    /// Until the next reload or the next state change, whichever comes first.
    fn wait(&self, now: SystemTime) -> Duration {
        let to_change = self
            .live
            .current()
            .next_change()
            .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO));
        to_change.map_or(self.interval, |d| d.min(self.interval))
    }

    /// One reload and re-evaluation, then the automatic rotation if it is due (and a reload to pick it up).
    pub async fn tick(&self, last_error: &mut Option<String>) {
        self.reload(last_error).await;
        let Some(auto) = self.auto_rotate else {
            return;
        };
        let now = SystemTime::now();
        if !self.live.current().rotation_due(now, auto.after) {
            return;
        }
        match self.source.create(auto.algorithm, now).await {
            Ok(key) => {
                tracing::info!(%key, "automatic rotation: added a new key");
                self.reload(last_error).await;
            }
            Err(error) => {
                self.metrics.rotate_error();
                tracing::error!(%error, source = %self.source, "automatic rotation failed");
            }
        }
    }

    async fn reload(&self, last_error: &mut Option<String>) {
        let loaded = self.source.load().await.map_err(|e| e.to_string());
        let now = SystemTime::now();
        let keys = match loaded {
            Ok(keys) => {
                if last_error.take().is_some() {
                    tracing::info!(source = %self.source, "the keys load again");
                }
                Some(keys)
            }
            Err(error) => {
                self.metrics.reload_error();
                if last_error.as_ref() != Some(&error) {
                    tracing::error!(%error, "reloading the keys failed; the last good key set stays in use");
                }
                *last_error = Some(error);
                None
            }
        };
        match self.live.update(keys, now) {
            Ok(change) => self.report(change),
            // Unreachable: an empty source is an error above.
            Err(error) => {
                self.metrics.reload_error();
                tracing::error!(%error, "no keys; the last good key set stays in use");
            }
        }
        self.metrics.set_states(&self.live.current());
    }

    fn report(&self, change: Change) {
        if !(change.published || change.signing) {
            return;
        }
        let snapshot = self.live.current();
        for (key, state) in snapshot.states() {
            tracing::info!(
                kid = key.kid(),
                state = state.name(),
                key = %key.location(),
                "key state"
            );
        }
        if change.signing {
            tracing::info!(kid = snapshot.signing().kid(), "a new key signs");
        }
    }
}
