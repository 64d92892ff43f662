//! One combined JUnit file via quick-junit: Surefire-style flaky/rerun elements for
//! Jenkins, or one testcase per attempt for TestGrid/Spyglass.

use crate::results::model::{Attempt, AttemptState, Spec, SpecOutcome, SuiteResult};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};
use std::time::Duration;

/// JUnit layout for retried specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JunitStyle {
    /// One testcase per spec: `<flakyFailure>` per failed attempt of a flaky spec,
    /// `<failure>` + `<rerunFailure>` for a failed one (Jenkins, Surefire, quick-junit).
    #[default]
    Jenkins,
    /// One testcase per attempt, same name repeated (TestGrid, Prow Spyglass).
    Testgrid,
}

/// Writer options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitOptions {
    /// Layout.
    pub style: JunitStyle,
    /// Captured output kept per testcase/attempt, in bytes (the tail is kept).
    pub max_output_bytes: usize,
    /// `name` of the `<testsuites>` root.
    pub report_name: String,
}

impl Default for JunitOptions {
    fn default() -> Self {
        JunitOptions {
            style: JunitStyle::Jenkins,
            max_output_bytes: 4096,
            report_name: "e2e-gate".to_string(),
        }
    }
}

/// Name of the error testcase written for an incomplete suite.
pub(crate) const INCOMPLETE_TESTCASE: &str = "[e2e-gate] results incomplete";

/// Keeps the last `max` bytes of `s`, noting how much was cut (including what a reader
/// already cut, noted the same way at the start).
pub(crate) fn truncate_output(s: &str, max: usize) -> Option<String> {
    if max == 0 || s.trim().is_empty() {
        return None;
    }
    let (already, body) = split_truncation_note(s);
    if body.len() <= max {
        return Some(s.to_string());
    }
    let cut = body.ceil_char_boundary(body.len() - max);
    Some(format!(
        "[… {} bytes truncated …]\n{}",
        already + cut,
        &body[cut..]
    ))
}

/// `("[… N bytes truncated …]\nrest")` → `(N, "rest")`; `(0, s)` without a note.
fn split_truncation_note(s: &str) -> (usize, &str) {
    let parsed = s.strip_prefix("[… ").and_then(|r| {
        let (n, rest) = r.split_once(" bytes truncated …]\n")?;
        Some((n.parse::<usize>().ok()?, rest))
    });
    parsed.unwrap_or((0, s))
}

/// Failure text bounded for attributes/bodies (TestGrid cuts at 10000 characters anyway).
fn bound_failure(s: &str) -> String {
    const MAX: usize = 10_000;
    if s.len() <= MAX {
        s.to_string()
    } else {
        format!("{}\n[… truncated …]", &s[..s.floor_char_boundary(MAX)])
    }
}

fn rerun_of(a: &Attempt, opts: &JunitOptions) -> TestRerun {
    let mut r = TestRerun::new(NonSuccessKind::Failure);
    r.set_message(a.message());
    r.set_type(a.failure_kind.as_deref().unwrap_or("failed"));
    if let Some(f) = &a.failure {
        r.set_stack_trace(bound_failure(f));
    }
    if let Some(d) = a.duration {
        r.set_time(d);
    }
    if let Some(o) = a
        .output
        .as_deref()
        .and_then(|o| truncate_output(o, opts.max_output_bytes))
    {
        r.set_system_out(o);
    }
    r
}

fn failure_status(a: &Attempt) -> TestCaseStatus {
    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
    st.set_message(a.message());
    st.set_type(a.failure_kind.as_deref().unwrap_or("failed"));
    if let Some(f) = &a.failure {
        st.set_description(bound_failure(f));
    }
    st
}

fn not_run_status(a: Option<&Attempt>, suite: &SuiteResult) -> TestCaseStatus {
    let why = a
        .and_then(|a| a.failure.clone())
        .or_else(|| suite.incomplete.as_ref().map(|i| i.reason.clone()))
        .unwrap_or_else(|| "the run stopped before this spec ran".to_string());
    let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
    st.set_type("not-run");
    // The runner's reasons already say "not run: …"; never "not run: not run: …".
    let why = why.strip_prefix("not run: ").unwrap_or(&why);
    st.set_message(format!("not run: {why}"));
    st
}

fn skipped_status(spec: &Spec) -> TestCaseStatus {
    let mut st = TestCaseStatus::skipped();
    let msg = if spec.is_dry_run() {
        "dry run: would run".to_string()
    } else if spec.outcome() == SpecOutcome::Pending {
        "pending".to_string()
    } else {
        spec.attempts
            .last()
            .and_then(|a| a.failure.clone())
            .unwrap_or_else(|| "skipped".to_string())
    };
    st.set_message(msg);
    st
}

fn total_time(attempts: &[Attempt]) -> Option<Duration> {
    let mut it = attempts.iter().filter_map(|a| a.duration).peekable();
    it.peek()?;
    Some(it.sum())
}

fn testcase(name: &str, classname: &str, status: TestCaseStatus) -> TestCase {
    let mut tc = TestCase::new(name, status);
    tc.set_classname(classname);
    tc
}

fn set_output(tc: &mut TestCase, a: Option<&Attempt>, opts: &JunitOptions) {
    if let Some(o) = a
        .and_then(|a| a.output.as_deref())
        .and_then(|o| truncate_output(o, opts.max_output_bytes))
    {
        tc.set_system_out(o);
    }
}

/// Jenkins layout: one testcase per spec.
fn jenkins_case(
    spec: &Spec,
    classname: &str,
    suite: &SuiteResult,
    opts: &JunitOptions,
) -> TestCase {
    let outcome = spec.outcome();
    let status = match outcome {
        SpecOutcome::Passed => TestCaseStatus::success(),
        SpecOutcome::Flaky => {
            let mut st = TestCaseStatus::success();
            st.add_reruns(spec.failed_attempts().map(|a| rerun_of(a, opts)));
            st
        }
        SpecOutcome::Failed => {
            let mut failed = spec.failed_attempts();
            let first = failed.next();
            let mut st = first.map_or_else(|| not_run_status(None, suite), failure_status);
            st.add_reruns(failed.map(|a| rerun_of(a, opts)));
            st
        }
        SpecOutcome::Skipped | SpecOutcome::Pending => skipped_status(spec),
        SpecOutcome::NotRun => not_run_status(spec.attempts.last(), suite),
    };
    let mut tc = testcase(&spec.name, classname, status);
    if let Some(t) = total_time(&spec.attempts) {
        tc.set_time(t);
    }
    let shown = match outcome {
        SpecOutcome::Failed => spec.failed_attempts().next(),
        _ => spec.attempts.last(),
    };
    set_output(&mut tc, shown, opts);
    tc
}

/// TestGrid layout: one testcase per attempt that ran (or one for a spec that did not).
fn testgrid_cases(
    spec: &Spec,
    classname: &str,
    suite: &SuiteResult,
    opts: &JunitOptions,
) -> Vec<TestCase> {
    let ran: Vec<&Attempt> = spec
        .attempts
        .iter()
        .filter(|a| matches!(a.state, AttemptState::Passed | AttemptState::Failed))
        .collect();
    if ran.is_empty() {
        return vec![jenkins_case(spec, classname, suite, opts)];
    }
    ran.into_iter()
        .map(|a| {
            let status = if a.state == AttemptState::Failed {
                failure_status(a)
            } else {
                TestCaseStatus::success()
            };
            let mut tc = testcase(&spec.name, classname, status);
            if let Some(d) = a.duration {
                tc.set_time(d);
            }
            set_output(&mut tc, Some(a), opts);
            tc
        })
        .collect()
}

fn suite_to_junit(suite: &SuiteResult, opts: &JunitOptions) -> TestSuite {
    let name = if suite.name.is_empty() {
        "e2e"
    } else {
        suite.name.as_str()
    };
    let mut ts = TestSuite::new(name);
    for (k, v) in &suite.properties {
        ts.add_property(Property::new(k.as_str(), v.as_str()));
    }
    if let Some(v) = &suite.kubernetes_version {
        ts.add_property(Property::new("kubernetes_version", v.as_str()));
    }
    if suite.dry_run {
        ts.add_property(Property::new("dry_run", "true"));
    }
    if let Some(i) = &suite.incomplete {
        ts.add_property(Property::new("incomplete", i.reason.as_str()));
    }
    for node in &suite.suite_nodes {
        let status = match node.attempt.state {
            AttemptState::Failed => failure_status(&node.attempt),
            AttemptState::NotRun => not_run_status(Some(&node.attempt), suite),
            AttemptState::Skipped | AttemptState::Pending => TestCaseStatus::skipped(),
            AttemptState::Passed => TestCaseStatus::success(),
        };
        let mut tc = testcase(&node.name, name, status);
        if let Some(d) = node.attempt.duration {
            tc.set_time(d);
        }
        if node.attempt.state == AttemptState::Failed {
            set_output(&mut tc, Some(&node.attempt), opts);
        }
        ts.add_test_case(tc);
    }
    for spec in &suite.specs {
        let classname = spec.classname.as_deref().unwrap_or(name);
        match opts.style {
            JunitStyle::Jenkins => {
                ts.add_test_case(jenkins_case(spec, classname, suite, opts));
            }
            JunitStyle::Testgrid => {
                ts.add_test_cases(testgrid_cases(spec, classname, suite, opts));
            }
        }
    }
    if let Some(i) = &suite.incomplete {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_type("incomplete");
        st.set_message(i.reason.as_str());
        ts.add_test_case(testcase(INCOMPLETE_TESTCASE, name, st));
    }
    let d = suite.total_duration();
    if d > Duration::ZERO {
        ts.set_time(d);
    }
    ts
}

/// The combined report: a `<testsuite>` per suite.
pub(crate) fn to_junit(suites: &[SuiteResult], opts: &JunitOptions) -> Report {
    let mut report = Report::new(opts.report_name.as_str());
    let mut total = Duration::ZERO;
    for s in suites {
        total += s.total_duration();
        report.add_test_suite(suite_to_junit(s, opts));
    }
    if total > Duration::ZERO {
        report.set_time(total);
    }
    report
}

/// A combined report written one suite at a time, so memory holds one suite, not all: each
/// suite's `<testsuite>` goes to a temporary file when it is added, and [`Self::finish`]
/// writes the `<testsuites>` element with the totals around them — the same bytes as
/// [`write_junit_string`] over all the suites at once.
pub(crate) struct JunitStream {
    opts: JunitOptions,
    /// Aggregates only: each suite is popped as soon as it is counted.
    totals: Report,
    time: Duration,
    body: std::io::BufWriter<std::fs::File>,
}

fn serialize(report: &Report) -> std::io::Result<String> {
    report
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

impl JunitStream {
    pub(crate) fn new(opts: &JunitOptions) -> std::io::Result<Self> {
        Ok(JunitStream {
            opts: opts.clone(),
            totals: Report::new(opts.report_name.as_str()),
            time: Duration::ZERO,
            body: std::io::BufWriter::new(tempfile::tempfile()?),
        })
    }

    /// Adds `suite` (written out now; the caller may drop it).
    pub(crate) fn add(&mut self, suite: &SuiteResult) -> std::io::Result<()> {
        use std::io::Write;
        let ts = suite_to_junit(suite, &self.opts);
        self.time += suite.total_duration();
        let mut one = Report::new(self.opts.report_name.as_str());
        one.add_test_suite(ts.clone());
        let text = serialize(&one)?;
        // Between the `<testsuites …>` line and the closing `</testsuites>`.
        let start = text.find("<testsuite ").unwrap_or(text.len());
        let end = text.rfind("</testsuites>").unwrap_or(text.len());
        let block = text[start..end].trim_end();
        write!(self.body, "\n    {block}")?;
        self.totals.add_test_suite(ts);
        self.totals.test_suites.clear();
        Ok(())
    }

    /// Writes the whole report to `out`.
    pub(crate) fn finish(mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use std::io::Seek;
        if self.time > Duration::ZERO {
            self.totals.set_time(self.time);
        }
        let frame = serialize(&self.totals)?;
        let close = frame.rfind("</testsuites>").unwrap_or(frame.len());
        let head = frame[..close].trim_end();
        // An empty `<testsuites/>` has no body to wrap: write it as it is.
        if self.body.get_ref().metadata()?.len() == 0 && self.body.buffer().is_empty() {
            return out.write_all(frame.as_bytes());
        }
        out.write_all(head.as_bytes())?;
        let mut file = self
            .body
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        file.rewind()?;
        std::io::copy(&mut file, out)?;
        out.write_all(b"\n</testsuites>\n")
    }
}

/// The combined report as an XML string.
pub fn write_junit_string(suites: &[SuiteResult], opts: &JunitOptions) -> String {
    match to_junit(suites, opts).to_string() {
        Ok(s) => s,
        // Serialising in-memory values does not fail in practice; keep the file valid XML.
        Err(e) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"e2e-gate\"><!-- serialisation failed: {} --></testsuites>\n",
            e.to_string().replace("--", "- -")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_writes_the_same_bytes_as_the_whole_report() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/results");
        let mut suites = Vec::new();
        for f in [
            "v1/junit_01.xml",
            "v2-parallel/junit_01.xml",
            "dry-run/junit_01.xml",
            "ginkgo-v1-fixture/flake-attempts-2/junit_01.xml",
            "truncated/junit_01.xml",
        ] {
            let text = std::fs::read_to_string(dir.join(f)).expect("fixture");
            suites.push(read_junit(text.as_bytes(), f, &ReadOptions::default()));
        }
        for opts in [
            JunitOptions::default(),
            JunitOptions {
                style: JunitStyle::Testgrid,
                max_output_bytes: 0,
                ..JunitOptions::default()
            },
        ] {
            for n in 0..=suites.len() {
                let whole = write_junit_string(&suites[..n], &opts);
                let mut stream = JunitStream::new(&opts).expect("temp file");
                for s in &suites[..n] {
                    stream.add(s).expect("added");
                }
                let mut out = Vec::new();
                stream.finish(&mut out).expect("written");
                assert_eq!(String::from_utf8(out).expect("utf-8"), whole, "{n} suites");
            }
        }
    }
    use crate::results::model::{Incomplete, SuiteNode, DRY_RUN_KIND};
    use crate::results::read::junit::read_junit;
    use crate::results::read::ReadOptions;

    fn attempt(state: AttemptState, failure: Option<&str>) -> Attempt {
        Attempt {
            state,
            failure: failure.map(String::from),
            failure_kind: failure.map(|_| "failed".to_string()),
            duration: Some(Duration::from_millis(1500)),
            output: Some("x".repeat(100)),
            ..Attempt::default()
        }
    }

    fn sample() -> SuiteResult {
        use AttemptState::*;
        let spec = |name: &str, attempts: Vec<Attempt>| Spec {
            name: name.into(),
            attempts,
            ..Spec::default()
        };
        let mut dry = Spec::single("dry", Skipped);
        dry.attempts[0].failure_kind = Some(DRY_RUN_KIND.into());
        SuiteResult {
            name: "conformance".into(),
            specs: vec![
                spec("pass", vec![attempt(Passed, None)]),
                spec(
                    "flaky",
                    vec![
                        attempt(Failed, Some("\nfirst boom\nmore")),
                        attempt(Passed, None),
                    ],
                ),
                spec(
                    "fail",
                    vec![attempt(Failed, None), attempt(Failed, Some("second"))],
                ),
                Spec::single("skip", Skipped),
                Spec::single("pend", Pending),
                Spec::single("never", NotRun),
                dry,
            ],
            suite_nodes: vec![SuiteNode {
                name: "[SynchronizedBeforeSuite]".into(),
                attempt: attempt(Passed, None),
            }],
            properties: vec![("image".into(), "registry/conformance:v1.32.1".into())],
            kubernetes_version: Some("v1.32.1".into()),
            incomplete: Some(Incomplete::new("stopped")),
            ..SuiteResult::default()
        }
    }

    fn opts(style: JunitStyle) -> JunitOptions {
        JunitOptions {
            style,
            max_output_bytes: 10,
            report_name: "gate".into(),
        }
    }

    #[test]
    fn jenkins_shape() {
        let xml = write_junit_string(&[sample()], &opts(JunitStyle::Jenkins));
        let line = |tag: &str| {
            xml.lines()
                .find(|l| l.contains(tag))
                .unwrap_or("")
                .to_string()
        };
        assert!(
            line("<flakyFailure").contains("message=\"first boom\""),
            "{xml}"
        );
        assert!(line("<failure").contains("message=\"failed\""), "{xml}");
        assert!(
            line("<rerunFailure").contains("message=\"second\""),
            "{xml}"
        );
        assert!(xml.contains("type=\"not-run\""), "{xml}");
        assert!(xml.contains("message=\"not run: stopped\""), "{xml}");
        assert!(xml.contains("<property name=\"kubernetes_version\" value=\"v1.32.1\""));
        assert!(xml.contains("<property name=\"image\""));
        assert!(xml.contains("bytes truncated"));
        assert!(!xml.contains(&"x".repeat(11)));
        assert!(!xml.contains("message=\"\""));
    }

    #[test]
    fn round_trips_through_our_reader_and_quick_junit() {
        for style in [JunitStyle::Jenkins, JunitStyle::Testgrid] {
            let original = sample();
            let xml = write_junit_string(std::slice::from_ref(&original), &opts(style));
            let back = read_junit(xml.as_bytes(), "out.xml", &ReadOptions::default());
            assert_eq!(back.counts(), original.counts(), "{style:?}\n{xml}");
            assert_eq!(back.suite_nodes.len(), 1);
            assert_eq!(back.dry_run_specs(), 1);
            assert_eq!(back.kubernetes_version.as_deref(), Some("v1.32.1"));
            assert_eq!(
                back.incomplete.map(|i| i.reason),
                Some("stopped".to_string())
            );
            let report = Report::deserialize_from_str(&xml).expect("quick-junit reads it");
            assert_eq!(report.test_suites.len(), 1);
        }
    }

    #[test]
    fn not_run_reason_is_said_once() {
        // Regression: the runner's "not run: timeout …" became "not run: not run: timeout …".
        let mut spec = Spec::single("n", AttemptState::NotRun);
        spec.attempts[0].failure = Some("not run: timeout of 30s reached".into());
        let s = SuiteResult {
            name: "s".into(),
            specs: vec![spec],
            ..SuiteResult::default()
        };
        let xml = write_junit_string(&[s], &JunitOptions::default());
        assert!(
            xml.contains("message=\"not run: timeout of 30s reached\""),
            "{xml}"
        );
        assert!(!xml.contains("not run: not run"), "{xml}");
    }

    #[test]
    fn dry_run_suite_round_trips() {
        let mut s = SuiteResult {
            name: "d".into(),
            dry_run: true,
            ..SuiteResult::default()
        };
        let mut spec = Spec::single("a", AttemptState::Skipped);
        spec.attempts[0].failure_kind = Some(DRY_RUN_KIND.into());
        s.specs.push(spec);
        let xml = write_junit_string(&[s], &JunitOptions::default());
        assert!(xml.contains("<property name=\"dry_run\" value=\"true\""));
        assert!(xml.contains("dry run: would run"));
        let back = read_junit(xml.as_bytes(), "o.xml", &ReadOptions::default());
        assert!(back.dry_run);
        assert_eq!(back.counts().passed, 0);
        assert_eq!(back.dry_run_specs(), 1);
    }

    #[test]
    fn truncation_counts_what_the_reader_cut() {
        assert_eq!(
            truncate_output("abcdef", 3).unwrap(),
            "[… 3 bytes truncated …]\ndef"
        );
        let read = "[… 100 bytes truncated …]\nabcdef";
        assert_eq!(truncate_output(read, 10).unwrap(), read);
        assert_eq!(
            truncate_output(read, 2).unwrap(),
            "[… 104 bytes truncated …]\nef"
        );
        assert_eq!(truncate_output("x", 0), None);
    }

    #[test]
    fn testgrid_duplicates_attempts() {
        let xml = write_junit_string(&[sample()], &opts(JunitStyle::Testgrid));
        assert_eq!(xml.matches("name=\"flaky\"").count(), 2);
        assert_eq!(xml.matches("name=\"fail\"").count(), 2);
        assert!(!xml.contains("flakyFailure"));
    }
}
