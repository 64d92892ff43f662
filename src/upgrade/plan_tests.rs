//! Table and property tests of the planner.

use super::*;
use crate::upgrade::snapshot::{
    IntOrPercent, OwnerInfo, PdbInfo, PdbStatus, PodInfo, PoolInfo, Resources,
};
use kube::core::Selector;
use rand::{Rng, SeedableRng};

const OLD: &str = "v1.33.2";
const NEW: &str = "v1.34.1";

pub(crate) fn node(name: &str, pool: &str, zone: &str, version: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        pool: pool.into(),
        zone: zone.into(),
        kubelet_version: version.into(),
        ready: true,
        allocatable: Resources {
            cpu_millis: 4000,
            memory_bytes: 8 << 30,
            pods: 110,
        },
        ..NodeInfo::default()
    }
}

pub(crate) fn pod(
    ns_name: &str,
    node: &str,
    owner: Option<(&str, &str)>,
    labels: &[(&str, &str)],
) -> PodInfo {
    let (ns, name) = ns_name.split_once('/').expect("ns/name");
    PodInfo {
        namespace: ns.into(),
        name: name.into(),
        uid: format!("uid-{ns_name}"),
        node: Some(node.into()),
        owner: owner.map(|(k, n)| OwnerInfo {
            kind: k.into(),
            name: n.into(),
        }),
        requests: Resources {
            cpu_millis: 100,
            memory_bytes: 1 << 20,
            pods: 1,
        },
        ready: true,
        phase: "Running".into(),
        daemonset: owner.is_some_and(|(k, _)| k == "DaemonSet"),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..PodInfo::default()
    }
}

fn rs(ns_name: &str, node: &str, app: &str) -> PodInfo {
    pod(ns_name, node, Some(("ReplicaSet", app)), &[("app", app)])
}

fn pdb(ns_name: &str, app: &str, min: Option<IntOrPercent>, max: Option<IntOrPercent>) -> PdbInfo {
    let (ns, name) = ns_name.split_once('/').expect("ns/name");
    PdbInfo {
        namespace: ns.into(),
        name: name.into(),
        selector: Some(Selector::from_iter([("app".to_string(), app.to_string())])),
        min_available: min,
        max_unavailable: max,
        always_allow_unhealthy: false,
        status: None,
    }
}

pub(crate) fn snap(nodes: Vec<NodeInfo>, pods: Vec<PodInfo>, pdbs: Vec<PdbInfo>) -> Snapshot {
    let pools = PoolInfo::from_nodes(&nodes, 180);
    Snapshot {
        nodes,
        pods,
        pdbs,
        pools,
    }
}

pub(crate) fn limits(max_surge: u32, max_unavailable: u32) -> PoolLimits {
    PoolLimits {
        max_surge,
        max_unavailable,
    }
}

pub(crate) fn opts(surge: u32, unavailable: u32) -> PlanOptions {
    PlanOptions {
        target_version: NEW.into(),
        default_limits: limits(surge, unavailable),
        ..PlanOptions::default()
    }
}

fn kinds(p: &Plan) -> Vec<(BlockerKind, String)> {
    p.blockers
        .iter()
        .map(|b| (b.kind, b.object.clone()))
        .collect()
}

fn three_nodes() -> Vec<NodeInfo> {
    vec![
        node("a1", "w", "a", OLD),
        node("a2", "w", "a", OLD),
        node("b1", "w", "b", OLD),
        node("b9", "w", "b", NEW),
    ]
}

#[test]
fn outdated_waves_and_surge_per_zone() {
    let p = plan(&snap(three_nodes(), vec![], vec![]), &opts(1, 0)).expect("plan");
    let names: Vec<&str> = p.outdated.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a1", "a2", "b1"]);
    assert_eq!(p.waves.len(), 3);
    assert!(p
        .waves
        .iter()
        .all(|w| w.nodes.len() == 1 && w.surge.len() == 1 && w.surge[0].nodes == 1));
    assert_eq!(p.waves[2].surge[0].zone, "b");
    let peak: Vec<(&str, &str, u32)> = p
        .surge
        .iter()
        .map(|s| (s.pool.as_str(), s.zone.as_str(), s.nodes))
        .collect();
    assert_eq!(peak, [("w", "a", 1), ("w", "b", 1)]);
    assert!(p.blockers.is_empty());

    let p = plan(&snap(three_nodes(), vec![], vec![]), &opts(2, 1)).expect("plan");
    assert_eq!(p.waves.len(), 1);
    let total: u32 = p.waves[0].surge.iter().map(|s| s.nodes).sum();
    assert_eq!(
        total, 2,
        "surge capped by max_surge, spread over zones: {:?}",
        p.waves[0].surge
    );
    assert_eq!(p.waves[0].surge.len(), 2);
}

#[test]
fn version_matching() {
    for (kubelet, target, at) in [
        ("v1.34.1", "v1.34.1", true),
        ("v1.34.1", "1.34.1", true),
        ("v1.34.1", "1.34", true),
        ("v1.34.10", "1.34.1", false),
        ("v1.33.9", "v1.34", false),
        ("v1.34.1+k3s1", "1.34.1", true),
        ("", "1.34", false),
    ] {
        assert_eq!(at_version(kubelet, target), at, "{kubelet} vs {target}");
    }
}

#[test]
fn pool_filter_control_plane_and_errors() {
    let mut nodes = three_nodes();
    nodes.push(node("x1", "other", "a", OLD));
    let mut cp = node("cp", "default", "a", OLD);
    cp.labels.insert(CONTROL_PLANE_LABEL.into(), String::new());
    nodes.push(cp);
    let s = snap(nodes, vec![], vec![]);
    let mut o = opts(1, 0);
    o.pools.insert("w".into());
    let p = plan(&s, &o).expect("plan");
    assert_eq!(p.outdated.len(), 3);
    let skipped: Vec<&str> = p.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["x1", "cp"]);

    o.pools = BTreeSet::from(["nope".to_string()]);
    assert!(matches!(plan(&s, &o), Err(PlanError::UnknownPool { pool, .. }) if pool == "nope"));
    assert_eq!(
        plan(
            &s,
            &PlanOptions {
                target_version: " ".into(),
                ..opts(1, 0)
            }
        ),
        Err(PlanError::EmptyTargetVersion)
    );
    let mut o = opts(1, 0);
    o.limits.insert("other".into(), limits(0, 0));
    assert_eq!(
        plan(&s, &o),
        Err(PlanError::NoConcurrency {
            pool: "other".into()
        })
    );
    // Per-pool limits override the default.
    let mut o = opts(1, 0);
    o.limits.insert("w".into(), limits(3, 0));
    let p = plan(&s, &o).expect("plan");
    assert_eq!(
        p.waves[0].nodes.len(),
        4,
        "w: 3 nodes, other: 1 node, in parallel"
    );
}

#[test]
fn stateless_first_stateful_primaries_last() {
    let nodes = vec![
        node("n-primary", "w", "a", OLD),
        node("n-replica", "w", "a", OLD),
        node("n-web", "w", "a", OLD),
        node("n-unprotected-db", "w", "a", OLD),
    ];
    let mut primary = pod(
        "db/pg-0",
        "n-primary",
        Some(("StatefulSet", "pg")),
        &[("app", "pg"), ("spilo-role", "master")],
    );
    primary.has_pvc = true;
    let replica = pod(
        "db/pg-1",
        "n-replica",
        Some(("StatefulSet", "pg")),
        &[("app", "pg"), ("spilo-role", "replica")],
    );
    let unprotected = pod(
        "db/cache-0",
        "n-unprotected-db",
        Some(("StatefulSet", "cache")),
        &[("app", "cache"), ("role", "primary")],
    );
    let pods = vec![primary, replica, unprotected, rs("web/w-1", "n-web", "web")];
    let pdbs = vec![pdb("db/pg", "pg", None, Some(IntOrPercent::Int(1)))];
    let p = plan(&snap(nodes, pods, pdbs), &opts(1, 0)).expect("plan");
    let order: Vec<&str> = p
        .waves
        .iter()
        .flat_map(|w| w.nodes.iter().map(String::as_str))
        .collect();
    assert_eq!(
        order,
        ["n-unprotected-db", "n-web", "n-replica", "n-primary"]
    );
    let classes: Vec<NodeClass> = p.waves.iter().map(|w| w.class).collect();
    assert_eq!(
        classes,
        [
            NodeClass::Stateless,
            NodeClass::Stateless,
            NodeClass::Stateful,
            NodeClass::StatefulPrimary
        ]
    );
    assert_eq!(
        p.outdated.last().map(|n| n.name.as_str()),
        Some("n-primary")
    );
}

#[test]
fn blocker_table() {
    use BlockerKind::*;
    type Case = (
        &'static str,
        Vec<PodInfo>,
        Vec<PdbInfo>,
        PlanOptions,
        Vec<(BlockerKind, &'static str)>,
    );
    let web = |n: &str, node: &str| rs(&format!("web/{n}"), node, "web");
    // A toleration: key, operator Exists, value, effect.
    let tol =
        |p: PodInfo, key: Option<&str>, exists: bool, value: Option<&str>, effect: Option<&str>| {
            let t = Toleration {
                key: key.map(String::from),
                operator: exists.then(|| "Exists".to_string()),
                value: value.map(String::from),
                effect: effect.map(String::from),
                toleration_seconds: None,
            };
            PodInfo {
                tolerations: vec![t],
                ..p
            }
        };
    let tolerate_all = tol(web("tol", "a1"), None, true, None, None);
    let cordon = Some("node.kubernetes.io/unschedulable");
    let tolerate_cordon = tol(web("tolc", "a1"), cordon, true, None, Some("NoSchedule"));
    let narrow = (Some("dedicated"), Some("web"), Some("NoSchedule"));
    let tolerate_narrow = tol(web("toln", "a1"), narrow.0, false, narrow.1, narrow.2);
    let tolerate_all_noexec = tol(web("tolx", "a1"), None, true, None, Some("NoExecute"));
    let cni = pod("kube-system/cni-a1", "a1", Some(("DaemonSet", "cni")), &[]);
    let ds_all = tol(cni, None, true, None, None);
    let mut mirror = pod("kube-system/etcd-a1", "a1", None, &[]);
    mirror.mirror = true;
    let mut zonal = web("zonal", "a1");
    zonal.volume_zones = Some(BTreeSet::from(["a".to_string()]));
    let mut zonal_disjoint = web("zonal-x", "a1");
    zonal_disjoint.volume_zones = Some(BTreeSet::new());
    let mut done = pod("jobs/done", "a1", None, &[]);
    done.phase = "Succeeded".into();
    let on_new_node = pod("web/bare-on-new", "b9", None, &[]);

    let cases: Vec<Case> = vec![
        (
            "clean",
            vec![web("w1", "a1"), web("w2", "a2")],
            vec![pdb("web/web", "web", None, Some(IntOrPercent::Int(1)))],
            opts(1, 0),
            vec![],
        ),
        (
            "minAvailable = replicas",
            vec![web("w1", "a1"), web("w2", "a2")],
            vec![pdb("web/web", "web", Some(IntOrPercent::Int(2)), None)],
            opts(1, 0),
            vec![(PdbNeverAllowsDisruption, "PodDisruptionBudget/web/web")],
        ),
        (
            "minAvailable 100%",
            vec![web("w1", "a1"), web("w2", "a2")],
            vec![pdb(
                "web/web",
                "web",
                Some(IntOrPercent::Percent(100)),
                None,
            )],
            opts(1, 0),
            vec![(PdbNeverAllowsDisruption, "PodDisruptionBudget/web/web")],
        ),
        (
            "single replica minAvailable 1",
            vec![web("w1", "a1")],
            vec![pdb("web/web", "web", Some(IntOrPercent::Int(1)), None)],
            opts(1, 0),
            vec![(PdbNeverAllowsDisruption, "PodDisruptionBudget/web/web")],
        ),
        (
            "maxUnavailable 0",
            vec![web("w1", "a1"), web("w2", "a1")],
            vec![pdb("web/web", "web", None, Some(IntOrPercent::Int(0)))],
            opts(1, 0),
            vec![(PdbNeverAllowsDisruption, "PodDisruptionBudget/web/web")],
        ),
        (
            "minAvailable 50% of 2",
            vec![web("w1", "a1"), web("w2", "a2")],
            vec![pdb("web/web", "web", Some(IntOrPercent::Percent(50)), None)],
            opts(1, 0),
            vec![],
        ),
        (
            "two PDBs",
            vec![web("w1", "a1"), web("w2", "a2"), web("w3", "a2")],
            vec![
                pdb("web/a", "web", None, Some(IntOrPercent::Int(1))),
                pdb("web/b", "web", None, Some(IntOrPercent::Int(1))),
            ],
            opts(1, 0),
            vec![
                (PodUnderMultiplePdbs, "Pod/web/w1"),
                (PodUnderMultiplePdbs, "Pod/web/w2"),
                (PodUnderMultiplePdbs, "Pod/web/w3"),
            ],
        ),
        (
            "unmanaged",
            vec![pod("x/bare", "a1", None, &[])],
            vec![],
            opts(1, 0),
            vec![(UnmanagedPod, "Pod/x/bare")],
        ),
        (
            "mirror, daemonset, succeeded and pods on new nodes are ignored",
            vec![mirror, ds_all, done, on_new_node],
            vec![],
            opts(1, 0),
            vec![],
        ),
        (
            "zonal volume with surge",
            vec![zonal.clone()],
            vec![],
            opts(1, 0),
            vec![],
        ),
        (
            "zonal volume, no surge, no room",
            vec![zonal.clone()],
            vec![],
            opts(0, 1),
            vec![(ZonalVolumeNoCapacity, "Pod/web/zonal")],
        ),
        (
            "disjoint volume zones",
            vec![zonal_disjoint],
            vec![],
            opts(1, 0),
            vec![(ZonalVolumeNoCapacity, "Pod/web/zonal-x")],
        ),
        (
            "tolerates everything",
            vec![tolerate_all],
            vec![],
            opts(1, 0),
            vec![(ToleratesEverything, "Pod/web/tol")],
        ),
        (
            "tolerates cordon",
            vec![tolerate_cordon],
            vec![],
            opts(1, 0),
            vec![(ToleratesEverything, "Pod/web/tolc")],
        ),
        (
            "narrow toleration",
            vec![tolerate_narrow, tolerate_all_noexec],
            vec![],
            opts(1, 0),
            vec![],
        ),
    ];
    for (name, pods, pdbs, o, want) in cases {
        let p =
            plan(&snap(three_nodes(), pods, pdbs), &o).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want: Vec<(BlockerKind, String)> =
            want.into_iter().map(|(k, o)| (k, o.to_string())).collect();
        assert_eq!(kinds(&p), want, "{name}");
        for b in &p.blockers {
            assert!(
                !b.explanation.is_empty() && b.node.is_some(),
                "{name}: {b:?}"
            );
        }
    }
}

#[test]
fn zonal_volume_fits_on_an_up_to_date_node_in_its_zone() {
    let mut nodes = three_nodes();
    nodes.push(node("a9", "w", "a", NEW));
    let mut zonal = rs("web/zonal", "a1", "web");
    zonal.volume_zones = Some(BTreeSet::from(["a".to_string()]));
    let p = plan(
        &snap(nodes.clone(), vec![zonal.clone()], vec![]),
        &opts(0, 1),
    )
    .expect("plan");
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    // The new node is full: blocker again.
    let hog = PodInfo {
        requests: Resources {
            cpu_millis: 4000,
            memory_bytes: 0,
            pods: 1,
        },
        ..rs("web/hog", "a9", "hog")
    };
    let p = plan(&snap(nodes, vec![zonal, hog], vec![]), &opts(0, 1)).expect("plan");
    assert_eq!(
        kinds(&p),
        vec![(
            BlockerKind::ZonalVolumeNoCapacity,
            "Pod/web/zonal".to_string()
        )]
    );
}

#[test]
fn pdb_status_expected_pods_wins_over_counting() {
    let mut b = pdb("web/web", "web", Some(IntOrPercent::Int(1)), None);
    b.status = Some(PdbStatus {
        disruptions_allowed: 0,
        expected_pods: 3,
        current_healthy: 1,
        desired_healthy: 1,
    });
    // Only one pod visible, but the controller expects 3: budget 2 in steady state.
    let p = plan(
        &snap(three_nodes(), vec![rs("web/w1", "a1", "web")], vec![b]),
        &opts(1, 0),
    )
    .expect("plan");
    assert!(p.blockers.is_empty());
}

#[test]
fn estimates_and_lower_bound() {
    let s = snap(
        vec![node("a1", "w", "a", OLD), node("a2", "w", "a", OLD)],
        vec![],
        vec![],
    );
    let p = plan(&s, &opts(1, 0)).expect("plan");
    // Two waves of boot 180 + drain 120 + terminate 60.
    assert_eq!(p.estimate.estimated_seconds, 720);
    // LB_phys = P + D + T = 360; LB_policy = max(360, ceil(2/1)·(D+T)=360).
    assert_eq!(p.estimate.lower_bound_phys_seconds, 360);
    assert_eq!(p.estimate.lower_bound_seconds, 360);
    // maxUnavailable only: no boot on the critical path.
    let p = plan(&s, &opts(0, 1)).expect("plan");
    assert_eq!(p.estimate.estimated_seconds, 360);
    assert_eq!(p.estimate.lower_bound_seconds, 360);
    assert_eq!(p.estimate.lower_bound_phys_seconds, 180);
    // PDB serialisation: 4 pods of a budget-1 PDB on one node, R = 60 → 240s drain.
    let pods = (0..4)
        .map(|i| rs(&format!("web/w{i}"), "a1", "web"))
        .collect();
    let s = snap(
        vec![node("a1", "w", "a", OLD)],
        pods,
        vec![pdb("web/web", "web", None, Some(IntOrPercent::Int(1)))],
    );
    let mut o = opts(1, 0);
    o.timings.pod_ready_seconds = 60;
    let p = plan(&s, &o).expect("plan");
    assert_eq!(p.waves[0].estimated_seconds, 180 + 240 + 60);
    // LB_phys = max(P + D + T = 360, ceil(4/1)·R = 240).
    assert_eq!(p.estimate.lower_bound_phys_seconds, 360);
    let mut o = opts(0, 1);
    o.timings.pod_ready_seconds = 60;
    let p = plan(&s, &o).expect("plan");
    // Without surge: max(D + T = 180, 240) = 240.
    assert_eq!(p.estimate.lower_bound_phys_seconds, 240);
}

/// Random clusters; invariants that must hold for any input.
#[test]
fn property_invariants_on_random_clusters() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for round in 0..300 {
        let pools = ["p0", "p1", "p2"];
        let zones = ["a", "b", "c", UNKNOWN_ZONE];
        let n_nodes = rng.random_range(0..25);
        let nodes: Vec<NodeInfo> = (0..n_nodes)
            .map(|i| {
                let v = if rng.random_bool(0.7) { OLD } else { NEW };
                node(
                    &format!("n{i:02}"),
                    pools[rng.random_range(0..3)],
                    zones[rng.random_range(0..4)],
                    v,
                )
            })
            .collect();
        let mut pods = Vec::new();
        for i in 0..rng.random_range(0..60) {
            if nodes.is_empty() {
                break;
            }
            let on = &nodes[rng.random_range(0..nodes.len())].name;
            let app = ["web", "db", "cache"][rng.random_range(0..3)];
            let mut p = if app == "db" {
                let role = if rng.random_bool(0.3) {
                    "primary"
                } else {
                    "replica"
                };
                let labels = [("app", "db"), ("role", role)];
                pod(
                    &format!("ns/p{i}"),
                    on,
                    Some(("StatefulSet", "db")),
                    &labels,
                )
            } else {
                rs(&format!("ns/p{i}"), on, app)
            };
            if rng.random_bool(0.2) {
                p.volume_zones = Some(BTreeSet::from([zones[rng.random_range(0..3)].to_string()]));
                p.has_pvc = true;
            }
            pods.push(p);
        }
        let pdbs = vec![
            pdb(
                "ns/db",
                "db",
                None,
                Some(IntOrPercent::Int(rng.random_range(0..3))),
            ),
            pdb(
                "ns/web",
                "web",
                Some(IntOrPercent::Percent(rng.random_range(0..101))),
                None,
            ),
        ];
        let mut o = opts(rng.random_range(0..4), rng.random_range(0..3));
        if o.default_limits.max_surge + o.default_limits.max_unavailable == 0 {
            o.default_limits.max_surge = 1;
        }
        let p1 = limits(rng.random_range(1..5), rng.random_range(0..2));
        o.limits.insert("p1".into(), p1);
        let s = snap(nodes.clone(), pods, pdbs);
        let p = plan(&s, &o).unwrap_or_else(|e| panic!("round {round}: {e}"));

        let outdated: BTreeSet<&str> = nodes
            .iter()
            .filter(|n| n.kubelet_version == OLD)
            .map(|n| n.name.as_str())
            .collect();
        let mut seen = BTreeMap::new();
        for w in &p.waves {
            for n in &w.nodes {
                *seen.entry(n.as_str()).or_insert(0) += 1;
            }
        }
        assert_eq!(
            seen.keys().copied().collect::<BTreeSet<_>>(),
            outdated,
            "round {round}: every outdated node is in a wave"
        );
        assert!(
            seen.values().all(|c| *c == 1),
            "round {round}: exactly once"
        );
        assert_eq!(p.outdated.len(), outdated.len());
        for w in &p.waves {
            for pool in pools {
                let l = o.limits_for(pool);
                let surge: u32 = w
                    .surge
                    .iter()
                    .filter(|s| s.pool == pool)
                    .map(|s| s.nodes)
                    .sum();
                assert!(
                    surge <= l.max_surge,
                    "round {round}: surge {surge} > max_surge {}",
                    l.max_surge
                );
                let in_wave = w
                    .nodes
                    .iter()
                    .filter(|n| s.node(n).is_some_and(|x| x.pool == pool))
                    .count() as u32;
                assert!(
                    in_wave <= l.max_surge + l.max_unavailable,
                    "round {round}: wave too big"
                );
                for z in w.surge.iter().filter(|s| s.pool == pool) {
                    let in_zone = w
                        .nodes
                        .iter()
                        .filter(|n| {
                            s.node(n)
                                .is_some_and(|x| x.pool == pool && x.zone == z.zone)
                        })
                        .count() as u32;
                    assert!(
                        z.nodes <= in_zone && z.zone != UNKNOWN_ZONE,
                        "round {round}: surge only where nodes leave"
                    );
                }
            }
        }
        assert!(
            p.waves.windows(2).all(|w| w[0].class <= w[1].class),
            "round {round}: class order"
        );
        assert!(
            p.estimate.estimated_seconds >= p.estimate.lower_bound_seconds,
            "round {round}: estimate ≥ LB"
        );
        assert!(p.estimate.lower_bound_seconds >= p.estimate.lower_bound_phys_seconds);
        assert_eq!(
            p.waves.iter().map(|w| w.estimated_seconds).sum::<u64>(),
            p.estimate.estimated_seconds
        );
        // Deterministic.
        assert_eq!(plan(&s, &o).expect("plan"), p);
    }
}
