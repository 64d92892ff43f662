//! The real `kube` client against the embedded simulated cluster: list, watch
//! (kube::runtime::watcher and raw bookmarks), patch (merge, strategic, JSON),
//! 409 on a stale resourceVersion, eviction 201 / 429 / 500 with PDBs, and the
//! machinery (scheduler, controllers, kubelet, cloud).

use e2e_gate::cluster::sim::{SimCluster, SimOptions, Topology};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{
    Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher;
use kube::Client;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const TOPO: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/sim/test-3az-tight-pdb.toml"
));

async fn start(topo: &str) -> (SimCluster, Client) {
    let t = Topology::parse(topo, Path::new("test.toml")).unwrap();
    let sim = SimCluster::start(
        t,
        SimOptions {
            bookmark_interval: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    // kube 5 retries 429 (15 times, backoff up to 1000 s) by default: an eviction
    // blocked by a PDB would hang instead of returning the 429 we assert on.
    config.default_retry = false;
    let client = Client::try_from(config).unwrap();
    (sim, client)
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn all_ready(client: &Client, n: usize) -> bool {
    let pods: Api<Pod> = Api::all(client.clone());
    let l = pods.list(&ListParams::default()).await.unwrap();
    l.items.len() == n && l.items.iter().all(ready)
}

#[tokio::test]
async fn lists_nodes_and_workload_pods_become_ready() {
    let (sim, client) = start(TOPO).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 3);
    let n = &list.items[0];
    assert!(n
        .spec
        .as_ref()
        .unwrap()
        .provider_id
        .as_ref()
        .unwrap()
        .starts_with("sim:///"));
    assert_eq!(
        n.status
            .as_ref()
            .unwrap()
            .node_info
            .as_ref()
            .unwrap()
            .kubelet_version,
        "v1.33.5"
    );
    // 3 web + 3 db + 3 agents.
    wait_for("9 ready pods", Duration::from_secs(10), || {
        all_ready(&client, 9)
    })
    .await;
    // Zone spread: one web pod per zone.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let mut nodes_used: Vec<_> = web
        .items
        .iter()
        .map(|p| p.spec.as_ref().unwrap().node_name.clone().unwrap())
        .collect();
    nodes_used.sort();
    nodes_used.dedup();
    assert_eq!(nodes_used.len(), 3, "spread across zones");
    // StatefulSet: stable names and zonal volumes.
    let db = pods
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap();
    let mut names: Vec<_> = db
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pvc = pvcs.get("data-db-0").await.unwrap();
    assert_eq!(pvc.status.unwrap().phase.as_deref(), Some("Bound"));
    // The node running db-0 reports the attached zonal volume.
    let db0_node = db
        .items
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("db-0"))
        .unwrap()
        .spec
        .clone()
        .unwrap()
        .node_name
        .unwrap();
    let nodes_api: Api<Node> = Api::all(client.clone());
    wait_for("volumesAttached", Duration::from_secs(5), || {
        let nodes_api = nodes_api.clone();
        let db0_node = db0_node.clone();
        async move {
            let n = nodes_api.get(&db0_node).await.unwrap();
            n.status
                .unwrap()
                .volumes_attached
                .is_some_and(|v| v.len() == 1)
        }
    })
    .await;
    let vas: Api<k8s_openapi::api::storage::v1::VolumeAttachment> = Api::all(client.clone());
    let va = vas.list(&ListParams::default()).await.unwrap();
    assert_eq!(va.items.len(), 3, "one VolumeAttachment per db replica");
    assert!(va.items.iter().any(|v| v.spec.node_name == db0_node));
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    assert_eq!(
        pvs.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
    // Controllers report status.
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    wait_for("deployment status", Duration::from_secs(5), || {
        let deps = deps.clone();
        async move {
            deps.get("web")
                .await
                .unwrap()
                .status
                .unwrap()
                .ready_replicas
                == Some(3)
        }
    })
    .await;
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    assert_eq!(sts.get("db").await.unwrap().spec.unwrap().replicas, Some(3));
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    wait_for("daemonset status", Duration::from_secs(5), || {
        let ds = ds.clone();
        async move { ds.get("agent").await.unwrap().status.unwrap().number_ready == 3 }
    })
    .await;
    // PDB status is kept current.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    wait_for("pdb status", Duration::from_secs(5), || {
        let pdbs = pdbs.clone();
        async move {
            let s = pdbs.get("web").await.unwrap().status.unwrap();
            s.current_healthy == 3
                && s.desired_healthy == 2
                && s.disruptions_allowed == 1
                && s.expected_pods == 3
        }
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn selectors_and_pagination() {
    let (sim, client) = start(TOPO).await;
    wait_for("9 ready pods", Duration::from_secs(10), || {
        all_ready(&client, 9)
    })
    .await;
    let pods: Api<Pod> = Api::all(client.clone());
    let node = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items[0]
        .spec
        .clone()
        .unwrap()
        .node_name
        .unwrap();
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 3, "web + db + agent on {node}");
    let by_name = pods
        .list(&ListParams::default().fields("metadata.name=db-1"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let set = pods
        .list(&ListParams::default().labels("app in (web, db),app!=db"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 3);
    // limit / continue
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(4);
    loop {
        let page = pods.list(&lp).await.unwrap();
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().map(|p| p.metadata.name.clone().unwrap()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 9);
    seen.dedup();
    assert_eq!(seen.len(), 9);

    // An object selector kube cannot read is refused at admission, naming the operator.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let bad: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "gt"},
        "spec": {"selector": {"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]},
                 "maxUnavailable": 1}}))
    .unwrap();
    match pdbs.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{}", s.message);
            assert!(
                s.message.contains("\"Gt\"") && s.message.contains("spec.selector"),
                "{}",
                s.message
            );
        }
        other => panic!("a Gt selector was not refused: {other:?}"),
    }
    assert!(pdbs.get_opt("gt").await.unwrap().is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn watcher_sees_changes_and_bookmarks_arrive() {
    let (sim, client) = start(TOPO).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    // kube::runtime::watcher: initial list, then live events.
    let mut stream = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut init_done = false;
    while let Some(ev) = stream.try_next().await.unwrap() {
        if matches!(ev, watcher::Event::InitDone) {
            init_done = true;
            break;
        }
    }
    assert!(init_done);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c1"}, "data": {"k": "v"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev {
        watcher::Event::Apply(c) => assert_eq!(c.metadata.name.as_deref(), Some("c1")),
        other => panic!("unexpected {other:?}"),
    }
    // Raw watch with bookmarks, resuming from a resourceVersion.
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut raw = cms
        .watch(
            &WatchParams {
                bookmarks: true,
                ..Default::default()
            }
            .timeout(10),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    cms.delete("c1", &DeleteParams::default()).await.unwrap();
    let mut deleted = false;
    let mut bookmark = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(deleted && bookmark) && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), raw.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(WatchEvent::Deleted(c)) => deleted = c.metadata.name.as_deref() == Some("c1"),
            Some(WatchEvent::Bookmark(b)) => bookmark = !b.metadata.resource_version.is_empty(),
            Some(other) => panic!("unexpected {other:?}"),
            None => break,
        }
    }
    assert!(deleted && bookmark, "deleted={deleted} bookmark={bookmark}");
    // The deprecated /watch/ path prefix streams too (here: until timeoutSeconds).
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let req = http::Request::get("/api/v1/watch/namespaces/default/configmaps?timeoutSeconds=1")
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(req).await.unwrap();
    assert!(text.starts_with("{\"type\":\"ADDED\""), "{text}");
    cms.delete("c1", &DeleteParams::default()).await.unwrap();
    // The kube watcher saw the deletion too.
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(ev, watcher::Event::Delete(_)), "{ev:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn patches_and_conflicts() {
    let (sim, client) = start(TOPO).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let name = nodes.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    // Strategic merge (what kubectl cordon sends).
    let n = nodes
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    assert_eq!(n.spec.unwrap().unschedulable, Some(true));
    // Merge patch on labels.
    let n = nodes
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"upgrade": "pending"}}})),
        )
        .await
        .unwrap();
    assert_eq!(n.metadata.labels.unwrap()["upgrade"], "pending");
    // JSON patch (RFC 6902) through a raw request.
    let req = http::Request::patch(format!("/api/v1/nodes/{name}"))
        .header("Content-Type", "application/json-patch+json")
        .body(serde_json::to_vec(&json!([{"op": "remove", "path": "/spec/unschedulable"},
                                            {"op": "add", "path": "/metadata/annotations/x", "value": "y"}])).unwrap())
        .unwrap();
    let n: Node = client.request(req).await.unwrap();
    assert_eq!(n.spec.unwrap().unschedulable, None);
    assert_eq!(n.metadata.annotations.unwrap()["x"], "y");
    // 409 on a stale resourceVersion; 409 AlreadyExists; 404 NotFound.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut stale = created.clone();
    stale.data = Some([("a".to_string(), "2".to_string())].into());
    cms.replace("c", &PostParams::default(), &stale)
        .await
        .unwrap();
    let err = cms
        .replace("c", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(s.is_conflict(), "{s:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = cms.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409 && s.is_already_exists()));
    let err = cms.get("missing").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404 && s.is_not_found()));
    // Status subresource: a main-resource patch cannot change status, /status can.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = pods.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let p = pods
        .patch_status(
            &pod,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"message": "hello"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.status.unwrap().message.as_deref(), Some("hello"));
    let p = pods
        .patch(
            &pod,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"message": "ignored"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.status.unwrap().message.as_deref(), Some("hello"));
    sim.shutdown().await;
}

#[tokio::test]
async fn eviction_201_429_and_500() {
    let (sim, client) = start(TOPO).await;
    wait_for("9 ready pods", Duration::from_secs(10), || {
        all_ready(&client, 9)
    })
    .await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_for("web pdb status current", Duration::from_secs(5), || {
        let pdbs = pdbs.clone();
        async move {
            pdbs.get("web")
                .await
                .unwrap()
                .status
                .unwrap()
                .disruptions_allowed
                == 1
        }
    })
    .await;
    // db: minAvailable = replicas → 429 with the real message.
    let err = pods
        .evict("db-0", &EvictParams::default())
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 429);
            assert_eq!(s.reason, "TooManyRequests");
            assert_eq!(
                s.message,
                "Cannot evict pod as it would violate the pod's disruption budget."
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // web: maxUnavailable 1 → first eviction 201, second 429.
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let a = web.items[0].metadata.name.clone().unwrap();
    let b = web.items[1].metadata.name.clone().unwrap();
    let st = pods.evict(&a, &EvictParams::default()).await.unwrap();
    assert!(st.is_success(), "{st:?}");
    let status = pdbs.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        status.disruptions_allowed, 0,
        "the eviction consumed the budget"
    );
    let err = pods.evict(&b, &EvictParams::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 429));
    // The evicted pod terminates; the replacement becomes Ready; eviction is allowed again.
    wait_for("replacement ready", Duration::from_secs(10), || {
        let pods = pods.clone();
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .unwrap();
            l.items
                .iter()
                .filter(|p| ready(p) && p.metadata.deletion_timestamp.is_none())
                .count()
                == 3
        }
    })
    .await;
    // ... and the disruption controller (the tick) has updated the PDB status.
    wait_for("pdb allows one disruption", Duration::from_secs(5), || {
        let pdbs = pdbs.clone();
        async move {
            pdbs.get("web")
                .await
                .unwrap()
                .status
                .unwrap()
                .disruptions_allowed
                == 1
        }
    })
    .await;
    pods.evict(&b, &EvictParams::default()).await.unwrap();
    // A second PDB covering web pods → 500.
    let extra: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "web-2"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}}))
    .unwrap();
    pdbs.create(&PostParams::default(), &extra).await.unwrap();
    // A Ready, non-terminating pod (Pending and terminating pods bypass PDBs).
    let c = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| ready(p) && p.metadata.deletion_timestamp.is_none())
        .unwrap()
        .metadata
        .name
        .unwrap();
    let err = pods.evict(&c, &EvictParams::default()).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 500);
            assert!(
                s.message.contains("more than one PodDisruptionBudget"),
                "{}",
                s.message
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Introspection counted the evictions.
    let m = sim.sim().state.lock().metrics.clone();
    assert_eq!(m.evictions["default/web"].allowed, 2);
    assert!(m.evictions["default/web"].refused >= 2);
    assert!(m.requests["evict pods/eviction"] >= 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn scheduler_respects_cordon_and_resources() {
    let (sim, client) = start(TOPO).await;
    wait_for("9 ready pods", Duration::from_secs(10), || {
        all_ready(&client, 9)
    })
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    for n in nodes.list(&ListParams::default()).await.unwrap().items {
        nodes
            .patch(
                n.metadata.name.as_deref().unwrap(),
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"unschedulable": true}})),
            )
            .await
            .unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "lonely"},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "100m"}}}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    wait_for("FailedScheduling event", Duration::from_secs(5), || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("FailedScheduling")
                        && e.message
                            .as_deref()
                            .unwrap_or("")
                            .contains("3 node(s) were unschedulable")
                })
        }
    })
    .await;
    // Too big for any node.
    let big: Pod = serde_json::from_value(json!({"metadata": {"name": "big"},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "64"}}}]}})).unwrap();
    pods.create(&PostParams::default(), &big).await.unwrap();
    let name = nodes.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    nodes
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": null}})),
        )
        .await
        .unwrap();
    wait_for("lonely scheduled", Duration::from_secs(5), || {
        let pods = pods.clone();
        let name = name.clone();
        async move {
            pods.get("lonely")
                .await
                .unwrap()
                .spec
                .unwrap()
                .node_name
                .as_deref()
                == Some(name.as_str())
        }
    })
    .await;
    wait_for("Insufficient cpu", Duration::from_secs(5), || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| {
                    e.involved_object.name.as_deref() == Some("big")
                        && e.message
                            .as_deref()
                            .unwrap_or("")
                            .contains("Insufficient cpu")
                })
        }
    })
    .await;
    assert!(pods
        .get("big")
        .await
        .unwrap()
        .spec
        .unwrap()
        .node_name
        .is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn cloud_api_boots_and_terminates_instances() {
    let (sim, client) = start(TOPO).await;
    wait_for("9 ready pods", Duration::from_secs(10), || {
        all_ready(&client, 9)
    })
    .await;
    let http = |m: &str, path: &str, body: serde_json::Value| {
        let req = http::Request::builder()
            .method(m)
            .uri(path)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        let client = client.clone();
        async move { client.request::<serde_json::Value>(req).await.unwrap() }
    };
    let groups = http("GET", "/sim/cloud/groups", json!({})).await;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 3);
    let old = groups["groups"][0]["instances"][0].clone();
    assert_eq!(old["lifecycle"], "InService");
    assert_eq!(old["lb_state"], "InService");
    // New launch template, scale up zone-a: Pending → InService → Node Ready → LB InService.
    http(
        "PUT",
        "/sim/cloud/groups/workers/launch-template",
        json!({"kubelet_version": "v1.34.1"}),
    )
    .await;
    http(
        "PUT",
        "/sim/cloud/groups/workers-zone-a/desired",
        json!({"desired": 2}),
    )
    .await;
    let g = http("GET", "/sim/cloud/groups", json!({})).await;
    let new = g["groups"][0]["instances"][1].clone();
    assert_eq!(new["lifecycle"], "Pending");
    assert_eq!(new["kubelet_version"], "v1.34.1");
    assert_eq!(new["launch_template_version"], 2);
    let nodes: Api<Node> = Api::all(client.clone());
    let node_name = new["node_name"].as_str().unwrap().to_string();
    wait_for("new node ready", Duration::from_secs(5), || {
        let nodes = nodes.clone();
        let node_name = node_name.clone();
        async move {
            nodes.get_opt(&node_name).await.unwrap().is_some_and(|n| {
                n.status
                    .unwrap()
                    .conditions
                    .unwrap()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        }
    })
    .await;
    wait_for("LB in service", Duration::from_secs(5), || {
        let h = http("GET", "/sim/cloud/groups", json!({}));
        async move { h.await["groups"][0]["instances"][1]["lb_state"] == "InService" }
    })
    .await;
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    wait_for("daemonset on the new node", Duration::from_secs(5), || {
        let ds = ds.clone();
        async move { ds.get("agent").await.unwrap().status.unwrap().number_ready == 4 }
    })
    .await;
    // Terminate the old instance with decrement: its node and pods go, controllers recreate.
    let id = old["id"].as_str().unwrap();
    http(
        "POST",
        &format!("/sim/cloud/instances/{id}/terminate"),
        json!({"decrement": true}),
    )
    .await;
    let g = http("GET", "/sim/cloud/groups", json!({})).await;
    assert_eq!(g["groups"][0]["desired"], 1);
    assert!(nodes
        .get_opt(old["node_name"].as_str().unwrap())
        .await
        .unwrap()
        .is_none());
    wait_for("web back to 3 ready", Duration::from_secs(10), || {
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .unwrap();
            l.items.len() == 3 && l.items.iter().all(ready)
        }
    })
    .await;
    let m = http("GET", "/sim/metrics", json!({})).await;
    assert!(m["requests"]["list pods"].as_u64().unwrap() > 0);
    assert!(m["availability"]["default/web"]["seconds_below_min"]
        .as_f64()
        .is_some());
    sim.shutdown().await;
}

const FAULTS: &str = r#"
[sim]
time_scale = 0.01

[[pools]]
name = "stuck"
zones = ["zone-a"]
size_per_zone = 1
boot_seconds = 10
kubelet_ready_seconds = 5
new_nodes_never_ready = true

[[workloads]]
name = "slow"
kind = "Deployment"
replicas = 1
ignore_sigterm = true
termination_grace_seconds = 60

[[workloads]]
name = "fast"
kind = "Deployment"
replicas = 1
termination_grace_seconds = 60
"#;

#[tokio::test]
async fn faults_never_ready_nodes_and_pods_ignoring_sigterm() {
    let (sim, client) = start(FAULTS).await;
    wait_for("2 ready pods", Duration::from_secs(10), || {
        all_ready(&client, 2)
    })
    .await;
    // Regression: a size past u32 was wrapped (2^32 + 2 became 2), not refused.
    let req = http::Request::put("/sim/cloud/groups/stuck-zone-a/desired")
        .body(serde_json::to_vec(&json!({"desired": (1u64 << 32) + 2})).unwrap())
        .unwrap();
    let err = client.request::<serde_json::Value>(req).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400),
        "{err:?}"
    );
    // Scale the stuck pool: the new node registers but never turns Ready.
    let req = http::Request::put("/sim/cloud/groups/stuck-zone-a/desired")
        .body(serde_json::to_vec(&json!({"desired": 2})).unwrap())
        .unwrap();
    client.request::<serde_json::Value>(req).await.unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for("2 nodes", Duration::from_secs(5), || {
        let nodes = nodes.clone();
        async move {
            nodes
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len()
                == 2
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // 30 simulated seconds > kubelet_ready_seconds
    let new = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .nth(1)
        .unwrap();
    let ready = new
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    assert!(new
        .spec
        .unwrap()
        .taints
        .unwrap()
        .iter()
        .any(|t| t.key == "node.kubernetes.io/not-ready"));
    // A pod that ignores SIGTERM takes its whole grace period (60 s = 0.6 s real);
    // a well-behaved one stops within a second (10 ms real).
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let name_of = |app: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .unwrap()
                .items[0]
                .metadata
                .name
                .clone()
                .unwrap()
        }
    };
    let slow = name_of("slow").await;
    let fast = name_of("fast").await;
    let t = Instant::now();
    pods.delete(&slow, &DeleteParams::default()).await.unwrap();
    pods.delete(&fast, &DeleteParams::default()).await.unwrap();
    wait_for("fast pod gone", Duration::from_secs(2), || {
        let pods = pods.clone();
        let fast = fast.clone();
        async move { pods.get_opt(&fast).await.unwrap().is_none() }
    })
    .await;
    let p = pods.get(&slow).await.unwrap();
    assert!(
        p.metadata.deletion_timestamp.is_some(),
        "slow pod is terminating"
    );
    wait_for("slow pod gone", Duration::from_secs(5), || {
        let pods = pods.clone();
        let slow = slow.clone();
        async move { pods.get_opt(&slow).await.unwrap().is_none() }
    })
    .await;
    assert!(
        t.elapsed() >= Duration::from_millis(550),
        "{:?}",
        t.elapsed()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_api_error_rate() {
    let topo = "[sim]\napi_error_rate = 0.5\n";
    let (sim, client) = start(topo).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut errors = 0;
    for _ in 0..60 {
        if let Err(kube::Error::Api(s)) = nodes.list(&ListParams::default()).await {
            assert_eq!(s.code, 500);
            errors += 1;
        }
    }
    assert!((10..=50).contains(&errors), "{errors} of 60 failed");
    assert_eq!(sim.sim().state.lock().metrics.injected_errors, errors);
    sim.shutdown().await;
}

/// Ready endpoints of a Service, from its EndpointSlices (as an availability probe reads them).
async fn ready_endpoints(client: &Client, svc: &str) -> (usize, usize) {
    let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
        Api::namespaced(client.clone(), "default");
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await
        .unwrap();
    let eps: Vec<_> = list.items.iter().flat_map(|s| s.endpoints.iter()).collect();
    let ready = eps
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
        .count();
    (ready, eps.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_endpoint_slices_and_a_kubelet_version_can_break_readiness() {
    // Nodes already run the "bad" kubelet: every pod passes readiness, fails it 2 simulated
    // seconds later for 5 seconds, then recovers for good.
    let (sim, client) = start(
        r#"
[sim]
time_scale = 0.05
pod_startup_seconds = 1
[[pools]]
name = "workers"
zones = ["zone-a"]
size_per_zone = 1
kubelet_version = "v1.34.1"
[[workloads]]
name = "web"
kind = "Deployment"
replicas = 2
service = true
unready_on_kubelet = { version = "v1.34.1", after_seconds = 2, for_seconds = 5 }
[[workloads]]
name = "api"
kind = "Deployment"
replicas = 1
service = true
unready_on_kubelet = { version = "v1.99.0", after_seconds = 0, for_seconds = 60 }
"#,
    )
    .await;
    let svcs: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), "default");
    assert!(
        svcs.get("web").await.is_ok(),
        "the topology's Service exists"
    );
    let c = client.clone();
    wait_for("web has 2 ready endpoints", Duration::from_secs(20), || {
        let c = c.clone();
        async move { ready_endpoints(&c, "web").await == (2, 2) }
    })
    .await;
    let c = client.clone();
    wait_for(
        "web's endpoints fail readiness",
        Duration::from_secs(20),
        || {
            let c = c.clone();
            async move { ready_endpoints(&c, "web").await.0 < 2 }
        },
    )
    .await;
    let c = client.clone();
    wait_for("web's endpoints recover", Duration::from_secs(20), || {
        let c = c.clone();
        async move { ready_endpoints(&c, "web").await == (2, 2) }
    })
    .await;
    // The fault names another version: "api" is never affected.
    assert_eq!(ready_endpoints(&client, "api").await, (1, 1));
    // A deleted Service takes its slice with it.
    svcs.delete("api", &DeleteParams::default()).await.unwrap();
    let c = client.clone();
    wait_for("api's slice is gone", Duration::from_secs(10), || {
        let c = c.clone();
        async move { ready_endpoints(&c, "api").await == (0, 0) }
    })
    .await;
    sim.shutdown().await;
}
