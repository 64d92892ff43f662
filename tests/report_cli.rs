//! `e2e-gate report` end to end: exit codes, JSON on stdout, JUnit to a file.

mod common;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_e2e-gate");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/results");
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");

fn report(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("report")
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fx(p: &str) -> String {
    format!("{FIXTURES}/{p}")
}

#[test]
fn json_summary_of_directories_and_exit_codes() {
    let (code, out, err) = report(&["--format", "json", &fx("v1"), &fx("dry-run")]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json on stdout");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["result"], "failed");
    assert_eq!(v["suites"][0]["name"], "v1");
    assert_eq!(v["suites"][0]["flaky"], 1);
    assert_eq!(
        v["suites"][0]["flaky_specs"][0],
        "[sig-network] DNS should resolve [Conformance]"
    );
    assert_eq!(v["suites"][1]["name"], "dry-run");
    assert_eq!(v["suites"][1]["dry_run"], true);
    assert_eq!(v["suites"][1]["passed"], 0);
    assert_eq!(v["totals"]["failed"], 1);
    assert!(
        err.contains("FAILED  [sig-node] Pods should be submitted [Conformance]"),
        "{err}"
    );
}

#[test]
fn exit_codes_passed_incomplete_usage() {
    let (code, _, err) = report(&[&fx("log-only-v2/e2e.log")]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = report(&["--fail-on-flaky", &fx("log-only-v2/e2e.log")]);
    assert_eq!(code, 1, "{err}");
    let (code, out, _) = report(&["--format", "json", &fx("truncated")]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"], "incomplete");
    assert_eq!(v["suites"][0]["incomplete"], true);
    // a real interrupted ginkgo v1 run: the stopped spec is missing from the JUnit
    let (code, out, _) = report(&["--format", "json", &fx("ginkgo-v1-fixture/hang-alone-stop")]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["suites"][0]["not_run"], 1);
    assert_eq!(v["suites"][0]["passed"], 0);
    let (code, _, err) = report(&["/nonexistent/junit.xml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/junit.xml"), "{err}");
}

#[test]
fn files_form_one_named_suite_and_junit_goes_to_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("combined.xml");
    let (code, stdout, err) = report(&[
        "--format",
        "junit",
        "--name",
        "conformance",
        "-o",
        out_path.to_str().unwrap(),
        &fx("v2-parallel/junit_01.xml"),
        &fx("v2-parallel/e2e.log"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(stdout.is_empty());
    let xml = std::fs::read_to_string(&out_path).unwrap();
    assert!(xml.contains("<testsuite name=\"conformance\""), "{xml}");
    assert!(xml.contains("<flakyFailure"));
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.test_suites.len(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left"
    );
    // testgrid style duplicates attempts
    let (_, xml, _) = report(&[
        "--format",
        "junit",
        "--junit-style",
        "testgrid",
        &fx("v2-parallel"),
    ]);
    assert!(!xml.contains("flakyFailure"));
    assert_eq!(
        xml.matches("FieldValidation should detect unknown fields")
            .count(),
        2
    );
}

#[test]
fn corpus_01_02_json() {
    if !common::require(
        Path::new(CORPUS).is_dir(),
        &format!("the corpus folder {CORPUS}"),
        "it sits beside the repository in the developers' workspace",
    ) {
        return;
    }
    let (code, out, err) = report(&[
        "--format",
        "json",
        &format!("{CORPUS}/01-v2-k8s1.32-switch-parallel5-flaked2.e2e.log"),
        &format!("{CORPUS}/02-v2-k8s1.32-switch-parallel5-flaked2.junit_01.xml"),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["totals"]["passed"], 409);
    assert_eq!(v["totals"]["flaky"], 2);
    assert_eq!(v["totals"]["skipped"], 6213);
    assert_eq!(v["suites"][0]["name"], "e2e");
    let (code, _, _) = report(&[&format!(
        "{CORPUS}/13-v1-prow-e2e-truncated-malformed.junit.xml"
    )]);
    assert_eq!(code, 3);
}

/// A ginkgo v2 JUnit with the given `(name, status)` testcases.
fn v2_junit(cases: &[(&str, &str)]) -> String {
    let body: String = cases
        .iter()
        .map(|(n, st)| {
            let child = match *st {
                "failed" => "<failure message=\"boom\" type=\"failed\">boom</failure>",
                "skipped" => "<skipped message=\"skipped\"></skipped>",
                _ => "",
            };
            format!("<testcase name=\"[It] {n}\" classname=\"Kubernetes e2e suite\" status=\"{st}\" time=\"1\">{child}</testcase>")
        })
        .collect();
    format!("<testsuites><testsuite name=\"Kubernetes e2e suite\" tests=\"{}\">{body}</testsuite></testsuites>", cases.len())
}

#[test]
fn report_reads_what_run_and_gate_write() {
    // Regression: `report artifacts/smoke` exited 3 "no result files" (results sit in
    // attempt-N/results/), and `report artifacts` merged suites and the gate's steps into one.
    let d = tempfile::tempdir().unwrap();
    let art = d.path().join("artifacts");
    let write = |rel: &str, text: &str| {
        let p = art.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "smoke/attempt-0/results/junit_01.xml",
        &v2_junit(&[("a", "failed"), ("b", "passed")]),
    );
    write(
        "smoke/attempt-0/e2e.log",
        "Running Suite: Kubernetes e2e suite - /x\n",
    );
    write(
        "smoke/attempt-1/results/junit_01.xml",
        &v2_junit(&[("a", "passed"), ("b", "skipped")]),
    );
    write(
        "other/attempt-0/results/junit_01.xml",
        &v2_junit(&[("c", "passed")]),
    );
    // The run's own outputs at the top are not more results.
    write("junit.xml", &v2_junit(&[("z", "failed")]));
    write("summary.json", "{\"format_version\": 1}");

    let smoke = art.join("smoke").display().to_string();
    let (code, out, err) = report(&["--format", "json", &smoke]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["suites"][0]["name"], "smoke");
    assert_eq!(
        v["suites"][0]["flaky_specs"][0], "a",
        "the rerun is merged: {v}"
    );
    assert_eq!(v["suites"][0]["passed"], 1);

    let (code, out, err) = report(&["--format", "json", &art.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["other", "smoke"],
        "one suite per suite directory: {v}"
    );
    assert_eq!(
        v["totals"]["failed"], 0,
        "the top-level junit.xml is not read again: {v}"
    );
}
