//! A pure description of marker changes on one Node, and its rendering as a JSON merge
//! patch for the API server. Taints have no merge key, so the patch carries the whole
//! list (computed from the node as read) together with `metadata.resourceVersion`:
//! a concurrent writer makes the patch fail with 409 instead of losing a taint.

use super::snapshot::{NodeInfo, TaintInfo};
use k8s_openapi::api::core::v1::Taint;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What to do with one taint key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaintChange {
    /// Ensure the taint `key` exists with this effect (replacing another effect).
    Set { key: String, effect: String },
    /// Ensure no taint with `key` exists.
    Remove { key: String },
}

/// Marker changes on a Node. `None` values remove the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePatch {
    /// Annotation changes.
    pub(crate) annotations: BTreeMap<String, Option<String>>,
    /// Label changes.
    pub(crate) labels: BTreeMap<String, Option<String>>,
    /// Taint changes, applied in order.
    pub(crate) taints: Vec<TaintChange>,
    /// New `spec.unschedulable`, if it changes.
    pub(crate) unschedulable: Option<bool>,
}

impl NodePatch {
    /// Whether the patch changes nothing on `node`.
    pub(crate) fn is_noop_for(&self, node: &NodeInfo) -> bool {
        let mut n = node.clone();
        self.apply_to(&mut n);
        n == *node
    }

    /// Applies the patch to an owned node view (what the server will store).
    pub fn apply_to(&self, node: &mut NodeInfo) {
        for (map, changes) in [
            (&mut node.annotations, &self.annotations),
            (&mut node.labels, &self.labels),
        ] {
            for (k, v) in changes {
                match v {
                    Some(v) => map.insert(k.clone(), v.clone()),
                    None => map.remove(k),
                };
            }
        }
        node.taints = self.taints_after(&node.taints);
        if let Some(u) = self.unschedulable {
            node.unschedulable = u;
        }
    }

    /// The taint list after the changes.
    pub(crate) fn taints_after(&self, current: &[TaintInfo]) -> Vec<TaintInfo> {
        let mut out = current.to_vec();
        for c in &self.taints {
            match c {
                TaintChange::Set { key, effect } => {
                    out.retain(|t| t.key != *key);
                    out.push(TaintInfo {
                        key: key.clone(),
                        value: None,
                        effect: effect.clone(),
                    });
                }
                TaintChange::Remove { key } => out.retain(|t| t.key != *key),
            }
        }
        out
    }

    /// JSON merge patch (`application/merge-patch+json`) against `node` as read at
    /// `resource_version`.
    pub(crate) fn to_merge_patch(&self, node: &NodeInfo, resource_version: Option<&str>) -> Value {
        // Indexing a missing key of an object inserts it (a `spec` only when it changes).
        let mut patch = json!({"metadata": {}});
        if let Some(rv) = resource_version {
            patch["metadata"]["resourceVersion"] = json!(rv);
        }
        if !self.annotations.is_empty() {
            patch["metadata"]["annotations"] = json!(self.annotations);
        }
        if !self.labels.is_empty() {
            patch["metadata"]["labels"] = json!(self.labels);
        }
        let after = self.taints_after(&node.taints);
        if after != node.taints {
            let list: Vec<Taint> = after
                .into_iter()
                .map(|t| Taint {
                    key: t.key,
                    value: t.value,
                    effect: t.effect,
                    time_added: None,
                })
                .collect();
            patch["spec"]["taints"] = json!(list);
        }
        if let Some(u) = self.unschedulable {
            patch["spec"]["unschedulable"] = json!(u);
        }
        patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            pool: "p".into(),
            zone: "a".into(),
            kubelet_version: "v1.33.0".into(),
            ready: true,
            taints: vec![TaintInfo {
                key: "dedicated".into(),
                value: Some("db".into()),
                effect: "NoSchedule".into(),
            }],
            annotations: BTreeMap::from([("keep".to_string(), "1".to_string())]),
            ..NodeInfo::default()
        }
    }

    #[test]
    fn merge_patch_keeps_foreign_taints_and_nulls_removed_keys() {
        let n = node();
        let p = NodePatch {
            annotations: BTreeMap::from([
                ("a".to_string(), Some("1".to_string())),
                ("gone".to_string(), None),
            ]),
            labels: BTreeMap::new(),
            taints: vec![TaintChange::Set {
                key: "x".into(),
                effect: "NoSchedule".into(),
            }],
            unschedulable: Some(true),
        };
        let v = p.to_merge_patch(&n, Some("42"));
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert_eq!(v["metadata"]["annotations"]["gone"], Value::Null);
        assert_eq!(v["spec"]["taints"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["spec"]["taints"][0]["value"], "db");
        assert_eq!(v["spec"]["unschedulable"], true);
    }

    #[test]
    fn no_taint_change_sends_no_taints() {
        let n = node();
        let p = NodePatch {
            taints: vec![TaintChange::Remove {
                key: "absent".into(),
            }],
            ..Default::default()
        };
        assert!(p.to_merge_patch(&n, None).get("spec").is_none());
        assert!(p.is_noop_for(&n));
    }
}
