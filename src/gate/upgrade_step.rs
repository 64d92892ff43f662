//! The gate's Upgrade step: a seam over the rolling upgrade engine, and the pure decision on
//! the disruption it measured.

use crate::cluster::ClusterHandle;
use crate::upgrade::report::UpgradeReport;
use async_trait::async_trait;
use std::path::Path;

/// Runs a rolling upgrade of a cluster to a version.
#[async_trait]
pub trait UpgradeRunner: Send + Sync {
    /// Upgrades every outdated node; writes the engine's report to `report` and returns it.
    /// `Err` is the one-line reason the run did not finish (see [`failure_headline`]).
    async fn upgrade(
        &self,
        cluster: &ClusterHandle,
        target_version: &str,
        report: &Path,
    ) -> Result<UpgradeReport, String>;
}

/// Pure: the first line of an upgrade that did not finish, for the step and the GitHub
/// status: the nodes replaced and the first blocked node with its reason when there is one,
/// else the error.
pub fn failure_headline(report: Option<&UpgradeReport>, error: &str) -> String {
    match report.map(|r| (r, r.blocked_nodes.first())) {
        Some((r, Some(first))) => format!(
            "upgrade incomplete: {}/{} nodes replaced; blocked: {}: {}{}",
            r.nodes_replaced + r.nodes_found_replaced,
            r.nodes_total,
            first.node,
            first.reason,
            match r.blocked_nodes.len() {
                1 => String::new(),
                n => format!(" (+{} more)", n - 1),
            }
        ),
        _ => error.to_string(),
    }
}

/// Pure: whether the upgrade replaced every node and, when `max_disruption_seconds` is given,
/// kept the engine's measured PDB violation within it.
pub(crate) fn judge(
    s: &UpgradeReport,
    max_disruption_seconds: Option<f64>,
) -> Result<String, String> {
    let facts = format!(
        "{}/{} nodes replaced in {:.0}s, {} evictions, {:.1}s below minAvailable",
        s.nodes_replaced, s.nodes_total, s.duration_seconds, s.evictions, s.pdb_violation_seconds
    );
    if let Some(max_disruption_seconds) =
        max_disruption_seconds.filter(|max| s.pdb_violation_seconds > *max)
    {
        Err(format!(
            "disruption: PDB-protected workloads spent {:.1}s below minAvailable (allowed {:.1}s); {facts}",
            s.pdb_violation_seconds, max_disruption_seconds
        ))
    } else if let Some(b) = s.blocked_nodes.first() {
        Err(format!(
            "upgrade incomplete: blocked: {}: {}; {facts}",
            b.node, b.reason
        ))
    } else if s.nodes_replaced + s.nodes_found_replaced < s.nodes_total {
        Err(format!("upgrade incomplete: {facts}"))
    } else {
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::report::BlockedNode;

    fn s(replaced: u64, violation: f64) -> UpgradeReport {
        UpgradeReport {
            nodes_replaced: replaced,
            duration_seconds: 42.0,
            pdb_violation_seconds: violation,
            evictions: 6,
            ..UpgradeReport::new("v1.34.1", 3)
        }
    }

    #[test]
    fn a_failed_apply_is_summed_up_in_one_line() {
        let mut r = UpgradeReport::new("v1.34.1", 4);
        r.nodes_replaced = 2;
        for (node, reason) in [
            (
                "stuck-a",
                "no replacement in stuck/zone-a passed the readiness gate",
            ),
            ("stuck-b", "x"),
        ] {
            r.blocked_nodes.push(BlockedNode {
                node: node.into(),
                reason: reason.into(),
            });
        }
        assert_eq!(
            failure_headline(Some(&r), "ignored"),
            "upgrade incomplete: 2/4 nodes replaced; blocked: stuck-a: no replacement in \
             stuck/zone-a passed the readiness gate (+1 more)"
        );
        let refused = "refusing to apply: the plan has 1 blocker(s); fix them (see the plan)";
        assert_eq!(failure_headline(None, refused), refused);
        assert_eq!(
            failure_headline(Some(&UpgradeReport::new("v1.34.1", 4)), "deadline"),
            "deadline"
        );
        r.nodes_replaced = 4;
        assert!(judge(&r, None)
            .unwrap_err()
            .starts_with("upgrade incomplete: blocked: stuck-a: no replacement"));
    }

    #[test]
    fn disruption_over_threshold_fails_and_is_named() {
        assert_eq!(
            judge(&s(3, 0.0), Some(0.0)).unwrap(),
            "3/3 nodes replaced in 42s, 6 evictions, 0.0s below minAvailable"
        );
        let e = judge(&s(3, 2.5), Some(0.0)).unwrap_err();
        assert!(
            e.starts_with(
                "disruption: PDB-protected workloads spent 2.5s below minAvailable (allowed 0.0s)"
            ),
            "{e}"
        );
        assert!(judge(&s(3, 2.5), Some(5.0)).is_ok());
        // Disruption judged elsewhere (the gate's own probe): only completeness counts here.
        assert!(judge(&s(3, 2.5), None).is_ok());
        assert!(judge(&s(2, 0.0), None).is_err());
        assert!(judge(&s(2, 0.0), Some(0.0))
            .unwrap_err()
            .starts_with("upgrade incomplete"));
    }
}
