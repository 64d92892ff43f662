//! The EndpointSlice controller: one `discovery.k8s.io/v1` EndpointSlice per Service with a
//! selector, listing the matching pods that have an IP, with `ready`, `serving` and
//! `terminating` conditions as the real controller sets them. Availability probes (the gate)
//! read "does this Service have a ready endpoint" from here, as they would on a real cluster.

use super::super::resources::id;
use super::super::selector::LabelSelector;
use super::super::store::{key_of, meta_str};
use super::super::SimState;
use super::{deleting, pod_ready, terminal};
use serde_json::{json, Value};

/// Label linking a slice to its Service (`discovery.k8s.io/v1`).
pub(crate) const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

impl SimState {
    /// Brings every Service's EndpointSlice in line with its pods (writes only on change).
    pub(crate) fn update_endpoint_slices(&mut self) {
        let ts = self.ts(self.mach.last_tick);
        for svc in self.store.list(id::SERVICES, None) {
            let Some(sel) = svc["spec"]["selector"]
                .as_object()
                .filter(|m| !m.is_empty())
            else {
                continue;
            };
            let Some(selector) = LabelSelector::from_object(Some(&json!({ "matchLabels": sel })))
            else {
                continue;
            };
            let (ns, name) = key_of(&svc);
            let mut endpoints: Vec<Value> = self
                .store
                .list(id::PODS, Some(&ns))
                .into_iter()
                .filter(|p| selector.matches(p) && !terminal(p))
                .filter_map(|p| {
                    let ip = p["status"]["podIP"].as_str().filter(|s| !s.is_empty())?;
                    let terminating = deleting(&p);
                    let ready = pod_ready(&p) && !terminating;
                    Some(json!({
                        "addresses": [ip],
                        "conditions": {"ready": ready, "serving": pod_ready(&p), "terminating": terminating},
                        "nodeName": p["spec"]["nodeName"],
                        "targetRef": {"kind": "Pod", "namespace": ns, "name": meta_str(&p, "name"),
                                      "uid": meta_str(&p, "uid")},
                    }))
                })
                .collect();
            endpoints.sort_by(|a, b| a["addresses"][0].as_str().cmp(&b["addresses"][0].as_str()));
            let ports: Vec<Value> = svc["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| json!({"name": p.get("name").cloned().unwrap_or(json!("")),
                                "port": p.get("targetPort").cloned().unwrap_or_else(|| p["port"].clone()),
                                "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))}))
                .collect();
            // The simulator's single slice of the Service; `modify` writes only on change.
            let slice = format!("{name}-sim");
            if self.store.contains(id::ENDPOINTSLICES, &ns, &slice) {
                self.store.modify(id::ENDPOINTSLICES, &ns, &slice, |s| {
                    s["endpoints"] = Value::Array(endpoints);
                    s["ports"] = Value::Array(ports);
                });
            } else {
                let obj = json!({
                    "metadata": {"name": slice, "namespace": ns,
                                 "labels": {LABEL_SERVICE_NAME: name,
                                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name,
                                                      "uid": meta_str(&svc, "uid"), "controller": true,
                                                      "blockOwnerDeletion": true}]},
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                });
                let _ = self.store.create(id::ENDPOINTSLICES, &ns, obj, &ts);
            }
        }
        // Slices whose Service is gone.
        self.store.remove_where(id::ENDPOINTSLICES, |store, s| {
            let svc = s["metadata"]["labels"][LABEL_SERVICE_NAME]
                .as_str()
                .unwrap_or("");
            !store.contains(id::SERVICES, meta_str(s, "namespace").unwrap_or(""), svc)
        });
    }
}
