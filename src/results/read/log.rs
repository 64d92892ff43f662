//! Ginkgo v1/v2 console output (`e2e.log`): summary lines, flaky blocks, failure lists,
//! the Kubernetes version. ANSI codes and trailing banners are tolerated.

use crate::results::model::{
    Attempt, AttemptState, Counts, SourceFormat, Spec, SuiteNode, SuiteResult, DRY_RUN_KIND,
};
use regex::Regex;
use std::io::BufRead;
use std::sync::OnceLock;
use std::time::Duration;

/// A spec that passed after retries, as the log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFlake {
    /// Spec text as printed (may carry a trailing ` [label, …]` list).
    pub(crate) name: String,
    /// Attempts it took (≥ 2).
    pub(crate) attempts: u32,
    /// `file:line` printed under the name, when present.
    pub(crate) location: Option<String>,
    /// Duration of the final attempt.
    pub(crate) duration: Option<Duration>,
}

/// Everything read from a console log.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct LogSummary {
    /// v1 or v2 console format.
    pub(crate) format: Option<SourceFormat>,
    /// `Running Suite: <description>`.
    pub(crate) suite_description: Option<String>,
    /// `Will run N of M specs`: (N, M).
    pub(crate) will_run: Option<(usize, usize)>,
    /// `Ran N of M Specs in S seconds`: (N, M).
    pub(crate) ran: Option<(usize, usize)>,
    /// Suite run time from the `Ran` line.
    pub(crate) duration: Option<Duration>,
    /// The counts of the final summary line (`SUCCESS! -- 411 Passed | 0 Failed | 2 Flaked |
    /// …`), when it was printed. As ginkgo counts: `passed` includes the flaky specs; `flaky` is
    /// 0 when the column is absent.
    pub(crate) counts: Option<Counts>,
    /// `SUCCESS!` (true) or `FAIL!` (false).
    pub(crate) success: Option<bool>,
    /// Special failure reason after `FAIL! - ` (e.g. `Interrupted by Timeout`).
    pub(crate) special_failure: Option<String>,
    /// Flaky specs from `↺ [FLAKEY TEST - TOOK N ATTEMPTS TO PASS]` blocks.
    pub(crate) flakes: Vec<LogFlake>,
    /// Spec names from the `Summarizing N Failures` list (`[It]` token removed).
    pub(crate) failures: Vec<String>,
    /// Names from v1 progress lines `{"msg":"PASSED …"}`.
    pub(crate) passed_names: Vec<String>,
    /// A suite node failed (`A BeforeSuite node failed …`, `[BeforeSuite] [FAILED]`).
    pub(crate) suite_node_failure: Option<String>,
    /// `kube-apiserver version: vX`.
    pub(crate) kubernetes_version: Option<String>,
    /// The run was interrupted (`Received interrupt.`, `Interrupted by …`): specs that were
    /// running or not yet started have no result, whatever the summary counts say.
    pub(crate) interrupted: bool,
}

impl LogSummary {
    /// A dry run: specs were "run" but none passed or failed.
    pub(crate) fn is_dry_run(&self) -> bool {
        match (self.ran, self.counts) {
            (Some((ran, _)), Some(c)) => ran > 0 && c.passed == 0 && c.failed == 0,
            _ => false,
        }
    }
}

struct Patterns {
    ansi: Regex,
    running_suite: Regex,
    will_run: Regex,
    parallel: Regex,
    ran: Regex,
    summary: Regex,
    flakey: Regex,
    attempt_failed: Regex,
    summarizing: Regex,
    fail_entry: Regex,
    apiserver: Regex,
    suite_node_failed: Regex,
    interrupted: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).unwrap_or_else(|e| panic!("bad built-in regex {s}: {e}"));
        Patterns {
            ansi: re(r"\x1b\[[0-9;?]*[ -/]*[@-~]"),
            running_suite: re(r"^Running Suite: (.+?)(?: - (/\S*))?\s*$"),
            will_run: re(r"Will run (\d+)(?: of (\d+))? specs"),
            parallel: re(r"Running in parallel across \d+ (processes|nodes)"),
            ran: re(r"Ran (\d+) of (\d+) Specs in ([0-9.]+) seconds"),
            summary: re(
                r"(SUCCESS!|FAIL!)(?: - ([^-\n]+?))?(?: --)? ?(?:(\d+) Passed \| (\d+) Failed \|(?: (\d+) Flaked \|)?(?: (\d+) Repeated \|)? (\d+) Pending \| (\d+) Skipped)",
            ),
            flakey: re(r"(?:↺|R) \[FLAKEY TEST - TOOK (\d+) ATTEMPTS TO PASS\](?: \[([0-9.]+) seconds\])?"),
            attempt_failed: re(r"^\s*Attempt #\d+ Failed\.\s+Retrying"),
            summarizing: re(r"^Summarizing (\d+) Failures?:"),
            fail_entry: re(r"^\s*\[(Fail|FAIL|FAILED|TIMEDOUT|PANICKED|INTERRUPTED|ABORTED|Panic!|Timeout)\] (.+?)\s*$"),
            apiserver: re(r"kube-apiserver version: (v\S+)"),
            interrupted: re(r"^Received interrupt\.|^Interrupted by |^\s*\[INTERRUPTED\]"),
            suite_node_failed: re(
                r"A (BeforeSuite|AfterSuite|SynchronizedBeforeSuite|SynchronizedAfterSuite) node failed|^\[((?:Synchronized)?(?:Before|After)Suite)\] \[?(FAILED|PANICKED|TIMEDOUT)",
            ),
        }
    })
}

/// Removes ANSI escape sequences.
pub(crate) fn strip_ansi(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\x1b') {
        return std::borrow::Cow::Borrowed(line);
    }
    patterns().ansi.replace_all(line, "")
}

/// Removes the `[It]` token of a failure-summary name (`A B [It] c` → `A B c`).
fn strip_it_token(name: &str) -> String {
    name.replacen(" [It] ", " ", 1)
        .trim_start_matches("[It] ")
        .trim()
        .to_string()
}

/// What the parser expects on the next non-empty line.
enum Expect {
    Nothing,
    FlakeName(u32, Option<Duration>),
    FlakeLocation,
}

/// Reads a console log. Lines are decoded lossily (logs may hold invalid UTF-8).
pub(crate) fn read_log<R: BufRead>(mut input: R) -> std::io::Result<LogSummary> {
    let p = patterns();
    let mut s = LogSummary::default();
    let mut raw = Vec::with_capacity(4096);
    let mut expect = Expect::Nothing;
    let mut in_failures = false;
    let mut v2_markers = false;
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        let lossy = String::from_utf8_lossy(&raw);
        let line = strip_ansi(lossy.trim_end_matches(['\n', '\r']));
        let line = line.as_ref();
        let trimmed = line.trim();
        match expect {
            Expect::FlakeName(n, d) if !trimmed.is_empty() => {
                s.flakes.push(LogFlake {
                    name: trimmed.to_string(),
                    attempts: n,
                    location: None,
                    duration: d,
                });
                expect = Expect::FlakeLocation;
                continue;
            }
            Expect::FlakeLocation if !trimmed.is_empty() => {
                expect = Expect::Nothing;
                if !trimmed.contains(' ') && trimmed.contains(".go:") {
                    if let Some(f) = s.flakes.last_mut() {
                        f.location = Some(trimmed.to_string());
                    }
                    continue;
                }
            }
            _ => {}
        }
        if trimmed.is_empty() {
            continue;
        }
        if in_failures {
            if let Some(c) = p.fail_entry.captures(line) {
                s.failures.push(strip_it_token(&c[2]));
                continue;
            }
            if trimmed.starts_with('/') || trimmed.contains(".go:") {
                continue;
            }
            in_failures = false;
        }
        if let Some(c) = p.flakey.captures(line) {
            v2_markers = true;
            let n = c[1].parse().unwrap_or(2);
            let d = c
                .get(2)
                .and_then(|m| m.as_str().parse::<f64>().ok())
                .map(Duration::from_secs_f64);
            expect = Expect::FlakeName(n, d);
            continue;
        }
        if p.attempt_failed.is_match(line) {
            v2_markers = true;
            continue;
        }
        let progress = line.find("{\"msg\":\"").map(|i| &line[i..]);
        if let Some(Ok(v)) = progress.map(serde_json::from_str::<serde_json::Value>) {
            let msg = v.get("msg").and_then(|m| m.as_str());
            if let Some(name) = msg.and_then(|m| m.strip_prefix("PASSED ")) {
                s.passed_names.push(name.to_string());
            }
            continue;
        }
        if s.suite_description.is_none() {
            if let Some(c) = p.running_suite.captures(trimmed) {
                s.suite_description = Some(c[1].to_string());
                if c.get(2).is_some() {
                    v2_markers = true;
                }
                continue;
            }
        }
        if let Some(c) = p.will_run.captures(line) {
            let n = c[1].parse().unwrap_or(0);
            let total = c.get(2).and_then(|m| m.as_str().parse().ok()).unwrap_or(n);
            s.will_run = Some((n, total));
            continue;
        }
        s.interrupted |= p.interrupted.is_match(trimmed);
        if let Some(c) = p.parallel.captures(line) {
            v2_markers |= &c[1] == "processes";
            continue;
        }
        if let Some(c) = p.ran.captures(line) {
            s.ran = Some((c[1].parse().unwrap_or(0), c[2].parse().unwrap_or(0)));
            s.duration = c[3].parse::<f64>().ok().map(Duration::from_secs_f64);
            continue;
        }
        if let Some(c) = p.summary.captures(line) {
            s.success = Some(&c[1] == "SUCCESS!");
            s.special_failure = c.get(2).map(|m| m.as_str().trim().to_string());
            s.interrupted |= s
                .special_failure
                .as_deref()
                .is_some_and(|f| f.contains("Interrupted"));
            let n = |i: usize| {
                c.get(i)
                    .and_then(|m| m.as_str().parse::<usize>().ok())
                    .unwrap_or(0)
            };
            if c.get(3).is_some() {
                s.counts = Some(Counts {
                    passed: n(3),
                    failed: n(4),
                    flaky: n(5),
                    pending: n(7),
                    skipped: n(8),
                    not_run: 0,
                });
            }
            continue;
        }
        if p.summarizing.is_match(trimmed) {
            in_failures = true;
            continue;
        }
        if let Some(c) = p.suite_node_failed.captures(trimmed) {
            let which = c
                .get(1)
                .or(c.get(2))
                .map(|m| m.as_str())
                .unwrap_or("BeforeSuite");
            s.suite_node_failure
                .get_or_insert_with(|| which.to_string());
            continue;
        }
        if s.kubernetes_version.is_none() {
            if let Some(c) = p.apiserver.captures(line) {
                s.kubernetes_version = Some(c[1].to_string());
                continue;
            }
        }
        if trimmed.starts_with("• [FAILED]") || trimmed.starts_with("Timeline >>") {
            v2_markers = true;
        }
    }
    s.format = Some(if v2_markers {
        SourceFormat::GinkgoV2Log
    } else {
        SourceFormat::GinkgoV1Log
    });
    Ok(s)
}

/// Reads a log held in memory.
#[cfg(test)]
pub(crate) fn read_log_str(text: &str) -> LogSummary {
    // Reading from a slice cannot fail.
    read_log(text.as_bytes()).unwrap_or_default()
}

/// The suffix of every placeholder name [`log_to_suite`] gives a spec the log counts but
/// does not name.
const PLACEHOLDER_SUFFIX: &str = ", not named in e2e.log)";

fn placeholder(kind: &str, i: usize, n: usize) -> String {
    format!("({kind} spec {i} of {n}{PLACEHOLDER_SUFFIX}")
}

/// Whether `name` is a placeholder [`log_to_suite`] made up for a spec the log did not name.
pub(crate) fn is_placeholder(name: &str) -> bool {
    name.starts_with('(') && name.ends_with(PLACEHOLDER_SUFFIX)
}

/// A suite built from the log alone (the fallback when no usable JUnit exists). Counts
/// match the summary line; specs the log does not name get placeholder names. Without a
/// summary line the suite is incomplete.
pub(crate) fn log_to_suite(log: &LogSummary, source: &str) -> SuiteResult {
    let mut suite = SuiteResult {
        name: log.suite_description.clone().unwrap_or_default(),
        ..SuiteResult::default()
    };
    // The version, duration, interruption and dry run, as for a suite read from a report.
    crate::results::merge::apply_log(&mut suite, log, source);
    if let Some(which) = &log.suite_node_failure {
        suite.suite_nodes.push(SuiteNode {
            name: format!("[{which}]"),
            attempt: Attempt {
                state: AttemptState::Failed,
                failure: Some(format!("{which} failed (from {source})")),
                ..Attempt::default()
            },
        });
    }
    let Some(c) = log.counts else {
        suite.mark_incomplete(format!(
            "{source}: no ginkgo summary line (the run did not finish)"
        ));
        for f in &log.flakes {
            suite.specs.push(flaky_spec(f, source));
        }
        return suite;
    };
    if suite.dry_run {
        let (ran, _) = log.ran.unwrap_or((0, 0));
        for i in 1..=ran {
            let mut spec = Spec::single(placeholder("dry-run", i, ran), AttemptState::Skipped);
            spec.attempts[0].failure_kind = Some(DRY_RUN_KIND.to_string());
            suite.specs.push(spec);
        }
    }
    // failed: v1 lists failed attempts of flaky specs too, so names are only trusted when
    // the list matches the count.
    let named_failures = log.failures.len() == c.failed;
    for i in 0..c.failed {
        let name = log
            .failures
            .get(i)
            .filter(|_| named_failures)
            .cloned()
            .unwrap_or_else(|| placeholder("failed", i + 1, c.failed));
        let mut spec = Spec::single(name, AttemptState::Failed);
        spec.attempts[0].failure = Some(format!("failed (from {source}; no failure text)"));
        suite.specs.push(spec);
    }
    // flaky: named when the blocks were printed
    let flaked = c.flaky.max(log.flakes.len());
    for i in 0..flaked {
        let unnamed = LogFlake {
            name: placeholder("flaky", i + 1, flaked),
            attempts: 2,
            location: None,
            duration: None,
        };
        suite
            .specs
            .push(flaky_spec(log.flakes.get(i).unwrap_or(&unnamed), source));
    }
    let passed = c.passed.saturating_sub(flaked);
    let named: Vec<&String> = log
        .passed_names
        .iter()
        .filter(|n| !log.flakes.iter().any(|f| super::names_match(n, &f.name)))
        .take(passed)
        .collect();
    for i in 0..passed {
        let name = named
            .get(i)
            .map(|n| n.to_string())
            .unwrap_or_else(|| placeholder("passed", i + 1, passed));
        suite.specs.push(Spec::single(name, AttemptState::Passed));
    }
    for (kind, n, state) in [
        ("pending", c.pending, AttemptState::Pending),
        ("skipped", c.skipped, AttemptState::Skipped),
    ] {
        for i in 1..=n {
            suite
                .specs
                .push(Spec::single(placeholder(kind, i, n), state));
        }
    }
    suite
}

/// A spec with `attempts - 1` failed attempts then a pass.
pub(crate) fn flaky_spec(f: &LogFlake, source: &str) -> Spec {
    Spec {
        name: f.name.clone(),
        location: f.location.clone(),
        attempts: flaky_attempts(f, source),
        ..Spec::default()
    }
}

/// The attempts a flake block implies: `attempts - 1` failures, then a pass.
pub(crate) fn flaky_attempts(f: &LogFlake, source: &str) -> Vec<Attempt> {
    let n = f.attempts.max(2);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n - 1 {
        let mut a = Attempt::new(AttemptState::Failed);
        a.failure_kind = Some("failed".into());
        a.failure = Some(format!(
            "attempt {} of {n} failed (from {source}; the JUnit does not record flaky attempts)",
            i + 1
        ));
        a.origin.in_process = i;
        out.push(a);
    }
    let mut last = Attempt::new(AttemptState::Passed);
    last.duration = f.duration;
    last.origin.in_process = n - 1;
    out.push(last);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::model::SpecOutcome;

    const V2: &str = "Running Suite: Kubernetes e2e suite - /usr/local/bin
====================================================
Random Seed: 1741957287 - will randomize all specs
Will run 4 of 10 specs
Running in parallel across 2 processes
SSS\u{2022}SS\u{2022}
------------------------------
\u{21ba} [FLAKEY TEST - TOOK 3 ATTEMPTS TO PASS] [13.543 seconds]
[sig-api-machinery] FieldValidation should work [Conformance] [sig-api-machinery, Conformance]
k8s.io/kubernetes/test/e2e/apimachinery/field_validation.go:472
------------------------------
  Attempt #1 Failed.  Retrying \u{21ba} @ 02/18/25 18:26:33.253
S\u{2022}SS

Summarizing 1 Failure:
  [FAIL] [sig-x] Foo [It] bar [Conformance]
  k8s.io/kubernetes/test/e2e/x.go:1

Ran 4 of 10 Specs in 2598.446 seconds
FAIL! -- 3 Passed | 1 Failed | 1 Flaked | 0 Pending | 6 Skipped
Ginkgo ran 1 suite in 43m20.710729149s
Test Suite Failed
\x1b[38;5;228mYou're using deprecated Ginkgo functionality:\x1b[0m
  \x1b[38;5;11m--flakeAttempts is deprecated\x1b[0m
";

    #[test]
    fn v2_summary_flakes_failures() {
        let s = read_log_str(V2);
        assert_eq!(s.format, Some(SourceFormat::GinkgoV2Log));
        assert_eq!(s.will_run, Some((4, 10)));
        assert_eq!(
            s.counts,
            Some(Counts {
                passed: 3,
                failed: 1,
                flaky: 1,
                pending: 0,
                skipped: 6,
                not_run: 0,
            })
        );
        assert_eq!(s.success, Some(false));
        assert_eq!(s.flakes.len(), 1);
        assert_eq!(s.flakes[0].attempts, 3);
        assert!(s.flakes[0]
            .name
            .starts_with("[sig-api-machinery] FieldValidation"));
        assert_eq!(
            s.flakes[0].location.as_deref(),
            Some("k8s.io/kubernetes/test/e2e/apimachinery/field_validation.go:472")
        );
        assert_eq!(s.failures, vec!["[sig-x] Foo bar [Conformance]"]);
        let suite = log_to_suite(&s, "e2e.log");
        let c = suite.counts();
        assert_eq!((c.passed, c.flaky, c.failed, c.skipped), (2, 1, 1, 6));
        assert!(suite.incomplete.is_none());
    }

    #[test]
    fn v1_summary_glued_pass_flaked_column_and_progress() {
        let log = "Conformance test: not doing test setup.
Running Suite: Kubernetes e2e suite
May 30 06:08:34.949: INFO: kube-apiserver version: v1.19.16
Will run 2 of 5 specs
\u{2022}{\"msg\":\"PASSED [sig-a] one\",\"total\":2,\"completed\":1,\"skipped\":0,\"failed\":0}
Ran 2 of 5 Specs in 7.4 seconds
SUCCESS! -- 2 Passed | 0 Failed | 0 Flaked | 0 Pending | 3 Skipped PASS
";
        let s = read_log_str(log);
        assert_eq!(s.format, Some(SourceFormat::GinkgoV1Log));
        assert_eq!(s.kubernetes_version.as_deref(), Some("v1.19.16"));
        assert_eq!(s.counts.unwrap().passed, 2);
        assert_eq!(s.passed_names, vec!["[sig-a] one"]);
        let suite = log_to_suite(&s, "e2e.log");
        assert_eq!(suite.specs[0].name, "[sig-a] one");
        assert_eq!(suite.counts().skipped, 3);
        assert_eq!(suite.specs_with(SpecOutcome::Passed).count(), 2);
    }

    #[test]
    fn dry_run_and_unfinished() {
        let s = read_log_str(
            "Will run 2 of 5 specs\nRan 2 of 5 Specs in 0.011 seconds\nSUCCESS! -- 0 Passed | 0 Failed | 0 Pending | 3 Skipped PASS\n",
        );
        assert!(s.is_dry_run());
        let suite = log_to_suite(&s, "e2e.log");
        assert!(suite.dry_run);
        assert_eq!(suite.counts().passed, 0);
        assert_eq!(suite.dry_run_specs(), 2);
        let s = read_log_str("Will run 2 of 5 specs\n\u{2022}\n");
        let suite = log_to_suite(&s, "e2e.log");
        assert!(suite.incomplete.is_some());
    }

    #[test]
    fn special_failure_and_suite_node() {
        let s = read_log_str(
            "A BeforeSuite node failed so all tests were skipped.\nFAIL! - Interrupted by Timeout -- 10 Passed | 2 Failed | 0 Pending | 626 Skipped\n",
        );
        assert_eq!(s.special_failure.as_deref(), Some("Interrupted by Timeout"));
        assert_eq!(s.counts.unwrap().failed, 2);
        assert_eq!(s.suite_node_failure.as_deref(), Some("BeforeSuite"));
    }
}
