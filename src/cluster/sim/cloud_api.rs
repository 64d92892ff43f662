//! The small HTTP API of the simulated cloud and the introspection endpoint, under
//! `/sim` on the API server's port:
//!
//! - `GET  /sim/cloud/groups` — groups with desired size, launch template and instances
//!   (lifecycle, LB state, node name, launch template version);
//! - `PUT  /sim/cloud/groups/<group>/desired` `{"desired": N}`;
//! - `PUT  /sim/cloud/groups/<group-or-pool>/launch-template` `{"kubelet_version": "v1.34.1"}`;
//! - `POST /sim/cloud/instances/<id>/terminate` `{"decrement": true}`;
//! - `GET  /sim/metrics` — request counts, PDB availability, evictions per workload,
//!   object counts (pods, ready pods, nodes, ready nodes).

use super::api::{error_response, json_response};
use super::error::ApiError;
use super::machinery::{condition_true, pod_ready};
use super::resources::id;
use super::Sim;
use axum::body::Bytes;
use axum::http::Method;
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;

/// Serves a `/sim/...` request (`rest` = path segments after `sim`).
pub(crate) fn handle(sim: &Arc<Sim>, method: &Method, rest: &[&str], body: &Bytes) -> Response {
    match run(sim, method, rest, body) {
        Ok(v) => json_response(200, &v),
        Err(e) => error_response(&e),
    }
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// The groups document.
pub(crate) fn groups(sim: &Sim) -> Value {
    let st = sim.state.lock();
    let cloud = &st.mach.cloud;
    let groups: Vec<Value> = cloud
        .groups
        .values()
        .map(|g| {
            let instances: Vec<&super::machinery::cloud::Instance> =
                cloud.instances.values().filter(|i| i.group == g.name).collect();
            json!({
                "name": g.name, "pool": g.spec.name, "zone": g.zone, "desired": g.desired,
                "launch_template_version": g.launch_template_version, "kubelet_version": g.kubelet_version,
                "instances": instances,
            })
        })
        .collect();
    json!({"groups": groups})
}

fn run(sim: &Arc<Sim>, method: &Method, rest: &[&str], body: &Bytes) -> Result<Value, ApiError> {
    let now = sim.clock.now();
    match (method.clone(), rest) {
        (Method::GET, ["cloud", "groups"]) => Ok(groups(sim)),
        (Method::PUT, ["cloud", "groups", g, "desired"]) => {
            let b = body_json(body)?;
            // A size past u32 would wrap to a small one, not be refused.
            let desired = b["desired"]
                .as_u64()
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("body must be {\"desired\": <integer 0..=4294967295>}")
                })?;
            let mut st = sim.state.lock();
            let groups = &mut st.mach.cloud.groups;
            let grp = groups
                .get_mut(*g)
                .ok_or_else(|| not_found(format!("group {g:?} not found")))?;
            grp.desired = desired;
            st.cloud_step(now);
            Ok(json!({"group": g, "desired": desired}))
        }
        (Method::PUT, ["cloud", "groups", g, "launch-template"]) => {
            let b = body_json(body)?;
            let version = b["kubelet_version"]
                .as_str()
                .filter(|v| v.starts_with('v'))
                .ok_or_else(|| {
                    ApiError::bad_request("body must be {\"kubelet_version\": \"v1.34.1\"}")
                })?
                .to_string();
            let mut st = sim.state.lock();
            let mut changed = Vec::new();
            for grp in st.mach.cloud.groups.values_mut() {
                if grp.name == *g || grp.spec.name == *g {
                    grp.launch_template_version += 1;
                    grp.kubelet_version = version.clone();
                    changed.push(json!({"group": grp.name, "launch_template_version": grp.launch_template_version}));
                }
            }
            if changed.is_empty() {
                return Err(not_found(format!("no group or pool named {g:?}")));
            }
            Ok(json!({"updated": changed}))
        }
        (Method::POST, ["cloud", "instances", i, "terminate"]) => {
            let b = body_json(body)?;
            let decrement = b["decrement"].as_bool().unwrap_or(false);
            let mut st = sim.state.lock();
            if !st.terminate_instance(i, decrement) {
                let why = format!("instance {i:?} not found or already terminated");
                return Err(not_found(why));
            }
            Ok(json!({"instance": i, "terminated": true, "decrement": decrement}))
        }
        (Method::GET, ["metrics"]) => {
            let st = sim.state.lock();
            let mut m = serde_json::to_value(&st.metrics).unwrap_or_default();
            m["watchers"] = json!(st.store.watchers());
            let pods_ready = st
                .store
                .iter(id::PODS)
                .filter(|(_, p)| pod_ready(p))
                .count();
            let nodes_ready = st
                .store
                .iter(id::NODES)
                .filter(|(_, n)| condition_true(n, "Ready"))
                .count();
            m["objects"] = json!({"pods": st.store.count(id::PODS), "pods_ready": pods_ready,
                                  "nodes": st.store.count(id::NODES), "nodes_ready": nodes_ready,
                                  "resource_version": st.store.rv()});
            m["sim_seconds"] = json!(now);
            Ok(m)
        }
        _ => Err(not_found("unknown /sim endpoint".into())),
    }
}

/// 404 NotFound about something of the simulated cloud (no Kubernetes resource details).
fn not_found(message: String) -> ApiError {
    ApiError::new(404, "NotFound", message)
}
