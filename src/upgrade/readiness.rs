//! The readiness gate for a new node, **pure**. A replacement counts only when all hold:
//! NodeReady, no startup / not-ready taints, every DaemonSet pod on it Ready (and at
//! least the expected number of them), the instance `InService` and, when the pool backs
//! a load balancer, `InService` there. (`--min-ready`, how long all must hold, is timed by
//! the caller from the first round the gate passes.)

use super::pool::{Instance, InstanceLifecycle, LbState};
use super::snapshot::{NodeInfo, PodInfo};

/// Taints that mean "not ready yet" (kubelet, node lifecycle controller, cloud provider).
pub(crate) const NOT_READY_TAINTS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/unschedulable",
    "node.cloudprovider.kubernetes.io/uninitialized",
    "node.cluster.x-k8s.io/uninitialized",
];

/// What the gate looks at.
#[derive(Debug, Clone)]
pub(crate) struct GateInput<'a> {
    pub(crate) node: &'a NodeInfo,
    /// Pods on the node (the gate picks the DaemonSet ones).
    pub(crate) pods: &'a [PodInfo],
    /// DaemonSet pods expected on the node (from DaemonSets targeting it); 0 = unknown.
    pub(crate) expected_daemonset_pods: usize,
    /// The cloud instance behind the node, if found.
    pub(crate) instance: Option<&'a Instance>,
    /// The pool registers its instances at a load balancer.
    pub(crate) backs_load_balancer: bool,
}

/// Every failing check, named; none: the node counts as capacity.
pub(crate) fn gate(i: &GateInput<'_>) -> Vec<String> {
    let mut why = node_checks(i.node, i.pods, i.expected_daemonset_pods);
    cloud_checks(i, &mut why);
    why
}

/// The checks the cluster alone answers (the node, its taints, its DaemonSet pods), each
/// failing one named. The engine asks the cloud about a node only once these pass.
pub(crate) fn node_checks(
    node: &NodeInfo,
    pods: &[PodInfo],
    expected_daemonset_pods: usize,
) -> Vec<String> {
    let mut why = Vec::new();
    if !node.ready {
        why.push("NodeReady is not True".to_string());
    }
    for t in &node.taints {
        if NOT_READY_TAINTS.contains(&t.key.as_str()) {
            why.push(format!("taint {} still set", t.key));
        }
    }
    let ds: Vec<&PodInfo> = pods
        .iter()
        .filter(|p| p.daemonset && p.node.as_deref() == Some(node.name.as_str()))
        .collect();
    for p in ds.iter().filter(|p| !p.ready) {
        why.push(format!("DaemonSet pod {} not Ready", p.key()));
    }
    if ds.len() < expected_daemonset_pods {
        why.push(format!(
            "{} of {} DaemonSet pods present",
            ds.len(),
            expected_daemonset_pods
        ));
    }
    why
}

/// The cloud's half: the instance in service and, when the pool backs a load balancer, in
/// service there.
fn cloud_checks(i: &GateInput<'_>, why: &mut Vec<String>) {
    match i.instance {
        // The cloud is asked about a node once it is Ready (the engine reads the pool then).
        None if !i.node.ready => {}
        None => why.push("no cloud instance matches the node".into()),
        Some(inst) => {
            if inst.lifecycle != InstanceLifecycle::InService {
                why.push(format!(
                    "instance {} is {:?}, not InService",
                    inst.id, inst.lifecycle
                ));
            }
            if i.backs_load_balancer && inst.lb != Some(LbState::InService) {
                why.push(format!(
                    "instance {} not InService at the load balancer",
                    inst.id
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::plan::tests::pod;
    use crate::upgrade::snapshot::TaintInfo;

    fn node() -> NodeInfo {
        NodeInfo {
            provider_id: Some("sim:///a/i-1".into()),
            ..crate::upgrade::plan::tests::node("new-1", "w", "a", "v1.34.0")
        }
    }

    fn ds_pod(ready: bool) -> PodInfo {
        let cni = Some(("DaemonSet", "cni"));
        PodInfo {
            ready,
            ..pod("kube-system/cni-x", "new-1", cni, &[])
        }
    }

    fn inst(l: InstanceLifecycle, lb: Option<LbState>) -> Instance {
        Instance {
            id: "i-1".into(),
            pool: "w".into(),
            zone: "a".into(),
            version: "v1.34.0".into(),
            lifecycle: l,
            lb,
        }
    }

    #[test]
    fn every_check_can_fail_alone() {
        let good_inst = inst(InstanceLifecycle::InService, Some(LbState::InService));
        let pods = vec![ds_pod(true)];
        let n = node();
        let base = GateInput {
            node: &n,
            pods: &pods,
            expected_daemonset_pods: 1,
            instance: Some(&good_inst),
            backs_load_balancer: true,
        };
        assert_eq!(gate(&base), Vec::<String>::new());

        let mut not_ready = node();
        not_ready.ready = false;
        let mut tainted = node();
        tainted.taints.push(TaintInfo {
            key: "node.cloudprovider.kubernetes.io/uninitialized".into(),
            value: None,
            effect: "NoSchedule".into(),
        });
        let bad_pods = vec![ds_pod(false)];
        let pending = inst(InstanceLifecycle::Pending, Some(LbState::InService));
        let lb_reg = inst(InstanceLifecycle::InService, Some(LbState::Registering));
        let cases: Vec<(GateInput<'_>, &str)> = vec![
            (with(&base, |g| g.node = &not_ready), "NodeReady"),
            (with(&base, |g| g.node = &tainted), "uninitialized"),
            (with(&base, |g| g.pods = &bad_pods), "not Ready"),
            (with(&base, |g| g.pods = &[]), "0 of 1"),
            (with(&base, |g| g.instance = Some(&pending)), "Pending"),
            (with(&base, |g| g.instance = Some(&lb_reg)), "load balancer"),
            (with(&base, |g| g.instance = None), "no cloud instance"),
        ];
        for (input, needle) in cases {
            let why = gate(&input);
            assert!(!why.is_empty(), "{needle}: should not be ready");
            assert!(why.iter().any(|w| w.contains(needle)), "{needle}: {why:?}");
        }
        // LB state is ignored for pools without a load balancer.
        let no_lb = with(&base, |g| {
            g.instance = Some(&lb_reg);
            g.backs_load_balancer = false;
        });
        assert_eq!(gate(&no_lb), Vec::<String>::new());
    }

    /// `base` changed by `f`.
    fn with<'a>(base: &GateInput<'a>, f: impl FnOnce(&mut GateInput<'a>)) -> GateInput<'a> {
        let mut g = base.clone();
        f(&mut g);
        g
    }
}
