//! Workload controllers: Deployments (through ReplicaSets), ReplicaSets,
//! StatefulSets (ordered, stable names, per-replica claims) and DaemonSets, plus
//! garbage collection of pods whose controller is gone.

use super::super::clock::SimTime;
use super::super::resources::id;
use super::super::store::{key_of, meta_str, random_suffix, NAME_CHARS};
use super::super::SimState;
use super::scheduler::tolerates;
use super::{claims, controller_of, deleting, pod_ready, terminal};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

fn owner_ref(obj: &Value) -> Value {
    json!({
        "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta_str(obj, "name"),
        "uid": meta_str(obj, "uid"), "controller": true, "blockOwnerDeletion": true,
    })
}

fn template_hash(template: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut h);
    let mut x = h.finish();
    let n = NAME_CHARS.len() as u64;
    (0..10)
        .map(|_| {
            let c = NAME_CHARS[(x % n) as usize] as char;
            x /= n;
            c
        })
        .collect()
}

fn pod_from_template(
    template: &Value,
    owner: &Value,
    name: &str,
    extra_labels: &[(&str, String)],
) -> Value {
    let mut pod =
        json!({"metadata": template["metadata"].clone(), "spec": template["spec"].clone()});
    if !pod["metadata"].is_object() {
        pod["metadata"] = json!({});
    }
    pod["metadata"]["name"] = json!(name);
    if !pod["metadata"]["labels"].is_object() {
        pod["metadata"]["labels"] = json!({});
    }
    for (k, v) in extra_labels {
        pod["metadata"]["labels"][*k] = json!(v);
    }
    pod["metadata"]["ownerReferences"] = json!([owner_ref(owner)]);
    if pod["spec"]["terminationGracePeriodSeconds"].is_null() {
        pod["spec"]["terminationGracePeriodSeconds"] = json!(30);
    }
    if pod["spec"]["restartPolicy"].is_null() {
        pod["spec"]["restartPolicy"] = json!("Always");
    }
    pod["spec"]["schedulerName"] = json!("default-scheduler");
    pod["status"] = json!({"phase": "Pending", "qosClass": "Burstable"});
    pod
}

/// The pods a controller owns (by its uid).
fn owned_by<'a>(owned: &'a HashMap<String, Vec<Arc<Value>>>, owner: &Value) -> &'a [Arc<Value>] {
    let uid = meta_str(owner, "uid").unwrap_or("");
    owned.get(uid).map_or(&[], Vec::as_slice)
}

impl SimState {
    /// Objects of a resource that are not being deleted.
    fn live(&self, res: usize) -> Vec<Arc<Value>> {
        let mut objects = self.store.list(res, None);
        objects.retain(|o| !deleting(o));
        objects
    }

    /// One pass of every controller.
    pub(crate) fn run_controllers(&mut self, now: SimTime) {
        // Index pods by controller uid.
        let mut owned: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
        for (_, p) in self.store.iter(id::PODS) {
            if let Some((_, _, uid)) = controller_of(p) {
                owned.entry(uid.to_string()).or_default().push(p.clone());
            }
        }
        self.deployments(now);
        self.replicasets(&owned, now);
        self.statefulsets(&owned, now);
        self.daemonsets(&owned, now);
        self.garbage_collect(&owned, now);
        self.attach_volumes();
    }

    /// Keeps `node.status.volumesAttached` / `volumesInUse` and storage.k8s.io
    /// VolumeAttachments in line with the bound claims of the pods running on each
    /// node (the attach/detach controller's view).
    fn attach_volumes(&mut self) {
        let mut by_node: HashMap<String, Vec<String>> = HashMap::new();
        let mut attachments: HashMap<String, (String, String)> = HashMap::new();
        for (_, p) in self.store.iter(id::PODS) {
            let Some(node) = p["spec"]["nodeName"].as_str() else {
                continue;
            };
            if terminal(p) {
                continue;
            }
            let ns = meta_str(p, "namespace").unwrap_or("");
            for claim in claims(p) {
                if let Some(pv) = self
                    .store
                    .get(id::PVCS, ns, claim)
                    .and_then(|c| c["spec"]["volumeName"].as_str().map(String::from))
                {
                    by_node
                        .entry(node.to_string())
                        .or_default()
                        .push(format!("kubernetes.io/csi/sim.e2e-gate.io^{pv}"));
                    let va = format!("csi-{}", template_hash(&json!([pv, node])));
                    attachments.insert(va, (pv, node.to_string()));
                }
            }
        }
        self.store.remove_where(id::VOLUMEATTACHMENTS, |_, va| {
            !attachments.contains_key(meta_str(va, "name").unwrap_or(""))
        });
        let ts = self.ts(self.mach.last_tick);
        for (name, (pv, node)) in &attachments {
            if !self.store.contains(id::VOLUMEATTACHMENTS, "", name) {
                let va = json!({
                    "metadata": {"name": name},
                    "spec": {"attacher": "sim.e2e-gate.io", "nodeName": node,
                             "source": {"persistentVolumeName": pv}},
                    "status": {"attached": true},
                });
                let _ = self.store.create(id::VOLUMEATTACHMENTS, "", va, &ts);
            }
        }
        for node in self.store.list(id::NODES, None) {
            let name = meta_str(&node, "name").unwrap_or("");
            let mut vols = by_node.remove(name).unwrap_or_default();
            vols.sort();
            let attached: Vec<Value> = vols
                .iter()
                .map(|v| json!({"name": v, "devicePath": ""}))
                .collect();
            let cur = node["status"]["volumesAttached"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if cur != attached {
                self.store.modify(id::NODES, "", name, |n| {
                    if attached.is_empty() {
                        if let Some(s) = n["status"].as_object_mut() {
                            s.remove("volumesAttached");
                            s.remove("volumesInUse");
                        }
                    } else {
                        n["status"]["volumesAttached"] = json!(attached);
                        n["status"]["volumesInUse"] = json!(vols);
                    }
                });
            }
        }
    }

    fn deployments(&mut self, now: SimTime) {
        let ts = self.ts(now);
        for d in self.live(id::DEPLOYMENTS) {
            let (ns, dname) = key_of(&d);
            let duid = meta_str(&d, "uid").unwrap_or("").to_string();
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let hash = template_hash(&d["spec"]["template"]);
            let rs_name = format!("{dname}-{hash}");
            let rss: Vec<Arc<Value>> = self
                .store
                .list(id::REPLICASETS, Some(&ns))
                .into_iter()
                .filter(|rs| controller_of(rs).is_some_and(|(_, _, u)| u == duid))
                .collect();
            if !rss
                .iter()
                .any(|rs| meta_str(rs, "name") == Some(rs_name.as_str()))
            {
                let mut template = d["spec"]["template"].clone();
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let labels = template["metadata"]["labels"].clone();
                let rs = json!({
                    "metadata": {"name": rs_name, "labels": labels, "ownerReferences": [owner_ref(&d)],
                                 "annotations": {"deployment.kubernetes.io/revision": "1"}},
                    "spec": {"replicas": replicas, "selector": selector, "template": template},
                });
                let _ = self.store.create(id::REPLICASETS, &ns, rs, &ts);
            }
            // A ReplicaSet created just now already has its replicas and no status yet.
            let mut ready = 0;
            let mut total = 0;
            for rs in rss {
                let want = if meta_str(&rs, "name") == Some(rs_name.as_str()) {
                    replicas
                } else {
                    0
                };
                if rs["spec"]["replicas"].as_i64() != Some(want) {
                    let n = meta_str(&rs, "name").unwrap_or("").to_string();
                    self.store.modify(id::REPLICASETS, &ns, &n, |r| {
                        r["spec"]["replicas"] = json!(want)
                    });
                }
                ready += rs["status"]["readyReplicas"].as_i64().unwrap_or(0);
                total += rs["status"]["replicas"].as_i64().unwrap_or(0);
            }
            let gen = d["metadata"]["generation"].clone();
            let status = json!({
                "observedGeneration": gen, "replicas": total, "updatedReplicas": total.min(replicas),
                "readyReplicas": ready, "availableReplicas": ready,
                "unavailableReplicas": (replicas - ready).max(0),
                "conditions": [
                    {"type": "Available", "status": if ready >= replicas { "True" } else { "False" },
                     "reason": if ready >= replicas { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            });
            self.set_status(id::DEPLOYMENTS, &d, status);
        }
    }

    fn replicasets(&mut self, owned: &HashMap<String, Vec<Arc<Value>>>, now: SimTime) {
        let ts = self.ts(now);
        for rs in self.live(id::REPLICASETS) {
            let (ns, name) = key_of(&rs);
            let pods = owned_by(owned, &rs);
            let active: Vec<&Arc<Value>> = pods
                .iter()
                .filter(|p| !deleting(p) && !terminal(p))
                .collect();
            let want = rs["spec"]["replicas"].as_i64().unwrap_or(1) as usize;
            if active.len() < want {
                for _ in active.len()..want {
                    let pname = format!("{name}-{}", random_suffix());
                    let pod = pod_from_template(&rs["spec"]["template"], &rs, &pname, &[]);
                    let _ = self.store.create(id::PODS, &ns, pod, &ts);
                }
            } else if active.len() > want {
                let mut victims = active.clone();
                // Unscheduled, then not ready, then newest first.
                victims.sort_by_key(|p| {
                    (
                        p["spec"]["nodeName"].is_string(),
                        pod_ready(p),
                        std::cmp::Reverse(
                            meta_str(p, "creationTimestamp").unwrap_or("").to_string(),
                        ),
                    )
                });
                for p in victims.iter().take(active.len() - want) {
                    let pn = meta_str(p, "name").unwrap_or("").to_string();
                    let _ = self.delete_pod(&ns, &pn, None, now);
                }
            }
            let ready = active.iter().filter(|p| pod_ready(p)).count();
            let status = json!({
                "replicas": active.len(), "fullyLabeledReplicas": active.len(),
                "readyReplicas": ready, "availableReplicas": ready,
                "observedGeneration": rs["metadata"]["generation"],
            });
            self.set_status(id::REPLICASETS, &rs, status);
        }
    }

    fn statefulsets(&mut self, owned: &HashMap<String, Vec<Arc<Value>>>, now: SimTime) {
        let ts = self.ts(now);
        for sts in self.live(id::STATEFULSETS) {
            let (ns, name) = key_of(&sts);
            let want = sts["spec"]["replicas"].as_i64().unwrap_or(1);
            let parallel = sts["spec"]["podManagementPolicy"] == "Parallel";
            let pods = owned_by(owned, &sts);
            let by_name: HashMap<&str, &Arc<Value>> = pods
                .iter()
                .map(|p| (meta_str(p, "name").unwrap_or(""), p))
                .collect();
            for i in 0..want {
                let pname = format!("{name}-{i}");
                if let Some(p) = by_name.get(pname.as_str()) {
                    if !parallel && (!pod_ready(p) || deleting(p)) {
                        break; // OrderedReady: wait for this ordinal
                    }
                    continue;
                }
                if self.store.contains(id::PODS, &ns, &pname) {
                    break; // a previous incarnation is still terminating
                }
                let mut pod = pod_from_template(
                    &sts["spec"]["template"],
                    &sts,
                    &pname,
                    &[
                        ("statefulset.kubernetes.io/pod-name", pname.clone()),
                        ("apps.kubernetes.io/pod-index", i.to_string()),
                    ],
                );
                pod["spec"]["hostname"] = json!(pname);
                for t in sts["spec"]["volumeClaimTemplates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let claim_tmpl = t["metadata"]["name"].as_str().unwrap_or("data");
                    let claim = format!("{claim_tmpl}-{name}-{i}");
                    if !self.store.contains(id::PVCS, &ns, &claim) {
                        let mut labels = sts["spec"]["selector"]["matchLabels"].clone();
                        if !labels.is_object() {
                            labels = json!({});
                        }
                        let pvc = json!({
                            "metadata": {"name": claim, "labels": labels},
                            "spec": t["spec"].clone(),
                            "status": {"phase": "Pending"},
                        });
                        let _ = self.store.create(id::PVCS, &ns, pvc, &ts);
                    }
                    if !pod["spec"]["volumes"].is_array() {
                        pod["spec"]["volumes"] = json!([]);
                    }
                    pod["spec"]["volumes"].as_array_mut().expect("array").push(
                        json!({"name": claim_tmpl, "persistentVolumeClaim": {"claimName": claim}}),
                    );
                }
                let _ = self.store.create(id::PODS, &ns, pod, &ts);
                if !parallel {
                    break;
                }
            }
            // Scale down from the highest ordinal.
            let highest_extra = pods
                .iter()
                .filter(|p| !deleting(p))
                .filter_map(|p| {
                    let n = meta_str(p, "name")?;
                    let ord: i64 = n.rsplit('-').next()?.parse().ok()?;
                    (ord >= want).then(|| (ord, n.to_string()))
                })
                .max();
            if let Some((_, n)) = highest_extra {
                let _ = self.delete_pod(&ns, &n, None, now);
            }
            let live: Vec<&Arc<Value>> = pods.iter().filter(|p| !deleting(p)).collect();
            let ready = live.iter().filter(|p| pod_ready(p)).count();
            let status = json!({
                "observedGeneration": sts["metadata"]["generation"], "replicas": live.len(),
                "readyReplicas": ready, "currentReplicas": live.len(), "updatedReplicas": live.len(),
                "availableReplicas": ready, "currentRevision": format!("{name}-1"), "updateRevision": format!("{name}-1"),
            });
            self.set_status(id::STATEFULSETS, &sts, status);
        }
    }

    fn daemonsets(&mut self, owned: &HashMap<String, Vec<Arc<Value>>>, now: SimTime) {
        let ts = self.ts(now);
        let nodes = self.store.list(id::NODES, None);
        for ds in self.live(id::DAEMONSETS) {
            let (ns, name) = key_of(&ds);
            let pods = owned_by(owned, &ds);
            let on_node: HashSet<&str> = pods
                .iter()
                .filter_map(|p| p["spec"]["nodeName"].as_str())
                .collect();
            let tmpl = &ds["spec"]["template"];
            let selector = tmpl["spec"]["nodeSelector"].as_object();
            let mut desired = 0;
            for node in &nodes {
                let nname = meta_str(node, "name").unwrap_or("");
                let labels = &node["metadata"]["labels"];
                if selector.is_some_and(|s| s.iter().any(|(k, v)| labels.get(k) != Some(v))) {
                    continue;
                }
                let blocked = node["spec"]["taints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| {
                        matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
                            && !t["key"]
                                .as_str()
                                .unwrap_or("")
                                .starts_with("node.kubernetes.io/")
                            && !tolerates(&tmpl["spec"]["tolerations"], t)
                    });
                if blocked {
                    continue;
                }
                desired += 1;
                if on_node.contains(nname) {
                    continue;
                }
                let pname = format!("{name}-{}", random_suffix());
                let mut pod = pod_from_template(tmpl, &ds, &pname, &[]);
                pod["spec"]["nodeName"] = json!(nname);
                let mut tol = tmpl["spec"]["tolerations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for key in [
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                    "node.kubernetes.io/unschedulable",
                    "node.kubernetes.io/disk-pressure",
                    "node.kubernetes.io/memory-pressure",
                ] {
                    tol.push(json!({"key": key, "operator": "Exists", "effect": if key.ends_with("unschedulable") || key.ends_with("pressure") { "NoSchedule" } else { "NoExecute" }}));
                }
                pod["spec"]["tolerations"] = json!(tol);
                pod["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts}]);
                let _ = self.store.create(id::PODS, &ns, pod, &ts);
            }
            let ready = pods.iter().filter(|p| pod_ready(p) && !deleting(p)).count();
            let status = json!({
                "desiredNumberScheduled": desired, "currentNumberScheduled": on_node.len(),
                "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": on_node.len(),
                "numberMisscheduled": 0, "observedGeneration": ds["metadata"]["generation"],
            });
            self.set_status(id::DAEMONSETS, &ds, status);
        }
    }

    fn garbage_collect(&mut self, owned: &HashMap<String, Vec<Arc<Value>>>, now: SimTime) {
        let owners: HashSet<String> = [
            id::REPLICASETS,
            id::STATEFULSETS,
            id::DAEMONSETS,
            id::DEPLOYMENTS,
        ]
        .into_iter()
        .flat_map(|res| self.store.iter(res))
        .filter_map(|(_, o)| meta_str(o, "uid").map(String::from))
        .collect();
        for (uid, pods) in owned {
            if owners.contains(uid) {
                continue;
            }
            for p in pods {
                let known = controller_of(p).is_some_and(|(k, _, _)| {
                    matches!(k, "ReplicaSet" | "StatefulSet" | "DaemonSet")
                });
                if known && !deleting(p) {
                    let (ns, n) = key_of(p);
                    let _ = self.delete_pod(&ns, &n, None, now);
                }
            }
        }
        self.store.remove_where(id::REPLICASETS, |_, rs| {
            controller_of(rs).is_some_and(|(k, _, u)| k == "Deployment" && !owners.contains(u))
        });
        // Pods that reference a vanished node: force-delete them.
        self.store.remove_where(id::PODS, |store, p| {
            p["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty() && !store.contains(id::NODES, "", n))
        });
    }
}
