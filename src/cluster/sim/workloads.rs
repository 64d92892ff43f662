//! Builds the API objects of a topology workload (controller + PDB).

use super::machinery::{ANN_IGNORE_SIGTERM, ANN_STARTUP, ANN_UNREADY_ON_KUBELET, LABEL_ZONE};
use super::resources::id;
use super::topology::{Spread, Workload, WorkloadKind};
use super::SimState;
use serde_json::json;

/// Creates the workload's controller object, its PDB and its Service.
pub(crate) fn create(state: &mut SimState, w: &Workload, ts: &str) {
    let labels = json!({"app": w.name});
    let mut annotations = json!({});
    if w.ignore_sigterm {
        annotations[ANN_IGNORE_SIGTERM] = json!("true");
    }
    if let Some(s) = w.startup_seconds {
        annotations[ANN_STARTUP] = json!(s.to_string());
    }
    if let Some(u) = &w.unready_on_kubelet {
        annotations[ANN_UNREADY_ON_KUBELET] = json!(format!(
            "{}:{}:{}",
            u.version, u.after_seconds, u.for_seconds
        ));
    }
    let mut spec = json!({
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": w.cpu, "memory": w.memory}}}],
        "terminationGracePeriodSeconds": w.termination_grace_seconds,
    });
    if !w.node_selector.is_empty() {
        spec["nodeSelector"] = json!(w.node_selector);
    }
    if !w.tolerations.is_empty() {
        // The topology's field names are the API's (key, operator, value, effect).
        spec["tolerations"] = json!(w.tolerations);
    }
    if let Some(s) = w.spread {
        let key = match s {
            Spread::Zone => LABEL_ZONE,
            Spread::Hostname => "kubernetes.io/hostname",
        };
        spec["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": labels}}]);
    }
    let template =
        json!({"metadata": {"labels": labels, "annotations": annotations}, "spec": spec});
    let selector = json!({"matchLabels": labels});
    let (res, obj) = match w.kind {
        WorkloadKind::Deployment => (
            id::DEPLOYMENTS,
            json!({"metadata": {"name": w.name, "labels": labels},
                   "spec": {"replicas": w.replicas, "selector": selector, "template": template,
                            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}}),
        ),
        WorkloadKind::StatefulSet => {
            let mut s = json!({"metadata": {"name": w.name, "labels": labels},
                   "spec": {"replicas": w.replicas, "selector": selector, "template": template,
                            "serviceName": w.name, "podManagementPolicy": "OrderedReady"}});
            if let Some(size) = &w.zonal_volume {
                s["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "sim-zonal",
                             "resources": {"requests": {"storage": size}}}}]);
            }
            (id::STATEFULSETS, s)
        }
        WorkloadKind::DaemonSet => (
            id::DAEMONSETS,
            json!({"metadata": {"name": w.name, "labels": labels},
                   "spec": {"selector": selector, "template": template}}),
        ),
    };
    let _ = state.store.create(res, &w.namespace, obj, ts);
    if w.service {
        let svc = json!({"metadata": {"name": w.name, "labels": labels},
                         "spec": {"selector": labels, "type": "ClusterIP",
                                  "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}});
        let _ = state.store.create(id::SERVICES, &w.namespace, svc, ts);
    }
    if let Some(p) = &w.pdb {
        let mut spec = json!({"selector": selector});
        if let Some(v) = &p.min_available {
            spec["minAvailable"] = json!(v);
        }
        if let Some(v) = &p.max_unavailable {
            spec["maxUnavailable"] = json!(v);
        }
        let pdb = json!({"metadata": {"name": w.name}, "spec": spec});
        let _ = state.store.create(id::PDBS, &w.namespace, pdb, ts);
    }
}
