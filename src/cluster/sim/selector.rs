//! Label selectors (string form and `LabelSelector` objects) and field selectors.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as LabelSelectorObject;
use kube::core::{Expression, Selector, SelectorExt};
use serde::Deserialize;
use serde_json::Value;

/// A parsed label selector (all requirements must hold; empty matches everything).
/// Matching is kube's own ([`kube::core::Selector`]), so the simulated API server and
/// the engine's planner agree on every operator; only the query-string form is parsed here
/// (kube-core builds that form but does not read it).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(pub Selector);

fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn set_values(s: &str) -> Result<BTreeSet<String>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or(format!("expected a parenthesised value list, got {s:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    /// Parses the query-string form (`app=web,tier!=db,env in (a,b),!legacy`).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut exprs = Vec::new();
        for part in split_top(s) {
            exprs.push(if let Some(k) = part.strip_prefix('!') {
                Expression::DoesNotExist(k.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Expression::NotEqual(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Expression::Equal(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Expression::NotIn(k.trim().into(), set_values(v)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Expression::In(k.trim().into(), set_values(v)?)
            } else if part.contains(' ') || part.contains('(') {
                return Err(format!("unable to parse requirement: {part:?}"));
            } else {
                Expression::Exists(part)
            });
        }
        Ok(Self(exprs.into_iter().collect()))
    }

    /// From a `metav1.LabelSelector` JSON object. `None`/null selects nothing (as for
    /// PDBs); `{}` selects everything. A selector kube cannot read (an unknown operator,
    /// `In` without values) selects nothing too: admission ([`Self::check`]) keeps such
    /// objects out of the store, so only node-affinity terms (`Gt`, `Lt`) reach here.
    pub(crate) fn from_object(v: Option<&Value>) -> Option<Self> {
        let v = v.filter(|v| v.is_object())?;
        Self::read(v).ok()
    }

    /// Admission: why `v` (a `metav1.LabelSelector` JSON object) is not a valid selector.
    pub(crate) fn check(v: &Value) -> Result<(), String> {
        Self::read(v).map(|_| ())
    }

    fn read(v: &Value) -> Result<Self, String> {
        // Read from the borrowed value: this runs for every PDB and spread constraint per
        // machinery tick, so no copy of the JSON.
        let ls =
            LabelSelectorObject::deserialize(v).map_err(|e| format!("invalid selector: {e}"))?;
        let operators: Vec<String> = ls
            .match_expressions
            .iter()
            .flatten()
            .map(|e| e.operator.clone())
            .collect();
        Selector::try_from(ls).map(Self).map_err(|e| {
            format!(
                "{e} (operators {operators:?}; valid: In, NotIn with values; Exists, DoesNotExist)"
            )
        })
    }

    /// Whether the labels of `obj` (`metadata.labels`) match.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        self.matches_labels(labels)
    }

    /// Whether a labels map matches.
    pub(crate) fn matches_labels(&self, labels: Option<&Value>) -> bool {
        let map: BTreeMap<String, String> = labels
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        self.0.matches(&map)
    }
}

/// A parsed field selector: `(path, equal?, value)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `spec.nodeName=n1,status.phase!=Failed`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, true, v)
            } else {
                return Err(format!("invalid field selector: {part:?}"));
            };
            out.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(Self(out))
    }

    /// Whether `obj` matches (missing fields compare as "").
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut cur = Some(obj);
            for seg in path.split('.') {
                cur = cur.and_then(|c| c.get(seg));
            }
            let have = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (have == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_forms() {
        let pod = json!({"metadata":{"labels":{"app":"web","env":"prod"}}});
        for (s, want) in [
            ("app=web", true),
            ("app==web,env=prod", true),
            ("app!=web", false),
            ("env in (dev, prod)", true),
            ("env notin (prod)", false),
            ("app", true),
            ("!app", false),
            ("!legacy", true),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(s).unwrap().matches(&pod), want, "{s}");
        }
    }

    #[test]
    fn label_selector_object() {
        let sel = LabelSelector::from_object(Some(&json!({"matchLabels":{"app":"web"},
            "matchExpressions":[{"key":"env","operator":"In","values":["prod"]}]})))
        .unwrap();
        assert!(sel.matches(&json!({"metadata":{"labels":{"app":"web","env":"prod"}}})));
        assert!(!sel.matches(&json!({"metadata":{"labels":{"app":"web"}}})));
        assert!(LabelSelector::from_object(None).is_none());
        // The old sim read an unknown operator as DoesNotExist; kube's reading refuses it.
        let gt = json!({"matchExpressions":[{"key":"tier","operator":"Gt","values":["1"]}]});
        assert!(LabelSelector::from_object(Some(&gt)).is_none());
        let why = LabelSelector::check(&gt).unwrap_err();
        assert!(
            why.contains("\"Gt\"") && why.contains("DoesNotExist"),
            "{why}"
        );
    }

    #[test]
    fn field_selector() {
        let pod =
            json!({"metadata":{"name":"a"},"spec":{"nodeName":"n1"},"status":{"phase":"Running"}});
        let f = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert!(f.matches(&pod));
        assert!(!FieldSelector::parse("metadata.name=b")
            .unwrap()
            .matches(&pod));
    }
}
