//! `upgrade apply|abort --cloud aws` through the real binary and the official AWS SDK against
//! moto's server, with a simulated cluster whose nodes mirror the groups' instances (boot,
//! NotReady, Ready; `aws:///ZONE/ID` provider ids; pods; gone with their instance). Default
//! flags, two nodes per zone, per-zone groups whose MaxSize leaves no room for a surge, one
//! group over three zones (an EKS managed node group: moto puts each launch in a random
//! zone), one group that had AZRebalance suspended before the run, a target group, and an
//! untagged bastion group. What changed in AWS is read with boto3 (`ci/aws-rig/cluster.py dump`),
//! availability from the simulator's own counts: neither is e2e-gate's code.

mod common;

use common::aws::{Moto, REGION};
use common::aws_mirror::AwsMirror;
use common::sim::{nodes, start_with, Sim};
use e2e_gate::cluster::sim::SimOptions;
use e2e_gate::upgrade::state::{is_marked, LEASE_NAME};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TARGET: &str = "v1.34.0";
const CLUSTER: &str = "rig";

/// The rig's groups for `topology`, and a simulated cluster mirroring them.
async fn rig(moto: &Moto, topology: &str, extra: &[&str]) -> Sim {
    let path = format!("{}/fixtures/sim/{topology}", env!("CARGO_MANIFEST_DIR"));
    let mut args = vec![
        "create",
        "--cluster",
        CLUSTER,
        "--topology",
        &path,
        "--target-version",
        TARGET,
        "--multi-zone-pool",
        "general",
    ];
    args.extend_from_slice(extra);
    let made = moto.rig(&args);
    let versions: BTreeMap<String, String> =
        serde_json::from_value(made["versions"].clone()).expect("versions");
    start_with(
        topology,
        SimOptions {
            mirror: Some(
                AwsMirror {
                    endpoint_url: moto.url.clone(),
                    region: REGION.into(),
                    cluster: CLUSTER.into(),
                    pool_tag: "e2e-gate.io/pool".into(),
                    versions,
                }
                .source(),
            ),
            ..SimOptions::default()
        },
    )
    .await
}

fn command(s: &Sim, moto: &Moto, verb: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_e2e-gate"));
    c.args(["upgrade", verb, "--cloud", "aws", "--aws-cluster", CLUSTER])
        .args(["--aws-endpoint-url", &moto.url, "--aws-region", REGION])
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(extra)
        // The standard chain finds these first; no profile or instance metadata is asked.
        .env("AWS_ACCESS_KEY_ID", "rig")
        .env("AWS_SECRET_ACCESS_KEY", "rig-secret")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("E2E_GATE_LOG", "warn");
    if verb != "abort" {
        c.args(["--target-version", TARGET]);
    }
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run e2e-gate")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The node groups (not the bastion) with what a run may change left out: sizes, max sizes,
/// suspended processes and tags must come back exactly.
fn settings(groups: &Value) -> BTreeMap<String, Value> {
    groups
        .as_object()
        .expect("groups")
        .iter()
        .map(|(name, g)| {
            (
                name.clone(),
                serde_json::json!({
                    "desired": g["desired"], "min": g["min"], "max": g["max"],
                    "suspended": g["suspended"], "tags": g["tags"],
                }),
            )
        })
        .collect()
}

fn instance_ids(groups: &Value, group: &str) -> Vec<String> {
    groups[group]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

/// Nothing of the run left in the cluster: no markers, cordons, or Lease.
async fn assert_cluster_clean(s: &Sim) {
    for n in nodes(&s.client).await {
        assert!(!is_marked(&n), "markers left on {n:?}");
        assert!(!n.unschedulable, "{} cordoned", n.name);
    }
    let lease = Api::<Lease>::namespaced(s.client.clone(), "kube-system")
        .get_opt(LEASE_NAME)
        .await
        .expect("lease");
    assert!(lease.is_none(), "Lease left: {lease:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_is_replaced_through_auto_scaling_and_the_groups_are_put_back() {
    let Some(moto) = Moto::start() else { return };
    let s = rig(
        &moto,
        "test-aws.toml",
        &[
            "--lb-pool",
            "workers",
            "--suspended",
            "workers-us-east-1a=AZRebalance",
        ],
    )
    .await;
    let before = moto.groups();
    let old: Vec<String> = nodes(&s.client).await.into_iter().map(|n| n.name).collect();
    assert_eq!(old.len(), 9);
    assert_eq!(instance_ids(&before, "general").len(), 3, "{before:#}");
    let report = s.dir.path().join("report.json");
    let out = run(&mut command(
        &s,
        &moto,
        "apply",
        &["--report", report.to_str().expect("utf-8 path")],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The cluster: nine new nodes at the target, on new instances, nothing left behind.
    let all = nodes(&s.client).await;
    assert_eq!(all.len(), 9, "{all:#?}");
    let after = moto.groups();
    for n in &all {
        assert_eq!(n.kubelet_version, TARGET, "{}", n.name);
        assert!(!old.contains(&n.name), "old node {} still there", n.name);
        let id = n.provider_id.as_deref().expect("providerID");
        assert!(id.starts_with("aws:///us-east-1"), "{id}");
    }
    assert_cluster_clean(&s).await;
    common::sim::assert_moved_once_and_no_pdb_below_min(&s.client, 9, "aws").await;

    // AWS: every group's size, max size, suspended processes and tags as before; the launch
    // template moved (that is the upgrade); every instance new; the bastion untouched.
    assert_eq!(settings(&after), settings(&before), "{after:#}");
    for z in ["us-east-1a", "us-east-1b", "us-east-1c"] {
        let g = format!("workers-{z}");
        assert_eq!(after[&g]["version"], "$Latest", "{g}");
        let (was, now) = (instance_ids(&before, &g), instance_ids(&after, &g));
        assert_eq!(now.len(), 2, "{g}: {now:?}");
        assert!(
            now.iter().all(|i| !was.contains(i)),
            "{g}: {was:?} -> {now:?}"
        );
    }
    // The group over three zones: as many instances as before, all new, wherever moto put
    // them (the engine found each one in the zone it landed in).
    let (was, now) = (
        instance_ids(&before, "general"),
        instance_ids(&after, "general"),
    );
    assert_eq!(now.len(), 3, "general: {now:?}");
    assert!(now.iter().all(|i| !was.contains(i)), "{was:?} -> {now:?}");
    assert_eq!(after["general"]["version"], "$Latest");
    assert_eq!(after["bastion"], before["bastion"]);

    // The report counts the AWS calls by operation.
    common::assert_report_replaced_through(
        &report,
        9,
        &[
            "DescribeAutoScalingGroups",
            "DescribeTargetHealth",
            "UpdateAutoScalingGroup",
            "TerminateInstanceInAutoScalingGroup",
            "SuspendProcesses",
            "ResumeProcesses",
        ],
    );
    s.sim.shutdown().await;
}

/// Instances the mirroring simulator runs now (it follows AWS within 100 ms; boto3 from
/// Python takes longer than a surge lasts at this time scale).
async fn mirrored_instances(s: &Sim) -> u64 {
    let req = http::Request::get("/sim/cloud/groups")
        .body(Vec::new())
        .expect("request");
    let v: Value = s.client.request(req).await.expect("groups");
    v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["desired"].as_u64().expect("desired"))
        .sum()
}

/// Starts `apply`, SIGKILLs it once a group has grown past its size (the first surge), and
/// returns the old nodes still there at that moment.
async fn kill_at_first_surge(s: &Sim, moto: &Moto, old: &[String]) -> Vec<String> {
    let base = mirrored_instances(s).await;
    let mut child = command(s, moto, "apply", &["--lease-duration", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start apply");
    let deadline = Instant::now() + Duration::from_secs(60);
    while mirrored_instances(s).await <= base {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "apply ended before any surge"
        );
        assert!(Instant::now() < deadline, "no surge within 60s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL: no cleanup of any kind runs.
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let present: Vec<String> = nodes(&s.client).await.into_iter().map(|n| n.name).collect();
    old.iter()
        .filter(|n| present.contains(n))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_a_sigkill_puts_every_group_back_and_keeps_the_old_nodes() {
    let Some(moto) = Moto::start() else { return };
    let s = rig(&moto, "test-aws.toml", &["--lb-pool", "workers"]).await;
    let before = moto.groups();
    let old: Vec<String> = nodes(&s.client).await.into_iter().map(|n| n.name).collect();
    let alive = kill_at_first_surge(&s, &moto, &old).await;
    assert_ne!(
        settings(&moto.groups()),
        settings(&before),
        "the killed run changed nothing"
    );

    let out = run(&mut command(&s, &moto, "abort", &[]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = moto.groups();
    assert_eq!(settings(&after), settings(&before), "{after:#}");
    for (name, g) in before.as_object().expect("groups") {
        assert_eq!(
            after[name]["version"], g["version"],
            "{name}: launch template back"
        );
    }
    // The surge went, not the old instances: every old node alive at the kill is still there.
    let deadline = Instant::now() + Duration::from_secs(5);
    let present = loop {
        // The mirror follows AWS within 100 ms.
        let present: Vec<String> = nodes(&s.client).await.into_iter().map(|n| n.name).collect();
        if present.len() == old.len() || Instant::now() > deadline {
            break present;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for n in &alive {
        assert!(
            present.contains(n),
            "old node {n} was terminated; left: {present:?}"
        );
    }
    assert_eq!(present.len(), old.len(), "{present:?}");
    assert_cluster_clean(&s).await;
    s.sim.shutdown().await;
}

/// SIGKILL at seeded random moments, then a run to the end: every node replaced once, each
/// replica moved once (no node drained twice), no PDB below its minimum, and AWS left as it
/// was but for the launch template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_at_random_moments_then_a_rerun_finish_with_nothing_left_changed() {
    let Some(moto) = Moto::start() else { return };
    let s = rig(&moto, "test-aws.toml", &["--lb-pool", "workers"]).await;
    let before = moto.groups();
    let old: Vec<String> = nodes(&s.client).await.into_iter().map(|n| n.name).collect();
    let seed: u64 = std::env::var("E2E_GATE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_a105);
    let mut rng = seed;
    let mut next = |below: u64| {
        // splitmix64: reproducible from the seed printed on failure.
        rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % below
    };
    for kill in 0..5 {
        let mut child = command(&s, &moto, "apply", &["--lease-duration", "2s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start apply");
        // A run after a kill first waits out the killed run's Lease (2 s); the kill lands
        // somewhere in the ~1.5 s of rolling after that.
        let lease = if kill == 0 { 0 } else { 2000 };
        let wait = Duration::from_millis(lease + 100 + next(1500));
        tokio::time::sleep(wait).await;
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        eprintln!("seed {seed:#x}: kill {kill} after {wait:?}");
    }
    let left = nodes(&s.client)
        .await
        .iter()
        .filter(|n| old.contains(&n.name))
        .count();
    eprintln!("seed {seed:#x}: {left} old nodes left for the last run");
    let out = run(&mut command(
        &s,
        &moto,
        "apply",
        &["--lease-duration", "2s"],
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "seed {seed:#x}: {}",
        stderr(&out)
    );
    let all = nodes(&s.client).await;
    assert_eq!(all.len(), 9, "seed {seed:#x}: {all:#?}");
    for n in &all {
        assert_eq!(n.kubelet_version, TARGET, "seed {seed:#x}: {}", n.name);
        assert!(
            !old.contains(&n.name),
            "seed {seed:#x}: old node {}",
            n.name
        );
    }
    assert_cluster_clean(&s).await;
    common::sim::assert_moved_once_and_no_pdb_below_min(&s.client, 9, &format!("seed {seed:#x}"))
        .await;
    let after = moto.groups();
    assert_eq!(
        settings(&after),
        settings(&before),
        "seed {seed:#x}: {after:#}"
    );
    s.sim.shutdown().await;
}

/// A pool whose new instances never become healthy stops, with its old nodes serving; the
/// other pool is rolled; the stopped pool's groups stay held (processes suspended, recorded)
/// for the next run or `abort`, which puts them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_whose_new_nodes_never_get_ready_stops_and_the_old_nodes_serve() {
    let Some(moto) = Moto::start() else { return };
    // The stuck pool is one group over its zones: a pool of that kind stops the same way.
    let s = rig(
        &moto,
        "test-aws-never-ready.toml",
        &["--multi-zone-pool", "stuck"],
    )
    .await;
    let before = moto.groups();
    let old_stuck: Vec<String> = nodes(&s.client)
        .await
        .into_iter()
        .filter(|n| n.pool == "stuck")
        .map(|n| n.name)
        .collect();
    assert_eq!(old_stuck.len(), 2);
    let report = s.dir.path().join("report.json");
    let out = run(&mut command(
        &s,
        &moto,
        "apply",
        &[
            "--new-node-timeout",
            "2s",
            "--report",
            report.to_str().expect("utf-8 path"),
        ],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("JSON");
    assert_eq!(r["stopped_pools"], serde_json::json!(["stuck"]), "{r:#}");
    let all = nodes(&s.client).await;
    for n in &all {
        if n.pool == "workers" {
            assert_eq!(n.kubelet_version, TARGET, "{}", n.name);
        }
    }
    for name in &old_stuck {
        let n = all
            .iter()
            .find(|n| &n.name == name)
            .expect("old stuck node kept");
        assert!(n.ready && !n.unschedulable, "{name} does not serve: {n:?}");
    }
    let out = run(&mut command(&s, &moto, "abort", &[]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = moto.groups();
    assert_eq!(settings(&after), settings(&before), "{after:#}");
    assert_cluster_clean(&s).await;
    s.sim.shutdown().await;
}

/// A run killed after its last node but before every group was put back leaves a group
/// held that no later plan names (every node is at the target): the next `apply` restores
/// it anyway. Found by the seeded SIGKILL test once a pool was one group over three zones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_left_held_by_a_killed_run_is_put_back_when_nothing_is_left_to_roll() {
    let Some(moto) = Moto::start() else { return };
    let s = rig(&moto, "test-aws.toml", &["--held", "general"]).await;
    let held = moto.groups();
    assert_eq!(
        held["general"]["suspended"],
        serde_json::json!(["AZRebalance"])
    );
    assert_eq!(held["general"]["max"], 4);
    // Every node already runs this version: nothing to roll.
    let c = command(&s, &moto, "apply", &[]);
    let args: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().replace(TARGET, "v1.33.5"))
        .collect();
    let mut c = Command::new(c.get_program());
    c.args(&args)
        .env("AWS_ACCESS_KEY_ID", "rig")
        .env("AWS_SECRET_ACCESS_KEY", "rig-secret")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = moto.groups();
    let g = &after["general"];
    assert_eq!(g["suspended"], serde_json::json!([]), "{g:#}");
    assert_eq!(g["max"], 3, "{g:#}");
    assert!(g["tags"].get("e2e-gate.io/held").is_none(), "{g:#}");
    assert_cluster_clean(&s).await;
    s.sim.shutdown().await;
}

/// Flags that cannot work are refused before anything is read: exit 2, naming the flag.
#[test]
fn aws_flags_used_wrong_are_usage_errors() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_e2e-gate"))
            .args(["upgrade", "plan", "--target-version", TARGET])
            .args(args)
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .expect("run e2e-gate");
        (out.status.code(), stderr(&out))
    };
    let (code, err) = run(&["--cloud", "aws"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--aws-cluster"), "{err}");
    let (code, err) = run(&["--aws-cluster", "dev"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--aws-cluster is for --cloud aws"), "{err}");
}
