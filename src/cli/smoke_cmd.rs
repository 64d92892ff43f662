//! `e2e-gate smoke run` (the smoke image's entrypoint, usable on a host too) and
//! `e2e-gate smoke image` (builds the image from this binary).

use super::Exit;
use crate::exit_code;
use crate::runner::DockerRunner;
use crate::smoke::{image, SmokeRun};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `smoke` subcommands.
#[derive(Debug, Args)]
pub(crate) struct SmokeArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: SmokeCommand,
}

/// `smoke` verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum SmokeCommand {
    /// Check cluster health (nodes Ready and on the target version, no long-Pending pods,
    /// workloads available, PDBs healthy, no leftover upgrade markers); writes JUnit to
    /// RESULTS_DIR. Takes the conformance image's environment, so it runs as a suite container.
    Run(SmokeRunArgs),
    /// Build the smoke suite image from this binary (FROM scratch, nothing pulled).
    Image {
        /// Image tag.
        #[arg(long, default_value = image::DEFAULT_TAG)]
        tag: String,
    },
}

/// Options of `smoke run`.
#[derive(Debug, Args)]
pub(crate) struct SmokeRunArgs {
    /// Kubeconfig [default: in-cluster config, then ~/.kube/config].
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Where junit_01.xml, e2e.log and done are written.
    #[arg(
        long,
        env = "RESULTS_DIR",
        default_value = "/tmp/results",
        value_name = "DIR"
    )]
    pub(crate) results_dir: PathBuf,
    /// Only checks whose name matches (e.g. 'PodDisruptionBudget').
    #[arg(long, env = "E2E_FOCUS", default_value = "", value_name = "REGEX")]
    pub(crate) focus: String,
    /// Skip checks whose name matches.
    #[arg(long, env = "E2E_SKIP", default_value = "", value_name = "REGEX")]
    pub(crate) skip: String,
    /// List the checks without checking anything.
    #[arg(long, env = "E2E_DRYRUN")]
    pub(crate) dry_run: bool,
    /// Kubelet version every node must run (e.g. v1.34.1) [default: not checked].
    #[arg(long, env = "E2E_GATE_TARGET_VERSION", value_name = "VERSION")]
    pub(crate) target_version: Option<String>,
    /// How long a pod may stay Pending before the check fails.
    #[arg(long, default_value = "5m", value_parser = super::args::duration, value_name = "DURATION")]
    pub(crate) pending_grace: std::time::Duration,
}

pub(crate) async fn run(args: SmokeArgs) -> Result<u8, Exit> {
    match args.command {
        SmokeCommand::Run(a) => {
            let cfg = SmokeRun {
                kubeconfig: a.kubeconfig.filter(|p| !p.as_os_str().is_empty()),
                results_dir: a.results_dir,
                focus: a.focus,
                skip: a.skip,
                dry_run: a.dry_run,
                target_version: a.target_version.filter(|v| !v.is_empty()),
                pending_grace: a.pending_grace,
            };
            Ok(crate::smoke::entry::run(&cfg).await)
        }
        SmokeCommand::Image { tag } => {
            let docker = DockerRunner::connect().await?;
            let binary = build_smoke_image(&docker, &tag)
                .await
                .map_err(Exit::infra)?;
            eprintln!("built {tag} from {}", binary.display());
            Ok(exit_code::OK)
        }
    }
}

/// Builds the smoke image from the running binary; returns the binary's path.
pub(super) async fn build_smoke_image(docker: &DockerRunner, tag: &str) -> Result<PathBuf, String> {
    let binary = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let context =
        image::libraries_of(&binary).and_then(|libs| image::build_context(&binary, &libs))?;
    docker
        .build_image(context, tag)
        .await
        .map_err(|e| e.to_string())?;
    Ok(binary)
}
