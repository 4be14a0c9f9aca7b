//! Waiting for a condition that a server reaches on its own time (a reload, a renewal, a process exiting):
//! look, and look again every interval until it holds or the deadline passes.
//!
//! On timeout the error names the condition and what the last look saw, so a failing test says "served
//! [a0], expected [b0, b1]" rather than only "timed out".

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// What one look at a condition found.
pub enum Check<T> {
    /// The condition holds; the value is what the wait returns.
    Ready(T),
    /// Not yet: what was seen instead, for the message should the wait time out.
    NotYet(String),
}

impl Check<()> {
    /// Ready when `holds`; otherwise not yet, with `seen()` describing what was seen.
    pub fn ready_if(holds: bool, seen: impl FnOnce() -> String) -> Self {
        if holds {
            Check::Ready(())
        } else {
            Check::NotYet(seen())
        }
    }
}

/// A condition did not hold within its timeout.
#[derive(thiserror::Error)]
#[error("timed out after {timeout:?} waiting until {what}; last seen: {last}")]
pub struct TimedOut {
    /// The condition, as the caller phrased it.
    pub what: String,
    /// How long it was waited for.
    pub timeout: Duration,
    /// What the last look saw.
    pub last: String,
}

// `.unwrap()` and `.expect()` print `Debug`: make that the readable message, not a struct dump.
impl fmt::Debug for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How long to wait for a condition, and how often to look.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    timeout: Duration,
    interval: Duration,
}

impl Wait {
    /// Waits up to `timeout`, looking every 50 ms (quick enough for in-process servers).
    pub fn up_to(timeout: Duration) -> Self {
        Self {
            timeout,
            interval: Duration::from_millis(50),
        }
    }

    /// Looks every `interval` instead: for probes that cost something (a process spawned, an apiserver call).
    pub fn every(self, interval: Duration) -> Self {
        Self { interval, ..self }
    }

    /// Looks with `probe` until it is ready, and returns its value; `what` names the condition for the error.
    pub async fn until<T, F, Fut>(self, what: &str, mut probe: F) -> Result<T, TimedOut>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Check<T>>,
    {
        self.try_until(what, || {
            let look = probe();
            async move { Ok(look.await) }
        })
        .await
    }

    /// As [`Wait::until`], for a probe that can also fail outright: its error ends the wait at once (a peer
    /// that exited will not become ready), and a timeout becomes an `E` too.
    pub async fn try_until<T, E, F, Fut>(self, what: &str, mut probe: F) -> Result<T, E>
    where
        E: From<TimedOut>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Check<T>, E>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            match probe().await? {
                Check::Ready(value) => return Ok(value),
                Check::NotYet(last) if Instant::now() >= deadline => {
                    return Err(self.timed_out(what, last).into());
                }
                Check::NotYet(_) => tokio::time::sleep(self.interval).await,
            }
        }
    }

    /// As [`Wait::until`], blocking the thread between looks: for code outside any async runtime.
    pub fn until_blocking<T>(
        self,
        what: &str,
        mut probe: impl FnMut() -> Check<T>,
    ) -> Result<T, TimedOut> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match probe() {
                Check::Ready(value) => return Ok(value),
                Check::NotYet(last) if Instant::now() >= deadline => {
                    return Err(self.timed_out(what, last));
                }
                Check::NotYet(_) => std::thread::sleep(self.interval),
            }
        }
    }

    fn timed_out(self, what: &str, last: String) -> TimedOut {
        TimedOut {
            what: what.to_owned(),
            timeout: self.timeout,
            last,
        }
    }
}

/// Waits up to `timeout`, looking every 50 ms, until `probe` is ready; see [`Wait`] for other intervals.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, probe: F) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    Wait::up_to(timeout).until(what, probe).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn returns_the_value_once_ready() {
        let looks = Cell::new(0);
        let value = wait_until(Duration::from_secs(5), "the third look", || {
            looks.set(looks.get() + 1);
            let n = looks.get();
            async move {
                if n == 3 {
                    Check::Ready(n)
                } else {
                    Check::NotYet(format!("look {n}"))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn a_timeout_names_the_condition_and_the_last_look() {
        let err = Wait::up_to(Duration::from_millis(30))
            .every(Duration::from_millis(5))
            .until("pigs fly", || async {
                Check::<()>::ready_if(false, || "pigs on the ground".into())
            })
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:?}"),
            "timed out after 30ms waiting until pigs fly; last seen: pigs on the ground"
        );
    }

    #[derive(Debug, PartialEq)]
    enum Failure {
        Broken,
        Late(String),
    }

    impl From<TimedOut> for Failure {
        fn from(err: TimedOut) -> Self {
            Failure::Late(err.to_string())
        }
    }

    #[tokio::test]
    async fn a_failing_probe_ends_the_wait_at_once() {
        let looks = Cell::new(0);
        let started = Instant::now();
        let err = Wait::up_to(Duration::from_secs(30))
            .try_until("never", || {
                looks.set(looks.get() + 1);
                async { Err::<Check<()>, _>(Failure::Broken) }
            })
            .await
            .unwrap_err();
        assert_eq!(err, Failure::Broken);
        assert_eq!(looks.get(), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn blocking_waits_look_until_the_deadline() {
        let looks = Cell::new(0);
        let err = Wait::up_to(Duration::from_millis(40))
            .every(Duration::from_millis(10))
            .until_blocking("never", || {
                looks.set(looks.get() + 1);
                Check::<()>::NotYet(format!("{} looks", looks.get()))
            })
            .unwrap_err();
        assert!(looks.get() >= 3, "{err}");
        assert!(
            err.to_string()
                .ends_with(&format!("last seen: {} looks", looks.get()))
        );
    }
}
