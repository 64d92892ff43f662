//! `e2e-gate gate` through the real binary: the simulated cluster, the smoke image built from
//! the binary, the fixture image, and a wiremock GitHub driven by octocrab.

mod common;

use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_e2e-gate");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn docker_ready() -> bool {
    common::require(
        common::docker_socket(),
        "a Docker socket",
        "start Docker or set DOCKER_HOST",
    )
}

fn gate(dir: &Path, cluster: &str, extra: &[&str]) -> tokio::process::Command {
    gate_with_suites(dir, cluster, &format!("{ROOT}/suites"), extra)
}

fn gate_with_suites(
    dir: &Path,
    cluster: &str,
    suites_dir: &str,
    extra: &[&str],
) -> tokio::process::Command {
    let mut c = gate_from(
        Path::new(&format!("{ROOT}/ci/gate.toml")),
        suites_dir,
        dir,
        cluster,
    );
    c.args(extra);
    c
}

/// `e2e-gate gate` with `gate_file` and `suites_dir`, JSON output and artifacts under `dir`,
/// nothing from the caller's environment (kubeconfig, GitHub, Jenkins).
fn gate_from(
    gate_file: &Path,
    suites_dir: &str,
    dir: &Path,
    cluster: &str,
) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.env_remove("KUBECONFIG")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GIT_COMMIT")
        .env_remove("CHANGE_ID")
        .arg("gate")
        .arg("--gate-file")
        .arg(gate_file)
        .args(["--suites-dir", suites_dir])
        .args(["--cluster-name", cluster, "--format", "json", "--artifacts"])
        .arg(dir.join("artifacts"));
    c
}

/// A wiremock GitHub that accepts every status, and the flags that point the gate at it.
async fn github() -> (MockServer, Vec<String>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let flags = [
        "--github-repo",
        "team/clusters",
        "--sha",
        SHA,
        "--github-api-url",
        &format!("{}/api/v3", server.uri()),
    ]
    .map(String::from)
    .to_vec();
    (server, flags)
}

/// The statuses posted for `context`, in order: (state, description).
async fn posted(server: &MockServer, context: &str) -> Vec<(String, String)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|p| p["context"] == context)
        .map(|p| {
            (
                p["state"].as_str().unwrap_or_default().to_string(),
                p["description"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn cluster_gone(name: &str) -> bool {
    let out = tokio::process::Command::new(BIN)
        .args(["cluster", "status", "--name", name])
        .output()
        .await
        .unwrap();
    !out.status.success()
}

fn containers_with(label: &str) -> String {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={label}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// (name, outcome word, time) of the runner testsuite's testcases.
fn runner_steps(junit: &str) -> Vec<(String, &'static str, f64)> {
    let start = junit
        .find("name=\"e2e-gate runner\"")
        .expect("runner testsuite present");
    let suite = &junit[start
        ..junit[start..]
            .find("</testsuite>")
            .map(|e| start + e)
            .unwrap_or(junit.len())];
    let case = regex::Regex::new(
        r#"(?s)<testcase name="([^"]+)"[^>]*?time="([0-9.]+)"[^>]*?(/>|>(.*?)</testcase>)"#,
    )
    .unwrap();
    case.captures_iter(suite)
        .map(|c| {
            let body = c.get(4).map(|m| m.as_str()).unwrap_or("");
            let word = if body.contains("<failure") {
                "failed"
            } else if body.contains("<skipped") {
                "skipped"
            } else {
                "passed"
            };
            (c[1].to_string(), word, c[2].parse().unwrap())
        })
        .collect()
}

/// Runs the default profile on a topology given as text: exit code, stderr, junit.xml, steps.
async fn gate_on_topology(
    dir: &Path,
    cluster: &str,
    topology: &str,
    extra: &[String],
) -> (
    Option<i32>,
    String,
    String,
    Vec<(String, &'static str, f64)>,
) {
    let path = dir.join("topology.toml");
    std::fs::write(&path, topology).unwrap();
    let mut args = vec!["--topology", path.to_str().unwrap()];
    args.extend(extra.iter().map(String::as_str));
    let out = gate(dir, cluster, &args)
        .env("GITHUB_TOKEN", "ghp_gate_test_token_123")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let junit = std::fs::read_to_string(dir.join("artifacts/junit.xml"))
        .unwrap_or_else(|e| panic!("no junit.xml ({e}): {stderr}"));
    let steps = runner_steps(&junit);
    (out.status.code(), stderr, junit, steps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_on_the_simulated_cluster_passes_and_records_every_step() {
    if !docker_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("gate-ok-{}", std::process::id());
    let (server, flags) = github().await;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = gate(dir.path(), &name, &flags)
        .env("GITHUB_TOKEN", "ghp_gate_test_token_123")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The upgrade has its own context: pending while nodes roll, then success with facts.
    let upgrade = posted(&server, "e2e-gate/upgrade").await;
    assert_eq!(upgrade.len(), 2, "{upgrade:?}");
    assert_eq!(upgrade[0].0, "pending");
    assert_eq!(upgrade[1].0, "success");
    assert!(
        upgrade[1].1.starts_with("3/3 nodes replaced"),
        "{upgrade:?}"
    );
    for ctx in ["e2e-gate/smoke", "e2e-gate/gate"] {
        let p = posted(&server, ctx).await;
        assert_eq!(
            p.last().map(|p| p.0.as_str()),
            Some("success"),
            "{ctx}: {p:?}"
        );
    }
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["result"], "passed");
    assert_eq!(summary["suites"][0]["name"], "smoke");
    // All 8 checks, including "every node runs the target kubelet version" after the upgrade.
    assert_eq!(summary["suites"][0]["passed"], 8, "{summary}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("artifacts/upgrade-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["nodes_replaced"], report["nodes_total"]);
    assert_eq!(report["pdb_violation_seconds"], 0.0);
    let junit = std::fs::read_to_string(dir.path().join("artifacts/junit.xml")).unwrap();
    let steps = runner_steps(&junit);
    let names: Vec<&str> = steps.iter().map(|(n, _, _)| n.as_str()).collect();
    let expected: Vec<&str> = [
        "Up",
        "Ready",
        "Upgrade",
        "Availability",
        "Suite smoke",
        "Down",
    ]
    .into();
    assert!(steps.iter().find(|(s, _, _)| s == "Upgrade").unwrap().2 > 0.0);
    assert!(names.ends_with(&expected), "{names:?}");
    let word = |n: &str| steps.iter().find(|(s, _, _)| s == n).unwrap().1;
    assert_eq!(word("Up"), "passed");
    assert_eq!(word("Upgrade"), "passed");
    assert_eq!(word("Availability"), "passed");
    assert_eq!(word("Down"), "passed");
    // The gate's own probe watched both PDBs and both Services of the default topology.
    let availability: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("artifacts/availability.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(availability["pdbs"], 2, "{availability}");
    assert_eq!(availability["services"], 2, "{availability}");
    assert_eq!(availability["disruption_seconds"], 0.0, "{availability}");
    assert_eq!(
        availability["errors"],
        serde_json::json!([]),
        "{availability}"
    );
    assert!(
        steps.iter().find(|(s, _, _)| s == "Ready").unwrap().2 > 0.0,
        "steps carry timings"
    );
    assert!(cluster_gone(&name).await, "the cluster was left running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_not_ready_in_time_skips_suites_and_still_goes_down() {
    if !docker_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("gate-notready-{}", std::process::id());
    let out = gate(dir.path(), &name, &["--ready-timeout", "1ms"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let junit = std::fs::read_to_string(dir.path().join("artifacts/junit.xml")).unwrap();
    let steps = runner_steps(&junit);
    let word = |n: &str| steps.iter().find(|(s, _, _)| s == n).map(|s| s.1);
    assert_eq!(word("Ready"), Some("failed"), "{steps:?}");
    assert_eq!(word("Suite smoke"), Some("skipped"));
    assert_eq!(
        word("Upgrade"),
        Some("skipped"),
        "no upgrade on a cluster that is not ready"
    );
    assert_eq!(word("Down"), Some("passed"));
    assert!(junit.contains("not ready after"), "the failure says why");
    assert!(cluster_gone(&name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_gate_aborts_statuses_removes_containers_and_stops_the_cluster() {
    if !docker_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let suite = format!("hang-{}", std::process::id());
    let suites = dir.path().join("suites");
    std::fs::create_dir(&suites).unwrap();
    std::fs::write(
        suites.join("hang.toml"),
        format!("name = \"{suite}\"\nimage = \"e2e-gate-fixture:latest\"\ncontract = \"conformance-image\"\nginkgo = \"v1\"\nfocus = ['\\[Hang\\]']\n"),
    )
    .unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let name = format!("gate-term-{}", std::process::id());
    let api = format!("{}/api/v3", server.uri());
    let mut cmd = gate_with_suites(
        dir.path(),
        &name,
        suites.to_str().unwrap(),
        &[
            "--suite",
            &suite,
            "--github-repo",
            "team/clusters",
            "--sha",
            SHA,
            "--github-api-url",
            &api,
        ],
    );
    cmd.env("GITHUB_TOKEN", "ghp_gate_test_token_123");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while containers_with(&format!("e2e-gate.suite={suite}")).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the suite container never started"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(
        containers_with(&format!("e2e-gate.suite={suite}")),
        "",
        "container left behind"
    );
    assert!(
        cluster_gone(&name).await,
        "the simulated cluster was left running"
    );
    let posts: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let last = |ctx: &str| {
        posts
            .iter()
            .rev()
            .find(|p| p["context"] == ctx)
            .cloned()
            .unwrap_or_default()
    };
    for ctx in ["e2e-gate/gate".to_string(), format!("e2e-gate/{suite}")] {
        let p = last(&ctx);
        assert_eq!(
            (p["state"].as_str(), p["description"].as_str()),
            (Some("error"), Some("aborted")),
            "{ctx}: {posts:?}"
        );
    }
    let junit = std::fs::read_to_string(dir.path().join("artifacts/junit.xml")).unwrap();
    assert!(runner_steps(&junit)
        .iter()
        .any(|(n, w, _)| n == "Down" && *w == "passed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_would_violate_a_pdb_fails_the_gate_naming_it() {
    if !docker_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The default topology with the StatefulSet's PDB at minAvailable = replicas: no node can
    // be drained without taking `db` below its minimum.
    let topology = std::fs::read_to_string(format!("{ROOT}/fixtures/sim/default.toml"))
        .unwrap()
        .replace("pdb = { min_available = 2 }", "pdb = { min_available = 3 }");
    assert!(
        topology.contains("min_available = 3"),
        "fixture changed: update this test"
    );
    let name = format!("gate-pdb-{}", std::process::id());
    let (server, flags) = github().await;
    let (code, stderr, junit, steps) = gate_on_topology(dir.path(), &name, &topology, &flags).await;
    assert_eq!(code, Some(1), "{stderr}");
    // The status says why in its one line: the refused plan, not an exit code.
    let upgrade = posted(&server, "e2e-gate/upgrade").await;
    let last = upgrade.last().expect("an upgrade status");
    assert_eq!(last.0, "failure", "{upgrade:?}");
    assert!(last.1.starts_with("refusing to apply"), "{upgrade:?}");
    assert!(
        steps
            .iter()
            .any(|(n, w, _)| n == "Upgrade" && *w == "failed"),
        "{steps:?}"
    );
    assert!(
        junit.contains("db"),
        "the failure names the workload whose PDB blocks the upgrade"
    );
    assert!(steps.iter().any(|(n, w, _)| n == "Down" && *w == "passed"));
    // One verdict: summary.json says failed, names the step, and the last line agrees
    // (regression: exit 1 with "result": "passed" and "result: PASSED" before "gate: FAILED").
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("artifacts/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["result"], "failed", "{summary}");
    let upgrade_step = summary["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "Upgrade"))
        .unwrap_or_else(|| panic!("no Upgrade step in {summary}"));
    assert_eq!(upgrade_step["result"], "failed", "{summary}");
    assert!(!stderr.contains("result: PASSED"), "{stderr}");
    assert!(stderr.contains("result: FAILED"), "{stderr}");
    assert!(cluster_gone(&name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_measured_disruption_above_the_threshold_fails_the_gate_with_the_worst_moments() {
    if !docker_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A workload the new kubelet breaks: its pods pass readiness on an upgraded node, then fail
    // it 80 simulated seconds later for a minute. It starts slowly (100 s), so when the engine
    // evicts the next pod (allowed by the PDB at that moment: the first replacement is Ready),
    // that pod's replacement is still starting when the first one fails: the PDB's minimum is
    // broken although every eviction was legal. The engine's rules cannot see this coming;
    // the gate's own probe must measure it. Short boots keep each wave well inside the 80 s.
    let topology = r#"
[sim]
pod_startup_seconds = 2
[[pools]]
name = "workers"
zones = ["zone-a", "zone-b", "zone-c"]
size_per_zone = 1
cpu = "4"
memory = "16Gi"
kubelet_version = "v1.33.5"
boot_seconds = 20
kubelet_ready_seconds = 5
lb_health_seconds = 5
[[workloads]]
name = "web"
kind = "Deployment"
replicas = 3
spread = "zone"
pdb = { max_unavailable = 1 }
service = true
[[workloads]]
name = "fragile"
kind = "Deployment"
replicas = 3
spread = "zone"
startup_seconds = 100
pdb = { max_unavailable = 1 }
service = true
unready_on_kubelet = { version = "v1.34.1", after_seconds = 80, for_seconds = 60 }
"#;
    let name = format!("gate-fragile-{}", std::process::id());
    let (server, flags) = github().await;
    let (code, stderr, junit, steps) = gate_on_topology(dir.path(), &name, topology, &flags).await;
    assert_eq!(code, Some(1), "{stderr}");
    let upgrade = posted(&server, "e2e-gate/upgrade").await;
    let last = upgrade.last().expect("an upgrade status");
    assert_eq!(last.0, "failure", "{upgrade:?}");
    assert!(last.1.starts_with("disruption:"), "{upgrade:?}");
    let word = |n: &str| steps.iter().find(|(s, _, _)| s == n).map(|s| s.1);
    assert_eq!(word("Availability"), Some("failed"), "{steps:?}");
    assert!(
        stderr.contains("gate: FAILED — Availability: disruption:"),
        "the verdict line says why the gate is closed: {stderr}"
    );
    assert!(
        junit.contains("disruption:") && junit.contains("PDB default/fragile"),
        "the failure names the disrupted workload: {junit}"
    );
    assert!(junit.contains("worst moments:"), "{junit}");
    assert!(
        !junit.contains("PDB default/web "),
        "healthy workloads are not blamed: {junit}"
    );
    let availability: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("artifacts/availability.json")).unwrap(),
    )
    .unwrap();
    assert!(
        availability["disruption_seconds"].as_f64().unwrap() > 0.0,
        "{availability}"
    );
    let worst = &availability["worst_moments"][0];
    assert_eq!(worst["subject"]["name"], "fragile", "{availability}");
    assert!(worst["lowest"].as_i64().unwrap() < worst["required"].as_i64().unwrap());
    assert_eq!(word("Down"), Some("passed"));
    assert!(cluster_gone(&name).await);
}

/// A gate file with one sim profile whose `[profile.t.upgrade]` table is `upgrade`.
fn gate_file_with_upgrade(dir: &Path, upgrade: &str) -> std::path::PathBuf {
    let path = dir.join("gate.toml");
    std::fs::write(
        &path,
        format!(
            "[profile.t]\nprovider = \"sim\"\ntopology = \"{ROOT}/fixtures/sim/default.toml\"\n\
             time_scale = 0.05\ntarget_version = \"v1.34.1\"\nsuites = [\"smoke\"]\n\
             [profile.t.upgrade]\n{upgrade}\n"
        ),
    )
    .unwrap();
    path
}

fn gate_with_file(dir: &Path, cluster: &str, gate_file: &Path) -> tokio::process::Command {
    let mut c = gate_from(gate_file, &format!("{ROOT}/suites"), dir, cluster);
    c.args(["--profile", "t"]);
    c
}

/// Runs the gate on the embedded cluster with the upgrade table `upgrade`, expects it to pass
/// with every node replaced and the cluster gone, and returns its stderr and upgrade report.
async fn upgraded_by_the_gate(name: &str, upgrade: &str) -> (String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = gate_file_with_upgrade(dir.path(), upgrade);
    let name = format!("{name}-{}", std::process::id());
    let out = gate_with_file(dir.path(), &name, &file)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("artifacts/upgrade-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["nodes_replaced"], report["nodes_total"], "{report}");
    assert!(cluster_gone(&name).await, "the cluster was left running");
    (stderr, report)
}

/// The gate runs the upgrade in-process with the profile's engine options: `max_surge = 2`
/// reaches the engine (its report records the limits each pool ran with).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_s_upgrade_options_reach_the_engine() {
    if !docker_ready() {
        return;
    }
    let (stderr, report) =
        upgraded_by_the_gate("gate-opts", "max_surge = 2\nnew_node_timeout = \"10m\"").await;
    assert!(
        stderr.contains("[upgrade]"),
        "plan and progress forwarded: {stderr}"
    );
    let limits = report["limits"].as_object().expect("limits recorded");
    assert!(!limits.is_empty(), "{report}");
    for (pool, l) in limits {
        assert_eq!(l["max_surge"], 2, "{pool}: {report}");
        assert_eq!(l["max_unavailable"], 0, "{pool}: {report}");
    }
}

/// A profile's `pool_command` drives the pools through `--cloud exec`: the shipped example
/// command rolls the embedded cluster (it finds the server through the KUBECONFIG e2e-gate
/// sets for it), and the report counts the protocol's calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_s_pool_command_rolls_the_cluster_through_the_exec_protocol() {
    if !docker_ready() {
        return;
    }
    let command = format!("python3 {ROOT}/ci/pool-commands/sim-pool.py");
    let (_, report) =
        upgraded_by_the_gate("gate-exec", &format!("pool_command = {command:?}")).await;
    let calls = report["cloud_api_calls"].as_object().expect("calls");
    assert!(
        calls.contains_key("set-desired") && !calls.contains_key("describe_groups"),
        "driven through the command, not the sim adapter: {report}"
    );
}

/// A cluster the gate did not create (`provider = "existing"`) is rolled when its profile
/// names a pool command, and is left running (the gate never deletes what it did not create).
/// The "existing" cluster is an embedded simulated one started by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_cluster_is_rolled_through_the_profile_s_pool_command() {
    if !docker_ready() {
        return;
    }
    let s = common::sim::start("test-3az-2-per-zone.toml").await;
    let old: Vec<String> = common::sim::nodes(&s.client)
        .await
        .into_iter()
        .map(|n| n.name)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gate.toml");
    std::fs::write(
        &file,
        format!(
            "[profile.t]\nprovider = \"existing\"\nkubeconfig = {:?}\n\
             target_version = \"v1.34.0\"\nsuites = [\"smoke\"]\n\
             [profile.t.upgrade]\npool_command = \"python3 {ROOT}/ci/pool-commands/sim-pool.py\"\n",
            s.kubeconfig.display().to_string()
        ),
    )
    .unwrap();
    let out = gate_with_file(dir.path(), "existing-exec", &file)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let now = common::sim::nodes(&s.client).await;
    assert_eq!(now.len(), 6, "{now:#?}");
    for n in &now {
        assert_eq!(n.kubelet_version, "v1.34.0", "{}", n.name);
        assert!(!old.contains(&n.name), "old node {} still there", n.name);
    }
    common::sim::assert_moved_once_and_no_pdb_below_min(&s.client, 9, "existing").await;
    s.sim.shutdown().await;
}

/// A cluster on AWS (`provider = "existing"`, `aws_cluster` in the profile's upgrade table):
/// the gate rolls its Auto Scaling groups through the SDK and leaves them as they were but for
/// the launch template. The cluster is the moto rig's: a simulated cluster whose nodes mirror
/// moto's groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_cluster_on_aws_is_rolled_through_its_auto_scaling_groups() {
    if !docker_ready() {
        return;
    }
    let Some(moto) = common::aws::Moto::start() else {
        return;
    };
    let topology = format!("{ROOT}/fixtures/sim/test-aws.toml");
    let made = moto.rig(&[
        "create",
        "--cluster",
        "dev",
        "--topology",
        &topology,
        "--target-version",
        "v1.34.0",
    ]);
    let s = common::sim::start_with(
        "test-aws.toml",
        e2e_gate::cluster::sim::SimOptions {
            mirror: Some(
                common::aws_mirror::AwsMirror {
                    endpoint_url: moto.url.clone(),
                    region: common::aws::REGION.into(),
                    cluster: "dev".into(),
                    pool_tag: "e2e-gate.io/pool".into(),
                    versions: serde_json::from_value(made["versions"].clone()).unwrap(),
                }
                .source(),
            ),
            ..Default::default()
        },
    )
    .await;
    let before = moto.groups();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gate.toml");
    std::fs::write(
        &file,
        format!(
            "[profile.t]\nprovider = \"existing\"\nkubeconfig = {:?}\n\
             target_version = \"v1.34.0\"\nsuites = [\"smoke\"]\n\
             [profile.t.upgrade]\naws_cluster = \"dev\"\naws_region = {:?}\naws_endpoint_url = {:?}\n",
            s.kubeconfig.display().to_string(),
            common::aws::REGION,
            moto.url,
        ),
    )
    .unwrap();
    let out = gate_with_file(dir.path(), "existing-aws", &file)
        .env("AWS_ACCESS_KEY_ID", "rig")
        .env("AWS_SECRET_ACCESS_KEY", "rig-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for n in common::sim::nodes(&s.client).await {
        assert_eq!(n.kubelet_version, "v1.34.0", "{}", n.name);
    }
    common::sim::assert_moved_once_and_no_pdb_below_min(&s.client, 9, "existing aws").await;
    let after = moto.groups();
    for (name, g) in before.as_object().unwrap() {
        for key in ["desired", "max", "suspended", "tags"] {
            assert_eq!(after[name][key], g[key], "{name}.{key}: {after:#}");
        }
    }
    s.sim.shutdown().await;
}

/// The gate's stderr when it refuses the upgrade table `upgrade` (exit 2 asserted).
async fn refused(upgrade: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = gate_file_with_upgrade(dir.path(), upgrade);
    let out = gate_with_file(dir.path(), "never-up", &file)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

/// A wrong key in the profile's upgrade table stops the gate before anything starts (exit 2),
/// naming the file, the key and the valid keys; so does a value the flags would refuse.
#[tokio::test]
async fn a_wrong_upgrade_option_in_a_profile_is_refused_naming_the_valid_ones() {
    let stderr = refused("max_surg = 1").await;
    assert!(
        stderr.contains("gate.toml") && stderr.contains("max_surg") && stderr.contains("max_surge"),
        "{stderr}"
    );
    let stderr = refused("pool_command_timeout = \"5s\"").await;
    assert!(
        stderr.contains("pool_command_timeout") && stderr.contains("without pool_command"),
        "{stderr}"
    );
    let stderr = refused("aws_region = \"eu-west-1\"").await;
    assert!(
        stderr.contains("aws_region") && stderr.contains("without aws_cluster"),
        "{stderr}"
    );
    let stderr = refused("aws_cluster = \"dev\"\npool_command = \"x\"").await;
    assert!(stderr.contains("name one cloud, not both"), "{stderr}");
    let stderr = refused("max_surge = 0").await;
    assert!(
        stderr.contains("[profile.t.upgrade]")
            && stderr.contains("max_surge and max_unavailable are both 0"),
        "{stderr}"
    );
}
