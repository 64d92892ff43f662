//! Readers for every result shape, with format detection and shared helpers.

pub(crate) mod json_report;
pub mod junit;
pub(crate) mod log;
pub(crate) mod naming;
pub(crate) mod text;

pub(crate) use naming::{apply_suite_verdict, is_suite_node, names_match, push_suite_node};
pub(crate) use text::BoundedText;

/// Reader options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Captured output (`system-out`, `system-err`, timelines) kept per attempt, in bytes
    /// (the tail is kept). 0 keeps none, which makes summarising a huge file cheap.
    pub max_output_bytes: usize,
    /// Failure text kept per attempt, in bytes (the head is kept).
    pub max_failure_bytes: usize,
    /// When a log says more specs were selected than the JUnit holds (an interrupted v1
    /// run), add unnamed `NotRun` placeholders for them. Off by default: the runner knows
    /// the selected names and marks them itself; `e2e-gate report` turns it on.
    pub missing_as_not_run: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_output_bytes: 256 * 1024,
            max_failure_bytes: 64 * 1024,
            missing_as_not_run: false,
        }
    }
}

/// The shape of a result file, guessed from its name and first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Any JUnit XML (ginkgo v1/v2, runner steps, our own output).
    Junit,
    /// Ginkgo JSON report.
    JsonReport,
    /// Console output.
    Log,
}

/// Guesses the shape from the first bytes of a file (BOM, blanks and comments skipped).
pub(crate) fn detect(head: &[u8]) -> Shape {
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
}
