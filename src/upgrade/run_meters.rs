//! What a run measures for its report, fed by the engine loop after each round: PDB
//! violation seconds from the status stream, evictions, and distinct replicas moved. Never
//! read by a decision. (The run is judged against physics by the benchmark
//! (`benches/support/physics.rs`): a bound timed on the run's own durations moved with the
//! engine and could not show that it was slow.)

use super::decide::{Actions, Outcome};
use super::kube_cluster::Eviction;
use super::report::UpgradeReport;
use super::snapshot::PodInfo;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub(crate) struct RunMeters {
    /// PDB → since when `currentHealthy < desiredHealthy` (if it is now), in seconds since
    /// the run started.
    violated_since: BTreeMap<String, f64>,
    /// Violation seconds of the intervals already closed.
    violated_seconds: f64,
    /// Pods present at the start (by UID): evicting one of them moves a distinct replica;
    /// evicting a pod created during the run moves a replica again.
    original_pods: BTreeSet<String>,
    moved: BTreeSet<String>,
}

impl RunMeters {
    /// Meters for a run that starts with `pods`.
    pub(crate) fn new(pods: &[PodInfo]) -> Self {
        RunMeters {
            original_pods: pods.iter().map(|p| p.uid.clone()).collect(),
            ..RunMeters::default()
        }
    }

    /// Records a status observation of `pdb` at time `t`.
    fn observe(&mut self, pdb: &str, current_healthy: i32, desired_healthy: i32, t: f64) {
        let violated = current_healthy < desired_healthy;
        match (violated, self.violated_since.get(pdb).copied()) {
            (true, None) => {
                self.violated_since.insert(pdb.to_string(), t);
            }
            (false, Some(since)) => {
                self.violated_seconds += (t - since).max(0.0);
                self.violated_since.remove(pdb);
            }
            _ => {}
        }
    }

    /// Σ over PDBs of the violation seconds up to `now` (open intervals counted up to `now`).
    fn violation_seconds(&self, now: f64) -> f64 {
        self.violated_seconds
            + self
                .violated_since
                .values()
                .map(|s| (now - s).max(0.0))
                .sum::<f64>()
    }

    /// A round was decided at `t` seconds into the run.
    pub(crate) fn decided(&mut self, actions: &Actions, t: f64) {
        for (k, s) in &actions.pdb_updates {
            self.observe(k, s.current_healthy, s.desired_healthy, t);
        }
    }

    /// A round's requests were answered.
    pub(crate) fn answered(
        &mut self,
        actions: &Actions,
        outcome: &Outcome,
        report: &mut UpgradeReport,
    ) {
        for (e, r) in actions.evictions.iter().zip(&outcome.evictions) {
            if *r == Eviction::Evicted {
                report.evictions += 1;
                if self.original_pods.contains(&e.pod.uid) && self.moved.insert(e.pod.uid.clone()) {
                    report.replicas_moved += 1;
                }
            }
        }
    }

    /// Writes the run's figures into `report`, the run having lasted `end` seconds.
    pub(crate) fn finish(self, report: &mut UpgradeReport, end: f64) {
        report.duration_seconds = end;
        report.pdb_violation_seconds = self.violation_seconds(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_seconds_integrate_open_and_closed_intervals() {
        let mut m = RunMeters::default();
        m.observe("a", 3, 3, 0.0);
        m.observe("a", 2, 3, 10.0);
        m.observe("a", 2, 3, 12.0); // still violated: no double start
        m.observe("a", 3, 3, 15.0);
        m.observe("b", 0, 1, 20.0);
        assert_eq!(m.violation_seconds(30.0), 5.0 + 10.0);
        m.observe("b", 1, 1, 25.0);
        assert_eq!(m.violation_seconds(100.0), 10.0);
    }
}
