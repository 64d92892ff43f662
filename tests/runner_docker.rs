//! The real binary against the real Docker engine and the real ginkgo fixture image
//! (`ci/build-fixture-image.sh`). Skips only when there is no Docker socket.

mod common;

use regex::Regex;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "e2e-gate-fixture:latest";

/// Every spec of the fixture suite, as ginkgo v1 writes it in JUnit.
const PASSING: &[&str] = &[
    "[Fixture] basics passes instantly",
    "[Fixture] basics waits about one second then passes",
    "[Fixture] basics nested context deeper context passes at depth three",
    r"[Fixture] basics handles weird names (a+b) [x|y] *?. ^$ {1,2} \d",
    "[Fixture] pollution polluter leaves state behind",
];
const FAIL: &str = "[Fixture] failures always fails [Fail]";
const FLAKY: &str = "[Fixture] failures flaky behaviour fails on the first attempt and passes on the second [Flaky]";
const POLLUTED: &str = "[Fixture] pollution passes only when run alone [Polluted]";
const HANG: &str = "[Fixture] hang blocks until the process is signalled [Hang]";

fn docker_ready() -> bool {
    common::docker_image(IMAGE, "run ci/build-fixture-image.sh (ci/test.sh does)")
}

use common::suite_dir::SuiteDir as Fixture;

impl Fixture {
    /// A suites dir holding one suite on the v1 fixture image; `extra` is appended TOML.
    fn new(tag: &str, extra: &str) -> Fixture {
        Fixture::with_ginkgo(tag, "ginkgo = \"v1\"\n", extra)
    }

    /// [`Fixture::new`] with its own `ginkgo` line (empty: left at the default).
    fn with_ginkgo(tag: &str, ginkgo: &str, extra: &str) -> Fixture {
        Fixture::create(IMAGE, "fx", tag, &format!("{ginkgo}{extra}"))
    }
}

fn suite0(summary: &Value) -> &Value {
    &summary["suites"][0]
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .map(String::from)
                .unwrap_or_else(|| s["name"].as_str().unwrap().to_string())
        })
        .collect();
    n.sort();
    n
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Specs that ran (passed or failed) in one attempt's raw ginkgo v1 JUnit.
fn ran_in_junit(path: &Path) -> Vec<String> {
    let xml = std::fs::read_to_string(path).unwrap();
    let case = Regex::new(r#"(?s)<testcase name="([^"]*)"[^>]*?(/>|>(.*?)</testcase>)"#).unwrap();
    let mut ran: Vec<String> = case
        .captures_iter(&xml)
        .filter(|c| !c.get(3).is_some_and(|b| b.as_str().contains("<skipped")))
        .map(|c| {
            c[1].replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#34;", "\"")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
        })
        .collect();
    ran.sort();
    ran.dedup();
    ran
}

#[test]
fn focus_and_skip_select_exactly_the_expected_specs() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new(
        "select",
        "focus = ['\\[Fixture\\] basics', '\\[Fixture\\] pollution polluter']\nskip = ['\\[Slow\\]']\n",
    );
    let (out, summary) = fx.run(&[]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = suite0(&summary);
    assert_eq!(s["passed"], PASSING.len(), "{s}");
    assert_eq!(s["failed"], 0);
    assert_eq!(s["flaky"], 0);
    assert_eq!(summary["result"], "passed");
    assert_eq!(
        ran_in_junit(&fx.attempt_dir(0).join("results/junit_01.xml")),
        sorted(PASSING)
    );
    // artifacts: live log, raw JUnit, combined JUnit, summary
    assert!(std::fs::read_to_string(fx.attempt_dir(0).join("e2e.log"))
        .unwrap()
        .contains("Ran 5 of"));
    assert!(fx.artifacts().join("junit.xml").is_file());
    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(fx.artifacts().join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk, summary);
    assert_eq!(fx.leftover_containers(), "");
}

#[test]
fn flake_attempts_mark_a_spec_flaky_not_failed() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new("flaky", "focus = ['\\[Flaky\\]']\nflake_attempts = 2\n");
    let (out, summary) = fx.run(&[]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = suite0(&summary);
    assert_eq!(
        (
            s["passed"].as_u64(),
            s["flaky"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(0), Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(names(&s["flaky_specs"]), vec![FLAKY.to_string()]);
    let junit = std::fs::read_to_string(fx.artifacts().join("junit.xml")).unwrap();
    assert!(junit.contains("<flakyFailure"), "{junit}");
    // --fail-on-flaky turns the same run into a failure
    let (out, _) = fx.run(&["--fail-on-flaky"]);
    assert_eq!(code(&out), 1);
}

fn verdicts(summary: &Value) -> (Vec<String>, Vec<String>, Value, Value) {
    let s = suite0(summary);
    (
        names(&s["failed_specs"]),
        names(&s["flaky_specs"]),
        s["passed"].clone(),
        summary["result"].clone(),
    )
}

#[test]
fn a_v1_image_gives_the_same_verdicts_whatever_the_suite_file_says_of_ginkgo() {
    if !docker_ready() {
        return;
    }
    // Regression: a v1 image whose suite file left `ginkgo` at its default got v2 reruns that
    // selected nothing, and the specs were still reported failed.
    let toml = "focus = ['\\[Fixture\\] (basics|failures|pollution)']\nskip = ['\\[Slow\\]']\nflake_attempts = 2\nreruns = 1\n";
    let declared = Fixture::new("declared", toml);
    let undeclared = Fixture::with_ginkgo("undeclared", "", toml);
    // A wrong declaration (no v2-only flag in play, so the image still starts).
    let wrong = Fixture::with_ginkgo(
        "wrong",
        "ginkgo = \"v2\"\n",
        &toml.replace("flake_attempts = 2", "flake_attempts = 1"),
    );
    let (a, b, c) = std::thread::scope(|scope| {
        let a = scope.spawn(|| declared.run(&[]));
        let b = scope.spawn(|| undeclared.run(&[]));
        let c = scope.spawn(|| wrong.run(&[]));
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    for (out, _) in [&a, &b, &c] {
        assert_eq!(code(out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(verdicts(&a.1), verdicts(&b.1));
    assert_eq!(names(&suite0(&b.1)["failed_specs"]), vec![FAIL.to_string()]);
    assert_eq!(
        names(&suite0(&b.1)["flaky_specs"]),
        sorted(&[FLAKY, POLLUTED])
    );
    let selected = Regex::new(r"Will run [1-9]\d* of 14 specs").unwrap();
    for fx in [&declared, &undeclared, &wrong] {
        let rerun = std::fs::read_to_string(fx.attempt_dir(1).join("e2e.log")).unwrap();
        assert!(
            selected.is_match(&rerun),
            "{}: the rerun selected nothing:\n{rerun}",
            fx.suite
        );
    }
    // The wrong declaration is reported, and the reruns used what the image really runs.
    let stderr = String::from_utf8_lossy(&c.0.stderr);
    assert!(
        stderr.contains("the suite file says ginkgo = \"v2\" but the image ran ginkgo v1"),
        "{stderr}"
    );
    // One attempt per process: the flaky spec fails in the fresh container too (EXPECTED.md).
    assert_eq!(names(&suite0(&c.1)["failed_specs"]), sorted(&[FAIL, FLAKY]));
    assert_eq!(
        names(&suite0(&c.1)["flaky_specs"]),
        vec![POLLUTED.to_string()]
    );
}

#[test]
fn reruns_run_exactly_the_failed_specs_in_a_fresh_container() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new(
        "rerun",
        "focus = ['\\[Fixture\\] (basics|failures|pollution)']\nskip = ['\\[Slow\\]']\nflake_attempts = 1\nreruns = 1\n",
    );
    let (out, summary) = fx.run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // [Fail] fails everywhere; [Flaky] fails the first attempt of every process; [Polluted]
    // fails after the polluter but passes alone in the rerun container.
    assert_eq!(code(&out), 1, "stderr: {stderr}");
    let s = suite0(&summary);
    assert_eq!(names(&s["failed_specs"]), sorted(&[FAIL, FLAKY]), "{s}");
    assert_eq!(names(&s["flaky_specs"]), sorted(&[POLLUTED]), "{s}");
    assert_eq!(s["passed"], PASSING.len());

    // What the rerun container was given selects exactly the failed set, and nothing else ran.
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(fx.attempt_dir(1).join("container.json")).unwrap(),
    )
    .unwrap();
    let focus = Regex::new(record["env"]["E2E_FOCUS"].as_str().unwrap()).unwrap();
    assert_eq!(record["env"]["E2E_SKIP"], "");
    let failed_first = sorted(&[FAIL, FLAKY, POLLUTED]);
    let all: Vec<&str> = PASSING
        .iter()
        .copied()
        .chain([FAIL, FLAKY, POLLUTED, HANG])
        .collect();
    let matched: Vec<String> = all
        .iter()
        .filter(|n| focus.is_match(&format!("Kubernetes e2e suite [Top Level] {n}")))
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        sorted(&matched.iter().map(String::as_str).collect::<Vec<_>>()),
        failed_first
    );
    assert_eq!(
        ran_in_junit(&fx.attempt_dir(1).join("results/junit_01.xml")),
        failed_first
    );
    assert!(!fx.attempt_dir(2).exists(), "one rerun round only");

    // Every attempt is kept in the combined JUnit: the polluted spec carries its first failure.
    let junit = std::fs::read_to_string(fx.artifacts().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<rerunFailure"),
        "failed specs keep their rerun attempts"
    );
    assert!(
        junit.contains("<flakyFailure"),
        "flaky spec keeps its failed attempt"
    );
    assert_eq!(fx.leftover_containers(), "");
}

#[test]
fn stall_timeout_stops_a_hanging_spec_and_results_are_complete() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new(
        "stall",
        "focus = ['\\[Hang\\]', 'passes instantly']\nstall_timeout = \"4s\"\ntimeout = \"5m\"\n",
    );
    let started = Instant::now();
    let (out, summary) = fx.run(&["--stop-grace", "3s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code(&out), 3, "incomplete results exit 3; stderr: {stderr}");
    assert!(stderr.contains("stall_timeout"), "{stderr}");
    let s = suite0(&summary);
    assert_eq!(s["incomplete"], true);
    assert_eq!(summary["result"], "incomplete");
    // ginkgo v1 shuffles top-level containers, so the passing spec may or may not have run
    // before the hang; either way both selected specs are accounted for, none as skipped.
    let accounted = s["passed"].as_u64().unwrap()
        + s["failed"].as_u64().unwrap()
        + s["not_run"].as_u64().unwrap();
    assert_eq!(accounted, 2, "{s}");
    assert!(
        s["not_run"].as_u64().unwrap() >= 1,
        "the hanging spec never finished: {s}"
    );
    let junit = std::fs::read_to_string(fx.artifacts().join("junit.xml")).unwrap();
    assert!(
        junit.contains("blocks until the process is signalled"),
        "{junit}"
    );
    assert_eq!(fx.leftover_containers(), "");
}

#[test]
fn sigterm_removes_the_container_and_writes_results() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new(
        "sigterm",
        "focus = ['\\[Hang\\]', 'passes instantly']\nstall_timeout = \"10m\"\n",
    );
    let child = fx
        .command(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fx.leftover_containers().is_empty() {
        assert!(Instant::now() < deadline, "container never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    // let ginkgo reach the hanging spec
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 130, "stderr: {stderr}");
    assert_eq!(fx.leftover_containers(), "", "a container was left behind");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(suite0(&summary)["incomplete"], true);
    assert!(fx.artifacts().join("junit.xml").is_file());
    assert!(fx.artifacts().join("summary.json").is_file());
}

#[test]
fn missing_image_exits_3_naming_the_image() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new("noimage", "");
    std::fs::write(
        fx.dir.path().join("suites/s.toml"),
        format!("name = \"{}\"\nimage = \"e2e-gate-no-such-image:never\"\ncontract = \"conformance-image\"\n", fx.suite),
    )
    .unwrap();
    let out = fx.command(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 3, "{stderr}");
    assert!(stderr.contains("e2e-gate-no-such-image:never"), "{stderr}");
    assert!(
        stderr.contains("docker pull") && stderr.contains("--pull"),
        "{stderr}"
    );
}

#[test]
fn dry_run_lists_specs_and_runs_nothing() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new("dry", "focus = ['\\[Fixture\\] basics']\n");
    let out = fx.command_with_format(&["--dry-run"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, n)| n))
        .collect();
    assert_eq!(sorted(&listed), sorted(&PASSING[..4]), "{stdout}");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(fx.artifacts().join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(suite0(&summary)["dry_run"], true);
    assert_eq!(
        suite0(&summary)["passed"],
        0,
        "a dry run is never reported as passes"
    );
}

#[test]
fn kubeconfig_is_mounted_read_only() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new("kubeconfig", "focus = ['kubeconfig is mounted']\n");
    let kc = fx.dir.path().join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\n").unwrap();
    let (out, summary) = fx.run(&["--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(suite0(&summary)["passed"], 1, "{summary}");
    // without one, the spec skips itself
    let (_, summary) = fx.run(&[]);
    assert_eq!(suite0(&summary)["passed"], 0, "{summary}");
}

#[test]
fn jobs_run_suites_concurrently_each_in_its_own_container() {
    if !docker_ready() {
        return;
    }
    let fx = Fixture::new("jobs-a", "focus = ['waits about one second']\n");
    let second = format!("{}-b", fx.suite);
    std::fs::write(
        fx.dir.path().join("suites/fx-b.toml"),
        format!("name = \"{second}\"\nimage = \"{IMAGE}\"\ncontract = \"conformance-image\"\nginkgo = \"v1\"\nfocus = ['waits about one second']\n"),
    )
    .unwrap();
    let (out, summary) = fx.run(&["--suite", &second, "--jobs", "2"]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let suites: Vec<&str> = summary["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        suites,
        vec![fx.suite.as_str(), second.as_str()],
        "order follows the command line"
    );
    // Both containers were alive at the same time: their attempt logs overlap in time.
    let started = |suite: &str| {
        std::fs::metadata(fx.artifacts().join(suite).join("attempt-0/container.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let finished = |suite: &str| {
        std::fs::metadata(fx.artifacts().join(suite).join("attempt-0/e2e.log"))
            .unwrap()
            .modified()
            .unwrap()
    };
    assert!(
        started(&second) < finished(&fx.suite) && started(&fx.suite) < finished(&second),
        "suites ran one after the other"
    );
    let junit = std::fs::read_to_string(fx.artifacts().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 2, "{junit}");
}
