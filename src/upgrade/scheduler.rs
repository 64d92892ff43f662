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
use std::collections::{BTreeMap, BTreeSet};

/// How a node's replacement is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Request surge capacity in its zone first; drain once it is Ready.
    Surge,
    /// Drain with the unavailability budget; the replacement comes after.
    Unavailable,
}

impl StartMode {
    /// The value of the mode annotation.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StartMode::Surge => "surge",
            StartMode::Unavailable => "unavailable",
        }
    }

    /// The phase a node started in this mode is counted at in the round that starts it.
    pub(crate) fn started_phase(self) -> NodePhase {
        match self {
            StartMode::Surge => NodePhase::SurgeRequested,
            StartMode::Unavailable => NodePhase::Tainted,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Nodes to move out of `Outdated` now, with their mode.
    pub(crate) start: Vec<(String, StartMode)>,
    /// Stop starting nodes: too many nodes were left cordoned.
    pub(crate) stop: bool,
    /// The `room` [`admit`] was given, left after the nodes started now (what this round's
    /// claims may still take).
    pub(crate) room_left: BTreeMap<String, i64>,
}

/// Done for wave-gating purposes.
pub(crate) fn is_done(p: NodePhase) -> bool {
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
pub(crate) fn stopped_pools(plan: &Plan, phases: &BTreeMap<String, NodePhase>) -> BTreeSet<String> {
    plan.outdated
        .iter()
        .filter(|n| phase_of(phases, &n.name) == NodePhase::ReplacementFailed)
        .map(|n| n.pool.clone())
        .collect()
}

/// Whether the node needs nothing more from this run: replaced, given up on (left
/// cordoned, replacement failed), or never started because its pool stopped.
pub(crate) fn settled(phase: NodePhase, pool_stopped: bool) -> bool {
    matches!(
        phase,
        NodePhase::Gone | NodePhase::CordonedLeft | NodePhase::ReplacementFailed
    ) || (phase == NodePhase::Outdated && pool_stopped)
}

/// Started and not settled yet.
pub(crate) fn in_flight(phase: NodePhase) -> bool {
    phase != NodePhase::Outdated && !settled(phase, false)
}

fn phase_of(phases: &BTreeMap<String, NodePhase>, node: &str) -> NodePhase {
    phases.get(node).copied().unwrap_or(NodePhase::Outdated)
}

/// Decides which nodes to start, given every planned node's phase (absent = `Outdated`)
/// and the start mode of the nodes already started (absent = surge). `room` is what the
/// cluster serves with: per pool, serving nodes that may still be taken away (see
/// [`super::capacity::room`]; a pool absent is not limited by it). A node is drained without
/// a replacement only while its pool has room (serving nodes above base − `max-unavailable`),
/// so a drained node keeps its slot until its replacement serves, not just until the old node
/// is gone. Surges are admitted first.
pub(crate) fn admit(
    plan: &Plan,
    opts: &PlanOptions,
    phases: &BTreeMap<String, NodePhase>,
    started_modes: &BTreeMap<String, StartMode>,
    policy: &StuckDrainPolicy,
    room: &BTreeMap<String, i64>,
) -> Admission {
    let left_cordoned = phases
        .values()
        .filter(|p| **p == NodePhase::CordonedLeft)
        .count() as u32;
    let stop = left_cordoned > 0 && policy.stop_early(left_cordoned);
    let mut room = room.clone();
    if stop {
        return Admission {
            start: vec![],
            stop,
            room_left: room,
        };
    }
    let stopped = stopped_pools(plan, phases);
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
    // Nodes of a stopped pool that were never started will not start in this run.
    let others_pending = plan.outdated.iter().any(|n| {
        let ph = phase_of(phases, &n.name);
        n.class != NodeClass::StatefulPrimary
            && !is_done(ph)
            && !(ph == NodePhase::Outdated && stopped.contains(&n.pool))
    });
    let mut start = Vec::new();
    let candidates: Vec<_> = plan
        .outdated
        .iter()
        .filter(|n| {
            phase_of(phases, &n.name) == NodePhase::Outdated
                && !stopped.contains(&n.pool)
                && !(n.class == NodeClass::StatefulPrimary && others_pending)
        })
        .collect();
    for n in &candidates {
        let l = opts.limits_for(&n.pool);
        let e = in_flight.entry(n.pool.as_str()).or_default();
        if e.0 < l.max_surge {
            e.0 += 1;
            start.push((n.name.clone(), StartMode::Surge));
        }
    }
    for n in &candidates {
        if start.iter().any(|(s, _)| *s == n.name) {
            continue;
        }
        let l = opts.limits_for(&n.pool);
        let e = in_flight.entry(n.pool.as_str()).or_default();
        if e.1 >= l.max_unavailable {
            continue;
        }
        match room.get_mut(&n.pool) {
            Some(r) if *r <= 0 => continue,
            Some(r) => *r -= 1,
            None => {}
        }
        e.1 += 1;
        start.push((n.name.clone(), StartMode::Unavailable));
    }
    Admission {
        start,
        stop,
        room_left: room,
    }
}

/// Drain order, longest expected drain first (LPT): when many replacements become Ready
/// together, the engine claims them (and hands out PDB tokens) in this order, so the
/// drains that take longest start first instead of in name order. A drain lasts at least
/// as many eviction rounds as the slowest PDB among its pods needs: `ceil(k_b / a_b)` with
/// `k_b` the PDB's pods on planned nodes and `a_b` its steady-state budget. `chains` maps
/// each planned node to the rounds of the PDBs of its evictable pods (one entry per pod);
/// the key is (most rounds, pods to evict), highest first, ties in name order. Nodes
/// absent from `chains` (nothing to evict) go last.
pub(crate) fn drain_order(chains: &BTreeMap<String, Vec<u64>>, nodes: &[String]) -> Vec<String> {
    let mut keyed: Vec<(u64, usize, &String)> = nodes
        .iter()
        .map(|n| {
            let rounds = chains.get(n).map_or(&[][..], Vec::as_slice);
            (rounds.iter().copied().max().unwrap_or(0), rounds.len(), n)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    keyed.into_iter().map(|(_, _, n)| n.clone()).collect()
}

/// Eviction rounds a PDB needs: `ceil(k / a)` (`a` = 0 counts as `k` rounds).
pub(crate) fn pdb_rounds(pods: u64, allowed: u64) -> u64 {
    pods.div_ceil(allowed.max(1))
}

/// Whether a new node of this run can have its markers removed (and its autoscaler
/// annotation restored) before the run ends: the old node it replaced is gone, and its
/// pool will not claim another replacement in this run (no node of the pool still
/// `Outdated` or waiting for a replacement, none whose replacement failed: a failed one
/// is retried by the next run). The markers only guard claims and the surge capacity the
/// roll waits on; this node is neither. Cleaned while the last drains run, the few
/// hundred patches of a large pool no longer queue up after the last drain.
pub(crate) fn new_node_done(old_phase: NodePhase, pool_phases: &[NodePhase]) -> bool {
    old_phase == NodePhase::Gone
        && pool_phases.iter().all(|p| {
            !matches!(
                p,
                NodePhase::Outdated | NodePhase::SurgeRequested | NodePhase::ReplacementFailed
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::plan::tests::opts;
    use crate::upgrade::plan::{Estimate, OutdatedNode, Wave, ZoneSurge};

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

    /// [`admit`] on `p` with the default policy, no room limit and `modes` for the nodes
    /// already started.
    fn admit_on(
        p: &Plan,
        o: &PlanOptions,
        ph: &[(&str, NodePhase)],
        modes: &[(&str, StartMode)],
    ) -> Admission {
        let modes = modes.iter().map(|(n, m)| (n.to_string(), *m)).collect();
        let policy = StuckDrainPolicy::default();
        admit(p, o, &phases(ph), &modes, &policy, &BTreeMap::new())
    }

    #[test]
    fn sliding_window_within_surge_and_unavailable() {
        let a = admit_on(&plan(), &opts(2, 1), &[], &[]);
        // Three slots: two surge, one unavailable; c1 (a primary) waits for the others.
        assert_eq!(
            a.start,
            vec![
                ("a1".into(), StartMode::Surge),
                ("a2".into(), StartMode::Surge),
                ("b1".into(), StartMode::Unavailable)
            ]
        );
        let a = admit_on(&plan(), &opts(1, 0), &[], &[]);
        assert_eq!(a.start, vec![("a1".into(), StartMode::Surge)]);
    }

    #[test]
    fn a_slot_frees_when_a_node_is_drained_not_when_its_wave_is() {
        use NodePhase::*;
        let o = opts(1, 0);
        // a1 still draining: the only slot is taken.
        let a = admit_on(&plan(), &o, &[("a1", Draining)], &[]);
        assert!(a.start.is_empty(), "{a:?}");
        // a1 drained: a2 starts although wave 0 (a1, a2, b1) is not done.
        let a = admit_on(&plan(), &o, &[("a1", Drained)], &[]);
        assert_eq!(a.start, vec![("a2".into(), StartMode::Surge)]);
        // Unavailable slots are counted apart from surge slots.
        let modes = [("a1", StartMode::Unavailable)];
        let a = admit_on(&plan(), &opts(1, 1), &[("a1", Tainted)], &modes);
        assert_eq!(a.start, vec![("a2".into(), StartMode::Surge)]);
    }

    #[test]
    fn resume_never_restarts_and_primaries_go_last() {
        use NodePhase::*;
        let o = opts(10, 0);
        let a = admit_on(&plan(), &o, &[("a1", Draining), ("b1", Drained)], &[]);
        assert_eq!(a.start, vec![("a2".into(), StartMode::Surge)]);
        // c1 (primary) waits while any other node is not done, even with free slots.
        let ph = [("a1", Draining), ("a2", Tainted), ("b1", Gone)];
        let a = admit_on(&plan(), &o, &ph, &[]);
        assert!(a.start.is_empty(), "{a:?}");
        // Everything else done (one node left cordoned, under the limit of 2) → c1 starts.
        let policy = StuckDrainPolicy {
            max_blocked_nodes: 2,
            ..StuckDrainPolicy::default()
        };
        let ph = [("a1", Terminating), ("a2", CordonedLeft), ("b1", Gone)];
        let a = admit(
            &plan(),
            &o,
            &phases(&ph),
            &BTreeMap::new(),
            &policy,
            &BTreeMap::new(),
        );
        assert_eq!(a.start, vec![("c1".into(), StartMode::Surge)]);
    }

    #[test]
    fn a_failed_replacement_stops_its_pool_and_the_other_pools_go_on() {
        use NodePhase::*;
        let mut p = plan();
        // c1 lives in another pool.
        p.outdated[3].pool = "other".into();
        p.waves[1].surge[0].pool = "other".into();
        let ph = [("a1", ReplacementFailed), ("b1", SurgeRequested)];
        assert_eq!(
            stopped_pools(&p, &phases(&ph)),
            BTreeSet::from(["w".to_string()])
        );
        let o = opts(2, 0);
        let a = admit_on(&p, &o, &ph, &[]);
        // a2 is in the stopped pool; c1 (a primary, other pool) waits for b1.
        assert!(a.start.is_empty(), "{a:?}");
        assert!(!a.stop, "the run goes on for the other pools");
        let a = admit_on(
            &p,
            &o,
            &[("a1", ReplacementFailed), ("b1", ReplacementFailed)],
            &[],
        );
        // a2 never starts: c1 is the only node left to wait for.
        assert_eq!(a.start, vec![("c1".into(), StartMode::Surge)]);
        assert!(settled(ReplacementFailed, true));
        assert!(settled(Outdated, true) && !settled(Outdated, false));
        assert!(!settled(SurgeRequested, true) && !settled(Drained, false));
    }

    #[test]
    fn too_many_left_cordoned_stops_new_starts() {
        use NodePhase::*;
        let ph = [("a1", CordonedLeft), ("a2", Gone), ("b1", Gone)];
        let a = admit_on(&plan(), &opts(10, 0), &ph, &[]);
        assert!(a.stop);
        assert!(a.start.is_empty());
    }

    #[test]
    fn drain_order_puts_the_longest_pdb_chains_first() {
        assert_eq!(pdb_rounds(38, 4), 10);
        assert_eq!(pdb_rounds(3, 0), 3);
        let chains = BTreeMap::from([
            ("a".to_string(), vec![1, 1, 2]),
            ("b".to_string(), vec![10]),
            ("c".to_string(), vec![2, 2, 2, 2]),
            ("d".to_string(), vec![10, 1]),
        ]);
        let nodes: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        // Most rounds first; then more pods; nothing to evict last.
        assert_eq!(drain_order(&chains, &nodes), ["d", "b", "c", "a", "e"]);
    }

    #[test]
    fn a_new_node_is_done_when_its_old_node_is_gone_and_its_pool_claims_no_more() {
        use NodePhase::*;
        assert!(new_node_done(Gone, &[Gone, Draining, Terminating]));
        // Its old node is still there.
        assert!(!new_node_done(Draining, &[Draining]));
        assert!(!new_node_done(Terminating, &[Terminating]));
        // The pool may still claim a replacement.
        assert!(!new_node_done(Gone, &[Gone, SurgeRequested]));
        assert!(!new_node_done(Gone, &[Gone, Outdated]));
        assert!(!new_node_done(Gone, &[Gone, ReplacementFailed]));
    }
}
