//! `upgrade apply`: the engine loop. Each iteration reads the watch caches (never a LIST),
//! decodes every planned node's phase from its markers, and makes one idempotent step per
//! node; then it sleeps until a watch reports a change (or a short safety tick, which
//! re-reads caches only). All decisions come from the pure modules: [`admit`] (which
//! nodes start), [`capacity`] (desired cloud size), [`gate`] (new-node
//! readiness), [`EvictionTokens`] (PDB budget), [`StuckDrainPolicy`] (stuck drains).
//! A restarted engine resumes from the markers; the base capacity lives on the Lease.

use super::act::{sizes, Actor, CapacitySync, PARALLEL_REQUESTS};
use super::capacity::PoolZone;
use super::clock::Clock;
use super::decide::patches::{mark_patch, step_patch};
use super::decide::{decide, instance_pools, setup, CloudNeed, Memory, Observed, RunContext};
use super::drain_policy::StuckDrainPolicy;
use super::kube_cluster::{unless_gone, KubeCluster, KubeError};
use super::node_patch::NodePatch;
use super::plan::{Plan, PlanOptions};
use super::pool::{Instance, NodePool, PoolError, PoolGroup};
use super::progress::{progress, EtaTracker, Progress};
use super::report::UpgradeReport;
use super::run_meters::RunMeters;
use super::scheduler::stopped_pools;
use super::snapshot::{NodeInfo, PdbInfo, PodInfo};
use super::state::{
    abort_patch, decode, MarkerError, NodePhase, TransitionError, ANNOTATION_PREFIX,
};
use super::watch::Watched;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::abort::{format_base, parse_base, BASE_CAPACITY_ANNOTATION, PRIOR_VERSION_ANNOTATION};

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

/// The three watches a run reads (never a LIST), and the PDB statuses' `disruptedPods`
/// confirmations their hook collects.
struct Watches {
    nodes: Watched<Node>,
    pods: Watched<Pod>,
    pdbs: Watched<PodDisruptionBudget>,
    confirmations: Arc<Mutex<Vec<(String, String)>>>,
    /// Each pool's last read, reused for [`CloudNeed::Termination`] within
    /// [`TERMINATION_POLL`].
    instances_read: Mutex<BTreeMap<String, (std::time::Instant, Vec<Instance>)>>,
}

/// How often a terminating instance is looked for: a real termination takes a minute or more,
/// and a read every round (every watch event) spent the cloud's API rate on it.
const TERMINATION_POLL: Duration = Duration::from_secs(5);

impl Watches {
    async fn start(cluster: &KubeCluster) -> Self {
        let client = cluster.client();
        // Every PDB status version, not only the latest: an eviction's own write (its pod in
        // `disruptedPods`) tells which statuses count it (see [`EvictionTokens`]).
        let confirmations: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let pdbs = {
            let confirmations = Arc::clone(&confirmations);
            Watched::spawn_observed(
                Api::<PodDisruptionBudget>::all(client.clone()),
                None,
                move |b: &PodDisruptionBudget| {
                    let Some(pods) = b.status.as_ref().and_then(|s| s.disrupted_pods.as_ref())
                    else {
                        return;
                    };
                    let key = format!(
                        "{}/{}",
                        b.metadata.namespace.as_deref().unwrap_or(""),
                        b.metadata.name.as_deref().unwrap_or("")
                    );
                    let mut c = confirmations.lock();
                    c.extend(pods.keys().map(|p| (key.clone(), p.clone())));
                },
            )
        };
        let w = Watches {
            nodes: Watched::spawn(Api::<Node>::all(client.clone()), None),
            pods: Watched::spawn(Api::<Pod>::all(client), None),
            pdbs,
            confirmations,
            instances_read: Mutex::default(),
        };
        w.nodes.ready().await;
        w.pods.ready().await;
        w.pdbs.ready().await;
        w
    }

    /// Every Node by name, with each one's resourceVersion.
    fn nodes(&self) -> (BTreeMap<String, NodeInfo>, BTreeMap<String, String>) {
        let objects = self.nodes.objects();
        let infos = objects
            .iter()
            .filter_map(|n| NodeInfo::from_k8s(n).ok())
            .map(|n| (n.name.clone(), n))
            .collect();
        let rv = objects
            .iter()
            .filter_map(|n| {
                Some((
                    n.metadata.name.clone()?,
                    n.metadata.resource_version.clone()?,
                ))
            })
            .collect();
        (infos, rv)
    }

    fn pods(&self) -> Vec<(PodInfo, bool)> {
        self.pods
            .objects()
            .iter()
            .filter_map(|p| {
                PodInfo::from_k8s(p)
                    .ok()
                    .map(|i| (i, p.metadata.deletion_timestamp.is_some()))
            })
            .collect()
    }

    /// PDBs with their resourceVersion, from one snapshot: with two, a status update landing
    /// in between paired the old status with the new version, and that status change was
    /// never observed (a drain waited forever on a budget that was free).
    fn pdbs(&self) -> Vec<(PdbInfo, String)> {
        self.pdbs
            .objects()
            .iter()
            .filter_map(|b| {
                PdbInfo::from_k8s(b)
                    .ok()
                    .map(|i| (i, b.metadata.resource_version.clone().unwrap_or_default()))
            })
            .collect()
    }

    /// One round's observation: confirmations first, then the snapshot, so a status in the
    /// snapshot may be newer than the confirmations (a token held back one round), never
    /// older; then the instances of the pools the round needs.
    async fn observe(
        &self,
        run: &RunContext,
        mem: &Memory,
        pool: &dyn NodePool,
        clock: &Clock,
    ) -> Result<(Observed, BTreeMap<String, String>), EngineError> {
        let confirmations = std::mem::take(&mut *self.confirmations.lock());
        let (nodes, node_rv) = self.nodes();
        let pods = self.pods();
        let mut instances = BTreeMap::new();
        let now = clock.now();
        for (p, need) in instance_pools(run, &nodes, &pods, mem)? {
            let recent = self
                .instances_read
                .lock()
                .get(&p)
                .filter(|(at, _)| {
                    need == CloudNeed::Termination && now.duration_since(*at) < TERMINATION_POLL
                })
                .map(|(_, i)| i.clone());
            let i = match recent {
                Some(i) => i,
                None => {
                    let i = pool.instances(&p).await?;
                    self.instances_read
                        .lock()
                        .insert(p.clone(), (now, i.clone()));
                    i
                }
            };
            instances.insert(p, i);
        }
        let seen = Observed {
            now: clock.now(),
            wall: clock.wall(),
            nodes,
            pods,
            pdbs: self.pdbs(),
            confirmations,
            instances,
        };
        Ok((seen, node_rv))
    }

    /// Until any watch reports a change, or `tick`.
    async fn changed(&mut self, tick: Duration) {
        tokio::select! {
            _ = self.nodes.changed() => {}
            _ = self.pods.changed() => {}
            _ = self.pdbs.changed() => {}
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

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

/// Single writer: takes the Lease, waiting out a previous holder that died (its Lease
/// expires).
async fn take_lease(
    cluster: &KubeCluster,
    cfg: &EngineConfig,
    clock: &Clock,
) -> Result<(), EngineError> {
    loop {
        match acquire_lease(cluster, cfg, clock).await {
            Ok(()) => return Ok(()),
            Err(KubeError::LeaseHeld { holder, until, .. }) if clock.elapsed() < cfg.deadline => {
                let wait = (until - clock.wall()).to_std().unwrap_or_default()
                    + Duration::from_millis(200);
                tracing::warn!(%holder, wait_s = wait.as_secs(), "lease held; waiting for it to expire");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Takes or renews the Lease for `cfg.lease_duration`.
async fn acquire_lease(
    cluster: &KubeCluster,
    cfg: &EngineConfig,
    clock: &Clock,
) -> Result<(), KubeError> {
    let seconds = cfg.lease_duration.as_secs().max(1) as i64;
    cluster
        .acquire_lease(&cfg.lease_namespace, &cfg.identity, clock.wall(), seconds)
        .await
}

/// Records the run-wide state on the Lease the first time (the versions before the run, for
/// `abort --cloud`; the base capacity), points the pools' launch templates at the target,
/// and returns every pool the cloud has and the base capacity.
async fn take_over_cloud(
    cluster: &KubeCluster,
    pool: &dyn NodePool,
    plan: &Plan,
    ns: &str,
) -> Result<(Vec<PoolGroup>, BTreeMap<PoolZone, u32>), EngineError> {
    let pools: BTreeSet<String> = plan.outdated.iter().map(|n| n.pool.clone()).collect();
    pool.hold(&pools.iter().cloned().collect::<Vec<_>>())
        .await?;
    let groups = pool.groups().await?;
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
    let base = match cluster
        .lease_annotation(ns, BASE_CAPACITY_ANNOTATION)
        .await?
    {
        Some(json) => parse_base(&json),
        None => {
            let b = sizes(groups.iter().filter(|g| pools.contains(&g.name)));
            cluster
                .set_lease_annotation(ns, BASE_CAPACITY_ANNOTATION, &format_base(&b))
                .await?;
            b
        }
    };
    Ok((groups, base))
}

/// Before the first round: retries replacements that failed in an earlier run, and marks
/// every planned node the first admission does not start.
async fn prepare_nodes(
    cluster: &KubeCluster,
    w: &mut Watches,
    run: &RunContext,
    mem: &mut Memory,
    clock: &Clock,
) -> Result<(), EngineError> {
    let (nodes, _) = w.nodes();
    let retried = setup::retries(run, &nodes)?;
    for (name, event) in &retried {
        tracing::info!(node = %name, "retrying what an earlier run gave up on");
        let n = patch_markers(cluster, &nodes[name], |fresh| {
            step_patch(fresh, run, std::slice::from_ref(event), None, clock.wall())
        })
        .await?;
        mem.bump_written(&n);
    }
    // Phases only move forward within a run, and the phases retried are past those the
    // retries write: read no phase before the cache shows the retries.
    let names: Vec<&String> = retried.iter().map(|(n, _)| n).collect();
    let seen_by = clock.now() + Duration::from_secs(10);
    while clock.now() < seen_by
        && setup::retries(run, &w.nodes().0)?
            .iter()
            .any(|(n, _)| names.contains(&n))
    {
        w.changed(Duration::from_millis(100)).await;
    }
    let (nodes, _) = w.nodes();
    let to_mark = setup::nodes_to_mark(run, &nodes)?;
    let results: Vec<Result<NodeInfo, EngineError>> = futures::stream::iter(&to_mark)
        .map(|name| {
            patch_markers(cluster, &nodes[name], |fresh| {
                mark_patch(fresh, run, clock.wall())
            })
        })
        .buffered(PARALLEL_REQUESTS)
        .collect()
        .await;
    results.into_iter().try_for_each(|r| r.map(drop))
}

/// A marker patch made from the node as stored; a node gone meanwhile is left as it was.
async fn patch_markers(
    cluster: &KubeCluster,
    node: &NodeInfo,
    patch: impl Fn(&NodeInfo) -> NodePatch,
) -> Result<NodeInfo, EngineError> {
    let r = cluster.patch_node(&node.name, patch).await;
    Ok(unless_gone(r)?.unwrap_or_else(|| node.clone()))
}

async fn apply_held(
    cluster: &KubeCluster,
    pool: &dyn NodePool,
    plan: &Plan,
    opts: &PlanOptions,
    cfg: &EngineConfig,
    mut on_progress: impl FnMut(&Progress),
) -> Result<UpgradeReport, EngineError> {
    let clock = Clock::start();
    let ns = cfg.lease_namespace.as_str();
    take_lease(cluster, cfg, &clock).await?;
    let mut w = Watches::start(cluster).await;
    let (nodes0, _) = w.nodes();
    // Planned nodes already gone when this process took over were not replaced by it.
    let found_gone = plan
        .outdated
        .iter()
        .filter(|n| !nodes0.contains_key(&n.name))
        .count() as u64;
    let (groups, base) = take_over_cloud(cluster, pool, plan, ns).await?;
    let pods0: Vec<PodInfo> = w.pods().into_iter().map(|(p, _)| p).collect();
    let pdbs0: Vec<PdbInfo> = w.pdbs().into_iter().map(|(b, _)| b).collect();
    let mut run = RunContext::new(
        plan,
        opts,
        &cfg.policy,
        cfg.min_ready,
        cfg.ready_timeout,
        setup::adopt_run_id(nodes0.values(), &cfg.run_id),
        base,
        groups
            .iter()
            .map(|g| (g.name.clone(), g.backs_load_balancer))
            .collect(),
        &pods0,
        &pdbs0,
    );
    run.replace_on_terminate = pool.replaces_on_terminate();
    run.spread_pools = groups
        .iter()
        .filter(|g| g.spread)
        .map(|g| g.name.clone())
        .collect();
    let mut mem = Memory::default();
    prepare_nodes(cluster, &mut w, &run, &mut mem, &clock).await?;
    let mut meters = RunMeters::new(&pods0);
    let mut report = UpgradeReport::new(&plan.target_version, plan.outdated.len() as u64);
    let final_phases = run_rounds(
        cluster,
        pool,
        &run,
        cfg,
        &clock,
        &mut w,
        &mut mem,
        &mut meters,
        &mut report,
        &mut on_progress,
    )
    .await?;
    let gone = final_phases
        .values()
        .filter(|p| **p == NodePhase::Gone)
        .count() as u64;
    report.nodes_found_replaced = found_gone.min(gone);
    report.nodes_replaced = gone - report.nodes_found_replaced;
    finish_run(cluster, &run, cfg, &w, &mem, &final_phases, &mut report).await?;
    if !setup::keep_state(&final_phases) {
        // Every planned node is settled: the groups get back what the roll held still
        // (processes, max sizes). A run that leaves nodes for the next one keeps them held.
        // Every pool, not just this plan's: a run killed after its last node, between two
        // pools' restores, leaves a pool held that no later plan names.
        let all_pools: Vec<String> = groups.into_iter().map(|g| g.name).collect();
        pool.restore(&all_pools).await?;
    }
    tracing::debug!(at_s = clock.elapsed().as_secs_f64(), "lease released");
    meters.finish(&mut report, clock.elapsed().as_secs_f64());
    // Cloud calls that went through the same client are reported by the NodePool.
    report.kube_api_calls = cluster.api_calls();
    report.kube_api_calls.remove("cloud");
    Ok(report)
}

/// The rounds: observe → decide → act → absorb, until [`decide`] says the run is over.
#[allow(clippy::too_many_arguments)]
async fn run_rounds(
    cluster: &KubeCluster,
    pool: &dyn NodePool,
    run: &RunContext,
    cfg: &EngineConfig,
    clock: &Clock,
    w: &mut Watches,
    mem: &mut Memory,
    meters: &mut RunMeters,
    report: &mut UpgradeReport,
    on_progress: &mut impl FnMut(&Progress),
) -> Result<BTreeMap<String, NodePhase>, EngineError> {
    let renew_every = Duration::from_secs(cfg.lease_duration.as_secs().max(1)) / 3;
    let mut last_renew = clock.now();
    let mut capacity = CapacitySync::default();
    let mut eta = EtaTracker::default();
    let mut last_line = String::new();
    loop {
        if clock.elapsed() > cfg.deadline {
            return Err(EngineError::Deadline(cfg.deadline));
        }
        if clock.now().saturating_duration_since(last_renew) > renew_every {
            acquire_lease(cluster, cfg, clock).await?;
            last_renew = clock.now();
        }
        let (seen, node_rv) = w.observe(run, mem, pool, clock).await?;
        let actions = decide(run, &seen, mem)?;
        meters.decided(&actions, clock.elapsed().as_secs_f64());
        let actor = Actor {
            cluster,
            pool,
            run,
            seen: &seen,
            node_rv: &node_rv,
        };
        let outcome = actor.carry_out(&actions, &mut capacity).await?;
        mem.absorb(&actions, &outcome, clock.now());
        meters.answered(&actions, &outcome, report);
        report.blocked_nodes.extend(actions.blocked.iter().cloned());
        tracing::debug!(
            claims = actions.claims.len(),
            evictions = actions.evictions.len(),
            finished = actions.finish.len(),
            "round"
        );
        let elapsed = clock.elapsed().as_secs();
        let prog = progress(&run.plan, &actions.phases, elapsed, &mut eta);
        let line = prog.line();
        if line != last_line {
            on_progress(&prog);
            last_line = line;
        }
        if actions.done {
            return Ok(actions.phases);
        }
        if !actions.deferred {
            w.changed(cfg.tick).await;
        }
    }
}

/// After the last round: nodes that never started go back to how they were, nodes given up
/// on are reported, new nodes lose their markers, and the Lease is released (keeping the
/// run-wide state while some node is still marked).
async fn finish_run(
    cluster: &KubeCluster,
    run: &RunContext,
    cfg: &EngineConfig,
    w: &Watches,
    mem: &Memory,
    final_phases: &BTreeMap<String, NodePhase>,
    report: &mut UpgradeReport,
) -> Result<(), EngineError> {
    for name in setup::never_started(final_phases) {
        let cleaned = cluster
            .patch_node(&name, |fresh| match decode(fresh) {
                Ok(Some(m)) if m.phase == NodePhase::Outdated => abort_patch(fresh),
                _ => NodePatch::default(),
            })
            .await;
        unless_gone(cleaned)?;
    }
    let (nodes, node_rv) = w.nodes();
    let more = setup::given_up(&nodes, final_phases, &report.blocked_nodes);
    report.blocked_nodes.extend(more);
    let mut stopped = stopped_pools(&run.plan, final_phases);
    stopped.extend(mem.stalled.iter().cloned());
    report.stopped_pools = stopped.into_iter().collect();
    // Restore the autoscaler annotation and drop markers on the new nodes (in parallel: one
    // after the other, a few hundred new nodes took seconds).
    let ours = setup::leftover_new_nodes(&nodes, &mem.cleaned);
    tracing::debug!(nodes = ours.len(), "cleanup of the new nodes");
    let results: Vec<Result<NodeInfo, KubeError>> = futures::stream::iter(&ours)
        .map(|n| {
            let rv = node_rv.get(n).map(String::as_str);
            cluster.patch_node_cached(&nodes[n], rv, abort_patch)
        })
        .buffered(PARALLEL_REQUESTS)
        .collect()
        .await;
    for r in results {
        unless_gone(r)?;
    }
    debug_assert!(ANNOTATION_PREFIX.ends_with('/'));
    cluster
        .release_lease(
            &cfg.lease_namespace,
            &cfg.identity,
            setup::keep_state(final_phases),
        )
        .await?;
    Ok(())
}
