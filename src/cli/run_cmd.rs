//! `e2e-gate run` (the default command): the composition root of the suite runner.
//! Resolves suites and paths, connects to Docker, runs suites (`--jobs` at a time), writes
//! `junit.xml` and `summary.json`, and maps the verdict to an exit code.

use super::args::{Format, JunitStyleOpt, RunArgs};
use super::{signals, Exit};
use crate::atomic_write::write_atomically;
use crate::exit_code::{self, HasExitCode};
use crate::results::summary::{render_human_styled, summarize_with};
use crate::results::write::junit::{write_junit_string, JunitOptions, JunitStyle};
use crate::results::SuiteResult;
use crate::runner::{DockerRunner, RunContext};
use crate::status::{self, StatusPublisher, StatusState};
use crate::suite::{self, Overrides, SuiteSpec};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Resolved paths and options, from flags and the environment.
#[derive(Debug)]
struct Resolved {
    suites: Vec<SuiteSpec>,
    artifacts: PathBuf,
    kubeconfig: Option<PathBuf>,
}

fn resolve(args: &RunArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolved, String> {
    let overrides = Overrides {
        focus: args.focus.clone(),
        skip: args.skip.clone(),
        flake_attempts: args.flake_attempts,
        reruns: args.reruns,
        parallel: args.parallel,
        timeout: args.timeout,
        stall_timeout: args.stall_timeout,
    };
    let suites = suite::select(&args.suites_dir, &args.suites)
        .and_then(|list| {
            list.into_iter()
                .map(|s| s.apply(&overrides))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| e.to_string())?;
    if args.jobs == 0 {
        return Err("--jobs: must be at least 1".into());
    }
    let artifacts = artifacts_dir(&args.common, env);
    let (kubeconfig, origin) = match &args.kubeconfig {
        Some(p) => (Some(p.clone()), "--kubeconfig"),
        // KUBECONFIG may be a list; the first file is the one kubectl would write to.
        None => (
            env("KUBECONFIG").and_then(|v| v.split(':').find(|s| !s.is_empty()).map(PathBuf::from)),
            "KUBECONFIG",
        ),
    };
    let kubeconfig = match kubeconfig {
        Some(p) if !p.is_file() => {
            return Err(format!("{origin}: {} is not a readable file", p.display()));
        }
        Some(p) => {
            Some(std::path::absolute(&p).map_err(|e| format!("{origin}: {}: {e}", p.display()))?)
        }
        None => None,
    };
    Ok(Resolved {
        suites,
        artifacts,
        kubeconfig,
    })
}

/// `--artifacts`, else `$ARTIFACTS` (when not empty), else `./artifacts`.
pub(super) fn artifacts_dir(
    common: &super::args::CommonRunArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> PathBuf {
    common
        .artifacts
        .clone()
        .or_else(|| {
            env("ARTIFACTS")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("artifacts"))
}

pub(super) fn run_id() -> String {
    use rand::Rng;
    let n: u32 = rand::rng().random();
    format!("{n:08x}")
}

pub(super) fn junit_options_for(style: JunitStyleOpt, max_output_bytes: usize) -> JunitOptions {
    JunitOptions {
        style: match style {
            JunitStyleOpt::Jenkins => JunitStyle::Jenkins,
            JunitStyleOpt::Testgrid => JunitStyle::Testgrid,
        },
        max_output_bytes,
        report_name: "e2e-gate".into(),
    }
}

fn print_dry_run(results: &[SuiteResult], format: Format) {
    for r in results {
        let names: Vec<&str> = r
            .specs
            .iter()
            .filter(|s| s.is_dry_run())
            .map(|s| s.name.as_str())
            .collect();
        eprintln!("{}: {} specs would run", r.name, names.len());
        for n in &names {
            if format == Format::Human {
                println!("{}\t{n}", r.name);
            }
        }
    }
}

/// Builds the status publisher, or none when no repository/commit is known or for dry runs.
/// A GitHub that cannot be reached does not stop the tests; it only costs exit code 4.
pub(super) async fn publisher(
    github: &super::github_args::GithubArgs,
    dry_run: bool,
) -> Result<(Option<StatusPublisher>, Option<String>), Exit> {
    if dry_run {
        return Ok((None, None));
    }
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    match super::github_args::reporter_from_args(github, &env).await {
        Ok(Some((reporter, target_url))) => {
            Ok((Some(StatusPublisher::new(reporter, target_url)), None))
        }
        Ok(None) => Ok((None, None)),
        Err(e @ status::StatusError::Config(_)) => Err(e.into()),
        Err(e) => Ok((
            None,
            Some(format!("GitHub statuses will not be posted: {e}")),
        )),
    }
}

/// Runs the selected suites.
pub(crate) async fn run(mut args: RunArgs) -> Result<u8, Exit> {
    args.suites_dir = super::args::locate(&args.suites_dir);
    let env = |k: &str| std::env::var(k).ok();
    let resolved = resolve(&args, &env).map_err(Exit::usage)?;
    let (statuses, status_setup_error) = publisher(&args.github, args.dry_run).await?;
    if let Some(e) = &status_setup_error {
        tracing::error!("{e}");
    }
    let docker = DockerRunner::connect().await?;
    super::artifacts::clear(&resolved.artifacts)?;
    let cancel = signals::cancel_on_signals();
    let ctx = RunContext {
        runner: &docker,
        run_id: run_id(),
        artifacts: resolved.artifacts.clone(),
        kubeconfig: resolved.kubeconfig.clone(),
        network: args.network.clone().unwrap_or_else(|| "host".into()),
        pull: args.common.pull,
        stop_grace: args.common.stop_grace,
        heartbeat: Duration::from_secs(60),
        cancel: cancel.clone(),
    };
    tracing::info!(run = %ctx.run_id, artifacts = %ctx.artifacts.display(), suites = ?args.suites, "starting");

    let started = tokio::time::Instant::now();
    if let Some(p) = &statuses {
        p.pending(
            status::RUN_CONTEXT,
            &format!("running {} suite(s)", resolved.suites.len()),
        )
        .await;
    }
    let runs = crate::gate::run_suites(
        &ctx,
        statuses.as_ref(),
        &resolved.suites,
        args.jobs,
        args.dry_run,
        args.common.fail_on_flaky,
    )
    .await;
    let infra_failed = runs.iter().any(|(_, e)| e.is_some());
    let suites: Vec<SuiteResult> = runs.into_iter().map(|(r, _)| r).collect();

    if args.dry_run {
        print_dry_run(&suites, args.common.format);
    }
    let conclusion = Conclusion {
        artifacts: &ctx.artifacts,
        extra_junit_suites: Vec::new(),
        junit: junit_options_for(args.junit_style, args.max_output_bytes),
        format: args.common.format,
        fail_on_flaky: args.common.fail_on_flaky,
        statuses: statuses.as_ref(),
        aggregate_context: status::RUN_CONTEXT,
        started,
        cancel: &cancel,
        infra_failed,
        failed_steps: Vec::new(),
        steps: Vec::new(),
        status_setup_error,
    };
    Ok(conclude(&suites, conclusion).await)
}

/// Whether stderr is a terminal that wants colour (`NO_COLOR` unset, `TERM` not `dumb`): Jenkins
/// consoles and files get plain text.
pub(super) fn colour_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// How a run or a gate ends.
pub(super) struct Conclusion<'a> {
    /// Artifacts root (`junit.xml`, `summary.json`).
    pub(crate) artifacts: &'a Path,
    /// Suites written to JUnit but not counted in the summary (the gate's runner steps).
    pub(crate) extra_junit_suites: Vec<SuiteResult>,
    pub(crate) junit: JunitOptions,
    /// Summary format on stdout.
    pub(crate) format: Format,
    /// Flaky specs fail the run.
    pub(crate) fail_on_flaky: bool,
    /// Where statuses go.
    pub(crate) statuses: Option<&'a StatusPublisher>,
    pub(crate) aggregate_context: &'a str,
    pub(crate) started: tokio::time::Instant,
    /// Fired on SIGINT/SIGTERM.
    pub(crate) cancel: &'a tokio_util::sync::CancellationToken,
    /// An infrastructure step failed (Docker, cluster).
    pub(crate) infra_failed: bool,
    /// Gate steps that are not suites and failed as verdicts (the upgrade, availability), as
    /// "Step: why" one-liners: the verdict is "failed" and they head the aggregate status.
    pub(crate) failed_steps: Vec<String>,
    /// Every step of a gate, for `summary.json` (empty for `run`).
    pub(crate) steps: Vec<crate::results::summary::StepSummary>,
    /// GitHub could not be set up (reported, exit 4 at most).
    pub(crate) status_setup_error: Option<String>,
}

/// Writes `junit.xml` and `summary.json` atomically, prints the summary, settles the aggregate
/// status (or `aborted` on a signal), and picks the exit code.
pub(super) async fn conclude(suites: &[SuiteResult], c: Conclusion<'_>) -> u8 {
    let summary = summarize_with(suites, c.fail_on_flaky).with_steps(
        c.steps.clone(),
        !c.failed_steps.is_empty(),
        c.infra_failed,
    );
    let mut code = summary.exit_code();
    let mut junit_suites = suites.to_vec();
    junit_suites.extend(c.extra_junit_suites);
    let junit = write_junit_string(&junit_suites, &c.junit);
    let summary_json = serde_json::to_string_pretty(&summary).unwrap_or_default();
    for (name, bytes) in [
        ("junit.xml", junit.as_bytes()),
        ("summary.json", summary_json.as_bytes()),
    ] {
        let path = c.artifacts.join(name);
        if let Err(e) = write_atomically(&path, bytes) {
            eprintln!("error: cannot write {}: {e}", path.display());
            code = exit_code::INFRA;
        }
    }
    eprint!("{}", render_human_styled(&summary, colour_stderr()));
    if c.format == Format::Json {
        println!("{summary_json}");
    }
    if !c.failed_steps.is_empty() {
        // The suites' line above says how the tests went; this says why the gate is closed.
        eprintln!("gate: FAILED — {}", c.failed_steps.join("; "));
        if code == exit_code::OK {
            code = exit_code::FAILED;
        }
    }
    if c.infra_failed {
        code = exit_code::INFRA;
    }
    let mut status_errors = match c.statuses {
        Some(p) => {
            if c.cancel.is_cancelled() {
                p.abort().await;
            } else {
                let state = match code {
                    exit_code::OK => StatusState::Success,
                    exit_code::FAILED => StatusState::Failure,
                    _ => StatusState::Error,
                };
                let description = match c.failed_steps.first() {
                    Some(step) => status::truncate_description(step),
                    None => status::describe_run(suites, c.started.elapsed()),
                };
                p.finish(c.aggregate_context, state, &description).await;
            }
            p.errors()
        }
        None => Vec::new(),
    };
    status_errors.extend(c.status_setup_error);
    for e in &status_errors {
        eprintln!("error: GitHub status: {e}");
    }
    if c.cancel.is_cancelled() {
        eprintln!(
            "interrupted: partial results written to {}",
            c.artifacts.display()
        );
        code = exit_code::INTERRUPTED;
    } else if code == exit_code::OK && !status_errors.is_empty() {
        // The tests passed; only the report to GitHub failed.
        code = exit_code::STATUS_POST_FAILED;
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> RunArgs {
        let suites_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/suites");
        let mut argv = vec!["e2e-gate", "--suites-dir", suites_dir, "--suite", "custom"];
        argv.extend_from_slice(extra);
        super::super::args::Cli::try_parse_from(argv).unwrap().run
    }

    #[test]
    fn artifacts_default_from_env_then_dot() {
        let r = resolve(&args(&[]), &|k| (k == "ARTIFACTS").then(|| "/tmp/a".into())).unwrap();
        assert_eq!(r.artifacts, PathBuf::from("/tmp/a"));
        let r = resolve(&args(&[]), &|_| None).unwrap();
        assert_eq!(r.artifacts, PathBuf::from("artifacts"));
        assert!(r.kubeconfig.is_none());
    }

    #[test]
    fn missing_kubeconfig_names_the_source() {
        let e = resolve(&args(&[]), &|k| {
            (k == "KUBECONFIG").then(|| "/nope/config".into())
        })
        .unwrap_err();
        assert!(
            e.contains("KUBECONFIG") && e.contains("/nope/config"),
            "{e}"
        );
        let e = resolve(&args(&["--kubeconfig", "/nope/kc"]), &|_| None).unwrap_err();
        assert!(e.contains("--kubeconfig") && e.contains("/nope/kc"), "{e}");
    }

    #[test]
    fn overrides_apply_and_bad_ones_are_usage_errors() {
        let r = resolve(&args(&["--reruns", "3", "--focus", "x"]), &|_| None).unwrap();
        assert_eq!(r.suites[0].reruns, 3);
        assert_eq!(r.suites[0].focus, vec!["x".to_string()]);
        let e = resolve(&args(&["--focus", "("]), &|_| None).unwrap_err();
        assert!(e.contains("--focus"), "{e}");
        let e = resolve(&args(&["--jobs", "0"]), &|_| None).unwrap_err();
        assert!(e.contains("--jobs"), "{e}");
    }
}
