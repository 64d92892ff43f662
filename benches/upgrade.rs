//! Upgrade benchmark (`cargo bench --bench upgrade`): the rolling upgrade engine against the
//! kubectl-drain baseline on the same simulated topology in the same run.
//!
//! Two fresh simulators (`cluster serve-sim`, each its own process) start from the same
//! topology (`fixtures/sim/bench-300.toml`, or `UPGRADE_BENCH_TOPOLOGY`); on the first one
//! `e2e-gate upgrade apply --cloud sim --report …` replaces every node, on the second one
//! `ci/bench-upgrade-baseline.sh` does it the naive way (surge one, wait Ready, `kubectl
//! drain`, terminate; one node at a time). Durations are compared in simulated seconds
//! (both sims run at the topology's `time_scale`), with wall seconds alongside. Prints
//! figures and PASS/MISS per target of the issue; asserts nothing about timing.
//!
//! **Time scales.** The simulator compresses physics (boots, pod startups) by the topology's
//! `time_scale` but not the wall time the engine spends on its requests: at 0.01 (100× faster
//! than real) each wall second of API work counts as 100 simulated seconds, so ~4 s of
//! requests on a 2-core machine shared with the simulator weigh as much as four node boots,
//! where a real cloud boots for minutes. The engine's simulator therefore runs at
//! `UPGRADE_BENCH_ENGINE_TIME_SCALE` (default 0.1, still 10× harsher than real time); the
//! baseline's at `UPGRADE_BENCH_BASELINE_TIME_SCALE` (default: the topology's, 0.01, so its
//! ~70,000 simulated seconds take ~12 minutes, not two hours). Because the baseline's own
//! request time is then compressed more than the engine's, the ≥ 3× verdict uses the part of
//! the baseline no tool can remove (its surge waits, which do not depend on the scale); the
//! plain ratio is printed beside it.
//!
//! Knobs: `UPGRADE_BENCH_ENGINE_ARGS` (extra `upgrade apply` flags, default
//! `--max-surge 300 --max-unavailable 0`: the whole pool at once), `UPGRADE_BENCH_TARGET` (default `v1.34.1`),
//! `UPGRADE_BENCH_SKIP_BASELINE=1` (engine only), `UPGRADE_BENCH_OUT` (directory for the
//! two reports, default a temporary one).

use e2e_gate::cluster::sim::topology::{Topology, WorkloadKind};
#[path = "support/physics.rs"]
mod physics;

use physics::{facts, lower_bound, widest, window};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_e2e-gate");
const DEFAULT_ENGINE_ARGS: &str = "--max-surge 300 --max-unavailable 0";

struct Sim {
    child: Child,
    url: String,
    kubeconfig: PathBuf,
    _state: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SAFETY: SIGTERM to the child this bench spawned.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn http_get(url: &str) -> Value {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "30", url])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "GET {url}: {:?}", out);
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn metrics(sim: &Sim) -> Value {
    http_get(&format!("{}/sim/metrics", sim.url))
}

/// Every pod the topology declares: its Deployments' and StatefulSets' replicas, and one pod
/// of each DaemonSet per node. Waiting for the pods that *exist* to be Ready started the run
/// while StatefulSets were still creating theirs one at a time (1,156 of 1,186).
fn declared_pods(t: &Topology) -> u64 {
    let nodes: u64 = t
        .pools
        .iter()
        .map(|p| p.zones.len() as u64 * u64::from(p.size_per_zone))
        .sum();
    t.workloads
        .iter()
        .map(|w| match w.kind {
            WorkloadKind::DaemonSet => nodes,
            _ => u64::from(w.replicas),
        })
        .sum()
}

/// Starts a simulator from `topo` and waits until every node and every declared pod is Ready.
/// A copy of `topo` in `dir` with `time_scale` set to `scale` (the topology's own if `None`).
fn with_time_scale(topo: &Path, dir: &Path, name: &str, scale: Option<f64>) -> PathBuf {
    let Some(scale) = scale else {
        return topo.to_path_buf();
    };
    let text = std::fs::read_to_string(topo).expect("topology");
    let mut seen = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("time_scale") && !seen {
                seen = true;
                format!("time_scale = {scale}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(seen, "{} has no time_scale line", topo.display());
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, out.join("\n")).expect("topology copy");
    path
}

fn scale_of(topo: &Path) -> f64 {
    Topology::load(topo).expect("topology").sim.time_scale
}

fn env_scale(name: &str, default: Option<f64>) -> Option<f64> {
    match std::env::var(name) {
        Ok(v) => Some(
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        ),
        Err(_) => default,
    }
}

fn start_sim(topo: &Path, name: &str) -> Sim {
    let declared = declared_pods(&Topology::load(topo).expect("topology"));
    let state = tempfile::tempdir().expect("tempdir");
    let child = Command::new(BIN)
        .args(["cluster", "serve-sim", "--name", name, "--state-dir"])
        .arg(state.path())
        .arg("--topology")
        .arg(topo)
        .env("E2E_GATE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("serve-sim starts");
    let state_file = state.path().join("state.json");
    let t0 = Instant::now();
    let url = loop {
        if let Ok(t) = std::fs::read_to_string(&state_file) {
            if let Ok(v) = serde_json::from_str::<Value>(&t) {
                break v["api_url"].as_str().expect("api_url").to_string();
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "sim did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let sim = Sim {
        child,
        url,
        kubeconfig: state.path().join("kubeconfig"),
        _state: state,
    };
    loop {
        let o = metrics(&sim)["objects"].clone();
        if o["pods_ready"].as_u64().is_some_and(|p| p >= declared)
            && o["pods"] == o["pods_ready"]
            && o["nodes"] == o["nodes_ready"]
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "not ready after 300 s: {o}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    sim
}

fn sum_field(v: &Value, field: &str) -> f64 {
    v.as_object()
        .map(|m| m.values().filter_map(|x| x[field].as_f64()).sum())
        .unwrap_or(0.0)
}

/// Sim-side measures between two `/sim/metrics` documents.
struct SimSide {
    sim_seconds: f64,
    pdb_below_min_seconds: f64,
    evictions: f64,
    refused: f64,
}

fn sim_side(a: &Value, b: &Value) -> SimSide {
    SimSide {
        sim_seconds: b["sim_seconds"].as_f64().unwrap_or(0.0)
            - a["sim_seconds"].as_f64().unwrap_or(0.0),
        pdb_below_min_seconds: sum_field(&b["availability"], "seconds_below_min")
            - sum_field(&a["availability"], "seconds_below_min"),
        evictions: sum_field(&b["evictions"], "allowed") - sum_field(&a["evictions"], "allowed"),
        refused: sum_field(&b["evictions"], "refused") - sum_field(&a["evictions"], "refused"),
    }
}

const WRITE_VERBS: &[&str] = &[
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "evict",
];

fn calls(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect()
        })
        .unwrap_or_default()
}

fn writes(c: &BTreeMap<String, u64>) -> u64 {
    WRITE_VERBS
        .iter()
        .map(|v| c.get(*v).copied().unwrap_or(0))
        .sum()
}

fn fmt_calls(c: &BTreeMap<String, u64>) -> String {
    c.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let topo = std::env::var_os("UPGRADE_BENCH_TOPOLOGY")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures/sim/bench-300.toml"));
    let target = std::env::var("UPGRADE_BENCH_TARGET").unwrap_or_else(|_| "v1.34.1".into());
    let engine_args =
        std::env::var("UPGRADE_BENCH_ENGINE_ARGS").unwrap_or_else(|_| DEFAULT_ENGINE_ARGS.into());
    let skip_baseline = std::env::var("UPGRADE_BENCH_SKIP_BASELINE").is_ok_and(|v| v == "1");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = std::env::var_os("UPGRADE_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let engine_topo = with_time_scale(
        &topo,
        &out_dir,
        "engine-topology",
        env_scale("UPGRADE_BENCH_ENGINE_TIME_SCALE", Some(0.1)),
    );
    let baseline_topo = with_time_scale(
        &topo,
        &out_dir,
        "baseline-topology",
        env_scale("UPGRADE_BENCH_BASELINE_TIME_SCALE", None),
    );
    let (engine_scale, baseline_scale) = (scale_of(&engine_topo), scale_of(&baseline_topo));
    println!("topology: {}", topo.display());
    println!("engine:   upgrade apply --cloud sim --target-version {target} {engine_args}");
    println!(
        "time scales: engine {engine_scale} (1 wall s = {:.0} simulated s), baseline {baseline_scale} ({:.0})",
        1.0 / engine_scale,
        1.0 / baseline_scale
    );

    // Engine.
    let t = Instant::now();
    let sim = start_sim(&engine_topo, "bench-engine");
    println!(
        "engine sim: every node and pod Ready after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let engine_report = out_dir.join("engine-report.json");
    let m0 = metrics(&sim);
    let t = Instant::now();
    let status = Command::new(BIN)
        .args(["upgrade", "apply", "--cloud", "sim", "--kubeconfig"])
        .arg(&sim.kubeconfig)
        .args(["--target-version", &target, "--report"])
        .arg(&engine_report)
        .args(engine_args.split_whitespace())
        .env("E2E_GATE_LOG", "warn")
        .stderr(Stdio::from(
            std::fs::File::create(out_dir.join("engine.log")).expect("log"),
        ))
        .status()
        .expect("upgrade apply runs");
    let engine_wall = t.elapsed().as_secs_f64();
    let m1 = metrics(&sim);
    drop(sim);
    let er: Value = std::fs::read(&engine_report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| {
            panic!(
                "upgrade apply exited {status} without a report; see {}",
                out_dir.join("engine.log").display()
            )
        });
    let es = sim_side(&m0, &m1);
    let e_nodes = er["nodes_replaced"].as_f64().unwrap_or(0.0);
    let e_calls = calls(&er["kube_api_calls"]);
    let e_evictions = er["evictions"].as_f64().unwrap_or(0.0);
    let e_moved = er["replicas_moved"].as_f64().unwrap_or(0.0);
    let e_amp = if e_moved > 0.0 {
        e_evictions / e_moved
    } else {
        f64::NAN
    };
    let e_writes_per_node = writes(&e_calls) as f64 / e_nodes.max(1.0);
    let e_write_bound = 6.0 + e_evictions / e_nodes.max(1.0);
    let pdb_violation = er["pdb_violation_seconds"].as_f64().unwrap_or(f64::NAN);
    println!(
        "engine: exit {status}, {} of {} nodes replaced in {:.1} s wall = {:.0} s simulated",
        er["nodes_replaced"], er["nodes_total"], engine_wall, es.sim_seconds
    );

    // Baseline.
    let baseline = if skip_baseline {
        None
    } else {
        let t = Instant::now();
        let sim = start_sim(&baseline_topo, "bench-baseline");
        println!(
            "baseline sim: every node and pod Ready after {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let report = out_dir.join("baseline-report.json");
        let m0 = metrics(&sim);
        let t = Instant::now();
        let status = Command::new("bash")
            .arg(root.join("ci/bench-upgrade-baseline.sh"))
            .arg(&sim.kubeconfig)
            .arg(&target)
            .arg(&report)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(out_dir.join("baseline.log")).expect("log"),
            ))
            .status()
            .expect("baseline runs");
        let wall = t.elapsed().as_secs_f64();
        let m1 = metrics(&sim);
        drop(sim);
        assert!(
            status.success(),
            "baseline failed ({status}); see {}",
            out_dir.join("baseline.log").display()
        );
        let br: Value = serde_json::from_slice(&std::fs::read(&report).expect("baseline report"))
            .expect("json");
        Some((br, sim_side(&m0, &m1), wall))
    };

    // Table.
    println!();
    println!("| measure | engine | kubectl-drain baseline | target | |");
    println!("|---|---|---|---|---|");
    let (b_sim, b_wall) = baseline
        .as_ref()
        .map(|(_, s, w)| (s.sim_seconds, *w))
        .unwrap_or((f64::NAN, f64::NAN));
    println!(
        "| nodes replaced | {} | {} | all | |",
        er["nodes_replaced"],
        baseline
            .as_ref()
            .map_or("-".into(), |(b, _, _)| b["nodes_replaced"].to_string())
    );
    println!(
        "| duration, simulated s | {:.0} | {:.0} | | |",
        es.sim_seconds, b_sim
    );
    println!(
        "| duration, wall s | {:.1} | {:.1} | | |",
        engine_wall, b_wall
    );
    let speedup = b_sim / es.sim_seconds;
    let same_scale = engine_scale == baseline_scale;
    println!(
        "| speedup (baseline / engine){} | {speedup:.1}× | | {} | {} |",
        if same_scale {
            ""
        } else {
            ", at different time scales"
        },
        if same_scale {
            "≥ 3×"
        } else {
            "(informational)"
        },
        if same_scale {
            verdict(speedup >= 3.0)
        } else {
            ""
        }
    );
    if let Some((b, _, _)) = &baseline {
        // The part of the baseline no tool overhead can remove: each new node's boot +
        // kubelet readiness, one after the other (its measured surge waits), whatever the
        // time scale.
        let floor = b["surge_wait_sim_seconds"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| speedup vs the baseline's surge waits alone ({floor:.0} s) | {:.1}× | | ≥ 3× | {} |",
            floor / es.sim_seconds,
            verdict(floor / es.sim_seconds >= 3.0)
        );
    }
    // Efficiency against physics: bounds from the topology alone (see support/physics.rs).
    let topology = Topology::load(&topo).expect("topology");
    let (pools, pdbs) = facts(&topology, window(&engine_args));
    let at_window = lower_bound(&pools, &pdbs);
    let at_widest = widest(&pools, &pdbs);
    for (label, b, target) in [
        ("this run's window", &at_window, None),
        ("widest window", &at_widest, Some(0.8)),
    ] {
        let eff = b.seconds() / es.sim_seconds;
        println!(
            "| physical efficiency, {label} (bound {:.0} s = max(waves {:.0}, PDB chain {:.0}) / {:.0} s simulated) | {eff:.2} | {:.2} | {} | {} |",
            b.seconds(),
            b.waves,
            b.pdb_chain,
            es.sim_seconds,
            b.seconds() / b_sim,
            target.map_or("".into(), |t| format!("≥ {t}")),
            target.map_or("", |t| verdict(eff >= t))
        );
    }
    println!(
        "| pdb_violation_seconds (engine's meter, wall) | {pdb_violation:.1} | | 0 | {} |",
        verdict(pdb_violation == 0.0)
    );
    println!(
        "| PDB seconds below desiredHealthy (sim's meter, simulated) | {:.1} | {:.1} | 0 | {} |",
        es.pdb_below_min_seconds,
        baseline
            .as_ref()
            .map_or(f64::NAN, |(_, s, _)| s.pdb_below_min_seconds),
        verdict(es.pdb_below_min_seconds == 0.0)
    );
    let b_amp = baseline.as_ref().map_or(f64::NAN, |(b, _, _)| {
        b["evictions"].as_f64().unwrap_or(0.0) / b["replicas_moved"].as_f64().unwrap_or(f64::NAN)
    });
    println!(
        "| evictions / replicas moved | {e_evictions:.0} / {e_moved:.0} = {e_amp:.3} | {} | ≤ 1.05 | {} |",
        baseline.as_ref().map_or("-".into(), |(b, _, _)| format!(
            "{} / {} = {b_amp:.3}",
            b["evictions"], b["replicas_moved"]
        )),
        verdict(e_amp <= 1.05)
    );
    println!(
        "| evictions allowed / refused (sim) | {:.0} / {:.0} | {} | | |",
        es.evictions,
        es.refused,
        baseline.as_ref().map_or("-".into(), |(_, s, _)| format!(
            "{:.0} / {:.0}",
            s.evictions, s.refused
        ))
    );
    let b_calls = baseline
        .as_ref()
        .map(|(b, _, _)| calls(&b["kube_api_calls"]))
        .unwrap_or_default();
    let b_nodes = baseline
        .as_ref()
        .and_then(|(b, _, _)| b["nodes_replaced"].as_f64())
        .unwrap_or(f64::NAN);
    println!(
        "| kube writes per node (bound 6 + evicted per node) | {e_writes_per_node:.2} (bound {e_write_bound:.2}) | {:.2} | ≤ bound | {} |",
        writes(&b_calls) as f64 / b_nodes,
        verdict(e_writes_per_node <= e_write_bound)
    );
    println!(
        "| kube API calls | {} | {} | | |",
        fmt_calls(&e_calls),
        fmt_calls(&b_calls)
    );
    println!(
        "| kube LISTs per node | {:.3} | {:.3} | 0 in steady state | |",
        e_calls.get("list").copied().unwrap_or(0) as f64 / e_nodes.max(1.0),
        b_calls.get("list").copied().unwrap_or(0) as f64 / b_nodes
    );
    let cloud = calls(&er["cloud_api_calls"]);
    println!(
        "| cloud calls (per node) | {} ({:.2}) | | ≤ 5 per node | {} |",
        fmt_calls(&cloud),
        cloud.values().sum::<u64>() as f64 / e_nodes.max(1.0),
        verdict(cloud.values().sum::<u64>() as f64 / e_nodes.max(1.0) <= 5.0)
    );
    println!(
        "| forced actions / blocked nodes | {} / {} | | 0 / 0 | |",
        er["forced_actions"],
        er["blocked_nodes"].as_array().map_or(0, Vec::len)
    );
    if let Some((b, _, _)) = &baseline {
        println!(
            "\nbaseline split (simulated s): surge waits {:.0}, drains {:.0} (kubectl drain {:.1} s wall in all), terminates {:.0}",
            b["surge_wait_sim_seconds"].as_f64().unwrap_or(0.0),
            b["drain_sim_seconds"].as_f64().unwrap_or(0.0),
            b["kubectl_drain_wall_seconds"].as_f64().unwrap_or(0.0),
            b["terminate_sim_seconds"].as_f64().unwrap_or(0.0)
        );
    }
    println!("reports: {}", out_dir.display());
    if std::env::var_os("UPGRADE_BENCH_OUT").is_none() {
        // Keep them when asked for; the temporary directory goes away now.
        let _ = std::fs::remove_dir_all(tmp.path());
    }
}
