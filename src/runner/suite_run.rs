//! One suite, start to finish: the first container, then fresh containers that re-run only the
//! specs that still fail, merged into one [`SuiteResult`] with every attempt kept.
//!
//! Artifacts: `<artifacts>/<suite>/attempt-<n>/e2e.log` (the live stream) and
//! `<artifacts>/<suite>/attempt-<n>/results/` (the container's `RESULTS_DIR`: raw JUnit, `done`).

use super::attempt::{run_attempt, AttemptOutcome, Limits, StopReason};
use super::container::{ContainerRunner, RunnerError};
use super::invocation::{container_for, Attempt, Host};
use super::rerun::{focus_chunks, RerunTarget, MAX_FOCUS_LEN};
use crate::results::{self, AttemptState, Incomplete, Spec, SpecOutcome, SuiteResult};
use crate::suite::SuiteSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Everything a suite run needs from outside.
pub struct RunContext<'a> {
    /// The container engine.
    pub runner: &'a dyn ContainerRunner,
    /// Identifies this e2e-gate run (container names and labels).
    pub run_id: String,
    /// Artifacts root.
    pub artifacts: PathBuf,
    /// Kubeconfig mounted into containers, if any.
    pub kubeconfig: Option<PathBuf>,
    /// Docker network mode.
    pub network: String,
    /// Pull missing images.
    pub pull: bool,
    /// SIGTERM → SIGKILL grace when stopping a container.
    pub stop_grace: Duration,
    /// Progress heartbeat interval.
    pub heartbeat: Duration,
    /// Fired on SIGINT/SIGTERM.
    pub cancel: CancellationToken,
}

/// How long the dry run that lists never-run specs may take after an abort.
const LISTING_DEADLINE: Duration = Duration::from_secs(20);

fn io_err(path: &Path, e: std::io::Error) -> RunnerError {
    RunnerError::Engine {
        op: "artifacts",
        target: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Suite directory under the artifacts root, emptied of a previous run's attempts.
fn fresh_suite_dir(ctx: &RunContext<'_>, suite: &SuiteSpec) -> Result<PathBuf, RunnerError> {
    let dir = ctx.artifacts.join(&suite.name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    Ok(dir)
}

/// Result files of one attempt directory: the container's JUnit/JSON reports plus our live log.
fn attempt_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("results"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    (name.starts_with("junit") && name.ends_with(".xml")) || name.ends_with(".json")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let log = dir.join("e2e.log");
    if log.exists() {
        files.push(log);
    }
    files
}

async fn run_container(
    ctx: &RunContext<'_>,
    suite: &SuiteSpec,
    attempt: &Attempt,
    dir: &Path,
    limits: &Limits,
    cancel: &CancellationToken,
) -> Result<(AttemptOutcome, SuiteResult), RunnerError> {
    let results_dir = dir.join("results");
    std::fs::create_dir_all(&results_dir).map_err(|e| io_err(&results_dir, e))?;
    let host = Host {
        run_id: ctx.run_id.clone(),
        results_dir: std::path::absolute(&results_dir).map_err(|e| io_err(&results_dir, e))?,
        kubeconfig: ctx.kubeconfig.clone(),
        network: ctx.network.clone(),
    };
    let spec = container_for(suite, attempt, &host);
    // What the container was given, for people debugging a run (and for tests).
    let record = dir.join("container.json");
    std::fs::write(&record, container_record(&spec)).map_err(|e| io_err(&record, e))?;
    tracing::info!(
        suite = %suite.name, container = attempt.container, dry_run = attempt.dry_run,
        name = %spec.name, "starting container"
    );
    let outcome = run_attempt(
        ctx.runner,
        &spec,
        &dir.join("e2e.log"),
        &suite.name,
        limits,
        cancel,
    )
    .await?;
    let result = results::load::load_files(&attempt_files(dir), &suite.name);
    Ok((outcome, result))
}

fn container_record(spec: &super::container::ContainerSpec) -> String {
    let value = serde_json::json!({
        "name": spec.name,
        "image": spec.image,
        "entrypoint": spec.entrypoint,
        "cmd": spec.cmd,
        "env": spec.env.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "mounts": spec.mounts.iter().map(|m| serde_json::json!({
            "host": m.host.display().to_string(), "container": m.container, "read_only": m.read_only,
        })).collect::<Vec<_>>(),
        "labels": spec.labels,
        "network": spec.network,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn limits(ctx: &RunContext<'_>, suite: &SuiteSpec) -> Limits {
    Limits {
        timeout: suite.timeout,
        stall_timeout: suite.stall_timeout,
        stop_grace: ctx.stop_grace,
        heartbeat: ctx.heartbeat,
    }
}

/// Names of the specs a dry run selected: listed as "would run", or (when the dry run was not
/// recognised as such) reported as having run.
fn selected_names(dry: &SuiteResult) -> Vec<String> {
    dry.specs
        .iter()
        .filter(|s| {
            s.is_dry_run()
                || s.attempts
                    .iter()
                    .any(|a| matches!(a.state, AttemptState::Passed | AttemptState::Failed))
        })
        .map(|s| s.name.clone())
        .collect()
}

/// Marks selected specs that never ran: the run was stopped before them.
fn mark_not_run(result: &mut SuiteResult, selected: &[String], reason: &str) {
    for name in selected {
        match result.specs.iter_mut().find(|s| &s.name == name) {
            Some(spec)
                if spec
                    .attempts
                    .iter()
                    .any(|a| matches!(a.state, AttemptState::Passed | AttemptState::Failed)) => {}
            Some(spec) => {
                spec.attempts = vec![not_run_attempt(reason)];
            }
            None => {
                let mut spec = Spec::single(name.clone(), AttemptState::NotRun);
                spec.attempts = vec![not_run_attempt(reason)];
                result.specs.push(spec);
            }
        }
    }
}

fn not_run_attempt(reason: &str) -> results::Attempt {
    results::Attempt {
        state: AttemptState::NotRun,
        failure_kind: Some("not-run".into()),
        failure: Some(format!("not run: {reason}")),
        ..results::Attempt::default()
    }
}

fn properties(suite: &SuiteSpec) -> Vec<(String, String)> {
    vec![
        ("image".into(), suite.image.clone()),
        ("focus".into(), super::invocation::or_regex(&suite.focus)),
        ("skip".into(), super::invocation::or_regex(&suite.skip)),
        ("flake_attempts".into(), suite.flake_attempts.to_string()),
        ("reruns".into(), suite.reruns.to_string()),
        ("parallel".into(), suite.parallel.to_string()),
    ]
}

/// Lists the specs the suite would run (ginkgo dry run in the same image). Runs nothing.
pub async fn dry_run_suite(
    ctx: &RunContext<'_>,
    suite: &SuiteSpec,
) -> Result<SuiteResult, RunnerError> {
    ctx.runner.ensure_image(&suite.image, ctx.pull).await?;
    let suite_dir = fresh_suite_dir(ctx, suite)?;
    let attempt = Attempt {
        container: 0,
        focus_override: None,
        dry_run: true,
    };
    let (outcome, mut result) = run_container(
        ctx,
        suite,
        &attempt,
        &suite_dir.join("dry-run"),
        &limits(ctx, suite),
        &ctx.cancel,
    )
    .await?;
    result.dry_run = true;
    result.name = suite.name.clone();
    result.properties = properties(suite);
    if let Some(reason) = outcome.stopped {
        result.incomplete = Some(Incomplete {
            reason: format!("dry run stopped: {reason}"),
        });
    }
    Ok(result)
}

/// Runs the suite: first container, then up to `reruns` rounds of fresh containers for the
/// specs that still fail. Infrastructure failures are errors; failing specs are data.
pub async fn run_suite(
    ctx: &RunContext<'_>,
    suite: &SuiteSpec,
) -> Result<SuiteResult, RunnerError> {
    ctx.runner.ensure_image(&suite.image, ctx.pull).await?;
    let suite_dir = fresh_suite_dir(ctx, suite)?;
    let limits = limits(ctx, suite);
    let started = tokio::time::Instant::now();

    let first = Attempt {
        container: 0,
        focus_override: None,
        dry_run: false,
    };
    let (outcome, mut result) = run_container(
        ctx,
        suite,
        &first,
        &suite_dir.join("attempt-0"),
        &limits,
        &ctx.cancel,
    )
    .await?;
    result.name = suite.name.clone();
    if let Some(reason) = &outcome.stopped {
        complete_after_stop(ctx, suite, &suite_dir, &mut result, reason).await;
    }

    let mut container = 0;
    for round in 1..=suite.reruns {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let targets: Vec<RerunTarget> = result
            .specs_with(SpecOutcome::Failed)
            .map(|s| RerunTarget {
                name: s.name.clone(),
                classname: s.classname.as_deref().map(str::to_string),
            })
            .collect();
        if targets.is_empty() {
            break;
        }
        tracing::info!(suite = %suite.name, round, specs = targets.len(), "re-running failed specs in a fresh container");
        for focus in focus_chunks(&targets, suite.ginkgo, MAX_FOCUS_LEN) {
            container += 1;
            let attempt = Attempt {
                container,
                focus_override: Some(focus),
                dry_run: false,
            };
            let dir = suite_dir.join(format!("attempt-{container}"));
            let (outcome, mut rerun) =
                run_container(ctx, suite, &attempt, &dir, &limits, &ctx.cancel).await?;
            // The rerun's JUnit also lists every unfocused spec as skipped: keep only the targets.
            rerun.specs.retain(|s| {
                targets.iter().any(|t| t.name == s.name) && s.outcome() != SpecOutcome::Skipped
            });
            results::merge::merge_rerun(&mut result, rerun, container);
            if let Some(reason) = outcome.stopped {
                if result.incomplete.is_none() {
                    result.incomplete = Some(Incomplete {
                        reason: format!("rerun container {container} stopped: {reason}"),
                    });
                }
                break;
            }
        }
    }
    result.properties = properties(suite);
    result.duration = Some(started.elapsed());
    Ok(result)
}

/// After a stopped container: record why, and list the selected specs that never ran
/// (a short dry run in the same image tells which were selected).
async fn complete_after_stop(
    ctx: &RunContext<'_>,
    suite: &SuiteSpec,
    suite_dir: &Path,
    result: &mut SuiteResult,
    reason: &StopReason,
) {
    result.incomplete = Some(Incomplete {
        reason: format!("container stopped: {reason}"),
    });
    let listing = Attempt {
        container: 0,
        focus_override: None,
        dry_run: true,
    };
    let listing_limits = Limits {
        timeout: LISTING_DEADLINE,
        stall_timeout: LISTING_DEADLINE,
        stop_grace: Duration::from_secs(2),
        heartbeat: ctx.heartbeat,
    };
    // Its own token: the listing must run even though the suite's token may be cancelled.
    let token = CancellationToken::new();
    let dir = suite_dir.join("not-run-listing");
    match run_container(ctx, suite, &listing, &dir, &listing_limits, &token).await {
        Ok((_, dry)) => mark_not_run(result, &selected_names(&dry), &reason.to_string()),
        Err(e) => {
            tracing::warn!(suite = %suite.name, error = %e, "cannot list the specs that never ran")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_run_marks_only_specs_without_a_run_attempt() {
        let mut r = SuiteResult {
            specs: vec![
                Spec::single("ran", AttemptState::Passed),
                Spec::single("listed-skipped", AttemptState::Skipped),
            ],
            ..SuiteResult::default()
        };
        mark_not_run(
            &mut r,
            &["ran".into(), "listed-skipped".into(), "absent".into()],
            "timeout",
        );
        let outcomes: Vec<_> = r
            .specs
            .iter()
            .map(|s| (s.name.as_str(), s.outcome()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("ran", SpecOutcome::Passed),
                ("listed-skipped", SpecOutcome::NotRun),
                ("absent", SpecOutcome::NotRun)
            ]
        );
        assert_eq!(
            r.specs[2].attempts[0].failure.as_deref(),
            Some("not run: timeout")
        );
    }

    #[test]
    fn dry_run_selection_ignores_skipped() {
        let mut listed = Spec::single("c", AttemptState::Skipped);
        listed.attempts[0].failure_kind = Some(results::DRY_RUN_KIND.into());
        let dry = SuiteResult {
            specs: vec![
                Spec::single("a", AttemptState::Passed),
                Spec::single("b", AttemptState::Skipped),
                listed,
            ],
            ..SuiteResult::default()
        };
        assert_eq!(selected_names(&dry), vec!["a".to_string(), "c".to_string()]);
    }
}
