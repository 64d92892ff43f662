//! The one result model every reader produces and every writer consumes.
//!
//! suite → specs → attempts. Pure data, no I/O. A failing spec is an outcome here,
//! never an error: errors are for "we could not find out" (see [`SuiteResult::incomplete`]).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// [`Attempt::failure_kind`] of a spec a dry run listed but did not execute.
pub(crate) const DRY_RUN_KIND: &str = "dry-run";

/// How one attempt of one spec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum AttemptState {
    #[default]
    Passed,
    /// The attempt failed (ginkgo `failed`, `timedout`, `panicked`, `aborted`, `interrupted`;
    /// the exact word is kept in [`Attempt::failure_kind`]).
    Failed,
    /// The spec was selected out (focus/skip) or skipped at run time.
    Skipped,
    /// The spec is marked pending in the test code.
    Pending,
    /// The spec was selected but never ran (the run was stopped or aborted first).
    NotRun,
}

/// Where an attempt ran: which container, and which in-process ginkgo retry inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AttemptOrigin {
    /// 0 = the first container of the suite; 1.. = rerun containers that ran only the failed specs.
    pub(crate) container: u32,
    /// 0-based in-process attempt (ginkgo flake attempts) within that container.
    pub in_process: u32,
}

/// One attempt of one spec.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attempt {
    /// How it ended.
    pub(crate) state: AttemptState,
    /// Ginkgo's word for a failure (`failed`, `timedout`, `panicked`, `not-run`, …) when known.
    pub(crate) failure_kind: Option<String>,
    /// Wall time of the attempt, when known.
    pub(crate) duration: Option<Duration>,
    /// Failure text (first line is the message; the whole text is kept).
    pub(crate) failure: Option<String>,
    /// `file:line` of the failure when known.
    pub location: Option<String>,
    /// Captured output (system-out / timeline), untruncated; writers truncate.
    pub(crate) output: Option<String>,
    /// Which container / in-process retry produced it.
    pub origin: AttemptOrigin,
}

impl Attempt {
    /// An attempt in the given state, nothing else known.
    pub(crate) fn new(state: AttemptState) -> Attempt {
        Attempt {
            state,
            ..Attempt::default()
        }
    }

    /// The failure message: first non-empty line of the failure text, never empty for a
    /// failed attempt (falls back to the failure kind, then `"failed"`).
    pub fn message(&self) -> String {
        let first = self
            .failure
            .as_deref()
            .and_then(|f| f.lines().map(str::trim).find(|l| !l.is_empty()));
        match (first, self.failure_kind.as_deref()) {
            (Some(l), _) => l.to_string(),
            (None, Some(k)) if !k.is_empty() => k.to_string(),
            _ => "failed".to_string(),
        }
    }
}

/// The final, exclusive category of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecOutcome {
    /// Every attempt that ran passed (normally exactly one).
    Passed,
    /// Failed at least once, then passed.
    Flaky,
    /// Failed every attempt that ran.
    Failed,
    /// Skipped.
    Skipped,
    /// Pending in the test code.
    Pending,
    /// Selected but never ran.
    NotRun,
}

/// One spec and every attempt of it, in the order they ran.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spec {
    /// The spec's full text as the reader found it (ginkgo v2 JUnit `[It] ` prefix removed).
    pub name: String,
    /// What the source put before [`Spec::name`] (`"[It] "` in v2 JUnit), if anything. A
    /// prefix rather than a second copy of the name: specs are the bulk of a big result file.
    pub junit_prefix: Option<Cow<'static, str>>,
    /// JUnit classname, when the source had one (shared: every testcase of a suite
    /// usually has the same one).
    pub(crate) classname: Option<Arc<str>>,
    /// Code location of the spec when known (JSON report), used to tell same-named specs apart.
    pub location: Option<String>,
    /// Attempts in order; never empty for a spec a reader produced.
    pub attempts: Vec<Attempt>,
}

impl Spec {
    /// A spec with a single attempt in the given state.
    pub(crate) fn single(name: impl Into<String>, state: AttemptState) -> Spec {
        Spec {
            name: name.into(),
            attempts: vec![Attempt::new(state)],
            ..Spec::default()
        }
    }

    /// The exclusive category: flaky = failed at least once and the last attempt that ran passed.
    pub fn outcome(&self) -> SpecOutcome {
        let last_ran = self
            .attempts
            .iter()
            .rev()
            .find(|a| matches!(a.state, AttemptState::Passed | AttemptState::Failed));
        if let Some(last) = last_ran {
            let failed_before = self
                .attempts
                .iter()
                .any(|a| a.state == AttemptState::Failed);
            return match last.state {
                AttemptState::Passed if failed_before => SpecOutcome::Flaky,
                AttemptState::Passed => SpecOutcome::Passed,
                _ => SpecOutcome::Failed,
            };
        }
        match self.attempts.last().map(|a| a.state) {
            Some(AttemptState::Pending) => SpecOutcome::Pending,
            Some(AttemptState::NotRun) => SpecOutcome::NotRun,
            _ => SpecOutcome::Skipped,
        }
    }

    /// Whether this spec was only listed by a dry run (its attempt is `Skipped` with
    /// `failure_kind == "dry-run"`).
    pub(crate) fn is_dry_run(&self) -> bool {
        self.attempts.last().is_some_and(|a| {
            a.state == AttemptState::Skipped && a.failure_kind.as_deref() == Some(DRY_RUN_KIND)
        })
    }

    /// The attempts that failed, in order.
    pub(crate) fn failed_attempts(&self) -> impl Iterator<Item = &Attempt> {
        self.attempts
            .iter()
            .filter(|a| a.state == AttemptState::Failed)
    }
}

/// A suite-level node (`[SynchronizedBeforeSuite]`, `[ReportAfterSuite] …`): not a spec,
/// but a failing one fails the suite.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SuiteNode {
    /// Node name as written, e.g. `[SynchronizedBeforeSuite]`.
    pub(crate) name: String,
    /// Its attempt (state, failure text, output).
    pub(crate) attempt: Attempt,
}

/// Why a suite's results cannot be trusted to be complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    /// Human reason, naming the file or event, e.g. "junit_01.xml: unexpected end of file at byte 1107".
    pub reason: String,
    /// A result file itself is damaged (malformed or truncated), so what it holds cannot be
    /// trusted as a whole. Not set for a well-formed report of a run that was stopped: ginkgo v2
    /// writes every spec of such a run, which is better than anything rebuilt from the log.
    pub(crate) damaged: bool,
}

impl Incomplete {
    /// An incomplete verdict whose files are intact.
    pub(crate) fn new(reason: impl Into<String>) -> Incomplete {
        Incomplete {
            reason: reason.into(),
            damaged: false,
        }
    }
}

/// Everything known about one suite run (all containers of it, merged).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SuiteResult {
    /// Suite name (`conformance`, or the directory name for `report`).
    pub name: String,
    /// Specs in first-seen order. Same-named distinct specs stay distinct entries.
    pub specs: Vec<Spec>,
    /// Suite setup/teardown nodes, deduplicated per process where the source repeats them.
    pub suite_nodes: Vec<SuiteNode>,
    /// The run was a dry run: nothing was executed, whatever the file says.
    pub dry_run: bool,
    /// Set when results are missing, truncated or the run was aborted.
    pub incomplete: Option<Incomplete>,
    /// Total wall time when known.
    pub(crate) duration: Option<Duration>,
    /// Properties to carry into the JUnit output (image, focus, skip, …), in order.
    pub properties: Vec<(String, String)>,
    /// Kubernetes server version when known.
    pub kubernetes_version: Option<String>,
    /// The result shapes this suite was read from, in the order they were applied.
    pub sources: Vec<SourceFormat>,
}

/// A result shape a reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// Ginkgo v1 JUnit: one `<testsuite>`, one testcase per attempt.
    GinkgoV1Junit,
    /// Ginkgo v2 JUnit: `<testsuites>`, `status` attributes.
    GinkgoV2Junit,
    /// JUnit with Surefire flaky/rerun elements and no ginkgo markers (e.g. our own output).
    Junit,
    /// Runner-level JUnit (kubetest / kubetest2 steps such as `Up`, `TearDown`).
    RunnerSteps,
    /// Ginkgo v2 JSON report (`--json-report`).
    GinkgoJsonReport,
    /// Ginkgo v1 console output (`e2e.log`).
    GinkgoV1Log,
    /// Ginkgo v2 console output (`e2e.log`).
    GinkgoV2Log,
}

/// Counts by exclusive category, always recomputed from specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Specs that passed first time.
    pub passed: usize,
    /// Specs that failed every attempt.
    pub failed: usize,
    /// Specs that failed, then passed.
    pub flaky: usize,
    /// Skipped specs.
    pub skipped: usize,
    /// Pending specs.
    pub pending: usize,
    /// Selected specs that never ran.
    pub not_run: usize,
}

impl Counts {
    pub(crate) fn add(&mut self, outcome: SpecOutcome) {
        match outcome {
            SpecOutcome::Passed => self.passed += 1,
            SpecOutcome::Failed => self.failed += 1,
            SpecOutcome::Flaky => self.flaky += 1,
            SpecOutcome::Skipped => self.skipped += 1,
            SpecOutcome::Pending => self.pending += 1,
            SpecOutcome::NotRun => self.not_run += 1,
        }
    }

    pub(crate) fn merge(&mut self, other: &Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.flaky += other.flaky;
        self.skipped += other.skipped;
        self.pending += other.pending;
        self.not_run += other.not_run;
    }
}

/// The verdict of one suite or of a whole run (its word in the summary JSON). Ordered by
/// precedence: incomplete beats failed beats passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteVerdict {
    /// Everything that ran passed (flaky counts as passed here; policy is applied later).
    Passed,
    /// A spec or a suite node failed.
    Failed,
    /// Results are incomplete: cannot say.
    Incomplete,
}

impl SuiteVerdict {
    /// Lower-case word as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SuiteVerdict::Passed => "passed",
            SuiteVerdict::Failed => "failed",
            SuiteVerdict::Incomplete => "incomplete",
        }
    }
}

impl SuiteResult {
    /// Counts by category, recomputed from the specs.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        self.specs.iter().for_each(|s| c.add(s.outcome()));
        c
    }

    /// Whether a suite node failed.
    pub(crate) fn suite_node_failed(&self) -> bool {
        self.suite_nodes
            .iter()
            .any(|n| n.attempt.state == AttemptState::Failed)
    }

    /// The verdict: incomplete beats failed beats passed.
    pub(crate) fn verdict(&self) -> SuiteVerdict {
        self.verdict_with(&self.counts())
    }

    /// [`SuiteResult::verdict`] from this suite's counts when the caller already has them
    /// (saves a walk over every spec).
    pub(crate) fn verdict_with(&self, c: &Counts) -> SuiteVerdict {
        if self.incomplete.is_some() || c.not_run > 0 {
            SuiteVerdict::Incomplete
        } else if c.failed > 0 || self.suite_node_failed() {
            SuiteVerdict::Failed
        } else {
            SuiteVerdict::Passed
        }
    }

    /// Whether this suite was read from runner-step JUnit (kubetest style).
    pub fn is_runner_steps(&self) -> bool {
        self.sources.contains(&SourceFormat::RunnerSteps)
    }

    /// Number of specs a dry run listed as "would run".
    pub fn dry_run_specs(&self) -> usize {
        self.specs.iter().filter(|s| s.is_dry_run()).count()
    }

    /// Marks the results incomplete because a result file is damaged (see [`Incomplete::damaged`]).
    pub(crate) fn mark_damaged(&mut self, reason: impl Into<String>) {
        self.mark_incomplete(reason);
        if let Some(i) = &mut self.incomplete {
            i.damaged = true;
        }
    }

    /// Whether a result file behind this suite was damaged.
    pub(crate) fn is_damaged(&self) -> bool {
        self.incomplete.as_ref().is_some_and(|i| i.damaged)
    }

    /// Marks the suite incomplete, appending to an existing reason.
    pub(crate) fn mark_incomplete(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        match &mut self.incomplete {
            Some(i) if !i.reason.contains(&reason) => {
                i.reason.push_str("; ");
                i.reason.push_str(&reason);
            }
            Some(_) => {}
            None => self.incomplete = Some(Incomplete::new(reason)),
        }
    }

    /// Total wall time: the suite duration if known, else the sum of attempt durations.
    pub(crate) fn total_duration(&self) -> Duration {
        if let Some(d) = self.duration {
            return d;
        }
        self.specs
            .iter()
            .flat_map(|s| s.attempts.iter())
            .chain(self.suite_nodes.iter().map(|n| &n.attempt))
            .filter_map(|a| a.duration)
            .sum()
    }

    /// Records the shapes this suite was (also) read from, each once.
    pub(crate) fn add_sources(&mut self, formats: impl IntoIterator<Item = SourceFormat>) {
        for f in formats {
            if !self.sources.contains(&f) {
                self.sources.push(f);
            }
        }
    }

    /// Specs with the given outcome, in order.
    pub fn specs_with(&self, outcome: SpecOutcome) -> impl Iterator<Item = &Spec> {
        self.specs.iter().filter(move |s| s.outcome() == outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(states: &[AttemptState]) -> Spec {
        Spec {
            name: "s".into(),
            attempts: states.iter().map(|&s| Attempt::new(s)).collect(),
            ..Spec::default()
        }
    }

    #[test]
    fn outcome_is_exclusive() {
        use AttemptState::*;
        assert_eq!(spec(&[Passed]).outcome(), SpecOutcome::Passed);
        assert_eq!(spec(&[Failed, Passed]).outcome(), SpecOutcome::Flaky);
        assert_eq!(spec(&[Failed, Failed]).outcome(), SpecOutcome::Failed);
        assert_eq!(spec(&[Passed, Failed]).outcome(), SpecOutcome::Failed);
        assert_eq!(spec(&[Skipped]).outcome(), SpecOutcome::Skipped);
        assert_eq!(spec(&[Pending]).outcome(), SpecOutcome::Pending);
        assert_eq!(spec(&[NotRun]).outcome(), SpecOutcome::NotRun);
        // a rerun that never ran does not erase the failure before it
        assert_eq!(spec(&[Failed, NotRun]).outcome(), SpecOutcome::Failed);
    }

    #[test]
    fn verdict_order() {
        use AttemptState::*;
        let mut s = SuiteResult {
            specs: vec![spec(&[Passed]), spec(&[Failed, Passed])],
            ..SuiteResult::default()
        };
        assert_eq!(s.verdict(), SuiteVerdict::Passed);
        s.suite_nodes.push(SuiteNode {
            name: "[SynchronizedBeforeSuite]".into(),
            attempt: Attempt::new(Failed),
        });
        assert_eq!(s.verdict(), SuiteVerdict::Failed);
        s.incomplete = Some(Incomplete::new("x"));
        assert_eq!(s.verdict(), SuiteVerdict::Incomplete);
    }
}
