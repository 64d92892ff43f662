//! The upgrade plan, **pure**: `Snapshot + PlanOptions → Plan`. `upgrade plan` prints it and
//! `upgrade apply` executes it, so both always agree.
//!
//! Waves: per pool, outdated nodes are grouped by [`NodeClass`] (stateless first, nodes
//! with PDB-protected stateful pods next, PDB-protected stateful primaries last), sorted by
//! zone then name, and cut into chunks of `max_surge + max_unavailable`. Wave *i* of a
//! class is the *i*-th chunk of every pool (pools roll in parallel). Within a wave each
//! pool's surge (`≤ max_surge`) goes first to zones whose pods have zonal volumes, then
//! round-robin over the wave's zones: replacements are 1:1 and AZ-matched.
//!
//! Durations follow `reference/upgrade.md` d.3 with estimated `P` (boot + min-ready),
//! `D` (drain), `T` (terminate) and `R` (evicted pod → replacement Ready).

use super::scheduler::pdb_rounds;
use super::snapshot::{NodeInfo, PdbInfo, PodInfo, Snapshot, UNKNOWN_ZONE};
use k8s_openapi::api::core::v1::Toleration;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Label of control-plane nodes; they are not part of node pools and are skipped.
pub(crate) const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
/// Pod label keys whose value `primary`, `master` or `leader` marks a stateful primary
/// (Zalando postgres-operator, CloudNativePG, common charts).
pub(crate) const PRIMARY_LABELS: &[&str] = &[
    "spilo-role",
    "cnpg.io/instanceRole",
    "role",
    "app.kubernetes.io/role",
];
const PRIMARY_VALUES: &[&str] = &["primary", "master", "leader"];
/// Taint keys that, when tolerated, let a pod come back to a node being drained.
pub(crate) const EVACUATION_TAINT_KEYS: &[&str] = &[
    "node.kubernetes.io/unschedulable",
    super::state::OUTDATED_TAINT_KEY,
];

/// Surge and unavailability limits of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PoolLimits {
    /// New nodes that may exist above the pool's size at once.
    pub max_surge: u32,
    /// Old nodes that may be drained without a ready replacement at once.
    pub max_unavailable: u32,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            max_surge: 1,
            max_unavailable: 0,
        }
    }
}

/// Duration estimates the planner uses (seconds). The report later measures them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// Drain of one node when budgets allow (`D`).
    pub(crate) drain_seconds: u64,
    /// Terminate instance + Node gone (`T`).
    pub(crate) terminate_seconds: u64,
    /// Evicted pod → its replacement Ready (`R`).
    pub(crate) pod_ready_seconds: u64,
    /// A new node must stay ready this long before it counts.
    pub(crate) min_ready_seconds: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            drain_seconds: 120,
            terminate_seconds: 60,
            pod_ready_seconds: 30,
            min_ready_seconds: 0,
        }
    }
}

/// Inputs of [`plan`] besides the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Target kubelet version (`v1.34.1`, `1.34.1`, or a prefix such as `1.34`).
    pub target_version: String,
    /// Pools to upgrade; empty means all.
    pub pools: BTreeSet<String>,
    /// Limits for pools without an entry in `limits`.
    pub default_limits: PoolLimits,
    /// Per-pool limits.
    pub limits: BTreeMap<String, PoolLimits>,
    /// Duration estimates.
    pub timings: Timings,
}

impl PlanOptions {
    /// The limits that apply to `pool`.
    pub(crate) fn limits_for(&self, pool: &str) -> PoolLimits {
        self.limits
            .get(pool)
            .copied()
            .unwrap_or(self.default_limits)
    }
}

/// The plan cannot be computed at all (as opposed to a plan with blockers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--target-version` is empty.
    #[error("--target-version: must not be empty")]
    EmptyTargetVersion,
    /// `--target-version` is not a version, or older than a node (see
    /// [`super::version::check_target`]).
    #[error("{0}")]
    Target(String),
    /// A pool would make no progress.
    #[error("pool {pool:?}: --max-surge and --max-unavailable are both 0; nothing could ever be replaced")]
    NoConcurrency {
        /// The pool.
        pool: String,
    },
    /// `--pool` names a pool the cluster does not have.
    #[error("--pool {pool:?}: no such pool (known: {known})")]
    UnknownPool {
        /// The pool asked for.
        pool: String,
        /// Comma-separated known pools.
        known: String,
    },
}

/// Drain order class of a node: stateless first, primaries last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeClass {
    /// No PDB-protected stateful pod.
    Stateless,
    /// Hosts a PDB-protected stateful pod (StatefulSet or PVC), none of them a primary.
    Stateful,
    /// Hosts a PDB-protected stateful primary/leader.
    StatefulPrimary,
}

/// The kinds of blockers the plan reports (exactly those of the issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockerKind {
    /// A PDB that can never allow a disruption (`minAvailable` = replicas, single replica,
    /// `maxUnavailable: 0`).
    PdbNeverAllowsDisruption,
    /// A pod covered by more than one PDB (the Eviction API answers 500).
    PodUnderMultiplePdbs,
    /// A pod without a controller: evicting it deletes it for good.
    UnmanagedPod,
    /// A pod whose zonal volume needs capacity in a zone that has none planned.
    ZonalVolumeNoCapacity,
    /// A pod that tolerates every NoSchedule taint (or the cordon / evacuation taint).
    ToleratesEverything,
}

/// One reason the upgrade cannot complete without intervention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// What kind.
    pub kind: BlockerKind,
    /// The object at fault: `Pod/ns/name` or `PodDisruptionBudget/ns/name`.
    pub object: String,
    /// The outdated node concerned, if one.
    pub(crate) node: Option<String>,
    /// Why, and what to do about it.
    pub(crate) explanation: String,
}

impl Blocker {
    /// One line: kind (named as in the JSON plan), object, node, and why.
    pub(crate) fn line(&self) -> String {
        let kind = serde_json::to_value(self.kind).unwrap_or_default();
        format!(
            "{} {}{}: {}",
            kind.as_str().unwrap_or_default(),
            self.object,
            self.node
                .as_ref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default(),
            self.explanation
        )
    }
}

/// An outdated node and why it sits where it does in the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutdatedNode {
    pub(crate) name: String,
    /// Pool.
    pub pool: String,
    pub(crate) zone: String,
    /// Current kubelet version.
    pub(crate) kubelet_version: String,
    /// Drain order class.
    pub(crate) class: NodeClass,
    /// Pods a drain will evict.
    pub(crate) evictable_pods: u32,
}

/// Surge nodes for one (pool, zone).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ZoneSurge {
    pub(crate) pool: String,
    /// Zone.
    pub zone: String,
    /// New nodes created before the drain.
    pub(crate) nodes: u32,
}

/// Nodes drained together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wave {
    /// 0-based position.
    pub(crate) index: usize,
    /// Class of every node in the wave.
    pub(crate) class: NodeClass,
    pub(crate) nodes: Vec<String>,
    /// Surge requested before this wave drains, per (pool, zone); zero entries omitted.
    pub(crate) surge: Vec<ZoneSurge>,
    /// Estimated seconds for this wave (surge boot + drain + terminate).
    pub(crate) estimated_seconds: u64,
}

/// Estimated and minimal durations (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Estimate {
    /// Sum over waves.
    pub(crate) estimated_seconds: u64,
    /// `LB_phys` of d.3.
    pub(crate) lower_bound_phys_seconds: u64,
    /// `LB_policy` of d.3 (the lower bound the report's efficiency uses).
    pub(crate) lower_bound_seconds: u64,
}

/// A node left out of the plan, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SkippedNode {
    pub(crate) name: String,
    pub(crate) reason: String,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Target kubelet version.
    pub(crate) target_version: String,
    /// Nodes to replace, in wave order.
    pub outdated: Vec<OutdatedNode>,
    /// Waves, in execution order.
    pub waves: Vec<Wave>,
    /// Peak surge per (pool, zone) over all waves.
    pub surge: Vec<ZoneSurge>,
    /// Durations.
    pub(crate) estimate: Estimate,
    /// Blockers; non-empty ⇒ `plan` exits 1.
    pub blockers: Vec<Blocker>,
    /// Nodes not considered (control plane, pools filtered out).
    pub(crate) skipped: Vec<SkippedNode>,
}

/// `v` without surrounding spaces and a leading `v`.
pub(crate) fn normalize(v: &str) -> &str {
    v.trim().trim_start_matches('v')
}

/// Whether a node at `kubelet` is at `target` (exact, or `target` is a version prefix).
pub fn at_version(kubelet: &str, target: &str) -> bool {
    let (k, t) = (normalize(kubelet), normalize(target));
    k == t
        || k.strip_prefix(t)
            .is_some_and(|rest| rest.starts_with(['.', '+', '-']))
}

struct Ctx<'a> {
    snap: &'a Snapshot,
    opts: &'a PlanOptions,
    /// PDB key → steady-state allowed disruptions.
    pdb_allowed: BTreeMap<String, i32>,
}

impl<'a> Ctx<'a> {
    fn new(snap: &'a Snapshot, opts: &'a PlanOptions) -> Self {
        let pdb_allowed = snap
            .pdbs
            .iter()
            .map(|b| (b.key(), b.steady_state_allowed_among(&snap.pods)))
            .collect();
        Ctx {
            snap,
            opts,
            pdb_allowed,
        }
    }

    fn evictable_on(&self, node: &'a str) -> impl Iterator<Item = &'a PodInfo> + 'a {
        self.snap.pods_on(node).filter(|p| p.evictable())
    }

    fn class_of(&self, node: &'a str) -> NodeClass {
        // Stateful: owned by a StatefulSet or mounting a PVC; a primary/leader by its labels.
        let stateful =
            |p: &PodInfo| p.has_pvc || p.owner.as_ref().is_some_and(|o| o.kind == "StatefulSet");
        let primary = |p: &PodInfo| {
            PRIMARY_LABELS.iter().any(|k| {
                p.labels
                    .get(*k)
                    .is_some_and(|v| PRIMARY_VALUES.contains(&v.to_ascii_lowercase().as_str()))
            })
        };
        self.evictable_on(node)
            .filter(|p| stateful(p) && self.snap.pdbs_of(p).next().is_some())
            .map(|p| {
                if primary(p) {
                    NodeClass::StatefulPrimary
                } else {
                    NodeClass::Stateful
                }
            })
            .max()
            .unwrap_or(NodeClass::Stateless)
    }
}

/// Computes the plan. Errors only when no plan can exist; problems the user must fix
/// in the cluster are [`Blocker`]s in the returned plan.
pub fn plan(snap: &Snapshot, opts: &PlanOptions) -> Result<Plan, PlanError> {
    if normalize(&opts.target_version).is_empty() {
        return Err(PlanError::EmptyTargetVersion);
    }
    let kubelets: Vec<(&str, &str)> = snap
        .nodes
        .iter()
        .filter(|n| opts.pools.is_empty() || opts.pools.contains(&n.pool))
        .map(|n| (n.name.as_str(), n.kubelet_version.as_str()))
        .collect();
    super::version::check_target(&opts.target_version, &kubelets, None)
        .map_err(PlanError::Target)?;
    let known: BTreeSet<&str> = snap.nodes.iter().map(|n| n.pool.as_str()).collect();
    if let Some(p) = opts.pools.iter().find(|p| !known.contains(p.as_str())) {
        return Err(PlanError::UnknownPool {
            pool: p.clone(),
            known: known.iter().copied().collect::<Vec<_>>().join(","),
        });
    }
    let ctx = Ctx::new(snap, opts);

    let mut skipped = Vec::new();
    let mut outdated_nodes: Vec<&NodeInfo> = Vec::new();
    for n in &snap.nodes {
        let reason = if n.labels.contains_key(CONTROL_PLANE_LABEL) {
            "control-plane node (not part of a node pool)".into()
        } else if !opts.pools.is_empty() && !opts.pools.contains(&n.pool) {
            format!("pool {:?} not selected by --pool", n.pool)
        } else {
            if !at_version(&n.kubelet_version, &opts.target_version) {
                outdated_nodes.push(n);
            }
            continue;
        };
        let name = n.name.clone();
        skipped.push(SkippedNode { name, reason });
    }
    if let Some(n) = outdated_nodes.iter().find(|n| {
        let l = opts.limits_for(&n.pool);
        l.max_surge + l.max_unavailable == 0
    }) {
        let pool = n.pool.clone();
        return Err(PlanError::NoConcurrency { pool });
    }
    let outdated_set: BTreeSet<&str> = outdated_nodes.iter().map(|n| n.name.as_str()).collect();

    // Waves, and the outdated nodes in wave order.
    let mut by_class: BTreeMap<NodeClass, BTreeMap<&str, Vec<&NodeInfo>>> = BTreeMap::new();
    for n in &outdated_nodes {
        let pools = by_class.entry(ctx.class_of(&n.name)).or_default();
        pools.entry(n.pool.as_str()).or_default().push(n);
    }
    let mut waves: Vec<Wave> = Vec::new();
    let mut outdated = Vec::new();
    for (class, pools) in &mut by_class {
        let mut chunks_per_pool: Vec<(&str, Vec<&[&NodeInfo]>)> = Vec::new();
        for (pool, nodes) in pools {
            nodes.sort_by(|a, b| (&a.zone, &a.name).cmp(&(&b.zone, &b.name)));
            let l = opts.limits_for(pool);
            let size = (l.max_surge + l.max_unavailable) as usize;
            chunks_per_pool.push((pool, nodes.chunks(size).collect()));
        }
        let rounds = chunks_per_pool
            .iter()
            .map(|(_, c)| c.len())
            .max()
            .unwrap_or(0);
        for i in 0..rounds {
            let mut nodes = Vec::new();
            let mut surge = Vec::new();
            for (pool, chunks) in &chunks_per_pool {
                let Some(chunk) = chunks.get(i) else { continue };
                surge.extend(assign_surge(&ctx, pool, chunk));
                for n in *chunk {
                    nodes.push(n.name.clone());
                    outdated.push(OutdatedNode {
                        name: n.name.clone(),
                        pool: n.pool.clone(),
                        zone: n.zone.clone(),
                        kubelet_version: n.kubelet_version.clone(),
                        class: *class,
                        evictable_pods: ctx.evictable_on(&n.name).count() as u32,
                    });
                }
            }
            waves.push(Wave {
                index: waves.len(),
                class: *class,
                nodes,
                surge,
                estimated_seconds: 0,
            });
        }
    }

    // Blockers.
    let mut blockers = Vec::new();
    let mut pdb_blocked = BTreeSet::new();
    let wave_of: BTreeMap<&str, &Wave> = waves
        .iter()
        .flat_map(|w| w.nodes.iter().map(move |n| (n.as_str(), w)))
        .collect();
    for n in &outdated_nodes {
        for pod in ctx.evictable_on(&n.name) {
            pod_blockers(
                &ctx,
                n,
                pod,
                &wave_of,
                &outdated_set,
                &mut blockers,
                &mut pdb_blocked,
            );
        }
    }
    blockers.sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));

    // Estimates.
    let t = opts.timings;
    let boot = |pool: &str| {
        snap.pools
            .iter()
            .find(|p| p.name == pool)
            .map(|p| p.boot_seconds)
            .unwrap_or(super::snapshot::DEFAULT_BOOT_SECONDS)
            + t.min_ready_seconds
    };
    let pdb_term = |nodes: &mut dyn Iterator<Item = &str>| -> u64 {
        let mut k: BTreeMap<String, u64> = BTreeMap::new();
        for n in nodes {
            for pod in ctx.evictable_on(n) {
                for b in snap.pdbs_of(pod) {
                    *k.entry(b.key()).or_default() += 1;
                }
            }
        }
        k.iter()
            .filter_map(|(key, k_b)| {
                let a = ctx.pdb_allowed.get(key).copied().unwrap_or(0);
                (a > 0).then(|| pdb_rounds(*k_b, a as u64) * t.pod_ready_seconds)
            })
            .max()
            .unwrap_or(0)
    };
    let mut total = 0;
    for w in &mut waves {
        let p = w.surge.iter().map(|s| boot(&s.pool)).max().unwrap_or(0);
        let d = t
            .drain_seconds
            .max(pdb_term(&mut w.nodes.iter().map(String::as_str)));
        w.estimated_seconds = p + d + t.terminate_seconds;
        total += w.estimated_seconds;
    }
    let mut per_pool: BTreeMap<&str, u64> = BTreeMap::new();
    for n in &outdated_nodes {
        *per_pool.entry(n.pool.as_str()).or_default() += 1;
    }
    let surged_pools: BTreeSet<&str> = waves
        .iter()
        .flat_map(|w| w.surge.iter().map(|s| s.pool.as_str()))
        .collect();
    let dt = t.drain_seconds + t.terminate_seconds;
    let term1 = per_pool
        .keys()
        .map(|p| {
            let l = opts.limits_for(p);
            let surge_first = l.max_unavailable == 0 && surged_pools.contains(p);
            if surge_first {
                boot(p) + dt
            } else {
                dt
            }
        })
        .max()
        .unwrap_or(0);
    let term2 = pdb_term(&mut outdated_nodes.iter().map(|n| n.name.as_str()));
    let lb_phys = term1.max(term2);
    let term3 = per_pool
        .iter()
        .map(|(p, n)| {
            let l = opts.limits_for(p);
            n.div_ceil(u64::from(l.max_surge + l.max_unavailable).max(1)) * dt
        })
        .max()
        .unwrap_or(0);

    let mut peak: BTreeMap<(String, String), u32> = BTreeMap::new();
    for s in waves.iter().flat_map(|w| &w.surge) {
        let e = peak.entry((s.pool.clone(), s.zone.clone())).or_default();
        *e = (*e).max(s.nodes);
    }

    Ok(Plan {
        target_version: opts.target_version.clone(),
        outdated,
        waves,
        surge: peak
            .into_iter()
            .map(|((pool, zone), nodes)| ZoneSurge { pool, zone, nodes })
            .collect(),
        estimate: Estimate {
            estimated_seconds: total,
            lower_bound_phys_seconds: lb_phys,
            lower_bound_seconds: lb_phys.max(term3),
        },
        blockers,
        skipped,
    })
}

/// Surge for one pool's chunk: ≤ max_surge, ≤ nodes per zone, only in zones the pool can
/// launch in; zones with zonal-volume pods first.
fn assign_surge(ctx: &Ctx<'_>, pool: &str, chunk: &[&NodeInfo]) -> Vec<ZoneSurge> {
    let mut budget = ctx.opts.limits_for(pool).max_surge;
    let launchable: Option<BTreeSet<&str>> = ctx
        .snap
        .pools
        .iter()
        .find(|p| p.name == pool)
        .map(|p| p.nodes_per_zone.keys().map(String::as_str).collect());
    let mut want: BTreeMap<&str, (bool, u32)> = BTreeMap::new();
    for n in chunk {
        if n.zone == UNKNOWN_ZONE
            || launchable
                .as_ref()
                .is_some_and(|z| !z.contains(n.zone.as_str()))
        {
            continue;
        }
        let zonal = ctx.evictable_on(&n.name).any(|p| p.volume_zones.is_some());
        let e = want.entry(n.zone.as_str()).or_default();
        e.0 |= zonal;
        e.1 += 1;
    }
    let mut got: BTreeMap<&str, u32> = BTreeMap::new();
    // Zonal zones first, then the rest, round-robin one node at a time.
    let mut zones: Vec<&str> = want
        .iter()
        .filter(|(_, (z, _))| *z)
        .map(|(k, _)| *k)
        .collect();
    zones.extend(want.iter().filter(|(_, (z, _))| !*z).map(|(k, _)| *k));
    while budget > 0 {
        let mut progressed = false;
        for z in &zones {
            let g = got.entry(z).or_default();
            if budget > 0 && *g < want[z].1 {
                *g += 1;
                budget -= 1;
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    got.into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(zone, nodes)| ZoneSurge {
            pool: pool.to_string(),
            zone: zone.to_string(),
            nodes,
        })
        .collect()
}

fn pod_blockers(
    ctx: &Ctx<'_>,
    node: &NodeInfo,
    pod: &PodInfo,
    wave_of: &BTreeMap<&str, &Wave>,
    outdated: &BTreeSet<&str>,
    out: &mut Vec<Blocker>,
    pdb_seen: &mut BTreeSet<String>,
) {
    let object = format!("Pod/{}", pod.key());
    let at = |kind, object: String, explanation: String| Blocker {
        kind,
        object,
        node: Some(node.name.clone()),
        explanation,
    };
    let pdbs: Vec<&PdbInfo> = ctx.snap.pdbs_of(pod).collect();
    if pdbs.len() > 1 {
        let names: Vec<String> = pdbs.iter().map(|b| b.key()).collect();
        out.push(at(
            BlockerKind::PodUnderMultiplePdbs,
            object.clone(),
            format!(
                "covered by {} PodDisruptionBudgets ({}); the Eviction API refuses such pods with 500. Keep one PDB per pod.",
                names.len(),
                names.join(", ")
            ),
        ));
    }
    for b in &pdbs {
        let key = b.key();
        let allowed = ctx.pdb_allowed.get(&key).copied().unwrap_or(0);
        if allowed <= 0 && pdb_seen.insert(key.clone()) {
            let expected = b.status.map(|s| s.expected_pods);
            let rule = match (b.min_available, b.max_unavailable) {
                (Some(m), _) => format!("minAvailable {m}"),
                (None, Some(m)) => format!("maxUnavailable {m}"),
                (None, None) => {
                    "no minAvailable/maxUnavailable (defaults to minAvailable 1)".into()
                }
            };
            let exp = expected.map_or_else(
                || "counted pods".to_string(),
                |e| format!("{e} expected pods"),
            );
            out.push(at(
                BlockerKind::PdbNeverAllowsDisruption,
                format!("PodDisruptionBudget/{key}"),
                format!(
                    "{rule} with {exp} allows no disruption even when every pod is healthy, so pod {} on outdated node {} can never be evicted. Raise replicas, lower minAvailable or use maxUnavailable ≥ 1.",
                    pod.key(),
                    node.name
                ),
            ));
        }
    }
    if pod.owner.is_none() {
        out.push(at(
            BlockerKind::UnmanagedPod,
            object.clone(),
            "no controller owns this pod: evicting it deletes it for good. Run it under a Deployment/StatefulSet/Job.".into(),
        ));
    }
    if let Some(zones) = &pod.volume_zones {
        let free = zones.iter().any(|z| zone_has_room(ctx, z, pod, outdated));
        let surge = wave_of.get(node.name.as_str()).is_some_and(|w| {
            w.surge
                .iter()
                .any(|s| s.pool == node.pool && zones.contains(&s.zone) && s.nodes > 0)
        });
        if !free && !surge {
            let list = zones.iter().cloned().collect::<Vec<_>>().join(",");
            out.push(at(
                BlockerKind::ZonalVolumeNoCapacity,
                object.clone(),
                if zones.is_empty() {
                    "its volumes are bound to disjoint zones; it cannot run anywhere.".into()
                } else {
                    format!(
                        "its volume is bound to zone(s) {list}, no up-to-date node there has room and pool {:?} gets no surge there (max-surge {}). Raise --max-surge for the pool or add capacity in {list}.",
                        node.pool,
                        ctx.opts.limits_for(&node.pool).max_surge
                    )
                },
            ));
        }
    }
    let evac = pod.tolerations.iter().find_map(|t| {
        let k = t.key.as_deref()?;
        (EVACUATION_TAINT_KEYS.contains(&k) && no_schedule(t)).then(|| format!("the taint {k}"))
    });
    let every = pod
        .tolerations
        .iter()
        .any(tolerates_every_no_schedule)
        .then(|| "every NoSchedule taint (operator Exists without a key)".to_string());
    if let Some(what) = every.or(evac) {
        out.push(at(
            BlockerKind::ToleratesEverything,
            object,
            format!(
                "tolerates {what}: cordon and the evacuation taint do not keep it off outdated nodes, so it can be rescheduled onto a node being drained and keep the drain from finishing. Narrow its tolerations."
            ),
        ));
    }
}

/// Whether `t` applies to `NoSchedule` taints (effect empty or `NoSchedule`).
fn no_schedule(t: &Toleration) -> bool {
    t.effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == "NoSchedule")
}

/// Whether `t` tolerates every `NoSchedule` taint whatever its key (`operator: Exists`
/// without a key).
pub(crate) fn tolerates_every_no_schedule(t: &Toleration) -> bool {
    t.key.as_deref().unwrap_or_default().is_empty()
        && t.operator.as_deref() == Some("Exists")
        && no_schedule(t)
}

/// Free room in `zone` on a ready, schedulable, not outdated node.
fn zone_has_room(ctx: &Ctx<'_>, zone: &str, pod: &PodInfo, outdated: &BTreeSet<&str>) -> bool {
    ctx.snap.nodes.iter().any(|n| {
        n.zone == zone
            && n.ready
            && !n.unschedulable
            && !outdated.contains(n.name.as_str())
            && !n.labels.contains_key(CONTROL_PLANE_LABEL)
            && {
                let used = ctx
                    .snap
                    .pods_on(&n.name)
                    .filter(|p| !p.terminated())
                    .fold(super::snapshot::Resources::default(), |a, p| {
                        a.plus(p.requests)
                    });
                n.allocatable.saturating_sub(used).fits(&pod.requests)
            }
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
pub(crate) mod tests;
