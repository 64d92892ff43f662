//! Which outdated nodes the engine starts now, **pure**. Nodes start in plan order
//! (stateless first, then nodes with PDB-protected stateful pods) through a sliding window:
//! a pool starts its next node as soon as it has fewer than `max_surge + max_unavailable`
//! nodes in flight (started, not yet drained), with a replacement *before* the drain
//! ([`StartMode::Surge`]) while fewer than `max_surge` surge nodes are in flight, else with
//! the unavailability budget. There is no barrier between waves (a wave barrier leaves the
//! pool idle for a whole boot while the slowest drain of the previous wave finishes), except
//! before PDB-protected stateful primaries: they start only when every other planned node
//! is done (drained or beyond, or left cordoned). Evictions inside running drains are paced
//! separately by PDB tokens ([`super::drain_policy::EvictionTokens`]).
//!
//! Restart-safe: the input is the phases decoded from the Node markers, so a restarted
//! engine picks up the same wave and never restarts a node that left `Outdated`.

use super::drain_policy::StuckDrainPolicy;
use super::plan::{NodeClass, Plan, PlanOptions};
use super::state::NodePhase;
use serde::Serialize;
use std::collections::BTreeMap;

/// How a node's replacement is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    /// Request surge capacity in its zone first; drain once it is Ready.
    Surge,
    /// Drain with the unavailability budget; the replacement comes after.
    Unavailable,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admission {
    /// Nodes to move out of `Outdated` now, with their mode.
    pub start: Vec<(String, StartMode)>,
    /// The wave in flight, if any.
    pub current_wave: Option<usize>,
    /// Stop starting nodes: too many nodes were left cordoned.
    pub stop: bool,
}

/// Done for wave-gating purposes.
pub fn is_done(p: NodePhase) -> bool {
    matches!(
        p,
        NodePhase::Drained | NodePhase::Terminating | NodePhase::Gone | NodePhase::CordonedLeft
    )
}

fn phase_of(phases: &BTreeMap<String, NodePhase>, node: &str) -> NodePhase {
    phases.get(node).copied().unwrap_or(NodePhase::Outdated)
}

/// Decides which nodes to start, given every planned node's phase (absent = `Outdated`)
/// and the start mode of the nodes already started (absent = surge).
pub fn admit(
    plan: &Plan,
    opts: &PlanOptions,
    phases: &BTreeMap<String, NodePhase>,
    started_modes: &BTreeMap<String, StartMode>,
    policy: &StuckDrainPolicy,
) -> Admission {
    let left_cordoned = phases
        .values()
        .filter(|p| **p == NodePhase::CordonedLeft)
        .count() as u32;
    let stop = left_cordoned > 0 && policy.stop_early(left_cordoned);
    let current_wave = plan
        .waves
        .iter()
        .find(|w| w.nodes.iter().any(|n| !is_done(phase_of(phases, n))))
        .map(|w| w.index);
    if stop {
        return Admission {
            start: vec![],
            current_wave,
            stop,
        };
    }
    // In flight per pool: (surge, unavailable).
    let mut in_flight: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for n in &plan.outdated {
        let ph = phase_of(phases, &n.name);
        if ph == NodePhase::Outdated || is_done(ph) {
            continue;
        }
        let e = in_flight.entry(n.pool.as_str()).or_default();
        match started_modes.get(&n.name) {
            Some(StartMode::Unavailable) => e.1 += 1,
            _ => e.0 += 1,
        }
    }
    let others_pending = plan
        .outdated
        .iter()
        .any(|n| n.class != NodeClass::StatefulPrimary && !is_done(phase_of(phases, &n.name)));
    let mut start = Vec::new();
    for n in &plan.outdated {
        if phase_of(phases, &n.name) != NodePhase::Outdated
            || (n.class == NodeClass::StatefulPrimary && others_pending)
        {
            continue;
        }
        let l = opts.limits_for(&n.pool);
        let e = in_flight.entry(n.pool.as_str()).or_default();
        if e.0 < l.max_surge {
            e.0 += 1;
            start.push((n.name.clone(), StartMode::Surge));
        } else if e.1 < l.max_unavailable {
            e.1 += 1;
            start.push((n.name.clone(), StartMode::Unavailable));
        }
    }
    Admission {
        start,
        current_wave,
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::plan::{Estimate, OutdatedNode, PoolLimits, Wave, ZoneSurge};

    fn plan() -> Plan {
        let node = |name: &str, zone: &str| OutdatedNode {
            name: name.into(),
            pool: "w".into(),
            zone: zone.into(),
            kubelet_version: "v1.33.0".into(),
            class: if name == "c1" {
                NodeClass::StatefulPrimary
            } else {
                NodeClass::Stateless
            },
            evictable_pods: 1,
        };
        let surge = |zone: &str, n| ZoneSurge {
            pool: "w".into(),
            zone: zone.into(),
            nodes: n,
        };
        Plan {
            target_version: "v1.34.0".into(),
            outdated: vec![
                node("a1", "a"),
                node("a2", "a"),
                node("b1", "b"),
                node("c1", "c"),
            ],
            waves: vec![
                Wave {
                    index: 0,
                    class: NodeClass::Stateless,
                    nodes: vec!["a1".into(), "a2".into(), "b1".into()],
                    surge: vec![surge("a", 1), surge("b", 1)],
                    estimated_seconds: 100,
                },
                Wave {
                    index: 1,
                    class: NodeClass::StatefulPrimary,
                    nodes: vec!["c1".into()],
                    surge: vec![surge("c", 1)],
                    estimated_seconds: 100,
                },
            ],
            surge: vec![],
            estimate: Estimate {
                estimated_seconds: 200,
                lower_bound_phys_seconds: 100,
                lower_bound_seconds: 100,
            },
            blockers: vec![],
            skipped: vec![],
        }
    }

    fn phases(p: &[(&str, NodePhase)]) -> BTreeMap<String, NodePhase> {
        p.iter().map(|(n, ph)| (n.to_string(), *ph)).collect()
    }

    fn opts(surge: u32, unavailable: u32) -> PlanOptions {
        PlanOptions {
            target_version: "v1.34.0".into(),
            default_limits: PoolLimits {
                max_surge: surge,
                max_unavailable: unavailable,
            },
            ..PlanOptions::default()
        }
    }

    fn no_modes() -> BTreeMap<String, StartMode> {
        BTreeMap::new()
    }

    #[test]
    fn sliding_window_within_surge_and_unavailable() {
        let a = admit(
            &plan(),
            &opts(2, 1),
            &BTreeMap::new(),
            &no_modes(),
            &StuckDrainPolicy::default(),
        );
        assert_eq!(a.current_wave, Some(0));
        // Three slots: two surge, one unavailable; c1 (a primary) waits for the others.
        assert_eq!(
            a.start,
            vec![
                ("a1".into(), StartMode::Surge),
                ("a2".into(), StartMode::Surge),
                ("b1".into(), StartMode::Unavailable)
            ]
        );
        let a = admit(
            &plan(),
            &opts(1, 0),
            &BTreeMap::new(),
            &no_modes(),
            &StuckDrainPolicy::default(),
        );
        assert_eq!(a.start, vec![("a1".into(), StartMode::Surge)]);
    }

    #[test]
    fn a_slot_frees_when_a_node_is_drained_not_when_its_wave_is() {
        use NodePhase::*;
        let o = opts(1, 0);
        let p = StuckDrainPolicy::default();
        // a1 still draining: the only slot is taken.
        let a = admit(&plan(), &o, &phases(&[("a1", Draining)]), &no_modes(), &p);
        assert!(a.start.is_empty(), "{a:?}");
        // a1 drained: a2 starts although wave 0 (a1, a2, b1) is not done.
        let a = admit(&plan(), &o, &phases(&[("a1", Drained)]), &no_modes(), &p);
        assert_eq!(a.start, vec![("a2".into(), StartMode::Surge)]);
        // Unavailable slots are counted apart from surge slots.
        let modes = BTreeMap::from([("a1".to_string(), StartMode::Unavailable)]);
        let a = admit(
            &plan(),
            &opts(1, 1),
            &phases(&[("a1", Tainted)]),
            &modes,
            &p,
        );
        assert_eq!(a.start, vec![("a2".into(), StartMode::Surge)]);
    }

    #[test]
    fn resume_never_restarts_and_primaries_go_last() {
        use NodePhase::*;
        let o = opts(10, 0);
        let a = admit(
            &plan(),
            &o,
            &phases(&[("a1", Draining), ("b1", Drained)]),
            &no_modes(),
            &StuckDrainPolicy::default(),
        );
        assert_eq!(a.start, vec![("a2".into(), StartMode::Surge)]);
        // c1 (primary) waits while any other node is not done, even with free slots.
        let a = admit(
            &plan(),
            &o,
            &phases(&[("a1", Draining), ("a2", Tainted), ("b1", Gone)]),
            &no_modes(),
            &StuckDrainPolicy::default(),
        );
        assert_eq!((a.current_wave, a.start.len()), (Some(0), 0));
        // Everything else done (one node left cordoned, under the limit of 2) → c1 starts.
        let policy = StuckDrainPolicy {
            max_blocked_nodes: 2,
            ..StuckDrainPolicy::default()
        };
        let a = admit(
            &plan(),
            &o,
            &phases(&[("a1", Terminating), ("a2", CordonedLeft), ("b1", Gone)]),
            &no_modes(),
            &policy,
        );
        assert_eq!(a.current_wave, Some(1));
        assert_eq!(a.start, vec![("c1".into(), StartMode::Surge)]);
        // All done.
        let all = phases(&[("a1", Gone), ("a2", Gone), ("b1", Gone), ("c1", Gone)]);
        assert_eq!(
            admit(&plan(), &o, &all, &no_modes(), &policy).current_wave,
            None
        );
    }

    #[test]
    fn too_many_left_cordoned_stops_new_starts() {
        use NodePhase::*;
        let a = admit(
            &plan(),
            &opts(10, 0),
            &phases(&[("a1", CordonedLeft), ("a2", Gone), ("b1", Gone)]),
            &no_modes(),
            &StuckDrainPolicy::default(),
        );
        assert!(a.stop);
        assert!(a.start.is_empty());
    }
}
