//! A temporary suites directory holding one suite on a given image, and the real binary run
//! against it — what the Docker-backed runner tests share.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_e2e-gate");

/// One suite file in a temporary suites directory; artifacts go beside it.
pub struct SuiteDir {
    pub dir: tempfile::TempDir,
    /// The suite's (unique) name.
    pub suite: String,
}

impl SuiteDir {
    /// `name = "<prefix>-<tag>-<pid>"`, `image`, the conformance-image contract, then `toml`.
    pub fn create(image: &str, prefix: &str, tag: &str, toml: &str) -> SuiteDir {
        let dir = tempfile::tempdir().unwrap();
        let suite = format!("{prefix}-{tag}-{}", std::process::id());
        std::fs::create_dir(dir.path().join("suites")).unwrap();
        std::fs::write(
            dir.path().join("suites/s.toml"),
            format!(
                "name = \"{suite}\"\nimage = \"{image}\"\ncontract = \"conformance-image\"\n{toml}\n"
            ),
        )
        .unwrap();
        SuiteDir { dir, suite }
    }

    pub fn artifacts(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }

    pub fn attempt_dir(&self, n: u32) -> PathBuf {
        self.artifacts()
            .join(&self.suite)
            .join(format!("attempt-{n}"))
    }

    /// `e2e-gate --suite <suite> … --format json`.
    pub fn command(&self, extra: &[&str]) -> Command {
        let mut c = self.command_with_format(extra);
        c.args(["--format", "json"]);
        c
    }

    /// `e2e-gate --suite <suite> …` with the default (human) format.
    pub fn command_with_format(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--suites-dir")
            .arg(self.dir.path().join("suites"))
            .args(["--suite", &self.suite, "--artifacts"])
            .arg(self.artifacts())
            .args(extra)
            .env_remove("KUBECONFIG")
            .env_remove("ARTIFACTS")
            .env("E2E_GATE_LOG", "info");
        c
    }

    /// Runs [`SuiteDir::command`]; the JSON summary from stdout.
    pub fn run(&self, extra: &[&str]) -> (Output, Value) {
        let out = self.command(extra).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a JSON summary ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out, summary)
    }

    /// Containers of this suite still present (`docker ps -a`), one name per line.
    pub fn leftover_containers(&self) -> String {
        let out = Command::new("docker")
            .args(["ps", "-a", "--filter"])
            .arg(format!("label=e2e-gate.suite={}", self.suite))
            .args(["--format", "{{.Names}}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}
