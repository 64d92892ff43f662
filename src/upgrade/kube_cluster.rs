//! The kube adapter: one client (with the call-counting layer) and the few operations the
//! engine needs: one LIST per resource for the snapshot, marker patches with optimistic
//! concurrency, the Lease lock, evictions. No periodic LIST anywhere; the apply loop
//! will drive watches from here.

use super::api_count::ApiCallCounter;
use super::lease::{self, LeaseDecision};
use super::node_patch::NodePatch;
use super::snapshot::{ClusterObjects, NodeInfo, SnapshotError};
use super::state::LEASE_NAME;
use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Attempts for a marker patch that meets a concurrent writer (409).
pub(crate) const PATCH_ATTEMPTS: u32 = 5;

/// A kube-side failure; names the file, object and action.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig file could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No kubeconfig given and none could be inferred.
    #[error("no usable kubeconfig ($KUBECONFIG, ~/.kube/config, in-cluster): {0}")]
    Infer(#[source] kube::config::InferConfigError),
    /// A context was named without a kubeconfig and could not be loaded.
    #[error("kubeconfig context: {0}")]
    Context(#[source] kube::config::KubeconfigError),
    /// The client could not be built.
    #[error("failed to build the kube client: {0}")]
    Client(#[source] kube::Error),
    /// An API call failed.
    #[error("failed to {action} {object}: {source}")]
    Api {
        /// What we tried (`list`, `patch`, …).
        action: &'static str,
        /// `Kind/ns/name` or the resource list.
        object: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// An object from the API did not make sense.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The Node no longer exists (terminated while we were about to patch it).
    #[error("Node/{node} no longer exists")]
    NodeGone {
        /// The node.
        node: String,
    },
    /// Marker patches kept conflicting.
    #[error("Node/{node}: still conflicting after {PATCH_ATTEMPTS} attempts")]
    Conflict {
        /// The node.
        node: String,
    },
    /// Another live writer holds the Lease.
    #[error("Lease {namespace}/{LEASE_NAME} is held by {holder} until {until}; another `upgrade apply` is running")]
    LeaseHeld {
        /// Namespace of the Lease.
        namespace: String,
        /// Its holder.
        holder: String,
        /// Expiry unless renewed.
        until: DateTime<Utc>,
    },
}

impl KubeError {
    /// Whether the failure means "cluster unreachable or refused us" (exit 3) as opposed to
    /// a problem the user can fix in the arguments.
    pub(crate) fn is_infra(&self) -> bool {
        !matches!(self, KubeError::Kubeconfig { .. } | KubeError::Context(_))
    }
}

/// `r`, with a Node gone meanwhile read as `None`: nothing is left to patch there.
pub(crate) fn unless_gone<T>(r: Result<T, KubeError>) -> Result<Option<T>, KubeError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(KubeError::NodeGone { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn api_err(
    action: &'static str,
    object: impl Into<String>,
) -> impl FnOnce(kube::Error) -> KubeError {
    let object = object.into();
    move |source| KubeError::Api {
        action,
        object,
        source,
    }
}

fn node_gone(node: &str) -> KubeError {
    KubeError::NodeGone {
        node: node.to_string(),
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Result of one eviction call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// 201: the pod is being deleted.
    Evicted,
    /// 429: the PDB has no budget now (message from the API, names the PDB).
    Budget(String),
    /// 500 "more than one PodDisruptionBudget": a misconfiguration blocker.
    MultiplePdbs(String),
    /// 404: already gone.
    Gone,
}

/// A connected cluster.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    counter: ApiCallCounter,
}

impl KubeCluster {
    /// Connects with `kubeconfig` (else `$KUBECONFIG` / `~/.kube/config` / in-cluster)
    /// and `context` (else the current one).
    pub(crate) async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Self, KubeError> {
        let opts = KubeConfigOptions {
            context: context.map(str::to_string),
            ..KubeConfigOptions::default()
        };
        let mut config = match (kubeconfig, context) {
            (Some(path), _) => {
                let wrap = |source| KubeError::Kubeconfig {
                    path: path.to_path_buf(),
                    source,
                };
                let kc = Kubeconfig::read_from(path).map_err(wrap)?;
                kube::Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .map_err(wrap)?
            }
            (None, Some(_)) => kube::Config::from_kubeconfig(&opts)
                .await
                .map_err(KubeError::Context)?,
            (None, None) => kube::Config::infer().await.map_err(KubeError::Infer)?,
        };
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(60));
        Self::from_config(config)
    }

    /// Builds from a ready [`kube::Config`], with the counting layer. The client's own
    /// 429 retry is switched off: a 429 on eviction is a PDB answer the engine handles
    /// (watch + capped backoff), and retries would hide calls from the count.
    pub fn from_config(mut config: kube::Config) -> Result<Self, KubeError> {
        config.default_retry = false;
        let counter = ApiCallCounter::default();
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(KubeError::Client)?
            .with_layer(&counter)
            .build();
        Ok(KubeCluster { client, counter })
    }

    /// The counted client (for watches and further adapters).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// API calls so far, by verb.
    pub fn api_calls(&self) -> BTreeMap<String, u64> {
        self.counter.counts()
    }

    /// One LIST of every `K` (all namespaces).
    async fn list<K>(&self, what: &str) -> Result<Vec<K>, KubeError>
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        Ok(Api::<K>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(api_err("list", what))?
            .items)
    }

    /// One LIST of nodes.
    pub async fn list_nodes(&self) -> Result<Vec<Node>, KubeError> {
        self.list("nodes").await
    }

    /// One LIST of each resource the snapshot needs (5 calls).
    pub async fn list_objects(&self) -> Result<ClusterObjects, KubeError> {
        Ok(ClusterObjects {
            nodes: self.list("nodes").await?,
            pods: self.list("pods").await?,
            pdbs: self.list("poddisruptionbudgets").await?,
            pvcs: self.list("persistentvolumeclaims").await?,
            pvs: self.list("persistentvolumes").await?,
        })
    }

    /// Applies `make(node)` to the Node as currently stored, with its resourceVersion;
    /// on 409 it re-reads and recomputes. Returns the node as patched (or unchanged when
    /// the patch is a no-op).
    pub async fn patch_node(
        &self,
        name: &str,
        make: impl Fn(&NodeInfo) -> NodePatch,
    ) -> Result<NodeInfo, KubeError> {
        let api = Api::<Node>::all(self.client.clone());
        for _ in 0..PATCH_ATTEMPTS {
            let node = api
                .get_opt(name)
                .await
                .map_err(api_err("get", format!("Node/{name}")))?
                .ok_or_else(|| node_gone(name))?;
            let info = NodeInfo::from_k8s(&node)?;
            let patch = make(&info);
            if patch.is_noop_for(&info) {
                return Ok(info);
            }
            let body = patch.to_merge_patch(&info, node.metadata.resource_version.as_deref());
            match self.merge_patch_node(name, &body).await? {
                Some(n) => return Ok(n),
                None => tracing::debug!(node = name, "marker patch conflicted; re-reading"),
            }
        }
        Err(KubeError::Conflict {
            node: name.to_string(),
        })
    }

    /// [`Self::patch_node`] starting from a cached view of the node (the watch cache) and
    /// its resourceVersion: the patch carries that version as a precondition, so a stale
    /// view is answered 409 and the patch is made again from a fresh GET. Saves the GET of
    /// every patch whose cache is current (the usual case: one writer, the engine). A patch
    /// that is a no-op for the cached view is checked against a fresh GET too (the cache
    /// may lag behind a change that makes it necessary).
    pub(crate) async fn patch_node_cached(
        &self,
        cached: &NodeInfo,
        resource_version: Option<&str>,
        make: impl Fn(&NodeInfo) -> NodePatch,
    ) -> Result<NodeInfo, KubeError> {
        let name = cached.name.as_str();
        if let Some(rv) = resource_version.filter(|rv| !rv.is_empty()) {
            let patch = make(cached);
            if !patch.is_noop_for(cached) {
                let body = patch.to_merge_patch(cached, Some(rv));
                match self.merge_patch_node(name, &body).await? {
                    Some(n) => return Ok(n),
                    None => tracing::debug!(node = name, "cached view was stale; re-reading"),
                }
            }
        }
        self.patch_node(name, make).await
    }

    /// One merge PATCH of Node `name`: the node as stored, or `None` on 409 (its
    /// resourceVersion precondition failed: re-read). A 404 (deleted meanwhile) is
    /// [`KubeError::NodeGone`].
    async fn merge_patch_node(
        &self,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<Option<NodeInfo>, KubeError> {
        match Api::<Node>::all(self.client.clone())
            .patch(name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(n) => Ok(Some(NodeInfo::from_k8s(&n)?)),
            Err(e) if status_code(&e) == Some(409) => Ok(None),
            Err(e) if status_code(&e) == Some(404) => Err(node_gone(name)),
            Err(e) => Err(api_err("patch", format!("Node/{name}"))(e)),
        }
    }

    /// Deletes a Node object (404 is fine: already gone).
    pub(crate) async fn delete_node(&self, name: &str) -> Result<(), KubeError> {
        let api = Api::<Node>::all(self.client.clone());
        match api.delete(name, &DeleteParams::default()).await {
            Err(e) if status_code(&e) != Some(404) => {
                Err(api_err("delete", format!("Node/{name}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// Records a Warning Event on a Node (`kubectl describe node` and `kubectl get events`
    /// show it), e.g. a drain that cannot finish. Best effort: an Event that cannot be
    /// written is logged, never a reason to stop the upgrade.
    pub(crate) async fn warn_on_node(&self, node: &str, reason: &str, message: &str) {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let name = format!("{node}.e2e-gate.{}", Utc::now().timestamp_micros());
        let event = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": node},
            "reason": reason,
            // The API limits an Event message to 1 KiB.
            "message": message.chars().take(1000).collect::<String>(),
            "type": "Warning",
            "source": {"component": "e2e-gate-upgrade"},
            "reportingComponent": "e2e-gate-upgrade",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let created = match serde_json::from_value::<k8s_openapi::api::core::v1::Event>(event) {
            Ok(e) => Api::namespaced(self.client.clone(), "default")
                .create(&PostParams::default(), &e)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = created {
            tracing::warn!(%node, %reason, "could not record the Event: {e}");
        }
    }

    /// The Lease API of `namespace`, and the Lease as errors name it.
    fn lease_api(&self, namespace: &str) -> (Api<Lease>, String) {
        (
            Api::namespaced(self.client.clone(), namespace),
            format!("Lease/{namespace}/{LEASE_NAME}"),
        )
    }

    /// Reads one annotation of the Lease (run-wide state such as the base capacity).
    pub(crate) async fn lease_annotation(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<String>, KubeError> {
        let (api, object) = self.lease_api(namespace);
        let l = api
            .get_opt(LEASE_NAME)
            .await
            .map_err(api_err("get", object))?;
        Ok(l.and_then(|l| l.metadata.annotations)
            .and_then(|a| a.get(key).cloned()))
    }

    /// Sets one annotation on the Lease (merge patch).
    pub(crate) async fn set_lease_annotation(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
    ) -> Result<(), KubeError> {
        let (api, object) = self.lease_api(namespace);
        let body = serde_json::json!({"metadata": {"annotations": {key: value}}});
        api.patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(api_err("patch", object))?;
        Ok(())
    }

    /// Evicts one pod through the Eviction API.
    pub async fn evict(&self, namespace: &str, name: &str) -> Result<Eviction, KubeError> {
        let api = Api::<Pod>::namespaced(self.client.clone(), namespace);
        match api.evict(name, &EvictParams::default()).await {
            Ok(_) => Ok(Eviction::Evicted),
            Err(kube::Error::Api(s)) if s.code == 429 => Ok(Eviction::Budget(s.message.clone())),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Eviction::Gone),
            Err(kube::Error::Api(s)) if s.code == 500 && s.message.contains("more than one") => {
                Ok(Eviction::MultiplePdbs(s.message.clone()))
            }
            Err(e) => Err(api_err("evict", format!("Pod/{namespace}/{name}"))(e)),
        }
    }

    /// Takes (or renews) the single-writer Lease in `namespace` for identity `me`; a 409 from a
    /// concurrent writer re-decides.
    pub(crate) async fn acquire_lease(
        &self,
        namespace: &str,
        me: &str,
        now: DateTime<Utc>,
        lease_seconds: i64,
    ) -> Result<(), KubeError> {
        let (api, object) = self.lease_api(namespace);
        // A 409 (another writer created or updated the Lease between our read and our write)
        // is not an error: read again and decide again. Several `apply` started together
        // then see one winner; the others wait for its Lease like for any other holder.
        // Reads and decisions before giving up on a Lease that keeps changing.
        const LEASE_RACE_RETRIES: usize = 5;
        for _ in 0..LEASE_RACE_RETRIES {
            let current = api
                .get_opt(LEASE_NAME)
                .await
                .map_err(api_err("get", object.clone()))?;
            let body = lease::object(namespace, me, now, lease_seconds, current.as_ref());
            let written = match lease::decide(current.as_ref(), me, now) {
                LeaseDecision::Create => api.create(&PostParams::default(), &body).await,
                LeaseDecision::Renew | LeaseDecision::TakeOver => {
                    api.replace(LEASE_NAME, &PostParams::default(), &body).await
                }
                LeaseDecision::HeldBy { holder, until } => {
                    return Err(KubeError::LeaseHeld {
                        namespace: namespace.to_string(),
                        holder,
                        until,
                    })
                }
            };
            match written {
                Ok(_) => return Ok(()),
                Err(e) if status_code(&e) == Some(409) => continue,
                Err(e) => return Err(api_err("update", object)(e)),
            }
        }
        Err(KubeError::LeaseHeld {
            namespace: namespace.to_string(),
            holder: "another writer (the Lease kept changing under us)".to_string(),
            until: now + chrono::Duration::seconds(1),
        })
    }

    /// Releases the Lease if `me` holds it: deletes it, or with `keep_state` only clears
    /// the holder, so run-wide state (the base capacity) survives for the next run while
    /// nodes are still marked (left cordoned, replacement failed).
    pub(crate) async fn release_lease(
        &self,
        namespace: &str,
        me: &str,
        keep_state: bool,
    ) -> Result<(), KubeError> {
        let (api, object) = self.lease_api(namespace);
        let current = api
            .get_opt(LEASE_NAME)
            .await
            .map_err(api_err("get", object.clone()))?;
        if current.and_then(|l| l.spec?.holder_identity).as_deref() != Some(me) {
            return Ok(());
        }
        if keep_state {
            let release = serde_json::json!({"spec": {"holderIdentity": null, "renewTime": null}});
            api.patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&release))
                .await
                .map_err(api_err("patch", object))?;
            return Ok(());
        }
        match api.delete(LEASE_NAME, &DeleteParams::default()).await {
            Err(e) if status_code(&e) != Some(404) => Err(api_err("delete", object)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Serves `app` on a local port (a stand-in API server); a client config for it.
    pub(crate) async fn serve(app: axum::Router) -> kube::Config {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        kube::Config::new(url.parse().expect("url"))
    }

    // Regression: a node deleted between patch_node's GET and its PATCH was an API error
    // (the run failed) instead of NodeGone (the engine moves on), as the cached path says.
    #[tokio::test]
    async fn a_node_deleted_between_get_and_patch_is_gone() {
        use axum::{http::StatusCode, routing::get, Json, Router};
        let node = serde_json::json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "resourceVersion": "7"}});
        let gone = serde_json::json!({"kind": "Status", "apiVersion": "v1",
            "status": "Failure", "reason": "NotFound", "code": 404,
            "message": "nodes \"n1\" not found"});
        let app = Router::new().route(
            "/api/v1/nodes/n1",
            get(move || async move { Json(node) })
                .patch(move || async move { (StatusCode::NOT_FOUND, Json(gone)) }),
        );
        let cluster = KubeCluster::from_config(serve(app).await).expect("client");
        let r = cluster
            .patch_node("n1", |_| NodePatch {
                unschedulable: Some(true),
                ..NodePatch::default()
            })
            .await;
        assert!(matches!(r, Err(KubeError::NodeGone { .. })), "{r:?}");
    }
}
