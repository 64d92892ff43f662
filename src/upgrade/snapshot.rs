//! A pure, owned view of what the upgrade engine needs from the cluster: nodes, pods,
//! PodDisruptionBudgets and node pools. Built once from k8s-openapi objects
//! ([`Snapshot::from_k8s`]) so a real cluster, the simulated one and unit tests all
//! feed the planner the same way. No I/O here.

use crate::quantity::{self, QuantityError};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Toleration};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{Selector, SelectorExt};
use std::collections::{BTreeMap, BTreeSet};

/// Node labels that name the node's pool, first match wins. Nodes without any of them
/// belong to the pool [`DEFAULT_POOL`].
pub(crate) const POOL_LABELS: &[&str] = &[
    "e2e-gate.io/pool",
    "eks.amazonaws.com/nodegroup",
    "cloud.google.com/gke-nodepool",
    "kubernetes.azure.com/agentpool",
    "karpenter.sh/nodepool",
];
/// Pool name for nodes without a pool label.
pub(crate) const DEFAULT_POOL: &str = "default";
/// Node and PV labels / PV node-affinity keys that name the availability zone.
pub(crate) const ZONE_KEYS: &[&str] = &[
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.ebs.csi.aws.com/zone",
    "topology.gke.io/zone",
];
/// Zone of a node without a zone label.
pub(crate) const UNKNOWN_ZONE: &str = "unknown";
/// Boot-time estimate (launch → ready) for pools derived from node labels only.
pub(crate) const DEFAULT_BOOT_SECONDS: u64 = 180;
/// Annotation the kubelet puts on mirror (static) pods.
pub(crate) const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A snapshot could not be built; names the object and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// A resource quantity on the object did not parse.
    #[error("{object}: {source}")]
    Quantity {
        /// `kind/namespace/name`.
        object: String,
        /// The parse error.
        #[source]
        source: QuantityError,
    },
    /// A label selector used an unknown operator (or In/NotIn without values).
    #[error(
        "{object}: label selector with operators {operators:?}: {reason} \
         (valid operators: In, NotIn with values; Exists, DoesNotExist)"
    )]
    Selector {
        /// `kind/namespace/name`.
        object: String,
        /// The operators the selector's expressions use, as found.
        operators: Vec<String>,
        /// kube's parse error, as text.
        reason: String,
    },
    /// `minAvailable` / `maxUnavailable` was neither an integer nor a percentage.
    #[error("{object}: invalid {field} {value:?} (want an integer or \"N%\")")]
    IntOrPercent {
        /// `kind/namespace/name`.
        object: String,
        /// Field name.
        field: &'static str,
        /// The value as found.
        value: String,
    },
    /// An object lacks its name.
    #[error("a {kind} without metadata.name")]
    Unnamed {
        /// Kind of the object.
        kind: &'static str,
    },
}

/// CPU, memory and pod-slot amounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Pod slots (only meaningful for node allocatable).
    pub pods: u64,
}

impl Resources {
    /// Component-wise sum.
    pub(crate) fn plus(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis + o.cpu_millis,
            memory_bytes: self.memory_bytes + o.memory_bytes,
            pods: self.pods + o.pods,
        }
    }
    /// Component-wise saturating difference.
    pub(crate) fn saturating_sub(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(o.memory_bytes),
            pods: self.pods.saturating_sub(o.pods),
        }
    }
    /// Whether `need` fits into `self` (pods: one slot per request).
    pub(crate) fn fits(&self, need: &Resources) -> bool {
        self.cpu_millis >= need.cpu_millis
            && self.memory_bytes >= need.memory_bytes
            && self.pods >= need.pods
    }
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaintInfo {
    /// Key.
    pub key: String,
    /// Value, if any.
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// What the engine needs to know about a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Pool (from [`POOL_LABELS`], else [`DEFAULT_POOL`]).
    pub pool: String,
    /// Availability zone (from [`ZONE_KEYS`], else [`UNKNOWN_ZONE`]).
    pub zone: String,
    /// `status.nodeInfo.kubeletVersion`, e.g. `v1.34.1`; empty if not reported.
    pub kubelet_version: String,
    /// Condition `Ready` is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `spec.providerID`, the link to the cloud instance.
    pub provider_id: Option<String>,
    /// Taints.
    pub taints: Vec<TaintInfo>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `status.allocatable`.
    pub allocatable: Resources,
}

/// The controlling owner of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerInfo {
    /// Owner kind (`ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job`, …).
    pub kind: String,
    /// Owner name.
    pub name: String,
}

/// What the engine needs to know about a pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid` (a StatefulSet pod recreated under the same name has a new one).
    pub uid: String,
    /// `spec.nodeName`, if scheduled.
    pub node: Option<String>,
    /// Controlling owner, if any.
    pub owner: Option<OwnerInfo>,
    /// Sum of container requests (init containers ignored) plus one pod slot.
    pub requests: Resources,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Zones allowed by the pod's bound PersistentVolumes (intersection over volumes);
    /// `None` when no volume constrains the zone.
    pub volume_zones: Option<BTreeSet<String>>,
    /// Whether the pod mounts any PVC.
    pub has_pvc: bool,
    /// Condition `Ready` is `True`.
    pub ready: bool,
    /// `status.phase` (`Running`, `Pending`, `Succeeded`, …).
    pub phase: String,
    /// Owned by a DaemonSet.
    pub daemonset: bool,
    /// Mirror (static) pod.
    pub mirror: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl PodInfo {
    /// `namespace/name`.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
    /// Terminated pods (Succeeded/Failed) need no eviction.
    pub(crate) fn terminated(&self) -> bool {
        self.phase == "Succeeded" || self.phase == "Failed"
    }
    /// A pod a drain must evict: not DaemonSet, not mirror, not terminated.
    pub(crate) fn evictable(&self) -> bool {
        !self.daemonset && !self.mirror && !self.terminated()
    }
}

/// An integer or a percentage (`minAvailable`, `maxUnavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    /// Absolute count.
    Int(i32),
    /// Percentage of the expected pods, rounded up (as the disruption controller does).
    Percent(u32),
}

impl IntOrPercent {
    /// Resolves against `total` pods, rounding a percentage up.
    pub fn resolve(self, total: i32) -> i32 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => {
                let t = i64::from(total.max(0));
                ((t * i64::from(p) + 99) / 100) as i32
            }
        }
    }
}

impl std::fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `status` of a PodDisruptionBudget as last observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdbStatus {
    /// `disruptionsAllowed`.
    pub disruptions_allowed: i32,
    /// `expectedPods`.
    pub expected_pods: i32,
    /// `currentHealthy`.
    pub current_healthy: i32,
    /// `desiredHealthy`.
    pub desired_healthy: i32,
}

/// What the engine needs to know about a PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdbInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Selector; `None` selects nothing (policy/v1: a null selector matches no pods).
    pub selector: Option<Selector>,
    /// `spec.minAvailable`.
    pub min_available: Option<IntOrPercent>,
    /// `spec.maxUnavailable`.
    pub max_unavailable: Option<IntOrPercent>,
    /// `spec.unhealthyPodEvictionPolicy` is `AlwaysAllow`.
    pub always_allow_unhealthy: bool,
    /// Status, if the disruption controller has written one.
    pub status: Option<PdbStatus>,
}

impl PdbInfo {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
    /// Whether the PDB covers `pod` (same namespace, selector matches).
    pub fn covers(&self, pod: &PodInfo) -> bool {
        pod.namespace == self.namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
    }
    /// Disruptions allowed when all `expected` pods are healthy (the steady state `a_b`).
    /// `expected` comes from the status when present, else from the caller's count.
    pub(crate) fn steady_state_allowed(&self, counted: i32) -> i32 {
        let expected = self.status.map(|s| s.expected_pods).unwrap_or(counted);
        if let Some(min) = self.min_available {
            expected - min.resolve(expected)
        } else if let Some(max) = self.max_unavailable {
            max.resolve(expected)
        } else {
            // Neither field: the API defaults minAvailable to 1.
            expected - 1
        }
    }
    /// [`Self::steady_state_allowed`], counting the pods of `pods` it covers (terminated
    /// ones excluded).
    pub(crate) fn steady_state_allowed_among(&self, pods: &[PodInfo]) -> i32 {
        let counted = pods.iter().filter(|p| !p.terminated() && self.covers(p));
        self.steady_state_allowed(counted.count() as i32)
    }
}

/// A node pool as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    pub(crate) name: String,
    /// Current nodes per availability zone. Zones with 0 nodes may be listed: the
    /// pool can launch there.
    pub(crate) nodes_per_zone: BTreeMap<String, u32>,
    /// Estimated launch → ready seconds for a new node.
    pub(crate) boot_seconds: u64,
}

impl PoolInfo {
    /// Pools derived from node labels only (the cloud is not consulted): each pool's
    /// zones are those where it has nodes today.
    pub fn from_nodes(nodes: &[NodeInfo], boot_seconds: u64) -> Vec<PoolInfo> {
        let mut by_pool: BTreeMap<&str, BTreeMap<String, u32>> = BTreeMap::new();
        for n in nodes {
            *by_pool
                .entry(n.pool.as_str())
                .or_default()
                .entry(n.zone.clone())
                .or_default() += 1;
        }
        by_pool
            .into_iter()
            .map(|(name, nodes_per_zone)| PoolInfo {
                name: name.to_string(),
                nodes_per_zone,
                boot_seconds,
            })
            .collect()
    }
}

/// Everything the planner and the state machine read. Sorted by name for determinism.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Nodes, sorted by name.
    pub nodes: Vec<NodeInfo>,
    /// Pods, sorted by `namespace/name`.
    pub pods: Vec<PodInfo>,
    /// PDBs, sorted by `namespace/name`.
    pub pdbs: Vec<PdbInfo>,
    /// Pools, sorted by name.
    pub pools: Vec<PoolInfo>,
}

/// The raw objects a snapshot is built from (one LIST each, or fixtures).
#[derive(Debug, Clone, Default)]
pub struct ClusterObjects {
    pub(crate) nodes: Vec<Node>,
    /// Pods (all namespaces).
    pub pods: Vec<Pod>,
    /// PodDisruptionBudgets (policy/v1, all namespaces).
    pub(crate) pdbs: Vec<PodDisruptionBudget>,
    /// PersistentVolumeClaims (all namespaces), to find a pod's volumes.
    pub(crate) pvcs: Vec<PersistentVolumeClaim>,
    /// PersistentVolumes, for their zone affinity.
    pub(crate) pvs: Vec<PersistentVolume>,
}

/// The cpu, memory and pods amounts of a resource list (`allocatable`, a container's
/// requests); a bad quantity names `object`.
fn resources(
    list: Option<&BTreeMap<String, Quantity>>,
    object: &str,
) -> Result<Resources, SnapshotError> {
    let mut r = Resources::default();
    for (k, q) in list.into_iter().flatten() {
        let wrap = |source| SnapshotError::Quantity {
            object: object.to_string(),
            source,
        };
        match k.as_str() {
            "cpu" => r.cpu_millis = quantity::cpu_millis(&q.0).map_err(wrap)?,
            "memory" => r.memory_bytes = quantity::base_units(&q.0).map_err(wrap)?,
            "pods" => r.pods = quantity::base_units(&q.0).map_err(wrap)?,
            _ => {}
        }
    }
    Ok(r)
}

fn first_label(labels: &BTreeMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| labels.get(*k).filter(|v| !v.is_empty()).cloned())
}

fn int_or_percent(
    v: &IntOrString,
    object: &str,
    field: &'static str,
) -> Result<IntOrPercent, SnapshotError> {
    match v {
        IntOrString::Int(n) => Ok(IntOrPercent::Int(*n)),
        IntOrString::String(s) => {
            let bad = || SnapshotError::IntOrPercent {
                object: object.to_string(),
                field,
                value: s.clone(),
            };
            match s.strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse()
                    .map(IntOrPercent::Percent)
                    .map_err(|_| bad()),
                None => s.trim().parse().map(IntOrPercent::Int).map_err(|_| bad()),
            }
        }
    }
}

impl PodInfo {
    /// Builds the view of one Pod without volume zones (watch-fed callers).
    pub(crate) fn from_k8s(p: &Pod) -> Result<PodInfo, SnapshotError> {
        pod_info(p, &BTreeMap::new())
    }
}

impl NodeInfo {
    /// Builds the view of one Node (e.g. after a GET before patching markers).
    pub fn from_k8s(n: &Node) -> Result<NodeInfo, SnapshotError> {
        let name = n
            .metadata
            .name
            .clone()
            .ok_or(SnapshotError::Unnamed { kind: "Node" })?;
        let object = format!("Node/{name}");
        let labels = n.metadata.labels.clone().unwrap_or_default();
        let status = n.status.as_ref();
        let spec = n.spec.as_ref();
        let allocatable = resources(status.and_then(|s| s.allocatable.as_ref()), &object)?;
        Ok(NodeInfo {
            pool: first_label(&labels, POOL_LABELS).unwrap_or_else(|| DEFAULT_POOL.to_string()),
            zone: first_label(&labels, ZONE_KEYS).unwrap_or_else(|| UNKNOWN_ZONE.to_string()),
            kubelet_version: status
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.kubelet_version.clone())
                .unwrap_or_default(),
            ready: status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            provider_id: spec.and_then(|s| s.provider_id.clone()),
            taints: spec
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .map(|t| TaintInfo {
                    key: t.key.clone(),
                    value: t.value.clone(),
                    effect: t.effect.clone(),
                })
                .collect(),
            annotations: n.metadata.annotations.clone().unwrap_or_default(),
            labels,
            allocatable,
            name,
        })
    }
}

/// Zones a PV may be used in: its required node affinity on a zone key, else its zone label.
fn pv_zones(pv: &PersistentVolume) -> Option<BTreeSet<String>> {
    let terms = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or_default();
    // Terms are ORed: the allowed zones are the union of each term's zone values.
    let mut zones = BTreeSet::new();
    let mut constrained = false;
    for t in terms {
        for e in t.match_expressions.iter().flatten() {
            if ZONE_KEYS.contains(&e.key.as_str()) && e.operator == "In" {
                constrained = true;
                zones.extend(e.values.iter().flatten().cloned());
            }
        }
    }
    if constrained {
        return Some(zones);
    }
    let labels = pv.metadata.labels.clone().unwrap_or_default();
    first_label(&labels, ZONE_KEYS).map(|z| BTreeSet::from([z]))
}

/// Namespace, name and `Kind/namespace/name` (how errors name it) of a namespaced object.
fn namespaced(
    meta: &ObjectMeta,
    kind: &'static str,
) -> Result<(String, String, String), SnapshotError> {
    let name = meta.name.clone().ok_or(SnapshotError::Unnamed { kind })?;
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let object = format!("{kind}/{namespace}/{name}");
    Ok((namespace, name, object))
}

fn pod_info(
    p: &Pod,
    claim_zones: &BTreeMap<(String, String), BTreeSet<String>>,
) -> Result<PodInfo, SnapshotError> {
    let (namespace, name, object) = namespaced(&p.metadata, "Pod")?;
    let owner = p
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| OwnerInfo {
            kind: o.kind.clone(),
            name: o.name.clone(),
        });
    let spec = p.spec.as_ref();
    let mut requests = Resources {
        pods: 1,
        ..Resources::default()
    };
    for c in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
        let r = resources(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
            &object,
        )?;
        requests = requests.plus(Resources { pods: 0, ..r });
    }
    let mut volume_zones: Option<BTreeSet<String>> = None;
    let mut has_pvc = false;
    for v in spec.and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
        if let Some(c) = &v.persistent_volume_claim {
            has_pvc = true;
            if let Some(z) = claim_zones.get(&(namespace.clone(), c.claim_name.clone())) {
                volume_zones = Some(match volume_zones {
                    None => z.clone(),
                    Some(prev) => prev.intersection(z).cloned().collect(),
                });
            }
        }
    }
    let annotations = p.metadata.annotations.clone().unwrap_or_default();
    let status = p.status.as_ref();
    Ok(PodInfo {
        uid: p.metadata.uid.clone().unwrap_or_default(),
        node: spec.and_then(|s| s.node_name.clone()),
        daemonset: owner.as_ref().is_some_and(|o| o.kind == "DaemonSet"),
        mirror: annotations.contains_key(MIRROR_ANNOTATION),
        owner,
        requests,
        tolerations: spec.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
        volume_zones,
        has_pvc,
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        namespace,
        name,
    })
}

impl PdbInfo {
    /// Builds the view of one PodDisruptionBudget.
    pub(crate) fn from_k8s(b: &PodDisruptionBudget) -> Result<PdbInfo, SnapshotError> {
        let (namespace, name, object) = namespaced(&b.metadata, "PodDisruptionBudget")?;
        let spec = b.spec.as_ref();
        let selector = spec.and_then(|s| s.selector.as_ref()).map(|s| {
            Selector::try_from(s.clone()).map_err(|source| SnapshotError::Selector {
                object: object.clone(),
                operators: s
                    .match_expressions
                    .iter()
                    .flatten()
                    .map(|e| e.operator.clone())
                    .collect(),
                reason: source.to_string(),
            })
        });
        let selector = selector.transpose()?;
        let min_available = spec
            .and_then(|s| s.min_available.as_ref())
            .map(|v| int_or_percent(v, &object, "minAvailable"))
            .transpose()?;
        let max_unavailable = spec
            .and_then(|s| s.max_unavailable.as_ref())
            .map(|v| int_or_percent(v, &object, "maxUnavailable"))
            .transpose()?;
        Ok(PdbInfo {
            selector,
            min_available,
            max_unavailable,
            always_allow_unhealthy: spec.and_then(|s| s.unhealthy_pod_eviction_policy.as_deref())
                == Some("AlwaysAllow"),
            status: b.status.as_ref().map(|s| PdbStatus {
                disruptions_allowed: s.disruptions_allowed,
                expected_pods: s.expected_pods,
                current_healthy: s.current_healthy,
                desired_healthy: s.desired_healthy,
            }),
            namespace,
            name,
        })
    }
}

impl Snapshot {
    /// Builds the snapshot. Pools are derived from node labels with
    /// [`DEFAULT_BOOT_SECONDS`]; replace them with [`Snapshot::with_pools`] when the cloud
    /// knows better (zones without nodes, boot-time history).
    pub fn from_k8s(objects: &ClusterObjects) -> Result<Snapshot, SnapshotError> {
        let pv_by_name: BTreeMap<&str, &PersistentVolume> = objects
            .pvs
            .iter()
            .filter_map(|pv| pv.metadata.name.as_deref().map(|n| (n, pv)))
            .collect();
        let mut claim_zones = BTreeMap::new();
        for c in &objects.pvcs {
            let (Some(ns), Some(name)) = (&c.metadata.namespace, &c.metadata.name) else {
                continue;
            };
            let Some(vol) = c.spec.as_ref().and_then(|s| s.volume_name.as_deref()) else {
                continue;
            };
            if let Some(z) = pv_by_name.get(vol).and_then(|pv| pv_zones(pv)) {
                claim_zones.insert((ns.clone(), name.clone()), z);
            }
        }
        let mut nodes = objects
            .nodes
            .iter()
            .map(NodeInfo::from_k8s)
            .collect::<Result<Vec<_>, _>>()?;
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut pods = objects
            .pods
            .iter()
            .map(|p| pod_info(p, &claim_zones))
            .collect::<Result<Vec<_>, _>>()?;
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let mut pdbs = objects
            .pdbs
            .iter()
            .map(PdbInfo::from_k8s)
            .collect::<Result<Vec<_>, _>>()?;
        pdbs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let pools = PoolInfo::from_nodes(&nodes, DEFAULT_BOOT_SECONDS);
        Ok(Snapshot {
            nodes,
            pods,
            pdbs,
            pools,
        })
    }

    /// Replaces the pool list (e.g. from the cloud's [`super::pool::NodePool`]).
    pub(crate) fn with_pools(mut self, mut pools: Vec<PoolInfo>) -> Snapshot {
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        self.pools = pools;
        self
    }

    #[cfg(test)]
    pub(crate) fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Pods scheduled on `node`.
    pub(crate) fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a PodInfo> + 'a {
        self.pods
            .iter()
            .filter(move |p| p.node.as_deref() == Some(node))
    }

    /// PDBs covering `pod`.
    pub(crate) fn pdbs_of<'a>(
        &'a self,
        pod: &'a PodInfo,
    ) -> impl Iterator<Item = &'a PdbInfo> + 'a {
        self.pdbs.iter().filter(move |b| b.covers(pod))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::plan::tests::limits;
    use crate::upgrade::plan::{
        plan, tolerates_every_no_schedule, BlockerKind, NodeClass, PlanOptions,
    };
    use k8s_openapi::List;

    fn items<T: serde::de::DeserializeOwned + k8s_openapi::ListableResource>(json: &str) -> Vec<T> {
        serde_json::from_str::<List<T>>(json)
            .expect("fixture parses")
            .items
    }

    /// The committed fixtures (fixtures/upgrade, see EXPECTED.md there).
    pub(crate) fn fixture_objects() -> ClusterObjects {
        ClusterObjects {
            nodes: items(include_str!("../../fixtures/upgrade/nodes.json")),
            pods: items(include_str!("../../fixtures/upgrade/pods.json")),
            pdbs: items(include_str!("../../fixtures/upgrade/pdbs.json")),
            pvcs: items(include_str!("../../fixtures/upgrade/pvcs.json")),
            pvs: items(include_str!("../../fixtures/upgrade/pvs.json")),
        }
    }

    #[test]
    fn builds_from_k8s_objects() {
        let s = Snapshot::from_k8s(&fixture_objects()).expect("snapshot");
        let n = s.node("w-a-1").expect("node");
        assert_eq!(
            (n.pool.as_str(), n.zone.as_str(), n.kubelet_version.as_str()),
            ("workers", "eu-1a", "v1.33.2")
        );
        assert!(n.ready && !n.unschedulable);
        assert_eq!(
            n.allocatable,
            Resources {
                cpu_millis: 3920,
                memory_bytes: 15 << 30,
                pods: 110
            }
        );
        assert_eq!(n.provider_id.as_deref(), Some("sim:///eu-1a/i-w-a-1"));
        assert_eq!(s.node("cp-1").expect("cp").pool, DEFAULT_POOL);

        let pod = |k: &str| s.pods.iter().find(|p| p.key() == k).expect(k);
        let pg0 = pod("db/pg-0");
        assert_eq!(
            pg0.volume_zones,
            Some(BTreeSet::from(["eu-1a".to_string()]))
        );
        assert_eq!(pg0.requests.cpu_millis, 500);
        assert_eq!(
            pg0.owner.as_ref().map(|o| o.kind.as_str()),
            Some("StatefulSet")
        );
        assert!(pod("kube-system/cni-w-a-1").daemonset);
        assert!(pod("kube-system/kube-apiserver-cp-1").mirror);
        assert!(pod("default/debug").owner.is_none());
        assert!(tolerates_every_no_schedule(
            &pod("logging/logger-5b7-q").tolerations[0]
        ));

        let report = s
            .pdbs
            .iter()
            .find(|b| b.key() == "batch/report")
            .expect("pdb");
        assert_eq!(report.min_available, Some(IntOrPercent::Int(1)));
        assert_eq!(report.status.map(|st| st.disruptions_allowed), Some(0));
        assert_eq!(s.pdbs_of(pod("shop/api-1")).count(), 2);
        assert_eq!(s.pools.len(), 2);
        let workers = s.pools.iter().find(|p| p.name == "workers").expect("pool");
        assert_eq!(
            workers.nodes_per_zone,
            BTreeMap::from([("eu-1a".into(), 2), ("eu-1b".into(), 2)])
        );
    }

    #[test]
    fn fixture_plan_matches_expected_md() {
        let s = Snapshot::from_k8s(&fixture_objects()).expect("snapshot");
        let o = PlanOptions {
            target_version: "v1.34.1".into(),
            ..PlanOptions::default()
        };
        let p = plan(&s, &o).expect("plan");
        let order: Vec<(&str, NodeClass)> = p
            .waves
            .iter()
            .map(|w| (w.nodes[0].as_str(), w.class))
            .collect();
        assert_eq!(
            order,
            [
                ("w-a-1", NodeClass::Stateless),
                ("w-b-1", NodeClass::Stateful),
                ("w-a-2", NodeClass::StatefulPrimary)
            ]
        );
        let blockers: Vec<(BlockerKind, &str)> = p
            .blockers
            .iter()
            .map(|b| (b.kind, b.object.as_str()))
            .collect();
        assert_eq!(
            blockers,
            [
                (
                    BlockerKind::PdbNeverAllowsDisruption,
                    "PodDisruptionBudget/batch/report"
                ),
                (BlockerKind::PodUnderMultiplePdbs, "Pod/shop/api-1"),
                (BlockerKind::UnmanagedPod, "Pod/default/debug"),
                (BlockerKind::ToleratesEverything, "Pod/logging/logger-5b7-q"),
            ]
        );
        let o = PlanOptions {
            default_limits: limits(0, 1),
            ..o
        };
        let p = plan(&s, &o).expect("plan");
        let zonal: Vec<&str> = p
            .blockers
            .iter()
            .filter(|b| b.kind == BlockerKind::ZonalVolumeNoCapacity)
            .map(|b| b.object.as_str())
            .collect();
        assert_eq!(zonal, ["Pod/db/pg-0"]);
    }

    #[test]
    fn bad_objects_are_named() {
        let mut o = fixture_objects();
        if let Some(st) = o.nodes[1].status.as_mut() {
            st.allocatable.get_or_insert_default().insert(
                "cpu".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("lots".into()),
            );
        }
        let e = Snapshot::from_k8s(&o).expect_err("bad quantity");
        assert!(
            e.to_string().contains("Node/w-a-1") && e.to_string().contains("lots"),
            "{e}"
        );

        let mut o = fixture_objects();
        if let Some(spec) = o.pdbs[0].spec.as_mut() {
            spec.max_unavailable = Some(IntOrString::String("half".into()));
        }
        let e = Snapshot::from_k8s(&o).expect_err("bad intorstr");
        assert!(
            e.to_string().contains("PodDisruptionBudget/shop/web")
                && e.to_string().contains("maxUnavailable"),
            "{e}"
        );

        let mut o = fixture_objects();
        if let Some(spec) = o.pdbs[0].spec.as_mut() {
            spec.selector = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_expressions: Some(vec![
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                            key: "tier".into(),
                            operator: "Gt".into(),
                            values: Some(vec!["1".into()]),
                        },
                    ]),
                    match_labels: None,
                },
            );
        }
        let e = Snapshot::from_k8s(&o)
            .expect_err("unknown operator")
            .to_string();
        assert!(
            e.contains("PodDisruptionBudget/shop/web")
                && e.contains("\"Gt\"")
                && e.contains("Exists"),
            "{e}"
        );
    }
}
