//! Seeded end-to-end trials of `upgrade apply` (the real binary) against the embedded simulated
//! cluster, judged by an **independent observer**: its own watches of pods, nodes and PDBs and
//! raw reads of the simulated cloud, written against plain Kubernetes types, never the engine's.
//!
//! Each trial draws a topology (1–2 pools × 1–3 zones × 1–4 nodes per zone, Deployments and
//! StatefulSets behind PDBs, a DaemonSet), a flag combination (`--max-surge` 1/2/3/all,
//! `--max-surge 0 --max-unavailable 1`, `--max-surge 1 --max-unavailable 1`) and kill points:
//! `apply` is SIGKILLed at random moments — and, in some trials, right after the last old node
//! is deleted — then started again until it exits. The observer then requires:
//! - every node at the target version and Ready;
//! - in pools that surge, no replica moved twice (no pod created during the run was evicted);
//! - no PDB below its minimum, counting healthy pods itself (Ready, not being deleted);
//! - serving nodes (Ready, not cordoned) per pool never below base − `max-unavailable`;
//! - no marker, taint, role label, autoscaler mark or Lease left;
//! - each cloud group back at its size before the run, and one instance launched per replaced
//!   node (a kill never surges twice).
//!
//! `E2E_GATE_TRIALS=N` runs N trials (default 20, the CI set); `E2E_GATE_TEST_SEED=S` replays
//! one trial's seed.

use e2e_gate::cluster::sim::{SimCluster, SimOptions, Topology};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OLD: &str = "v1.33.5";
const TARGET: &str = "v1.34.0";
const PREFIX: &str = "upgrade.e2e-gate.io/";
const AUTOSCALER: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";

/// One trial's draw.
#[derive(Debug, Clone)]
struct Trial {
    seed: u64,
    pools: Vec<(String, u32, u32)>, // (name, zones, nodes per zone)
    surge: String,
    unavailable: u32,
    kills: Vec<Duration>,
    kill_at_end: bool,
    topology: String,
}

/// The trial a seed stands for (the seed alone replays it).
fn draw(seed: u64) -> Trial {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let index = seed as usize;
    // The flag combinations the issue names, in turn, so any 20 consecutive seeds cover them.
    let (surge, unavailable) = match index % 6 {
        0 => ("1", 0),
        1 => ("2", 0),
        2 => ("3", 0),
        3 => ("all", 0),
        4 => ("0", 1),
        _ => ("1", 1),
    };
    let pools: Vec<(String, u32, u32)> = (0..rng.random_range(1..=2u32))
        .map(|i| {
            (
                format!("pool{i}"),
                rng.random_range(1..=3u32),
                // 1–4 nodes per zone; trials cycle through them so several per zone are common.
                1 + ((index as u32 + i) % 4),
            )
        })
        .collect();
    let total: u32 = pools.iter().map(|(_, z, n)| z * n).sum();
    let surge = if surge == "all" {
        total.to_string()
    } else {
        surge.to_string()
    };
    let zones = ["zone-a", "zone-b", "zone-c"];
    let mut t = String::from("[sim]\ntime_scale = 0.01\npod_startup_seconds = 2\n\n");
    for (name, z, n) in &pools {
        let zs: Vec<String> = zones[..*z as usize]
            .iter()
            .map(|z| format!("\"{z}\""))
            .collect();
        t.push_str(&format!(
            "[[pools]]\nname = \"{name}\"\nzones = [{}]\nsize_per_zone = {n}\ncpu = \"8\"\nmemory = \"32Gi\"\nkubelet_version = \"{OLD}\"\nboot_seconds = 30\nkubelet_ready_seconds = 10\nlb_health_seconds = 5\n\n",
            zs.join(", ")
        ));
    }
    for i in 0..rng.random_range(1..=3u32) {
        t.push_str(&format!(
            "[[workloads]]\nname = \"web{i}\"\nkind = \"Deployment\"\nreplicas = {}\ncpu = \"100m\"\nmemory = \"128Mi\"\nspread = \"zone\"\npdb = {{ max_unavailable = 1 }}\n\n",
            rng.random_range(2..=6u32)
        ));
    }
    for i in 0..rng.random_range(0..=2u32) {
        t.push_str(&format!(
            "[[workloads]]\nname = \"db{i}\"\nkind = \"StatefulSet\"\nreplicas = 3\ncpu = \"100m\"\nmemory = \"128Mi\"\nspread = \"zone\"\npdb = {{ max_unavailable = 1 }}\n\n"
        ));
    }
    t.push_str("[[workloads]]\nname = \"agent\"\nnamespace = \"kube-system\"\nkind = \"DaemonSet\"\ncpu = \"10m\"\nmemory = \"16Mi\"\n");
    let kills = (0..rng.random_range(0..=3u32))
        .map(|_| Duration::from_millis(rng.random_range(100..2500)))
        .collect();
    Trial {
        seed,
        pools,
        surge,
        unavailable,
        kills,
        kill_at_end: index % 3 == 1,
        topology: t,
    }
}

/// What the observer keeps of a pod.
#[derive(Debug, Clone)]
struct PodView {
    namespace: String,
    name: String,
    labels: BTreeMap<String, String>,
    ready: bool,
    deleting: bool,
    daemon: bool,
}

#[derive(Debug, Default, Clone)]
struct Observed {
    /// Replicas each workload declares (a PDB is named after its workload).
    replicas: BTreeMap<String, i32>,
    pods: BTreeMap<String, PodView>,
    nodes: BTreeMap<String, Node>,
    pdbs: BTreeMap<String, PodDisruptionBudget>,
    /// Pod UIDs present when the run started.
    original: BTreeSet<String>,
    /// Watches (pods, nodes, PDBs) that delivered their whole initial list.
    synced: u8,
    started: bool,
    /// Pods created during the run that were evicted again (a replica's second move).
    moved_again: Vec<String>,
    /// Seconds each PDB spent below its minimum, by the observer's own count.
    below_min: BTreeMap<String, f64>,
    last_t: Option<Instant>,
    /// Fewest serving nodes seen per pool.
    min_serving: BTreeMap<String, u32>,
    /// The pool's nodes when that fewest was seen (for the failure message).
    low_water: BTreeMap<String, String>,
    /// The moment no old-version node was left (the end window).
    old_gone_at: Option<Instant>,
}

fn pod_view(p: &Pod) -> PodView {
    let ready = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    PodView {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        ready,
        deleting: p.metadata.deletion_timestamp.is_some(),
        daemon: p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "DaemonSet"),
    }
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn kubelet(n: &Node) -> String {
    n.status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.kubelet_version.clone())
        .unwrap_or_default()
}

impl Observed {
    /// Integrates the time below each PDB's minimum up to `now`, then records the state.
    fn tick(&mut self, now: Instant) {
        if let Some(last) = self.last_t {
            let dt = now.duration_since(last).as_secs_f64();
            for (key, pdb) in &self.pdbs {
                if self.healthy(pdb) < min_available(pdb, self.expected(pdb)) {
                    *self.below_min.entry(key.clone()).or_default() += dt;
                }
            }
        }
        self.last_t = Some(now);
        if !self.started {
            return;
        }
        let mut serving: BTreeMap<String, u32> = BTreeMap::new();
        for n in self.nodes.values() {
            let pool = n
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("e2e-gate.io/pool"))
                .cloned()
                .unwrap_or_default();
            let cordoned = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
            let e = serving.entry(pool).or_default();
            if node_ready(n) && !cordoned && n.metadata.deletion_timestamp.is_none() {
                *e += 1;
            }
        }
        for (pool, n) in serving {
            let m = self.min_serving.entry(pool.clone()).or_insert(u32::MAX);
            if n < *m {
                *m = n;
                let note: Vec<String> = self
                    .nodes
                    .values()
                    .filter(|x| {
                        x.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("e2e-gate.io/pool"))
                            == Some(&pool)
                    })
                    .map(|x| {
                        format!(
                            "{} {} ready={} cordoned={} phase={:?}",
                            x.metadata.name.as_deref().unwrap_or(""),
                            kubelet(x),
                            node_ready(x),
                            x.spec.as_ref().and_then(|s| s.unschedulable) == Some(true),
                            x.metadata
                                .annotations
                                .as_ref()
                                .and_then(|a| a.get("upgrade.e2e-gate.io/phase"))
                        )
                    })
                    .collect();
                self.low_water.insert(pool, note.join("\n  "));
            }
        }
        if self.old_gone_at.is_none()
            && !self.nodes.is_empty()
            && self.nodes.values().all(|n| kubelet(n) != OLD)
        {
            self.old_gone_at = Some(now);
        }
    }

    fn selected<'a>(&'a self, pdb: &'a PodDisruptionBudget) -> impl Iterator<Item = &'a PodView> {
        let ns = pdb.metadata.namespace.clone().unwrap_or_default();
        let labels = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        self.pods.values().filter(move |p| {
            p.namespace == ns && labels.iter().all(|(k, v)| p.labels.get(k) == Some(v))
        })
    }

    /// Healthy as the disruption controller counts it: Ready and not being deleted.
    fn healthy(&self, pdb: &PodDisruptionBudget) -> i32 {
        self.selected(pdb)
            .filter(|p| p.ready && !p.deleting)
            .count() as i32
    }

    /// The replicas the workload declares (the PDB's name is its workload's).
    fn expected(&self, pdb: &PodDisruptionBudget) -> i32 {
        let name = pdb.metadata.name.clone().unwrap_or_default();
        self.replicas.get(&name).copied().unwrap_or(0)
    }
}

fn min_available(pdb: &PodDisruptionBudget, expected: i32) -> i32 {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let spec = pdb.spec.as_ref();
    match (
        spec.and_then(|s| s.min_available.clone()),
        spec.and_then(|s| s.max_unavailable.clone()),
    ) {
        (Some(IntOrString::Int(m)), _) => m,
        (None, Some(IntOrString::Int(m))) => expected - m,
        _ => 0,
    }
}

/// Starts the observer's watches; returns the shared state.
fn observe(client: kube::Client, replicas: BTreeMap<String, i32>) -> Arc<Mutex<Observed>> {
    let state = Arc::new(Mutex::new(Observed {
        replicas,
        ..Observed::default()
    }));
    let pods = {
        let state = state.clone();
        let api = Api::<Pod>::all(client.clone());
        async move {
            let mut s = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = s.next().await {
                let mut o = state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                o.tick(now);
                match ev {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                        let uid = p.metadata.uid.clone().unwrap_or_default();
                        let v = pod_view(&p);
                        let was_deleting = o.pods.get(&uid).is_some_and(|old| old.deleting);
                        if o.started
                            && v.deleting
                            && !was_deleting
                            && !v.daemon
                            && !o.original.contains(&uid)
                        {
                            o.moved_again.push(format!("{}/{}", v.namespace, v.name));
                        }
                        o.pods.insert(uid, v);
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        let uid = p.metadata.uid.clone().unwrap_or_default();
                        let was_deleting = o.pods.get(&uid).is_some_and(|old| old.deleting);
                        let v = pod_view(&p);
                        // Deleted without being seen terminating first: the same second move.
                        if o.started && !was_deleting && !v.daemon && !o.original.contains(&uid) {
                            o.moved_again.push(format!("{}/{}", v.namespace, v.name));
                        }
                        o.pods.remove(&uid);
                    }
                    Ok(watcher::Event::InitDone) => o.synced += 1,
                    _ => {}
                }
            }
        }
    };
    let nodes = {
        let state = state.clone();
        let api = Api::<Node>::all(client.clone());
        async move {
            let mut s = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = s.next().await {
                let mut o = state.lock().unwrap_or_else(|e| e.into_inner());
                match ev {
                    Ok(watcher::Event::Apply(n)) | Ok(watcher::Event::InitApply(n)) => {
                        o.nodes
                            .insert(n.metadata.name.clone().unwrap_or_default(), n);
                    }
                    Ok(watcher::Event::Delete(n)) => {
                        o.nodes.remove(&n.metadata.name.clone().unwrap_or_default());
                    }
                    Ok(watcher::Event::InitDone) => o.synced += 1,
                    _ => {}
                }
                o.tick(Instant::now());
            }
        }
    };
    let pdbs = {
        let state = state.clone();
        let api = Api::<PodDisruptionBudget>::all(client);
        async move {
            let mut s = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = s.next().await {
                let mut o = state.lock().unwrap_or_else(|e| e.into_inner());
                match ev {
                    Ok(watcher::Event::Apply(b)) | Ok(watcher::Event::InitApply(b)) => {
                        let key = format!(
                            "{}/{}",
                            b.metadata.namespace.clone().unwrap_or_default(),
                            b.metadata.name.clone().unwrap_or_default()
                        );
                        o.pdbs.insert(key, b);
                    }
                    Ok(watcher::Event::InitDone) => o.synced += 1,
                    _ => {}
                }
            }
        }
    };
    // Its own thread and runtime: nothing the test or the engine does can slow it down.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("observer runtime");
        rt.block_on(async move {
            tokio::join!(pods, nodes, pdbs);
        });
    });
    state
}

/// Raw `/sim/cloud/groups` of the simulated cloud: (group → desired, every instance id).
async fn cloud(client: &kube::Client) -> (BTreeMap<String, u64>, BTreeSet<String>) {
    let req = http::Request::get("/sim/cloud/groups")
        .body(Vec::new())
        .expect("request");
    let text = client.request_text(req).await.expect("cloud groups");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut desired = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for g in v["groups"].as_array().expect("groups") {
        desired.insert(
            g["name"].as_str().unwrap_or_default().to_string(),
            g["desired"].as_u64().unwrap_or_default(),
        );
        for i in g["instances"].as_array().into_iter().flatten() {
            ids.insert(i["id"].as_str().unwrap_or_default().to_string());
        }
    }
    (desired, ids)
}

fn apply(kubeconfig: &Path, t: &Trial) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_e2e-gate"));
    c.args(["upgrade", "apply", "--cloud", "sim", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--target-version", TARGET, "--lease-duration", "1s"])
        .args(["--timeout", "3m", "--new-node-timeout", "2m"])
        .args(["--max-surge", &t.surge])
        .args(["--max-unavailable", &t.unavailable.to_string()])
        .env(
            "E2E_GATE_LOG",
            std::env::var("E2E_GATE_TRIAL_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn stderr_of(child: Child) -> String {
    let out = child.wait_with_output().expect("wait");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn run_trial(t: &Trial) {
    let ctx = format!(
        "trial {t:?}\nreplay: E2E_GATE_TEST_SEED={} E2E_GATE_TRIALS=1",
        t.seed
    );
    let topology = Topology::parse(&t.topology, Path::new("trial.toml")).expect("topology");
    let replicas: BTreeMap<String, i32> = topology
        .workloads
        .iter()
        .map(|w| (w.name.clone(), w.replicas as i32))
        .collect();
    let sim = SimCluster::start(topology, SimOptions::default())
        .await
        .expect("sim");
    let mut config = kube::Config::new(sim.url().parse().expect("url"));
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig("sim")).expect("kubeconfig");

    // Start only when every workload has all its replicas Ready (not merely every pod that
    // exists: StatefulSets create theirs one at a time).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pods = Api::<Pod>::all(client.clone())
            .list(&ListParams::default())
            .await
            .expect("pods");
        let ready_by_app = pods.items.iter().filter(|p| pod_view(p).ready).fold(
            BTreeMap::<String, i32>::new(),
            |mut m, p| {
                if let Some(app) = p.metadata.labels.as_ref().and_then(|l| l.get("app")) {
                    *m.entry(app.clone()).or_default() += 1;
                }
                m
            },
        );
        let nodes_ready = Api::<Node>::all(client.clone())
            .list(&ListParams::default())
            .await
            .expect("nodes")
            .items
            .iter()
            .all(node_ready);
        let all = replicas
            .iter()
            .filter(|(n, _)| *n != "agent")
            .all(|(n, r)| ready_by_app.get(n).copied().unwrap_or(0) >= *r);
        if all && nodes_ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workloads never became ready\n{ctx}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (desired_before, ids_before) = cloud(&client).await;
    let nodes_before = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes")
        .items
        .len();
    let base_per_pool: BTreeMap<String, u32> =
        t.pools.iter().map(|(p, z, n)| (p.clone(), z * n)).collect();

    let obs = observe(client.clone(), replicas);
    // The observer has listed everything (each watch's initial list is complete): mark the
    // run's start. Pods it had not listed yet would count as created during the run.
    let seen_by = Instant::now() + Duration::from_secs(10);
    loop {
        {
            let mut o = obs.lock().unwrap();
            if o.synced >= 3 {
                o.original = o.pods.keys().cloned().collect();
                o.started = true;
                o.min_serving.clear();
                o.below_min.clear();
                o.tick(Instant::now());
                break;
            }
        }
        assert!(Instant::now() < seen_by, "observer never synced\n{ctx}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Kills at random moments, then (some trials) right in the end window.
    let mut log = String::new();
    for at in &t.kills {
        let mut child = apply(&kubeconfig, t).spawn().expect("spawn");
        let until = Instant::now() + *at;
        while Instant::now() < until && child.try_wait().expect("wait").is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if child.try_wait().expect("wait").is_some() {
            log.push_str(&stderr_of(child));
            break;
        }
        child.kill().expect("SIGKILL");
        log.push_str(&stderr_of(child));
        log.push_str("--- SIGKILL ---\n");
    }
    if t.kill_at_end {
        let mut child = apply(&kubeconfig, t).spawn().expect("spawn");
        loop {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            if obs.lock().unwrap().old_gone_at.is_some() {
                let _ = child.kill();
                log.push_str("--- SIGKILL right after the last old node is gone ---\n");
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        log.push_str(&stderr_of(child));
    }
    let child = apply(&kubeconfig, t).spawn().expect("spawn");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{ctx}\n{log}");
    // Let the watches catch up with the last writes.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A copy: a failing assertion must not poison the lock the observer's watches still use.
    let o = obs.lock().unwrap().clone();
    let nodes: Vec<&Node> = o.nodes.values().collect();
    assert_eq!(nodes.len(), nodes_before, "node count back to base\n{ctx}");
    for n in &nodes {
        let name = n.metadata.name.clone().unwrap_or_default();
        assert_eq!(kubelet(n), TARGET, "{name} at the target\n{ctx}");
        assert!(node_ready(n), "{name} Ready\n{ctx}");
        let annotations = n.metadata.annotations.clone().unwrap_or_default();
        let labels = n.metadata.labels.clone().unwrap_or_default();
        assert!(
            !annotations
                .keys()
                .chain(labels.keys())
                .any(|k| k.starts_with(PREFIX))
                && !annotations.contains_key(AUTOSCALER),
            "{name} keeps a marker: {annotations:?} {labels:?}\n{ctx}\n{log}"
        );
        let taints = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        assert!(
            !taints.iter().any(|t| t.key.starts_with(PREFIX)),
            "{name} keeps a taint: {taints:?}\n{ctx}"
        );
        assert_ne!(
            n.spec.as_ref().and_then(|s| s.unschedulable),
            Some(true),
            "{name}\n{ctx}"
        );
    }
    if t.surge != "0" {
        assert!(
            o.moved_again.is_empty(),
            "replicas moved twice: {:?}\n{ctx}",
            o.moved_again
        );
    }
    let below: Vec<_> = o.below_min.iter().filter(|(_, s)| **s > 0.0).collect();
    assert!(
        below.is_empty(),
        "PDBs below their minimum (s): {below:?}\n{ctx}"
    );
    for (pool, base) in &base_per_pool {
        let min = o.min_serving.get(pool).copied().unwrap_or(0);
        assert!(
            min + t.unavailable >= *base,
            "pool {pool} served on {min} nodes, base {base}, max-unavailable {}; then:\n  {}\n{ctx}\n{log}",
            t.unavailable,
            o.low_water.get(pool).cloned().unwrap_or_default()
        );
    }
    let lease = Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get_opt("e2e-gate-upgrade")
        .await
        .expect("lease");
    assert!(lease.is_none(), "Lease left behind\n{ctx}");
    let (desired_after, ids_after) = cloud(&client).await;
    assert_eq!(
        desired_after, desired_before,
        "cloud sizes back at base\n{ctx}"
    );
    let launched = ids_after.difference(&ids_before).count();
    assert_eq!(
        launched, nodes_before,
        "one instance launched per replaced node\n{ctx}\n{log}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_trials_hold_every_invariant() {
    let n: usize = std::env::var("E2E_GATE_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let first: u64 = std::env::var("E2E_GATE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let started = Instant::now();
    for i in 0..n {
        let t = draw(first + i as u64);
        eprintln!(
            "trial {i}: seed {} pools {:?} --max-surge {} --max-unavailable {} kills {:?} end-kill {}",
            t.seed, t.pools, t.surge, t.unavailable, t.kills, t.kill_at_end
        );
        run_trial(&t).await;
    }
    eprintln!("{n} trials in {:?}", started.elapsed());
}
