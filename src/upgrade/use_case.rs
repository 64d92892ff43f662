//! The upgrade use case, in the library: connect, read the cluster (and its cloud) once, plan,
//! refuse blockers, apply, report. `upgrade plan|apply` and the gate's Upgrade step call it
//! in-process with typed [`UpgradeOptions`] and get a typed outcome or [`UpgradeError`].

use super::aws_pool::{AwsNodePool, AwsSettings};
use super::engine::{self, EngineError};
use super::exec_pool::ExecNodePool;
use super::kube_cluster::{KubeCluster, KubeError};
use super::options::UpgradeOptions;
use super::plan::{plan as make_plan, Plan, PlanOptions};
use super::pool::{NodePool, PoolError};
use super::progress::Progress;
use super::report::UpgradeReport;
use super::sim_pool::SimNodePool;
use super::snapshot::{PoolInfo, Snapshot, DEFAULT_BOOT_SECONDS};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// Node-pool providers the engine can drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cloud {
    /// The simulated cloud of the embedded cluster (`/sim/cloud` on its API server).
    Sim,
    /// Any cloud behind an external command ([`ExecNodePool`]'s JSON protocol).
    Exec {
        /// The command line (run through `sh -c`, the call's words appended).
        command: String,
        /// The longest one call may take.
        timeout: Duration,
    },
    /// AWS Auto Scaling groups, one per pool and zone ([`AwsNodePool`]).
    Aws(AwsSettings),
}

impl Cloud {
    /// The flag value naming this provider, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Cloud::Sim => "sim",
            Cloud::Exec { .. } => "exec",
            Cloud::Aws(_) => "aws",
        }
    }

    /// The node pools of this cloud; `client` reaches the cluster (the simulated cloud is
    /// served by the simulated API server), `kubeconfig` names it to a pool command.
    pub(crate) async fn open(
        &self,
        client: kube::Client,
        kubeconfig: Option<&std::path::Path>,
    ) -> Result<Box<dyn NodePool>, PoolError> {
        Ok(match self {
            Cloud::Sim => Box::new(SimNodePool::new(client)),
            Cloud::Exec { command, timeout } => {
                Box::new(ExecNodePool::new(command, *timeout, kubeconfig))
            }
            Cloud::Aws(settings) => Box::new(AwsNodePool::connect(settings.clone()).await?),
        })
    }
}

/// Which cluster, and which cloud its pools are in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Target {
    /// Kubeconfig file (default: `$KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    pub(crate) context: Option<String>,
    /// Node-pool provider; without it pools and zones come from node labels only, and
    /// nothing can be applied.
    pub(crate) cloud: Option<Cloud>,
}

/// Why an upgrade could not be planned or did not finish; [`UpgradeError::exit_code`] maps
/// each to the documented exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpgradeError {
    /// Bad options, a bad target version, or a cluster that refuses us (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The cluster or cloud could not be reached or read (exit 3).
    #[error("{0}")]
    Infra(String),
    /// The plan has blockers (one line each): nothing was applied (exit 1).
    #[error(
        "refusing to apply: the plan has {} blocker(s); fix them and run again:\n  {}",
        .0.len(),
        .0.join("\n  ")
    )]
    Blocked(Vec<String>),
    /// The engine stopped without finishing; `report` says how far it got (written too).
    #[error("{error}")]
    Engine {
        /// What stopped it.
        error: EngineError,
        /// The run so far: nodes already gone, the error.
        report: Box<UpgradeReport>,
    },
}

impl From<KubeError> for UpgradeError {
    fn from(e: KubeError) -> Self {
        if e.is_infra() {
            UpgradeError::Infra(e.to_string())
        } else {
            UpgradeError::Usage(e.to_string())
        }
    }
}

/// A computed plan and what computing it opened.
pub(crate) struct Planned {
    pub(crate) cluster: KubeCluster,
    /// The cloud's pools, when a cloud was named.
    pub(crate) pool: Option<Box<dyn NodePool>>,
    pub(crate) plan: Plan,
    /// The options it was computed with (percentages resolved).
    pub(crate) opts: PlanOptions,
    /// Cloud calls made while planning.
    pub(crate) cloud_calls: BTreeMap<String, u64>,
}

/// Connects, lists nodes, pods, PDBs and volumes once, reads the cloud's pools, and plans.
pub(crate) async fn plan(target: &Target, o: &UpgradeOptions) -> Result<Planned, UpgradeError> {
    // Option errors first, before connecting; percentages are resolved once the pools are known.
    o.plan_options(None).map_err(UpgradeError::Usage)?;
    let cluster =
        KubeCluster::connect(target.kubeconfig.as_deref(), target.context.as_deref()).await?;
    let objects = cluster.list_objects().await?;
    let mut snapshot =
        Snapshot::from_k8s(&objects).map_err(|e| UpgradeError::Infra(e.to_string()))?;
    let mut cloud_calls = BTreeMap::new();
    let mut pool = None;
    if let Some(cloud) = &target.cloud {
        let (p, groups) = async {
            let p = cloud
                .open(cluster.client(), target.kubeconfig.as_deref())
                .await?;
            let groups = p.groups().await?;
            Ok::<_, PoolError>((p, groups))
        }
        .await
        .map_err(|e| UpgradeError::Infra(format!("--cloud {}: {e}", cloud.name())))?;
        // The planner's view of the cloud's pools.
        let pools = groups.into_iter().map(|g| PoolInfo {
            name: g.name,
            nodes_per_zone: g.desired_per_zone,
            boot_seconds: g.boot_seconds.unwrap_or(DEFAULT_BOOT_SECONDS),
        });
        snapshot = snapshot.with_pools(pools.collect());
        cloud_calls = p.cloud_calls();
        pool = Some(p);
    }
    let sizes: BTreeMap<String, u32> = snapshot
        .pools
        .iter()
        .map(|p| (p.name.clone(), p.nodes_per_zone.values().sum()))
        .collect();
    let opts = o.plan_options(Some(&sizes)).map_err(UpgradeError::Usage)?;
    let plan = make_plan(&snapshot, &opts).map_err(|e| UpgradeError::Usage(e.to_string()))?;
    // Kubelets must not be newer than kube-apiserver (the version skew policy).
    match cluster.client().apiserver_version().await {
        Ok(info) => {
            super::version::check_target(&opts.target_version, &[], Some(&info.git_version))
                .map_err(UpgradeError::Usage)?;
        }
        Err(e) => tracing::warn!(
            "cannot read the control plane's version ({e}); version skew not checked"
        ),
    }
    Ok(Planned {
        cluster,
        pool,
        plan,
        opts,
        cloud_calls,
    })
}

/// The Lease holder's identity of this process.
pub(crate) fn identity() -> String {
    format!(
        "e2e-gate@{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        std::process::id()
    )
}

/// Plans (`on_plan` sees the plan, blockers included), refuses a plan with blockers, and runs
/// the engine to the end. The report of a run that stopped early comes with the error.
pub(crate) async fn apply(
    target: &Target,
    o: &UpgradeOptions,
    on_plan: impl FnOnce(&Plan),
    on_progress: impl FnMut(&Progress),
) -> Result<UpgradeReport, UpgradeError> {
    if target.cloud.is_none() {
        return Err(UpgradeError::Usage(
            "`upgrade apply` needs --cloud to create and terminate instances (sim, aws with --aws-cluster, or exec with --pool-command)"
                .into(),
        ));
    }
    let p = plan(target, o).await?;
    on_plan(&p.plan);
    if !p.plan.blockers.is_empty() {
        return Err(UpgradeError::Blocked(
            p.plan.blockers.iter().map(|b| b.line()).collect(),
        ));
    }
    let Some(pool) = p.pool else {
        return Err(UpgradeError::Usage("`upgrade apply` needs --cloud".into()));
    };
    let run_id = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    );
    let cfg = o.engine_config(run_id, identity());
    let result = engine::apply(
        &p.cluster,
        pool.as_ref(),
        &p.plan,
        &p.opts,
        &cfg,
        on_progress,
    )
    .await;
    let mut report = match result {
        Ok(r) => r,
        Err(error) => {
            // The report of a failed run: the error, and how many planned nodes the cluster no
            // longer has (the gate and Jenkins archive it).
            let mut failed =
                UpgradeReport::new(&p.plan.target_version, p.plan.outdated.len() as u64);
            failed.error = Some(error.to_string());
            if let Ok(nodes) = p.cluster.list_nodes().await {
                let present: BTreeSet<&str> = nodes
                    .iter()
                    .filter_map(|n| n.metadata.name.as_deref())
                    .collect();
                failed.nodes_found_replaced = p
                    .plan
                    .outdated
                    .iter()
                    .filter(|n| !present.contains(n.name.as_str()))
                    .count() as u64;
            }
            return Err(UpgradeError::Engine {
                error,
                report: Box::new(failed),
            });
        }
    };
    report.limits = p
        .plan
        .outdated
        .iter()
        .map(|n| (n.pool.clone(), p.opts.limits_for(&n.pool)))
        .collect();
    for (k, v) in pool.cloud_calls().into_iter().chain(p.cloud_calls) {
        *report.cloud_api_calls.entry(k).or_default() += v;
    }
    Ok(report)
}
