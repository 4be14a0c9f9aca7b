//! The key set the signer serves: the loaded keys with their states at the last evaluation, swapped whole
//! when the keys are reloaded or a state changes, so that an RPC always sees one consistent set.
//!
//! [`Snapshot::evaluate`] is pure (the time is an input); [`Live`] only holds the current snapshot.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::rotation::{self, Evaluation, Policy, State};
use crate::source::Key;

/// There is no key to sign with.
#[derive(Debug, thiserror::Error)]
#[error("no signing key")]
pub struct NoKeys;

/// The keys and their states at one instant.
#[derive(Debug)]
pub struct Snapshot {
    keys: Vec<Arc<dyn Key>>,
    times: Vec<SystemTime>,
    evaluation: Evaluation,
    signing: usize,
    data_timestamp: SystemTime,
}

impl Snapshot {
    /// The states of `keys` at `now` under `policy`. Keys with equal publication times count in the order
    /// given, later as newer. `data_timestamp` is `previous`'s when the published keys are the same, else `now`:
    /// it tells the apiserver when the key set last changed, not when it was last looked at.
    pub fn evaluate(
        keys: Vec<Arc<dyn Key>>,
        policy: &Policy,
        now: SystemTime,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, NoKeys> {
        let times: Vec<SystemTime> = keys.iter().map(|k| k.published_at()).collect();
        let evaluation = rotation::evaluate(&times, now, policy);
        let signing = evaluation.signing.ok_or(NoKeys)?;
        let mut snapshot = Snapshot {
            keys,
            times,
            evaluation,
            signing,
            data_timestamp: now,
        };
        if let Some(previous) = previous {
            snapshot.data_timestamp = if previous.published_ids() == snapshot.published_ids() {
                previous.data_timestamp
            } else {
                // Strictly later than the last one, even with the clock stepped back: a consumer that keeps the
                // newest data would otherwise ignore the change.
                now.max(previous.data_timestamp + std::time::Duration::from_millis(1))
            };
        }
        Ok(snapshot)
    }

    /// The key that signs.
    pub fn signing(&self) -> &Arc<dyn Key> {
        &self.keys[self.signing]
    }

    /// Every key with its state, in load order (retired ones included).
    pub fn states(&self) -> impl Iterator<Item = (&Arc<dyn Key>, State)> {
        self.keys.iter().zip(self.evaluation.states.iter().copied())
    }

    /// The keys to publish: pre-published, active and retiring.
    pub fn published(&self) -> impl Iterator<Item = &Arc<dyn Key>> {
        self.states()
            .filter(|(_, state)| state.is_published())
            .map(|(key, _)| key)
    }

    /// When a state next changes, if ever.
    pub fn next_change(&self) -> Option<SystemTime> {
        self.evaluation.next_change
    }

    /// Whether the automatic mode should write the next key at `now` ([`rotation::rotation_due`]).
    pub fn rotation_due(&self, now: SystemTime, rotate_after: Duration) -> bool {
        rotation::rotation_due(&self.times, &self.evaluation, now, rotate_after)
    }

    /// When the published set last changed.
    pub fn data_timestamp(&self) -> SystemTime {
        self.data_timestamp
    }

    fn published_ids(&self) -> Vec<(&str, &[u8])> {
        let mut ids: Vec<(&str, &[u8])> =
            self.published().map(|k| (k.kid(), k.spki_der())).collect();
        ids.sort_unstable();
        ids
    }
}

/// What an update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The published keys differ.
    pub published: bool,
    /// Another key signs.
    pub signing: bool,
}

/// The current snapshot, shared by the RPCs and the task that reloads and re-evaluates.
#[derive(Debug)]
pub struct Live {
    policy: Policy,
    current: RwLock<Arc<Snapshot>>,
}

impl Live {
    /// The states of `keys` at `now`.
    pub fn new(keys: Vec<Arc<dyn Key>>, policy: Policy, now: SystemTime) -> Result<Live, NoKeys> {
        let snapshot = Snapshot::evaluate(keys, &policy, now, None)?;
        Ok(Live {
            policy,
            current: RwLock::new(Arc::new(snapshot)),
        })
    }

    /// The rotation policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a writer panicked between two whole-Arc swaps: the value is intact.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-evaluates at `now`, with `keys` if given (a reload), else with the current keys. An empty `keys`
    /// changes nothing: the last good set stays.
    pub fn update(
        &self,
        keys: Option<Vec<Arc<dyn Key>>>,
        now: SystemTime,
    ) -> Result<Change, NoKeys> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let keys = keys.unwrap_or_else(|| current.keys.clone());
        let next = Snapshot::evaluate(keys, &self.policy, now, Some(&current))?;
        let change = Change {
            published: next.published_ids() != current.published_ids(),
            signing: next.signing().kid() != current.signing().kid(),
        };
        *current = Arc::new(next);
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use irsa_issuer::keys::Algorithm;

    use super::*;
    use crate::source::SignFuture;

    #[derive(Debug)]
    struct Fake(&'static str, SystemTime);

    impl Key for Fake {
        fn kid(&self) -> &str {
            self.0
        }
        fn algorithm(&self) -> Algorithm {
            Algorithm::ES256
        }
        fn spki_der(&self) -> &[u8] {
            self.0.as_bytes()
        }
        fn published_at(&self) -> SystemTime {
            self.1
        }
        fn location(&self) -> String {
            self.0.into()
        }
        fn sign<'a>(&'a self, _: &'a [u8]) -> SignFuture<'a> {
            Box::pin(std::future::ready(Ok(Vec::new())))
        }
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn keys(list: &[(&'static str, u64)]) -> Vec<Arc<dyn Key>> {
        list.iter()
            .map(|&(kid, at)| Arc::new(Fake(kid, t(at))) as Arc<dyn Key>)
            .collect()
    }

    fn policy() -> Policy {
        Policy {
            pre_publish: Duration::from_secs(100),
            max_token_expiration: Duration::from_secs(1000),
            margin: Duration::from_secs(10),
        }
    }

    fn published(live: &Live) -> Vec<String> {
        live.current()
            .published()
            .map(|k| k.kid().to_string())
            .collect()
    }

    #[test]
    fn the_data_timestamp_moves_only_when_the_published_set_changes() {
        let live = Live::new(keys(&[("a", 0)]), policy(), t(5)).unwrap();
        assert_eq!(live.current().data_timestamp(), t(5));
        // Re-reading the same keys later: nothing changed for the apiserver.
        let change = live.update(Some(keys(&[("a", 0)])), t(50)).unwrap();
        assert!(!change.published && !change.signing);
        assert_eq!(live.current().data_timestamp(), t(5));

        // A new key: published at once, not signing yet.
        let change = live
            .update(Some(keys(&[("a", 0), ("b", 60)])), t(60))
            .unwrap();
        assert!(change.published && !change.signing);
        assert_eq!(live.current().data_timestamp(), t(60));
        assert_eq!(published(&live), ["a", "b"]);
        assert_eq!(live.current().signing().kid(), "a");
        assert_eq!(live.current().next_change(), Some(t(160)));

        // Its time comes: it signs; the published set is the same.
        let change = live.update(None, t(160)).unwrap();
        assert!(!change.published && change.signing);
        assert_eq!(live.current().signing().kid(), "b");
        assert_eq!(live.current().data_timestamp(), t(60));

        // The old key retires: the published set shrinks.
        let change = live.update(None, t(160 + 1010)).unwrap();
        assert!(change.published && !change.signing);
        assert_eq!(published(&live), ["b"]);
        assert_eq!(live.current().data_timestamp(), t(1170));
    }

    #[test]
    fn a_change_moves_the_data_timestamp_forward_even_with_the_clock_behind() {
        let live = Live::new(keys(&[("a", 0)]), policy(), t(50)).unwrap();
        let change = live
            .update(Some(keys(&[("a", 0), ("b", 0)])), t(10))
            .unwrap();
        assert!(change.published);
        assert!(live.current().data_timestamp() > t(50));
    }

    #[test]
    fn no_keys_keeps_the_last_good_set() {
        assert!(Live::new(Vec::new(), policy(), t(0)).is_err());
        let live = Live::new(keys(&[("a", 0)]), policy(), t(0)).unwrap();
        assert!(live.update(Some(Vec::new()), t(1)).is_err());
        assert_eq!(live.current().signing().kid(), "a");
    }
}
