//! `e2e-gate upgrade plan|apply|abort`: the composition root of the upgrade engine.
//!
//! `plan` lists nodes, pods, PDBs, PVCs and PVs once, builds the snapshot, prints the plan
//! (human on stderr, JSON on stdout with `--format json`) and exits 1 when there are
//! blockers; with `--cloud` the pools, zones and sizes come from the cloud (`sim`: the
//! simulator's; `exec`: an external command). `apply` runs the engine (needs `--cloud`;
//! without one it exits 2), refuses plans with blockers, prints progress on stderr and the report
//! as JSON. `abort` removes every marker a run left on the nodes.

use super::args::Format;
use super::Exit;
use crate::exit_code;
use crate::upgrade::abort::{abort, AbortError};
use crate::upgrade::aws_pool::AwsSettings;
use crate::upgrade::kube_cluster::{KubeCluster, KubeError};
use crate::upgrade::lease::LEASE_SECONDS;
use crate::upgrade::options::{parse_pool_amount, PoolAmount, UpgradeOptions};
use crate::upgrade::plan::Timings;
use crate::upgrade::render::render_plan;
use crate::upgrade::use_case::{self, Cloud, Target, UpgradeError};
use clap::{Args, Subcommand, ValueEnum};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// `upgrade` subcommands.
#[derive(Debug, Args)]
pub(crate) struct UpgradeArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: UpgradeCommand,
}

/// `upgrade` verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum UpgradeCommand {
    /// Compute the rolling-upgrade plan: outdated nodes, waves, surge per zone, estimated
    /// duration and blockers. Exits 1 when there are blockers.
    Plan(PlanArgs),
    /// Execute the plan: surge per zone, soft-evacuate, drain through the Eviction API
    /// paced by PDBs, terminate with decrement. Needs --cloud (sim, aws with --aws-cluster, or
    /// exec with --pool-command).
    /// Refuses plans with blockers (exit 1). Resumable: run it again after a crash.
    Apply(PlanArgs),
    /// Remove every marker (annotations, labels, taints, autoscaler marks) a run added; with
    /// --cloud, also put each pool back to the size and version it had before the run.
    Abort(AbortArgs),
}

/// Cloud providers for node pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CloudOpt {
    /// The simulated cloud of the embedded cluster (`/sim/cloud` on its API server).
    Sim,
    /// Any cloud behind --pool-command (a small JSON protocol; see README).
    Exec,
    /// AWS Auto Scaling groups tagged kubernetes.io/cluster/<--aws-cluster>, one per pool
    /// and zone (credentials from the standard AWS chain).
    Aws,
}

/// Cluster connection flags.
#[derive(Debug, Args, Clone)]
pub(crate) struct ClusterArgs {
    /// Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, in-cluster].
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Kubeconfig context [default: the current context].
    #[arg(long, value_name = "NAME")]
    pub(crate) context: Option<String>,
    /// Node-pool provider (pools, zones and sizes from the cloud). Without it, pools and
    /// zones come from node labels only. `apply` and `abort --cloud` need it.
    #[arg(long, value_enum, value_name = "PROVIDER")]
    pub(crate) cloud: Option<CloudOpt>,
    /// With --cloud exec: the command that manages the pools, called as `CMD groups`,
    /// `CMD instances POOL`, `CMD set-desired POOL ZONE N`, `CMD terminate ID`,
    /// `CMD set-version POOL VERSION`; JSON on stdout (README: "Node pools through a command").
    #[arg(long, value_name = "CMD", required_if_eq("cloud", "exec"))]
    pub(crate) pool_command: Option<String>,
    /// With --cloud exec: the longest one call of --pool-command may take; it is then killed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::args::duration)]
    pub(crate) pool_command_timeout: Duration,
    /// With --cloud aws: the cluster name in the `kubernetes.io/cluster/NAME` tag of its
    /// Auto Scaling groups.
    #[arg(long, value_name = "NAME", required_if_eq("cloud", "aws"))]
    pub(crate) aws_cluster: Option<String>,
    /// With --cloud aws: the tag whose value names a group's pool (the Nodes' pool label)
    /// [default: the first of e2e-gate.io/pool, eks:nodegroup-name, kops.k8s.io/instancegroup].
    #[arg(long, value_name = "KEY")]
    pub(crate) aws_pool_tag: Option<String>,
    /// With --cloud aws: the launch template version the groups are pointed at (the one your
    /// infrastructure code made for the target version): a number, $Latest or $Default.
    #[arg(long, value_name = "VERSION", default_value = "$Latest")]
    pub(crate) aws_launch_template_version: String,
    /// With --cloud aws: the region [default: AWS_REGION, the profile's].
    #[arg(long, value_name = "REGION")]
    pub(crate) aws_region: Option<String>,
    /// With --cloud aws: the endpoint of every AWS call (a VPC endpoint, a test server)
    /// [default: AWS_ENDPOINT_URL, the public endpoints].
    #[arg(long, value_name = "URL")]
    pub(crate) aws_endpoint_url: Option<String>,
}

fn parse_lease_duration(s: &str) -> Result<Duration, String> {
    let d = super::args::duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("{s:?}: a Lease lasts at least 1s (e.g. 30s)"));
    }
    Ok(d)
}

/// Flags of `plan` and `apply` (the same plan is computed for both).
#[derive(Debug, Args, Clone)]
pub(crate) struct PlanArgs {
    /// Cluster connection.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Kubelet version to reach, e.g. v1.34.1 (a prefix such as 1.34 matches any patch).
    #[arg(long, value_name = "VERSION")]
    pub(crate) target_version: String,
    /// Only these pools (repeatable) [default: all].
    #[arg(long = "pool", value_name = "NAME")]
    pub(crate) pools: Vec<String>,
    /// New nodes above pool size at once: N or N% (of each pool's nodes, rounded up) for every
    /// pool, or POOL=N / POOL=N% (repeatable).
    #[arg(long, value_name = "[POOL=]N", default_value = "1", value_parser = parse_pool_amount)]
    pub(crate) max_surge: Vec<PoolAmount>,
    /// Old nodes drained without a ready replacement at once: N or N% (rounded down) for
    /// every pool, or POOL=N / POOL=N% (repeatable).
    #[arg(long, value_name = "[POOL=]N", default_value = "0", value_parser = parse_pool_amount)]
    pub(crate) max_unavailable: Vec<PoolAmount>,
    /// Estimated drain time of one node.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = super::args::duration)]
    pub(crate) drain_estimate: Duration,
    /// Estimated terminate time of one instance.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = super::args::duration)]
    pub(crate) terminate_estimate: Duration,
    /// Estimated time from an eviction to the replacement pod being Ready.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::args::duration)]
    pub(crate) pod_ready_estimate: Duration,
    /// A new node must stay ready this long before it counts.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::args::duration)]
    pub(crate) min_ready: Duration,
    /// Output format (json goes to stdout; the human plan always goes to stderr).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
    /// Also write the JSON (plan, or apply report) to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// apply: namespace of the single-writer Lease.
    #[arg(long, value_name = "NS", default_value = "kube-system")]
    pub(crate) lease_namespace: String,
    /// apply: report a drain that made no progress for this long (Event, status, progress).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::args::duration)]
    pub(crate) stuck_report_after: Duration,
    /// apply: leave a stuck node cordoned after this long, continue, fail at the end.
    /// Forced (PDB-bypassing) deletes are never done.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = super::args::duration)]
    pub(crate) stuck_leave_after: Duration,
    /// apply: stop starting new nodes once this many were left cordoned.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) max_blocked_nodes: u32,
    /// apply: a surge replacement that has not passed the readiness gate this long after
    /// it was requested fails: its pool stops (the old node keeps serving, never cordoned),
    /// the other pools go on, the run fails at the end. The next apply retries it.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = super::args::duration)]
    pub(crate) new_node_timeout: Duration,
    /// apply: duration of the single-writer Lease (whole seconds, renewed at a third): how
    /// long the next apply waits after this one was killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_lease_duration)]
    pub(crate) lease_duration: Duration,
    /// apply: give up (markers kept; run again to resume, or abort) after this long.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = super::args::duration)]
    pub(crate) timeout: Duration,
}

/// Flags of `abort`.
#[derive(Debug, Args, Clone)]
pub(crate) struct AbortArgs {
    /// Cluster connection.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Namespace of the single-writer Lease.
    #[arg(long, value_name = "NS", default_value = "kube-system")]
    pub(crate) lease_namespace: String,
    /// Output format (json goes to stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
}

pub(crate) async fn run(args: UpgradeArgs) -> Result<u8, Exit> {
    match args.command {
        UpgradeCommand::Plan(a) => run_plan(a).await,
        UpgradeCommand::Apply(a) => run_apply(a).await,
        UpgradeCommand::Abort(a) => run_abort(a).await,
    }
}

impl PlanArgs {
    /// The typed options these flags give (validated by the use case).
    pub(crate) fn options(&self) -> UpgradeOptions {
        UpgradeOptions {
            target_version: self.target_version.trim().to_string(),
            pools: self.pools.iter().cloned().collect::<BTreeSet<_>>(),
            max_surge: self.max_surge.clone(),
            max_unavailable: self.max_unavailable.clone(),
            timings: Timings {
                drain_seconds: self.drain_estimate.as_secs(),
                terminate_seconds: self.terminate_estimate.as_secs(),
                pod_ready_seconds: self.pod_ready_estimate.as_secs(),
                ..Timings::default()
            },
            min_ready: self.min_ready,
            lease_namespace: self.lease_namespace.clone(),
            stuck_report_after: self.stuck_report_after,
            stuck_leave_after: self.stuck_leave_after,
            max_blocked_nodes: self.max_blocked_nodes,
            new_node_timeout: self.new_node_timeout,
            lease_duration: self.lease_duration,
            timeout: self.timeout,
        }
    }
}

impl ClusterArgs {
    /// The cluster and cloud these flags name.
    pub(crate) fn target(&self) -> Result<Target, String> {
        if self.cloud != Some(CloudOpt::Aws) && self.aws_cluster.is_some() {
            return Err("--aws-cluster is for --cloud aws; add --cloud aws".into());
        }
        let cloud = match (self.cloud, &self.pool_command) {
            (None, None) => None,
            (Some(CloudOpt::Sim), None) => Some(Cloud::Sim),
            (Some(CloudOpt::Exec), Some(command)) if !command.trim().is_empty() => {
                Some(Cloud::Exec {
                    command: command.clone(),
                    timeout: self.pool_command_timeout,
                })
            }
            (Some(CloudOpt::Exec), _) => {
                return Err("--cloud exec needs --pool-command CMD (a non-empty command)".into())
            }
            (Some(CloudOpt::Aws), None) => match &self.aws_cluster {
                Some(cluster) if !cluster.trim().is_empty() => Some(Cloud::Aws(AwsSettings {
                    cluster: cluster.trim().to_string(),
                    region: self.aws_region.clone(),
                    endpoint_url: self.aws_endpoint_url.clone(),
                    pool_tag: self.aws_pool_tag.clone(),
                    launch_template_version: self.aws_launch_template_version.clone(),
                })),
                _ => return Err("--cloud aws needs --aws-cluster NAME (the cluster tag of its Auto Scaling groups)".into()),
            },
            (_, Some(_)) => {
                return Err("--pool-command is for --cloud exec; add --cloud exec".into())
            }
        };
        Ok(Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            cloud,
        })
    }
}

fn emit(a: &PlanArgs, json: &serde_json::Value) -> Result<(), Exit> {
    if a.format == Format::Json {
        println!("{json}");
    }
    match &a.report {
        Some(path) => super::write_json(path, json)
            .map_err(|e| Exit::infra(format!("failed to write --report {}: {e}", path.display()))),
        None => Ok(()),
    }
}

async fn run_plan(a: PlanArgs) -> Result<u8, Exit> {
    let target = a.cluster.target().map_err(Exit::usage)?;
    let p = use_case::plan(&target, &a.options()).await?;
    eprint!("{}", render_plan(&p.plan));
    let mut json = serde_json::to_value(&p.plan)
        .map_err(|e| Exit::infra(format!("failed to encode the plan: {e}")))?;
    json["format_version"] = serde_json::json!(1);
    json["kube_api_calls"] = serde_json::json!(p.cluster.api_calls());
    json["cloud_api_calls"] = serde_json::json!(p.cloud_calls);
    emit(&a, &json)?;
    Ok(if p.plan.blockers.is_empty() {
        exit_code::OK
    } else {
        exit_code::FAILED
    })
}

async fn run_apply(a: PlanArgs) -> Result<u8, Exit> {
    let target = a.cluster.target().map_err(Exit::usage)?;
    let result = use_case::apply(
        &target,
        &a.options(),
        |plan| eprint!("{}", render_plan(plan)),
        |pr| eprintln!("{}", pr.line()),
    )
    .await;
    let report = result.map_err(|e| {
        // The report is written on failure too (the gate and Jenkins archive it).
        if let UpgradeError::Engine { report, .. } = &e {
            if let Ok(json) = serde_json::to_value(report) {
                let _ = emit(&a, &json);
            }
        }
        Exit::from(e)
    })?;
    emit(&a, &serde_json::to_value(&report).unwrap_or_default())?;
    for b in &report.blocked_nodes {
        eprintln!("apply: blocked: {}: {}", b.node, b.reason);
    }
    eprintln!("apply: {}", report.headline());
    Ok(if report.complete() {
        exit_code::OK
    } else {
        exit_code::FAILED
    })
}

async fn run_abort(a: AbortArgs) -> Result<u8, Exit> {
    let target = a.cluster.target().map_err(Exit::usage)?;
    let cluster = KubeCluster::connect(target.kubeconfig.as_deref(), target.context.as_deref())
        .await
        .map_err(UpgradeError::from)?;
    let opened = match &target.cloud {
        // Named as `apply` names it.
        Some(c) => Some(
            c.open(cluster.client(), target.kubeconfig.as_deref())
                .await
                .map_err(|e| Exit::infra(format!("--cloud {}: {e}", c.name())))?,
        ),
        None => None,
    };
    let pool = opened.as_deref();
    // A Lease left by an `apply` that was killed expires after --lease-duration; wait it out
    // (as `apply` does) instead of refusing, but never longer than one Lease term.
    let mut waited = false;
    let outcome = loop {
        match abort(
            &cluster,
            &a.lease_namespace,
            &use_case::identity(),
            chrono::Utc::now(),
            pool,
        )
        .await
        {
            Err(AbortError::Kube(KubeError::LeaseHeld { holder, until, .. })) if !waited => {
                let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default()
                    + Duration::from_millis(200);
                if wait > Duration::from_secs(LEASE_SECONDS as u64 + 5) {
                    return Err(Exit::new(
                        exit_code::FAILED,
                        format!(
                            "the upgrade Lease is held by {holder} until {until}; \
                             is an `apply` still running? Stop it first"
                        ),
                    ));
                }
                eprintln!(
                    "abort: the upgrade Lease is held by {holder} until {until} (an `apply` that \
                     is still running, or one that was killed); waiting {}s for it",
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                waited = true;
            }
            other => break other,
        }
    };
    match outcome {
        Ok(o) => {
            eprintln!(
                "abort: removed upgrade markers from {} node(s){}{}",
                o.cleaned.len(),
                if o.cleaned.is_empty() { "" } else { ": " },
                o.cleaned.join(", ")
            );
            for (p, z, n) in &o.capacity_restored {
                eprintln!("abort: {p}/{z} desired size back to {n}");
            }
            for (p, v) in &o.versions_restored {
                eprintln!("abort: {p} launches {v} again");
            }
            if o.state_kept {
                eprintln!(
                    "abort: pool sizes and versions were not restored (no --cloud); the sizes \
                     before the run stay recorded on the Lease for `upgrade abort --cloud …` or \
                     the next `upgrade apply`"
                );
            }
            if a.format == Format::Json {
                println!(
                    "{}",
                    serde_json::json!({"format_version": 1, "cleaned_nodes": o.cleaned,
                                       "capacity_restored": o.capacity_restored,
                                       "versions_restored": o.versions_restored,
                                       "state_kept": o.state_kept,
                                       "kube_api_calls": cluster.api_calls()})
                );
            }
            Ok(exit_code::OK)
        }
        Err(AbortError::Kube(e @ KubeError::LeaseHeld { .. })) => {
            Err(Exit::new(exit_code::FAILED, e))
        }
        Err(AbortError::Kube(e)) => Err(UpgradeError::from(e).into()),
        Err(AbortError::Pool(e)) => Err(Exit::infra(format!("cloud: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::plan::{PlanOptions, PoolLimits};
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: PlanArgs,
    }

    fn parse(args: &[&str]) -> Result<PlanOptions, String> {
        let mut v = vec!["t", "--target-version", "v1.34.1"];
        v.extend_from_slice(args);
        let t = T::try_parse_from(v).map_err(|e| e.to_string())?;
        t.a.options().plan_options(None)
    }

    #[test]
    fn per_pool_limits() {
        let o = parse(&[
            "--max-surge",
            "2",
            "--max-surge",
            "gpu=0",
            "--max-unavailable",
            "gpu=1",
            "--pool",
            "gpu",
        ])
        .expect("ok");
        assert_eq!(
            o.default_limits,
            PoolLimits {
                max_surge: 2,
                max_unavailable: 0
            }
        );
        assert_eq!(
            o.limits["gpu"],
            PoolLimits {
                max_surge: 0,
                max_unavailable: 1
            }
        );
        assert!(o.pools.contains("gpu"));
        let o = parse(&["--max-surge", "gpu=3", "--max-unavailable", "1"]).expect("ok");
        assert_eq!(
            o.limits["gpu"],
            PoolLimits {
                max_surge: 3,
                max_unavailable: 1
            },
            "pool entry starts from defaults"
        );
        assert_eq!(o.timings.drain_seconds, 120);
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert!(parse(&["--max-surge", "x"])
            .expect_err("bad")
            .contains("max-surge"));
        assert!(parse(&["--max-surge", "=2"]).is_err());
        assert!(parse(&["--max-surge", "1", "--max-surge", "2"])
            .expect_err("twice")
            .contains("twice"));
        assert!(parse(&["--max-surge", "0"])
            .expect_err("zero")
            .contains("both 0"));
    }
}
