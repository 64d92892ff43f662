//! The object store: Kubernetes objects as JSON keyed by (resource, namespace, name),
//! one global `resourceVersion` counter, and watch fan-out with a replay history.

use super::error::ApiError;
use super::resources::RESOURCES;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// (namespace, name); namespace is "" for cluster-scoped objects.
pub(crate) type ObjKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as fanned out to watchers.
#[derive(Debug)]
pub(crate) struct WatchEvent {
    /// Resource id (index into [`RESOURCES`]).
    pub(crate) res: usize,
    pub(crate) etype: EventType,
    /// The resourceVersion of this change.
    pub(crate) rv: u64,
    /// The object after the change (before removal for DELETED).
    pub(crate) object: Arc<Value>,
    /// The previous object (MODIFIED only), so selector watches can turn a change
    /// that leaves or enters the selection into DELETED or ADDED.
    pub(crate) prev: Option<Arc<Value>>,
}

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateMode {
    /// The main resource: status is kept when the resource has a status subresource.
    Main,
    /// The `/status` subresource: only status changes.
    Status,
}

/// The store. Not thread-safe by itself: the simulator wraps it in a mutex.
pub(crate) struct Store {
    rv: u64,
    objects: Vec<BTreeMap<ObjKey, Arc<Value>>>,
    history: VecDeque<Arc<WatchEvent>>,
    history_cap: usize,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    uid_seq: u64,
    uid_salt: u64,
}

/// Reads `metadata.<field>` as a string.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `(namespace, name)` of an object.
pub(crate) fn key_of(obj: &Value) -> ObjKey {
    (
        meta_str(obj, "namespace").unwrap_or("").to_string(),
        meta_str(obj, "name").unwrap_or("").to_string(),
    )
}

impl Store {
    pub(crate) fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        Self {
            rv: 1,
            objects: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
            history: VecDeque::new(),
            history_cap,
            tx,
            uid_seq: 0,
            uid_salt: rand::random(),
        }
    }

    /// The current (latest) resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// A fresh uid in UUID format.
    pub(crate) fn new_uid(&mut self) -> String {
        self.uid_seq += 1;
        let a = self.uid_salt ^ self.uid_seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a & 0xfff) as u16,
            (self.uid_seq >> 48) as u16 & 0xfff,
            self.uid_seq & 0xffff_ffff_ffff
        )
    }

    /// Subscribes to live events and returns the retained history after `after_rv`,
    /// or `None` when `after_rv` is older than the history (410 Gone).
    pub(crate) fn subscribe(
        &self,
        after_rv: u64,
    ) -> (
        broadcast::Receiver<Arc<WatchEvent>>,
        Option<Vec<Arc<WatchEvent>>>,
    ) {
        let rx = self.tx.subscribe();
        if after_rv >= self.rv {
            return (rx, Some(Vec::new()));
        }
        let oldest = self.history.front().map(|e| e.rv).unwrap_or(self.rv);
        if after_rv + 1 < oldest {
            return (rx, None);
        }
        let hist = self
            .history
            .iter()
            .filter(|e| e.rv > after_rv)
            .cloned()
            .collect();
        (rx, Some(hist))
    }

    /// Number of live watch subscriptions.
    pub(crate) fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }

    fn emit(&mut self, res: usize, etype: EventType, object: Arc<Value>, prev: Option<Arc<Value>>) {
        let ev = Arc::new(WatchEvent {
            res,
            etype,
            rv: self.rv,
            object,
            prev,
        });
        if self.history_cap > 0 {
            if self.history.len() >= self.history_cap {
                self.history.pop_front();
            }
            self.history.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    pub(crate) fn get(&self, res: usize, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects[res]
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// One object, or 404 NotFound.
    pub(crate) fn found(&self, res: usize, ns: &str, name: &str) -> Result<Arc<Value>, ApiError> {
        self.get(res, ns, name)
            .ok_or_else(|| ApiError::not_found(&RESOURCES[res].qualified(), name))
    }

    pub(crate) fn contains(&self, res: usize, ns: &str, name: &str) -> bool {
        self.objects[res].contains_key(&(ns.to_string(), name.to_string()))
    }

    /// All objects of a resource, optionally in one namespace, sorted by (namespace, name).
    pub(crate) fn list(&self, res: usize, ns: Option<&str>) -> Vec<Arc<Value>> {
        match ns {
            None => self.objects[res].values().cloned().collect(),
            Some(ns) => self.objects[res]
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    pub(crate) fn iter(&self, res: usize) -> impl Iterator<Item = (&ObjKey, &Arc<Value>)> {
        self.objects[res].iter()
    }

    pub(crate) fn count(&self, res: usize) -> usize {
        self.objects[res].len()
    }

    /// Creates an object (metadata is completed: uid, resourceVersion, timestamps).
    pub(crate) fn create(
        &mut self,
        res: usize,
        ns: &str,
        mut obj: Value,
        now: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let def = &RESOURCES[res];
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body is not a JSON object",
            ));
        }
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty() {
            match meta_str(&obj, "generateName") {
                Some(prefix) if !prefix.is_empty() => {
                    name = format!("{prefix}{}", random_suffix());
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        def.kind
                    )))
                }
            }
        }
        if def.namespaced {
            if ns.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "{} is namespaced: a namespace is required",
                    def.qualified()
                )));
            }
            if let Some(body_ns) = meta_str(&obj, "namespace") {
                if !body_ns.is_empty() && body_ns != ns {
                    return Err(ApiError::bad_request(format!(
                        "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
                    )));
                }
            }
            if !self.contains(super::resources::id::NAMESPACES, "", ns) {
                return Err(ApiError::not_found("namespaces", ns));
            }
        }
        let key = (
            if def.namespaced { ns } else { "" }.to_string(),
            name.clone(),
        );
        if self.objects[res].contains_key(&key) {
            return Err(ApiError::already_exists(&def.qualified(), &name));
        }
        self.rv += 1;
        let uid = self.new_uid();
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        let m = obj["metadata"].as_object_mut().expect("metadata object");
        m.insert("name".into(), json!(name));
        if def.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("resourceVersion".into(), json!(self.rv.to_string()));
        m.insert("creationTimestamp".into(), json!(now));
        m.remove("deletionTimestamp");
        if def.generation {
            m.insert("generation".into(), json!(1));
        }
        let obj = Arc::new(obj);
        self.objects[res].insert(key, obj.clone());
        self.emit(res, EventType::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces an object from a client write (PUT or the result of a PATCH).
    /// A non-empty `metadata.resourceVersion` must equal the stored one (else 409).
    pub(crate) fn update(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        mut obj: Value,
        mode: UpdateMode,
    ) -> Result<Arc<Value>, ApiError> {
        let def = &RESOURCES[res];
        let old = self.found(res, ns, name)?;
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body is not a JSON object",
            ));
        }
        if let Some(rv) = meta_str(&obj, "resourceVersion") {
            if !rv.is_empty() && Some(rv) != meta_str(&old, "resourceVersion") {
                return Err(ApiError::conflict(&def.qualified(), name));
            }
        }
        if let Some(body_name) = meta_str(&obj, "name") {
            if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        match mode {
            UpdateMode::Status => {
                let mut merged = (*old).clone();
                copy_field(&mut merged, &obj, "status");
                obj = merged;
            }
            UpdateMode::Main => {
                if def.has_status {
                    copy_field(&mut obj, &old, "status");
                }
                if !obj.get("metadata").is_some_and(Value::is_object) {
                    obj["metadata"] = json!({});
                }
                // Immutable metadata.
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "namespace",
                    "name",
                ] {
                    copy_field(&mut obj["metadata"], &old["metadata"], f);
                }
                if def.generation {
                    let gen = old["metadata"]["generation"].as_i64().unwrap_or(1);
                    let changed = old.get("spec") != obj.get("spec");
                    obj["metadata"]["generation"] = json!(if changed { gen + 1 } else { gen });
                }
            }
        }
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        if obj == *old {
            return Ok(old);
        }
        Ok(self.put(res, obj))
    }

    /// Writes an object unconditionally (machinery), bumping its resourceVersion.
    pub(crate) fn put(&mut self, res: usize, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let key = key_of(&obj);
        let obj = Arc::new(obj);
        match self.objects[res].insert(key, obj.clone()) {
            Some(prev) => self.emit(res, EventType::Modified, obj.clone(), Some(prev)),
            None => self.emit(res, EventType::Added, obj.clone(), None),
        }
        obj
    }

    /// Applies `f` to a copy of the object and writes it if it changed.
    pub(crate) fn modify(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Arc<Value>> {
        let old = self.get(res, ns, name)?;
        let mut new = (*old).clone();
        f(&mut new);
        if new == *old {
            return Some(old);
        }
        Some(self.put(res, new))
    }

    /// Removes an object (DELETED event carries a new resourceVersion).
    pub(crate) fn remove(&mut self, res: usize, ns: &str, name: &str) -> Option<Arc<Value>> {
        let old = self.objects[res].remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let last = Arc::new(last);
        self.emit(res, EventType::Deleted, last.clone(), None);
        Some(last)
    }

    /// Removes every object of `res` that `doomed` picks (it sees the store before any removal).
    pub(crate) fn remove_where(
        &mut self,
        res: usize,
        doomed: impl Fn(&Self, &Value) -> bool,
    ) -> Vec<Arc<Value>> {
        let keys: Vec<ObjKey> = self.objects[res]
            .iter()
            .filter(|(_, o)| doomed(self, o))
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter()
            .filter_map(|(ns, name)| self.remove(res, ns, name))
            .collect()
    }
}

/// Sets `to[key]` to `from[key]`, or removes it when `from` has none (`to` is an object).
fn copy_field(to: &mut Value, from: &Value, key: &str) {
    let Some(to) = to.as_object_mut() else {
        return;
    };
    match from.get(key) {
        Some(v) => to.insert(key.to_string(), v.clone()),
        None => to.remove(key),
    };
}

/// The alphabet of generated name suffixes (Kubernetes' `rand.String`: no vowels).
pub(crate) const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five lowercase alphanumerics, as Kubernetes' generateName uses.
pub(crate) fn random_suffix() -> String {
    (0..5)
        .map(|_| NAME_CHARS[rand::random_range(0..NAME_CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::resources::id;
    use super::*;

    fn store() -> Store {
        let mut s = Store::new(100);
        s.create(
            id::NAMESPACES,
            "",
            json!({"metadata":{"name":"default"}}),
            "t",
        )
        .unwrap();
        s
    }

    #[test]
    fn create_get_conflict() {
        let mut s = store();
        let p = s
            .create(
                id::PODS,
                "default",
                json!({"metadata":{"name":"a"},"spec":{}}),
                "t",
            )
            .unwrap();
        assert!(meta_str(&p, "uid").is_some());
        let err = s
            .create(id::PODS, "default", json!({"metadata":{"name":"a"}}), "t")
            .unwrap_err();
        assert_eq!(err.code, 409);
        let mut stale = (*p).clone();
        stale["metadata"]["labels"] = json!({"x":"y"});
        s.update(id::PODS, "default", "a", stale.clone(), UpdateMode::Main)
            .unwrap();
        let err = s
            .update(id::PODS, "default", "a", stale, UpdateMode::Main)
            .unwrap_err();
        assert_eq!(err.reason, "Conflict");
    }

    #[test]
    fn create_in_missing_namespace_is_404() {
        let mut s = store();
        let err = s
            .create(id::PODS, "nope", json!({"metadata":{"name":"a"}}), "t")
            .unwrap_err();
        assert_eq!(err.code, 404);
    }

    #[test]
    fn history_replays_after_rv() {
        let mut s = store();
        let rv = s.rv();
        s.create(id::PODS, "default", json!({"metadata":{"name":"a"}}), "t")
            .unwrap();
        s.remove(id::PODS, "default", "a");
        let (_rx, hist) = s.subscribe(rv);
        let hist = hist.unwrap();
        assert_eq!(hist.len(), 2);
        assert_eq!(hist[1].etype, EventType::Deleted);
    }
}
