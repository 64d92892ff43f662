//! The run summary: JSON for `--format json` and `<artifacts>/summary.json`, and human text.

use crate::results::model::{Counts, SpecOutcome, SuiteResult, SuiteVerdict};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Current `format_version` of [`RunSummary`].
pub(crate) const FORMAT_VERSION: u32 = 1;

/// One suite in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteSummary {
    pub(crate) name: String,
    /// Verdict.
    pub result: SuiteVerdict,
    /// Counts by outcome, flattened into the suite's object. A dry run's listed specs are in
    /// `dry_run_specs`, not in `skipped`, as ginkgo's own summary counts them ("Will run 204
    /// of 3585" → 3381 skipped).
    #[serde(flatten)]
    pub counts: Counts,
    /// The run was a dry run: nothing executed.
    pub dry_run: bool,
    /// Specs a dry run listed as "would run" (0 unless `dry_run`).
    #[serde(default)]
    pub dry_run_specs: usize,
    /// Results are incomplete.
    pub incomplete: bool,
    /// Why, when incomplete.
    #[serde(default)]
    pub(crate) incomplete_reason: Option<String>,
    /// Wall time in seconds (suite time when known, else the sum of attempt times).
    pub(crate) duration_seconds: f64,
    pub(crate) failed_specs: Vec<String>,
    /// The first line of each failed spec's last failure, in the order of `failed_specs`.
    #[serde(default)]
    pub(crate) failure_reasons: Vec<String>,
    pub(crate) flaky_specs: Vec<String>,
    /// Names of suite nodes that failed.
    #[serde(default)]
    pub(crate) failed_suite_nodes: Vec<String>,
    /// Kubernetes version when known.
    #[serde(default)]
    pub(crate) kubernetes_version: Option<String>,
    /// Inputs that contradict each other (e.g. an `e2e.log` whose summary does not match its
    /// JUnit): the verdict stands, but someone should look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One step of a gate (`Up`, `Upgrade`, `Availability`, `Suite smoke`, `Down`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StepSummary {
    pub(crate) name: String,
    /// `passed`, `failed` or `skipped`.
    pub(crate) result: String,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Wall time in seconds.
    pub(crate) duration_seconds: f64,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Always [`FORMAT_VERSION`].
    pub(crate) format_version: u32,
    /// Verdict of the run: incomplete beats failed beats passed; a gate's failed steps count.
    pub(crate) result: SuiteVerdict,
    /// Per suite.
    pub suites: Vec<SuiteSummary>,
    /// Sums over suites (skipped: a dry run's listed specs are its suite's `dry_run_specs`,
    /// not skipped).
    pub totals: Counts,
    /// A gate's steps, in order (empty for `run` and `report`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) steps: Vec<StepSummary>,
}

/// One suite's summary (its counts, failures and flakes; not its specs).
pub fn suite_summary(s: &SuiteResult, fail_on_flaky: bool) -> SuiteSummary {
    // One walk over the specs gives the counts, the names and the dry-run listings
    // (a suite holds thousands of specs; the summary is on the hot path of `report`).
    let mut c = Counts::default();
    let mut failed_specs = Vec::new();
    let mut failure_reasons = Vec::new();
    let mut flaky_specs = Vec::new();
    let mut dry_run_specs = 0;
    for sp in &s.specs {
        let o = sp.outcome();
        c.add(o);
        match o {
            SpecOutcome::Failed => {
                failed_specs.push(sp.name.clone());
                failure_reasons.push(
                    sp.failed_attempts()
                        .last()
                        .map(|a| a.message())
                        .unwrap_or_default(),
                );
            }
            SpecOutcome::Flaky => flaky_specs.push(sp.name.clone()),
            _ => {}
        }
        dry_run_specs += usize::from(sp.is_dry_run());
    }
    let verdict = match s.verdict_with(&c) {
        // One verdict everywhere: with --fail-on-flaky a flaky suite *is* failed, in the JSON and
        // the human line as much as in the exit code and the status.
        SuiteVerdict::Passed if fail_on_flaky && c.flaky > 0 => SuiteVerdict::Failed,
        v => v,
    };
    SuiteSummary {
        name: s.name.clone(),
        result: verdict,
        counts: Counts {
            skipped: c.skipped.saturating_sub(dry_run_specs),
            ..c
        },
        dry_run: s.dry_run,
        dry_run_specs,
        incomplete: verdict == SuiteVerdict::Incomplete,
        incomplete_reason: s
            .incomplete
            .as_ref()
            .map(|i| i.reason.clone())
            .or_else(|| (c.not_run > 0).then(|| format!("{} selected specs never ran", c.not_run))),
        duration_seconds: (s.total_duration().as_secs_f64() * 1000.0).round() / 1000.0,
        failed_specs,
        failure_reasons,
        flaky_specs,
        failed_suite_nodes: s
            .suite_nodes
            .iter()
            .filter(|n| n.attempt.state == crate::results::model::AttemptState::Failed)
            .map(|n| n.name.clone())
            .collect(),
        kubernetes_version: s.kubernetes_version.clone(),
        warnings: s
            .properties
            .iter()
            .filter(|(k, _)| k == crate::results::merge::WARNING_PROPERTY)
            .map(|(_, v)| v.clone())
            .collect(),
    }
}

/// Summarises suites; with `fail_on_flaky` a suite with a flaky spec is failed.
pub fn summarize_with(suites: &[SuiteResult], fail_on_flaky: bool) -> RunSummary {
    summarize_summaries(
        suites
            .iter()
            .map(|s| suite_summary(s, fail_on_flaky))
            .collect(),
    )
}

/// The run's summary from its suites' summaries (so a caller can drop each suite once it is
/// summarised: `report` over a thousand result directories holds one at a time).
pub(crate) fn summarize_summaries(suites: Vec<SuiteSummary>) -> RunSummary {
    let mut totals = Counts::default();
    for s in &suites {
        totals.merge(&s.counts);
    }
    // No suite at all is no verdict.
    let result = suites.iter().map(|s| s.result).max();
    RunSummary {
        format_version: FORMAT_VERSION,
        result: result.unwrap_or(SuiteVerdict::Incomplete),
        suites,
        totals,
        steps: Vec::new(),
    }
}

impl RunSummary {
    /// Adds a gate's steps to the verdict: a failed verdict step (the upgrade, availability)
    /// fails a passed run; a failed infrastructure step (up, ready, down) makes it incomplete.
    /// One verdict everywhere: `summary.json`, stdout and the last human line agree with the
    /// exit code.
    pub(crate) fn with_steps(
        mut self,
        steps: Vec<StepSummary>,
        verdict_failed: bool,
        infra_failed: bool,
    ) -> Self {
        if infra_failed {
            self.result = SuiteVerdict::Incomplete;
        } else if verdict_failed {
            self.result = self.result.max(SuiteVerdict::Failed);
        }
        self.steps = steps;
        self
    }

    /// Pretty JSON.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn human_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

fn counts_line(c: &Counts) -> String {
    let mut line = format!(
        "{} passed, {} failed, {} flaky, {} skipped, {} pending",
        c.passed, c.failed, c.flaky, c.skipped, c.pending
    );
    if c.not_run > 0 {
        let _ = write!(line, ", {} not run", c.not_run);
    }
    line
}

/// Paints a verdict word for a terminal: green, red, or yellow for incomplete and dry runs.
fn paint(word: &str, colour: bool) -> String {
    let code = match word {
        w if w.starts_with("PASSED") => "32",
        w if w.starts_with("FAILED") => "31",
        _ => "33",
    };
    if colour {
        format!("\x1b[1;{code}m{word}\x1b[0m")
    } else {
        word.to_string()
    }
}

/// Multi-line human summary naming failed and flaky specs; with `colour` (a terminal,
/// `NO_COLOR` unset) the verdicts are coloured. Each failed spec is followed by the first line
/// of its failure.
pub(crate) fn render_human_styled(summary: &RunSummary, colour: bool) -> String {
    let mut out = String::new();
    for s in &summary.suites {
        let word = if s.dry_run {
            "DRY RUN".to_string()
        } else {
            s.result.as_str().to_uppercase()
        };
        let word = paint(&word, colour);
        let _ = writeln!(
            out,
            "{}: {word} — {} ({})",
            s.name,
            counts_line(&s.counts),
            human_duration(s.duration_seconds)
        );
        if s.dry_run {
            let _ = writeln!(
                out,
                "  dry run: {} specs would run; nothing was executed",
                s.dry_run_specs
            );
        }
        if let Some(v) = &s.kubernetes_version {
            let _ = writeln!(out, "  kubernetes: {v}");
        }
        if let Some(r) = &s.incomplete_reason {
            let _ = writeln!(out, "  incomplete: {r}");
        }
        for w in &s.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        for n in &s.failed_suite_nodes {
            let _ = writeln!(out, "  failed suite node: {n}");
        }
        for (i, n) in s.failed_specs.iter().enumerate() {
            let why = match s.failure_reasons.get(i).filter(|r| !r.is_empty()) {
                Some(r) => format!(" — {}", r.chars().take(160).collect::<String>()),
                None => String::new(),
            };
            let _ = writeln!(out, "  {}  {n}{why}", paint("FAILED", colour));
        }
        for n in &s.flaky_specs {
            let _ = writeln!(out, "  FLAKY   {n}");
        }
        if s.result == SuiteVerdict::Failed
            && s.counts.failed == 0
            && s.counts.flaky > 0
            && s.failed_suite_nodes.is_empty()
        {
            let _ = writeln!(
                out,
                "  failed because flaky specs fail the run (--fail-on-flaky)"
            );
        }
    }
    let all_dry = !summary.suites.is_empty() && summary.suites.iter().all(|s| s.dry_run);
    let word = if all_dry && summary.result == SuiteVerdict::Passed {
        "DRY RUN (nothing executed)".to_string()
    } else {
        summary.result.as_str().to_uppercase()
    };
    for st in summary.steps.iter().filter(|s| s.result == "failed") {
        let _ = writeln!(
            out,
            "  step {} FAILED: {}",
            st.name,
            st.reason
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    let word = paint(&word, colour);
    let _ = writeln!(out, "result: {word} — {}", counts_line(&summary.totals));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_code::HasExitCode;
    use crate::results::model::{Attempt, AttemptState, Spec};

    fn suites() -> Vec<SuiteResult> {
        let flaky = Spec {
            name: "f".into(),
            attempts: vec![
                Attempt::new(AttemptState::Failed),
                Attempt::new(AttemptState::Passed),
            ],
            ..Spec::default()
        };
        vec![
            SuiteResult {
                name: "a".into(),
                specs: vec![Spec::single("p", AttemptState::Passed), flaky],
                ..SuiteResult::default()
            },
            SuiteResult {
                name: "b".into(),
                specs: vec![
                    Spec::single("x", AttemptState::Failed),
                    Spec::single("s", AttemptState::Skipped),
                ],
                ..SuiteResult::default()
            },
        ]
    }

    #[test]
    fn json_shape_and_exit_codes() {
        let s = summarize_with(&suites(), false);
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["format_version"], 1);
        assert_eq!(v["result"], "failed");
        assert_eq!(v["suites"][0]["flaky_specs"][0], "f");
        assert_eq!(v["suites"][1]["failed_specs"][0], "x");
        assert_eq!(v["totals"]["passed"], 1);
        assert_eq!(v["totals"]["not_run"], 0);
        for key in [
            "name",
            "result",
            "passed",
            "failed",
            "flaky",
            "skipped",
            "pending",
            "dry_run",
            "incomplete",
            "duration_seconds",
            "not_run",
        ] {
            assert!(v["suites"][0].get(key).is_some(), "{key}");
        }
        assert_eq!(s.exit_code(), 1);
        let back: RunSummary = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        let only_a = summarize_with(&suites()[..1], false);
        assert_eq!(only_a.exit_code(), 0);
        let mut inc = suites();
        inc[0].mark_incomplete("cut");
        assert_eq!(summarize_with(&inc, false).exit_code(), 3);
        assert_eq!(summarize_with(&[], false).result, SuiteVerdict::Incomplete);
    }

    #[test]
    fn fail_on_flaky_is_one_verdict_in_json_text_and_exit_code() {
        // Regression: --fail-on-flaky exited 1 while summary.json and the last line said passed.
        let s = summarize_with(&suites()[..1], true);
        assert_eq!(s.result, SuiteVerdict::Failed);
        assert_eq!(s.suites[0].result, SuiteVerdict::Failed);
        assert_eq!(s.exit_code(), 1);
        let text = render_human_styled(&s, false);
        assert!(text.contains("a: FAILED"), "{text}");
        assert!(text.contains("result: FAILED"), "{text}");
        assert!(text.contains("--fail-on-flaky"), "{text}");
        let allowed = summarize_with(&suites()[..1], false);
        assert_eq!(
            (allowed.result, allowed.exit_code()),
            (SuiteVerdict::Passed, 0)
        );
    }

    #[test]
    fn a_failed_gate_step_fails_the_summary() {
        // Regression: a gate whose Upgrade failed exited 1 with "result": "passed".
        let step = StepSummary {
            name: "Upgrade".into(),
            result: "failed".into(),
            reason: Some("upgrade incomplete: 2/3 nodes replaced".into()),
            duration_seconds: 12.0,
        };
        let s = summarize_with(&suites()[..1], false).with_steps(vec![step], true, false);
        assert_eq!((s.result, s.exit_code()), (SuiteVerdict::Failed, 1));
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["result"], "failed");
        assert_eq!(v["steps"][0]["name"], "Upgrade");
        let text = render_human_styled(&s, false);
        assert!(
            text.contains("step Upgrade FAILED: upgrade incomplete"),
            "{text}"
        );
        assert!(
            text.trim_end()
                .lines()
                .last()
                .unwrap()
                .starts_with("result: FAILED"),
            "{text}"
        );
        let infra = summarize_with(&suites()[..1], false).with_steps(Vec::new(), false, true);
        assert_eq!(infra.exit_code(), 3);
    }

    #[test]
    fn failures_carry_their_first_line_and_colour_only_when_asked() {
        // Regression: the human summary named failed specs without why.
        let mut failed = Spec::single("x", AttemptState::Failed);
        failed.attempts[0].failure = Some("expected 42, got 0\nstack…".into());
        let s = summarize_with(
            &[SuiteResult {
                name: "b".into(),
                specs: vec![failed],
                ..SuiteResult::default()
            }],
            false,
        );
        let plain = render_human_styled(&s, false);
        assert!(plain.contains("FAILED  x — expected 42, got 0"), "{plain}");
        assert!(!plain.contains('\x1b'), "no escape codes off a terminal");
        let coloured = render_human_styled(&s, true);
        assert!(coloured.contains("\x1b[1;31mFAILED\x1b[0m"), "{coloured}");
    }

    #[test]
    fn human_names_specs() {
        let text = render_human_styled(&summarize_with(&suites(), false), false);
        assert!(
            text.contains("a: PASSED — 1 passed, 0 failed, 1 flaky"),
            "{text}"
        );
        assert!(text.contains("FLAKY   f"));
        assert!(text.contains("FAILED  x"));
        assert!(text.contains("result: FAILED"));
    }
}
