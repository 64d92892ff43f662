//! [`NodePool`] over an external command (`--cloud exec --pool-command CMD`), in the spirit of
//! kubetest2's external deployers: Terraform, doctl, gcloud or an in-house tool can back a
//! pool. One process per call, JSON on stdout, a human message on stderr, a timeout per call.
//!
//! The protocol (README "Node pools through a command" has examples):
//!
//! | call                          | stdout on success                                       |
//! |-------------------------------|---------------------------------------------------------|
//! | `groups`                      | `{"groups": [{"name", "zones": {ZONE: desired}, "max_size", "version", "load_balancer"?, "boot_seconds"?}]}` |
//! | `instances POOL`              | `{"instances": [{"id", "zone", "version", "state", "lb"?}]}` (`state`: pending, in-service, terminating, terminated; `lb`: registering, in-service, out-of-service, deregistering) |
//! | `set-desired POOL ZONE N`     | a JSON object (`{}`)                                    |
//! | `terminate ID`                | a JSON object; terminates and decrements the instance's group; an instance already gone succeeds |
//! | `set-version POOL VERSION`    | a JSON object; new instances of POOL start at VERSION  |
//!
//! CMD runs through `sh -c` with the call's words as its arguments, so it may carry its own
//! flags (`--pool-command 'my-pools --workspace prod'`), and with `KUBECONFIG` set to the
//! cluster being upgraded when one was named. Exit status 0 is success; any other
//! status, output that is not the JSON above, or a call over the timeout is an error naming
//! the command and the call. A call that times out is killed with its process group.

use super::api_count::ApiCallCounter;
use super::pool::{Instance, NodePool, PoolError, PoolGroup, SizeAfter};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

/// How much of a failing command's stderr an error quotes.
const STDERR_QUOTED: usize = 2000;

/// The node pools an external command manages.
#[derive(Debug, Clone)]
pub(crate) struct ExecNodePool {
    command: String,
    timeout: Duration,
    kubeconfig: Option<std::path::PathBuf>,
    calls: ApiCallCounter,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsReply {
    groups: Vec<PoolGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstancesReply {
    instances: Vec<Instance>,
}

impl ExecNodePool {
    /// Pools behind `command` (a shell command line); each call may take up to `timeout`.
    /// The command runs with `KUBECONFIG` set to `kubeconfig`, the cluster being upgraded (a
    /// command may need to know which cluster its pools belong to).
    pub(crate) fn new(
        command: impl Into<String>,
        timeout: Duration,
        kubeconfig: Option<&std::path::Path>,
    ) -> Self {
        ExecNodePool {
            command: command.into(),
            timeout,
            kubeconfig: kubeconfig.map(|p| p.to_path_buf()),
            calls: ApiCallCounter::default(),
        }
    }

    fn err(&self, words: &[&str], what: impl std::fmt::Display) -> PoolError {
        PoolError::api(format!(
            "pool command `{} {}`: {what}",
            self.command,
            words.join(" ")
        ))
    }

    /// Runs one call and returns its stdout.
    async fn run(&self, words: &[&str]) -> Result<Vec<u8>, PoolError> {
        self.calls.record(words[0]);
        tracing::debug!(command = %self.command, call = ?words, "pool command");
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!("{} \"$@\"", self.command))
            .arg("e2e-gate-pool")
            .args(words)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so a timeout kills what the shell started too.
            .process_group(0);
        if let Some(k) = &self.kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        let child = cmd
            .spawn()
            .map_err(|e| self.err(words, format!("cannot start: {e}")))?;
        let pid = child.id();
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|e| self.err(words, e))?,
            Err(_) => {
                if let Some(pid) = pid {
                    crate::process_control::kill_group(pid);
                }
                return Err(self.err(
                    words,
                    format!(
                        "no answer within {}s (--pool-command-timeout); the call was killed",
                        self.timeout.as_secs_f64()
                    ),
                ));
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr = stderr.trim();
            let quoted = match stderr.char_indices().nth_back(STDERR_QUOTED) {
                Some((i, _)) => format!(": {}", &stderr[i..]),
                None if stderr.is_empty() => String::new(),
                None => format!(": {stderr}"),
            };
            let how = match out.status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".to_string(),
            };
            return Err(self.err(words, how + &quoted));
        }
        Ok(out.stdout)
    }

    async fn call<T: DeserializeOwned>(&self, words: &[&str], shape: &str) -> Result<T, PoolError> {
        let stdout = self.run(words).await?;
        serde_json::from_slice(&stdout).map_err(|e| {
            let text = String::from_utf8_lossy(&stdout);
            let shown: String = text.trim().chars().take(200).collect();
            self.err(
                words,
                format!("printed {shown:?}, not {shape} ({e}); see the protocol in README"),
            )
        })
    }

    async fn write(&self, words: &[&str]) -> Result<(), PoolError> {
        self.call::<serde_json::Map<String, serde_json::Value>>(words, "a JSON object")
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl NodePool for ExecNodePool {
    /// Calls so far, by protocol call (`groups`, `instances`, …).
    fn cloud_calls(&self) -> BTreeMap<String, u64> {
        self.calls.counts()
    }

    async fn groups(&self) -> Result<Vec<PoolGroup>, PoolError> {
        let reply: GroupsReply = self.call(&["groups"], r#"{"groups": [...]}"#).await?;
        Ok(reply.groups)
    }

    async fn instances(&self, pool: &str) -> Result<Vec<Instance>, PoolError> {
        let reply: InstancesReply = self
            .call(&["instances", pool], r#"{"instances": [...]}"#)
            .await?;
        Ok(reply
            .instances
            .into_iter()
            .map(|i| Instance {
                pool: pool.to_string(),
                ..i
            })
            .collect())
    }

    async fn set_desired(&self, pool: &str, zone: &str, desired: u32) -> Result<(), PoolError> {
        self.write(&["set-desired", pool, zone, &desired.to_string()])
            .await
    }

    async fn terminate(&self, instance: &str, size: SizeAfter) -> Result<(), PoolError> {
        // The protocol's `terminate` always decrements; the engine asks for nothing else here
        // (`replaces_on_terminate` is false).
        if size == SizeAfter::Keep {
            return Err(PoolError::api(format!(
                "exec: terminating {instance} keeping its group's size is not in the protocol"
            )));
        }
        self.write(&["terminate", instance]).await
    }

    async fn set_version(&self, pool: &str, kubelet_version: &str) -> Result<(), PoolError> {
        self.write(&["set-version", pool, kubelet_version]).await
    }
}
