//! Pure: each planned node's next step in a round, in drain order: claim a Ready
//! replacement, start a drain, evict what the PDB budgets allow, finish a drain, terminate.

use super::patches::REPLACES_ANNOTATION;
use super::{instance_alive, Actions, Evict, Finish, Memory, Observed, RunContext};
use super::{PoolZone, FINISHED_PER_ROUND};
use crate::upgrade::drain_policy::{hopeless as pdb_hopeless, StuckAction};
use crate::upgrade::plan::{at_version, NodeClass};
use crate::upgrade::readiness::{gate, GateInput};
use crate::upgrade::scheduler::StartMode;
use crate::upgrade::sim_pool::instance_id_from_provider_id;
use crate::upgrade::snapshot::{NodeInfo, PdbInfo, PodInfo};
use crate::upgrade::state::{decode, Event, MarkerError, NodePhase};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// New node and DaemonSet pods expected on it → its gate's failing checks this round.
type GateCache = RefCell<BTreeMap<(String, usize), Vec<String>>>;

/// Pods per node, for the readiness gate (DaemonSet pods) and the drains.
type PodsByNode<'a> = BTreeMap<&'a str, Vec<PodInfo>>;

/// Every planned node's step this round, in drain order.
pub(super) fn decide_nodes(
    run: &RunContext,
    seen: &Observed,
    mem: &mut Memory,
    claim_room: &mut BTreeMap<String, i64>,
    act: &mut Actions,
) -> Result<(), MarkerError> {
    let mut pods_by_node: PodsByNode<'_> = BTreeMap::new();
    for (p, _) in &seen.pods {
        if let Some(n) = p.node.as_deref() {
            pods_by_node.entry(n).or_default().push(p.clone());
        }
    }
    let mut claimed_now: BTreeSet<String> = BTreeSet::new();
    // Per pool, the zones where an old node waits for its replacement.
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, ph) in &act.phases {
        if *ph == NodePhase::SurgeRequested {
            let (pool, zone) = &run.place[name];
            waiting.entry(pool).or_default().insert(zone);
        }
    }
    let none = BTreeSet::new();
    // Each new node's gate, computed once per round: with hundreds of surges waiting in one
    // zone, evaluating every candidate for every waiting node cost the engine seconds of a
    // 300-node run.
    let gates: GateCache = RefCell::default();
    for name in &run.order {
        let ph = act.phases[name];
        let Some(node) = seen.nodes.get(name) else {
            continue;
        };
        match ph {
            NodePhase::SurgeRequested => {
                let place = &run.place[name];
                let c = Claim {
                    run,
                    seen,
                    pods_by_node: &pods_by_node,
                    gates: &gates,
                    old: node,
                    place,
                    waiting: waiting.get(place.0.as_str()).unwrap_or(&none),
                };
                c.decide(mem, &mut claimed_now, claim_room, act)?;
            }
            NodePhase::Tainted => act.steps.push((name.clone(), vec![Event::DrainStarted])),
            NodePhase::Draining | NodePhase::Blocked => drain(run, seen, mem, node, ph, act)?,
            NodePhase::Drained => {
                // Marker first: a crash after it resumes at Terminating, which terminates
                // (idempotently) before the capacity is recomputed.
                let id = instance_of(node)
                    .filter(|id| mem.terminated.insert(id.to_string()))
                    .map(str::to_string);
                act.terminate_drained.push((name.clone(), id));
            }
            NodePhase::Terminating => {
                if instance_alive(seen, node, &run.place[name].0) {
                    let id = instance_of(node).filter(|id| mem.terminated.insert(id.to_string()));
                    act.terminate_ids.extend(id.map(str::to_string));
                } else if !mem.seen_gone.insert(name.clone()) {
                    // Instance gone, Node still cached: the cloud (or the watch) is usually a
                    // moment behind; delete it if it is still there a round later (each delete
                    // of a Node already gone is a write).
                    act.delete_nodes.push(name.clone());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn instance_of(n: &NodeInfo) -> Option<&str> {
    n.provider_id
        .as_deref()
        .and_then(instance_id_from_provider_id)
}

/// An old node waiting for its surge replacement.
struct Claim<'a> {
    run: &'a RunContext,
    seen: &'a Observed,
    pods_by_node: &'a PodsByNode<'a>,
    gates: &'a GateCache,
    old: &'a NodeInfo,
    place: &'a PoolZone,
    /// Zones of the pool where an old node waits for its replacement.
    waiting: &'a BTreeSet<&'a str>,
}

impl Claim<'_> {
    /// A new node of the old node's pool and zone (see [`RunContext::may_replace`]), at the
    /// target, not another node's.
    fn eligible(&self, c: &NodeInfo, mem: &Memory, claimed_now: &BTreeSet<String>) -> bool {
        let pool = &self.place.0;
        let name = &self.old.name;
        c.pool == *pool
            && self.run.may_replace(self.place, &c.zone, self.waiting)
            && at_version(&c.kubelet_version, &self.run.plan.target_version)
            && !claimed_now.contains(&c.name)
            && mem.claimed_by.get(&c.name).is_none_or(|o| o == name)
            && c.annotations
                .get(REPLACES_ANNOTATION)
                .is_none_or(|r| r == name)
    }

    fn gate_of(&self, c: &NodeInfo) -> Vec<String> {
        let pool = &self.place.0;
        let ds_expected = self
            .pods_by_node
            .get(self.old.name.as_str())
            .map_or(0, |ps| ps.iter().filter(|p| p.daemonset).count());
        let key = (c.name.clone(), ds_expected);
        if let Some(r) = self.gates.borrow().get(&key) {
            return r.clone();
        }
        let inst = instance_of(c).and_then(|id| {
            self.seen
                .instances
                .get(pool)
                .and_then(|is| is.iter().find(|i| i.id == id))
        });
        let r = gate(&GateInput {
            node: c,
            pods: self
                .pods_by_node
                .get(c.name.as_str())
                .map_or(&[], Vec::as_slice),
            expected_daemonset_pods: ds_expected,
            instance: inst,
            backs_load_balancer: self.run.backs_lb.get(pool).copied().unwrap_or(false),
        });
        self.gates.borrow_mut().insert(key, r.clone());
        r
    }

    /// The first old node of this pool in `zone`, in drain order, that has not started and
    /// is not starting this round: the one a surge that landed in `zone` belongs to.
    fn successor_in(&self, zone: &str, act: &Actions) -> Option<String> {
        let pool = &self.place.0;
        self.run
            .order
            .iter()
            .find(|y| {
                let (p, z) = &self.run.place[*y];
                p == pool
                    && z == zone
                    && act.phases.get(*y) == Some(&NodePhase::Outdated)
                    && self.seen.nodes.contains_key(*y)
                    && !act.starts.iter().any(|(s, _)| s == *y)
                    && !act.handed_over.contains_key(*y)
                    && !act.steps.iter().any(|(n, _)| n == *y)
                    && self
                        .run
                        .plan
                        .outdated
                        .iter()
                        .any(|n| n.name == **y && n.class != NodeClass::StatefulPrimary)
            })
            .cloned()
    }

    /// Why no replacement passed the gate: the first unready candidates' checks.
    fn no_replacement(
        &self,
        mem: &Memory,
        claimed_now: &BTreeSet<String>,
        waited: Duration,
    ) -> String {
        let (pool, zone) = self.place;
        let unready: Vec<String> = self
            .seen
            .nodes
            .values()
            .filter(|c| self.eligible(c, mem, claimed_now))
            .filter_map(|c| {
                let why = self.gate_of(c);
                (!why.is_empty()).then(|| format!("{}: {}", c.name, why.join(", ")))
            })
            .take(3)
            .collect();
        let detail = if unready.is_empty() {
            format!(
                "no node at {} registered in the zone",
                self.run.plan.target_version
            )
        } else {
            unready.join("; ")
        };
        format!(
            "no replacement in {pool}/{zone} passed the readiness gate within {}s \
             ({detail}); pool {pool} stopped, {} keeps serving",
            waited.as_secs(),
            self.old.name
        )
    }

    fn decide(
        &self,
        mem: &mut Memory,
        claimed_now: &mut BTreeSet<String>,
        claim_room: &mut BTreeMap<String, i64>,
        act: &mut Actions,
    ) -> Result<(), MarkerError> {
        let pool = &self.place.0;
        let name = &self.old.name;
        let now = self.seen.now;
        let mut candidate = None;
        // Its own zone first; another zone only in a pool whose group spans zones (no second
        // pass elsewhere: this runs for every waiting node every round).
        let zone = self.place.1.as_str();
        let spread = self.run.spread_pools.contains(&self.place.0);
        let nodes = self.seen.nodes.values();
        let here = nodes.clone().filter(|c| c.zone == zone);
        let elsewhere = nodes.filter(|c| spread && c.zone != zone);
        for c in here.chain(elsewhere) {
            if !self.eligible(c, mem, claimed_now) || !self.gate_of(c).is_empty() {
                continue;
            }
            // Hold `min_ready` from the first time every check passed.
            let first = *mem.ready_seen.entry(c.name.clone()).or_insert(now);
            if now.saturating_duration_since(first) >= self.run.min_ready {
                candidate = Some(c);
                break;
            }
        }
        // Counted from this process's first sight of the request at the latest: a resumed
        // run gives a replacement its full --new-node-timeout instead of failing a healthy
        // one at once on an earlier run's marker.
        let by_marker = decode(self.old)?
            .and_then(|m| m.since)
            .and_then(|t| (self.seen.wall - t).to_std().ok())
            .unwrap_or_default();
        // The cloud put a replacement in another zone: an old node there takes the request
        // over, so each zone keeps its size; only where no old node is left there does this
        // one take it across zones.
        if let Some(c) = candidate.filter(|c| c.zone != self.place.1) {
            if let Some(y) = self.successor_in(&c.zone, act) {
                tracing::info!(
                    node = %name, to = %y, zone = %c.zone, new = %c.name,
                    "replacement landed in another zone; its surge request goes to a node there"
                );
                act.starts.push((y.clone(), StartMode::Surge));
                act.steps.push((name.clone(), vec![Event::SurgeHandedOver]));
                act.handed_over.insert(name.clone(), y.clone());
                claimed_now.insert(c.name.clone());
                return Ok(());
            }
            tracing::info!(
                node = %name, new = %c.name, zone = %c.zone,
                "replacement landed in another zone with no old node left there; taking it"
            );
        }
        let first_seen = *mem.surge_seen.entry(name.clone()).or_insert(now);
        let waited = by_marker.min(now.saturating_duration_since(first_seen));
        // Its cordon takes a serving node away: only with room to spare (a Ready surge node
        // is the room; another node's replacement is not).
        let room = claim_room.get(pool).copied().unwrap_or(0);
        if (candidate.is_none() || room <= 0) && waited > self.run.ready_timeout {
            // Never a drain without ready replacement capacity: the node keeps serving, its
            // pool stops, the run fails with the checks that failed. A Ready replacement
            // with no room means the pool is short (other replacements never came up):
            // waiting for room that may never come hung the run.
            let reason = match candidate {
                None => self.no_replacement(mem, claimed_now, waited),
                Some(c) => format!(
                    "{} is Ready but {pool} has no serving node to spare for {}s (it serves \
                     fewer nodes than its base minus --max-unavailable: replacements elsewhere \
                     in the pool are not serving); pool {pool} stopped, {name} keeps serving",
                    c.name,
                    waited.as_secs()
                ),
            };
            tracing::error!(node = %name, %pool, "{reason}");
            act.give_up(name, reason.clone());
            act.rungs
                .push((name.clone(), Event::ReplacementFailed { reason }));
            return Ok(());
        }
        if let Some(c) = candidate {
            let r = claim_room.entry(pool.clone()).or_default();
            if *r > 0 {
                *r -= 1;
                claimed_now.insert(c.name.clone());
                act.claims.push((name.clone(), c.name.clone()));
            }
        }
        Ok(())
    }
}

/// A draining (or blocked) node: finish it, evict what the budgets allow, climb the
/// stuck-drain ladder.
fn drain(
    run: &RunContext,
    seen: &Observed,
    mem: &mut Memory,
    node: &NodeInfo,
    ph: NodePhase,
    act: &mut Actions,
) -> Result<(), MarkerError> {
    let name = &node.name;
    let pdbs: Vec<&PdbInfo> = seen.pdbs.iter().map(|(b, _)| b).collect();
    let left: Vec<&PodInfo> = seen
        .pods
        .iter()
        .filter(|(p, deleting)| p.node.as_deref() == Some(name) && p.evictable() && !deleting)
        .map(|(p, _)| p)
        .collect();
    let replacements_ready = mem.touched_pdbs.get(name).is_none_or(|keys| {
        keys.iter().all(|k| {
            pdbs.iter()
                .find(|b| b.key() == *k)
                .and_then(|b| b.status)
                .is_none_or(|s| s.current_healthy >= s.expected_pods)
        })
    });
    // A PDB that can never allow a disruption is reported: at once when its spec says so,
    // after a short hold when only its status does.
    let hopeless = left.iter().find_map(|p| {
        pdbs.iter().filter(|b| b.covers(p)).find_map(|b| {
            let held = mem
                .never_seen
                .get(&b.key())
                .map_or(Duration::ZERO, |t| seen.now.saturating_duration_since(*t));
            pdb_hopeless(b, held)
        })
    });
    let terminating_here = seen
        .pods
        .iter()
        .any(|(p, d)| p.node.as_deref() == Some(name) && *d && p.evictable());
    if left.is_empty() && replacements_ready && !terminating_here {
        if act.finish.len() < FINISHED_PER_ROUND {
            let terminate = instance_of(node)
                .filter(|id| !mem.terminated.contains(*id))
                .map(str::to_string);
            act.finish.push(Finish {
                node: name.clone(),
                terminate,
                keep_size: false,
                successor: None,
            });
        } else {
            act.deferred = true;
        }
        return Ok(());
    }
    for p in left {
        // The pod cache may lag behind a successful eviction.
        if mem.evicted_uids.contains(&p.uid) {
            continue;
        }
        let covering: Vec<String> = pdbs
            .iter()
            .filter(|b| b.covers(p))
            .map(|b| b.key())
            .collect();
        if mem.tokens.try_take(&p.name, &covering, seen.now).is_err() {
            continue;
        }
        act.evictions.push(Evict {
            node: name.clone(),
            pod: p.clone(),
            covering,
        });
    }
    let markers = decode(node)?;
    let stuck_for = markers
        .as_ref()
        .and_then(|m| m.drain_started)
        .and_then(|t| (seen.wall - t).to_std().ok())
        .unwrap_or_default();
    // Blocked is the report's own marker: a process that took over after a crash must not
    // wait for a report it will never make (the ladder stood still, the run never ended).
    let reported = mem.stuck_reported.contains(name) || ph == NodePhase::Blocked;
    match run.policy.decide(stuck_for, reported, hopeless.is_some()) {
        StuckAction::Report if ph == NodePhase::Draining => {
            let reason = match &hopeless {
                Some(why) => format!("drain of {name} cannot finish: {why}"),
                None => format!(
                    "drain of {name} made no progress for {}s",
                    stuck_for.as_secs()
                ),
            };
            tracing::warn!(node = %name, "{reason}");
            act.rungs.push((name.clone(), Event::Stuck { reason }));
            mem.stuck_reported.insert(name.clone());
        }
        StuckAction::LeaveCordoned => {
            let why = markers
                .and_then(|m| m.reason)
                .filter(|_| ph == NodePhase::Blocked)
                .unwrap_or_default();
            let reason = format!(
                "left cordoned after {}s{}{why}",
                stuck_for.as_secs(),
                if why.is_empty() { "" } else { ": " }
            );
            tracing::error!(node = %name, "{reason}");
            act.give_up(name, reason.clone());
            act.rungs
                .push((name.clone(), Event::LeftCordoned { reason }));
        }
        _ => {}
    }
    Ok(())
}
