//! Edits of a role's trust policy for `irsa migrate`, as pure functions on the JSON document: add the
//! web-identity statements a role lacks (keeping every other statement), and take a node role out of it.
//!
//! Unlike `create-role`, which owns its role's whole trust policy, `migrate` edits roles other tools made:
//! it only ever appends statements, or removes the principal it was told to remove.

use serde_json::{Map, Value};

use crate::trust_policy::normalize;

/// The statements of a document, whether IAM spelled `Statement` as a list or as one object.
pub fn statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Whether the document already grants `statement`: an equal statement once both are normalised (IAM's
/// respellings: one-element lists, key order) and their `Sid`s ignored.
pub fn has_statement(doc: &Value, statement: &Value) -> bool {
    let wanted = comparable(statement);
    statements(doc).iter().any(|s| comparable(s) == wanted)
}

fn comparable(statement: &Value) -> Value {
    let mut statement = statement.clone();
    if let Some(map) = statement.as_object_mut() {
        map.remove("Sid");
    }
    normalize(statement)
}

/// The document with `add` appended where missing; `Version` defaulted, every existing statement kept as
/// it was.
pub fn with_statements(doc: &Value, add: &[Value]) -> Value {
    let mut out = as_object(doc);
    let mut list = statements(doc);
    for statement in add {
        if !list.iter().any(|s| comparable(s) == comparable(statement)) {
            list.push(statement.clone());
        }
    }
    out.insert("Statement".to_owned(), Value::Array(list));
    Value::Object(out)
}

/// The document without `principal` among the `AWS` principals of its statements: a statement whose only
/// principal it is goes; a statement that names others too loses that entry. Also returns the statements
/// as they were before they changed (what the report shows as removed).
pub fn without_aws_principal(doc: &Value, principal: &str) -> (Value, Vec<Value>) {
    let mut out = as_object(doc);
    let mut kept = Vec::new();
    let mut changed = Vec::new();
    for statement in statements(doc) {
        match strip_principal(&statement, principal) {
            Stripped::Untouched => kept.push(statement),
            Stripped::Emptied => changed.push(statement),
            Stripped::Narrowed(narrowed) => {
                changed.push(statement);
                kept.push(narrowed);
            }
        }
    }
    out.insert("Statement".to_owned(), Value::Array(kept));
    (Value::Object(out), changed)
}

enum Stripped {
    Untouched,
    /// The principal was the statement's only one: the statement goes.
    Emptied,
    /// The statement keeps its other principals.
    Narrowed(Value),
}

fn strip_principal(statement: &Value, principal: &str) -> Stripped {
    let Some(principals) = statement.get("Principal").and_then(Value::as_object) else {
        return Stripped::Untouched;
    };
    let aws: Vec<&str> = match principals.get("AWS") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => return Stripped::Untouched,
    };
    if !aws.contains(&principal) {
        return Stripped::Untouched;
    }
    let rest: Vec<Value> = aws
        .into_iter()
        .filter(|p| *p != principal)
        .map(|p| Value::String(p.to_owned()))
        .collect();
    let mut principals = principals.clone();
    if rest.is_empty() {
        principals.remove("AWS");
    } else {
        principals.insert("AWS".to_owned(), Value::Array(rest));
    }
    if principals.is_empty() {
        return Stripped::Emptied;
    }
    let mut narrowed = statement.clone();
    narrowed["Principal"] = Value::Object(principals);
    Stripped::Narrowed(narrowed)
}

fn as_object(doc: &Value) -> Map<String, Value> {
    let mut out = doc.as_object().cloned().unwrap_or_default();
    out.entry("Version")
        .or_insert_with(|| Value::String("2012-10-17".to_owned()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn web(sub: &str) -> Value {
        json!({"Effect": "Allow",
               "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.example.com"},
               "Action": "sts:AssumeRoleWithWebIdentity",
               "Condition": {"StringEquals": {"oidc.example.com:sub": sub, "oidc.example.com:aud": "sts.amazonaws.com"}}})
    }

    fn node() -> Value {
        json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/nodes"},
               "Action": "sts:AssumeRole"})
    }

    #[test]
    fn statements_are_appended_once_and_the_rest_kept() {
        // IAM's one-object spelling of Statement.
        let doc = json!({"Version": "2012-10-17", "Statement": node()});
        let sub = "system:serviceaccount:team-a:app";
        assert!(!has_statement(&doc, &web(sub)));
        let once = with_statements(&doc, &[web(sub), web(sub)]);
        assert_eq!(statements(&once), [node(), web(sub)]);
        assert!(has_statement(&once, &web(sub)));
        assert_eq!(with_statements(&once, &[web(sub)]), once);
        // A respelled copy with a Sid counts as present.
        let mut respelled = web(sub);
        respelled["Sid"] = "kept".into();
        respelled["Action"] = json!(["sts:AssumeRoleWithWebIdentity"]);
        let doc = json!({"Statement": [respelled]});
        assert!(has_statement(&doc, &web(sub)));
        assert!(!has_statement(
            &doc,
            &web("system:serviceaccount:team-a:other")
        ));
        assert_eq!(
            with_statements(&json!({}), &[]),
            json!({"Version": "2012-10-17", "Statement": []})
        );
    }

    #[test]
    fn the_node_principal_is_removed_and_nothing_else() {
        let sub = "system:serviceaccount:team-a:app";
        let shared = json!({"Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::111122223333:role/nodes", "arn:aws:iam::111122223333:role/ci"]},
            "Action": "sts:AssumeRole"});
        let doc = json!({"Version": "2012-10-17", "Statement": [node(), web(sub), shared.clone()]});
        let (pruned, removed) = without_aws_principal(&doc, "arn:aws:iam::111122223333:role/nodes");
        assert_eq!(removed, [node(), shared]);
        assert_eq!(
            statements(&pruned),
            [
                web(sub),
                json!({"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:role/ci"]},
                       "Action": "sts:AssumeRole"})
            ]
        );
        let (again, removed) =
            without_aws_principal(&pruned, "arn:aws:iam::111122223333:role/nodes");
        assert_eq!((again, removed), (pruned, vec![]));
        // A principal with a Service beside it keeps the Service.
        let mixed = json!({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/nodes", "Service": "ec2.amazonaws.com"}}});
        let (pruned, removed) =
            without_aws_principal(&mixed, "arn:aws:iam::111122223333:role/nodes");
        assert_eq!(removed.len(), 1);
        assert_eq!(
            statements(&pruned)[0]["Principal"],
            json!({"Service": "ec2.amazonaws.com"})
        );
    }
}
