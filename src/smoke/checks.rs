//! Pure: the health checks that matter after an upgrade, over a snapshot of cluster objects.
//! Each check is one spec of the smoke suite; a failing check names every offending object.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use std::time::Duration;

/// Annotation, label and taint prefix of the upgrade engine's markers.
pub(crate) const MARKER_PREFIX: &str = "upgrade.e2e-gate.io/";

/// Objects the checks read (one LIST each).
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterState {
    pub(crate) nodes: Vec<Node>,
    /// Pods in all namespaces.
    pub(crate) pods: Vec<Pod>,
    /// Deployments in all namespaces.
    pub(crate) deployments: Vec<Deployment>,
    /// StatefulSets in all namespaces.
    pub(crate) statefulsets: Vec<StatefulSet>,
    /// DaemonSets in all namespaces.
    pub(crate) daemonsets: Vec<DaemonSet>,
    /// PodDisruptionBudgets in all namespaces.
    pub(crate) pdbs: Vec<PodDisruptionBudget>,
}

/// What "healthy" means for this run.
#[derive(Debug, Clone)]
pub(crate) struct SmokeOptions {
    /// Every node must run this kubelet version (`v1.34.1`); the check is skipped when unset.
    pub(crate) target_version: Option<String>,
    /// A pod Pending longer than this fails the pending check.
    pub(crate) pending_grace: Duration,
    /// The time the snapshot was taken.
    pub(crate) now: DateTime<Utc>,
}

/// One check's outcome: `Passed` (healthy), `Failed` (what is wrong, one object per line) or
/// `Skipped` (not applicable here, with the reason); the gate's step outcome, so checks and
/// steps become JUnit attempts the same way.
pub(crate) use crate::gate::StepOutcome as CheckOutcome;

/// A named check result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    /// Spec-style name, e.g. `[Smoke] every node is Ready`.
    pub(crate) name: String,
    pub(crate) outcome: CheckOutcome,
}

/// The names of every check, in run order (for focus/skip and dry runs).
pub(crate) const CHECK_NAMES: [&str; 8] = [
    "[Smoke] every node is Ready",
    "[Smoke] every node runs the target kubelet version",
    "[Smoke] no pod is Pending for long",
    "[Smoke] every Deployment is available",
    "[Smoke] every StatefulSet is ready",
    "[Smoke] every DaemonSet is scheduled and ready",
    "[Smoke] every PodDisruptionBudget is healthy",
    "[Smoke] no upgrade markers are left behind",
];

fn ns_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    match &meta.namespace {
        Some(ns) => format!("{ns}/{}", meta.name.as_deref().unwrap_or("?")),
        None => meta.name.clone().unwrap_or_else(|| "?".into()),
    }
}

fn verdict(problems: Vec<String>) -> CheckOutcome {
    if problems.is_empty() {
        CheckOutcome::Passed
    } else {
        CheckOutcome::Failed(problems.join("\n"))
    }
}

/// The [`verdict`] on the problem each item has, if any.
fn each<T>(items: &[T], problem: impl Fn(&T) -> Option<String>) -> CheckOutcome {
    verdict(items.iter().filter_map(problem).collect())
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn nodes_ready(s: &ClusterState) -> CheckOutcome {
    if s.nodes.is_empty() {
        return CheckOutcome::Failed("the cluster has no nodes".into());
    }
    each(&s.nodes, |n| {
        (!node_ready(n)).then(|| format!("node {} is not Ready", ns_name(&n.metadata)))
    })
}

fn nodes_on_version(s: &ClusterState, o: &SmokeOptions) -> CheckOutcome {
    let Some(target) = &o.target_version else {
        return CheckOutcome::Skipped("no target version given".into());
    };
    each(&s.nodes, |n| {
        let v = n
            .status
            .as_ref()?
            .node_info
            .as_ref()
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default();
        (v.trim_start_matches('v') != target.trim_start_matches('v')).then(|| {
            format!(
                "node {} runs kubelet {v:?}, want {target}",
                ns_name(&n.metadata)
            )
        })
    })
}

fn pods_not_pending(s: &ClusterState, o: &SmokeOptions) -> CheckOutcome {
    each(&s.pods, |p| {
        let status = p
            .status
            .as_ref()
            .filter(|st| st.phase.as_deref() == Some("Pending"))?;
        let created = crate::kube_time::to_chrono(p.metadata.creation_timestamp.as_ref()?.0);
        let age = (o.now - created).to_std().unwrap_or_default();
        (age > o.pending_grace).then(|| {
            let why = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                .and_then(|c| c.message.clone())
                .unwrap_or_default();
            format!(
                "pod {} Pending for {}s {why}",
                ns_name(&p.metadata),
                age.as_secs()
            )
            .trim_end()
            .to_string()
        })
    })
}

/// Workloads with fewer `have` replicas than `spec.replicas` (default 1), one line each:
/// "deployment x/web has 1/2 available".
fn replicas_short<T: kube::Resource>(
    items: &[T],
    kind: &str,
    word: &str,
    replicas: impl Fn(&T) -> (Option<i32>, Option<i32>),
) -> CheckOutcome {
    each(items, |d| {
        let (want, have) = replicas(d);
        let (want, have) = (want.unwrap_or(1), have.unwrap_or(0));
        (have < want).then(|| format!("{kind} {} has {have}/{want} {word}", ns_name(d.meta())))
    })
}

fn deployments_available(s: &ClusterState) -> CheckOutcome {
    replicas_short(&s.deployments, "deployment", "available", |d| {
        (
            d.spec.as_ref().and_then(|sp| sp.replicas),
            d.status.as_ref().and_then(|st| st.available_replicas),
        )
    })
}

fn statefulsets_ready(s: &ClusterState) -> CheckOutcome {
    replicas_short(&s.statefulsets, "statefulset", "ready", |d| {
        (
            d.spec.as_ref().and_then(|sp| sp.replicas),
            d.status.as_ref().and_then(|st| st.ready_replicas),
        )
    })
}

fn daemonsets_ready(s: &ClusterState) -> CheckOutcome {
    each(&s.daemonsets, |d| {
        let st = d.status.as_ref()?;
        (st.number_ready < st.desired_number_scheduled || st.number_misscheduled > 0).then(|| {
            format!(
                "daemonset {} has {}/{} ready ({} misscheduled)",
                ns_name(&d.metadata),
                st.number_ready,
                st.desired_number_scheduled,
                st.number_misscheduled
            )
        })
    })
}

fn pdbs_healthy(s: &ClusterState) -> CheckOutcome {
    each(&s.pdbs, |p| {
        let st = p.status.as_ref()?;
        (st.current_healthy < st.desired_healthy).then(|| {
            format!(
                "pdb {} has {} healthy, needs {}",
                ns_name(&p.metadata),
                st.current_healthy,
                st.desired_healthy
            )
        })
    })
}

fn no_markers(s: &ClusterState) -> CheckOutcome {
    let mut problems = Vec::new();
    for n in &s.nodes {
        let name = ns_name(&n.metadata);
        let keys = n
            .metadata
            .annotations
            .iter()
            .flatten()
            .chain(n.metadata.labels.iter().flatten())
            .map(|(k, _)| k.as_str())
            .chain(
                n.spec
                    .iter()
                    .flat_map(|sp| sp.taints.iter().flatten())
                    .map(|t| t.key.as_str()),
            );
        for key in keys.filter(|k| k.starts_with(MARKER_PREFIX)) {
            problems.push(format!("node {name} still carries {key}"));
        }
    }
    verdict(problems)
}

fn run_check(index: usize, s: &ClusterState, o: &SmokeOptions) -> CheckOutcome {
    match index {
        0 => nodes_ready(s),
        1 => nodes_on_version(s, o),
        2 => pods_not_pending(s, o),
        3 => deployments_available(s),
        4 => statefulsets_ready(s),
        5 => daemonsets_ready(s),
        6 => pdbs_healthy(s),
        _ => no_markers(s),
    }
}

/// Runs every check whose name `selected` accepts, in [`CHECK_NAMES`] order.
pub(crate) fn run_checks(
    s: &ClusterState,
    o: &SmokeOptions,
    selected: &dyn Fn(&str) -> bool,
) -> Vec<Check> {
    CHECK_NAMES
        .iter()
        .enumerate()
        .filter(|(_, name)| selected(name))
        .map(|(i, name)| Check {
            name: name.to_string(),
            outcome: run_check(i, s, o),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn node(name: &str, ready: bool, version: &str) -> Node {
        obj(json!({"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                       "nodeInfo": {"kubeletVersion": version, "architecture": "", "bootID": "", "containerRuntimeVersion": "",
                       "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "", "osImage": "", "systemUUID": ""}}}))
    }

    fn opts() -> SmokeOptions {
        SmokeOptions {
            target_version: Some("v1.34.1".into()),
            pending_grace: Duration::from_secs(300),
            now: "2026-11-21T12:00:00Z".parse().unwrap(),
        }
    }

    fn outcome(state: &ClusterState, name: &str) -> CheckOutcome {
        run_checks(state, &opts(), &|n| n == name).remove(0).outcome
    }

    #[test]
    fn healthy_cluster_passes_everything() {
        let s = ClusterState {
            nodes: vec![node("a", true, "v1.34.1")],
            deployments: vec![obj(
                json!({"metadata": {"name": "web", "namespace": "x"}, "spec": {"replicas": 2, "selector": {}, "template": {}}, "status": {"availableReplicas": 2}}),
            )],
            ..ClusterState::default()
        };
        let checks = run_checks(&s, &opts(), &|_| true);
        assert_eq!(checks.len(), 8);
        assert!(
            checks.iter().all(|c| c.outcome == CheckOutcome::Passed),
            "{checks:?}"
        );
    }

    #[test]
    fn each_check_names_the_offender() {
        let mut marked = node("b", false, "v1.33.0");
        marked.metadata.annotations = Some(
            [(
                "upgrade.e2e-gate.io/phase".to_string(),
                "draining".to_string(),
            )]
            .into(),
        );
        let s = ClusterState {
            nodes: vec![node("a", true, "v1.34.1"), marked],
            pods: vec![obj(
                json!({"metadata": {"name": "p", "namespace": "x", "creationTimestamp": "2026-11-21T11:00:00Z"},
                "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "message": "0/2 nodes are available"}]}}),
            )],
            statefulsets: vec![obj(
                json!({"metadata": {"name": "db", "namespace": "x"}, "spec": {"replicas": 3, "selector": {}, "template": {}, "serviceName": "db"}, "status": {"replicas": 3, "readyReplicas": 2}}),
            )],
            daemonsets: vec![obj(
                json!({"metadata": {"name": "agent", "namespace": "kube-system"}, "spec": {"selector": {}, "template": {}},
                "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 1}}),
            )],
            pdbs: vec![obj(
                json!({"metadata": {"name": "db", "namespace": "x"}, "spec": {},
                "status": {"currentHealthy": 2, "desiredHealthy": 3, "disruptionsAllowed": 0, "expectedPods": 3}}),
            )],
            ..ClusterState::default()
        };
        let failed = |name: &str| match outcome(&s, name) {
            CheckOutcome::Failed(m) => m,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(failed(CHECK_NAMES[0]), "node b is not Ready");
        assert!(failed(CHECK_NAMES[1]).contains("node b runs kubelet \"v1.33.0\", want v1.34.1"));
        assert_eq!(
            failed(CHECK_NAMES[2]),
            "pod x/p Pending for 3600s 0/2 nodes are available"
        );
        assert_eq!(failed(CHECK_NAMES[4]), "statefulset x/db has 2/3 ready");
        assert!(failed(CHECK_NAMES[5]).contains("kube-system/agent has 1/2 ready"));
        assert_eq!(failed(CHECK_NAMES[6]), "pdb x/db has 2 healthy, needs 3");
        assert_eq!(
            failed(CHECK_NAMES[7]),
            "node b still carries upgrade.e2e-gate.io/phase"
        );
    }

    #[test]
    fn young_pending_pods_and_missing_target_are_fine() {
        let s = ClusterState {
            pods: vec![obj(
                json!({"metadata": {"name": "p", "namespace": "x", "creationTimestamp": "2026-11-21T11:58:00Z"}, "status": {"phase": "Pending"}}),
            )],
            ..ClusterState::default()
        };
        assert_eq!(outcome(&s, CHECK_NAMES[2]), CheckOutcome::Passed);
        let o = SmokeOptions {
            target_version: None,
            ..opts()
        };
        let c = run_checks(&s, &o, &|n| n == CHECK_NAMES[1]);
        assert!(matches!(c[0].outcome, CheckOutcome::Skipped(_)));
        assert!(
            matches!(outcome(&s, CHECK_NAMES[0]), CheckOutcome::Failed(_)),
            "no nodes is unhealthy"
        );
    }
}
