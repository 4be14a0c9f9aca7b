//! The role ARN rules of `irsa-core` (a ServiceAccount's `role-arn` annotation is user input on the
//! admission path): IAM's length caps, the partition, and the default `--role-arn-pattern`.
//!
//! Asserts, beyond "no panic": an ARN the length check accepts is within IAM's caps, counted independently
//! here; the partition of a built ARN is the one it was built with.
#![no_main]

use std::sync::OnceLock;

use irsa_core::Partition;
use irsa_core::arn::{
    DEFAULT_ROLE_ARN_PATTERN, MAX_ROLE_ARN_LEN, MAX_ROLE_PATH_LEN, check_role_arn_len, role_arn,
};
use libfuzzer_sys::fuzz_target;
use regex::Regex;

fn pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN
        .get_or_init(|| Regex::new(DEFAULT_ROLE_ARN_PATTERN).expect("the default pattern compiles"))
}

/// The length in characters of the role path (`/a/b/` of `role/a/b/name`, both slashes counted), found
/// another way than the crate does.
fn role_path_len(arn: &str) -> Option<usize> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let rest = resource.strip_prefix("role/")?;
    let dirs = &rest[..rest.rfind('/').map_or(0, |i| i + 1)];
    Some(1 + dirs.chars().count())
}

fuzz_target!(|data: &[u8]| {
    let Ok(arn) = std::str::from_utf8(data) else {
        return;
    };
    let within = check_role_arn_len(arn).is_ok();
    if within {
        assert!(arn.chars().count() <= MAX_ROLE_ARN_LEN);
        if let Some(len) = role_path_len(arn) {
            assert!(
                len <= MAX_ROLE_PATH_LEN,
                "a role path of {len} characters passed"
            );
        }
    }
    let _ = pattern().is_match(arn);
    let _ = Partition::of_arn(arn);
    for partition in [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov] {
        let built = role_arn(partition, "123456789012", arn);
        assert_eq!(Partition::of_arn(&built), Ok(partition));
    }
});
