//! What a run measures for its report, fed by the engine loop after each round: PDB
//! violation seconds from the status stream, evictions, and distinct replicas moved. Never
//! read by a decision.

use super::decide::{Actions, Outcome};
use super::kube_cluster::Eviction;
use super::measure::PdbViolationMeter;
use super::report::UpgradeReport;
use super::snapshot::PodInfo;
use std::collections::BTreeSet;

/// The run's meters.
#[derive(Debug, Default)]
pub(crate) struct RunMeters {
    meter: PdbViolationMeter,
    /// Pods present at the start (by UID): evicting one of them moves a distinct replica;
    /// evicting a pod created during the run moves a replica again.
    original_pods: BTreeSet<String>,
    moved: BTreeSet<String>,
}

impl RunMeters {
    /// Meters for a run that starts with `pods`.
    pub fn new(pods: &[PodInfo]) -> Self {
        RunMeters {
            original_pods: pods.iter().map(|p| p.uid.clone()).collect(),
            ..RunMeters::default()
        }
    }

    /// A round was decided at `t` seconds into the run.
    pub(crate) fn decided(&mut self, actions: &Actions, t: f64) {
        for (k, s) in &actions.pdb_updates {
            self.meter
                .observe(k, s.current_healthy, s.desired_healthy, t);
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
    pub fn finish(self, report: &mut UpgradeReport, end: f64) {
        report.duration_seconds = end;
        report.pdb_violation_seconds = self.meter.seconds(end);
    }
}
