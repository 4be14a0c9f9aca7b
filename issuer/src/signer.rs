//! `--signer-socket`: publish the key set of the external signer (`irsa signer serve`, KEP-740), read with its
//! FetchKeys call over the unix socket, so the JWKS follows the signer's rotations with no copy step.
//!
//! The published kid must be the kid tokens are signed with: each key's `key_id` is checked against the kid
//! this issuer computes from the key, and a set with a mismatch is refused whole (the last good set stays).
//! Keys marked `exclude_from_oidc_discovery` verify legacy tokens only and are not published; keys STS would
//! refuse are left out with a warning. The signer says how often to ask again (`refresh_hint_seconds`,
//! bounded here); a failed fetch keeps the last good set and is retried sooner, backing off up to that pace.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use irsa_externaljwt::proto::{FetchKeysRequest, FetchKeysResponse, Key};
use irsa_externaljwt::{Client, ConnectError};

use crate::Warning;
use crate::documents::Publisher;
use crate::keys::{LoadedKeys, PublicKey};
use crate::reload::{Source, poll_paced};

/// The shortest pace a refresh hint may set: a busier signer gains nothing from more calls.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// The longest pace a refresh hint may set: a new key must reach the JWKS well within the signer's
/// pre-publication margin.
pub const MAX_REFRESH: Duration = Duration::from_secs(300);
/// The pace before the signer has answered, or when its hint is not positive: the signer's default hint.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// The first retry after a failed fetch; each further failure doubles it, up to the refresh pace.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// How long one FetchKeys (with its connection) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the signer's key set could not be read or published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The socket could not be dialled.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The signer answered FetchKeys with an error, or could not be reached for the call.
    #[error("the signer's FetchKeys on {}: {code}: {message}", socket.display())]
    Fetch {
        /// The signer's socket.
        socket: PathBuf,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The signer did not answer in time.
    #[error("the signer's FetchKeys on {} did not answer within {after:?}", socket.display())]
    Timeout {
        /// The signer's socket.
        socket: PathBuf,
        /// How long it was given.
        after: Duration,
    },
    /// A key's `key_id` is not the kid its public key has: tokens would carry a kid the JWKS does not match.
    #[error(
        "the signer names a key {published:?} whose kid is {computed:?}: the published kid must be the one tokens are signed with; refusing the key set"
    )]
    KidMismatch {
        /// The signer's `key_id`.
        published: String,
        /// The kid computed from the key (kube-apiserver's rule).
        computed: String,
    },
    /// No key of the set can be published: publishing that would break every token.
    #[error("no key of the signer's key set can be published ({0})")]
    NoUsableKey(String),
}

/// The signer's key set, ready to publish.
#[derive(Debug, Clone, Default)]
pub struct SignerKeys {
    /// The keys to publish, and a warning per key refused.
    pub loaded: LoadedKeys,
    /// How many keys were refused (left out: STS would not accept them).
    pub refused: usize,
    /// How many keys were marked `exclude_from_oidc_discovery` (left out: legacy verification only).
    pub excluded: usize,
    /// When to ask again: the signer's hint, bounded.
    pub refresh: Duration,
}

/// The pace a `refresh_hint_seconds` sets: bounded to [`MIN_REFRESH`]..=[`MAX_REFRESH`]; a hint that is not
/// positive (a misconfiguration, per the API) gives [`DEFAULT_REFRESH`].
pub fn refresh_pace(hint_seconds: i64) -> Duration {
    match u64::try_from(hint_seconds) {
        Ok(0) | Err(_) => DEFAULT_REFRESH,
        Ok(seconds) => Duration::from_secs(seconds).clamp(MIN_REFRESH, MAX_REFRESH),
    }
}

/// The publishable keys of a FetchKeys answer (pure).
pub fn keys_from_response(response: &FetchKeysResponse) -> Result<SignerKeys, SignerError> {
    let mut out = SignerKeys {
        refresh: refresh_pace(response.refresh_hint_seconds),
        ..SignerKeys::default()
    };
    if response.refresh_hint_seconds <= 0 {
        out.loaded.warnings.push(Warning::new(
            "signer",
            format!(
                "refresh_hint_seconds is {} (not positive): asking again every {}s",
                response.refresh_hint_seconds,
                DEFAULT_REFRESH.as_secs()
            ),
        ));
    }
    for key in &response.keys {
        if key.exclude_from_oidc_discovery {
            out.excluded += 1;
            continue;
        }
        let public = match PublicKey::from_spki_der(&key.key) {
            Ok(public) => public,
            Err(rejection) => {
                out.refused += 1;
                out.loaded.warnings.push(Warning::new(
                    format!("signer key {:?}", key.key_id),
                    rejection.to_string(),
                ));
                continue;
            }
        };
        if public.kid() != key.key_id {
            return Err(SignerError::KidMismatch {
                published: key.key_id.clone(),
                computed: public.kid().to_string(),
            });
        }
        if !out.loaded.keys.iter().any(|k| k.kid() == public.kid()) {
            out.loaded.keys.push(public);
        }
    }
    if out.loaded.keys.is_empty() {
        let why = if out.refused > 0 {
            out.loaded
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        } else if out.excluded > 0 {
            "every key is excluded from OIDC discovery".to_string()
        } else {
            "it is empty".to_string()
        };
        return Err(SignerError::NoUsableKey(why));
    }
    Ok(out)
}

/// What the reload loop remembers between fetches (pure): the last key set published and the pace.
#[derive(Debug, Default)]
pub struct Tracker {
    last: Option<Vec<Key>>,
    refresh: Option<Duration>,
    failures: u32,
}

impl Tracker {
    /// A tracker that has seen nothing yet.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Takes one fetch's outcome. Returns the keys to publish (`None` when the set is the one published
    /// already), or the error, and how long after this fetch the next one is due: the refresh pace after a
    /// success, a doubling retry (capped at the pace) after a failure.
    pub fn observe(
        &mut self,
        fetched: Result<FetchKeysResponse, SignerError>,
    ) -> (Result<Option<SignerKeys>, SignerError>, Duration) {
        let checked = fetched.and_then(|response| {
            let keys = keys_from_response(&response)?;
            Ok((response.keys, keys))
        });
        match checked {
            Ok((raw, keys)) => {
                self.failures = 0;
                self.refresh = Some(keys.refresh);
                let changed = self.last.as_ref() != Some(&raw);
                self.last = Some(raw);
                (Ok(changed.then_some(keys)), keys_refresh(self.refresh))
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                (Err(e), self.retry())
            }
        }
    }

    fn retry(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        FIRST_RETRY
            .saturating_mul(1 << doublings)
            .min(keys_refresh(self.refresh))
    }
}

fn keys_refresh(refresh: Option<Duration>) -> Duration {
    refresh.unwrap_or(DEFAULT_REFRESH)
}

/// One FetchKeys call to the signer on `socket`, bounded by [`FETCH_TIMEOUT`].
pub async fn fetch(mut client: Client, socket: &Path) -> Result<FetchKeysResponse, SignerError> {
    match tokio::time::timeout(FETCH_TIMEOUT, client.fetch_keys(FetchKeysRequest {})).await {
        Err(_) => Err(timeout(socket)),
        Ok(Err(status)) => Err(SignerError::Fetch {
            socket: socket.to_path_buf(),
            code: status.code(),
            message: status.message().to_string(),
        }),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}

/// The signer's key set, read once (`irsa issuer publish`): an unreachable signer or a set with nothing to
/// publish is an error.
pub async fn fetch_once(socket: &Path) -> Result<SignerKeys, SignerError> {
    let client = tokio::time::timeout(FETCH_TIMEOUT, irsa_externaljwt::connect(socket))
        .await
        .map_err(|_| timeout(socket))??;
    keys_from_response(&fetch(client, socket).await?)
}

fn timeout(socket: &Path) -> SignerError {
    SignerError::Timeout {
        socket: socket.to_path_buf(),
        after: FETCH_TIMEOUT,
    }
}

/// Fetches and publishes the key set of the signer on `socket` at the signer's pace until `shutdown`
/// completes; `on_published` runs after each published change (readiness). Errors keep the last good
/// documents.
pub async fn run(
    socket: PathBuf,
    publisher: Publisher,
    on_published: impl Fn() + Send,
    shutdown: impl Future<Output = ()>,
) {
    let source = Source {
        label: "signer",
        doing: "fetching the signer's keys",
    };
    // Dialled at the first fetch and again after a lost connection: the signer may start after the issuer,
    // or restart under it.
    let client = irsa_externaljwt::connect_lazy(&socket);
    let tracker = Mutex::new(Tracker::new());
    let metrics = publisher.metrics().clone();
    let poll = || {
        let client = client.clone();
        let (tracker, metrics, socket) = (&tracker, &metrics, &socket);
        async move {
            let fetched = fetch(client, socket).await;
            let (observed, wait) = tracker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .observe(fetched);
            let observed = observed.map(|new| {
                new.map(|keys| {
                    // Logged here, once per new key set: the publisher logs only when the documents change,
                    // and a refused key alone changes nothing.
                    for w in &keys.loaded.warnings {
                        tracing::warn!("{w}");
                    }
                    metrics.set_signer_keys_refused(keys.refused);
                    LoadedKeys {
                        keys: keys.loaded.keys,
                        warnings: Vec::new(),
                    }
                })
            });
            (observed, wait)
        }
    };
    poll_paced(&publisher, source, poll, on_published, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256_SPKI_PEM: &str = include_str!("../tests/fixtures/p256.pub");
    const P384_SPKI_PEM: &str = include_str!("../tests/fixtures/p384.pub");
    const RSA1024_SPKI_PEM: &str = include_str!("../tests/fixtures/rsa1024.pub");

    fn der(pem_text: &str) -> Vec<u8> {
        pem::parse(pem_text).unwrap().into_contents()
    }

    fn key(pem_text: &str) -> Key {
        let der = der(pem_text);
        Key {
            key_id: crate::keys::kid_of_spki_der(&der),
            key: der,
            exclude_from_oidc_discovery: false,
        }
    }

    fn response(keys: Vec<Key>, hint: i64) -> FetchKeysResponse {
        FetchKeysResponse {
            keys,
            data_timestamp: None,
            refresh_hint_seconds: hint,
        }
    }

    fn kids(keys: &SignerKeys) -> Vec<&str> {
        keys.loaded.keys.iter().map(PublicKey::kid).collect()
    }

    #[test]
    fn the_hint_is_bounded() {
        assert_eq!(refresh_pace(30), Duration::from_secs(30));
        assert_eq!(refresh_pace(1), MIN_REFRESH);
        assert_eq!(refresh_pace(86_400), MAX_REFRESH);
        assert_eq!(refresh_pace(i64::MAX), MAX_REFRESH);
        assert_eq!(refresh_pace(0), DEFAULT_REFRESH);
        assert_eq!(refresh_pace(-5), DEFAULT_REFRESH);
    }

    #[test]
    fn a_non_positive_hint_is_warned_about() {
        let keys = keys_from_response(&response(vec![key(P256_SPKI_PEM)], 0)).unwrap();
        assert_eq!(keys.refresh, DEFAULT_REFRESH);
        assert!(
            keys.loaded.warnings[0]
                .message
                .contains("refresh_hint_seconds is 0")
        );
    }

    #[test]
    fn publishes_the_keys_under_their_kids() {
        let (a, b) = (key(P256_SPKI_PEM), key(P384_SPKI_PEM));
        let keys =
            keys_from_response(&response(vec![a.clone(), b.clone(), a.clone()], 30)).unwrap();
        assert_eq!(kids(&keys), [a.key_id.as_str(), b.key_id.as_str()]);
        assert_eq!(keys.refresh, Duration::from_secs(30));
        assert!(keys.loaded.warnings.is_empty());
    }

    #[test]
    fn excluded_keys_are_not_published() {
        let mut legacy = key(P384_SPKI_PEM);
        legacy.exclude_from_oidc_discovery = true;
        let current = key(P256_SPKI_PEM);
        let keys =
            keys_from_response(&response(vec![legacy.clone(), current.clone()], 30)).unwrap();
        assert_eq!(kids(&keys), [current.key_id.as_str()]);
        assert_eq!(keys.excluded, 1);
        let only_legacy = keys_from_response(&response(vec![legacy], 30)).unwrap_err();
        assert!(
            only_legacy.to_string().contains("excluded"),
            "{only_legacy}"
        );
    }

    #[test]
    fn refused_keys_are_left_out_and_counted() {
        let small = key(RSA1024_SPKI_PEM);
        let current = key(P256_SPKI_PEM);
        let keys = keys_from_response(&response(vec![small.clone(), current.clone()], 30)).unwrap();
        assert_eq!(kids(&keys), [current.key_id.as_str()]);
        assert_eq!(keys.refused, 1);
        assert!(keys.loaded.warnings[0].source.contains(&small.key_id));
        assert!(keys.loaded.warnings[0].message.contains("1024"));

        let garbage = Key {
            key_id: "x".into(),
            key: b"not DER".to_vec(),
            exclude_from_oidc_discovery: false,
        };
        let none = keys_from_response(&response(vec![garbage, small], 30)).unwrap_err();
        assert!(matches!(none, SignerError::NoUsableKey(_)), "{none}");
        assert!(none.to_string().contains("1024"), "{none}");
    }

    #[test]
    fn an_empty_set_is_an_error() {
        let e = keys_from_response(&response(vec![], 30)).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn a_kid_mismatch_refuses_the_set_and_names_both() {
        let mut wrong = key(P256_SPKI_PEM);
        let computed = wrong.key_id.clone();
        wrong.key_id = "signer-kid".into();
        let e = keys_from_response(&response(vec![key(P384_SPKI_PEM), wrong], 30)).unwrap_err();
        assert!(matches!(e, SignerError::KidMismatch { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("signer-kid") && text.contains(&computed),
            "{text}"
        );
    }

    #[test]
    fn the_tracker_publishes_changes_once_and_backs_off_on_errors() {
        let mut tracker = Tracker::new();
        let unreachable = || SignerError::Fetch {
            socket: "s".into(),
            code: tonic::Code::Unavailable,
            message: "down".into(),
        };
        // Before any answer, retries double from FIRST_RETRY up to the default pace.
        let waits: Vec<Duration> = (0..8)
            .map(|_| {
                let (r, wait) = tracker.observe(Err(unreachable()));
                assert!(r.is_err());
                wait
            })
            .collect();
        assert_eq!(waits[..3], [1, 2, 4].map(Duration::from_secs));
        assert_eq!(waits[7], DEFAULT_REFRESH);

        let first = response(vec![key(P256_SPKI_PEM)], 10);
        let (r, wait) = tracker.observe(Ok(first.clone()));
        assert_eq!(r.unwrap().unwrap().loaded.keys.len(), 1);
        assert_eq!(wait, Duration::from_secs(10));
        // The same set again: nothing to publish.
        let (r, _) = tracker.observe(Ok(first.clone()));
        assert!(r.unwrap().is_none());

        // Failures after a success back off up to the signer's pace, and start over after a success.
        let waits: Vec<Duration> = (0..6)
            .map(|_| tracker.observe(Err(unreachable())).1)
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10].map(Duration::from_secs));
        let (r, _) = tracker.observe(Ok(first.clone()));
        assert!(r.unwrap().is_none(), "the set published before the outage");
        assert_eq!(
            tracker.observe(Err(unreachable())).1,
            FIRST_RETRY,
            "reset by the success"
        );

        // A refused set is an error and not remembered: the published set is still `first`.
        let mut bad = key(P384_SPKI_PEM);
        bad.key_id = "wrong".into();
        let (r, _) = tracker.observe(Ok(response(vec![bad], 10)));
        assert!(matches!(r, Err(SignerError::KidMismatch { .. })));
        let (r, _) = tracker.observe(Ok(first));
        assert!(r.unwrap().is_none());

        let (r, _) = tracker.observe(Ok(response(vec![key(P384_SPKI_PEM)], 10)));
        assert!(r.unwrap().is_some(), "a new set is published");
    }
}
