//! What the integration tests share: deciding whether a real dependency is there.
//!
//! On a user's clone a missing dependency (no Docker, fixture image not built, no kubectl)
//! skips the test with a visible `SKIP:` line. In CI (`CI` set) the same absence fails the test:
//! CI installs and builds everything, so a skip there would hide that nothing was tested.

#![allow(dead_code)] // each test binary uses a part of this module

pub mod aws;
pub mod aws_mirror;
pub mod sim;
pub mod suite_dir;

use std::path::Path;
use std::process::{Command, Stdio};

/// `true` when the test may go on. Without `what`, it skips (returns `false`) on a user's
/// machine and panics in CI, naming how to get it.
pub fn require(available: bool, what: &str, how: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{what} is missing and CI is set, so this test may not skip: {how}");
    }
    eprintln!("SKIP: {what} is missing ({how})");
    false
}

/// A Docker socket is reachable (`/var/run/docker.sock` or `DOCKER_HOST`).
pub fn docker_socket() -> bool {
    Path::new("/var/run/docker.sock").exists() || std::env::var_os("DOCKER_HOST").is_some()
}

/// Docker is there and `image` is present locally.
pub fn docker_image(image: &str, how: &str) -> bool {
    if !require(
        docker_socket(),
        "a Docker socket",
        "start Docker or set DOCKER_HOST",
    ) {
        return false;
    }
    let present = Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    require(present, &format!("image {image}"), how)
}

/// The JSON report `upgrade apply --report` wrote: `replaced` nodes replaced, and each of
/// `calls` counted in `cloud_api_calls` (the cloud was driven through those calls).
pub fn assert_report_replaced_through(report: &Path, replaced: u64, calls: &[&str]) {
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).expect("report")).expect("JSON");
    assert_eq!(r["nodes_replaced"], replaced, "{r:#}");
    let counted = r["cloud_api_calls"].as_object().expect("cloud_api_calls");
    for call in calls {
        assert!(
            counted.contains_key(*call),
            "{call} never called: {counted:?}"
        );
    }
}
