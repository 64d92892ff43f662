//! Label selectors (`matchLabels` + `matchExpressions`) as an owned, pure value.

use std::collections::BTreeMap;

/// One `matchExpressions` requirement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Requirement {
    /// `key In (values)`.
    In(String, Vec<String>),
    /// `key NotIn (values)`; also true when the key is absent.
    NotIn(String, Vec<String>),
    /// `key Exists`.
    Exists(String),
    /// `key DoesNotExist`.
    DoesNotExist(String),
}

/// A parsed label selector. The empty selector matches everything (policy/v1 semantics);
/// a PDB without a selector is represented by `None` at the call site and matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Selector {
    /// `matchLabels`.
    pub labels: BTreeMap<String, String>,
    /// `matchExpressions`.
    pub requirements: Vec<Requirement>,
}

/// A selector with an operator the planner does not know; names the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown label selector operator {operator:?} on key {key:?}")]
pub struct SelectorError {
    /// The key of the requirement.
    pub key: String,
    /// The operator as found.
    pub operator: String,
}

impl Selector {
    /// Builds from the k8s-openapi type.
    pub fn from_k8s(
        s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) -> Result<Self, SelectorError> {
        let mut out = Selector {
            labels: s.match_labels.clone().unwrap_or_default(),
            requirements: Vec::new(),
        };
        for e in s.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            let r = match e.operator.as_str() {
                "In" => Requirement::In(e.key.clone(), values),
                "NotIn" => Requirement::NotIn(e.key.clone(), values),
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                other => {
                    return Err(SelectorError {
                        key: e.key.clone(),
                        operator: other.to_string(),
                    })
                }
            };
            out.requirements.push(r);
        }
        Ok(out)
    }

    /// Whether `labels` satisfy every term.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.requirements.iter().all(|r| match r {
                Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
                Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
                Requirement::Exists(k) => labels.contains_key(k),
                Requirement::DoesNotExist(k) => !labels.contains_key(k),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn table() {
        let sel = Selector::from_k8s(&LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["a", "b"]),
                req("canary", "DoesNotExist", &[]),
                req("env", "NotIn", &["dev"]),
            ]),
        })
        .unwrap();
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("app", "web"), ("tier", "a")], true),
            (&[("app", "web"), ("tier", "a"), ("env", "prod")], true),
            (&[("app", "web"), ("tier", "a"), ("env", "dev")], false),
            (&[("app", "web"), ("tier", "c")], false),
            (&[("app", "web"), ("tier", "a"), ("canary", "")], false),
            (&[("app", "db"), ("tier", "a")], false),
        ];
        for (l, want) in cases {
            assert_eq!(sel.matches(&labels(l)), *want, "{l:?}");
        }
        assert!(Selector::default().matches(&labels(&[])));
    }

    #[test]
    fn unknown_operator_is_named() {
        let e = Selector::from_k8s(&LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![req("k", "Gt", &["1"])]),
        })
        .unwrap_err();
        assert!(e.to_string().contains("Gt"));
    }
}
