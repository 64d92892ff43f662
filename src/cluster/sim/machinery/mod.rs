//! The simulated machinery: cloud (auto-scaling groups, instances, load balancer),
//! kubelet, scheduler, workload controllers and PDB status. Everything runs in
//! [`SimState::tick`], driven by the scaled clock.

pub(crate) mod cloud;
pub(crate) mod controllers;
pub(crate) mod endpoints;
pub(crate) mod kubelet;
pub(crate) mod mirror;
pub(crate) mod pdb;
pub(crate) mod scheduler;

use super::clock::SimTime;
use super::resources::id;
use super::store::{key_of, meta_str};
use super::SimState;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Annotation: the pod ignores SIGTERM (stops only when its grace period ends).
pub(crate) const ANN_IGNORE_SIGTERM: &str = "sim.e2e-gate.io/ignore-sigterm";
/// Annotation: pod startup (bind → Ready) in simulated seconds.
pub(crate) const ANN_STARTUP: &str = "sim.e2e-gate.io/startup-seconds";
/// Annotation: `VERSION:AFTER:FOR` — on a node with kubelet VERSION the pod turns NotReady
/// AFTER simulated seconds after Ready, for FOR seconds, once (topology `unready_on_kubelet`).
pub(crate) const ANN_UNREADY_ON_KUBELET: &str = "sim.e2e-gate.io/unready-on-kubelet";
/// Label: the pool of a node.
pub(crate) const LABEL_POOL: &str = "e2e-gate.io/pool";
pub(crate) const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// Machinery state that is not stored as API objects.
#[derive(Default)]
pub(crate) struct Machinery {
    pub(crate) cloud: cloud::Cloud,
    /// Kubelet timers per pod uid.
    pub(crate) pods: HashMap<String, kubelet::PodTimer>,
    /// Last FailedScheduling message per pod uid (one event per change).
    pub(crate) sched_msgs: HashMap<String, String>,
    /// Pod IP counter.
    pub(crate) ip_seq: u32,
    pub(crate) last_tick: SimTime,
    /// Store resourceVersion after the last controller/scheduler pass.
    pub(crate) last_rv: u64,
    /// Store resourceVersion after the last kubelet adoption scan.
    pub(crate) kubelet_rv: u64,
    /// Store resourceVersion after the last PDB status pass.
    pub(crate) pdb_rv: u64,
    /// Last time the controllers ran although nothing changed.
    pub(crate) last_full_pass: SimTime,
}

impl SimState {
    /// One step of every simulated component.
    pub(crate) fn tick(&mut self, now: SimTime) {
        let dt = (now - self.mach.last_tick).max(0.0);
        self.mach.last_tick = now;
        self.cloud_step(now);
        // Each component re-runs when anything changed since its own last pass
        // (including writes of the other components), so the system converges.
        let changed = self.store.rv() != self.mach.last_rv;
        // A full pass at least once per real second even when nothing changed.
        if changed || now - self.mach.last_full_pass > 1.0 / self.clock.time_scale() {
            self.mach.last_full_pass = now;
            self.run_controllers(now);
            self.schedule(now);
            self.mach.last_rv = self.store.rv();
        }
        self.kubelet_step(now);
        if self.store.rv() != self.mach.pdb_rv {
            self.update_pdb_status();
            self.update_endpoint_slices();
            self.mach.pdb_rv = self.store.rv();
        }
        self.account_availability(dt);
    }

    /// Timestamp string for simulated instant `t`.
    pub(crate) fn ts(&self, t: SimTime) -> String {
        self.clock
            .at(t)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// Writes `status` into the stored object when it differs.
    pub(crate) fn set_status(&mut self, res: usize, obj: &Value, status: Value) {
        if obj["status"] != status {
            let (ns, name) = key_of(obj);
            self.store.modify(res, &ns, &name, |o| o["status"] = status);
        }
    }

    /// Records a core/v1 Event about `obj`.
    pub(crate) fn record_event(
        &mut self,
        obj: &Value,
        etype: &str,
        reason: &str,
        message: &str,
        now: SimTime,
    ) {
        let ns = meta_str(obj, "namespace").unwrap_or("default").to_string();
        let name = meta_str(obj, "name").unwrap_or("");
        let ts = self.ts(now);
        let ev = json!({
            "metadata": {"name": format!("{name}.{:x}", rand::random::<u64>() & 0xffff_ffff_ffff)},
            "involvedObject": {
                "kind": obj["kind"], "apiVersion": obj["apiVersion"], "namespace": meta_str(obj, "namespace"),
                "name": name, "uid": meta_str(obj, "uid"), "resourceVersion": meta_str(obj, "resourceVersion"),
            },
            "reason": reason, "message": message, "type": etype,
            "source": {"component": if reason == "FailedScheduling" { "default-scheduler" } else { "e2e-gate-sim" }},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
            "reportingComponent": "e2e-gate-sim", "reportingInstance": "",
        });
        let ns = if self.store.contains(id::NAMESPACES, "", &ns) {
            ns
        } else {
            "default".into()
        };
        let _ = self.store.create(id::EVENTS, &ns, ev, &ts);
    }
}

/// Whether a pod is Ready (condition Ready=True).
pub(crate) fn pod_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

/// Whether `status.conditions[type]` is True.
pub(crate) fn condition_true(obj: &Value, ctype: &str) -> bool {
    obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == ctype && c["status"] == "True")
    })
}

/// The claim names of a pod's `persistentVolumeClaim` volumes.
pub(crate) fn claims(pod: &Value) -> impl Iterator<Item = &str> {
    let volumes = pod["spec"]["volumes"].as_array().into_iter().flatten();
    volumes.filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
}

/// Whether an object is being deleted.
pub(crate) fn deleting(obj: &Value) -> bool {
    obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Whether a pod is Succeeded or Failed.
pub(crate) fn terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// The controller ownerReference `(kind, name, uid)` of an object.
pub(crate) fn controller_of(obj: &Value) -> Option<(&str, &str, &str)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or(""),
                r["uid"].as_str().unwrap_or(""),
            )
        })
}

/// Sets (or replaces) a condition in `status.conditions`; keeps lastTransitionTime
/// when the status does not change.
pub(crate) fn set_condition(obj: &mut Value, ctype: &str, status: bool, reason: &str, ts: &str) {
    let st = if status { "True" } else { "False" };
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let cs = obj["status"]["conditions"].as_array_mut().expect("array");
    let c = match cs.iter().position(|c| c["type"] == ctype) {
        Some(i) => &mut cs[i],
        None => {
            cs.push(json!({"type": ctype, "lastProbeTime": null}));
            cs.last_mut().expect("just pushed")
        }
    };
    if c["status"] != st {
        c["status"] = json!(st);
        c["lastTransitionTime"] = json!(ts);
    }
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
}
