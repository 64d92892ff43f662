//! The real `kubectl` against the embedded simulated cluster: get nodes, get pods
//! -A -o wide, cordon, uncordon and drain — which waits while a PDB forbids an
//! eviction (429, "will retry after 5s") and finishes once the replacement pod is
//! Ready on another node. Skips with a message when kubectl is not installed
//! (`ci/install-kubectl.sh` installs it).

mod common;

use e2e_gate::cluster::sim::{SimCluster, SimOptions, Topology};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOPO: &str = r#"
[sim]
time_scale = 1.0
pod_startup_seconds = 3

[[pools]]
name = "workers"
zones = ["zone-a", "zone-b"]
size_per_zone = 1
kubelet_version = "v1.33.5"

[[workloads]]
name = "web"
kind = "Deployment"
replicas = 4
spread = "hostname"
pdb = { max_unavailable = 1 }

[[workloads]]
name = "agent"
namespace = "kube-system"
kind = "DaemonSet"
"#;

struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> (bool, String) {
        let out = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .output()
            .await
            .expect("run kubectl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
    async fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{text}");
        text
    }
}

fn kubectl_available() -> bool {
    let found = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    common::require(found, "kubectl", "run ci/install-kubectl.sh")
}

async fn start() -> (SimCluster, Kubectl) {
    let topo = Topology::parse(TOPO, Path::new("kubectl.toml")).unwrap();
    let sim = SimCluster::start(topo, SimOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig("sim")).unwrap();
    let k = Kubectl {
        kubeconfig,
        cache: dir.path().join("cache"),
        _dir: dir,
    };
    (sim, k)
}

async fn wait_all_running(k: &Kubectl, n: usize) {
    let start = Instant::now();
    loop {
        let out = k.ok(&["get", "pods", "-A", "--no-headers"]).await;
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() == n
            && lines
                .iter()
                .all(|l| l.contains("1/1") && l.contains("Running"))
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "pods not ready:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn kubectl_get_cordon_uncordon() {
    if !kubectl_available() {
        return;
    }
    let (sim, k) = start().await;
    let nodes = k.ok(&["get", "nodes"]).await;
    assert!(nodes.starts_with("NAME"), "{nodes}");
    assert!(
        nodes.contains("workers-zone-a-00001")
            && nodes.contains("Ready")
            && nodes.contains("v1.33.5"),
        "{nodes}"
    );
    wait_all_running(&k, 6).await;
    let wide = k.ok(&["get", "pods", "-A", "-o", "wide"]).await;
    for col in ["NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE"] {
        assert!(wide.lines().next().unwrap().contains(col), "{wide}");
    }
    assert!(
        wide.contains("kube-system") && wide.contains("workers-zone-b-00002"),
        "{wide}"
    );
    let out = k.ok(&["cordon", "workers-zone-a-00001"]).await;
    assert!(out.contains("node/workers-zone-a-00001 cordoned"), "{out}");
    let nodes = k.ok(&["get", "nodes"]).await;
    assert!(nodes.contains("Ready,SchedulingDisabled"), "{nodes}");
    let out = k.ok(&["uncordon", "workers-zone-a-00001"]).await;
    assert!(out.contains("uncordoned"), "{out}");
    let json = k
        .ok(&["get", "node", "workers-zone-a-00001", "-o", "json"])
        .await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["spec"].get("unschedulable").is_none(), "{json}");
    sim.shutdown().await;
}

#[tokio::test]
async fn kubectl_drain_waits_for_the_pdb_and_finishes() {
    if !kubectl_available() {
        return;
    }
    let (sim, k) = start().await;
    wait_all_running(&k, 6).await;
    let started = Instant::now();
    let (ok, out) = k
        .run(&[
            "drain",
            "workers-zone-a-00001",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=60s",
        ])
        .await;
    let took = started.elapsed();
    assert!(ok, "drain failed:\n{out}");
    assert!(
        out.contains("would violate the pod's disruption budget"),
        "drain never hit the PDB:\n{out}"
    );
    assert!(out.contains("will retry after 5s"), "{out}");
    assert!(out.contains("node/workers-zone-a-00001 drained"), "{out}");
    assert!(
        took >= Duration::from_secs(4),
        "drain did not wait for the PDB ({took:?}):\n{out}"
    );
    // All web pods now run on zone-b and are Ready; the DaemonSet pod stays.
    let pods = k.ok(&["get", "pods", "-o", "wide", "--no-headers"]).await;
    let web: Vec<&str> = pods.lines().filter(|l| l.starts_with("web-")).collect();
    assert_eq!(web.len(), 4, "{pods}");
    assert!(
        web.iter().all(|l| l.contains("workers-zone-b-00002")),
        "{pods}"
    );
    // The PDB was never violated.
    let m = sim.sim().state.lock().metrics.clone();
    assert_eq!(
        m.availability["default/web"].seconds_below_min, 0.0,
        "{m:?}"
    );
    assert_eq!(m.evictions["default/web"].allowed, 2);
    assert!(m.evictions["default/web"].refused >= 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn kubectl_apply_scale_delete() {
    if !kubectl_available() {
        return;
    }
    let (sim, k) = start().await;
    let manifest = k._dir.path().join("deploy.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: nginx\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: nginx}\n  template:\n    metadata:\n      labels: {app: nginx}\n    spec:\n      containers:\n      - name: nginx\n        image: nginx\n",
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    // The sim serves no OpenAPI document, so client-side validation is off.
    let out = k.ok(&["apply", "--validate=false", "-f", m]).await;
    assert!(out.contains("deployment.apps/nginx created"), "{out}");
    let out = k
        .ok(&["scale", "deployment", "nginx", "--replicas=3"])
        .await;
    assert!(out.contains("deployment.apps/nginx scaled"), "{out}");
    let start = Instant::now();
    loop {
        let out = k.ok(&["get", "deployment", "nginx", "--no-headers"]).await;
        if out.contains("3/3") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = k.ok(&["delete", "deployment", "nginx"]).await;
    assert!(out.contains("deleted"), "{out}");
    // Typed `kubectl create <kind>` sends protobuf: refused with a clear 415.
    let (ok, out) = k.run(&["create", "namespace", "foo"]).await;
    assert!(!ok && out.contains("JSON request bodies only"), "{out}");
    sim.shutdown().await;
}
