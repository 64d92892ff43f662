//! The real binary against the real Docker engine and a real ginkgo v2.22 suite behind a
//! conformance-image style entrypoint (`ci/build-fixture-image-v2.sh`, specs and expected
//! outcomes in `fixtures/conformance-image-v2/EXPECTED.md`). Runs are as long as real ones
//! relative to their limits: a healthy run outlasts its `stall_timeout` three times over.

mod common;

use regex::Regex;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "e2e-gate-fixture-v2:latest";
const DESCRIPTION: &str = "Kubernetes e2e suite";

const FAIL: &str = "[Fixture] failures always fails (a+b) [Fail]";
const FLAKY: &str =
    "[Fixture] failures flaky behaviour fails on the first attempt (then passes) [Flaky]";
const POLLUTED: &str = "[Fixture] pollution passes only when run alone [Polluted]";
const HANG: &str = "[Fixture] hang blocks until interrupted [Hang]";
/// What real runs skip: the slow, disruptive, hanging and loud specs.
const USUAL_SKIP: &str = r"skip = ['\[Slow\]', '\[Disruptive\]', '\[Hang\]', '\[Loud\]']";

fn steady(n: usize) -> String {
    format!("[Fixture] steady spec {n:02} takes a few seconds")
}

fn ready() -> bool {
    common::docker_image(IMAGE, "run ci/build-fixture-image-v2.sh (ci/test.sh does)")
}

use common::suite_dir::SuiteDir;

/// One suite file on the v2 fixture image.
fn suite(tag: &str, toml: &str) -> SuiteDir {
    SuiteDir::create(IMAGE, "v2", tag, toml)
}

fn sorted_names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `(name, status)` of every testcase of a ginkgo v2 JUnit file, names without `[It] `.
fn junit_cases(path: &Path) -> Vec<(String, String, String)> {
    let xml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let case = Regex::new(r#"<testcase name="([^"]*)" classname="([^"]*)"(?: status="([^"]*)")?"#)
        .unwrap();
    case.captures_iter(&xml)
        .map(|c| {
            let unescape = |s: &str| {
                s.replace("&amp;", "&")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&#34;", "\"")
                    .replace("&quot;", "\"")
                    .replace("&#39;", "'")
            };
            (
                unescape(c[1].trim_start_matches("[It] ")),
                unescape(&c[2]),
                c.get(3).map(|m| m.as_str().to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn a_healthy_run_longer_than_its_stall_timeout_streams_live_and_reruns_select() {
    if !ready() {
        return;
    }
    // The defaults of a real suite, scaled: specs finish every 5 s, the run lasts > 60 s, and
    // the stall watchdog (20 s) must see every finished spec while the container runs.
    let suite = suite(
        "healthy",
        &format!(
            "ginkgo = \"v2\"\nfocus = ['\\[Fixture\\]']\n{USUAL_SKIP}\nflake_attempts = 2\nreruns = 1\ntimeout = \"10m\"\nstall_timeout = \"20s\"\n"
        ),
    );
    let started = Instant::now();
    let mut child = suite
        .command(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // An independent reader of stderr: when each progress line arrived.
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(err).lines() {
            lines.push((started.elapsed(), line.unwrap_or_default()));
        }
        lines
    });
    let log = suite.attempt_dir(0).join("e2e.log");
    let mut sizes = Vec::new();
    while child.try_wait().unwrap().is_none() {
        if let Ok(m) = std::fs::metadata(&log) {
            // Only while the first container runs (before the rerun's directory exists).
            if !suite.attempt_dir(1).exists() {
                sizes.push((started.elapsed(), m.len()));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = child.wait_with_output().unwrap();
    let lines = reader.join().unwrap();
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}); stderr:\n{text}"));
    let elapsed = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a real failure exits 1; stderr:\n{text}"
    );
    assert!(
        elapsed >= Duration::from_secs(60),
        "the run took only {elapsed:?}"
    );

    // e2e.log grew while the container ran: many distinct, increasing sizes.
    let mut growth: Vec<u64> = sizes.iter().map(|(_, s)| *s).filter(|s| *s > 0).collect();
    growth.dedup();
    assert!(
        growth.len() >= 8 && growth.windows(2).all(|w| w[0] < w[1]),
        "attempt-0/e2e.log did not grow during the run: {sizes:?}"
    );
    // Progress lines counted specs as they finished, long before the end.
    let done = Regex::new(r"\] (\d+)/22 specs done").unwrap();
    let counts: Vec<(Duration, u32)> = lines
        .iter()
        .filter_map(|(t, l)| done.captures(l).map(|c| (*t, c[1].parse().unwrap())))
        .collect();
    let mut distinct: Vec<u32> = counts.iter().map(|(_, n)| *n).collect();
    distinct.dedup();
    assert!(
        distinct.len() >= 5 && distinct.windows(2).all(|w| w[0] <= w[1]),
        "progress did not follow the specs: {counts:?}\n{text}"
    );
    assert!(
        counts
            .iter()
            .any(|(t, n)| *n > 0 && *n < 22 && *t < elapsed / 2),
        "no partial count in the first half of the run: {counts:?}"
    );

    let s = &summary["suites"][0];
    assert_eq!(s["incomplete"], false, "{s}\n{text}");
    assert_eq!(sorted_names(&s["failed_specs"]), sorted(&[FAIL]), "{s}");
    assert_eq!(
        sorted_names(&s["flaky_specs"]),
        sorted(&[FLAKY, POLLUTED]),
        "{s}"
    );
    // 22 selected, of which two skip themselves at run time (no kubeconfig, a runtime Skip).
    assert_eq!(
        u(&s["passed"]) + u(&s["failed"]) + u(&s["flaky"]),
        20,
        "{s}"
    );
    assert_eq!(summary["result"], "failed");
    // The order-dependent spec became flaky through a rerun that selected it.
    let rerun_log = std::fs::read_to_string(suite.attempt_dir(1).join("e2e.log")).unwrap();
    assert!(rerun_log.contains("Will run 2 of 26 specs"), "{rerun_log}");
    let rerun = junit_cases(&suite.attempt_dir(1).join("results/junit_01.xml"));
    assert!(
        rerun
            .iter()
            .any(|(n, _, st)| n == POLLUTED && st == "passed"),
        "{rerun:?}"
    );
    assert!(
        rerun.iter().any(|(n, _, st)| n == FAIL && st == "failed"),
        "{rerun:?}"
    );
    // The failure's own message reaches junit.xml, under ginkgo's classname.
    let junit = std::fs::read_to_string(suite.artifacts().join("junit.xml")).unwrap();
    assert!(junit.contains("expected 42, got 0"), "{junit}");
    assert!(
        junit.contains(&format!("classname=\"{DESCRIPTION}\"")),
        "{junit}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap_or("")
            .starts_with("result: FAILED"),
        "{text}"
    );
    assert_eq!(suite.leftover_containers(), "");
}

#[test]
fn a_run_cut_by_its_timeout_counts_every_selected_spec_once_by_name() {
    if !ready() {
        return;
    }
    // 12 steady specs of 2 s and one that hangs: a 15 s timeout cuts the run whatever order
    // ginkgo picks for the two containers.
    let suite = suite(
        "timeout",
        "ginkgo = \"v2\"\nfocus = ['\\[Fixture\\] steady', '\\[Hang\\]']\ntimeout = \"15s\"\nstall_timeout = \"10m\"\n[env]\nFIXTURE_STEADY_SECONDS = \"2\"\n",
    );
    let (out, summary) = suite.run(&["--stop-grace", "30s"]);
    let text = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a cut run is incomplete; stderr:\n{text}"
    );
    let s = &summary["suites"][0];
    assert_eq!(s["incomplete"], true, "{s}");
    assert!(
        s["incomplete_reason"]
            .as_str()
            .unwrap()
            .contains("timeout of 15s"),
        "{s}"
    );
    let counted = u(&s["passed"]) + u(&s["failed"]) + u(&s["flaky"]) + u(&s["not_run"]);
    assert_eq!(counted, 13, "every selected spec exactly once: {s}");
    assert!(
        u(&s["not_run"]) >= 1,
        "the hanging spec never finished: {s}"
    );
    // ginkgo's own names and classname, for every testcase of the suite.
    let mut selected: Vec<String> = (1..=12).map(steady).collect();
    selected.push(HANG.to_string());
    let cases = junit_cases(&suite.artifacts().join("junit.xml"));
    let ours: Vec<&(String, String, String)> = cases
        .iter()
        .filter(|(n, _, _)| n.contains("[Fixture]") || n.starts_with('('))
        .collect();
    for (name, classname, _) in &ours {
        assert!(
            selected.contains(name) || !name.starts_with('('),
            "a testcase without a real name: {name}"
        );
        assert_eq!(classname, DESCRIPTION, "{name}");
    }
    let junit = std::fs::read_to_string(suite.artifacts().join("junit.xml")).unwrap();
    assert!(!junit.contains("not named in"), "{junit}");
    assert!(!junit.contains("not run: not run"), "{junit}");
    assert!(
        junit.contains(HANG.trim_start_matches("[Fixture] ")),
        "{junit}"
    );
    assert_eq!(suite.leftover_containers(), "");
}

fn verdicts(summary: &Value) -> (Vec<String>, Vec<String>, u64, Value) {
    let s = &summary["suites"][0];
    (
        sorted_names(&s["failed_specs"]),
        sorted_names(&s["flaky_specs"]),
        u(&s["passed"]),
        summary["result"].clone(),
    )
}

#[test]
fn a_parallel_run_gives_the_same_verdicts_as_a_serial_one() {
    if !ready() {
        return;
    }
    let toml = |parallel: u32| {
        format!(
            "ginkgo = \"v2\"\nfocus = ['\\[Fixture\\]']\n{USUAL_SKIP}\nflake_attempts = 2\nreruns = 1\nparallel = {parallel}\ntimeout = \"5m\"\nstall_timeout = \"1m\"\n[env]\nFIXTURE_STEADY_SECONDS = \"1\"\n"
        )
    };
    let serial = suite("serial", &toml(1));
    let parallel = suite("parallel", &toml(2));
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| serial.run(&[]));
        let b = scope.spawn(|| parallel.run(&[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.0.status.code(), Some(1), "{}", stderr(&a.0));
    assert_eq!(b.0.status.code(), Some(1), "{}", stderr(&b.0));
    let record = std::fs::read_to_string(parallel.attempt_dir(0).join("container.json")).unwrap();
    assert!(record.contains("--nodes=2"), "{record}");
    let log = std::fs::read_to_string(parallel.attempt_dir(0).join("e2e.log")).unwrap();
    assert!(
        log.contains("Running in parallel across 2 processes"),
        "{log}"
    );
    assert_eq!(verdicts(&a.1), verdicts(&b.1));
    assert_eq!(verdicts(&a.1).0, sorted(&[FAIL]));
    assert_eq!(verdicts(&a.1).1, sorted(&[FLAKY, POLLUTED]));
}

#[test]
fn forty_megabytes_of_output_leave_a_complete_e2e_log() {
    if !ready() {
        return;
    }
    // This host's json-file driver keeps 10 MB x 3: reading `docker logs` would lose the head.
    let suite = suite(
        "loud",
        "ginkgo = \"v2\"\nfocus = ['\\[Loud\\]', 'steady spec 01 ']\ntimeout = \"5m\"\nstall_timeout = \"2m\"\n[env]\nFIXTURE_STEADY_SECONDS = \"1\"\nFIXTURE_LOUD_MB = \"40\"\n",
    );
    let (out, summary) = suite.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = &summary["suites"][0];
    assert_eq!(u(&s["passed"]), 2, "{s}");
    let log = std::fs::read(suite.attempt_dir(0).join("e2e.log")).unwrap();
    assert!(log.len() >= 40 << 20, "e2e.log holds {} bytes", log.len());
    let text = String::from_utf8_lossy(&log);
    let first = text.find("LOUD-FIRST-LINE").expect("first line present");
    let last = text.find("LOUD-LAST-LINE").expect("last line present");
    assert!(first < last);
    assert!(
        text.contains("Running Suite: Kubernetes e2e suite"),
        "head kept"
    );
    assert!(text.contains("SUCCESS!"), "tail kept");
}

#[test]
fn a_stalled_spec_is_stopped_quoting_the_real_last_line() {
    if !ready() {
        return;
    }
    let suite = suite(
        "stall",
        "ginkgo = \"v2\"\nfocus = ['\\[Hang\\]']\ntimeout = \"5m\"\nstall_timeout = \"8s\"\n",
    );
    let (out, summary) = suite.run(&["--stop-grace", "30s"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reason = summary["suites"][0]["incomplete_reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("stall_timeout"), "{reason}");
    // The line is quoted with escapes (`report-dir=\"/tmp/results\"` when the last line
    // holds quotes): take the whole quoted string and undo them.
    let quoted = Regex::new(r#"last output: "((?:[^"\\]|\\.)*)""#).unwrap();
    let line = quoted
        .captures(&reason)
        .unwrap_or_else(|| panic!("{reason}"))[1]
        .replace("\\\"", "\"")
        .replace("\\\\", "\\");
    let log = std::fs::read_to_string(suite.attempt_dir(0).join("e2e.log")).unwrap();
    assert!(
        log.contains(line.trim()),
        "{line:?} is not from e2e.log:\n{log}"
    );
    assert_eq!(summary["suites"][0]["not_run"], 1);
}

#[test]
fn fail_on_flaky_is_one_verdict_in_exit_code_json_and_last_line() {
    if !ready() {
        return;
    }
    let suite = suite(
        "flaky",
        "ginkgo = \"v2\"\nfocus = ['flaky behaviour']\nflake_attempts = 2\ntimeout = \"5m\"\n",
    );
    let (out, summary) = suite.run(&["--fail-on-flaky"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(summary["result"], "failed");
    assert_eq!(summary["suites"][0]["result"], "failed");
    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(suite.artifacts().join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk["result"], "failed");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("result: FAILED"),
        "{text}"
    );
    // Without the flag the same run passes.
    let (out, summary) = suite.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary["result"], "passed");
}
