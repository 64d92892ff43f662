//! Desired cloud capacity per (pool, zone), **pure** and *computed*, never incremented:
//! `desired = base + Σ extra(node)`, where `extra` is 1 while a node's replacement has been
//! requested and the old instance is not yet terminated with decrement. Because it is
//! derived from the Node markers, a crash between "set desired" and "write marker" cannot
//! double a surge: the restarted engine recomputes the same number and the call is a no-op.

use super::scheduler::StartMode;
use super::state::NodePhase;
use std::collections::BTreeMap;

/// `(pool, zone)`.
pub type PoolZone = (String, String);

/// Whether a node in `phase`, started with `mode`, holds one extra instance of capacity.
pub(crate) fn holds_extra(phase: NodePhase, mode: StartMode) -> bool {
    use NodePhase::*;
    match mode {
        // Replacement requested before the drain; released by terminate-with-decrement.
        // A replacement that failed keeps its instance: for inspection, and for the next
        // run's retry, which must not surge a second one.
        StartMode::Surge => matches!(
            phase,
            SurgeRequested
                | ReplacementFailed
                | ReplacementReady
                | Tainted
                | Draining
                | Blocked
                | CordonedLeft
                | Drained
        ),
        // No extra at any time: the drained node's terminate-with-decrement takes the size
        // one below base, and the next capacity sync (the cloud is read again after every
        // decrement) brings it back to base, which launches the replacement. Holding an
        // extra at Drained requested the replacement while the old instance still ran:
        // base + max-surge + max-unavailable instances, over the window the user allowed.
        StartMode::Unavailable => false,
    }
}

/// Desired capacity now. `base` is each (pool, zone)'s size before the run (recorded at
/// start); `nodes` maps every planned node to its place, phase and start mode.
pub(crate) fn desired(
    base: &BTreeMap<PoolZone, u32>,
    nodes: &[(PoolZone, NodePhase, StartMode)],
) -> BTreeMap<PoolZone, u32> {
    let mut out = base.clone();
    for (place, phase, mode) in nodes {
        if holds_extra(*phase, *mode) {
            *out.entry(place.clone()).or_default() += 1;
        }
    }
    out
}

/// What one (pool, zone) serves with right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ZoneCounts {
    /// Nodes Ready and not cordoned.
    pub(crate) serving: u32,
    /// Old nodes not Ready on their own (the engine only cordons): not its to make up for.
    pub(crate) broken: u32,
}

/// Per pool, how many serving nodes may still be taken away (a node drained without a
/// replacement, or an old node cordoned once it claims a Ready new node):
/// `room = Σ_z serving(z) − Σ_z (base(z) − broken(z)) + max_unavailable(pool)`. Physical,
/// whatever the phases say: a drained node's replacement that still boots is not serving, and
/// a Ready new node that is another node's replacement is no room either, so serving nodes
/// never drop below base − `max-unavailable`. Negative when the pool is short.
pub(crate) fn room(
    base: &BTreeMap<PoolZone, u32>,
    counts: &BTreeMap<PoolZone, ZoneCounts>,
    max_unavailable: impl Fn(&str) -> u32,
) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (pz, b) in base {
        let c = counts.get(pz).copied().unwrap_or_default();
        let need = i64::from(b.saturating_sub(c.broken));
        *out.entry(pz.0.clone()).or_default() += i64::from(c.serving) - need;
    }
    for (pool, r) in out.iter_mut() {
        *r += i64::from(max_unavailable(pool));
    }
    out
}

/// The `set_desired` calls needed to move the cloud from `observed` to `want`.
pub fn changes(
    observed: &BTreeMap<PoolZone, u32>,
    want: &BTreeMap<PoolZone, u32>,
) -> Vec<(PoolZone, u32)> {
    want.iter()
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::state::{transition, Event};

    fn pz(z: &str) -> PoolZone {
        ("w".to_string(), z.to_string())
    }

    #[test]
    fn surge_walk_returns_to_base_and_never_doubles() {
        let base = BTreeMap::from([(pz("a"), 2), (pz("b"), 1)]);
        let walk = [
            Event::SurgeRequested,
            Event::ReplacementReady,
            Event::Tainted,
            Event::DrainStarted,
            Event::DrainCompleted,
            Event::TerminateRequested,
        ];
        let mut phase = NodePhase::Outdated;
        let mut seen = vec![desired(&base, &[(pz("a"), phase, StartMode::Surge)])[&pz("a")]];
        for ev in &walk {
            phase = transition("n", phase, ev).expect("legal");
            let d = desired(&base, &[(pz("a"), phase, StartMode::Surge)]);
            // Recomputing (a restart) gives the same answer: idempotent.
            assert_eq!(d, desired(&base, &[(pz("a"), phase, StartMode::Surge)]));
            assert_eq!(d[&pz("b")], 1);
            seen.push(d[&pz("a")]);
        }
        // The cloud decrements on terminate, so after Terminating the computed value is base.
        assert_eq!(seen, [2, 3, 3, 3, 3, 3, 2]);
        let gone = desired(&base, &[(pz("a"), NodePhase::Gone, StartMode::Surge)]);
        assert_eq!(gone[&pz("a")], 2);
    }

    fn serving(n: u32) -> ZoneCounts {
        ZoneCounts {
            serving: n,
            broken: 0,
        }
    }

    #[test]
    fn room_counts_serving_nodes_against_base_and_the_budget() {
        let base = BTreeMap::from([(pz("a"), 3), (pz("b"), 3)]);
        // One node drained without a replacement in a: with max-unavailable 1, no more room.
        let counts = BTreeMap::from([(pz("a"), serving(2)), (pz("b"), serving(3))]);
        assert_eq!(room(&base, &counts, |_| 1)["w"], 0);
        // A Ready surge node is room: its old node may cordon itself.
        let surged = BTreeMap::from([(pz("a"), serving(4)), (pz("b"), serving(3))]);
        assert_eq!(room(&base, &surged, |_| 0)["w"], 1);
        // A broken old node is not ours to make up for.
        let broken = BTreeMap::from([
            (
                pz("a"),
                ZoneCounts {
                    serving: 2,
                    broken: 1,
                },
            ),
            (pz("b"), serving(3)),
        ]);
        assert_eq!(room(&base, &broken, |_| 0)["w"], 0);
    }

    #[test]
    fn unavailable_mode_never_adds_to_the_base() {
        let base = BTreeMap::from([(pz("a"), 2)]);
        for (phase, want) in [
            (NodePhase::Outdated, 2),
            (NodePhase::Tainted, 2),
            (NodePhase::Draining, 2),
            (NodePhase::Drained, 2),
            (NodePhase::Terminating, 2),
            (NodePhase::Gone, 2),
        ] {
            assert_eq!(
                desired(&base, &[(pz("a"), phase, StartMode::Unavailable)])[&pz("a")],
                want,
                "{phase}"
            );
        }
    }

    #[test]
    fn only_differences_become_calls() {
        let base = BTreeMap::from([(pz("a"), 2), (pz("b"), 1)]);
        let nodes = [
            (pz("a"), NodePhase::Draining, StartMode::Surge),
            (pz("a"), NodePhase::SurgeRequested, StartMode::Surge),
            (pz("b"), NodePhase::Outdated, StartMode::Surge),
        ];
        let want = desired(&base, &nodes);
        assert_eq!(want[&pz("a")], 4);
        assert_eq!(changes(&base, &want), vec![(pz("a"), 4)]);
        assert!(changes(&want, &want).is_empty());
    }
}
