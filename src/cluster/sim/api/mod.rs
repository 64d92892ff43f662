//! The HTTP API server (axum): discovery, and get/list/watch/create/update/patch/
//! delete/deletecollection for every resource of [`RESOURCES`], with status
//! subresources, the pod eviction subresource, selectors, pagination, server-side
//! tables and `Status` error bodies.

pub(crate) mod discovery;
pub(crate) mod table;
mod watch;

use super::error::ApiError;
use super::patch::{self, PatchKind};
use super::resources::{self, id, ResourceDef, RESOURCES};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{meta_str, UpdateMode};
use super::Sim;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The router of the whole server (Kubernetes API plus the `/sim` endpoints).
pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new().fallback(handle).with_state(sim)
}

pub(crate) fn json_response(code: u16, v: &Value) -> Response {
    bytes_response(code, serde_json::to_vec(v).unwrap_or_default())
}

fn bytes_response(code: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("valid response")
}

/// An error response with a `Status` body.
pub(crate) fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, s.to_string().parse().expect("header"));
    }
    r
}

/// The parsed target of a resource request.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) res: usize,
    pub(crate) ns: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
}

fn parse_target(group: &str, version: &str, segs: &[&str]) -> Result<Target, ApiError> {
    if segs.len() >= 3 && segs[0] == "namespaces" {
        if let Some(res) = resources::find(group, version, segs[2]) {
            if RESOURCES[res].namespaced {
                if segs.len() > 5 {
                    return Err(ApiError::no_resource());
                }
                return Ok(Target {
                    res,
                    ns: Some(segs[1].to_string()),
                    name: segs.get(3).map(|s| s.to_string()),
                    sub: segs.get(4).map(|s| s.to_string()),
                });
            }
        }
    }
    let res = segs
        .first()
        .and_then(|r| resources::find(group, version, r))
        .ok_or_else(ApiError::no_resource)?;
    if segs.len() > 3 {
        return Err(ApiError::no_resource());
    }
    Ok(Target {
        res,
        ns: None,
        name: segs.get(1).map(|s| s.to_string()),
        sub: segs.get(2).map(|s| s.to_string()),
    })
}

async fn handle(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => {
            return json_response(200, &discovery::version(&sim.settings.kubernetes_version))
        }
        ["healthz" | "readyz" | "livez"] => {
            return Response::builder()
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("ok"))
                .expect("response")
        }
        ["api"] => return json_response(200, &discovery::core_versions(&sim.addr.lock())),
        ["apis"] => return json_response(200, &discovery::group_list()),
        ["api", "v1"] => return opt(discovery::resource_list("", "v1")),
        ["apis", g] => return opt(discovery::group(g)),
        ["apis", g, v] => return opt(discovery::resource_list(g, v)),
        ["sim", rest @ ..] => return super::cloud_api::handle(&sim, &method, rest, &body),
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return error_response(&ApiError::no_resource()),
    };
    // Deprecated `/api/v1/watch/...` paths mean `?watch=1`.
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let target = match parse_target(group, version, rest) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    let mut query: HashMap<String, String> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    if legacy_watch {
        query.insert("watch".into(), "1".into());
    }
    let rate = sim.settings.api_error_rate;
    if rate > 0.0 && rand::random::<f64>() < rate {
        sim.state.lock().metrics.injected_errors += 1;
        return error_response(&ApiError::internal(
            "simulated API error (fault injection: sim.api_error_rate)",
        ));
    }
    let header = |name: header::HeaderName, default: &'static str| {
        let value = headers.get(name).and_then(|v| v.to_str().ok());
        value.unwrap_or(default)
    };
    let accept = header(header::ACCEPT, "");
    let content_type = header(header::CONTENT_TYPE, "application/json");
    dispatch(&sim, &method, &target, &query, accept, content_type, &body)
        .unwrap_or_else(|e| error_response(&e))
}

fn opt(v: Option<Value>) -> Response {
    match v {
        Some(v) => json_response(200, &v),
        None => error_response(&ApiError::no_resource()),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON: {e} (only application/json is supported)"
        ))
    })
}

fn dispatch(
    sim: &Arc<Sim>,
    method: &Method,
    t: &Target,
    query: &HashMap<String, String>,
    accept: &str,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let def = &RESOURCES[t.res];
    // Only namespaced resources are found under `namespaces/<ns>/` (see `parse_target`).
    let ns = t.ns.clone().unwrap_or_default();
    let res_name = match &t.sub {
        Some(s) => format!("{}/{s}", def.plural),
        None => def.plural.to_string(),
    };
    if let Some(sub) = &t.sub {
        let ok = (sub == "status" && def.has_status)
            || (sub == "eviction" && t.res == id::PODS)
            || (sub == "scale" && def.scalable);
        if !ok {
            return Err(ApiError::no_resource());
        }
    }
    let now = sim.clock.now();
    let mode = if t.sub.as_deref() == Some("status") {
        UpdateMode::Status
    } else {
        UpdateMode::Main
    };
    if let (Some("scale"), Some(name)) = (t.sub.as_deref(), &t.name) {
        return scale(sim, method, t.res, &ns, name, content_type, body);
    }
    if body.starts_with(b"k8s\x00")
        || content_type.starts_with("application/vnd.kubernetes.protobuf")
    {
        return Err(ApiError::unsupported_media_type(
            "the simulated API server accepts JSON request bodies only, not protobuf (kubectl create <kind> sends protobuf: use `kubectl create -f` or `kubectl apply --validate=false -f` instead)",
        ));
    }
    match (method.clone(), &t.name) {
        (Method::GET, None) => {
            if matches!(
                query.get("watch").map(String::as_str),
                Some("1" | "true" | "True")
            ) {
                sim.state.lock().metrics.request("watch", &res_name);
                return Ok(watch::watch(sim.clone(), t, query));
            }
            let mut st = sim.state.lock();
            st.metrics.request("list", &res_name);
            let items = st.store.list(t.res, t.ns.as_deref());
            let rv = st.store.rv();
            drop(st);
            list(sim, def, items, rv, query, accept)
        }
        (Method::GET, Some(name)) => {
            if t.sub.as_deref() == Some("eviction") {
                return Err(ApiError::method_not_allowed());
            }
            let mut st = sim.state.lock();
            st.metrics.request("get", &res_name);
            let obj = st.store.found(t.res, &ns, name)?;
            drop(st);
            if accept.contains("as=Table") {
                let rv = meta_str(&obj, "resourceVersion").unwrap_or("").to_string();
                let table = table::table(def, &[obj], &rv, None, sim.clock.wall());
                return Ok(json_response(200, &table));
            }
            Ok(json_response(200, &obj))
        }
        (Method::POST, None) => {
            let obj = parse_body(body)?;
            admit_selector(def, &obj)?;
            let mut st = sim.state.lock();
            st.metrics.request("create", &res_name);
            if is_dry_run(query) {
                return Ok(json_response(201, &obj));
            }
            let ts = st.ts(now);
            let created = st.store.create(t.res, &ns, obj, &ts)?;
            Ok(json_response(201, &created))
        }
        (Method::POST, Some(name)) if t.sub.as_deref() == Some("eviction") => {
            let ev = parse_body(body)?;
            let mut st = sim.state.lock();
            st.metrics.request("evict", "pods/eviction");
            if let Some(n) = meta_str(&ev, "name") {
                if n != name {
                    return Err(ApiError::bad_request(format!(
                        "name in URL does not match name in Eviction object: {name} != {n}"
                    )));
                }
            }
            let mut ev = ev;
            if is_dry_run(query) {
                ev["deleteOptions"]["dryRun"] = json!(["All"]);
            }
            let status = st.evict(&ns, name, &ev, now)?;
            Ok(json_response(201, &status))
        }
        (Method::PUT, Some(name)) => {
            let obj = parse_body(body)?;
            admit_selector(def, &obj)?;
            let mut st = sim.state.lock();
            st.metrics.request("update", &res_name);
            if is_dry_run(query) {
                return Ok(json_response(200, &obj));
            }
            let updated = st.store.update(t.res, &ns, name, obj, mode)?;
            Ok(json_response(200, &updated))
        }
        (Method::PATCH, Some(name)) => {
            let kind = PatchKind::from_content_type(content_type).ok_or_else(|| {
                ApiError::unsupported_media_type(format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"))
            })?;
            if kind == PatchKind::Apply && !body.starts_with(b"{") {
                return Err(ApiError::unsupported_media_type(
                    "server-side apply is only supported with a JSON body",
                ));
            }
            let p = parse_body(body)?;
            let mut st = sim.state.lock();
            st.metrics.request("patch", &res_name);
            let cur = st.store.found(t.res, &ns, name)?;
            let mut patched = apply_patch(kind, &cur, &p)?;
            admit_selector(def, &patched)?;
            // A patch carrying metadata.resourceVersion is a precondition; otherwise
            // it applies to the current version.
            let precondition = p["metadata"]["resourceVersion"].as_str().map(String::from);
            patched["metadata"]["resourceVersion"] = match precondition {
                Some(rv) => json!(rv),
                None => cur["metadata"]["resourceVersion"].clone(),
            };
            if is_dry_run(query) {
                return Ok(json_response(200, &patched));
            }
            let updated = st.store.update(t.res, &ns, name, patched, mode)?;
            Ok(json_response(200, &updated))
        }
        (Method::DELETE, Some(name)) => {
            let opts = parse_body(body)?;
            let mut st = sim.state.lock();
            st.metrics.request("delete", &res_name);
            let cur = st.store.found(t.res, &ns, name)?;
            for field in ["uid", "resourceVersion"] {
                let want = opts["preconditions"][field].as_str();
                if want.is_some_and(|w| Some(w) != meta_str(&cur, field)) {
                    return Err(ApiError::conflict(&def.qualified(), name));
                }
            }
            if is_dry_run(query) {
                return Ok(json_response(200, &cur));
            }
            let grace = opts["gracePeriodSeconds"]
                .as_i64()
                .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
            let out = delete_one(&mut st, t.res, &ns, name, grace, now)?;
            Ok(json_response(200, &out))
        }
        (Method::DELETE, None) => {
            let mut st = sim.state.lock();
            st.metrics.request("deletecollection", &res_name);
            let items = filter_items(st.store.list(t.res, t.ns.as_deref()), query)?;
            for o in &items {
                let k = super::store::key_of(o);
                let _ = delete_one(&mut st, t.res, &k.0, &k.1, None, now);
            }
            let status =
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
            Ok(json_response(200, &status))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The `autoscaling/v1` Scale view of a Deployment, StatefulSet or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = LabelSelector::from_object(obj["spec"].get("selector"))
        .map(|s| s.0.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
                     "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
                     "creationTimestamp": obj["metadata"]["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// GET/PUT/PATCH of the `scale` subresource.
fn scale(
    sim: &Arc<Sim>,
    method: &Method,
    res: usize,
    ns: &str,
    name: &str,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let def = &RESOURCES[res];
    let mut st = sim.state.lock();
    let res_name = format!("{}/scale", def.plural);
    let cur = st.store.found(res, ns, name)?;
    let view = scale_of(&cur);
    let wanted = match *method {
        Method::GET => {
            st.metrics.request("get", &res_name);
            return Ok(json_response(200, &view));
        }
        Method::PUT => {
            st.metrics.request("update", &res_name);
            parse_body(body)?
        }
        Method::PATCH => {
            st.metrics.request("patch", &res_name);
            let kind = PatchKind::from_content_type(content_type).ok_or_else(|| {
                ApiError::unsupported_media_type(format!("unsupported patch type {content_type}"))
            })?;
            apply_patch(kind, &view, &parse_body(body)?)?
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str() {
        if *method == Method::PUT && !rv.is_empty() && Some(rv) != meta_str(&cur, "resourceVersion")
        {
            return Err(ApiError::conflict(&def.qualified(), name));
        }
    }
    let replicas = wanted["spec"]["replicas"]
        .as_i64()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: must be an integer ≥ 0"
            ))
        })?;
    let mut obj = (*cur).clone();
    obj["spec"]["replicas"] = json!(replicas);
    let updated = st.store.update(res, ns, name, obj, UpdateMode::Main)?;
    Ok(json_response(200, &scale_of(&updated)))
}

/// The kinds whose `spec.selector` is a `metav1.LabelSelector` refuse one kube cannot read
/// (an unknown operator, `In` without values) with 422 Invalid, naming the field, as the
/// real API server's validation does; nothing unreadable reaches the store.
fn admit_selector(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    match obj["spec"].get("selector") {
        Some(sel) if def.selecting && !sel.is_null() => LabelSelector::check(sel).map_err(|why| {
            ApiError::invalid(format!(
                "{}.{} {:?} is invalid: spec.selector: {why}",
                def.kind,
                def.group,
                meta_str(obj, "name").unwrap_or("")
            ))
        }),
        _ => Ok(()),
    }
}

fn apply_patch(kind: PatchKind, target: &Value, p: &Value) -> Result<Value, ApiError> {
    patch::apply(kind, target, p)
        .map_err(|e| ApiError::invalid(format!("the patch could not be applied: {e}")))
}

fn is_dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|v| !v.is_empty())
}

fn delete_one(
    st: &mut super::SimState,
    res: usize,
    ns: &str,
    name: &str,
    grace: Option<i64>,
    now: f64,
) -> Result<Arc<Value>, ApiError> {
    if res == id::PODS {
        return st.delete_pod(ns, name, grace, now);
    }
    if res == id::NODES {
        // Deleting a Node object does not stop the machine, but its pods go.
        let last = st.store.found(id::NODES, "", name)?;
        st.remove_node_and_pods(name);
        return Ok(last);
    }
    if res == id::NAMESPACES {
        if ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
            ));
        }
        for r in (0..RESOURCES.len()).filter(|r| RESOURCES[*r].namespaced) {
            st.store
                .remove_where(r, |_, o| meta_str(o, "namespace") == Some(name));
        }
    }
    st.store
        .remove(res, ns, name)
        .ok_or_else(|| ApiError::not_found(&RESOURCES[res].qualified(), name))
}

/// The `labelSelector` and `fieldSelector` of a request.
pub(crate) struct Selectors {
    ls: Option<LabelSelector>,
    fs: Option<FieldSelector>,
}

impl Selectors {
    pub(crate) fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let get = |k: &str| query.get(k).filter(|s| !s.is_empty());
        let bad = ApiError::bad_request;
        Ok(Self {
            ls: get("labelSelector")
                .map(|s| LabelSelector::parse(s))
                .transpose()
                .map_err(bad)?,
            fs: get("fieldSelector")
                .map(|s| FieldSelector::parse(s))
                .transpose()
                .map_err(bad)?,
        })
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.ls.as_ref().is_none_or(|s| s.matches(obj))
            && self.fs.as_ref().is_none_or(|s| s.matches(obj))
    }
}

fn filter_items(
    mut items: Vec<Arc<Value>>,
    query: &HashMap<String, String>,
) -> Result<Vec<Arc<Value>>, ApiError> {
    let selectors = Selectors::from_query(query)?;
    items.retain(|o| selectors.matches(o));
    Ok(items)
}

fn list(
    sim: &Arc<Sim>,
    def: &ResourceDef,
    items: Vec<Arc<Value>>,
    rv: u64,
    query: &HashMap<String, String>,
    accept: &str,
) -> Result<Response, ApiError> {
    let mut items = filter_items(items, query)?;
    if let Some(c) = query.get("continue").filter(|c| !c.is_empty()) {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
        let (ns, name) = raw.split_once('\u{0}').unwrap_or(("", &raw));
        let start = items.partition_point(|o| {
            let k = super::store::key_of(o);
            (k.0.as_str(), k.1.as_str()) <= (ns, name)
        });
        items.drain(..start);
    }
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let mut cont = None;
    let mut remaining = 0;
    if items.len() > limit {
        remaining = items.len() - limit;
        items.truncate(limit);
        let k = super::store::key_of(items.last().expect("non-empty"));
        cont = Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}\u{0}{}", k.0, k.1)),
        );
    }
    let rv = rv.to_string();
    if accept.contains("as=Table") {
        let table = table::table(def, &items, &rv, cont.as_deref(), sim.clock.wall());
        return Ok(json_response(200, &table));
    }
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = &cont {
        meta["continue"] = json!(c);
        meta["remainingItemCount"] = json!(remaining);
    }
    // Serialise item by item (no intermediate Value for the whole list).
    let mut out = Vec::with_capacity(items.len() * 1024 + 256);
    out.extend_from_slice(b"{\"kind\":\"");
    out.extend_from_slice(def.kind.as_bytes());
    out.extend_from_slice(b"List\",\"apiVersion\":\"");
    out.extend_from_slice(def.api_version().as_bytes());
    out.extend_from_slice(b"\",\"metadata\":");
    serde_json::to_writer(&mut out, &meta).map_err(|e| ApiError::internal(e.to_string()))?;
    out.extend_from_slice(b",\"items\":[");
    // Serialise (or fetch from the cache) on two threads for large lists.
    let parts: Vec<Bytes> = if items.len() > 2_000 {
        let mid = items.len() / 2;
        let (a, b) = items.split_at(mid);
        std::thread::scope(|s| {
            let h = s.spawn(|| b.iter().map(|o| sim.object_json(o)).collect::<Vec<_>>());
            let mut first: Vec<Bytes> = a.iter().map(|o| sim.object_json(o)).collect();
            first.extend(h.join().unwrap_or_default());
            first
        })
    } else {
        items.iter().map(|o| sim.object_json(o)).collect()
    };
    for (i, b) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b);
    }
    out.extend_from_slice(b"]}");
    Ok(bytes_response(200, out))
}
