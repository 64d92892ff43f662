//! Records each gate step (Up, Upgrade, each suite, Down) with its timing and, on failure, its
//! output, and turns them into the runner testsuite of the combined JUnit (kubetest2's
//! `junit_runner.xml` shape). Pure.

use crate::results::summary::StepSummary;
use crate::results::{Attempt, AttemptState, Spec, SuiteResult};
use std::time::Duration;

/// Name of the runner testsuite in the combined JUnit.
pub(crate) const RUNNER_SUITE: &str = "e2e-gate runner";

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Done.
    Passed,
    /// Failed, with what went wrong.
    Failed(String),
    /// Not run, with why.
    Skipped(String),
}

impl StepOutcome {
    /// The attempt this outcome is in the result model: the reason of a failure or a skip is
    /// its failure text.
    pub(crate) fn attempt(&self) -> Attempt {
        match self {
            StepOutcome::Passed => Attempt::new(AttemptState::Passed),
            StepOutcome::Skipped(why) => Attempt {
                failure: Some(why.clone()),
                ..Attempt::new(AttemptState::Skipped)
            },
            StepOutcome::Failed(why) => Attempt {
                failure_kind: Some("failed".into()),
                failure: Some(why.clone()),
                ..Attempt::new(AttemptState::Failed)
            },
        }
    }
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Step name (`Up`, `Upgrade`, `Suite smoke`, `Down`).
    pub name: String,
    /// Wall time.
    pub(crate) duration: Duration,
    /// Outcome.
    pub outcome: StepOutcome,
}

impl Step {
    /// The step as `summary.json` lists it.
    pub(crate) fn summary(&self) -> StepSummary {
        let (result, reason) = match &self.outcome {
            StepOutcome::Passed => ("passed", None),
            StepOutcome::Failed(why) => ("failed", Some(why.clone())),
            StepOutcome::Skipped(why) => ("skipped", Some(why.clone())),
        };
        StepSummary {
            name: self.name.clone(),
            result: result.into(),
            reason,
            duration_seconds: (self.duration.as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}

/// The steps of one gate run, in order.
#[derive(Debug, Clone, Default)]
pub struct StepRecorder {
    steps: Vec<Step>,
}

impl StepRecorder {
    pub(crate) fn record(
        &mut self,
        name: impl Into<String>,
        duration: Duration,
        outcome: StepOutcome,
    ) {
        let step = Step {
            name: name.into(),
            duration,
            outcome,
        };
        match &step.outcome {
            StepOutcome::Passed => {
                tracing::info!(step = %step.name, seconds = step.duration.as_secs_f64(), "step passed")
            }
            StepOutcome::Failed(why) => tracing::error!(step = %step.name, %why, "step failed"),
            StepOutcome::Skipped(why) => tracing::info!(step = %step.name, %why, "step skipped"),
        }
        self.steps.push(step);
    }

    /// Appends steps recorded elsewhere (already logged there).
    pub(crate) fn append(&mut self, other: &StepRecorder) {
        self.steps.extend(other.steps.iter().cloned());
    }

    /// The steps so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The runner testsuite: one testcase per step; its time is the gate's wall time `wall`
    /// (steps overlap — suites run side by side, the availability probe during the upgrade — so
    /// their sum overstated it: 48 s for a 27 s gate).
    pub(crate) fn to_suite(&self, wall: std::time::Duration) -> SuiteResult {
        let specs = self
            .steps
            .iter()
            .map(|s| Spec {
                name: s.name.clone(),
                classname: Some(RUNNER_SUITE.into()),
                attempts: vec![Attempt {
                    duration: Some(s.duration),
                    output: match &s.outcome {
                        StepOutcome::Failed(why) => Some(why.clone()),
                        _ => None,
                    },
                    ..s.outcome.attempt()
                }],
                ..Spec::default()
            })
            .collect();
        SuiteResult {
            name: RUNNER_SUITE.into(),
            specs,
            duration: Some(wall),
            ..SuiteResult::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SpecOutcome;

    #[test]
    fn steps_become_testcases_with_timings_and_failure_text() {
        let mut r = StepRecorder::default();
        r.record("Up", Duration::from_secs(2), StepOutcome::Passed);
        r.record(
            "Upgrade",
            Duration::ZERO,
            StepOutcome::Skipped("no target".into()),
        );
        r.record(
            "Suite smoke",
            Duration::from_secs(5),
            StepOutcome::Failed("1 failed".into()),
        );
        r.record("Down", Duration::from_secs(1), StepOutcome::Passed);
        // Wall time, not the sum of overlapping steps (regression: 48 s for a 27 s gate).
        let s = r.to_suite(Duration::from_secs(7));
        let got: Vec<(&str, SpecOutcome)> = s
            .specs
            .iter()
            .map(|s| (s.name.as_str(), s.outcome()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Up", SpecOutcome::Passed),
                ("Upgrade", SpecOutcome::Skipped),
                ("Suite smoke", SpecOutcome::Failed),
                ("Down", SpecOutcome::Passed)
            ]
        );
        assert_eq!(s.specs[2].attempts[0].failure.as_deref(), Some("1 failed"));
        assert_eq!(s.duration, Some(Duration::from_secs(7)));
    }
}
