//! Pure: the typed options of a rolling upgrade — what `upgrade plan|apply` flags and a gate
//! profile's `[profile.NAME.upgrade]` table set — with one validation for both, and their
//! resolution into the planner's [`PlanOptions`] and the engine's [`EngineConfig`].

use super::aws_pool::AwsSettings;
use super::drain_policy::StuckDrainPolicy;
use super::engine::EngineConfig;
use super::plan::{normalize, PlanError, PlanOptions, PoolLimits, Timings};
use super::use_case::Cloud;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// `N` or `N%` of a pool's nodes, for every pool or one (`POOL=N`, `POOL=N%`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolAmount {
    /// The pool, or `None` for every pool.
    pub(crate) pool: Option<String>,
    /// The number (a percentage when `percent`).
    pub(crate) n: u32,
    /// `N%` of the pool's nodes: resolved once the pools are read (surge rounds up,
    /// unavailable rounds down, as Deployments do).
    pub(crate) percent: bool,
}

impl PoolAmount {
    /// A count for every pool.
    pub(crate) fn count(n: u32) -> Self {
        PoolAmount {
            pool: None,
            n,
            percent: false,
        }
    }

    /// For a pool of `size` nodes (rounding up for `up`). Before the sizes are known
    /// (`None`) a percentage stands for "some".
    fn resolve(&self, size: Option<u32>, up: bool) -> u32 {
        let scaled = |size| u64::from(size) * u64::from(self.n);
        match size {
            _ if !self.percent => self.n,
            None => u32::from(self.n > 0),
            Some(size) if up => scaled(size).div_ceil(100) as u32,
            Some(size) => (scaled(size) / 100) as u32,
        }
    }
}

/// Parses `N`, `N%`, `POOL=N` or `POOL=N%`.
pub(crate) fn parse_pool_amount(s: &str) -> Result<PoolAmount, String> {
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
    Ok(PoolAmount { pool, n, percent })
}

/// Everything an upgrade needs besides the cluster. Defaults are `upgrade apply`'s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UpgradeOptions {
    /// Kubelet version to reach.
    pub(crate) target_version: String,
    /// Only these pools (empty: all).
    pub(crate) pools: BTreeSet<String>,
    /// `--max-surge` values, in order (a later default or pool value replaces an earlier one
    /// only when given once; see [`resolve_limits`]).
    pub(crate) max_surge: Vec<PoolAmount>,
    /// `--max-unavailable` values.
    pub(crate) max_unavailable: Vec<PoolAmount>,
    /// Planner estimates (their `min_ready_seconds` always follows `min_ready`).
    pub(crate) timings: Timings,
    /// A new node must stay ready this long before it counts.
    pub(crate) min_ready: Duration,
    /// Namespace of the single-writer Lease.
    pub(crate) lease_namespace: String,
    /// Report a drain that made no progress for this long.
    pub(crate) stuck_report_after: Duration,
    /// Leave a stuck node cordoned after this long.
    pub(crate) stuck_leave_after: Duration,
    /// Stop starting nodes once this many were left cordoned.
    pub(crate) max_blocked_nodes: u32,
    /// A replacement not Ready this long after it was requested fails.
    pub(crate) new_node_timeout: Duration,
    pub(crate) lease_duration: Duration,
    /// Give up after this long.
    pub(crate) timeout: Duration,
}

impl Default for UpgradeOptions {
    fn default() -> Self {
        UpgradeOptions {
            target_version: String::new(),
            pools: BTreeSet::new(),
            max_surge: vec![PoolAmount::count(1)],
            max_unavailable: vec![PoolAmount::count(0)],
            timings: Timings::default(),
            min_ready: Duration::ZERO,
            lease_namespace: "kube-system".into(),
            stuck_report_after: Duration::from_secs(5 * 60),
            stuck_leave_after: Duration::from_secs(30 * 60),
            max_blocked_nodes: 1,
            new_node_timeout: Duration::from_secs(20 * 60),
            lease_duration: Duration::from_secs(30),
            timeout: Duration::from_secs(6 * 3600),
        }
    }
}

impl UpgradeOptions {
    /// The planner's options. `sizes` (nodes per pool, once the pools are read) turn
    /// percentages into counts; without them only what can be checked before connecting is.
    pub(crate) fn plan_options(
        &self,
        sizes: Option<&BTreeMap<String, u32>>,
    ) -> Result<PlanOptions, String> {
        if normalize(&self.target_version).is_empty() {
            return Err(PlanError::EmptyTargetVersion.to_string());
        }
        let (default_limits, limits) =
            resolve_limits(&self.max_surge, &self.max_unavailable, sizes, &self.pools)?;
        Ok(PlanOptions {
            target_version: self.target_version.trim().to_string(),
            pools: self.pools.clone(),
            default_limits,
            limits,
            // `min_ready` is the one setting; the estimate follows it (a gate profile sets
            // only `min_ready`, and its plan once estimated without it).
            timings: Timings {
                min_ready_seconds: self.min_ready.as_secs(),
                ..self.timings
            },
        })
    }

    /// The engine's settings for a run with this id and Lease identity.
    pub(crate) fn engine_config(&self, run_id: String, identity: String) -> EngineConfig {
        EngineConfig {
            run_id,
            identity,
            lease_namespace: self.lease_namespace.clone(),
            policy: StuckDrainPolicy {
                report_after: self.stuck_report_after,
                leave_cordoned_after: self.stuck_leave_after,
                max_blocked_nodes: self.max_blocked_nodes,
            },
            min_ready: self.min_ready,
            ready_timeout: self.new_node_timeout,
            lease_duration: self.lease_duration,
            tick: Duration::from_secs(1),
            deadline: self.timeout,
        }
    }
}

/// The default limits and the per-pool ones from `--max-surge` and `--max-unavailable`
/// values: a default given twice is an error, pool values start from the defaults, and with
/// `sizes` every pool's percentages are resolved and a pool left with nothing to replace with
/// is refused by name.
pub(crate) fn resolve_limits(
    surge: &[PoolAmount],
    unavailable: &[PoolAmount],
    sizes: Option<&BTreeMap<String, u32>>,
    only: &BTreeSet<String>,
) -> Result<(PoolLimits, BTreeMap<String, PoolLimits>), String> {
    /// The surge (`true`) or unavailable count of `l`.
    fn of(l: &mut PoolLimits, surge: bool) -> &mut u32 {
        if surge {
            &mut l.max_surge
        } else {
            &mut l.max_unavailable
        }
    }
    let flags = [
        ("--max-surge", surge, true),
        ("--max-unavailable", unavailable, false),
    ];
    let mut default_limits = PoolLimits::default();
    for (flag, values, surge) in flags {
        let defaults: Vec<&PoolAmount> = values.iter().filter(|v| v.pool.is_none()).collect();
        if defaults.len() > 1 {
            return Err(format!(
                "{flag}: the default (N without POOL=) is given twice"
            ));
        }
        if let Some(v) = defaults.first() {
            *of(&mut default_limits, surge) = v.resolve(None, surge);
        }
    }
    let mut limits: BTreeMap<String, PoolLimits> = BTreeMap::new();
    // With the sizes known every pool gets its own entry: a default percentage resolves
    // differently per pool.
    for (pool, size) in sizes.into_iter().flatten() {
        let mut l = default_limits;
        for (_, values, surge) in flags {
            for v in values.iter().filter(|v| v.pool.is_none()) {
                *of(&mut l, surge) = v.resolve(Some(*size), surge);
            }
        }
        if l != default_limits {
            limits.insert(pool.clone(), l);
        }
    }
    for (_, values, surge) in flags {
        for v in values {
            let Some(p) = &v.pool else { continue };
            let n = v.resolve(sizes.and_then(|s| s.get(p)).copied(), surge);
            *of(limits.entry(p.clone()).or_insert(default_limits), surge) = n;
        }
    }
    if default_limits.max_surge == 0 && default_limits.max_unavailable == 0 && limits.is_empty() {
        return Err(
            "--max-surge and --max-unavailable are both 0: nothing could ever be replaced".into(),
        );
    }
    if let Some(sizes) = sizes {
        let zero: Vec<String> = sizes
            .iter()
            .filter(|(p, _)| only.is_empty() || only.contains(*p))
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
    Ok((default_limits, limits))
}

/// A gate profile's `[profile.NAME.upgrade]` table: the engine's options, every key optional
/// (a profile inherits the keys it does not set), unknown keys rejected with the valid ones
/// named. Amounts are written as for the flags (`2`, `"10%"`, `"gpu=1"`), durations as
/// `"20m"`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeSettings {
    /// `--max-surge`: a number, or strings such as `"10%"`, `["1", "gpu=0"]`.
    pub(crate) max_surge: Option<AmountList>,
    /// `--max-unavailable`.
    pub(crate) max_unavailable: Option<AmountList>,
    /// `--pool` (only these pools).
    pub(crate) pools: Option<Vec<String>>,
    /// `--min-ready`.
    pub(crate) min_ready: Option<String>,
    /// `--new-node-timeout`.
    pub(crate) new_node_timeout: Option<String>,
    /// `--stuck-report-after`.
    pub(crate) stuck_report_after: Option<String>,
    /// `--stuck-leave-after`.
    pub(crate) stuck_leave_after: Option<String>,
    /// `--max-blocked-nodes`.
    pub(crate) max_blocked_nodes: Option<u32>,
    /// `--lease-duration`.
    pub(crate) lease_duration: Option<String>,
    /// `--timeout`.
    pub(crate) timeout: Option<String>,
    /// `--pool-command` (with it the pools are driven through `--cloud exec`).
    pub(crate) pool_command: Option<String>,
    /// `--pool-command-timeout`.
    pub(crate) pool_command_timeout: Option<String>,
    /// `--aws-cluster` (with it the pools are the cluster's Auto Scaling groups: `--cloud aws`).
    pub(crate) aws_cluster: Option<String>,
    /// `--aws-region`.
    pub(crate) aws_region: Option<String>,
    /// `--aws-endpoint-url`.
    pub(crate) aws_endpoint_url: Option<String>,
    /// `--aws-pool-tag`.
    pub(crate) aws_pool_tag: Option<String>,
    /// `--aws-launch-template-version`.
    pub(crate) aws_launch_template_version: Option<String>,
}

/// How long one call of a pool command may take unless told (`--pool-command-timeout`).
pub(crate) const DEFAULT_POOL_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One amount or several, as TOML allows them to be written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum AmountList {
    /// `max_surge = 2`.
    Number(u32),
    /// `max_surge = "10%"`.
    One(String),
    /// `max_surge = ["1", "gpu=0"]`.
    Many(Vec<String>),
}

impl AmountList {
    fn parse(&self) -> Result<Vec<PoolAmount>, String> {
        match self {
            AmountList::Number(n) => Ok(vec![PoolAmount::count(*n)]),
            AmountList::One(s) => Ok(vec![parse_pool_amount(s)?]),
            AmountList::Many(v) => v.iter().map(|s| parse_pool_amount(s)).collect(),
        }
    }
}

impl UpgradeSettings {
    /// This table's keys over `parent`'s (inheritance: the child's set keys win).
    pub(crate) fn over(&self, parent: &UpgradeSettings) -> UpgradeSettings {
        macro_rules! or {
            ($($f:ident),*) => { UpgradeSettings { $($f: self.$f.clone().or_else(|| parent.$f.clone())),* } };
        }
        or!(
            max_surge,
            max_unavailable,
            pools,
            min_ready,
            new_node_timeout,
            stuck_report_after,
            stuck_leave_after,
            max_blocked_nodes,
            lease_duration,
            timeout,
            pool_command,
            pool_command_timeout,
            aws_cluster,
            aws_region,
            aws_endpoint_url,
            aws_pool_tag,
            aws_launch_template_version
        )
    }

    /// The cloud this table names: `--cloud exec` when `pool_command` is set, `--cloud aws`
    /// when `aws_cluster` is, else none (the caller's default). Errors name the key.
    pub(crate) fn cloud(
        &self,
        duration: impl Fn(&str) -> Result<Duration, String>,
    ) -> Result<Option<Cloud>, String> {
        match &self.aws_cluster {
            Some(_) if self.pool_command.is_some() => {
                return Err("pool_command and aws_cluster: name one cloud, not both".into())
            }
            Some(c) if c.trim().is_empty() => {
                return Err(
                    "aws_cluster: empty; name the cluster of the kubernetes.io/cluster/NAME tag"
                        .into(),
                )
            }
            Some(c) => {
                return Ok(Some(Cloud::Aws(AwsSettings {
                    cluster: c.trim().to_string(),
                    region: self.aws_region.clone(),
                    endpoint_url: self.aws_endpoint_url.clone(),
                    pool_tag: self.aws_pool_tag.clone(),
                    launch_template_version: self
                        .aws_launch_template_version
                        .clone()
                        .unwrap_or_else(|| "$Latest".into()),
                })))
            }
            None => {
                let set = [
                    ("aws_region", &self.aws_region),
                    ("aws_endpoint_url", &self.aws_endpoint_url),
                    ("aws_pool_tag", &self.aws_pool_tag),
                    (
                        "aws_launch_template_version",
                        &self.aws_launch_template_version,
                    ),
                ];
                if let Some((key, _)) = set.iter().find(|(_, v)| v.is_some()) {
                    return Err(format!("{key}: set without aws_cluster"));
                }
            }
        }
        let timeout = match &self.pool_command_timeout {
            Some(t) => duration(t).map_err(|e| format!("pool_command_timeout: {e}"))?,
            None => DEFAULT_POOL_COMMAND_TIMEOUT,
        };
        match &self.pool_command {
            Some(c) if c.trim().is_empty() => {
                Err("pool_command: empty; name the command that manages the pools".into())
            }
            Some(c) => Ok(Some(Cloud::Exec {
                command: c.clone(),
                timeout,
            })),
            None if self.pool_command_timeout.is_some() => {
                Err("pool_command_timeout: set without pool_command".into())
            }
            None => Ok(None),
        }
    }

    /// The options for `target_version` (empty when the profile has none), validated as the
    /// flags are; errors name the key.
    pub(crate) fn options(
        &self,
        target_version: &str,
        duration: impl Fn(&str) -> Result<Duration, String>,
    ) -> Result<UpgradeOptions, String> {
        let mut o = UpgradeOptions {
            target_version: target_version.to_string(),
            ..UpgradeOptions::default()
        };
        if let Some(v) = &self.max_surge {
            o.max_surge = v.parse().map_err(|e| format!("max_surge: {e}"))?;
        }
        if let Some(v) = &self.max_unavailable {
            o.max_unavailable = v.parse().map_err(|e| format!("max_unavailable: {e}"))?;
        }
        if let Some(p) = &self.pools {
            o.pools = p.iter().cloned().collect();
        }
        // Each duration key is named as its field.
        macro_rules! durations {
            ($($f:ident),*) => {$(
                if let Some(v) = &self.$f {
                    o.$f = duration(v).map_err(|e| format!("{}: {e}", stringify!($f)))?;
                }
            )*};
        }
        durations!(
            min_ready,
            new_node_timeout,
            stuck_report_after,
            stuck_leave_after,
            lease_duration,
            timeout
        );
        if o.lease_duration < Duration::from_secs(1) {
            return Err("lease_duration: a Lease lasts at least 1s (e.g. 30s)".into());
        }
        if let Some(n) = self.max_blocked_nodes {
            o.max_blocked_nodes = n;
        }
        // The same limit checks as the flags, before any cluster is touched (the target version
        // is the profile's own key, checked where it is used).
        resolve_limits(&o.max_surge, &o.max_unavailable, None, &o.pools).map_err(|e| {
            e.replace("--max-surge", "max_surge")
                .replace("--max-unavailable", "max_unavailable")
        })?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(s: &[(&str, u32)]) -> BTreeMap<String, u32> {
        s.iter().map(|(p, n)| (p.to_string(), *n)).collect()
    }

    fn amounts(s: &[&str]) -> Vec<PoolAmount> {
        s.iter()
            .map(|a| parse_pool_amount(a).expect("valid"))
            .collect()
    }

    #[test]
    fn percentages_resolve_per_pool_surge_up_unavailable_down() {
        let none = BTreeSet::new();
        let big_small = sizes(&[("big", 300), ("small", 3)]);
        let (d, l) = resolve_limits(
            &amounts(&["10%"]),
            &amounts(&["25%"]),
            Some(&big_small),
            &none,
        )
        .expect("ok");
        let o = PlanOptions {
            default_limits: d,
            limits: l,
            ..PlanOptions::default()
        };
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
        let (_, l) = resolve_limits(
            &amounts(&["gpu=50%"]),
            &[],
            Some(&sizes(&[("gpu", 5), ("w", 9)])),
            &none,
        )
        .expect("ok");
        assert_eq!(l["gpu"].max_surge, 3);
        assert!(!l.contains_key("w"), "the default count");
        let e = resolve_limits(
            &amounts(&["0"]),
            &amounts(&["10%"]),
            Some(&sizes(&[("small", 4), ("big", 40)])),
            &none,
        )
        .expect_err("rounds to nothing");
        assert!(e.contains("small (4 nodes)") && !e.contains("big"), "{e}");
        assert!(parse_pool_amount("150%")
            .expect_err("over 100")
            .contains("at most 100%"));
        assert!(resolve_limits(&amounts(&["0"]), &amounts(&["10%"]), None, &none).is_ok());
    }

    #[test]
    fn a_profile_table_is_validated_as_the_flags_are() {
        let d = |s: &str| -> Result<Duration, String> {
            s.strip_suffix('m')
                .and_then(|m| m.parse::<u64>().ok())
                .map(|m| Duration::from_secs(60 * m))
                .ok_or_else(|| format!("{s:?} is not a duration"))
        };
        let s: UpgradeSettings = toml::from_str(
            "max_surge = 2\nmax_unavailable = \"gpu=1\"\nnew_node_timeout = \"5m\"\n",
        )
        .expect("parses");
        let o = s.options("v1.34.1", d).expect("valid");
        assert_eq!(o.max_surge, vec![PoolAmount::count(2)]);
        assert_eq!(o.max_unavailable, amounts(&["gpu=1"]));
        assert_eq!(o.new_node_timeout, Duration::from_secs(300));
        let child: UpgradeSettings = toml::from_str("max_surge = \"10%\"").expect("parses");
        let merged = child.over(&s);
        assert_eq!(merged.max_surge, Some(AmountList::One("10%".into())));
        assert_eq!(merged.new_node_timeout, Some("5m".into()));
        let e = toml::from_str::<UpgradeSettings>("max_surg = 1")
            .expect_err("unknown key")
            .to_string();
        assert!(
            e.contains("max_surg") && e.contains("max_surge") && e.contains("new_node_timeout"),
            "{e}"
        );
        let slow: UpgradeSettings = toml::from_str("min_ready = \"2m\"").expect("parses");
        let plan = slow
            .options("v1.34.1", d)
            .expect("valid")
            .plan_options(None)
            .expect("valid");
        assert_eq!(
            plan.timings.min_ready_seconds, 120,
            "the estimate counts min_ready"
        );
        let zero: UpgradeSettings = toml::from_str("max_surge = 0").expect("parses");
        assert!(zero
            .options("v1.34.1", d)
            .expect_err("both 0")
            .contains("max_surge"));
        let bad: UpgradeSettings = toml::from_str("timeout = \"soon\"").expect("parses");
        assert!(bad
            .options("v1.34.1", d)
            .expect_err("bad")
            .starts_with("timeout:"));
    }
}
