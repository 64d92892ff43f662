//! The Docker engine adapter (bollard). The only file that names bollard.

use super::container::{ContainerExit, ContainerRunner, ContainerSpec, RunnerError, StopSignal};
use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// Runs containers on the local Docker engine.
pub(crate) struct DockerRunner {
    docker: Docker,
}

fn engine(op: &'static str, target: &str, e: BollardError) -> RunnerError {
    let message = match e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        e @ (BollardError::IOError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::RequestTimeoutError
        | BollardError::SocketNotFoundError(_)) => return RunnerError::Daemon(e.to_string()),
        other => other.to_string(),
    };
    RunnerError::Engine {
        op,
        target: target.to_string(),
        message,
    }
}

impl DockerRunner {
    /// Connects with the usual defaults (`DOCKER_HOST` or the local socket) and checks the
    /// daemon answers, negotiating the API version down for older engines.
    pub(crate) async fn connect() -> Result<DockerRunner, RunnerError> {
        let daemon = |e: BollardError| RunnerError::Daemon(e.to_string());
        let docker = Docker::connect_with_defaults().map_err(daemon)?;
        let docker = docker.negotiate_version().await.map_err(daemon)?;
        docker.ping().await.map_err(daemon)?;
        Ok(DockerRunner { docker })
    }

    /// Builds an image from a tar build context (no pull: the Dockerfile must start `FROM scratch`
    /// or from a local image).
    /// The image `tag` pointed to before is removed when the build leaves it untagged, so
    /// rebuilding never piles up dangling images on a CI agent.
    pub(crate) async fn build_image(
        &self,
        context_tar: Vec<u8>,
        tag: &str,
    ) -> Result<(), RunnerError> {
        let previous = self.image_id(tag).await;
        self.build(context_tar, tag).await?;
        let now = self.image_id(tag).await;
        if let Some(old) = previous.filter(|old| Some(old) != now.as_ref()) {
            // Not forced: an image still used by a container or tagged elsewhere stays.
            let opts = bollard::query_parameters::RemoveImageOptionsBuilder::default().build();
            if let Err(e) = self.docker.remove_image(&old, Some(opts), None).await {
                tracing::debug!(image = %old, "previous image of {tag} kept: {e}");
            }
        }
        Ok(())
    }

    /// A label of a local image, if the image and the label exist.
    pub(crate) async fn image_label(&self, tag: &str, key: &str) -> Option<String> {
        let image = self.docker.inspect_image(tag).await.ok()?;
        image.config?.labels?.get(key).cloned()
    }

    async fn image_id(&self, tag: &str) -> Option<String> {
        self.docker.inspect_image(tag).await.ok().and_then(|i| i.id)
    }

    async fn build(&self, context_tar: Vec<u8>, tag: &str) -> Result<(), RunnerError> {
        let opts = bollard::query_parameters::BuildImageOptionsBuilder::default()
            .t(tag)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream = self.docker.build_image(
            opts,
            None,
            Some(bollard::body_full(bytes::Bytes::from(context_tar))),
        );
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| engine("build", tag, e))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(RunnerError::Engine {
                    op: "build",
                    target: tag.into(),
                    message,
                });
            }
        }
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<(), RunnerError> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(name, Some(opts)).await {
            // 404: already gone; 409 "removal already in progress": someone else finishes it.
            Ok(())
            | Err(BollardError::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            Err(e) => Err(engine("remove", name, e)),
        }
    }

    async fn create_and_stream(
        &self,
        spec: &ContainerSpec,
        output: mpsc::Sender<Vec<u8>>,
        stop: StopSignal,
    ) -> Result<ContainerExit, RunnerError> {
        let binds = spec
            .mounts
            .iter()
            .map(|m| {
                format!(
                    "{}:{}:{}",
                    m.host.display(),
                    m.container,
                    if m.read_only { "ro" } else { "rw" }
                )
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(
                spec.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            ),
            tty: Some(false),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                binds: Some(binds),
                network_mode: Some(spec.network.clone()),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        self.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| engine("create", &spec.name, e))?;
        // Attached before start, the stream carries every byte the container writes, read as it
        // is produced. Reading `docker logs` instead would depend on the log driver: json-file
        // rotates (10 MB × 3 on many hosts), so a long run's first lines would be gone.
        let attach_opts = AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .logs(false)
            .build();
        let attached = self
            .docker
            .attach_container(&spec.name, Some(attach_opts))
            .await
            .map_err(|e| engine("attach", &spec.name, e))?;
        let mut stream = attached.output;
        self.docker
            .start_container(&spec.name, None)
            .await
            .map_err(|e| engine("start", &spec.name, e))?;

        // The pump runs beside the wait, never after it: progress, `e2e.log` and the stall
        // watchdog all need output while the container is still running.
        let name = spec.name.clone();
        let mut pump = tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(chunk) => {
                        // A closed receiver only means nobody reads any more; keep draining.
                        let _ = output.send(chunk.into_bytes().to_vec()).await;
                    }
                    Err(e) => {
                        tracing::warn!(container = %name, error = %e, "output stream broke; e2e.log may be incomplete");
                        return false;
                    }
                }
            }
            true
        });
        let wait = async {
            let mut stream = self
                .docker
                .wait_container(&spec.name, None::<WaitContainerOptions>);
            match stream.next().await {
                Some(Ok(r)) => Ok(r.status_code),
                // bollard turns a non-zero exit into an error: that is an outcome, not a failure.
                Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(e)) => Err(engine("wait", &spec.name, e)),
                None => Err(RunnerError::Engine {
                    op: "wait",
                    target: spec.name.clone(),
                    message: "wait stream ended without an exit code".into(),
                }),
            }
        };
        tokio::pin!(wait);
        let code = tokio::select! {
            code = &mut wait => code,
            _ = stop.wait() => {
                let grace = stop.grace();
                let secs = i32::try_from(grace.as_secs().max(1)).unwrap_or(i32::MAX);
                let opts = StopContainerOptionsBuilder::default().t(secs).build();
                if let Err(e) = self.docker.stop_container(&spec.name, Some(opts)).await {
                    tracing::warn!(container = %spec.name, error = %e, "stop failed; removing by force");
                }
                match tokio::time::timeout(grace + Duration::from_secs(5), &mut wait).await {
                    Ok(code) => code,
                    Err(_) => Ok(137),
                }
            }
        };
        // The attach stream ends once the container's output is closed; what is still in flight
        // is delivered first. The bound only matters if the engine never closes it.
        match tokio::time::timeout(Duration::from_secs(30), &mut pump).await {
            Ok(Ok(true)) => {}
            Ok(_) => tracing::warn!(container = %spec.name, "output stream ended early"),
            Err(_) => {
                // Aborted so its sender drops and the log writer can finish.
                pump.abort();
                tracing::warn!(container = %spec.name, "output stream still open 30 s after exit; e2e.log may miss the tail");
            }
        }
        let code = code?;
        Ok(ContainerExit { code })
    }
}

#[async_trait]
impl ContainerRunner for DockerRunner {
    async fn ensure_image(&self, image: &str, pull: bool) -> Result<(), RunnerError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(engine("inspect", image, e)),
        }
        if !pull {
            return Err(RunnerError::ImageMissing {
                image: image.to_string(),
                hint: format!(
                    "run `docker pull {image}` (or `docker load` / `docker build -t {image} …`), \
                     or pass --pull to let e2e-gate pull it"
                ),
            });
        }
        tracing::info!(image, "pulling image");
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                return Err(RunnerError::ImageMissing {
                    image: image.to_string(),
                    hint: format!("pull failed: {e}; pull or build it by hand, then retry"),
                });
            }
        }
        Ok(())
    }

    async fn run(
        &self,
        spec: &ContainerSpec,
        output: mpsc::Sender<Vec<u8>>,
        stop: StopSignal,
    ) -> Result<ContainerExit, RunnerError> {
        let result = self.create_and_stream(spec, output, stop).await;
        // Removal happens on every path, including failed starts.
        let removed = self.remove(&spec.name).await;
        result.and_then(|exit| removed.map(|()| exit))
    }
}
