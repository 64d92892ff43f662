//! The real binary: help, suite listing, configuration errors and their exit codes.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_e2e-gate");

fn suites_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/suites").to_string()
}

#[test]
fn help_teaches_examples_and_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--suite",
        "--flake-attempts",
        "--reruns",
        "--stall-timeout",
        "Exit codes:",
        "130",
        "Examples:",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn suites_list_shows_shipped_suites() {
    let out = Command::new(BIN)
        .args(["suites", "list", "--suites-dir", &suites_dir()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["conformance", "statefulset", "custom"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{text}");
    }
    let out = Command::new(BIN)
        .args([
            "suites",
            "list",
            "--format",
            "json",
            "--suites-dir",
            &suites_dir(),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
    // Each image says whether it is present (regression: nothing told a user before a run).
    assert!(v[0].get("image_present").is_some(), "{v}");
    assert!(
        text.lines()
            .next()
            .is_some_and(|h| h.starts_with("NAME") && h.contains("IMAGE?")),
        "{text}"
    );
    // The suites directory is found from a subdirectory of the repository too.
    let out = Command::new(BIN)
        .args(["suites", "list"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/cli"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("conformance"));
}

#[test]
fn bad_suite_file_is_exit_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "name = \"bad\"\nimage = \"i\"\ncontract = \"conformance-image\"\nfocus = ['(unclosed']\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--suite", "bad", "--suites-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml") && stderr.contains("focus[0]"),
        "{stderr}"
    );
}

#[test]
fn unknown_suite_is_exit_2_listing_known_ones() {
    let out = Command::new(BIN)
        .args(["--suite", "nope", "--suites-dir", &suites_dir()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nope") && stderr.contains("conformance"),
        "{stderr}"
    );
}

#[test]
fn unreachable_docker_daemon_is_an_infrastructure_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "--suite",
            "custom",
            "--suites-dir",
            &suites_dir(),
            "--artifacts",
        ])
        .arg(dir.path().join("a"))
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no-such.sock", dir.path().display()),
        )
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("Docker daemon"), "{stderr}");
}

#[test]
fn version_completions_and_man_page() {
    // What users of a mature CLI expect (regression: none of them existed).
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && v.starts_with("e2e-gate 0.") && v.contains('('),
        "{v}"
    );
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef e2e-gate"),
        ("fish", "complete -c e2e-gate"),
    ] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(needle),
            "{shell}: {text}"
        );
        assert!(
            text.contains("upgrade") && text.contains("gate"),
            "{shell} completes subcommands"
        );
    }
    let out = Command::new(BIN).arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && page.contains(".TH e2e-gate 1") && page.contains("promote"),
        "{page}"
    );
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn help_gives_an_overview_and_teaches_the_gate() {
    // Regressions: plain `e2e-gate` said "--suite required"; `gate --help` described neither
    // the upgrade nor profiles nor E2E_GATE_* variables; `--timeout banana` gave no example.
    let out = Command::new(BIN).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Commands:") && text.contains("gate") && text.contains("Examples:"),
        "{text}"
    );
    assert!(
        !text.contains("required arguments were not provided"),
        "{text}"
    );
    let out = Command::new(BIN).args(["gate", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "upgrade",
        "availability",
        "Profiles",
        "E2E_GATE_TARGET_VERSION",
        "--no-upgrade",
        "Exit codes",
    ] {
        assert!(
            help.contains(needle),
            "gate --help lacks {needle:?}:\n{help}"
        );
    }
    let out = Command::new(BIN)
        .args(["--suite", "x", "--timeout", "banana"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("banana") && err.contains("\"90s\""), "{err}");
}
