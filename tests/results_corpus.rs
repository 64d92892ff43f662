//! The real-world corpus (`../shared/corpus`) and the small fixtures in `fixtures/results/`.

mod common;

use e2e_gate::exit_code::HasExitCode;
use e2e_gate::results::load::{load_dir, load_files};
use e2e_gate::results::model::{SourceFormat, SpecOutcome, SuiteResult};
use e2e_gate::results::read::junit::read_junit;
use e2e_gate::results::read::ReadOptions;
use e2e_gate::results::summary::summarize_with;
use e2e_gate::results::write::junit::{write_junit_string, JunitOptions, JunitStyle};
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/results");

/// Corpus files whose name starts with each prefix; `None` (and a message) without the corpus.
fn corpus(prefixes: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = Path::new(CORPUS);
    if !common::require(
        dir.is_dir(),
        &format!("the corpus folder {CORPUS}"),
        "it sits beside the repository in the developers' workspace",
    ) {
        return None;
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus readable")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    Some(
        prefixes
            .iter()
            .map(|p| {
                names
                    .iter()
                    .find(|n| {
                        n.file_name()
                            .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{p}-")))
                    })
                    .unwrap_or_else(|| panic!("corpus file {p} missing"))
                    .clone()
            })
            .collect(),
    )
}

fn counts(s: &SuiteResult) -> (usize, usize, usize, usize, usize) {
    let c = s.counts();
    (c.passed, c.flaky, c.failed, c.skipped, c.pending)
}

/// Written JUnit re-reads to the same counts and deserialises with quick-junit.
fn round_trip(s: &SuiteResult) {
    for style in [JunitStyle::Jenkins, JunitStyle::Testgrid] {
        let opts = JunitOptions {
            style,
            max_output_bytes: 512,
            report_name: "e2e-gate".into(),
        };
        let xml = write_junit_string(std::slice::from_ref(s), &opts);
        let back = read_junit(xml.as_bytes(), "out.xml", &ReadOptions::default());
        assert_eq!(
            back.counts(),
            s.counts(),
            "{style:?} round trip of {}",
            s.name
        );
        assert_eq!(back.dry_run, s.dry_run);
        assert_eq!(back.incomplete.is_some(), s.incomplete.is_some());
        assert!(!xml.contains("message=\"\""), "empty failure message");
        quick_junit::Report::deserialize_from_str(&xml).expect("quick-junit reads our output");
    }
}

#[test]
fn c01_02_log_flakes_applied_to_v2_junit() {
    let Some(f) = corpus(&["01", "02"]) else {
        return;
    };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (409, 2, 0, 6213, 0));
    assert!(s.incomplete.is_none(), "{:?}", s.incomplete);
    let flaky: Vec<&str> = s
        .specs_with(SpecOutcome::Flaky)
        .map(|s| s.name.as_str())
        .collect();
    assert!(flaky.iter().any(|n| n.starts_with("[sig-api-machinery] FieldValidation should detect unknown metadata fields in both the root")));
    assert!(flaky
        .iter()
        .any(|n| n.contains("CustomResourceFieldSelectors MUST list and watch")));
    let three = s
        .specs
        .iter()
        .find(|s| s.name.contains("CustomResourceFieldSelectors MUST"))
        .unwrap();
    assert_eq!(three.attempts.len(), 3);
    // 5 copies per process of each suite node, deduplicated
    assert_eq!(s.suite_nodes.len(), 4);
    assert!(s
        .properties
        .contains(&("flake_attempts".into(), "3".into())));
    assert_eq!(
        summarize_with(std::slice::from_ref(&s), false).exit_code(),
        0
    );
    round_trip(&s);
}

#[test]
fn c02_alone_hides_flakes() {
    let Some(f) = corpus(&["02"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (411, 0, 0, 6213, 0));
    assert_eq!(s.sources, vec![SourceFormat::GinkgoV2Junit]);
    // same-named distinct specs are never merged
    assert_eq!(s.specs.len(), 6624);
    assert!(s
        .specs
        .iter()
        .all(|sp| sp.junit_prefix.as_deref() == Some("[It] ")));
}

#[test]
fn c01_log_alone() {
    let Some(f) = corpus(&["01"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (409, 2, 0, 6213, 0));
    assert_eq!(s.sources, vec![SourceFormat::GinkgoV2Log]);
}

#[test]
fn c03_verbose_v2_log_with_banner() {
    let Some(f) = corpus(&["03"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (409, 2, 0, 6211, 0));
    assert_eq!(s.kubernetes_version.as_deref(), Some("v1.32.1"));
    assert!(s.specs.iter().any(|sp| sp
        .name
        .starts_with("[sig-node] RuntimeClass should support RuntimeClasses API operations")));
}

#[test]
fn c04_v2_succinct_pass() {
    let Some(f) = corpus(&["04"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (404, 0, 0, 6199, 0));
}

#[test]
fn c05_06_v1_failures() {
    let Some(f) = corpus(&["05", "06"]) else {
        return;
    };
    let alone = load_files(&f[..1], "e2e", &ReadOptions::default());
    assert_eq!(counts(&alone), (300, 0, 3, 5181, 0));
    assert_eq!(alone.sources, vec![SourceFormat::GinkgoV1Junit]);
    let both = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&both), (300, 0, 3, 5181, 0));
    assert_eq!(both.kubernetes_version.as_deref(), Some("v1.19.16"));
    let failed: Vec<_> = both.specs_with(SpecOutcome::Failed).collect();
    let first = &failed[0].attempts[0];
    assert!(
        first
            .message()
            .contains("Conformance test suite needs a cluster with at least 2 nodes"),
        "{}",
        first.message()
    );
    assert!(first
        .location
        .as_deref()
        .unwrap()
        .ends_with("framework.go:597"));
    assert_eq!(
        summarize_with(std::slice::from_ref(&both), false).exit_code(),
        1
    );
    round_trip(&both);
    // the log alone agrees, with the failures named
    let log = load_files(&f[1..], "e2e", &ReadOptions::default());
    assert_eq!(counts(&log), (300, 0, 3, 5181, 0));
    let names: Vec<_> = log
        .specs_with(SpecOutcome::Failed)
        .map(|s| s.name.clone())
        .collect();
    assert!(names.contains(&"[sig-scheduling] SchedulerPreemption [Serial] validates basic preemption works [Conformance]".to_string()), "{names:?}");
    for n in &names {
        assert!(
            both.specs
                .iter()
                .any(|s| &s.name == n && s.outcome() == SpecOutcome::Failed),
            "{n}"
        );
    }
}

#[test]
fn c07_v1_flaked_column() {
    let Some(f) = corpus(&["07"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (356, 0, 0, 6615, 0));
    assert_eq!(s.sources, vec![SourceFormat::GinkgoV1Log]);
    assert!(s.incomplete.is_none());
}

#[test]
fn c08_09_nameless_v1_suite() {
    let Some(f) = corpus(&["08", "09"]) else {
        return;
    };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (1, 0, 0, 697, 0));
    assert_eq!(
        s.specs.len(),
        698,
        "same-named distinct specs stay distinct"
    );
    assert!(!s.dry_run);
    let log = load_files(&f[1..], "e2e", &ReadOptions::default());
    assert_eq!(counts(&log), (1, 0, 0, 697, 0));
}

#[test]
fn c10_11_dry_run() {
    let Some(f) = corpus(&["10", "11"]) else {
        return;
    };
    for files in [&f[..1], &f[1..], &f[..]] {
        let s = load_files(files, "e2e", &ReadOptions::default());
        assert!(s.dry_run, "{files:?}");
        assert_eq!(s.counts().passed, 0, "{files:?}");
        assert_eq!(s.dry_run_specs(), 204, "{files:?}");
        assert_eq!(s.counts().skipped, 3585, "{files:?}");
        let sum = summarize_with(std::slice::from_ref(&s), false);
        assert!(sum.suites[0].dry_run);
        assert_eq!(sum.totals.passed, 0);
        // As ginkgo's own summary counts them: "Will run 204 of 3585", "3381 Skipped"
        // (regression: the summary said 3585 skipped).
        assert_eq!(
            (sum.suites[0].dry_run_specs, sum.suites[0].counts.skipped),
            (204, 3381),
            "{files:?}"
        );
    }
    round_trip(&load_files(&f, "e2e", &ReadOptions::default()));
}

#[test]
fn c12_counts_recomputed() {
    let Some(f) = corpus(&["12"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (1, 0, 1, 2, 0));
    assert!(!s.dry_run);
    assert_eq!(
        summarize_with(std::slice::from_ref(&s), false).exit_code(),
        1
    );
}

#[test]
fn c13_truncated_is_incomplete() {
    let Some(f) = corpus(&["13"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    let reason = s.incomplete.clone().expect("incomplete").reason;
    assert!(
        reason.contains("13-v1-prow-e2e-truncated-malformed.junit.xml"),
        "{reason}"
    );
    let sum = summarize_with(std::slice::from_ref(&s), false);
    assert_eq!(sum.exit_code(), 3);
    assert_eq!(sum.suites[0].result.as_str(), "incomplete");
    round_trip(&s);
}

#[test]
fn c14_runner_steps() {
    let Some(f) = corpus(&["14"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert!(s.is_runner_steps());
    assert_eq!(s.specs.len(), 8);
    assert_eq!(counts(&s), (7, 0, 1, 0, 0));
    assert_eq!(
        s.specs_with(SpecOutcome::Failed).next().unwrap().name,
        "Node Tests"
    );
}

#[test]
fn c15_progress_post_errors_do_not_fail() {
    let Some(f) = corpus(&["15"]) else { return };
    let s = load_files(&f, "e2e", &ReadOptions::default());
    assert_eq!(counts(&s), (277, 0, 0, 4715, 0));
    assert_eq!(s.kubernetes_version.as_deref(), Some("v1.18.6"));
    // passed specs are named from the progress lines
    assert!(s.specs.iter().any(|sp| sp.name == "[k8s.io] Docker Containers should be able to override the image's default command (docker entrypoint) [NodeConformance] [Conformance]"));
    assert_eq!(
        summarize_with(std::slice::from_ref(&s), false).exit_code(),
        0
    );
}

// ---- small fixtures, one per shape (always present) ----

fn fixture(shape: &str) -> SuiteResult {
    load_dir(
        &Path::new(FIXTURES).join(shape),
        shape,
        &ReadOptions::default(),
    )
}

#[test]
fn fixture_v1_parallel_files_with_in_process_retries() {
    let s = fixture("v1");
    assert_eq!(counts(&s), (2, 1, 1, 2, 0));
    let flaky = s.specs_with(SpecOutcome::Flaky).next().unwrap();
    assert_eq!(flaky.name, "[sig-network] DNS should resolve [Conformance]");
    assert_eq!(flaky.attempts[1].origin.in_process, 1);
    assert_eq!(s.kubernetes_version.as_deref(), Some("v1.24.3"));
    assert!(s.incomplete.is_none());
    round_trip(&s);
}

#[test]
fn fixture_v2_parallel_repeated_suite_nodes_and_log_flake() {
    let s = fixture("v2-parallel");
    assert_eq!(counts(&s), (1, 1, 1, 2, 0));
    assert_eq!(s.suite_nodes.len(), 4);
    let failed = s.specs_with(SpecOutcome::Failed).next().unwrap();
    let a = &failed.attempts[0];
    assert_eq!(
        a.message(),
        "[FAILED] Timed out after 30.000s.",
        "k8s leaves message empty"
    );
    assert_eq!(
        a.location.as_deref(),
        Some("k8s.io/kubernetes/test/e2e/common/node/pods.go:344")
    );
    assert!(s
        .properties
        .contains(&("skip".into(), "\\[Serial\\]".into())));
    round_trip(&s);
}

#[test]
fn fixture_v2_json_report_attempts() {
    let s = fixture("v2-json");
    assert_eq!(counts(&s), (1, 1, 1, 1, 1));
    assert_eq!(s.sources, vec![SourceFormat::GinkgoJsonReport]);
    let failed = s.specs_with(SpecOutcome::Failed).next().unwrap();
    assert_eq!(failed.attempts.len(), 3);
    assert_eq!(
        failed.location.as_deref(),
        Some("k8s.io/kubernetes/test/e2e/common/node/pods.go:330")
    );
    round_trip(&s);
}

#[test]
fn fixture_log_only_dirs_are_incomplete_fallbacks() {
    let v1 = fixture("log-only-v1");
    assert_eq!(counts(&v1), (2, 0, 1, 7, 0));
    assert!(v1
        .specs
        .iter()
        .any(|s| s.name == "[sig-apps] Job should run [Conformance]"));
    assert!(v1.specs.iter().any(
        |s| s.name == "[sig-network] DNS should resolve [Conformance]"
            && s.outcome() == SpecOutcome::Failed
    ));
    assert!(v1.incomplete.is_some());
    let v2 = fixture("log-only-v2");
    assert_eq!(counts(&v2), (3, 1, 0, 5, 0));
    assert!(v2.incomplete.is_some());
    let direct = load_files(
        &[Path::new(FIXTURES).join("log-only-v2/e2e.log")],
        "e2e",
        &ReadOptions::default(),
    );
    assert!(direct.incomplete.is_none());
}

#[test]
fn fixture_dry_run_and_truncated_and_runner_steps() {
    let d = fixture("dry-run");
    assert!(d.dry_run);
    assert_eq!(
        (d.counts().passed, d.dry_run_specs(), d.counts().skipped),
        (0, 2, 3)
    );
    let t = fixture("truncated");
    assert!(t
        .incomplete
        .as_ref()
        .unwrap()
        .reason
        .contains("junit_01.xml"));
    assert_eq!(
        counts(&t),
        (2, 0, 1, 1, 0),
        "log summary used as the fallback"
    );
    assert_eq!(
        summarize_with(std::slice::from_ref(&t), false).exit_code(),
        3
    );
    let r = fixture("runner-steps");
    assert!(r.is_runner_steps());
    assert_eq!(counts(&r), (3, 0, 1, 0, 0));
}

/// Real output of the ginkgo v1.16.5 fixture image (see its README.md).
fn real(dir: &str) -> SuiteResult {
    load_dir(
        &Path::new(FIXTURES).join("ginkgo-v1-fixture").join(dir),
        dir,
        &ReadOptions::default(),
    )
}

#[test]
fn real_ginkgo_v1_fixture_image() {
    let s = real("full-run");
    assert_eq!(counts(&s), (6, 0, 3, 5, 0));
    assert_eq!(
        summarize_with(std::slice::from_ref(&s), false).exit_code(),
        1
    );
    round_trip(&s);

    let s = real("flake-attempts-2");
    assert_eq!(counts(&s), (6, 1, 2, 5, 0));
    let flaky = s.specs_with(SpecOutcome::Flaky).next().unwrap();
    assert!(flaky
        .name
        .ends_with("fails on the first attempt and passes on the second [Flaky]"));
    let always = s
        .specs
        .iter()
        .find(|s| s.name == "[Fixture] failures always fails [Fail]")
        .unwrap();
    assert_eq!(always.attempts.len(), 2);
    assert_eq!(
        always.attempts[0].message(),
        "fixture failure: this spec always fails (expected 42, got 0)"
    );
    assert_eq!(
        always.attempts[0].location.as_deref(),
        Some("e2egate.fixture/e2e/fixture_test.go:45")
    );
    round_trip(&s);

    let s = real("dry-run");
    assert!(s.dry_run);
    assert_eq!(s.counts().passed, 0);
    assert_eq!(
        summarize_with(std::slice::from_ref(&s), false).exit_code(),
        0
    );

    let s = real("parallel-nodes2");
    assert_eq!(s.specs.len(), 14, "both node files are read");
    assert_eq!(counts(&s), (7, 0, 2, 5, 0));

    // interrupted runs: incomplete (3) either way; `report` (which does not know the
    // selected names) adds the spec absent from the JUnit as not run
    let report_opts = ReadOptions {
        missing_as_not_run: true,
        ..ReadOptions::default()
    };
    for dir in ["hang-stop", "hang-alone-stop"] {
        let s = real(dir);
        assert_eq!(
            s.counts().not_run,
            0,
            "{dir}: the runner marks missing specs by name"
        );
        assert!(
            s.incomplete
                .as_ref()
                .unwrap()
                .reason
                .contains("interrupted"),
            "{dir}"
        );
        assert_eq!(
            summarize_with(std::slice::from_ref(&s), false).exit_code(),
            3,
            "{dir}"
        );
        let path = Path::new(FIXTURES).join("ginkgo-v1-fixture").join(dir);
        let s = load_dir(&path, dir, &report_opts);
        assert!(s.counts().not_run > 0, "{dir}");
        assert_eq!(
            summarize_with(std::slice::from_ref(&s), false).exit_code(),
            3,
            "{dir}"
        );
        round_trip(&s);
    }
    let s = load_dir(
        &Path::new(FIXTURES).join("ginkgo-v1-fixture/hang-alone-stop"),
        "h",
        &report_opts,
    );
    assert_eq!(
        s.counts().passed,
        0,
        "the summary's '1 Passed' is the interrupted spec"
    );

    for dir in ["kubeconfig", "rerun-polluted"] {
        let s = real(dir);
        assert_eq!(counts(&s), (1, 0, 0, 13, 0), "{dir}");
    }
    let s = real("verbose");
    assert_eq!(counts(&s), (6, 0, 3, 5, 0));
}

/// Hardening item 11: a log whose summary contradicts the report beside it is named; the real
/// pairs of the corpus (flakes counted among the passed, dry runs, v1 and v2) are not.
#[test]
fn a_log_from_another_run_is_named_and_real_pairs_are_not() {
    use e2e_gate::results::summary::suite_summary;
    let Some(files) = corpus(&["01", "02", "05", "06", "08", "09", "10", "11"]) else {
        return;
    };
    for pair in [[0, 1], [2, 3], [4, 5], [6, 7]] {
        let s = load_files(
            &[files[pair[0]].clone(), files[pair[1]].clone()],
            "e2e",
            &ReadOptions::default(),
        );
        let w = suite_summary(&s, false).warnings;
        assert!(w.is_empty(), "{:?}: {w:?}", files[pair[0]]);
    }
    // Stopped runs: ginkgo v1 counts the spec it interrupted as passed; not a contradiction.
    for d in [
        "ginkgo-v1-fixture/hang-stop",
        "ginkgo-v1-fixture/hang-alone-stop",
    ] {
        let s = load_dir(&Path::new(FIXTURES).join(d), "e2e", &ReadOptions::default());
        assert!(suite_summary(&s, false).warnings.is_empty(), "{d}");
    }
    // The v1 log of corpus 06 beside the v2 JUnit of corpus 02.
    let s = load_files(
        &[files[3].clone(), files[1].clone()],
        "e2e",
        &ReadOptions::default(),
    );
    let w = suite_summary(&s, false).warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("06-v1")
            && w[0].contains("300 Passed | 3 Failed")
            && w[0].contains("411 passed"),
        "{}",
        w[0]
    );
}
