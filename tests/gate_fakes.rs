//! `run_gate` (and `run_suite` inside it) with fakes behind every seam — cluster provider,
//! readiness, upgrade, container runner and GitHub reporter — so the orchestration is tested
//! without Docker or a cluster: Down after a failing step and after cancellation, statuses
//! pending → final in order, reruns that target only what failed.

use async_trait::async_trait;
use e2e_gate::cluster::{ClusterError, ClusterHandle, ClusterProvider, ClusterSpec, ClusterStatus};
use e2e_gate::gate::{self, GateInputs, Profile, Provider, ReadyProbe, StepOutcome};
use e2e_gate::runner::{ContainerExit, ContainerRunner, ContainerSpec, RunnerError, StopSignal};
use e2e_gate::status::{CommitStatus, StatusError, StatusPublisher, StatusReporter};
use e2e_gate::suite::SuiteSpec;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct FakeCluster {
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl ClusterProvider for FakeCluster {
    async fn up(&self, spec: &ClusterSpec) -> Result<ClusterHandle, ClusterError> {
        self.calls.lock().unwrap().push(format!("up {}", spec.name));
        Ok(ClusterHandle {
            name: spec.name.clone(),
            kubeconfig: PathBuf::from("/nonexistent/kubeconfig"),
            kubeconfig_internal: PathBuf::from("/nonexistent/kubeconfig"),
            network: None,
            api_url: "https://127.0.0.1:1".into(),
        })
    }
    async fn down(&self, name: &str) -> Result<(), ClusterError> {
        self.calls.lock().unwrap().push(format!("down {name}"));
        Ok(())
    }
    async fn status(&self, name: &str) -> Result<ClusterStatus, ClusterError> {
        Err(ClusterError::NotFound {
            name: name.into(),
            detail: "fake".into(),
        })
    }
}

struct Ready;

#[async_trait]
impl ReadyProbe for Ready {
    async fn wait_ready(
        &self,
        _: &ClusterHandle,
        _: Duration,
        _: &CancellationToken,
    ) -> Result<(), String> {
        Ok(())
    }
}

struct FailingUpgrade;

#[async_trait]
impl gate::UpgradeRunner for FailingUpgrade {
    async fn upgrade(
        &self,
        _: &ClusterHandle,
        _: &str,
        _: &Path,
    ) -> Result<e2e_gate::upgrade::UpgradeReport, String> {
        Err("refusing to apply: the plan has 1 blocker(s)".into())
    }
}

#[derive(Default)]
struct Reporter {
    posted: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl StatusReporter for Reporter {
    async fn post(&self, s: &CommitStatus) -> Result<(), StatusError> {
        self.posted
            .lock()
            .unwrap()
            .push((s.context.clone(), format!("{:?}", s.state).to_lowercase()));
        Ok(())
    }
}

/// What a container of the fake runner does: given its focus (`E2E_FOCUS`) and whether it is a
/// dry run (`E2E_DRYRUN`), the ginkgo v1 `e2e.log` and JUnit it writes and its exit code;
/// `None` hangs until stopped.
type Script = dyn Fn(&str, bool) -> Option<(String, String, i64)> + Send + Sync;

struct Runner {
    script: Box<Script>,
    /// Every container's focus, `dry:` in front for a dry run.
    focuses: Mutex<Vec<String>>,
}

#[async_trait]
impl ContainerRunner for Runner {
    async fn ensure_image(&self, _: &str, _: bool) -> Result<(), RunnerError> {
        Ok(())
    }
    async fn run(
        &self,
        spec: &ContainerSpec,
        output: mpsc::Sender<Vec<u8>>,
        stop: StopSignal,
    ) -> Result<ContainerExit, RunnerError> {
        let focus = spec
            .env
            .iter()
            .find(|(k, _)| k == "E2E_FOCUS")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let dry = spec
            .env
            .iter()
            .any(|(k, v)| k == "E2E_DRYRUN" && v == "true");
        self.focuses
            .lock()
            .unwrap()
            .push(format!("{}{focus}", if dry { "dry:" } else { "" }));
        let Some((log, junit, code)) = (self.script)(&focus, dry) else {
            stop.wait().await;
            return Ok(ContainerExit { code: 143 });
        };
        let results = spec
            .mounts
            .iter()
            .find(|m| m.container == "/tmp/results")
            .expect("a results mount")
            .host
            .clone();
        std::fs::write(results.join("junit_01.xml"), junit).unwrap();
        std::fs::write(results.join("e2e.log"), &log).unwrap();
        let _ = output.send(log.into_bytes()).await;
        Ok(ContainerExit { code })
    }
}

fn v1_run(specs: &[(&str, bool)]) -> (String, String, i64) {
    let passed = specs.iter().filter(|(_, ok)| *ok).count();
    let failed = specs.len() - passed;
    let mut log = format!(
        "Running Suite: Kubernetes e2e suite\n===================================\nRandom Seed: 1\nWill run {} of {} specs\n\n",
        specs.len(),
        specs.len()
    );
    let mut junit = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"Kubernetes e2e suite\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"1\">\n",
        specs.len()
    );
    for (name, ok) in specs {
        if *ok {
            junit.push_str(&format!(
                "<testcase name=\"{name}\" classname=\"Kubernetes e2e suite\" time=\"0.1\"></testcase>\n"
            ));
        } else {
            junit.push_str(&format!(
                "<testcase name=\"{name}\" classname=\"Kubernetes e2e suite\" time=\"0.1\"><failure type=\"Failure\">boom</failure></testcase>\n"
            ));
        }
    }
    junit.push_str("</testsuite>\n");
    log.push_str(&format!(
        "\nRan {} of {} Specs in 1.000 seconds\n{} -- {passed} Passed | {failed} Failed | 0 Pending | 0 Skipped\n",
        specs.len(),
        specs.len(),
        if failed == 0 { "SUCCESS!" } else { "FAIL!" }
    ));
    (log, junit, i64::from(failed > 0))
}

fn suite(extra: &str) -> SuiteSpec {
    e2e_gate::suite::parse_suite(
        &format!(
            "name = \"conf\"\nimage = \"fake:latest\"\ncontract = \"conformance-image\"\nginkgo = \"v1\"\n{extra}"
        ),
        Path::new("conf.toml"),
    )
    .expect("suite file")
}

fn profile(target: Option<&str>) -> Profile {
    Profile {
        name: "t".into(),
        provider: Provider::Sim,
        topology: None,
        kubernetes_version: None,
        kubeconfig: None,
        suites: vec!["conf".into()],
        jobs: 1,
        required_contexts: vec![],
        keep_cluster: false,
        fail_on_flaky: false,
        target_version: target.map(str::to_string),
        max_disruption_seconds: 0.0,
        time_scale: None,
        upgrade: Default::default(),
    }
}

struct Run {
    report: gate::GateReport,
    cluster: Vec<String>,
    posted: Vec<(String, String)>,
    focuses: Vec<String>,
}

async fn run(
    p: &Profile,
    suites: &[SuiteSpec],
    runner: Runner,
    upgrade: Option<&dyn gate::UpgradeRunner>,
    cancel_after: Option<Duration>,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::default();
    let reporter = Arc::new(Reporter::default());
    let statuses = StatusPublisher::new(reporter.clone(), None);
    let cancel = CancellationToken::new();
    if let Some(after) = cancel_after {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            c.cancel();
        });
    }
    let inputs = GateInputs {
        cluster: &cluster,
        ready: &Ready,
        runner: &runner,
        upgrade,
        availability: None,
        statuses: Some(&statuses),
        profile: p,
        suites,
        cluster_name: "fake-1".into(),
        run_id: "r1".into(),
        artifacts: dir.path().to_path_buf(),
        pull: false,
        stop_grace: Duration::from_millis(100),
        ready_timeout: Duration::from_secs(1),
        cancel,
    };
    let report = gate::run_gate(&inputs).await;
    let cluster = cluster.calls.lock().unwrap().clone();
    let posted = reporter.posted.lock().unwrap().clone();
    let focuses = runner.focuses.lock().unwrap().clone();
    Run {
        report,
        cluster,
        posted,
        focuses,
    }
}

fn outcome<'a>(r: &'a gate::GateReport, step: &str) -> &'a StepOutcome {
    &r.steps
        .steps()
        .iter()
        .find(|s| s.name == step)
        .unwrap_or_else(|| panic!("no step {step}"))
        .outcome
}

#[tokio::test]
async fn a_failing_upgrade_skips_the_suites_and_down_still_runs() {
    let runner = Runner {
        script: Box::new(|_, _| Some(v1_run(&[("a", true)]))),
        focuses: Mutex::default(),
    };
    let r = run(
        &profile(Some("v1.34.1")),
        &[suite("")],
        runner,
        Some(&FailingUpgrade),
        None,
    )
    .await;
    assert!(
        matches!(outcome(&r.report, "Upgrade"), StepOutcome::Failed(w) if w.starts_with("refusing to apply")),
        "{:?}",
        outcome(&r.report, "Upgrade")
    );
    assert_eq!(r.cluster, vec!["up fake-1", "down fake-1"]);
    assert!(matches!(outcome(&r.report, "Down"), StepOutcome::Passed));
    // The upgrade's own status: pending, then failure with the reason's first line.
    let upgrade: Vec<&str> = r
        .posted
        .iter()
        .filter(|(c, _)| c == gate::UPGRADE_CONTEXT)
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(upgrade, vec!["pending", "failure"], "{:?}", r.posted);
}

#[tokio::test]
async fn statuses_go_pending_then_final_in_order_and_reruns_target_only_the_failures() {
    // First attempt: `a` fails; the rerun (focus on `a` alone) passes it.
    let runner = Runner {
        script: Box::new(|focus, _| {
            if focus.contains("(?:") {
                Some(v1_run(&[("a", true)]))
            } else {
                Some(v1_run(&[("a", false), ("b", true)]))
            }
        }),
        focuses: Mutex::default(),
    };
    let r = run(&profile(None), &[suite("reruns = 1")], runner, None, None).await;
    assert_eq!(r.focuses.len(), 2, "one rerun: {:?}", r.focuses);
    let rerun = &r.focuses[1];
    assert!(
        rerun.contains(r"\[Top Level\] a)") && !rerun.contains(r"\] b"),
        "only the failed spec: {rerun}"
    );
    assert_eq!(r.report.suites.len(), 1);
    let s = &r.report.suites[0];
    assert_eq!(s.counts().flaky, 1, "a failed, then passed on the rerun");
    assert_eq!(s.counts().passed, 1);
    let conf: Vec<&str> = r
        .posted
        .iter()
        .filter(|(c, _)| c.ends_with("conf"))
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(conf.first(), Some(&"pending"), "{:?}", r.posted);
    assert_eq!(conf.last(), Some(&"success"), "{:?}", r.posted);
    assert_eq!(r.cluster, vec!["up fake-1", "down fake-1"]);
}

#[tokio::test]
async fn cancellation_mid_suite_stops_it_and_down_still_runs() {
    let runner = Runner {
        // The run hangs until stopped; the listing after the stop names what never ran.
        script: Box::new(|_, dry| dry.then(|| v1_run(&[("a", true), ("b", true)]))),
        focuses: Mutex::default(),
    };
    let r = run(
        &profile(None),
        &[suite("")],
        runner,
        None,
        Some(Duration::from_millis(300)),
    )
    .await;
    // After the stop only the short dry-run listing (which names the specs that never ran);
    // no further run, no rerun.
    assert_eq!(r.focuses, vec!["", "dry:"], "{:?}", r.focuses);
    assert_eq!(
        r.cluster,
        vec!["up fake-1", "down fake-1"],
        "Down after cancellation"
    );
    assert!(matches!(outcome(&r.report, "Down"), StepOutcome::Passed));
    let s = &r.report.suites[0];
    assert!(s.incomplete.is_some(), "a stopped suite is incomplete");
    assert_eq!(
        s.counts().not_run,
        2,
        "the listed specs are not run, by name"
    );
}
