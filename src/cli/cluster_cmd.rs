//! `e2e-gate cluster up|down|status` (and the hidden `serve-sim` used by `up --provider sim`).

use super::Exit;
use crate::cluster::kind::{KindProvider, TokioCommandRunner};
use crate::cluster::sim::process::{self, SimProvider};
use crate::cluster::sim::SimOptions;
use crate::cluster::{existing::ExistingProvider, ClusterProvider, ClusterSpec};
use crate::exit_code;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;

/// clap value parser: a cluster name that can never become a path.
pub(crate) fn cluster_name(s: &str) -> Result<String, String> {
    crate::cluster::validate_cluster_name(s).map(|()| s.to_string())
}

/// `cluster` subcommands.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: ClusterCommand,
}

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum ProviderOpt {
    /// The embedded simulated cluster (a background e2e-gate process).
    #[default]
    Sim,
    /// A kind cluster (needs `kind` and Docker).
    Kind,
    /// An existing cluster given by --kubeconfig; up and down do nothing.
    Existing,
}

/// `cluster` verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Bring a cluster up and print its kubeconfig (or write it to --kubeconfig-out).
    Up(UpArgs),
    /// Tear a cluster down.
    Down {
        /// Provider.
        #[arg(long, value_enum, default_value_t = ProviderOpt::Sim)]
        provider: ProviderOpt,
        /// Cluster name (lowercase letters, digits and '-').
        #[arg(long, default_value = "e2e-gate", value_parser = cluster_name)]
        name: String,
    },
    /// Show simulated clusters (or one cluster with --name).
    Status {
        /// Provider.
        #[arg(long, value_enum, default_value_t = ProviderOpt::Sim)]
        provider: ProviderOpt,
        /// Only this cluster.
        #[arg(long, value_parser = cluster_name)]
        name: Option<String>,
        /// Output format (json goes to stdout).
        #[arg(long, value_enum, default_value_t = super::args::Format::Human)]
        format: super::args::Format,
    },
    /// Serve a simulated cluster in the foreground (used by `up --provider sim`).
    #[command(hide = true)]
    ServeSim(ServeSimArgs),
}

/// Options of `cluster up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Provider.
    #[arg(long, value_enum, default_value_t = ProviderOpt::Sim)]
    provider: ProviderOpt,
    /// Cluster name (lowercase letters, digits and '-').
    #[arg(long, default_value = "e2e-gate", value_parser = cluster_name)]
    name: String,
    /// Topology file (sim; default: the built-in quick-start topology) or kind config (kind).
    #[arg(long, value_name = "FILE")]
    topology: Option<PathBuf>,
    /// Kubernetes version (sim: reported by /version; kind: node image tag).
    #[arg(long, value_name = "V")]
    kubernetes_version: Option<String>,
    /// Kubeconfig of the cluster (existing) [default: $KUBECONFIG].
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Write the kubeconfig here instead of printing it.
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// sim: real seconds per simulated second, e.g. 0.01 [default: from the topology].
    #[arg(long, value_name = "X")]
    time_scale: Option<f64>,
}

/// Options of the hidden `cluster serve-sim`.
#[derive(Debug, Args)]
pub(crate) struct ServeSimArgs {
    /// Cluster name.
    #[arg(long)]
    name: String,
    /// State directory (pid, state.json, kubeconfig).
    #[arg(long)]
    state_dir: PathBuf,
    /// Topology file.
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Kubernetes version reported by /version.
    #[arg(long)]
    kubernetes_version: Option<String>,
    /// Port on 127.0.0.1 (0 = random).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Overrides sim.time_scale of the topology.
    #[arg(long)]
    time_scale: Option<f64>,
}

/// The real provider of a kind (`time_scale` only matters to the simulated cluster).
pub(super) fn cluster_provider(
    kind: crate::gate::Provider,
    time_scale: Option<f64>,
) -> Box<dyn ClusterProvider> {
    match kind {
        crate::gate::Provider::Sim => Box::new(SimProvider {
            time_scale,
            ..SimProvider::default()
        }),
        crate::gate::Provider::Kind => Box::new(KindProvider::new(
            Arc::new(TokioCommandRunner),
            process::state_root(),
        )),
        crate::gate::Provider::Existing => Box::new(ExistingProvider),
    }
}

fn provider(p: ProviderOpt, time_scale: Option<f64>) -> Box<dyn ClusterProvider> {
    let kind = match p {
        ProviderOpt::Sim => crate::gate::Provider::Sim,
        ProviderOpt::Kind => crate::gate::Provider::Kind,
        ProviderOpt::Existing => crate::gate::Provider::Existing,
    };
    cluster_provider(kind, time_scale)
}

pub(crate) async fn run(args: ClusterArgs) -> Result<u8, Exit> {
    match args.command {
        ClusterCommand::Up(a) => {
            if a.time_scale.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
                return Err(Exit::usage("--time-scale must be a number > 0 (real seconds per simulated second, e.g. 0.01)"));
            }
            let spec = ClusterSpec {
                name: a.name,
                topology: a.topology,
                kubernetes_version: a.kubernetes_version,
                kubeconfig: a.kubeconfig,
            };
            let h = provider(a.provider, a.time_scale).up(&spec).await?;
            let text = std::fs::read_to_string(&h.kubeconfig).map_err(|e| {
                Exit::infra(format!(
                    "cannot read kubeconfig {}: {e}",
                    h.kubeconfig.display()
                ))
            })?;
            match a.kubeconfig_out {
                Some(out) => {
                    std::fs::write(&out, text)
                        .map_err(|e| Exit::infra(format!("cannot write {}: {e}", out.display())))?;
                    eprintln!(
                        "cluster {:?} is up at {}; kubeconfig written to {}",
                        h.name,
                        h.api_url,
                        out.display()
                    );
                }
                None => {
                    eprintln!("cluster {:?} is up at {}", h.name, h.api_url);
                    print!("{text}");
                }
            }
        }
        ClusterCommand::Down { provider: p, name } => match provider(p, None).down(&name).await {
            Ok(()) => eprintln!("cluster {name:?} is down"),
            // Idempotent, like `kind delete cluster`: what should be gone is gone. A cleanup
            // step that runs twice (a retried Jenkins post step) must not fail the build.
            Err(crate::cluster::ClusterError::NotFound { detail, .. }) => {
                eprintln!("cluster {name:?} is not running ({detail}); nothing to take down")
            }
            Err(e) => return Err(e.into()),
        },
        ClusterCommand::Status {
            provider: p,
            name,
            format,
        } => {
            let names = match (&name, p) {
                (Some(n), _) => vec![n.clone()],
                (None, ProviderOpt::Sim) => SimProvider::default().names(),
                (None, _) => {
                    return Err(Exit::usage(
                        "--name is required with --provider kind|existing",
                    ))
                }
            };
            let prov = provider(p, None);
            let mut rows = Vec::new();
            for n in &names {
                rows.push(prov.status(n).await?);
            }
            if format == super::args::Format::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
            } else if rows.is_empty() {
                eprintln!(
                    "no simulated clusters (state root {})",
                    process::state_root().display()
                );
            } else {
                println!(
                    "{:<16} {:<9} {:<8} {:<28} DETAIL",
                    "NAME", "PROVIDER", "STATE", "API"
                );
                for s in &rows {
                    println!(
                        "{:<16} {:<9} {:<8} {:<28} {}",
                        s.name,
                        s.provider,
                        if s.running { "running" } else { "stopped" },
                        s.api_url.as_deref().unwrap_or("-"),
                        s.detail
                    );
                }
            }
        }
        ClusterCommand::ServeSim(a) => {
            let opts = SimOptions {
                port: a.port,
                time_scale: a.time_scale,
                ..Default::default()
            };
            let topology = a.topology.as_deref();
            process::serve(&a.name, &a.state_dir, topology, a.kubernetes_version, opts).await?;
        }
    }
    Ok(exit_code::OK)
}
