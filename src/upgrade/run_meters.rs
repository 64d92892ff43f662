//! What a run measures for its report, fed by the engine loop after each round: PDB
//! violation seconds, evictions and replicas moved, and the d.3 samples. Never read by a
//! decision.

use super::decide::{pdb_chains, Actions, Outcome, RunContext};
use super::kube_cluster::Eviction;
use super::measure::{Measurements, PdbMeasure, PdbViolationMeter, PoolMeasure};
use super::report::UpgradeReport;
use super::scheduler::StartMode;
use super::snapshot::{PdbInfo, PodInfo};
use super::state::NodePhase;
use std::collections::{BTreeMap, BTreeSet};

/// Replicas missing from one PDB, integrated over time (for R_j by Little's law).
#[derive(Debug, Default)]
struct Deficit {
    last_t: f64,
    last: i32,
    integral: f64,
    evictions: u64,
}

impl Deficit {
    fn observe(&mut self, t: f64, missing: i32) {
        self.integral += f64::from(self.last.max(0)) * (t - self.last_t).max(0.0);
        self.last_t = t;
        self.last = missing;
    }
}

/// The run's meters.
#[derive(Debug, Default)]
pub struct RunMeters {
    meter: PdbViolationMeter,
    deficit: BTreeMap<String, Deficit>,
    measured: Measurements,
    t_surge: BTreeMap<String, f64>,
    t_drain: BTreeMap<String, f64>,
    /// Pods present at the start (by UID): evicting one of them moves a distinct replica;
    /// evicting a pod created during the run moves a replica again.
    original_pods: BTreeSet<String>,
    moved: BTreeSet<String>,
}

impl RunMeters {
    /// Meters for `run`, with the pods and PDBs seen at the start.
    pub fn new(run: &RunContext, pods: &[PodInfo], pdbs: &[PdbInfo]) -> Self {
        let mut m = RunMeters {
            original_pods: pods.iter().map(|p| p.uid.clone()).collect(),
            ..RunMeters::default()
        };
        let pools: BTreeSet<&String> = run.place.values().map(|p| &p.0).collect();
        for p in pools {
            let l = run.opts.limits_for(p);
            m.measured.pools.insert(
                p.clone(),
                PoolMeasure {
                    nodes: run.place.values().filter(|pz| pz.0 == *p).count() as u64,
                    concurrency: u64::from(l.max_surge + l.max_unavailable),
                    surge_only: l.max_unavailable == 0,
                },
            );
        }
        for c in pdb_chains(&run.place, pods, pdbs).1 {
            if c.pods > 0 && c.allowed > 0 {
                m.measured.pdbs.insert(
                    c.key,
                    PdbMeasure {
                        pods: c.pods,
                        allowed: c.allowed as u64,
                        replacement_ready: Vec::new(),
                    },
                );
            }
        }
        m
    }

    /// A round was decided at `t` seconds into the run.
    pub fn decided(&mut self, actions: &Actions, t: f64) {
        for (k, s) in &actions.pdb_updates {
            self.meter
                .observe(k, s.current_healthy, s.desired_healthy, t);
            self.deficit
                .entry(k.clone())
                .or_default()
                .observe(t, s.expected_pods - s.current_healthy);
        }
        for (n, ph) in &actions.phases {
            if matches!(ph, NodePhase::Terminating | NodePhase::Gone) {
                if let Some(t0) = self.t_drain.remove(n) {
                    self.measured.drain_terminate.push(t - t0);
                }
            }
        }
    }

    /// A round's requests were answered at `t` seconds into the run.
    pub fn answered(
        &mut self,
        actions: &Actions,
        outcome: &Outcome,
        report: &mut UpgradeReport,
        t: f64,
    ) {
        for (name, mode) in &actions.starts {
            if *mode == StartMode::Unavailable {
                self.t_drain.insert(name.clone(), t);
            }
            self.t_surge.insert(name.clone(), t);
        }
        for (name, _) in &actions.steps {
            self.t_drain.insert(name.clone(), t);
        }
        for ((old, _), r) in actions.claims.iter().zip(&outcome.claims) {
            if r.is_some() {
                if let Some(t0) = self.t_surge.get(old) {
                    self.measured.provision.push(t - t0);
                }
                self.t_drain.insert(old.clone(), t);
            }
        }
        for (e, r) in actions.evictions.iter().zip(&outcome.evictions) {
            if *r == Eviction::Evicted {
                report.evictions += 1;
                if self.original_pods.contains(&e.pod.uid) && self.moved.insert(e.pod.uid.clone()) {
                    report.replicas_moved += 1;
                }
                for k in &e.covering {
                    self.deficit.entry(k.clone()).or_default().evictions += 1;
                }
            }
        }
    }

    /// Writes the run's figures into `report`, the run having lasted `end` seconds.
    pub fn finish(mut self, report: &mut UpgradeReport, end: f64) {
        for (k, d) in &mut self.deficit {
            d.observe(end, 0);
            if let Some(m) = self.measured.pdbs.get_mut(k) {
                if d.evictions > 0 {
                    m.replacement_ready = vec![d.integral / d.evictions as f64];
                }
            }
        }
        let lb = self.measured.lower_bound();
        report.set_durations(end, lb.policy);
        report.pdb_violation_seconds = self.meter.seconds(end);
    }
}
