//! One suite, start to finish: the first container, then fresh containers that re-run only the
//! specs that still fail, merged into one [`SuiteResult`] with every attempt kept.
//!
//! Artifacts: `<artifacts>/<suite>/attempt-<n>/e2e.log` (the live stream) and
//! `<artifacts>/<suite>/attempt-<n>/results/` (the container's `RESULTS_DIR`: raw JUnit, `done`).

use super::attempt::{run_attempt, Limits, StopReason};
use super::container::{ContainerRunner, RunnerError};
use super::detect::{detect, settle};
use super::invocation::{container_for, Attempt, Host};
use super::rerun::{focus_chunks, FocusRule, RerunTarget, MAX_FOCUS_LEN};
use crate::results::load::load_attempt;
use crate::results::read::log::{is_placeholder, LogSummary};
use crate::results::{self, AttemptState, Incomplete, Spec, SpecOutcome, SuiteResult};
use crate::suite::SuiteSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Everything a suite run needs from outside.
pub(crate) struct RunContext<'a> {
    pub(crate) runner: &'a dyn ContainerRunner,
    /// Identifies this e2e-gate run (container names and labels).
    pub run_id: String,
    pub(crate) artifacts: PathBuf,
    /// Kubeconfig mounted into containers, if any.
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Docker network mode.
    pub(crate) network: String,
    pub(crate) pull: bool,
    /// SIGTERM → SIGKILL grace when stopping a container.
    pub(crate) stop_grace: Duration,
    pub(crate) heartbeat: Duration,
    /// Fired on SIGINT/SIGTERM.
    pub(crate) cancel: CancellationToken,
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

/// What one container left: how it ended, its results, and its console log read on its own
/// (the runner needs the log's `Running Suite` and `Will run` lines whatever the reports hold).
struct ContainerRun {
    /// Set when e2e-gate stopped the container.
    stopped: Option<StopReason>,
    result: SuiteResult,
    log: Option<LogSummary>,
}

async fn run_container(
    ctx: &RunContext<'_>,
    suite: &SuiteSpec,
    attempt: &Attempt,
    dir: &Path,
    limits: &Limits,
    cancel: &CancellationToken,
) -> Result<ContainerRun, RunnerError> {
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
    let stopped = run_attempt(
        ctx.runner,
        &spec,
        &dir.join("e2e.log"),
        &suite.name,
        limits,
        cancel,
    )
    .await?;
    // Parsing a long run's results is CPU work: off the async threads.
    let dir = dir.to_path_buf();
    let name = suite.name.clone();
    let (result, log) = tokio::task::spawn_blocking(move || load_attempt(&dir, &name))
        .await
        .map_err(|e| RunnerError::Engine {
            op: "results",
            target: suite.name.clone(),
            message: e.to_string(),
        })?;
    Ok(ContainerRun {
        stopped,
        result,
        log,
    })
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

/// Whether an attempt reached a verdict of its own (a spec ginkgo interrupted did not).
fn ran(a: &results::Attempt) -> bool {
    match a.state {
        AttemptState::Passed => true,
        AttemptState::Failed => a.failure_kind.as_deref() != Some("interrupted"),
        _ => false,
    }
}

/// After a stopped container, every selected spec is counted exactly once: a spec that reached a
/// verdict keeps it; the one ginkgo interrupted and the ones it never started become *not run*
/// under their own names. When the results name fewer specs than ran (the log's counts stood in
/// for a missing JUnit), the names of the rest cannot be known: the difference is added as
/// unnamed not-run entries instead of guessing.
fn mark_not_run(result: &mut SuiteResult, selected: &[String], reason: &str) {
    let unnamed_ran = result
        .specs
        .iter()
        .filter(|s| is_placeholder(&s.name) && s.attempts.iter().any(ran))
        .count();
    let not_run_spec = |name: String| Spec {
        name,
        attempts: vec![not_run_attempt(reason, None)],
        ..Spec::default()
    };
    let mut unknown = 0usize;
    for name in selected {
        match result.specs.iter_mut().find(|s| &s.name == name) {
            Some(spec) if spec.attempts.iter().any(ran) => {}
            Some(spec) => {
                let note = spec
                    .attempts
                    .iter()
                    .rev()
                    .find(|a| a.failure_kind.as_deref() == Some("interrupted"))
                    .and_then(|a| a.failure.clone());
                spec.attempts = vec![not_run_attempt(reason, note)];
            }
            None if unnamed_ran > 0 => unknown += 1,
            None => result.specs.push(not_run_spec(name.clone())),
        }
    }
    for i in 1..=unknown.saturating_sub(unnamed_ran) {
        result.specs.push(not_run_spec(format!(
            "(selected spec {i} not run, not named: no JUnit was written)"
        )));
    }
}

fn not_run_attempt(reason: &str, interrupted_at: Option<String>) -> results::Attempt {
    let failure = match interrupted_at {
        Some(text) => format!("not run: {reason}; interrupted while running:\n{text}"),
        None => format!("not run: {reason}"),
    };
    results::Attempt {
        state: AttemptState::NotRun,
        failure_kind: Some("not-run".into()),
        failure: Some(failure),
        ..results::Attempt::default()
    }
}

fn properties(suite: &SuiteSpec, ginkgo: crate::suite::GinkgoVersion) -> Vec<(String, String)> {
    vec![
        ("ginkgo".into(), ginkgo.as_str().into()),
        ("image".into(), suite.image.clone()),
        ("focus".into(), super::invocation::or_regex(&suite.focus)),
        ("skip".into(), super::invocation::or_regex(&suite.skip)),
        ("flake_attempts".into(), suite.flake_attempts.to_string()),
        ("reruns".into(), suite.reruns.to_string()),
        ("parallel".into(), suite.parallel.to_string()),
    ]
}

/// Lists the specs the suite would run (ginkgo dry run in the same image). Runs nothing.
pub(crate) async fn dry_run_suite(
    ctx: &RunContext<'_>,
    suite: &SuiteSpec,
) -> Result<SuiteResult, RunnerError> {
    ctx.runner.ensure_image(&suite.image, ctx.pull).await?;
    let suite_dir = fresh_suite_dir(ctx, suite)?;
    let attempt = Attempt {
        dry_run: true,
        ..Attempt::default()
    };
    let ContainerRun {
        stopped,
        mut result,
        ..
    } = run_container(
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
    let ginkgo = settle(suite.ginkgo, detect(&result, None).ginkgo).0;
    result.properties = properties(suite, ginkgo);
    if let Some(reason) = stopped {
        result.incomplete = Some(Incomplete::new(format!("dry run stopped: {reason}")));
    }
    Ok(result)
}

/// Runs the suite: first container, then up to `reruns` rounds of fresh containers for the
/// specs that still fail. Infrastructure failures are errors; failing specs are data.
pub(crate) async fn run_suite(
    ctx: &RunContext<'_>,
    suite: &SuiteSpec,
) -> Result<SuiteResult, RunnerError> {
    ctx.runner.ensure_image(&suite.image, ctx.pull).await?;
    let suite_dir = fresh_suite_dir(ctx, suite)?;
    let limits = limits(ctx, suite);
    let started = tokio::time::Instant::now();

    let ContainerRun {
        stopped,
        mut result,
        log,
    } = run_container(
        ctx,
        suite,
        &Attempt::default(),
        &suite_dir.join("attempt-0"),
        &limits,
        &ctx.cancel,
    )
    .await?;
    result.name = suite.name.clone();
    let seen = detect(&result, log.as_ref());
    let (ginkgo, mismatch) = settle(suite.ginkgo, seen.ginkgo);
    if let Some(warning) = &mismatch {
        tracing::warn!(suite = %suite.name, "{warning}");
    }
    if let Some(reason) = &stopped {
        complete_after_stop(ctx, suite, &suite_dir, &mut result, reason).await;
    }
    // Reruns speak the ginkgo the image really runs.
    let mut rerun_suite = suite.clone();
    rerun_suite.ginkgo = Some(ginkgo);
    let rule = FocusRule {
        ginkgo,
        description: seen.description,
    };

    let mut container = 0;
    'rounds: for round in 1..=suite.reruns {
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
        for (focus, chunk) in focus_chunks(&targets, &rule, MAX_FOCUS_LEN) {
            container += 1;
            let attempt = Attempt {
                container,
                focus_override: Some(focus),
                ..Attempt::default()
            };
            let dir = suite_dir.join(format!("attempt-{container}"));
            let run =
                run_container(ctx, &rerun_suite, &attempt, &dir, &limits, &ctx.cancel).await?;
            let mut rerun = run.result;
            // The rerun's JUnit also lists every unfocused spec as skipped: keep only the targets.
            rerun.specs.retain(|s| {
                chunk.iter().any(|t| t.name == s.name) && s.outcome() != SpecOutcome::Skipped
            });
            let missed = not_rerun(&chunk, &rerun);
            results::merge::merge_rerun(&mut result, rerun, container);
            if !missed.is_empty() && run.stopped.is_none() {
                report_not_rerun(
                    &mut result,
                    &missed,
                    container,
                    chunk.len(),
                    run.log.as_ref(),
                );
            }
            if let Some(reason) = run.stopped {
                result.mark_incomplete(format!("rerun container {container} stopped: {reason}"));
                break 'rounds;
            }
        }
    }
    result.properties = properties(suite, ginkgo);
    if let Some(warning) = mismatch {
        result.properties.push(("ginkgo_mismatch".into(), warning));
    }
    result.duration = Some(started.elapsed());
    Ok(result)
}

/// Targets a rerun container did not run: its focus selected fewer specs than it aimed at.
fn not_rerun(chunk: &[RerunTarget], rerun: &SuiteResult) -> Vec<String> {
    chunk
        .iter()
        .filter(|t| {
            !rerun
                .specs
                .iter()
                .any(|s| s.name == t.name && s.attempts.iter().any(ran))
        })
        .map(|t| t.name.clone())
        .collect()
}

/// A rerun that selected fewer specs than it targeted is an error the user sees: each missed
/// spec keeps its earlier result plus a *not re-run* attempt saying why, and the suite is
/// incomplete — never silently "failed again".
fn report_not_rerun(
    result: &mut SuiteResult,
    missed: &[String],
    container: u32,
    targeted: usize,
    log: Option<&LogSummary>,
) {
    let selected = match log.and_then(|l| l.will_run) {
        Some((n, _)) => format!("its focus selected {n}"),
        None => "it printed no `Will run` line".to_string(),
    };
    let why = format!(
        "rerun container {container} did not run {} of its {targeted} targeted specs ({selected}); \
         see attempt-{container}/container.json for the focus",
        missed.len()
    );
    tracing::error!("{why}");
    for name in missed {
        if let Some(spec) = result.specs.iter_mut().find(|s| &s.name == name) {
            let mut a = not_run_attempt(&why, None);
            a.failure = Some(format!("not re-run: {why}"));
            a.origin.container = container;
            spec.attempts.push(a);
        }
    }
    result.mark_incomplete(why);
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
    result.mark_incomplete(format!("container stopped: {reason}"));
    let listing = Attempt {
        dry_run: true,
        ..Attempt::default()
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
        Ok(run) => mark_not_run(result, &selected_names(&run.result), &reason.to_string()),
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
    fn an_interrupted_spec_is_not_run_with_ginkgo_s_text_kept() {
        let mut hung = Spec::single("hang", AttemptState::Failed);
        hung.attempts[0].failure_kind = Some("interrupted".into());
        hung.attempts[0].failure = Some("Interrupted by User\nat: e2e.go:10".into());
        let mut r = SuiteResult {
            specs: vec![
                Spec::single("done", AttemptState::Passed),
                hung,
                Spec::single("never", AttemptState::Skipped),
            ],
            ..SuiteResult::default()
        };
        mark_not_run(
            &mut r,
            &["done".into(), "hang".into(), "never".into()],
            "timeout",
        );
        let c = r.counts();
        assert_eq!((c.passed, c.failed, c.not_run), (1, 0, 2));
        let text = r.specs[1].attempts[0].failure.clone().unwrap();
        assert!(
            text.starts_with("not run: timeout") && text.contains("e2e.go:10"),
            "{text}"
        );
    }

    #[test]
    fn unnamed_log_counts_are_not_counted_twice() {
        // Regression: 4 passed + 3 failed + 10 not run for 13 selected specs, when the counts
        // of a run without JUnit came from the log and every listed name was marked not run too.
        let mut r = SuiteResult::default();
        for i in 0..4 {
            r.specs.push(Spec::single(
                format!("(passed spec {} of 4, not named in e2e.log)", i + 1),
                AttemptState::Passed,
            ));
        }
        r.specs
            .push(Spec::single("named failure", AttemptState::Failed));
        let selected: Vec<String> = (0..12)
            .map(|i| format!("spec {i}"))
            .chain(["named failure".to_string()])
            .collect();
        mark_not_run(&mut r, &selected, "timeout");
        let c = r.counts();
        assert_eq!(c.passed + c.failed + c.not_run, 13, "{c:?}");
        assert_eq!(c.not_run, 8);
    }

    #[test]
    fn a_rerun_that_misses_targets_says_so_and_keeps_the_earlier_result() {
        let mut r = SuiteResult {
            specs: vec![
                Spec::single("a", AttemptState::Failed),
                Spec::single("b", AttemptState::Failed),
            ],
            ..SuiteResult::default()
        };
        let target = |n: &str| RerunTarget {
            name: n.into(),
            classname: None,
        };
        let chunk = vec![target("a"), target("b")];
        let rerun = SuiteResult {
            specs: vec![Spec::single("a", AttemptState::Passed)],
            ..SuiteResult::default()
        };
        let missed = not_rerun(&chunk, &rerun);
        assert_eq!(missed, vec!["b".to_string()]);
        let log = crate::results::read::log::read_log_str("Will run 1 of 5 specs\n");
        report_not_rerun(&mut r, &missed, 1, 2, Some(&log));
        let reason = r.incomplete.clone().unwrap().reason;
        assert!(
            reason.contains("did not run 1 of its 2 targeted specs (its focus selected 1)"),
            "{reason}"
        );
        let b = &r.specs[1];
        assert_eq!(
            b.outcome(),
            SpecOutcome::Failed,
            "never reported as passed or hidden"
        );
        let note = b.attempts[1].failure.clone().unwrap();
        assert!(note.starts_with("not re-run: rerun container 1"), "{note}");
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
