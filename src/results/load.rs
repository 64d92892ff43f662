//! The only file with filesystem I/O: reads a results directory or a set of files into one
//! [`SuiteResult`]. Unreadable or missing inputs make the suite incomplete, naming the path.

use crate::results::merge::{
    add_missing_as_not_run, apply_log, log_contradiction, WARNING_PROPERTY,
};
use crate::results::model::{AttemptState, SuiteNode, SuiteResult};
use crate::results::read::json_report::read_json_report;
use crate::results::read::junit::read_junit;
use crate::results::read::log::{log_to_suite, read_log, LogSummary};
use crate::results::read::{detect, push_suite_node, ReadOptions, Shape};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The result files of one attempt directory the runner wrote: the container's reports in
/// `results/`, and the streamed `e2e.log`.
pub(crate) fn attempt_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("results"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    (n.starts_with("junit") && n.ends_with(".xml")) || n.ends_with(".json")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let log = dir.join("e2e.log");
    if log.is_file() {
        files.push(log);
    }
    files
}

/// Whether `dir` is a suite directory `e2e-gate run` or `gate` wrote (`attempt-0/`).
pub(crate) fn is_suite_dir(dir: &Path) -> bool {
    dir.join("attempt-0").is_dir()
}

/// Reads a suite directory the runner wrote: `attempt-0` is the first container, `attempt-1…`
/// the reruns, merged the way the runner merges them (a rerun's specs that ran are appended
/// to the same-named specs).
pub(crate) fn load_suite_dir(dir: &Path, name: &str, opts: &ReadOptions) -> SuiteResult {
    let mut base = load_files(&attempt_files(&dir.join("attempt-0")), name, opts);
    for n in 1.. {
        let attempt = dir.join(format!("attempt-{n}"));
        if !attempt.is_dir() {
            break;
        }
        let mut rerun = load_files(&attempt_files(&attempt), name, opts);
        // A rerun's JUnit lists every spec it did not select as skipped.
        rerun.specs.retain(|s| {
            s.attempts
                .iter()
                .any(|a| matches!(a.state, AttemptState::Passed | AttemptState::Failed))
        });
        crate::results::merge::merge_rerun(&mut base, rerun, n);
    }
    base.name = name.to_string();
    base
}

/// Reads a results directory (junit_*.xml, e2e.log, ginkgo JSON report) into one SuiteResult named `name`.
/// Missing JUnit with a log → log fallback + incomplete; nothing at all → incomplete naming the dir.
pub fn load_dir(dir: &Path, name: &str, opts: &ReadOptions) -> SuiteResult {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let mut s = SuiteResult {
                name: name.to_string(),
                ..SuiteResult::default()
            };
            s.mark_incomplete(format!("{}: cannot read directory: {e}", dir.display()));
            return s;
        }
    };
    let wanted = |p: &Path| {
        let file_name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        p.is_file()
            && (file_name.ends_with(".xml")
                || file_name.ends_with(".json")
                || (file_name.ends_with(".log") && file_name.contains("e2e")))
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| wanted(p))
        .collect();
    files.sort();
    combine(name, read_files(&files, opts, true), Some(dir), opts)
}

/// The files given directly, as one suite.
pub fn load_files(files: &[PathBuf], name: &str, opts: &ReadOptions) -> SuiteResult {
    combine(name, read_files(files, opts, false), None, opts)
}

/// Reads each of `files` by its shape (`from_dir`: found in a directory, not named by the user).
fn read_files(files: &[PathBuf], opts: &ReadOptions, from_dir: bool) -> Inputs {
    let mut inputs = Inputs::default();
    for f in files {
        read_path(f, opts, &mut inputs, from_dir);
    }
    inputs
}

/// One attempt directory the runner wrote, as one suite, and what its `e2e.log` says on its own
/// (the runner needs its `Running Suite` and `Will run` lines): every file is read once.
pub(crate) fn load_attempt(dir: &Path, name: &str) -> (SuiteResult, Option<LogSummary>) {
    let opts = ReadOptions::default();
    let inputs = read_files(&attempt_files(dir), &opts, false);
    let label = dir.join("e2e.log").display().to_string();
    let log = inputs
        .logs
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, s)| s.clone());
    (combine(name, inputs, None, &opts), log)
}

#[derive(Default)]
struct Inputs {
    junits: Vec<SuiteResult>,
    reports: Vec<SuiteResult>,
    logs: Vec<(String, LogSummary)>,
    errors: Vec<String>,
}

fn read_path(path: &Path, opts: &ReadOptions, inputs: &mut Inputs, from_dir: bool) {
    let label = path.display().to_string();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            inputs.errors.push(format!("{label}: cannot open: {e}"));
            return;
        }
    };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let shape = match reader.fill_buf() {
        // Said as what it is: an empty or binary file is no "run that did not finish".
        Ok([]) => {
            inputs
                .errors
                .push(format!("{label}: empty file (0 bytes): no results in it"));
            return;
        }
        Ok(head) if head[..head.len().min(4096)].contains(&0) => {
            inputs.errors.push(format!(
                "{label}: binary file (NUL bytes): not JUnit XML, a ginkgo JSON report or an e2e.log"
            ));
            return;
        }
        Ok(head) => detect(&head[..head.len().min(4096)]),
        Err(e) => {
            inputs.errors.push(format!("{label}: cannot read: {e}"));
            return;
        }
    };
    let xml_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    if xml_name && shape != Shape::Junit {
        inputs.errors.push(format!(
            "{label}: not XML (a .xml file that does not start with '<'): not a JUnit report"
        ));
        return;
    }
    match shape {
        // Streamed whatever the size: memory stays bounded.
        Shape::Junit => inputs.junits.push(read_junit(reader, &label, opts)),
        Shape::JsonReport => {
            let mut text = String::new();
            match reader.read_to_string(&mut text) {
                Ok(_) => inputs.reports.push(read_json_report(&text, &label, opts)),
                Err(e) => inputs.errors.push(format!("{label}: cannot read: {e}")),
            }
        }
        Shape::Log if from_dir && path.extension().is_some_and(|e| e == "json") => {
            // Some other JSON (e.g. our own summary.json): not a result source.
        }
        Shape::Log => match read_log(reader) {
            Ok(l) => inputs.logs.push((label, l)),
            Err(e) => inputs.errors.push(format!("{label}: cannot read: {e}")),
        },
    }
}

/// Concatenates several suites read from files of one run (parallel v1 junit_NN.xml).
fn concat(parts: Vec<SuiteResult>) -> Option<SuiteResult> {
    let mut it = parts.into_iter();
    let mut base = it.next()?;
    for p in it {
        base.specs.extend(p.specs);
        for n in p.suite_nodes {
            push_suite_node(&mut base, n);
        }
        if let Some(i) = p.incomplete {
            if i.damaged {
                base.mark_damaged(i.reason);
            } else {
                base.mark_incomplete(i.reason);
            }
        }
        base.dry_run |= p.dry_run;
        base.duration = base.duration.max(p.duration);
        for kv in p.properties {
            if !base.properties.iter().any(|(k, _)| *k == kv.0) {
                base.properties.push(kv);
            }
        }
        base.kubernetes_version = base.kubernetes_version.or(p.kubernetes_version);
        base.add_sources(p.sources);
    }
    Some(base)
}

fn combine(name: &str, inputs: Inputs, dir: Option<&Path>, opts: &ReadOptions) -> SuiteResult {
    let Inputs {
        junits,
        reports,
        logs,
        errors,
    } = inputs;
    let (runner, ginkgo): (Vec<SuiteResult>, Vec<SuiteResult>) =
        junits.into_iter().partition(|s| s.is_runner_steps());
    let report = concat(reports);
    let junit = concat(ginkgo);
    // The JSON report records attempts; prefer it unless it is damaged and the JUnit is not.
    let mut base = match (report, junit) {
        (Some(r), Some(j)) if r.is_damaged() && !j.is_damaged() => Some(j),
        (Some(r), _) => Some(r),
        (None, j) => j,
    };
    let runner = concat(runner);
    match (&mut base, runner) {
        (Some(b), Some(r)) => {
            for spec in r.specs {
                for a in spec.attempts {
                    b.suite_nodes.push(SuiteNode {
                        name: format!("[runner] {}", spec.name),
                        attempt: a,
                    });
                }
            }
        }
        (None, r) => base = r,
        _ => {}
    }
    let log = logs
        .iter()
        .find(|(_, l)| l.counts.is_some())
        .or(logs.first());
    let mut suite = match (base, log) {
        (Some(mut b), Some((label, l))) => {
            // Only a damaged file gives way to the log's counts. A well-formed report of a
            // stopped run (ginkgo v2: `SpecialSuiteFailureReason`) names every spec, which the
            // log's counts cannot.
            let junit_damaged = b.is_damaged() && l.counts.is_some() && !b.is_runner_steps();
            if junit_damaged {
                let reason = b.incomplete.take().map(|i| i.reason).unwrap_or_default();
                let mut fallback = log_to_suite(l, label);
                fallback.mark_incomplete(format!("{reason}; counts from {label}"));
                fallback.properties = b.properties;
                fallback
            } else {
                if let Some(w) = log_contradiction(&b, l, label) {
                    tracing::warn!("{w}");
                    b.properties.push((WARNING_PROPERTY.to_string(), w));
                }
                apply_log(&mut b, l, label);
                if opts.missing_as_not_run {
                    add_missing_as_not_run(&mut b, l);
                }
                b
            }
        }
        (Some(b), None) => b,
        (None, Some((label, l))) => {
            let mut s = log_to_suite(l, label);
            if let Some(d) = dir {
                s.mark_incomplete(format!(
                    "{}: no JUnit or JSON report; counts from {label}",
                    d.display()
                ));
            }
            s
        }
        (None, None) => {
            let mut s = SuiteResult::default();
            if errors.is_empty() {
                s.mark_incomplete(match dir {
                    Some(d) => format!(
                        "{}: no result files (junit_*.xml, e2e.log, JSON report)",
                        d.display()
                    ),
                    None => "no result files given".to_string(),
                });
            }
            s
        }
    };
    for e in errors {
        suite.mark_incomplete(e);
    }
    if !suite.name.is_empty() && suite.name != name {
        suite
            .properties
            .push(("ginkgo_suite".to_string(), suite.name.clone()));
    }
    suite.name = name.to_string();
    suite
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::model::SpecOutcome;

    const V2: &str = r#"<testsuites><testsuite name="K">
      <testcase name="[It] a [Conformance]" status="passed" time="1"></testcase>
      <testcase name="[It] b" status="skipped" time="0"><skipped message="skipped"/></testcase>
    </testsuite></testsuites>"#;
    const LOG: &str = "Will run 1 of 2 specs\n\u{21ba} [FLAKEY TEST - TOOK 2 ATTEMPTS TO PASS] [1.0 seconds]\na [Conformance] [Conformance]\nx.go:1\nRan 1 of 2 Specs in 1.0 seconds\nSUCCESS! -- 1 Passed | 0 Failed | 1 Flaked | 0 Pending | 1 Skipped\n";

    #[test]
    fn dir_with_junit_and_log() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("junit_01.xml"), V2).unwrap();
        std::fs::write(d.path().join("e2e.log"), LOG).unwrap();
        std::fs::write(d.path().join("summary.json"), "{\"format_version\":1}").unwrap();
        let s = load_dir(d.path(), "conf", &ReadOptions::default());
        assert_eq!(s.name, "conf");
        assert!(s.incomplete.is_none(), "{:?}", s.incomplete);
        assert_eq!(s.specs[0].outcome(), SpecOutcome::Flaky);
        assert_eq!(s.counts().skipped, 1);
    }

    #[test]
    fn dir_with_log_only_is_incomplete_fallback() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("e2e.log"), LOG).unwrap();
        let s = load_dir(d.path(), "conf", &ReadOptions::default());
        assert!(s.incomplete.clone().unwrap().reason.contains("no JUnit"));
        assert_eq!(s.counts().flaky, 1);
        // given directly, the log is the result
        let s = load_files(&[d.path().join("e2e.log")], "e2e", &ReadOptions::default());
        assert!(s.incomplete.is_none());
    }

    #[test]
    fn empty_or_missing() {
        let d = tempfile::tempdir().unwrap();
        let s = load_dir(d.path(), "x", &ReadOptions::default());
        assert!(s.incomplete.unwrap().reason.contains("no result files"));
        let s = load_dir(&d.path().join("nope"), "x", &ReadOptions::default());
        assert!(s.incomplete.unwrap().reason.contains("nope"));
        let s = load_files(&[d.path().join("gone.xml")], "x", &ReadOptions::default());
        assert!(s.incomplete.unwrap().reason.contains("gone.xml"));
    }

    #[test]
    fn a_stopped_v2_run_keeps_ginkgo_s_well_formed_junit() {
        // Regression: the interrupted run's JUnit was thrown away and the suite rebuilt from
        // the log's counts, with made-up names and another classname.
        let junit = r#"<testsuites><testsuite name="Kubernetes e2e suite" tests="3">
          <properties><property name="SuiteSucceeded" value="false"></property>
          <property name="SpecialSuiteFailureReason" value="Interrupted by User"></property></properties>
          <testcase name="[It] a" classname="Kubernetes e2e suite" status="passed" time="1"></testcase>
          <testcase name="[It] b" classname="Kubernetes e2e suite" status="interrupted" time="1"><error message="interrupted" type="interrupted">Interrupted by User</error></testcase>
          <testcase name="[It] c" classname="Kubernetes e2e suite" status="skipped" time="0"><skipped message="skipped - Spec skipped because an interrupt was received"></skipped></testcase>
        </testsuite></testsuites>"#;
        let log = "Running Suite: Kubernetes e2e suite - /usr/local/bin\nWill run 3 of 3 specs\n\u{2022}\nInterrupted by User\nRan 2 of 3 Specs in 2.0 seconds\nFAIL! - Interrupted by User -- 1 Passed | 1 Failed | 0 Pending | 1 Skipped\n";
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("junit_01.xml"), junit).unwrap();
        std::fs::write(d.path().join("e2e.log"), log).unwrap();
        let s = load_dir(d.path(), "conf", &ReadOptions::default());
        let names: Vec<&str> = s.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert!(s
            .specs
            .iter()
            .all(|s| s.classname.as_deref() == Some("Kubernetes e2e suite")));
        let reason = s.incomplete.clone().unwrap();
        assert!(
            !reason.damaged && reason.reason.contains("Interrupted by User"),
            "{reason:?}"
        );
    }

    #[test]
    fn empty_binary_and_non_xml_files_are_named_as_such() {
        // Regression: all three read "no ginkgo summary line (the run did not finish)".
        let d = tempfile::tempdir().unwrap();
        let cases = [
            ("empty.xml", &b""[..], "empty file (0 bytes)"),
            ("bin.xml", &b"\x89PNG\r\n\x1a\n\0\0\0"[..], "binary file"),
            ("text.xml", &b"hello, not xml\n"[..], "not XML"),
        ];
        for (name, bytes, says) in cases {
            let p = d.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            let s = load_files(&[p], "r", &ReadOptions::default());
            let reason = s.incomplete.expect("incomplete").reason;
            assert!(reason.contains(name) && reason.contains(says), "{reason}");
            assert!(!reason.contains("did not finish"), "{reason}");
        }
    }

    #[test]
    fn truncated_junit_falls_back_to_log() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("junit_01.xml"), &V2[..60]).unwrap();
        std::fs::write(d.path().join("e2e.log"), LOG).unwrap();
        let s = load_dir(d.path(), "c", &ReadOptions::default());
        let reason = s.incomplete.clone().unwrap().reason;
        assert!(
            reason.contains("junit_01.xml") && reason.contains("counts from"),
            "{reason}"
        );
        assert_eq!(s.counts().flaky, 1);
        assert_eq!(s.counts().skipped, 1);
    }
}
