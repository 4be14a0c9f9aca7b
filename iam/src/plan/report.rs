//! The report around a plan, the same for both commands: the warnings, what was checked first (the
//! preflight of `associate-oidc-provider`), the plan, and whether this was a dry run.

use std::fmt::Write as _;

use irsa_core::IssuerUrl;
use serde_json::{Map, Value};

use super::Plan;

/// What a run found and did besides its plan: the part of the report both commands share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Legal but suspicious findings.
    pub warnings: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Whether anything was changed (after a race, with the plan that was applied).
    pub applied: bool,
}

/// A command's report, printed for people (`--output text`) or for programs (`--output json`).
pub trait Report {
    /// The report for people.
    fn render_text(&self) -> String;

    /// The report for programs.
    fn to_json(&self) -> Value;
}

/// The issuer URL's warnings (the rules every irsa command shares), as report lines.
pub fn url_warnings(url: &IssuerUrl) -> Vec<String> {
    url.warnings()
        .into_iter()
        .map(|w| format!("issuer URL {:?}: {w}", url.as_str()))
        .collect()
}

/// The report for people: one `warning:` line each, then `checked` (lines, possibly none), then the
/// plan, then a reminder that a dry run with changes changed nothing.
pub fn render_text(outcome: &Outcome, checked: &str, plan: &impl Plan) -> String {
    let mut out = String::new();
    for w in &outcome.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push_str(checked);
    out.push_str(&plan.render_text());
    if outcome.dry_run && plan.has_changes() {
        let _ = writeln!(out, "dry run: nothing changed");
    }
    out
}

/// The report for programs: the plan under `plan_key`, the warnings, `dry_run` and `applied`, plus
/// the command's own `extra` fields.
pub fn to_json(
    outcome: &Outcome,
    plan_key: &str,
    plan: &impl Plan,
    extra: impl IntoIterator<Item = (&'static str, Value)>,
) -> Value {
    let mut v = Map::new();
    for (k, x) in extra {
        v.insert(k.to_owned(), x);
    }
    v.insert(plan_key.to_owned(), plan.to_json());
    v.insert("warnings".to_owned(), outcome.warnings.clone().into());
    v.insert("dry_run".to_owned(), outcome.dry_run.into());
    v.insert("applied".to_owned(), outcome.applied.into());
    Value::Object(v)
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::json;

    use super::*;

    #[derive(Serialize)]
    struct Fake {
        changes: bool,
    }

    impl Plan for Fake {
        fn has_changes(&self) -> bool {
            self.changes
        }
        fn render_text(&self) -> String {
            "plan\n".to_owned()
        }
    }

    #[test]
    fn text_and_json() {
        let outcome = &Outcome {
            warnings: vec!["w1".to_owned()],
            dry_run: true,
            applied: false,
        };
        assert_eq!(
            render_text(outcome, "checked\n", &Fake { changes: true }),
            "warning: w1\nchecked\nplan\ndry run: nothing changed\n"
        );
        assert_eq!(
            render_text(outcome, "", &Fake { changes: false }),
            "warning: w1\nplan\n"
        );
        assert_eq!(
            url_warnings(&IssuerUrl::parse("https://h:8443/", false).unwrap()),
            [
                "issuer URL \"https://h:8443/\": the URL has a port: AWS IAM refuses OIDC provider URLs with a port (fine for emulators)",
                "issuer URL \"https://h:8443/\": the URL ends with '/': the apiserver's --service-account-issuer and the discovery document must end with '/' too",
            ]
        );
        assert_eq!(
            to_json(outcome, "p", &Fake { changes: true }, [("extra", json!(1))]),
            json!({"extra": 1, "p": {"changes": true}, "warnings": ["w1"], "dry_run": true, "applied": false})
        );
    }
}
