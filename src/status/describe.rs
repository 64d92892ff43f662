//! Pure description texts for commit statuses: informative and never over 140 characters.

use crate::results::{SpecOutcome, SuiteResult, SuiteVerdict};
use std::time::Duration;

/// GitHub rejects longer descriptions with 422.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 140;

/// Truncates to at most `max` characters on a char boundary, ending in '…' when cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Truncates a description to GitHub's 140-character limit.
pub(crate) fn truncate_description(s: &str) -> String {
    truncate_chars(s.trim(), MAX_DESCRIPTION_CHARS)
}

/// Compact duration: `45s`, `43m`, `2h05m`.
pub(crate) fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// Describes a suite result: "409 passed, 2 flaky, 0 failed · 43m" /
/// "3 failed (first: <spec>) · 12m"; at most 140 characters.
pub(crate) fn describe_suite(s: &SuiteResult, elapsed: Duration) -> String {
    let took = short_duration(elapsed);
    let c = s.counts();
    if s.dry_run {
        let n = s.specs.len();
        return truncate_description(&format!("dry run: {n} specs would run · {took}"));
    }
    match s.verdict() {
        SuiteVerdict::Incomplete => {
            let why = match &s.incomplete {
                Some(i) => i.reason.clone(),
                None => format!("{} specs did not run", c.not_run),
            };
            fit("incomplete: ", &why, &format!(" · {took}"))
        }
        SuiteVerdict::Failed if c.failed > 0 => {
            let first = s
                .specs_with(SpecOutcome::Failed)
                .next()
                .map(|sp| sp.name.clone())
                .unwrap_or_default();
            fit(
                &format!("{} failed (first: ", c.failed),
                &first,
                &format!(") · {took}"),
            )
        }
        SuiteVerdict::Failed => {
            let node = s
                .suite_nodes
                .iter()
                .find(|n| n.attempt.state == crate::results::AttemptState::Failed)
                .map(|n| n.name.clone())
                .unwrap_or_else(|| "a suite node".into());
            fit("failed in ", &node, &format!(" · {took}"))
        }
        SuiteVerdict::Passed => truncate_description(&format!(
            "{} passed, {} flaky, {} failed · {took}",
            c.passed, c.flaky, c.failed
        )),
    }
}

/// Describes a whole run (the aggregate context) from its suites.
pub(crate) fn describe_run(suites: &[SuiteResult], elapsed: Duration) -> String {
    let took = short_duration(elapsed);
    let mut total = crate::results::Counts::default();
    for s in suites {
        total.merge(&s.counts());
    }
    let bad: Vec<&str> = suites
        .iter()
        .filter(|s| s.verdict() != SuiteVerdict::Passed)
        .map(|s| s.name.as_str())
        .collect();
    let head = format!(
        "{} suite{}: {} passed, {} flaky, {} failed",
        suites.len(),
        if suites.len() == 1 { "" } else { "s" },
        total.passed,
        total.flaky,
        total.failed
    );
    if bad.is_empty() {
        truncate_description(&format!("{head} · {took}"))
    } else {
        fit(
            &format!("{head} (not passed: "),
            &bad.join(", "),
            &format!(") · {took}"),
        )
    }
}

/// `prefix + middle + suffix`, shortening `middle` so the whole is at most 140 characters.
fn fit(prefix: &str, middle: &str, suffix: &str) -> String {
    let fixed = prefix.chars().count() + suffix.chars().count();
    let room = MAX_DESCRIPTION_CHARS.saturating_sub(fixed);
    let middle = truncate_chars(crate::first_line(middle).trim(), room);
    truncate_description(&format!("{prefix}{middle}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{AttemptState, Incomplete, Spec, SuiteResult};

    fn suite(passed: usize, flaky: usize, failed: &[&str]) -> SuiteResult {
        let mut specs = Vec::new();
        for i in 0..passed {
            specs.push(Spec::single(format!("p{i}"), AttemptState::Passed));
        }
        for i in 0..flaky {
            let mut s = Spec::single(format!("f{i}"), AttemptState::Failed);
            s.attempts.push(s.attempts[0].clone());
            s.attempts[1].state = AttemptState::Passed;
            specs.push(s);
        }
        for name in failed {
            specs.push(Spec::single(*name, AttemptState::Failed));
        }
        SuiteResult {
            name: "conformance".into(),
            specs,
            ..SuiteResult::default()
        }
    }

    #[test]
    fn one_suite_is_singular() {
        // Regression: the aggregate status said "1 suites".
        let d = describe_run(&[SuiteResult::default()], Duration::from_secs(60));
        assert!(d.starts_with("1 suite: "), "{d}");
    }

    #[test]
    fn passing_suite() {
        let s = suite(409, 2, &[]);
        assert_eq!(
            describe_suite(&s, Duration::from_secs(43 * 60 + 5)),
            "409 passed, 2 flaky, 0 failed · 43m"
        );
    }

    #[test]
    fn failing_suite_names_first_failure() {
        let s = suite(5, 0, &["[sig-network] DNS works", "other"]);
        assert_eq!(
            describe_suite(&s, Duration::from_secs(12 * 60)),
            "2 failed (first: [sig-network] DNS works) · 12m"
        );
    }

    #[test]
    fn long_spec_name_is_cut_to_140() {
        let long = "[sig-storage] ".to_string() + &"é very long spec name ".repeat(20);
        let s = suite(1, 0, &[&long]);
        let d = describe_suite(&s, Duration::from_secs(3 * 3600 + 60));
        assert_eq!(d.chars().count(), 140, "{d}");
        assert!(d.ends_with(") · 3h01m"), "{d}");
        assert!(d.contains('…'));
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        let s = "ü".repeat(200);
        let t = truncate_description(&s);
        assert_eq!(t.chars().count(), 140);
        assert!(t.ends_with('…'));
        assert_eq!(truncate_description("short"), "short");
        let exact = "x".repeat(140);
        assert_eq!(truncate_description(&exact), exact);
    }

    #[test]
    fn incomplete_and_dry_run() {
        let mut s = suite(1, 0, &[]);
        s.incomplete = Some(Incomplete::new("junit_01.xml: unexpected end of file"));
        assert_eq!(
            describe_suite(&s, Duration::from_secs(30)),
            "incomplete: junit_01.xml: unexpected end of file · 30s"
        );
        s.incomplete = None;
        s.dry_run = true;
        assert!(describe_suite(&s, Duration::ZERO).starts_with("dry run: 1 specs"));
    }

    #[test]
    fn run_description() {
        let a = suite(3, 1, &[]);
        let mut b = suite(1, 0, &["x"]);
        b.name = "custom".into();
        assert_eq!(
            describe_run(&[a, b], Duration::from_secs(61)),
            "2 suites: 4 passed, 1 flaky, 1 failed (not passed: custom) · 1m"
        );
    }
}
