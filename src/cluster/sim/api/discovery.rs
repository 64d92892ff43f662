//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/<group>`, and the
//! resource lists of every group/version (including subresources kubectl looks for,
//! such as `pods/eviction` with group `policy`).

use super::super::resources::{group_versions, RESOURCES};
use serde_json::{json, Value};

/// `/version`.
pub(crate) fn version(kubernetes_version: &str) -> Value {
    let v = kubernetes_version.trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("34");
    json!({
        "major": major, "minor": minor, "gitVersion": kubernetes_version,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64", "emulationMajor": major, "emulationMinor": minor,
    })
}

/// `/api`.
pub(crate) fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    })
}

fn group_doc(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
}

/// `/apis`.
pub(crate) fn group_list() -> Value {
    // Every resource is served at one version (v1), so each group is listed once.
    let groups: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, _)| group_doc(g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub(crate) fn group(group: &str) -> Option<Value> {
    if group.is_empty() || !RESOURCES.iter().any(|r| r.group == group) {
        return None;
    }
    let mut d = group_doc(group);
    d["kind"] = json!("APIGroup");
    d["apiVersion"] = json!("v1");
    Some(d)
}

/// `/api/v1`, `/apis/<group>/<version>`.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let defs: Vec<_> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for r in &defs {
        let mut verbs = vec![
            "create", "delete", "get", "list", "patch", "update", "watch",
        ];
        if r.namespaced {
            verbs.insert(1, "deletecollection");
        }
        let mut main = json!({
            "name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced, "kind": r.kind,
            "verbs": verbs, "storageVersionHash": "c2ltLXN0b3JhZ2U=",
        });
        if !r.short_names.is_empty() {
            main["shortNames"] = json!(r.short_names);
        }
        if r.in_all {
            main["categories"] = json!(["all"]);
        }
        out.push(main);
        if r.has_status {
            out.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
        if r.plural == "pods" {
            out.push(json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy",
                            "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
        }
        if r.scalable {
            out.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": true,
                            "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}),
    )
}
