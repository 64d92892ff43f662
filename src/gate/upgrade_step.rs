//! The gate's Upgrade step: a seam over the rolling upgrade engine, and the pure decision on
//! the disruption it measured.

use crate::cluster::ClusterHandle;
use async_trait::async_trait;
use std::path::Path;

/// What the gate needs to know about a finished upgrade (the engine's JSON report has more).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct UpgradeSummary {
    /// Nodes replaced by this run.
    pub nodes_replaced: u64,
    /// Nodes an earlier, interrupted run had already replaced.
    #[serde(default)]
    pub nodes_found_replaced: u64,
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

/// Pure: the first line of a failed `upgrade apply` for the step and the GitHub status:
/// from its report when it wrote one (nodes replaced and the first blocked node with its
/// reason), else its last `error:` line.
pub fn failure_headline(report_json: Option<&str>, stderr_tail: &[String]) -> String {
    let report = report_json.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
    if let Some(r) = report {
        let blocked = r["blocked_nodes"].as_array().cloned().unwrap_or_default();
        if let Some(first) = blocked.first() {
            let more = match blocked.len() {
                1 => String::new(),
                n => format!(" (+{} more)", n - 1),
            };
            return format!(
                "upgrade incomplete: {}/{} nodes replaced; blocked: {}: {}{more}",
                r["nodes_replaced"],
                r["nodes_total"],
                first["node"].as_str().unwrap_or("?"),
                first["reason"].as_str().unwrap_or("?")
            );
        }
    }
    stderr_tail
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| "`upgrade apply` failed".to_string())
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
    } else if s.nodes_replaced + s.nodes_found_replaced < s.nodes_total {
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
            nodes_found_replaced: 0,
            nodes_total: 3,
            duration_seconds: 42.0,
            pdb_violation_seconds: violation,
            evictions: 6,
        }
    }

    #[test]
    fn a_failed_apply_is_summed_up_in_one_line() {
        let report = r#"{"nodes_replaced": 2, "nodes_total": 4, "blocked_nodes": [
            {"node": "stuck-a", "reason": "no replacement in stuck/zone-a passed the readiness gate"},
            {"node": "stuck-b", "reason": "x"}]}"#;
        assert_eq!(
            failure_headline(Some(report), &[]),
            "upgrade incomplete: 2/4 nodes replaced; blocked: stuck-a: no replacement in \
             stuck/zone-a passed the readiness gate (+1 more)"
        );
        let tail = [
            "blocker: PDB default/db allows no disruption".to_string(),
            "error: refusing to apply: the plan has 1 blocker(s); fix them (see above)".to_string(),
        ];
        assert_eq!(
            failure_headline(None, &tail),
            "refusing to apply: the plan has 1 blocker(s); fix them (see above)"
        );
        assert_eq!(
            failure_headline(Some("not json"), &[]),
            "`upgrade apply` failed"
        );
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
