//! The smoke suite as a container: `e2e-gate smoke image` builds it from the binary, and
//! `e2e-gate run` drives it like any conformance-image suite.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_e2e-gate");

fn docker_ready() -> bool {
    common::require(
        common::docker_socket(),
        "a Docker socket",
        "start Docker or set DOCKER_HOST",
    )
}

fn build(tag: &str) {
    let out = Command::new(BIN)
        .args(["smoke", "image", "--tag", tag])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn suite_dir(dir: &Path, tag: &str) {
    std::fs::create_dir_all(dir.join("suites")).unwrap();
    std::fs::write(
        dir.join("suites/smoke.toml"),
        format!("name = \"smoke\"\nimage = \"{tag}\"\ncontract = \"conformance-image\"\nginkgo = \"v2\"\nskip = ['target kubelet version']\n"),
    )
    .unwrap();
}

fn run(dir: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(BIN)
        .arg("--suites-dir")
        .arg(dir.join("suites"))
        .args(["--suite", "smoke", "--format", "json", "--artifacts"])
        .arg(dir.join("artifacts"))
        .args(extra)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code(), summary, stderr)
}

#[test]
fn smoke_image_lists_checks_and_reports_an_unreachable_cluster_as_incomplete() {
    if !docker_ready() {
        return;
    }
    let tag = format!("e2e-gate-smoke:test-{}", std::process::id());
    build(&tag);
    // Rebuilding the tag leaves no dangling image behind.
    let id = |image: &str| {
        let out = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", image])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let first = id(&tag).expect("built");
    build(&tag);
    let second = id(&tag).expect("rebuilt");
    if second != first {
        assert_eq!(
            id(&first),
            None,
            "the previous image {first} was left dangling"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    suite_dir(dir.path(), &tag);

    let (code, summary, stderr) = run(dir.path(), &["--dry-run"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["suites"][0]["dry_run"], true);
    assert_eq!(summary["suites"][0]["passed"], 0);

    // A kubeconfig whose server refuses connections: nothing was checked, so no check fails;
    // the run is incomplete (exit 3, infrastructure) and says why (regression: exit 1, seven
    // "failed" checks, the cause hidden from the human summary).
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"http://localhost:1\"}\n\
         contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let (code, summary, stderr) = run(dir.path(), &["--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{stderr}");
    let s = &summary["suites"][0];
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["not_run"], 7, "{s}");
    assert_eq!(s["result"], "incomplete", "{s}");
    let reason = s["incomplete_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot read the cluster") && reason.contains("Connection refused"),
        "{s}"
    );
    assert!(
        stderr.contains("cannot read the cluster"),
        "the human summary says why: {stderr}"
    );
    let junit = std::fs::read_to_string(dir.path().join("artifacts/junit.xml")).unwrap();
    assert!(
        junit.contains("Connection refused"),
        "the cause reaches the report"
    );
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}

/// Brings a simulated cluster up through the binary and always takes it down.
struct SimCluster {
    name: String,
    kubeconfig: std::path::PathBuf,
}

impl SimCluster {
    fn up(dir: &Path) -> SimCluster {
        let name = format!("smoke-{}", std::process::id());
        let kubeconfig = dir.join("kubeconfig");
        let out = Command::new(BIN)
            .args([
                "cluster",
                "up",
                "--provider",
                "sim",
                "--name",
                &name,
                "--kubeconfig-out",
            ])
            .arg(&kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        SimCluster { name, kubeconfig }
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--name", &self.name])
            .output();
    }
}

#[test]
fn smoke_suite_passes_in_its_container_on_a_settled_simulated_cluster() {
    if !docker_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = SimCluster::up(dir.path());
    // Wait (bounded) until the workloads of the default topology are up, checked on the host.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let out = Command::new(BIN)
            .args(["smoke", "run", "--kubeconfig"])
            .arg(&cluster.kubeconfig)
            .arg("--results-dir")
            .arg(dir.path().join("host-check"))
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cluster never settled: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let tag = format!("e2e-gate-smoke:test-sim-{}", std::process::id());
    build(&tag);
    suite_dir(dir.path(), &tag);
    let (code, summary, stderr) = run(
        dir.path(),
        &["--kubeconfig", cluster.kubeconfig.to_str().unwrap()],
    );
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    assert_eq!(code, Some(0), "{stderr}");
    let s = &summary["suites"][0];
    assert_eq!(
        (
            s["passed"].as_u64(),
            s["failed"].as_u64(),
            s["skipped"].as_u64()
        ),
        (Some(7), Some(0), Some(1)),
        "{s}"
    );
}
