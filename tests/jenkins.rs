//! The Jenkinsfile parses as Groovy, and the shell it calls runs the real binary.

mod common;

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn groovy_present() -> bool {
    let ok = Command::new("groovy")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new("sh")
            .args(["-c", "command -v groovy"])
            .output()
            .is_ok_and(|o| o.status.success());
    common::require(
        ok,
        "groovy",
        "ci/check-jenkinsfile.sh installs it from Debian",
    )
}

#[test]
fn jenkinsfile_parses_and_a_syntax_error_is_caught() {
    if !groovy_present() {
        return;
    }
    let check = format!("{ROOT}/ci/check-jenkinsfile.sh");
    let ok = Command::new("bash")
        .arg(&check)
        .arg(format!("{ROOT}/Jenkinsfile"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("Jenkinsfile");
    let text = std::fs::read_to_string(format!("{ROOT}/Jenkinsfile")).unwrap();
    std::fs::write(&broken, text.replacen("stages {", "stages {{", 1)).unwrap();
    let bad = Command::new("bash")
        .arg(&check)
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("syntax error"));
}

#[test]
fn jenkinsfile_uses_the_conventions_the_pipeline_depends_on() {
    let text = std::fs::read_to_string(format!("{ROOT}/Jenkinsfile")).unwrap();
    for needle in [
        "skipPublishingChecks: true",
        "disableConcurrentBuilds()",
        "withCredentials",
        "archiveArtifacts",
        "ci/jenkins-e2e.sh",
        "ci/jenkins-promote.sh",
        "cron(",
    ] {
        assert!(text.contains(needle), "Jenkinsfile lacks {needle:?}");
    }
}

#[test]
fn jenkins_e2e_stage_script_runs_the_binary() {
    if !common::require(
        common::docker_socket(),
        "a Docker socket",
        "start Docker or set DOCKER_HOST",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(format!("{ROOT}/ci/jenkins-e2e.sh"))
        .env("E2E_GATE_BIN", env!("CARGO_BIN_EXE_e2e-gate"))
        .env("E2E_GATE_PROFILE", "default")
        .env("E2E_GATE_SUITES", "custom")
        .env("ARTIFACTS", dir.path())
        .env_remove("KUBECONFIG")
        .env_remove("GIT_COMMIT")
        .env_remove("CHANGE_ID")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["result"], "passed");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("e2e-gate runner"),
        "the gate's steps are in the JUnit"
    );
}
