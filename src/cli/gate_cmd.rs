//! `e2e-gate gate`: cluster up → ready → (upgrade) → suites → down, always; one combined JUnit
//! with a runner testsuite of the steps; GitHub statuses per suite plus `e2e-gate/gate`.

use super::args::JunitStyleOpt;
use super::run_cmd::{artifacts_dir, conclude, junit_options_for, publisher, run_id, Conclusion};
use super::{signals, Exit};
use crate::first_line;
use crate::gate::{self, profile, GateInputs, Provider};
use crate::runner::{ContainerRunner, DockerRunner};
use crate::smoke::image as smoke_image;
use crate::suite;
use crate::upgrade::options::UpgradeOptions;
use crate::upgrade::use_case::{self, Cloud, Target};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Aggregate status context of a gate run.
pub(crate) const GATE_CONTEXT: &str = "e2e-gate/gate";

/// Options of `gate`.
#[derive(Debug, Args)]
pub(crate) struct GateArgs {
    /// Profile in the gate file.
    #[arg(long, default_value = "default", env = "E2E_GATE_PROFILE")]
    pub(crate) profile: String,
    /// Gate file with the profiles.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "ci/gate.toml",
        env = "E2E_GATE_FILE"
    )]
    pub(crate) gate_file: PathBuf,
    /// Directory of suite files.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "suites",
        env = "E2E_GATE_SUITES_DIR"
    )]
    pub(crate) suites_dir: PathBuf,
    /// Suite to run, repeatable [default: from the profile].
    #[arg(long = "suite", value_name = "NAME")]
    pub(crate) suites: Vec<String>,
    /// Cluster provider: sim, kind or existing [default: from the profile].
    #[arg(long, value_name = "PROVIDER")]
    pub(crate) provider: Option<String>,
    /// Topology (sim) or kind config [default: from the profile].
    #[arg(long, value_name = "FILE")]
    pub(crate) topology: Option<PathBuf>,
    /// Kubeconfig of an existing cluster [default: from the profile, else $KUBECONFIG].
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Cluster name [default: e2e-gate-<run id>] (lowercase letters, digits and '-').
    #[arg(long, value_name = "NAME", value_parser = super::cluster_cmd::cluster_name)]
    pub(crate) cluster_name: Option<String>,
    /// Keep the cluster afterwards, to debug it.
    #[arg(long)]
    pub(crate) keep_cluster: bool,
    /// Skip the Upgrade step whatever the profile says (also: E2E_GATE_TARGET_VERSION set to
    /// an empty value). Needed for kind and existing clusters, whose node pools the upgrade
    /// engine cannot drive yet.
    #[arg(long)]
    pub(crate) no_upgrade: bool,
    /// Suites run concurrently [default: from the profile].
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// How long the cluster may take to become ready after it is up.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::args::duration)]
    pub(crate) ready_timeout: Duration,
    /// Output, limits and images (as for `run`).
    #[command(flatten)]
    pub(crate) common: super::args::CommonRunArgs,
    /// GitHub commit statuses: one per suite plus `e2e-gate/gate`.
    #[command(flatten)]
    pub(crate) github: super::github_args::GithubArgs,
}

fn resolve_profile(
    args: &GateArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<gate::Profile, String> {
    let text = std::fs::read_to_string(&args.gate_file)
        .map_err(|e| format!("cannot read gate file {}: {e}", args.gate_file.display()))?;
    let file = profile::parse(&text, &args.gate_file)?;
    let p = profile::resolve(&file, &args.profile, &args.gate_file)?;
    let mut p = profile::apply_env(p, env)?;
    if !args.suites.is_empty() {
        p.suites = args.suites.clone();
    }
    if let Some(v) = &args.provider {
        p.provider = Provider::parse(v)
            .ok_or_else(|| format!("--provider: {v:?} is not sim, kind or existing"))?;
    }
    if let Some(t) = &args.topology {
        p.topology = Some(t.clone());
    }
    if let Some(k) = args.kubeconfig.clone().or_else(|| {
        env("KUBECONFIG")
            .filter(|_| p.kubeconfig.is_none())
            .map(PathBuf::from)
    }) {
        p.kubeconfig = Some(k);
    }
    if let Some(j) = args.jobs {
        if j == 0 {
            return Err("--jobs: must be at least 1".into());
        }
        p.jobs = j;
    }
    if args.no_upgrade {
        p.target_version = None;
    }
    if p.target_version.is_some()
        && p.provider != Provider::Sim
        && p.upgrade.pool_command.is_none()
        && p.upgrade.aws_cluster.is_none()
    {
        return Err(format!(
            "profile {}: target_version {} needs node pools the upgrade engine can drive: \
             provider sim (the simulated cloud), AWS Auto Scaling groups (aws_cluster in \
             [profile.{}.upgrade]), or a pool command (pool_command there; README: \"Node pools \
             through a command\"); with provider {} and neither, run without the upgrade: \
             --no-upgrade, or E2E_GATE_TARGET_VERSION= (empty)",
            p.name,
            p.target_version.as_deref().unwrap_or(""),
            p.name,
            p.provider.as_str()
        ));
    }
    p.keep_cluster |= args.keep_cluster;
    p.fail_on_flaky |= args.common.fail_on_flaky;
    Ok(p)
}

/// Builds the smoke image from this binary when a suite needs it and it is missing.
async fn ensure_smoke_image(
    docker: &DockerRunner,
    suites: &[suite::SuiteSpec],
    steps: &mut gate::StepRecorder,
) {
    if !suites.iter().any(|s| s.image == smoke_image::DEFAULT_TAG) {
        return;
    }
    // Current when it holds this very binary; stale (an older build) or missing: rebuilt.
    let current = std::env::current_exe()
        .and_then(std::fs::read)
        .map(|b| smoke_image::fingerprint(&b))
        .ok();
    let holds = docker
        .image_label(smoke_image::DEFAULT_TAG, smoke_image::BINARY_LABEL)
        .await;
    if current.is_some() && holds == current {
        return;
    }
    let t = std::time::Instant::now();
    let outcome = super::smoke_cmd::build_smoke_image(docker, smoke_image::DEFAULT_TAG)
        .await
        .map_or_else(gate::StepOutcome::Failed, |_| gate::StepOutcome::Passed);
    steps.record("Build smoke image", t.elapsed(), outcome);
}

pub(crate) async fn run(mut args: GateArgs) -> Result<u8, Exit> {
    args.gate_file = super::args::locate(&args.gate_file);
    args.suites_dir = super::args::locate(&args.suites_dir);
    // Empty variables count as unset, except E2E_GATE_TARGET_VERSION: set empty, it is an
    // explicit "no upgrade" (it was silently ignored).
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty() || k == "E2E_GATE_TARGET_VERSION")
    };
    let profile = resolve_profile(&args, &env).map_err(Exit::usage)?;
    // The profile's engine options, validated as the flags of `upgrade apply` are.
    let (upgrade_options, cloud) = profile
        .upgrade
        .options(
            profile.target_version.as_deref().unwrap_or_default(),
            super::args::duration,
        )
        .and_then(|o| Ok((o, profile.upgrade.cloud(super::args::duration)?)))
        .map_err(|e| {
            Exit::usage(format!(
                "{} [profile.{}.upgrade]: {e}",
                args.gate_file.display(),
                profile.name
            ))
        })?;
    // The simulated cluster's own cloud unless the profile names a pool command.
    let cloud = cloud.or((profile.provider == Provider::Sim).then_some(Cloud::Sim));
    let suites = suite::select(&args.suites_dir, &profile.suites)?;
    let (statuses, status_setup_error) = publisher(&args.github, false).await?;
    let docker = DockerRunner::connect().await?;
    let cancel = signals::cancel_on_signals();
    let started = tokio::time::Instant::now();
    let id = run_id();
    let artifacts = artifacts_dir(&args.common, &env);
    super::artifacts::clear(&artifacts)?;
    tracing::info!(profile = %profile.name, provider = ?profile.provider, suites = ?profile.suites, run = %id, "gate starting");
    if let Some(p) = &statuses {
        p.pending(
            GATE_CONTEXT,
            &format!("gate running: {}", profile.suites.join(", ")),
        )
        .await;
    }
    let mut pre_steps = gate::StepRecorder::default();
    ensure_smoke_image(&docker, &suites, &mut pre_steps).await;
    let cluster = super::cluster_cmd::cluster_provider(profile.provider, profile.time_scale);
    let upgrader = cloud.map(|cloud| InProcessUpgrade {
        options: upgrade_options,
        cloud,
        cancel: cancel.clone(),
    });
    let inputs = GateInputs {
        cluster: cluster.as_ref(),
        ready: &gate::KubeReadiness,
        runner: &docker as &dyn ContainerRunner,
        // The engine needs a cloud: the simulated cluster's, or the profile's pool command.
        upgrade: upgrader.as_ref().map(|u| u as &dyn gate::UpgradeRunner),
        availability: Some(&gate::availability::kube_watch::KubeAvailabilityWatch),
        statuses: statuses.as_ref(),
        profile: &profile,
        suites: &suites,
        cluster_name: args
            .cluster_name
            .clone()
            .unwrap_or_else(|| format!("e2e-gate-{id}")),
        run_id: id,
        artifacts: artifacts.clone(),
        pull: args.common.pull,
        stop_grace: args.common.stop_grace,
        ready_timeout: args.ready_timeout,
        cancel: cancel.clone(),
    };
    let report = gate::run_gate(&inputs).await;
    if let Some(a) = &report.availability {
        write_availability(&artifacts, a);
    }
    let mut steps = pre_steps;
    steps.append(&report.steps);
    // Upgrade and Availability failures are verdicts (exit 1); a probe that could not measure
    // is infrastructure (exit 3), like a failed Up or Down.
    let mut failed_steps = Vec::new();
    let mut infra_failed = !report.suite_errors.is_empty() || report.availability_error.is_some();
    for s in steps.steps() {
        eprintln!(
            "  step {:<28} {:>7.1}s  {}",
            s.name,
            s.duration.as_secs_f64(),
            describe(&s.outcome)
        );
        if let gate::StepOutcome::Failed(why) = &s.outcome {
            match s.name.as_str() {
                "Upgrade" | "Availability" => {
                    failed_steps.push(format!("{}: {}", s.name, first_line(why)))
                }
                name => infra_failed |= !name.starts_with("Suite "),
            }
        }
    }
    let code = conclude(
        &report.suites,
        Conclusion {
            artifacts: Path::new(&artifacts),
            extra_junit_suites: vec![steps.to_suite(started.elapsed())],
            junit: junit_options_for(JunitStyleOpt::Jenkins, 4096),
            format: args.common.format,
            fail_on_flaky: profile.fail_on_flaky,
            statuses: statuses.as_ref(),
            aggregate_context: GATE_CONTEXT,
            started,
            cancel: &cancel,
            infra_failed,
            failed_steps,
            steps: steps.steps().iter().map(gate::Step::summary).collect(),
            status_setup_error,
        },
    )
    .await;
    Ok(code)
}

/// Runs the upgrade use case in-process against the gate's cluster and its cloud,
/// with the profile's engine options; its plan and progress lines go to stderr.
struct InProcessUpgrade {
    options: UpgradeOptions,
    cloud: Cloud,
    cancel: tokio_util::sync::CancellationToken,
}

#[async_trait::async_trait]
impl gate::UpgradeRunner for InProcessUpgrade {
    async fn upgrade(
        &self,
        cluster: &crate::cluster::ClusterHandle,
        target_version: &str,
        report: &Path,
    ) -> Result<crate::upgrade::UpgradeReport, String> {
        let options = UpgradeOptions {
            target_version: target_version.to_string(),
            ..self.options.clone()
        };
        let target = Target {
            kubeconfig: Some(cluster.kubeconfig.clone()),
            context: None,
            cloud: Some(self.cloud.clone()),
        };
        // A report left by an earlier run must not be read as this run's.
        let _ = std::fs::remove_file(report);
        // The engine runs on a runtime of its own thread: its request streams borrow across
        // awaits in ways the compiler cannot prove `Send` for the gate's multi-threaded runtime.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let cancel = self.cancel.clone();
        std::thread::Builder::new()
            .name("upgrade".into())
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(async {
                        let run = use_case::apply(
                            &target,
                            &options,
                            |plan| {
                                for line in crate::upgrade::render::render_plan(plan).lines() {
                                    eprintln!("[upgrade] {line}");
                                }
                            },
                            |p| eprintln!("[upgrade] {}", p.line()),
                        );
                        tokio::select! {
                            r = run => Some(r),
                            _ = cancel.cancelled() => None,
                        }
                    }),
                    Err(e) => Some(Err(use_case::UpgradeError::Infra(format!(
                        "cannot start the upgrade's runtime: {e}"
                    )))),
                };
                let _ = tx.send(result);
            })
            .map_err(|e| format!("cannot start the upgrade: {e}"))?;
        let result = match rx.await {
            Ok(Some(r)) => r,
            Ok(None) => return Err("interrupted".into()),
            Err(_) => return Err("the upgrade stopped without a result".into()),
        };
        let write = |r: &crate::upgrade::UpgradeReport| {
            super::write_json(report, r)
                .map_err(|e| format!("{}: cannot write: {e}", report.display()))
        };
        match result {
            Ok(r) => write(&r).map(|()| r),
            Err(e) => {
                let written = match &e {
                    use_case::UpgradeError::Engine { report, .. } => {
                        write(report)?;
                        Some(report.as_ref())
                    }
                    _ => None,
                };
                Err(gate::failure_headline(written, &e.to_string()))
            }
        }
    }
}

/// Writes `availability.json` next to the other artifacts (atomically: temp file + rename).
fn write_availability(artifacts: &Path, report: &gate::availability::AvailabilityReport) {
    let path = artifacts.join("availability.json");
    match super::write_json(&path, report) {
        Ok(()) => {
            for m in &report.worst_moments {
                tracing::warn!(moment = %m.describe(), "availability dipped during the upgrade");
            }
            tracing::info!(path = %path.display(), disruption_seconds = report.disruption_seconds, "availability report written");
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot write the availability report")
        }
    }
}

fn describe(o: &gate::StepOutcome) -> String {
    match o {
        gate::StepOutcome::Passed => "passed".into(),
        gate::StepOutcome::Failed(why) => format!("FAILED: {}", first_line(why)),
        gate::StepOutcome::Skipped(why) => format!("skipped: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> GateArgs {
        let gate_file = concat!(env!("CARGO_MANIFEST_DIR"), "/ci/gate.toml");
        let mut argv = vec!["e2e-gate", "gate", "--gate-file", gate_file];
        argv.extend_from_slice(extra);
        match super::super::args::Cli::try_parse_from(argv)
            .unwrap()
            .command
        {
            Some(super::super::args::Command::Gate(g)) => *g,
            _ => panic!("not a gate command"),
        }
    }

    #[test]
    fn an_existing_cluster_runs_without_the_upgrade_when_asked() {
        // Regression: `gate --provider existing` on the default profile failed with "remove
        // target_version for Existing" (a Rust debug name) and no way out on the command line;
        // an empty E2E_GATE_TARGET_VERSION was ignored.
        let none = |_: &str| None;
        let e = resolve_profile(&args(&["--provider", "existing"]), &none).unwrap_err();
        assert!(
            e.contains("provider existing")
                && e.contains("--no-upgrade")
                && !e.contains("Existing"),
            "{e}"
        );
        let p = resolve_profile(&args(&["--provider", "existing", "--no-upgrade"]), &none).unwrap();
        assert_eq!(p.target_version, None);
        let empty = |k: &str| (k == "E2E_GATE_TARGET_VERSION").then(String::new);
        let p = resolve_profile(&args(&["--provider", "existing"]), &empty).unwrap();
        assert_eq!(p.target_version, None);
        // The default profile keeps its upgrade.
        let p = resolve_profile(&args(&[]), &none).unwrap();
        assert_eq!(p.target_version.as_deref(), Some("v1.34.1"));
    }
}
