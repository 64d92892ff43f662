//! Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) for
//! pods and nodes with kubectl's columns; other resources get Name and Age.

use super::super::machinery::deleting;
use super::super::resources::ResourceDef;
use super::super::store::meta_str;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

/// A string column (`priority` 1: shown by `-o wide` only).
fn col(name: &str, priority: i32, desc: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": "string", "format": format, "description": desc, "priority": priority})
}

/// An integer column.
fn int_col(name: &str, desc: &str) -> Value {
    let mut c = col(name, 0, desc);
    c["type"] = json!("integer");
    c
}

/// kubectl-style age ("5s", "3m", "2h", "4d").
pub(crate) fn age(created: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(t) = created.and_then(|c| DateTime::parse_from_rfc3339(c).ok()) else {
        return "<unknown>".into();
    };
    let s = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn pod_row(p: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let statuses = p["status"]["containerStatuses"].as_array();
    let total = p["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    let restarts: i64 = statuses.map_or(0, |s| {
        s.iter()
            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
            .sum()
    });
    let phase = p["status"]["phase"].as_str().unwrap_or("Pending");
    let status = if deleting(p) {
        "Terminating"
    } else if phase == "Pending" && p["spec"]["nodeName"].is_string() {
        "ContainerCreating"
    } else {
        phase
    };
    vec![
        json!(meta_str(p, "name")),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
        json!(age(meta_str(p, "creationTimestamp"), now)),
        json!(p["status"]["podIP"].as_str().unwrap_or("<none>")),
        json!(p["spec"]["nodeName"].as_str().unwrap_or("<none>")),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn node_row(n: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ready = n["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True");
    let mut status = match ready {
        Some(true) => "Ready".to_string(),
        Some(false) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if n["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<&str> = n["metadata"]["labels"]
        .as_object()
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let addr = |t: &str| {
        n["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == t))
            .and_then(|x| x["address"].as_str())
            .unwrap_or("<none>")
            .to_string()
    };
    let info = &n["status"]["nodeInfo"];
    vec![
        json!(meta_str(n, "name")),
        json!(status),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        json!(age(meta_str(n, "creationTimestamp"), now)),
        json!(info["kubeletVersion"]),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(info["osImage"]),
        json!(info["kernelVersion"]),
        json!(info["containerRuntimeVersion"]),
    ]
}

/// Builds the cells of one row.
type RowFn = fn(&Value, DateTime<Utc>) -> Vec<Value>;

/// A `meta.k8s.io/v1` Table of `items`.
pub(crate) fn table(
    def: &ResourceDef,
    items: &[Arc<Value>],
    rv: &str,
    cont: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let (columns, row_fn): (Vec<Value>, RowFn) = match def.plural {
        "pods" => (
            vec![
                col("Name", 0, "Name must be unique within a namespace."),
                col(
                    "Ready",
                    0,
                    "The aggregate readiness state of this pod for accepting traffic.",
                ),
                col(
                    "Status",
                    0,
                    "The aggregate status of the containers in this pod.",
                ),
                col(
                    "Restarts",
                    0,
                    "The number of times the containers in this pod have been restarted.",
                ),
                col("Age", 0, "CreationTimestamp"),
                col("IP", 1, "IP address allocated to the pod."),
                col("Node", 1, "Name of the Node this pod is assigned to."),
                col("Nominated Node", 1, "Nominated node name."),
                col("Readiness Gates", 1, "Pod readiness gates."),
            ],
            pod_row,
        ),
        "nodes" => (
            vec![
                col("Name", 0, "Name must be unique."),
                col("Status", 0, "The status of the node"),
                col("Roles", 0, "The roles of the node"),
                col("Age", 0, "CreationTimestamp"),
                col("Version", 0, "Kubelet Version reported by the node."),
                col("Internal-IP", 1, "List of internal IPs."),
                col("External-IP", 1, "List of external IPs."),
                col("OS-Image", 1, "OS Image."),
                col("Kernel-Version", 1, "Kernel version."),
                col("Container-Runtime", 1, "Container runtime."),
            ],
            node_row,
        ),
        "events" => (
            vec![
                col("Last Seen", 0, "Time of the last occurrence."),
                col("Type", 0, "Type of this event."),
                col("Reason", 0, "Short, machine understandable string."),
                col("Object", 0, "The object this event is about."),
                col("Message", 0, "A human-readable description."),
            ],
            |e, now| {
                let io = &e["involvedObject"];
                vec![
                    json!(age(e["lastTimestamp"].as_str(), now)),
                    e["type"].clone(),
                    e["reason"].clone(),
                    json!(format!(
                        "{}/{}",
                        io["kind"].as_str().unwrap_or("").to_lowercase(),
                        io["name"].as_str().unwrap_or("")
                    )),
                    e["message"].clone(),
                ]
            },
        ),
        "poddisruptionbudgets" => (
            vec![
                col("Name", 0, "Name must be unique within a namespace."),
                col(
                    "Min Available",
                    0,
                    "The minimum number of pods that must be available.",
                ),
                col(
                    "Max Unavailable",
                    0,
                    "The maximum number of pods that may be unavailable.",
                ),
                int_col(
                    "Allowed Disruptions",
                    "Number of pod disruptions that are currently allowed.",
                ),
                col("Age", 0, "CreationTimestamp"),
            ],
            |p, now| {
                let show = |v: &Value| match v {
                    Value::Null => json!("N/A"),
                    Value::Number(n) => json!(n.to_string()),
                    other => other.clone(),
                };
                vec![
                    json!(meta_str(p, "name")),
                    show(&p["spec"]["minAvailable"]),
                    show(&p["spec"]["maxUnavailable"]),
                    json!(p["status"]["disruptionsAllowed"].as_i64().unwrap_or(0)),
                    json!(age(meta_str(p, "creationTimestamp"), now)),
                ]
            },
        ),
        "deployments" | "statefulsets" | "replicasets" => (
            vec![
                col("Name", 0, "Name must be unique within a namespace."),
                col("Ready", 0, "Ready replicas / desired replicas."),
                col("Age", 0, "CreationTimestamp"),
            ],
            |d, now| {
                vec![
                    json!(meta_str(d, "name")),
                    json!(format!(
                        "{}/{}",
                        d["status"]["readyReplicas"].as_i64().unwrap_or(0),
                        d["spec"]["replicas"].as_i64().unwrap_or(1)
                    )),
                    json!(age(meta_str(d, "creationTimestamp"), now)),
                ]
            },
        ),
        _ => (
            vec![
                col("Name", 0, "Name must be unique."),
                col("Age", 0, "CreationTimestamp"),
            ],
            |o, now| {
                vec![
                    json!(meta_str(o, "name")),
                    json!(age(meta_str(o, "creationTimestamp"), now)),
                ]
            },
        ),
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({
                "cells": row_fn(o, now),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
            })
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns, "rows": rows})
}
