//! Durations on the command line: `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds.

use std::time::Duration;

/// Parses a positive duration; a clap `value_parser`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let duration = parse_allowing_zero(text)?;
    if duration.is_zero() {
        return Err(format!("{:?}: must be more than zero", text.trim()));
    }
    Ok(duration)
}

/// Parses a duration that may be zero (a delay that can be switched off); a clap `value_parser`.
pub fn parse_allowing_zero(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration like 500ms, 5s, 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_only_where_allowed() {
        assert_eq!(parse_allowing_zero("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_allowing_zero("0"), Ok(Duration::ZERO));
        assert_eq!(parse_allowing_zero("5s"), Ok(Duration::from_secs(5)));
        for bad in ["abc", "-1s", "", "1.5s"] {
            assert!(parse_allowing_zero(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn units_and_errors() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse(" 3 "), Ok(Duration::from_secs(3)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["abc", "5d", "-1s", "0s", "", "1.5s"] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
