//! Harness overhead: `e2e-gate --suite <fixture suite>` versus a plain `docker run` of the same
//! image with the same contract variables, interleaved in one run. Prints medians and the
//! difference; the target is under 1 s of overhead for a short suite.
//!
//! Measured on both fixture images (ginkgo v1 and ginkgo v2). Needs Docker and the images
//! (`ci/build-fixture-image.sh`, `ci/build-fixture-image-v2.sh`). Run:
//! `cargo bench --bench runner_overhead`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// (image, its ginkgo major version): the same spec name exists in both fixture suites.
const IMAGES: &[(&str, &str)] = &[
    ("e2e-gate-fixture:latest", "v1"),
    ("e2e-gate-fixture-v2:latest", "v2"),
];
const FOCUS: &str = r"\[Fixture\] basics passes instantly";
const ROUNDS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    let took = start.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    took
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for (image, ginkgo) in IMAGES {
        bench(image, ginkgo);
    }
}

fn bench(image: &str, ginkgo: &str) {
    let have_image = Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_image {
        eprintln!(
            "runner_overhead: skipped, image {image} missing (run ci/build-fixture-image.sh and ci/build-fixture-image-v2.sh)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let suites = dir.path().join("suites");
    std::fs::create_dir(&suites).unwrap();
    std::fs::write(
        suites.join("bench.toml"),
        format!("name = \"bench\"\nimage = \"{image}\"\ncontract = \"conformance-image\"\nginkgo = \"{ginkgo}\"\nfocus = ['{FOCUS}']\n"),
    )
    .unwrap();
    let results = dir.path().join("plain-results");
    std::fs::create_dir(&results).unwrap();

    let plain = || {
        let mut c = Command::new("docker");
        c.args(["run", "--rm", "--network", "host"])
            .args([
                "-e",
                &format!("E2E_FOCUS={FOCUS}"),
                "-e",
                "E2E_SKIP=",
                "-e",
                "E2E_PARALLEL=n",
            ])
            .args([
                "-e",
                "RESULTS_DIR=/tmp/results",
                "-v",
                &format!("{}:/tmp/results", results.display()),
            ])
            .arg(image);
        c
    };
    let gate = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_e2e-gate"));
        c.arg("--suites-dir")
            .arg(&suites)
            .args(["--suite", "bench", "--artifacts"])
            .arg(dir.path().join("artifacts"))
            .env_remove("KUBECONFIG");
        c
    };
    // warm-up: page cache, image layers
    timed(plain());
    timed(gate());
    let (mut p, mut g) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        p.push(timed(plain()));
        g.push(timed(gate()));
    }
    let (pm, gm) = (median(p), median(g));
    let overhead = gm.saturating_sub(pm);
    println!("runner_overhead: {image} (ginkgo {ginkgo}), {ROUNDS} interleaved rounds, one short fixture spec");
    println!(
        "  docker run (plain)        median {:>8.3} s",
        pm.as_secs_f64()
    );
    println!(
        "  e2e-gate --suite bench    median {:>8.3} s",
        gm.as_secs_f64()
    );
    println!(
        "  harness overhead          {:>8.3} s  (target < 1 s: {})",
        overhead.as_secs_f64(),
        if overhead < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}
