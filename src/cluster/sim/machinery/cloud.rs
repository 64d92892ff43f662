//! The cloud side: per-zone auto-scaling groups with a desired size, instances that
//! boot (Pending → InService), register a Node that turns Ready after a kubelet
//! delay, and a load-balancer target that turns InService after a health check.

use super::super::clock::SimTime;
use super::super::resources::id;
use super::super::topology::Pool;
use super::super::SimState;
use super::{set_condition, LABEL_POOL, LABEL_ZONE};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Instance lifecycle, as an auto-scaling group reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Lifecycle {
    /// Booting.
    Pending,
    /// Running and part of the group.
    InService,
    /// Terminated (kept for introspection).
    Terminated,
}

/// Load-balancer target state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum LbState {
    /// Not (yet) healthy.
    OutOfService,
    /// Healthy.
    InService,
}

/// One auto-scaling group (one pool in one zone).
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// `<pool>-<zone>`.
    pub name: String,
    pub zone: String,
    pub desired: u32,
    /// Launch template version new instances get.
    pub launch_template_version: u32,
    /// Kubelet version of that launch template.
    pub kubelet_version: String,
    /// The pool (`spec.name` is the pool's name).
    pub(crate) spec: Pool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Instance {
    /// `i-0000001`.
    pub id: String,
    pub group: String,
    pub zone: String,
    pub lifecycle: Lifecycle,
    pub lb_state: LbState,
    /// Launch template version it was launched with.
    pub launch_template_version: u32,
    pub kubelet_version: String,
    pub node_name: String,
    /// Simulated launch time.
    pub launched_at: SimTime,
    #[serde(skip)]
    pub(crate) in_service_at: SimTime,
    #[serde(skip)]
    pub(crate) ready_at: Option<SimTime>,
    #[serde(skip)]
    pub(crate) lb_at: Option<SimTime>,
    #[serde(skip)]
    pub(crate) node_ready: bool,
}

/// All groups and instances.
#[derive(Debug, Default)]
pub(crate) struct Cloud {
    /// Groups by name.
    pub groups: BTreeMap<String, Group>,
    /// Instances by id.
    pub instances: BTreeMap<String, Instance>,
    seq: u64,
    /// Instances come from another cloud's groups ([`super::mirror`]): the groups do not
    /// scale themselves, and Nodes carry `aws:///ZONE/ID` provider ids.
    pub mirrored: bool,
}

impl Cloud {
    /// Adds the groups of a pool (one per zone).
    pub(crate) fn add_pool(&mut self, pool: &Pool) {
        for zone in &pool.zones {
            let name = format!("{}-{}", pool.name, zone);
            self.groups.insert(
                name.clone(),
                Group {
                    name,
                    zone: zone.clone(),
                    desired: pool.size_per_zone,
                    launch_template_version: 1,
                    kubelet_version: pool.kubelet_version.clone(),
                    spec: pool.clone(),
                },
            );
        }
    }

    fn launch(&mut self, group: &str, now: SimTime, initial: bool) -> String {
        let id = format!("i-{:07x}", self.seq + 1);
        let version = self.groups[group].kubelet_version.clone();
        self.launch_as(group, id, version, now, initial)
    }

    /// Starts instance `id` in `group` running `kubelet_version` (booting unless `initial`).
    pub(crate) fn launch_as(
        &mut self,
        group: &str,
        id: String,
        kubelet_version: String,
        now: SimTime,
        initial: bool,
    ) -> String {
        self.seq += 1;
        let g = &self.groups[group];
        let node_name = format!("{}-{}-{:05}", g.spec.name, g.zone, self.seq);
        let boot = if initial { 0.0 } else { g.spec.boot_seconds };
        self.instances.insert(
            id.clone(),
            Instance {
                id: id.clone(),
                group: group.to_string(),
                zone: g.zone.clone(),
                lifecycle: Lifecycle::Pending,
                lb_state: LbState::OutOfService,
                launch_template_version: g.launch_template_version,
                kubelet_version,
                node_name,
                launched_at: now,
                in_service_at: now + boot,
                ready_at: None,
                lb_at: None,
                node_ready: false,
            },
        );
        id
    }

    /// Live (not terminated) instances of a group.
    pub(crate) fn live(&self, group: &str) -> Vec<&Instance> {
        self.instances
            .values()
            .filter(|i| i.group == group && i.lifecycle != Lifecycle::Terminated)
            .collect()
    }
}

impl SimState {
    /// Creates the initial instances, already InService with Ready nodes.
    pub(crate) fn cloud_init(&mut self) {
        let groups: Vec<(String, u32)> = self
            .mach
            .cloud
            .groups
            .values()
            .map(|g| (g.name.clone(), g.desired))
            .collect();
        for (g, n) in groups {
            for _ in 0..n {
                let id = self.mach.cloud.launch(&g, 0.0, true);
                self.bring_up(&id, 0.0);
            }
        }
    }

    fn instance_mut(&mut self, id: &str) -> &mut Instance {
        self.mach
            .cloud
            .instances
            .get_mut(id)
            .expect("launched instance")
    }

    /// An instance that was there from the start: in service with a Ready Node at once.
    pub(crate) fn bring_up(&mut self, id: &str, now: SimTime) {
        let inst = self.instance_mut(id);
        inst.lifecycle = Lifecycle::InService;
        inst.lb_state = LbState::InService;
        inst.ready_at = Some(now);
        self.register_node(id, now, true);
    }

    fn register_node(&mut self, instance: &str, now: SimTime, ready: bool) {
        let inst = self.mach.cloud.instances[instance].clone();
        let g = self.mach.cloud.groups[&inst.group].clone();
        let p = &g.spec;
        let ts = self.ts(now);
        let mut labels = json!({
            "kubernetes.io/hostname": inst.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": p.instance_type,
            LABEL_ZONE: inst.zone,
            "topology.kubernetes.io/region": self.settings.region,
            LABEL_POOL: g.spec.name,
        });
        for (k, v) in &p.labels {
            labels[k] = json!(v);
        }
        // The topology's field names are the API's (key, value, effect).
        let mut taints: Vec<_> = p.taints.iter().map(|t| json!(t)).collect();
        if !ready {
            taints.push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule", "timeAdded": ts}));
        }
        let seq = self.mach.cloud.instances.len() as u32;
        let ip = format!("10.0.{}.{}", (seq >> 8) & 255, seq & 255);
        let res = json!({"cpu": p.cpu, "memory": p.memory, "pods": p.max_pods.to_string(), "ephemeral-storage": "100Gi"});
        let mut node = json!({
            "metadata": {"name": inst.node_name, "labels": labels,
                          "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"providerID": format!("{}:///{}/{}", if self.mach.cloud.mirrored { "aws" } else { "sim" }, inst.zone, inst.id)},
            "status": {
                "capacity": res, "allocatable": res,
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": inst.node_name}],
                "nodeInfo": {
                    "kubeletVersion": inst.kubelet_version, "kubeProxyVersion": inst.kubelet_version,
                    "containerRuntimeVersion": "containerd://2.1.0", "osImage": "Sim Linux 1.0",
                    "kernelVersion": "6.12.0-sim", "operatingSystem": "linux", "architecture": "amd64",
                    "machineID": inst.id, "systemUUID": inst.id, "bootID": inst.id,
                },
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            }
        });
        let reason = if ready {
            "KubeletReady"
        } else {
            "KubeletNotReady"
        };
        set_condition(&mut node, "Ready", ready, reason, &ts);
        if !taints.is_empty() {
            node["spec"]["taints"] = json!(taints);
        }
        let _ = self.store.create(id::NODES, "", node, &ts);
        let inst = self.instance_mut(instance);
        inst.node_ready = ready;
    }

    /// Advances groups and instances.
    pub(crate) fn cloud_step(&mut self, now: SimTime) {
        // Scale groups to their desired size (a mirrored cloud scales itself).
        let groups: Vec<String> = if self.mach.cloud.mirrored {
            Vec::new()
        } else {
            self.mach.cloud.groups.keys().cloned().collect()
        };
        for g in &groups {
            let desired = self.mach.cloud.groups[g].desired as usize;
            let live: Vec<String> = self
                .mach
                .cloud
                .live(g)
                .iter()
                .map(|i| i.id.clone())
                .collect();
            if live.len() < desired {
                for _ in live.len()..desired {
                    self.mach.cloud.launch(g, now, false);
                }
            } else if live.len() > desired {
                // Terminate the newest first (keeps long-running capacity).
                for id in live.iter().rev().take(live.len() - desired) {
                    self.terminate_instance(id, false);
                }
            }
        }
        let ids: Vec<String> = self
            .mach
            .cloud
            .instances
            .iter()
            .filter(|(_, i)| i.lifecycle != Lifecycle::Terminated)
            .filter(|(_, i)| !(i.node_ready && i.lb_state == LbState::InService))
            .map(|(k, _)| k.clone())
            .collect();
        for id in ids {
            let i = self.mach.cloud.instances[&id].clone();
            let spec = self.mach.cloud.groups.get(&i.group).map(|g| g.spec.clone());
            let Some(spec) = spec else { continue };
            if i.lifecycle == Lifecycle::Pending && now >= i.in_service_at {
                let i = self.instance_mut(&id);
                i.lifecycle = Lifecycle::InService;
                if !spec.new_nodes_never_ready {
                    i.ready_at = Some(now + spec.kubelet_ready_seconds);
                }
                self.register_node(&id, now, false);
                continue;
            }
            if !i.node_ready && i.ready_at.is_some_and(|t| now >= t) {
                let ts = self.ts(now);
                self.store.modify(id::NODES, "", &i.node_name, |n| {
                    set_condition(n, "Ready", true, "KubeletReady", &ts);
                    if let Some(t) = n["spec"]["taints"].as_array_mut() {
                        t.retain(|t| t["key"] != "node.kubernetes.io/not-ready");
                    }
                });
                let i = self.instance_mut(&id);
                i.node_ready = true;
                i.lb_at = Some(now + spec.lb_health_seconds);
                continue;
            }
            if i.node_ready && i.lb_at.is_some_and(|t| now >= t) {
                self.instance_mut(&id).lb_state = LbState::InService;
            }
        }
    }

    /// Terminates an instance: its Node and every pod on it disappear at once.
    /// With `decrement`, the group's desired size shrinks by one (no replacement).
    pub(crate) fn terminate_instance(&mut self, instance: &str, decrement: bool) -> bool {
        let Some(inst) = self.mach.cloud.instances.get_mut(instance) else {
            return false;
        };
        if inst.lifecycle == Lifecycle::Terminated {
            return false;
        }
        inst.lifecycle = Lifecycle::Terminated;
        inst.lb_state = LbState::OutOfService;
        let node = inst.node_name.clone();
        let group = inst.group.clone();
        if decrement {
            if let Some(g) = self.mach.cloud.groups.get_mut(&group) {
                g.desired = g.desired.saturating_sub(1);
            }
        }
        self.remove_node_and_pods(&node);
        true
    }

    /// Removes a node and force-deletes its pods.
    pub(crate) fn remove_node_and_pods(&mut self, node: &str) {
        for p in self
            .store
            .remove_where(id::PODS, |_, p| p["spec"]["nodeName"] == node)
        {
            if let Some(uid) = super::super::store::meta_str(&p, "uid") {
                self.mach.pods.remove(uid);
            }
        }
        self.store.remove(id::NODES, "", node);
    }
}
