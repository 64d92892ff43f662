//! Run measurements for the report, **pure**: PDB-violation seconds from the PDB status
//! stream, and the d.3 lower bound computed from the run's own measured durations, so
//! `efficiency = lower bound / actual` is objective.

use serde::Serialize;
use std::collections::BTreeMap;

/// Integrates Σ_b time with `currentHealthy < desiredHealthy` from PDB status observations
/// (the watch), in seconds since the run started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PdbViolationMeter {
    /// PDB → since when it is violated (if it is now).
    open: BTreeMap<String, f64>,
    closed_seconds: f64,
}

impl PdbViolationMeter {
    /// Records a status observation of `pdb` at time `t`.
    pub fn observe(&mut self, pdb: &str, current_healthy: i32, desired_healthy: i32, t: f64) {
        let violated = current_healthy < desired_healthy;
        match (violated, self.open.get(pdb).copied()) {
            (true, None) => {
                self.open.insert(pdb.to_string(), t);
            }
            (false, Some(since)) => {
                self.closed_seconds += (t - since).max(0.0);
                self.open.remove(pdb);
            }
            _ => {}
        }
    }

    /// Violation seconds up to `now` (open intervals counted up to `now`).
    pub fn seconds(&self, now: f64) -> f64 {
        self.closed_seconds + self.open.values().map(|s| (now - s).max(0.0)).sum::<f64>()
    }
}

/// Per-PDB serialisation data: pods on outdated nodes, steady-state budget, measured
/// eviction → replacement-Ready times.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PdbMeasure {
    /// `k_b`.
    pub pods: u64,
    /// `a_b` (> 0, else the plan had a blocker).
    pub allowed: u64,
    /// `R_j` samples, seconds.
    pub replacement_ready: Vec<f64>,
}

/// Per-pool concurrency data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PoolMeasure {
    /// `N_p`.
    pub nodes: u64,
    /// `C_p = max_surge + max_unavailable`.
    pub concurrency: u64,
    /// `max_unavailable == 0` (a new node must exist before any drain).
    pub surge_only: bool,
}

/// Measured durations of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measurements {
    /// `P_i`: launch → readiness gate passed, per new node.
    pub provision: Vec<f64>,
    /// `D_i + T_i`: drain + terminate, per old node.
    pub drain_terminate: Vec<f64>,
    /// Per PDB.
    pub pdbs: BTreeMap<String, PdbMeasure>,
    /// Per pool.
    pub pools: BTreeMap<String, PoolMeasure>,
}

/// `(LB_phys, LB_policy)` in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LowerBound {
    /// Physics only.
    pub phys: f64,
    /// With the user's concurrency limits (the one `efficiency` uses).
    pub policy: f64,
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

impl Measurements {
    /// d.3: `LB_phys = max(min P + max(D+T), max_b ceil(k_b/a_b)·mean R_b)` (P dropped when
    /// no pool is surge-only); `LB_policy = max(LB_phys, max_p ceil(N_p/C_p)·min(D+T))`.
    pub fn lower_bound(&self) -> LowerBound {
        let dt_max = max(&self.drain_terminate);
        let any_surge_only = self.pools.values().any(|p| p.surge_only);
        let p_min = if any_surge_only && !self.provision.is_empty() {
            min(&self.provision)
        } else {
            0.0
        };
        let term1 = if self.drain_terminate.is_empty() {
            0.0
        } else {
            p_min + dt_max
        };
        let term2 = self
            .pdbs
            .values()
            .filter(|b| b.allowed > 0 && !b.replacement_ready.is_empty())
            .map(|b| {
                let mean =
                    b.replacement_ready.iter().sum::<f64>() / b.replacement_ready.len() as f64;
                b.pods.div_ceil(b.allowed) as f64 * mean
            })
            .fold(0.0, f64::max);
        let phys = term1.max(term2);
        let dt_min = if self.drain_terminate.is_empty() {
            0.0
        } else {
            min(&self.drain_terminate)
        };
        let term3 = self
            .pools
            .values()
            .filter(|p| p.concurrency > 0)
            .map(|p| p.nodes.div_ceil(p.concurrency) as f64 * dt_min)
            .fold(0.0, f64::max);
        LowerBound {
            phys,
            policy: phys.max(term3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_seconds_integrate_open_and_closed_intervals() {
        let mut m = PdbViolationMeter::default();
        m.observe("a", 3, 3, 0.0);
        m.observe("a", 2, 3, 10.0);
        m.observe("a", 2, 3, 12.0); // still violated: no double start
        m.observe("a", 3, 3, 15.0);
        m.observe("b", 0, 1, 20.0);
        assert_eq!(m.seconds(30.0), 5.0 + 10.0);
        m.observe("b", 1, 1, 25.0);
        assert_eq!(m.seconds(100.0), 10.0);
    }

    #[test]
    fn lower_bound_terms() {
        let mut m = Measurements {
            provision: vec![100.0, 80.0],
            drain_terminate: vec![60.0, 90.0, 70.0],
            ..Measurements::default()
        };
        m.pools.insert(
            "w".into(),
            PoolMeasure {
                nodes: 3,
                concurrency: 1,
                surge_only: true,
            },
        );
        // term1 = 80 + 90 = 170; term3 = 3 · 60 = 180.
        assert_eq!(
            m.lower_bound(),
            LowerBound {
                phys: 170.0,
                policy: 180.0
            }
        );
        // A PDB with budget 1 and 5 pods, R = 40 → 200 dominates.
        m.pdbs.insert(
            "ns/web".into(),
            PdbMeasure {
                pods: 5,
                allowed: 1,
                replacement_ready: vec![30.0, 50.0],
            },
        );
        assert_eq!(
            m.lower_bound(),
            LowerBound {
                phys: 200.0,
                policy: 200.0
            }
        );
        // Not surge-only: the provision term drops.
        m.pdbs.clear();
        m.pools.insert(
            "w".into(),
            PoolMeasure {
                nodes: 3,
                concurrency: 3,
                surge_only: false,
            },
        );
        assert_eq!(
            m.lower_bound(),
            LowerBound {
                phys: 90.0,
                policy: 90.0
            }
        );
        assert_eq!(
            Measurements::default().lower_bound(),
            LowerBound {
                phys: 0.0,
                policy: 0.0
            }
        );
    }
}
