//! The JSON report of `upgrade apply` (`--report FILE`), a CI artifact. Definitions follow
//! `reference/upgrade.md` d.3; `kube_api_calls` comes from the counting layer on the
//! kube client, never from estimates.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the report layout.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// A PDB-bypassing delete or a termination of a node with pods left, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ForcedAction {
    /// `Pod/ns/name` or `Node/name`.
    pub(crate) object: String,
    /// `delete-pod` or `terminate-nonempty`.
    pub(crate) action: String,
    /// The guard's justification.
    pub(crate) justification: String,
}

/// A node left cordoned by the stuck-drain policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedNode {
    /// Node name.
    pub node: String,
    /// Why (names the pod and PDB).
    pub reason: String,
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpgradeReport {
    /// [`FORMAT_VERSION`].
    pub(crate) format_version: u32,
    /// Target kubelet version.
    pub(crate) target_version: String,
    /// Old nodes this run replaced (reached `Gone` while it ran).
    pub nodes_replaced: u64,
    /// Old nodes of the plan already gone when this run took over (an earlier, interrupted
    /// run, or the apply it waited for, replaced them).
    #[serde(default)]
    pub(crate) nodes_found_replaced: u64,
    /// Old nodes in the plan.
    pub nodes_total: u64,
    /// Wall-clock seconds of the run.
    pub duration_seconds: f64,
    /// Σ over PDBs of the time `currentHealthy < desiredHealthy` during the run.
    pub(crate) pdb_violation_seconds: f64,
    /// Eviction API calls answered 2xx.
    pub evictions: u64,
    /// Distinct workload replicas moved: evicted pods that existed when the run started
    /// (evicting a pod created during the run moves a replica again, so
    /// `evictions / replicas_moved` is the eviction amplification of d.3).
    pub(crate) replicas_moved: u64,
    /// Kube API calls by verb (`list`, `watch`, `get`, `patch`, `create`, `delete`, `evict`, …).
    pub kube_api_calls: BTreeMap<String, u64>,
    /// Cloud API calls by operation.
    pub(crate) cloud_api_calls: BTreeMap<String, u64>,
    /// Number of forced actions.
    pub forced_actions: u64,
    /// Each forced action with its justification.
    pub(crate) forced_action_details: Vec<ForcedAction>,
    /// Nodes left cordoned, or whose replacement never became Ready, with the reason.
    pub blocked_nodes: Vec<BlockedNode>,
    /// Why the run ended without finishing (deadline, a cloud or API error); the counts are
    /// then read from the cluster as the run left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Pools stopped because a replacement never became Ready (their old nodes serve on).
    #[serde(default)]
    pub(crate) stopped_pools: Vec<String>,
    /// The surge and unavailability limits each planned pool ran with (percentages resolved).
    #[serde(default)]
    pub(crate) limits: BTreeMap<String, crate::upgrade::plan::PoolLimits>,
}

impl UpgradeReport {
    /// An empty report for `target_version` with `nodes_total` planned nodes.
    pub(crate) fn new(target_version: &str, nodes_total: u64) -> Self {
        UpgradeReport {
            format_version: FORMAT_VERSION,
            target_version: target_version.to_string(),
            nodes_total,
            ..UpgradeReport::default()
        }
    }

    /// Whether every planned node was replaced (by this run or an earlier one) and none was
    /// given up on.
    pub(crate) fn complete(&self) -> bool {
        self.blocked_nodes.is_empty()
            && self.nodes_replaced + self.nodes_found_replaced == self.nodes_total
    }

    /// One line: nodes replaced, time, evictions, blocked nodes, stopped pools.
    pub(crate) fn headline(&self) -> String {
        format!(
            "{}/{} node(s) replaced in {:.0}s{}, {} eviction(s), {} blocked{}",
            self.nodes_replaced + self.nodes_found_replaced,
            self.nodes_total,
            self.duration_seconds,
            if self.nodes_found_replaced > 0 {
                format!(
                    " ({} by this run, {} already replaced when it took over)",
                    self.nodes_replaced, self.nodes_found_replaced
                )
            } else {
                String::new()
            },
            self.evictions,
            self.blocked_nodes.len(),
            if self.stopped_pools.is_empty() {
                String::new()
            } else {
                format!("; stopped pool(s): {}", self.stopped_pools.join(", "))
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_issue_fields_and_round_trips() {
        let mut r = UpgradeReport::new("v1.34.0", 3);
        r.duration_seconds = 400.0;
        r.kube_api_calls.insert("evict".into(), 7);
        r.forced_actions += 1;
        r.forced_action_details.push(ForcedAction {
            object: "Pod/ns/a".into(),
            action: "delete-pod".into(),
            justification: "stuck 900s".into(),
        });
        r.blocked_nodes.push(BlockedNode {
            node: "n1".into(),
            reason: "pdb ns/db".into(),
        });
        let v = serde_json::to_value(&r).expect("serializes");
        for k in [
            "nodes_replaced",
            "duration_seconds",
            "pdb_violation_seconds",
            "evictions",
            "replicas_moved",
            "kube_api_calls",
            "forced_actions",
            "blocked_nodes",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert!(
            v.get("efficiency").is_none(),
            "no figure judged against the run's own timings"
        );
        assert_eq!(v["forced_actions"], 1);
        let back: UpgradeReport = serde_json::from_value(v).expect("deserializes");
        assert_eq!(back, r);
    }
}
