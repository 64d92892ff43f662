//! The `--cloud aws` rig: moto's AWS server on 127.0.0.1 (installed by `ci/install-moto.sh`
//! into `target/moto-venv`), the groups `ci/aws-rig/cluster.py` makes in it, and a plain read
//! of them through boto3 — not through e2e-gate's AWS code — for the tests to check.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The region the rig's groups are in.
pub const REGION: &str = "us-east-1";

fn venv_bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/moto-venv/bin")
        .join(name)
}

/// A running moto server, stopped on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto's server on a free port; `None` (after a visible SKIP, or a panic when CI
    /// is set) when it is not installed.
    pub fn start() -> Option<Moto> {
        let server = venv_bin("moto_server");
        if !super::require(
            server.exists(),
            "moto's server (target/moto-venv)",
            "run `bash ci/install-moto.sh` (PyPI moto[server] in a virtual environment)",
        ) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    /// Runs `ci/aws-rig/cluster.py ARGS --endpoint URL` and parses what it prints.
    pub fn rig(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(venv_bin("python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/ci/aws-rig/cluster.py"
            ))
            .args(args)
            .args(["--endpoint", &self.url])
            .output()
            .expect("run the rig script");
        assert!(
            out.status.success(),
            "cluster.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the rig prints JSON")
    }

    /// Every group as boto3 reads it (`cluster.py dump`).
    pub fn groups(&self) -> serde_json::Value {
        self.rig(&["dump"])
    }
}
