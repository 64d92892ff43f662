//! The pure half of `--cloud aws`: which Auto Scaling groups form which node pool, how an
//! instance's lifecycle and target health read as the engine's [`Instance`] states, and the
//! record of what a run changed on a group (kept as a tag on the group itself, so a resumed
//! run or `abort` on another machine finds it). No I/O; [`super::aws_pool`] does the calls.

use super::pool::{Instance, InstanceLifecycle, LbState, PoolError, PoolGroup};
use std::collections::BTreeMap;

/// Tag keys that name a group's node pool when `--aws-pool-tag` is not given, first match
/// wins (ours, EKS managed node groups, kops instance groups). The value must equal the pool
/// label of the group's Nodes.
pub(crate) const DEFAULT_POOL_TAGS: &[&str] = &[
    "e2e-gate.io/pool",
    "eks:nodegroup-name",
    "kops.k8s.io/instancegroup",
];

/// The tag on a group that records what a run changed: `max=N;suspended=A,B`.
pub(crate) const HELD_TAG: &str = "e2e-gate.io/held";

/// Processes that would fight a roll: AZRebalance terminates instances to even out zones
/// (it would undo the per-zone surge), alarms and scheduled actions change the desired size
/// behind the engine's back.
pub(crate) const PROCESSES_HELD: &[&str] =
    &["AZRebalance", "AlarmNotification", "ScheduledActions"];

/// A group's launch template reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchTemplateRef {
    /// `lt-…`, when the group names the template by id.
    pub(crate) id: Option<String>,
    /// The template's name, when the group names it by name.
    pub(crate) name: Option<String>,
    /// `1`, `$Latest`, `$Default`.
    pub(crate) version: String,
}

/// One Auto Scaling group, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AsgView {
    pub(crate) name: String,
    /// Availability zones it launches in.
    pub(crate) zones: Vec<String>,
    pub(crate) desired: u32,
    pub(crate) max: u32,
    /// Launch template, or why it cannot be pointed at a launch template version (launch
    /// configuration, mixed instances policy, none).
    pub(crate) launch_template: Result<LaunchTemplateRef, String>,
    pub(crate) tags: BTreeMap<String, String>,
    /// ELBv2 target groups.
    pub(crate) target_groups: Vec<String>,
    pub(crate) classic_lbs: Vec<String>,
    pub(crate) suspended: Vec<String>,
    /// As the engine reads them ([`lifecycle`]; version: the launch template version); no
    /// pool or LB state yet.
    pub(crate) instances: Vec<Instance>,
}

/// A node pool, group name → group: one group per zone (CLM and kops style), or one group
/// over several zones (an EKS managed node group).
pub(crate) type PoolLayout = BTreeMap<String, AsgView>;

/// The group of pool `p` that launches in `zone`.
pub(crate) fn group_in<'a>(p: &'a PoolLayout, zone: &str) -> Option<&'a AsgView> {
    p.values().find(|g| g.zones.iter().any(|z| z == zone))
}

/// The pool a group belongs to: the first of `pool_tags` it carries.
pub(crate) fn pool_of<'a>(g: &'a AsgView, pool_tags: &[String]) -> Option<&'a str> {
    pool_tags
        .iter()
        .find_map(|k| g.tags.get(k))
        .map(String::as_str)
}

/// Groups the cluster's groups into pools. A group without a pool tag is not a node pool the
/// engine may drive and is left out. A pool is one group per zone or one group over several
/// zones; a pool mixing the two, or two groups of one pool in one zone, are errors naming
/// them.
pub(crate) fn layout(
    groups: &[AsgView],
    pool_tags: &[String],
) -> Result<BTreeMap<String, PoolLayout>, PoolError> {
    let mut out: BTreeMap<String, PoolLayout> = BTreeMap::new();
    for g in groups {
        let Some(pool) = pool_of(g, pool_tags) else {
            tracing::debug!(group = %g.name, tags = ?pool_tags, "group has no pool tag; left alone");
            continue;
        };
        let entry = out.entry(pool.to_string()).or_default();
        if let Some(other) = entry
            .values()
            .find(|o| o.zones.len() > 1 || g.zones.len() > 1)
        {
            let (multi, single) = if other.zones.len() > 1 {
                (other, g)
            } else {
                (g, other)
            };
            return Err(PoolError::api(format!(
                "pool {pool:?} has Auto Scaling group {:?} over zones {} and also group {:?}; a \
                 pool is one group per zone or one group over several zones, so tag only one of \
                 them with the pool",
                multi.name,
                multi.zones.join(", "),
                single.name
            )));
        }
        for zone in &g.zones {
            if let Some(other) = group_in(entry, zone) {
                return Err(PoolError::api(format!(
                    "pool {pool:?} has two Auto Scaling groups in zone {zone:?}: {:?} and {:?}; \
                     tag only one of them with the pool",
                    other.name, g.name
                )));
            }
        }
        entry.insert(g.name.clone(), g.clone());
    }
    Ok(out)
}

/// The launch template version a pool's groups point at: one version, or
/// `zone=version,…` when they differ (what [`versions_to_set`] reads back).
pub(crate) fn pool_version(p: &PoolLayout) -> String {
    // Keyed by each group's first zone: the zone of a per-zone group.
    let versions: BTreeMap<&str, &str> = p
        .values()
        .filter_map(|g| Some((g.zones.first()?, g)))
        .map(|(z, g)| {
            (
                z.as_str(),
                g.launch_template
                    .as_ref()
                    .map_or("", |t| t.version.as_str()),
            )
        })
        .collect();
    let mut distinct: Vec<&str> = versions.values().copied().collect();
    distinct.dedup();
    if distinct.len() <= 1 {
        distinct.first().unwrap_or(&"").to_string()
    } else {
        versions
            .iter()
            .map(|(z, v)| format!("{z}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The engine's view of a pool.
pub(crate) fn pool_group(name: &str, p: &PoolLayout) -> PoolGroup {
    let mut desired_per_zone = BTreeMap::new();
    for g in p.values() {
        match g.zones.as_slice() {
            [zone] => {
                desired_per_zone.insert(zone.clone(), g.desired);
            }
            zones => desired_per_zone.extend(spread_sizes(g, zones)),
        }
    }
    PoolGroup {
        name: name.to_string(),
        desired_per_zone,
        max_size: p.values().map(|g| g.max).sum(),
        version: pool_version(p),
        backs_load_balancer: p
            .values()
            .any(|g| !g.target_groups.is_empty() || !g.classic_lbs.is_empty()),
        boot_seconds: None,
        // One group over several zones: the cloud picks each new instance's zone.
        spread: p.values().any(|g| g.zones.len() > 1),
    }
}

/// A group over several zones, split per zone as the engine counts capacity: its live
/// instances per zone, made to add up to its desired size (instances still to launch go to
/// the zones with fewest, a pending scale-in comes off the zones with most).
fn spread_sizes(g: &AsgView, zones: &[String]) -> BTreeMap<String, u32> {
    let mut out: BTreeMap<String, u32> = zones.iter().map(|z| (z.clone(), 0)).collect();
    for i in &g.instances {
        if matches!(
            i.lifecycle,
            InstanceLifecycle::Pending | InstanceLifecycle::InService
        ) {
            *out.entry(i.zone.clone()).or_default() += 1;
        }
    }
    let mut total: u32 = out.values().sum();
    while total < g.desired {
        if let Some(n) = out.values_mut().min() {
            *n += 1;
        }
        total += 1;
    }
    while total > g.desired {
        if let Some(n) = out.values_mut().max() {
            *n -= 1;
        }
        total -= 1;
    }
    out
}

/// What `set_version(pool, v)` points each zone's group at. The engine passes the target
/// kubelet version (`v1.34.1`): the groups go to `template_version` (the launch template
/// version the user's infrastructure code made for it, `$Latest` unless told). `abort` passes
/// back what [`pool_version`] recorded: one version, or `zone=version,…`.
pub(crate) fn versions_to_set(
    p: &PoolLayout,
    v: &str,
    template_version: &str,
) -> Result<BTreeMap<String, String>, String> {
    if v.contains('=') {
        return v
            .split(',')
            .map(|part| match part.split_once('=') {
                Some((z, ver)) => Ok((z.to_string(), ver.to_string())),
                None => Err(format!("bad recorded version {v:?}")),
            })
            .collect();
    }
    let is_kubelet = v.starts_with('v') && v[1..].starts_with(|c: char| c.is_ascii_digit());
    let ver = if is_kubelet { template_version } else { v };
    Ok(p.values()
        .filter_map(|g| g.zones.first())
        .map(|z| (z.clone(), ver.to_string()))
        .collect())
}

/// An instance's lifecycle as the engine reads it. What is not in service and not leaving
/// (Standby, Warmed:*, Pending:Wait) counts as pending: not ready for the engine.
pub(crate) fn lifecycle(state: &str) -> InstanceLifecycle {
    match state {
        "InService" => InstanceLifecycle::InService,
        "Terminated" => InstanceLifecycle::Terminated,
        s if s.starts_with("Terminating") || s.starts_with("Detach") => {
            InstanceLifecycle::Terminating
        }
        _ => InstanceLifecycle::Pending,
    }
}

/// An instance's load-balancer state over all of its group's target groups: in service only
/// when every target group says `healthy`; not registered yet counts as registering.
pub(crate) fn lb_state<'a>(per_group: impl IntoIterator<Item = Option<&'a str>>) -> LbState {
    // The worst wins: out of service, then deregistering, then registering.
    per_group
        .into_iter()
        .map(|state| match state {
            Some("healthy") => LbState::InService,
            None | Some("initial") => LbState::Registering,
            Some("draining") => LbState::Deregistering,
            Some(_) => LbState::OutOfService,
        })
        .max()
        .unwrap_or(LbState::InService)
}

/// What a run changed on one group, as kept in [`HELD_TAG`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    /// The group's max size before the run.
    pub(crate) max: u32,
    /// The processes the run suspended (those already suspended are not listed: they stay).
    pub(crate) suspended: Vec<String>,
}

impl Held {
    /// The record on `g`, when it carries one of ours.
    pub(crate) fn recorded(g: &AsgView) -> Option<Held> {
        Held::from_tag(g.tags.get(HELD_TAG)?)
    }

    /// What to record before holding `g`.
    pub(crate) fn before(g: &AsgView) -> Held {
        Held {
            max: g.max,
            suspended: PROCESSES_HELD
                .iter()
                .filter(|p| !g.suspended.iter().any(|s| s == *p))
                .map(|p| p.to_string())
                .collect(),
        }
    }

    pub(crate) fn to_tag(&self) -> String {
        format!("max={};suspended={}", self.max, self.suspended.join(","))
    }

    /// Reads a tag value; `None` when it is not ours.
    pub(crate) fn from_tag(v: &str) -> Option<Held> {
        let (max, suspended) = v.split_once(';')?;
        let max = max.strip_prefix("max=")?.parse().ok()?;
        let suspended = suspended.strip_prefix("suspended=")?;
        Some(Held {
            max,
            suspended: suspended
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// An AWS error code a retry cures: another scaling activity or update is in progress.
pub(crate) fn is_busy(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("ScalingActivityInProgress" | "ResourceContention" | "ScalingActivityInProgressFault")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, pool: Option<&str>, zones: &[&str], desired: u32) -> AsgView {
        AsgView {
            name: name.into(),
            zones: zones.iter().map(|z| z.to_string()).collect(),
            desired,
            max: desired + 1,
            launch_template: Ok(LaunchTemplateRef {
                id: Some("lt-1".into()),
                name: None,
                version: "3".into(),
            }),
            tags: pool
                .map(|p| BTreeMap::from([("kops.k8s.io/instancegroup".into(), p.into())]))
                .unwrap_or_default(),
            target_groups: vec![],
            classic_lbs: vec![],
            suspended: vec![],
            instances: vec![],
        }
    }

    fn tags() -> Vec<String> {
        DEFAULT_POOL_TAGS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn per_zone_groups_form_one_pool_and_untagged_groups_are_left_alone() {
        let gs = [
            group("nodes-a", Some("nodes"), &["eu-1a"], 2),
            group("nodes-b", Some("nodes"), &["eu-1b"], 3),
            group("bastion", None, &["eu-1a"], 1),
        ];
        let l = layout(&gs, &tags()).unwrap();
        assert_eq!(l.len(), 1);
        let g = pool_group("nodes", &l["nodes"]);
        assert_eq!(
            g.desired_per_zone,
            BTreeMap::from([("eu-1a".into(), 2), ("eu-1b".into(), 3)])
        );
        assert_eq!(g.max_size, 7);
        assert_eq!(g.version, "3");
        assert!(!g.backs_load_balancer);
    }

    fn instance(id: &str, zone: &str, state: &str) -> Instance {
        Instance {
            id: id.into(),
            pool: String::new(),
            zone: zone.into(),
            version: "3".into(),
            lifecycle: lifecycle(state),
            lb: None,
        }
    }

    #[test]
    fn a_multi_zone_group_is_a_spread_pool_sized_per_zone_by_its_instances() {
        let mut ng = group("ng", Some("ng"), &["a", "b", "c"], 5);
        ng.instances = vec![
            instance("i-1", "a", "InService"),
            instance("i-2", "a", "InService"),
            instance("i-3", "b", "InService"),
            instance("i-4", "b", "Terminating:Wait"),
        ];
        let l = layout(&[ng.clone()], &tags()).unwrap();
        let g = pool_group("ng", &l["ng"]);
        assert!(g.spread);
        // 3 live; the 2 still to launch go to the zones with fewest: c, then b (the first of
        // b and c, now both at 1).
        assert_eq!(
            g.desired_per_zone,
            BTreeMap::from([("a".into(), 2), ("b".into(), 2), ("c".into(), 1)])
        );
        // A pending scale-in comes off the zone with most.
        ng.desired = 2;
        let l = layout(&[ng], &tags()).unwrap();
        let g = pool_group("ng", &l["ng"]);
        assert_eq!(
            g.desired_per_zone,
            BTreeMap::from([("a".into(), 1), ("b".into(), 1), ("c".into(), 0)])
        );
        assert_eq!(group_in(&l["ng"], "c").map(|g| g.name.as_str()), Some("ng"));
    }

    #[test]
    fn mixed_pools_and_two_groups_in_a_zone_are_named() {
        let e = layout(
            &[
                group("ng", Some("ng"), &["a", "b"], 2),
                group("ng-c", Some("ng"), &["c"], 1),
            ],
            &tags(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("group \"ng\" over zones a, b and also group \"ng-c\""),
            "{e}"
        );
        let e = layout(
            &[
                group("x1", Some("x"), &["a"], 1),
                group("x2", Some("x"), &["a"], 1),
            ],
            &tags(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"x1\" and \"x2\""), "{e}");
    }

    #[test]
    fn a_given_pool_tag_replaces_the_defaults() {
        let mut g = group("n", Some("n"), &["a"], 1);
        g.tags.insert("team/pool".into(), "blue".into());
        assert_eq!(pool_of(&g, &["team/pool".into()]), Some("blue"));
        assert_eq!(pool_of(&g, &tags()), Some("n"));
        assert_eq!(pool_of(&g, &["other".into()]), None);
    }

    #[test]
    fn versions_round_trip_through_what_abort_reads_back() {
        let mut l = layout(
            &[
                group("a", Some("p"), &["a"], 1),
                group("b", Some("p"), &["b"], 1),
            ],
            &tags(),
        )
        .unwrap();
        let p = l.get_mut("p").unwrap();
        assert_eq!(
            versions_to_set(p, "v1.34.1", "$Latest").unwrap(),
            BTreeMap::from([
                ("a".into(), "$Latest".into()),
                ("b".into(), "$Latest".into())
            ])
        );
        p.get_mut("b")
            .unwrap()
            .launch_template
            .as_mut()
            .unwrap()
            .version = "4".into();
        let recorded = pool_version(p);
        assert_eq!(recorded, "a=3,b=4");
        assert_eq!(
            versions_to_set(p, &recorded, "$Latest").unwrap(),
            BTreeMap::from([("a".into(), "3".into()), ("b".into(), "4".into())])
        );
        assert_eq!(versions_to_set(p, "7", "$Latest").unwrap()["a"], "7");
    }

    #[test]
    fn lifecycles_and_target_health() {
        assert_eq!(lifecycle("InService"), InstanceLifecycle::InService);
        assert_eq!(lifecycle("Pending:Wait"), InstanceLifecycle::Pending);
        assert_eq!(lifecycle("Standby"), InstanceLifecycle::Pending);
        assert_eq!(
            lifecycle("Terminating:Wait"),
            InstanceLifecycle::Terminating
        );
        assert_eq!(lifecycle("Terminated"), InstanceLifecycle::Terminated);
        assert_eq!(
            lb_state([Some("healthy"), Some("healthy")]),
            LbState::InService
        );
        assert_eq!(lb_state([Some("healthy"), None]), LbState::Registering);
        assert_eq!(
            lb_state([Some("initial"), Some("unhealthy")]),
            LbState::OutOfService
        );
        assert_eq!(lb_state([Some("draining")]), LbState::Deregistering);
        assert_eq!(lb_state(Vec::<Option<&str>>::new()), LbState::InService);
    }

    #[test]
    fn held_keeps_only_what_the_run_suspended() {
        let mut g = group("n", Some("n"), &["a"], 2);
        g.suspended = vec!["AZRebalance".into()];
        let h = Held::before(&g);
        assert_eq!(h.max, 3);
        assert_eq!(h.suspended, ["AlarmNotification", "ScheduledActions"]);
        assert_eq!(Held::from_tag(&h.to_tag()), Some(h));
        let none = Held {
            max: 4,
            suspended: vec![],
        };
        assert_eq!(Held::from_tag(&none.to_tag()), Some(none));
        assert_eq!(Held::from_tag("someone else's"), None);
    }
}
