//! Combining results: rerun containers into the first run, and what only the console log
//! knows (flaky specs, Kubernetes version, dry run) into JUnit-based results.

use crate::results::model::{AttemptState, SpecOutcome, SuiteNode, SuiteResult};
use crate::results::read::log::{flaky_attempts, LogSummary};
use crate::results::read::names_match;

/// Appends the attempts of a rerun container (numbered `container`, 1-based) to the specs of
/// `base` with the same name (same-named specs: match in order, preferring specs that did
/// not pass). Specs of the rerun that are not in base are added. Skipped/pending attempts of
/// the rerun (everything it did not select) are not appended to existing specs.
pub(crate) fn merge_rerun(base: &mut SuiteResult, rerun: SuiteResult, container: u32) {
    let mut used = vec![false; base.specs.len()];
    for mut spec in rerun.specs {
        spec.attempts
            .iter_mut()
            .for_each(|a| a.origin.container = container);
        let candidates: Vec<usize> = (0..base.specs.len())
            .filter(|&i| !used[i] && base.specs[i].name == spec.name)
            .collect();
        let pick = candidates
            .iter()
            .copied()
            .find(|&i| {
                matches!(
                    base.specs[i].outcome(),
                    SpecOutcome::Failed | SpecOutcome::NotRun
                )
            })
            .or_else(|| candidates.first().copied());
        match pick {
            Some(i) => {
                used[i] = true;
                let target = &mut base.specs[i];
                target.location = target.location.take().or(spec.location.take());
                target.attempts.extend(
                    spec.attempts.into_iter().filter(|a| {
                        !matches!(a.state, AttemptState::Skipped | AttemptState::Pending)
                    }),
                );
            }
            None => {
                base.specs.push(spec);
                used.push(true);
            }
        }
    }
    for mut node in rerun.suite_nodes {
        node.attempt.origin.container = container;
        if node.attempt.state == AttemptState::Failed {
            base.suite_nodes.push(SuiteNode {
                name: format!("{} (rerun {container})", node.name),
                attempt: node.attempt,
            });
        }
    }
    if let Some(i) = rerun.incomplete {
        base.mark_incomplete(format!("rerun {container}: {}", i.reason));
    }
    base.duration = match (base.duration, rerun.duration) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    base.kubernetes_version = base.kubernetes_version.take().or(rerun.kubernetes_version);
    base.add_sources(rerun.sources);
}

/// Property key of a warning about the inputs (shown by the summary, kept in the JUnit).
pub(crate) const WARNING_PROPERTY: &str = "e2e_gate_warning";

/// A warning when the log's summary line contradicts the specs read from the JUnit or JSON
/// report (a log copied from another run, files of two runs mixed up). Ginkgo counts flaked
/// specs among the passed ones and unselected specs among the skipped ones; a dry run, a
/// stopped run, a damaged report or a log without a summary line is not compared.
pub(crate) fn log_contradiction(
    suite: &SuiteResult,
    log: &LogSummary,
    source: &str,
) -> Option<String> {
    let c = log.counts.as_ref()?;
    // A stopped run's counts are ginkgo's guess: v1 counts the spec it interrupted as passed
    // ("FAIL! -- 1 Passed | 0 Failed" after a signal).
    let stopped = log.interrupted
        || log.special_failure.is_some()
        || (log.success == Some(false) && c.failed == 0);
    if stopped || suite.dry_run || suite.is_damaged() || suite.specs.is_empty() {
        return None;
    }
    let n = suite.counts();
    let (passed, failed, skipped, pending) = (n.passed + n.flaky, n.failed, n.skipped, n.pending);
    if passed == c.passed && failed == c.failed && skipped + pending == c.skipped + c.pending {
        return None;
    }
    Some(format!(
        "{source}: its summary ({} Passed | {} Failed | {} Pending | {} Skipped) does not match \
         the report beside it ({passed} passed, {failed} failed, {pending} pending, {skipped} \
         skipped): are both from the same run?",
        c.passed, c.failed, c.pending, c.skipped
    ))
}

/// Applies what a console log of the same run knows to JUnit/JSON-based results:
/// flaky specs (v2 JUnit hides them) get their failed attempts, and the Kubernetes
/// version, duration and dry-run flag are filled in. A flake matching no passed spec is
/// already flaky (JSON report / v1 attempts) or absent.
pub(crate) fn apply_log(suite: &mut SuiteResult, log: &LogSummary, source: &str) {
    for flake in &log.flakes {
        let target = suite.specs.iter_mut().find(|s| {
            s.outcome() == SpecOutcome::Passed
                && s.attempts.len() == 1
                && names_match(&s.name, &flake.name)
        });
        if let Some(spec) = target {
            let passed = spec.attempts.pop();
            let mut attempts = flaky_attempts(flake, source);
            if let (Some(p), Some(last)) = (passed, attempts.last_mut()) {
                let in_process = last.origin.in_process;
                *last = p;
                last.origin.in_process = in_process;
            }
            spec.attempts = attempts;
            spec.location = spec.location.take().or_else(|| flake.location.clone());
        }
    }
    let version = || log.kubernetes_version.clone();
    suite.kubernetes_version = suite.kubernetes_version.take().or_else(version);
    suite.duration = suite.duration.or(log.duration);
    if log.interrupted {
        suite.mark_incomplete(format!("{source}: the run was interrupted"));
    }
    if log.is_dry_run() && !suite.dry_run {
        crate::results::read::junit::mark_dry_run(suite);
    }
    suite.add_sources(log.format);
}

/// Specs the log says exist (`Will run N of M`) but the JUnit does not hold were never
/// run (ginkgo v1 leaves the interrupted spec out): adds them as `NotRun` placeholders.
/// For callers that do not know the selected spec names (`e2e-gate report`); the runner
/// knows them and marks the missing specs by name instead.
pub(crate) fn add_missing_as_not_run(suite: &mut SuiteResult, log: &LogSummary) {
    let Some((selected, total)) = log.will_run else {
        return;
    };
    if suite.specs.is_empty() || suite.is_runner_steps() || log.is_dry_run() {
        return;
    }
    let present = suite.specs.len();
    let ran = suite
        .specs
        .iter()
        .filter(|s| {
            matches!(
                s.outcome(),
                SpecOutcome::Passed | SpecOutcome::Failed | SpecOutcome::Flaky
            )
        })
        .count();
    let missing = total
        .saturating_sub(present)
        .min(selected.saturating_sub(ran));
    for i in 1..=missing {
        let mut spec = crate::results::model::Spec::single(
            format!("(selected spec {i} of {missing} missing from the JUnit: never finished)"),
            AttemptState::NotRun,
        );
        spec.attempts[0].failure = Some(format!(
            "the log selected {selected} of {total} specs; the JUnit holds {present}"
        ));
        suite.specs.push(spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::model::{Attempt, Spec};
    use crate::results::read::log::read_log_str;

    fn suite(specs: Vec<Spec>) -> SuiteResult {
        SuiteResult {
            specs,
            ..SuiteResult::default()
        }
    }

    #[test]
    fn rerun_attempts_append_in_order() {
        use AttemptState::*;
        let mut base = suite(vec![
            Spec::single("a", Passed),
            Spec::single("a", Failed),
            Spec::single("b", Failed),
            Spec::single("c", Skipped),
        ]);
        let rerun = suite(vec![
            Spec::single("a", Passed),
            Spec::single("b", Failed),
            Spec::single("c", Skipped),
            Spec::single("new", Passed),
        ]);
        merge_rerun(&mut base, rerun, 1);
        assert_eq!(base.specs[0].attempts.len(), 1, "passing twin untouched");
        assert_eq!(base.specs[1].outcome(), SpecOutcome::Flaky);
        assert_eq!(base.specs[1].attempts[1].origin.container, 1);
        assert_eq!(base.specs[2].outcome(), SpecOutcome::Failed);
        assert_eq!(base.specs[2].attempts.len(), 2);
        assert_eq!(
            base.specs[3].attempts.len(),
            1,
            "skipped rerun attempts dropped"
        );
        assert_eq!(base.specs[4].name, "new");
    }

    #[test]
    fn rerun_incomplete_and_suite_nodes() {
        let mut base = suite(vec![Spec::single("a", AttemptState::Failed)]);
        let mut rerun = suite(vec![]);
        rerun.suite_nodes.push(SuiteNode {
            name: "[SynchronizedBeforeSuite]".into(),
            attempt: Attempt::new(AttemptState::Failed),
        });
        rerun.mark_incomplete("stopped");
        merge_rerun(&mut base, rerun, 2);
        assert!(base.suite_node_failed());
        assert!(base.incomplete.unwrap().reason.contains("rerun 2: stopped"));
    }

    #[test]
    fn log_flakes_applied_to_junit_specs() {
        let mut s = suite(vec![
            Spec::single("[sig-a] x [Conformance]", AttemptState::Passed),
            Spec::single("[sig-a] y", AttemptState::Passed),
        ]);
        let log = read_log_str(
            "\u{21ba} [FLAKEY TEST - TOOK 3 ATTEMPTS TO PASS] [1.0 seconds]\n[sig-a] x [Conformance] [sig-a, Conformance]\nx.go:1\nkube-apiserver version: v1.32.1\n",
        );
        apply_log(&mut s, &log, "e2e.log");
        add_missing_as_not_run(&mut s, &log);
        assert_eq!(s.counts().not_run, 0, "no Will run line: nothing to add");
        assert_eq!(s.specs[0].outcome(), SpecOutcome::Flaky);
        assert_eq!(s.specs[0].attempts.len(), 3);
        assert_eq!(s.specs[0].attempts[2].origin.in_process, 2);
        assert_eq!(s.specs[1].outcome(), SpecOutcome::Passed);
        assert_eq!(s.kubernetes_version.as_deref(), Some("v1.32.1"));
    }

    #[test]
    fn interrupted_run_missing_spec_is_not_run() {
        let mut s = suite(vec![
            Spec::single("a", AttemptState::Skipped),
            Spec::single("b", AttemptState::Skipped),
        ]);
        let log = read_log_str(
            "Will run 1 of 3 specs\nReceived interrupt.  Emitting contents of GinkgoWriter...\nRan 1 of 3 Specs in 3.0 seconds\nFAIL! -- 1 Passed | 0 Failed | 0 Pending | 2 Skipped\n",
        );
        assert!(log.interrupted);
        apply_log(&mut s, &log, "e2e.log");
        assert_eq!(
            s.counts().not_run,
            0,
            "apply_log alone adds no placeholders"
        );
        add_missing_as_not_run(&mut s, &log);
        assert_eq!(s.counts().not_run, 1);
        assert_eq!(s.counts().passed, 0);
        assert!(s.incomplete.unwrap().reason.contains("interrupted"));
    }
}
