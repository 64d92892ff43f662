//! AWS benchmark (`cargo bench --bench upgrade_aws`): `upgrade apply --cloud aws` with default
//! flags on 60 nodes in 3 zones — moto's server as AWS (`ci/install-moto.sh`), the groups made
//! by `ci/aws-rig/cluster.py`, and a simulated cluster whose nodes mirror the groups'
//! instances (boot 60 s, kubelet 15 s, load balancer 10 s, simulated).
//!
//! Every figure comes from outside the engine:
//! - **AWS calls** are counted on the wire by a proxy between the engine and moto, from each
//!   request's `Action=` (the mirror's own reads go to moto directly and are not counted).
//!   Reads are `Describe*`; everything else is a write.
//! - **Nodes replaced, evictions, refusals, PDB time below minimum** come from the cluster and
//!   the simulator's own counters.
//! - **Efficiency** is the lower bound of `support/physics.rs` (topology facts and the window
//!   the flags allow, nothing timed on the run) over the simulated seconds the run took.
//!
//! Prints the figures and PASS/MISS per target; asserts nothing about timing. Knobs:
//! `UPGRADE_AWS_BENCH_ARGS` (extra `upgrade apply` flags), `UPGRADE_AWS_BENCH_TIME_SCALE`
//! (default: the topology's 0.05, 1 wall s = 20 simulated s).

#[path = "../tests/common/aws_mirror.rs"]
mod aws_mirror;
#[path = "support/physics.rs"]
#[allow(dead_code)] // `widest` is the other benchmark's
mod physics;

use aws_mirror::AwsMirror;
use e2e_gate::cluster::sim::{SimCluster, SimOptions, Topology};
use physics::{facts, lower_bound, window};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_e2e-gate");
const TARGET: &str = "v1.34.1";
const CLUSTER: &str = "bench";
const REGION: &str = "us-east-1";

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// Counts the `Action=NAME` of every request that passes from the engine to moto.
fn count_actions(tail: &mut Vec<u8>, chunk: &[u8], counts: &Counts) {
    tail.extend_from_slice(chunk);
    let needle = b"Action=";
    let mut keep_from = tail.len().saturating_sub(needle.len());
    let mut i = 0;
    while let Some(pos) = tail[i..].windows(needle.len()).position(|w| w == needle) {
        let start = i + pos + needle.len();
        let len = tail[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if start + len == tail.len() {
            // The name may go on in the next chunk.
            keep_from = i + pos;
            break;
        }
        let name = String::from_utf8_lossy(&tail[start..start + len]).into_owned();
        *counts.lock().unwrap().entry(name).or_default() += 1;
        i = start + len;
        keep_from = keep_from.max(i);
    }
    tail.drain(..keep_from.min(tail.len()));
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`, counting actions.
async fn counting_proxy(upstream: u16, counts: Counts) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut tail = Vec::new();
                    loop {
                        match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                count_actions(&mut tail, &buf[..n], &counts);
                                if sw.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    port
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn sum_field(v: &Value, field: &str) -> f64 {
    v.as_object()
        .map(|m| m.values().filter_map(|x| x[field].as_f64()).sum())
        .unwrap_or(0.0)
}

async fn metrics(client: &kube::Client) -> Value {
    let req = http::Request::get("/sim/metrics").body(Vec::new()).unwrap();
    client.request(req).await.expect("metrics")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/moto-venv/bin");
    if !venv.join("moto_server").exists() {
        println!("SKIP: moto is not installed; run `bash ci/install-moto.sh` first");
        return;
    }
    let topo_path = root.join("fixtures/sim/bench-aws-60.toml");
    let mut topology = Topology::load(&topo_path).expect("topology");
    if let Ok(s) = std::env::var("UPGRADE_AWS_BENCH_TIME_SCALE") {
        topology.sim.time_scale = s.parse().expect("UPGRADE_AWS_BENCH_TIME_SCALE: a number");
    }
    let extra = std::env::var("UPGRADE_AWS_BENCH_ARGS").unwrap_or_default();

    // moto, and the groups.
    let moto_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _moto = Moto(
        Command::new(venv.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server"),
    );
    let moto_url = format!("http://127.0.0.1:{moto_port}");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", moto_port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rig = |args: &[&str]| -> Value {
        let out = Command::new(venv.join("python"))
            .arg(root.join("ci/aws-rig/cluster.py"))
            .args(args)
            .args(["--endpoint", &moto_url])
            .output()
            .expect("rig");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let made = rig(&[
        "create",
        "--cluster",
        CLUSTER,
        "--topology",
        topo_path.to_str().unwrap(),
        "--target-version",
        TARGET,
        "--lb-pool",
        "workers",
    ]);
    let before = rig(&["dump"]);

    // The mirrored cluster, ready.
    let sim = SimCluster::start(
        topology.clone(),
        SimOptions {
            mirror: Some(
                AwsMirror {
                    endpoint_url: moto_url.clone(),
                    region: REGION.into(),
                    cluster: CLUSTER.into(),
                    pool_tag: "e2e-gate.io/pool".into(),
                    versions: serde_json::from_value(made["versions"].clone()).unwrap(),
                }
                .source(),
            ),
            ..SimOptions::default()
        },
    )
    .await
    .expect("sim");
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig: PathBuf = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig("bench")).unwrap();
    let t0 = Instant::now();
    loop {
        let o = metrics(&client).await["objects"].clone();
        if o["nodes"].as_u64() == Some(60)
            && o["nodes"] == o["nodes_ready"]
            && o["pods"] == o["pods_ready"]
            && o["pods"].as_u64().is_some_and(|p| p >= 60 + 48)
        {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "not ready: {o}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The run, through the counting proxy.
    let counts: Counts = Arc::default();
    let proxy = counting_proxy(moto_port, counts.clone()).await;
    let report = dir.path().join("report.json");
    let m0 = metrics(&client).await;
    let wall = Instant::now();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "upgrade",
        "apply",
        "--cloud",
        "aws",
        "--aws-cluster",
        CLUSTER,
    ])
    .args(["--aws-region", REGION, "--aws-endpoint-url"])
    .arg(format!("http://127.0.0.1:{proxy}"))
    .arg("--kubeconfig")
    .arg(&kubeconfig)
    .args(["--target-version", TARGET, "--report"])
    .arg(&report)
    .args(extra.split_whitespace())
    .env("AWS_ACCESS_KEY_ID", "bench")
    .env("AWS_SECRET_ACCESS_KEY", "bench")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env("E2E_GATE_LOG", "warn")
    .stderr(Stdio::from(
        std::fs::File::create(dir.path().join("engine.log")).unwrap(),
    ));
    let status = cmd.status().await.expect("upgrade apply");
    let wall = wall.elapsed().as_secs_f64();
    let m1 = metrics(&client).await;
    let after = rig(&["dump"]);
    if !status.success() {
        println!(
            "upgrade apply exited {status}:\n{}",
            std::fs::read_to_string(dir.path().join("engine.log")).unwrap_or_default()
        );
    }

    // Independent figures.
    let nodes: Vec<Value> = {
        let req = http::Request::get("/api/v1/nodes")
            .body(Vec::new())
            .unwrap();
        let v: Value = client.request(req).await.unwrap();
        v["items"].as_array().unwrap().clone()
    };
    let replaced = nodes
        .iter()
        .filter(|n| n["status"]["nodeInfo"]["kubeletVersion"] == TARGET)
        .count() as f64;
    let sim_seconds = m1["sim_seconds"].as_f64().unwrap() - m0["sim_seconds"].as_f64().unwrap();
    let allowed = sum_field(&m1["evictions"], "allowed") - sum_field(&m0["evictions"], "allowed");
    let refused = sum_field(&m1["evictions"], "refused") - sum_field(&m0["evictions"], "refused");
    let below = sum_field(&m1["availability"], "seconds_below_min")
        - sum_field(&m0["availability"], "seconds_below_min");
    let counts = counts.lock().unwrap().clone();
    let reads: u64 = counts
        .iter()
        .filter(|(k, _)| k.starts_with("Describe"))
        .map(|(_, v)| v)
        .sum();
    let writes: u64 = counts
        .iter()
        .filter(|(k, _)| !k.starts_with("Describe"))
        .map(|(_, v)| v)
        .sum();
    let per = |n: u64| n as f64 / replaced.max(1.0);
    let (pools, pdbs) = facts(&topology, window(&extra));
    let bound = lower_bound(&pools, &pdbs);
    let efficiency = bound.seconds() / sim_seconds;
    let restored = ["desired", "max", "suspended", "tags"].iter().all(|k| {
        before
            .as_object()
            .unwrap()
            .iter()
            .all(|(g, v)| after[g][*k] == v[*k])
    });
    let engine_report: Value = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);

    println!(
        "topology: {} (time scale {})",
        topo_path.display(),
        topology.sim.time_scale
    );
    println!(
        "engine:   upgrade apply --cloud aws --target-version {TARGET} {extra} (exit {status})"
    );
    println!("AWS calls on the wire: {counts:?}");
    println!(
        "engine's own count (report): {}",
        engine_report["cloud_api_calls"]
    );
    println!();
    println!("| measure | value | target | |");
    println!("|---|---|---|---|");
    println!(
        "| nodes replaced (at the target, from the cluster) | {replaced:.0} of 60 | 60 | {} |",
        verdict(replaced == 60.0)
    );
    println!("| duration | {sim_seconds:.0} s simulated, {wall:.1} s wall | | |");
    println!(
        "| AWS reads per replaced node | {:.2} | ≤ 3 | {} |",
        per(reads),
        verdict(per(reads) <= 3.0)
    );
    println!(
        "| AWS writes per replaced node | {:.2} | ≤ 2 | {} |",
        per(writes),
        verdict(per(writes) <= 2.0)
    );
    println!(
        "| efficiency (bound {:.0} s = max(waves {:.0}, PDB chain {:.0}) / {sim_seconds:.0} s) | {efficiency:.2} | ≥ 0.8 | {} |",
        bound.seconds(),
        bound.waves,
        bound.pdb_chain,
        verdict(efficiency >= 0.8)
    );
    println!(
        "| evictions allowed / refused | {allowed:.0} / {refused:.0} | 0 refused | {} |",
        verdict(refused == 0.0)
    );
    println!(
        "| seconds below any PDB minimum | {below:.1} | 0 | {} |",
        verdict(below == 0.0)
    );
    println!(
        "| groups' sizes, max sizes, processes, tags restored | {restored} | true | {} |",
        verdict(restored)
    );
    sim.shutdown().await;
}
