//! `upgrade apply --cloud exec --pool-command CMD` through the real binary: the shipped example
//! command (`ci/pool-commands/sim-pool.py`, python3 standard library) drives the embedded
//! cluster's simulated cloud over HTTP, with default flags and two nodes per zone; commands
//! that hang, print garbage or fail are named with their call and leave nothing half-done.
//! Invariants are read from the cluster and the simulator's own metrics, not from the report.

mod common;

use common::sim::{nodes, start, Sim};
use e2e_gate::upgrade::state::{is_marked, LEASE_NAME, OUTDATED_TAINT_KEY};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const TARGET: &str = "v1.34.0";

fn python3() -> bool {
    common::require(
        Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "python3",
        "install python3 (the example pool command uses its standard library only)",
    )
}

/// The shipped example, pointed at this simulator.
fn example_command(s: &Sim) -> String {
    format!(
        "python3 {}/ci/pool-commands/sim-pool.py --server {}",
        env!("CARGO_MANIFEST_DIR"),
        s.sim.url()
    )
}

/// `e2e-gate upgrade <verb> --cloud exec --pool-command CMD` against the sim (default flags).
fn upgrade(s: &Sim, verb: &str, command: &str, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_e2e-gate"));
    c.args([
        "upgrade",
        verb,
        "--cloud",
        "exec",
        "--pool-command",
        command,
    ])
    .arg("--kubeconfig")
    .arg(&s.kubeconfig)
    .args(extra)
    .env("E2E_GATE_LOG", "warn");
    if verb != "abort" {
        c.args(["--target-version", TARGET]);
    }
    c.output().expect("run e2e-gate")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether `pid` has stopped running within `limit` (gone, or a zombie waiting to be reaped
/// by whatever init the machine has).
fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.chars().next()))
            .flatten();
        if matches!(state, None | Some('Z') | Some('X')) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pool command in a file: `body` is a POSIX shell script.
fn script(s: &Sim, name: &str, body: &str) -> String {
    let path = s.dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    format!("sh {}", path.display())
}

/// Every node at the target with no marker, taint, cordon or Lease left; six instances in
/// service and six terminated (one launch per replaced node); every replica moved once by an
/// allowed eviction and no PDB below its minimum, as the simulator counted them.
async fn assert_fully_replaced(s: &Sim, old: &[String]) {
    let all = nodes(&s.client).await;
    assert_eq!(all.len(), 6, "{all:#?}");
    for n in &all {
        assert_eq!(n.kubelet_version, TARGET, "{}", n.name);
        assert!(!old.contains(&n.name), "old node {} still there", n.name);
        assert!(!is_marked(n), "markers left on {n:?}");
        assert!(!n.taints.iter().any(|t| t.key == OUTDATED_TAINT_KEY));
        assert!(!n.unschedulable, "{} cordoned", n.name);
    }
    let lease = Api::<Lease>::namespaced(s.client.clone(), "kube-system")
        .get_opt(LEASE_NAME)
        .await
        .expect("lease");
    assert!(lease.is_none(), "Lease left: {lease:?}");
    // 6 web replicas + 3 db replicas; DaemonSet pods are not evicted.
    common::sim::assert_moved_once_and_no_pdb_below_min(&s.client, 9, "exec").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_command_rolls_every_node_with_default_flags() {
    if !python3() {
        return;
    }
    let s = start("test-3az-2-per-zone.toml").await;
    let old: Vec<String> = nodes(&s.client).await.into_iter().map(|n| n.name).collect();
    let report = s.dir.path().join("report.json");
    let out = upgrade(
        &s,
        "apply",
        &example_command(&s),
        &["--report", report.to_str().expect("utf-8 path")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_fully_replaced(&s, &old).await;
    common::assert_report_replaced_through(
        &report,
        6,
        &[
            "groups",
            "instances",
            "set-desired",
            "terminate",
            "set-version",
        ],
    );
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_commands_are_named_with_their_call_and_change_nothing() {
    if !python3() {
        return;
    }
    let s = start("test-3az-2-per-zone.toml").await;
    let before = nodes(&s.client).await;

    // Hangs: killed after the timeout, with what it started.
    let pid_file = s.dir.path().join("pid");
    let hang = script(
        &s,
        "hang.sh",
        &format!("echo $$ > {}\nsleep 30\n", pid_file.display()),
    );
    let started = Instant::now();
    let out = upgrade(&s, "plan", &hang, &["--pool-command-timeout", "1s"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("pool command `{hang} groups`")) && err.contains("within 1s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout held"
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid number");
    assert!(
        gone_within(pid, Duration::from_secs(5)),
        "the timed-out command {pid} is still running"
    );

    // Prints something that is not the protocol's JSON.
    let garbage = script(&s, "garbage.sh", "echo 'pools: workers'");
    let out = upgrade(&s, "apply", &garbage, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("groups`") && err.contains("pools: workers") && err.contains("README"),
        "{err}"
    );

    // Fails: its status and stderr are quoted.
    let failing = script(&s, "fail.sh", "echo 'quota exceeded in zone-b' >&2\nexit 7");
    let out = upgrade(&s, "apply", &failing, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("exited with status 7") && err.contains("quota exceeded in zone-b"),
        "{err}"
    );

    // None of them changed the cluster.
    let after = nodes(&s.client).await;
    assert_eq!(before.len(), after.len());
    for n in &after {
        assert!(!is_marked(n), "marker left on {}", n.name);
        assert!(!n.unschedulable && n.taints.is_empty(), "{n:?}");
    }

    // A command that breaks in the middle of the roll (every surge request fails): the run
    // stops with the call named, and the next run with a working command finishes it.
    let example = example_command(&s);
    let breaks_mid_roll = script(
        &s,
        "breaks.sh",
        &format!(
            "if [ \"$1\" = set-desired ]; then echo 'API throttled' >&2; exit 1; fi\nexec {example} \"$@\""
        ),
    );
    let out = upgrade(&s, "apply", &breaks_mid_roll, &["--lease-duration", "1s"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("set-desired workers") && err.contains("API throttled"),
        "{err}"
    );
    let old: Vec<String> = before.into_iter().map(|n| n.name).collect();
    let out = upgrade(&s, "apply", &example, &["--lease-duration", "1s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_fully_replaced(&s, &old).await;
    s.sim.shutdown().await;
}

#[test]
fn exec_without_a_command_and_a_command_without_exec_are_usage_errors() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_e2e-gate"))
            .args(["upgrade", "plan", "--kubeconfig", "/nonexistent"])
            .args(["--target-version", TARGET])
            .args(args)
            .output()
            .expect("run")
    };
    let out = run(&["--cloud", "exec"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--pool-command"), "{}", stderr(&out));
    let out = run(&["--cloud", "sim", "--pool-command", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--cloud exec"), "{}", stderr(&out));
}

/// Each simulated group's desired size and kubelet version, read raw from the simulated cloud
/// (neither adapter in between).
async fn cloud_groups(s: &Sim) -> Vec<(String, u64, String)> {
    let req = http::Request::get("/sim/cloud/groups")
        .body(Vec::new())
        .expect("request");
    let v: serde_json::Value = s.client.request(req).await.expect("groups");
    v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().expect("name").to_string(),
                g["desired"].as_u64().expect("desired"),
                g["kubelet_version"].as_str().expect("version").to_string(),
            )
        })
        .collect()
}

/// An apply through the command killed with SIGKILL after it surged: `abort --cloud exec`
/// puts every group back to its size and launch version before the run, removes every
/// marker and lets go of the Lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_through_the_command_restores_what_a_killed_apply_changed() {
    if !python3() {
        return;
    }
    let s = start("test-3az-2-per-zone.toml").await;
    let before = cloud_groups(&s).await;
    let example = example_command(&s);
    let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-gate"))
        .args([
            "upgrade",
            "apply",
            "--cloud",
            "exec",
            "--pool-command",
            &example,
        ])
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["--target-version", TARGET, "--lease-duration", "2s"])
        .env("E2E_GATE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn apply");
    let total = |g: &[(String, u64, String)]| g.iter().map(|(_, d, _)| d).sum::<u64>();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if total(&cloud_groups(&s).await) > total(&before) {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "apply ended before it surged"
        );
        assert!(Instant::now() < deadline, "apply never surged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL: no cleanup of any kind runs.
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert_ne!(
        cloud_groups(&s).await,
        before,
        "the killed run left changes"
    );

    let out = upgrade(&s, "abort", &example, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        cloud_groups(&s).await,
        before,
        "sizes and versions restored"
    );
    for n in nodes(&s.client).await {
        assert!(!is_marked(&n), "marker left on {n:?}");
        assert!(!n.unschedulable, "{} left cordoned", n.name);
        assert!(!n.taints.iter().any(|t| t.key == OUTDATED_TAINT_KEY));
    }
    let lease = Api::<Lease>::namespaced(s.client.clone(), "kube-system")
        .get_opt(LEASE_NAME)
        .await
        .expect("lease");
    assert!(lease.is_none(), "Lease left: {lease:?}");
    s.sim.shutdown().await;
}
