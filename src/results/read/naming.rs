//! Naming rules shared by readers: the v2 `[It] ` prefix, suite nodes and their
//! deduplication, log names with label lists, and ginkgo's own suite verdict.

use crate::results::model::SuiteResult;
use std::borrow::Cow;

/// Ginkgo v2 leaf-type prefix of spec testcases.
pub(crate) const IT_PREFIX: &str = "[It] ";

/// Splits a v2 JUnit testcase name into (`Spec.name`, `Spec.junit_prefix`), in place.
pub(crate) fn split_it_prefix(mut junit_name: String) -> (String, Option<Cow<'static, str>>) {
    if junit_name.starts_with(IT_PREFIX) {
        junit_name.drain(..IT_PREFIX.len());
        (junit_name, Some(Cow::Borrowed(IT_PREFIX)))
    } else {
        (junit_name, None)
    }
}

/// Whether a testcase name is a suite setup/teardown node rather than a spec.
pub(crate) fn is_suite_node(name: &str) -> bool {
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
    // Called for every testcase: v2 specs (`[It] …`) and most v1 names fail these cheap
    // tests, so the prefix lists below are walked only for likely suite nodes.
    if name.starts_with("[It] ") || !(name.starts_with('[') || name.ends_with("Suite")) {
        return false;
    }
    V2.iter()
        .any(|p| name == *p || name.strip_prefix(p).is_some_and(|r| r.starts_with(' ')))
        || V1.contains(&name)
}

/// Adds a suite node, deduplicating copies by name: the first copy is kept unless a later
/// one failed (a failure in any copy is kept).
pub(crate) fn push_suite_node(suite: &mut SuiteResult, node: crate::results::model::SuiteNode) {
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
pub(crate) fn apply_suite_verdict(
    suite: &mut SuiteResult,
    succeeded: Option<bool>,
    reasons: &[String],
    source: &str,
) {
    use crate::results::model::{Attempt, AttemptState, SpecOutcome, SuiteNode};
    let reasons: Vec<&str> = reasons
        .iter()
        .map(String::as_str)
        .filter(|r| !r.trim().is_empty())
        .collect();
    let stopped = reasons.iter().any(|r| {
        let r = r.to_lowercase();
        r.contains("interrupt") || r.contains("timeout") || r.contains("abort")
    });
    if stopped {
        suite.mark_incomplete(format!("{source}: {}", reasons.join(", ")));
        return;
    }
    let says_failed = (succeeded == Some(false) || !reasons.is_empty()) && !suite.dry_run;
    // Only a failed verdict needs explaining: skip the walk over every spec otherwise.
    let explained = || {
        suite.suite_node_failed()
            || suite
                .specs
                .iter()
                .any(|s| s.outcome() == SpecOutcome::Failed)
    };
    if says_failed && !explained() {
        let text = if reasons.is_empty() {
            "ginkgo reported the suite as failed (SuiteSucceeded=false)".to_string()
        } else {
            reasons.join(", ")
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
pub(crate) fn names_match(spec_name: &str, log_name: &str) -> bool {
    let log_name = log_name.trim();
    if spec_name == log_name {
        return true;
    }
    match log_name.strip_prefix(spec_name) {
        Some(rest) => rest.starts_with(" [") && rest.ends_with(']'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("a b".to_string(), Some(Cow::Borrowed("[It] ")))
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
}
