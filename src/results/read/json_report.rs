//! Ginkgo v2 JSON report (`--json-report`): the only source that records attempts
//! (`NumAttempts`, `AdditionalFailures`) and code locations.

use super::{is_suite_node, push_suite_node, BoundedText, ReadOptions};
use crate::results::model::{Attempt, AttemptState, SourceFormat, Spec, SuiteNode, SuiteResult};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Report {
    suite_description: String,
    suite_succeeded: bool,
    special_suite_failure_reasons: Option<Vec<String>>,
    run_time: i64,
    suite_config: SuiteConfig,
    spec_reports: Option<Vec<SpecReport>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SuiteConfig {
    focus_strings: Option<Vec<String>>,
    skip_strings: Option<Vec<String>>,
    label_filter: String,
    flake_attempts: i64,
    dry_run: bool,
    parallel_total: i64,
    random_seed: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Location {
    file_name: String,
    line_number: i64,
}

impl Location {
    fn render(&self) -> Option<String> {
        (!self.file_name.is_empty()).then(|| format!("{}:{}", self.file_name, self.line_number))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Failure {
    message: String,
    location: Location,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AdditionalFailure {
    state: String,
    failure: Failure,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SpecReport {
    container_hierarchy_texts: Option<Vec<String>>,
    leaf_node_type: String,
    leaf_node_text: String,
    leaf_node_location: Location,
    state: String,
    run_time: i64,
    num_attempts: u32,
    max_must_pass_repeatedly: u32,
    failure: Option<Failure>,
    captured_ginkgo_writer_output: String,
    captured_std_out_err: String,
    additional_failures: Option<Vec<AdditionalFailure>>,
}

fn nanos(n: i64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_nanos(n as u64))
}

fn state_of(word: &str) -> AttemptState {
    match word {
        "passed" => AttemptState::Passed,
        "skipped" => AttemptState::Skipped,
        "pending" => AttemptState::Pending,
        "" | "invalid" => AttemptState::NotRun,
        _ => AttemptState::Failed,
    }
}

/// Reads a ginkgo JSON report (an array of suite reports, or one report) into one suite.
/// Unparsable JSON gives an incomplete suite naming `source`.
pub(crate) fn read_json_report(text: &str, source: &str, opts: &ReadOptions) -> SuiteResult {
    let reports: Vec<Report> = match serde_json::from_str::<Vec<Report>>(text) {
        Ok(r) => r,
        Err(first) => match serde_json::from_str::<Report>(text) {
            Ok(r) => vec![r],
            Err(_) => {
                let mut s = SuiteResult::default();
                s.sources.push(SourceFormat::GinkgoJsonReport);
                s.mark_damaged(format!(
                    "{source}: malformed JSON report at line {} column {}: {first}",
                    first.line(),
                    first.column()
                ));
                return s;
            }
        },
    };
    let mut suite = SuiteResult::default();
    suite.sources.push(SourceFormat::GinkgoJsonReport);
    let mut total = Duration::ZERO;
    let mut verdicts = Vec::new();
    for r in reports {
        if suite.name.is_empty() {
            suite.name = r.suite_description.clone();
        }
        total += nanos(r.run_time).unwrap_or_default();
        let cfg = &r.suite_config;
        let joined = |l: &Option<Vec<String>>| l.as_deref().unwrap_or_default().join("|");
        let number = |n: i64, shown: bool| if shown { n.to_string() } else { String::new() };
        for (k, v) in [
            ("focus", joined(&cfg.focus_strings)),
            ("skip", joined(&cfg.skip_strings)),
            ("label_filter", cfg.label_filter.clone()),
            (
                "flake_attempts",
                number(cfg.flake_attempts, cfg.flake_attempts > 0),
            ),
            (
                "parallel",
                number(cfg.parallel_total, cfg.parallel_total > 0),
            ),
            ("random_seed", number(cfg.random_seed, cfg.random_seed != 0)),
        ] {
            if !v.is_empty() && !suite.properties.iter().any(|(n, _)| n == k) {
                suite.properties.push((k.to_string(), v));
            }
        }
        suite.dry_run |= cfg.dry_run;
        for sr in r.spec_reports.unwrap_or_default() {
            add_spec(&mut suite, sr, opts);
        }
        verdicts.push((
            r.suite_succeeded,
            r.special_suite_failure_reasons.unwrap_or_default(),
        ));
    }
    if total > Duration::ZERO {
        suite.duration = Some(total);
    }
    if suite.dry_run {
        super::junit::mark_dry_run(&mut suite);
    }
    for (succeeded, reasons) in verdicts {
        super::apply_suite_verdict(&mut suite, Some(succeeded), &reasons, source);
    }
    suite
}

fn add_spec(suite: &mut SuiteResult, sr: SpecReport, opts: &ReadOptions) {
    let state = state_of(&sr.state);
    let mut output = BoundedText::tail(opts.max_output_bytes);
    output.push(&sr.captured_std_out_err);
    output.push(&sr.captured_ginkgo_writer_output);
    let output = output.finish();
    let (failure, location) = match &sr.failure {
        Some(f) if state == AttemptState::Failed => {
            let mut t = BoundedText::head(opts.max_failure_bytes);
            t.push(&f.message);
            (t.finish(), f.location.render())
        }
        _ => (None, None),
    };
    let mut last = Attempt {
        state,
        failure_kind: (state == AttemptState::Failed).then(|| sr.state.clone()),
        duration: nanos(sr.run_time),
        failure,
        location,
        output,
        ..Attempt::default()
    };
    let node_type = sr.leaf_node_type.as_str();
    if node_type != "It" && is_suite_node(&format!("[{node_type}]")) {
        let name = if sr.leaf_node_text.is_empty() {
            format!("[{node_type}]")
        } else {
            format!("[{node_type}] {}", sr.leaf_node_text)
        };
        push_suite_node(
            suite,
            SuiteNode {
                name,
                attempt: last,
            },
        );
        return;
    }
    let mut texts = sr.container_hierarchy_texts.unwrap_or_default();
    texts.push(sr.leaf_node_text);
    texts.retain(|t| !t.is_empty());
    let name = texts.join(" ");
    // Earlier attempts are retries unless the spec had to pass repeatedly.
    let retries = match sr.max_must_pass_repeatedly {
        0 | 1 => sr.num_attempts.saturating_sub(1),
        _ => 0,
    };
    let earlier = sr.additional_failures.as_deref().unwrap_or_default();
    let mut attempts: Vec<Attempt> = (0..retries)
        .map(|i| {
            let known = earlier.get(i as usize);
            let mut a = Attempt::new(AttemptState::Failed);
            a.failure_kind = Some(
                known
                    .map(|f| f.state.clone())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "failed".into()),
            );
            a.failure = Some(
                known
                    .map(|f| f.failure.message.clone())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| format!("attempt {} failed", i + 1)),
            );
            a.location = known.and_then(|f| f.failure.location.render());
            a.origin.in_process = i;
            a
        })
        .collect();
    last.origin.in_process = attempts.len() as u32;
    attempts.push(last);
    suite.specs.push(Spec {
        name,
        junit_prefix: Some(Cow::Owned(format!("[{node_type}] "))),
        classname: Some(suite.name.as_str())
            .filter(|n| !n.is_empty())
            .map(Arc::from),
        location: sr.leaf_node_location.render(),
        attempts,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::model::SpecOutcome;

    const REPORT: &str = r#"[{"SuitePath":"/e2e","SuiteDescription":"Kubernetes e2e suite","SuiteSucceeded":true,
      "PreRunStats":{"TotalSpecs":4,"SpecsThatWillRun":3},"RunTime":5000000000,
      "SuiteConfig":{"FocusStrings":["\\[Conformance\\]"],"SkipStrings":null,"FlakeAttempts":3,"DryRun":false,"ParallelTotal":2},
      "SpecReports":[
        {"ContainerHierarchyTexts":null,"LeafNodeType":"SynchronizedBeforeSuite","LeafNodeText":"","State":"passed","RunTime":100,"NumAttempts":1},
        {"ContainerHierarchyTexts":["[sig-a] Foo"],"LeafNodeType":"It","LeafNodeText":"works","LeafNodeLocation":{"FileName":"/x/a.go","LineNumber":7},
         "State":"passed","RunTime":2000000000,"NumAttempts":2,"MaxFlakeAttempts":3,
         "AdditionalFailures":[{"State":"failed","Failure":{"Message":"Failure recorded during attempt 1:\nboom","Location":{"FileName":"/x/a.go","LineNumber":9}}}]},
        {"ContainerHierarchyTexts":["[sig-a] Foo"],"LeafNodeType":"It","LeafNodeText":"breaks","State":"timedout","RunTime":3,"NumAttempts":3,
         "Failure":{"Message":"took too long","Location":{"FileName":"/x/b.go","LineNumber":1}},"CapturedGinkgoWriterOutput":"log line"},
        {"ContainerHierarchyTexts":["[sig-a] Foo"],"LeafNodeType":"It","LeafNodeText":"skipped","State":"skipped"},
        {"LeafNodeType":"ReportAfterSuite","LeafNodeText":"Kubernetes e2e suite report","State":"passed"}
      ]}]"#;

    #[test]
    fn reads_attempts_and_locations() {
        let s = read_json_report(REPORT, "report.json", &ReadOptions::default());
        assert!(s.incomplete.is_none());
        assert_eq!(s.name, "Kubernetes e2e suite");
        assert_eq!(s.suite_nodes.len(), 2);
        assert_eq!(s.specs.len(), 3);
        let flaky = &s.specs[0];
        assert_eq!(flaky.name, "[sig-a] Foo works");
        assert_eq!(flaky.outcome(), SpecOutcome::Flaky);
        assert_eq!(flaky.location.as_deref(), Some("/x/a.go:7"));
        assert_eq!(flaky.attempts[0].location.as_deref(), Some("/x/a.go:9"));
        let failed = &s.specs[1];
        assert_eq!(failed.outcome(), SpecOutcome::Failed);
        assert_eq!(failed.attempts.len(), 3);
        assert_eq!(failed.attempts[2].failure_kind.as_deref(), Some("timedout"));
        assert_eq!(failed.attempts[2].output.as_deref(), Some("log line"));
        assert_eq!(s.specs[2].outcome(), SpecOutcome::Skipped);
        assert!(s
            .properties
            .contains(&("flake_attempts".into(), "3".into())));
        assert_eq!(s.duration, Some(Duration::from_secs(5)));
    }

    #[test]
    fn malformed_is_incomplete() {
        let s = read_json_report(
            "[{\"SuiteDescription\": ",
            "r.json",
            &ReadOptions::default(),
        );
        assert!(s
            .incomplete
            .unwrap()
            .reason
            .starts_with("r.json: malformed JSON report"));
    }

    #[test]
    fn dry_run_config() {
        let s = read_json_report(
            r#"{"SuiteDescription":"s","SuiteConfig":{"DryRun":true},"SpecReports":[{"LeafNodeType":"It","LeafNodeText":"a","State":"passed"}]}"#,
            "r.json",
            &ReadOptions::default(),
        );
        assert!(s.dry_run);
        assert_eq!(s.counts().passed, 0);
        assert_eq!(s.dry_run_specs(), 1);
    }
}
