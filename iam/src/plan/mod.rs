//! What to change, as pure data: desired state against what IAM (and the cluster) hold, and how to
//! say it in text and JSON. No I/O here; `associate` and `create_role` read, plan, print, apply.
//!
//! - [`provider`]: the OIDC provider plan of `associate-oidc-provider`;
//! - [`role`]: the role (and ServiceAccount) plan of `create-role`;
//! - [`report`]: the report both commands print around their plan.

pub mod provider;
pub mod report;
pub mod role;

use serde::Serialize;
use serde_json::Value;

pub use provider::{
    DesiredProvider, ExistingProvider, ProviderChange, ProviderPlan, ProviderUpdate,
};
pub use role::{RolePlan, ServiceAccountChange, ServiceAccountPlan, TrustChange};

/// A plan a command prints and then applies (or not, on a dry run).
pub trait Plan: Serialize {
    /// Whether applying the plan would change anything.
    fn has_changes(&self) -> bool;

    /// The plan for people: what exists, then one line per change, or "no changes".
    fn render_text(&self) -> String;

    /// The plan for programs: its fields, plus `changes` (whether applying it changes anything).
    fn to_json(&self) -> Value {
        // Serializing plain data cannot fail.
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["changes"] = self.has_changes().into();
        v
    }
}

/// `items` without repeats, first occurrence first: a flag given twice is asked for once.
pub(crate) fn dedup(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

/// `a, b, c`, or `(none)`.
pub(crate) fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_the_first_of_each() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(dedup(&s(&["b", "a", "b", "c", "a"])), s(&["b", "a", "c"]));
        assert_eq!(list(&[]), "(none)");
        assert_eq!(list(&s(&["a", "b"])), "a, b");
    }
}
