//! Live progress, **pure**: nodes replaced / total, waves in flight, blockers and an ETA
//! that rescales the plan's estimates by the pace measured so far. The apply loop prints
//! [`Progress::line`] on stderr whenever a node changes phase.

use super::plan::Plan;
use super::scheduler::{is_done, stopped_pools};
use super::state::NodePhase;
use std::collections::BTreeMap;

/// Beyond this many nodes in flight, the line counts them per phase instead of naming them.
const MAX_NAMED_NODES: usize = 8;

/// A progress snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Old nodes that reached `Gone`.
    pub(crate) replaced: usize,
    /// Old nodes planned.
    pub(crate) total: usize,
    /// Index of the wave in flight and its total count.
    pub(crate) wave: Option<(usize, usize)>,
    /// Nodes of the wave in flight that are not done, with their phase.
    pub(crate) in_flight: Vec<(String, NodePhase)>,
    /// Plan blockers plus nodes `Blocked` or left cordoned now.
    pub(crate) blockers: usize,
    /// Estimated seconds left; `None` when nothing is left.
    pub(crate) eta_seconds: Option<u64>,
    /// The plan's estimate of the waves done and of those left, in seconds (for [`EtaTracker`]).
    pub(crate) estimate: (u64, u64),
}

/// An ETA that counts down. It projects the run's total from the moment the last wave was
/// finished (the plan's estimate scaled by how long the finished waves really took), then
/// subtracts the time elapsed since: recomputed from "now" alone it grew by a second every
/// second while a wave was in flight, and jumped from the plan's 18m to 12s at the first wave.
#[derive(Debug, Clone, Default)]
pub(crate) struct EtaTracker {
    /// `(estimated seconds done, elapsed seconds when that was reached)`.
    done_at: Option<(u64, u64)>,
}

impl EtaTracker {
    /// The ETA for `p` after `elapsed` seconds (`None` when nothing is left).
    pub(crate) fn eta(&mut self, p: &Progress, elapsed: u64) -> Option<u64> {
        let (done, left) = p.estimate;
        if left == 0 {
            return None;
        }
        if done > 0 && self.done_at.is_none_or(|(d, _)| d != done) {
            self.done_at = Some((done, elapsed));
        }
        let total = match self.done_at {
            Some((d, at)) if d > 0 && at > 0 => {
                ((d + left) as f64 * at as f64 / d as f64).round() as u64
            }
            _ => left,
        };
        // Never 0 while work is left: the projection was too optimistic, not finished.
        Some(total.saturating_sub(elapsed).max(1))
    }
}

/// Computes progress after `elapsed_seconds` of the run, the ETA from `eta`.
pub(crate) fn progress(
    plan: &Plan,
    phases: &BTreeMap<String, NodePhase>,
    elapsed_seconds: u64,
    eta: &mut EtaTracker,
) -> Progress {
    let phase = |n: &str| phases.get(n).copied().unwrap_or(NodePhase::Outdated);
    // Nodes of a stopped pool that never started are not waited for.
    let stopped = stopped_pools(plan, phases);
    let wont_start: std::collections::BTreeSet<&str> = plan
        .outdated
        .iter()
        .filter(|n| stopped.contains(&n.pool) && phase(&n.name) == NodePhase::Outdated)
        .map(|n| n.name.as_str())
        .collect();
    let is_done = |n: &str| is_done(phase(n)) || wont_start.contains(n);
    let replaced = plan
        .outdated
        .iter()
        .filter(|n| phase(&n.name) == NodePhase::Gone)
        .count();
    let current = plan
        .waves
        .iter()
        .find(|w| w.nodes.iter().any(|n| !is_done(n)));
    let in_flight = current
        .map(|w| {
            w.nodes
                .iter()
                .filter(|n| !is_done(n))
                .map(|n| (n.clone(), phase(n)))
                .collect()
        })
        .unwrap_or_default();
    use NodePhase::{Blocked, CordonedLeft, ReplacementFailed};
    let stuck = phases
        .values()
        .filter(|p| matches!(p, Blocked | CordonedLeft | ReplacementFailed))
        .count();
    let (done_est, left_est): (u64, u64) = plan.waves.iter().fold((0, 0), |(d, l), w| {
        if w.nodes.iter().all(|n| is_done(n)) {
            (d + w.estimated_seconds, l)
        } else {
            (d, l + w.estimated_seconds)
        }
    });
    let mut p = Progress {
        replaced,
        total: plan.outdated.len(),
        wave: current.map(|w| (w.index, plan.waves.len())),
        in_flight,
        blockers: plan.blockers.len() + stuck,
        eta_seconds: None,
        estimate: (done_est, left_est),
    };
    p.eta_seconds = eta.eta(&p, elapsed_seconds);
    p
}

impl Progress {
    /// One line for stderr, e.g.
    /// `upgrade: 1/4 nodes replaced; wave 1/3: a2 draining, b1 tainted; 0 blockers; ETA 5m00s`.
    pub fn line(&self) -> String {
        let wave = match self.wave {
            // Named nodes while they fit on a line; counts per phase on a large pool (the
            // line is printed on every phase change).
            Some((i, n)) if self.in_flight.len() > MAX_NAMED_NODES => {
                let mut by_phase: BTreeMap<NodePhase, usize> = BTreeMap::new();
                for (_, p) in &self.in_flight {
                    *by_phase.entry(*p).or_default() += 1;
                }
                let counts: Vec<String> = by_phase
                    .iter()
                    .rev()
                    .map(|(p, c)| format!("{c} {p}"))
                    .collect();
                format!(
                    "wave {}/{}: {} nodes ({})",
                    i + 1,
                    n,
                    self.in_flight.len(),
                    counts.join(", ")
                )
            }
            Some((i, n)) => {
                let nodes: Vec<String> = self
                    .in_flight
                    .iter()
                    .map(|(n, p)| format!("{n} {p}"))
                    .collect();
                format!("wave {}/{}: {}", i + 1, n, nodes.join(", "))
            }
            None => "all waves done".into(),
        };
        let eta = self
            .eta_seconds
            .map(|s| format!("ETA {}m{:02}s", s / 60, s % 60))
            .unwrap_or_else(|| "done".into());
        format!(
            "upgrade: {}/{} nodes replaced; {}; {} blocker(s); {}",
            self.replaced, self.total, wave, self.blockers, eta
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::plan::plan as make_plan;
    use crate::upgrade::plan::tests::{node, opts, snap};

    fn two_waves() -> Plan {
        let nodes = vec![
            node("a1", "w", "a", "v1.33.0"),
            node("a2", "w", "a", "v1.33.0"),
        ];
        make_plan(&snap(nodes, vec![], vec![]), &opts(1, 0)).expect("plan")
    }

    #[test]
    fn the_tracked_eta_counts_down_within_a_wave() {
        // Regression: recomputed from "now", the ETA grew by 2 s every 2 s while the last wave
        // was in flight.
        let mut t = EtaTracker::default();
        let p = |done: u64, left: u64| Progress {
            replaced: 0,
            total: 2,
            wave: None,
            in_flight: Vec::new(),
            blockers: 0,
            eta_seconds: None,
            estimate: (done, left),
        };
        assert_eq!(t.eta(&p(0, 720), 0), Some(720));
        assert_eq!(
            t.eta(&p(0, 720), 100),
            Some(620),
            "counts down from the plan"
        );
        // The first of two 360 s waves took 60 s: the whole run projects to 120 s.
        assert_eq!(t.eta(&p(360, 360), 60), Some(60));
        let later: Vec<u64> = [70, 80, 90]
            .iter()
            .map(|&e| t.eta(&p(360, 360), e).unwrap())
            .collect();
        assert_eq!(later, [50, 40, 30], "down, never up");
        assert_eq!(
            t.eta(&p(360, 360), 500),
            Some(1),
            "late: 1, not 0 or negative"
        );
        assert_eq!(t.eta(&p(720, 0), 510), None);
    }

    #[test]
    fn counts_waves_and_rescales_eta() {
        let p = two_waves();
        let start = progress(&p, &BTreeMap::new(), 0, &mut EtaTracker::default());
        assert_eq!(
            (start.replaced, start.total, start.wave),
            (0, 2, Some((0, 2)))
        );
        assert_eq!(start.eta_seconds, Some(720));
        assert!(
            start
                .line()
                .contains("0/2 nodes replaced; wave 1/2: a1 outdated"),
            "{}",
            start.line()
        );

        // Wave 0 took twice the estimate: the rest is expected to as well.
        let ph = BTreeMap::from([
            ("a1".to_string(), NodePhase::Gone),
            ("a2".to_string(), NodePhase::Blocked),
        ]);
        let mid = progress(&p, &ph, 720, &mut EtaTracker::default());
        assert_eq!(mid.replaced, 1);
        assert_eq!(mid.eta_seconds, Some(720));
        assert_eq!(mid.blockers, 1);
        assert!(
            mid.line().contains("a2 blocked") && mid.line().contains("ETA 12m00s"),
            "{}",
            mid.line()
        );

        let ph = BTreeMap::from([
            ("a1".to_string(), NodePhase::Gone),
            ("a2".to_string(), NodePhase::Gone),
        ]);
        let end = progress(&p, &ph, 800, &mut EtaTracker::default());
        assert_eq!((end.replaced, end.wave, end.eta_seconds), (2, None, None));
        assert!(
            end.line().ends_with("all waves done; 0 blocker(s); done"),
            "{}",
            end.line()
        );
    }

    #[test]
    fn a_wide_wave_is_counted_per_phase_not_listed() {
        let mut in_flight: Vec<(String, NodePhase)> = (0..300)
            .map(|i| (format!("n{i}"), NodePhase::Draining))
            .collect();
        in_flight[0].1 = NodePhase::SurgeRequested;
        let p = Progress {
            replaced: 10,
            total: 310,
            wave: Some((0, 1)),
            in_flight,
            blockers: 0,
            eta_seconds: Some(60),
            estimate: (0, 60),
        };
        let line = p.line();
        assert!(
            line.contains("wave 1/1: 300 nodes (299 draining, 1 surge-requested)"),
            "{line}"
        );
        assert!(line.len() < 200, "{line}");
    }

    #[test]
    fn a_stopped_pool_is_not_waited_for() {
        let p = two_waves();
        let ph = BTreeMap::from([("a1".to_string(), NodePhase::ReplacementFailed)]);
        let pr = progress(&p, &ph, 30, &mut EtaTracker::default());
        assert_eq!((pr.wave, pr.blockers, pr.eta_seconds), (None, 1, None));
        assert!(!pr.line().contains("a2"), "{}", pr.line());
    }
}
