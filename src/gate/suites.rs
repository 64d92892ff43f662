//! Runs suites (`jobs` at a time), each with its own `pending` and final GitHub status. Shared
//! by `e2e-gate run` and `e2e-gate gate`.

use crate::results::{Incomplete, SuiteResult, SuiteVerdict};
use crate::runner::{self, RunContext};
use crate::status::{self, StatusPublisher, StatusState};
use crate::suite::SuiteSpec;
use futures::StreamExt;

/// A suite's result, and the infrastructure error that cut it short, if any.
pub(crate) type SuiteRun = (SuiteResult, Option<String>);

/// The state a suite's final status carries.
pub(crate) fn suite_state(result: &SuiteResult, fail_on_flaky: bool) -> StatusState {
    match result.verdict() {
        SuiteVerdict::Passed if fail_on_flaky && result.counts().flaky > 0 => StatusState::Failure,
        SuiteVerdict::Passed => StatusState::Success,
        SuiteVerdict::Failed => StatusState::Failure,
        SuiteVerdict::Incomplete => StatusState::Error,
    }
}

/// One suite: its `pending` status, the run (or dry run), its final status. An infrastructure
/// error becomes an incomplete result plus the error text.
async fn run_one(
    ctx: &RunContext<'_>,
    statuses: Option<&StatusPublisher>,
    suite: &SuiteSpec,
    dry_run: bool,
    fail_on_flaky: bool,
) -> SuiteRun {
    let started = tokio::time::Instant::now();
    if let Some(p) = statuses {
        p.pending(&suite.status_context(), "running").await;
    }
    let run = if dry_run {
        runner::dry_run_suite(ctx, suite).await
    } else {
        runner::run_suite(ctx, suite).await
    };
    let (result, error) = match run {
        Ok(result) => (result, None),
        Err(e) => {
            tracing::error!(suite = %suite.name, error = %e, "suite could not run");
            let result = SuiteResult {
                name: suite.name.clone(),
                dry_run,
                incomplete: Some(Incomplete::new(e.to_string())),
                ..SuiteResult::default()
            };
            (result, Some(e.to_string()))
        }
    };
    // An interrupted run's statuses are settled by `abort` ("aborted"), not here.
    if let (Some(p), false) = (statuses, ctx.cancel.is_cancelled()) {
        let description = status::describe_suite(&result, started.elapsed());
        p.finish(
            &suite.status_context(),
            suite_state(&result, fail_on_flaky),
            &description,
        )
        .await;
    }
    (result, error)
}

/// Runs the suites, `jobs` at a time; results come back in the order given.
pub(crate) async fn run_suites(
    ctx: &RunContext<'_>,
    statuses: Option<&StatusPublisher>,
    suites: &[SuiteSpec],
    jobs: usize,
    dry_run: bool,
    fail_on_flaky: bool,
) -> Vec<SuiteRun> {
    let mut out: Vec<(usize, SuiteRun)> = futures::stream::iter(suites.iter().enumerate())
        .map(|(i, s)| async move { (i, run_one(ctx, statuses, s, dry_run, fail_on_flaky).await) })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}
