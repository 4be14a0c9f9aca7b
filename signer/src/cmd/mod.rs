//! The `irsa signer` commands.

pub mod args;
pub mod rotate;
pub mod serve;
pub mod status;

use std::time::{Duration, SystemTime};

/// An instant as the commands print it: RFC 3339 in UTC, to the second.
pub(crate) fn utc(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .and_then(|t| jiff::Timestamp::from_second(t.as_second()))
        .map_or_else(|_| format!("{at:?}"), |t| t.to_string())
}

/// A duration as the commands print it: `1h 5m`, to the second.
pub(crate) fn human(duration: Duration) -> String {
    let seconds = Duration::from_secs(duration.as_secs());
    jiff::SignedDuration::try_from(seconds)
        .map_or_else(|_| format!("{seconds:?}"), |d| format!("{d:#}"))
}
