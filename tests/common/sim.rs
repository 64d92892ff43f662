//! An embedded simulated cluster for the upgrade tests: started from `fixtures/sim/<file>`,
//! a kubeconfig for the binary, and the plain reads the tests observe it with.

use e2e_gate::cluster::sim::{SimCluster, SimOptions, Topology};
use e2e_gate::upgrade::snapshot::NodeInfo;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A running simulated cluster, a client of it, and a kubeconfig file for the binary.
pub struct Sim {
    pub sim: SimCluster,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Starts the topology `fixtures/sim/<file>` and waits until every node and pod is Ready.
pub async fn start(file: &str) -> Sim {
    start_with(file, SimOptions::default()).await
}

/// [`start`] with options (a mirrored cloud, say).
pub async fn start_with(file: &str, opts: SimOptions) -> Sim {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sim")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("topology file");
    let t = Topology::parse(&text, &path).expect("topology");
    let sim = SimCluster::start(t, opts).await.expect("sim starts");
    let mut config = kube::Config::new(sim.url().parse().expect("url"));
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig("sim")).expect("write kubeconfig");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pods = Api::<Pod>::all(client.clone())
            .list(&ListParams::default())
            .await
            .expect("pods");
        let ready = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        };
        if !pods.items.is_empty()
            && pods.items.iter().all(ready)
            && nodes(&client).await.iter().all(|n| n.ready)
        {
            break;
        }
        assert!(Instant::now() < deadline, "cluster never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Sim {
        sim,
        client,
        kubeconfig,
        dir,
    }
}

/// Every Node, as the planner reads it.
pub async fn nodes(client: &kube::Client) -> Vec<NodeInfo> {
    Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes")
        .items
        .iter()
        .map(|n| NodeInfo::from_k8s(n).expect("node"))
        .collect()
}

/// The simulator's own counts (`/sim/metrics`): evictions per workload, PDB availability.
pub async fn metrics(client: &kube::Client) -> serde_json::Value {
    let req = http::Request::get("/sim/metrics")
        .body(Vec::new())
        .expect("request");
    client.request(req).await.expect("metrics")
}

/// As the simulator counted them: exactly `replicas` evictions were allowed (each replica moved
/// once) and no PDB spent a moment below its minimum. `what` labels the failure (a seed).
pub async fn assert_moved_once_and_no_pdb_below_min(
    client: &kube::Client,
    replicas: u64,
    what: &str,
) {
    let m = metrics(client).await;
    let allowed: u64 = m["evictions"]
        .as_object()
        .expect("evictions")
        .values()
        .map(|e| e["allowed"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        allowed, replicas,
        "{what}: each replica moved once: {}",
        m["evictions"]
    );
    for (pdb, a) in m["availability"].as_object().expect("availability") {
        assert_eq!(
            a["seconds_below_min"].as_f64(),
            Some(0.0),
            "{what}: PDB {pdb} below its minimum: {a}"
        );
    }
}
