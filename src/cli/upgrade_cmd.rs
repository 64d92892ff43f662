//! `e2e-gate upgrade plan|apply|abort`: the composition root of the upgrade engine.
//!
//! `plan` lists nodes, pods, PDBs, PVCs and PVs once, builds the snapshot, prints the plan
//! (human on stderr, JSON on stdout with `--format json`) and exits 1 when there are
//! blockers; with `--cloud sim` the pools, zones and sizes come from the simulator's cloud.
//! `apply` runs the engine (needs `--cloud sim`, the only `NodePool` so far; without a
//! cloud it exits 2), refuses plans with blockers, prints progress on stderr and the report
//! as JSON. `abort` removes every marker a run left on the nodes.

use super::args::Format;
use crate::exit_code;
use crate::upgrade::abort::{abort, AbortError};
use crate::upgrade::drain_policy::StuckDrainPolicy;
use crate::upgrade::engine::{self, EngineConfig, EngineError};
use crate::upgrade::kube_cluster::{KubeCluster, KubeError};
use crate::upgrade::lease::LEASE_SECONDS;
use crate::upgrade::plan::{plan, PlanOptions, PoolLimits, Timings};
use crate::upgrade::pool::{NodePool, PoolGroup};
use crate::upgrade::render::render_plan;
use crate::upgrade::sim_pool::SimNodePool;
use crate::upgrade::snapshot::{PoolInfo, Snapshot, DEFAULT_BOOT_SECONDS};
use clap::{Args, Subcommand, ValueEnum};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `upgrade` subcommands.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UpgradeCommand,
}

/// `upgrade` verbs.
#[derive(Debug, Subcommand)]
pub enum UpgradeCommand {
    /// Compute the rolling-upgrade plan: outdated nodes, waves, surge per zone, estimated
    /// duration and blockers. Exits 1 when there are blockers.
    Plan(PlanArgs),
    /// Execute the plan: surge per zone, soft-evacuate, drain through the Eviction API
    /// paced by PDBs, terminate with decrement. Needs --cloud (only `sim` so far).
    /// Refuses plans with blockers (exit 1). Resumable: run it again after a crash.
    Apply(PlanArgs),
    /// Remove every marker (annotations, labels, taints, autoscaler marks) a run added; with
    /// --cloud, also put each pool back to the size and version it had before the run.
    Abort(AbortArgs),
}

/// Cloud providers for node pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudOpt {
    /// The simulated cloud of the embedded cluster (`/sim/cloud` on its API server).
    Sim,
}

/// Cluster connection flags.
#[derive(Debug, Args, Clone)]
pub struct ClusterArgs {
    /// Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, in-cluster].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context [default: the current context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Node-pool provider (pools, zones and sizes from the cloud). Without it, pools and
    /// zones come from node labels only. `apply` and `abort --cloud` need it; implemented: sim.
    #[arg(long, value_enum, value_name = "PROVIDER")]
    pub cloud: Option<CloudOpt>,
}

/// A per-pool value: `N` or `N%` (every pool), or `POOL=N` / `POOL=N%`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolValue {
    /// The pool, or `None` for the default.
    pub pool: Option<String>,
    /// The number (a percentage of the pool's nodes when `percent`).
    pub n: u32,
    /// `N%`: resolved against each pool's size once the cluster is read (surge rounds up,
    /// unavailable rounds down, as Deployments do).
    pub percent: bool,
}

fn parse_pool_value(s: &str) -> Result<PoolValue, String> {
    let (pool, n) = match s.split_once('=') {
        Some((p, n)) if !p.trim().is_empty() => (Some(p.trim().to_string()), n),
        Some(_) => return Err(format!("{s:?}: want N, N%, POOL=N or POOL=N%")),
        None => (None, s),
    };
    let (n, percent) = match n.trim().strip_suffix('%') {
        Some(p) => (p, true),
        None => (n.trim(), false),
    };
    let n: u32 = n.trim().parse().map_err(|_| {
        format!("{s:?}: want N, N%, POOL=N or POOL=N% with N a non-negative integer")
    })?;
    if percent && n > 100 {
        return Err(format!("{s:?}: a percentage is at most 100%"));
    }
    Ok(PoolValue { pool, n, percent })
}

/// `value` for a pool of `size` nodes: a percentage rounded up (`up`) or down.
fn resolve_value(v: &PoolValue, size: u32, up: bool) -> u32 {
    if !v.percent {
        return v.n;
    }
    let scaled = u64::from(size) * u64::from(v.n);
    (if up {
        scaled.div_ceil(100)
    } else {
        scaled / 100
    }) as u32
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
pub struct PlanArgs {
    /// Cluster connection.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Kubelet version to reach, e.g. v1.34.1 (a prefix such as 1.34 matches any patch).
    #[arg(long, value_name = "VERSION")]
    pub target_version: String,
    /// Only these pools (repeatable) [default: all].
    #[arg(long = "pool", value_name = "NAME")]
    pub pools: Vec<String>,
    /// New nodes above pool size at once: N or N% (of each pool's nodes, rounded up) for every
    /// pool, or POOL=N / POOL=N% (repeatable).
    #[arg(long, value_name = "[POOL=]N", default_value = "1", value_parser = parse_pool_value)]
    pub max_surge: Vec<PoolValue>,
    /// Old nodes drained without a ready replacement at once: N or N% (rounded down) for
    /// every pool, or POOL=N / POOL=N% (repeatable).
    #[arg(long, value_name = "[POOL=]N", default_value = "0", value_parser = parse_pool_value)]
    pub max_unavailable: Vec<PoolValue>,
    /// Estimated drain time of one node.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = super::args::duration)]
    pub drain_estimate: Duration,
    /// Estimated terminate time of one instance.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = super::args::duration)]
    pub terminate_estimate: Duration,
    /// Estimated time from an eviction to the replacement pod being Ready.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::args::duration)]
    pub pod_ready_estimate: Duration,
    /// A new node must stay ready this long before it counts.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::args::duration)]
    pub min_ready: Duration,
    /// Output format (json goes to stdout; the human plan always goes to stderr).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Also write the JSON (plan, or apply report) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// apply: namespace of the single-writer Lease.
    #[arg(long, value_name = "NS", default_value = "kube-system")]
    pub lease_namespace: String,
    /// apply: report a drain that made no progress for this long (Event, status, progress).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::args::duration)]
    pub stuck_report_after: Duration,
    /// apply: leave a stuck node cordoned after this long, continue, fail at the end.
    /// Forced (PDB-bypassing) deletes are never done.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = super::args::duration)]
    pub stuck_leave_after: Duration,
    /// apply: stop starting new nodes once this many were left cordoned.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub max_blocked_nodes: u32,
    /// apply: a surge replacement that has not passed the readiness gate this long after
    /// it was requested fails: its pool stops (the old node keeps serving, never cordoned),
    /// the other pools go on, the run fails at the end. The next apply retries it.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = super::args::duration)]
    pub new_node_timeout: Duration,
    /// apply: duration of the single-writer Lease (whole seconds, renewed at a third): how
    /// long the next apply waits after this one was killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_lease_duration)]
    pub lease_duration: Duration,
    /// apply: give up (markers kept; run again to resume, or abort) after this long.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = super::args::duration)]
    pub timeout: Duration,
}

/// Flags of `abort`.
#[derive(Debug, Args, Clone)]
pub struct AbortArgs {
    /// Cluster connection.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Namespace of the single-writer Lease.
    #[arg(long, value_name = "NS", default_value = "kube-system")]
    pub lease_namespace: String,
    /// Output format (json goes to stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Runs `upgrade …` and returns the exit code.
pub async fn run(args: UpgradeArgs) -> u8 {
    match args.command {
        UpgradeCommand::Plan(a) => run_plan(a).await,
        UpgradeCommand::Apply(a) => run_apply(a).await,
        UpgradeCommand::Abort(a) => run_abort(a).await,
    }
}

fn usage(msg: &str) -> u8 {
    eprintln!("error: {msg}");
    exit_code::USAGE
}

fn kube_failure(e: &KubeError) -> u8 {
    eprintln!("error: {e}");
    if e.is_infra() {
        exit_code::INFRA
    } else {
        exit_code::USAGE
    }
}

/// Resolves flags into planner options (pure). `sizes` (nodes per pool, once the cluster is
/// read) turn percentages into counts; without them a percentage only counts as non-zero for
/// the checks that can be made before connecting.
fn plan_options(
    a: &PlanArgs,
    sizes: Option<&BTreeMap<String, u32>>,
) -> Result<PlanOptions, String> {
    let mut default_limits = PoolLimits::default();
    let mut limits: BTreeMap<String, PoolLimits> = BTreeMap::new();
    let mut seen_default = (false, false);
    // Pool-specific values start from the resolved defaults, so apply defaults first.
    for (i, values) in [&a.max_surge, &a.max_unavailable].into_iter().enumerate() {
        for v in values.iter().filter(|v| v.pool.is_none()) {
            let flag = if i == 0 {
                "--max-surge"
            } else {
                "--max-unavailable"
            };
            let seen = if i == 0 {
                &mut seen_default.0
            } else {
                &mut seen_default.1
            };
            if *seen {
                return Err(format!(
                    "{flag}: the default (N without POOL=) is given twice"
                ));
            }
            *seen = true;
            // Before the sizes are known a percentage stands for "some".
            let n = if v.percent { u32::from(v.n > 0) } else { v.n };
            if i == 0 {
                default_limits.max_surge = n;
            } else {
                default_limits.max_unavailable = n;
            }
        }
    }
    // With the sizes known, every pool gets its own entry: a default percentage resolves
    // differently per pool.
    if let Some(sizes) = sizes {
        for (pool, size) in sizes {
            let mut l = default_limits;
            for v in a.max_surge.iter().filter(|v| v.pool.is_none()) {
                l.max_surge = resolve_value(v, *size, true);
            }
            for v in a.max_unavailable.iter().filter(|v| v.pool.is_none()) {
                l.max_unavailable = resolve_value(v, *size, false);
            }
            if l != default_limits {
                limits.insert(pool.clone(), l);
            }
        }
    }
    for (i, values) in [&a.max_surge, &a.max_unavailable].into_iter().enumerate() {
        for v in values {
            if let Some(p) = &v.pool {
                let size = sizes.and_then(|s| s.get(p)).copied();
                let n = match size {
                    Some(size) => resolve_value(v, size, i == 0),
                    None if v.percent => u32::from(v.n > 0),
                    None => v.n,
                };
                let l = limits.entry(p.clone()).or_insert(default_limits);
                if i == 0 {
                    l.max_surge = n;
                } else {
                    l.max_unavailable = n;
                }
            }
        }
    }
    if let Some(sizes) = sizes {
        let zero: Vec<String> = sizes
            .iter()
            .filter(|(p, _)| a.pools.is_empty() || a.pools.contains(*p))
            .filter(|(p, _)| {
                let l = limits.get(*p).copied().unwrap_or(default_limits);
                l.max_surge == 0 && l.max_unavailable == 0
            })
            .map(|(p, n)| format!("{p} ({n} nodes)"))
            .collect();
        if !zero.is_empty() {
            return Err(format!(
                "--max-surge and --max-unavailable resolve to 0 for pool {}: nothing there could \
                 ever be replaced (a percentage of a small pool rounds down for \
                 --max-unavailable; give a count, or a surge)",
                zero.join(", ")
            ));
        }
    }
    if default_limits.max_surge == 0 && default_limits.max_unavailable == 0 && limits.is_empty() {
        return Err(
            "--max-surge and --max-unavailable are both 0: nothing could ever be replaced".into(),
        );
    }
    if a.target_version.trim().trim_start_matches('v').is_empty() {
        return Err("--target-version: must not be empty".into());
    }
    Ok(PlanOptions {
        target_version: a.target_version.trim().to_string(),
        pools: a.pools.iter().cloned().collect::<BTreeSet<_>>(),
        default_limits,
        limits,
        timings: Timings {
            drain_seconds: a.drain_estimate.as_secs(),
            terminate_seconds: a.terminate_estimate.as_secs(),
            pod_ready_seconds: a.pod_ready_estimate.as_secs(),
            min_ready_seconds: a.min_ready.as_secs(),
        },
    })
}

async fn connect(c: &ClusterArgs) -> Result<KubeCluster, u8> {
    KubeCluster::connect(c.kubeconfig.as_deref(), c.context.as_deref())
        .await
        .map_err(|e| kube_failure(&e))
}

/// Everything `plan` and `apply` share: connect, LIST once, snapshot, (cloud pools), plan.
struct Planned {
    cluster: KubeCluster,
    sim_pool: Option<SimNodePool>,
    plan: crate::upgrade::plan::Plan,
    opts: PlanOptions,
    cloud_calls: BTreeMap<String, u64>,
}

async fn compute_plan(a: &PlanArgs) -> Result<Planned, u8> {
    // Flag errors first, before connecting; percentages are resolved once the pools are known.
    plan_options(a, None).map_err(|e| usage(&e))?;
    let cluster = connect(&a.cluster).await?;
    let objects = cluster.list_objects().await.map_err(|e| kube_failure(&e))?;
    let mut snapshot = Snapshot::from_k8s(&objects).map_err(|e| {
        eprintln!("error: {e}");
        exit_code::INFRA
    })?;
    let mut cloud_calls = BTreeMap::new();
    let mut sim_pool = None;
    if a.cluster.cloud == Some(CloudOpt::Sim) {
        let pool = SimNodePool::new(cluster.client());
        let groups = pool.groups().await.map_err(|e| {
            eprintln!("error: --cloud sim: {e}");
            exit_code::INFRA
        })?;
        snapshot = snapshot.with_pools(groups.iter().map(pool_info).collect());
        cloud_calls = pool.cloud_calls();
        sim_pool = Some(pool);
    }
    let sizes: BTreeMap<String, u32> = snapshot
        .pools
        .iter()
        .map(|p| (p.name.clone(), p.nodes_per_zone.values().sum()))
        .collect();
    let opts = plan_options(a, Some(&sizes)).map_err(|e| usage(&e))?;
    let plan = plan(&snapshot, &opts).map_err(|e| usage(&e.to_string()))?;
    // Kubelets must not be newer than kube-apiserver (the version skew policy).
    match cluster.client().apiserver_version().await {
        Ok(info) => {
            crate::upgrade::version::check_target(
                &opts.target_version,
                &[],
                Some(&info.git_version),
            )
            .map_err(|e| usage(&e))?;
        }
        Err(e) => tracing::warn!(
            "cannot read the control plane's version ({e}); version skew not checked"
        ),
    }
    eprint!("{}", render_plan(&plan));
    Ok(Planned {
        cluster,
        sim_pool,
        plan,
        opts,
        cloud_calls,
    })
}

fn emit(a: &PlanArgs, json: &serde_json::Value) -> Result<(), u8> {
    if a.format == Format::Json {
        println!("{json}");
    }
    match &a.report {
        Some(path) => write_json(path, json),
        None => Ok(()),
    }
}

async fn run_plan(a: PlanArgs) -> u8 {
    let p = match compute_plan(&a).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut json = match serde_json::to_value(&p.plan) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: failed to encode the plan: {e}");
            return exit_code::INFRA;
        }
    };
    json["format_version"] = serde_json::json!(1);
    json["kube_api_calls"] = serde_json::json!(p.cluster.api_calls());
    json["cloud_api_calls"] = serde_json::json!(p.cloud_calls);
    if let Err(code) = emit(&a, &json) {
        return code;
    }
    if p.plan.blockers.is_empty() {
        exit_code::OK
    } else {
        exit_code::FAILED
    }
}

fn identity() -> String {
    format!(
        "e2e-gate@{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        std::process::id()
    )
}

async fn run_apply(a: PlanArgs) -> u8 {
    if a.cluster.cloud.is_none() {
        return usage("`upgrade apply` needs --cloud to create and terminate instances (implemented: --cloud sim)");
    }
    let p = match compute_plan(&a).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    if !p.plan.blockers.is_empty() {
        eprintln!(
            "error: refusing to apply: the plan has {} blocker(s); fix them (see above) and run again",
            p.plan.blockers.len()
        );
        return exit_code::FAILED;
    }
    let Some(pool) = p.sim_pool else {
        return usage("`upgrade apply` needs --cloud sim");
    };
    let cfg = EngineConfig {
        run_id: format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            std::process::id()
        ),
        identity: identity(),
        lease_namespace: a.lease_namespace.clone(),
        policy: StuckDrainPolicy {
            report_after: a.stuck_report_after,
            force: None,
            leave_cordoned_after: a.stuck_leave_after,
            max_blocked_nodes: a.max_blocked_nodes,
        },
        min_ready: a.min_ready,
        ready_timeout: a.new_node_timeout,
        lease_duration: a.lease_duration,
        tick: Duration::from_secs(1),
        deadline: a.timeout,
    };
    let result = engine::apply(&p.cluster, &pool, &p.plan, &p.opts, &cfg, |pr| {
        eprintln!("{}", pr.line())
    })
    .await;
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            // The report is written on failure too (the gate and Jenkins archive it): the
            // error, and how many planned nodes the cluster no longer has.
            let mut failed = crate::upgrade::report::UpgradeReport::new(
                &p.plan.target_version,
                p.plan.outdated.len() as u64,
            );
            failed.error = Some(e.to_string());
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
            if let Ok(json) = serde_json::to_value(&failed) {
                let _ = emit(&a, &json);
            }
            return match e {
                EngineError::Deadline(_) => exit_code::FAILED,
                EngineError::Kube(k) if !k.is_infra() => exit_code::USAGE,
                _ => exit_code::INFRA,
            };
        }
    };
    for (k, v) in pool.cloud_calls() {
        *report.cloud_api_calls.entry(k).or_default() += v;
    }
    for (k, v) in &p.cloud_calls {
        *report.cloud_api_calls.entry(k.clone()).or_default() += v;
    }
    let json = serde_json::to_value(&report).unwrap_or_default();
    if let Err(code) = emit(&a, &json) {
        return code;
    }
    for b in &report.blocked_nodes {
        eprintln!("apply: blocked: {}: {}", b.node, b.reason);
    }
    eprintln!(
        "apply: {}/{} node(s) replaced in {:.0}s{}, {} eviction(s), {} blocked{}",
        report.nodes_replaced + report.nodes_found_replaced,
        report.nodes_total,
        report.duration_seconds,
        if report.nodes_found_replaced > 0 {
            format!(
                " ({} by this run, {} already replaced when it took over)",
                report.nodes_replaced, report.nodes_found_replaced
            )
        } else {
            String::new()
        },
        report.evictions,
        report.blocked_nodes.len(),
        if report.stopped_pools.is_empty() {
            String::new()
        } else {
            format!("; stopped pool(s): {}", report.stopped_pools.join(", "))
        }
    );
    if report.blocked_nodes.is_empty()
        && report.nodes_replaced + report.nodes_found_replaced == report.nodes_total
    {
        exit_code::OK
    } else {
        exit_code::FAILED
    }
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), u8> {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    crate::atomic_write::write_atomically(path, (text + "\n").as_bytes()).map_err(|e| {
        eprintln!("error: failed to write --report {}: {e}", path.display());
        exit_code::INFRA
    })
}

/// The planner's view of a cloud pool.
fn pool_info(g: &PoolGroup) -> PoolInfo {
    PoolInfo {
        name: g.name.clone(),
        nodes_per_zone: g.desired_per_zone.clone(),
        boot_seconds: g.boot_seconds.unwrap_or(DEFAULT_BOOT_SECONDS),
    }
}

async fn run_abort(a: AbortArgs) -> u8 {
    let cluster = match connect(&a.cluster).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let sim_pool =
        (a.cluster.cloud == Some(CloudOpt::Sim)).then(|| SimNodePool::new(cluster.client()));
    let pool = sim_pool.as_ref().map(|p| p as &dyn NodePool);
    // A Lease left by an `apply` that was killed expires after --lease-duration; wait it out
    // (as `apply` does) instead of refusing, but never longer than one Lease term.
    let mut waited = false;
    let outcome = loop {
        match abort(
            &cluster,
            &a.lease_namespace,
            &identity(),
            chrono::Utc::now(),
            pool,
        )
        .await
        {
            Err(AbortError::Kube(KubeError::LeaseHeld { holder, until, .. })) if !waited => {
                let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default()
                    + Duration::from_millis(200);
                if wait > Duration::from_secs(LEASE_SECONDS as u64 + 5) {
                    eprintln!(
                        "error: the upgrade Lease is held by {holder} until {until}; \
                         is an `apply` still running? Stop it first"
                    );
                    return exit_code::FAILED;
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
            exit_code::OK
        }
        Err(AbortError::Kube(e @ KubeError::LeaseHeld { .. })) => {
            eprintln!("error: {e}");
            exit_code::FAILED
        }
        Err(AbortError::Kube(e)) => kube_failure(&e),
        Err(AbortError::Pool(e)) => {
            eprintln!("error: cloud: {e}");
            exit_code::INFRA
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        plan_options(&t.a, None)
    }

    fn parse_sized(args: &[&str], sizes: &[(&str, u32)]) -> Result<PlanOptions, String> {
        let mut v = vec!["t", "--target-version", "v1.34.1"];
        v.extend_from_slice(args);
        let t = T::try_parse_from(v).map_err(|e| e.to_string())?;
        let sizes = sizes.iter().map(|(p, n)| (p.to_string(), *n)).collect();
        plan_options(&t.a, Some(&sizes))
    }

    #[test]
    fn percentages_resolve_per_pool_surge_up_unavailable_down() {
        let o = parse_sized(
            &["--max-surge", "10%", "--max-unavailable", "25%"],
            &[("big", 300), ("small", 3)],
        )
        .expect("ok");
        assert_eq!(
            o.limits_for("big"),
            PoolLimits {
                max_surge: 30,
                max_unavailable: 75
            }
        );
        assert_eq!(
            o.limits_for("small"),
            PoolLimits {
                max_surge: 1,
                max_unavailable: 0
            },
            "10% of 3 rounds up to 1 surge, 25% of 3 down to 0 unavailable"
        );
        let o = parse_sized(&["--max-surge", "gpu=50%"], &[("gpu", 5), ("w", 9)]).expect("ok");
        assert_eq!(o.limits_for("gpu").max_surge, 3);
        assert_eq!(o.limits_for("w").max_surge, 1, "the default count");
        let e = parse_sized(
            &["--max-surge", "0", "--max-unavailable", "10%"],
            &[("small", 4), ("big", 40)],
        )
        .expect_err("rounds to nothing");
        assert!(e.contains("small (4 nodes)") && !e.contains("big"), "{e}");
        assert!(parse(&["--max-surge", "150%"])
            .expect_err("over 100")
            .contains("at most 100%"));
        assert!(parse(&["--max-surge", "0", "--max-unavailable", "10%"]).is_ok());
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
