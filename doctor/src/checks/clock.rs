//! Clocks: this machine, the apiserver (its Date header and the token's `iat`) and STS must agree, or STS
//! sees tokens from the future or already expired.

use crate::finding::{CheckId, Finding};

/// Skew above this many seconds is a warning.
pub const WARN_SECONDS: i64 = 30;
/// Skew above this many seconds is a failure: STS refuses tokens issued in its future, and AWS refuses
/// signatures more than five minutes off.
pub const FAIL_SECONDS: i64 = 300;

/// The clock readings, in seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readings {
    /// This machine, when the token was minted.
    pub local: i64,
    /// The apiserver's Date header.
    pub apiserver: Option<i64>,
    /// The freshly minted token's `iat` (the apiserver's clock, when it signed).
    pub token_iat: Option<i64>,
    /// STS's Date header.
    pub sts: Option<i64>,
}

/// `clock.skew`: the largest difference among the readings, with the one that is off named.
pub fn skew(r: &Readings) -> Finding {
    let id = CheckId::ClockSkew;
    // Every reading against the reference STS uses (its own clock), else this machine's.
    let (reference, reference_name) = match r.sts {
        Some(s) => (s, "STS"),
        None => (r.local, "this machine"),
    };
    let mut worst: Option<(&str, i64)> = None;
    for (name, reading) in [
        ("this machine", Some(r.local)),
        ("the apiserver", r.apiserver),
        (
            "the token's iat (the apiserver's signing clock)",
            r.token_iat,
        ),
    ] {
        let Some(reading) = reading else { continue };
        let off = reading - reference;
        if worst.is_none_or(|(_, w)| off.abs() > w.abs()) {
            worst = Some((name, off));
        }
    }
    let Some((name, off)) = worst else {
        return Finding::skipped(id, "no clock readings");
    };
    let describe = format!(
        "{name} is {}s {} {reference_name}",
        off.abs(),
        if off > 0 { "ahead of" } else { "behind" }
    );
    let fix = "sync the clocks with NTP (chronyc tracking; timedatectl set-ntp true) on the apiserver's host and this machine";
    if off.abs() > FAIL_SECONDS {
        Finding::fail(
            id,
            format!(
                "{describe}: STS refuses tokens issued in its future and signatures off by more than 5 minutes"
            ),
            fix,
        )
    } else if off.abs() > WARN_SECONDS {
        Finding::warn(id, describe, fix)
    } else {
        Finding::pass(id, format!("clocks agree within {}s", off.abs().max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Status;

    #[test]
    fn agreeing_clocks_pass() {
        let r = Readings {
            local: 1000,
            apiserver: Some(1001),
            token_iat: Some(999),
            sts: Some(1000),
        };
        assert_eq!(skew(&r).status, Status::Pass);
        assert_eq!(
            skew(&Readings {
                local: 5,
                ..Readings::default()
            })
            .status,
            Status::Pass
        );
    }

    #[test]
    fn a_token_minted_with_a_skewed_clock_fails() {
        let r = Readings {
            local: 1000,
            apiserver: Some(1000),
            token_iat: Some(1000 + 3600),
            sts: Some(1000),
        };
        let f = skew(&r);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.what.contains("token's iat") && f.what.contains("3600s ahead of STS"),
            "{}",
            f.what
        );
    }

    #[test]
    fn a_fake_sts_date_is_seen() {
        let r = Readings {
            local: 1000,
            apiserver: Some(1000),
            token_iat: Some(1000),
            sts: Some(1000 - 600),
        };
        let f = skew(&r);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.what.contains("600s ahead of STS"), "{}", f.what);
        let r = Readings {
            local: 1000,
            apiserver: Some(1060),
            token_iat: None,
            sts: None,
        };
        assert_eq!(skew(&r).status, Status::Warn);
    }
}
