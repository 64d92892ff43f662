//! Readers for every result shape, with format detection and shared helpers.

pub mod json_report;
pub mod junit;
pub mod log;

use crate::results::model::SuiteResult;

/// Reader options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Captured output (`system-out`, `system-err`, timelines) kept per attempt, in bytes
    /// (the tail is kept). 0 keeps none, which makes summarising a huge file cheap.
    pub max_output_bytes: usize,
    /// Failure text kept per attempt, in bytes (the head is kept).
    pub max_failure_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_output_bytes: 256 * 1024,
            max_failure_bytes: 64 * 1024,
        }
    }
}

impl ReadOptions {
    /// Options for summaries only: no captured output kept.
    pub fn summary_only() -> Self {
        ReadOptions {
            max_output_bytes: 0,
            max_failure_bytes: 16 * 1024,
        }
    }
}

/// The shape of a result file, guessed from its name and first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Any JUnit XML (ginkgo v1/v2, runner steps, our own output).
    Junit,
    /// Ginkgo JSON report.
    JsonReport,
    /// Console output.
    Log,
}

/// Guesses the shape from the first bytes of a file (BOM, blanks and comments skipped).
pub fn detect(head: &[u8]) -> Shape {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('<') {
        Shape::Junit
    } else if t
        .strip_prefix('[')
        .is_some_and(|r| r.trim_start().starts_with(['{', ']']))
        || (t.starts_with('{') && looks_like_json_report(t))
    {
        Shape::JsonReport
    } else {
        Shape::Log
    }
}

fn looks_like_json_report(t: &str) -> bool {
    t.contains("\"SuiteDescription\"")
        || t.contains("\"SpecReports\"")
        || t.contains("\"SuitePath\"")
}

/// Ginkgo v2 leaf-type prefix of spec testcases.
const IT_PREFIX: &str = "[It] ";

/// Splits a v2 JUnit testcase name into (`Spec.name`, `Spec.junit_name`).
pub fn split_it_prefix(junit_name: String) -> (String, Option<String>) {
    match junit_name.strip_prefix(IT_PREFIX) {
        Some(rest) => (rest.to_string(), Some(junit_name)),
        None => (junit_name, None),
    }
}

/// Whether a testcase name is a suite setup/teardown node rather than a spec.
pub fn is_suite_node(name: &str) -> bool {
    const V2: &[&str] = &[
        "[BeforeSuite]",
        "[SynchronizedBeforeSuite]",
        "[AfterSuite]",
        "[SynchronizedAfterSuite]",
        "[ReportBeforeSuite]",
        "[ReportAfterSuite]",
        "[DeferCleanup (Suite)]",
    ];
    const V1: &[&str] = &[
        "BeforeSuite",
        "AfterSuite",
        "SynchronizedBeforeSuite",
        "SynchronizedAfterSuite",
    ];
    V2.iter()
        .any(|p| name == *p || name.strip_prefix(p).is_some_and(|r| r.starts_with(' ')))
        || V1.contains(&name)
}

/// Adds a suite node, deduplicating copies by name: the first copy is kept unless a later
/// one failed (a failure in any copy is kept).
pub fn push_suite_node(suite: &mut SuiteResult, node: crate::results::model::SuiteNode) {
    use crate::results::model::AttemptState;
    match suite.suite_nodes.iter_mut().find(|n| n.name == node.name) {
        Some(existing) => {
            if node.attempt.state == AttemptState::Failed
                && existing.attempt.state != AttemptState::Failed
            {
                *existing = node;
            }
        }
        None => suite.suite_nodes.push(node),
    }
}

/// Applies ginkgo's own suite verdict (`SuiteSucceeded`, `SpecialSuiteFailureReason(s)`):
/// an interrupted/timed-out/aborted suite is incomplete; any other failure that no spec or
/// suite node explains becomes a failed suite node, so the suite cannot pass.
pub fn apply_suite_verdict(
    suite: &mut SuiteResult,
    succeeded: Option<bool>,
    reasons: &[String],
    source: &str,
) {
    use crate::results::model::{Attempt, AttemptState, SpecOutcome, SuiteNode};
    let reasons: Vec<&String> = reasons.iter().filter(|r| !r.trim().is_empty()).collect();
    let stopped = reasons.iter().any(|r| {
        let r = r.to_lowercase();
        r.contains("interrupt") || r.contains("timeout") || r.contains("abort")
    });
    if stopped {
        let joined: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        suite.mark_incomplete(format!("{source}: {}", joined.join(", ")));
        return;
    }
    let explained = suite.suite_node_failed()
        || suite
            .specs
            .iter()
            .any(|s| s.outcome() == SpecOutcome::Failed);
    if (succeeded == Some(false) || !reasons.is_empty()) && !explained && !suite.dry_run {
        let text = if reasons.is_empty() {
            "ginkgo reported the suite as failed (SuiteSucceeded=false)".to_string()
        } else {
            let joined: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
            joined.join(", ")
        };
        suite.suite_nodes.push(SuiteNode {
            name: "[ginkgo] suite failed".to_string(),
            attempt: Attempt {
                state: AttemptState::Failed,
                failure_kind: Some("failed".to_string()),
                failure: Some(text),
                ..Attempt::default()
            },
        });
    }
}

/// Whether a log spec name (which may carry a trailing ` [label, …]` list) names the spec.
pub fn names_match(spec_name: &str, log_name: &str) -> bool {
    let log_name = log_name.trim();
    if spec_name == log_name {
        return true;
    }
    match log_name.strip_prefix(spec_name) {
        Some(rest) => rest.starts_with(" [") && rest.ends_with(']'),
        None => false,
    }
}

/// A bounded text accumulator: keeps the tail (outputs) or the head (failure text).
#[derive(Debug, Default)]
pub struct BoundedText {
    buf: String,
    cap: usize,
    keep_head: bool,
    dropped: usize,
}

impl BoundedText {
    /// Keeps at most `cap` bytes of the end of the text.
    pub fn tail(cap: usize) -> Self {
        BoundedText {
            cap,
            ..Default::default()
        }
    }

    /// Keeps at most `cap` bytes of the start of the text.
    pub fn head(cap: usize) -> Self {
        BoundedText {
            cap,
            keep_head: true,
            ..Default::default()
        }
    }

    /// Whether anything will be kept at all.
    pub fn wants(&self) -> bool {
        self.cap > 0 && !(self.keep_head && self.buf.len() >= self.cap)
    }

    /// Appends text.
    pub fn push(&mut self, s: &str) {
        if self.cap == 0 {
            self.dropped += s.len();
            return;
        }
        if self.keep_head {
            let room = self.cap.saturating_sub(self.buf.len());
            if s.len() <= room {
                self.buf.push_str(s);
            } else {
                let cut = floor_char_boundary(s, room);
                self.buf.push_str(&s[..cut]);
                self.dropped += s.len() - cut;
            }
            return;
        }
        self.buf.push_str(s);
        if self.buf.len() > self.cap.saturating_mul(2).max(8192) {
            self.trim_front();
        }
    }

    /// Appends one character.
    pub fn push_char(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.push(c.encode_utf8(&mut b));
    }

    fn trim_front(&mut self) {
        if self.buf.len() > self.cap {
            let cut = ceil_char_boundary(&self.buf, self.buf.len() - self.cap);
            self.dropped += cut;
            self.buf.drain(..cut);
        }
    }

    /// The kept text, `None` when empty; notes how much was dropped.
    pub fn finish(mut self) -> Option<String> {
        if !self.keep_head {
            self.trim_front();
        }
        if self.buf.trim().is_empty() {
            return None;
        }
        if self.dropped > 0 {
            if self.keep_head {
                self.buf
                    .push_str(&format!("\n[… {} bytes truncated …]", self.dropped));
            } else {
                self.buf
                    .insert_str(0, &format!("[… {} bytes truncated …]\n", self.dropped));
            }
        }
        Some(self.buf)
    }
}

/// Largest index `<= i` on a char boundary.
pub fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    let mut i = i;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Smallest index `>= i` on a char boundary.
pub fn ceil_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_shapes() {
        assert_eq!(detect(b"<?xml version=\"1.0\"?><testsuite/>"), Shape::Junit);
        assert_eq!(detect(b"<!-- c -->\n<?xml?>"), Shape::Junit);
        assert_eq!(detect(b"[{\"SuitePath\":\"/x\"}]"), Shape::JsonReport);
        assert_eq!(detect(b"Running Suite: x"), Shape::Log);
        assert_eq!(detect(b"[sig-node] a log line"), Shape::Log);
        assert_eq!(detect(b"[\n  {\n"), Shape::JsonReport);
        assert_eq!(detect(b"{\"msg\":\"Test Suite starting\"}"), Shape::Log);
    }

    #[test]
    fn suite_nodes_and_names() {
        assert!(is_suite_node("[SynchronizedBeforeSuite]"));
        assert!(is_suite_node(
            "[ReportAfterSuite] Kubernetes e2e suite report"
        ));
        assert!(is_suite_node("BeforeSuite"));
        assert!(!is_suite_node("[It] [sig-node] BeforeSuite works"));
        assert!(!is_suite_node("[ReportAfterSuiteX]"));
        assert_eq!(
            split_it_prefix("[It] a b".to_string()),
            ("a b".to_string(), Some("[It] a b".to_string()))
        );
        assert!(names_match(
            "a [Conformance]",
            "a [Conformance] [sig-x, Conformance]"
        ));
        assert!(!names_match("a", "ab"));
    }

    #[test]
    fn suite_verdicts() {
        use crate::results::model::{AttemptState, Spec};
        let mut s = SuiteResult::default();
        s.specs.push(Spec::single("a", AttemptState::Passed));
        apply_suite_verdict(&mut s, Some(true), &[], "x");
        assert!(s.suite_nodes.is_empty());
        apply_suite_verdict(&mut s, Some(false), &["Detected pending specs".into()], "x");
        assert!(s.suite_node_failed());
        let mut s = SuiteResult::default();
        apply_suite_verdict(
            &mut s,
            Some(false),
            &["Interrupted by Timeout".into()],
            "r.json",
        );
        assert_eq!(
            s.incomplete.unwrap().reason,
            "r.json: Interrupted by Timeout"
        );
    }

    #[test]
    fn bounded_text() {
        let mut t = BoundedText::tail(4);
        t.push("héllo world");
        assert_eq!(t.finish().unwrap(), "[… 8 bytes truncated …]\norld");
        let mut h = BoundedText::head(3);
        h.push("héllo");
        assert_eq!(h.finish().unwrap(), "h\u{e9}\n[… 3 bytes truncated …]");
        let mut z = BoundedText::tail(0);
        z.push("x");
        assert_eq!(z.finish(), None);
    }
}
