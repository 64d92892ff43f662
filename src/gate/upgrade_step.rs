//! The gate's Upgrade step: a seam over the rolling upgrade engine, and the pure decision on
//! the disruption it measured.

use crate::cluster::ClusterHandle;
use async_trait::async_trait;
use std::path::Path;

/// What the gate needs to know about a finished upgrade (the engine's JSON report has more).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct UpgradeSummary {
    /// Nodes replaced.
    pub nodes_replaced: u64,
    /// Nodes that needed replacing.
    pub nodes_total: u64,
    /// Wall time.
    pub duration_seconds: f64,
    /// Seconds any PDB-protected workload spent below its minimum available.
    pub pdb_violation_seconds: f64,
    /// Evictions made.
    pub evictions: u64,
}

/// Runs a rolling upgrade of a cluster to a version.
#[async_trait]
pub trait UpgradeRunner: Send + Sync {
    /// Upgrades every outdated node; writes the engine's report to `report`. `Err` carries
    /// what went wrong (the engine's own words).
    async fn upgrade(
        &self,
        cluster: &ClusterHandle,
        target_version: &str,
        report: &Path,
    ) -> Result<UpgradeSummary, String>;
}

/// Pure: whether the upgrade replaced every node and, when `max_disruption_seconds` is given,
/// kept the engine's measured PDB violation within it.
pub fn judge(s: &UpgradeSummary, max_disruption_seconds: Option<f64>) -> Result<String, String> {
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
    } else if s.nodes_replaced < s.nodes_total {
        Err(format!("upgrade incomplete: {facts}"))
    } else {
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(replaced: u64, violation: f64) -> UpgradeSummary {
        UpgradeSummary {
            nodes_replaced: replaced,
            nodes_total: 3,
            duration_seconds: 42.0,
            pdb_violation_seconds: violation,
            evictions: 6,
        }
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
