//! Patches: JSON merge patch (RFC 7386) and JSON patch (RFC 6902) by the `json-patch` crate,
//! and strategic merge patch for the list fields clients patch (merge keys from the Kubernetes
//! API types: conditions by `type`, containers by `name`, ownerReferences by `uid`, ...).

use serde::Deserialize;
use serde_json::{Map, Value};

/// The patch flavours of the `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply, approximated by a merge).
    Apply,
}

impl PatchKind {
    /// From a Content-Type header value.
    pub(crate) fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies a patch of the given kind to `target`.
pub(crate) fn apply(kind: PatchKind, target: &Value, patch: &Value) -> Result<Value, String> {
    let mut t = target.clone();
    match kind {
        PatchKind::Merge | PatchKind::Apply => json_patch::merge(&mut t, patch),
        PatchKind::Strategic => strategic_merge(&mut t, patch, ""),
        PatchKind::Json => {
            let ops = json_patch::Patch::deserialize(patch).map_err(|e| e.to_string())?;
            json_patch::patch(&mut t, &ops).map_err(|e| e.to_string())?;
        }
    }
    Ok(t)
}

/// The merge key of a list field (by field name), from the Kubernetes API types.
fn merge_key(field: &str, path: &str) -> Option<&'static str> {
    Some(match field {
        "conditions" => "type",
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "volumeMounts"
        | "containerStatuses"
        | "initContainerStatuses"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "ownerReferences" => "uid",
        "ports" if path.contains("containers") => "containerPort",
        "ports" => "port",
        "addresses" => "type",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "volumeDevices" => "devicePath",
        _ => return None,
    })
}

/// Strategic merge patch (the subset needed by kubectl and controllers).
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value, path: &str) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = p.clone();
        p.remove("$patch");
        *target = Value::Object(p);
        return;
    }
    if p.get("$patch").and_then(Value::as_str) == Some("delete") {
        *target = Value::Null;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let retain: Option<Vec<String>> = p.get("$retainKeys").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect()
    });
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(del)) = (t.get_mut(field), v) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        let sub = format!("{path}.{k}");
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Array(cur)), Value::Array(items)) => {
                if let Some(mk) = merge_key(k, path) {
                    merge_list(cur, items, mk, &sub);
                } else if k == "finalizers" {
                    // The one primitive list merged as a set.
                    for it in items {
                        if !cur.contains(it) {
                            cur.push(it.clone());
                        }
                    }
                } else {
                    *cur = items.clone();
                }
            }
            (Some(cur), Value::Object(_)) if cur.is_object() => strategic_merge(cur, v, &sub),
            _ => {
                let mut nv = v.clone();
                strip_directives(&mut nv);
                t.insert(k.clone(), nv);
            }
        }
    }
    if let Some(keys) = retain {
        t.retain(|k, _| keys.contains(k));
    }
}

fn merge_list(cur: &mut Vec<Value>, items: &[Value], key: &str, path: &str) {
    for it in items {
        let Some(kv) = it.get(key) else {
            cur.push(it.clone());
            continue;
        };
        let pos = cur.iter().position(|c| c.get(key) == Some(kv));
        let delete = it.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                cur.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut cur[i], it, path),
            (None, false) => {
                let mut nv = it.clone();
                strip_directives(&mut nv);
                cur.push(nv);
            }
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            for x in m.values_mut() {
                strip_directives(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_removes_nulls() {
        let t = json!({"a":1,"b":{"c":2,"d":3}});
        let t = apply(PatchKind::Merge, &t, &json!({"a":null,"b":{"c":5}})).unwrap();
        assert_eq!(t, json!({"b":{"c":5,"d":3}}));
    }

    #[test]
    fn strategic_merges_conditions_by_type() {
        let mut t = json!({"status":{"conditions":[{"type":"Ready","status":"False"},{"type":"PodScheduled","status":"True"}]}});
        strategic_merge(
            &mut t,
            &json!({"status":{"$setElementOrder/conditions":[{"type":"Ready"}],"conditions":[{"type":"Ready","status":"True"}]}}),
            "",
        );
        assert_eq!(t["status"]["conditions"][0]["status"], "True");
        assert_eq!(t["status"]["conditions"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn strategic_replaces_taints_and_deletes_by_key() {
        let mut t = json!({"spec":{"taints":[{"key":"a","effect":"NoSchedule"}],"unschedulable":true},
                           "metadata":{"finalizers":["x"],"ownerReferences":[{"uid":"1"},{"uid":"2"}]}});
        strategic_merge(
            &mut t,
            &json!({"spec":{"taints":[{"key":"b","effect":"NoSchedule"}],"unschedulable":null},
                    "metadata":{"finalizers":["y"],"ownerReferences":[{"uid":"1","$patch":"delete"}]}}),
            "",
        );
        assert_eq!(
            t["spec"]["taints"],
            json!([{"key":"b","effect":"NoSchedule"}])
        );
        assert!(t["spec"].get("unschedulable").is_none());
        assert_eq!(t["metadata"]["finalizers"], json!(["x", "y"]));
        assert_eq!(t["metadata"]["ownerReferences"], json!([{"uid":"2"}]));
    }

    #[test]
    fn json_patch_ops() {
        let t = json!({"metadata":{"labels":{"a":"1"}},"list":[1,2]});
        let out = apply(
            PatchKind::Json,
            &t,
            &json!([
                {"op":"add","path":"/metadata/labels/b~1c","value":"2"},
                {"op":"replace","path":"/metadata/labels/a","value":"3"},
                {"op":"add","path":"/list/-","value":3},
                {"op":"remove","path":"/list/0"},
                {"op":"test","path":"/list/0","value":2}
            ]),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a":"3","b/c":"2"}));
        assert_eq!(out["list"], json!([2, 3]));
        let failed_test = json!([{"op":"test","path":"/list/0","value":9}]);
        assert!(apply(PatchKind::Json, &t, &failed_test).is_err());
    }
}
