//! The kubelet of every node: bound pods go Pending → Running → Ready after their
//! startup delay; deleted pods stop after SIGTERM (quickly) or after their whole
//! `terminationGracePeriodSeconds` when they ignore SIGTERM.

use super::super::clock::SimTime;
use super::super::error::ApiError;
use super::super::resources::id;
use super::super::store::meta_str;
use super::super::SimState;
use super::{
    condition_true, deleting, set_condition, terminal, ANN_IGNORE_SIGTERM, ANN_STARTUP,
    ANN_UNREADY_ON_KUBELET,
};
use serde_json::{json, Value};
use std::sync::Arc;

/// How long a well-behaved container takes to exit after SIGTERM (simulated seconds).
pub(crate) const SIGTERM_EXIT_SECONDS: f64 = 1.0;

/// Per-pod kubelet progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodTimer {
    pub(crate) ns: String,
    pub(crate) name: String,
    /// When containers start (phase Running).
    pub(crate) running_at: SimTime,
    /// When the pod turns Ready.
    pub(crate) ready_at: SimTime,
    /// When the pod object disappears after a graceful delete.
    pub(crate) delete_at: Option<SimTime>,
    /// Running reached.
    pub(crate) started: bool,
    /// Ready reached.
    pub(crate) ready: bool,
    /// Fault `unready_on_kubelet`: when readiness starts failing, and for how long.
    pub(crate) unready_at: Option<(SimTime, f64)>,
    /// Fault `unready_on_kubelet`: when readiness passes again.
    pub(crate) recover_at: Option<SimTime>,
}

/// `(after, for)` when the pod's `unready_on_kubelet` fault applies to a node on `kubelet`.
fn unready_fault(pod: &Value, kubelet: &str) -> Option<(f64, f64)> {
    let spec = pod["metadata"]["annotations"][ANN_UNREADY_ON_KUBELET].as_str()?;
    let mut parts = spec.split(':');
    let (version, after, dur) = (parts.next()?, parts.next()?, parts.next()?);
    if version != kubelet {
        return None;
    }
    Some((after.parse().ok()?, dur.parse().ok()?))
}

impl SimState {
    /// Advances pod lifecycles.
    pub(crate) fn kubelet_step(&mut self, now: SimTime) {
        if self.store.rv() != self.mach.kubelet_rv {
            self.kubelet_adopt(now);
            self.mach.kubelet_rv = self.store.rv();
        }
        let due: Vec<String> = self
            .mach
            .pods
            .iter()
            .filter(|(_, t)| {
                t.delete_at.is_some_and(|d| now >= d)
                    || (!t.started && now >= t.running_at)
                    || (t.started && !t.ready && now >= t.ready_at && t.delete_at.is_none())
                    || (t.delete_at.is_none() && t.unready_at.is_some_and(|(u, _)| now >= u))
                    || (t.delete_at.is_none() && t.recover_at.is_some_and(|r| now >= r))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for uid in due {
            let mut t = self.mach.pods[&uid].clone();
            let Some(pod) = self.store.get(id::PODS, &t.ns, &t.name) else {
                self.mach.pods.remove(&uid);
                continue;
            };
            if meta_str(&pod, "uid") != Some(uid.as_str()) {
                self.mach.pods.remove(&uid);
                continue;
            }
            if t.delete_at.is_some_and(|d| now >= d) {
                self.store.remove(id::PODS, &t.ns, &t.name);
                self.mach.pods.remove(&uid);
                continue;
            }
            let ts = self.ts(now);
            if !t.started {
                self.mach.ip_seq += 1;
                let n = self.mach.ip_seq;
                let ip = format!(
                    "10.{}.{}.{}",
                    64 + ((n >> 16) & 63),
                    (n >> 8) & 255,
                    n & 255
                );
                let host_ip = self.node_field(&pod, "/status/addresses/0/address");
                self.store.modify(id::PODS, &t.ns, &t.name, |p| {
                    p["status"]["phase"] = json!("Running");
                    p["status"]["podIP"] = json!(ip);
                    p["status"]["podIPs"] = json!([{"ip": ip}]);
                    p["status"]["hostIP"] = json!(host_ip);
                    p["status"]["hostIPs"] = json!([{"ip": host_ip}]);
                    p["status"]["startTime"] = json!(ts);
                    p["status"]["qosClass"] = json!("Burstable");
                    set_condition(p, "PodReadyToStartContainers", true, "", &ts);
                    set_condition(p, "Initialized", true, "", &ts);
                    set_condition(p, "Ready", false, "ContainersNotReady", &ts);
                    set_condition(p, "ContainersReady", false, "ContainersNotReady", &ts);
                    p["status"]["containerStatuses"] = container_statuses(p, false, &ts);
                });
                t.started = true;
            } else if let Some((at, dur)) = t.unready_at.filter(|(u, _)| t.ready && now >= *u) {
                self.set_pod_ready(&t.ns, &t.name, false, &ts);
                t.unready_at = None;
                t.recover_at = Some(at + dur);
            } else if t.recover_at.is_some_and(|r| t.ready && now >= r) {
                self.set_pod_ready(&t.ns, &t.name, true, &ts);
                t.recover_at = None;
            } else {
                self.set_pod_ready(&t.ns, &t.name, true, &ts);
                let kubelet = self.node_field(&pod, "/status/nodeInfo/kubeletVersion");
                t.ready = true;
                t.unready_at = unready_fault(&pod, &kubelet).map(|(after, dur)| (now + after, dur));
            }
            self.mach.pods.insert(uid, t);
        }
    }

    /// A string field (JSON pointer) of the node a pod is bound to; "" when either is missing.
    fn node_field(&self, pod: &Value, pointer: &str) -> String {
        let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
        let node = self.store.get(id::NODES, "", node_name);
        node.and_then(|n| Some(n.pointer(pointer)?.as_str()?.to_string()))
            .unwrap_or_default()
    }

    /// Sets the pod's Ready and ContainersReady conditions (the readiness probe's verdict).
    fn set_pod_ready(&mut self, ns: &str, name: &str, ready: bool, ts: &str) {
        let reason = if ready { "" } else { "ContainersNotReady" };
        self.store.modify(id::PODS, ns, name, |p| {
            set_condition(p, "Ready", ready, reason, ts);
            set_condition(p, "ContainersReady", ready, reason, ts);
            p["status"]["containerStatuses"] = container_statuses(p, ready, ts);
        });
    }

    /// Starts timers for pods newly bound to Ready nodes.
    fn kubelet_adopt(&mut self, now: SimTime) {
        for ((ns, name), p) in self.store.iter(id::PODS) {
            let Some(node) = p["spec"]["nodeName"].as_str() else {
                continue;
            };
            let Some(uid) = meta_str(p, "uid") else {
                continue;
            };
            if self.mach.pods.contains_key(uid) || terminal(p) || deleting(p) {
                continue;
            }
            let ready_node = self
                .store
                .get(id::NODES, "", node)
                .is_some_and(|n| condition_true(&n, "Ready"));
            if !ready_node {
                continue;
            }
            let startup = p["metadata"]["annotations"][ANN_STARTUP]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(self.settings.pod_startup_seconds);
            let timer = PodTimer {
                ns: ns.clone(),
                name: name.clone(),
                running_at: now + startup * 0.5,
                ready_at: now + startup,
                started: p["status"]["phase"] == "Running",
                ready: condition_true(p, "Ready"),
                ..Default::default()
            };
            self.mach.pods.insert(uid.to_string(), timer);
        }
    }

    /// Deletes a pod as the API server and kubelet do: unbound, finished or
    /// zero-grace pods go at once; others get a deletionTimestamp and stop after
    /// SIGTERM (or after the grace period when they ignore SIGTERM).
    pub(crate) fn delete_pod(
        &mut self,
        ns: &str,
        name: &str,
        grace: Option<i64>,
        now: SimTime,
    ) -> Result<Arc<Value>, ApiError> {
        let pod = self.store.found(id::PODS, ns, name)?;
        let grace = grace
            .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30)
            .max(0);
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        let node_exists = !node.is_empty() && self.store.contains(id::NODES, "", node);
        let uid = meta_str(&pod, "uid").unwrap_or("").to_string();
        if !node_exists || terminal(&pod) || grace == 0 {
            self.mach.pods.remove(&uid);
            return Ok(self.store.remove(id::PODS, ns, name).expect("pod exists"));
        }
        if deleting(&pod) {
            let cur = pod["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(grace);
            if grace >= cur {
                return Ok(pod);
            }
        }
        let ignore = pod["metadata"]["annotations"][ANN_IGNORE_SIGTERM] == "true";
        let stop_after = if ignore {
            grace as f64
        } else {
            (grace as f64).min(SIGTERM_EXIT_SECONDS)
        };
        let ts = self.ts(now + grace as f64);
        let obj = self
            .store
            .modify(id::PODS, ns, name, |p| {
                p["metadata"]["deletionTimestamp"] = json!(ts);
                p["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            })
            .expect("pod exists");
        let t = self.mach.pods.entry(uid).or_insert_with(|| PodTimer {
            ns: ns.to_string(),
            name: name.to_string(),
            running_at: now,
            ready_at: now,
            started: true,
            ready: true,
            ..Default::default()
        });
        t.delete_at = Some(now + stop_after);
        Ok(obj)
    }
}

fn container_statuses(pod: &Value, ready: bool, ts: &str) -> Value {
    let containers = pod["spec"]["containers"].as_array().into_iter().flatten();
    let statuses = containers.enumerate().map(|(i, c)| {
        json!({
            "name": c["name"], "image": c["image"], "imageID": format!("{}@sha256:0", c["image"].as_str().unwrap_or("")),
            "containerID": format!("containerd://{:064x}", i + 1), "ready": ready, "started": true,
            "restartCount": 0, "state": {"running": {"startedAt": ts}},
        })
    });
    Value::Array(statuses.collect())
}
