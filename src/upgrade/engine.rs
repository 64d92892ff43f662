//! `upgrade apply`: the engine loop. Each iteration reads the watch caches (never a LIST),
//! decodes every planned node's phase from its markers, and makes one idempotent step per
//! node; then it sleeps until a watch reports a change (or a short safety tick, which
//! re-reads caches only). All decisions come from the pure modules: [`admit`] (which
//! nodes start), [`capacity`] (desired cloud size), [`gate`] (new-node
//! readiness), [`EvictionTokens`] (PDB budget), [`StuckDrainPolicy`] (stuck drains).
//! A restarted engine resumes from the markers; the base capacity lives on the Lease.

use super::capacity::{self, PoolZone};
use super::drain_policy::{
    hopeless as pdb_hopeless, never_allows, EvictionBackoff, EvictionTokens, ForceGuard,
    StuckAction, StuckDrainPolicy, UNCONFIRMED_GRACE,
};
use super::kube_cluster::{Eviction, KubeCluster, KubeError};
use super::measure::{Measurements, PdbMeasure, PdbViolationMeter, PoolMeasure};
use super::node_patch::NodePatch;
use super::plan::{at_version, NodeClass, Plan, PlanOptions};
use super::pool::{Instance, InstanceLifecycle, NodePool, PoolError};
use super::progress::{progress, Progress};
use super::readiness::{gate, GateInput, Readiness};
use super::report::{BlockedNode, UpgradeReport};
use super::scheduler::{
    admit, admit_with, drain_order, new_node_done, pdb_rounds, settled, stopped_pools,
    CapacityView, StartMode,
};
use super::sim_pool::instance_id_from_provider_id;
use super::snapshot::{NodeInfo, PdbInfo, PodInfo};
use super::state::{
    abort_patch, decode, encode_new, encode_with, Event, MarkerError, NodeMarkers, NodePhase,
    TransitionError, ANNOTATION_PREFIX, ROLE_LABEL, RUN_ANNOTATION,
};
use super::watch::Watched;
use chrono::Utc;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::abort::BASE_CAPACITY_ANNOTATION;
use super::abort::{format_base, parse_base, PRIOR_VERSION_ANNOTATION};
/// On a new node: the old node it replaces.
pub const REPLACES_ANNOTATION: &str = "upgrade.e2e-gate.io/replaces";
/// On an old node: `surge` or `unavailable` (how its replacement is provided).
pub const MODE_ANNOTATION: &str = "upgrade.e2e-gate.io/mode";

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Run id written on every marker.
    pub run_id: String,
    /// Lease holder identity.
    pub identity: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Stuck-drain policy.
    pub policy: StuckDrainPolicy,
    /// A new node must pass the readiness gate continuously this long before it counts.
    pub min_ready: Duration,
    /// A surge replacement that has not passed the readiness gate this long after it was
    /// requested fails: its pool stops, the old node keeps serving, the run fails.
    pub ready_timeout: Duration,
    /// Lease duration: how long a crashed run blocks the next one (renewed at a third).
    pub lease_duration: Duration,
    /// Safety tick between iterations when no watch event arrives.
    pub tick: Duration,
    /// Give up after this long.
    pub deadline: Duration,
}

/// Why `apply` stopped without a report.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Kube side.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// Cloud side.
    #[error("cloud: {0}")]
    Pool(#[from] PoolError),
    /// Unreadable markers.
    #[error(transparent)]
    Marker(#[from] MarkerError),
    /// An illegal transition (a bug or a foreign writer).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The run exceeded its deadline.
    #[error(
        "upgrade did not finish within {0:?}; markers are kept, run apply again to resume or abort"
    )]
    Deadline(Duration),
}

fn mode_str(m: StartMode) -> &'static str {
    match m {
        StartMode::Surge => "surge",
        StartMode::Unavailable => "unavailable",
    }
}

fn mode_of(n: &NodeInfo) -> Option<StartMode> {
    match n.annotations.get(MODE_ANNOTATION).map(String::as_str) {
        Some("surge") => Some(StartMode::Surge),
        Some("unavailable") => Some(StartMode::Unavailable),
        _ => None,
    }
}

/// What every marker write of a run needs besides the node: the run id, and which pools
/// evacuate hard (see [`encode_with`]).
struct Marking<'a> {
    run_id: &'a str,
    hard_pools: &'a BTreeSet<String>,
}

/// Applies `events` (in order) to the node's markers (and optionally its mode) in one patch. The
/// event is applied to the markers *as stored* (re-read by the patch), so a stale cache
/// can never move a node backwards: an event that is not legal any more is a no-op.
async fn step(
    cluster: &KubeCluster,
    known: &mut BTreeMap<String, NodePhase>,
    node: &NodeInfo,
    mark: &Marking<'_>,
    events: &[Event],
    mode: Option<StartMode>,
) -> Result<NodeInfo, EngineError> {
    let one = vec![(node.clone(), None, events.to_vec(), mode)];
    let mut patched = step_all(cluster, known, mark, one).await?;
    Ok(patched.remove(0))
}

/// Patches at most this many nodes (or evicts this many pods) at once: with hundreds of
/// nodes moving together, one request after the other would make the engine, not the
/// cluster, the bottleneck.
const PARALLEL_REQUESTS: usize = 16;

/// One node to step: its cached view, that view's resourceVersion (`None`: read it
/// fresh first), the events and the mode.
type StepItem = (NodeInfo, Option<String>, Vec<Event>, Option<StartMode>);

/// [`step`] for many nodes at once, each with its own events and mode.
async fn step_all(
    cluster: &KubeCluster,
    known: &mut BTreeMap<String, NodePhase>,
    mark: &Marking<'_>,
    items: Vec<StepItem>,
) -> Result<Vec<NodeInfo>, EngineError> {
    use futures::StreamExt;
    let results: Vec<Result<NodeInfo, EngineError>> = futures::stream::iter(items)
        .map(|(node, rv, events, mode)| async move {
            patch_step(cluster, &node, rv.as_deref(), mark, &events, mode).await
        })
        .buffered(PARALLEL_REQUESTS)
        .collect()
        .await;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        let n = r?;
        if let Ok(Some(m)) = decode(&n) {
            bump(known, &n.name, m.phase);
        }
        out.push(n);
    }
    Ok(out)
}

/// The patch of [`step`], without the bookkeeping. With the resourceVersion of the
/// cached `node`, the patch is made from that view (no GET; a stale view gets 409 and is
/// read again).
async fn patch_step(
    cluster: &KubeCluster,
    node: &NodeInfo,
    rv: Option<&str>,
    mark: &Marking<'_>,
    events: &[Event],
    mode: Option<StartMode>,
) -> Result<NodeInfo, EngineError> {
    let now = Utc::now();
    let run_id = mark.run_id;
    let patched = cluster
        .patch_node_cached(node, rv, |fresh| {
            let mut m = match decode(fresh) {
                Ok(Some(m)) => m,
                Ok(None) => NodeMarkers::new(fresh, run_id, now),
                Err(_) => return NodePatch::default(),
            };
            let before = m.phase;
            // Several events may go in one patch; stop at the first one not legal any more.
            for event in events {
                if m.apply(&fresh.name, event, now, fresh.unschedulable)
                    .is_err()
                {
                    break;
                }
            }
            if m.phase == before {
                return NodePatch::default();
            }
            tracing::info!(node = %fresh.name, from = %before, to = %m.phase, "node step");
            let mut p = encode_with(&m, mark.hard_pools.contains(&fresh.pool));
            if let Some(mode) = mode {
                p.annotations
                    .insert(MODE_ANNOTATION.into(), Some(mode_str(mode).into()));
            }
            p
        })
        .await;
    match patched {
        Ok(n) => Ok(n),
        // Gone under our feet (terminated): the next round sees it as Gone.
        Err(KubeError::NodeGone { .. }) => Ok(node.clone()),
        Err(e) => Err(e.into()),
    }
}

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

/// A rung of the failure ladder (stuck, left cordoned, replacement failed): a Warning Event
/// on the Node (`kubectl describe node`), then the marker step whose reason is the node's
/// status.
async fn rung(
    cluster: &KubeCluster,
    known: &mut BTreeMap<String, NodePhase>,
    node: &NodeInfo,
    mark: &Marking<'_>,
    event: Event,
) -> Result<(), EngineError> {
    let (kind, reason) = match &event {
        Event::Stuck { reason } => ("UpgradeDrainStuck", reason),
        Event::LeftCordoned { reason } => ("UpgradeLeftCordoned", reason),
        Event::ReplacementFailed { reason } => ("UpgradeReplacementFailed", reason),
        _ => ("Upgrade", &String::new()),
    };
    cluster.warn_on_node(&node.name, kind, reason).await;
    step(cluster, known, node, mark, &[event], None).await?;
    Ok(())
}

fn seed(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Phases only move forward: remember the most advanced phase this process has written,
/// so a watch cache that lags behind a patch cannot make the engine act on an old phase
/// (e.g. surge again for a node already terminated).
fn bump(known: &mut BTreeMap<String, NodePhase>, node: &str, phase: NodePhase) {
    let e = known.entry(node.to_string()).or_insert(phase);
    *e = (*e).max(phase);
}

/// Brings the cloud's desired sizes to what the markers (plus the nodes `started_now`,
/// whose markers were just written) call for. The cloud is read and corrected whenever the
/// wanted sizes changed *or* `last_want` was cleared: every terminate-with-decrement clears it,
/// because the cloud's own decrement moves its size away from the last value the engine set
/// (comparing only against that value left a surge requested in the same round as a
/// termination unprovided forever).
#[allow(clippy::too_many_arguments)]
async fn sync_capacity(
    pool: &dyn NodePool,
    base: &BTreeMap<PoolZone, u32>,
    place: &BTreeMap<String, PoolZone>,
    nodes: &BTreeMap<String, NodeInfo>,
    phases: &BTreeMap<String, NodePhase>,
    started_now: &[(String, StartMode)],
    known_mode: &BTreeMap<String, StartMode>,
    instances: &mut BTreeMap<String, Vec<Instance>>,
    last_want: &mut Option<BTreeMap<PoolZone, u32>>,
) -> Result<(), EngineError> {
    let started_now: BTreeMap<&str, StartMode> =
        started_now.iter().map(|(n, m)| (n.as_str(), *m)).collect();
    // Capacity, recomputed from markers (re-read after the starts above).
    let mut cap_nodes = Vec::new();
    for (name, pz) in place {
        let (ph, mode) = match nodes.get(name) {
            Some(n) => {
                let started_now = started_now.get(name.as_str()).copied();
                let ph = if let Some(m) = started_now {
                    if m == StartMode::Surge {
                        NodePhase::SurgeRequested
                    } else {
                        NodePhase::Tainted
                    }
                } else {
                    phases[name]
                };
                (
                    ph,
                    started_now
                        .or_else(|| mode_of(n))
                        .or_else(|| known_mode.get(name).copied()),
                )
            }
            None => (NodePhase::Gone, None),
        };
        if let Some(m) = mode {
            cap_nodes.push((name.clone(), pz.clone(), ph, m));
        }
    }
    // A Terminating node whose instance is still alive (crash between marker and
    // terminate) still holds its extra: terminate it first, recompute next round.
    let mut pending_terminate = false;
    for (name, pz, ph, _) in cap_nodes.iter_mut() {
        if *ph == NodePhase::Terminating {
            let alive = match nodes.get(name.as_str()) {
                Some(n) => {
                    if !instances.contains_key(&pz.0) {
                        instances.insert(pz.0.clone(), pool.instances(&pz.0).await?);
                    }
                    let insts = &instances[&pz.0];
                    n.provider_id
                        .as_deref()
                        .and_then(instance_id_from_provider_id)
                        .and_then(|id| insts.iter().find(|i| i.id == id))
                        .is_some_and(|i| i.lifecycle != InstanceLifecycle::Terminated)
                }
                None => false,
            };
            if alive {
                *ph = NodePhase::Drained;
                pending_terminate = true;
            }
        }
    }
    let cap: Vec<(PoolZone, NodePhase, StartMode)> = cap_nodes
        .into_iter()
        .map(|(_, pz, ph, m)| (pz, ph, m))
        .collect();
    let want = capacity::desired(base, &cap);
    if !pending_terminate && last_want.as_ref() != Some(&want) {
        let observed: BTreeMap<PoolZone, u32> = pool
            .groups()
            .await?
            .iter()
            .flat_map(|g| {
                g.desired_per_zone
                    .iter()
                    .map(|(z, n)| ((g.name.clone(), z.clone()), *n))
            })
            .collect();
        for ((p, z), n) in capacity::changes(&observed, &want) {
            pool.set_desired(&p, &z, n).await?;
        }
        *last_want = Some(want);
    }
    Ok(())
}

/// Finished drains (marker + terminate) sent per round; the rest go in the next round,
/// at once. A round ends when its slowest batch does, and the evictions of the next round
/// (PDB tokens freed meanwhile) wait for it. Claims are not capped: every Ready
/// replacement is claimed (longest drain first) as soon as it is seen.
const FINISHED_PER_ROUND: usize = 32;
/// Early clean-ups of new nodes ([`new_node_done`]) sent per round (never on the
/// critical path: they only must not hold the round up).
const CLEAN_PER_ROUND: usize = 32;

/// Runs the upgrade described by `plan` to the end (or the stuck-drain policy's stop); on
/// failure the Lease is released with the run's state kept.
pub async fn apply(
    cluster: &KubeCluster,
    pool: &dyn NodePool,
    plan: &Plan,
    opts: &PlanOptions,
    cfg: &EngineConfig,
    on_progress: impl FnMut(&Progress),
) -> Result<UpgradeReport, EngineError> {
    let result = apply_held(cluster, pool, plan, opts, cfg, on_progress).await;
    if let Err(e) = &result {
        // A run that fails (deadline, a cloud or API error) lets go of the Lease as it exits,
        // keeping the run-wide state on it: the next `apply` resumes at once instead of
        // waiting out the Lease of a process that is gone. Best effort: the cluster may be
        // what failed.
        if !matches!(e, EngineError::Kube(KubeError::LeaseHeld { .. })) {
            if let Err(r) = cluster
                .release_lease(&cfg.lease_namespace, &cfg.identity, true)
                .await
            {
                tracing::warn!("cannot release the upgrade Lease after the failure: {r}");
            }
        }
    }
    result
}

async fn apply_held(
    cluster: &KubeCluster,
    pool: &dyn NodePool,
    plan: &Plan,
    opts: &PlanOptions,
    cfg: &EngineConfig,
    mut on_progress: impl FnMut(&Progress),
) -> Result<UpgradeReport, EngineError> {
    let started = Instant::now();
    let ns = cfg.lease_namespace.as_str();
    let lease_seconds = cfg.lease_duration.as_secs().max(1) as i64;
    let renew_every = Duration::from_secs(lease_seconds as u64) / 3;
    // Single writer. A previous holder that died is waited out (its lease expires).
    loop {
        match cluster
            .acquire_lease(ns, &cfg.identity, Utc::now(), lease_seconds)
            .await
        {
            Ok(()) => break,
            Err(KubeError::LeaseHeld { holder, until, .. }) if started.elapsed() < cfg.deadline => {
                let wait =
                    (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(200);
                tracing::warn!(%holder, wait_s = wait.as_secs(), "lease held; waiting for it to expire");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut last_renew = Instant::now();
    let client = cluster.client();
    let mut nodes_w = Watched::spawn(Api::<Node>::all(client.clone()), None);
    let mut pods_w = Watched::spawn(Api::<Pod>::all(client.clone()), None);
    // Every PDB status version, not only the latest: an eviction's own write (its pod
    // in `disruptedPods`) tells which statuses count it (see [`EvictionTokens`]).
    let confirmations: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut pdbs_w = {
        let confirmations = Arc::clone(&confirmations);
        Watched::spawn_observed(
            Api::<PodDisruptionBudget>::all(client),
            None,
            move |b: &PodDisruptionBudget| {
                let Some(pods) = b.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
                    return;
                };
                let key = format!(
                    "{}/{}",
                    b.metadata.namespace.as_deref().unwrap_or(""),
                    b.metadata.name.as_deref().unwrap_or("")
                );
                let mut c = confirmations.lock().unwrap_or_else(|e| e.into_inner());
                c.extend(pods.keys().map(|p| (key.clone(), p.clone())));
            },
        )
    };
    nodes_w.ready().await;
    pods_w.ready().await;
    pdbs_w.ready().await;

    // Resume: adopt the run id found on any marker, an old node's phase or a new node's
    // run id (after a kill just past the last old node's deletion only new nodes carry it).
    let infos0: Vec<NodeInfo> = nodes_w
        .objects()
        .iter()
        .filter_map(|n| NodeInfo::from_k8s(n).ok())
        .collect();
    let run_id = infos0
        .iter()
        .find_map(|n| decode(n).ok().flatten().map(|m| m.run_id))
        .or_else(|| {
            infos0
                .iter()
                .filter(|n| n.labels.get(ROLE_LABEL).is_some_and(|r| r == "new"))
                .find_map(|n| n.annotations.get(RUN_ANNOTATION).cloned())
        })
        .unwrap_or_else(|| cfg.run_id.clone());
    // Planned nodes already gone when this process took over were not replaced by it.
    let found_gone = plan
        .outdated
        .iter()
        .filter(|n| !infos0.iter().any(|i| i.name == n.name))
        .count() as u64;
    let cfg = &EngineConfig {
        run_id,
        ..cfg.clone()
    };
    // Pools that surge evacuate hard (NoSchedule from the start): drained pods always have new
    // capacity to go to. A pool that only drains without replacement (max-surge 0) keeps the
    // soft taint, or its evicted pods would have nowhere to run.
    let hard_pools: BTreeSet<String> = plan
        .outdated
        .iter()
        .map(|n| n.pool.clone())
        .filter(|p| opts.limits_for(p).max_surge > 0)
        .collect();
    let mark = Marking {
        run_id: cfg.run_id.as_str(),
        hard_pools: &hard_pools,
    };
    let place: BTreeMap<String, PoolZone> = plan
        .outdated
        .iter()
        .map(|n| (n.name.clone(), (n.pool.clone(), n.zone.clone())))
        .collect();
    let pools: BTreeSet<String> = place.values().map(|p| p.0.clone()).collect();
    let groups = pool.groups().await?;
    // The versions before the run, recorded once (first run) so `abort --cloud` can put the
    // launch templates back; then new instances get the target.
    if cluster
        .lease_annotation(ns, PRIOR_VERSION_ANNOTATION)
        .await?
        .is_none()
    {
        let prior: BTreeMap<&str, &str> = groups
            .iter()
            .filter(|g| pools.contains(&g.name))
            .map(|g| (g.name.as_str(), g.version.as_str()))
            .collect();
        cluster
            .set_lease_annotation(
                ns,
                PRIOR_VERSION_ANNOTATION,
                &serde_json::to_string(&prior).unwrap_or_default(),
            )
            .await?;
    }
    for p in &pools {
        pool.set_version(p, &plan.target_version).await?;
    }
    let backs_lb: BTreeMap<String, bool> = groups
        .iter()
        .map(|g| (g.name.clone(), g.backs_load_balancer))
        .collect();
    let base: BTreeMap<PoolZone, u32> = match cluster
        .lease_annotation(ns, BASE_CAPACITY_ANNOTATION)
        .await?
    {
        Some(json) => parse_base(&json),
        None => {
            let b: BTreeMap<PoolZone, u32> = groups
                .iter()
                .filter(|g| pools.contains(&g.name))
                .flat_map(|g| {
                    g.desired_per_zone
                        .iter()
                        .map(|(z, n)| ((g.name.clone(), z.clone()), *n))
                })
                .collect();
            cluster
                .set_lease_annotation(ns, BASE_CAPACITY_ANNOTATION, &format_base(&b))
                .await?;
            b
        }
    };

    // Since when the pools have been short of serving nodes with every planned node settled.
    let mut short_since: Option<Instant> = None;

    // A replacement that failed in an earlier run is retried (its surge instance is still
    // there, so the capacity does not change).
    let mut known: BTreeMap<String, NodePhase> = BTreeMap::new();
    let mut retried: BTreeSet<String> = BTreeSet::new();
    for n in nodes_w
        .objects()
        .iter()
        .filter_map(|n| NodeInfo::from_k8s(n).ok())
    {
        if place.contains_key(&n.name)
            && decode(&n)?.is_some_and(|m| m.phase == NodePhase::ReplacementFailed)
        {
            tracing::info!(node = %n.name, "retrying the replacement that failed in an earlier run");
            step(
                cluster,
                &mut known,
                &n,
                &mark,
                &[Event::SurgeRequested],
                None,
            )
            .await?;
            retried.insert(n.name.clone());
        }
    }
    // Phases only move forward within a run, and ReplacementFailed is past SurgeRequested:
    // read no phase before the cache shows the retries.
    let retry_seen_by = Instant::now() + Duration::from_secs(10);
    while Instant::now() < retry_seen_by
        && nodes_w.objects().iter().any(|n| {
            NodeInfo::from_k8s(n).is_ok_and(|n| {
                retried.contains(&n.name)
                    && decode(&n)
                        .ok()
                        .flatten()
                        .is_some_and(|m| m.phase == NodePhase::ReplacementFailed)
            })
        })
    {
        tokio::select! {
            _ = nodes_w.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }

    // Mark every planned node up front: soft PreferNoSchedule taint (evicted pods avoid
    // other outdated nodes), autoscaler scale-down disabled, phase Outdated. Nodes the first
    // admission starts get their markers with their first step (one patch, not two).
    {
        use futures::StreamExt;
        let infos: Vec<NodeInfo> = nodes_w
            .objects()
            .iter()
            .filter_map(|n| NodeInfo::from_k8s(n).ok())
            .filter(|n| place.contains_key(&n.name))
            .collect();
        let mut phases0 = BTreeMap::new();
        let mut modes0 = BTreeMap::new();
        for n in &infos {
            let m = decode(n)?;
            phases0.insert(
                n.name.clone(),
                m.map(|m| m.phase).unwrap_or(NodePhase::Outdated),
            );
            if let Some(mode) = mode_of(n) {
                modes0.insert(n.name.clone(), mode);
            }
        }
        let first: BTreeSet<String> = admit(plan, opts, &phases0, &modes0, &cfg.policy)
            .start
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut to_mark = Vec::new();
        for n in infos {
            if decode(&n)?.is_none() && !first.contains(&n.name) {
                to_mark.push(n.name);
            }
        }
        let run_id = cfg.run_id.as_str();
        let results: Vec<Result<NodeInfo, KubeError>> = futures::stream::iter(&to_mark)
            .map(|name| {
                cluster.patch_node(name, |fresh| match decode(fresh) {
                    Ok(None) => encode_with(
                        &NodeMarkers::new(fresh, run_id, Utc::now()),
                        hard_pools.contains(&fresh.pool),
                    ),
                    _ => NodePatch::default(),
                })
            })
            .buffered(PARALLEL_REQUESTS)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(_) | Err(KubeError::NodeGone { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    let mut report = UpgradeReport::new(&plan.target_version, plan.outdated.len() as u64);
    let mut tokens = EvictionTokens::default();
    let mut pdb_seen: BTreeMap<String, String> = BTreeMap::new();
    let mut meter = PdbViolationMeter::default();
    let mut stuck_reported: BTreeSet<String> = BTreeSet::new();
    let mut never_seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut surge_seen: BTreeMap<String, Instant> = BTreeMap::new();
    // New node → the old node that claimed it, as this process wrote it: the watch cache can be
    // a round behind, and a new node it still showed free was claimed twice.
    let mut claimed_by: BTreeMap<String, String> = BTreeMap::new();
    let mut eta = super::progress::EtaTracker::default();
    let mut touched_pdbs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut t_surge: BTreeMap<String, Instant> = BTreeMap::new();
    let mut t_drain: BTreeMap<String, Instant> = BTreeMap::new();
    let mut measured = Measurements::default();
    for p in &pools {
        let l = opts.limits_for(p);
        measured.pools.insert(
            p.clone(),
            PoolMeasure {
                nodes: place.values().filter(|pz| pz.0 == *p).count() as u64,
                concurrency: u64::from(l.max_surge + l.max_unavailable),
                surge_only: l.max_unavailable == 0,
            },
        );
    }
    // d.3 PDB serialisation term: k_b (pods of b on planned nodes), a_b (steady-state
    // allowed disruptions); R_j samples are taken as the run goes. The same numbers give
    // the drain order (longest PDB chain first).
    let mut chains: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    {
        let pods0: Vec<PodInfo> = pods_w
            .objects()
            .iter()
            .filter_map(|p| PodInfo::from_k8s(p).ok())
            .collect();
        for b in pdbs_w
            .objects()
            .iter()
            .filter_map(|b| PdbInfo::from_k8s(b).ok())
        {
            let covered: Vec<&PodInfo> = pods0
                .iter()
                .filter(|p| !p.terminated() && b.covers(p))
                .collect();
            let k = covered
                .iter()
                .filter(|p| {
                    p.evictable() && p.node.as_deref().is_some_and(|n| place.contains_key(n))
                })
                .count() as u64;
            let a = b.steady_state_allowed(covered.len() as i32);
            for p in &covered {
                if let Some(n) = p.node.as_deref().filter(|n| place.contains_key(*n)) {
                    if p.evictable() {
                        chains
                            .entry(n.to_string())
                            .or_default()
                            .push(pdb_rounds(k, a.max(0) as u64));
                    }
                }
            }
            if k > 0 && a > 0 {
                measured.pdbs.insert(
                    b.key(),
                    PdbMeasure {
                        pods: k,
                        allowed: a as u64,
                        replacement_ready: Vec::new(),
                    },
                );
            }
        }
    }
    // Stateless nodes first, then stateful, primaries last (the plan's classes); longest
    // expected drain first within a class. LPT alone put StatefulSet nodes first, whose pods
    // then landed beside nodes still to be drained.
    let class: BTreeMap<&str, NodeClass> = plan
        .outdated
        .iter()
        .map(|n| (n.name.as_str(), n.class))
        .collect();
    let mut order = drain_order(&chains, &place.keys().cloned().collect::<Vec<_>>());
    order.sort_by_key(|n| class.get(n.as_str()).copied());
    // Pods present at the start (by UID): evicting one of them moves a distinct replica;
    // evicting a pod created during the run moves a replica again.
    let original_pods: BTreeSet<String> = pods_w
        .objects()
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let mut moved: BTreeSet<String> = BTreeSet::new();
    // Pods (by UID) this run evicted or found gone: never evicted again.
    let mut evicted_uids: BTreeSet<String> = BTreeSet::new();
    // R_j per PDB by Little's law: the replicas missing (expectedPods - currentHealthy,
    // integrated over the run from the status stream) divided by the evictions equals the
    // mean time from an eviction to its replacement being Ready, whatever the order in
    // which the watch delivers (or coalesces) the status changes.
    let mut deficit: BTreeMap<String, Deficit> = BTreeMap::new();
    let mut last_want: Option<BTreeMap<PoolZone, u32>> = None;
    // Instances this process already asked to terminate (the cache may lag behind).
    let mut terminated: BTreeSet<String> = BTreeSet::new();
    let mut known_mode: BTreeMap<String, StartMode> = BTreeMap::new();
    let mut backoff: BTreeMap<String, EvictionBackoff> = BTreeMap::new();
    let mut probe_at: BTreeMap<String, Instant> = BTreeMap::new();
    let mut ready_seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut last_line = String::new();
    // New nodes whose markers are already off (see [`new_node_done`]).
    let mut cleaned: BTreeSet<String> = BTreeSet::new();
    // Terminating nodes already seen with their instance terminated (see below).
    let mut seen_gone: BTreeSet<String> = BTreeSet::new();
    tracing::debug!(
        at_s = started.elapsed().as_secs_f64(),
        "set up; first round"
    );

    let final_phases = loop {
        if started.elapsed() > cfg.deadline {
            return Err(EngineError::Deadline(cfg.deadline));
        }
        if last_renew.elapsed() > renew_every {
            cluster
                .acquire_lease(ns, &cfg.identity, Utc::now(), lease_seconds)
                .await?;
            last_renew = Instant::now();
        }
        let iter_started = Instant::now();
        let node_objects = nodes_w.objects();
        let nodes: BTreeMap<String, NodeInfo> = node_objects
            .iter()
            .filter_map(|n| NodeInfo::from_k8s(n).ok())
            .map(|n| (n.name.clone(), n))
            .collect();
        // The resourceVersion of each cached node: patches start from the cache.
        let node_rv: BTreeMap<String, String> = node_objects
            .iter()
            .filter_map(|n| {
                Some((
                    n.metadata.name.clone()?,
                    n.metadata.resource_version.clone()?,
                ))
            })
            .collect();
        let pod_objects = pods_w.objects();
        let pods: Vec<(PodInfo, bool)> = pod_objects
            .iter()
            .filter_map(|p| {
                PodInfo::from_k8s(p)
                    .ok()
                    .map(|i| (i, p.metadata.deletion_timestamp.is_some()))
            })
            .collect();
        let pod_infos: Vec<PodInfo> = pods.iter().map(|(p, _)| p.clone()).collect();
        // Confirmations first, then the snapshot: a status in the snapshot may be newer
        // than the confirmations (a token held back one round), never older.
        for (pdb, pod) in
            std::mem::take(&mut *confirmations.lock().unwrap_or_else(|e| e.into_inner()))
        {
            tokens.confirm(&pdb, &pod);
        }
        tokens.settle_older_than(Instant::now(), UNCONFIRMED_GRACE);
        // One snapshot for the status and its resourceVersion: with two, a status update
        // landing in between paired the old status with the new version, and that status
        // change was never observed (a drain waited forever on a budget that was free).
        let pdb_objects = pdbs_w.objects();
        let pdbs_rv: Vec<(PdbInfo, String)> = pdb_objects
            .iter()
            .filter_map(|b| {
                PdbInfo::from_k8s(b)
                    .ok()
                    .map(|i| (i, b.metadata.resource_version.clone().unwrap_or_default()))
            })
            .collect();
        let pdbs: Vec<PdbInfo> = pdbs_rv.iter().map(|(b, _)| b.clone()).collect();
        let now_s = started.elapsed().as_secs_f64();
        for (b, rv) in &pdbs_rv {
            let rv = rv.clone();
            if pdb_seen.get(&b.key()) != Some(&rv) {
                if let Some(s) = b.status {
                    tokens.observe(&b.key(), s.disruptions_allowed);
                    probe_at.remove(&b.key());
                    if s.disruptions_allowed > 0 {
                        backoff.remove(&b.key());
                    }
                    meter.observe(&b.key(), s.current_healthy, s.desired_healthy, now_s);
                    deficit
                        .entry(b.key())
                        .or_default()
                        .observe(now_s, s.expected_pods - s.current_healthy);
                }
                pdb_seen.insert(b.key(), rv);
            }
        }

        // Since when each PDB has allowed nothing with every pod healthy, without a break.
        for b in &pdbs {
            if never_allows(b).is_some() {
                never_seen.entry(b.key()).or_insert_with(Instant::now);
            } else {
                never_seen.remove(&b.key());
            }
        }
        let due: Vec<String> = probe_at
            .iter()
            .filter(|(_, t)| **t <= Instant::now())
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            probe_at.remove(&k);
            tokens.probe(&k);
        }

        // Phases from markers; a planned node that no longer exists is Gone.
        let mut phases: BTreeMap<String, NodePhase> = BTreeMap::new();
        for name in place.keys() {
            let ph = match nodes.get(name) {
                None => NodePhase::Gone,
                Some(n) => decode(n)?.map(|m| m.phase).unwrap_or(NodePhase::Outdated),
            };
            let ph = known.get(name).map_or(ph, |k| (*k).max(ph));
            phases.insert(name.clone(), ph);
        }

        // Which nodes start now.
        let mut started_modes: BTreeMap<String, StartMode> = known_mode.clone();
        for name in place.keys() {
            if let Some(m) = nodes.get(name).and_then(mode_of) {
                started_modes.insert(name.clone(), m);
            }
        }
        // Serving capacity, counted the way the observer of the trials counts it: nodes Ready
        // and not cordoned. A planned node's cordon is read from its phase, which includes
        // this process's own writes (the watch cache may not show a cordon made a moment ago).
        let cordoned =
            |n: &NodeInfo| n.unschedulable || phases.get(&n.name).is_some_and(|p| p.cordoned());
        let mut counts: BTreeMap<PoolZone, capacity::ZoneCounts> = BTreeMap::new();
        for n in nodes.values() {
            let c = counts.entry((n.pool.clone(), n.zone.clone())).or_default();
            if n.ready && !cordoned(n) {
                c.serving += 1;
            } else if !n.ready && !at_version(&n.kubelet_version, &plan.target_version) {
                // An old node that is not Ready was not made so by us (we only cordon): it
                // is not ours to make up for. Not Ready at the target = a replacement booting.
                c.broken += 1;
            }
        }
        let room = capacity::room(&base, &counts, |p| opts.limits_for(p).max_unavailable);
        let adm = admit_with(
            plan,
            opts,
            &phases,
            &started_modes,
            &cfg.policy,
            &CapacityView { room },
        );
        // What the claims of this round may still take: the room left after the starts.
        let mut claim_room = adm.room_left.clone();
        let t_state = iter_started.elapsed();
        // Instances per pool, described at most once per round.
        let mut instances: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
        // Mark and start (patches in parallel: a wide window starts hundreds at once),
        // then the capacity they need (marker first, then the cloud).
        let starts: Vec<StepItem> = adm
            .start
            .iter()
            .filter_map(|(name, mode)| {
                // Unavailable mode: taint and cordon at once (no replacement to wait for).
                let evs = match mode {
                    StartMode::Surge => vec![Event::SurgeRequested],
                    StartMode::Unavailable => vec![Event::Tainted, Event::DrainStarted],
                };
                nodes
                    .get(name)
                    .map(|n| (n.clone(), node_rv.get(name).cloned(), evs, Some(*mode)))
            })
            .collect();
        step_all(cluster, &mut known, &mark, starts).await?;
        for (name, mode) in &adm.start {
            if *mode == StartMode::Unavailable {
                t_drain.insert(name.clone(), Instant::now());
            }
            known_mode.insert(name.clone(), *mode);
            t_surge.insert(name.clone(), Instant::now());
        }
        sync_capacity(
            pool,
            &base,
            &place,
            &nodes,
            &phases,
            &adm.start,
            &known_mode,
            &mut instances,
            &mut last_want,
        )
        .await?;
        let t_start = iter_started.elapsed();

        // Per-node steps. Decisions are made here; the requests of the busy phases
        // (claims, evictions, drained → terminate) are sent together after the loop.
        let mut pods_by_node: BTreeMap<&str, Vec<PodInfo>> = BTreeMap::new();
        for p in &pod_infos {
            if let Some(n) = p.node.as_deref() {
                pods_by_node.entry(n).or_default().push(p.clone());
            }
        }
        let mut claimed_now: BTreeSet<String> = BTreeSet::new();
        let mut claims: Vec<(NodeInfo, String)> = Vec::new();
        let mut to_evict: Vec<(String, PodInfo, Vec<String>)> = Vec::new();
        let mut finished: Vec<NodeInfo> = Vec::new();
        // Drained nodes: marker, then terminate; Terminating nodes: terminate an instance
        // still alive, else delete the Node object.
        let mut to_terminate: Vec<(NodeInfo, Option<String>)> = Vec::new();
        let mut terminate_ids: Vec<String> = Vec::new();
        let mut to_delete: Vec<String> = Vec::new();
        // Work left for the next round by the per-round caps: that round comes at once.
        let mut deferred = false;
        // New nodes of this run whose part in the roll is over: markers off now, while
        // the last drains run, instead of all of them after the last drain.
        let mut to_clean: Vec<(NodeInfo, Option<String>)> = Vec::new();
        {
            let mut pool_phases: BTreeMap<&str, Vec<NodePhase>> = BTreeMap::new();
            for (n, (p, _)) in &place {
                pool_phases.entry(p.as_str()).or_default().push(phases[n]);
            }
            for (name, n) in &nodes {
                if cleaned.contains(name)
                    || n.labels.get(ROLE_LABEL).is_none_or(|r| r != "new")
                    || n.annotations.get(RUN_ANNOTATION) != Some(&cfg.run_id)
                {
                    continue;
                }
                let Some(old) = n.annotations.get(REPLACES_ANNOTATION) else {
                    continue;
                };
                let old_phase = phases
                    .get(old)
                    .copied()
                    .unwrap_or(if nodes.contains_key(old) {
                        NodePhase::Outdated
                    } else {
                        NodePhase::Gone
                    });
                let Some(pp) = pool_phases.get(n.pool.as_str()) else {
                    continue;
                };
                if new_node_done(old_phase, pp) {
                    if to_clean.len() >= CLEAN_PER_ROUND {
                        deferred = true;
                        break;
                    }
                    to_clean.push((n.clone(), node_rv.get(name).cloned()));
                }
            }
        }
        for name in order.iter().cloned() {
            let ph = phases[&name];
            if matches!(ph, NodePhase::Terminating | NodePhase::Gone) {
                if let Some(t) = t_drain.remove(&name) {
                    measured.drain_terminate.push(t.elapsed().as_secs_f64());
                }
            }
            let Some(node) = nodes.get(&name) else {
                continue;
            };
            let (pname, zone) = &place[&name];
            match ph {
                NodePhase::SurgeRequested => {
                    if !instances.contains_key(pname) {
                        instances.insert(pname.clone(), pool.instances(pname).await?);
                    }
                    let insts = &instances[pname];
                    let ds_expected = pods_by_node
                        .get(name.as_str())
                        .map_or(0, |ps| ps.iter().filter(|p| p.daemonset).count());
                    let eligible = |c: &NodeInfo| {
                        c.pool == *pname
                            && c.zone == *zone
                            && at_version(&c.kubelet_version, &plan.target_version)
                            && !claimed_now.contains(&c.name)
                            && claimed_by.get(&c.name).is_none_or(|o| *o == name)
                            && c.annotations
                                .get(REPLACES_ANNOTATION)
                                .is_none_or(|r| *r == name)
                    };
                    let gate_of = |c: &NodeInfo| {
                        let inst = c
                            .provider_id
                            .as_deref()
                            .and_then(instance_id_from_provider_id)
                            .and_then(|id| insts.iter().find(|i| i.id == id));
                        gate(&GateInput {
                            node: c,
                            ready_since: None,
                            pods: pods_by_node.get(c.name.as_str()).map_or(&[], Vec::as_slice),
                            expected_daemonset_pods: ds_expected,
                            instance: inst,
                            backs_load_balancer: backs_lb.get(pname).copied().unwrap_or(false),
                            min_ready: Duration::ZERO,
                            now: Utc::now(),
                        })
                    };
                    let candidate = nodes.values().find(|c| {
                        eligible(c) && gate_of(c) == Readiness::Ready && {
                            // Hold `min_ready` from the first time every check passed.
                            let first = *ready_seen
                                .entry(c.name.clone())
                                .or_insert_with(Instant::now);
                            first.elapsed() >= cfg.min_ready
                        }
                    });
                    // Counted from this process's first sight of the request at the latest: a
                    // resumed run gives a replacement its full --new-node-timeout instead of
                    // failing a healthy one at once on an earlier run's marker.
                    let by_marker = decode(node)?
                        .and_then(|m| m.since)
                        .and_then(|t| (Utc::now() - t).to_std().ok())
                        .unwrap_or_default();
                    let by_us = surge_seen
                        .entry(name.clone())
                        .or_insert_with(Instant::now)
                        .elapsed();
                    let waited = by_marker.min(by_us);
                    if candidate.is_none() && waited > cfg.ready_timeout {
                        // Never a drain without ready replacement capacity: the node keeps
                        // serving, its pool stops, the run fails with the checks that failed.
                        let unready: Vec<String> = nodes
                            .values()
                            .filter(|c| eligible(c))
                            .filter_map(|c| match gate_of(c) {
                                Readiness::NotYet(why) => {
                                    Some(format!("{}: {}", c.name, why.join(", ")))
                                }
                                Readiness::Ready => None,
                            })
                            .take(3)
                            .collect();
                        let detail = if unready.is_empty() {
                            format!("no node at {} registered in the zone", plan.target_version)
                        } else {
                            unready.join("; ")
                        };
                        let reason = format!(
                            "no replacement in {pname}/{zone} passed the readiness gate within \
                             {}s ({detail}); pool {pname} stopped, {name} keeps serving",
                            waited.as_secs()
                        );
                        tracing::error!(node = %name, pool = %pname, "{reason}");
                        let blocked = BlockedNode {
                            node: name.clone(),
                            reason: reason.clone(),
                        };
                        let event = Event::ReplacementFailed { reason };
                        rung(cluster, &mut known, node, &mark, event).await?;
                        report.blocked_nodes.push(blocked);
                        continue;
                    }
                    if let Some(c) = candidate {
                        // Its cordon takes a serving node away: only with room to spare (a
                        // Ready surge node is the room; another node's replacement is not).
                        let r = claim_room.entry(pname.clone()).or_default();
                        if *r > 0 {
                            *r -= 1;
                            claimed_now.insert(c.name.clone());
                            claims.push((node.clone(), c.name.clone()));
                        }
                    }
                }
                NodePhase::Tainted => {
                    step(
                        cluster,
                        &mut known,
                        node,
                        &mark,
                        &[Event::DrainStarted],
                        None,
                    )
                    .await?;
                    t_drain.insert(name.clone(), Instant::now());
                }
                NodePhase::Draining | NodePhase::Blocked => {
                    let left: Vec<&PodInfo> = pods
                        .iter()
                        .filter(|(p, deleting)| {
                            p.node.as_deref() == Some(&name) && p.evictable() && !deleting
                        })
                        .map(|(p, _)| p)
                        .collect();
                    let replacements_ready = touched_pdbs.get(&name).is_none_or(|keys| {
                        keys.iter().all(|k| {
                            pdbs.iter()
                                .find(|b| b.key() == *k)
                                .and_then(|b| b.status)
                                .is_none_or(|s| s.current_healthy >= s.expected_pods)
                        })
                    });
                    // A PDB that can never allow a disruption is reported: at once when its
                    // spec says so, after a short hold when only its status does.
                    let hopeless = left.iter().find_map(|p| {
                        pdbs.iter().filter(|b| b.covers(p)).find_map(|b| {
                            let held = never_seen
                                .get(&b.key())
                                .map_or(Duration::ZERO, |t| t.elapsed());
                            pdb_hopeless(b, held)
                        })
                    });
                    let terminating_here = pods
                        .iter()
                        .any(|(p, d)| p.node.as_deref() == Some(&name) && *d && p.evictable());
                    if left.is_empty() && replacements_ready && !terminating_here {
                        if finished.len() < FINISHED_PER_ROUND {
                            finished.push(node.clone());
                        } else {
                            deferred = true;
                        }
                        continue;
                    }
                    for p in left {
                        // The pod cache may lag behind a successful eviction.
                        if evicted_uids.contains(&p.uid) {
                            continue;
                        }
                        let covering: Vec<String> = pdbs
                            .iter()
                            .filter(|b| b.covers(p))
                            .map(PdbInfo::key)
                            .collect();
                        if tokens.try_take(&p.name, &covering, Instant::now()).is_err() {
                            continue;
                        }
                        to_evict.push((name.clone(), p.clone(), covering));
                    }
                    let stuck_for = decode(node)?
                        .and_then(|m| m.drain_started)
                        .and_then(|t| (Utc::now() - t).to_std().ok())
                        .unwrap_or_default();
                    let guard = ForceGuard {
                        pod_age: Duration::ZERO,
                        siblings_ready: false,
                        since_last_force: None,
                    };
                    match cfg.policy.decide_hopeless(
                        stuck_for,
                        stuck_reported.contains(&name),
                        &guard,
                        hopeless.is_some(),
                    ) {
                        StuckAction::Report if ph == NodePhase::Draining => {
                            let reason = match &hopeless {
                                Some(why) => format!("drain of {name} cannot finish: {why}"),
                                None => format!(
                                    "drain of {name} made no progress for {}s",
                                    stuck_for.as_secs()
                                ),
                            };
                            tracing::warn!(node = %name, "{reason}");
                            let event = Event::Stuck { reason };
                            rung(cluster, &mut known, node, &mark, event).await?;
                            stuck_reported.insert(name.clone());
                        }
                        StuckAction::LeaveCordoned => {
                            let why = decode(node)?
                                .and_then(|m| m.reason)
                                .filter(|_| ph == NodePhase::Blocked)
                                .unwrap_or_default();
                            let reason = format!(
                                "left cordoned after {}s{}{why}",
                                stuck_for.as_secs(),
                                if why.is_empty() { "" } else { ": " }
                            );
                            tracing::error!(node = %name, "{reason}");
                            let blocked = BlockedNode {
                                node: name.clone(),
                                reason: reason.clone(),
                            };
                            let event = Event::LeftCordoned { reason };
                            rung(cluster, &mut known, node, &mark, event).await?;
                            report.blocked_nodes.push(blocked);
                        }
                        _ => {}
                    }
                }
                NodePhase::Drained => {
                    // Marker first: a crash after it resumes at Terminating, which
                    // terminates (idempotently) before the capacity is recomputed.
                    let id = node
                        .provider_id
                        .as_deref()
                        .and_then(instance_id_from_provider_id)
                        .filter(|id| terminated.insert(id.to_string()))
                        .map(str::to_string);
                    to_terminate.push((node.clone(), id));
                }
                NodePhase::Terminating => {
                    if !instances.contains_key(pname) {
                        instances.insert(pname.clone(), pool.instances(pname).await?);
                    }
                    let id = node
                        .provider_id
                        .as_deref()
                        .and_then(instance_id_from_provider_id);
                    let inst = id.and_then(|id| instances[pname].iter().find(|i| i.id == id));
                    match inst {
                        Some(i) if i.lifecycle != InstanceLifecycle::Terminated => {
                            if terminated.insert(i.id.clone()) {
                                terminate_ids.push(i.id.clone());
                            }
                        }
                        // Instance gone, Node still cached: the cloud (or the watch) is
                        // usually a moment behind; delete it if it is still there a
                        // round later (each delete of a Node already gone is a write).
                        _ => {
                            if !seen_gone.insert(name.clone()) {
                                to_delete.push(name.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        let t_nodes = iter_started.elapsed();
        // The requests of this round, all at once: claims (new node marked as the
        // replacement, then replacement ready → NoSchedule taint → cordon + drain in one
        // patch of the old node), evictions (PDB tokens already taken), finished drains
        // (Drained → Terminating in one patch, marker first, then terminate) and the rare
        // resumed terminations. Run one after the other, a few hundred claims held back
        // the evictions of the drains already running.
        let run_id = cfg.run_id.as_str();
        let rv_of = |n: &str| node_rv.get(n).map(String::as_str);
        let mark_ref = &mark;
        let finished_ids: Vec<Option<String>> = finished
            .iter()
            .map(|n| {
                n.provider_id
                    .as_deref()
                    .and_then(instance_id_from_provider_id)
                    .filter(|id| !terminated.contains(*id))
                    .map(str::to_string)
            })
            .collect();
        let nodes_ref = &nodes;
        let claims_fut = {
            use futures::StreamExt;
            futures::stream::iter(&claims)
                .map(|(old, new)| async move {
                    let claimed = match nodes_ref.get(new.as_str()) {
                        Some(info) => {
                            cluster
                                .patch_node_cached(info, rv_of(new), |n| {
                                    // Claimed by another old node meanwhile (a cache a round
                                    // behind showed it free): leave it to that one.
                                    if n.annotations
                                        .get(REPLACES_ANNOTATION)
                                        .is_some_and(|r| *r != old.name)
                                    {
                                        return NodePatch::default();
                                    }
                                    let mut p = encode_new(n, run_id);
                                    p.annotations
                                        .insert(REPLACES_ANNOTATION.into(), Some(old.name.clone()));
                                    p
                                })
                                .await?
                        }
                        None => {
                            return Err(EngineError::Kube(KubeError::NodeGone {
                                node: new.clone(),
                            }))
                        }
                    };
                    if claimed.annotations.get(REPLACES_ANNOTATION) != Some(&old.name) {
                        return Ok(None);
                    }
                    let n = patch_step(
                        cluster,
                        old,
                        rv_of(&old.name),
                        mark_ref,
                        &[Event::ReplacementReady, Event::Tainted, Event::DrainStarted],
                        None,
                    )
                    .await?;
                    // The drain starts now (cordon and taint are in).
                    Ok(Some((n, Instant::now())))
                })
                .buffered(PARALLEL_REQUESTS)
                .collect::<Vec<Result<Option<(NodeInfo, Instant)>, EngineError>>>()
        };
        let evict_fut = {
            use futures::StreamExt;
            futures::stream::iter(&to_evict)
                .map(|(_, p, _)| cluster.evict(&p.namespace, &p.name))
                .buffered(PARALLEL_REQUESTS * 2)
                .collect::<Vec<Result<Eviction, KubeError>>>()
        };
        let known_mode_ref = &known_mode;
        let finished_fut = {
            use futures::StreamExt;
            futures::stream::iter(finished.iter().zip(finished_ids.iter()))
                .map(|(node, id)| async move {
                    // A node drained without a replacement (unavailable mode) stops at Drained:
                    // that phase holds its replacement's capacity, which the next round's
                    // capacity sync requests before the terminate-with-decrement. Skipping the
                    // phase shrank the pool by one node per drain.
                    let unavailable = mode_of(node)
                        .or_else(|| known_mode_ref.get(&node.name).copied())
                        == Some(StartMode::Unavailable);
                    let events: &[Event] = if unavailable {
                        &[Event::DrainCompleted]
                    } else {
                        &[Event::DrainCompleted, Event::TerminateRequested]
                    };
                    let n = patch_step(cluster, node, rv_of(&node.name), mark_ref, events, None)
                        .await?;
                    let terminated = match id {
                        Some(id) if !unavailable => {
                            pool.terminate_with_decrement(id).await?;
                            true
                        }
                        _ => false,
                    };
                    Ok((n, terminated))
                })
                .buffered(PARALLEL_REQUESTS)
                .collect::<Vec<Result<(NodeInfo, bool), EngineError>>>()
        };
        let resumed_fut = async {
            let mut out: Vec<NodeInfo> = Vec::new();
            for (node, id) in &to_terminate {
                out.push(
                    patch_step(
                        cluster,
                        node,
                        rv_of(&node.name),
                        mark_ref,
                        &[Event::TerminateRequested],
                        None,
                    )
                    .await?,
                );
                if let Some(id) = id {
                    pool.terminate_with_decrement(id).await?;
                }
            }
            for id in &terminate_ids {
                pool.terminate_with_decrement(id).await?;
            }
            for name in &to_delete {
                cluster.delete_node(name).await?;
            }
            Ok::<Vec<NodeInfo>, EngineError>(out)
        };
        let clean_fut = {
            use futures::StreamExt;
            futures::stream::iter(&to_clean)
                .map(|(n, rv)| cluster.patch_node_cached(n, rv.as_deref(), abort_patch))
                .buffered(PARALLEL_REQUESTS)
                .collect::<Vec<Result<NodeInfo, KubeError>>>()
        };
        let (claimed, evicted, drained, resumed, clean) =
            futures::join!(claims_fut, evict_fut, finished_fut, resumed_fut, clean_fut);
        for ((n, _), r) in to_clean.iter().zip(clean) {
            match r {
                Ok(_) | Err(KubeError::NodeGone { .. }) => {
                    cleaned.insert(n.name.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
        for ((old, new), r) in claims.iter().zip(claimed) {
            let Some((n, at)) = r? else {
                tracing::info!(old = %old.name, new = %new, "replacement claimed by another node meanwhile; looking again");
                continue;
            };
            claimed_by.insert(new.clone(), old.name.clone());
            if let Ok(Some(m)) = decode(&n) {
                bump(&mut known, &n.name, m.phase);
            }
            if let Some(t) = t_surge.get(&old.name) {
                measured.provision.push(at.duration_since(*t).as_secs_f64());
            }
            t_drain.insert(old.name.clone(), at);
        }
        for ((name, p, covering), r) in to_evict.into_iter().zip(evicted) {
            match r? {
                Eviction::Evicted => {
                    report.evictions += 1;
                    evicted_uids.insert(p.uid.clone());
                    if original_pods.contains(&p.uid) && moved.insert(p.uid.clone()) {
                        report.replicas_moved += 1;
                    }
                    // An unready pod's eviction uses no budget (no disruptedPods entry
                    // will confirm it).
                    if !p.ready {
                        for k in &covering {
                            tokens.give_back(k, &p.name);
                        }
                    }
                    for k in &covering {
                        deficit.entry(k.clone()).or_default().evictions += 1;
                    }
                    touched_pdbs.entry(name).or_default().extend(covering);
                }
                // Already gone (the pod watch lagged behind the PDB watch): nothing
                // was disrupted, so the token goes back; kept, it would hold a budget
                // that no later status change might ever release.
                Eviction::Gone => {
                    evicted_uids.insert(p.uid.clone());
                    for k in &covering {
                        tokens.give_back(k, &p.name);
                    }
                }
                Eviction::Budget(_) | Eviction::MultiplePdbs(_) => {
                    // Wait for the PDB watch; the jittered backoff is the
                    // safety net if no status change ever arrives.
                    if let [one] = covering.as_slice() {
                        tokens.refused(one, &p.name);
                        let b = backoff
                            .entry(one.clone())
                            .or_insert_with(|| EvictionBackoff::new(seed(one)));
                        let delay = b.next().unwrap_or(Duration::from_secs(60));
                        probe_at.insert(one.clone(), Instant::now() + delay);
                    }
                }
            }
        }
        let mut decremented = !to_terminate.is_empty() || !terminate_ids.is_empty();
        for (r, id) in drained.into_iter().zip(finished_ids) {
            let (n, did_terminate) = r?;
            if let Ok(Some(m)) = decode(&n) {
                bump(&mut known, &n.name, m.phase);
            }
            if let (Some(id), true) = (id, did_terminate) {
                terminated.insert(id);
                decremented = true;
            }
        }
        if decremented {
            // The cloud decremented its desired size: compare with it again next round.
            last_want = None;
        }
        for n in resumed? {
            if let Ok(Some(m)) = decode(&n) {
                bump(&mut known, &n.name, m.phase);
            }
        }
        tracing::debug!(
            state_ms = t_state.as_millis() as u64,
            start_ms = (t_start - t_state).as_millis() as u64,
            nodes_ms = (t_nodes - t_start).as_millis() as u64,
            requests_ms = (iter_started.elapsed() - t_nodes).as_millis() as u64,
            claims = claims.len(),
            evictions = report.evictions,
            finished = finished.len(),
            "round"
        );

        let mut prog = progress(plan, &phases, started.elapsed().as_secs());
        prog.eta_seconds = eta.eta(&prog, started.elapsed().as_secs());
        let line = prog.line();
        if line != last_line {
            on_progress(&prog);
            last_line = line;
        }
        let stopped = stopped_pools(plan, &phases);
        let all_final = phases
            .iter()
            .all(|(n, p)| settled(*p, stopped.contains(&place[n].0)));
        let in_flight = phases
            .values()
            .any(|p| *p != NodePhase::Outdated && !settled(*p, false));
        // Done when every node is settled and every zone serves its base again: a run that
        // ended while the last replacement still booted left the next step (smoke checks, a
        // promotion) a node short.
        let deficit = capacity::room(&base, &counts, |_| 0);
        let still_short: Vec<String> = deficit
            .iter()
            .filter(|(p, n)| **n < 0 && !stopped.contains(*p))
            .map(|(p, n)| format!("{p} ({} node(s))", -n))
            .collect();
        if all_final && !still_short.is_empty() {
            let since = *short_since.get_or_insert_with(Instant::now);
            if since.elapsed() > cfg.ready_timeout {
                let reason = format!(
                    "replacements still not serving {}s after the last drain: {}",
                    since.elapsed().as_secs(),
                    still_short.join(", ")
                );
                tracing::error!("{reason}");
                report.blocked_nodes.push(BlockedNode {
                    node: String::new(),
                    reason,
                });
            }
        }
        let capacity_back =
            still_short.is_empty() || short_since.is_some_and(|t| t.elapsed() > cfg.ready_timeout);
        if (all_final && capacity_back) || (adm.stop && !in_flight) {
            let gone = phases.values().filter(|p| **p == NodePhase::Gone).count() as u64;
            report.nodes_found_replaced = found_gone.min(gone);
            report.nodes_replaced = gone - report.nodes_found_replaced;
            break phases;
        }
        if deferred {
            continue;
        }
        tokio::select! {
            _ = nodes_w.changed() => {}
            _ = pods_w.changed() => {}
            _ = pdbs_w.changed() => {}
            _ = tokio::time::sleep(cfg.tick) => {}
        }
    };

    // Nodes that never started (their pool stopped, or the run stopped early) go back to
    // how they were: nothing is in progress on them.
    for (name, _) in final_phases
        .iter()
        .filter(|(_, p)| **p == NodePhase::Outdated)
    {
        let cleaned = cluster
            .patch_node(name, |fresh| match decode(fresh) {
                Ok(Some(m)) if m.phase == NodePhase::Outdated => abort_patch(fresh),
                _ => NodePatch::default(),
            })
            .await;
        match cleaned {
            Ok(_) | Err(KubeError::NodeGone { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Nodes given up on in an earlier run of this upgrade are reported too.
    for n in nodes_w
        .objects()
        .iter()
        .filter_map(|n| NodeInfo::from_k8s(n).ok())
    {
        let Some(ph) = final_phases.get(&n.name) else {
            continue;
        };
        if matches!(ph, NodePhase::CordonedLeft | NodePhase::ReplacementFailed)
            && !report.blocked_nodes.iter().any(|b| b.node == n.name)
        {
            let reason = decode(&n)
                .ok()
                .flatten()
                .and_then(|m| m.reason)
                .unwrap_or_else(|| ph.to_string());
            report.blocked_nodes.push(BlockedNode {
                node: n.name.clone(),
                reason,
            });
        }
    }
    report.stopped_pools = stopped_pools(plan, &final_phases).into_iter().collect();
    // Marked nodes remain: keep the Lease's run-wide state (base capacity) for the next run.
    let keep_state = final_phases
        .values()
        .any(|p| !matches!(p, NodePhase::Outdated | NodePhase::Gone));

    // Restore the autoscaler annotation and drop markers on the new nodes of this run
    // (in parallel: one after the other, a few hundred new nodes took seconds).
    {
        use futures::StreamExt;
        let ours: Vec<(NodeInfo, Option<String>)> = nodes_w
            .objects()
            .iter()
            .filter_map(|n| {
                NodeInfo::from_k8s(n)
                    .ok()
                    .map(|i| (i, n.metadata.resource_version.clone()))
            })
            // Every new node still marked, whatever run marked it: the Lease is ours and
            // nothing is in flight any more, so a marker left by a killed run is a leftover.
            .filter(|(n, _)| {
                !cleaned.contains(&n.name) && n.labels.get(ROLE_LABEL).is_some_and(|r| r == "new")
            })
            .collect();
        tracing::debug!(
            nodes = ours.len(),
            at_s = started.elapsed().as_secs_f64(),
            "cleanup of the new nodes"
        );
        let results: Vec<Result<NodeInfo, KubeError>> = futures::stream::iter(&ours)
            .map(|(n, rv)| cluster.patch_node_cached(n, rv.as_deref(), abort_patch))
            .buffered(PARALLEL_REQUESTS)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(_) | Err(KubeError::NodeGone { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    debug_assert!(ANNOTATION_PREFIX.ends_with('/'));
    cluster.release_lease(ns, &cfg.identity, keep_state).await?;
    tracing::debug!(at_s = started.elapsed().as_secs_f64(), "lease released");
    let end_s = started.elapsed().as_secs_f64();
    for (k, d) in &mut deficit {
        d.observe(end_s, 0);
        if let Some(m) = measured.pdbs.get_mut(k) {
            if d.evictions > 0 {
                m.replacement_ready = vec![d.integral / d.evictions as f64];
            }
        }
    }
    let lb = measured.lower_bound();
    report.set_durations(started.elapsed().as_secs_f64(), lb.policy);
    report.pdb_violation_seconds = meter.seconds(started.elapsed().as_secs_f64());
    // Cloud calls that went through the same client are reported by the NodePool.
    report.kube_api_calls = cluster.api_calls();
    report.kube_api_calls.remove("cloud");
    Ok(report)
}
