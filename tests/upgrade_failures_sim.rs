//! `upgrade apply` when things go wrong, through the real binary against the embedded
//! simulated cluster: a pool whose new nodes never become Ready, a PDB tightened to
//! `minAvailable` = replicas while the upgrade runs, and an `apply` killed with SIGKILL at
//! random moments and started again.

mod common;

use common::sim::{nodes, start, Sim};
use e2e_gate::upgrade::pool::NodePool;
use e2e_gate::upgrade::sim_pool::SimNodePool;
use e2e_gate::upgrade::snapshot::NodeInfo;
use e2e_gate::upgrade::state::{self, is_marked, NodePhase, LEASE_NAME, OUTDATED_TAINT_KEY};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, Patch, PatchParams};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TARGET: &str = "v1.34.0";

async fn lease(client: &kube::Client) -> Option<Lease> {
    Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get_opt(LEASE_NAME)
        .await
        .expect("lease")
}

/// `e2e-gate upgrade apply --cloud sim` against the sim, with `extra` flags.
fn apply(s: &Sim, report: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_e2e-gate"));
    c.args(["upgrade", "apply", "--cloud", "sim", "--kubeconfig"])
        .arg(&s.kubeconfig)
        .args(["--target-version", TARGET, "--format", "json", "--report"])
        .arg(report)
        .args(extra)
        .env("E2E_GATE_LOG", "warn");
    c
}

/// Spawns `cmd` with stderr read line by line, each line stamped with when it arrived.
fn spawn_with_lines(mut cmd: Command) -> (Child, mpsc::Receiver<(Instant, String)>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn e2e-gate");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("e2e-gate did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report JSON")
}

/// New nodes of one pool never pass the readiness gate: after `--new-node-timeout` the
/// pool stops with a report naming the failing checks, its old nodes keep serving (never
/// cordoned), the healthy pool is still upgraded, and the run fails. The next apply
/// retries without surging a second instance; abort then removes every marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_whose_new_nodes_never_become_ready_stops_and_its_old_nodes_keep_serving() {
    let s = start("test-never-ready.toml").await;
    let sizes_before = desired_sizes(&s).await;
    let report = s.dir.path().join("report.json");
    let flags = ["--new-node-timeout", "3s", "--lease-duration", "2s"];
    let out = tokio::task::spawn_blocking({
        let mut c = apply(&s, &report, &flags);
        move || c.output().expect("runs")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let json = read_report(&report);
    assert_eq!(
        json["stopped_pools"],
        serde_json::json!(["stuck"]),
        "{json}"
    );
    assert_eq!(
        json["nodes_replaced"], 2,
        "the healthy pool is upgraded: {json}"
    );
    assert_eq!(json["nodes_total"], 4, "{json}");
    let blocked = json["blocked_nodes"].as_array().expect("blocked_nodes");
    assert!(!blocked.is_empty(), "{json}");
    for b in blocked {
        let (node, reason) = (b["node"].as_str().unwrap(), b["reason"].as_str().unwrap());
        assert!(node.starts_with("stuck-"), "{json}");
        assert!(
            reason.contains("NodeReady is not True")
                && reason.contains("pool stuck stopped")
                && reason.contains("keeps serving"),
            "the reason names the failing checks: {reason}"
        );
    }
    assert!(stderr.contains("stopped pool(s): stuck"), "{stderr}");
    let events = Api::<Event>::namespaced(s.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("events");
    for b in blocked {
        assert!(
            events.items.iter().any(|e| {
                e.reason.as_deref() == Some("UpgradeReplacementFailed")
                    && e.involved_object.name.as_deref() == b["node"].as_str()
            }),
            "Warning Event for {b}"
        );
    }
    assert_eq!(json["evictions"], json["replicas_moved"]);

    let all = nodes(&s.client).await;
    let stuck_old: Vec<&NodeInfo> = all
        .iter()
        .filter(|n| n.pool == "stuck" && n.kubelet_version != TARGET)
        .collect();
    assert_eq!(stuck_old.len(), 2, "old nodes of the stopped pool stay");
    let mut failed = 0;
    for n in &stuck_old {
        assert!(n.ready && !n.unschedulable, "{} keeps serving", n.name);
        match state::decode(n).expect("markers") {
            Some(m) => {
                assert_eq!(m.phase, NodePhase::ReplacementFailed, "{}", n.name);
                failed += 1;
            }
            None => assert!(!is_marked(n), "never-started node unmarked: {n:?}"),
        }
    }
    assert_eq!(failed, blocked.len());
    assert!(all
        .iter()
        .filter(|n| n.pool == "workers")
        .all(|n| n.kubelet_version == TARGET && !is_marked(n)));
    // The Lease stays, released, with the base capacity for the next run.
    let l = lease(&s.client)
        .await
        .expect("lease kept while nodes stay marked");
    assert!(l.spec.and_then(|s| s.holder_identity).is_none(), "released");
    let pool = SimNodePool::new(s.client.clone());
    let stuck_instances = pool.instances("stuck").await.expect("instances").len();
    assert_eq!(
        stuck_instances,
        2 + failed,
        "one surge instance per failed node"
    );

    // The next apply retries the failed replacement (still never Ready): no second surge.
    let report2 = s.dir.path().join("report2.json");
    let out = tokio::task::spawn_blocking({
        let mut c = apply(&s, &report2, &flags);
        move || c.output().expect("runs")
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        read_report(&report2)["stopped_pools"],
        serde_json::json!(["stuck"])
    );
    assert_eq!(
        pool.instances("stuck").await.expect("instances").len(),
        stuck_instances,
        "a retry reuses the surge instance"
    );

    // abort without a cloud removes every marker but keeps the sizes before the run on the
    // Lease (regression: it deleted them, and the next apply took the surged size as its base).
    let abort = |cloud: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_e2e-gate"));
        c.args(["upgrade", "abort", "--kubeconfig"])
            .arg(&s.kubeconfig);
        if cloud {
            c.args(["--cloud", "sim"]);
        }
        c.output().expect("abort runs")
    };
    let out = abort(false);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(nodes(&s.client).await.iter().all(|n| !is_marked(n)));
    let kept = lease(&s.client)
        .await
        .expect("the Lease keeps the run-wide state");
    let annotations = kept.metadata.annotations.unwrap_or_default();
    assert!(
        annotations.contains_key("upgrade.e2e-gate.io/base-capacity"),
        "{annotations:?}"
    );
    assert_ne!(
        desired_sizes(&s).await,
        sizes_before,
        "the surge instance is still there"
    );
    // abort --cloud puts every pool back to its size before the run, and then the Lease goes.
    let out = abort(true);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("desired size back to"),
        "{out:?}"
    );
    assert_eq!(desired_sizes(&s).await, sizes_before);
    assert!(lease(&s.client).await.is_none());
    s.sim.shutdown().await;
}

/// Every pool's desired size per zone, as the cloud reports it.
async fn desired_sizes(
    s: &Sim,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, u32>> {
    SimNodePool::new(s.client.clone())
        .groups()
        .await
        .expect("groups")
        .into_iter()
        .map(|g| (g.name, g.desired_per_zone))
        .collect()
}

/// A PDB tightened to `minAvailable` = replicas after the plan was made: the drain that
/// meets it is reported within 10 s (not after the 5-minute stuck deadline), naming the
/// PDB; per the policy the node is then left cordoned, nothing is forced, the run fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdb_tightened_during_apply_is_reported_within_10s_and_left_cordoned() {
    let s = start("test-3az.toml").await;
    let report = s.dir.path().join("report.json");
    let (mut child, lines) = spawn_with_lines(apply(
        &s,
        &report,
        &["--stuck-leave-after", "3s", "--lease-duration", "2s"],
    ));
    // The plan had no blocker; the apply loop is running.
    let mut seen = Vec::new();
    loop {
        let (_, l) = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no progress line: {seen:#?}"));
        let started = l.starts_with("upgrade:");
        seen.push(l);
        if started {
            break;
        }
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(s.client.clone(), "default");
    let tighten = serde_json::json!({"spec": {"minAvailable": 3, "maxUnavailable": null}});
    pdbs.patch("db", &PatchParams::default(), &Patch::Merge(&tighten))
        .await
        .expect("tighten PDB default/db");
    let tightened = Instant::now();
    let reported = loop {
        let (at, l) = lines
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("never reported: {seen:#?}"));
        let hit = l.contains("PDB default/db allows no disruption");
        seen.push(l);
        if hit {
            break at;
        }
    };
    let after = reported.duration_since(tightened);
    assert!(after < Duration::from_secs(10), "reported after {after:?}");
    let code = wait_exit(&mut child, Duration::from_secs(60));
    let rest: Vec<String> = lines.try_iter().map(|(_, l)| l).collect();
    assert_eq!(code, 1, "{seen:#?}\n{rest:#?}");
    let json = read_report(&report);
    assert_eq!(json["forced_actions"], 0, "{json}");
    let blocked = json["blocked_nodes"].as_array().expect("blocked_nodes");
    assert_eq!(blocked.len(), 1, "{json}");
    let reason = blocked[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("left cordoned") && reason.contains("PDB default/db"),
        "{reason}"
    );
    let node = blocked[0]["node"].as_str().expect("node").to_string();
    let n = nodes(&s.client)
        .await
        .into_iter()
        .find(|n| n.name == node)
        .expect("blocked node still there");
    assert!(n.unschedulable, "left cordoned");
    // `kubectl describe node` shows why: a Warning Event per rung of the ladder.
    let events = Api::<Event>::namespaced(s.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("events");
    let on_node: Vec<(&str, &str)> = events
        .items
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(node.as_str()))
        .map(|e| {
            (
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or(""),
            )
        })
        .collect();
    for reason in ["UpgradeDrainStuck", "UpgradeLeftCordoned"] {
        assert!(
            on_node
                .iter()
                .any(|(r, m)| *r == reason && m.contains("PDB default/db")),
            "{reason} Event on {node}: {on_node:#?}"
        );
    }
    // Its db pod is still there: nothing bypassed the PDB.
    let pods = Api::<Pod>::all(s.client.clone())
        .list(&ListParams::default())
        .await
        .expect("pods");
    assert!(pods.items.iter().any(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
            && p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("db-"))
    }));
    s.sim.shutdown().await;
}

/// `apply` killed with SIGKILL at random moments (seed printed; set E2E_GATE_TEST_SEED to
/// replay) and started again finishes the upgrade with every workload replica moved once,
/// no instance surged twice, no PDB below its minimum, and no marker or Lease left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_killed_at_random_points_resumes_without_draining_twice() {
    let seed: u64 = std::env::var("E2E_GATE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    eprintln!("seed {seed} (E2E_GATE_TEST_SEED={seed} replays the kill points)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let s = start("test-3az.toml").await;
    let report = s.dir.path().join("report.json");
    let flags = ["--lease-duration", "1s", "--timeout", "2m"];
    let mut kills = Vec::new();
    let mut finished = None;
    for _ in 0..6 {
        let (mut child, lines) = spawn_with_lines(apply(&s, &report, &flags));
        let at = Duration::from_millis(rng.random_range(150..2500));
        let deadline = Instant::now() + at;
        while Instant::now() < deadline {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            let out: Vec<String> = lines.try_iter().map(|(_, l)| l).collect();
            finished = Some((status.code(), out));
            break;
        }
        // SIGKILL: no cleanup of any kind runs.
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        kills.push(at);
    }
    let (code, out) = match finished {
        Some(f) => f,
        None => {
            let (mut child, lines) = spawn_with_lines(apply(&s, &report, &flags));
            let code = wait_exit(&mut child, Duration::from_secs(150));
            (Some(code), lines.try_iter().map(|(_, l)| l).collect())
        }
    };
    eprintln!("killed after {kills:?}");
    assert_eq!(code, Some(0), "seed {seed}, kills {kills:?}: {out:#?}");

    let all = nodes(&s.client).await;
    assert_eq!(all.len(), 3, "seed {seed}: {all:#?}");
    for n in &all {
        assert_eq!(n.kubelet_version, TARGET, "seed {seed}");
        assert!(!is_marked(n), "seed {seed}: markers left on {n:?}");
        assert!(
            !n.taints.iter().any(|t| t.key == OUTDATED_TAINT_KEY),
            "seed {seed}: taint left on {}",
            n.name
        );
        assert!(!n.unschedulable, "seed {seed}: {} cordoned", n.name);
    }
    assert!(lease(&s.client).await.is_none(), "seed {seed}: Lease left");
    // One new instance per old one: nothing surged twice.
    let pool = SimNodePool::new(s.client.clone());
    let inst = pool.instances("workers").await.expect("instances");
    assert_eq!(inst.len(), 6, "seed {seed}: {inst:#?}");
    // Every workload replica moved exactly once (3 web + 3 db), never from a new node,
    // and no PDB ever went below its minimum.
    common::sim::assert_moved_once_and_no_pdb_below_min(&s.client, 6, &format!("seed {seed}"))
        .await;
    s.sim.shutdown().await;
}

/// Regression: an `apply` that failed kept its Lease, so the next run waited out the Lease of a
/// process that was gone (30 s by default). A failed run now lets go of it as it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_lets_go_of_the_lease_so_the_next_run_starts_at_once() {
    let s = start("test-3az.toml").await;
    let report = s.dir.path().join("report.json");
    let out = tokio::task::spawn_blocking({
        let mut c = apply(&s, &report, &["--timeout", "300ms"]);
        move || c.output().expect("runs")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the deadline fails the run: {stderr}"
    );
    assert!(stderr.contains("did not finish within"), "{stderr}");
    // The report is written on failure too (regression: missing after a failed upgrade).
    let json = read_report(&report);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not finish within")),
        "{json}"
    );
    assert_eq!(json["nodes_total"], 3, "{json}");
    let held = lease(&s.client)
        .await
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity);
    assert_eq!(held, None, "nobody holds the Lease after the failure");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let mut c = apply(&s, &report, &[]);
        move || c.output().expect("runs")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("lease held"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    s.sim.shutdown().await;
}
