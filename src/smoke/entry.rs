//! The smoke suite's container entrypoint: reads the conformance-image contract (`E2E_FOCUS`,
//! `E2E_SKIP`, `E2E_DRYRUN`, `RESULTS_DIR`, `KUBECONFIG`), checks the cluster, and writes
//! `e2e.log`, `junit_01.xml` and `done` like the upstream image does.

use super::checks::{run_checks, Check, CheckOutcome, SmokeOptions, CHECK_NAMES};
use super::{collect, report};
use crate::exit_code;
use crate::results::write::junit::{write_junit_string, JunitOptions, JunitStyle};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything one smoke run needs.
#[derive(Debug, Clone)]
pub(crate) struct SmokeRun {
    /// Kubeconfig; `None` uses the default chain (in-cluster, `~/.kube/config`).
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Where `junit_01.xml`, `e2e.log` and `done` go.
    pub(crate) results_dir: PathBuf,
    /// Focus regex (empty = all).
    pub(crate) focus: String,
    /// Skip regex (empty = none).
    pub(crate) skip: String,
    /// List the checks, check nothing.
    pub(crate) dry_run: bool,
    /// Expected kubelet version.
    pub(crate) target_version: Option<String>,
    /// How long a pod may stay Pending.
    pub(crate) pending_grace: Duration,
}

fn regex(name: &str, value: &str) -> Result<Option<regex::Regex>, String> {
    (!value.is_empty())
        .then(|| regex::Regex::new(value))
        .transpose()
        .map_err(|e| format!("{name}: invalid regex {value:?}: {e}"))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs the smoke checks; returns the process exit code (0 healthy, 1 unhealthy, 2 bad input,
/// 3 the cluster could not be read or the results could not be written).
pub(crate) async fn run(cfg: &SmokeRun) -> u8 {
    let (focus, skip) = match (regex("E2E_FOCUS", &cfg.focus), regex("E2E_SKIP", &cfg.skip)) {
        (Ok(f), Ok(s)) => (f, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return exit_code::USAGE;
        }
    };
    let selected = |name: &str| {
        focus.as_ref().is_none_or(|f| f.is_match(name))
            && !skip.as_ref().is_some_and(|s| s.is_match(name))
    };
    let started = std::time::Instant::now();
    let opts = SmokeOptions {
        target_version: cfg.target_version.clone(),
        pending_grace: cfg.pending_grace,
        now: chrono::Utc::now(),
    };
    // The selected checks, not run: listed (dry run) or skipped.
    let listed = |outcome: CheckOutcome| -> Vec<Check> {
        CHECK_NAMES
            .iter()
            .filter(|n| selected(n))
            .map(|n| Check {
                name: n.to_string(),
                outcome: outcome.clone(),
            })
            .collect()
    };
    let mut unreadable: Option<String> = None;
    let checks: Vec<Check> = if cfg.dry_run {
        listed(CheckOutcome::Passed)
    } else {
        let client = collect::client(cfg.kubeconfig.as_deref()).await;
        match async { collect::collect(&client?).await }.await {
            Ok(state) => run_checks(&state, &opts, &selected),
            // A cluster the checks cannot read was not found unhealthy: nothing was checked.
            // The checks are not run and the results incomplete (exit 3, infrastructure), so a
            // gate never reports a broken kubeconfig or a closed port as failing tests.
            Err(e) => {
                let why = format!(
                    "cannot read the cluster (kubeconfig {}): {e}",
                    cfg.kubeconfig
                        .as_deref()
                        .map_or("in-cluster / default".into(), |p| p.display().to_string())
                );
                eprintln!("error: {why}");
                unreadable = Some(why.clone());
                listed(CheckOutcome::Skipped(format!("not run: {why}")))
            }
        }
    };
    let elapsed = started.elapsed();
    let lines = report::console_lines(&checks, cfg.dry_run, elapsed);
    let log = lines.join("\n") + "\n";
    print!("{log}");
    let mut suite = report::to_suite(&checks, cfg.dry_run, elapsed);
    if let Some(why) = &unreadable {
        let listed = |s: &&mut crate::results::Spec| checks.iter().any(|c| c.name == s.name);
        for spec in suite.specs.iter_mut().filter(listed) {
            spec.attempts
                .iter_mut()
                .for_each(|a| a.state = crate::results::AttemptState::NotRun);
        }
        suite.mark_incomplete(why.clone());
    }
    let junit = write_junit_string(
        std::slice::from_ref(&suite),
        &JunitOptions {
            style: JunitStyle::Jenkins,
            max_output_bytes: 64 * 1024,
            report_name: report::SUITE_NAME.into(),
        },
    );
    let junit_path = cfg.results_dir.join("junit_01.xml");
    let written = std::fs::create_dir_all(&cfg.results_dir)
        .map_err(|e| format!("cannot create {}: {e}", cfg.results_dir.display()))
        .and_then(|_| write(&cfg.results_dir.join("e2e.log"), log.as_bytes()))
        .and_then(|_| write(&junit_path, junit.as_bytes()))
        // `done` last, as the upstream image does: its presence means the results are complete.
        .and_then(|_| {
            let done = junit_path.display().to_string();
            write(&cfg.results_dir.join("done"), done.as_bytes())
        });
    if let Err(e) = written {
        eprintln!("error: {e}");
        return exit_code::INFRA;
    }
    if unreadable.is_some() {
        exit_code::INFRA
    } else if checks
        .iter()
        .any(|c| matches!(c.outcome, CheckOutcome::Failed(_)))
    {
        exit_code::FAILED
    } else {
        exit_code::OK
    }
}
