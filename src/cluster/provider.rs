//! The [`ClusterProvider`] trait: how a cluster under test comes up and goes down.

use async_trait::async_trait;
use std::path::PathBuf;

/// What to bring up.
#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    /// Cluster name (also the kubeconfig context name).
    pub name: String,
    /// Topology file (sim) or kind config file (kind).
    pub(crate) topology: Option<PathBuf>,
    /// Kubernetes version (sim: reported by /version; kind: node image tag).
    pub(crate) kubernetes_version: Option<String>,
    /// Kubeconfig of an existing cluster (existing).
    pub(crate) kubeconfig: Option<PathBuf>,
}

/// A running cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHandle {
    /// Cluster name.
    pub name: String,
    /// Kubeconfig for processes on this host.
    pub kubeconfig: PathBuf,
    /// Kubeconfig for containers on `network` (kind: `get kubeconfig --internal`).
    pub kubeconfig_internal: PathBuf,
    /// Docker network test containers must join (kind: "kind"); None = host network.
    pub network: Option<String>,
    /// API server URL as seen from this host.
    pub api_url: String,
}

/// State of a named cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStatus {
    pub(crate) name: String,
    pub(crate) provider: String,
    /// Running and answering.
    pub(crate) running: bool,
    /// API URL when known.
    pub(crate) api_url: Option<String>,
    /// Process id (sim).
    pub(crate) pid: Option<u32>,
    /// Human detail ("stale pid file", ...).
    pub(crate) detail: String,
}

/// Checks a cluster name. Names become directory names (sim state) and container names
/// (kind), so they are one DNS label: lowercase letters, digits and `-`, at most 63 characters,
/// starting and ending with a letter or digit. `../x` or `/some/dir` must never become a path.
pub(crate) fn validate_cluster_name(name: &str) -> Result<(), String> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid cluster name {name:?}: use 1-63 lowercase letters, digits and '-', starting \
             and ending with a letter or digit (e.g. \"e2e-gate\", \"pr-1234\")"
        ))
    }
}

/// Whether `name` is one DNS label (RFC 1123: 1-63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit).
pub(crate) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Errors of cluster providers. Each names what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A cluster with this name is already running.
    #[error("cluster {name:?} is already running (pid {pid}, state in {state_dir}); run `e2e-gate cluster down --name {name}` first or pick another --name")]
    AlreadyRunning {
        /// Name.
        name: String,
        /// Pid.
        pid: u32,
        /// State directory.
        state_dir: String,
    },
    /// No such cluster.
    #[error("no cluster named {name:?} ({detail})")]
    NotFound {
        /// Name.
        name: String,
        /// Where we looked.
        detail: String,
    },
    /// Bad input (topology, kubeconfig, flag).
    #[error("{0}")]
    Config(String),
    /// A subprocess failed.
    #[error("`{command}` failed (exit code {code:?}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit code.
        code: Option<i32>,
        /// Captured stderr (trimmed).
        stderr: String,
    },
    /// Anything else (I/O, timeouts, a process that died).
    #[error("{0}")]
    Infra(String),
}

/// Lifecycle of the cluster under test.
#[async_trait]
pub trait ClusterProvider: Send + Sync {
    /// Brings the cluster up and returns its handle.
    async fn up(&self, spec: &ClusterSpec) -> Result<ClusterHandle, ClusterError>;
    /// Tears the cluster down. Tolerates "already gone" only where the provider can tell.
    async fn down(&self, name: &str) -> Result<(), ClusterError>;
    /// Reports the state of a named cluster.
    async fn status(&self, name: &str) -> Result<ClusterStatus, ClusterError>;
}

/// The `server:` URL of the current cluster in a kubeconfig (first cluster entry).
pub(crate) fn server_of_kubeconfig(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("server:"))
        .map(|s| s.trim().trim_matches('"').trim_matches('\'').to_string())
}

#[cfg(test)]
mod name_tests {
    use super::validate_cluster_name;

    #[test]
    fn names_that_could_become_paths_are_refused() {
        // Regression: `cluster down --name /some/dir` removed that directory.
        for bad in [
            "../x",
            "/some/dir",
            "a/b",
            ".",
            "..",
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a b",
        ] {
            let e = validate_cluster_name(bad).unwrap_err();
            assert!(e.contains("invalid cluster name"), "{bad}: {e}");
        }
        for good in ["e2e-gate", "pr-1234", "a", "x1"] {
            assert!(validate_cluster_name(good).is_ok(), "{good}");
        }
        assert!(validate_cluster_name(&"a".repeat(64)).is_err());
    }
}
