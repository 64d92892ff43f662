//! `upgrade plan` and `upgrade abort` against the embedded simulated cluster, through the
//! real kube client: the library path (snapshot → plan, markers → abort) and the binary
//! (exit codes, JSON on stdout).

use e2e_gate::cluster::sim::{SimCluster, SimOptions, Topology};
use e2e_gate::upgrade::abort::{abort, AbortError};
use e2e_gate::upgrade::kube_cluster::{KubeCluster, KubeError};
use e2e_gate::upgrade::plan::{plan, BlockerKind, PlanOptions, PoolLimits};
use e2e_gate::upgrade::snapshot::{NodeInfo, Snapshot};
use e2e_gate::upgrade::state::{
    self, encode, encode_new, is_marked, Event, NodeMarkers, LEASE_NAME,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use std::path::Path;
use std::time::{Duration, Instant};

const TOPO: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/sim/test-3az-tight-pdb.toml"
));

async fn start() -> (SimCluster, KubeCluster, kube::Client) {
    let t = Topology::parse(TOPO, Path::new("upgrade_plan_sim.toml")).expect("topology");
    let sim = SimCluster::start(t, SimOptions::default())
        .await
        .expect("sim starts");
    let config = || {
        let mut c = kube::Config::new(sim.url().parse().expect("url"));
        c.default_retry = false;
        c
    };
    let cluster = KubeCluster::from_config(config()).expect("client");
    let client = kube::Client::try_from(config()).expect("client");
    // Wait (with a raw client, so the counted one stays clean) for 9 Ready pods.
    let pods: Api<Pod> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let l = pods.list(&ListParams::default()).await.expect("list pods");
        let ready = l
            .items
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready == 9 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for 9 ready pods ({ready})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (sim, cluster, client)
}

fn opts(surge: u32, unavailable: u32) -> PlanOptions {
    PlanOptions {
        target_version: "v1.34.0".into(),
        default_limits: PoolLimits {
            max_surge: surge,
            max_unavailable: unavailable,
        },
        ..PlanOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_from_the_simulated_cluster() {
    let (sim, cluster, _) = start().await;
    let objects = cluster.list_objects().await.expect("lists");
    let snap = Snapshot::from_k8s(&objects).expect("snapshot");
    assert_eq!(snap.nodes.len(), 3);
    assert!(snap
        .nodes
        .iter()
        .all(|n| n.pool == "workers" && n.zone.starts_with("zone-")));

    let p = plan(&snap, &opts(1, 0)).expect("plan");
    assert_eq!(p.outdated.len(), 3);
    assert_eq!(p.waves.len(), 3);
    let zones: Vec<&str> = p.surge.iter().map(|s| s.zone.as_str()).collect();
    assert_eq!(zones, ["zone-a", "zone-b", "zone-c"]);
    let blockers: Vec<(BlockerKind, &str)> = p
        .blockers
        .iter()
        .map(|b| (b.kind, b.object.as_str()))
        .collect();
    assert_eq!(
        blockers,
        [(
            BlockerKind::PdbNeverAllowsDisruption,
            "PodDisruptionBudget/default/db"
        )]
    );

    // Without surge, every db pod's zonal volume lacks capacity in its zone.
    let p = plan(&snap, &opts(0, 1)).expect("plan");
    let zonal = p
        .blockers
        .iter()
        .filter(|b| b.kind == BlockerKind::ZonalVolumeNoCapacity)
        .count();
    assert_eq!(zonal, 3, "{:#?}", p.blockers);

    // Exactly the five LISTs, counted by the layer on the client.
    let calls = cluster.api_calls();
    assert_eq!(calls.get("list"), Some(&5), "{calls:?}");
    assert_eq!(calls.values().sum::<u64>(), 5, "{calls:?}");
    sim.shutdown().await;
}

/// Labels, annotations, taints and cordon: everything markers may touch.
type MarkerView = (
    Vec<(String, String)>,
    Vec<(String, String)>,
    Vec<String>,
    bool,
);

fn marker_view(n: &NodeInfo) -> MarkerView {
    (
        n.labels.clone().into_iter().collect(),
        n.annotations.clone().into_iter().collect(),
        n.taints
            .iter()
            .map(|t| format!("{}={:?}:{}", t.key, t.value, t.effect))
            .collect(),
        n.unschedulable,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_removes_every_marker_under_the_lease() {
    let (sim, cluster, client) = start().await;
    let nodes: Vec<NodeInfo> = cluster
        .list_nodes()
        .await
        .expect("nodes")
        .iter()
        .map(|n| NodeInfo::from_k8s(n).expect("node"))
        .collect();
    let (old, new) = (&nodes[0], &nodes[1]);
    let now = chrono::Utc::now();

    // An old node mid-drain (cordoned by us, tainted, autoscaler marked) and a new node.
    let mut m = NodeMarkers::new(old, "run-1", now);
    for ev in [
        Event::SurgeRequested,
        Event::ReplacementReady,
        Event::Tainted,
        Event::DrainStarted,
    ] {
        m.apply(&old.name, &ev, now, old.unschedulable)
            .expect("legal");
    }
    let patched = cluster
        .patch_node(&old.name, |_| encode(&m, false))
        .await
        .expect("patch old");
    assert!(patched.unschedulable && is_marked(&patched));
    assert_eq!(state::decode(&patched).expect("decodes"), Some(m.clone()));
    let patched_new = cluster
        .patch_node(&new.name, |n| encode_new(n, "run-1"))
        .await
        .expect("patch new");
    assert!(is_marked(&patched_new));

    let outcome = abort(&cluster, "kube-system", "tester", now, None)
        .await
        .expect("abort");
    assert_eq!(outcome.cleaned, vec![old.name.clone(), new.name.clone()]);
    let after: Vec<NodeInfo> = cluster
        .list_nodes()
        .await
        .expect("nodes")
        .iter()
        .map(|n| NodeInfo::from_k8s(n).expect("node"))
        .collect();
    for (before, after) in nodes.iter().zip(&after) {
        assert_eq!(
            marker_view(before),
            marker_view(after),
            "node {} restored",
            before.name
        );
        assert!(!is_marked(after));
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    assert!(
        leases
            .get_opt(LEASE_NAME)
            .await
            .expect("get lease")
            .is_none(),
        "lease released"
    );

    // A live foreign holder blocks abort, naming the holder.
    let held: Lease = serde_json::from_value(serde_json::json!({
        "metadata": {"name": LEASE_NAME, "namespace": "kube-system"},
        "spec": {"holderIdentity": "other-apply", "leaseDurationSeconds": 30,
                 "renewTime": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)}
    }))
    .expect("lease");
    leases
        .create(&PostParams::default(), &held)
        .await
        .expect("create lease");
    let err = abort(&cluster, "kube-system", "tester", now, None)
        .await
        .expect_err("held");
    assert!(
        matches!(&err, AbortError::Kube(KubeError::LeaseHeld { holder, .. }) if holder == "other-apply"),
        "{err}"
    );
    sim.shutdown().await;
}

fn run_bin(args: Vec<String>) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_e2e-gate"))
        .args(args)
        .env("E2E_GATE_LOG", "warn")
        .output()
        .expect("binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes_and_json() {
    let (sim, _, _) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, sim.kubeconfig("sim")).expect("write kubeconfig");
    let kc = kc.display().to_string();
    let report = dir.path().join("plan.json");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["upgrade", "plan", "--kubeconfig", &kc]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let report_s = report.display().to_string();
    let out = tokio::task::spawn_blocking({
        let a = args(&[
            "--target-version",
            "v1.34.0",
            "--format",
            "json",
            "--report",
            &report_s,
        ]);
        move || run_bin(a)
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(1),
        "blockers → 1; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["blockers"][0]["kind"], "pdb_never_allows_disruption");
    assert_eq!(
        json["blockers"][0]["object"],
        "PodDisruptionBudget/default/db"
    );
    assert_eq!(json["kube_api_calls"]["list"], 5);
    assert_eq!(json["outdated"].as_array().map(Vec::len), Some(3));
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    assert_eq!(file, json);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 blocker(s)"));

    // With the simulator's cloud: pools from the cloud API, counted separately.
    let out = tokio::task::spawn_blocking({
        let a = args(&[
            "--target-version",
            "v1.34.0",
            "--format",
            "json",
            "--cloud",
            "sim",
        ]);
        move || run_bin(a)
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["cloud_api_calls"]["describe_groups"], 1);
    assert_eq!(json["surge"].as_array().map(Vec::len), Some(3));

    // Already at the target: nothing to do, exit 0.
    let out = tokio::task::spawn_blocking({
        let a = args(&["--target-version", "1.33"]);
        move || run_bin(a)
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Bad targets → 2, each saying what is wrong (regression: "banana" planned 3 nodes, an
    // older target or one newer than the control plane was accepted).
    for (target, says) in [
        ("banana", "is not a Kubernetes version"),
        ("v1.32.0", "does not downgrade"),
        ("v1.99.0", "version skew policy"),
    ] {
        let out = tokio::task::spawn_blocking({
            let a = args(&["--target-version", target]);
            move || run_bin(a)
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(
            stderr.contains(says) && stderr.contains(target),
            "{target}: {stderr}"
        );
    }

    // Bad flags → 2; apply is not available yet → 2; unknown pool → 2.
    for extra in [
        vec!["--target-version", "v1.34.0", "--pool", "nope"],
        vec!["--target-version", "v1.34.0", "--max-surge", "many"],
    ] {
        let out = tokio::task::spawn_blocking({
            let a = args(&extra);
            move || run_bin(a)
        })
        .await
        .expect("join");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = tokio::task::spawn_blocking({
        let mut a = args(&["--target-version", "v1.34.0"]);
        a[1] = "apply".into();
        move || run_bin(a)
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(2), "apply without --cloud");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --cloud"));
    sim.shutdown().await;

    // The cluster is gone now: unreachable → 3.
    let out = tokio::task::spawn_blocking({
        let a = args(&["--target-version", "v1.34.0"]);
        move || run_bin(a)
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_driven_evictions_follow_the_pdb() {
    use e2e_gate::upgrade::drain_policy::{EvictionTokens, Hold};
    use e2e_gate::upgrade::kube_cluster::Eviction;
    use e2e_gate::upgrade::watch::Watched;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;

    let (sim, cluster, _) = start().await;
    // Every status version's `disruptedPods`, as the engine collects them.
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let mut pdbs = {
        let seen = seen.clone();
        Watched::spawn_observed(
            Api::<PodDisruptionBudget>::all(cluster.client()),
            None,
            move |b: &PodDisruptionBudget| {
                if let Some(d) = b.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) {
                    seen.lock().unwrap().extend(d.keys().cloned());
                }
            },
        )
    };
    let pods = Watched::spawn(Api::<Pod>::all(cluster.client()), Some("app=web"));
    tokio::time::timeout(Duration::from_secs(10), async {
        pdbs.ready().await;
        pods.ready().await;
    })
    .await
    .expect("initial lists");
    let budget = |pdbs: &Watched<PodDisruptionBudget>| {
        pdbs.objects()
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some("web"))
            .and_then(|b| b.status.as_ref())
            .map(|s| s.disruptions_allowed)
            .unwrap_or(0)
    };
    let mut tokens = EvictionTokens::default();
    tokens.observe("default/web", budget(&pdbs));
    assert_eq!(tokens.available("default/web"), 1);

    let mut names: Vec<String> = pods
        .objects()
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3);
    let web = vec!["default/web".to_string()];

    // One token: the first eviction goes, the second is held by the token allocator
    // without an API call.
    let now = Instant::now();
    tokens.try_take(&names[0], &web, now).expect("token");
    assert_eq!(
        cluster.evict("default", &names[0]).await.expect("evict"),
        Eviction::Evicted
    );
    assert_eq!(
        tokens.try_take(&names[1], &web, now),
        Err(Hold::Budget {
            pdb: "default/web".into()
        })
    );

    // The API agrees: a second eviction now is a 429 naming the budget.
    match cluster.evict("default", &names[1]).await.expect("evict") {
        Eviction::Budget(msg) => assert!(msg.contains("disruption budget"), "{msg}"),
        other => panic!("expected 429, got {other:?}"),
    }

    // Wake on the PDB watch (no polling); on each change, confirm what the statuses
    // list, then try again if a token is back. The first eviction's own status write
    // (its pod in `disruptedPods`) reaches the watch, so its token is never settled by
    // the grace and no status can hand it out again: not a single 429.
    let (mut changes, mut refused, mut confirmed_first) = (0u32, 0u32, false);
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            pdbs.changed().await;
            changes += 1;
            for pod in std::mem::take(&mut *seen.lock().unwrap()) {
                confirmed_first |= pod == names[0];
                tokens.confirm("default/web", &pod);
            }
            tokens.observe("default/web", budget(&pdbs));
            if tokens.try_take(&names[1], &web, Instant::now()).is_err() {
                continue;
            }
            assert!(
                confirmed_first,
                "a token came back before the eviction's write"
            );
            match cluster.evict("default", &names[1]).await.expect("evict") {
                Eviction::Evicted => break,
                Eviction::Budget(_) => {
                    tokens.refused("default/web", &names[1]);
                    refused += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("budget returns and the second pod is evicted");
    assert_eq!(refused, 0, "no 429 after {changes} status changes");

    // Watches, not polling: one LIST per watched kind, however many changes happened.
    let calls = cluster.api_calls();
    assert_eq!(calls.get("list"), Some(&2), "{calls:?}");
    assert_eq!(
        calls.get("evict").copied(),
        Some(3 + u64::from(refused)),
        "{calls:?}"
    );
    assert!(calls.get("watch").copied().unwrap_or(0) >= 2, "{calls:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_node_pool_surges_and_terminates_with_decrement() {
    use e2e_gate::upgrade::pool::{InstanceLifecycle, NodePool, PoolError, SizeAfter};
    use e2e_gate::upgrade::sim_pool::{instance_id_from_provider_id, SimNodePool};

    let (sim, cluster, _) = start().await;
    let pool = SimNodePool::new(cluster.client());
    let groups = pool.groups().await.expect("groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "workers");
    assert_eq!(groups[0].version, "v1.33.5");
    assert_eq!(groups[0].desired_per_zone.values().sum::<u32>(), 3);

    pool.set_version("workers", "v1.34.0")
        .await
        .expect("launch template");
    pool.set_desired("workers", "zone-a", 2)
        .await
        .expect("surge in zone-a");
    assert!(matches!(
        pool.set_desired("workers", "zone-x", 1).await,
        Err(PoolError::UnknownZone { .. })
    ));
    assert!(matches!(
        pool.instances("nope").await,
        Err(PoolError::UnknownPool { .. })
    ));

    let deadline = Instant::now() + Duration::from_secs(20);
    let new = loop {
        let inst = pool.instances("workers").await.expect("instances");
        if let Some(i) = inst
            .iter()
            .find(|i| i.version == "v1.34.0" && i.lifecycle == InstanceLifecycle::InService)
        {
            break i.clone();
        }
        assert!(
            Instant::now() < deadline,
            "surge instance never InService: {inst:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(new.zone, "zone-a");

    // The Node of an old zone-a instance, found through its providerID.
    let nodes = cluster.list_nodes().await.expect("nodes");
    let old = nodes
        .iter()
        .map(|n| NodeInfo::from_k8s(n).expect("node"))
        .find(|n| n.zone == "zone-a" && n.kubelet_version == "v1.33.5")
        .expect("old node in zone-a");
    let old_id = old
        .provider_id
        .as_deref()
        .and_then(instance_id_from_provider_id)
        .expect("provider id")
        .to_string();
    pool.terminate(&old_id, SizeAfter::Decrement)
        .await
        .expect("terminate");
    pool.terminate(&old_id, SizeAfter::Decrement)
        .await
        .expect("idempotent");
    assert!(matches!(
        pool.terminate("i-nope", SizeAfter::Decrement).await,
        Err(PoolError::UnknownInstance { .. })
    ));
    let g = pool.groups().await.expect("groups");
    assert_eq!(g[0].desired_per_zone["zone-a"], 1, "decremented");
    let calls = pool.cloud_calls();
    assert_eq!(calls.get("terminate"), Some(&3), "{calls:?}");
    sim.shutdown().await;
}

const APPLY_TOPO: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/sim/test-3az.toml"
));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_replaces_every_node_against_the_simulator() {
    use e2e_gate::upgrade::engine::{apply, EngineConfig};
    use e2e_gate::upgrade::pool::NodePool;
    use e2e_gate::upgrade::sim_pool::SimNodePool;

    let t = Topology::parse(APPLY_TOPO, Path::new("apply.toml")).expect("topology");
    let sim = SimCluster::start(t, SimOptions::default())
        .await
        .expect("sim starts");
    let mut config = kube::Config::new(sim.url().parse().expect("url"));
    config.default_retry = false;
    let cluster = KubeCluster::from_config(config).expect("client");
    // Wait for the 9 pods via the snapshot LIST path.
    let deadline = Instant::now() + Duration::from_secs(20);
    let snap = loop {
        let s =
            Snapshot::from_k8s(&cluster.list_objects().await.expect("lists")).expect("snapshot");
        if s.pods.iter().filter(|p| p.ready).count() == 9 {
            break s;
        }
        assert!(Instant::now() < deadline, "pods never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let before = cluster.api_calls();
    let o = opts(1, 0);
    let p = plan(&snap, &o).expect("plan");
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let pool = SimNodePool::new(cluster.client());
    let cfg = EngineConfig {
        run_id: "run-e2e".into(),
        identity: "tester".into(),
        lease_namespace: "kube-system".into(),
        policy: Default::default(),
        min_ready: Duration::ZERO,
        ready_timeout: Duration::from_secs(600),
        lease_duration: Duration::from_secs(30),
        tick: Duration::from_millis(200),
        deadline: Duration::from_secs(90),
    };
    let mut lines = Vec::new();
    let report = apply(&cluster, &pool, &p, &o, &cfg, |pr| lines.push(pr.line()))
        .await
        .expect("apply");
    assert_eq!(
        report.nodes_replaced,
        3,
        "{report:#?}\n{}",
        lines.join("\n")
    );
    assert!(report.forced_actions == 0 && report.blocked_nodes.is_empty());
    assert!(report.evictions >= 6, "{report:#?}");

    let nodes: Vec<NodeInfo> = cluster
        .list_nodes()
        .await
        .expect("nodes")
        .iter()
        .map(|n| NodeInfo::from_k8s(n).expect("node"))
        .collect();
    assert_eq!(nodes.len(), 3, "{nodes:#?}");
    for n in &nodes {
        assert_eq!(n.kubelet_version, "v1.34.0");
        assert!(
            !is_marked(n),
            "markers left on {}: {:?}",
            n.name,
            n.annotations
        );
    }
    // Watches, not polling: the engine's only LISTs are the three initial watch lists.
    let lists = report.kube_api_calls.get("list").copied().unwrap_or(0)
        - before.get("list").copied().unwrap_or(0);
    assert_eq!(lists, 3, "{:?}", report.kube_api_calls);
    assert!(report.duration_seconds > 0.0);
    let g = pool.groups().await.expect("groups");
    assert_eq!(
        g[0].desired_per_zone.values().sum::<u32>(),
        3,
        "pool back to its size"
    );
    eprintln!(
        "{}\n{}",
        lines.join("\n"),
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    sim.shutdown().await;
}

async fn start_apply_sim() -> (SimCluster, KubeCluster) {
    let t = Topology::parse(APPLY_TOPO, Path::new("apply.toml")).expect("topology");
    let sim = SimCluster::start(t, SimOptions::default())
        .await
        .expect("sim starts");
    let mut config = kube::Config::new(sim.url().parse().expect("url"));
    config.default_retry = false;
    let cluster = KubeCluster::from_config(config).expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s =
            Snapshot::from_k8s(&cluster.list_objects().await.expect("lists")).expect("snapshot");
        if s.pods.iter().filter(|p| p.ready).count() == 9 {
            break;
        }
        assert!(Instant::now() < deadline, "pods never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (sim, cluster)
}

/// Kill the engine mid-run (deadline), start it again: it resumes from the markers,
/// launches no extra instance and finishes with every marker removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_resumes_after_being_stopped_mid_run() {
    use e2e_gate::upgrade::engine::{apply, EngineConfig, EngineError};
    use e2e_gate::upgrade::pool::NodePool;
    use e2e_gate::upgrade::sim_pool::SimNodePool;

    let (sim, cluster) = start_apply_sim().await;
    let pool = SimNodePool::new(cluster.client());
    let o = opts(1, 0);
    let cfg = EngineConfig {
        run_id: "run-1".into(),
        identity: "tester".into(),
        lease_namespace: "kube-system".into(),
        policy: Default::default(),
        min_ready: Duration::from_millis(50),
        ready_timeout: Duration::from_secs(600),
        lease_duration: Duration::from_secs(30),
        tick: Duration::from_millis(100),
        deadline: Duration::from_millis(900),
    };
    let snap = Snapshot::from_k8s(&cluster.list_objects().await.expect("lists")).expect("snapshot");
    let p = plan(&snap, &o).expect("plan");
    let first = apply(&cluster, &pool, &p, &o, &cfg, |pr| {
        eprintln!("R1 {}", pr.line())
    })
    .await;
    eprintln!("=== run 2");
    assert!(matches!(first, Err(EngineError::Deadline(_))), "{first:?}");
    let marked = cluster
        .list_nodes()
        .await
        .expect("nodes")
        .iter()
        .filter(|n| is_marked(&NodeInfo::from_k8s(n).expect("node")))
        .count();
    assert!(marked > 0, "stopped mid-run: markers are kept");

    // Second run: a fresh plan from the cluster as it is now, another run id.
    let snap = Snapshot::from_k8s(&cluster.list_objects().await.expect("lists")).expect("snapshot");
    let p = plan(&snap, &o).expect("plan");
    let cfg = EngineConfig {
        run_id: "run-2".into(),
        deadline: Duration::from_secs(90),
        ..cfg
    };
    let report = apply(&cluster, &pool, &p, &o, &cfg, |_| {})
        .await
        .expect("resumed apply");
    assert_eq!(report.nodes_replaced, report.nodes_total);
    let nodes: Vec<NodeInfo> = cluster
        .list_nodes()
        .await
        .expect("nodes")
        .iter()
        .map(|n| NodeInfo::from_k8s(n).expect("node"))
        .collect();
    let inst = pool.instances("workers").await.expect("instances");
    assert_eq!(
        nodes.len(),
        3,
        "{:#?}\n{inst:#?}",
        nodes
            .iter()
            .map(|n| (&n.name, &n.kubelet_version, &n.annotations, n.unschedulable))
            .collect::<Vec<_>>()
    );
    for n in &nodes {
        assert_eq!(n.kubelet_version, "v1.34.0");
        assert!(
            !is_marked(n),
            "markers left on {}: {:?}",
            n.name,
            n.annotations
        );
    }
    // Exactly one new instance per old one: nothing was surged twice.
    let inst = pool.instances("workers").await.expect("instances");
    assert_eq!(inst.len(), 6, "{inst:#?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_apply_with_the_simulated_cloud() {
    let (sim, _) = start_apply_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, sim.kubeconfig("sim")).expect("write kubeconfig");
    let report = dir.path().join("report.json");
    let args: Vec<String> = [
        "upgrade",
        "apply",
        "--cloud",
        "sim",
        "--kubeconfig",
        &kc.display().to_string(),
        "--target-version",
        "v1.34.0",
        "--format",
        "json",
        "--report",
        &report.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || run_bin(args))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("JSON report on stdout");
    assert_eq!(json["nodes_replaced"], 3);
    assert_eq!(json["evictions"], 6);
    assert_eq!(json["forced_actions"], 0);
    assert_eq!(json["cloud_api_calls"]["terminate"], 3, "{json}");
    assert_eq!(json["kube_api_calls"]["evict"], 6, "{json}");
    // Node marker writes: 4 per old node + 2 per new node (+1 Lease annotation).
    assert!(
        json["kube_api_calls"]["patch"]
            .as_u64()
            .is_some_and(|n| n <= 3 * 6 + 2),
        "{json}"
    );
    assert!(json["kube_api_calls"].get("cloud").is_none(), "{json}");
    assert!(stderr.contains("3/3 nodes replaced"), "{stderr}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    assert_eq!(file, json);
    sim.shutdown().await;
}

/// A drain that can never finish (db: minAvailable = replicas) is reported, then the node
/// is left cordoned and the run stops starting nodes and fails: never a silent force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_drain_is_reported_then_left_cordoned_never_forced() {
    use e2e_gate::upgrade::drain_policy::StuckDrainPolicy;
    use e2e_gate::upgrade::engine::{apply, EngineConfig};
    use e2e_gate::upgrade::sim_pool::SimNodePool;
    use e2e_gate::upgrade::state::NodePhase;

    let (sim, cluster, _) = start().await;
    let snap = Snapshot::from_k8s(&cluster.list_objects().await.expect("lists")).expect("snapshot");
    let o = opts(1, 0);
    let p = plan(&snap, &o).expect("plan");
    assert_eq!(
        p.blockers.len(),
        1,
        "the CLI would refuse; the engine is driven directly here"
    );
    let pool = SimNodePool::new(cluster.client());
    let cfg = EngineConfig {
        run_id: "run-stuck".into(),
        identity: "tester".into(),
        lease_namespace: "kube-system".into(),
        policy: StuckDrainPolicy {
            report_after: Duration::from_millis(300),
            leave_cordoned_after: Duration::from_millis(1500),
            max_blocked_nodes: 1,
        },
        min_ready: Duration::ZERO,
        ready_timeout: Duration::from_secs(600),
        lease_duration: Duration::from_secs(30),
        tick: Duration::from_millis(100),
        deadline: Duration::from_secs(60),
    };
    let mut lines = Vec::new();
    let report = apply(&cluster, &pool, &p, &o, &cfg, |pr| lines.push(pr.line()))
        .await
        .expect("report");
    assert_eq!(report.blocked_nodes.len(), 1, "{report:#?}");
    assert_eq!(report.nodes_replaced, 0);
    assert_eq!(report.forced_actions, 0);
    assert!(lines.iter().any(|l| l.contains("blocked")), "{lines:#?}");
    let blocked = &report.blocked_nodes[0].node;
    let node = NodeInfo::from_k8s(
        &Api::<k8s_openapi::api::core::v1::Node>::all(cluster.client())
            .get(blocked)
            .await
            .expect("node"),
    )
    .expect("node");
    let m = state::decode(&node).expect("markers").expect("marked");
    assert_eq!(m.phase, NodePhase::CordonedLeft);
    assert!(node.unschedulable, "left cordoned");
    assert!(m.reason.is_some_and(|r| r.contains("left cordoned")));
    // The db pod on it is still there: nothing bypassed the PDB.
    let pods = cluster.list_objects().await.expect("lists").pods;
    assert!(pods.iter().any(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(blocked.as_str())
            && p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("db-"))
    }));

    // Once the PDB is relaxed, a later apply retries the drain it left cordoned (it used to
    // count the node as settled for good).
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let pdbs = Api::<PodDisruptionBudget>::all(cluster.client())
        .list(&Default::default())
        .await
        .expect("PDBs");
    let db = pdbs
        .items
        .iter()
        .find(|b| {
            b.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("db"))
        })
        .expect("the db PDB");
    let ns = db.metadata.namespace.clone().expect("namespaced");
    Api::<PodDisruptionBudget>::namespaced(cluster.client(), &ns)
        .patch(
            db.metadata.name.as_deref().expect("named"),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({
                "spec": {"minAvailable": null, "maxUnavailable": 1}
            })),
        )
        .await
        .expect("PDB relaxed");
    let snap = Snapshot::from_k8s(&cluster.list_objects().await.expect("lists")).expect("snapshot");
    let p = plan(&snap, &o).expect("plan");
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let cfg = EngineConfig {
        run_id: "run-retry".into(),
        ..cfg
    };
    let report = apply(&cluster, &pool, &p, &o, &cfg, |_| {})
        .await
        .expect("report");
    assert!(report.blocked_nodes.is_empty(), "{report:#?}");
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(cluster.client())
        .list(&Default::default())
        .await
        .expect("nodes");
    assert!(
        !nodes
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(blocked.as_str())),
        "the node left cordoned was drained and replaced"
    );
    sim.shutdown().await;
}
