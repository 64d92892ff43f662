//! The `kind` provider: drives the real `kind` CLI (create, delete, get kubeconfig,
//! including `--internal` for containers on the `kind` Docker network). Subprocesses
//! go through an injected [`CommandRunner`], so the provider is unit-tested without
//! a kind node image.

use super::provider::{
    server_of_kubeconfig, ClusterError, ClusterHandle, ClusterProvider, ClusterSpec, ClusterStatus,
};
use async_trait::async_trait;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

/// Runs `kind` (injected, so tests can script it).
#[async_trait]
pub(crate) trait CommandRunner: Send + Sync {
    /// Runs `kind <args>` to completion; `Err` only when it cannot be started.
    async fn run(&self, args: &[&str]) -> std::io::Result<Output>;
}

/// Runs the real `kind` with tokio.
#[derive(Debug, Default)]
pub(crate) struct TokioCommandRunner;

#[async_trait]
impl CommandRunner for TokioCommandRunner {
    async fn run(&self, args: &[&str]) -> std::io::Result<Output> {
        tokio::process::Command::new("kind")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
    }
}

/// kind clusters; kubeconfigs are written under `state_root/<name>/`.
pub(crate) struct KindProvider {
    runner: Arc<dyn CommandRunner>,
    state_root: PathBuf,
}

impl KindProvider {
    /// A provider using `kind` from `$PATH`.
    pub(crate) fn new(runner: Arc<dyn CommandRunner>, state_root: PathBuf) -> Self {
        Self { runner, state_root }
    }

    async fn kind(&self, args: &[&str]) -> Result<String, ClusterError> {
        let command = format!("kind {}", args.join(" "));
        let out = self.runner.run(args).await.map_err(|e| {
            ClusterError::Infra(format!(
                "cannot run `{command}`: {e} (is kind installed and on $PATH?)"
            ))
        })?;
        if !out.status.success() {
            return Err(ClusterError::Command {
                command,
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[async_trait]
impl ClusterProvider for KindProvider {
    async fn up(&self, spec: &ClusterSpec) -> Result<ClusterHandle, ClusterError> {
        let name = spec.name.as_str();
        let mut args = vec!["create", "cluster", "--name", name, "--wait", "5m"];
        let image;
        if let Some(v) = &spec.kubernetes_version {
            image = format!("kindest/node:{v}");
            args.extend(["--image", image.as_str()]);
        }
        let config;
        if let Some(c) = &spec.topology {
            config = c.display().to_string();
            args.extend(["--config", config.as_str()]);
        }
        self.kind(&args).await?;
        let host = self.kind(&["get", "kubeconfig", "--name", name]).await?;
        let internal = self
            .kind(&["get", "kubeconfig", "--name", name, "--internal"])
            .await?;
        let dir = self.state_root.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ClusterError::Infra(format!("cannot create {}: {e}", dir.display())))?;
        let kubeconfig = dir.join("kubeconfig");
        let kubeconfig_internal = dir.join("kubeconfig-internal");
        for (p, t) in [(&kubeconfig, &host), (&kubeconfig_internal, &internal)] {
            std::fs::write(p, t)
                .map_err(|e| ClusterError::Infra(format!("cannot write {}: {e}", p.display())))?;
        }
        let api_url = server_of_kubeconfig(&host).ok_or_else(|| {
            ClusterError::Infra(format!(
                "`kind get kubeconfig --name {name}` printed no server URL"
            ))
        })?;
        Ok(ClusterHandle {
            name: name.to_string(),
            kubeconfig,
            kubeconfig_internal,
            network: Some("kind".into()),
            api_url,
        })
    }

    async fn down(&self, name: &str) -> Result<(), ClusterError> {
        self.kind(&["delete", "cluster", "--name", name]).await?;
        let _ = std::fs::remove_dir_all(self.state_root.join(name));
        Ok(())
    }

    async fn status(&self, name: &str) -> Result<ClusterStatus, ClusterError> {
        let out = self.kind(&["get", "clusters"]).await?;
        let running = out.lines().any(|l| l.trim() == name);
        Ok(ClusterStatus {
            name: name.to_string(),
            provider: "kind".into(),
            running,
            api_url: None,
            pid: None,
            detail: format!(
                "{} by `kind get clusters`",
                if running { "listed" } else { "not listed" }
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_code::HasExitCode;
    use parking_lot::Mutex;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    #[derive(Default)]
    struct Scripted {
        calls: Mutex<Vec<String>>,
        fail_on: Option<&'static str>,
    }

    #[async_trait]
    impl CommandRunner for Scripted {
        async fn run(&self, args: &[&str]) -> std::io::Result<Output> {
            let line = format!("kind {}", args.join(" "));
            self.calls.lock().push(line.clone());
            if self.fail_on.is_some_and(|f| line.contains(f)) {
                return Ok(Output {
                    status: ExitStatus::from_raw(1 << 8),
                    stdout: Vec::new(),
                    stderr: b"ERROR: boom\n".to_vec(),
                });
            }
            let stdout = if line.contains("--internal") {
                "clusters:\n- cluster:\n    server: https://gate-control-plane:6443\n".to_string()
            } else if line.contains("get kubeconfig") {
                "clusters:\n- cluster:\n    server: https://127.0.0.1:40123\n".to_string()
            } else if line.contains("get clusters") {
                "other\ngate\n".to_string()
            } else {
                String::new()
            };
            Ok(Output {
                status: ExitStatus::from_raw(0),
                stdout: stdout.into_bytes(),
                stderr: Vec::new(),
            })
        }
    }

    #[tokio::test]
    async fn up_creates_and_fetches_both_kubeconfigs() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(Scripted::default());
        let p = KindProvider::new(runner.clone(), dir.path().to_path_buf());
        let h = p
            .up(&ClusterSpec {
                name: "gate".into(),
                kubernetes_version: Some("v1.34.0".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            *runner.calls.lock(),
            [
                "kind create cluster --name gate --wait 5m --image kindest/node:v1.34.0",
                "kind get kubeconfig --name gate",
                "kind get kubeconfig --name gate --internal",
            ]
        );
        assert_eq!(h.api_url, "https://127.0.0.1:40123");
        assert_eq!(h.network.as_deref(), Some("kind"));
        assert!(std::fs::read_to_string(&h.kubeconfig_internal)
            .unwrap()
            .contains("gate-control-plane"));
        assert!(p.status("gate").await.unwrap().running);
        p.down("gate").await.unwrap();
        assert_eq!(
            runner.calls.lock().last().unwrap(),
            "kind delete cluster --name gate"
        );
    }

    #[tokio::test]
    async fn failures_carry_the_command_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(Scripted {
            fail_on: Some("create"),
            ..Default::default()
        });
        let p = KindProvider::new(runner, dir.path().to_path_buf());
        let err = p
            .up(&ClusterSpec {
                name: "gate".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("kind create cluster --name gate") && msg.contains("ERROR: boom"),
            "{msg}"
        );
        assert_eq!(err.exit_code(), crate::exit_code::INFRA);
    }
}
