//! The gate's steps in order: Up → Ready → Upgrade → each suite → Down. Down runs on every
//! path (failure, SIGTERM) unless the profile keeps the cluster. Every step is recorded.

use super::availability::{self, AvailabilityReport, AvailabilityWatch};
use super::profile::Profile;
use super::steps::{StepOutcome, StepRecorder};
use super::suites::run_suites;
use super::upgrade_step::{judge, UpgradeRunner};
use crate::cluster::{ClusterHandle, ClusterProvider, ClusterSpec};
use crate::results::{SpecOutcome, SuiteResult, SuiteVerdict};
use crate::runner::{ContainerRunner, RunContext};
use crate::smoke::{self, checks::CheckOutcome, SmokeOptions};
use crate::status::{StatusPublisher, StatusState};
use crate::suite::SuiteSpec;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Set in every suite container when the profile has a target version.
pub(crate) const TARGET_VERSION_ENV: &str = "E2E_GATE_TARGET_VERSION";

/// The upgrade's own GitHub status context (the rolling upgrade and the availability
/// measured while it ran), so promotion can require it apart from the suites.
pub const UPGRADE_CONTEXT: &str = "e2e-gate/upgrade";

/// Pure: the upgrade status from the Upgrade and Availability steps. A failure to measure is
/// an `error` (we could not find out); a measured disruption or an unfinished upgrade is a
/// `failure`. The description is the first line of the reason, or the upgrade's facts.
pub(crate) fn upgrade_status(
    upgrade: &StepOutcome,
    availability: Option<&StepOutcome>,
    not_measured: bool,
    facts: Option<&str>,
) -> (StatusState, String) {
    let first_line = |s: &str| crate::first_line(s).to_string();
    match (upgrade, availability) {
        (StepOutcome::Failed(why), _) => (StatusState::Failure, first_line(why)),
        (_, Some(StepOutcome::Failed(why))) if not_measured => {
            (StatusState::Error, first_line(why))
        }
        (_, Some(StepOutcome::Failed(why))) => (StatusState::Failure, first_line(why)),
        (StepOutcome::Skipped(why), _) => (StatusState::Error, format!("not run: {why}")),
        _ => (
            StatusState::Success,
            facts.unwrap_or("every node replaced").to_string(),
        ),
    }
}

/// Waits until a cluster that is up can take the suites.
#[async_trait::async_trait]
pub trait ReadyProbe: Send + Sync {
    /// `Ok` once ready; `Err` says what was still wrong at `timeout` (or on `cancel`).
    async fn wait_ready(
        &self,
        handle: &ClusterHandle,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), String>;
}

/// The real probe: reads the cluster through its kubeconfig until every node is Ready and
/// every workload available.
pub(crate) struct KubeReadiness;

/// The checks that say a cluster can take suites: nodes Ready and workloads available, not
/// the kubelet version (the upgrade comes after) nor upgrade markers (it may be mid-upgrade).
const READY_CHECKS: &[&str] = &[
    "[Smoke] every node is Ready",
    "[Smoke] no pod is Pending for long",
    "[Smoke] every Deployment is available",
    "[Smoke] every StatefulSet is ready",
    "[Smoke] every DaemonSet is scheduled and ready",
    "[Smoke] every PodDisruptionBudget is healthy",
];

/// Everything the gate needs, real or fake.
pub struct GateInputs<'a> {
    /// Brings the cluster up and down.
    pub cluster: &'a dyn ClusterProvider,
    /// Says when the cluster is ready after Up.
    pub ready: &'a dyn ReadyProbe,
    /// Runs suite containers.
    pub runner: &'a dyn ContainerRunner,
    /// Rolls the cluster's nodes to the profile's target version, when it has one.
    pub upgrade: Option<&'a dyn UpgradeRunner>,
    /// Measures availability while the upgrade runs (without one, the engine's own
    /// `pdb_violation_seconds` is judged instead).
    pub availability: Option<&'a dyn AvailabilityWatch>,
    /// GitHub statuses, when a repository and commit are known.
    pub statuses: Option<&'a StatusPublisher>,
    /// The resolved profile.
    pub profile: &'a Profile,
    /// The suites to run.
    pub suites: &'a [SuiteSpec],
    /// Cluster name.
    pub cluster_name: String,
    /// Run identifier (container names and labels).
    pub run_id: String,
    /// Artifacts root.
    pub artifacts: PathBuf,
    /// Pull missing images.
    pub pull: bool,
    /// SIGTERM → SIGKILL grace for containers.
    pub stop_grace: Duration,
    /// How long the cluster may take to become ready after Up.
    pub ready_timeout: Duration,
    /// Fired on SIGINT/SIGTERM.
    pub cancel: CancellationToken,
}

/// What the gate produced.
pub struct GateReport {
    /// Suite results, in profile order.
    pub suites: Vec<SuiteResult>,
    /// Infrastructure errors of suites.
    pub(crate) suite_errors: Vec<String>,
    /// The recorded steps.
    pub steps: StepRecorder,
    /// What the availability probe measured during the upgrade.
    pub(crate) availability: Option<AvailabilityReport>,
    /// Why availability could not be measured (an infrastructure problem, not a verdict).
    pub(crate) availability_error: Option<String>,
}

fn suite_step(result: &SuiteResult, error: Option<&String>) -> StepOutcome {
    if let Some(e) = error {
        return StepOutcome::Failed(e.clone());
    }
    match result.verdict() {
        SuiteVerdict::Passed => StepOutcome::Passed,
        SuiteVerdict::Incomplete => StepOutcome::Failed(format!(
            "incomplete: {}",
            result
                .incomplete
                .as_ref()
                .map(|i| i.reason.as_str())
                .unwrap_or("specs did not run")
        )),
        SuiteVerdict::Failed => {
            let failed: Vec<&str> = result
                .specs_with(SpecOutcome::Failed)
                .map(|s| s.name.as_str())
                .collect();
            StepOutcome::Failed(format!("{} failed: {}", failed.len(), failed.join("; ")))
        }
    }
}

/// How long the API server may stay unreachable during Ready before the step fails.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(20);

/// Waits until every node is Ready and every workload available (the smoke checks that say a
/// cluster is usable), bounded by `timeout`. Returns what was still wrong on timeout.
#[async_trait::async_trait]
impl ReadyProbe for KubeReadiness {
    async fn wait_ready(
        &self,
        handle: &ClusterHandle,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let client = smoke::collect::client(Some(&handle.kubeconfig)).await?;
        let deadline = Instant::now() + timeout;
        let readiness = |name: &str| READY_CHECKS.contains(&name);
        // The API server answered during Up: one that cannot be reached now (a closed port, a
        // wrong kubeconfig) will not start answering by waiting for nodes. Fail after a short
        // grace, naming the server and the kubeconfig, instead of retrying a context-free
        // "client error (Connect)" every second until the timeout.
        let mut unreachable_since: Option<Instant> = None;
        let mut last_error = String::new();
        loop {
            let problems = match smoke::collect::collect(&client).await {
                Err(text) => {
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    if text != last_error {
                        tracing::warn!(api = %handle.api_url, "cannot read the cluster yet: {text}");
                        last_error = text.clone();
                    }
                    if since.elapsed() >= UNREACHABLE_GRACE {
                        return Err(format!(
                            "cannot reach the API server {} (kubeconfig {}) for {}s: {text}",
                            handle.api_url,
                            handle.kubeconfig.display(),
                            since.elapsed().as_secs()
                        ));
                    }
                    vec![text]
                }
                Ok(state) => {
                    unreachable_since = None;
                    let opts = SmokeOptions {
                        target_version: None,
                        pending_grace: timeout,
                        now: chrono::Utc::now(),
                    };
                    smoke::checks::run_checks(&state, &opts, &readiness)
                        .into_iter()
                        .filter_map(|c| match c.outcome {
                            CheckOutcome::Failed(why) => Some(why),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                }
            };
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline || cancel.is_cancelled() {
                return Err(format!(
                    "not ready after {}s: {}",
                    timeout.as_secs(),
                    problems.join("; ")
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Runs the gate. Never returns early: Down is always attempted.
pub async fn run_gate(inp: &GateInputs<'_>) -> GateReport {
    let mut steps = StepRecorder::default();
    let p = inp.profile;
    let started = Instant::now();
    let spec = ClusterSpec {
        name: inp.cluster_name.clone(),
        topology: p.topology.clone(),
        kubernetes_version: p.kubernetes_version.clone(),
        kubeconfig: p.kubeconfig.clone(),
    };
    let handle = inp.cluster.up(&spec).await;
    match &handle {
        Ok(h) => {
            tracing::info!(cluster = %h.name, api = %h.api_url, kubeconfig = %h.kubeconfig.display(), "cluster up");
            steps.record("Up", started.elapsed(), StepOutcome::Passed);
        }
        Err(e) => steps.record("Up", started.elapsed(), StepOutcome::Failed(e.to_string())),
    }

    let mut suites = Vec::new();
    let mut suite_errors = Vec::new();
    let ready = match &handle {
        Ok(h) => {
            let t = Instant::now();
            let r = inp
                .ready
                .wait_ready(h, inp.ready_timeout, &inp.cancel)
                .await;
            let ready = r.is_ok();
            let outcome = r.map_or_else(StepOutcome::Failed, |()| StepOutcome::Passed);
            steps.record("Ready", t.elapsed(), outcome);
            ready
        }
        Err(_) => false,
    };
    let mut availability_report = None;
    let mut availability_error = None;
    let mut upgrade_facts = None;
    let t = Instant::now();
    let upgrade = match (&handle, &p.target_version, inp.upgrade) {
        (_, None, _) => StepOutcome::Skipped("no target_version in the profile".into()),
        (_, Some(_), None) => {
            StepOutcome::Failed("no upgrade engine for this cluster provider".into())
        }
        (Ok(h), Some(v), Some(u)) if ready && !inp.cancel.is_cancelled() => {
            if let Some(st) = inp.statuses {
                st.pending(UPGRADE_CONTEXT, &format!("rolling every node to {v}"))
                    .await;
            }
            let probe = match inp.availability {
                Some(a) => match a.start(h).await {
                    Ok(run) => Some(run),
                    Err(why) => {
                        availability_error = Some(why);
                        None
                    }
                },
                None => None,
            };
            let result = u
                .upgrade(h, v, &inp.artifacts.join("upgrade-report.json"))
                .await;
            if let Some(run) = probe {
                availability_report = Some(run.stop().await);
            }
            // With the gate's own probe, disruption is judged in the Availability step.
            let engine_threshold = inp
                .availability
                .is_none()
                .then_some(p.max_disruption_seconds);
            match result {
                Ok(summary) => match judge(&summary, engine_threshold) {
                    Ok(facts) => {
                        tracing::info!(%facts, "upgrade done");
                        upgrade_facts = Some(facts);
                        StepOutcome::Passed
                    }
                    Err(why) => StepOutcome::Failed(why),
                },
                Err(e) => StepOutcome::Failed(e),
            }
        }
        _ => StepOutcome::Skipped("the cluster is not up and ready".into()),
    };
    let upgrade_took = t.elapsed();
    let upgrade_ran = !matches!(upgrade, StepOutcome::Skipped(_));
    steps.record("Upgrade", upgrade_took, upgrade.clone());
    let availability_outcome = (inp.availability.is_some() && upgrade_ran).then(|| {
        let outcome = match (&availability_report, &availability_error) {
            (_, Some(why)) => StepOutcome::Failed(format!("availability not measured: {why}")),
            (Some(r), None) => match availability::judge(r, p.max_disruption_seconds) {
                Ok(facts) => {
                    tracing::info!(%facts, "availability held during the upgrade");
                    StepOutcome::Passed
                }
                Err(why) => {
                    if !r.errors.is_empty() {
                        availability_error = Some(r.errors.join("; "));
                    }
                    StepOutcome::Failed(why)
                }
            },
            (None, None) => StepOutcome::Skipped("the upgrade did not run".into()),
        };
        steps.record("Availability", upgrade_took, outcome.clone());
        outcome
    });
    // An interrupted run's statuses are settled by `abort` ("aborted"), not here.
    if let (Some(st), true, false) = (inp.statuses, upgrade_ran, inp.cancel.is_cancelled()) {
        let (state, description) = upgrade_status(
            &upgrade,
            availability_outcome.as_ref(),
            availability_error.is_some(),
            upgrade_facts.as_deref(),
        );
        st.finish(UPGRADE_CONTEXT, state, &description).await;
    }
    match (&handle, ready && !inp.cancel.is_cancelled()) {
        (Ok(h), true) => {
            let ctx = RunContext {
                runner: inp.runner,
                run_id: inp.run_id.clone(),
                artifacts: inp.artifacts.clone(),
                kubeconfig: Some(h.kubeconfig_internal.clone()),
                network: h.network.clone().unwrap_or_else(|| "host".into()),
                pull: inp.pull,
                stop_grace: inp.stop_grace,
                heartbeat: Duration::from_secs(60),
                cancel: inp.cancel.clone(),
            };
            // Suites that check versions (the smoke suite) learn what the nodes should run.
            let specs: Vec<SuiteSpec> = inp
                .suites
                .iter()
                .cloned()
                .map(|mut s| {
                    if let Some(v) = &p.target_version {
                        s.env
                            .entry(TARGET_VERSION_ENV.into())
                            .or_insert_with(|| v.clone());
                    }
                    s
                })
                .collect();
            let t = Instant::now();
            let runs = run_suites(&ctx, inp.statuses, &specs, p.jobs, false, p.fail_on_flaky).await;
            let took = t.elapsed();
            for (result, error) in runs {
                let step_time = result.duration.unwrap_or(took);
                steps.record(
                    format!("Suite {}", result.name),
                    step_time,
                    suite_step(&result, error.as_ref()),
                );
                if let Some(e) = error {
                    suite_errors.push(e);
                }
                suites.push(result);
            }
        }
        _ => {
            let why = if inp.cancel.is_cancelled() {
                "interrupted"
            } else {
                "the cluster is not up and ready"
            };
            for s in inp.suites {
                steps.record(
                    format!("Suite {}", s.name),
                    Duration::ZERO,
                    StepOutcome::Skipped(why.into()),
                );
            }
        }
    }

    let t = Instant::now();
    if let (true, Ok(h)) = (p.keep_cluster, &handle) {
        let kept = format!("kept (keep_cluster); kubeconfig {}", h.kubeconfig.display());
        steps.record("Down", Duration::ZERO, StepOutcome::Skipped(kept));
    } else {
        let outcome = match inp.cluster.down(&inp.cluster_name).await {
            Ok(()) => StepOutcome::Passed,
            // After a failed Up there may be nothing to take down.
            Err(crate::cluster::ClusterError::NotFound { .. }) if handle.is_err() => {
                StepOutcome::Passed
            }
            Err(e) => StepOutcome::Failed(e.to_string()),
        };
        steps.record("Down", t.elapsed(), outcome);
    }
    GateReport {
        suites,
        suite_errors,
        steps,
        availability: availability_report,
        availability_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused time: the 20 s grace passes without waiting for it (connection attempts to a
    // closed port fail at once).
    #[tokio::test(start_paused = true)]
    async fn ready_fails_fast_naming_the_server_when_the_api_cannot_be_reached() {
        // Regression: against a closed port the step logged "client error (Connect)" every
        // second for its whole 5-minute timeout, naming neither server nor kubeconfig.
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"http://127.0.0.1:1\"}\n\
             contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n",
        )
        .unwrap();
        let handle = ClusterHandle {
            name: "closed".into(),
            kubeconfig: kubeconfig.clone(),
            kubeconfig_internal: kubeconfig.clone(),
            network: None,
            api_url: "http://127.0.0.1:1".into(),
        };
        let started = std::time::Instant::now();
        let e = KubeReadiness
            .wait_ready(&handle, Duration::from_secs(300), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
        assert!(
            e.contains("cannot reach the API server http://127.0.0.1:1")
                && e.contains(&kubeconfig.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn ready_checks_are_smoke_checks() {
        for c in READY_CHECKS {
            assert!(smoke::checks::CHECK_NAMES.contains(c), "{c}");
        }
    }

    #[test]
    fn upgrade_status_says_failure_for_a_verdict_and_error_when_not_measured() {
        let ok = StepOutcome::Passed;
        let facts = "3/3 nodes replaced in 12s, 6 evictions, 0.0s below minAvailable";
        assert_eq!(
            upgrade_status(&ok, Some(&ok), false, Some(facts)),
            (StatusState::Success, facts.to_string())
        );
        let disrupted = StepOutcome::Failed(
            "disruption: 3.0s below minimum (allowed 0.0s): PDB default/web 3.0s\nworst moments:"
                .into(),
        );
        let (state, d) = upgrade_status(&ok, Some(&disrupted), false, Some(facts));
        assert_eq!(state, StatusState::Failure);
        assert!(
            d.starts_with("disruption: 3.0s") && !d.contains('\n'),
            "{d}"
        );
        let unmeasured = StepOutcome::Failed("availability not measured: watch failed".into());
        assert_eq!(
            upgrade_status(&ok, Some(&unmeasured), true, Some(facts)).0,
            StatusState::Error
        );
        let blocked = StepOutcome::Failed("upgrade incomplete: 2/3 nodes replaced".into());
        assert_eq!(
            upgrade_status(&blocked, Some(&ok), false, None),
            (
                StatusState::Failure,
                "upgrade incomplete: 2/3 nodes replaced".to_string()
            )
        );
        assert_eq!(
            upgrade_status(&StepOutcome::Skipped("x".into()), None, false, None).0,
            StatusState::Error
        );
    }
}
