//! Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) for
//! pods and nodes with kubectl's columns; other resources get Name and Age.

use super::super::machinery::deleting;
use super::super::resources::ResourceDef;
use super::super::store::meta_str;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

/// Table columns: name, priority (1: shown by `-o wide` only), description.
type Columns = &'static [(&'static str, i32, &'static str)];

const POD_COLUMNS: Columns = &[
    ("Name", 0, "Name must be unique within a namespace."),
    (
        "Ready",
        0,
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    (
        "Status",
        0,
        "The aggregate status of the containers in this pod.",
    ),
    (
        "Restarts",
        0,
        "The number of times the containers in this pod have been restarted.",
    ),
    ("Age", 0, "CreationTimestamp"),
    ("IP", 1, "IP address allocated to the pod."),
    ("Node", 1, "Name of the Node this pod is assigned to."),
    ("Nominated Node", 1, "Nominated node name."),
    ("Readiness Gates", 1, "Pod readiness gates."),
];

const NODE_COLUMNS: Columns = &[
    ("Name", 0, "Name must be unique."),
    ("Status", 0, "The status of the node"),
    ("Roles", 0, "The roles of the node"),
    ("Age", 0, "CreationTimestamp"),
    ("Version", 0, "Kubelet Version reported by the node."),
    ("Internal-IP", 1, "List of internal IPs."),
    ("External-IP", 1, "List of external IPs."),
    ("OS-Image", 1, "OS Image."),
    ("Kernel-Version", 1, "Kernel version."),
    ("Container-Runtime", 1, "Container runtime."),
];

const EVENT_COLUMNS: Columns = &[
    ("Last Seen", 0, "Time of the last occurrence."),
    ("Type", 0, "Type of this event."),
    ("Reason", 0, "Short, machine understandable string."),
    ("Object", 0, "The object this event is about."),
    ("Message", 0, "A human-readable description."),
];

const PDB_COLUMNS: Columns = &[
    ("Name", 0, "Name must be unique within a namespace."),
    (
        "Min Available",
        0,
        "The minimum number of pods that must be available.",
    ),
    (
        "Max Unavailable",
        0,
        "The maximum number of pods that may be unavailable.",
    ),
    (
        "Allowed Disruptions",
        0,
        "Number of pod disruptions that are currently allowed.",
    ),
    ("Age", 0, "CreationTimestamp"),
];

const REPLICAS_COLUMNS: Columns = &[
    ("Name", 0, "Name must be unique within a namespace."),
    ("Ready", 0, "Ready replicas / desired replicas."),
    ("Age", 0, "CreationTimestamp"),
];

const DEFAULT_COLUMNS: Columns = &[
    ("Name", 0, "Name must be unique."),
    ("Age", 0, "CreationTimestamp"),
];

/// A column definition; "Allowed Disruptions" is the one integer column.
fn col(&(name, priority, desc): &(&str, i32, &str)) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    let kind = if name == "Allowed Disruptions" {
        "integer"
    } else {
        "string"
    };
    json!({"name": name, "type": kind, "format": format, "description": desc, "priority": priority})
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
    let (columns, row_fn): (Columns, RowFn) = match def.plural {
        "pods" => (POD_COLUMNS, pod_row),
        "nodes" => (NODE_COLUMNS, node_row),
        "events" => (EVENT_COLUMNS, |e, now| {
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
        }),
        "poddisruptionbudgets" => (PDB_COLUMNS, |p, now| {
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
        }),
        "deployments" | "statefulsets" | "replicasets" => (REPLICAS_COLUMNS, |d, now| {
            vec![
                json!(meta_str(d, "name")),
                json!(format!(
                    "{}/{}",
                    d["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    d["spec"]["replicas"].as_i64().unwrap_or(1)
                )),
                json!(age(meta_str(d, "creationTimestamp"), now)),
            ]
        }),
        _ => (DEFAULT_COLUMNS, |o, now| {
            vec![
                json!(meta_str(o, "name")),
                json!(age(meta_str(o, "creationTimestamp"), now)),
            ]
        }),
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
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
        "columnDefinitions": columns.iter().map(col).collect::<Vec<_>>(), "rows": rows})
}
