//! Pure: one round of the upgrade engine. [`decide`] maps what the watches show
//! ([`Observed`]), what this process remembers ([`Memory`]) and the run's fixed facts
//! ([`RunContext`]) to the round's [`Actions`]; the engine carries them out and hands the
//! answers back through [`Memory::absorb`]. No I/O and no clock: time is an input, so the
//! property tests drive thousands of rounds per second against a model of the cluster.
//!
//! Sub-modules: [`per_node`] (each planned node's next step), [`patches`] (the marker
//! patches, as functions of the node as stored), [`setup`] (what a starting process does
//! before its first round: adopt the run, retry failed replacements, mark the plan). The
//! property tests (`tests/upgrade_decide_props.rs`) drive it against a model of the cluster.

pub mod patches;
pub(crate) mod per_node;
pub mod setup;

use super::capacity::{self, PoolZone, ZoneCounts};
use super::drain_policy::{
    never_allows, EvictionBackoff, EvictionTokens, StuckDrainPolicy, UNCONFIRMED_GRACE,
};
use super::kube_cluster::Eviction;
use super::plan::{at_version, NodeClass, Plan, PlanOptions};
use super::pool::{Instance, InstanceLifecycle};
use super::readiness::node_checks;
use super::report::BlockedNode;
use super::scheduler::{
    admit, drain_order, in_flight, new_node_done, pdb_rounds, settled, stopped_pools, StartMode,
};
use super::snapshot::{NodeInfo, PdbInfo, PdbStatus, PodInfo};
use super::state::{decode, Event, MarkerError, NodePhase, ROLE_LABEL, RUN_ANNOTATION};
use chrono::{DateTime, Utc};
use patches::{mode_of, REPLACES_ANNOTATION};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Finished drains (marker + terminate) sent per round; the rest go in the next round, at
/// once. A round ends when its slowest batch does, and the evictions of the next round
/// (PDB tokens freed meanwhile) wait for it. Claims are not capped: every Ready
/// replacement is claimed (longest drain first) as soon as it is seen.
pub(crate) const FINISHED_PER_ROUND: usize = 32;
/// Early clean-ups of new nodes ([`new_node_done`]) sent per round (never on the critical
/// path: they only must not hold the round up).
pub(crate) const CLEAN_PER_ROUND: usize = 32;

/// The run's fixed facts, computed once when a process takes the run over.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub(crate) plan: Plan,
    /// Its options (per-pool limits).
    pub(crate) opts: PlanOptions,
    pub(crate) policy: StuckDrainPolicy,
    /// A new node must pass the readiness gate continuously this long before it counts.
    pub(crate) min_ready: Duration,
    /// A surge replacement not Ready this long after it was requested fails.
    pub(crate) ready_timeout: Duration,
    /// The run id (adopted from the markers on resume).
    pub run_id: String,
    /// Each planned node's pool and zone.
    pub(crate) place: BTreeMap<String, PoolZone>,
    /// Each (pool, zone)'s desired size before the run (from the Lease on resume).
    pub(crate) base: BTreeMap<PoolZone, u32>,
    /// Pools whose nodes back a load balancer.
    pub(crate) backs_lb: BTreeMap<String, bool>,
    /// Pools that surge, and so evacuate hard (NoSchedule from the start).
    pub(crate) hard_pools: BTreeSet<String>,
    /// Planned nodes in drain order: stateless before stateful, then longest PDB chain.
    pub(crate) order: Vec<String>,
    /// The cloud can terminate an instance keeping its group's size (the cloud launches the
    /// replacement): a finished drain whose zone starts its next node then costs one call.
    pub replace_on_terminate: bool,
    /// Pools whose one group spans zones: the cloud picks where a new instance lands, so a
    /// replacement may be in another zone of the pool (see [`RunContext::may_replace`]).
    pub spread_pools: BTreeSet<String>,
}

impl RunContext {
    /// The context of `plan`, with the drain order taken from the pods and PDBs seen at the
    /// start.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: &Plan,
        opts: &PlanOptions,
        policy: &StuckDrainPolicy,
        min_ready: Duration,
        ready_timeout: Duration,
        run_id: String,
        base: BTreeMap<PoolZone, u32>,
        backs_lb: BTreeMap<String, bool>,
        pods: &[PodInfo],
        pdbs: &[PdbInfo],
    ) -> Self {
        let place: BTreeMap<String, PoolZone> = plan
            .outdated
            .iter()
            .map(|n| (n.name.clone(), (n.pool.clone(), n.zone.clone())))
            .collect();
        // Pools that surge evacuate hard: drained pods always have new capacity to go to. A
        // pool that only drains without replacement (max-surge 0) keeps the soft taint, or its
        // evicted pods would have nowhere to run.
        let hard_pools = plan
            .outdated
            .iter()
            .map(|n| n.pool.clone())
            .filter(|p| opts.limits_for(p).max_surge > 0)
            .collect();
        let chains = pdb_chains(&place, pods, pdbs);
        // Stateless nodes first, then stateful, primaries last (the plan's classes); longest
        // expected drain first within a class. LPT alone put StatefulSet nodes first, whose
        // pods then landed beside nodes still to be drained.
        let class: BTreeMap<&str, NodeClass> = plan
            .outdated
            .iter()
            .map(|n| (n.name.as_str(), n.class))
            .collect();
        let mut order = drain_order(&chains, &place.keys().cloned().collect::<Vec<_>>());
        order.sort_by_key(|n| class.get(n.as_str()).copied());
        RunContext {
            plan: plan.clone(),
            opts: opts.clone(),
            policy: *policy,
            min_ready,
            ready_timeout,
            run_id,
            place,
            base,
            backs_lb,
            hard_pools,
            order,
            replace_on_terminate: false,
            spread_pools: BTreeSet::new(),
        }
    }

    /// Whether a new node in `zone` may replace an old node of `place`: the same zone, or,
    /// in a pool whose group spans zones, any zone where no old node waits for it
    /// (`waiting`: zones of the pool with a surge request still open). A replacement the
    /// cloud put elsewhere is taken where it is not another node's own.
    pub(crate) fn may_replace(
        &self,
        place: &PoolZone,
        zone: &str,
        waiting: &BTreeSet<&str>,
    ) -> bool {
        place.1 == zone || (self.spread_pools.contains(&place.0) && !waiting.contains(zone))
    }
}

/// Per planned node, the eviction rounds `ceil(k / a)` of each PDB covering its pods (`k`: the
/// PDB's evictable pods on planned nodes, `a`: its steady-state budget).
pub(crate) fn pdb_chains(
    place: &BTreeMap<String, PoolZone>,
    pods: &[PodInfo],
    pdbs: &[PdbInfo],
) -> BTreeMap<String, Vec<u64>> {
    let mut chains: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for b in pdbs {
        let on_planned: Vec<&str> = pods
            .iter()
            .filter(|p| p.evictable() && b.covers(p))
            .filter_map(|p| p.node.as_deref())
            .filter(|n| place.contains_key(*n))
            .collect();
        let a = b.steady_state_allowed_among(pods).max(0) as u64;
        let rounds = pdb_rounds(on_planned.len() as u64, a);
        for n in on_planned {
            chains.entry(n.to_string()).or_default().push(rounds);
        }
    }
    chains
}

/// What the watches (and the cloud, where a decision needs it) show at the start of a round.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Monotonic time of the observation (the engine's clock seam).
    pub now: Instant,
    /// Wall time of the observation (for the markers' timestamps).
    pub wall: DateTime<Utc>,
    /// Every Node by name.
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Every pod, with whether it is being deleted.
    pub pods: Vec<(PodInfo, bool)>,
    /// Every PDB, with its resourceVersion (a new version is a new status).
    pub pdbs: Vec<(PdbInfo, String)>,
    /// `(pdb, pod)` pairs PDB statuses listed in `disruptedPods` since the last round.
    pub confirmations: Vec<(String, String)>,
    /// Instances of the pools [`instance_pools`] named.
    pub instances: BTreeMap<String, Vec<Instance>>,
}

/// What this process remembers between rounds. Lost on a restart: everything here is either
/// re-derived from the markers or only makes the engine faster or quieter.
#[derive(Debug, Default)]
pub struct Memory {
    /// The most advanced phase this process wrote per node (the cache may lag behind).
    pub(crate) known: BTreeMap<String, NodePhase>,
    /// Start modes this process wrote.
    pub(crate) known_mode: BTreeMap<String, StartMode>,
    /// New node → the old node that claimed it, as this process wrote it.
    pub(crate) claimed_by: BTreeMap<String, String>,
    /// PDB budget tokens.
    pub(crate) tokens: EvictionTokens,
    /// The last PDB resourceVersion seen.
    pub(crate) pdb_seen: BTreeMap<String, String>,
    /// When to let a refused PDB try again with no status change.
    pub(crate) probe_at: BTreeMap<String, Instant>,
    /// Per PDB, the jittered backoff after a refusal.
    pub(crate) backoff: BTreeMap<String, EvictionBackoff>,
    /// Since when each PDB has allowed nothing with every pod healthy.
    pub(crate) never_seen: BTreeMap<String, Instant>,
    /// Nodes whose stuck drain was reported.
    pub(crate) stuck_reported: BTreeSet<String>,
    /// When this process first saw each surge request.
    pub(crate) surge_seen: BTreeMap<String, Instant>,
    /// When each new node first passed every readiness check.
    pub(crate) ready_seen: BTreeMap<String, Instant>,
    /// Pods (by UID) this process evicted or found gone: never evicted again.
    pub(crate) evicted_uids: BTreeSet<String>,
    /// Instances this process asked to terminate.
    pub(crate) terminated: BTreeSet<String>,
    /// Terminating nodes already seen with their instance terminated.
    pub(crate) seen_gone: BTreeSet<String>,
    /// New nodes whose markers are off.
    pub cleaned: BTreeSet<String>,
    /// Since when the pools have been short of serving nodes with every node settled.
    pub(crate) short_since: Option<Instant>,
    /// Per old node, the PDBs its evictions touched (its drain ends when they are healthy).
    pub(crate) touched_pdbs: BTreeMap<String, BTreeSet<String>>,
    /// Since when each pool has had nodes left to start, none in flight and none it may
    /// start (see [`stalls`]).
    pub(crate) stall_since: BTreeMap<String, Instant>,
    /// Pools given up on: they stayed short of serving nodes with nothing in flight.
    pub(crate) stalled: BTreeSet<String>,
    /// Nodes that handed their surge request over (read as Outdated until started again,
    /// whatever a lagging cache shows).
    pub(crate) handed_over: BTreeSet<String>,
}

/// One eviction to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Evict {
    /// The node being drained.
    pub(crate) node: String,
    /// The pod.
    pub pod: PodInfo,
    /// The PDBs covering it (their tokens are taken).
    pub(crate) covering: Vec<String>,
}

/// One finished drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The drained node.
    pub node: String,
    /// Its instance, to terminate (none when already asked).
    pub terminate: Option<String>,
    /// Terminate it keeping the group's size: the cloud launches its replacement, which the
    /// next node of its zone (started this round) or the node itself (no surge) wanted.
    pub keep_size: bool,
    /// The node started this round in its place (its surge slot passes on). This node's
    /// marker is written before the successor's start: a crash between the two then leaves
    /// this one Terminating (no extra), never both holding one.
    pub successor: Option<String>,
}

/// One round's decisions, in the order the engine carries them out.
#[derive(Debug, Clone, Default)]
pub struct Actions {
    /// Each planned node's phase this round was decided from.
    pub phases: BTreeMap<String, NodePhase>,
    /// Serving nodes per (pool, zone) this round was decided from.
    pub(crate) counts: BTreeMap<PoolZone, ZoneCounts>,
    /// PDB statuses new this round (for the meters).
    pub(crate) pdb_updates: Vec<(String, PdbStatus)>,
    /// Nodes to start, with their mode (marker first, then the capacity).
    pub starts: Vec<(String, StartMode)>,
    /// The cloud's desired sizes; `None` while a resumed termination must go first.
    pub want: Option<BTreeMap<PoolZone, u32>>,
    /// New nodes whose part in the roll is over: markers off.
    pub clean: Vec<String>,
    /// Plain marker steps.
    pub steps: Vec<(String, Vec<Event>)>,
    /// Failure-ladder rungs: a Warning Event on the node, then the marker step.
    pub rungs: Vec<(String, Event)>,
    /// Nodes given up on, for the report.
    pub blocked: Vec<BlockedNode>,
    /// `(old, new)`: claim the new node, then taint, cordon and drain the old one.
    pub claims: Vec<(String, String)>,
    /// Evictions (tokens taken).
    pub evictions: Vec<Evict>,
    /// Finished drains.
    pub finish: Vec<Finish>,
    /// Old nodes whose surge landed in another zone of a pool whose group spans zones,
    /// with the old node there that takes the request over (started in [`Actions::starts`]
    /// with [`patches::SURGE_FROM_ANNOTATION`]): back to Outdated.
    pub handed_over: BTreeMap<String, String>,
    /// Drained nodes of a resumed run: marker, then terminate.
    pub terminate_drained: Vec<(String, Option<String>)>,
    /// Instances of Terminating nodes still alive.
    pub terminate_ids: Vec<String>,
    /// Node objects whose instance is gone.
    pub delete_nodes: Vec<String>,
    /// Work was left for the next round by a per-round cap: start it at once.
    pub(crate) deferred: bool,
    /// The run is over.
    pub done: bool,
}

impl Actions {
    /// Reports `node` given up on (empty: a pool or the run).
    fn give_up(&mut self, node: &str, reason: String) {
        let node = node.to_string();
        self.blocked.push(BlockedNode { node, reason });
    }
}

/// The answers to a round's requests, in the order of its [`Actions`].
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Nodes as written by the starts, steps, rungs and resumed terminations.
    pub written: Vec<NodeInfo>,
    /// Per claim, the old node as written (cordoned, draining); `None` when another node
    /// had claimed the new one.
    pub claims: Vec<Option<NodeInfo>>,
    /// Per eviction, the API's answer.
    pub evictions: Vec<Eviction>,
    /// Per finished drain, the node as written and whether its instance was terminated.
    pub finished: Vec<(NodeInfo, bool)>,
    /// New nodes whose markers are off (or that are gone).
    pub cleaned: Vec<String>,
}

/// The seed of a PDB's backoff jitter.
fn seed(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Memory {
    /// Remembers that `node` was written at `phase` (phases only move forward).
    pub fn bump(&mut self, node: &str, phase: NodePhase) {
        let e = self.known.entry(node.to_string()).or_insert(phase);
        *e = (*e).max(phase);
    }

    /// Remembers `n`'s phase as this process wrote it.
    pub(crate) fn bump_written(&mut self, n: &NodeInfo) {
        if let Ok(Some(m)) = decode(n) {
            self.bump(&n.name, m.phase);
        }
    }

    /// Takes in the answers to `actions`' requests.
    pub fn absorb(&mut self, actions: &Actions, outcome: &Outcome, now: Instant) {
        for (name, mode) in &actions.starts {
            self.known_mode.insert(name.clone(), *mode);
            self.handed_over.remove(name);
        }
        for n in &outcome.written {
            self.bump_written(n);
        }
        for n in &outcome.cleaned {
            self.cleaned.insert(n.clone());
        }
        for ((old, new), r) in actions.claims.iter().zip(&outcome.claims) {
            let Some(n) = r else {
                tracing::info!(%old, %new, "replacement claimed by another node meanwhile; looking again");
                continue;
            };
            self.claimed_by.insert(new.clone(), old.clone());
            self.bump_written(n);
        }
        for (e, r) in actions.evictions.iter().zip(&outcome.evictions) {
            self.absorb_eviction(e, r, now);
        }
        for (f, (n, did_terminate)) in actions.finish.iter().zip(&outcome.finished) {
            self.bump_written(n);
            if let (Some(id), true) = (&f.terminate, did_terminate) {
                self.terminated.insert(id.clone());
            }
        }
        // Phases only move forward, except a handed-over surge request: forget it.
        for name in actions.handed_over.keys() {
            self.known.remove(name);
            self.known_mode.remove(name);
            self.surge_seen.remove(name);
            self.handed_over.insert(name.clone());
        }
    }

    fn absorb_eviction(&mut self, e: &Evict, r: &Eviction, now: Instant) {
        match r {
            Eviction::Evicted | Eviction::Gone => {
                self.evicted_uids.insert(e.pod.uid.clone());
                // An unready pod's eviction uses no budget (no disruptedPods entry will
                // confirm it). Already gone (the pod watch lagged behind the PDB watch):
                // nothing was disrupted, so the token goes back; kept, it would hold a budget
                // that no later status change might ever release.
                if *r == Eviction::Gone || !e.pod.ready {
                    for k in &e.covering {
                        self.tokens.confirm(k, &e.pod.name);
                    }
                }
                if *r == Eviction::Evicted {
                    self.touched_pdbs
                        .entry(e.node.clone())
                        .or_default()
                        .extend(e.covering.iter().cloned());
                }
            }
            Eviction::Budget(_) | Eviction::MultiplePdbs(_) => {
                // Wait for the PDB watch; the jittered backoff is the safety net if no status
                // change ever arrives.
                if let [one] = e.covering.as_slice() {
                    self.tokens.refused(one, &e.pod.name);
                    let b = self
                        .backoff
                        .entry(one.clone())
                        .or_insert_with(|| EvictionBackoff::new(seed(one)));
                    let delay = b.next().unwrap_or(Duration::from_secs(60));
                    self.probe_at.insert(one.clone(), now + delay);
                }
            }
        }
    }
}

/// The start modes written on the planned nodes.
pub(crate) fn written_modes(
    run: &RunContext,
    nodes: &BTreeMap<String, NodeInfo>,
) -> BTreeMap<String, StartMode> {
    run.place
        .keys()
        .filter_map(|n| nodes.get(n).and_then(mode_of).map(|m| (n.clone(), m)))
        .collect()
}

/// Pools whose instances a round needs (a surge waiting for its replacement, a termination
/// to check): the engine describes them into [`Observed::instances`]. A replacement is judged
/// by the cloud only once the cluster's half of the gate passes for a new node at the target
/// that is nobody's replacement yet (Ready, no not-ready taint, its DaemonSet pods Ready), so
/// a boot costs no cloud reads.
pub fn instance_pools(
    run: &RunContext,
    nodes: &BTreeMap<String, NodeInfo>,
    pods: &[(PodInfo, bool)],
    mem: &Memory,
) -> Result<BTreeMap<String, CloudNeed>, MarkerError> {
    let phases = phases(run, nodes, mem)?;
    let daemon_pods: Vec<PodInfo> = pods
        .iter()
        .filter(|(p, _)| p.daemonset)
        .map(|(p, _)| p.clone())
        .collect();
    let candidates: Vec<&NodeInfo> = nodes
        .values()
        .filter(|c| c.ready && at_version(&c.kubelet_version, &run.plan.target_version))
        .collect();
    let mut out = BTreeMap::new();
    for (n, p) in &phases {
        let need = match p {
            NodePhase::SurgeRequested => {
                let (pool, zone) = &run.place[n];
                let expected = daemon_pods
                    .iter()
                    .filter(|p| p.node.as_deref() == Some(n))
                    .count();
                // Not another node's replacement, as `Claim::eligible` reads it: a node this
                // one claimed before a crash (its annotation names this node) still counts.
                // Any zone of a pool whose group spans zones (a superset of what the claim
                // may take there: a read too many, never one too few).
                let judged = candidates.iter().any(|c| {
                    &c.pool == pool
                        && (&c.zone == zone || run.spread_pools.contains(pool))
                        && mem.claimed_by.get(&c.name).is_none_or(|o| o == n)
                        && c.annotations
                            .get(REPLACES_ANNOTATION)
                            .is_none_or(|r| r == n)
                        && node_checks(c, &daemon_pods, expected).is_empty()
                });
                judged.then_some(CloudNeed::Gate)
            }
            NodePhase::Terminating => Some(CloudNeed::Termination),
            _ => None,
        };
        if let Some(need) = need {
            let e = out.entry(run.place[n].0.clone()).or_insert(need);
            *e = (*e).max(need);
        }
    }
    Ok(out)
}

/// Why a round needs a pool's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloudNeed {
    /// A terminated instance is awaited: a read a few seconds old will do (the next node's
    /// surge does not wait for it; a stale read only says "still there").
    Termination,
    /// A replacement is judged by the readiness gate: read now.
    Gate,
}

/// Each planned node's phase: its markers, never behind what this process wrote; a planned
/// node that no longer exists is Gone.
pub(crate) fn phases(
    run: &RunContext,
    nodes: &BTreeMap<String, NodeInfo>,
    mem: &Memory,
) -> Result<BTreeMap<String, NodePhase>, MarkerError> {
    let mut out = BTreeMap::new();
    let pending = handovers_pending(run, nodes);
    for name in run.place.keys() {
        let ph = match nodes.get(name) {
            None => NodePhase::Gone,
            Some(n) => decode(n)?.map(|m| m.phase).unwrap_or(NodePhase::Outdated),
        };
        // A surge request handed over is gone, whatever the cache still shows: this process
        // remembers its own handovers; an earlier process's is read from the node that took
        // the request over.
        let ph = if ph == NodePhase::SurgeRequested
            && (mem.handed_over.contains(name) || pending.contains(name))
        {
            NodePhase::Outdated
        } else {
            ph
        };
        let ph = mem.known.get(name).map_or(ph, |k| (*k).max(ph));
        out.insert(name.clone(), ph);
    }
    Ok(out)
}

/// Old nodes still at SurgeRequested although another node took their request over (a
/// crash between the two writes of a handover): the taker names them with a time later
/// than their own request. A request made again after the handover is newer, and stands.
pub(crate) fn handovers_pending(
    run: &RunContext,
    nodes: &BTreeMap<String, NodeInfo>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for y in run.place.keys() {
        let Some((from, at)) = nodes.get(y).and_then(patches::surge_from) else {
            continue;
        };
        let Some(x) = nodes.get(from) else { continue };
        if let Ok(Some(m)) = decode(x) {
            if m.phase == NodePhase::SurgeRequested && m.since.is_some_and(|s| s < at) {
                out.insert(from.to_string());
            }
        }
    }
    out
}

/// Serving capacity, counted the way the trials' observer counts it: nodes Ready and not
/// cordoned. A planned node's cordon is read from its phase, which includes this process's
/// own writes (the watch cache may not show a cordon made a moment ago).
fn serving_counts(
    run: &RunContext,
    nodes: &BTreeMap<String, NodeInfo>,
    phases: &BTreeMap<String, NodePhase>,
) -> BTreeMap<PoolZone, ZoneCounts> {
    let cordoned =
        |n: &NodeInfo| n.unschedulable || phases.get(&n.name).is_some_and(|p| p.cordoned());
    let mut counts: BTreeMap<PoolZone, ZoneCounts> = BTreeMap::new();
    for n in nodes.values() {
        let c = counts.entry((n.pool.clone(), n.zone.clone())).or_default();
        if n.ready && !cordoned(n) {
            c.serving += 1;
        } else if !n.ready && !at_version(&n.kubelet_version, &run.plan.target_version) {
            // An old node that is not Ready was not made so by us (we only cordon): it is not
            // ours to make up for. Not Ready at the target = a replacement booting.
            c.broken += 1;
        }
    }
    counts
}

/// New PDB statuses feed the tokens; refused PDBs whose backoff ran out get a probe; PDBs
/// that allow nothing with every pod healthy are timed.
fn observe_pdbs(seen: &Observed, mem: &mut Memory, act: &mut Actions) {
    // Confirmations first, then the statuses: a status may be newer than the confirmations
    // (a token held back one round), never older.
    for (pdb, pod) in &seen.confirmations {
        mem.tokens.confirm(pdb, pod);
    }
    mem.tokens.settle_older_than(seen.now, UNCONFIRMED_GRACE);
    for (b, rv) in &seen.pdbs {
        if mem.pdb_seen.get(&b.key()) == Some(rv) {
            continue;
        }
        if let Some(s) = b.status {
            mem.tokens.observe(&b.key(), s.disruptions_allowed);
            mem.probe_at.remove(&b.key());
            if s.disruptions_allowed > 0 {
                mem.backoff.remove(&b.key());
            }
            act.pdb_updates.push((b.key(), s));
        }
        mem.pdb_seen.insert(b.key(), rv.clone());
    }
    for (b, _) in &seen.pdbs {
        if never_allows(b).is_some() {
            mem.never_seen.entry(b.key()).or_insert(seen.now);
        } else {
            mem.never_seen.remove(&b.key());
        }
    }
    let due: Vec<String> = mem
        .probe_at
        .iter()
        .filter(|(_, t)| **t <= seen.now)
        .map(|(k, _)| k.clone())
        .collect();
    for k in due {
        mem.probe_at.remove(&k);
        mem.tokens.probe(&k);
    }
}

/// The cloud's desired sizes the markers call for, counting the nodes `starts` moves this
/// round; `None` while a Terminating node's instance is still alive (a crash between marker
/// and terminate): it still holds its extra, and is terminated first.
fn capacity_want(
    run: &RunContext,
    seen: &Observed,
    mem: &Memory,
    phases: &BTreeMap<String, NodePhase>,
    starts: &[(String, StartMode)],
    released: &BTreeSet<String>,
) -> Option<BTreeMap<PoolZone, u32>> {
    let started_now: BTreeMap<&str, StartMode> =
        starts.iter().map(|(n, m)| (n.as_str(), *m)).collect();
    let mut cap = Vec::new();
    for (name, pz) in &run.place {
        let Some(n) = seen.nodes.get(name) else {
            continue;
        };
        // Terminated this round keeping the size: its slot passes to its zone's next node.
        if released.contains(name) {
            continue;
        }
        let now = started_now.get(name.as_str()).copied();
        let ph = now.map_or(phases[name], StartMode::started_phase);
        let mode = now
            .or_else(|| mem.known_mode.get(name).copied())
            .or_else(|| mode_of(n));
        let Some(mode) = mode else { continue };
        if ph == NodePhase::Terminating && instance_alive(seen, n, &pz.0) {
            return None;
        }
        cap.push((pz.clone(), ph, mode));
    }
    Some(capacity::desired(&run.base, &cap))
}

/// Finished drains whose instance the cloud may replace in place, so one terminate keeping
/// the size does what a terminate-with-decrement and a set-desired did: a node drained
/// without a surge (its replacement is due at once), and a surge node whose zone starts its
/// next node this round — the scheduler's own choice once the finished node's slot is free,
/// started now instead of a round later. A surge node with no successor in its zone is
/// decremented: a size left one too high would make the cloud pick what to scale in, and it
/// picks old instances that still serve. Returns the nodes whose extra passes on.
fn replace_in_place(
    run: &RunContext,
    seen: &Observed,
    started_modes: &BTreeMap<String, StartMode>,
    act: &mut Actions,
) -> BTreeSet<String> {
    let mut released = BTreeSet::new();
    if act.finish.iter().all(|f| f.terminate.is_none()) {
        return released;
    }
    let mut phases = act.phases.clone();
    let mut modes = started_modes.clone();
    for (n, m) in &act.starts {
        phases.insert(n.clone(), m.started_phase());
        modes.insert(n.clone(), *m);
    }
    for f in act.finish.iter().filter(|f| f.terminate.is_some()) {
        phases.insert(f.node.clone(), NodePhase::Terminating);
    }
    let next = admit(
        &run.plan,
        &run.opts,
        &phases,
        &modes,
        &run.policy,
        &BTreeMap::new(),
    );
    let mut successors: Vec<&String> = next
        .start
        .iter()
        .filter(|(n, m)| {
            *m == StartMode::Surge
                && seen.nodes.contains_key(n)
                && !act.starts.iter().any(|(s, _)| s == n)
                && !act.steps.iter().any(|(s, _)| s == n)
        })
        .map(|(n, _)| n)
        .collect();
    let mut started = Vec::new();
    for f in act.finish.iter_mut().filter(|f| f.terminate.is_some()) {
        match modes.get(&f.node) {
            Some(StartMode::Unavailable) => f.keep_size = true,
            Some(StartMode::Surge) => {
                // Same zone; in a group over several zones any zone of the pool (the cloud
                // puts the replacement where it balances to, either way).
                let place = &run.place[&f.node];
                let spread = run.spread_pools.contains(&place.0);
                if let Some(i) = successors.iter().position(|y| {
                    let p = &run.place[*y];
                    p == place || (spread && p.0 == place.0)
                }) {
                    let y = successors.remove(i).clone();
                    f.successor = Some(y.clone());
                    started.push((y, StartMode::Surge));
                    f.keep_size = true;
                    released.insert(f.node.clone());
                }
            }
            None => {}
        }
    }
    act.starts.extend(started);
    released
}

/// Whether `n`'s instance in `pool` is still there and not terminated.
fn instance_alive(seen: &Observed, n: &NodeInfo, pool: &str) -> bool {
    let Some(insts) = seen.instances.get(pool) else {
        return false;
    };
    per_node::instance_of(n)
        .and_then(|id| insts.iter().find(|i| i.id == id))
        .is_some_and(|i| i.lifecycle != InstanceLifecycle::Terminated)
}

/// New nodes of this run whose part in the roll is over: markers off now, while the last
/// drains run, instead of all of them after the last drain.
fn cleanups(run: &RunContext, seen: &Observed, mem: &Memory, act: &mut Actions) {
    let phases = &act.phases;
    let mut clean = Vec::new();
    let mut pool_phases: BTreeMap<&str, Vec<NodePhase>> = BTreeMap::new();
    for (n, (p, _)) in &run.place {
        pool_phases.entry(p.as_str()).or_default().push(phases[n]);
    }
    for (name, n) in &seen.nodes {
        if mem.cleaned.contains(name)
            || n.labels.get(ROLE_LABEL).is_none_or(|r| r != "new")
            || n.annotations.get(RUN_ANNOTATION) != Some(&run.run_id)
        {
            continue;
        }
        let Some(old) = n.annotations.get(REPLACES_ANNOTATION) else {
            continue;
        };
        let old_phase = phases
            .get(old)
            .copied()
            .unwrap_or(if seen.nodes.contains_key(old) {
                NodePhase::Outdated
            } else {
                NodePhase::Gone
            });
        let Some(pp) = pool_phases.get(n.pool.as_str()) else {
            continue;
        };
        if new_node_done(old_phase, pp) {
            if clean.len() >= CLEAN_PER_ROUND {
                act.deferred = true;
                break;
            }
            clean.push(name.clone());
        }
    }
    act.clean = clean;
}

/// A pool with nodes left to start, none in flight and none started this round cannot go on
/// by itself: it is short of serving nodes (replacements that never came up took its room).
/// After `ready_timeout` it is given up on and reported, its remaining nodes keep serving,
/// and the run ends instead of waiting for room that never comes.
fn stalls(run: &RunContext, seen: &Observed, mem: &mut Memory, act: &mut Actions) {
    let stopped = stopped_pools(&run.plan, &act.phases);
    let pools: BTreeSet<&String> = run.place.values().map(|p| &p.0).collect();
    for pool in pools {
        let phases: Vec<NodePhase> = run
            .place
            .iter()
            .filter(|(_, pz)| pz.0 == *pool)
            .map(|(n, _)| act.phases[n])
            .collect();
        let pending = phases.contains(&NodePhase::Outdated);
        let busy = phases.iter().any(|p| in_flight(*p));
        let started = act.starts.iter().any(|(n, _)| run.place[n].0 == *pool);
        if !pending || busy || started || stopped.contains(pool) || mem.stalled.contains(pool) {
            mem.stall_since.remove(pool);
            continue;
        }
        let since = *mem.stall_since.entry(pool.clone()).or_insert(seen.now);
        let waited = seen.now.saturating_duration_since(since);
        if waited <= run.ready_timeout {
            continue;
        }
        let (serving, base): (u32, u32) = act
            .counts
            .iter()
            .filter(|(pz, _)| pz.0 == *pool)
            .fold((0, 0), |(s, b), (pz, c)| {
                (s + c.serving, b + run.base.get(pz).copied().unwrap_or(0))
            });
        let booting: Vec<&str> = seen
            .nodes
            .values()
            .filter(|n| n.pool == *pool && !n.ready)
            .filter(|n| at_version(&n.kubelet_version, &run.plan.target_version))
            .map(|n| n.name.as_str())
            .take(3)
            .collect();
        let reason = format!(
            "pool {pool} cannot go on: it serves {serving} nodes against a base of {base} with \
             --max-unavailable {}, and no replacement came up for {}s (not Ready: {}); its \
             remaining nodes keep serving",
            run.opts.limits_for(pool).max_unavailable,
            waited.as_secs(),
            if booting.is_empty() {
                "none registered".to_string()
            } else {
                booting.join(", ")
            }
        );
        tracing::error!(%pool, "{reason}");
        act.give_up("", reason);
        mem.stalled.insert(pool.clone());
    }
}

/// Whether the run is over: every node settled and every zone serving its base again (or
/// given up on after `ready_timeout`), or the policy stopped the run and nothing is in flight.
fn finish_check(
    run: &RunContext,
    seen: &Observed,
    mem: &mut Memory,
    stop: bool,
    act: &mut Actions,
) {
    let phases = &act.phases;
    let mut stopped = stopped_pools(&run.plan, phases);
    stopped.extend(mem.stalled.iter().cloned());
    let all_final = phases
        .iter()
        .all(|(n, p)| settled(*p, stopped.contains(&run.place[n].0)));
    let busy = phases.values().any(|p| in_flight(*p));
    // A run that ended while the last replacement still booted left the next step (smoke
    // checks, a promotion) a node short.
    let deficit = capacity::room(&run.base, &act.counts, |_| 0);
    let still_short: Vec<String> = deficit
        .iter()
        .filter(|(p, n)| **n < 0 && !stopped.contains(*p))
        .map(|(p, n)| format!("{p} ({} node(s))", -n))
        .collect();
    let mut gave_up = false;
    if all_final && !still_short.is_empty() {
        let since = *mem.short_since.get_or_insert(seen.now);
        let waited = seen.now.saturating_duration_since(since);
        if waited > run.ready_timeout {
            let reason = format!(
                "replacements still not serving {}s after the last drain: {}",
                waited.as_secs(),
                still_short.join(", ")
            );
            tracing::error!("{reason}");
            act.give_up("", reason);
            gave_up = true;
        }
    }
    let capacity_back = still_short.is_empty() || gave_up;
    act.done = (all_final && capacity_back) || (stop && !busy);
}

/// One round: see the module documentation.
pub fn decide(run: &RunContext, seen: &Observed, mem: &mut Memory) -> Result<Actions, MarkerError> {
    let mut act = Actions::default();
    observe_pdbs(seen, mem, &mut act);
    act.phases = phases(run, &seen.nodes, mem)?;
    // A handover an earlier process left half-written: finish it (and start the node
    // again next round at the earliest, from its written Outdated).
    let recovering: BTreeSet<String> = handovers_pending(run, &seen.nodes)
        .into_iter()
        .filter(|x| !mem.handed_over.contains(x))
        .collect();
    for x in &recovering {
        act.steps.push((x.clone(), vec![Event::SurgeHandedOver]));
    }
    act.counts = serving_counts(run, &seen.nodes, &act.phases);
    // This process's own starts first: the annotation may lag behind them, and a node
    // whose surge was handed over may start again in the other mode.
    let mut started_modes = written_modes(run, &seen.nodes);
    started_modes.extend(mem.known_mode.iter().map(|(n, m)| (n.clone(), *m)));
    let room = capacity::room(&run.base, &act.counts, |p| {
        run.opts.limits_for(p).max_unavailable
    });
    let adm = admit(
        &run.plan,
        &run.opts,
        &act.phases,
        &started_modes,
        &run.policy,
        &room,
    );
    act.starts = adm
        .start
        .iter()
        .filter(|(n, _)| seen.nodes.contains_key(n) && !recovering.contains(n))
        .cloned()
        .collect();
    act.want = capacity_want(run, seen, mem, &act.phases, &act.starts, &BTreeSet::new());
    cleanups(run, seen, mem, &mut act);
    // What the claims of this round may still take: the room left after the starts.
    let mut claim_room = adm.room_left.clone();
    per_node::decide_nodes(run, seen, mem, &mut claim_room, &mut act)?;
    // Capacity that passes from one node to another this round: a handed-over surge, a
    // finished drain whose replacement the cloud launches in place.
    let mut released: BTreeSet<String> = act.handed_over.keys().cloned().collect();
    if run.replace_on_terminate && act.want.is_some() {
        released.extend(replace_in_place(run, seen, &started_modes, &mut act));
    }
    if !released.is_empty() && act.want.is_some() {
        act.want = capacity_want(run, seen, mem, &act.phases, &act.starts, &released);
    }
    stalls(run, seen, mem, &mut act);
    finish_check(run, seen, mem, adm.stop, &mut act);
    Ok(act)
}
