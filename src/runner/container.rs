//! The container seam: what the suite runner needs from a container engine, nothing more.
//!
//! A non-zero exit is `Ok(ContainerExit { code, .. })`: test failures are data. Only failures to
//! *run* (daemon gone, image missing, create refused) are [`RunnerError`]s.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Label put on every container e2e-gate creates, so leftovers can always be found:
/// `docker ps -a --filter label=e2e-gate.run`.
pub(crate) const LABEL_RUN: &str = "e2e-gate.run";
/// Label with the suite name.
pub(crate) const LABEL_SUITE: &str = "e2e-gate.suite";
/// Label with the container attempt number (0 = first run, 1.. = reruns).
pub(crate) const LABEL_ATTEMPT: &str = "e2e-gate.attempt";

/// A bind mount from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Absolute host path.
    pub host: PathBuf,
    /// Path inside the container.
    pub container: String,
    pub(crate) read_only: bool,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    /// Unique container name.
    pub(crate) name: String,
    /// Image reference (must be present locally unless pulling is allowed).
    pub(crate) image: String,
    /// Replaces the image's entrypoint when set.
    pub(crate) entrypoint: Option<Vec<String>>,
    /// Arguments (the image's CMD is replaced when set).
    pub(crate) cmd: Option<Vec<String>>,
    /// Environment, in order.
    pub env: Vec<(String, String)>,
    /// Bind mounts.
    pub mounts: Vec<BindMount>,
    pub(crate) labels: BTreeMap<String, String>,
    /// Docker network mode (`host`, `bridge`, `kind`, …).
    pub(crate) network: String,
}

/// How a container run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerExit {
    /// The process exit code (137 after SIGKILL, 143 after SIGTERM, …).
    pub code: i64,
}

/// Failures to run a container: infrastructure errors (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The Docker daemon cannot be reached.
    #[error("cannot reach the Docker daemon ({0}); is it running and is DOCKER_HOST right?")]
    Daemon(String),
    /// The image is not present locally and pulling was not allowed (or failed).
    #[error("image {image} is not present locally: {hint}")]
    ImageMissing {
        /// The image reference.
        image: String,
        /// How to get it.
        hint: String,
    },
    /// Any other engine failure, with the operation that failed.
    #[error("docker {op} failed for {target}: {message}")]
    Engine {
        /// create, start, wait, remove, …
        op: &'static str,
        /// Container or image name.
        target: String,
        /// The engine's message.
        message: String,
    },
}

/// Requests a running container to stop: SIGTERM, then SIGKILL after the grace period it
/// was fired with (unfired: `None`).
#[derive(Debug, Clone, Default)]
pub struct StopSignal(watch::Sender<Option<Duration>>);

impl StopSignal {
    /// Asks the container to stop with this grace period before SIGKILL.
    pub(crate) fn fire(&self, grace: Duration) {
        self.0.send_replace(Some(grace));
    }

    /// Resolves once fired.
    pub async fn wait(&self) {
        // The sender is `self`: the channel cannot close while this waits.
        let _ = self.0.subscribe().wait_for(Option::is_some).await;
    }

    /// The grace period asked for.
    pub(crate) fn grace(&self) -> Duration {
        self.0.borrow().unwrap_or(Duration::from_secs(10))
    }
}

/// Runs containers to completion.
#[async_trait]
pub trait ContainerRunner: Send + Sync {
    /// Checks the image is present; pulls it when `pull` is set. Errors say how to get it.
    async fn ensure_image(&self, image: &str, pull: bool) -> Result<(), RunnerError>;

    /// Creates and starts the container, sends its output (stdout and stderr, interleaved as
    /// produced) to `output`, waits for it to exit or for `stop` to fire, and **always removes it**.
    async fn run(
        &self,
        spec: &ContainerSpec,
        output: mpsc::Sender<Vec<u8>>,
        stop: StopSignal,
    ) -> Result<ContainerExit, RunnerError>;
}
