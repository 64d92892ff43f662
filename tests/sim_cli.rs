//! `e2e-gate cluster up|down|status --provider sim` through the real binary:
//! background process, kubeconfig, second `up` refused, stale pid detected,
//! bad topology files named with file and field.

use std::path::Path;
use std::process::{Command, Output};

fn gate(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_e2e-gate"))
        .args(args)
        .env("E2E_GATE_STATE_DIR", state)
        .env("E2E_GATE_LOG", "warn")
        .output()
        .expect("run e2e-gate")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sim")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn up_status_second_up_refused_down() {
    let state = tempfile::tempdir().unwrap();
    let kc = state.path().join("kc.yaml");
    let topo = fixture("default.toml");
    let out = gate(
        state.path(),
        &[
            "cluster",
            "up",
            "--name",
            "t1",
            "--topology",
            &topo,
            "--kubeconfig-out",
            kc.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let kubeconfig = std::fs::read_to_string(&kc).unwrap();
    assert!(
        kubeconfig.contains("server: http://127.0.0.1:"),
        "{kubeconfig}"
    );
    let pid: u32 = std::fs::read_to_string(state.path().join("t1/pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let out = gate(state.path(), &["cluster", "status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "t1");
    assert_eq!(rows[0]["running"], true);
    assert_eq!(rows[0]["pid"], pid);
    // The human table has a header (regression: bare rows).
    let out = gate(state.path(), &["cluster", "status"]);
    let table = String::from_utf8_lossy(&out.stdout);
    let mut lines = table.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("NAME") && h.contains("STATE")),
        "{table}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|r| r.starts_with("t1") && r.contains("running")),
        "{table}"
    );

    let out = gate(state.path(), &["cluster", "up", "--name", "t1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cluster \"t1\" is already running"),
        "{}",
        text(&out)
    );

    // Without --kubeconfig-out the kubeconfig goes to stdout.
    let out = gate(
        state.path(),
        &["cluster", "up", "--name", "t2", "--time-scale", "0.01"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("current-context: t2"));

    let out = gate(
        state.path(),
        &["cluster", "up", "--name", "t3", "--time-scale", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--time-scale must be a number > 0"),
        "{}",
        text(&out)
    );

    for name in ["t1", "t2"] {
        let out = gate(state.path(), &["cluster", "down", "--name", name]);
        assert!(out.status.success(), "{}", text(&out));
    }
    assert!(!state.path().join("t1").exists());
    // An exited server not yet reaped by its parent is a zombie: gone, as far as we care.
    assert!(
        !e2e_gate::cluster::sim::process::alive(pid),
        "server process still alive"
    );
    // A second `down` is not an error (regression: it exited 2).
    let out = gate(state.path(), &["cluster", "down", "--name", "t1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("\"t1\" is not running") && text(&out).contains("nothing to take down"),
        "{}",
        text(&out)
    );
}

#[test]
fn stale_pid_file_is_detected_and_replaced() {
    let state = tempfile::tempdir().unwrap();
    // A pid that surely is gone: a child we already reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::create_dir_all(state.path().join("old")).unwrap();
    std::fs::write(state.path().join("old/pid"), format!("{dead}\n")).unwrap();
    let out = gate(state.path(), &["cluster", "status", "--name", "old"]);
    assert!(text(&out).contains("stale pid file"), "{}", text(&out));
    let out = gate(state.path(), &["cluster", "up", "--name", "old"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stale pid file"), "{}", text(&out));
    let out = gate(state.path(), &["cluster", "down", "--name", "old"]);
    assert!(out.status.success(), "{}", text(&out));
    // A live pid that is not a simulator (recycled pid) is stale too and never signalled.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::create_dir_all(state.path().join("other")).unwrap();
    std::fs::write(
        state.path().join("other/pid"),
        format!("{}\n", sleeper.id()),
    )
    .unwrap();
    let out = gate(state.path(), &["cluster", "status", "--name", "other"]);
    assert!(text(&out).contains("stale pid file"), "{}", text(&out));
    let out = gate(state.path(), &["cluster", "down", "--name", "other"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the unrelated process was signalled"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn bad_topology_names_file_and_field() {
    let state = tempfile::tempdir().unwrap();
    let bad = state.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[pools]]\nname = \"p\"\nzones = [\"a\"]\nmemory = \"lots\"\n",
    )
    .unwrap();
    let out = gate(
        state.path(),
        &[
            "cluster",
            "up",
            "--name",
            "b",
            "--topology",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("bad.toml") && t.contains("pools[0].memory") && t.contains("\"16Gi\""),
        "{t}"
    );
    assert!(!state.path().join("b").exists());
}

#[test]
fn cluster_names_that_could_be_paths_are_refused_and_nothing_is_deleted() {
    // Regression: `cluster down --name /some/dir` ran remove_dir_all on any directory holding a
    // file named `pid`; `cluster up --name ../x` put state outside the state directory.
    let state = tempfile::tempdir().unwrap();
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("pid"), "1\n").unwrap();
    std::fs::write(victim.path().join("precious"), "keep me").unwrap();
    let path = victim.path().display().to_string();
    for args in [
        vec!["cluster", "down", "--name", path.as_str()],
        vec!["cluster", "status", "--name", path.as_str()],
        vec!["cluster", "up", "--name", "../x"],
        vec!["gate", "--cluster-name", "../x"],
    ] {
        let out = gate(state.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("invalid cluster name"),
            "{}",
            text(&out)
        );
    }
    assert!(victim.path().join("precious").exists());
    assert!(victim.path().join("pid").exists());
    assert!(!state.path().parent().unwrap().join("x").exists());
}

#[test]
fn down_removes_only_the_files_the_simulator_wrote() {
    let state = tempfile::tempdir().unwrap();
    let topo = fixture("default.toml");
    let kc = state.path().join("kc.yaml").display().to_string();
    let out = gate(
        state.path(),
        &[
            "cluster",
            "up",
            "--name",
            "keep",
            "--topology",
            &topo,
            "--kubeconfig-out",
            &kc,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = state.path().join("keep");
    std::fs::write(dir.join("notes.txt"), "a user's file").unwrap();
    let out = gate(state.path(), &["cluster", "down", "--name", "keep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        dir.join("notes.txt").exists(),
        "a file e2e-gate did not write stays"
    );
    assert!(!dir.join("pid").exists() && !dir.join("state.json").exists());
}
