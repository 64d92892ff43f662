//! `report` over many result directories holds one suite at a time (hardening item 14: 1,113
//! directories took 3.8 GB, every suite kept until the end). Alone in its test binary: the
//! peak RSS of child processes (`getrusage(RUSAGE_CHILDREN)`) must see only this test's
//! children.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_e2e-gate");

/// A ginkgo-v2-shaped JUnit with `n` specs.
fn junit(n: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"0\">\n  <testsuite name=\"Kubernetes e2e suite\">\n",
    );
    for i in 0..n {
        let status = if i % 10 == 0 { "passed" } else { "skipped" };
        s.push_str(&format!(
            "    <testcase name=\"[It] [sig-node] Pods spec number {i} should do the thing it does [Conformance]\" classname=\"Kubernetes e2e suite\" status=\"{status}\" time=\"0.{i:03}\">{}</testcase>\n",
            if status == "skipped" { "<skipped message=\"skipped\"></skipped>" } else { "" }
        ));
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

fn peak_rss_of_children_kib() -> i64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    assert_eq!(rc, 0, "getrusage");
    u.ru_maxrss
}

fn report(dirs: &[std::path::PathBuf], out: &Path) {
    let st = Command::new(BIN)
        .args(["report", "--format", "junit", "-o"])
        .arg(out)
        .args(dirs)
        .env("E2E_GATE_LOG", "warn")
        .output()
        .expect("report runs");
    assert!(
        st.status.code().is_some_and(|c| c <= 1),
        "report failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

#[test]
fn report_over_many_directories_holds_one_suite_at_a_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("junit.xml");
    std::fs::write(&file, junit(4000)).expect("fixture");
    let dirs: Vec<_> = (0..250)
        .map(|i| {
            let d = tmp.path().join(format!("r{i:03}"));
            std::fs::create_dir(&d).expect("dir");
            std::os::unix::fs::symlink(&file, d.join("junit_01.xml")).expect("link");
            d
        })
        .collect();
    report(&dirs[..1], &tmp.path().join("one.xml"));
    let one = peak_rss_of_children_kib();
    report(&dirs, &tmp.path().join("all.xml"));
    let all = peak_rss_of_children_kib();
    // Every suite kept: ~2 MB each, 500 MB for 250. One at a time: flat.
    assert!(
        all < one + 64 * 1024,
        "peak RSS {} MiB for 250 suites against {} MiB for one",
        all / 1024,
        one / 1024
    );
    let text = std::fs::read_to_string(tmp.path().join("all.xml")).expect("written");
    assert_eq!(
        text.matches("<testsuite ").count(),
        250,
        "every suite written"
    );
    assert!(text.starts_with("<?xml") && text.trim_end().ends_with("</testsuites>"));
}
