#![allow(dead_code)]
//! Test only: a small, deterministic model of a cluster and its cloud for the property tests
//! of `upgrade::decide`. It plays the parts the engine does not control — the
//! cloud (launches after a boot time, terminate-with-decrement, scale-in when the desired
//! size drops below what runs), the kubelet (Ready after registration), the controllers
//! (Deployments replace a pod as soon as it terminates, StatefulSets once it is gone, one
//! DaemonSet pod per node), the scheduler (taints, cordons, zones of volumes, pod slots),
//! the disruption controller and the Eviction API (429 without budget) — and the watches,
//! which may lag by a few steps each. It carries out `Actions` the way `act` does, using the
//! same patch functions, and it can kill the process between any two requests.
//!
//! Its observer counts from the model's truth, never from the engine's view: serving nodes,
//! desired sizes, evictions per pod, pods killed by a termination, PDB health by readiness.

use chrono::{DateTime, TimeZone, Utc};
use e2e_gate::upgrade::capacity::{self, PoolZone};
use e2e_gate::upgrade::decide::patches::{
    claim_patch, claimed_for, mark_patch, start_patch, step_patch, REPLACES_ANNOTATION,
};
use e2e_gate::upgrade::decide::{
    decide, instance_pools, setup, Actions, Memory, Observed, Outcome, RunContext,
};
use e2e_gate::upgrade::drain_policy::StuckDrainPolicy;
use e2e_gate::upgrade::kube_cluster::Eviction;
use e2e_gate::upgrade::plan::{at_version, plan, Plan, PlanOptions, PoolLimits};
use e2e_gate::upgrade::pool::{Instance, InstanceLifecycle};
use e2e_gate::upgrade::snapshot::{
    IntOrPercent, NodeInfo, OwnerInfo, PdbInfo, PdbStatus, PodInfo, PoolInfo, Resources, Snapshot,
};
use e2e_gate::upgrade::state::{
    abort_patch, decode, Event, NodePhase, ANNOTATION_PREFIX, ROLE_LABEL,
};
use kube::core::Selector;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

pub const OLD: &str = "v1.33.5";
pub const TARGET: &str = "v1.34.1";

/// splitmix64: small, seedable, good enough to pick cases.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    StatefulSet,
}

/// A workload of the model.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub kind: Kind,
    pub replicas: u32,
    /// PDB: `(min_available, max_unavailable)`.
    pub pdb: Option<(Option<IntOrPercent>, Option<IntOrPercent>)>,
    pub startup: u64,
    /// The pool whose zones a StatefulSet's volumes are in.
    pub pool: String,
}

/// A pool of the model.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    pub name: String,
    pub zones: Vec<String>,
    pub per_zone: u32,
    pub limits: PoolLimits,
    /// Pods one node runs (besides its DaemonSet pod).
    pub slots: u64,
    /// One group over the pool's zones: its size is the sum, and each launch lands in a
    /// random zone of the pool (as moto does; AWS balances, which the engine cannot rely on
    /// either).
    pub spread: bool,
}

/// A case: topology, options, and how hostile the run is.
#[derive(Debug, Clone)]
pub struct Case {
    pub pools: Vec<PoolSpec>,
    pub workloads: Vec<Workload>,
    /// Watches lag up to this many steps (each independently).
    pub max_lag: usize,
    /// Chance per step that the process is killed (between any two of its requests).
    pub kill_chance: f64,
    /// Chance per step that the engine's round is skipped (a slow round).
    pub skip_chance: f64,
    /// Some replacement nodes never become Ready (their pool must stop, not hang).
    pub broken_launches: bool,
    /// The cloud terminates keeping the size (`NodePool::replaces_on_terminate`).
    pub replace_on_terminate: bool,
    pub ready_timeout: u64,
    pub policy: StuckDrainPolicy,
}

#[derive(Debug, Clone)]
struct MPod {
    info: PodInfo,
    wl: Option<usize>,
    ordinal: Option<u32>,
    ready_at: Option<u64>,
    deleting_until: Option<u64>,
}

/// What a watch delivers at one step.
#[derive(Debug, Clone)]
struct View {
    nodes: BTreeMap<String, NodeInfo>,
    pods: Vec<(PodInfo, bool)>,
    pdbs: Vec<(PdbInfo, String)>,
    /// `(pdb, pod)` disruptedPods entries written since the previous view.
    confirmations: Vec<(String, String)>,
}

/// The process: its memory, its run, and what its capacity sync last set.
struct Process {
    run: RunContext,
    mem: Memory,
    last_want: Option<BTreeMap<PoolZone, u32>>,
    /// Index of the last view each watch delivered (nodes, pods, pdbs).
    delivered: [usize; 3],
}

/// The observer's tallies.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub evictions: BTreeMap<String, u32>,
    pub refused: u64,
    /// Non-DaemonSet pods still running when their node or instance went.
    pub killed: Vec<String>,
    /// Instances the cloud terminated on a scale-in (the engine lowered a size under what ran).
    pub scale_ins: u64,
    /// Terminations that kept the group's size (the cloud launched the replacement).
    pub kept_size: u64,
    pub launched: u64,
    /// Old nodes replaced (gone).
    pub replaced: u64,
    pub violations: Vec<String>,
    pub restarts: u64,
    pub rounds: u64,
    pub blocked: Vec<String>,
    /// Replicas (original pods by uid) moved more than once, in pools that surge.
    pub moved_twice: Vec<String>,
}

pub struct World {
    pub case: Case,
    rng: Rng,
    pub t: u64,
    epoch: Instant,
    wall0: DateTime<Utc>,
    pub nodes: BTreeMap<String, NodeInfo>,
    node_ready_at: BTreeMap<String, u64>,
    node_delete_at: BTreeMap<String, u64>,
    instances: BTreeMap<String, Instance>,
    pending: Vec<(String, u64)>,
    never_ready: BTreeSet<String>,
    pub desired: BTreeMap<PoolZone, u32>,
    launch_version: BTreeMap<String, String>,
    pods: BTreeMap<String, MPod>,
    pdbs: Vec<PdbInfo>,
    disrupted: BTreeMap<String, BTreeMap<String, u64>>,
    pdb_rv: BTreeMap<String, u64>,
    unseen_confirmations: Vec<(String, String)>,
    history: VecDeque<View>,
    history_base: usize,
    next_id: u64,
    /// The Lease's run-wide state.
    lease_base: Option<BTreeMap<PoolZone, u32>>,
    pub base: BTreeMap<PoolZone, u32>,
    proc: Option<Process>,
    pub done: bool,
    pub tally: Tally,
    /// Original pods (uid) → their workload and ordinal; and pods that replaced a moved one.
    lineage: BTreeMap<String, String>,
    moved: BTreeMap<String, u32>,
    pending_lineage: Vec<(usize, String)>,
    pdbs_healthy_at_start: BTreeSet<String>,
    pub plan_blocked: bool,
}

fn wl_labels(w: &Workload) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), w.name.clone())])
}

impl World {
    pub fn new(case: Case, seed: u64) -> Self {
        let mut w = World {
            case,
            rng: Rng::new(seed ^ 0x5eed),
            t: 0,
            epoch: Instant::now(),
            wall0: Utc
                .with_ymd_and_hms(2026, 12, 5, 12, 0, 0)
                .single()
                .expect("a date"),
            nodes: BTreeMap::new(),
            node_ready_at: BTreeMap::new(),
            node_delete_at: BTreeMap::new(),
            instances: BTreeMap::new(),
            pending: Vec::new(),
            never_ready: BTreeSet::new(),
            desired: BTreeMap::new(),
            launch_version: BTreeMap::new(),
            pods: BTreeMap::new(),
            pdbs: Vec::new(),
            disrupted: BTreeMap::new(),
            pdb_rv: BTreeMap::new(),
            unseen_confirmations: Vec::new(),
            history: VecDeque::new(),
            history_base: 0,
            next_id: 0,
            lease_base: None,
            base: BTreeMap::new(),
            proc: None,
            done: false,
            tally: Tally::default(),
            lineage: BTreeMap::new(),
            moved: BTreeMap::new(),
            pending_lineage: Vec::new(),
            pdbs_healthy_at_start: BTreeSet::new(),
            plan_blocked: false,
        };
        for p in w.case.pools.clone() {
            w.launch_version.insert(p.name.clone(), OLD.into());
            for z in &p.zones {
                w.desired.insert((p.name.clone(), z.clone()), p.per_zone);
                for _ in 0..p.per_zone {
                    let id = w.launch(&p.name, z, OLD);
                    // Already running at the start.
                    w.pending.retain(|(i, _)| *i != id);
                    w.register(&id);
                    let n = format!("n-{id}");
                    w.nodes.get_mut(&n).expect("registered").ready = true;
                }
            }
        }
        for wl in w.case.workloads.clone().iter() {
            if let Some((min, max)) = wl.pdb {
                w.pdbs.push(PdbInfo {
                    namespace: "ns".into(),
                    name: wl.name.clone(),
                    selector: Some(Selector::from_iter(wl_labels(wl))),
                    min_available: min,
                    max_unavailable: max,
                    always_allow_unhealthy: false,
                    status: None,
                });
            }
        }
        // Settle: every pod scheduled and Ready before the run starts.
        for _ in 0..200 {
            w.tick();
            if w.pods.values().filter(|p| !p.info.daemonset).count() as u32
                == w.case.workloads.iter().map(|x| x.replicas).sum::<u32>()
                && w.pods.values().all(|p| p.info.ready)
            {
                break;
            }
        }
        for p in w.pods.values() {
            if !p.info.daemonset {
                w.lineage.insert(p.info.uid.clone(), p.info.uid.clone());
            }
        }
        for b in &w.pdbs {
            let (_, healthy, desired) = w.pdb_counts(b);
            if healthy >= desired {
                w.pdbs_healthy_at_start.insert(b.key());
            }
        }
        w
    }

    fn now(&self) -> Instant {
        self.epoch + Duration::from_secs(self.t)
    }

    fn wall(&self) -> DateTime<Utc> {
        self.wall0 + chrono::Duration::seconds(self.t as i64)
    }

    fn launch(&mut self, pool: &str, zone: &str, version: &str) -> String {
        self.next_id += 1;
        let id = format!("i{}", self.next_id);
        self.instances.insert(
            id.clone(),
            Instance {
                id: id.clone(),
                pool: pool.into(),
                zone: zone.into(),
                version: version.into(),
                lifecycle: InstanceLifecycle::Pending,
                lb: None,
            },
        );
        let boot = self.rng.range(2, 6);
        self.pending.push((id.clone(), self.t + boot));
        if version != OLD {
            self.tally.launched += 1;
            if self.case.broken_launches && self.rng.chance(0.3) {
                self.never_ready.insert(id.clone());
            }
        }
        id
    }

    fn register(&mut self, id: &str) {
        let inst = self.instances.get_mut(id).expect("instance");
        inst.lifecycle = InstanceLifecycle::InService;
        let name = format!("n-{id}");
        let slots = self
            .case
            .pools
            .iter()
            .find(|p| p.name == inst.pool)
            .map_or(4, |p| p.slots);
        self.nodes.insert(
            name.clone(),
            NodeInfo {
                name: name.clone(),
                pool: inst.pool.clone(),
                zone: inst.zone.clone(),
                kubelet_version: inst.version.clone(),
                ready: false,
                unschedulable: false,
                provider_id: Some(format!("model:///{}/{}", inst.zone, id)),
                taints: Vec::new(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                allocatable: Resources {
                    cpu_millis: 1000 * slots,
                    memory_bytes: 1 << 34,
                    pods: slots + 1,
                },
            },
        );
        if !self.never_ready.contains(id) {
            self.node_ready_at.insert(name, self.t + 1);
        }
    }

    fn new_pod(&mut self, wl: usize, name: String, node: Option<String>, ordinal: Option<u32>) {
        self.next_id += 1;
        let w = &self.case.workloads[wl];
        let uid = format!("u{}", self.next_id);
        let zones: Option<BTreeSet<String>> = ordinal.and_then(|o| {
            let p = self.case.pools.iter().find(|p| p.name == w.pool)?;
            Some(BTreeSet::from(
                [p.zones[o as usize % p.zones.len()].clone()],
            ))
        });
        let info = PodInfo {
            namespace: "ns".into(),
            name,
            uid: uid.clone(),
            node,
            owner: Some(OwnerInfo {
                kind: match w.kind {
                    Kind::Deployment => "ReplicaSet".into(),
                    Kind::StatefulSet => "StatefulSet".into(),
                },
                name: w.name.clone(),
            }),
            requests: Resources {
                cpu_millis: 1000,
                memory_bytes: 1 << 20,
                pods: 1,
            },
            tolerations: Vec::new(),
            has_pvc: zones.is_some(),
            volume_zones: zones,
            ready: false,
            phase: "Pending".into(),
            daemonset: false,
            mirror: false,
            labels: wl_labels(w),
        };
        if let Some(pos) = self.pending_lineage.iter().position(|(w, _)| *w == wl) {
            let (_, orig) = self.pending_lineage.remove(pos);
            self.lineage.insert(uid.clone(), orig);
        }
        self.pods.insert(
            uid,
            MPod {
                info,
                wl: Some(wl),
                ordinal,
                ready_at: None,
                deleting_until: None,
            },
        );
    }

    fn ds_pod(&mut self, node: &str) {
        self.next_id += 1;
        let uid = format!("u{}", self.next_id);
        let info = PodInfo {
            namespace: "kube-system".into(),
            name: format!("ds-{node}"),
            uid: uid.clone(),
            node: Some(node.into()),
            owner: Some(OwnerInfo {
                kind: "DaemonSet".into(),
                name: "ds".into(),
            }),
            requests: Resources::default(),
            tolerations: Vec::new(),
            volume_zones: None,
            has_pvc: false,
            ready: false,
            phase: "Running".into(),
            daemonset: true,
            mirror: false,
            labels: BTreeMap::new(),
        };
        self.pods.insert(
            uid,
            MPod {
                info,
                wl: None,
                ordinal: None,
                ready_at: Some(self.t + 1),
                deleting_until: None,
            },
        );
    }

    /// Pods on `node` go with it; any running non-DaemonSet pod is a kill.
    fn node_gone(&mut self, node: &str) {
        self.nodes.remove(node);
        let on: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| p.info.node.as_deref() == Some(node))
            .map(|(u, _)| u.clone())
            .collect();
        for u in on {
            let p = self.pods.remove(&u).expect("listed");
            if !p.info.daemonset && p.deleting_until.is_none() {
                self.tally
                    .killed
                    .push(format!("{} on {node} at t={}", p.info.name, self.t));
            }
        }
    }

    fn terminate(&mut self, id: &str) {
        if let Some(i) = self.instances.get_mut(id) {
            if i.lifecycle != InstanceLifecycle::Terminated {
                i.lifecycle = InstanceLifecycle::Terminated;
                let n = format!("n-{id}");
                let delay = self.rng.range(1, 3);
                self.node_delete_at.insert(n, self.t + delay);
                self.pending.retain(|(p, _)| p != id);
            }
        }
    }

    /// One second of the world (everything but the engine).
    pub fn tick(&mut self) {
        self.t += 1;
        self.cloud();
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, at)| *at <= self.t)
            .map(|(i, _)| i.clone())
            .collect();
        self.pending.retain(|(_, at)| *at > self.t);
        for id in due {
            self.register(&id);
        }
        let ready: Vec<String> = self
            .node_ready_at
            .iter()
            .filter(|(_, at)| **at <= self.t)
            .map(|(n, _)| n.clone())
            .collect();
        for n in ready {
            self.node_ready_at.remove(&n);
            if let Some(node) = self.nodes.get_mut(&n) {
                node.ready = true;
            }
        }
        let gone: Vec<String> = self
            .node_delete_at
            .iter()
            .filter(|(_, at)| **at <= self.t)
            .map(|(n, _)| n.clone())
            .collect();
        for n in gone {
            self.node_delete_at.remove(&n);
            if self.nodes.contains_key(&n) {
                self.node_gone(&n);
            }
        }
        self.controllers();
        self.schedule();
        self.disruption_controller();
        self.observe_invariants();
        self.push_view();
    }

    fn cloud(&mut self) {
        for p in self.case.pools.clone().iter().filter(|p| p.spread) {
            let want: u32 = self
                .desired
                .iter()
                .filter(|((q, _), _)| *q == p.name)
                .map(|(_, n)| n)
                .sum();
            let live: Vec<String> = self
                .instances
                .values()
                .filter(|i| i.pool == p.name && i.lifecycle != InstanceLifecycle::Terminated)
                .map(|i| i.id.clone())
                .collect();
            if (live.len() as u32) < want {
                let v = self.launch_version[&p.name].clone();
                for _ in live.len() as u32..want {
                    let z = p.zones[self.rng.range(0, p.zones.len() as u64 - 1) as usize].clone();
                    self.launch(&p.name, &z, &v);
                }
            } else {
                for id in live.iter().skip(want as usize) {
                    self.tally.scale_ins += 1;
                    self.terminate(id);
                }
            }
        }
        for (pz, want) in self.desired.clone() {
            if self.case.pools.iter().any(|p| p.spread && p.name == pz.0) {
                continue;
            }
            let live: Vec<String> = self
                .instances
                .values()
                .filter(|i| i.pool == pz.0 && i.zone == pz.1)
                .filter(|i| i.lifecycle != InstanceLifecycle::Terminated)
                .map(|i| i.id.clone())
                .collect();
            if (live.len() as u32) < want {
                let v = self.launch_version[&pz.0].clone();
                for _ in live.len() as u32..want {
                    self.launch(&pz.0, &pz.1, &v);
                }
            } else if live.len() as u32 > want {
                // Scale-in: the cloud picks the oldest launch template first.
                let mut ids = live;
                ids.sort_by_key(|i| (self.instances[i].version != OLD, i.clone()));
                for id in ids {
                    let live_now = self
                        .instances
                        .values()
                        .filter(|i| i.pool == pz.0 && i.zone == pz.1)
                        .filter(|i| i.lifecycle != InstanceLifecycle::Terminated)
                        .count() as u32;
                    if live_now <= want {
                        break;
                    }
                    self.tally.scale_ins += 1;
                    self.terminate(&id);
                }
            }
        }
    }

    fn controllers(&mut self) {
        let done: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| p.deleting_until.is_some_and(|d| d <= self.t))
            .map(|(u, _)| u.clone())
            .collect();
        for u in done {
            self.pods.remove(&u);
        }
        for (i, w) in self.case.workloads.clone().iter().enumerate() {
            match w.kind {
                Kind::Deployment => {
                    let active = self
                        .pods
                        .values()
                        .filter(|p| p.wl == Some(i) && p.deleting_until.is_none())
                        .count() as u32;
                    for _ in active..w.replicas {
                        let name = format!("{}-{}", w.name, self.next_id + 1);
                        self.new_pod(i, name, None, None);
                    }
                }
                Kind::StatefulSet => {
                    for o in 0..w.replicas {
                        if !self
                            .pods
                            .values()
                            .any(|p| p.wl == Some(i) && p.ordinal == Some(o))
                        {
                            self.new_pod(i, format!("{}-{o}", w.name), None, Some(o));
                        }
                    }
                }
            }
        }
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for n in names {
            if !self
                .pods
                .values()
                .any(|p| p.info.daemonset && p.info.node.as_deref() == Some(&n))
            {
                self.ds_pod(&n);
            }
        }
        let t = self.t;
        for p in self.pods.values_mut() {
            if p.ready_at.is_some_and(|r| r <= t) && p.deleting_until.is_none() {
                p.info.ready = true;
                p.info.phase = "Running".into();
            }
        }
    }

    fn schedule(&mut self) {
        let pending: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| p.info.node.is_none())
            .map(|(u, _)| u.clone())
            .collect();
        for u in pending {
            let zones = self.pods[&u].info.volume_zones.clone();
            let used = |n: &str, pods: &BTreeMap<String, MPod>| {
                pods.values()
                    .filter(|p| p.info.node.as_deref() == Some(n) && !p.info.daemonset)
                    .count() as u64
            };
            let mut best: Option<(bool, u64, String)> = None;
            for n in self.nodes.values() {
                let soft = n.taints.iter().any(|t| t.effect == "PreferNoSchedule");
                let hard = n.taints.iter().any(|t| t.effect == "NoSchedule");
                if !n.ready || n.unschedulable || hard {
                    continue;
                }
                if zones.as_ref().is_some_and(|z| !z.contains(&n.zone)) {
                    continue;
                }
                let u_n = used(&n.name, &self.pods);
                if u_n + 1 >= n.allocatable.pods {
                    continue;
                }
                let key = (soft, u_n, n.name.clone());
                if best.as_ref().is_none_or(|b| key < *b) {
                    best = Some(key);
                }
            }
            if let Some((_, _, n)) = best {
                let startup = self.pods[&u]
                    .wl
                    .map_or(1, |w| self.case.workloads[w].startup);
                let p = self.pods.get_mut(&u).expect("pending");
                p.info.node = Some(n);
                p.ready_at = Some(self.t + startup);
            }
        }
    }

    fn pdb_counts(&self, b: &PdbInfo) -> (i32, i32, i32) {
        let wl = self
            .case
            .workloads
            .iter()
            .find(|w| w.name == b.name)
            .expect("PDB of a workload");
        let expected = wl.replicas as i32;
        let disrupted = self.disrupted.get(&b.key());
        let healthy = self
            .pods
            .values()
            .filter(|p| b.covers(&p.info) && p.info.ready && p.deleting_until.is_none())
            .filter(|p| disrupted.is_none_or(|d| !d.contains_key(&p.info.name)))
            .count() as i32;
        let desired = if let Some(m) = b.min_available {
            m.resolve(expected)
        } else if let Some(m) = b.max_unavailable {
            expected - m.resolve(expected)
        } else {
            1
        };
        (expected, healthy, desired)
    }

    fn disruption_controller(&mut self) {
        let t = self.t;
        for i in 0..self.pdbs.len() {
            let key = self.pdbs[i].key();
            if let Some(d) = self.disrupted.get_mut(&key) {
                let pods = &self.pods;
                d.retain(|name, at| {
                    t < *at + 120
                        && pods
                            .values()
                            .any(|p| p.info.name == *name && p.deleting_until.is_none())
                });
            }
            let (expected, healthy, desired) = self.pdb_counts(&self.pdbs[i]);
            let s = PdbStatus {
                disruptions_allowed: (healthy - desired).max(0),
                expected_pods: expected,
                current_healthy: healthy,
                desired_healthy: desired,
            };
            if self.pdbs[i].status != Some(s) {
                self.pdbs[i].status = Some(s);
                *self.pdb_rv.entry(key).or_default() += 1;
            }
        }
    }

    fn push_view(&mut self) {
        let view = View {
            nodes: self.nodes.clone(),
            pods: self
                .pods
                .values()
                .map(|p| (p.info.clone(), p.deleting_until.is_some()))
                .collect(),
            pdbs: self
                .pdbs
                .iter()
                .map(|b| {
                    (
                        b.clone(),
                        self.pdb_rv.get(&b.key()).copied().unwrap_or(0).to_string(),
                    )
                })
                .collect(),
            confirmations: std::mem::take(&mut self.unseen_confirmations),
        };
        self.history.push_back(view);
        while self.history.len() > self.case.max_lag + 2 {
            self.history.pop_front();
            self.history_base += 1;
        }
    }

    fn last_index(&self) -> usize {
        self.history_base + self.history.len() - 1
    }

    fn view(&self, i: usize) -> &View {
        &self.history[i - self.history_base]
    }

    /// The observer: checked after every step, from the truth.
    fn observe_invariants(&mut self) {
        if self.proc.is_none() && !self.done {
            return;
        }
        let mut pools: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for (pz, b) in &self.base {
            let e = pools.entry(pz.0.clone()).or_default();
            e.0 += i64::from(*b);
            e.2 += i64::from(self.desired.get(pz).copied().unwrap_or(0));
        }
        for n in self.nodes.values() {
            if n.ready && !n.unschedulable {
                if let Some(e) = pools.get_mut(&n.pool) {
                    e.1 += 1;
                }
            }
        }
        for p in self.case.pools.clone() {
            let Some((base, serving, desired)) = pools.get(&p.name).copied() else {
                continue;
            };
            let l = p.limits;
            if !self.case.broken_launches && serving < base - i64::from(l.max_unavailable) {
                self.tally.violations.push(format!(
                    "t={}: pool {} serves {serving} nodes, below base {base} - max-unavailable {}",
                    self.t, p.name, l.max_unavailable
                ));
            }
            if desired > base + i64::from(l.max_surge) {
                self.tally.violations.push(format!(
                    "t={}: pool {} desired {desired} above base {base} + max-surge {}",
                    self.t, p.name, l.max_surge
                ));
            }
        }
        for b in &self.pdbs {
            if !self.pdbs_healthy_at_start.contains(&b.key()) {
                continue;
            }
            let (_, _, desired) = self.pdb_counts(b);
            // The observer's own count: pods Ready and not being deleted.
            let ready = self
                .pods
                .values()
                .filter(|p| b.covers(&p.info) && p.info.ready && p.deleting_until.is_none())
                .count() as i32;
            if ready < desired {
                self.tally.violations.push(format!(
                    "t={}: PDB {} has {ready} ready pods, below its minimum {desired}",
                    self.t,
                    b.key()
                ));
            }
        }
        if self.tally.violations.len() > 20 {
            self.tally.violations.truncate(20);
        }
    }

    // ---- the engine's side ----

    fn snapshot(&self) -> Snapshot {
        let nodes: Vec<NodeInfo> = self.nodes.values().cloned().collect();
        Snapshot {
            pools: PoolInfo::from_nodes(&nodes, 5),
            nodes,
            pods: self.pods.values().map(|p| p.info.clone()).collect(),
            pdbs: self.pdbs.clone(),
        }
    }

    fn options(&self) -> PlanOptions {
        PlanOptions {
            target_version: TARGET.into(),
            pools: BTreeSet::new(),
            default_limits: PoolLimits {
                max_surge: 1,
                max_unavailable: 0,
            },
            limits: self
                .case
                .pools
                .iter()
                .map(|p| (p.name.clone(), p.limits))
                .collect(),
            timings: Default::default(),
        }
    }

    /// `upgrade apply` starts: plan, Lease state, launch templates, setup.
    pub fn start_process(&mut self, fresh_run_id: &str) {
        let opts = self.options();
        let p: Plan = match plan(&self.snapshot(), &opts) {
            Ok(p) => p,
            Err(e) => panic!("plan: {e}"),
        };
        if !p.blockers.is_empty() {
            // The CLI refuses such a plan; a case must not produce one.
            self.plan_blocked = true;
            return;
        }
        let pools: BTreeSet<String> = p.outdated.iter().map(|n| n.pool.clone()).collect();
        let base = match &self.lease_base {
            Some(b) => b.clone(),
            None => {
                let b: BTreeMap<PoolZone, u32> = self
                    .desired
                    .iter()
                    .filter(|(pz, _)| pools.contains(&pz.0))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                self.lease_base = Some(b.clone());
                b
            }
        };
        if self.base.is_empty() {
            self.base = base.clone();
        }
        for pool in &pools {
            self.launch_version.insert(pool.clone(), TARGET.into());
        }
        let pods0: Vec<PodInfo> = self.pods.values().map(|p| p.info.clone()).collect();
        let run = RunContext::new(
            &p,
            &opts,
            &self.case.policy,
            Duration::ZERO,
            Duration::from_secs(self.case.ready_timeout),
            setup::adopt_run_id(self.nodes.values(), fresh_run_id),
            base,
            BTreeMap::new(),
            &pods0,
            &self.pdbs,
        );
        let mut run = run;
        run.replace_on_terminate = self.case.replace_on_terminate;
        run.spread_pools = self
            .case
            .pools
            .iter()
            .filter(|p| p.spread)
            .map(|p| p.name.clone())
            .collect();
        let mut mem = Memory::default();
        let retried = setup::retries(&run, &self.nodes).expect("markers");
        for (name, event) in retried {
            let evs = [event];
            self.write(&run, &name, |n, m, wall| step_patch(n, m, &evs, None, wall));
            if let Some(ph) = self.nodes.get(&name).and_then(|n| decode(n).ok().flatten()) {
                mem.bump(&name, ph.phase);
            }
        }
        for name in setup::nodes_to_mark(&run, &self.nodes).expect("markers") {
            self.write(&run, &name, mark_patch);
        }
        // The engine waits until its cache shows the retries before its first round.
        self.push_view();
        let last = self.last_index();
        self.proc = Some(Process {
            run,
            mem,
            last_want: None,
            delivered: [last; 3],
        });
    }

    /// Applies a marker patch made from the node as stored; the node as written.
    fn write(
        &mut self,
        run: &RunContext,
        name: &str,
        patch: impl Fn(
            &NodeInfo,
            &RunContext,
            DateTime<Utc>,
        ) -> e2e_gate::upgrade::node_patch::NodePatch,
    ) -> Option<NodeInfo> {
        let wall = self.wall();
        let n = self.nodes.get_mut(name)?;
        let p = patch(n, run, wall);
        p.apply_to(n);
        Some(n.clone())
    }

    fn evict(&mut self, pod: &PodInfo) -> Eviction {
        let Some((uid, p)) = self
            .pods
            .iter()
            .find(|(_, p)| p.info.uid == pod.uid)
            .map(|(u, p)| (u.clone(), p.clone()))
        else {
            return Eviction::Gone;
        };
        if p.deleting_until.is_some() {
            return Eviction::Evicted;
        }
        let covering: Vec<usize> = (0..self.pdbs.len())
            .filter(|i| self.pdbs[*i].covers(&p.info))
            .collect();
        if covering.len() > 1 {
            return Eviction::MultiplePdbs("several PDBs".into());
        }
        if let Some(&i) = covering.first() {
            let allowed = self.pdbs[i].status.map_or(0, |s| s.disruptions_allowed);
            // An unready pod may always go (it is not healthy: no budget used).
            if p.info.ready {
                if allowed <= 0 {
                    self.tally.refused += 1;
                    return Eviction::Budget("429".into());
                }
                let key = self.pdbs[i].key();
                if let Some(s) = self.pdbs[i].status.as_mut() {
                    s.disruptions_allowed -= 1;
                }
                self.disrupted
                    .entry(key.clone())
                    .or_default()
                    .insert(p.info.name.clone(), self.t);
                *self.pdb_rv.entry(key.clone()).or_default() += 1;
                self.unseen_confirmations.push((key, p.info.name.clone()));
            }
        }
        let grace = self.rng.range(1, 3);
        let mp = self.pods.get_mut(&uid).expect("found");
        mp.deleting_until = Some(self.t + grace);
        mp.info.ready = false;
        *self.tally.evictions.entry(uid.clone()).or_default() += 1;
        // Replicas: an original pod's lineage continues in the pod that replaces it.
        if let Some(orig) = self.lineage.get(&uid).cloned() {
            let c = self.moved.entry(orig.clone()).or_default();
            *c += 1;
            let node_pool = p
                .info
                .node
                .as_deref()
                .and_then(|n| self.nodes.get(n))
                .map(|n| n.pool.clone());
            if *c > 1
                && node_pool.is_some_and(|pl| {
                    self.case
                        .pools
                        .iter()
                        .any(|x| x.name == pl && x.limits.max_surge > 0)
                })
            {
                self.tally.moved_twice.push(orig);
            }
        }
        if let (Some(orig), Some(wl)) = (self.lineage.get(&uid).cloned(), p.wl) {
            // The pod that replaces it (the workload's next new pod) continues the replica.
            self.pending_lineage.push((wl, orig));
        }
        Eviction::Evicted
    }

    /// One round of the engine, killed after `budget` requests if given.
    pub fn engine_round(&mut self, kill_after: Option<usize>) {
        let Some(mut proc) = self.proc.take() else {
            return;
        };
        let last = self.last_index();
        let lag = self.case.max_lag;
        for d in proc.delivered.iter_mut() {
            let lo = last.saturating_sub(lag).max(*d);
            *d = self.rng.range(lo as u64, last as u64) as usize;
        }
        let [ni, pi, bi] = proc.delivered;
        let nodes = self.view(ni).nodes.clone();
        let pods = self.view(pi).pods.clone();
        let pdbs = self.view(bi).pdbs.clone();
        let mut confirmations = Vec::new();
        for i in self.history_base..=bi {
            confirmations.extend(self.view(i).confirmations.iter().cloned());
        }
        let instances = instance_pools(&proc.run, &nodes, &pods, &proc.mem)
            .expect("markers")
            .into_keys()
            .map(|p| {
                let is = self
                    .instances
                    .values()
                    .filter(|i| i.pool == p)
                    .cloned()
                    .collect();
                (p, is)
            })
            .collect();
        let seen = Observed {
            now: self.now(),
            wall: self.wall(),
            nodes,
            pods,
            pdbs,
            confirmations,
            instances,
        };
        let actions = decide(&proc.run, &seen, &mut proc.mem).expect("decide");
        self.tally.rounds += 1;
        if std::env::var_os("MODEL_DEBUG").is_some() {
            let ph: Vec<String> = actions
                .phases
                .iter()
                .filter(|(_, p)| **p != NodePhase::Outdated && **p != NodePhase::Gone)
                .map(|(n, p)| format!("{n}:{p}"))
                .collect();
            eprintln!(
                "t={} starts={:?} handed={:?} claims={:?} finish={:?} want={:?} desired={:?} phases={:?}",
                self.t, actions.starts, actions.handed_over, actions.claims,
                actions.finish.iter().map(|f| (&f.node, f.keep_size)).collect::<Vec<_>>(),
                actions.want.as_ref().map(|w| w.values().sum::<u32>()),
                self.desired.values().sum::<u32>(), ph
            );
        }
        self.tally
            .blocked
            .extend(actions.blocked.iter().map(|b| b.reason.clone()));
        let (outcome, killed) = self.carry_out(&mut proc, &seen, &actions, kill_after);
        if killed {
            self.tally.restarts += 1;
            return;
        }
        proc.mem.absorb(&actions, &outcome, seen.now);
        if actions.done {
            self.finish_run(&proc.run, &proc.mem, &actions.phases);
            self.done = true;
            return;
        }
        self.proc = Some(proc);
    }

    /// Carries `actions` out in `act`'s order, as single requests; returns early (killed)
    /// after `kill_after` requests.
    fn carry_out(
        &mut self,
        proc: &mut Process,
        seen: &Observed,
        actions: &Actions,
        kill_after: Option<usize>,
    ) -> (Outcome, bool) {
        let mut out = Outcome::default();
        let mut budget = kill_after.unwrap_or(usize::MAX);
        macro_rules! request {
            () => {
                if budget == 0 {
                    return (out, true);
                }
                budget -= 1;
            };
        }
        let run = &proc.run;
        // As the engine: a finished drain whose slot passes on is marked before its
        // successor starts.
        let mut pre: BTreeMap<String, NodeInfo> = BTreeMap::new();
        for f in actions.finish.iter().filter(|f| f.successor.is_some()) {
            request!();
            let evs: &[Event] = &[Event::DrainCompleted, Event::TerminateRequested];
            let n = self
                .write(run, &f.node, |n, mk, w| step_patch(n, mk, evs, None, w))
                .unwrap_or_else(|| seen.nodes[&f.node].clone());
            pre.insert(f.node.clone(), n);
        }
        for (name, mode) in &actions.starts {
            request!();
            let m = *mode;
            let from = actions
                .handed_over
                .iter()
                .find(|(_, y)| *y == name)
                .map(|(x, _)| x.clone());
            out.written.extend(self.write(run, name, |n, mk, w| {
                start_patch(n, mk, m, from.as_deref(), w)
            }));
        }
        if let Some(want) = &actions.want {
            if proc.last_want.as_ref() != Some(want) {
                // A group over several zones is sized in one call (`NodePool::set_sizes`).
                let mut spread_done = BTreeSet::new();
                for ((p, z), n) in capacity::changes(&self.desired.clone(), want) {
                    if self.case.pools.iter().any(|s| s.spread && s.name == p) {
                        if spread_done.insert(p.clone()) {
                            request!();
                            for ((q, z2), m) in want.iter().filter(|((q, _), _)| *q == p) {
                                self.desired.insert((q.clone(), z2.clone()), *m);
                            }
                        }
                        continue;
                    }
                    request!();
                    self.desired.insert((p, z), n);
                }
                proc.last_want = Some(want.clone());
            }
        }
        for (name, events) in &actions.steps {
            request!();
            out.written
                .extend(self.write(run, name, |n, mk, w| step_patch(n, mk, events, None, w)));
        }
        for (name, event) in &actions.rungs {
            request!();
            let evs = std::slice::from_ref(event);
            out.written
                .extend(self.write(run, name, |n, mk, w| step_patch(n, mk, evs, None, w)));
        }
        // The busy requests run concurrently in `act`; here in a random interleaving.
        let mut ops: Vec<(u8, usize)> = Vec::new();
        ops.extend((0..actions.claims.len()).map(|i| (0, i)));
        ops.extend((0..actions.evictions.len()).map(|i| (1, i)));
        ops.extend((0..actions.finish.len()).map(|i| (2, i)));
        ops.extend((0..actions.clean.len()).map(|i| (3, i)));
        ops.push((4, 0));
        for i in (1..ops.len()).rev() {
            let j = self.rng.range(0, i as u64) as usize;
            ops.swap(i, j);
        }
        let mut claims = vec![None; actions.claims.len()];
        let mut evictions = vec![Eviction::Gone; actions.evictions.len()];
        let mut finished = vec![None; actions.finish.len()];
        let mut decremented =
            !actions.terminate_drained.is_empty() || !actions.terminate_ids.is_empty();
        for (kind, i) in ops {
            match kind {
                0 => {
                    request!();
                    let (old, new) = &actions.claims[i];
                    let run_id = run.run_id.clone();
                    let c = self.write(run, new, |n, _, _| claim_patch(n, old, &run_id));
                    if c.is_some_and(|c| claimed_for(&c, old)) {
                        request!();
                        let evs = [Event::ReplacementReady, Event::Tainted, Event::DrainStarted];
                        claims[i] =
                            self.write(run, old, |n, mk, w| step_patch(n, mk, &evs, None, w));
                    }
                }
                1 => {
                    request!();
                    evictions[i] = self.evict(&actions.evictions[i].pod);
                }
                2 => {
                    let f = &actions.finish[i];
                    let n = match pre.get(&f.node) {
                        Some(n) => n.clone(),
                        None => {
                            request!();
                            let evs: &[Event] = &[Event::DrainCompleted, Event::TerminateRequested];
                            self.write(run, &f.node, |n, mk, w| step_patch(n, mk, evs, None, w))
                                .unwrap_or_else(|| seen.nodes[&f.node].clone())
                        }
                    };
                    let mut did = false;
                    if let Some(id) = &f.terminate {
                        request!();
                        if f.keep_size {
                            assert!(
                                self.case.replace_on_terminate,
                                "keep_size on a cloud without it"
                            );
                            self.terminate_keeping_size(id);
                        } else {
                            self.terminate_with_decrement(id);
                            decremented = true;
                        }
                        did = true;
                    }
                    finished[i] = Some((n, did));
                }
                3 => {
                    request!();
                    let name = &actions.clean[i];
                    self.write(run, name, |n, _, _| abort_patch(n));
                    out.cleaned.push(name.clone());
                }
                _ => {
                    for (name, id) in &actions.terminate_drained {
                        request!();
                        let evs = [Event::TerminateRequested];
                        out.written.extend(
                            self.write(run, name, |n, mk, w| step_patch(n, mk, &evs, None, w)),
                        );
                        if let Some(id) = id {
                            request!();
                            self.terminate_with_decrement(id);
                        }
                    }
                    for id in &actions.terminate_ids {
                        request!();
                        self.terminate_with_decrement(id);
                    }
                    for name in &actions.delete_nodes {
                        request!();
                        if self.nodes.contains_key(name) {
                            self.node_gone(name);
                        }
                    }
                }
            }
        }
        out.claims = claims;
        out.evictions = evictions;
        out.finished = finished
            .into_iter()
            .enumerate()
            .map(|(i, f)| f.unwrap_or_else(|| (seen.nodes[&actions.finish[i].node].clone(), false)))
            .collect();
        if decremented {
            proc.last_want = None;
        }
        (out, false)
    }

    /// The group keeps its size: the next cloud step launches a replacement.
    fn terminate_keeping_size(&mut self, id: &str) {
        let Some(i) = self.instances.get(id).cloned() else {
            return;
        };
        if i.lifecycle == InstanceLifecycle::Terminated {
            return;
        }
        if i.version == OLD {
            self.tally.replaced += 1;
        }
        self.tally.kept_size += 1;
        self.terminate(id);
    }

    fn terminate_with_decrement(&mut self, id: &str) {
        let Some(i) = self.instances.get(id).cloned() else {
            return;
        };
        if i.lifecycle == InstanceLifecycle::Terminated {
            return;
        }
        let mut pz = (i.pool.clone(), i.zone.clone());
        if self.case.pools.iter().any(|p| p.spread && p.name == i.pool)
            && self.desired.get(&pz).copied().unwrap_or(0) == 0
        {
            // One size for the group: any zone's share goes down.
            if let Some((k, _)) = self
                .desired
                .iter()
                .filter(|((q, _), n)| *q == i.pool && **n > 0)
                .max_by_key(|(_, n)| **n)
            {
                pz = k.clone();
            }
        }
        if let Some(d) = self.desired.get_mut(&pz) {
            *d = d.saturating_sub(1);
        }
        if i.version == OLD {
            self.tally.replaced += 1;
        }
        self.terminate(id);
    }

    /// After the last round, as `engine::finish_run` does.
    fn finish_run(&mut self, run: &RunContext, mem: &Memory, phases: &BTreeMap<String, NodePhase>) {
        for name in setup::never_started(phases) {
            self.write(run, &name, |n, _, _| match decode(n) {
                Ok(Some(m)) if m.phase == NodePhase::Outdated => abort_patch(n),
                _ => Default::default(),
            });
        }
        for name in setup::leftover_new_nodes(&self.nodes, &mem.cleaned) {
            self.write(run, &name, |n, _, _| abort_patch(n));
        }
        if !setup::keep_state(phases) {
            self.lease_base = None;
        }
    }

    /// Runs the world with the engine until the run is over or `max_t`.
    pub fn run(&mut self, max_t: u64) {
        let mut run_no = 0;
        self.start_process(&format!("run-{run_no}"));
        if self.plan_blocked {
            return;
        }
        while !self.done && self.t < max_t {
            self.tick();
            if self.proc.is_none() {
                run_no += 1;
                self.start_process(&format!("run-{run_no}"));
                continue;
            }
            if self.rng.chance(self.case.skip_chance) {
                continue;
            }
            let kill = if self.rng.chance(self.case.kill_chance) {
                Some(self.rng.range(0, 6) as usize)
            } else {
                None
            };
            self.engine_round(kill);
        }
    }

    /// What is left over once the run is over: markers, sizes, versions.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in self.nodes.values() {
            if n.annotations
                .keys()
                .any(|k| k.starts_with(ANNOTATION_PREFIX))
                || n.labels.contains_key(ROLE_LABEL)
                || n.taints
                    .iter()
                    .any(|t| t.key.starts_with(ANNOTATION_PREFIX.trim_end_matches('/')))
                || n.unschedulable
            {
                out.push(format!(
                    "{} still marked: {:?} {:?}",
                    n.name, n.annotations, n.taints
                ));
            }
        }
        for (pz, b) in &self.base {
            let d = self.desired.get(pz).copied().unwrap_or(0);
            if d != *b {
                out.push(format!("{pz:?}: desired {d}, base {b}"));
            }
        }
        out
    }

    pub fn all_at_target(&self) -> bool {
        self.nodes
            .values()
            .all(|n| at_version(&n.kubelet_version, TARGET))
    }

    /// Each node's phase, readiness and cordon, for a failure message.
    pub fn describe(&self) -> Vec<String> {
        self.nodes
            .values()
            .map(|n| {
                let ph = decode(n).ok().flatten().map(|m| m.phase.to_string());
                format!(
                    "{} {} {} ready={} cordoned={} phase={ph:?} replaces={:?}",
                    n.name,
                    n.pool,
                    n.kubelet_version,
                    n.ready,
                    n.unschedulable,
                    n.annotations.get(REPLACES_ANNOTATION)
                )
            })
            .collect()
    }

    /// Old nodes still there (not replaced).
    pub fn old_nodes(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| !at_version(&n.kubelet_version, TARGET))
            .count()
    }
}
