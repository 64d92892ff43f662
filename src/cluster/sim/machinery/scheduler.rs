//! The scheduler: binds Pending pods to nodes, respecting `unschedulable`,
//! taints/tolerations, node selectors and required node affinity, resource
//! requests vs allocatable, PV zone affinity and zone/hostname spread. Pods that
//! fit nowhere stay Pending with a `FailedScheduling` event.

use super::super::clock::SimTime;
use super::super::resources::id;
use super::super::selector::LabelSelector;
use super::super::store::meta_str;
use super::super::SimState;
use super::{claims, condition_true, deleting, set_condition, LABEL_ZONE};
use crate::quantity;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

struct NodeInfo {
    name: String,
    labels: Value,
    taints: Vec<Value>,
    unschedulable: bool,
    ready: bool,
    cpu_free: i64,
    mem_free: i64,
    pods_free: i64,
    cpu_alloc: i64,
}

/// Resource requests of a pod: (cpu millicores, memory bytes).
pub(crate) fn pod_requests(pod: &Value) -> (i64, i64) {
    let mut cpu = 0;
    let mut mem = 0;
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let r = &c["resources"]["requests"];
        cpu += quantity::json_cpu_millis(&r["cpu"]).unwrap_or(0);
        mem += quantity::json_base_units(&r["memory"]).unwrap_or(0);
    }
    (cpu, mem)
}

/// Whether `tolerations` tolerate `taint`.
pub(crate) fn tolerates(tolerations: &Value, taint: &Value) -> bool {
    tolerations.as_array().into_iter().flatten().any(|t| {
        let effect_ok = t["effect"]
            .as_str()
            .is_none_or(|e| e.is_empty() || Some(e) == taint["effect"].as_str());
        let key = t["key"].as_str().unwrap_or("");
        match t["operator"].as_str().unwrap_or("Equal") {
            "Exists" => effect_ok && (key.is_empty() || Some(key) == taint["key"].as_str()),
            _ => {
                effect_ok
                    && Some(key) == taint["key"].as_str()
                    && t["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or("")
            }
        }
    })
}

/// Whether node labels match one of the required node affinity terms (no terms: any node).
fn node_terms_match(terms: &Value, labels: &Value) -> bool {
    let terms = terms.as_array().filter(|t| !t.is_empty());
    terms.is_none_or(|terms| {
        terms.iter().any(|term| {
            let expressions = json!({"matchExpressions": term["matchExpressions"]});
            LabelSelector::from_object(Some(&expressions))
                .is_some_and(|s| s.matches_labels(Some(labels)))
        })
    })
}

/// Sets phase Pending and the PodScheduled condition: True, or False with the message of
/// an `unschedulable` pod.
fn set_scheduled(p: &mut Value, unschedulable: Option<&str>, ts: &str) {
    let reason = unschedulable.map_or("", |_| "Unschedulable");
    set_condition(p, "PodScheduled", unschedulable.is_none(), reason, ts);
    p["status"]["phase"] = json!("Pending");
    let conditions = p["status"]["conditions"]
        .as_array_mut()
        .into_iter()
        .flatten();
    for c in conditions.filter(|c| c["type"] == "PodScheduled") {
        let c = c.as_object_mut().expect("object");
        if let Some(m) = unschedulable {
            c.insert("message".into(), json!(m));
        } else {
            c.remove("message");
            c.remove("reason");
        }
    }
}

impl SimState {
    fn node_infos(&self) -> Vec<NodeInfo> {
        let mut used: HashMap<&str, (i64, i64, i64)> = HashMap::new();
        for (_, p) in self.store.iter(id::PODS) {
            if let Some(n) = p["spec"]["nodeName"].as_str() {
                if super::terminal(p) {
                    continue;
                }
                let (c, m) = pod_requests(p);
                let e = used.entry(n).or_default();
                e.0 += c;
                e.1 += m;
                e.2 += 1;
            }
        }
        self.store
            .iter(id::NODES)
            .map(|((_, name), n)| {
                let a = &n["status"]["allocatable"];
                let cpu = quantity::json_cpu_millis(&a["cpu"]).unwrap_or(0);
                let mem = quantity::json_base_units(&a["memory"]).unwrap_or(0);
                let pods = quantity::json_base_units(&a["pods"]).unwrap_or(110);
                let u = used.get(name.as_str()).copied().unwrap_or_default();
                NodeInfo {
                    name: name.clone(),
                    labels: n["metadata"]["labels"].clone(),
                    taints: n["spec"]["taints"].as_array().cloned().unwrap_or_default(),
                    unschedulable: n["spec"]["unschedulable"].as_bool().unwrap_or(false),
                    ready: condition_true(n, "Ready"),
                    cpu_free: cpu - u.0,
                    mem_free: mem - u.1,
                    pods_free: pods - u.2,
                    cpu_alloc: cpu.max(1),
                }
            })
            .collect()
    }

    /// Zone required by the pod's bound PVCs (`Err` = conflicting zones).
    fn pvc_zone(&self, pod: &Value, ns: &str) -> Result<Option<String>, ()> {
        let mut zone: Option<String> = None;
        for claim in claims(pod) {
            let Some(pvc) = self.store.get(id::PVCS, ns, claim) else {
                continue;
            };
            let Some(pv_name) = pvc["spec"]["volumeName"].as_str() else {
                continue;
            };
            let Some(pv) = self.store.get(id::PVS, "", pv_name) else {
                continue;
            };
            let z = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
                ["matchExpressions"][0]["values"][0]
                .as_str()
                .map(String::from);
            if let Some(z) = z {
                if zone.as_ref().is_some_and(|cur| *cur != z) {
                    return Err(());
                }
                zone = Some(z);
            }
        }
        Ok(zone)
    }

    /// Binds every schedulable Pending pod.
    pub(crate) fn schedule(&mut self, now: SimTime) {
        let pending: Vec<(String, String)> = self
            .store
            .iter(id::PODS)
            .filter(|(_, p)| {
                p["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
                    && !deleting(p)
                    && !super::terminal(p)
            })
            .map(|(k, _)| k.clone())
            .collect();
        if pending.is_empty() {
            return;
        }
        let mut nodes = self.node_infos();
        // Spread counts: (namespace, selector json, topology key) -> domain -> pods.
        let mut spread: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
        let node_labels: HashMap<String, Value> = nodes
            .iter()
            .map(|n| (n.name.clone(), n.labels.clone()))
            .collect();
        let mut rr = 0usize;
        for (ns, name) in pending {
            let Some(pod) = self.store.get(id::PODS, &ns, &name) else {
                continue;
            };
            let (cpu, mem) = pod_requests(&pod);
            let tolerations = &pod["spec"]["tolerations"];
            let selector = pod["spec"]["nodeSelector"].as_object();
            let affinity = &pod["spec"]["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
            let pv_zone = self.pvc_zone(&pod, &ns);
            let constraint = pod["spec"]["topologySpreadConstraints"].get(0);
            let tk = constraint
                .and_then(|c| c["topologyKey"].as_str())
                .unwrap_or("")
                .to_string();
            let spread_key = constraint.map(|c| format!("{ns}|{tk}|{}", c["labelSelector"]));
            if let (Some(key), Some(c)) = (&spread_key, constraint) {
                if !spread.contains_key(key) {
                    let sel =
                        LabelSelector::from_object(Some(&c["labelSelector"])).unwrap_or_default();
                    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
                    let pods = self.store.list(id::PODS, Some(&ns));
                    for p in pods.iter().filter(|p| sel.matches(p) && !deleting(p)) {
                        if let Some(n) = p["spec"]["nodeName"].as_str() {
                            let d = node_labels.get(n).and_then(|l| l[&tk].as_str());
                            *counts.entry(d.unwrap_or("").to_string()).or_default() += 1;
                        }
                    }
                    spread.insert(key.clone(), counts);
                }
            }
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            let mut best: Option<(usize, (i64, i64, i64))> = None;
            let n_nodes = nodes.len();
            for k in 0..n_nodes {
                let i = (rr + k) % n_nodes;
                let n = &nodes[i];
                let mut why: Option<String> = None;
                if !n.ready {
                    why = Some("node(s) were not ready".into());
                } else if n.unschedulable
                    && !tolerates(
                        tolerations,
                        &json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}),
                    )
                {
                    why = Some("node(s) were unschedulable".into());
                } else if let Some(t) = n.taints.iter().find(|t| {
                    matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
                        && !tolerates(tolerations, t)
                }) {
                    why = Some(format!(
                        "node(s) had untolerated taint {{{}: {}}}",
                        t["key"].as_str().unwrap_or(""),
                        t["value"].as_str().unwrap_or("")
                    ));
                } else if selector
                    .is_some_and(|s| s.iter().any(|(k, v)| n.labels.get(k) != Some(v)))
                    || !node_terms_match(affinity, &n.labels)
                {
                    why = Some("node(s) didn't match Pod's node affinity/selector".into());
                } else if match &pv_zone {
                    Err(()) => true,
                    Ok(Some(z)) => n.labels[LABEL_ZONE].as_str() != Some(z.as_str()),
                    Ok(None) => false,
                } {
                    why = Some("node(s) had volume node affinity conflict".into());
                } else if n.pods_free < 1 {
                    why = Some("Too many pods".into());
                } else if n.cpu_free < cpu {
                    why = Some("Insufficient cpu".into());
                } else if n.mem_free < mem {
                    why = Some("Insufficient memory".into());
                }
                if let Some(w) = why {
                    *reasons.entry(w).or_default() += 1;
                    continue;
                }
                let spread_count = spread_key
                    .as_ref()
                    .and_then(|k| spread.get(k))
                    .map(|c| {
                        c.get(n.labels[&tk].as_str().unwrap_or(""))
                            .copied()
                            .unwrap_or(0)
                    })
                    .unwrap_or(0);
                // kube-scheduler's TaintToleration score: nodes with fewer untolerated
                // PreferNoSchedule taints first (after topology spread), then the least
                // allocated.
                let prefer_not = n
                    .taints
                    .iter()
                    .filter(|t| {
                        t["effect"].as_str() == Some("PreferNoSchedule")
                            && !tolerates(tolerations, t)
                    })
                    .count() as i64;
                let score = (spread_count, prefer_not, -(n.cpu_free * 1000 / n.cpu_alloc));
                if best.is_none_or(|(_, b)| score < b) {
                    best = Some((i, score));
                }
                // Like percentageOfNodesToScore: stop after a sample once a good node is found.
                if spread_key.is_none() && best.is_some_and(|(_, b)| b.1 == 0) && k > 16 {
                    break;
                }
            }
            let ts = self.ts(now);
            match best {
                Some((i, _)) => {
                    rr = i + 1;
                    let node = &mut nodes[i];
                    node.cpu_free -= cpu;
                    node.mem_free -= mem;
                    node.pods_free -= 1;
                    let node_name = node.name.clone();
                    let zone = node.labels[LABEL_ZONE].as_str().unwrap_or("").to_string();
                    if let Some(key) = &spread_key {
                        let d = node.labels[&tk].as_str().unwrap_or("").to_string();
                        *spread.entry(key.clone()).or_default().entry(d).or_default() += 1;
                    }
                    self.bind_volumes(&pod, &ns, &zone, now);
                    self.store.modify(id::PODS, &ns, &name, |p| {
                        p["spec"]["nodeName"] = json!(node_name);
                        set_scheduled(p, None, &ts);
                    });
                    if let Some(uid) = meta_str(&pod, "uid") {
                        self.mach.sched_msgs.remove(uid);
                    }
                }
                None => {
                    let detail: Vec<String> =
                        reasons.iter().map(|(r, c)| format!("{c} {r}")).collect();
                    let msg = format!(
                        "0/{} nodes are available: {}. preemption: 0/{} nodes are available: {} Preemption is not helpful for scheduling.",
                        n_nodes,
                        detail.join(", "),
                        n_nodes,
                        n_nodes
                    );
                    let uid = meta_str(&pod, "uid").unwrap_or("").to_string();
                    if self.mach.sched_msgs.get(&uid) != Some(&msg) {
                        self.mach.sched_msgs.insert(uid, msg.clone());
                        self.store
                            .modify(id::PODS, &ns, &name, |p| set_scheduled(p, Some(&msg), &ts));
                        self.record_event(&pod, "Warning", "FailedScheduling", &msg, now);
                    }
                }
            }
        }
    }

    /// Binds the pod's unbound claims to new PVs in `zone` (WaitForFirstConsumer).
    fn bind_volumes(&mut self, pod: &Value, ns: &str, zone: &str, now: SimTime) {
        for claim in claims(pod) {
            let Some(pvc) = self.store.get(id::PVCS, ns, claim) else {
                continue;
            };
            if pvc["spec"]["volumeName"].as_str().is_some() {
                continue;
            }
            let size = pvc["spec"]["resources"]["requests"]["storage"].clone();
            let pv_name = format!("pvc-{}", meta_str(&pvc, "uid").unwrap_or(""));
            let ts = self.ts(now);
            let pv = json!({
                "metadata": {"name": pv_name, "labels": {LABEL_ZONE: zone}},
                "spec": {
                    "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "sim-zonal", "volumeMode": "Filesystem",
                    "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": claim, "uid": meta_str(&pvc, "uid")},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": LABEL_ZONE, "operator": "In", "values": [zone]}]}]}},
                },
                "status": {"phase": "Bound"},
            });
            let _ = self.store.create(id::PVS, "", pv, &ts);
            self.store.modify(id::PVCS, ns, claim, |c| {
                c["spec"]["volumeName"] = json!(pv_name);
                c["status"] = json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": size}});
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_match_taints() {
        let taint = json!({"key": "dedicated", "value": "db", "effect": "NoSchedule"});
        assert!(tolerates(
            &json!([{"key": "dedicated", "operator": "Equal", "value": "db"}]),
            &taint
        ));
        assert!(tolerates(
            &json!([{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]),
            &taint
        ));
        assert!(tolerates(&json!([{"operator": "Exists"}]), &taint));
        assert!(!tolerates(
            &json!([{"key": "dedicated", "value": "web"}]),
            &taint
        ));
        assert!(!tolerates(
            &json!([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]),
            &taint
        ));
        assert!(!tolerates(&json!(null), &taint));
    }

    #[test]
    fn requests_sum_over_containers() {
        let pod = json!({"spec": {"containers": [
            {"resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
            {"resources": {"requests": {"cpu": 1}}},
            {}
        ]}});
        assert_eq!(pod_requests(&pod), (1250, 1 << 30));
    }
}
