//! Pure: smoke checks → the result model (for JUnit) and ginkgo-v2-style console lines, so the
//! suite runner reads the smoke suite exactly like any other ginkgo suite.

use super::checks::{Check, CheckOutcome, CHECK_NAMES};
use crate::results::{Attempt, AttemptState, Spec, SuiteResult, DRY_RUN_KIND};
use std::time::Duration;

/// The suite name written in JUnit.
pub(crate) const SUITE_NAME: &str = "e2e-gate smoke";

/// Checks as a suite: selected checks with their outcome; unselected ones as skipped.
pub(crate) fn to_suite(checks: &[Check], dry_run: bool, elapsed: Duration) -> SuiteResult {
    let specs = CHECK_NAMES
        .iter()
        .map(|&name| {
            let attempt = match checks.iter().find(|c| c.name == name).map(|c| &c.outcome) {
                None => Attempt::new(AttemptState::Skipped),
                Some(_) if dry_run => Attempt {
                    failure_kind: Some(DRY_RUN_KIND.into()),
                    ..Attempt::new(AttemptState::Skipped)
                },
                Some(outcome) => outcome.attempt(),
            };
            Spec {
                name: name.to_string(),
                classname: Some(SUITE_NAME.into()),
                attempts: vec![attempt],
                ..Spec::default()
            }
        })
        .collect();
    SuiteResult {
        name: SUITE_NAME.into(),
        specs,
        dry_run,
        duration: Some(elapsed),
        ..SuiteResult::default()
    }
}

/// The console lines ginkgo v2 would print for this run (header, a line per spec, summary).
pub(crate) fn console_lines(checks: &[Check], dry_run: bool, elapsed: Duration) -> Vec<String> {
    let mut lines = vec![
        format!("Running Suite: {SUITE_NAME}"),
        format!("Will run {} of {} specs", checks.len(), CHECK_NAMES.len()),
    ];
    let (mut passed, mut failed, mut skipped) = (0, 0, CHECK_NAMES.len() - checks.len());
    for c in checks {
        match (&c.outcome, dry_run) {
            (_, true) | (CheckOutcome::Passed, false) => {
                lines.push("•".into());
                if !dry_run {
                    passed += 1;
                }
            }
            (CheckOutcome::Skipped(why), false) => {
                skipped += 1;
                lines.push(format!("S [SKIPPED] {}: {why}", c.name));
            }
            (CheckOutcome::Failed(why), false) => {
                failed += 1;
                lines.push("------------------------------".into());
                lines.push("• [FAILED] [0.000 seconds]".into());
                lines.push(c.name.clone());
                lines.extend(why.lines().map(|l| format!("  {l}")));
                lines.push("------------------------------".into());
            }
        }
    }
    let ran = if dry_run { 0 } else { passed + failed };
    lines.push(format!(
        "Ran {ran} of {} Specs in {:.3} seconds",
        CHECK_NAMES.len(),
        elapsed.as_secs_f64()
    ));
    let word = if failed > 0 { "FAIL!" } else { "SUCCESS!" };
    lines.push(format!(
        "{word} -- {passed} Passed | {failed} Failed | 0 Pending | {skipped} Skipped"
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SpecOutcome;

    fn checks() -> Vec<Check> {
        vec![
            Check {
                name: CHECK_NAMES[0].into(),
                outcome: CheckOutcome::Passed,
            },
            Check {
                name: CHECK_NAMES[3].into(),
                outcome: CheckOutcome::Failed("deployment x/web has 1/2 available".into()),
            },
        ]
    }

    #[test]
    fn suite_has_every_check_with_unselected_ones_skipped() {
        let s = to_suite(&checks(), false, Duration::from_secs(1));
        assert_eq!(s.specs.len(), CHECK_NAMES.len());
        let c = s.counts();
        assert_eq!((c.passed, c.failed, c.skipped), (1, 1, 6));
        let web = s
            .specs
            .iter()
            .find(|s| s.outcome() == SpecOutcome::Failed)
            .unwrap();
        assert_eq!(
            web.attempts[0].failure.as_deref(),
            Some("deployment x/web has 1/2 available")
        );
    }

    #[test]
    fn dry_run_lists_without_passing() {
        let s = to_suite(&checks(), true, Duration::ZERO);
        assert_eq!(s.counts().passed, 0);
        assert_eq!(s.dry_run_specs(), 2);
    }

    #[test]
    fn console_looks_like_ginkgo() {
        let lines = console_lines(&checks(), false, Duration::from_millis(1500));
        assert_eq!(lines[1], "Will run 2 of 8 specs");
        assert!(lines.contains(&"• [FAILED] [0.000 seconds]".to_string()));
        assert_eq!(
            lines.last().unwrap(),
            "FAIL! -- 1 Passed | 1 Failed | 0 Pending | 6 Skipped"
        );
        assert_eq!(lines[lines.len() - 2], "Ran 2 of 8 Specs in 1.500 seconds");
    }
}
