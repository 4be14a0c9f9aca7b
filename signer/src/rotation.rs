//! The rotation rules, pure: from each key's publication time, the time now and a [`Policy`], which key signs,
//! which are published, which are retired, and when that next changes. No I/O and no clock: `irsa signer
//! serve`, `status` and `rotate` all call [`evaluate`], so they can never disagree about a key's state.
//!
//! A key is published from the moment it exists. It signs once it has been published for `pre_publish` (long
//! enough for every cached JWKS to hold it), except the oldest key, which signs at once when no other key
//! qualifies (a first key must sign). A key stops signing when its successor starts, and stays published until
//! every token it signed has expired (`max_token_expiration` after that instant, plus `margin` for clock
//! skew); then it is retired.

use std::time::{Duration, SystemTime};

/// How long keys are published before and after they sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a new key is published before it signs: at least the JWKS `max-age` plus `margin`, so that
    /// no verifier holds a cached key set without it when its first token arrives.
    pub pre_publish: Duration,
    /// The longest lifetime of a token the apiserver issues (the signer's `max_token_expiration_seconds`).
    pub max_token_expiration: Duration,
    /// Slack for clock skew and late refreshes, added after the last token's expiry.
    pub margin: Duration,
}

/// The pre-publication period is too short for the caches in front of the verifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a pre-publication of {pre_publish} s is too short: the key sets are cached up to {longest_cache} s, \
     so a new key must be published for at least {floor} s (that plus the margin) before it signs"
)]
pub struct PolicyError {
    /// The period given, in seconds.
    pub pre_publish: u64,
    /// The longest cache, in seconds.
    pub longest_cache: u64,
    /// The shortest period accepted, in seconds.
    pub floor: u64,
}

impl Policy {
    /// Checks that a new key is published for longer than `longest_cache` (the JWKS `max-age`, the apiserver's
    /// refresh) plus the margin before it signs: else a verifier still holding the old key set refuses the
    /// new key's first tokens.
    pub fn check(&self, longest_cache: Duration) -> Result<(), PolicyError> {
        let floor = longest_cache.saturating_add(self.margin);
        if self.pre_publish < floor {
            return Err(PolicyError {
                pre_publish: self.pre_publish.as_secs(),
                longest_cache: longest_cache.as_secs(),
                floor: floor.as_secs(),
            });
        }
        Ok(())
    }
}

/// Where a key stands at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Published, not yet signing.
    PrePublished {
        /// When it starts signing (unless a newer key supersedes it first).
        signs_from: SystemTime,
    },
    /// The key that signs.
    Active {
        /// When it started signing (its publication time for a key that signed at once).
        since: SystemTime,
    },
    /// No longer signs; still published while tokens it signed may be in use.
    Retiring {
        /// When it stops being published.
        published_until: SystemTime,
    },
    /// Neither signs nor is published: every token it signed has expired.
    Retired {
        /// When it stopped being published.
        since: SystemTime,
    },
}

impl State {
    /// Whether the key is in the published set (JWKS, `FetchKeys`).
    pub fn is_published(&self) -> bool {
        !matches!(self, State::Retired { .. })
    }

    /// The state's name, as metrics labels and `irsa signer status` show it.
    pub fn name(&self) -> &'static str {
        match self {
            State::PrePublished { .. } => "pre-published",
            State::Active { .. } => "active",
            State::Retiring { .. } => "retiring",
            State::Retired { .. } => "retired",
        }
    }
}

/// The states of a set of keys at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Each key's state, in the order the keys were given.
    pub states: Vec<State>,
    /// The index (in the order given) of the key that signs; `None` only for no keys.
    pub signing: Option<usize>,
    /// The next instant after `now` at which some state changes; `None` when none ever will.
    pub next_change: Option<SystemTime>,
}

/// Evaluates the keys published at `published_at` (any order) at `now`.
///
/// Keys are ordered by publication time; keys with the same time keep the order given, later ones counting as
/// newer (the caller decides ties: the directory source orders them by file name). A key from the future (the
/// clock behind its file name) is pre-published until its time comes, except that a lone or oldest key still
/// signs at once.
pub fn evaluate(published_at: &[SystemTime], now: SystemTime, policy: &Policy) -> Evaluation {
    let mut order: Vec<usize> = (0..published_at.len()).collect();
    // Stable: equal times keep the caller's order.
    order.sort_by_key(|&i| published_at[i]);
    // When each key (in publication order) starts signing: the oldest at once, the others after pre-publication.
    let starts: Vec<SystemTime> = order
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            if rank == 0 {
                published_at[i]
            } else {
                published_at[i].plus(policy.pre_publish)
            }
        })
        .collect();
    // The newest key that has started; the oldest when none has (its start may be ahead of a clock behind).
    let signing_rank = starts.iter().rposition(|&start| start <= now).unwrap_or(0);
    let after_last_token = policy.max_token_expiration.saturating_add(policy.margin);

    let mut states = vec![State::Retired { since: now }; published_at.len()];
    let mut next_change: Option<SystemTime> = None;
    let mut upcoming = |at: SystemTime| {
        if at > now {
            next_change = Some(next_change.map_or(at, |n| n.min(at)));
        }
    };
    for (rank, &i) in order.iter().enumerate() {
        states[i] = match rank.cmp(&signing_rank) {
            std::cmp::Ordering::Greater => {
                upcoming(starts[rank]);
                State::PrePublished {
                    signs_from: starts[rank],
                }
            }
            std::cmp::Ordering::Equal => State::Active {
                since: starts[rank],
            },
            std::cmp::Ordering::Less => {
                // Its successor started (ranks below the signing one all have a started successor).
                let until = starts[rank + 1].plus(after_last_token);
                upcoming(until);
                if now < until {
                    State::Retiring {
                        published_until: until,
                    }
                } else {
                    State::Retired { since: until }
                }
            }
        };
    }
    Evaluation {
        signing: order.get(signing_rank).copied(),
        states,
        next_change,
    }
}

/// Whether the automatic mode should start a rotation at `now`: the active key was published at least
/// `rotate_after` ago and no successor is pre-published already. `published_at` and `evaluation` are the
/// same keys', as [`evaluate`] takes and returns them.
pub fn rotation_due(
    published_at: &[SystemTime],
    evaluation: &Evaluation,
    now: SystemTime,
    rotate_after: Duration,
) -> bool {
    let pending = evaluation
        .states
        .iter()
        .any(|s| matches!(s, State::PrePublished { .. }));
    let Some(active) = evaluation.signing.and_then(|i| published_at.get(i)) else {
        return false;
    };
    !pending && active.plus(rotate_after) <= now
}

/// A thousand years: "never" for durations, and still far inside `SystemTime`'s range.
const NEVER: Duration = Duration::from_secs(1000 * 365 * 86_400);

trait Plus {
    fn plus(self, d: Duration) -> Self;
}

impl Plus for SystemTime {
    // A duration from the command line can neither overflow the clock into a panic nor wrap to "at once".
    fn plus(self, d: Duration) -> SystemTime {
        self.checked_add(d.min(NEVER)).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRE: u64 = 100;
    const MAX: u64 = 1000;
    const MARGIN: u64 = 10;

    fn policy() -> Policy {
        Policy {
            pre_publish: Duration::from_secs(PRE),
            max_token_expiration: Duration::from_secs(MAX),
            margin: Duration::from_secs(MARGIN),
        }
    }

    /// A fake clock: seconds after an arbitrary epoch.
    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn at(keys: &[u64], now: u64) -> Evaluation {
        let times: Vec<SystemTime> = keys.iter().map(|&s| t(s)).collect();
        evaluate(&times, t(now), &policy())
    }

    #[test]
    fn no_keys_no_signer_no_change() {
        let e = at(&[], 0);
        assert_eq!(e.states, []);
        assert_eq!(e.signing, None);
        assert_eq!(e.next_change, None);
    }

    #[test]
    fn a_first_key_signs_at_once_and_forever() {
        for now in [0, 1, PRE, 10 * MAX] {
            let e = at(&[0], now);
            assert_eq!(e.states, [State::Active { since: t(0) }], "at {now}");
            assert_eq!(e.signing, Some(0));
            assert_eq!(e.next_change, None);
        }
    }

    #[test]
    fn a_new_key_is_pre_published_then_signs_then_the_old_one_retires() {
        // Key 1 is written at 500.
        let e = at(&[0, 500], 500);
        assert_eq!(
            e.states,
            [
                State::Active { since: t(0) },
                State::PrePublished {
                    signs_from: t(500 + PRE)
                }
            ]
        );
        assert_eq!(e.signing, Some(0));
        assert_eq!(e.next_change, Some(t(500 + PRE)));

        // One second before it signs: nothing changed yet.
        let e = at(&[0, 500], 500 + PRE - 1);
        assert_eq!(e.signing, Some(0));

        // At the instant it signs, the old key retires and stays published until its last token expired.
        let switch = 500 + PRE;
        let until = t(switch + MAX + MARGIN);
        let e = at(&[0, 500], switch);
        assert_eq!(
            e.states,
            [
                State::Retiring {
                    published_until: until
                },
                State::Active { since: t(switch) }
            ]
        );
        assert_eq!(e.signing, Some(1));
        assert_eq!(e.next_change, Some(until));

        // Still published one second before; retired (not published) at that instant.
        let e = at(&[0, 500], switch + MAX + MARGIN - 1);
        assert!(e.states[0].is_published());
        let e = at(&[0, 500], switch + MAX + MARGIN);
        assert_eq!(e.states[0], State::Retired { since: until });
        assert!(!e.states[0].is_published());
        assert_eq!(e.next_change, None);
    }

    #[test]
    fn three_keys_each_successor_ends_its_predecessor() {
        // Key 1 at 500 (signs at 600), key 2 at 700 (signs at 800).
        let keys = [0, 500, 700];
        let e = at(&keys, 650);
        assert_eq!(e.signing, Some(1));
        assert_eq!(
            e.states[0],
            State::Retiring {
                published_until: t(600 + MAX + MARGIN)
            }
        );
        assert_eq!(e.states[2], State::PrePublished { signs_from: t(800) });
        assert_eq!(e.next_change, Some(t(800)));

        let e = at(&keys, 800);
        assert_eq!(e.signing, Some(2));
        // Key 1 signed from 600 to 800: published until 800's tokens expire.
        assert_eq!(
            e.states[1],
            State::Retiring {
                published_until: t(800 + MAX + MARGIN)
            }
        );
        assert_eq!(e.next_change, Some(t(600 + MAX + MARGIN)));

        let e = at(&keys, 800 + MAX + MARGIN);
        assert!(matches!(e.states[0], State::Retired { .. }));
        assert!(matches!(e.states[1], State::Retired { .. }));
        assert_eq!(e.states[2], State::Active { since: t(800) });
    }

    #[test]
    fn two_rotations_in_a_row_the_newest_wins_when_its_time_comes() {
        // Keys 1 and 2 both pending: 1 signs from 600 until 2 takes over at 650.
        let keys = [0, 500, 550];
        let e = at(&keys, 620);
        assert_eq!(e.signing, Some(1));
        let e = at(&keys, 650);
        assert_eq!(e.signing, Some(2));
        assert_eq!(
            e.states[1],
            State::Retiring {
                published_until: t(650 + MAX + MARGIN)
            }
        );
    }

    #[test]
    fn keys_given_in_any_order_get_their_own_states() {
        let e = at(&[500, 0], 600);
        assert_eq!(e.signing, Some(0));
        assert!(matches!(e.states[1], State::Retiring { .. }));
    }

    #[test]
    fn equal_times_the_later_given_counts_as_newer() {
        // Two first keys at once: the second given signs, the first is kept published for safety.
        let e = at(&[0, 0], 0);
        assert_eq!(e.signing, Some(0));
        let e = at(&[0, 0], PRE);
        assert_eq!(e.signing, Some(1));
        assert_eq!(
            e.states[0],
            State::Retiring {
                published_until: t(PRE + MAX + MARGIN)
            }
        );
        // Two successors at once: the later given takes over, the other never signs.
        let e = at(&[0, 500, 500], 500 + PRE);
        assert_eq!(e.signing, Some(2));
        assert!(matches!(e.states[1], State::Retiring { .. }));
    }

    #[test]
    fn a_clock_behind_still_signs_with_the_oldest_key() {
        // now (0) is before the only key's time: it must sign anyway.
        let e = at(&[50], 0);
        assert_eq!(e.signing, Some(0));
        assert_eq!(e.states, [State::Active { since: t(50) }]);
        // A successor from the future waits for its time.
        let e = at(&[0, 5000], 10);
        assert_eq!(e.signing, Some(0));
        assert_eq!(
            e.states[1],
            State::PrePublished {
                signs_from: t(5000 + PRE)
            }
        );
        assert_eq!(e.next_change, Some(t(5000 + PRE)));
    }

    #[test]
    fn no_pre_publication_switches_at_once() {
        let policy = Policy {
            pre_publish: Duration::ZERO,
            ..policy()
        };
        let e = evaluate(&[t(0), t(10)], t(10), &policy);
        assert_eq!(e.signing, Some(1));
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let policy = Policy {
            pre_publish: Duration::MAX,
            max_token_expiration: Duration::MAX,
            margin: Duration::MAX,
        };
        let e = evaluate(&[t(0), t(1)], t(2), &policy);
        assert_eq!(e.signing, Some(0));
    }

    #[test]
    fn a_rotation_is_due_when_the_active_key_is_old_and_nothing_waits() {
        let after = Duration::from_secs(5000);
        let due = |keys: &[u64], now: u64| {
            let times: Vec<SystemTime> = keys.iter().map(|&s| t(s)).collect();
            rotation_due(&times, &evaluate(&times, t(now), &policy()), t(now), after)
        };
        assert!(!due(&[0], 4999));
        assert!(due(&[0], 5000));
        // A successor is pre-published: wait for it.
        assert!(!due(&[0, 5000], 5001));
        // It signs now, and is young.
        assert!(!due(&[0, 5000], 5000 + PRE));
        // It got old in turn.
        assert!(due(&[0, 5000], 10_000));
        assert!(!due(&[], 10_000));
    }

    #[test]
    fn the_pre_publication_must_outlast_the_caches() {
        let hour = Duration::from_secs(3600);
        let policy = Policy {
            pre_publish: hour + Duration::from_secs(MARGIN),
            ..policy()
        };
        assert_eq!(policy.check(hour), Ok(()));
        let err = policy.check(hour + Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.floor, 3600 + 1 + MARGIN);
    }

    #[test]
    fn state_names_and_publication() {
        let names: Vec<(&str, bool)> = [
            State::PrePublished { signs_from: t(0) },
            State::Active { since: t(0) },
            State::Retiring {
                published_until: t(0),
            },
            State::Retired { since: t(0) },
        ]
        .iter()
        .map(|s| (s.name(), s.is_published()))
        .collect();
        assert_eq!(
            names,
            [
                ("pre-published", true),
                ("active", true),
                ("retiring", true),
                ("retired", false)
            ]
        );
    }
}
