//! PDB-violation seconds from the PDB status stream, for the report. **Pure.** (The run is
//! judged against physics by the benchmark (`benches/support/physics.rs`): a bound timed on the run's
//! own durations moved with the engine and could not show that it was slow.)

use std::collections::BTreeMap;

/// Integrates Σ_b time with `currentHealthy < desiredHealthy` from PDB status observations
/// (the watch), in seconds since the run started.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PdbViolationMeter {
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
}
