//! Which outdated nodes the engine starts now, **pure**. Waves run in plan order; a wave
//! starts when every node of the earlier waves is done (drained or beyond, or left
//! cordoned), so at most one wave per class is in flight and each pool stays within
//! `max_surge + max_unavailable`. Within a wave, the plan's surge per (pool, zone) says
//! which nodes get a replacement *before* their drain ([`StartMode::Surge`]); the rest
//! use the unavailability budget. Evictions inside running drains are paced separately by
//! PDB tokens ([`super::drain_policy::EvictionTokens`]).
//!
//! Restart-safe: the input is the phases decoded from the Node markers, so a restarted
//! engine picks up the same wave and never restarts a node that left `Outdated`.

use super::drain_policy::StuckDrainPolicy;
use super::plan::{Plan, Wave};
use super::state::NodePhase;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

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
        NodePhase::Drained
            | NodePhase::Terminating
            | NodePhase::Gone
            | NodePhase::CordonedLeft
            | NodePhase::ReplacementFailed
    )
}

/// Pools that stopped because a replacement never became Ready: none of their nodes
/// starts any more in this run (the others keep serving), the other pools go on.
pub fn stopped_pools(plan: &Plan, phases: &BTreeMap<String, NodePhase>) -> BTreeSet<String> {
    plan.outdated
        .iter()
        .filter(|n| phase_of(phases, &n.name) == NodePhase::ReplacementFailed)
        .map(|n| n.pool.clone())
        .collect()
}

/// Whether the node needs nothing more from this run: replaced, given up on (left
/// cordoned, replacement failed), or never started because its pool stopped.
pub fn settled(phase: NodePhase, pool_stopped: bool) -> bool {
    matches!(
        phase,
        NodePhase::Gone | NodePhase::CordonedLeft | NodePhase::ReplacementFailed
    ) || (phase == NodePhase::Outdated && pool_stopped)
}

fn phase_of(phases: &BTreeMap<String, NodePhase>, node: &str) -> NodePhase {
    phases.get(node).copied().unwrap_or(NodePhase::Outdated)
}

/// Start mode of every node of `wave`: per (pool, zone), the first `surge` nodes by name
/// get surge. Needs the node → (pool, zone) map from the plan.
pub fn modes(plan: &Plan, wave: &Wave) -> BTreeMap<String, StartMode> {
    let place: BTreeMap<&str, (&str, &str)> = plan
        .outdated
        .iter()
        .map(|n| (n.name.as_str(), (n.pool.as_str(), n.zone.as_str())))
        .collect();
    let mut left: BTreeMap<(&str, &str), u32> = wave
        .surge
        .iter()
        .map(|s| ((s.pool.as_str(), s.zone.as_str()), s.nodes))
        .collect();
    let mut nodes: Vec<&str> = wave.nodes.iter().map(String::as_str).collect();
    nodes.sort_unstable();
    nodes
        .into_iter()
        .map(|n| {
            let mode = match place.get(n).and_then(|k| left.get_mut(k)) {
                Some(c) if *c > 0 => {
                    *c -= 1;
                    StartMode::Surge
                }
                _ => StartMode::Unavailable,
            };
            (n.to_string(), mode)
        })
        .collect()
}

/// Decides which nodes to start, given every planned node's phase (absent = `Outdated`).
pub fn admit(
    plan: &Plan,
    phases: &BTreeMap<String, NodePhase>,
    policy: &StuckDrainPolicy,
) -> Admission {
    let left_cordoned = phases
        .values()
        .filter(|p| **p == NodePhase::CordonedLeft)
        .count() as u32;
    let stop = left_cordoned > 0 && policy.stop_early(left_cordoned);
    let stopped = stopped_pools(plan, phases);
    let pool_of: BTreeMap<&str, &str> = plan
        .outdated
        .iter()
        .map(|n| (n.name.as_str(), n.pool.as_str()))
        .collect();
    let in_stopped_pool = |n: &str| pool_of.get(n).is_some_and(|p| stopped.contains(*p));
    // A wave is done once each node is done or will not start (its pool stopped).
    let current = plan.waves.iter().find(|w| {
        w.nodes.iter().any(|n| {
            let ph = phase_of(phases, n);
            let wont_start = ph == NodePhase::Outdated && in_stopped_pool(n);
            !(is_done(ph) || wont_start)
        })
    });
    let Some(wave) = current else {
        return Admission {
            start: vec![],
            current_wave: None,
            stop,
        };
    };
    let start = if stop {
        vec![]
    } else {
        let m = modes(plan, wave);
        let mut s: Vec<(String, StartMode)> = wave
            .nodes
            .iter()
            .filter(|n| phase_of(phases, n) == NodePhase::Outdated && !in_stopped_pool(n))
            .map(|n| {
                (
                    n.clone(),
                    m.get(n).copied().unwrap_or(StartMode::Unavailable),
                )
            })
            .collect();
        s.sort_by(|a, b| a.0.cmp(&b.0));
        s
    };
    Admission {
        start,
        current_wave: Some(wave.index),
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::plan::{Estimate, NodeClass, OutdatedNode, ZoneSurge};

    fn plan() -> Plan {
        let node = |name: &str, zone: &str| OutdatedNode {
            name: name.into(),
            pool: "w".into(),
            zone: zone.into(),
            kubelet_version: "v1.33.0".into(),
            class: NodeClass::Stateless,
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

    #[test]
    fn first_wave_with_modes() {
        let a = admit(&plan(), &BTreeMap::new(), &StuckDrainPolicy::default());
        assert_eq!(a.current_wave, Some(0));
        assert_eq!(
            a.start,
            vec![
                ("a1".into(), StartMode::Surge),
                ("a2".into(), StartMode::Unavailable),
                ("b1".into(), StartMode::Surge)
            ]
        );
    }

    #[test]
    fn resume_mid_wave_starts_only_outdated_and_never_restarts() {
        use NodePhase::*;
        let a = admit(
            &plan(),
            &phases(&[("a1", Draining), ("b1", Drained)]),
            &StuckDrainPolicy::default(),
        );
        assert_eq!(a.start, vec![("a2".into(), StartMode::Unavailable)]);
        // Wave 0 not done → wave 1 waits, even though its node is Outdated.
        let a = admit(
            &plan(),
            &phases(&[("a1", Draining), ("a2", Tainted), ("b1", Gone)]),
            &StuckDrainPolicy::default(),
        );
        assert_eq!((a.current_wave, a.start.len()), (Some(0), 0));
        // Wave 0 done (one node left cordoned, under the limit of 2) → wave 1 starts.
        let policy = StuckDrainPolicy {
            max_blocked_nodes: 2,
            ..StuckDrainPolicy::default()
        };
        let a = admit(
            &plan(),
            &phases(&[("a1", Terminating), ("a2", CordonedLeft), ("b1", Gone)]),
            &policy,
        );
        assert_eq!(a.current_wave, Some(1));
        assert_eq!(a.start, vec![("c1".into(), StartMode::Surge)]);
        // All done.
        let all = phases(&[("a1", Gone), ("a2", Gone), ("b1", Gone), ("c1", Gone)]);
        assert_eq!(admit(&plan(), &all, &policy).current_wave, None);
    }

    #[test]
    fn a_failed_replacement_stops_its_pool_and_the_other_pools_go_on() {
        use NodePhase::*;
        let mut p = plan();
        // c1 lives in another pool.
        p.outdated[3].pool = "other".into();
        p.waves[1].surge[0].pool = "other".into();
        let ph = phases(&[("a1", ReplacementFailed), ("b1", SurgeRequested)]);
        assert_eq!(stopped_pools(&p, &ph), BTreeSet::from(["w".to_string()]));
        let a = admit(&p, &ph, &StuckDrainPolicy::default());
        assert!(a.start.is_empty(), "a2 is in the stopped pool: {a:?}");
        assert!(!a.stop, "the run goes on for the other pools");
        // b1's replacement still pending: wave 0 not done yet.
        assert_eq!(a.current_wave, Some(0));
        let ph = phases(&[("a1", ReplacementFailed), ("b1", ReplacementFailed)]);
        let a = admit(&p, &ph, &StuckDrainPolicy::default());
        assert_eq!(a.current_wave, Some(1), "a2 never starts: wave 0 is over");
        assert_eq!(a.start, vec![("c1".into(), StartMode::Surge)]);
        assert!(settled(ReplacementFailed, true));
        assert!(settled(Outdated, true) && !settled(Outdated, false));
        assert!(!settled(SurgeRequested, true) && !settled(Drained, false));
    }

    #[test]
    fn too_many_left_cordoned_stops_new_starts() {
        use NodePhase::*;
        let a = admit(
            &plan(),
            &phases(&[("a1", CordonedLeft), ("a2", Gone), ("b1", Gone)]),
            &StuckDrainPolicy::default(),
        );
        assert!(a.stop);
        assert!(a.start.is_empty());
    }
}
